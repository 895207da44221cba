/// \file
/// \brief SGD, Adam and AdamW against their update rules written out in plain double arithmetic,
/// the AdamW oracles of technique notes §14, state-dict round trips, decay_groups, clip_grad_norm and
/// configuration errors.
#include <cmath>
#include <vector>

#include "helpers.h"
#include "train/optim.h"

using namespace ember;
using namespace ember::optim;
using Vec = std::vector<double>;

namespace {

/// A Float64 (or `dtype`) leaf parameter that requires grad.
Tensor param(const Vec& v, DType dtype = DType::Float64) {
  Tensor t = from_vector(v, {static_cast<std::int64_t>(v.size())}, dtype);
  t.requires_grad_();
  return t;
}

void set_grad(Tensor& p, const Vec& g) { p.set_grad(from_vector(g, p.shape(), p.dtype())); }

/// The gradient at step t (0-based) for element i: varied in sign and size.
double grad_at(int t, std::size_t i) { return std::sin(1.0 + 0.7 * t + 1.3 * static_cast<double>(i)) * (1.0 + t); }

Vec grads_at(int t, std::size_t n) {
  Vec g(n);
  for (std::size_t i = 0; i < n; ++i) g[i] = grad_at(t, i);
  return g;
}

/// SGD in plain doubles, straight from torch.optim.SGD's documented algorithm.
Vec sgd_reference(Vec p, int steps, double lr, double wd, double mu, double damp, bool nesterov) {
  Vec b(p.size(), 0.0);
  for (int t = 0; t < steps; ++t) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      double d = grad_at(t, i) + wd * p[i];
      if (mu != 0.0) {
        b[i] = t == 0 ? d : mu * b[i] + (1.0 - damp) * d;
        d = nesterov ? d + mu * b[i] : b[i];
      }
      p[i] -= lr * d;
    }
  }
  return p;
}

/// Adam (decoupled = false) or AdamW in plain doubles, as the papers write them.
Vec adam_reference(Vec p, int steps, double lr, double wd, double b1, double b2, double eps, bool decoupled) {
  Vec m(p.size(), 0.0), v(p.size(), 0.0);
  for (int t = 1; t <= steps; ++t) {
    for (std::size_t i = 0; i < p.size(); ++i) {
      double g = grad_at(t - 1, i);
      if (decoupled)
        p[i] *= 1.0 - lr * wd;
      else
        g += wd * p[i];
      m[i] = b1 * m[i] + (1.0 - b1) * g;
      v[i] = b2 * v[i] + (1.0 - b2) * g * g;
      const double mhat = m[i] / (1.0 - std::pow(b1, t)), vhat = v[i] / (1.0 - std::pow(b2, t));
      p[i] -= lr * mhat / (std::sqrt(vhat) + eps);
    }
  }
  return p;
}

/// Runs `steps` steps of `opt` over p with grad_at's gradients; returns p's values.
Vec run(Optimizer& opt, Tensor& p, int steps) {
  for (int t = 0; t < steps; ++t) {
    set_grad(p, grads_at(t, static_cast<std::size_t>(p.numel())));
    opt.step();
  }
  return p.to_vector<double>();
}

/// Largest |a - b| / max(1, |b|).
double max_rel(const Vec& a, const Vec& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i])));
  return m;
}

/// The entry `name` of a state dict.
Tensor entry(const NamedTensors& sd, const std::string& name) {
  for (const auto& [k, t] : sd)
    if (k == name) return t;
  FAIL("no entry " << name);
  return {};
}

const Vec kStart{0.5, -1.25, 2.0, 0.0, -0.3};

}  // namespace

TEST_CASE("SGD: by hand, one element, momentum 0.9 (lr 0.1, gradients 1, 2, 3)") {
  Tensor p = param({1.0});
  SGD opt({{{p}, 0.1, 0.0}}, 0.9);
  const Vec g{1.0, 2.0, 3.0};
  // b = 1, p = 0.9; b = 0.9 + 2 = 2.9, p = 0.61; b = 2.61 + 3 = 5.61, p = 0.049
  const Vec expect{0.9, 0.61, 0.049};
  for (int t = 0; t < 3; ++t) {
    set_grad(p, {g[t]});
    opt.step();
    CHECK(p.item() == doctest::Approx(expect[t]).epsilon(1e-14));
  }
  CHECK(opt.steps() == 3);
}

