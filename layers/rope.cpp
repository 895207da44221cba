/// \file
/// \brief nn::RotaryEmbedding.
#include "layers/rope.h"

#include <fmt/format.h>

#include "autograd/ops.h"
#include "layers/functional.h"

namespace ember::nn {

RotaryEmbedding::RotaryEmbedding(std::int64_t head_dim, std::int64_t max_len, double base)
    : Module("RotaryEmbedding"), base_(base) {
  // Float64 tables: apply_rope converts them to the input's dtype, so a model moved to Float64 gets
  // angles exact to double precision.
  auto [c, s] = rope_tables(max_len, head_dim, base, DType::Float64);
  cos = register_buffer("cos", c, false);
  sin = register_buffer("sin", s, false);
}

Tensor RotaryEmbedding::rotate(const Tensor& x, std::int64_t start) const { return apply_rope(x, cos, sin, start); }

Tensor RotaryEmbedding::rotate_at(const Tensor& x, const Tensor& positions) const {
  return apply_rope(x, index_select(cos, 0, positions), index_select(sin, 0, positions), 0);
}

std::string RotaryEmbedding::extra_repr() const {
  return fmt::format("head_dim={}, max_len={}, base={:g}", 2 * cos.shape()[1], cos.shape()[0], base_);
}

}  // namespace ember::nn
