/// \file
/// \brief Multi-token prediction (technique notes §11): DeepSeek-V3's sequential MTP modules, Gloeckle et al.'s
/// independent heads, their training losses, and speculative decoding with them as drafters.
///
/// DeepSeek-V3 (§2.2), module k = 1..D on the main model's final hidden states h⁰ (final-normed):
/// - `h'^k_i = M_k·[RMSNorm(h^{k−1}_i) ; RMSNorm(Emb(t_{i+k}))]`, M_k ∈ R^{D×2D}, in the report's order (previous
///   depth first, then the embedding; implementations loading the released weights put the embedding first),
/// - `h^k_{0:T−k} = TRM_k(h'^k_{0:T−k})`, one causal block of the base model's kind (nn::Block),
/// - `P^k_i = softmax(OutHead(RMSNorm_k(h^k_i)))` predicts t_{i+k+1}; the embedding Emb and the head OutHead are
///   the base model's own (shared, not copied),
/// - `L = L_main + (λ/D)·Σ_k L^k`, L^k the mean cross-entropy of P^k_i against t_{i+k+1} over the scored positions
///   i = 0..T−k−1 (the report divides the sum by T; a mean over what is scored keeps every L^k on one scale).
///
/// Gloeckle et al. (2024): a shared trunk z = f_s(x), heads i = 1..n and a shared unembedding f_u, with
/// `P(x_{t+i} | x_{≤t}) = softmax(f_u(f_{h_i}(z_t)))` and loss `Σ_i CE(head i at t, x_{t+i})`, here each head's CE a
/// mean over its scored positions. Not built: the paper's memory-saving order of backward passes (one head at a
/// time); autograd runs the whole sum at once, with the same gradients.
///
/// Speculative decoding (greedy, chains): the main model's token t_{P} (the root) and the drafts d₁..d_m from the
/// modules are verified in one pass of LanguageModel::verify; the longest prefix of drafts equal to the main model's
/// argmax is kept, so the output is exactly greedy decoding's, whatever the drafters' weights.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "layers/containers.h"
#include "layers/linear.h"
#include "layers/models/language_model.h"
#include "layers/norm.h"

namespace ember::decoding {

/// How many MTP modules and how they are initialised.
struct MTPConfig {
  std::int64_t depth = 1;  ///< D, the number of sequential modules (DeepSeek-V3 uses 1)
  std::uint64_t seed = 0;  ///< initial weights of the modules
};

/// One DeepSeek-V3 MTP module (depth k): hnorm, enorm, the projection M_k (eh_proj), one block and a final norm.
/// Emb is the base model's token embedding alone (no learned position table): the block sees positions through
/// h^{k−1}, and through RoPE in its mixer when the base model uses RoPE. The layers keep their own initialisation
/// (PyTorch's, drawn from the generator), not the base model's GPT-2 redraw.
class MTPModule : public nn::Module {
 public:
  /// A module whose block has the shape and mixer of the base model `c` (built as c's last layer), drawn from gen.
  MTPModule(const nn::LanguageModelConfig& c, Generator* gen);
  /// h_prev: [B, T, D] (h^{k−1}), emb: [B, T, D] (Emb(t_{i+k})) -> h'^k = M_k·[hnorm(h_prev) ; enorm(emb)] [B, T, D].
  Tensor combine(const Tensor& h_prev, const Tensor& emb) const;
  /// h_prev, emb: [B, T, D] -> h^k = block(combine(h_prev, emb)) [B, T, D] (before the module's final norm).
  Tensor hidden(const Tensor& h_prev, const Tensor& emb) const;
  /// h_prev_t, emb_t: [B, D] -> h^k_t [B, D] for the next position, with the block's decoding states (see
  /// nn::Block::step). Records no gradients.
  Tensor step(const Tensor& h_prev_t, const Tensor& emb_t, nn::MixerState& state, nn::MixerState* ffn_state) const;

