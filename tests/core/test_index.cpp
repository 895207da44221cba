/// \file
/// \brief Indexing and joining ops (index_select, gather, scatter_add, cat, stack, split, chunk,
/// narrow, tril/triu, one_hot, pad, where, masked_fill) against naive loops over multi-indices, and
/// their errors for out-of-range indices and wrong index dtypes.
#include <algorithm>

#include "reference.h"

using namespace ember;
using test::check_exact;
using test::ravel;
using test::unravel;

namespace {

Tensor iota(const Shape& shape, DType dtype = DType::Float64) {
  return reshape(arange(0, static_cast<double>(test::count(shape)), 1, dtype), shape);
}

Tensor ints(const std::vector<std::int64_t>& v, const Shape& shape) { return from_vector(v, shape); }

/// Values of x at each multi-index of `out_shape`, mapped through `map`.
template <class Map>
std::vector<double> pick(const Tensor& x, const Shape& out_shape, Map map) {
  const auto v = x.to_vector<double>();
  std::vector<double> out;
  for (std::int64_t k = 0; k < test::count(out_shape); ++k) out.push_back(map(unravel(k, out_shape), v));
  return out;
}

}  // namespace

TEST_CASE("index_select picks rows along any dim, repeats included") {
  const Tensor x = test::random_normal({4, 5, 3}, 1000);
  for (int dim : {0, 1, 2, -1}) {
    CAPTURE(dim);
    const int d = dim < 0 ? dim + 3 : dim;
    const std::vector<std::int64_t> iv =
        x.shape()[d] > 3 ? std::vector<std::int64_t>{3, 0, 3, 1} : std::vector<std::int64_t>{2, 0, 2, 1};
    const Tensor ix = ints(iv, {4});
    Shape out = x.shape();
    out[d] = ix.numel();
    const Tensor r = index_select(x, dim, ix);
    check_exact(r, out, pick(x, out, [&](auto i, const auto& v) {
                  i[d] = iv[i[d]];
                  return v[ravel(i, x.shape())];
                }));
    CHECK_FALSE(r.shares_storage(x));
  }
  // A non-contiguous input and an Int64 input.
  const Tensor t = transpose(iota({3, 4}), 0, 1);  // [4, 3]
  check_exact(index_select(t, 0, ints({2, 2}, {2})), {2, 3}, {2, 6, 10, 2, 6, 10});
  check_exact(index_select(iota({2, 3}, DType::Int64), 1, ints({2, 0}, {2})), {2, 2}, {2, 0, 5, 3});
}

TEST_CASE("gather follows out(i, j) = x(i, index(i, j)) along dim 1 and x(index(i, j), j) along dim 0") {
  const Tensor x = test::random_normal({3, 4}, 1001);
  const auto v = x.to_vector<double>();
  const Tensor i1 = ints({3, 0, 1, 1, 2, 3}, {3, 2});
  const auto iv1 = i1.to_vector<std::int64_t>();
  std::vector<double> want;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) want.push_back(v[i * 4 + iv1[i * 2 + j]]);
  check_exact(gather(x, 1, i1), {3, 2}, want);
  const Tensor i0 = ints({2, 0, 1, 2, 0, 0, 0, 1}, {2, 4});
  const auto iv0 = i0.to_vector<std::int64_t>();
  want.clear();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) want.push_back(v[iv0[i * 4 + j] * 4 + j]);
  check_exact(gather(x, 0, i0), {2, 4}, want);
  check_exact(gather(x, -2, i0), {2, 4}, want);
  // An index smaller than x in the other dim reads the leading rows only.
  const Tensor i2 = ints({1, 1, 3}, {1, 3});
  check_exact(gather(x, 1, i2), {1, 3}, {v[1], v[1], v[3]});
  // 3-D along the middle dim.
  const Tensor y = iota({2, 3, 2});
  const Tensor iy = ints({2, 0, 1, 1, 0, 2, 2, 2}, {2, 2, 2});
  check_exact(gather(y, 1, iy), {2, 2, 2}, pick(y, {2, 2, 2}, [&](auto i, const auto& vv) {
                const auto k = iy.to_vector<std::int64_t>()[ravel(i, {2, 2, 2})];
                i[1] = k;
                return vv[ravel(i, {2, 3, 2})];
              }));
}

