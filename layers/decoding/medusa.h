/// \file
/// \brief Medusa (Cai et al. 2024; technique notes §10): K extra decoding heads on a LanguageModel's last hidden
/// state, their training losses (Medusa-1 on a frozen base, Medusa-2 jointly with it), and speculative generation
/// that drafts a candidate tree from the heads and verifies it with one forward pass of the base model.
///
/// Head k (k = 1..K) on the final-normed hidden state h_t predicts token t + k + 1 (the base head predicts t + 1):
///   p⁽ᵏ⁾_t = softmax(W₂⁽ᵏ⁾ (h_t + SiLU(W₁⁽ᵏ⁾ h_t + b₁⁽ᵏ⁾))),
/// a residual SiLU block then a linear head, with W₁ = 0 and b₁ = 0 at the start (the block is the identity) and
/// W₂ a copy of the base model's head (so every head starts as the base's next-token prediction).
///
/// Training: L = Σ_k λ_k CE(p⁽ᵏ⁾_t, x_{t+k+1}), λ_k = 0.8ᵏ (the paper's weights), over positions whose label is
/// inside the sequence and not ignored; Medusa-1 freezes the base (no gradient reaches it), Medusa-2 adds the base's
/// own next-token loss CE(p_t, x_{t+1}) and trains both.
///
/// Generation (one sequence): the base model's next token is the root; the heads' top-k tokens fill a candidate
/// tree (decoding::MedusaTree) below it; LanguageModel::verify runs the base over every tree node at once (tree
/// attention; a chain for recurrent mixers); greedy or typical acceptance keeps the longest accepted root-to-leaf
/// path; LanguageModel::accept keeps its state; the accepted tokens are emitted, and the base's prediction at the
/// last accepted node is the next root. With greedy acceptance the output equals plain greedy decoding exactly.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "layers/decoding/medusa_tree.h"
#include "layers/linear.h"
#include "layers/models/language_model.h"

namespace ember::decoding {

/// One Medusa head: a residual SiLU block and a linear head, logits = W₂ (h + SiLU(W₁ h + b₁)).
class MedusaHead : public nn::Module {
 public:
  /// A head from d_model to vocab_size: W₁ = 0 and b₁ = 0 (the block starts as the identity), W₂ = `head_weight`
  /// [V, D] copied. Throws ember::Error naming MedusaHead when head_weight is not [vocab_size, d_model].
  MedusaHead(std::int64_t d_model, std::int64_t vocab_size, const Tensor& head_weight);
  /// h: [..., D] -> logits [..., V].
  Tensor forward(const Tensor& h) override;
  /// h: [..., D] -> logits [..., V] (forward(), callable on a const head).
  Tensor logits(const Tensor& h) const;
  std::shared_ptr<nn::Linear> block;  ///< W₁ [D, D] and b₁ [D] of the residual block
  std::shared_ptr<nn::Linear> out;    ///< W₂ [V, D], no bias
};

/// K Medusa heads over one base model's hidden states.
class MedusaHeads : public nn::Module {
 public:
  /// `num_heads` heads whose W₂ starts as a copy of lm's head (or of its token embedding when weights are tied).
  /// Throws ember::Error naming MedusaHeads for num_heads < 1.
  MedusaHeads(const nn::LanguageModel& lm, std::int64_t num_heads);
  /// h: [..., D] (final-normed) -> logits [K, ..., V]: slice k − 1 is head k, which predicts the token k + 1
  /// positions after the one h was computed at (one stacked tensor, so that the loss and the candidates index
  /// heads along dim 0). Throws ember::Error naming MedusaHeads when h's last dim is not D.
  Tensor forward(const Tensor& h) override;
  /// forward(), callable on const heads.
  Tensor logits(const Tensor& h) const;
  /// K.
  std::int64_t num_heads() const { return static_cast<std::int64_t>(heads.size()); }
  /// D, the hidden size the heads read.
  std::int64_t d_model() const { return d_model_; }
  /// V, the vocabulary the heads predict.
  std::int64_t vocab_size() const { return vocab_size_; }
  /// heads[k − 1] is head k, registered as the submodule named k − 1 (parameters 0.block.weight, 0.block.bias,
  /// 0.out.weight, 1.block.weight, ...).
  std::vector<std::shared_ptr<MedusaHead>> heads;

 protected:
  std::string extra_repr() const override;

