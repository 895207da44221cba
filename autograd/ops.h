/// \file
/// \brief The differentiable functional API: every op users call on tensors (ember::add,
/// ember::matmul, ember::softmax, ...). Each calls the raw op of core/ops.h and, when an input
/// requires grad, records a node with the op's backward (the chain rule for that op).
#pragma once

#include <cstdint>
#include <vector>

#include "core/creation.h"
#include "core/tensor.h"

namespace ember {

// --- arithmetic (NumPy broadcasting; gradients are summed back to each input's shape) ---
/// a + b
Tensor add(const Tensor& a, const Tensor& b);
/// a - b
Tensor sub(const Tensor& a, const Tensor& b);
/// a * b
Tensor mul(const Tensor& a, const Tensor& b);
/// a / b
Tensor div(const Tensor& a, const Tensor& b);
/// a ^ b elementwise (a > 0 where b is not an integer)
Tensor pow(const Tensor& a, const Tensor& b);
/// x ^ exponent
Tensor pow(const Tensor& x, double exponent);
/// max(a, b) elementwise (the gradient goes to the larger; split evenly on ties)
Tensor maximum(const Tensor& a, const Tensor& b);
/// min(a, b) elementwise
Tensor minimum(const Tensor& a, const Tensor& b);
/// a + b
Tensor operator+(const Tensor& a, const Tensor& b);
/// a - b
Tensor operator-(const Tensor& a, const Tensor& b);
/// a * b
Tensor operator*(const Tensor& a, const Tensor& b);
/// a / b
Tensor operator/(const Tensor& a, const Tensor& b);
/// -x
Tensor operator-(const Tensor& x);
/// a + s
Tensor operator+(const Tensor& a, double s);
/// s + a
Tensor operator+(double s, const Tensor& a);
/// a - s
Tensor operator-(const Tensor& a, double s);
/// s - a
Tensor operator-(double s, const Tensor& a);
/// a * s
Tensor operator*(const Tensor& a, double s);
/// s * a
Tensor operator*(double s, const Tensor& a);
/// a / s
Tensor operator/(const Tensor& a, double s);
/// s / a
Tensor operator/(double s, const Tensor& a);

// --- comparisons and logic (Bool results, not differentiable) ---
/// a == b
Tensor eq(const Tensor& a, const Tensor& b);
/// a != b
Tensor ne(const Tensor& a, const Tensor& b);
/// a < b
Tensor lt(const Tensor& a, const Tensor& b);
/// a <= b
Tensor le(const Tensor& a, const Tensor& b);
/// a > b
Tensor gt(const Tensor& a, const Tensor& b);
/// a >= b
Tensor ge(const Tensor& a, const Tensor& b);
/// a and b
Tensor logical_and(const Tensor& a, const Tensor& b);
/// a or b
Tensor logical_or(const Tensor& a, const Tensor& b);
/// not a
Tensor logical_not(const Tensor& a);
/// a == b
Tensor operator==(const Tensor& a, const Tensor& b);
/// a != b
Tensor operator!=(const Tensor& a, const Tensor& b);
/// a < b
Tensor operator<(const Tensor& a, const Tensor& b);
/// a <= b
Tensor operator<=(const Tensor& a, const Tensor& b);
/// a > b
Tensor operator>(const Tensor& a, const Tensor& b);
/// a >= b
Tensor operator>=(const Tensor& a, const Tensor& b);

// --- unary math ---
/// -x
Tensor neg(const Tensor& x);
/// e^x
Tensor exp(const Tensor& x);
/// ln x
Tensor log(const Tensor& x);
/// ln(1 + x), accurate near 0
Tensor log1p(const Tensor& x);
/// e^x - 1, accurate near 0
Tensor expm1(const Tensor& x);
/// sqrt x
Tensor sqrt(const Tensor& x);
/// 1 / sqrt x
Tensor rsqrt(const Tensor& x);
/// |x| (gradient sign(x), 0 at 0)
Tensor abs(const Tensor& x);
/// x^2
Tensor square(const Tensor& x);
/// sin x
Tensor sin(const Tensor& x);
/// cos x
Tensor cos(const Tensor& x);
/// tanh x
Tensor tanh(const Tensor& x);
/// 1 / (1 + e^-x)
Tensor sigmoid(const Tensor& x);
/// max(x, 0)
Tensor relu(const Tensor& x);
/// x * Phi(x) (erf form), or the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
/// x * sigmoid(x)
Tensor silu(const Tensor& x);
/// ln(1 + e^x)
Tensor softplus(const Tensor& x);
/// x for x > 0, alpha (e^x - 1) otherwise
Tensor elu(const Tensor& x, double alpha = 1.0);
/// min(max(x, lo), hi) (gradient 1 strictly inside, 0 outside)
Tensor clamp(const Tensor& x, double lo, double hi);
/// cond ? a : b with broadcasting
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// x with `value` where mask is true
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);

