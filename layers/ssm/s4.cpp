/// \file
/// \brief nn::S4: the DPLR form of HiPPO-LegS A = V(Λ − PP*)V* (eigenvectors by complex Jacobi rotations), the
/// bilinear Ā = (4/Δ)(2/Δ − A)⁻¹ − I, B̄ = 2(2/Δ − A)⁻¹B by Woodbury, C̃ = C(I − Ā^L) by repeated squaring, the
/// kernel's generating function K̂(ω) = 2[r_{C̃B} − (1+ω) r_{C̃P} r_{P*B}/(1 + (1+ω) r_{P*P})] from Cauchy sums
/// over the modes and their conjugates, K̄ = irfft(K̂), the FFT convolution, the recurrence, and the
/// GELU → Linear D -> 2D → GLU output layer.
#include "layers/ssm/s4.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <numbers>
#include <numeric>

#include <fmt/format.h>

#include "autograd/fft.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "layers/functional.h"
#include "layers/ssm/hippo.h"

namespace ember::nn {

namespace {

using i64 = std::int64_t;
using cd = std::complex<double>;

/// N from the config: a whole number, even and ≥ 2.
std::int64_t checked_d_state(const MixerConfig& c) {
  const double v = c.option("d_state", 64);
  EMBER_CHECK(std::isfinite(v) && v == std::round(v) && v >= 2 && std::fmod(v, 2.0) == 0.0,
              fmt::format("S4: option d_state must be an even integer >= 2, got {}", v));
  return static_cast<std::int64_t>(v);
}

/// h: a Hermitian n×n matrix (row-major) -> its eigenvalues; v receives the orthonormal eigenvectors as columns.
/// Cyclic Jacobi: each rotation first turns h_pq real by a phase on column and row q, then zeroes it with the real
/// rotation tan θ = t of Numerical Recipes' `jacobi`.
std::vector<double> hermitian_eigen(std::vector<cd> h, i64 n, std::vector<cd>& v) {
  auto H = [&](i64 r, i64 c) -> cd& { return h[static_cast<std::size_t>(r * n + c)]; };
  auto V = [&](i64 r, i64 c) -> cd& { return v[static_cast<std::size_t>(r * n + c)]; };
  v.assign(static_cast<std::size_t>(n * n), 0.0);
  for (i64 i = 0; i < n; ++i) V(i, i) = 1.0;
  double total = 0.0;
  for (const cd& x : h) total += std::norm(x);
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (i64 p = 0; p < n; ++p)
      for (i64 q = p + 1; q < n; ++q) off += std::norm(H(p, q));
    if (off <= 1e-32 * total) break;
    for (i64 p = 0; p < n; ++p)
      for (i64 q = p + 1; q < n; ++q) {
        const double mag = std::abs(H(p, q));
        if (mag == 0.0) continue;
        const cd phase = H(p, q) / mag;  // e^{iφ}: column q times e^{−iφ}, row q times e^{iφ} makes h_pq = |h_pq|
        for (i64 k = 0; k < n; ++k) {
          H(k, q) *= std::conj(phase);
          V(k, q) *= std::conj(phase);
        }
        for (i64 k = 0; k < n; ++k) H(q, k) *= phase;
        const double theta = (H(q, q).real() - H(p, p).real()) / (2.0 * mag);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        for (i64 k = 0; k < n; ++k) {
          const cd hp = H(k, p), hq = H(k, q), vp = V(k, p), vq = V(k, q);
          H(k, p) = c * hp - s * hq;
          H(k, q) = s * hp + c * hq;
          V(k, p) = c * vp - s * vq;
          V(k, q) = s * vp + c * vq;
        }
        for (i64 k = 0; k < n; ++k) {
          const cd hp = H(p, k), hq = H(q, k);
          H(p, k) = c * hp - s * hq;
          H(q, k) = s * hp + c * hq;
        }
      }
  }
  std::vector<double> eigenvalues(static_cast<std::size_t>(n));
  for (i64 i = 0; i < n; ++i) eigenvalues[static_cast<std::size_t>(i)] = H(i, i).real();
  return eigenvalues;
}

/// Complex values -> a Float64 Complex tensor of the given shape.
Complex complex_tensor(const std::vector<cd>& z, const Shape& shape) {
  std::vector<double> re, im;
  for (const cd& x : z) {
    re.push_back(x.real());
    im.push_back(x.imag());
  }
  return {from_vector(re, shape, DType::Float64), from_vector(im, shape, DType::Float64)};
}

/// z: [..., M] -> [..., 2M], the kept modes followed by their conjugates.
Complex with_conjugates(const Complex& z) {
  const i64 last = z.re.dim() - 1;
  return {cat({z.re, z.re}, last), cat({z.im, -z.im}, last)};
}

/// Complex matrix product with batch broadcasting, from four real ones.
Complex cmatmul(const Complex& a, const Complex& b) {
  return {matmul(a.re, b.re) - matmul(a.im, b.im), matmul(a.re, b.im) + matmul(a.im, b.re)};
}

/// unsqueeze of both parts.
Complex cunsqueeze(const Complex& z, i64 d) { return {unsqueeze(z.re, d), unsqueeze(z.im, d)}; }

/// narrow of both parts.
Complex cnarrow(const Complex& z, i64 dim, i64 start, i64 length) {
  return {narrow(z.re, dim, start, length), narrow(z.im, dim, start, length)};
}

/// select of both parts.
Complex cselect(const Complex& z, i64 dim, i64 index) { return {select(z.re, dim, index), select(z.im, dim, index)}; }

/// A [H, N/2] parameter holding the same row `values` [N/2] (Float64) for every channel, as Float32.
Tensor per_channel(const Tensor& values, i64 H) {
  return expand(unsqueeze(values.to(DType::Float32), 0), {H, values.shape()[0]}).contiguous();
}

}  // namespace

