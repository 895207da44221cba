/// \file
/// \brief Optimizers (SGD with momentum and Nesterov, Adam, AdamW), parameter groups with the weight
/// decay rule, and gradient-norm clipping, computing exactly what torch.optim does.
///
/// With gradient g, learning rate η and weight decay λ, at step t (1-based, counted per parameter):
/// - SGD: `d = g + λθ`; with momentum μ, `b ← d` at t = 1, then `b ← μb + (1 − τ)d` (dampening τ);
///   `d ← d + μb` (Nesterov) or `d ← b`; `θ ← θ − ηd`.
/// - Adam (Kingma & Ba 2015): `g ← g + λθ` (L2 penalty); `m ← β₁m + (1 − β₁)g`; `v ← β₂v + (1 − β₂)g²`;
///   `θ ← θ − η m̂ / (√v̂ + ε)` with `m̂ = m/(1 − β₁ᵗ)`, `v̂ = v/(1 − β₂ᵗ)`.
/// - AdamW (Loshchilov & Hutter 2019, technique notes §14): `θ ← θ(1 − ηλ)` first (decoupled decay),
///   then the Adam update with the undecayed gradient.
///
/// Updates run under NoGradGuard, in place on the parameters' data (one fused loop per parameter over
/// contiguous Float32 or Float64 CPU memory), and bump each parameter's version counter.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

/// Optimizers, learning-rate schedules and gradient clipping.
namespace ember::optim {

/// Parameters that share hyperparameters (torch.optim's param_groups).
struct ParamGroup {
  std::vector<Tensor> params;  ///< the tensors to update (leaves; Float32 or Float64, contiguous, CPU)
  double lr = 1e-3;            ///< learning rate η (>= 0)
  double weight_decay = 0.0;   ///< λ (>= 0): an L2 term for SGD and Adam, decoupled decay for AdamW
  /// The most set_lr() gives this group: lr = min(scheduled lr, max_lr) (SSM dynamics train at ≤ 1e-3).
  double max_lr = std::numeric_limits<double>::infinity();
};

/// Named tensors: what state_dict() gives and load_state_dict() takes (a safetensors file's contents).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// The base of every optimizer: parameter groups, the step count and per-parameter state.
///
/// The state of parameter number i (counting through the groups in order, "flat index") is its own
/// step count and buffers shaped like it (e.g. Adam's exp_avg and exp_avg_sq), created as zeros at
/// construction. The parameter lists are fixed at construction: change lr and weight_decay through
/// param_groups() or set_lr(), but adding or replacing tensors makes step() throw.
class Optimizer {
 public:
  /// Checks the groups: lr and weight_decay >= 0, each parameter a defined contiguous Float32/Float64
  /// CPU tensor that appears only once. `name` (e.g. "Adam") prefixes error messages.
  explicit Optimizer(std::vector<ParamGroup> groups, std::string name = "Optimizer");
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Updates every parameter that has a gradient (those without one are skipped and keep their state).
  virtual void step() = 0;
  /// Clears every parameter's gradient (sets it to undefined, as PyTorch's default set_to_none=True).
  void zero_grad();
  /// The groups, to read or to change lr and weight_decay.
  std::vector<ParamGroup>& param_groups();
  /// Sets the learning rate of every group (>= 0).
  void set_lr(double lr);
  /// How many times step() has run.
  std::int64_t steps() const;

  /// A snapshot (copies) of the state as plain tensors: "step" (Int64 scalar: steps()), and for each
  /// flat parameter index i "state.<i>.step" (Int64 scalar) and "state.<i>.<buffer>" (e.g.
  /// "state.0.exp_avg", "state.0.exp_avg_sq", "state.0.momentum_buffer"), shaped like parameter i.
  /// Hyperparameters are not included: they come from the code that builds the optimizer.
  virtual NamedTensors state_dict() const;
  /// Copies a state_dict() of an optimizer of the same kind over the same parameter shapes into this
  /// one. Throws ember::Error naming every entry that is missing, unexpected, or of the wrong shape or
  /// dtype, and leaves the state unchanged in that case.
  virtual void load_state_dict(const NamedTensors& state);

