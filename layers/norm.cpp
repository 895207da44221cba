/// \file
/// \brief nn::LayerNorm and nn::RMSNorm.
#include "layers/norm.h"

#include <fmt/format.h>

#include "core/creation.h"
#include "layers/functional.h"

namespace ember::nn {

LayerNorm::LayerNorm(std::int64_t dim, double eps_, bool has_bias) : Module("LayerNorm"), eps(eps_) {
  EMBER_CHECK(dim > 0, "LayerNorm: dim must be positive, got " + std::to_string(dim));
  weight = register_parameter("weight", ones({dim}));
  if (has_bias) bias = register_parameter("bias", zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, weight, bias, eps); }

std::string LayerNorm::extra_repr() const { return fmt::format("{}, eps={:g}", weight.shape()[0], eps); }

RMSNorm::RMSNorm(std::int64_t dim, double eps_) : Module("RMSNorm"), eps(eps_) {
  EMBER_CHECK(dim > 0, "RMSNorm: dim must be positive, got " + std::to_string(dim));
  weight = register_parameter("weight", ones({dim}));
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, weight, eps); }

std::string RMSNorm::extra_repr() const { return fmt::format("{}, eps={:g}", weight.shape()[0], eps); }

}  // namespace ember::nn
