/// \file
/// \brief Medusa's candidate tree (technique notes §10) against independent values: the reference's buffers for
/// the paths (0), (1), (0, 0), (0, 1), (1, 0) (oracle 1); for the default mc_sim_7b_63 tree, the mask against the
/// prefix relation of its paths, every retrieve row against a walk down the leaf's path, and the reference's counts
/// (64 nodes, 42 leaves, 10/28/23/2 nodes per depth); the chain tree against its closed form; candidates for
/// hand-set logits; greedy acceptance on hand-set cases and against a naive loop; typical acceptance on hand-set
/// distributions where ε or the entropy term decides, with its threshold computed here, against a naive loop, and
/// with ε → 0; bad input throws ember::Error naming the op.
#include <cmath>
#include <set>
#include <string>

#include "helpers.h"
#include "layers/decoding/medusa_tree.h"

using namespace ember;
using namespace ember::decoding;
using namespace ember::test;
using i64 = std::int64_t;
using Vec = std::vector<double>;
using Ids = std::vector<i64>;
using Paths = std::vector<std::vector<i64>>;

namespace {

/// The tensor's values as Int64 (row-major).
Ids ids(const Tensor& t) { return t.to_vector<i64>(); }

/// Row i of a Bool [N, N] mask as a string of 0s and 1s.
std::string mask_row(const Tensor& mask, i64 i) {
  const i64 N = mask.shape()[1];
  const std::vector<bool> m = mask.to_vector<bool>();
  std::string s;
  for (i64 j = 0; j < N; ++j) s += m[i * N + j] ? '1' : '0';
  return s;
}

/// True when `a` is a prefix of `b` (a = b included).
bool is_prefix(const Ids& a, const Ids& b) { return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin()); }

/// The tree of oracle 1, its paths given out of order.
MedusaTree oracle_tree() { return MedusaTree({{1, 0}, {0}, {0, 1}, {1}, {0, 0}}); }

/// How many candidates after the root row r of retrieve_indices holds (its entries >= 0, minus the root).
i64 row_len(const MedusaTree& tree, i64 r) {
  const Ids R = ids(tree.retrieve_indices);
  const i64 C = tree.retrieve_indices.shape()[1];
  i64 n = 0;
  for (i64 c = 1; c < C; ++c) n += R[r * C + c] >= 0;
  return n;
}

/// Logits [L, C, V] that are log p for the given distributions p[r][c] (p = 0 becomes −1e4, whose softmax weight
/// underflows to 0).
Tensor log_probs(const std::vector<std::vector<Vec>>& p) {
  const auto L = static_cast<i64>(p.size()), C = static_cast<i64>(p[0].size()), V = static_cast<i64>(p[0][0].size());
  Vec out;
  for (const auto& row : p)
    for (const Vec& dist : row)
      for (double q : dist) out.push_back(q > 0.0 ? std::log(q) : -1e4);
  return from_vector(out, {L, C, V}, DType::Float64);
}

/// Logits [L, C, V] whose argmax at (r, c) is top[r][c] (logit 1 there, 0 elsewhere).
Tensor logits_with_argmax(const std::vector<Ids>& top, i64 V) {
  Vec out;
  for (const Ids& row : top)
    for (i64 t : row)
      for (i64 v = 0; v < V; ++v) out.push_back(v == t ? 1.0 : 0.0);
  return from_vector(out, {static_cast<i64>(top.size()), static_cast<i64>(top[0].size()), V});
}

