/// \file
/// \brief Views share storage through shape, strides and offset: each view's elements are checked
/// against naive index arithmetic on the base's values, writes through a view reach the base, and the
/// version counter, contiguity, view()/reshape() and identity semantics behave as documented.
#include "reference.h"

using namespace ember;
using test::check_exact;
using test::ravel;
using test::unravel;

namespace {

/// 0, 1, 2, ... as Float64 of the given shape.
Tensor iota(const Shape& shape) {
  return reshape(arange(0, static_cast<double>(test::count(shape)), 1, DType::Float64), shape);
}

/// Values of x at every multi-index of `out_shape`, mapped to an index of x by `map`.
template <class Map>
std::vector<double> pick(const Tensor& x, const Shape& out_shape, Map map) {
  const auto v = x.to_vector<double>();
  std::vector<double> out;
  for (std::int64_t k = 0; k < test::count(out_shape); ++k)
    out.push_back(v[ravel(map(unravel(k, out_shape)), x.shape())]);
  return out;
}

}  // namespace

TEST_CASE("transpose and permute are views with the swapped element order") {
  const Tensor x = iota({2, 3, 4});
  const Tensor t = transpose(x, 0, 2);
  CHECK(t.shares_storage(x));
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.strides() == Shape{1, 4, 12});
  CHECK_FALSE(t.is_contiguous());
  check_exact(t, {4, 3, 2}, pick(x, {4, 3, 2}, [](auto i) { return std::vector<std::int64_t>{i[2], i[1], i[0]}; }));

  const Tensor p = permute(x, {1, 2, 0});
  CHECK(p.shares_storage(x));
  CHECK(p.shape() == Shape{3, 4, 2});
  check_exact(p, {3, 4, 2}, pick(x, {3, 4, 2}, [](auto i) { return std::vector<std::int64_t>{i[2], i[0], i[1]}; }));
  check_exact(permute(x, {-1, 0, 1}), {4, 2, 3}, pick(x, {4, 2, 3}, [](auto i) {
                return std::vector<std::int64_t>{i[1], i[2], i[0]};
              }));
  // Transposing back gives a contiguous view again.
  CHECK(transpose(t, 0, 2).is_contiguous());
}

TEST_CASE("slice and select pick the documented elements without copying") {
  const Tensor x = iota({5, 6});
  const Tensor s = slice(x, 1, 1, 6, 2);  // columns 1, 3, 5
  CHECK(s.shares_storage(x));
  CHECK(s.offset() == 1);
  CHECK(s.strides() == Shape{6, 2});
  check_exact(s, {5, 3}, pick(x, {5, 3}, [](auto i) { return std::vector<std::int64_t>{i[0], 1 + 2 * i[1]}; }));
  // Negative start and an end past the size clamp as in Python.
  check_exact(slice(x, 0, -2, 100), {2, 6}, pick(x, {2, 6}, [](auto i) {
                return std::vector<std::int64_t>{3 + i[0], i[1]};
              }));
  check_exact(slice(x, 0, 4, 2), {0, 6}, {});
  const Tensor r = select(x, 0, -1);  // the last row
  CHECK(r.shares_storage(x));
  check_exact(r, {6}, {24, 25, 26, 27, 28, 29});
  check_exact(select(x, 1, 2), {5}, {2, 8, 14, 20, 26});
  check_exact(narrow(x, 1, 2, 3), {5, 3}, pick(x, {5, 3}, [](auto i) {
                return std::vector<std::int64_t>{i[0], 2 + i[1]};
              }));
  // A view of a view composes offsets and strides.
  const Tensor ss = select(slice(transpose(x, 0, 1), 0, 1, 5, 3), 0, 1);  // column 4 of x
  check_exact(ss, {5}, {4, 10, 16, 22, 28});
}

