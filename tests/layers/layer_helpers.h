/// \file
/// \brief Helpers shared by the layer tests: seeded random tensors, parameter lookup by name, and
/// re-drawing a module's weights at a scale where every path of the layer matters.
#pragma once

#include <string>

#include "helpers.h"
#include "layers/mixer.h"
#include "layers/module.h"

namespace ember::test {

/// N(0, scale²) values of the given shape and dtype from a generator seeded with `seed`.
inline Tensor normal(const Shape& s, std::uint64_t seed, DType dtype = DType::Float64, double scale = 1.0) {
  Generator gen(seed);
  return randn(s, dtype, Device::cpu(), 0.0, scale, &gen);
}

/// Overwrites a parameter with N(mean, scale²) values, in place (its handle stays the same).
inline void fill_normal(const Tensor& p, std::uint64_t seed, double mean = 0.0, double scale = 1.0) {
  NoGradGuard no_grad;
  Generator gen(seed);
  Tensor handle = p;
  handle.copy_(randn(p.shape(), p.dtype(), Device::cpu(), mean, scale, &gen));
}

/// The parameter (or buffer) called `name` in m's state dict; fails the test when absent.
inline Tensor param_of(const nn::Module& m, const std::string& name) {
  for (const auto& [n, t] : m.state_dict())
    if (n == name) return t;
  FAIL("no parameter named " << name);
  return Tensor();
}

/// Re-draws every parameter so that attention is far from uniform and every term is O(1): matrices
/// N(0, 1/cols), norm gains 1 + N(0, 0.3²), other vectors N(0, 0.3²).
inline void randomize(nn::Module& m, std::uint64_t seed) {
  for (const auto& [name, p] : m.named_parameters()) {
    ++seed;
    if (p.dim() == 2) {
      fill_normal(p, seed, 0.0, 1.0 / std::sqrt(static_cast<double>(p.shape()[1])));
    } else {
      const bool gain = name.find("norm") != std::string::npos && name.ends_with("weight");
      fill_normal(p, seed, gain ? 1.0 : 0.0, 0.3);
    }
  }
}

/// A detached copy of t that requires grad (a fresh leaf for gradient tests).
inline Tensor leaf_of(const Tensor& t) {
  Tensor x = t.detach().clone();
  x.requires_grad_();
  return x;
}

/// x: [B, T, D] -> the mixer's step outputs for t = 0..T-1, stacked to [B, T, D] (checking the state's position).
inline Tensor step_all(const nn::SequenceMixer& m, const Tensor& x) {
  const std::int64_t B = x.shape()[0], T = x.shape()[1];
  auto state = m.init_state(B, T);
  std::vector<Tensor> ys;
  for (std::int64_t t = 0; t < T; ++t) {
    CHECK(state->position == t);
    ys.push_back(m.step(select(x, 1, t), *state));
  }
  return stack(ys, 1);
}

}  // namespace ember::test
