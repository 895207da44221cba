/// \file
/// \brief First autograd checks: a hand-derived gradient and gradcheck.
#include "helpers.h"

using namespace ember;
using ember::test::allclose;

TEST_CASE("d/dx sum(x * x + 3x) = 2x + 3") {
  Tensor x = tensor({1, -2, 0.5});
  x.requires_grad_();
  sum(x * x + 3.0 * x).backward();
  CHECK(allclose(x.grad(), tensor({5, -1, 4})));
}

TEST_CASE("gradcheck of softmax(x @ w) passes") {
  manual_seed(1);
  Tensor x = randn({3, 4}, DType::Float64).requires_grad_();
  Tensor w = randn({4, 5}, DType::Float64).requires_grad_();
  auto r = gradcheck([](const std::vector<Tensor>& in) { return softmax(matmul(in[0], in[1]), -1); }, {x, w});
  CHECK_MESSAGE(r.ok, r.message);
}
