/// \file
/// \brief Tests of the CUDA backend against the CPU backend and against plain loops: host round trips,
/// strided copies and dtype conversions, fill, broadcast add/mul, cuBLAS matmul, and the error a
/// missing kernel raises. Exits 77 (ctest: skipped) when no GPU is visible.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/creation.h"
#include "core/dtype.h"
#include "core/ops.h"
#include "core/tensor.h"

using namespace ember;

namespace {

const std::vector<DType> kAllDTypes = {DType::Float32, DType::Float64, DType::Float16,
                                       DType::BFloat16, DType::Int64,   DType::Bool};

// x on the GPU.
Tensor gpu(const Tensor& x) { return raw::to_device(x, Device::cuda()); }

// x's values as doubles, copied to the host.
std::vector<double> host_values(const Tensor& x) { return raw::to_device(x, Device::cpu()).to_vector<double>(); }

// n deterministic values in [-2, 2] that no dtype represents exactly.
std::vector<double> wavy(std::int64_t n, double phase = 0.0) {
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = 2.0 * std::sin(0.37 * static_cast<double>(i) + phase);
  return v;
}

// A Float32 CPU tensor of `shape` holding wavy values.
Tensor wavy_tensor(const Shape& shape, double phase = 0.0) {
  return from_vector(wavy(numel_of(shape), phase), shape, DType::Float32);
}

// Every element of got equals want exactly.
void check_exact(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == want[i]);
  }
}

// Every element of got is within 1e-4 relative (1e-4 absolute near zero) of want.
void check_close(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": " << got[i] << " vs " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= 1e-4 * (1.0 + std::abs(want[i])));
  }
}

// gpu(a) @ gpu(b), back on the host, against the CPU product.
void check_matmul(const Tensor& a, const Tensor& b) {
  INFO("a " << shape_str(a.shape()) << " strides " << shape_str(a.strides()) << ", b " << shape_str(b.shape())
            << " strides " << shape_str(b.strides()));
  check_close(host_values(raw::matmul(gpu(a), gpu(b))), raw::matmul(a, b).to_vector<double>());
}

}  // namespace

TEST_CASE("a host -> GPU -> host round trip keeps every value of every dtype") {
  const std::vector<double> values = {0.0, 1.0, -2.5, 0.1, 1.0 / 3.0, 1e-6, -65504.0, 1e30, 7.0};
  for (DType dtype : kAllDTypes) {
    if (dtype == DType::Int64) continue;
    INFO(dtype_name(dtype));
    const Tensor x = from_vector(values, {3, 3}, dtype);
    const Tensor on_gpu = gpu(x);
    CHECK(on_gpu.device() == Device::cuda());
    CHECK(on_gpu.dtype() == dtype);
    check_exact(host_values(on_gpu), x.to_vector<double>());
  }
  const std::vector<std::int64_t> ints = {0, -1, (std::int64_t{1} << 53) + 1, std::numeric_limits<std::int64_t>::max(),
                                          std::numeric_limits<std::int64_t>::min(), 42};
  const Tensor x = from_vector(ints, {2, 3});
  CHECK(raw::to_device(gpu(x), Device::cpu()).to_vector<std::int64_t>() == ints);
}

TEST_CASE("strided copies and dtype conversions on the GPU match the CPU bit for bit") {
  std::vector<double> values = wavy(60);
  values[0] = 65519.0;  // the largest value that float16 rounds down to its max, 65504
  values[1] = 70000.0;  // Inf in float16
  values[2] = 3e-7;     // a float16 subnormal
  values[3] = -0.0;
  values[4] = 12.75;
  const Tensor x = from_vector(values, {3, 4, 5}, DType::Float32);
  const Tensor xg = gpu(x);
  for (DType dtype : kAllDTypes) {
    INFO("float32 -> " << dtype_name(dtype));
    const Tensor cpu_view = raw::permute(x, {2, 0, 1});
    const Tensor gpu_view = raw::permute(xg, {2, 0, 1});
    const Tensor cpu_converted = raw::to_dtype(raw::contiguous(cpu_view), dtype);
    const Tensor gpu_converted = raw::to_dtype(gpu_view, dtype);
    check_exact(host_values(gpu_converted), cpu_converted.to_vector<double>());
    INFO("and back to float32");
    check_exact(host_values(raw::to_dtype(gpu_converted, DType::Float32)),
                raw::to_dtype(cpu_converted, DType::Float32).to_vector<double>());
  }
  SUBCASE("a same-dtype copy of a transposed view") {
    check_exact(host_values(raw::contiguous(raw::transpose(xg, 0, 2))),
                raw::contiguous(raw::transpose(x, 0, 2)).to_vector<double>());
  }
}

