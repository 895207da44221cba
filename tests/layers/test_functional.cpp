/// \file
/// \brief Forward values of the functional layers and of the basic modules against naive double loops
/// (reference_layers.h), plus the closed-form oracles of technique notes §14: RMSNorm (unit RMS, scale
/// invariance, xᵀ·∂L/∂x = 0), RoPE (norm preserved, position 0 = identity, relative positions only,
/// the d = 2 rotation, the (i, i + d/2) pairing) and dropout's statistics.
#include <cmath>
#include <numeric>

#include "layers/activation.h"
#include "layers/containers.h"
#include "layers/dropout.h"
#include "layers/functional.h"
#include "layers/linear.h"
#include "layers/mlp.h"
#include "layers/norm.h"
#include "layers/rope.h"
#include "layer_helpers.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;

namespace {

/// Per-dtype tolerance of a forward compared with a double-loop reference.
double tol(DType dtype) { return dtype == DType::Float64 ? 1e-12 : 1e-5; }

}  // namespace

TEST_CASE("linear: y = x Wᵀ + b against a loop, with and without bias, 2-D and 3-D input") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dtype));
    const Tensor W = normal({4, 5}, 1, dtype), b = normal({4}, 2, dtype);
    for (const Shape& xs : {Shape{3, 5}, Shape{2, 3, 5}, Shape{5}}) {
      const Tensor x = normal(xs, 3, dtype);
      Shape ys = xs;
      ys.back() = 4;
      const Tensor y = nn::linear(x, W, b), y0 = nn::linear(x, W);
      CHECK(y.shape() == ys);
      CHECK(y.dtype() == dtype);
      CHECK(ref::max_diff(vec(y), ref::linear(vec(x), vec(W), vec(b), 5, 4)) < tol(dtype));
      CHECK(ref::max_diff(vec(y0), ref::linear(vec(x), vec(W), {}, 5, 4)) < tol(dtype));
    }
  }
  // A non-contiguous input (a transposed view) gives the same values as its contiguous copy.
  const Tensor W = normal({4, 5}, 1), xt = transpose(normal({5, 3}, 4), 0, 1);
  CHECK(ref::max_diff(vec(nn::linear(xt, W)), ref::linear(vec(xt), vec(W), {}, 5, 4)) < 1e-12);
}

TEST_CASE("linear: bad shapes throw naming them") {
  const Tensor W = normal({4, 5}, 1);
  CHECK_THROWS_EMBER(nn::linear(normal({2, 3}, 2), W), "[2, 3]");
  CHECK_THROWS_EMBER(nn::linear(normal({2, 3}, 2), W), "[4, 5]");
  CHECK_THROWS_EMBER(nn::linear(normal({2, 5}, 2), W, normal({3}, 3)), "[3]");
  CHECK_THROWS_EMBER(nn::linear(normal({2, 5}, 2), normal({5}, 3)), "[5]");
  CHECK_THROWS_EMBER(nn::linear(normal({2, 5}, 2, DType::Float32), W), "linear: weight is float64 but the input is float32");
}

TEST_CASE("nn::Linear: forward equals the loop on its own weights, sizes and PyTorch's init bound") {
  Generator gen(7);
  nn::Linear lin(64, 3, true, &gen), nobias(6, 2, false, &gen);
  CHECK(lin.weight.shape() == Shape{3, 64});
  CHECK(lin.bias.shape() == Shape{3});
  CHECK_FALSE(nobias.bias.defined());
  CHECK(nobias.named_parameters().size() == 1);
  // Uniform on [-1/8, 1/8]: every value inside, and the spread covers most of it.
  const Vec w = vec(lin.weight);
  CHECK(*std::max_element(w.begin(), w.end()) <= 0.125);
  CHECK(*std::min_element(w.begin(), w.end()) >= -0.125);
  CHECK(*std::max_element(w.begin(), w.end()) > 0.1);
  CHECK(*std::min_element(w.begin(), w.end()) < -0.1);
  const Tensor x = normal({2, 3, 64}, 8, DType::Float32);
  CHECK(ref::max_diff(vec(lin(x)), ref::linear(vec(x), w, vec(lin.bias), 64, 3)) < 1e-5);
  const Tensor x6 = normal({4, 6}, 9, DType::Float32);
  CHECK(ref::max_diff(vec(nobias(x6)), ref::linear(vec(x6), vec(nobias.weight), {}, 6, 2)) < 1e-5);
  CHECK_THROWS_EMBER(nn::Linear(0, 3), "Linear");
}