DplrLegS legs_dplr(std::int64_t N) {
  EMBER_CHECK(N >= 2 && N % 2 == 0, fmt::format("S4: legs_dplr needs an even N >= 2, got {}", N));
  const StateSpace legs = hippo_matrices(HippoKind::LegS, N);
  const std::vector<double> A = legs.A.to_vector<double>(), B = legs.B.to_vector<double>();
  const std::vector<double> p = legs_rank_correction(N).to_vector<double>();
  // iS with S = A + ppᵀ + ½I skew-symmetric: Hermitian, with eigenvalues μ where S has −iμ.
  std::vector<cd> iS(static_cast<std::size_t>(N * N));
  for (i64 r = 0; r < N; ++r)
    for (i64 c = 0; c < N; ++c) {
      const auto i = static_cast<std::size_t>(r * N + c);
      iS[i] = cd(0.0, A[i] + p[static_cast<std::size_t>(r)] * p[static_cast<std::size_t>(c)] + (r == c ? 0.5 : 0.0));
    }
  std::vector<cd> vectors;
  const std::vector<double> mu = hermitian_eigen(iS, N, vectors);
  std::vector<i64> order(static_cast<std::size_t>(N));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](i64 a, i64 b) { return mu[static_cast<std::size_t>(a)] > mu[static_cast<std::size_t>(b)]; });
  const i64 M = N / 2;
  EMBER_CHECK(mu[static_cast<std::size_t>(order[static_cast<std::size_t>(M - 1)])] > 1e-8,
              fmt::format("S4: the normal part of LegS (N = {}) has a zero eigenvalue", N));
  std::vector<cd> lambda, Pt, Bt, V(static_cast<std::size_t>(N * M));
  for (i64 m = 0; m < M; ++m) {  // the μ > 0, largest first: λ = −½ − iμ, most negative imaginary part first
    const i64 j = order[static_cast<std::size_t>(m)];
    lambda.emplace_back(-0.5, -mu[static_cast<std::size_t>(j)]);
    cd vp = 0.0, vb = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const cd v = vectors[static_cast<std::size_t>(n * N + j)];
      V[static_cast<std::size_t>(n * M + m)] = v;
      vp += std::conj(v) * p[static_cast<std::size_t>(n)];
      vb += std::conj(v) * B[static_cast<std::size_t>(n)];
    }
    Pt.push_back(vp);
    Bt.push_back(vb);
  }
  return {complex_tensor(lambda, {M}), complex_tensor(Pt, {M}), complex_tensor(Bt, {M}), complex_tensor(V, {N, M})};
}

