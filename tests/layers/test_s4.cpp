/// \file
/// \brief nn::S4 (technique notes §5) against independent computations written here with std::complex<double>:
/// the DPLR kernel against the dense bilinear kernel C Ā^ℓ B̄ of N×N matrices (oracle 5: HiPPO-LegS itself in its
/// original basis at init, and a random DPLR system); S4 with P = 0 against a naive diagonal bilinear recurrence
/// with GELU, Linear and GLU in loops; forward (FFT convolution) against a direct O(L²) convolution of the same
/// kernel; step through the sequence against forward; the NPLR init A_LegS = V(Λ − PP*)V* (§4 oracle 6);
/// causality up to the FFT's roundoff; Float64 gradcheck; bad options and shapes throw ember::Error naming S4.
#include <cmath>
#include <complex>
#include <string>

#include "layer_helpers.h"
#include "reference_layers.h"
#include "layers/ssm/hippo.h"
#include "layers/ssm/s4.h"

using namespace ember;
using namespace ember::test;
using i64 = std::int64_t;
using cd = std::complex<double>;
using Vec = std::vector<double>;
using CVec = std::vector<cd>;

namespace {

/// An S4 config with H = d_model channels and N = d_state, drawing its weights from a generator seeded with
/// `seed` (one shared generator, reseeded by every call: build the layer before the next call).
nn::MixerConfig s4_config(i64 d_model, i64 d_state, std::uint64_t seed = 0) {
  static Generator gen(0);
  gen = Generator(seed);
  nn::MixerConfig c;
  c.d_model = d_model;
  c.options = {{"d_state", static_cast<double>(d_state)}};
  c.gen = &gen;
  return c;
}

/// A dense complex matrix, row-major.
struct CMat {
  i64 n = 0;
  CVec v;
  explicit CMat(i64 size) : n(size), v(static_cast<std::size_t>(size * size), 0.0) {}
  cd& operator()(i64 r, i64 c) { return v[static_cast<std::size_t>(r * n + c)]; }
  cd operator()(i64 r, i64 c) const { return v[static_cast<std::size_t>(r * n + c)]; }
};

/// M⁻¹ R for square M and R by Gauss-Jordan elimination with partial pivoting.
CMat solve(CMat M, CMat R) {
  const i64 n = M.n;
  for (i64 col = 0; col < n; ++col) {
    i64 piv = col;
    for (i64 r = col + 1; r < n; ++r)
      if (std::abs(M(r, col)) > std::abs(M(piv, col))) piv = r;
    for (i64 c = 0; c < n; ++c) {
      std::swap(M(col, c), M(piv, c));
      std::swap(R(col, c), R(piv, c));
    }
    for (i64 r = 0; r < n; ++r) {
      if (r == col) continue;
      const cd f = M(r, col) / M(col, col);
      for (i64 c = 0; c < n; ++c) {
        M(r, c) -= f * M(col, c);
        R(r, c) -= f * R(col, c);
      }
    }
  }
  for (i64 r = 0; r < n; ++r)
    for (i64 c = 0; c < n; ++c) R(r, c) /= M(r, r);
  return R;
}

/// One channel's SSM in a basis of N states: x' = Ax + Bu, y = Cx.
struct Dense {
  CMat A;
  CVec B, C;
};

/// The bilinear kernel K̄_ℓ = C Ā^ℓ B̄, ℓ < L, with Ā = (I − ΔA/2)⁻¹(I + ΔA/2), B̄ = (I − ΔA/2)⁻¹ΔB, in loops.
/// Returns the complex values (their imaginary parts are 0 for a real system).
CVec dense_kernel(const Dense& s, double dt, i64 L) {
  const i64 N = s.A.n;
  CMat left(N), right(N), rhs_b(N);
  for (i64 r = 0; r < N; ++r) {
    for (i64 c = 0; c < N; ++c) {
      left(r, c) = (r == c ? 1.0 : 0.0) - 0.5 * dt * s.A(r, c);
      right(r, c) = (r == c ? 1.0 : 0.0) + 0.5 * dt * s.A(r, c);
    }
    rhs_b(r, 0) = dt * s.B[static_cast<std::size_t>(r)];
  }
  const CMat A_bar = solve(left, right), B_bar = solve(left, rhs_b);
  CVec x(static_cast<std::size_t>(N)), K;
  for (i64 r = 0; r < N; ++r) x[static_cast<std::size_t>(r)] = B_bar(r, 0);
  for (i64 l = 0; l < L; ++l) {
    cd y = 0.0;
    for (i64 r = 0; r < N; ++r) y += s.C[static_cast<std::size_t>(r)] * x[static_cast<std::size_t>(r)];
    K.push_back(y);
    CVec next(static_cast<std::size_t>(N), 0.0);
    for (i64 r = 0; r < N; ++r)
      for (i64 c = 0; c < N; ++c) next[static_cast<std::size_t>(r)] += A_bar(r, c) * x[static_cast<std::size_t>(c)];
    x = next;
  }
  return K;
}

/// Re and Im parameter pair of channel h as complex numbers [N/2].
CVec channel(const Tensor& re, const Tensor& im, i64 h) {
  const Vec r = select(re, 0, h).to_vector<double>(), i = select(im, 0, h).to_vector<double>();
  CVec z;
  for (std::size_t n = 0; n < r.size(); ++n) z.emplace_back(r[n], i[n]);
  return z;
}

/// z [N/2] -> [N]: z followed by its conjugates.
CVec with_conj(const CVec& z) {
  CVec out = z;
  for (const cd& x : z) out.push_back(std::conj(x));
  return out;
}

/// Channel h of m in its full eigenbasis: A = diag(λ, conj λ) − P P*, B, C with their conjugates.
Dense eigenbasis_system(const nn::S4& m, i64 h) {
  CVec lam = channel(m.log_A_real, m.A_imag, h);
  for (cd& l : lam) l = cd(-std::exp(l.real()), l.imag());
  const CVec L = with_conj(lam), P = with_conj(channel(m.P_re, m.P_im, h));
  Dense s{CMat(m.d_state), with_conj(channel(m.B_re, m.B_im, h)), with_conj(channel(m.C_re, m.C_im, h))};
  for (i64 r = 0; r < m.d_state; ++r)
    for (i64 c = 0; c < m.d_state; ++c)
      s.A(r, c) = (r == c ? L[static_cast<std::size_t>(r)] : 0.0) -
                  P[static_cast<std::size_t>(r)] * std::conj(P[static_cast<std::size_t>(c)]);
  return s;
}

/// Δ of channel h.
double dt_of(const nn::S4& m, i64 h) { return std::exp(m.log_dt.to_vector<double>()[static_cast<std::size_t>(h)]); }

/// Δ drawn larger than the init's (log Δ ~ N(log 0.3, 0.5²)) so that the modes decay visibly within a few steps.
void widen_dt(nn::S4& m, std::uint64_t seed) { fill_normal(m.log_dt, seed, std::log(0.3), 0.5); }

/// Re-draws λ, P, B, C around O(1) values (Re λ ≈ −½, |Im λ| ≲ 3) so that no part of the DPLR system is special.
void random_dplr(nn::S4& m, std::uint64_t seed) {
  fill_normal(m.log_A_real, seed, std::log(0.5), 0.5);
  fill_normal(m.A_imag, seed + 1, 0.0, 2.0);
  for (const Tensor* t : {&m.P_re, &m.P_im, &m.B_re, &m.B_im}) fill_normal(*t, ++seed + 10, 0.0, 0.7);
}

/// Overwrites λ, P, B of every channel of a Float64 m with legs_dplr's Float64 values (the init stored them in
/// Float32, 1e-7 away from LegS).
void exact_legs(nn::S4& m) {
  NoGradGuard no_grad;
  const nn::DplrLegS d = nn::legs_dplr(m.d_state);
  const std::vector<std::pair<Tensor, Tensor>> pairs = {{m.log_A_real, log(-d.lambda.re)},
                                                        {m.A_imag, d.lambda.im},
                                                        {m.P_re, d.P.re},
                                                        {m.P_im, d.P.im},
                                                        {m.B_re, d.B.re},
                                                        {m.B_im, d.B.im}};
  for (auto [param, value] : pairs) param.copy_(expand(unsqueeze(value, 0), param.shape()));
}

}  // namespace

