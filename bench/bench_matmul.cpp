/// \file
/// \brief Float32 matrix product: ember::matmul beside raw Eigen and raw OpenBLAS in one binary.
///
/// C[b] = A[b] @ op(B[b]) for square sizes, a transformer projection, a batch of attention-head
/// products and a transposed operand (B^T as a transpose view). Each case runs at 1 and 2 threads
/// (ember::set_num_threads, Eigen::setNbThreads and openblas_set_num_threads together) and reports
/// GFLOP/s = 2 * batch * M * N * K per second of wall time. ember allocates its output on every call,
/// as a user's code would; Eigen and OpenBLAS write into a preallocated output. Batched references
/// run one product per thread with an OpenMP loop (the library runs single-threaded inside it), which
/// is the best a user of either library would write.
#include <cblas.h>
#include <omp.h>

#include <Eigen/Core>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ember.h"

namespace {

/// One benchmark shape (names give M x N x K): `batch` products of [M, K] @ [K, N]; with trans_b, B is stored [N, K] and
/// the product uses its transpose view.
struct Case {
  const char* name;
  std::int64_t batch, M, N, K;
  bool trans_b;
};

const Case kCases[] = {
    {"square256", 1, 256, 256, 256, false},
    {"square512", 1, 512, 512, 512, false},
    {"square1024", 1, 1024, 1024, 1024, false},
    {"square2048", 1, 2048, 2048, 2048, false},
    {"proj_2048x512x128", 1, 2048, 512, 128, false},      // [2048, 128] @ [128, 512]
    {"batch64_128x128x32", 64, 128, 128, 32, false},      // 64 x ([128, 32] @ [32, 128])
    {"transB_1024", 1, 1024, 1024, 1024, true},           // [1024, 1024] @ [1024, 1024]^T
    {"batch64_transB_128x128x32", 64, 128, 128, 32, true},  // 64 x ([128, 32] @ [128, 32]^T), as Q @ K^T
};

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using CMap = Eigen::Map<const RowMat>;
using MMap = Eigen::Map<RowMat>;

/// Every thread setting at once, so no library runs with a stale count.
void use_threads(int t) {
  ember::set_num_threads(t);
  Eigen::setNbThreads(t);
  openblas_set_num_threads(t);
}

/// The operands of one case as ember tensors (Eigen and OpenBLAS read the same memory).
struct Operands {
  ember::Tensor a, b;  // a: [batch, M, K]; b: [batch, K, N] or [batch, N, K] when trans_b
  explicit Operands(const Case& c) {
    a = ember::randn({c.batch, c.M, c.K});
    b = c.trans_b ? ember::randn({c.batch, c.N, c.K}) : ember::randn({c.batch, c.K, c.N});
    if (c.batch == 1) {  // plain 2-D operands, as a user would pass them
      a = ember::view(a, {c.M, c.K});
      b = ember::view(b, {b.shape()[1], b.shape()[2]});
    }
  }
  /// The right operand as ember sees it: b, or its transpose view.
  ember::Tensor rhs() const { return b.dim() == 3 ? ember::transpose(b, 1, 2) : ember::transpose(b, 0, 1); }
};

void set_flops(benchmark::State& state, const Case& c) {
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * c.batch * c.M * c.N * c.K * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void bm_ember(benchmark::State& state, const Case& c, int threads) {
  use_threads(threads);
  Operands ops(c);
  const ember::Tensor rhs = c.trans_b ? ops.rhs() : ops.b;
  for (auto _ : state) {
    ember::Tensor out = ember::matmul(ops.a, rhs);  // allocates its output: that is part of the cost
    benchmark::DoNotOptimize(out.raw_data());
    benchmark::ClobberMemory();
  }
  set_flops(state, c);
}

/// One product through Eigen: out = a @ op(b), all row-major.
void eigen_one(const Case& c, const float* a, const float* b, float* out) {
  CMap A(a, c.M, c.K);
  MMap C(out, c.M, c.N);
  if (c.trans_b)
    C.noalias() = A * CMap(b, c.N, c.K).transpose();
  else
    C.noalias() = A * CMap(b, c.K, c.N);
}

void blas_one(const Case& c, const float* a, const float* b, float* out) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, c.trans_b ? CblasTrans : CblasNoTrans, c.M, c.N, c.K, 1.0f, a, c.K, b,
              c.trans_b ? c.K : c.N, 0.0f, out, c.N);
}

/// Runs `one` over the batch: one large product uses the library's threads, a batch one per thread.
template <class One>
void run_batch(const Case& c, const float* a, const float* b, float* out, One one) {
  const std::int64_t sa = c.M * c.K, sb = c.K * c.N, so = c.M * c.N;
  if (c.batch == 1) {
    one(c, a, b, out);
    return;
  }
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < c.batch; ++i) one(c, a + i * sa, b + i * sb, out + i * so);
}

template <class One>
void bm_reference(benchmark::State& state, const Case& c, int threads, One one) {
  use_threads(threads);
  Operands ops(c);
  std::vector<float> out(c.batch * c.M * c.N);
  const float* a = ops.a.data_ptr<float>();
  const float* b = ops.b.data_ptr<float>();
  for (auto _ : state) {
    run_batch(c, a, b, out.data(), one);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_flops(state, c);
}

/// ember, Eigen and OpenBLAS must agree before any of them is timed.
bool check(const Case& c) {
  use_threads(2);
  Operands ops(c);
  const ember::Tensor got = ember::matmul(ops.a, c.trans_b ? ops.rhs() : ops.b).contiguous();
  std::vector<float> e(c.batch * c.M * c.N), o(e.size());
  run_batch(c, ops.a.data_ptr<float>(), ops.b.data_ptr<float>(), e.data(), eigen_one);
  run_batch(c, ops.a.data_ptr<float>(), ops.b.data_ptr<float>(), o.data(), blas_one);
  const float* g = got.data_ptr<float>();
  double worst = 0;
  for (std::size_t i = 0; i < e.size(); ++i)
    worst = std::max({worst, std::abs(double(g[i]) - o[i]), std::abs(double(e[i]) - o[i])});
  const double tol = 1e-4 * std::sqrt(double(c.K)) * 4;  // sums of K products of N(0,1) values
  if (worst > tol) std::fprintf(stderr, "bench_matmul: %s disagrees by %g (tolerance %g)\n", c.name, worst, tol);
  return worst <= tol;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  for (const Case& c : kCases)
    if (!check(c)) return 1;
  for (const Case& c : kCases)
    for (int t : {1, 2}) {
      const std::string suffix = std::string(c.name) + "/threads:" + std::to_string(t);
      benchmark::RegisterBenchmark(("matmul/ember/" + suffix).c_str(), bm_ember, c, t)->UseRealTime();
      benchmark::RegisterBenchmark(("matmul/eigen/" + suffix).c_str(),
                                   [](benchmark::State& s, const Case& cc, int tt) { bm_reference(s, cc, tt, eigen_one); },
                                   c, t)
          ->UseRealTime();
      benchmark::RegisterBenchmark(("matmul/openblas/" + suffix).c_str(),
                                   [](benchmark::State& s, const Case& cc, int tt) { bm_reference(s, cc, tt, blas_one); },
                                   c, t)
          ->UseRealTime();
    }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
