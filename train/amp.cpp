/// \file
/// \brief GradScaler's state machine (torch.amp.GradScaler and ATen's _amp_update_scale) and MasterWeights.
#include "train/amp.h"

#include <cmath>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "core/ops.h"

namespace ember::amp {

namespace {

/// Every gradient of the optimizer's parameters (skipping those without one).
std::vector<Tensor> gradients(optim::Optimizer& optimizer) {
  std::vector<Tensor> grads;
  for (const auto& group : optimizer.param_groups())
    for (const Tensor& p : group.params)
      if (p.grad().defined()) grads.push_back(p.grad());
  return grads;
}

bool all_finite(const Tensor& g) {
  return g.numel() == 0 || raw::reduce(ReduceOp::Min, raw::unary(UnaryOp::IsFinite, g), {}, false).item() != 0.0;
}

const Tensor& entry(const optim::NamedTensors& state, const std::string& name, DType dtype) {
  for (const auto& [n, t] : state)
    if (n == name) {
      EMBER_CHECK(t.dtype() == dtype && t.numel() == 1,
                  fmt::format("GradScaler::load_state_dict: '{}' must be one {}, got {} {}", name, dtype_name(dtype),
                              dtype_name(t.dtype()), shape_str(t.shape())));
      return t;
    }
  throw Error("GradScaler::load_state_dict: no '" + name + "' in the state");
}

}  // namespace

GradScaler::GradScaler(GradScalerConfig config) : config_(config), scale_(static_cast<float>(config.init_scale)) {
  EMBER_CHECK(std::isfinite(scale_) && scale_ > 0,
              fmt::format("GradScaler: init_scale must be positive and finite, got {}", config.init_scale));
  EMBER_CHECK(config.growth_factor > 1.0,
              fmt::format("GradScaler: growth_factor must be > 1, got {}", config.growth_factor));
  EMBER_CHECK(config.backoff_factor > 0.0 && config.backoff_factor < 1.0,
              fmt::format("GradScaler: backoff_factor must be in (0, 1), got {}", config.backoff_factor));
  EMBER_CHECK(config.growth_interval > 0,
              fmt::format("GradScaler: growth_interval must be > 0, got {}", config.growth_interval));
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!config_.enabled) return loss;
  return loss * scalar_tensor(scale_, DType::Float32, loss.device());
}

void GradScaler::unscale_(optim::Optimizer& optimizer) {
  if (!config_.enabled) return;
  Stage& s = stages_[&optimizer];
  EMBER_CHECK(!s.unscaled, "GradScaler::unscale_: already called on this optimizer since the last update()");
  EMBER_CHECK(!s.stepped, "GradScaler::unscale_: called after step(); call update() first");
  NoGradGuard no_grad;
  const float inv_scale = 1.0f / scale_;  // in Float32, as PyTorch computes it
  for (Tensor g : gradients(optimizer)) {
    s.found_inf = s.found_inf || !all_finite(g);
    g.mul_(scalar_tensor(inv_scale, g.dtype(), g.device()));
  }
  s.unscaled = true;
}

bool GradScaler::step(optim::Optimizer& optimizer) {
  if (!config_.enabled) {
    optimizer.step();
    return true;
  }
  EMBER_CHECK(!stages_[&optimizer].stepped, "GradScaler::step: already called since the last update()");
  if (!stages_[&optimizer].unscaled) unscale_(optimizer);
  Stage& s = stages_[&optimizer];
  s.stepped = true;
  if (s.found_inf) {
    ++skipped_;
    return false;
  }
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!config_.enabled) return;
  EMBER_CHECK(!stages_.empty(), "GradScaler::update: no unscale_() or step() since the last update()");
  bool found_inf = false;
  for (const auto& [opt, s] : stages_) found_inf = found_inf || s.found_inf;
  if (found_inf) {
    scale_ *= static_cast<float>(config_.backoff_factor);
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == config_.growth_interval) {
    const float grown = scale_ * static_cast<float>(config_.growth_factor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  }
  stages_.clear();
}

double GradScaler::get_scale() const { return config_.enabled ? scale_ : 1.0; }

optim::NamedTensors GradScaler::state_dict() const {
  return {{"scale", scalar_tensor(scale_, DType::Float32, Device::cpu())},
          {"growth_tracker", from_vector(std::vector<std::int64_t>{growth_tracker_}, {})}};
}

void GradScaler::load_state_dict(const optim::NamedTensors& state) {
  const float scale = static_cast<float>(entry(state, "scale", DType::Float32).item());
  const auto tracker = entry(state, "growth_tracker", DType::Int64).to_vector<std::int64_t>()[0];
  EMBER_CHECK(std::isfinite(scale) && scale > 0 && tracker >= 0,
              fmt::format("GradScaler::load_state_dict: scale {} and growth_tracker {} are out of range", scale,
                          tracker));
  scale_ = scale;
  growth_tracker_ = tracker;
  stages_.clear();
}

MasterWeights::MasterWeights(optim::NamedTensors model_params) : model_(std::move(model_params)) {
  for (const auto& [name, p] : model_) {
    EMBER_CHECK(p.defined() && is_floating(p.dtype()),
                "MasterWeights: parameter '" + name + "' must be a defined floating-point tensor");
    Tensor m = raw::contiguous(raw::to_dtype(p.detach(), DType::Float32));
    if (m.is_same(p) || m.shares_storage(p)) m = raw::clone(m);
    master_.emplace_back(name, m.requires_grad_());
  }
}

std::vector<Tensor> MasterWeights::master_tensors() const {
  std::vector<Tensor> out;
  for (const auto& [name, m] : master_) out.push_back(m);
  return out;
}

void MasterWeights::copy_grads_to_master() const {
  for (std::size_t i = 0; i < model_.size(); ++i) {
    const Tensor g = model_[i].second.grad();
    Tensor master = master_[i].second;
    master.set_grad(g.defined() ? raw::contiguous(raw::to_dtype(g, DType::Float32)) : Tensor());
  }
}

void MasterWeights::copy_master_to_model() const {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < model_.size(); ++i) {
    Tensor p = model_[i].second;
    p.copy_(master_[i].second);
  }
}

}  // namespace ember::amp
