/// \file
/// \brief GatedAttentionUnit and MixedChunkAttention (FLASH, technique notes §3): GAU's forward equals a per-position
/// loop of [U V Z] = SiLU(X W + b), Q/K = Z ⊙ γ + β, v̂_t = Σ_{j≤t} relu(q_t·k_j/n)² v_j, O = (U ⊙ V̂) W_o; FLASH's
/// chunked forward equals an unchunked double loop (same-chunk j ≤ i quadratic term, earlier-chunk linear term
/// (q_i·k_j) v_j / C) for T off the chunk; FLASH with C = T = n and the linear views zeroed is GAU; perturbing
/// token t leaves every earlier output bit-identical (T = 64, C = 16, every t); relu² scores are ≥ 0, masked, with
/// zero gradient where the argument is negative; step equals forward with and without RoPE across chunk
/// boundaries (f32 and f64); Float64 gradchecks; the γ, β initialisation; bad options and shapes.
#include <cmath>

#include "autograd/gradcheck.h"
#include "layer_helpers.h"
#include "layers/attention/gated_attention_unit.h"
#include "layers/attention/mixed_chunk_attention.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;
using i64 = std::int64_t;

namespace {

double relu2(double a) { return a > 0 ? a * a : 0.0; }

double dot(const double* a, const double* b, i64 n) {
  double s = 0.0;
  for (i64 c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

/// The GAU projection written per row: U, V [B·T, e] and, for every row i of γ, β, the view Z ⊙ γ_i + β_i
/// [B·T, s], rotated (rotate-half RoPE) at the row's position when the layer has RoPE.
struct Projection {
  Vec U, V;
  std::vector<Vec> views;
};

Projection reference_project(const nn::GatedAttentionUnit& m, const Vec& x, i64 B, i64 T) {
  const i64 D = m.d_model, e = m.expanded_dim, s = m.shared_dim, W = 2 * e + s, P = m.gamma.shape()[0];
  const auto& proj = m.uvz_proj;
  const Vec h = ref::linear(x, vec(proj->weight), proj->bias.defined() ? vec(proj->bias) : Vec{}, D, W);
  const Vec gamma = vec(m.gamma), beta = vec(m.beta);
  Projection p{Vec(B * T * e), Vec(B * T * e), std::vector<Vec>(P, Vec(B * T * s))};
  for (i64 r = 0; r < B * T; ++r) {
    for (i64 c = 0; c < e; ++c) {
      p.U[r * e + c] = ref::silu(h[r * W + c]);
      p.V[r * e + c] = ref::silu(h[r * W + e + c]);
    }
    for (i64 i = 0; i < P; ++i) {
      double* row = &p.views[i][r * s];
      for (i64 c = 0; c < s; ++c) row[c] = ref::silu(h[r * W + 2 * e + c]) * gamma[i * s + c] + beta[i * s + c];
      if (m.rope) ref::rotate(row, s, static_cast<double>(r % T));
    }
  }
  return p;
}

/// Rows of e: y = W_o (u ⊙ v̂) + b_o.
Vec reference_gate(const nn::GatedAttentionUnit& m, const Vec& U, const Vec& V_hat) {
  Vec g(U.size());
  for (std::size_t i = 0; i < U.size(); ++i) g[i] = U[i] * V_hat[i];
  const auto& o = m.o_proj;
  return ref::linear(g, vec(o->weight), o->bias.defined() ? vec(o->bias) : Vec{}, m.expanded_dim, m.d_model);
}

/// GAU with loops: v̂_i = Σ_{j≤i} relu(q_i·k_j / n)² v_j, then the gate.
Vec reference_gau(const nn::GatedAttentionUnit& m, const Vec& x, i64 B, i64 T) {
  const i64 e = m.expanded_dim, s = m.shared_dim;
  const double n = static_cast<double>(m.context_len);
  const Projection p = reference_project(m, x, B, T);
  Vec V_hat(B * T * e, 0.0);
  for (i64 b = 0; b < B; ++b)
    for (i64 i = 0; i < T; ++i)
      for (i64 j = 0; j <= i; ++j) {
        const double a = relu2(dot(&p.views[0][(b * T + i) * s], &p.views[1][(b * T + j) * s], s) / n);
        for (i64 c = 0; c < e; ++c) V_hat[(b * T + i) * e + c] += a * p.V[(b * T + j) * e + c];
      }
  return reference_gate(m, p.U, V_hat);
}

/// FLASH with one unchunked double loop: for j in i's chunk with j ≤ i, relu(q^quad_i·k^quad_j / C)² v_j; for j in
/// an earlier chunk, (q^lin_i·k^lin_j) v_j / C; then the gate.
Vec reference_flash(const nn::MixedChunkAttention& m, const Vec& x, i64 B, i64 T) {
  const i64 e = m.expanded_dim, s = m.shared_dim, C = m.chunk;
  const Projection p = reference_project(m, x, B, T);
  const Vec &qq = p.views[0], &kq = p.views[1], &ql = p.views[2], &kl = p.views[3];
  Vec V_hat(B * T * e, 0.0);
  for (i64 b = 0; b < B; ++b)
    for (i64 i = 0; i < T; ++i)
      for (i64 j = 0; j <= i; ++j) {
        const i64 qi = (b * T + i) * s, kj = (b * T + j) * s;
        const double a = j / C == i / C ? relu2(dot(&qq[qi], &kq[kj], s) / static_cast<double>(C))
                                        : dot(&ql[qi], &kl[kj], s) / static_cast<double>(C);
        for (i64 c = 0; c < e; ++c) V_hat[(b * T + i) * e + c] += a * p.V[(b * T + j) * e + c];
      }
  return reference_gate(m, p.U, V_hat);
}

/// D = 8, n = max_len, RoPE as asked, plus the options given.
nn::MixerConfig config(i64 max_len, bool rope, std::map<std::string, double> options, bool bias = true) {
  nn::MixerConfig c;
  c.d_model = 8;
  c.max_len = max_len;
  c.rope = rope;
  c.bias = bias;
  c.options = std::move(options);
  return c;
}

/// Weights at a scale where every term matters: randomize, then γ ~ N(0, 1.5²), β ~ N(0, 0.5²) so that q·k/n is
/// O(0.1–1) and of both signs.
void prepare(nn::GatedAttentionUnit& m, std::uint64_t seed, DType dtype) {
  randomize(m, seed);
  fill_normal(m.gamma, seed + 100, 0.0, 1.5);
  fill_normal(m.beta, seed + 200, 0.0, 0.5);
  m.to(dtype);
}

/// max |got − want| / max(1, max |want|): the linear part is unbounded, so outputs can reach O(100).
double rel_error(const Vec& got, const Vec& want) {
  double scale = 1.0;
  for (double w : want) scale = std::max(scale, std::abs(w));
  return ref::max_diff(got, want) / scale;
}

double tolerance(DType dtype) { return dtype == DType::Float64 ? 1e-10 : 1e-5; }

}  // namespace

TEST_CASE("GatedAttentionUnit: forward equals the per-position loop and the KV-cache step") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (bool rope : {false, true})
      for (bool bias : {true, false})
        for (i64 T : {1, 7, 13}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(rope);
          CAPTURE(bias);
          CAPTURE(T);
          nn::GatedAttentionUnit m(config(16, rope, {{"expansion", 1.5}, {"shared", 6}}, bias));
          REQUIRE(m.expanded_dim == 12);
          prepare(m, 3, dtype);
          const Tensor x = normal({2, T, 8}, 5, dtype);
          const Tensor y = m(x);
          REQUIRE(y.shape() == Shape{2, T, 8});
          CHECK(y.dtype() == dtype);
          CHECK(rel_error(vec(y), reference_gau(m, vec(x), 2, T)) < tolerance(dtype));
          CHECK(rel_error(vec(step_all(m, x)), vec(y)) < tolerance(dtype));
        }
}

TEST_CASE("MixedChunkAttention: chunked forward equals the unchunked double loop and the fixed-size step") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (bool rope : {false, true})
      for (double chunk : {1.0, 4.0, 5.0, 16.0})
        for (i64 T : {1, 7, 13}) {
          CAPTURE(dtype_name(dtype));
          CAPTURE(rope);
          CAPTURE(chunk);
          CAPTURE(T);
          nn::MixedChunkAttention m(config(16, rope, {{"shared", 6}, {"chunk", chunk}}));
          REQUIRE(m.chunk == static_cast<i64>(chunk));
          prepare(m, 4, dtype);
          const Tensor x = normal({2, T, 8}, 6, dtype);
          const Tensor y = m(x);
          REQUIRE(y.shape() == Shape{2, T, 8});
          CHECK(y.dtype() == dtype);
          CHECK(rel_error(vec(y), reference_flash(m, vec(x), 2, T)) < tolerance(dtype));
          CHECK(rel_error(vec(step_all(m, x)), vec(y)) < tolerance(dtype));
        }
}

