/// \file
/// \brief Counter-based random numbers: Philox 4x32-10 (Salmon et al., "Parallel random numbers: as
/// easy as 1, 2, 3", SC 2011), and the Generator (seed, offset) that every random op draws from.
///
/// One Philox call maps a 128-bit counter and a 64-bit key to four 32-bit words through ten rounds of
/// (hi, lo) = M * x multiplications mixed with the key, which is bumped by the Weyl constants between
/// rounds. Element i of a random tensor depends only on (seed, offset, i), so results do not depend
/// on the thread count, and a CUDA kernel can reproduce them.
#pragma once

#include <array>
#include <cstdint>

namespace ember {

/// The four 32-bit words that Philox 4x32-10 maps `counter` to under `key`.
inline std::array<std::uint32_t, 4> philox4x32_10(std::array<std::uint32_t, 4> counter,
                                                  std::array<std::uint32_t, 2> key) {
  constexpr std::uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr std::uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += W0;
      key[1] += W1;
    }
    const std::uint64_t p0 = static_cast<std::uint64_t>(M0) * counter[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(M1) * counter[2];
    counter = {static_cast<std::uint32_t>(p1 >> 32) ^ counter[1] ^ key[0], static_cast<std::uint32_t>(p1),
               static_cast<std::uint32_t>(p0 >> 32) ^ counter[3] ^ key[1], static_cast<std::uint32_t>(p0)};
  }
  return counter;
}

/// The four words of block `index` of the stream keyed by `seed`.
inline std::array<std::uint32_t, 4> philox_block(std::uint64_t seed, std::uint64_t index) {
  return philox4x32_10({static_cast<std::uint32_t>(index), static_cast<std::uint32_t>(index >> 32), 0u, 0u},
                       {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)});
}

/// A uniform float in [0, 1) from the top 24 bits of a word.
inline float uniform_float(std::uint32_t word) { return static_cast<float>(word >> 8) * 0x1.0p-24f; }

/// A uniform double in [0, 1) from 53 bits of two words.
inline double uniform_double(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(hi) << 21) ^ (lo >> 11);
  return static_cast<double>(bits & ((1ull << 53) - 1)) * 0x1.0p-53;
}

/// A stream of Philox blocks: a seed and the index of the next unused block.
///
/// Each random op reserves the blocks it needs, so two draws never share numbers and the same seed
/// replays the same sequence of draws.
class Generator {
 public:
  /// A generator seeded with `seed`, at offset 0.
  explicit Generator(std::uint64_t seed = 0x853c49e6748fea9bull) : seed_(seed) {}
  /// Restarts the stream from `seed` at offset 0.
  void manual_seed(std::uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  /// The current seed.
  std::uint64_t seed() const { return seed_; }
  /// The index of the next unused block.
  std::uint64_t offset() const { return offset_; }
  /// Moves the stream to block `offset` (to restore a saved state).
  void set_offset(std::uint64_t offset) { offset_ = offset; }
  /// Reserves `blocks` blocks and returns the index of the first.
  std::uint64_t reserve(std::uint64_t blocks) {
    const std::uint64_t first = offset_;
    offset_ += blocks;
    return first;
  }

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

/// The process-wide generator used when an op is given none.
Generator& default_generator();
/// Seeds the default generator (and so every random op that is given no generator).
void manual_seed(std::uint64_t seed);

}  // namespace ember