TEST_CASE("glu: first half times the sigmoid of the second, against a loop, gradcheck, odd dims throw") {
  const Tensor z = normal({2, 3, 8}, 41).to(DType::Float64);
  const Vec zv = vec(z), y = vec(nn::glu(z));
  REQUIRE(nn::glu(z).shape() == Shape{2, 3, 4});
  Vec expected;
  for (std::size_t row = 0; row < 6; ++row)
    for (std::size_t i = 0; i < 4; ++i) expected.push_back(zv[row * 8 + i] / (1.0 + std::exp(-zv[row * 8 + 4 + i])));
  CHECK(max_diff(y, expected) < 1e-15);
  Tensor leaf = z.clone().requires_grad_();
  CHECK(gradcheck([](const std::vector<Tensor>& in) { return nn::glu(in[0]); }, {leaf}).ok);
  CHECK_THROWS_EMBER(nn::glu(normal({2, 5}, 1)), "glu");
  CHECK_THROWS_EMBER(nn::glu(scalar_tensor(1.0)), "glu");
}

TEST_CASE("embedding: rows of the table, any id shape, repeated ids, bad ids throw") {
  const Tensor W = normal({7, 3}, 1);
  const Tensor ids = from_vector(std::vector<std::int64_t>{6, 0, 3, 3, 1, 6}, {2, 3});
  const Tensor y = nn::embedding(ids, W);
  REQUIRE(y.shape() == Shape{2, 3, 3});
  const Vec w = vec(W), yv = vec(y), iv = vec(ids);
  for (std::size_t n = 0; n < 6; ++n)
    for (std::size_t j = 0; j < 3; ++j) CHECK(yv[n * 3 + j] == w[static_cast<std::size_t>(iv[n]) * 3 + j]);
  nn::Embedding emb(7, 3);
  CHECK(emb.weight.shape() == Shape{7, 3});
  const Tensor ye = emb(ids);
  const Vec we = vec(emb.weight), yev = vec(ye);
  for (std::size_t n = 0; n < 6; ++n)
    for (std::size_t j = 0; j < 3; ++j) CHECK(yev[n * 3 + j] == we[static_cast<std::size_t>(iv[n]) * 3 + j]);
  CHECK_THROWS_AS(nn::embedding(from_vector(std::vector<std::int64_t>{7}, {1}), W), Error);
  CHECK_THROWS_AS(nn::embedding(from_vector(std::vector<std::int64_t>{-1}, {1}), W), Error);
  CHECK_THROWS_EMBER(nn::embedding(normal({2}, 3), W), "Int64");
}

TEST_CASE("layer_norm: against the loop, with and without weight/bias, Float32 and Float64") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dtype));
    // A large offset: a one-pass E[x²] − E[x]² variance would lose digits here.
    const Tensor x = normal({2, 3, 10}, 1, dtype, 3.0) + 100.0;
    const Tensor w = normal({10}, 2, dtype), b = normal({10}, 3, dtype);
    for (double eps : {1e-5, 0.5}) {
      CAPTURE(eps);
      CHECK(ref::max_diff(vec(nn::layer_norm(x, w, b, eps)), ref::layer_norm(vec(x), 10, vec(w), vec(b), eps)) <
            10 * tol(dtype));
      CHECK(ref::max_diff(vec(nn::layer_norm(x, Tensor(), Tensor(), eps)), ref::layer_norm(vec(x), 10, {}, {}, eps)) <
            10 * tol(dtype));
      CHECK(ref::max_diff(vec(nn::layer_norm(x, w, Tensor(), eps)), ref::layer_norm(vec(x), 10, vec(w), {}, eps)) <
            10 * tol(dtype));
    }
  }
  // A transposed (non-contiguous) input.
  const Tensor xt = transpose(normal({6, 4}, 5), 0, 1);
  CHECK(ref::max_diff(vec(nn::layer_norm(xt, Tensor(), Tensor())), ref::layer_norm(vec(xt), 6, {}, {}, 1e-5)) < 1e-12);
  // A constant row: variance 0, output = bias exactly (no NaN).
  const Tensor c = full({1, 4}, 2.5, DType::Float64);
  CHECK(vec(nn::layer_norm(c, Tensor(), normal({4}, 6))) == vec(normal({4}, 6)));
}

