/// \file
/// \brief nn::PerformerAttention: orthogonal Gaussian features (block Gram-Schmidt), the positive random feature
/// map φ⁺(x) = m^{-½} exp(Wx − |x|²/2) with its query stabiliser and ε, and the layer built on LinearAttention.
#include "layers/attention/performer_attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"

namespace ember::nn {

namespace {

/// rows: n × d row-major -> the same rows made orthonormal in place, by modified Gram-Schmidt.
void gram_schmidt_rows(std::vector<double>& rows, std::int64_t n, std::int64_t d) {
  for (std::int64_t i = 0; i < n; ++i) {
    double* r = &rows[i * d];
    for (std::int64_t j = 0; j < i; ++j) {
      const double* e = &rows[j * d];
      double dot = 0.0;
      for (std::int64_t c = 0; c < d; ++c) dot += r[c] * e[c];
      for (std::int64_t c = 0; c < d; ++c) r[c] -= dot * e[c];
    }
    double norm = 0.0;
    for (std::int64_t c = 0; c < d; ++c) norm += r[c] * r[c];
    norm = std::sqrt(norm);
    for (std::int64_t c = 0; c < d; ++c) r[c] /= norm;
  }
}

/// x: [..., d], W: [m, d] -> the exponents W x − |x|²/2: [..., m].
Tensor favor_exponent(const Tensor& x, const Tensor& W) {
  EMBER_CHECK(W.dim() == 2 && x.dim() >= 1 && x.shape().back() == W.shape()[1],
              fmt::format("favor_positive_features: expected x [..., d] and W [m, d], got x {}, W {}",
                          shape_str(x.shape()), shape_str(W.shape())));
  EMBER_CHECK(x.dtype() == W.dtype(), fmt::format("favor_positive_features: x and W must share a dtype, got {}, {}",
                                                  dtype_name(x.dtype()), dtype_name(W.dtype())));
  const std::int64_t last = x.dim() - 1;
  return matmul(x, transpose(W, 0, 1)) - 0.5 * sum(square(x), {last}, true);
}

/// m from the options: "features" if given (must be ≥ 1), else ⌊d ln d⌋ clamped to ≥ 1.
std::int64_t features_option(const MixerConfig& c, std::int64_t d) {
  const double fallback = std::max(1.0, std::floor(static_cast<double>(d) * std::log(static_cast<double>(d))));
  const double m = c.option("features", fallback);
  EMBER_CHECK(m >= 1.0 && m == std::floor(m),
              fmt::format("PerformerAttention: option features must be an integer >= 1, got {}", m));
  return static_cast<std::int64_t>(m);
}

}  // namespace

Tensor orthogonal_gaussian_features(std::int64_t m, std::int64_t d, Generator& gen, DType dtype) {
  EMBER_CHECK(
      m >= 1 && d >= 1,
      fmt::format("orthogonal_gaussian_features: need m >= 1 features of dim d >= 1, got m = {}, d = {}", m, d));
  const std::int64_t blocks = (m + d - 1) / d;
  std::vector<double> W;
  W.reserve(static_cast<std::size_t>(blocks * d * d));
  for (std::int64_t b = 0; b < blocks; ++b) {
    std::vector<double> block = randn({d, d}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).to_vector<double>();
    gram_schmidt_rows(block, d, d);
    W.insert(W.end(), block.begin(), block.end());
  }
  W.resize(static_cast<std::size_t>(m * d));
  const std::vector<double> g = randn({m, d}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).to_vector<double>();
  for (std::int64_t i = 0; i < m; ++i) {  // row i of W gets the length of an independent N(0, I_d) draw
    double len = 0.0;
    for (std::int64_t c = 0; c < d; ++c) len += g[i * d + c] * g[i * d + c];
    len = std::sqrt(len);
    for (std::int64_t c = 0; c < d; ++c) W[i * d + c] *= len;
  }
  return from_vector(W, {m, d}, dtype);
}

Tensor favor_positive_features(const Tensor& x, const Tensor& W) {
  const Tensor a = favor_exponent(x, W);
  return exp(a) * (1.0 / std::sqrt(static_cast<double>(W.shape()[0])));
}

PerformerAttention::PerformerAttention(const MixerConfig& c)
    : LinearAttention(c, "PerformerAttention"), n_features(features_option(c, head_dim)) {
  Generator& gen = c.gen != nullptr ? *c.gen : default_generator();
  projection = register_buffer("projection", orthogonal_gaussian_features(n_features, head_dim, gen));
}

void PerformerAttention::redraw_features(Generator& gen) {
  NoGradGuard no_grad;
  projection.copy_(orthogonal_gaussian_features(n_features, head_dim, gen, projection.dtype()).to(projection.device()));
}

Tensor PerformerAttention::exponents(const Tensor& x) const {
  return favor_exponent(x * std::pow(static_cast<double>(head_dim), -0.25), projection);
}

Tensor PerformerAttention::feature_map(const Tensor& k) const {
  return (exp(exponents(k)) + kPerformerEps) * (1.0 / std::sqrt(static_cast<double>(n_features)));
}

Tensor PerformerAttention::query_feature_map(const Tensor& q) const {
  const Tensor a = exponents(q);
  // c_x, the row's largest exponent. Not detached (the reference detaches it): it changes the output only through
  // ε, and keeping it in the graph makes the gradient exact for the function computed.
  const Tensor c = max(a, {a.dim() - 1}, true);
  return (exp(a - c) + kPerformerEps) * (1.0 / std::sqrt(static_cast<double>(n_features)));
}

std::int64_t PerformerAttention::feature_dim() const { return n_features; }

std::string PerformerAttention::extra_repr() const {
  return fmt::format("d_model={}, heads={}, features={}, chunk={}", n_heads * head_dim, n_heads, n_features, chunk);
}

}  // namespace ember::nn
