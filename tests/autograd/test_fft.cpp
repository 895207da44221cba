/// \file
/// \brief rfft, irfft and fft_conv against independent computations: the O(n²) DFT sums
/// X_k = Σ_t x_t e^{−2πikt/n} and y_t = (1/n) Re Σ_{k<n} X_k e^{2πikt/n} (over the Hermitian-extended spectrum)
/// written as loops here, the direct causal convolution y_t = Σ_{j≤t} k_j u_{t−j}, and gradcheck in Float64.
#include <cmath>
#include <complex>
#include <cstdint>
#include <numbers>
#include <vector>

#include "autograd/fft.h"
#include "helpers.h"

using namespace ember;
using namespace ember::test;

namespace {

using cd = std::complex<double>;

/// e^{sign·2πi·kt/n}, with kt reduced mod n first so the phase stays accurate for large n.
cd twiddle(std::int64_t k, std::int64_t t, std::int64_t n, double sign) {
  const double phase = sign * 2.0 * std::numbers::pi * static_cast<double>((k * t) % n) / static_cast<double>(n);
  return {std::cos(phase), std::sin(phase)};
}

/// The half spectrum X_0..X_{n/2} of each row of x [rows, L], zero-padded or cut to n samples.
std::vector<cd> naive_rfft(const std::vector<double>& x, std::int64_t L, std::int64_t n) {
  const std::int64_t rows = static_cast<std::int64_t>(x.size()) / L, m = n / 2 + 1;
  std::vector<cd> X(rows * m);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t k = 0; k < m; ++k)
      for (std::int64_t t = 0; t < std::min(L, n); ++t) X[r * m + k] += x[r * L + t] * twiddle(k, t, n, -1.0);
  return X;
}

/// The real signal of length n of each row of the half spectrum X [rows, n/2 + 1]: the real part of the inverse DFT
/// of the full spectrum with X_{n−k} = conj X_k.
std::vector<double> naive_irfft(const std::vector<cd>& X, std::int64_t n) {
  const std::int64_t m = n / 2 + 1, rows = static_cast<std::int64_t>(X.size()) / m;
  std::vector<double> y(rows * n);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t t = 0; t < n; ++t) {
      cd s = 0;
      for (std::int64_t k = 0; k < n; ++k) {
        const cd Xk = k < m ? X[r * m + k] : std::conj(X[r * m + n - k]);
        s += Xk * twiddle(k, t, n, 1.0);
      }
      y[r * n + t] = s.real() / static_cast<double>(n);
    }
  return y;
}

/// max |got − want| / max |want| (want not all zero).
double rel_error(const std::vector<cd>& got, const std::vector<cd>& want) {
  REQUIRE(got.size() == want.size());
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / scale;
}

/// The same for real vectors.
double rel_error(const std::vector<double>& got, const std::vector<double>& want) {
  return rel_error(std::vector<cd>(got.begin(), got.end()), std::vector<cd>(want.begin(), want.end()));
}

/// The spectrum as std::complex values.
std::vector<cd> values(const Complex& X) {
  const auto re = X.re.to_vector<double>(), im = X.im.to_vector<double>();
  std::vector<cd> v(re.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = {re[i], im[i]};
  return v;
}

/// The relative tolerance of a transform in `dtype`: 1e-12 in Float64, 1e-5 in Float32.
double tol(DType dtype) { return dtype == DType::Float64 ? 1e-12 : 1e-5; }

/// The direct causal convolution y_t = Σ_{j≤t} k_j u_{t−j} of u [B, H, L] with k [H, Lk].
std::vector<double> direct_conv(const std::vector<double>& u, const std::vector<double>& k, std::int64_t B,
                                std::int64_t H, std::int64_t L, std::int64_t Lk) {
  std::vector<double> y(B * H * L, 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t t = 0; t < L; ++t)
        for (std::int64_t j = 0; j <= t && j < Lk; ++j)
          y[(b * H + h) * L + t] += k[h * Lk + j] * u[(b * H + h) * L + t - j];
  return y;
}

}  // namespace

