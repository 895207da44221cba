// Tutorial 08: taking the softmax out. Softmax attention normalises the kernel exp(q·k/√d); replacing it by a
// dot product of features φ(q)·φ(k) lets (φ(Q)φ(K)ᵀ)V be computed as φ(Q)(φ(K)ᵀV), linear in T. The program
// checks the two orders against each other and counts their flops; runs the causal form as an RNN
// (nn::LinearAttention::step against forward, with the state's bytes measured against a KV cache's); checks the
// chunked form for every chunk size; and then estimates exp(x·y) itself with Performer's positive random features
// (unbiasedness, error against m and the theory, orthogonal against iid rows, trigonometric features going
// negative), ending with nn::PerformerAttention against exact softmax attention.
// Run: tutorial_08_linear_attention [--short]. The page README.md next to this file explains each step.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <vector>

#include "ember.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

// A row-major matrix of doubles with its rows and columns.
struct Mat {
  std::int64_t rows = 0, cols = 0;
  std::vector<double> a;
  double at(std::int64_t i, std::int64_t j) const { return a[i * cols + j]; }
};

// The entries of a 2-D tensor as a Mat.
Mat to_mat(const Tensor& x) { return {x.shape()[0], x.shape()[1], x.to(DType::Float64).to_vector<double>()}; }

// The largest |a − b| over all elements.
double max_diff(const Tensor& a, const Tensor& b) { return max(abs(a.detach() - b.detach())).item(); }
double max_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

// elu(x) + 1, entry by entry.
Mat elu_plus_one(const Mat& x) {
  Mat phi = x;
  for (double& v : phi.a) v = v > 0 ? v + 1 : std::exp(v);
  return phi;
}

// An output and the floating-point operations (one per add, multiply, divide or exp) it took.
struct Counted {
  std::vector<double> y;
  std::int64_t flops = 0;
};

// y_i = Σ_j A_ij v_j / (Σ_j A_ij + ε) for similarities A [T, T] (ε = 0 for softmax): each row of A normalised to
// weights. With `causal` only j ≤ i is summed.
Counted normalise_rows(const Mat& A, const Mat& V, double eps, bool causal, std::int64_t flops) {
  const std::int64_t T = A.rows, M = V.cols;
  Counted out{std::vector<double>(T * M), flops};
  for (std::int64_t i = 0; i < T; ++i) {
    const std::int64_t last = causal ? i : T - 1;
    double den = eps;
    for (std::int64_t j = 0; j <= last; ++j) den += A.at(i, j);
    for (std::int64_t c = 0; c < M; ++c) {
      double num = 0;
      for (std::int64_t j = 0; j <= last; ++j) num += A.at(i, j) * V.at(j, c);
      out.y[i * M + c] = num / den;
    }
    out.flops += (last + 1) + (last + 1) * 2 * M + M;
  }
  return out;
}

// The quadratic order: A = φ(Q) φ(K)ᵀ [T, T] first, then its normalised rows times V: 2T²d + T² + 2T²M + TM
// flops when not causal.
Counted quadratic_order(const Mat& phi_q, const Mat& phi_k, const Mat& V, bool causal = false) {
  const std::int64_t T = phi_q.rows, d = phi_q.cols;
  Mat A{T, T, std::vector<double>(T * T)};
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = 0; j < T; ++j) {
      double s = 0;
      for (std::int64_t c = 0; c < d; ++c) s += phi_q.at(i, c) * phi_k.at(j, c);
      A.a[i * T + j] = s;
    }
  return normalise_rows(A, V, nn::kLinearAttentionEps, causal, 2 * T * T * d);
}

// Softmax attention in the same shape: A_ij = exp(q_i·k_j/√d), the softmax kernel, normalised by rows.
Counted softmax_as_kernel(const Mat& Q, const Mat& K, const Mat& V) {
  const std::int64_t T = Q.rows, d = Q.cols;
  Mat A{T, T, std::vector<double>(T * T)};
  for (std::int64_t i = 0; i < T; ++i)
    for (std::int64_t j = 0; j < T; ++j) {
      double s = 0;
      for (std::int64_t c = 0; c < d; ++c) s += Q.at(i, c) * K.at(j, c);
      A.a[i * T + j] = std::exp(s / std::sqrt(static_cast<double>(d)));
    }
  return normalise_rows(A, V, 0.0, false, T * T * (2 * d + 2));
}

