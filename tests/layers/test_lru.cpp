/// \file
/// \brief nn::LRU (technique notes §7c) against computations written here in std::complex<double>: forward's FFT
/// convolution against the sequential recurrence x_k = λ x_{k−1} + γ ⊙ (B u_k), y_k = Re(C x_k) + D ⊙ u_k followed by
/// GELU and GLU in loops (oracle 3), step against forward, the ring init (|λ| ∈ [r_min, r_max], |λ|² uniform by a
/// chi-square test, arg λ ∈ [0, max_phase), γ = √(1 − |λ|²); oracle 1), the stationary E|x_j|² = Σ_h |B_jh|² under
/// white noise for |λ| ≈ 0.5 and 0.99 (oracle 2), causality up to the FFT's roundoff, Float64 gradcheck, and bad
/// options and shapes throwing ember::Error naming LRU.
#include <algorithm>
#include <array>
#include <cmath>
#include <complex>
#include <numbers>

#include "layer_helpers.h"
#include "reference_layers.h"
#include "layers/ssm/lru.h"

using namespace ember;
using namespace ember::test;
using i64 = std::int64_t;
using cd = std::complex<double>;
using Vec = std::vector<double>;

namespace {

/// An LRU config with H = d_model, N = d_state and extra options, weights from a generator seeded with `seed` (one
/// shared generator, reseeded by every call: build the layer before the next call).
nn::MixerConfig lru_config(i64 d_model, i64 d_state, std::map<std::string, double> options = {},
                           std::uint64_t seed = 0) {
  static Generator gen(0);
  gen = Generator(seed);
  nn::MixerConfig c;
  c.d_model = d_model;
  options["d_state"] = static_cast<double>(d_state);
  c.options = options;
  c.gen = &gen;
  return c;
}

/// The layer's parameters read out as complex doubles.
struct Params {
  std::vector<cd> lambda;          ///< λ_j = exp(−exp(ν_log) + i·exp(θ_log))
  Vec gamma;                       ///< γ_j = exp(γ_log)
  std::vector<std::vector<cd>> B;  ///< B[j][h]
  std::vector<std::vector<cd>> C;  ///< C[h][j]
  Vec D;                           ///< D_h
};

/// m's parameters as a Params.
Params params_of(const nn::LRU& m) {
  const i64 H = m.d_model, N = m.d_state;
  const Vec nu = m.nu_log.to_vector<double>(), th = m.theta_log.to_vector<double>(),
            gl = m.gamma_log.to_vector<double>();
  const Vec br = m.B_re.to_vector<double>(), bi = m.B_im.to_vector<double>();
  const Vec cr = m.C_re.to_vector<double>(), ci = m.C_im.to_vector<double>();
  Params p{{}, {}, std::vector<std::vector<cd>>(N), std::vector<std::vector<cd>>(H), m.D.to_vector<double>()};
  for (i64 j = 0; j < N; ++j) {
    p.lambda.push_back(std::exp(cd(-std::exp(nu[j]), std::exp(th[j]))));
    p.gamma.push_back(std::exp(gl[j]));
    for (i64 h = 0; h < H; ++h) p.B[j].push_back(cd(br[j * H + h], bi[j * H + h]));
  }
  for (i64 h = 0; h < H; ++h)
    for (i64 j = 0; j < N; ++j) p.C[h].push_back(cd(cr[h * N + j], ci[h * N + j]));
  return p;
}

/// The sequential recurrence on u [B, T, H]: the states x [B, T, N] (as re, im pairs: [B, T, N, 2]) and the layer's
/// output (GELU erf form, Linear W z + b, GLU a·σ(g)) [B, T, H].
std::pair<Vec, Vec> naive_lru(const nn::LRU& m, const Vec& u, i64 B, i64 T) {
  const Params p = params_of(m);
  const i64 H = m.d_model, N = m.d_state;
  Vec states, ys;
  for (i64 b = 0; b < B; ++b) {
    std::vector<cd> x(N, 0.0);
    for (i64 t = 0; t < T; ++t) {
      const double* ut = &u[(b * T + t) * H];
      for (i64 j = 0; j < N; ++j) {
        cd Bu = 0.0;
        for (i64 h = 0; h < H; ++h) Bu += p.B[j][h] * ut[h];
        x[j] = p.lambda[j] * x[j] + p.gamma[j] * Bu;
        states.push_back(x[j].real());
        states.push_back(x[j].imag());
      }
      for (i64 h = 0; h < H; ++h) {
        cd Cx = 0.0;
        for (i64 j = 0; j < N; ++j) Cx += p.C[h][j] * x[j];
        ys.push_back(Cx.real() + p.D[h] * ut[h]);
      }
    }
  }
  return {states, ref::gelu_linear_glu(*m.output_linear, ys)};
}

/// Complex states [B, T, N] as interleaved (re, im) doubles [B, T, N, 2].
Vec interleave(const Complex& x) {
  const Vec re = x.re.to_vector<double>(), im = x.im.to_vector<double>();
  Vec out;
  for (std::size_t i = 0; i < re.size(); ++i) {
    out.push_back(re[i]);
    out.push_back(im[i]);
  }
  return out;
}

}  // namespace

