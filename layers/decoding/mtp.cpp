/// \file
/// \brief Multi-token prediction: DeepSeek-V3's MTP modules and Gloeckle et al.'s heads, their losses, and greedy
/// speculative decoding with them as drafters (technique notes §11).
///
/// Decoding keeps one decoding state per drafter block. A Gloeckle head's block reads only the trunk z of consumed
/// tokens, so its state just advances with the main model. MTP module k at position i reads t_{i+k}, which for the
/// last k − 1 positions before a draft is itself a draft (d₁..d_{k−1}). Each module therefore keeps a committed
/// state over the positions whose inputs are all accepted (i ≤ P − k, with t_P the root) and, to draft, steps a
/// clone of it (MixerState::clone) over the k − 1 speculative positions; the clone is dropped after drafting, which
/// rolls the rejected positions back. The accepted ones are recomputed on the next commit (at most D − 1 block steps
/// per module and step, against one main-model pass).
#include "layers/decoding/mtp.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "layers/decoding/lookahead_loss.h"

namespace ember::decoding {

namespace {

using i64 = std::int64_t;

/// A single token id as a [1] Int64 tensor.
Tensor one_id(i64 id) { return from_vector(std::vector<i64>{id}, {1}); }

/// logits: [n, V] -> the argmax of each row (the first maximum, as greedy sample_token).
std::vector<i64> argmax_rows(const Tensor& logits) {
  const i64 V = logits.shape().back();
  const std::vector<double> z = logits.contiguous().to_vector<double>();
  std::vector<i64> out;
  for (std::size_t r = 0; r * V < z.size(); ++r) {
    const auto row = z.begin() + static_cast<std::ptrdiff_t>(r * V);
    out.push_back(std::max_element(row, row + V) - row);
  }
  return out;
}

/// The model's greedy next tokens after trunk outputs z: [n, D] -> n token ids.
std::vector<i64> greedy_after(const nn::LanguageModel& lm, const Tensor& z) {
  return argmax_rows(lm.logits(lm.final_norm(z)));
}

/// One block's decoding state: its mixer's, and its channel mix's (null with an MLP).
struct BlockState {
  std::unique_ptr<nn::MixerState> mixer;
  std::unique_ptr<nn::MixerState> ffn;

  /// x_t: [1, D] -> the block's output [1, D] at the next position.
  Tensor step(const nn::Block& block, const Tensor& x_t) { return block.step(x_t, *mixer, ffn.get()); }
  /// A deep copy.
  BlockState clone() const { return {mixer->clone(), ffn ? ffn->clone() : nullptr}; }
};

/// A fresh state of `block` for one sequence of up to len tokens.
BlockState init_block_state(const nn::Block& block, i64 len) {
  return {block.mixer->init_state(1, len), block.channel_mix ? block.channel_mix->init_state(1, len) : nullptr};
}

/// Proposes the tokens after the root from the main model's trunk outputs.
class Drafter {
 public:
  virtual ~Drafter() = default;
  /// z_t: [1, D], the main model's trunk output at the next consumed position.
  virtual void consume(const Tensor& z_t) = 0;
  /// tokens t_0..t_P (the root last; the main model has consumed t_0..t_{P−1}) -> m drafts for t_{P+1}..t_{P+m}.
  virtual std::vector<i64> draft(const std::vector<i64>& tokens, i64 m) = 0;
};

/// DeepSeek-V3's modules as drafters: h[k][i] = h^k_i over committed positions, h[0] the main model's final-normed
/// hidden states.
class ModuleDrafter final : public Drafter {
 public:
  ModuleDrafter(const MTPModel& model, i64 len) : model_(model), h_(model.depth() + 1) {
    for (i64 k = 1; k <= model.depth(); ++k) states_.push_back(init_block_state(*model.module(k)->block, len));
  }

  void consume(const Tensor& z_t) override { h_[0].push_back(model_.lm->final_norm(z_t)); }

