/// \file
/// \brief LinearAttention (technique notes §2): the chunked causal forward equals the recurrent step and the
/// quadratic masked form φ(Q)φ(K)ᵀ ⊙ M written as a double loop (T off the chunk, chunk > T, B = H = 2, f32 and
/// f64); the non-causal form against a double loop; implied attention rows sum to 1; Float64 gradcheck of the
/// mixer; causality; the registry and a LanguageModel of linear layers decoding step by step; bad shapes.
#include <cmath>

#include "autograd/gradcheck.h"
#include "layers/attention/linear_attention.h"
#include "layers/models/language_model.h"
#include "layer_helpers.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;
using i64 = std::int64_t;

namespace {

double phi(double x) { return x > 0 ? x + 1.0 : std::exp(x); }

/// q, k: [BH, Tq or Tk, d], v: [BH, Tk, M] -> [BH, Tq, M]: y_i = Σ_j a_ij v_j / (Σ_j a_ij + ε), a_ij = φ(q_i)·φ(k_j),
/// j ≤ i when causal (Tq = Tk then). The quadratic form, one pair at a time.
Vec kernel_attention(const Vec& q, const Vec& k, const Vec& v, i64 BH, i64 Tq, i64 Tk, i64 d, i64 M, bool causal) {
  Vec o(BH * Tq * M, 0.0);
  for (i64 b = 0; b < BH; ++b)
    for (i64 i = 0; i < Tq; ++i) {
      double den = 0.0;
      Vec num(M, 0.0);
      for (i64 j = 0; j < Tk; ++j) {
        if (causal && j > i) continue;
        double a = 0.0;
        for (i64 c = 0; c < d; ++c) a += phi(q[(b * Tq + i) * d + c]) * phi(k[(b * Tk + j) * d + c]);
        den += a;
        for (i64 m = 0; m < M; ++m) num[m] += a * v[(b * Tk + j) * M + m];
      }
      for (i64 m = 0; m < M; ++m) o[(b * Tq + i) * M + m] = num[m] / (den + nn::kLinearAttentionEps);
    }
  return o;
}

/// The LinearAttention layer written with loops: projections, heads, kernel_attention (causal), W_o.
Vec reference_mixer(const nn::LinearAttention& m, const Vec& x, i64 B, i64 T) {
  const i64 H = m.n_heads, d = m.head_dim, D = H * d;
  const auto lin = [&](const std::shared_ptr<nn::Linear>& p, const Vec& in) {
    return ref::linear(in, vec(p->weight), p->bias.defined() ? vec(p->bias) : Vec{}, D, D);
  };
  const auto heads = [&](const Vec& a) {
    Vec out(a.size());
    for (i64 b = 0; b < B; ++b)
      for (i64 t = 0; t < T; ++t)
        for (i64 h = 0; h < H; ++h)
          for (i64 c = 0; c < d; ++c) out[((b * H + h) * T + t) * d + c] = a[(b * T + t) * D + h * d + c];
    return out;
  };
  const Vec o = kernel_attention(heads(lin(m.q_proj, x)), heads(lin(m.k_proj, x)), heads(lin(m.v_proj, x)), B * H, T,
                                 T, d, d, true);
  Vec merged(x.size());
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t)
      for (i64 h = 0; h < H; ++h)
        for (i64 c = 0; c < d; ++c) merged[(b * T + t) * D + h * d + c] = o[((b * H + h) * T + t) * d + c];
  return lin(m.o_proj, merged);
}

nn::MixerConfig config(i64 d_model, i64 heads, double chunk, bool bias = true) {
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = heads;
  c.bias = bias;
  c.max_len = 32;
  c.options["chunk"] = chunk;
  return c;
}



}  // namespace

TEST_CASE("LinearAttention: chunked forward equals the recurrent step and the quadratic masked double loop") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (double chunk : {4.0, 1.0, 64.0})
      for (i64 T : {1, 4, 7, 13})
        for (bool bias : {true, false}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(chunk);
          CAPTURE(T);
          CAPTURE(bias);
          nn::LinearAttention m(config(8, 2, chunk, bias));
          randomize(m, 7);
          m.to(dtype);
          CHECK(m.chunk == static_cast<i64>(chunk));
          const Tensor x = normal({2, T, 8}, 11, dtype);
          const Tensor y = m(x);
          REQUIRE(y.shape() == Shape{2, T, 8});
          CHECK(y.dtype() == dtype);
          const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
          CHECK(ref::max_diff(vec(y), reference_mixer(m, vec(x), 2, T)) < tol);
          CHECK(max_abs_diff(step_all(m, x), y) < tol);
        }
}

