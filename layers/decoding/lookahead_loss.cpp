/// \file
/// \brief shift_target and lookahead_cross_entropy.
#include "layers/decoding/lookahead_loss.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/creation.h"

namespace ember::decoding {

namespace {

constexpr std::int64_t kIgnore = -100;

}  // namespace

void check_batch(const Tensor& input, const Tensor& target, const std::string& op) {
  EMBER_CHECK(input.defined() && target.defined() && input.dim() == 2 && input.dtype() == DType::Int64 &&
                  target.dtype() == DType::Int64 && target.shape() == input.shape(),
              op + ": expected input and target [B, T] Int64 of one shape, got " +
                  (input.defined() ? dtype_name(input.dtype()) + " " + shape_str(input.shape()) : "none") + " and " +
                  (target.defined() ? dtype_name(target.dtype()) + " " + shape_str(target.shape()) : "none"));
}

Tensor shift_target(const Tensor& target, std::int64_t k) {
  const std::int64_t B = target.shape()[0], T = target.shape()[1];
  const std::vector<std::int64_t> t = target.contiguous().to_vector<std::int64_t>();
  std::vector<std::int64_t> out(t.size(), kIgnore);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i + k < T; ++i) out[b * T + i] = t[b * T + i + k];
  return from_vector(out, target.shape());
}

Tensor lookahead_cross_entropy(const Tensor& logits, const Tensor& target, const std::string& op) {
  const std::int64_t V = logits.shape().back();
  std::vector<std::int64_t> t = target.contiguous().to_vector<std::int64_t>();
  std::vector<double> w(t.size(), 0.0);  // 1 / (scored positions) where scored, 0 where ignored
  double scored = 0.0;
  for (std::size_t n = 0; n < t.size(); ++n) {
    if (t[n] == kIgnore) {
      t[n] = 0;
      continue;
    }
    EMBER_CHECK(t[n] >= 0 && t[n] < V,
                fmt::format("{}: target {} at flat position {} outside [0, {}) (nor -100)", op, t[n], n, V));
    w[n] = 1.0;
    scored += 1.0;
  }
  for (double& x : w) x /= std::max(scored, 1.0);
  const std::int64_t last = logits.dim() - 1;
  const Tensor index = unsqueeze(from_vector(t, target.shape()), last);
  const Tensor picked = squeeze(gather(log_softmax(logits, last), last, index), {last});
  return -sum(picked * from_vector(w, target.shape(), logits.dtype()));
}

}  // namespace ember::decoding
