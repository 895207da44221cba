/// \file
/// \brief matmul against a naive triple loop with NumPy's rules written out independently: 1-D
/// operands promoted and their dim dropped, batch dims broadcast. Covers 2-D, batched with broadcast,
/// transposed and strided views, expanded batches, Float64, Float32, Int64, Float16 and BFloat16.
#include <algorithm>
#include <cmath>

#include "reference.h"

using namespace ember;
using test::check_exact;
using test::check_values;
using test::broadcast;
using test::broadcast_source_index;

namespace {

struct Ref {
  Shape shape;
  std::vector<double> v;
  std::vector<double> scale;  // sum_k |a| |b| per element: the size of the rounding error
};

Ref naive_matmul(const Tensor& a, const Tensor& b) {
  Shape sa = a.shape(), sb = b.shape();
  const bool vec_a = sa.size() == 1, vec_b = sb.size() == 1;
  if (vec_a) sa.insert(sa.begin(), 1);  // [K] -> [1, K]
  if (vec_b) sb.push_back(1);           // [K] -> [K, 1]
  const std::int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  REQUIRE(sb[sb.size() - 2] == K);
  const Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  const Shape batch = broadcast(ba, bb);
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  Ref r;
  r.shape = batch;
  if (!vec_a) r.shape.push_back(M);
  if (!vec_b) r.shape.push_back(N);
  for (std::int64_t t = 0; t < test::count(batch); ++t) {
    const auto idx = test::unravel(t, batch);
    const std::int64_t ia = broadcast_source_index(idx, ba), ib = broadcast_source_index(idx, bb);
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t n = 0; n < N; ++n) {
        double s = 0, sc = 0;
        for (std::int64_t k = 0; k < K; ++k) {
          const double x = va[(ia * M + m) * K + k], y = vb[(ib * K + k) * N + n];
          s += x * y;
          sc += std::abs(x * y);
        }
        r.v.push_back(s);
        r.scale.push_back(sc);
      }
  }
  return r;
}

/// Checks matmul(a, b) against the naive loop, allowing `eps` times the per-element error scale.
void check_matmul(const Tensor& a, const Tensor& b, double eps) {
  CAPTURE(shape_str(a.shape()));
  CAPTURE(shape_str(b.shape()));
  const Ref r = naive_matmul(a, b);
  const Tensor c = matmul(a, b);
  CHECK(c.dtype() == a.dtype());
  REQUIRE(c.shape() == r.shape);
  const auto v = c.to_vector<double>();
  int bad = 0;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (!(std::abs(v[i] - r.v[i]) <= eps * (r.scale[i] + 1e-30))) ++bad;
  CHECK(bad == 0);
}

const std::vector<std::pair<Shape, Shape>> kShapes = {
    {{3, 4}, {4, 5}},
    {{2, 1, 3, 4}, {5, 4, 2}},
    {{4}, {4, 5}},
    {{3, 4}, {4}},
    {{4}, {4}},
    {{2, 3, 4}, {4}},
    {{4}, {2, 4, 5}},
    {{1, 3, 4}, {6, 4, 2}},
    {{7, 1, 5, 8}, {1, 3, 8, 6}},
    {{1, 1}, {1, 1}},
    {{2, 1, 4}, {2, 4, 1}},
    {{5, 2, 3}, {3, 7}},
};

}  // namespace

TEST_CASE("matmul of 2x3 by 3x2 equals the hand product") {
  const Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  const Tensor b = tensor({{7, 8}, {9, 10}, {11, 12}});
  check_exact(matmul(a, b), {2, 2}, {58, 64, 139, 154});
  check_exact(matmul(transpose(b, 0, 1), transpose(a, 0, 1)), {2, 2}, {58, 139, 64, 154});
}

TEST_CASE("matmul matches the naive loop for 2-D, batched, broadcast and 1-D operands") {
  std::uint64_t seed = 900;
  for (const auto& [sa, sb] : kShapes) {
    check_matmul(test::random_normal(sa, seed, DType::Float64), test::random_normal(sb, seed + 1, DType::Float64),
                 1e-14);
    check_matmul(test::random_normal(sa, seed + 2, DType::Float32), test::random_normal(sb, seed + 3, DType::Float32),
                 1e-6);
    Generator g(seed + 4);
    const Tensor ia = randint(-9, 10, sa, DType::Int64, Device::cpu(), &g);
    const Tensor ib = randint(-9, 10, sb, DType::Int64, Device::cpu(), &g);
    const Ref r = naive_matmul(ia, ib);
    check_exact(matmul(ia, ib), r.shape, r.v);
    seed += 10;
  }
  CHECK(matmul(zeros({4}), zeros({4})).dim() == 0);
  CHECK(matmul(zeros({2, 1, 3, 4}), zeros({5, 4, 2})).shape() == Shape{2, 5, 3, 2});
}

