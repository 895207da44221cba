/// \file
/// \brief nn::S4: the structured state space mixer of Gu, Goel and Ré (ICLR 2022; technique notes §5), with a
/// diagonal plus low-rank (DPLR) state matrix initialised from HiPPO-LegS, as `SSMKernelDPLR` of state-spaces/s4.
///
/// Each of the H = D channels is a single-input single-output SSM x' = Ax + Bu, y = Cx + Du with N states.
/// In the eigenbasis of the normal part of HiPPO-LegS (technique notes §4, oracle 6),
///   A = Λ − P P*,   Λ = diag(λ_0, …, λ_{N/2−1}, conjugates),   P = (P_0, …, P_{N/2−1}, conjugates),
/// and B, C likewise hold N/2 complex numbers whose conjugates are implied: the system is a real one in a complex
/// basis, so y = 2·Re Σ_n C_n x_n over the kept modes. Bilinear discretisation with step Δ:
///   Ā = (I − ΔA/2)⁻¹(I + ΔA/2) = (4/Δ)(2/Δ − A)⁻¹ − I,   B̄ = (I − ΔA/2)⁻¹ΔB = 2(2/Δ − A)⁻¹B,
/// with (2/Δ − A)⁻¹ = (D_Δ + PP*)⁻¹ by the Woodbury identity (D_Δ = diag(2/Δ − λ_n)).
///
/// forward computes the kernel K̄_ℓ = C Ā^ℓ B̄ (ℓ < L) from its generating function at the roots of unity
/// ω_k = e^{−2πik/L}: with C̃ = C(I − Ā^L),
///   K̂(ω) = (2/(1+ω)) [r_{C̃B}(z) − r_{C̃P}(z) r_{P*B}(z) / (1 + r_{P*P}(z))],   z = (2/Δ)(1−ω)/(1+ω),
///   r_ab(z) = Σ_n a_n b_n / (z − λ_n)   over all N modes (the kept ones and their conjugates),
/// then K̄ = irfft(K̂) and y = K̄ * u + D u by FFT convolution. step runs the recurrence x ← Āx + B̄u on the N/2 kept
/// modes. Both then apply the output layer of nn::S4D: GELU, Linear D -> 2D, GLU. No dropout.
///
/// Parameters per channel: λ = −exp(log_A_real) + i·A_imag, P, B, C as (re, im) pairs [H, N/2], log Δ [H], D [H].
/// Init: λ, P, B from legs_dplr (the same for every channel), log Δ ~ U[log 0.001, log 0.1], C_re, C_im ~ N(0, ½),
/// D ~ N(0, 1).
#pragma once

#include <memory>
#include <utility>

#include "autograd/complex.h"
#include "layers/linear.h"
#include "layers/mixer.h"

namespace ember::nn {

/// HiPPO-LegS in DPLR form: A_LegS = V (Λ − P P*) V* with V = [V_half, conj(V_half)] unitary, Λ, P, B listed for
/// the N/2 eigenvalues with negative imaginary part (the other N/2 are their conjugates). All Float64.
struct DplrLegS {
  Complex lambda;  ///< [N/2], λ_n = −½ + iω_n with ω_n < 0, most negative first
  Complex P;       ///< [N/2], the rank-1 factor in the eigenbasis, V_half* p with p_n = √(n + ½)
  Complex B;       ///< [N/2], V_half* B_LegS
  Complex V;       ///< [N, N/2], V_half: the orthonormal eigenvectors of the kept eigenvalues, as columns
};

/// The DPLR form of HiPPO-LegS with N states (N even, ≥ 2): the normal part A + ppᵀ = −½I + S (S skew-symmetric)
/// has eigenvalues −½ + iω with iω those of S. The eigenvectors of S come from the Hermitian matrix iS by cyclic
/// complex Jacobi rotations in double precision (at init only, O(N³) per sweep). Throws ember::Error naming S4
/// for an odd N or N < 2.
DplrLegS legs_dplr(std::int64_t N);

/// The recurrent state of one S4 layer.
struct S4State : MixerState {
  Complex x;  ///< [B, H, N/2]: the kept modes of the complex SSM state of every channel
  std::unique_ptr<MixerState> clone() const override {
    auto copy = std::make_unique<S4State>(*this);
    copy->x = {x.re.clone(), x.im.clone()};
    return copy;
  }
};

/// The S4 mixer: H = D independent DPLR SSMs, convolution mode in forward, recurrence in step.
class S4 : public SequenceMixer {
 public:
  /// d_model (H), bias (of the output linear) and option "d_state" (N, even, ≥ 2; default 64) from the config;
  /// throws ember::Error naming S4 otherwise.
  explicit S4(const MixerConfig& config);
  /// x: [B, T, D] -> [B, T, D], causal: GLU(Linear(GELU(K̄ * u + D u))) per position, with K̄ = kernel(T).
  Tensor forward(const Tensor& x) override;
  /// The complex state x [B, H, N/2] as zeros; max_len only has to be > 0 (the state does not grow).
  std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const override;
  /// x_t: [B, D] -> [B, D]: x ← Ā x + B̄ u_t on the kept modes, y = 2·Re(C x) + D u_t, then the output layer.
  /// Ā mixes the kept modes with the conjugates of the state (A's low-rank term couples them):
  /// x ← Ā₁₁ x + Ā₁₂ conj(x) + B̄₁ u_t with Ā₁₁, Ā₁₂ the top blocks of discretize()'s Ā. Records no gradients.
  Tensor step(const Tensor& x_t, MixerState& state) const override;
  /// True: LanguageModel keeps this layer's initialisation.
  bool keeps_own_init() const override { return true; }

