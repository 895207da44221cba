/// \file
/// \brief Engine semantics: accumulation, shared subexpressions, retain_graph, explicit output
/// gradients, grad-mode guards, detach, retain_grad, the version check for in-place edits, in-place
/// ops' gradients, anomaly mode. Every expected gradient is derived by hand.
#include <cmath>

#include "helpers.h"

using namespace ember;
using ember::test::allclose;

using ember::test::leaf;

TEST_CASE("engine: gradients accumulate into a leaf across two backward calls") {
  Tensor x = leaf({1, -2, 3});
  sum(x * x).backward();        // 2x
  sum(x * 3.0).backward();      // + 3
  CHECK(allclose(x.grad(), tensor({5, -1, 9}, DType::Float64)));
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
  sum(x * 3.0).backward();
  CHECK(allclose(x.grad(), tensor({3, 3, 3}, DType::Float64)));
}

TEST_CASE("engine: a tensor used twice (diamond) gets the summed gradient") {
  Tensor x = leaf({0.5, -1, 2});
  SUBCASE("y = 3x used in y*y and y: d/dx sum(y^2 + y) = 18x + 3") {
    Tensor y = x * 3.0;
    sum(y * y + y).backward();
    CHECK(allclose(x.grad(), tensor({12, -15, 39}, DType::Float64)));
  }
  SUBCASE("sin(x) cos(x) + x: d/dx = cos(2x) + 1") {
    sum(sin(x) * cos(x) + x).backward();
    std::vector<double> want;
    for (double v : {0.5, -1.0, 2.0}) want.push_back(std::cos(2 * v) + 1);
    CHECK(allclose(x.grad(), from_vector(want, {3}, DType::Float64), 1e-12, 1e-12));
  }
  SUBCASE("the same leaf on both sides of mul") {
    sum(mul(x, x)).backward();
    CHECK(allclose(x.grad(), tensor({1, -2, 4}, DType::Float64)));
  }
  SUBCASE("a long chain with a skip connection: z = x + 2(x + 2(x)) = 7x") {
    Tensor a = x * 2.0;
    Tensor b = x + a;
    Tensor c = x + b * 2.0;
    sum(c).backward();
    CHECK(allclose(x.grad(), tensor({7, 7, 7}, DType::Float64)));
  }
}

TEST_CASE("engine: retain_graph allows a second backward and without it the second one throws") {
  Tensor x = leaf({1, 2});
  Tensor loss = sum(exp(x));
  loss.backward(Tensor(), true);
  loss.backward(Tensor(), true);
  const double e1 = std::exp(1.0), e2 = std::exp(2.0);
  CHECK(allclose(x.grad(), tensor({2 * e1, 2 * e2}, DType::Float64), 1e-12));
  loss.backward();  // frees the graph
  CHECK(allclose(x.grad(), tensor({3 * e1, 3 * e2}, DType::Float64), 1e-12));
  CHECK_THROWS_EMBER(loss.backward(), "second time");
}

TEST_CASE("engine: backward of a non-scalar needs an explicit gradient") {
  Tensor x = leaf({1, -2, 3});
  Tensor y = x * x;
  CHECK_THROWS_EMBER(y.backward(), "single-element");
  CHECK_THROWS_EMBER(y.backward(tensor({1, 1}, DType::Float64)), "gradient of shape");
  y.backward(tensor({1, 10, 100}, DType::Float64));  // d/dx (g . x^2) = 2 g x
  CHECK(allclose(x.grad(), tensor({2, -40, 600}, DType::Float64)));
  // A one-element non-scalar tensor seeds with 1.
  Tensor z = leaf({4});
  (z * z).backward();
  CHECK(allclose(z.grad(), tensor({8}, DType::Float64)));
}

TEST_CASE("engine: backward on a tensor that does not require grad throws") {
  Tensor x = tensor({1, 2});
  CHECK_THROWS_EMBER(sum(x * 2.0).backward(), "does not require grad");
}

