/// \file
/// \brief Differentiable reductions, scans, softmax and matmul.
///
/// Key backward rules: sum spreads g back over the reduced dims; max sends g to the arg-maxima
/// (split evenly on ties); softmax: dx = y (g - sum(g y)); log_softmax: dx = g - softmax(x) sum(g);
/// matmul C = A B: dA = g B^T, dB = A^T g (summed over broadcast batch dims).
#include <cmath>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;

/// x's shape with `dims` (normalised) set to 1.
Shape kept_shape(const Shape& shape, const std::vector<int>& dims) {
  Shape s = shape;
  for (int d : dims)
    if (d < static_cast<int>(s.size())) s[d] = 1;  // a 0-d tensor's dim 0 has no entry
  return s;
}

std::vector<std::int64_t> as_i64(const std::vector<int>& dims) { return {dims.begin(), dims.end()}; }

/// g of the reduced shape, spread over x's shape.
Tensor spread(const Tensor& g, const Shape& kept, const Shape& full) {
  return raw::expand(raw::reshape(g, kept), full);
}

std::int64_t count_of(const Shape& shape, const std::vector<int>& dims) {
  std::int64_t n = 1;
  for (int d : dims)
    if (d < static_cast<int>(shape.size())) n *= shape[d];
  return n;
}

}  // namespace

Tensor sum(const Tensor& x_in, const std::vector<std::int64_t>& dims, bool keepdim) {
  const Tensor x = amp::autocast("sum", x_in);
  Tensor out = raw::sum(x, dims, keepdim);
  if (!needs_grad({x})) return out;
  const auto nd = normalize_dims("sum", dims, x.dim());
  const Shape full = x.shape(), kept = kept_shape(full, nd);
  return record(out, "SumBackward", {x}, [full, kept](const Grads& g) { return Grads{spread(g[0], kept, full)}; });
}

Tensor mean(const Tensor& x_in, const std::vector<std::int64_t>& dims, bool keepdim) {
  const Tensor x = amp::autocast("mean", x_in);
  Tensor out = raw::reduce(ReduceOp::Mean, x, dims, keepdim);
  if (!needs_grad({x})) return out;
  const auto nd = normalize_dims("mean", dims, x.dim());
  const Shape full = x.shape(), kept = kept_shape(full, nd);
  const double n = static_cast<double>(count_of(full, nd));
  return record(out, "MeanBackward", {x}, [full, kept, n](const Grads& g) {
    return Grads{spread(raw::mul_scalar(g[0], 1.0 / n), kept, full)};
  });
}

Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims, bool unbiased, bool keepdim) {
  const auto nd = normalize_dims("var", dims, x.dim());
  const std::int64_t n = count_of(x.shape(), nd);
  const Tensor d = sub(x, mean(x, dims, true));
  return div(sum(mul(d, d), dims, keepdim), scalar_tensor(static_cast<double>(unbiased ? n - 1 : n), x.dtype(), x.device()));
}

namespace {
Tensor extremum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim, bool is_max) {
  const ReduceOp op = is_max ? ReduceOp::Max : ReduceOp::Min;
  Tensor out = raw::reduce(op, x, dims, keepdim);
  if (!needs_grad({x})) return out;
  const char* name = is_max ? "MaxBackward" : "MinBackward";
  const auto nd = normalize_dims(name, dims, x.dim());
  const Shape full = x.shape(), kept = kept_shape(full, nd);
  SavedTensor sx(x), so(out);
  return record(out, name, {x}, [sx, so, full, kept, nd, name](const Grads& g) {
    const Tensor X = sx.get(name);
    const Tensor mask = raw::to_dtype(raw::binary(BinaryOp::Eq, X, raw::reshape(so.get(name), kept)), X.dtype());
    const Tensor count = raw::sum(mask, as_i64(nd), true);
    return Grads{raw::mul(raw::div(mask, count), raw::reshape(g[0], kept))};
  });
}
}  // namespace

Tensor max(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) { return extremum(x, dims, keepdim, true); }
Tensor min(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) { return extremum(x, dims, keepdim, false); }
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim) { return raw::arg_reduce(true, x, dim, keepdim); }
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim) { return raw::arg_reduce(false, x, dim, keepdim); }

