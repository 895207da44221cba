// Tutorial 10: FLASH ("Transformer Quality in Linear Time", Hua et al. 2022). The gated attention unit (GAU) makes
// U, V and Z from one projection, queries and keys from the shared Z by a per-dimension scale and offset, scores
// with relu² instead of softmax, and gates: O = (U ⊙ A V) W_o — one head that stands in for attention plus MLP.
// Mixed chunk attention cuts its quadratic part into chunks and adds a linear part over earlier chunks, so the cost
// per token no longer grows with T. The program writes every formula out with loops and tensors, checks the library's
// nn::GatedAttentionUnit and nn::MixedChunkAttention against them, probes causality, measures memory per token, and
// trains a small model. Run: tutorial_10_flash_gau [--short]. The page README.md next to this file explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ember.h"
#include "tutorials/training.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// A [rows, cols] matrix of doubles read out of a tensor whose last dimension is cols.
struct Matrix {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> a;
  explicit Matrix(const Tensor& t) : rows(t.numel() / t.shape().back()), cols(t.shape().back()) {
    a = t.to_vector<double>();
  }
  double operator()(std::int64_t i, std::int64_t j) const { return a[i * cols + j]; }
  // Row i dotted with row j of other.
  double dot(std::int64_t i, const Matrix& other, std::int64_t j) const {
    double s = 0;
    for (std::int64_t c = 0; c < cols; ++c) s += (*this)(i, c) * other(j, c);
    return s;
  }
};

// The GAU's projection written out for one sequence x: [1, T, D]: φ(x Wᵀ + b) split into U, V (e wide) and Z (s wide).
struct Projection {
  Tensor U, V, Z;
};
Projection project(const nn::GatedAttentionUnit& gau, const Tensor& x) {
  const Tensor h = silu(matmul(x, transpose(gau.uvz_proj->weight, 0, 1)) + gau.uvz_proj->bias);
  const std::int64_t e = gau.expanded_dim, s = gau.shared_dim;
  return {narrow(h, 2, 0, e), narrow(h, 2, e, e), narrow(h, 2, 2 * e, s)};
}

// View r of Z: Z ⊙ γ_r + β_r.
Tensor view(const nn::GatedAttentionUnit& gau, const Tensor& Z, std::int64_t r) {
  return Z * select(gau.gamma, 0, r) + select(gau.beta, 0, r);
}

// The gated output (U ⊙ V̂) W_oᵀ + b_o, with V̂ given as a [T, e] matrix of doubles.
Tensor gate(const nn::GatedAttentionUnit& gau, const Tensor& U, const std::vector<double>& V_hat) {
  const Tensor v_hat = from_vector(V_hat, U.shape());
  return matmul(U * v_hat, transpose(gau.o_proj->weight, 0, 1)) + gau.o_proj->bias;
}

// Redraws γ and β from N(0, 1) and N(0, 0.5²): with the init's N(0, 0.02²) the scores are too small to see.
void redraw_views(nn::GatedAttentionUnit& gau) {
  NoGradGuard no_grad;
  gau.gamma.copy_(randn(gau.gamma.shape()));
  gau.beta.copy_(randn(gau.beta.shape(), DType::Float32, Device::cpu(), 0.0, 0.5));
}

// Causal relu² scores by loops: A_ij = max(0, q_i·k_j / n)² for j ≤ i, 0 above the diagonal.
std::vector<double> relu_squared_by_loops(const Matrix& q, const Matrix& k, double n) {
  const std::int64_t T = q.rows;
  std::vector<double> A(T * T, 0.0);
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = 0; j <= i; ++j) A[i * T + j] = std::pow(std::max(0.0, q.dot(i, k, j) / n), 2);
  return A;
}

