/// \file
/// \brief PerformerAttention (technique notes §12): φ⁺ against a naive loop and > 0; orthogonal blocks and χ_d row
/// norms; the kernel estimate φ⁺(x)ᵀφ⁺(y) is unbiased for exp(xᵀy) (iid and orthogonal W, within 5 standard
/// errors) and orthogonal rows lower its MSE, its iid MSE matches Lemma 1, and x = −y is exact; the layer's error
/// against exact softmax attention (ref::mha) falls as m grows; the chunked causal forward equals the masked
/// quadratic form with φ written as loops, and the recurrent step; large inputs (the query shift against
/// underflow, the key bound e^{|w|²/2}); causality; Float64 gradcheck; redraw_features and the state dict; options.
#include <algorithm>
#include <cmath>
#include <map>

#include "autograd/gradcheck.h"
#include "layer_helpers.h"
#include "layers/attention/performer_attention.h"
#include "reference_layers.h"

using namespace ember;
using namespace ember::test;
using ref::Vec;
using ref::vec;
using ref::heads;
using ref::lin;
using ref::unheads;
using i64 = std::int64_t;

namespace {

nn::MixerConfig config(i64 d_model, i64 heads, double features, double chunk, Generator* gen = nullptr,
                       bool bias = true) {
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = heads;
  c.bias = bias;
  c.max_len = 32;
  c.options["features"] = features;
  c.options["chunk"] = chunk;
  c.gen = gen;
  return c;
}

double dot(const double* a, const double* b, i64 d) {
  double s = 0.0;
  for (i64 c = 0; c < d; ++c) s += a[c] * b[c];
  return s;
}

/// E|g| for g ~ N(0, I_d): √2 Γ((d+1)/2) / Γ(d/2), the mean of the χ_d distribution.
double chi_mean(i64 d) {
  const double h = static_cast<double>(d) / 2.0;
  return std::sqrt(2.0) * std::exp(std::lgamma(h + 0.5) - std::lgamma(h));
}

/// x: n rows of d, W: [m, d] -> n rows of m: m^{-½} (exp(w_iᵀx' − |x'|²/2 − c) + ε) with x' = d^{-¼} x, and c the
/// row's largest exponent for queries, 0 for keys: the layer's feature map, one number at a time.
Vec features(const Vec& x, const Vec& W, i64 n, i64 d, i64 m, bool query) {
  Vec f(n * m);
  const double s = std::pow(static_cast<double>(d), -0.25);
  for (i64 r = 0; r < n; ++r) {
    Vec xs(d);
    for (i64 c = 0; c < d; ++c) xs[c] = s * x[r * d + c];
    const double half_sq = 0.5 * dot(xs.data(), xs.data(), d);
    Vec a(m);
    for (i64 i = 0; i < m; ++i) a[i] = dot(&W[i * d], xs.data(), d) - half_sq;
    const double shift = query ? *std::max_element(a.begin(), a.end()) : 0.0;
    for (i64 i = 0; i < m; ++i)
      f[r * m + i] = (std::exp(a[i] - shift) + nn::kPerformerEps) / std::sqrt(static_cast<double>(m));
  }
  return f;
}

/// The Performer layer with loops: y_t = Σ_{s≤t} a_ts v_s / (Σ_{s≤t} a_ts + ε'), a_ts = φ(q_t)·φ(k_s), then W_o.
Vec reference_performer(const nn::PerformerAttention& m, const Vec& x, i64 B, i64 T) {
  const i64 H = m.n_heads, d = m.head_dim, D = H * d, F = m.n_features;
  const Vec W = vec(m.projection);
  const Vec fq = features(heads(lin(m.q_proj, x, D), B, T, H, d), W, B * H * T, d, F, true);
  const Vec fk = features(heads(lin(m.k_proj, x, D), B, T, H, d), W, B * H * T, d, F, false);
  const Vec v = heads(lin(m.v_proj, x, D), B, T, H, d);
  Vec o(B * H * T * d, 0.0);
  for (i64 bh = 0; bh < B * H; ++bh)
    for (i64 t = 0; t < T; ++t) {
      double den = 0.0;
      for (i64 s = 0; s <= t; ++s) {
        const double a = dot(&fq[(bh * T + t) * F], &fk[(bh * T + s) * F], F);
        den += a;
        for (i64 c = 0; c < d; ++c) o[(bh * T + t) * d + c] += a * v[(bh * T + s) * d + c];
      }
      for (i64 c = 0; c < d; ++c) o[(bh * T + t) * d + c] /= den + nn::kLinearAttentionEps;
    }
  return lin(m.o_proj, unheads(o, B, T, H, d), D);
}

/// The kernel estimates φ⁺(x)ᵀφ⁺(y), one per draw of W from `draw`.
template <class Draw>
Vec kernel_estimates(const Tensor& x, const Tensor& y, i64 draws, Draw draw) {
  Vec est(draws);
  for (i64 n = 0; n < draws; ++n) {
    const Tensor W = draw();
    est[n] = sum(nn::favor_positive_features(x, W) * nn::favor_positive_features(y, W)).item();
  }
  return est;
}

/// Mean and standard error of the mean of samples.
std::pair<double, double> mean_and_se(const Vec& s) {
  const double n = static_cast<double>(s.size());
  double mean = 0.0, var = 0.0;
  for (double v : s) mean += v / n;
  for (double v : s) var += (v - mean) * (v - mean) / (n - 1.0);
  return {mean, std::sqrt(var / n)};
}

/// d-dim x and y of norm 0.4·√d with cos(x, y) = −0.5, so |x + y|² = 0.16 d. The squared error of the estimate is
/// heavy-tailed (its variance grows like e^{3|x+y|²}); this angle keeps its sample mean within ~3% at 20000 draws.
std::pair<Tensor, Tensor> kernel_points(i64 d) {
  Vec u = vec(normal({d}, 21)), w = vec(normal({d}, 22));
  const auto scale = [&](Vec& a, double r) {
    const double n = std::sqrt(dot(a.data(), a.data(), d));
    for (double& v : a) v *= r / n;
  };
  scale(u, 1.0);
  const double uw = dot(u.data(), w.data(), d);
  for (i64 c = 0; c < d; ++c) w[c] -= uw * u[c];  // w ⟂ u
  scale(w, 1.0);
  const double r = 0.4 * std::sqrt(static_cast<double>(d));
  Vec x(d), y(d);
  for (i64 c = 0; c < d; ++c) {
    x[c] = r * u[c];
    y[c] = r * (-0.5 * u[c] + std::sqrt(0.75) * w[c]);
  }
  return {from_vector(x, {d}, DType::Float64), from_vector(y, {d}, DType::Float64)};
}

}  // namespace