// The linear order: S = φ(K)ᵀ V [d, M] and z = φ(K)ᵀ 1 [d] first, then y_i = φ(q_i)ᵀ S / (φ(q_i)ᵀ z + ε).
// 2TdM + Td + T(2dM + 2d + 1 + M) flops.
Counted linear_order(const Mat& phi_q, const Mat& phi_k, const Mat& V) {
  const std::int64_t T = phi_q.rows, d = phi_q.cols, M = V.cols;
  std::vector<double> S(d * M, 0.0), z(d, 0.0);
  for (std::int64_t j = 0; j < T; ++j)
    for (std::int64_t a = 0; a < d; ++a) {
      z[a] += phi_k.at(j, a);
      for (std::int64_t c = 0; c < M; ++c) S[a * M + c] += phi_k.at(j, a) * V.at(j, c);
    }
  Counted out{std::vector<double>(T * M), 2 * T * d * M + T * d};
  for (std::int64_t i = 0; i < T; ++i) {
    double den = nn::kLinearAttentionEps;
    for (std::int64_t a = 0; a < d; ++a) den += phi_q.at(i, a) * z[a];
    for (std::int64_t c = 0; c < M; ++c) {
      double num = 0;
      for (std::int64_t a = 0; a < d; ++a) num += phi_q.at(i, a) * S[a * M + c];
      out.y[i * M + c] = num / den;
    }
    out.flops += 2 * d * M + 2 * d + 1 + M;
  }
  return out;
}

// x: [B, T, D] -> [B, H, T, d].
Tensor heads(const Tensor& x, std::int64_t H) {
  const std::int64_t B = x.shape()[0], T = x.shape()[1], D = x.shape()[2];
  return transpose(reshape(x, {B, T, H, D / H}), 1, 2);
}

// Bytes of tensor storage a decoding state holds after `steps` tokens (made for exactly that many).
std::int64_t state_bytes(const nn::SequenceMixer& mixer, std::int64_t D, std::int64_t steps) {
  const std::int64_t before = memory_stats().current_bytes;
  const std::unique_ptr<nn::MixerState> state = mixer.init_state(1, steps);
  for (std::int64_t t = 0; t < steps; ++t) mixer.step(randn({1, D}), *state);
  return memory_stats().current_bytes - before;
}

// Section 1: softmax as a normalised kernel; the two orders of (φ(Q)φ(K)ᵀ)V; their flops.
void kernel_view(tutorial::Claims& claims) {
  tutorial::section("1. Softmax as a kernel, and the two orders of the product");
  const std::int64_t d = 16;
  const DType F = DType::Float64;
  manual_seed(1);
  {
    // Softmax attention is the kernel form with sim(q, k) = exp(q·k/√d).
    const std::int64_t T = 64;
    const Tensor q = randn({T, d}, F), k = randn({T, d}, F), v = randn({T, d}, F);
    const Counted kernel = softmax_as_kernel(to_mat(q), to_mat(k), to_mat(v));
    const auto one_head = [&](const Tensor& t) { return reshape(t, {1, 1, T, d}); };
    const Tensor library = nn::naive_attention(one_head(q), one_head(k), one_head(v), false);
    const double diff = max_diff(kernel.y, library.to_vector<double>());
    std::printf("T = %lld, d = %lld: rows of exp(q·k/√d) normalised, times V, against nn::naive_attention: %.1e\n",
                static_cast<long long>(T), static_cast<long long>(d), diff);
    claims.check(diff < 1e-12, "softmax attention is Σ_j sim(q_i, k_j) v_j / Σ_j sim(q_i, k_j) with sim = exp(q·k/√d)");
  }
  std::printf("with sim = φ(q)·φ(k), φ = elu + 1 (d = %lld, M = d), flops counted in the loops:\n",
              static_cast<long long>(d));
  std::printf("%6s %16s %16s %8s %8s %12s %12s\n", "T", "quadratic order", "linear order", "ratio", "T/d", "max |diff|",
              "vs library");
  bool agree = true, ratio_near = true;
  for (std::int64_t T : {64, 256, 1024}) {
    const Tensor q = randn({T, d}, F), k = randn({T, d}, F), v = randn({T, d}, F);
    const Mat phi_q = elu_plus_one(to_mat(q)), phi_k = elu_plus_one(to_mat(k)), V = to_mat(v);
    const Counted quad = quadratic_order(phi_q, phi_k, V), lin = linear_order(phi_q, phi_k, V);
    const double diff = max_diff(quad.y, lin.y);
    const double lib = max_diff(lin.y, nn::linear_attention_noncausal(q, k, v).to_vector<double>());
    const double ratio = static_cast<double>(quad.flops) / static_cast<double>(lin.flops);
    const double t_over_d = static_cast<double>(T) / static_cast<double>(d);
    std::printf("%6lld %16lld %16lld %8.2f %8.1f %12.1e %12.1e\n", static_cast<long long>(T),
                static_cast<long long>(quad.flops), static_cast<long long>(lin.flops), ratio, t_over_d, diff, lib);
    agree = agree && diff < 1e-12 && lib < 1e-12;
    ratio_near = ratio_near && std::abs(ratio / t_over_d - 1) < 0.1;
  }
  claims.check(agree, "both orders give the same output, and so does nn::linear_attention_noncausal (< 1e-12)");
  claims.check(ratio_near, "the quadratic order costs about T/d times the linear one (within 10%)");
  std::printf("the leading terms, 4T²d against 4Td², for d = 64:\n%8s %14s %14s\n", "T", "quadratic", "linear");
  for (std::int64_t T : {1024, 4096, 16384, 65536})
    std::printf("%8lld %14.3e %14.3e\n", static_cast<long long>(T), 4.0 * T * T * 64, 4.0 * T * 64 * 64);
}