TEST_CASE("layer_norm / rms_norm: bad weight shapes and dtypes throw naming them") {
  const Tensor x = normal({2, 5}, 1);
  CHECK_THROWS_EMBER(nn::layer_norm(x, normal({4}, 2), Tensor()), "[4]");
  CHECK_THROWS_EMBER(nn::layer_norm(x, Tensor(), normal({5, 1}, 2)), "[5, 1]");
  CHECK_THROWS_EMBER(nn::rms_norm(x, normal({6}, 2)), "[6]");
  CHECK_THROWS_EMBER(nn::rms_norm(x, normal({5}, 2, DType::Float32)), "float32");
  CHECK_THROWS_EMBER(nn::rms_norm(scalar_tensor(1.0, DType::Float64), Tensor()), "rms_norm");
}

TEST_CASE("nn::LayerNorm and nn::RMSNorm modules: init w = 1, b = 0, forward = loop") {
  nn::LayerNorm ln(8, 1e-5);
  nn::RMSNorm rn(8, 1e-6);
  nn::LayerNorm ln_nobias(8, 1e-5, false);
  CHECK(vec(ln.weight) == Vec(8, 1.0));
  CHECK(vec(ln.bias) == Vec(8, 0.0));
  CHECK(vec(rn.weight) == Vec(8, 1.0));
  CHECK_FALSE(ln_nobias.bias.defined());
  fill_normal(ln.weight, 1, 1.0, 0.3);
  fill_normal(ln.bias, 2);
  fill_normal(rn.weight, 3, 1.0, 0.3);
  const Tensor x = normal({3, 2, 8}, 4, DType::Float32);
  CHECK(ref::max_diff(vec(ln(x)), ref::layer_norm(vec(x), 8, vec(ln.weight), vec(ln.bias), 1e-5)) < 1e-5);
  CHECK(ref::max_diff(vec(rn(x)), ref::rms_norm(vec(x), 8, vec(rn.weight), 1e-6)) < 1e-5);
  CHECK(ref::max_diff(vec(ln_nobias(x)), ref::layer_norm(vec(x), 8, {}, {}, 1e-5)) < 1e-5);
}

TEST_CASE("rms_norm: against the loop, and the §14 oracles") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    const Tensor x = normal({4, 3, 12}, 1, dtype, 2.0), g = normal({12}, 2, dtype);
    CHECK(ref::max_diff(vec(nn::rms_norm(x, g, 1e-5)), ref::rms_norm(vec(x), 12, vec(g), 1e-5)) < 10 * tol(dtype));
    CHECK(ref::max_diff(vec(nn::rms_norm(x, Tensor(), 1e-5)), ref::rms_norm(vec(x), 12, {}, 1e-5)) < 10 * tol(dtype));
  }
  const Tensor x = normal({5, 16}, 3, DType::Float64, 4.0);
  const Tensor one = ones({16}, DType::Float64);
  SUBCASE("the RMS of the output is 1 with g = 1, eps = 0") {
    const Vec y = vec(nn::rms_norm(x, one, 0.0));
    for (std::size_t r = 0; r < 5; ++r) {
      double ms = 0;
      for (std::size_t j = 0; j < 16; ++j) ms += y[r * 16 + j] * y[r * 16 + j];
      CHECK(std::sqrt(ms / 16) == doctest::Approx(1.0).epsilon(1e-13));
    }
  }
  SUBCASE("scale invariance: RMSNorm(αx) = RMSNorm(x) for α > 0 (eps = 0)") {
    const Vec y = vec(nn::rms_norm(x, one, 0.0));
    for (double alpha : {1e-3, 0.37, 5.0, 1e4}) {
      CAPTURE(alpha);
      CHECK(ref::max_diff(vec(nn::rms_norm(x * alpha, one, 0.0)), y) < 1e-13);
    }
  }
  SUBCASE("xᵀ·∂L/∂x = 0 for any upstream gradient (g = 1, eps = 0)") {
    for (bool with_weight : {true, false}) {
      Tensor xl = x.clone().detach();
      xl.requires_grad_();
      const Tensor w = normal({5, 16}, 4);
      sum(nn::rms_norm(xl, with_weight ? one : Tensor(), 0.0) * w).backward();
      const Vec xv = vec(x), gv = vec(xl.grad());
      for (std::size_t r = 0; r < 5; ++r) {
        double dot = 0, nx = 0, ng = 0;
        for (std::size_t j = 0; j < 16; ++j) {
          dot += xv[r * 16 + j] * gv[r * 16 + j];
          nx += xv[r * 16 + j] * xv[r * 16 + j];
          ng += gv[r * 16 + j] * gv[r * 16 + j];
        }
        CHECK(ng > 1e-6);
        CHECK(std::abs(dot) < 1e-13 * std::sqrt(nx * ng) * 16);
      }
    }
  }
}

