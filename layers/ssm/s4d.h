/// \file
/// \brief nn::S4D: the diagonal structured state space mixer of Gu, Gupta, Goel and Ré (NeurIPS 2022; technique
/// notes §5), as the minimal `s4d.py` of state-spaces/s4 builds it.
///
/// Each of the H = D channels is a single-input single-output diagonal SSM with N/2 complex modes λ_n (the
/// conjugate modes are implied, hence the 2·Re), B = 1, C ∈ C^{N/2} and a step Δ. Zero-order hold gives
///   Ā_n = exp(Δλ_n),   B̄_n = (exp(Δλ_n) − 1)/λ_n · B_n,
/// the recurrence x_k = Ā x_{k−1} + B̄ u_k, y_k = 2·Re(C x_k) + D u_k, and its unrolled form, a causal
/// convolution y = K̄ * u + D u with the Vandermonde kernel
///   K̄_ℓ = 2·Re Σ_n C_n B̄_n exp(Δλ_n ℓ),   ℓ = 0..L−1.
/// `forward` computes K̄ (O(H·N·L)) and convolves by FFT; `step` runs the recurrence on a state of H·N/2 complex
/// numbers. Both then apply s4d.py's output layer: z = GELU(y) (erf form), then the position-wise
/// Linear D -> 2D (s4d.py's 1×1 Conv1d) split into halves [a, b] and GLU a ⊙ σ(b). No dropout.
/// Parameters as in s4d.py: λ = −exp(log_A_real) + i·A_imag, log Δ per channel, C as (C_re, C_im), D per channel.
/// Inits (MixerConfig option "init"): 0 = S4D-Lin λ_n = −½ + iπn, 1 = S4D-Inv λ_n = −½ + i(N/π)(N/(2n+1) − 1),
/// n = 0..N/2−1; log Δ ~ U[log 0.001, log 0.1]; C_re, C_im ~ N(0, ½); D ~ N(0, 1).
#pragma once

#include <memory>
#include <utility>

#include "autograd/complex.h"
#include "layers/linear.h"
#include "layers/mixer.h"

namespace ember::nn {

/// How S4D's modes λ_n are initialised (MixerConfig option "init").
enum class S4DInit {
  Lin = 0,  ///< λ_n = −½ + iπn
  Inv = 1,  ///< λ_n = −½ + i(N/π)(N/(2n+1) − 1)
};

/// The recurrent state of one S4D layer.
struct S4DState : MixerState {
  Complex x;  ///< [B, H, N/2]: the complex SSM state of every channel
  std::unique_ptr<MixerState> clone() const override {
    auto copy = std::make_unique<S4DState>(*this);
    copy->x = {x.re.clone(), x.im.clone()};
    return copy;
  }
};

/// The S4D mixer: H = D independent diagonal SSMs, convolution mode in forward, recurrence in step.
class S4D : public SequenceMixer {
 public:
  /// d_model (H), bias (of the output linear) and options "d_state" (N, even, ≥ 2; default 64) and "init"
  /// (0 = S4D-Lin, 1 = S4D-Inv; default 0) from the config; throws ember::Error naming S4D otherwise.
  explicit S4D(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal: GLU(Linear(GELU(K̄ * u + D u))) per position.
  Tensor forward(const Tensor& x) override;
  /// The complex state x [B, H, N/2] as zeros; max_len only has to be > 0 (the state does not grow).
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]: x ← Ā ⊙ x + B̄ u_t, y = 2·Re(C x) + D u_t, then the output layer. Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// True: LanguageModel keeps this layer's initialisation.
  bool keeps_own_init() const override { return true; }

  /// λ = −exp(log_A_real) + i·A_imag, [H, N/2]. Differentiable.
  Complex lambda() const;
  /// Δ = exp(log_dt), [H]. Differentiable.
  Tensor delta() const;
  /// The discretised pair (Ā, B̄) = (exp(Δλ), (exp(Δλ) − 1)/λ), each [H, N/2]. Differentiable.
  std::pair<Complex, Complex> discretize() const;
  /// K̄ [H, L]: K̄_ℓ = 2·Re Σ_n C_n B̄_n exp(Δλ_n ℓ) for ℓ = 0..L−1, as one batched matrix product of powers at
  /// ℓ = gJ and ℓ = j (J = ⌈√L⌉), O(H·N·L) time and O(H·(L + N√L)) memory. Differentiable; throws for L < 1.
  Tensor kernel(std::int64_t L) const;

  const std::int64_t d_model;  ///< H = D, the number of channels
  const std::int64_t d_state;  ///< N; each channel has N/2 complex modes
  const S4DInit init;          ///< how λ was initialised
  Tensor log_dt;               ///< [H], log Δ
  Tensor log_A_real;           ///< [H, N/2], log(−Re λ)
  Tensor A_imag;               ///< [H, N/2], Im λ
  Tensor C_re;                 ///< [H, N/2], Re C
  Tensor C_im;                 ///< [H, N/2], Im C
  Tensor D;                    ///< [H], the skip connection D u
  std::shared_ptr<Linear> output_linear;  ///< D -> 2D, followed by GLU

 protected:
  /// "d_model=…, d_state=…, init=lin|inv".
  std::string extra_repr() const override;

 private:
  /// y: [..., D] (the SSM output) -> GLU(Linear(GELU(y))) [..., D].
  Tensor output_layer(const Tensor& y) const;
};

}  // namespace ember::nn
