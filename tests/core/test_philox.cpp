/// \file
/// \brief Philox 4x32-10 against the Random123 known-answer vectors, the Generator's stream
/// bookkeeping, reproducibility across seeds and thread counts, and the distributions of rand, randn,
/// randint and bernoulli within statistical bounds (5 standard errors for 1e5 samples).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/philox.h"
#include "reference.h"

using namespace ember;

namespace {

double mean_of(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }

double std_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / (v.size() - 1));
}

/// Restores the thread count when a test that changes it ends.
struct ThreadCountGuard {
  int saved = get_num_threads();
  ~ThreadCountGuard() { set_num_threads(saved); }
};

}  // namespace

TEST_CASE("philox4x32_10 reproduces the Random123 known-answer vectors") {
  using W4 = std::array<std::uint32_t, 4>;
  CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) == W4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        W4{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        W4{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
  // philox_block puts the 64-bit block index in counter words 0-1 and the seed in the key.
  CHECK(philox_block(0xffffffffffffffffull, 0xffffffffull | (0xffffffffull << 32)) ==
        philox4x32_10({0xffffffff, 0xffffffff, 0, 0}, {0xffffffff, 0xffffffff}));
  CHECK(philox_block(0, 0) == W4{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
}

TEST_CASE("uniform_float and uniform_double map words into the unit interval") {
  CHECK(uniform_float(0) == 0.0f);
  CHECK(uniform_float(0xffffffffu) == 1.0f - 0x1p-24f);  // the top 24 bits: (2^24 - 1) / 2^24
  CHECK(uniform_float(0x80000000u) == 0.5f);
  CHECK(uniform_double(0, 0) == 0.0);
  CHECK(uniform_double(0xffffffffu, 0xffffffffu) < 1.0);
  CHECK(uniform_double(0xffffffffu, 0xffffffffu) >= 1.0 - 0x1p-52);
}

TEST_CASE("rand fills element 2k and 2k+1 from block offset + k, so draws depend only on (seed, offset, i)") {
  Generator gen(1234);
  gen.set_offset(10);
  const auto u = rand({5}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).to_vector<double>();
  CHECK(gen.offset() == 13);  // 5 elements use 3 blocks
  for (int i = 0; i < 5; ++i) {
    const auto w = philox4x32_10({static_cast<std::uint32_t>(10 + i / 2), 0, 0, 0}, {1234, 0});
    const double want = i % 2 == 0 ? uniform_double(w[0], w[1]) : uniform_double(w[2], w[3]);
    CHECK(u[i] == want);
  }
  // Two draws in a row equal one draw of both, split at the block boundary.
  Generator a(99), b(99);
  const auto first = randn({6}, DType::Float64, Device::cpu(), 0, 1, &a).to_vector<double>();
  const auto second = randn({4}, DType::Float64, Device::cpu(), 0, 1, &a).to_vector<double>();
  const auto both = randn({10}, DType::Float64, Device::cpu(), 0, 1, &b).to_vector<double>();
  for (int i = 0; i < 6; ++i) CHECK(first[i] == both[i]);
  for (int i = 0; i < 4; ++i) CHECK(second[i] == both[6 + i]);
  // set_offset replays; manual_seed restarts.
  Generator c(99);
  c.set_offset(3);
  CHECK(randn({4}, DType::Float64, Device::cpu(), 0, 1, &c).to_vector<double>() == second);
  c.manual_seed(99);
  CHECK(c.offset() == 0);
  CHECK(randn({6}, DType::Float64, Device::cpu(), 0, 1, &c).to_vector<double>() == first);
}

TEST_CASE("same seed gives the same tensor, another seed or the next draw differs") {
  Generator g1(42), g2(42), g3(43);
  const auto x1 = randn({1000}, DType::Float32, Device::cpu(), 0, 1, &g1).to_vector<double>();
  const auto x2 = randn({1000}, DType::Float32, Device::cpu(), 0, 1, &g2).to_vector<double>();
  const auto x3 = randn({1000}, DType::Float32, Device::cpu(), 0, 1, &g3).to_vector<double>();
  const auto x4 = randn({1000}, DType::Float32, Device::cpu(), 0, 1, &g1).to_vector<double>();
  CHECK(x1 == x2);
  int same3 = 0, same4 = 0;
  for (int i = 0; i < 1000; ++i) {
    same3 += x1[i] == x3[i];
    same4 += x1[i] == x4[i];
  }
  CHECK(same3 == 0);
  CHECK(same4 == 0);
  // The default generator follows manual_seed.
  manual_seed(5);
  const auto d1 = rand({100}).to_vector<double>();
  manual_seed(5);
  CHECK(rand({100}).to_vector<double>() == d1);
}

TEST_CASE("random tensors are identical with 1 and 2 threads") {
  ThreadCountGuard guard;
  const std::int64_t n = 100001;  // odd, and large enough for the parallel path
  auto draw = [n] {
    Generator g(2024);
    std::vector<std::vector<double>> out;
    out.push_back(randn({n}, DType::Float32, Device::cpu(), 0, 1, &g).to_vector<double>());
    out.push_back(rand({n}, DType::Float64, Device::cpu(), -1, 1, &g).to_vector<double>());
    out.push_back(randint(0, 1000, {n}, DType::Int64, Device::cpu(), &g).to_vector<double>());
    out.push_back(bernoulli({n}, 0.3, DType::Float32, Device::cpu(), &g).to_vector<double>());
    return out;
  };
  set_num_threads(1);
  const auto one = draw();
  set_num_threads(2);
  const auto two = draw();
  for (std::size_t k = 0; k < one.size(); ++k) CHECK(one[k] == two[k]);
}

TEST_CASE("randn has mean 0 and std 1 within statistical bounds, and honours mean and std") {
  const double n = 1e5;
  Generator g(11);
  for (DType dt : {DType::Float32, DType::Float64}) {
    const auto v = randn({100000}, dt, Device::cpu(), 0, 1, &g).to_vector<double>();
    CHECK(std::abs(mean_of(v)) < 5 / std::sqrt(n));
    CHECK(std::abs(std_of(v) - 1) < 5 / std::sqrt(2 * n));
    // P(|x| < 1) = erf(1 / sqrt 2) = 0.6827; the count is binomial.
    const double p = std::erf(1 / std::sqrt(2.0));
    const double inside = std::count_if(v.begin(), v.end(), [](double x) { return std::abs(x) < 1; }) / n;
    CHECK(std::abs(inside - p) < 5 * std::sqrt(p * (1 - p) / n));
    CHECK(std::all_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); }));
  }
  const auto w = randn({100000}, DType::Float64, Device::cpu(), 3.0, 0.5, &g).to_vector<double>();
  CHECK(std::abs(mean_of(w) - 3.0) < 5 * 0.5 / std::sqrt(n));
  CHECK(std::abs(std_of(w) - 0.5) < 5 * 0.5 / std::sqrt(2 * n));
}