/// Candidates [L, C] from rows.
Tensor candidates_of(const std::vector<Ids>& rows) {
  Ids flat;
  for (const Ids& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return from_vector(flat, {static_cast<i64>(rows.size()), static_cast<i64>(rows[0].size())});
}

/// The per-row accept lengths and log likelihoods, and the choice, by the rule written out directly: softmax in
/// double, H = −Σ p ln p, accept while p(x) > min(ε, δ e^{−H}); the longest row, then the likeliest, then the first.
Acceptance naive_typical(const MedusaTree& tree, const Tensor& cand, const Tensor& logits, double T, double eps,
                         double delta) {
  const i64 L = logits.shape()[0], C = logits.shape()[1], V = logits.shape()[2];
  const Vec z = logits.to_vector<double>();
  const Ids x = ids(cand);
  std::vector<i64> len(L, 0);
  Vec ll(L, 0.0);
  for (i64 r = 0; r < L; ++r) {
    for (i64 c = 1; c <= row_len(tree, r); ++c) {
      const double* zz = z.data() + (r * C + c - 1) * V;
      double m = -INFINITY, s = 0.0, H = 0.0;
      for (i64 v = 0; v < V; ++v) m = std::max(m, zz[v] / T);
      for (i64 v = 0; v < V; ++v) s += std::exp(zz[v] / T - m);
      for (i64 v = 0; v < V; ++v) {
        const double q = std::exp(zz[v] / T - m) / s;
        if (q > 0.0) H -= q * std::log(q);
      }
      const double q = std::exp(zz[x[r * C + c]] / T - m) / s;
      if (!(q > std::min(eps, delta * std::exp(-H)))) break;
      ++len[r];
      ll[r] += std::log(q);
    }
  }
  Acceptance best;
  for (i64 r = 0; r < L; ++r)
    if (len[r] > best.accept_length || (len[r] > 0 && len[r] == best.accept_length && ll[r] > ll[best.best_path]))
      best = {r, len[r]};
  return best;
}

/// The greedy choice written out directly: the first row with the most leading candidates equal to the argmax
/// (by a loop over V) at their parent.
Acceptance naive_greedy(const MedusaTree& tree, const Tensor& cand, const Tensor& logits) {
  const i64 L = logits.shape()[0], C = logits.shape()[1], V = logits.shape()[2];
  const Vec z = logits.to_vector<double>();
  const Ids x = ids(cand);
  Acceptance best;
  for (i64 r = 0; r < L; ++r) {
    i64 len = 0;
    for (i64 c = 1; c <= row_len(tree, r); ++c) {
      i64 top = 0;
      for (i64 v = 1; v < V; ++v)
        if (z[(r * C + c - 1) * V + v] > z[(r * C + c - 1) * V + top]) top = v;
      if (x[r * C + c] != top) break;
      ++len;
    }
    if (len > best.accept_length) best = {r, len};
  }
  return best;
}

}  // namespace

TEST_CASE("medusa_tree: oracle 1, the reference buffers for the paths 0, 1, 00, 01, 10") {
  const MedusaTree tree = oracle_tree();
  CHECK(tree.num_nodes() == 6);
  CHECK(tree.max_depth() == 2);
  CHECK(tree.paths == Paths{{0}, {1}, {0, 0}, {0, 1}, {1, 0}});
  const std::vector<std::string> rows = {"100000", "110000", "101000", "110100", "110010", "101001"};
  CHECK(tree.attention_mask.dtype() == DType::Bool);
  REQUIRE(tree.attention_mask.shape() == Shape{6, 6});
  for (i64 i = 0; i < 6; ++i) CHECK(mask_row(tree.attention_mask, i) == rows[i]);
  CHECK(ids(tree.depth) == Ids{0, 1, 1, 2, 2, 2});
  CHECK(ids(tree.tree_indices) == Ids{0, 1, 2, 11, 12, 11});
  CHECK(tree.retrieve_indices.shape() == Shape{3, 3});
  CHECK(ids(tree.retrieve_indices) == Ids{0, 1, 3, 0, 1, 4, 0, 2, 5});
  CHECK(tree.parent == Ids{-1, 0, 0, 1, 1, 2});
  CHECK(tree.leaves == Ids{3, 4, 5});
}

TEST_CASE("medusa_tree: leaves at different depths pad their retrieve rows with -1") {
  const MedusaTree tree({{0, 0, 0}, {1}, {0}, {0, 0}});
  CHECK(tree.paths == Paths{{0}, {1}, {0, 0}, {0, 0, 0}});
  CHECK(ids(tree.retrieve_indices) == Ids{0, 2, -1, -1, 0, 1, 3, 4});
  CHECK(tree.row_depth(0) == 1);
  CHECK(tree.row_depth(1) == 3);
  CHECK(ids(tree.tree_indices) == Ids{0, 1, 2, 11, 21});
  CHECK(ids(tree.depth) == Ids{0, 1, 1, 2, 3});
}

