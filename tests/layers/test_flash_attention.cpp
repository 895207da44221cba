/// \file
/// \brief FlashAttention (technique notes §1): the backend kernels and nn::flash_attention against
/// naive_attention and a double loop (outputs and q, k, v gradients, causal and not, sizes off the 64 tile,
/// Tq < Tk bottom-right aligned, odd d, B and H > 1), the row logsumexp against a naive loop, a fully masked
/// row, large logits, Float64 gradcheck, and the FlashAttention mixer against MultiHeadAttention with the same
/// weights (forward, gradients, stepping, causality, registry).
#include <cmath>
#include <limits>

#include "layers/attention/flash_attention.h"
#include "layers/functional.h"
#include "layer_helpers.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;

namespace {

struct Dims {
  std::int64_t B, H, Tq, Tk, d;
};

/// Sizes around the 64-row tiles: single rows, off-multiples, Tq < Tk (decode-like), odd d, B and H > 1.
const std::vector<Dims> kSizes = {{1, 1, 1, 1, 5},   {2, 3, 7, 7, 5},  {2, 2, 65, 65, 5}, {1, 2, 130, 130, 8},
                                  {2, 2, 7, 65, 5},  {1, 1, 65, 130, 3}, {2, 1, 1, 130, 5}, {1, 1, 64, 128, 4}};

std::string name_of(const Dims& s, bool causal) {
  return "B " + std::to_string(s.B) + " H " + std::to_string(s.H) + " Tq " + std::to_string(s.Tq) + " Tk " +
         std::to_string(s.Tk) + " d " + std::to_string(s.d) + (causal ? " causal" : "");
}


using AttentionFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, bool);

/// {out, dq, dk, dv} of loss = sum(out ⊙ w) through `fn`.
std::vector<Tensor> run(AttentionFn fn, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& w,
                        bool causal) {
  const Tensor lq = leaf_of(q), lk = leaf_of(k), lv = leaf_of(v);
  const Tensor out = fn(lq, lk, lv, causal);
  sum(mul(out, w)).backward();
  return {out.detach(), lq.grad(), lk.grad(), lv.grad()};
}

/// The natural-log logsumexp of each row of the scaled, bottom-right causally masked scores: [BH·Tq].
Vec naive_lse(const Vec& q, const Vec& k, std::int64_t BH, std::int64_t Tq, std::int64_t Tk, std::int64_t d,
              bool causal) {
  const double s = 1.0 / std::sqrt(static_cast<double>(d));
  Vec out(BH * Tq);
  for (std::int64_t b = 0; b < BH; ++b)
    for (std::int64_t i = 0; i < Tq; ++i) {
      double total = 0.0;
      for (std::int64_t j = 0; j < Tk; ++j) {
        if (causal && j > Tk - Tq + i) continue;
        double dot = 0.0;
        for (std::int64_t c = 0; c < d; ++c) dot += q[(b * Tq + i) * d + c] * k[(b * Tk + j) * d + c];
        total += std::exp(s * dot);
      }
      out[b * Tq + i] = std::log(total);
    }
  return out;
}

nn::MixerConfig config(std::int64_t d_model, std::int64_t heads, bool rope, std::int64_t max_len = 16) {
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = heads;
  c.rope = rope;
  c.max_len = max_len;
  return c;
}


}  // namespace

TEST_CASE("flash_attention: outputs and q, k, v gradients equal naive_attention and the double loop") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (const Dims& s : kSizes)
      for (bool causal : {false, true}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(name_of(s, causal));
        const Tensor q = normal({s.B, s.H, s.Tq, s.d}, 1, dtype), k = normal({s.B, s.H, s.Tk, s.d}, 2, dtype),
                     v = normal({s.B, s.H, s.Tk, s.d}, 3, dtype), w = normal({s.B, s.H, s.Tq, s.d}, 4, dtype);
        const auto flash = run(nn::flash_attention, q, k, v, w, causal);
        const auto naive = run(nn::naive_attention, q, k, v, w, causal);
        const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
        CHECK(flash[0].dtype() == dtype);
        for (int i = 0; i < 4; ++i) {
          CAPTURE(i);
          REQUIRE(flash[i].defined());
          CHECK(max_abs_diff(flash[i], naive[i]) < tol);
        }
        CHECK(ref::max_diff(vec(flash[0]), ref::attention(vec(q), vec(k), vec(v), s.B * s.H, s.Tq, s.Tk, s.d,
                                                          causal)) < tol);
      }
}

