/// \file
/// \brief TransNormer (technique notes §13): NormAttention's chunked forward equals its S-only step and a naive
/// double loop of O_t = SRMSNorm_d(Σ_{s≤t} φ(q_t)·φ(k_s) v_s) (T off the chunk, f32 and f64); DiagAttention equals
/// a naive loop with the block-diagonal causal mask and its KV-cache step (T off the block), and plain
/// MultiHeadAttention when the block exceeds T; Float64 gradchecks; causality; the registry.
#include <cmath>

#include "autograd/gradcheck.h"
#include "layers/attention/diag_attention.h"
#include "layers/attention/norm_attention.h"
#include "layers/functional.h"
#include "layers/models/language_model.h"
#include "layer_helpers.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;
using ref::heads;
using ref::lin;
using ref::unheads;
using i64 = std::int64_t;

namespace {

double phi(double x) { return x > 0 ? x + 1.0 : std::exp(x); }

/// NormAttention with loops: o_t = Σ_{s≤t} (φ(q_t)·φ(k_s)) v_s per head, SRMSNorm over d, then W_o.
Vec reference_norm(const nn::NormAttention& m, const Vec& x, i64 B, i64 T) {
  const i64 H = m.n_heads, d = m.head_dim, D = H * d;
  const Vec q = heads(lin(m.q_proj, x, D), B, T, H, d), k = heads(lin(m.k_proj, x, D), B, T, H, d),
            v = heads(lin(m.v_proj, x, D), B, T, H, d);
  Vec o(q.size(), 0.0);
  for (i64 bh = 0; bh < B * H; ++bh)
    for (i64 t = 0; t < T; ++t) {
      double* row = &o[(bh * T + t) * d];
      for (i64 s = 0; s <= t; ++s) {
        double a = 0.0;
        for (i64 c = 0; c < d; ++c) a += phi(q[(bh * T + t) * d + c]) * phi(k[(bh * T + s) * d + c]);
        for (i64 c = 0; c < d; ++c) row[c] += a * v[(bh * T + s) * d + c];
      }
      double ms = 0.0;
      for (i64 c = 0; c < d; ++c) ms += row[c] * row[c];
      const double r = 1.0 / std::sqrt(ms / static_cast<double>(d) + nn::kNormAttentionEps);
      for (i64 c = 0; c < d; ++c) row[c] *= r;
    }
  return lin(m.o_proj, unheads(o, B, T, H, d), D);
}

/// DiagAttention with loops: softmax(q·k/√d) over keys s with s/w == t/w and s <= t, then W_o.
Vec reference_diag(const nn::DiagAttention& m, const Vec& x, i64 B, i64 T) {
  const i64 H = m.n_heads, d = m.head_dim, D = H * d, w = m.block;
  const Vec q = heads(lin(m.q_proj, x, D), B, T, H, d), k = heads(lin(m.k_proj, x, D), B, T, H, d),
            v = heads(lin(m.v_proj, x, D), B, T, H, d);
  Vec o(q.size(), 0.0);
  for (i64 bh = 0; bh < B * H; ++bh)
    for (i64 t = 0; t < T; ++t) {
      std::vector<double> s(T, 0.0);
      double mx = -1e300, z = 0.0;
      for (i64 j = 0; j <= t; ++j) {
        if (j / w != t / w) continue;
        double dot = 0.0;
        for (i64 c = 0; c < d; ++c) dot += q[(bh * T + t) * d + c] * k[(bh * T + j) * d + c];
        s[j] = dot / std::sqrt(static_cast<double>(d));
        mx = std::max(mx, s[j]);
      }
      for (i64 j = 0; j <= t; ++j)
        if (j / w == t / w) z += std::exp(s[j] - mx);
      for (i64 j = 0; j <= t; ++j)
        if (j / w == t / w)
          for (i64 c = 0; c < d; ++c) o[(bh * T + t) * d + c] += std::exp(s[j] - mx) / z * v[(bh * T + j) * d + c];
    }
  return lin(m.o_proj, unheads(o, B, T, H, d), D);
}

nn::MixerConfig config(i64 d_model, i64 heads, const std::string& opt, double value, bool bias = true) {
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = heads;
  c.bias = bias;
  c.max_len = 32;
  c.options[opt] = value;
  return c;
}



}  // namespace

TEST_CASE("NormAttention: chunked forward equals the S-only step and the naive double loop") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (double chunk : {4.0, 1.0, 64.0})
      for (i64 T : {1, 7, 13})
        for (bool bias : {true, false}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(chunk);
          CAPTURE(T);
          CAPTURE(bias);
          nn::NormAttention m(config(8, 2, "chunk", chunk, bias));
          randomize(m, 7);
          m.to(dtype);
          const Tensor x = normal({2, T, 8}, 11, dtype);
          const Tensor y = m(x);
          REQUIRE(y.shape() == Shape{2, T, 8});
          CHECK(y.dtype() == dtype);
          const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
          CHECK(ref::max_diff(vec(y), reference_norm(m, vec(x), 2, T)) < tol);
          CHECK(max_abs_diff(step_all(m, x), y) < tol);
        }
}

