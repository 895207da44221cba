// Tutorial 18: multi-token prediction. Next-token training scores each position against one target; DeepSeek-V3's
// MTP modules (and Gloeckle et al.'s independent heads) add D more, t_{i+2}..t_{i+D+1}. The program shows the label
// shift on a concrete sequence and builds the loss by hand, writes one module out (RMSNorm, concatenation, M_k,
// one block, the shared head) and checks that λ = 0 is plain next-token training, trains a 4-layer model with two
// extra depths on the copy task beside plain training, and then uses the modules as drafters for speculative
// decoding: the output is exactly greedy decoding's, and the acceptance rate of each depth is measured.
// Run: tutorial_18_multi_token_prediction [--short] [--out DIR]. The page README.md next to this file explains
// each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;
using decoding::MTPGeneration;
using decoding::MTPModel;
using decoding::MultiTokenHeads;
using i64 = std::int64_t;
using Ids = std::vector<i64>;

namespace {

// ---------------------------------------------------------------------------------------------------------------
// The task and the model

// The copy task ("abcdefgh|abcdefgh", scored on the copy) and the base model: 4 layers in the full run, so that
// one extra block per depth is small beside it; --short is smaller in every way.
struct Setup {
  data::CopyConfig copy;
  data::TaskData train, held_out;
  nn::LanguageModelConfig model;
  i64 steps = 0, batch = 0;
  double lr = 0;
};

Setup make_setup(bool quick) {
  Setup s;
  s.copy.length = quick ? 4 : 8;
  s.copy.num_symbols = 8;
  s.copy.num_examples = quick ? 1024 : 4096;
  s.train = data::copy_task(s.copy, 1);
  data::CopyConfig held = s.copy;
  held.num_examples = quick ? 64 : 256;
  s.held_out = data::copy_task(held, 2);
  s.model.vocab_size = s.train.vocab_size();
  s.model.d_model = quick ? 16 : 32;
  s.model.n_heads = 2;
  s.model.n_layers = quick ? 2 : 4;
  s.model.max_len = s.train.seq_len + 1;  // the prompt and the whole copy when generating
  s.model.seed = 3;
  s.steps = quick ? 150 : 500;
  s.batch = quick ? 32 : 64;
  s.lr = quick ? 1e-2 : 3e-3;
  return s;
}

// Batch number `step`, taken in order: (inputs [B, T], targets [B, T]).
std::pair<Tensor, Tensor> batch_at(const Setup& s, i64 step) {
  const i64 start = (step * s.batch) % (s.train.size() - s.batch + 1);
  return {narrow(s.train.inputs, 0, start, s.batch), narrow(s.train.targets, 0, start, s.batch)};
}

// Row b of a task as the whole sequence t_0..t_T: its input row and the last target.
Ids sequence_of(const data::TaskData& task, i64 b) {
  Ids seq = select(task.inputs, 0, b).to_vector<i64>();
  seq.push_back(select(task.targets, 0, b).to_vector<i64>().back());
  return seq;
}

// An MTP model of depth D on a fresh base model of config c (equal initial weights for equal configs).
std::shared_ptr<MTPModel> make_mtp(const nn::LanguageModelConfig& c, i64 D) {
  return std::make_shared<MTPModel>(std::make_shared<nn::LanguageModel>(c), decoding::MTPConfig{D, 7});
}

// One training step's loss: what is minimised, and the values recorded for the curves.
struct Terms {
  Tensor total;
  std::vector<double> recorded;
};

// Trains with AdamW on batches in order; returns the recorded values of every step (curves[j][step]).
std::vector<std::vector<double>> train(nn::Module& model, const Setup& s,
                                       const std::function<Terms(const Tensor&, const Tensor&)>& objective) {
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), s.lr, 0.1), 0.9, 0.95);
  std::vector<std::vector<double>> curves;
  for (i64 step = 0; step < s.steps; ++step) {
    const auto [ids, target] = batch_at(s, step);
    const Terms terms = objective(ids, target);
    opt.zero_grad();
    terms.total.backward();
    opt.step();
    curves.resize(terms.recorded.size());
    for (std::size_t j = 0; j < curves.size(); ++j) curves[j].push_back(terms.recorded[j]);
  }
  return curves;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. The label shift

