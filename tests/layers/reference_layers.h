/// \file
/// \brief Naive reference forms of the layers for the layer tests: plain double loops over flat
/// row-major vectors, written from the equations (technique notes §14), sharing no code with layers/.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "helpers.h"
#include "layers/linear.h"

namespace ember::test::ref {

using Vec = std::vector<double>;
using i64 = std::int64_t;

/// The tensor's values as doubles (row-major); an undefined tensor gives an empty vector.
inline Vec vec(const Tensor& t) { return t.defined() ? t.to_vector<double>() : Vec{}; }

using ember::test::max_diff;

/// The output layer of S4, S4D and LRU in loops: y, the SSM outputs of all positions flattened [rows, H] -> GLU of
/// W·GELU(y) + b (erf GELU; W [2H, H], b [2H] from `linear`), flattened [rows, H].
inline Vec gelu_linear_glu(const nn::Linear& linear, const Vec& y) {
  const Vec W = vec(linear.weight), bias = vec(linear.bias);
  const std::size_t H = bias.size() / 2;
  Vec out;
  for (std::size_t row = 0; row < y.size() / H; ++row) {
    Vec z(H);
    for (std::size_t h = 0; h < H; ++h) z[h] = 0.5 * y[row * H + h] * (1.0 + std::erf(y[row * H + h] / std::sqrt(2.0)));
    for (std::size_t o = 0; o < H; ++o) {
      double a = bias[o], g = bias[H + o];
      for (std::size_t h = 0; h < H; ++h) a += W[o * H + h] * z[h], g += W[(H + o) * H + h] * z[h];
      out.push_back(a / (1.0 + std::exp(-g)));
    }
  }
  return out;
}

/// x: N rows of `in`, W: [out, in], b: [out] or empty -> N rows of `out`: y = W x + b.
inline Vec linear(const Vec& x, const Vec& W, const Vec& b, i64 in, i64 out) {
  const i64 N = static_cast<i64>(x.size()) / in;
  Vec y(N * out);
  for (i64 n = 0; n < N; ++n)
    for (i64 o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (i64 i = 0; i < in; ++i) s += W[o * in + i] * x[n * in + i];
      y[n * out + o] = s;
    }
  return y;
}

/// Rows of D: (x - mean) / sqrt(var + eps) * w + b (biased variance; w, b may be empty).
inline Vec layer_norm(const Vec& x, i64 D, const Vec& w, const Vec& b, double eps) {
  Vec y(x.size());
  for (std::size_t r = 0; r < x.size() / D; ++r) {
    double mu = 0, var = 0;
    for (i64 j = 0; j < D; ++j) mu += x[r * D + j];
    mu /= static_cast<double>(D);
    for (i64 j = 0; j < D; ++j) var += (x[r * D + j] - mu) * (x[r * D + j] - mu);
    var /= static_cast<double>(D);
    for (i64 j = 0; j < D; ++j)
      y[r * D + j] = (x[r * D + j] - mu) / std::sqrt(var + eps) * (w.empty() ? 1.0 : w[j]) + (b.empty() ? 0.0 : b[j]);
  }
  return y;
}

/// Rows of D: x / sqrt(mean(x²) + eps) * w (w may be empty).
inline Vec rms_norm(const Vec& x, i64 D, const Vec& w, double eps) {
  Vec y(x.size());
  for (std::size_t r = 0; r < x.size() / D; ++r) {
    double ms = 0;
    for (i64 j = 0; j < D; ++j) ms += x[r * D + j] * x[r * D + j];
    ms /= static_cast<double>(D);
    for (i64 j = 0; j < D; ++j) y[r * D + j] = x[r * D + j] / std::sqrt(ms + eps) * (w.empty() ? 1.0 : w[j]);
  }
  return y;
}

/// Exact GELU: x Φ(x) = ½ x (1 + erf(x/√2)).
inline double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
/// SiLU: x σ(x).
inline double silu(double x) { return x / (1.0 + std::exp(-x)); }
/// softmax(z / T), in double.
inline Vec softmax_of(const Vec& z, double T) {
  double m = -INFINITY, s = 0.0;
  for (double v : z) m = std::max(m, v / T);
  Vec p(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) s += p[i] = std::exp(z[i] / T - m);
  for (double& v : p) v /= s;
  return p;
}

/// q: [B, H, Tq, d], k, v: [B, H, Tk, d] -> [B, H, Tq, d]: softmax(q kᵀ/√d) v; when causal, query i sees
/// keys j <= Tk - Tq + i (bottom-right alignment).
inline Vec attention(const Vec& q, const Vec& k, const Vec& v, i64 BH, i64 Tq, i64 Tk, i64 d, bool causal) {
  Vec o(BH * Tq * d, 0.0);
  for (i64 bh = 0; bh < BH; ++bh)
    for (i64 i = 0; i < Tq; ++i) {
      const i64 last = causal ? Tk - Tq + i : Tk - 1;
      Vec s(Tk, -std::numeric_limits<double>::infinity());
      double m = -std::numeric_limits<double>::infinity();
      for (i64 j = 0; j <= last; ++j) {
        double dot = 0;
        for (i64 c = 0; c < d; ++c) dot += q[(bh * Tq + i) * d + c] * k[(bh * Tk + j) * d + c];
        s[j] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, s[j]);
      }
      double z = 0;
      for (i64 j = 0; j <= last; ++j) z += std::exp(s[j] - m);
      for (i64 j = 0; j <= last; ++j) {
        const double p = std::exp(s[j] - m) / z;
        for (i64 c = 0; c < d; ++c) o[(bh * Tq + i) * d + c] += p * v[(bh * Tk + j) * d + c];
      }
    }
  return o;
}