// --- reductions (empty dims = all dims) ---
/// Sum over dims.
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// Mean over dims.
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// Variance over dims (divided by n - 1 when unbiased).
Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool unbiased = true, bool keepdim = false);
/// Maximum over dims (the gradient is split evenly among tied maxima).
Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// Minimum over dims.
Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// Index of the maximum along dim (Int64, not differentiable).
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// Index of the minimum along dim.
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// log sum exp over dims, computed as m + log sum exp(x - m).
Tensor logsumexp(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
/// p-norm over dims: (sum |x|^p)^(1/p).
Tensor norm(const Tensor& x, double p = 2.0, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// Cumulative sum along dim.
Tensor cumsum(const Tensor& x, std::int64_t dim);
/// Cumulative product along dim.
Tensor cumprod(const Tensor& x, std::int64_t dim);
/// softmax along dim: exp(x_i - m) / sum_j exp(x_j - m).
Tensor softmax(const Tensor& x, std::int64_t dim);
/// log_softmax along dim: x_i - logsumexp(x).
Tensor log_softmax(const Tensor& x, std::int64_t dim);

// --- linear algebra ---
/// Matrix product with batch broadcasting (1-D operands as in NumPy).
Tensor matmul(const Tensor& a, const Tensor& b);

// --- shape and views ---
/// Same data viewed with a new shape (one -1 allowed); throws when a copy would be needed.
Tensor view(const Tensor& x, const Shape& shape);
/// A view when possible, a copy otherwise.
Tensor reshape(const Tensor& x, const Shape& shape);
/// Swaps dims d0 and d1.
Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1);
/// Reorders dims.
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
/// Drops size-1 dims (those listed, or all).
Tensor squeeze(const Tensor& x, const std::vector<std::int64_t>& dims = {});
/// Inserts a size-1 dim at d.
Tensor unsqueeze(const Tensor& x, std::int64_t d);
/// Broadcasts to shape without copying.
Tensor expand(const Tensor& x, const Shape& shape);
/// Merges dims start..end into one.
Tensor flatten(const Tensor& x, std::int64_t start = 0, std::int64_t end = -1);
/// start:end:step along dim.
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
/// x[index] along dim (the dim is removed).
Tensor select(const Tensor& x, std::int64_t dim, std::int64_t index);
/// length elements from start along dim.
Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length);
/// Rows picked by a 1-D Int64 index along dim.
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index);
/// out[i][j] = x[i][index[i][j]] along dim.
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index);
/// x with src added at index along dim (out of place).
Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src);
/// Concatenation along dim.
Tensor cat(const std::vector<Tensor>& xs, std::int64_t dim = 0);
/// Stacks along a new dim.
Tensor stack(const std::vector<Tensor>& xs, std::int64_t dim = 0);
/// Pieces of `size` along dim (the last may be smaller).
std::vector<Tensor> split(const Tensor& x, std::int64_t size, std::int64_t dim = 0);
/// `chunks` pieces of equal size (the last may be smaller) along dim.
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim = 0);
/// Lower triangle from diagonal k.
Tensor tril(const Tensor& x, std::int64_t k = 0);
/// Upper triangle from diagonal k.
Tensor triu(const Tensor& x, std::int64_t k = 0);
/// Int64 indices -> Float32 one-hot rows (num_classes wide; -1 infers max + 1).
Tensor one_hot(const Tensor& index, std::int64_t num_classes = -1);
/// Constant padding of the last dims: {left, right} per dim from the last.
Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, double value = 0.0);

}  // namespace ember
