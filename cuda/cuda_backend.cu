/// \file
/// \brief The CUDA kernels of CudaBackend: memory, strided copy/convert and fill, elementwise add and
/// mul, and Float32 matmul through cuBLAS.
///
/// Elementwise kernels walk one iteration space with one thread per element (a grid-stride loop):
/// thread i turns i into a multi-index over the shape and each operand into its own element offset
/// `sum_d index_d * stride_d`. Before launching, size-1 dims are dropped and neighbouring dims that
/// every operand lays out contiguously are merged, so a contiguous tensor is a single dim.
///
/// cuBLAS is column-major and ember row-major. A row-major matrix X [R, C] with row stride s is, to
/// cuBLAS, the column-major X^T with leading dimension s; so ember's C = A B is computed as
/// C^T = B^T A^T, swapping the operands and M with N.

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/cuda_backend.h"

namespace ember {

namespace {

// --- errors -----------------------------------------------------------------------------------------

// Throws ember::Error naming the failed CUDA call.
void check_cuda(cudaError_t status, const std::string& what) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next launch check does not report it again
  throw Error("cuda " + what + ": " + cudaGetErrorString(status));
}

// Throws ember::Error naming the failed cuBLAS call.
void check_cublas(cublasStatus_t status, const std::string& what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw Error("cuda " + what + ": " + cublasGetStatusString(status));
}

// --- devices ----------------------------------------------------------------------------------------

// What cudaGetDeviceCount said: the count, or why there is none.
struct DeviceProbe {
  int count = 0;
  std::string reason;
};

// Probes once. Without a driver, or with one too old for this toolkit, cudaGetDeviceCount returns an
// error instead of 0; every error means no usable GPU.
const DeviceProbe& device_probe() {
  static const DeviceProbe probe = [] {
    DeviceProbe p;
    int n = 0;
    const cudaError_t status = cudaGetDeviceCount(&n);
    if (status != cudaSuccess) {
      cudaGetLastError();
      p.reason = cudaGetErrorString(status);
    } else if (n == 0) {
      p.reason = "cudaGetDeviceCount found no device";
    } else {
      p.count = n;
    }
    return p;
  }();
  return probe;
}

// The cuBLAS handle of the current device, made on first use. It is deliberately never destroyed:
// at exit the CUDA runtime may already be unloaded, and cublasDestroy would then fail.
cublasHandle_t cublas_handle() {
  static const cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    check_cublas(cublasCreate(&h), "matmul: cublasCreate");
    return h;
  }();
  return handle;
}

// --- element types ----------------------------------------------------------------------------------

// The C++ type a dtype is stored as on the device.
template <class T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) with the storage type of `dtype`.
template <class F>
void dispatch(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(Tag<float>{});
    case DType::Float64: return f(Tag<double>{});
    case DType::Float16: return f(Tag<__half>{});
    case DType::BFloat16: return f(Tag<__nv_bfloat16>{});
    case DType::Int64: return f(Tag<long long>{});
    case DType::Bool: return f(Tag<bool>{});
  }
  throw Error("cuda: unknown dtype");
}

// x as double (exact for every stored type except Int64 beyond 2^53).
template <class T>
__host__ __device__ double to_double(T x) {
  if constexpr (std::is_same_v<T, __half>) return __half2float(x);
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(x);
  else return static_cast<double>(x);
}

// x rounded to T: the 16-bit floats through float with round to nearest even (as the CPU does), Bool
// as x != 0, Int64 by truncation toward zero.
template <class T>
__host__ __device__ T from_double(double x) {
  if constexpr (std::is_same_v<T, __half>) return __float2half_rn(static_cast<float>(x));
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(static_cast<float>(x));
  else if constexpr (std::is_same_v<T, bool>) return x != 0.0;
  else return static_cast<T>(x);
}

// x as D; a same-type copy keeps the bits.
template <class D, class S>
__device__ D convert(S x) {
  if constexpr (std::is_same_v<D, S>) return x;
  else return from_double<D>(to_double(x));
}

// --- iteration space --------------------------------------------------------------------------------

constexpr int kMaxDims = 8;
constexpr int kThreads = 256;
constexpr std::int64_t kMaxBlocks = 1 << 20;

// One operand's view of an elementwise iteration space: sizes and strides in elements, outermost first.
struct Layout {
  int ndim = 0;
  std::int64_t sizes[kMaxDims] = {};
  std::int64_t strides[kMaxDims] = {};
};

// The offset, in elements, of the i-th element in row-major order of the iteration space.
__host__ __device__ std::int64_t element_offset(const Layout& layout, std::int64_t i) {
  std::int64_t offset = 0;
  for (int d = layout.ndim - 1; d >= 0; --d) {
    offset += (i % layout.sizes[d]) * layout.strides[d];
    i /= layout.sizes[d];
  }
  return offset;
}

