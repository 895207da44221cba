/// \file
/// \brief Speculative verification (LanguageModel::verify / accept, SequenceMixer::verify_tree / accept_tree,
/// MixerState::clone): the tree pass equals stepping each root-to-node path on its own, the KV cache after accept
/// equals the cache of stepping the accepted tokens, chains verify on every mixer and roll back exactly, and a
/// cloned state is independent of the original.
#include <map>

#include "layer_helpers.h"
#include "layers/decoding/medusa_tree.h"
#include "layers/models/language_model.h"

using namespace ember;
using namespace ember::test;

namespace {

/// A small Float64 model with random O(1) weights (attention far from uniform), over mixer `mixer`.
std::shared_ptr<nn::LanguageModel> make_model(const std::string& mixer, const std::string& positions = "learned",
                             const std::string& mlp = "gelu") {
  nn::LanguageModelConfig c;
  c.vocab_size = 13;
  c.d_model = 16;
  c.n_layers = 2;
  c.n_heads = 2;
  c.max_len = 40;
  c.positions = positions;
  c.mixers = {mixer};
  c.mlp = mlp;
  c.mixer_options = {{"chunk", 4}, {"block", 4}};
  if (mixer == "sparse") c.mixer_options = {{"block", 4}, {"pattern", 1}, {"local_blocks", 2}};
  c.seed = 3;
  auto lm = std::make_shared<nn::LanguageModel>(c);
  randomize(*lm, 11);
  lm->to(DType::Float64);
  return lm;
}

/// A state that has consumed `prefix`.
nn::LanguageModelState after(const nn::LanguageModel& lm, const std::vector<std::int64_t>& prefix) {
  nn::LanguageModelState s = lm.init_state(1);
  for (std::int64_t id : prefix) lm.step_trunk(from_vector(std::vector<std::int64_t>{id}, {1}), s);
  return s;
}

/// z of the last token after stepping prefix + path (the value verify must give at the path's end).
Tensor z_after(const nn::LanguageModel& lm, const std::vector<std::int64_t>& prefix,
               const std::vector<std::int64_t>& path) {
  nn::LanguageModelState s = after(lm, prefix);
  Tensor z;
  for (std::int64_t id : path) z = lm.step_trunk(from_vector(std::vector<std::int64_t>{id}, {1}), s);
  return select(z, 0, 0);
}

/// The chain of n tokens: lower-triangular mask, depth 0..n−1.
std::pair<Tensor, Tensor> chain(std::int64_t n) {
  return {tril(ones({n, n}, DType::Bool)), arange(0.0, static_cast<double>(n), 1.0, DType::Int64)};
}

const std::vector<std::int64_t> kPrefix = {3, 7, 1, 12, 5};

}  // namespace

TEST_CASE("verify: the tree pass equals stepping each root-to-node path, for softmax and flash attention") {
  const decoding::MedusaTree tree({{0}, {1}, {0, 0}, {0, 1}, {1, 0}, {0, 0, 0}, {1, 0, 0}}, 2);
  const std::vector<std::int64_t> tokens = {4, 9, 2, 6, 11, 0, 8, 3};  // node i's token
  for (const std::string mixer : {"softmax", "flash_attention"})
    for (const std::string positions : {"learned", "rope"}) {
      CAPTURE(mixer);
      CAPTURE(positions);
      const auto model = make_model(mixer, positions);
      const nn::LanguageModel& lm = *model;
      REQUIRE(lm.supports_tree());
      nn::LanguageModelState s = after(lm, kPrefix);
      const Tensor z = lm.verify(tokens, tree.attention_mask, tree.depth, s);
      REQUIRE(z.shape() == (Shape{8, 16}));
      double worst = 0;
      for (std::int64_t node = 0; node < tree.num_nodes(); ++node) {
        std::vector<std::int64_t> path;  // the node's tokens from the root
        for (std::int64_t i = node; i >= 0; i = tree.parent[i]) path.insert(path.begin(), tokens[i]);
        worst = std::max(worst, max_abs_diff(select(z, 0, node), z_after(lm, kPrefix, path)));
      }
      CHECK(worst < 1e-12);
    }
}

TEST_CASE("accept: the KV cache after accepting a path equals the cache of stepping its tokens") {
  const decoding::MedusaTree tree({{0}, {1}, {0, 0}, {0, 1}, {1, 0}, {1, 0, 0}}, 2);
  const std::vector<std::int64_t> tokens = {4, 9, 2, 6, 11, 0, 8};
  for (const std::string mixer : {"softmax", "flash_attention"}) {
    CAPTURE(mixer);
    const auto model = make_model(mixer, "rope");
    const nn::LanguageModel& lm = *model;
    nn::LanguageModelState s = after(lm, kPrefix);
    lm.verify(tokens, tree.attention_mask, tree.depth, s);
    const std::vector<std::int64_t> path = {0, 2, 5, 6};  // root -> {1} -> {1,0} -> {1,0,0}
    lm.accept(s, path);
    std::vector<std::int64_t> accepted = kPrefix;
    for (std::int64_t node : path) accepted.push_back(tokens[node]);
    nn::LanguageModelState plain = after(lm, accepted);
    CHECK(s.position == plain.position);
    const std::int64_t used = static_cast<std::int64_t>(accepted.size());
    for (std::size_t l = 0; l < 2; ++l) {
      const auto& a = dynamic_cast<const nn::KVCache&>(*s.layers[l]);
      const auto& b = dynamic_cast<const nn::KVCache&>(*plain.layers[l]);
      CHECK(a.position == used);
      CHECK(max_abs_diff(narrow(a.k, 2, 0, used), narrow(b.k, 2, 0, used)) < 1e-13);
      CHECK(max_abs_diff(narrow(a.v, 2, 0, used), narrow(b.v, 2, 0, used)) < 1e-13);
    }
    // Decoding goes on as if the path had been stepped.
    const Tensor next = from_vector(std::vector<std::int64_t>{10}, {1});
    CHECK(max_abs_diff(lm.step(next, s), lm.step(next, plain)) < 1e-12);
  }
}

