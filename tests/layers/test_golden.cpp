/// \file
/// \brief Golden tests: ember's layers against fixtures that PyTorch computed in float64
/// (tests/golden/make_fixtures.py writes tests/fixtures/*.safetensors).
///
/// Each fixture holds the input, the weights under ember's state_dict names ("param.<name>"), the
/// output "out", weights "w" and the gradients of sum(out * w) w.r.t. the input and every weight.
/// The weights go in through a strict load_state_dict, so the fixture also pins the parameter names.
/// Every case runs in Float64 and in Float32 with the tolerances of kTolerance.
#include <functional>
#include <map>

#include "core/safetensors.h"
#include "layers/attention/multi_head_attention.h"
#include "layers/linear.h"
#include "layers/mlp.h"
#include "layers/models/language_model.h"
#include "layers/norm.h"
#include "layer_helpers.h"

#if __has_include("train/loss.h")
#include "train/loss.h"
#define EMBER_GOLDEN_HAVE_LOSS 1
#endif

#ifndef EMBER_FIXTURES_DIR
#error "EMBER_FIXTURES_DIR must name tests/fixtures (set in tests/CMakeLists.txt)"
#endif

using namespace ember;
using namespace ember::test;
namespace st = ember::safetensors;

namespace {

/// The one tolerance table: max |ember − torch| ≤ tol · max(1, max |torch|), per tensor.
const std::map<DType, double> kTolerance = {
    {DType::Float64, 1e-10},
    {DType::Float32, 1e-4},
};

st::Contents fixture(const std::string& name) { return st::load(std::string(EMBER_FIXTURES_DIR) + "/" + name + ".safetensors"); }

/// Compares ember's tensor with the fixture's, scaled by the fixture's magnitude.
void check_close(const std::string& what, const Tensor& got, const Tensor& expected, DType dtype) {
  CAPTURE(what);
  CAPTURE(dtype_name(dtype));
  REQUIRE(got.defined());
  REQUIRE(got.shape() == expected.shape());
  const auto e = expected.to_vector<double>();
  double scale = 1.0;
  for (double v : e) scale = std::max(scale, std::abs(v));
  const double err = max_abs_diff(got.to(DType::Float64), expected);
  CHECK(err <= kTolerance.at(dtype) * scale);
}

/// The fixture's "param.*" tensors as a state dict (prefix removed).
nn::NamedTensors params_of(const st::Contents& f) {
  nn::NamedTensors out;
  for (const auto& [name, t] : f.tensors)
    if (name.starts_with("param.")) out.emplace_back(name.substr(6), t);
  return out;
}

/// A float input as a leaf of `dtype`; an integer input as is.
Tensor input_of(const Tensor& t, DType dtype) {
  if (t.dtype() == DType::Int64) return t;
  Tensor x = t.to(dtype).detach();
  x.requires_grad_();
  return x;
}

/// Loads the fixture into `module` (strictly), runs it in both dtypes and compares out and every gradient.
void check_module(const std::string& name, const std::function<std::shared_ptr<nn::Module>()>& make) {
  const st::Contents f = fixture(name);
  const nn::NamedTensors params = params_of(f);
  REQUIRE(!params.empty());
  for (const auto& [dtype, tol] : kTolerance) {
    CAPTURE(name);
    auto m = make();
    m->to(dtype);
    m->load_state_dict(params, true);
    m->eval();
    const Tensor x = input_of(f.at("input"), dtype);
    const Tensor y = m->forward(x);
    CHECK(y.dtype() == dtype);
    check_close(name + " out", y, f.at("out"), dtype);
    sum(y * f.at("w").to(dtype)).backward();
    if (f.contains("grad.input")) check_close(name + " grad.input", x.grad(), f.at("grad.input"), dtype);
    for (const auto& [pname, value] : params) check_close(name + " grad." + pname, param_of(*m, pname).grad(), f.at("grad.param." + pname), dtype);
  }
}

nn::MixerConfig mha_config(bool rope) {
  nn::MixerConfig c;
  c.d_model = 8;
  c.n_heads = 2;
  c.max_len = 8;
  c.rope = rope;
  c.bias = true;
  return c;
}

}  // namespace

