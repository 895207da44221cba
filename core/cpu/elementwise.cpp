/// \file
/// \brief CPU elementwise kernels: copy with conversion, fill, unary math, binary arithmetic and
/// comparisons, where. The innermost row of each loop is a plain pointer loop the compiler vectorises;
/// transcendental functions on contiguous float/double data use Eigen's vectorised versions.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <unordered_map>

#include <Eigen/Core>
#include <unsupported/Eigen/SpecialFunctions>

#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

using cpu::compute_t;
using cpu::load;
using cpu::store;

namespace {

/// Freed blocks of 1 MiB and more, kept for the next allocation of the same size (up to 512 MiB in
/// all). malloc hands such blocks back to the kernel on free, so a fresh one page-faults on every
/// 4 KiB at first touch: for a 64 MiB output that costs more than the add that fills it (measured in
/// bench/RESULTS.md), and a training step frees and reallocates the same sizes every iteration.
class BlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t(1) << 20;
  static constexpr std::size_t kCapBytes = std::size_t(512) << 20;

  /// A cached block of exactly `nbytes`, or a new one (null when out of memory).
  void* take(std::size_t nbytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto [lo, hi] = free_.equal_range(nbytes); lo != hi) {  // the last one freed: warmest in cache
      const auto it = std::prev(hi);
      void* p = it->second;
      free_.erase(it);
      cached_ -= nbytes;
      return p;
    }
    void* p = std::aligned_alloc(64, nbytes);
    if (!p) {  // out of memory: give the cached blocks back and try once more
      for (auto& [size, q] : free_) {
        sizes_.erase(q);
        std::free(q);
      }
      free_.clear();
      cached_ = 0;
      p = std::aligned_alloc(64, nbytes);
    }
    if (p) sizes_[p] = nbytes;
    return p;
  }

  /// Takes back `p` if this cache made it (caching or freeing it); false for any other pointer.
  bool give(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = sizes_.find(p);
    if (it == sizes_.end()) return false;
    if (cached_ + it->second <= kCapBytes) {
      free_.emplace(it->second, p);
      cached_ += it->second;
    } else {
      sizes_.erase(it);
      std::free(p);
    }
    return true;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<void*, std::size_t> sizes_;  // every block made here, in use or cached
  std::multimap<std::size_t, void*> free_;        // cached blocks by size
  std::size_t cached_ = 0;
};

/// Never destroyed, so tensors freed during static destruction still find it.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

}  // namespace

void* CpuBackend::allocate(std::size_t nbytes) {
  const std::size_t rounded = (nbytes + 63) / 64 * 64;
  void* p = rounded >= BlockCache::kMinBytes ? block_cache().take(rounded) : std::aligned_alloc(64, rounded);
  if (!p) throw Error("cpu: out of memory allocating " + std::to_string(nbytes) + " bytes");
  return p;
}
void CpuBackend::deallocate(void* ptr) {
  if (!block_cache().give(ptr)) std::free(ptr);
}
void CpuBackend::copy_from_host(void* dst, const void* src, std::size_t nbytes) { std::memcpy(dst, src, nbytes); }
void CpuBackend::copy_to_host(void* dst, const void* src, std::size_t nbytes) { std::memcpy(dst, src, nbytes); }

