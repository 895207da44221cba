/// \file
/// \brief NumPy broadcasting of every binary op and comparison against a naive loop that maps each
/// output multi-index to its operands (size-1 dims read index 0), plus type promotion and the error
/// for shapes that do not broadcast.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include "reference.h"

using namespace ember;
using test::check_exact;
using test::check_values;
using test::broadcast;
using test::broadcast_source_index;

namespace {

/// f(a, b) elementwise over the broadcast shape, in double.
std::vector<double> naive(const Tensor& a, const Tensor& b, const std::function<double(double, double)>& f) {
  const Shape out = broadcast(a.shape(), b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  std::vector<double> r;
  for (std::int64_t k = 0; k < test::count(out); ++k) {
    const auto idx = test::unravel(k, out);
    r.push_back(f(va[broadcast_source_index(idx, a.shape())], vb[broadcast_source_index(idx, b.shape())]));
  }
  return r;
}

struct BinaryCase {
  std::string name;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref;
};

std::vector<BinaryCase> arithmetic() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }, [](double x, double y) { return x + y; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }, [](double x, double y) { return x - y; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }, [](double x, double y) { return x * y; }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }, [](double x, double y) { return x / y; }},
      {"operator+", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double x, double y) { return x + y; }},
      {"operator-", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double x, double y) { return x - y; }},
      {"operator*", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double x, double y) { return x * y; }},
      {"operator/", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double x, double y) { return x / y; }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(abs(a), b); },
       [](double x, double y) { return std::pow(std::abs(x), y); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double x, double y) { return x > y ? x : y; }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double x, double y) { return x < y ? x : y; }},
  };
}

std::vector<BinaryCase> comparisons() {
  return {
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); },
       [](double x, double y) { return double(x == y); }},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); },
       [](double x, double y) { return double(x != y); }},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); },
       [](double x, double y) { return double(x < y); }},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); },
       [](double x, double y) { return double(x <= y); }},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); },
       [](double x, double y) { return double(x > y); }},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); },
       [](double x, double y) { return double(x >= y); }},
      {"==", [](const Tensor& a, const Tensor& b) { return a == b; },
       [](double x, double y) { return double(x == y); }},
      {"!=", [](const Tensor& a, const Tensor& b) { return a != b; },
       [](double x, double y) { return double(x != y); }},
      {"<", [](const Tensor& a, const Tensor& b) { return a < b; }, [](double x, double y) { return double(x < y); }},
      {"<=", [](const Tensor& a, const Tensor& b) { return a <= b; },
       [](double x, double y) { return double(x <= y); }},
      {">", [](const Tensor& a, const Tensor& b) { return a > b; }, [](double x, double y) { return double(x > y); }},
      {">=", [](const Tensor& a, const Tensor& b) { return a >= b; },
       [](double x, double y) { return double(x >= y); }},
      {"logical_and", [](const Tensor& a, const Tensor& b) { return logical_and(a, b); },
       [](double x, double y) { return double(x != 0 && y != 0); }},
      {"logical_or", [](const Tensor& a, const Tensor& b) { return logical_or(a, b); },
       [](double x, double y) { return double(x != 0 || y != 0); }},
  };
}

const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{3, 1, 4}, {2, 1}},    {{2, 3}, {3}}, {{}, {2, 2}},     {{4, 1}, {1}},    {{5, 1, 1, 3}, {4, 1}},
    {{2, 3, 4}, {2, 3, 4}}, {{1}, {}},     {{1, 6}, {5, 1}}, {{0, 3}, {1, 3}},
};

}  // namespace

TEST_CASE("add broadcasts a row over a matrix (hand-computed)") {
  check_exact(tensor({{1, 2, 3}, {4, 5, 6}}) + tensor({10, 20, 30}), {2, 3}, {11, 22, 33, 14, 25, 36});
  check_exact(reshape(tensor({1, 2}), {2, 1}) * tensor({10, 20, 30}), {2, 3}, {10, 20, 30, 20, 40, 60});
}

