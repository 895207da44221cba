/// \file
/// \brief cross_entropy and mse_loss against independent forms: plain double loops for the values,
/// autograd through log_softmax/gather/mean for the gradients, central differences (gradcheck), and the
/// closed-form oracles of technique notes §14.
#include <cmath>
#include <vector>

#include "helpers.h"
#include "train/loss.h"

using namespace ember;
using ember::test::allclose;
using ember::test::max_abs_diff;

namespace {

/// The loss in plain double loops: mean over rows with y != ignore of
/// −((1 − ε) log p_y + ε mean_j log p_j), log p_j = z_j − log Σ_k exp z_k (no shift: small logits).
double naive_loss(const std::vector<double>& z, const std::vector<std::int64_t>& y, std::int64_t V, std::int64_t ignore,
                  double eps) {
  double total = 0.0;
  std::int64_t valid = 0;
  for (std::size_t r = 0; r < y.size(); ++r) {
    if (y[r] == ignore) continue;
    double s = 0.0;
    for (std::int64_t j = 0; j < V; ++j) s += std::exp(z[r * V + j]);
    double mean_logp = 0.0;
    for (std::int64_t j = 0; j < V; ++j) mean_logp += (z[r * V + j] - std::log(s)) / static_cast<double>(V);
    const double logp_y = z[r * V + y[r]] - std::log(s);
    total += -((1.0 - eps) * logp_y + eps * mean_logp);
    ++valid;
  }
  return valid ? total / static_cast<double>(valid) : 0.0;
}

/// The same loss composed from differentiable ember ops (its gradient comes from their backwards).
Tensor composed_loss(const Tensor& logits, const std::vector<std::int64_t>& y, std::int64_t ignore, double eps) {
  const std::int64_t V = logits.shape().back();
  const Tensor lp = reshape(log_softmax(logits, -1), {-1, V});
  std::vector<std::int64_t> safe(y);
  std::vector<double> keep(y.size());
  double valid = 0;
  for (std::size_t r = 0; r < y.size(); ++r) {
    keep[r] = y[r] == ignore ? 0.0 : 1.0;
    if (y[r] == ignore) safe[r] = 0;
    valid += keep[r];
  }
  const Shape col{static_cast<std::int64_t>(y.size()), 1};
  const Tensor picked = reshape(gather(lp, 1, from_vector(safe, col)), {-1});
  const Tensor row = (1.0 - eps) * picked + eps * mean(lp, {1});
  return -sum(row * from_vector(keep, {static_cast<std::int64_t>(y.size())}, logits.dtype())) / valid;
}

Tensor targets(const std::vector<std::int64_t>& y, const Shape& s) { return from_vector(y, s); }

}  // namespace

TEST_CASE("cross_entropy: values match plain loops, gradients match the composed ops") {
  struct Row {
    const char* name;
    Shape logits;
    std::vector<std::int64_t> y;
    double eps;
    DType dtype;
  };
  const std::vector<Row> rows = {
      {"[5, 7] f64", {5, 7}, {0, 6, 3, 3, 1}, 0.0, DType::Float64},
      {"[5, 7] f64 ignore + smoothing", {5, 7}, {2, -100, 6, -100, 0}, 0.1, DType::Float64},
      {"[2, 3, 4] f64 ignore", {2, 3, 4}, {3, 0, -100, 1, 2, 2}, 0.0, DType::Float64},
      {"[2, 3, 4] f64 smoothing 0.3", {2, 3, 4}, {3, 0, 1, 1, 2, 2}, 0.3, DType::Float64},
      {"[6, 11] f32 smoothing", {6, 11}, {10, 0, 5, -100, 7, 1}, 0.2, DType::Float32},
      {"[2, 3, 9] f32", {2, 3, 9}, {8, 0, 4, -100, 2, 2}, 0.0, DType::Float32},
  };
  for (const auto& c : rows) {
    SUBCASE(c.name) {
      manual_seed(11);
      const bool f64 = c.dtype == DType::Float64;
      Tensor x = randn(c.logits, c.dtype, Device::cpu(), 0.0, 2.0);
      x.requires_grad_();
      const Shape ts(c.logits.begin(), c.logits.end() - 1);
      Tensor loss = cross_entropy(x, targets(c.y, ts), -100, c.eps);
      CHECK(loss.dim() == 0);
      CHECK(loss.dtype() == c.dtype);
      const double expect = naive_loss(x.to_vector<double>(), c.y, c.logits.back(), -100, c.eps);
      CHECK(loss.item() == doctest::Approx(expect).epsilon(f64 ? 1e-12 : 1e-6));
      loss.backward();
      const Tensor fused = x.grad();

      Tensor x2 = x.detach().clone();
      x2.requires_grad_();
      composed_loss(x2, c.y, -100, c.eps).backward();
      CHECK(max_abs_diff(fused, x2.grad()) < (f64 ? 1e-14 : 1e-7));
    }
  }
}

