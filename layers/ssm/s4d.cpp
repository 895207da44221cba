/// \file
/// \brief nn::S4D: the S4D-Lin / S4D-Inv inits, zero-order hold Ā = exp(Δλ), B̄ = (exp(Δλ) − 1)/λ, the Vandermonde
/// kernel K̄_ℓ = 2·Re Σ_n C_n B̄_n exp(Δλ_n ℓ) convolved by FFT, the recurrence x_k = Ā x_{k−1} + B̄ u_k,
/// y_k = 2·Re(C x_k) + D u_k, and the GELU → Linear D -> 2D → GLU output layer.
#include "layers/ssm/s4d.h"

#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "autograd/fft.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "layers/functional.h"

namespace ember::nn {

namespace {

/// options[name] as an integer; throws naming S4D when it is not a whole number.
std::int64_t integer_option(const MixerConfig& c, const std::string& name, double fallback) {
  const double v = c.option(name, fallback);
  EMBER_CHECK(std::isfinite(v) && v == std::round(v), fmt::format("S4D: option {} must be an integer, got {}", name, v));
  return static_cast<std::int64_t>(v);
}

/// N from the config: even and ≥ 2.
std::int64_t checked_d_state(const MixerConfig& c) {
  const std::int64_t N = integer_option(c, "d_state", 64);
  EMBER_CHECK(N >= 2 && N % 2 == 0, fmt::format("S4D: option d_state must be even and >= 2, got {}", N));
  return N;
}

/// The init code from the config: 0 (Lin) or 1 (Inv).
S4DInit checked_init(const MixerConfig& c) {
  const std::int64_t code = integer_option(c, "init", 0);
  EMBER_CHECK(code == 0 || code == 1,
              fmt::format("S4D: option init must be 0 (S4D-Lin) or 1 (S4D-Inv), got {}", code));
  return static_cast<S4DInit>(code);
}

/// Im λ_n for n = 0..N/2−1, the same for every channel: πn (Lin) or (N/π)(N/(2n+1) − 1) (Inv), as [H, N/2].
Tensor initial_imag(S4DInit init, std::int64_t H, std::int64_t N) {
  std::vector<double> im(static_cast<std::size_t>(H * (N / 2)));
  const double pi = std::numbers::pi, Nd = static_cast<double>(N);
  for (std::int64_t h = 0; h < H; ++h)
    for (std::int64_t n = 0; n < N / 2; ++n)
      im[static_cast<std::size_t>(h * (N / 2) + n)] =
          init == S4DInit::Lin ? pi * static_cast<double>(n) : (Nd / pi) * (Nd / (2.0 * static_cast<double>(n) + 1.0) - 1.0);
  return from_vector(im, {H, N / 2});
}

}  // namespace

S4D::S4D(const MixerConfig& c)
    : SequenceMixer("S4D"), d_model(c.d_model), d_state(checked_d_state(c)), init(checked_init(c)) {
  EMBER_CHECK(d_model > 0, fmt::format("S4D: d_model must be > 0, got {}", d_model));
  const std::int64_t H = d_model, M = d_state / 2;
  log_dt = register_parameter("log_dt", rand({H}, DType::Float32, Device::cpu(), std::log(0.001), std::log(0.1), c.gen));
  log_A_real = register_parameter("log_A_real", full({H, M}, std::log(0.5)));
  A_imag = register_parameter("A_imag", initial_imag(init, H, d_state));
  const double sd = std::sqrt(0.5);
  C_re = register_parameter("C_re", randn({H, M}, DType::Float32, Device::cpu(), 0.0, sd, c.gen));
  C_im = register_parameter("C_im", randn({H, M}, DType::Float32, Device::cpu(), 0.0, sd, c.gen));
  D = register_parameter("D", randn({H}, DType::Float32, Device::cpu(), 0.0, 1.0, c.gen));
  output_linear = register_module("output_linear", std::make_shared<Linear>(H, 2 * H, c.bias, c.gen));
}

Complex S4D::lambda() const { return {-exp(log_A_real), A_imag}; }

Tensor S4D::delta() const { return exp(log_dt); }

std::pair<Complex, Complex> S4D::discretize() const {
  const Complex lam = lambda();
  const Tensor dt = unsqueeze(delta(), 1);  // [H, 1]
  const Complex A_bar = exp(lam * dt);       // exp(Δλ)
  const Complex B_bar = Complex{A_bar.re - 1.0, A_bar.im} / lam;  // (exp(Δλ) − 1)/λ · B, B = 1
  return {A_bar, B_bar};
}

Tensor S4D::kernel(std::int64_t L) const {
  EMBER_CHECK(L >= 1, fmt::format("S4D: kernel length must be >= 1, got {}", L));
  // Split ℓ = g·J + j (J ≈ √L): exp(Δλ ℓ) = exp(Δλ gJ)·exp(Δλ j), so the Vandermonde product becomes one batched
  // matrix product of the outer powers [H, G, N/2] (times C B̄) with the inner powers [H, N/2, J]. Nothing of size
  // H·N·L is ever stored; the result [H, G·J] is cut to L.
  const auto J = static_cast<std::int64_t>(std::ceil(std::sqrt(static_cast<double>(L))));
  const std::int64_t G = (L + J - 1) / J;
  const auto dtype = log_dt.dtype();
  const Complex dt_lam = lambda() * unsqueeze(delta(), 1);  // [H, N/2]
  const Complex CB = Complex{C_re, C_im} * discretize().second;
  const Tensor gJ = arange(0.0, static_cast<double>(G * J), static_cast<double>(J), dtype, log_dt.device());  // [G]
  const Tensor j = arange(0.0, static_cast<double>(J), 1.0, dtype, log_dt.device());                           // [J]
  const Complex outer =
      Complex{unsqueeze(CB.re, 1), unsqueeze(CB.im, 1)} *
      exp(Complex{unsqueeze(dt_lam.re, 1), unsqueeze(dt_lam.im, 1)} * unsqueeze(gJ, 1));  // [H, G, N/2]
  const Complex inner = exp(Complex{unsqueeze(dt_lam.re, 2), unsqueeze(dt_lam.im, 2)} * j);  // [H, N/2, J]
  const Tensor re = matmul(outer.re, inner.re) - matmul(outer.im, inner.im);                // [H, G, J]
  return 2.0 * narrow(reshape(re, {d_model, G * J}), 1, 0, L);                               // [H, L]
}

Tensor S4D::output_layer(const Tensor& y) const { return glu(output_linear->forward(gelu(y))); }

Tensor S4D::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == d_model,
              fmt::format("S4D: expected x [B, T, {}], got {}", d_model, shape_str(x.shape())));
  const Tensor u = transpose(x, 1, 2);  // [B, H, T]
  const Tensor y = fft_conv(u, kernel(x.shape()[1])) + unsqueeze(D, 1) * u;
  return output_layer(transpose(y, 1, 2));
}

