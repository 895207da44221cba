/// \file
/// \brief nn::LinearAttention: the elu + 1 feature map, the non-causal and chunked causal forms, and the
/// recurrent (S, z) decoding step.
#include "layers/attention/linear_attention.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "layers/functional.h"

namespace ember::nn {

Tensor elu_feature_map(const Tensor& x) { return elu(x) + 1.0; }

Tensor linear_attention_noncausal(const Tensor& q, const Tensor& k, const Tensor& v) {
  const auto& qs = q.shape();
  const auto& ks = k.shape();
  const auto& vs = v.shape();
  const auto n = static_cast<std::int64_t>(qs.size());
  bool ok = q.dim() >= 2 && k.dim() == q.dim() && v.dim() == q.dim() && qs[n - 1] == ks[n - 1] &&
            ks[n - 2] == vs[n - 2];
  for (std::int64_t i = 0; ok && i < n - 2; ++i) ok = qs[i] == ks[i] && qs[i] == vs[i];
  EMBER_CHECK(ok, fmt::format("linear_attention_noncausal: expected q [..., Tq, d], k [..., Tk, d], v [..., Tk, M] "
                              "with the same leading dims, got q {}, k {}, v {}",
                              shape_str(qs), shape_str(ks), shape_str(vs)));
  EMBER_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(),
              fmt::format("linear_attention_noncausal: q, k, v must share a dtype, got {}, {}, {}",
                          dtype_name(q.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype())));
  const Tensor fq = elu_feature_map(q), fk = elu_feature_map(k);
  const Tensor S = matmul(transpose(fk, n - 2, n - 1), v);  // [..., d, M]
  const Tensor z = sum(fk, {n - 2}, true);                  // [..., 1, d]
  const Tensor den = sum(mul(fq, z), {n - 1}, true);        // [..., Tq, 1]
  return matmul(fq, S) / (den + kLinearAttentionEps);
}

Tensor causal_linear_attention(const Tensor& phi_q, const Tensor& phi_k, const Tensor& v, std::int64_t chunk,
                               bool normalize) {
  const auto& qs = phi_q.shape();
  EMBER_CHECK(phi_q.dim() == 4 && phi_k.shape() == qs && v.dim() == 4 && v.shape()[0] == qs[0] &&
                  v.shape()[1] == qs[1] && v.shape()[2] == qs[2],
              fmt::format("causal_linear_attention: expected phi_q, phi_k [B, H, T, d] and v [B, H, T, M], got "
                          "phi_q {}, phi_k {}, v {}",
                          shape_str(qs), shape_str(phi_k.shape()), shape_str(v.shape())));
  EMBER_CHECK(chunk > 0, fmt::format("causal_linear_attention: chunk must be > 0, got {}", chunk));
  // Every chunk at once: [B, H, G, C, ·], zero-padded past T (a padded key has φ = 0 and adds nothing; padded
  // query rows are dropped at the end).
  const std::int64_t C = std::max<std::int64_t>(1, std::min(chunk, qs[2]));  // T < chunk: one chunk of T, no padding
  const Tensor Q = split_chunks(phi_q, C), K = split_chunks(phi_k, C), V = split_chunks(v, C);
  const Tensor A = tril(matmul(Q, transpose(K, 3, 4)));  // [B, H, G, C, C], φ(q_i)·φ(k_j) for j ≤ i in a chunk
  const Tensor S = exclusive_cumsum(matmul(transpose(K, 3, 4), V), 2);  // [B, H, G, d, M]: earlier chunks' Σ φ(k) vᵀ
  const Tensor num = matmul(A, V) + matmul(Q, S);
  if (!normalize) return merge_chunks(num, qs[2]);
  const Tensor z = exclusive_cumsum(transpose(sum(K, {3}, true), 3, 4), 2);  // [B, H, G, d, 1]: Σ φ(k)
  const Tensor den = sum(A, {4}, true) + matmul(Q, z);                       // [B, H, G, C, 1]
  return merge_chunks(num / (den + kLinearAttentionEps), qs[2]);
}

LinearAttention::LinearAttention(const MixerConfig& c) : LinearAttention(c, "LinearAttention") {}

LinearAttention::LinearAttention(const MixerConfig& c, std::string type_name)
    : HeadedMixer(c, std::move(type_name)), chunk(static_cast<std::int64_t>(std::llround(c.option("chunk", 64)))) {
  EMBER_CHECK(chunk > 0, fmt::format("{}: option chunk must be > 0, got {}", this->type_name(), c.option("chunk", 64)));
}

Tensor LinearAttention::feature_map(const Tensor& x) const { return elu_feature_map(x); }

Tensor LinearAttention::query_feature_map(const Tensor& q) const { return feature_map(q); }

std::int64_t LinearAttention::feature_dim() const { return head_dim; }

Tensor LinearAttention::forward(const Tensor& x) {
  check_input(x);
  const auto [q, k, v] = project(x);
  return merge(causal_linear_attention(query_feature_map(q), feature_map(k), v, chunk));
}

std::unique_ptr<MixerState> LinearAttention::init_state(std::int64_t batch, std::int64_t max_len) const {
  check_state_size(batch, max_len);
  auto state = std::make_unique<LinearAttentionState>();
  state->S = state_zeros({batch, n_heads, feature_dim(), head_dim});
  state->z = state_zeros({batch, n_heads, feature_dim()});
  return state;
}

Tensor LinearAttention::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* st = dynamic_cast<LinearAttentionState*>(&state);
  EMBER_CHECK(st != nullptr, type_name() + ": step needs the state made by its init_state");
  const std::int64_t B = st->S.shape()[0];
  check_step_input(x_t, B);
  const auto [q, k, v] = project(unsqueeze(x_t, 1));  // [B, H, 1, d]
  const Tensor fq = query_feature_map(q), fk = feature_map(k);
  st->S = st->S + matmul(transpose(fk, 2, 3), v);     // S + φ(k_t) v_tᵀ
  st->z = st->z + squeeze(fk, {2});                   // z + φ(k_t)
  const Tensor num = matmul(fq, st->S);               // [B, H, 1, d]
  const Tensor den = matmul(fq, unsqueeze(st->z, 3));  // [B, H, 1, 1]
  st->position += 1;
  return squeeze(merge(num / (den + kLinearAttentionEps)), {1});
}

std::string LinearAttention::extra_repr() const {
  return fmt::format("d_model={}, heads={}, chunk={}", n_heads * head_dim, n_heads, chunk);
}

}  // namespace ember::nn