TEST_CASE("verify: every mixer verifies a chain, and accepting a prefix rolls the state back exactly") {
  for (const std::string& mixer : nn::mixer_names()) {
    CAPTURE(mixer);
    const auto model = make_model(mixer, "learned", mixer == "rwkv" ? "rwkv" : "gelu");
    const nn::LanguageModel& lm = *model;
    const std::vector<std::int64_t> drafted = {4, 9, 2, 6, 11};
    const auto [mask, depth] = chain(5);
    for (std::int64_t keep : {1, 3, 5}) {
      CAPTURE(keep);
      nn::LanguageModelState s = after(lm, kPrefix);
      const Tensor z = lm.verify(drafted, mask, depth, s);
      for (std::int64_t j = 0; j < 5; ++j)
        CHECK(max_abs_diff(select(z, 0, j), z_after(lm, kPrefix, {drafted.begin(), drafted.begin() + j + 1})) <
              1e-10);
      std::vector<std::int64_t> path(keep);
      for (std::int64_t j = 0; j < keep; ++j) path[j] = j;
      lm.accept(s, path);
      std::vector<std::int64_t> accepted = kPrefix;
      accepted.insert(accepted.end(), drafted.begin(), drafted.begin() + keep);
      nn::LanguageModelState plain = after(lm, accepted);
      const Tensor next = from_vector(std::vector<std::int64_t>{10}, {1});
      CHECK(max_abs_diff(lm.step(next, s), lm.step(next, plain)) < 1e-10);
    }
  }
}

TEST_CASE("verify: chain-only models reject trees, and misuse is reported") {
  const decoding::MedusaTree tree({{0}, {1}}, 2);
  for (const std::string mixer : {"retnet", "mamba", "diag_attention", "sparse", "linear"}) {
    CAPTURE(mixer);
    const auto model = make_model(mixer);
    const nn::LanguageModel& lm = *model;
    CHECK(!lm.supports_tree());
    nn::LanguageModelState s = after(lm, kPrefix);
    CHECK_THROWS_EMBER(lm.verify({1, 2, 3}, tree.attention_mask, tree.depth, s), "verifies chains only");
  }
  CHECK(!make_model("softmax", "learned", "rwkv")->supports_tree());  // RWKV's channel mix is recurrent
  const auto model = make_model("softmax");
  const nn::LanguageModel& lm = *model;
  nn::LanguageModelState s = after(lm, kPrefix);
  const auto [mask, depth] = chain(3);
  CHECK_THROWS_EMBER(lm.verify({1, 2}, mask, depth, s), "expected 2 tokens with tree_mask [2, 2]");
  CHECK_THROWS_EMBER(lm.verify({1, 99, 2}, mask, depth, s), "token 99 out of range");
  CHECK_THROWS_EMBER(lm.accept(s, {0}), "expected a path from token 0");
  lm.verify({1, 2, 3}, mask, depth, s);
  CHECK_THROWS_EMBER(lm.step(from_vector(std::vector<std::int64_t>{1}, {1}), s), "accept() the verified tokens first");
  CHECK_THROWS_EMBER(lm.verify({1, 2, 3}, mask, depth, s), "with the last verify() accepted");
  CHECK_THROWS_EMBER(lm.accept(s, {1, 2}), "expected a path from token 0");
  CHECK_THROWS_EMBER(lm.accept(s, {0, 2, 1}), "must follow");
  lm.accept(s, {0, 1});
  CHECK(s.position == static_cast<std::int64_t>(kPrefix.size()) + 2);
}

TEST_CASE("MixerState::clone: a deep copy that evolves independently of the original, for every mixer") {
  for (const std::string& name : nn::mixer_names()) {
    CAPTURE(name);
    nn::MixerConfig c;
    c.d_model = 8;
    c.n_heads = 2;
    c.max_len = 16;
    c.options = {{"chunk", 4}, {"block", 4}};
    if (name == "sparse") c.options = {{"block", 4}, {"pattern", 1}, {"local_blocks", 2}};
    auto m = nn::make_mixer(name, c);
    prepare_f64(*m, 5);
    const Tensor x = normal({1, 6, 8}, 9);
    auto state = m->init_state(1, 16);
    for (std::int64_t t = 0; t < 3; ++t) m->step(select(x, 1, t), *state);
    const auto copy = state->clone();
    std::vector<Tensor> first;
    for (std::int64_t t = 3; t < 6; ++t) first.push_back(m->step(select(x, 1, t), *state));
    CHECK(copy->position == 3);
    for (std::int64_t t = 3; t < 6; ++t)  // the copy replays the same outputs: it did not move with the original
      CHECK(max_abs_diff(m->step(select(x, 1, t), *copy), first[static_cast<std::size_t>(t - 3)]) == 0.0);
  }
}
