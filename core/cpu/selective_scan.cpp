/// \file
/// \brief CPU kernels of Mamba's selective scan (Gu & Dao 2023; technique notes §6), forward and backward, as a
/// chunked parallel scan.
///
/// Per batch b, channel c and state index n, with a_t = exp(Δ_t A_{c,n}) and u_t = Δ_t B_{t,n} x_t:
///
///     s_t = a_t s_{t−1} + u_t   (s_{−1} = 0),      y_t = Σ_n C_{t,n} s_t
///
/// Each step is the pair (a_t, u_t) under the associative operator (a₁, b₁)∘(a₂, b₂) = (a₁a₂, a₂b₁ + b₂), so the
/// sequence splits into chunks of L steps that scan independently. Forward:
///   1. every chunk scans from a zero state and keeps its end state e_k and its total decay Π a_t = exp(A ΣΔ_t);
///   2. per (b, c), the chunks combine in order: start_0 = 0, start_{k+1} = exp(A ΣΔ_t over chunk k) start_k + e_k,
///      written to `starts`;
///   3. every chunk rescans from its start and writes y.
/// Backward, with the adjoint g_t = ∂L/∂s_t = dy_t C_t + a_{t+1} g_{t+1}, runs the same three phases in reverse:
///   1. every chunk but the first runs the adjoint from zero, giving r_k = a_{t₀} g_{t₀} at its first step t₀;
///   2. per (b, c), the carries q_k (the term a_{t₀} g_{t₀} entering chunk k from chunk k + 1) combine backwards:
///      q_{G−1} = 0, q_{k−1} = r_k + exp(A ΣΔ_t over chunk k) q_k;
///   3. every chunk recomputes its states from `starts`, runs the adjoint from q_k and forms the gradients
///      dC_t += dy_t s_t,  dx_t = Δ_t Σ_n g_t B_t,  dB_t += g_t Δ_t x_t,
///      dΔ_t = Σ_n (g_t B_t x_t + A g_t a_t s_{t−1}),  dA += Δ_t g_t a_t s_{t−1}.
/// Memory beyond the inputs and outputs: the chunk starts and carries, [Bt, ⌈T/L⌉, E, N], never all T·E·N states.
/// Phases 1 and 3 of the forward and phase 1 of the backward run in parallel over batch × chunks × channels;
/// phase 3 of the backward over batch × chunks (each owns its rows of dB and dC, summed over the channels), with
/// dA summed per thread, then combined; the phases 2 over batch × channels.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

