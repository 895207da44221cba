/// \file
/// \brief nn::LanguageModel: KV-cache decoding equals the full forward, causality, generate() against
/// argmax of forward recomputed from scratch, sample_token's distribution (softmax(z/T), top-k, top-p)
/// within 5 sigma, GPT-2 initialisation statistics, weight tying, and input checks.
#include <cmath>
#include <map>
#include <set>

#include "layers/models/language_model.h"
#include "layers/ssm/mamba.h"
#include "layers/norm.h"
#include "layer_helpers.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::softmax_of;
using ref::vec;

namespace {

nn::LanguageModelConfig small_config(const std::string& positions = "learned") {
  nn::LanguageModelConfig c;
  c.vocab_size = 11;
  c.d_model = 12;
  c.n_layers = 2;
  c.n_heads = 3;
  c.max_len = 16;
  c.positions = positions;
  c.seed = 5;
  return c;
}

Tensor ids_of(const std::vector<std::int64_t>& v, const Shape& s) { return from_vector(v, s); }

/// Draws `n` tokens from logits z with options o, one fresh generator (seed i) per draw -> counts per token.
std::vector<double> draw_counts(const Vec& z, const nn::GenerateOptions& o, int n) {
  const Tensor logits = from_vector(z, {static_cast<std::int64_t>(z.size())}, DType::Float64);
  std::vector<double> counts(z.size(), 0.0);
  for (int i = 0; i < n; ++i) {
    Generator gen(1000 + static_cast<std::uint64_t>(i));
    const std::int64_t k = nn::sample_token(logits, o, gen);
    REQUIRE(k >= 0);
    REQUIRE(k < static_cast<std::int64_t>(z.size()));
    counts[static_cast<std::size_t>(k)] += 1;
  }
  return counts;
}

/// Checks counts/n against the distribution p (p_i = 0 must never be drawn), each within 5 sigma.
void check_frequencies(const std::vector<double>& counts, const Vec& p, int n) {
  for (std::size_t i = 0; i < p.size(); ++i) {
    CAPTURE(i);
    CAPTURE(p[i]);
    if (p[i] == 0.0) {
      CHECK(counts[i] == 0.0);
    } else if (p[i] == 1.0) {
      CHECK(counts[i] == n);
    } else {
      const double f = counts[i] / n, sigma = std::sqrt(p[i] * (1 - p[i]) / n);
      CHECK(std::abs(f - p[i]) < 5 * sigma);
    }
  }
}

/// p restricted to the indices in `keep` and renormalised.
Vec restrict(const Vec& p, const std::vector<std::size_t>& keep) {
  Vec q(p.size(), 0.0);
  double s = 0;
  for (std::size_t i : keep) s += p[i];
  for (std::size_t i : keep) q[i] = p[i] / s;
  return q;
}

/// Sample standard deviation and mean of a tensor's values.
std::pair<double, double> mean_std(const Tensor& t) {
  const Vec v = vec(t);
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return {m, std::sqrt(s / static_cast<double>(v.size() - 1))};
}

}  // namespace

TEST_CASE("LanguageModel: stepping with KV caches equals forward (learned, rope, none, B = 2, f32 and f64)") {
  for (const char* positions : {"learned", "rope", "none"}) {
    for (bool alt : {false, true}) {
      CAPTURE(positions);
      CAPTURE(alt);
      auto c = small_config(positions);
      if (alt) {
        c.norm = "rmsnorm";
        c.mlp = "swiglu";
        c.tie_weights = true;
        c.bias = false;
      }
      nn::LanguageModel lm(c);
      randomize(lm, 3);
      const Tensor ids = ids_of({1, 4, 4, 9, 0, 10, 2, 7, 3, 3, 5, 8, 6, 1, 0, 2, 9, 9}, {2, 9});
      const Tensor full = lm(ids);
      REQUIRE(full.shape() == Shape{2, 9, 11});
      CHECK(max_abs_diff(step_all(lm, ids), full) < 1e-5);
      lm.to(DType::Float64);
      CHECK(max_abs_diff(step_all(lm, ids), lm(ids)) < 1e-10);
      // And the Float64 model agrees with the Float32 one.
      CHECK(max_abs_diff(lm(ids), full) < 1e-5);
    }
  }
}

