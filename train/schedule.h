/// \file
/// \brief Learning-rate schedules: a constant rate, and linear warmup followed by cosine decay
/// (Loshchilov & Hutter 2017, "SGDR"; the convention of nanoGPT and llm.c):
/// `lr(s) = max_lr (s + 1) / W` for s < W, then
/// `lr(s) = min_lr + ½ (max_lr − min_lr)(1 + cos(π (s − W) / (S − W)))` for W <= s <= S, and min_lr after S.
#pragma once

#include <cstdint>

namespace ember::optim {

/// A learning rate for each step (0-based: step s is the (s + 1)-th call of Optimizer::step()).
class Schedule {
 public:
  virtual ~Schedule();
  /// The learning rate at step s >= 0; throws ember::Error for s < 0.
  virtual double lr(std::int64_t step) const = 0;
};

/// The same rate at every step.
class ConstantSchedule : public Schedule {
 public:
  /// lr >= 0 (finite).
  explicit ConstantSchedule(double lr);
  double lr(std::int64_t step) const override;

 private:
  double lr_;
};

/// Linear warmup to max_lr, then cosine decay to min_lr, then min_lr.
///
/// With W = warmup_steps and S = total_steps, at step s:
/// - s < W: `max_lr (s + 1) / W` (the first step already moves; step W − 1 reaches max_lr);
/// - W <= s <= S: `min_lr + ½ (max_lr − min_lr)(1 + cos(π (s − W) / (S − W)))`, so lr(W) = max_lr, the
///   midpoint s = (W + S) / 2 gives (max_lr + min_lr) / 2, and lr(S) = min_lr;
/// - s > S: min_lr.
/// When S == W there is no decay phase: lr(s) = min_lr from s = W on.
class WarmupCosineSchedule : public Schedule {
 public:
  /// Needs 0 <= min_lr <= max_lr (finite) and 0 <= warmup_steps <= total_steps, total_steps > 0.
  WarmupCosineSchedule(double max_lr, std::int64_t warmup_steps, std::int64_t total_steps, double min_lr = 0.0);
  double lr(std::int64_t step) const override;

 private:
  double max_lr_, min_lr_;
  std::int64_t warmup_, total_;
};

}  // namespace ember::optim
