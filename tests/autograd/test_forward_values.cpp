/// \file
/// \brief Forward values of composite and edge-case ops of the functional API against numbers
/// computed by hand, and gradients at points where gradcheck cannot look (kinks, ties, zeros).
#include <cmath>
#include <limits>

#include "helpers.h"

using namespace ember;
using ember::test::allclose;

namespace {
constexpr DType F64 = DType::Float64;
Tensor leaf(std::initializer_list<double> v) {
  Tensor t = tensor(v, F64);
  t.requires_grad_();
  return t;
}
Tensor i64(std::vector<std::int64_t> v, const Shape& s) { return from_vector(v, s); }
}  // namespace

TEST_CASE("values: var, mean, logsumexp, norm") {
  const Tensor x = tensor({1, 2, 3, 4}, F64);
  CHECK(var(x).item() == doctest::Approx(5.0 / 3.0).epsilon(1e-12));
  CHECK(var(x, {}, false).item() == doctest::Approx(1.25).epsilon(1e-12));
  const Tensor m = tensor({{1, 2, 3}, {2, 4, 9}}, F64);
  CHECK(allclose(var(m, {1}), tensor({1, 13}, F64), 1e-12));  // rows: mean 2 -> 2/2; mean 5 -> 26/2
  CHECK(allclose(var(m, {0}, false, true), tensor({{0.25, 1, 9}}, F64), 1e-12));
  CHECK(allclose(mean(m, {0}), tensor({1.5, 3, 6}, F64), 1e-12));

  CHECK(logsumexp(tensor({0, std::log(3.0)}, F64), {0}).item() == doctest::Approx(std::log(4.0)).epsilon(1e-12));
  // Stable for large inputs: 1000 + ln 2, not inf.
  CHECK(logsumexp(tensor({1000, 1000}, F64), {0}).item() == doctest::Approx(1000 + std::log(2.0)).epsilon(1e-12));
  CHECK(logsumexp(tensor({-1000, -1000}, F64), {0}).item() == doctest::Approx(-1000 + std::log(2.0)).epsilon(1e-12));
  const double ninf = -std::numeric_limits<double>::infinity();
  CHECK(logsumexp(tensor({ninf, ninf}, F64), {0}).item() == ninf);
  const Tensor l = logsumexp(tensor({{0, 0}, {1, 1}}, F64), {1}, true);
  CHECK(l.shape() == Shape{2, 1});
  CHECK(allclose(l, from_vector({std::log(2.0), 1 + std::log(2.0)}, {2, 1}, F64), 1e-12));

  const Tensor v = tensor({3, -4}, F64);
  CHECK(norm(v).item() == doctest::Approx(5.0).epsilon(1e-12));
  CHECK(norm(v, 1.0).item() == doctest::Approx(7.0).epsilon(1e-12));
  CHECK(norm(v, 3.0).item() == doctest::Approx(4.497941445275415).epsilon(1e-12));
  CHECK(allclose(norm(tensor({{3, 4}, {0, -2}}, F64), 2.0, {1}), tensor({5, 2}, F64), 1e-12));
  CHECK_THROWS_EMBER(norm(v, 0.5), "norm");
}

TEST_CASE("values: softmax and log_softmax") {
  const Tensor s = softmax(tensor({1, 2, 3}, F64), 0);
  CHECK(allclose(s, tensor({0.09003057317038046, 0.24472847105479767, 0.6652409557748219}, F64), 1e-12));
  // Stable for large logits.
  CHECK(allclose(softmax(tensor({1000, 1000}, F64), 0), tensor({0.5, 0.5}, F64), 1e-12));
  CHECK(allclose(log_softmax(tensor({1000, 0}, F64), 0), tensor({0, -1000}, F64), 1e-9, 1e-9));
  // Along dim 0 of a matrix: each column sums to 1.
  const Tensor c = softmax(tensor({{0, 1}, {0, 1}}, F64), 0);
  CHECK(allclose(c, tensor({{0.5, 0.5}, {0.5, 0.5}}, F64), 1e-12));
}

