/// \file
/// \brief Float16 and BFloat16 conversions (core/half.h) against an independent reference: values
/// decoded from the bit fields with ldexp, and rounding done by searching the sorted table of every
/// representable value for the nearest one (ties to the even bit pattern).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/half.h"
#include "reference.h"

using namespace ember;

namespace {

/// binary16 bits -> value from the IEEE formula: (-1)^s * m * 2^-24 (subnormal) or (1024 + m) * 2^(e - 25).
double half_value(std::uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v;
  if (e == 0x1f)
    v = m ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else if (e == 0)
    v = std::ldexp(m, -24);
  else
    v = std::ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

/// bfloat16 bits -> value: (-1)^s * m * 2^-133 (subnormal) or (128 + m) * 2^(e - 134).
double bf16_value(std::uint16_t b) {
  const int s = b >> 15, e = (b >> 7) & 0xff, m = b & 0x7f;
  double v;
  if (e == 0xff)
    v = m ? std::numeric_limits<double>::quiet_NaN() : INFINITY;
  else if (e == 0)
    v = std::ldexp(m, -133);
  else
    v = std::ldexp(128 + m, e - 134);
  return s ? -v : v;
}

/// Rounds `f` to the nearest entry of `table` (the values of bit patterns 0..table.size()-1, increasing),
/// ties to the even pattern, overflowing to `inf_bits` at or above `overflow`.
std::uint16_t nearest(const std::vector<double>& table, double overflow, std::uint16_t inf_bits, float f) {
  const std::uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double a = std::abs(static_cast<double>(f));
  if (a >= overflow) return sign | inf_bits;
  const auto k = static_cast<std::size_t>(std::upper_bound(table.begin(), table.end(), a) - table.begin()) - 1;
  if (k + 1 == table.size()) return static_cast<std::uint16_t>(sign | k);
  const double down = a - table[k], up = table[k + 1] - a;
  std::size_t pick = down < up ? k : (up < down ? k + 1 : (k % 2 == 0 ? k : k + 1));
  return static_cast<std::uint16_t>(sign | pick);
}

const std::vector<double>& half_table() {  // 0x0000 .. 0x7bff (65504)
  static const std::vector<double> t = [] {
    std::vector<double> v;
    for (std::uint32_t h = 0; h <= 0x7bff; ++h) v.push_back(half_value(static_cast<std::uint16_t>(h)));
    return v;
  }();
  return t;
}

const std::vector<double>& bf16_table() {  // 0x0000 .. 0x7f7f (largest finite)
  static const std::vector<double> t = [] {
    std::vector<double> v;
    for (std::uint32_t b = 0; b <= 0x7f7f; ++b) v.push_back(bf16_value(static_cast<std::uint16_t>(b)));
    return v;
  }();
  return t;
}

// Halfway between the largest finite value and the next power of two.
const double kHalfOverflow = 65520.0;
const double kBf16Overflow = std::ldexp(2.0 - std::ldexp(1.0, -8), 127);

std::uint16_t ref_half(float f) { return nearest(half_table(), kHalfOverflow, 0x7c00, f); }
std::uint16_t ref_bf16(float f) { return nearest(bf16_table(), kBf16Overflow, 0x7f80, f); }

bool half_is_nan(std::uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool bf16_is_nan(std::uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }

const float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

TEST_CASE("float16: round to nearest even at hand-picked values") {
  CHECK(float_to_half_bits(1.0f) == 0x3c00);
  CHECK(float_to_half_bits(1.0f + 0x1p-11f) == 0x3c00);             // tie between 1 and 1 + 2^-10: even is 1
  CHECK(float_to_half_bits(1.0f + 3 * 0x1p-11f) == 0x3c02);         // tie between 0x3c01 and 0x3c02: even is up
  CHECK(float_to_half_bits(1.0f + 0x1p-11f + 0x1p-20f) == 0x3c01);  // just above the tie rounds up
  CHECK(float_to_half_bits(1.0f + 0x1p-11f - 0x1p-20f) == 0x3c00);  // just below rounds down
  CHECK(float_to_half_bits(-2.5f) == 0xc100);
  CHECK(float_to_half_bits(65504.0f) == 0x7bff);  // the largest finite half
  CHECK(float_to_half_bits(65519.0f) == 0x7bff);  // below the tie with 2^16
  CHECK(float_to_half_bits(65520.0f) == 0x7c00);  // the tie rounds to even, which is infinity
  CHECK(float_to_half_bits(-65520.0f) == 0xfc00);
  CHECK(float_to_half_bits(1e10f) == 0x7c00);
  CHECK(float_to_half_bits(0x1p-14f) == 0x0400);            // smallest normal
  CHECK(float_to_half_bits(1023 * 0x1p-24f) == 0x03ff);     // largest subnormal
  CHECK(float_to_half_bits(1023.5f * 0x1p-24f) == 0x0400);  // tie between 0x3ff and 0x400: even is up
  CHECK(float_to_half_bits(0x1p-24f) == 0x0001);            // smallest subnormal
  CHECK(float_to_half_bits(0x1p-25f) == 0x0000);            // tie between 0 and 2^-24: even is 0
  CHECK(float_to_half_bits(0x1p-25f * 1.0001f) == 0x0001);  // above the tie
  CHECK(float_to_half_bits(3 * 0x1p-25f) == 0x0002);        // 1.5 * 2^-24: tie, even is 2
  CHECK(float_to_half_bits(5 * 0x1p-25f) == 0x0002);        // 2.5 * 2^-24: tie, even is 2
  CHECK(float_to_half_bits(-0x1p-25f) == 0x8000);           // rounds to -0
  CHECK(float_to_half_bits(1e-30f) == 0x0000);
  CHECK(float_to_half_bits(-0.0f) == 0x8000);
  CHECK(float_to_half_bits(0.0f) == 0x0000);
  CHECK(float_to_half_bits(INFINITY) == 0x7c00);
  CHECK(float_to_half_bits(-INFINITY) == 0xfc00);
  CHECK(half_is_nan(float_to_half_bits(kNaN)));
  CHECK(half_is_nan(float_to_half_bits(-kNaN)));
  CHECK(half_is_nan(float_to_half_bits(std::bit_cast<float>(0x7f800001u))));  // payload only in dropped bits

  CHECK(half_bits_to_float(0x7bff) == 65504.0f);
  CHECK(half_bits_to_float(0x0001) == 0x1p-24f);
  CHECK(half_bits_to_float(0x03ff) == 1023 * 0x1p-24f);
  CHECK(half_bits_to_float(0x3555) == 0.333251953125f);
  CHECK(half_bits_to_float(0xc000) == -2.0f);
  CHECK(std::signbit(half_bits_to_float(0x8000)));
  CHECK(half_bits_to_float(0x8000) == 0.0f);
  CHECK(half_bits_to_float(0x7c00) == INFINITY);
  CHECK(half_bits_to_float(0xfc00) == -INFINITY);
  CHECK(std::isnan(half_bits_to_float(0x7e00)));
  CHECK(std::isnan(half_bits_to_float(0x7c01)));
}

TEST_CASE("float16: every bit pattern decodes to the IEEE value and round-trips") {
  int bad_value = 0, bad_trip = 0;
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto h = static_cast<std::uint16_t>(i);
    const float f = half_bits_to_float(h);
    const double want = half_value(h);
    if (half_is_nan(h)) {
      if (!std::isnan(f)) ++bad_value;
      if (!half_is_nan(float_to_half_bits(f))) ++bad_trip;
      continue;
    }
    if (static_cast<double>(f) != want || std::signbit(f) != std::signbit(want)) ++bad_value;
    if (float_to_half_bits(f) != h) ++bad_trip;
  }
  CHECK(bad_value == 0);
  CHECK(bad_trip == 0);
}

TEST_CASE("float16: rounding matches the nearest-value search at every tie and at random floats") {
  const auto& table = half_table();
  int bad = 0;
  // Every midpoint between neighbouring halves (exact in float), and one float ulp on either side.
  for (std::size_t k = 0; k + 1 < table.size(); ++k) {
    const float mid = static_cast<float>((table[k] + table[k + 1]) / 2);
    REQUIRE(static_cast<double>(mid) == (table[k] + table[k + 1]) / 2);
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY), -mid})
      if (float_to_half_bits(f) != ref_half(f)) ++bad;
  }
  CHECK(bad == 0);
  // Random bit patterns cover every exponent; random values cover the half range densely.
  Generator gen(7);
  const auto bits = randint(0, 1ll << 32, {1000000}, DType::Int64, Device::cpu(), &gen).to_vector<std::int64_t>();
  const auto vals = rand({1000000}, DType::Float64, Device::cpu(), -70000, 70000, &gen).to_vector<double>();
  bad = 0;
  for (std::size_t i = 0; i < bits.size(); ++i) {
    for (float f : {std::bit_cast<float>(static_cast<std::uint32_t>(bits[i])), static_cast<float>(vals[i]),
                    static_cast<float>(vals[i] * 1e-6)}) {
      if (std::isnan(f)) continue;
      if (float_to_half_bits(f) != ref_half(f)) ++bad;
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("bfloat16: ties, overflow, subnormals, signed zero, NaN") {
  CHECK(float_to_bf16_bits(1.0f) == 0x3f80);
  CHECK(float_to_bf16_bits(1.0f + 0x1p-8f) == 0x3f80);                     // tie: even is 1
  CHECK(float_to_bf16_bits(1.0f + 3 * 0x1p-8f) == 0x3f82);                 // tie: even is up
  CHECK(float_to_bf16_bits(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81);          // above the tie
  CHECK(float_to_bf16_bits(std::numeric_limits<float>::max()) == 0x7f80);  // rounds past the largest bf16
  CHECK(float_to_bf16_bits(std::bit_cast<float>(0x7f7f7fffu)) == 0x7f7f);
  CHECK(float_to_bf16_bits(std::numeric_limits<float>::denorm_min()) == 0x0000);
  CHECK(float_to_bf16_bits(std::bit_cast<float>(0x00018000u)) == 0x0002);  // subnormal tie: even is up
  CHECK(float_to_bf16_bits(-0.0f) == 0x8000);
  CHECK(float_to_bf16_bits(-INFINITY) == 0xff80);
  CHECK(bf16_is_nan(float_to_bf16_bits(kNaN)));
  CHECK(bf16_is_nan(float_to_bf16_bits(std::bit_cast<float>(0x7f800001u))));  // would truncate to inf
  CHECK(bf16_is_nan(float_to_bf16_bits(std::bit_cast<float>(0xff800001u))));
  CHECK(bf16_bits_to_float(0x3f80) == 1.0f);
  CHECK(bf16_bits_to_float(0x7f7f) == static_cast<float>(std::ldexp(255.0, 120)));
  CHECK(bf16_bits_to_float(0x0001) == static_cast<float>(std::ldexp(1.0, -133)));
}

TEST_CASE("bfloat16: every bit pattern decodes to the IEEE value and round-trips, ties round to even") {
  int bad_value = 0, bad_trip = 0;
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const auto b = static_cast<std::uint16_t>(i);
    const float f = bf16_bits_to_float(b);
    const double want = bf16_value(b);
    if (bf16_is_nan(b)) {
      if (!std::isnan(f)) ++bad_value;
      if (!bf16_is_nan(float_to_bf16_bits(f))) ++bad_trip;
      continue;
    }
    if (static_cast<double>(f) != want || std::signbit(f) != std::signbit(want)) ++bad_value;
    if (float_to_bf16_bits(f) != b) ++bad_trip;
  }
  CHECK(bad_value == 0);
  CHECK(bad_trip == 0);

  const auto& table = bf16_table();
  int bad = 0;
  for (std::size_t k = 0; k + 1 < table.size(); ++k) {
    const float mid = static_cast<float>((table[k] + table[k + 1]) / 2);
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY), -mid})
      if (float_to_bf16_bits(f) != ref_bf16(f)) ++bad;
  }
  Generator gen(8);
  const auto bits = randint(0, 1ll << 32, {1000000}, DType::Int64, Device::cpu(), &gen).to_vector<std::int64_t>();
  for (auto x : bits) {
    const float f = std::bit_cast<float>(static_cast<std::uint32_t>(x));
    if (!std::isnan(f) && float_to_bf16_bits(f) != ref_bf16(f)) ++bad;
  }
  CHECK(bad == 0);
}

