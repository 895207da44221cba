/// \file
/// \brief nn::MultiScaleRetention and the retention forms (technique notes §7b) against computations written here in
/// double loops: the parallel, recurrent and chunkwise forms against o_n = Σ_{m≤n} γ^{n−m} (q_n·k_m) v_m (oracle 1;
/// T = 32, Bc = 8 and T not a multiple of the chunk), chunkwise against recurrent at T = 2000 (no underflow NaN), the
/// rotation against torchscale's theta_shift in loops and the closed form of rotated scores, which depend on n − m only
/// (oracle 2), the reference's verified decays for H = 8, the whole layer against a loop version (projections,
/// rotation, retention, GroupNorm, swish gate, W_O), step against forward (also started at a later position),
/// causality, Float64 gradcheck, and bad options and shapes throwing ember::Error naming the layer.
#include <cmath>

#include "layer_helpers.h"
#include "layers/functional.h"
#include "layers/ssm/retention.h"

using namespace ember;
using namespace ember::test;
using i64 = std::int64_t;
using Vec = std::vector<double>;

namespace {

/// A retention config: d_model, n_heads and the chunk option, weights from a generator seeded with `seed` (one shared
/// generator, reseeded by every call: build the layer before the next call).
nn::MixerConfig retnet_config(i64 d_model, i64 n_heads, i64 chunk, std::uint64_t seed = 0) {
  static Generator gen(0);
  gen = Generator(seed);
  nn::MixerConfig c;
  c.d_model = d_model;
  c.n_heads = n_heads;
  c.options = {{"chunk", static_cast<double>(chunk)}};
  c.gen = &gen;
  return c;
}

/// Retention by its definition, o_n = Σ_{m≤n} γ_h^{n−m} (q_n·k_m) v_m, for q, k [B, H, T, dk], v [B, H, T, dv].
Vec naive_retention(const Vec& q, const Vec& k, const Vec& v, i64 B, i64 H, i64 T, i64 dk, i64 dv, const Vec& gamma) {
  Vec out(static_cast<std::size_t>(B * H * T * dv), 0.0);
  for (i64 bh = 0; bh < B * H; ++bh)
    for (i64 n = 0; n < T; ++n)
      for (i64 m = 0; m <= n; ++m) {
        double s = 0.0;
        for (i64 i = 0; i < dk; ++i) s += q[(bh * T + n) * dk + i] * k[(bh * T + m) * dk + i];
        s *= std::pow(gamma[bh % H], static_cast<double>(n - m));
        for (i64 j = 0; j < dv; ++j) out[(bh * T + n) * dv + j] += s * v[(bh * T + m) * dv + j];
      }
  return out;
}

/// torchscale's θ_i = 1 / 10000^{linspace(0, 1, half)_i}.
double theta(i64 i, i64 half) {
  return half == 1 ? 1.0 : 1.0 / std::pow(10000.0, static_cast<double>(i) / static_cast<double>(half - 1));
}

/// theta_shift in loops: the rows of x [rows, T, d] at positions start..start+T−1, pairs (2i, 2i+1) rotated:
/// (a, b) -> (a cos − b sin, b cos + a sin), the angle n·θ_i.
Vec naive_rotate(const Vec& x, i64 rows, i64 T, i64 d, i64 start) {
  Vec out(x.size());
  for (i64 r = 0; r < rows; ++r)
    for (i64 n = 0; n < T; ++n)
      for (i64 i = 0; i < d / 2; ++i) {
        const double ang = static_cast<double>(start + n) * theta(i, d / 2);
        const std::size_t e = static_cast<std::size_t>((r * T + n) * d + 2 * i);
        out[e] = x[e] * std::cos(ang) - x[e + 1] * std::sin(ang);
        out[e + 1] = x[e + 1] * std::cos(ang) + x[e] * std::sin(ang);
      }
  return out;
}

/// A [B, H, T, d] Float64 tensor from a seed.
Tensor heads(i64 B, i64 H, i64 T, i64 d, std::uint64_t seed) { return normal({B, H, T, d}, seed); }

/// log γ for every head from a list of γ.
Tensor log_of(const Vec& gamma) {
  Vec lg;
  for (double g : gamma) lg.push_back(std::log(g));
  return from_vector(lg, {static_cast<i64>(gamma.size())}, DType::Float64);
}

/// The whole layer in loops: q = W_Q x, k = W_K x / √dk, v = W_V x, both rotated, retention per head, GroupNorm
/// (mean and biased variance over dv, ε = 1e-6), gate silu(W_G x), then W_O.
Vec naive_layer(const nn::MultiScaleRetention& m, const Vec& x, i64 B, i64 T) {
  const i64 H = m.n_heads, dk = m.key_dim, dv = m.value_dim, D = H * dk;
  const Vec Wq = m.q_proj->weight.to_vector<double>(), Wk = m.k_proj->weight.to_vector<double>();
  const Vec Wv = m.v_proj->weight.to_vector<double>(), Wg = m.g_proj->weight.to_vector<double>();
  const Vec Wo = m.out_proj->weight.to_vector<double>();
  const auto proj = [&](const Vec& W, i64 b, i64 t, i64 row) {  // row `row` of W times x_bt
    double s = 0.0;
    for (i64 c = 0; c < D; ++c) s += W[row * D + c] * x[(b * T + t) * D + c];
    return s;
  };
  // q, k, v as [B, H, T, d] in double.
  Vec q(B * H * T * dk), k(q.size()), v(B * H * T * dv), g(B * T * 2 * D);
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t) {
      for (i64 h = 0; h < H; ++h) {
        for (i64 i = 0; i < dk; ++i) {
          q[((b * H + h) * T + t) * dk + i] = proj(Wq, b, t, h * dk + i);
          k[((b * H + h) * T + t) * dk + i] = proj(Wk, b, t, h * dk + i) / std::sqrt(static_cast<double>(dk));
        }
        for (i64 j = 0; j < dv; ++j) v[((b * H + h) * T + t) * dv + j] = proj(Wv, b, t, h * dv + j);
      }
      for (i64 j = 0; j < 2 * D; ++j) g[(b * T + t) * 2 * D + j] = proj(Wg, b, t, j);
    }
  const Vec o = naive_retention(naive_rotate(q, B * H, T, dk, 0), naive_rotate(k, B * H, T, dk, 0), v, B, H, T, dk, dv,
                                m.decays());
  Vec out;
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t) {
      Vec gated(2 * D);
      for (i64 h = 0; h < H; ++h) {
        const double* row = &o[((b * H + h) * T + t) * dv];
        double mu = 0.0, var = 0.0;
        for (i64 j = 0; j < dv; ++j) mu += row[j] / dv;
        for (i64 j = 0; j < dv; ++j) var += (row[j] - mu) * (row[j] - mu) / dv;
        for (i64 j = 0; j < dv; ++j) {
          const double gate = g[(b * T + t) * 2 * D + h * dv + j];
          gated[h * dv + j] = gate / (1.0 + std::exp(-gate)) * (row[j] - mu) / std::sqrt(var + 1e-6);
        }
      }
      for (i64 r = 0; r < D; ++r) {
        double s = 0.0;
        for (i64 c = 0; c < 2 * D; ++c) s += Wo[r * 2 * D + c] * gated[c];
        out.push_back(s);
      }
    }
  return out;
}

}  // namespace