TEST_CASE("MixedChunkAttention: with C = T = max_len and the linear views zeroed it equals GatedAttentionUnit") {
  for (bool rope : {false, true})
    for (i64 T : {16, 11}) {
      CAPTURE(rope);
      CAPTURE(T);
      nn::MixedChunkAttention flash(config(16, rope, {{"shared", 6}, {"chunk", 16}}));
      nn::GatedAttentionUnit gau(config(16, rope, {{"shared", 6}}));
      prepare(flash, 8, DType::Float64);
      gau.to(DType::Float64);
      {
        NoGradGuard no_grad;
        for (const char* name : {"uvz_proj.weight", "uvz_proj.bias", "o_proj.weight", "o_proj.bias"})
          param_of(gau, name).copy_(param_of(flash, name));
        gau.gamma.copy_(narrow(flash.gamma, 0, 0, 2));
        gau.beta.copy_(narrow(flash.beta, 0, 0, 2));
        narrow(flash.gamma, 0, 2, 2).zero_();
        narrow(flash.beta, 0, 2, 2).zero_();
      }
      const Tensor x = normal({2, T, 8}, 9);
      const Tensor y = gau(x);
      CHECK(max_abs_diff(flash(x), y) < 1e-12);
      CHECK(ref::max_diff(vec(y), reference_gau(gau, vec(x), 2, T)) < 1e-10);
    }
}

