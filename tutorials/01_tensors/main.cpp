// Tutorial 01: tensors are shape + strides + offset over one block of memory.
// Run: tutorial_01_tensors [--short]. The page tutorials/01_tensors/README.md explains each step.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// "[2, 3]" for printing shapes and strides.
std::string str(const Shape& s) { return shape_str(s); }

// The fastest of `repeats` runs of f, in seconds: the minimum filters out noise from other processes.
template <class F>
double fastest(int repeats, F&& f) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
    best = std::min(best, dt.count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  tutorial::Claims claims;

  tutorial::section("1. Shape and strides");
  // arange gives 0..5 in one contiguous block; a 2x3 view of it steps 3 elements per row, 1 per column.
  const Tensor a = reshape(arange(6, DType::Float32), {2, 3});
  std::printf("a = %s\n  shape %s, strides %s, offset %lld\n", a.str().c_str(), str(a.shape()).c_str(),
              str(a.strides()).c_str(), static_cast<long long>(a.offset()));
  claims.check(a.strides() == Shape{3, 1}, "a row-major 2x3 tensor has strides [3, 1]");
  claims.check(a.is_contiguous(), "so it is contiguous");

  tutorial::section("2. Views share memory");
  // transpose swaps shape and strides: nothing moves, element (i, j) now reads memory at j*3 + i.
  const Tensor at = transpose(a, 0, 1);
  std::printf("a.T: shape %s, strides %s\n", str(at.shape()).c_str(), str(at.strides()).c_str());
  claims.check(at.strides() == Shape{1, 3} && at.shares_storage(a), "a.T has strides [1, 3] and shares a's storage");
  claims.check(!at.is_contiguous(), "a.T is not contiguous: walking it row by row jumps through memory");

  // A slice with a step is a view too: column 0 and 2 of every row = offset 0, stride 2.
  const Tensor cols = slice(a, 1, 0, 3, 2);
  std::printf("a[:, ::2] = %s  strides %s\n", cols.str().c_str(), str(cols.strides()).c_str());
  claims.check(cols.strides() == Shape{3, 2} && cols.shares_storage(a), "a[:, ::2] is a view with strides [3, 2]");

  // Writing through a view writes the original: a view is another window on the same memory.
  Tensor scratch = a.clone();
  Tensor row1 = select(scratch, 0, 1);  // scratch[1], a view
  row1.fill_(-1);
  std::printf("after scratch[1].fill_(-1): %s\n", scratch.str().c_str());
  claims.check(scratch.to_vector<float>() == std::vector<float>{0, 1, 2, -1, -1, -1},
               "filling the view scratch[1] changed scratch itself");

  // view() never copies, so it refuses geometry that no strides can express; reshape() copies instead.
  bool view_refused = false;
  try {
    (void)view(at, {6});
  } catch (const Error& e) {
    view_refused = true;
    std::printf("view(a.T, {6}) throws: %s\n", e.what());
  }
  claims.check(view_refused, "a.T cannot be flattened by view(): its elements are not in reading order in memory");
  const Tensor flat = reshape(at, {6});
  claims.check(!flat.shares_storage(a) && flat.to_vector<float>() == std::vector<float>{0, 3, 1, 4, 2, 5},
               "reshape(a.T, {6}) copies, and reads a.T row by row: 0 3 1 4 2 5");
  claims.check(reshape(a, {3, 2}).shares_storage(a), "reshape of a contiguous tensor is a view (no copy)");

  tutorial::section("3. Broadcasting");
  // NumPy's rule: align shapes on the right; a dim of size 1 stretches to match. expand() does it as a
  // view with stride 0, so the "stretched" copies cost no memory.
  const Tensor col = reshape(arange(3, DType::Float32), {3, 1});         // [3, 1]: 0 1 2
  const Tensor row = reshape(arange(4, DType::Float32) * 10.0, {1, 4});  // [1, 4]: 0 10 20 30
  const Tensor grid = col + row;                                         // [3, 4]
  std::printf("[3, 1] + [1, 4] = %s\n", grid.str().c_str());
  const Tensor stretched = expand(row, {3, 4});
  std::printf("expand([1, 4] -> [3, 4]) strides %s\n", str(stretched.strides()).c_str());
  claims.check(stretched.strides() == Shape{0, 1}, "expand stretches with stride 0: every row reads the same memory");
  // Check against the rule written as a loop: grid[i][j] = col[i] + row[j].
  bool grid_ok = grid.shape() == Shape{3, 4};
  const auto g = grid.to_vector<float>();
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j) grid_ok = grid_ok && g[i * 4 + j] == static_cast<float>(i + 10 * j);
  claims.check(grid_ok, "[3, 1] + [1, 4] gives [3, 4] with grid[i][j] = col[i] + row[j]");
  bool mismatch_throws = false;
  try {
    (void)(ones({2, 3}) + ones({4}));
  } catch (const Error& e) {
    mismatch_throws = true;
    std::printf("[2, 3] + [4] throws: %s\n", e.what());
  }
  claims.check(mismatch_throws, "shapes that do not broadcast throw ember::Error naming both");

  tutorial::section("4. What contiguous() costs");
  // A view is a few integers; contiguous() on a non-contiguous tensor copies every element, and reading
  // a transposed matrix row by row touches memory with a stride of n floats (poor cache use).
  const std::int64_t n = quick ? 512 : 2048;
  const int repeats = quick ? 3 : 5;
  const Tensor x = randn({n, n});
  Tensor xt;
  const double t_view = fastest(repeats * 10, [&] { xt = transpose(x, 0, 1); });
  Tensor copy;
  const double t_copy = fastest(repeats, [&] { copy = xt.contiguous(); });
  // For contrast, copying the same bytes in memory order (clone of the contiguous x).
  const double t_clone = fastest(repeats, [&] { (void)x.clone(); });
  const double bytes = 2.0 * n * n * 4;  // read + write
  std::printf(
      "%lldx%lld float32: transpose view %.2f us; contiguous() of the transpose %.2f ms (%.1f GB/s);\n"
      "  clone() of x, in memory order, %.2f ms (%.1f GB/s)\n",
      static_cast<long long>(n), static_cast<long long>(n), t_view * 1e6, t_copy * 1e3, bytes / t_copy / 1e9,
      t_clone * 1e3, bytes / t_clone / 1e9);
  claims.check(t_copy > 10 * t_view, "the copy costs far more than the view (at least 10x here)");
  claims.check(copy.is_contiguous() && !copy.shares_storage(x), "contiguous() of a transposed tensor is a new block");
  claims.check(x.contiguous().is_same(x), "contiguous() of a contiguous tensor is the tensor itself: free");
  // The copy holds the transpose: copy[i][j] == x[j][i]. Spot-check a few elements.
  const auto xv = x.to_vector<float>(), cv = copy.to_vector<float>();
  bool transposed_ok = true;
  for (std::int64_t i = 0; i < n; i += n / 8)
    for (std::int64_t j = 1; j < n; j += n / 4) transposed_ok = transposed_ok && cv[i * n + j] == xv[j * n + i];
  claims.check(transposed_ok, "copy[i][j] == x[j][i]");

  return claims.exit_code();
}
