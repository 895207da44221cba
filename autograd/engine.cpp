/// \file
/// \brief The backward engine: dependency counting over the graph, then nodes in reverse
/// topological order, gradients accumulated per node input and into leaves.
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "autograd/node.h"
#include "core/creation.h"
#include "core/ops.h"

namespace ember {

namespace {
std::atomic<std::int64_t> g_live_nodes{0};
thread_local bool g_grad_enabled = true;
std::atomic<bool> g_anomaly{false};
}  // namespace

Node::Node(std::string name, std::vector<Edge> next_edges)
    : name_(std::move(name)), next_edges_(std::move(next_edges)) {
  ++g_live_nodes;
}
Node::~Node() { --g_live_nodes; }
std::int64_t Node::live_count() { return g_live_nodes.load(); }

FunctionNode::FunctionNode(std::string name, std::vector<Edge> next_edges, BackwardFn fn)
    : Node(std::move(name), std::move(next_edges)), fn_(std::move(fn)) {}

std::vector<Tensor> FunctionNode::apply(const std::vector<Tensor>& grad_outputs) {
  EMBER_CHECK(fn_ != nullptr, fmt::format("backward: trying to go through {} a second time; its saved tensors "
                                          "were freed (pass retain_graph = true to the first backward)",
                                          name()));
  return fn_(grad_outputs);
}

AccumulateGrad::AccumulateGrad(std::shared_ptr<TensorImpl> leaf) : Node("AccumulateGrad", {}), leaf_(std::move(leaf)) {}

std::vector<Tensor> AccumulateGrad::apply(const std::vector<Tensor>& grad_outputs) {
  Tensor g = grad_outputs[0];
  Tensor leaf(leaf_);
  EMBER_CHECK(g.shape() == leaf.shape(), fmt::format("backward: gradient of shape {} for a leaf of shape {}",
                                                     shape_str(g.shape()), shape_str(leaf.shape())));
  g = raw::to_dtype(g, leaf.dtype());
  Tensor prev = leaf.grad();
  // A fresh copy, so a leaf's gradient never aliases another tensor.
  leaf_->autograd.grad = (prev.defined() ? raw::add(prev, g) : raw::clone(g)).impl();
  return {};
}

SavedTensor::SavedTensor(const Tensor& t) : tensor_(t.defined() ? t.detach() : Tensor()), version_(t.defined() ? t.version() : 0) {}

Tensor SavedTensor::get(const char* op) const {
  if (tensor_.defined())
    EMBER_CHECK(tensor_.version() == version_,
                fmt::format("{}: a tensor of shape {} saved for the gradient was modified in place (version {} -> {}); "
                            "use an out-of-place op or clone() it before modifying",
                            op, shape_str(tensor_.shape()), version_, tensor_.version()));
  return tensor_;
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool enabled) { g_grad_enabled = enabled; }
bool anomaly_enabled() { return g_anomaly.load(); }
void set_anomaly_enabled(bool enabled) { g_anomaly.store(enabled); }

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!g_grad_enabled) return false;
  bool any = false;
  for (const auto& t : inputs) {
    if (!t.defined()) continue;
    refresh_view(t);
    any = any || t.requires_grad();
  }
  return any;
}

namespace {

/// The edge a gradient for `t` flows along.
Edge edge_of(const Tensor& t) {
  if (t.defined()) refresh_view(t);
  if (!t.defined() || !t.requires_grad()) return {};
  auto& meta = t.impl()->autograd;
  if (meta.grad_fn) return {meta.grad_fn, meta.output_nr};
  auto acc = meta.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl());
    acc->outputs().push_back({t.shape(), t.dtype(), t.device()});
    meta.grad_accumulator = acc;
  }
  return {acc, 0};
}

std::shared_ptr<Node> make_node(const char* name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const auto& t : inputs) edges.push_back(edge_of(t));
  return std::make_shared<FunctionNode>(name, std::move(edges), std::move(fn));
}

