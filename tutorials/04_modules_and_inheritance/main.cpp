// Tutorial 04: modules and inheritance. From the general to the special: nn::Module and the layers
// derived from it, overriding forward and calling the base class's version, composition versus
// inheritance, the A, B, C, D diamond with and without virtual inheritance, Python's C3 method
// resolution order computed in C++, and why ember's module tree has no diamond.
// Run: tutorial_04_modules_and_inheritance [--short]. The page README.md next to this file explains each step.
#include <cxxabi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "ember.h"
#include "layers/attention/multi_head_attention.h"
#include "layers/containers.h"
#include "layers/linear.h"
#include "layers/mlp.h"
#include "layers/models/language_model.h"
#include "layers/norm.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// ---------------------------------------------------------------------------------------------------
// 1. A module of our own: y = scale * x + shift, two learnable scalars.
// ---------------------------------------------------------------------------------------------------

// Everything general (naming, parameter lists, state_dict, train/eval, printing) is inherited from
// nn::Module; the special part is the constructor (what parameters exist) and forward (what it computes).
class Affine : public nn::Module {
 public:
  Affine(double scale0, double shift0) : Module("Affine") {  // the base constructor runs first, given our type name
    scale = register_parameter("scale", scalar_tensor(scale0));
    shift = register_parameter("shift", scalar_tensor(shift0));
  }
  // x: [...] -> [...]
  Tensor forward(const Tensor& x) override { return x * scale + shift; }
  Tensor scale, shift;

 protected:
  std::string extra_repr() const override {
    char buf[64];
    std::snprintf(buf, sizeof buf, "scale=%g, shift=%g", scale.item(), shift.item());
    return buf;
  }
};

// ---------------------------------------------------------------------------------------------------
// 2. Overriding a hook and calling the base class's version.
// ---------------------------------------------------------------------------------------------------

// MultiHeadAttention::forward projects x to q, k, v, calls the virtual attend(q, k, v), and merges the
// heads through W_o; step() (one-token decoding with a KV cache) calls the same attend. A subclass that
// changes only the attention kernel overrides attend() and inherits everything else. This one divides
// the scores by a temperature tau by scaling the queries, then hands over to the base class's kernel:
// softmax((q / tau) k^T / sqrt(d)) v.
class TemperedAttention : public nn::MultiHeadAttention {
 public:
  TemperedAttention(const nn::MixerConfig& config, double inv_tau)
      : MultiHeadAttention(config, "TemperedAttention"), inv_tau_(inv_tau) {}

 protected:
  // q: [B, H, Tq, d], k, v: [B, H, Tk, d] -> [B, H, Tq, d]
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v) const override {
    // A qualified call is not virtual: it runs exactly MultiHeadAttention's version (Python: super().attend).
    return MultiHeadAttention::attend(q * inv_tau_, k, v);
  }
  std::string extra_repr() const override {  // the base's description plus ours
    char buf[32];
    std::snprintf(buf, sizeof buf, ", inv_tau=%g", inv_tau_);
    return MultiHeadAttention::extra_repr() + buf;
  }

 private:
  double inv_tau_;
};

// ---------------------------------------------------------------------------------------------------
// 4-5. The diamond: D derives from B and C, which both derive from A (seed note 1's example).
// ---------------------------------------------------------------------------------------------------

std::vector<std::string> ctor_log;  // constructors append their class name, to show the order they run in

// Without virtual inheritance: B and C each contain their own A, so a D contains two.
namespace plain {
struct A {
  explicit A(std::string made_by) : made_by(std::move(made_by)) { ctor_log.push_back("A"); }
  virtual ~A() = default;
  virtual std::string who() const { return "A"; }
  std::string made_by;      // which constructor initialised this A
  double weights[16] = {};  // a payload, like a layer's parameters, so sizes tell how many A's there are
};
struct B : A {
  B() : A("B") { ctor_log.push_back("B"); }
  std::string who() const override { return "B"; }
};
struct C : A {
  C() : A("C") { ctor_log.push_back("C"); }
  std::string who() const override { return "C"; }
};
struct D : B, C {  // D(B, C) in Python
  D() { ctor_log.push_back("D"); }
};
}  // namespace plain

