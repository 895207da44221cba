/// \file
/// \brief nn::LayerNorm (Ba et al. 2016) and nn::RMSNorm (Zhang & Sennrich 2019) over the last dim.
///
/// LayerNorm: y = (x − μ)/sqrt(σ² + ε) ⊙ w + b. RMSNorm: y = x / sqrt(mean(x²) + ε) ⊙ w. w starts at 1, b at 0.
#pragma once

#include "layers/module.h"

namespace ember::nn {

/// Layer normalisation with a learned scale and shift.
class LayerNorm : public Module {
 public:
  /// Normalises vectors of size dim.
  explicit LayerNorm(std::int64_t dim, double eps = 1e-5, bool bias = true);
  /// x: [..., dim] -> [..., dim].
  Tensor forward(const Tensor& x) override;
  Tensor weight;  ///< [dim], the scale w
  Tensor bias;    ///< [dim], the shift b (undefined without bias)
  double eps;     ///< ε

 protected:
  std::string extra_repr() const override;
};

/// Root-mean-square normalisation with a learned scale.
class RMSNorm : public Module {
 public:
  /// Normalises vectors of size dim.
  explicit RMSNorm(std::int64_t dim, double eps = 1e-5);
  /// x: [..., dim] -> [..., dim].
  Tensor forward(const Tensor& x) override;
  Tensor weight;  ///< [dim], the scale g
  double eps;     ///< ε

 protected:
  std::string extra_repr() const override;
};

}  // namespace ember::nn
