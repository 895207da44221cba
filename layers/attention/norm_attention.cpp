/// \file
/// \brief nn::NormAttention: chunked denominator-free causal linear attention, per-head SRMSNorm, the S-only step.
#include "layers/attention/norm_attention.h"

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "layers/functional.h"

namespace ember::nn {

NormAttention::NormAttention(const MixerConfig& c) : NormAttention(c, "NormAttention") {}

NormAttention::NormAttention(const MixerConfig& c, std::string type_name) : LinearAttention(c, std::move(type_name)) {}

Tensor NormAttention::forward(const Tensor& x) {
  check_input(x);
  const auto [q, k, v] = project(x);
  const Tensor o = causal_linear_attention(query_feature_map(q), feature_map(k), v, chunk, false);
  return merge(rms_norm(o, Tensor(), kNormAttentionEps));
}

std::unique_ptr<MixerState> NormAttention::init_state(std::int64_t batch, std::int64_t max_len) const {
  check_state_size(batch, max_len);
  auto state = std::make_unique<NormAttentionState>();
  state->S = state_zeros({batch, n_heads, feature_dim(), head_dim});
  return state;
}

Tensor NormAttention::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* st = dynamic_cast<NormAttentionState*>(&state);
  EMBER_CHECK(st != nullptr, type_name() + ": step needs the state made by its init_state");
  const std::int64_t B = st->S.shape()[0];
  check_step_input(x_t, B);
  const auto [q, k, v] = project(unsqueeze(x_t, 1));  // [B, H, 1, d]
  st->S = st->S + matmul(transpose(feature_map(k), 2, 3), v);
  const Tensor o = matmul(query_feature_map(q), st->S);  // [B, H, 1, d]
  st->position += 1;
  return squeeze(merge(rms_norm(o, Tensor(), kNormAttentionEps)), {1});
}

}  // namespace ember::nn