TEST_CASE("scatter_add accumulates repeated indices") {
  const Tensor x = test::random_normal({3, 4}, 1002);
  const Tensor src = test::random_normal({3, 5}, 1003);
  const Tensor idx = ints({0, 0, 3, 0, 1, 2, 2, 2, 2, 2, 3, 1, 0, 1, 3}, {3, 5});
  auto want = x.to_vector<double>();
  const auto sv = src.to_vector<double>();
  const auto iv = idx.to_vector<std::int64_t>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) want[i * 4 + iv[i * 5 + j]] += sv[i * 5 + j];
  test::check_values(scatter_add(x, 1, idx, src), {3, 4}, want, 1e-14, 1e-14);
  // Along dim 0, with src larger than index (only index's extent is used); x is not modified.
  const auto x_before = x.to_vector<double>();
  const Tensor big_src = test::random_normal({4, 6}, 1004);
  const Tensor idx0 = ints({2, 2, 0, 1, 2, 2, 0, 0}, {2, 4});
  want = x.to_vector<double>();
  const auto bs = big_src.to_vector<double>();
  const auto iv0 = idx0.to_vector<std::int64_t>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) want[iv0[i * 4 + j] * 4 + j] += bs[i * 6 + j];
  test::check_values(scatter_add(x, 0, idx0, big_src), {3, 4}, want, 1e-14, 1e-14);
  CHECK(x.to_vector<double>() == x_before);
  // Int64 counts: a histogram.
  const Tensor hist = scatter_add(zeros({4}, DType::Int64), 0, ints({1, 3, 1, 1, 0}, {5}), ones({5}, DType::Int64));
  check_exact(hist, {4}, {1, 3, 0, 1});
}

TEST_CASE("cat and stack lay inputs side by side along the dim") {
  const Tensor a = iota({2, 3}), b = iota({4, 3}) + 100.0, c = iota({1, 3}) + 200.0;
  check_exact(cat({a, b, c}, 0), {7, 3},
              {0, 1, 2, 3, 4, 5, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 200, 201, 202});
  const Tensor p = iota({2, 1}), q = iota({2, 3}) + 10.0;
  check_exact(cat({p, q}, 1), {2, 4}, {0, 10, 11, 12, 1, 13, 14, 15});
  check_exact(cat({q, p}, -1), {2, 4}, {10, 11, 12, 0, 13, 14, 15, 1});
  // Non-contiguous parts and mixed dtypes (promoted).
  const Tensor t = transpose(iota({3, 2}), 0, 1);  // [[0, 2, 4], [1, 3, 5]]
  const Tensor ci = cat({t, tensor({{7, 8, 9}}, DType::Int64)}, 0);
  CHECK(ci.dtype() == DType::Float64);
  check_exact(ci, {3, 3}, {0, 2, 4, 1, 3, 5, 7, 8, 9});
  check_exact(cat({zeros({0, 3}), a}, 0), {2, 3}, {0, 1, 2, 3, 4, 5});
  // 3-D along the middle dim vs a naive loop.
  const Tensor u = test::random_normal({2, 2, 3}, 1005), w = test::random_normal({2, 1, 3}, 1006);
  const auto uv = u.to_vector<double>(), wv = w.to_vector<double>();
  std::vector<double> want;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) want.push_back(uv[(i * 2 + j) * 3 + k]);
    for (int k = 0; k < 3; ++k) want.push_back(wv[i * 3 + k]);
  }
  check_exact(cat({u, w}, 1), {2, 3, 3}, want);

  const Tensor s0 = stack({a, a + 10.0, a + 20.0}, 0);
  check_exact(s0, {3, 2, 3}, {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 20, 21, 22, 23, 24, 25});
  check_exact(stack({a, a + 10.0}, 1), {2, 2, 3}, {0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15});
  check_exact(stack({a, a + 10.0}, 2), {2, 3, 2}, {0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15});
  check_exact(stack({a, a + 10.0}, -1), {2, 3, 2}, {0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15});
}