TEST_CASE("retnet: parallel, recurrent and chunkwise forms equal the definition in double loops (f64 1e-12)") {
  const i64 B = 2, H = 3, dk = 4, dv = 6;
  const Vec gamma = {1.0 - std::exp2(-5.0), 0.9, 0.5};
  for (i64 T : {32, 29}) {
    const Tensor q = heads(B, H, T, dk, 1), k = heads(B, H, T, dk, 2), v = heads(B, H, T, dv, 3);
    const Vec ref =
        naive_retention(q.to_vector<double>(), k.to_vector<double>(), v.to_vector<double>(), B, H, T, dk, dv, gamma);
    const Tensor lg = log_of(gamma);
    const double e_par = max_diff(nn::retention_parallel(q, k, v, lg).to_vector<double>(), ref);
    const double e_rec = max_diff(nn::retention_recurrent(q, k, v, lg).to_vector<double>(), ref);
    MESSAGE("T " << T << ": parallel " << e_par << ", recurrent " << e_rec);
    CHECK(e_par < 1e-12);
    CHECK(e_rec < 1e-12);
    for (i64 chunk : {8, 1, 5, 64}) {
      CAPTURE(chunk);
      const double e_chunk = max_diff(nn::retention_chunkwise(q, k, v, lg, chunk).to_vector<double>(), ref);
      MESSAGE("T " << T << ", chunk " << chunk << ": chunkwise " << e_chunk);
      CHECK(e_chunk < 1e-12);
    }
  }
}

