/// \file
/// \brief gradcheck by central differences in Float64.
#include "autograd/gradcheck.h"

#include <cmath>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"

namespace ember {

namespace {
/// sum(fn(xs) * w): one scalar whose gradient checks every output element at once.
double weighted(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& xs,
                const Tensor& w) {
  NoGradGuard no_grad;
  return raw::sum(raw::mul(raw::to_dtype(fn(xs), DType::Float64), w)).item();
}
}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                          double eps, double atol, double rtol) {
  for (const auto& x : inputs)
    EMBER_CHECK(!x.defined() || !x.requires_grad() || x.dtype() == DType::Float64,
                fmt::format("gradcheck: inputs that require grad must be float64, got {} of shape {}",
                            dtype_name(x.dtype()), shape_str(x.shape())));
  Generator gen(12345);
  Tensor probe;
  {
    NoGradGuard no_grad;
    probe = fn(inputs);
  }
  const Tensor w = randn(probe.shape(), DType::Float64, Device::cpu(), 0.0, 1.0, &gen);
  for (const auto& x : inputs)
    if (x.defined() && x.requires_grad()) x.impl()->autograd.grad.reset();
  const Tensor out = fn(inputs);
  sum(mul(out.to(DType::Float64), w)).backward();

  GradcheckResult result;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    const Tensor analytic = x.grad().defined() ? raw::contiguous(x.grad()) : zeros(x.shape(), DType::Float64);
    const Tensor xc = raw::contiguous(x);
    EMBER_CHECK(xc.is_same(x), "gradcheck: inputs must be contiguous");
    double* px = x.data_ptr<double>();
    const double* pa = analytic.data_ptr<double>();
    for (std::int64_t k = 0; k < x.numel(); ++k) {
      const double orig = px[k];
      px[k] = orig + eps;
      const double fp = weighted(fn, inputs, w);
      px[k] = orig - eps;
      const double fm = weighted(fn, inputs, w);
      px[k] = orig;
      const double numerical = (fp - fm) / (2 * eps);
      const double err = std::abs(pa[k] - numerical);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (result.ok && !(err <= atol + rtol * std::abs(numerical))) {
        result.ok = false;
        result.message = fmt::format("gradcheck: input {} element {}: analytic {} vs numerical {}", i, k, pa[k], numerical);
      }
    }
  }
  return result;
}

}  // namespace ember