// Mixed chunk attention by its direct formula, for x: [1, T, D], chunks of C:
// V̂_i = Σ_{j ≤ i in i's chunk} relu²(q^quad_i·k^quad_j / C) v_j + Σ_{j in earlier chunks} (q^lin_i·k^lin_j) v_j / C.
// With `inclusive` the linear sum also runs over i's own chunk — the mistake the exclusive prefix avoids.
Tensor mixed_chunk_direct(const nn::MixedChunkAttention& mca, const Tensor& x, bool inclusive = false) {
  const Projection p = project(mca, x);
  const Matrix qq(view(mca, p.Z, 0)), kq(view(mca, p.Z, 1)), ql(view(mca, p.Z, 2)), kl(view(mca, p.Z, 3)), v(p.V);
  const std::int64_t T = v.rows, e = v.cols, C = mca.chunk;
  std::vector<double> V_hat(T * e, 0.0);
  for (std::int64_t i = 0; i < T; ++i) {
    const std::int64_t start = i / C * C, linear_end = inclusive ? std::min(T, start + C) : start;
    for (std::int64_t j = 0; j < std::max(i + 1, linear_end); ++j) {
      double w = 0;
      if (j >= start && j <= i) w += std::pow(std::max(0.0, qq.dot(i, kq, j) / C), 2);
      if (j < linear_end) w += ql.dot(i, kl, j) / C;
      for (std::int64_t c = 0; c < e; ++c) V_hat[i * e + c] += w * v(j, c);
    }
  }
  return gate(mca, p.U, V_hat);
}

// Section 1: one GAU written out and compared, the relu² scores, and relu²'s gradient.
void gau_by_hand(tutorial::Claims& claims) {
  tutorial::section("1. The gated attention unit, written out");
  nn::MixerConfig cfg;
  cfg.d_model = 16;
  cfg.max_len = 8;  // n of the 1/n in the scores
  cfg.options = {{"expansion", 2}, {"shared", 8}};
  manual_seed(10);
  nn::GatedAttentionUnit gau(cfg);
  redraw_views(gau);
  const std::int64_t T = 8, n = cfg.max_len;
  const Tensor x = randn({1, T, cfg.d_model});
  std::printf("%s\n", gau.str().c_str());

  const Projection p = project(gau, x);
  const Tensor Q = view(gau, p.Z, 0), K = view(gau, p.Z, 1);
  const std::vector<double> A = relu_squared_by_loops(Matrix(Q), Matrix(K), static_cast<double>(n));
  const Tensor A_lib = nn::relu_squared_scores(Q, K, static_cast<double>(n));
  const double score_diff = max(abs(A_lib - from_vector(A, {1, T, T}))).item();
  std::printf("A = relu²(Q Kᵀ / n), n = %lld; the last row (query 7 over keys 0..7):\n  ", static_cast<long long>(n));
  double row_sum = 0;
  for (std::int64_t j = 0; j < T; ++j) std::printf("%8.4f", A[(T - 1) * T + j]), row_sum += A[(T - 1) * T + j];
  std::printf("\n  row sum %.4f (softmax rows sum to 1; these need not)\n", row_sum);
  const double smallest = *std::min_element(A.begin(), A.end());
  std::int64_t clipped = 0;  // entries on or below the diagonal that relu set to exactly 0
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = 0; j <= i; ++j) clipped += A[i * T + j] == 0.0 ? 1 : 0;
  std::printf("max |relu_squared_scores − loops| = %.1e; %lld of %lld causal scores are exactly 0\n", score_diff,
              static_cast<long long>(clipped), static_cast<long long>(T * (T + 1) / 2));
  claims.check(score_diff < 1e-6, "nn::relu_squared_scores equals max(0, q_i·k_j/n)² for j ≤ i, 0 above");
  claims.check(smallest >= 0.0 && clipped > 0,
               "A ≥ 0 everywhere, and unlike softmax some keys get exactly zero weight");

  const Tensor O = gate(gau, p.U, matmul(from_vector(A, {1, T, T}), p.V).to_vector<double>());
  const double out_diff = max(abs(gau.forward(x) - O)).item();
  std::printf("max |GatedAttentionUnit::forward − (U ⊙ A V) W_o| = %.1e (outputs of size %.2f)\n", out_diff,
              max(abs(O)).item());
  claims.check(out_diff < 1e-5, "the layer is O = (U ⊙ A V) W_o with U, V, Z from one SiLU projection");

  // relu²'s gradient: one query against the s unit keys e_j gives A_j = relu(q_j / n)², so ∂ΣA/∂q_j = 2 relu(q_j/n)/n.
  const std::int64_t s = 8;
  std::vector<double> q_values(s);
  for (std::int64_t j = 0; j < s; ++j) q_values[j] = -1.75 + 0.5 * static_cast<double>(j);
  const Tensor q = from_vector(q_values, {1, 1, s}, DType::Float64).requires_grad_();
  sum(nn::relu_squared_scores(q, reshape(eye(s, s, DType::Float64), {1, s, s}), 2.0)).backward();
  const std::vector<double> qv = q.to_vector<double>(), g = q.grad().to_vector<double>();
  bool zero_below = true;
  double worst = 0;
  std::printf("q_j:        ");
  for (double v : qv) std::printf("%8.4f", v);
  std::printf("\n∂ΣA/∂q_j:   ");
  for (std::int64_t j = 0; j < s; ++j) {
    std::printf("%8.4f", g[j]);
    if (qv[j] < 0) zero_below = zero_below && g[j] == 0.0;
    worst = std::max(worst, std::abs(g[j] - 2 * std::max(0.0, qv[j] / 2.0) / 2.0));
  }
  std::printf("\n");
  claims.check(zero_below && worst < 1e-15,
               "relu² has gradient 2 relu(x) ∂x: exactly zero wherever its argument is negative");
}

