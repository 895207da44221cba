/// \file
/// \brief RWKV-4 (technique notes §7a): nn::wkv over the backend's stable WKV kernels (one autograd node),
/// nn::wkv_reference (the T×T masked form from autograd ops), token shift x_a = μ_a ⊙ x_t + (1 − μ_a) ⊙ x_{t−1},
/// nn::RWKVTimeMix (o = W_o(σ(r) ⊙ wkv), decoded with the stable recurrence q = max(p, u+k_t),
/// y = (e^{p−q}a + e^{u+k_t−q}v)/(e^{p−q}b + e^{u+k_t−q}); q' = max(p−w, k_t), a ← e^{p−w−q'}a + e^{k_t−q'}v,
/// b ← e^{p−w−q'}b + e^{k_t−q'}, p ← q') and nn::RWKVChannelMix (σ(W'_r x_r) ⊙ W'_v relu(W'_k x_k)²), with
/// RWKV-4's init.
#include "layers/ssm/rwkv.h"

#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/backend.h"
#include "core/creation.h"
#include "core/ops.h"

namespace ember::nn {

namespace {

using Grads = std::vector<Tensor>;

/// The running exponent p before the first token (as wkv_cuda.cu's MIN_VALUE): e^p = 0, yet p − w stays finite.
constexpr double kMinExponent = -1e38;

void check_wkv(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v) {
  for (const Tensor* t : {&w, &u, &k, &v}) raw::check_defined("wkv", *t);
  const bool ok = k.dim() == 3 && v.shape() == k.shape() && w.dim() == 1 && u.dim() == 1 &&
                  w.shape()[0] == k.shape()[2] && u.shape()[0] == k.shape()[2];
  EMBER_CHECK(ok, fmt::format("wkv: expected w, u [C] and k, v [B, T, C], got w {}, u {}, k {}, v {}",
                              shape_str(w.shape()), shape_str(u.shape()), shape_str(k.shape()), shape_str(v.shape())));
  EMBER_CHECK(w.dtype() == k.dtype() && u.dtype() == k.dtype() && v.dtype() == k.dtype(),
              fmt::format("wkv: w, u, k, v must share a dtype, got {}, {}, {}, {}", dtype_name(w.dtype()),
                          dtype_name(u.dtype()), dtype_name(k.dtype()), dtype_name(v.dtype())));
  for (const Tensor* t : {&w, &u, &v}) raw::check_same_device("wkv", k, *t);
}

/// options[name] as an integer; throws naming `layer_name` when it is not a whole number.
std::int64_t integer_option(const MixerConfig& c, const char* layer_name, const std::string& name, double fallback) {
  const double v = c.option(name, fallback);
  EMBER_CHECK(std::isfinite(v) && v == std::round(v),
              fmt::format("{}: option {} must be an integer, got {}", layer_name, name, v));
  return static_cast<std::int64_t>(v);
}

/// The layer index l and count L from options "layer" and "n_layers": L ≥ 1 and 0 ≤ l < L.
std::pair<std::int64_t, std::int64_t> layer_position(const MixerConfig& c, const char* layer_name) {
  const std::int64_t l = integer_option(c, layer_name, "layer", 0), L = integer_option(c, layer_name, "n_layers", 1);
  EMBER_CHECK(L >= 1 && l >= 0 && l < L,
              fmt::format("{}: options layer and n_layers need n_layers >= 1 and 0 <= layer < n_layers, got layer {} "
                          "and n_layers {}",
                          layer_name, l, L));
  return {l, L};
}

/// l/(L−1), RWKV-4's ratio_0_to_1, taken as 0 for a one-layer model (model.py divides by zero there).
double ratio_0_to_1(std::int64_t l, std::int64_t L) {
  return L == 1 ? 0.0 : static_cast<double>(l) / static_cast<double>(L - 1);
}

/// 1 − l/L, RWKV-4's ratio_1_to_almost0.
double ratio_1_to_almost0(std::int64_t l, std::int64_t L) {
  return 1.0 - static_cast<double>(l) / static_cast<double>(L);
}

/// [C] values f(c) for c = 0..C−1, as a Float32 tensor.
template <class F>
Tensor per_channel(std::int64_t C, F&& f) {
  std::vector<double> values;
  for (std::int64_t c = 0; c < C; ++c) values.push_back(f(static_cast<double>(c)));
  return from_vector(values, {C});
}

/// The token-shift mix μ ⊙ x + (1 − μ) ⊙ x_prev = x_prev + μ ⊙ (x − x_prev).
Tensor shift_mix(const Tensor& x, const Tensor& x_prev, const Tensor& mu) { return x_prev + mu * (x - x_prev); }

/// The state of a step, checked against x_t [B, D].
template <class State>
State& checked_state(MixerState& state, const Tensor& x_t, std::int64_t d_model, const char* layer_name) {
  auto* st = dynamic_cast<State*>(&state);
  EMBER_CHECK(st != nullptr, fmt::format("{}: step needs the state made by its init_state", layer_name));
  const std::int64_t B = st->x_prev.shape()[0];
  EMBER_CHECK(x_t.dim() == 2 && x_t.shape()[0] == B && x_t.shape()[1] == d_model,
              fmt::format("{}: step expected x_t [{}, {}], got {}", layer_name, B, d_model, shape_str(x_t.shape())));
  return *st;
}

void check_input(const Tensor& x, std::int64_t d_model, const char* layer_name) {
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == d_model,
              fmt::format("{}: expected x [B, T, {}], got {}", layer_name, d_model, shape_str(x.shape())));
}

void check_init_state(std::int64_t batch, std::int64_t max_len, const char* layer_name) {
  EMBER_CHECK(batch > 0 && max_len > 0,
              fmt::format("{}: init_state needs batch > 0 and max_len > 0, got {} and {}", layer_name, batch, max_len));
}

}  // namespace

