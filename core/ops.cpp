/// \file
/// \brief Raw ops: check shapes, dtypes and devices, allocate outputs, broadcast, and call the backend.
#include "core/ops.h"

#include <algorithm>
#include <iterator>
#include <numeric>

#include <fmt/format.h>

#include "core/creation.h"

namespace ember::raw {

void check_defined(const std::string& op, const Tensor& x) {
  EMBER_CHECK(x.defined(), fmt::format("{}: got an undefined tensor", op));
}

void check_same_device(const std::string& op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.device() == b.device(), fmt::format("{}: tensors are on different devices ({} {} and {} {})", op,
                                                    shape_str(a.shape()), a.device().str(), shape_str(b.shape()),
                                                    b.device().str()));
}

void check_index(const std::string& op, const Tensor& index) {
  check_defined(op, index);
  EMBER_CHECK(index.dtype() == DType::Int64,
              fmt::format("{}: indices must be int64, got {} of shape {}", op, dtype_name(index.dtype()),
                          shape_str(index.shape())));
}

namespace {

Backend& be(const Tensor& t) { return backend_for(t.device()); }

bool float_only(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg:
    case UnaryOp::Abs:
    case UnaryOp::Sign:
    case UnaryOp::Relu:
    case UnaryOp::Clamp:
    case UnaryOp::Square:
    case UnaryOp::Not:
    case UnaryOp::IsFinite: return false;
    default: return true;
  }
}

}  // namespace

Tensor unary(UnaryOp op, const Tensor& x, UnaryArgs args) {
  static const char* names[] = {"neg",        "exp",    "log",  "log1p",       "expm1",   "sqrt",    "rsqrt",
                                "abs",        "sign",   "sin",  "cos",         "tanh",    "sigmoid", "relu",
                                "gelu",       "gelu",   "silu", "softplus",    "elu",     "pow",     "clamp",
                                "reciprocal", "square", "erf",  "gelu_backward", "logical_not", "isfinite"};
  static_assert(std::size(names) == static_cast<std::size_t>(UnaryOp::IsFinite) + 1, "one name per UnaryOp");
  check_defined(names[static_cast<int>(op)], x);
  Tensor in = x;
  if (float_only(op) && !is_floating(x.dtype())) in = to_dtype(x, DType::Float32);
  if (x.dtype() == DType::Bool && (op == UnaryOp::Neg || op == UnaryOp::Abs)) in = to_dtype(x, DType::Int64);
  const bool to_bool = op == UnaryOp::Not || op == UnaryOp::IsFinite;
  Tensor out = Tensor::empty(in.shape(), to_bool ? DType::Bool : in.dtype(), in.device());
  be(in).unary(op, in, out, args);
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  static const char* names[] = {"add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq",
                                "ne",  "lt",  "le",  "gt",  "ge",  "logical_and", "logical_or"};
  const std::string name = names[static_cast<int>(op)];
  check_defined(name, a);
  check_defined(name, b);
  check_same_device(name, a, b);
  const Shape shape = broadcast_shapes(name, a.shape(), b.shape());
  DType dt = promote_types(a.dtype(), b.dtype());
  if (dt == DType::Bool && !is_comparison(op)) dt = DType::Int64;
  if ((op == BinaryOp::Div || op == BinaryOp::Pow) && !is_floating(dt)) dt = DType::Float32;
  const Tensor ea = expand(to_dtype(a, dt), shape), eb = expand(to_dtype(b, dt), shape);
  Tensor out = Tensor::empty(shape, is_comparison(op) ? DType::Bool : dt, a.device());
  be(a).binary(op, ea, eb, out);
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }

Tensor mul_scalar(const Tensor& a, double s) {
  return binary(BinaryOp::Mul, a, scalar_tensor(s, is_floating(a.dtype()) ? a.dtype() : DType::Float32, a.device()));
}

