/// \file
/// \brief nn::MultiScaleRetention: RetNet's multi-scale retention (Sun et al. 2023, "Retentive Network"; technique
/// notes §7b), as torchscale's multiscale_retention.py and RetNetRelPos build it, in its three equivalent forms.
///
/// Per head h with decay γ_h = 1 − 2^{−5−h}, Q = (X W_Q) ⊙ Θ and K = (X W_K) ⊙ Θ · d_k^{−½} (an xPos/RoPE rotation of
/// the pairs (2i, 2i+1) by the angle n·θ_i at position n, θ_i = 10000^{−i/(d_k/2−1)}), V = X W_V:
///   parallel    Ret(X) = (Q Kᵀ ⊙ 𝒟) V,   𝒟_nm = γ^{n−m} for n ≥ m, 0 otherwise;
///   recurrent   S_n = γ S_{n−1} + K_nᵀ V_n,   o_n = Q_n S_n;
///   chunkwise   R_i = K_[i]ᵀ (V_[i] ⊙ ζ) + γ^{Bc} R_{i−1},  ζ_j = γ^{Bc−1−j},
///               o_[i] = (Q_[i] K_[i]ᵀ ⊙ 𝒟_{Bc}) V_[i] + (Q_[i] R_{i−1}) ⊙ ξ,  ξ_j = γ^{j+1}.
/// The layer: Y = GroupNorm_h(concat_h Ret_h(X)) (per head, no affine, ε = 1e-6: the paper's GroupNorm, which
/// an earlier torchscale used as a per-head LayerNorm; its current code has a per-head RMSNorm there), MSR(X) =
/// (swish(X W_G) ⊙ Y) W_O. Every power of γ is formed as exp(k·log γ) with k ≥ 0, so long sequences underflow to 0,
/// never to NaN. The reference's scale normalisations (rows of 𝒟 divided by √(row sum), Q Kᵀ ⊙ 𝒟 by max(|row sum|, 1),
/// the matching factors of the chunkwise and recurrent forms) are left out: each multiplies one row of one head by a
/// positive number, which the per-head GroupNorm cancels (up to its ε).
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "layers/linear.h"
#include "layers/mixer.h"

namespace ember::nn {

/// q, k: [B, H, T, d_k], v: [B, H, T, d_v], log_gamma: [H] (log γ_h < 0 or = 0) -> [B, H, T, d_v]: (Q Kᵀ ⊙ 𝒟) V.
/// Materialises the [T, T] matrix: the reference form, O(T²).
Tensor retention_parallel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_gamma);
/// The same retention by the recurrence S_n = γ S_{n−1} + K_nᵀ V_n, o_n = Q_n S_n, one step at a time: the
/// reference form of `step` (its backward grows as T², so use it on short sequences only).
Tensor retention_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_gamma);
/// The same retention chunk by chunk (chunk size Bc = min(chunk, T), the last chunk zero-padded), every chunk at
/// once: the intra-chunk part (Q Kᵀ ⊙ 𝒟_{Bc}) V, plus Q R_{i−1} ⊙ ξ with the chunk states R carried by a log-depth
/// decayed prefix sum. Linear in T; the training form.
Tensor retention_chunkwise(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_gamma,
                           std::int64_t chunk);
/// x: [B, H, T, d] (d even) at positions start..start+T−1 -> x with each pair (2i, 2i+1) at position n rotated by
/// n·θ_i, θ_i = 10000^{−i/(d/2−1)} (θ_0 = 1 when d = 2): RetNetRelPos's angles and torchscale's theta_shift.
Tensor retention_rotate(const Tensor& x, std::int64_t start);

/// The decoding state of one retention layer.
struct RetentionState : MixerState {
  Tensor S;  ///< [B, H, d_k, d_v], Σ_{m≤n} γ^{n−m} K_mᵀ V_m
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &RetentionState::S); }
};

/// RetNet's multi-scale retention (registry name `retnet`).
class MultiScaleRetention : public SequenceMixer {
 public:
  /// d_model (D), n_heads (H, dividing D with d_k = D/H even) and option "chunk" (> 0, default 64) from the config;
  /// throws ember::Error naming MultiScaleRetention otherwise. No biases, as the reference (config.bias is unused),
  /// and always its own rotation (config.rope is unused); W_Q, W_K, W_V, W_G Xavier-uniform with gain 2^{−2.5}, W_O
  /// with gain 1, as the reference.
  explicit MultiScaleRetention(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal, by retention_chunkwise.
  Tensor forward(const Tensor& x) override;
  /// S as zeros; max_len only has to be > 0 (the state does not grow).
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]: S ← γ S + K_nᵀ V_n, o = Q_n S at n = state.position, then GroupNorm, gate and W_O.
  /// Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// True: LanguageModel keeps this layer's initialisation.
  bool keeps_own_init() const override { return true; }

  /// γ_h = 1 − 2^{−5−h}, h = 0..H−1.
  std::vector<double> decays() const;
  /// log γ_h as a [H] tensor in the weights' dtype.
  Tensor log_decays() const;

  const std::int64_t n_heads;        ///< H
  const std::int64_t key_dim;        ///< d_k = D/H
  const std::int64_t value_dim;      ///< d_v = 2D/H
  const std::int64_t chunk;          ///< Bc, the chunk size of forward
  std::shared_ptr<Linear> q_proj;    ///< W_Q: D -> D
  std::shared_ptr<Linear> k_proj;    ///< W_K: D -> D
  std::shared_ptr<Linear> v_proj;    ///< W_V: D -> 2D
  std::shared_ptr<Linear> g_proj;    ///< W_G: D -> 2D
  std::shared_ptr<Linear> out_proj;  ///< W_O: 2D -> D

 protected:
  /// "d_model=…, heads=…, chunk=…".
  std::string extra_repr() const override;

 private:
  /// x: [B, T, D] at positions start.. -> q, k (rotated, k scaled by d_k^{−½}): [B, H, T, d_k], v: [B, H, T, d_v].
  std::array<Tensor, 3> project(const Tensor& x, std::int64_t start) const;
  /// o: [B, H, T, d_v] and the input x: [B, T, D] -> (swish(x W_G) ⊙ GroupNorm_h(o)) W_O: [B, T, D].
  Tensor output(const Tensor& o, const Tensor& x) const;
};

}  // namespace ember::nn
