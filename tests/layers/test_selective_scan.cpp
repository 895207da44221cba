/// \file
/// \brief nn::selective_scan (technique notes §6) against independent computations: the chunked parallel scan against
/// the recurrence s_t = exp(Δ_t A) ⊙ s_{t−1} + Δ_t B_t x_t, y_t = C_t · s_t as a naive loop in double (chunk 1, 3, 64,
/// ≥ T, T not a multiple of the chunk; oracle 4); its gradients against those autograd derives from
/// selective_scan_reference, and Float64 gradcheck; with Δ, B, C constant in time, the causal convolution with
/// K_ℓ = Σ_n C_n Δ B_n e^{ΔA_n ℓ} (oracle 2); bad shapes, dtypes and chunks throw ember::Error naming the op.
#include <array>
#include <cmath>

#include "layer_helpers.h"
#include "layers/ssm/selective_scan.h"

using namespace ember;
using namespace ember::test;
using i64 = std::int64_t;
using Vec = std::vector<double>;

namespace {

/// Random scan inputs: x, B, C ~ N(0, 1); Δ = softplus(N(−1, 1)) > 0; A = −exp(N(0, 0.5²)) < 0.
struct ScanInputs {
  Tensor x, delta, A, B, C;
  i64 Bt, T, E, N;
  ScanInputs(i64 Bt_, i64 T_, i64 E_, i64 N_, std::uint64_t seed, DType dtype = DType::Float64)
      : x(normal({Bt_, T_, E_}, seed, dtype)),
        delta(softplus(normal({Bt_, T_, E_}, seed + 1, dtype) - 1.0)),
        A(-exp(normal({E_, N_}, seed + 2, dtype, 0.5))),
        B(normal({Bt_, T_, N_}, seed + 3, dtype)),
        C(normal({Bt_, T_, N_}, seed + 4, dtype)),
        Bt(Bt_),
        T(T_),
        E(E_),
        N(N_) {}
  /// The five inputs as fresh leaves that require grad.
  std::vector<Tensor> leaves() const { return {leaf_of(x), leaf_of(delta), leaf_of(A), leaf_of(B), leaf_of(C)}; }
};

/// y [Bt][T][E] of the recurrence by loops in double.
Vec naive_scan(const ScanInputs& in) {
  const Vec x = in.x.to_vector<double>(), d = in.delta.to_vector<double>(), A = in.A.to_vector<double>();
  const Vec B = in.B.to_vector<double>(), C = in.C.to_vector<double>();
  Vec y(x.size());
  for (i64 b = 0; b < in.Bt; ++b)
    for (i64 c = 0; c < in.E; ++c) {
      Vec s(in.N, 0.0);
      for (i64 t = 0; t < in.T; ++t) {
        const i64 i = (b * in.T + t) * in.E + c, row = (b * in.T + t) * in.N;
        double yt = 0.0;
        for (i64 n = 0; n < in.N; ++n) {
          s[n] = std::exp(d[i] * A[c * in.N + n]) * s[n] + d[i] * B[row + n] * x[i];
          yt += C[row + n] * s[n];
        }
        y[i] = yt;
      }
    }
  return y;
}

/// Largest |a_i − b_i| / (1 + |b_i|).
double max_rel_diff(const Vec& a, const Vec& b) {
  REQUIRE(a.size() == b.size());
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]) / (1.0 + std::abs(b[i])));
  return m;
}

/// The gradients of sum(f(inputs) ⊙ w) with respect to the five inputs, w a fixed N(0, 1) weighting.
std::vector<Tensor> grads_of(const std::function<Tensor(const std::vector<Tensor>&)>& f, const ScanInputs& in) {
  const std::vector<Tensor> leaves = in.leaves();
  const Tensor y = f(leaves);
  sum(y * normal(y.shape(), 99)).backward();
  std::vector<Tensor> g;
  for (const Tensor& l : leaves) g.push_back(l.grad());
  return g;
}

}  // namespace

TEST_CASE(
    "selective_scan: the chunked scan equals the sequential loop in double (chunk 1, 3, 64, >= T; f64 1e-12, f32 "
    "1e-5)") {
  for (i64 T : {37, 150}) {
    const ScanInputs in(2, T, 3, 5, 1);
    const ScanInputs in32(2, T, 3, 5, 1, DType::Float32);
    const Vec expected = naive_scan(in), expected32 = naive_scan(in32);
    for (i64 chunk : {i64{1}, i64{3}, i64{64}, T, T + 5}) {
      CAPTURE(T);
      CAPTURE(chunk);
      const Tensor y = nn::selective_scan(in.x, in.delta, in.A, in.B, in.C, chunk);
      CHECK(y.shape() == Shape{2, T, 3});
      const double err = max_rel_diff(y.to_vector<double>(), expected);
      const double err32 = max_rel_diff(
          nn::selective_scan(in32.x, in32.delta, in32.A, in32.B, in32.C, chunk).to_vector<double>(), expected32);
      MESSAGE("T " << T << ", chunk " << chunk << ": f64 " << err << ", f32 " << err32);
      CHECK(err < 1e-12);
      CHECK(err32 < 1e-5);
    }
  }
}

TEST_CASE("selective_scan: the sequential reference built from autograd ops equals the loop (f64 1e-12)") {
  const ScanInputs in(2, 9, 3, 4, 5);
  CHECK(max_rel_diff(nn::selective_scan_reference(in.x, in.delta, in.A, in.B, in.C).to_vector<double>(),
                     naive_scan(in)) < 1e-12);
}