TEST_CASE("LanguageModel: RWKV blocks (time mix and channel mix) decode step by step as forward, causally") {
  auto c = small_config("none");
  c.mixers = {"rwkv"};
  c.mlp = "rwkv";
  nn::LanguageModel lm(c);
  REQUIRE(lm.layers->at<nn::Block>(0)->channel_mix != nullptr);
  REQUIRE(lm.layers->at<nn::Block>(0)->mlp == nullptr);
  randomize(lm, 5);
  const Tensor ids = ids_of({1, 4, 4, 9, 0, 10, 2, 7, 3, 3, 5, 8, 6, 1, 0, 2, 9, 9}, {2, 9});
  const Tensor full = lm(ids);
  CHECK(max_abs_diff(step_all(lm, ids), full) < 1e-5);
  lm.to(DType::Float64);
  CHECK(max_abs_diff(step_all(lm, ids), lm(ids)) < 1e-10);
  // The channel mix token-shifts: changing token 4 changes logits from 4 on, none before.
  std::vector<std::int64_t> base{1, 4, 4, 9, 0, 10, 2, 7}, changed = base;
  changed[4] = 6;
  const Tensor y = lm(ids_of(base, {1, 8})), y2 = lm(ids_of(changed, {1, 8}));
  CHECK(max_abs_diff(narrow(y2, 1, 0, 4), narrow(y, 1, 0, 4)) < 1e-13);
  CHECK(max_abs_diff(narrow(y2, 1, 5, 1), narrow(y, 1, 5, 1)) > 1e-6);
}

TEST_CASE("LanguageModel: SSM mixers keep their own initialisation (Mamba's step bias is not zeroed)") {
  auto c = small_config("none");
  c.mixers = {"mamba"};
  nn::LanguageModel lm(c);
  const auto& mamba = dynamic_cast<const nn::Mamba&>(*lm.layers->at<nn::Block>(0)->mixer);
  // softplus(b_dt) = Δ0 ∈ [1e-4, 0.1] (technique notes §6 oracle 5); the GPT-2 redraw would have zeroed b_dt.
  for (double b : mamba.dt_proj->bias.to_vector<double>()) {
    const double dt = std::log1p(std::exp(b));
    CHECK(dt >= 1e-4 * (1 - 1e-6));
    CHECK(dt <= 0.1 * (1 + 1e-6));
  }
  // The softmax blocks of the same model are still redrawn GPT-2 style (biases zero).
  c.mixers = {"mamba", "softmax"};
  c.n_layers = 2;
  nn::LanguageModel mixed(c);
  for (const auto& [name, p] : mixed.named_parameters())
    if (name.starts_with("layers.1.mixer.") && name.ends_with(".bias")) CHECK(vec(p) == Vec(p.numel(), 0.0));
}

TEST_CASE("LanguageModel: causal — changing token t changes no logits before t") {
  for (const char* positions : {"learned", "rope"}) {
    nn::LanguageModel lm(small_config(positions));
    lm.to(DType::Float64);
    randomize(lm, 4);
    std::vector<std::int64_t> base{1, 4, 4, 9, 0, 10, 2, 7};
    const Tensor y = lm(ids_of(base, {1, 8}));
    for (std::int64_t t : {0, 4, 7}) {
      CAPTURE(positions);
      CAPTURE(t);
      auto changed = base;
      changed[static_cast<std::size_t>(t)] = (changed[static_cast<std::size_t>(t)] + 5) % 11;
      const Tensor y2 = lm(ids_of(changed, {1, 8}));
      if (t > 0) CHECK(max_abs_diff(narrow(y2, 1, 0, t), narrow(y, 1, 0, t)) < 1e-13);
      CHECK(max_abs_diff(narrow(y2, 1, t, 1), narrow(y, 1, t, 1)) > 1e-3);
    }
  }
}

