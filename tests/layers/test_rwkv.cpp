/// \file
/// \brief RWKV-4 (technique notes §7a) against independent computations written here in long double: nn::wkv (the
/// stable CPU kernel) against the direct formula wkv_t = (Σ_{i<t} e^{−(t−1−i)w + k_i} v_i + e^{u+k_t} v_t) /
/// (Σ_{i<t} e^{−(t−1−i)w + k_i} + e^{u+k_t}) in loops, also with k scaled ×5 (oracle 1); its gradients against the
/// autograd gradients of nn::wkv_reference, the T×T masked parallel form (oracle 3), and Float64 gradcheck; with
/// k ≈ 100 the masked form overflows in Float32 while the kernel stays finite and equal to the loops (oracle 2);
/// RWKVTimeMix and RWKVChannelMix forward against loops of token shift, projections and the formula, step against
/// forward, causality, gradcheck, RWKV-4's init against its closed forms, and bad input throwing ember::Error.
#include <algorithm>
#include <cmath>
#include <vector>

#include "layer_helpers.h"
#include "layers/ssm/rwkv.h"

using namespace ember;
using namespace ember::test;
using i64 = std::int64_t;
using Vec = std::vector<double>;

namespace {

/// wkv by the direct formula in long double: w, u [C]; k, v [B, T, C] flat -> [B, T, C] flat. No max subtraction:
/// long double's exp reaches e^{11356}, far past every exponent used here.
Vec naive_wkv(const Vec& w, const Vec& u, const Vec& k, const Vec& v, i64 B, i64 T, i64 C) {
  Vec y;
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t)
      for (i64 c = 0; c < C; ++c) {
        const auto at = [&](i64 i) { return static_cast<std::size_t>((b * T + i) * C + c); };
        long double num = std::exp(static_cast<long double>(u[c]) + k[at(t)]) * v[at(t)];
        long double den = std::exp(static_cast<long double>(u[c]) + k[at(t)]);
        for (i64 i = 0; i < t; ++i) {
          const long double e = std::exp(-static_cast<long double>(t - 1 - i) * w[c] + k[at(i)]);
          num += e * v[at(i)];
          den += e;
        }
        y.push_back(static_cast<double>(num / den));
      }
  return y;
}

/// wkv by the plain recurrence in long double, a_{t+1} = e^{−w} a_t + e^{k_t} v_t, b_{t+1} = e^{−w} b_t + e^{k_t},
/// y_t = (a_t + e^{u+k_t} v_t) / (b_t + e^{u+k_t}): O(T) per channel, for sizes where the direct formula is too slow.
Vec recurrent_wkv(const Vec& w, const Vec& u, const Vec& k, const Vec& v, i64 B, i64 T, i64 C) {
  Vec y(k.size());
  for (i64 b = 0; b < B; ++b)
    for (i64 c = 0; c < C; ++c) {
      long double a = 0, d = 0;
      const long double decay = std::exp(-static_cast<long double>(w[c]));
      for (i64 t = 0; t < T; ++t) {
        const auto i = static_cast<std::size_t>((b * T + t) * C + c);
        const long double bonus = std::exp(static_cast<long double>(u[c]) + k[i]),
                          e = std::exp(static_cast<long double>(k[i]));
        y[i] = static_cast<double>((a + bonus * v[i]) / (d + bonus));
        a = decay * a + e * v[i];
        d = decay * d + e;
      }
    }
  return y;
}

/// Random WKV inputs: w = exp(N(0, 0.5²)) > 0, u ~ N(0, 1), k ~ N(k_mean, k_scale²), v ~ N(0, 1).
struct WkvInputs {
  Tensor w, u, k, v;  ///< [C], [C], [B, T, C], [B, T, C]
  i64 B, T, C;        ///< the sizes
  /// w, u, k, v as double vectors.
  std::vector<Vec> vectors() const {
    return {w.to_vector<double>(), u.to_vector<double>(), k.to_vector<double>(), v.to_vector<double>()};
  }
  /// The loops' wkv of these inputs.
  Vec naive() const {
    const auto x = vectors();
    return naive_wkv(x[0], x[1], x[2], x[3], B, T, C);
  }
};

