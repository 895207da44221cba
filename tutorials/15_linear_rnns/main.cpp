// Tutorial 15: linear RNNs side by side — RWKV-4 (Peng et al. 2023), RetNet (Sun et al. 2023) and the LRU (Orvieto
// et al. 2023). Each keeps a fixed-size state that a linear recurrence updates once per token, and each also has a
// parallel form for training. The program measures the three states against a KV cache; checks RWKV's stable WKV
// kernel against the T×T formula and against a scalar running-maximum loop, and shows the formula overflowing where
// the kernel does not; checks RetNet's parallel, recurrent and chunkwise forms against each other and measures each
// head's memory horizon; checks the LRU's ring initialisation, its FFT convolution against a complex loop, and what
// γ normalisation does to the state's power; and runs each mixer, built by name, both ways (forward and step).
// Run: tutorial_15_linear_rnns [--short] [--out DIR]. The page README.md next to this file explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include "ember.h"
#include "layers/attention/multi_head_attention.h"
#include "layers/ssm/lru.h"
#include "layers/ssm/retention.h"
#include "layers/ssm/rwkv.h"
#include "train/svg_plot.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

using cd = std::complex<double>;
using Vec = std::vector<double>;

constexpr std::int64_t kD = 64;  // d_model of every layer in sections 1 and 5
constexpr std::int64_t kH = 4;   // RetNet's heads

double max_diff(const Tensor& a, const Tensor& b) { return max(abs(a.detach() - b.detach())).item(); }

Tensor normal(const Shape& shape, std::uint64_t seed, DType dtype = DType::Float64, double mean = 0.0) {
  Generator gen(seed);
  return randn(shape, dtype, Device::cpu(), mean, 1.0, &gen);
}

// A config for make_mixer(name): D = 64, 4 heads, and the options each mixer reads.
nn::MixerConfig config_for(const std::string& name, std::int64_t max_len = 64) {
  static Generator gen(15);
  nn::MixerConfig c;
  c.d_model = kD;
  c.n_heads = kH;
  c.max_len = max_len;
  if (name == "retnet") c.options = {{"chunk", 16}};
  if (name == "lru") c.options = {{"d_state", 64}, {"r_min", 0.9}, {"r_max", 0.999}};
  c.gen = &gen;
  return c;
}

// Redraws every projection matrix N(0, 1/fan_in): RWKV starts W_k, W_r and W_o at zero, which would make its
// output 0 and every comparison below trivially true.
void randomize_projections(nn::Module& m, std::uint64_t seed) {
  NoGradGuard no_grad;
  for (const auto& [name, p] : m.named_parameters()) {
    if (p.dim() != 2 || !name.ends_with("weight")) continue;
    Generator gen(++seed);
    Tensor handle = p;
    handle.copy_(randn(p.shape(), p.dtype(), Device::cpu(), 0.0, 1.0 / std::sqrt(double(p.shape()[1])), &gen));
  }
}

// The nonzero entries of x.
std::int64_t nonzeros(const Tensor& x) {
  const Vec v = x.to_vector<double>();
  return std::count_if(v.begin(), v.end(), [](double e) { return e != 0.0; });
}

// Every number a decoding state holds for one sequence (batch 1), whatever the mixer. A KV cache is allocated for
// max_len tokens and filled as tokens arrive, so for it the filled (nonzero) entries are counted.
std::int64_t state_numbers(const nn::MixerState& s) {
  if (auto* r = dynamic_cast<const nn::RWKVTimeMixState*>(&s))
    return r->x_prev.numel() + r->a.numel() + r->b.numel() + r->p.numel();
  if (auto* r = dynamic_cast<const nn::RetentionState*>(&s)) return r->S.numel();
  if (auto* r = dynamic_cast<const nn::LRUState*>(&s)) return r->x.re.numel() + r->x.im.numel();
  if (auto* r = dynamic_cast<const nn::KVCache*>(&s)) return nonzeros(r->k) + nonzeros(r->v);
  throw Error("state_numbers: unknown state");
}