TEST_CASE("performer: favor_positive_features is positive and equals the naive exp loop") {
  Generator gen(3);
  const Tensor W = nn::orthogonal_gaussian_features(13, 8, gen, DType::Float64);
  REQUIRE(W.shape() == Shape{13, 8});
  const Tensor x = normal({2, 3, 8}, 4, DType::Float64, 2.0);
  const Tensor f = nn::favor_positive_features(x, W);
  REQUIRE(f.shape() == Shape{2, 3, 13});
  const Vec xv = vec(x), wv = vec(W), fv = vec(f);
  for (i64 r = 0; r < 6; ++r)
    for (i64 i = 0; i < 13; ++i) {
      const double want =
          std::exp(dot(&wv[i * 8], &xv[r * 8], 8) - 0.5 * dot(&xv[r * 8], &xv[r * 8], 8)) / std::sqrt(13.0);
      CHECK(fv[r * 13 + i] > 0.0);
      CHECK(std::abs(fv[r * 13 + i] - want) < 1e-12 * want);
    }
}

TEST_CASE("performer: rows in each orthogonal block are orthogonal and row norms follow chi_d") {
  const i64 d = 8;
  Generator gen(5);
  for (i64 m : {8, 13, 40}) {  // one block, a partial second block, five blocks
    CAPTURE(m);
    const Vec W = vec(nn::orthogonal_gaussian_features(m, d, gen, DType::Float64));
    double cross_block = 0.0;
    for (i64 i = 0; i < m; ++i)
      for (i64 j = 0; j < i; ++j) {
        const double cos =
            dot(&W[i * d], &W[j * d], d) / std::sqrt(dot(&W[i * d], &W[i * d], d) * dot(&W[j * d], &W[j * d], d));
        if (i / d == j / d)
          CHECK(std::abs(cos) < 1e-12);
        else
          cross_block = std::max(cross_block, std::abs(cos));
      }
    if (m > d) CHECK(cross_block > 0.1);  // different blocks are independent draws, not orthogonal
  }
  // Row norms: χ_d with mean E|g| and variance d − E|g|², over 4000 rows.
  const i64 rows = 4000;
  const Vec W = vec(nn::orthogonal_gaussian_features(rows, d, gen, DType::Float64));
  Vec norms(rows);
  for (i64 i = 0; i < rows; ++i) norms[i] = std::sqrt(dot(&W[i * d], &W[i * d], d));
  const auto [mean, se] = mean_and_se(norms);
  const double want = chi_mean(d), want_se = std::sqrt((static_cast<double>(d) - want * want) / rows);
  CHECK(std::abs(mean - want) < 5.0 * want_se);
  CHECK(std::abs(se - want_se) < 0.1 * want_se);
}

