/// \file
/// \brief nn::MultiHeadAttention: forward against a per-head double loop (with and without RoPE), the
/// mixer contract (stepping t = 0..T−1 with the KV cache equals forward, technique notes §14 oracle 1),
/// causality, a full cache, bad shapes, and the mixer registry.
#include "layers/attention/multi_head_attention.h"
#include "layers/functional.h"
#include "layer_helpers.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;

namespace {

nn::MixerConfig config(std::int64_t d_model, std::int64_t heads, bool rope, bool bias = true, std::int64_t max_len = 16) {
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = heads;
  c.rope = rope;
  c.bias = bias;
  c.max_len = max_len;
  return c;
}

ref::MhaWeights weights_of(const nn::MultiHeadAttention& m) {
  return {vec(m.q_proj->weight), vec(m.q_proj->bias), vec(m.k_proj->weight), vec(m.k_proj->bias),
          vec(m.v_proj->weight), vec(m.v_proj->bias), vec(m.o_proj->weight), vec(m.o_proj->bias)};
}

/// Steps through x [B, T, D] one position at a time from a fresh state -> [B, T, D].
Tensor step_all(const nn::MultiHeadAttention& m, const Tensor& x, std::int64_t cache_len) {
  const std::int64_t B = x.shape()[0], T = x.shape()[1];
  auto state = m.init_state(B, cache_len);
  std::vector<Tensor> ys;
  for (std::int64_t t = 0; t < T; ++t) {
    CHECK(state->position == t);
    ys.push_back(m.step(select(x, 1, t), *state));
  }
  CHECK(state->position == T);
  return stack(ys, 1);
}

}  // namespace

TEST_CASE("MultiHeadAttention: forward against the per-head loop, RoPE on and off, Float64 and Float32") {
  for (bool rope : {false, true})
    for (bool bias : {true, false})
      for (DType dtype : {DType::Float64, DType::Float32}) {
        CAPTURE(rope);
        CAPTURE(bias);
        CAPTURE(dtype_name(dtype));
        nn::MultiHeadAttention m(config(12, 3, rope, bias));
        m.to(dtype);
        randomize(m, 3);
        const Tensor x = normal({2, 6, 12}, 4, dtype);
        const Tensor y = m(x);
        REQUIRE(y.shape() == Shape{2, 6, 12});
        CHECK(y.dtype() == dtype);
        CHECK(ref::max_diff(vec(y), ref::mha(vec(x), 2, 6, 12, 3, weights_of(m), rope)) <
              (dtype == DType::Float64 ? 1e-12 : 1e-5));
      }
}

TEST_CASE("MultiHeadAttention: RoPE uses the configured base") {
  auto c = config(8, 2, true);
  c.rope_base = 50.0;
  nn::MultiHeadAttention m(c);
  m.to(DType::Float64);
  randomize(m, 5);
  const Tensor x = normal({1, 5, 8}, 6);
  CHECK(ref::max_diff(vec(m(x)), ref::mha(vec(x), 1, 5, 8, 2, weights_of(m), true, 50.0)) < 1e-12);
  CHECK(ref::max_diff(vec(m(x)), ref::mha(vec(x), 1, 5, 8, 2, weights_of(m), true, 10000.0)) > 1e-3);
}

TEST_CASE("MultiHeadAttention: stepping with the KV cache equals forward (B = 2, RoPE on and off)") {
  for (bool rope : {false, true}) {
    CAPTURE(rope);
    nn::MultiHeadAttention m(config(12, 3, rope, true, 16));
    randomize(m, 7);
    const Tensor x32 = normal({2, 9, 12}, 8, DType::Float32);
    // Float32 at 1e-5, and with a cache longer than needed or exactly T long.
    for (std::int64_t cache_len : {16, 9}) CHECK(max_abs_diff(step_all(m, x32, cache_len), m(x32)) < 1e-5);
    // Float64 at 1e-10.
    m.to(DType::Float64);
    const Tensor x64 = x32.to(DType::Float64);
    CHECK(max_abs_diff(step_all(m, x64, 16), m(x64)) < 1e-10);
    // The cache holds Float64 too after to(Float64).
    auto state = m.init_state(2, 4);
    auto* cache = dynamic_cast<nn::KVCache*>(state.get());
    REQUIRE(cache != nullptr);
    CHECK(cache->k.dtype() == DType::Float64);
    CHECK(cache->k.shape() == Shape{2, 3, 4, 4});
  }
}

TEST_CASE("MultiHeadAttention: step records no graph even when the weights require grad") {
  nn::MultiHeadAttention m(config(8, 2, false));
  auto state = m.init_state(1, 4);
  const Tensor y = m.step(normal({1, 8}, 1, DType::Float32), *state);
  CHECK(y.shape() == Shape{1, 8});
  CHECK_FALSE(y.requires_grad());
  CHECK(m(normal({1, 2, 8}, 1, DType::Float32)).requires_grad());
}

