/// \file
/// \brief Differentiable real FFT along the last dim, its inverse, and causal convolution through them in
/// O(T log T) (the convolutional view of S4 and S4D, Gu et al. 2022).
///
/// numpy.fft's conventions: rfft X_k = Σ_{t<n} x_t e^{−2πikt/n}, k = 0..n/2 (unnormalised), and irfft
/// y_t = (1/n) Σ_{k<n} X_k e^{2πikt/n} with X_{n−k} = conj X_k. Spectra are ember::Complex pairs (re, im).
/// Backward, with c_k = 1 for k = 0 and (n even) k = n/2 and c_k = 2 for the other bins (each stands for itself
/// and its mirror n − k):
///   rfft:  ∂L/∂x = n · irfft(G ⊙ 1/c)           with G = ∂L/∂re + i ∂L/∂im,
///   irfft: ∂L/∂re + i ∂L/∂im = (c/n) ⊙ rfft(∂L/∂y).
/// fft_conv: y_t = Σ_{j≤t} k_j u_{t−j} = irfft(rfft(u, N) · rfft(k, N), N)_t for t < L, with N ≥ L + L_k − 1 so
/// the circular convolution does not wrap into the kept outputs.
#pragma once

#include <cstdint>

#include "autograd/complex.h"
#include "core/tensor.h"

namespace ember {

/// x: [..., L] (Float32 or Float64) -> X: [..., n/2 + 1], the spectrum of x zero-padded (n > L) or cut
/// (n < L) to n samples; n = -1 means n = L. One autograd node.
Complex rfft(const Tensor& x, std::int64_t n = -1);
/// X: [..., n/2 + 1] -> y: [..., n], the real signal of length n whose rfft is X. The imaginary parts of X_0
/// and (n even) X_{n/2} are ignored, as numpy does, and get zero gradient. One autograd node.
Tensor irfft(const Complex& X, std::int64_t n);
/// u: [..., L], k: [..., L_k] (leading dims broadcast) -> y: [..., L], the causal convolution
/// y_t = Σ_{j≤min(t, L_k−1)} k_j u_{t−j}, computed with FFTs of the next power of two N ≥ L + L_k − 1.
Tensor fft_conv(const Tensor& u, const Tensor& k);

}  // namespace ember