TEST_CASE("performer: the same generator state gives the same W, and other seeds differ") {
  Generator a(9), b(9), c(10);
  const Tensor wa = nn::orthogonal_gaussian_features(20, 6, a), wb = nn::orthogonal_gaussian_features(20, 6, b);
  CHECK(wa.dtype() == DType::Float32);
  CHECK(max_abs_diff(wa, wb) == 0.0);
  CHECK(max_abs_diff(wa, nn::orthogonal_gaussian_features(20, 6, c)) > 0.1);
  CHECK(max_abs_diff(wa, nn::orthogonal_gaussian_features(20, 6, a)) > 0.1);  // a has moved on
}

TEST_CASE("performer: the kernel estimate is unbiased for exp(x.y), iid and orthogonal W, within 5 standard errors") {
  const i64 d = 8, m = 32, draws = 4000;
  const auto [x, y] = kernel_points(d);
  const double want = std::exp(dot(vec(x).data(), vec(y).data(), d));
  Generator gen(11);
  const Vec iid = kernel_estimates(x, y, draws, [&] {
    return randn({m, d}, DType::Float64, Device::cpu(), 0, 1, &gen);
  });
  const Vec ort =
      kernel_estimates(x, y, draws, [&] { return nn::orthogonal_gaussian_features(m, d, gen, DType::Float64); });
  const auto [mean_iid, se_iid] = mean_and_se(iid);
  const auto [mean_ort, se_ort] = mean_and_se(ort);
  CHECK(std::abs(mean_iid - want) < 5.0 * se_iid);
  CHECK(std::abs(mean_ort - want) < 5.0 * se_ort);
  // the draws really vary: the standard error is not trivially 0
  CHECK(se_iid > 1e-3 * want);
  CHECK(se_ort > 1e-4 * want);
  for (double e : iid) CHECK(e > 0.0);
  // Orthogonal rows lower the variance (the paper's Theorem 2); measured 0.0188 against 0.0220 (each ±~3%).
  double mse_iid = 0.0, mse_ort = 0.0;
  for (i64 n = 0; n < draws; ++n) {
    mse_iid += (iid[n] - want) * (iid[n] - want) / draws;
    mse_ort += (ort[n] - want) * (ort[n] - want) / draws;
  }
  CHECK(mse_ort < mse_iid);
}

