/// \file
/// \brief nn::HeadedMixer: projections, head split and merge, shape checks.
#include "layers/attention/headed_mixer.h"

#include <fmt/format.h>

#include "autograd/ops.h"

namespace ember::nn {

HeadedMixer::HeadedMixer(const MixerConfig& c, std::string type_name)
    : SequenceMixer(std::move(type_name)), n_heads(c.n_heads), head_dim(c.n_heads > 0 ? c.d_model / c.n_heads : 0) {
  EMBER_CHECK(c.n_heads > 0 && c.d_model > 0 && c.d_model % c.n_heads == 0,
              fmt::format("{}: d_model {} is not divisible into {} heads", this->type_name(), c.d_model, c.n_heads));
  q_proj = register_module("q_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
  k_proj = register_module("k_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
  o_proj = register_module("o_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
}

std::array<Tensor, 3> HeadedMixer::project(const Tensor& x) const {
  const std::int64_t B = x.shape()[0], T = x.shape()[1];
  const auto heads = [&](const std::shared_ptr<Linear>& proj) {
    return permute(reshape(proj->forward(x), {B, T, n_heads, head_dim}), {0, 2, 1, 3});
  };
  return {heads(q_proj), heads(k_proj), heads(v_proj)};
}

Tensor HeadedMixer::merge(const Tensor& o) const {
  const std::int64_t B = o.shape()[0], T = o.shape()[2];
  return o_proj->forward(reshape(permute(o, {0, 2, 1, 3}), {B, T, n_heads * head_dim}));
}

void HeadedMixer::check_input(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == n_heads * head_dim,
              fmt::format("{}: expected x [B, T, {}], got {}", type_name(), n_heads * head_dim, shape_str(x.shape())));
}

void HeadedMixer::check_step_input(const Tensor& x_t, std::int64_t batch) const {
  EMBER_CHECK(x_t.dim() == 2 && x_t.shape()[0] == batch && x_t.shape()[1] == n_heads * head_dim,
              fmt::format("{}: step expected x_t [{}, {}], got {}", type_name(), batch, n_heads * head_dim,
                          shape_str(x_t.shape())));
}

void HeadedMixer::check_state_size(std::int64_t batch, std::int64_t max_len) const {
  EMBER_CHECK(batch > 0 && max_len > 0, fmt::format("{}: init_state needs batch > 0 and max_len > 0, got {} and {}",
                                                    type_name(), batch, max_len));
}

Tensor HeadedMixer::state_zeros(const Shape& shape) const {
  return zeros(shape, q_proj->weight.dtype(), q_proj->weight.device());
}

}  // namespace ember::nn
