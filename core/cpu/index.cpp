/// \file
/// \brief CPU indexing kernels (index_select, gather, scatter_add), triangular masks, and Philox random
/// fills (uniform, Box-Muller normal, Bernoulli, integers).
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"
#include "core/philox.h"

namespace ember {

using cpu::compute_t;
using cpu::load;
using cpu::store;

namespace {

/// Throws naming `op` and the input's shape unless every index lies in [0, shape[dim]).
void check_range(const char* op, const Tensor& index, const Shape& shape, int dim) {
  const std::int64_t* p = index.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < index.numel(); ++i)
    EMBER_CHECK(p[i] >= 0 && p[i] < shape[dim], fmt::format("{}: index {} is out of range for dim {} of shape {}", op,
                                                            p[i], dim, shape_str(shape)));
}

/// Element offset, under `strides`, of the multi-index of flat position k in
/// `index_shape`, with coordinate `dim` replaced by `at`.
std::int64_t offset_with(const Shape& strides, const Shape& index_shape, std::int64_t k, int dim,
                         std::int64_t at) {
  std::int64_t off = 0;
  for (std::size_t d = index_shape.size(); d-- > 0;) {
    const std::int64_t c = k % index_shape[d];
    k /= index_shape[d];
    off += (static_cast<int>(d) == dim ? at : c) * strides[d];
  }
  return off;
}

/// The largest T below `high`. Rounding a uniform sample to T can carry it up to `high` itself (a
/// float16 sample in [0, 1) rounds to 1 once in ~4096 draws); such samples land here instead, so rand
/// stays in [low, high) in every dtype.
template <class T>
T largest_below(double high) {
  T t = store<T>(static_cast<compute_t<T>>(high));
  while (load<double>(t) >= high) {
    if constexpr (std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>)  // one step toward -inf
      t.bits = (t.bits & 0x7fffu) == 0 ? 0x8001u : ((t.bits & 0x8000u) ? t.bits + 1 : t.bits - 1);
    else
      t = std::nextafter(t, -std::numeric_limits<T>::infinity());
  }
  return t;
}

}  // namespace

void CpuBackend::index_select(const Tensor& x, int dim, const Tensor& index, const Tensor& out) {
  const cpu::DimSplit s(x.shape(), dim);
  check_range("index_select", index, x.shape(), dim);
  const std::int64_t L = index.numel();
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  const std::size_t bytes = element_size(x.dtype());
  const char* px = static_cast<const char*>(x.raw_data());
  char* po = static_cast<char*>(out.raw_data());
  cpu::parallel_range(s.outer * L, out.numel(), [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t r = b; r < e; ++r) {
      const std::int64_t o = r / L, l = r % L;
      std::memcpy(po + r * s.inner * bytes, px + (o * s.n + idx[l]) * s.inner * bytes, s.inner * bytes);
    }
  });
}

void CpuBackend::gather(const Tensor& x, int dim, const Tensor& index, const Tensor& out) {
  check_range("gather", index, x.shape(), dim);
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  cpu::dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    for (std::int64_t k = 0; k < index.numel(); ++k)
      po[k] = px[offset_with(x.strides(), index.shape(), k, dim, idx[k])];
  });
}

void CpuBackend::scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  check_range("scatter_add", index, out.shape(), dim);
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  const Shape src_strides = src.strides();
  cpu::dispatch(out.dtype(), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    const T* ps = static_cast<const T*>(src.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    for (std::int64_t k = 0; k < index.numel(); ++k) {
      const std::int64_t o = offset_with(out.strides(), index.shape(), k, dim, idx[k]);
      const std::int64_t si = offset_with(src_strides, index.shape(), k, -1, 0);
      po[o] = store<T>(static_cast<C>(load<C>(po[o]) + load<C>(ps[si])));
    }
  });
}

void CpuBackend::triangle(const Tensor& x, std::int64_t k, bool upper, const Tensor& out) {
  const auto n = x.dim();
  const std::int64_t R = x.shape()[n - 2], C = x.shape()[n - 1], mats = x.numel() / std::max<std::int64_t>(R * C, 1);
  cpu::dispatch(x.dtype(), [&](auto t) {
    using T = decltype(t);
    const T* px = static_cast<const T*>(x.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    for (std::int64_t m = 0; m < mats; ++m)
      for (std::int64_t i = 0; i < R; ++i)
        for (std::int64_t j = 0; j < C; ++j) {
          const bool keep = upper ? (j - i >= k) : (j - i <= k);
          const std::int64_t e = (m * R + i) * C + j;
          po[e] = keep ? px[e] : store<T>(compute_t<T>(0));
        }
  });
}

void CpuBackend::random(RandomKind kind, const Tensor& out, RandomArgs args) {
  const std::int64_t n = out.numel();
  cpu::dispatch(out.dtype(), [&](auto t) {
    using T = decltype(t);
    using C = compute_t<T>;
    T* po = static_cast<T*>(out.raw_data());
    T top{};
    if constexpr (std::is_floating_point_v<C>)
      if (kind == RandomKind::Uniform && args.b > args.a) top = largest_below<T>(args.b);
    // Block k feeds elements 2k and 2k+1: words (0, 1) and (2, 3).
    cpu::parallel_range((n + 1) / 2, n * 16, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t k = b; k < e; ++k) {
        const auto w = philox_block(args.seed, args.offset + static_cast<std::uint64_t>(k));
        const double u0 = uniform_double(w[0], w[1]), u1 = uniform_double(w[2], w[3]);
        double v[2] = {0.0, 0.0};
        switch (kind) {
          case RandomKind::Uniform:
            v[0] = args.a + (args.b - args.a) * u0;
            v[1] = args.a + (args.b - args.a) * u1;
            break;
          case RandomKind::Normal: {  // Box-Muller on (1 - u0) in (0, 1]
            const double r = std::sqrt(-2.0 * std::log(1.0 - u0)), th = 6.283185307179586 * u1;
            v[0] = args.a + args.b * r * std::cos(th);
            v[1] = args.a + args.b * r * std::sin(th);
            break;
          }
          case RandomKind::Bernoulli:
            v[0] = u0 < args.a ? 1.0 : 0.0;
            v[1] = u1 < args.a ? 1.0 : 0.0;
            break;
          case RandomKind::RandInt: {
            const double span = args.b - args.a;
            v[0] = args.a + std::floor(u0 * span);
            v[1] = args.a + std::floor(u1 * span);
            break;
          }
        }
        for (int j = 0; j < 2 && 2 * k + j < n; ++j) {
          T s = store<T>(static_cast<C>(v[j]));
          if constexpr (std::is_floating_point_v<C>)
            if (kind == RandomKind::Uniform && load<double>(s) >= args.b && args.b > args.a) s = top;
          po[2 * k + j] = s;
        }
      }
    });
  });
}

}  // namespace ember
