/// \file
/// \brief nn::S4D (technique notes §5) against independent computations written here with std::complex<double>:
/// the Vandermonde kernel K̄_ℓ = 2·Re Σ_n C_n B̄_n exp(Δλ_n ℓ) against a naive loop (and K̄_0 = 2·Re Σ C_n B̄_n,
/// oracle 3); forward (FFT convolution) against the naive recurrence x_k = Ā x_{k−1} + B̄ u_k,
/// y_k = 2·Re(C x_k) + D u_k followed by GELU, Linear and GLU in loops (oracle 1); step through the sequence
/// against forward (also at oracle 1's sizes); the S4D-Lin and S4D-Inv closed forms (and the reference's verified S4D-Inv values); Δ's range;
/// causality up to the FFT's roundoff; Float64 gradcheck; bad options and shapes throw ember::Error naming S4D.
#include <cmath>
#include <complex>
#include <numbers>
#include <numeric>

#include "layer_helpers.h"
#include "reference_layers.h"
#include "layers/ssm/s4d.h"

using namespace ember;
using namespace ember::test;
using i64 = std::int64_t;
using cd = std::complex<double>;
using Vec = std::vector<double>;

namespace {

/// An S4D config with H = d_model channels, N = d_state and the given init code, drawing its weights from a
/// generator seeded with `seed` (one shared generator, reseeded by every call: build the layer before the next call).
nn::MixerConfig s4d_config(i64 d_model, i64 d_state, int init, std::uint64_t seed = 0) {
  static Generator gen(0);
  gen = Generator(seed);
  nn::MixerConfig c;
  c.d_model = d_model;
  c.options = {{"d_state", static_cast<double>(d_state)}, {"init", init}};
  c.gen = &gen;
  return c;
}

/// The layer's SSM parameters read out as doubles: λ_n, C_n per channel ([h][n]), Δ and D per channel.
struct Params {
  std::vector<std::vector<cd>> lambda;  ///< λ_n = −exp(log_A_real) + i·A_imag, [h][n]
  std::vector<std::vector<cd>> C;       ///< C_n, [h][n]
  Vec dt;                               ///< Δ = exp(log_dt), [h]
  Vec D;                                ///< the skip D, [h]
};

/// m's parameters as a Params.
Params params_of(const nn::S4D& m) {
  const i64 H = m.d_model, M = m.d_state / 2;
  const Vec la = m.log_A_real.to_vector<double>(), ai = m.A_imag.to_vector<double>();
  const Vec cr = m.C_re.to_vector<double>(), ci = m.C_im.to_vector<double>();
  Params p{std::vector<std::vector<cd>>(H), std::vector<std::vector<cd>>(H), {}, m.D.to_vector<double>()};
  for (double l : m.log_dt.to_vector<double>()) p.dt.push_back(std::exp(l));
  for (i64 h = 0; h < H; ++h)
    for (i64 n = 0; n < M; ++n) {
      const auto i = static_cast<std::size_t>(h * M + n);
      p.lambda[h].push_back(cd(-std::exp(la[i]), ai[i]));
      p.C[h].push_back(cd(cr[i], ci[i]));
    }
  return p;
}

/// ZOH B̄ = (exp(Δλ) − 1)/λ with B = 1.
cd b_bar(cd lambda, double dt) { return (std::exp(dt * lambda) - 1.0) / lambda; }

/// K̄ [H][L] by the definition: 2·Re Σ_n C_n B̄_n exp(Δλ_n ℓ).
Vec naive_kernel(const Params& p, i64 L) {
  const auto H = static_cast<i64>(p.dt.size());
  Vec K;
  for (i64 h = 0; h < H; ++h)
    for (i64 l = 0; l < L; ++l) {
      cd s = 0.0;
      for (std::size_t n = 0; n < p.lambda[h].size(); ++n)
        s += p.C[h][n] * b_bar(p.lambda[h][n], p.dt[h]) * std::exp(p.dt[h] * p.lambda[h][n] * static_cast<double>(l));
      K.push_back(2.0 * s.real());
    }
  return K;
}

/// The whole layer by loops: the recurrence per channel, then GELU (erf form), Linear W z + b, GLU a·σ(b).
Vec naive_forward(const nn::S4D& m, const Vec& x, i64 B, i64 T) {
  const Params p = params_of(m);
  const i64 H = m.d_model;
  Vec ys;
  for (i64 b = 0; b < B; ++b) {
    std::vector<std::vector<cd>> state(H, std::vector<cd>(p.lambda[0].size(), 0.0));
    for (i64 t = 0; t < T; ++t) {
      for (i64 h = 0; h < H; ++h) {
        const double u = x[(b * T + t) * H + h];
        cd y = 0.0;
        for (std::size_t n = 0; n < state[h].size(); ++n) {
          const cd lam = p.lambda[h][n];
          state[h][n] = std::exp(p.dt[h] * lam) * state[h][n] + b_bar(lam, p.dt[h]) * u;
          y += p.C[h][n] * state[h][n];
        }
        ys.push_back(2.0 * y.real() + p.D[h] * u);
      }
    }
  }
  return ref::gelu_linear_glu(*m.output_linear, ys);
}

/// Δ drawn larger than the init's (log Δ ~ N(log 0.3, 0.5²)) so that the modes decay visibly within a few steps.
void widen_dt(nn::S4D& m, std::uint64_t seed) { fill_normal(m.log_dt, seed, std::log(0.3), 0.5); }

}  // namespace

