/// \file
/// \brief What every tutorial program shares: `--short` parsing, section headings, and checked claims.
///
/// A tutorial states what it teaches and then checks it: each claim prints `ok` or `FAILED`, and the
/// program exits non-zero when any failed, so the test suite notices when a tutorial stops being true.
#pragma once

#include <algorithm>
#include <chrono>
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

/// The folder given by `--out DIR` (where a tutorial writes its pictures), or "" when there is none.
inline std::string out_dir(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--out") == 0) return argv[i + 1];
  return "";
}

/// Seconds of the fastest of three calls of f (a rough timing for printed tables; tutorials make no claims on it).
template <class F>
double best_seconds(F f) {
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
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
