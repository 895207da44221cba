/// \file
/// \brief nn::LinearAttention: causal multi-head linear attention, "Transformers are RNNs" (Katharopoulos et al. 2020).
///
/// Q = X W_q, K = X W_k, V = X W_v split into H heads of d = D/H; softmax(q·k) is replaced by the kernel φ(q)·φ(k)
/// with the feature map φ(x) = elu(x) + 1 (> 0). Per head, with ε = 1e-6 keeping the denominator away from 0:
///
///   causal:      y_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + ε),  S_t = Σ_{j≤t} φ(k_j) v_jᵀ  [d, d],  z_t = Σ_{j≤t} φ(k_j)  [d]
///   non-causal:  Y = φ(Q) (φ(K)ᵀ V) / (φ(Q) φ(K)ᵀ 1 + ε)
///
/// and O = concat_h Y_h W_o. `forward` computes the causal form in chunks of C tokens (MixerConfig option "chunk",
/// default 64): inside a chunk the quadratic masked form (φ(Q_c) φ(K_c)ᵀ ⊙ M) V_c with M lower triangular, plus
/// the state (S, z) carried from earlier chunks, φ(Q_c) S and φ(Q_c) z; then S += φ(K_c)ᵀ V_c, z += φ(K_c)ᵀ 1.
/// All G = ⌈T/C⌉ chunks are computed at once as batched products on a [B, H, G, C, d] view, the states entering
/// each chunk by an exclusive prefix sum over the chunks' φ(K_c)ᵀ V_c: time O(T·C·d + T·d²), a fixed number of
/// differentiable ops whatever T (a loop over chunks would make autograd's slice gradients cost O(T) per chunk),
/// and O(T/C·d²) memory for the states.
/// Decoding is the recurrence S ← S + φ(k_t) v_tᵀ, z ← z + φ(k_t), y_t = φ(q_t)ᵀ S / (φ(q_t)ᵀ z + ε): a fixed
/// state of H·(d² + d) numbers per sequence, whatever the length. No RoPE (config.rope is ignored).
#pragma once

#include <array>
#include <memory>

#include "layers/attention/headed_mixer.h"

namespace ember::nn {

/// ε added to the linear-attention denominator φ(q)ᵀz (as the reference implementation does).
inline constexpr double kLinearAttentionEps = 1e-6;

/// x -> elu(x) + 1, elementwise (strictly positive): the feature map of Katharopoulos et al.
Tensor elu_feature_map(const Tensor& x);

/// q: [..., Tq, d], k: [..., Tk, d], v: [..., Tk, M] -> [..., Tq, M], non-causal:
/// φ(Q) (φ(K)ᵀ V) / (φ(Q) φ(K)ᵀ 1 + ε) with φ = elu_feature_map. Differentiable.
Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v);

/// phi_q, phi_k: [B, H, T, d] (features already mapped), v: [B, H, T, M] -> [B, H, T, M], causal:
/// y_t = φ(q_t)ᵀ S_t / (φ(q_t)ᵀ z_t + ε), computed in chunks of `chunk` tokens. Differentiable.
/// With normalize = false the denominator is dropped: y_t = φ(q_t)ᵀ S_t (TransNormer's NormAttention core).
Tensor causal_linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, std::int64_t chunk,
                               bool normalize = true);

/// The recurrent state of one linear-attention layer.
struct LinearAttentionState : MixerState {
  Tensor S;  ///< [B, H, m, d]: Σ φ(k_j) v_jᵀ over consumed tokens (m = d for elu + 1)
  Tensor z;  ///< [B, H, m]: Σ φ(k_j)
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &LinearAttentionState::S, &LinearAttentionState::z); }
};

/// Causal multi-head linear attention; the feature map (`feature_map`, and `query_feature_map` for queries) is
/// elu + 1 here and is what kernel variants (e.g. Performer's random features) override, with `feature_dim`.
class LinearAttention : public HeadedMixer {
 public:
  /// d_model, n_heads (dividing d_model), bias and options["chunk"] (default 64) from the config.
  explicit LinearAttention(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal, in chunks of `chunk` tokens.
  Tensor forward(const Tensor& x) override;
  /// S [B, H, m, d] and z [B, H, m] zeros (m = feature_dim()); max_len only has to be > 0 (the state does not
  /// grow).
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]; S += φ(k_t) v_tᵀ, z += φ(k_t), then reads them with φ(q_t). Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;

  const std::int64_t chunk;        ///< C, tokens per chunk in forward

 protected:
  /// For subclasses: the same layer printed as `type_name`.
  LinearAttention(const MixerConfig& config, std::string type_name);
  /// x: [B, H, T, d] -> φ(x), positive, [B, H, T, m] with m = feature_dim(); elu(x) + 1 here. Applied to keys.
  virtual Tensor feature_map(const Tensor& x) const;
  /// q: [B, H, T, d] -> φ(q) [B, H, T, m], the map applied to queries; feature_map(q) here. A subclass may
  /// scale each query's features by a positive factor of its own (it cancels between the numerator and the
  /// denominator), which a key's factor would not.
  virtual Tensor query_feature_map(const Tensor& q) const;
  /// m, the width of φ(x) and of the state S [B, H, m, d], z [B, H, m]; head_dim here.
  virtual std::int64_t feature_dim() const;
  std::string extra_repr() const override;
};

}  // namespace ember::nn