WkvInputs wkv_inputs(i64 B, i64 T, i64 C, std::uint64_t seed, DType dtype = DType::Float64, double k_scale = 1.0,
                     double k_mean = 0.0) {
  return {exp(normal({C}, seed, dtype, 0.5)),
          normal({C}, seed + 1, dtype),
          normal({B, T, C}, seed + 2, dtype, k_scale) + k_mean,
          normal({B, T, C}, seed + 3, dtype),
          B,
          T,
          C};
}

/// The gradients of sum(f(w, u, k, v) ⊙ R) with respect to w, u, k, v, for a fixed random R.
template <class F>
std::vector<Tensor> wkv_grads(F&& f, const WkvInputs& in) {
  std::vector<Tensor> leaves = {leaf_of(in.w), leaf_of(in.u), leaf_of(in.k), leaf_of(in.v)};
  const Tensor R = normal(in.k.shape(), 99, in.k.dtype());
  sum(f(leaves[0], leaves[1], leaves[2], leaves[3]) * R).backward();
  return {leaves[0].grad(), leaves[1].grad(), leaves[2].grad(), leaves[3].grad()};
}

/// Largest |a − b| relative to max(1, |b|), over every pair of gradients.
double max_grad_error(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  double err = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const Vec x = a[i].to_vector<double>(), y = b[i].to_vector<double>();
    for (std::size_t j = 0; j < x.size(); ++j)
      err = std::max(err, std::abs(x[j] - y[j]) / std::max(1.0, std::abs(y[j])));
  }
  return err;
}

/// A config of width d for layer l of L (options "layer", "n_layers", "hidden" when > 0), drawing from a generator
/// seeded with `seed` (one shared generator, reseeded by every call: build the layer before the next call).
nn::MixerConfig rwkv_config(i64 d, i64 l = 0, i64 L = 1, std::uint64_t seed = 0, i64 hidden = 0) {
  static Generator gen(0);
  gen = Generator(seed);
  nn::MixerConfig c;
  c.d_model = d;
  c.options = {{"layer", static_cast<double>(l)}, {"n_layers", static_cast<double>(L)}};
  if (hidden > 0) c.options["hidden"] = static_cast<double>(hidden);
  c.gen = &gen;
  return c;
}

/// Row-major W [out, in] times x [in] (x starting at x[offset]).
Vec matvec(const Vec& W, const Vec& x, std::size_t offset, i64 out, i64 in) {
  Vec y(out, 0.0);
  for (i64 o = 0; o < out; ++o)
    for (i64 i = 0; i < in; ++i) y[o] += W[o * in + i] * x[offset + i];
  return y;
}

/// μ ⊙ x_t + (1 − μ) ⊙ x_{t−1} at flat row (b, t) of x [B, T, D] (x_{−1} = 0).
Vec shifted(const Vec& x, const Vec& mu, i64 b, i64 t, i64 T, i64 D) {
  Vec out(D);
  for (i64 d = 0; d < D; ++d) {
    const double prev = t > 0 ? x[(b * T + t - 1) * D + d] : 0.0;
    out[d] = mu[d] * x[(b * T + t) * D + d] + (1.0 - mu[d]) * prev;
  }
  return out;
}

double sigmoid_of(double z) { return 1.0 / (1.0 + std::exp(-z)); }

/// RWKVTimeMix by loops: r, k, v from the token-shifted inputs, wkv by the direct formula, o = W_o(σ(r) ⊙ wkv).
Vec naive_time_mix(const nn::RWKVTimeMix& m, const Vec& x, i64 B, i64 T) {
  const i64 D = m.d_model;
  const Vec Wr = m.r_proj->weight.to_vector<double>(), Wk = m.k_proj->weight.to_vector<double>();
  const Vec Wv = m.v_proj->weight.to_vector<double>(), Wo = m.o_proj->weight.to_vector<double>();
  const Vec mr = m.time_mix_r.to_vector<double>(), mk = m.time_mix_k.to_vector<double>();
  const Vec mv = m.time_mix_v.to_vector<double>(), u = m.time_first.to_vector<double>();
  Vec w;
  for (double decay : m.time_decay.to_vector<double>()) w.push_back(std::exp(decay));
  Vec r, k, v;
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t) {
      for (double e : matvec(Wr, shifted(x, mr, b, t, T, D), 0, D, D)) r.push_back(e);
      for (double e : matvec(Wk, shifted(x, mk, b, t, T, D), 0, D, D)) k.push_back(e);
      for (double e : matvec(Wv, shifted(x, mv, b, t, T, D), 0, D, D)) v.push_back(e);
    }
  Vec gated = naive_wkv(w, u, k, v, B, T, D);
  for (std::size_t i = 0; i < gated.size(); ++i) gated[i] *= sigmoid_of(r[i]);
  Vec out;
  for (i64 row = 0; row < B * T; ++row)
    for (double e : matvec(Wo, gated, static_cast<std::size_t>(row * D), D, D)) out.push_back(e);
  return out;
}

