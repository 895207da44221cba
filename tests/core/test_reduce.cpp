/// \file
/// \brief Reductions (sum, mean, var, max, min, logsumexp, norm, argmax, argmin), scans (cumsum,
/// cumprod) and softmax/log_softmax against naive loops that gather each output's group of input
/// elements by multi-index, over many dim sets (non-adjacent, negative, keepdim), including the
/// large-value rows that a naive exp would overflow.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include "reference.h"

using namespace ember;
using test::check_exact;
using test::check_values;

namespace {

/// Input elements grouped by output element, for a reduction of `shape` over `dims` (any sign).
struct Groups {
  Shape out_shape;                           // with keepdim = false
  Shape kept_shape;                          // with keepdim = true
  std::vector<std::vector<double>> members;  // in increasing input order
};

Groups group(const Tensor& x, std::vector<std::int64_t> dims) {
  const Shape& shape = x.shape();
  const auto nd = static_cast<std::int64_t>(shape.size());
  std::vector<bool> reduced(shape.size(), dims.empty());
  for (auto d : dims) reduced[d < 0 ? d + nd : d] = true;
  Groups g;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    g.kept_shape.push_back(reduced[d] ? 1 : shape[d]);
    if (!reduced[d]) g.out_shape.push_back(shape[d]);
  }
  g.members.resize(test::count(g.kept_shape));
  const auto v = x.to_vector<double>();
  for (std::int64_t k = 0; k < x.numel(); ++k) {
    auto idx = test::unravel(k, shape);
    for (std::size_t d = 0; d < shape.size(); ++d)
      if (reduced[d]) idx[d] = 0;
    g.members[test::ravel(idx, g.kept_shape)].push_back(v[k]);
  }
  return g;
}

using Reducer = std::function<double(const std::vector<double>&)>;

double r_sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
double r_mean(const std::vector<double>& v) { return r_sum(v) / v.size(); }
double r_max(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }
double r_min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
double r_var(const std::vector<double>& v, bool unbiased) {
  const double m = r_mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return s / (v.size() - (unbiased ? 1 : 0));
}
double r_lse(const std::vector<double>& v) {
  const double m = r_max(v);
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}
double r_norm(const std::vector<double>& v, double p) {
  double s = 0;
  for (double x : v) s += std::pow(std::abs(x), p);
  return std::pow(s, 1 / p);
}

std::vector<double> reduce_groups(const Groups& g, const Reducer& f) {
  std::vector<double> out;
  for (const auto& m : g.members) out.push_back(f(m));
  return out;
}

struct ReduceCase {
  std::string name;
  std::function<Tensor(const Tensor&, const std::vector<std::int64_t>&, bool)> op;
  Reducer ref;
};

std::vector<ReduceCase> reduce_cases() {
  return {
      {"sum", [](const Tensor& x, const auto& d, bool k) { return sum(x, d, k); }, r_sum},
      {"mean", [](const Tensor& x, const auto& d, bool k) { return mean(x, d, k); }, r_mean},
      {"max", [](const Tensor& x, const auto& d, bool k) { return max(x, d, k); }, r_max},
      {"min", [](const Tensor& x, const auto& d, bool k) { return min(x, d, k); }, r_min},
      {"var unbiased", [](const Tensor& x, const auto& d, bool k) { return var(x, d, true, k); },
       [](const auto& v) { return r_var(v, true); }},
      {"var biased", [](const Tensor& x, const auto& d, bool k) { return var(x, d, false, k); },
       [](const auto& v) { return r_var(v, false); }},
      {"logsumexp", [](const Tensor& x, const auto& d, bool k) { return logsumexp(x, d, k); }, r_lse},
      {"norm 1", [](const Tensor& x, const auto& d, bool k) { return norm(x, 1.0, d, k); },
       [](const auto& v) { return r_norm(v, 1); }},
      {"norm 2", [](const Tensor& x, const auto& d, bool k) { return norm(x, 2.0, d, k); },
       [](const auto& v) { return r_norm(v, 2); }},
      {"norm 3", [](const Tensor& x, const auto& d, bool k) { return norm(x, 3.0, d, k); },
       [](const auto& v) { return r_norm(v, 3); }},
  };
}

const std::vector<std::vector<std::int64_t>> kDimSets = {
    {}, {0}, {3}, {1, 2}, {0, 2}, {1, 3}, {0, 1, 3}, {-1}, {-3, -1}, {2, 0}, {0, 1, 2, 3},
};

/// Restores the thread count when a test that changes it ends.
struct ThreadCountGuard {
  int saved = get_num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

}  // namespace

