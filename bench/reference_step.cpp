/// \file
/// \brief One forward/backward step of the reference model on weights and a batch read from a safetensors
/// file, writing the loss and every parameter's gradient to another: what bench/compare_pytorch.py --check
/// compares with PyTorch's. Usage: reference_step IN.safetensors OUT.safetensors
///
/// IN holds "ids" and "targets" ([B, T] Int64) and "param.<ember parameter name>" for every parameter of the
/// reference model (vocab 64, d_model 128, 4 heads, 2 layers, learned positions, LayerNorm, GELU, untied head
/// without bias, max_len = T). OUT holds "loss" and "grad.<name>".
#include <cstdio>

#include "core/safetensors.h"
#include "ember.h"
#include "layers/models/language_model.h"
#include "train/loss.h"

int main(int argc, char** argv) {
  using namespace ember;
  if (argc != 3) {
    std::fprintf(stderr, "usage: reference_step IN.safetensors OUT.safetensors\n");
    return 2;
  }
  try {
    const safetensors::Contents in = safetensors::load(argv[1]);
    const Tensor& ids = in.at("ids");
    nn::LanguageModelConfig c;  // the defaults are the reference model
    c.max_len = ids.shape()[1];
    nn::LanguageModel model(c);
    nn::NamedTensors weights;
    for (const auto& [name, t] : in.tensors)
      if (name.starts_with("param.")) weights.emplace_back(name.substr(6), t);
    model.load_state_dict(weights, true);
    const Tensor loss = cross_entropy(model.forward(ids), in.at("targets"));
    loss.backward();
    safetensors::TensorList out = {{"loss", loss}};
    for (const auto& [name, p] : model.named_parameters()) out.emplace_back("grad." + name, p.grad());
    safetensors::save(argv[2], out);
  } catch (const Error& e) {
    std::fprintf(stderr, "reference_step: %s\n", e.what());
    return 1;
  }
  return 0;
}