TEST_CASE("LanguageModel: rope and none use no position table, learned has [max_len, D]") {
  // One layer: with more, the earlier tokens' own states depend on their order.
  const auto one_layer = [](const char* positions) {
    auto c = small_config(positions);
    c.n_layers = 1;
    return c;
  };
  nn::LanguageModel learned(one_layer("learned")), rope(one_layer("rope")), none(one_layer("none"));
  REQUIRE(learned.pos_emb != nullptr);
  CHECK(learned.pos_emb->weight.shape() == Shape{16, 12});
  CHECK(rope.pos_emb == nullptr);
  CHECK(none.pos_emb == nullptr);
  // Without positions, attention is permutation-invariant over the earlier tokens: the last logit
  // is the same for [a, b, c] and [b, a, c]. With learned positions or RoPE it is not.
  const Tensor abc = ids_of({2, 7, 5}, {1, 3}), bac = ids_of({7, 2, 5}, {1, 3});
  for (auto* lm : {&learned, &rope, &none}) randomize(*lm, 8);
  const auto last = [](nn::LanguageModel& lm, const Tensor& ids) { return narrow(lm(ids), 1, 2, 1); };
  CHECK(max_abs_diff(last(none, abc), last(none, bac)) < 1e-5);
  CHECK(max_abs_diff(last(learned, abc), last(learned, bac)) > 1e-3);
  CHECK(max_abs_diff(last(rope, abc), last(rope, bac)) > 1e-3);
}

TEST_CASE("generate: temperature 0 equals argmax of forward recomputed over the growing sequence") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    for (const char* positions : {"learned", "rope"}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(positions);
      nn::LanguageModel lm(small_config(positions));
      randomize(lm, 21);
      lm.to(dtype);
      lm.eval();
      nn::GenerateOptions o;
      o.temperature = 0.0;
      o.max_new_tokens = 10;
      const std::vector<std::int64_t> prompt{3, 1, 4};
      const auto out = lm.generate(prompt, o);
      // The reference: full forward from scratch each time, argmax of the last position.
      std::vector<std::int64_t> seq = prompt;
      for (int i = 0; i < 10; ++i) {
        const Tensor logits = lm(ids_of(seq, {1, static_cast<std::int64_t>(seq.size())}));
        const Vec last = vec(select(select(logits, 0, 0), 0, static_cast<std::int64_t>(seq.size()) - 1));
        seq.push_back(std::max_element(last.begin(), last.end()) - last.begin());
      }
      CHECK(out == seq);
      // More than one distinct token was generated (the check is not vacuous).
      CHECK(std::set<std::int64_t>(seq.begin() + 3, seq.end()).size() > 1);
      // top_k = 1 at any temperature is greedy too.
      o.temperature = 1.5;
      o.top_k = 1;
      o.seed = 77;
      CHECK(lm.generate(prompt, o) == seq);
      // stop_token: generation ends right after the first time it is produced.
      o.stop_token = seq[5];
      const auto stopped = lm.generate(prompt, o);
      const auto first = std::find(seq.begin() + 3, seq.end(), seq[5]);
      CHECK(stopped == std::vector<std::int64_t>(seq.begin(), first + 1));
    }
  }
}

TEST_CASE("generate: same seed same output, bad prompts are clear errors") {
  nn::LanguageModel lm(small_config());
  randomize(lm, 2);
  nn::GenerateOptions o;
  o.max_new_tokens = 12;
  o.seed = 4;
  const auto a = lm.generate({1, 2}, o), b = lm.generate({1, 2}, o);
  CHECK(a == b);
  CHECK(a.size() == 14);
  o.seed = 5;
  CHECK(lm.generate({1, 2}, o) != a);
  o.max_new_tokens = 0;
  CHECK(lm.generate({1, 2}, o) == std::vector<std::int64_t>{1, 2});
  o.max_new_tokens = 3;
  CHECK_THROWS_EMBER(lm.generate({}, o), "prompt is empty");
  CHECK_THROWS_EMBER(lm.generate({1, 11}, o), "token 11 out of range for vocabulary 11");
  CHECK_THROWS_EMBER(lm.generate({1, -1}, o), "token -1");
  o.max_new_tokens = 15;
  CHECK_THROWS_EMBER(lm.generate({1, 2}, o), "exceeds max_len 16");
  o.max_new_tokens = 14;
  CHECK(lm.generate({1, 2}, o).size() == 16);
}

