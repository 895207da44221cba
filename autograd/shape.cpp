/// \file
/// \brief Differentiable views and data movement. A view's backward undoes its geometry (transpose
/// back, reshape back, sum over expanded dims); slicing, selecting and indexing scatter the gradient
/// into zeros of the input's shape.
#include <fmt/format.h>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace ember {

namespace {

using Grads = std::vector<Tensor>;

/// A view op: out shares x's data; backward maps g back to x's shape with `back`.
template <class Back>
Tensor view_op(const Tensor& x, Tensor out, const char* name, Back back) {
  if (out.is_same(x)) out = x.detach();  // a view is always a new tensor object
  if (needs_grad({x})) out = record(out, name, {x}, [back](const Grads& g) { return Grads{back(g[0])}; });
  return mark_view(out, x);
}

/// Zeros of x's shape with g written into the region `region(zeros)` picks.
template <class Region>
Tensor scatter_into_zeros(const Shape& shape, const Tensor& g, Region region) {
  Tensor z = zeros(shape, g.dtype(), g.device());
  raw::copy_(region(z), g);
  return z;
}

}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  raw::check_defined("view", x);
  const Shape in = x.shape();
  return view_op(x, raw::view(x, shape), "ViewBackward", [in](const Tensor& g) { return raw::reshape(g, in); });
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  raw::check_defined("reshape", x);
  const Shape in = x.shape();
  Tensor out = raw::reshape(x, shape);
  if (!out.shares_storage(x)) {  // a copy, not a view
    if (!needs_grad({x})) return out;
    return record(out, "ReshapeBackward", {x}, [in](const Grads& g) { return Grads{raw::reshape(g[0], in)}; });
  }
  return view_op(x, out, "ReshapeBackward", [in](const Tensor& g) { return raw::reshape(g, in); });
}

Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1) {
  return view_op(x, raw::transpose(x, d0, d1), "TransposeBackward",
                 [d0, d1](const Tensor& g) { return raw::transpose(g, d0, d1); });
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  Tensor out = raw::permute(x, dims);
  std::vector<std::int64_t> inverse(dims.size());
  for (std::size_t i = 0; i < dims.size(); ++i) inverse[normalize_dim("permute", dims[i], x.dim())] = static_cast<std::int64_t>(i);
  return view_op(x, out, "PermuteBackward", [inverse](const Tensor& g) { return raw::permute(g, inverse); });
}

Tensor squeeze(const Tensor& x, const std::vector<std::int64_t>& dims) {
  raw::check_defined("squeeze", x);
  const Shape in = x.shape();
  return view_op(x, raw::squeeze(x, dims), "SqueezeBackward", [in](const Tensor& g) { return raw::reshape(g, in); });
}

Tensor unsqueeze(const Tensor& x, std::int64_t d) {
  raw::check_defined("unsqueeze", x);
  const Shape in = x.shape();
  return view_op(x, raw::unsqueeze(x, d), "UnsqueezeBackward", [in](const Tensor& g) { return raw::reshape(g, in); });
}

Tensor expand(const Tensor& x, const Shape& shape) {
  raw::check_defined("expand", x);
  const Shape in = x.shape();
  return view_op(x, raw::expand(x, shape), "ExpandBackward", [in](const Tensor& g) { return raw::sum_to(g, in); });
}

Tensor flatten(const Tensor& x, std::int64_t start, std::int64_t end) {
  raw::check_defined("flatten", x);
  if (x.dim() == 0) return reshape(x, {1});
  const int s = normalize_dim("flatten", start, x.dim()), e = normalize_dim("flatten", end, x.dim());
  EMBER_CHECK(s <= e, fmt::format("flatten: start dim {} is after end dim {} for shape {}", s, e, shape_str(x.shape())));
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  std::int64_t merged = 1;
  for (int d = s; d <= e; ++d) merged *= x.shape()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  raw::check_defined("slice", x);
  const Shape in = x.shape();
  return view_op(x, raw::slice(x, dim, start, end, step), "SliceBackward", [=](const Tensor& g) {
    return scatter_into_zeros(in, g, [&](const Tensor& z) { return raw::slice(z, dim, start, end, step); });
  });
}

