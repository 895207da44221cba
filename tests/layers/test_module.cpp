/// \file
/// \brief nn::Module: registration, dotted names in registration order, state dicts (round trip,
/// strict and non-strict loading, errors naming keys and shapes), to(dtype) keeping handles, zero_grad,
/// train/eval propagation, and the printed tree against a hand-written expected string.
#include <algorithm>

#include "layers/containers.h"
#include "layers/linear.h"
#include "layers/models/language_model.h"
#include "layers/norm.h"
#include "layer_helpers.h"

using namespace ember;
using namespace ember::test;

namespace {

/// A module with every kind of member: a trainable and a frozen parameter, a persistent and a
/// non-persistent buffer, an integer buffer and a submodule. Registration is public here for the tests.
class Toy : public nn::Module {
 public:
  Toy() : Module("Toy") {
    a = register_parameter("a", full({2}, 2.0));
    frozen = register_parameter("frozen", ones({3}), false);
    stat = register_buffer("stat", zeros({2}));
    scratch = register_buffer("scratch", zeros({4}), false);
    count = register_buffer("count", zeros({1}, DType::Int64));
    child = register_module("child", std::make_shared<nn::Linear>(2, 2));
  }
  using Module::register_buffer;
  using Module::register_module;
  using Module::register_parameter;
  Tensor forward(const Tensor& x) override { return child->forward(x * a); }
  Tensor a, frozen, stat, scratch, count;
  std::shared_ptr<nn::Linear> child;
};

nn::LanguageModelConfig lm_config(std::int64_t layers = 2) {
  nn::LanguageModelConfig c;
  c.vocab_size = 10;
  c.d_model = 8;
  c.n_layers = layers;
  c.n_heads = 2;
  c.max_len = 6;
  return c;
}

std::vector<std::string> names_of(const nn::NamedTensors& list) {
  std::vector<std::string> out;
  for (const auto& [n, t] : list) out.push_back(n);
  return out;
}

/// The state dict with `name` replaced by `value` (or removed when value is undefined).
nn::NamedTensors with(nn::NamedTensors state, const std::string& name, const Tensor& value) {
  const auto it = std::find_if(state.begin(), state.end(), [&](const auto& e) { return e.first == name; });
  REQUIRE(it != state.end());
  if (value.defined())
    it->second = value;
  else
    state.erase(it);
  return state;
}

/// Token ids [2, 4] for the models of lm_config().
Tensor ids() { return from_vector(std::vector<std::int64_t>{1, 9, 0, 3, 3, 2, 5, 7}, {2, 4}); }

}  // namespace

TEST_CASE("Module: named_parameters of a LanguageModel in registration order with dotted names") {
  nn::LanguageModel lm(lm_config());
  std::vector<std::string> expected{"tok_emb.weight", "pos_emb.weight"};
  for (const char* layer : {"layers.0.", "layers.1."}) {
    const std::string l = layer;
    for (const char* n :
         {"norm1.weight", "norm1.bias", "mixer.q_proj.weight", "mixer.q_proj.bias", "mixer.k_proj.weight",
          "mixer.k_proj.bias", "mixer.v_proj.weight", "mixer.v_proj.bias", "mixer.o_proj.weight", "mixer.o_proj.bias",
          "norm2.weight", "norm2.bias", "mlp.up_proj.weight", "mlp.up_proj.bias", "mlp.down_proj.weight",
          "mlp.down_proj.bias"})
      expected.push_back(l + n);
  }
  for (const char* n : {"norm.weight", "norm.bias", "head.weight"}) expected.emplace_back(n);
  CHECK(names_of(lm.named_parameters()) == expected);
  // The handles are the layers' members.
  CHECK(param_of(lm, "layers.1.mixer.q_proj.weight").is_same(lm.layers->at<nn::Block>(1)->mixer->named_parameters()[0].second));
  CHECK(param_of(lm, "head.weight").is_same(lm.head->weight));
  // parameters() is the same list; without recursion the model itself has none.
  CHECK(lm.parameters().size() == expected.size());
  CHECK(lm.named_parameters(false).empty());
  // state_dict: the same names (no persistent buffers here).
  CHECK(names_of(lm.state_dict()) == expected);
}

