/// \file
/// \brief RWKV-4 (Peng et al. 2023; technique notes §7a): the WKV operator, nn::RWKVTimeMix (the token mixer,
/// registered as "rwkv") and nn::RWKVChannelMix (its feed-forward partner), as BlinkDL/RWKV-LM's
/// `RWKV-v4/src/model.py` builds them.
///
/// Token shift mixes each input with the previous one: x_a = μ_a ⊙ x_t + (1 − μ_a) ⊙ x_{t−1} (x_{−1} = 0).
/// Time mixing: r = W_r x_r, k = W_k x_k, v = W_v x_v, and per channel, with the decay w = exp(time_decay) > 0 and
/// the bonus u = time_first,
///   wkv_t = (Σ_{i<t} e^{−(t−1−i)w + k_i} v_i + e^{u+k_t} v_t) / (Σ_{i<t} e^{−(t−1−i)w + k_i} + e^{u+k_t}),
///   o_t = W_o (σ(r_t) ⊙ wkv_t).
/// Channel mixing: r' = σ(W'_r x_r), k' = relu(W'_k x_k)², output r' ⊙ (W'_v k').
/// Both decode with a fixed-size state: the previous input x_{t−1}, and for time mixing the numerically stable
/// WKV state (a, b, p) of every channel (a = Σ e^{…} v and b = Σ e^{…} scaled by e^{−p}).
#pragma once

#include <array>
#include <memory>

#include "layers/linear.h"
#include "layers/mixer.h"

namespace ember::nn {

/// w, u: [C], k, v: [B, T, C] -> wkv [B, T, C] by the backend's numerically stable WKV kernels (running maximum
/// exponent, as wkv_cuda.cu): O(T) per channel, finite for any k. One autograd node; its backward gives dw, du summed
/// over the batch. Throws ember::Error naming wkv and the shapes on bad input.
Tensor wkv(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v);

/// The same wkv from ember's autograd ops by its definition, the T×T masked parallel form: weights
/// e^{−(t−1−i)w + k_i} for i < t and e^{u+k_t} for i = t, normalised over i. O(B·T²·C) memory, for tests at small T;
/// it overflows (inf/NaN) once u + k or k exceeds the dtype's exp range, which the stable kernel avoids.
Tensor wkv_reference(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v);

/// x: [B, T, D] -> [B, T, D], row t holding x_{t−1} (zeros at t = 0): RWKV's token shift. Differentiable.
Tensor token_shift(const Tensor& x);

/// The decoding state of one RWKVTimeMix layer.
struct RWKVTimeMixState : MixerState {
  Tensor x_prev;  ///< [B, D]: the previous input x_{t−1} (zeros before the first token)
  Tensor a;       ///< [B, D]: Σ_{i<t} e^{−(t−1−i)w + k_i − p} v_i
  Tensor b;       ///< [B, D]: Σ_{i<t} e^{−(t−1−i)w + k_i − p}
  Tensor p;       ///< [B, D]: the running exponent (−1e38 before the first token)
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &RWKVTimeMixState::x_prev, &RWKVTimeMixState::a, &RWKVTimeMixState::b, &RWKVTimeMixState::p); }
};

/// RWKV-4's time mixing: token shift, projections r, k, v, the WKV operator and the output projection, no biases.
class RWKVTimeMix : public SequenceMixer {
 public:
  /// d_model (D > 0) and options "layer" (l, default 0) and "n_layers" (L ≥ 1, default 1, with 0 ≤ l < L) from the
  /// config; throws ember::Error naming RWKVTimeMix otherwise. config.bias is ignored (RWKV has no biases).
  /// Init (RWKV-4's model.py), for channel c of C = D: time_decay_c = −5 + 8·(c/(C−1))^{0.7 + 1.3·l/(L−1)},
  /// time_first_c = ln 0.3 + 0.5·((c+1) mod 3 − 1), μ_k = (c/C)^{1−l/L}, μ_v = μ_k + 0.3·l/(L−1),
  /// μ_r = (c/C)^{0.5(1−l/L)}; W_k, W_r, W_o zero; W_v keeps nn::Linear's default (model.py draws it orthogonal).
  /// Where model.py divides by zero (L = 1, C = 1) the ratio l/(L−1), resp. c/(C−1), is taken as 0.
  explicit RWKVTimeMix(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal: W_o(σ(r) ⊙ wkv(exp(time_decay), time_first, k, v)).
  Tensor forward(const Tensor& x) override;
  /// x_prev = 0, a = b = 0, p = −1e38, each [batch, D]; max_len only has to be > 0 (the state does not grow).
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]: one step of the stable recurrence (O(D) besides the projections). Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// True: LanguageModel keeps this layer's initialisation.
  bool keeps_own_init() const override { return true; }