TEST_CASE("values: unary activations at known points") {
  const Tensor x = tensor({-1, 1}, F64);
  CHECK(allclose(gelu(x), tensor({-0.15865525393145707, 0.8413447460685429}, F64), 1e-7));
  CHECK(allclose(gelu(tensor({-2, 1}, F64), true), tensor({-0.04540230591222494, 0.8411919906082768}, F64), 1e-7));
  CHECK(allclose(elu(x), tensor({std::exp(-1.0) - 1, 1}, F64), 1e-12));
  CHECK(allclose(elu(x, 0.5), tensor({0.5 * (std::exp(-1.0) - 1), 1}, F64), 1e-12));
  CHECK(allclose(softplus(tensor({0, 2}, F64)), tensor({std::log(2.0), 2.1269280110429727}, F64), 1e-12));
  CHECK(allclose(silu(tensor({1}, F64)), tensor({0.7310585786300049}, F64), 1e-12));
  CHECK(allclose(clamp(tensor({-2, 0.1, 3}, F64), -0.5, 0.5), tensor({-0.5, 0.1, 0.5}, F64)));
  CHECK(allclose(rsqrt(tensor({4, 0.25}, F64)), tensor({0.5, 2}, F64), 1e-12));
  CHECK(allclose(pow(tensor({2, 9}, F64), tensor({3, 0.5}, F64)), tensor({8, 3}, F64), 1e-12));
}

TEST_CASE("values: cumsum and cumprod") {
  CHECK(allclose(cumsum(tensor({{1, 2, 3}, {4, 5, 6}}, F64), 1), tensor({{1, 3, 6}, {4, 9, 15}}, F64)));
  CHECK(allclose(cumsum(tensor({{1, 2, 3}, {4, 5, 6}}, F64), 0), tensor({{1, 2, 3}, {5, 7, 9}}, F64)));
  CHECK(allclose(cumprod(tensor({2, 0, 3, 4}, F64), 0), tensor({2, 0, 0, 0}, F64)));
  CHECK(allclose(cumprod(tensor({{1, 2}, {3, 4}}, F64), -1), tensor({{1, 2}, {3, 12}}, F64)));
}

TEST_CASE("values: where, masked_fill, matmul of vectors") {
  const Tensor cond = gt(from_vector({1.0, -1.0}, {2, 1}, DType::Float32), scalar_tensor(0.0));  // [2,1]
  CHECK(allclose(where(cond, tensor({1, 2, 3}, F64), tensor({7}, F64)), tensor({{1, 2, 3}, {7, 7, 7}}, F64)));
  const Tensor mask = gt(tensor({0, 1, 0}), scalar_tensor(0.5));
  CHECK(allclose(masked_fill(tensor({{1, 2, 3}, {4, 5, 6}}, F64), mask, -9), tensor({{1, -9, 3}, {4, -9, 6}}, F64)));
  CHECK_THROWS_EMBER(masked_fill(tensor({1, 2, 3}, F64), gt(ones({2, 3}), scalar_tensor(0.0)), 0), "masked_fill");

  const Tensor a = tensor({1, 2, 3}, F64), b = tensor({4, -5, 6}, F64);
  const Tensor dot = matmul(a, b);
  CHECK(dot.dim() == 0);
  CHECK(dot.item() == doctest::Approx(12.0));
  const Tensor m = tensor({{1, 0}, {0, 1}, {1, 1}}, F64);
  CHECK(allclose(matmul(a, m), tensor({4, 5}, F64)));
  CHECK(allclose(matmul(transpose(m, 0, 1), a), tensor({4, 5}, F64)));
  CHECK(matmul(ones({2, 3, 4}, F64), tensor({1, 1, 1, 1}, F64)).shape() == Shape{2, 3});
  CHECK(matmul(tensor({1, 1, 1}, F64), ones({2, 3, 4}, F64)).shape() == Shape{2, 4});
  CHECK_THROWS_EMBER(matmul(tensor({1, 2}, F64), m), "cannot multiply");
}

