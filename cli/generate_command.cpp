/// \file
/// \brief `ember generate`: rebuilds the model of a checkpoint from its stored configuration and continues a
/// prompt (greedy, or sampled with temperature, top-k and top-p); with `--speculative medusa|mtp` it decodes
/// greedily with the run's Medusa heads or MTP modules as drafters and reports tokens per base-model forward and
/// the wall-clock speedup against plain greedy decoding, on the prompt or on held-out examples of the run's task.
#include <algorithm>
#include <chrono>
#include <filesystem>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "cli/commands.h"
#include "cli/run_config.h"
#include "cli/run_model.h"
#include "train/checkpoint.h"

namespace ember::cli {

namespace {

struct GenerateFlags {
  std::string checkpoint;
  std::string prompt;
  nn::GenerateOptions options;
  std::string speculative;      ///< "", "medusa" or "mtp"
  std::int64_t held_out = 0;    ///< with --speculative: measure on this many held-out prompts instead
  std::string tree = "medusa";  ///< Medusa's candidate tree: "medusa" (mc_sim_7b_63, cut to the heads) or "chain"
};

/// A prompt and how many tokens to add to it.
struct Job {
  std::vector<std::int64_t> prompt;
  std::int64_t new_tokens = 0;
};

/// What one decoding of a job produced.
struct Decoded {
  std::vector<std::int64_t> tokens;
  std::int64_t forwards = 0;  ///< base-model forward passes after the prompt
  double seconds = 0;
};

/// The fastest of `reps` runs of f (which returns a Decoded without timing), timed.
template <class F>
Decoded timed(F f, int reps = 3) {
  Decoded best;
  best.seconds = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    Decoded d = f();
    d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (d.seconds < best.seconds) best = d;
  }
  return best;
}

Decoded plain_greedy(const nn::LanguageModel& lm, const Job& job) {
  nn::GenerateOptions g;
  g.temperature = 0;
  g.max_new_tokens = job.new_tokens;
  return {lm.generate(job.prompt, g), job.new_tokens, 0};
}

Decoded speculative(const RunModel& m, const Job& job, const std::string& tree) {
  if (m.medusa) {
    decoding::MedusaGenerateOptions o;
    o.max_new_tokens = job.new_tokens;
    if (tree == "chain") o.tree = decoding::chain_tree(m.medusa->heads->num_heads());
    const decoding::MedusaOutput out = decoding::medusa_generate(*m.medusa, job.prompt, o);
    return {out.tokens, out.stats.verify_passes, 0};
  }
  decoding::MTPGenerateOptions o;
  o.max_new_tokens = job.new_tokens;
  const decoding::MTPGeneration out = decoding::mtp_generate(*m.mtp, job.prompt, o);
  return {out.tokens, out.forward_passes(), 0};
}

/// `n` held-out prompts of the run's task: each example up to its first answer position (with the tokens to the end
/// of the row to generate), or for text, 16-character windows of the held-out text followed by 100 tokens.
std::vector<Job> held_out_jobs(RunConfig run, std::int64_t n, std::int64_t max_len) {
  const TaskBundle task = build_task(run);
  std::vector<Job> jobs;
  if (task.examples) {
    const data::TaskData& d = *task.examples;
    for (std::int64_t row = 0; row < std::min(n, d.size()); ++row) {
      const auto input = select(d.inputs, 0, row).to_vector<std::int64_t>();
      const auto targets = select(d.targets, 0, row).to_vector<std::int64_t>();
      const auto first = std::find_if(targets.begin(), targets.end(), [](auto t) { return t != data::kIgnoreIndex; });
      const auto len = static_cast<std::int64_t>(first - targets.begin()) + 1;
      jobs.push_back({{input.begin(), input.begin() + len}, static_cast<std::int64_t>(targets.size()) - len + 1});
    }
    return jobs;
  }
  const auto& ids = dynamic_cast<const data::TextDataset&>(*task.held_out).ids();
  const std::int64_t width = 16, new_tokens = std::min<std::int64_t>(100, max_len - width);
  const std::int64_t stride = std::max<std::int64_t>(1, (static_cast<std::int64_t>(ids.size()) - width) / n);
  for (std::int64_t i = 0; i < n && i * stride + width <= static_cast<std::int64_t>(ids.size()); ++i)
    jobs.push_back({{ids.begin() + i * stride, ids.begin() + i * stride + width}, new_tokens});
  return jobs;
}

/// Decodes every job both ways and prints tokens per forward, agreement and the speedup.
void compare(const RunModel& m, const std::vector<Job>& jobs, const std::string& kind, const std::string& tree) {
  std::int64_t generated = 0, forwards = 0, identical = 0;
  double t_plain = 0, t_spec = 0;
  for (const Job& job : jobs) {
    const Decoded plain = timed([&] { return plain_greedy(*m.lm, job); });
    const Decoded spec = timed([&] { return speculative(m, job, tree); });
    generated += static_cast<std::int64_t>(spec.tokens.size() - job.prompt.size());
    forwards += spec.forwards;
    identical += spec.tokens == plain.tokens;
    t_plain += plain.seconds;
    t_spec += spec.seconds;
  }
  fmt::print("speculative ({}): {} tokens in {} base-model forward passes: {:.2f} tokens per forward\n", kind,
             generated, forwards, forwards > 0 ? static_cast<double>(generated) / static_cast<double>(forwards) : 0.0);
  fmt::print("identical to greedy decoding: {} of {}\n", identical, jobs.size());
  fmt::print("time: {:.1f} ms against {:.1f} ms for plain greedy decoding ({:.2f}x)\n", 1e3 * t_spec, 1e3 * t_plain,
             t_plain / t_spec);
}

void print_text(const RunConfig& run, const data::CharTokenizer& tokenizer, const std::vector<std::int64_t>& ids) {
  const std::string text = tokenizer.decode(ids);
  if (run.task == "addition") {
    data::AdditionConfig ac;
    ac.digits = run.digits;
    const data::AdditionCheck check = data::check_addition(text, ac);
    fmt::print("{}  ({})\n", data::format_addition_example(text, ac),
               !check.well_formed ? "not a well-formed answer" : check.correct ? "right" : "wrong");
  } else {
    fmt::print("{}\n", text);
  }
}

int run_generate(const GenerateFlags& f) {
  std::filesystem::path path = f.checkpoint;
  if (std::filesystem::is_directory(path)) path /= "checkpoint.safetensors";
  const train::Checkpoint ckpt = train::load_checkpoint(path.string());
  EMBER_CHECK(ckpt.metadata.count("ember.run") && ckpt.metadata.count("ember.alphabet"),
              path.string() + " has no run configuration (not written by ember train)");
  const RunConfig run = run_config_from_json(ckpt.metadata.at("ember.run"));
  const data::CharTokenizer tokenizer(alphabet_from_json(ckpt.metadata.at("ember.alphabet")));
  const RunModel m = make_run_model(run);
  m.trained->load_state_dict(ckpt.model, true);
  m.trained->eval();
  EMBER_CHECK(f.speculative.empty() || (f.speculative == "medusa" ? m.medusa != nullptr : m.mtp != nullptr),
              fmt::format("--speculative {}: the run in {} was trained without {} (ember train --{} N)", f.speculative,
                          path.string(), f.speculative == "medusa" ? "Medusa heads" : "MTP modules", f.speculative));
  EMBER_CHECK(f.held_out == 0 || !f.speculative.empty(), "--held-out measures speculative decoding: add --speculative");
  if (f.held_out > 0) {
    compare(m, held_out_jobs(run, f.held_out, run.model.max_len), f.speculative, f.tree);
    return 0;
  }
  EMBER_CHECK(!f.prompt.empty() || f.held_out > 0, "--prompt is required (or --held-out N with --speculative)");
  const std::vector<std::int64_t> prompt = tokenizer.encode(f.prompt);
  nn::GenerateOptions options = f.options;
  options.max_new_tokens =
      std::min<std::int64_t>(options.max_new_tokens, run.model.max_len - static_cast<std::int64_t>(prompt.size()));
  if (f.speculative.empty()) {
    print_text(run, tokenizer, m.lm->generate(prompt, options));
    return 0;
  }
  EMBER_CHECK(options.temperature == 0.0, "--speculative decodes greedily: drop --temperature");
  const Job job{prompt, options.max_new_tokens};
  print_text(run, tokenizer, speculative(m, job, f.tree).tokens);
  compare(m, {job}, f.speculative, f.tree);
  return 0;
}

}  // namespace

