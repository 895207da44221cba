/// \file
/// \brief nn::MultiScaleRetention and the three forms of retention: parallel (Q Kᵀ ⊙ 𝒟) V, recurrent
/// S_n = γ S_{n−1} + K_nᵀ V_n, o_n = Q_n S_n, and chunkwise R_i = K_[i]ᵀ (V_[i] ⊙ ζ) + γ^{Bc} R_{i−1},
/// o_[i] = (Q_[i] K_[i]ᵀ ⊙ 𝒟_{Bc}) V_[i] + (Q_[i] R_{i−1}) ⊙ ξ; the xPos/RoPE rotation of RetNetRelPos; GroupNorm,
/// the swish gate and W_O.
#include "layers/ssm/retention.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/creation.h"
#include "layers/functional.h"

namespace ember::nn {

namespace {

/// GroupNorm's ε (torchscale's layernorm_eps default).
constexpr double kGroupNormEps = 1e-6;

/// Throws naming `op` unless q, k are [B, H, T, d_k], v is [B, H, T, d_v] and log_gamma is [H], all of one dtype.
void check_retention_inputs(const char* op, const Tensor& q, const Tensor& k, const Tensor& v,
                            const Tensor& log_gamma) {
  const bool shapes = q.dim() == 4 && q.shape()[2] > 0 && k.shape() == q.shape() && v.dim() == 4 &&
                      v.shape()[0] == q.shape()[0] && v.shape()[1] == q.shape()[1] && v.shape()[2] == q.shape()[2] &&
                      log_gamma.dim() == 1 && log_gamma.shape()[0] == q.shape()[1];
  EMBER_CHECK(
      shapes,
      fmt::format("{}: expected q, k [B, H, T, d_k], v [B, H, T, d_v] (T > 0) and log_gamma [H], got q {}, "
                  "k {}, v {}, log_gamma {}",
                  op, shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()), shape_str(log_gamma.shape())));
  EMBER_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype() && log_gamma.dtype() == q.dtype(),
              fmt::format("{}: q, k, v and log_gamma must share a dtype, got {}, {}, {}, {}", op, dtype_name(q.dtype()),
                          dtype_name(k.dtype()), dtype_name(v.dtype()), dtype_name(log_gamma.dtype())));
}

/// log_gamma: [H] -> 𝒟 [H, n, n], 𝒟_ij = γ^{i−j} = exp((i−j)·log γ) for i ≥ j, 0 above the diagonal.
Tensor decay_mask(const Tensor& log_gamma, std::int64_t n) {
  const Tensor idx = arange(0.0, static_cast<double>(n), 1.0, log_gamma.dtype(), log_gamma.device());
  const Tensor diff = relu(unsqueeze(idx, 1) - unsqueeze(idx, 0));  // [n, n], i − j clipped at 0
  return tril(exp(reshape(log_gamma, {-1, 1, 1}) * diff));
}

/// log_gamma: [H], exponents e_j ≥ 0 (n of them) -> [H, 1, n, 1], γ^{e_j}: a per-row factor of a chunk.
Tensor row_powers(const Tensor& log_gamma, const std::vector<double>& exponents) {
  const auto n = static_cast<std::int64_t>(exponents.size());
  const Tensor e = from_vector(exponents, {1, n}, log_gamma.dtype()).to(log_gamma.device());
  return reshape(exp(unsqueeze(log_gamma, 1) * e), {-1, 1, n, 1});
}

/// x shifted by s ≥ 1 along dim: out_g = x_{g−s}, zero for g < s.
Tensor shift_right(const Tensor& x, std::int64_t dim, std::int64_t s) {
  std::vector<std::int64_t> pads(static_cast<std::size_t>(2 * (x.dim() - dim)), 0);
  pads[pads.size() - 2] = s;
  return pad(narrow(x, dim, 0, x.shape()[dim] - s), pads);
}