TEST_CASE("MixedChunkAttention and GatedAttentionUnit: perturbing token t leaves every earlier output bit-identical") {
  nn::MixedChunkAttention flash(config(64, true, {{"shared", 6}, {"chunk", 16}}));
  // Output t itself changes for most t, not all: relu² may clip q_t·k_t to 0.
  prepare(flash, 10, DType::Float64);
  CHECK(check_causal(flash, normal({2, 64, 8}, 1)) > 48);
  nn::GatedAttentionUnit gau(config(64, false, {{"shared", 6}}));
  prepare(gau, 11, DType::Float64);
  CHECK(check_causal(gau, normal({2, 64, 8}, 1)) > 48);
}

TEST_CASE("relu_squared_scores: equals the masked loop, is non-negative, and has zero gradient where q k is negative") {
  const Tensor q = normal({2, 5, 3}, 1), k = normal({2, 7, 3}, 2);
  const Vec a = vec(nn::relu_squared_scores(q, k, 2.0)), qv = vec(q), kv = vec(k);
  REQUIRE(a.size() == 2u * 5 * 7);
  i64 clipped = 0;
  for (i64 b = 0; b < 2; ++b)
    for (i64 i = 0; i < 5; ++i)
      for (i64 j = 0; j < 7; ++j) {
        const double arg = dot(&qv[(b * 5 + i) * 3], &kv[(b * 7 + j) * 3], 3) / 2.0;
        const bool visible = j <= 7 - 5 + i;
        const double got = a[(b * 5 + i) * 7 + j];
        CHECK(got >= 0.0);
        CHECK(std::abs(got - (visible && arg > 0 ? arg * arg : 0.0)) < 1e-14);
        clipped += visible && arg < 0 ? 1 : 0;
      }
  CHECK(clipped > 0);  // the clipping was exercised
  // One pair: A = relu(q·k/n)², so ∂A/∂q = 2 (q·k/n) k / n when q·k > 0 and 0 when q·k < 0.
  for (double sign : {1.0, -1.0}) {
    CAPTURE(sign);
    const Tensor q1 = leaf_of(from_vector({0.5, -1.0, 2.0}, {1, 1, 3}, DType::Float64));
    const Tensor k1 = leaf_of(from_vector({sign * 1.5, 0.25, sign * 0.75}, {1, 1, 3}, DType::Float64));
    sum(nn::relu_squared_scores(q1, k1, 4.0)).backward();
    const double qk = 0.5 * sign * 1.5 - 0.25 + 2.0 * sign * 0.75;  // 1.0 or −2.5
    const Vec kk = vec(k1), gq = vec(q1.grad());
    for (i64 c = 0; c < 3; ++c) CHECK(gq[c] == doctest::Approx(qk > 0 ? 2.0 * qk / 16.0 * kk[c] : 0.0).epsilon(1e-14));
    if (qk < 0) CHECK(gq[2] == 0.0);
  }
}

