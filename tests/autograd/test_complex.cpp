/// \file
/// \brief The Complex helpers against std::complex<double> computed element by element (with NumPy broadcasting
/// done by index here), their gradients against central differences in Float64, and their input checks.
#include <complex>
#include <functional>
#include <string>
#include <vector>

#include "autograd/complex.h"
#include "helpers.h"

using namespace ember;
using namespace ember::test;

namespace {

using cd = std::complex<double>;

/// A random Complex of this shape in Float64.
Complex random_complex(const Shape& s) { return {randn(s, DType::Float64), randn(s, DType::Float64)}; }

/// z as std::complex values, row-major.
std::vector<cd> values(const Complex& z) {
  const auto re = z.re.contiguous().to_vector<double>(), im = z.im.contiguous().to_vector<double>();
  std::vector<cd> v(re.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = {re[i], im[i]};
  return v;
}

/// max |got − want| over all elements.
double max_error(const std::vector<cd>& got, const std::vector<cd>& want) {
  REQUIRE(got.size() == want.size());
  double e = 0;
  for (std::size_t i = 0; i < got.size(); ++i) e = std::max(e, std::abs(got[i] - want[i]));
  return e;
}

/// f applied to a [2, 3] and b [3] (b broadcast along the rows), element by element.
std::vector<cd> broadcast_ref(const std::vector<cd>& a, const std::vector<cd>& b, const std::function<cd(cd, cd)>& f) {
  std::vector<cd> out(6);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) out[i * 3 + j] = f(a[i * 3 + j], b[j]);
  return out;
}

/// A gradcheck function of (re, im) inputs: the outputs' real and imaginary parts side by side.
Tensor flat(const Complex& z) { return cat({z.re, z.im}, -1); }

}  // namespace

TEST_CASE("complex add, sub, mul and div with broadcasting equal std::complex") {
  manual_seed(21);
  const Complex a = random_complex({2, 3}), b = random_complex({3});
  const auto va = values(a), vb = values(b);
  CHECK(max_error(values(a + b), broadcast_ref(va, vb, [](cd x, cd y) { return x + y; })) < 1e-15);
  CHECK(max_error(values(a - b), broadcast_ref(va, vb, [](cd x, cd y) { return x - y; })) < 1e-15);
  CHECK(max_error(values(a * b), broadcast_ref(va, vb, [](cd x, cd y) { return x * y; })) < 1e-14);
  CHECK(max_error(values(b * a), broadcast_ref(va, vb, [](cd x, cd y) { return y * x; })) < 1e-14);
  CHECK(max_error(values(a / b), broadcast_ref(va, vb, [](cd x, cd y) { return x / y; })) < 1e-12);
}

TEST_CASE("complex times a real tensor equals std::complex times a real number") {
  manual_seed(22);
  const Complex a = random_complex({2, 3});
  const Tensor r = randn({3}, DType::Float64);
  const auto vr = r.to_vector<double>();
  const std::vector<cd> vb(vr.begin(), vr.end());
  const auto want = broadcast_ref(values(a), vb, [](cd x, cd y) { return x * y.real(); });
  CHECK(max_error(values(a * r), want) < 1e-15);
  CHECK(max_error(values(r * a), want) < 1e-15);
}

TEST_CASE("conj, abs2, exp, reciprocal, real and sum equal std::complex") {
  manual_seed(23);
  const Complex z = random_complex({2, 3});
  const auto v = values(z);
  std::vector<cd> conj_ref, exp_ref, rec_ref, abs2_ref, real_ref;
  cd total = 0;
  for (cd x : v) {
    conj_ref.push_back(std::conj(x));
    exp_ref.push_back(std::exp(x));
    rec_ref.push_back(1.0 / x);
    abs2_ref.push_back(std::norm(x));  // std::norm is |x|²
    real_ref.push_back(x.real());
    total += x;
  }
  const Tensor zero = zeros({2, 3}, DType::Float64);
  CHECK(max_error(values(conj(z)), conj_ref) == 0.0);
  CHECK(max_error(values(exp(z)), exp_ref) < 1e-14);
  CHECK(max_error(values(reciprocal(z)), rec_ref) < 1e-12);
  CHECK(max_error(values(Complex{abs2(z), zero}), abs2_ref) < 1e-14);
  CHECK(max_error(values(Complex{real(z), zero}), real_ref) == 0.0);
  CHECK(max_error(values(sum(z)), {total}) < 1e-14);
  // Sum over dim 0 with keepdim: [1, 3], column sums.
  const Complex s0 = sum(z, {0}, true);
  CHECK(s0.re.shape() == Shape{1, 3});
  CHECK(max_error(values(s0), {v[0] + v[3], v[1] + v[4], v[2] + v[5]}) < 1e-15);
}