  std::vector<i64> draft(const std::vector<i64>& tokens, i64 m) override {
    commit(tokens);
    const auto P = static_cast<i64>(tokens.size()) - 1;
    std::vector<i64> ext = tokens, drafts;
    std::vector<std::vector<Tensor>> spec(m + 1);  // spec[k]: h^k at positions h_[k].size()..P−1 from drafts
    const auto at = [&](i64 k, i64 i) {
      const auto n = static_cast<i64>(h_[k].size());
      return i < n ? h_[k][i] : spec[k][i - n];
    };
    for (i64 k = 1; k <= m; ++k) {
      const MTPModule& mod = *model_.module(k);
      if (static_cast<i64>(h_[k].size()) < P) {
        BlockState s = states_[k - 1].clone();
        for (auto i = static_cast<i64>(h_[k].size()); i < P; ++i)
          spec[k].push_back(mod.step(at(k - 1, i), embed(ext[i + k]), *s.mixer, s.ffn.get()));
      }
      const i64 d = argmax_rows(model_.lm->logits(mod.norm->forward(at(k, P - 1))))[0];
      ext.push_back(d);
      drafts.push_back(d);
    }
    return drafts;
  }

 private:
  /// Emb(t): [1, D].
  Tensor embed(i64 t) const { return model_.lm->tok_emb->forward(one_id(t)); }

  /// Advances module k over the positions i ≤ P − k (their token t_{i+k} is accepted) that h^{k−1} covers.
  void commit(const std::vector<i64>& tokens) {
    const auto P = static_cast<i64>(tokens.size()) - 1;
    for (i64 k = 1; k <= model_.depth(); ++k) {
      const MTPModule& mod = *model_.module(k);
      BlockState& s = states_[k - 1];
      const i64 end = std::min(static_cast<i64>(h_[k - 1].size()), P - k + 1);
      for (auto i = static_cast<i64>(h_[k].size()); i < end; ++i)
        h_[k].push_back(mod.step(h_[k - 1][i], embed(tokens[i + k]), *s.mixer, s.ffn.get()));
    }
  }

  const MTPModel& model_;
  std::vector<BlockState> states_;      // module k's committed state at k − 1
  std::vector<std::vector<Tensor>> h_;  // [D + 1][positions] of [1, D]
};

/// Gloeckle heads 2..n as drafters: each head's block steps over the trunk z of every consumed token.
class HeadDrafter final : public Drafter {
 public:
  HeadDrafter(const MultiTokenHeads& model, i64 len) : model_(model), last_(model.heads->size()) {
    for (std::size_t j = 0; j < model.heads->size(); ++j)
      states_.push_back(init_block_state(*model.heads->at<nn::Block>(j), len));
  }

  void consume(const Tensor& z_t) override {
    for (std::size_t j = 0; j < states_.size(); ++j) last_[j] = states_[j].step(*model_.heads->at<nn::Block>(j), z_t);
  }

  std::vector<i64> draft(const std::vector<i64>& /*tokens*/, i64 m) override {
    std::vector<i64> drafts;
    for (i64 j = 0; j < m; ++j) drafts.push_back(greedy_after(*model_.lm, last_[j])[0]);
    return drafts;
  }