Tensor wkv(const Tensor& w_in, const Tensor& u_in, const Tensor& k_in, const Tensor& v_in) {
  const auto in = amp::autocast_all("wkv", {w_in, u_in, k_in, v_in});
  const Tensor &w = in[0], &u = in[1], &k = in[2], &v = in[3];
  check_wkv(w, u, k, v);
  const Tensor W = raw::contiguous(w), U = raw::contiguous(u), K = raw::contiguous(k), V = raw::contiguous(v);
  Tensor y = empty(K.shape(), K.dtype(), K.device());
  backend_for(K.device()).wkv_forward(W, U, K, V, y);
  if (!needs_grad({w, u, k, v})) return y;
  SavedTensor sw(W), su(U), sk(K), sv(V), sy(y);
  return record(y, "WKVBackward", {w, u, k, v}, [=](const Grads& g) {
    const char* op = "WKVBackward";
    const Tensor Ks = sk.get(op), Ws = sw.get(op), G = raw::contiguous(g[0]);
    Tensor dw = empty(Ws.shape(), Ws.dtype(), Ws.device()), du = empty(Ws.shape(), Ws.dtype(), Ws.device());
    Tensor dk = empty(Ks.shape(), Ks.dtype(), Ks.device()), dv = empty(Ks.shape(), Ks.dtype(), Ks.device());
    backend_for(Ks.device()).wkv_backward(Ws, su.get(op), Ks, sv.get(op), sy.get(op), G, dw, du, dk, dv);
    return Grads{dw, du, dk, dv};
  });
}

Tensor wkv_reference(const Tensor& w, const Tensor& u, const Tensor& k, const Tensor& v) {
  check_wkv(w, u, k, v);
  const std::int64_t T = k.shape()[1];
  const Tensor t = unsqueeze(unsqueeze(arange(0.0, static_cast<double>(T), 1.0, k.dtype(), k.device()), 1), 2);
  const Tensor i = unsqueeze(arange(0.0, static_cast<double>(T), 1.0, k.dtype(), k.device()), 1);  // [T, 1]
  // exponent[b, t, i, c] = −(t−1−i)·w_c + k_{b,i,c} below the diagonal, u_c + k_{b,t,c} on it, −∞ above it.
  const Tensor k_i = unsqueeze(k, 1);           // [B, 1, T, C]
  const Tensor past = k_i - (t - 1.0 - i) * w;  // [B, T, T, C]
  const Tensor exponent = masked_fill(where(t == i, k_i + u, past), i > t, -std::numeric_limits<double>::infinity());
  const Tensor weights = exp(exponent);
  return sum(weights * unsqueeze(v, 1), {2}) / sum(weights, {2});
}

