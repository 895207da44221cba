/// \file
/// \brief `ember bench`: times training steps (forward, cross-entropy, backward, AdamW) of a LanguageModel on
/// random tokens and prints ms per step, tokens/s and the model-FLOP rate. The defaults are the reference
/// model of bench/RESULTS.md; --mixer compares token mixers on the same model, --amp the precisions (autocast, with
/// loss scaling for fp16).
#include <chrono>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/run_config.h"
#include "core/creation.h"
#include "core/threads.h"
#include "layers/mixer.h"
#include "layers/models/language_model.h"
#include "train/loss.h"
#include "train/amp.h"
#include "train/optim.h"

namespace ember::cli {

namespace {

struct BenchFlags {
  nn::LanguageModelConfig model;
  std::string mixer = "softmax";
  std::vector<std::int64_t> seqs = {128, 512, 1024};
  std::int64_t tokens = 2048;
  std::int64_t steps = 5;
  int threads = 0;
  std::string amp = "off";
};

/// Median seconds of `steps` training steps at sequence length T (after one warm-up step).
double step_seconds(const BenchFlags& f, std::int64_t T) {
  nn::LanguageModelConfig c = f.model;
  c.max_len = T;
  c.mixers = {f.mixer};
  nn::LanguageModel model(c);
  optim::AdamW opt(optim::decay_groups(model.named_parameters(), 1e-3, 0.01));
  const std::int64_t B = std::max<std::int64_t>(1, f.tokens / T);
  Generator gen(1);
  const Tensor ids = randint(0, c.vocab_size, {B, T}, DType::Int64, Device::cpu(), &gen);
  const Tensor targets = randint(0, c.vocab_size, {B, T}, DType::Int64, Device::cpu(), &gen);
  const DType low = amp_dtype(f.amp);
  amp::GradScalerConfig sc;
  sc.enabled = low == DType::Float16;
  amp::GradScaler scaler(sc);
  std::vector<double> times;
  for (std::int64_t i = 0; i <= f.steps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    Tensor loss;
    {
      const amp::Autocast region(low == DType::Float32 ? DType::Float16 : low, low != DType::Float32);
      loss = cross_entropy(model.forward(ids), targets);
    }
    scaler.scale(loss).backward();
    scaler.step(opt);
    scaler.update();
    if (i > 0) times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int run_bench(const BenchFlags& f) {
  if (f.threads > 0) set_num_threads(f.threads);
  nn::make_mixer(f.mixer, nn::MixerConfig{});  // rejects an unknown name before any work
  fmt::print("ember bench: {} mixer, d_model {}, {} layers, {} heads, vocab {}, {} tokens a batch, {} threads, amp {}\n",
             f.mixer, f.model.d_model, f.model.n_layers, f.model.n_heads, f.model.vocab_size, f.tokens,
             get_num_threads(), f.amp);
  fmt::print("| T | batch | ms/step | tokens/s | model GFLOP/s |\n|---|---|---|---|---|\n");
  for (std::int64_t T : f.seqs) {
    const std::int64_t B = std::max<std::int64_t>(1, f.tokens / T);
    const double s = step_seconds(f, T);
    nn::LanguageModelConfig c = f.model;
    c.max_len = T;
    c.mixers = {f.mixer};
    const double flops = nn::LanguageModel(c).training_flops(B, T);
    fmt::print("| {} | {} | {:.1f} | {:.0f} | {:.1f} |\n", T, B, 1e3 * s, static_cast<double>(B * T) / s,
               flops / s * 1e-9);
  }
  return 0;
}

}  // namespace

Command add_bench_command(CLI::App& sub) {
  auto f = std::make_shared<BenchFlags>();
  sub.add_option("--mixer", f->mixer, "Token mixer of every layer")->capture_default_str();
  sub.add_option("--layers", f->model.n_layers, "Blocks")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--dim", f->model.d_model, "d_model")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--heads", f->model.n_heads, "Attention heads")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--seq", f->seqs, "Sequence lengths to time")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--tokens", f->tokens, "Tokens a batch (batch = tokens / T)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--steps", f->steps, "Timed steps per length (the median is shown)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--threads", f->threads, "Threads (default: all)")->check(CLI::PositiveNumber);
  sub.add_option("--amp", f->amp, "Precision: off, fp16 (autocast with loss scaling) or bf16")
      ->check(CLI::IsMember({"off", "fp16", "bf16"}))
      ->capture_default_str();
  return [f]() { return run_bench(*f); };
}

}  // namespace ember::cli