TEST_CASE("retnet: chunkwise is finite and equals recurrent at T = 2000, gamma = 1 - 2^-5 (f64 1e-12, f32 1e-4)") {
  const i64 T = 2000, dk = 4, dv = 4;
  const Tensor q = heads(1, 2, T, dk, 4), k = heads(1, 2, T, dk, 5), v = heads(1, 2, T, dv, 6);
  const Tensor lg = log_of({1.0 - std::exp2(-5.0), 0.01});  // γ = 0.01: every γ^{Bc} of the scan underflows to 0
  const Tensor rec = nn::retention_recurrent(q, k, v, lg);
  const Tensor chunked = nn::retention_chunkwise(q, k, v, lg, 64);
  const Vec c = chunked.to_vector<double>();
  CHECK(std::all_of(c.begin(), c.end(), [](double x) { return std::isfinite(x); }));
  const double err = max_abs_diff(chunked, rec);
  MESSAGE("T 2000 chunkwise vs recurrent, f64: " << err);
  CHECK(err < 1e-12);
  const Tensor c32 = nn::retention_chunkwise(q.to(DType::Float32), k.to(DType::Float32), v.to(DType::Float32),
                                             lg.to(DType::Float32), 64);
  const Vec c32v = c32.to_vector<double>();
  CHECK(std::all_of(c32v.begin(), c32v.end(), [](double x) { return std::isfinite(x); }));
  const Vec r = rec.to_vector<double>();
  double rel = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < r.size(); ++i) {
    rel = std::max(rel, std::abs(c32v[i] - r[i]));
    scale = std::max(scale, std::abs(r[i]));
  }
  MESSAGE("f32 chunkwise vs f64 recurrent, relative to max |o|: " << rel / scale);
  CHECK(rel / scale < 1e-4);
}

TEST_CASE("retnet: the decays for H = 8 are the verified 0.96875, 0.984375, ..., 0.999756") {
  nn::MultiScaleRetention m(retnet_config(16, 8, 4));
  const Vec gamma = m.decays();
  REQUIRE(gamma.size() == 8);
  // Technique notes §7b, [verified]: the first two and the last value.
  CHECK(gamma[0] == 0.96875);
  CHECK(gamma[1] == 0.984375);
  CHECK(std::abs(gamma[7] - 0.999756) < 5e-7);
  for (int h = 0; h < 8; ++h) CHECK(gamma[h] == 1.0 - 1.0 / static_cast<double>(1 << (5 + h)));  // 1 − 2^{−5−h}
  const Vec lg = m.log_decays().to_vector<double>();
  for (int h = 0; h < 8; ++h) CHECK(std::abs(std::exp(lg[h]) - gamma[h]) < 1e-7);  // Float32 weights
}

TEST_CASE("retnet: the rotation equals theta_shift in loops and rotated scores depend only on n - m") {
  const i64 T = 9, d = 6;
  const Tensor x = heads(2, 1, T, d, 7);
  for (i64 start : {0, 37}) {
    const double err = max_diff(nn::retention_rotate(x, start).to_vector<double>(),
                                naive_rotate(x.to_vector<double>(), 2, T, d, start));
    MESSAGE("rotation vs loops at start " << start << ": " << err);
    CHECK(err < 1e-13);
  }
  // One query and one key repeated at every position: score(n, m) = Σ_i (ac + bd) cos((n−m)θ_i) + (ad − bc)
  // sin((n−m)θ_i) for the pairs (a, b) of q and (c, d) of k, whatever the absolute positions.
  const Tensor q1 = normal({1, 1, 1, d}, 8), k1 = normal({1, 1, 1, d}, 9);
  const Vec qv = q1.to_vector<double>(), kv = k1.to_vector<double>();
  const Tensor Q = expand(q1, {1, 1, T, d}).contiguous(), K = expand(k1, {1, 1, T, d}).contiguous();
  for (i64 start : {0, 100}) {
    const Vec s =
        matmul(nn::retention_rotate(Q, start), transpose(nn::retention_rotate(K, start), 2, 3)).to_vector<double>();
    double err = 0.0;
    for (i64 n = 0; n < T; ++n)
      for (i64 mpos = 0; mpos < T; ++mpos) {
        double ref = 0.0;
        for (i64 i = 0; i < d / 2; ++i) {
          const double a = qv[2 * i], b = qv[2 * i + 1], c = kv[2 * i], dd = kv[2 * i + 1];
          const double ang = static_cast<double>(n - mpos) * theta(i, d / 2);
          ref += (a * c + b * dd) * std::cos(ang) + (a * dd - b * c) * std::sin(ang);
        }
        err = std::max(err, std::abs(s[n * T + mpos] - ref));
      }
    MESSAGE("rotated scores vs closed form in n - m, start " << start << ": " << err);
    CHECK(err < 1e-12);
  }
}

TEST_CASE("retnet: forward equals the whole layer in loops (f64 1e-10)") {
  for (i64 chunk : {4, 64}) {
    CAPTURE(chunk);
    nn::MultiScaleRetention m(retnet_config(8, 2, chunk, 10));
    prepare_f64(m, 11);
    const i64 B = 2, T = 11;
    const Tensor x = normal({B, T, 8}, 12);
    const double err = max_diff(m.forward(x).to_vector<double>(), naive_layer(m, x.to_vector<double>(), B, T));
    MESSAGE("forward vs loops, chunk " << chunk << ": " << err);
    CHECK(err < 1e-10);
  }
}

