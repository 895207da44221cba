/// \file
/// \brief The constant and warmup-cosine learning-rate schedules.
#include "train/schedule.h"

#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "core/error.h"

namespace ember::optim {

namespace {

void check_step(const char* op, std::int64_t step) {
  EMBER_CHECK(step >= 0, fmt::format("{}: step must be >= 0, got {}", op, step));
}

}  // namespace

Schedule::~Schedule() = default;

ConstantSchedule::ConstantSchedule(double lr) : lr_(lr) {
  EMBER_CHECK(std::isfinite(lr) && lr >= 0.0, fmt::format("ConstantSchedule: lr must be finite and >= 0, got {}", lr));
}

double ConstantSchedule::lr(std::int64_t step) const {
  check_step("ConstantSchedule", step);
  return lr_;
}

WarmupCosineSchedule::WarmupCosineSchedule(double max_lr, std::int64_t warmup_steps, std::int64_t total_steps,
                                           double min_lr)
    : max_lr_(max_lr), min_lr_(min_lr), warmup_(warmup_steps), total_(total_steps) {
  EMBER_CHECK(
      std::isfinite(max_lr) && std::isfinite(min_lr) && min_lr >= 0.0 && min_lr <= max_lr,
      fmt::format("WarmupCosineSchedule: need 0 <= min_lr <= max_lr, got min_lr {} and max_lr {}", min_lr, max_lr));
  EMBER_CHECK(warmup_steps >= 0 && total_steps > 0 && warmup_steps <= total_steps,
              fmt::format("WarmupCosineSchedule: need 0 <= warmup_steps <= total_steps and total_steps > 0, got "
                          "warmup_steps {} and total_steps {}",
                          warmup_steps, total_steps));
}

double WarmupCosineSchedule::lr(std::int64_t step) const {
  check_step("WarmupCosineSchedule", step);
  if (step < warmup_) return max_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  if (step >= total_) return min_lr_;
  const double progress = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
  return min_lr_ + 0.5 * (max_lr_ - min_lr_) * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace ember::optim