TEST_CASE("performer: the iid kernel MSE matches Lemma 1, and x = -y is estimated exactly") {
  const i64 d = 8, m = 32, draws = 20000;
  const auto [x, y] = kernel_points(d);
  const Vec xv = vec(x), yv = vec(y);
  Vec z(d);
  for (i64 c = 0; c < d; ++c) z[c] = xv[c] + yv[c];
  const double sm = std::exp(dot(xv.data(), yv.data(), d)), zz = dot(z.data(), z.data(), d);
  const double lemma1 = std::exp(zz) * sm * sm * (1.0 - std::exp(-zz)) / static_cast<double>(m);
  Generator gen(12);
  const Vec est = kernel_estimates(x, y, draws, [&] {
    return randn({m, d}, DType::Float64, Device::cpu(), 0, 1, &gen);
  });
  Vec sq(draws);
  for (i64 n = 0; n < draws; ++n) sq[n] = (est[n] - sm) * (est[n] - sm);
  const auto [mse, se] = mean_and_se(sq);
  CAPTURE(mse);
  CAPTURE(lemma1);
  CAPTURE(se);
  CHECK(std::abs(mse - lemma1) < 0.1 * lemma1);
  CHECK(se < 0.04 * lemma1);  // 20000 draws pin the MSE down well inside the 10% band

  const Tensor neg = -x;
  const double exact = std::exp(-dot(xv.data(), xv.data(), d));
  for (i64 n = 0; n < 5; ++n) {
    const Tensor W = nn::orthogonal_gaussian_features(m, d, gen, DType::Float64);
    const double e = sum(nn::favor_positive_features(x, W) * nn::favor_positive_features(neg, W)).item();
    CHECK(std::abs(e - exact) < 1e-13 * exact);
  }
}

TEST_CASE("performer: the error against exact softmax attention falls as the number of features grows") {
  const i64 B = 2, T = 24, D = 16, H = 2, seeds = 6;
  // Small inputs keep |q|, |k| where the error is in its m^{-½} regime (larger ones saturate it at small m).
  const Tensor x = normal({B, T, D}, 31, DType::Float64, 0.3);
  std::map<i64, double> err;
  for (i64 m : {16, 64, 256})
    for (i64 s = 0; s < seeds; ++s) {
      Generator gen(100 + s);
      nn::PerformerAttention layer(config(D, H, static_cast<double>(m), 8, &gen));
      randomize(layer, 17);  // the same projections for every m and seed: only W changes
      layer.to(DType::Float64);
      ref::MhaWeights w{vec(layer.q_proj->weight), vec(layer.q_proj->bias),   vec(layer.k_proj->weight),
                        vec(layer.k_proj->bias),   vec(layer.v_proj->weight), vec(layer.v_proj->bias),
                        vec(layer.o_proj->weight), vec(layer.o_proj->bias)};
      const Vec exact = ref::mha(vec(x), B, T, D, H, w, false), approx = vec(layer(x));
      double num = 0.0, den = 0.0;
      for (std::size_t i = 0; i < exact.size(); ++i) {
        num += (approx[i] - exact[i]) * (approx[i] - exact[i]);
        den += exact[i] * exact[i];
      }
      err[m] += std::sqrt(num / den) / static_cast<double>(seeds);
    }
  CAPTURE(err[16]);
  CAPTURE(err[64]);
  CAPTURE(err[256]);
  // The estimator's standard deviation goes as m^{-½}: 2x less per 4x features, 4x from m = 16 to 256 (measured
  // 1.9x, 2.2x and 4.2x).
  CHECK(err[64] < err[16] / 1.4);
  CHECK(err[256] < err[64] / 1.4);
  CHECK(err[256] < err[16] / 2.5);
}