TEST_CASE("split, chunk and narrow cut views of the documented sizes") {
  const Tensor x = iota({7, 2});
  const auto parts = split(x, 3);
  REQUIRE(parts.size() == 3);
  check_exact(parts[0], {3, 2}, {0, 1, 2, 3, 4, 5});
  check_exact(parts[1], {3, 2}, {6, 7, 8, 9, 10, 11});
  check_exact(parts[2], {1, 2}, {12, 13});
  CHECK(parts[1].shares_storage(x));
  const auto cols = split(x, 1, 1);
  REQUIRE(cols.size() == 2);
  check_exact(cols[1], {7, 1}, {1, 3, 5, 7, 9, 11, 13});
  const auto ch = chunk(x, 3);  // ceil(7 / 3) = 3 rows each
  REQUIRE(ch.size() == 3);
  CHECK(ch[2].shape() == Shape{1, 2});
  const auto ch4 = chunk(iota({6}), 4);  // ceil(6 / 4) = 2: three chunks, as in PyTorch
  REQUIRE(ch4.size() == 3);
  check_exact(ch4[2], {2}, {4, 5});
  const auto ch_even = chunk(iota({2, 6}), 2, 1);
  REQUIRE(ch_even.size() == 2);
  check_exact(ch_even[1], {2, 3}, {3, 4, 5, 9, 10, 11});
  check_exact(narrow(x, 0, 2, 3), {3, 2}, {4, 5, 6, 7, 8, 9});
  check_exact(narrow(x, 0, -2, 2), {2, 2}, {10, 11, 12, 13});
  check_exact(narrow(x, 1, 1, 0), {7, 0}, {});
}

TEST_CASE("tril and triu keep the diagonals j - i <= k and j - i >= k") {
  for (const Shape& shape : {Shape{3, 4}, Shape{4, 3}, Shape{2, 3, 4}}) {
    const Tensor x = iota(shape) + 1.0;
    for (std::int64_t k : {-1, 0, 1, -5, 5}) {
      CAPTURE(shape_str(shape));
      CAPTURE(k);
      const std::size_t n = shape.size();
      const auto lower =
          pick(x, shape, [&](auto i, const auto& v) { return i[n - 1] - i[n - 2] <= k ? v[ravel(i, shape)] : 0.0; });
      const auto upper =
          pick(x, shape, [&](auto i, const auto& v) { return i[n - 1] - i[n - 2] >= k ? v[ravel(i, shape)] : 0.0; });
      check_exact(tril(x, k), shape, lower);
      check_exact(triu(x, k), shape, upper);
    }
  }
  // Hand-written: the causal mask pattern.
  check_exact(tril(ones({3, 3})), {3, 3}, {1, 0, 0, 1, 1, 0, 1, 1, 1});
  check_exact(triu(ones({3, 3}), 1), {3, 3}, {0, 1, 1, 0, 0, 1, 0, 0, 0});
  check_exact(tril(transpose(iota({3, 3}), 0, 1), -1), {3, 3}, {0, 0, 0, 1, 0, 0, 2, 5, 0});
}

TEST_CASE("one_hot writes a 1 at each class index") {
  const Tensor idx = ints({2, 0, 1, 2, 2, 0}, {2, 3});
  const Tensor h = one_hot(idx, 4);
  CHECK(h.dtype() == DType::Float32);
  const auto iv = idx.to_vector<std::int64_t>();
  std::vector<double> want(24, 0.0);
  for (int k = 0; k < 6; ++k) want[k * 4 + iv[k]] = 1;
  check_exact(h, {2, 3, 4}, want);
  check_exact(one_hot(ints({1, 0, 3}, {3})), {3, 4}, {0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1});  // inferred: max + 1
}