TEST_CASE("SGD: 3 steps against the plain-double algorithm") {
  struct Row {
    const char* name;
    double lr, wd, mu, damp;
    bool nesterov;
  };
  const std::vector<Row> rows = {
      {"plain", 0.1, 0.0, 0.0, 0.0, false},    {"weight decay", 0.05, 0.1, 0.0, 0.0, false},
      {"momentum", 0.1, 0.0, 0.9, 0.0, false}, {"momentum, dampening, weight decay", 0.1, 0.01, 0.8, 0.3, false},
      {"nesterov", 0.1, 0.0, 0.9, 0.0, true},  {"nesterov with weight decay", 0.02, 0.5, 0.5, 0.0, true},
  };
  for (const auto& c : rows) {
    SUBCASE(c.name) {
      for (DType dt : {DType::Float64, DType::Float32}) {
        Tensor p = param(kStart, dt);
        SGD opt({{{p}, c.lr, c.wd}}, c.mu, c.damp, c.nesterov);
        const Vec got = run(opt, p, 3);
        const Vec want = sgd_reference(kStart, 3, c.lr, c.wd, c.mu, c.damp, c.nesterov);
        CHECK(max_rel(got, want) < (dt == DType::Float64 ? 1e-14 : 1e-6));
      }
    }
  }
}

TEST_CASE("Adam and AdamW: 3 steps against the plain-double algorithm") {
  struct Row {
    const char* name;
    bool decoupled;
    double lr, wd, b1, b2, eps;
  };
  const std::vector<Row> rows = {
      {"Adam", false, 1e-2, 0.0, 0.9, 0.999, 1e-8},
      {"Adam with L2 weight decay", false, 1e-2, 0.1, 0.9, 0.999, 1e-8},
      {"Adam, betas (0.3, 0.5), eps 0.1", false, 0.5, 0.2, 0.3, 0.5, 0.1},
      {"AdamW", true, 1e-2, 0.1, 0.9, 0.999, 1e-8},
      {"AdamW, betas (0.5, 0.9), lr 0.3", true, 0.3, 0.5, 0.5, 0.9, 1e-6},
  };
  for (const auto& c : rows) {
    SUBCASE(c.name) {
      for (DType dt : {DType::Float64, DType::Float32}) {
        Tensor p = param(kStart, dt);
        std::unique_ptr<Optimizer> opt;
        if (c.decoupled)
          opt = std::make_unique<AdamW>(std::vector<ParamGroup>{{{p}, c.lr, c.wd}}, c.b1, c.b2, c.eps);
        else
          opt = std::make_unique<Adam>(std::vector<ParamGroup>{{{p}, c.lr, c.wd}}, c.b1, c.b2, c.eps);
        const Vec got = run(*opt, p, 3);
        const Vec want = adam_reference(kStart, 3, c.lr, c.wd, c.b1, c.b2, c.eps, c.decoupled);
        CHECK(max_rel(got, want) < (dt == DType::Float64 ? 1e-13 : 1e-6));
      }
    }
  }
}

TEST_CASE("SGD and AdamW: a parameter large enough for the parallel loop matches the reference") {
  Vec start(50000);
  for (std::size_t i = 0; i < start.size(); ++i) start[i] = std::cos(0.1 * static_cast<double>(i));
  Tensor a = param(start), b = param(start);
  AdamW adamw({{{a}, 1e-2, 0.1}});
  SGD sgd({{{b}, 1e-2, 0.1}}, 0.9, 0.0, true);
  CHECK(max_rel(run(adamw, a, 2), adam_reference(start, 2, 1e-2, 0.1, 0.9, 0.999, 1e-8, true)) < 1e-13);
  CHECK(max_rel(run(sgd, b, 2), sgd_reference(start, 2, 1e-2, 0.1, 0.9, 0.0, true)) < 1e-14);
}

TEST_CASE("AdamW: first step is theta0 (1 - lr lambda) - lr g / (|g| + eps) (section 14, oracle 5)") {
  const double lr = 1e-3, wd = 0.01, eps = 1e-8;
  const Vec g{0.3, -2.0, 1e-3, 5.0, -7e-5};
  Tensor p = param(kStart);
  AdamW opt({{{p}, lr, wd}});
  set_grad(p, g);
  opt.step();
  const Vec got = p.to_vector<double>();
  for (std::size_t i = 0; i < g.size(); ++i)
    CHECK(got[i] == doctest::Approx(kStart[i] * (1 - lr * wd) - lr * g[i] / (std::abs(g[i]) + eps)).epsilon(1e-14));
}

