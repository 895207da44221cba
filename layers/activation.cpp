/// \file
/// \brief The activation modules: each forwards to its differentiable op.
#include "layers/activation.h"

#include "autograd/ops.h"

namespace ember::nn {

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Tensor GELU::forward(const Tensor& x) { return gelu(x, tanh_approximation); }

Tensor SiLU::forward(const Tensor& x) { return silu(x); }

Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

}  // namespace ember::nn
