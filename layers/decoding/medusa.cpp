/// \file
/// \brief Medusa heads, their Medusa-1 and Medusa-2 losses, and speculative generation with tree verification:
/// logits⁽ᵏ⁾ = W₂⁽ᵏ⁾ (h + SiLU(W₁⁽ᵏ⁾ h + b₁⁽ᵏ⁾)), L = [CE_base] + Σ_k λ_k CE(logits⁽ᵏ⁾_t, x_{t+k+1}).
#include "layers/decoding/medusa.h"

#include <algorithm>
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "layers/decoding/lookahead_loss.h"
#include "layers/functional.h"

namespace ember::decoding {

namespace {

using i64 = std::int64_t;

/// Token ids -> [n] Int64.
Tensor ids_tensor(const std::vector<i64>& ids) { return from_vector(ids, {static_cast<i64>(ids.size())}); }

/// logits: [V] -> the index of the largest, the first among equals (as LanguageModel::generate picks).
i64 argmax_of(const Tensor& logits) {
  const std::vector<double> z = logits.to_vector<double>();
  return std::max_element(z.begin(), z.end()) - z.begin();
}

/// λ_1..λ_K: the given weights, or 0.8ᵏ.
std::vector<double> head_weights(const std::vector<double>& given, i64 K) {
  if (!given.empty()) {
    EMBER_CHECK(static_cast<i64>(given.size()) == K,
                fmt::format("medusa_loss: {} head weights for {} heads (give one per head, or none for 0.8^k)",
                            given.size(), K));
    return given;
  }
  std::vector<double> lambda;
  for (i64 k = 1; k <= K; ++k) lambda.push_back(std::pow(0.8, static_cast<double>(k)));
  return lambda;
}

/// The default tree for `model`: mc_sim_7b_63 cut to K heads and V tokens, or the chain of K nodes.
MedusaTree default_tree_for(const MedusaModel& model) {
  const i64 K = model.heads->num_heads(), V = model.heads->vocab_size();
  if (!model.lm->supports_tree()) return chain_tree(K);
  const MedusaTree full_tree = default_medusa_tree();
  const i64 top_k = std::min(full_tree.top_k, V);
  std::vector<std::vector<i64>> kept;
  for (const auto& path : full_tree.paths)
    if (static_cast<i64>(path.size()) <= K && *std::max_element(path.begin(), path.end()) < top_k) kept.push_back(path);
  return MedusaTree(std::move(kept), top_k);
}

/// The tree medusa_generate uses: options.tree checked against the model, or the default.
MedusaTree tree_for(const MedusaModel& model, const MedusaGenerateOptions& o) {
  if (!o.tree) return default_tree_for(model);
  const MedusaTree& tree = *o.tree;
  const i64 K = model.heads->num_heads(), V = model.heads->vocab_size();
  EMBER_CHECK(tree.max_depth() <= K && tree.top_k <= V,
              fmt::format("medusa_generate: a tree of depth {} and top_k {} does not fit {} heads over {} tokens",
                          tree.max_depth(), tree.top_k, K, V));
  EMBER_CHECK(tree.num_leaves() == 1 || model.lm->supports_tree(),
              fmt::format("medusa_generate: the model's mixers verify only chains, got a tree of {} leaves (use "
                          "chain_tree)",
                          tree.num_leaves()));
  return tree;
}

/// Throws unless the prompt, its length and the options fit the model.
void check_request(const nn::LanguageModel& lm, const std::vector<i64>& prompt, const MedusaGenerateOptions& o) {
  const auto& c = lm.config();
  EMBER_CHECK(!prompt.empty(), "medusa_generate: the prompt is empty");
  for (i64 id : prompt)
    EMBER_CHECK(id >= 0 && id < c.vocab_size,
                fmt::format("medusa_generate: token {} out of range for vocabulary {}", id, c.vocab_size));
  EMBER_CHECK(o.max_new_tokens >= 0 && static_cast<i64>(prompt.size()) + o.max_new_tokens <= c.max_len,
              fmt::format("medusa_generate: prompt ({}) + max_new_tokens ({}) must fit max_len {}", prompt.size(),
                          o.max_new_tokens, c.max_len));
  EMBER_CHECK(o.acceptance == AcceptanceRule::greedy ||
                  (o.temperature > 0.0 && o.posterior_threshold >= 0.0 && o.posterior_alpha >= 0.0),
              fmt::format("medusa_generate: typical acceptance needs temperature > 0 and posterior_threshold, "
                          "posterior_alpha >= 0, got {}, {}, {}",
                          o.temperature, o.posterior_threshold, o.posterior_alpha));
}

/// The tree's first `n` nodes in (depth, lexicographic) order (a tree again: parents come first), or the tree
/// itself when it has no more; n ≥ 2.
MedusaTree first_nodes(const MedusaTree& tree, i64 n) {
  if (tree.num_nodes() <= n) return tree;
  return MedusaTree({tree.paths.begin(), tree.paths.begin() + (n - 1)}, tree.top_k);
}

/// node_logits: [N, V] -> [L, D + 1, V], the logits along each retrieve row (padding reads the root's; acceptance
/// never looks at it).
Tensor along_rows(const MedusaTree& tree, const Tensor& node_logits) {
  std::vector<i64> nodes = tree.retrieve_indices.to_vector<i64>();
  for (i64& j : nodes) j = std::max<i64>(j, 0);
  const Shape& rows = tree.retrieve_indices.shape();
  return reshape(index_select(node_logits, 0, ids_tensor(nodes)), {rows[0], rows[1], node_logits.shape()[1]});
}

/// One decoding step's outcome.
struct Step {
  std::vector<i64> accepted;  ///< the accepted candidates after the root, in order
  i64 next_root = 0;          ///< the base model's argmax at the last accepted node
  Tensor h;                   ///< [D] the final-normed hidden state there
};

/// Drafts the tree below `root` from the heads at h ([D]), verifies it in one pass, accepts the best path and
/// advances the state past the root and the accepted candidates.
Step verify_step(const MedusaModel& model, const MedusaTree& tree, i64 root, const Tensor& h,
                 nn::LanguageModelState& state, const MedusaGenerateOptions& o) {
  const nn::LanguageModel& lm = *model.lm;
  const Candidates cand = generate_candidates(tree, root, model.heads->logits(h));
  const std::vector<i64> node_tokens = cand.tree_tokens.to_vector<i64>();
  const Tensor h_nodes = lm.final_norm(lm.verify(node_tokens, tree.attention_mask, tree.depth, state));  // [N, D]
  const Tensor node_logits = lm.logits(h_nodes);                                                         // [N, V]
  const Tensor row_logits = along_rows(tree, node_logits);
  const Acceptance a =
      o.acceptance == AcceptanceRule::greedy
          ? greedy_accept(tree, cand.paths, row_logits)
          : typical_accept(tree, cand.paths, row_logits, o.temperature, o.posterior_threshold, o.posterior_alpha);
  const std::vector<i64> row = tree.retrieve_indices.to_vector<i64>();
  const i64 C = tree.max_depth() + 1;
  const std::vector<i64> path(row.begin() + a.best_path * C, row.begin() + a.best_path * C + a.accept_length + 1);
  lm.accept(state, path);
  Step step;
  for (std::size_t i = 1; i < path.size(); ++i) step.accepted.push_back(node_tokens[path[i]]);
  step.next_root = argmax_of(select(node_logits, 0, path.back()));
  step.h = select(h_nodes, 0, path.back());
  return step;
}

}  // namespace

MedusaHead::MedusaHead(std::int64_t d_model, std::int64_t vocab_size, const Tensor& head_weight)
    : Module("MedusaHead") {
  EMBER_CHECK(head_weight.defined() && head_weight.shape() == Shape({vocab_size, d_model}),
              fmt::format("MedusaHead: expected a head weight [{}, {}], got {}", vocab_size, d_model,
                          head_weight.defined() ? shape_str(head_weight.shape()) : "none"));
  Generator unused(0);  // Linear draws an initialisation that is overwritten below; keep the default generator
  block = register_module("block", std::make_shared<nn::Linear>(d_model, d_model, true, &unused));
  out = register_module("out", std::make_shared<nn::Linear>(d_model, vocab_size, false, &unused));
  to(head_weight.dtype());
  to(head_weight.device());
  NoGradGuard no_grad;
  block->weight.zero_();
  block->bias.zero_();
  raw::copy_(out->weight, head_weight.detach());
}

Tensor MedusaHead::forward(const Tensor& h) { return logits(h); }

Tensor MedusaHead::logits(const Tensor& h) const {
  return nn::linear(h + silu(nn::linear(h, block->weight, block->bias)), out->weight);
}

MedusaHeads::MedusaHeads(const nn::LanguageModel& lm, std::int64_t num_heads)
    : Module("MedusaHeads"), d_model_(lm.config().d_model), vocab_size_(lm.config().vocab_size) {
  EMBER_CHECK(num_heads >= 1, fmt::format("MedusaHeads: num_heads must be >= 1, got {}", num_heads));
  const Tensor& w2 = lm.head ? lm.head->weight : lm.tok_emb->weight;
  for (i64 k = 0; k < num_heads; ++k)
    heads.push_back(register_module(std::to_string(k), std::make_shared<MedusaHead>(d_model_, vocab_size_, w2)));
}

Tensor MedusaHeads::forward(const Tensor& h) { return logits(h); }

Tensor MedusaHeads::logits(const Tensor& h) const {
  EMBER_CHECK(h.defined() && h.dim() >= 1 && h.shape().back() == d_model_,
              fmt::format("MedusaHeads: expected h [..., {}], got {}", d_model_,
                          h.defined() ? shape_str(h.shape()) : "an undefined tensor"));
  std::vector<Tensor> per_head;
  for (const auto& head : heads) per_head.push_back(head->logits(h));
  return stack(per_head, 0);
}

std::string MedusaHeads::extra_repr() const {
  return fmt::format("heads={}, d_model={}, vocab={}", num_heads(), d_model_, vocab_size_);
}

MedusaModel::MedusaModel(std::shared_ptr<nn::LanguageModel> base, std::int64_t num_heads) : Module("MedusaModel") {
  EMBER_CHECK(base != nullptr, "MedusaModel: the base LanguageModel is null");
  lm = register_module("lm", std::move(base));
  heads = register_module("heads", std::make_shared<MedusaHeads>(*lm, num_heads));
}

Tensor MedusaModel::forward(const Tensor& ids) { return lm->forward(ids); }

Tensor MedusaLoss::operator()(nn::Module& m, const Tensor& input, const Tensor& target) const {
  auto* model = dynamic_cast<MedusaModel*>(&m);
  EMBER_CHECK(model != nullptr, "medusa_loss: expected a MedusaModel, got a " + m.type_name());
  EMBER_CHECK(input.defined() && target.defined() && input.dim() == 2 && input.dtype() == DType::Int64 &&
                  target.dtype() == DType::Int64 && target.shape() == input.shape(),
              "medusa_loss: expected Int64 input and target of one shape [B, T], got " +
                  (input.defined() ? dtype_name(input.dtype()) + " " + shape_str(input.shape()) : "none") + " and " +
                  (target.defined() ? dtype_name(target.dtype()) + " " + shape_str(target.shape()) : "none"));
  const std::vector<double> lambda = head_weights(weights, model->heads->num_heads());
  Tensor h;
  if (joint) {
    h = model->lm->hidden(input);
  } else {
    NoGradGuard frozen_base;
    h = model->lm->hidden(input);
  }
  const Tensor head_logits = model->heads->forward(h);  // [K, B, T, V]
  Tensor loss = joint ? base_weight * lookahead_cross_entropy(model->lm->logits(h), target, "medusa_loss") : Tensor();
  for (std::size_t k = 1; k <= lambda.size(); ++k) {
    const Tensor term =
        lambda[k - 1] * lookahead_cross_entropy(select(head_logits, 0, static_cast<i64>(k) - 1), shift_target(target, static_cast<i64>(k)),
                                             "medusa_loss");
    loss = loss.defined() ? loss + term : term;
  }
  return loss;
}

double MedusaStats::tokens_per_forward() const {
  if (accept_lengths.empty()) return 0.0;
  double sum = 0.0;
  for (i64 a : accept_lengths) sum += static_cast<double>(a + 1);
  return sum / static_cast<double>(accept_lengths.size());
}

MedusaOutput medusa_generate(const MedusaModel& model, const std::vector<std::int64_t>& prompt,
                             const MedusaGenerateOptions& o) {
  const nn::LanguageModel& lm = *model.lm;
  check_request(lm, prompt, o);
  const MedusaTree tree = tree_for(model, o);
  NoGradGuard no_grad;
  MedusaOutput out{prompt, {}};
  if (o.max_new_tokens == 0) return out;
  const i64 end = static_cast<i64>(prompt.size()) + o.max_new_tokens;
  // Room for the prompt, the generated tokens and one whole tree after them, up to max_len.
  const i64 capacity = std::min(lm.config().max_len, end + tree.num_nodes() - 1);
  nn::LanguageModelState state = lm.init_state(1, capacity);
  Tensor z;
  for (i64 id : prompt) z = lm.step_trunk(ids_tensor({id}), state);
  out.stats.prefill_passes = static_cast<i64>(prompt.size());
  Tensor h = lm.final_norm(select(z, 0, 0));
  i64 root = argmax_of(lm.logits(h));
  // Emits `token`; true when generation is over.
  const auto emit = [&](i64 token) {
    out.tokens.push_back(token);
    return token == o.stop_token || static_cast<i64>(out.tokens.size()) == end;
  };
  while (!emit(root)) {
    const MedusaTree fitting = first_nodes(tree, capacity - state.position);
    Step step = verify_step(model, fitting, root, h, state, o);
    ++out.stats.verify_passes;
    out.stats.accept_lengths.push_back(static_cast<i64>(step.accepted.size()));
    bool done = false;
    for (std::size_t i = 0; i < step.accepted.size() && !done; ++i) done = emit(step.accepted[i]);
    if (done) break;
    root = step.next_root;
    h = step.h;
  }
  return out;
}

}  // namespace ember::decoding