TEST_CASE("reductions over every dim set of a 4-D tensor match naive loops") {
  const Tensor x64 = test::random_normal({3, 4, 5, 6}, 700);
  const Tensor x32 = x64.to(DType::Float32);
  for (const auto& c : reduce_cases()) {
    for (const auto& dims : kDimSets) {
      for (bool keepdim : {false, true}) {
        CAPTURE(c.name);
        CAPTURE(shape_str(dims));
        CAPTURE(keepdim);
        const Groups g = group(x64, dims);
        const Shape want_shape = keepdim ? g.kept_shape : g.out_shape;
        const auto want = reduce_groups(g, c.ref);
        check_values(c.op(x64, dims, keepdim), want_shape, want, 1e-12, 1e-12);
        const Tensor r32 = c.op(x32, dims, keepdim);
        CHECK(r32.dtype() == DType::Float32);
        check_values(r32, want_shape, reduce_groups(group(x32, dims), c.ref), 1e-5, 1e-6);
      }
    }
  }
}

TEST_CASE("reductions of non-contiguous inputs and of large tensors (parallel paths)") {
  ThreadCountGuard guard;
  set_num_threads(2);
  const Tensor t = permute(test::random_normal({4, 5, 6}, 701), {2, 0, 1});
  for (const auto& dims : std::vector<std::vector<std::int64_t>>{{0}, {1}, {0, 2}, {}}) {
    CAPTURE(shape_str(dims));
    const Groups g = group(t, dims);
    check_values(sum(t, dims), g.out_shape, reduce_groups(g, r_sum));
    check_values(max(t, dims, true), g.kept_shape, reduce_groups(g, r_max));
  }
  // [7, 5000, 3] over dim 1: 21 outputs split across threads mid-row; [3, 40000] over dim 1.
  const Tensor big = test::random_normal({7, 5000, 3}, 702);
  for (const auto& dims : std::vector<std::vector<std::int64_t>>{{1}, {0, 2}, {0, 1}, {2}}) {
    CAPTURE(shape_str(dims));
    const Groups g = group(big, dims);
    check_values(sum(big, dims), g.out_shape, reduce_groups(g, r_sum), 1e-10, 1e-10);
    check_values(min(big, dims), g.out_shape, reduce_groups(g, r_min));
    check_values(mean(big, dims), g.out_shape, reduce_groups(g, r_mean), 1e-10, 1e-12);
  }
  const Tensor wide = test::random_normal({3, 40000}, 703, DType::Float32);
  const Groups gw = group(wide, {1});
  check_values(sum(wide, {1}), {3}, reduce_groups(gw, r_sum), 1e-5, 1e-4);
  check_values(max(wide, {-1}), {3}, reduce_groups(gw, r_max));
  check_values(logsumexp(wide, {1}), {3}, reduce_groups(gw, r_lse), 1e-6);
}

TEST_CASE("integer and bool reductions are exact, mean of integers is Float32") {
  const Tensor i = from_vector(std::vector<std::int64_t>{(1ll << 53) + 1, 1, -5, 7, 2, 3}, {2, 3});
  CHECK(sum(i).dtype() == DType::Int64);
  CHECK(sum(i).to_vector<std::int64_t>()[0] == (1ll << 53) + 1 + 1 - 5 + 7 + 2 + 3);
  CHECK(sum(i, {0}).to_vector<std::int64_t>() == std::vector<std::int64_t>{(1ll << 53) + 8, 3, -2});
  CHECK(max(i, {1}).to_vector<std::int64_t>() == std::vector<std::int64_t>{(1ll << 53) + 1, 7});
  CHECK(min(i).to_vector<std::int64_t>() == std::vector<std::int64_t>{-5});
  const Tensor small = tensor({{1, 2}, {4, 8}}, DType::Int64);
  CHECK(mean(small).dtype() == DType::Float32);
  check_exact(mean(small, {1}), {2}, {1.5, 6});
  const Tensor b = tensor({{1, 0, 1}, {1, 1, 1}}, DType::Bool);
  CHECK(sum(b).dtype() == DType::Int64);
  check_exact(sum(b, {1}), {2}, {2, 3});
  check_exact(max(b, {1}), {2}, {1, 1});
  check_exact(min(b, {1}), {2}, {0, 1});
}

TEST_CASE("reduction edge cases: NaN propagates, empty sums are 0, a scalar reduces to itself") {
  check_exact(max(tensor({1, NAN, 3})), {}, {NAN});
  check_exact(min(tensor({NAN, 1, 3})), {}, {NAN});
  check_exact(sum(tensor({1, NAN})), {}, {NAN});
  check_exact(sum(zeros({0, 3}), {0}), {3}, {0, 0, 0});
  check_exact(sum(zeros({0})), {}, {0});
  check_exact(sum(scalar_tensor(2.5)), {}, {2.5});
  check_exact(max(scalar_tensor(2.5), {0}), {}, {2.5});
  check_exact(sum(full({2, 3}, 1.5), {1}, true), {2, 1}, {4.5, 4.5});
}