TEST_CASE("AdamW: under a constant gradient m_hat = g and v_hat = g^2 at every step (via the state dict)") {
  const double b1 = 0.9, b2 = 0.999;
  const Vec g{0.3, -2.0, 1.5};
  Tensor p = param({1.0, 2.0, 3.0});
  AdamW opt({{{p}, 1e-2, 0.1}}, b1, b2);
  for (int t = 1; t <= 6; ++t) {
    set_grad(p, g);
    opt.step();
    const NamedTensors sd = opt.state_dict();
    CHECK(entry(sd, "step").item() == t);
    CHECK(entry(sd, "state.0.step").item() == t);
    const Vec m = entry(sd, "state.0.exp_avg").to_vector<double>(),
              v = entry(sd, "state.0.exp_avg_sq").to_vector<double>();
    for (std::size_t i = 0; i < g.size(); ++i) {
      CHECK(m[i] / (1 - std::pow(b1, t)) == doctest::Approx(g[i]).epsilon(1e-13));
      CHECK(v[i] / (1 - std::pow(b2, t)) == doctest::Approx(g[i] * g[i]).epsilon(1e-12));
    }
  }
}

TEST_CASE("AdamW with weight decay 0 equals Adam") {
  for (DType dt : {DType::Float64, DType::Float32}) {
    Tensor a = param(kStart, dt), b = param(kStart, dt);
    Adam adam({{{a}, 0.05, 0.0}});
    AdamW adamw({{{b}, 0.05, 0.0}});
    CHECK(run(adam, a, 4) == run(adamw, b, 4));
  }
}

TEST_CASE("Optimizer: state_dict round trip continues with identical parameters") {
  struct Row {
    const char* name;
    std::function<std::unique_ptr<Optimizer>(Tensor, Tensor)> make;
    std::vector<std::string> buffers;
  };
  const std::vector<Row> rows = {
      {"SGD momentum",
       [](Tensor p, Tensor q) {
         return std::make_unique<SGD>(std::vector<ParamGroup>{{{p, q}, 0.1, 0.01}}, 0.9);
       },
       {"momentum_buffer"}},
      {"Adam",
       [](Tensor p, Tensor q) {
         return std::make_unique<Adam>(std::vector<ParamGroup>{{{p}, 0.1, 0.01}, {{q}, 0.2, 0.0}});
       },
       {"exp_avg", "exp_avg_sq"}},
      {"AdamW",
       [](Tensor p, Tensor q) {
         return std::make_unique<AdamW>(std::vector<ParamGroup>{{{p, q}, 0.1, 0.1}});
       },
       {"exp_avg", "exp_avg_sq"}},
  };
  for (const auto& c : rows) {
    SUBCASE(c.name) {
      Tensor p1 = param(kStart), q1 = param({1.0, -1.0}, DType::Float32);
      auto a = c.make(p1, q1);
      run(*a, p1, 1);  // only p has a gradient at first: q's state stays at step 0
      set_grad(q1, {0.5, 0.25});
      a->step();
      const NamedTensors sd = a->state_dict();
      std::vector<std::string> names{"step"};
      for (int i = 0; i < 2; ++i) {
        names.push_back("state." + std::to_string(i) + ".step");
        for (const auto& b : c.buffers) names.push_back("state." + std::to_string(i) + "." + b);
      }
      std::vector<std::string> got_names;
      for (const auto& [k, t] : sd) got_names.push_back(k);
      CHECK(got_names == names);
      CHECK(entry(sd, "step").dtype() == DType::Int64);
      CHECK(entry(sd, "step").item() == 2);
      CHECK(entry(sd, "state.0.step").item() == 2);
      CHECK(entry(sd, "state.1.step").item() == 1);

      // A fresh optimizer over copies of the parameters, restored from the state dict.
      Tensor p2 = p1.detach().clone(), q2 = q1.detach().clone();
      p2.requires_grad_();
      q2.requires_grad_();
      auto b = c.make(p2, q2);
      b->load_state_dict(sd);
      CHECK(b->steps() == 2);
      Tensor p3 = p1.detach().clone(), q3 = q1.detach().clone();  // the same start without the state
      p3.requires_grad_();
      q3.requires_grad_();
      auto fresh = c.make(p3, q3);
      for (int t = 0; t < 3; ++t) {
        for (Tensor* x : {&p1, &p2, &p3}) set_grad(*x, grads_at(t + 5, 5));
        for (Tensor* x : {&q1, &q2, &q3}) set_grad(*x, {0.1 * t - 0.2, 0.3});
        a->step();
        b->step();
        fresh->step();
      }
      CHECK(p1.to_vector<double>() == p2.to_vector<double>());
      CHECK(q1.to_vector<double>() == q2.to_vector<double>());
      CHECK(p1.to_vector<double>() != p3.to_vector<double>());  // the state mattered
    }
  }
}

