/// \file
/// \brief The `ember` command. `ember info` prints the version, build type, devices and dtypes.
#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

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
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;  // misuse exits with 2
  }
  try {
    if (info->parsed()) return run_info();
  } catch (const ember::Error& e) {
    std::fprintf(stderr, "ember: %s\n", e.what());
    return 1;
  }
  return 0;
}