namespace {

/// Applies f to each (dst, src...) element across rows; all pointers are typed.
template <class Out, class In, class F>
void map1(const Tensor& x, const Tensor& out, F f) {
  const In* px = static_cast<const In*>(x.raw_data());
  Out* po = static_cast<Out*>(out.raw_data());
  cpu::for_each_row<2>(out.shape(), {&x.strides(), &out.strides()},
                       [&](std::array<std::int64_t, 2> off, std::int64_t n, std::array<std::int64_t, 2> s) {
                         const In* a = px + off[0];
                         Out* o = po + off[1];
                         if (s[0] == 1 && s[1] == 1) {
                           for (std::int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
                         } else {
                           for (std::int64_t i = 0; i < n; ++i) o[i * s[1]] = f(a[i * s[0]]);
                         }
                       });
}

template <class Out, class In, class F>
void map2(const Tensor& a, const Tensor& b, const Tensor& out, F f) {
  const In* pa = static_cast<const In*>(a.raw_data());
  const In* pb = static_cast<const In*>(b.raw_data());
  Out* po = static_cast<Out*>(out.raw_data());
  cpu::for_each_row<3>(
      out.shape(), {&a.strides(), &b.strides(), &out.strides()},
      [&](std::array<std::int64_t, 3> off, std::int64_t n, std::array<std::int64_t, 3> s) {
        const In* x = pa + off[0];
        const In* y = pb + off[1];
        Out* o = po + off[2];
        if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
          for (std::int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
        } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
          const In yv = y[0];
          for (std::int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
        } else if (s[0] == 0 && s[1] == 1 && s[2] == 1) {
          const In xv = x[0];
          for (std::int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
        } else {
          for (std::int64_t i = 0; i < n; ++i) o[i * s[2]] = f(x[i * s[0]], y[i * s[1]]);
        }
      });
}

template <class C>
C gelu_tanh(C x) {
  const C k = C(0.7978845608028654);  // sqrt(2 / pi)
  return C(0.5) * x * (C(1) + std::tanh(k * (x + C(0.044715) * x * x * x)));
}

template <class C>
C softplus(C x) {  // log(1 + e^x) without overflow
  return x > C(20) ? x : std::log1p(std::exp(x));
}

template <class C>
C apply_unary(UnaryOp op, C x, const UnaryArgs& args) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Log1p: return std::log1p(x);
    case UnaryOp::Expm1: return std::expm1(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return C(1) / std::sqrt(x);
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return C((x > C(0)) - (x < C(0)));
    case UnaryOp::Sin: return std::sin(x);
    case UnaryOp::Cos: return std::cos(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return C(1) / (C(1) + std::exp(-x));
    case UnaryOp::Relu: return (x > C(0) || x != x) ? x : C(0);  // NaN propagates, as in PyTorch
    case UnaryOp::GeluErf: return C(0.5) * x * (C(1) + std::erf(x * C(0.7071067811865476)));
    case UnaryOp::GeluTanh: return gelu_tanh(x);
    case UnaryOp::Silu: return x / (C(1) + std::exp(-x));
    case UnaryOp::Softplus: return softplus(x);
    case UnaryOp::Elu: return x > C(0) ? x : C(args.a) * std::expm1(x);
    case UnaryOp::PowScalar: return std::pow(x, C(args.a));
    case UnaryOp::Clamp: return x < C(args.a) ? C(args.a) : (x > C(args.b) ? C(args.b) : x);
    case UnaryOp::Reciprocal: return C(1) / x;
    case UnaryOp::Square: return x * x;
    case UnaryOp::Erf: return std::erf(x);
    case UnaryOp::GeluErfGrad:
      return C(0.5) * (C(1) + std::erf(x * C(0.7071067811865476))) + x * C(0.3989422804014327) * std::exp(C(-0.5) * x * x);
    case UnaryOp::Not: return C(x == C(0));
    case UnaryOp::IsFinite: return C(std::isfinite(static_cast<double>(x)));
  }
  return x;
}

/// The unary loop with the op fixed at compile time, so each inner loop is a single function.
template <UnaryOp OP, class T>
void unary_loop(const Tensor& x, const Tensor& out, const UnaryArgs& args) {
  using C = compute_t<T>;
  if constexpr (OP == UnaryOp::Not || OP == UnaryOp::IsFinite) {
    map1<bool, T>(x, out, [&](T v) { return apply_unary<C>(OP, load<C>(v), args) != C(0); });
  } else {
    map1<T, T>(x, out, [&](T v) { return store<T>(apply_unary<C>(OP, load<C>(v), args)); });
  }
}

/// The ops Eigen evaluates with SIMD (exp, log, tanh, ... via polynomial approximations accurate
/// to a few ulp), many times faster than calling std::tanh per element.
bool has_eigen_unary(UnaryOp op) {
  switch (op) {
    case UnaryOp::Exp: case UnaryOp::Log: case UnaryOp::Log1p: case UnaryOp::Expm1: case UnaryOp::Sqrt:
    case UnaryOp::Rsqrt: case UnaryOp::Sin: case UnaryOp::Cos: case UnaryOp::Tanh: case UnaryOp::Sigmoid:
    case UnaryOp::Erf: case UnaryOp::GeluErf: case UnaryOp::GeluErfGrad:
      return true;
    default: return false;
  }
}

/// out = op(x) on n contiguous elements through Eigen arrays, split across threads.
template <class T>
void eigen_unary(UnaryOp op, const T* x, T* out, std::int64_t n) {
  using A = Eigen::Array<T, Eigen::Dynamic, 1>;
  cpu::parallel_range(n, n * 4, [&](std::int64_t b, std::int64_t e) {
    const Eigen::Map<const A> X(x + b, e - b);
    Eigen::Map<A> O(out + b, e - b);
    switch (op) {
      case UnaryOp::Exp: O = X.exp(); break;
      case UnaryOp::Log: O = X.log(); break;
      case UnaryOp::Log1p: O = X.log1p(); break;
      case UnaryOp::Expm1: O = X.expm1(); break;
      case UnaryOp::Sqrt: O = X.sqrt(); break;
      case UnaryOp::Rsqrt: O = X.rsqrt(); break;
      case UnaryOp::Sin: O = X.sin(); break;
      case UnaryOp::Cos: O = X.cos(); break;
      case UnaryOp::Tanh: O = X.tanh(); break;
      case UnaryOp::Sigmoid: O = X.logistic(); break;
      case UnaryOp::Erf: O = X.erf(); break;
      case UnaryOp::GeluErf: O = T(0.5) * X * (T(1) + (X * T(0.7071067811865476)).erf()); break;
      case UnaryOp::GeluErfGrad:
        O = T(0.5) * (T(1) + (X * T(0.7071067811865476)).erf()) + X * T(0.3989422804014327) * (T(-0.5) * X.square()).exp();
        break;
      default: break;
    }
  });
}

template <class T>
void unary_typed(UnaryOp op, const Tensor& x, const Tensor& out, const UnaryArgs& args) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    if (has_eigen_unary(op) && x.is_contiguous() && out.is_contiguous()) {
      eigen_unary(op, static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), x.numel());
      return;
    }
  }
  switch (op) {
#define EMBER_UNARY_CASE(name) \
  case UnaryOp::name: unary_loop<UnaryOp::name, T>(x, out, args); return;
    EMBER_UNARY_CASE(Neg) EMBER_UNARY_CASE(Exp) EMBER_UNARY_CASE(Log) EMBER_UNARY_CASE(Log1p)
    EMBER_UNARY_CASE(Expm1) EMBER_UNARY_CASE(Sqrt) EMBER_UNARY_CASE(Rsqrt) EMBER_UNARY_CASE(Abs)
    EMBER_UNARY_CASE(Sign) EMBER_UNARY_CASE(Sin) EMBER_UNARY_CASE(Cos) EMBER_UNARY_CASE(Tanh)
    EMBER_UNARY_CASE(Sigmoid) EMBER_UNARY_CASE(Relu) EMBER_UNARY_CASE(GeluErf) EMBER_UNARY_CASE(GeluTanh)
    EMBER_UNARY_CASE(Silu) EMBER_UNARY_CASE(Softplus) EMBER_UNARY_CASE(Elu) EMBER_UNARY_CASE(PowScalar)
    EMBER_UNARY_CASE(Clamp) EMBER_UNARY_CASE(Reciprocal) EMBER_UNARY_CASE(Square) EMBER_UNARY_CASE(Erf) EMBER_UNARY_CASE(GeluErfGrad)
    EMBER_UNARY_CASE(Not)
    EMBER_UNARY_CASE(IsFinite)
#undef EMBER_UNARY_CASE
  }
}

