/// \file
/// \brief nn::RotaryEmbedding (RoFormer, Su et al. 2021): rotates each pair (i, i + d/2) of a head's features at
/// position m by the angle m·θ_i, θ_i = base^(−2i/d), so that ⟨R_m q, R_n k⟩ depends on m − n only.
#pragma once

#include "layers/module.h"

namespace ember::nn {

/// RoPE with its cos/sin tables as non-persistent buffers (rebuilt from the config, never saved).
class RotaryEmbedding : public Module {
 public:
  /// Tables for positions 0..max_len−1 of heads of size head_dim (even).
  RotaryEmbedding(std::int64_t head_dim, std::int64_t max_len, double base = 10000.0);
  /// x: [B, H, T, d] -> x rotated at positions 0..T−1.
  Tensor forward(const Tensor& x) override { return rotate(x, 0); }
  /// x: [B, H, T, d] -> x rotated at positions start..start+T−1.
  Tensor rotate(const Tensor& x, std::int64_t start) const;
  /// x: [B, H, n, d] -> x rotated at the given positions [n] (Int64), one per row (tree verification).
  Tensor rotate_at(const Tensor& x, const Tensor& positions) const;
  Tensor cos;  ///< [max_len, d/2], cos(m θ_i)
  Tensor sin;  ///< [max_len, d/2], sin(m θ_i)

 protected:
  std::string extra_repr() const override;

 private:
  double base_;
};

}  // namespace ember::nn