TEST_CASE("values: split, chunk, stack, cat, flatten, narrow, slice with step") {
  const Tensor x = reshape(arange(14.0, F64), {2, 7});
  const auto parts = chunk(x, 3, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == Shape{2, 3});
  CHECK(parts[1].shape() == Shape{2, 3});
  CHECK(parts[2].shape() == Shape{2, 1});
  CHECK(allclose(parts[2], from_vector({6.0, 13.0}, {2, 1}, F64)));
  const auto s = split(x, 4, 1);
  REQUIRE(s.size() == 2);
  CHECK(allclose(s[1], tensor({{4, 5, 6}, {11, 12, 13}}, F64)));
  CHECK(chunk(ones({6}), 4).size() == 3);  // size ceil(6/4) = 2, as PyTorch

  const Tensor st = stack({tensor({1, 2}, F64), tensor({3, 4}, F64)}, 1);
  CHECK(allclose(st, tensor({{1, 3}, {2, 4}}, F64)));
  CHECK_THROWS_EMBER(stack({tensor({1, 2}), tensor({1, 2, 3})}), "stack");
  CHECK(allclose(cat({from_vector({1.0}, {1, 1}, F64), tensor({{2, 3}}, F64)}, -1), tensor({{1, 2, 3}}, F64)));

  CHECK(flatten(ones({2, 3, 4})).shape() == Shape{24});
  CHECK(flatten(ones({2, 3, 4, 5}), 1, 2).shape() == Shape{2, 12, 5});
  CHECK(flatten(scalar_tensor(3.0)).shape() == Shape{1});
  CHECK_THROWS_EMBER(flatten(ones({2, 3}), 1, 0), "flatten");

  CHECK(allclose(narrow(x, 1, 2, 3), tensor({{2, 3, 4}, {9, 10, 11}}, F64)));
  CHECK(allclose(narrow(x, 1, -2, 2), tensor({{5, 6}, {12, 13}}, F64)));
  CHECK_THROWS_EMBER(narrow(x, 1, 5, 3), "narrow");
  CHECK(allclose(slice(x, 1, 1, 7, 3), tensor({{1, 4}, {8, 11}}, F64)));
}

TEST_CASE("values: indexing ops with repeated indices") {
  const Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, F64);
  CHECK(allclose(index_select(x, 1, i64({2, 0, 2}, {3})), tensor({{3, 1, 3}, {6, 4, 6}}, F64)));
  CHECK(allclose(gather(x, 1, i64({2, 2, 0, 1}, {2, 2})), tensor({{3, 3}, {4, 5}}, F64)));
  const Tensor sa = scatter_add(zeros({2, 3}, F64), 1, i64({0, 0, 2, 1}, {2, 2}), tensor({{1, 2}, {3, 4}}, F64));
  CHECK(allclose(sa, tensor({{3, 0, 0}, {0, 4, 3}}, F64)));
  CHECK(allclose(one_hot(i64({2, 0}, {2})), tensor({{0, 0, 1}, {1, 0, 0}})));
  CHECK(one_hot(i64({1}, {1}), 4).shape() == Shape{1, 4});

  // Gradients with repeats: each repeat adds one more copy of the incoming gradient.
  Tensor w = leaf({10, 20, 30});
  sum(index_select(w, 0, i64({2, 0, 2, 2}, {4}))).backward();
  CHECK(allclose(w.grad(), tensor({1, 0, 3}, F64)));
  Tensor v = leaf({1, 2, 3});
  Tensor src = leaf({5, 6, 7, 8});
  sum(scatter_add(v, 0, i64({1, 1, 0, 1}, {4}), src) * tensor({1, 10, 100}, F64)).backward();
  CHECK(allclose(v.grad(), tensor({1, 10, 100}, F64)));
  CHECK(allclose(src.grad(), tensor({10, 10, 1, 10}, F64)));
}

TEST_CASE("values: tril, triu, pad") {
  const Tensor x = reshape(arange(1.0, 10.0, 1.0, F64), {3, 3});
  CHECK(allclose(tril(x), tensor({{1, 0, 0}, {4, 5, 0}, {7, 8, 9}}, F64)));
  CHECK(allclose(tril(x, -1), tensor({{0, 0, 0}, {4, 0, 0}, {7, 8, 0}}, F64)));
  CHECK(allclose(triu(x, 1), tensor({{0, 2, 3}, {0, 0, 6}, {0, 0, 0}}, F64)));
  CHECK(allclose(triu(x, -1), tensor({{1, 2, 3}, {4, 5, 6}, {0, 8, 9}}, F64)));
  CHECK(allclose(pad(tensor({{1, 2}}, F64), {1, 0, 0, 1}, 7), tensor({{7, 1, 2}, {7, 7, 7}}, F64)));
  CHECK(allclose(pad(x, {-1, 0, 0, -2}), tensor({{2, 3}}, F64)));
  CHECK(allclose(pad(x, {1, -2}), tensor({{0, 1}, {0, 4}, {0, 7}}, F64)));
  CHECK_THROWS_EMBER(pad(x, {-2, -2}), "negative");

  // Gradient of pad: the padded region gets none, a cropped region gets zeros.
  Tensor y = leaf({1, 2, 3});
  sum(pad(y, {-1, 2}, 5.0) * tensor({1, 2, 3, 4}, F64)).backward();
  CHECK(allclose(y.grad(), tensor({0, 1, 2}, F64)));
}