TEST_CASE("flash_attention_forward: lse is the logsumexp of the scaled masked scores, from a naive loop") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (const Dims& s : kSizes)
      for (bool causal : {false, true}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(name_of(s, causal));
        const Tensor q = normal({s.B, s.H, s.Tq, s.d}, 5, dtype), k = normal({s.B, s.H, s.Tk, s.d}, 6, dtype),
                     v = normal({s.B, s.H, s.Tk, s.d}, 7, dtype);
        Tensor out = empty({s.B, s.H, s.Tq, s.d}, dtype), lse = empty({s.B, s.H, s.Tq}, dtype);
        backend_for(Device::cpu())
            .flash_attention_forward(q, k, v, 1.0 / std::sqrt(static_cast<double>(s.d)), causal, out, lse);
        CHECK(ref::max_diff(vec(lse), naive_lse(vec(q), vec(k), s.B * s.H, s.Tq, s.Tk, s.d, causal)) <
              (dtype == DType::Float64 ? 1e-12 : 1e-5));
        CHECK(ref::max_diff(vec(out), ref::attention(vec(q), vec(k), vec(v), s.B * s.H, s.Tq, s.Tk, s.d, causal)) <
              (dtype == DType::Float64 ? 1e-12 : 1e-5));
      }
}

TEST_CASE("flash_attention_forward: a row with no visible key gives out 0 and lse -inf, and backward 0") {
  // Causal with Tq = 5 > Tk = 3: rows 0 and 1 (positions -2, -1) see no key; row 2 sees key 0 only.
  const Tensor q = normal({1, 1, 5, 4}, 1), k = normal({1, 1, 3, 4}, 2), v = normal({1, 1, 3, 4}, 3);
  Tensor out = empty({1, 1, 5, 4}, DType::Float64), lse = empty({1, 1, 5}, DType::Float64);
  auto& be = backend_for(Device::cpu());
  be.flash_attention_forward(q, k, v, 0.5, true, out, lse);
  const Vec o = vec(out), l = vec(lse), vv = vec(v), qv = vec(q), kv = vec(k);
  for (int i = 0; i < 8; ++i) CHECK(o[i] == 0.0);
  CHECK(l[0] == -std::numeric_limits<double>::infinity());
  CHECK(l[1] == -std::numeric_limits<double>::infinity());
  for (int c = 0; c < 4; ++c) CHECK(o[8 + c] == doctest::Approx(vv[c]).epsilon(1e-14));  // one key: weight 1
  double dot = 0.0;
  for (int c = 0; c < 4; ++c) dot += qv[8 + c] * kv[c];
  CHECK(l[2] == doctest::Approx(0.5 * dot).epsilon(1e-14));
  Tensor dq = empty(q.shape(), DType::Float64), dk = empty(k.shape(), DType::Float64), dv = empty(v.shape(), DType::Float64);
  be.flash_attention_backward(q, k, v, out, lse, normal({1, 1, 5, 4}, 4), 0.5, true, dq, dk, dv);
  const Vec g = vec(dq);
  for (int i = 0; i < 8; ++i) CHECK(g[i] == 0.0);
  for (double x : vec(dk)) CHECK(std::isfinite(x));
  for (double x : vec(dv)) CHECK(std::isfinite(x));
}

TEST_CASE("flash_attention: large logits stay finite and equal the double loop") {
  // Scores of order 1e3: the online max keeps every exp in range.
  const Tensor q = normal({1, 2, 70, 4}, 1, DType::Float64, 40.0), k = normal({1, 2, 70, 4}, 2),
               v = normal({1, 2, 70, 4}, 3);
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    const Vec o = vec(nn::flash_attention(q, k, v, causal));
    for (double x : o) REQUIRE(std::isfinite(x));
    CHECK(ref::max_diff(o, ref::attention(vec(q), vec(k), vec(v), 2, 70, 70, 4, causal)) < 1e-10);
  }
}

TEST_CASE("flash_attention: bad shapes and a causal Tq > Tk throw ember::Error naming them") {
  const Tensor q = normal({1, 2, 3, 4}, 1), k = normal({1, 2, 5, 4}, 2);
  CHECK_THROWS_EMBER(nn::flash_attention(q, normal({1, 2, 5, 3}, 2), k), "[1, 2, 5, 3]");
  CHECK_THROWS_EMBER(nn::flash_attention(normal({2, 3, 4}, 1), k, k), "[2, 3, 4]");
  CHECK_THROWS_EMBER(nn::flash_attention(k, q, q, true), "causal attention needs Tq <= Tk");
  CHECK(nn::flash_attention(k, q, q, false).shape() == Shape{1, 2, 5, 4});
  CHECK_THROWS_EMBER(nn::flash_attention(q, k.to(DType::Float32), k), "dtype");
}