TEST_CASE("retnet: step equals forward (f32 1e-5, f64 1e-10), also when decoding starts at a later position") {
  nn::MultiScaleRetention m(retnet_config(16, 4, 5, 13));
  randomize(m, 14);
  const Tensor x32 = normal({2, 23, 16}, 15, DType::Float32);
  const double err32 = max_abs_diff(step_all(m, x32), m.forward(x32));
  m.to(DType::Float64);
  const Tensor x = normal({2, 23, 16}, 15);
  const Tensor y = m.forward(x);
  const double err64 = max_abs_diff(step_all(m, x), y);
  MESSAGE("step vs forward: f32 " << err32 << ", f64 " << err64);
  CHECK(err32 < 1e-5);
  CHECK(err64 < 1e-10);
  // Only position differences matter (oracle 2 for the layer): a fresh state placed at position 1000 gives the same.
  auto state = m.init_state(2, 23);
  state->position = 1000;
  std::vector<Tensor> ys;
  for (i64 t = 0; t < 23; ++t) ys.push_back(m.step(select(x, 1, t), *state));
  const double shifted = max_abs_diff(stack(ys, 1), y);
  MESSAGE("step from position 1000 vs forward: " << shifted);
  CHECK(shifted < 1e-10);
}

TEST_CASE("retnet: causal, and Float64 gradcheck through the input and every weight (D = 8, H = 2, T = 7, chunk 3)") {
  nn::MultiScaleRetention m(retnet_config(8, 2, 3, 16));
  prepare_f64(m, 17);
  const Tensor x = normal({2, 7, 8}, 18);
  CHECK(check_causal(m, x) == 7);
  check_mixer_gradcheck(m, narrow(x, 0, 0, 1));
}

TEST_CASE("retnet: bad options and shapes throw ember::Error naming the layer") {
  for (double bad : {0.0, -4.0, 2.5}) {
    CAPTURE(bad);
    nn::MixerConfig c = retnet_config(8, 2, 4);
    c.options["chunk"] = bad;
    CHECK_THROWS_EMBER(nn::MultiScaleRetention{c}, "MultiScaleRetention: option chunk");
  }
  CHECK_THROWS_EMBER(nn::MultiScaleRetention{retnet_config(8, 3, 4)}, "MultiScaleRetention: n_heads must divide");
  CHECK_THROWS_EMBER(nn::MultiScaleRetention{retnet_config(6, 2, 4)}, "d_model 6, n_heads 2");  // d_k = 3 is odd
  CHECK_THROWS_EMBER(nn::MultiScaleRetention{retnet_config(8, 0, 4)}, "MultiScaleRetention: n_heads");
  nn::MultiScaleRetention m(retnet_config(8, 2, 4));
  CHECK_THROWS_EMBER(m.forward(zeros({2, 5, 6})),
                     "MultiScaleRetention: expected x [B, T, 8] with T > 0, got [2, 5, 6]");
  CHECK_THROWS_EMBER(m.forward(zeros({5, 8})), "MultiScaleRetention: expected x [B, T, 8] with T > 0, got [5, 8]");
  CHECK_THROWS_EMBER(m.forward(zeros({1, 0, 8})), "MultiScaleRetention: expected x [B, T, 8]");
  auto state = m.init_state(2, 8);
  CHECK_THROWS_EMBER(m.step(zeros({3, 8}), *state), "MultiScaleRetention: step expected x_t [2, 8], got [3, 8]");
  CHECK_THROWS_EMBER(m.init_state(0, 8), "MultiScaleRetention: init_state");
  const Tensor q = zeros({1, 2, 5, 4}), v = zeros({1, 2, 5, 3});
  CHECK_THROWS_EMBER(nn::retention_parallel(q, zeros({1, 2, 4, 4}), v, zeros({2})), "retention_parallel: expected");
  CHECK_THROWS_EMBER(nn::retention_recurrent(q, q, v, zeros({3})), "retention_recurrent: expected");
  CHECK_THROWS_EMBER(
      nn::retention_chunkwise(zeros({1, 2, 0, 4}), zeros({1, 2, 0, 4}), zeros({1, 2, 0, 3}), zeros({2}), 2),
      "retention_chunkwise: expected");
  CHECK_THROWS_EMBER(nn::retention_chunkwise(q, q, v, zeros({2}), 0), "retention_chunkwise: chunk must be > 0");
  CHECK_THROWS_EMBER(nn::retention_chunkwise(q, q, v, zeros({2}, DType::Float64), 2), "retention_chunkwise: q, k, v");
  CHECK_THROWS_EMBER(nn::retention_rotate(zeros({1, 2, 5, 3}), 0), "retention_rotate: expected");
}