/// U: [B, H, G, d_k, d_v], log_a: [H] -> the decayed prefix sums P_g = Σ_{g'≤g} a^{g−g'} U_{g'} along G, by
/// Hillis–Steele doubling: after the pass with shift s every P_g holds the terms g' > g − 2s, and a^s = exp(s·log a)
/// has s ≥ 0, so small a underflows to 0 instead of overflowing. ⌈log₂ G⌉ passes of O(G) tensor ops.
Tensor decayed_prefix_sum(Tensor U, const Tensor& log_a) {
  const std::int64_t G = U.shape()[2];
  for (std::int64_t s = 1; s < G; s *= 2)
    U = U + reshape(exp(log_a * static_cast<double>(s)), {-1, 1, 1, 1}) * shift_right(U, 2, s);
  return U;
}

/// One recurrent step for q_n, k_n: [B, H, d_k], v_n: [B, H, d_v], gamma: [H, 1, 1]: S ← γ S + k_nᵀ v_n and
/// o_n = q_n S: [B, H, d_v].
Tensor recurrent_step(Tensor& S, const Tensor& q_n, const Tensor& k_n, const Tensor& v_n, const Tensor& gamma) {
  S = gamma * S + matmul(unsqueeze(k_n, 3), unsqueeze(v_n, 2));
  return squeeze(matmul(unsqueeze(q_n, 2), S), {2});
}

/// options[name] as an integer; throws naming MultiScaleRetention when it is not a whole number.
std::int64_t integer_option(const MixerConfig& c, const std::string& name, double fallback) {
  const double v = c.option(name, fallback);
  EMBER_CHECK(std::isfinite(v) && v == std::round(v),
              fmt::format("MultiScaleRetention: option {} must be an integer, got {}", name, v));
  return static_cast<std::int64_t>(v);
}

/// The checked chunk option (> 0).
std::int64_t checked_chunk(const MixerConfig& c) {
  const std::int64_t chunk = integer_option(c, "chunk", 64);
  EMBER_CHECK(chunk > 0, fmt::format("MultiScaleRetention: option chunk must be > 0, got {}", chunk));
  return chunk;
}

/// d_k = D/H, after checking that H divides D and d_k is even (the rotation acts on pairs).
std::int64_t checked_key_dim(const MixerConfig& c) {
  EMBER_CHECK(c.d_model > 0 && c.n_heads > 0 && c.d_model % c.n_heads == 0 && (c.d_model / c.n_heads) % 2 == 0,
              fmt::format("MultiScaleRetention: n_heads must divide d_model into heads of even size, got d_model {}, "
                          "n_heads {}",
                          c.d_model, c.n_heads));
  return c.d_model / c.n_heads;
}

/// Redraws lin's weight [out, in] Xavier-uniform: U[−b, b], b = gain·√(6/(in + out)).
void xavier_uniform(Linear& lin, double gain, Generator* gen) {
  NoGradGuard no_grad;
  const Shape s = lin.weight.shape();
  const double b = gain * std::sqrt(6.0 / static_cast<double>(s[0] + s[1]));
  Tensor w = lin.weight;
  w.copy_(rand(s, w.dtype(), w.device(), -b, b, gen));
}

}  // namespace

Tensor retention_parallel(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_gamma) {
  check_retention_inputs("retention_parallel", q, k, v, log_gamma);
  const Tensor scores = matmul(q, transpose(k, 2, 3));  // [B, H, T, T]
  return matmul(scores * decay_mask(log_gamma, q.shape()[2]), v);
}

Tensor retention_recurrent(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_gamma) {
  check_retention_inputs("retention_recurrent", q, k, v, log_gamma);
  const auto& s = q.shape();
  Tensor S = zeros({s[0], s[1], s[3], v.shape()[3]}, q.dtype(), q.device());
  const Tensor gamma = reshape(exp(log_gamma), {-1, 1, 1});
  std::vector<Tensor> out;
  for (std::int64_t n = 0; n < s[2]; ++n)
    out.push_back(recurrent_step(S, select(q, 2, n), select(k, 2, n), select(v, 2, n), gamma));
  return stack(out, 2);
}

