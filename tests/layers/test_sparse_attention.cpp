/// \file
/// \brief Sparse Transformer attention (technique notes §9): the patterns against sets enumerated from their
/// definitions, the block layout against a brute-force scan (and its T·√T growth), block_sparse_attention against
/// dense attention under the same element mask (naive masked-softmax loops for outputs, autograd's dense ops for q,
/// k, v gradients, f32 and f64, T off the block, Tq < Tk), NaN-poisoned inactive blocks, the n = 64, l = 8 oracle,
/// and the SparseAttention mixer (masked loops through its projections, KV-cache step, causality, Float64
/// gradcheck, bad options).
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/gradcheck.h"
#include "core/block_sparse.h"
#include "layer_helpers.h"
#include "layers/attention/sparse_attention.h"
#include "layers/functional.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;
using ref::heads;
using ref::lin;
using ref::unheads;
using i64 = std::int64_t;

namespace {

/// mask[i][j] = 1 when query position i sees key position j.
using Mask = std::vector<std::vector<char>>;

/// The pattern's mask over positions 0..T−1, enumerated as the union of the paper's sets.
Mask reference_mask(const SparsePattern& p, i64 T) {
  Mask m(T, std::vector<char>(T, 0));
  const i64 l = p.stride, c = p.summary;
  for (i64 i = 0; i < T; ++i) {
    auto& row = m[i];
    switch (p.kind) {
      case SparseKind::Dense:
        for (i64 j = 0; j <= i; ++j) row[j] = 1;
        break;
      case SparseKind::Local:
        for (i64 j = std::max<i64>(0, i - l + 1); j <= i; ++j) row[j] = 1;
        break;
      case SparseKind::Strided:
        for (i64 j = std::max<i64>(0, i - l + 1); j <= i; ++j) row[j] = 1;  // the previous l positions
        for (i64 j = i; j >= 0; j -= l) row[j] = 1;                         // every l-th position back
        break;
      case SparseKind::Fixed:
        for (i64 j = (i / l) * l; j <= i; ++j) row[j] = 1;  // own block of l
        for (i64 s = 0; s <= i; s += l)                     // the last c cells of every block so far
          for (i64 j = s + l - c; j < s + l && j <= i; ++j) row[j] = 1;
        break;
    }
  }
  return m;
}

/// Masked softmax attention with loops: the query of row r sits at position Tk − Tq + r and takes
/// softmax(q·k/√d) over the keys its mask row allows. q: [BH, Tq, d], k, v: [BH, Tk, d].
Vec masked_attention(const Vec& q, const Vec& k, const Vec& v, const Mask& mask, i64 BH, i64 Tq, i64 Tk, i64 d) {
  Vec out(BH * Tq * d, 0.0);
  const double s = 1.0 / std::sqrt(static_cast<double>(d));
  for (i64 bh = 0; bh < BH; ++bh)
    for (i64 r = 0; r < Tq; ++r) {
      const auto& allow = mask[Tk - Tq + r];
      std::vector<double> w(Tk, 0.0);
      double mx = -std::numeric_limits<double>::infinity(), z = 0.0;
      for (i64 j = 0; j < Tk; ++j) {
        if (!allow[j]) continue;
        double dot = 0.0;
        for (i64 c = 0; c < d; ++c) dot += q[(bh * Tq + r) * d + c] * k[(bh * Tk + j) * d + c];
        w[j] = s * dot;
        mx = std::max(mx, w[j]);
      }
      for (i64 j = 0; j < Tk; ++j) z += allow[j] ? std::exp(w[j] - mx) : 0.0;
      for (i64 j = 0; j < Tk; ++j)
        if (allow[j])
          for (i64 c = 0; c < d; ++c) out[(bh * Tq + r) * d + c] += std::exp(w[j] - mx) / z * v[(bh * Tk + j) * d + c];
    }
  return out;
}

/// Dense attention through autograd's ops with an additive mask (−1e30 on hidden pairs): softmax(q kᵀ/√d + M) v.
Tensor dense_masked(const Tensor& q, const Tensor& k, const Tensor& v, const Mask& mask) {
  const i64 Tq = q.shape()[2], Tk = k.shape()[2];
  Vec M(Tq * Tk);
  for (i64 r = 0; r < Tq; ++r)
    for (i64 j = 0; j < Tk; ++j) M[r * Tk + j] = mask[Tk - Tq + r][j] ? 0.0 : -1e30;
  const double s = 1.0 / std::sqrt(static_cast<double>(q.shape()[3]));
  const Tensor scores = add(matmul(q, transpose(k, 2, 3)) * s, from_vector(M, {Tq, Tk}, q.dtype()));
  return matmul(softmax(scores, 3), v);
}

/// {out, dq, dk, dv} of loss = sum(out ⊙ w) through fn(q, k, v).
template <class F>
std::vector<Tensor> run(F&& fn, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w) {
  const Tensor lq = leaf_of(q), lk = leaf_of(k), lv = leaf_of(v);
  const Tensor out = fn(lq, lk, lv);
  sum(mul(out, w)).backward();
  return {out.detach(), lq.grad(), lk.grad(), lv.grad()};
}

/// A pattern and the block size of its layout.
struct Case {
  SparsePattern pattern;
  i64 block;
};

/// Every kind with parameters that do and do not divide the block size.
const std::vector<Case> kCases = {
    {{SparseKind::Dense, 1, 1}, 8},   {{SparseKind::Local, 6, 1}, 4},   {{SparseKind::Local, 3, 1}, 8},
    {{SparseKind::Strided, 6, 1}, 4}, {{SparseKind::Strided, 8, 1}, 4}, {{SparseKind::Strided, 5, 1}, 3},
    {{SparseKind::Fixed, 8, 2}, 4},   {{SparseKind::Fixed, 6, 3}, 4},   {{SparseKind::Fixed, 5, 5}, 2},
    {{SparseKind::Strided, 4, 1}, 1}, {{SparseKind::Fixed, 7, 1}, 64},
};

/// The set of active blocks (I, J) of the queries from first_query, found by scanning every element.
std::vector<std::pair<i64, i64>> brute_force_blocks(const Mask& mask, i64 T, i64 b, i64 first_query) {
  const i64 n = (T + b - 1) / b;
  std::vector<char> active(n * n, 0);
  for (i64 i = first_query; i < T; ++i)
    for (i64 j = 0; j < T; ++j)
      if (mask[i][j]) active[(i / b) * n + j / b] = 1;
  std::vector<std::pair<i64, i64>> out;
  for (i64 I = 0; I < n; ++I)
    for (i64 J = 0; J < n; ++J)
      if (active[I * n + J]) out.emplace_back(I, J);
  return out;
}

/// The layout's blocks as (I, J) pairs, read from its CSR arrays.
std::vector<std::pair<i64, i64>> layout_blocks(const BlockSparseLayout& L) {
  std::vector<std::pair<i64, i64>> out;
  for (i64 I = 0; I < L.block_rows(); ++I)
    for (i64 p = L.row_begin(I); p < L.row_begin(I + 1); ++p) out.emplace_back(I, L.columns()[p]);
  return out;
}

/// The number of active blocks of strided(l) over T positions in blocks of b.
i64 strided_blocks(i64 T, i64 l, i64 b) { return BlockSparseLayout({SparseKind::Strided, l, 1}, T, b).active_blocks(); }

nn::MixerConfig config(i64 d_model, i64 heads, double pattern, double stride, double block, double summary = 1,
                       bool rope = false) {
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = heads;
  c.max_len = 64;
  c.rope = rope;
  c.options = {{"pattern", pattern}, {"stride", stride}, {"block", block}, {"summary", summary}};
  return c;
}



/// The SparseAttention layer with loops: projections, masked softmax per head (reference_mask), W_o.
Vec reference_layer(const nn::SparseAttention& m, const Vec& x, i64 B, i64 T) {
  const i64 H = m.n_heads, d = m.head_dim, D = H * d;
  const Vec q = heads(lin(m.q_proj, x, D), B, T, H, d), k = heads(lin(m.k_proj, x, D), B, T, H, d),
            v = heads(lin(m.v_proj, x, D), B, T, H, d);
  const Vec o = masked_attention(q, k, v, reference_mask(m.pattern, T), B * H, T, T, d);
  return lin(m.o_proj, unheads(o, B, T, H, d), D);
}

}  // namespace

