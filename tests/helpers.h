/// \file
/// \brief Shared test helpers: closeness of tensors against expected values.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "ember.h"

namespace ember::test {

/// Largest |a_i − b_i| of two vectors of the same length; infinity where either holds a NaN.
inline double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) || std::isnan(b[i])) return INFINITY;
    d = std::max(d, std::abs(a[i] - b[i]));
  }
  return d;
}

/// Largest |a - b| over all elements (shapes must match).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  double m = 0;
  for (std::size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) != std::isnan(vb[i])) return INFINITY;
    if (!std::isnan(va[i])) m = std::max(m, std::abs(va[i] - vb[i]));
  }
  return m;
}

/// True when every element of a is within atol + rtol |b| of b (NaN matches NaN).
inline bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8) {
  if (a.shape() != b.shape()) return false;
  const auto va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (std::size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) || std::isnan(vb[i])) {
      if (std::isnan(va[i]) != std::isnan(vb[i])) return false;
      continue;
    }
    if (std::isinf(va[i]) || std::isinf(vb[i])) {
      if (va[i] != vb[i]) return false;
      continue;
    }
    if (std::abs(va[i] - vb[i]) > atol + rtol * std::abs(vb[i])) return false;
  }
  return true;
}

/// A 1-D Float64 leaf that requires grad.
inline Tensor leaf(std::initializer_list<double> values) {
  Tensor t = tensor(values, DType::Float64);
  t.requires_grad_();
  return t;
}

/// The bytes of a file, read with iostreams (independently of ember's read_file).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Writes text to a file with iostreams (independently of ember's write_file_atomic).
inline void spit(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

/// A fresh directory (named prefix-pid-counter under the system temp dir), removed with its contents at
/// scope exit.
struct TempDir {
  std::filesystem::path path;  ///< the directory
  explicit TempDir(const std::string& prefix = "ember-test") {
    static std::atomic<int> counter{0};
    path = std::filesystem::temp_directory_path() /
           (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  /// The path of `name` inside the directory.
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

/// Checks that `expr` throws ember::Error whose message contains `needle`.
#define CHECK_THROWS_EMBER(expr, needle) CHECK_THROWS_WITH_AS(expr, doctest::Contains(needle), ::ember::Error)

}  // namespace ember::test