TEST_CASE("cross_entropy: gradcheck in Float64 with ignored positions and label smoothing") {
  struct Row {
    const char* name;
    Shape logits;
    std::vector<std::int64_t> y;
    std::int64_t ignore;
    double eps;
  };
  const std::vector<Row> rows = {
      {"[4, 5]", {4, 5}, {1, 4, 0, 2}, -100, 0.0},
      {"[4, 5] ignore -100, smoothing 0.1", {4, 5}, {1, -100, 0, 2}, -100, 0.1},
      {"[2, 3, 6] ignore 0, smoothing 0.25", {2, 3, 6}, {5, 0, 3, 0, 1, 2}, 0, 0.25},
      {"[3, 1] one class", {3, 1}, {0, 0, 0}, -100, 0.0},
      {"[2, 4] smoothing 1", {2, 4}, {3, 1}, -100, 1.0},
  };
  for (const auto& c : rows) {
    SUBCASE(c.name) {
      manual_seed(5);
      Tensor x = randn(c.logits, DType::Float64);
      x.requires_grad_();
      const Tensor t = targets(c.y, Shape(c.logits.begin(), c.logits.end() - 1));
      const auto r =
          gradcheck([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, c.ignore, c.eps); }, {x});
      CHECK_MESSAGE(r.ok, r.message);
    }
  }
}

TEST_CASE("cross_entropy: oracles of technique notes section 14") {
  SUBCASE("uniform logits give ln V (V = 50257 -> 10.8249)") {
    const std::int64_t V = 50257;
    const Tensor x = zeros({3, V});
    const Tensor loss = cross_entropy(x, targets({0, 17, V - 1}, {3}));
    CHECK(loss.item() == doctest::Approx(std::log(50257.0)).epsilon(1e-6));
    CHECK(loss.item() == doctest::Approx(10.8249).epsilon(1e-5));
    // Shifting every logit of a row by a constant changes nothing.
    CHECK(cross_entropy(full({3, V}, 123.5), targets({0, 17, V - 1}, {3})).item() ==
          doctest::Approx(std::log(50257.0)).epsilon(1e-6));
  }
  SUBCASE("logits (1000, 0): loss 0 for y = 0, 1000 for y = 1, no overflow") {
    for (DType dt : {DType::Float32, DType::Float64}) {
      Tensor x = tensor({{1000.0, 0.0}}, dt);
      x.requires_grad_();
      const Tensor l0 = cross_entropy(x, targets({0}, {1}));
      CHECK(std::isfinite(l0.item()));
      CHECK(l0.item() == doctest::Approx(0.0));
      const Tensor l1 = cross_entropy(x, targets({1}, {1}));
      CHECK(l1.item() == doctest::Approx(1000.0).epsilon(1e-12));
      l1.backward();
      // softmax = (1, e^-1000) -> gradient (1, -1) for y = 1
      CHECK(allclose(x.grad(), tensor({{1.0, -1.0}}, dt), 0, 1e-12));
    }
  }
  SUBCASE("every gradient row sums to 0 (with and without smoothing)") {
    for (double eps : {0.0, 0.15}) {
      manual_seed(3);
      Tensor x = randn({7, 13}, DType::Float64, Device::cpu(), 0.0, 3.0);
      x.requires_grad_();
      cross_entropy(x, randint(0, 13, {7}), -100, eps).backward();
      const auto row_sums = sum(x.grad(), {1}).to_vector<double>();
      for (double s : row_sums) CHECK(std::abs(s) < 1e-14);
    }
  }
  SUBCASE("the gradient is (softmax - onehot) / N_valid") {
    Tensor x =
        tensor({{0.0, std::log(3.0)}, {5.0, 5.0}, {1.0, 2.0}}, DType::Float64);  // softmax (1/4, 3/4), (1/2, 1/2)
    x.requires_grad_();
    cross_entropy(x, targets({1, 0, -100}, {3})).backward();
    CHECK(allclose(x.grad(), tensor({{0.125, -0.125}, {-0.25, 0.25}, {0.0, 0.0}}, DType::Float64), 0, 1e-14));
  }
}

