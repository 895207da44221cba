/// \file
/// \brief Reading and writing the safetensors format (Hugging Face), byte for byte as the Python
/// `safetensors` package does.
///
/// A file is: an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (padded with spaces so that 8 + N
/// is a multiple of 8), then the raw little-endian tensor data. The header maps each tensor name to
/// `{"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}` (offsets relative to the data
/// section) and may hold `"__metadata__": {string: string}`. A valid file's tensors cover the data
/// section exactly, in offset order, with no holes, overlaps or trailing bytes, and each one's
/// `end - begin == numel * itemsize`. Loading checks all of this, so a bad file gives an ember::Error
/// that starts with "safetensors: <source>: " and never a crash or a huge allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

/// The safetensors file format.
namespace ember::safetensors {

/// Named tensors in a chosen order (a file's tensors are written in this order).
using TensorList = std::vector<std::pair<std::string, Tensor>>;
/// The free-form `__metadata__` of a file.
using Metadata = std::map<std::string, std::string>;

/// The largest header the Python package accepts (and so do we), in bytes.
inline constexpr std::uint64_t kMaxHeaderSize = 100'000'000;

/// What a file holds: its tensors (CPU, contiguous, in data-offset order) and its metadata.
struct Contents {
  TensorList tensors;  ///< the tensors, in the order their data appears in the file
  Metadata metadata;   ///< the `__metadata__` entries (empty when the file has none)

  /// The tensor called `name`; throws ember::Error naming it (and the names there are) when absent.
  const Tensor& at(const std::string& name) const;
  /// True when a tensor called `name` is present.
  bool contains(const std::string& name) const;
};

/// "F32", "F64", "F16", "BF16", "I64" or "BOOL": the format's name of an ember dtype.
std::string dtype_code(DType dtype);

/// The bytes of a safetensors file holding `tensors` (in list order) and `metadata`. Tensors that are
/// not contiguous or not on the CPU are copied first. Throws on an undefined tensor or a name that is
/// empty, "__metadata__" or repeated.
std::vector<std::uint8_t> serialize(const TensorList& tensors, const Metadata& metadata = {});

/// Writes serialize(tensors, metadata) to `path` atomically (see write_file_atomic()).
void save(const std::string& path, const TensorList& tensors, const Metadata& metadata = {});

/// Reads a safetensors file from memory; `source_name` names it in error messages.
Contents parse(const std::uint8_t* data, std::size_t size, const std::string& source_name);

/// Reads the safetensors file at `path`.
Contents load(const std::string& path);

}  // namespace ember::safetensors