TEST_CASE("engine: only leaves that require grad receive gradients and grads are plain tensors") {
  Tensor x = leaf({1, 2});
  Tensor c = tensor({3, 4}, DType::Float64);
  sum(x * c).backward();
  CHECK(allclose(x.grad(), c));
  CHECK_FALSE(c.grad().defined());
  CHECK_FALSE(x.grad().requires_grad());
  CHECK(x.grad().grad_fn() == nullptr);
  CHECK(x.grad().dtype() == DType::Float64);
  CHECK_FALSE(x.grad().shares_storage(c));
}

TEST_CASE("engine: a Float32 leaf gets a Float32 gradient, broadcast leaves get summed gradients") {
  Tensor b = tensor({1, 2, 3});  // Float32
  b.requires_grad_();
  Tensor m = ones({4, 3}, DType::Float32);
  sum(m * b).backward();
  CHECK(b.grad().dtype() == DType::Float32);
  CHECK(allclose(b.grad(), tensor({4, 4, 4})));
}

TEST_CASE("engine: NoGradGuard and EnableGradGuard") {
  Tensor x = leaf({1, 2});
  CHECK(grad_enabled());
  {
    NoGradGuard no_grad;
    CHECK_FALSE(grad_enabled());
    Tensor y = exp(x) * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    CHECK(y.is_leaf());
    for (const Tensor& v : {transpose(unsqueeze(x, 0), 0, 1), slice(x, 0, 0, 1), matmul(x, x), x.clone(), sum(x)}) {
      CHECK_FALSE(v.requires_grad());
      CHECK(v.grad_fn() == nullptr);
    }
    {
      EnableGradGuard enable;
      CHECK(grad_enabled());
      Tensor z = x * 2.0;
      CHECK(z.requires_grad());
      REQUIRE(z.grad_fn() != nullptr);
      sum(z).backward();
    }
    CHECK_FALSE(grad_enabled());
    {
      NoGradGuard nested;
      CHECK_FALSE(grad_enabled());
    }
    CHECK_FALSE(grad_enabled());
    // Optimizers update leaves in place under NoGradGuard.
    x.add_(tensor({1, 1}, DType::Float64), -0.5);
  }
  CHECK(grad_enabled());
  CHECK(allclose(x.grad(), tensor({2, 2}, DType::Float64)));
  CHECK(allclose(x, tensor({0.5, 1.5}, DType::Float64)));
  CHECK(x.requires_grad());
  CHECK(x.is_leaf());
}

TEST_CASE("engine: requires_grad propagates to outputs of recorded ops only") {
  Tensor x = leaf({1, 2});
  Tensor c = tensor({3, 4}, DType::Float64);
  CHECK((x + c).requires_grad());
  CHECK_FALSE((c * c).requires_grad());
  CHECK_FALSE((x + c).is_leaf());
  CHECK((x + c).grad_fn()->name() == "AddBackward");
  CHECK(exp(x).grad_fn()->name() == "ExpBackward");
  CHECK_THROWS_EMBER((x * 2.0).requires_grad_(false), "leaf");
}

TEST_CASE("engine: detach() cuts history but shares data") {
  Tensor x = leaf({1, 2, 3});
  Tensor y = x * 2.0;
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.shares_storage(y));
  CHECK_FALSE(d.is_same(y));
  sum(d * x).backward();  // no gradient through d: d/dx = d = 2x, not 4x
  CHECK(allclose(x.grad(), tensor({2, 4, 6}, DType::Float64)));
}

TEST_CASE("engine: requires_grad_ on an integer tensor throws") {
  Tensor i = arange(4.0);
  CHECK(i.dtype() == DType::Int64);
  CHECK_THROWS_EMBER(i.requires_grad_(), "floating");
  Tensor b = gt(tensor({1, -1}), scalar_tensor(0.0));
  CHECK_THROWS_EMBER(b.requires_grad_(), "floating");
  CHECK_NOTHROW(i.requires_grad_(false));
}

