/// \file
/// \brief Element types: Float32 (default), Float64 (gradcheck), Float16 and BFloat16 (mixed
/// precision, computed through float on CPU), Int64 (indices) and Bool (masks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ember {

/// The element type of a tensor.
enum class DType : std::uint8_t { Float32, Float64, Float16, BFloat16, Int64, Bool };

/// Bytes per element.
std::size_t element_size(DType dtype);
/// "float32", "float64", "float16", "bfloat16", "int64" or "bool".
std::string dtype_name(DType dtype);
/// True for the four floating-point types.
bool is_floating(DType dtype);
/// The type two operands are computed in (NumPy/PyTorch promotion: bool < int64 < float16/bfloat16 <
/// float32 < float64; float16 with bfloat16 gives float32).
DType promote_types(DType a, DType b);

}  // namespace ember