TEST_CASE("LinearAttention: the default chunk is 64, and 100 tokens span two chunks") {
  nn::LinearAttention m(config(8, 2, 64));
  nn::MixerConfig c = config(8, 2, 64);
  c.options.clear();
  nn::LinearAttention d(c);
  CHECK(d.chunk == 64);
  randomize(m, 3);
  m.to(DType::Float64);
  const Tensor x = normal({1, 100, 8}, 4);
  CHECK(ref::max_diff(vec(m(x)), reference_mixer(m, vec(x), 1, 100)) < 1e-10);
}

TEST_CASE("causal_linear_attention: every chunk size gives the double loop, d != M") {
  const Tensor q = normal({2, 2, 9, 3}, 1), k = normal({2, 2, 9, 3}, 2), v = normal({2, 2, 9, 5}, 3);
  const Vec want = kernel_attention(vec(q), vec(k), vec(v), 4, 9, 9, 3, 5, true);
  for (i64 chunk : {1, 2, 3, 4, 8, 9, 10}) {
    CAPTURE(chunk);
    const Tensor y = nn::causal_linear_attention(nn::elu_feature_map(q), nn::elu_feature_map(k), v, chunk);
    CHECK(y.shape() == Shape{2, 2, 9, 5});
    CHECK(ref::max_diff(vec(y), want) < 1e-12);
  }
}

TEST_CASE("linear_attention_noncausal: equals the double loop, Tq != Tk, f32 and f64") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dtype));
    const Tensor q = normal({2, 2, 5, 3}, 1, dtype), k = normal({2, 2, 7, 3}, 2, dtype),
                 v = normal({2, 2, 7, 4}, 3, dtype);
    const Tensor y = nn::linear_attention_noncausal(q, k, v);
    REQUIRE(y.shape() == Shape{2, 2, 5, 4});
    CHECK(ref::max_diff(vec(y), kernel_attention(vec(q), vec(k), vec(v), 4, 5, 7, 3, 4, false)) <
          (dtype == DType::Float64 ? 1e-12 : 1e-5));
  }
}

TEST_CASE("linear attention: implied attention rows are positive and sum to 1 up to eps (v = 1 gives 1)") {
  const Tensor q = normal({1, 2, 6, 3}, 1), k = normal({1, 2, 6, 3}, 2);
  const Tensor ones = full({1, 2, 6, 1}, 1.0, DType::Float64);
  for (double y : vec(nn::linear_attention_noncausal(q, k, ones))) CHECK(std::abs(y - 1.0) < 1e-5);
  for (double y : vec(nn::causal_linear_attention(nn::elu_feature_map(q), nn::elu_feature_map(k), ones, 4)))
    CHECK(std::abs(y - 1.0) < 1e-5);
  for (double f : vec(nn::elu_feature_map(normal({50}, 3, DType::Float64, 5.0)))) CHECK(f > 0.0);
}

