/// \file
/// \brief Complex arithmetic on (re, im) pairs of real tensors, composed from the differentiable real ops:
/// (a + ib)(c + id) = (ac − bd) + i(ad + bc), e^{a+ib} = e^a (cos b + i sin b), 1/z = conj(z)/|z|².
#include "autograd/complex.h"

#include <string>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/shape.h"

namespace ember {

namespace {

/// Throws unless z's parts are defined and share shape, dtype and device; `op` names the caller.
void check(const char* op, const Complex& z) {
  raw::check_defined(op, z.re);
  raw::check_defined(op, z.im);
  EMBER_CHECK(z.re.shape() == z.im.shape() && z.re.dtype() == z.im.dtype(),
              std::string(op) + ": the real part " + dtype_name(z.re.dtype()) + " " + shape_str(z.re.shape()) +
                  " and the imaginary part " + dtype_name(z.im.dtype()) + " " + shape_str(z.im.shape()) +
                  " must share shape and dtype");
  raw::check_same_device(op, z.re, z.im);
}

/// Checks both operands of a binary op and that their shapes broadcast.
void check(const char* op, const Complex& a, const Complex& b) {
  check(op, a);
  check(op, b);
  broadcast_shapes(op, a.re.shape(), b.re.shape());
}

}  // namespace

Complex operator+(const Complex& a, const Complex& b) {
  check("complex add", a, b);
  return {a.re + b.re, a.im + b.im};
}

Complex operator-(const Complex& a, const Complex& b) {
  check("complex sub", a, b);
  return {a.re - b.re, a.im - b.im};
}

Complex operator*(const Complex& a, const Complex& b) {
  check("complex mul", a, b);
  return {a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re};
}

Complex operator*(const Complex& a, const Tensor& r) {
  check("complex mul", a);
  raw::check_defined("complex mul", r);
  broadcast_shapes("complex mul", a.re.shape(), r.shape());
  return {a.re * r, a.im * r};
}

Complex operator*(const Tensor& r, const Complex& a) { return a * r; }

Complex operator/(const Complex& a, const Complex& b) {
  check("complex div", a, b);
  const Tensor d = abs2(b);
  return {(a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d};
}

Complex conj(const Complex& z) {
  check("conj", z);
  return {z.re, -z.im};
}

Tensor abs2(const Complex& z) {
  check("abs2", z);
  return z.re * z.re + z.im * z.im;
}

Complex exp(const Complex& z) {
  check("complex exp", z);
  const Tensor r = exp(z.re);
  return {r * cos(z.im), r * sin(z.im)};
}

Complex reciprocal(const Complex& z) {
  check("complex reciprocal", z);
  const Tensor d = abs2(z);
  return {z.re / d, -z.im / d};
}

Tensor real(const Complex& z) {
  check("real", z);
  return z.re;
}

Complex sum(const Complex& z, const std::vector<std::int64_t>& dims, bool keepdim) {
  check("complex sum", z);
  return {sum(z.re, dims, keepdim), sum(z.im, dims, keepdim)};
}

}  // namespace ember
