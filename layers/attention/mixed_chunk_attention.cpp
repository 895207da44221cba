/// \file
/// \brief nn::MixedChunkAttention: the chunked causal forward (local relu² plus exclusive-prefix linear part) and
/// the fixed-size decoding step.
#include "layers/attention/mixed_chunk_attention.h"

#include <algorithm>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/ops.h"
#include "layers/functional.h"

namespace ember::nn {

namespace {

/// The rows of γ and β that make each view of Z.
constexpr std::int64_t kQuadQ = 0, kQuadK = 1, kLinQ = 2, kLinK = 3;

}  // namespace

MixedChunkAttention::MixedChunkAttention(const MixerConfig& c) : MixedChunkAttention(c, "MixedChunkAttention") {}

MixedChunkAttention::MixedChunkAttention(const MixerConfig& c, std::string type_name)
    : GatedAttentionUnit(c, std::move(type_name), kLinK + 1),
      chunk(positive_integer("option chunk", c.option("chunk", 256))) {}

Tensor MixedChunkAttention::forward(const Tensor& x) {
  check_input(x);
  const auto [U, V, Z] = project(x);
  const Tensor q_quad = view_of(Z, kQuadQ, 0), k_quad = view_of(Z, kQuadK, 0);
  const Tensor q_lin = view_of(Z, kLinQ, 0), k_lin = view_of(Z, kLinK, 0);
  // Every chunk at once on [B, G, C, ·] views, zero-padded past T (padded keys and values add nothing to the
  // rows before them; padded query rows are dropped).
  // (T < C: one chunk of T rows; the scale stays 1/C.)
  const std::int64_t rows = std::max<std::int64_t>(1, std::min(chunk, x.shape()[1]));
  const Tensor Qq = split_chunks(q_quad, rows), Kq = split_chunks(k_quad, rows);
  const Tensor Ql = split_chunks(q_lin, rows), Kl = split_chunks(k_lin, rows), Vc = split_chunks(V, rows);
  const auto C = static_cast<double>(chunk);
  const Tensor S = exclusive_cumsum(matmul(transpose(Kl, 2, 3), Vc), 1);  // [B, G, s, e]: Σ_{h<g} K^lin_hᵀ V_h
  const Tensor V_hat = matmul(relu_squared_scores(Qq, Kq, C), Vc) + matmul(Ql, S) / C;
  return gate(U, merge_chunks(V_hat, x.shape()[1]));
}

std::unique_ptr<MixerState> MixedChunkAttention::init_state(std::int64_t batch, std::int64_t max_len) const {
  check_state_size(batch, max_len);
  auto state = std::make_unique<MixedChunkState>();
  state->k_quad = state_zeros({batch, chunk, shared_dim});
  state->v = state_zeros({batch, chunk, expanded_dim});
  state->S = state_zeros({batch, shared_dim, expanded_dim});
  state->S_chunk = state_zeros({batch, shared_dim, expanded_dim});
  return state;
}

Tensor MixedChunkAttention::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* st = dynamic_cast<MixedChunkState*>(&state);
  EMBER_CHECK(st != nullptr, type_name() + ": step needs the state made by its init_state");
  const std::int64_t B = st->S.shape()[0], t = st->position, r = t % chunk;  // r: row within the chunk
  check_step_input(x_t, B);
  const auto [U, V, Z] = project(unsqueeze(x_t, 1));  // [B, 1, ·]
  raw::copy_(narrow(st->k_quad, 1, r, 1), view_of(Z, kQuadK, t));
  raw::copy_(narrow(st->v, 1, r, 1), V);
  const auto C = static_cast<double>(chunk);
  const Tensor A = relu_squared_scores(view_of(Z, kQuadQ, t), narrow(st->k_quad, 1, 0, r + 1), C);  // [B, 1, r+1]
  const Tensor V_hat = matmul(A, narrow(st->v, 1, 0, r + 1)) + matmul(view_of(Z, kLinQ, t), st->S) / C;
  st->S_chunk = st->S_chunk + matmul(transpose(view_of(Z, kLinK, t), 1, 2), V);
  if (r == chunk - 1) {  // the chunk is complete: later chunks see it through S
    st->S = st->S + st->S_chunk;
    st->S_chunk = zeros_like(st->S_chunk);
  }
  st->position = t + 1;
  return squeeze(gate(U, V_hat), {1});
}

std::string MixedChunkAttention::extra_repr() const {
  return GatedAttentionUnit::extra_repr() + fmt::format(", chunk={}", chunk);
}

}  // namespace ember::nn