TEST_CASE("dropout: identity in eval and at p = 0, inverted scaling, drop rate within 5 sigma, seeded") {
  const Tensor x = normal({200, 1000}, 1, DType::Float32) + 3.0;  // no element is 0
  CHECK(nn::dropout(x, 0.3, false).is_same(x));
  CHECK(nn::dropout(x, 0.0, true).is_same(x));
  for (double p : {0.1, 0.5, 0.9}) {
    CAPTURE(p);
    Generator gen(42);
    const Vec y = vec(nn::dropout(x, p, true, &gen)), xv = vec(x);
    std::size_t zeros = 0;
    bool scaled = true;
    for (std::size_t i = 0; i < y.size(); ++i) {
      if (y[i] == 0.0) {
        ++zeros;
      } else if (std::abs(y[i] - xv[i] / (1.0 - p)) > 1e-5 * std::abs(xv[i] / (1.0 - p))) {
        scaled = false;
      }
    }
    CHECK(scaled);
    const double n = static_cast<double>(y.size()), frac = static_cast<double>(zeros) / n;
    CHECK(std::abs(frac - p) < 5.0 * std::sqrt(p * (1 - p) / n));
  }
  // The same seed gives the same mask; another seed gives another.
  Generator g1(9), g2(9), g3(10);
  const Tensor small = normal({64, 64}, 2, DType::Float32) + 3.0;
  const Vec a = vec(nn::dropout(small, 0.5, true, &g1)), b = vec(nn::dropout(small, 0.5, true, &g2)),
            c = vec(nn::dropout(small, 0.5, true, &g3));
  CHECK(a == b);
  CHECK(a != c);
  // The generator advances: two draws from one generator differ.
  CHECK(vec(nn::dropout(small, 0.5, true, &g1)) != a);
  CHECK_THROWS_EMBER(nn::dropout(x, 1.0, true), "dropout");
  CHECK_THROWS_EMBER(nn::dropout(x, -0.1, true), "dropout");
}

TEST_CASE("dropout: gradient flows through the kept elements only, scaled by 1/(1-p)") {
  Tensor x = normal({50, 40}, 1) + 3.0;
  x.requires_grad_();
  Generator gen(5);
  const Tensor y = nn::dropout(x, 0.25, true, &gen);
  sum(y).backward();
  const Vec yv = vec(y), gv = vec(x.grad());
  for (std::size_t i = 0; i < yv.size(); ++i) CHECK(gv[i] == doctest::Approx(yv[i] == 0.0 ? 0.0 : 1.0 / 0.75));
}

TEST_CASE("nn::Dropout: identity in eval mode, p = 0 identity, drops in training mode") {
  nn::Dropout d(0.5), d0(0.0);
  const Tensor x = normal({100, 100}, 1, DType::Float32) + 3.0;
  CHECK(d.is_training());
  const Vec y = vec(d(x));
  const auto zeros = std::count(y.begin(), y.end(), 0.0);
  CHECK(zeros > 4000);
  CHECK(zeros < 6000);
  CHECK(vec(d0(x)) == vec(x));
  d.eval();
  CHECK(vec(d(x)) == vec(x));
  CHECK_THROWS_EMBER(nn::Dropout(1.0), "Dropout");
  CHECK(d.str() == "Dropout(p=0.5)  [0 params]\n");
}

