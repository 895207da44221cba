/// \file
/// \brief Seeded integer draws for data generation and shuffling: a Philox 4x32-10 stream addressed by
/// (seed, stream, draw), and the Fisher-Yates permutation built on it.
///
/// Draw k of stream s under seed is word k of the counter (k / 4, s) keyed by seed (Salmon et al.,
/// SC 2011, the generator of core/philox.h). Everything is integer arithmetic, so the numbers are the
/// same on every platform and compiler, and a stream can be rebuilt from (seed, stream) alone: the
/// loader uses the epoch as the stream, the synthetic tasks use the example index.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/philox.h"

namespace ember::data {

/// Uniform 32- and 64-bit words and bounded integers from one Philox stream.
class PhiloxStream {
 public:
  /// Stream `stream` of the generator keyed by `seed`, at its first draw.
  PhiloxStream(std::uint64_t seed, std::uint64_t stream) : seed_(seed), stream_(stream) {}

  /// The next uniform 32-bit word.
  std::uint32_t next_u32() {
    if (used_ == 4) refill();
    return words_[used_++];
  }
  /// The next uniform 64-bit word (two 32-bit draws).
  std::uint64_t next_u64() {
    const std::uint64_t hi = next_u32();
    return (hi << 32) | next_u32();
  }
  /// A uniform integer in [0, n), n > 0. Reduces a 64-bit word modulo n: the bias is below n / 2^64,
  /// far under anything a data set could show, and needs no data-dependent redraws.
  std::int64_t uniform_int(std::int64_t n) {
    return static_cast<std::int64_t>(next_u64() % static_cast<std::uint64_t>(n));
  }
  /// A uniform double in [0, 1) with 53 random bits.
  double uniform_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

 private:
  void refill() {
    words_ = philox4x32_10({static_cast<std::uint32_t>(block_), static_cast<std::uint32_t>(block_ >> 32),
                            static_cast<std::uint32_t>(stream_), static_cast<std::uint32_t>(stream_ >> 32)},
                           {static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32)});
    ++block_;
    used_ = 0;
  }

  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t block_ = 0;
  std::array<std::uint32_t, 4> words_{};
  int used_ = 4;
};

/// A uniformly random permutation of 0..n-1 (Fisher-Yates, drawing from `stream`).
inline std::vector<std::int64_t> random_permutation(std::int64_t n, PhiloxStream& stream) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) order[i] = i;
  for (std::int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[stream.uniform_int(i + 1)]);
  return order;
}

}  // namespace ember::data
