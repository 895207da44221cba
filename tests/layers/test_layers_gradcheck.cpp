/// \file
/// \brief gradcheck (central differences in Float64) for every layer: the functionals with Float64
/// leaves, and the modules converted with to(Float64) and checked w.r.t. their input and parameters.
/// Weights are re-drawn at O(1) scale first (layer_helpers.h: randomize) so that no path has a
/// gradient too small for the tolerance to notice.
#include <functional>

#include "layers/attention/multi_head_attention.h"
#include "layers/functional.h"
#include "layers/linear.h"
#include "layers/mlp.h"
#include "layers/models/language_model.h"
#include "layers/norm.h"
#include "layer_helpers.h"

using namespace ember;
using namespace ember::test;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// Tighter than gradcheck's defaults (1e-5, 1e-3): Float64 central differences are good to ~1e-9 here.
constexpr double kEps = 1e-6, kAtol = 1e-7, kRtol = 1e-5;

/// A Float64 leaf that requires grad.

/// gradcheck of fn at inputs; also checks that every input received a gradient of its shape.
void check(const std::string& name, const Fn& fn, const std::vector<Tensor>& inputs) {
  CAPTURE(name);
  const GradcheckResult r = gradcheck(fn, inputs, kEps, kAtol, kRtol);
  CHECK_MESSAGE(r.ok, name << ": " << r.message);
  for (const auto& x : inputs)
    if (x.requires_grad()) {
      REQUIRE(x.grad().defined());
      CHECK(x.grad().shape() == x.shape());
    }
}

/// The named parameters of m whose names are in `names`, in that order.
std::vector<Tensor> params(const nn::Module& m, const std::vector<std::string>& names) {
  std::vector<Tensor> out;
  for (const auto& n : names) out.push_back(param_of(m, n));
  return out;
}

}  // namespace

TEST_CASE("gradcheck: linear with and without bias, 3-D input") {
  const Tensor x = leaf_of(normal({2, 3, 4}, 1)), W = leaf_of(normal({5, 4}, 2)), b = leaf_of(normal({5}, 3));
  check("linear", [](const auto& v) { return nn::linear(v[0], v[1], v[2]); }, {x, W, b});
  check("linear no bias", [](const auto& v) { return nn::linear(v[0], v[1]); }, {x, W});
  Generator gen(4);
  nn::Linear lin(4, 3, true, &gen);
  lin.to(DType::Float64);
  check("nn::Linear", [&](const auto& v) { return lin(v[0]); }, {x, lin.weight, lin.bias});
}

TEST_CASE("gradcheck: embedding (repeated ids accumulate)") {
  const Tensor W = leaf_of(normal({6, 3}, 1));
  const Tensor ids = from_vector(std::vector<std::int64_t>{5, 0, 5, 2, 2, 5}, {2, 3});
  check("embedding", [&](const auto& v) { return nn::embedding(ids, v[0]); }, {W});
  // The gradient of sum(y) w.r.t. row r is the number of times r appears.
  Tensor W2 = leaf_of(normal({6, 3}, 1));
  sum(nn::embedding(ids, W2)).backward();
  const auto g = W2.grad().to_vector<double>();
  const double count[6] = {1, 0, 2, 0, 0, 3};
  for (int r = 0; r < 6; ++r)
    for (int j = 0; j < 3; ++j) CHECK(g[r * 3 + j] == count[r]);
}

TEST_CASE("gradcheck: layer_norm with and without weight and bias") {
  const Tensor x = leaf_of(normal({2, 3, 5}, 1, DType::Float64, 2.0) + 1.0);
  const Tensor w = leaf_of(normal({5}, 2) + 1.0), b = leaf_of(normal({5}, 3));
  check("layer_norm w, b", [](const auto& v) { return nn::layer_norm(v[0], v[1], v[2]); }, {x, w, b});
  check("layer_norm w", [](const auto& v) { return nn::layer_norm(v[0], v[1], Tensor()); }, {x, w});
  check("layer_norm b", [](const auto& v) { return nn::layer_norm(v[0], Tensor(), v[1]); }, {x, b});
  check("layer_norm none", [](const auto& v) { return nn::layer_norm(v[0], Tensor(), Tensor()); }, {x});
  check("layer_norm eps 0.3", [](const auto& v) { return nn::layer_norm(v[0], v[1], v[2], 0.3); }, {x, w, b});
}