// The layouts of `operands` (all of `shape`) over one shared iteration space, with size-1 dims dropped
// and a dim merged into its outer neighbour whenever every operand allows it.
std::vector<Layout> plan(const std::string& kernel, const Shape& shape, const std::vector<const Tensor*>& operands) {
  std::vector<Layout> layouts(operands.size());
  for (const Tensor* t : operands)
    EMBER_CHECK(t->shape() == shape, "cuda " + kernel + ": operand shape " + shape_str(t->shape()) +
                                         " differs from " + shape_str(shape));
  int nd = 0;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (std::size_t k = 0; k < operands.size() && merge; ++k)
      merge = layouts[k].strides[nd - 1] == operands[k]->strides()[d] * shape[d];
    EMBER_CHECK(merge || nd < kMaxDims, "cuda " + kernel + ": more than 8 unmergeable dims in " + shape_str(shape));
    const int at = merge ? nd - 1 : nd++;
    for (std::size_t k = 0; k < operands.size(); ++k) {
      layouts[k].sizes[at] = merge ? layouts[k].sizes[at] * shape[d] : shape[d];
      layouts[k].strides[at] = operands[k]->strides()[d];
    }
  }
  for (Layout& layout : layouts) layout.ndim = nd;
  return layouts;
}

// Address of t's first element, as T.
template <class T>
T* data_of(const Tensor& t) {
  char* base = static_cast<char*>(t.storage()->data());
  return reinterpret_cast<T*>(base + t.offset() * static_cast<std::int64_t>(element_size(t.dtype())));
}

// Blocks for n elements (the kernels loop when n needs more).
unsigned blocks_for(std::int64_t n) {
  return static_cast<unsigned>(std::min((n + kThreads - 1) / kThreads, kMaxBlocks));
}

// The first element index of this thread and the grid-stride step.
__device__ std::int64_t first_index() { return blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; }
__device__ std::int64_t grid_step() { return static_cast<std::int64_t>(gridDim.x) * blockDim.x; }

// --- kernels ----------------------------------------------------------------------------------------

// dst[i] = convert(src[i]) for the n elements of the iteration space.
template <class S, class D>
__global__ void copy_kernel(const S* src, Layout src_layout, D* dst, Layout dst_layout, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_step())
    dst[element_offset(dst_layout, i)] = convert<D>(src[element_offset(src_layout, i)]);
}

// dst[i] = value.
template <class T>
__global__ void fill_kernel(T* dst, Layout layout, T value, std::int64_t n) {
  for (std::int64_t i = first_index(); i < n; i += grid_step()) dst[element_offset(layout, i)] = value;
}

struct AddOp {
  template <class T>
  __device__ T operator()(T x, T y) const { return x + y; }
};
struct MulOp {
  template <class T>
  __device__ T operator()(T x, T y) const { return x * y; }
};

// out[i] = op(a[i], b[i]).
template <class T, class Op>
__global__ void binary_kernel(const T* a, Layout la, const T* b, Layout lb, T* out, Layout lo, std::int64_t n, Op op) {
  for (std::int64_t i = first_index(); i < n; i += grid_step())
    out[element_offset(lo, i)] = op(a[element_offset(la, i)], b[element_offset(lb, i)]);
}

// Launches out = op(a, b) for one floating type.
template <class T, class Op>
void launch_binary(const Tensor& a, const Tensor& b, const Tensor& out, Op op) {
  const std::vector<Layout> l = plan("binary", out.shape(), {&a, &b, &out});
  const std::int64_t n = out.numel();
  binary_kernel<<<blocks_for(n), kThreads>>>(data_of<const T>(a), l[0], data_of<const T>(b), l[1], data_of<T>(out),
                                             l[2], n, op);
  check_cuda(cudaGetLastError(), "binary kernel launch");
}

// Launches out = a + b (op Add) or a * b (op Mul).
template <class T>
void launch_add_or_mul(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (op == BinaryOp::Add)
    launch_binary<T>(a, b, out, AddOp{});
  else
    launch_binary<T>(a, b, out, MulOp{});
}

// "add", "mul", ... for messages.
const char* binary_name(BinaryOp op) {
  static const char* const names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                      "ne",  "lt",  "le",  "gt",  "ge",  "and",     "or"};
  return names[static_cast<int>(op)];
}

// --- matmul -----------------------------------------------------------------------------------------

// How cuBLAS reads one row-major operand X [R, C]: the op to apply to its column-major view, and the
// leading dimension of that view.
struct GemmOperand {
  cublasOperation_t op = CUBLAS_OP_N;
  int ld = 1;
};