TEST_CASE("Optimizer: the state dict is a snapshot") {
  Tensor p = param({1.0, 2.0});
  Adam opt({{{p}, 0.1, 0.0}});
  set_grad(p, {1.0, 1.0});
  opt.step();
  const NamedTensors sd = opt.state_dict();
  const Vec m1 = entry(sd, "state.0.exp_avg").to_vector<double>();
  opt.step();
  CHECK(entry(sd, "state.0.exp_avg").to_vector<double>() == m1);
  CHECK(entry(sd, "step").item() == 1);
}

TEST_CASE("Optimizer: load_state_dict names what is missing or wrong") {
  Tensor p = param({1.0, 2.0, 3.0}), q = param({1.0});
  Adam opt({{{p, q}, 0.1, 0.0}});
  const NamedTensors good = opt.state_dict();
  auto without = [&](const std::string& name) {
    NamedTensors out;
    for (const auto& e : good)
      if (e.first != name) out.push_back(e);
    return out;
  };
  auto replaced = [&](const std::string& name, Tensor t) {
    NamedTensors out = good;
    for (auto& e : out)
      if (e.first == name) e.second = t;
    return out;
  };
  CHECK_THROWS_EMBER(opt.load_state_dict(without("state.1.exp_avg_sq")),
                     "Adam.load_state_dict: missing 'state.1.exp_avg_sq'");
  CHECK_THROWS_EMBER(opt.load_state_dict(without("step")), "missing 'step'");
  CHECK_THROWS_EMBER(opt.load_state_dict(replaced("state.0.exp_avg", zeros({2}, DType::Float64))),
                     "'state.0.exp_avg' has shape [2] and dtype float64, expected shape [3] and dtype float64");
  CHECK_THROWS_EMBER(opt.load_state_dict(replaced("state.0.exp_avg", zeros({3}))),
                     "dtype float32, expected shape [3] and dtype float64");
  CHECK_THROWS_EMBER(opt.load_state_dict(replaced("step", scalar_tensor(1.0))),
                     "'step' has shape [] and dtype float32");
  CHECK_THROWS_EMBER(opt.load_state_dict(replaced("step", scalar_tensor(-1.0, DType::Int64))), "'step' is negative");
  NamedTensors extra = good;
  extra.emplace_back("state.2.exp_avg", zeros({1}, DType::Float64));
  CHECK_THROWS_EMBER(opt.load_state_dict(extra), "unexpected 'state.2.exp_avg'");
  // An SGD state (momentum buffers) does not fit Adam.
  Tensor r = param({1.0, 2.0, 3.0}), s = param({1.0});
  SGD sgd({{{r, s}, 0.1, 0.0}}, 0.9);
  CHECK_THROWS_EMBER(opt.load_state_dict(sgd.state_dict()), "unexpected 'state.0.momentum_buffer'");
  // A failed load changes nothing.
  CHECK(opt.steps() == 0);
  CHECK_NOTHROW(opt.load_state_dict(good));
}

TEST_CASE("Optimizer: parameters without a gradient are skipped and keep their own step count") {
  const double lr = 0.1, eps = 1e-8;
  Tensor p = param({1.0, 2.0}), q = param({3.0});
  Adam opt({{{p, q}, lr, 0.0}});
  set_grad(p, {0.5, -0.5});
  opt.step();
  opt.step();
  CHECK(q.item() == 3.0);
  CHECK(entry(opt.state_dict(), "state.1.step").item() == 0);
  CHECK(entry(opt.state_dict(), "state.1.exp_avg").item() == 0.0);
  // q's first update, at the optimizer's third step, is a bias-corrected first step: -lr sign(g).
  const std::uint64_t v0 = q.version();
  p.set_grad(Tensor());
  set_grad(q, {4.0});
  opt.step();
  CHECK(q.item() == doctest::Approx(3.0 - lr * 4.0 / (4.0 + eps)).epsilon(1e-14));
  CHECK(q.version() > v0);
  CHECK(opt.steps() == 3);
  opt.zero_grad();
  CHECK_FALSE(p.grad().defined());
  CHECK_FALSE(q.grad().defined());
}

