/// \file
/// \brief nn::Module, the base of every layer (seed note 1: inheritance from the general to the special).
///
/// A module owns named parameters, buffers and submodules, kept in the order they were registered, so
/// that `state_dict()` names are PyTorch's dotted paths (`layers.0.mixer.q_proj.weight`). Modules are
/// held by `std::shared_ptr` and built with register_parameter / register_buffer / register_module, as
/// in libtorch's C++ frontend. A layer keeps the Tensor handles it registered as members; since a
/// Tensor is a handle to a shared object, `to(dtype)` and `load_state_dict` change the registered
/// objects in place and the members see the change.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace ember::nn {

/// Named tensors in a fixed order (parameters, buffers, a state dict).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

/// The base of every layer and model.
class Module {
 public:
  /// A module whose printed type is `type_name` (e.g. "Linear").
  explicit Module(std::string type_name);
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// x -> y for modules with one input and one output. Containers without a forward (ModuleList) throw.
  virtual Tensor forward(const Tensor& x);
  /// forward(x).
  Tensor operator()(const Tensor& x) { return forward(x); }

  /// The printed type name.
  const std::string& type_name() const { return type_name_; }
  /// Parameters of this module and its submodules, with dotted names, in registration order.
  NamedTensors named_parameters(bool recurse = true) const;
  /// The parameters alone.
  std::vector<Tensor> parameters(bool recurse = true) const;
  /// Buffers (persistent and not) of this module and its submodules.
  NamedTensors named_buffers(bool recurse = true) const;
  /// Direct submodules by name.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  /// Every module below this one (itself first, as ""), depth first.
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_modules();
  /// Total number of parameter elements.
  std::int64_t num_parameters() const;

  /// Training mode on or off, recursively (dropout is active only in training mode).
  virtual void train(bool on = true);
  /// train(false).
  void eval() { train(false); }
  /// True in training mode (the default).
  bool is_training() const { return training_; }
  /// Converts every floating parameter and buffer to `dtype`, in place (the handles stay valid).
  void to(DType dtype);
  /// Moves every parameter and buffer to `device`, in place.
  void to(Device device);
  /// Drops every parameter's gradient.
  void zero_grad();

  /// Parameters and persistent buffers by dotted name (tensors share the module's data).
  NamedTensors state_dict() const;
  /// Copies values from `state` into the parameters and buffers (converting dtype). Shapes must match;
  /// with `strict`, a missing or unexpected key is an error naming the keys.
  void load_state_dict(const NamedTensors& state, bool strict = true);

  /// The module tree with each module's parameter count, one module per line.
  std::string str() const;

 protected:
  /// Registers a parameter (requires grad when `requires_grad`) and returns its handle.
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  /// Registers a buffer; a non-persistent buffer stays out of state_dict() (RoPE tables).
  Tensor register_buffer(const std::string& name, Tensor value, bool persistent = true);
  /// Registers a submodule and returns it.
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }
  /// What str() prints in the parentheses after the type, e.g. "in=64, out=128".
  virtual std::string extra_repr() const { return ""; }

 private:
  struct Buffer {
    Tensor tensor;
    bool persistent;
  };
  void check_new_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect_parameters(const std::string& prefix, bool recurse, NamedTensors& out) const;
  void collect_buffers(const std::string& prefix, bool recurse, bool persistent_only, NamedTensors& out) const;
  void print(std::string& out, const std::string& name, int depth) const;

  std::string type_name_;
  bool training_ = true;
  NamedTensors params_;
  std::vector<std::pair<std::string, Buffer>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
};

/// Formats 1234567 as "1,234,567".
std::string with_commas(std::int64_t n);

}  // namespace ember::nn