TEST_CASE("sample_token: temperature 0 and top_k = 1 are argmax") {
  const Tensor z = tensor({0.3, -1.0, 2.5, 2.4, 0.0}, DType::Float64);
  Generator gen(1);
  nn::GenerateOptions o;
  o.temperature = 0.0;
  CHECK(nn::sample_token(z, o, gen) == 2);
  o.temperature = 3.0;
  o.top_k = 1;
  for (int i = 0; i < 50; ++i) CHECK(nn::sample_token(z, o, gen) == 2);
  // Float32 logits work as well.
  CHECK(nn::sample_token(z.to(DType::Float32), o, gen) == 2);
}

TEST_CASE("sample_token: frequencies over many seeds match softmax(z / T) within 5 sigma") {
  const Vec z{1.0, 0.5, -0.3, 2.0, 0.0, -1.0};
  constexpr int n = 20000;
  for (double T : {1.0, 0.7, 2.5}) {
    CAPTURE(T);
    nn::GenerateOptions o;
    o.temperature = T;
    check_frequencies(draw_counts(z, o, n), softmax_of(z, T), n);
  }
}

TEST_CASE("sample_token: top_k and top_p keep exactly the right set, renormalised") {
  constexpr int n = 20000;
  SUBCASE("top_k = 3 keeps the three largest logits") {
    const Vec z{1.0, 0.5, -0.3, 2.0, 0.0, -1.0};  // order: 3, 0, 1, 4, 2, 5
    nn::GenerateOptions o;
    o.temperature = 0.8;
    o.top_k = 3;
    check_frequencies(draw_counts(z, o, n), restrict(softmax_of(z, 0.8), {3, 0, 1}), n);
    o.top_k = 100;  // more than V: all
    check_frequencies(draw_counts(z, o, n), softmax_of(z, 0.8), n);
  }
  SUBCASE("top_p keeps the smallest prefix (by probability) whose mass reaches p") {
    const Vec probs{0.5, 0.05, 0.3, 0.15};
    Vec z;
    for (double p : probs) z.push_back(std::log(p));
    nn::GenerateOptions o;
    o.top_p = 0.4;  // 0.5 >= 0.4: {0}
    check_frequencies(draw_counts(z, o, n), restrict(probs, {0}), n);
    o.top_p = 0.7;  // 0.5 < 0.7 <= 0.8: {0, 2}
    check_frequencies(draw_counts(z, o, n), restrict(probs, {0, 2}), n);
    o.top_p = 0.9;  // 0.8 < 0.9 <= 0.95: {0, 2, 3}
    check_frequencies(draw_counts(z, o, n), restrict(probs, {0, 2, 3}), n);
    o.top_p = 1.0;
    check_frequencies(draw_counts(z, o, n), probs, n);
    // top_k first, then top_p within it: k = 2 -> {0, 2} (mass 0.8); p = 0.9 of 0.8 -> both.
    o.top_k = 2;
    o.top_p = 0.9;
    check_frequencies(draw_counts(z, o, n), restrict(probs, {0, 2}), n);
    // ... and p = 0.6 of the kept mass 0.8 (0.48) -> {0}.
    o.top_p = 0.6;
    check_frequencies(draw_counts(z, o, n), restrict(probs, {0}), n);
  }
}

TEST_CASE("sample_token: bad arguments throw") {
  Generator gen(1);
  nn::GenerateOptions o;
  const Tensor z = tensor({0.0, 1.0}, DType::Float64);
  CHECK_THROWS_EMBER(nn::sample_token(zeros({2, 2}, DType::Float64), o, gen), "[2, 2]");
  o.temperature = -1;
  CHECK_THROWS_EMBER(nn::sample_token(z, o, gen), "temperature");
  o.temperature = 1;
  o.top_p = 0;
  CHECK_THROWS_EMBER(nn::sample_token(z, o, gen), "top_p");
  o.top_p = 1.5;
  CHECK_THROWS_EMBER(nn::sample_token(z, o, gen), "top_p");
  o.top_p = 1;
  o.top_k = -2;
  CHECK_THROWS_EMBER(nn::sample_token(z, o, gen), "top_k");
}

