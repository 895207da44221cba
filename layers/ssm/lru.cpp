/// \file
/// \brief nn::LRU: the ring init ν_log = log(−½ log(U₁(r_max² − r_min²) + r_min²)), θ_log = log(max_phase·U₂),
/// γ_log = log √(1 − |λ|²); λ = exp(−exp(ν_log) + i·exp(θ_log)); the states x_k = Σ_{ℓ≤k} γ λ^ℓ ⊙ B u_{k−ℓ} by FFT
/// convolution, the recurrence x_k = λ ⊙ x_{k−1} + γ ⊙ (B u_k), the readout y = Re(C x) + D ⊙ u, GELU and GLU.
#include "layers/ssm/lru.h"

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

/// options[name], finite; throws naming LRU otherwise.
double finite_option(const MixerConfig& c, const std::string& name, double fallback) {
  const double v = c.option(name, fallback);
  EMBER_CHECK(std::isfinite(v), fmt::format("LRU: option {} must be finite, got {}", name, v));
  return v;
}

/// N from the config: a whole number ≥ 1 (default D).
std::int64_t checked_d_state(const MixerConfig& c) {
  const double v = finite_option(c, "d_state", static_cast<double>(c.d_model));
  EMBER_CHECK(v == std::round(v) && v >= 1, fmt::format("LRU: option d_state must be an integer >= 1, got {}", v));
  return static_cast<std::int64_t>(v);
}

/// The ring's radii and the largest phase, checked: 0 ≤ r_min < r_max ≤ 1, max_phase > 0.
struct Ring {
  double r_min;      ///< smallest |λ|
  double r_max;      ///< largest |λ|
  double max_phase;  ///< arg λ ∈ [0, max_phase)
};

/// The ring options of the config.
Ring checked_ring(const MixerConfig& c) {
  const Ring ring{finite_option(c, "r_min", 0.0), finite_option(c, "r_max", 1.0),
                  finite_option(c, "max_phase", 2.0 * std::numbers::pi)};
  EMBER_CHECK(0.0 <= ring.r_min && ring.r_min < ring.r_max && ring.r_max <= 1.0,
              fmt::format("LRU: options r_min, r_max must satisfy 0 <= r_min < r_max <= 1, got {} and {}", ring.r_min,
                          ring.r_max));
  EMBER_CHECK(ring.max_phase > 0.0, fmt::format("LRU: option max_phase must be > 0, got {}", ring.max_phase));
  return ring;
}

/// N(0, sd²) values of `shape` as a Float32 parameter value.
Tensor gaussian(const Shape& shape, double sd, Generator* gen) {
  return randn(shape, DType::Float32, Device::cpu(), 0.0, sd, gen);
}

}  // namespace

LRU::LRU(const MixerConfig& c) : SequenceMixer("LRU"), d_model(c.d_model), d_state(checked_d_state(c)) {
  EMBER_CHECK(d_model > 0, fmt::format("LRU: d_model must be > 0, got {}", d_model));
  const Ring ring = checked_ring(c);
  const std::int64_t H = d_model, N = d_state;
  // Uniforms drawn in Float64, so that U₁ = 0 (|λ| = r_min = 0, ν_log = +∞) is a 2^-53 event.
  const std::vector<double> u1 = rand({N}, DType::Float64, Device::cpu(), 0.0, 1.0, c.gen).to_vector<double>();
  const std::vector<double> u2 = rand({N}, DType::Float64, Device::cpu(), 0.0, 1.0, c.gen).to_vector<double>();
  std::vector<double> nu(u1.size()), theta(u1.size()), gamma(u1.size());
  for (std::size_t j = 0; j < u1.size(); ++j) {
    const double mod2 = u1[j] * (ring.r_max * ring.r_max - ring.r_min * ring.r_min) + ring.r_min * ring.r_min;  // |λ|²
    nu[j] = std::log(-0.5 * std::log(mod2));
    theta[j] = std::log(ring.max_phase * u2[j]);
    gamma[j] = 0.5 * std::log1p(-mod2);  // log √(1 − |λ|²)
  }
  nu_log = register_parameter("nu_log", from_vector(nu, {N}));
  theta_log = register_parameter("theta_log", from_vector(theta, {N}));
  gamma_log = register_parameter("gamma_log", from_vector(gamma, {N}));
  B_re = register_parameter("B_re", gaussian({N, H}, 1.0 / std::sqrt(2.0 * static_cast<double>(H)), c.gen));
  B_im = register_parameter("B_im", gaussian({N, H}, 1.0 / std::sqrt(2.0 * static_cast<double>(H)), c.gen));
  C_re = register_parameter("C_re", gaussian({H, N}, 1.0 / std::sqrt(static_cast<double>(N)), c.gen));
  C_im = register_parameter("C_im", gaussian({H, N}, 1.0 / std::sqrt(static_cast<double>(N)), c.gen));
  D = register_parameter("D", gaussian({H}, 1.0, c.gen));
  output_linear = register_module("output_linear", std::make_shared<Linear>(H, 2 * H, c.bias, c.gen));
}