// Section 2: the causal form as an RNN: step equals forward; the state's bytes against a KV cache's.
void as_an_rnn(tutorial::Claims& claims) {
  tutorial::section("2. Causal linear attention is an RNN");
  nn::MixerConfig cfg;
  cfg.d_model = 32;
  cfg.n_heads = 4;
  Generator gen(2);
  cfg.gen = &gen;
  nn::LinearAttention layer(cfg);
  const std::int64_t B = 2, T = 50, H = 4, d = 8;
  manual_seed(2);
  const Tensor x = randn({B, T, cfg.d_model});
  const Tensor y = layer.forward(x);
  const std::unique_ptr<nn::MixerState> state = layer.init_state(B, T);
  double worst = 0;
  for (std::int64_t t = 0; t < T; ++t)
    worst = std::max(worst, max_diff(layer.step(select(x, 1, t), *state), select(y, 1, t)));
  std::printf(
      "LinearAttention(d_model = 32, heads = 4, chunk = %lld), B = %lld, T = %lld: max |step − forward| = %.1e\n",
      static_cast<long long>(layer.chunk), static_cast<long long>(B), static_cast<long long>(T), worst);
  claims.check(worst < 1e-5, "decoding with the recurrence S += φ(k)vᵀ, z += φ(k) gives forward's outputs");

  const nn::MultiHeadAttention softmax(cfg);
  std::printf("bytes of decoding state (one sequence, Float32), measured with memory_stats:\n");
  std::printf("%10s %18s %18s\n", "position", "linear (S, z)", "softmax KV cache");
  std::vector<std::int64_t> linear, cache;
  for (std::int64_t t : {10, 1000}) {
    linear.push_back(state_bytes(layer, cfg.d_model, t));
    cache.push_back(state_bytes(softmax, cfg.d_model, t));
    std::printf("%10lld %18lld %18lld\n", static_cast<long long>(t), static_cast<long long>(linear.back()),
                static_cast<long long>(cache.back()));
  }
  claims.check(linear[0] == linear[1] && linear[0] == H * (d * d + d) * 4,
               "the linear state is H (d² + d) floats whatever the position");
  claims.check(cache[0] == 2 * H * 10 * d * 4 && cache[1] == 2 * H * 1000 * d * 4,
               "the KV cache holds 2 H t d floats: it grows with the position t");
}

