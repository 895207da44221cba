/// \file
/// \brief Helpers shared by the layer tests: seeded random tensors, parameter lookup by name, and
/// re-drawing a module's weights at a scale where every path of the layer matters.
#pragma once

#include <string>

#include "helpers.h"
#include "autograd/gradcheck.h"
#include "layers/mixer.h"
#include "layers/models/language_model.h"
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

/// Logits of every position by stepping through ids [B, T] with the model's decoding state -> [B, T, V].
inline Tensor step_all(const nn::LanguageModel& lm, const Tensor& ids) {
  auto state = lm.init_state(ids.shape()[0]);
  std::vector<Tensor> out;
  for (std::int64_t t = 0; t < ids.shape()[1]; ++t) {
    CHECK(state.position == t);
    out.push_back(lm.step(select(ids, 1, t).contiguous(), state));
  }
  return stack(out, 1);
}

/// Float64 gradcheck of a (Float64) mixer through its input x [B, T, D] and every parameter.
inline void check_mixer_gradcheck(nn::SequenceMixer& m, const Tensor& x) {
  std::vector<Tensor> inputs = {leaf_of(x)};
  for (const auto& [name, p] : m.named_parameters()) inputs.push_back(p);
  const GradcheckResult r = gradcheck([&](const auto& in) { return m(in[0]); }, inputs, 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
}

/// The roundoff allowance of check_causal for mixers that convolve by FFT: the transform spreads rounding errors of
/// size ε·|u| over every output, so adding 1 to input t moves earlier outputs by ~1e-16 in Float64, not exactly 0.
inline constexpr double kFftRoundoff = 1e-13;

/// Causal leakage: adding 1 to input t of x [B, T, D] (for each t) leaves every output before t unchanged:
/// bit-identical, or within `tolerance` (kFftRoundoff for FFT convolutions). Returns how many of the T
/// perturbations changed output t itself (a mixer may legitimately ignore its own token for some t, e.g. when
/// relu² clips its score, so callers bound this rather than require all T).
inline std::int64_t check_causal(nn::SequenceMixer& m, const Tensor& x, double tolerance = 0.0) {
  const std::int64_t T = x.shape()[1];
  const Tensor y = m(x);
  std::int64_t changed = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    CAPTURE(t);
    Tensor x2 = x.clone();
    {
      Tensor row = narrow(x2, 1, t, 1);
      row.copy_(row + 1.0);
    }
    const Tensor y2 = m(x2);
    if (t > 0) CHECK(max_abs_diff(narrow(y, 1, 0, t), narrow(y2, 1, 0, t)) <= tolerance);
    changed += max_abs_diff(narrow(y, 1, t, 1), narrow(y2, 1, t, 1)) > 1e-9;
  }
  return changed;
}

/// A state that no mixer makes (to check that step rejects a foreign state).
struct ForeignState : nn::MixerState {
  std::unique_ptr<nn::MixerState> clone() const override { return std::make_unique<ForeignState>(*this); }
};

/// Re-draws m (randomize) and makes it Float64, ready for check_causal and check_mixer_gradcheck.
inline void prepare_f64(nn::SequenceMixer& m, std::uint64_t seed) {
  randomize(m, seed);
  m.to(DType::Float64);
}

}  // namespace ember::test