// The token as its character.
char show(const data::TaskData& task, i64 id) { return task.tokenizer.decode(Ids{id})[0]; }

// Prints t_i and the target of each depth at every position i of one sequence: depth k at i is scored against
// t_{i+k+1} where the task scores it (target[i + k] is not ignored) and while i + k + 1 <= T.
void print_shift(const data::TaskData& task, i64 D) {
  const Ids seq = sequence_of(task, 0), target = select(task.targets, 0, 0).to_vector<i64>();
  const auto T = static_cast<i64>(target.size());
  std::printf("%-22s", "i");
  for (i64 i = 0; i < T; ++i) std::printf("%3lld", static_cast<long long>(i));
  std::printf("\n%-22s", "input t_i");
  for (i64 i = 0; i < T; ++i) std::printf("%3c", show(task, seq[i]));
  for (i64 k = 0; k <= D; ++k) {
    const std::string label =
        k == 0 ? "main: t_{i+1}" : "module " + std::to_string(k) + ": t_{i+" + std::to_string(k + 1) + "}";
    std::printf("\n%-22s", label.c_str());
    for (i64 i = 0; i < T; ++i)
      std::printf("%3c", i + k < T && target[i + k] != data::kIgnoreIndex ? show(task, seq[i + k + 1]) : ' ');
  }
  std::printf("\n");
}

// −log softmax(row)[label] of a row of logits, in double.
double nll(const std::vector<float>& logits, std::size_t row, i64 V, i64 label) {
  const auto z = logits.begin() + static_cast<std::ptrdiff_t>(row * V);
  const double top = *std::max_element(z, z + V);
  double sum = 0;
  for (i64 v = 0; v < V; ++v) sum += std::exp(z[v] - top);
  return top + std::log(sum) - z[label];
}

// L^k by hand: the mean over scored (b, i) of −log P^k_i[t_{i+k+1}], with the label read from the sequences
// themselves (logits: module k's [B, T − k, V]).
double depth_loss_by_hand(const Tensor& logits, const data::TaskData& task, i64 rows, i64 k) {
  const i64 T = task.seq_len, V = logits.shape()[2];
  const std::vector<float> z = logits.contiguous().to_vector<float>();
  double total = 0, scored = 0;
  for (i64 b = 0; b < rows; ++b) {
    const Ids seq = sequence_of(task, b), target = select(task.targets, 0, b).to_vector<i64>();
    for (i64 i = 0; i + k < T; ++i) {
      if (target[i + k] == data::kIgnoreIndex) continue;
      total += nll(z, static_cast<std::size_t>(b * (T - k) + i), V, seq[i + k + 1]);
      scored += 1;
    }
  }
  return total / scored;
}

void label_shift(tutorial::Claims& claims, const Setup& s) {
  tutorial::section("1. The label shift: module k at i is scored against t_{i+k+1}");
  const i64 D = 2, rows = 8;
  print_shift(s.train, D);
  auto model = make_mtp(s.model, D);
  NoGradGuard no_grad;
  const Tensor ids = narrow(s.train.inputs, 0, 0, rows), target = narrow(s.train.targets, 0, 0, rows);
  const decoding::MTPLoss loss = decoding::mtp_loss(*model, ids, target, 0.3);
  const std::vector<Tensor> logits = model->depth_logits(ids);
  double worst = 0;
  for (i64 k = 1; k <= D; ++k) {
    const double by_hand = depth_loss_by_hand(logits[k], s.train, rows, k);
    std::printf("untrained model, %lld rows: L^%lld = %.6f (mtp_loss), %.6f (by hand; ln V = %.6f)\n",
                static_cast<long long>(rows), static_cast<long long>(k), loss.depth[k - 1].item(), by_hand,
                std::log(static_cast<double>(s.model.vocab_size)));
    worst = std::max(worst, std::abs(loss.depth[k - 1].item() - by_hand));
  }
  claims.check(worst < 1e-5, "mtp_loss's L^1 and L^2 equal the mean of -log P^k_i[t_{i+k+1}] built by hand (1e-5)");
}