TEST_CASE("cross_entropy: masked (-inf) logits, layouts and dtypes") {
  SUBCASE("-inf logits of other classes give a finite loss and a zero gradient there") {
    const double inf = INFINITY;
    Tensor x = tensor({{-inf, 0.0, 0.0}, {1.0, -inf, 1.0}}, DType::Float64);
    x.requires_grad_();
    const Tensor loss = cross_entropy(x, targets({1, 2}, {2}));
    CHECK(loss.item() == doctest::Approx(std::log(2.0)).epsilon(1e-14));
    loss.backward();
    CHECK(allclose(x.grad(), tensor({{0.0, -0.25, 0.25}, {0.25, 0.0, -0.25}}, DType::Float64), 0, 1e-15));
  }
  SUBCASE("[B, T, V] equals the flattened [B T, V]") {
    manual_seed(8);
    const Tensor x = randn({2, 5, 6});
    const Tensor y = randint(0, 6, {2, 5});
    CHECK(cross_entropy(x, y, -100, 0.1).item() ==
          doctest::Approx(cross_entropy(reshape(x, {10, 6}), reshape(y, {10}), -100, 0.1).item()).epsilon(1e-7));
  }
  SUBCASE("non-contiguous logits get their gradient through the copy") {
    manual_seed(9);
    Tensor base = randn({6, 4}, DType::Float64);  // used as its transpose [4, 6]
    base.requires_grad_();
    const std::vector<std::int64_t> y{5, 0, 2, 3};
    cross_entropy(transpose(base, 0, 1), targets(y, {4})).backward();
    Tensor b2 = base.detach().clone();
    b2.requires_grad_();
    composed_loss(transpose(b2, 0, 1), y, -100, 0.0).backward();
    CHECK(max_abs_diff(base.grad(), b2.grad()) < 1e-14);
  }
  SUBCASE("Float16 logits are computed in Float32") {
    const Tensor x = tensor({{1.0, 2.0, 3.0}}).to(DType::Float16);
    const Tensor loss = cross_entropy(x, targets({2}, {1}));
    CHECK(loss.dtype() == DType::Float32);
    CHECK(loss.item() == doctest::Approx(std::log(std::exp(-2.0) + std::exp(-1.0) + 1.0)).epsilon(1e-6));
  }
  SUBCASE("without grad mode no graph is recorded") {
    Tensor x = randn({2, 3});
    x.requires_grad_();
    NoGradGuard ng;
    CHECK(cross_entropy(x, targets({0, 1}, {2})).grad_fn() == nullptr);
  }
}

TEST_CASE("cross_entropy: an all-ignored batch gives 0 and a zero gradient") {
  Tensor x = randn({3, 4}, DType::Float64);
  x.requires_grad_();
  const Tensor loss = cross_entropy(x, targets({-100, -100, -100}, {3}), -100, 0.1);
  CHECK(loss.item() == 0.0);
  loss.backward();
  CHECK(allclose(x.grad(), zeros({3, 4}, DType::Float64), 0, 0));
  // An empty batch too.
  CHECK(cross_entropy(zeros({0, 4}), from_vector(std::vector<std::int64_t>{}, {0})).item() == 0.0);
}

TEST_CASE("cross_entropy: bad input throws naming the problem") {
  const Tensor x = zeros({2, 3, 5});
  CHECK_THROWS_EMBER(cross_entropy(x, targets({0, 1, 2, 3, 7, 4}, {2, 3})),
                     "target 7 at position [1, 1] is out of range [0, 5)");
  CHECK_THROWS_EMBER(cross_entropy(zeros({3, 5}), targets({0, -1, 2}, {3})), "target -1 at position [1]");
  CHECK_THROWS_EMBER(cross_entropy(zeros({3, 5}), targets({0, 1}, {2})),
                     "target of shape [2] does not match logits of shape [3, 5] (expected target [3])");
  CHECK_THROWS_EMBER(cross_entropy(zeros({2, 3, 5}), targets({0, 1, 2}, {3})), "expected target [2, 3]");
  CHECK_THROWS_EMBER(cross_entropy(zeros({5}), targets({0}, {1})), "logits must be [N, V] or [B, T, V], got shape [5]");
  CHECK_THROWS_EMBER(cross_entropy(zeros({3, 5}), zeros({3})), "target must hold Int64 class indices, got float32");
  CHECK_THROWS_EMBER(cross_entropy(zeros({3, 5}), targets({0, 1, 2}, {3}), -100, 1.5),
                     "label_smoothing must be in [0, 1], got 1.5");
  CHECK_THROWS_EMBER(cross_entropy(Tensor(), targets({0}, {1})), "cross_entropy");
}

TEST_CASE("mse_loss: value, gradient and shape check") {
  const Tensor a = tensor({1.0, 2.0, 4.0}, DType::Float64), b = tensor({0.5, 2.0, 1.0}, DType::Float64);
  CHECK(mse_loss(a, b).item() == doctest::Approx((0.25 + 0.0 + 9.0) / 3.0).epsilon(1e-15));
  manual_seed(2);
  Tensor x = randn({2, 3}, DType::Float64), y = randn({2, 3}, DType::Float64);
  x.requires_grad_();
  y.requires_grad_();
  const auto r = gradcheck([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); }, {x, y});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK_THROWS_EMBER(mse_loss(zeros({2, 3}), zeros({3})),
                     "mse_loss: input of shape [2, 3] and target of shape [3] differ");
}
