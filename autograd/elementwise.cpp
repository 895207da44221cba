/// \file
/// \brief Differentiable elementwise ops. Each backward is the op's derivative applied to the
/// incoming gradient g, summed back over broadcast dims: for c = a * b, dL/da = sum_to(g * b, a.shape).
#include <cmath>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;

Tensor scalar_like(double v, const Tensor& x) {
  return scalar_tensor(v, is_floating(x.dtype()) ? x.dtype() : DType::Float32, x.device());
}

/// A mask (Bool) as x's floating dtype.
Tensor as_float(const Tensor& mask, const Tensor& like) { return raw::to_dtype(mask, like.dtype()); }

/// A unary op y = f(x) whose backward is g * derivative(x): saves only the input.
template <class D>
Tensor unary_in(const Tensor& x, UnaryOp op, const char* name, D derivative, UnaryArgs args = {}) {
  Tensor y = raw::unary(op, x, args);
  if (!needs_grad({x})) return y;
  SavedTensor sx(x);
  return record(y, name, {x}, [sx, derivative, name](const Grads& g) {
    return Grads{raw::mul(g[0], derivative(sx.get(name)))};
  });
}

/// A unary op y = f(x) whose backward is g * derivative(y): saves only the output (exp, tanh, ...).
template <class D>
Tensor unary_out(const Tensor& x, UnaryOp op, const char* name, D derivative) {
  Tensor y = raw::unary(op, x);
  if (!needs_grad({x})) return y;
  SavedTensor sy(y);
  return record(y, name, {x}, [sy, derivative, name](const Grads& g) {
    return Grads{raw::mul(g[0], derivative(sy.get(name)))};
  });
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = raw::add(a, b);
  if (!needs_grad({a, b})) return out;
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "AddBackward", {a, b}, [sa, sb](const Grads& g) {
    return Grads{raw::sum_to(g[0], sa), raw::sum_to(g[0], sb)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = raw::sub(a, b);
  if (!needs_grad({a, b})) return out;
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "SubBackward", {a, b}, [sa, sb](const Grads& g) {
    return Grads{raw::sum_to(g[0], sa), raw::sum_to(raw::unary(UnaryOp::Neg, g[0]), sb)};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = raw::mul(a, b);
  if (!needs_grad({a, b})) return out;
  SavedTensor sa(a), sb(b);
  return record(out, "MulBackward", {a, b}, [sa, sb](const Grads& g) {
    const Tensor A = sa.get("MulBackward"), B = sb.get("MulBackward");
    return Grads{raw::sum_to(raw::mul(g[0], B), A.shape()), raw::sum_to(raw::mul(g[0], A), B.shape())};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = raw::div(a, b);
  if (!needs_grad({a, b})) return out;
  SavedTensor sa(a), sb(b);
  return record(out, "DivBackward", {a, b}, [sa, sb](const Grads& g) {
    const Tensor A = sa.get("DivBackward"), B = sb.get("DivBackward");
    const Tensor ga = raw::div(g[0], B);
    const Tensor gb = raw::unary(UnaryOp::Neg, raw::div(raw::mul(ga, A), B));  // -g a / b^2
    return Grads{raw::sum_to(ga, A.shape()), raw::sum_to(gb, B.shape())};
  });
}

Tensor pow(const Tensor& a_in, const Tensor& b_in) {
  const auto ab = amp::autocast_all("pow", {a_in, b_in});
  const Tensor &a = ab[0], &b = ab[1];
  Tensor out = raw::binary(BinaryOp::Pow, a, b);
  if (!needs_grad({a, b})) return out;
  SavedTensor sa(a), sb(b), so(out);
  return record(out, "PowBackward", {a, b}, [sa, sb, so](const Grads& g) {
    const Tensor A = sa.get("PowBackward"), B = sb.get("PowBackward"), Y = so.get("PowBackward");
    // d/da a^b = b a^(b-1);  d/db a^b = a^b ln a (taken as 0 where a = 0, as PyTorch does)
    const Tensor da = raw::mul(B, raw::binary(BinaryOp::Pow, A, raw::add_scalar(B, -1.0)));
    const Tensor lna = raw::where(raw::binary(BinaryOp::Eq, A, scalar_like(0, A)), scalar_like(0, A),
                                  raw::unary(UnaryOp::Log, A));
    return Grads{raw::sum_to(raw::mul(g[0], da), A.shape()), raw::sum_to(raw::mul(g[0], raw::mul(Y, lna)), B.shape())};
  });
}

Tensor pow(const Tensor& x, double e) {
  return unary_in(amp::autocast("pow", x), UnaryOp::PowScalar, "PowBackward", [e](const Tensor& X) {
    return raw::mul_scalar(raw::unary(UnaryOp::PowScalar, X, {e - 1.0}), e);
  }, {e});
}

namespace {
/// maximum/minimum: the gradient goes to the winner; ties split it in half.
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max) {
  Tensor out = raw::binary(is_max ? BinaryOp::Maximum : BinaryOp::Minimum, a, b);
  if (!needs_grad({a, b})) return out;
  SavedTensor sa(a), sb(b);
  const char* name = is_max ? "MaximumBackward" : "MinimumBackward";
  return record(out, name, {a, b}, [sa, sb, is_max, name](const Grads& g) {
    const Tensor A = sa.get(name), B = sb.get(name);
    const Tensor wins = as_float(raw::binary(is_max ? BinaryOp::Gt : BinaryOp::Lt, A, B), g[0]);
    const Tensor ties = raw::mul_scalar(as_float(raw::binary(BinaryOp::Eq, A, B), g[0]), 0.5);
    const Tensor wa = raw::add(wins, ties);
    const Tensor wb = raw::sub(raw::add_scalar(raw::mul_scalar(wins, -1.0), 1.0), ties);
    return Grads{raw::sum_to(raw::mul(g[0], wa), A.shape()), raw::sum_to(raw::mul(g[0], wb), B.shape())};
  });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, double s) { return add(a, scalar_like(s, a)); }
Tensor operator+(double s, const Tensor& a) { return add(scalar_like(s, a), a); }
Tensor operator-(const Tensor& a, double s) { return sub(a, scalar_like(s, a)); }
Tensor operator-(double s, const Tensor& a) { return sub(scalar_like(s, a), a); }
Tensor operator*(const Tensor& a, double s) { return mul(a, scalar_like(s, a)); }
Tensor operator*(double s, const Tensor& a) { return mul(scalar_like(s, a), a); }
Tensor operator/(const Tensor& a, double s) { return div(a, scalar_like(s, a)); }
Tensor operator/(double s, const Tensor& a) { return div(scalar_like(s, a), a); }

Tensor eq(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::Ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::And, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return raw::binary(BinaryOp::Or, a, b); }
Tensor logical_not(const Tensor& a) { return raw::unary(UnaryOp::Not, a); }
Tensor operator==(const Tensor& a, const Tensor& b) { return eq(a, b); }
Tensor operator!=(const Tensor& a, const Tensor& b) { return ne(a, b); }
Tensor operator<(const Tensor& a, const Tensor& b) { return lt(a, b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return le(a, b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return gt(a, b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return ge(a, b); }

Tensor neg(const Tensor& x) {
  return unary_in(x, UnaryOp::Neg, "NegBackward", [](const Tensor& X) { return scalar_like(-1, X); });
}
Tensor exp(const Tensor& x) {
  return unary_out(amp::autocast("exp", x), UnaryOp::Exp, "ExpBackward", [](const Tensor& Y) { return Y; });
}
Tensor log(const Tensor& x) {
  return unary_in(amp::autocast("log", x), UnaryOp::Log, "LogBackward",
                  [](const Tensor& X) { return raw::unary(UnaryOp::Reciprocal, X); });
}
Tensor log1p(const Tensor& x) {
  return unary_in(amp::autocast("log1p", x), UnaryOp::Log1p, "Log1pBackward",
                  [](const Tensor& X) { return raw::unary(UnaryOp::Reciprocal, raw::add_scalar(X, 1)); });
}
Tensor expm1(const Tensor& x) {
  return unary_out(amp::autocast("expm1", x), UnaryOp::Expm1, "Expm1Backward", [](const Tensor& Y) { return raw::add_scalar(Y, 1); });
}
Tensor sqrt(const Tensor& x) {
  return unary_out(x, UnaryOp::Sqrt, "SqrtBackward", [](const Tensor& Y) {
    return raw::mul_scalar(raw::unary(UnaryOp::Reciprocal, Y), 0.5);
  });
}
Tensor rsqrt(const Tensor& x) {
  return unary_out(amp::autocast("rsqrt", x), UnaryOp::Rsqrt, "RsqrtBackward", [](const Tensor& Y) {
    return raw::mul_scalar(raw::unary(UnaryOp::PowScalar, Y, {3.0}), -0.5);
  });
}
Tensor abs(const Tensor& x) {
  return unary_in(x, UnaryOp::Abs, "AbsBackward", [](const Tensor& X) { return raw::unary(UnaryOp::Sign, X); });
}
Tensor square(const Tensor& x) {
  return unary_in(x, UnaryOp::Square, "SquareBackward", [](const Tensor& X) { return raw::mul_scalar(X, 2); });
}
Tensor sin(const Tensor& x) {
  return unary_in(x, UnaryOp::Sin, "SinBackward", [](const Tensor& X) { return raw::unary(UnaryOp::Cos, X); });
}
Tensor cos(const Tensor& x) {
  return unary_in(x, UnaryOp::Cos, "CosBackward", [](const Tensor& X) {
    return raw::unary(UnaryOp::Neg, raw::unary(UnaryOp::Sin, X));
  });
}
Tensor tanh(const Tensor& x) {
  return unary_out(x, UnaryOp::Tanh, "TanhBackward", [](const Tensor& Y) {
    return raw::add_scalar(raw::unary(UnaryOp::Neg, raw::unary(UnaryOp::Square, Y)), 1);  // 1 - y^2
  });
}
Tensor sigmoid(const Tensor& x) {
  return unary_out(x, UnaryOp::Sigmoid, "SigmoidBackward", [](const Tensor& Y) {
    return raw::mul(Y, raw::add_scalar(raw::unary(UnaryOp::Neg, Y), 1));  // y (1 - y)
  });
}
Tensor relu(const Tensor& x) {
  return unary_in(x, UnaryOp::Relu, "ReluBackward", [](const Tensor& X) {
    return as_float(raw::binary(BinaryOp::Gt, X, scalar_like(0, X)), X);
  });
}

Tensor gelu(const Tensor& x, bool tanh_approximation) {
  if (tanh_approximation)
    return unary_in(x, UnaryOp::GeluTanh, "GeluBackward", [](const Tensor& X) {
      // t = tanh(k (x + c x^3)); d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) k (1 + 3 c x^2)
      const double k = 0.7978845608028654, c = 0.044715;
      const Tensor x2 = raw::unary(UnaryOp::Square, X);
      const Tensor inner = raw::mul_scalar(raw::add(X, raw::mul_scalar(raw::mul(x2, X), c)), k);
      const Tensor t = raw::unary(UnaryOp::Tanh, inner);
      const Tensor left = raw::mul_scalar(raw::add_scalar(t, 1), 0.5);
      const Tensor sech2 = raw::add_scalar(raw::unary(UnaryOp::Neg, raw::unary(UnaryOp::Square, t)), 1);
      const Tensor right = raw::mul(raw::mul_scalar(raw::mul(X, sech2), 0.5 * k), raw::add_scalar(raw::mul_scalar(x2, 3 * c), 1));
      return raw::add(left, right);
    });
  // d/dx x Phi(x) = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi):
  // one kernel (GeluErfGrad).
  return unary_in(x, UnaryOp::GeluErf, "GeluBackward", [](const Tensor& X) { return raw::unary(UnaryOp::GeluErfGrad, X); });
}

Tensor silu(const Tensor& x) {
  return unary_in(x, UnaryOp::Silu, "SiluBackward", [](const Tensor& X) {
    const Tensor s = raw::unary(UnaryOp::Sigmoid, X);  // s + x s (1 - s)
    return raw::add(s, raw::mul(raw::mul(X, s), raw::add_scalar(raw::unary(UnaryOp::Neg, s), 1)));
  });
}
Tensor softplus(const Tensor& x) {
  return unary_in(amp::autocast("softplus", x), UnaryOp::Softplus, "SoftplusBackward",
                  [](const Tensor& X) { return raw::unary(UnaryOp::Sigmoid, X); });
}
Tensor elu(const Tensor& x, double alpha) {
  return unary_in(x, UnaryOp::Elu, "EluBackward", [alpha](const Tensor& X) {  // 1 for x > 0, alpha e^x otherwise
    return raw::where(raw::binary(BinaryOp::Gt, X, scalar_like(0, X)), scalar_like(1, X),
                      raw::mul_scalar(raw::unary(UnaryOp::Exp, X), alpha));
  }, {alpha});
}
Tensor clamp(const Tensor& x, double lo, double hi) {
  return unary_in(x, UnaryOp::Clamp, "ClampBackward", [lo, hi](const Tensor& X) {
    const Tensor inside = raw::binary(BinaryOp::And, raw::binary(BinaryOp::Ge, X, scalar_like(lo, X)),
                                      raw::binary(BinaryOp::Le, X, scalar_like(hi, X)));
    return as_float(inside, X);
  }, {lo, hi});
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = raw::where(cond, a, b);
  if (!needs_grad({a, b})) return out;
  SavedTensor sc(cond);
  const Shape sa = a.shape(), sb = b.shape();
  return record(out, "WhereBackward", {a, b}, [sc, sa, sb](const Grads& g) {
    const Tensor c = sc.get("WhereBackward"), zero = scalar_like(0, g[0]);
    return Grads{raw::sum_to(raw::where(c, g[0], zero), sa), raw::sum_to(raw::where(c, zero, g[0]), sb)};
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  raw::check_defined("masked_fill", x);
  EMBER_CHECK(broadcast_shapes("masked_fill", x.shape(), mask.shape()) == x.shape(),
              "masked_fill: mask of shape " + shape_str(mask.shape()) + " does not broadcast to " + shape_str(x.shape()));
  return where(mask, scalar_like(value, x), x);
}

}  // namespace ember
