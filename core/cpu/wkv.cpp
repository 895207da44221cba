/// \file
/// \brief CPU kernels of RWKV-4's WKV (technique notes §7a), forward and backward, in the numerically stable form of
/// BlinkDL/RWKV-LM's `RWKV-v4/cuda/wkv_cuda.cu`.
///
/// Per channel (decay w > 0, bonus u), with a_t = Σ_{i<t} e^{−(t−1−i)w + k_i} v_i and b_t = Σ_{i<t} e^{−(t−1−i)w+k_i}:
///   y_t = N_t / D_t,   N_t = a_t + e^{u+k_t} v_t,   D_t = b_t + e^{u+k_t},
///   a_{t+1} = e^{−w} a_t + e^{k_t} v_t,   b_{t+1} = e^{−w} b_t + e^{k_t}.
/// Stable form: a = ã e^p, b = b̃ e^p with the running exponent p (p = −1e38, ã = b̃ = 0 at the start):
///   output  q = max(p, u+k_t), A = e^{p−q}, B = e^{u+k_t−q}, y_t = (A ã + B v_t) / (A b̃ + B),
///           so D_t = (A b̃ + B) e^q (and A b̃ + B ≥ 1, as one of A, B is 1 and b̃ ≥ 1 after the first token);
///   update  q' = max(p−w, k_t), F = e^{p−w−q'}, G = e^{k_t−q'}, ã ← F ã + G v_t, b̃ ← F b̃ + G, p ← q'.
/// Every exponent is ≤ 0, so nothing overflows however large k grows.
///
/// Backward, with g_t = ∂L/∂y_t, so ∂L/∂N_t = g_t/D_t and ∂L/∂D_t = −g_t y_t/D_t:
///   du   = Σ_t g_t (v_t − y_t) e^{u+k_t}/D_t,
///   dw   = Σ_t g_t (a'_t − y_t b'_t)/D_t  with a' = ∂a/∂w, b' = ∂b/∂w: a'_{t+1} = e^{−w}(a'_t − a_t) (b' alike),
///   dv_t = g_t e^{u+k_t}/D_t + e^{k_t} α_t,
///   dk_t = g_t (v_t − y_t) e^{u+k_t}/D_t + e^{k_t} (α_t v_t + β_t),
/// where α_t = Σ_{s>t} e^{−(s−1−t)w} g_s/D_s and β_t = −Σ_{s>t} e^{−(s−1−t)w} g_s y_s/D_s are the adjoints of a and
/// b, run backwards in time: α_{t−1} = e^{−w} α_t + g_t/D_t, β_{t−1} = e^{−w} β_t − g_t y_t/D_t, from
/// α_{T−1} = β_{T−1} = 0.
/// As wkv_cuda.cu does, the backward first repeats the forward sweep (carrying a', b' scaled by e^p like a, b, and
/// summing du and dw), then runs the adjoint sweep with α = α̃ e^o, β = β̃ e^o under their own running exponent o:
///   o' = max(o−w, −ln D_t), F = e^{o−w−o'}, G = g_t e^{−ln D_t−o'}, α̃ ← F α̃ + G, β̃ ← F β̃ − G y_t, o ← o'.
/// The first sweep stores ln D_t in dk, which the second reads just before overwriting it with dk_t.
/// Work is split over batch × channels with OpenMP; each task walks a run of neighbouring channels of one sequence
/// through time together, so every step reads contiguous memory. O(T) per channel; dw and du are summed per
/// (sequence, channel) and then over the batch.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