TEST_CASE("gradcheck: flash_attention in Float64, causal and not, Tq = Tk, Tq < Tk and across a tile edge") {
  for (const Dims& s : std::vector<Dims>{{2, 2, 4, 4, 3}, {2, 2, 2, 5, 3}, {1, 1, 67, 67, 2}, {1, 1, 3, 66, 2}})
    for (bool causal : {true, false}) {
      CAPTURE(name_of(s, causal));
      const Tensor q = leaf_of(normal({s.B, s.H, s.Tq, s.d}, 1)), k = leaf_of(normal({s.B, s.H, s.Tk, s.d}, 2)),
                   v = leaf_of(normal({s.B, s.H, s.Tk, s.d}, 3));
      const GradcheckResult r = gradcheck(
          [causal](const auto& x) { return nn::flash_attention(x[0], x[1], x[2], causal); }, {q, k, v}, 1e-6, 1e-7,
          1e-5);
      CHECK_MESSAGE(r.ok, r.message);
    }
}

TEST_CASE("FlashAttention mixer: forward and gradients equal MultiHeadAttention with the same weights") {
  for (bool rope : {false, true})
    for (DType dtype : {DType::Float64, DType::Float32}) {
      CAPTURE(rope);
      CAPTURE(dtype_name(dtype));
      nn::FlashAttention flash(config(12, 3, rope, 80));
      flash.to(dtype);
      randomize(flash, 3);
      nn::MultiHeadAttention mha(config(12, 3, rope, 80));
      mha.to(dtype);
      mha.load_state_dict(flash.state_dict());
      const Tensor x = normal({2, 70, 12}, 4, dtype), w = normal({2, 70, 12}, 5, dtype);
      const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
      const Tensor xf = leaf_of(x), xm = leaf_of(x);
      const Tensor yf = flash(xf), ym = mha(xm);
      CHECK(max_abs_diff(yf, ym) < tol);
      sum(mul(yf, w)).backward();
      sum(mul(ym, w)).backward();
      CHECK(max_abs_diff(xf.grad(), xm.grad()) < tol);
      CHECK(max_abs_diff(flash.q_proj->weight.grad(), mha.q_proj->weight.grad()) < tol);
      CHECK(max_abs_diff(flash.k_proj->weight.grad(), mha.k_proj->weight.grad()) < tol);
      CHECK(max_abs_diff(flash.v_proj->weight.grad(), mha.v_proj->weight.grad()) < tol);
    }
}

TEST_CASE("FlashAttention mixer: stepping with the KV cache equals forward") {
  for (bool rope : {false, true}) {
    CAPTURE(rope);
    nn::FlashAttention m(config(12, 3, rope));
    randomize(m, 7);
    const Tensor x32 = normal({2, 9, 12}, 8, DType::Float32);
    CHECK(max_abs_diff(step_all(m, x32), m(x32)) < 1e-5);
    m.to(DType::Float64);
    const Tensor x64 = x32.to(DType::Float64);
    CHECK(max_abs_diff(step_all(m, x64), m(x64)) < 1e-10);
  }
}

TEST_CASE("FlashAttention mixer: causal, changing x at position t changes no output before t") {
  nn::FlashAttention m(config(8, 2, false, 80));
  m.to(DType::Float64);
  randomize(m, 9);
  const Tensor x = normal({2, 70, 8}, 10);
  const Tensor y = m(x);
  for (std::int64_t t : {0, 3, 64, 69}) {
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

TEST_CASE("make_mixer: 'flash_attention' makes a FlashAttention printed as such") {
  const auto c = config(8, 2, true);
  auto mixer = nn::make_mixer("flash_attention", c);
  REQUIRE(mixer != nullptr);
  CHECK(dynamic_cast<nn::FlashAttention*>(mixer.get()) != nullptr);
  CHECK(mixer->type_name() == "FlashAttention");
  CHECK(mixer->str().starts_with("FlashAttention(d_model=8, heads=2, rope)"));
  const auto names = nn::mixer_names();
  CHECK(std::find(names.begin(), names.end(), "flash_attention") != names.end());
  CHECK(mixer->forward(normal({1, 3, 8}, 1, DType::Float32)).shape() == Shape{1, 3, 8});
}