TEST_CASE("tensor .to(Float16) / .to(BFloat16) rounds each element and converts back exactly") {
  const std::vector<double> in = {1.0,  1.0 + 0x1p-11, 1.0 + 3 * 0x1p-11, 65504, 65520, 0x1p-25, 3 * 0x1p-25,
                                  -0.0, INFINITY,      -INFINITY,         NAN,   -0.1,  3.14159};
  const Tensor x = from_vector(in, {static_cast<std::int64_t>(in.size())});
  const Tensor h = x.to(DType::Float16);
  CHECK(h.dtype() == DType::Float16);
  CHECK(h.shape() == x.shape());
  const Half* ph = h.data_ptr<Half>();
  std::vector<double> want;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float f = static_cast<float>(in[i]);
    if (std::isnan(f)) {
      CHECK(half_is_nan(ph[i].bits));
      want.push_back(NAN);
    } else {
      CHECK(ph[i].bits == ref_half(f));
      want.push_back(half_value(ref_half(f)));
    }
  }
  test::check_exact(h.to(DType::Float32), x.shape(), want);
  test::check_exact(h.to(DType::Float64), x.shape(), want);
  CHECK(std::signbit(h.to(DType::Float32).to_vector<float>()[7]));  // -0 survives

  const Tensor b = x.to(DType::BFloat16);
  const BFloat16* pb = b.data_ptr<BFloat16>();
  want.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const float f = static_cast<float>(in[i]);
    if (std::isnan(f)) {
      CHECK(bf16_is_nan(pb[i].bits));
      want.push_back(NAN);
    } else {
      CHECK(pb[i].bits == ref_bf16(f));
      want.push_back(bf16_value(ref_bf16(f)));
    }
  }
  test::check_exact(b.to(DType::Float32), x.shape(), want);

  // Float16 -> BFloat16 goes through float: 65504 needs 11 significant bits, bf16 keeps 8 and rounds up to 2^16.
  test::check_exact(tensor({65504.0}).to(DType::Float16).to(DType::BFloat16).to(DType::Float32), {1}, {65536.0});
  // Integers and Bool convert to and from half.
  test::check_exact(tensor({-3, 2049, 0}, DType::Int64).to(DType::Float16).to(DType::Float64), {3}, {-3, 2048, 0});
  test::check_exact(tensor({-3.7, 0.0, 2.9}, DType::Float16).to(DType::Int64), {3}, {-3, 0, 2});
  test::check_exact(tensor({0.5, 0.0}, DType::Float16).to(DType::Bool), {2}, {1, 0});
}

TEST_CASE("dtype metadata: element sizes, names and promotion") {
  CHECK(element_size(DType::Float32) == 4);
  CHECK(element_size(DType::Float64) == 8);
  CHECK(element_size(DType::Float16) == 2);
  CHECK(element_size(DType::BFloat16) == 2);
  CHECK(element_size(DType::Int64) == 8);
  CHECK(element_size(DType::Bool) == 1);
  CHECK(dtype_name(DType::BFloat16) == "bfloat16");
  CHECK(is_floating(DType::Float16));
  CHECK_FALSE(is_floating(DType::Int64));
  CHECK(promote_types(DType::Int64, DType::Float32) == DType::Float32);
  CHECK(promote_types(DType::Bool, DType::Int64) == DType::Int64);
  CHECK(promote_types(DType::Float16, DType::BFloat16) == DType::Float32);
  CHECK(promote_types(DType::Float16, DType::Int64) == DType::Float16);
  CHECK(promote_types(DType::Float32, DType::Float64) == DType::Float64);
  CHECK(promote_types(DType::BFloat16, DType::Bool) == DType::BFloat16);
}
