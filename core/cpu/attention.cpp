/// \file
/// \brief CPU kernels of the attention softmax: P = softmax(scale · S + M) row by row, with the causal mask M
/// applied by skipping masked keys, and its backward dS = scale · P ⊙ (dP − rowsum(dP ⊙ P)).
///
/// One pass per row instead of the separate scale, mask, softmax (and, backward, multiply, sum, subtract,
/// multiply) ops a composed version takes; exp runs through Eigen's vectorised polynomial.
#include <Eigen/Core>
#include <algorithm>
#include <limits>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

namespace {

template <class T>
using Row = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using ConstRow = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;

/// Keys query row r may see: all Tk, or Tk − Tq + i + 1 (i = r mod Tq) under the causal mask.
inline std::int64_t visible(bool causal, std::int64_t r, std::int64_t Tq, std::int64_t Tk) {
  return causal ? std::clamp<std::int64_t>(Tk - Tq + r % Tq + 1, 0, Tk) : Tk;
}

template <class T>
void softmax_rows(const T* x, T* y, T scale, bool causal, std::int64_t Tq, std::int64_t Tk, std::int64_t begin,
                  std::int64_t end) {
  for (std::int64_t r = begin; r < end; ++r) {
    const std::int64_t n = visible(causal, r, Tq, Tk);
    Row<T> out(y + r * Tk, Tk);
    if (n == 0) {  // every key masked: 0/0, NaN as PyTorch gives
      out.setConstant(std::numeric_limits<T>::quiet_NaN());
      continue;
    }
    const ConstRow<T> in(x + r * Tk, n);
    const T m = in.maxCoeff();
    // An all −inf row stays NaN (0/0); otherwise shift by the max so exp never overflows.
    const T shift = std::isinf(m) && m < 0 ? T(0) : m;
    out.head(n) = ((in - shift) * scale).exp();
    out.head(n) *= T(1) / out.head(n).sum();
    out.tail(Tk - n).setZero();
  }
}

template <class T>
void softmax_backward_rows(const T* y, const T* g, T* dx, T scale, std::int64_t Tk, std::int64_t begin,
                           std::int64_t end) {
  for (std::int64_t r = begin; r < end; ++r) {
    const ConstRow<T> P(y + r * Tk, Tk), G(g + r * Tk, Tk);
    const T dot = (P * G).sum();
    Row<T>(dx + r * Tk, Tk) = scale * P * (G - dot);
  }
}


}  // namespace

void CpuBackend::attention_softmax(const Tensor& x, double scale, bool causal, const Tensor& out) {
  const std::int64_t Tk = x.shape().back(), Tq = x.shape()[x.dim() - 2], rows = Tk == 0 ? 0 : x.numel() / Tk;
  cpu::dispatch_float_double("attention_softmax", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::parallel_range(rows, x.numel() * 8, [&](std::int64_t b, std::int64_t e) {
      softmax_rows<T>(x.data_ptr<T>(), out.data_ptr<T>(), static_cast<T>(scale), causal, Tq, Tk, b, e);
    });
  });
}

void CpuBackend::attention_softmax_backward(const Tensor& y, const Tensor& g, double scale, const Tensor& out) {
  const std::int64_t Tk = y.shape().back(), rows = Tk == 0 ? 0 : y.numel() / Tk;
  cpu::dispatch_float_double("attention_softmax_backward", y.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::parallel_range(rows, y.numel() * 4, [&](std::int64_t b, std::int64_t e) {
      softmax_backward_rows<T>(y.data_ptr<T>(), g.data_ptr<T>(), out.data_ptr<T>(), static_cast<T>(scale), Tk, b, e);
    });
  });
}

}  // namespace ember
