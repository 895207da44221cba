/// \file
/// \brief nn::GatedAttentionUnit (GAU), the single-head gated attention layer of "Transformer Quality in Linear
/// Time" (Hua et al. 2022; technique notes §3), and its causal relu² attention kernel.
///
/// With X̂ the (already normalised) input [T, D], expansion width e and shared width s:
///
///   [U V Z] = φ(X̂ W + b),   φ = SiLU,   U, V ∈ R^{T×e},  Z ∈ R^{T×s}    (one dense layer D → 2e + s)
///   Q = Z ⊙ γ_q + β_q,   K = Z ⊙ γ_k + β_k                               (per-dimension scale and offset)
///   A = relu²(Q Kᵀ / n) ⊙ M                                              (M lower triangular: causal)
///   O = (U ⊙ A V) W_o,   W_o: e → D
///
/// 1/n sits inside the square, as in the paper's pseudocode. The paper's output X + O is the residual of the Block
/// around every mixer (layers/models/language_model.h), as is the pre-norm, so this mixer returns O. n is fixed to
/// MixerConfig::max_len, the context length the model is trained at, not the length of the current input: with
/// n = T the weight a past token gets would change as the sequence grows, and step could not equal forward.
/// Positions: RoPE (rotate-half, over the s dims) on Q and K when MixerConfig::rope is set, nothing otherwise.
/// Options: "expansion" (e = expansion·D, default 2) and "shared" (s, default 128). γ ~ N(0, 0.02²), β = 0.
/// Decoding caches K and V of every past token (a KV cache of max_len rows).
#pragma once

#include <array>
#include <memory>

#include "layers/linear.h"
#include "layers/mixer.h"
#include "layers/rope.h"

namespace ember::nn {

/// q: [..., Tq, s], k: [..., Tk, s] (the same leading dims) -> A: [..., Tq, Tk] = relu²(q kᵀ / n) on and below the
/// bottom-right aligned diagonal (query i, at position Tk − Tq + i, sees keys j ≤ Tk − Tq + i), 0 above it.
/// Differentiable.
Tensor relu_squared_scores(const Tensor& q, const Tensor& k, double n);

/// The KV cache of one GatedAttentionUnit.
struct GauCache : MixerState {
  Tensor k;  ///< [B, max_len, s]; rows 0..position−1 are filled
  Tensor v;  ///< [B, max_len, e]
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &GauCache::k, &GauCache::v); }
};

/// Causal single-head GAU; MixedChunkAttention (FLASH) reuses its projections, scale/offset and gated output.
class GatedAttentionUnit : public SequenceMixer {
 public:
  /// d_model, max_len (n), rope, bias and options["expansion"], options["shared"] from the config.
  explicit GatedAttentionUnit(const MixerConfig& config);
  /// x: [B, T, D] -> O: [B, T, D] (without the residual X + O, which the Block adds).
  Tensor forward(const Tensor& x) override;
  /// K [B, max_len, s] and V [B, max_len, e] zeros.
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]; appends this token's k, v to the cache. Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;

  std::shared_ptr<Linear> uvz_proj;       ///< [W_u W_v W_z]: D → 2e + s, followed by SiLU
  std::shared_ptr<Linear> o_proj;         ///< W_o: e → D
  Tensor gamma;                           ///< [views, s]: the scales γ, one row per view of Z (q, k here)
  Tensor beta;                            ///< [views, s]: the offsets β
  std::shared_ptr<RotaryEmbedding> rope;  ///< RoPE over the s dims of the views (null without)
  const std::int64_t d_model;             ///< D
  const std::int64_t expanded_dim;        ///< e = expansion · D, the width of U and V
  const std::int64_t shared_dim;          ///< s, the width of Z
  const std::int64_t context_len;         ///< n = MixerConfig::max_len, the fixed 1/n of the scores

 protected:
  /// For subclasses: the same layer printed as `type_name`, with `views` scale/offset rows (γ_i, β_i).
  GatedAttentionUnit(const MixerConfig& config, std::string type_name, std::int64_t views);
  /// `value` as a positive integer; throws naming this mixer and `what` otherwise (for options read as doubles).
  std::int64_t positive_integer(const std::string& what, double value) const;
  /// x: [B, T, D] -> U, V: [B, T, e] and Z: [B, T, s], the split of φ(x W + b).
  std::array<Tensor, 3> project(const Tensor& x) const;
  /// Z: [B, T, s] at positions start..start+T−1 -> Z ⊙ γ_i + β_i [B, T, s], rotated by RoPE when enabled.
  Tensor view_of(const Tensor& Z, std::int64_t i, std::int64_t start) const;
  /// U, V̂: [B, T, e] -> (U ⊙ V̂) W_o: [B, T, D].
  Tensor gate(const Tensor& U, const Tensor& V_hat) const;
  /// Throws unless x is [B, T, D] (forward's input).
  void check_input(const Tensor& x) const;
  /// Throws unless x_t is [batch, D] (step's input).
  void check_step_input(const Tensor& x_t, std::int64_t batch) const;
  /// Throws unless batch > 0 and max_len > 0 (init_state's arguments).
  void check_state_size(std::int64_t batch, std::int64_t max_len) const;
  /// The dtype and device new states take: those of the weights.
  Tensor state_zeros(const Shape& shape) const;
  std::string extra_repr() const override;
};

}  // namespace ember::nn