// Steps m through x [B, T, D] token by token: the recurrent way.
Tensor step_all(const nn::SequenceMixer& m, const Tensor& x) {
  auto state = m.init_state(x.shape()[0], x.shape()[1]);
  std::vector<Tensor> ys;
  for (std::int64_t t = 0; t < x.shape()[1]; ++t) ys.push_back(m.step(select(x, 1, t), *state));
  return stack(ys, 1);
}

// Section 1: what each layer carries from one token to the next.
void state_sizes(tutorial::Claims& claims) {
  tutorial::section("1. One shape, three recurrences: the state each layer carries");
  const std::int64_t N = 64, d_k = kD / kH, d_v = 2 * kD / kH;
  struct Row {
    std::string name, formula;
    std::int64_t expected;
  };
  const std::vector<Row> rows = {{"rwkv", "x_prev, a, b, p: 4·D", 4 * kD},
                                 {"retnet", "S per head: H·d_k·d_v", kH * d_k * d_v},
                                 {"lru", "x ∈ C^N: 2·N reals", 2 * N}};
  std::printf("D = %lld; numbers per sequence and layer, measured from the state tensors:\n", (long long)kD);
  std::printf("%-8s %-24s %10s %10s %10s\n", "mixer", "state", "formula", "t = 0", "t = 100");
  const Tensor x = normal({1, 100, kD}, 1, DType::Float32);
  for (const Row& row : rows) {
    const auto m = nn::make_mixer(row.name, config_for(row.name, 100));
    auto state = m->init_state(1, 100);
    const std::int64_t at_start = state_numbers(*state);
    for (std::int64_t t = 0; t < 100; ++t) m->step(select(x, 1, t), *state);
    const std::int64_t at_100 = state_numbers(*state);
    std::printf("%-8s %-24s %10lld %10lld %10lld\n", row.name.c_str(), row.formula.c_str(), (long long)row.expected,
                (long long)at_start, (long long)at_100);
    claims.check(at_start == row.expected && at_100 == row.expected,
                 row.name + ": the state holds " + std::to_string(row.expected) + " numbers, at t = 0 and at t = 100");
  }
  const auto attention = nn::make_mixer("softmax", config_for("softmax", 100));
  auto cache = attention->init_state(1, 100);
  std::printf("softmax  KV cache, 2·t·D numbers, filled entries counted:");
  bool grows = true;
  for (std::int64_t t = 1; t <= 100; ++t) {
    attention->step(select(x, 1, t - 1), *cache);
    grows = grows && state_numbers(*cache) == 2 * t * kD;
    if (t == 1 || t == 16 || t == 100) std::printf("  t = %lld: %lld", (long long)t, (long long)state_numbers(*cache));
  }
  std::printf("\n");
  claims.check(grows, "softmax attention's KV cache holds 2·t·D numbers after t tokens, t = 1..100");
}

// ---- Section 2: RWKV ----

// One channel of WKV by RWKV-4's stable recurrence (wkv_cuda.cu). The state (a, b, p) stores the sums
// Σ e^{…} v and Σ e^{…} divided by e^p, p being the largest exponent seen: every exp below has argument ≤ 0, so
// nothing overflows, whatever k is. Written for any floating type F.
template <class F>
std::vector<F> wkv_channel(F w, F u, const std::vector<F>& k, const std::vector<F>& v) {
  F a = 0, b = 0, p = -std::numeric_limits<F>::max();
  std::vector<F> y;
  for (std::size_t t = 0; t < k.size(); ++t) {
    F q = std::max(p, u + k[t]);  // output: the current token gets the bonus u
    F e_old = std::exp(p - q), e_new = std::exp(u + k[t] - q);
    y.push_back((e_old * a + e_new * v[t]) / (e_old * b + e_new));
    q = std::max(p - w, k[t]);  // update: the past decays by e^{−w}, the current token enters without bonus
    e_old = std::exp(p - w - q), e_new = std::exp(k[t] - q);
    a = e_old * a + e_new * v[t];
    b = e_old * b + e_new;
    p = q;
  }
  return y;
}