TEST_CASE("rand lies in low..high (high excluded) and is uniform, in every floating dtype") {
  const double n = 1e5;
  Generator g(12);
  for (DType dt : {DType::Float64, DType::Float32, DType::BFloat16, DType::Float16}) {
    CAPTURE(dtype_name(dt));
    const auto v = rand({100000}, dt, Device::cpu(), -2.0, 3.0, &g).to_vector<double>();
    CHECK(*std::min_element(v.begin(), v.end()) >= -2.0);
    CHECK(*std::max_element(v.begin(), v.end()) < 3.0);
    CHECK(std::abs(mean_of(v) - 0.5) < 5 * (5 / std::sqrt(12.0)) / std::sqrt(n) + 0.01);
    // Ten equal bins each hold a tenth, within 5 binomial standard errors.
    std::vector<int> bins(10, 0);
    for (double x : v) ++bins[std::min(9, static_cast<int>((x + 2.0) / 0.5))];
    for (int b : bins) CHECK(std::abs(b / n - 0.1) < 5 * std::sqrt(0.09 / n) + 0.01);
    // [0, 1) in a 16-bit type: rounding must never produce 1.
    const auto u = rand({100000}, dt, Device::cpu(), 0.0, 1.0, &g).to_vector<double>();
    CHECK(*std::max_element(u.begin(), u.end()) < 1.0);
    CHECK(*std::min_element(u.begin(), u.end()) >= 0.0);
  }
}

TEST_CASE("randint covers low..high-1 uniformly") {
  const double n = 1e5;
  Generator g(13);
  const auto v = randint(-3, 4, {100000}, DType::Int64, Device::cpu(), &g).to_vector<std::int64_t>();
  std::vector<int> counts(7, 0);
  for (auto x : v) {
    REQUIRE(x >= -3);
    REQUIRE(x < 4);
    ++counts[x + 3];
  }
  for (int c : counts) CHECK(std::abs(c / n - 1.0 / 7) < 5 * std::sqrt((1.0 / 7) * (6.0 / 7) / n));
  const Tensor f = randint(0, 5, {3, 4}, DType::Float32, Device::cpu(), &g);
  CHECK(f.dtype() == DType::Float32);
  for (double x : f.to_vector<double>()) CHECK((x == std::floor(x) && x >= 0 && x < 5));
}

TEST_CASE("bernoulli frequencies match p") {
  const double n = 1e5;
  Generator g(14);
  const auto v = bernoulli({100000}, 0.3, DType::Float32, Device::cpu(), &g).to_vector<double>();
  CHECK(std::all_of(v.begin(), v.end(), [](double x) { return x == 0 || x == 1; }));
  CHECK(std::abs(mean_of(v) - 0.3) < 5 * std::sqrt(0.21 / n));
  // Per-element probabilities: columns with p = 0, 0.25, 1.
  const Tensor p = expand(tensor({{0.0, 0.25, 1.0}}), {50000, 3});
  const Tensor b = bernoulli(p, &g);
  CHECK(b.shape() == Shape{50000, 3});
  CHECK(b.dtype() == DType::Float32);
  const auto col = sum(b, {0}).to_vector<double>();
  CHECK(col[0] == 0);
  CHECK(col[2] == 50000);
  CHECK(std::abs(col[1] / 50000 - 0.25) < 5 * std::sqrt(0.25 * 0.75 / 50000));
  CHECK(bernoulli({10}, 1.0, DType::Int64, Device::cpu(), &g).to_vector<double>() == std::vector<double>(10, 1.0));
}