// Section 3: the chunked causal form against the masked quadratic form, for several chunk sizes.
void chunked(tutorial::Claims& claims) {
  tutorial::section("3. The chunked form");
  const std::int64_t T = 50, d = 8;
  const DType F = DType::Float64;
  manual_seed(3);
  const Tensor phi_q = nn::elu_feature_map(randn({1, 1, T, d}, F)), phi_k = nn::elu_feature_map(randn({1, 1, T, d}, F));
  const Tensor v = randn({1, 1, T, d}, F);
  const auto as_mat = [&](const Tensor& t) { return to_mat(reshape(t, {T, d})); };
  const Counted masked = quadratic_order(as_mat(phi_q), as_mat(phi_k), as_mat(v), true);
  std::printf("T = %lld, d = %lld, Float64: nn::causal_linear_attention against the masked quadratic form:\n",
              static_cast<long long>(T), static_cast<long long>(d));
  double worst = 0;
  for (std::int64_t C : {1, 3, 7, 16, 50, 64}) {
    const double diff = max_diff(nn::causal_linear_attention(phi_q, phi_k, v, C).to_vector<double>(), masked.y);
    std::printf("  chunk %2lld: max |diff| %.1e\n", static_cast<long long>(C), diff);
    worst = std::max(worst, diff);
  }
  claims.check(worst < 1e-12, "every chunk size gives the masked quadratic form (< 1e-12)");
}

// Draws of a random estimate of `exact`: their mean and its standard error, the mean squared error and its standard
// error, the smallest draw and the share of negative draws.
struct Estimates {
  double mean = 0, std_error = 0, mse = 0, mse_error = 0, smallest = 0, negative = 0;
  // √MSE / exact.
  double rel_rmse(double exact) const { return std::sqrt(mse) / exact; }
  // How many standard errors the measured MSE lies from `theory`.
  double mse_z(double theory) const { return (mse - theory) / mse_error; }
};

// The statistics of n draws.
Estimates estimate(std::int64_t n, double exact, const std::function<double()>& draw) {
  std::vector<double> e(n);
  for (double& x : e) x = draw();
  const double N = static_cast<double>(n);
  Estimates s;
  s.smallest = *std::min_element(e.begin(), e.end());
  for (double x : e) s.mean += x / N, s.mse += (x - exact) * (x - exact) / N, s.negative += x < 0 ? 1 / N : 0;
  double var = 0, sq_var = 0;
  for (double x : e) {
    var += (x - s.mean) * (x - s.mean) / (N - 1);
    const double sq = (x - exact) * (x - exact) - s.mse;
    sq_var += sq * sq / (N - 1);
  }
  s.std_error = std::sqrt(var / N);
  s.mse_error = std::sqrt(sq_var / N);
  return s;
}

// φ⁺(x)ᵀ φ⁺(y) for the rows of W.
double positive_estimate(const Tensor& x, const Tensor& y, const Tensor& W) {
  return sum(nn::favor_positive_features(x, W) * nn::favor_positive_features(y, W)).item();
}

// The trigonometric features φ(x) = m^{-½} e^{|x|²/2} [sin(Wx), cos(Wx)]: x [1, d], W [m, d] -> [1, 2m].
Tensor trig_features(const Tensor& x, const Tensor& W) {
  const Tensor a = matmul(x, transpose(W, 0, 1));
  const double scale = std::exp(0.5 * sum(square(x)).item()) / std::sqrt(static_cast<double>(W.shape()[0]));
  return cat({sin(a), cos(a)}, 1) * scale;
}

double trig_estimate(const Tensor& x, const Tensor& y, const Tensor& W) {
  return sum(trig_features(x, W) * trig_features(y, W)).item();
}

// A vector [1, d] of length `length` along a random direction.
Tensor vector_of_length(std::int64_t d, double length, Generator& gen) {
  const Tensor u = randn({1, d}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen);
  return u * (length / norm(u).item());
}

