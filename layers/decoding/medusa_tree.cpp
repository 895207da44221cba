/// \file
/// \brief Medusa's candidate tree: validation and buffers of the tree, top-k candidates, greedy and typical
/// acceptance. The tree and the acceptance rules are small host-side loops over std::vector; the per-position
/// argmax and softmax over the vocabulary are ember ops.
#include "layers/decoding/medusa_tree.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/ops.h"

namespace ember::decoding {

namespace {

using i64 = std::int64_t;
using Path = std::vector<i64>;

/// "[0, 1]"
std::string path_str(const Path& p) { return fmt::format("[{}]", fmt::join(p, ", ")); }

/// The reference's order: shallower paths first, lexicographic within a depth.
bool by_depth_then_lexicographic(const Path& a, const Path& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

/// Throws unless there is a path, every path is non-empty and every index lies in [0, top_k).
void check_indices(const std::vector<Path>& paths, i64 top_k) {
  EMBER_CHECK(top_k >= 1, "medusa_tree: top_k must be >= 1, got " + std::to_string(top_k));
  EMBER_CHECK(!paths.empty(), "medusa_tree: expected at least one path, got none");
  for (const Path& p : paths) {
    EMBER_CHECK(!p.empty(), "medusa_tree: path [] is empty (the root is implicit)");
    for (i64 j : p)
      EMBER_CHECK(j >= 0 && j < top_k, "medusa_tree: path " + path_str(p) + " has index " + std::to_string(j) +
                                           " outside [0, " + std::to_string(top_k) +
                                           ") (top_k = " + std::to_string(top_k) + ")");
  }
}

/// sorted paths -> [N] parent node ids (−1 for the root); throws on a duplicate or a missing parent.
std::vector<i64> parents_of(const std::vector<Path>& sorted) {
  std::map<Path, i64> node_of;
  std::vector<i64> parent{-1};
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const Path& p = sorted[i];
    EMBER_CHECK(!node_of.count(p), "medusa_tree: path " + path_str(p) + " appears twice");
    const Path up(p.begin(), p.end() - 1);
    const auto found = node_of.find(up);
    EMBER_CHECK(up.empty() || found != node_of.end(),
                "medusa_tree: path " + path_str(p) + " has no parent " + path_str(up) + " in the tree");
    parent.push_back(up.empty() ? 0 : found->second);
    node_of[p] = static_cast<i64>(i) + 1;
  }
  return parent;
}

/// The nodes no other node has as parent, in increasing order.
std::vector<i64> leaves_of(const std::vector<i64>& parent) {
  std::vector<bool> has_child(parent.size(), false);
  for (i64 p : parent)
    if (p >= 0) has_child[p] = true;
  std::vector<i64> leaves;
  for (std::size_t i = 0; i < parent.size(); ++i)
    if (!has_child[i]) leaves.push_back(static_cast<i64>(i));
  return leaves;
}

/// [N, N] Bool: row i is true at i and at each of its ancestors.
Tensor ancestor_mask(const std::vector<i64>& parent) {
  const auto N = static_cast<i64>(parent.size());
  std::vector<double> mask(N * N, 0.0);
  for (i64 i = 0; i < N; ++i)
    for (i64 j = i; j >= 0; j = parent[j]) mask[i * N + j] = 1.0;
  return from_vector(mask, {N, N}, DType::Bool);
}

/// [L, D + 1]: the node ids from the root to each leaf, padded with −1.
Tensor retrieve_rows(const std::vector<i64>& parent, const std::vector<i64>& leaves, i64 D) {
  std::vector<i64> rows;
  for (i64 leaf : leaves) {
    Path up;
    for (i64 j = leaf; j >= 0; j = parent[j]) up.push_back(j);
    rows.insert(rows.end(), up.rbegin(), up.rend());
    rows.insert(rows.end(), D + 1 - static_cast<i64>(up.size()), -1);
  }
  return from_vector(rows, {static_cast<i64>(leaves.size()), D + 1});
}

/// Indices 0..V−1 of the k largest of `row`, largest first, lower index first among equals.
std::vector<i64> top_k_of(const std::vector<double>& row, i64 k) {
  std::vector<i64> ids(row.size());
  for (std::size_t v = 0; v < row.size(); ++v) ids[v] = static_cast<i64>(v);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](i64 a, i64 b) { return row[a] != row[b] ? row[a] > row[b] : a < b; });
  ids.resize(k);
  return ids;
}

