/// \file
/// \brief nn::SparseAttention: causal multi-head attention restricted to a Sparse Transformer pattern ("Generating
/// Long Sequences with Sparse Transformers", Child et al. 2019; technique notes §9).
///
/// Query i attends only the keys j with allowed(i, j) (core/block_sparse.h: dense j ≤ i; local i − l < j ≤ i;
/// strided local(l) ∪ {(i − j) mod l = 0}; fixed ⌊j/l⌋ = ⌊i/l⌋ ∪ {j mod l ≥ l − c}), O_i = Σ_j softmax_j(q_i·k_j/√d)
/// v_j over those keys, computed by nn::block_sparse_attention on the b × b blocks that hold an allowed pair. The two
/// strided (or fixed) sub-patterns are merged in every head, so any j ≤ i is reachable within two layers; with
/// l ≈ √T a row has O(√T) keys and attention costs O(T·√T). Projections, heads, RoPE and the KV cache are
/// MultiHeadAttention's; a decoding step attends only the allowed cached keys of the new position, so step equals
/// forward.
#pragma once

#include "core/block_sparse.h"
#include "layers/attention/multi_head_attention.h"

namespace ember::nn {

/// Causal multi-head self-attention over a sparse pattern; printed as "SparseAttention".
class SparseAttention : public MultiHeadAttention {
 public:
  /// False: each token sees only its pattern's keys; chains verify by stepping.
  bool supports_tree() const override { return false; }
  /// MultiHeadAttention's config plus options "pattern" (0 dense, 1 local, 2 strided, 3 fixed; default 2),
  /// "stride" l (default 32), "block" b (default 8) and "summary" c (fixed only, default 8). l = 32 ≈ √1024 suits
  /// the toy context lengths (max_len 1024 by default): a strided row then sees about l + T/l keys. b is small
  /// because a b × b block on a strided diagonal holds only b allowed pairs: with b dividing l the diagonals touch
  /// one block-diagonal in l/b, so that part costs about b/l of dense (the paper's b = 32 pairs with l ≥ 128 on a
  /// GPU); b = 8 keeps it at a quarter while tiles stay GEMM-sized.
  explicit SparseAttention(const MixerConfig& config);
  /// For library users: the pattern and block size given directly (the config's options are not read).
  SparseAttention(const MixerConfig& config, const SparsePattern& pattern, std::int64_t block);

  const SparsePattern pattern;  ///< which keys each query sees
  const std::int64_t block;     ///< b, the block size of the layout

  /// The layout over keys 0..length−1 for the queries at positions first_query..length−1.
  BlockSparseLayout layout(std::int64_t length, std::int64_t first_query = 0) const;

 protected:
  /// q: [B, H, Tq, d], k, v: [B, H, Tk, d] (queries at positions Tk − Tq..Tk − 1) -> [B, H, Tq, d] by
  /// block_sparse_attention.
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) const override;
  std::string extra_repr() const override;
};

}  // namespace ember::nn