TEST_CASE("SparsePattern: allowed(i, j) equals the union of the paper's sets, enumerated") {
  for (const Case& cs : kCases) {
    CAPTURE(cs.pattern.str());
    const i64 T = 41;
    const Mask m = reference_mask(cs.pattern, T);
    for (i64 i = 0; i < T; ++i)
      for (i64 j = 0; j < T; ++j) {
        CAPTURE(i);
        CAPTURE(j);
        REQUIRE(cs.pattern.allowed(i, j) == static_cast<bool>(m[i][j]));
      }
  }
}

TEST_CASE("BlockSparseLayout: the active blocks equal a brute-force scan over elements, for every first query") {
  for (const Case& cs : kCases)
    for (i64 T : {1, 13, 37, 64})
      for (i64 first : {i64{0}, T / 2, T - 1}) {
        CAPTURE(cs.pattern.str());
        CAPTURE(cs.block);
        CAPTURE(T);
        CAPTURE(first);
        const BlockSparseLayout L(cs.pattern, T, cs.block, first);
        const auto want = brute_force_blocks(reference_mask(cs.pattern, T), T, cs.block, first);
        CHECK(layout_blocks(L) == want);
        CHECK(L.active_blocks() == static_cast<i64>(want.size()));
        CHECK(L.block_rows() == (T + cs.block - 1) / cs.block);
      }
}

