/// \file
/// \brief CpuBackend: ember's kernels on the CPU — strided loops with OpenMP, Eigen-free elementwise
/// math, and OpenBLAS (its OpenMP build) for GEMM.
#pragma once

#include "core/backend.h"

namespace ember {

/// The CPU implementation of every Backend kernel.
class CpuBackend final : public Backend {
 public:
  std::string name() const override { return "cpu"; }
  void* allocate(std::size_t nbytes) override;
  void deallocate(void* ptr) override;
  void copy_from_host(void* dst, const void* src, std::size_t nbytes) override;
  void copy_to_host(void* dst, const void* src, std::size_t nbytes) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void fill(const Tensor& dst, double value) override;
  void unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryArgs args) override;
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) override;
  void reduce(ReduceOp op, const Tensor& x, const std::vector<int>& dims, const Tensor& out) override;
  void arg_reduce(bool max, const Tensor& x, int dim, const Tensor& out) override;
  void scan(ScanOp op, const Tensor& x, int dim, const Tensor& out) override;
  void softmax(const Tensor& x, int dim, bool log, const Tensor& out) override;
  void matmul(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out) override;
  void gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out) override;
  void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) override;
  void triangle(const Tensor& x, std::int64_t k, bool upper, const Tensor& out) override;
  void random(RandomKind kind, const Tensor& out, RandomArgs args) override;
  void rfft(const Tensor& x, std::int64_t n, const Tensor& re, const Tensor& im) override;
  void irfft(const Tensor& re, const Tensor& im, std::int64_t n, const Tensor& out) override;
  void selective_scan_forward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                              std::int64_t chunk, const Tensor& y, const Tensor& starts) override;
  void selective_scan_backward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                               const Tensor& starts, const Tensor& dy, std::int64_t chunk, const Tensor& dx,
                               const Tensor& ddelta, const Tensor& dA, const Tensor& dB, const Tensor& dC) override;
  void attention_softmax(const Tensor& x, double scale, bool causal, const Tensor& out) override;
  void attention_softmax_backward(const Tensor& y, const Tensor& g, double scale, const Tensor& out) override;
  void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                               const Tensor& out, const Tensor& lse) override;
  void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                const Tensor& lse, const Tensor& dout, double scale, bool causal, const Tensor& dq,
                                const Tensor& dk, const Tensor& dv) override;
  void block_sparse_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                      const BlockSparseLayout& layout, double scale, const Tensor& out,
                                      const Tensor& lse) override;
  void block_sparse_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                       const Tensor& lse, const Tensor& dout, const BlockSparseLayout& layout,
                                       double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv) override;
  void norm_forward(bool rms, const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                    const Tensor& mean, const Tensor& rstd) override;
  void norm_backward(bool rms, const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean,
                     const Tensor& rstd, const Tensor& gx, const Tensor& gw, const Tensor& gb) override;
  void wkv_forward(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v, const Tensor& y) override;
  void wkv_backward(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v, const Tensor& y,
                    const Tensor& dy, const Tensor& dw, const Tensor& du, const Tensor& dk, const Tensor& dv) override;
};

}  // namespace ember