// Section 2: one GAU against a multi-head attention plus MLP pair, in parameters.
void parameter_counts(tutorial::Claims& claims) {
  tutorial::section("2. One GAU for half an attention + MLP pair");
  const std::int64_t D = 512, s = 128, e = 2 * D;
  nn::MixerConfig cfg;
  cfg.d_model = D;
  cfg.n_heads = 8;
  cfg.options = {{"expansion", 2}, {"shared", static_cast<double>(s)}};
  const std::int64_t gau = nn::GatedAttentionUnit(cfg).num_parameters();
  cfg.options.clear();
  const std::int64_t mha = nn::make_mixer("softmax", cfg)->num_parameters();
  const std::int64_t mlp = nn::MLP(D, 0, nn::MLPKind::Gelu).num_parameters();
  std::printf("D = %lld, e = 2D, s = %lld:\n", static_cast<long long>(D), static_cast<long long>(s));
  std::printf("  GatedAttentionUnit          %9lld   D(2e + s) + (2e + s) + eD + D + 4s\n",
              static_cast<long long>(gau));
  std::printf("  MultiHeadAttention          %9lld   4(D² + D)\n", static_cast<long long>(mha));
  std::printf("  MLP (4D, GELU)              %9lld   8D² + 5D\n", static_cast<long long>(mlp));
  std::printf("  two GAUs / (MHA + MLP)      %9.3f\n", 2.0 * static_cast<double>(gau) / static_cast<double>(mha + mlp));
  claims.check(
      gau == D * (2 * e + s) + (2 * e + s) + e * D + D + 4 * s && mha == 4 * (D * D + D) && mlp == 8 * D * D + 5 * D,
      "the layers hold the parameters their formulas say");
  claims.check(std::abs(2.0 * static_cast<double>(gau) / static_cast<double>(mha + mlp) - 1) < 0.1,
               "two GAU layers hold about what one attention + MLP pair holds (≈ 6D² + Ds against 12D²), so FLASH "
               "stacks twice as many layers");
}