Tensor add_scalar(const Tensor& a, double s) {
  return binary(BinaryOp::Add, a, scalar_tensor(s, is_floating(a.dtype()) ? a.dtype() : DType::Float32, a.device()));
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined("where", cond);
  EMBER_CHECK(cond.dtype() == DType::Bool,
              fmt::format("where: condition must be bool, got {} of shape {}", dtype_name(cond.dtype()),
                          shape_str(cond.shape())));
  check_same_device("where", cond, a);
  check_same_device("where", a, b);
  const Shape shape = broadcast_shapes("where", broadcast_shapes("where", cond.shape(), a.shape()), b.shape());
  const DType dt = promote_types(a.dtype(), b.dtype());
  Tensor out = Tensor::empty(shape, dt, a.device());
  be(a).where(expand(cond, shape), expand(to_dtype(a, dt), shape), expand(to_dtype(b, dt), shape), out);
  return out;
}

namespace {
Shape reduced_shape(const Shape& shape, const std::vector<int>& dims, bool keepdim) {
  Shape out;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    const bool reduced = std::find(dims.begin(), dims.end(), static_cast<int>(d)) != dims.end();
    if (!reduced) out.push_back(shape[d]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}
}  // namespace

Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  static const char* names[] = {"sum", "mean", "max", "min", "prod"};
  const std::string name = names[static_cast<int>(op)];
  check_defined(name, x);
  const auto nd = normalize_dims(name, dims, x.dim());
  Tensor in = contiguous(x.dim() == 0 ? view(x, {1}) : x);  // a 0-d tensor reduces as [1] over dim 0
  if (op == ReduceOp::Max || op == ReduceOp::Min)
    for (int d : nd)
      EMBER_CHECK(in.shape()[d] > 0, fmt::format("{}: cannot reduce the empty dim {} of shape {}", name, d,
                                                 shape_str(x.shape())));
  if (op == ReduceOp::Mean && !is_floating(x.dtype())) in = to_dtype(in, DType::Float32);
  if (x.dtype() == DType::Bool && op != ReduceOp::Max && op != ReduceOp::Min) in = to_dtype(in, DType::Int64);
  Tensor out = Tensor::empty(reduced_shape(in.shape(), nd, true), in.dtype(), x.device());
  be(in).reduce(op, in, nd, out);
  return view(out, reduced_shape(x.shape(), nd, keepdim));
}

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return reduce(ReduceOp::Sum, x, dims, keepdim);
}

Tensor arg_reduce(bool max, const Tensor& x, std::int64_t dim, bool keepdim) {
  const char* name = max ? "argmax" : "argmin";
  check_defined(name, x);
  const int d = normalize_dim(name, dim, x.dim());
  const Tensor in = x.dim() == 0 ? view(x, {1}) : contiguous(x);
  EMBER_CHECK(in.numel() > 0, fmt::format("{}: empty tensor of shape {}", name, shape_str(x.shape())));
  Shape kept = in.shape();
  kept[d] = 1;
  Tensor out = Tensor::empty(kept, DType::Int64, x.device());
  be(in).arg_reduce(max, in, d, out);
  if (keepdim) return x.dim() == 0 ? view(out, {}) : out;
  return squeeze(out, {d});
}

Tensor scan(ScanOp op, const Tensor& x, std::int64_t dim) {
  const char* name = op == ScanOp::Cumsum ? "cumsum" : "cumprod";
  check_defined(name, x);
  const int d = normalize_dim(name, dim, x.dim());
  Tensor in = contiguous(x.dim() == 0 ? view(x, {1}) : x);
  if (in.dtype() == DType::Bool) in = to_dtype(in, DType::Int64);
  Tensor out = Tensor::empty(in.shape(), in.dtype(), x.device());
  be(in).scan(op, in, d, out);
  return x.dim() == 0 ? view(out, {}) : out;
}