TEST_CASE("rfft equals the naive DFT for even, odd and prime n in Float32 and Float64") {
  manual_seed(5);
  for (DType dtype : {DType::Float64, DType::Float32})
    for (std::int64_t n : {1, 2, 3, 4, 7, 8, 12, 13, 1000}) {
      CAPTURE(n);
      CAPTURE(dtype_name(dtype));
      const Tensor x = randn({2, 3, n}, dtype);
      const Complex X = rfft(x);
      CHECK(X.re.shape() == Shape{2, 3, n / 2 + 1});
      const double err = rel_error(values(X), naive_rfft(x.to_vector<double>(), n, n));
      CHECK(err < tol(dtype));
    }
}

TEST_CASE("rfft zero-pads to n > L and cuts to n < L as numpy does") {
  manual_seed(6);
  for (DType dtype : {DType::Float64, DType::Float32})
    for (auto [L, n] : std::vector<std::pair<std::int64_t, std::int64_t>>{{5, 8}, {4, 7}, {9, 6}, {10, 3}, {3, 1}}) {
      CAPTURE(L);
      CAPTURE(n);
      const Tensor x = randn({3, L}, dtype);
      const double err = rel_error(values(rfft(x, n)), naive_rfft(x.to_vector<double>(), L, n));
      CHECK(err < tol(dtype));
    }
}

TEST_CASE("rfft of a non-contiguous view equals the DFT of its values") {
  manual_seed(7);
  const Tensor x = transpose(randn({9, 4}, DType::Float64), 0, 1);  // [4, 9], column-major
  const double err = rel_error(values(rfft(x)), naive_rfft(x.contiguous().to_vector<double>(), 9, 9));
  CHECK(err < 1e-12);
}

TEST_CASE("irfft equals the naive inverse DFT and ignores the imaginary parts of DC and Nyquist") {
  manual_seed(8);
  for (DType dtype : {DType::Float64, DType::Float32})
    for (std::int64_t n : {1, 2, 3, 6, 7, 13, 16, 1000}) {
      CAPTURE(n);
      CAPTURE(dtype_name(dtype));
      const std::int64_t m = n / 2 + 1;
      const Complex X{randn({2, m}, dtype), randn({2, m}, dtype)};  // Im X_0, Im X_{n/2} nonzero on purpose
      const Tensor y = irfft(X, n);
      CHECK(y.shape() == Shape{2, n});
      const double err = rel_error(y.to_vector<double>(), naive_irfft(values(X), n));
      CHECK(err < tol(dtype));
    }
}

TEST_CASE("irfft of rfft gives the signal back") {
  manual_seed(9);
  for (DType dtype : {DType::Float64, DType::Float32})
    for (std::int64_t n : {1, 2, 5, 8, 13, 1000}) {
      CAPTURE(n);
      const Tensor x = randn({3, n}, dtype);
      const double err = rel_error(irfft(rfft(x), n).to_vector<double>(), x.to_vector<double>());
      CHECK(err < tol(dtype));
    }
}

