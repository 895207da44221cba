/// \file
/// \brief nn::LanguageModel: blocks, GPT-2 initialisation, KV-cache decoding and sampling.
#include "layers/models/language_model.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "layers/functional.h"
#include "layers/norm.h"
#include "layers/ssm/rwkv.h"

namespace ember::nn {

namespace {

std::shared_ptr<Module> make_norm(const std::string& name, std::int64_t d, bool bias) {
  if (name == "layernorm") return std::make_shared<LayerNorm>(d, 1e-5, bias);
  if (name == "rmsnorm") return std::make_shared<RMSNorm>(d, 1e-5);
  throw Error("LanguageModel: unknown norm '" + name + "' (expected layernorm or rmsnorm)");
}

void check_config(const LanguageModelConfig& c) {
  EMBER_CHECK(c.vocab_size > 0 && c.d_model > 0 && c.n_layers > 0 && c.max_len > 0,
              fmt::format("LanguageModel: vocab_size, d_model, n_layers and max_len must be positive, got {}, {}, {}, {}",
                          c.vocab_size, c.d_model, c.n_layers, c.max_len));
  EMBER_CHECK(c.positions == "learned" || c.positions == "rope" || c.positions == "none",
              "LanguageModel: positions must be learned, rope or none, got '" + c.positions + "'");
  EMBER_CHECK(c.mixers.size() == 1 || static_cast<std::int64_t>(c.mixers.size()) == c.n_layers,
              fmt::format("LanguageModel: {} mixer names for {} layers (give one, or one per layer)", c.mixers.size(),
                          c.n_layers));
  EMBER_CHECK(c.mlp == "gelu" || c.mlp == "swiglu" || c.mlp == "rwkv",
              "LanguageModel: mlp must be gelu, swiglu or rwkv, got '" + c.mlp + "'");
  EMBER_CHECK(c.dropout >= 0.0 && c.dropout < 1.0, fmt::format("LanguageModel: dropout {} not in [0, 1)", c.dropout));
}

}  // namespace

std::vector<std::string> transnormer_mixers(std::int64_t n_layers) {
  EMBER_CHECK(n_layers >= 2,
              fmt::format("transnormer_mixers: the layout needs at least 2 layers (a lower and an upper half), got {}",
                          n_layers));
  std::vector<std::string> names(n_layers, "norm_attention");
  std::fill(names.begin(), names.begin() + n_layers / 2, "diag_attention");
  return names;
}

const std::string& LanguageModelConfig::mixer_of(std::int64_t layer) const {
  return mixers.size() == 1 ? mixers[0] : mixers.at(layer);
}

Block::Block(const LanguageModelConfig& c, std::int64_t layer, Generator* gen) : Module("Block"), dropout_(c.dropout) {
  MixerConfig mc;
  mc.d_model = c.d_model;
  mc.n_heads = c.n_heads;
  mc.max_len = c.max_len;
  mc.rope = c.positions == "rope";
  mc.bias = c.bias;
  mc.options = c.mixer_options;
  mc.options["layer"] = static_cast<double>(layer);
  mc.options["n_layers"] = static_cast<double>(c.n_layers);
  mc.gen = gen;
  norm1 = register_module("norm1", make_norm(c.norm, c.d_model, c.bias));
  mixer = register_module("mixer", make_mixer(c.mixer_of(layer), mc));
  norm2 = register_module("norm2", make_norm(c.norm, c.d_model, c.bias));
  if (c.mlp == "rwkv") {
    if (c.mlp_hidden > 0) mc.options["hidden"] = static_cast<double>(c.mlp_hidden);
    channel_mix = register_module("ffn", std::make_shared<RWKVChannelMix>(mc));
  } else {
    mlp = register_module("mlp", std::make_shared<MLP>(c.d_model, c.mlp_hidden, parse_mlp_kind(c.mlp), c.bias, gen));
  }
}

Tensor Block::forward(const Tensor& x) {
  const Tensor h = x + dropout(mixer->forward(norm1->forward(x)), dropout_, is_training());
  const Tensor x2 = norm2->forward(h);
  return h + dropout(channel_mix ? channel_mix->forward(x2) : mlp->forward(x2), dropout_, is_training());
}

Tensor Block::step(const Tensor& x_t, MixerState& state, MixerState* ffn_state) const {
  const Tensor h = x_t + mixer->step(norm1->forward(x_t), state);
  const Tensor x2 = norm2->forward(h);
  EMBER_CHECK(!channel_mix || ffn_state != nullptr, "Block::step: the channel mix needs its state (init_state)");
  return h + (channel_mix ? channel_mix->step(x2, *ffn_state) : mlp->forward(x2));
}

namespace {

/// Steps `mixer` through the n tokens of x [1, n, D] (a chain), keeping a copy of the state after each one.
Tensor step_chain(const SequenceMixer& mixer, const Tensor& x, MixerState& state,
                  std::vector<std::unique_ptr<MixerState>>& after) {
  std::vector<Tensor> ys;
  for (std::int64_t j = 0; j < x.shape()[1]; ++j) {
    ys.push_back(mixer.step(select(x, 1, j), state));
    after.push_back(state.clone());
  }
  return stack(ys, 1);
}

}  // namespace

Tensor Block::verify(const Tensor& x, const Tensor& tree_mask, const Tensor& depth, MixerState& state,
                     MixerState* ffn_state, std::vector<std::unique_ptr<MixerState>>& pending,
                     std::vector<std::unique_ptr<MixerState>>& pending_ffn) const {
  const Tensor a = norm1->forward(x);
  const Tensor h = x + (mixer->supports_tree() ? mixer->verify_tree(a, tree_mask, depth, state)
                                               : step_chain(*mixer, a, state, pending));
  const Tensor x2 = norm2->forward(h);
  EMBER_CHECK(!channel_mix || ffn_state != nullptr, "Block::verify: the channel mix needs its state (init_state)");
  return h + (channel_mix ? step_chain(*channel_mix, x2, *ffn_state, pending_ffn) : mlp->forward(x2));
}

LanguageModel::LanguageModel(LanguageModelConfig c) : Module("LanguageModel"), config_(std::move(c)) {
  check_config(config_);
  Generator gen(config_.seed);
  tok_emb = register_module("tok_emb", std::make_shared<Embedding>(config_.vocab_size, config_.d_model, &gen));
  if (config_.positions == "learned")
    pos_emb = register_module("pos_emb", std::make_shared<Embedding>(config_.max_len, config_.d_model, &gen));
  layers = register_module("layers", std::make_shared<ModuleList>());
  for (std::int64_t i = 0; i < config_.n_layers; ++i) layers->push_back(std::make_shared<Block>(config_, i, &gen));
  norm = register_module("norm", make_norm(config_.norm, config_.d_model, config_.bias));
  if (!config_.tie_weights)
    head = register_module("head", std::make_shared<Linear>(config_.d_model, config_.vocab_size, false, &gen));
  init_weights(gen);
}

void LanguageModel::init_weights(Generator& gen) {
  NoGradGuard no_grad;
  const double std_resid = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.n_layers));
  std::vector<std::string> own_init;  // name prefixes of the layers whose initialisation is part of the technique
  for (std::size_t i = 0; i < layers->size(); ++i) {
    const auto& block = *layers->at<Block>(i);
    if (block.mixer->keeps_own_init()) own_init.push_back(fmt::format("layers.{}.mixer.", i));
    if (block.channel_mix && block.channel_mix->keeps_own_init()) own_init.push_back(fmt::format("layers.{}.ffn.", i));
  }
  for (auto& [name, m] : named_modules()) {
    if (std::any_of(own_init.begin(), own_init.end(), [&](const std::string& p) { return name.starts_with(p); }))
      continue;
    const bool residual = name.ends_with("o_proj") || name.ends_with("down_proj");
    if (auto* lin = dynamic_cast<Linear*>(m.get())) {
      raw::copy_(lin->weight, randn(lin->weight.shape(), DType::Float32, Device::cpu(), 0.0,
                                    residual ? std_resid : 0.02, &gen));
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* emb = dynamic_cast<Embedding*>(m.get())) {
      raw::copy_(emb->weight, randn(emb->weight.shape(), DType::Float32, Device::cpu(), 0.0, 0.02, &gen));
    }
  }
}