// Section 3: mixed chunk attention against its direct formula, the causality probe, and the GAU it reduces to.
void mixed_chunk(tutorial::Claims& claims) {
  tutorial::section("3. Mixed chunk attention");
  nn::MixerConfig cfg;
  cfg.d_model = 16;
  cfg.max_len = 64;
  cfg.options = {{"expansion", 2}, {"shared", 8}, {"chunk", 16}};
  manual_seed(11);
  nn::MixedChunkAttention mca(cfg);
  redraw_views(mca);
  const std::int64_t T = 64, C = mca.chunk;
  const Tensor x = randn({1, T, cfg.d_model});
  const Tensor y = mca.forward(x);
  const Tensor direct = mixed_chunk_direct(mca, x);
  const double diff = max(abs(y - direct)).item(), size = max(abs(direct)).item();
  std::printf("T = %lld, C = %lld: max |MixedChunkAttention::forward − direct formula| = %.1e (outputs of size %.1f)\n",
              static_cast<long long>(T), static_cast<long long>(C), diff, size);
  claims.check(diff < 1e-5 * size,
               "forward equals relu² inside each chunk + (Σ over earlier chunks of q^lin·k^lin v)/C, gated");

  // Causality probe: change token t, and every output before t must stay bit for bit the same.
  bool causal = true, reaches = true;
  const std::vector<float> base = y.to_vector<float>();
  for (std::int64_t t = 0; t < T; ++t) {
    Tensor x2 = x.clone();
    narrow(x2, 1, t, 1).add_(ones({1, 1, cfg.d_model}));
    const std::vector<float> y2 = mca.forward(x2).to_vector<float>();
    const auto D = cfg.d_model;
    causal = causal && std::equal(base.begin(), base.begin() + t * D, y2.begin());
    reaches = reaches && !std::equal(base.begin() + t * D, base.begin() + (t + 1) * D, y2.begin() + t * D);
  }
  claims.check(
      causal && reaches,
      "causality probe, every t of 64: perturbing token t leaves outputs 0..t−1 bit-identical (and changes t)");
  Tensor x3 = x.clone();
  narrow(x3, 1, 20, 1).add_(ones({1, 1, cfg.d_model}));
  const double leak =
      max(abs(narrow(mixed_chunk_direct(mca, x3, true) - mixed_chunk_direct(mca, x, true), 1, 16, 4))).item();
  std::printf("an inclusive prefix (own chunk in the linear sum): perturbing token 20 moves outputs 16..19 by %.2f\n",
              leak);
  claims.check(leak > 1e-3, "with an inclusive prefix the same probe fails: earlier tokens of the chunk see token 20");

  // C = T with the linear views zeroed: one chunk, no linear part — the GAU with n = T.
  nn::MixerConfig one = cfg;
  one.max_len = T;
  one.options["chunk"] = static_cast<double>(T);
  nn::MixedChunkAttention whole(one);
  one.options.erase("chunk");
  nn::GatedAttentionUnit gau(one);
  {
    NoGradGuard no_grad;
    redraw_views(whole);
    narrow(whole.gamma, 0, 2, 2).zero_();
    narrow(whole.beta, 0, 2, 2).zero_();
    gau.uvz_proj->weight.copy_(whole.uvz_proj->weight);
    gau.uvz_proj->bias.copy_(whole.uvz_proj->bias);
    gau.o_proj->weight.copy_(whole.o_proj->weight);
    gau.o_proj->bias.copy_(whole.o_proj->bias);
    gau.gamma.copy_(narrow(whole.gamma, 0, 0, 2));
    gau.beta.copy_(narrow(whole.beta, 0, 0, 2));
  }
  const double flash_quad = max(abs(whole.forward(x) - gau.forward(x))).item();
  std::printf(
      "C = T = %lld, linear views zeroed, same weights: max |MixedChunkAttention − GatedAttentionUnit| = %.1e\n",
      static_cast<long long>(T), flash_quad);
  claims.check(flash_quad < 1e-6, "with C = T and the linear part zeroed, FLASH is the quadratic GAU (FLASH-Quad)");
}

// Bytes of tensor storage one forward pass (no gradients) adds at its peak, and its seconds (the best of 3).
std::pair<double, double> forward_cost(nn::SequenceMixer& mixer, const Tensor& x) {
  NoGradGuard no_grad;
  double bytes = 0, seconds = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    reset_peak_memory();
    const std::int64_t before = memory_stats().current_bytes;
    const auto start = std::chrono::steady_clock::now();
    const Tensor y = mixer.forward(x);
    seconds = std::min(seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    bytes = std::max(bytes, static_cast<double>(memory_stats().peak_bytes - before));
  }
  return {bytes, seconds};
}

