// Tutorial 11: TransNormer ("The Devil in Linear Transformer", Qin et al. 2022). Linear attention has two
// problems, and TransNormer answers each: its denominator Σ_k s_ik makes gradients grow like 1/Σ s
// (NormAttention drops it and normalises the output instead), and its weights spread over far tokens where
// softmax stays local (DiagAttention keeps softmax inside blocks). The program measures both problems with the
// library's autograd and attention functions, checks DiagAttention against a masked softmax, and trains a
// small model with DiagAttention in the lower layers and NormAttention in the upper ones.
// Run: tutorial_11_transnormer [--short]. The page README.md next to this file explains each step.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "ember.h"
#include "tutorials/training.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// The least-squares slope of log y against log x.
double log_log_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += std::log(x[i]) / n;
    my += std::log(y[i]) / n;
  }
  double num = 0, den = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    num += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
    den += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
  }
  return num / den;
}

// ‖∂L/∂q‖ for L = Σ G ⊙ attention(q), q a fresh leaf holding `q0`.
template <class Attention>
double grad_norm(const Tensor& q0, const Tensor& G, Attention attention) {
  Tensor q = q0.clone().requires_grad_();
  sum(attention(q) * G).backward();
  return norm(q.grad()).item();
}

// The Jacobian ∂p_j/∂x_k of p = f(x) for a vector x of n entries, one backward pass per output entry.
template <class F>
std::vector<std::vector<double>> jacobian(const Tensor& x0, F f) {
  const std::int64_t n = x0.numel();
  std::vector<std::vector<double>> J(n);
  for (std::int64_t j = 0; j < n; ++j) {
    Tensor x = x0.clone().requires_grad_();
    select(f(x), 0, j).backward();
    J[j] = x.grad().to_vector<double>();
  }
  return J;
}

// Position vectors x_i = γ (cos ω_m i, sin ω_m i), ω_m = 10000^(−2m/d), as [1, 1, T, d]:
// x_i·x_j = γ² Σ_m cos ω_m (i − j) is largest at j = i, so attention with q = k = x has every reason to stay local.
Tensor positions(std::int64_t T, std::int64_t d, double gamma) {
  std::vector<double> x(T * d);
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t m = 0; m < d / 2; ++m) {
      const double omega = std::pow(10000.0, -2.0 * static_cast<double>(m) / static_cast<double>(d));
      x[i * d + m] = gamma * std::cos(omega * static_cast<double>(i));
      x[i * d + d / 2 + m] = gamma * std::sin(omega * static_cast<double>(i));
    }
  return from_vector(x, {1, 1, T, d});
}

// The weight row P[T − 1, :] of attention weights P [1, 1, T, T]: what the last query puts on each key.
Tensor last_row(const Tensor& P) { return select(select(select(P, 0, 0), 0, 0), 0, P.shape()[2] - 1); }

// x: [B, T, D] -> [B, H, T, d].
Tensor heads(const Tensor& x, std::int64_t H) {
  const std::int64_t B = x.shape()[0], T = x.shape()[1], D = x.shape()[2];
  return transpose(reshape(x, {B, T, H, D / H}), 1, 2);
}