  std::shared_ptr<nn::RMSNorm> hnorm;   ///< RMSNorm of h^{k−1}
  std::shared_ptr<nn::RMSNorm> enorm;   ///< RMSNorm of the embedding
  std::shared_ptr<nn::Linear> eh_proj;  ///< M_k: 2D -> D, no bias
  std::shared_ptr<nn::Block> block;     ///< TRM_k
  std::shared_ptr<nn::RMSNorm> norm;    ///< the final norm before the shared head
};

/// A LanguageModel with D sequential MTP modules (DeepSeek-V3). The state dict holds both: `lm.*` and `mtp.k.*`.
class MTPModel : public nn::Module {
 public:
  /// The modules for `lm` (shared: the model trains and decodes the same LanguageModel object).
  MTPModel(std::shared_ptr<nn::LanguageModel> lm, const MTPConfig& config);
  /// ids: [B, T] Int64 -> the main model's logits [B, T, V] (what the Trainer evaluates).
  Tensor forward(const Tensor& ids) override;
  /// ids: [B, T] Int64 -> D + 1 logits: [0] the main model's [B, T, V]; [k] module k's [B, T − k, V], whose
  /// position i predicts t_{i+k+1}. Throws ember::Error naming MTPModel and the shapes unless T > D.
  std::vector<Tensor> depth_logits(const Tensor& ids);
  /// ids: [B, T] Int64, h0: [B, T, D] = lm->hidden(ids) -> the D modules' logits, [k − 1] = module k's
  /// [B, T − k, V]. Throws ember::Error naming MTPModel and the shapes unless T > D.
  std::vector<Tensor> module_logits(const Tensor& ids, const Tensor& h0);
  /// D.
  std::int64_t depth() const { return static_cast<std::int64_t>(mtp->size()); }
  /// Module k, 1 ≤ k ≤ D.
  std::shared_ptr<MTPModule> module(std::int64_t k) const;

  std::shared_ptr<nn::LanguageModel> lm;  ///< the main model (embedding and head shared with the modules)
  std::shared_ptr<nn::ModuleList> mtp;    ///< the modules, depth 1 first
};

/// The terms of the MTP loss.
struct MTPLoss {
  Tensor total;               ///< [] L_main + (λ/D)·Σ_k L^k
  Tensor main;                ///< [] L_main, the next-token cross-entropy
  std::vector<Tensor> depth;  ///< [] L^1..L^D (empty when λ = 0: the modules are then not run)
};

/// input: [B, T] Int64, target: [B, T] Int64 next-token targets (target[i] = t_{i+1}, −100 = ignored) -> the MTP
/// loss. Module k's target at i is target[i + k] (= t_{i+k+1}), for i = 0..T−k−1. Cross-entropies are means over
/// the scored positions (0 when none is). λ = 0 gives exactly the plain next-token loss and gradients. Throws
/// ember::Error naming mtp_loss for λ < 0, mismatched shapes, or T ≤ D.
MTPLoss mtp_loss(MTPModel& model, const Tensor& input, const Tensor& target, double lambda = 0.3);

/// A training loss of the Trainer's Objective signature: (model, input, target) -> mtp_loss(...).total; the model
/// must be an MTPModel (ember::Error otherwise).
std::function<Tensor(nn::Module&, const Tensor&, const Tensor&)> mtp_objective(double lambda = 0.3);

/// Gloeckle et al.'s n independent heads on the shared trunk z = lm.trunk(ids). Head 1 is the main model's own
/// next-token prediction (final norm and head on z); heads i = 2..n are one nn::Block each on z, then the shared
/// final norm and head. (In the paper head 1 is a transformer layer too; here the trunk is the whole LanguageModel,
/// so that its plain generate() stays the reference for decoding.)
class MultiTokenHeads : public nn::Module {
 public:
  /// n ≥ 1 heads for `lm` (n − 1 new blocks, of lm's kind, drawn with `seed`).
  MultiTokenHeads(std::shared_ptr<nn::LanguageModel> lm, std::int64_t n, std::uint64_t seed = 0);
  /// ids: [B, T] Int64 -> the main model's logits [B, T, V].
  Tensor forward(const Tensor& ids) override;
  /// ids: [B, T] Int64 -> n logits [B, T, V]; head i at position t predicts x_{t+i}.
  std::vector<Tensor> head_logits(const Tensor& ids);
  /// n.
  std::int64_t num_heads() const { return static_cast<std::int64_t>(heads->size()) + 1; }

