// Tutorial 06: a tiny GPT. A decoder-only transformer (nn::LanguageModel) learns addition end to end:
// the task as characters, the model, AdamW with warmup and cosine decay, the train::Trainer loop with
// held-out evaluation and checkpoints, an exact resume from a checkpoint, and greedy generation on
// problems the model has never seen.
// Run: tutorial_06_tiny_gpt [--short] [--out DIR] [--seed N] [--steps N]. The page README.md next to this file explains
// each step.
#include <stdlib.h>  // mkdtemp (POSIX)

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "ember.h"
#include "layers/models/language_model.h"
#include "train/checkpoint.h"
#include "train/data/loader.h"
#include "train/data/tasks.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// The value after `flag` on the command line, or `fallback`.
std::string option(int argc, char** argv, const char* flag, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], flag) == 0) return argv[i + 1];
  return fallback;
}

// The tokens of a row of an [N, T] Int64 tensor, with kIgnoreIndex shown as '_'.
std::string show_row(const Tensor& t, std::int64_t row, const data::CharTokenizer& tok) {
  std::string s;
  for (std::int64_t id : select(t, 0, row).to_vector<std::int64_t>())
    s += id == data::kIgnoreIndex ? '_' : tok.decode(std::vector<std::int64_t>{id})[0];
  return s;
}

