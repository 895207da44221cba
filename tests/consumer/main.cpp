// Uses the installed ember through its umbrella header; checks results against plain loops.
#include <cmath>
#include <cstdio>
#include <vector>

#include "ember.h"  // from <prefix>/include/ember

int main() {
  using namespace ember;
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    std::printf("[%s] %s\n", ok ? "ok" : "FAILED", what);
    failures += ok ? 0 : 1;
  };

  std::printf("ember %s (%s build)\n", version().c_str(), build_type().c_str());

  // Matrix product against the triple loop.
  const std::vector<double> av = {1, 2, 3, 4, 5, 6}, bv = {7, 8, 9, 10, 11, 12};
  const Tensor a = from_vector(av, {2, 3}), b = from_vector(bv, {3, 2});
  const auto c = matmul(a, b).to_vector<double>();
  bool mm_ok = c.size() == 4;
  for (int i = 0; i < 2 && mm_ok; ++i)
    for (int j = 0; j < 2; ++j) {
      double s = 0;
      for (int k = 0; k < 3; ++k) s += av[i * 3 + k] * bv[k * 2 + j];
      mm_ok = mm_ok && c[i * 2 + j] == s;
    }
  check(mm_ok, "matmul([2, 3], [3, 2]) equals the triple loop");

  // A gradient through the installed autograd: d/dx sum(x^3) = 3 x^2.
  const Tensor x = from_vector({0.5, -1.5, 2.0}, {3}, DType::Float64).requires_grad_();
  sum(pow(x, 3.0)).backward();
  const auto g = x.grad().to_vector<double>();
  bool grad_ok = g.size() == 3;
  for (int i = 0; i < 3 && grad_ok; ++i) {
    const double xi = x.detach().to_vector<double>()[i];
    grad_ok = std::abs(g[i] - 3 * xi * xi) < 1e-12;
  }
  check(grad_ok, "d/dx sum(x^3) = 3 x^2");

  // Errors cross the library boundary as ember::Error.
  bool threw = false;
  try {
    (void)matmul(a, a);
  } catch (const Error&) {
    threw = true;
  }
  check(threw, "a shape error throws ember::Error");

  return failures == 0 ? 0 : 1;
}