TEST_CASE("BlockSparseLayout: strided with l = sqrt(T) grows like T sqrt(T), dense like T squared") {
  // b = 8 divides l: the strided diagonals touch one block-diagonal in l/b, so blocks ≈ (T/b)(l/b + T/(2l)).
  const i64 b = 8;
  const i64 small = strided_blocks(1024, 32, b), large = strided_blocks(4096, 64, b);
  const auto brute = brute_force_blocks(reference_mask({SparseKind::Strided, 32, 1}, 1024), 1024, b, 0);
  CHECK(small == static_cast<i64>(brute.size()));
  const double ratio = static_cast<double>(large) / static_cast<double>(small);
  CHECK(ratio > 7.5);
  CHECK(ratio < 8.5);
  const i64 dense_small = BlockSparseLayout({SparseKind::Dense, 1, 1}, 1024, b).active_blocks();
  const i64 dense_large = BlockSparseLayout({SparseKind::Dense, 1, 1}, 4096, b).active_blocks();
  CHECK(dense_small == 128 * 129 / 2);  // every block on or below the diagonal
  CHECK(static_cast<double>(dense_large) / static_cast<double>(dense_small) > 15.5);
  CHECK(large < dense_large / 5);
}

TEST_CASE("Sparse patterns, n = 64 and l = 8: strided sees at most 15 keys, fixed (c = 2) at most 22, two hops cover") {
  const i64 n = 64, l = 8;
  auto max_keys = [&](const SparsePattern& p) {
    i64 most = 0;
    for (i64 i = 0; i < n; ++i) {
      i64 keys = 0;
      for (i64 j = 0; j < n; ++j) keys += p.allowed(i, j);
      most = std::max(most, keys);
    }
    return most;
  };
  const SparsePattern strided{SparseKind::Strided, l, 1}, fixed{SparseKind::Fixed, l, 2};
  CHECK(max_keys(strided) == 15);
  CHECK(max_keys(fixed) == 22);
  // Two layers: reach = M(A²)·M(A¹) OR the single patterns, with A¹ the local (own block) part and A² the strided
  // (summary) part, each written from its definition; the merged pattern must be their union.
  auto A1_strided = [&](i64 i, i64 j) { return j <= i && i - j < l; };
  auto A2_strided = [&](i64 i, i64 j) { return j <= i && (i - j) % l == 0; };
  auto A1_fixed = [&](i64 i, i64 j) { return j <= i && j / l == i / l; };
  auto A2_fixed = [&](i64 i, i64 j) { return j <= i && j % l >= l - 2; };
  auto covers = [&](const SparsePattern& p, auto A1, auto A2) {
    for (i64 i = 0; i < n; ++i)
      for (i64 j = 0; j < n; ++j) {
        if (p.allowed(i, j) != (A1(i, j) || A2(i, j))) return false;
        bool reach = A1(i, j) || A2(i, j);
        for (i64 k = 0; k < n && !reach; ++k) reach = A2(i, k) && A1(k, j);
        if (reach != (j <= i)) return false;
      }
    return true;
  };
  CHECK(covers(strided, A1_strided, A2_strided));
  CHECK(covers(fixed, A1_fixed, A2_fixed));
}