TEST_CASE("every arithmetic op broadcasts like the naive loop (Float64 and Float32)") {
  std::uint64_t seed = 100;
  for (const auto& c : arithmetic()) {
    for (const auto& [sa, sb] : kShapePairs) {
      for (DType dt : {DType::Float64, DType::Float32}) {
        CAPTURE(c.name);
        CAPTURE(shape_str(sa));
        CAPTURE(shape_str(sb));
        CAPTURE(dtype_name(dt));
        const Tensor a = test::random_normal(sa, seed++, dt);
        const Tensor b = test::random_normal(sb, seed++, dt);
        const double tol = dt == DType::Float64 ? 1e-14 : 2e-6;
        const Tensor r1 = c.op(a, b), r2 = c.op(b, a);
        CHECK(r1.dtype() == dt);
        check_values(r1, broadcast(sa, sb), naive(a, b, c.ref), tol, tol);
        check_values(r2, broadcast(sa, sb), naive(b, a, c.ref), tol, tol);
      }
    }
  }
}

TEST_CASE("every comparison broadcasts like the naive loop and returns Bool") {
  std::uint64_t seed = 300;
  for (const auto& c : comparisons()) {
    for (const auto& [sa, sb] : kShapePairs) {
      CAPTURE(c.name);
      CAPTURE(shape_str(sa));
      CAPTURE(shape_str(sb));
      // Small integers, so that ties (and zeros for the logical ops) occur.
      Generator g(seed++);
      const Tensor a = randint(-1, 2, sa, DType::Float32, Device::cpu(), &g);
      const Tensor b = randint(-1, 2, sb, DType::Int64, Device::cpu(), &g);
      const Tensor r = c.op(a, b);
      CHECK(r.dtype() == DType::Bool);
      check_exact(r, broadcast(sa, sb), naive(a, b, c.ref));
      check_exact(c.op(b, a), broadcast(sa, sb), naive(b, a, c.ref));
    }
  }
}

TEST_CASE("non-contiguous operands and a large broadcast (parallel path) match the naive loop") {
  const Tensor base = test::random_normal({4, 3}, 1);
  const Tensor a = transpose(base, 0, 1);                              // [3, 4], strides [1, 3]
  const Tensor b = slice(test::random_normal({4, 8}, 2), 1, 0, 8, 2);  // [4, 4], strides [8, 2]
  const Tensor c = select(test::random_normal({4, 2}, 3), 1, 1);       // [4], stride 2
  check_values(a * c, {3, 4}, naive(a, c, [](double x, double y) { return x * y; }));
  check_values(unsqueeze(a, 0) - unsqueeze(b, 1), {4, 3, 4},
               naive(unsqueeze(a, 0), unsqueeze(b, 1), [](double x, double y) { return x - y; }));
  const Tensor big_a = test::random_normal({64, 1, 600}, 4, DType::Float32);
  const Tensor big_b = test::random_normal({1, 50, 1}, 5, DType::Float32);
  check_values(big_a + big_b, {64, 50, 600}, naive(big_a, big_b, [](double x, double y) { return x + y; }), 1e-6, 1e-6);
  check_values(maximum(big_b, big_a), {64, 50, 600},
               naive(big_b, big_a, [](double x, double y) { return x > y ? x : y; }));
}

TEST_CASE("tensor-scalar operators on either side") {
  const Tensor a = test::random_normal({2, 3}, 6);
  const auto v = a.to_vector<double>();
  auto each = [&](auto f) {
    std::vector<double> r;
    for (double x : v) r.push_back(f(x));
    return r;
  };
  check_values(a + 2.5, {2, 3}, each([](double x) { return x + 2.5; }));
  check_values(2.5 + a, {2, 3}, each([](double x) { return 2.5 + x; }));
  check_values(a - 1.0, {2, 3}, each([](double x) { return x - 1.0; }));
  check_values(1.0 - a, {2, 3}, each([](double x) { return 1.0 - x; }));
  check_values(a * 3.0, {2, 3}, each([](double x) { return x * 3.0; }));
  check_values(3.0 * a, {2, 3}, each([](double x) { return 3.0 * x; }));
  check_values(a / 4.0, {2, 3}, each([](double x) { return x / 4.0; }));
  check_values(3.0 / a, {2, 3}, each([](double x) { return 3.0 / x; }));
  check_values(-a, {2, 3}, each([](double x) { return -x; }));
  CHECK((a + 1.0).dtype() == DType::Float64);
  CHECK((tensor({1.0}, DType::Float16) * 2.0).dtype() == DType::Float16);
}

