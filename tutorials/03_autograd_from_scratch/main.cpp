// Tutorial 03: autograd from scratch. The graph an expression records, a backward pass run node by
// node by hand (checked against the chain rule worked out on paper), and gradcheck.
// Run: tutorial_03_autograd_from_scratch [--short]. The page README.md next to this file explains each step.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

using Grads = std::vector<Tensor>;

// Largest |t - expected| over all elements; `expected` is computed with plain doubles.
double max_diff(const Tensor& t, const std::vector<double>& expected) {
  const auto v = t.to_vector<double>();
  double m = v.size() == expected.size() ? 0.0 : INFINITY;
  for (std::size_t i = 0; i < v.size() && i < expected.size(); ++i) m = std::max(m, std::abs(v[i] - expected[i]));
  return m;
}

// "[0.12345 -1.00000 ...]" for printing small gradients.
std::string values(const Tensor& t) {
  std::string s = "[";
  char buf[32];
  for (double v : t.to_vector<double>()) {
    std::snprintf(buf, sizeof buf, s.size() > 1 ? " %8.5f" : "%8.5f", v);
    s += buf;
  }
  return s + "]";
}

// Prints the graph below `node` as a tree: each node, then the nodes its edges lead to.
// `leaf_names` labels the AccumulateGrad node of each leaf; `order` collects names in the printed order.
void print_graph(const Node* node, const std::map<const Node*, std::string>& leaf_names, int depth,
                 std::vector<std::string>& order) {
  const auto it = leaf_names.find(node);
  std::printf("  %*s%s%s\n", 2 * depth, "", node->name().c_str(),
              it == leaf_names.end() ? "" : ("  (" + it->second + ")").c_str());
  order.push_back(node->name());
  for (const Edge& e : node->next_edges())
    if (e.fn) print_graph(e.fn.get(), leaf_names, depth + 1, order);  // null edge: that input needs no gradient
}

// Reverse topological order: every node comes before the nodes its edges lead to, so when a node runs,
// all the gradient flowing into it (from every path) has arrived.
void topo(Node* node, std::set<Node*>& seen, std::vector<Node*>& post) {
  if (!seen.insert(node).second) return;
  for (const Edge& e : node->next_edges())
    if (e.fn) topo(e.fn.get(), seen, post);
  post.push_back(node);  // after everything it leads to
}

