/// \file
/// \brief nn::MixedChunkAttention: FLASH's causal mixed chunk attention ("Transformer Quality in Linear Time",
/// Hua et al. 2022, §3.2; technique notes §3), a GatedAttentionUnit whose quadratic attention is cut into chunks.
///
/// U, V, Z = the GAU projection; four scale/offset views of Z: Q^quad, K^quad, Q^lin, K^lin (rows 0..3 of γ, β).
/// The sequence is split into chunks g of C tokens (MixerConfig option "chunk", default 256; T is zero-padded up to
/// a multiple of C and the padded outputs dropped), all computed at once on a [B, G, C, ·] view:
///
///   local:   V̂^quad_g = [relu²(Q^quad_g K^quad_gᵀ / C) ⊙ M] V_g        (M lower triangular within the chunk)
///   global:  V̂^lin_g  = Q^lin_g (Σ_{h<g} K^lin_hᵀ V_h) / C              (exclusive prefix over earlier chunks)
///   O_g = [U_g ⊙ (V̂^quad_g + V̂^lin_g)] W_o
///
/// The prefix is exclusive: the current chunk is the quadratic part's, and including it would leak future tokens.
/// The 1/C of the global part is the lucidrains reference's constant (learnable away). Cost O(T·C·s + T·s·e); the
/// prefix over chunks is one exclusive cumulative sum, so the number of autograd ops does not grow with T.
/// RoPE, when MixerConfig::rope is set, rotates all four views (as the lucidrains reference does). Decoding keeps a
/// fixed-size state: the current chunk's K^quad and V rows (≤ C), the sum over completed chunks Σ_{h<g} K^lin_hᵀ V_h
/// [s, e], and the current chunk's running K^linᵀ V, folded into the sum when the chunk completes.
#pragma once

#include <memory>

#include "layers/attention/gated_attention_unit.h"

namespace ember::nn {

/// The decoding state of one MixedChunkAttention layer.
struct MixedChunkState : MixerState {
  Tensor k_quad;   ///< [B, C, s]: K^quad of the current chunk; rows 0..position mod C are used
  Tensor v;        ///< [B, C, e]: V of the current chunk
  Tensor S;        ///< [B, s, e]: Σ_{h<g} K^lin_hᵀ V_h over the completed chunks
  Tensor S_chunk;  ///< [B, s, e]: K^lin_gᵀ V_g over the current chunk's tokens so far
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &MixedChunkState::k_quad, &MixedChunkState::v, &MixedChunkState::S, &MixedChunkState::S_chunk); }
};

/// Causal FLASH: GAU projections and gating around chunked quadratic plus linear attention.
class MixedChunkAttention : public GatedAttentionUnit {
 public:
  /// GatedAttentionUnit's config plus options["chunk"] (C, default 256, > 0).
  explicit MixedChunkAttention(const MixerConfig& config);
  /// x: [B, T, D] -> O: [B, T, D], every chunk at once.
  Tensor forward(const Tensor& x) override;
  /// The fixed-size state (see MixedChunkState); max_len only has to be > 0.
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]; attends within the current chunk and reads the completed chunks' sum. Records no
  /// gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;

  const std::int64_t chunk;  ///< C, tokens per chunk

 protected:
  /// For subclasses: the same layer printed as `type_name`.
  MixedChunkAttention(const MixerConfig& config, std::string type_name);
  std::string extra_repr() const override;
};

}  // namespace ember::nn