TEST_CASE("MultiHeadAttention: causal — changing x at position t changes no output before t") {
  for (bool rope : {false, true}) {
    nn::MultiHeadAttention m(config(8, 2, rope));
    m.to(DType::Float64);
    randomize(m, 9);
    const Tensor x = normal({2, 7, 8}, 10);
    const Tensor y = m(x);
    for (std::int64_t t : {0, 3, 6}) {
      CAPTURE(rope);
      CAPTURE(t);
      Tensor x2 = x.clone();
      {
        Tensor row = narrow(x2, 1, t, 1);
        row.copy_(normal({2, 1, 8}, 11 + static_cast<std::uint64_t>(t)));
      }
      const Tensor y2 = m(x2);
      if (t > 0) CHECK(max_abs_diff(narrow(y2, 1, 0, t), narrow(y, 1, 0, t)) < 1e-14);
      CHECK(max_abs_diff(narrow(y2, 1, t, 1), narrow(y, 1, t, 1)) > 1e-3);
    }
  }
}

TEST_CASE("MultiHeadAttention: a full KV cache and positions past the RoPE tables are clear errors") {
  nn::MultiHeadAttention m(config(8, 2, false));
  auto state = m.init_state(2, 3);
  for (int t = 0; t < 3; ++t) m.step(normal({2, 8}, 1, DType::Float32), *state);
  CHECK_THROWS_EMBER(m.step(normal({2, 8}, 1, DType::Float32), *state), "KV cache is full (3 tokens)");
  CHECK(state->position == 3);
  // RoPE tables cover config.max_len positions.
  nn::MultiHeadAttention r(config(8, 2, true, true, 4));
  CHECK_THROWS_EMBER(r(normal({1, 5, 8}, 1, DType::Float32)), "exceed");
  CHECK(r(normal({1, 4, 8}, 1, DType::Float32)).shape() == Shape{1, 4, 8});
}

TEST_CASE("MultiHeadAttention: bad shapes and configs throw ember::Error naming them") {
  nn::MultiHeadAttention m(config(8, 2, false));
  CHECK_THROWS_EMBER(m(normal({2, 5, 6}, 1, DType::Float32)), "[2, 5, 6]");
  CHECK_THROWS_EMBER(m(normal({5, 8}, 1, DType::Float32)), "[5, 8]");
  auto state = m.init_state(2, 4);
  CHECK_THROWS_EMBER(m.step(normal({3, 8}, 1, DType::Float32), *state), "[3, 8]");
  CHECK_THROWS_EMBER(m.step(normal({2, 1, 8}, 1, DType::Float32), *state), "[2, 1, 8]");
  CHECK(state->position == 0);
  ForeignState foreign;
  CHECK_THROWS_EMBER(m.step(normal({2, 8}, 1, DType::Float32), foreign), "init_state");
  CHECK_THROWS_EMBER(m.init_state(0, 4), "batch");
  CHECK_THROWS_EMBER(nn::MultiHeadAttention(config(10, 3, false)), "d_model 10 is not divisible into 3 heads");
  CHECK_THROWS_EMBER(nn::MultiHeadAttention(config(8, 0, false)), "heads");
  // RoPE needs an even head dim.
  CHECK_THROWS_AS(nn::MultiHeadAttention(config(6, 2, true)), Error);
}

TEST_CASE("MultiHeadAttention: parameters, names and printed form") {
  nn::MultiHeadAttention m(config(8, 2, true, false));
  std::vector<std::string> names;
  for (const auto& [n, p] : m.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight"});
  CHECK(m.num_parameters() == 4 * 8 * 8);
  // RoPE tables are non-persistent buffers: listed as buffers but not saved.
  CHECK(m.named_buffers().size() == 2);
  CHECK(m.state_dict().size() == 4);
  CHECK(m.str().starts_with("MultiHeadAttention(d_model=8, heads=2, rope)  [256 params]\n"));
}

TEST_CASE("make_mixer: 'softmax' makes a MultiHeadAttention, unknown names list the known ones") {
  auto c = config(8, 2, false);
  auto mixer = nn::make_mixer("softmax", c);
  REQUIRE(mixer != nullptr);
  CHECK(dynamic_cast<nn::MultiHeadAttention*>(mixer.get()) != nullptr);
  CHECK(mixer->type_name() == "MultiHeadAttention");
  const auto names = nn::mixer_names();
  CHECK(std::find(names.begin(), names.end(), "softmax") != names.end());
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK_THROWS_EMBER(nn::make_mixer("nope", c), "unknown mixer 'nope'");
  CHECK_THROWS_EMBER(nn::make_mixer("nope", c), "softmax");
  // The config's generator decides the weights: same seed, same weights.
  Generator g1(3), g2(3);
  c.gen = &g1;
  auto a = nn::make_mixer("softmax", c);
  c.gen = &g2;
  auto b = nn::make_mixer("softmax", c);
  for (std::size_t i = 0; i < a->parameters().size(); ++i)
    CHECK(vec(a->parameters()[i]) == vec(b->parameters()[i]));
  nn::MixerConfig opts;
  opts.options["chunk"] = 16;
  CHECK(opts.option("chunk", 1) == 16);
  CHECK(opts.option("d_state", 7) == 7);
}