TEST_CASE("medusa_tree: the default tree is mc_sim_7b_63, its mask the prefix relation, its rows root-to-leaf paths") {
  const MedusaTree tree = default_medusa_tree();
  const i64 N = tree.num_nodes();
  CHECK(N == 64);
  CHECK(tree.top_k == 10);
  CHECK(tree.max_depth() == 4);
  std::vector<i64> per_depth(5, 0);
  for (const auto& p : tree.paths) ++per_depth[p.size()];
  CHECK(per_depth == Ids{0, 10, 28, 23, 2});
  for (i64 i = 1; i + 1 < N; ++i) {  // (depth, lexicographic) order
    const Ids &a = tree.paths[i - 1], &b = tree.paths[i];
    CHECK((a.size() < b.size() || (a.size() == b.size() && a < b)));
  }
  // The mask: node i sees node j iff j's path is a prefix of i's (the root's path is empty).
  const std::vector<bool> mask = tree.attention_mask.to_vector<bool>();
  auto path_of = [&](i64 i) { return i == 0 ? Ids{} : tree.paths[i - 1]; };
  i64 wrong = 0;
  for (i64 i = 0; i < N; ++i)
    for (i64 j = 0; j < N; ++j) wrong += mask[i * N + j] != is_prefix(path_of(j), path_of(i));
  CHECK(wrong == 0);
  // The leaves: the paths that prefix no other path, 42 of them, one retrieve row each.
  std::set<Ids> leaf_paths;
  for (i64 i = 1; i < N; ++i) {
    bool inner = false;
    for (i64 j = 1; j < N; ++j) inner = inner || (j != i && is_prefix(path_of(i), path_of(j)));
    if (!inner) leaf_paths.insert(path_of(i));
  }
  CHECK(leaf_paths.size() == 42);
  REQUIRE(tree.retrieve_indices.shape() == Shape{42, 5});
  const Ids R = ids(tree.retrieve_indices), depth = ids(tree.depth), ti = ids(tree.tree_indices);
  std::set<Ids> rows_reached;
  for (i64 r = 0; r < 42; ++r) {
    CHECK(R[r * 5] == 0);
    const i64 leaf = R[r * 5 + row_len(tree, r)];
    const Ids leaf_path = path_of(leaf);
    rows_reached.insert(leaf_path);
    for (i64 c = 1; c < 5; ++c) {
      CAPTURE(r);
      CAPTURE(c);
      if (c <= static_cast<i64>(leaf_path.size()))
        CHECK(path_of(R[r * 5 + c]) == Ids(leaf_path.begin(), leaf_path.begin() + c));
      else
        CHECK(R[r * 5 + c] == -1);
    }
  }
  CHECK(rows_reached == leaf_paths);
  for (i64 i = 1; i < N; ++i) {
    CHECK(depth[i] == static_cast<i64>(path_of(i).size()));
    CHECK(ti[i] == 1 + 10 * (depth[i] - 1) + path_of(i).back());
  }
}

TEST_CASE("medusa_tree: chain_tree(3) has a lower-triangular mask and one row 0 1 2 3") {
  const MedusaTree tree = chain_tree(3);
  CHECK(tree.paths == Paths{{0}, {0, 0}, {0, 0, 0}});
  CHECK(max_abs_diff(tree.attention_mask.to(DType::Float32), tril(ones({4, 4}))) == 0.0);
  CHECK(ids(tree.depth) == Ids{0, 1, 2, 3});
  CHECK(ids(tree.tree_indices) == Ids{0, 1, 2, 3});
  CHECK(ids(tree.retrieve_indices) == Ids{0, 1, 2, 3});
}