TEST_CASE("LanguageModel init: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), biases 0, norms 1") {
  nn::LanguageModelConfig c;
  c.vocab_size = 100;
  c.d_model = 64;
  c.n_layers = 4;
  c.n_heads = 4;
  c.max_len = 64;
  c.seed = 11;
  nn::LanguageModel lm(c);
  const double resid = 0.02 / std::sqrt(2.0 * 4);
  int checked_resid = 0, checked_plain = 0;
  for (const auto& entry : lm.named_parameters()) {
    const std::string& name = entry.first;
    const Tensor& p = entry.second;
    CAPTURE(name);
    const auto n = static_cast<double>(p.numel());
    if (name.ends_with(".bias")) {
      const Vec v = vec(p);
      CHECK(std::all_of(v.begin(), v.end(), [](double x) { return x == 0.0; }));
    } else if (name.find("norm") != std::string::npos) {
      const Vec v = vec(p);
      CHECK(std::all_of(v.begin(), v.end(), [](double x) { return x == 1.0; }));
    } else {
      const bool is_resid = name.ends_with("o_proj.weight") || name.ends_with("down_proj.weight");
      const double sigma = is_resid ? resid : 0.02;
      const auto [m, s] = mean_std(p);
      // The sample mean has sd sigma/sqrt(n); the sample sd has sd about sigma/sqrt(2n).
      CHECK(std::abs(m) < 5 * sigma / std::sqrt(n));
      CHECK(std::abs(s - sigma) < 5 * sigma / std::sqrt(2 * n));
      (is_resid ? checked_resid : checked_plain)++;
    }
  }
  CHECK(checked_resid == 8);   // o_proj and down_proj in 4 layers
  CHECK(checked_plain == 19);  // tok, pos, head, and q, k, v, up in 4 layers
}

TEST_CASE("LanguageModel init: the same seed gives identical weights, another seed different ones") {
  auto c = small_config();
  nn::LanguageModel a(c), b(c);
  c.seed = 6;
  nn::LanguageModel d(c);
  const auto pa = a.named_parameters(), pb = b.named_parameters(), pd = d.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CAPTURE(pa[i].first);
    CHECK(vec(pa[i].second) == vec(pb[i].second));
    if (pa[i].first.ends_with("weight") && pa[i].first.find("norm") == std::string::npos)
      CHECK(vec(pa[i].second) != vec(pd[i].second));
  }
  // Construction does not touch the default generator.
  manual_seed(123);
  const Vec before = vec(randn({4}));
  manual_seed(123);
  nn::LanguageModel e(small_config());
  CHECK(vec(randn({4})) == before);
}

TEST_CASE("LanguageModel: tied weights share the embedding, its gradient includes the head's") {
  auto c = small_config();
  c.tie_weights = true;
  nn::LanguageModel tied(c);
  c.tie_weights = false;
  nn::LanguageModel untied(c);
  tied.to(DType::Float64);
  untied.to(DType::Float64);
  randomize(tied, 12);
  // No head and no head.weight; V·D fewer parameters than the untied model.
  CHECK(tied.head == nullptr);
  for (const auto& [name, t] : tied.state_dict()) CHECK(name != "head.weight");
  CHECK(tied.num_parameters() == untied.num_parameters() - 11 * 12);
  CHECK(tied.str().starts_with("LanguageModel(vocab=11, d_model=12, layers=2, positions=learned, tied)"));
  // The untied twin: every weight of the tied model, and head.weight = tok_emb.weight.
  untied.load_state_dict(tied.state_dict(), false);
  {
    NoGradGuard no_grad;
    untied.head->weight.copy_(tied.tok_emb->weight);
  }
  const Tensor ids = ids_of({1, 4, 4, 9, 0, 10, 2, 7, 3, 3}, {2, 5});
  const Tensor w = normal({2, 5, 11}, 13);
  const Tensor yt = tied(ids), yu = untied(ids);
  CHECK(max_abs_diff(yt, yu) < 1e-13);
  // logits = h Eᵀ for the tied model.
  const Vec h = vec(tied.hidden(ids));
  CHECK(ref::max_diff(vec(yt), ref::linear(h, vec(tied.tok_emb->weight), {}, 12, 11)) < 1e-12);
  sum(yt * w).backward();
  sum(yu * w).backward();
  CHECK(max_abs_diff(tied.tok_emb->weight.grad(), untied.tok_emb->weight.grad() + untied.head->weight.grad()) < 1e-12);
  // The head contribution is not negligible (the check above is not vacuous).
  CHECK(max_abs_diff(untied.head->weight.grad(), zeros({11, 12}, DType::Float64)) > 1e-3);
  const auto gt = tied.named_parameters(), gu = untied.named_parameters();
  for (const auto& entry : gt) {
    const std::string& name = entry.first;
    const Tensor& p = entry.second;
    if (name == "tok_emb.weight") continue;
    CAPTURE(name);
    CHECK(max_abs_diff(p.grad(), param_of(untied, name).grad()) < 1e-12);
  }
}

