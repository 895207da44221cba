/// \file
/// \brief nn::GatedAttentionUnit: the relu² kernel, the U, V, Z projection, the scale/offset views, the gated output
/// and KV-cache decoding.
#include "layers/attention/gated_attention_unit.h"

#include <cmath>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/ops.h"

namespace ember::nn {

namespace {

/// The rows of γ and β that make Q and K from Z.
constexpr std::int64_t kQ = 0, kK = 1;

}  // namespace

Tensor relu_squared_scores(const Tensor& q, const Tensor& k, double n) {
  const std::int64_t r = q.dim();
  bool ok = r >= 2 && k.dim() == r && q.shape()[r - 1] == k.shape()[r - 1];
  for (std::int64_t i = 0; ok && i < r - 2; ++i) ok = q.shape()[i] == k.shape()[i];
  EMBER_CHECK(ok, fmt::format("relu_squared_scores: expected q [..., Tq, s] and k [..., Tk, s], got q {}, k {}",
                              shape_str(q.shape()), shape_str(k.shape())));
  EMBER_CHECK(n > 0, fmt::format("relu_squared_scores: n must be > 0, got {}", n));
  const std::int64_t Tq = q.shape()[r - 2], Tk = k.shape()[r - 2];
  return tril(square(relu(matmul(q, transpose(k, r - 2, r - 1)) / n)), Tk - Tq);
}

GatedAttentionUnit::GatedAttentionUnit(const MixerConfig& c) : GatedAttentionUnit(c, "GatedAttentionUnit", kK + 1) {}

GatedAttentionUnit::GatedAttentionUnit(const MixerConfig& c, std::string type_name, std::int64_t views)
    : SequenceMixer(std::move(type_name)),
      d_model(positive_integer("d_model", static_cast<double>(c.d_model))),
      expanded_dim(
          positive_integer("e = expansion · d_model", c.option("expansion", 2.0) * static_cast<double>(c.d_model))),
      shared_dim(positive_integer("option shared", c.option("shared", 128.0))),
      context_len(positive_integer("max_len", static_cast<double>(c.max_len))) {
  EMBER_CHECK(!c.rope || shared_dim % 2 == 0,
              fmt::format("{}: RoPE needs an even shared dim s, got {}", this->type_name(), shared_dim));
  uvz_proj =
      register_module("uvz_proj", std::make_shared<Linear>(d_model, 2 * expanded_dim + shared_dim, c.bias, c.gen));
  o_proj = register_module("o_proj", std::make_shared<Linear>(expanded_dim, d_model, c.bias, c.gen));
  gamma = register_parameter("gamma", randn({views, shared_dim}, DType::Float32, Device::cpu(), 0.0, 0.02, c.gen));
  beta = register_parameter("beta", zeros({views, shared_dim}));
  if (c.rope) rope = register_module("rope", std::make_shared<RotaryEmbedding>(shared_dim, c.max_len, c.rope_base));
}

std::int64_t GatedAttentionUnit::positive_integer(const std::string& what, double value) const {
  EMBER_CHECK(std::isfinite(value) && value >= 1.0 && value <= 1e15 && std::abs(value - std::round(value)) < 1e-9,
              fmt::format("{}: {} must be a positive integer, got {}", type_name(), what, value));
  return static_cast<std::int64_t>(std::llround(value));
}

std::array<Tensor, 3> GatedAttentionUnit::project(const Tensor& x) const {
  const Tensor h = silu(uvz_proj->forward(x));  // [B, T, 2e + s]
  return {narrow(h, 2, 0, expanded_dim), narrow(h, 2, expanded_dim, expanded_dim),
          narrow(h, 2, 2 * expanded_dim, shared_dim)};
}

Tensor GatedAttentionUnit::view_of(const Tensor& Z, std::int64_t i, std::int64_t start) const {
  const Tensor v = Z * select(gamma, 0, i) + select(beta, 0, i);
  return rope ? squeeze(rope->rotate(unsqueeze(v, 1), start), {1}) : v;
}

Tensor GatedAttentionUnit::gate(const Tensor& U, const Tensor& V_hat) const { return o_proj->forward(U * V_hat); }

Tensor GatedAttentionUnit::forward(const Tensor& x) {
  check_input(x);
  const auto [U, V, Z] = project(x);
  const Tensor A = relu_squared_scores(view_of(Z, kQ, 0), view_of(Z, kK, 0), static_cast<double>(context_len));
  return gate(U, matmul(A, V));
}

std::unique_ptr<MixerState> GatedAttentionUnit::init_state(std::int64_t batch, std::int64_t max_len) const {
  check_state_size(batch, max_len);
  auto cache = std::make_unique<GauCache>();
  cache->k = state_zeros({batch, max_len, shared_dim});
  cache->v = state_zeros({batch, max_len, expanded_dim});
  return cache;
}

Tensor GatedAttentionUnit::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* cache = dynamic_cast<GauCache*>(&state);
  EMBER_CHECK(cache != nullptr, type_name() + ": step needs the state made by its init_state");
  const std::int64_t B = cache->k.shape()[0], t = cache->position;
  check_step_input(x_t, B);
  EMBER_CHECK(t < cache->k.shape()[1], fmt::format("{}: the KV cache is full ({} tokens)", type_name(), t));
  const auto [U, V, Z] = project(unsqueeze(x_t, 1));  // [B, 1, ·]
  raw::copy_(narrow(cache->k, 1, t, 1), view_of(Z, kK, t));
  raw::copy_(narrow(cache->v, 1, t, 1), V);
  cache->position = t + 1;
  const Tensor A = relu_squared_scores(view_of(Z, kQ, t), narrow(cache->k, 1, 0, t + 1),
                                       static_cast<double>(context_len));  // [B, 1, t + 1]
  return squeeze(gate(U, matmul(A, narrow(cache->v, 1, 0, t + 1))), {1});
}

void GatedAttentionUnit::check_input(const Tensor& x) const {
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == d_model,
              fmt::format("{}: expected x [B, T, {}], got {}", type_name(), d_model, shape_str(x.shape())));
}

void GatedAttentionUnit::check_step_input(const Tensor& x_t, std::int64_t batch) const {
  EMBER_CHECK(
      x_t.dim() == 2 && x_t.shape()[0] == batch && x_t.shape()[1] == d_model,
      fmt::format("{}: step expected x_t [{}, {}], got {}", type_name(), batch, d_model, shape_str(x_t.shape())));
}

void GatedAttentionUnit::check_state_size(std::int64_t batch, std::int64_t max_len) const {
  EMBER_CHECK(batch > 0 && max_len > 0, fmt::format("{}: init_state needs batch > 0 and max_len > 0, got {} and {}",
                                                    type_name(), batch, max_len));
}

Tensor GatedAttentionUnit::state_zeros(const Shape& shape) const {
  return zeros(shape, o_proj->weight.dtype(), o_proj->weight.device());
}

std::string GatedAttentionUnit::extra_repr() const {
  return fmt::format("d_model={}, e={}, s={}, n={}{}", d_model, expanded_dim, shared_dim, context_len,
                     rope ? ", rope" : "");
}

}  // namespace ember::nn