// d(x^2)/dx = 2x, but this op's backward "forgets" the 2: the kind of bug gradcheck exists to catch.
// It also shows how every ember op is built: compute without recording, then record a node whose
// closure holds what backward needs.
Tensor square_op(const Tensor& x, double slope) {
  Tensor out;
  {
    NoGradGuard no_grad;  // the forward itself must not record nodes
    out = x * x;
  }
  if (!needs_grad({x})) return out;
  const SavedTensor saved(x);  // remembers x's version, so an in-place edit of x is caught
  return record(out, "SquareBackward", {x},
                [saved, slope](const Grads& g) { return Grads{g[0] * saved.get("SquareBackward") * slope}; });
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  tutorial::Claims claims;

  // Float64 leaves, so hand-computed doubles and ember agree to rounding.
  const std::vector<double> av = {0.5, -1.0, 2.0}, bv = {1.5, 0.3, -0.7};
  Tensor a = from_vector(av, {3}, DType::Float64).requires_grad_();
  Tensor b = from_vector(bv, {3}, DType::Float64).requires_grad_();

  tutorial::section("1. The graph an expression builds");
  // e = sum(tanh(a * b) * a). Each op returns its result with grad_fn() = the node that will
  // compute its backward; each node's next_edges() point at the nodes of the op's inputs.
  const Tensor c = a * b;
  const Tensor d = tanh(c);
  const Tensor p = d * a;
  const Tensor e = sum(p);
  std::printf("e = sum(tanh(a * b) * a) = %.6f\n", e.item());
  // A leaf has no grad_fn; the graph ends at an AccumulateGrad node per leaf, which adds into grad().
  std::map<const Node*, std::string> leaf_names;
  std::vector<std::string> order;
  const Node* acc_a = c.grad_fn()->next_edges()[0].fn.get();  // c = a * b: edge 0 leads to a, edge 1 to b
  const Node* acc_b = c.grad_fn()->next_edges()[1].fn.get();
  leaf_names[acc_a] = "a";
  leaf_names[acc_b] = "b";
  print_graph(e.grad_fn().get(), leaf_names, 0, order);
  const std::vector<std::string> expected_order = {"SumBackward",    "MulBackward",    "TanhBackward",  "MulBackward",
                                                   "AccumulateGrad", "AccumulateGrad", "AccumulateGrad"};
  claims.check(order == expected_order, "the graph is Sum <- Mul <- (Tanh <- Mul <- (a, b), a)");
  claims.check(p.grad_fn()->next_edges()[1].fn.get() == acc_a,
               "a is used twice, and both uses lead to the same AccumulateGrad node: the graph is a DAG, not a tree");
  claims.check(a.is_leaf() && !e.is_leaf(), "a is a leaf (no grad_fn); e is not");

  tutorial::section("2. Backward, node by node");
  // The chain rule worked out on paper, with t = tanh(a b):
  //   de/dp = 1                        (sum)
  //   de/dd = a,  de/da += t           (p = d * a: each factor's gradient is the other factor)
  //   de/dc = a (1 - t^2)              (tanh' = 1 - tanh^2)
  //   de/da += a (1 - t^2) b,  de/db = a (1 - t^2) a   (c = a * b)
  std::vector<double> t(3), dc(3), ga(3), gb(3);
  for (int i = 0; i < 3; ++i) {
    t[i] = std::tanh(av[i] * bv[i]);
    dc[i] = av[i] * (1 - t[i] * t[i]);
    ga[i] = t[i] + dc[i] * bv[i];
    gb[i] = dc[i] * av[i];
  }
  // What each node should output for its inputs, keyed by node.
  std::map<const Node*, std::vector<std::vector<double>>> by_hand = {
      {e.grad_fn().get(), {{1, 1, 1}}},
      {p.grad_fn().get(), {av, t}},
      {d.grad_fn().get(), {dc}},
      {c.grad_fn().get(), {{dc[0] * bv[0], dc[1] * bv[1], dc[2] * bv[2]}, gb}},
  };

  // The engine in a dozen lines: run nodes in reverse topological order; each node turns the gradient
  // of its output into gradients of its inputs (apply), which are summed into the nodes its edges
  // lead to. A leaf's gradient is the sum over every path to it.
  std::set<Node*> seen;
  std::vector<Node*> post;
  topo(e.grad_fn().get(), seen, post);
  std::map<Node*, Tensor> incoming = {{e.grad_fn().get(), ones({}, DType::Float64)}};  // de/de = 1
  std::map<const Node*, Tensor> leaf_grad;
  bool nodes_ok = true;
  for (auto it = post.rbegin(); it != post.rend(); ++it) {
    Node* node = *it;
    const Tensor g = incoming.at(node);
    if (node->next_edges().empty()) {  // AccumulateGrad: the gradient of a leaf, complete now
      leaf_grad[node] = g;
      continue;
    }
    const Grads outs = node->apply({g});
    std::printf("  %-13s grad in %s\n", node->name().c_str(), values(g).c_str());
    for (std::size_t i = 0; i < outs.size(); ++i) {
      const double diff = max_diff(outs[i], by_hand.at(node)[i]);
      nodes_ok = nodes_ok && diff < 1e-12;
      std::printf("  %13s   out %zu  %s   by hand: off by %.1e\n", "", i, values(outs[i]).c_str(), diff);
      Node* next = node->next_edges()[i].fn.get();
      incoming[next] = incoming.count(next) ? incoming[next] + outs[i] : outs[i];
    }
  }
  claims.check(nodes_ok, "every node's output matches the chain rule worked out by hand");
  claims.check(max_diff(leaf_grad.at(acc_a), ga) < 1e-12 && max_diff(leaf_grad.at(acc_b), gb) < 1e-12,
               "our hand-run engine gives de/da = t + a(1-t^2)b and de/db = a^2(1-t^2)");
  // ember's engine does the same walk (with a ready-count queue instead of a recursive sort).
  e.backward();
  claims.check(max_diff(a.grad(), ga) < 1e-12 && max_diff(b.grad(), gb) < 1e-12,
               "e.backward() puts the same gradients into a.grad() and b.grad()");
  std::printf("  a.grad() = %s\n  b.grad() = %s\n", values(a.grad()).c_str(), values(b.grad()).c_str());

  tutorial::section("3. gradcheck: finite differences as an independent referee");
  // (f(x + eps) - f(x - eps)) / (2 eps) needs no derivative at all, so it can check any backward.
  const auto f = [](const std::vector<Tensor>& x) { return tanh(x[0] * x[1]) * x[0]; };
  const GradcheckResult r = gradcheck(f, {a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()});
  std::printf("  gradcheck(tanh(a b) a): ok=%d, max |analytic - numerical| = %.2e\n", r.ok, r.max_abs_error);
  claims.check(r.ok, "autograd agrees with central differences on tanh(a b) a");

  const Tensor x = randn({4}, DType::Float64).requires_grad_();
  const GradcheckResult good = gradcheck([](const std::vector<Tensor>& v) { return square_op(v[0], 2.0); }, {x});
  const GradcheckResult bad = gradcheck([](const std::vector<Tensor>& v) { return square_op(v[0], 1.0); }, {x});
  std::printf("  square with backward 2x: ok=%d;  with backward x: ok=%d\n    %s\n", good.ok, bad.ok,
              bad.message.c_str());
  claims.check(good.ok && !bad.ok, "gradcheck passes the right backward (2x) and catches the wrong one (x)");

  // A larger composite: a linear layer and a softmax. The full run uses bigger shapes.
  const std::int64_t n = quick ? 3 : 16, k = quick ? 4 : 32, m = quick ? 3 : 8;
  const Tensor xin = randn({n, k}, DType::Float64).requires_grad_();
  const Tensor w = randn({k, m}, DType::Float64).requires_grad_();
  const GradcheckResult lin =
      gradcheck([](const std::vector<Tensor>& v) { return softmax(matmul(v[0], v[1]), -1); }, {xin, w});
  std::printf("  gradcheck(softmax(x @ w)) with x [%lld, %lld], w [%lld, %lld]: max error %.2e\n",
              static_cast<long long>(n), static_cast<long long>(k), static_cast<long long>(k),
              static_cast<long long>(m), lin.max_abs_error);
  claims.check(lin.ok, "autograd agrees with central differences on softmax(x @ w)");

  return claims.exit_code();
}