std::unique_ptr<MixerState> S4D::init_state(std::int64_t batch, std::int64_t max_len) const {
  EMBER_CHECK(batch > 0 && max_len > 0,
              fmt::format("S4D: init_state needs batch > 0 and max_len > 0, got {} and {}", batch, max_len));
  auto state = std::make_unique<S4DState>();
  const Shape s = {batch, d_model, d_state / 2};
  state->x = {zeros(s, D.dtype(), D.device()), zeros(s, D.dtype(), D.device())};
  return state;
}

Tensor S4D::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* st = dynamic_cast<S4DState*>(&state);
  EMBER_CHECK(st != nullptr, "S4D: step needs the state made by its init_state");
  const std::int64_t B = st->x.re.shape()[0];
  EMBER_CHECK(x_t.dim() == 2 && x_t.shape()[0] == B && x_t.shape()[1] == d_model,
              fmt::format("S4D: step expected x_t [{}, {}], got {}", B, d_model, shape_str(x_t.shape())));
  const auto [A_bar, B_bar] = discretize();
  const Tensor u = unsqueeze(x_t, 2);              // [B, H, 1]
  st->x = A_bar * st->x + B_bar * u;               // x ← Ā ⊙ x + B̄ u_t
  const Tensor y = 2.0 * real(sum(Complex{C_re, C_im} * st->x, {2})) + D * x_t;  // 2·Re(C x) + D u_t
  st->position += 1;
  return output_layer(y);
}

std::string S4D::extra_repr() const {
  return fmt::format("d_model={}, d_state={}, init={}", d_model, d_state, init == S4DInit::Lin ? "lin" : "inv");
}

}  // namespace ember::nn
