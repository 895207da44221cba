/// \file
/// \brief The interleaved 2-D spirals (Lang & Witbrock 1988; the CS231n classifier demo), with noise
/// from ember's seeded generator.
#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "core/creation.h"
#include "core/error.h"
#include "train/data/tasks.h"

namespace ember::data {

TensorDataset spirals(std::int64_t n_per_class, std::int64_t num_classes, double noise, std::uint64_t seed) {
  EMBER_CHECK(n_per_class >= 1, fmt::format("spirals: n_per_class must be at least 1, got {}", n_per_class));
  EMBER_CHECK(num_classes >= 1, fmt::format("spirals: num_classes must be at least 1, got {}", num_classes));
  EMBER_CHECK(noise >= 0 && std::isfinite(noise), fmt::format("spirals: noise must be finite and >= 0, got {}", noise));
  constexpr double kTurns = 1.5;  // turns of each arm from the centre to radius 1
  const std::int64_t n = n_per_class * num_classes;
  std::vector<double> jitter(static_cast<std::size_t>(2 * n), 0.0);
  if (noise > 0) {
    Generator gen(seed);
    jitter = randn({n, 2}, DType::Float64, Device::cpu(), 0.0, noise, &gen).to_vector<double>();
  }
  std::vector<double> points(static_cast<std::size_t>(2 * n));
  std::vector<std::int64_t> labels(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < num_classes; ++k) {
    for (std::int64_t i = 0; i < n_per_class; ++i) {
      const std::int64_t row = k * n_per_class + i;
      const double r = (static_cast<double>(i) + 0.5) / static_cast<double>(n_per_class);
      const double angle =
          2 * std::numbers::pi * (static_cast<double>(k) / static_cast<double>(num_classes) + kTurns * r);
      points[2 * row] = r * std::cos(angle) + jitter[2 * row];
      points[2 * row + 1] = r * std::sin(angle) + jitter[2 * row + 1];
      labels[row] = k;
    }
  }
  return TensorDataset(from_vector(points, {n, 2}, DType::Float32), from_vector(labels, {n}));
}

}  // namespace ember::data
