/// \file
/// \brief rfft and irfft as differentiable ops (one node each, the backward of each being the other transform
/// reweighted by the bin multiplicities c_k), and fft_conv composed from them:
///   rfft:  ∂L/∂x = n · irfft(G ⊙ 1/c)[:L],   irfft: ∂L/∂X = (c/n) ⊙ rfft(∂L/∂y),
/// with c_k = 1 for DC and (n even) Nyquist, 2 for the other bins.
#include "autograd/fft.h"

#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/backend.h"
#include "core/creation.h"
#include "core/ops.h"
#include "core/shape.h"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;

/// c_k for the m = n/2 + 1 bins of the half spectrum, as a [m] tensor in like's dtype and on its device: how many
/// bins of the full spectrum bin k stands for, 2 (itself and its mirror n − k) except 1 for DC and (n even) Nyquist.
Tensor multiplicity(std::int64_t n, const Tensor& like) {
  const std::int64_t m = n / 2 + 1;
  std::vector<double> c(m, 2.0);
  c[0] = 1.0;
  if (n % 2 == 0) c[m - 1] = 1.0;
  return from_vector(c, {m}, like.dtype()).to(like.device());
}

/// The rfft kernel without history: x [..., L] -> [..., n/2 + 1].
Complex rfft_kernel(const Tensor& x, std::int64_t n) {
  const Tensor X = raw::contiguous(x);
  Shape s = x.shape();
  s.back() = n / 2 + 1;
  Complex out{empty(s, x.dtype(), x.device()), empty(s, x.dtype(), x.device())};
  backend_for(x.device()).rfft(X, n, out.re, out.im);
  return out;
}

/// The irfft kernel without history: re, im [..., n/2 + 1] -> [..., n].
Tensor irfft_kernel(const Tensor& re, const Tensor& im, std::int64_t n) {
  Shape s = re.shape();
  s.back() = n;
  Tensor y = empty(s, re.dtype(), re.device());
  backend_for(re.device()).irfft(raw::contiguous(re), raw::contiguous(im), n, y);
  return y;
}

/// Throws unless t is Float32 or Float64, the dtypes the FFT kernels compute in.
void check_float_double(const char* op, const char* what, const Tensor& t) {
  EMBER_CHECK(t.dtype() == DType::Float32 || t.dtype() == DType::Float64,
              fmt::format("{}: expected {} in Float32 or Float64, got {} {}", op, what, dtype_name(t.dtype()),
                          shape_str(t.shape())));
}

/// y [..., n] cut or zero-padded to [..., L].
Tensor fit_length(const Tensor& y, std::int64_t L) {
  const std::int64_t n = y.shape().back();
  if (L < n) return raw::slice(y, -1, 0, L);
  if (L > n) return raw::pad(y, {0, L - n}, 0.0);
  return y;
}

/// The smallest power of two ≥ v: a fast FFT length (radix 2 and 4 only).
std::int64_t next_power_of_two(std::int64_t v) {
  std::int64_t p = 1;
  while (p < v) p *= 2;
  return p;
}

}  // namespace

Complex rfft(const Tensor& x_in, std::int64_t n) {
  raw::check_defined("rfft", x_in);
  const Tensor x = amp::autocast("rfft", x_in);
  EMBER_CHECK(x.dim() >= 1 && x.shape().back() > 0,
              "rfft: expected x [..., L] with L > 0, got " + shape_str(x.shape()));
  check_float_double("rfft", "x", x);
  const std::int64_t L = x.shape().back();
  if (n == -1) n = L;
  EMBER_CHECK(n > 0, fmt::format("rfft: n must be positive (or -1 for the length of x), got n = {} for x {}", n,
                                 shape_str(x.shape())));
  Complex X = rfft_kernel(x, n);
  if (!needs_grad({x})) return X;
  const Tensor c = multiplicity(n, x);
  const std::vector<Tensor> outs = record_multi({X.re, X.im}, "RfftBackward", {x}, [=](const Grads& g) {
    const Tensor gx = raw::mul_scalar(irfft_kernel(raw::div(g[0], c), raw::div(g[1], c), n), static_cast<double>(n));
    return Grads{fit_length(gx, L)};
  });
  return {outs[0], outs[1]};
}

Tensor irfft(const Complex& X_in, std::int64_t n) {
  const Complex X{amp::autocast("irfft", X_in.re), amp::autocast("irfft", X_in.im)};
  raw::check_defined("irfft", X.re);
  raw::check_defined("irfft", X.im);
  raw::check_same_device("irfft", X.re, X.im);
  EMBER_CHECK(n > 0 && X.re.dim() >= 1 && X.re.shape() == X.im.shape() && X.re.dtype() == X.im.dtype() &&
                  X.re.shape().back() == n / 2 + 1,
              fmt::format("irfft: expected re and im of one dtype and shape [..., n/2 + 1] = [..., {}] for n = {}, "
                          "got re {} {} and im {} {}",
                          n / 2 + 1, n, dtype_name(X.re.dtype()), shape_str(X.re.shape()), dtype_name(X.im.dtype()),
                          shape_str(X.im.shape())));
  check_float_double("irfft", "re and im", X.re);
  Tensor y = irfft_kernel(X.re, X.im, n);
  if (!needs_grad({X.re, X.im})) return y;
  const Tensor w = raw::mul_scalar(multiplicity(n, y), 1.0 / static_cast<double>(n));  // c_k / n
  return record(y, "IrfftBackward", {X.re, X.im}, [=](const Grads& g) {
    const Complex G = rfft_kernel(g[0], n);
    return Grads{raw::mul(G.re, w), raw::mul(G.im, w)};
  });
}

Tensor fft_conv(const Tensor& u_in, const Tensor& k_in) {
  const Tensor u = amp::autocast("fft_conv", u_in), k = amp::autocast("fft_conv", k_in);
  raw::check_defined("fft_conv", u);
  raw::check_defined("fft_conv", k);
  EMBER_CHECK(u.dim() >= 1 && k.dim() >= 1 && u.shape().back() > 0 && k.shape().back() > 0 && u.dtype() == k.dtype(),
              fmt::format("fft_conv: expected u [..., L] and k [..., L_k] of one dtype with L, L_k > 0, got u {} {} "
                          "and k {} {}",
                          dtype_name(u.dtype()), shape_str(u.shape()), dtype_name(k.dtype()), shape_str(k.shape())));
  broadcast_shapes("fft_conv", Shape(u.shape().begin(), u.shape().end() - 1),
                   Shape(k.shape().begin(), k.shape().end() - 1));
  const std::int64_t L = u.shape().back(), N = next_power_of_two(L + k.shape().back() - 1);
  const Tensor y = irfft(rfft(u, N) * rfft(k, N), N);
  return narrow(y, -1, 0, L);
}

}  // namespace ember
