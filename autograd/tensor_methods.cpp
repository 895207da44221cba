/// \file
/// \brief Tensor's differentiable methods: clone, contiguous, to(dtype), to(device), and the
/// in-place ops, which bump the version counter and re-base the tensor's history onto a new node.
#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;

/// An identity-like copy op whose backward maps g with `back`.
template <class Back>
Tensor copy_op(const Tensor& x, Tensor out, const char* name, Back back) {
  if (out.is_same(x) || !needs_grad({x})) return out;
  return record(out, name, {x}, [back](const Grads& g) { return Grads{back(g[0])}; });
}

/// Refuses in-place edits that would corrupt data or gradients: writing through an expanded view
/// (several elements share memory), or changing a leaf that requires grad, or a view of one.
void check_inplace(const Tensor& self, const char* op) {
  raw::check_defined(op, self);
  for (std::int64_t d = 0; d < self.dim(); ++d)
    EMBER_CHECK(self.strides()[d] != 0 || self.shape()[d] <= 1,
                fmt::format("{}: elements of this tensor of shape {} share memory (an expanded view); "
                            "clone() it before writing in place",
                            op, shape_str(self.shape())));
  if (!grad_enabled()) return;
  EMBER_CHECK(!(self.is_leaf() && self.requires_grad()),
              fmt::format("{}: a leaf tensor of shape {} that requires grad cannot be modified in place "
                          "(do it under NoGradGuard, as optimizers do)",
                          op, shape_str(self.shape())));
  const auto& base = self.impl()->autograd.view_base;
  if (!base) return;
  const Tensor b(base);
  EMBER_CHECK(!(b.is_leaf() && b.requires_grad()),
              fmt::format("{}: a view of a leaf tensor of shape {} that requires grad cannot be modified in place",
                          op, shape_str(b.shape())));
  EMBER_CHECK(b.is_contiguous(), fmt::format("{}: in-place change of a view of a non-contiguous tensor (shape {}) "
                                             "is not supported; clone() the base first",
                                             op, shape_str(b.shape())));
}

/// A fresh alias of t that carries t's current history (grad_fn and output number).
Tensor alias_with_history(const Tensor& t) {
  Tensor alias = t.detach();
  alias.impl()->autograd.grad_fn = t.impl()->autograd.grad_fn;
  alias.impl()->autograd.output_nr = t.impl()->autograd.output_nr;
  return alias;
}

/// The history an in-place op on self overwrites, taken before the data changes: self's current
/// grad_fn or, for a view, its base's.
Tensor history_before(const Tensor& self) {
  refresh_view(self);
  const auto& base = self.impl()->autograd.view_base;
  return alias_with_history(base ? Tensor(base) : self);
}

/// After self's data changed: a new node over (the old history, others) becomes the grad_fn of
/// self, or, for a view, of its base (CopySlices: fn's gradient replaces the view's region of the
/// base's gradient), and the view is re-expressed as a region of the new base.
void rebase(Tensor& self, const Tensor& before, const char* name, const std::vector<Tensor>& others, BackwardFn fn) {
  std::vector<Tensor> inputs{before};
  inputs.insert(inputs.end(), others.begin(), others.end());
  if (!needs_grad(inputs)) return;
  auto& meta = self.impl()->autograd;
  if (!meta.view_base) {
    meta.grad_fn.reset();
    record(self, name, inputs, std::move(fn));
    return;
  }
  Tensor base(meta.view_base);
  const Shape shape = self.shape(), strides = self.strides();
  const std::int64_t rel = self.offset() - base.offset();
  base.impl()->autograd.grad_fn.reset();
  record(base, "CopySlices", inputs, [shape, strides, rel, fn](const Grads& g) {
    const Tensor whole = raw::clone(g[0]);
    const Tensor region = raw::as_strided(whole, shape, strides, rel);
    Grads inner = fn({raw::clone(region)});  // a copy: fn may return it, and region is overwritten next
    raw::copy_(region, inner[0]);
    inner[0] = whole;
    return inner;
  });
  meta.grad_fn = view_of_base_node(base, self);
  meta.output_nr = 0;
  meta.view_version = self.version();
}

