/// \file
/// \brief Cross-entropy as one fused op (forward: each row's log-sum-exp in one parallel pass over rows; backward:
/// (softmax − q) · g / N_valid written directly), and the mean squared error composed from
/// differentiable ops.
#include "train/loss.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;

/// Below this many logits a loop runs on one thread.
constexpr std::int64_t kParallelGrain = 32768;

/// What the kernels need to know about one cross-entropy call.
struct CeConfig {
  std::int64_t rows = 0;          ///< N or B·T
  std::int64_t classes = 0;       ///< V
  std::int64_t ignore_index = 0;  ///< targets equal to this are skipped
  double smoothing = 0.0;         ///< ε
};

/// Throws unless logits [N, V] / [B, T, V] and target [N] / [B, T] Int64 agree.
void check_ce_inputs(const Tensor& logits, const Tensor& target, double smoothing) {
  raw::check_defined("cross_entropy", logits);
  raw::check_defined("cross_entropy", target);
  EMBER_CHECK(
      logits.dim() == 2 || logits.dim() == 3,
      fmt::format("cross_entropy: logits must be [N, V] or [B, T, V], got shape {}", shape_str(logits.shape())));
  EMBER_CHECK(is_floating(logits.dtype()),
              fmt::format("cross_entropy: logits must be floating point, got {}", dtype_name(logits.dtype())));
  EMBER_CHECK(target.dtype() == DType::Int64,
              fmt::format("cross_entropy: target must hold Int64 class indices, got {}", dtype_name(target.dtype())));
  const Shape expected(logits.shape().begin(), logits.shape().end() - 1);
  EMBER_CHECK(target.shape() == expected,
              fmt::format("cross_entropy: target of shape {} does not match logits of shape {} (expected target {})",
                          shape_str(target.shape()), shape_str(logits.shape()), shape_str(expected)));
  EMBER_CHECK(logits.shape().back() > 0,
              fmt::format("cross_entropy: logits of shape {} have no classes", shape_str(logits.shape())));
  EMBER_CHECK(logits.device().is_cpu() && target.device().is_cpu(),
              fmt::format("cross_entropy is not implemented on CUDA (logits on {}, target on {})",
                          logits.device().str(), target.device().str()));
  EMBER_CHECK(smoothing >= 0.0 && smoothing <= 1.0,
              fmt::format("cross_entropy: label_smoothing must be in [0, 1], got {}", smoothing));
}

/// The multi-index of flat position `flat` in `shape`, as "[b, t]".
std::string position_str(std::int64_t flat, const Shape& shape) {
  Shape index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(index);
}

/// Counts the targets that are not ignored; throws naming the first one outside [0, V).
std::int64_t count_valid_targets(const std::int64_t* y, const CeConfig& c, const Shape& target_shape) {
  std::int64_t valid = 0;
  for (std::int64_t r = 0; r < c.rows; ++r) {
    if (y[r] == c.ignore_index) continue;
    EMBER_CHECK(y[r] >= 0 && y[r] < c.classes,
                fmt::format("cross_entropy: target {} at position {} is out of range [0, {}) and is not "
                            "ignore_index ({})",
                            y[r], position_str(r, target_shape), c.classes, c.ignore_index));
    ++valid;
  }
  return valid;
}

/// e^x for float x <= 0 (all that softmax needs), written without calls or branches so that loops
/// over it vectorise (glibc's expf does not without -ffast-math). Cephes' method: x = n ln2 + r with
/// |r| <= ln2/2, e^r from a degree-7 polynomial, 2^n from the exponent bits; relative error below 1e-7,
/// exactly 0 below ln(FLT_MIN) (so exp(−inf) = 0), NaN for NaN.
inline float exp_vec(float x) {
  constexpr float kLo = -87.33654f, kHi = 88.3762626647949f;
  const float xc = std::min(std::max(x, kLo), kHi);
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln2): 1.5·2²³ trick
  const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;             // ln2 split in two: n ln2 is exact
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const float keep = x >= kLo ? 1.0f : 0.0f;  // for NaN, e is NaN already and NaN · 0 stays NaN
  return e * std::bit_cast<float>((static_cast<std::int32_t>(n) + 127) << 23) * keep;
}
inline double exp_vec(double x) { return std::exp(x); }

/// Independent accumulators, one per SIMD lane: the sums vectorise without reassociating a single sum.
constexpr std::int64_t kLanes = 16;

/// max_j z_j over a row of n.
template <class T>
T row_max(const T* z, std::int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (std::int64_t j = 0; j < n; ++j) m = m > z[j] ? m : z[j];
  return m;
}

/// Σ_j exp(z_j − m) and Σ_j z_j over a row of n, summed in double.
template <class T>
std::pair<double, double> row_sums(const T* z, std::int64_t n, T m) {
  double s[kLanes] = {}, zs[kLanes] = {};
  std::int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (std::int64_t k = 0; k < kLanes; ++k) {
      s[k] += static_cast<double>(exp_vec(z[j + k] - m));
      zs[k] += static_cast<double>(z[j + k]);
    }
  for (; j < n; ++j) {
    s[0] += static_cast<double>(exp_vec(z[j] - m));
    zs[0] += static_cast<double>(z[j]);
  }
  double total = 0.0, ztotal = 0.0;
  for (std::int64_t k = 0; k < kLanes; ++k) {
    total += s[k];
    ztotal += zs[k];
  }
  return {total, ztotal};
}