TEST_CASE("pad adds (positive) or crops (negative) constant borders on the last dims") {
  const Tensor x = iota({2, 3}) + 1.0;  // [[1, 2, 3], [4, 5, 6]]
  check_exact(pad(x, {1, 2}), {2, 6}, {0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 0, 0});
  check_exact(pad(x, {0, 1, 2, 0}, 7.0), {4, 4}, {7, 7, 7, 7, 7, 7, 7, 7, 1, 2, 3, 7, 4, 5, 6, 7});
  check_exact(pad(x, {-1, 1}), {2, 3}, {2, 3, 0, 5, 6, 0});
  check_exact(pad(x, {0, 0, -1, 0}), {1, 3}, {4, 5, 6});
  check_exact(pad(x, {-1, -1, 1, 0}, -1.0), {3, 1}, {-1, 2, 5});
  // Against a naive loop on a 3-D tensor padding the last two dims.
  const Tensor y = test::random_normal({2, 3, 4}, 1007);
  const auto yv = y.to_vector<double>();
  const Shape out = {2, 3 + 2 - 1, 4 - 1 + 3};  // dim 1: +2 left, -1 right; dim 2: -1 left, +3 right
  std::vector<double> want;
  for (std::int64_t k = 0; k < test::count(out); ++k) {
    const auto i = unravel(k, out);
    const std::int64_t r = i[1] - 2, c = i[2] + 1;
    want.push_back(r >= 0 && r < 3 && c >= 0 && c < 4 ? yv[(i[0] * 3 + r) * 4 + c] : 0.5);
  }
  check_exact(pad(y, {-1, 3, 2, -1}, 0.5), out, want);
}

TEST_CASE("where and masked_fill broadcast condition and values") {
  const Tensor cond = tensor({{1, 0, 1}}, DType::Bool);           // [1, 3]
  const Tensor a = unsqueeze(tensor({1, 2}, DType::Float64), 1);  // [2, 1]
  const Tensor b = scalar_tensor(-1.0, DType::Float64);
  check_exact(where(cond, a, b), {2, 3}, {1, -1, 1, 2, -1, 2});
  const Tensor x = test::random_normal({2, 3, 4}, 1008);
  const Tensor y = test::random_normal({3, 1}, 1009);
  const Tensor c = gt(x, y);
  const auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
  std::vector<double> want;
  for (std::int64_t k = 0; k < 24; ++k) {
    const auto i = unravel(k, {2, 3, 4});
    want.push_back(xv[k] > yv[i[1]] ? xv[k] : yv[i[1]]);
  }
  check_exact(where(c, x, y), {2, 3, 4}, want);
  // where promotes: Int64 with Float32.
  const Tensor wp = where(tensor({1, 0}, DType::Bool), tensor({1, 2}, DType::Int64), tensor({0.5, 0.5}));
  CHECK(wp.dtype() == DType::Float32);
  check_exact(wp, {2}, {1, 0.5});
  const Tensor mask = tensor({0, 1, 0, 1}, DType::Bool);
  const Tensor m = masked_fill(iota({3, 4}), mask, -9.0);
  check_exact(m, {3, 4}, {0, -9, 2, -9, 4, -9, 6, -9, 8, -9, 10, -9});
  check_exact(masked_fill(iota({2, 2}), tensor({{1, 0}, {0, 1}}, DType::Bool), 5.0), {2, 2}, {5, 1, 2, 5});
}