TEST_CASE("s4: the DPLR kernel equals the dense bilinear kernel C Abar^l Bbar of HiPPO-LegS (N 8, L 64, f64)") {
  // Oracle 5 at init: the real LegS matrices in their own basis, with the real output row C_orig = 2 Re(C V*).
  const i64 H = 2, N = 8, L = 64;
  nn::S4 m(s4_config(H, N, 1));
  m.to(DType::Float64);
  widen_dt(m, 2);
  exact_legs(m);
  const nn::StateSpace legs = nn::hippo_matrices(nn::HippoKind::LegS, N);
  const Vec A = legs.A.to_vector<double>(), B = legs.B.to_vector<double>();
  const nn::DplrLegS dplr = nn::legs_dplr(N);
  const Vec V_re = dplr.V.re.to_vector<double>(), V_im = dplr.V.im.to_vector<double>();
  const Vec K = m.kernel(L).to_vector<double>();
  for (i64 h = 0; h < H; ++h) {
    Dense s{CMat(N), CVec(B.begin(), B.end()), CVec(static_cast<std::size_t>(N), 0.0)};
    s.A.v.assign(A.begin(), A.end());
    const CVec C = channel(m.C_re, m.C_im, h);
    for (i64 n = 0; n < N; ++n)
      for (i64 k = 0; k < N / 2; ++k) {
        const auto i = static_cast<std::size_t>(n * (N / 2) + k);
        s.C[static_cast<std::size_t>(n)] +=
            2.0 * (C[static_cast<std::size_t>(k)] * std::conj(cd(V_re[i], V_im[i]))).real();
      }
    const CVec dense = dense_kernel(s, dt_of(m, h), L);
    double err = 0.0, scale = 0.0;
    for (i64 l = 0; l < L; ++l) {
      err = std::max(err, std::abs(K[static_cast<std::size_t>(h * L + l)] - dense[static_cast<std::size_t>(l)].real()));
      scale = std::max(scale, std::abs(dense[static_cast<std::size_t>(l)]));
    }
    MESSAGE("LegS channel " << h << ", Δ = " << dt_of(m, h) << ": max |DPLR − dense| = " << err << " (max |K| " << scale
                            << ")");
    CHECK(err < 1e-10 * std::max(1.0, scale));
  }
}

