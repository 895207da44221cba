/// \file
/// \brief Internal helpers of the CPU backend: dtype dispatch, loads and stores through the compute
/// type (float for Float16/BFloat16), and a strided n-d loop that coalesces dims and runs rows in
/// parallel with OpenMP.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "core/error.h"
#include "core/half.h"
#include "core/tensor.h"

namespace ember::cpu {

/// Below this many elements a loop runs on one thread.
constexpr std::int64_t kParallelGrain = 32768;

/// The type an element is computed in: float for the 16-bit floats, int64 for Bool.
template <class T> struct Compute { using type = T; };
/// \typedef ember::cpu::Compute::type
/// The compute type: T itself, except in the specializations for Half, BFloat16 and bool.
/// \cond EMBER_INTERNAL (the specializations are listed with the primary template only)
template <> struct Compute<Half> { using type = float; };
template <> struct Compute<BFloat16> { using type = float; };
template <> struct Compute<bool> { using type = std::int64_t; };
/// \endcond
/// Compute<T>::type.
template <class T> using compute_t = typename Compute<T>::type;

/// Reads a stored element as type C.
template <class C, class T>
inline C load(const T& v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
    return static_cast<C>(static_cast<float>(v));
  else
    return static_cast<C>(v);
}

/// Converts a computed value to the stored type.
template <class T, class C>
inline T store(C v) {
  if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)
    return T(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, bool>)
    return v != C(0);
  else
    return static_cast<T>(v);
}

/// Calls f(T{}) with T the storage type of `dtype`.
template <class F>
inline void dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: f(float{}); return;
    case DType::Float64: f(double{}); return;
    case DType::Float16: f(Half{}); return;
    case DType::BFloat16: f(BFloat16{}); return;
    case DType::Int64: f(std::int64_t{}); return;
    case DType::Bool: f(bool{}); return;
  }
}

/// Calls f(T{}) for the floating dtypes only; throws naming `op` otherwise.
template <class F>
inline void dispatch_floating(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: f(float{}); return;
    case DType::Float64: f(double{}); return;
    case DType::Float16: f(Half{}); return;
    case DType::BFloat16: f(BFloat16{}); return;
    default: throw Error(std::string(op) + ": expected a floating-point tensor, got " + dtype_name(dtype));
  }
}

/// Calls f(T{}) for Float32 and Float64 only (kernels without a half-precision path); throws naming `op`.
template <class F>
inline void dispatch_float_double(const char* op, DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: f(float{}); return;
    case DType::Float64: f(double{}); return;
    default: throw Error(std::string(op) + ": expected Float32 or Float64, got " + dtype_name(dtype));
  }
}

/// True for Float16 and BFloat16.
bool is_16bit(DType dtype);

/// A kernel over Float32 (or Float64) tensors: inputs, then outputs to write.
using Float32Kernel = std::function<void(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs)>;

/// Runs `run` with Float32 copies of the 16-bit `inputs` and Float32 buffers in place of the 16-bit `outputs`
/// (other tensors are passed as they are), then rounds those buffers into `outputs`: the CPU path of kernels
/// written for Float32/Float64 only.
void through_float32(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const Float32Kernel& run);

/// Runs row(offsets, n, inner_strides) over every innermost row of the geometry; offsets are the
/// element offsets of each operand at the row start. Rows run in parallel when the loop is large.
template <int K, class Row>
void for_each_row(const Shape& shape, const std::array<const Shape*, K>& operand_strides, Row&& row) {
  // Coalesce: drop size-1 dims, merge dim d into d+1 when every operand steps evenly across them.
  Shape sizes;
  std::vector<std::array<std::int64_t, K>> strides;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    std::array<std::int64_t, K> s{};
    for (int k = 0; k < K; ++k) s[k] = (*operand_strides[k])[d];
    bool merge = !sizes.empty();
    for (int k = 0; k < K && merge; ++k) merge = strides.back()[k] == s[k] * shape[d];
    if (merge) {
      sizes.back() *= shape[d];
      strides.back() = s;
    } else {
      sizes.push_back(shape[d]);
      strides.push_back(s);
    }
  }
  if (sizes.empty()) {
    sizes.push_back(1);
    strides.push_back({});
  }
  const int nd = static_cast<int>(sizes.size());
  const std::int64_t n = sizes.back();
  const std::array<std::int64_t, K> inner = strides.back();
  std::int64_t rows = 1;
  for (int d = 0; d + 1 < nd; ++d) rows *= sizes[d];
  auto run = [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t r = begin; r < end; ++r) {
      std::array<std::int64_t, K> off{};
      std::int64_t rem = r;
      for (int d = nd - 2; d >= 0; --d) {
        const std::int64_t i = rem % sizes[d];
        rem /= sizes[d];
        for (int k = 0; k < K; ++k) off[k] += i * strides[d][k];
      }
      row(off, n, inner);
    }
  };
  const bool parallel = rows * n >= kParallelGrain && !omp_in_parallel();
  if (parallel && rows == 1) {
    // One long row (any contiguous tensor coalesces to this): each thread takes a slice, cut at
    // multiples of 64 elements so no two threads write one cache line and slices stay aligned.
#pragma omp parallel
    {
      const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
      const std::int64_t b = t == 0 ? 0 : n * t / nt / 64 * 64, e = t + 1 == nt ? n : n * (t + 1) / nt / 64 * 64;
      std::array<std::int64_t, K> off{};
      for (int k = 0; k < K; ++k) off[k] = b * inner[k];
      if (b < e) row(off, e - b, inner);
    }
    return;
  }
  if (!parallel) {
    run(0, rows);
    return;
  }
#pragma omp parallel
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    run(rows * t / nt, rows * (t + 1) / nt);
  }
}

/// Splits [0, n) across threads when `work` is large, calling f(begin, end) on each part.
template <class F>
void parallel_range(std::int64_t n, std::int64_t work, F&& f) {
  if (work < kParallelGrain || n < 2 || omp_in_parallel()) {
    f(std::int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    const std::int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) f(b, e);
  }
}

/// A contiguous tensor seen as [outer, size(dim), inner] around one dim.
struct DimSplit {
  std::int64_t outer = 1;  ///< product of sizes before dim
  std::int64_t n = 1;      ///< size of dim
  std::int64_t inner = 1;  ///< product of sizes after dim
  /// Splits `shape` around `dim`.
  DimSplit(const Shape& shape, int dim) {
    for (int d = 0; d < dim; ++d) outer *= shape[d];
    n = shape[dim];
    for (std::size_t d = dim + 1; d < shape.size(); ++d) inner *= shape[d];
  }
};

}  // namespace ember::cpu
