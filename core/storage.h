/// \file
/// \brief Storage: one block of device memory shared by a tensor and all its views, with the version
/// counter that in-place ops bump and autograd checks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/device.h"

namespace ember {

/// A block of memory on one device, freed through that device's backend when the last owner lets go.
class Storage {
 public:
  /// Allocates `nbytes` on `device` (contents uninitialised).
  Storage(std::size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  /// The start of the block.
  void* data() const { return data_; }
  /// The block's size in bytes.
  std::size_t nbytes() const { return nbytes_; }
  /// Where the block lives.
  Device device() const { return device_; }
  /// How many in-place modifications the block has seen.
  std::uint64_t version() const { return version_; }
  /// Records one in-place modification.
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_;
  std::uint64_t version_ = 0;
};

}  // namespace ember