/// RWKVChannelMix by loops: σ(W'_r x_r) ⊙ W'_v relu(W'_k x_k)².
Vec naive_channel_mix(const nn::RWKVChannelMix& m, const Vec& x, i64 B, i64 T) {
  const i64 D = m.d_model, H = m.hidden;
  const Vec Wk = m.k_proj->weight.to_vector<double>(), Wv = m.v_proj->weight.to_vector<double>();
  const Vec Wr = m.r_proj->weight.to_vector<double>();
  const Vec mk = m.time_mix_k.to_vector<double>(), mr = m.time_mix_r.to_vector<double>();
  Vec out;
  for (i64 b = 0; b < B; ++b)
    for (i64 t = 0; t < T; ++t) {
      Vec k = matvec(Wk, shifted(x, mk, b, t, T, D), 0, H, D);
      for (double& e : k) e = e > 0 ? e * e : 0.0;
      const Vec kv = matvec(Wv, k, 0, D, H), r = matvec(Wr, shifted(x, mr, b, t, T, D), 0, D, D);
      for (i64 d = 0; d < D; ++d) out.push_back(sigmoid_of(r[d]) * kv[d]);
    }
  return out;
}

}  // namespace

TEST_CASE("rwkv: the wkv kernel equals the direct formula in loops, also with k scaled x5 (f64 1e-12, f32 1e-5)") {
  for (double k_scale : {1.0, 5.0}) {
    CAPTURE(k_scale);
    const WkvInputs in = wkv_inputs(2, 37, 5, 1, DType::Float64, k_scale);
    const Vec expected = in.naive();
    const double err64 = max_diff(nn::wkv(in.w, in.u, in.k, in.v).to_vector<double>(), expected);
    const WkvInputs in32 = wkv_inputs(2, 37, 5, 1, DType::Float32, k_scale);
    const double err32 = max_diff(nn::wkv(in32.w, in32.u, in32.k, in32.v).to_vector<double>(), in32.naive());
    const double err_ref = max_diff(nn::wkv_reference(in.w, in.u, in.k, in.v).to_vector<double>(), expected);
    MESSAGE("k x" << k_scale << ": kernel f64 " << err64 << ", f32 " << err32 << "; masked form f64 " << err_ref);
    CHECK(err64 < 1e-12);
    CHECK(err32 < 1e-5);
    CHECK(err_ref < 1e-12);  // the masked form itself is right, so the next test may use it as the gradient oracle
  }
}

TEST_CASE("rwkv: at a size that runs in parallel the kernel equals the long-double recurrence and the serial runs") {
  // B·T·C = 33600 ≥ the CPU backend's parallel grain: threads split the (sequence, channel) pairs mid-sequence.
  const WkvInputs in = wkv_inputs(3, 1600, 7, 21);
  const auto x = in.vectors();
  const Tensor y = nn::wkv(in.w, in.u, in.k, in.v);
  const double err = max_diff(y.to_vector<double>(), recurrent_wkv(x[0], x[1], x[2], x[3], in.B, in.T, in.C));
  // Gradients against each sequence run alone (below the grain: one thread), with dw, du summed over the three.
  const std::vector<Tensor> parallel = wkv_grads(nn::wkv, in);
  std::vector<Tensor> serial = {zeros({7}, DType::Float64), zeros({7}, DType::Float64)}, dk, dv;
  const Tensor R = normal(in.k.shape(), 99, in.k.dtype());  // the weighting wkv_grads draws
  for (i64 b = 0; b < in.B; ++b) {
    std::vector<Tensor> leaves = {leaf_of(in.w), leaf_of(in.u), leaf_of(narrow(in.k, 0, b, 1)),
                                  leaf_of(narrow(in.v, 0, b, 1))};
    sum(nn::wkv(leaves[0], leaves[1], leaves[2], leaves[3]) * narrow(R, 0, b, 1)).backward();
    serial[0] = serial[0] + leaves[0].grad();
    serial[1] = serial[1] + leaves[1].grad();
    dk.push_back(leaves[2].grad());
    dv.push_back(leaves[3].grad());
  }
  serial.push_back(cat(dk, 0));
  serial.push_back(cat(dv, 0));
  const double grad_err = max_grad_error(parallel, serial);
  MESSAGE("B 3, T 1600, C 7: output vs recurrence " << err << ", gradients vs serial runs " << grad_err);
  CHECK(err < 1e-12);
  CHECK(grad_err < 1e-12);
}