TEST_CASE("lru: forward (FFT convolution) equals the sequential recurrence in std::complex loops (f64 1e-10)") {
  for (double r_min : {0.0, 0.9}) {
    CAPTURE(r_min);
    nn::LRU m(lru_config(3, 5, {{"r_min", r_min}, {"r_max", r_min == 0.0 ? 1.0 : 0.999}}, 1));
    m.to(DType::Float64);
    const i64 B = 2, T = 150;
    const Tensor u = normal({B, T, 3}, 2);
    const auto [states, out] = naive_lru(m, u.to_vector<double>(), B, T);
    const double e_states = max_diff(interleave(m.states(u)), states);
    const double e_out = max_diff(m.forward(u).to_vector<double>(), out);
    MESSAGE("r_min " << r_min << ": states " << e_states << ", output " << e_out);
    CHECK(e_states < 1e-10);
    CHECK(e_out < 1e-10);
  }
}

TEST_CASE("lru: step through the sequence equals forward (f32 1e-5, f64 1e-10)") {
  nn::LRU m(lru_config(4, 6, {{"r_min", 0.5}, {"r_max", 0.99}}, 3));
  const Tensor x32 = normal({2, 31, 4}, 4, DType::Float32);
  const double err32 = max_abs_diff(step_all(m, x32), m.forward(x32));
  m.to(DType::Float64);
  const Tensor x = normal({2, 31, 4}, 4);
  const double err64 = max_abs_diff(step_all(m, x), m.forward(x));
  MESSAGE("step vs forward: f32 " << err32 << ", f64 " << err64);
  CHECK(err32 < 1e-5);
  CHECK(err64 < 1e-10);
}

TEST_CASE("lru: ring init: r_min <= |lambda| <= r_max, |lambda|^2 uniform, phase in range, gamma = sqrt(1 - r^2)") {
  const i64 N = 20000, bins = 20;
  for (const auto& ring : {std::array{0.0, 1.0, 2.0 * std::numbers::pi}, std::array{0.9, 0.999, 0.314}}) {
    const double r_min = ring[0], r_max = ring[1], phase = ring[2];
    CAPTURE(r_min);
    nn::LRU m(lru_config(1, N, {{"r_min", r_min}, {"r_max", r_max}, {"max_phase", phase}}, r_min == 0.0 ? 5 : 6));
    const Params p = params_of(m);
    const Vec theta_log = m.theta_log.to_vector<double>();
    std::vector<i64> count(bins, 0);
    double gamma_err = 0.0, r_lo = 1.0, r_hi = 0.0, arg_hi = 0.0;
    for (i64 j = 0; j < N; ++j) {
      const double r = std::abs(p.lambda[j]), arg = std::exp(theta_log[j]);
      r_lo = std::min(r_lo, r);
      r_hi = std::max(r_hi, r);
      arg_hi = std::max(arg_hi, arg);
      gamma_err = std::max(gamma_err, std::abs(p.gamma[j] - std::sqrt(1.0 - r * r)) / std::max(p.gamma[j], 1e-3));
      // |λ|² mapped to [0, 1) by the ring, then binned.
      const double s = (r * r - r_min * r_min) / (r_max * r_max - r_min * r_min);
      ++count[std::clamp<i64>(static_cast<i64>(s * bins), 0, bins - 1)];
    }
    // Pearson's χ² with bins − 1 = 19 degrees of freedom: mean 19, sd √38; 5 sd above the mean is 49.8.
    double chi2 = 0.0;
    const double expected = static_cast<double>(N) / bins;
    for (i64 c : count) chi2 += (static_cast<double>(c) - expected) * (static_cast<double>(c) - expected) / expected;
    MESSAGE("r in [" << r_min << ", " << r_max << "]: |lambda| in [" << r_lo << ", " << r_hi << "], chi2 " << chi2
                     << ", gamma relative error " << gamma_err);
    CHECK(chi2 < 19.0 + 5.0 * std::sqrt(38.0));
    CHECK(r_lo >= r_min * (1 - 1e-6));
    CHECK(r_hi <= r_max * (1 + 1e-6));
    CHECK(arg_hi < phase * (1 + 1e-6));  // arg λ = exp(θ_log) > 0 by construction
    CHECK(gamma_err < 1e-4);             // Float32 parameters; relative to γ (≥ 1e-3 here)
  }
}