// Section 1: gradient norms of the denominator form, its core, NormAttention and softmax as the scores shrink.
void unbounded_gradient(tutorial::Claims& claims) {
  tutorial::section("1. The unbounded gradient of the denominator");
  // One head in Float64: T = 16 tokens, d = 8. Key features φ(k) = elu(k) + 1; query features by ReLU of
  // positive queries q = α u, so φ(q) = α u and every score s_ij = φ(q_i)·φ(k_j) shrinks with α.
  const std::int64_t T = 16, d = 8, chunk = 4;
  const DType F = DType::Float64;
  manual_seed(3);
  const Tensor u = abs(randn({1, 1, T, d}, F)) + 0.1, phi_k = nn::elu_feature_map(randn({1, 1, T, d}, F));
  const Tensor v = randn({1, 1, T, d}, F), G = randn({1, 1, T, d}, F);
  // Σ_k s_ik = φ(q_i)·z_i with z_i = Σ_{k≤i} φ(k_k); its mean over rows at α = 1.
  const double sum_at_1 = mean(sum(u * cumsum(phi_k, 2), {-1})).item();
  const auto denominator = [&](const Tensor& q) { return nn::causal_linear_attention(relu(q), phi_k, v, chunk, true); };
  const auto core = [&](const Tensor& q) { return nn::causal_linear_attention(relu(q), phi_k, v, chunk, false); };
  const auto norm_attention = [&](const Tensor& q) { return nn::rms_norm(core(q), Tensor(), nn::kNormAttentionEps); };
  const auto softmax_attention = [&](const Tensor& q) { return nn::naive_attention(q, phi_k, v, true); };
  std::printf("gradient norm ‖∂L/∂q‖ as the scores shrink (L = Σ G ⊙ output, Float64):\n");
  std::printf("%10s %16s %16s %16s %16s\n", "mean sum s", "with denominator", "core o (none)", "SRMSNorm(o)",
              "softmax");
  std::vector<double> sums, g_den, g_core, g_norm, g_soft;
  for (double target : {1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6}) {
    const Tensor q = u * (target / sum_at_1);
    sums.push_back(target);
    g_den.push_back(grad_norm(q, G, denominator));
    g_core.push_back(grad_norm(q, G, core));
    g_norm.push_back(grad_norm(q, G, norm_attention));
    g_soft.push_back(grad_norm(q, G, softmax_attention));
    std::printf("%10.0e %16.4e %16.4e %16.4e %16.4e\n", target, g_den.back(), g_core.back(), g_norm.back(),
                g_soft.back());
  }
  const double slope = log_log_slope(sums, g_den);
  std::printf("log-log slope of the denominator form: %.3f\n", slope);
  claims.check(slope > -1.05 && slope < -0.9,
               "with the denominator the gradient grows like 1/Σ s (slope near −1; the ε = 1e-6 beside Σ s "
               "bends the last point)");
  const auto [core_lo, core_hi] = std::minmax_element(g_core.begin(), g_core.end());
  claims.check(*core_hi / *core_lo - 1 < 1e-9,
               "without it, o_i = Σ_j s_ij v_j has ∂o_i/∂s_ij = v_j: the same gradient at every scale");
  const auto [soft_lo, soft_hi] = std::minmax_element(g_soft.begin(), g_soft.end());
  claims.check(*soft_hi / *soft_lo < 1.5, "softmax attention on the same q, k: bounded across the sweep");

  // The norm after the core: scale invariant, so its own gradient scales like 1/rms(o) until ε takes over.
  const Tensor o = core(u);
  const double invariance = max(abs(nn::rms_norm(o * 37.0, Tensor(), nn::kNormAttentionEps) -
                                    nn::rms_norm(o, Tensor(), nn::kNormAttentionEps)))
                                .item();
  std::printf("SRMSNorm(37 o) − SRMSNorm(o): max %.1e\n", invariance);
  claims.check(invariance < 1e-6, "SRMSNorm(α o) = SRMSNorm(o): the output no longer depends on the scale of s");
  const double early = log_log_slope({sums[0], sums[1]}, {g_norm[0], g_norm[1]});
  std::printf("SRMSNorm(o): slope %.3f over the first decade; at Σ s = 1e-6 it is %.4e = %.4e / √ε\n", early,
              g_norm.back(), g_core.back());
  claims.check(early < -0.9,
               "but being scale invariant, NormAttention's gradient also grows like 1/Σ s while rms(o) ≫ √ε "
               "(the norm's Jacobian is ~1/rms(o))");
  claims.check(std::abs(g_norm.back() / (g_core.back() / std::sqrt(nn::kNormAttentionEps)) - 1) < 1e-2,
               "and is capped by the norm's ε: once rms(o) ≪ √ε, SRMSNorm(o) ≈ o/√ε and the gradient is the "
               "core's times 1/√ε = 1000");

  // The Jacobians behind the sweep, for one row of six scores, by autograd.
  const Tensor x = randn({6}, F, Device::cpu(), 0.0, 3.0), s = abs(randn({6}, F)) * 1e-3;
  const auto Js = jacobian(x, [](const Tensor& t) { return softmax(t, 0); });
  const auto Jd = jacobian(s, [](const Tensor& t) { return t / sum(t); });
  const std::vector<double> p = softmax(x, 0).to_vector<double>(), sv = s.to_vector<double>();
  const double total = sum(s).item();
  double soft_max = 0, soft_err = 0, den_max = 0, den_err = 0;
  for (int j = 0; j < 6; ++j)
    for (int k = 0; k < 6; ++k) {
      const double delta = j == k ? 1.0 : 0.0;
      soft_max = std::max(soft_max, std::abs(Js[j][k]));
      soft_err = std::max(soft_err, std::abs(Js[j][k] - p[j] * (delta - p[k])));
      den_max = std::max(den_max, std::abs(Jd[j][k]));
      den_err = std::max(den_err, std::abs(Jd[j][k] - (delta - sv[j] / total) / total) * total);
    }
  std::printf("six scores: softmax max |∂p_j/∂x_k| = %.4f; s/Σs with Σ s = %.2e: max |∂p_j/∂s_k| = %.1f\n", soft_max,
              total, den_max);
  claims.check(soft_err < 1e-12 && soft_max <= 0.25, "softmax's Jacobian is p_j(δ_jk − p_k), never above 1/4");
  claims.check(den_err < 1e-12 && den_max > 0.5 / total, "the denominator's is (δ_jk − p_j)/Σ s, of order 1/Σ s");
}