TEST_CASE("rwkv: wkv gradients equal the masked form's autograd gradients (f64 1e-9) and pass gradcheck") {
  for (double k_scale : {1.0, 5.0}) {
    CAPTURE(k_scale);
    const WkvInputs in = wkv_inputs(3, 29, 4, 2, DType::Float64, k_scale);
    const double err = max_grad_error(wkv_grads(nn::wkv, in), wkv_grads(nn::wkv_reference, in));
    MESSAGE("k x" << k_scale << ": kernel vs masked-form gradients " << err);
    CHECK(err < 1e-9);
  }
  const WkvInputs small = wkv_inputs(2, 6, 3, 3);
  const GradcheckResult r =
      gradcheck([](const auto& x) { return nn::wkv(x[0], x[1], x[2], x[3]); },
                {leaf_of(small.w), leaf_of(small.u), leaf_of(small.k), leaf_of(small.v)}, 1e-6, 1e-7, 1e-5);
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("rwkv: with k near 100 the masked form overflows in f32 while the kernel stays finite and exact") {
  const WkvInputs in32 = wkv_inputs(2, 17, 4, 4, DType::Float32, 1.0, 100.0);
  const Vec reference = nn::wkv_reference(in32.w, in32.u, in32.k, in32.v).to_vector<double>();
  CHECK(std::any_of(reference.begin(), reference.end(), [](double y) { return !std::isfinite(y); }));
  const Vec y32 = nn::wkv(in32.w, in32.u, in32.k, in32.v).to_vector<double>();
  CHECK(std::all_of(y32.begin(), y32.end(), [](double y) { return std::isfinite(y); }));
  const double err32 = max_diff(y32, in32.naive());  // the loops in long double, where e^{100} is harmless
  // Gradients: the f32 kernel against the masked form's autograd in f64 (e^{100} ≈ 3e43 fits a double).
  const WkvInputs in64{in32.w.to(DType::Float64),
                       in32.u.to(DType::Float64),
                       in32.k.to(DType::Float64),
                       in32.v.to(DType::Float64),
                       in32.B,
                       in32.T,
                       in32.C};
  const double grad_err32 = max_grad_error(wkv_grads(nn::wkv, in32), wkv_grads(nn::wkv_reference, in64));
  const double grad_err64 = max_grad_error(wkv_grads(nn::wkv, in64), wkv_grads(nn::wkv_reference, in64));
  MESSAGE("k ~ 100: kernel f32 output " << err32 << ", gradients f32 " << grad_err32 << ", f64 " << grad_err64);
  CHECK(err32 < 1e-5);
  CHECK(grad_err32 < 1e-4);
  CHECK(grad_err64 < 1e-9);
}

TEST_CASE("rwkv: RWKVTimeMix forward equals loops of token shift, projections, the wkv formula and W_o (f64 1e-12)") {
  nn::RWKVTimeMix m(rwkv_config(5, 1, 3, 5));
  prepare_f64(m, 6);
  const i64 B = 2, T = 13;
  const Tensor x = normal({B, T, 5}, 7);
  const double err = max_diff(m.forward(x).to_vector<double>(), naive_time_mix(m, x.to_vector<double>(), B, T));
  MESSAGE("time mix vs loops: " << err);
  CHECK(err < 1e-12);
}

TEST_CASE("rwkv: RWKVChannelMix forward equals loops of sigmoid(W'r xr) times W'v relu(W'k xk)^2 (f64 1e-12)") {
  nn::RWKVChannelMix m(rwkv_config(5, 1, 3, 8, 7));
  prepare_f64(m, 9);
  const i64 B = 2, T = 13;
  const Tensor x = normal({B, T, 5}, 10);
  const double err = max_diff(m.forward(x).to_vector<double>(), naive_channel_mix(m, x.to_vector<double>(), B, T));
  MESSAGE("channel mix vs loops: " << err);
  CHECK(err < 1e-12);
}

TEST_CASE("rwkv: step through the sequence equals forward for both mixes (f32 1e-5, f64 1e-10)") {
  nn::RWKVTimeMix time_mix(rwkv_config(6, 2, 4, 11));
  nn::RWKVChannelMix channel_mix(rwkv_config(6, 2, 4, 12));
  for (nn::SequenceMixer* m :
       {static_cast<nn::SequenceMixer*>(&time_mix), static_cast<nn::SequenceMixer*>(&channel_mix)}) {
    CAPTURE(m->type_name());
    randomize(*m, 13);
    const Tensor x32 = normal({2, 19, 6}, 14, DType::Float32, 2.0);
    const double err32 = max_abs_diff(step_all(*m, x32), m->forward(x32));
    m->to(DType::Float64);
    const Tensor x = normal({2, 19, 6}, 14, DType::Float64, 2.0);
    const double err64 = max_abs_diff(step_all(*m, x), m->forward(x));
    MESSAGE(m->type_name() << " step vs forward: f32 " << err32 << ", f64 " << err64);
    CHECK(err32 < 1e-5);
    CHECK(err64 < 1e-10);
  }
}

TEST_CASE("rwkv: both mixes are causal and pass Float64 gradcheck through the input and every parameter (D 4, T 7)") {
  nn::RWKVTimeMix time_mix(rwkv_config(4, 0, 2, 15));
  nn::RWKVChannelMix channel_mix(rwkv_config(4, 0, 2, 16));
  for (nn::SequenceMixer* m :
       {static_cast<nn::SequenceMixer*>(&time_mix), static_cast<nn::SequenceMixer*>(&channel_mix)}) {
    CAPTURE(m->type_name());
    prepare_f64(*m, 17);  // W_k, W_r, W_o (W'_v, W'_r) start at zero: randomized so every path carries gradient
    const Tensor x = normal({2, 7, 4}, 18);
    CHECK(check_causal(*m, x) == 7);
    check_mixer_gradcheck(*m, x);
  }
}

TEST_CASE("rwkv: the init equals RWKV-4's closed forms, and the zero matrices make the output zero") {
  const i64 D = 8;
  for (auto [l, L] : {std::pair<i64, i64>{1, 3}, {0, 1}, {2, 3}}) {
    CAPTURE(l);
    CAPTURE(L);
    nn::RWKVTimeMix m(rwkv_config(D, l, L));
    nn::RWKVChannelMix f(rwkv_config(D, l, L));
    const double r01 = L == 1 ? 0.0 : double(l) / double(L - 1), r10 = 1.0 - double(l) / double(L);
    const Vec decay = m.time_decay.to_vector<double>(), first = m.time_first.to_vector<double>();
    const Vec mk = m.time_mix_k.to_vector<double>(), mv = m.time_mix_v.to_vector<double>();
    const Vec mr = m.time_mix_r.to_vector<double>(), fk = f.time_mix_k.to_vector<double>();
    const Vec fr = f.time_mix_r.to_vector<double>();
    for (i64 c = 0; c < D; ++c) {
      CAPTURE(c);
      const double frac = double(c) / D;
      CHECK(decay[c] == doctest::Approx(-5.0 + 8.0 * std::pow(double(c) / (D - 1), 0.7 + 1.3 * r01)).epsilon(1e-6));
      CHECK(first[c] == doctest::Approx(std::log(0.3) + 0.5 * ((c + 1) % 3 - 1)).epsilon(1e-6));
      CHECK(mk[c] == doctest::Approx(std::pow(frac, r10)).epsilon(1e-6));
      CHECK(mv[c] == doctest::Approx(std::pow(frac, r10) + 0.3 * r01).epsilon(1e-6));
      CHECK(mr[c] == doctest::Approx(std::pow(frac, 0.5 * r10)).epsilon(1e-6));
      CHECK(fk[c] == doctest::Approx(std::pow(frac, r10)).epsilon(1e-6));
      CHECK(fr[c] == doctest::Approx(std::pow(frac, r10)).epsilon(1e-6));
    }
    for (const Tensor* zero :
         {&m.k_proj->weight, &m.r_proj->weight, &m.o_proj->weight, &f.v_proj->weight, &f.r_proj->weight})
      CHECK(max_abs_diff(*zero, zeros(zero->shape())) == 0.0);
    CHECK(max_abs_diff(m.v_proj->weight, zeros({D, D})) > 0.0);
    CHECK(f.k_proj->weight.shape() == Shape{4 * D, D});  // hidden defaults to 4D
    const Tensor x = normal({2, 5, D}, 19, DType::Float32);
    CHECK(max_abs_diff(m(x), zeros({2, 5, D})) == 0.0);
    CHECK(max_abs_diff(f(x), zeros({2, 5, D})) == 0.0);
  }
  // One channel: model.py would divide by C − 1 = 0; the ratio is taken as 0, so time_decay = −5.
  nn::RWKVTimeMix one(rwkv_config(1, 0, 1));
  CHECK(one.time_decay.item() == doctest::Approx(-5.0));
}

TEST_CASE("rwkv: bad input throws ember::Error naming wkv, RWKVTimeMix or RWKVChannelMix and the shapes") {
  const WkvInputs in = wkv_inputs(2, 5, 3, 20);
  CHECK_THROWS_EMBER(nn::wkv(zeros({4}, DType::Float64), in.u, in.k, in.v),
                     "wkv: expected w, u [C] and k, v [B, T, C], got w [4], u [3], k [2, 5, 3], v [2, 5, 3]");
  CHECK_THROWS_EMBER(nn::wkv_reference(in.w, in.u, in.k, zeros({2, 4, 3}, DType::Float64)), "v [2, 4, 3]");
  CHECK_THROWS_EMBER(nn::wkv(in.w, in.u, zeros({5, 3}, DType::Float64), in.v), "k [5, 3]");
  CHECK_THROWS_EMBER(nn::wkv(in.w.to(DType::Float32), in.u, in.k, in.v), "wkv: w, u, k, v must share a dtype");
  CHECK_THROWS_EMBER(nn::wkv(Tensor(), in.u, in.k, in.v), "wkv");
  CHECK_THROWS_EMBER(
      nn::wkv(in.w.to(DType::Float16), in.u.to(DType::Float16), in.k.to(DType::Float16), in.v.to(DType::Float16)),
      "wkv_forward: expected Float32 or Float64");
  for (auto [l, L] : {std::pair<double, double>{3, 3}, {-1, 2}, {0, 0}, {0.5, 2}, {0, 1.5}}) {
    CAPTURE(l);
    CAPTURE(L);
    nn::MixerConfig c = rwkv_config(4);
    c.options = {{"layer", l}, {"n_layers", L}};
    CHECK_THROWS_EMBER(nn::RWKVTimeMix{c}, "RWKVTimeMix: option");
    CHECK_THROWS_EMBER(nn::RWKVChannelMix{c}, "RWKVChannelMix: option");
  }
  CHECK_THROWS_EMBER(nn::RWKVTimeMix{rwkv_config(0)}, "RWKVTimeMix: d_model must be > 0, got 0");
  for (double hidden : {0.0, -4.0, 2.5}) {
    CAPTURE(hidden);
    nn::MixerConfig c = rwkv_config(4);
    c.options["hidden"] = hidden;
    CHECK_THROWS_EMBER(nn::RWKVChannelMix{c}, "RWKVChannelMix:");
  }
  nn::RWKVTimeMix m(rwkv_config(4));
  nn::RWKVChannelMix f(rwkv_config(4));
  CHECK_THROWS_EMBER(m.forward(zeros({2, 5, 3})), "RWKVTimeMix: expected x [B, T, 4], got [2, 5, 3]");
  CHECK_THROWS_EMBER(f.forward(zeros({5, 4})), "RWKVChannelMix: expected x [B, T, 4], got [5, 4]");
  auto time_state = m.init_state(2, 8);
  auto channel_state = f.init_state(2, 8);
  CHECK_THROWS_EMBER(m.step(zeros({3, 4}), *time_state), "RWKVTimeMix: step expected x_t [2, 4], got [3, 4]");
  CHECK_THROWS_EMBER(f.step(zeros({2, 5}), *channel_state), "RWKVChannelMix: step expected x_t [2, 4], got [2, 5]");
  CHECK_THROWS_EMBER(m.step(zeros({2, 4}), *channel_state), "RWKVTimeMix: step needs the state made by its init_state");
  CHECK_THROWS_EMBER(m.init_state(0, 8), "RWKVTimeMix: init_state");
  CHECK_THROWS_EMBER(f.init_state(2, 0), "RWKVChannelMix: init_state");
}