TEST_CASE("logsumexp is stable: (1000, 1000) -> 1000 + ln 2, all -inf -> -inf") {
  for (DType dt : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dt));
    check_values(logsumexp(tensor({1000, 1000}, dt), {0}), {}, {1000 + std::log(2.0)},
                 dt == DType::Float64 ? 1e-15 : 1e-7);
    check_values(logsumexp(tensor({-1000, -1000}, dt), {0}), {}, {-1000 + std::log(2.0)},
                 dt == DType::Float64 ? 1e-15 : 1e-7);
    check_values(logsumexp(tensor({{1e4, 0}, {-1e4, -1e4}}, dt), {1}, true), {2, 1}, {1e4, -1e4 + std::log(2.0)}, 1e-7);
    check_exact(logsumexp(tensor({-INFINITY, -INFINITY}, dt), {0}), {}, {-INFINITY});
    check_exact(logsumexp(tensor({-INFINITY, 0.0}, dt), {0}), {}, {0.0});
  }
}

TEST_CASE("argmax and argmin return the first extreme index along a dim") {
  const Tensor x = test::random_normal({3, 4, 5}, 704);
  for (std::int64_t dim : {0, 1, 2, -1, -2}) {
    for (bool keepdim : {false, true}) {
      CAPTURE(dim);
      CAPTURE(keepdim);
      // Group by output, remembering positions along dim.
      const Groups g = group(x, {dim});
      std::vector<double> amax, amin;
      for (const auto& m : g.members) {
        amax.push_back(static_cast<double>(std::max_element(m.begin(), m.end()) - m.begin()));
        amin.push_back(static_cast<double>(std::min_element(m.begin(), m.end()) - m.begin()));
      }
      const Tensor r = argmax(x, dim, keepdim);
      CHECK(r.dtype() == DType::Int64);
      check_exact(r, keepdim ? g.kept_shape : g.out_shape, amax);
      check_exact(argmin(x, dim, keepdim), keepdim ? g.kept_shape : g.out_shape, amin);
    }
  }
  // Ties: the first index wins; NaN counts as the extreme.
  check_exact(argmax(tensor({{1, 3, 3, 0}, {2, 2, 2, 2}}), 1), {2}, {1, 0});
  check_exact(argmin(tensor({{1, 0, 3, 0}, {5, 4, 4, 9}}), 1), {2}, {1, 1});
  check_exact(argmax(tensor({1, NAN, 5}), 0), {}, {1});
  check_exact(argmax(tensor({{1, 7}, {9, 2}}, DType::Int64), 0), {2}, {1, 0});
}

TEST_CASE("cumsum and cumprod along each dim match running loops") {
  const Tensor x = test::random_uniform({3, 4, 5}, 705, 0.5, 1.5);
  for (std::int64_t dim : {0, 1, 2, -1}) {
    CAPTURE(dim);
    const auto v = x.to_vector<double>();
    const int d = dim < 0 ? static_cast<int>(dim + 3) : static_cast<int>(dim);
    std::vector<double> cs(v.size()), cp(v.size());
    for (std::int64_t k = 0; k < x.numel(); ++k) {
      auto idx = test::unravel(k, x.shape());
      double s = 0, p = 1;
      const std::int64_t upto = idx[d];
      for (std::int64_t j = 0; j <= upto; ++j) {
        idx[d] = j;
        s += v[test::ravel(idx, x.shape())];
        p *= v[test::ravel(idx, x.shape())];
      }
      cs[k] = s;
      cp[k] = p;
    }
    check_values(cumsum(x, dim), {3, 4, 5}, cs, 1e-13, 1e-13);
    check_values(cumprod(x, dim), {3, 4, 5}, cp, 1e-13, 1e-13);
    check_values(
        cumsum(transpose(x, 0, 2), 2 - d), {5, 4, 3},
        [&] {
          std::vector<double> t;
          for (std::int64_t k = 0; k < 60; ++k) {
            const auto i = test::unravel(k, {5, 4, 3});
            t.push_back(cs[test::ravel({i[2], i[1], i[0]}, {3, 4, 5})]);
          }
          return t;
        }(),
        1e-13, 1e-13);
  }
  const Tensor i = tensor({{1, 2, 3}, {4, 5, 6}}, DType::Int64);
  CHECK(cumsum(i, 1).dtype() == DType::Int64);
  check_exact(cumsum(i, 1), {2, 3}, {1, 3, 6, 4, 9, 15});
  check_exact(cumprod(i, 0), {2, 3}, {1, 2, 3, 4, 10, 18});
  check_exact(cumsum(tensor({1, 1, 0}, DType::Bool), 0), {3}, {1, 2, 2});
}

