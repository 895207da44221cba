/// \file
/// \brief CPU kernels of layer norm and RMS norm over the last dim, forward and backward.
///
/// Layer norm (Ba et al. 2016): x̂ = (x - μ) · r with r = 1 / sqrt(σ² + ε), y = x̂ ⊙ w + b.
/// RMS norm (Zhang & Sennrich 2019): μ = 0 and σ² replaced by mean(x²).
/// Backward with ĝ = g ⊙ w: dx = r · (ĝ - mean(ĝ) - x̂ · mean(ĝ ⊙ x̂)) (RMS norm drops the mean(ĝ) term),
/// dw = Σ_rows g ⊙ x̂, db = Σ_rows g. Rows run in parallel; dw and db are summed per thread, then combined.
#include <cmath>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

namespace {

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

template <class T>
void norm_rows(bool rms, const T* x, const T* w, const T* b, T eps, T* y, T* mean, T* rstd, std::int64_t begin,
               std::int64_t end, std::int64_t D) {
  for (std::int64_t i = begin; i < end; ++i) {
    const T* xi = x + i * D;
    T mu = 0, sq = 0;
    if (!rms) {
      for (std::int64_t j = 0; j < D; ++j) mu += xi[j];
      mu /= static_cast<T>(D);
    }
    for (std::int64_t j = 0; j < D; ++j) sq += (xi[j] - mu) * (xi[j] - mu);
    const T r = T(1) / std::sqrt(sq / static_cast<T>(D) + eps);
    mean[i] = mu;
    rstd[i] = r;
    T* yi = y + i * D;
    for (std::int64_t j = 0; j < D; ++j) {
      const T v = (xi[j] - mu) * r;
      yi[j] = (w ? v * w[j] : v) + (b ? b[j] : T(0));
    }
  }
}

/// dx for rows [begin, end); adds this part's dw and db into gw_part, gb_part (when non-null).
template <class T>
void norm_backward_rows(bool rms, const T* g, const T* x, const T* w, const T* mean, const T* rstd, T* gx,
                        T* gw_part, T* gb_part, std::int64_t begin, std::int64_t end, std::int64_t D) {
  for (std::int64_t i = begin; i < end; ++i) {
    const T *gi = g + i * D, *xi = x + i * D;
    const T mu = mean[i], r = rstd[i];
    T sum_gh = 0, sum_ghx = 0;
    for (std::int64_t j = 0; j < D; ++j) {
      const T xhat = (xi[j] - mu) * r, gh = w ? gi[j] * w[j] : gi[j];
      sum_gh += gh;
      sum_ghx += gh * xhat;
      if (gw_part) gw_part[j] += gi[j] * xhat;
      if (gb_part) gb_part[j] += gi[j];
    }
    const T mean_gh = rms ? T(0) : sum_gh / static_cast<T>(D), mean_ghx = sum_ghx / static_cast<T>(D);
    T* gxi = gx + i * D;
    for (std::int64_t j = 0; j < D; ++j) {
      const T xhat = (xi[j] - mu) * r, gh = w ? gi[j] * w[j] : gi[j];
      gxi[j] = r * (gh - mean_gh - xhat * mean_ghx);
    }
  }
}

template <class T>
void norm_backward_typed(bool rms, const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean,
                         const Tensor& rstd, const Tensor& gx, const Tensor& gw, const Tensor& gb) {
  const std::int64_t D = x.shape().back(), N = D == 0 ? 0 : x.numel() / D;
  const int threads = N * D < cpu::kParallelGrain ? 1 : omp_get_max_threads();
  // One row of dw and one of db per thread, summed after the parallel loop.
  std::vector<T> gw_parts(gw.defined() ? threads * D : 0), gb_parts(gb.defined() ? threads * D : 0);
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    norm_backward_rows<T>(rms, g.data_ptr<T>(), x.data_ptr<T>(), ptr_or_null<T>(w), mean.data_ptr<T>(),
                          rstd.data_ptr<T>(), gx.data_ptr<T>(), gw.defined() ? gw_parts.data() + t * D : nullptr,
                          gb.defined() ? gb_parts.data() + t * D : nullptr, N * t / nt, N * (t + 1) / nt, D);
  }
  const auto combine = [&](const Tensor& out, const std::vector<T>& parts) {
    if (!out.defined()) return;
    T* o = out.data_ptr<T>();
    for (std::int64_t j = 0; j < D; ++j) o[j] = 0;
    for (int t = 0; t < threads; ++t)
      for (std::int64_t j = 0; j < D; ++j) o[j] += parts[t * D + j];
  };
  combine(gw, gw_parts);
  combine(gb, gb_parts);
}


}  // namespace

void CpuBackend::norm_forward(bool rms, const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                              const Tensor& mean, const Tensor& rstd) {
  cpu::dispatch_float_double("norm_forward", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t D = x.shape().back(), N = D == 0 ? 0 : x.numel() / D;
    cpu::parallel_range(N, N * D, [&](std::int64_t begin, std::int64_t end) {
      norm_rows<T>(rms, x.data_ptr<T>(), ptr_or_null<T>(w), ptr_or_null<T>(b), static_cast<T>(eps), y.data_ptr<T>(),
                   mean.data_ptr<T>(), rstd.data_ptr<T>(), begin, end, D);
    });
  });
}

void CpuBackend::norm_backward(bool rms, const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean,
                               const Tensor& rstd, const Tensor& gx, const Tensor& gw, const Tensor& gb) {
  cpu::dispatch_float_double("norm_backward", x.dtype(), [&](auto tag) {
    norm_backward_typed<decltype(tag)>(rms, g, x, w, mean, rstd, gx, gw, gb);
  });
}

}  // namespace ember