TEST_CASE("gradcheck: GatedAttentionUnit and MixedChunkAttention in Float64, T = 7, chunk 3") {
  nn::GatedAttentionUnit gau(config(8, true, {{"expansion", 1}, {"shared", 4}}));
  prepare(gau, 5, DType::Float64);
  check_mixer_gradcheck(gau, normal({2, 7, 8}, 6));
  nn::MixedChunkAttention flash(config(8, true, {{"expansion", 1}, {"shared", 4}, {"chunk", 3}}));
  prepare(flash, 6, DType::Float64);
  check_mixer_gradcheck(flash, normal({2, 7, 8}, 7));
  nn::MixedChunkAttention plain(config(8, false, {{"expansion", 0.5}, {"shared", 2}, {"chunk", 2}}, false));
  prepare(plain, 7, DType::Float64);
  check_mixer_gradcheck(plain, normal({2, 7, 8}, 8));
}

TEST_CASE("GatedAttentionUnit: defaults e = 2D, s = 128, C = 256, gamma ~ N(0, 0.02^2) and beta = 0") {
  nn::MixerConfig c = config(32, false, {});
  Generator gen(3);
  c.gen = &gen;
  nn::MixedChunkAttention m(c);
  CHECK(m.expanded_dim == 16);
  CHECK(m.shared_dim == 128);
  CHECK(m.chunk == 256);
  CHECK(m.context_len == 32);
  REQUIRE(m.gamma.shape() == Shape{4, 128});
  REQUIRE(m.beta.shape() == Shape{4, 128});
  const Vec g = vec(m.gamma);
  double mean = 0.0, sq = 0.0;
  for (double v : g) mean += v;
  mean /= static_cast<double>(g.size());
  for (double v : g) sq += (v - mean) * (v - mean);
  const double sd = std::sqrt(sq / static_cast<double>(g.size() - 1));
  // 512 samples: the mean's sd is 0.02/√512 ≈ 8.8e-4 and the sd's ≈ 0.02/√1024 = 6.3e-4; 5σ margins.
  CHECK(std::abs(mean) < 5 * 8.9e-4);
  CHECK(std::abs(sd - 0.02) < 5 * 6.3e-4);
  for (double v : vec(m.beta)) CHECK(v == 0.0);
  CHECK(nn::GatedAttentionUnit(config(32, false, {})).gamma.shape() == Shape{2, 128});
}