Tensor select(const Tensor& x, std::int64_t dim, std::int64_t index) {
  raw::check_defined("select", x);
  const Shape in = x.shape();
  return view_op(x, raw::select(x, dim, index), "SelectBackward", [=](const Tensor& g) {
    return scatter_into_zeros(in, g, [&](const Tensor& z) { return raw::select(z, dim, index); });
  });
}

Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
  raw::check_defined("narrow", x);
  const int d = normalize_dim("narrow", dim, x.dim());
  const std::int64_t n = x.shape()[d];
  if (start < 0) start += n;
  EMBER_CHECK(start >= 0 && length >= 0 && start + length <= n,
              fmt::format("narrow: start {} and length {} do not fit dim {} of shape {}", start, length, d,
                          shape_str(x.shape())));
  return slice(x, d, start, start + length);
}

Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
  Tensor out = raw::index_select(x, dim, index);
  if (!needs_grad({x})) return out;
  const Shape in = x.shape();
  const int d = normalize_dim("index_select", dim, x.dim());
  SavedTensor si(index);
  return record(out, "IndexSelectBackward", {x}, [in, d, si](const Grads& g) {
    // Repeated indices accumulate: scatter_add with the index broadcast along the other dims.
    Shape ishape(g[0].dim(), 1);
    ishape[d] = g[0].shape()[d];
    const Tensor idx = raw::contiguous(raw::expand(raw::reshape(si.get(), ishape), g[0].shape()));
    return Grads{raw::scatter_add(zeros(in, g[0].dtype(), g[0].device()), d, idx, g[0])};
  });
}

Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index) {
  Tensor out = raw::gather(x, dim, index);
  if (!needs_grad({x})) return out;
  const Shape in = x.shape();
  SavedTensor si(index);
  return record(out, "GatherBackward", {x}, [in, dim, si](const Grads& g) {
    return Grads{raw::scatter_add(zeros(in, g[0].dtype(), g[0].device()), dim, si.get(), g[0])};
  });
}

Tensor scatter_add(const Tensor& x_in, std::int64_t dim, const Tensor& index, const Tensor& src_in) {
  const auto xs = amp::autocast_all("scatter_add", {x_in, src_in});
  const Tensor &x = xs[0], &src = xs[1];
  Tensor out = raw::scatter_add(x, dim, index, src);
  if (!needs_grad({x, src})) return out;
  const Shape src_shape = src.shape();
  SavedTensor si(index);
  return record(out, "ScatterAddBackward", {x, src}, [src_shape, dim, si](const Grads& g) {
    const Tensor idx = si.get();
    const Tensor picked = raw::gather(g[0], dim, idx);
    Tensor gsrc = picked;
    if (idx.shape() != src_shape) {  // src elements outside index's extent receive no gradient
      gsrc = zeros(src_shape, g[0].dtype(), g[0].device());
      Tensor region = gsrc;
      for (std::int64_t d = 0; d < gsrc.dim(); ++d) region = raw::slice(region, d, 0, idx.shape()[d]);
      raw::copy_(region, picked);
    }
    return Grads{g[0], gsrc};
  });
}

Tensor cat(const std::vector<Tensor>& xs_in, std::int64_t dim) {
  const std::vector<Tensor> xs = amp::autocast_all("cat", xs_in);
  Tensor out = raw::cat(xs, dim);
  if (!needs_grad(xs)) return out;
  const int d = normalize_dim("cat", dim, xs[0].dim());
  std::vector<std::int64_t> sizes;
  for (const auto& x : xs) sizes.push_back(x.shape()[d]);
  return record(out, "CatBackward", xs, [sizes, d](const Grads& g) {
    Grads parts;
    std::int64_t at = 0;
    for (auto s : sizes) {
      parts.push_back(raw::slice(g[0], d, at, at + s));
      at += s;
    }
    return parts;
  });
}