/// Row r's loss ℓ = (1 − ε)(lse − z_y) + ε (lse − mean_j z_j), storing lse(z) = m + log Σ_j exp(z_j − m)
/// in *lse. Two sweeps over the row while it sits in cache: its max m, then the sum of exp(z_j − m) <= V,
/// which cannot overflow.
template <class T>
double ce_row_forward(const T* z, std::int64_t y, const CeConfig& c, double* lse) {
  T m = row_max(z, c.classes);
  if (!std::isfinite(m)) m = 0;  // all −inf: lse = −inf below (an +inf or NaN logit gives NaN, as in PyTorch)
  const auto [s, zsum] = row_sums(z, c.classes, m);
  *lse = static_cast<double>(m) + std::log(s);
  const double nll = *lse - static_cast<double>(z[y]);
  if (c.smoothing == 0.0) return nll;  // no ε·mean term: a −inf (masked) logit must not make it 0 · inf
  return (1.0 - c.smoothing) * nll + c.smoothing * (*lse - zsum / static_cast<double>(c.classes));
}

/// Per-row losses (0 for ignored rows) and log-sum-exps of z: [rows, V], rows in parallel.
template <class T>
void ce_forward(const T* z, const std::int64_t* y, const CeConfig& c, double* lse, double* loss) {
#pragma omp parallel for schedule(static) if (c.rows * c.classes >= kParallelGrain)
  for (std::int64_t r = 0; r < c.rows; ++r) {
    lse[r] = 0.0;
    loss[r] = y[r] == c.ignore_index ? 0.0 : ce_row_forward(z + r * c.classes, y[r], c, lse + r);
  }
}

/// dz = scale · (softmax(z) − q) per row, q = (1 − ε) onehot(y) + ε/V; 0 on ignored rows.
template <class T>
void ce_backward(const T* z, const std::int64_t* y, const double* lse, const CeConfig& c, double scale, T* dz) {
  const T off = static_cast<T>(scale * c.smoothing / static_cast<double>(c.classes));
  const T on = static_cast<T>(scale * (1.0 - c.smoothing));
#pragma omp parallel for schedule(static) if (c.rows * c.classes >= kParallelGrain)
  for (std::int64_t r = 0; r < c.rows; ++r) {
    const T* zr = z + r * c.classes;
    T* dr = dz + r * c.classes;
    if (y[r] == c.ignore_index) {
      for (std::int64_t j = 0; j < c.classes; ++j) dr[j] = T(0);
      continue;
    }
    const T l = static_cast<T>(lse[r]), sc = static_cast<T>(scale);
    for (std::int64_t j = 0; j < c.classes; ++j) dr[j] = sc * exp_vec(zr[j] - l) - off;
    dr[y[r]] -= on;
  }
}

/// Calls f(T{}) with T = float or double for x's dtype.
template <class F>
void dispatch_float(const Tensor& x, F&& f) {
  if (x.dtype() == DType::Float64)
    f(double{});
  else
    f(float{});
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, std::int64_t ignore_index, double label_smoothing) {
  check_ce_inputs(logits, target, label_smoothing);
  Tensor x = amp::autocast("cross_entropy", logits);
  if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64) x = x.to(DType::Float32);
  x = x.contiguous();
  const Tensor y = raw::contiguous(target);
  const CeConfig c{y.numel(), x.shape().back(), ignore_index, label_smoothing};
  const std::int64_t valid = count_valid_targets(y.data_ptr<std::int64_t>(), c, target.shape());

  Tensor lse = Tensor::empty({c.rows}, DType::Float64);
  std::vector<double> row_loss(static_cast<std::size_t>(c.rows));
  dispatch_float(x, [&](auto tag) {
    using T = decltype(tag);
    ce_forward<T>(x.data_ptr<T>(), y.data_ptr<std::int64_t>(), c, lse.data_ptr<double>(), row_loss.data());
  });
  double total = 0.0;  // summed in row order, so the result does not depend on the thread count
  for (double v : row_loss) total += v;
  Tensor out = scalar_tensor(valid > 0 ? total / static_cast<double>(valid) : 0.0, x.dtype());
  if (!needs_grad({x})) return out;

  SavedTensor sx(x), sy(y);
  return record(out, "CrossEntropyBackward", {x}, [sx, sy, lse, c, valid](const Grads& g) {
    const Tensor X = sx.get("CrossEntropyBackward"), Y = sy.get("CrossEntropyBackward");
    const double scale = valid > 0 ? g[0].item() / static_cast<double>(valid) : 0.0;
    Tensor dx = Tensor::empty(X.shape(), X.dtype());
    dispatch_float(X, [&](auto tag) {
      using T = decltype(tag);
      ce_backward<T>(X.data_ptr<T>(), Y.data_ptr<std::int64_t>(), lse.data_ptr<double>(), c, scale, dx.data_ptr<T>());
    });
    return Grads{dx};
  });
}

Tensor mse_loss(const Tensor& input_in, const Tensor& target_in) {
  raw::check_defined("mse_loss", input_in);
  raw::check_defined("mse_loss", target_in);
  const auto in = amp::autocast_all("mse_loss", {input_in, target_in});
  const Tensor &input = in[0], &target = in[1];
  EMBER_CHECK(input.shape() == target.shape(), fmt::format("mse_loss: input of shape {} and target of shape {} differ",
                                                           shape_str(input.shape()), shape_str(target.shape())));
  return mean(square(sub(input, target)));
}

}  // namespace ember