Tensor attach(Tensor out, const std::shared_ptr<Node>& node, std::uint32_t nr, const std::vector<Tensor>& inputs) {
  for (const auto& in : inputs)
    if (in.defined() && out.is_same(in)) out = out.detach();
  out.impl()->autograd.grad_fn = node;
  out.impl()->autograd.output_nr = nr;
  node->outputs().push_back({out.shape(), out.dtype(), out.device()});
  return out;
}

}  // namespace

Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = make_node(name, inputs, std::move(fn));
  return attach(std::move(out), node, 0, inputs);
}

std::vector<Tensor> record_multi(std::vector<Tensor> outs, const char* name, const std::vector<Tensor>& inputs,
                                 BackwardFn fn) {
  auto node = make_node(name, inputs, std::move(fn));
  for (std::uint32_t i = 0; i < outs.size(); ++i) outs[i] = attach(std::move(outs[i]), node, i, inputs);
  return outs;
}

Tensor mark_view(Tensor out, const Tensor& input) {
  auto& meta = out.impl()->autograd;
  const auto& in_base = input.impl()->autograd.view_base;
  meta.view_base = in_base ? in_base : input.impl();
  meta.view_version = out.version();
  return out;
}

std::shared_ptr<Node> view_of_base_node(const Tensor& base, const Tensor& t) {
  // Flat index into the (contiguous) base of every element of t; a scatter-add sends t's gradient
  // there, which stays right when elements of t overlap (expanded views).
  const Tensor flat = arange(static_cast<double>(base.numel()), DType::Int64);
  const Tensor idx = raw::reshape(raw::contiguous(raw::as_strided(flat, t.shape(), t.strides(), t.offset() - base.offset())), {-1});
  const Shape bs = base.shape();
  auto node = make_node("AsStridedBackward", {base}, [idx, bs](const std::vector<Tensor>& g) {
    const Tensor z = zeros({numel_of(bs)}, g[0].dtype(), g[0].device());
    return std::vector<Tensor>{raw::reshape(raw::scatter_add(z, 0, idx, raw::reshape(raw::contiguous(g[0]), {-1})), bs)};
  });
  node->outputs().push_back({t.shape(), t.dtype(), t.device()});
  return node;
}

void refresh_view(const Tensor& t) {
  auto& meta = t.impl()->autograd;
  if (!meta.view_base || meta.view_version == t.version() || !grad_enabled()) return;
  meta.view_version = t.version();
  const Tensor base(meta.view_base);
  // A non-contiguous base can only be a leaf (ops make contiguous outputs), whose history never
  // changes, so the view's own grad_fn stays right.
  if (!base.requires_grad() || !base.is_contiguous()) return;
  meta.grad_fn = view_of_base_node(base, t);
  meta.output_nr = 0;
}

namespace {

/// Anomaly mode: throws naming `node` if a gradient it sends along an edge is not finite.
void check_finite(const Node& node, const std::vector<Tensor>& grads) {
  for (std::size_t i = 0; i < grads.size() && i < node.next_edges().size(); ++i) {
    const Tensor& g = grads[i];
    // A gradient for an input that needs none (a constant) flows nowhere: not an anomaly.
    if (!node.next_edges()[i].fn || !g.defined() || !is_floating(g.dtype()) || g.numel() == 0) continue;
    const Tensor finite = raw::reduce(ReduceOp::Min, raw::unary(UnaryOp::IsFinite, g), {}, false);
    EMBER_CHECK(finite.item() != 0.0, fmt::format("anomaly: {} returned NaN or Inf in its gradient for input {} "
                                                  "(shape {})", node.name(), i, shape_str(g.shape())));
  }
}

/// Counts, for every node reachable from the roots, how many edges lead into it.
std::unordered_map<Node*, int> count_dependencies(const std::vector<Edge>& roots) {
  std::unordered_map<Node*, int> deps;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (const auto& e : roots)
    if (e.fn && seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const auto& e : n->next_edges()) {
      if (!e.fn) continue;
      ++deps[e.fn.get()];
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
    }
  }
  return deps;
}

