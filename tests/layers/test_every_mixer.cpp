/// \file
/// \brief The contract of every registered mixer, checked by name over the whole registry, so a new mixer
/// is covered the moment it is registered: step-by-step decoding equals forward (Float64 and Float32, with
/// and without RoPE, across chunk and block boundaries), causal leakage, Float64 gradcheck, and use inside
/// a LanguageModel (decoding equals forward, a training step lowers the loss).
#include <doctest/doctest.h>

#include "layers/mixer.h"
#include "layer_helpers.h"
#include "train/loss.h"

using namespace ember;
using namespace ember::test;

namespace {

/// Small sizes where every chunk, block, stride and window boundary is crossed within T = 11 tokens. One option
/// map serves all mixers; each reads the names it knows.
nn::MixerConfig small_config(std::int64_t d_model, bool rope) {
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = 2;
  c.max_len = 16;
  c.rope = rope;
  c.options = {{"chunk", 3}, {"block", 2}, {"stride", 4}, {"summary", 2}, {"features", 6},
               {"shared", 4},  {"expansion", 1}, {"d_state", 4}};
  return c;
}

/// The mixers that convolve by FFT, whose causality holds up to roundoff; attention and scans are exactly causal.
const std::set<std::string>& fft_mixers() {
  static const std::set<std::string> names = {"s4d", "s4", "lru"};
  return names;
}

/// Every registered mixer, built by name from `small_config`.
std::vector<std::pair<std::string, std::shared_ptr<nn::SequenceMixer>>> every_mixer(std::int64_t d_model, bool rope) {
  std::vector<std::pair<std::string, std::shared_ptr<nn::SequenceMixer>>> all;
  for (const std::string& name : nn::mixer_names()) all.emplace_back(name, nn::make_mixer(name, small_config(d_model, rope)));
  return all;
}

}  // namespace

TEST_CASE("every mixer: the registry holds the issue's names, and options it does not read are reported") {
  const std::vector<std::string> names = nn::mixer_names();
  for (const char* n : {"softmax", "flash_attention", "linear", "performer", "sparse", "gau", "mixed_chunk",
                        "norm_attention", "diag_attention"}) {
    CAPTURE(n);
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  }
  nn::MixerConfig c = small_config(8, false);
  nn::make_mixer("linear", c);
  CHECK(c.asked == std::set<std::string>{"chunk"});
}

TEST_CASE("every mixer: step through the sequence equals forward (f64 1e-10, f32 1e-5, RoPE on and off)") {
  for (bool rope : {false, true}) {
    for (auto& [name, m] : every_mixer(8, rope)) {
      CAPTURE(name);
      CAPTURE(rope);
      randomize(*m, 11);
      const Tensor x32 = normal({2, 11, 8}, 12, DType::Float32);
      CHECK(max_abs_diff(step_all(*m, x32), m->forward(x32)) < 1e-5);
      m->to(DType::Float64);
      const Tensor x = normal({2, 11, 8}, 12);
      const Tensor y = m->forward(x);
      CHECK(y.shape() == Shape{2, 11, 8});
      CHECK(max_abs_diff(step_all(*m, x), y) < 1e-10);
    }
  }
}

TEST_CASE("every mixer: changing input t changes no earlier output, and output t itself") {
  for (auto& [name, m] : every_mixer(8, true)) {
    CAPTURE(name);
    prepare_f64(*m, 21);
    const double tolerance = fft_mixers().count(name) ? kFftRoundoff : 0.0;
    CHECK(check_causal(*m, normal({2, 11, 8}, 22), tolerance) >= 9);  // of 11; relu² (gau, mixed_chunk) may clip a token's own score to zero
  }
}

TEST_CASE("every mixer: gradcheck in Float64, T = 7") {
  for (auto& [name, m] : every_mixer(4, true)) {
    CAPTURE(name);
    prepare_f64(*m, 31);
    check_mixer_gradcheck(*m, normal({2, 7, 4}, 32));
  }
}

TEST_CASE("every mixer: inside a LanguageModel, decoding equals forward and one gradient step lowers the loss") {
  for (const std::string& name : nn::mixer_names()) {
    CAPTURE(name);
    nn::LanguageModelConfig c;
    c.vocab_size = 11;
    c.d_model = 8;
    c.n_heads = 2;
    c.n_layers = 2;
    c.max_len = 16;
    c.positions = "rope";
    c.mixers = {name};
    c.mixer_options = small_config(8, true).options;
    c.seed = 3;
    nn::LanguageModel lm(c);
    lm.to(DType::Float64);
    const Tensor ids = from_vector(std::vector<std::int64_t>{1, 4, 4, 9, 0, 10, 2, 7, 3, 3, 5, 8, 6, 1, 0, 2, 9, 9},
                                   {2, 9});
    CHECK(max_abs_diff(step_all(lm, ids), lm(ids)) < 1e-10);

    // Next-token loss on the same batch before and after one small gradient step along -grad.
    const Tensor inputs = narrow(ids, 1, 0, 8), targets = narrow(ids, 1, 1, 8).contiguous();
    const auto loss_of = [&] { return cross_entropy(reshape(lm(inputs), {16, 11}), reshape(targets, {16})); };
    const Tensor loss = loss_of();
    loss.backward();
    {
      NoGradGuard no_grad;
      for (auto& [pname, p] : lm.named_parameters()) {
        Tensor handle = p;
        handle.copy_(p - p.grad() * 0.05);
      }
    }
    CHECK(loss_of().item() < loss.item());
  }
}