Tensor retention_chunkwise(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& log_gamma,
                           std::int64_t chunk) {
  check_retention_inputs("retention_chunkwise", q, k, v, log_gamma);
  EMBER_CHECK(chunk > 0, fmt::format("retention_chunkwise: chunk must be > 0, got {}", chunk));
  const std::int64_t T = q.shape()[2];
  const std::int64_t C = std::max<std::int64_t>(1, std::min(chunk, T));  // T < chunk: one chunk of T rows
  const Tensor Q = split_chunks(q, C), K = split_chunks(k, C), V = split_chunks(v, C);  // [B, H, G, C, ·]
  const Tensor D_C = unsqueeze(decay_mask(log_gamma, C), 1);                            // [H, 1, C, C]
  const Tensor inner = matmul(matmul(Q, transpose(K, 3, 4)) * D_C, V);
  std::vector<double> zeta_exp, xi_exp;  // ζ_j = γ^{C−1−j}, ξ_j = γ^{j+1}
  for (std::int64_t j = 0; j < C; ++j) {
    zeta_exp.push_back(static_cast<double>(C - 1 - j));
    xi_exp.push_back(static_cast<double>(j + 1));
  }
  const Tensor U = matmul(transpose(K, 3, 4), V * row_powers(log_gamma, zeta_exp));  // [B, H, G, d_k, d_v]
  // R_{i−1} = Σ_{g<i} γ^{C(i−1−g)} U_g: the state each chunk starts from (zero padding adds nothing to U).
  const Tensor R = shift_right(decayed_prefix_sum(U, log_gamma * static_cast<double>(C)), 2, 1);
  const Tensor cross = matmul(Q, R) * row_powers(log_gamma, xi_exp);
  return merge_chunks(inner + cross, T);
}

Tensor retention_rotate(const Tensor& x, std::int64_t start) {
  EMBER_CHECK(x.dim() == 4 && x.shape()[3] % 2 == 0 && start >= 0,
              fmt::format("retention_rotate: expected x [B, H, T, d] with d even and start >= 0, got {} and {}",
                          shape_str(x.shape()), start));
  const auto& s = x.shape();
  const std::int64_t T = s[2], half = s[3] / 2;
  std::vector<double> c(static_cast<std::size_t>(T * half)), sn(c.size());
  for (std::int64_t n = 0; n < T; ++n)
    for (std::int64_t i = 0; i < half; ++i) {
      // torchscale: 1 / 10000^linspace(0, 1, half), i.e. θ_i = 10000^{−i/(half−1)} (θ_0 = 1 when half = 1).
      const double theta = half == 1 ? 1.0 : std::pow(10000.0, -static_cast<double>(i) / static_cast<double>(half - 1));
      const double angle = static_cast<double>(start + n) * theta;
      c[static_cast<std::size_t>(n * half + i)] = std::cos(angle);
      sn[static_cast<std::size_t>(n * half + i)] = std::sin(angle);
    }
  const Tensor cos_t = from_vector(c, {T, half}, x.dtype()).to(x.device());
  const Tensor sin_t = from_vector(sn, {T, half}, x.dtype()).to(x.device());
  const Tensor pairs = reshape(x, {s[0], s[1], T, half, 2});
  const Tensor a = select(pairs, 4, 0), b = select(pairs, 4, 1);  // the pair (x_2i, x_2i+1)
  return reshape(stack({a * cos_t - b * sin_t, a * sin_t + b * cos_t}, 4), s);
}

MultiScaleRetention::MultiScaleRetention(const MixerConfig& c)
    : SequenceMixer("MultiScaleRetention"),
      n_heads(c.n_heads),
      key_dim(checked_key_dim(c)),
      value_dim(2 * key_dim),
      chunk(checked_chunk(c)) {
  const std::int64_t D = c.d_model;
  q_proj = register_module("q_proj", std::make_shared<Linear>(D, D, false, c.gen));
  k_proj = register_module("k_proj", std::make_shared<Linear>(D, D, false, c.gen));
  v_proj = register_module("v_proj", std::make_shared<Linear>(D, 2 * D, false, c.gen));
  g_proj = register_module("g_proj", std::make_shared<Linear>(D, 2 * D, false, c.gen));
  out_proj = register_module("out_proj", std::make_shared<Linear>(2 * D, D, false, c.gen));
  for (Linear* lin : {q_proj.get(), k_proj.get(), v_proj.get(), g_proj.get()})
    xavier_uniform(*lin, std::pow(2.0, -2.5), c.gen);
  xavier_uniform(*out_proj, 1.0, c.gen);
}

