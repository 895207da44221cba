/// \file
/// \brief Activations as modules, so they can sit in a Sequential: ReLU max(x, 0), GELU x·Φ(x) (or its tanh
/// approximation), SiLU x·σ(x), Tanh. They have no parameters; forward is the whole of each.
#pragma once

#include "layers/module.h"

namespace ember::nn {

/// max(x, 0).
class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  /// x: [...] -> [...].
  Tensor forward(const Tensor& x) override;
};

/// x·Φ(x) with Φ the standard normal CDF (exact, through erf), or 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
class GELU : public Module {
 public:
  /// The exact form, or the tanh approximation.
  explicit GELU(bool tanh_approximation = false) : Module("GELU"), tanh_approximation(tanh_approximation) {}
  /// x: [...] -> [...].
  Tensor forward(const Tensor& x) override;
  bool tanh_approximation;  ///< use the tanh form

 protected:
  std::string extra_repr() const override { return tanh_approximation ? "tanh" : ""; }
};

/// x·σ(x) (also called swish).
class SiLU : public Module {
 public:
  SiLU() : Module("SiLU") {}
  /// x: [...] -> [...].
  Tensor forward(const Tensor& x) override;
};

/// tanh x.
class Tanh : public Module {
 public:
  Tanh() : Module("Tanh") {}
  /// x: [...] -> [...].
  Tensor forward(const Tensor& x) override;
};

}  // namespace ember::nn
