/// \file
/// \brief The subcommands of `ember`: each registers its flags on the CLI11 app and runs when parsed.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace ember::cli {

/// A subcommand's body: returns the process exit code (2 for bad values, 1 for failures).
using Command = std::function<int()>;

/// `ember train`: flags on `sub`; the returned function runs it.
Command add_train_command(CLI::App& sub);
/// `ember generate`.
Command add_generate_command(CLI::App& sub);
/// `ember bench`.
Command add_bench_command(CLI::App& sub);

}  // namespace ember::cli