TEST_CASE("golden: the fixtures are there and hold what the generator writes") {
  const st::Contents f = fixture("linear");
  CHECK(f.at("input").dtype() == DType::Float64);
  CHECK(f.at("input").shape() == Shape{2, 3, 5});
  CHECK(f.at("param.weight").shape() == Shape{4, 5});
  CHECK(f.at("out").shape() == Shape{2, 3, 4});
  CHECK(f.at("grad.param.bias").shape() == Shape{4});
  CHECK(fixture("embedding").at("input").dtype() == DType::Int64);
}

TEST_CASE("golden: Linear with and without bias") {
  check_module("linear", [] { return std::make_shared<nn::Linear>(5, 4, true); });
  check_module("linear_nobias", [] { return std::make_shared<nn::Linear>(5, 4, false); });
}

TEST_CASE("golden: Embedding (repeated ids)") {
  check_module("embedding", [] { return std::make_shared<nn::Embedding>(7, 4); });
}

TEST_CASE("golden: LayerNorm and RMSNorm") {
  check_module("layer_norm", [] { return std::make_shared<nn::LayerNorm>(6, 1e-5); });
  check_module("rms_norm", [] { return std::make_shared<nn::RMSNorm>(6, 1e-5); });
}

TEST_CASE("golden: MLP GELU (exact erf, biases) and SwiGLU (no biases)") {
  check_module("mlp_gelu", [] { return std::make_shared<nn::MLP>(6, 10, nn::MLPKind::Gelu, true); });
  check_module("mlp_swiglu", [] { return std::make_shared<nn::MLP>(6, 10, nn::MLPKind::SwiGLU, false); });
}

TEST_CASE("golden: causal MultiHeadAttention without and with rotate-half RoPE") {
  check_module("mha", [] { return std::make_shared<nn::MultiHeadAttention>(mha_config(false)); });
  check_module("mha_rope", [] { return std::make_shared<nn::MultiHeadAttention>(mha_config(true)); });
}

TEST_CASE("golden: the reference LanguageModel (learned positions, LayerNorm, GELU, untied, biases)") {
  check_module("language_model", [] {
    nn::LanguageModelConfig c;
    c.vocab_size = 16;
    c.d_model = 32;
    c.n_layers = 2;
    c.n_heads = 4;
    c.max_len = 8;
    c.positions = "learned";
    c.norm = "layernorm";
    c.mlp = "gelu";
    c.mlp_hidden = 64;
    c.tie_weights = false;
    c.bias = true;
    return std::make_shared<nn::LanguageModel>(c);
  });
}

TEST_CASE("golden: a LanguageModel with RoPE, RMSNorm, SwiGLU, tied head, no biases") {
  check_module("language_model_rope", [] {
    nn::LanguageModelConfig c;
    c.vocab_size = 16;
    c.d_model = 16;
    c.n_layers = 2;
    c.n_heads = 2;
    c.max_len = 8;
    c.positions = "rope";
    c.norm = "rmsnorm";
    c.mlp = "swiglu";
    c.mlp_hidden = 24;
    c.tie_weights = true;
    c.bias = false;
    return std::make_shared<nn::LanguageModel>(c);
  });
}

#ifdef EMBER_GOLDEN_HAVE_LOSS
TEST_CASE("golden: cross_entropy (ignore_index = -100, label_smoothing = 0.1) and mse_loss") {
  const st::Contents ce = fixture("cross_entropy"), mse = fixture("mse");
  for (const auto& [dtype, tol] : kTolerance) {
    const Tensor z = input_of(ce.at("input"), dtype);
    const Tensor loss = cross_entropy(z, ce.at("target"), -100, 0.1);
    check_close("cross_entropy out", loss, ce.at("out"), dtype);
    (loss * ce.at("w").to(dtype)).backward();
    check_close("cross_entropy grad.input", z.grad(), ce.at("grad.input"), dtype);

    const Tensor x = input_of(mse.at("input"), dtype), y = input_of(mse.at("target"), dtype);
    const Tensor l2 = mse_loss(x, y);
    check_close("mse out", l2, mse.at("out"), dtype);
    (l2 * mse.at("w").to(dtype)).backward();
    check_close("mse grad.input", x.grad(), mse.at("grad.input"), dtype);
    check_close("mse grad.target", y.grad(), mse.at("grad.target"), dtype);
  }
}
#else
TEST_CASE("golden: cross_entropy and mse_loss" * doctest::skip()) {}
#endif
