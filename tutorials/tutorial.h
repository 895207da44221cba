/// \file
/// \brief What every tutorial program shares: `--short` parsing, section headings, and checked claims.
///
/// A tutorial states what it teaches and then checks it: each claim prints `ok` or `FAILED`, and the
/// program exits non-zero when any failed, so the test suite notices when a tutorial stops being true.
#pragma once

#include <cstdio>
#include <cstring>
#include <string>

namespace tutorial {

/// True when the program was started with `--short` (the quick mode the test suite uses).
inline bool short_mode(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--short") == 0) return true;
  return false;
}

/// Prints a section heading.
inline void section(const std::string& title) { std::printf("\n== %s ==\n", title.c_str()); }

/// Counts the claims a tutorial checks.
class Claims {
 public:
  /// Prints the claim with `ok` or `FAILED` and remembers failures.
  void check(bool holds, const std::string& claim) {
    std::printf("  [%s] %s\n", holds ? "ok" : "FAILED", claim.c_str());
    failed_ += holds ? 0 : 1;
    ++total_;
  }
  /// The process exit code: 0 when every claim held.
  int exit_code() const {
    std::printf("\n%d of %d claims held.\n", total_ - failed_, total_);
    return failed_ == 0 ? 0 : 1;
  }

 private:
  int failed_ = 0;
  int total_ = 0;
};

}  // namespace tutorial
