/// \file
/// \brief Memory statistics: bytes held by tensor storage on each device type, now and at the peak.
///
/// Every Storage adds its size when allocated and subtracts it when freed, so `current_bytes` is the memory
/// held by live tensors (including those autograd keeps for the backward pass) and `peak_bytes` its
/// high-water mark since the last reset. Scratch buffers that kernels keep internally (a few tiles) are
/// not tensors and are not counted; neither are blocks the CPU allocator caches for reuse after a tensor
/// is freed.
#pragma once

#include <cstdint>

#include "core/device.h"

namespace ember {

/// Bytes of tensor storage on one device type.
struct MemoryStats {
  std::int64_t current_bytes = 0;  ///< held by live tensors now
  std::int64_t peak_bytes = 0;     ///< the most held at once since the last reset_peak_memory
};

/// The statistics of `type` (all devices of that type together).
MemoryStats memory_stats(DeviceType type = DeviceType::CPU);

/// Sets the peak of `type` to its current value, so the next peak measures what comes after.
void reset_peak_memory(DeviceType type = DeviceType::CPU);

}  // namespace ember