TEST_CASE("every complex helper's gradient matches central differences") {
  manual_seed(24);
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  const auto A = [](const std::vector<Tensor>& x) { return Complex{x[0], x[1]}; };
  const auto B = [](const std::vector<Tensor>& x) { return Complex{x[2], x[3]}; };
  const std::vector<std::pair<std::string, Fn>> binary = {
      {"add", [&](const auto& x) { return flat(A(x) + B(x)); }},
      {"sub", [&](const auto& x) { return flat(A(x) - B(x)); }},
      {"mul", [&](const auto& x) { return flat(A(x) * B(x)); }},
      {"div", [&](const auto& x) { return flat(A(x) / B(x)); }},
      {"mul by real", [&](const auto& x) { return flat(A(x) * x[2]); }},
      {"real times complex", [&](const auto& x) { return flat(x[3] * A(x)); }},
  };
  for (const auto& [name, fn] : binary) {
    CAPTURE(name);
    // a [2, 3] and b [3]: the gradient of b is summed over the broadcast rows.
    std::vector<Tensor> xs{randn({2, 3}, DType::Float64), randn({2, 3}, DType::Float64), randn({3}, DType::Float64),
                           randn({3}, DType::Float64)};
    for (Tensor& x : xs) x.requires_grad_();
    const GradcheckResult r = gradcheck(fn, xs);
    CHECK_MESSAGE(r.ok, r.message);
  }
  const std::vector<std::pair<std::string, Fn>> unary = {
      {"conj", [&](const auto& x) { return flat(conj(A(x))); }},
      {"abs2", [&](const auto& x) { return abs2(A(x)); }},
      {"exp", [&](const auto& x) { return flat(exp(A(x))); }},
      {"reciprocal", [&](const auto& x) { return flat(reciprocal(A(x))); }},
      {"real", [&](const auto& x) { return real(A(x)); }},
      {"sum over dim 1", [&](const auto& x) { return flat(sum(A(x), {1})); }},
  };
  for (const auto& [name, fn] : unary) {
    CAPTURE(name);
    std::vector<Tensor> xs{randn({2, 3}, DType::Float64), randn({2, 3}, DType::Float64)};
    for (Tensor& x : xs) x.requires_grad_();
    const GradcheckResult r = gradcheck(fn, xs);
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("complex helpers reject mismatched parts and shapes that do not broadcast") {
  const Complex good{randn({2, 3}), randn({2, 3})};
  const Complex ragged{randn({2, 3}), randn({3})};
  CHECK_THROWS_EMBER(good * ragged, "complex mul: the real part float32 [2, 3] and the imaginary part float32 [3]");
  CHECK_THROWS_EMBER(exp(ragged), "complex exp: the real part");
  CHECK_THROWS_EMBER(abs2(Complex{randn({2}), randn({2}, DType::Float64)}),
                     "abs2: the real part float32 [2] and "
                     "the imaginary part float64 [2]");
  CHECK_THROWS_EMBER(conj(Complex{randn({2}), Tensor()}), "conj");
  CHECK_THROWS_EMBER((good + Complex{randn({4}), randn({4})}), "complex add");
  CHECK_THROWS_EMBER((good / Complex{randn({2, 2}), randn({2, 2})}), "complex div");
  CHECK_THROWS_EMBER(good * randn({4}), "complex mul");
  CHECK_THROWS_EMBER(reciprocal(ragged), "complex reciprocal");
  CHECK_THROWS_EMBER(sum(ragged), "complex sum");
}