TEST_CASE("block_sparse_attention: a dense layout equals naive_attention, outputs and q, k, v gradients") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (i64 b : {1, 5, 8, 64})
      for (auto [Tq, Tk] : std::vector<std::pair<i64, i64>>{{37, 37}, {7, 37}, {1, 20}}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(b);
        CAPTURE(Tq);
        CAPTURE(Tk);
        const Tensor q = normal({2, 3, Tq, 5}, 1, dtype), k = normal({2, 3, Tk, 5}, 2, dtype),
                     v = normal({2, 3, Tk, 5}, 3, dtype), w = normal({2, 3, Tq, 5}, 4, dtype);
        const BlockSparseLayout L({SparseKind::Dense, 1, 1}, Tk, b, Tk - Tq);
        const auto sparse =
            run([&](auto& a, auto& c, auto& e) { return nn::block_sparse_attention(a, c, e, L); }, q, k, v, w);
        const auto naive =
            run([](auto& a, auto& c, auto& e) { return nn::naive_attention(a, c, e, true); }, q, k, v, w);
        const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
        CHECK(sparse[0].dtype() == dtype);
        for (int i = 0; i < 4; ++i) {
          CAPTURE(i);
          CHECK(max_abs_diff(sparse[i], naive[i]) < tol);
        }
      }
}

TEST_CASE("block_sparse_attention: each pattern equals dense attention under the same element mask") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (const Case& cs : kCases)
      for (auto [Tq, Tk] : std::vector<std::pair<i64, i64>>{{37, 37}, {11, 37}, {1, 30}}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(cs.pattern.str());
        CAPTURE(cs.block);
        CAPTURE(Tq);
        CAPTURE(Tk);
        const Tensor q = normal({2, 2, Tq, 4}, 5, dtype), k = normal({2, 2, Tk, 4}, 6, dtype),
                     v = normal({2, 2, Tk, 4}, 7, dtype), w = normal({2, 2, Tq, 4}, 8, dtype);
        const Mask mask = reference_mask(cs.pattern, Tk);
        const BlockSparseLayout L(cs.pattern, Tk, cs.block, Tk - Tq);
        const auto sparse =
            run([&](auto& a, auto& c, auto& e) { return nn::block_sparse_attention(a, c, e, L); }, q, k, v, w);
        const auto dense = run([&](auto& a, auto& c, auto& e) { return dense_masked(a, c, e, mask); }, q, k, v, w);
        const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
        CHECK(ref::max_diff(vec(sparse[0]), masked_attention(vec(q), vec(k), vec(v), mask, 4, Tq, Tk, 4)) < tol);
        for (int i = 0; i < 4; ++i) {
          CAPTURE(i);
          CHECK(max_abs_diff(sparse[i], dense[i]) < tol);
        }
      }
}

TEST_CASE("block_sparse_attention: keys and values of an inactive block are never read") {
  // Strided l = 16, b = 4, T = 64: block-row 10 (positions 40..43) sees key blocks 6..10 (local) and the blocks of
  // positions i − 16, i − 32 (blocks 6, 2), so block 4 (positions 16..19) is inactive for it; block-row 12
  // (positions 48..51) reads it through i − 32.
  const SparsePattern p{SparseKind::Strided, 16, 1};
  const BlockSparseLayout L(p, 64, 4);
  const auto blocks = layout_blocks(L);
  REQUIRE(std::find(blocks.begin(), blocks.end(), std::pair<i64, i64>{10, 4}) == blocks.end());
  REQUIRE(std::find(blocks.begin(), blocks.end(), std::pair<i64, i64>{12, 4}) != blocks.end());
  const Tensor q = normal({1, 2, 64, 4}, 1), k = normal({1, 2, 64, 4}, 2), v = normal({1, 2, 64, 4}, 3);
  Vec kp = vec(k), vp = vec(v);
  for (i64 h = 0; h < 2; ++h)
    for (i64 j = 16; j < 20; ++j)
      for (i64 c = 0; c < 4; ++c) kp[(h * 64 + j) * 4 + c] = vp[(h * 64 + j) * 4 + c] = std::nan("");
  const Tensor kn = leaf_of(from_vector(kp, k.shape(), DType::Float64)),
               vn = leaf_of(from_vector(vp, v.shape(), DType::Float64));
  const Tensor qn = leaf_of(q);
  const Tensor clean = nn::block_sparse_attention(q, k, v, L), poisoned = nn::block_sparse_attention(qn, kn, vn, L);
  sum(poisoned).backward();
  const Vec oc = vec(clean), op = vec(poisoned), dq = vec(qn.grad());
  for (i64 h = 0; h < 2; ++h) {
    for (i64 i = 40; i < 44; ++i)
      for (i64 c = 0; c < 4; ++c) {
        CHECK(op[(h * 64 + i) * 4 + c] == oc[(h * 64 + i) * 4 + c]);
        CHECK(std::isfinite(dq[(h * 64 + i) * 4 + c]));
      }
    CHECK(std::isnan(op[(h * 64 + 48) * 4]));  // position 48 reads position 16: the poison is live there
  }
}