// Section 4: memory and time per token as T grows, GAU against mixed chunk attention.
void cost_per_token(tutorial::Claims& claims, bool quick) {
  tutorial::section("4. Cost per token as T grows");
  const std::int64_t D = 32, s = 32, e = 2 * D, C = 64;
  const std::vector<std::int64_t> lengths =
      quick ? std::vector<std::int64_t>{256, 512, 1024, 2048} : std::vector<std::int64_t>{256, 512, 1024, 2048, 4096};
  std::printf("forward of one sequence, D = %lld, e = %lld, s = %lld, C = %lld (times: best of 3, not checked):\n",
              static_cast<long long>(D), static_cast<long long>(e), static_cast<long long>(s),
              static_cast<long long>(C));
  std::printf("%6s %14s %14s %12s %12s %14s %14s\n", "T", "GAU KiB/tok", "FLASH KiB/tok", "GAU µs/tok", "FLASH µs/tok",
              "GAU madd/tok", "FLASH madd/tok");
  std::vector<double> gau_bytes, flash_bytes;
  for (std::int64_t T : lengths) {
    nn::MixerConfig cfg;
    cfg.d_model = D;
    cfg.max_len = T;
    cfg.options = {{"expansion", 2}, {"shared", static_cast<double>(s)}};
    nn::GatedAttentionUnit gau(cfg);
    cfg.options["chunk"] = static_cast<double>(C);
    nn::MixedChunkAttention flash(cfg);
    const Tensor x = randn({1, T, D});
    const auto [g_bytes, g_sec] = forward_cost(gau, x);
    const auto [f_bytes, f_sec] = forward_cost(flash, x);
    const double t = static_cast<double>(T);
    gau_bytes.push_back(g_bytes / t);
    flash_bytes.push_back(f_bytes / t);
    // Multiply-adds of the attention alone per token: scores and A V over (T + 1)/2 keys on average for the GAU;
    // over (C + 1)/2 for the chunk, plus q^lin S and the k^linᵀ v update (s·e each) for FLASH.
    const double g_madd = (t + 1) / 2 * static_cast<double>(s + e);
    const double f_madd = (static_cast<double>(C) + 1) / 2 * static_cast<double>(s + e) + 2.0 * s * e;
    std::printf("%6lld %14.2f %14.2f %12.2f %12.2f %14.0f %14.0f\n", static_cast<long long>(T), gau_bytes.back() / 1024,
                flash_bytes.back() / 1024, 1e6 * g_sec / t, 1e6 * f_sec / t, g_madd, f_madd);
  }
  const double flash_growth = flash_bytes.back() / flash_bytes.front(),
               gau_growth = gau_bytes.back() / gau_bytes.front();
  const double length_growth = static_cast<double>(lengths.back()) / static_cast<double>(lengths.front());
  std::printf("memory per token from T = %lld to %lld: GAU x%.2f, FLASH x%.2f\n",
              static_cast<long long>(lengths.front()), static_cast<long long>(lengths.back()), gau_growth,
              flash_growth);
  claims.check(flash_growth < 1.2, "mixed chunk attention's peak memory per token is flat (within 20%) as T grows");
  claims.check(gau_growth > 0.5 * length_growth, "the GAU's grows with T: it holds the T × T score matrix A");
}

// ‖∂L/∂γ_r‖ for each view r of the first layer's mixer, on the model's first training batch, at its initial weights.
std::vector<double> first_gamma_grads(nn::LanguageModel& model, const data::TaskData& task) {
  const std::int64_t batch = 64, V = task.vocab_size();
  const Tensor ids = narrow(task.inputs, 0, 0, batch), target = narrow(task.targets, 0, 0, batch);
  model.zero_grad();
  cross_entropy(reshape(model.forward(ids), {batch * task.seq_len, V}), reshape(target, {batch * task.seq_len}))
      .backward();
  std::vector<double> norms;
  for (const auto& [name, p] : model.named_parameters())
    if (name == "layers.0.mixer.gamma")
      for (std::int64_t r = 0; r < p.shape()[0]; ++r) norms.push_back(norm(select(p.grad(), 0, r)).item());
  model.zero_grad();
  return norms;
}