// Section 4: positive random features estimate exp(x·y): unbiased, positive, error ~ 1/√m, orthogonal rows better.
void positive_features(tutorial::Claims& claims, bool quick) {
  tutorial::section("4. Performer: positive random features");
  // Draws of W per estimate: `draws` at m = 16, halved each time m quadruples (a draw costs ~m; the larger m's error
  // is also steadier).
  const std::int64_t d = 16, draws = quick ? 12000 : 48000;
  const auto draws_at = [&](std::int64_t m) {
    return static_cast<std::int64_t>(static_cast<double>(draws) * std::sqrt(16.0 / static_cast<double>(m)));
  };
  const DType F = DType::Float64;
  Generator gen(4);
  const Tensor x = vector_of_length(d, 0.8, gen), y = vector_of_length(d, 0.8, gen);
  const double exact = std::exp(sum(x * y).item()), z2 = sum(square(x + y)).item();
  std::printf("d = %lld, |x| = |y| = 0.8, x·y = %.4f, exp(x·y) = %.6f, |x+y|² = %.4f\n", static_cast<long long>(d),
              sum(x * y).item(), exact, z2);
  const auto iid = [&](std::int64_t m) { return randn({m, d}, F, Device::cpu(), 0.0, 1.0, &gen); };
  const auto orthogonal = [&](std::int64_t m) { return nn::orthogonal_gaussian_features(m, d, gen, F); };

  const Estimates e16 = estimate(draws, exact, [&] { return positive_estimate(x, y, iid(16)); });
  const double z_mean = (e16.mean - exact) / e16.std_error;
  std::printf(
      "m = 16, iid rows, %lld draws: mean %.6f ± %.6f (standard error), %+.2f standard errors from exp(x·y);\n"
      "smallest %.4f\n",
      static_cast<long long>(draws), e16.mean, e16.std_error, z_mean, e16.smallest);
  claims.check(std::abs(z_mean) < 4, "the mean of φ⁺(x)·φ⁺(y) over draws is exp(x·y) within 4 standard errors");
  claims.check(e16.smallest > 0, "and every estimate is positive");

  std::printf(
      "relative RMSE against m; Lemma 1 for iid rows: MSE = e^{|x+y|²} SM² (1 − e^{−|x+y|²}) / m,\n"
      "so relative RMSE = √((e^{|x+y|²} − 1)/m) (z: the measured MSE's distance from it in standard errors):\n");
  std::printf("%6s %7s %10s %10s %8s %12s %8s\n", "m", "draws", "theory", "iid", "z", "orthogonal", "z gain");
  std::vector<double> iid_err, ort_err;
  bool near_theory = true, ort_lower = true;
  for (std::int64_t m : {16, 64, 256, 1024}) {
    const double theory = (std::exp(z2) - 1) * exact * exact / static_cast<double>(m);
    const Estimates e_iid = estimate(draws_at(m), exact, [&] { return positive_estimate(x, y, iid(m)); });
    const Estimates e_ort = estimate(draws_at(m), exact, [&] { return positive_estimate(x, y, orthogonal(m)); });
    iid_err.push_back(e_iid.rel_rmse(exact));
    ort_err.push_back(e_ort.rel_rmse(exact));
    // The two MSEs are independent estimates: their difference over its standard error.
    const double z_gain = (e_iid.mse - e_ort.mse) / std::hypot(e_iid.mse_error, e_ort.mse_error);
    std::printf("%6lld %7lld %10.4f %10.4f %+8.2f %12.4f %+8.2f\n", static_cast<long long>(m),
                static_cast<long long>(draws_at(m)), std::sqrt(theory) / exact, iid_err.back(), e_iid.mse_z(theory),
                ort_err.back(), z_gain);
    near_theory = near_theory && std::abs(e_iid.mse_z(theory)) < 4;
    ort_lower = ort_lower && z_gain > 2;
  }
  claims.check(near_theory, "the iid MSE matches Lemma 1 within 4 standard errors at every m");
  claims.check(iid_err[3] < iid_err[1] / 3, "64 times the features, an eighth of the error: RMSE(1024) < RMSE(64)/3");
  claims.check(ort_lower, "orthogonal rows give a lower MSE than iid rows at every m (by more than 2 standard errors)");
}

// Section 5: x = −y, where exp(x·y) is small: positive features are exact, trigonometric ones half negative.
void trig_against_positive(tutorial::Claims& claims, bool quick) {
  tutorial::section("5. Trigonometric features go negative");
  const std::int64_t d = 16, m = 64, draws = quick ? 2000 : 20000;
  Generator gen(5);
  const Tensor x = vector_of_length(d, 2.0, gen), y = -x;
  const double exact = std::exp(sum(x * y).item());
  const auto W = [&] { return randn({m, d}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen); };
  const Estimates pos = estimate(draws, exact, [&] { return positive_estimate(x, y, W()); });
  const Estimates trig = estimate(draws, exact, [&] { return trig_estimate(x, y, W()); });
  // Lemma 2 with x + y = 0: MSE = e^{|x+y|²} SM^{−2} (1 − e^{−|x−y|²})² / (2m).
  const double lemma2 = std::pow(1 - std::exp(-sum(square(x - y)).item()), 2) / (exact * exact * 2.0 * m);
  std::printf("x = −y, |x| = 2, m = %lld: exp(x·y) = %.4e; %lld draws\n", static_cast<long long>(m), exact,
              static_cast<long long>(draws));
  std::printf("%14s %12s %12s %12s %10s\n", "features", "mean", "rel. RMSE", "smallest", "negative");
  std::printf("%14s %12.4e %12.1e %12.4e %9.1f%%\n", "positive", pos.mean, pos.rel_rmse(exact), pos.smallest,
              100 * pos.negative);
  std::printf("%14s %12.4e %12.1f %12.4e %9.1f%%\n", "trigonometric", trig.mean, trig.rel_rmse(exact), trig.smallest,
              100 * trig.negative);
  std::printf("Lemma 2's relative RMSE for the trigonometric features: %.1f (z = %+.2f)\n", std::sqrt(lemma2) / exact,
              trig.mse_z(lemma2));
  claims.check(pos.rel_rmse(exact) < 1e-12, "φ⁺(x)·φ⁺(−x) = e^{−|x|²} for every W: exact, zero variance");
  const double spread = 0.5 / std::sqrt(static_cast<double>(draws));  // the binomial standard deviation of the share
  claims.check(std::abs(trig.negative - 0.5) < 4 * spread,
               "about half the trigonometric estimates are negative (within 4 binomial standard deviations of 50%)");
  claims.check(std::abs(trig.mse_z(lemma2)) < 4,
               "their MSE is Lemma 2's, within 4 standard errors: a relative error in the hundreds");
}