/// Throws unless candidates is Int64 [L, D + 1] and logits floating [L, D + 1, V].
void check_verification(const char* op, const MedusaTree& tree, const Tensor& candidates, const Tensor& logits) {
  raw::check_defined(op, candidates);
  raw::check_defined(op, logits);
  const i64 L = tree.num_leaves(), C = tree.max_depth() + 1;
  const Shape rows{L, C};
  EMBER_CHECK(candidates.dtype() == DType::Int64 && candidates.shape() == rows && logits.dim() == 3 &&
                  logits.shape()[0] == L && logits.shape()[1] == C && logits.shape()[2] > 0 &&
                  is_floating(logits.dtype()),
              std::string(op) + ": expected Int64 candidates [" + std::to_string(L) + ", " + std::to_string(C) +
                  "] and floating logits [" + std::to_string(L) + ", " + std::to_string(C) + ", V] for a tree of " +
                  std::to_string(L) + " leaves and depth " + std::to_string(C - 1) + ", got " +
                  dtype_name(candidates.dtype()) + " candidates " + shape_str(candidates.shape()) + " and " +
                  dtype_name(logits.dtype()) + " logits " + shape_str(logits.shape()));
}

/// The first row of greatest accept length, or of greatest score among those; row 0 when nothing is accepted.
Acceptance choose(const std::vector<i64>& length, const std::vector<double>& score) {
  Acceptance best;
  for (std::size_t r = 0; r < length.size(); ++r) {
    const bool longer = length[r] > best.accept_length;
    const bool likelier = length[r] == best.accept_length && length[r] > 0 && score[r] > score[best.best_path];
    if (longer || likelier) best = {static_cast<i64>(r), length[r]};
  }
  return best;
}

/// The entropy H(p) = −Σ p log p of one distribution (0 log 0 = 0).
double entropy(const double* p, i64 V) {
  double H = 0.0;
  for (i64 v = 0; v < V; ++v)
    if (p[v] > 0.0) H -= p[v] * std::log(p[v]);
  return H;
}

}  // namespace

MedusaTree::MedusaTree(std::vector<std::vector<std::int64_t>> paths_in, std::int64_t top_k_in)
    : top_k(top_k_in), paths(std::move(paths_in)) {
  check_indices(paths, top_k);
  std::sort(paths.begin(), paths.end(), by_depth_then_lexicographic);
  parent = parents_of(paths);
  leaves = leaves_of(parent);
  attention_mask = ancestor_mask(parent);
  std::vector<i64> depths{0}, indices{0};
  for (const Path& p : paths) {
    const auto delta = static_cast<i64>(p.size());
    depths.push_back(delta);
    indices.push_back(1 + top_k * (delta - 1) + p.back());
  }
  depth = from_vector(depths, {num_nodes()});
  tree_indices = from_vector(indices, {num_nodes()});
  retrieve_indices = retrieve_rows(parent, leaves, max_depth());
}

std::int64_t MedusaTree::row_depth(std::int64_t r) const { return static_cast<i64>(paths[leaves[r] - 1].size()); }

MedusaTree default_medusa_tree() {
  // mc_sim_7b_63 from FasterDecoding/Medusa, medusa/model/medusa_choices.py (commit 11af0aa), in its order; the
  // constructor sorts it.
  return MedusaTree(
      {{0},          {0, 0},    {1},       {0, 1},    {2},       {0, 0, 0}, {1, 0},       {0, 2},    {3},
       {0, 3},       {4},       {0, 4},    {2, 0},    {0, 5},    {0, 0, 1}, {5},          {0, 6},    {6},
       {0, 7},       {0, 1, 0}, {1, 1},    {7},       {0, 8},    {0, 0, 2}, {3, 0},       {0, 9},    {8},
       {9},          {1, 0, 0}, {0, 2, 0}, {1, 2},    {0, 0, 3}, {4, 0},    {2, 1},       {0, 0, 4}, {0, 0, 5},
       {0, 0, 0, 0}, {0, 1, 1}, {0, 0, 6}, {0, 3, 0}, {5, 0},    {1, 3},    {0, 0, 7},    {0, 0, 8}, {0, 0, 9},
       {6, 0},       {0, 4, 0}, {1, 4},    {7, 0},    {0, 1, 2}, {2, 0, 0}, {3, 1},       {2, 2},    {8, 0},
       {0, 5, 0},    {1, 5},    {1, 0, 1}, {0, 2, 1}, {9, 0},    {0, 6, 0}, {0, 0, 0, 1}, {1, 6},    {0, 7, 0}},
      10);
}

MedusaTree chain_tree(std::int64_t depth) {
  EMBER_CHECK(depth >= 1, "chain_tree: depth must be >= 1, got " + std::to_string(depth));
  std::vector<Path> paths;
  for (i64 d = 1; d <= depth; ++d) paths.emplace_back(d, 0);
  return MedusaTree(std::move(paths), 1);
}