/// Rotates one head vector x[0..d) at position m: pairs (i, i + d/2) by angle m·base^(−2i/d).
inline void rotate(double* x, i64 d, double m, double base = 10000.0) {
  const i64 half = d / 2;
  for (i64 i = 0; i < half; ++i) {
    const double ang = m * std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(d));
    const double a = x[i], b = x[i + half];
    x[i] = a * std::cos(ang) - b * std::sin(ang);
    x[i + half] = a * std::sin(ang) + b * std::cos(ang);
  }
}

/// x: [BH, T, d] at positions start..start+T−1 -> rotated (rotate-half RoPE).
inline Vec rope(Vec x, i64 BH, i64 T, i64 d, i64 start, double base = 10000.0) {
  for (i64 bh = 0; bh < BH; ++bh)
    for (i64 t = 0; t < T; ++t) rotate(&x[(bh * T + t) * d], d, static_cast<double>(start + t), base);
  return x;
}

/// The weights of one causal multi-head attention layer (biases may be empty).
struct MhaWeights {
  Vec wq, bq, wk, bk, wv, bv, wo, bo;
};

/// x: [B, T, D] -> [B, T, D], causal MHA with H heads written per position and head, RoPE optional.
inline Vec mha(const Vec& x, i64 B, i64 T, i64 D, i64 H, const MhaWeights& w, bool use_rope, double base = 10000.0) {
  const i64 d = D / H;
  const Vec q = linear(x, w.wq, w.bq, D, D), k = linear(x, w.wk, w.bk, D, D), v = linear(x, w.wv, w.bv, D, D);
  // [B, T, H, d] -> [B, H, T, d]
  const auto heads = [&](const Vec& a) {
    Vec out(a.size());
    for (i64 b = 0; b < B; ++b)
      for (i64 t = 0; t < T; ++t)
        for (i64 h = 0; h < H; ++h)
          for (i64 c = 0; c < d; ++c) out[((b * H + h) * T + t) * d + c] = a[(b * T + t) * D + h * d + c];
    return out;
  };
  Vec qh = heads(q), kh = heads(k);
  if (use_rope) {
    qh = rope(qh, B * H, T, d, 0, base);
    kh = rope(kh, B * H, T, d, 0, base);
  }
  const Vec o = attention(qh, kh, heads(v), B * H, T, T, d, true);
  Vec merged(x.size());
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t)
      for (i64 h = 0; h < H; ++h)
        for (i64 c = 0; c < d; ++c) merged[(b * T + t) * D + h * d + c] = o[((b * H + h) * T + t) * d + c];
  return linear(merged, w.wo, w.bo, D, D);
}

/// x [N, D] through the square Linear layer p (its weight and, when present, bias), by ref::linear.
inline Vec lin(const std::shared_ptr<nn::Linear>& p, const Vec& x, i64 D) {
  return linear(x, vec(p->weight), p->bias.defined() ? vec(p->bias) : Vec{}, D, D);
}

/// [B, T, H, d] -> [B, H, T, d]: the head split of the projections.
inline Vec heads(const Vec& a, i64 B, i64 T, i64 H, i64 d) {
  Vec out(a.size());
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t)
      for (i64 h = 0; h < H; ++h)
        for (i64 c = 0; c < d; ++c) out[((b * H + h) * T + t) * d + c] = a[(b * T + t) * H * d + h * d + c];
  return out;
}

/// [B, H, T, d] -> [B, T, H, d]: the heads concatenated back before W_o.
inline Vec unheads(const Vec& o, i64 B, i64 T, i64 H, i64 d) {
  Vec out(o.size());
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t)
      for (i64 h = 0; h < H; ++h)
        for (i64 c = 0; c < d; ++c) out[(b * T + t) * H * d + h * d + c] = o[((b * H + h) * T + t) * d + c];
  return out;
}

}  // namespace ember::test::ref
