/// \file
/// \brief nn::Linear and nn::Embedding: the affine map y = x Wᵀ + b and the lookup table.
#pragma once

#include "core/philox.h"
#include "layers/module.h"

namespace ember::nn {

/// y = x Wᵀ + b with W [out, in] (PyTorch's layout). Initialised as PyTorch does: W and b uniform on
/// [−1/sqrt(in), 1/sqrt(in)].
class Linear : public Module {
 public:
  /// A layer from `in` to `out` features, with a bias when `bias`; draws from `gen` (default generator if null).
  Linear(std::int64_t in, std::int64_t out, bool bias = true, Generator* gen = nullptr);
  /// x: [..., in] -> [..., out].
  Tensor forward(const Tensor& x) override;
  Tensor weight;  ///< [out, in]
  Tensor bias;    ///< [out], undefined without bias

 protected:
  std::string extra_repr() const override;
};

/// A table of `num` vectors of size `dim`, initialised N(0, 1) as PyTorch does.
class Embedding : public Module {
 public:
  /// num rows of width dim.
  Embedding(std::int64_t num, std::int64_t dim, Generator* gen = nullptr);
  /// ids: [...] Int64 -> [..., dim].
  Tensor forward(const Tensor& ids) override;
  Tensor weight;  ///< [num, dim]

 protected:
  std::string extra_repr() const override;
};

}  // namespace ember::nn