 protected:
  /// One parameter's state.
  struct ParamState {
    Tensor param;                 ///< the parameter (the same tensor object as in its group)
    std::int64_t step = 0;        ///< how many updates this parameter has had
    std::vector<Tensor> buffers;  ///< one per buffer name, shaped like param, zeros at first
  };

  /// Declares the per-parameter buffers (once, from the subclass constructor): zeros shaped like each parameter.
  void add_buffers(const std::vector<std::string>& names);
  /// Runs update(group, state, grad) for each parameter with a gradient, under NoGradGuard, after
  /// incrementing state.step; grad is contiguous with the parameter's dtype. Then counts the step and
  /// bumps the versions of the updated parameters.
  void for_each_update(const std::function<void(const ParamGroup&, ParamState&, const Tensor&)>& update);
  /// The name used in error messages.
  const std::string& name() const { return name_; }

 private:
  void check_groups() const;
  std::string name_;
  std::vector<ParamGroup> groups_;
  std::vector<ParamState> state_;
  std::vector<std::string> buffer_names_;
  std::int64_t steps_ = 0;
};

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
/// decay (torch.optim.SGD). State: "momentum_buffer" when momentum != 0.
class SGD : public Optimizer {
 public:
  /// momentum >= 0, dampening in [0, 1]; nesterov needs momentum > 0 and dampening == 0.
  explicit SGD(std::vector<ParamGroup> groups, double momentum = 0.0, double dampening = 0.0, bool nesterov = false);
  void step() override;

 private:
  double momentum_, dampening_;
  bool nesterov_;
};

/// Adam with the weight decay added to the gradient as an L2 penalty (torch.optim.Adam).
/// State: "exp_avg" (m) and "exp_avg_sq" (v).
class Adam : public Optimizer {
 public:
  /// beta1, beta2 in [0, 1), eps >= 0.
  explicit Adam(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
  void step() override;

 protected:
  /// The shared constructor: `decoupled` selects AdamW's decay; `name` prefixes errors.
  Adam(std::vector<ParamGroup> groups, double beta1, double beta2, double eps, bool decoupled, std::string name);

 private:
  double beta1_, beta2_, eps_;
  bool decoupled_;
};

/// Adam with decoupled weight decay, θ ← θ(1 − ηλ) before the Adam update (torch.optim.AdamW).
class AdamW : public Adam {
 public:
  /// beta1, beta2 in [0, 1), eps >= 0.
  explicit AdamW(std::vector<ParamGroup> groups, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8);
};

/// The last name components of the SSM dynamics that S4 and S4D train with lr ≤ 1e-3 and no weight decay, as
/// their reference does (technique notes §5): log Δ, the modes Λ and S4's low-rank term P.
const std::set<std::string>& ssm_dynamics_names();

/// Three groups with learning rate `lr`: group 0 holds the parameters that get `weight_decay`, group 1 those
/// that get none, group 2 the SSM dynamics (ssm_dynamics_names()), with no decay and max_lr = `ssm_lr`. The
/// rule: decay the parameters with dim >= 2 (weight matrices, embeddings, convolution kernels), except the
/// recurrences' rates and phases (last name component A_log, nu_log, theta_log, gamma_log: Mamba and LRU
/// exempt them); never decay those with dim < 2 (biases, norm gains, SSM D and dt vectors). All three
/// groups are returned even when empty.
std::vector<ParamGroup> decay_groups(const NamedTensors& named_params, double lr, double weight_decay,
                                     double ssm_lr = 1e-3);

/// Scales the gradients of `params` (those that have one) in place so that their total L2 norm,
/// `‖g‖ = sqrt(Σ_p Σ g²)` computed in double, is at most max_norm (>= 0): when ‖g‖ > max_norm every
/// gradient is multiplied by max_norm / (‖g‖ + 1e-6), as torch.nn.utils.clip_grad_norm_. Returns ‖g‖
/// before clipping. A non-finite norm (NaN or Inf in some gradient) is returned as is and the
/// gradients are left untouched, so the caller can detect it and skip the step.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace ember::optim
