/// \file
/// \brief One training step of the reference model (vocab 64, d_model 128, 4 heads, 2 layers, pre-norm
/// LayerNorm, 4x GELU MLP, learned positions, causal softmax attention, AdamW): forward, cross-entropy,
/// backward and the optimizer step, at 2048 tokens a batch (T = 128, 512, 1024).
///
/// Reports ms per step and the model-FLOP rate (LanguageModel::training_flops). bench/compare_pytorch.py runs
/// the same model in PyTorch and prints the ratio.
#include <benchmark/benchmark.h>

#include "ember.h"
#include "layers/models/language_model.h"
#include "train/loss.h"
#include "train/optim.h"

namespace {

using namespace ember;

void BM_train_step(benchmark::State& state) {
  const std::int64_t T = state.range(0), B = 2048 / T;
  set_num_threads(static_cast<int>(state.range(1)));
  nn::LanguageModelConfig config;  // the defaults are the reference model
  config.max_len = T;
  nn::LanguageModel model(config);
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), 1e-3, 0.01));
  Generator gen(1);
  const Tensor ids = randint(0, 64, {B, T}, DType::Int64, Device::cpu(), &gen);
  const Tensor targets = randint(0, 64, {B, T}, DType::Int64, Device::cpu(), &gen);
  for (auto _ : state) {
    opt.zero_grad();
    const Tensor loss = cross_entropy(model.forward(ids), targets);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item());
  }
  state.counters["model_GFLOPS"] = benchmark::Counter(model.training_flops(B, T) * 1e-9 *
                                                          static_cast<double>(state.iterations()),
                                                      benchmark::Counter::kIsRate);
}

BENCHMARK(BM_train_step)
    ->ArgNames({"T", "threads"})
    ->ArgsProduct({{128, 512, 1024}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
