/// \file
/// \brief The Optimizer base (groups, per-parameter state, state dicts), decay_groups and
/// clip_grad_norm. The update rules live in sgd.cpp and adam.cpp.
#include "train/optim.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "autograd/node.h"
#include "core/creation.h"
#include "core/ops.h"

namespace ember::optim {

namespace {

/// Throws unless p can be updated in place by the fused loops.
void check_param(const std::string& op, const Tensor& p, std::size_t group, std::size_t index) {
  const auto where = [&] { return fmt::format("{}: parameter {} of group {}", op, index, group); };
  EMBER_CHECK(p.defined(), where() + " is undefined");
  EMBER_CHECK(p.dtype() == DType::Float32 || p.dtype() == DType::Float64,
              fmt::format("{} has dtype {}; expected float32 or float64", where(), dtype_name(p.dtype())));
  EMBER_CHECK(p.device().is_cpu(),
              fmt::format("{} is on {}; {} is not implemented on CUDA", where(), p.device().str(), op));
  EMBER_CHECK(p.is_contiguous(),
              fmt::format("{} (shape {}) is not contiguous; optimizers update contiguous tensors in place", where(),
                          shape_str(p.shape())));
}

/// Throws unless a hyperparameter is finite and >= 0.
void check_non_negative(const std::string& op, const char* what, double v) {
  EMBER_CHECK(std::isfinite(v) && v >= 0.0, fmt::format("{}: {} must be finite and >= 0, got {}", op, what, v));
}

/// Name, shape and dtype of one state entry.
struct EntrySpec {
  std::string name;
  Shape shape;
  DType dtype;
};

}  // namespace

Optimizer::Optimizer(std::vector<ParamGroup> groups, std::string name)
    : name_(std::move(name)), groups_(std::move(groups)) {
  std::set<const TensorImpl*> seen;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i) {
      const Tensor& p = groups_[g].params[i];
      check_param(name_, p, g, i);
      EMBER_CHECK(seen.insert(p.impl().get()).second,
                  fmt::format("{}: parameter {} of group {} appears more than once", name_, i, g));
      state_.push_back(ParamState{p, 0, {}});
    }
  }
  check_groups();
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (auto& s : state_) s.param.set_grad(Tensor());
}

std::vector<ParamGroup>& Optimizer::param_groups() { return groups_; }

void Optimizer::set_lr(double lr) {
  check_non_negative(name_ + ".set_lr", "lr", lr);
  for (auto& g : groups_) g.lr = std::min(lr, g.max_lr);
}

std::int64_t Optimizer::steps() const { return steps_; }

void Optimizer::add_buffers(const std::vector<std::string>& names) {
  buffer_names_.insert(buffer_names_.end(), names.begin(), names.end());
  for (auto& s : state_)
    for (std::size_t k = 0; k < names.size(); ++k) s.buffers.push_back(zeros_like(s.param));
}

void Optimizer::check_groups() const {
  std::size_t count = 0;
  for (const auto& group : groups_) count += group.params.size();
  EMBER_CHECK(count == state_.size(), fmt::format("{}: the groups hold {} parameters, the optimizer was built with {}",
                                                  name_, count, state_.size()));
  std::size_t flat = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (const auto& [what, v] : {std::pair{"lr", groups_[g].lr}, std::pair{"weight_decay", groups_[g].weight_decay}})
      EMBER_CHECK(std::isfinite(v) && v >= 0.0,
                  fmt::format("{}: {} of group {} must be finite and >= 0, got {}", name_, what, g, v));
    EMBER_CHECK(groups_[g].max_lr > 0.0,
                fmt::format("{}: max_lr of group {} must be > 0, got {}", name_, g, groups_[g].max_lr));
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i, ++flat)
      EMBER_CHECK(groups_[g].params[i].is_same(state_[flat].param),
                  fmt::format("{}: parameter {} of group {} is not the tensor the optimizer was built with; "
                              "parameter lists are fixed at construction",
                              name_, i, g));
  }
}