TEST_CASE("nn::MLP GELU and SwiGLU against loops over their weights") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dtype));
    Generator gen(3);
    nn::MLP gelu(6, 10, nn::MLPKind::Gelu, true, &gen), swiglu(6, 10, nn::MLPKind::SwiGLU, false, &gen);
    gelu.to(dtype);
    swiglu.to(dtype);
    const Tensor x = normal({2, 3, 6}, 4, dtype, 2.0);
    Vec h = ref::linear(vec(x), vec(gelu.up->weight), vec(gelu.up->bias), 6, 10);
    for (double& v : h) v = ref::gelu(v);
    CHECK(ref::max_diff(vec(gelu(x)), ref::linear(h, vec(gelu.down->weight), vec(gelu.down->bias), 10, 6)) <
          tol(dtype));
    CHECK(gelu.gate == nullptr);
    REQUIRE(swiglu.gate != nullptr);
    CHECK_FALSE(swiglu.up->bias.defined());
    const Vec a = ref::linear(vec(x), vec(swiglu.gate->weight), {}, 6, 10),
              b = ref::linear(vec(x), vec(swiglu.up->weight), {}, 6, 10);
    Vec hs(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) hs[i] = ref::silu(a[i]) * b[i];
    CHECK(ref::max_diff(vec(swiglu(x)), ref::linear(hs, vec(swiglu.down->weight), {}, 10, 6)) < tol(dtype));
  }
  // The activations at 1 (technique notes §14, verified values).
  CHECK(ref::gelu(1.0) == doctest::Approx(0.8413447461).epsilon(1e-10));
  CHECK(gelu(tensor({1.0}, DType::Float64)).item() == doctest::Approx(0.8413447461).epsilon(1e-10));
  CHECK(silu(tensor({1.0}, DType::Float64)).item() == doctest::Approx(0.7310585786).epsilon(1e-10));
}

TEST_CASE("nn::MLP: default hidden widths, parameter names, kind parsing") {
  CHECK(nn::MLP::default_hidden(64, nn::MLPKind::Gelu) == 256);
  // 8·64/3 = 170.67 -> rounded up to a multiple of 8 = 176.
  CHECK(nn::MLP::default_hidden(64, nn::MLPKind::SwiGLU) == 176);
  CHECK(nn::MLP::default_hidden(48, nn::MLPKind::SwiGLU) == 128);
  nn::MLP m(12, 0, nn::MLPKind::SwiGLU);
  CHECK(m.up->weight.shape() == Shape{32, 12});
  std::vector<std::string> names;
  for (const auto& [n, p] : m.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"gate_proj.weight", "gate_proj.bias", "up_proj.weight", "up_proj.bias",
                                          "down_proj.weight", "down_proj.bias"});
  CHECK(nn::parse_mlp_kind("gelu") == nn::MLPKind::Gelu);
  CHECK(nn::parse_mlp_kind("swiglu") == nn::MLPKind::SwiGLU);
  CHECK_THROWS_EMBER(nn::parse_mlp_kind("relu"), "relu");
}

TEST_CASE("nn::Sequential: composes its modules in order, names 0, 1, ...") {
  Generator gen(1);
  auto l1 = std::make_shared<nn::Linear>(4, 6, true, &gen);
  auto ln = std::make_shared<nn::LayerNorm>(6);
  auto l2 = std::make_shared<nn::Linear>(6, 3, false, &gen);
  fill_normal(ln->weight, 2, 1.0, 0.2);
  nn::Sequential seq({l1, ln});
  seq.push_back(l2);
  CHECK(seq.size() == 3);
  const Tensor x = normal({5, 4}, 3, DType::Float32);
  const Vec h1 = ref::linear(vec(x), vec(l1->weight), vec(l1->bias), 4, 6);
  const Vec h2 = ref::layer_norm(h1, 6, vec(ln->weight), vec(ln->bias), 1e-5);
  CHECK(ref::max_diff(vec(seq(x)), ref::linear(h2, vec(l2->weight), {}, 6, 3)) < 1e-5);
  std::vector<std::string> names;
  for (const auto& [n, p] : seq.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "2.weight"});
  // An empty Sequential is the identity.
  nn::Sequential empty;
  CHECK(vec(empty(x)) == vec(x));
}

