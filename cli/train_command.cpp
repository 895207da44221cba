/// \file
/// \brief `ember train`: builds the task, the model and AdamW with warmup-cosine, runs the Trainer, and reports
/// (summary line `final: step=N loss=X accuracy=Y`, solved held-out examples, where the files went).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/ops.h"
#include "cli/commands.h"
#include "cli/run_config.h"
#include "cli/run_model.h"
#include "layers/mixer.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace ember::cli {

namespace {

/// The flags of `ember train`; zeros mean "the task's default" (steps, seq).
struct TrainFlags {
  RunConfig run;
  std::string mixer = "softmax";
  std::string preset;                     ///< "transnormer": a per-layer mixer layout instead of --mixer
  std::vector<std::string> mixer_options;  ///< NAME=VALUE pairs for MixerConfig::options
  bool resume = false;
};

constexpr std::int64_t kDefaultSteps = 2000;

RunModel make_model(RunConfig& c, const TaskBundle& task) {
  c.model.vocab_size = task.tokenizer.vocab_size();
  c.model.max_len = std::max<std::int64_t>(c.model.max_len, task.seq_len + 1);
  c.model.seed = c.seed;
  return make_run_model(c);
}

/// ", 3 Medusa heads" or ", MTP depth 2" (empty without extra heads).
std::string describe_heads(const RunConfig& c) {
  if (c.medusa > 0) return fmt::format(", {} Medusa heads", c.medusa);
  if (c.mtp > 0) return fmt::format(", MTP depth {} (λ = {:g})", c.mtp, c.mtp_lambda);
  return "";
}

/// NAME=VALUE pairs (from --mixer-option) as MixerConfig options; a malformed pair is a usage error.
std::map<std::string, double> parse_mixer_options(const std::vector<std::string>& pairs) {
  std::map<std::string, double> options;
  for (const std::string& pair : pairs) {
    const auto eq = pair.find('=');
    std::size_t used = 0;
    double value = 0;
    try {
      if (eq != std::string::npos && eq > 0) value = std::stod(pair.substr(eq + 1), &used);
    } catch (const std::exception&) {
      used = 0;
    }
    EMBER_CHECK(used > 0 && eq + 1 + used == pair.size(),
                "--mixer-option: expected NAME=NUMBER (e.g. chunk=32), got '" + pair + "'");
    options[pair.substr(0, eq)] = value;
  }
  return options;
}

/// The model's mixers from --mixer or --preset, each checked by building it once: an unknown name, or an
/// option that none of them reads, is rejected before any work.
std::vector<std::string> choose_mixers(const TrainFlags& f, std::int64_t n_layers) {
  const std::vector<std::string> names =
      f.preset == "transnormer" ? nn::transnormer_mixers(n_layers) : std::vector<std::string>{f.mixer};
  nn::MixerConfig probe;
  probe.options = parse_mixer_options(f.mixer_options);
  for (const std::string& name : names) nn::make_mixer(name, probe);
  for (const auto& [option, value] : probe.options)
    EMBER_CHECK(probe.asked.count(option),
                fmt::format("--mixer-option: {} has no option '{}' (it reads: {})", fmt::join(names, "/"), option,
                            probe.asked.empty() ? "none" : fmt::format("{}", fmt::join(probe.asked, ", "))));
  return names;
}

/// ", mixed precision fp16 with loss scaling" and the like (empty when off).
std::string describe_amp(const RunConfig& c) {
  if (c.amp == "off") return "";
  const bool scaled = c.amp == "fp16" && c.loss_scaling;
  return fmt::format(", mixed precision {}{}", c.amp, scaled ? " with loss scaling" : " without loss scaling");
}

/// "2 layers of softmax", or the layer-by-layer list when the layers differ.
std::string describe_layers(const nn::LanguageModelConfig& m) {
  if (m.mixers.size() == 1) return fmt::format("{} layers of {}", m.n_layers, m.mixers[0]);
  return fmt::format("{} layers ({})", m.n_layers, fmt::join(m.mixers, ", "));
}

/// True when a row's answer continues its prompt: the input after every scored position but the last is that
/// position's target (addition, copy), so greedy decoding can feed the model's own tokens back. Otherwise (selective
/// copy, MQAR) the task itself gives the inputs between the answers.
bool answer_feeds_back(const std::vector<std::int64_t>& input, const std::vector<std::int64_t>& targets) {
  for (std::size_t t = 0; t + 1 < targets.size(); ++t)
    if (targets[t] != data::kIgnoreIndex && targets[t + 1] != data::kIgnoreIndex && input[t + 1] != targets[t])
      return false;
  return true;
}

/// The greedy completion of one held-out row from the input at its first scored position on -> [T] predictions
/// (position t predicts token t + 1).
std::vector<std::int64_t> greedy_completion(const nn::LanguageModel& model, const std::vector<std::int64_t>& input,
                                            const std::vector<std::int64_t>& targets) {
  const auto first = std::find_if(targets.begin(), targets.end(), [](auto t) { return t != data::kIgnoreIndex; });
  const std::vector<std::int64_t> prompt(input.begin(), input.begin() + (first - targets.begin()) + 1);
  nn::GenerateOptions g;
  g.temperature = 0;
  g.max_new_tokens = static_cast<std::int64_t>(targets.size() - prompt.size()) + 1;
  std::vector<std::int64_t> out = model.generate(prompt, g);
  out.erase(out.begin());
  out.resize(targets.size(), 0);
  return out;
}

/// A few held-out problems in the task's notation, marked right or wrong: greedy completions where the answer feeds
/// back, else the model's predictions at the answer positions with the task's inputs.
void print_examples(nn::LanguageModel& model, const TaskBundle& task, std::int64_t count) {
  if (!task.examples) return;
  const data::TaskData& d = *task.examples;
  count = std::min(count, d.size());
  Tensor predictions = d.targets.clone();  // [N, T]; rows 0..count-1 get the model's tokens
  bool generated = true;
  for (std::int64_t row = 0; row < count; ++row) {
    const auto input = select(d.inputs, 0, row).to_vector<std::int64_t>();
    const auto targets = select(d.targets, 0, row).to_vector<std::int64_t>();
    std::vector<std::int64_t> out;
    if (answer_feeds_back(input, targets)) {
      out = greedy_completion(model, input, targets);
    } else {
      NoGradGuard no_grad;
      out = argmax(model.forward(narrow(d.inputs, 0, row, 1)), -1).to_vector<std::int64_t>();
      generated = false;
    }
    raw::copy_(select(predictions, 0, row), from_vector(out, {static_cast<std::int64_t>(out.size())}));
  }
  const auto ok = data::rows_correct(narrow(predictions, 0, 0, count), narrow(d.targets, 0, 0, count));
  fmt::print("held-out examples ({}):\n", generated ? "greedy decoding" : "greedy predictions, the task's inputs");
  for (std::int64_t row = 0; row < count; ++row)
    fmt::print("  {}  {}\n", d.format(row, predictions), ok[row] ? "right" : "WRONG");
}

void print_sample(const nn::LanguageModel& model, const TaskBundle& task) {
  if (task.examples) return;
  const auto& text = dynamic_cast<const data::TextDataset&>(*task.held_out);
  const std::int64_t n = std::min<std::int64_t>(16, text.seq_len());
  const std::vector<std::int64_t> prompt(text.ids().begin(), text.ids().begin() + n);
  nn::GenerateOptions g;
  g.temperature = 0.8;
  g.top_k = 0;
  g.max_new_tokens = std::min<std::int64_t>(200, model.config().max_len - n);
  g.seed = 1;
  fmt::print("sample (temperature 0.8):\n{}\n", task.tokenizer.decode(model.generate(prompt, g)));
}

int run_train(TrainFlags f) {
  RunConfig& c = f.run;
  if (c.out.empty()) c.out = "runs/" + c.task;
  const std::string ckpt_path = (std::filesystem::path(c.out) / "checkpoint.safetensors").string();
  std::optional<train::Checkpoint> ckpt;
  if (f.resume) {
    EMBER_CHECK(std::filesystem::exists(ckpt_path), "--resume: no checkpoint at " + ckpt_path);
    ckpt = train::load_checkpoint(ckpt_path);
    const std::int64_t steps = c.steps;
    c = run_config_from_json(ckpt->metadata.at("ember.run"));
    if (steps > 0) c.steps = steps;
  } else {
    c.model.mixers = choose_mixers(f, c.model.n_layers);
    c.model.mixer_options = parse_mixer_options(f.mixer_options);
  }
  if (c.steps == 0) c.steps = kDefaultSteps;
  TaskBundle task = build_task(c);
  const RunModel run_model = make_model(c, task);
  const auto& model = run_model.lm;
  auto opt = std::make_shared<optim::AdamW>(
      optim::decay_groups(run_model.trained->named_parameters(), c.lr, c.weight_decay));
  auto sched = std::make_shared<optim::WarmupCosineSchedule>(c.lr, std::min(c.warmup, c.steps), c.steps, c.lr / 10);
  train::TrainerConfig tc;
  tc.steps = c.steps;
  tc.eval_every = std::max<std::int64_t>(1, c.steps / 10);
  tc.out_dir = c.out;
  tc.exact_match = task.exact_match;
  tc.eval_examples = task.exact_match ? 0 : 2000;
  tc.amp = amp_dtype(c.amp);
  tc.loss_scaling = c.loss_scaling;
  tc.metadata = {{"ember.run", to_json(c)}, {"ember.alphabet", alphabet_to_json(task.tokenizer.alphabet())}};
  if (c.batch > task.train->size()) {
    fmt::print("batch {} is more than the {} training examples: using batches of {}\n", c.batch, task.train->size(),
               task.train->size());
    c.batch = task.train->size();
  }
  train::Trainer trainer(run_model.trained, opt, sched, data::DataLoader(task.train, c.batch, true, c.seed, true),
                         task.held_out, tc);
  if (run_model.objective) trainer.set_objective(run_model.objective);
  if (ckpt) trainer.resume(ckpt_path);
  fmt::print("ember train: task {} (T = {}, vocab {}), {}{}, d_model {}, {} parameters, {} steps of {}{}\n", c.task,
             task.seq_len, task.tokenizer.vocab_size(), describe_layers(c.model), describe_heads(c), c.model.d_model,
             nn::with_commas(run_model.trained->num_parameters()), c.steps, c.batch, describe_amp(c));
  std::fflush(stdout);
  train::Trainer::handle_interrupts();
  const train::TrainResult r = trainer.fit();
  if (r.interrupted) {
    fmt::print("interrupted at step {}: checkpoint saved to {} (continue with --resume --out {})\n", r.step, ckpt_path,
               c.out);
    return 130;
  }
  if (const amp::GradScaler* s = trainer.scaler())
    fmt::print("loss scale: {:g} ({} of {} steps skipped for a gradient overflow)\n", s->get_scale(),
               s->skipped_steps(), r.step);
  print_examples(*model, task, 5);
  print_sample(*model, task);
  fmt::print("checkpoint: {}\nmetrics: {}\ncurves: {}\n", ckpt_path, (std::filesystem::path(c.out) / "metrics.csv").string(),
             (std::filesystem::path(c.out) / "curves.svg").string());
  fmt::print("final: step={} loss={:.4f} accuracy={:.4f}\n", r.step, r.eval.loss, r.eval.accuracy);
  return 0;
}

}  // namespace

