/// \file
/// \brief First checks of the tensor core against hand-computed values.
#include "helpers.h"

using namespace ember;
using ember::test::allclose;

TEST_CASE("add broadcasts a row over a matrix") {
  const Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  const Tensor b = tensor({10, 20, 30});
  CHECK(allclose(a + b, tensor({{11, 22, 33}, {14, 25, 36}})));
}

TEST_CASE("matmul of 2x3 by 3x2 equals the hand product") {
  const Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  const Tensor b = tensor({{7, 8}, {9, 10}, {11, 12}});
  CHECK(allclose(matmul(a, b), tensor({{58, 64}, {139, 154}})));
  CHECK(allclose(matmul(transpose(b, 0, 1), transpose(a, 0, 1)), tensor({{58, 139}, {64, 154}})));
}

TEST_CASE("matmul shape mismatch names the op and the shapes") {
  CHECK_THROWS_EMBER(matmul(zeros({2, 3}), zeros({4, 5})), "matmul: cannot multiply [2, 3] by [4, 5] (3 != 4)");
}
