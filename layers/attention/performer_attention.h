/// \file
/// \brief nn::PerformerAttention: causal multi-head FAVOR+ attention, "Rethinking Attention with Performers"
/// (Choromanski et al., ICLR 2021; technique notes §12), LinearAttention with positive random features.
///
/// softmax(q·k/√d) uses the kernel SM(x, y) = exp(xᵀy) on x = d^{-¼} q, y = d^{-¼} k. With w_1..w_m ~ N(0, I_d)
/// (the rows of W [m, d]) the positive random features
///
///   φ⁺(x) = m^{-½} exp(−|x|²/2) [exp(w_1ᵀx), …, exp(w_mᵀx)]   give   E_W[φ⁺(x)ᵀ φ⁺(y)] = exp(xᵀy)   (unbiased, > 0),
///
/// with mean squared error (1/m) e^{|x+y|²} SM(x, y)² (1 − e^{−|x+y|²}) for iid rows (Lemma 1). W is drawn as
/// ⌈m/d⌉ blocks of d orthonormal rows (Gram-Schmidt of a d×d Gaussian), each row rescaled by the norm of an
/// independent N(0, I_d) draw, so every row is still marginally N(0, I_d) but the rows of a block are
/// orthogonal, which lowers the variance. The layer is LinearAttention (chunked causal forward, (S, z) step)
/// with φ = φ⁺ + m^{-½}ε, ε = 1e-4 as in the reference, and S [B, H, m, d], z [B, H, m]:
///
///   keys:    φ(k) = m^{-½} (exp(w_iᵀy − |y|²/2) + ε)
///   queries: φ(q) = m^{-½} (exp(w_iᵀx − |x|²/2 − c_x) + ε),   c_x = max_i (w_iᵀx − |x|²/2)
///
/// The query shift c_x scales the whole row φ(q) by e^{−c_x}, which cancels between the numerator and the
/// denominator (up to ε). It guards against underflow, not overflow: completing the square,
/// w_iᵀx − |x|²/2 = |w_i|²/2 − |x − w_i|²/2 ≤ |w_i|²/2, so no feature of any input exceeds m^{-½}(e^{|w_i|²/2} + ε),
/// and |w_i|² ~ χ²_d stays far below 2·88 (float32's exp overflow) for the head dims used here (d ≤ 64: mean d,
/// standard deviation √(2d)); but a query far from every w_i would see all its features underflow to 0, leaving
/// only ε. After the shift its largest feature is m^{-½}(1 + ε) (the reference subtracts max_i w_iᵀx instead, which
/// leaves the factor e^{−|x|²/2} that can still underflow). The reference also shifts keys, by a max over all
/// features **and positions**; that reads future tokens (output t would depend on keys after t, and step could
/// not match forward), so keys get no data-dependent shift here (a per-key shift would not cancel). They cannot
/// overflow, by the same bound; a key so far from every w_i that all its exponents fall below float32's underflow
/// (about −87) keeps only the floor m^{-½}ε, which also keeps every denominator positive.
///
/// Options: "features" m (default ⌊d ln d⌋, at least 1, the reference's default) and LinearAttention's "chunk".
/// One W [m, d] is shared by all heads; it is the persistent buffer `projection` (so checkpoints reproduce it),
/// drawn from MixerConfig::gen, and `redraw_features` draws a new one (the paper redraws during training).
#pragma once

#include <string>

#include "layers/attention/linear_attention.h"

namespace ember::nn {

/// ε added to every positive random feature after exp (the reference's value).
inline constexpr double kPerformerEps = 1e-4;

/// W: [m, d], ⌈m/d⌉ stacked blocks of d orthonormal rows (modified Gram-Schmidt, in double, of a d×d matrix of
/// N(0, 1) draws), every row rescaled by the norm of an independent N(0, I_d) draw (the reference's
/// `scaling = 0`), first m rows kept. Draws from `gen`; throws unless m ≥ 1 and d ≥ 1.
Tensor orthogonal_gaussian_features(std::int64_t m, std::int64_t d, Generator& gen, DType dtype = DType::Float32);

/// x: [..., d], W: [m, d] -> φ⁺(x) [..., m] = m^{-½} exp(W x − |x|²/2), without stabiliser or ε, so that
/// E_W[φ⁺(x)ᵀ φ⁺(y)] = exp(xᵀy) exactly when the rows of W are N(0, I_d). Differentiable.
Tensor favor_positive_features(const Tensor& x, const Tensor& W);

/// Causal multi-head Performer (FAVOR+) attention: LinearAttention with the positive random feature map.
class PerformerAttention : public LinearAttention {
 public:
  /// d_model, n_heads (dividing d_model), bias, options["features"] (m, default ⌊d ln d⌋, at least 1) and
  /// options["chunk"] (default 64) from the config; W is drawn from config.gen (the default generator if null).
  explicit PerformerAttention(const MixerConfig& config);
  /// Replaces W by a fresh draw of orthogonal_gaussian_features from `gen` (same m, d, dtype and device).
  void redraw_features(Generator& gen);

  const std::int64_t n_features;  ///< m, random features per head
  Tensor projection;              ///< W [m, d], the buffer `projection`: one row w_i per feature, shared by all heads

 protected:
  /// k: [B, H, T, d] -> m^{-½} (exp(w_iᵀy − |y|²/2) + ε), y = d^{-¼} k: [B, H, T, m].
  Tensor feature_map(const Tensor& k) const override;
  /// q: [B, H, T, d] -> m^{-½} (exp(w_iᵀx − |x|²/2 − c_x) + ε), x = d^{-¼} q, c_x the row's max exponent.
  Tensor query_feature_map(const Tensor& q) const override;
  /// m.
  std::int64_t feature_dim() const override;
  std::string extra_repr() const override;

 private:
  /// x: [B, H, T, d] -> the exponents w_iᵀx' − |x'|²/2 of x' = d^{-¼} x: [B, H, T, m].
  Tensor exponents(const Tensor& x) const;
};

}  // namespace ember::nn