Complex LRU::log_lambda() const { return {-exp(nu_log), exp(theta_log)}; }

Complex LRU::lambda() const { return exp(log_lambda()); }

Complex LRU::states(const Tensor& u) const {
  const std::int64_t T = u.shape()[1];
  std::int64_t n = 1;
  while (n < 2 * T) n *= 2;  // ≥ 2T − 1 samples: the circular convolution does not wrap into the kept outputs
  // The kernel K_jℓ = γ_j λ_j^ℓ = γ_j exp(ℓ log λ_j), [N, T]: exponents with ℓ ≥ 0 only, so it decays to 0.
  const Tensor ell = arange(0.0, static_cast<double>(T), 1.0, nu_log.dtype(), nu_log.device());
  const Complex log_lam = log_lambda();
  const Complex K =
      exp(Complex{unsqueeze(log_lam.re, 1), unsqueeze(log_lam.im, 1)} * ell) * unsqueeze(exp(gamma_log), 1);
  // The input of every mode, B u_k: [B, N, T].
  const Tensor a_re = transpose(linear(u, B_re), 1, 2), a_im = transpose(linear(u, B_im), 1, 2);
  const Complex A_re = rfft(a_re, n), A_im = rfft(a_im, n), K_re = rfft(K.re, n), K_im = rfft(K.im, n);
  // (a_re + i a_im) * (K_re + i K_im) = (a_re * K_re − a_im * K_im) + i (a_re * K_im + a_im * K_re), each * a
  // convolution, i.e. a product of spectra.
  const Tensor x_re = narrow(irfft(A_re * K_re - A_im * K_im, n), 2, 0, T);
  const Tensor x_im = narrow(irfft(A_re * K_im + A_im * K_re, n), 2, 0, T);
  return {transpose(x_re, 1, 2), transpose(x_im, 1, 2)};
}

Tensor LRU::readout(const Complex& x, const Tensor& u) const {
  return linear(x.re, C_re) - linear(x.im, C_im) + D * u;  // Re(C x) = C_re x_re − C_im x_im
}

Tensor LRU::output_layer(const Tensor& y) const { return glu(output_linear->forward(gelu(y))); }

Tensor LRU::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == d_model && x.shape()[1] > 0,
              fmt::format("LRU: expected x [B, T, {}] with T > 0, got {}", d_model, shape_str(x.shape())));
  return output_layer(readout(states(x), x));
}

std::unique_ptr<MixerState> LRU::init_state(std::int64_t batch, std::int64_t max_len) const {
  EMBER_CHECK(batch > 0 && max_len > 0,
              fmt::format("LRU: init_state needs batch > 0 and max_len > 0, got {} and {}", batch, max_len));
  auto state = std::make_unique<LRUState>();
  state->x = {zeros({batch, d_state}, D.dtype(), D.device()), zeros({batch, d_state}, D.dtype(), D.device())};
  return state;
}

Tensor LRU::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* st = dynamic_cast<LRUState*>(&state);
  EMBER_CHECK(st != nullptr, "LRU: step needs the state made by its init_state");
  const std::int64_t B = st->x.re.shape()[0];
  EMBER_CHECK(x_t.dim() == 2 && x_t.shape()[0] == B && x_t.shape()[1] == d_model,
              fmt::format("LRU: step expected x_t [{}, {}], got {}", B, d_model, shape_str(x_t.shape())));
  const Tensor gamma = exp(gamma_log);
  st->x = lambda() * st->x + Complex{linear(x_t, B_re), linear(x_t, B_im)} * gamma;  // x ← λ ⊙ x + γ ⊙ (B u_t)
  st->position += 1;
  return output_layer(readout(st->x, x_t));
}

std::string LRU::extra_repr() const { return fmt::format("d_model={}, d_state={}", d_model, d_state); }

}  // namespace ember::nn
