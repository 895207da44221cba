/// \file
/// \brief nn::NormAttention: TransNormer's causal linear attention without the denominator, output normalised
/// ("The Devil in Linear Transformer", Qin et al. 2022; technique notes §13).
///
/// Per head, with φ(x) = elu(x) + 1 (the reference kernel) and S_t = Σ_{s≤t} φ(k_s) v_sᵀ [d, d]:
///
///   O_t = SRMSNorm(φ(q_t)ᵀ S_t),   SRMSNorm(x) = x / √(mean(x²) + ε)  (no gain, ε = 1e-6)
///
/// The norm is TransNormerLLM's SRMSNorm taken over the **head dim** d of each head's output (so it is per head and
/// per token), then concat_h O_h W_o. Dropping the denominator φ(q)ᵀz keeps the gradient bounded. `forward` runs
/// the chunked causal_linear_attention (option "chunk", default 64) with normalize = false; `step` keeps only
/// S ← S + φ(k_t) v_tᵀ (no z). No RoPE.
#pragma once

#include <memory>

#include "layers/attention/linear_attention.h"

namespace ember::nn {

/// ε inside NormAttention's SRMSNorm.
inline constexpr double kNormAttentionEps = 1e-6;

/// The recurrent state of one NormAttention layer.
struct NormAttentionState : MixerState {
  Tensor S;  ///< [B, H, d, d]: Σ φ(k_j) v_jᵀ over consumed tokens
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &NormAttentionState::S); }
};

/// Causal NormAttention: LinearAttention's projections, kernel and chunking, without the denominator, SRMSNorm'd.
class NormAttention : public LinearAttention {
 public:
  /// d_model, n_heads (dividing d_model), bias and options["chunk"] (default 64) from the config.
  explicit NormAttention(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal, in chunks of `chunk` tokens.
  Tensor forward(const Tensor& x) override;
  /// S [B, H, d, d] zeros; max_len only has to be > 0.
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]; S += φ(k_t) v_tᵀ, then SRMSNorm(φ(q_t)ᵀ S). Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;

 protected:
  /// For subclasses: the same layer printed as `type_name`.
  NormAttention(const MixerConfig& config, std::string type_name);
};

}  // namespace ember::nn
