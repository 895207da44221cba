/// \file
/// \brief Printing tensors as PyTorch does: nested brackets, aligned columns, 4 decimals (or
/// scientific notation for wide ranges), the middle elided with "..." when there are over 1000 elements.
#include <cmath>
#include <sstream>

#include <fmt/format.h>

#include "core/ops.h"
#include "core/tensor.h"

namespace ember {

namespace {

constexpr std::int64_t kThreshold = 1000;  // more elements than this: summarise
constexpr std::int64_t kEdge = 3;          // elements kept at each end of a summarised dim

struct Formatter {
  DType dtype;
  bool integral = true;    // every finite value is a whole number
  bool scientific = false;
  std::size_t width = 1;

  std::string format(double v) const {
    if (dtype == DType::Bool) return v != 0 ? "True" : "False";
    if (dtype == DType::Int64) return fmt::format("{}", static_cast<std::int64_t>(v));
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (scientific) return fmt::format("{:.4e}", v);
    if (integral) return fmt::format("{:.0f}.", v);
    return fmt::format("{:.4f}", v);
  }

  Formatter(DType dt, const std::vector<double>& shown) : dtype(dt) {
    double max_abs = 0, min_abs = INFINITY;
    for (double v : shown) {
      if (!std::isfinite(v)) continue;
      if (v != std::round(v)) integral = false;
      max_abs = std::max(max_abs, std::abs(v));
      if (v != 0) min_abs = std::min(min_abs, std::abs(v));
    }
    if (is_floating(dt) && std::isfinite(min_abs))
      scientific = max_abs > 1e8 || (!integral && (min_abs < 1e-4 || max_abs / min_abs > 1e3));
    for (double v : shown) width = std::max(width, format(v).size());
  }
};

/// The indices printed along a dim of size n.
std::vector<std::int64_t> shown_indices(std::int64_t n, bool summarise) {
  std::vector<std::int64_t> idx;
  if (summarise && n > 2 * kEdge) {
    for (std::int64_t i = 0; i < kEdge; ++i) idx.push_back(i);
    idx.push_back(-1);  // the ellipsis
    for (std::int64_t i = n - kEdge; i < n; ++i) idx.push_back(i);
  } else {
    for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
  }
  return idx;
}

void collect(const std::vector<double>& v, const Shape& shape, std::size_t d, std::int64_t base, bool summarise,
             std::vector<double>& out) {
  const std::int64_t stride = numel_of(Shape(shape.begin() + d + 1, shape.end()));
  for (auto i : shown_indices(shape[d], summarise)) {
    if (i < 0) continue;
    if (d + 1 == shape.size()) out.push_back(v[base + i]);
    else collect(v, shape, d + 1, base + i * stride, summarise, out);
  }
}

void render(std::ostringstream& os, const std::vector<double>& v, const Shape& shape, std::size_t d, std::int64_t base,
            bool summarise, const Formatter& f, std::size_t indent) {
  os << '[';
  const std::int64_t stride = numel_of(Shape(shape.begin() + d + 1, shape.end()));
  const auto idx = shown_indices(shape[d], summarise);
  for (std::size_t k = 0; k < idx.size(); ++k) {
    if (k > 0) {
      os << ',';
      if (d + 1 == shape.size()) os << ' ';
      else os << std::string(shape.size() - d - 1, '\n') << std::string(indent + d + 1, ' ');
    }
    if (idx[k] < 0) {
      os << "...";
      continue;
    }
    if (d + 1 == shape.size()) {
      const std::string s = f.format(v[base + idx[k]]);
      os << std::string(f.width - s.size(), ' ') << s;
    } else {
      render(os, v, shape, d + 1, base + idx[k] * stride, summarise, f, indent);
    }
  }
  os << ']';
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  const std::vector<double> v = to_vector<double>();
  const bool summarise = numel() > kThreshold;
  std::vector<double> shown;
  if (dim() == 0) shown = v;
  else collect(v, shape(), 0, 0, summarise, shown);
  const Formatter f(dtype(), shown);
  std::ostringstream os;
  os << "tensor(";
  if (dim() == 0) os << f.format(v[0]);
  else render(os, v, shape(), 0, 0, summarise, f, 7);
  os << ", shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype()) << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad=true";
  os << ')';
  return os.str();
}

}  // namespace ember
