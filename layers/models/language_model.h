/// \file
/// \brief nn::LanguageModel: a decoder-only transformer whose token mixer is chosen by name per layer.
///
/// h_0 = E[ids] (+ P[positions] with learned positions); per block (pre-norm, GPT-2 style):
/// h ← h + mixer(norm₁(h)), h ← h + MLP(norm₂(h)); logits = head(norm_f(h)), with head = Eᵀ when weights
/// are tied. Initialised as GPT-2: Linear and Embedding weights N(0, 0.02), biases 0, and the projections
/// that write into the residual stream (o_proj, down_proj) N(0, 0.02/sqrt(2·n_layers)) — except inside mixers
/// whose keeps_own_init() is true (the SSM and linear-RNN family: their step sizes, decays and zero projections
/// are part of the technique, e.g. Mamba's b_dt must not be zeroed), which keep the layer's own initialisation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/containers.h"
#include "layers/linear.h"
#include "layers/mixer.h"
#include "layers/mlp.h"

namespace ember::nn {

/// The shape of a LanguageModel. The defaults are the reference model of the benchmarks (bench/): vocab 64,
/// d_model 128, 4 heads, 2 layers, learned positions, LayerNorm, 4x GELU MLP, softmax attention, untied head.
struct LanguageModelConfig {
  std::int64_t vocab_size = 64;   ///< V
  std::int64_t d_model = 128;     ///< D
  std::int64_t n_layers = 2;      ///< number of blocks
  std::int64_t n_heads = 4;       ///< heads of attention mixers
  std::int64_t max_len = 256;     ///< the longest sequence (learned positions, RoPE, KV cache)
  std::string positions = "learned";           ///< "learned", "rope" or "none"
  std::vector<std::string> mixers = {"softmax"};  ///< one name for every layer, or one per layer
  std::map<std::string, double> mixer_options;  ///< passed to every mixer (MixerConfig::options)
  std::string norm = "layernorm";  ///< "layernorm" or "rmsnorm"
  std::string mlp = "gelu";        ///< "gelu", "swiglu" or "rwkv" (RWKV-4's channel mix, nn::RWKVChannelMix)
  std::int64_t mlp_hidden = 0;     ///< 0: the kind's default (4·D for GELU)
  double dropout = 0.0;            ///< on the embedding and on each residual branch
  bool tie_weights = false;        ///< head = token embedding transposed
  bool bias = true;                ///< biases in Linear layers and LayerNorm
  std::uint64_t seed = 0;          ///< initial weights
  /// The mixer name of layer i.
  const std::string& mixer_of(std::int64_t layer) const;
};

/// TransNormer's layout (Qin et al. 2022) for `n_layers` ≥ 2 blocks: "diag_attention" in the lower half
/// (layers 0 … ⌊n/2⌋ − 1: local softmax attention, against attention dilution) and "norm_attention" in the upper
/// half (global linear attention without the denominator, against unbounded gradients); for
/// LanguageModelConfig::mixers.
std::vector<std::string> transnormer_mixers(std::int64_t n_layers);

/// One pre-norm block: h + mixer(norm1(h)), then + mlp(norm2(h)). With mlp = "rwkv" the feed-forward is RWKV-4's
/// channel mix, which token-shifts its input and so keeps a decoding state of its own. Every mixer's config gets
/// the options "layer" (this block's index) and "n_layers", for inits that depend on depth (RWKV).
class Block : public Module {
 public:
  /// The block of `layer` in a model of config c.
  Block(const LanguageModelConfig& c, std::int64_t layer, Generator* gen);
  /// x: [B, T, D] -> [B, T, D].
  Tensor forward(const Tensor& x) override;
  /// x_t: [B, D] -> [B, D] with the mixer's decoding state and the channel mix's (null for an MLP).
  Tensor step(const Tensor& x_t, MixerState& state, MixerState* ffn_state) const;
  /// x: [1, n, D] drafted tokens -> [1, n, D] (see LanguageModel::verify), with this block's states and the lists
  /// that receive the chain layers' states after each token.
  Tensor verify(const Tensor& x, const Tensor& tree_mask, const Tensor& depth, MixerState& state,
                MixerState* ffn_state, std::vector<std::unique_ptr<MixerState>>& pending,
                std::vector<std::unique_ptr<MixerState>>& pending_ffn) const;
  std::shared_ptr<Module> norm1;          ///< before the mixer
  std::shared_ptr<SequenceMixer> mixer;   ///< the token mixer
  std::shared_ptr<Module> norm2;          ///< before the MLP
  std::shared_ptr<MLP> mlp;               ///< the feed-forward block (null with mlp = "rwkv")
  std::shared_ptr<SequenceMixer> channel_mix;  ///< RWKV's channel mix in place of the MLP (null otherwise)