Tensor LanguageModel::embed(const Tensor& ids, std::int64_t start) const {
  const std::int64_t T = ids.shape().back();
  EMBER_CHECK(start + T <= config_.max_len, fmt::format("LanguageModel: positions {}..{} exceed max_len {}", start,
                                                        start + T - 1, config_.max_len));
  Tensor h = tok_emb->forward(ids);
  if (pos_emb) h = h + embedding(arange(static_cast<double>(start), static_cast<double>(start + T)), pos_emb->weight);
  return h;
}

Tensor LanguageModel::embed_at(const Tensor& ids, const Tensor& positions) const {
  Tensor h = tok_emb->forward(ids);
  if (pos_emb) h = h + embedding(positions, pos_emb->weight);
  return h;
}

Tensor LanguageModel::trunk(const Tensor& ids) {
  EMBER_CHECK(ids.dim() == 2 && ids.dtype() == DType::Int64,
              "LanguageModel: expected ids [B, T] Int64, got " + dtype_name(ids.dtype()) + " " + shape_str(ids.shape()));
  Tensor h = dropout(embed(ids, 0), config_.dropout, is_training());
  for (std::size_t i = 0; i < layers->size(); ++i) h = (*layers)[i]->forward(h);
  return h;
}

Tensor LanguageModel::final_norm(const Tensor& z) const { return norm->forward(z); }