// Narrows a size to cuBLAS's int, naming the kernel when it does not fit.
int to_int(std::int64_t v) {
  EMBER_CHECK(v >= 0 && v <= INT_MAX, "cuda matmul: size " + std::to_string(v) + " exceeds cuBLAS's int range");
  return static_cast<int>(v);
}

// X with unit column stride is column-major X^T (no op) with ld = row stride; X with unit row stride is
// column-major X (op T) with ld = column stride. A size-1 dim's stride is meaningless, so it is ignored.
std::optional<GemmOperand> gemm_operand(const Tensor& x) {
  const std::int64_t rows = x.size(-2), cols = x.size(-1);
  const std::int64_t row_stride = x.strides()[x.dim() - 2], col_stride = x.strides()[x.dim() - 1];
  if (col_stride == 1 || cols == 1) {
    const std::int64_t ld = rows == 1 ? std::max<std::int64_t>(cols, 1) : row_stride;
    if (ld >= std::max<std::int64_t>(cols, 1)) return GemmOperand{CUBLAS_OP_N, to_int(ld)};
  }
  if (row_stride == 1 || rows == 1) {
    const std::int64_t ld = cols == 1 ? std::max<std::int64_t>(rows, 1) : col_stride;
    if (ld >= std::max<std::int64_t>(rows, 1)) return GemmOperand{CUBLAS_OP_T, to_int(ld)};
  }
  return std::nullopt;
}

// The element offset of each matrix of x over the batch dims of `batch` (x's batch dims align right;
// missing or size-1 ones broadcast).
std::vector<std::int64_t> batch_offsets(const Tensor& x, const Shape& batch) {
  const std::int64_t count = numel_of(batch);
  const std::int64_t skip = static_cast<std::int64_t>(batch.size()) - (x.dim() - 2);
  std::vector<std::int64_t> offsets(static_cast<std::size_t>(count), 0);
  for (std::int64_t i = 0; i < count; ++i) {
    std::int64_t rest = i, offset = 0;
    for (std::int64_t d = static_cast<std::int64_t>(batch.size()) - 1; d >= 0; --d) {
      const std::int64_t index = rest % batch[d];
      rest /= batch[d];
      const std::int64_t xd = d - skip;
      if (xd >= 0 && x.shape()[xd] != 1) offset += index * x.strides()[xd];
    }
    offsets[static_cast<std::size_t>(i)] = offset;
  }
  return offsets;
}

// The common step of offsets[i] = i * step, if there is one.
std::optional<std::int64_t> uniform_step(const std::vector<std::int64_t>& offsets) {
  const std::int64_t step = offsets.size() > 1 ? offsets[1] - offsets[0] : 0;
  for (std::size_t i = 0; i < offsets.size(); ++i)
    if (offsets[i] != static_cast<std::int64_t>(i) * step) return std::nullopt;
  return step;
}

// One GEMM problem in cuBLAS's terms: C^T [N, M] = op(B) [N, K] op(A) [K, M], per batch.
struct GemmPlan {
  int m = 0, n = 0, k = 0;
  GemmOperand a, b;
  std::vector<std::int64_t> a_offsets, b_offsets;
};

// Runs the plan on float data, one strided-batched call when every operand steps uniformly.
void run_sgemm(const GemmPlan& p, const float* a, const float* b, float* c) {
  const float alpha = 1.0f, beta = 0.0f;
  const std::int64_t batch = static_cast<std::int64_t>(p.a_offsets.size());
  const long long c_step = static_cast<long long>(p.m) * p.n;
  const auto a_step = uniform_step(p.a_offsets), b_step = uniform_step(p.b_offsets);
  if (a_step && b_step) {
    check_cublas(cublasSgemmStridedBatched(cublas_handle(), p.b.op, p.a.op, p.n, p.m, p.k, &alpha, b, p.b.ld, *b_step,
                                           a, p.a.ld, *a_step, &beta, c, p.n, c_step, to_int(batch)),
                 "matmul: cublasSgemmStridedBatched");
    return;
  }
  for (std::int64_t i = 0; i < batch; ++i) {
    const std::size_t s = static_cast<std::size_t>(i);
    check_cublas(cublasSgemm(cublas_handle(), p.b.op, p.a.op, p.n, p.m, p.k, &alpha, b + p.b_offsets[s], p.b.ld,
                             a + p.a_offsets[s], p.a.ld, &beta, c + i * c_step, p.n),
                 "matmul: cublasSgemm");
  }
}

}  // namespace

// --- CudaBackend ------------------------------------------------------------------------------------

CudaBackend::CudaBackend() { register_backend(DeviceType::CUDA, this); }

std::string CudaBackend::name() const { return "cuda"; }

int CudaBackend::device_count() const { return device_probe().count; }