TEST_CASE("type promotion: int64 + float32 -> float32, bool -> int64, halves, true division") {
  const Tensor i = tensor({1, -2, 3}, DType::Int64);
  const Tensor f = tensor({0.5, 0.25, -1.5});
  const Tensor r = i + f;
  CHECK(r.dtype() == DType::Float32);
  check_exact(r, {3}, {1.5, -1.75, 1.5});
  CHECK((f + i).dtype() == DType::Float32);
  // Int64 stays exact beyond 2^53.
  const Tensor big = from_vector(std::vector<std::int64_t>{(1ll << 53) + 1, -7}, {2});
  const Tensor s = big + from_vector(std::vector<std::int64_t>{2, 3}, {2});
  CHECK(s.dtype() == DType::Int64);
  CHECK(s.to_vector<std::int64_t>() == std::vector<std::int64_t>{(1ll << 53) + 3, -4});
  CHECK((big * big).dtype() == DType::Int64);
  // Integer division is true division in Float32, as in PyTorch.
  const Tensor q = tensor({7, -7}, DType::Int64) / tensor({2, 2}, DType::Int64);
  CHECK(q.dtype() == DType::Float32);
  check_exact(q, {2}, {3.5, -3.5});
  // Int64 with a double scalar gives Float32.
  CHECK((i + 0.5).dtype() == DType::Float32);
  check_exact(i + 0.5, {3}, {1.5, -1.5, 3.5});
  // Bool arithmetic counts in Int64; bool with a float is that float.
  const Tensor t = tensor({1, 0, 1}, DType::Bool), u = tensor({1, 1, 0}, DType::Bool);
  CHECK((t + u).dtype() == DType::Int64);
  check_exact(t + u, {3}, {2, 1, 1});
  CHECK((t + i).dtype() == DType::Int64);
  check_exact(t + i, {3}, {2, -2, 4});
  CHECK((t * f).dtype() == DType::Float32);
  check_exact(t * f, {3}, {0.5, 0, -1.5});
  check_exact(logical_and(t, u), {3}, {1, 0, 0});
  check_exact(logical_or(t, u), {3}, {1, 1, 1});
  check_exact(logical_not(t), {3}, {0, 1, 0});
  // Mixed halves promote to float32; half with float64 to float64; half with int64 stays half.
  const Tensor h = tensor({1.5, 2.0}, DType::Float16), bh = tensor({0.25, 4.0}, DType::BFloat16);
  CHECK((h + bh).dtype() == DType::Float32);
  check_exact(h + bh, {2}, {1.75, 6.0});
  CHECK((h * tensor({2.0, 2.0})).dtype() == DType::Float32);
  CHECK((h * tensor({2.0, 2.0}, DType::Float64)).dtype() == DType::Float64);
  CHECK((h - tensor({1, 1}, DType::Int64)).dtype() == DType::Float16);
  check_exact(h - tensor({1, 1}, DType::Int64), {2}, {0.5, 1.0});
  // Half arithmetic rounds its result to half: 2049 is not a half.
  check_exact(tensor({2048.0}, DType::Float16) + tensor({1.0}, DType::Float16), {1}, {2048.0});
  check_exact(tensor({2048.0}, DType::Float16) + tensor({3.0}, DType::Float16), {1}, {2052.0});
}

TEST_CASE("maximum and minimum propagate NaN, comparisons with NaN are false") {
  const Tensor a = tensor({NAN, 1.0, 2.0}), b = tensor({0.0, NAN, 3.0});
  check_exact(maximum(a, b), {3}, {NAN, NAN, 3.0});
  check_exact(minimum(a, b), {3}, {NAN, NAN, 2.0});
  check_exact(lt(a, b), {3}, {0, 0, 1});
  check_exact(ne(a, a), {3}, {1, 0, 0});
}

TEST_CASE("shapes that do not broadcast name the op and both shapes") {
  CHECK_THROWS_EMBER(add(zeros({2, 3}), zeros({4})), "add: shapes [2, 3] and [4] do not broadcast");
  CHECK_THROWS_EMBER(mul(zeros({3, 1, 4}), zeros({2, 3})), "mul: shapes [3, 1, 4] and [2, 3] do not broadcast");
  CHECK_THROWS_EMBER(lt(zeros({2}), zeros({3})), "lt: shapes [2] and [3] do not broadcast");
  CHECK_THROWS_EMBER(where(zeros({2}, DType::Bool), zeros({3}), zeros({2})), "where: shapes [2] and [3]");
  CHECK_THROWS_EMBER(zeros({2, 3}) - zeros({3, 2}), "sub: shapes [2, 3] and [3, 2] do not broadcast (dim 0: 2 vs 3)");
}