Tensor stack(const std::vector<Tensor>& xs, std::int64_t dim) {
  EMBER_CHECK(!xs.empty(), "stack: expected a non-empty list of tensors");
  for (const auto& x : xs) {
    raw::check_defined("stack", x);
    EMBER_CHECK(x.shape() == xs[0].shape(), fmt::format("stack: shapes {} and {} differ", shape_str(xs[0].shape()),
                                                        shape_str(x.shape())));
  }
  const int d = normalize_dim("stack", dim, xs[0].dim() + 1);
  std::vector<Tensor> parts;
  for (const auto& x : amp::autocast_all("stack", xs)) parts.push_back(unsqueeze(x, d));
  return cat(parts, d);
}

std::vector<Tensor> split(const Tensor& x, std::int64_t size, std::int64_t dim) {
  raw::check_defined("split", x);
  const int d = normalize_dim("split", dim, x.dim());
  EMBER_CHECK(size > 0, fmt::format("split: size must be positive, got {}", size));
  std::vector<Tensor> parts;
  for (std::int64_t at = 0; at < x.shape()[d]; at += size) parts.push_back(slice(x, d, at, at + size));
  return parts;
}

std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim) {
  raw::check_defined("chunk", x);
  EMBER_CHECK(chunks > 0, fmt::format("chunk: number of chunks must be positive, got {}", chunks));
  const int d = normalize_dim("chunk", dim, x.dim());
  const std::int64_t n = x.shape()[d];
  return split(x, std::max<std::int64_t>(1, (n + chunks - 1) / chunks), d);
}

namespace {
Tensor triangle(const Tensor& x, std::int64_t k, bool upper) {
  Tensor out = raw::triangle(x, k, upper);
  if (!needs_grad({x})) return out;
  return record(out, upper ? "TriuBackward" : "TrilBackward", {x},
                [k, upper](const Grads& g) { return Grads{raw::triangle(g[0], k, upper)}; });
}
}  // namespace

Tensor tril(const Tensor& x, std::int64_t k) { return triangle(x, k, false); }
Tensor triu(const Tensor& x, std::int64_t k) { return triangle(x, k, true); }

Tensor one_hot(const Tensor& index, std::int64_t num_classes) {
  raw::check_index("one_hot", index);
  if (index.numel() > 0) {
    const auto lo = static_cast<std::int64_t>(raw::reduce(ReduceOp::Min, index, {}, false).item());
    const auto hi = static_cast<std::int64_t>(raw::reduce(ReduceOp::Max, index, {}, false).item());
    if (num_classes < 0) num_classes = hi + 1;
    EMBER_CHECK(lo >= 0 && hi < num_classes,
                fmt::format("one_hot: class index {} is out of range for {} classes (index of shape {})",
                            lo < 0 ? lo : hi, num_classes, shape_str(index.shape())));
  } else if (num_classes < 0) {
    num_classes = 0;
  }
  Shape shape = index.shape();
  shape.push_back(num_classes);
  const Tensor idx = raw::unsqueeze(index, -1);
  return raw::scatter_add(zeros(shape, DType::Float32, index.device()), -1, idx,
                          ones(idx.shape(), DType::Float32, index.device()));
}

Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, double value) {
  Tensor out = raw::pad(x, pads, value);
  if (!needs_grad({x})) return out;
  std::vector<std::int64_t> crop;
  for (auto p : pads) crop.push_back(-p);  // padding's inverse is cropping
  return record(out, "PadBackward", {x}, [crop](const Grads& g) { return Grads{raw::pad(g[0], crop, 0.0)}; });
}

}  // namespace ember