Tensor token_shift(const Tensor& x) {
  EMBER_CHECK(x.dim() == 3, "token_shift: expected x [B, T, D], got " + shape_str(x.shape()));
  return narrow(pad(x, {0, 0, 1, 0}), 1, 0, x.shape()[1]);
}

// ---- RWKVTimeMix ----

RWKVTimeMix::RWKVTimeMix(const MixerConfig& c)
    : SequenceMixer("RWKVTimeMix"),
      d_model(c.d_model),
      layer(layer_position(c, "RWKVTimeMix").first),
      n_layers(layer_position(c, "RWKVTimeMix").second) {
  EMBER_CHECK(d_model > 0, fmt::format("RWKVTimeMix: d_model must be > 0, got {}", d_model));
  const double C = static_cast<double>(d_model), r01 = ratio_0_to_1(layer, n_layers),
               r10 = ratio_1_to_almost0(layer, n_layers);
  time_decay = register_parameter("time_decay", per_channel(d_model, [&](double ch) {
                                    const double frac = d_model == 1 ? 0.0 : ch / (C - 1.0);
                                    return -5.0 + 8.0 * std::pow(frac, 0.7 + 1.3 * r01);
                                  }));
  time_first = register_parameter("time_first", per_channel(d_model, [](double ch) {
                                    const double zigzag = static_cast<double>((static_cast<int>(ch) + 1) % 3 - 1);
                                    return std::log(0.3) + 0.5 * zigzag;
                                  }));
  time_mix_k = register_parameter("time_mix_k", per_channel(d_model, [&](double ch) { return std::pow(ch / C, r10); }));
  time_mix_v = register_parameter("time_mix_v",
                                  per_channel(d_model, [&](double ch) { return std::pow(ch / C, r10) + 0.3 * r01; }));
  time_mix_r =
      register_parameter("time_mix_r", per_channel(d_model, [&](double ch) { return std::pow(ch / C, 0.5 * r10); }));
  r_proj = register_module("r_proj", std::make_shared<Linear>(d_model, d_model, false, c.gen));
  k_proj = register_module("k_proj", std::make_shared<Linear>(d_model, d_model, false, c.gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(d_model, d_model, false, c.gen));
  o_proj = register_module("o_proj", std::make_shared<Linear>(d_model, d_model, false, c.gen));
  NoGradGuard no_grad;
  for (const auto& zero_init : {r_proj, k_proj, o_proj}) zero_init->weight.zero_();  // model.py's scale_init = 0
}

std::array<Tensor, 3> RWKVTimeMix::project(const Tensor& x, const Tensor& x_prev) const {
  return {r_proj->forward(shift_mix(x, x_prev, time_mix_r)), k_proj->forward(shift_mix(x, x_prev, time_mix_k)),
          v_proj->forward(shift_mix(x, x_prev, time_mix_v))};
}

Tensor RWKVTimeMix::forward(const Tensor& x) {
  check_input(x, d_model, "RWKVTimeMix");
  const auto [r, k, v] = project(x, token_shift(x));
  return o_proj->forward(sigmoid(r) * wkv(exp(time_decay), time_first, k, v));
}

std::unique_ptr<MixerState> RWKVTimeMix::init_state(std::int64_t batch, std::int64_t max_len) const {
  check_init_state(batch, max_len, "RWKVTimeMix");
  auto state = std::make_unique<RWKVTimeMixState>();
  const DType dtype = time_decay.dtype();
  const Device device = time_decay.device();
  state->x_prev = zeros({batch, d_model}, dtype, device);
  state->a = zeros({batch, d_model}, dtype, device);
  state->b = zeros({batch, d_model}, dtype, device);
  state->p = full({batch, d_model}, kMinExponent, dtype, device);
  return state;
}

Tensor RWKVTimeMix::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto& st = checked_state<RWKVTimeMixState>(state, x_t, d_model, "RWKVTimeMix");
  const auto [r, k, v] = project(x_t, st.x_prev);
  const Tensor w = exp(time_decay), uk = time_first + k;
  const Tensor q = maximum(st.p, uk), A = exp(st.p - q), B = exp(uk - q);
  const Tensor y = (A * st.a + B * v) / (A * st.b + B);  // wkv_t
  const Tensor q2 = maximum(st.p - w, k), F = exp(st.p - w - q2), G = exp(k - q2);
  st.a = F * st.a + G * v;
  st.b = F * st.b + G;
  st.p = q2;
  st.x_prev = x_t;
  st.position += 1;
  return o_proj->forward(sigmoid(r) * y);
}