template <class C>
C apply_binary(BinaryOp op, C a, C b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Pow: return static_cast<C>(std::pow(a, b));
    case BinaryOp::Maximum: return (a > b || a != a) ? a : b;
    case BinaryOp::Minimum: return (a < b || a != a) ? a : b;
    case BinaryOp::Eq: return a == b;
    case BinaryOp::Ne: return a != b;
    case BinaryOp::Lt: return a < b;
    case BinaryOp::Le: return a <= b;
    case BinaryOp::Gt: return a > b;
    case BinaryOp::Ge: return a >= b;
    case BinaryOp::And: return (a != C(0)) && (b != C(0));
    case BinaryOp::Or: return (a != C(0)) || (b != C(0));
  }
  return a;
}

template <BinaryOp OP, class T>
void binary_loop(const Tensor& a, const Tensor& b, const Tensor& out) {
  using C = compute_t<T>;
  if constexpr (OP >= BinaryOp::Eq) {
    map2<bool, T>(a, b, out, [](T x, T y) { return apply_binary<C>(OP, load<C>(x), load<C>(y)) != C(0); });
  } else {
    map2<T, T>(a, b, out, [](T x, T y) { return store<T>(apply_binary<C>(OP, load<C>(x), load<C>(y))); });
  }
}

template <class T>
void binary_typed(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  switch (op) {
#define EMBER_BINARY_CASE(name) \
  case BinaryOp::name: binary_loop<BinaryOp::name, T>(a, b, out); return;
    EMBER_BINARY_CASE(Add) EMBER_BINARY_CASE(Sub) EMBER_BINARY_CASE(Mul) EMBER_BINARY_CASE(Div)
    EMBER_BINARY_CASE(Pow) EMBER_BINARY_CASE(Maximum) EMBER_BINARY_CASE(Minimum) EMBER_BINARY_CASE(Eq)
    EMBER_BINARY_CASE(Ne) EMBER_BINARY_CASE(Lt) EMBER_BINARY_CASE(Le) EMBER_BINARY_CASE(Gt)
    EMBER_BINARY_CASE(Ge) EMBER_BINARY_CASE(And) EMBER_BINARY_CASE(Or)
#undef EMBER_BINARY_CASE
  }
}

}  // namespace

