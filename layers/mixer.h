/// \file
/// \brief nn::SequenceMixer, the interface of every token mixer, and the registry that makes mixers by name.
///
/// A mixer maps x [B, T, D] to y [B, T, D] causally: y_t depends on x_0..x_t only. Besides the parallel
/// `forward` used in training, it decodes one token at a time: `init_state(B, max_len)` then
/// `step(x_t, state)` for t = 0, 1, ... (a KV cache for softmax attention, a fixed-size state for linear
/// attention and SSMs). The contract, tested for every mixer: stepping through t = 0..T−1 gives the
/// outputs of `forward`.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/philox.h"
#include "layers/module.h"

namespace ember::nn {

/// What every mixer is built from; options specific to one mixer go in `options` by name.
struct MixerConfig {
  std::int64_t d_model = 128;     ///< D
  std::int64_t n_heads = 4;       ///< H (mixers with heads)
  std::int64_t max_len = 1024;    ///< the longest sequence (KV cache size, RoPE tables)
  bool rope = false;              ///< rotary position embedding on queries and keys
  double rope_base = 10000.0;     ///< RoPE's base
  bool bias = true;               ///< biases in projections
  std::map<std::string, double> options;  ///< mixer-specific settings (e.g. "chunk", "d_state")
  Generator* gen = nullptr;       ///< where initial weights are drawn from (default generator if null)
  mutable std::set<std::string> asked;  ///< every name option() was called with (to catch misspelt options)
  /// options[name] or `fallback` when absent; records `name` in `asked`.
  double option(const std::string& name, double fallback) const;
};

/// A mixer's decoding state (subclasses hold the KV cache or the recurrent state).
struct MixerState {
  virtual ~MixerState() = default;
  std::int64_t position = 0;  ///< how many tokens have been consumed
  /// A deep copy (every tensor copied, nothing shared): speculative decoding keeps one after each drafted token of
  /// a chain, to roll back to the accepted prefix.
  virtual std::unique_ptr<MixerState> clone() const = 0;
};

/// clone() for a state type S whose members `members` are its tensors: a copy of S with each of them copied.
template <class S, class... M>
std::unique_ptr<MixerState> clone_state(const S& state, M S::*... members) {
  auto copy = std::make_unique<S>(state);
  ((copy.get()->*members = (state.*members).defined() ? (state.*members).clone() : Tensor()), ...);
  return copy;
}

/// The base of every token mixer.
class SequenceMixer : public Module {
 public:
  /// A mixer named `type_name`.
  explicit SequenceMixer(std::string type_name) : Module(std::move(type_name)) {}
  /// x: [B, T, D] -> [B, T, D], causal.
  Tensor forward(const Tensor& x) override = 0;
  /// A fresh state for decoding `batch` sequences of up to max_len tokens.
  virtual std::unique_ptr<MixerState> init_state(std::int64_t batch, std::int64_t max_len) const = 0;
  /// x_t: [B, D] -> y_t: [B, D], the output at position state.position; advances the state.
  virtual Tensor step(const Tensor& x_t, MixerState& state) const = 0;
  /// True when the mixer's own initialisation is part of the technique (an SSM's step sizes and decays, RWKV's
  /// zero projections), so that LanguageModel keeps it instead of redrawing its Linear layers GPT-2 style.
  virtual bool keeps_own_init() const { return false; }

  /// True when verify_tree() works (softmax attention over a KV cache: "softmax", "flash_attention"). Mixers that
  /// cannot attend over a tree (recurrent state, local or sparse attention) verify a chain of drafted tokens by
  /// stepping, and are rolled back to the accepted prefix with MixerState::clone() (LanguageModel::verify).
  virtual bool supports_tree() const { return false; }
  /// Tree verification for speculative decoding (Medusa): x [B, n, D] are n drafted tokens after the consumed
  /// prefix, arranged as a tree. Token i sees the prefix and the drafted tokens j with tree_mask[i][j]
  /// (tree_mask [n, n] Bool: itself and its ancestors) and sits at position state.position + depth[i] (depth [n]
  /// Int64). Returns [B, n, D], each token's output as if its root-to-token path had been stepped. Keeps what the
  /// tokens leave in the state (their keys and values) without advancing state.position. Records no gradients.
  /// Throws ember::Error unless supports_tree().
  virtual Tensor verify_tree(const Tensor& x, const Tensor& tree_mask, const Tensor& depth, MixerState& state) const;
  /// After verify_tree(): keeps the verified tokens `path` (indices in [0, n), a root-to-node path in order) as the
  /// next path.size() positions and advances state.position by that many. Throws ember::Error unless
  /// supports_tree().
  virtual void accept_tree(MixerState& state, const std::vector<std::int64_t>& path) const;
};

/// True when tree_mask [n, n] is lower-triangular ones and depth [n] = 0..n−1: the tree is a chain of n tokens.
bool is_chain(const Tensor& tree_mask, const Tensor& depth);

/// Makes a mixer from a config.
using MixerFactory = std::function<std::shared_ptr<SequenceMixer>(const MixerConfig&)>;

/// The mixer registered as `name` (e.g. "softmax"); throws listing the known names otherwise.
std::shared_ptr<SequenceMixer> make_mixer(const std::string& name, const MixerConfig& config);
/// The registered names, sorted.
std::vector<std::string> mixer_names();

}  // namespace ember::nn
