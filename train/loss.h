/// \file
/// \brief Loss functions: cross-entropy over class logits (one fused differentiable op, with ignored
/// positions and label smoothing, as torch.nn.functional.cross_entropy) and the mean squared error.
///
/// Cross-entropy of row i with logits z_i (V classes) and target y_i, label smoothing ε:
/// `ℓ_i = (1 − ε)(lse(z_i) − z_{i,y_i}) + ε (lse(z_i) − mean_j z_{i,j})`, with
/// `lse(z) = m + log Σ_j exp(z_j − m)`, m = max_j z_j. This is the cross-entropy against the smoothed
/// target distribution `q = (1 − ε) onehot(y_i) + ε/V`. The loss is the mean of ℓ_i over the rows whose
/// target is not ignore_index, and its gradient is `∂L/∂z_i = (softmax(z_i) − q_i) / N_valid`
/// (technique notes §14).
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace ember {

/// logits: [N, V] or [B, T, V], target: [N] or [B, T] Int64 -> [] (a scalar of logits' dtype).
///
/// The mean over non-ignored positions of the cross-entropy between softmax(logits) and the smoothed
/// target `(1 − label_smoothing) onehot(target) + label_smoothing / V` (PyTorch's semantics). Positions
/// whose target equals `ignore_index` contribute neither loss nor gradient. When every position is
/// ignored the result is 0 (finite) with a zero gradient, where PyTorch would give NaN.
///
/// One fused op: the forward computes each row's log-sum-exp (its max, then Σ exp(z − max) summed in
/// double, vectorised, rows in parallel), keeping only that per-row value for backward; the backward
/// writes `(softmax − q) · grad / N_valid` directly. Float16 and BFloat16 logits are computed in
/// Float32 (and the loss is Float32). CPU only.
///
/// Throws ember::Error on a shape mismatch, a non-Int64 target, label_smoothing outside [0, 1], or a
/// target outside [0, V) that is not ignore_index (naming the value and its position).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, std::int64_t ignore_index = -100,
                     double label_smoothing = 0.0);

/// input: [...], target: same shape -> []: mean((input − target)²), differentiable in both.
/// Throws ember::Error when the shapes differ (no broadcasting, unlike PyTorch's warning).
Tensor mse_loss(const Tensor& input, const Tensor& target);

}  // namespace ember