TEST_CASE("Optimizer: set_lr and param_groups") {
  Tensor p = param({1.0}), q = param({1.0});
  SGD opt({{{p}, 0.1, 0.0}, {{q}, 0.2, 0.0}});
  opt.set_lr(0.5);
  CHECK(opt.param_groups()[0].lr == 0.5);
  CHECK(opt.param_groups()[1].lr == 0.5);
  opt.param_groups()[1].lr = 0.25;
  set_grad(p, {1.0});
  set_grad(q, {1.0});
  opt.step();
  CHECK(p.item() == 0.5);
  CHECK(q.item() == 0.75);
}

TEST_CASE("Adam trains: a quadratic bowl through autograd reaches its minimum") {
  Tensor w = param({3.0, -2.0, 0.5});
  const Tensor target = tensor({1.0, 1.0, -1.0}, DType::Float64);
  Adam opt({{{w}, 0.05, 0.0}});
  for (int i = 0; i < 500; ++i) {
    opt.zero_grad();
    sum(square(w - target)).backward();
    opt.step();
  }
  CHECK(test::allclose(w.detach(), target, 0, 1e-3));
}

TEST_CASE("decay_groups: decay on dim >= 2 only, never on biases, norm gains, rates or SSM dynamics") {
  const NamedTensors named = {
      {"embed.weight", zeros({10, 4})},
      {"layers.0.norm.weight", zeros({4})},
      {"layers.0.linear.weight", zeros({8, 4})},
      {"layers.0.linear.bias", zeros({8})},
      {"layers.0.mixer.A_log", zeros({4, 16})},
      {"layers.0.mixer.D", zeros({4})},
      {"scale", scalar_tensor(1.0)},
      {"layers.1.mixer.log_A_real", zeros({4, 8})},
      {"layers.1.mixer.A_imag", zeros({4, 8})},
      {"layers.1.mixer.log_dt", zeros({4})},
      {"layers.1.mixer.nu_log", zeros({8})},
      {"layers.1.mixer.C_re", zeros({4, 8})},
  };
  const auto groups = decay_groups(named, 3e-3, 0.1);
  REQUIRE(groups.size() == 3);
  CHECK(groups[0].lr == 3e-3);
  CHECK(groups[1].lr == 3e-3);
  CHECK(groups[2].lr == 1e-3);
  CHECK(groups[0].weight_decay == 0.1);
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(groups[2].weight_decay == 0.0);
  const auto in = [&](const ParamGroup& g, std::size_t k) {
    for (const auto& t : g.params)
      if (t.is_same(named[k].second)) return true;
    return false;
  };
  CHECK(groups[0].params.size() == 3);
  for (std::size_t k : {0u, 2u, 11u}) CHECK(in(groups[0], k));
  CHECK(groups[1].params.size() == 6);
  for (std::size_t k : {1u, 3u, 4u, 5u, 6u, 10u}) CHECK(in(groups[1], k));
  CHECK(groups[2].params.size() == 3);
  for (std::size_t k : {7u, 8u, 9u}) CHECK(in(groups[2], k));
  // The groups feed an optimizer directly, and the schedule's lr is capped for the SSM dynamics only.
  AdamW opt(decay_groups(named, 1e-3, 0.1));
  opt.set_lr(5e-3);
  CHECK(opt.param_groups()[0].lr == 5e-3);
  CHECK(opt.param_groups()[1].lr == 5e-3);
  CHECK(opt.param_groups()[2].lr == 1e-3);
  opt.set_lr(2e-4);
  CHECK(opt.param_groups()[2].lr == 2e-4);
}

