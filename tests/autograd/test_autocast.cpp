/// \file
/// \brief amp::Autocast (autograd/autocast.h): which dtype each op runs in (technique notes §8, oracle 5), the
/// values of low-precision ops against Float64 computations of the rounded inputs, gradients flowing back to the
/// dtypes of the tensors they belong to, Float64 left alone, and the docs' table equal to the code's.
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/half.h"
#include "helpers.h"

using namespace ember;

namespace {

/// Each element rounded to Float16 and back (the value a Float16 tensor holds).
std::vector<double> round_half(const std::vector<double>& v) {
  std::vector<double> out;
  for (double x : v) out.push_back(half_bits_to_float(float_to_half_bits(static_cast<float>(x))));
  return out;
}

/// The spacing of Float16 values around |x| (its ulp): 2^(e − 10) for a normal x in [2^e, 2^(e+1)).
double half_ulp(double x) {
  const double a = std::max(std::abs(x), std::ldexp(1.0, -14));
  return std::ldexp(1.0, static_cast<int>(std::floor(std::log2(a))) - 10);
}

}  // namespace

TEST_CASE("autocast: lower ops give float16, float32 ops give float32, outside nothing changes") {
  Generator gen(1);
  const Tensor x = randn({3, 4, 8}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
  const Tensor w = randn({5, 8}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen), b = randn({5}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
  const Tensor g = ones({8}), beta = zeros({8});
  {
    amp::Autocast region(DType::Float16);
    CHECK(amp::is_enabled());
    CHECK(nn::linear(x, w, b).dtype() == DType::Float16);
    CHECK(matmul(x, transpose(w, 0, 1)).dtype() == DType::Float16);
    const Tensor h = nn::linear(x, w, b);  // float16 in: the float32 ops still answer in float32
    CHECK(softmax(h, -1).dtype() == DType::Float32);
    CHECK(log_softmax(h, -1).dtype() == DType::Float32);
    CHECK(nn::layer_norm(h, ones({5}), zeros({5})).dtype() == DType::Float32);
    CHECK(nn::rms_norm(h, ones({5})).dtype() == DType::Float32);
    CHECK(sum(h).dtype() == DType::Float32);
    CHECK(exp(h).dtype() == DType::Float32);
    CHECK(gelu(h).dtype() == DType::Float16);               // not in the table: runs in its input's dtype
    CHECK((h + narrow(nn::layer_norm(x, g, beta), -1, 0, 5)).dtype() == DType::Float32);  // promotion
    CHECK(cat({h, narrow(x, -1, 0, 5)}, 0).dtype() == DType::Float32);                // widest
    {
      amp::Autocast inner(DType::BFloat16);
      CHECK(nn::linear(x, w, b).dtype() == DType::BFloat16);
      {
        amp::Autocast off(DType::Float16, false);
        CHECK(!amp::is_enabled());
        CHECK(nn::linear(x, w, b).dtype() == DType::Float32);
      }
      CHECK(amp::dtype() == DType::BFloat16);
    }
    CHECK(amp::dtype() == DType::Float16);
    CHECK(nn::linear(x, w, b).dtype() == DType::Float16);
  }
  CHECK(!amp::is_enabled());
  CHECK(nn::linear(x, w, b).dtype() == DType::Float32);
  CHECK_THROWS_EMBER(amp::Autocast(DType::Float64), "Autocast: the dtype must be");
}

TEST_CASE("autocast: float64 tensors are never cast, so gradcheck runs the same inside a region") {
  amp::Autocast region(DType::Float16);
  Generator gen(2);
  const Tensor x = randn({3, 6}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).requires_grad_();
  const Tensor w = randn({4, 6}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).requires_grad_();
  CHECK(nn::linear(x, w).dtype() == DType::Float64);
  const auto r = gradcheck([](const std::vector<Tensor>& in) { return softmax(nn::linear(in[0], in[1]), -1); },
                           {x, w});
  CHECK(r.ok);
}

TEST_CASE("autocast: a float16 linear equals the float64 product of the rounded inputs, rounded once") {
  Generator gen(3);
  const Tensor x = randn({16, 64}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
  const Tensor w = randn({24, 64}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
  Tensor y;
  {
    amp::Autocast region(DType::Float16);
    y = nn::linear(x, w);
  }
  REQUIRE(y.dtype() == DType::Float16);
  const auto xv = round_half(x.to_vector<double>()), wv = round_half(w.to_vector<double>());
  const auto yv = y.to_vector<double>();
  int outside_bound = 0;
  for (int i = 0; i < 16; ++i)
    for (int o = 0; o < 24; ++o) {
      double ref = 0, size = 0;  // the exact sum of products of the Float16 inputs, and the sum of |terms|
      for (int k = 0; k < 64; ++k) {
        ref += xv[i * 64 + k] * wv[o * 64 + k];
        size += std::abs(xv[i * 64 + k] * wv[o * 64 + k]);
      }
      // The result is the Float32 sum rounded once to Float16: within half a Float16 ulp of the exact sum, plus
      // the Float32 accumulation error (at most 64 · 2^-24 · Σ|terms|), which only matters next to a tie.
      const double bound = 0.5 * half_ulp(ref) + 64 * std::ldexp(size, -24);
      if (std::abs(yv[i * 24 + o] - ref) > bound) ++outside_bound;
    }
  CHECK(outside_bound == 0);
}

TEST_CASE("autocast: float16 flash attention equals the float32 kernel on the rounded inputs, rounded") {
  Generator gen(4);
  const Tensor q = randn({2, 2, 9, 8}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen).requires_grad_();
  const Tensor k = randn({2, 2, 9, 8}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen).requires_grad_();
  const Tensor v = randn({2, 2, 9, 8}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen).requires_grad_();
  const Tensor dout = randn({2, 2, 9, 8}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
  Tensor o16;
  {
    amp::Autocast region(DType::Float16);
    o16 = nn::flash_attention(q, k, v, true);
  }
  REQUIRE(o16.dtype() == DType::Float16);
  o16.backward(dout.to(DType::Float16));
  // The same computation by hand: round the inputs, run the Float32 kernel, round the output.
  const Tensor q16 = q.detach().to(DType::Float16).to(DType::Float32).requires_grad_();
  const Tensor k16 = k.detach().to(DType::Float16).to(DType::Float32).requires_grad_();
  const Tensor v16 = v.detach().to(DType::Float16).to(DType::Float32).requires_grad_();
  const Tensor o32 = nn::flash_attention(q16, k16, v16, true);
  CHECK(test::max_abs_diff(o16.to(DType::Float32), o32.to(DType::Float16).to(DType::Float32)) == 0.0);
  o32.backward(dout.to(DType::Float16).to(DType::Float32));
  CHECK(q.grad().dtype() == DType::Float32);  // the leaves get gradients in their own dtype
  // dv = Pᵀ dO is the Float32 kernel's, rounded. dq also uses the stored Float16 output O (in D = rowsum(dO ∘ O)),
  // where the Float32 run has O unrounded: they agree to a few Float16 ulps of the largest entry.
  CHECK(test::max_abs_diff(v.grad(), v16.grad().to(DType::Float16).to(DType::Float32)) == 0.0);
  const double dq_scale = max(abs(q16.grad())).item();
  CHECK(test::max_abs_diff(q.grad(), q16.grad()) < 4 * std::ldexp(dq_scale, -11));
}

TEST_CASE("autocast: a mixed-precision network's gradients approximate the float32 ones and keep each dtype") {
  Generator gen(5);
  const Tensor x = randn({8, 16}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen);
  Tensor w1 = (randn({32, 16}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen) * 0.25).requires_grad_();
  Tensor w2 = (randn({10, 32}, DType::Float32, Device::cpu(), 0.0, 1.0, &gen) * 0.25).requires_grad_();
  const Tensor target = randint(0, 10, {8}, DType::Int64, Device::cpu(), &gen);
  const auto loss_of = [&] {  // linear -> layer norm -> gelu -> linear + residual-style sum -> cross-entropy
    const Tensor h = gelu(nn::layer_norm(nn::linear(x, w1), Tensor(), Tensor()));
    return cross_entropy(nn::linear(h, w2) + sum(h, {1}, true) * 0.01, target);
  };
  const Tensor l32 = loss_of();
  l32.backward();
  const Tensor g1 = w1.grad(), g2 = w2.grad();
  w1.set_grad(Tensor());
  w2.set_grad(Tensor());
  Tensor l16;
  {
    amp::Autocast region(DType::Float16);
    l16 = loss_of();
  }
  CHECK(l16.dtype() == DType::Float32);
  l16.backward();
  REQUIRE(w1.grad().dtype() == DType::Float32);
  CHECK(std::abs(l16.item() - l32.item()) < 2e-3 * std::abs(l32.item()));
  // Relative error of the whole gradient: a few Float16 ulps (2^-11 ≈ 4.9e-4) through two products.
  const auto rel = [](const Tensor& a, const Tensor& b) { return norm(a - b).item() / norm(b).item(); };
  CHECK(rel(w1.grad(), g1) < 5e-3);
  CHECK(rel(w2.grad(), g2) < 5e-3);
  CHECK(rel(w1.grad(), g1) > 0.0);  // it did run in Float16
}

TEST_CASE("autocast: the table in docs/amp.md is the table in the code") {
  std::ifstream in(std::string(EMBER_DOCS_DIR) + "/amp.md");
  REQUIRE(in.good());
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("| `")) rows.push_back(line);
  REQUIRE(rows.size() == amp::rules().size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const amp::Rule& r = amp::rules()[i];
    std::ostringstream want;
    want << "| `" << r.op << "` | " << amp::cast_name(r.cast) << " | " << r.why << " |";
    CHECK(rows[i] == want.str());
  }
}