Tensor logsumexp(const Tensor& x_in, const std::vector<std::int64_t>& dims, bool keepdim) {
  const Tensor x = amp::autocast("logsumexp", x_in);
  // m is a constant shift: lse(x) = m + log sum exp(x - m) for any m, so no gradient flows through it.
  Tensor m = raw::reduce(ReduceOp::Max, x, dims, true);
  m = raw::where(raw::unary(UnaryOp::IsFinite, m), m, scalar_tensor(0.0, m.dtype(), m.device()));
  Tensor out = add(log(sum(exp(sub(x, m)), dims, true)), m);
  if (keepdim) return out;
  return squeeze(out, as_i64(normalize_dims("logsumexp", dims, x.dim())));
}

Tensor norm(const Tensor& x_in, double p, const std::vector<std::int64_t>& dims, bool keepdim) {
  const Tensor x = amp::autocast("norm", x_in);
  EMBER_CHECK(p >= 1.0 && std::isfinite(p), "norm: p must be finite and >= 1, got " + std::to_string(p));
  const Tensor ax = raw::unary(UnaryOp::Abs, x);
  const Tensor s = raw::sum(p == 1.0 ? ax : raw::unary(UnaryOp::PowScalar, ax, {p}), dims, keepdim);
  Tensor out = p == 1.0 ? s : raw::unary(UnaryOp::PowScalar, s, {1.0 / p});
  if (!needs_grad({x})) return out;
  const auto nd = normalize_dims("norm", dims, x.dim());
  const Shape kept = kept_shape(x.shape(), nd);
  SavedTensor sx(x), so(out);
  return record(out, "NormBackward", {x}, [sx, so, kept, p](const Grads& g) {
    // d/dx ||x||_p = sign(x) |x|^(p-1) / ||x||^(p-1); 0 where the norm is 0
    const Tensor X = sx.get("NormBackward"), Y = raw::reshape(so.get("NormBackward"), kept);
    const Tensor zero = scalar_tensor(0.0, X.dtype(), X.device());
    const Tensor num = raw::mul(raw::unary(UnaryOp::Sign, X), raw::unary(UnaryOp::PowScalar, raw::unary(UnaryOp::Abs, X), {p - 1}));
    const Tensor den = raw::unary(UnaryOp::PowScalar, Y, {p - 1});
    const Tensor safe = raw::where(raw::binary(BinaryOp::Eq, Y, zero), zero, raw::div(raw::reshape(g[0], kept), den));
    return Grads{raw::mul(num, safe)};
  });
}

Tensor cumsum(const Tensor& x_in, std::int64_t dim) {
  const Tensor x = amp::autocast("cumsum", x_in);
  Tensor out = raw::scan(ScanOp::Cumsum, x, dim);
  if (!needs_grad({x})) return out;
  return record(out, "CumsumBackward", {x}, [dim](const Grads& g) {
    // dx_i = sum_{j >= i} g_j = total - cumsum(g)_i + g_i
    const Tensor total = raw::sum(g[0], {dim}, true);
    return Grads{raw::add(raw::sub(total, raw::scan(ScanOp::Cumsum, g[0], dim)), g[0])};
  });
}

