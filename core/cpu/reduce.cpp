/// \file
/// \brief CPU reductions (sum, mean, prod, max, min over any dims), arg max/min, cumulative sum and
/// product, and the numerically stable softmax: softmax(x)_i = exp(x_i - m) / sum_j exp(x_j - m) with
/// m = max_j x_j, and log_softmax(x)_i = x_i - m - log sum_j exp(x_j - m).
///
/// Inputs are contiguous. Every kernel sees its tensor as [K1, R, K2] around the reduced dims, so the
/// innermost loop either runs along R (K2 = 1) or along K2 with R outside it; both read memory in order.
/// Floating sums accumulate in double.
#include <cmath>
#include <limits>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

using cpu::compute_t;
using cpu::load;
using cpu::store;

namespace {

/// Accumulator type: double for floating types, int64 otherwise.
template <class T>
using acc_t = std::conditional_t<std::is_floating_point_v<compute_t<T>>, double, std::int64_t>;

template <class A>
A identity(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Mean: return A(0);
    case ReduceOp::Prod: return A(1);
    case ReduceOp::Max:
      return std::numeric_limits<A>::has_infinity ? -std::numeric_limits<A>::infinity() : std::numeric_limits<A>::lowest();
    case ReduceOp::Min:
      return std::numeric_limits<A>::has_infinity ? std::numeric_limits<A>::infinity() : std::numeric_limits<A>::max();
  }
  return A(0);
}

/// A binary reduction step for a fixed op (NaN propagates through max and min, as in PyTorch).
template <ReduceOp OP, class A>
inline A combine(A acc, A v) {
  if constexpr (OP == ReduceOp::Sum || OP == ReduceOp::Mean) return acc + v;
  else if constexpr (OP == ReduceOp::Prod) return acc * v;
  else if constexpr (OP == ReduceOp::Max) return (v > acc || v != v) ? v : acc;
  else return (v < acc || v != v) ? v : acc;
}

/// out[k1, k2] = combine over r of in[k1, r, k2]; in is typed In, out is A.
template <ReduceOp OP, class A, class In>
void reduce_pass(const In* in, A* out, std::int64_t K1, std::int64_t R, std::int64_t K2) {
  const A init = identity<A>(OP);
  if (K2 == 1) {
    cpu::parallel_range(K1, K1 * R, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t k = b; k < e; ++k) {
        const In* row = in + k * R;
        A part[4] = {init, init, init, init};  // four chains hide the add latency
        std::int64_t r = 0;
        for (; r + 4 <= R; r += 4)
          for (int j = 0; j < 4; ++j) part[j] = combine<OP>(part[j], load<A>(row[r + j]));
        for (; r < R; ++r) part[0] = combine<OP>(part[0], load<A>(row[r]));
        out[k] = combine<OP>(combine<OP>(part[0], part[1]), combine<OP>(part[2], part[3]));
      }
    });
    return;
  }
  cpu::parallel_range(K1 * K2, K1 * R * K2, [&](std::int64_t b, std::int64_t e) {
    // Each thread owns the outputs [b, e) of the flattened (k1, k2) space.
    for (std::int64_t o = b; o < e; ++o) out[o] = init;
    std::int64_t o = b;
    while (o < e) {
      const std::int64_t k1 = o / K2, k2_begin = o % K2;
      const std::int64_t k2_end = std::min<std::int64_t>(K2, k2_begin + (e - o));
      for (std::int64_t r = 0; r < R; ++r) {
        const In* row = in + (k1 * R + r) * K2;
        A* dst = out + k1 * K2;
        for (std::int64_t k2 = k2_begin; k2 < k2_end; ++k2) dst[k2] = combine<OP>(dst[k2], load<A>(row[k2]));
      }
      o += k2_end - k2_begin;
    }
  });
}

/// Reduces a contiguous x over sorted dims: one [K1, R, K2] pass per run of adjacent reduced dims,
/// innermost run first.
template <ReduceOp OP, class T>
void reduce_typed(const Tensor& x, const std::vector<int>& dims, const Tensor& out) {
  using A = acc_t<T>;
  Shape shape = x.shape();
  std::vector<A> cur, next;
  bool first = true;
  std::int64_t count = 1;
  std::size_t i = dims.size();
  while (i > 0) {
    std::size_t j = i - 1;
    while (j > 0 && dims[j - 1] == dims[j] - 1) --j;
    const int r0 = dims[j], r1 = dims[i - 1] + 1;
    std::int64_t K1 = 1, R = 1, K2 = 1;
    for (int d = 0; d < r0; ++d) K1 *= shape[d];
    for (int d = r0; d < r1; ++d) R *= shape[d];
    for (std::size_t d = r1; d < shape.size(); ++d) K2 *= shape[d];
    next.assign(K1 * K2, A(0));
    if (first)
      reduce_pass<OP, A>(static_cast<const T*>(x.raw_data()), next.data(), K1, R, K2);
    else
      reduce_pass<OP, A>(cur.data(), next.data(), K1, R, K2);
    for (int d = r0; d < r1; ++d) shape[d] = 1;
    cur.swap(next);
    first = false;
    count *= R;
    i = j;
  }
  T* po = static_cast<T*>(out.raw_data());
  if (first) {  // no dims: a copy
    const T* px = static_cast<const T*>(x.raw_data());
    for (std::int64_t k = 0; k < x.numel(); ++k) po[k] = px[k];
    return;
  }
  for (std::size_t k = 0; k < cur.size(); ++k) {
    A v = cur[k];
    if constexpr (OP == ReduceOp::Mean) v = count ? v / static_cast<A>(count) : std::numeric_limits<A>::quiet_NaN();
    po[k] = store<T>(static_cast<compute_t<T>>(v));
  }
}

}  // namespace