TEST_CASE("gradcheck: block_sparse_attention in Float64 for each pattern, Tq = Tk and Tq < Tk") {
  for (const Case& cs : std::vector<Case>{
           {{SparseKind::Local, 3, 1}, 2}, {{SparseKind::Strided, 3, 1}, 2}, {{SparseKind::Fixed, 4, 2}, 3}})
    for (i64 Tq : {9, 4}) {
      CAPTURE(cs.pattern.str());
      CAPTURE(Tq);
      const Tensor q = leaf_of(normal({1, 2, Tq, 3}, 1)), k = leaf_of(normal({1, 2, 9, 3}, 2)),
                   v = leaf_of(normal({1, 2, 9, 3}, 3));
      const BlockSparseLayout L(cs.pattern, 9, cs.block, 9 - Tq);
      const GradcheckResult r = gradcheck(
          [&](const auto& x) { return nn::block_sparse_attention(x[0], x[1], x[2], L); }, {q, k, v}, 1e-6, 1e-7, 1e-5);
      CHECK_MESSAGE(r.ok, r.message);
    }
}

TEST_CASE("SparseAttention mixer: forward equals the masked loop through its projections, and step equals forward") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (const Case& cs : kCases) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(cs.pattern.str());
      CAPTURE(cs.block);
      nn::SparseAttention m(config(8, 2, static_cast<double>(cs.pattern.kind), static_cast<double>(cs.pattern.stride),
                                   static_cast<double>(cs.block), static_cast<double>(cs.pattern.summary)));
      randomize(m, 5);
      m.to(dtype);
      const Tensor x = normal({2, 19, 8}, 3, dtype);
      const Tensor y = m(x);
      REQUIRE(y.shape() == Shape{2, 19, 8});
      const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
      CHECK(ref::max_diff(vec(y), reference_layer(m, vec(x), 2, 19)) < tol);
      CHECK(max_abs_diff(step_all(m, x), y) < tol);
    }
}

TEST_CASE("SparseAttention mixer: with RoPE, the dense pattern equals MultiHeadAttention and stepping equals forward") {
  const nn::MixerConfig c = config(8, 2, 0, 1, 4, 1, true);
  nn::SparseAttention m(c);
  nn::MultiHeadAttention full(c);
  randomize(m, 4);
  m.to(DType::Float64);
  full.to(DType::Float64);
  full.load_state_dict(m.state_dict());
  const Tensor x = normal({2, 11, 8}, 2);
  CHECK(max_abs_diff(m(x), full(x)) < 1e-12);
  nn::SparseAttention s(config(8, 2, 3, 4, 2, 2, true));
  randomize(s, 6);
  s.to(DType::Float64);
  CHECK(max_abs_diff(step_all(s, x), s(x)) < 1e-10);
}

TEST_CASE("SparseAttention mixer: changing x at position t changes no output before t") {
  for (double pattern : {1.0, 2.0, 3.0}) {
    CAPTURE(pattern);
    nn::SparseAttention m(config(8, 2, pattern, 4, 3, 2));
    randomize(m, 9);
    m.to(DType::Float64);
    const i64 T = 20;
    const Tensor x = normal({2, T, 8}, 1);
    const Tensor y = m(x);
    for (i64 t : {0, 3, 7, 12, 19}) {
      CAPTURE(t);
      Tensor x2 = x.clone();
      {
        Tensor row = narrow(x2, 1, t, 1);
        row.copy_(normal({2, 1, 8}, 11 + static_cast<std::uint64_t>(t)));
      }
      const Tensor y2 = m(x2);
      if (t > 0) CHECK(max_abs_diff(narrow(y2, 1, 0, t), narrow(y, 1, 0, t)) == 0.0);
      CHECK(max_abs_diff(narrow(y2, 1, t, 1), narrow(y, 1, t, 1)) > 1e-6);
    }
  }
}

