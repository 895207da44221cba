/// \file
/// \brief CPU matrix product C[b] = op(A[b]) op(B[b]) through OpenBLAS's cblas_sgemm / cblas_dgemm.
///
/// A transposed operand is passed to BLAS as a transpose flag with its leading dimension, never
/// copied. Many small products (a batch of attention heads) run one per thread; one large product
/// lets BLAS use every thread. Float16 and BFloat16 go through float32; Int64 uses a plain loop.
#include <cblas.h>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

namespace {

/// How BLAS sees the last two dims of an operand: transposed or not, and the leading dimension.
struct BlasLayout {
  bool ok = false;
  bool trans = false;
  std::int64_t ld = 0;
};

BlasLayout blas_layout(const Tensor& t) {
  const auto n = t.dim();
  const std::int64_t rows = t.shape()[n - 2], cols = t.shape()[n - 1];
  const std::int64_t rs = t.strides()[n - 2], cs = t.strides()[n - 1];
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= std::max<std::int64_t>(cols, 1)))
    return {true, false, rows == 1 ? std::max<std::int64_t>(cols, 1) : rs};
  if ((rs == 1 || rows == 1) && (cols == 1 || cs >= std::max<std::int64_t>(rows, 1)))
    return {true, true, cols == 1 ? std::max<std::int64_t>(rows, 1) : cs};
  return {};
}

Tensor contiguous_copy(Backend& be, const Tensor& t, DType dtype) {
  Tensor c = Tensor::empty(t.shape(), dtype);
  be.copy(t, c);
  return c;
}

/// Offsets (in elements) of operand `t` for each flattened batch index of `batch`.
std::vector<std::int64_t> batch_offsets(const Tensor& t, const Shape& batch) {
  const std::int64_t count = numel_of(batch);
  std::vector<std::int64_t> offs(count, 0);
  for (std::int64_t i = 0; i < count; ++i) {
    std::int64_t rem = i, off = 0;
    for (std::size_t d = batch.size(); d-- > 0;) {
      off += (rem % batch[d]) * t.strides()[d];
      rem /= batch[d];
    }
    offs[i] = off;
  }
  return offs;
}

template <class T>
void gemm(bool ta, bool tb, std::int64_t M, std::int64_t N, std::int64_t K, const T* a, std::int64_t lda,
          const T* b, std::int64_t ldb, T* c) {
  const auto TA = ta ? CblasTrans : CblasNoTrans, TB = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1.0f, a, lda, b, ldb, 0.0f, c, N);
  else
    cblas_dgemm(CblasRowMajor, TA, TB, M, N, K, 1.0, a, lda, b, ldb, 0.0, c, N);
}

template <class T>
void blas_matmul(const Tensor& a, const Tensor& b, const Tensor& out, BlasLayout la, BlasLayout lb) {
  const auto n = out.dim();
  const std::int64_t M = out.shape()[n - 2], N = out.shape()[n - 1], K = a.shape()[n - 1];
  const Shape batch(out.shape().begin(), out.shape().end() - 2);
  const auto oa = batch_offsets(a, batch), ob = batch_offsets(b, batch);
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* pc = static_cast<T*>(out.raw_data());
  const std::int64_t count = static_cast<std::int64_t>(oa.size());
  if (K == 0) {
    std::fill(pc, pc + out.numel(), T(0));
    return;
  }
  auto one = [&](std::int64_t i) {
    gemm<T>(la.trans, lb.trans, M, N, K, pa + oa[i], la.ld, pb + ob[i], lb.ld, pc + i * M * N);
  };
  // Small products: one per thread (BLAS runs single-threaded inside a parallel region), when there is
  // enough work in all to pay for waking the threads (a region costs microseconds, far more on a busy machine).
  const bool per_thread = count >= 2 && M * N * K <= 256 * 256 * 256 && count * M * N * K >= (1 << 18);
  if (per_thread && !omp_in_parallel()) {
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < count; ++i) one(i);
  } else {
    for (std::int64_t i = 0; i < count; ++i) one(i);
  }
}

template <class T>
void naive_matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  const auto n = out.dim();
  const std::int64_t M = out.shape()[n - 2], N = out.shape()[n - 1], K = a.shape()[n - 1];
  const Shape batch(out.shape().begin(), out.shape().end() - 2);
  const auto oa = batch_offsets(a, batch), ob = batch_offsets(b, batch);
  const T* pa = static_cast<const T*>(a.raw_data());
  const T* pb = static_cast<const T*>(b.raw_data());
  T* pc = static_cast<T*>(out.raw_data());
  const auto& sa = a.strides();
  const auto& sb = b.strides();
  for (std::size_t i = 0; i < oa.size(); ++i)
    for (std::int64_t m = 0; m < M; ++m)
      for (std::int64_t j = 0; j < N; ++j) {
        T acc = 0;
        for (std::int64_t k = 0; k < K; ++k)
          acc += pa[oa[i] + m * sa[n - 2] + k * sa[n - 1]] * pb[ob[i] + k * sb[n - 2] + j * sb[n - 1]];
        pc[(i * M + m) * N + j] = acc;
      }
}

}  // namespace

void CpuBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  switch (a.dtype()) {
    case DType::Float32:
    case DType::Float64: {
      Tensor ca = a, cb = b;
      BlasLayout la = blas_layout(a), lb = blas_layout(b);
      if (!la.ok) la = blas_layout(ca = contiguous_copy(*this, a, a.dtype()));
      if (!lb.ok) lb = blas_layout(cb = contiguous_copy(*this, b, b.dtype()));
      if (a.dtype() == DType::Float32)
        blas_matmul<float>(ca, cb, out, la, lb);
      else
        blas_matmul<double>(ca, cb, out, la, lb);
      return;
    }
    case DType::Float16:
    case DType::BFloat16: {
      Tensor out32 = Tensor::empty(out.shape(), DType::Float32);
      matmul(contiguous_copy(*this, a, DType::Float32), contiguous_copy(*this, b, DType::Float32), out32);
      copy(out32, out);
      return;
    }
    case DType::Int64: naive_matmul<std::int64_t>(a, b, out); return;
    case DType::Bool: throw Error("matmul: bool tensors cannot be multiplied");
  }
}

}  // namespace ember