TEST_CASE("s4: the DPLR kernel equals the dense bilinear kernel of a random DPLR system in the eigenbasis (f64)") {
  const i64 H = 3, N = 8;
  nn::S4 m(s4_config(H, N, 3));
  m.to(DType::Float64);
  widen_dt(m, 4);
  random_dplr(m, 5);
  for (i64 L : {1, 2, 7, 64}) {
    CAPTURE(L);
    const Vec K = m.kernel(L).to_vector<double>();
    double err = 0.0, imag = 0.0;
    for (i64 h = 0; h < H; ++h) {
      const CVec dense = dense_kernel(eigenbasis_system(m, h), dt_of(m, h), L);
      for (i64 l = 0; l < L; ++l) {
        err =
            std::max(err, std::abs(K[static_cast<std::size_t>(h * L + l)] - dense[static_cast<std::size_t>(l)].real()));
        imag = std::max(imag, std::abs(dense[static_cast<std::size_t>(l)].imag()));
      }
    }
    MESSAGE("random DPLR, L = " << L << ": max |DPLR − dense| = " << err << ", max |Im dense| = " << imag);
    CHECK(err < 1e-10);
    CHECK(imag < 1e-12);  // the conjugate-symmetric system is a real one
  }
}

TEST_CASE("s4: with P = 0 S4 equals a naive diagonal bilinear recurrence with GELU, Linear and GLU in loops") {
  const i64 H = 3, N = 6, Bn = 2, T = 21;
  nn::S4 m(s4_config(H, N, 6));
  m.to(DType::Float64);
  widen_dt(m, 7);
  random_dplr(m, 8);
  {
    NoGradGuard no_grad;
    m.P_re.zero_();
    m.P_im.zero_();
  }
  const Tensor x = normal({Bn, T, H}, 9);
  const Vec xs = x.to_vector<double>(), D = m.D.to_vector<double>();
  Vec y(xs.size());
  for (i64 h = 0; h < H; ++h) {
    CVec lam = channel(m.log_A_real, m.A_imag, h);
    for (cd& l : lam) l = cd(-std::exp(l.real()), l.imag());
    const CVec Bc = channel(m.B_re, m.B_im, h), C = channel(m.C_re, m.C_im, h);
    const double dt = dt_of(m, h);
    for (i64 b = 0; b < Bn; ++b) {
      CVec state(lam.size(), 0.0);
      for (i64 t = 0; t < T; ++t) {
        const auto i = static_cast<std::size_t>((b * T + t) * H + h);
        cd out = 0.0;
        for (std::size_t n = 0; n < lam.size(); ++n) {  // x ← (1 + Δλ/2)/(1 − Δλ/2) x + ΔB/(1 − Δλ/2) u
          state[n] = (1.0 + 0.5 * dt * lam[n]) / (1.0 - 0.5 * dt * lam[n]) * state[n] +
                     dt * Bc[n] / (1.0 - 0.5 * dt * lam[n]) * xs[i];
          out += C[n] * state[n];
        }
        y[i] = 2.0 * out.real() + D[static_cast<std::size_t>(h)] * xs[i];
      }
    }
  }
  const double err = max_diff(m.forward(x).to_vector<double>(), ref::gelu_linear_glu(*m.output_linear, y));
  MESSAGE("P = 0 vs naive diagonal recurrence: " << err);
  CHECK(err < 1e-10);
}