S4::S4(const MixerConfig& c) : SequenceMixer("S4"), d_model(c.d_model), d_state(checked_d_state(c)) {
  EMBER_CHECK(d_model > 0, fmt::format("S4: d_model must be > 0, got {}", d_model));
  const i64 H = d_model, M = d_state / 2;
  const DplrLegS init = legs_dplr(d_state);
  log_dt =
      register_parameter("log_dt", rand({H}, DType::Float32, Device::cpu(), std::log(0.001), std::log(0.1), c.gen));
  log_A_real = register_parameter("log_A_real", per_channel(log(-init.lambda.re), H));
  A_imag = register_parameter("A_imag", per_channel(init.lambda.im, H));
  P_re = register_parameter("P_re", per_channel(init.P.re, H));
  P_im = register_parameter("P_im", per_channel(init.P.im, H));
  B_re = register_parameter("B_re", per_channel(init.B.re, H));
  B_im = register_parameter("B_im", per_channel(init.B.im, H));
  const double sd = std::sqrt(0.5);
  C_re = register_parameter("C_re", randn({H, M}, DType::Float32, Device::cpu(), 0.0, sd, c.gen));
  C_im = register_parameter("C_im", randn({H, M}, DType::Float32, Device::cpu(), 0.0, sd, c.gen));
  D = register_parameter("D", randn({H}, DType::Float32, Device::cpu(), 0.0, 1.0, c.gen));
  output_linear = register_module("output_linear", std::make_shared<Linear>(H, 2 * H, c.bias, c.gen));
}

Complex S4::lambda() const { return {-exp(log_A_real), A_imag}; }

Tensor S4::delta() const { return exp(log_dt); }

std::pair<Complex, Complex> S4::discretize() const {
  const Complex lam = with_conjugates(lambda());                             // [H, N]
  const Complex P = with_conjugates({P_re, P_im});                           // [H, N]
  const Complex B = with_conjugates({B_re, B_im});                           // [H, N]
  const Tensor two_over_dt = unsqueeze(2.0 / delta(), 1);                    // [H, 1]
  const Complex d_inv = reciprocal(Complex{two_over_dt - lam.re, -lam.im});  // diag(2/Δ − Λ)⁻¹
  const Complex left = d_inv * P, right = d_inv * conj(P);                   // D⁻¹P (column), P*D⁻¹ (row)
  Complex denom = sum(right * P, {1}, true);                                 // [H, 1]: P*D⁻¹P
  denom.re = denom.re + 1.0;
  const Tensor I = eye(d_state, -1, log_dt.dtype(), log_dt.device());
  // (2/Δ − A)⁻¹ = D⁻¹ − D⁻¹P P*D⁻¹ / (1 + P*D⁻¹P), [H, N, N].
  const Complex resolvent =
      cunsqueeze(d_inv, 1) * I - cunsqueeze(left, 2) * cunsqueeze(right, 1) / cunsqueeze(denom, 2);
  const Tensor four_over_dt = unsqueeze(2.0 * two_over_dt, 2);  // [H, 1, 1]
  const Complex A_bar = {four_over_dt * resolvent.re - I, four_over_dt * resolvent.im};
  const Complex B_bar = cselect(cmatmul(resolvent, cunsqueeze(B, 2)), 2, 0) * scalar_tensor(2.0, log_dt.dtype());
  return {A_bar, B_bar};
}

Complex S4::c_tilde(std::int64_t L) const {
  EMBER_CHECK(L >= 1, fmt::format("S4: kernel length must be >= 1, got {}", L));
  const Complex C = cunsqueeze(with_conjugates({C_re, C_im}), 1);  // [H, 1, N]
  Complex power = discretize().first;                              // Ā^(2^j)
  Complex C_power = C;                                             // C Ā^(the bits of L seen so far)
  for (i64 bits = L;;) {
    if (bits & 1) C_power = cmatmul(C_power, power);
    bits >>= 1;
    if (bits == 0) break;
    power = cmatmul(power, power);
  }
  return cselect(cnarrow(C - C_power, 2, 0, d_state / 2), 1, 0);  // [H, N/2]
}

