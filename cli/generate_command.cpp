/// \file
/// \brief `ember generate`: rebuilds the model of a checkpoint from its stored configuration and continues a
/// prompt (greedy, or sampled with temperature, top-k and top-p).
#include <filesystem>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/run_config.h"
#include "train/checkpoint.h"

namespace ember::cli {

namespace {

struct GenerateFlags {
  std::string checkpoint;
  std::string prompt;
  nn::GenerateOptions options;
};

int run_generate(const GenerateFlags& f) {
  std::filesystem::path path = f.checkpoint;
  if (std::filesystem::is_directory(path)) path /= "checkpoint.safetensors";
  const train::Checkpoint ckpt = train::load_checkpoint(path.string());
  EMBER_CHECK(ckpt.metadata.count("ember.run") && ckpt.metadata.count("ember.alphabet"),
              path.string() + " has no run configuration (not written by ember train)");
  const RunConfig run = run_config_from_json(ckpt.metadata.at("ember.run"));
  const data::CharTokenizer tokenizer(alphabet_from_json(ckpt.metadata.at("ember.alphabet")));
  nn::LanguageModel model(run.model);
  model.load_state_dict(ckpt.model, true);
  model.eval();
  const std::vector<std::int64_t> prompt = tokenizer.encode(f.prompt);
  nn::GenerateOptions options = f.options;
  options.max_new_tokens =
      std::min<std::int64_t>(options.max_new_tokens, run.model.max_len - static_cast<std::int64_t>(prompt.size()));
  const std::string text = tokenizer.decode(model.generate(prompt, options));
  if (run.task == "addition") {
    data::AdditionConfig ac;
    ac.digits = run.digits;
    const data::AdditionCheck check = data::check_addition(text, ac);
    fmt::print("{}  ({})\n", data::format_addition_example(text, ac),
               !check.well_formed ? "not a well-formed answer" : check.correct ? "right" : "wrong");
  } else {
    fmt::print("{}\n", text);
  }
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
  sub.add_option("--prompt", f->prompt, "Text to continue (characters of the model's vocabulary)")->required();
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
  return [f]() { return run_generate(*f); };
}

}  // namespace ember::cli
