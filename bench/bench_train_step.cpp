/// \file
/// \brief One training step of the reference model (vocab 64, d_model 128, 4 heads, 2 layers, pre-norm
/// LayerNorm, 4x GELU MLP, learned positions, causal softmax attention, AdamW): forward, cross-entropy,
/// backward and the optimizer step, at 2048 tokens a batch (T = 128, 512, 1024).
///
/// Reports ms per step and the model-FLOP rate: 6 N per token for the weights (N = parameters outside the
/// embeddings' lookups, counting the head) plus 12 L T D per token for the attention scores and mixing,
/// as in the PaLM appendix. bench/compare_pytorch.py runs the same model in PyTorch and prints the ratio.
#include <benchmark/benchmark.h>

#include "ember.h"
#include "layers/models/language_model.h"
#include "train/loss.h"
#include "train/optim.h"

namespace {

using namespace ember;

nn::LanguageModelConfig reference_config(std::int64_t T) {
  nn::LanguageModelConfig c;
  c.vocab_size = 64;
  c.d_model = 128;
  c.n_heads = 4;
  c.n_layers = 2;
  c.max_len = T;
  return c;
}

double model_flops_per_step(const nn::LanguageModel& m, std::int64_t B, std::int64_t T) {
  const auto& c = m.config();
  double n = static_cast<double>(m.num_parameters());
  n -= static_cast<double>(c.vocab_size * c.d_model + c.max_len * c.d_model);  // lookups, not products
  const double tokens = static_cast<double>(B * T);
  return tokens * (6.0 * n + 12.0 * static_cast<double>(c.n_layers * T * c.d_model));
}

void BM_train_step(benchmark::State& state) {
  const std::int64_t T = state.range(0), B = 2048 / T;
  set_num_threads(static_cast<int>(state.range(1)));
  nn::LanguageModel model(reference_config(T));
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
  state.counters["model_GFLOPS"] = benchmark::Counter(model_flops_per_step(model, B, T) * 1e-9 *
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