// ---------------------------------------------------------------------------------------------------------------
// 2. The module written out

// RMSNorm(x) = x / sqrt(mean(x²) + ε) ⊙ g, x: [..., D] -> [..., D].
Tensor rms_norm(const Tensor& x, const Tensor& g) { return x * rsqrt(mean(x * x, {-1}, true) + 1e-5) * g; }

// ids: [B, T] -> module k's logits [B, T − k, V] for k = 1..D, written out: h⁰ the main model's final-normed hidden
// states, h'^k_i = M_k·[RMSNorm(h^{k−1}_i) ; RMSNorm(Emb(t_{i+k}))], h^k = TRM_k(h'^k), P^k = OutHead(RMSNorm(h^k)).
std::vector<Tensor> module_logits_by_hand(MTPModel& m, const Tensor& ids) {
  const i64 T = ids.shape()[1];
  Tensor h = m.lm->hidden(ids);
  std::vector<Tensor> out;
  for (i64 k = 1; k <= m.depth(); ++k) {
    const decoding::MTPModule& mod = *m.module(k);
    const Tensor emb = m.lm->tok_emb->forward(narrow(ids, 1, k, T - k).contiguous());  // Emb(t_{i+k}), shared
    const Tensor both = cat({rms_norm(narrow(h, 1, 0, T - k), mod.hnorm->weight), rms_norm(emb, mod.enorm->weight)}, 2);
    h = mod.block->forward(matmul(both, transpose(mod.eh_proj->weight, 0, 1)));  // M_k ∈ R^{D×2D}, then TRM_k
    out.push_back(m.lm->logits(rms_norm(h, mod.norm->weight)));                  // the shared head
  }
  return out;
}