TEST_CASE("matmul of transposed, strided and expanded views equals the naive loop") {
  const Tensor a0 = test::random_normal({4, 3}, 910), b0 = test::random_normal({5, 4}, 911);
  const Tensor at = transpose(a0, 0, 1), bt = transpose(b0, 0, 1);  // [3, 4] and [4, 5], column-major
  check_matmul(at, bt, 1e-14);
  check_matmul(at, test::random_normal({4, 2}, 912), 1e-14);
  check_matmul(test::random_normal({2, 3}, 913), at, 1e-14);  // [2, 3] @ [3, 4]
  // Batched transposes through permute, with broadcast batch.
  const Tensor pa = permute(test::random_normal({2, 5, 3}, 914), {0, 2, 1});  // [2, 3, 5]
  const Tensor pb = permute(test::random_normal({5, 2, 1}, 915), {2, 0, 1});  // [1, 5, 2]
  check_matmul(pa, pb, 1e-14);
  // Strided slices that BLAS cannot take as they are (element stride 2).
  const Tensor sa = slice(test::random_normal({3, 8}, 916), 1, 0, 8, 2);  // [3, 4]
  const Tensor sb = slice(test::random_normal({8, 5}, 917), 0, 1, 8, 2);  // [4, 5]
  check_matmul(sa, sb, 1e-14);
  check_matmul(transpose(sb, 0, 1), transpose(sa, 0, 1), 1e-14);
  // A submatrix with a leading dimension larger than its width, and an expanded (stride-0) batch.
  const Tensor sub = slice(slice(test::random_normal({6, 7}, 918), 0, 1, 5), 1, 2, 6);  // [4, 4], ld 7
  check_matmul(sub, sub, 1e-14);
  const Tensor eb = expand(test::random_normal({1, 4, 3}, 919), {6, 4, 3});
  check_matmul(test::random_normal({6, 2, 4}, 920), eb, 1e-14);
  check_matmul(expand(test::random_normal({2, 3}, 921), {6, 2, 3}), transpose(eb, 1, 2), 1e-14);
  // Float32 and Int64 transposed operands.
  check_matmul(at.to(DType::Float32), bt.to(DType::Float32), 1e-6);
  const Tensor it = transpose(tensor({{1, 2}, {3, 4}, {5, 6}}, DType::Int64), 0, 1);  // [[1, 3, 5], [2, 4, 6]]
  check_exact(matmul(it, from_vector(std::vector<std::int64_t>{1, 1, 1}, {3, 1})), {2, 1}, {9, 12});
}

TEST_CASE("matmul of larger products (BLAS threads, one product per thread) matches the naive loop") {
  check_matmul(test::random_normal({70, 130}, 930, DType::Float32), test::random_normal({130, 90}, 931, DType::Float32),
               1e-5);
  check_matmul(test::random_normal({8, 33, 40}, 932), test::random_normal({8, 40, 17}, 933), 1e-14);
  check_matmul(test::random_normal({3, 64, 64}, 934, DType::Float32),
               test::random_normal({64, 64}, 935, DType::Float32), 1e-5);
}

TEST_CASE("Float16 and BFloat16 matmul agree with the exact product within their rounding") {
  for (DType dt : {DType::Float16, DType::BFloat16}) {
    CAPTURE(dtype_name(dt));
    const double unit = dt == DType::Float16 ? 0x1p-11 : 0x1p-8;  // half an ulp, relative
    const Tensor a = test::random_normal({2, 5, 16}, 940, dt), b = test::random_normal({16, 6}, 941, dt);
    // The float32 accumulation is exact to ~1e-7; rounding the result adds at most `unit` relative.
    const Ref r = naive_matmul(a, b);
    const Tensor c = matmul(a, b);
    CHECK(c.dtype() == dt);
    REQUIRE(c.shape() == r.shape);
    const auto v = c.to_vector<double>();
    int bad = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (std::abs(v[i] - r.v[i]) > unit * std::abs(r.v[i]) + 1e-6 * r.scale[i]) ++bad;
    CHECK(bad == 0);
    // Against the float32 product of the same (exactly representable) values: within half an ulp.
    const auto f32 = matmul(a.to(DType::Float32), b.to(DType::Float32)).to_vector<double>();
    bad = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (std::abs(v[i] - f32[i]) > unit * std::abs(f32[i])) ++bad;
    CHECK(bad == 0);
    // And transposed half operands.
    check_matmul(transpose(b, 0, 1), transpose(a, 1, 2), 2 * unit);
  }
}

TEST_CASE("matmul with an empty inner or outer dim") {
  check_exact(matmul(zeros({3, 0}), zeros({0, 2})), {3, 2}, std::vector<double>(6, 0.0));
  check_exact(matmul(zeros({3, 0}, DType::Int64), zeros({0, 2}, DType::Int64)), {3, 2}, std::vector<double>(6, 0.0));
  CHECK(matmul(zeros({0, 4}), zeros({4, 2})).shape() == Shape{0, 2});
  CHECK(matmul(zeros({2, 0, 4}), zeros({4, 5})).shape() == Shape{2, 0, 5});
}

TEST_CASE("matmul errors name the op and the shapes") {
  CHECK_THROWS_EMBER(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: cannot multiply [2, 3] by [4, 5] (3 != 4)");
  CHECK_THROWS_EMBER(matmul(zeros({3}), zeros({4})), "matmul: cannot multiply [3] by [4] (3 != 4)");
  CHECK_THROWS_EMBER(matmul(zeros({2, 3}), zeros({2})), "matmul: cannot multiply [2, 3] by [2] (3 != 2)");
  CHECK_THROWS_EMBER(matmul(zeros({2, 2, 3}), zeros({3, 3, 1})), "matmul: shapes [2] and [3] do not broadcast");
  CHECK_THROWS_EMBER(matmul(zeros({2, 3}), zeros({3, 2}, DType::Float64)),
                     "matmul: dtypes differ ([2, 3] float32 and [3, 2] float64)");
  CHECK_THROWS_EMBER(matmul(scalar_tensor(1.0), zeros({2})),
                     "matmul: both operands need at least 1 dim, got [] and [2]");
  CHECK_THROWS_EMBER(matmul(zeros({2, 2}, DType::Bool), zeros({2, 2}, DType::Bool)), "matmul: bool tensors");
}
