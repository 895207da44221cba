/// \file
/// \brief nn::DiagAttention: TransNormer's block-diagonal causal softmax attention ("The Devil in Linear
/// Transformer", Qin et al. 2022; technique notes §13).
///
/// The sequence is split into non-overlapping blocks of w tokens (MixerConfig option "block", default 64); the
/// query at absolute position p sees the keys j with ⌊j/w⌋ = ⌊p/w⌋ and j ≤ p, softmax(q kᵀ/√d) over those only.
/// Cost O(T·w·d). Everything else (projections, optional RoPE, KV cache) is MultiHeadAttention's; decoding attends
/// only over the current block's cached keys, so step equals forward.
#pragma once

#include "layers/attention/multi_head_attention.h"

namespace ember::nn {

/// Causal softmax attention restricted to blocks of `block` tokens.
class DiagAttention : public MultiHeadAttention {
 public:
  /// False: a token sees only its own block, so a tree's masked scores would be wrong; chains verify by stepping.
  bool supports_tree() const override { return false; }
  /// MultiHeadAttention's config plus options["block"] (default 64, > 0).
  explicit DiagAttention(const MixerConfig& config);

  const std::int64_t block;  ///< w, tokens per block

 protected:
  /// For subclasses: the same layer printed as `type_name`.
  DiagAttention(const MixerConfig& config, std::string type_name);
  /// q: [B, H, Tq, d], k, v: [B, H, Tk, d] (keys at positions 0..Tk−1, queries at Tk−Tq..Tk−1) -> [B, H, Tq, d],
  /// each query attending causally within its own block.
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) const override;
  std::string extra_repr() const override;

 private:
  /// attend for Tq = Tk (training): all blocks at once, as G = ⌈T/w⌉ extra heads of causal attention.
  Tensor attend_blocks(const Tensor& q, const Tensor& k, const Tensor& v) const;
};

}  // namespace ember::nn
