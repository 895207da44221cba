/// \file
/// \brief SGD's update, as torch.optim.SGD: d = g + λθ; b ← d (first step) or μb + (1 − τ)d;
/// d ← d + μb (Nesterov) or b; θ ← θ − ηd. One fused loop per parameter.
#include <cmath>

#include <fmt/format.h>

#include "train/optim.h"

namespace ember::optim {

namespace {

/// Below this many elements an update runs on one thread.
constexpr std::int64_t kParallelGrain = 32768;

/// The scalars of one parameter's SGD update.
struct SgdCoeffs {
  double lr, weight_decay, momentum, dampening;
  bool nesterov;
  bool first;  ///< the momentum buffer starts as d itself
};

/// One fused pass over n elements: p, g and (with momentum) buf.
template <class T>
void sgd_update(T* p, const T* g, T* buf, std::int64_t n, const SgdCoeffs& c) {
  const T lr = static_cast<T>(c.lr), wd = static_cast<T>(c.weight_decay), mu = static_cast<T>(c.momentum);
  const T keep = static_cast<T>(1.0 - c.dampening);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (std::int64_t i = 0; i < n; ++i) {
    T d = g[i];
    if (c.weight_decay != 0.0) d += wd * p[i];
    if (buf) {
      const T b = c.first ? d : buf[i] * mu + keep * d;
      buf[i] = b;
      d = c.nesterov ? d + mu * b : b;
    }
    p[i] += -lr * d;
  }
}

}  // namespace

SGD::SGD(std::vector<ParamGroup> groups, double momentum, double dampening, bool nesterov)
    : Optimizer(std::move(groups), "SGD"), momentum_(momentum), dampening_(dampening), nesterov_(nesterov) {
  EMBER_CHECK(std::isfinite(momentum) && momentum >= 0.0,
              fmt::format("SGD: momentum must be finite and >= 0, got {}", momentum));
  EMBER_CHECK(dampening >= 0.0 && dampening <= 1.0, fmt::format("SGD: dampening must be in [0, 1], got {}", dampening));
  EMBER_CHECK(!nesterov || (momentum > 0.0 && dampening == 0.0),
              fmt::format("SGD: nesterov momentum requires momentum > 0 and dampening = 0, got momentum {} and "
                          "dampening {}",
                          momentum, dampening));
  if (momentum != 0.0) add_buffers({"momentum_buffer"});
}

void SGD::step() {
  for_each_update([this](const ParamGroup& group, ParamState& s, const Tensor& grad) {
    const SgdCoeffs c{group.lr, group.weight_decay, momentum_, dampening_, nesterov_, s.step == 1};
    const std::int64_t n = s.param.numel();
    if (s.param.dtype() == DType::Float64)
      sgd_update(s.param.data_ptr<double>(), grad.data_ptr<double>(),
                 s.buffers.empty() ? nullptr : s.buffers[0].data_ptr<double>(), n, c);
    else
      sgd_update(s.param.data_ptr<float>(), grad.data_ptr<float>(),
                 s.buffers.empty() ? nullptr : s.buffers[0].data_ptr<float>(), n, c);
  });
}

}  // namespace ember::optim
