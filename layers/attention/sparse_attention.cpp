/// \file
/// \brief nn::SparseAttention: MultiHeadAttention whose `attend` is block-sparse attention over a Sparse Transformer
/// pattern, and the parsing of its options.
#include "layers/attention/sparse_attention.h"

#include <cmath>

#include <fmt/format.h>

#include "layers/functional.h"

namespace ember::nn {

namespace {

/// options[name] (or fallback) as an integer; throws naming the layer unless it is one.
std::int64_t integer_option(const MixerConfig& c, const char* name, double fallback) {
  const double x = c.option(name, fallback);
  EMBER_CHECK(std::isfinite(x) && x == std::floor(x) && std::abs(x) < 1e15,
              fmt::format("SparseAttention: option {} must be an integer, got {}", name, x));
  return static_cast<std::int64_t>(x);
}

/// The pattern from options "pattern", "stride" and "summary".
SparsePattern pattern_of(const MixerConfig& c) {
  const std::int64_t code = integer_option(c, "pattern", 2);
  EMBER_CHECK(code >= 0 && code <= 3,
              fmt::format("SparseAttention: option pattern must be 0 (dense), 1 (local), 2 (strided) or 3 (fixed), "
                          "got {}",
                          code));
  return {static_cast<SparseKind>(code), integer_option(c, "stride", 32), integer_option(c, "summary", 8)};
}

}  // namespace

SparseAttention::SparseAttention(const MixerConfig& c)
    : SparseAttention(c, pattern_of(c), integer_option(c, "block", 8)) {}

SparseAttention::SparseAttention(const MixerConfig& c, const SparsePattern& p, std::int64_t b)
    : MultiHeadAttention(c, "SparseAttention"), pattern(p), block(b) {
  pattern.check(type_name());
  EMBER_CHECK(block >= 1, fmt::format("{}: the block size b must be >= 1, got {}", type_name(), block));
}

BlockSparseLayout SparseAttention::layout(std::int64_t length, std::int64_t first_query) const {
  return BlockSparseLayout(pattern, length, block, first_query);
}

Tensor SparseAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v) const {
  const std::int64_t Tq = q.shape()[2], Tk = k.shape()[2];
  EMBER_CHECK(Tq <= Tk, fmt::format("{}: attend needs Tq <= Tk, got {} and {}", type_name(), Tq, Tk));
  return block_sparse_attention(q, k, v, layout(Tk, Tk - Tq));
}

std::string SparseAttention::extra_repr() const {
  return fmt::format("{}, pattern={}, block={}", MultiHeadAttention::extra_repr(), pattern.str(), block);
}

}  // namespace ember::nn
