/// \file
/// \brief Tensor creation: constants, ranges, identity, seeded random tensors, tensors from C++ values.
#include "core/creation.h"

#include <cmath>

#include <fmt/format.h>

#include "core/backend.h"
#include "core/ops.h"

namespace ember {

Generator& default_generator() {
  static Generator gen;
  return gen;
}

void manual_seed(std::uint64_t seed) { default_generator().manual_seed(seed); }

Tensor empty(const Shape& shape, DType dtype, Device device) { return Tensor::empty(shape, dtype, device); }

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  if (t.numel() > 0) backend_for(device).fill(t, value);
  return t;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return ones(x.shape(), x.dtype(), x.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  EMBER_CHECK(step != 0 && std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
              fmt::format("arange: invalid range start={} end={} step={}", start, end, step));
  const auto n = static_cast<std::int64_t>(std::max(0.0, std::ceil((end - start) / step)));
  std::vector<double> v(n);
  for (std::int64_t i = 0; i < n; ++i) v[i] = start + static_cast<double>(i) * step;
  return raw::to_device(from_vector(v, {n}, dtype), device);
}

Tensor arange(double end, DType dtype, Device device) { return arange(0.0, end, 1.0, dtype, device); }

Tensor linspace(double start, double end, std::int64_t steps, DType dtype, Device device) {
  EMBER_CHECK(steps >= 0, fmt::format("linspace: steps must be non-negative, got {}", steps));
  std::vector<double> v(steps);
  const double h = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  // Fill from both ends so the first value is exactly `start` and the last exactly `end`.
  for (std::int64_t i = 0; i < steps; ++i)
    v[i] = i < (steps + 1) / 2 ? start + h * static_cast<double>(i) : end - h * static_cast<double>(steps - 1 - i);
  return raw::to_device(from_vector(v, {steps}, dtype), device);
}

Tensor eye(std::int64_t n, std::int64_t m, DType dtype, Device device) {
  if (m < 0) m = n;
  EMBER_CHECK(n >= 0, fmt::format("eye: size must be non-negative, got {}", n));
  std::vector<double> v(n * m, 0.0);
  for (std::int64_t i = 0; i < std::min(n, m); ++i) v[i * m + i] = 1.0;
  return raw::to_device(from_vector(v, {n, m}, dtype), device);
}

namespace {
Tensor random_tensor(RandomKind kind, const Shape& shape, DType dtype, Device device, RandomArgs args, Generator* gen) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = Tensor::empty(shape, dtype, device);
  args.seed = g.seed();
  args.offset = g.reserve((t.numel() + 1) / 2);
  if (t.numel() > 0) backend_for(device).random(kind, t, args);
  return t;
}

void check_float(const char* op, DType dtype) {
  EMBER_CHECK(is_floating(dtype), fmt::format("{}: needs a floating dtype, got {}", op, dtype_name(dtype)));
}
}  // namespace

Tensor rand(const Shape& shape, DType dtype, Device device, double low, double high, Generator* gen) {
  check_float("rand", dtype);
  return random_tensor(RandomKind::Uniform, shape, dtype, device, {low, high}, gen);
}

Tensor randn(const Shape& shape, DType dtype, Device device, double mean, double std, Generator* gen) {
  check_float("randn", dtype);
  return random_tensor(RandomKind::Normal, shape, dtype, device, {mean, std}, gen);
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, DType dtype, Device device, Generator* gen) {
  EMBER_CHECK(low < high, fmt::format("randint: empty range [{}, {})", low, high));
  return random_tensor(RandomKind::RandInt, shape, dtype, device,
                       {static_cast<double>(low), static_cast<double>(high)}, gen);
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Device device, Generator* gen) {
  EMBER_CHECK(p >= 0 && p <= 1, fmt::format("bernoulli: p must be in [0, 1], got {}", p));
  return random_tensor(RandomKind::Bernoulli, shape, dtype, device, {p, 0.0}, gen);
}

Tensor bernoulli(const Tensor& p, Generator* gen) {
  raw::check_defined("bernoulli", p);
  check_float("bernoulli", p.dtype());
  const Tensor u = rand(p.shape(), p.dtype(), p.device(), 0.0, 1.0, gen);
  return raw::to_dtype(raw::binary(BinaryOp::Lt, u, p), p.dtype());
}

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  EMBER_CHECK(numel_of(shape) == static_cast<std::int64_t>(values.size()),
              fmt::format("from_vector: {} values for shape {}", values.size(), shape_str(shape)));
  Tensor t = Tensor::empty(shape, DType::Float64);
  std::copy(values.begin(), values.end(), t.data_ptr<double>());
  return raw::to_dtype(t, dtype);
}

Tensor from_vector(const std::vector<std::int64_t>& values, const Shape& shape) {
  EMBER_CHECK(numel_of(shape) == static_cast<std::int64_t>(values.size()),
              fmt::format("from_vector: {} values for shape {}", values.size(), shape_str(shape)));
  Tensor t = Tensor::empty(shape, DType::Int64);
  std::copy(values.begin(), values.end(), t.data_ptr<std::int64_t>());
  return t;
}

Tensor tensor(std::initializer_list<double> values, DType dtype) {
  return from_vector(std::vector<double>(values), {static_cast<std::int64_t>(values.size())}, dtype);
}

Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, DType dtype) {
  std::vector<double> v;
  const std::int64_t cols = rows.size() ? static_cast<std::int64_t>(rows.begin()->size()) : 0;
  for (const auto& r : rows) {
    EMBER_CHECK(static_cast<std::int64_t>(r.size()) == cols,
                fmt::format("tensor: rows have different lengths ({} and {})", cols, r.size()));
    v.insert(v.end(), r.begin(), r.end());
  }
  return from_vector(v, {static_cast<std::int64_t>(rows.size()), cols}, dtype);
}

}  // namespace ember
