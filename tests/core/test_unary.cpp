/// \file
/// \brief Every unary op against the std:: formula applied to each element in double, in Float64
/// (to ~1e-13) and Float32 (to a few float ulps), on contiguous and non-contiguous inputs, plus the
/// numerically delicate points (softplus at +-100, sigmoid in the tails, log1p/expm1 near 0).
#include <cmath>
#include <functional>
#include <string>

#include "reference.h"

using namespace ember;
using test::check_exact;
using test::check_values;

namespace {

struct UnaryCase {
  std::string name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
  double low, high;  // input range
};

double sigmoid_ref(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<UnaryCase> cases() {
  const double k = std::sqrt(2 / M_PI);
  return {
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, -5, 5},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.01, 10},
      {"log1p", [](const Tensor& x) { return log1p(x); }, [](double x) { return std::log1p(x); }, -0.9, 3},
      {"expm1", [](const Tensor& x) { return expm1(x); }, [](double x) { return std::expm1(x); }, -3, 3},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0, 10},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.01, 10},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, -3, 3},
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, -3, 3},
      {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }, -3, 3},
      {"sin", [](const Tensor& x) { return sin(x); }, [](double x) { return std::sin(x); }, -6, 6},
      {"cos", [](const Tensor& x) { return cos(x); }, [](double x) { return std::cos(x); }, -6, 6},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -4, 4},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_ref, -8, 8},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, -3, 3},
      {"gelu (erf)", [](const Tensor& x) { return gelu(x); },
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, -4, 4},
      {"gelu (tanh)", [](const Tensor& x) { return gelu(x, true); },
       [k](double x) { return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x))); }, -4, 4},
      {"silu", [](const Tensor& x) { return silu(x); }, [](double x) { return x * sigmoid_ref(x); }, -6, 6},
      {"softplus", [](const Tensor& x) { return softplus(x); },
       [](double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }, -6, 6},
      {"elu", [](const Tensor& x) { return elu(x, 0.7); }, [](double x) { return x > 0 ? x : 0.7 * (std::exp(x) - 1); },
       -4, 4},
      {"pow 3", [](const Tensor& x) { return pow(x, 3.0); }, [](double x) { return x * x * x; }, -3, 3},
      {"pow 0.5", [](const Tensor& x) { return pow(x, 0.5); }, [](double x) { return std::sqrt(x); }, 0, 5},
      {"pow -2", [](const Tensor& x) { return pow(x, -2.0); }, [](double x) { return 1 / (x * x); }, 0.5, 3},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.8); },
       [](double x) { return x < -0.5 ? -0.5 : (x > 0.8 ? 0.8 : x); }, -2, 2},
  };
}

std::vector<double> map_values(const Tensor& x, const std::function<double(double)>& f) {
  std::vector<double> r;
  for (double v : x.to_vector<double>()) r.push_back(f(v));
  return r;
}

}  // namespace

TEST_CASE("every unary op matches std:: math elementwise (Float64, Float32, non-contiguous)") {
  std::uint64_t seed = 500;
  for (const auto& c : cases()) {
    CAPTURE(c.name);
    // Float64: the same formula in the same precision, so only rounding-order differences remain.
    const Tensor x64 = test::random_uniform({7, 9}, seed++, c.low, c.high);
    const Tensor y64 = c.op(x64);
    CHECK(y64.dtype() == DType::Float64);
    check_values(y64, {7, 9}, map_values(x64, c.ref), 1e-13, 1e-15);
    // Float32: compared with the exact value of the float input.
    const Tensor x32 = x64.to(DType::Float32);
    const Tensor y32 = c.op(x32);
    CHECK(y32.dtype() == DType::Float32);
    check_values(y32, {7, 9}, map_values(x32, c.ref), 3e-6, 1e-6);
    // Non-contiguous inputs: a transposed view and a strided slice.
    const Tensor t = transpose(x64, 0, 1);
    check_values(c.op(t), {9, 7}, map_values(t, c.ref), 1e-13, 1e-15);
    const Tensor s = slice(slice(x32, 1, 1, 9, 3), 0, 0, 7, 2);
    check_values(c.op(s), {4, 3}, map_values(s, c.ref), 3e-6, 1e-6);
  }
}