TEST_CASE("GatedAttentionUnit and MixedChunkAttention: bad options, shapes and states throw ember::Error") {
  CHECK_THROWS_EMBER(nn::GatedAttentionUnit(config(16, false, {{"expansion", 0}})), "GatedAttentionUnit: e = ");
  CHECK_THROWS_EMBER(nn::GatedAttentionUnit(config(16, false, {{"expansion", 0.3}})), "positive integer, got 2.4");
  CHECK_THROWS_EMBER(nn::GatedAttentionUnit(config(16, false, {{"shared", 0}})), "option shared must be");
  CHECK_THROWS_EMBER(nn::GatedAttentionUnit(config(16, false, {{"shared", 2.5}})), "option shared must be");
  CHECK_THROWS_EMBER(nn::GatedAttentionUnit(config(0, false, {})), "max_len must be");
  CHECK_THROWS_EMBER(nn::GatedAttentionUnit(config(16, true, {{"shared", 5}})),
                     "RoPE needs an even shared dim s, got 5");
  CHECK_THROWS_EMBER(nn::MixedChunkAttention(config(16, false, {{"chunk", 0}})), "MixedChunkAttention: option chunk");
  CHECK_THROWS_EMBER(nn::MixedChunkAttention(config(16, false, {{"chunk", 1.5}})), "option chunk must be");
  CHECK_THROWS_EMBER(nn::MixedChunkAttention(config(16, false, {{"chunk", NAN}})), "option chunk must be");
  nn::MixerConfig no_width = config(16, false, {});
  no_width.d_model = 0;
  CHECK_THROWS_EMBER(nn::GatedAttentionUnit{no_width}, "GatedAttentionUnit: d_model must be a positive integer, got 0");

  nn::GatedAttentionUnit gau(config(16, false, {{"shared", 4}}));
  nn::MixedChunkAttention flash(config(16, false, {{"shared", 4}, {"chunk", 4}}));
  for (nn::SequenceMixer* m : {static_cast<nn::SequenceMixer*>(&gau), static_cast<nn::SequenceMixer*>(&flash)}) {
    CAPTURE(m->type_name());
    CHECK_THROWS_EMBER((*m)(zeros({2, 5, 7})), "expected x [B, T, 8], got [2, 5, 7]");
    CHECK_THROWS_EMBER((*m)(zeros({5, 8})), "expected x [B, T, 8], got [5, 8]");
    CHECK_THROWS_EMBER(m->init_state(0, 4), "init_state needs batch > 0");
    auto state = m->init_state(2, 2);
    CHECK_THROWS_EMBER(m->step(zeros({3, 8}), *state), "step expected x_t [2, 8], got [3, 8]");
    ForeignState foreign;
    CHECK_THROWS_EMBER(m->step(zeros({2, 8}), foreign), "step needs the state made by its init_state");
  }
  auto cache = gau.init_state(1, 2);
  gau.step(zeros({1, 8}), *cache);
  gau.step(zeros({1, 8}), *cache);
  CHECK_THROWS_EMBER(gau.step(zeros({1, 8}), *cache), "GatedAttentionUnit: the KV cache is full (2 tokens)");
  auto fixed = flash.init_state(1, 2);  // a fixed-size state: max_len does not bound FLASH's decoding
  for (int t = 0; t < 6; ++t) CHECK(flash.step(zeros({1, 8}), *fixed).shape() == Shape{1, 8});
  CHECK_THROWS_EMBER(nn::relu_squared_scores(zeros({2, 3, 4}), zeros({2, 3, 5}), 1.0),
                     "relu_squared_scores: expected q [..., Tq, s] and k [..., Tk, s], got q [2, 3, 4], k [2, 3, 5]");
  CHECK_THROWS_EMBER(nn::relu_squared_scores(zeros({1, 3, 4}), zeros({1, 3, 4}), 0.0), "n must be > 0");
}