Tensor softmax(const Tensor& x, std::int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  check_defined(name, x);
  const int d = normalize_dim(name, dim, x.dim());
  Tensor in = contiguous(is_floating(x.dtype()) ? x : to_dtype(x, DType::Float32));
  if (x.dim() == 0) in = view(in, {1});
  Tensor out = Tensor::empty(in.shape(), in.dtype(), x.device());
  be(in).softmax(in, d, log, out);
  return x.dim() == 0 ? view(out, {}) : out;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const std::int64_t lead = grad.dim() - static_cast<std::int64_t>(shape.size());
  EMBER_CHECK(lead >= 0, fmt::format("sum_to: cannot sum {} down to {}", shape_str(grad.shape()), shape_str(shape)));
  std::vector<std::int64_t> dims;
  for (std::int64_t d = 0; d < grad.dim(); ++d)
    if (d < lead || (shape[d - lead] == 1 && grad.shape()[d] != 1)) dims.push_back(d);
  Tensor s = dims.empty() ? grad : sum(grad, dims, true);
  return view(contiguous(s), shape);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a);
  check_defined("matmul", b);
  check_same_device("matmul", a, b);
  EMBER_CHECK(a.dim() >= 1 && b.dim() >= 1,
              fmt::format("matmul: both operands need at least 1 dim, got {} and {}", shape_str(a.shape()),
                          shape_str(b.shape())));
  EMBER_CHECK(a.dtype() == b.dtype(), fmt::format("matmul: dtypes differ ({} {} and {} {})", shape_str(a.shape()),
                                                  dtype_name(a.dtype()), shape_str(b.shape()), dtype_name(b.dtype())));
  const Tensor A = a.dim() == 1 ? unsqueeze(a, 0) : a;
  const Tensor B = b.dim() == 1 ? unsqueeze(b, 1) : b;
  const std::int64_t K = A.shape().back(), Kb = B.shape()[B.dim() - 2];
  EMBER_CHECK(K == Kb, fmt::format("matmul: cannot multiply {} by {} ({} != {})", shape_str(a.shape()),
                                   shape_str(b.shape()), K, Kb));
  const Shape ba(A.shape().begin(), A.shape().end() - 2), bb(B.shape().begin(), B.shape().end() - 2);
  Shape batch = broadcast_shapes("matmul", ba, bb);
  const std::int64_t M = A.shape()[A.dim() - 2], N = B.shape().back();
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {M, K});
  sb.insert(sb.end(), {K, N});
  so.insert(so.end(), {M, N});
  Tensor out = Tensor::empty(so, a.dtype(), a.device());
  if (out.numel() > 0) be(a).matmul(expand(A, sa), expand(B, sb), out);
  Shape result = batch;
  if (a.dim() > 1) result.push_back(M);
  if (b.dim() > 1) result.push_back(N);
  return view(out, result);
}

Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, std::int64_t offset) {
  return Tensor::from_storage(x.storage(), shape, strides, offset, x.dtype());
}

Shape infer_shape(const std::string& op, Shape shape, std::int64_t numel) {
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      EMBER_CHECK(infer < 0, fmt::format("{}: only one dim can be -1 in {}", op, shape_str(shape)));
      infer = static_cast<std::int64_t>(i);
    } else {
      EMBER_CHECK(shape[i] >= 0, fmt::format("{}: invalid size in {}", op, shape_str(shape)));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    EMBER_CHECK(known != 0 && numel % known == 0,
                fmt::format("{}: shape {} is invalid for {} elements", op, shape_str(shape), numel));
    shape[infer] = numel / known;
  }
  EMBER_CHECK(numel_of(shape) == numel, fmt::format("{}: shape {} is invalid for {} elements", op, shape_str(shape), numel));
  return shape;
}

