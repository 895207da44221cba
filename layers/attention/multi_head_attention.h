/// \file
/// \brief nn::MultiHeadAttention: causal multi-head softmax attention (Vaswani et al. 2017) with a KV cache.
///
/// Q = X W_q, K = X W_k, V = X W_v split into H heads of d = D/H; O = concat_h softmax(Q_h K_hᵀ/√d + M) V_h W_o,
/// M = −∞ above the diagonal; optional RoPE on Q and K. Decoding keeps K and V of every past token
/// (the KV cache, [B, H, max_len, d]) and attends the new query over slots 0..t.
#pragma once

#include <array>
#include <memory>

#include "layers/attention/headed_mixer.h"
#include "layers/rope.h"

namespace ember::nn {

/// The KV cache of one attention layer.
struct KVCache : MixerState {
  Tensor k;  ///< [B, H, max_len, d]; slots 0..position−1 are filled
  Tensor v;  ///< [B, H, max_len, d]
  std::int64_t verified = 0;  ///< tokens the last verify_tree() wrote past position (0 after accept_tree)
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &KVCache::k, &KVCache::v); }
};

/// Causal multi-head self-attention; the attention kernel (`attend`) is naive softmax here and is what
/// faster or sparser variants override.
class MultiHeadAttention : public HeadedMixer {
 public:
  /// d_model, n_heads (dividing d_model), rope, bias and max_len from the config.
  explicit MultiHeadAttention(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D].
  Tensor forward(const Tensor& x) override;
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]; appends this token's k, v to the cache. Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// Softmax attention over a tree: true here and in FlashAttention (local and sparse variants override it).
  bool supports_tree() const override { return true; }
  /// Writes the n tokens' keys and values in cache slots position..position+n−1 and attends each token over the
  /// prefix and its tree_mask row: with explicit masked scores (exact softmax attention; trees are small), or, for a
  /// chain, with the layer's own causal kernel (attend).
  Tensor verify_tree(const Tensor& x, const Tensor& tree_mask, const Tensor& depth, MixerState& state) const override;
  /// Moves the keys and values of `path` to slots position..position+|path|−1 (the KV cache trimmed to the path).
  void accept_tree(MixerState& state, const std::vector<std::int64_t>& path) const override;

  std::shared_ptr<RotaryEmbedding> rope;  ///< RoPE on q and k (null without)

 protected:
  /// For subclasses: the same layer printed as `type_name` (e.g. "FlashAttention").
  MultiHeadAttention(const MixerConfig& config, std::string type_name);
  /// q: [B, H, Tq, d], k, v: [B, H, Tk, d] -> [B, H, Tq, d], causal with bottom-right alignment.
  virtual Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) const;
  std::string extra_repr() const override;

 private:
  /// The state as a KVCache, or ember::Error naming `op`.
  KVCache& cache_of(MixerState& state, const char* op) const;
  /// x: [B, T, D] -> q, k, v: [B, H, T, d] each, RoPE applied at positions start..start+T−1.
  std::array<Tensor, 3> project_rotated(const Tensor& x, std::int64_t start) const;
};

}  // namespace ember::nn
