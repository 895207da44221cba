/// \file
/// \brief The sparse attention patterns' names and checks, and the block scan that builds a BlockSparseLayout.
#include "core/block_sparse.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.h"

namespace ember {

std::string sparse_kind_name(SparseKind kind) {
  switch (kind) {
    case SparseKind::Dense: return "dense";
    case SparseKind::Local: return "local";
    case SparseKind::Strided: return "strided";
    case SparseKind::Fixed: return "fixed";
  }
  return "unknown";
}

void SparsePattern::check(const std::string& op) const {
  EMBER_CHECK(stride >= 1, fmt::format("{}: the stride l must be >= 1, got {}", op, stride));
  EMBER_CHECK(summary >= 1 && summary <= stride,
              fmt::format("{}: the summary c must satisfy 1 <= c <= l = {}, got {}", op, stride, summary));
}

std::string SparsePattern::str() const {
  switch (kind) {
    case SparseKind::Dense: return "dense";
    case SparseKind::Fixed: return fmt::format("fixed(l={}, c={})", stride, summary);
    default: return fmt::format("{}(l={})", sparse_kind_name(kind), stride);
  }
}

BlockSparseLayout::BlockSparseLayout(const SparsePattern& pattern, std::int64_t length, std::int64_t block,
                                     std::int64_t first_query)
    : pattern_(pattern), length_(length), block_(block), first_query_(first_query) {
  pattern.check("BlockSparseLayout");
  EMBER_CHECK(block >= 1, fmt::format("BlockSparseLayout: the block size b must be >= 1, got {}", block));
  EMBER_CHECK(length >= 0 && first_query >= 0 && first_query <= length,
              fmt::format("BlockSparseLayout: need 0 <= first_query <= length, got first_query {}, length {}",
                          first_query, length));
  const std::int64_t n = (length + block - 1) / block;
  row_start_.assign(n + 1, 0);
  for (std::int64_t I = 0; I < n; ++I) {
    if ((I + 1) * block > first_query)  // block-rows before the first query stay empty
      for (std::int64_t J = 0; J <= I; ++J)
        if (block_active(I, J)) columns_.push_back(J);
    row_start_[I + 1] = static_cast<std::int64_t>(columns_.size());
  }
}

bool BlockSparseLayout::block_active(std::int64_t I, std::int64_t J) const {
  const std::int64_t i_end = std::min((I + 1) * block_, length_), j_end = std::min((J + 1) * block_, length_);
  for (std::int64_t i = std::max(I * block_, first_query_); i < i_end; ++i)
    for (std::int64_t j = J * block_; j < j_end; ++j)
      if (pattern_.allowed(i, j)) return true;
  return false;
}

}  // namespace ember
