/// \file
/// \brief The backend registry and the default (missing) kernels.
#include "core/backend.h"

#include <array>

#include <fmt/format.h>

#include "core/cpu/cpu_backend.h"

namespace ember {

namespace {
std::array<Backend*, 2>& registry() {
  static CpuBackend cpu;
  static std::array<Backend*, 2> backends{&cpu, nullptr};
  return backends;
}
}  // namespace

void register_backend(DeviceType type, Backend* backend) { registry()[static_cast<int>(type)] = backend; }

bool has_backend(DeviceType type) { return registry()[static_cast<int>(type)] != nullptr; }

Backend& backend_for(Device device) {
  Backend* b = registry()[static_cast<int>(device.type)];
  EMBER_CHECK(b != nullptr, fmt::format("{}: this build of ember has no CUDA backend (nvcc was not found "
                                        "when it was built)", device.str()));
  if (device.is_cuda())
    EMBER_CHECK(device.index >= 0 && device.index < b->device_count(),
                fmt::format("{}: no such CUDA device ({} visible{})", device.str(), b->device_count(),
                            b->unavailable_reason().empty() ? "" : ": " + b->unavailable_reason()));
  return *b;
}

int cuda_device_count() { return has_backend(DeviceType::CUDA) ? registry()[1]->device_count() : 0; }

void Backend::missing(const std::string& kernel) const {
  throw Error(fmt::format("{} is not implemented on {}", kernel, name()));
}

void Backend::copy_from_host(void*, const void*, std::size_t) { missing("copy_from_host"); }
void Backend::copy_to_host(void*, const void*, std::size_t) { missing("copy_to_host"); }
void Backend::copy(const Tensor&, const Tensor&) { missing("copy"); }
void Backend::fill(const Tensor&, double) { missing("fill"); }
void Backend::unary(UnaryOp, const Tensor&, const Tensor&, UnaryArgs) { missing("unary"); }
void Backend::binary(BinaryOp, const Tensor&, const Tensor&, const Tensor&) { missing("binary"); }
void Backend::where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { missing("where"); }
void Backend::reduce(ReduceOp, const Tensor&, const std::vector<int>&, const Tensor&) { missing("reduce"); }
void Backend::arg_reduce(bool, const Tensor&, int, const Tensor&) { missing("arg_reduce"); }
void Backend::scan(ScanOp, const Tensor&, int, const Tensor&) { missing("scan"); }
void Backend::softmax(const Tensor&, int, bool, const Tensor&) { missing("softmax"); }
void Backend::matmul(const Tensor&, const Tensor&, const Tensor&) { missing("matmul"); }
void Backend::index_select(const Tensor&, int, const Tensor&, const Tensor&) { missing("index_select"); }
void Backend::gather(const Tensor&, int, const Tensor&, const Tensor&) { missing("gather"); }
void Backend::scatter_add(const Tensor&, int, const Tensor&, const Tensor&) { missing("scatter_add"); }
void Backend::triangle(const Tensor&, std::int64_t, bool, const Tensor&) { missing("triangle"); }
void Backend::random(RandomKind, const Tensor&, RandomArgs) { missing("random"); }
void Backend::rfft(const Tensor&, std::int64_t, const Tensor&, const Tensor&) { missing("rfft"); }
void Backend::irfft(const Tensor&, const Tensor&, std::int64_t, const Tensor&) { missing("irfft"); }
void Backend::selective_scan_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                     std::int64_t, const Tensor&, const Tensor&) {
  missing("selective_scan_forward");
}
void Backend::selective_scan_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                      const Tensor&, const Tensor&, std::int64_t, const Tensor&, const Tensor&,
                                      const Tensor&, const Tensor&, const Tensor&) {
  missing("selective_scan_backward");
}
void Backend::wkv_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  missing("wkv_forward");
}
void Backend::wkv_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                           const Tensor&, const Tensor&, const Tensor&, const Tensor&) {
  missing("wkv_backward");
}
void Backend::attention_softmax(const Tensor&, double, bool, const Tensor&) { missing("attention_softmax"); }
void Backend::attention_softmax_backward(const Tensor&, const Tensor&, double, const Tensor&) {
  missing("attention_softmax_backward");
}
void Backend::flash_attention_forward(const Tensor&, const Tensor&, const Tensor&, double, bool, const Tensor&,
                                      const Tensor&) {
  missing("flash_attention_forward");
}
void Backend::flash_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                       const Tensor&, double, bool, const Tensor&, const Tensor&, const Tensor&) {
  missing("flash_attention_backward");
}
void Backend::block_sparse_attention_forward(const Tensor&, const Tensor&, const Tensor&, const BlockSparseLayout&,
                                             double, const Tensor&, const Tensor&) {
  missing("block_sparse_attention_forward");
}
void Backend::block_sparse_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                              const Tensor&, const Tensor&, const BlockSparseLayout&, double,
                                              const Tensor&, const Tensor&, const Tensor&) {
  missing("block_sparse_attention_backward");
}
void Backend::norm_forward(bool, const Tensor&, const Tensor&, const Tensor&, double, const Tensor&, const Tensor&,
                           const Tensor&) {
  missing("norm_forward");
}
void Backend::norm_backward(bool, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                            const Tensor&, const Tensor&, const Tensor&) {
  missing("norm_backward");
}

}  // namespace ember