TEST_CASE("gradcheck: LinearAttention forward in Float64, chunk 3, T = 7, w.r.t. input and every weight") {
  nn::LinearAttention m(config(4, 2, 3));
  randomize(m, 5);
  m.to(DType::Float64);
  const Tensor x = leaf_of(normal({2, 7, 4}, 6));
  std::vector<Tensor> inputs = {x};
  for (const auto& [name, p] : m.named_parameters()) inputs.push_back(p);
  REQUIRE(inputs.size() == 9);
  const GradcheckResult r = gradcheck([&](const auto& in) { return m(in[0]); }, inputs, 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
  for (const auto& t : inputs) {
    REQUIRE(t.grad().defined());
    CHECK(t.grad().shape() == t.shape());
  }
}

TEST_CASE("gradcheck: linear_attention_noncausal and causal_linear_attention in Float64") {
  const Tensor q = leaf_of(normal({1, 2, 5, 3}, 1)), k = leaf_of(normal({1, 2, 5, 3}, 2)),
               v = leaf_of(normal({1, 2, 5, 3}, 3));
  GradcheckResult r = gradcheck([](const auto& in) { return nn::linear_attention_noncausal(in[0], in[1], in[2]); },
                                {q, k, v}, 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
  r = gradcheck(
      [](const auto& in) {
        return nn::causal_linear_attention(nn::elu_feature_map(in[0]), nn::elu_feature_map(in[1]), in[2], 2);
      },
      {q, k, v}, 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("LinearAttention: changing input t changes no earlier output") {
  nn::LinearAttention m(config(8, 2, 3));
  prepare_f64(m, 9);
  CHECK(check_causal(m, normal({2, 10, 8}, 1)) == 10);
}

TEST_CASE("LinearAttention: make_mixer(linear) and a LanguageModel of linear layers decode like forward") {
  const auto names = nn::mixer_names();
  CHECK(std::find(names.begin(), names.end(), "linear") != names.end());
  const auto m = nn::make_mixer("linear", config(8, 2, 5));
  REQUIRE(dynamic_cast<nn::LinearAttention*>(m.get()) != nullptr);
  CHECK(m->type_name() == "LinearAttention");
  CHECK(dynamic_cast<nn::LinearAttention&>(*m).chunk == 5);
  CHECK(m->state_dict().size() == 8);

  nn::LanguageModelConfig c;
  c.vocab_size = 11;
  c.d_model = 12;
  c.n_layers = 2;
  c.n_heads = 3;
  c.max_len = 16;
  c.mixers = {"linear"};
  c.mixer_options["chunk"] = 4;
  c.seed = 5;
  nn::LanguageModel lm(c);
  randomize(lm, 3);
  const Tensor ids = from_vector(std::vector<std::int64_t>{1, 4, 4, 9, 0, 10, 2, 7, 3, 3, 5, 8, 6, 1, 0, 2, 9, 9},
                                 {2, 9});
  const auto step_lm = [&]() {
    auto state = lm.init_state(2);
    std::vector<Tensor> out;
    for (i64 t = 0; t < 9; ++t) out.push_back(lm.step(select(ids, 1, t).contiguous(), state));
    return stack(out, 1);
  };
  const Tensor full = lm(ids);
  REQUIRE(full.shape() == Shape{2, 9, 11});
  CHECK(max_abs_diff(step_lm(), full) < 1e-5);
  lm.to(DType::Float64);
  CHECK(max_abs_diff(step_lm(), lm(ids)) < 1e-10);
}

TEST_CASE("LinearAttention: bad shapes and configs throw ember::Error naming them") {
  nn::LinearAttention m(config(8, 2, 4));
  CHECK_THROWS_EMBER(m(normal({2, 3, 6}, 1, DType::Float32)), "expected x [B, T, 8], got [2, 3, 6]");
  CHECK_THROWS_EMBER(m(normal({3, 8}, 1, DType::Float32)), "got [3, 8]");
  auto state = m.init_state(2, 4);
  CHECK_THROWS_EMBER(m.step(normal({1, 8}, 1, DType::Float32), *state), "step expected x_t [2, 8], got [1, 8]");
  CHECK_THROWS_EMBER(m.init_state(0, 4), "init_state needs batch > 0");
  ForeignState other;
  CHECK_THROWS_EMBER(m.step(normal({2, 8}, 1, DType::Float32), other), "state made by its init_state");
  CHECK_THROWS_EMBER(nn::LinearAttention(config(8, 3, 4)), "d_model 8 is not divisible into 3 heads");
  CHECK_THROWS_EMBER(nn::LinearAttention(config(8, 2, 0)), "chunk must be > 0");
  const Tensor q = normal({1, 2, 3, 4}, 1);
  CHECK_THROWS_EMBER(nn::linear_attention_noncausal(q, normal({1, 2, 5, 3}, 2), normal({1, 2, 5, 4}, 3)),
                     "[1, 2, 5, 3]");
  CHECK_THROWS_EMBER(nn::linear_attention_noncausal(q, normal({1, 2, 5, 4}, 2), normal({1, 2, 6, 4}, 3)),
                     "v [1, 2, 6, 4]");
  CHECK_THROWS_EMBER(nn::causal_linear_attention(q, q, normal({1, 2, 4, 4}, 3), 2), "v [1, 2, 4, 4]");
  CHECK_THROWS_EMBER(nn::causal_linear_attention(q, q, q, 0), "chunk must be > 0");
}
