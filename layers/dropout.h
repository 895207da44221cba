/// \file
/// \brief nn::Dropout (Srivastava et al. 2014): zero each element with probability p in training and scale the
/// rest by 1/(1 − p), so the expectation is unchanged; the identity in evaluation.
#pragma once

#include "layers/module.h"

namespace ember::nn {

/// Inverted dropout drawing from the default generator (saved in checkpoints, so resumed runs replay it).
class Dropout : public Module {
 public:
  /// Drops with probability p in [0, 1).
  explicit Dropout(double p);
  /// x -> x or x ⊙ mask / (1 − p).
  Tensor forward(const Tensor& x) override;
  double p;  ///< the drop probability

 protected:
  std::string extra_repr() const override;
};

}  // namespace ember::nn