namespace {

/// The running exponent before the first token: e^{p} = 0 in every float type without being −∞ (−∞ − (−∞) is NaN).
constexpr double kMinExponent = -1e38;

/// The raw pointers and sizes of one call: w, u [C]; k, v, y (and the gradients dy, dk, dv) [Bt, T, C].
/// Pointers a call does not use stay null.
template <class T>
struct WkvData {
  const T* w = nullptr;    ///< [C], the decay
  const T* u = nullptr;    ///< [C], the bonus
  const T* k = nullptr;    ///< [Bt, T, C]
  const T* v = nullptr;    ///< [Bt, T, C]
  const T* y = nullptr;    ///< [Bt, T, C], the forward's output (backward)
  const T* dy = nullptr;   ///< [Bt, T, C] (backward)
  T* out_y = nullptr;      ///< [Bt, T, C] (forward)
  T* dk = nullptr;         ///< [Bt, T, C] (backward)
  T* dv = nullptr;         ///< [Bt, T, C] (backward)
  T* dw_parts = nullptr;   ///< [Bt, C]: dw of each (sequence, channel), summed over the batch afterwards
  T* du_parts = nullptr;   ///< [Bt, C]
  std::int64_t T_len = 0;  ///< T
  std::int64_t C = 0;      ///< C
};

/// Calls lanes(b, c0, c1) for each sequence b and run of channels [c0, c1) of the flat (b, c) range [begin, end).
template <class F>
void for_each_lane_run(std::int64_t begin, std::int64_t end, std::int64_t C, F&& lanes) {
  for (std::int64_t b = begin / C; b * C < end; ++b)
    lanes(b, std::max(begin - b * C, std::int64_t{0}), std::min(end - b * C, C));
}

/// The stable forward of channels [c0, c1) of sequence b: writes y.
template <class T>
void forward_lanes(const WkvData<T>& d, std::int64_t b, std::int64_t c0, std::int64_t c1) {
  const std::int64_t n = c1 - c0;
  std::vector<T> a(n, T(0)), bb(n, T(0)), p(n, static_cast<T>(kMinExponent));
  for (std::int64_t t = 0; t < d.T_len; ++t) {
    const std::int64_t row = (b * d.T_len + t) * d.C;
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t c = c0 + j, i = row + c;
      const T k = d.k[i], v = d.v[i], w = d.w[c], uk = d.u[c] + k;
      const T q = std::max(p[j], uk), A = std::exp(p[j] - q), B = std::exp(uk - q);
      d.out_y[i] = (A * a[j] + B * v) / (A * bb[j] + B);
      const T q2 = std::max(p[j] - w, k), F = std::exp(p[j] - w - q2), G = std::exp(k - q2);
      a[j] = F * a[j] + G * v;
      bb[j] = F * bb[j] + G;
      p[j] = q2;
    }
  }
}

/// The backward's first sweep over channels [c0, c1) of sequence b: the forward again, carrying the scaled
/// derivatives ã', b̃' of a, b with respect to w, summing du and dw, and storing ln D_t in dk.
template <class T>
void backward_forward_sweep(const WkvData<T>& d, std::int64_t b, std::int64_t c0, std::int64_t c1) {
  const std::int64_t n = c1 - c0;
  std::vector<T> a(n, T(0)), bb(n, T(0)), da(n, T(0)), db(n, T(0)), p(n, static_cast<T>(kMinExponent));
  std::vector<T> dw(n, T(0)), du(n, T(0));
  for (std::int64_t t = 0; t < d.T_len; ++t) {
    const std::int64_t row = (b * d.T_len + t) * d.C;
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t c = c0 + j, i = row + c;
      const T k = d.k[i], v = d.v[i], y = d.y[i], g = d.dy[i], w = d.w[c], uk = d.u[c] + k;
      const T q = std::max(p[j], uk), A = std::exp(p[j] - q), B = std::exp(uk - q);
      const T den = A * bb[j] + B;  // D_t e^{−q} ≥ 1
      d.dk[i] = q + std::log(den);  // ln D_t, read back by the adjoint sweep
      dw[j] += g * (da[j] - y * db[j]) * A / den;
      du[j] += g * (v - y) * B / den;
      const T q2 = std::max(p[j] - w, k), F = std::exp(p[j] - w - q2), G = std::exp(k - q2);
      da[j] = F * (da[j] - a[j]);
      db[j] = F * (db[j] - bb[j]);
      a[j] = F * a[j] + G * v;
      bb[j] = F * bb[j] + G;
      p[j] = q2;
    }
  }
  for (std::int64_t j = 0; j < n; ++j) {
    d.dw_parts[b * d.C + c0 + j] = dw[j];
    d.du_parts[b * d.C + c0 + j] = du[j];
  }
}