TEST_CASE("softmax and log_softmax along first, middle and last dims match the naive formula") {
  const Tensor x = test::random_normal({3, 4, 5}, 706, DType::Float64, 3.0);
  for (std::int64_t dim : {0, 1, 2, -1, -2}) {
    CAPTURE(dim);
    const Groups g = group(x, {dim});
    // Naive: y_i = exp(x_i) / sum_j exp(x_j) (safe here: |x| is small), laid back out in x's order.
    const int d = dim < 0 ? static_cast<int>(dim + 3) : static_cast<int>(dim);
    const auto v = x.to_vector<double>();
    std::vector<double> sm(v.size()), lsm(v.size());
    for (std::int64_t k = 0; k < x.numel(); ++k) {
      auto idx = test::unravel(k, x.shape());
      double s = 0;
      for (std::int64_t j = 0; j < x.shape()[d]; ++j) {
        auto jdx = idx;
        jdx[d] = j;
        s += std::exp(v[test::ravel(jdx, x.shape())]);
      }
      sm[k] = std::exp(v[k]) / s;
      lsm[k] = v[k] - std::log(s);
    }
    check_values(softmax(x, dim), x.shape(), sm, 1e-13, 1e-15);
    check_values(log_softmax(x, dim), x.shape(), lsm, 1e-13, 1e-13);
    check_values(softmax(x.to(DType::Float32), dim), x.shape(), sm, 1e-5, 1e-6);
    check_values(log_softmax(x.to(DType::Float32), dim), x.shape(), lsm, 1e-5, 1e-5);
    // A non-contiguous input gives the permuted result.
    const Tensor t = transpose(x, 0, 2);
    const Tensor st = softmax(t, 2 - d);
    check_values(transpose(st, 0, 2), x.shape(), sm, 1e-13, 1e-15);
  }
}

TEST_CASE("softmax and log_softmax of rows with huge values stay finite and exact") {
  const double e1 = std::exp(-1.0);
  for (DType dt : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dt));
    const Tensor x = tensor({{1e4, 1e4 - 1, 0}, {-1e4, 0, 1e4}, {-1e4, -1e4, -1e4}}, dt);
    const double tol = dt == DType::Float64 ? 1e-14 : 1e-6;
    check_values(softmax(x, 1), {3, 3}, {1 / (1 + e1), e1 / (1 + e1), 0, 0, 0, 1, 1.0 / 3, 1.0 / 3, 1.0 / 3}, tol,
                 1e-30);
    const double l = std::log1p(e1);
    check_values(log_softmax(x, 1), {3, 3},
                 {-l, -1 - l, -1e4 - l, -2e4, -1e4, 0, -std::log(3.0), -std::log(3.0), -std::log(3.0)}, tol, tol);
    // The same along the middle dim of a 3-D tensor.
    const Tensor y = unsqueeze(transpose(x, 0, 1), 0);  // [1, 3, 3], softmax over dim 1 = rows of x
    check_values(transpose(squeeze(softmax(y, 1), {0}), 0, 1), {3, 3},
                 {1 / (1 + e1), e1 / (1 + e1), 0, 0, 0, 1, 1.0 / 3, 1.0 / 3, 1.0 / 3}, tol, 1e-30);
  }
  // -inf entries (masked positions) get exactly 0.
  check_exact(softmax(tensor({-INFINITY, 0.0, -INFINITY}), 0), {3}, {0, 1, 0});
  check_exact(log_softmax(tensor({-INFINITY, 0.0}), 0), {2}, {-INFINITY, 0});
}

TEST_CASE("a 0-d tensor reduces over dim 0 or -1 to itself (and its gradient is 1)") {
  const Tensor s = scalar_tensor(2.0, DType::Float64);
  check_exact(sum(s, {0}), {}, {2});
  check_exact(sum(s, {-1}, true), {}, {2});
  check_exact(mean(s, {0}), {}, {2});
  check_exact(max(s, {0}), {}, {2});
  check_exact(min(s, {-1}), {}, {2});
  check_exact(norm(scalar_tensor(-3.0, DType::Float64), 2.0, {0}), {}, {3});
  check_exact(var(s, {0}, false), {}, {0});
  check_values(logsumexp(s, {0}), {}, {2});
  check_exact(argmax(s, 0), {}, {0});
  check_exact(cumsum(s, 0), {}, {2});
  check_exact(softmax(s, 0), {}, {1});
  Tensor x = scalar_tensor(2.0, DType::Float64);
  x.requires_grad_();
  (sum(x, {0}) + mean(x, {-1}) + max(x, {0})).backward();
  check_exact(x.grad(), {}, {3});
}