// With virtual inheritance: B and C share one A, which the most derived class (D) constructs.
namespace virt {
struct A {
  explicit A(std::string made_by) : made_by(std::move(made_by)) { ctor_log.push_back("A"); }
  virtual ~A() = default;
  virtual std::string who() const { return "A"; }
  std::string made_by;
  double weights[16] = {};
};
struct B : virtual A {
  B() : A("B") { ctor_log.push_back("B"); }  // A("B") is skipped when B is part of a D
  std::string who() const override { return "B"; }
};
struct C : virtual A {
  C() : A("C") { ctor_log.push_back("C"); }
  std::string who() const override { return "C"; }
};
struct D : B, C {
  // A has no default constructor, so D must name it: the most derived class initialises a virtual base.
  D() : A("D") { ctor_log.push_back("D"); }
  // B and C both override who() of the one shared A: without this override there would be no unique
  // final overrider and `struct D` itself would not compile. C++ has no MRO to pick one; we choose.
  std::string who() const override { return "D(" + B::who() + ", " + C::who() + ")"; }
};
}  // namespace virt

// True when `t.who()` names exactly one function. An ambiguous lookup is a substitution failure inside
// a requires-expression, so the concept answers false instead of stopping the compilation.
template <class T>
concept HasUnambiguousWho = requires(const T& t) {
  t.who();
};

// ---------------------------------------------------------------------------------------------------
// 6. Python's method resolution order (C3 linearisation), computed in C++.
// ---------------------------------------------------------------------------------------------------

using Names = std::vector<std::string>;
using Hierarchy = std::map<std::string, Names>;  // class -> its direct bases, in declaration order

std::string join(const Names& names, const char* sep = ", ") {
  std::string s;
  for (const auto& n : names) {
    if (!s.empty()) s += sep;
    s += n;
  }
  return s;
}

// L[C] = C + merge(L[B1], ..., L[Bn], [B1, ..., Bn]). merge repeatedly takes the first head (first
// element of a list) that appears in no list's tail, appends it and removes it from every list's head.
// No such head: the bases' orders contradict each other and there is no linearisation (Python raises
// TypeError). Returns nullopt then.
std::optional<Names> c3(const std::string& cls, const Hierarchy& h) {
  std::vector<Names> lists;
  const Names& bases = h.at(cls);
  for (const auto& base : bases) {
    auto lb = c3(base, h);
    if (!lb) return std::nullopt;
    lists.push_back(*lb);
  }
  lists.push_back(bases);
  Names out = {cls};
  for (;;) {
    std::erase_if(lists, [](const Names& l) { return l.empty(); });
    if (lists.empty()) return out;
    std::optional<std::string> pick;
    for (const auto& l : lists) {
      const bool in_a_tail = std::any_of(lists.begin(), lists.end(), [&](const Names& other) {
        return std::find(other.begin() + 1, other.end(), l.front()) != other.end();
      });
      if (!in_a_tail) {
        pick = l.front();
        break;
      }
    }
    if (!pick) return std::nullopt;
    out.push_back(*pick);
    for (auto& l : lists)
      if (l.front() == *pick) l.erase(l.begin());
  }
}

// Python 2's classic classes: depth first, left to right, the first visit of each class counts.
void depth_first(const std::string& cls, const Hierarchy& h, Names& out) {
  if (std::find(out.begin(), out.end(), cls) != out.end()) return;
  out.push_back(cls);
  for (const auto& base : h.at(cls)) depth_first(base, h, out);
}

// Breadth first, left to right, each class at its first visit: the note's description of new-style classes.
Names breadth_first(const std::string& cls, const Hierarchy& h) {
  Names out = {cls};
  for (std::size_t i = 0; i < out.size(); ++i)
    for (const auto& base : h.at(out[i]))
      if (std::find(out.begin(), out.end(), base) == out.end()) out.push_back(base);
  return out;
}

// What Python prints for D() when every __init__ is `super().__init__(); print(name)`: super() means
// "the next class in the MRO of the object being built", so the calls go down D's MRO and the prints
// come back up it. (object.__init__ prints nothing.)
void cooperative_init(const Names& mro, std::size_t i, Names& printed) {
  if (mro[i] == "object") return;
  cooperative_init(mro, i + 1, printed);  // super().__init__()
  printed.push_back(mro[i]);
}