 private:
  double dropout_;
};

/// Decoding state of a whole model: one mixer state per layer and the next position.
struct LanguageModelState {
  std::vector<std::unique_ptr<MixerState>> layers;  ///< per block: the mixer's state
  std::vector<std::unique_ptr<MixerState>> ffn;     ///< per block: the channel mix's state (null for an MLP)
  std::int64_t position = 0;                        ///< tokens consumed so far
  /// Between LanguageModel::verify() and accept(): per block, the mixer's state after each verified token, for the
  /// layers that verify a chain by stepping (empty for tree layers).
  std::vector<std::vector<std::unique_ptr<MixerState>>> pending_layers;
  /// Likewise for the channel mixes.
  std::vector<std::vector<std::unique_ptr<MixerState>>> pending_ffn;
  std::int64_t pending = 0;  ///< how many tokens the last verify() left to accept (0: none)
};

/// How generate() picks tokens.
struct GenerateOptions {
  std::int64_t max_new_tokens = 32;  ///< tokens to add after the prompt
  double temperature = 1.0;          ///< 0 = greedy (argmax); otherwise logits / temperature
  std::int64_t top_k = 0;            ///< keep the k most likely tokens (0 = all)
  double top_p = 1.0;                ///< keep the smallest set with probability >= top_p (1 = all)
  std::int64_t stop_token = -1;      ///< stop after generating this token (-1 = never)
  std::uint64_t seed = 0;            ///< the sampling generator's seed
};

/// A decoder-only language model over token ids.
class LanguageModel : public Module {
 public:
  /// Builds and initialises the model (seeded by config.seed).
  explicit LanguageModel(LanguageModelConfig config);
  /// ids: [B, T] Int64 -> logits [B, T, V].
  Tensor forward(const Tensor& ids) override;
  /// ids: [B, T] Int64 -> the final-normed hidden states [B, T, D] (= final_norm(trunk(ids))).
  Tensor hidden(const Tensor& ids);
  /// ids: [B, T] Int64 -> z [B, T, D], the last block's output before the final norm (the trunk that multi-token
  /// heads share).
  Tensor trunk(const Tensor& ids);
  /// z [..., D] -> the final norm of z.
  Tensor final_norm(const Tensor& z) const;
  /// h: [..., D] -> logits [..., V] through the head (or the tied embedding).
  Tensor logits(const Tensor& h) const;
  /// A fresh decoding state for `batch` sequences of up to max_len tokens (default: config.max_len).
  LanguageModelState init_state(std::int64_t batch, std::int64_t max_len = 0) const;
  /// ids_t: [B] Int64 -> logits [B, V] for the next token; advances the state. Records no gradients.
  Tensor step(const Tensor& ids_t, LanguageModelState& state) const;
  /// ids_t: [B] Int64 -> z_t [B, D] before the final norm (step() = logits(final_norm(step_trunk()))); advances
  /// the state. Records no gradients.
  Tensor step_trunk(const Tensor& ids_t, LanguageModelState& state) const;
  /// Speculative verification of one sequence (batch 1) in one pass: `tokens` [n] drafted after state.position,
  /// arranged as a tree (tree_mask [n, n] Bool: token i sees token j iff j is i or an ancestor; depth [n] Int64:
  /// token i sits at position state.position + depth[i]; token 0 is the root at depth 0) -> z [n, D] before the
  /// final norm, each as step_trunk() would give it after its root-to-token path. Any model verifies a chain
  /// (depth = 0..n−1, tree_mask lower-triangular); other trees need supports_tree(). Then call accept() once.
  /// Records no gradients; throws ember::Error naming the shapes on bad input.
  Tensor verify(const std::vector<std::int64_t>& tokens, const Tensor& tree_mask, const Tensor& depth,
                LanguageModelState& state) const;
  /// After verify(): keeps the verified tokens `path` (token indices 0 = root, then one root-to-node path in order;
  /// for a chain 0, 1, ..., m−1) and advances the state by path.size() tokens, exactly as if they had been
  /// stepped one by one.
  void accept(LanguageModelState& state, const std::vector<std::int64_t>& path) const;
  /// True when every block can verify a tree: all mixers support_tree() and the feed-forwards are MLPs.
  bool supports_tree() const;
  /// The prompt followed by up to max_new_tokens tokens, decoded with step() (one sequence).
  std::vector<std::int64_t> generate(const std::vector<std::int64_t>& prompt, const GenerateOptions& options) const;
  /// Model FLOPs of one training step (forward and backward) on a [B, T] batch: 6 per weight per token for the
  /// products (embedding lookups excluded, the head included) plus 12·L·T·D per token for attention scores and
  /// mixing (the PaLM paper's accounting, appendix B).
  double training_flops(std::int64_t batch, std::int64_t seq_len) const;
  /// The configuration the model was built with.
  const LanguageModelConfig& config() const { return config_; }

  std::shared_ptr<Embedding> tok_emb;  ///< E [V, D]
  std::shared_ptr<Embedding> pos_emb;  ///< P [max_len, D] (learned positions only)
  std::shared_ptr<ModuleList> layers;  ///< the blocks
  std::shared_ptr<Module> norm;        ///< the final norm
  std::shared_ptr<Linear> head;        ///< D -> V (null when tied)

 protected:
  std::string extra_repr() const override;

 private:
  void init_weights(Generator& gen);
  Tensor embed(const Tensor& ids, std::int64_t start) const;
  Tensor embed_at(const Tensor& ids, const Tensor& positions) const;
  LanguageModelConfig config_;
};

/// Picks the next token from logits [V] (Float32/64) by the options; greedy when temperature is 0.
std::int64_t sample_token(const Tensor& logits, const GenerateOptions& options, Generator& gen);

}  // namespace ember::nn