// Copies of every parameter of a module.
std::vector<Tensor> snapshot(const nn::Module& m) {
  std::vector<Tensor> out;
  for (const Tensor& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

// The largest |a − b| over two lists of parameters of the same shapes.
double max_diff(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, max(abs(a[i] - b[i])).item());
  return worst;
}

void module_written_out(tutorial::Claims& claims, const Setup& s) {
  tutorial::section("2. DeepSeek-V3's sequential module, written out");
  const i64 D = 2;
  auto model = make_mtp(s.model, D);
  std::printf("module 1 of %lld (%lld parameters; the base model has %lld):\n%s\n", static_cast<long long>(D),
              static_cast<long long>(model->module(1)->num_parameters()),
              static_cast<long long>(model->lm->num_parameters()), model->module(1)->str().c_str());
  const Tensor ids = narrow(s.train.inputs, 0, 0, 8), target = narrow(s.train.targets, 0, 0, 8);
  {
    NoGradGuard no_grad;
    const std::vector<Tensor> library = model->module_logits(ids, model->lm->hidden(ids));
    const std::vector<Tensor> by_hand = module_logits_by_hand(*model, ids);
    double worst = 0;
    for (i64 k = 0; k < D; ++k) worst = std::max(worst, max(abs(library[k] - by_hand[k])).item());
    std::printf("module logits, library against the formulas: max |difference| = %.2e\n", worst);
    claims.check(worst < 1e-5, "MTPModel's logits at depths 1 and 2 equal the formulas written out (1e-5)");

    const double lambda = 0.3;
    const decoding::MTPLoss loss = decoding::mtp_loss(*model, ids, target, lambda);
    const double combined = loss.main.item() + lambda / D * (loss.depth[0].item() + loss.depth[1].item());
    std::printf("L = L_main + (lambda/D)(L^1 + L^2) = %.6f + %.2f (%.6f + %.6f) = %.6f; mtp_loss: %.6f\n",
                loss.main.item(), lambda / D, loss.depth[0].item(), loss.depth[1].item(), combined, loss.total.item());
    claims.check(std::abs(combined - loss.total.item()) < 1e-6, "mtp_loss's total is L_main + (lambda/D) sum_k L^k");
  }

  // λ = 0, in Float64: the same AdamW run as plain next-token training, and the modules never move.
  auto with_modules = make_mtp(s.model, D);
  auto plain = std::make_shared<nn::LanguageModel>(s.model);
  with_modules->to(DType::Float64);
  plain->to(DType::Float64);
  const std::vector<Tensor> modules_before = snapshot(*with_modules->mtp);
  Setup brief = s;
  brief.steps = 20;
  train(*with_modules, brief, [&](const Tensor& x, const Tensor& y) {
    return Terms{decoding::mtp_loss(*with_modules, x, y, 0.0).total, {}};
  });
  train(*plain, brief, [&](const Tensor& x, const Tensor& y) {
    return Terms{cross_entropy(plain->forward(x), y), {}};
  });
  const double weights = max_diff(snapshot(*with_modules->lm), snapshot(*plain)),
               modules = max_diff(snapshot(*with_modules->mtp), modules_before);
  std::printf("%lld AdamW steps in Float64: max |w(lambda = 0) - w(plain)| = %.2e; modules moved by %.1e\n",
              static_cast<long long>(brief.steps), weights, modules);
  claims.check(weights < 1e-10, "with lambda = 0 training is plain next-token training (every weight to 1e-10)");
  claims.check(modules == 0.0, "and the modules get no gradient: they keep their initial weights exactly");
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Training with extra depths

// The mean of the last tenth of v.
double tail(const std::vector<double>& v) {
  const std::size_t n = std::max<std::size_t>(1, v.size() / 10);
  double sum = 0;
  for (std::size_t i = v.size() - n; i < v.size(); ++i) sum += v[i];
  return sum / static_cast<double>(n);
}

// Held-out accuracy of depth j (0 = the main model) from its logits [N, T − j, V] at position i against t_{i+j+1}
// = target[i + j], over the scored positions.
double depth_accuracy(const Tensor& logits, const Tensor& targets, i64 j) {
  const i64 n = logits.shape()[1];
  return data::token_accuracy(argmax(logits, -1), narrow(targets, 1, j, n).contiguous());
}

// The trained models of section 3, used again by section 4.
struct Trained {
  std::shared_ptr<MTPModel> mtp;
  std::shared_ptr<MultiTokenHeads> heads;
};

// The per-depth loss curves (and plain training's) as a picture.
void save_curves(const std::string& dir, const std::vector<std::vector<double>>& mtp,
                 const std::vector<double>& plain) {
  if (dir.empty()) return;
  train::LinePlot plot("Copy task: training with two MTP depths (lambda = 0.3) and without", "step",
                       "cross-entropy (training batch)");
  std::vector<double> x(plain.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i + 1);
  plot.add("plain next-token training", x, plain);
  plot.add("MTP run: main loss", x, mtp[0]);
  plot.add("MTP run: depth 1, L^1 (t_{i+2})", x, mtp[1]);
  plot.add("MTP run: depth 2, L^2 (t_{i+3})", x, mtp[2]);
  plot.log_y();
  plot.save(dir + "/mtp_losses.svg");
  std::printf("wrote %s/mtp_losses.svg\n", dir.c_str());
}

Trained training(tutorial::Claims& claims, const Setup& s, const std::string& dir) {
  tutorial::section("3. Training with extra depths");
  const i64 D = 2;
  const double lambda = 0.3;
  std::printf(
      "copy task: %lld tokens to copy, from %lld symbols (chance 1/%lld)\nbase model: %lld layers, d_model %lld; "
      "%lld AdamW steps of %lld\n",
      static_cast<long long>(s.copy.length), static_cast<long long>(s.copy.num_symbols),
      static_cast<long long>(s.copy.num_symbols), static_cast<long long>(s.model.n_layers),
      static_cast<long long>(s.model.d_model), static_cast<long long>(s.steps), static_cast<long long>(s.batch));
  Trained t{make_mtp(s.model, D), nullptr};
  const auto mtp_curves = train(*t.mtp, s, [&](const Tensor& x, const Tensor& y) {
    const decoding::MTPLoss l = decoding::mtp_loss(*t.mtp, x, y, lambda);
    return Terms{l.total, {l.main.item(), l.depth[0].item(), l.depth[1].item()}};
  });
  auto plain = std::make_shared<nn::LanguageModel>(s.model);  // the same initial weights as t.mtp->lm
  const auto plain_curve = train(*plain, s, [&](const Tensor& x, const Tensor& y) {
    const Tensor l = cross_entropy(plain->forward(x), y);
    return Terms{l, {l.item()}};
  })[0];
  t.heads = std::make_shared<MultiTokenHeads>(std::make_shared<nn::LanguageModel>(s.model), D + 1, 7);
  train(*t.heads, s, [&](const Tensor& x, const Tensor& y) {
    return Terms{decoding::multi_token_loss(*t.heads, x, y), {}};
  });
  save_curves(dir, mtp_curves, plain_curve);
  std::printf("training loss: %6s %11s %11s %11s %11s\n", "step", "plain", "MTP: main", "L^1", "L^2");
  for (i64 step : {i64{0}, s.steps / 10, s.steps / 5, 2 * s.steps / 5, 3 * s.steps / 5, s.steps - 1})
    std::printf("%21lld %11.2e %11.2e %11.2e %11.2e\n", static_cast<long long>(step + 1), plain_curve[step],
                mtp_curves[0][step], mtp_curves[1][step], mtp_curves[2][step]);

  NoGradGuard no_grad;
  const Tensor& in = s.held_out.inputs;
  const Tensor& tgt = s.held_out.targets;
  const std::vector<Tensor> depth = t.mtp->depth_logits(in), head = t.heads->head_logits(in);
  std::printf("\n%-34s %11s %11s %11s %11s\n", "", "train loss", "held-out", "held-out", "held-out");
  std::printf("%-34s %11s %11s %11s %11s\n", "", "(last 10%)", "main loss", "exact match", "accuracy");
  const auto row = [&](const char* name, double train_loss, const Tensor& logits, double acc) {
    std::printf("%-34s %11.2e %11.2e %11.3f %11.3f\n", name, train_loss, cross_entropy(logits, tgt).item(),
                data::exact_match(argmax(logits, -1), tgt), acc);
  };
  const Tensor plain_logits = plain->forward(in);
  row("plain next-token training", tail(plain_curve), plain_logits, depth_accuracy(plain_logits, tgt, 0));
  row("MTP, D = 2, lambda = 0.3: main", tail(mtp_curves[0]), depth[0], depth_accuracy(depth[0], tgt, 0));
  std::vector<double> mtp_acc, head_acc;
  for (i64 k = 1; k <= D; ++k) {
    mtp_acc.push_back(depth_accuracy(depth[k], tgt, k));
    head_acc.push_back(depth_accuracy(narrow(head[k], 1, 0, s.held_out.seq_len - k), tgt, k));
    std::printf("%-34s %11.2e %35.3f\n",
                ("  module " + std::to_string(k) + " (t_{i+" + std::to_string(k + 1) + "})").c_str(),
                tail(mtp_curves[k]), mtp_acc.back());
  }
  std::printf("%-34s %47.3f\n", "Gloeckle heads, n = 3: head 1", depth_accuracy(head[0], tgt, 0));
  for (i64 k = 1; k <= D; ++k)
    std::printf("%-34s %47.3f\n",
                ("  head " + std::to_string(k + 1) + " (t_{i+" + std::to_string(k + 1) + "})").c_str(),
                head_acc[k - 1]);

  const double chance = 1.0 / static_cast<double>(s.copy.num_symbols);
  claims.check(tail(mtp_curves[1]) < 0.2 * mtp_curves[1][0] && tail(mtp_curves[2]) < 0.2 * mtp_curves[2][0],
               "each depth's training loss falls below a fifth of where it started");
  claims.check(*std::min_element(mtp_acc.begin(), mtp_acc.end()) > 4 * chance &&
                   *std::min_element(head_acc.begin(), head_acc.end()) > 4 * chance,
               "every extra depth (modules and heads) predicts held-out t_{i+k+1} above 4x chance");
  claims.check(data::exact_match(argmax(depth[0], -1), tgt) >= data::exact_match(argmax(plain_logits, -1), tgt) - 0.05,
               "the extra depths cost the main model at most 5 points of held-out exact match");
  return t;
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Speculative decoding

// The held-out prompts "abcdefgh|" and how many tokens each generates (the copy).
std::vector<Ids> prompts_of(const Setup& s, i64 n) {
  std::vector<Ids> out;
  for (i64 r = 0; r < n; ++r) {
    const Ids row = select(s.held_out.inputs, 0, r).to_vector<i64>();
    out.emplace_back(row.begin(), row.begin() + s.copy.length + 1);
  }
  return out;
}

// Greedy decoding of every prompt with n new tokens.
std::vector<Ids> greedy_all(const nn::LanguageModel& lm, const std::vector<Ids>& prompts, i64 n) {
  nn::GenerateOptions o;
  o.temperature = 0.0;
  o.max_new_tokens = n;
  std::vector<Ids> out;
  for (const Ids& p : prompts) out.push_back(lm.generate(p, o));
  return out;
}

// Milliseconds per generated token of `decode` over the prompts, the fastest of three runs: a rough figure, noisy
// on a shared machine, on which no claim is made.
double ms_per_token(const std::vector<Ids>& prompts, i64 n, const std::function<void(const Ids&)>& decode) {
  const double seconds = tutorial::best_seconds([&] {
    for (const Ids& p : prompts) decode(p);
  });
  return 1e3 * seconds / static_cast<double>(static_cast<i64>(prompts.size()) * n);
}

// One speculative decoder over all prompts: every generation, the statistics of all passes pooled, whether every
// output equals greedy decoding's, and the time per token (over the first `timed` prompts).
struct Speculated {
  std::vector<MTPGeneration> each;
  MTPGeneration pooled;
  bool identical = true;
  double ms = 0;
};

template <class Model>
Speculated speculate_all(const Model& model, const std::vector<Ids>& prompts, i64 n, i64 drafts,
                         const std::vector<Ids>& greedy, std::size_t timed) {
  decoding::MTPGenerateOptions o;
  o.max_new_tokens = n;
  o.max_drafts = drafts;
  Speculated r;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    r.each.push_back(decoding::mtp_generate(model, prompts[i], o));
    const MTPGeneration& g = r.each.back();
    r.identical = r.identical && g.tokens == greedy[i];
    r.pooled.drafted.insert(r.pooled.drafted.end(), g.drafted.begin(), g.drafted.end());
    r.pooled.accepted.insert(r.pooled.accepted.end(), g.accepted.begin(), g.accepted.end());
  }
  const std::vector<Ids> some(prompts.begin(), prompts.begin() + static_cast<std::ptrdiff_t>(timed));
  r.ms = ms_per_token(some, n, [&](const Ids& p) { decoding::mtp_generate(model, p, o); });
  return r;
}

// One generation as its verify passes, each [root+accepted drafts], then the last root, e.g. "[a+bc] [d] [e+f] [g]".
std::string show_passes(const data::TaskData& task, const MTPGeneration& g, i64 prompt_len) {
  std::string s;
  auto next = static_cast<std::size_t>(prompt_len);
  for (std::size_t p = 0; p < g.accepted.size(); ++p) {
    s += "[";
    s += show(task, g.tokens[next++]);
    if (g.accepted[p] > 0) s += "+";
    for (i64 a = 0; a < g.accepted[p] && next < g.tokens.size(); ++a) s += show(task, g.tokens[next++]);
    s += "]";
    if (next < g.tokens.size()) s += " ";
  }
  if (next < g.tokens.size()) {
    s += "[";
    s += show(task, g.tokens[next]);
    s += "]";
  }
  return s;
}

// The passes of greedy speculation replayed without any decoding state: drafter k's guess at position i (predicting
// t_{i+k+1}) is read from one teacher-forced forward over the final output `out` (guess[k − 1][i]); a pass from root
// t_P drafts t_{P+1}.. and keeps them while they equal `out`. A draft is only used after the ones before it were
// accepted, so every input a drafter reads is a token of `out`.
MTPGeneration replay(const std::vector<Ids>& guess, const Ids& out, i64 prompt_len, i64 drafters) {
  const auto total = static_cast<i64>(out.size());
  MTPGeneration g;
  for (i64 P = prompt_len; P + 1 < total;) {
    const i64 m = std::min(drafters, total - 1 - P);
    i64 a = 0;
    while (a < m && guess[a][P - 1] == out[P + a + 1]) ++a;
    g.drafted.push_back(m);
    g.accepted.push_back(a);
    P += a + 1;
  }
  return g;
}

// out[0..T−1) as a [1, T − 1] batch: the inputs of one teacher-forced pass over a whole output.
Tensor inputs_of(const Ids& out) {
  return from_vector(Ids(out.begin(), out.end() - 1), {1, static_cast<i64>(out.size()) - 1});
}

// logits: the main model's and the extra depths' [1, n, V] -> each extra depth's argmax at every position.
std::vector<Ids> extra_depth_argmax(const std::vector<Tensor>& logits) {
  std::vector<Ids> g;
  for (std::size_t k = 1; k < logits.size(); ++k) g.push_back(argmax(select(logits[k], 0, 0), -1).to_vector<i64>());
  return g;
}

// Drafter k's teacher-forced guesses over an output: MTP module k, or Gloeckle head k + 1.
std::vector<Ids> guesses(MTPModel& m, const Ids& out) { return extra_depth_argmax(m.depth_logits(inputs_of(out))); }
std::vector<Ids> guesses(MultiTokenHeads& h, const Ids& out) {
  return extra_depth_argmax(h.head_logits(inputs_of(out)));
}

// Whether every generation's drafted and accepted counts equal the replay.
template <class Model>
bool replays(Model& model, const Speculated& r, i64 prompt_len, i64 drafters) {
  NoGradGuard no_grad;
  for (const MTPGeneration& g : r.each) {
    const MTPGeneration again = replay(guesses(model, g.tokens), g.tokens, prompt_len, drafters);
    if (again.drafted != g.drafted || again.accepted != g.accepted) return false;
  }
  return true;
}

// The row of plain greedy decoding in the decoding table: one token per forward pass after the prompt.
double print_plain(const char* name, const nn::LanguageModel& lm, const std::vector<Ids>& prompts, i64 n,
                   std::size_t timed) {
  nn::GenerateOptions o;
  o.temperature = 0.0;
  o.max_new_tokens = n;
  const std::vector<Ids> some(prompts.begin(), prompts.begin() + static_cast<std::ptrdiff_t>(timed));
  const double ms = ms_per_token(some, n, [&](const Ids& p) { lm.generate(p, o); });
  std::printf("%-30s %6lld %9.3f %9s %9s %9s %9.3f %8.2fx\n", name,
              static_cast<long long>(static_cast<i64>(prompts.size()) * (n - 1)), 1.0, "-", "-", "yes", ms, 1.0);
  return ms;
}

// One speculative row: passes, tokens per pass, the acceptance rate of depths 1 and 2, whether every output is
// greedy decoding's, and the time per token against plain decoding's.
void print_row(const char* name, const Speculated& r, double plain_ms) {
  const std::vector<double> rate = r.pooled.acceptance_rate();
  std::printf("%-30s %6lld %9.3f", name, static_cast<long long>(r.pooled.forward_passes()),
              r.pooled.tokens_per_forward());
  for (std::size_t j = 0; j < 2; ++j) {
    if (j < rate.size())
      std::printf(" %9.3f", rate[j]);
    else
      std::printf(" %9s", "-");
  }
  std::printf(" %9s %9.3f %8.2fx\n", r.identical ? "yes" : "NO", r.ms, plain_ms / r.ms);
}

// Rejected drafts of a run: the passes that accepted fewer drafts than they proposed (each one a rollback).
i64 rollbacks(const MTPGeneration& g) {
  i64 n = 0;
  for (std::size_t p = 0; p < g.drafted.size(); ++p) n += g.accepted[p] < g.drafted[p];
  return n;
}

void speculative_decoding(tutorial::Claims& claims, const Setup& s, const Trained& t, bool quick) {
  tutorial::section("4. Speculative decoding with the extra depths as drafters");
  const i64 n = s.copy.length, P = n + 1;
  const std::vector<Ids> prompts = prompts_of(s, quick ? 16 : 200);
  const std::size_t timed = quick ? 4 : 50;
  const std::vector<Ids> greedy = greedy_all(*t.mtp->lm, prompts, n),
                         head_greedy = greedy_all(*t.heads->lm, prompts, n);
  const Speculated d1 = speculate_all(*t.mtp, prompts, n, 1, greedy, timed),
                   d2 = speculate_all(*t.mtp, prompts, n, 2, greedy, timed),
                   h2 = speculate_all(*t.heads, prompts, n, 1, head_greedy, timed),
                   h3 = speculate_all(*t.heads, prompts, n, 2, head_greedy, timed);
  std::printf(
      "%lld held-out prompts, %lld new tokens each; one of them as its verify passes, [root+accepted drafts]:\n",
      static_cast<long long>(prompts.size()), static_cast<long long>(n));
  std::printf("  %s -> D = 1: %s\n", s.held_out.tokenizer.decode(prompts[0]).c_str(),
              show_passes(s.held_out, d1.each[0], P).c_str());
  std::printf("  %*s    D = 2: %s\n", static_cast<int>(P), "", show_passes(s.held_out, d2.each[0], P).c_str());
  std::printf("\n%-30s %6s %9s %9s %9s %9s %9s %9s\n", "drafters", "passes", "tok/pass", "accept 1", "accept 2",
              "= greedy", "ms/token", "speed");
  const double plain_ms = print_plain("none: plain greedy decoding", *t.mtp->lm, prompts, n, timed);
  print_row("MTP module 1 (D = 1)", d1, plain_ms);
  print_row("MTP modules 1, 2 (D = 2)", d2, plain_ms);
  const double head_plain_ms = print_plain("none (the heads' trunk)", *t.heads->lm, prompts, n, timed);
  print_row("Gloeckle head 2 (n = 2)", h2, head_plain_ms);
  print_row("Gloeckle heads 2, 3 (n = 3)", h3, head_plain_ms);

  claims.check(d1.identical && d2.identical && h2.identical && h3.identical,
               "speculative decoding with modules or heads reproduces greedy decoding on every prompt");
  claims.check(replays(*t.mtp, d2, P, 2) && replays(*t.heads, h3, P, 2),
               "every pass's drafted and accepted counts equal a replay from one teacher-forced forward pass");
  claims.check(d2.pooled.tokens_per_forward() > d1.pooled.tokens_per_forward() && d1.pooled.tokens_per_forward() > 1.5,
               "module 1 alone gives over 1.5 tokens per forward pass, and module 2 adds more");

  // A recurrent mixer: the chain is verified by stepping, and a rejected draft is rolled back with MixerState::clone.
  // Trained for a fifth of the steps, the drafters still miss now and then, so that rollbacks happen.
  Setup rs = s;
  rs.model.mixers = {"retnet"};
  rs.steps = s.steps / 5;
  auto recurrent = make_mtp(rs.model, 2);
  train(*recurrent, rs, [&](const Tensor& x, const Tensor& y) {
    return Terms{decoding::mtp_loss(*recurrent, x, y, 0.3).total, {}};
  });
  const Speculated r2 = speculate_all(*recurrent, prompts, n, 2, greedy_all(*recurrent->lm, prompts, n), timed);
  const double recurrent_plain_ms = print_plain("none (RetNet)", *recurrent->lm, prompts, n, timed);
  print_row(("RetNet, " + std::to_string(rs.steps) + " steps: D = 2").c_str(), r2, recurrent_plain_ms);
  std::printf("RetNet: %lld of %lld passes rejected a draft and rolled the states back\n",
              static_cast<long long>(rollbacks(r2.pooled)), static_cast<long long>(r2.pooled.forward_passes()));
  claims.check(r2.identical && rollbacks(r2.pooled) > 0,
               "with RetNet, passes that reject drafts roll back, and the output is still greedy decoding's");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  const std::string dir = tutorial::out_dir(argc, argv);
  const auto start = std::chrono::steady_clock::now();
  tutorial::Claims claims;
  const Setup s = make_setup(quick);
  label_shift(claims, s);
  module_written_out(claims, s);
  const Trained t = training(claims, s, dir);
  speculative_decoding(claims, s, t, quick);
  std::printf("\n(%.1f s)\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return claims.exit_code();
}