TEST_CASE(
    "selective_scan: gradients equal those of selective_scan_reference (f64 1e-10, chunk 1, 3, 64, threaded sizes)") {
  // The second size is past the kernels' parallel threshold, so the threaded phases and the per-thread dA run.
  for (const auto& [T, E, N] : {std::array<i64, 3>{23, 3, 4}, std::array<i64, 3>{300, 16, 8}}) {
    const ScanInputs in(2, T, E, N, 7);
    const std::vector<Tensor> expected =
        grads_of([](const auto& v) { return nn::selective_scan_reference(v[0], v[1], v[2], v[3], v[4]); }, in);
    for (i64 chunk : {1, 3, 64}) {
      CAPTURE(T);
      CAPTURE(chunk);
      const std::vector<Tensor> got =
          grads_of([chunk](const auto& v) { return nn::selective_scan(v[0], v[1], v[2], v[3], v[4], chunk); }, in);
      for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        const double err = max_rel_diff(got[i].to_vector<double>(), expected[i].to_vector<double>());
        MESSAGE("T " << T << ", chunk " << chunk << ", input " << i << " (x, delta, A, B, C): " << err);
        CHECK(err < 1e-10);
      }
    }
  }
}

TEST_CASE("selective_scan: Float64 gradcheck through x, delta, A, B and C (chunk 3, T = 7)") {
  const ScanInputs in(2, 7, 2, 3, 11);
  const GradcheckResult r = gradcheck([](const auto& v) { return nn::selective_scan(v[0], v[1], v[2], v[3], v[4], 3); },
                                      in.leaves(), 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE(
    "selective_scan: Delta, B, C constant in time give the causal convolution with K_l = sum_n C_n Delta B_n exp(Delta "
    "A_n l)") {
  const i64 Bt = 2, T = 40, E = 3, N = 6;
  const ScanInputs in(Bt, T, E, N, 13);
  // Δ per (b, c) and B, C per b, repeated over time.
  const Tensor delta = expand(narrow(in.delta, 1, 0, 1), {Bt, T, E});
  const Tensor B = expand(narrow(in.B, 1, 0, 1), {Bt, T, N}), C = expand(narrow(in.C, 1, 0, 1), {Bt, T, N});
  const Vec x = in.x.to_vector<double>(), d = delta.to_vector<double>(), A = in.A.to_vector<double>();
  const Vec b = B.to_vector<double>(), cv = C.to_vector<double>();
  Vec expected;
  for (i64 bb = 0; bb < Bt; ++bb)
    for (i64 t = 0; t < T; ++t)
      for (i64 c = 0; c < E; ++c) {
        const double dc = d[bb * T * E + c];
        double y = 0.0;
        for (i64 l = 0; l <= t; ++l) {
          double K = 0.0;
          for (i64 n = 0; n < N; ++n)
            K += cv[bb * T * N + n] * dc * b[bb * T * N + n] * std::exp(dc * A[c * N + n] * static_cast<double>(l));
          y += K * x[(bb * T + t - l) * E + c];
        }
        expected.push_back(y);
      }
  for (i64 chunk : {7, 64}) {
    const double err = max_rel_diff(nn::selective_scan(in.x, delta, in.A, B, C, chunk).to_vector<double>(), expected);
    MESSAGE("LTI scan vs convolution, chunk " << chunk << ": " << err);
    CHECK(err < 1e-12);
  }
}

TEST_CASE("selective_scan: bad shapes, dtypes and chunks throw ember::Error naming selective_scan") {
  const ScanInputs in(2, 5, 3, 4, 17);
  const auto scan = [&](const Tensor& x, const Tensor& d, const Tensor& A, const Tensor& B, const Tensor& C) {
    return nn::selective_scan(x, d, A, B, C);
  };
  const char* expected = "selective_scan: expected x, delta [Bt, T, E], A [E, N], B, C [Bt, T, N], got x [2, 5, 3]";
  CHECK_THROWS_EMBER(scan(in.x, zeros({2, 5, 2}, DType::Float64), in.A, in.B, in.C), expected);
  CHECK_THROWS_EMBER(scan(in.x, in.delta, zeros({2, 4}, DType::Float64), in.B, in.C), "A [2, 4]");
  CHECK_THROWS_EMBER(scan(in.x, in.delta, in.A, zeros({2, 5, 3}, DType::Float64), in.C), "B [2, 5, 3]");
  CHECK_THROWS_EMBER(scan(in.x, in.delta, in.A, in.B, zeros({1, 5, 4}, DType::Float64)), "C [1, 5, 4]");
  CHECK_THROWS_EMBER(scan(zeros({5, 3}, DType::Float64), in.delta, in.A, in.B, in.C), "got x [5, 3]");
  CHECK_THROWS_EMBER(scan(in.x, in.delta.to(DType::Float32), in.A, in.B, in.C), "selective_scan: every input");
  CHECK_THROWS_EMBER(nn::selective_scan(in.x, in.delta, in.A, in.B, in.C, 0), "selective_scan: chunk must be >= 1");
  const auto h = [](const Tensor& t) { return t.to(DType::Float16); };
  CHECK_THROWS_EMBER(scan(h(in.x), h(in.delta), h(in.A), h(in.B), h(in.C)),
                     "selective_scan: expected Float32 or Float64");
  CHECK_THROWS_EMBER(nn::selective_scan_reference(in.x, in.delta, in.A, in.B, zeros({2, 5})),
                     "selective_scan_reference: expected");
}