TEST_CASE("s4: forward by FFT convolution equals a direct O(L^2) causal convolution of the kernel") {
  const i64 H = 3, N = 8, Bn = 2, T = 37;
  nn::S4 m(s4_config(H, N, 10));
  m.to(DType::Float64);
  widen_dt(m, 11);
  random_dplr(m, 12);
  const Tensor x = normal({Bn, T, H}, 13);
  const Vec xs = x.to_vector<double>(), K = m.kernel(T).to_vector<double>(), D = m.D.to_vector<double>();
  Vec y(xs.size());
  for (i64 b = 0; b < Bn; ++b)
    for (i64 t = 0; t < T; ++t)
      for (i64 h = 0; h < H; ++h) {
        double acc = D[static_cast<std::size_t>(h)] * xs[static_cast<std::size_t>((b * T + t) * H + h)];
        for (i64 j = 0; j <= t; ++j)
          acc += K[static_cast<std::size_t>(h * T + j)] * xs[static_cast<std::size_t>((b * T + t - j) * H + h)];
        y[static_cast<std::size_t>((b * T + t) * H + h)] = acc;
      }
  const double err = max_diff(m.forward(x).to_vector<double>(), ref::gelu_linear_glu(*m.output_linear, y));
  MESSAGE("FFT convolution vs direct convolution: " << err);
  CHECK(err < 1e-12);
}

TEST_CASE("s4: step through the sequence equals forward (f64 1e-10, f32 1e-5)") {
  for (bool random : {false, true}) {
    CAPTURE(random);
    nn::S4 m(s4_config(4, 16, 14));
    widen_dt(m, 15);
    if (random) random_dplr(m, 16);
    const Tensor x32 = normal({2, 19, 4}, 17, DType::Float32);
    const double err32 = max_abs_diff(step_all(m, x32), m.forward(x32));
    m.to(DType::Float64);
    const Tensor x = normal({2, 19, 4}, 17);
    const double err64 = max_abs_diff(step_all(m, x), m.forward(x));
    MESSAGE("step vs forward, " << std::string(random ? "random DPLR" : "LegS init") << ": f32 " << err32 << ", f64 "
                                << err64);
    CHECK(err32 < 1e-5);
    CHECK(err64 < 1e-10);
  }
  nn::S4 m(s4_config(3, 64, 18));  // the default N and the init's Δ over a longer sequence
  m.to(DType::Float64);
  const Tensor x = normal({1, 200, 3}, 19);
  const double err = max_abs_diff(step_all(m, x), m.forward(x));
  MESSAGE("step vs forward, H 3, N 64, L 200: " << err);
  CHECK(err < 1e-10);
}