// ---------------------------------------------------------------------------------------------------
// 7. ember's module tree.
// ---------------------------------------------------------------------------------------------------

// The C++ class of an object, as the compiler names it ("ember::nn::Linear").
std::string class_name(const nn::Module& m) {
  int status = 0;
  char* s = abi::__cxa_demangle(typeid(m).name(), nullptr, nullptr, &status);
  std::string name = status == 0 && s ? s : typeid(m).name();
  std::free(s);
  return name;
}

// "ember::nn::Linear" -> "Linear".
std::string short_name(const std::string& qualified) {
  const auto pos = qualified.rfind("::");
  return pos == std::string::npos ? qualified : qualified.substr(pos + 2);
}

// The chain of ember classes from Module down to m's class, found with dynamic_cast (C++ has no __mro__
// to read at run time; the bases are known to the compiler only).
std::string lineage(nn::Module& m) {
  std::string s = "Module";
  if (dynamic_cast<nn::SequenceMixer*>(&m)) s += " > SequenceMixer";
  if (dynamic_cast<nn::MultiHeadAttention*>(&m)) s += " > MultiHeadAttention";
  if (dynamic_cast<nn::Linear*>(&m)) s += " > Linear";
  if (dynamic_cast<nn::Embedding*>(&m)) s += " > Embedding";
  if (dynamic_cast<nn::LayerNorm*>(&m)) s += " > LayerNorm";
  if (dynamic_cast<nn::MLP*>(&m)) s += " > MLP";
  if (dynamic_cast<nn::Block*>(&m)) s += " > Block";
  if (dynamic_cast<nn::ModuleList*>(&m)) s += " > ModuleList";
  if (dynamic_cast<nn::LanguageModel*>(&m)) s += " > LanguageModel";
  return s;
}