TEST_CASE("gradcheck: rms_norm with and without weight") {
  const Tensor x = leaf_of(normal({2, 3, 5}, 1, DType::Float64, 2.0));
  const Tensor w = leaf_of(normal({5}, 2) + 1.0);
  check("rms_norm w", [](const auto& v) { return nn::rms_norm(v[0], v[1]); }, {x, w});
  check("rms_norm none", [](const auto& v) { return nn::rms_norm(v[0], Tensor()); }, {x});
  check("rms_norm eps 0.5", [](const auto& v) { return nn::rms_norm(v[0], v[1], 0.5); }, {x, w});
}

TEST_CASE("norm gradients on many rows (threaded kernels) equal those of the composed formula") {
  // 1000 x 64 elements is above the CPU backend's parallel grain, so the fused backward splits rows
  // over threads and sums dw, db per thread. The reference is the same math built from autograd's
  // elementwise ops and reductions: (x − mean) · rsqrt(var + eps) · w + b, and x · rsqrt(mean(x²) + eps) · w.
  const Tensor x0 = normal({1000, 64}, 1, DType::Float64, 2.0) + 0.5, up = normal({1000, 64}, 2);
  const Tensor w0 = normal({64}, 3) + 1.0, b0 = normal({64}, 4);
  for (bool rms : {false, true}) {
    CAPTURE(rms);
    Tensor x1 = leaf_of(x0), w1 = leaf_of(w0), b1 = leaf_of(b0), x2 = leaf_of(x0), w2 = leaf_of(w0), b2 = leaf_of(b0);
    const double eps = 1e-5;
    if (rms) {
      sum(nn::rms_norm(x1, w1, eps) * up).backward();
      sum(x2 * rsqrt(mean(x2 * x2, {-1}, true) + eps) * w2 * up).backward();
    } else {
      sum(nn::layer_norm(x1, w1, b1, eps) * up).backward();
      const Tensor mu = mean(x2, {-1}, true);
      sum(((x2 - mu) * rsqrt(var(x2, {-1}, false, true) + eps) * w2 + b2) * up).backward();
      CHECK(max_abs_diff(b1.grad(), b2.grad()) < 1e-9);
    }
    CHECK(max_abs_diff(x1.grad(), x2.grad()) < 1e-10);
    CHECK(max_abs_diff(w1.grad(), w2.grad()) < 1e-9);
  }
}

TEST_CASE("gradcheck: nn::LayerNorm and nn::RMSNorm modules") {
  nn::LayerNorm ln(6);
  nn::RMSNorm rn(6);
  ln.to(DType::Float64);
  rn.to(DType::Float64);
  randomize(ln, 1);
  randomize(rn, 2);
  const Tensor x = leaf_of(normal({4, 6}, 3));
  check("LayerNorm", [&](const auto& v) { return ln(v[0]); }, {x, ln.weight, ln.bias});
  check("RMSNorm", [&](const auto& v) { return rn(v[0]); }, {x, rn.weight});
}

TEST_CASE("gradcheck: MLP GELU and SwiGLU w.r.t. input and every parameter") {
  for (auto kind : {nn::MLPKind::Gelu, nn::MLPKind::SwiGLU}) {
    for (bool bias : {true, false}) {
      Generator gen(1);
      nn::MLP m(4, 6, kind, bias, &gen);
      m.to(DType::Float64);
      randomize(m, 7);
      std::vector<Tensor> in{leaf_of(normal({2, 3, 4}, 2))};
      for (const auto& p : m.parameters()) in.push_back(p);
      check(std::string(kind == nn::MLPKind::Gelu ? "gelu" : "swiglu") + (bias ? " bias" : ""),
            [&](const auto& v) { return m(v[0]); }, in);
    }
  }
}