// wkv of channel c of k, v [1, T, C] by wkv_channel<F>, as doubles.
template <class F>
Vec wkv_loop(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v, std::int64_t c) {
  const auto column = [c](const Tensor& x) {
    const Vec all = select(select(x, 0, 0), 1, c).contiguous().to_vector<double>();
    return std::vector<F>(all.begin(), all.end());
  };
  const std::vector<F> y =
      wkv_channel<F>(F(w.to_vector<double>()[c]), F(u.to_vector<double>()[c]), column(k), column(v));
  return Vec(y.begin(), y.end());
}

// The largest |a_i − b_i| / max(1, |b_i|).
double max_rel_diff(const Vec& a, const Vec& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return worst;
}

// y [1, T, C] against wkv_loop<double> on every channel: the largest relative difference.
double max_diff_to_loop(const Tensor& y, const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v) {
  double worst = 0;
  for (std::int64_t c = 0; c < k.shape()[2]; ++c)
    worst = std::max(worst, max_rel_diff(select(select(y, 0, 0), 1, c).contiguous().to_vector<double>(),
                                         wkv_loop<double>(w, u, k, v, c)));
  return worst;
}

bool all_finite(const Tensor& x) {
  for (double v : x.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

void rwkv(tutorial::Claims& claims) {
  tutorial::section("2. RWKV: the WKV kernel, its overflow, and token shift");
  const std::int64_t T = 48, C = 8;
  const Tensor w = exp(0.5 * normal({C}, 2)), u = normal({C}, 3), v = normal({1, T, C}, 5);
  const Tensor k = normal({1, T, C}, 4);
  const Tensor stable = nn::wkv(w, u, k, v), masked = nn::wkv_reference(w, u, k, v);
  const double e_masked = max_diff(stable, masked), e_loop = max_diff_to_loop(stable, w, u, k, v);
  std::printf("Float64, T = %lld, C = %lld, k ~ N(0, 1):\n", (long long)T, (long long)C);
  std::printf("  max |wkv − wkv_reference (T×T masked)| = %.1e, max rel. |wkv − scalar loop| = %.1e\n", e_masked,
              e_loop);
  claims.check(e_masked < 1e-12 && e_loop < 1e-12,
               "the stable kernel equals the T×T masked formula and the running-maximum loop (to 1e-12)");

  // k around 100: e^{100} = 2.7e43 is past Float32's largest number, 3.4e38.
  const Tensor w32 = w.to(DType::Float32), u32 = u.to(DType::Float32), v32 = v.to(DType::Float32);
  const Tensor k32 = normal({1, T, C}, 4, DType::Float32, 100.0);
  const Tensor big_stable = nn::wkv(w32, u32, k32, v32), big_masked = nn::wkv_reference(w32, u32, k32, v32);
  std::int64_t bad = 0;
  for (double y : big_masked.to_vector<double>()) bad += std::isfinite(y) ? 0 : 1;
  const Tensor k64 = k32.to(DType::Float64);
  const double e_big = max_diff_to_loop(big_stable, w, u, k64, v);
  double e_float = 0;  // the scalar loop itself in float: the trick needs no wider type
  for (std::int64_t c = 0; c < C; ++c)
    e_float =
        std::max(e_float, max_rel_diff(wkv_loop<float>(w32, u32, k32, v32, c), wkv_loop<double>(w, u, k64, v, c)));
  std::printf("Float32, k ~ N(100, 1): wkv_reference gives %lld of %lld values inf or NaN; wkv gives %s;\n",
              (long long)bad, (long long)(T * C), all_finite(big_stable) ? "all finite" : "NON-FINITE values");
  std::printf("  max rel. |wkv − double loop| = %.1e, max rel. |float loop − double loop| = %.1e\n", e_big, e_float);
  claims.check(bad > 0, "with k ≈ 100 the naive formula overflows in Float32 (inf/NaN)");
  claims.check(
      all_finite(big_stable) && e_big < 1e-5 && e_float < 1e-5,
      "the stable kernel, and the scalar loop in float, stay finite there and match the loop in double (1e-5)");

  const Tensor x = normal({1, 5, 3}, 6), shifted = nn::token_shift(x);
  const double e_shift =
      std::max(max(abs(select(shifted, 1, 0))).item(), max_diff(narrow(shifted, 1, 1, 4), narrow(x, 1, 0, 4)));
  std::printf("token shift: row t of token_shift(x) is x_{t−1}, row 0 is zeros: max error %.1e\n", e_shift);
  claims.check(e_shift == 0.0, "token_shift moves every token one step later and puts zeros first");
}

// ---- Section 3: RetNet ----

void retnet(tutorial::Claims& claims, bool quick, const std::string& dir) {
  tutorial::section("3. RetNet: three forms of retention, and the decay per head");
  const nn::MultiScaleRetention layer(config_for("retnet"));
  const Vec gamma = layer.decays();
  const Tensor log_gamma = log(from_vector(gamma, {kH}, DType::Float64));

  const std::int64_t T = 64, d = 8;
  const Tensor q = normal({1, kH, T, d}, 7), k = normal({1, kH, T, d}, 8), v = normal({1, kH, T, 2 * d}, 9);
  const Tensor parallel = nn::retention_parallel(q, k, v, log_gamma);
  const double e_rec = max_diff(nn::retention_recurrent(q, k, v, log_gamma), parallel);
  double e_chunk = 0.0;
  for (std::int64_t chunk : {1, 5, 16, 64})
    e_chunk = std::max(e_chunk, max_diff(nn::retention_chunkwise(q, k, v, log_gamma, chunk), parallel));
  std::printf(
      "T = %lld, H = %lld, d_k = %lld, d_v = %lld, Float64:\n  max |recurrent − parallel| = %.1e, max |chunkwise"
      " − parallel| = %.1e (chunks 1, 5, 16, 64)\n",
      (long long)T, (long long)kH, (long long)d, (long long)(2 * d), e_rec, e_chunk);
  claims.check(e_rec < 1e-12 && e_chunk < 1e-12, "parallel = recurrent = chunkwise (to 1e-12)");

  // The horizon: with q = k = 1 and a single v = 1 at n = 0 the output is o_n = γ^n, and Σ_n o_n = 1/(1 − γ), the
  // number of tokens a head effectively remembers.
  const std::int64_t L = 4096;
  Vec impulse(kH * L, 0.0);
  for (std::int64_t h = 0; h < kH; ++h) impulse[h * L] = 1.0;
  const Tensor ones_qk = ones({1, kH, L, 1}, DType::Float64);
  const Tensor response =
      nn::retention_chunkwise(ones_qk, ones_qk, from_vector(impulse, {1, kH, L, 1}, DType::Float64), log_gamma, 64);
  const Vec horizon = sum(response, {0, 2, 3}).to_vector<double>();
  std::printf("head          γ_h     1 − 2^{−5−h}     Σ_n o_n (impulse, n < 4096)\n");
  double worst = 0.0;
  for (std::int64_t h = 0; h < kH; ++h) {
    const double closed = 1.0 - std::pow(2.0, -5.0 - double(h));
    std::printf("%4lld %12.6f %16.6f %15.2f = 1/(1 − γ_h) · %.5f\n", (long long)h, gamma[h], closed, horizon[h],
                horizon[h] * (1.0 - gamma[h]));
    worst = std::max({worst, std::abs(gamma[h] - closed), std::abs(horizon[h] * (1.0 - closed) - 1.0)});
  }
  claims.check(worst < 1e-3, "γ_h = 1 − 2^{−5−h}, and head h remembers 1/(1 − γ_h) = 2^{5+h} tokens (to 0.1%)");

  if (!dir.empty()) {
    Vec n, o;
    train::LinePlot plot("RetNet: a head's response to one token, o_n = γ_h^n", "n (tokens later)", "o_n");
    for (std::int64_t h = 0; h < kH; ++h) {
      n.clear(), o.clear();
      const Vec r = select(select(select(response, 0, 0), 0, h), 1, 0).to_vector<double>();
      for (std::int64_t t = 0; t < 1024; t += 4) n.push_back(double(t)), o.push_back(r[t]);
      plot.add("head " + std::to_string(h) + ", 1/(1 − γ) = " + std::to_string(1 << (5 + h)), n, o);
    }
    std::filesystem::create_directories(dir);
    plot.save(dir + "/retnet_decay.svg");
    std::printf("wrote %s/retnet_decay.svg\n", dir.c_str());
  }
  if (quick) return;

  // Cost of each form as T grows (full mode only; printed, not checked).
  std::printf("Float32, H = %lld, d_k = 16, d_v = 32, best of 3 (ms; the machine may be busy):\n", (long long)kH);
  std::printf("%6s %12s %12s %16s\n", "T", "parallel", "recurrent", "chunkwise (64)");
  for (std::int64_t t : {256, 512, 1024, 2048}) {
    const Tensor lg = log_gamma.to(DType::Float32), qt = normal({1, kH, t, 16}, 10, DType::Float32),
                 kt = normal({1, kH, t, 16}, 11, DType::Float32), vt = normal({1, kH, t, 32}, 12, DType::Float32);
    const double t_par = tutorial::best_seconds([&] { nn::retention_parallel(qt, kt, vt, lg); });
    const double t_rec = tutorial::best_seconds([&] { nn::retention_recurrent(qt, kt, vt, lg); });
    const double t_chunk = tutorial::best_seconds([&] { nn::retention_chunkwise(qt, kt, vt, lg, 64); });
    std::printf("%6lld %12.2f %12.2f %16.2f\n", (long long)t, 1e3 * t_par, 1e3 * t_rec, 1e3 * t_chunk);
  }
}

// ---- Section 4: LRU ----

// An LRU layer with H channels and N modes on the ring r_min ≤ |λ| ≤ r_max.
nn::LRU lru_layer(std::int64_t H, std::int64_t N, double r_min, double r_max, std::uint64_t seed) {
  Generator gen(seed);
  nn::MixerConfig c;
  c.d_model = H;
  c.options = {{"d_state", double(N)}, {"r_min", r_min}, {"r_max", r_max}};
  c.gen = &gen;
  return nn::LRU(c);
}

std::vector<cd> complex_vector(const Complex& z) {
  const Vec re = z.re.contiguous().to_vector<double>(), im = z.im.contiguous().to_vector<double>();
  std::vector<cd> out;
  for (std::size_t i = 0; i < re.size(); ++i) out.emplace_back(re[i], im[i]);
  return out;
}

// x_k = λ ⊙ x_{k−1} + γ ⊙ (B u_k) for u [1, T, H], in std::complex: the states [T][N].
std::vector<std::vector<cd>> lru_loop(const nn::LRU& m, const Tensor& u) {
  const std::int64_t H = m.d_model, N = m.d_state, T = u.shape()[1];
  const std::vector<cd> lambda = complex_vector(m.lambda());
  const Vec gamma = exp(m.gamma_log).to_vector<double>(), uv = u.to_vector<double>();
  const Vec b_re = m.B_re.to_vector<double>(), b_im = m.B_im.to_vector<double>();
  std::vector<std::vector<cd>> xs;
  std::vector<cd> x(N, 0.0);
  for (std::int64_t t = 0; t < T; ++t) {
    for (std::int64_t j = 0; j < N; ++j) {
      cd Bu = 0.0;
      for (std::int64_t h = 0; h < H; ++h) Bu += cd(b_re[j * H + h], b_im[j * H + h]) * uv[t * H + h];
      x[j] = lambda[j] * x[j] + gamma[j] * Bu;
    }
    xs.push_back(x);
  }
  return xs;
}

// E|x_j|² / Σ_h |B_jh|² for unit white noise, averaged over the modes: 1 with γ = √(1 − |λ|²), 1/(1 − |λ|²) without.
double stationary_power(const nn::LRU& m, std::int64_t batch, std::int64_t T, std::int64_t burn) {
  const std::int64_t H = m.d_model, N = m.d_state;
  const Complex x = m.states(normal({batch, T, H}, 13));
  const Tensor power = narrow(abs2(x), 1, burn, T - burn);  // |x_j|² after the start-up transient
  const Vec mean_power = sum(power, {0, 1}).to_vector<double>();
  const Vec b2 = sum(m.B_re * m.B_re + m.B_im * m.B_im, {1}).to_vector<double>();
  double ratio = 0.0;
  for (std::int64_t j = 0; j < N; ++j) ratio += mean_power[j] / double(batch * (T - burn)) / b2[j] / double(N);
  return ratio;
}

void lru(tutorial::Claims& claims, bool quick) {
  tutorial::section("4. LRU: the ring, the convolution, and γ normalisation");
  const std::int64_t N = 1024;
  const nn::LRU ring = lru_layer(1, N, 0.9, 0.999, 21);
  const std::vector<cd> lambda = complex_vector(ring.lambda());
  const Vec gamma = exp(ring.gamma_log).to_vector<double>(), phase = exp(ring.theta_log).to_vector<double>();
  double r_lo = 1, r_hi = 0, phase_lo = 10, phase_hi = 0, gamma_err = 0;
  std::vector<int> bins(4, 0);
  for (std::int64_t j = 0; j < N; ++j) {
    const double r = std::abs(lambda[j]);
    r_lo = std::min(r_lo, r), r_hi = std::max(r_hi, r);
    phase_lo = std::min(phase_lo, phase[j]), phase_hi = std::max(phase_hi, phase[j]);
    gamma_err = std::max(gamma_err, std::abs(gamma[j] / std::sqrt(1.0 - r * r) - 1.0));
    ++bins[std::min(3, int(4 * (r * r - 0.81) / (0.998001 - 0.81)))];
  }
  std::printf("N = %lld modes, r_min = 0.9, r_max = 0.999, max_phase = 2π (Float32 parameters):\n", (long long)N);
  std::printf("  |λ| in [%.5f, %.5f]: memory 1/(1 − |λ|) from %.0f to %.0f tokens\n", r_lo, r_hi, 1 / (1 - r_lo),
              1 / (1 - r_hi));
  std::printf("  |λ|² in four equal bins of [0.81, 0.998]: %d %d %d %d (uniform: %lld each)\n", bins[0], bins[1],
              bins[2], bins[3], (long long)N / 4);
  std::printf("  arg λ = exp(θ_log) in [%.4f, %.4f]; max |γ / √(1 − |λ|²) − 1| = %.1e\n", phase_lo, phase_hi,
              gamma_err);
  claims.check(r_lo >= 0.9 * (1 - 1e-6) && r_hi <= 0.999 * (1 + 1e-6), "every |λ| lies on the ring [0.9, 0.999]");
  claims.check(phase_lo > 0 && phase_hi <= 2 * std::numbers::pi * (1 + 1e-6), "every phase lies in (0, 2π]");
  claims.check(gamma_err < 1e-4, "γ starts at √(1 − |λ|²) (to 1e-4)");

  nn::LRU m = lru_layer(3, 16, 0.9, 0.999, 22);
  m.to(DType::Float64);
  const std::int64_t T = 300;
  const Tensor u = normal({1, T, 3}, 23);
  const auto loop = lru_loop(m, u);
  const std::vector<cd> fft = complex_vector(m.states(u));
  double e_conv = 0.0;
  for (std::int64_t t = 0; t < T; ++t)
    for (std::int64_t j = 0; j < 16; ++j) e_conv = std::max(e_conv, std::abs(fft[t * 16 + j] - loop[t][j]));
  std::printf("H = 3, N = 16, T = %lld, Float64: max |states by FFT convolution − recurrence loop| = %.1e\n",
              (long long)T, e_conv);
  claims.check(e_conv < 1e-10, "the convolution x_k = Σ_ℓ γ λ^ℓ B u_{k−ℓ} (FFT) equals the recurrence (to 1e-10)");

  // White noise u ~ N(0, I): E|x_j|² = γ_j² Σ_h |B_jh|² / (1 − |λ_j|²). Allow 5 standard deviations of the sample
  // mean of a complex AR(1) power, √((1 + r²)/(1 − r²) / n) relative.
  const std::int64_t batch = quick ? 16 : 64, steps = 4096, burn = 1024;
  std::printf(
      "white noise, %lld sequences of %lld steps (first %lld dropped); E|x|² / Σ_h |B_jh|², mean over 4 modes:\n",
      (long long)batch, (long long)steps, (long long)burn);
  std::printf("%6s %14s %14s %18s\n", "|λ|", "with γ", "without γ", "1/(1 − |λ|²)");
  for (double r : {0.5, 0.99}) {
    nn::LRU noise = lru_layer(2, 4, r, r + 1e-4, 24);
    noise.to(DType::Float64);
    const double with_gamma = stationary_power(noise, batch, steps, burn);
    {
      NoGradGuard no_grad;
      Tensor handle = noise.gamma_log;
      handle.fill_(0.0);  // γ = 1
    }
    double gain = 0.0;  // the mean of 1/(1 − |λ_j|²) over the modes, |λ_j| in [r, r + 1e-4]
    for (const cd& l : complex_vector(noise.lambda())) gain += 1 / (1 - std::norm(l)) / double(noise.d_state);
    const double without = stationary_power(noise, batch, steps, burn);
    const double tol = 5 * std::sqrt((1 + r * r) / (1 - r * r) / double(batch * (steps - burn)));
    std::printf("%6.2f %14.3f %14.3f %18.3f\n", r, with_gamma, without, gain);
    claims.check(std::abs(with_gamma - 1) < tol && std::abs(without / gain - 1) < tol,
                 "|λ| = " + std::to_string(r).substr(0, 4) + ": E|x|² is Σ|B|² with γ and Σ|B|²/(1 − |λ|²) without" +
                     " (within 5 sd, " + std::to_string(tol).substr(0, 5) + ")");
  }
}

// ---- Section 5: both ways ----

// The median seconds of one step over `count` steps from the state's current position (the median, because a busy
// machine adds outliers).
double seconds_per_step(const nn::SequenceMixer& m, nn::MixerState& state, const Tensor& x_t, int count) {
  Vec times;
  for (int i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    m.step(x_t, state);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + count / 2, times.end());
  return times[count / 2];
}

void both_ways(tutorial::Claims& claims, bool quick) {
  tutorial::section("5. Each mixer run both ways: forward over the sequence, step token by token");
  const std::int64_t T = 64;
  std::printf("D = %lld, B = 2, T = %lld; max |step_all − forward|:\n", (long long)kD, (long long)T);
  std::printf("%-8s %12s %12s\n", "mixer", "Float32", "Float64");
  for (const std::string name : {"rwkv", "retnet", "lru"}) {
    const auto m = nn::make_mixer(name, config_for(name));
    randomize_projections(*m, 30);
    const Tensor x = normal({2, T, kD}, 31);
    const Tensor x32 = x.to(DType::Float32);
    const double e32 = max_diff(step_all(*m, x32), m->forward(x32));
    m->to(DType::Float64);
    const Tensor y = m->forward(x);
    const double e64 = max_diff(step_all(*m, x), y), scale = max(abs(y)).item();
    std::printf("%-8s %12.1e %12.1e   (max |y| = %.2f)\n", name.c_str(), e32, e64, scale);
    claims.check(e32 < 1e-5 && e64 < 1e-10 && scale > 0.1,
                 name + ": stepping gives forward's outputs (Float32 1e-5, Float64 1e-10), on outputs that are not 0");
  }

  if (quick) return;  // decode cost: full mode only (stepping softmax to position 2000 takes seconds on a busy machine)
  const int count = 101;
  std::printf("decode cost per token, Float32, batch 1, median of %d steps (µs; printed, not checked):\n", count);
  std::printf("%-8s %14s %14s\n", "mixer", "position 100", "position 2000");
  for (const std::string name : {"rwkv", "retnet", "lru", "softmax"}) {
    const auto m = nn::make_mixer(name, config_for(name, 2000 + count));
    const Tensor x_t = normal({1, kD}, 32, DType::Float32);
    auto state = m->init_state(1, 2000 + count);
    while (state->position < 100) m->step(x_t, *state);
    const double early = seconds_per_step(*m, *state, x_t, count);
    while (state->position < 2000) m->step(x_t, *state);
    const double late = seconds_per_step(*m, *state, x_t, count);
    std::printf("%-8s %14.1f %14.1f\n", name.c_str(), 1e6 * early, 1e6 * late);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  tutorial::Claims claims;
  state_sizes(claims);
  rwkv(claims);
  retnet(claims, quick, tutorial::out_dir(argc, argv));
  lru(claims, quick);
  both_ways(claims, quick);
  return claims.exit_code();
}