TEST_CASE("rfft and irfft gradients match central differences for even and odd n") {
  manual_seed(10);
  struct Case {
    std::int64_t L, n;
  };
  for (Case c : {Case{8, 8}, Case{7, 7}, Case{5, 8}, Case{4, 7}, Case{9, 6}, Case{6, 1}, Case{1, 1}}) {
    CAPTURE(c.L);
    CAPTURE(c.n);
    Tensor x = randn({2, c.L}, DType::Float64);
    x.requires_grad_();
    const auto f = [&](const std::vector<Tensor>& in) {
      const Complex X = rfft(in[0], c.n);
      return cat({X.re, X.im}, -1);
    };
    const GradcheckResult r = gradcheck(f, {x});
    CHECK_MESSAGE(r.ok, r.message);
  }
  for (std::int64_t n : {1, 2, 6, 7, 13}) {
    CAPTURE(n);
    const std::int64_t m = n / 2 + 1;
    Tensor re = randn({2, m}, DType::Float64), im = randn({2, m}, DType::Float64);
    re.requires_grad_();
    im.requires_grad_();
    const GradcheckResult r = gradcheck(
        [n](const std::vector<Tensor>& in) {
          return irfft(Complex{in[0], in[1]}, n);
        },
        {re, im});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("fft_conv equals the direct causal convolution") {
  manual_seed(11);
  const std::int64_t B = 2, H = 3;
  for (DType dtype : {DType::Float64, DType::Float32})
    for (auto [L, Lk] : std::vector<std::pair<std::int64_t, std::int64_t>>{
             {1, 1}, {5, 5}, {16, 16}, {33, 33}, {100, 100}, {257, 257}, {20, 4}, {6, 11}}) {
      CAPTURE(L);
      CAPTURE(Lk);
      CAPTURE(dtype_name(dtype));
      const Tensor u = randn({B, H, L}, dtype), k = randn({H, Lk}, dtype);  // k broadcasts over the batch
      const Tensor y = fft_conv(u, k);
      REQUIRE(y.shape() == Shape{B, H, L});
      const auto want = direct_conv(u.to_vector<double>(), k.to_vector<double>(), B, H, L, Lk);
      const double err = rel_error(y.to_vector<double>(), want);
      CHECK(err < (dtype == DType::Float64 ? 1e-12 : 1e-5));
    }
}

TEST_CASE("fft_conv gradients match central differences") {
  manual_seed(12);
  for (auto [L, Lk] : std::vector<std::pair<std::int64_t, std::int64_t>>{{7, 7}, {6, 3}, {4, 6}}) {
    CAPTURE(L);
    CAPTURE(Lk);
    Tensor u = randn({2, 3, L}, DType::Float64), k = randn({3, Lk}, DType::Float64);
    u.requires_grad_();
    k.requires_grad_();
    const GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return fft_conv(in[0], in[1]); }, {u, k});
    CHECK_MESSAGE(r.ok, r.message);
  }
}

TEST_CASE("rfft, irfft and fft_conv reject bad shapes, lengths and dtypes") {
  const Tensor x = randn({2, 6});
  CHECK_THROWS_EMBER(rfft(scalar_tensor(1.0)), "rfft: expected x [..., L] with L > 0, got []");
  CHECK_THROWS_EMBER(rfft(zeros({2, 0})), "got [2, 0]");
  CHECK_THROWS_EMBER(rfft(x, 0), "rfft: n must be positive");
  CHECK_THROWS_EMBER(rfft(x, -2), "got n = -2 for x [2, 6]");
  CHECK_THROWS_EMBER(rfft(zeros({2, 6}, DType::Int64)), "rfft: expected x in Float32 or Float64, got int64 [2, 6]");
  CHECK_THROWS_EMBER(irfft(Complex{zeros({4}, DType::Float16), zeros({4}, DType::Float16)}, 6),
                     "irfft: expected re and im in Float32 or Float64, got float16 [4]");
  const Complex X = rfft(x);
  CHECK_THROWS_EMBER(irfft(X, 8),
                     "irfft: expected re and im of one dtype and shape [..., n/2 + 1] = [..., 5] for "
                     "n = 8, got re float32 [2, 4]");
  CHECK_THROWS_EMBER(irfft(X, 0), "irfft:");
  CHECK_THROWS_EMBER(irfft(Complex{X.re, zeros({2, 3})}, 6), "im float32 [2, 3]");
  CHECK_THROWS_EMBER(irfft(Complex{X.re, X.im.to(DType::Float64)}, 6), "im float64 [2, 4]");
  CHECK_THROWS_EMBER(irfft(Complex{X.re, Tensor()}, 6), "irfft");
  CHECK_THROWS_EMBER(fft_conv(randn({2, 3, 8}), randn({4, 8})), "fft_conv");
  CHECK_THROWS_EMBER(fft_conv(randn({3, 8}), randn({3, 8}, DType::Float64)),
                     "fft_conv: expected u [..., L] and k [..., L_k] of one dtype");
  CHECK_THROWS_EMBER(fft_conv(randn({3, 8}), zeros({3, 0})), "k float32 [3, 0]");
}
