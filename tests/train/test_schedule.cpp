/// \file
/// \brief Learning-rate schedules at hand-computed steps, their monotonicity, and argument checks.
#include <cmath>

#include "helpers.h"
#include "train/schedule.h"

using namespace ember;
using namespace ember::optim;

TEST_CASE("ConstantSchedule: the same rate at every step") {
  const ConstantSchedule s(3e-4);
  for (std::int64_t step : {0, 1, 10, 1000000}) CHECK(s.lr(step) == 3e-4);
  CHECK_THROWS_EMBER(ConstantSchedule(-1.0), "ConstantSchedule: lr must be finite and >= 0, got -1");
  CHECK_THROWS_EMBER(ConstantSchedule(NAN), "ConstantSchedule: lr must be finite");
  CHECK_THROWS_EMBER(s.lr(-1), "ConstantSchedule: step must be >= 0, got -1");
}

TEST_CASE("WarmupCosineSchedule: values at hand-computed steps") {
  // max 1e-3, min 1e-4, warmup 10, total 110: the cosine spans steps 10..110 (100 steps).
  const WarmupCosineSchedule s(1e-3, 10, 110, 1e-4);
  const std::vector<std::pair<std::int64_t, double>> expect = {
      {0, 1e-4},                   // 1e-3 * 1 / 10
      {4, 5e-4},                   // 1e-3 * 5 / 10
      {9, 1e-3},                   // end of warmup: max
      {10, 1e-3},                  // start of the cosine: max
      {35, 8.681980515339464e-4},  // quarter: 1e-4 + 4.5e-4 (1 + cos(pi/4)) = 1e-4 + 4.5e-4 * 1.70710678...
      {60, 5.5e-4},                // midpoint: (max + min) / 2
      {85, 2.318019484660536e-4},  // three quarters: 1e-4 + 4.5e-4 (1 - cos(pi/4))
      {110, 1e-4},                 // end: min
      {111, 1e-4},                 // past the end
      {100000, 1e-4},
  };
  for (const auto& e : expect) {
    INFO("step " << e.first);  // (no structured binding: clang 14 cannot capture one in INFO's lambda)
    CHECK(s.lr(e.first) == doctest::Approx(e.second).epsilon(1e-12));
  }
}

TEST_CASE("WarmupCosineSchedule: warmup rises, the cosine never rises, min_lr defaults to 0") {
  const WarmupCosineSchedule s(0.5, 7, 50);
  for (std::int64_t t = 0; t + 1 < 7; ++t) CHECK(s.lr(t + 1) > s.lr(t));
  for (std::int64_t t = 7; t < 80; ++t) CHECK(s.lr(t + 1) <= s.lr(t));
  for (std::int64_t t = 7; t < 49; ++t) CHECK(s.lr(t + 1) < s.lr(t));  // strictly inside the cosine
  CHECK(s.lr(50) == doctest::Approx(0.0));
  CHECK(s.lr(0) == doctest::Approx(0.5 / 7));
}

TEST_CASE("WarmupCosineSchedule: edge configurations") {
  SUBCASE("no warmup starts at max_lr") {
    const WarmupCosineSchedule s(2.0, 0, 4, 1.0);
    // 1 + 0.5 (1 + cos(pi s / 4)): s = 0..4 -> 2, 1.853553, 1.5, 1.146447, 1
    CHECK(s.lr(0) == doctest::Approx(2.0));
    CHECK(s.lr(1) == doctest::Approx(1.0 + 0.5 * (1.0 + std::sqrt(0.5))));
    CHECK(s.lr(2) == doctest::Approx(1.5));
    CHECK(s.lr(4) == doctest::Approx(1.0));
  }
  SUBCASE("warmup == total: no decay phase") {
    const WarmupCosineSchedule s(1.0, 4, 4, 0.25);
    CHECK(s.lr(3) == doctest::Approx(1.0));
    CHECK(s.lr(4) == doctest::Approx(0.25));
  }
  SUBCASE("min_lr == max_lr is constant after warmup") {
    const WarmupCosineSchedule s(1.0, 2, 10, 1.0);
    for (std::int64_t t = 1; t < 20; ++t) CHECK(s.lr(t) == doctest::Approx(1.0));
  }
}

TEST_CASE("WarmupCosineSchedule: bad arguments throw") {
  CHECK_THROWS_EMBER(WarmupCosineSchedule(1e-3, 10, 100, 1e-2),
                     "need 0 <= min_lr <= max_lr, got min_lr 0.01 and max_lr 0.001");
  CHECK_THROWS_EMBER(WarmupCosineSchedule(1e-3, 10, 100, -1.0), "need 0 <= min_lr <= max_lr");
  CHECK_THROWS_EMBER(WarmupCosineSchedule(-1e-3, 10, 100), "need 0 <= min_lr <= max_lr");
  CHECK_THROWS_EMBER(WarmupCosineSchedule(INFINITY, 10, 100), "need 0 <= min_lr <= max_lr");
  CHECK_THROWS_EMBER(
      WarmupCosineSchedule(1e-3, 200, 100),
      "need 0 <= warmup_steps <= total_steps and total_steps > 0, got warmup_steps 200 and total_steps 100");
  CHECK_THROWS_EMBER(WarmupCosineSchedule(1e-3, -1, 100), "got warmup_steps -1");
  CHECK_THROWS_EMBER(WarmupCosineSchedule(1e-3, 0, 0), "total_steps > 0");
  CHECK_THROWS_EMBER(WarmupCosineSchedule(1e-3, 1, 10).lr(-3), "WarmupCosineSchedule: step must be >= 0, got -3");
}
