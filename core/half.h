/// \file
/// \brief IEEE binary16 (Float16) and bfloat16 storage types with exact conversions to and from float:
/// round to nearest even, subnormals, infinities and NaN.
///
/// Float16 has 1 sign, 5 exponent and 10 mantissa bits (max 65504, smallest subnormal 2^-24);
/// bfloat16 keeps float's 8-bit exponent and the top 7 mantissa bits. CPU arithmetic on both goes
/// through float and rounds back.
#pragma once

#include <bit>
#include <cstdint>

namespace ember {

/// float -> binary16 bits, rounding to nearest even.
inline std::uint16_t float_to_half_bits(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  std::uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u)  // Inf stays Inf; NaN stays a quiet NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u));
  if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to Inf
  if (a < 0x38800000u) {
    // Below 2^-14 the result is subnormal: adding 0.5 makes float's ulp 2^-24, the half subnormal
    // step, so the FPU rounds to nearest even for us.
    const float shifted = std::bit_cast<float>(a) + 0.5f;
    return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(shifted) - 0x3f000000u));
  }
  const std::uint32_t odd = (a >> 13) & 1u;
  a += 0xc8000fffu + odd;  // re-bias the exponent (127 -> 15) and round the 13 dropped bits to even
  return static_cast<std::uint16_t>(sign | (a >> 13));
}

/// binary16 bits -> float (exact).
inline float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    const float magnitude = static_cast<float>(mant) * 5.9604644775390625e-08f;  // mant * 2^-24
    return std::bit_cast<float>(sign | std::bit_cast<std::uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// float -> bfloat16 bits, rounding to nearest even (NaN stays a quiet NaN).
inline std::uint16_t float_to_bf16_bits(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/// bfloat16 bits -> float (exact).
inline float bf16_bits_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

/// A binary16 value as stored in a Float16 tensor.
struct Half {
  std::uint16_t bits = 0;  ///< the raw IEEE binary16 bits
  Half() = default;
  /// Rounds `f` to the nearest binary16 (ties to even).
  explicit Half(float f) : bits(float_to_half_bits(f)) {}
  /// The exact float value.
  explicit operator float() const { return half_bits_to_float(bits); }
};

/// A bfloat16 value as stored in a BFloat16 tensor.
struct BFloat16 {
  std::uint16_t bits = 0;  ///< the raw bfloat16 bits (the top half of a float)
  BFloat16() = default;
  /// Rounds `f` to the nearest bfloat16 (ties to even).
  explicit BFloat16(float f) : bits(float_to_bf16_bits(f)) {}
  /// The exact float value.
  explicit operator float() const { return bf16_bits_to_float(bits); }
};

}  // namespace ember
