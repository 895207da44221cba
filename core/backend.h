/// \file
/// \brief The Backend interface: the kernels one device provides. Kernels are not differentiable and
/// do no shape checking of their own; core/ops.h checks, allocates and dispatches, autograd composes.
///
/// Every kernel has a default that throws `"<kernel> is not implemented on <device>"`, so a backend
/// overrides what it has and a missing kernel is reported, never silently replaced.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/block_sparse.h"
#include "core/device.h"
#include "core/tensor.h"

namespace ember {

/// Elementwise functions of one input. Parameters (alpha, lo/hi, exponent) travel in UnaryArgs.
/// GeluErfGrad is the derivative of GeluErf, Φ(x) + x φ(x), for backward.
enum class UnaryOp {
  Neg, Exp, Log, Log1p, Expm1, Sqrt, Rsqrt, Abs, Sign, Sin, Cos, Tanh, Sigmoid, Relu,
  GeluErf, GeluTanh, Silu, Softplus, Elu, PowScalar, Clamp, Reciprocal, Square, Erf, GeluErfGrad, Not, IsFinite
};
/// Elementwise functions of two inputs of one dtype; comparisons write Bool.
enum class BinaryOp { Add, Sub, Mul, Div, Pow, Maximum, Minimum, Eq, Ne, Lt, Le, Gt, Ge, And, Or };
/// Reductions over a set of dims.
enum class ReduceOp { Sum, Mean, Max, Min, Prod };
/// Cumulative ops along one dim.
enum class ScanOp { Cumsum, Cumprod };
/// Random fills.
enum class RandomKind { Uniform, Normal, Bernoulli, RandInt };

/// Scalar parameters of a unary op: Elu alpha (a), PowScalar exponent (a), Clamp bounds (a, b).
struct UnaryArgs {
  double a = 0.0;  ///< first parameter
  double b = 0.0;  ///< second parameter
};

/// Parameters of a random fill: Uniform [a, b), Normal mean a std b, Bernoulli p = a, RandInt [a, b).
struct RandomArgs {
  double a = 0.0;            ///< first parameter
  double b = 1.0;            ///< second parameter
  std::uint64_t seed = 0;    ///< Philox key
  std::uint64_t offset = 0;  ///< first Philox block
};

/// True for the ops that write Bool (Eq, Ne, Lt, Le, Gt, Ge, And, Or).
bool is_comparison(BinaryOp op);

/// The kernels of one device. Output tensors are allocated by the caller with the right shape.
class Backend {
 public:
  virtual ~Backend() = default;
  /// "cpu" or "cuda".
  virtual std::string name() const = 0;
  /// How many devices of this kind are usable.
  virtual int device_count() const { return 1; }
  /// Why no device of this kind is usable ("" when one is), e.g. the CUDA driver's error.
  virtual std::string unavailable_reason() const { return ""; }

  /// Allocates `nbytes` (never null for nbytes > 0).
  virtual void* allocate(std::size_t nbytes) = 0;
  /// Frees what allocate returned.
  virtual void deallocate(void* ptr) = 0;
  /// Copies host bytes to device memory.
  virtual void copy_from_host(void* dst, const void* src, std::size_t nbytes);
  /// Copies device bytes to host memory.
  virtual void copy_to_host(void* dst, const void* src, std::size_t nbytes);

