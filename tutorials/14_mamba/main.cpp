// Tutorial 14: Mamba (Gu & Dao 2023) — selection and the selective scan. S4D (tutorial 13) is time-invariant: the
// same Ā, B̄, C act on every token, which is what makes it a convolution, and also why it cannot choose what to
// remember. Mamba makes the step Δ and the vectors B, C functions of the input. The program shows what that buys on
// a hand-made example, checks the LTI special case against a convolution, builds the chunked scan from its
// associative operator, compares the library's kernel with the step-by-step reference and steps the Mamba block. The
// selective-copying experiment runs with `ember train` (the README gives the commands and their results).
// Run: tutorial_14_mamba [--short]. The page README.md next to this file explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

using Vec = std::vector<double>;

double seconds_of(const std::chrono::steady_clock::time_point& start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Float64 tensors from plain vectors.
Tensor f64(const Vec& v, const Shape& shape) { return from_vector(v, shape, DType::Float64); }
Tensor t3(const Vec& v, std::int64_t T) { return f64(v, {1, T, 1}); }

// 1. One channel, one state (N = 1, A = −1, B = C = 1): noise everywhere and one data token. A fixed Δ (LTI) blends
// them; a Δ chosen by content (large on the data token: reset and write; tiny on noise: hold) keeps the data.
void selection(tutorial::Claims& claims) {
  tutorial::section("1. Selection: a step size that depends on the token");
  const std::int64_t T = 40, data_at = 5;
  const double data = 3.0;
  Generator gen(1);
  Vec x = randn({T}, DType::Float64, Device::cpu(), 0, 1, &gen).to_vector<double>();
  x[data_at] = data;
  const Tensor A = f64(Vec{-1.0}, {1, 1}), ones = t3(Vec(T, 1.0), T);
  auto last_output = [&](const Vec& delta, double C) {
    const Tensor y = nn::selective_scan(t3(x, T), t3(delta, T), A, ones, t3(Vec(T, C), T));
    return y.to_vector<double>().back();
  };
  Vec selective(T, 1e-4);
  selective[data_at] = 10.0;  // exp(−10) forgets the past; then the state holds 10·x
  const double kept = last_output(selective, 0.1);
  std::printf("data token %.1f at t = %lld among %lld noise tokens\n", data, static_cast<long long>(data_at),
              static_cast<long long>(T - 1));
  std::printf("selective (Delta = 10 on data, 1e-4 on noise): y_T = %.4f\n", kept);
  for (double delta : {0.01, 0.1, 1.0}) std::printf("LTI (Delta = %.2f everywhere): y_T = %.4f\n", delta,
                                                    last_output(Vec(T, delta), 1.0 / delta * (1 - std::exp(-delta))));
  claims.check(std::abs(kept - data) < 0.01 * data, "with a content-dependent step the state keeps the data token (1%)");
  bool blurred = true;
  for (double delta : {0.01, 0.1, 1.0})
    blurred = blurred && std::abs(last_output(Vec(T, delta), 1.0 / delta * (1 - std::exp(-delta))) - data) > 0.5 * data;
  claims.check(blurred, "no fixed step keeps it: every LTI output is off by more than half the value");
}

// 2. With Δ, B, C constant in time the scan is time-invariant, so it is a causal convolution with the kernel
// K_ℓ = Σ_n C_n Δ B_n e^{ΔA_n ℓ} (S4D's view). Selection is exactly what breaks this.
void lti_is_convolution(tutorial::Claims& claims) {
  tutorial::section("2. Without selection the scan is a convolution");
  const std::int64_t T = 64, N = 4;
  Generator gen(2);
  const Vec x = randn({T}, DType::Float64, Device::cpu(), 0, 1, &gen).to_vector<double>();
  const Vec Bn = randn({N}, DType::Float64, Device::cpu(), 0, 1, &gen).to_vector<double>();
  const Vec Cn = randn({N}, DType::Float64, Device::cpu(), 0, 1, &gen).to_vector<double>();
  const double delta = 0.1;
  Vec An(N), Bt, Ct;
  for (std::int64_t n = 0; n < N; ++n) An[n] = -static_cast<double>(n + 1);  // S4D-Real, Mamba's init
  for (std::int64_t t = 0; t < T; ++t) Bt.insert(Bt.end(), Bn.begin(), Bn.end()), Ct.insert(Ct.end(), Cn.begin(), Cn.end());
  const Vec y = nn::selective_scan(t3(x, T), t3(Vec(T, delta), T), f64(An, {1, N}), f64(Bt, {1, T, N}),
                                   f64(Ct, {1, T, N}))
                    .to_vector<double>();
  double worst = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    double conv = 0;
    for (std::int64_t l = 0; l <= t; ++l) {
      double K = 0;
      for (std::int64_t n = 0; n < N; ++n) K += Cn[n] * delta * Bn[n] * std::exp(delta * An[n] * static_cast<double>(l));
      conv += K * x[t - l];
    }
    worst = std::max(worst, std::abs(conv - y[t]));
  }
  std::printf("max |scan - convolution| = %.1e (T = %lld, N = %lld)\n", worst, static_cast<long long>(T),
              static_cast<long long>(N));
  claims.check(worst < 1e-12, "a scan with constant Delta, B, C equals the convolution with K_l = sum C Delta B e^{Delta A l}");
}