void CpuBackend::reduce(ReduceOp op, const Tensor& x, const std::vector<int>& dims, const Tensor& out) {
  cpu::dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    switch (op) {
      case ReduceOp::Sum: reduce_typed<ReduceOp::Sum, T>(x, dims, out); return;
      case ReduceOp::Mean: reduce_typed<ReduceOp::Mean, T>(x, dims, out); return;
      case ReduceOp::Prod: reduce_typed<ReduceOp::Prod, T>(x, dims, out); return;
      case ReduceOp::Max: reduce_typed<ReduceOp::Max, T>(x, dims, out); return;
      case ReduceOp::Min: reduce_typed<ReduceOp::Min, T>(x, dims, out); return;
    }
  });
}

void CpuBackend::arg_reduce(bool max, const Tensor& x, int dim, const Tensor& out) {
  const cpu::DimSplit s(x.shape(), dim);
  std::int64_t* po = out.data_ptr<std::int64_t>();
  cpu::dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* px = static_cast<const T*>(x.raw_data());
    cpu::parallel_range(s.outer * s.inner, x.numel(), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        const std::int64_t k1 = o / s.inner, k2 = o % s.inner;
        const T* base = px + k1 * s.n * s.inner + k2;
        std::int64_t best = 0;
        C bv = load<C>(base[0]);
        for (std::int64_t r = 1; r < s.n && bv == bv; ++r) {
          const C v = load<C>(base[r * s.inner]);
          if ((max ? v > bv : v < bv) || v != v) {
            bv = v;
            best = r;
          }
        }
        po[o] = best;
      }
    });
  });
}

void CpuBackend::scan(ScanOp op, const Tensor& x, int dim, const Tensor& out) {
  const cpu::DimSplit s(x.shape(), dim);
  cpu::dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    using A = acc_t<T>;
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    cpu::parallel_range(s.outer * s.inner, x.numel(), [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        const std::int64_t base = (o / s.inner) * s.n * s.inner + o % s.inner;
        A acc = op == ScanOp::Cumsum ? A(0) : A(1);
        for (std::int64_t r = 0; r < s.n; ++r) {
          const std::int64_t k = base + r * s.inner;
          acc = op == ScanOp::Cumsum ? acc + load<A>(px[k]) : acc * load<A>(px[k]);
          po[k] = store<T>(static_cast<compute_t<T>>(acc));
        }
      }
    });
  });
}

void CpuBackend::softmax(const Tensor& x, int dim, bool log, const Tensor& out) {
  const cpu::DimSplit s(x.shape(), dim);
  cpu::dispatch_floating("softmax", x.dtype(), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    cpu::parallel_range(s.outer * s.inner, x.numel() * 8, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t o = b; o < e; ++o) {
        const std::int64_t base = (o / s.inner) * s.n * s.inner + o % s.inner;
        C m = -std::numeric_limits<C>::infinity();
        for (std::int64_t r = 0; r < s.n; ++r) m = std::max(m, load<C>(px[base + r * s.inner]));
        if (std::isinf(m) && m < 0) m = 0;  // an all -inf row: 0 / 0 gives NaN, as in PyTorch
        double sum = 0;
        for (std::int64_t r = 0; r < s.n; ++r) sum += std::exp(load<C>(px[base + r * s.inner]) - m);
        if (log) {
          // (x - m) - log(sum), not x - (m + log(sum)): m + log(sum) would round to m's ulp when |m| is large.
          const C lse = static_cast<C>(std::log(sum));
          for (std::int64_t r = 0; r < s.n; ++r) {
            const std::int64_t k = base + r * s.inner;
            po[k] = store<T>((load<C>(px[k]) - m) - lse);
          }
        } else {
          const C inv = static_cast<C>(1.0 / sum);
          for (std::int64_t r = 0; r < s.n; ++r) {
            const std::int64_t k = base + r * s.inner;
            po[k] = store<T>(std::exp(load<C>(px[k]) - m) * inv);
          }
        }
      }
    });
  });
}

}  // namespace ember