std::string RWKVTimeMix::extra_repr() const { return fmt::format("d_model={}, layer={}/{}", d_model, layer, n_layers); }

// ---- RWKVChannelMix ----

RWKVChannelMix::RWKVChannelMix(const MixerConfig& c)
    : SequenceMixer("RWKVChannelMix"),
      d_model(c.d_model),
      hidden(integer_option(c, "RWKVChannelMix", "hidden", 4.0 * static_cast<double>(c.d_model))),
      layer(layer_position(c, "RWKVChannelMix").first),
      n_layers(layer_position(c, "RWKVChannelMix").second) {
  EMBER_CHECK(d_model > 0 && hidden > 0,
              fmt::format("RWKVChannelMix: d_model and option hidden must be > 0, got {} and {}", d_model, hidden));
  const double C = static_cast<double>(d_model), r10 = ratio_1_to_almost0(layer, n_layers);
  time_mix_k = register_parameter("time_mix_k", per_channel(d_model, [&](double ch) { return std::pow(ch / C, r10); }));
  time_mix_r = register_parameter("time_mix_r", per_channel(d_model, [&](double ch) { return std::pow(ch / C, r10); }));
  k_proj = register_module("k_proj", std::make_shared<Linear>(d_model, hidden, false, c.gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(hidden, d_model, false, c.gen));
  r_proj = register_module("r_proj", std::make_shared<Linear>(d_model, d_model, false, c.gen));
  NoGradGuard no_grad;
  for (const auto& zero_init : {v_proj, r_proj}) zero_init->weight.zero_();  // model.py's scale_init = 0
}

Tensor RWKVChannelMix::mix(const Tensor& x, const Tensor& x_prev) const {
  const Tensor k = square(relu(k_proj->forward(shift_mix(x, x_prev, time_mix_k))));
  return sigmoid(r_proj->forward(shift_mix(x, x_prev, time_mix_r))) * v_proj->forward(k);
}

Tensor RWKVChannelMix::forward(const Tensor& x) {
  check_input(x, d_model, "RWKVChannelMix");
  return mix(x, token_shift(x));
}

std::unique_ptr<MixerState> RWKVChannelMix::init_state(std::int64_t batch, std::int64_t max_len) const {
  check_init_state(batch, max_len, "RWKVChannelMix");
  auto state = std::make_unique<RWKVChannelMixState>();
  state->x_prev = zeros({batch, d_model}, time_mix_k.dtype(), time_mix_k.device());
  return state;
}

Tensor RWKVChannelMix::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto& st = checked_state<RWKVChannelMixState>(state, x_t, d_model, "RWKVChannelMix");
  const Tensor y = mix(x_t, st.x_prev);
  st.x_prev = x_t;
  st.position += 1;
  return y;
}

std::string RWKVChannelMix::extra_repr() const {
  return fmt::format("d_model={}, hidden={}, layer={}/{}", d_model, hidden, layer, n_layers);
}

}  // namespace ember::nn