TEST_CASE("medusa_tree: generate_candidates for hand-set logits, ties to the lower token id") {
  const MedusaTree tree({{1, 0}, {0}, {0, 1}, {1}, {0, 0}}, 3);
  // Head 1's top 3: 3 (3.0), 1 (2.0), 4 (0.5); head 2's: 4, then 0 and 1 tied at 1.0; head 3 is unused by the tree.
  const Tensor logits = tensor({{0.1, 2.0, -1.0, 3.0, 0.5}, {1.0, 1.0, 0.0, -2.0, 5.0}, {0.0, 0.0, 0.0, 9.0, 0.0}});
  const Candidates c = generate_candidates(tree, 2, logits);
  CHECK(c.head_top_k.shape() == Shape{3, 3});
  CHECK(ids(c.head_top_k) == Ids{3, 1, 4, 4, 0, 1, 3, 0, 1});
  CHECK(ids(c.flat) == Ids{2, 3, 1, 4, 4, 0, 1, 3, 0, 1});
  // Nodes (0), (1), (0, 0), (0, 1), (1, 0) take cand[1], cand[2], cand[4], cand[5], cand[4].
  CHECK(ids(c.tree_tokens) == Ids{2, 3, 1, 4, 0, 4});
  CHECK(c.paths.shape() == Shape{3, 3});
  CHECK(ids(c.paths) == Ids{2, 3, 4, 2, 3, 0, 2, 1, 4});

  const MedusaTree uneven({{0}, {1}, {0, 0}}, 3);  // rows [0, 2, −1] and [0, 1, 3]: padding reads 0
  CHECK(ids(generate_candidates(uneven, 2, logits).paths) == Ids{2, 1, 0, 2, 3, 4});
}

TEST_CASE("medusa_tree: greedy_accept on hand-set cases") {
  const MedusaTree tree = oracle_tree();  // rows [0, 1, 3], [0, 1, 4], [0, 2, 5]
  const i64 V = 4;
  const Tensor cand = candidates_of({{2, 3, 1}, {2, 3, 0}, {2, 1, 3}});
  SUBCASE("the middle row accepts both of its candidates") {
    const Acceptance a = greedy_accept(tree, cand, logits_with_argmax({{3, 2, 0}, {3, 0, 0}, {0, 0, 0}}, V));
    CHECK(a.best_path == 1);
    CHECK(a.accept_length == 2);
  }
  SUBCASE("every first candidate rejected gives row 0 and length 0") {
    const Acceptance a = greedy_accept(tree, cand, logits_with_argmax({{0, 1, 1}, {0, 0, 0}, {2, 3, 3}}, V));
    CHECK(a.best_path == 0);
    CHECK(a.accept_length == 0);
  }
  SUBCASE("rows 1 and 2 both accept two candidates and the first of them wins") {
    const Acceptance a = greedy_accept(tree, cand, logits_with_argmax({{3, 0, 0}, {3, 0, 0}, {1, 3, 0}}, V));
    CHECK(a.best_path == 1);
    CHECK(a.accept_length == 2);
  }
  SUBCASE("a padded position is never accepted, even when the base model predicts token 0 there") {
    const MedusaTree uneven({{0}, {1}, {0, 0}});  // rows [0, 2, −1] and [0, 1, 3]
    const Tensor c = candidates_of({{2, 1, 0}, {2, 3, 1}});
    const Acceptance a = greedy_accept(uneven, c, logits_with_argmax({{1, 0, 0}, {0, 0, 0}}, V));
    CHECK(a.best_path == 0);
    CHECK(a.accept_length == 1);
  }
}

TEST_CASE("medusa_tree: greedy_accept on the default tree equals a naive loop for random logits") {
  const MedusaTree tree = default_medusa_tree();
  const i64 L = tree.num_leaves(), C = tree.max_depth() + 1, V = 3;  // small V so that many candidates match
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    CAPTURE(seed);
    Generator gen(seed);
    const Tensor logits = randn({L, C, V}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
    const Tensor cand = randint(0, V, {L, C}, DType::Int64, Device::cpu(), &gen);
    const Acceptance got = greedy_accept(tree, cand, logits), want = naive_greedy(tree, cand, logits);
    CHECK(got.best_path == want.best_path);
    CHECK(got.accept_length == want.accept_length);
  }
}