Command add_train_command(CLI::App& sub) {
  auto f = std::make_shared<TrainFlags>();
  RunConfig& c = f->run;
  sub.add_option("--task", c.task, "Built-in task, or text with --data")
      ->check(CLI::IsMember({"addition", "copy", "selective_copy", "mqar", "induction", "text"}))
      ->capture_default_str();
  sub.add_option("--data", c.data, "Train a character model on this text file (sets --task text)")
      ->check(CLI::ExistingFile);
  sub.add_option("--digits", c.digits, "Digits per operand of the addition task")->check(CLI::Range(1, 9))
      ->capture_default_str();
  auto* mixer = sub.add_option("--mixer", f->mixer, "Token mixer of every layer (registry name)")->capture_default_str();
  sub.add_option("--preset", f->preset, "A per-layer mixer layout: transnormer (diag_attention below, norm_attention above)")
      ->check(CLI::IsMember({"transnormer"}))
      ->excludes(mixer);
  sub.add_option("--mixer-option", f->mixer_options, "A mixer option NAME=VALUE (e.g. chunk=32); repeatable");
  sub.add_option("--mlp", c.model.mlp, "Feed-forward of every block: gelu, swiglu, or rwkv (RWKV-4's channel mix)")
      ->check(CLI::IsMember({"gelu", "swiglu", "rwkv"}))
      ->capture_default_str();
  sub.add_option("--layers", c.model.n_layers, "Transformer blocks")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--dim", c.model.d_model, "Model width d_model")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--heads", c.model.n_heads, "Attention heads")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--seq", c.seq, "Sequence length (copy, selective_copy, mqar, induction, text)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--batch", c.batch, "Sequences per step")->check(CLI::PositiveNumber)->capture_default_str();
  sub.add_option("--steps", c.steps, "Optimizer steps (default 2000)")->check(CLI::PositiveNumber);
  sub.add_option("--lr", c.lr, "Peak learning rate")->check(CLI::Range(1e-7, 1.0))->capture_default_str();
  sub.add_option("--seed", c.seed, "Seed of data, weights and dropout")->capture_default_str();
  sub.add_option("--positions", c.model.positions, "Position encoding")
      ->check(CLI::IsMember({"learned", "rope", "none"}))
      ->capture_default_str();
  sub.add_option("--out", c.out, "Output directory (default runs/<task>)");
  sub.add_option("--amp", c.amp, "Mixed precision: off, fp16 (with dynamic loss scaling) or bf16")
      ->check(CLI::IsMember({"off", "fp16", "bf16"}))
      ->capture_default_str();
  sub.add_flag("--no-loss-scaling{false}", c.loss_scaling, "With --amp fp16: train without loss scaling");
  auto* medusa = sub.add_option("--medusa", c.medusa, "Train K Medusa heads with the model (Medusa-2's joint loss)")
                     ->check(CLI::Range(1, 16));
  sub.add_option("--mtp", c.mtp, "Train D multi-token-prediction modules with the model (DeepSeek-V3)")
      ->check(CLI::Range(1, 16))
      ->excludes(medusa);
  sub.add_option("--mtp-lambda", c.mtp_lambda, "Weight λ of the MTP loss")->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  sub.add_flag("--resume", f->resume, "Continue the run saved in --out");
  return [f]() {
    if (!f->run.data.empty()) f->run.task = "text";
    return run_train(*f);
  };
}

}  // namespace ember::cli
