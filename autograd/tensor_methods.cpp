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

/// Refuses in-place edits autograd cannot follow: on a leaf that requires grad, or on a view
/// (ember does not re-base a view's base tensor) while gradients flow through it.
void check_inplace(const Tensor& self, const char* op, const std::vector<Tensor>& others) {
  raw::check_defined(op, self);
  if (!grad_enabled()) return;
  EMBER_CHECK(!(self.is_leaf() && self.requires_grad()),
              fmt::format("{}: a leaf tensor of shape {} that requires grad cannot be modified in place "
                          "(do it under NoGradGuard, as optimizers do)",
                          op, shape_str(self.shape())));
  const bool tracked = needs_grad(others) || self.requires_grad();
  EMBER_CHECK(!(tracked && self.impl()->autograd.is_view),
              fmt::format("{}: in-place change of a view (shape {}) while gradients flow through it is not supported; "
                          "use the out-of-place op",
                          op, shape_str(self.shape())));
}

/// After self's data changed in place: makes a new node over (self's old history, others) its grad_fn.
void rebase(Tensor& self, const char* name, const std::vector<Tensor>& others, BackwardFn fn) {
  std::vector<Tensor> inputs{self.detach()};
  auto& before = inputs[0].impl()->autograd;
  before.grad_fn = self.impl()->autograd.grad_fn;
  before.output_nr = self.impl()->autograd.output_nr;
  inputs.insert(inputs.end(), others.begin(), others.end());
  if (!needs_grad(inputs)) return;
  self.impl()->autograd.grad_fn.reset();
  record(self, name, inputs, std::move(fn));
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
  check_inplace(*this, "add_", {other});
  raw::check_defined("add_", other);
  raw::copy_(*this, raw::add(*this, alpha == 1.0 ? other : raw::mul_scalar(other, alpha)));
  const Shape so = other.shape();
  rebase(*this, "AddBackward", {other}, [so, alpha](const Grads& g) {
    return Grads{g[0], raw::sum_to(raw::mul_scalar(g[0], alpha), so)};
  });
  return *this;
}

Tensor& Tensor::mul_(const Tensor& other) {
  check_inplace(*this, "mul_", {other});
  raw::check_defined("mul_", other);
  const bool track = grad_enabled() && (requires_grad() || other.requires_grad());
  SavedTensor before(track ? raw::clone(*this) : Tensor()), so(other);
  raw::copy_(*this, raw::mul(*this, other));
  rebase(*this, "MulBackward", {other}, [before, so](const Grads& g) {
    const Tensor B = so.get("MulBackward"), A = before.get("MulBackward");
    return Grads{raw::mul(g[0], B), raw::sum_to(raw::mul(g[0], A), B.shape())};
  });
  return *this;
}

Tensor& Tensor::mul_(double s) {
  check_inplace(*this, "mul_", {});
  raw::copy_(*this, raw::mul_scalar(*this, s));
  rebase(*this, "MulBackward", {}, [s](const Grads& g) { return Grads{raw::mul_scalar(g[0], s)}; });
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, "fill_", {});
  raw::fill_(*this, value);
  rebase(*this, "FillBackward", {}, [](const Grads& g) { return Grads{zeros_like(g[0])}; });
  return *this;
}

Tensor& Tensor::zero_() { return fill_(0.0); }

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_", {src});
  raw::copy_(*this, src);
  const Shape ss = src.shape();
  const DType sd = src.dtype();
  const Device sdev = src.device();
  rebase(*this, "CopyBackward", {src}, [ss, sd, sdev](const Grads& g) {
    return Grads{zeros_like(g[0]), raw::to_device(raw::to_dtype(raw::sum_to(g[0], ss), sd), sdev)};
  });
  return *this;
}

}  // namespace ember