 private:
  std::int64_t d_model_;
  std::int64_t vocab_size_;
};

/// A base LanguageModel with Medusa heads; both are submodules, so parameters, state_dict() and checkpoints hold
/// the base (names lm.tok_emb.weight, ...) and the heads (heads.0.block.weight, ...).
class MedusaModel : public nn::Module {
 public:
  /// `num_heads` fresh heads on `lm` (see MedusaHeads). Throws ember::Error naming MedusaModel when lm is null.
  MedusaModel(std::shared_ptr<nn::LanguageModel> lm, std::int64_t num_heads);
  /// ids: [B, T] Int64 -> the base model's logits [B, T, V] (what the Trainer evaluates).
  Tensor forward(const Tensor& ids) override;
  std::shared_ptr<nn::LanguageModel> lm;  ///< the base model
  std::shared_ptr<MedusaHeads> heads;     ///< the K heads
};

/// The Medusa training loss; a callable (model, input, target) -> scalar that can be the Trainer's objective
/// (train::Trainer::set_objective) for a MedusaModel.
///
/// target is the batch's next-token target ([B, T] Int64: target[t] = token t + 1, −100 = ignored), so head k's
/// label at t is target[t + k], −100 past the end. Each term is the mean cross-entropy over its scored positions
/// (0 when a head has none).
struct MedusaLoss {
  /// false: Medusa-1, Σ_k λ_k CE_k with the base frozen (its hidden states are computed without gradient);
  /// true: Medusa-2, base_weight · CE_base + Σ_k λ_k CE_k, trained jointly. (The paper also gives the backbone a
  /// smaller learning rate in Medusa-2; that is the optimizer's business: parameter groups.)
  bool joint = false;
  /// λ_1..λ_K; empty: λ_k = 0.8ᵏ. Otherwise one weight per head.
  std::vector<double> weights;
  /// The weight of the base model's own next-token loss (Medusa-2 only).
  double base_weight = 1.0;
  /// model must be a MedusaModel; input, target: [B, T] Int64 -> the loss []. Throws ember::Error naming
  /// medusa_loss and the shapes on a wrong model, mismatched shapes or a weight list of the wrong length.
  Tensor operator()(nn::Module& model, const Tensor& input, const Tensor& target) const;
};

/// How verification accepts candidates.
enum class AcceptanceRule {
  greedy,   ///< a candidate is accepted iff it is the base model's argmax at its parent (output = greedy decoding)
  typical,  ///< typical acceptance: p(x | parent) > min(ε, δ·exp(−H)) under softmax(logits / temperature)
};

/// Options of medusa_generate().
struct MedusaGenerateOptions {
  std::int64_t max_new_tokens = 32;  ///< tokens to add after the prompt (exactly this many unless stop_token)
  /// The candidate tree. Empty: default_medusa_tree() for a model whose lm supports_tree(), with the paths deeper
  /// than the K heads dropped and top_k cut to the vocabulary size (dropping paths that use larger indices), and
  /// chain_tree(K) otherwise. A given tree must fit: depth ≤ K, top_k ≤ V, and a chain unless supports_tree().
  std::optional<MedusaTree> tree;
  AcceptanceRule acceptance = AcceptanceRule::greedy;  ///< greedy (default) or typical
  double temperature = 1.0;           ///< typical only: the base distribution is softmax(logits / temperature)
  double posterior_threshold = 0.09;  ///< typical only: ε, as the reference's medusa_generate
  double posterior_alpha = 0.3;       ///< typical only: δ, as the reference's medusa_generate
  std::int64_t stop_token = -1;       ///< stop after emitting this token (−1 = never)
};

/// What one medusa_generate() call did.
struct MedusaStats {
  std::int64_t prefill_passes = 0;  ///< base-model steps over the prompt (one per prompt token)
  std::int64_t verify_passes = 0;   ///< base-model forward passes over a candidate tree (LanguageModel::verify)
  /// Per verify pass: the candidates accepted after the root (0..tree depth); that pass adds this + 1 tokens
  /// (before the last pass's tokens are cut to max_new_tokens).
  std::vector<std::int64_t> accept_lengths;
  /// The mean of accept_length + 1 over the verify passes: tokens per base-model forward once the prompt is read
  /// (the paper's average acceptance length); 0 without a verify pass.
  double tokens_per_forward() const;
};

/// The output of medusa_generate().
struct MedusaOutput {
  std::vector<std::int64_t> tokens;  ///< the prompt followed by the generated tokens
  MedusaStats stats;                 ///< passes and accept lengths
};

/// Speculative decoding of one sequence with Medusa heads: the prompt followed by up to max_new_tokens tokens.
/// The prompt is read token by token (LanguageModel::step_trunk); the root of each tree is the base model's argmax
/// (also with typical acceptance, as the reference's default `fast` mode), so every emitted token passes the
/// acceptance rule at its prefix. The KV cache holds the prompt, the tokens to generate and one tree; near max_len
/// the tree is cut to the paths that fit (its first nodes in (depth, lexicographic) order). Records no gradients.
/// Throws ember::Error naming medusa_generate for an empty prompt, a token outside the vocabulary, prompt +
/// max_new_tokens > max_len, a tree that does not fit the model, or bad typical-acceptance options.
MedusaOutput medusa_generate(const MedusaModel& model, const std::vector<std::int64_t>& prompt,
                             const MedusaGenerateOptions& options = {});

}  // namespace ember::decoding
