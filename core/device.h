/// \file
/// \brief Where a tensor's storage lives: the CPU or a CUDA device with an index.
#pragma once

#include <string>

namespace ember {

/// The kind of device.
enum class DeviceType { CPU, CUDA };

/// A device: its type and, for CUDA, its index.
struct Device {
  DeviceType type = DeviceType::CPU;  ///< CPU or CUDA
  int index = 0;                      ///< the CUDA device ordinal (0 for the CPU)

  /// The CPU.
  static Device cpu() { return {DeviceType::CPU, 0}; }
  /// CUDA device number `index`.
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  /// True for the CPU.
  bool is_cpu() const { return type == DeviceType::CPU; }
  /// True for a CUDA device.
  bool is_cuda() const { return type == DeviceType::CUDA; }
  /// "cpu" or "cuda:N".
  std::string str() const;
  /// Same type and index.
  bool operator==(const Device&) const = default;
};

}  // namespace ember