namespace {

/// The sizes of one scan: x, delta [Bt, T, E], A [E, N], B, C [Bt, T, N], chunks of L steps, G = ⌈T/L⌉ of them.
struct ScanShape {
  std::int64_t Bt, T, E, N, L, G;
  /// The first step of chunk k.
  std::int64_t first(std::int64_t k) const { return k * L; }
  /// The number of steps of chunk k (L, or fewer for the last).
  std::int64_t length(std::int64_t k) const { return std::min(L, T - k * L); }
  /// The element offset of the [N] row (b, k, c) in a [Bt, G, E, N] buffer.
  std::int64_t slot(std::int64_t b, std::int64_t k, std::int64_t c) const { return ((b * G + k) * E + c) * N; }
};

/// The sizes of a scan of x [Bt, T, E] with A [E, N]; a chunk longer than the sequence is cut to T steps.
ScanShape scan_shape(const Tensor& x, const Tensor& A, std::int64_t chunk) {
  const std::int64_t T = x.shape()[1], L = std::max<std::int64_t>(1, std::min(chunk, T));
  return {x.shape()[0], T, x.shape()[2], A.shape()[1], L, (T + L - 1) / L};
}

/// The scan's inputs as raw pointers.
template <class T>
struct ScanInputs {
  const T *x, *delta, *A, *B, *C;
  ScanInputs(const Tensor& x_, const Tensor& d, const Tensor& A_, const Tensor& B_, const Tensor& C_)
      : x(x_.data_ptr<T>()), delta(d.data_ptr<T>()), A(A_.data_ptr<T>()), B(B_.data_ptr<T>()), C(C_.data_ptr<T>()) {}
};

/// Runs s_t = exp(Δ_t A_c) s_{t−1} + Δ_t B_t x_t over chunk k of (b, c) from the state s [N] (updated in place),
/// writing y_t = C_t · s_t when y is non-null. Returns ΣΔ_t over the chunk.
template <class T>
T scan_chunk(const ScanShape& g, const ScanInputs<T>& in, std::int64_t b, std::int64_t k, std::int64_t c, T* s, T* y) {
  const T* A = in.A + c * g.N;
  T total = 0;
  for (std::int64_t t = g.first(k), end = t + g.length(k); t < end; ++t) {
    const std::int64_t i = (b * g.T + t) * g.E + c;
    const T d = in.delta[i], dx = d * in.x[i];
    const T *B = in.B + (b * g.T + t) * g.N, *C = in.C + (b * g.T + t) * g.N;
    T yt = 0;
    for (std::int64_t n = 0; n < g.N; ++n) {
      s[n] = std::exp(d * A[n]) * s[n] + dx * B[n];
      yt += C[n] * s[n];
    }
    if (y) y[i] = yt;
    total += d;
  }
  return total;
}

/// Runs the adjoint g_t = dy_t C_t + r, r ← a_t g_t backwards over chunk k of (b, c) from r [N] = 0, leaving in r
/// the carry a_{t₀} g_{t₀} at its first step t₀. Returns ΣΔ_t over the chunk.
template <class T>
T adjoint_chunk(const ScanShape& g, const ScanInputs<T>& in, const T* dy, std::int64_t b, std::int64_t k,
                std::int64_t c, T* r) {
  const T* A = in.A + c * g.N;
  std::fill(r, r + g.N, T(0));
  T total = 0;
  for (std::int64_t t = g.first(k) + g.length(k) - 1; t >= g.first(k); --t) {
    const std::int64_t i = (b * g.T + t) * g.E + c;
    const T d = in.delta[i], gy = dy[i];
    const T* C = in.C + (b * g.T + t) * g.N;
    for (std::int64_t n = 0; n < g.N; ++n) r[n] = std::exp(d * A[n]) * (r[n] + gy * C[n]);
    total += d;
  }
  return total;
}

/// Runs f(b, k, c, s) over every (b, k, c) with k in [k_begin, G) in parallel; s is an [N] scratch row.
template <class T, class F>
void for_each_chunk(const ScanShape& g, std::int64_t k_begin, F&& f) {
  const std::int64_t K = std::max<std::int64_t>(g.G - k_begin, 0), n = g.Bt * K * g.E;
  cpu::parallel_range(n, n * g.L * g.N, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> s(g.N);
    for (std::int64_t i = begin; i < end; ++i) f(i / (K * g.E), k_begin + (i / g.E) % K, i % g.E, s.data());
  });
}

/// Runs f(b, c) over every batch and channel in parallel.
template <class F>
void for_each_channel(const ScanShape& g, F&& f) {
  const std::int64_t n = g.Bt * g.E;
  cpu::parallel_range(n, n * g.G * g.N, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) f(i / g.E, i % g.E);
  });
}

template <class T>
void forward_typed(const ScanShape& g, const ScanInputs<T>& in, T* y, T* starts) {
  std::vector<T> total(static_cast<std::size_t>(g.Bt * g.G * g.E));
  // Phase 1: each chunk but the last from zero; its end state goes to its own slot of `starts` for now.
  for_each_chunk<T>(g, 0, [&](std::int64_t b, std::int64_t k, std::int64_t c, T*) {
    if (k == g.G - 1) return;
    T* s = starts + g.slot(b, k, c);
    std::fill(s, s + g.N, T(0));
    total[(b * g.G + k) * g.E + c] = scan_chunk(g, in, b, k, c, s, static_cast<T*>(nullptr));
  });
  // Phase 2: start_0 = 0, start_{k+1} = exp(A ΣΔ) start_k + e_k, replacing each e_k by start_k.
  for_each_channel(g, [&](std::int64_t b, std::int64_t c) {
    std::vector<T> carry(g.N, T(0));
    const T* A = in.A + c * g.N;
    for (std::int64_t k = 0; k < g.G; ++k) {
      T* slot = starts + g.slot(b, k, c);
      const T sum_delta = total[(b * g.G + k) * g.E + c];
      for (std::int64_t n = 0; n < g.N; ++n) {
        const T end_state = slot[n];
        slot[n] = carry[n];
        if (k + 1 < g.G) carry[n] = std::exp(A[n] * sum_delta) * carry[n] + end_state;
      }
    }
  });
  // Phase 3: every chunk from its start, writing y.
  for_each_chunk<T>(g, 0, [&](std::int64_t b, std::int64_t k, std::int64_t c, T* s) {
    std::copy(starts + g.slot(b, k, c), starts + g.slot(b, k, c) + g.N, s);
    scan_chunk(g, in, b, k, c, s, y);
  });
}