TEST_CASE("engine: retain_grad() keeps the gradient of a non-leaf") {
  Tensor x = leaf({1, -2});
  Tensor y = x * 3.0;
  Tensor u = y + 1.0;  // not retained
  y.retain_grad();
  sum(u * u).backward();  // dL/dy = 2 (y + 1), dL/dx = 6 (y + 1)
  REQUIRE(y.grad().defined());
  CHECK(allclose(y.grad(), tensor({8, -10}, DType::Float64)));
  CHECK_FALSE(u.grad().defined());
  CHECK(allclose(x.grad(), tensor({24, -30}, DType::Float64)));
  CHECK_THROWS_EMBER(tensor({1.0}).retain_grad(), "does not require grad");
}

TEST_CASE("engine: modifying a saved tensor in place makes backward throw") {
  Tensor x = leaf({0.5, 1});
  Tensor y = exp(x);  // ExpBackward saves y
  CHECK(y.version() == 0);
  y.add_(tensor({1, 1}, DType::Float64));
  CHECK(y.version() == 1);
  CHECK_THROWS_EMBER(sum(y).backward(), "modified in place");
  SUBCASE("the message names the op") {
    Tensor x2 = leaf({0.5});
    Tensor t = tanh(x2);
    t.mul_(2.0);
    CHECK_THROWS_EMBER(sum(t).backward(), "TanhBackward");
  }
  SUBCASE("an edit through a view is seen as well (shared storage, shared version)") {
    Tensor a = leaf({1, 2, 3, 4});
    Tensor s = sigmoid(a);
    {
      NoGradGuard no_grad;
      slice(s, 0, 0, 2).fill_(0.0);
    }
    CHECK_THROWS_EMBER(sum(s).backward(), "modified in place");
  }
}

TEST_CASE("engine: in-place add_ on a non-leaf records the right gradient") {
  Tensor x = leaf({1, -1, 0.5});
  Tensor z = leaf({2, 0, -3});
  Tensor y = x * 3.0;
  y.add_(z, 2.0);  // y = 3x + 2z
  CHECK_FALSE(y.is_leaf());
  CHECK(allclose(y, tensor({7, -3, -4.5}, DType::Float64)));
  sum(y * y).backward();  // dL/dy = 2y
  CHECK(allclose(x.grad(), tensor({42, -18, -27}, DType::Float64)));  // 6y
  CHECK(allclose(z.grad(), tensor({28, -12, -18}, DType::Float64)));  // 4y
}

TEST_CASE("engine: in-place ops on a leaf that requires grad throw") {
  Tensor x = leaf({1, 2});
  CHECK_THROWS_EMBER(x.add_(tensor({1, 1}, DType::Float64)), "leaf");
  CHECK_THROWS_EMBER(x.mul_(2.0), "leaf");
  CHECK_THROWS_EMBER(x.fill_(0.0), "leaf");
  CHECK_THROWS_EMBER(x.zero_(), "leaf");
  CHECK_THROWS_EMBER(x.copy_(tensor({0, 0}, DType::Float64)), "leaf");
  CHECK(allclose(x, tensor({1, 2}, DType::Float64)));  // unchanged
  CHECK(x.version() == 0);
}

TEST_CASE("engine: in-place mul_ records the right gradient") {
  Tensor x = leaf({1, 2, -3});
  Tensor w = leaf({0.5, -1, 4});
  Tensor y = x + 1.0;
  y.mul_(w);  // y = (x + 1) w
  Tensor y2 = y * 1.0;
  y2.mul_(3.0);  // 3 (x + 1) w
  sum(y2 * x).backward();  // L = 3 sum((x + 1) w x): dL/dx = 3 w (2x + 1), dL/dw = 3 (x + 1) x
  CHECK(allclose(x.grad(), tensor({4.5, -15, -60}, DType::Float64)));
  CHECK(allclose(w.grad(), tensor({6, 18, 18}, DType::Float64)));
}

