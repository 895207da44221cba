/// \file
/// \brief nn::Mamba (technique notes §6) against independent computations: forward against the whole block written as
/// loops in double (W_in, the causal depthwise conv, SiLU, W_x, softplus(W_dt δ + b_dt), the recurrence
/// s_t = exp(Δ_t A) ⊙ s_{t−1} + Δ_t B_t x_t, y_t = C_t · s_t + D x_t, the SiLU gate and W_out); step through the
/// sequence against forward (oracle 1); causality (oracle 3); Float64 gradcheck; the reference's init (A_log =
/// log(n+1), D = 1, the conv and W_dt bounds) with oracles 5 (softplus(b_dt) ∈ [1e-4, 0.1]) and 6 (exp(ΔA) ∈ (0, 1));
/// bad options and shapes throw ember::Error naming Mamba.
#include <cmath>
#include <numeric>

#include "layer_helpers.h"
#include "layers/ssm/mamba.h"

using namespace ember;
using namespace ember::test;
using i64 = std::int64_t;
using Vec = std::vector<double>;

namespace {

/// A Mamba config with the given d_model and options, drawing its weights from a generator seeded with `seed` (one
/// shared generator, reseeded by every call: build the layer before the next call).
nn::MixerConfig mamba_config(i64 d_model, std::map<std::string, double> options, std::uint64_t seed = 0) {
  static Generator gen(0);
  gen = Generator(seed);
  nn::MixerConfig c;
  c.d_model = d_model;
  c.options = std::move(options);
  c.gen = &gen;
  return c;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }
double softplus(double v) { return std::log1p(std::exp(v)); }

/// The block by loops in double for x [B][T][D] (row-major), from m's parameters.
Vec naive_forward(const nn::Mamba& m, const Vec& h, i64 Bn, i64 T) {
  const i64 D = m.d_model, E = m.d_inner, N = m.d_state, R = m.dt_rank, K = m.d_conv;
  const Vec Win = m.in_proj->weight.to_vector<double>(), cw = m.conv_weight.to_vector<double>();
  const Vec cb = m.conv_bias.to_vector<double>(), Wx = m.x_proj->weight.to_vector<double>();
  const Vec Wdt = m.dt_proj->weight.to_vector<double>(), bdt = m.dt_proj->bias.to_vector<double>();
  const Vec A_log = m.A_log.to_vector<double>(), Dv = m.D.to_vector<double>();
  const Vec Wout = m.out_proj->weight.to_vector<double>();
  Vec out;
  for (i64 b = 0; b < Bn; ++b) {
    std::vector<Vec> xin(T, Vec(E)), s(E, Vec(N, 0.0));
    for (i64 t = 0; t < T; ++t) {
      Vec xz(2 * E, 0.0);
      for (i64 j = 0; j < 2 * E; ++j)
        for (i64 i = 0; i < D; ++i) xz[j] += Win[j * D + i] * h[(b * T + t) * D + i];
      for (i64 c = 0; c < E; ++c) xin[t][c] = xz[c];
      Vec u(E);
      for (i64 c = 0; c < E; ++c) {  // PyTorch's conv1d with padding K − 1, first T outputs: tap k sees x_{t−K+1+k}
        double v = cb[c];
        for (i64 k = 0; k < K; ++k)
          if (t - K + 1 + k >= 0) v += cw[c * K + k] * xin[t - K + 1 + k][c];
        u[c] = silu(v);
      }
      Vec xd(R + 2 * N, 0.0);
      for (i64 j = 0; j < R + 2 * N; ++j)
        for (i64 c = 0; c < E; ++c) xd[j] += Wx[j * E + c] * u[c];
      Vec g(E);
      for (i64 c = 0; c < E; ++c) {
        double pre = bdt[c];
        for (i64 r = 0; r < R; ++r) pre += Wdt[c * R + r] * xd[r];
        const double dt = softplus(pre);
        double y = Dv[c] * u[c];
        for (i64 n = 0; n < N; ++n) {
          s[c][n] = std::exp(-dt * std::exp(A_log[c * N + n])) * s[c][n] + dt * xd[R + n] * u[c];
          y += xd[R + N + n] * s[c][n];
        }
        g[c] = y * silu(xz[E + c]);
      }
      for (i64 o = 0; o < D; ++o) {
        double v = 0.0;
        for (i64 c = 0; c < E; ++c) v += Wout[o * E + c] * g[c];
        out.push_back(v);
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("mamba: forward equals the whole block written as loops in double (f64 1e-10)") {
  for (i64 d_conv : {1, 4}) {
    CAPTURE(d_conv);
    nn::Mamba m(mamba_config(6, {{"d_state", 5}, {"d_conv", d_conv}, {"chunk", 4}}, 1));
    prepare_f64(m, 2);
    const i64 B = 2, T = 13;
    const Tensor x = normal({B, T, 6}, 3);
    const double err = max_diff(m.forward(x).to_vector<double>(), naive_forward(m, x.to_vector<double>(), B, T));
    MESSAGE("forward vs loops, d_conv " << d_conv << ": " << err);
    CHECK(err < 1e-10);
  }
}

TEST_CASE("mamba: step through the sequence equals forward (f32 1e-5, f64 1e-10)") {
  for (i64 d_conv : {1, 2, 4}) {
    CAPTURE(d_conv);
    nn::Mamba m(mamba_config(8, {{"d_state", 4}, {"d_conv", d_conv}, {"chunk", 5}}, 4));
    randomize(m, 5);
    const Tensor x32 = normal({2, 17, 8}, 6, DType::Float32);
    const double err32 = max_abs_diff(step_all(m, x32), m.forward(x32));
    m.to(DType::Float64);
    const Tensor x = normal({2, 17, 8}, 6);
    const double err64 = max_abs_diff(step_all(m, x), m.forward(x));
    MESSAGE("step vs forward, d_conv " << d_conv << ": f32 " << err32 << ", f64 " << err64);
    CHECK(err32 < 1e-5);
    CHECK(err64 < 1e-10);
  }
}

TEST_CASE("mamba: causal, and Float64 gradcheck through the input and every parameter (D = 4, N = 3, T = 7)") {
  nn::Mamba m(mamba_config(4, {{"d_state", 3}, {"chunk", 3}}, 7));
  prepare_f64(m, 8);
  const Tensor x = normal({2, 7, 4}, 9);
  CHECK(check_causal(m, x) == 7);
  check_mixer_gradcheck(m, narrow(x, 0, 0, 1));
}

TEST_CASE("mamba: sizes and the reference init, softplus(b_dt) in [1e-4, 0.1] and exp(Delta A) in (0, 1)") {
  const i64 Dm = 40, E = 80, N = 16, R = 3;  // R = ⌈40/16⌉
  nn::Mamba m(mamba_config(Dm, {}, 10));
  CHECK(m.d_inner == E);
  CHECK(m.d_state == N);
  CHECK(m.d_conv == 4);
  CHECK(m.dt_rank == R);
  CHECK(m.chunk == 64);
  CHECK(m.in_proj->weight.shape() == Shape{2 * E, Dm});
  CHECK(m.x_proj->weight.shape() == Shape{R + 2 * N, E});
  CHECK(m.out_proj->weight.shape() == Shape{Dm, E});
  CHECK(!m.in_proj->bias.defined());
  CHECK(!m.x_proj->bias.defined());
  CHECK(!m.out_proj->bias.defined());
  const Vec A_log = m.A_log.to_vector<double>();
  for (i64 c = 0; c < E; ++c)
    for (i64 n = 0; n < N; ++n) CHECK(std::abs(A_log[c * N + n] - std::log(n + 1.0)) < 1e-6);
  for (double d : m.D.to_vector<double>()) CHECK(d == 1.0);
  const auto within = [](const Tensor& t, double bound) {
    for (double v : t.to_vector<double>()) CHECK(std::abs(v) <= bound);
  };
  within(m.conv_weight, 0.5);  // 1/√d_conv
  within(m.conv_bias, 0.5);
  within(m.dt_proj->weight, 1.0 / std::sqrt(static_cast<double>(R)));
  // Oracle 5: Δ0 = softplus(b_dt) ∈ [1e-4, 0.1], log-uniform on [log 1e-3, log 1e-1] (mean −4.61, sd 1.33/√80).
  Vec log_dt0;
  for (double b : m.dt_proj->bias.to_vector<double>()) {
    const double dt0 = softplus(b);
    CHECK(dt0 >= 1e-4 * (1 - 1e-5));
    CHECK(dt0 <= 0.1 * (1 + 1e-5));
    log_dt0.push_back(std::log(dt0));
  }
  const double mean = std::accumulate(log_dt0.begin(), log_dt0.end(), 0.0) / static_cast<double>(E);
  CHECK(std::abs(mean - 0.5 * (std::log(1e-3) + std::log(1e-1))) < 0.75);  // 5σ
  // Oracle 6: on a random input, every exp(Δ_t A) lies strictly inside (0, 1).
  const Tensor u = silu(m.causal_conv(narrow(m.in_proj->forward(normal({2, 9, Dm}, 11, DType::Float32)), 2, 0, E)));
  const Tensor decay = exp(unsqueeze(std::get<0>(m.selection(u)), 3) * m.A());  // [2, 9, E, N]
  const Vec dA = decay.to_vector<double>();
  CHECK(*std::min_element(dA.begin(), dA.end()) > 0.0);
  CHECK(*std::max_element(dA.begin(), dA.end()) < 1.0);
}

TEST_CASE("mamba: bad options and shapes throw ember::Error naming Mamba") {
  for (const char* name : {"d_state", "d_conv", "expand", "chunk"})
    for (double bad : {0.0, -1.0, 2.5}) {
      CAPTURE(name);
      CAPTURE(bad);
      CHECK_THROWS_EMBER(nn::Mamba{mamba_config(4, {{name, bad}})}, (std::string("Mamba: option ") + name).c_str());
    }
  for (double bad : {-1.0, 0.5})
    CHECK_THROWS_EMBER(nn::Mamba{mamba_config(4, {{"dt_rank", bad}})}, "Mamba: option dt_rank");
  CHECK_THROWS_EMBER(nn::Mamba{mamba_config(0, {})}, "Mamba: d_model must be > 0");
  nn::Mamba m(mamba_config(4, {{"d_state", 2}}));
  CHECK_THROWS_EMBER(m.forward(zeros({2, 5, 3})), "Mamba: expected x [B, T, 4], got [2, 5, 3]");
  CHECK_THROWS_EMBER(m.forward(zeros({5, 4})), "Mamba: expected x [B, T, 4], got [5, 4]");
  auto state = m.init_state(2, 8);
  CHECK_THROWS_EMBER(m.step(zeros({3, 4}), *state), "Mamba: step expected x_t [2, 4], got [3, 4]");
  CHECK_THROWS_EMBER(m.init_state(0, 8), "Mamba: init_state");
}