// A new directory under the system's temporary directory, removed with everything in it at the end.
struct TempDir {
  explicit TempDir(bool create) {
    if (!create) return;
    std::string pattern = (std::filesystem::temp_directory_path() / "ember_tutorial_06_XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw Error("cannot create a directory like " + pattern);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path.empty()) std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path path;
};

// Everything one training run needs.
struct Run {
  std::shared_ptr<nn::LanguageModel> model;
  std::shared_ptr<optim::AdamW> optimizer;
  std::unique_ptr<train::Trainer> trainer;
};

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  // Without --out the files go to a fresh temporary directory (so that two runs at once never share a
  // checkpoint), removed when the program ends.
  const std::string given_out = option(argc, argv, "--out", "");
  const TempDir temp(given_out.empty());
  const std::filesystem::path out_dir = given_out.empty() ? temp.path : std::filesystem::path(given_out);
  const std::uint64_t seed = std::strtoull(option(argc, argv, "--seed", "0").c_str(), nullptr, 10);
  // One thread: this model is so small that a second thread costs more in synchronisation than it saves,
  // and a fixed thread count makes every printed number the same on any machine (a parallel sum adds in
  // an order that depends on the number of threads, and float addition is not associative).
  set_num_threads(1);
  tutorial::Claims claims;
  const auto start = std::chrono::steady_clock::now();

  tutorial::section("1. The task: addition, one character at a time");
  data::AdditionConfig task_cfg;
  task_cfg.digits = quick ? 2 : 3;
  task_cfg.num_train = quick ? 4000 : 20000;
  task_cfg.num_held_out = quick ? 200 : 500;
  const data::TaskSplit split = data::addition_task(task_cfg, seed);
  const data::TaskData& task = split.train;
  const data::CharTokenizer& tok = task.tokenizer;
  std::printf("vocabulary: \"%s\" (%lld tokens); %lld training and %lld held-out problems of %lld digits\n",
              tok.alphabet().c_str(), static_cast<long long>(tok.vocab_size()), static_cast<long long>(task.size()),
              static_cast<long long>(split.held_out.size()), static_cast<long long>(task_cfg.digits));
  for (std::int64_t row = 0; row < 3; ++row)
    std::printf("  %-12s  input %s  target %s\n", task.format(row).c_str(), show_row(task.inputs, row, tok).c_str(),
                show_row(task.targets, row, tok).c_str());
  // The input is the sequence without its last token; the target is the sequence shifted left by one,
  // with '_' (ignore_index) wherever the next token is not part of the answer.
  claims.check(task.seq_len == 3 * task_cfg.digits + 3,
               "an example is T = 3 digits + 3 tokens: a, '+', b, '=', and the answer");
  {
    const auto in = select(task.inputs, 0, 0).to_vector<std::int64_t>();
    const auto tg = select(task.targets, 0, 0).to_vector<std::int64_t>();
    bool shifted = true;
    for (std::size_t t = 0; t + 1 < in.size(); ++t)
      shifted = shifted && (tg[t] == data::kIgnoreIndex || tg[t] == in[t + 1]);
    claims.check(shifted, "where a target is scored it is the next input token: next-token prediction");
  }

  tutorial::section("2. The model: a two-layer transformer");
  nn::LanguageModelConfig model_cfg;
  model_cfg.vocab_size = task.vocab_size();
  model_cfg.d_model = quick ? 32 : 64;
  model_cfg.n_layers = 2;
  model_cfg.n_heads = 4;
  model_cfg.max_len = task.seq_len + 1;  // room for a prompt and the whole answer when generating
  model_cfg.seed = seed + 1;
  const std::int64_t steps = std::strtoll(option(argc, argv, "--steps", quick ? "1000" : "2000").c_str(), nullptr, 10);
  const std::int64_t batch = 64, warmup = std::max<std::int64_t>(1, steps / 20);
  const double lr = quick ? 1e-2 : 3e-3;  // the smaller model of --short trains well with a larger rate
  // One run: model, AdamW on the decay groups (matrices decayed, biases and norm gains not), the
  // warmup-cosine schedule, the data loader (seeded: the same batches in every run) and the Trainer.
  const auto schedule = std::make_shared<optim::WarmupCosineSchedule>(lr, warmup, steps, lr / 10);
  const auto make_run = [&](std::uint64_t init_seed, std::int64_t stop_at, const std::string& dir, bool progress) {
    Run r;
    nn::LanguageModelConfig c = model_cfg;
    c.seed = init_seed;
    r.model = std::make_shared<nn::LanguageModel>(c);
    r.optimizer = std::make_shared<optim::AdamW>(optim::decay_groups(r.model->named_parameters(), lr, 0.1), 0.9, 0.95);
    train::TrainerConfig tc;
    tc.steps = stop_at;
    tc.eval_every = steps / 10;
    tc.log_every = 20;
    tc.out_dir = dir;
    tc.progress = progress;
    tc.metadata = {{"tutorial", "06_tiny_gpt"}, {"digits", std::to_string(task_cfg.digits)}};
    r.trainer = std::make_unique<train::Trainer>(r.model, r.optimizer, schedule,
                                                 data::DataLoader(task.dataset(), batch, true, seed + 7),
                                                 split.held_out.dataset(), tc);
    return r;
  };
  Run main_run = make_run(model_cfg.seed, steps, (out_dir / "run").string(), true);
  std::printf("%s", main_run.model->str().c_str());
  const auto& groups = main_run.optimizer->param_groups();
  std::printf(
      "AdamW groups: %zu tensors decayed (weight_decay %.1f), %zu not; lr %.0e, warmup %lld, cosine to %.0e "
      "at step %lld\n",
      groups[0].params.size(), groups[0].weight_decay, groups[1].params.size(), lr, static_cast<long long>(warmup),
      lr / 10, static_cast<long long>(steps));
  const auto near = [](double x, double y) { return std::abs(x - y) <= 1e-12 * std::abs(y); };
  claims.check(
      near(schedule->lr(0), lr / warmup) && near(schedule->lr(warmup - 1), lr) && near(schedule->lr(steps), lr / 10),
      "the schedule climbs from lr/warmup to lr in the warmup, then decays to lr/10");

  tutorial::section("3. Training with train::Trainer");
  const train::EvalResult before = main_run.trainer->evaluate();
  std::printf("before training: held-out loss %.3f (ln %lld = %.3f), exact match %.3f\n", before.loss,
              static_cast<long long>(task.vocab_size()), std::log(static_cast<double>(task.vocab_size())),
              before.accuracy);
  const train::TrainResult result = main_run.trainer->fit();
  std::printf("after %lld steps: training loss %.4f, held-out loss %.4f, held-out exact match %.3f\n",
              static_cast<long long>(result.step), result.loss, result.eval.loss, result.eval.accuracy);
  std::printf("files in %s: checkpoint.safetensors, metrics.csv, curves.svg\n", (out_dir / "run").string().c_str());
  // metrics.csv has a row every log_every steps; the held-out columns are filled every eval_every steps.
  const train::MetricsTable metrics = train::read_csv((out_dir / "run" / "metrics.csv").string());
  std::printf("%8s %10s %10s %14s %14s\n", "step", "lr", "train loss", "held-out loss", "exact match");
  for (const auto& row : metrics.rows)
    if (!std::isnan(row[metrics.index_of("eval_accuracy")]))
      std::printf("%8.0f %10.2e %10.4f %14.4f %14.3f\n", row[0], row[metrics.index_of("lr")],
                  row[metrics.index_of("loss")], row[metrics.index_of("eval_loss")],
                  row[metrics.index_of("eval_accuracy")]);
  claims.check(std::filesystem::exists(out_dir / "run" / "checkpoint.safetensors") &&
                   std::filesystem::exists(out_dir / "run" / "metrics.csv") &&
                   std::filesystem::exists(out_dir / "run" / "curves.svg"),
               "the Trainer wrote a checkpoint, the metrics CSV and the curves SVG");
  const train::Checkpoint ckpt = train::load_checkpoint((out_dir / "run" / "checkpoint.safetensors").string());
  std::printf("the checkpoint holds %zu model tensors, %zu optimizer tensors, step %lld, metadata digits=%s\n",
              ckpt.model.size(), ckpt.optimizer.size(), static_cast<long long>(ckpt.step),
              ckpt.metadata.at("digits").c_str());
  claims.check(ckpt.step == steps && ckpt.model.size() == main_run.model->state_dict().size(),
               "the final checkpoint is at the last step and holds every tensor of the model");

  tutorial::section("4. Resuming: stop half way, restart from the checkpoint");
  // A second run stops at half the steps (as if the machine went down), then a third starts from a
  // model with other initial weights, loads that checkpoint and trains on to the end. Model, AdamW's
  // moments, step count and loader position all come from the file, so it replays exactly the steps
  // the uninterrupted run took.
  const std::int64_t half = steps / 2;
  Run first_half = make_run(model_cfg.seed, half, (out_dir / "interrupted").string(), false);
  first_half.trainer->fit();
  Run resumed = make_run(/*init_seed=*/12345, steps, (out_dir / "interrupted").string(), false);
  resumed.trainer->resume((out_dir / "interrupted" / "checkpoint.safetensors").string());
  std::printf("resumed at step %lld\n", static_cast<long long>(resumed.trainer->step()));
  resumed.trainer->fit();
  const std::vector<double>& all = main_run.trainer->losses();
  const std::vector<double> second_half(all.begin() + half, all.end());
  const std::vector<double>& replayed = resumed.trainer->losses();
  for (std::int64_t s : {half, half + 1, half + 2, steps - 1})
    if (s - half < static_cast<std::int64_t>(replayed.size()))
      std::printf("  step %4lld: uninterrupted loss %.9f, resumed %.9f\n", static_cast<long long>(s + 1), all[s],
                  replayed[s - half]);
  claims.check(replayed == second_half, "the resumed run's " + std::to_string(steps - half) +
                                            " losses equal the uninterrupted run's, exactly (==, not approximately)");
  bool same_weights = true;
  const auto a = main_run.model->state_dict(), b = resumed.model->state_dict();
  for (std::size_t i = 0; i < a.size(); ++i)
    same_weights = same_weights && a[i].second.to_vector<float>() == b[i].second.to_vector<float>();
  claims.check(same_weights, "and both end with bit-identical weights");

  tutorial::section("5. Generating answers to held-out problems");
  const std::int64_t d = task_cfg.digits, prompt_len = 2 * d + 2;
  nn::GenerateOptions gen;
  gen.max_new_tokens = d + 2;  // d + 1 answer digits and the end token '.'
  gen.temperature = 0;         // greedy: always the most likely next token
  gen.stop_token = tok.id('.');
  const data::TaskData& held = split.held_out;
  // The fraction of held-out problems `model` answers right, generating greedily from each prompt. Prints
  // the first `show_first` problems and then up to `show_wrong` mistakes.
  const auto solve = [&](const nn::LanguageModel& model, std::int64_t show_first, int show_wrong) {
    std::int64_t right = 0;
    for (std::int64_t row = 0; row < held.size(); ++row) {
      const auto in = select(held.inputs, 0, row).to_vector<std::int64_t>();
      const std::vector<std::int64_t> prompt(in.begin(), in.begin() + prompt_len);  // "123+045="
      const std::string text = tok.decode(model.generate(prompt, gen));             // "123+045=8610."
      const data::AdditionCheck check = data::check_addition(text, task_cfg);
      right += check.correct;
      if (row >= show_first && (check.correct || show_wrong == 0)) continue;
      if (row >= show_first) --show_wrong;
      std::printf("  %-16s  %-14s  %s\n", text.c_str(), data::format_addition_example(text, task_cfg).c_str(),
                  check.correct ? "right" : ("wrong, " + std::to_string(check.a + check.b) + " expected").c_str());
    }
    return static_cast<double>(right) / static_cast<double>(held.size());
  };
  const double accuracy = solve(*main_run.model, 8, 4);
  std::printf("greedy generation: %.1f%% of %lld held-out problems right; teacher-forced exact match %.1f%%\n",
              100 * accuracy, static_cast<long long>(held.size()), 100 * result.eval.accuracy);
  const double threshold = quick ? 0.9 : 0.95;
  claims.check(accuracy > threshold, "greedy decoding solves more than " +
                                         std::to_string(static_cast<int>(100 * threshold)) +
                                         "% of the held-out problems");
  claims.check(std::abs(accuracy - result.eval.accuracy) <= 2.0 / static_cast<double>(held.size()),
               "and agrees with the Trainer's teacher-forced exact match (to within two problems)");
  // The model of section 4 that stopped half way: what is still wrong there?
  std::printf("the model stopped at step %lld (section 4) makes mistakes such as:\n", static_cast<long long>(half));
  const double half_accuracy = solve(*first_half.model, 0, 6);
  std::printf("at step %lld: %.1f%% right\n", static_cast<long long>(half), 100 * half_accuracy);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("\n(%.1f s)%s\n", seconds,
              given_out.empty() ? "  The files were in a temporary directory, now removed; --out DIR keeps them." : "");
  return claims.exit_code();
}