std::string CudaBackend::unavailable_reason() const { return device_probe().reason; }

void* CudaBackend::allocate(std::size_t nbytes) {
  EMBER_CHECK(device_count() > 0, "cuda: no CUDA device is visible (" + device_probe().reason + ")");
  if (nbytes == 0) return nullptr;
  void* ptr = nullptr;
  check_cuda(cudaMalloc(&ptr, nbytes), "allocate: cannot allocate " + std::to_string(nbytes) + " bytes");
  return ptr;
}

void CudaBackend::deallocate(void* ptr) {
  if (ptr == nullptr) return;
  const cudaError_t status = cudaFree(ptr);
  if (status == cudaSuccess) return;
  cudaGetLastError();
  // After main returns the runtime may already be unloaded and has freed everything itself.
  if (status != cudaErrorCudartUnloading)
    std::fprintf(stderr, "ember: cuda deallocate: cudaFree failed: %s\n", cudaGetErrorString(status));
}

void CudaBackend::copy_from_host(void* dst, const void* src, std::size_t nbytes) {
  if (nbytes == 0) return;
  check_cuda(cudaMemcpy(dst, src, nbytes, cudaMemcpyHostToDevice),
             "copy_from_host: cudaMemcpy of " + std::to_string(nbytes) + " bytes");
}

void CudaBackend::copy_to_host(void* dst, const void* src, std::size_t nbytes) {
  if (nbytes == 0) return;
  check_cuda(cudaMemcpy(dst, src, nbytes, cudaMemcpyDeviceToHost),
             "copy_to_host: cudaMemcpy of " + std::to_string(nbytes) + " bytes");
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  // src: [...], dst: [...] (same shape) -> dst = src converted to dst's dtype.
  const std::int64_t n = dst.numel();
  if (n == 0) return;
  const std::vector<Layout> l = plan("copy", dst.shape(), {&src, &dst});
  dispatch(src.dtype(), [&](auto s) {
    using S = typename decltype(s)::type;
    dispatch(dst.dtype(), [&](auto d) {
      using D = typename decltype(d)::type;
      copy_kernel<<<blocks_for(n), kThreads>>>(data_of<const S>(src), l[0], data_of<D>(dst), l[1], n);
    });
  });
  check_cuda(cudaGetLastError(), "copy kernel launch");
}

void CudaBackend::fill(const Tensor& dst, double value) {
  // dst: [...] -> every element = value in dst's dtype.
  const std::int64_t n = dst.numel();
  if (n == 0) return;
  const std::vector<Layout> l = plan("fill", dst.shape(), {&dst});
  dispatch(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_kernel<<<blocks_for(n), kThreads>>>(data_of<T>(dst), l[0], from_double<T>(value), n);
  });
  check_cuda(cudaGetLastError(), "fill kernel launch");
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  // a, b, out: [...] (a, b broadcast by stride 0) -> out = op(a, b).
  const std::string name = binary_name(op);
  if (op != BinaryOp::Add && op != BinaryOp::Mul) missing("binary " + name);
  if (out.dtype() != DType::Float32 && out.dtype() != DType::Float64)
    missing("binary " + name + " on " + dtype_name(out.dtype()));
  if (out.numel() == 0) return;
  if (out.dtype() == DType::Float32)
    launch_add_or_mul<float>(op, a, b, out);
  else
    launch_add_or_mul<double>(op, a, b, out);
}

void CudaBackend::matmul(const Tensor& a, const Tensor& b, const Tensor& out) {
  // a: [..., M, K], b: [..., K, N] -> out: [..., M, N] (contiguous).
  if (out.dtype() != DType::Float32) missing("matmul on " + dtype_name(out.dtype()));
  const std::int64_t k = a.size(-1);
  if (out.numel() == 0) return;
  if (k == 0) return fill(out, 0.0);
  const Tensor ca = gemm_ready(a), cb = gemm_ready(b);
  const Shape batch(out.shape().begin(), out.shape().end() - 2);
  GemmPlan p{to_int(out.size(-2)), to_int(out.size(-1)), to_int(k), *gemm_operand(ca), *gemm_operand(cb),
             batch_offsets(ca, batch), batch_offsets(cb, batch)};
  run_sgemm(p, data_of<const float>(ca), data_of<const float>(cb), data_of<float>(out));
}

Tensor CudaBackend::gemm_ready(const Tensor& x) {
  // x: [..., R, C] -> x, or a contiguous copy when cuBLAS cannot read its last two dims in place.
  if (gemm_operand(x)) return x;
  const Tensor packed = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy(x, packed);
  return packed;
}

namespace {
// Registers the CUDA backend when the ember library loads.
CudaBackend cuda_backend_instance;
}  // namespace

}  // namespace ember