Tensor LanguageModel::hidden(const Tensor& ids) { return final_norm(trunk(ids)); }

Tensor LanguageModel::logits(const Tensor& h) const {
  return head ? head->forward(h) : linear(h, tok_emb->weight);
}

Tensor LanguageModel::forward(const Tensor& ids) { return logits(hidden(ids)); }

LanguageModelState LanguageModel::init_state(std::int64_t batch, std::int64_t max_len) const {
  LanguageModelState state;
  const std::int64_t len = max_len > 0 ? std::min(max_len, config_.max_len) : config_.max_len;
  for (std::size_t i = 0; i < layers->size(); ++i) {
    const auto& block = *layers->at<Block>(i);
    state.layers.push_back(block.mixer->init_state(batch, len));
    state.ffn.push_back(block.channel_mix ? block.channel_mix->init_state(batch, len) : nullptr);
  }
  return state;
}

Tensor LanguageModel::step(const Tensor& ids_t, LanguageModelState& state) const {
  NoGradGuard no_grad;
  return logits(final_norm(step_trunk(ids_t, state)));
}

Tensor LanguageModel::step_trunk(const Tensor& ids_t, LanguageModelState& state) const {
  NoGradGuard no_grad;
  EMBER_CHECK(state.pending == 0, "LanguageModel::step: accept() the verified tokens first");
  EMBER_CHECK(ids_t.dim() == 1 && ids_t.dtype() == DType::Int64 && state.layers.size() == layers->size() &&
                  state.ffn.size() == layers->size(),
              "LanguageModel::step: expected ids_t [B] Int64 and a state from init_state, got " +
                  dtype_name(ids_t.dtype()) + " " + shape_str(ids_t.shape()));
  Tensor h = squeeze(embed(unsqueeze(ids_t, 1), state.position), {1});
  for (std::size_t i = 0; i < layers->size(); ++i)
    h = layers->at<Block>(i)->step(h, *state.layers[i], state.ffn[i].get());
  ++state.position;
  return h;
}

bool LanguageModel::supports_tree() const {
  for (std::size_t i = 0; i < layers->size(); ++i) {
    const auto& block = *layers->at<Block>(i);
    if (!block.mixer->supports_tree() || block.channel_mix) return false;
  }
  return true;
}

