/// \file
/// \brief nn::DiagAttention: causal softmax attention inside each block of w tokens.
#include "layers/attention/diag_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/ops.h"
#include "layers/functional.h"

namespace ember::nn {

DiagAttention::DiagAttention(const MixerConfig& c) : DiagAttention(c, "DiagAttention") {}

DiagAttention::DiagAttention(const MixerConfig& c, std::string type_name)
    : MultiHeadAttention(c, std::move(type_name)),
      block(static_cast<std::int64_t>(std::llround(c.option("block", 64)))) {
  EMBER_CHECK(block > 0, fmt::format("{}: option block must be > 0, got {}", this->type_name(), c.option("block", 64)));
}

Tensor DiagAttention::attend_blocks(const Tensor& q, const Tensor& k, const Tensor& v) const {
  const Shape& s = q.shape();  // [B, H, T, d]
  const std::int64_t G = (s[2] + block - 1) / block;
  // [B, H, T, d] -> [B, H·G, w, d]: each block a separate "head" of causal attention (padding after T is hidden
  // from every real query by the causal mask).
  const auto blocks = [&](const Tensor& x) { return reshape(split_chunks(x, block), {s[0], s[1] * G, block, s[3]}); };
  const Tensor o = naive_attention(blocks(q), blocks(k), blocks(v), true);
  return merge_chunks(reshape(o, {s[0], s[1], G, block, s[3]}), s[2]);
}

Tensor DiagAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v) const {
  const std::int64_t Tq = q.shape()[2], Tk = k.shape()[2];
  EMBER_CHECK(Tq <= Tk, fmt::format("{}: attend needs Tq <= Tk, got {} and {}", type_name(), Tq, Tk));
  if (Tq == Tk) return attend_blocks(q, k, v);
  const std::int64_t p0 = Tk - Tq;  // absolute position of the first query (decoding: the KV cache before it)
  std::vector<Tensor> outs;
  for (std::int64_t b0 = (p0 / block) * block; b0 < Tk; b0 += block) {
    const std::int64_t end = std::min(b0 + block, Tk);  // keys and queries of this block end here
    const std::int64_t qs = std::max(b0, p0);           // first query of this block
    // Key slice [b0, end) and query slice [qs, end) end together: bottom-right causal alignment is exact.
    outs.push_back(naive_attention(narrow(q, 2, qs - p0, end - qs), narrow(k, 2, b0, end - b0),
                                   narrow(v, 2, b0, end - b0), true));
  }
  if (outs.empty()) return q;  // Tq = 0
  return outs.size() == 1 ? outs[0] : cat(outs, 2);
}

std::string DiagAttention::extra_repr() const {
  return fmt::format("{}, block={}", MultiHeadAttention::extra_repr(), block);
}

}  // namespace ember::nn
