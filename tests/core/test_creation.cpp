/// \file
/// \brief Tensor creation against closed forms: arange lengths ceil((end - start) / step) and values
/// start + i step, linspace with exact endpoints, eye, full/zeros/ones in every dtype, tensors from
/// C++ values, and the errors for inconsistent input.
#include <cmath>

#include "reference.h"

using namespace ember;
using test::check_exact;
using test::check_values;

TEST_CASE("arange: integer and floating steps, negative steps, empty ranges") {
  const Tensor a = arange(5);
  CHECK(a.dtype() == DType::Int64);
  CHECK(a.to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  const Tensor f = arange(0, 1, 0.1, DType::Float64);
  REQUIRE(f.shape() == Shape{10});
  const auto fv = f.to_vector<double>();
  for (int i = 0; i < 10; ++i) CHECK(std::abs(fv[i] - i / 10.0) < 1e-15);
  check_values(arange(1, 2, 0.3, DType::Float64), {4}, {1, 1.3, 1.6, 1.9}, 1e-15, 1e-15);
  check_exact(arange(3, 0, -1), {3}, {3, 2, 1});
  check_exact(arange(0, -1, -0.25, DType::Float32), {4}, {0, -0.25, -0.5, -0.75});
  check_exact(arange(0.5, 3, 1, DType::Float32), {3}, {0.5, 1.5, 2.5});
  check_exact(arange(2, 2), {0}, {});
  check_exact(arange(2, 0), {0}, {});  // the wrong direction is empty, as in NumPy
  check_exact(arange(-3, 3, 2), {3}, {-3, -1, 1});
  CHECK(arange(4, DType::Float32).dtype() == DType::Float32);
}

TEST_CASE("linspace: endpoints exact, evenly spaced, degenerate step counts") {
  check_exact(linspace(0, 1, 5), {5}, {0, 0.25, 0.5, 0.75, 1});
  const Tensor l = linspace(-1, 3.3, 7, DType::Float64);
  const auto v = l.to_vector<double>();
  REQUIRE(v.size() == 7);
  CHECK(v.front() == -1.0);
  CHECK(v.back() == 3.3);  // exactly, not -1 + 6 * (4.3 / 6)
  for (int i = 0; i < 7; ++i) CHECK(std::abs(v[i] - (-1 + i * 4.3 / 6)) < 1e-15);
  CHECK(linspace(0.1, 0.7, 7).to_vector<float>().back() == 0.7f);
  check_exact(linspace(1, 0, 3), {3}, {1, 0.5, 0});
  check_exact(linspace(5, 5, 3), {3}, {5, 5, 5});
  check_exact(linspace(2, 9, 1), {1}, {2});
  check_exact(linspace(2, 9, 0), {0}, {});
  CHECK(linspace(0, 10, 11, DType::Int64).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
}

TEST_CASE("eye, full, zeros, ones and their _like forms") {
  check_exact(eye(3), {3, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  check_exact(eye(2, 4), {2, 4}, {1, 0, 0, 0, 0, 1, 0, 0});
  check_exact(eye(3, 2), {3, 2}, {1, 0, 0, 1, 0, 0});
  CHECK(eye(2, -1, DType::Int64).dtype() == DType::Int64);
  check_exact(eye(0), {0, 0}, {});
  check_exact(full({2, 2}, 3.5), {2, 2}, {3.5, 3.5, 3.5, 3.5});
  check_exact(full({3}, 7, DType::Int64), {3}, {7, 7, 7});
  check_exact(full({2}, -2.5, DType::Float64), {2}, {-2.5, -2.5});
  check_exact(full({2}, 0.1, DType::Float16), {2}, {0.0999755859375, 0.0999755859375});  // 0.1 rounded to half
  check_exact(full({2}, 0.1, DType::BFloat16), {2}, {0.10009765625, 0.10009765625});
  check_exact(full({2}, 3, DType::Bool), {2}, {1, 1});
  check_exact(zeros({2, 3}, DType::Int64), {2, 3}, std::vector<double>(6, 0));
  check_exact(ones({4}, DType::Float16), {4}, {1, 1, 1, 1});
  const Tensor t = transpose(full({2, 3}, 5.0, DType::Float64), 0, 1);
  const Tensor z = zeros_like(t), o = ones_like(t);
  CHECK(z.dtype() == DType::Float64);
  CHECK(z.is_contiguous());
  check_exact(z, {3, 2}, std::vector<double>(6, 0));
  check_exact(o, {3, 2}, std::vector<double>(6, 1));
  const Tensor s = scalar_tensor(2.5);
  CHECK(s.dim() == 0);
  CHECK(s.item() == 2.5);
  CHECK(scalar_tensor(3, DType::Int64).item() == 3);
  CHECK(zeros({}).numel() == 1);
  CHECK(empty({2, 0}).numel() == 0);
}

TEST_CASE("tensors from C++ values") {
  const Tensor a = from_vector(std::vector<double>{1.5, -2, 3, 4, 5, 6}, {2, 3}, DType::Float64);
  check_exact(a, {2, 3}, {1.5, -2, 3, 4, 5, 6});
  CHECK(a.data_ptr<double>()[1] == -2);
  const Tensor i = from_vector(std::vector<std::int64_t>{9, 8, 7}, {3, 1});
  CHECK(i.dtype() == DType::Int64);
  CHECK(i.to_vector<std::int64_t>() == std::vector<std::int64_t>{9, 8, 7});
  const Tensor r = tensor({{1, 2}, {3, 4}, {5, 6}});
  CHECK(r.dtype() == DType::Float32);
  check_exact(r, {3, 2}, {1, 2, 3, 4, 5, 6});
  check_exact(tensor({1.25, 2.5}, DType::Float16), {2}, {1.25, 2.5});
  CHECK(tensor({0, 2}, DType::Bool).to_vector<bool>() == std::vector<bool>{false, true});
  CHECK(reshape(tensor({4.5}), {1, 1}).item() == 4.5);
}

TEST_CASE("creation errors name the op and the shapes") {
  CHECK_THROWS_EMBER(from_vector(std::vector<double>{1, 2, 3, 4, 5}, {2, 3}), "from_vector: 5 values for shape [2, 3]");
  CHECK_THROWS_EMBER(from_vector(std::vector<std::int64_t>{1, 2}, {3}), "from_vector: 2 values for shape [3]");
  CHECK_THROWS_EMBER(tensor({{1, 2, 3}, {4, 5}}), "tensor: rows have different lengths (3 and 2)");
  CHECK_THROWS_EMBER(empty({2, -1}), "empty: negative size in shape [2, -1]");
  CHECK_THROWS_EMBER(zeros({-3}), "negative size in shape [-3]");
  CHECK_THROWS_EMBER(arange(0, 1, 0), "arange: invalid range start=0 end=1 step=0");
  CHECK_THROWS_EMBER(arange(0, INFINITY), "arange: invalid range");
  CHECK_THROWS_EMBER(linspace(0, 1, -1), "linspace: steps must be non-negative, got -1");
  CHECK_THROWS_EMBER(eye(-2), "eye: size must be non-negative, got -2");
  CHECK_THROWS_EMBER(rand({2}, DType::Int64), "rand: needs a floating dtype, got int64");
  CHECK_THROWS_EMBER(randn({2}, DType::Bool), "randn: needs a floating dtype, got bool");
  CHECK_THROWS_EMBER(randint(3, 3, {2}), "randint: empty range [3, 3)");
  CHECK_THROWS_EMBER(bernoulli({2}, 1.5), "bernoulli: p must be in [0, 1], got 1.5");
  CHECK_THROWS_EMBER(bernoulli(tensor({1, 0}, DType::Int64)), "bernoulli: needs a floating dtype, got int64");
}