TEST_CASE("s4d: the kernel equals a naive Vandermonde loop in std::complex (f64 1e-12), K0 = 2 Re sum C Bbar") {
  for (int init : {0, 1}) {
    CAPTURE(init);
    nn::S4D m(s4d_config(3, 16, init, 1));
    m.to(DType::Float64);
    widen_dt(m, 2);
    fill_normal(m.log_A_real, 3, std::log(0.5), 0.5);
    const i64 L = 37;
    const Params p = params_of(m);
    const Vec K = m.kernel(L).to_vector<double>();
    const double err = max_diff(K, naive_kernel(p, L));
    MESSAGE("kernel vs naive, init " << init << ": " << err);
    CHECK(err < 1e-12);
    for (i64 h = 0; h < 3; ++h) {  // oracle 3: K̄_0 = 2·Re Σ_n C_n B̄_n
      cd s = 0.0;
      for (std::size_t n = 0; n < p.C[h].size(); ++n) s += p.C[h][n] * b_bar(p.lambda[h][n], p.dt[h]);
      CHECK(std::abs(K[h * L] - 2.0 * s.real()) < 1e-12);
    }
  }
}

TEST_CASE("s4d: forward equals the naive recurrence with GELU, Linear and GLU in loops (f64 1e-10)") {
  for (int init : {0, 1}) {
    CAPTURE(init);
    nn::S4D m(s4d_config(4, 8, init, 4));
    m.to(DType::Float64);
    widen_dt(m, 5);
    const i64 B = 2, T = 23;
    const Tensor x = normal({B, T, 4}, 6);
    const double err = max_diff(m.forward(x).to_vector<double>(), naive_forward(m, x.to_vector<double>(), B, T));
    MESSAGE("forward vs naive recurrence, init " << init << ": " << err);
    CHECK(err < 1e-10);
  }
}

TEST_CASE("s4d: step through the sequence equals forward (f64 1e-10, f32 1e-5)") {
  for (int init : {0, 1}) {
    CAPTURE(init);
    nn::S4D m(s4d_config(4, 16, init, 7));
    widen_dt(m, 8);
    const Tensor x32 = normal({2, 19, 4}, 9, DType::Float32);
    const double err32 = max_abs_diff(step_all(m, x32), m.forward(x32));
    m.to(DType::Float64);
    const Tensor x = normal({2, 19, 4}, 9);
    const double err64 = max_abs_diff(step_all(m, x), m.forward(x));
    MESSAGE("step vs forward, init " << init << ": f32 " << err32 << ", f64 " << err64);
    CHECK(err32 < 1e-5);
    CHECK(err64 < 1e-10);
  }
  // Oracle 1's sizes (H = 3, N = 64, L = 256, the init's Δ): the reference measured ≈ 1e-14 for the SSM alone.
  for (int init : {0, 1}) {
    CAPTURE(init);
    nn::S4D m(s4d_config(3, 64, init, 14));
    m.to(DType::Float64);
    const Tensor x = normal({1, 256, 3}, 15);
    const double err = max_abs_diff(step_all(m, x), m.forward(x));
    MESSAGE("step vs forward, H 3, N 64, L 256, init " << init << ": " << err);
    CHECK(err < 1e-12);
  }
}