namespace {
/// Strides that view x's data with `shape`, if x's strides allow it (the rule of PyTorch's
/// computeStride: each run of dims that is contiguous in memory may be split or merged freely).
bool view_strides(const Tensor& x, const Shape& shape, Shape& out) {
  if (x.numel() == 0 || x.is_contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  out.assign(shape.size(), 1);
  const Shape& os = x.shape();
  const Shape& ost = x.strides();
  std::int64_t view_d = static_cast<std::int64_t>(shape.size()) - 1;
  std::int64_t chunk_stride = ost.back(), tensor_numel = 1, view_numel = 1;
  for (std::int64_t d = static_cast<std::int64_t>(os.size()) - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * chunk_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_stride = ost[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}
}  // namespace

Tensor view(const Tensor& x, Shape shape) {
  check_defined("view", x);
  shape = infer_shape("view", shape, x.numel());
  Shape strides;
  EMBER_CHECK(view_strides(x, shape, strides),
              fmt::format("view: cannot view a tensor of shape {} and strides {} as {} without a copy "
                          "(call contiguous() or reshape())",
                          shape_str(x.shape()), shape_str(x.strides()), shape_str(shape)));
  return as_strided(x, shape, strides, x.offset());
}

Tensor reshape(const Tensor& x, Shape shape) {
  check_defined("reshape", x);
  shape = infer_shape("reshape", shape, x.numel());
  Shape strides;
  if (view_strides(x, shape, strides)) return as_strided(x, shape, strides, x.offset());
  return view(clone(x), shape);
}

Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1) {
  check_defined("transpose", x);
  const int a = normalize_dim("transpose", d0, x.dim()), b = normalize_dim("transpose", d1, x.dim());
  if (x.dim() == 0) return x.detach();
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  return as_strided(x, shape, strides, x.offset());
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  check_defined("permute", x);
  EMBER_CHECK(static_cast<std::int64_t>(dims.size()) == x.dim(),
              fmt::format("permute: {} dims given for a tensor of shape {}", dims.size(), shape_str(x.shape())));
  std::vector<bool> seen(dims.size(), false);
  Shape shape, strides;
  for (auto d : dims) {
    const int n = normalize_dim("permute", d, x.dim());
    EMBER_CHECK(!seen[n], fmt::format("permute: dim {} repeated in [{}]", n, fmt::join(dims, ", ")));
    seen[n] = true;
    shape.push_back(x.shape()[n]);
    strides.push_back(x.strides()[n]);
  }
  return as_strided(x, shape, strides, x.offset());
}

Tensor squeeze(const Tensor& x, const std::vector<std::int64_t>& dims) {
  check_defined("squeeze", x);
  std::vector<int> nd;
  for (auto d : dims) nd.push_back(normalize_dim("squeeze", d, x.dim()));
  Shape shape, strides;
  for (int d = 0; d < x.dim(); ++d) {
    const bool listed = dims.empty() || std::find(nd.begin(), nd.end(), d) != nd.end();
    if (listed && x.shape()[d] == 1) continue;
    shape.push_back(x.shape()[d]);
    strides.push_back(x.strides()[d]);
  }
  return as_strided(x, shape, strides, x.offset());
}

Tensor unsqueeze(const Tensor& x, std::int64_t d) {
  check_defined("unsqueeze", x);
  const int n = normalize_dim("unsqueeze", d, x.dim() + 1);
  Shape shape = x.shape(), strides = x.strides();
  const std::int64_t stride = n < x.dim() ? x.strides()[n] * x.shape()[n] : 1;
  shape.insert(shape.begin() + n, 1);
  strides.insert(strides.begin() + n, stride);
  return as_strided(x, shape, strides, x.offset());
}

Tensor expand(const Tensor& x, const Shape& shape) {
  check_defined("expand", x);
  if (x.shape() == shape) return x;
  const std::int64_t lead = static_cast<std::int64_t>(shape.size()) - x.dim();
  EMBER_CHECK(lead >= 0, fmt::format("expand: cannot expand {} to {}", shape_str(x.shape()), shape_str(shape)));
  Shape strides(shape.size(), 0);
  for (std::int64_t d = 0; d < x.dim(); ++d) {
    const std::int64_t s = x.shape()[d], t = shape[d + lead];
    EMBER_CHECK(s == t || s == 1, fmt::format("expand: cannot expand {} to {} (dim {}: {} vs {})", shape_str(x.shape()),
                                              shape_str(shape), d, s, t));
    strides[d + lead] = s == t ? x.strides()[d] : 0;
  }
  return as_strided(x, shape, strides, x.offset());
}

Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  check_defined("slice", x);
  const int d = normalize_dim("slice", dim, x.dim());
  EMBER_CHECK(step > 0, fmt::format("slice: step must be positive, got {}", step));
  const std::int64_t n = x.shape()[d];
  auto clampi = [n](std::int64_t i) { return std::clamp<std::int64_t>(i < 0 ? i + n : i, 0, n); };
  const std::int64_t b = clampi(start), e = std::max(b, clampi(end));
  Shape shape = x.shape(), strides = x.strides();
  shape[d] = (e - b + step - 1) / step;
  strides[d] *= step;
  return as_strided(x, shape, strides, x.offset() + b * x.strides()[d]);
}

Tensor select(const Tensor& x, std::int64_t dim, std::int64_t index) {
  check_defined("select", x);
  const int d = normalize_dim("select", dim, x.dim());
  const std::int64_t n = x.shape()[d];
  EMBER_CHECK(index >= -n && index < n, fmt::format("select: index {} is out of range for dim {} of shape {}", index,
                                                    d, shape_str(x.shape())));
  if (index < 0) index += n;
  Shape shape = x.shape(), strides = x.strides();
  shape.erase(shape.begin() + d);
  strides.erase(strides.begin() + d);
  return as_strided(x, shape, strides, x.offset() + index * x.strides()[d]);
}

Tensor clone(const Tensor& x) {
  check_defined("clone", x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() > 0) be(x).copy(x, out);
  return out;
}

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : clone(x); }

