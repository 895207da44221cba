/// \file
/// \brief Tensor handles, storage, and the autograd fields kept on every tensor.
#include "core/tensor.h"

#include <algorithm>
#include <atomic>
#include <ostream>

#include <fmt/format.h>

#include "core/backend.h"
#include "core/half.h"
#include "core/memory.h"
#include "core/ops.h"

namespace ember {

namespace {

/// The byte counters of one device type; atomics, as tensors are made and freed on many threads.
struct MemoryCounters {
  std::atomic<std::int64_t> current{0};
  std::atomic<std::int64_t> peak{0};

  void add(std::int64_t nbytes) {
    const std::int64_t now = current.fetch_add(nbytes) + nbytes;
    std::int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
};

MemoryCounters& counters(DeviceType type) {
  static MemoryCounters cpu, cuda;
  return type == DeviceType::CPU ? cpu : cuda;
}

}  // namespace

MemoryStats memory_stats(DeviceType type) {
  const MemoryCounters& c = counters(type);
  return {c.current.load(), c.peak.load()};
}

void reset_peak_memory(DeviceType type) {
  MemoryCounters& c = counters(type);
  c.peak.store(c.current.load());
}

Storage::Storage(std::size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes > 0) data_ = backend_for(device).allocate(nbytes);
  counters(device.type).add(static_cast<std::int64_t>(nbytes));
}

Storage::~Storage() {
  if (data_) backend_for(device_).deallocate(data_);
  counters(device_.type).current.fetch_sub(static_cast<std::int64_t>(nbytes_));
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (auto s : shape)
    EMBER_CHECK(s >= 0, fmt::format("empty: negative size in shape {}", shape_str(shape)));
  auto storage = std::make_shared<Storage>(numel_of(shape) * element_size(dtype), device);
  return from_storage(std::move(storage), shape, contiguous_strides(shape), 0, dtype);
}

Tensor Tensor::from_storage(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                            std::int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

const TensorImpl& Tensor::checked() const {
  EMBER_CHECK(impl_ != nullptr, "tensor: use of an undefined tensor");
  return *impl_;
}

bool Tensor::shares_storage(const Tensor& other) const {
  return defined() && other.defined() && impl_->storage == other.impl_->storage;
}

std::int64_t Tensor::size(std::int64_t d) const { return shape()[normalize_dim("size", d, dim())]; }

bool Tensor::is_contiguous() const {
  std::int64_t expected = 1;
  for (std::size_t i = shape().size(); i-- > 0;) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * static_cast<std::int64_t>(element_size(dtype()));
}

namespace {
template <class T>
constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<Half>() { return DType::Float16; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::BFloat16; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }
}  // namespace

template <class T>
T* Tensor::data_ptr() const {
  EMBER_CHECK(dtype() == dtype_of<T>(),
              fmt::format("data_ptr: tensor of shape {} has dtype {}, asked for {}", shape_str(shape()),
                          dtype_name(dtype()), dtype_name(dtype_of<T>())));
  EMBER_CHECK(device().is_cpu(), fmt::format("data_ptr: tensor is on {}, move it to the CPU first", device().str()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data_ptr<float>() const;
template double* Tensor::data_ptr<double>() const;
template Half* Tensor::data_ptr<Half>() const;
template BFloat16* Tensor::data_ptr<BFloat16>() const;
template std::int64_t* Tensor::data_ptr<std::int64_t>() const;
template bool* Tensor::data_ptr<bool>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
  const Tensor host = raw::contiguous(raw::to_dtype(raw::to_device(*this, Device::cpu()), dtype_of<T>()));
  const T* p = host.data_ptr<T>();
  return std::vector<T>(p, p + host.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;
template std::vector<bool> Tensor::to_vector<bool>() const;

double Tensor::item() const {
  EMBER_CHECK(numel() == 1, fmt::format("item: tensor of shape {} has {} elements, not 1", shape_str(shape()), numel()));
  return to_vector<double>()[0];
}

bool Tensor::requires_grad() const {
  const auto& a = checked().autograd;
  return a.requires_grad || a.grad_fn != nullptr;
}

Tensor& Tensor::requires_grad_(bool requires_grad) {
  EMBER_CHECK(is_leaf(), "requires_grad_: only leaf tensors can change requires_grad (use detach() first)");
  EMBER_CHECK(!requires_grad || is_floating(dtype()),
              fmt::format("requires_grad_: only floating-point tensors can require grad, not {}", dtype_name(dtype())));
  impl_->autograd.requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& g = checked().autograd.grad;
  return g ? Tensor(g) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  checked();
  if (grad.defined())
    EMBER_CHECK(grad.shape() == shape(), fmt::format("set_grad: gradient of shape {} for a tensor of shape {}",
                                                     shape_str(grad.shape()), shape_str(shape())));
  impl_->autograd.grad = grad.impl();
}

Tensor Tensor::detach() const {
  const auto& i = checked();
  return from_storage(i.storage, i.shape, i.strides, i.offset, i.dtype);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace ember