TEST_CASE("medusa_tree: typical_accept where eps decides in a peaked and the entropy term in a flat distribution") {
  const MedusaTree tree = oracle_tree();
  const i64 V = 20;
  Vec peaked(V, 0.0), flat(V, 1.0 / V);
  peaked[0] = 0.8, peaked[1] = 0.1, peaked[2] = 0.1;
  // Thresholds min(ε, δ e^{−H}) with ε = 0.09, δ = 0.3: the peaked one's δ e^{−H} = 0.158 exceeds ε, so p = 0.1 is
  // accepted by ε; the flat one's δ e^{−H} = δ/20 = 0.015 is below ε, so p = 0.05 < ε is accepted by it.
  double H = 0.0;
  for (double q : peaked)
    if (q > 0) H -= q * std::log(q);
  CHECK(std::min(0.09, 0.3 * std::exp(-H)) == 0.09);
  CHECK(0.3 * std::exp(-H) > 0.1);
  CHECK(std::min(0.09, 0.3 * std::exp(-std::log(20.0))) == doctest::Approx(0.015));
  const Tensor logits = log_probs({{peaked, flat, flat}, {peaked, peaked, flat}, {peaked, flat, flat}});
  // Row 0: 1 (p 0.1) then 7 (p 0.05): both accepted. Row 1: 1 then 3 (p 0): one. Row 2: 3 (p 0): none.
  const Tensor cand = candidates_of({{0, 1, 7}, {0, 1, 3}, {0, 3, 0}});
  const Acceptance a = typical_accept(tree, cand, logits, 1.0);
  CHECK(a.best_path == 0);
  CHECK(a.accept_length == 2);
  const Acceptance n = naive_typical(tree, cand, logits, 1.0, 0.09, 0.3);
  CHECK(n.best_path == 0);
  CHECK(n.accept_length == 2);
  // ε = 0.12 rejects the peaked root's p = 0.1 in every row. δ = 1.2 lifts the flat threshold to 1.2/20 = 0.06 > 0.05,
  // so rows 0 and 1 both stop after one candidate of equal likelihood and the first wins.
  CHECK(typical_accept(tree, cand, logits, 1.0, 0.12, 0.3).accept_length == 0);
  const Acceptance high_delta = typical_accept(tree, cand, logits, 1.0, 0.09, 1.2);
  CHECK(high_delta.best_path == 0);
  CHECK(high_delta.accept_length == 1);
}

TEST_CASE("medusa_tree: typical_accept picks the likeliest of the longest rows, row 0 when none is accepted") {
  const MedusaTree tree = oracle_tree();
  const Vec root = {0.5, 0.3, 0.15, 0.05}, child = {0.1, 0.2, 0.6, 0.1};
  const Tensor logits = log_probs({{root, child, child}, {root, child, child}, {root, child, child}});
  // Rows 0 and 1 accept 2 candidates (thresholds 0.09: p(1) = 0.3, then p(3) = 0.1 or p(2) = 0.6); row 1 is likelier.
  // Row 2's first candidate 3 has p = 0.05 < 0.09.
  const Acceptance a = typical_accept(tree, candidates_of({{0, 1, 3}, {0, 1, 2}, {0, 3, 0}}), logits, 1.0);
  CHECK(a.best_path == 1);
  CHECK(a.accept_length == 2);
  const Acceptance none = typical_accept(tree, candidates_of({{0, 3, 2}, {0, 3, 2}, {0, 3, 2}}), logits, 1.0);
  CHECK(none.best_path == 0);
  CHECK(none.accept_length == 0);
}

TEST_CASE("medusa_tree: typical_accept with eps near 0 accepts every candidate of probability above 0") {
  const MedusaTree tree = default_medusa_tree();
  const i64 L = tree.num_leaves(), C = tree.max_depth() + 1, V = 5;
  for (std::uint64_t seed = 0; seed < 10; ++seed) {
    CAPTURE(seed);
    Generator gen(seed);
    // Token 0 has probability 0 everywhere; the others are positive.
    const Tensor logits = masked_fill(randn({L, C, V}, DType::Float64, Device::cpu(), 0.0, 2.0, &gen),
                                      eq(arange(V), scalar_tensor(0, DType::Int64)), -1e4);
    const Tensor cand = randint(0, V, {L, C}, DType::Int64, Device::cpu(), &gen);
    const Acceptance got = typical_accept(tree, cand, logits, 1.0, 1e-12, 0.3);
    // The expectation without any threshold: leading candidates other than token 0, likeliest of the longest.
    const Ids x = ids(cand);
    i64 longest = 0;
    for (i64 r = 0; r < L; ++r) {
      i64 len = 0;
      while (len < row_len(tree, r) && x[r * C + len + 1] != 0) ++len;
      longest = std::max(longest, len);
    }
    CHECK(got.accept_length == longest);
    const Acceptance want = naive_typical(tree, cand, logits, 1.0, 1e-12, 0.3);
    CHECK(got.best_path == want.best_path);
    CHECK(got.accept_length == want.accept_length);
  }
}