std::vector<double> MultiScaleRetention::decays() const {
  std::vector<double> gamma;
  for (std::int64_t h = 0; h < n_heads; ++h) gamma.push_back(1.0 - std::exp2(-5.0 - static_cast<double>(h)));
  return gamma;
}

Tensor MultiScaleRetention::log_decays() const {
  std::vector<double> lg;
  for (std::int64_t h = 0; h < n_heads; ++h) lg.push_back(std::log1p(-std::exp2(-5.0 - static_cast<double>(h))));
  return from_vector(lg, {n_heads}, q_proj->weight.dtype()).to(q_proj->weight.device());
}

std::array<Tensor, 3> MultiScaleRetention::project(const Tensor& x, std::int64_t start) const {
  const std::int64_t B = x.shape()[0], T = x.shape()[1];
  const auto heads = [&](const Tensor& y, std::int64_t d) { return transpose(reshape(y, {B, T, n_heads, d}), 1, 2); };
  const Tensor q = retention_rotate(heads(q_proj->forward(x), key_dim), start);
  const Tensor k =
      retention_rotate(heads(k_proj->forward(x) * (1.0 / std::sqrt(static_cast<double>(key_dim))), key_dim), start);
  return {q, k, heads(v_proj->forward(x), value_dim)};
}

Tensor MultiScaleRetention::output(const Tensor& o, const Tensor& x) const {
  const Tensor y = layer_norm(o, Tensor(), Tensor(), kGroupNormEps);  // GroupNorm_h: per head and position
  const Tensor merged = reshape(transpose(y, 1, 2), {x.shape()[0], x.shape()[1], n_heads * value_dim});
  return out_proj->forward(silu(g_proj->forward(x)) * merged);
}

Tensor MultiScaleRetention::forward(const Tensor& x) {
  const std::int64_t D = n_heads * key_dim;
  EMBER_CHECK(x.dim() == 3 && x.shape()[2] == D && x.shape()[1] > 0,
              fmt::format("MultiScaleRetention: expected x [B, T, {}] with T > 0, got {}", D, shape_str(x.shape())));
  const auto [q, k, v] = project(x, 0);
  return output(retention_chunkwise(q, k, v, log_decays(), chunk), x);
}

std::unique_ptr<MixerState> MultiScaleRetention::init_state(std::int64_t batch, std::int64_t max_len) const {
  EMBER_CHECK(
      batch > 0 && max_len > 0,
      fmt::format("MultiScaleRetention: init_state needs batch > 0 and max_len > 0, got {} and {}", batch, max_len));
  auto state = std::make_unique<RetentionState>();
  state->S = zeros({batch, n_heads, key_dim, value_dim}, q_proj->weight.dtype(), q_proj->weight.device());
  return state;
}

Tensor MultiScaleRetention::step(const Tensor& x_t, MixerState& state) const {
  NoGradGuard no_grad;
  auto* st = dynamic_cast<RetentionState*>(&state);
  EMBER_CHECK(st != nullptr, "MultiScaleRetention: step needs the state made by its init_state");
  const std::int64_t B = st->S.shape()[0], D = n_heads * key_dim;
  EMBER_CHECK(x_t.dim() == 2 && x_t.shape()[0] == B && x_t.shape()[1] == D,
              fmt::format("MultiScaleRetention: step expected x_t [{}, {}], got {}", B, D, shape_str(x_t.shape())));
  const Tensor x = unsqueeze(x_t, 1);  // [B, 1, D]
  const auto [q, k, v] = project(x, st->position);
  const Tensor gamma = reshape(exp(log_decays()), {-1, 1, 1});
  const Tensor o = recurrent_step(st->S, select(q, 2, 0), select(k, 2, 0), select(v, 2, 0), gamma);
  st->position += 1;
  return squeeze(output(unsqueeze(o, 2), x), {1});
}

std::string MultiScaleRetention::extra_repr() const {
  return fmt::format("d_model={}, heads={}, chunk={}", n_heads * key_dim, n_heads, chunk);
}

}  // namespace ember::nn