// Section 2: the share of the last query's weight on its nearest keys, softmax against linear attention.
void dilution(tutorial::Claims& claims, bool quick) {
  tutorial::section("2. Attention dilution");
  // q = k = position vectors with γ = 3, d = 16. Share of the last query's weight on its w = 8 nearest keys.
  const std::int64_t d = 16, w = 8;
  const std::vector<std::int64_t> lengths =
      quick ? std::vector<std::int64_t>{64, 256, 1024} : std::vector<std::int64_t>{64, 256, 1024, 2048};
  std::printf("share of the last query's attention on its %lld nearest keys (q = k = position vectors):\n",
              static_cast<long long>(w));
  std::printf("%6s %10s %10s %10s\n", "T", "softmax", "linear", "w/T");
  bool local = true, diluted = true;
  std::vector<double> linear_shares;
  for (std::int64_t T : lengths) {
    const Tensor x = positions(T, d, 3.0);
    const Tensor soft = nn::attention_softmax(matmul(x, transpose(x, -1, -2)), 1.0 / std::sqrt(d), true);
    // With v = the identity, linear attention's output is its weight matrix φ(q_i)·φ(k_j) / Σ_k φ(q_i)·φ(k_k).
    const Tensor phi = nn::elu_feature_map(x);
    const Tensor lin = nn::causal_linear_attention(phi, phi, reshape(eye(T), {1, 1, T, T}), 64, true);
    const double s_share = sum(slice(last_row(soft), 0, T - w, T)).item();
    const double l_share = sum(slice(last_row(lin), 0, T - w, T)).item();
    const double uniform = static_cast<double>(w) / static_cast<double>(T);
    std::printf("%6lld %10.3f %10.4f %10.4f\n", static_cast<long long>(T), s_share, l_share, uniform);
    local = local && s_share > 0.8;
    diluted = diluted && l_share < 1.5 * uniform;
    linear_shares.push_back(l_share);
  }
  claims.check(local, "softmax keeps more than 80% of the weight on the 8 nearest keys at every T");
  claims.check(diluted, "linear attention's share is within 1.5x of w/T, what uniform weights would give");
  claims.check(linear_shares.front() / linear_shares.back() >
                   0.5 * static_cast<double>(lengths.back()) / static_cast<double>(lengths.front()),
               "so it falls roughly as 1/T: the weight is diluted over the whole prefix");
}