TEST_CASE("index errors name the op and the shapes") {
  const Tensor x = zeros({3, 4});
  CHECK_THROWS_EMBER(index_select(x, 0, ints({0, 3}, {2})),
                     "index_select: index 3 is out of range for dim 0 of shape [3, 4]");
  CHECK_THROWS_EMBER(index_select(x, 1, ints({-1}, {1})),
                     "index_select: index -1 is out of range for dim 1 of shape [3, 4]");
  CHECK_THROWS_EMBER(index_select(x, 0, tensor({0, 1})),
                     "index_select: indices must be int64, got float32 of shape [2]");
  CHECK_THROWS_EMBER(index_select(x, 0, ints({0, 1, 2, 0}, {2, 2})),
                     "index_select: index must be 1-D, got shape [2, 2]");
  CHECK_THROWS_EMBER(gather(x, 1, ints({4, 0}, {1, 2})), "gather: index 4 is out of range for dim 1 of shape [3, 4]");
  CHECK_THROWS_EMBER(gather(x, 1, tensor({{0, 1}})), "gather: indices must be int64, got float32 of shape [1, 2]");
  CHECK_THROWS_EMBER(gather(x, 1, ints({0, 1}, {2})),
                     "gather: index of shape [2] must have as many dims as input [3, 4]");
  CHECK_THROWS_EMBER(gather(x, 1, zeros({4, 1}, DType::Int64)),
                     "gather: index of shape [4, 1] is larger than input [3, 4] in dim 0");
  CHECK_THROWS_EMBER(scatter_add(x, 0, ints({3}, {1, 1}), ones({1, 1})),
                     "scatter_add: index 3 is out of range for dim 0 of shape [3, 4]");
  CHECK_THROWS_EMBER(scatter_add(x, 0, zeros({1, 1}, DType::Bool), ones({1, 1})),
                     "scatter_add: indices must be int64, got bool of shape [1, 1]");
  CHECK_THROWS_EMBER(scatter_add(x, 0, zeros({2, 2}, DType::Int64), ones({1, 2})),
                     "scatter_add: index [2, 2] does not fit src [1, 2] and input [3, 4] in dim 0");
  CHECK_THROWS_EMBER(one_hot(ints({0, 3}, {2}), 3), "one_hot: class index 3 is out of range for 3 classes");
  CHECK_THROWS_EMBER(one_hot(ints({-1}, {1}), 3), "one_hot: class index -1 is out of range for 3 classes");
  CHECK_THROWS_EMBER(one_hot(tensor({1.0}), 3), "one_hot: indices must be int64, got float32 of shape [1]");
  CHECK_THROWS_EMBER(cat({zeros({2, 3}), zeros({2, 4})}, 0), "cat: shapes [2, 3] and [2, 4] differ in dim 1");
  CHECK_THROWS_EMBER(cat({zeros({2, 3}), zeros({3})}, 0), "cat: tensors [2, 3] and [3] differ in number of dims");
  CHECK_THROWS_EMBER(cat({}, 0), "cat: expected a non-empty list");
  CHECK_THROWS_EMBER(stack({zeros({2, 3}), zeros({3, 2})}), "stack: shapes [2, 3] and [3, 2] differ");
  CHECK_THROWS_EMBER(narrow(x, 1, 2, 3), "narrow: start 2 and length 3 do not fit dim 1 of shape [3, 4]");
  CHECK_THROWS_EMBER(tril(zeros({3})), "tril: needs at least 2 dims, got shape [3]");
  CHECK_THROWS_EMBER(pad(x, {1}), "pad: 1 padding values for a tensor of shape [3, 4]");
  CHECK_THROWS_EMBER(pad(x, {-3, -2}), "pad: padding makes dim 1 of shape [3, 4] negative");
  CHECK_THROWS_EMBER(masked_fill(zeros({3}), zeros({2, 3}, DType::Bool), 1.0),
                     "masked_fill: mask of shape [2, 3] does not broadcast to [3]");
  CHECK_THROWS_EMBER(where(zeros({2}), zeros({2}), zeros({2})),
                     "where: condition must be bool, got float32 of shape [2]");
}