TEST_CASE("expand, unsqueeze and squeeze are views") {
  const Tensor x = iota({3, 1});
  const Tensor e = expand(x, {2, 3, 4});
  CHECK(e.shares_storage(x));
  CHECK(e.strides() == Shape{0, 1, 0});
  check_exact(e, {2, 3, 4}, pick(x, {2, 3, 4}, [](auto i) { return std::vector<std::int64_t>{i[1], 0}; }));
  const Tensor u = unsqueeze(x, 0);
  CHECK(u.shares_storage(x));
  CHECK(u.shape() == Shape{1, 3, 1});
  CHECK(unsqueeze(x, -1).shape() == Shape{3, 1, 1});
  const Tensor q = squeeze(iota({1, 3, 1, 2}));
  CHECK(q.shape() == Shape{3, 2});
  CHECK(squeeze(iota({1, 3, 1, 2}), {2}).shape() == Shape{1, 3, 2});
  CHECK(squeeze(iota({1, 3}), {1}).shape() == Shape{1, 3});  // a dim that is not 1 stays
  check_exact(q, {3, 2}, {0, 1, 2, 3, 4, 5});
  CHECK(flatten(iota({2, 3, 4}), 1).shape() == Shape{2, 12});
  CHECK(flatten(iota({2, 3, 4})).shape() == Shape{24});
}

TEST_CASE("a write through a view is visible in the base") {
  NoGradGuard no_grad;
  Tensor x = zeros({3, 4}, DType::Float64);
  Tensor col = select(x, 1, 2);
  col.fill_(7);
  Tensor block = slice(slice(x, 0, 1, 3), 1, 0, 2);
  block.copy_(tensor({{1, 2}, {3, 4}}, DType::Float64));
  transpose(x, 0, 1).add_(ones({4, 1}, DType::Float64), 0.5);  // broadcast add through a transposed view
  std::vector<double> want(12, 0.0);
  for (int i = 0; i < 3; ++i) want[i * 4 + 2] = 7;
  want[4] = 1, want[5] = 2, want[8] = 3, want[9] = 4;
  for (double& w : want) w += 0.5;
  check_exact(x, {3, 4}, want);
  // Writes into an expanded view's base show in every broadcast position.
  Tensor base = zeros({1, 3});
  Tensor big = expand(base, {4, 3});
  select(base, 1, 1).fill_(5);
  check_exact(big, {4, 3}, {0, 5, 0, 0, 5, 0, 0, 5, 0, 0, 5, 0});
}

TEST_CASE("contiguous() copies only when needed") {
  const Tensor x = iota({3, 4});
  CHECK(x.is_contiguous());
  CHECK(x.contiguous().is_same(x));
  const Tensor t = transpose(x, 0, 1);
  const Tensor c = t.contiguous();
  CHECK_FALSE(c.shares_storage(x));
  CHECK(c.is_contiguous());
  CHECK(c.strides() == Shape{3, 1});
  check_exact(c, {4, 3}, pick(x, {4, 3}, [](auto i) { return std::vector<std::int64_t>{i[1], i[0]}; }));
  // Size-1 dims do not spoil contiguity, whatever their stride.
  CHECK(unsqueeze(x, 1).is_contiguous());
  CHECK(select(x, 1, 0).is_contiguous() == false);
  CHECK(select(x, 0, 1).is_contiguous());
  CHECK(slice(x, 0, 1, 3).is_contiguous());  // whole rows
  CHECK_FALSE(slice(x, 1, 1, 3).is_contiguous());
}