TEST_CASE("causal_linear_attention without normalize: every chunk gives the same result, scale invariant after norm") {
  const Tensor q = normal({1, 2, 9, 3}, 1), k = normal({1, 2, 9, 3}, 2), v = normal({1, 2, 9, 3}, 3);
  const Tensor fq = nn::elu_feature_map(q), fk = nn::elu_feature_map(k);
  const Tensor want = nn::causal_linear_attention(fq, fk, v, 9, false);
  for (i64 chunk : {1, 2, 4, 10}) CHECK(max_abs_diff(nn::causal_linear_attention(fq, fk, v, chunk, false), want) < 1e-12);
  const Tensor a = nn::rms_norm(want, Tensor(), 1e-12), b = nn::rms_norm(want * 3.5, Tensor(), 1e-12);
  CHECK(max_abs_diff(a, b) < 1e-10);
}

TEST_CASE("DiagAttention: forward equals the block-diagonal causal double loop and the KV-cache step") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (double block : {1.0, 3.0, 4.0, 5.0})
      for (i64 T : {1, 7, 13}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(block);
        CAPTURE(T);
        nn::DiagAttention m(config(8, 2, "block", block));
        randomize(m, 5);
        m.to(dtype);
        CHECK(m.block == static_cast<i64>(block));
        const Tensor x = normal({2, T, 8}, 3, dtype);
        const Tensor y = m(x);
        REQUIRE(y.shape() == Shape{2, T, 8});
        const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
        CHECK(ref::max_diff(vec(y), reference_diag(m, vec(x), 2, T)) < tol);
        CHECK(max_abs_diff(step_all(m, x), y) < tol);
      }
}

TEST_CASE("DiagAttention: a block larger than T is plain MultiHeadAttention, default block 64") {
  nn::MixerConfig c = config(8, 2, "block", 16);
  nn::DiagAttention m(c);
  nn::MultiHeadAttention full(c);
  randomize(m, 4);
  m.to(DType::Float64);
  full.to(DType::Float64);
  full.load_state_dict(m.state_dict());
  const Tensor x = normal({2, 11, 8}, 2);
  CHECK(max_abs_diff(m(x), full(x)) < 1e-12);
  c.options.clear();
  CHECK(nn::DiagAttention(c).block == 64);
  CHECK_THROWS_EMBER(nn::DiagAttention(config(8, 2, "block", 0)), "block must be > 0");
}

TEST_CASE("gradcheck: NormAttention and DiagAttention in Float64, T = 7") {
  nn::NormAttention n(config(4, 2, "chunk", 3));
  prepare_f64(n, 5);
  check_mixer_gradcheck(n, normal({2, 7, 4}, 6));
  nn::DiagAttention d(config(4, 2, "block", 3));
  prepare_f64(d, 8);
  check_mixer_gradcheck(d, normal({2, 7, 4}, 9));
}

TEST_CASE("NormAttention and DiagAttention: changing input t changes no earlier output") {
  nn::NormAttention n(config(8, 2, "chunk", 3));
  prepare_f64(n, 9);
  CHECK(check_causal(n, normal({2, 10, 8}, 1)) == 10);
  nn::DiagAttention d(config(8, 2, "block", 4));
  prepare_f64(d, 10);
  CHECK(check_causal(d, normal({2, 10, 8}, 1)) == 10);
}

TEST_CASE("make_mixer: norm_attention and diag_attention by name") {
  const auto n = nn::make_mixer("norm_attention", config(8, 2, "chunk", 5));
  REQUIRE(dynamic_cast<nn::NormAttention*>(n.get()) != nullptr);
  CHECK(n->type_name() == "NormAttention");
  CHECK(dynamic_cast<nn::NormAttention&>(*n).chunk == 5);
  const auto d = nn::make_mixer("diag_attention", config(8, 2, "block", 6));
  REQUIRE(dynamic_cast<nn::DiagAttention*>(d.get()) != nullptr);
  CHECK(d->type_name() == "DiagAttention");
  CHECK(dynamic_cast<nn::DiagAttention&>(*d).block == 6);
}

TEST_CASE("transnormer_mixers: DiagAttention in the lower half, NormAttention in the upper half") {
  using V = std::vector<std::string>;
  CHECK(nn::transnormer_mixers(2) == V{"diag_attention", "norm_attention"});
  CHECK(nn::transnormer_mixers(4) == V{"diag_attention", "diag_attention", "norm_attention", "norm_attention"});
  CHECK(nn::transnormer_mixers(3) == V{"diag_attention", "norm_attention", "norm_attention"});
  CHECK_THROWS_EMBER(nn::transnormer_mixers(1), "at least 2 layers");

  nn::LanguageModelConfig c;
  c.d_model = 16;
  c.n_heads = 2;
  c.n_layers = 4;
  c.mixers = nn::transnormer_mixers(4);
  c.mixer_options = {{"block", 4}};
  nn::LanguageModel model(c);
  for (std::int64_t i = 0; i < 4; ++i) {
    const auto block = model.layers->at<nn::Block>(i);
    CHECK(block->mixer->type_name() == (i < 2 ? "DiagAttention" : "NormAttention"));
  }
}