Command add_generate_command(CLI::App& sub) {
  auto f = std::make_shared<GenerateFlags>();
  f->options.temperature = 0.0;
  f->options.max_new_tokens = 200;
  sub.add_option("--checkpoint", f->checkpoint, "A run directory or checkpoint file written by ember train")
      ->required()
      ->check(CLI::ExistingPath);
  sub.add_option("--prompt", f->prompt, "Text to continue (characters of the model's vocabulary)");
  sub.add_option("--tokens", f->options.max_new_tokens, "Tokens to generate at most")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--temperature", f->options.temperature, "0 = greedy; otherwise sample from softmax(z / T)")
      ->check(CLI::Range(0.0, 100.0))
      ->capture_default_str();
  sub.add_option("--top-k", f->options.top_k, "Sample among the k most likely tokens (0 = all)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--top-p", f->options.top_p, "Sample among the most likely tokens holding mass p")
      ->check(CLI::Range(1e-9, 1.0));
  sub.add_option("--seed", f->options.seed, "Sampling seed");
  sub.add_option("--speculative", f->speculative,
                 "Greedy speculative decoding with the run's drafters (medusa or mtp), timed against plain decoding")
      ->check(CLI::IsMember({"medusa", "mtp"}));
  sub.add_option("--tree", f->tree,
                 "Medusa's candidate tree: medusa (the paper's 63-node tree, cut to the heads) or chain (top-1 only)")
      ->check(CLI::IsMember({"medusa", "chain"}))
      ->capture_default_str();
  sub.add_option("--held-out", f->held_out, "With --speculative: measure on N held-out prompts of the run's task")
      ->check(CLI::PositiveNumber);
  return [f]() { return run_generate(*f); };
}

}  // namespace ember::cli
