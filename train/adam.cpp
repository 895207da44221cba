/// \file
/// \brief Adam's and AdamW's update, as torch.optim.Adam and torch.optim.AdamW compute it:
/// θ ← θ(1 − ηλ) (AdamW) or g ← g + λθ (Adam); m ← lerp(m, g, 1 − β₁); v ← β₂v + (1 − β₂)g²;
/// θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε). One fused loop per parameter.
#include <cmath>

#include <fmt/format.h>

#include "train/optim.h"

namespace ember::optim {

namespace {

/// Below this many elements an update runs on one thread.
constexpr std::int64_t kParallelGrain = 32768;

/// The scalars of one parameter's Adam update at its step t.
struct AdamCoeffs {
  double decay;  ///< 1 − ηλ for AdamW, 1 for Adam
  double l2;     ///< λ added to the gradient (Adam), 0 for AdamW
  double beta1, beta2, eps;
  double step_size;  ///< η / (1 − β₁ᵗ)
  double bc2_sqrt;   ///< √(1 − β₂ᵗ)
};

/// PyTorch's lerp: a + w (b − a), evaluated from the nearer end for accuracy.
template <class T>
inline T lerp(T a, T b, T w) {
  return std::abs(w) < T(0.5) ? a + w * (b - a) : b - (b - a) * (T(1) - w);
}

/// One fused pass over n elements of p, g, m and v. (std::sqrt keeps this loop scalar: GCC vectorises it
/// only under -fno-math-errno. The update is close to memory-bound for large parameters anyway.)
template <class T>
void adam_update(T* p, const T* g, T* m, T* v, std::int64_t n, const AdamCoeffs& c) {
  const T decay = static_cast<T>(c.decay), l2 = static_cast<T>(c.l2), w1 = static_cast<T>(1.0 - c.beta1);
  const T b2 = static_cast<T>(c.beta2), w2 = static_cast<T>(1.0 - c.beta2), eps = static_cast<T>(c.eps);
  const T step = static_cast<T>(c.step_size), bc2 = static_cast<T>(c.bc2_sqrt);
  const bool add_l2 = c.l2 != 0.0;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) {
    const T pi = p[i] * decay;
    const T gi = add_l2 ? g[i] + l2 * pi : g[i];
    m[i] = lerp(m[i], gi, w1);
    v[i] = v[i] * b2 + w2 * gi * gi;
    p[i] = pi + -step * m[i] / (std::sqrt(v[i]) / bc2 + eps);
  }
}

}  // namespace

Adam::Adam(std::vector<ParamGroup> groups, double beta1, double beta2, double eps)
    : Adam(std::move(groups), beta1, beta2, eps, false, "Adam") {}

Adam::Adam(std::vector<ParamGroup> groups, double beta1, double beta2, double eps, bool decoupled, std::string name)
    : Optimizer(std::move(groups), name), beta1_(beta1), beta2_(beta2), eps_(eps), decoupled_(decoupled) {
  EMBER_CHECK(beta1 >= 0.0 && beta1 < 1.0, fmt::format("{}: beta1 must be in [0, 1), got {}", name, beta1));
  EMBER_CHECK(beta2 >= 0.0 && beta2 < 1.0, fmt::format("{}: beta2 must be in [0, 1), got {}", name, beta2));
  EMBER_CHECK(std::isfinite(eps) && eps >= 0.0, fmt::format("{}: eps must be finite and >= 0, got {}", name, eps));
  add_buffers({"exp_avg", "exp_avg_sq"});
}

void Adam::step() {
  for_each_update([this](const ParamGroup& group, ParamState& s, const Tensor& grad) {
    const double t = static_cast<double>(s.step);
    const AdamCoeffs c{decoupled_ ? 1.0 - group.lr * group.weight_decay : 1.0,
                       decoupled_ ? 0.0 : group.weight_decay,
                       beta1_,
                       beta2_,
                       eps_,
                       group.lr / (1.0 - std::pow(beta1_, t)),
                       std::sqrt(1.0 - std::pow(beta2_, t))};
    const std::int64_t n = s.param.numel();
    if (s.param.dtype() == DType::Float64)
      adam_update(s.param.data_ptr<double>(), grad.data_ptr<double>(), s.buffers[0].data_ptr<double>(),
                  s.buffers[1].data_ptr<double>(), n, c);
    else
      adam_update(s.param.data_ptr<float>(), grad.data_ptr<float>(), s.buffers[0].data_ptr<float>(),
                  s.buffers[1].data_ptr<float>(), n, c);
  });
}

AdamW::AdamW(std::vector<ParamGroup> groups, double beta1, double beta2, double eps)
    : Adam(std::move(groups), beta1, beta2, eps, true, "AdamW") {}

}  // namespace ember::optim