TEST_CASE("softplus, sigmoid, silu and elu stay finite and accurate far into the tails") {
  for (DType dt : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dt));
    const Tensor x = tensor({-100, -30, 0, 30, 100, 1000}, dt);
    // softplus(x) = max(x, 0) + log1p(e^-|x|): the overflow-free closed form.
    check_values(softplus(x), {6},
                 {std::log1p(std::exp(-100.0)), std::log1p(std::exp(-30.0)), std::log(2.0),
                  30 + std::log1p(std::exp(-30.0)), 100, 1000},
                 1e-6, 1e-30);
    check_values(
        sigmoid(x), {6},
        {std::exp(-100.0) / (1 + std::exp(-100.0)), 1 / (1 + std::exp(30.0)), 0.5, 1 / (1 + std::exp(-30.0)), 1, 1},
        1e-6, 1e-30);
    check_values(silu(tensor({-100, 100}, dt)), {2}, {-100 * std::exp(-100.0), 100}, 1e-6, 1e-30);
    check_values(elu(tensor({-100, 100}, dt), 2.0), {2}, {-2, 100}, 1e-12);
  }
}

TEST_CASE("log1p and expm1 are accurate near 0, special values follow IEEE") {
  const Tensor tiny = tensor({1e-10, -1e-12, 1e-300}, DType::Float64);
  check_values(log1p(tiny), {3}, {1e-10 - 5e-21, -1e-12 - 5e-25, 1e-300}, 1e-15, 0);
  check_values(expm1(tiny), {3}, {1e-10 + 5e-21, -1e-12 + 5e-25, 1e-300}, 1e-15, 0);
  check_exact(log(tensor({0.0, -1.0, INFINITY})), {3}, {-INFINITY, NAN, INFINITY});
  check_exact(sqrt(tensor({-1.0, 0.0, 4.0})), {3}, {NAN, 0, 2});
  check_exact(rsqrt(tensor({0.0, 4.0})), {2}, {INFINITY, 0.5});
  check_exact(exp(tensor({-INFINITY, 0.0, 1000.0})), {3}, {0, 1, INFINITY});
  check_exact(relu(tensor({NAN, -0.0, -1.0})), {3}, {NAN, 0, 0});  // NaN propagates, as in PyTorch
  check_exact(clamp(tensor({-5, 5, 0.25}), 0, 1), {3}, {0, 1, 0.25});
}

TEST_CASE("integer and half inputs: float-only functions compute in Float32, the rest keep the dtype") {
  const Tensor i = tensor({-2, 0, 3}, DType::Int64);
  CHECK(exp(i).dtype() == DType::Float32);
  check_values(exp(i), {3}, {std::exp(-2.0), 1, std::exp(3.0)}, 1e-6);
  CHECK(sqrt(i).dtype() == DType::Float32);
  CHECK(abs(i).dtype() == DType::Int64);
  check_exact(abs(i), {3}, {2, 0, 3});
  CHECK(neg(i).dtype() == DType::Int64);
  check_exact(neg(i), {3}, {2, 0, -3});
  check_exact(relu(i), {3}, {0, 0, 3});
  check_exact(clamp(i, -1, 1), {3}, {-1, 0, 1});
  CHECK(neg(tensor({1, 0}, DType::Bool)).dtype() == DType::Int64);
  check_exact(neg(tensor({1, 0}, DType::Bool)), {2}, {-1, 0});
  // Half: computed in float, rounded to half; within half's relative precision of the exact value.
  const Tensor h = test::random_uniform({50}, 9, -3, 3, DType::Float16);
  CHECK(exp(h).dtype() == DType::Float16);
  check_values(exp(h), {50}, map_values(h, [](double x) { return std::exp(x); }), 0x1p-11, 1e-7);
  check_values(tanh(h), {50}, map_values(h, [](double x) { return std::tanh(x); }), 0x1p-11, 1e-7);
  const Tensor b = test::random_uniform({50}, 10, -3, 3, DType::BFloat16);
  check_values(sigmoid(b), {50}, map_values(b, sigmoid_ref), 0x1p-8, 0);
}