Tensor LanguageModel::verify(const std::vector<std::int64_t>& tokens, const Tensor& tree_mask, const Tensor& depth,
                             LanguageModelState& state) const {
  NoGradGuard no_grad;
  const auto n = static_cast<std::int64_t>(tokens.size());
  EMBER_CHECK(n > 0 && tree_mask.shape() == (Shape{n, n}) && tree_mask.dtype() == DType::Bool &&
                  depth.shape() == Shape{n} && depth.dtype() == DType::Int64,
              fmt::format("LanguageModel::verify: expected {} tokens with tree_mask [{}, {}] Bool and depth [{}] "
                          "Int64, got tree_mask {} {} and depth {} {}",
                          n, n, n, n, dtype_name(tree_mask.dtype()), shape_str(tree_mask.shape()),
                          dtype_name(depth.dtype()), shape_str(depth.shape())));
  EMBER_CHECK(state.layers.size() == layers->size() && state.pending == 0,
              "LanguageModel::verify: needs a state from init_state, with the last verify() accepted");
  for (std::int64_t id : tokens)
    EMBER_CHECK(id >= 0 && id < config_.vocab_size,
                fmt::format("LanguageModel::verify: token {} out of range for vocabulary {}", id, config_.vocab_size));
  const std::int64_t deepest = max(depth).to_vector<std::int64_t>()[0];
  EMBER_CHECK(depth.to_vector<std::int64_t>()[0] == 0 && state.position + deepest < config_.max_len,
              fmt::format("LanguageModel::verify: the root must be at depth 0 and positions {}..{} within max_len {}",
                          state.position, state.position + deepest, config_.max_len));
  EMBER_CHECK(is_chain(tree_mask, depth) || supports_tree(),
              "LanguageModel::verify: this model verifies chains only (a mixer without tree attention, or RWKV's "
              "channel mix); got a tree of " + std::to_string(n) + " tokens");
  const Tensor positions = add(depth, scalar_tensor(static_cast<double>(state.position), DType::Int64));
  Tensor h = embed_at(from_vector(tokens, {1, n}), positions);
  state.pending_layers.clear();
  state.pending_ffn.clear();
  state.pending_layers.resize(layers->size());
  state.pending_ffn.resize(layers->size());
  for (std::size_t i = 0; i < layers->size(); ++i)
    h = layers->at<Block>(i)->verify(h, tree_mask, depth, *state.layers[i], state.ffn[i].get(),
                                     state.pending_layers[i], state.pending_ffn[i]);
  state.pending = n;
  return select(h, 0, 0);
}

void LanguageModel::accept(LanguageModelState& state, const std::vector<std::int64_t>& path) const {
  const auto m = static_cast<std::int64_t>(path.size());
  EMBER_CHECK(state.pending > 0 && m > 0 && m <= state.pending && path[0] == 0,
              fmt::format("LanguageModel::accept: expected a path from token 0 of at most {} verified tokens, got {} "
                          "tokens",
                          state.pending, m));
  for (std::int64_t j = 1; j < m; ++j)
    EMBER_CHECK(path[j] > path[j - 1] && path[j] < state.pending,
                fmt::format("LanguageModel::accept: path entry {} ({}) must follow {} and be below {}", j, path[j],
                            path[j - 1], state.pending));
  for (std::size_t i = 0; i < layers->size(); ++i) {
    const auto& block = *layers->at<Block>(i);
    if (block.mixer->supports_tree()) {
      block.mixer->accept_tree(*state.layers[i], path);
    } else {
      EMBER_CHECK(path.back() == m - 1, "LanguageModel::accept: a chain layer keeps a prefix 0..m−1 only");
      state.layers[i] = std::move(state.pending_layers[i][m - 1]);
    }
    if (block.channel_mix) state.ffn[i] = std::move(state.pending_ffn[i][m - 1]);
  }
  state.pending_layers.clear();
  state.pending_ffn.clear();
  state.pending = 0;
  state.position += m;
}