TEST_CASE("naive_attention: causal and not, Tq = Tk and Tq < Tk (bottom-right), against the loop") {
  for (DType dtype : {DType::Float64, DType::Float32}) {
    CAPTURE(dtype_name(dtype));
    for (const auto& sizes : {std::pair<std::int64_t, std::int64_t>{5, 5}, {3, 7}, {1, 4}, {6, 6}}) {
      const std::int64_t Tq = sizes.first, Tk = sizes.second;
      CAPTURE(Tq);
      CAPTURE(Tk);
      const Tensor q = normal({2, 3, Tq, 4}, 1, dtype, 1.5), k = normal({2, 3, Tk, 4}, 2, dtype, 1.5),
                   v = normal({2, 3, Tk, 4}, 3, dtype);
      for (bool causal : {true, false}) {
        CAPTURE(causal);
        const Tensor o = nn::naive_attention(q, k, v, causal);
        CHECK(o.shape() == Shape{2, 3, Tq, 4});
        CHECK(ref::max_diff(vec(o), ref::attention(vec(q), vec(k), vec(v), 6, Tq, Tk, 4, causal)) < tol(dtype));
      }
    }
  }
  // Causal with Tq = Tk: the first query sees only the first key, so its output is v_0 exactly.
  const Tensor q = normal({1, 1, 4, 2}, 1), k = normal({1, 1, 4, 2}, 2), v = normal({1, 1, 4, 2}, 3);
  const Vec o = vec(nn::naive_attention(q, k, v, true)), vv = vec(v);
  CHECK(o[0] == doctest::Approx(vv[0]).epsilon(1e-14));
  CHECK(o[1] == doctest::Approx(vv[1]).epsilon(1e-14));
}

TEST_CASE("naive_attention: bad shapes throw naming them") {
  const Tensor q = normal({1, 2, 3, 4}, 1), k = normal({1, 2, 5, 4}, 2);
  CHECK_THROWS_EMBER(nn::naive_attention(q, normal({1, 2, 5, 3}, 2), normal({1, 2, 5, 3}, 3)), "[1, 2, 5, 3]");
  CHECK_THROWS_EMBER(nn::naive_attention(q, k, normal({1, 2, 4, 4}, 3)), "[1, 2, 4, 4]");
  CHECK_THROWS_EMBER(nn::naive_attention(normal({2, 3, 4}, 1), k, k), "[2, 3, 4]");
  // Causal needs Tq <= Tk; non-causal does not.
  CHECK_THROWS_EMBER(nn::naive_attention(k, q, q, true), "Tq");
  CHECK(nn::naive_attention(k, q, q, false).shape() == Shape{1, 2, 5, 4});
}

TEST_CASE("rope_tables: cos and sin of m·base^(−2i/d) against the closed form") {
  const auto [c, s] = nn::rope_tables(7, 6, 500.0, DType::Float64);
  REQUIRE(c.shape() == Shape{7, 3});
  REQUIRE(s.shape() == Shape{7, 3});
  const Vec cv = vec(c), sv = vec(s);
  for (int m = 0; m < 7; ++m)
    for (int i = 0; i < 3; ++i) {
      const double ang = m * std::pow(500.0, -2.0 * i / 6.0);
      CHECK(cv[m * 3 + i] == doctest::Approx(std::cos(ang)).epsilon(1e-14));
      CHECK(sv[m * 3 + i] == doctest::Approx(std::sin(ang)).epsilon(1e-14));
    }
  CHECK(nn::rope_tables(4, 8).first.dtype() == DType::Float32);
  CHECK_THROWS_EMBER(nn::rope_tables(4, 5), "head_dim");
  CHECK_THROWS_EMBER(nn::rope_tables(0, 4), "max_len");
}

TEST_CASE("apply_rope: against the loop at several start positions") {
  const auto [c, s] = nn::rope_tables(32, 8, 10000.0, DType::Float64);
  for (DType dtype : {DType::Float64, DType::Float32}) {
    const Tensor x = normal({2, 3, 5, 8}, 1, dtype);
    for (std::int64_t start : {0, 1, 27}) {
      CAPTURE(start);
      const Tensor y = nn::apply_rope(x, c, s, start);
      CHECK(y.dtype() == dtype);
      CHECK(ref::max_diff(vec(y), ref::rope(vec(x), 6, 5, 8, start)) < tol(dtype));
    }
  }
  CHECK_THROWS_EMBER(nn::apply_rope(normal({1, 1, 5, 8}, 1), c, s, 28), "exceed");
  CHECK_THROWS_EMBER(nn::apply_rope(normal({1, 1, 5, 6}, 1), c, s, 0), "[1, 1, 5, 6]");
  CHECK_THROWS_EMBER(nn::apply_rope(normal({5, 8}, 1), c, s, 0), "[5, 8]");
}