TEST_CASE("clip_grad_norm: total L2 norm in double, scaled by max_norm / (norm + 1e-6)") {
  Tensor a = param({0.0, 0.0}), b = param({0.0}, DType::Float32), c = param({0.0});
  SUBCASE("clipped: gradients (3, 4) and (12) have norm 13") {
    set_grad(a, {3.0, 4.0});
    set_grad(b, {12.0});
    CHECK(clip_grad_norm({a, b, c}, 6.5) == doctest::Approx(13.0).epsilon(1e-15));
    const double k = 6.5 / (13.0 + 1e-6);
    CHECK(test::allclose(a.grad(), tensor({3 * k, 4 * k}, DType::Float64), 1e-15, 0));
    CHECK(test::allclose(b.grad(), tensor({12 * k}), 1e-7, 0));
    CHECK_FALSE(c.grad().defined());
    // The new norm is max_norm (up to the 1e-6).
    CHECK(clip_grad_norm({a, b}, 100.0) == doctest::Approx(6.5).epsilon(1e-6));
  }
  SUBCASE("not clipped when the norm is within max_norm") {
    set_grad(a, {3.0, 4.0});
    CHECK(clip_grad_norm({a, b, c}, 5.0) == doctest::Approx(5.0));
    CHECK(a.grad().to_vector<double>() == Vec{3.0, 4.0});
  }
  SUBCASE("a non-finite norm is returned and the gradients are left alone") {
    set_grad(a, {3.0, INFINITY});
    set_grad(b, {1.0});
    CHECK(std::isinf(clip_grad_norm({a, b}, 1.0)));
    CHECK(b.grad().item() == 1.0);
    set_grad(a, {NAN, 1.0});
    CHECK(std::isnan(clip_grad_norm({a, b}, 1.0)));
    CHECK(b.grad().item() == 1.0);
  }
  SUBCASE("bad max_norm") { CHECK_THROWS_EMBER(clip_grad_norm({a}, -1.0), "max_norm must be >= 0"); }
}

TEST_CASE("Optimizer: bad configuration throws naming the problem") {
  Tensor p = param({1.0, 2.0});
  CHECK_THROWS_EMBER(SGD({{{p}, -0.1, 0.0}}), "SGD: lr of group 0 must be finite and >= 0, got -0.1");
  CHECK_THROWS_EMBER(SGD({{{p}, 0.1, -1.0}}), "weight_decay of group 0 must be finite and >= 0");
  CHECK_THROWS_EMBER(SGD({{{p}, 0.1, 0.0}}, -0.5), "SGD: momentum must be finite and >= 0");
  CHECK_THROWS_EMBER(SGD({{{p}, 0.1, 0.0}}, 0.0, 0.0, true),
                     "nesterov momentum requires momentum > 0 and dampening = 0");
  CHECK_THROWS_EMBER(SGD({{{p}, 0.1, 0.0}}, 0.9, 0.1, true),
                     "nesterov momentum requires momentum > 0 and dampening = 0");
  CHECK_THROWS_EMBER(Adam({{{p}, 0.1, 0.0}}, 1.0), "Adam: beta1 must be in [0, 1), got 1");
  CHECK_THROWS_EMBER(Adam({{{p}, 0.1, 0.0}}, 0.9, -0.1), "Adam: beta2 must be in [0, 1)");
  CHECK_THROWS_EMBER(AdamW({{{p}, 0.1, 0.0}}, 0.9, 1.5), "AdamW: beta2 must be in [0, 1), got 1.5");
  CHECK_THROWS_EMBER(AdamW({{{p}, 0.1, 0.0}}, 0.9, 0.999, -1e-8), "AdamW: eps must be finite and >= 0");
  CHECK_THROWS_EMBER(Adam({{{p}, -1e-3, 0.0}}), "Adam: lr of group 0 must be finite and >= 0");
  CHECK_THROWS_EMBER(Adam({{{p, p}, 0.1, 0.0}}), "Adam: parameter 1 of group 0 appears more than once");
  CHECK_THROWS_EMBER(SGD({{{from_vector(std::vector<std::int64_t>{1}, {1})}, 0.1, 0.0}}),
                     "SGD: parameter 0 of group 0 has dtype int64; expected float32 or float64");
  CHECK_THROWS_EMBER(SGD({{{transpose(zeros({2, 3}), 0, 1)}, 0.1, 0.0}}),
                     "parameter 0 of group 0 (shape [3, 2]) is not contiguous");
  CHECK_THROWS_EMBER(SGD({{{Tensor()}, 0.1, 0.0}}), "parameter 0 of group 0 is undefined");

  SGD opt({{{p}, 0.1, 0.0}});
  CHECK_THROWS_EMBER(opt.set_lr(-1.0), "lr must be finite and >= 0");
  opt.param_groups()[0].lr = -1.0;  // caught at the next step
  set_grad(p, {1.0, 1.0});
  CHECK_THROWS_EMBER(opt.step(), "SGD: lr of group 0 must be finite and >= 0");
  opt.param_groups()[0].lr = 0.1;
  opt.param_groups()[0].params.push_back(param({1.0}));
  CHECK_THROWS_EMBER(opt.step(), "SGD: the groups hold 2 parameters, the optimizer was built with 1");
  opt.param_groups()[0].params = {param({1.0, 2.0})};
  CHECK_THROWS_EMBER(opt.step(), "is not the tensor the optimizer was built with");
}