TEST_CASE("LanguageModel: dropout is active in training mode only") {
  auto c = small_config();
  c.dropout = 0.3;
  nn::LanguageModel drop(c);
  c.dropout = 0.0;
  nn::LanguageModel plain(c);
  const Tensor ids = ids_of({1, 4, 4, 9, 0}, {1, 5});
  CHECK(max_abs_diff(drop(ids), plain(ids)) > 1e-6);
  drop.eval();
  CHECK(max_abs_diff(drop(ids), plain(ids)) == 0.0);
  for (auto& [name, m] : drop.named_modules()) CHECK_FALSE(m->is_training());
}

TEST_CASE("LanguageModel: bad ids and configs are clear errors") {
  nn::LanguageModel lm(small_config());
  CHECK_THROWS_EMBER(lm(ids_of({1, 2, 3}, {3})), "[3]");
  CHECK_THROWS_EMBER(lm(zeros({1, 3})), "float32");
  CHECK_THROWS_EMBER(lm(zeros({1, 17}, DType::Int64)), "exceed max_len 16");
  CHECK_THROWS_AS(lm(ids_of({1, 11}, {1, 2})), Error);
  auto state = lm.init_state(2);
  CHECK_THROWS_EMBER(lm.step(ids_of({1, 2}, {1, 2}), state), "[1, 2]");
  CHECK_THROWS_EMBER(lm.step(ids_of({1}, {1}), state), "step expected x_t [2, 12], got [1, 12]");
  auto c = small_config();
  c.positions = "sinusoidal";
  CHECK_THROWS_EMBER(nn::LanguageModel{c}, "sinusoidal");
  c = small_config();
  c.norm = "batchnorm";
  CHECK_THROWS_EMBER(nn::LanguageModel{c}, "batchnorm");
  c = small_config();
  c.mixers = {"softmax", "softmax", "softmax"};
  CHECK_THROWS_EMBER(nn::LanguageModel{c}, "3 mixer names for 2 layers");
  c = small_config();
  c.mixers = {"softmax", "nope"};
  CHECK_THROWS_EMBER(nn::LanguageModel{c}, "nope");
  c = small_config();
  c.vocab_size = 0;
  CHECK_THROWS_EMBER(nn::LanguageModel{c}, "vocab_size");
  c = small_config();
  c.dropout = 1.0;
  CHECK_THROWS_EMBER(nn::LanguageModel{c}, "dropout");
  c = small_config();
  c.mlp = "relu";
  CHECK_THROWS_EMBER(nn::LanguageModel{c}, "relu");
}

TEST_CASE("LanguageModel: a KV cache shorter than the model's max_len fills up with a clear error") {
  nn::LanguageModel lm(small_config());
  auto state = lm.init_state(1, 2);
  lm.step(ids_of({1}, {1}), state);
  lm.step(ids_of({2}, {1}), state);
  CHECK_THROWS_EMBER(lm.step(ids_of({3}, {1}), state), "KV cache is full");
}
