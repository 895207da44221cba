/// \file
/// \brief Mamba's selective scan (Gu & Dao 2023, "S6"; technique notes §6) as a differentiable op, and the
/// sequential reference it is checked against.
///
/// For every batch b and channel c, with a state s ∈ R^N per channel and input-dependent Δ, B, C:
///
///     s_t = exp(Δ_{t,c} A_c) ⊙ s_{t−1} + Δ_{t,c} B_t x_{t,c}     (s_{−1} = 0)
///     y_{t,c} = C_t · s_t
///
/// A is discretised by zero-order hold, exp(ΔA), and B by Euler, ΔB, as the reference code does (not the paper's
/// exact ZOH for B). B_t and C_t are shared by the E channels of a token. The D skip is not part of the scan.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace ember::nn {

/// x, delta: [Bt, T, E], A: [E, N], B, C: [Bt, T, N] -> y: [Bt, T, E], the selective scan above, computed by the
/// backend's chunked parallel scan in chunks of `chunk` steps (any chunk ≥ 1 gives the same y). One autograd node
/// whose backward recomputes the states inside each chunk from the chunk starts: memory O(Bt·T·E + Bt·⌈T/chunk⌉·E·N),
/// never the Bt·T·E·N states. Float32 or Float64, all five inputs of one dtype and device; throws ember::Error naming
/// selective_scan and the shapes otherwise.
Tensor selective_scan(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                      std::int64_t chunk = 64);

/// The same scan (same shapes and checks) written step by step with ember's differentiable ops: one exp, multiply-add
/// and sum per timestep, the outputs stacked. The oracle of `selective_scan` and the readable form of the math;
/// autograd makes its backward O(T²), so it is for small T only.
Tensor selective_scan_reference(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                                const Tensor& C);

}  // namespace ember::nn