TEST_CASE("Module: named_modules gives every module with its dotted path, root first") {
  nn::LanguageModel lm(lm_config(1));
  std::vector<std::string> names;
  for (const auto& [n, m] : lm.named_modules()) names.push_back(n + ":" + m->type_name());
  CHECK(names == std::vector<std::string>{":LanguageModel",
                                          "tok_emb:Embedding",
                                          "pos_emb:Embedding",
                                          "layers:ModuleList",
                                          "layers.0:Block",
                                          "layers.0.norm1:LayerNorm",
                                          "layers.0.mixer:MultiHeadAttention",
                                          "layers.0.mixer.q_proj:Linear",
                                          "layers.0.mixer.k_proj:Linear",
                                          "layers.0.mixer.v_proj:Linear",
                                          "layers.0.mixer.o_proj:Linear",
                                          "layers.0.norm2:LayerNorm",
                                          "layers.0.mlp:MLP",
                                          "layers.0.mlp.up_proj:Linear",
                                          "layers.0.mlp.down_proj:Linear",
                                          "norm:LayerNorm",
                                          "head:Linear"});
  CHECK(lm.named_children().size() == 5);
}

TEST_CASE("Module: num_parameters and the printed tree of a small model") {
  nn::LanguageModel lm(lm_config(1));
  // By hand (V = 10, D = 8, max_len 6, GELU hidden 4·8 = 32, biases on, untied):
  //   tok_emb 10·8 = 80, pos_emb 6·8 = 48, each LayerNorm 2·8 = 16,
  //   each attention projection 8·8 + 8 = 72 (4 of them: 288),
  //   up_proj 8·32 + 32 = 288, down_proj 32·8 + 8 = 264 (MLP 552),
  //   block 16 + 288 + 16 + 552 = 872, head 8·10 = 80 (no bias),
  //   total 80 + 48 + 872 + 16 + 80 = 1,096.
  CHECK(lm.num_parameters() == 1096);
  const std::string expected =
      "LanguageModel(vocab=10, d_model=8, layers=1, positions=learned)  [1,096 params]\n"
      "  (tok_emb): Embedding(10, 8)  [80 params]\n"
      "  (pos_emb): Embedding(6, 8)  [48 params]\n"
      "  (layers): ModuleList()  [872 params]\n"
      "    (0): Block()  [872 params]\n"
      "      (norm1): LayerNorm(8, eps=1e-05)  [16 params]\n"
      "      (mixer): MultiHeadAttention(d_model=8, heads=2)  [288 params]\n"
      "        (q_proj): Linear(in=8, out=8)  [72 params]\n"
      "        (k_proj): Linear(in=8, out=8)  [72 params]\n"
      "        (v_proj): Linear(in=8, out=8)  [72 params]\n"
      "        (o_proj): Linear(in=8, out=8)  [72 params]\n"
      "      (norm2): LayerNorm(8, eps=1e-05)  [16 params]\n"
      "      (mlp): MLP(gelu)  [552 params]\n"
      "        (up_proj): Linear(in=8, out=32)  [288 params]\n"
      "        (down_proj): Linear(in=32, out=8)  [264 params]\n"
      "  (norm): LayerNorm(8, eps=1e-05)  [16 params]\n"
      "  (head): Linear(in=8, out=10, bias=false)  [80 params]\n";
  CHECK(lm.str() == expected);
  // A 2-layer model with RMSNorm, SwiGLU (hidden 8·8/3 -> 24), tied, no biases:
  //   tok_emb 80; per block: 2 RMSNorm 8 + 8, attention 4·64 = 256, MLP 3·8·24 = 576 -> 848;
  //   final norm 8; total 80 + 2·848 + 8 = 1,784.
  auto c = lm_config(2);
  c.positions = "rope";
  c.norm = "rmsnorm";
  c.mlp = "swiglu";
  c.tie_weights = true;
  c.bias = false;
  CHECK(nn::LanguageModel(c).num_parameters() == 1784);
  CHECK(nn::with_commas(0) == "0");
  CHECK(nn::with_commas(999) == "999");
  CHECK(nn::with_commas(1000) == "1,000");
  CHECK(nn::with_commas(1234567) == "1,234,567");
  CHECK(nn::with_commas(-1234) == "-1,234");
}

TEST_CASE("Module: state_dict round trip into a differently seeded model gives identical outputs") {
  auto c = lm_config();
  c.seed = 1;
  nn::LanguageModel a(c);
  c.seed = 2;
  nn::LanguageModel b(c);
  randomize(a, 3);
  CHECK(max_abs_diff(a(ids()), b(ids())) > 1e-3);
  const Tensor b_handle = b.tok_emb->weight;
  b.load_state_dict(a.state_dict());
  CHECK(max_abs_diff(a(ids()), b(ids())) == 0.0);
  // Loading copies: the handles are unchanged, still leaves that require grad, and not aliased to a's data.
  CHECK(b.tok_emb->weight.is_same(b_handle));
  CHECK(b.tok_emb->weight.requires_grad());
  CHECK(b.tok_emb->weight.is_leaf());
  CHECK_FALSE(b.tok_emb->weight.shares_storage(a.tok_emb->weight));
  fill_normal(a.tok_emb->weight, 9);
  CHECK(max_abs_diff(a.tok_emb->weight, b.tok_emb->weight) > 1e-3);
  // state_dict() shares the model's data (as PyTorch's does).
  CHECK(param_of(a, "norm.bias").shares_storage(a.norm->named_parameters()[1].second));
}

