/// \file
/// \brief The `ember` command: `train`, `generate`, `bench` and `info`. Misuse (unknown flags, bad values) exits with
/// code 2 and a one-line reason on stderr.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "ember.h"

namespace {

int run_info() {
  using namespace ember;
  fmt::print("ember {}\n", version());
  fmt::print("build type: {}\n", build_type());
  fmt::print("threads: {}\n", get_num_threads());
  fmt::print("devices:\n  cpu\n");
  if (!built_with_cuda()) {
    fmt::print("  cuda: not built (nvcc was not found at build time)\n");
  } else if (cuda_device_count() == 0) {
    fmt::print("  cuda: built, but no GPU is visible\n");
  } else {
    for (int i = 0; i < cuda_device_count(); ++i) fmt::print("  {}\n", Device::cuda(i).str());
  }
  fmt::print("dtypes: float32 float64 float16 bfloat16 int64 bool\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ember: an educational deep-learning framework"};
  app.require_subcommand(1);
  auto* info = app.add_subcommand("info", "Print version, build type, devices and dtypes");
  auto* train = app.add_subcommand("train", "Train a model on a built-in task or a text file");
  auto* generate = app.add_subcommand("generate", "Continue a prompt with a trained checkpoint");
  const ember::cli::Command run_train = ember::cli::add_train_command(*train);
  auto* bench = app.add_subcommand("bench", "Time training steps of a model on random tokens");
  const ember::cli::Command run_generate = ember::cli::add_generate_command(*generate);
  const ember::cli::Command run_bench = ember::cli::add_bench_command(*bench);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "ember: %s (see --help)\n", e.what());  // misuse: one line, exit code 2
    return 2;
  }
  try {
    if (info->parsed()) return run_info();
    if (train->parsed()) return run_train();
    if (generate->parsed()) return run_generate();
    if (bench->parsed()) return run_bench();
  } catch (const ember::Error& e) {
    std::fprintf(stderr, "ember: %s\n", e.what());
    return 2;
  }
  return 0;
}