/// The backward's adjoint sweep over channels [c0, c1) of sequence b, from t = T−1 down to 0: writes dk and dv.
template <class T>
void backward_adjoint_sweep(const WkvData<T>& d, std::int64_t b, std::int64_t c0, std::int64_t c1) {
  const std::int64_t n = c1 - c0;
  std::vector<T> alpha(n, T(0)), beta(n, T(0)), o(n, static_cast<T>(kMinExponent));
  for (std::int64_t t = d.T_len - 1; t >= 0; --t) {
    const std::int64_t row = (b * d.T_len + t) * d.C;
    for (std::int64_t j = 0; j < n; ++j) {
      const std::int64_t c = c0 + j, i = row + c;
      const T k = d.k[i], v = d.v[i], y = d.y[i], g = d.dy[i], w = d.w[c], log_D = d.dk[i];
      const T bonus = g * std::exp(d.u[c] + k - log_D);  // g_t e^{u+k_t}/D_t
      const T E = std::exp(k + o[j]);                    // e^{k_t} α_t = E α̃
      d.dv[i] = bonus + E * alpha[j];
      d.dk[i] = bonus * (v - y) + E * (alpha[j] * v + beta[j]);
      const T o2 = std::max(o[j] - w, -log_D), F = std::exp(o[j] - w - o2), G = g * std::exp(-log_D - o2);
      alpha[j] = F * alpha[j] + G;
      beta[j] = F * beta[j] - G * y;
      o[j] = o2;
    }
  }
}

/// Runs sweep(data, b, c0, c1) over every (sequence, channel) of k [Bt, T, C], in parallel.
template <class T, class Sweep>
void run_lanes(const WkvData<T>& d, std::int64_t Bt, Sweep&& sweep) {
  cpu::parallel_range(Bt * d.C, Bt * d.C * d.T_len, [&](std::int64_t begin, std::int64_t end) {
    for_each_lane_run(begin, end, d.C, [&](std::int64_t b, std::int64_t c0, std::int64_t c1) { sweep(d, b, c0, c1); });
  });
}

}  // namespace

void CpuBackend::wkv_forward(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v, const Tensor& y) {
  cpu::dispatch_float_double("wkv_forward", k.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t Bt = k.shape()[0];
    const WkvData<T> d{.w = w.data_ptr<T>(),
                       .u = u.data_ptr<T>(),
                       .k = k.data_ptr<T>(),
                       .v = v.data_ptr<T>(),
                       .out_y = y.data_ptr<T>(),
                       .T_len = k.shape()[1],
                       .C = k.shape()[2]};
    run_lanes(d, Bt, forward_lanes<T>);
  });
}

void CpuBackend::wkv_backward(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v, const Tensor& y,
                              const Tensor& dy, const Tensor& dw, const Tensor& du, const Tensor& dk,
                              const Tensor& dv) {
  cpu::dispatch_float_double("wkv_backward", k.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t Bt = k.shape()[0], C = k.shape()[2];
    std::vector<T> dw_parts(Bt * C), du_parts(Bt * C);
    const WkvData<T> d{.w = w.data_ptr<T>(),
                       .u = u.data_ptr<T>(),
                       .k = k.data_ptr<T>(),
                       .v = v.data_ptr<T>(),
                       .y = y.data_ptr<T>(),
                       .dy = dy.data_ptr<T>(),
                       .dk = dk.data_ptr<T>(),
                       .dv = dv.data_ptr<T>(),
                       .dw_parts = dw_parts.data(),
                       .du_parts = du_parts.data(),
                       .T_len = k.shape()[1],
                       .C = C};
    run_lanes(d, Bt, backward_forward_sweep<T>);
    run_lanes(d, Bt, backward_adjoint_sweep<T>);
    T *dw_out = dw.data_ptr<T>(), *du_out = du.data_ptr<T>();
    for (std::int64_t c = 0; c < C; ++c) {
      dw_out[c] = du_out[c] = T(0);
      for (std::int64_t b = 0; b < Bt; ++b) {
        dw_out[c] += dw_parts[b * C + c];
        du_out[c] += du_parts[b * C + c];
      }
    }
  });
}

}  // namespace ember