void Optimizer::for_each_update(const std::function<void(const ParamGroup&, ParamState&, const Tensor&)>& update) {
  check_groups();
  NoGradGuard no_grad;
  std::size_t flat = 0;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    for (std::size_t i = 0; i < groups_[g].params.size(); ++i, ++flat) {
      ParamState& s = state_[flat];
      const Tensor grad = s.param.grad();
      if (!grad.defined()) continue;
      check_param(name_, s.param, g, i);
      ++s.step;
      update(groups_[g], s, raw::contiguous(raw::to_dtype(raw::to_device(grad, s.param.device()), s.param.dtype())));
      s.param.storage()->bump_version();
    }
  }
  ++steps_;
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out;
  out.emplace_back("step", scalar_tensor(static_cast<double>(steps_), DType::Int64));
  for (std::size_t i = 0; i < state_.size(); ++i) {
    out.emplace_back(fmt::format("state.{}.step", i), scalar_tensor(static_cast<double>(state_[i].step), DType::Int64));
    for (std::size_t k = 0; k < buffer_names_.size(); ++k)
      out.emplace_back(fmt::format("state.{}.{}", i, buffer_names_[k]), raw::clone(state_[i].buffers[k]));
  }
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  std::map<std::string, Tensor> given;
  std::vector<std::string> problems;
  for (const auto& [key, t] : state) {
    if (!given.emplace(key, t).second) problems.push_back(fmt::format("'{}' appears twice", key));
  }
  // What this optimizer's own state_dict() holds: every entry must be there with this shape and dtype.
  std::vector<EntrySpec> expected{{"step", {}, DType::Int64}};
  for (std::size_t i = 0; i < state_.size(); ++i) {
    expected.push_back({fmt::format("state.{}.step", i), {}, DType::Int64});
    for (const auto& b : buffer_names_)
      expected.push_back({fmt::format("state.{}.{}", i, b), state_[i].param.shape(), state_[i].param.dtype()});
  }
  for (const auto& e : expected) {
    auto it = given.find(e.name);
    if (it == given.end()) {
      problems.push_back(fmt::format("missing '{}'", e.name));
      continue;
    }
    const Tensor& t = it->second;
    if (!t.defined())
      problems.push_back(fmt::format("'{}' is undefined", e.name));
    else if (t.shape() != e.shape || t.dtype() != e.dtype)
      problems.push_back(fmt::format("'{}' has shape {} and dtype {}, expected shape {} and dtype {}", e.name,
                                     shape_str(t.shape()), dtype_name(t.dtype()), shape_str(e.shape),
                                     dtype_name(e.dtype)));
    else if (e.dtype == DType::Int64 && t.item() < 0)
      problems.push_back(fmt::format("'{}' is negative ({})", e.name, t.item()));
    given.erase(it);
  }
  for (const auto& [key, t] : given) problems.push_back(fmt::format("unexpected '{}'", key));
  if (!problems.empty()) {
    std::string list = problems[0];
    for (std::size_t k = 1; k < problems.size(); ++k) list += "; " + problems[k];
    throw Error(fmt::format("{}.load_state_dict: {}", name_, list));
  }

  std::map<std::string, Tensor> by_name(state.begin(), state.end());
  steps_ = static_cast<std::int64_t>(by_name.at("step").item());
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < state_.size(); ++i) {
    state_[i].step = static_cast<std::int64_t>(by_name.at(fmt::format("state.{}.step", i)).item());
    for (std::size_t k = 0; k < buffer_names_.size(); ++k)
      raw::copy_(state_[i].buffers[k], by_name.at(fmt::format("state.{}.{}", i, buffer_names_[k])));
  }
}

const std::set<std::string>& ssm_dynamics_names() {
  static const std::set<std::string> names = {"log_dt", "log_A_real", "A_imag", "P_re", "P_im"};
  return names;
}

std::vector<ParamGroup> decay_groups(const NamedTensors& named_params, double lr, double weight_decay,
                                     double ssm_lr) {
  static const std::set<std::string> rates = {"A_log", "nu_log", "theta_log", "gamma_log"};
  std::vector<ParamGroup> groups{{{}, lr, weight_decay}, {{}, lr, 0.0}, {{}, std::min(lr, ssm_lr), 0.0, ssm_lr}};
  for (const auto& [name, p] : named_params) {
    EMBER_CHECK(p.defined(), fmt::format("decay_groups: parameter '{}' is undefined", name));
    const std::string last = name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
    const bool dynamics = ssm_dynamics_names().count(last) > 0;
    const bool decay = p.dim() >= 2 && !dynamics && rates.count(last) == 0;
    groups[dynamics ? 2 : decay ? 0 : 1].params.push_back(p);
  }
  return groups;
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  EMBER_CHECK(max_norm >= 0.0, fmt::format("clip_grad_norm: max_norm must be >= 0, got {}", max_norm));
  double sq = 0.0;
  for (const auto& p : params) {
    const Tensor g = p.defined() ? p.grad() : Tensor();
    if (!g.defined()) continue;
    const Tensor g64 = raw::to_dtype(g, DType::Float64);
    sq += raw::sum(raw::mul(g64, g64)).item();
  }
  const double norm = std::sqrt(sq);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double coef = max_norm / (norm + 1e-6);
  NoGradGuard no_grad;
  for (const auto& p : params) {
    Tensor g = p.defined() ? p.grad() : Tensor();
    if (g.defined()) g.mul_(coef);
  }
  return norm;
}

}  // namespace ember::optim
