/// \file
/// \brief Tensor: a handle to a shared TensorImpl (shape, strides, offset and dtype over a Storage).
///
/// A Tensor behaves like a Python name bound to an object (seed note 2: identity, type, value):
/// copying a Tensor aliases the same object, `clone()` copies the data, `detach()` shares the data
/// but not the autograd history. Views share one Storage through shape, strides and offset.
/// Element (i0, ..., ik) lives at `data + (offset + sum_j i_j * stride_j) * element_size`.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace ember {

class Node;
class Tensor;
struct TensorImpl;

/// What autograd keeps on a tensor: whether it wants a gradient, its gradient, and the node that made it.
struct AutogradMeta {
  bool requires_grad = false;         ///< set on leaves by requires_grad_()
  std::shared_ptr<TensorImpl> grad;   ///< the accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;      ///< the node that produced this tensor (null for leaves)
  std::uint32_t output_nr = 0;        ///< which output of grad_fn this tensor is
  std::weak_ptr<Node> grad_accumulator;  ///< the AccumulateGrad node of a leaf, while a graph uses it
  /// For a tensor made by a view op: the tensor (itself no view) whose data it shares. In-place
  /// changes through the view re-base that tensor's history.
  std::shared_ptr<TensorImpl> view_base;
  std::uint64_t view_version = 0;     ///< the storage version when a view's grad_fn was last set
};

/// The object a Tensor handle points to.
struct TensorImpl {
  std::shared_ptr<Storage> storage;  ///< the shared data
  Shape shape;                       ///< sizes, outermost first
  Shape strides;                     ///< in elements
  std::int64_t offset = 0;           ///< in elements from the storage start
  DType dtype = DType::Float32;      ///< element type
  AutogradMeta autograd;             ///< autograd's bookkeeping
};

/// A handle to a TensorImpl. Copies of a Tensor are the same tensor (see is_same()).
class Tensor {
 public:
  /// An undefined tensor (no impl); most ops reject it.
  Tensor() = default;
  /// Wraps an impl.
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  /// An uninitialised contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  /// A view of `storage` with the given geometry (no copy, no autograd history).
  static Tensor from_storage(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                             std::int64_t offset, DType dtype);

  // --- identity and metadata ---
  /// True when the handle points to a tensor.
  bool defined() const { return impl_ != nullptr; }
  /// True when both handles point to the same tensor object (Python's `is`).
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  /// True when both tensors view the same storage.
  bool shares_storage(const Tensor& other) const;
  /// The impl (for ember's own code).
  const std::shared_ptr<TensorImpl>& impl() const { return impl_; }
  /// The sizes.
  const Shape& shape() const { return checked().shape; }
  /// The strides, in elements.
  const Shape& strides() const { return checked().strides; }
  /// Offset from the storage start, in elements.
  std::int64_t offset() const { return checked().offset; }
  /// Number of dimensions.
  std::int64_t dim() const { return static_cast<std::int64_t>(shape().size()); }
  /// Size of dimension `d` (negative counts from the end).
  std::int64_t size(std::int64_t d) const;
  /// Number of elements.
  std::int64_t numel() const { return numel_of(shape()); }
  /// Element type.
  DType dtype() const { return checked().dtype; }
  /// Device of the storage.
  Device device() const { return checked().storage->device(); }
  /// The storage.
  const std::shared_ptr<Storage>& storage() const { return checked().storage; }
  /// True when the elements are laid out row-major without gaps.
  bool is_contiguous() const;
  /// The storage's version counter (bumped by every in-place op on it or its views).
  std::uint64_t version() const { return storage()->version(); }
  /// Address of the first element (raw bytes).
  void* raw_data() const;
  /// Typed address of the first element; throws if T does not match dtype().
  template <class T>
  T* data_ptr() const;
  /// The value of a one-element tensor as double (copied to the host if needed).
  double item() const;
  /// The elements in row-major order as T, converted from the tensor's dtype (copied to the host).
  template <class T>
  std::vector<T> to_vector() const;
  /// "tensor([[1., 2.], ...], shape=[2, 2], dtype=float32, device=cpu)" as PyTorch prints it.
  std::string str() const;

  // --- autograd (core keeps the fields, autograd/ does the work) ---
  /// True when autograd tracks this tensor (a leaf marked by requires_grad_ or an op's output).
  bool requires_grad() const;
  /// Marks a floating-point leaf as wanting a gradient; returns *this.
  Tensor& requires_grad_(bool requires_grad = true);
  /// The accumulated gradient (undefined until backward reaches this tensor).
  Tensor grad() const;
  /// Replaces the stored gradient (undefined to clear it).
  void set_grad(const Tensor& grad);
  /// The node that produced this tensor, null for leaves.
  const std::shared_ptr<Node>& grad_fn() const { return checked().autograd.grad_fn; }
  /// True when no op produced this tensor (the user made it, or it is detached).
  bool is_leaf() const { return grad_fn() == nullptr; }
  /// A tensor sharing the data but with no autograd history.
  Tensor detach() const;

  // --- defined in autograd/ (they need the graph) ---
  /// Keeps the gradient of this non-leaf tensor in grad() after backward.
  void retain_grad() const;
  /// Runs reverse-mode autodiff from this tensor; `gradient` is required unless this is a scalar.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  /// A copy of the data (differentiable).
  Tensor clone() const;
  /// This tensor, or a contiguous copy if it is not contiguous (differentiable).
  Tensor contiguous() const;
  /// Converted to `dtype` (no copy when it already is; differentiable between floating types).
  Tensor to(DType dtype) const;
  /// Moved to `device` (no copy when it already is there; differentiable).
  Tensor to(Device device) const;
  /// this += alpha * other, in place (bumps the version; recorded by autograd).
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  /// this *= other, in place.
  Tensor& mul_(const Tensor& other);
  /// this *= s, in place.
  Tensor& mul_(double s);
  /// Sets every element to value, in place.
  Tensor& fill_(double value);
  /// Sets every element to 0, in place.
  Tensor& zero_();
  /// Copies src (broadcast, converted) into this tensor, in place.
  Tensor& copy_(const Tensor& src);

 private:
  const TensorImpl& checked() const;
  std::shared_ptr<TensorImpl> impl_;
};

/// Prints t.str().
std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace ember