TEST_CASE("gradcheck: SparseAttention in Float64, strided and fixed, T = 7") {
  for (double pattern : {2.0, 3.0}) {
    CAPTURE(pattern);
    nn::SparseAttention m(config(4, 2, pattern, 3, 2, 1));
    randomize(m, 5);
    m.to(DType::Float64);
    const Tensor x = leaf_of(normal({2, 7, 4}, 6));
    std::vector<Tensor> inputs = {x};
    for (const auto& [name, p] : m.named_parameters()) inputs.push_back(p);
    const GradcheckResult r = gradcheck([&](const auto& in) { return m(in[0]); }, inputs, 1e-6, 1e-7, 1e-5);
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("SparseAttention: defaults, the C++ constructor, printing, and bad options throw ember::Error") {
  nn::MixerConfig c;
  c.d_model = 8;
  c.n_heads = 2;
  const nn::SparseAttention d(c);
  CHECK(d.pattern.kind == SparseKind::Strided);
  CHECK(d.pattern.stride == 32);
  CHECK(d.block == 8);
  CHECK(d.str().starts_with("SparseAttention(d_model=8, heads=2, pattern=strided(l=32), block=8)"));
  const nn::SparseAttention f(c, {SparseKind::Fixed, 16, 4}, 4);
  CHECK(f.str().starts_with("SparseAttention(d_model=8, heads=2, pattern=fixed(l=16, c=4), block=4)"));
  CHECK(f.layout(64).active_blocks() ==
        static_cast<i64>(brute_force_blocks(reference_mask(f.pattern, 64), 64, 4, 0).size()));
  CHECK_THROWS_EMBER(nn::SparseAttention(config(8, 2, 4, 4, 2)), "option pattern must be 0 (dense)");
  CHECK_THROWS_EMBER(nn::SparseAttention(config(8, 2, 1.5, 4, 2)), "option pattern must be an integer, got 1.5");
  CHECK_THROWS_EMBER(nn::SparseAttention(config(8, 2, 2, 0, 2)), "stride l must be >= 1, got 0");
  CHECK_THROWS_EMBER(nn::SparseAttention(config(8, 2, 2, 4, 0)), "block size b must be >= 1, got 0");
  CHECK_THROWS_EMBER(nn::SparseAttention(config(8, 2, 3, 4, 2, 0)), "1 <= c <= l = 4, got 0");
  CHECK_THROWS_EMBER(nn::SparseAttention(config(8, 2, 3, 4, 2, 5)), "1 <= c <= l = 4, got 5");
  CHECK_THROWS_EMBER(nn::SparseAttention(c, {SparseKind::Local, 4, 1}, -1), "block size b must be >= 1, got -1");
  CHECK_THROWS_EMBER(BlockSparseLayout({SparseKind::Local, 4, 1}, 10, 2, 11), "first_query 11, length 10");
}

TEST_CASE("block_sparse_attention: a layout of the wrong length or bad shapes throw ember::Error naming them") {
  const Tensor q = normal({1, 2, 5, 4}, 1), k = normal({1, 2, 9, 4}, 2);
  const BlockSparseLayout L({SparseKind::Strided, 3, 1}, 9, 2, 4);
  CHECK(nn::block_sparse_attention(q, k, k, L).shape() == Shape{1, 2, 5, 4});
  CHECK_THROWS_EMBER(nn::block_sparse_attention(q, k, k, BlockSparseLayout({SparseKind::Strided, 3, 1}, 8, 2)),
                     "the layout covers keys 0..7");
  CHECK_THROWS_EMBER(nn::block_sparse_attention(normal({1, 2, 6, 4}, 1), k, k, L), "queries from 4");
  CHECK_THROWS_EMBER(nn::block_sparse_attention(q, normal({1, 2, 9, 3}, 2), k, L), "[1, 2, 9, 3]");
  CHECK_THROWS_EMBER(nn::block_sparse_attention(k, q, q, L), "causal attention needs Tq <= Tk");
  CHECK_THROWS_EMBER(nn::block_sparse_attention(q, k.to(DType::Float32), k, L), "dtype");
}