bool is_comparison(BinaryOp op) { return op >= BinaryOp::Eq; }

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  cpu::dispatch(src.dtype(), [&](auto s) {
    using S = decltype(s);
    cpu::dispatch(dst.dtype(), [&](auto d) {
      using D = decltype(d);
      if constexpr (std::is_same_v<S, D>)
        map1<D, S>(src, dst, [](S v) { return v; });
      else if constexpr (std::is_same_v<D, bool>)
        map1<D, S>(src, dst, [](S v) { return load<double>(v) != 0.0; });
      else
        map1<D, S>(src, dst, [](S v) { return store<D>(load<compute_t<D>>(load<double>(v))); });
    });
  });
}

void CpuBackend::fill(const Tensor& dst, double value) {
  cpu::dispatch(dst.dtype(), [&](auto t) {
    using T = decltype(t);
    const T v = store<T>(static_cast<compute_t<T>>(value));
    map1<T, T>(dst, dst, [v](T) { return v; });
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, UnaryArgs args) {
  cpu::dispatch(x.dtype(), [&](auto t) { unary_typed<decltype(t)>(op, x, out, args); });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  cpu::dispatch(a.dtype(), [&](auto t) { binary_typed<decltype(t)>(op, a, b, out); });
}

void CpuBackend::where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  cpu::dispatch(out.dtype(), [&](auto t) {
    using T = decltype(t);
    const bool* pc = static_cast<const bool*>(cond.raw_data());
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    cpu::for_each_row<4>(out.shape(), {&cond.strides(), &a.strides(), &b.strides(), &out.strides()},
                         [&](std::array<std::int64_t, 4> off, std::int64_t n, std::array<std::int64_t, 4> s) {
                           for (std::int64_t i = 0; i < n; ++i)
                             po[off[3] + i * s[3]] =
                                 pc[off[0] + i * s[0]] ? pa[off[1] + i * s[1]] : pb[off[2] + i * s[2]];
                         });
  });
}

}  // namespace ember