Tensor to_dtype(const Tensor& x, DType dtype) {
  check_defined("to", x);
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  if (x.numel() > 0) be(x).copy(x, out);
  return out;
}

Tensor to_device(const Tensor& x, Device device) {
  check_defined("to", x);
  if (x.device() == device) return x;
  const Tensor src = contiguous(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  const std::size_t nbytes = x.numel() * element_size(x.dtype());
  if (nbytes == 0) return out;
  if (src.device().is_cpu()) {
    backend_for(device).copy_from_host(out.raw_data(), src.raw_data(), nbytes);
  } else if (device.is_cpu()) {
    be(src).copy_to_host(out.raw_data(), src.raw_data(), nbytes);
  } else {
    return to_device(to_device(src, Device::cpu()), device);
  }
  return out;
}

void copy_(const Tensor& dst, const Tensor& src) {
  check_defined("copy_", dst);
  check_defined("copy_", src);
  Tensor s = to_device(src, dst.device());
  EMBER_CHECK(broadcast_shapes("copy_", dst.shape(), s.shape()) == dst.shape(),
              fmt::format("copy_: cannot copy {} into {}", shape_str(src.shape()), shape_str(dst.shape())));
  if (dst.numel() > 0) be(dst).copy(expand(s, dst.shape()), dst);
  dst.storage()->bump_version();
}

void fill_(const Tensor& dst, double value) {
  check_defined("fill_", dst);
  if (dst.numel() > 0) be(dst).fill(dst, value);
  dst.storage()->bump_version();
}

Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
  check_defined("index_select", x);
  check_index("index_select", index);
  EMBER_CHECK(index.dim() <= 1, fmt::format("index_select: index must be 1-D, got shape {}", shape_str(index.shape())));
  check_same_device("index_select", x, index);
  const int d = normalize_dim("index_select", dim, x.dim());
  const Tensor in = contiguous(x.dim() == 0 ? view(x, {1}) : x);
  Shape shape = in.shape();
  shape[d] = index.numel();
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  be(in).index_select(in, d, contiguous(view(index, {-1})), out);
  return out;
}

Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index) {
  check_defined("gather", x);
  check_index("gather", index);
  check_same_device("gather", x, index);
  const int d = normalize_dim("gather", dim, x.dim());
  EMBER_CHECK(index.dim() == x.dim(), fmt::format("gather: index of shape {} must have as many dims as input {}",
                                                  shape_str(index.shape()), shape_str(x.shape())));
  for (int i = 0; i < x.dim(); ++i)
    EMBER_CHECK(i == d || index.shape()[i] <= x.shape()[i],
                fmt::format("gather: index of shape {} is larger than input {} in dim {}", shape_str(index.shape()),
                            shape_str(x.shape()), i));
  Tensor out = Tensor::empty(index.shape(), x.dtype(), x.device());
  be(x).gather(contiguous(x), d, contiguous(index), out);
  return out;
}

Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src) {
  check_defined("scatter_add", x);
  check_index("scatter_add", index);
  check_same_device("scatter_add", x, src);
  const int d = normalize_dim("scatter_add", dim, x.dim());
  EMBER_CHECK(index.dim() == x.dim() && src.dim() == x.dim(),
              fmt::format("scatter_add: index {} and src {} must have as many dims as input {}",
                          shape_str(index.shape()), shape_str(src.shape()), shape_str(x.shape())));
  for (int i = 0; i < x.dim(); ++i)
    EMBER_CHECK(index.shape()[i] <= src.shape()[i] && (i == d || index.shape()[i] <= x.shape()[i]),
                fmt::format("scatter_add: index {} does not fit src {} and input {} in dim {}",
                            shape_str(index.shape()), shape_str(src.shape()), shape_str(x.shape()), i));
  Tensor out = clone(x);
  be(x).scatter_add(out, d, contiguous(index), to_dtype(src, x.dtype()));
  return out;
}