/// The gradient outputs of the backward, as raw pointers.
template <class T>
struct ScanGrads {
  T *dx, *ddelta, *dA, *dB, *dC;
};

/// Per-thread scratch of backward phase 3: the chunk's states S [L + 1, N] (S_0 = the start), decays a [L, N] and
/// the running adjoint carry r [N].
template <class T>
struct ChunkScratch {
  std::vector<T> S, a, r;
  explicit ChunkScratch(const ScanShape& g) : S((g.L + 1) * g.N), a(g.L * g.N), r(g.N) {}
};

/// Backward phase 3 for channel c of chunk k of batch b, entering with the carry q [N]: adds this channel's share of
/// dB, dC (rows of the chunk) and dA (into dA_part [E, N]), and writes its dx, dΔ.
template <class T>
void backward_chunk_channel(const ScanShape& g, const ScanInputs<T>& in, const T* dy, const T* start, const T* q,
                            std::int64_t b, std::int64_t k, std::int64_t c, const ScanGrads<T>& out, T* dA_part,
                            ChunkScratch<T>& w) {
  const std::int64_t N = g.N, t0 = g.first(k), len = g.length(k);
  const T* A = in.A + c * N;
  std::copy(start, start + N, w.S.begin());
  for (std::int64_t j = 0; j < len; ++j) {  // recompute s_t and a_t from the chunk's start
    const std::int64_t i = (b * g.T + t0 + j) * g.E + c;
    const T d = in.delta[i], dx = d * in.x[i];
    const T* B = in.B + (b * g.T + t0 + j) * N;
    for (std::int64_t n = 0; n < N; ++n) {
      w.a[j * N + n] = std::exp(d * A[n]);
      w.S[(j + 1) * N + n] = w.a[j * N + n] * w.S[j * N + n] + dx * B[n];
    }
  }
  std::copy(q, q + N, w.r.begin());
  for (std::int64_t j = len - 1; j >= 0; --j) {
    const std::int64_t row = b * g.T + t0 + j, i = row * g.E + c;
    const T d = in.delta[i], xv = in.x[i], gy = dy[i];
    const T *B = in.B + row * N, *C = in.C + row * N, *a = w.a.data() + j * N;
    const T *s_prev = w.S.data() + j * N, *s = w.S.data() + (j + 1) * N;
    T *dB = out.dB + row * N, *dC = out.dC + row * N;
    T gB = 0, dd = 0;
    for (std::int64_t n = 0; n < N; ++n) {
      const T gt = w.r[n] + gy * C[n];          // g_t = dy_t C_t + a_{t+1} g_{t+1}
      const T g_decay = gt * a[n] * s_prev[n];  // ∂L/∂(Δ_t A_n)
      dC[n] += gy * s[n];
      dB[n] += gt * d * xv;
      gB += gt * B[n];
      dd += A[n] * g_decay;
      dA_part[c * N + n] += d * g_decay;
      w.r[n] = a[n] * gt;
    }
    out.dx[i] = d * gB;
    out.ddelta[i] = xv * gB + dd;
  }
}

