/// \file
/// \brief The autocast table and the per-thread region state.
#include "autograd/autocast.h"

#include <algorithm>

#include "core/error.h"

namespace ember::amp {

namespace {

thread_local bool t_enabled = false;
thread_local DType t_dtype = DType::Float16;

constexpr std::string_view kProduct = "a matrix product: low-precision inputs, Float32 accumulation";
constexpr std::string_view kRange = "exponentials and logarithms leave the 16-bit range or lose their precision";
constexpr std::string_view kSum = "a sum over many terms: 11 bits lose the small ones";
constexpr std::string_view kNorm = "a mean and variance over the row";
constexpr std::string_view kLoss = "losses are small differences of large logits";
constexpr std::string_view kScan = "a recurrence or FFT accumulating over the whole sequence";
constexpr std::string_view kMix = "joins tensors that may differ in dtype";

const Rule* find(std::string_view op) {
  const auto& r = rules();
  const auto it = std::find_if(r.begin(), r.end(), [&](const Rule& x) { return x.op == op; });
  return it == r.end() ? nullptr : &*it;
}

DType widest(const std::vector<Tensor>& xs) {
  DType w = DType::Bool;
  bool any = false;
  for (const Tensor& x : xs)
    if (x.defined() && is_floating(x.dtype())) {
      w = any ? promote_types(w, x.dtype()) : x.dtype();
      any = true;
    }
  return w;
}

Tensor cast_to(const Tensor& x, DType dtype) { return x.dtype() == dtype ? x : x.to(dtype); }

Tensor apply(Cast cast, const Tensor& x) {
  if (!x.defined() || !is_floating(x.dtype())) return x;
  if (cast == Cast::Lower) return x.dtype() == DType::Float32 ? cast_to(x, t_dtype) : x;
  const bool low = x.dtype() == DType::Float16 || x.dtype() == DType::BFloat16;
  return low ? cast_to(x, DType::Float32) : x;
}

}  // namespace

const std::vector<Rule>& rules() {
  static const std::vector<Rule> table = {
      {"matmul", Cast::Lower, kProduct},
      {"linear", Cast::Lower, kProduct},
      {"flash_attention", Cast::Lower, kProduct},
      {"block_sparse_attention", Cast::Lower, kProduct},
      {"exp", Cast::Float32, kRange},
      {"expm1", Cast::Float32, kRange},
      {"log", Cast::Float32, kRange},
      {"log1p", Cast::Float32, kRange},
      {"pow", Cast::Float32, kRange},
      {"rsqrt", Cast::Float32, kRange},
      {"softplus", Cast::Float32, kRange},
      {"softmax", Cast::Float32, kRange},
      {"log_softmax", Cast::Float32, kRange},
      {"attention_softmax", Cast::Float32, kRange},
      {"logsumexp", Cast::Float32, kRange},
      {"sum", Cast::Float32, kSum},
      {"mean", Cast::Float32, kSum},
      {"cumsum", Cast::Float32, kSum},
      {"cumprod", Cast::Float32, kSum},
      {"norm", Cast::Float32, kSum},
      {"layer_norm", Cast::Float32, kNorm},
      {"rms_norm", Cast::Float32, kNorm},
      {"cross_entropy", Cast::Float32, kLoss},
      {"mse_loss", Cast::Float32, kLoss},
      {"rfft", Cast::Float32, kScan},
      {"irfft", Cast::Float32, kScan},
      {"fft_conv", Cast::Float32, kScan},
      {"selective_scan", Cast::Float32, kScan},
      {"wkv", Cast::Float32, kScan},
      {"cat", Cast::Widest, kMix},
      {"stack", Cast::Widest, kMix},
      {"scatter_add", Cast::Widest, kMix},
  };
  return table;
}

std::string_view cast_name(Cast cast) {
  switch (cast) {
    case Cast::Lower: return "lower";
    case Cast::Float32: return "float32";
    case Cast::Widest: return "widest";
  }
  return "";
}

Autocast::Autocast(DType dtype, bool enabled) : prev_enabled_(t_enabled), prev_dtype_(t_dtype) {
  EMBER_CHECK(dtype == DType::Float16 || dtype == DType::BFloat16,
              "Autocast: the dtype must be float16 or bfloat16, got " + dtype_name(dtype));
  t_enabled = enabled;
  if (enabled) t_dtype = dtype;
}

Autocast::~Autocast() {
  t_enabled = prev_enabled_;
  t_dtype = prev_dtype_;
}

bool is_enabled() { return t_enabled; }

DType dtype() { return t_dtype; }

Tensor autocast(std::string_view op, const Tensor& x) {
  if (!t_enabled) return x;
  const Rule* rule = find(op);
  if (!rule) return x;
  EMBER_CHECK(rule->cast != Cast::Widest,
              "autocast: " + std::string(op) + " casts to the widest of its inputs; call autocast_all");
  return apply(rule->cast, x);
}

std::vector<Tensor> autocast_all(std::string_view op, std::vector<Tensor> xs) {
  if (!t_enabled) return xs;
  const Rule* rule = find(op);
  if (!rule) return xs;
  if (rule->cast == Cast::Widest) {
    const DType w = widest(xs);
    for (Tensor& x : xs)
      if (x.defined() && is_floating(x.dtype())) x = cast_to(x, w);
    return xs;
  }
  for (Tensor& x : xs) x = apply(rule->cast, x);
  return xs;
}

}  // namespace ember::amp