Tensor cumprod(const Tensor& x_in, std::int64_t dim) {
  const Tensor x = amp::autocast("cumprod", x_in);
  Tensor out = raw::scan(ScanOp::Cumprod, x, dim);
  if (!needs_grad({x})) return out;
  SavedTensor sx(x);
  return record(out, "CumprodBackward", {x}, [sx, dim](const Grads& g) {
    // dx_i = sum_{j >= i} g_j prod_{k <= j, k != i} x_k, evaluated without dividing by x_i (exact with zeros).
    const Tensor X = sx.get("CumprodBackward");
    const int d = normalize_dim("cumprod", dim, X.dim());
    const Tensor xt = raw::contiguous(raw::to_dtype(raw::transpose(X, d, -1), DType::Float64));
    const Tensor gt = raw::contiguous(raw::to_dtype(raw::transpose(g[0], d, -1), DType::Float64));
    Tensor dx = Tensor::empty(xt.shape(), DType::Float64);
    const std::int64_t n = xt.dim() ? xt.shape().back() : 1, rows = n ? xt.numel() / n : 0;
    const double *px = xt.data_ptr<double>(), *pg = gt.data_ptr<double>();
    double* pd = dx.data_ptr<double>();
    for (std::int64_t r = 0; r < rows; ++r) {
      const double *xr = px + r * n, *gr = pg + r * n;
      double prefix = 1.0;  // prod_{k < i} x_k
      for (std::int64_t i = 0; i < n; ++i) {
        double run = prefix, acc = 0.0;
        for (std::int64_t j = i; j < n; ++j) {
          if (j > i) run *= xr[j];
          acc += gr[j] * run;
        }
        pd[r * n + i] = acc;
        prefix *= xr[i];
      }
    }
    return Grads{raw::to_dtype(raw::transpose(dx, d, -1), X.dtype())};
  });
}

Tensor softmax(const Tensor& x_in, std::int64_t dim) {
  const Tensor x = amp::autocast("softmax", x_in);
  Tensor y = raw::softmax(x, dim, false);
  if (!needs_grad({x})) return y;
  SavedTensor sy(y);
  return record(y, "SoftmaxBackward", {x}, [sy, dim](const Grads& g) {
    const Tensor Y = sy.get("SoftmaxBackward");
    const Tensor dot = raw::sum(raw::mul(g[0], Y), {dim}, true);
    return Grads{raw::mul(Y, raw::sub(g[0], dot))};
  });
}

Tensor log_softmax(const Tensor& x_in, std::int64_t dim) {
  const Tensor x = amp::autocast("log_softmax", x_in);
  Tensor y = raw::softmax(x, dim, true);
  if (!needs_grad({x})) return y;
  SavedTensor sy(y);
  return record(y, "LogSoftmaxBackward", {x}, [sy, dim](const Grads& g) {
    const Tensor P = raw::unary(UnaryOp::Exp, sy.get("LogSoftmaxBackward"));
    return Grads{raw::sub(g[0], raw::mul(P, raw::sum(g[0], {dim}, true)))};
  });
}

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const auto ab = amp::autocast_all("matmul", {a_in, b_in});
  const Tensor &a = ab[0], &b = ab[1];
  raw::check_defined("matmul", a);
  raw::check_defined("matmul", b);
  if (a.dim() == 1 || b.dim() == 1) {
    // Promote vectors to matrices with differentiable views, as NumPy does, then drop the added dims.
    if (a.dim() == 0 || b.dim() == 0) return raw::matmul(a, b);  // raw reports the error
    const Tensor A = a.dim() == 1 ? unsqueeze(a, 0) : a, B = b.dim() == 1 ? unsqueeze(b, 1) : b;
    const std::int64_t ka = a.shape().back(), kb = b.dim() == 1 ? b.shape()[0] : b.shape()[b.dim() - 2];
    EMBER_CHECK(ka == kb, "matmul: cannot multiply " + shape_str(a.shape()) + " by " + shape_str(b.shape()) + " (" +
                              std::to_string(ka) + " != " + std::to_string(kb) + ")");
    Tensor out = matmul(A, B);
    if (b.dim() == 1) out = squeeze(out, {-1});
    if (a.dim() == 1) out = squeeze(out, {b.dim() == 1 ? -1 : -2});
    return out;
  }
  Tensor out = raw::matmul(a, b);
  if (!needs_grad({a, b})) return out;
  SavedTensor sa(a), sb(b);
  return record(out, "MatmulBackward", {a, b}, [sa, sb](const Grads& g) {
    const Tensor A = sa.get("MatmulBackward"), B = sb.get("MatmulBackward");
    const Tensor ga = raw::matmul(g[0], raw::transpose(B, -1, -2));
    const Tensor gb = raw::matmul(raw::transpose(A, -1, -2), g[0]);
    return Grads{raw::sum_to(ga, A.shape()), raw::sum_to(gb, B.shape())};
  });
}

}  // namespace ember