TEST_CASE("medusa_tree: typical_accept at temperatures 0.5 and 2 equals a naive loop on the default tree") {
  const MedusaTree tree = default_medusa_tree();
  const i64 L = tree.num_leaves(), C = tree.max_depth() + 1, V = 6;
  for (double T : {0.5, 2.0})
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      CAPTURE(T);
      CAPTURE(seed);
      Generator gen(seed);
      const Tensor logits = randn({L, C, V}, DType::Float32, Device::cpu(), 0.0, 2.0, &gen);
      const Tensor cand = randint(0, V, {L, C}, DType::Int64, Device::cpu(), &gen);
      const Acceptance got = typical_accept(tree, cand, logits, T),
                       want = naive_typical(tree, cand, logits, T, 0.09, 0.3);
      CHECK(got.best_path == want.best_path);
      CHECK(got.accept_length == want.accept_length);
    }
}

TEST_CASE("medusa_tree: bad trees throw ember::Error naming medusa_tree and the path") {
  CHECK_THROWS_EMBER(MedusaTree({}), "medusa_tree: expected at least one path");
  CHECK_THROWS_EMBER(MedusaTree(Paths{{0}, {}}), "medusa_tree: path [] is empty");
  CHECK_THROWS_EMBER(MedusaTree({{0}, {0, 10}}), "medusa_tree: path [0, 10] has index 10 outside [0, 10)");
  CHECK_THROWS_EMBER(MedusaTree(Paths{{-1}}), "medusa_tree: path [-1] has index -1");
  CHECK_THROWS_EMBER(MedusaTree({{0}, {1}, {0}}), "medusa_tree: path [0] appears twice");
  CHECK_THROWS_EMBER(MedusaTree({{0}, {1, 2}}), "medusa_tree: path [1, 2] has no parent [1]");
  CHECK_THROWS_EMBER(MedusaTree({{0}}, 0), "medusa_tree: top_k must be >= 1");
  CHECK_THROWS_EMBER(chain_tree(0), "chain_tree: depth must be >= 1");
}

TEST_CASE("medusa_tree: bad candidates and verification inputs throw ember::Error naming the op and the shapes") {
  const MedusaTree tree = oracle_tree();  // depth 2, top_k 10, 3 leaves
  CHECK_THROWS_EMBER(generate_candidates(tree, 0, zeros({1, 20})),
                     "generate_candidates: expected floating "
                     "head_logits [K, V] with K >= 2");
  CHECK_THROWS_EMBER(generate_candidates(tree, 0, zeros({2, 5})), "V >= 10 (its top_k), got float32 [2, 5]");
  CHECK_THROWS_EMBER(generate_candidates(tree, 0, zeros({2, 20}, DType::Int64)), "got int64 [2, 20]");
  CHECK_THROWS_EMBER(generate_candidates(tree, 20, zeros({2, 20})), "generate_candidates: root_token 20 outside");
  const Tensor cand = zeros({3, 3}, DType::Int64), logits = zeros({3, 3, 4});
  CHECK_THROWS_EMBER(greedy_accept(tree, zeros({3, 3}), logits), "greedy_accept: expected Int64 candidates [3, 3]");
  CHECK_THROWS_EMBER(greedy_accept(tree, cand, zeros({2, 3, 4})), "logits [2, 3, 4]");
  CHECK_THROWS_EMBER(typical_accept(tree, cand, zeros({3, 3}), 1.0), "typical_accept: expected Int64");
  CHECK_THROWS_EMBER(typical_accept(tree, cand, logits, 0.0), "typical_accept: needs temperature > 0");
  CHECK_THROWS_EMBER(typical_accept(tree, cand, logits, 1.0, -0.1), "typical_accept: needs temperature > 0");
  CHECK_THROWS_EMBER(typical_accept(tree, from_vector(Ids{0, 4, 0, 0, 0, 0, 0, 0, 0}, {3, 3}), logits, 1.0),
                     "typical_accept: candidate token 4 outside [0, 4)");
}
