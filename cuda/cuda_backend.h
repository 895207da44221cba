/// \file
/// \brief CudaBackend: core's Backend interface on an NVIDIA GPU (cudaMalloc, strided elementwise
/// kernels, cuBLAS GEMM).
///
/// One instance registers itself for DeviceType::CUDA when the ember library loads. It works on the
/// current CUDA device (device 0 unless the program chose another) and on the legacy default stream,
/// so host copies are ordered after every kernel launched before them. Kernels it does not have keep
/// Backend's default and throw `"<kernel> is not implemented on cuda"`.
///
/// This header is plain C++ (no CUDA headers), so host code can name the class without nvcc.
#pragma once

#include <cstddef>
#include <string>

#include "core/backend.h"

namespace ember {

/// The CUDA implementation of Backend. A machine without a usable GPU or driver has device_count() 0
/// and allocate() throws, so no CUDA tensor can be made there.
class CudaBackend : public Backend {
 public:
  /// Registers this backend for DeviceType::CUDA. Touches no CUDA API, so loading ember is safe
  /// without a driver.
  CudaBackend();

  /// "cuda".
  std::string name() const override;
  /// Visible CUDA devices, probed once; any error from the driver (none installed, too old) counts as 0.
  int device_count() const override;
  /// What cudaGetDeviceCount reported when it found no usable device ("" when one is there).
  std::string unavailable_reason() const override;

  /// cudaMalloc of `nbytes` (null for 0); throws when no GPU is visible or memory runs out.
  void* allocate(std::size_t nbytes) override;
  /// cudaFree; never throws (it runs in Storage's destructor), reports a failure on stderr.
  void deallocate(void* ptr) override;
  /// Host -> device bytes (synchronous).
  void copy_from_host(void* dst, const void* src, std::size_t nbytes) override;
  /// Device -> host bytes (synchronous, after every kernel launched before it).
  void copy_to_host(void* dst, const void* src, std::size_t nbytes) override;

  /// dst = src elementwise, any strides (at most 8 dims of size > 1), any dtype pair: a same-dtype copy
  /// moves bits; a conversion goes through double (Float16/BFloat16 through float, rounding to nearest
  /// even), to Bool as x != 0, to Int64 by truncation.
  void copy(const Tensor& src, const Tensor& dst) override;
  /// dst[...] = value for every dtype, any strides.
  void fill(const Tensor& dst, double value) override;
  /// out = a + b or a * b for Float32 and Float64, any strides (broadcast by stride 0).
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  /// a: [..., M, K] @ b: [..., K, N] -> out: [..., M, N] (contiguous) for Float32 through cuBLAS.
  /// An operand whose last two dims are row-major (stride[-1] == 1) or transposed (stride[-2] == 1)
  /// is read in place, any other is first copied contiguous; batch dims may be broadcast by stride 0.
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override;

 private:
  // x, or a contiguous copy of it when its last two dims are neither row-major nor transposed (core's
  // raw::matmul passes slices such as x[:, ::2] through unchanged).
  Tensor gemm_ready(const Tensor& x);
};

}  // namespace ember
