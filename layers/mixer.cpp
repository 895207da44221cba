/// \file
/// \brief The mixer registry: one line per mixer in `registry()`.
#include "layers/mixer.h"

#include "layers/attention/diag_attention.h"
#include "layers/attention/flash_attention.h"
#include "layers/attention/gated_attention_unit.h"
#include "layers/attention/linear_attention.h"
#include "layers/attention/mixed_chunk_attention.h"
#include "layers/attention/multi_head_attention.h"
#include "layers/attention/norm_attention.h"
#include "layers/attention/performer_attention.h"
#include "layers/attention/sparse_attention.h"
#include "layers/ssm/lru.h"
#include "layers/ssm/mamba.h"
#include "layers/ssm/retention.h"
#include "layers/ssm/rwkv.h"
#include "layers/ssm/s4.h"
#include "layers/ssm/s4d.h"

namespace ember::nn {

namespace {

template <class M>
std::shared_ptr<SequenceMixer> make(const MixerConfig& c) {
  return std::make_shared<M>(c);
}

/// Every mixer ember has, by name. A new mixer joins by adding its line here.
const std::map<std::string, MixerFactory>& registry() {
  static const std::map<std::string, MixerFactory> table = {
      {"diag_attention", make<DiagAttention>},
      {"flash_attention", make<FlashAttention>},
      {"gau", make<GatedAttentionUnit>},
      {"linear", make<LinearAttention>},
      {"lru", make<LRU>},
      {"mamba", make<Mamba>},
      {"mixed_chunk", make<MixedChunkAttention>},
      {"norm_attention", make<NormAttention>},
      {"performer", make<PerformerAttention>},
      {"retnet", make<MultiScaleRetention>},
      {"rwkv", make<RWKVTimeMix>},
      {"s4", make<S4>},
      {"s4d", make<S4D>},
      {"softmax", make<MultiHeadAttention>},
      {"sparse", make<SparseAttention>},
  };
  return table;
}

}  // namespace

double MixerConfig::option(const std::string& name, double fallback) const {
  asked.insert(name);
  const auto it = options.find(name);
  return it == options.end() ? fallback : it->second;
}

bool is_chain(const Tensor& tree_mask, const Tensor& depth) {
  const std::int64_t n = depth.numel();
  const auto mask = tree_mask.to_vector<std::int64_t>(), d = depth.to_vector<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    if (d[i] != i) return false;
    for (std::int64_t j = 0; j < n; ++j)
      if (mask[i * n + j] != (j <= i)) return false;
  }
  return true;
}

Tensor SequenceMixer::verify_tree(const Tensor&, const Tensor&, const Tensor&, MixerState&) const {
  throw Error(type_name() + ": verify_tree needs attention over a KV cache; this mixer verifies chains by stepping");
}

void SequenceMixer::accept_tree(MixerState&, const std::vector<std::int64_t>&) const {
  throw Error(type_name() + ": accept_tree needs attention over a KV cache; this mixer verifies chains by stepping");
}

std::shared_ptr<SequenceMixer> make_mixer(const std::string& name, const MixerConfig& config) {
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : mixer_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error("make_mixer: unknown mixer '" + name + "' (known: " + known + ")");
  }
  return it->second(config);
}

std::vector<std::string> mixer_names() {
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

}  // namespace ember::nn