TEST_CASE("s4d: S4D-Lin and S4D-Inv initial modes match their closed forms and Delta lies in [0.001, 0.1]") {
  const i64 H = 64, N = 64;
  for (int init : {0, 1}) {
    CAPTURE(init);
    nn::S4D m(s4d_config(H, N, init, 10));
    const Params p = params_of(m);
    double err = 0.0;
    for (i64 h = 0; h < H; ++h)
      for (i64 n = 0; n < N / 2; ++n) {
        const double nd = static_cast<double>(n), pi = std::numbers::pi;
        const double im = init == 0 ? pi * nd : (N / pi) * (N / (2.0 * nd + 1.0) - 1.0);
        err = std::max(err, std::abs(p.lambda[h][n] - cd(-0.5, im)) / std::max(1.0, std::abs(im)));
      }
    CHECK(err < 1e-6);  // relative, Float32 parameters
    for (double dt : p.dt) {
      CHECK(dt >= 0.001 * (1 - 1e-6));
      CHECK(dt <= 0.1 * (1 + 1e-6));
    }
    Vec logs;
    for (double dt : p.dt) logs.push_back(std::log(dt));
    const double mean = std::accumulate(logs.begin(), logs.end(), 0.0) / H;
    CHECK(std::abs(mean - 0.5 * (std::log(0.001) + std::log(0.1))) < 0.6);  // U[log .001, log .1]: sd 1.33/√64
    // C_re, C_im ~ N(0, ½): the sample variance of 2048 draws is within 0.1 of ½ (sd of the estimate ≈ 0.016).
    for (const Tensor* part : {&m.C_re, &m.C_im}) {
      const Vec c = part->to_vector<double>();
      double ss = 0.0;
      for (double v : c) ss += v * v;
      CHECK(std::abs(ss / static_cast<double>(c.size()) - 0.5) < 0.1);
    }
  }
  // The reference's verified S4D-Inv values for N = 64 (technique notes §5): 1283.43, 414.23, 240.39, 165.88.
  nn::S4D inv(s4d_config(1, 64, 1));
  const Vec im = inv.A_imag.to_vector<double>();
  const Vec verified = {1283.43, 414.23, 240.39, 165.88};
  for (std::size_t n = 0; n < verified.size(); ++n) CHECK(std::abs(im[n] - verified[n]) < 0.006);
}

TEST_CASE("s4d: causal, and Float64 gradcheck through the input and every parameter (D = 4, N = 4, T = 7)") {
  nn::S4D m(s4d_config(4, 4, 0, 11));
  prepare_f64(m, 12);
  const Tensor x = normal({2, 7, 4}, 13);
  CHECK(check_causal(m, x, kFftRoundoff) == 7);
  check_mixer_gradcheck(m, narrow(x, 0, 0, 1));
}

TEST_CASE("s4d: bad options and shapes throw ember::Error naming S4D") {
  for (double bad : {3.0, 0.0, 1.0, -2.0, 2.5}) {
    CAPTURE(bad);
    nn::MixerConfig c = s4d_config(4, 2, 0);
    c.options["d_state"] = bad;
    CHECK_THROWS_EMBER(nn::S4D{c}, "S4D: option d_state");
  }
  for (double bad : {2.0, -1.0, 0.5}) {
    CAPTURE(bad);
    nn::MixerConfig c = s4d_config(4, 4, 0);
    c.options["init"] = bad;
    CHECK_THROWS_EMBER(nn::S4D{c}, "S4D: option init");
  }
  nn::S4D m(s4d_config(4, 4, 0));
  CHECK_THROWS_EMBER(m.forward(zeros({2, 5, 3})), "S4D: expected x [B, T, 4], got [2, 5, 3]");
  CHECK_THROWS_EMBER(m.forward(zeros({5, 4})), "S4D: expected x [B, T, 4], got [5, 4]");
  CHECK_THROWS_EMBER(m.kernel(0), "S4D: kernel length");
  auto state = m.init_state(2, 8);
  CHECK_THROWS_EMBER(m.step(zeros({3, 4}), *state), "S4D: step expected x_t [2, 4], got [3, 4]");
  CHECK_THROWS_EMBER(m.init_state(0, 8), "S4D: init_state");
}
