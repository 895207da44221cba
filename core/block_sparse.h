/// \file
/// \brief The causal sparse attention patterns of the Sparse Transformer ("Generating Long Sequences with Sparse
/// Transformers", Child et al. 2019; technique notes §9) and their block-sparse layout.
///
/// Query position i sees key position j when allowed(i, j); every pattern has j ≤ i. With stride l and c summary
/// cells per block of l:
///
///     dense:    j ≤ i
///     local:    i − l < j ≤ i                                           (the previous l positions)
///     strided:  local(l) ∪ {j ≤ i : (i − j) mod l = 0}                 (the two strided heads merged)
///     fixed:    {j ≤ i : ⌊j/l⌋ = ⌊i/l⌋} ∪ {j ≤ i : j mod l ≥ l − c}     (own block ∪ summary cells)
///
/// With l ≈ √T a row of strided or fixed attention has O(√T) keys, so attention costs O(T·√T) instead of O(T²).
/// The layout cuts the key/query plane into b × b blocks and lists, for each query block-row I, the key blocks J
/// holding at least one allowed pair (CSR); a kernel computes scores on those blocks only and masks the pairs
/// inside them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember {

/// The rule of a causal sparse pattern; the numeric codes are the `pattern` option of nn::SparseAttention.
enum class SparseKind {
  Dense = 0,    ///< j ≤ i
  Local = 1,    ///< i − l < j ≤ i
  Strided = 2,  ///< local(l) ∪ {(i − j) mod l = 0}
  Fixed = 3,    ///< same block of l ∪ the last c cells of every block of l
};

/// "dense", "local", "strided" or "fixed".
std::string sparse_kind_name(SparseKind kind);

/// A causal sparse attention pattern: which key positions each query position sees.
struct SparsePattern {
  SparseKind kind = SparseKind::Strided;  ///< the rule
  std::int64_t stride = 32;               ///< l (unused by dense)
  std::int64_t summary = 8;               ///< c, summary cells per block of l (fixed only)

  /// Throws ember::Error naming `op` unless l ≥ 1 and 1 ≤ c ≤ l.
  void check(const std::string& op) const;
  /// True when query position i sees key position j (never for j > i).
  bool allowed(std::int64_t i, std::int64_t j) const {
    if (j < 0 || j > i) return false;
    switch (kind) {
      case SparseKind::Dense: return true;
      case SparseKind::Local: return i - j < stride;
      case SparseKind::Strided: return i - j < stride || (i - j) % stride == 0;
      case SparseKind::Fixed: return j / stride == i / stride || j % stride >= stride - summary;
    }
    return false;
  }
  /// E.g. "strided(l=32)", "fixed(l=32, c=8)", "dense".
  std::string str() const;
};

/// Which b × b blocks of the causal attention plane a pattern touches, over keys 0..T−1 and the queries at
/// positions first_query..T−1 (a KV-cache step has first_query = T − 1).
class BlockSparseLayout {
 public:
  /// Scans every block of block-rows ⌊first_query/b⌋..⌈T/b⌉−1 on or below the diagonal and keeps those with an
  /// allowed pair: at most b² allowed() tests per block, about T²/2 in all (a KV-cache step scans one row), cheap
  /// beside the attention itself at the toy lengths. Throws ember::Error unless b ≥ 1, T ≥ 0, 0 ≤ first_query ≤ T
  /// and the pattern's parameters are valid.
  BlockSparseLayout(const SparsePattern& pattern, std::int64_t length, std::int64_t block,
                    std::int64_t first_query = 0);

  /// The pattern the layout was built from.
  const SparsePattern& pattern() const { return pattern_; }
  /// T, the number of key positions.
  std::int64_t length() const { return length_; }
  /// b, the block size.
  std::int64_t block() const { return block_; }
  /// The position of the first query.
  std::int64_t first_query() const { return first_query_; }
  /// ⌈T/b⌉, the number of block-rows (and block-columns).
  std::int64_t block_rows() const { return static_cast<std::int64_t>(row_start_.size()) - 1; }
  /// Index into columns() of block-row I's first active key block; its last is before row_begin(I + 1).
  std::int64_t row_begin(std::int64_t I) const { return row_start_[I]; }
  /// The active key blocks J of every block-row, in increasing J, row after row (CSR column indices).
  const std::vector<std::int64_t>& columns() const { return columns_; }
  /// The number of active blocks: what a block-sparse kernel computes.
  std::int64_t active_blocks() const { return static_cast<std::int64_t>(columns_.size()); }
  /// True when query position i sees key position j.
  bool allowed(std::int64_t i, std::int64_t j) const { return pattern_.allowed(i, j); }

 private:
  /// True when block (I, J) holds an allowed pair among the layout's queries.
  bool block_active(std::int64_t I, std::int64_t J) const;

  SparsePattern pattern_;
  std::int64_t length_, block_, first_query_;
  std::vector<std::int64_t> row_start_;  ///< CSR row pointers, ⌈T/b⌉ + 1 entries
  std::vector<std::int64_t> columns_;    ///< CSR column indices
};

}  // namespace ember
