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
    : SequenceMixer(std::move(type_name)),
      n_heads(c.n_heads),
      head_dim(c.n_heads > 0 ? c.d_model / c.n_heads : 0) {
  EMBER_CHECK(c.n_heads > 0 && c.d_model > 0 && c.d_model % c.n_heads == 0,
              fmt::format("MultiHeadAttention: d_model {} is not divisible into {} heads", c.d_model, c.n_heads));
  q_proj = register_module("q_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
  k_proj = register_module("k_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
  o_proj = register_module("o_proj", std::make_shared<Linear>(c.d_model, c.d_model, c.bias, c.gen));
  if (c.rope) rope = register_module("rope", std::make_shared<RotaryEmbedding>(head_dim, c.max_len, c.rope_base));
}

std::array<Tensor, 3> MultiHeadAttention::project(const Tensor& x, std::int64_t start) const {
  const std::int64_t B = x.shape()[0], T = x.shape()[1];
  const auto heads = [&](const std::shared_ptr<Linear>& proj) {
    return permute(reshape(proj->forward(x), {B, T, n_heads, head_dim}), {0, 2, 1, 3});
  };
  Tensor q = heads(q_proj), k = heads(k_proj), v = heads(v_proj);
  if (rope) {
    q = rope->rotate(q, start);
    k = rope->rotate(k, start);
  }
  return {q, k, v};
}

Tensor MultiHeadAttention::merge(const Tensor& o) const {
  const std::int64_t B = o.shape()[0], T = o.shape()[2];
  return o_proj->forward(reshape(permute(o, {0, 2, 1, 3}), {B, T, n_heads * head_dim}));
}

Tensor MultiHeadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v) const {
  return naive_attention(q, k, v, true);
}

Tensor MultiHeadAttention::forward(const Tensor& x) {
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == n_heads * head_dim,
              fmt::format("{}: expected x [B, T, {}], got {}", type_name(), n_heads * head_dim, shape_str(x.shape())));
  const auto [q, k, v] = project(x, 0);
  return merge(attend(q, k, v));
}

std::unique_ptr<MixerState> MultiHeadAttention::init_state(std::int64_t batch, std::int64_t max_len) const {
  EMBER_CHECK(batch > 0 && max_len > 0, fmt::format("{}: init_state needs batch > 0 and max_len > 0, got {} and {}",
                                                    type_name(), batch, max_len));
  auto cache = std::make_unique<KVCache>();
  const DType dtype = q_proj->weight.dtype();
  cache->k = zeros({batch, n_heads, max_len, head_dim}, dtype, q_proj->weight.device());
  cache->v = zeros({batch, n_heads, max_len, head_dim}, dtype, q_proj->weight.device());
  return cache;
}

Tensor MultiHeadAttention::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* cache = dynamic_cast<KVCache*>(&state);
  EMBER_CHECK(cache != nullptr, type_name() + ": step needs the state made by its init_state");
  const std::int64_t B = cache->k.shape()[0], t = cache->position;
  EMBER_CHECK(x_t.dim() == 2 && x_t.shape()[0] == B && x_t.shape()[1] == n_heads * head_dim,
              fmt::format("{}: step expected x_t [{}, {}], got {}", type_name(), B, n_heads * head_dim,
                          shape_str(x_t.shape())));
  EMBER_CHECK(t < cache->k.shape()[2], fmt::format("{}: the KV cache is full ({} tokens)", type_name(), t));
  const auto [q, k, v] = project(unsqueeze(x_t, 1), t);
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