// "[1 -1 3]" for printing short vectors.
std::string values(const Tensor& t) {
  std::string s;
  char buf[32];
  for (double v : t.to_vector<double>()) {
    std::snprintf(buf, sizeof buf, "%g", v);
    if (!s.empty()) s += ' ';
    s += buf;
  }
  return "[" + s + "]";
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  if (x.size() != y.size()) return INFINITY;
  double m = 0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  tutorial::Claims claims;
  manual_seed(4);

  tutorial::section("1. From the general to the special: a module of our own");
  // Held by shared_ptr, as every ember module; used through a reference to the base class.
  auto affine = std::make_shared<Affine>(2.0, 0.5);
  nn::Module& as_module = *affine;
  const Tensor x1 = tensor({1.0, -1.0, 3.0});
  const Tensor y1 = as_module(x1);  // operator() calls the virtual forward: Affine's, found at run time
  std::printf("Affine through a Module&: f(%s) = %s\n", values(x1).c_str(), values(y1).c_str());
  std::printf("printed tree: %s", as_module.str().c_str());
  for (const auto& [name, p] : as_module.named_parameters())
    std::printf("  parameter %-6s = %g\n", name.c_str(), p.item());
  claims.check(y1.to_vector<float>() == std::vector<float>{2.5f, -1.5f, 6.5f},
               "a call through Module& runs the derived forward: 2 x + 0.5");
  claims.check(as_module.num_parameters() == 2 && as_module.named_parameters()[0].first == "scale",
               "the inherited bookkeeping lists the two registered parameters, in order");
  // A class that does not override forward keeps the base version, which throws.
  nn::ModuleList list;
  bool base_forward_threw = false;
  try {
    (void)list.forward(x1);
  } catch (const Error& e) {
    base_forward_threw = true;
    std::printf("ModuleList has no forward of its own; Module::forward says: %s\n", e.what());
  }
  claims.check(base_forward_threw, "a module that does not override forward inherits Module::forward, which throws");

  tutorial::section("2. Overriding a hook and calling the base class's version");
  nn::MixerConfig mc;
  mc.d_model = 8;
  mc.n_heads = 2;
  mc.max_len = 16;
  Generator g1(1), g2(1), g3(1);  // same seed: the three layers start from the same weights
  mc.gen = &g1;
  nn::MultiHeadAttention base_attn(mc);
  mc.gen = &g2;
  TemperedAttention same_attn(mc, 1.0);  // tau = 1: should be exactly the base layer
  mc.gen = &g3;
  TemperedAttention flat_attn(mc, 0.0);  // tau = infinity: every visible key gets the same weight
  std::printf("%s", flat_attn.str().c_str());
  const std::int64_t T = 5;
  const Tensor x2 = randn({1, T, 8});
  claims.check(max_abs_diff(same_attn(x2), base_attn(x2)) == 0.0,
               "TemperedAttention with tau = 1 computes exactly what MultiHeadAttention does");
  // With q = 0 all scores are 0, softmax is uniform over keys 0..t, and the output at t is the running
  // mean of the values: o_t = W_o (mean_{s<=t} v_s) + b_o. Computed here without the attention code:
  const Tensor v = flat_attn.v_proj->forward(x2);  // [1, T, 8]
  const Tensor counts = reshape(arange(1.0, static_cast<double>(T + 1), 1.0, DType::Float32), {1, T, 1});
  const Tensor running_mean = cumsum(v, 1) / counts;
  const Tensor expected = matmul(running_mean, transpose(flat_attn.o_proj->weight, 0, 1)) + flat_attn.o_proj->bias;
  const double flat_err = max_abs_diff(flat_attn(x2), expected);
  std::printf("tau = infinity vs the running mean of the values: max |difference| = %.2e\n", flat_err);
  claims.check(flat_err < 1e-5, "with tau = infinity the layer averages the values of all tokens so far");
  // step() was written once, in the base class, and it calls attend() too: the subclass decodes
  // token by token correctly without a line of its own.
  auto state = flat_attn.init_state(1, T);
  const Tensor full = flat_attn(x2);
  double step_err = 0;
  for (std::int64_t t = 0; t < T; ++t) {
    const Tensor y_t = flat_attn.step(select(x2, 1, t), *state);
    step_err = std::max(step_err, max_abs_diff(y_t, select(full, 1, t)));
  }
  std::printf("decoding one token at a time vs forward: max |difference| = %.2e\n", step_err);
  claims.check(step_err < 1e-5, "the inherited step() (KV cache) uses the overridden attend() and agrees with forward");

  tutorial::section("3. Composition: an MLP has Linear layers, it is not one");
  const std::int64_t d = 4, hidden = 8;
  Generator g4(2);
  nn::MLP mlp(d, hidden, nn::MLPKind::Gelu, true, &g4);
  std::printf("%s", mlp.str().c_str());
  const std::int64_t by_hand = d * hidden + hidden + hidden * d + d;  // W_up, b_up, W_down, b_down
  std::printf("parameters: %lld reported, %lld by hand (4*8 + 8 + 8*4 + 4)\n",
              static_cast<long long>(mlp.num_parameters()), static_cast<long long>(by_hand));
  claims.check(mlp.num_parameters() == by_hand, "MLP(4, 8) has 4*8 + 8 + 8*4 + 4 = 76 parameters");
  claims.check(dynamic_cast<nn::Linear*>(static_cast<nn::Module*>(&mlp)) == nullptr && mlp.up != nullptr,
               "an MLP is not a Linear (dynamic_cast fails) but has two (up, down)");
  // forward is the composition down(gelu(up(x))); here with plain matmuls on the members' weights.
  const Tensor x3 = randn({3, d});
  const auto affine_map = [](const Tensor& x, const nn::Linear& l) {
    return matmul(x, transpose(l.weight, 0, 1)) + l.bias;
  };
  const double mlp_err = max_abs_diff(mlp(x3), affine_map(gelu(affine_map(x3, *mlp.up)), *mlp.down));
  claims.check(mlp_err < 1e-5, "MLP.forward(x) = down(gelu(up(x))), checked with plain matmuls");

  tutorial::section("4. The diamond without virtual inheritance: two A's");
  ctor_log.clear();
  plain::D pd;
  const Names plain_order = ctor_log;
  std::printf("constructing a D runs: %s\n", join(plain_order, " ").c_str());
  const plain::A* a_via_b = static_cast<const plain::B*>(&pd);  // D -> B -> A
  const plain::A* a_via_c = static_cast<const plain::C*>(&pd);  // D -> C -> A
  std::printf("sizeof(A) = %zu, sizeof(D) = %zu\n", sizeof(plain::A), sizeof(plain::D));
  std::printf("the A inside B is at D+%td, the A inside C at D+%td; made by %s and %s\n",
              reinterpret_cast<const char*>(a_via_b) - reinterpret_cast<const char*>(&pd),
              reinterpret_cast<const char*>(a_via_c) - reinterpret_cast<const char*>(&pd), a_via_b->made_by.c_str(),
              a_via_c->made_by.c_str());
  claims.check(plain_order == Names{"A", "B", "A", "C", "D"}, "construction order is A B A C D: A is built twice");
  claims.check(a_via_b != a_via_c && sizeof(plain::D) >= 2 * sizeof(plain::A::weights),
               "D holds two distinct A subobjects (two addresses; sizeof(D) >= twice A's payload)");
  pd.B::weights[0] = 1.0;  // write through one path...
  claims.check(pd.C::weights[0] == 0.0, "writing d.B::weights leaves d.C::weights alone: they are different arrays");
  // `pd.who()` would not compile: B::who and C::who are both candidates. The concept asks the compiler.
  claims.check(!HasUnambiguousWho<plain::D>, "d.who() is ambiguous (B::who or C::who?): it does not compile");
  claims.check(pd.B::who() == "B" && pd.C::who() == "C", "qualified calls d.B::who() and d.C::who() pick one");
  claims.check(!std::is_convertible_v<plain::D*, plain::A*> && std::is_base_of_v<plain::A, plain::D>,
               "A is a base of D, yet a D* does not convert to A*: which A?");

  tutorial::section("5. The diamond with virtual inheritance: one A");
  ctor_log.clear();
  virt::D vd;
  const Names virt_order = ctor_log;
  const virt::A* va_via_b = static_cast<const virt::B*>(&vd);
  const virt::A* va_via_c = static_cast<const virt::C*>(&vd);
  std::printf("constructing a D runs: %s\n", join(virt_order, " ").c_str());
  std::printf("sizeof(A) = %zu, sizeof(D) = %zu; A made by %s; d.who() = %s\n", sizeof(virt::A), sizeof(virt::D),
              vd.made_by.c_str(), vd.who().c_str());
  claims.check(virt_order == Names{"A", "B", "C", "D"}, "construction order is A B C D: the virtual base once, first");
  claims.check(vd.made_by == "D", "the most derived class initialises A: B's A(\"B\") and C's A(\"C\") are skipped");
  claims.check(va_via_b == va_via_c && sizeof(virt::D) < 2 * sizeof(virt::A::weights),
               "both paths reach the same A, and D holds only one payload");
  claims.check(HasUnambiguousWho<virt::D> && std::is_convertible_v<virt::D*, virt::A*>,
               "d.who() compiles (D's own override) and D* converts to the one A*");
  const virt::A& as_a = vd;
  claims.check(as_a.who() == "D(B, C)", "a call through A& reaches D::who, which calls B::who and C::who explicitly");

  tutorial::section("6. Python's answer: one method resolution order (C3)");
  const Hierarchy diamond = {{"object", {}}, {"A", {"object"}}, {"B", {"A"}}, {"C", {"A"}}, {"D", {"B", "C"}}};
  const auto mro_d = c3("D", diamond);
  std::printf("class D(B, C), B(A), C(A):  D.__mro__ = %s\n", join(*mro_d).c_str());
  claims.check(mro_d && *mro_d == Names{"D", "B", "C", "A", "object"}, "C3 gives D, B, C, A, object");
  // Classic classes had no common root `object`.
  const Hierarchy classic_diamond = {{"A", {}}, {"B", {"A"}}, {"C", {"A"}}, {"D", {"B", "C"}}};
  Names classic;
  depth_first("D", classic_diamond, classic);
  std::printf("  Python 2 classic classes (depth first): %s\n", join(classic).c_str());
  claims.check(classic == Names{"D", "B", "A", "C"},
               "depth first puts A before C: a method that C overrides and B does not is found in A (C3 fixed this)");
  Names printed;
  cooperative_init(*mro_d, 0, printed);
  std::printf("  D() with every __init__ = super().__init__(); print(name) prints: %s\n", join(printed, " ").c_str());
  claims.check(printed == Names{"A", "C", "B", "D"} && virt_order == Names{"A", "B", "C", "D"},
               "cooperative super() builds A C B D; C++ builds A B C D (bases in declaration order)");
  // Breadth first matches C3 on the diamond but not in general: here E's MRO keeps D's base B next to D.
  const Hierarchy deeper = {{"object", {}}, {"A", {"object"}}, {"B", {"A"}},
                            {"C", {"A"}},   {"D", {"B"}},      {"E", {"D", "C"}}};
  const auto mro_e = c3("E", deeper);
  const Names bfs_e = breadth_first("E", deeper);
  std::printf("class E(D, C), D(B), B(A), C(A):  C3 = %s;  breadth first = %s\n", join(*mro_e).c_str(),
              join(bfs_e).c_str());
  claims.check(mro_e && *mro_e == Names{"E", "D", "B", "C", "A", "object"} && *mro_e != bfs_e,
               "C3 is not breadth first: E, D, B, C, A, object (BFS would put C before B)");
  // Orders that contradict each other have no linearisation; Python refuses to create the class.
  const Hierarchy crossed = {{"object", {}},    {"A", {"object"}}, {"B", {"object"}},
                             {"X", {"A", "B"}}, {"Y", {"B", "A"}}, {"Z", {"X", "Y"}}};
  const auto mro_z = c3("Z", crossed);
  std::printf("class Z(X, Y), X(A, B), Y(B, A):  %s\n",
              mro_z ? join(*mro_z).c_str() : "no consistent MRO (Python: TypeError)");
  claims.check(!mro_z, "X wants A before B, Y wants B before A: C3 finds no order, as Python's TypeError says");

  tutorial::section("7. ember's modules: single inheritance plus composition");
  nn::LanguageModelConfig cfg;
  cfg.vocab_size = 13;
  cfg.d_model = 16;
  cfg.n_layers = quick ? 1 : 2;
  cfg.n_heads = 2;
  cfg.max_len = 16;
  nn::LanguageModel model(cfg);
  const std::string tree = model.str();
  std::printf("%s", tree.c_str());
  std::printf("\n%-26s %-22s %s\n", "named_modules()", "C++ class", "is-a chain");
  std::set<const nn::Module*> seen;
  std::int64_t own_sum = 0;
  const auto modules = model.named_modules();
  for (const auto& [name, m] : modules) {
    seen.insert(m.get());
    for (const auto& [pname, p] : m->named_parameters(false)) own_sum += p.numel();
    std::printf("%-26s %-22s %s\n", name.empty() ? "(root)" : name.c_str(), short_name(class_name(*m)).c_str(),
                lineage(*m).c_str());
  }
  claims.check(seen.size() == modules.size(), "every module appears once: the modules form a tree, not a DAG");
  // Hand count, with V = 13, D = 16, max_len = 16, L layers: embeddings V D + max_len D; per block two
  // LayerNorms (2 x 2D), attention 4 (D D + D), MLP D 4D + 4D + 4D D + D; final LayerNorm 2D; head D V.
  const std::int64_t V = 13, D = 16, L = cfg.n_layers;
  const std::int64_t per_block = 2 * 2 * D + 4 * (D * D + D) + (D * 4 * D + 4 * D) + (4 * D * D + D);
  const std::int64_t hand = V * D + 16 * D + L * per_block + 2 * D + D * V;
  const std::string printed_count = tree.substr(tree.find('[') + 1, tree.find(" params]") - tree.find('[') - 1);
  std::printf("\nparameters: printed %s, by hand %lld (%lld per block), sum over modules %lld\n", printed_count.c_str(),
              static_cast<long long>(hand), static_cast<long long>(per_block), static_cast<long long>(own_sum));
  claims.check(printed_count == nn::with_commas(hand) && model.num_parameters() == hand && own_sum == hand,
               "the printed parameter count equals the hand count and the sum of each module's own parameters");
  const auto block0 = model.layers->at<nn::Block>(0);
  const auto* attn = dynamic_cast<const nn::MultiHeadAttention*>(block0->mixer.get());
  claims.check(std::is_base_of_v<nn::SequenceMixer, nn::MultiHeadAttention> &&
                   std::is_base_of_v<nn::Module, nn::SequenceMixer> &&
                   !std::is_base_of_v<nn::Linear, nn::MultiHeadAttention> && attn != nullptr &&
                   attn->named_children().size() == 4,
               "MultiHeadAttention is-a SequenceMixer is-a Module (one chain), and has-a four Linear layers");

  return claims.exit_code();
}
