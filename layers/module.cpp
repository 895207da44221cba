/// \file
/// \brief nn::Module: registration, traversal, state dicts, conversion and the printed tree.
#include "layers/module.h"

#include <algorithm>
#include <set>

#include "autograd/node.h"
#include "core/ops.h"

namespace ember::nn {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

/// Re-points the object t refers to at `value`'s data, keeping t's identity (every handle sees it).
void replace_data(const Tensor& t, const Tensor& value) {
  TensorImpl& impl = *t.impl();
  const TensorImpl& src = *value.impl();
  impl.storage = src.storage;
  impl.shape = src.shape;
  impl.strides = src.strides;
  impl.offset = src.offset;
  impl.dtype = src.dtype;
  impl.autograd.grad.reset();
}

}  // namespace

std::string with_commas(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

Module::Module(std::string type_name) : type_name_(std::move(type_name)) {}

Tensor Module::forward(const Tensor&) {
  throw Error(type_name_ + ": this module has no forward(x); call its submodules");
}

void Module::check_new_name(const std::string& name) const {
  EMBER_CHECK(!name.empty() && name.find('.') == std::string::npos,
              type_name_ + ": invalid name '" + name + "' (must be non-empty without '.')");
  const auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
  };
  EMBER_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_),
              type_name_ + ": the name '" + name + "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name);
  EMBER_CHECK(value.defined(), type_name_ + ": parameter '" + name + "' is undefined");
  value = value.detach();
  value.requires_grad_(requires_grad);
  params_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value, bool persistent) {
  check_new_name(name);
  EMBER_CHECK(value.defined(), type_name_ + ": buffer '" + name + "' is undefined");
  buffers_.emplace_back(name, Buffer{value.detach(), persistent});
  return buffers_.back().second.tensor;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  EMBER_CHECK(module != nullptr, type_name_ + ": submodule '" + name + "' is null");
  children_.emplace_back(name, std::move(module));
}

void Module::collect_parameters(const std::string& prefix, bool recurse, NamedTensors& out) const {
  for (const auto& [name, p] : params_) out.emplace_back(join(prefix, name), p);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect_parameters(join(prefix, name), true, out);
}

void Module::collect_buffers(const std::string& prefix, bool recurse, bool persistent_only, NamedTensors& out) const {
  for (const auto& [name, b] : buffers_)
    if (b.persistent || !persistent_only) out.emplace_back(join(prefix, name), b.tensor);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect_buffers(join(prefix, name), true, persistent_only, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect_parameters("", recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, p] : named_parameters(recurse)) out.push_back(p);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect_buffers("", recurse, false, out);
  return out;
}

std::vector<std::pair<std::string, std::shared_ptr<Module>>> Module::named_modules() {
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> out;
  // The root is not owned by a shared_ptr we can see; return it as a non-owning alias.
  out.emplace_back("", std::shared_ptr<Module>(std::shared_ptr<Module>(), this));
  for (auto& [name, child] : children_)
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(sub.empty() ? name : join(name, sub), m);
  return out;
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(DType dtype) {
  EMBER_CHECK(is_floating(dtype), type_name_ + ".to: " + dtype_name(dtype) + " is not a floating dtype");
  // Each tensor keeps its own device; only the dtype changes.
  NoGradGuard no_grad;
  for (auto& [name, t] : named_parameters())
    if (t.dtype() != dtype) replace_data(t, t.to(dtype));
  for (auto& [name, t] : named_buffers())
    if (is_floating(t.dtype()) && t.dtype() != dtype) replace_data(t, t.to(dtype));
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for (auto& [name, t] : named_parameters())
    if (t.device() != device) replace_data(t, t.to(device));
  for (auto& [name, t] : named_buffers())
    if (t.device() != device) replace_data(t, t.to(device));
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) p.impl()->autograd.grad.reset();
}

NamedTensors Module::state_dict() const {
  NamedTensors out;
  collect_parameters("", true, out);
  collect_buffers("", true, true, out);
  return out;
}

void Module::load_state_dict(const NamedTensors& state, bool strict) {
  const NamedTensors own = state_dict();
  std::set<std::string> own_names, given;
  for (const auto& [name, t] : own) own_names.insert(name);
  std::string missing, unexpected;
  for (const auto& [name, t] : state) {
    given.insert(name);
    if (!own_names.count(name)) unexpected += (unexpected.empty() ? "" : ", ") + name;
  }
  for (const auto& name : own_names)
    if (!given.count(name)) missing += (missing.empty() ? "" : ", ") + name;
  EMBER_CHECK(!strict || (missing.empty() && unexpected.empty()),
              "load_state_dict: " + type_name_ + ": missing keys [" + missing + "], unexpected keys [" + unexpected + "]");
  NoGradGuard no_grad;
  for (const auto& entry : own) {
    // Named members, not a structured binding: clang 14 cannot capture bindings in the lambda.
    const std::string& name = entry.first;
    const Tensor& dst = entry.second;
    const auto it = std::find_if(state.begin(), state.end(), [&](const auto& e) { return e.first == name; });
    if (it == state.end()) continue;
    EMBER_CHECK(it->second.shape() == dst.shape(), "load_state_dict: " + name + ": shape " +
                                                       shape_str(it->second.shape()) + " does not match the model's " +
                                                       shape_str(dst.shape()));
    raw::copy_(dst, it->second);
  }
}

void Module::print(std::string& out, const std::string& name, int depth) const {
  out += std::string(2 * depth, ' ');
  if (!name.empty()) out += "(" + name + "): ";
  out += type_name_ + "(" + extra_repr() + ")  [" + with_commas(num_parameters()) + " params]\n";
  for (const auto& [child_name, child] : children_) child->print(out, child_name, depth + 1);
}

std::string Module::str() const {
  std::string out;
  print(out, "", 0);
  return out;
}

}  // namespace ember::nn
