/// \file
/// \brief nn::MultiHeadAttention: projections, heads, RoPE, the naive kernel and KV-cache decoding.
#include "layers/attention/multi_head_attention.h"

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "layers/functional.h"

namespace ember::nn {

MultiHeadAttention::MultiHeadAttention(const MixerConfig& c) : MultiHeadAttention(c, "MultiHeadAttention") {}

MultiHeadAttention::MultiHeadAttention(const MixerConfig& c, std::string type_name)
    : HeadedMixer(c, std::move(type_name)) {
  if (c.rope) rope = register_module("rope", std::make_shared<RotaryEmbedding>(head_dim, c.max_len, c.rope_base));
}

std::array<Tensor, 3> MultiHeadAttention::project_rotated(const Tensor& x, std::int64_t start) const {
  auto [q, k, v] = project(x);
  if (rope) {
    q = rope->rotate(q, start);
    k = rope->rotate(k, start);
  }
  return {q, k, v};
}

Tensor MultiHeadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v) const {
  return naive_attention(q, k, v, true);
}

Tensor MultiHeadAttention::forward(const Tensor& x) {
  check_input(x);
  const auto [q, k, v] = project_rotated(x, 0);
  return merge(attend(q, k, v));
}

std::unique_ptr<MixerState> MultiHeadAttention::init_state(std::int64_t batch, std::int64_t max_len) const {
  check_state_size(batch, max_len);
  auto cache = std::make_unique<KVCache>();
  cache->k = state_zeros({batch, n_heads, max_len, head_dim});
  cache->v = state_zeros({batch, n_heads, max_len, head_dim});
  return cache;
}

Tensor MultiHeadAttention::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* cache = dynamic_cast<KVCache*>(&state);
  EMBER_CHECK(cache != nullptr, type_name() + ": step needs the state made by its init_state");
  const std::int64_t B = cache->k.shape()[0], t = cache->position;
  check_step_input(x_t, B);
  EMBER_CHECK(t < cache->k.shape()[2], fmt::format("{}: the KV cache is full ({} tokens)", type_name(), t));
  const auto [q, k, v] = project_rotated(unsqueeze(x_t, 1), t);
  raw::copy_(narrow(cache->k, 2, t, 1), k);
  raw::copy_(narrow(cache->v, 2, t, 1), v);
  cache->position = t + 1;
  const Tensor o = attend(q, narrow(cache->k, 2, 0, t + 1), narrow(cache->v, 2, 0, t + 1));
  return squeeze(merge(o), {1});
}

std::string MultiHeadAttention::extra_repr() const {
  return fmt::format("d_model={}, heads={}{}", n_heads * head_dim, n_heads, rope ? ", rope" : "");
}

}  // namespace ember::nn
