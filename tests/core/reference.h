/// \file
/// \brief Helpers for the core tests: multi-index arithmetic for naive reference loops over
/// std::vector<double>, seeded random inputs, and an element-by-element comparison that reports the
/// first mismatch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "helpers.h"

namespace ember::test {

/// The multi-index of row-major position `flat` in `shape`.
inline std::vector<std::int64_t> unravel(std::int64_t flat, const Shape& shape) {
  std::vector<std::int64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return idx;
}

/// The row-major position of `idx` in `shape`.
inline std::int64_t ravel(const std::vector<std::int64_t>& idx, const Shape& shape) {
  std::int64_t flat = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + idx[d];
  return flat;
}

/// Number of elements of a shape.
inline std::int64_t count(const Shape& shape) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

/// A seeded standard-normal tensor (scaled by `scale`), made in Float64 and converted to `dtype`.
inline Tensor random_normal(const Shape& shape, std::uint64_t seed, DType dtype = DType::Float64, double scale = 1.0) {
  Generator gen(seed);
  return randn(shape, DType::Float64, Device::cpu(), 0.0, scale, &gen).to(dtype);
}

/// A seeded uniform tensor on [low, high), made in Float64 and converted to `dtype`.
inline Tensor random_uniform(const Shape& shape, std::uint64_t seed, double low, double high,
                             DType dtype = DType::Float64) {
  Generator gen(seed);
  return rand(shape, DType::Float64, Device::cpu(), low, high, &gen).to(dtype);
}

/// Checks got's shape and that every element is within atol + rtol |want| of want (NaN matches NaN,
/// infinities must be equal); reports the first mismatch.
inline void check_values(const Tensor& got, const Shape& shape, const std::vector<double>& want, double rtol = 1e-12,
                         double atol = 1e-12) {
  REQUIRE(got.defined());
  CHECK_MESSAGE(got.shape() == shape, "shape " << shape_str(got.shape()) << ", expected " << shape_str(shape));
  if (got.shape() != shape) return;
  REQUIRE(want.size() == static_cast<std::size_t>(count(shape)));
  const std::vector<double> v = got.to_vector<double>();
  std::int64_t bad = 0, first = -1;
  for (std::size_t i = 0; i < v.size(); ++i) {
    bool ok;
    if (std::isnan(want[i]) || std::isnan(v[i]))
      ok = std::isnan(want[i]) && std::isnan(v[i]);
    else if (std::isinf(want[i]) || std::isinf(v[i]))
      ok = want[i] == v[i];
    else
      ok = std::abs(v[i] - want[i]) <= atol + rtol * std::abs(want[i]);
    if (!ok && bad++ == 0) first = static_cast<std::int64_t>(i);
  }
  std::ostringstream msg;
  if (bad) {
    msg.precision(17);
    msg << bad << " of " << v.size() << " elements differ; first at flat index " << first << ": got " << v[first]
        << ", expected " << want[first];
  }
  CHECK_MESSAGE(bad == 0, msg.str());
}

/// check_values with exact equality.
inline void check_exact(const Tensor& got, const Shape& shape, const std::vector<double>& want) {
  check_values(got, shape, want, 0.0, 0.0);
}

/// The broadcast shape by NumPy's rule, written out independently of ember's broadcast_shapes.
inline Shape broadcast(const Shape& a, const Shape& b) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t da = i + a.size() >= n ? a[i + a.size() - n] : 1;
    const std::int64_t db = i + b.size() >= n ? b[i + b.size() - n] : 1;
    REQUIRE((da == db || da == 1 || db == 1));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

/// The flat index into a tensor of `shape` read by broadcast output multi-index `idx` (right-aligned,
/// size-1 dims fixed at 0).
inline std::int64_t broadcast_source_index(const std::vector<std::int64_t>& idx, const Shape& shape) {
  std::int64_t flat = 0;
  const std::size_t lead = idx.size() - shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d) flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[lead + d]);
  return flat;
}

}  // namespace ember::test