TEST_CASE("activation modules: ReLU, GELU (exact and tanh), SiLU, Tanh against std:: formulas, no parameters") {
  const Tensor x = normal({3, 7}, 2, DType::Float64);
  const auto xs = x.to_vector<double>();
  const auto check = [&](nn::Module& m, double (*f)(double)) {
    CAPTURE(m.type_name());
    const auto y = m.forward(x).to_vector<double>();
    double worst = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, std::abs(y[i] - f(xs[i])));
    CHECK(worst < 1e-12);
    CHECK(m.num_parameters() == 0);
  };
  nn::ReLU relu;
  nn::GELU gelu, gelu_tanh(true);
  nn::SiLU silu;
  nn::Tanh tanh_m;
  check(relu, [](double v) { return std::max(v, 0.0); });
  check(gelu, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); });
  check(gelu_tanh, [](double v) {
    return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
  });
  check(silu, [](double v) { return v / (1 + std::exp(-v)); });
  check(tanh_m, [](double v) { return std::tanh(v); });
  CHECK(gelu_tanh.str() == "GELU(tanh)  [0 params]\n");
}

TEST_CASE("nn::RotaryEmbedding: rotates against the loop, base configurable, keeps no state in state_dict") {
  nn::RotaryEmbedding rope(6, 16, 500.0);
  const Tensor x = normal({2, 2, 4, 6}, 1, DType::Float64);
  CHECK(ref::max_diff(vec(rope.forward(x)), ref::rope(vec(x), 4, 4, 6, 0, 500.0)) < 1e-12);
  CHECK(ref::max_diff(vec(rope.rotate(x, 9)), ref::rope(vec(x), 4, 4, 6, 9, 500.0)) < 1e-12);
  CHECK(rope.state_dict().empty());
  CHECK(rope.str() == "RotaryEmbedding(head_dim=6, max_len=16, base=500)  [0 params]\n");
  CHECK_THROWS_EMBER(nn::RotaryEmbedding(5, 16), "even head_dim");
}

TEST_CASE("RoPE oracles: norm preserved, position 0 identity, relative positions, d = 2, (i, i+d/2) pairing") {
  const std::int64_t d = 8;
  const auto tables = nn::rope_tables(64, d, 10000.0, DType::Float64);
  const Tensor c = tables.first, s = tables.second;
  const Tensor x = normal({1, 2, 6, d}, 1);
  const auto at = [&](const Tensor& v, std::int64_t m) { return nn::apply_rope(v, c, s, m); };

  SUBCASE("‖R_m x‖ = ‖x‖ for every vector") {
    const Vec xv = vec(x), yv = vec(at(x, 9));
    for (std::size_t r = 0; r < 12; ++r) {
      double nx = 0, ny = 0;
      for (std::int64_t j = 0; j < d; ++j) {
        nx += xv[r * d + j] * xv[r * d + j];
        ny += yv[r * d + j] * yv[r * d + j];
      }
      CHECK(ny == doctest::Approx(nx).epsilon(1e-13));
    }
  }
  SUBCASE("position 0 is the identity") {
    const Tensor x0 = narrow(x, 2, 0, 1);
    CHECK(ref::max_diff(vec(at(x0, 0)), vec(x0)) < 1e-15);
    // And the first row of a longer sequence starting at 0.
    CHECK(ref::max_diff(vec(narrow(at(x, 0), 2, 0, 1)), vec(x0)) < 1e-15);
  }
  SUBCASE("<R_m q, R_n k> depends only on m − n") {
    const Tensor q = normal({1, 1, 1, d}, 2), k = normal({1, 1, 1, d}, 3);
    const auto dot = [&](std::int64_t m, std::int64_t n) {
      const Vec a = vec(at(q, m)), b = vec(at(k, n));
      return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
    };
    for (auto [m, n] : {std::pair<std::int64_t, std::int64_t>{5, 2}, {2, 5}, {7, 7}, {0, 3}}) {
      const double base = dot(m, n);
      for (std::int64_t shift : {1, 13, 40}) CHECK(dot(m + shift, n + shift) == doctest::Approx(base).epsilon(1e-12));
    }
    // ...and does depend on m − n (the check above is not vacuous).
    CHECK(std::abs(dot(5, 2) - dot(5, 3)) > 1e-3);
  }
  SUBCASE("d = 2: (a, b) at position m is rotated by the angle m (θ_0 = 1)") {
    const auto [c2, s2] = nn::rope_tables(16, 2, 10000.0, DType::Float64);
    const Tensor v = reshape(tensor({0.6, -1.3}, DType::Float64), {1, 1, 1, 2});
    for (std::int64_t m : {0, 1, 3, 11}) {
      const Vec y = vec(nn::apply_rope(v, c2, s2, m));
      const double md = static_cast<double>(m);
      CHECK(y[0] == doctest::Approx(0.6 * std::cos(md) + 1.3 * std::sin(md)).epsilon(1e-14));
      CHECK(y[1] == doctest::Approx(0.6 * std::sin(md) - 1.3 * std::cos(md)).epsilon(1e-14));
    }
  }
  SUBCASE("pairing (i, i + d/2): e_i rotates within span(e_i, e_{i+d/2}) by m·θ_i") {
    for (std::int64_t i = 0; i < d / 2; ++i) {
      Vec e(d, 0.0);
      e[i] = 1.0;
      const Vec y = vec(nn::apply_rope(from_vector(e, {1, 1, 1, d}, DType::Float64), c, s, 3));
      const double ang = 3.0 * std::pow(10000.0, -2.0 * static_cast<double>(i) / d);
      for (std::int64_t j = 0; j < d; ++j) {
        CAPTURE(i);
        CAPTURE(j);
        const double expected = j == i ? std::cos(ang) : j == i + d / 2 ? std::sin(ang) : 0.0;
        CHECK(y[j] == doctest::Approx(expected).epsilon(1e-14));
      }
    }
  }
}