// 3. The scan's operator: step t maps h to a_t h + b_t, and two steps compose into one,
// (a₁, b₁) ∘ (a₂, b₂) = (a₁a₂, a₂b₁ + b₂). Associativity lets every chunk be scanned on its own and the chunks be
// joined after: the chunked parallel scan of the library's kernel.
void associative_scan(tutorial::Claims& claims, bool quick) {
  tutorial::section("3. The chunked scan from the associative operator");
  const std::int64_t T = 16, chunk = 4;
  Generator gen(3);
  const Vec a = rand({T}, DType::Float64, Device::cpu(), 0.5, 1.0, &gen).to_vector<double>();
  const Vec b = randn({T}, DType::Float64, Device::cpu(), 0, 1, &gen).to_vector<double>();
  Vec sequential(T);
  double h = 0;
  for (std::int64_t t = 0; t < T; ++t) sequential[t] = h = a[t] * h + b[t];
  // Phase 1, each chunk alone from h = 0: its total decay (product of a) and its end state.
  Vec decay(T / chunk, 1.0), end(T / chunk, 0.0);
  for (std::int64_t c = 0; c < T / chunk; ++c)
    for (std::int64_t t = c * chunk; t < (c + 1) * chunk; ++t) decay[c] *= a[t], end[c] = a[t] * end[c] + b[t];
  // Phase 2, across chunks: the state entering chunk c. Phase 3, each chunk again from its true start.
  Vec start(T / chunk, 0.0), chunked(T);
  for (std::int64_t c = 1; c < T / chunk; ++c) start[c] = decay[c - 1] * start[c - 1] + end[c - 1];
  for (std::int64_t c = 0; c < T / chunk; ++c) {
    double s = start[c];
    for (std::int64_t t = c * chunk; t < (c + 1) * chunk; ++t) chunked[t] = s = a[t] * s + b[t];
  }
  double worst = 0;
  for (std::int64_t t = 0; t < T; ++t) worst = std::max(worst, std::abs(chunked[t] - sequential[t]));
  std::printf("scalar scan, T = %lld in chunks of %lld: max |chunked - sequential| = %.1e\n", static_cast<long long>(T),
              static_cast<long long>(chunk), worst);
  claims.check(worst < 1e-14, "three phases over chunks give the sequential scan");

  // The library: nn::selective_scan (the chunked kernel, one autograd node) against nn::selective_scan_reference
  // (one differentiable step per token), outputs and gradients.
  const std::int64_t L = 50, E = 3, N = 4;
  auto input = [&](Shape s, double lo, double hi) { return rand(s, DType::Float64, Device::cpu(), lo, hi, &gen).requires_grad_(); };
  std::vector<Tensor> in{input({1, L, E}, -1, 1), input({1, L, E}, 0.01, 0.5), input({E, N}, -2, -0.5),
                         input({1, L, N}, -1, 1), input({1, L, N}, -1, 1)};
  auto grads_of = [&](const Tensor& y) {
    for (Tensor& t : in) t.set_grad(Tensor());
    sum(y * y).backward();
    std::vector<Tensor> g;
    for (Tensor& t : in) g.push_back(t.grad());
    return g;
  };
  const Tensor y_ref = nn::selective_scan_reference(in[0], in[1], in[2], in[3], in[4]);
  const auto g_ref = grads_of(y_ref);
  double out_gap = 0, grad_gap = 0;
  for (std::int64_t c : {1, 7, 64}) {
    const Tensor y = nn::selective_scan(in[0], in[1], in[2], in[3], in[4], c);
    out_gap = std::max(out_gap, max(abs(y - y_ref)).item());
    const auto g = grads_of(y);
    for (std::size_t i = 0; i < g.size(); ++i) grad_gap = std::max(grad_gap, max(abs(g[i] - g_ref[i])).item());
  }
  std::printf("kernel (chunk 1, 7, 64) vs step-by-step reference, T = %lld: outputs %.1e, gradients %.1e\n",
              static_cast<long long>(L), out_gap, grad_gap);
  claims.check(out_gap < 1e-12 && grad_gap < 1e-10, "the chunked kernel equals the reference, outputs and gradients");

  if (quick) return;
  std::printf("forward + backward, E = 64, N = 16 (ms):\n%8s %12s %12s\n", "T", "reference", "kernel");
  for (std::int64_t T2 : {128, 512, 2048}) {
    std::vector<Tensor> big{input({1, T2, 64}, -1, 1), input({1, T2, 64}, 0.01, 0.5), input({64, 16}, -2, -0.5),
                            input({1, T2, 16}, -1, 1), input({1, T2, 16}, -1, 1)};
    auto time = [&](auto scan) {
      const auto start = std::chrono::steady_clock::now();
      sum(scan()).backward();
      return 1e3 * seconds_of(start);
    };
    const double ref = T2 <= 512 ? time([&] { return nn::selective_scan_reference(big[0], big[1], big[2], big[3], big[4]); })
                                 : NAN;
    const double ker = time([&] { return nn::selective_scan(big[0], big[1], big[2], big[3], big[4]); });
    std::printf("%8lld %12.1f %12.2f\n", static_cast<long long>(T2), ref, ker);
  }
}