// Section 6: nn::PerformerAttention against exact causal softmax attention with the same projections, as m grows.
void performer_attention(tutorial::Claims& claims, bool quick) {
  tutorial::section("6. PerformerAttention against softmax attention");
  const std::int64_t B = 2, T = 64, D = 32, H = 2, redraws = quick ? 4 : 16;
  const std::vector<std::int64_t> features =
      quick ? std::vector<std::int64_t>{16, 64, 256, 1024} : std::vector<std::int64_t>{16, 64, 256, 1024, 4096};
  manual_seed(6);
  const Tensor x = randn({B, T, D});
  std::printf(
      "d_model = %lld, heads = %lld (d = %lld), T = %lld, causal; relative error ‖Y − Y_softmax‖/‖Y_softmax‖,\n"
      "mean over %lld draws of W:\n",
      static_cast<long long>(D), static_cast<long long>(H), static_cast<long long>(D / H), static_cast<long long>(T),
      static_cast<long long>(redraws));
  std::printf("%6s %12s\n", "m", "rel. error");
  std::vector<double> errors;
  double uniform = 0;
  for (std::int64_t m : features) {
    nn::MixerConfig cfg;
    cfg.d_model = D;
    cfg.n_heads = H;
    cfg.options["features"] = static_cast<double>(m);
    Generator gen(6);  // the same seed: the same projections W_q, W_k, W_v, W_o for every m
    cfg.gen = &gen;
    nn::PerformerAttention perf(cfg);
    const Tensor q = heads(perf.q_proj->forward(x), H), k = heads(perf.k_proj->forward(x), H),
                 v = heads(perf.v_proj->forward(x), H);
    const auto out = [&](const Tensor& o) { return perf.o_proj->forward(reshape(transpose(o, 1, 2), {B, T, D})); };
    const Tensor exact = out(nn::naive_attention(q, k, v, true));
    // The crudest linear-time stand-in: uniform weights over the prefix, the running mean of v.
    const Tensor positions = reshape(arange(1, T + 1, 1.0, DType::Float32), {1, 1, T, 1});
    uniform = norm(out(cumsum(v, 2) / positions) - exact).item() / norm(exact).item();
    double err = 0;
    for (std::int64_t r = 0; r < redraws; ++r) {
      perf.redraw_features(gen);
      err += norm(perf.forward(x) - exact).item() / norm(exact).item() / static_cast<double>(redraws);
    }
    errors.push_back(err);
    std::printf("%6lld %12.4f\n", static_cast<long long>(m), err);
  }
  std::printf("uniform weights (the running mean of v): %.4f\n", uniform);
  bool falling = true;
  for (std::size_t i = 1; i < errors.size(); ++i) falling = falling && errors[i] < errors[i - 1];
  claims.check(falling, "the error falls at every step as m grows");
  claims.check(errors[3] < uniform / 2, "at m = 1024 it is under half the error of uniform weights");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  set_num_threads(1);  // the same numbers on every machine
  tutorial::Claims claims;

  kernel_view(claims);
  as_an_rnn(claims);
  chunked(claims);
  positive_features(claims, quick);
  trig_against_positive(claims, quick);
  performer_attention(claims, quick);
  return claims.exit_code();
}
