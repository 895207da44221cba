/// \file
/// \brief In-place ops through views re-base the base's history (PyTorch's CopySlices), and views
/// whose data changed follow their base. Expected gradients are derived by hand.
#include "helpers.h"

using namespace ember;
using ember::test::allclose;

using ember::test::leaf;

TEST_CASE("mul_ through a slice scales the gradient of that region of the base") {
  Tensor x = leaf({1, 2, 3, 4});
  const Tensor c = tensor({1, 10, 100, 1000}, DType::Float64);
  Tensor b = x * 1.0;
  Tensor v = slice(b, 0, 1, 3);
  v.mul_(3.0);
  CHECK(allclose(b, tensor({1, 6, 9, 4}, DType::Float64)));
  sum(b * c).backward();
  CHECK(allclose(x.grad(), tensor({1, 30, 300, 1000}, DType::Float64)));  // c * [1, 3, 3, 1]
}

TEST_CASE("copy_ of a leaf into a slice of zeros sends the gradient to that leaf") {
  Tensor w = leaf({5, 7});
  Tensor b = zeros({4}, DType::Float64);
  Tensor v = slice(b, 0, 1, 3);
  v.copy_(w);
  CHECK(b.requires_grad());
  const Tensor c = tensor({1, 2, 3, 4}, DType::Float64);
  sum(b * c).backward();
  CHECK(allclose(w.grad(), tensor({2, 3}, DType::Float64)));
}

TEST_CASE("a view made before its base changed in place follows the new base") {
  Tensor x = leaf({1, 2, 3, 4});
  Tensor b = x * 1.0;
  Tensor v = slice(b, 0, 0, 2);
  b.mul_(2.0);
  CHECK(allclose(v, tensor({2, 4}, DType::Float64)));
  sum(v).backward();
  CHECK(allclose(x.grad(), tensor({2, 2, 0, 0}, DType::Float64)));
}

TEST_CASE("add_ through one view is seen through an overlapping view") {
  Tensor x = leaf({1, 2, 3, 4});
  Tensor y = leaf({10, 20});
  Tensor b = x * 1.0;
  Tensor v1 = slice(b, 0, 0, 2);
  Tensor v2 = slice(b, 0, 1, 3);
  v1.add_(y);
  const Tensor c = tensor({5, 7}, DType::Float64);
  CHECK(allclose(v2, tensor({22, 3}, DType::Float64)));
  sum(v2 * c).backward();
  // v2 = [x1 + y1, x2]: d/dy = [0, 5], d/dx = [0, 5, 7, 0]
  CHECK(allclose(y.grad(), tensor({0, 5}, DType::Float64)));
  CHECK(allclose(x.grad(), tensor({0, 5, 7, 0}, DType::Float64)));
}

TEST_CASE("in-place on a transposed view of a matrix passes gradcheck") {
  manual_seed(3);
  Tensor x = randn({3, 4}, DType::Float64).requires_grad_();
  Tensor w = randn({4, 3}, DType::Float64).requires_grad_();
  auto r = gradcheck(
      [](const std::vector<Tensor>& in) {
        Tensor b = in[0] * 1.0;
        Tensor t = transpose(b, 0, 1);  // [4, 3] view of b
        t.mul_(in[1]);
        return b;
      },
      {x, w});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("x.add_(x) doubles the gradient path") {
  Tensor x = leaf({1, 2});
  Tensor b = x * 3.0;
  b.add_(b);
  sum(b).backward();
  CHECK(allclose(x.grad(), tensor({6, 6}, DType::Float64)));
}

TEST_CASE("in-place misuse through views is refused with a clear error") {
  Tensor x = leaf({1, 2, 3});
  CHECK_THROWS_EMBER(slice(x, 0, 0, 2).add_(ones({2}, DType::Float64)), "a view of a leaf tensor");
  Tensor e = expand(zeros({1}, DType::Float64), {3});
  CHECK_THROWS_EMBER(e.fill_(1.0), "share memory");
}
