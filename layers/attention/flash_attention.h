/// \file
/// \brief nn::FlashAttention: MultiHeadAttention whose attention kernel is FlashAttention (Dao et al. 2022).
///
/// Same projections, heads, RoPE and KV cache as MultiHeadAttention, so the same weights give the same outputs;
/// only `attend` differs: O = softmax(Q Kᵀ/√d + M) V is computed tile by tile with an online softmax, never
/// materialising the [T, T] scores (extra memory O(T) instead of O(T²)); backward recomputes the tiles from the
/// saved row logsumexp.
#pragma once

#include "layers/attention/multi_head_attention.h"

namespace ember::nn {

/// Causal multi-head self-attention computed with nn::flash_attention; printed as "FlashAttention".
class FlashAttention : public MultiHeadAttention {
 public:
  /// d_model, n_heads (dividing d_model), rope, bias and max_len from the config.
  explicit FlashAttention(const MixerConfig& config);

 protected:
  /// q: [B, H, Tq, d], k, v: [B, H, Tk, d] -> [B, H, Tq, d] by flash_attention, causal (bottom-right aligned).
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) const override;
};

}  // namespace ember::nn
