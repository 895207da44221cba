/// \file
/// \brief Float32 elementwise add: ember::add beside a plain C++ loop in one binary.
///
/// Two cases, both memory-bound: out = a + b for two 16M-element tensors, and the broadcast
/// out = x + v with x: [4096, 4096], v: [4096] (a bias add). The references are a single-threaded
/// loop and an OpenMP `parallel for` loop, both writing into a preallocated output; ember allocates
/// its output on every call, as a user's code would. Bytes counted: what the loop must read and
/// write (3 x 4 bytes per element for a + b; 2 x 4 per element plus v for the broadcast).
#include <omp.h>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ember.h"

namespace {

constexpr std::int64_t kRows = 4096, kCols = 4096, kN = kRows * kCols;  // 16M floats = 64 MiB

void counters(benchmark::State& state, double bytes_per_iter) {
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes_per_iter) * state.iterations());
  state.SetItemsProcessed(kN * state.iterations());
}

// --- a + b, both [16M] ---

void bm_add_ember(benchmark::State& state, int threads) {
  ember::set_num_threads(threads);
  const ember::Tensor a = ember::randn({kN}), b = ember::randn({kN});
  for (auto _ : state) {
    ember::Tensor out = ember::add(a, b);  // allocates its output: that is part of the cost
    benchmark::DoNotOptimize(out.raw_data());
    benchmark::ClobberMemory();
  }
  counters(state, 3.0 * 4 * kN);
}

void add_loop(const float* __restrict a, const float* __restrict b, float* __restrict o, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) o[i] = a[i] + b[i];
}

void add_loop_omp(const float* __restrict a, const float* __restrict b, float* __restrict o, std::int64_t n) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) o[i] = a[i] + b[i];
}

void bm_add_loop(benchmark::State& state, int threads, bool omp) {
  ember::set_num_threads(threads);
  const ember::Tensor a = ember::randn({kN}), b = ember::randn({kN});
  std::vector<float> out(kN);
  for (auto _ : state) {
    (omp ? add_loop_omp : add_loop)(a.data_ptr<float>(), b.data_ptr<float>(), out.data(), kN);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  counters(state, 3.0 * 4 * kN);
}

// --- x + v, x: [4096, 4096], v: [4096] ---

void bm_bias_ember(benchmark::State& state, int threads) {
  ember::set_num_threads(threads);
  const ember::Tensor x = ember::randn({kRows, kCols}), v = ember::randn({kCols});
  for (auto _ : state) {
    ember::Tensor out = ember::add(x, v);
    benchmark::DoNotOptimize(out.raw_data());
    benchmark::ClobberMemory();
  }
  counters(state, 2.0 * 4 * kN + 4 * kCols);
}

void bias_loop(const float* __restrict x, const float* __restrict v, float* __restrict o) {
  for (std::int64_t r = 0; r < kRows; ++r)
    for (std::int64_t c = 0; c < kCols; ++c) o[r * kCols + c] = x[r * kCols + c] + v[c];
}

void bias_loop_omp(const float* __restrict x, const float* __restrict v, float* __restrict o) {
#pragma omp parallel for schedule(static)
  for (std::int64_t r = 0; r < kRows; ++r)
    for (std::int64_t c = 0; c < kCols; ++c) o[r * kCols + c] = x[r * kCols + c] + v[c];
}

void bm_bias_loop(benchmark::State& state, int threads, bool omp) {
  ember::set_num_threads(threads);
  const ember::Tensor x = ember::randn({kRows, kCols}), v = ember::randn({kCols});
  std::vector<float> out(kN);
  for (auto _ : state) {
    (omp ? bias_loop_omp : bias_loop)(x.data_ptr<float>(), v.data_ptr<float>(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  counters(state, 2.0 * 4 * kN + 4 * kCols);
}

/// ember and the loop must agree before either is timed.
bool check() {
  const ember::Tensor a = ember::randn({kRows, kCols}), b = ember::randn({kRows, kCols}), v = ember::randn({kCols});
  std::vector<float> want(kN);
  bool ok = true;
  add_loop(a.data_ptr<float>(), b.data_ptr<float>(), want.data(), kN);
  ok = ok && ember::add(a, b).to_vector<float>() == want;
  bias_loop(a.data_ptr<float>(), v.data_ptr<float>(), want.data());
  ok = ok && ember::add(a, v).to_vector<float>() == want;
  if (!ok) std::fprintf(stderr, "bench_elementwise: ember::add disagrees with the loop\n");
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  if (!check()) return 1;
  for (int t : {1, 2}) {
    const std::string s = "/threads:" + std::to_string(t);
    benchmark::RegisterBenchmark(("add/ember" + s).c_str(), bm_add_ember, t)->UseRealTime();
    benchmark::RegisterBenchmark(("add/loop" + s).c_str(), bm_add_loop, t, false)->UseRealTime();
    benchmark::RegisterBenchmark(("add/loop_omp" + s).c_str(), bm_add_loop, t, true)->UseRealTime();
    benchmark::RegisterBenchmark(("bias_add/ember" + s).c_str(), bm_bias_ember, t)->UseRealTime();
    benchmark::RegisterBenchmark(("bias_add/loop" + s).c_str(), bm_bias_loop, t, false)->UseRealTime();
    benchmark::RegisterBenchmark(("bias_add/loop_omp" + s).c_str(), bm_bias_loop, t, true)->UseRealTime();
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