  /// λ = −exp(log_A_real) + i·A_imag, [H, N/2]. Differentiable.
  Complex lambda() const;
  /// Δ = exp(log_dt), [H]. Differentiable.
  Tensor delta() const;
  /// The bilinear pair in the full eigenbasis (the N/2 kept modes, then their conjugates): Ā [H, N, N] =
  /// (4/Δ)(2/Δ − A)⁻¹ − I and B̄ [H, N] = 2(2/Δ − A)⁻¹B, (2/Δ − A)⁻¹ by Woodbury. Differentiable.
  std::pair<Complex, Complex> discretize() const;
  /// C̃ = C(I − Ā^L) on the kept modes, [H, N/2], with Ā^L by repeated squaring of the dense Ā of discretize()
  /// (⌊log₂ L⌋ complex [H, N, N] products). Differentiable; throws for L < 1.
  Complex c_tilde(std::int64_t L) const;
  /// K̄ [H, L], K̄_ℓ = C Ā^ℓ B̄ for ℓ = 0..L−1, from the generating function at the L/2 + 1 roots of unity that
  /// irfft needs (the kernel is real). The formula is multiplied through by (1 + ω) so that ω = −1 (z = ∞) is
  /// finite: K̂ = 2[r_{C̃B} − (1+ω) r_{C̃P} r_{P*B} / (1 + (1+ω) r_{P*P})] with
  /// r_ab = Σ_n a_n b_n / ((2/Δ)(1−ω) − (1+ω)λ_n). Differentiable; throws for L < 1.
  Tensor kernel(std::int64_t L) const;

  const std::int64_t d_model;             ///< H = D, the number of channels
  const std::int64_t d_state;             ///< N; each channel keeps N/2 complex modes
  Tensor log_dt;                          ///< [H], log Δ
  Tensor log_A_real;                      ///< [H, N/2], log(−Re λ)
  Tensor A_imag;                          ///< [H, N/2], Im λ
  Tensor P_re;                            ///< [H, N/2], Re P
  Tensor P_im;                            ///< [H, N/2], Im P
  Tensor B_re;                            ///< [H, N/2], Re B
  Tensor B_im;                            ///< [H, N/2], Im B
  Tensor C_re;                            ///< [H, N/2], Re C
  Tensor C_im;                            ///< [H, N/2], Im C
  Tensor D;                               ///< [H], the skip connection D u
  std::shared_ptr<Linear> output_linear;  ///< D -> 2D, followed by GLU

 protected:
  /// "d_model=…, d_state=…".
  std::string extra_repr() const override;

 private:
  /// y: [..., D] (the SSM output) -> GLU(Linear(GELU(y))) [..., D].
  Tensor output_layer(const Tensor& y) const;
};

}  // namespace ember::nn
