/// \file
/// \brief selective_scan as one autograd node over the backend's chunked scan kernels, and
/// selective_scan_reference, the recurrence s_t = exp(Δ_t A) ⊙ s_{t−1} + Δ_t B_t x_t, y_t = C_t · s_t written
/// step by step with differentiable ops.
#include "layers/ssm/selective_scan.h"

#include <vector>

#include <fmt/format.h>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/backend.h"
#include "core/creation.h"
#include "core/ops.h"

namespace ember::nn {

namespace {

using Grads = std::vector<Tensor>;

/// Throws naming `op` unless x, delta are [Bt, T, E], A is [E, N] and B, C are [Bt, T, N], all Float32 or all
/// Float64 on one device.
void check_scan(const char* op, const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                const Tensor& C) {
  for (const Tensor* t : {&x, &delta, &A, &B, &C}) raw::check_defined(op, *t);
  const auto shapes = [&] {
    return fmt::format("x {}, delta {}, A {}, B {}, C {}", shape_str(x.shape()), shape_str(delta.shape()),
                       shape_str(A.shape()), shape_str(B.shape()), shape_str(C.shape()));
  };
  const bool ranks = x.dim() == 3 && A.dim() == 2 && B.dim() == 3;
  EMBER_CHECK(ranks && delta.shape() == x.shape() && A.shape()[0] == x.shape()[2] && B.shape()[0] == x.shape()[0] &&
                  B.shape()[1] == x.shape()[1] && B.shape()[2] == A.shape()[1] && C.shape() == B.shape(),
              fmt::format("{}: expected x, delta [Bt, T, E], A [E, N], B, C [Bt, T, N], got {}", op, shapes()));
  for (const Tensor* t : {&delta, &A, &B, &C})
    EMBER_CHECK(t->dtype() == x.dtype() && t->device() == x.device(),
                fmt::format("{}: every input must share x's dtype ({}) and device, got {}", op, dtype_name(x.dtype()),
                            shapes()));
  EMBER_CHECK(x.dtype() == DType::Float32 || x.dtype() == DType::Float64,
              fmt::format("{}: expected Float32 or Float64, got {}", op, dtype_name(x.dtype())));
}

}  // namespace

Tensor selective_scan(const Tensor& x_in, const Tensor& delta_in, const Tensor& A_in, const Tensor& B_in,
                      const Tensor& C_in, std::int64_t chunk) {
  const auto in = amp::autocast_all("selective_scan", {x_in, delta_in, A_in, B_in, C_in});
  const Tensor &x = in[0], &delta = in[1], &A = in[2], &B = in[3], &C = in[4];
  check_scan("selective_scan", x, delta, A, B, C);
  EMBER_CHECK(chunk >= 1, fmt::format("selective_scan: chunk must be >= 1, got {}", chunk));
  const std::int64_t Bt = x.shape()[0], T = x.shape()[1], E = x.shape()[2], N = A.shape()[1];
  const Tensor X = raw::contiguous(x), Dt = raw::contiguous(delta), Am = raw::contiguous(A);
  const Tensor Bm = raw::contiguous(B), Cm = raw::contiguous(C);
  Tensor y = empty({Bt, T, E}, x.dtype(), x.device());
  Tensor starts = empty({Bt, (T + chunk - 1) / chunk, E, N}, x.dtype(), x.device());
  backend_for(x.device()).selective_scan_forward(X, Dt, Am, Bm, Cm, chunk, y, starts);
  if (!needs_grad({x, delta, A, B, C})) return y;
  SavedTensor sx(X), sd(Dt), sa(Am), sb(Bm), sc(Cm), ss(starts);
  return record(y, "SelectiveScanBackward", {x, delta, A, B, C}, [=](const Grads& g) {
    const char* op = "SelectiveScanBackward";
    const Tensor Xs = sx.get(op), G = raw::contiguous(g[0]);
    Tensor dx = empty(Xs.shape(), Xs.dtype(), Xs.device()), ddelta = empty(Xs.shape(), Xs.dtype(), Xs.device());
    Tensor dA = empty({E, N}, Xs.dtype(), Xs.device());
    Tensor dB = empty({Bt, T, N}, Xs.dtype(), Xs.device()), dC = empty({Bt, T, N}, Xs.dtype(), Xs.device());
    backend_for(Xs.device())
        .selective_scan_backward(Xs, sd.get(op), sa.get(op), sb.get(op), sc.get(op), ss.get(op), G, chunk, dx, ddelta,
                                 dA, dB, dC);
    return Grads{dx, ddelta, dA, dB, dC};
  });
}

Tensor selective_scan_reference(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& B,
                                const Tensor& C) {
  check_scan("selective_scan_reference", x, delta, A, B, C);
  const std::int64_t Bt = x.shape()[0], T = x.shape()[1], E = x.shape()[2], N = A.shape()[1];
  if (T == 0) return zeros({Bt, 0, E}, x.dtype(), x.device());
  Tensor s = zeros({Bt, E, N}, x.dtype(), x.device());  // s_{−1} = 0
  std::vector<Tensor> ys;
  for (std::int64_t t = 0; t < T; ++t) {
    const Tensor d = unsqueeze(select(delta, 1, t), 2);                                    // Δ_t: [Bt, E, 1]
    const Tensor dBx = d * unsqueeze(select(x, 1, t), 2) * unsqueeze(select(B, 1, t), 1);  // Δ_t x_t B_t: [Bt, E, N]
    s = exp(d * A) * s + dBx;
    ys.push_back(sum(s * unsqueeze(select(C, 1, t), 1), {2}));  // C_t · s_t: [Bt, E]
  }
  return stack(ys, 1);
}

}  // namespace ember::nn