TEST_CASE("Module: load_state_dict converts the dtype of the values it loads") {
  nn::LanguageModel a(lm_config()), b(lm_config());
  randomize(a, 4);
  a.to(DType::Float64);
  b.load_state_dict(a.state_dict());
  CHECK(b.tok_emb->weight.dtype() == DType::Float32);
  CHECK(max_abs_diff(b(ids()), a(ids())) < 1e-5);
}

TEST_CASE("Module: strict loading names missing and unexpected keys, shape mismatches name key and shapes") {
  nn::LanguageModel a(lm_config()), b(lm_config());
  const auto state = a.state_dict();
  CHECK_THROWS_EMBER(b.load_state_dict(with(state, "layers.1.mlp.up_proj.bias", Tensor())),
                     "missing keys [layers.1.mlp.up_proj.bias]");
  auto extra = state;
  extra.emplace_back("layers.7.mixer.q_proj.weight", zeros({8, 8}));
  CHECK_THROWS_EMBER(b.load_state_dict(extra), "unexpected keys [layers.7.mixer.q_proj.weight]");
  CHECK_THROWS_EMBER(b.load_state_dict(with(state, "layers.0.mixer.k_proj.weight", zeros({8, 7}))),
                     "layers.0.mixer.k_proj.weight: shape [8, 7] does not match the model's [8, 8]");
  // Nothing was half-loaded by the failing strict calls above.
  const auto before = b.tok_emb->weight.to_vector<double>();
  CHECK_THROWS_AS(b.load_state_dict(with(state, "head.weight", Tensor())), Error);
  CHECK(b.tok_emb->weight.to_vector<double>() == before);
}

TEST_CASE("Module: non-strict loading skips missing keys and ignores unexpected ones") {
  nn::LanguageModel a(lm_config()), b(lm_config());
  randomize(a, 5);
  auto state = with(a.state_dict(), "head.weight", Tensor());
  state.emplace_back("something.else", zeros({3}));
  const auto head_before = b.head->weight.to_vector<double>();
  b.load_state_dict(state, false);
  CHECK(b.head->weight.to_vector<double>() == head_before);
  CHECK(max_abs_diff(b.tok_emb->weight, a.tok_emb->weight) == 0.0);
  CHECK(max_abs_diff(b.hidden(ids()), a.hidden(ids())) == 0.0);
  // A shape mismatch is an error even when not strict.
  CHECK_THROWS_EMBER(b.load_state_dict(with(a.state_dict(), "norm.weight", zeros({9})), false), "norm.weight");
}

TEST_CASE("Module: to(Float64) converts in place: handles stay valid, output matches Float32") {
  nn::LanguageModel lm(lm_config());
  randomize(lm, 6);
  const Tensor y32 = lm(ids());
  const Tensor w = lm.layers->at<nn::Block>(0)->mlp->up->weight;  // a handle held outside
  std::vector<Tensor> handles = lm.parameters();
  lm.to(DType::Float64);
  CHECK(w.dtype() == DType::Float64);
  CHECK(lm.layers->at<nn::Block>(0)->mlp->up->weight.is_same(w));
  const auto after = lm.parameters();
  for (std::size_t i = 0; i < handles.size(); ++i) {
    CHECK(after[i].is_same(handles[i]));
    CHECK(handles[i].dtype() == DType::Float64);
    CHECK(handles[i].requires_grad());
  }
  const Tensor y64 = lm(ids());
  CHECK(y64.dtype() == DType::Float64);
  CHECK(max_abs_diff(y64, y32) < 1e-5);
  // Back to Float32: same handles again.
  lm.to(DType::Float32);
  CHECK(w.dtype() == DType::Float32);
  CHECK(max_abs_diff(lm(ids()), y32) < 1e-6);
  CHECK_THROWS_EMBER(lm.to(DType::Int64), "not a floating dtype");
}

TEST_CASE("Module: to() converts floating buffers and leaves integer buffers alone") {
  Toy toy;
  toy.to(DType::Float64);
  CHECK(toy.stat.dtype() == DType::Float64);
  CHECK(toy.scratch.dtype() == DType::Float64);
  CHECK(toy.count.dtype() == DType::Int64);
  CHECK(toy.child->weight.dtype() == DType::Float64);
  CHECK(toy.frozen.dtype() == DType::Float64);
  CHECK_FALSE(toy.frozen.requires_grad());
}