template <class T>
void backward_typed(const ScanShape& g, const ScanInputs<T>& in, const T* starts, const T* dy,
                    const ScanGrads<T>& out) {
  // Phase 1: each chunk k ≥ 1 runs the adjoint from zero; r_k goes to slot k − 1 of `carry`.
  std::vector<T> carry(static_cast<std::size_t>(g.Bt * g.G * g.E * g.N)), total(g.Bt * g.G * g.E);
  for_each_chunk<T>(g, 1, [&](std::int64_t b, std::int64_t k, std::int64_t c, T*) {
    total[(b * g.G + k) * g.E + c] = adjoint_chunk(g, in, dy, b, k, c, carry.data() + g.slot(b, k - 1, c));
  });
  // Phase 2: q_{G−1} = 0, q_{k−1} = r_k + exp(A ΣΔ over chunk k) q_k, in place.
  if (g.G > 0)
    for_each_channel(g, [&](std::int64_t b, std::int64_t c) {
      const T* A = in.A + c * g.N;
      T* last = carry.data() + g.slot(b, g.G - 1, c);
      std::fill(last, last + g.N, T(0));
      for (std::int64_t k = g.G - 1; k >= 1; --k) {
        const T* q = carry.data() + g.slot(b, k, c);
        const T sum_delta = total[(b * g.G + k) * g.E + c];
        T* r = carry.data() + g.slot(b, k - 1, c);
        for (std::int64_t n = 0; n < g.N; ++n) r[n] += std::exp(A[n] * sum_delta) * q[n];
      }
    });
  // Phase 3: over batch × chunks; each task owns its rows of dB and dC, dA is summed per thread.
  const std::int64_t tasks = g.Bt * g.G, EN = g.E * g.N;
  const int threads = tasks < 2 || tasks * g.L * EN < cpu::kParallelGrain ? 1 : omp_get_max_threads();
  std::vector<T> dA_parts(static_cast<std::size_t>(threads * EN), T(0));
#pragma omp parallel num_threads(threads)
  {
    const std::int64_t id = omp_get_thread_num(), nt = omp_get_num_threads();
    ChunkScratch<T> scratch(g);
    for (std::int64_t task = tasks * id / nt; task < tasks * (id + 1) / nt; ++task) {
      const std::int64_t b = task / g.G, k = task % g.G, row0 = b * g.T + g.first(k);
      std::fill(out.dB + row0 * g.N, out.dB + (row0 + g.length(k)) * g.N, T(0));
      std::fill(out.dC + row0 * g.N, out.dC + (row0 + g.length(k)) * g.N, T(0));
      for (std::int64_t c = 0; c < g.E; ++c)
        backward_chunk_channel(g, in, dy, starts + g.slot(b, k, c), carry.data() + g.slot(b, k, c), b, k, c, out,
                               dA_parts.data() + id * EN, scratch);
    }
  }
  std::fill(out.dA, out.dA + EN, T(0));
  for (int t = 0; t < threads; ++t)
    for (std::int64_t j = 0; j < EN; ++j) out.dA[j] += dA_parts[t * EN + j];
}

}  // namespace

void CpuBackend::selective_scan_forward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                                        const Tensor& C, std::int64_t chunk, const Tensor& y, const Tensor& starts) {
  const ScanShape g = scan_shape(x, A, chunk);
  cpu::dispatch_float_double("selective_scan_forward", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    forward_typed<T>(g, ScanInputs<T>(x, delta, A, B, C), y.data_ptr<T>(), starts.data_ptr<T>());
  });
}

void CpuBackend::selective_scan_backward(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                                         const Tensor& C, const Tensor& starts, const Tensor& dy, std::int64_t chunk,
                                         const Tensor& dx, const Tensor& ddelta, const Tensor& dA, const Tensor& dB,
                                         const Tensor& dC) {
  const ScanShape g = scan_shape(x, A, chunk);
  cpu::dispatch_float_double("selective_scan_backward", x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    backward_typed<T>(g, ScanInputs<T>(x, delta, A, B, C), starts.data_ptr<T>(), dy.data_ptr<T>(),
                      {dx.data_ptr<T>(), ddelta.data_ptr<T>(), dA.data_ptr<T>(), dB.data_ptr<T>(), dC.data_ptr<T>()});
  });
}

}  // namespace ember