TEST_CASE("gradients at kinks, ties and zeros (where central differences cannot look)") {
  SUBCASE("max over ties splits the gradient evenly") {
    Tensor x = leaf({1, 3, 3, 2});
    max(x).backward();
    CHECK(allclose(x.grad(), tensor({0, 0.5, 0.5, 0}, F64)));
  }
  SUBCASE("min along a dim with a tie in one row") {
    Tensor x = tensor({{1, 1, 4}, {2, 0, 5}}, F64);
    x.requires_grad_();
    sum(min(x, {1}) * tensor({2, 3}, F64)).backward();
    CHECK(allclose(x.grad(), tensor({{1, 1, 0}, {0, 3, 0}}, F64)));
  }
  SUBCASE("maximum / minimum ties give each side half") {
    Tensor a = leaf({1, 2, 3});
    Tensor b = leaf({1, 5, 0});
    sum(maximum(a, b)).backward();
    CHECK(allclose(a.grad(), tensor({0.5, 0, 1}, F64)));
    CHECK(allclose(b.grad(), tensor({0.5, 1, 0}, F64)));
    a.set_grad(Tensor());
    b.set_grad(Tensor());
    sum(minimum(a, b)).backward();
    CHECK(allclose(a.grad(), tensor({0.5, 1, 0}, F64)));
    CHECK(allclose(b.grad(), tensor({0.5, 0, 1}, F64)));
  }
  SUBCASE("abs and relu have gradient 0 at 0") {
    Tensor x = leaf({-2, 0, 3});
    sum(abs(x)).backward();
    CHECK(allclose(x.grad(), tensor({-1, 0, 1}, F64)));
    x.set_grad(Tensor());
    sum(relu(x)).backward();
    CHECK(allclose(x.grad(), tensor({0, 0, 1}, F64)));
  }
  SUBCASE("clamp: gradient 1 inside (boundaries included), 0 outside") {
    Tensor x = leaf({-1, -0.5, 0, 0.5, 1});
    sum(clamp(x, -0.5, 0.5)).backward();
    CHECK(allclose(x.grad(), tensor({0, 1, 1, 1, 0}, F64)));
  }
  SUBCASE("norm of a zero vector has gradient 0, not NaN") {
    Tensor x = leaf({0, 0, 0});
    norm(x).backward();
    CHECK(allclose(x.grad(), tensor({0, 0, 0}, F64)));
  }
  SUBCASE("pow(a, b) at a = 0: d/db taken as 0") {
    Tensor a = leaf({0, 2});
    Tensor b = leaf({2, 3});
    sum(pow(a, b)).backward();
    CHECK(allclose(a.grad(), tensor({0, 12}, F64)));                // b a^(b-1)
    CHECK(allclose(b.grad(), tensor({0, 8 * std::log(2.0)}, F64), 1e-12));  // a^b ln a
  }
  SUBCASE("cumprod through a zero: hand-derived gradient") {
    // y = [x0, x0 x1, x0 x1 x2, x0 x1 x2 x3], L = sum(y) with x = [2, 0, 3, 4]:
    // dL/dx0 = 1 + x1 + x1 x2 + x1 x2 x3 = 1, dL/dx1 = x0 (1 + x2 + x2 x3) = 2 (1 + 3 + 12) = 32,
    // dL/dx2 = x0 x1 (1 + x3) = 0, dL/dx3 = x0 x1 x2 = 0.
    Tensor x = leaf({2, 0, 3, 4});
    sum(cumprod(x, 0)).backward();
    CHECK(allclose(x.grad(), tensor({1, 32, 0, 0}, F64), 1e-12));
  }
  SUBCASE("cumprod through two zeros") {
    // x = [2, 0, 3, 0, 5]: dL/dx1 = x0 (1 + x2 + x2 x3 + x2 x3 x4) = 2 (1 + 3) = 8, dL/dx3 = x0 x1 x2 (1 + x4) = 0.
    Tensor x = leaf({2, 0, 3, 0, 5});
    sum(cumprod(x, 0)).backward();
    CHECK(allclose(x.grad(), tensor({1, 8, 0, 0, 0}, F64), 1e-12));
  }
  SUBCASE("cumsum gradient: suffix sums of the output gradient") {
    Tensor x = leaf({1, 2, 3});
    sum(cumsum(x, 0) * tensor({1, 10, 100}, F64)).backward();
    CHECK(allclose(x.grad(), tensor({111, 110, 100}, F64)));
  }
}