// 4. The block: in_proj, a causal depthwise conv of width 4, the selective SSM, a SiLU gate, out_proj. Its decoding
// state is the conv's last 4 inputs and the SSM state, E·(4 + N) numbers whatever the position.
void block(tutorial::Claims& claims) {
  tutorial::section("4. The Mamba block, both ways");
  nn::MixerConfig c;
  c.d_model = 64;
  Generator gen(4);
  c.gen = &gen;
  auto mamba = nn::make_mixer("mamba", c);
  const auto& m = dynamic_cast<const nn::Mamba&>(*mamba);
  std::printf("d_model 64: E = %lld, N = %lld, %lld parameters (about 6 D^2 = %lld)\n",
              static_cast<long long>(m.d_inner), static_cast<long long>(m.d_state),
              static_cast<long long>(mamba->num_parameters()), static_cast<long long>(6 * 64 * 64));
  mamba->to(DType::Float64);
  const Tensor x = randn({2, 30, 64}, DType::Float64, Device::cpu(), 0, 1, &gen);
  NoGradGuard no_grad;
  const Tensor y = mamba->forward(x);
  auto state = mamba->init_state(2, 30);
  double gap = 0;
  for (std::int64_t t = 0; t < 30; ++t) gap = std::max(gap, max(abs(mamba->step(select(x, 1, t), *state) - select(y, 1, t))).item());
  std::printf("forward (chunked scan) vs step (recurrence), T = 30, Float64: %.1e\n", gap);
  claims.check(gap < 1e-10, "stepping the block token by token equals its forward pass");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  tutorial::Claims claims;
  selection(claims);
  lti_is_convolution(claims);
  associative_scan(claims, quick);
  block(claims);
  return claims.exit_code();
}