TEST_CASE("Module: buffers — persistent ones are in state_dict, non-persistent ones are not") {
  Toy toy;
  CHECK(names_of(toy.named_parameters()) == std::vector<std::string>{"a", "frozen", "child.weight", "child.bias"});
  CHECK(names_of(toy.named_buffers()) == std::vector<std::string>{"stat", "scratch", "count"});
  CHECK(names_of(toy.state_dict()) ==
        std::vector<std::string>{"a", "frozen", "child.weight", "child.bias", "stat", "count"});
  CHECK(toy.a.requires_grad());
  CHECK_FALSE(toy.frozen.requires_grad());
  CHECK(toy.num_parameters() == 2 + 3 + 4 + 2);
  // Buffers load too.
  Toy other;
  auto state = toy.state_dict();
  state = with(state, "stat", tensor({4.0, 5.0}));
  state = with(state, "count", from_vector(std::vector<std::int64_t>{7}, {1}));
  other.load_state_dict(state);
  CHECK(other.stat.to_vector<double>() == std::vector<double>{4.0, 5.0});
  CHECK(other.count.to_vector<double>() == std::vector<double>{7.0});
}

TEST_CASE("Module: registration errors") {
  Toy toy;
  CHECK_THROWS_EMBER(toy.register_parameter("a", zeros({1})), "the name 'a' is already registered");
  CHECK_THROWS_EMBER(toy.register_buffer("child", zeros({1})), "'child' is already registered");
  CHECK_THROWS_EMBER(toy.register_module("stat", std::make_shared<nn::Linear>(1, 1)), "'stat' is already registered");
  CHECK_THROWS_EMBER(toy.register_parameter("x.y", zeros({1})), "invalid name 'x.y'");
  CHECK_THROWS_EMBER(toy.register_parameter("", zeros({1})), "invalid name");
  CHECK_THROWS_EMBER(toy.register_parameter("u", Tensor()), "'u' is undefined");
  CHECK_THROWS_EMBER(toy.register_module("m", std::shared_ptr<nn::Linear>()), "'m' is null");
  // A registered parameter is a leaf detached from whatever produced it.
  Tensor x = ones({2});
  x.requires_grad_();
  const Tensor p = toy.register_parameter("p", x * 3.0);
  CHECK(p.is_leaf());
  CHECK(p.requires_grad());
}

TEST_CASE("Module: zero_grad drops every gradient") {
  nn::LanguageModel lm(lm_config());
  sum(lm(ids())).backward();
  for (const auto& p : lm.parameters()) CHECK(p.grad().defined());
  lm.zero_grad();
  for (const auto& p : lm.parameters()) CHECK_FALSE(p.grad().defined());
  // Gradients accumulate across backward calls until zero_grad.
  sum(lm(ids())).backward();
  const auto g1 = lm.head->weight.grad().to_vector<double>();
  sum(lm(ids())).backward();
  const auto g2 = lm.head->weight.grad().to_vector<double>();
  for (std::size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == doctest::Approx(2 * g1[i]).epsilon(1e-6));
}

TEST_CASE("Module: train() and eval() propagate to every descendant") {
  nn::LanguageModel lm(lm_config());
  for (auto& [n, m] : lm.named_modules()) CHECK(m->is_training());
  lm.eval();
  for (const auto& entry : lm.named_modules()) {
    const std::string& n = entry.first;
    const auto& m = entry.second;
    CAPTURE(n);
    CHECK_FALSE(m->is_training());
  }
  lm.layers->train();
  CHECK_FALSE(lm.is_training());
  CHECK(lm.layers->at<nn::Block>(1)->mlp->down->is_training());
  CHECK_FALSE(lm.norm->is_training());
  lm.train(true);
  for (auto& [n, m] : lm.named_modules()) CHECK(m->is_training());
}

TEST_CASE("ModuleList and Module::forward: errors name the module") {
  nn::ModuleList list;
  list.push_back(std::make_shared<nn::Linear>(2, 3));
  list.push_back(std::make_shared<nn::LayerNorm>(3));
  CHECK(list.size() == 2);
  CHECK(list.at<nn::Linear>(0)->weight.shape() == Shape{3, 2});
  CHECK_THROWS_EMBER(list.at<nn::Linear>(1), "module 1 is a LayerNorm");
  CHECK_THROWS_EMBER(list[2], "index 2 out of range for 2 modules");
  CHECK_THROWS_EMBER(list.forward(zeros({2})), "ModuleList: this module has no forward");
  CHECK(names_of(list.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
}