TEST_CASE("fill writes every dtype, and only the elements of the view") {
  for (DType dtype : kAllDTypes) {
    INFO(dtype_name(dtype));
    const Tensor t = zeros({4, 6}, dtype, Device::cuda());
    raw::fill_(raw::slice(t, 1, 0, 6, 2), 3.0);
    const std::vector<double> got = host_values(t);
    const double three = dtype == DType::Bool ? 1.0 : 3.0;
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("element " << i);
      CHECK(got[i] == (i % 2 == 0 ? three : 0.0));
    }
  }
  const Tensor h = zeros({5}, DType::Float16, Device::cuda());
  raw::fill_(h, 0.1);
  CHECK(host_values(h)[4] == from_vector({0.1}, {1}, DType::Float16).to_vector<double>()[0]);
}

TEST_CASE("add and mul broadcast on the GPU exactly as on the CPU") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    INFO(dtype_name(dtype));
    const Tensor a = raw::to_dtype(wavy_tensor({3, 1, 4}), dtype);
    const Tensor b = raw::to_dtype(wavy_tensor({2, 1}, 1.0), dtype);
    const Tensor c_rows = raw::to_dtype(wavy_tensor({4, 2}, 2.0), dtype);
    const Tensor c = raw::transpose(c_rows, 0, 1);             // [2, 4], strided
    const Tensor c_gpu = raw::transpose(gpu(c_rows), 0, 1);    // the same view on the GPU
    check_exact(host_values(raw::add(gpu(a), gpu(b))), raw::add(a, b).to_vector<double>());
    check_exact(host_values(raw::mul(gpu(a), gpu(b))), raw::mul(a, b).to_vector<double>());
    check_exact(host_values(raw::add(gpu(a), c_gpu)), raw::add(a, c).to_vector<double>());
    check_exact(host_values(raw::mul(c_gpu, gpu(b))), raw::mul(c, b).to_vector<double>());
  }
}

TEST_CASE("matmul through cuBLAS matches the CPU for plain, transposed and batched operands") {
  struct Case {
    std::int64_t m, k, n;
  };
  for (Case s : {Case{3, 5, 4}, Case{1, 7, 1}, Case{17, 33, 9}, Case{64, 128, 32}, Case{2, 1, 3}}) {
    const Tensor a = wavy_tensor({s.m, s.k});
    const Tensor b = wavy_tensor({s.k, s.n}, 0.5);
    const Tensor at = raw::transpose(wavy_tensor({s.k, s.m}, 1.5), 0, 1);  // [M, K] with unit row stride
    const Tensor bt = raw::transpose(wavy_tensor({s.n, s.k}, 2.5), 0, 1);  // [K, N] with unit row stride
    check_matmul(a, b);
    check_matmul(at, b);
    check_matmul(a, bt);
    check_matmul(at, bt);
  }
  SUBCASE("batched, with a broadcast operand") {
    check_matmul(wavy_tensor({2, 3, 6, 5}), wavy_tensor({5, 7}, 0.5));
    check_matmul(wavy_tensor({4, 6, 5}), raw::expand(wavy_tensor({1, 5, 7}, 0.5), {4, 5, 7}));
    check_matmul(raw::transpose(wavy_tensor({3, 5, 6}), 1, 2), wavy_tensor({3, 5, 7}, 0.5));
  }
  SUBCASE("batched, with batch offsets in no arithmetic progression") {
    const Tensor a = raw::slice(wavy_tensor({2, 4, 6, 5}), 1, 0, 3);  // batch offsets 0, 1, 2, 4, 5, 6 matrices
    check_matmul(a, wavy_tensor({2, 3, 5, 7}, 0.5));
  }
  SUBCASE("an operand cuBLAS cannot read in place is packed first") {
    const Tensor every_other = raw::slice(wavy_tensor({6, 10}), 1, 0, 10, 2);  // [6, 5], strides [10, 2]
    check_matmul(every_other, wavy_tensor({5, 4}, 0.5));
    check_matmul(wavy_tensor({3, 6}, 0.5), every_other);
  }
  SUBCASE("an empty inner dimension gives zeros") {
    const Tensor out = raw::matmul(gpu(zeros({3, 0})), gpu(zeros({0, 4})));
    check_exact(host_values(out), std::vector<double>(12, 0.0));
  }
}

TEST_CASE("a kernel the CUDA backend lacks says so instead of falling back") {
  const Tensor x = gpu(wavy_tensor({2, 3}));
  CHECK_THROWS_WITH_AS(raw::unary(UnaryOp::Exp, x), doctest::Contains("not implemented on cuda"), Error);
}

int main(int argc, char** argv) {
  if (cuda_device_count() == 0) {
    std::cout << "cuda: no GPU visible, skipping CUDA tests\n";
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