// Section 3: DiagAttention against full softmax attention with a block-diagonal causal mask.
void diag_attention(tutorial::Claims& claims) {
  tutorial::section("3. DiagAttention: softmax inside blocks");
  nn::MixerConfig cfg;
  cfg.d_model = 16;
  cfg.n_heads = 2;
  cfg.options["block"] = 4;
  manual_seed(5);
  nn::DiagAttention diag(cfg);
  const std::int64_t B = 2, T = 10, H = 2, d = 8, w = 4;  // T not a multiple of w: the last block is short
  const Tensor x = randn({B, T, cfg.d_model});
  const Tensor y = diag.forward(x);
  // The same layer written out: full softmax attention, with key j hidden from query i unless j ≤ i and j, i lie
  // in the same block.
  std::vector<double> hide(T * T);
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = 0; j < T; ++j) hide[i * T + j] = (j > i || j / w != i / w) ? 1.0 : 0.0;
  const Tensor mask = from_vector(hide, {T, T}).to(DType::Bool);
  const Tensor q = heads(diag.q_proj->forward(x), H), k = heads(diag.k_proj->forward(x), H),
               v = heads(diag.v_proj->forward(x), H);
  const Tensor scores = matmul(q, transpose(k, -1, -2)) / std::sqrt(static_cast<double>(d));
  const Tensor P = softmax(masked_fill(scores, mask, -std::numeric_limits<double>::infinity()), -1);
  const Tensor o = diag.o_proj->forward(reshape(transpose(matmul(P, v), 1, 2), {B, T, cfg.d_model}));
  const double diff = max(abs(y - o)).item();
  const Tensor full =
      diag.o_proj->forward(reshape(transpose(nn::naive_attention(q, k, v, true), 1, 2), {B, T, cfg.d_model}));
  const double from_full = max(abs(y - full)).item();
  std::printf(
      "block w = %lld, T = %lld: max |DiagAttention − block-masked softmax| = %.1e, "
      "max |DiagAttention − full causal softmax| = %.2f\n",
      static_cast<long long>(w), static_cast<long long>(T), diff, from_full);
  claims.check(diff < 1e-5, "DiagAttention equals full softmax attention with a block-diagonal causal mask");
  claims.check(from_full > 1e-2, "and differs from full causal attention: the mask matters");
}

// Section 4: a LanguageModel with DiagAttention below and NormAttention above: decoding, then brief training.
void transnormer_layout(tutorial::Claims& claims, bool quick) {
  tutorial::section("4. The TransNormer layout: DiagAttention below, NormAttention above");
  data::AdditionConfig task_cfg;
  task_cfg.digits = 2;
  task_cfg.num_train = 2000;
  task_cfg.num_held_out = 100;
  const data::TaskSplit split = data::addition_task(task_cfg, 0);
  nn::LanguageModelConfig cfg;
  cfg.vocab_size = split.train.vocab_size();
  cfg.d_model = 32;
  cfg.n_layers = 4;
  cfg.n_heads = 4;
  cfg.max_len = split.train.seq_len;
  cfg.mixers = {"diag_attention", "diag_attention", "norm_attention", "norm_attention"};
  cfg.mixer_options = {{"block", 4}};  // DiagAttention's w; NormAttention reads only "chunk"
  cfg.seed = 1;
  nn::LanguageModel model(cfg);
  std::printf("%s", model.str().c_str());

  // Decoding: DiagAttention keeps a KV cache, NormAttention only its d×d state S per head.
  const Tensor ids = narrow(split.train.inputs, 0, 0, 2);
  const double step_diff = tutorial::step_forward_gap(model, ids);
  std::printf("max |step − forward| over the logits of 2 sequences: %.1e\n", step_diff);
  claims.check(step_diff < 1e-4, "decoding token by token gives forward's logits");

  const std::int64_t steps = quick ? 300 : 1500;
  std::printf("training on 2-digit addition, %lld steps of 64 problems, AdamW lr 3e-3:\n",
              static_cast<long long>(steps));
  const tutorial::TrainRun transnormer =
      tutorial::train_briefly("DiagAttention x2 + NormAttention x2", model, split, steps);
  nn::LanguageModelConfig softmax_cfg = cfg;
  softmax_cfg.mixers = {"softmax"};
  nn::LanguageModel softmax_model(softmax_cfg);
  const tutorial::TrainRun softmax_run = tutorial::train_briefly("softmax attention x4", softmax_model, split, steps);
  std::printf("%-34s %14s %14s %12s\n", "model", "first 10 loss", "last 10 loss", "exact match");
  std::printf("%-34s %14.3f %14.3f %12.3f\n", "2 DiagAttention + 2 NormAttention", transnormer.first, transnormer.last,
              transnormer.match);
  std::printf("%-34s %14.3f %14.3f %12.3f\n", "4 softmax attention (same size)", softmax_run.first, softmax_run.last,
              softmax_run.match);
  claims.check(std::isfinite(transnormer.last) && transnormer.last < 0.6 * transnormer.first,
               "the TransNormer-layout model trains: its loss falls by more than 40%");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  set_num_threads(1);  // the same numbers on every machine
  tutorial::Claims claims;

  unbounded_gradient(claims);
  dilution(claims, quick);
  diag_attention(claims);
  transnormer_layout(claims, quick);
  return claims.exit_code();
}
