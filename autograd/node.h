/// \file
/// \brief The autograd graph: Node (one recorded op's backward), Edge, SavedTensor with its version
/// check, and the grad-mode and anomaly switches.
///
/// Define-by-run, as in PyTorch: each differentiable op that sees an input requiring grad creates a
/// Node whose edges point at the nodes of its inputs. A node never holds its own output (it saves a
/// detached alias), so a graph frees itself once the last tensor referring to it is gone.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember {

class Node;

/// Where a gradient flows: input `input_nr` of node `fn` (null for inputs that need no gradient).
struct Edge {
  std::shared_ptr<Node> fn;   ///< the next node, or null
  std::uint32_t input_nr = 0;  ///< which of fn's outputs this gradient belongs to
};

/// Shape, dtype and device of one output of a node (to make zero gradients for unused outputs).
struct OutputMeta {
  Shape shape;                 ///< the output's shape
  DType dtype = DType::Float32;  ///< its dtype
  Device device;               ///< its device
};

/// One op's backward function in the graph.
class Node {
 public:
  /// A node named `name` (e.g. "MulBackward") with one edge per input of the forward op.
  Node(std::string name, std::vector<Edge> next_edges);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Gradients w.r.t. the forward inputs, given gradients w.r.t. its outputs (one per output,
  /// zero-filled by the engine when an output got none).
  virtual std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) = 0;
  /// Frees saved tensors after backward (unless retain_graph).
  virtual void release() {}
  /// The op's name, e.g. "ExpBackward".
  const std::string& name() const { return name_; }
  /// One edge per forward input.
  const std::vector<Edge>& next_edges() const { return next_edges_; }
  /// Output metadata, one entry per forward output.
  std::vector<OutputMeta>& outputs() { return outputs_; }
  /// Non-leaf tensors whose gradient should be kept (retain_grad), by output number.
  std::vector<std::pair<std::uint32_t, std::weak_ptr<TensorImpl>>>& retained() { return retained_; }
  /// How many nodes exist right now (the graph-freeing test watches this).
  static std::int64_t live_count();

 private:
  std::string name_;
  std::vector<Edge> next_edges_;
  std::vector<OutputMeta> outputs_;
  std::vector<std::pair<std::uint32_t, std::weak_ptr<TensorImpl>>> retained_;
};

/// The backward function of a node: gradients of the outputs in, gradients of the inputs out
/// (an undefined Tensor for an input that gets none).
using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs)>;

/// A node whose backward is a closure over what it saved; release() drops the closure.
class FunctionNode final : public Node {
 public:
  /// A node named `name` with these edges and backward closure.
  FunctionNode(std::string name, std::vector<Edge> next_edges, BackwardFn fn);
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) override;
  void release() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
};

/// The node at a leaf that requires grad: adds the incoming gradient into leaf.grad().
class AccumulateGrad final : public Node {
 public:
  /// The accumulator of `leaf`.
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  std::vector<Tensor> apply(const std::vector<Tensor>& grad_outputs) override;

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

/// A tensor saved for backward: a detached alias plus the version it had, checked on use.
class SavedTensor {
 public:
  SavedTensor() = default;
  /// Saves t (detached) and its current version.
  explicit SavedTensor(const Tensor& t);
  /// The saved tensor; throws naming `op` if it was modified in place since it was saved.
  Tensor get(const char* op = "backward") const;

 private:
  Tensor tensor_;
  std::uint64_t version_ = 0;
};

/// True while operations are recorded (the default).
bool grad_enabled();
/// Turns recording on or off for this thread.
void set_grad_enabled(bool enabled);

/// Turns recording off for its lifetime (evaluation, optimizer updates).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

/// Turns recording on for its lifetime (inside a NoGradGuard).
class EnableGradGuard {
 public:
  EnableGradGuard() : prev_(grad_enabled()) { set_grad_enabled(true); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

/// True when backward checks every gradient for NaN/Inf and names the op that produced one.
bool anomaly_enabled();
/// Turns anomaly detection on or off (process-wide).
void set_anomaly_enabled(bool enabled);

/// Anomaly detection on for its lifetime.
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : prev_(anomaly_enabled()) { set_anomaly_enabled(true); }
  ~DetectAnomalyGuard() { set_anomaly_enabled(prev_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool prev_;
};

/// True when grad mode is on and some input requires grad: the op should record a node.
bool needs_grad(const std::vector<Tensor>& inputs);

/// Makes `out` the output of a new node named `name` over `inputs` with backward `fn`; returns out
/// (a fresh alias if out is one of the inputs). Call only when needs_grad(inputs).
Tensor record(Tensor out, const char* name, const std::vector<Tensor>& inputs, BackwardFn fn);
/// The same for an op with several outputs; each output gets its own output number.
std::vector<Tensor> record_multi(std::vector<Tensor> outs, const char* name, const std::vector<Tensor>& inputs,
                                 BackwardFn fn);
/// Records that `out` shares `input`'s data: its base is input's base, or input itself.
Tensor mark_view(Tensor out, const Tensor& input);
/// If t is a view whose data changed in place since its grad_fn was set, re-expresses t as a region
/// of its base (AsStridedBackward), so gradients follow the base's current history.
void refresh_view(const Tensor& t);
/// For a view t: the node mapping t's gradient into its base (a scatter into zeros of the base's shape).
std::shared_ptr<Node> view_of_base_node(const Tensor& base, const Tensor& t);

/// Computes gradients of `roots` (seeded with `grads`) into every leaf that requires grad.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph);

}  // namespace ember
