/// \file
/// \brief CPU kernels of the real FFT along the last dim and its inverse, numpy.fft's conventions.
///
/// rfft:  X_k = Σ_{t<n} x_t e^{−2πikt/n},            k = 0..n/2 (unnormalised; x zero-padded or cut to n).
/// irfft: y_t = (1/n) Σ_{k<n} X_k e^{2πikt/n},        t = 0..n−1, with X_{n−k} = conj X_k (Hermitian symmetry),
///        so only X_0..X_{n/2} are read, and of X_0 and (n even) X_{n/2} only the real part.
/// Eigen's FFT module (kissfft: mixed radix 2, 3, 4, 5 and a generic O(p²) butterfly for other prime factors p)
/// computes each row; rows run in parallel, each thread with its own Eigen::FFT (it caches plans and scratch).
#include <algorithm>
#include <complex>
#include <vector>

#include <unsupported/Eigen/FFT>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

namespace {

/// Rough cost of one length-n transform, to decide whether rows run in parallel.
std::int64_t fft_work(std::int64_t rows, std::int64_t n) {
  std::int64_t log2n = 1;
  while ((std::int64_t{1} << log2n) < n) ++log2n;
  return rows * n * log2n;
}

/// Forward transforms of rows [begin, end) of x [rows, L] into re, im [rows, n/2 + 1].
template <class T>
void rfft_rows(const T* x, std::int64_t L, std::int64_t n, T* re, T* im, std::int64_t begin, std::int64_t end) {
  const std::int64_t m = n / 2 + 1, used = std::min(L, n);
  Eigen::FFT<T> fft;
  fft.SetFlag(Eigen::FFT<T>::HalfSpectrum);
  std::vector<T> frame(n, T(0));  // samples used..n−1 stay zero: the padding
  std::vector<std::complex<T>> X(m);
  for (std::int64_t r = begin; r < end; ++r) {
    std::copy(x + r * L, x + r * L + used, frame.begin());
    if (n == 1)
      X[0] = frame[0];  // kissfft has no plan for n = 1, where X_0 = x_0
    else
      fft.fwd(X.data(), frame.data(), n);
    for (std::int64_t k = 0; k < m; ++k) {
      re[r * m + k] = X[k].real();
      im[r * m + k] = X[k].imag();
    }
  }
}

/// Inverse transforms of rows [begin, end) of re, im [rows, n/2 + 1] into y [rows, n].
template <class T>
void irfft_rows(const T* re, const T* im, std::int64_t n, T* y, std::int64_t begin, std::int64_t end) {
  const std::int64_t m = n / 2 + 1;
  Eigen::FFT<T> fft;  // default flags: scaled by 1/n, real output from the half spectrum
  std::vector<std::complex<T>> X(m);
  for (std::int64_t r = begin; r < end; ++r) {
    for (std::int64_t k = 0; k < m; ++k) X[k] = {re[r * m + k], im[r * m + k]};
    if (n == 1)
      y[r] = X[0].real();
    else
      fft.inv(y + r * n, X.data(), n);
  }
}

}  // namespace

void CpuBackend::rfft(const Tensor& x, std::int64_t n, const Tensor& re, const Tensor& im) {
  cpu::dispatch_float_double("rfft", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t L = x.shape().back(), rows = x.numel() / L;
    cpu::parallel_range(rows, fft_work(rows, n), [&](std::int64_t begin, std::int64_t end) {
      rfft_rows<T>(x.data_ptr<T>(), L, n, re.data_ptr<T>(), im.data_ptr<T>(), begin, end);
    });
  });
}

void CpuBackend::irfft(const Tensor& re, const Tensor& im, std::int64_t n, const Tensor& out) {
  cpu::dispatch_float_double("irfft", re.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t rows = out.numel() / n;
    cpu::parallel_range(rows, fft_work(rows, n), [&](std::int64_t begin, std::int64_t end) {
      irfft_rows<T>(re.data_ptr<T>(), im.data_ptr<T>(), n, out.data_ptr<T>(), begin, end);
    });
  });
}

}  // namespace ember