TEST_CASE("split_chunks and merge_chunks: chunk g row r is row g·C + r, zero past T, and back") {
  const Tensor x = normal({2, 7, 3}, 1);  // T = 7, C = 3: G = 3, two padded rows
  const Tensor c = nn::split_chunks(x, 3);
  REQUIRE(c.shape() == Shape{2, 3, 3, 3});
  const Vec xv = vec(x), cv = vec(c);
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t t = 0; t < 9; ++t)
      for (std::int64_t j = 0; j < 3; ++j) {
        const double want = t < 7 ? xv[(b * 7 + t) * 3 + j] : 0.0;
        CHECK(cv[((b * 3 + t / 3) * 3 + t % 3) * 3 + j] == want);
      }
  CHECK(max_abs_diff(nn::merge_chunks(c, 7), x) == 0.0);
  CHECK(nn::split_chunks(x, 7).shape() == Shape{2, 1, 7, 3});  // no padding when C divides T
  CHECK_THROWS_EMBER(nn::split_chunks(x, 0), "split_chunks: expected x [..., T, d] and C > 0");
  CHECK_THROWS_EMBER(nn::merge_chunks(c, 10), "merge_chunks: expected y [..., G, C, d] holding T = 10 rows");
}

TEST_CASE("exclusive_cumsum: out_g = sum of x_h for h < g along any dim, with its gradient") {
  const Tensor x = normal({3, 4, 2}, 2);
  const Vec xv = vec(x);
  const Vec out = vec(nn::exclusive_cumsum(x, 1));
  for (std::int64_t a = 0; a < 3; ++a)
    for (std::int64_t g = 0; g < 4; ++g)
      for (std::int64_t j = 0; j < 2; ++j) {
        double want = 0.0;
        for (std::int64_t h = 0; h < g; ++h) want += xv[(a * 4 + h) * 2 + j];
        CHECK(out[(a * 4 + g) * 2 + j] == doctest::Approx(want).epsilon(1e-14));
      }
  for (std::int64_t dim : {0, 2, -1}) {
    CAPTURE(dim);
    const GradcheckResult r = gradcheck([&](const auto& in) { return nn::exclusive_cumsum(in[0], dim); }, {leaf_of(x)});
    CHECK_MESSAGE(r.ok, r.message);
  }
  CHECK_THROWS_EMBER(nn::exclusive_cumsum(x, 3), "exclusive_cumsum: dim 3 out of range");
}