Tensor S4::kernel(std::int64_t L) const {
  const Complex Ct = c_tilde(L);
  const i64 K = L / 2 + 1;
  std::vector<double> w_re, w_im;  // ω_k = e^{−2πik/L}, k = 0..L/2
  for (i64 k = 0; k < K; ++k) {
    const double angle = -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(L);
    w_re.push_back(std::cos(angle));
    w_im.push_back(std::sin(angle));
  }
  const Complex omega = {from_vector(w_re, {K}, log_dt.dtype()), from_vector(w_im, {K}, log_dt.dtype())};
  const Complex one_plus = {omega.re + 1.0, omega.im}, one_minus = {1.0 - omega.re, -omega.im};  // [K]
  // Cauchy denominators g_n(ω) = (2/Δ)(1 − ω) − (1 + ω)λ_n, for λ_n and for conj(λ_n): [H, K, N/2].
  const Complex lam = cunsqueeze(lambda(), 1);                                                // [H, 1, N/2]
  const Complex scaled = cunsqueeze(one_minus, 1) * reshape(2.0 / delta(), {d_model, 1, 1});  // [H, K, 1]
  const Complex s = cunsqueeze(one_plus, 1);                                                  // [K, 1]
  const Complex inv_g = reciprocal(scaled - s * lam), inv_g_conj = reciprocal(scaled - s * conj(lam));
  // The numerators a_n b_n of r_{C̃B}, r_{C̃P}, r_{P*B}, r_{P*P} as the columns of [H, N/2, 4].
  const Complex P = {P_re, P_im}, B = {B_re, B_im}, Pc = conj(P);
  const std::vector<Complex> v = {Ct * B, Ct * P, Pc * B, Pc * P};
  std::vector<Tensor> v_re, v_im;
  for (const Complex& z : v) {
    v_re.push_back(z.re);
    v_im.push_back(z.im);
  }
  const Complex V = {stack(v_re, 2), stack(v_im, 2)};
  // Σ over the kept modes and their conjugates: the conjugate mode's numerator is conj(a_n b_n).
  const Complex r = cmatmul(inv_g, V) + cmatmul(inv_g_conj, conj(V));  // [H, K, 4]
  // Q = P for LegS, so the Woodbury terms r_{Q*B}, r_{Q*P} are r_{P*B}, r_{P*P}.
  const Complex r_CB = cselect(r, 2, 0), r_CP = cselect(r, 2, 1), r_PB = cselect(r, 2, 2), r_PP = cselect(r, 2, 3);
  Complex denom = one_plus * r_PP;
  denom.re = denom.re + 1.0;
  const Complex K_hat = r_CB - one_plus * r_CP * r_PB / denom;
  return irfft(K_hat * scalar_tensor(2.0, log_dt.dtype()), L);  // [H, L]
}

Tensor S4::output_layer(const Tensor& y) const { return glu(output_linear->forward(gelu(y))); }

Tensor S4::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == d_model,
              fmt::format("S4: expected x [B, T, {}], got {}", d_model, shape_str(x.shape())));
  const Tensor u = transpose(x, 1, 2);  // [B, H, T]
  const Tensor y = fft_conv(u, kernel(x.shape()[1])) + unsqueeze(D, 1) * u;
  return output_layer(transpose(y, 1, 2));
}

std::unique_ptr<MixerState> S4::init_state(std::int64_t batch, std::int64_t max_len) const {
  EMBER_CHECK(batch > 0 && max_len > 0,
              fmt::format("S4: init_state needs batch > 0 and max_len > 0, got {} and {}", batch, max_len));
  auto state = std::make_unique<S4State>();
  const Shape s = {batch, d_model, d_state / 2};
  state->x = {zeros(s, D.dtype(), D.device()), zeros(s, D.dtype(), D.device())};
  return state;
}

Tensor S4::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* st = dynamic_cast<S4State*>(&state);
  EMBER_CHECK(st != nullptr, "S4: step needs the state made by its init_state");
  const std::int64_t B = st->x.re.shape()[0], M = d_state / 2;
  EMBER_CHECK(x_t.dim() == 2 && x_t.shape()[0] == B && x_t.shape()[1] == d_model,
              fmt::format("S4: step expected x_t [{}, {}], got {}", B, d_model, shape_str(x_t.shape())));
  const auto discrete = discretize();
  const Complex& A_bar = discrete.first;
  const Complex A11 = cnarrow(cnarrow(A_bar, 1, 0, M), 2, 0, M), A12 = cnarrow(cnarrow(A_bar, 1, 0, M), 2, M, M);
  const Complex B1 = cnarrow(discrete.second, 1, 0, M);                          // [H, N/2]
  const Complex x = cunsqueeze(st->x, 3);                                        // [B, H, N/2, 1]
  const Complex next = cmatmul(A11, x) + cmatmul(A12, conj(x));                  // Ā₁₁ x + Ā₁₂ conj(x)
  st->x = cselect(next, 3, 0) + B1 * unsqueeze(x_t, 2);                          // + B̄₁ u_t
  const Tensor y = 2.0 * real(sum(Complex{C_re, C_im} * st->x, {2})) + D * x_t;  // 2·Re(C x) + D u_t
  st->position += 1;
  return output_layer(y);
}

std::string S4::extra_repr() const { return fmt::format("d_model={}, d_state={}", d_model, d_state); }

}  // namespace ember::nn
