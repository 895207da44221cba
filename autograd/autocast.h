/// \file
/// \brief Automatic mixed precision: the amp::Autocast guard and the one table of rules that says, for every
/// op it touches, which precision the op runs in (Micikevicius et al. 2018; PyTorch's autocast op reference).
///
/// Inside an Autocast region of dtype `low` (Float16 or BFloat16):
/// - **Lower** ops (matrix products: matmul, linear, the attention kernels) cast their Float32 inputs to `low`;
///   the product accumulates in Float32 inside the kernel and its output is rounded to `low`.
/// - **Float32** ops (exp, log, pow, softmax, log-softmax, norms, losses, reductions, the recurrent scans and
///   FFTs) cast their Float16/BFloat16 inputs to Float32 and return Float32: their sums, exponentials and long
///   recurrences lose too much in 8 or 11 bits.
/// - **Widest** ops (cat, stack, scatter_add) cast every floating input to the widest dtype among them.
/// - Every other op runs in its inputs' dtypes (elementwise ops promote as usual).
///
/// Float64 inputs are never touched, so gradcheck runs the same inside and outside a region. The casts are
/// ordinary differentiable `to(dtype)` ops: the backward pass carries each gradient back to the dtype of the
/// tensor it belongs to, so parameters kept in Float32 get Float32 gradients (they are the master weights).
/// The rules are the table printed by rules() and on the docs page \ref amp_rules.
#pragma once

#include <string_view>
#include <vector>

#include "core/tensor.h"

/// Automatic mixed precision: autocast regions here; the gradient scaler and master weights in train/amp.h.
namespace ember::amp {

/// Which precision an op runs in inside an autocast region.
enum class Cast {
  Lower,    ///< Float32 inputs cast to the region's dtype (Float32 accumulation inside the kernel)
  Float32,  ///< Float16/BFloat16 inputs cast to Float32
  Widest,   ///< floating inputs cast to the widest floating dtype among them
};

/// One rule of the autocast table.
struct Rule {
  std::string_view op;   ///< the op's name, as in its error messages (e.g. "matmul", "layer_norm")
  Cast cast;             ///< what happens to its inputs
  std::string_view why;  ///< the reason, as printed in the docs
};

/// The autocast table, in the order the docs print it.
const std::vector<Rule>& rules();
/// "lower", "float32" or "widest".
std::string_view cast_name(Cast cast);

/// RAII guard: autocasting to `dtype` (Float16 or BFloat16) while it lives, or turned off inside an outer
/// region when `enabled` is false. Regions nest: the destructor restores the state the constructor found.
/// The state is per thread, as NoGradGuard's.
class Autocast {
 public:
  /// Opens a region; throws ember::Error unless dtype is Float16 or BFloat16.
  explicit Autocast(DType dtype = DType::Float16, bool enabled = true);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

 private:
  bool prev_enabled_;
  DType prev_dtype_;
};

/// Whether this thread is inside an enabled autocast region.
bool is_enabled();
/// The dtype of the innermost region (Float16 outside any region).
DType dtype();

/// The input `x` of op `op` as the rules make it inside the current region: unchanged outside a region, for
/// ops not in the table, and for undefined or non-floating tensors. Throws ember::Error for an op name that
/// the table lists with Cast::Widest (use autocast_all for those).
Tensor autocast(std::string_view op, const Tensor& x);
/// All inputs of `op` (needed for Cast::Widest, which looks at every input).
std::vector<Tensor> autocast_all(std::string_view op, std::vector<Tensor> xs);

}  // namespace ember::amp
