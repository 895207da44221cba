/// \file
/// \brief gradcheck: compares autograd's gradients with central differences in Float64,
/// (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), for every element of every input.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember {

/// What gradcheck found.
struct GradcheckResult {
  bool ok = true;               ///< every entry within atol + rtol * |numerical|
  double max_abs_error = 0.0;   ///< largest |analytic - numerical| seen
  std::string message;          ///< the first mismatch: input, element, both values
};

/// Checks d sum(fn(inputs) * w) / d inputs for a fixed random weighting w of the outputs.
/// Inputs must be Float64 leaves with requires_grad set on those to check.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                          double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3);

}  // namespace ember