TEST_CASE("gradcheck: naive_attention, causal and not, Tq = Tk and Tq < Tk") {
  for (auto [Tq, Tk] : {std::pair<std::int64_t, std::int64_t>{4, 4}, {2, 5}}) {
    const Tensor q = leaf_of(normal({2, 2, Tq, 3}, 1)), k = leaf_of(normal({2, 2, Tk, 3}, 2)),
                 v = leaf_of(normal({2, 2, Tk, 3}, 3));
    for (bool causal : {true, false})
      check("attention Tq " + std::to_string(Tq) + " Tk " + std::to_string(Tk) + (causal ? " causal" : ""),
            [causal](const auto& x) { return nn::naive_attention(x[0], x[1], x[2], causal); }, {q, k, v});
  }
}

TEST_CASE("gradcheck: apply_rope at start 0 and 3") {
  const auto tables = nn::rope_tables(16, 6, 10000.0, DType::Float64);
  const Tensor c = tables.first, s = tables.second;
  const Tensor x = leaf_of(normal({2, 2, 4, 6}, 1));
  for (std::int64_t start : {0, 3})
    check("apply_rope start " + std::to_string(start),
          [&, start](const auto& v) { return nn::apply_rope(v[0], c, s, start); }, {x});
}

TEST_CASE("gradcheck: MultiHeadAttention forward with and without RoPE, with and without bias") {
  for (bool rope : {false, true})
    for (bool bias : {true, false}) {
      nn::MixerConfig c;
      c.d_model = 8;
      c.n_heads = 2;
      c.max_len = 8;
      c.rope = rope;
      c.bias = bias;
      nn::MultiHeadAttention mha(c);
      mha.to(DType::Float64);
      randomize(mha, 11);
      std::vector<Tensor> in{leaf_of(normal({2, 5, 8}, 3))};
      for (const auto& p : mha.parameters()) in.push_back(p);
      check(std::string("mha") + (rope ? " rope" : "") + (bias ? " bias" : ""),
            [&](const auto& v) { return mha(v[0]); }, in);
    }
}

TEST_CASE("gradcheck: whole LanguageModel logits w.r.t. parameters of every kind") {
  SUBCASE("learned positions, LayerNorm, GELU, untied") {
    // Tiny (D = 4, two heads of 2): every element of every listed parameter costs two forwards.
    nn::LanguageModelConfig c;
    c.vocab_size = 5;
    c.d_model = 4;
    c.n_layers = 2;
    c.n_heads = 2;
    c.max_len = 6;
    c.mlp_hidden = 6;
    nn::LanguageModel lm(c);
    lm.to(DType::Float64);
    randomize(lm, 5);
    const Tensor ids = from_vector(std::vector<std::int64_t>{1, 4, 0, 3, 3, 2, 2, 1, 4, 0}, {2, 5});
    check("lm", [&](const auto&) { return lm(ids); },
          params(lm, {"tok_emb.weight", "pos_emb.weight", "layers.0.norm1.weight", "layers.0.norm1.bias",
                      "layers.0.mixer.q_proj.weight", "layers.0.mixer.k_proj.bias", "layers.1.mixer.v_proj.weight",
                      "layers.1.mixer.o_proj.bias", "layers.1.norm2.weight", "layers.0.mlp.up_proj.weight",
                      "layers.1.mlp.down_proj.bias", "norm.weight", "norm.bias", "head.weight"}));
  }
  SUBCASE("RoPE, RMSNorm, SwiGLU, tied head, no bias") {
    nn::LanguageModelConfig c;
    c.vocab_size = 5;
    c.d_model = 4;
    c.n_layers = 2;
    c.n_heads = 2;
    c.max_len = 6;
    c.positions = "rope";
    c.norm = "rmsnorm";
    c.mlp = "swiglu";
    c.mlp_hidden = 6;
    c.tie_weights = true;
    c.bias = false;
    nn::LanguageModel lm(c);
    lm.to(DType::Float64);
    randomize(lm, 6);
    const Tensor ids = from_vector(std::vector<std::int64_t>{1, 4, 0, 3, 3, 2, 2, 1, 4, 0}, {2, 5});
    check("lm rope tied", [&](const auto&) { return lm(ids); },
          params(lm, {"tok_emb.weight", "layers.0.norm1.weight", "layers.0.mixer.k_proj.weight",
                      "layers.1.mlp.gate_proj.weight", "layers.1.mlp.down_proj.weight", "norm.weight"}));
  }
}
