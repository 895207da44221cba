/// \file
/// \brief Medusa's candidate tree (Cai et al. 2024; technique notes §10), independent of any model: the tree
/// buffers, the candidates drawn from the heads' top-k tokens, and greedy and typical acceptance.
///
/// A tree is a list of paths; path (j₁, ..., j_δ) is the node at depth δ whose token is the j_δ-th most likely
/// token of Medusa head δ, below the node (j₁, ..., j_{δ−1}). Node 0 is the root: the base model's next token.
/// Nodes are numbered 1..N−1 in (depth, lexicographic) order of their paths, so every parent precedes its children.
/// The candidates are the flat list `cand = [root, head 1's top-k, head 2's top-k, ...]`, and the node at depth δ
/// with last index j takes `cand[1 + k·(δ − 1) + j]`: Medusa heads ignore the drafted parent, so the tree is a
/// sparse Cartesian product of the heads' choices.
///
/// One forward pass of the base model over all N nodes (each node attending to the prefix, its ancestors and
/// itself, at position prefix_len + depth) verifies every root-to-leaf path at once. A candidate at depth δ is
/// accepted when the base model, at its parent, would emit it:
/// - greedy: x = argmax p(· | parent);
/// - typical: p(x | parent) > min(ε, δ·exp(−H(p(· | parent)))), with p the temperature-scaled softmax and H its
///   entropy.
/// A path's accept length is the number of leading candidates accepted (the cumulative product of the acceptances).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace ember::decoding {

/// A candidate tree and the buffers that verify it in one forward pass (as the reference's
/// `generate_medusa_buffers`). N = number of paths + 1 (the root), L = number of leaves, D = the deepest path.
struct MedusaTree {
  /// The tree of `paths` (any order) over each head's `top_k` tokens. Throws ember::Error naming medusa_tree and
  /// the bad path when the list or a path is empty, an index lies outside [0, top_k), a path appears twice, or a
  /// path's parent (the path without its last index) is missing.
  explicit MedusaTree(std::vector<std::vector<std::int64_t>> paths, std::int64_t top_k = 10);

  std::int64_t top_k;                            ///< k: how many tokens of each head the tree can use
  std::vector<std::vector<std::int64_t>> paths;  ///< sorted by (depth, lexicographic); node i + 1 is paths[i]
  std::vector<std::int64_t> parent;              ///< [N] the parent's node id, −1 for the root
  std::vector<std::int64_t> leaves;              ///< [L] the leaves' node ids in increasing order, one per retrieve row
  Tensor attention_mask;  ///< [N, N] Bool: node i may attend to node j iff j is i or an ancestor of i (root included)
  Tensor depth;           ///< [N] Int64: the depth δ of each node (0 for the root); its position is prefix_len + δ
  Tensor tree_indices;    ///< [N] Int64: the node's index into cand, 1 + k·(δ − 1) + j (0 for the root)
  /// [L, D + 1] Int64: row r lists the node ids from the root to leaf leaves[r], padded with −1. The reference builds
  /// the rows from the last leaf backwards; ascending order changes nothing but which of two rows is reported when
  /// both accept the same nodes.
  Tensor retrieve_indices;

  /// N, the number of nodes including the root.
  std::int64_t num_nodes() const { return static_cast<std::int64_t>(parent.size()); }
  /// L, the number of root-to-leaf paths.
  std::int64_t num_leaves() const { return static_cast<std::int64_t>(leaves.size()); }
  /// D, the depth of the deepest node (the number of Medusa heads the tree needs).
  std::int64_t max_depth() const { return static_cast<std::int64_t>(paths.back().size()); }
  /// The depth of the leaf of retrieve row r: how many candidates row r holds after the root.
  std::int64_t row_depth(std::int64_t r) const;
};

/// The reference's `mc_sim_7b_63` tree (63 paths, 64 nodes, depth 4, top_k = 10): sparse, chosen greedily by
/// expected acceptance from Vicuna-7B's measured head accuracies.
MedusaTree default_medusa_tree();

/// The chain (0), (0, 0), ..., (0, ..., 0) of `depth` nodes below the root: each head's top-1 token only, for
/// recurrent mixers that can verify a single sequence but not a tree. Throws ember::Error for depth < 1.
MedusaTree chain_tree(std::int64_t depth);

/// The candidates of one decoding step.
struct Candidates {
  Tensor head_top_k;   ///< [K, k] Int64: each head's k most likely tokens, most likely first (ties: lower id first)
  Tensor flat;         ///< [1 + K·k] Int64: cand = [root, head 1's top-k, ..., head K's top-k]
  Tensor tree_tokens;  ///< [N] Int64: each node's token, cand[tree_indices], the base model's input for verification
  Tensor paths;        ///< [L, D + 1] Int64: the tokens along each retrieve row, 0 at padded positions
};

/// head_logits: [K, V] (the K Medusa heads at the last position, K ≥ D, V ≥ k) -> the candidates of `tree` below
/// `root_token` (the base model's next token, argmax or sampled). The results are on the CPU. Throws ember::Error
/// naming generate_candidates and the shapes when head_logits does not fit the tree.
Candidates generate_candidates(const MedusaTree& tree, std::int64_t root_token, const Tensor& head_logits);

/// The path verification chose.
struct Acceptance {
  std::int64_t best_path = 0;      ///< the retrieve row whose tokens are kept (0 when nothing is accepted)
  std::int64_t accept_length = 0;  ///< how many of its candidates after the root are accepted (0..D)
};

/// candidates: [L, D + 1] (Candidates::paths), logits: [L, D + 1, V] (the base model's logits at the nodes of each
/// retrieve row) -> the row accepting the most candidates under greedy matching, the first such row on ties. Padded
/// positions are never accepted (the reference compares them too, and can accept a padding token 0 after a short
/// leaf). Throws ember::Error naming greedy_accept and the shapes when they do not fit the tree.
Acceptance greedy_accept(const MedusaTree& tree, const Tensor& candidates, const Tensor& logits);

/// candidates: [L, D + 1], logits: [L, D + 1, V] -> the row accepting the most candidates under typical acceptance
/// (p(x) > min(ε, δ·exp(−H)) for p = softmax(logits / temperature) at the parent), the one of highest likelihood
/// Σ log p(x) over its accepted candidates among those, as the reference's `evaluate_posterior`. ε is
/// posterior_threshold and δ posterior_alpha, with `medusa_generate`'s defaults. H = −Σ p log p exactly (the
/// reference computes −Σ p log(p + 10⁻⁵)). Throws ember::Error naming typical_accept for a temperature ≤ 0, ε or
/// δ < 0, a candidate outside [0, V), or shapes that do not fit the tree.
Acceptance typical_accept(const MedusaTree& tree, const Tensor& candidates, const Tensor& logits, double temperature,
                          double posterior_threshold = 0.09, double posterior_alpha = 0.3);

}  // namespace ember::decoding
