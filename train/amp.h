/// \file
/// \brief Mixed-precision training (Micikevicius et al. 2018, technique notes §8): amp::GradScaler, dynamic loss
/// scaling with PyTorch's defaults and state machine, and amp::MasterWeights, Float32 master copies of a model
/// stored in Float16 or BFloat16. The autocast regions themselves are in autograd/autocast.h.
///
/// Loss scaling: Float16 has 5 exponent bits, so gradients below its smallest subnormal 2⁻²⁴ ≈ 5.96e-8 flush to
/// zero. Backpropagating S·loss multiplies every gradient by S and lifts them into range; unscaling by 1/S in
/// Float32 afterwards gives the true gradient back. With scale S, after each step:
/// - an Inf or NaN in any gradient skips the update and sets S ← S·backoff (0.5), tracker ← 0;
/// - otherwise tracker += 1, and after growth_interval (2000) clean steps in a row S ← S·growth (2) when that
///   stays finite, tracker ← 0.
///
/// The usual step:
/// \code
/// scaler.scale(loss).backward();
/// scaler.unscale_(optimizer);                    // true gradients from here on
/// optim::clip_grad_norm(params, 1.0);            // so clipping sees them
/// scaler.step(optimizer);                        // skipped when a gradient overflowed
/// scaler.update();
/// \endcode
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "autograd/autocast.h"
#include "train/optim.h"

namespace ember::amp {

/// GradScaler's hyperparameters, with torch.amp.GradScaler's defaults.
struct GradScalerConfig {
  double init_scale = 65536.0;          ///< S at the start (2¹⁶)
  double growth_factor = 2.0;           ///< S ← S·growth_factor after growth_interval clean steps (> 1)
  double backoff_factor = 0.5;          ///< S ← S·backoff_factor after an overflow (in (0, 1))
  std::int64_t growth_interval = 2000;  ///< clean steps in a row before growing (> 0)
  bool enabled = true;                  ///< false: every call passes through (scale 1, always step)
};

/// Dynamic loss scaling: scale the loss, unscale and check the gradients, skip steps that overflowed, and adapt
/// the scale. The scale is kept in Float32, as PyTorch keeps it.
class GradScaler {
 public:
  /// Checks the config (throws ember::Error naming the bad field).
  explicit GradScaler(GradScalerConfig config = {});

  /// loss · S (the loss itself when disabled).
  Tensor scale(const Tensor& loss) const;
  /// Multiplies every gradient of the optimizer's parameters by 1/S (computed in Float32) and records whether
  /// any gradient holds Inf or NaN. At most once per optimizer between update() calls (ember::Error otherwise);
  /// clip gradients after it.
  void unscale_(optim::Optimizer& optimizer);
  /// Unscales first if unscale_ was not called, then runs optimizer.step() unless a gradient overflowed.
  /// Returns whether the step ran. Once per optimizer between update() calls.
  bool step(optim::Optimizer& optimizer);
  /// Adapts S from this step's overflow checks (needs at least one unscale_ or step since the last update) and
  /// starts a new step.
  void update();

  /// The current scale S.
  double get_scale() const;
  /// Clean steps in a row since the scale last changed.
  std::int64_t growth_tracker() const { return growth_tracker_; }
  /// Updates skipped because a gradient overflowed, since construction (not saved).
  std::int64_t skipped_steps() const { return skipped_; }
  /// Whether the scaler is on.
  bool enabled() const { return config_.enabled; }

  /// "scale" (Float32 scalar) and "growth_tracker" (Int64 scalar).
  optim::NamedTensors state_dict() const;
  /// Restores a state_dict(); throws ember::Error naming a missing or malformed entry.
  void load_state_dict(const optim::NamedTensors& state);

 private:
  /// Where one optimizer stands in the current step.
  struct Stage {
    bool unscaled = false, stepped = false, found_inf = false;
  };
  GradScalerConfig config_;
  float scale_;
  std::int64_t growth_tracker_ = 0, skipped_ = 0;
  std::map<const optim::Optimizer*, Stage> stages_;
};

/// Float32 master copies of a model's (Float16, BFloat16 or Float32) parameters: the optimizer updates the
/// masters, and the model gets them rounded. An update smaller than half a Float16 ulp (2⁻¹¹ ≈ 4.9e-4 at 1.0)
/// would vanish if added to the Float16 weight directly; added to the Float32 master it accumulates until the
/// rounded weight moves.
class MasterWeights {
 public:
  /// Copies each parameter to a new Float32 leaf that requires grad, under the same name.
  explicit MasterWeights(optim::NamedTensors model_params);
  /// The masters, named as the model's parameters: build the optimizer on these.
  const optim::NamedTensors& master() const { return master_; }
  /// The masters as a list.
  std::vector<Tensor> master_tensors() const;
  /// Sets each master's gradient to its model parameter's gradient in Float32 (undefined where the model's is).
  void copy_grads_to_master() const;
  /// Rounds each master into its model parameter in place (bumping its version).
  void copy_master_to_model() const;

 private:
  optim::NamedTensors model_, master_;
};

}  // namespace ember::amp
