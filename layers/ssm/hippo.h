/// \file
/// \brief HiPPO (Gu, Dao, Ermon, Rudra, Ré, NeurIPS 2020; technique notes §4): the (A, B) matrices of the
/// LegS, LegT and LagT measures, their discretisations, and online function approximation.
///
/// The coefficients c(t) ∈ R^N of a signal's projection onto orthogonal polynomials follow an ODE:
/// LTI `c'(t) = A c(t) + B f(t)` for LegT and LagT, scale-invariant `c'(t) = (1/t)(A c(t) + B f(t))` for LegS
/// (S4 uses the LTI form with the LegS matrices). The sign is baked into A. Discretised with step Δ,
/// `c_k = Ā c_{k−1} + B̄ f_k`:
/// - forward Euler `Ā = I + ΔA`, `B̄ = ΔB`;
/// - backward Euler `Ā = (I − ΔA)⁻¹`, `B̄ = (I − ΔA)⁻¹ΔB`;
/// - bilinear `Ā = (I − ΔA/2)⁻¹(I + ΔA/2)`, `B̄ = (I − ΔA/2)⁻¹ΔB`;
/// - zero-order hold `Ā = exp(ΔA)`, `B̄ = A⁻¹(exp(ΔA) − I)B`.
///
/// Reconstruction (P_n Legendre, L_n Laguerre):
/// - LegS after f_1..f_L: `f(x·t) ≈ Σ_n c_n √(2n+1) P_n(2x − 1)`, x ∈ [0, 1];
/// - LegT at lag u ∈ [0, θ]: `f(t − u) ≈ Σ_n c_n √(2n+1) P_n(1 − 2u/θ)`;
/// - LagT at lag u ≥ 0: `f(t − u) ≈ Σ_n c_n L_n(u) e^{−u/2}`.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace ember::nn {

/// The measure a HiPPO operator projects onto.
enum class HippoKind {
  LegS,  ///< scaled Legendre: uniform weight over the whole history [0, t]
  LegT,  ///< translated Legendre: uniform weight over the sliding window [t − θ, t]
  LagT,  ///< translated Laguerre: exponentially decaying weight e^{−(t−s)} over the history
};

/// How a continuous system `c' = Ac + Bf` becomes the recurrence `c_k = Ā c_{k−1} + B̄ f_k`.
enum class Discretization {
  ForwardEuler,   ///< Ā = I + ΔA, B̄ = ΔB
  BackwardEuler,  ///< Ā = (I − ΔA)⁻¹, B̄ = (I − ΔA)⁻¹ΔB
  Bilinear,       ///< Ā = (I − ΔA/2)⁻¹(I + ΔA/2), B̄ = (I − ΔA/2)⁻¹ΔB (Tustin; S4's choice)
  ZOH,            ///< Ā = exp(ΔA), B̄ = A⁻¹(exp(ΔA) − I)B (exact for f constant over each step)
};

/// A linear system's pair (A [N, N], B [N]), continuous or discrete.
struct StateSpace {
  Tensor A;  ///< [N, N] state matrix
  Tensor B;  ///< [N] input vector
};

/// -> A [N, N], B [N] in Float64, the HiPPO matrices of `kind` with the sign baked into A (n, k = 0..N−1):
/// - LegS: A_nk = −√(2n+1)√(2k+1) (n > k), −(n+1) (n = k), 0 (n < k); B_n = √(2n+1).
/// - LegT: A_nk = −√(2n+1)√(2k+1) (n ≥ k), −√(2n+1)√(2k+1)(−1)^{n−k} (n < k); B_n = √(2n+1); A and B are
///   divided by the window θ (`theta`, ignored by the other kinds). The s4 repository halves both "for
///   timescale correctness"; hippo-code does not, and neither do we.
/// - LagT: A_nk = −1 (n > k), −½ (n = k), 0 (n < k); B_n = 1.
/// Throws ember::Error for an unknown kind, N < 1 or θ ≤ 0.
StateSpace hippo_matrices(HippoKind kind, std::int64_t N, double theta = 1.0);

/// -> P [N] in Float64, P_n = √(n + ½): the rank-1 correction that makes LegS normal, A_LegS + PPᵀ = −½I + S
/// with S skew-symmetric (the NPLR form S4 builds on). Throws ember::Error for N < 1.
Tensor legs_rank_correction(std::int64_t N);

/// A: [N, N], B: [N] -> (Ā [N, N], B̄ [N]) in A's dtype, computed in double precision: the discretisation of
/// `c' = Ac + Bf` with step dt. ZOH takes one matrix exponential of the augmented matrix
/// Δ[[A, B], [0, 0]], whose top row of blocks is [Ā, B̄], so A need not be invertible.
/// Throws ember::Error for bad shapes, dt ≤ 0, an unknown method, or a singular I − ΔA (or I − ΔA/2).
StateSpace discretize(const Tensor& A, const Tensor& B, double dt, Discretization method);

/// x -> [P_0(x), ..., P_{N−1}(x)], the Legendre polynomials by (n+1)P_{n+1} = (2n+1)x P_n − n P_{n−1}.
std::vector<double> legendre(std::int64_t N, double x);

/// x -> [L_0(x), ..., L_{N−1}(x)], the Laguerre polynomials by (n+1)L_{n+1} = (2n+1−x)L_n − n L_{n−1}.
std::vector<double> laguerre(std::int64_t N, double x);

/// Online function approximation: feeds a signal f_1, f_2, ... one sample at a time through a discretised HiPPO
/// operator, keeping the N coefficients c_k of its projection, and reconstructs the signal from them.
///
/// LTI kinds (LegT, LagT) use the fixed (Ā, B̄) of step dt. LegS has no step size: its k-th update (1-indexed)
/// uses the discretisation of (A/k, B/k), i.e. step 1/k, recomputed each step (O(N³) per update).
class HippoProjection {
 public:
  /// An operator with N coefficients, all zero. `dt` is ignored by LegS, `theta` (LegT's window) by the others.
  /// Throws ember::Error for an unknown kind or method, N < 1, dt ≤ 0 or θ ≤ 0.
  HippoProjection(HippoKind kind, std::int64_t N, Discretization method = Discretization::Bilinear, double dt = 1e-3,
                  double theta = 1.0);

  /// Consumes the next sample: c_k = Ā_k c_{k−1} + B̄_k f.
  void update(double f);
  /// The current coefficients c [N].
  const std::vector<double>& coefficients() const { return c_; }
  /// The number of samples consumed so far.
  std::int64_t steps() const { return k_; }

  /// points: [P] -> [P], the approximation at each point: for LegS a fraction x ∈ [0, 1] of the history after k
  /// samples (sample f_j sits at x = j/k, so x = 1 is the newest), for LegT a lag u ∈ [0, θ], for LagT a lag
  /// u ≥ 0 (both in time units, so sample f_{k−j} sits at lag j·dt). Throws ember::Error for a point outside
  /// that range.
  std::vector<double> reconstruct(const std::vector<double>& points) const;

 private:
  HippoKind kind_;
  std::int64_t N_;
  Discretization method_;
  double theta_;
  std::vector<double> A_, B_;        // continuous (A row-major [N, N], B [N])
  std::vector<double> Abar_, Bbar_;  // discrete, fixed for LegT and LagT
  std::vector<double> c_;
  std::int64_t k_ = 0;
};

}  // namespace ember::nn