std::vector<std::int64_t> LanguageModel::generate(const std::vector<std::int64_t>& prompt,
                                                  const GenerateOptions& options) const {
  EMBER_CHECK(!prompt.empty(), "generate: the prompt is empty");
  for (std::int64_t id : prompt)
    EMBER_CHECK(id >= 0 && id < config_.vocab_size,
                fmt::format("generate: token {} out of range for vocabulary {}", id, config_.vocab_size));
  const std::int64_t total = static_cast<std::int64_t>(prompt.size()) + options.max_new_tokens;
  EMBER_CHECK(total <= config_.max_len, fmt::format("generate: prompt ({}) + max_new_tokens ({}) exceeds max_len {}",
                                                    prompt.size(), options.max_new_tokens, config_.max_len));
  Generator gen(options.seed);
  LanguageModelState state = init_state(1, total);
  std::vector<std::int64_t> out = prompt;
  Tensor logits;
  for (std::int64_t id : prompt) logits = step(from_vector(std::vector<std::int64_t>{id}, {1}), state);
  for (std::int64_t i = 0; i < options.max_new_tokens; ++i) {
    const std::int64_t next = sample_token(select(logits, 0, 0), options, gen);
    out.push_back(next);
    if (next == options.stop_token || i + 1 == options.max_new_tokens) break;
    logits = step(from_vector(std::vector<std::int64_t>{next}, {1}), state);
  }
  return out;
}

double LanguageModel::training_flops(std::int64_t batch, std::int64_t seq_len) const {
  double weights = static_cast<double>(num_parameters() - tok_emb->weight.numel());
  if (pos_emb) weights -= static_cast<double>(pos_emb->weight.numel());
  if (!head) weights += static_cast<double>(tok_emb->weight.numel());  // the tied head is a product too
  const double tokens = static_cast<double>(batch * seq_len);
  return tokens * (6.0 * weights + 12.0 * static_cast<double>(config_.n_layers * seq_len * config_.d_model));
}

std::string LanguageModel::extra_repr() const {
  return fmt::format("vocab={}, d_model={}, layers={}, positions={}{}", config_.vocab_size, config_.d_model,
                     config_.n_layers, config_.positions, config_.tie_weights ? ", tied" : "");
}

std::int64_t sample_token(const Tensor& logits, const GenerateOptions& o, Generator& gen) {
  EMBER_CHECK(logits.dim() == 1 && logits.numel() > 0, "sample_token: expected logits [V], got " +
                                                           shape_str(logits.shape()));
  EMBER_CHECK(o.temperature >= 0.0 && o.top_k >= 0 && o.top_p > 0.0 && o.top_p <= 1.0,
              fmt::format("sample_token: need temperature >= 0, top_k >= 0, top_p in (0, 1], got {}, {}, {}",
                          o.temperature, o.top_k, o.top_p));
  const std::vector<double> z = logits.to_vector<double>();
  const auto V = static_cast<std::int64_t>(z.size());
  if (o.temperature == 0.0) return std::max_element(z.begin(), z.end()) - z.begin();
  // Candidates by decreasing logit; keep the top k, then the smallest prefix with mass >= top_p.
  std::vector<std::int64_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return z[a] > z[b]; });
  const std::int64_t k = o.top_k > 0 ? std::min(o.top_k, V) : V;
  std::vector<double> p(k);
  double total = 0;
  for (std::int64_t i = 0; i < k; ++i) total += p[i] = std::exp((z[order[i]] - z[order[0]]) / o.temperature);
  std::int64_t keep = 0;
  for (double mass = 0; keep < k && (keep == 0 || mass < o.top_p * total); ++keep) mass += p[keep];
  const double kept = std::accumulate(p.begin(), p.begin() + keep, 0.0);
  const double u = rand({1}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).item() * kept;
  double acc = 0;
  for (std::int64_t i = 0; i < keep; ++i)
    if ((acc += p[i]) > u) return order[i];
  return order[keep - 1];
}

}  // namespace ember::nn
