/// \file
/// \brief The raw tensor ops: shape checking, allocation, broadcasting and dispatch to the backend of
/// the inputs' device. They record no autograd history; autograd/ops.h wraps them into the
/// differentiable API that users call (ember::add, ember::matmul, ...).
#pragma once

#include <cstdint>
#include <vector>

#include "core/backend.h"
#include "core/tensor.h"

/// Non-differentiable building blocks (used by autograd's forward and backward passes).
namespace ember::raw {

// --- elementwise ---
/// op(x) elementwise; integer inputs to float-only functions are computed in Float32.
Tensor unary(UnaryOp op, const Tensor& x, UnaryArgs args = {});
/// op(a, b) with NumPy broadcasting and type promotion.
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
/// a + b
Tensor add(const Tensor& a, const Tensor& b);
/// a - b
Tensor sub(const Tensor& a, const Tensor& b);
/// a * b
Tensor mul(const Tensor& a, const Tensor& b);
/// a / b
Tensor div(const Tensor& a, const Tensor& b);
/// a * s
Tensor mul_scalar(const Tensor& a, double s);
/// a + s
Tensor add_scalar(const Tensor& a, double s);
/// cond ? a : b with broadcasting; cond is Bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// --- reductions ---
/// Reduces over dims (empty = all), keepdim keeps them as size 1.
Tensor reduce(ReduceOp op, const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim);
/// Sum over dims.
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// Index of the max (max = true) or min along dim (Int64).
Tensor arg_reduce(bool max, const Tensor& x, std::int64_t dim, bool keepdim);
/// Cumulative sum or product along dim.
Tensor scan(ScanOp op, const Tensor& x, std::int64_t dim);
/// softmax or log_softmax along dim.
Tensor softmax(const Tensor& x, std::int64_t dim, bool log);
/// Sums `grad` down to `shape` (undoes broadcasting).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// --- linear algebra ---
/// Matrix product with NumPy matmul semantics (1-D operands promoted, batch dims broadcast).
Tensor matmul(const Tensor& a, const Tensor& b);

// --- views (share storage) ---
/// A view with explicit geometry.
Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, std::int64_t offset);
/// Same data, new shape (one dim may be -1); throws if the strides do not allow a view.
Tensor view(const Tensor& x, Shape shape);
/// A view when possible, else a contiguous copy.
Tensor reshape(const Tensor& x, Shape shape);
/// Swaps two dims.
Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1);
/// Reorders dims.
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
/// Removes size-1 dims (all of them when dims is empty).
Tensor squeeze(const Tensor& x, const std::vector<std::int64_t>& dims = {});
/// Inserts a size-1 dim at d.
Tensor unsqueeze(const Tensor& x, std::int64_t d);
/// Broadcasts size-1 dims to `shape` (stride 0), adding leading dims as needed.
Tensor expand(const Tensor& x, const Shape& shape);
/// Elements start, start + step, ... below end along dim.
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
/// x[..., index, ...] along dim (removes the dim).
Tensor select(const Tensor& x, std::int64_t dim, std::int64_t index);
/// The new shape of a reshape with one -1 resolved; throws naming `op` when numel differs.
Shape infer_shape(const std::string& op, Shape shape, std::int64_t numel);

// --- copies ---
/// A contiguous copy (same dtype and device).
Tensor clone(const Tensor& x);
/// x if contiguous, else clone(x).
Tensor contiguous(const Tensor& x);
/// Converted to dtype (x itself when it already is).
Tensor to_dtype(const Tensor& x, DType dtype);
/// Copied to device (x itself when it already is there).
Tensor to_device(const Tensor& x, Device device);
/// dst[...] = src (broadcast, converted); bumps dst's version.
void copy_(const Tensor& dst, const Tensor& src);
/// dst[...] = value; bumps dst's version.
void fill_(const Tensor& dst, double value);

// --- indexing and joining ---
/// Rows of x along dim picked by a 1-D Int64 index.
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index);
/// PyTorch gather: out[i][j] = x[i][index[i][j]] along dim.
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index);
/// A copy of x with src added at index along dim (PyTorch scatter_add, out of place).
Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src);
/// Concatenation along dim.
Tensor cat(const std::vector<Tensor>& xs, std::int64_t dim);
/// Lower (upper = false) or upper triangle from diagonal k, zeros elsewhere.
Tensor triangle(const Tensor& x, std::int64_t k, bool upper);
/// Pads the last dims: pads = {left_last, right_last, left_prev, right_prev, ...} with a constant.
Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, double value);

/// Throws unless x is defined; `op` names the caller.
void check_defined(const std::string& op, const Tensor& x);
/// Throws unless a and b are on the same device.
void check_same_device(const std::string& op, const Tensor& a, const Tensor& b);
/// Throws unless index has dtype Int64.
void check_index(const std::string& op, const Tensor& index);

}  // namespace ember::raw
