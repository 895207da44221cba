/// \file
/// \brief nn::HeadedMixer: what every multi-head mixer shares — the projections W_q, W_k, W_v, W_o, the split of
/// D into H heads of d = D/H, and the shape checks of forward and step.
///
/// Q = X W_q, K = X W_k, V = X W_v are reshaped to [B, H, T, d]; a mixer combines them per head into O
/// [B, H, T, d], and the output is concat_h(O_h) W_o. Softmax and linear attention differ only in that middle.
#pragma once

#include <array>
#include <memory>

#include "layers/linear.h"
#include "layers/mixer.h"

namespace ember::nn {

/// The base of mixers built from query, key, value and output projections over H heads.
class HeadedMixer : public SequenceMixer {
 public:
  std::shared_ptr<Linear> q_proj;  ///< W_q
  std::shared_ptr<Linear> k_proj;  ///< W_k
  std::shared_ptr<Linear> v_proj;  ///< W_v
  std::shared_ptr<Linear> o_proj;  ///< W_o
  const std::int64_t n_heads;      ///< H
  const std::int64_t head_dim;     ///< d = D / H

 protected:
  /// The projections for d_model, n_heads (dividing d_model) and bias of the config, printed as `type_name`.
  HeadedMixer(const MixerConfig& config, std::string type_name);
  /// x: [B, T, D] -> q, k, v: [B, H, T, d] each.
  std::array<Tensor, 3> project(const Tensor& x) const;
  /// o: [B, H, T, d] -> [B, T, D] through W_o.
  Tensor merge(const Tensor& o) const;
  /// Throws unless x is [B, T, D] (forward's input).
  void check_input(const Tensor& x) const;
  /// Throws unless x_t is [batch, D] (step's input).
  void check_step_input(const Tensor& x_t, std::int64_t batch) const;
  /// Throws unless batch > 0 and max_len > 0 (init_state's arguments).
  void check_state_size(std::int64_t batch, std::int64_t max_len) const;
  /// The dtype and device new states take: those of the weights.
  Tensor state_zeros(const Shape& shape) const;
};

}  // namespace ember::nn
