/// \file
/// \brief The loss of heads that predict further ahead than the next token (Medusa heads, MTP modules, Gloeckle et
/// al.'s heads): the targets shifted by k, and the mean cross-entropy over the scored positions.
///
/// With next-token targets target[t] = x_{t+1}, a head that predicts x_{t+k+1} at position t is scored against
/// target[t + k]. The cross-entropy is composed of autograd ops (log_softmax, gather): layers/ sits below train/,
/// whose cross_entropy is a fused kernel.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace ember::decoding {

/// Throws ember::Error naming `op` unless input and target are both [B, T] Int64 of one shape.
void check_batch(const Tensor& input, const Tensor& target, const std::string& op);

/// target: [B, T] Int64 -> [B, T] with out[:, t] = target[:, t + k], and −100 (ignored) where t + k ≥ T.
Tensor shift_target(const Tensor& target, std::int64_t k);

/// logits: [..., V], target: [...] Int64 -> [] the mean of −log softmax(logits)[target] over the positions whose
/// target is not −100 (0, with a zero gradient, when none is). Throws ember::Error naming `op` for a target
/// outside [0, V).
Tensor lookahead_cross_entropy(const Tensor& logits, const Tensor& target, const std::string& op);

}  // namespace ember::decoding
