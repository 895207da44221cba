/// \file
/// \brief nn::LRU: the Linear Recurrent Unit of Orvieto et al. (ICML 2023, "Resurrecting Recurrent Neural Networks for
/// Long Sequences"; technique notes §7c), as minimal-LRU's lru/model.py builds it.
///
/// A complex diagonal recurrence on N modes driven by the H = D input channels u_k:
///   x_k = diag(λ) x_{k−1} + γ ⊙ (B u_k),   y_k = Re(C x_k) + D ⊙ u_k,   B ∈ C^{N×H}, C ∈ C^{H×N},
/// with the exponential parameterisation λ_j = exp(−exp(ν_log_j) + i·exp(θ_log_j)) (so |λ_j| < 1) and the
/// normalisation γ_j = exp(γ_log_j), trainable, initialised γ_log = log √(1 − |λ_j|²) so that white noise keeps
/// E|x_j|² the same for every |λ_j|. Ring init: U₁, U₂ ~ U[0, 1), ν_log = log(−½ log(U₁(r_max² − r_min²) + r_min²))
/// (|λ|² uniform on [r_min², r_max²]), θ_log = log(max_phase·U₂); B_re, B_im ~ N(0, 1/(2H)); C_re, C_im ~ N(0, 1/N);
/// D ~ N(0, 1). Unrolled, x_k = Σ_{ℓ≤k} γ λ^ℓ ⊙ B u_{k−ℓ}: a causal convolution per mode with the complex kernel
/// γ_j λ_j^ℓ, which `forward` computes by FFT (O(N·T log T)), a complex-by-complex product being four real spectrum
/// products. `step` runs the recurrence on a Complex state [B, N]. The layer then applies GELU (erf form) and the
/// GLU W₁y ⊙ σ(W₂y) (one Linear D -> 2D split in halves); no dropout, the norm and residual are the block's.
#pragma once

#include <memory>

#include "autograd/complex.h"
#include "layers/linear.h"
#include "layers/mixer.h"

namespace ember::nn {

/// The recurrent state of one LRU layer.
struct LRUState : MixerState {
  Complex x;  ///< [B, N], the complex state
  std::unique_ptr<MixerState> clone() const override {
    auto copy = std::make_unique<LRUState>(*this);
    copy->x = {x.re.clone(), x.im.clone()};
    return copy;
  }
};

/// The Linear Recurrent Unit mixer (registry name `lru`).
class LRU : public SequenceMixer {
 public:
  /// d_model (H), bias (of the output Linear) and options "d_state" (N ≥ 1, default D), "r_min" (default 0),
  /// "r_max" (default 1; 0 ≤ r_min < r_max ≤ 1) and "max_phase" (> 0, default 2π) from the config; throws
  /// ember::Error naming LRU otherwise.
  explicit LRU(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal: GLU(GELU(Re(C x_k) + D ⊙ u_k)) with the states x_k by FFT convolution.
  Tensor forward(const Tensor& x) override;
  /// The state x [B, N] as zeros; max_len only has to be > 0 (the state does not grow).
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]: x ← λ ⊙ x + γ ⊙ (B u_t), y = Re(C x) + D ⊙ u_t, then GELU and GLU. Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// True: LanguageModel keeps this layer's initialisation.
  bool keeps_own_init() const override { return true; }

  /// log λ = −exp(ν_log) + i·exp(θ_log), [N]. Differentiable.
  Complex log_lambda() const;
  /// λ = exp(log λ), [N]. Differentiable.
  Complex lambda() const;
  /// u: [B, T, H] -> the states x_k: [B, T, N] (complex), x_k = Σ_{ℓ≤k} γ λ^ℓ ⊙ B u_{k−ℓ}, by FFT convolution.
  Complex states(const Tensor& u) const;
  /// The SSM output before GELU and GLU: x: [..., N] (complex states), u: [..., H] -> Re(C x) + D ⊙ u: [..., H].
  Tensor readout(const Complex& x, const Tensor& u) const;

  const std::int64_t d_model;             ///< H = D, the input and output channels
  const std::int64_t d_state;             ///< N, the complex modes
  Tensor nu_log;                          ///< [N], log ν with |λ| = exp(−ν)
  Tensor theta_log;                       ///< [N], log θ with arg λ = θ
  Tensor gamma_log;                       ///< [N], log γ
  Tensor B_re;                            ///< [N, H], Re B
  Tensor B_im;                            ///< [N, H], Im B
  Tensor C_re;                            ///< [H, N], Re C
  Tensor C_im;                            ///< [H, N], Im C
  Tensor D;                               ///< [H], the skip D ⊙ u
  std::shared_ptr<Linear> output_linear;  ///< D -> 2D, halves W₁ and W₂ of the GLU

 protected:
  /// "d_model=…, d_state=…".
  std::string extra_repr() const override;

 private:
  /// y: [..., D] -> W₁z ⊙ σ(W₂z) with z = GELU(y): [..., D].
  Tensor output_layer(const Tensor& y) const;
};

}  // namespace ember::nn
