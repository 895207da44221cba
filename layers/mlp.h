/// \file
/// \brief nn::MLP, the position-wise feed-forward block of a transformer: GELU (GPT-2) or SwiGLU (Shazeer 2020).
///
/// GELU:   y = down(GELU(up(x))), hidden = 4·d by default.
/// SwiGLU: y = down(SiLU(gate(x)) ⊙ up(x)), hidden = 8·d/3 rounded up to a multiple of 8 by default.
#pragma once

#include <memory>

#include "layers/linear.h"

namespace ember::nn {

/// The activation of an MLP.
enum class MLPKind { Gelu, SwiGLU };

/// A two-layer (GELU) or gated three-projection (SwiGLU) feed-forward block.
class MLP : public Module {
 public:
  /// d -> hidden -> d; hidden = 0 picks the default for the kind.
  MLP(std::int64_t d, std::int64_t hidden, MLPKind kind, bool bias = true, Generator* gen = nullptr);
  /// x: [..., d] -> [..., d].
  Tensor forward(const Tensor& x) override;
  /// The default hidden width for a kind.
  static std::int64_t default_hidden(std::int64_t d, MLPKind kind);
  MLPKind kind;                   ///< GELU or SwiGLU
  std::shared_ptr<Linear> gate;   ///< SwiGLU's gate projection (null for GELU)
  std::shared_ptr<Linear> up;     ///< d -> hidden
  std::shared_ptr<Linear> down;   ///< hidden -> d

 protected:
  std::string extra_repr() const override;
};

/// "gelu" or "swiglu" -> the kind; throws naming the accepted names otherwise.
MLPKind parse_mlp_kind(const std::string& name);

}  // namespace ember::nn