/// Runs an in-place op: checks, remembers the history, changes the data with `apply`, re-bases.
template <class Apply>
Tensor& inplace(Tensor& self, const char* op, const char* node, const std::vector<Tensor>& others, Apply apply,
                BackwardFn fn) {
  check_inplace(self, op);
  for (const auto& o : others) raw::check_defined(op, o);
  const Tensor before = grad_enabled() ? history_before(self) : Tensor();
  std::vector<Tensor> inputs = others;
  for (auto& o : inputs)  // x.add_(x): the operand is x as it was, with its old history
    if (before.defined() && o.is_same(self)) o = alias_with_history(self);
  apply();
  if (before.defined()) rebase(self, before, node, inputs, std::move(fn));
  return self;
}

}  // namespace

Tensor Tensor::clone() const {
  return copy_op(*this, raw::clone(*this), "CloneBackward", [](const Tensor& g) { return g; });
}

Tensor Tensor::contiguous() const {
  return copy_op(*this, raw::contiguous(*this), "ContiguousBackward", [](const Tensor& g) { return g; });
}

Tensor Tensor::to(DType dtype) const {
  const DType from = this->dtype();
  Tensor out = raw::to_dtype(*this, dtype);
  if (!is_floating(dtype)) return out;  // no gradient flows into integers
  return copy_op(*this, out, "ToDtypeBackward", [from](const Tensor& g) { return raw::to_dtype(g, from); });
}

Tensor Tensor::to(Device device) const {
  const Device from = this->device();
  return copy_op(*this, raw::to_device(*this, device), "ToDeviceBackward",
                 [from](const Tensor& g) { return raw::to_device(g, from); });
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  const Shape so = other.defined() ? other.shape() : Shape{};
  return inplace(*this, "add_", "AddBackward", {other},
                 [&] { raw::copy_(*this, raw::add(*this, alpha == 1.0 ? other : raw::mul_scalar(other, alpha))); },
                 [so, alpha](const Grads& g) { return Grads{g[0], raw::sum_to(raw::mul_scalar(g[0], alpha), so)}; });
}

Tensor& Tensor::mul_(const Tensor& other) {
  // The gradient for `other` needs the values before the change: save a copy when it will be used.
  const bool track = grad_enabled() && other.defined() && other.requires_grad();
  SavedTensor old(track ? raw::clone(*this) : Tensor()), so(other);
  return inplace(*this, "mul_", "MulBackward", {other}, [&] { raw::copy_(*this, raw::mul(*this, other)); },
                 [old, so](const Grads& g) {
                   const Tensor B = so.get("MulBackward"), A = old.get("MulBackward");
                   return Grads{raw::mul(g[0], B), A.defined() ? raw::sum_to(raw::mul(g[0], A), B.shape()) : Tensor()};
                 });
}

Tensor& Tensor::mul_(double s) {
  return inplace(*this, "mul_", "MulBackward", {}, [&] { raw::copy_(*this, raw::mul_scalar(*this, s)); },
                 [s](const Grads& g) { return Grads{raw::mul_scalar(g[0], s)}; });
}

Tensor& Tensor::fill_(double value) {
  return inplace(*this, "fill_", "FillBackward", {}, [&] { raw::fill_(*this, value); },
                 [](const Grads& g) { return Grads{zeros_like(g[0])}; });
}

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::copy_(const Tensor& src) {
  const Shape ss = src.defined() ? src.shape() : Shape{};
  const DType sd = src.defined() ? src.dtype() : DType::Float32;
  const Device sdev = src.defined() ? src.device() : Device::cpu();
  return inplace(*this, "copy_", "CopyBackward", {src}, [&] { raw::copy_(*this, src); },
                 [ss, sd, sdev](const Grads& g) {
                   return Grads{zeros_like(g[0]), raw::to_device(raw::to_dtype(raw::sum_to(g[0], ss), sd), sdev)};
                 });
}

}  // namespace ember