Candidates generate_candidates(const MedusaTree& tree, std::int64_t root_token, const Tensor& head_logits) {
  raw::check_defined("generate_candidates", head_logits);
  const i64 D = tree.max_depth(), k = tree.top_k;
  EMBER_CHECK(head_logits.dim() == 2 && head_logits.shape()[0] >= D && head_logits.shape()[1] >= k &&
                  is_floating(head_logits.dtype()),
              "generate_candidates: expected floating head_logits [K, V] with K >= " + std::to_string(D) +
                  " (the tree's depth) and V >= " + std::to_string(k) + " (its top_k), got " +
                  dtype_name(head_logits.dtype()) + " " + shape_str(head_logits.shape()));
  const i64 K = head_logits.shape()[0], V = head_logits.shape()[1];
  EMBER_CHECK(root_token >= 0 && root_token < V, "generate_candidates: root_token " + std::to_string(root_token) +
                                                     " outside [0, " + std::to_string(V) + ") for head_logits " +
                                                     shape_str(head_logits.shape()));
  const std::vector<double> logits = head_logits.to_vector<double>();
  std::vector<i64> top, cand{root_token};
  for (i64 h = 0; h < K; ++h) {
    const std::vector<i64> ids = top_k_of({logits.begin() + h * V, logits.begin() + (h + 1) * V}, k);
    top.insert(top.end(), ids.begin(), ids.end());
  }
  cand.insert(cand.end(), top.begin(), top.end());
  std::vector<i64> nodes, rows;
  for (i64 i : tree.tree_indices.to_vector<i64>()) nodes.push_back(cand[i]);
  for (i64 j : tree.retrieve_indices.to_vector<i64>()) rows.push_back(j >= 0 ? nodes[j] : 0);
  return {from_vector(top, {K, k}), from_vector(cand, {1 + K * k}), from_vector(nodes, {tree.num_nodes()}),
          from_vector(rows, tree.retrieve_indices.shape())};
}

Acceptance greedy_accept(const MedusaTree& tree, const Tensor& candidates, const Tensor& logits) {
  check_verification("greedy_accept", tree, candidates, logits);
  const i64 L = tree.num_leaves(), C = tree.max_depth() + 1;
  const std::vector<i64> x = candidates.to_vector<i64>();
  const std::vector<i64> argmax_at = argmax(logits.detach(), -1).to_vector<i64>();  // [L, C]
  std::vector<i64> length(L, 0);
  for (i64 r = 0; r < L; ++r)
    while (length[r] < tree.row_depth(r) && x[r * C + length[r] + 1] == argmax_at[r * C + length[r]]) ++length[r];
  return choose(length, std::vector<double>(L, 0.0));
}

Acceptance typical_accept(const MedusaTree& tree, const Tensor& candidates, const Tensor& logits, double temperature,
                          double posterior_threshold, double posterior_alpha) {
  check_verification("typical_accept", tree, candidates, logits);
  EMBER_CHECK(temperature > 0.0 && posterior_threshold >= 0.0 && posterior_alpha >= 0.0,
              fmt::format("typical_accept: needs temperature > 0 and posterior_threshold, posterior_alpha >= 0, got "
                          "temperature {}, posterior_threshold {}, posterior_alpha {} (logits {})",
                          temperature, posterior_threshold, posterior_alpha, shape_str(logits.shape())));
  const i64 L = tree.num_leaves(), C = tree.max_depth() + 1, V = logits.shape()[2];
  const std::vector<i64> x = candidates.to_vector<i64>();
  const std::vector<double> p = softmax(logits.detach().to(DType::Float64) / temperature, -1).to_vector<double>();
  std::vector<i64> length(L, 0);
  std::vector<double> log_likelihood(L, 0.0);
  for (i64 r = 0; r < L; ++r) {
    for (i64 d = 1; d <= tree.row_depth(r); ++d) {
      const double* parent = p.data() + (r * C + d - 1) * V;
      const i64 token = x[r * C + d];
      EMBER_CHECK(token >= 0 && token < V, "typical_accept: candidate token " + std::to_string(token) +
                                               " outside [0, " + std::to_string(V) + ") for logits " +
                                               shape_str(logits.shape()));
      const double threshold = std::min(posterior_threshold, posterior_alpha * std::exp(-entropy(parent, V)));
      if (!(parent[token] > threshold)) break;
      ++length[r];
      log_likelihood[r] += std::log(parent[token]);
    }
  }
  return choose(length, log_likelihood);
}

}  // namespace ember::decoding
