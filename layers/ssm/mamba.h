/// \file
/// \brief nn::Mamba: the selective state space block of Gu & Dao (2023; technique notes §6), as
/// `mamba_simple.py` of state-spaces/mamba builds it.
///
/// From h [B, T, D], with E = expand·D, N = d_state, R = dt_rank:
///   1. [x, z] = h W_inᵀ                          (W_in: D -> 2E, no bias)
///   2. x = SiLU(conv1d_causal(x))                (depthwise, width d_conv, with bias; x_{t−d_conv+1..t})
///   3. [δ, B, C] = x W_xᵀ                        (W_x: E -> R + 2N, no bias; B_t, C_t shared by the E channels)
///   4. Δ = softplus(δ W_dtᵀ + b_dt) ∈ R^E        (W_dt: R -> E)
///   5. A = −exp(A_log) ∈ R^{E×N}
///   6. s_t = exp(Δ_t A) ⊙ s_{t−1} + Δ_t B_t x_t,   y_t = C_t · s_t + D ⊙ x_t    (the selective scan, plus the skip)
///   7. out = (y ⊙ SiLU(z)) W_outᵀ                (W_out: E -> D, no bias)
/// `forward` runs the scan with nn::selective_scan (the chunked kernel); the causal depthwise conv is d_conv
/// shifted views of the left-padded input, each times its tap (four tensor ops for the default width).
/// `step` keeps conv_state [B, E, d_conv] (rolled left, the new x inserted last, dotted with the taps) and
/// ssm_state [B, E, N]: O(E·N) per token, whatever the position.
/// Init as the reference: A_log = log(n + 1) (S4D-Real, A_n = −(n + 1)), D = 1, W_dt ~ U(±R^{−½}),
/// b_dt = Δ0 + log(−expm1(−Δ0)) (the inverse softplus) with Δ0 = exp(U[log 1e-3, log 1e-1]) clamped ≥ 1e-4,
/// conv weight and bias ~ U(±1/√d_conv) (PyTorch's Conv1d default, fan-in d_conv), the other projections as
/// PyTorch's Linear, U(±1/√in). A_log and D should train without weight decay.
#pragma once

#include <memory>
#include <tuple>

#include "layers/linear.h"
#include "layers/mixer.h"

namespace ember::nn {

/// The decoding state of one Mamba layer.
struct MambaState : MixerState {
  Tensor conv_state;  ///< [B, E, d_conv]: the last d_conv inputs of the conv, oldest first
  Tensor ssm_state;   ///< [B, E, N]: s of every channel
  std::unique_ptr<MixerState> clone() const override { return clone_state(*this, &MambaState::conv_state, &MambaState::ssm_state); }
};

/// The Mamba mixer: input projection, causal depthwise conv, SiLU, selective SSM with D skip, SiLU gate, output
/// projection.
class Mamba : public SequenceMixer {
 public:
  /// d_model (D) and options "d_state" (N, default 16), "d_conv" (default 4), "expand" (E = expand·D, default 2),
  /// "dt_rank" (R, 0 = ⌈D/16⌉, the default) and "chunk" (the scan's chunk, default 64), each a whole number ≥ 1
  /// (dt_rank ≥ 0); throws ember::Error naming Mamba otherwise. config.bias is not read: the reference has no
  /// projection biases besides the conv's and b_dt.
  explicit Mamba(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal; steps 1–7 above with the chunked selective scan.
  Tensor forward(const Tensor& x) override;
  /// conv_state [B, E, d_conv] and ssm_state [B, E, N] as zeros; max_len only has to be > 0 (the state does not
  /// grow).
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]: one token of steps 1–7, the conv over conv_state and the scan on ssm_state. Records no
  /// gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// True: LanguageModel keeps this layer's initialisation.
  bool keeps_own_init() const override { return true; }

  /// A = −exp(A_log), [E, N]. Differentiable.
  Tensor A() const;
  /// x: [B, T, E] -> [B, T, E], the causal depthwise conv y_t = b + Σ_k w_k ⊙ x_{t−d_conv+1+k} (zeros before t = 0),
  /// with bias. Differentiable.
  Tensor causal_conv(const Tensor& x) const;
  /// u: [..., E] (after conv and SiLU) -> (Δ [..., E], B [..., N], C [..., N]): [δ, B, C] = u W_xᵀ and
  /// Δ = softplus(δ W_dtᵀ + b_dt), steps 3 and 4. Differentiable.
  std::tuple<Tensor, Tensor, Tensor> selection(const Tensor& u) const;

  const std::int64_t d_model;        ///< D
  const std::int64_t d_state;        ///< N
  const std::int64_t d_conv;         ///< the conv width
  const std::int64_t d_inner;        ///< E = expand·D
  const std::int64_t dt_rank;        ///< R
  const std::int64_t chunk;          ///< steps per chunk of the selective scan in forward
  std::shared_ptr<Linear> in_proj;   ///< W_in: D -> 2E, no bias
  Tensor conv_weight;                ///< [E, d_conv], the taps (PyTorch's conv1d.weight [E, 1, d_conv] squeezed)
  Tensor conv_bias;                  ///< [E]
  std::shared_ptr<Linear> x_proj;    ///< W_x: E -> R + 2N, no bias
  std::shared_ptr<Linear> dt_proj;   ///< W_dt: R -> E, with bias b_dt
  Tensor A_log;                      ///< [E, N]
  Tensor D;                          ///< [E], the skip D ⊙ x
  std::shared_ptr<Linear> out_proj;  ///< W_out: E -> D, no bias

 protected:
  /// "d_model=…, d_state=…, d_conv=…, expand=…, dt_rank=…, chunk=…".
  std::string extra_repr() const override;

 private:
  /// y: [..., E] (the scan's output plus the skip), z: [..., E] -> (y ⊙ SiLU(z)) W_outᵀ [..., D], step 7.
  Tensor output(const Tensor& y, const Tensor& z) const;
};

}  // namespace ember::nn
