/// \file
/// \brief nn::MLP with GELU or SwiGLU.
#include "layers/mlp.h"

#include "autograd/ops.h"

namespace ember::nn {

std::int64_t MLP::default_hidden(std::int64_t d, MLPKind kind) {
  if (kind == MLPKind::Gelu) return 4 * d;
  return (8 * d / 3 + 7) / 8 * 8;
}

MLP::MLP(std::int64_t d, std::int64_t hidden, MLPKind kind_, bool bias, Generator* gen) : Module("MLP"), kind(kind_) {
  if (hidden == 0) hidden = default_hidden(d, kind);
  if (kind == MLPKind::SwiGLU) gate = register_module("gate_proj", std::make_shared<Linear>(d, hidden, bias, gen));
  up = register_module("up_proj", std::make_shared<Linear>(d, hidden, bias, gen));
  down = register_module("down_proj", std::make_shared<Linear>(hidden, d, bias, gen));
}

Tensor MLP::forward(const Tensor& x) {
  if (kind == MLPKind::Gelu) return down->forward(gelu(up->forward(x)));
  return down->forward(silu(gate->forward(x)) * up->forward(x));
}

std::string MLP::extra_repr() const { return kind == MLPKind::Gelu ? "gelu" : "swiglu"; }

MLPKind parse_mlp_kind(const std::string& name) {
  if (name == "gelu") return MLPKind::Gelu;
  if (name == "swiglu") return MLPKind::SwiGLU;
  throw Error("MLP: unknown kind '" + name + "' (expected gelu or swiglu)");
}

}  // namespace ember::nn