// Section 5: a small language model with mixed chunk attention in every layer, decoded and trained.
void training(tutorial::Claims& claims, bool quick) {
  tutorial::section("5. A small FLASH model learns addition");
  data::AdditionConfig task_cfg;
  task_cfg.digits = 2;
  task_cfg.num_train = 2000;
  task_cfg.num_held_out = 100;
  const data::TaskSplit split = data::addition_task(task_cfg, 0);
  nn::LanguageModelConfig cfg;
  cfg.vocab_size = split.train.vocab_size();
  cfg.d_model = 32;
  cfg.n_layers = 4;
  cfg.max_len = split.train.seq_len;
  cfg.mixers = {"mixed_chunk"};
  cfg.mixer_options = {{"shared", 16}, {"chunk", 4}};
  cfg.seed = 1;
  nn::LanguageModel model(cfg);
  std::printf("%s", model.str().c_str());

  const Tensor ids = narrow(split.train.inputs, 0, 0, 2);
  const double step_diff = tutorial::step_forward_gap(model, ids);
  std::printf("max |step − forward| over the logits of 2 sequences: %.1e\n", step_diff);
  claims.check(step_diff < 1e-4, "decoding with the fixed-size state gives forward's logits");

  nn::LanguageModelConfig gau_cfg = cfg;
  gau_cfg.mixers = {"gau"};
  gau_cfg.mixer_options = {{"shared", 16}};
  nn::LanguageModel gau_model(gau_cfg);
  const std::vector<double> flash_g = first_gamma_grads(model, split.train),
                            gau_g = first_gamma_grads(gau_model, split.train);
  std::printf("at initialisation, ‖∂L/∂γ_r‖ of layer 0 on the first batch:\n");
  std::printf("  GAU:   γ_q %.2e  γ_k %.2e\n", gau_g[0], gau_g[1]);
  std::printf("  FLASH: γ_q^quad %.2e  γ_k^quad %.2e  γ_q^lin %.2e  γ_k^lin %.2e\n", flash_g[0], flash_g[1], flash_g[2],
              flash_g[3]);
  claims.check(std::max(gau_g[0], gau_g[1]) < 1e-3 * std::min(flash_g[2], flash_g[3]),
               "with γ ~ N(0, 0.02²) the scores q·k/n start near 0, where relu² is flat: the relu² views get a "
               "gradient over 1000x smaller than the linear views");

  const std::int64_t steps = quick ? 300 : 1500;
  std::printf("training on 2-digit addition (%lld tokens a problem), %lld steps of 64 problems, AdamW lr 3e-3:\n",
              static_cast<long long>(cfg.max_len), static_cast<long long>(steps));
  const tutorial::TrainRun flash = tutorial::train_briefly("mixed chunk attention x4 (C = 4)", model, split, steps);
  const tutorial::TrainRun gau = tutorial::train_briefly("GAU x4 (FLASH-Quad)", gau_model, split, steps);
  nn::LanguageModelConfig softmax_cfg = cfg;
  softmax_cfg.mixers = {"softmax"};
  softmax_cfg.mixer_options.clear();
  nn::LanguageModel softmax_model(softmax_cfg);
  const tutorial::TrainRun softmax_run = tutorial::train_briefly("softmax attention x4", softmax_model, split, steps);
  std::printf("%-34s %8s %14s %14s %12s\n", "model", "params", "first 10 loss", "last 10 loss", "exact match");
  const auto row = [](const char* name, const nn::LanguageModel& m, const tutorial::TrainRun& r) {
    std::printf("%-34s %8lld %14.3f %14.3f %12.3f\n", name, static_cast<long long>(m.num_parameters()), r.first, r.last,
                r.match);
  };
  row("4 mixed chunk attention + MLP", model, flash);
  row("4 GAU + MLP", gau_model, gau);
  row("4 softmax attention (4 heads) + MLP", softmax_model, softmax_run);
  claims.check(std::isfinite(flash.last) && flash.last < 0.6 * flash.first,
               "the FLASH model trains: its loss falls by more than 40%");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  set_num_threads(1);  // the same numbers on every machine
  tutorial::Claims claims;

  gau_by_hand(claims);
  parameter_counts(claims);
  mixed_chunk(claims);
  cost_per_token(claims, quick);
  training(claims, quick);
  return claims.exit_code();
}
