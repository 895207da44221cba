/// \file
/// \brief nn::Linear and nn::Embedding.
#include "layers/linear.h"

#include <cmath>

#include "core/creation.h"
#include "layers/functional.h"

namespace ember::nn {

Linear::Linear(std::int64_t in, std::int64_t out, bool has_bias, Generator* gen) : Module("Linear") {
  EMBER_CHECK(in > 0 && out > 0, "Linear: sizes must be positive, got in " + std::to_string(in) + ", out " +
                                     std::to_string(out));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  weight = register_parameter("weight", rand({out, in}, DType::Float32, Device::cpu(), -bound, bound, gen));
  if (has_bias) bias = register_parameter("bias", rand({out}, DType::Float32, Device::cpu(), -bound, bound, gen));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::extra_repr() const {
  return "in=" + std::to_string(weight.shape()[1]) + ", out=" + std::to_string(weight.shape()[0]) +
         (bias.defined() ? "" : ", bias=false");
}

Embedding::Embedding(std::int64_t num, std::int64_t dim, Generator* gen) : Module("Embedding") {
  EMBER_CHECK(num > 0 && dim > 0, "Embedding: sizes must be positive, got " + std::to_string(num) + " x " +
                                      std::to_string(dim));
  weight = register_parameter("weight", randn({num, dim}, DType::Float32, Device::cpu(), 0.0, 1.0, gen));
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(ids, weight); }

std::string Embedding::extra_repr() const {
  return std::to_string(weight.shape()[0]) + ", " + std::to_string(weight.shape()[1]);
}

}  // namespace ember::nn