TEST_CASE("engine: anomaly mode names the op whose backward produced Inf or NaN") {
  CHECK_FALSE(anomaly_enabled());
  SUBCASE("sqrt at 0") {
    Tensor x = leaf({0, 4});
    {
      DetectAnomalyGuard anomaly;
      CHECK(anomaly_enabled());
      CHECK_THROWS_EMBER(sum(sqrt(x)).backward(), "SqrtBackward");
    }
    CHECK_FALSE(anomaly_enabled());
    x.set_grad(Tensor());
    CHECK_NOTHROW(sum(sqrt(x)).backward());
    const auto g = x.grad().to_vector<double>();
    CHECK(std::isinf(g[0]));
    CHECK(g[1] == doctest::Approx(0.25));
  }
  SUBCASE("log at 0") {
    Tensor x = leaf({1, 0});
    {
      DetectAnomalyGuard anomaly;
      CHECK_THROWS_EMBER(sum(log(x) * 2.0).backward(), "LogBackward");
    }
    CHECK_NOTHROW(sum(log(x) * 2.0).backward());
  }
  SUBCASE("finite gradients pass under anomaly mode") {
    Tensor x = leaf({1, 4});
    DetectAnomalyGuard anomaly;
    CHECK_NOTHROW(sum(sqrt(x)).backward());
    CHECK(allclose(x.grad(), tensor({0.5, 0.25}, DType::Float64)));
  }
}

TEST_CASE("gradcheck itself flags a wrong backward and accepts a right one") {
  // f(x) = x^3 recorded by hand, once with the right derivative 3x^2 and once with a wrong 2x^2.
  auto cube = [](double k) {
    return [k](const std::vector<Tensor>& in) {
      const Tensor x = in[0];
      Tensor out;
      {
        NoGradGuard no_grad;
        out = x * x * x;
      }
      if (!needs_grad({x})) return out;
      const Tensor xs = x.detach();
      return record(out, "CubeBackward", {x}, [xs, k](const std::vector<Tensor>& g) {
        NoGradGuard no_grad;
        return std::vector<Tensor>{g[0] * xs * xs * k};
      });
    };
  };
  manual_seed(3);
  Tensor x = randn({5}, DType::Float64);
  x.requires_grad_();
  const auto good = gradcheck(cube(3.0), {x});
  CHECK_MESSAGE(good.ok, good.message);
  const auto bad = gradcheck(cube(2.0), {x});
  CHECK_FALSE(bad.ok);
  CHECK(bad.max_abs_error > 1e-3);
  CHECK(bad.message.find("input 0") != std::string::npos);
  CHECK_THROWS_EMBER(gradcheck(cube(3.0), {randn({2}).requires_grad_()}), "float64");
}

TEST_CASE("engine: an op with two outputs: an unused output gets a zero gradient") {
  // (y1, y2) = (2x, x^2) recorded as one node.
  auto two = [](const Tensor& x) {
    std::vector<Tensor> outs;
    {
      NoGradGuard no_grad;
      outs = {x * 2.0, x * x};
    }
    const Tensor xs = x.detach();
    return record_multi(outs, "TwoBackward", {x}, [xs](const std::vector<Tensor>& g) {
      NoGradGuard no_grad;
      return std::vector<Tensor>{g[0] * 2.0 + g[1] * xs * 2.0};
    });
  };
  Tensor x = leaf({1, -3});
  auto outs = two(x);
  REQUIRE(outs.size() == 2);
  CHECK(outs[0].grad_fn() == outs[1].grad_fn());
  sum(outs[1]).backward();  // only y2 used: 2x
  CHECK(allclose(x.grad(), tensor({2, -6}, DType::Float64)));
  x.set_grad(Tensor());
  outs = two(x);
  sum(outs[0] * 5.0 + outs[1]).backward();  // 10 + 2x
  CHECK(allclose(x.grad(), tensor({12, 4}, DType::Float64)));
}