TEST_CASE("PerformerAttention: chunked forward equals the recurrent step and the masked quadratic loop") {
  for (DType dtype : {DType::Float64, DType::Float32})
    for (double chunk : {4.0, 1.0, 64.0})
      for (i64 T : {1, 7, 13})
        for (double features : {3.0, 10.0}) {  // fewer than d = 4, and 3 blocks with a partial one
          CAPTURE(dtype_name(dtype));
          CAPTURE(chunk);
          CAPTURE(T);
          CAPTURE(features);
          Generator gen(7);
          const bool bias = features > 5.0;  // both bias settings, without doubling the loop
          nn::PerformerAttention m(config(8, 2, features, chunk, &gen, bias));
          randomize(m, 7);
          m.to(dtype);
          const Tensor x = normal({2, T, 8}, 11, dtype);
          REQUIRE(m.projection.dtype() == dtype);
          const Tensor y = m(x);
          REQUIRE(y.shape() == Shape{2, T, 8});
          const double tol = dtype == DType::Float64 ? 1e-10 : 1e-5;
          CHECK(ref::max_diff(vec(y), reference_performer(m, vec(x), 2, T)) < tol);
          CHECK(max_abs_diff(step_all(m, x), y) < tol);
        }
}

TEST_CASE("PerformerAttention: with large inputs the query shift avoids underflow and no feature overflows") {
  Generator gen(8);
  nn::PerformerAttention m(config(8, 2, 16, 4, &gen));
  randomize(m, 3);
  const Tensor x = normal({1, 9, 8}, 5, DType::Float32, 60.0);
  // Every unshifted φ⁺ of these queries underflows to 0 in float32 (so the input really tests the shift) ...
  const Tensor q = view((*m.q_proj)(x), {1, 9, 2, 4}) * std::pow(4.0, -0.25);
  const Vec unshifted = vec(nn::favor_positive_features(q, m.projection));
  CHECK(*std::max_element(unshifted.begin(), unshifted.end()) == 0.0);
  // ... while the layer matches the float64 loops with the shift.
  const Vec y = vec(m(x)), want = reference_performer(m, vec(x), 1, 9);
  for (double v : y) CHECK(std::isfinite(v));
  CHECK(ref::max_diff(y, want) < 1e-4);
  // Keys need no shift: completing the square, φ⁺(y)_i ≤ m^{-½} exp(|w_i|²/2) for every y.
  const Vec W = vec(m.projection.to(DType::Float64));
  for (double scale : {0.1, 1.0, 10.0, 100.0}) {
    const Vec f =
        vec(nn::favor_positive_features(normal({50, 4}, 6, DType::Float64, scale), m.projection.to(DType::Float64)));
    for (i64 r = 0; r < 50; ++r)
      for (i64 i = 0; i < 16; ++i)
        CHECK(f[r * 16 + i] <= std::exp(0.5 * dot(&W[i * 4], &W[i * 4], 4)) / 4.0 * (1 + 1e-12));
  }
}

TEST_CASE("PerformerAttention: changing input t changes no earlier output") {
  Generator gen(2);
  nn::PerformerAttention m(config(8, 2, 6, 3, &gen));
  prepare_f64(m, 9);
  CHECK(check_causal(m, normal({2, 10, 8}, 1)) == 10);
}

