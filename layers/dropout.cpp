/// \file
/// \brief nn::Dropout.
#include "layers/dropout.h"

#include <fmt/format.h>

#include "layers/functional.h"

namespace ember::nn {

Dropout::Dropout(double p_) : Module("Dropout"), p(p_) {
  EMBER_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got " + std::to_string(p));
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={:g}", p); }

}  // namespace ember::nn