  const std::int64_t d_model;      ///< D = C, the number of channels
  const std::int64_t layer;        ///< l, this layer's index (init only)
  const std::int64_t n_layers;     ///< L, the number of layers of the model (init only)
  Tensor time_decay;               ///< [D]: ln w, the decay w = exp(time_decay)
  Tensor time_first;               ///< [D]: u, the bonus of the current token
  Tensor time_mix_k;               ///< [D]: μ_k, the token-shift weight of the input to k
  Tensor time_mix_v;               ///< [D]: μ_v, the token-shift weight of the input to v
  Tensor time_mix_r;               ///< [D]: μ_r, the token-shift weight of the input to r
  std::shared_ptr<Linear> r_proj;  ///< W_r, D -> D
  std::shared_ptr<Linear> k_proj;  ///< W_k, D -> D
  std::shared_ptr<Linear> v_proj;  ///< W_v, D -> D
  std::shared_ptr<Linear> o_proj;  ///< W_o, D -> D

 protected:
  /// "d_model=…, layer=l/L".
  std::string extra_repr() const override;

 private:
  /// x, x_prev: [..., D] -> {r, k, v}, each [..., D]: the token-shifted inputs through W_r, W_k, W_v.
  std::array<Tensor, 3> project(const Tensor& x, const Tensor& x_prev) const;
};

/// The decoding state of one RWKVChannelMix layer.
struct RWKVChannelMixState : MixerState {
  Tensor x_prev;  ///< [B, D]: the previous input x_{t−1} (zeros before the first token)
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &RWKVChannelMixState::x_prev); }
};

/// RWKV-4's channel mixing (its feed-forward block): σ(W'_r x_r) ⊙ W'_v relu(W'_k x_k)², no biases. Not registered
/// as a mixer (it mixes channels; only the token shift looks back one step), but decodes like one.
class RWKVChannelMix : public SequenceMixer {
 public:
  /// d_model (D > 0), options "hidden" (default 4D), "layer" and "n_layers" (as RWKVTimeMix) from the config; throws
  /// ember::Error naming RWKVChannelMix otherwise. Init (model.py): μ_k = μ_r = (c/C)^{1−l/L}; W'_v and W'_r zero,
  /// W'_k keeps nn::Linear's default (model.py draws it orthogonal with gain 2).
  explicit RWKVChannelMix(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal: σ(W'_r x_r) ⊙ W'_v relu(W'_k x_k)².
  Tensor forward(const Tensor& x) override;
  /// x_prev = 0, [batch, D]; max_len only has to be > 0.
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D] with the previous input from the state. Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// True: LanguageModel keeps this layer's initialisation.
  bool keeps_own_init() const override { return true; }

  const std::int64_t d_model;      ///< D
  const std::int64_t hidden;       ///< the width of k' (default 4D)
  const std::int64_t layer;        ///< l (init only)
  const std::int64_t n_layers;     ///< L (init only)
  Tensor time_mix_k;               ///< [D]: μ_k, the token-shift weight of the input to k
  Tensor time_mix_r;               ///< [D]: μ_r, the token-shift weight of the input to r
  std::shared_ptr<Linear> k_proj;  ///< W'_k, D -> hidden
  std::shared_ptr<Linear> v_proj;  ///< W'_v, hidden -> D
  std::shared_ptr<Linear> r_proj;  ///< W'_r, D -> D

 protected:
  /// "d_model=…, hidden=…, layer=l/L".
  std::string extra_repr() const override;

 private:
  /// x, x_prev: [..., D] -> σ(W'_r x_r) ⊙ W'_v relu(W'_k x_k)² [..., D].
  Tensor mix(const Tensor& x, const Tensor& x_prev) const;
};

}  // namespace ember::nn
