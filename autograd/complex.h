/// \file
/// \brief Complex numbers in ember: a Complex is a pair of real tensors z = re + i·im, and its arithmetic is
/// written with the real differentiable ops, so autograd and broadcasting come for free.
///
/// ember has no complex dtype. Every complex quantity (the FFT spectra, the diagonal state matrices of S4D and
/// LRU) is held as two real tensors of one shape and dtype. The gradient of a real loss with respect to z is then
/// simply the pair (∂L/∂re, ∂L/∂im) that autograd already computes. The helpers implement
///   (a + ib)(c + id) = (ac − bd) + i(ad + bc),   conj(a + ib) = a − ib,   |z|² = a² + b²,
///   e^{a+ib} = e^a (cos b + i sin b),            1/z = conj(z) / |z|²,    w/z = w·conj(z) / |z|².
/// Binary helpers broadcast their operands as the real ops do (NumPy rules).
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace ember {

/// A complex tensor z = re + i·im held as two real tensors of one shape, dtype and device.
struct Complex {
  Tensor re;  ///< the real part
  Tensor im;  ///< the imaginary part
};

/// a + b (broadcasting).
Complex operator+(const Complex& a, const Complex& b);
/// a − b (broadcasting).
Complex operator-(const Complex& a, const Complex& b);
/// a · b = (a.re b.re − a.im b.im) + i(a.re b.im + a.im b.re) (broadcasting).
Complex operator*(const Complex& a, const Complex& b);
/// a · r for a real tensor r: (a.re r) + i(a.im r) (broadcasting).
Complex operator*(const Complex& a, const Tensor& r);
/// r · a for a real tensor r (broadcasting).
Complex operator*(const Tensor& r, const Complex& a);
/// a / b = a · conj(b) / |b|² (broadcasting; b = 0 gives Inf or NaN, as real division does).
Complex operator/(const Complex& a, const Complex& b);
/// The conjugate re − i·im.
Complex conj(const Complex& z);
/// |z|² = re² + im², a real tensor of z's shape.
Tensor abs2(const Complex& z);
/// e^z = e^{re} (cos im + i sin im).
Complex exp(const Complex& z);
/// 1/z = conj(z) / |z|².
Complex reciprocal(const Complex& z);
/// Re z (the re tensor itself, after checking z).
Tensor real(const Complex& z);
/// Σ z over dims (empty = all dims): the real and imaginary parts summed separately.
Complex sum(const Complex& z, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);

}  // namespace ember