TEST_CASE("gradcheck: PerformerAttention forward in Float64, chunk 3, T = 7, w.r.t. input and every weight") {
  Generator gen(4);
  nn::PerformerAttention m(config(4, 2, 5, 3, &gen));
  randomize(m, 5);
  m.to(DType::Float64);
  const Tensor x = leaf_of(normal({2, 7, 4}, 6));
  std::vector<Tensor> inputs = {x};
  for (const auto& [name, p] : m.named_parameters()) inputs.push_back(p);
  REQUIRE(inputs.size() == 9);  // W is a buffer, held fixed
  const GradcheckResult r = gradcheck([&](const auto& in) { return m(in[0]); }, inputs, 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
  CHECK_FALSE(m.projection.requires_grad());
}

TEST_CASE("PerformerAttention: redraw_features changes W and the output, and the state dict carries W") {
  Generator gen(1);
  nn::PerformerAttention m(config(8, 2, 6, 4, &gen));
  randomize(m, 3);
  const Tensor x = normal({2, 5, 8}, 2, DType::Float32);
  const Tensor w0 = m.projection.clone(), y0 = m(x);
  auto state = m.state_dict();
  CHECK(state.size() == 9);
  CHECK(param_of(m, "projection").shares_storage(m.projection));
  for (auto& [name, t] : state) t = t.clone();  // a snapshot, not aliases of the live tensors

  Generator g(77), same(77);
  const Tensor handle = m.projection;
  m.redraw_features(g);
  CHECK(m.projection.is_same(handle));
  CHECK(max_abs_diff(m.projection, nn::orthogonal_gaussian_features(6, 4, same)) == 0.0);
  CHECK(max_abs_diff(m.projection, w0) > 0.1);
  CHECK(max_abs_diff(m(x), y0) > 1e-4);

  Generator other(55);
  nn::PerformerAttention copy(config(8, 2, 6, 4, &other));
  CHECK(max_abs_diff(copy.projection, w0) > 0.1);
  m.load_state_dict(state);  // back to the first draw
  copy.load_state_dict(state);
  CHECK(max_abs_diff(m.projection, w0) == 0.0);
  CHECK(max_abs_diff(copy.projection, w0) == 0.0);
  CHECK(max_abs_diff(copy(x), y0) == 0.0);
}

TEST_CASE("PerformerAttention: default features floor(d ln d), state shapes, and bad options throw") {
  nn::MixerConfig c = config(32, 2, 1, 64);
  c.options.erase("features");
  nn::PerformerAttention m(c);  // d = 16
  CHECK(m.n_features == static_cast<i64>(std::floor(16.0 * std::log(16.0))));
  CHECK(m.n_features == 44);
  CHECK(m.projection.shape() == Shape{44, 16});
  const auto state = m.init_state(3, 8);
  const auto& st = dynamic_cast<const nn::LinearAttentionState&>(*state);
  CHECK(st.S.shape() == Shape{3, 2, 44, 16});
  CHECK(st.z.shape() == Shape{3, 2, 44});
  nn::MixerConfig one = config(2, 2, 1, 64);  // d = 1: d ln d = 0, clamped to one feature
  one.options.erase("features");
  CHECK(nn::PerformerAttention(one).n_features == 1);

  CHECK_THROWS_EMBER(nn::PerformerAttention(config(8, 2, 0, 4)), "PerformerAttention: option features must be");
  CHECK_THROWS_EMBER(nn::PerformerAttention(config(8, 2, 2.5, 4)), "got 2.5");
  CHECK_THROWS_EMBER(nn::PerformerAttention(config(8, 2, 4, 0)), "PerformerAttention: option chunk must be > 0");
  CHECK_THROWS_EMBER(nn::PerformerAttention(config(8, 3, 4, 4)), "d_model 8 is not divisible into 3 heads");
  Generator gen(1);
  CHECK_THROWS_EMBER(nn::orthogonal_gaussian_features(0, 4, gen), "got m = 0, d = 4");
  CHECK_THROWS_EMBER(nn::orthogonal_gaussian_features(3, -1, gen), "got m = 3, d = -1");
  const Tensor W = nn::orthogonal_gaussian_features(5, 4, gen);
  CHECK_THROWS_EMBER(nn::favor_positive_features(normal({2, 3}, 1, DType::Float32), W),
                     "favor_positive_features: expected x [..., d] and W [m, d], got x [2, 3], W [5, 4]");
  CHECK_THROWS_EMBER(nn::favor_positive_features(normal({2, 4}, 1, DType::Float64), W), "got float64, float32");
  nn::PerformerAttention p(config(8, 2, 4, 4));
  CHECK_THROWS_EMBER(p(normal({2, 3, 6}, 1, DType::Float32)), "expected x [B, T, 8], got [2, 3, 6]");
}