void accumulate(std::vector<Tensor>& buffer, std::uint32_t nr, const Tensor& g) {
  if (!g.defined()) return;
  buffer[nr] = buffer[nr].defined() ? raw::add(buffer[nr], g) : g;
}

}  // namespace

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph) {
  std::vector<Edge> root_edges;
  for (const auto& r : roots) root_edges.push_back(edge_of(r));
  NoGradGuard no_grad;  // backward computations are not recorded (no double backward)
  auto deps = count_dependencies(root_edges);
  std::unordered_map<Node*, std::vector<Tensor>> buffers;
  std::unordered_map<Node*, std::shared_ptr<Node>> keep;  // holds nodes alive while they are queued
  std::deque<Node*> ready;
  auto deliver = [&](const Edge& e, const Tensor& g) {
    auto& buf = buffers[e.fn.get()];
    if (buf.empty()) buf.resize(e.fn->outputs().size());
    // A gradient takes the dtype of the tensor it belongs to (a Float32 sum of a Float16 operand sends back
    // Float32; the Float16 op that made the operand expects Float16).
    const DType want = e.fn->outputs()[e.input_nr].dtype;
    const bool convert = g.defined() && is_floating(g.dtype()) && g.dtype() != want;
    accumulate(buf, e.input_nr, convert ? raw::to_dtype(g, want) : g);
    keep[e.fn.get()] = e.fn;
  };
  for (std::size_t i = 0; i < roots.size(); ++i) {
    EMBER_CHECK(root_edges[i].fn != nullptr,
                fmt::format("backward: tensor of shape {} does not require grad and has no grad_fn",
                            shape_str(roots[i].shape())));
    deliver(root_edges[i], grads[i]);
  }
  for (const auto& e : root_edges)
    if (deps[e.fn.get()] == 0 && std::find(ready.begin(), ready.end(), e.fn.get()) == ready.end())
      ready.push_back(e.fn.get());
  while (!ready.empty()) {
    Node* node = ready.front();
    ready.pop_front();
    std::vector<Tensor> gout = std::move(buffers[node]);
    buffers.erase(node);
    for (std::size_t i = 0; i < gout.size(); ++i)
      if (!gout[i].defined()) {
        const auto& m = node->outputs()[i];
        gout[i] = zeros(m.shape, m.dtype, m.device);
      }
    for (auto& [nr, weak] : node->retained())
      if (auto impl = weak.lock()) impl->autograd.grad = raw::clone(gout[nr]).impl();
    std::vector<Tensor> gin = node->apply(gout);
    if (anomaly_enabled()) check_finite(*node, gin);
    if (!retain_graph) node->release();
    const auto& edges = node->next_edges();
    for (std::size_t i = 0; i < edges.size(); ++i) {
      const Edge& e = edges[i];
      if (!e.fn) continue;
      if (i < gin.size()) deliver(e, gin[i]);
      else keep[e.fn.get()] = e.fn;
      if (--deps[e.fn.get()] == 0) ready.push_back(e.fn.get());
    }
    keep.erase(node);
  }
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  Tensor g = gradient;
  if (!g.defined()) {
    EMBER_CHECK(numel() == 1, fmt::format("backward: gradient can be implicitly created only for a single-element "
                                          "tensor, this one has shape {}",
                                          shape_str(shape())));
    g = ones(shape(), dtype(), device());
  }
  EMBER_CHECK(g.shape() == shape(), fmt::format("backward: gradient of shape {} for a tensor of shape {}",
                                                shape_str(g.shape()), shape_str(shape())));
  run_backward({*this}, {g}, retain_graph);
}

void Tensor::retain_grad() const {
  EMBER_CHECK(requires_grad(), "retain_grad: the tensor does not require grad");
  if (is_leaf()) return;  // leaves keep their gradient anyway
  grad_fn()->retained().push_back({impl()->autograd.output_nr, impl()});
}

}  // namespace ember