TEST_CASE("view() refuses a layout that needs a copy, reshape() copies then") {
  const Tensor x = iota({2, 3});
  const Tensor t = transpose(x, 0, 1);
  CHECK_THROWS_EMBER(view(t, {6}), "view: cannot view a tensor of shape [3, 2] and strides [1, 3] as [6]");
  const Tensor r = reshape(t, {6});
  CHECK_FALSE(r.shares_storage(x));
  check_exact(r, {6}, {0, 3, 1, 4, 2, 5});
  // A reshape that a view can do shares storage.
  const Tensor v = reshape(x, {3, -1});
  CHECK(v.shares_storage(x));
  check_exact(v, {3, 2}, {0, 1, 2, 3, 4, 5});
  // Non-contiguous but viewable: splitting and merging dims inside a contiguous run.
  const Tensor y = iota({3, 8});
  const Tensor cols = slice(y, 1, 0, 4);  // [3, 4] with row stride 8
  const Tensor split = view(cols, {3, 2, 2});
  CHECK(split.shares_storage(y));
  check_exact(split, {3, 2, 2}, pick(y, {3, 2, 2}, [](auto i) {
                return std::vector<std::int64_t>{i[0], 2 * i[1] + i[2]};
              }));
  CHECK_THROWS_EMBER(view(cols, {12}), "view: cannot view");
  const Tensor z = iota({2, 3, 4});
  const Tensor pz = permute(z, {1, 0, 2});  // [3, 2, 4]: dims 0 and 1 are not one run
  CHECK_THROWS_EMBER(view(pz, {3, 8}), "view:");
  const Tensor pv = view(pz, {3, 2, 2, 2});
  CHECK(pv.shares_storage(z));
  check_exact(pv, {3, 2, 2, 2}, pick(z, {3, 2, 2, 2}, [](auto i) {
                return std::vector<std::int64_t>{i[1], i[0], 2 * i[2] + i[3]};
              }));
  check_exact(reshape(pz, {3, 8}), {3, 8}, pick(z, {3, 8}, [](auto i) {
                return std::vector<std::int64_t>{i[1] / 4, i[0], i[1] % 4};
              }));
  CHECK_FALSE(reshape(pz, {3, 8}).shares_storage(z));
}

TEST_CASE("in-place ops bump the storage's version counter, seen by every view") {
  NoGradGuard no_grad;
  Tensor x = zeros({4});
  Tensor v = slice(x, 0, 1, 3);
  const auto v0 = x.version();
  x.add_(ones({4}));
  CHECK(x.version() == v0 + 1);
  x.fill_(2);
  CHECK(x.version() == v0 + 2);
  v.copy_(tensor({5, 6}));
  CHECK(x.version() == v0 + 3);  // through a view: same storage, same counter
  CHECK(v.version() == x.version());
  x.mul_(2.0);
  x.zero_();
  CHECK(x.version() == v0 + 5);
  const Tensor c = x.clone();
  const auto cv = c.version();
  x.fill_(1);
  CHECK(c.version() == cv);  // a clone has its own storage and counter
  const auto before = x.version();
  const Tensor y = x + 1.0;  // out-of-place ops leave it alone
  (void)y;
  CHECK(x.version() == before);
  check_exact(x, {4}, {1, 1, 1, 1});
}

TEST_CASE("is_same, shares_storage, detach and clone") {
  const Tensor a = tensor({1, 2, 3});
  const Tensor alias = a;
  CHECK(alias.is_same(a));
  CHECK(alias.shares_storage(a));
  const Tensor d = a.detach();
  CHECK_FALSE(d.is_same(a));
  CHECK(d.shares_storage(a));
  const Tensor c = a.clone();
  CHECK_FALSE(c.is_same(a));
  CHECK_FALSE(c.shares_storage(a));
  check_exact(c, {3}, {1, 2, 3});
  {
    NoGradGuard no_grad;
    Tensor(d).fill_(9);  // detach shares data: a changes too, the clone does not
  }
  check_exact(a, {3}, {9, 9, 9});
  check_exact(c, {3}, {1, 2, 3});
  CHECK_FALSE(Tensor().defined());
  CHECK_FALSE(Tensor().shares_storage(a));
  CHECK(Tensor().is_same(Tensor()));
}

TEST_CASE("metadata: dim, size with negative dims, numel, strides of a fresh tensor") {
  const Tensor x = zeros({2, 3, 4});
  CHECK(x.dim() == 3);
  CHECK(x.size(-1) == 4);
  CHECK(x.size(0) == 2);
  CHECK(x.numel() == 24);
  CHECK(x.strides() == Shape{12, 4, 1});
  CHECK(scalar_tensor(1.0).dim() == 0);
  CHECK(scalar_tensor(1.0).numel() == 1);
  CHECK(zeros({2, 0, 3}).numel() == 0);
  CHECK(x.device() == Device::cpu());
  CHECK(x.dtype() == DType::Float32);
}