 private:
  const MultiTokenHeads& model_;
  std::vector<BlockState> states_;
  std::vector<Tensor> last_;  // head j + 2's block output at the last consumed position, [1, D]
};

/// Throws unless the prompt, the options and the length fit the model and its `drafters`.
void check_generate(const nn::LanguageModelConfig& c, const std::vector<i64>& prompt, const MTPGenerateOptions& o,
                    i64 drafters) {
  EMBER_CHECK(!prompt.empty(), "mtp_generate: the prompt is empty");
  for (i64 id : prompt)
    EMBER_CHECK(id >= 0 && id < c.vocab_size,
                fmt::format("mtp_generate: token {} out of range for vocabulary {}", id, c.vocab_size));
  EMBER_CHECK(
      o.max_new_tokens >= 0 && o.max_drafts >= -1 && o.max_drafts <= drafters,
      fmt::format("mtp_generate: need max_new_tokens >= 0 and max_drafts in [-1, {}] (the drafters), got {}, {}",
                  drafters, o.max_new_tokens, o.max_drafts));
  EMBER_CHECK(static_cast<i64>(prompt.size()) + o.max_new_tokens <= c.max_len,
              fmt::format("mtp_generate: prompt ({}) + max_new_tokens ({}) exceeds max_len {}", prompt.size(),
                          o.max_new_tokens, c.max_len));
}

/// Appends t; false when generation ends with it (the stop token, or `total` tokens).
bool emit(std::vector<i64>& tokens, i64 t, i64 total, i64 stop_token) {
  tokens.push_back(t);
  return t != stop_token && static_cast<i64>(tokens.size()) < total;
}

/// The verification of [root, drafts...] as a chain: accepts the leading drafts equal to the main model's argmax,
/// feeds the accepted positions to the drafter, records the statistics -> the main model's next token.
i64 verify_chain(const nn::LanguageModel& lm, nn::LanguageModelState& state, Drafter& drafter, i64 root,
                 const std::vector<i64>& drafts, MTPGeneration& g) {
  std::vector<i64> chain{root};
  chain.insert(chain.end(), drafts.begin(), drafts.end());
  const auto n = static_cast<i64>(chain.size());
  const Tensor mask = tril(ones({n, n})).to(DType::Bool);
  const Tensor z = lm.verify(chain, mask, arange(static_cast<double>(n)), state);
  const std::vector<i64> best = greedy_after(lm, z);
  i64 a = 0;
  while (a < n - 1 && drafts[a] == best[a]) ++a;
  std::vector<i64> path(a + 1);
  std::iota(path.begin(), path.end(), 0);
  lm.accept(state, path);
  for (i64 j = 0; j <= a; ++j) drafter.consume(narrow(z, 0, j, 1));
  g.drafted.push_back(n - 1);
  g.accepted.push_back(a);
  return best[a];
}

/// The speculative decoding loop shared by both kinds of drafters (after check_generate).
MTPGeneration speculate(const nn::LanguageModel& lm, Drafter& drafter, i64 drafters, const std::vector<i64>& prompt,
                        const MTPGenerateOptions& o) {
  NoGradGuard no_grad;
  const i64 total = static_cast<i64>(prompt.size()) + o.max_new_tokens;
  const i64 per_step = o.max_drafts < 0 ? drafters : o.max_drafts;
  nn::LanguageModelState state = lm.init_state(1, total);
  MTPGeneration g;
  g.tokens = prompt;
  Tensor z;
  for (i64 id : prompt) {
    z = lm.step_trunk(one_id(id), state);
    drafter.consume(z);
  }
  g.prefill_steps = static_cast<i64>(prompt.size());
  if (o.max_new_tokens == 0) return g;
  i64 root = greedy_after(lm, z)[0];
  while (emit(g.tokens, root, total, o.stop_token)) {
    const std::vector<i64> drafts = drafter.draft(g.tokens, std::min(per_step, total - 1 - state.position));
    const i64 next = verify_chain(lm, state, drafter, root, drafts, g);
    bool more = true;
    for (i64 j = 0; j < g.accepted.back() && more; ++j) more = emit(g.tokens, drafts[j], total, o.stop_token);
    if (!more) break;
    root = next;
  }
  return g;
}

}  // namespace

// --- DeepSeek-V3 MTP modules ---

MTPModule::MTPModule(const nn::LanguageModelConfig& c, Generator* gen) : Module("MTPModule") {
  hnorm = register_module("hnorm", std::make_shared<nn::RMSNorm>(c.d_model));
  enorm = register_module("enorm", std::make_shared<nn::RMSNorm>(c.d_model));
  eh_proj = register_module("eh_proj", std::make_shared<nn::Linear>(2 * c.d_model, c.d_model, false, gen));
  block = register_module("block", std::make_shared<nn::Block>(c, c.n_layers - 1, gen));
  norm = register_module("norm", std::make_shared<nn::RMSNorm>(c.d_model));
}

Tensor MTPModule::combine(const Tensor& h_prev, const Tensor& emb) const {
  EMBER_CHECK(h_prev.dim() >= 1 && h_prev.shape() == emb.shape() && h_prev.shape().back() == hnorm->weight.numel(),
              "MTPModule: expected h_prev and emb [..., " + std::to_string(hnorm->weight.numel()) +
                  "] of one shape, got " + shape_str(h_prev.shape()) + " and " + shape_str(emb.shape()));
  return eh_proj->forward(cat({hnorm->forward(h_prev), enorm->forward(emb)}, h_prev.dim() - 1));
}

Tensor MTPModule::hidden(const Tensor& h_prev, const Tensor& emb) const { return block->forward(combine(h_prev, emb)); }

Tensor MTPModule::step(const Tensor& h_prev_t, const Tensor& emb_t, nn::MixerState& state,
                       nn::MixerState* ffn_state) const {
  NoGradGuard no_grad;
  return block->step(combine(h_prev_t, emb_t), state, ffn_state);
}

MTPModel::MTPModel(std::shared_ptr<nn::LanguageModel> model, const MTPConfig& config) : Module("MTPModel") {
  EMBER_CHECK(model != nullptr && config.depth >= 1,
              fmt::format("MTPModel: need a LanguageModel and depth >= 1, got depth {}", config.depth));
  lm = register_module("lm", std::move(model));
  mtp = register_module("mtp", std::make_shared<nn::ModuleList>());
  Generator gen(config.seed);
  for (i64 k = 1; k <= config.depth; ++k) mtp->push_back(std::make_shared<MTPModule>(lm->config(), &gen));
}

Tensor MTPModel::forward(const Tensor& ids) { return lm->forward(ids); }

std::shared_ptr<MTPModule> MTPModel::module(std::int64_t k) const {
  EMBER_CHECK(k >= 1 && k <= depth(), fmt::format("MTPModel: no module {} (depth {})", k, depth()));
  return mtp->at<MTPModule>(static_cast<std::size_t>(k - 1));
}

std::vector<Tensor> MTPModel::module_logits(const Tensor& ids, const Tensor& h0) {
  EMBER_CHECK(ids.dim() == 2 && ids.dtype() == DType::Int64 && h0.dim() == 3 && h0.shape()[0] == ids.shape()[0] &&
                  h0.shape()[1] == ids.shape()[1],
              "MTPModel: expected ids [B, T] Int64 and h0 [B, T, D], got " + dtype_name(ids.dtype()) + " " +
                  shape_str(ids.shape()) + " and " + shape_str(h0.shape()));
  const i64 T = ids.shape()[1];
  EMBER_CHECK(T > depth(),
              fmt::format("MTPModel: sequences of {} tokens are too short for depth {} (need T > D)", T, depth()));
  std::vector<Tensor> out;
  Tensor h = h0;
  for (i64 k = 1; k <= depth(); ++k) {
    const MTPModule& mod = *module(k);
    h = mod.hidden(narrow(h, 1, 0, T - k), lm->tok_emb->forward(narrow(ids, 1, k, T - k).contiguous()));
    out.push_back(lm->logits(mod.norm->forward(h)));
  }
  return out;
}

std::vector<Tensor> MTPModel::depth_logits(const Tensor& ids) {
  const Tensor h0 = lm->hidden(ids);
  std::vector<Tensor> out{lm->logits(h0)};
  for (Tensor& l : module_logits(ids, h0)) out.push_back(l);
  return out;
}

MTPLoss mtp_loss(MTPModel& model, const Tensor& input, const Tensor& target, double lambda) {
  check_batch(input, target, "mtp_loss");
  EMBER_CHECK(lambda >= 0.0, fmt::format("mtp_loss: lambda must be >= 0, got {}", lambda));
  MTPLoss loss;
  if (lambda == 0.0) {
    loss.main = loss.total = lookahead_cross_entropy(model.forward(input), target, "mtp_loss");
    return loss;
  }
  const Tensor h0 = model.lm->hidden(input);
  loss.main = lookahead_cross_entropy(model.lm->logits(h0), target, "mtp_loss");
  const std::vector<Tensor> logits = model.module_logits(input, h0);
  const i64 T = input.shape()[1], D = model.depth();
  Tensor extra;
  for (i64 k = 1; k <= D; ++k) {
    loss.depth.push_back(lookahead_cross_entropy(logits[k - 1], narrow(target, 1, k, T - k), "mtp_loss"));
    extra = k == 1 ? loss.depth.back() : extra + loss.depth.back();
  }
  loss.total = loss.main + extra * (lambda / static_cast<double>(D));
  return loss;
}

std::function<Tensor(nn::Module&, const Tensor&, const Tensor&)> mtp_objective(double lambda) {
  return [lambda](nn::Module& m, const Tensor& input, const Tensor& target) {
    auto* model = dynamic_cast<MTPModel*>(&m);
    EMBER_CHECK(model != nullptr, "mtp_objective: the model is a " + m.type_name() + ", not an MTPModel");
    return mtp_loss(*model, input, target, lambda).total;
  };
}

// --- Gloeckle et al. heads ---

MultiTokenHeads::MultiTokenHeads(std::shared_ptr<nn::LanguageModel> model, std::int64_t n, std::uint64_t seed)
    : Module("MultiTokenHeads") {
  EMBER_CHECK(model != nullptr && n >= 1, fmt::format("MultiTokenHeads: need a LanguageModel and n >= 1, got {}", n));
  lm = register_module("lm", std::move(model));
  heads = register_module("heads", std::make_shared<nn::ModuleList>());
  Generator gen(seed);
  for (i64 i = 2; i <= n; ++i)
    heads->push_back(std::make_shared<nn::Block>(lm->config(), lm->config().n_layers - 1, &gen));
}

Tensor MultiTokenHeads::forward(const Tensor& ids) { return lm->forward(ids); }

std::vector<Tensor> MultiTokenHeads::head_logits(const Tensor& ids) {
  const Tensor z = lm->trunk(ids);
  std::vector<Tensor> out{lm->logits(lm->final_norm(z))};
  for (std::size_t j = 0; j < heads->size(); ++j) out.push_back(lm->logits(lm->final_norm((*heads)[j]->forward(z))));
  return out;
}

Tensor multi_token_loss(MultiTokenHeads& model, const Tensor& input, const Tensor& target) {
  check_batch(input, target, "multi_token_loss");
  const std::vector<Tensor> logits = model.head_logits(input);
  Tensor total = lookahead_cross_entropy(logits[0], target, "multi_token_loss");
  for (std::size_t i = 1; i < logits.size(); ++i)
    total = total + lookahead_cross_entropy(logits[i], shift_target(target, static_cast<i64>(i)), "multi_token_loss");
  return total;
}

std::function<Tensor(nn::Module&, const Tensor&, const Tensor&)> multi_token_objective() {
  return [](nn::Module& m, const Tensor& input, const Tensor& target) {
    auto* model = dynamic_cast<MultiTokenHeads*>(&m);
    EMBER_CHECK(model != nullptr, "multi_token_objective: the model is a " + m.type_name() + ", not MultiTokenHeads");
    return multi_token_loss(*model, input, target);
  };
}

// --- speculative decoding ---

double MTPGeneration::tokens_per_forward() const {
  if (accepted.empty()) return 0.0;
  return 1.0 + static_cast<double>(std::accumulate(accepted.begin(), accepted.end(), i64{0})) /
                   static_cast<double>(accepted.size());
}

std::vector<double> MTPGeneration::acceptance_rate() const {
  const i64 J = drafted.empty() ? 0 : *std::max_element(drafted.begin(), drafted.end());
  std::vector<double> rate;
  for (i64 j = 1; j <= J; ++j) {
    double tried = 0, kept = 0;
    for (std::size_t s = 0; s < drafted.size(); ++s) {
      if (drafted[s] < j || accepted[s] < j - 1) continue;
      tried += 1;
      kept += accepted[s] >= j;
    }
    rate.push_back(tried > 0 ? kept / tried : std::numeric_limits<double>::quiet_NaN());
  }
  return rate;
}

MTPGeneration mtp_generate(const MTPModel& model, const std::vector<std::int64_t>& prompt,
                           const MTPGenerateOptions& options) {
  check_generate(model.lm->config(), prompt, options, model.depth());
  ModuleDrafter drafter(model, static_cast<i64>(prompt.size()) + options.max_new_tokens);
  return speculate(*model.lm, drafter, model.depth(), prompt, options);
}

MTPGeneration mtp_generate(const MultiTokenHeads& model, const std::vector<std::int64_t>& prompt,
                           const MTPGenerateOptions& options) {
  check_generate(model.lm->config(), prompt, options, model.num_heads() - 1);
  HeadDrafter drafter(model, static_cast<i64>(prompt.size()) + options.max_new_tokens);
  return speculate(*model.lm, drafter, model.num_heads() - 1, prompt, options);
}

}  // namespace ember::decoding