Tensor cat(const std::vector<Tensor>& xs, std::int64_t dim) {
  EMBER_CHECK(!xs.empty(), "cat: expected a non-empty list of tensors");
  for (const auto& x : xs) check_defined("cat", x);
  const Tensor& first = xs[0];
  EMBER_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated");
  const int d = normalize_dim("cat", dim, first.dim());
  Shape shape = first.shape();
  shape[d] = 0;
  DType dt = first.dtype();
  for (const auto& x : xs) {
    check_same_device("cat", first, x);
    EMBER_CHECK(x.dim() == first.dim(), fmt::format("cat: tensors {} and {} differ in number of dims",
                                                    shape_str(first.shape()), shape_str(x.shape())));
    for (int i = 0; i < first.dim(); ++i)
      EMBER_CHECK(i == d || x.shape()[i] == first.shape()[i],
                  fmt::format("cat: shapes {} and {} differ in dim {}", shape_str(first.shape()), shape_str(x.shape()), i));
    shape[d] += x.shape()[d];
    dt = promote_types(dt, x.dtype());
  }
  Tensor out = Tensor::empty(shape, dt, first.device());
  std::int64_t at = 0;
  for (const auto& x : xs) {
    if (x.numel() > 0) be(x).copy(x, slice(out, d, at, at + x.shape()[d]));
    at += x.shape()[d];
  }
  return out;
}

Tensor triangle(const Tensor& x, std::int64_t k, bool upper) {
  const char* name = upper ? "triu" : "tril";
  check_defined(name, x);
  EMBER_CHECK(x.dim() >= 2, fmt::format("{}: needs at least 2 dims, got shape {}", name, shape_str(x.shape())));
  const Tensor in = contiguous(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  be(in).triangle(in, k, upper, out);
  return out;
}

Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, double value) {
  check_defined("pad", x);
  EMBER_CHECK(pads.size() % 2 == 0 && static_cast<std::int64_t>(pads.size()) <= 2 * x.dim(),
              fmt::format("pad: {} padding values for a tensor of shape {} (need an even count, at most 2 per dim)",
                          pads.size(), shape_str(x.shape())));
  Shape shape = x.shape();
  for (std::size_t i = 0; i < pads.size() / 2; ++i) {
    const std::size_t d = x.dim() - 1 - i;
    shape[d] += pads[2 * i] + pads[2 * i + 1];
    EMBER_CHECK(shape[d] >= 0, fmt::format("pad: padding makes dim {} of shape {} negative", d, shape_str(x.shape())));
  }
  Tensor out = full(shape, value, x.dtype(), x.device());
  Tensor src = x, dst = out;
  for (std::size_t i = 0; i < pads.size() / 2; ++i) {
    const std::int64_t d = x.dim() - 1 - static_cast<std::int64_t>(i);
    const std::int64_t lo = pads[2 * i], n = x.shape()[d];
    src = slice(src, d, std::max<std::int64_t>(0, -lo), n - std::max<std::int64_t>(0, -pads[2 * i + 1]));
    dst = slice(dst, d, std::max<std::int64_t>(0, lo), std::max<std::int64_t>(0, lo) + src.shape()[d]);
  }
  if (src.numel() > 0) be(x).copy(src, dst);
  return out;
}

}  // namespace ember::raw
