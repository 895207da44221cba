/// \file
/// \brief Shapes and strides (in elements), NumPy broadcasting, and dim normalisation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ember {

/// The sizes of a tensor's dimensions, outermost first.
using Shape = std::vector<std::int64_t>;

/// Number of elements of a shape (1 for a scalar).
std::int64_t numel_of(const Shape& shape);
/// Row-major strides of a contiguous tensor of this shape.
Shape contiguous_strides(const Shape& shape);
/// "[2, 3]".
std::string shape_str(const Shape& shape);
/// The broadcast shape of a and b (NumPy rules); throws naming `op` if they do not broadcast.
Shape broadcast_shapes(const std::string& op, const Shape& a, const Shape& b);
/// Maps a possibly negative dim into [0, ndim); throws naming `op` when out of range.
int normalize_dim(const std::string& op, std::int64_t dim, std::int64_t ndim);
/// Normalises a list of dims (empty means all dims), sorted and without repeats.
std::vector<int> normalize_dims(const std::string& op, const std::vector<std::int64_t>& dims, std::int64_t ndim);

}  // namespace ember