TEST_CASE("lru: white noise gives stationary E|x_j|^2 = sum_h |B_jh|^2 for |lambda| 0.5 and 0.99 (gamma)") {
  const i64 B = 64, T = 4096, burn = 1024, H = 2, N = 4;
  for (double r : {0.5, 0.99}) {
    CAPTURE(r);
    nn::LRU m(lru_config(H, N, {{"r_min", r}, {"r_max", r + 1e-4}}, 6));
    m.to(DType::Float64);
    const Params p = params_of(m);
    const Tensor u = normal({B, T, H}, 7);
    const Vec x = interleave(m.states(u));  // [B, T, N, 2]
    // The sample mean of |x|² over (T − burn)·B correlated samples: its relative sd is √((1 + r²)/(1 − r²) / n) for a
    // complex AR(1) process; allow 5 sd.
    const double n = static_cast<double>(B * (T - burn));
    const double tol = 5.0 * std::sqrt((1.0 + r * r) / (1.0 - r * r) / n);
    for (i64 j = 0; j < N; ++j) {
      double s = 0.0;
      for (i64 b = 0; b < B; ++b)
        for (i64 t = burn; t < T; ++t) {
          const std::size_t e = static_cast<std::size_t>(((b * T + t) * N + j) * 2);
          s += x[e] * x[e] + x[e + 1] * x[e + 1];
        }
      double expected = 0.0;
      for (i64 h = 0; h < H; ++h) expected += std::norm(p.B[j][h]);
      const double ratio = s / n / expected;
      MESSAGE("|lambda| " << r << ", mode " << j << ": E|x|^2 / sum |B|^2 = " << ratio << " (tolerance " << tol << ")");
      CHECK(std::abs(ratio - 1.0) < tol);
    }
  }
}

TEST_CASE("lru: causal up to FFT roundoff, Float64 gradcheck through input and every parameter (D 3, N 4, T 6)") {
  nn::LRU m(lru_config(3, 4, {}, 8));
  prepare_f64(m, 9);
  const Tensor x = normal({2, 6, 3}, 10);
  CHECK(check_causal(m, x, kFftRoundoff) == 6);
  check_mixer_gradcheck(m, narrow(x, 0, 0, 1));
}

TEST_CASE("lru: bad options and shapes throw ember::Error naming LRU") {
  for (double bad : {0.0, -1.0, 2.5}) {
    CAPTURE(bad);
    nn::MixerConfig c = lru_config(4, 4);
    c.options["d_state"] = bad;
    CHECK_THROWS_EMBER(nn::LRU{c}, "LRU: option d_state");
  }
  const std::vector<std::pair<double, double>> bad_rings = {{0.5, 0.5}, {0.9, 0.5}, {-0.1, 0.5}, {0.0, 1.5}};
  for (const auto& ring : bad_rings) {
    CAPTURE(ring.first);
    CAPTURE(ring.second);
    nn::MixerConfig c = lru_config(4, 4);
    c.options["r_min"] = ring.first;
    c.options["r_max"] = ring.second;
    CHECK_THROWS_EMBER(nn::LRU{c}, "LRU: options r_min, r_max");
  }
  CHECK_THROWS_EMBER(nn::LRU{lru_config(4, 4, {{"max_phase", 0.0}})}, "LRU: option max_phase");
  CHECK_THROWS_EMBER(nn::LRU{lru_config(4, 4, {{"r_max", std::nan("")}})}, "LRU: option r_max must be finite");
  CHECK_THROWS_EMBER(nn::LRU{lru_config(0, 4)}, "LRU: d_model");
  nn::LRU m(lru_config(4, 4));
  CHECK_THROWS_EMBER(m.forward(zeros({2, 5, 3})), "LRU: expected x [B, T, 4] with T > 0, got [2, 5, 3]");
  CHECK_THROWS_EMBER(m.forward(zeros({5, 4})), "LRU: expected x [B, T, 4]");
  CHECK_THROWS_EMBER(m.forward(zeros({1, 0, 4})), "LRU: expected x [B, T, 4]");
  auto state = m.init_state(2, 8);
  CHECK_THROWS_EMBER(m.step(zeros({3, 4}), *state), "LRU: step expected x_t [2, 4], got [3, 4]");
  CHECK_THROWS_EMBER(m.init_state(0, 8), "LRU: init_state");
}