TEST_CASE("s4: the NPLR init reconstructs HiPPO-LegS as V (Lambda - P P*) V* and fills every channel") {
  for (i64 N : {2, 8, 64}) {
    CAPTURE(N);
    const i64 M = N / 2;
    const nn::DplrLegS d = nn::legs_dplr(N);
    const Vec A = nn::hippo_matrices(nn::HippoKind::LegS, N).A.to_vector<double>();
    const Vec lr = d.lambda.re.to_vector<double>(), li = d.lambda.im.to_vector<double>();
    const Vec pr = d.P.re.to_vector<double>(), pi = d.P.im.to_vector<double>();
    const Vec vr = d.V.re.to_vector<double>(), vi = d.V.im.to_vector<double>();
    CVec lam, P, V(static_cast<std::size_t>(N * N));  // V = [V_half, conj V_half], [N, N]
    for (i64 k = 0; k < M; ++k) {
      lam.emplace_back(lr[static_cast<std::size_t>(k)], li[static_cast<std::size_t>(k)]);
      P.emplace_back(pr[static_cast<std::size_t>(k)], pi[static_cast<std::size_t>(k)]);
      CHECK(std::abs(lr[static_cast<std::size_t>(k)] + 0.5) < 1e-12);
      CHECK(li[static_cast<std::size_t>(k)] < 0.0);
      for (i64 n = 0; n < N; ++n) {
        const cd v(vr[static_cast<std::size_t>(n * M + k)], vi[static_cast<std::size_t>(n * M + k)]);
        V[static_cast<std::size_t>(n * N + k)] = v;
        V[static_cast<std::size_t>(n * N + M + k)] = std::conj(v);
      }
    }
    lam = with_conj(lam);
    P = with_conj(P);
    double err = 0.0, unitary = 0.0;
    for (i64 r = 0; r < N; ++r)
      for (i64 c = 0; c < N; ++c) {
        cd a = 0.0, vv = 0.0;  // (V (Λ − PP*) V*)_rc and (V* V)_rc
        for (i64 i = 0; i < N; ++i) {
          vv += std::conj(V[static_cast<std::size_t>(i * N + r)]) * V[static_cast<std::size_t>(i * N + c)];
          for (i64 j = 0; j < N; ++j) {
            const cd mid = (i == j ? lam[static_cast<std::size_t>(i)] : 0.0) -
                           P[static_cast<std::size_t>(i)] * std::conj(P[static_cast<std::size_t>(j)]);
            a += V[static_cast<std::size_t>(r * N + i)] * mid * std::conj(V[static_cast<std::size_t>(c * N + j)]);
          }
        }
        err = std::max(err, std::abs(a - A[static_cast<std::size_t>(r * N + c)]));
        unitary = std::max(unitary, std::abs(vv - (r == c ? 1.0 : 0.0)));
      }
    MESSAGE("N = " << N << ": max |V(Λ − PP*)V* − A_LegS| = " << err << ", max |V*V − I| = " << unitary);
    CHECK(err < 1e-10);
    CHECK(unitary < 1e-12);
  }
  // The layer holds the N = 8 values in every channel (Float32) and Δ in [0.001, 0.1].
  const i64 H = 5, N = 8;
  nn::S4 m(s4_config(H, N, 20));
  const nn::DplrLegS d = nn::legs_dplr(N);
  const std::vector<std::pair<const Tensor*, Tensor>> pairs = {
      {&m.A_imag, d.lambda.im}, {&m.P_re, d.P.re}, {&m.P_im, d.P.im}, {&m.B_re, d.B.re}, {&m.B_im, d.B.im}};
  for (const auto& [param, want] : pairs)
    for (i64 h = 0; h < H; ++h)
      CHECK(max_diff(select(*param, 0, h).to_vector<double>(), want.to_vector<double>()) < 1e-5);
  for (double la : m.log_A_real.to_vector<double>()) CHECK(std::abs(std::exp(la) - 0.5) < 1e-7);
  for (double l : m.log_dt.to_vector<double>()) {
    CHECK(std::exp(l) >= 0.001 * (1 - 1e-6));
    CHECK(std::exp(l) <= 0.1 * (1 + 1e-6));
  }
}

TEST_CASE("s4: causal, and Float64 gradcheck through the input and every parameter (D = 3, N = 4, T = 6)") {
  nn::S4 m(s4_config(3, 4, 21));
  prepare_f64(m, 22);
  const Tensor x = normal({2, 6, 3}, 23);
  CHECK(check_causal(m, x, kFftRoundoff) == 6);
  check_mixer_gradcheck(m, narrow(x, 0, 0, 1));
}

TEST_CASE("s4: bad options and shapes throw ember::Error naming S4") {
  for (double bad : {3.0, 0.0, 1.0, -2.0, 2.5}) {
    CAPTURE(bad);
    nn::MixerConfig c = s4_config(4, 2);
    c.options["d_state"] = bad;
    CHECK_THROWS_EMBER(nn::S4{c}, "S4: option d_state");
  }
  nn::MixerConfig zero = s4_config(0, 4);
  CHECK_THROWS_EMBER(nn::S4{zero}, "S4: d_model must be > 0");
  CHECK_THROWS_EMBER(nn::legs_dplr(5), "S4: legs_dplr needs an even N");
  nn::S4 m(s4_config(4, 4));
  CHECK_THROWS_EMBER(m.forward(zeros({2, 5, 3})), "S4: expected x [B, T, 4], got [2, 5, 3]");
  CHECK_THROWS_EMBER(m.forward(zeros({5, 4})), "S4: expected x [B, T, 4], got [5, 4]");
  CHECK_THROWS_EMBER(m.kernel(0), "S4: kernel length");
  auto state = m.init_state(2, 8);
  CHECK_THROWS_EMBER(m.step(zeros({3, 4}), *state), "S4: step expected x_t [2, 4], got [3, 4]");
  CHECK_THROWS_EMBER(m.init_state(0, 8), "S4: init_state");
}