  std::shared_ptr<nn::LanguageModel> lm;  ///< the trunk, final norm and unembedding (head 1)
  std::shared_ptr<nn::ModuleList> heads;  ///< the blocks of heads 2..n
};

/// input, target: [B, T] Int64 (target[t] = x_{t+1}, −100 ignored) -> [] Σ_{i=1..n} CE(head i, target shifted by
/// i − 1), each a mean over its scored positions (positions past the end are ignored). Throws ember::Error naming
/// multi_token_loss for mismatched shapes.
Tensor multi_token_loss(MultiTokenHeads& model, const Tensor& input, const Tensor& target);

/// multi_token_loss as a Trainer Objective; the model must be a MultiTokenHeads (ember::Error otherwise).
std::function<Tensor(nn::Module&, const Tensor&, const Tensor&)> multi_token_objective();

/// How mtp_generate decodes.
struct MTPGenerateOptions {
  std::int64_t max_new_tokens = 32;  ///< tokens to add after the prompt
  std::int64_t max_drafts = -1;      ///< drafts per step, at most the drafters' count (−1: all of them)
  std::int64_t stop_token = -1;      ///< stop after generating this token (−1 = never)
};

/// The tokens and the statistics of one speculative generation.
struct MTPGeneration {
  std::vector<std::int64_t> tokens;    ///< the prompt followed by the generated tokens
  std::int64_t prefill_steps = 0;      ///< main-model steps over the prompt
  std::vector<std::int64_t> drafted;   ///< per verify pass (main-model forward after the prompt): drafts proposed
  std::vector<std::int64_t> accepted;  ///< per verify pass: drafts accepted (the leading ones equal to the argmax)
  /// Main-model forward passes after the prompt (verify calls).
  std::int64_t forward_passes() const { return static_cast<std::int64_t>(accepted.size()); }
  /// Mean tokens each verify pass yields: accepted drafts + the main model's own next token (1 for plain decoding).
  double tokens_per_forward() const;
  /// Per depth j = 1..max drafted: P(draft j accepted | drafts 1..j−1 accepted), over the passes that drafted j
  /// tokens or more and accepted the first j − 1 (entry j − 1; NaN where no pass qualifies).
  std::vector<double> acceptance_rate() const;
};

/// Greedy speculative decoding of one sequence with the MTP modules as drafters: exactly lm.generate's greedy
/// output. Each step drafts d_k = argmax of module k at the last consumed position, from module k−1's hidden state
/// there and the token before d_k (the root for k = 1), verifies [root, d₁..d_m] with lm.verify as a chain (every
/// mixer supports chains), accepts the longest matching prefix and emits it with the main model's next token.
/// Module k's block keeps a decoding state over the positions whose input tokens are accepted; the positions that
/// read drafts are stepped on a MixerState::clone() of it and dropped after drafting (the rollback). Throws
/// ember::Error naming mtp_generate for an empty prompt, a token outside the vocabulary, bad options, or prompt +
/// max_new_tokens > max_len.
MTPGeneration mtp_generate(const MTPModel& model, const std::vector<std::int64_t>& prompt,
                           const MTPGenerateOptions& options);

/// The same with Gloeckle heads 2..n drafting t_{P+1}..t_{P+n−1} from z at the last consumed position.
MTPGeneration mtp_generate(const MultiTokenHeads& model, const std::vector<std::int64_t>& prompt,
                           const MTPGenerateOptions& options);

}  // namespace ember::decoding