  /// dst = src elementwise (same shape, any strides, dtype converted).
  virtual void copy(const Tensor& src, const Tensor& dst);
  /// dst[...] = value.
  virtual void fill(const Tensor& dst, double value);
  /// out = op(x) (same shape; out is x's dtype, or Bool for Not/IsFinite).
  virtual void unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryArgs args);
  /// out = op(a, b); a, b have out's shape (broadcast by stride 0) and one dtype.
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out);
  /// out = cond ? a : b, all of out's shape (broadcast by stride 0).
  virtual void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out);
  /// out = reduction of contiguous x over `dims` (sorted); out has x's shape with those dims set to 1.
  virtual void reduce(ReduceOp op, const Tensor& x, const std::vector<int>& dims, const Tensor& out);
  /// out (Int64) = index of the max (or min) along `dim`; out has x's shape with dim set to 1.
  virtual void arg_reduce(bool max, const Tensor& x, int dim, const Tensor& out);
  /// out = cumulative op of x along dim.
  virtual void scan(ScanOp op, const Tensor& x, int dim, const Tensor& out);
  /// out = softmax (or log_softmax) of x along dim, numerically stable.
  virtual void softmax(const Tensor& x, int dim, bool log, const Tensor& out);
  /// out[b] = a[b] @ b[b], batch dims broadcast by stride 0; out is contiguous [..., M, N]. Operands
  /// whose last two dims are row-major or transposed go to GEMM as they are (a transpose flag);
  /// any other layout is copied to contiguous first by the backend.
  virtual void matmul(const Tensor& a, const Tensor& b, const Tensor& out);
  /// out = x.index_select(dim, index) (x and index contiguous).
  virtual void index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out);
  /// out[i][j] = x[i][index[i][j]] along dim (PyTorch gather).
  virtual void gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out);
  /// out[i][index[i][j]] += src[i][j] along dim (in place on out).
  virtual void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src);
  /// out[..., i, j] = x[..., i, j] if (j - i >= k) == upper (triu) / (j - i <= k) (tril), else 0.
  virtual void triangle(const Tensor& x, std::int64_t k, bool upper, const Tensor& out);
  /// The attention weights of scores x [..., Tq, Tk] (contiguous): out = softmax(scale · x + M) along the last
  /// dim, with M = −∞ where key j lies after query i's position (j > Tk − Tq + i) when `causal`, else 0.
  virtual void attention_softmax(const Tensor& x, double scale, bool causal, const Tensor& out);
  /// Its backward from y = the forward's output and g = dL/dy: out = scale · y ⊙ (g − Σ_j g ⊙ y).
  virtual void attention_softmax_backward(const Tensor& y, const Tensor& g, double scale, const Tensor& out);
  /// FlashAttention forward (tiled, online softmax) of contiguous q [B, H, Tq, d] and k, v [B, H, Tk, d]:
  /// out [B, H, Tq, d] = softmax(scale · q kᵀ + M) v and lse [B, H, Tq] = the natural-log logsumexp of each row of
  /// scale · q kᵀ + M, with the causal mask M bottom-right aligned as in attention_softmax. A row with no visible
  /// key gets out = 0 and lse = −∞.
  virtual void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                                       const Tensor& out, const Tensor& lse);
  /// Its backward from the forward's out and lse and dout = dL/dout (contiguous): writes dq, dk, dv, recomputing
  /// the attention weights tile by tile.
  virtual void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                        const Tensor& lse, const Tensor& dout, double scale, bool causal,
                                        const Tensor& dq, const Tensor& dk, const Tensor& dv);
  /// Block-sparse attention forward (Child et al. 2019) of contiguous q [B, H, Tq, d] and k, v [B, H, Tk, d], with
  /// layout.length() = Tk and queries at positions Tk − Tq..Tk − 1 (layout.first_query() ≤ Tk − Tq): out = softmax
  /// of scale · q kᵀ over the allowed keys of each query, times v, and lse its natural-log logsumexp, computed as
  /// flash_attention_forward does but only on the layout's active blocks, masking the pairs inside them.
  virtual void block_sparse_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                              const BlockSparseLayout& layout, double scale, const Tensor& out,
                                              const Tensor& lse);
  /// Its backward from the forward's out and lse and dout = dL/dout (contiguous): writes dq, dk, dv, recomputing
  /// the attention weights on the active blocks.
  virtual void block_sparse_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                               const Tensor& lse, const Tensor& dout, const BlockSparseLayout& layout,
                                               double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv);
  /// Layer norm over the last dim of contiguous x [N, D] (RMS norm when `rms`: no mean subtracted):
  /// y = (x - mean) * rstd * w + b with rstd = 1 / sqrt(var + eps) (mean of x^2 for RMS). Writes the
  /// per-row mean and rstd [N] for backward. w and b [D] may be undefined (no scale, no shift).
  virtual void norm_forward(bool rms, const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                            const Tensor& mean, const Tensor& rstd);
  /// Backward of norm_forward given g = dL/dy: gx [N, D], gw and gb [D] (undefined ones are skipped).
  virtual void norm_backward(bool rms, const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, const Tensor& gx, const Tensor& gw, const Tensor& gb);
  /// Real FFT along the last dim (numpy.fft.rfft, unnormalised): for contiguous x [..., L] and every row,
  /// X_k = Σ_{t<n} x_t e^{−2πikt/n} for k = 0..n/2 with x zero-padded (or cut) to n samples; writes
  /// re = Re X and im = Im X, contiguous [..., n/2 + 1].
  virtual void rfft(const Tensor& x, std::int64_t n, const Tensor& re, const Tensor& im);
  /// Inverse real FFT along the last dim (numpy.fft.irfft): for contiguous re, im [..., n/2 + 1], out [..., n]
  /// (contiguous) = (1/n) Σ_{k<n} X_k e^{2πikt/n}, with X_{n−k} = conj X_k filling the upper half. The imaginary
  /// parts of X_0 and (n even) X_{n/2} are ignored.
  virtual void irfft(const Tensor& re, const Tensor& im, std::int64_t n, const Tensor& out);
  /// Mamba's selective scan (technique notes §6) of contiguous x, delta [Bt, T, E], A [E, N] and B, C [Bt, T, N]:
  /// for every channel c, s_t = exp(Δ_{t,c} A_c) ⊙ s_{t−1} + Δ_{t,c} B_t x_{t,c} from s_{−1} = 0, and
  /// y_{t,c} = C_t · s_t. The sequence is scanned in chunks of `chunk` steps: writes y [Bt, T, E] and the state
  /// at the start of every chunk, starts [Bt, ⌈T/chunk⌉, E, N], from which the backward recomputes the states.
  virtual void selective_scan_forward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                                      const Tensor& C, std::int64_t chunk, const Tensor& y, const Tensor& starts);
  /// Its backward from the forward's starts and dy = dL/dy (contiguous): writes dx, ddelta [Bt, T, E],
  /// dA [E, N] (summed over the batch) and dB, dC [Bt, T, N].
  virtual void selective_scan_backward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                                       const Tensor& C, const Tensor& starts, const Tensor& dy, std::int64_t chunk,
                                       const Tensor& dx, const Tensor& ddelta, const Tensor& dA, const Tensor& dB,
                                       const Tensor& dC);
  /// RWKV-4's WKV (technique notes §7a) in the numerically stable form, for contiguous w, u [C] and k, v [Bt, T, C]:
  /// per channel, y_t = (Σ_{i<t} e^{−(t−1−i)w + k_i} v_i + e^{u+k_t} v_t) / (Σ_{i<t} e^{−(t−1−i)w + k_i} + e^{u+k_t})
  /// with the decay w > 0 (the layer passes exp(time_decay)) and the bonus u. Writes y [Bt, T, C].
  virtual void wkv_forward(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v, const Tensor& y);
  /// Its backward from the forward's y and dy = dL/dy (contiguous): writes dw, du [C] (summed over the batch) and
  /// dk, dv [Bt, T, C].
  virtual void wkv_backward(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v, const Tensor& y,
                            const Tensor& dy, const Tensor& dw, const Tensor& du, const Tensor& dk, const Tensor& dv);
  /// Fills out (contiguous) with Philox random numbers. Elements 2k and 2k+1 come from block
  /// offset + k (words 0-1 and 2-3; a Box-Muller pair for Normal), so they depend only on (seed, offset, i).
  virtual void random(RandomKind kind, const Tensor& out, RandomArgs args);

 protected:
  /// Throws "<kernel> is not implemented on <name()>".
  [[noreturn]] void missing(const std::string& kernel) const;
};

/// The backend of a device; throws if that device's backend is not built in or has no device.
Backend& backend_for(Device device);
/// Makes `backend` serve devices of `type` (the CUDA backend registers itself at load time).
void register_backend(DeviceType type, Backend* backend);
/// True when a backend for `type` is registered.
bool has_backend(DeviceType type);

/// How many CUDA devices are usable (0 when the CUDA backend is absent or no GPU is visible).
int cuda_device_count();

}  // namespace ember
