/// \file
/// \brief nn::MultiHeadAttention: projections, heads, RoPE, the naive kernel and KV-cache decoding.
#include "layers/attention/multi_head_attention.h"

#include <cmath>

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

KVCache& MultiHeadAttention::cache_of(MixerState& state, const char* op) const {
  auto* cache = dynamic_cast<KVCache*>(&state);
  EMBER_CHECK(cache != nullptr, type_name() + ": " + op + " needs the state made by its init_state");
  return *cache;
}

Tensor MultiHeadAttention::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  KVCache* cache = &cache_of(state, "step");
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

Tensor MultiHeadAttention::verify_tree(const Tensor& x, const Tensor& tree_mask, const Tensor& depth,
                                       MixerState& state) const {
  NoGradGuard no_grad;
  KVCache& cache = cache_of(state, "verify_tree");
  const std::int64_t B = cache.k.shape()[0], t = cache.position, n = x.dim() == 3 ? x.shape()[1] : 0;
  EMBER_CHECK(x.dim() == 3 && x.shape()[0] == B && x.shape()[2] == n_heads * head_dim && n > 0 &&
                  tree_mask.shape() == (Shape{n, n}) && tree_mask.dtype() == DType::Bool && depth.shape() == Shape{n} &&
                  depth.dtype() == DType::Int64,
              fmt::format("{}: verify_tree expects x [{}, n, {}], tree_mask [n, n] Bool and depth [n] Int64, got x {}, "
                          "tree_mask {} {}, depth {} {}",
                          type_name(), B, n_heads * head_dim, shape_str(x.shape()), dtype_name(tree_mask.dtype()),
                          shape_str(tree_mask.shape()), dtype_name(depth.dtype()), shape_str(depth.shape())));
  EMBER_CHECK(t + n <= cache.k.shape()[2], fmt::format("{}: the KV cache holds {} tokens; {} + {} drafted do not fit",
                                                       type_name(), cache.k.shape()[2], t, n));
  auto [q, k, v] = project(x);
  if (rope) {
    const Tensor positions = add(depth, scalar_tensor(static_cast<double>(t), DType::Int64));
    q = rope->rotate_at(q, positions);
    k = rope->rotate_at(k, positions);
  }
  raw::copy_(narrow(cache.k, 2, t, n), k);
  raw::copy_(narrow(cache.v, 2, t, n), v);
  cache.verified = n;
  const Tensor keys = narrow(cache.k, 2, 0, t + n), values = narrow(cache.v, 2, 0, t + n);
  // A chain is causal attention over the cache (bottom-right aligned): the layer's own kernel.
  if (is_chain(tree_mask, depth)) return merge(attend(q, keys, values));
  // Token i sees the whole prefix (slots 0..t−1) and the drafted slots t + j with tree_mask[i][j].
  const Tensor visible = cat({ones({n, t}, DType::Bool), tree_mask}, 1);
  const Tensor scores = matmul(q, transpose(keys, -1, -2)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  const Tensor p = softmax(masked_fill(scores, logical_not(visible), -INFINITY), -1);
  return merge(matmul(p, values));
}

void MultiHeadAttention::accept_tree(MixerState& state, const std::vector<std::int64_t>& path) const {
  NoGradGuard no_grad;
  KVCache& cache = cache_of(state, "accept_tree");
  const std::int64_t t = cache.position, m = static_cast<std::int64_t>(path.size());
  EMBER_CHECK(m > 0 && m <= cache.verified, fmt::format("{}: accept_tree of {} tokens after verifying {}", type_name(),
                                                        m, cache.verified));
  std::vector<std::int64_t> slots;
  for (std::int64_t node : path) {
    EMBER_CHECK(node >= 0 && node < cache.verified,
                fmt::format("{}: accept_tree: token {} is not among the {} verified", type_name(), node, cache.verified));
    slots.push_back(t + node);
  }
  const Tensor index = from_vector(slots, {m});
  for (Tensor* kv : {&cache.k, &cache.v}) raw::copy_(narrow(*kv, 2, t, m), index_select(*kv, 2, index));
  cache.position = t + m;
  cache.verified = 0;
}

std::string MultiHeadAttention::extra_repr() const {
  return fmt::format("d_model={}, heads={}{}", n_heads * head_dim, n_heads, rope ? ", rope" : "");
}

}  // namespace ember::nn
