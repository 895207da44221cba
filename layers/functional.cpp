/// \file
/// \brief linear, embedding, layer/RMS norm, dropout, RoPE, and naive, flash and block-sparse attention as
/// differentiable ops.
///
/// linear, the norms, flash and block-sparse attention record one node each with a hand-written backward (one GEMM
/// per gradient for linear; the fused norm, FlashAttention and block-sparse attention kernels of the backend); the
/// rest are compositions of autograd ops.
#include "layers/functional.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "autograd/autocast.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "core/backend.h"
#include "core/ops.h"

namespace ember::nn {

namespace {

using Grads = std::vector<Tensor>;

void check_vector(const char* op, const char* what, const Tensor& t, std::int64_t size, const Tensor& x) {
  if (!t.defined()) return;
  EMBER_CHECK(t.dim() == 1 && t.shape()[0] == size, std::string(op) + ": " + what + " has shape " +
                                                         shape_str(t.shape()) + ", expected [" + std::to_string(size) +
                                                         "] for input " + shape_str(x.shape()));
  EMBER_CHECK(t.dtype() == x.dtype(), std::string(op) + ": " + what + " is " + dtype_name(t.dtype()) +
                                          " but the input is " + dtype_name(x.dtype()));
}

Tensor norm(bool rms, const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, double eps) {
  const char* op = rms ? "rms_norm" : "layer_norm";
  const auto in = amp::autocast_all(op, {x_in, weight_in, bias_in});
  const Tensor &x = in[0], &weight = in[1], &bias = in[2];
  raw::check_defined(op, x);
  EMBER_CHECK(x.dim() >= 1 && x.shape().back() > 0, std::string(op) + ": expected [..., D] with D > 0, got " +
                                                        shape_str(x.shape()));
  const std::int64_t D = x.shape().back(), N = x.numel() / D;
  check_vector(op, "weight", weight, D, x);
  check_vector(op, "bias", bias, D, x);
  const Tensor X = raw::contiguous(x);
  Tensor y = empty(x.shape(), x.dtype(), x.device());
  Tensor mean = empty({N}, x.dtype(), x.device()), rstd = empty({N}, x.dtype(), x.device());
  const Tensor w = weight.defined() ? raw::contiguous(weight) : Tensor(), b = bias.defined() ? raw::contiguous(bias) : Tensor();
  backend_for(x.device()).norm_forward(rms, X, w, b, eps, y, mean, rstd);
  if (!needs_grad({x, weight, bias})) return y;
  SavedTensor sx(X), sw(w), smean(mean), srstd(rstd);
  const bool want_w = weight.defined(), want_b = bias.defined();
  return record(y, rms ? "RMSNormBackward" : "LayerNormBackward", {x, weight, bias},
                [=](const Grads& g) {
                  const Tensor Xs = sx.get(op), G = raw::contiguous(g[0]);
                  Tensor gx = empty(Xs.shape(), Xs.dtype(), Xs.device());
                  Tensor gw = want_w ? empty({D}, Xs.dtype(), Xs.device()) : Tensor();
                  Tensor gb = want_b ? empty({D}, Xs.dtype(), Xs.device()) : Tensor();
                  backend_for(Xs.device()).norm_backward(rms, G, Xs, want_w ? sw.get(op) : Tensor(), smean.get(op),
                                                         srstd.get(op), gx, gw, gb);
                  return Grads{gx, gw, gb};
                });
}

/// The dtype of an attention kernel's logsumexp: Float32 for 16-bit inputs (its exponent feeds the backward).
DType lse_dtype(const Tensor& q) {
  return q.dtype() == DType::Float16 || q.dtype() == DType::BFloat16 ? DType::Float32 : q.dtype();
}

/// The shape checks shared by naive_attention and flash_attention.
void check_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  for (const Tensor* t : {&q, &k, &v}) raw::check_defined("attention", *t);
  EMBER_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.shape()[0] == k.shape()[0] &&
                  q.shape()[1] == k.shape()[1] && q.shape()[3] == k.shape()[3] && k.shape() == v.shape(),
              "attention: expected q [B, H, Tq, d] and k, v [B, H, Tk, d], got q " + shape_str(q.shape()) + ", k " +
                  shape_str(k.shape()) + ", v " + shape_str(v.shape()));
  const std::int64_t Tq = q.shape()[2], Tk = k.shape()[2];
  EMBER_CHECK(!causal || Tq <= Tk, "attention: causal attention needs Tq <= Tk, got Tq = " + std::to_string(Tq) +
                                       ", Tk = " + std::to_string(Tk));
}

}  // namespace

Tensor linear(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in) {
  raw::check_defined("linear", x_in);
  raw::check_defined("linear", weight_in);
  const auto cast = amp::autocast_all("linear", {x_in, weight_in, bias_in});
  const Tensor &x = cast[0], &weight = cast[1], &bias = cast[2];
  EMBER_CHECK(weight.dim() == 2 && x.dim() >= 1 && x.shape().back() == weight.shape()[1],
              "linear: input " + shape_str(x.shape()) + " does not fit weight " + shape_str(weight.shape()) +
                  " (expected [..., in] with weight [out, in])");
  EMBER_CHECK(weight.dtype() == x.dtype(), "linear: weight is " + dtype_name(weight.dtype()) + " but the input is " +
                                               dtype_name(x.dtype()));
  const std::int64_t in = weight.shape()[1], out = weight.shape()[0];
  check_vector("linear", "bias", bias, out, x);
  Shape out_shape = x.shape();
  out_shape.back() = out;
  const Tensor X = raw::reshape(x, {-1, in});
  Tensor y = raw::matmul(X, raw::transpose(weight, 0, 1));
  if (bias.defined()) y = raw::add(y, bias);
  y = raw::view(y, out_shape);
  if (!needs_grad({x, weight, bias})) return y;
  SavedTensor sx(X), sw(weight);
  const Shape x_shape = x.shape();
  const bool want_b = bias.defined();
  return record(y, "LinearBackward", {x, weight, bias}, [=](const Grads& g) {
    const Tensor G = raw::reshape(g[0], {-1, out});
    const Tensor gx = raw::reshape(raw::matmul(G, sw.get("LinearBackward")), x_shape);
    const Tensor gw = raw::matmul(raw::transpose(G, 0, 1), sx.get("LinearBackward"));
    return Grads{gx, gw, want_b ? raw::sum(G, {0}) : Tensor()};
  });
}

Tensor embedding(const Tensor& ids, const Tensor& weight) {
  raw::check_defined("embedding", ids);
  raw::check_defined("embedding", weight);
  EMBER_CHECK(ids.dtype() == DType::Int64 && weight.dim() == 2,
              "embedding: expected Int64 ids and a [V, D] weight, got " + dtype_name(ids.dtype()) + " ids " +
                  shape_str(ids.shape()) + " and weight " + shape_str(weight.shape()));
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.shape()[1]);
  return reshape(index_select(weight, 0, raw::reshape(ids, {-1})), out_shape);
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  return norm(false, x, weight, bias, eps);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) { return norm(true, x, weight, Tensor(), eps); }

Tensor glu(const Tensor& z) {
  EMBER_CHECK(z.dim() >= 1 && z.shape().back() % 2 == 0,
              "glu: expected an even last dim, got " + shape_str(z.shape()));
  const std::int64_t last = z.dim() - 1, n = z.shape().back() / 2;
  return narrow(z, last, 0, n) * sigmoid(narrow(z, last, n, n));
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  EMBER_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got " + std::to_string(p));
  if (!training || p == 0.0) return x;
  const Tensor keep = bernoulli(x.shape(), 1.0 - p, x.dtype(), x.device(), gen);
  return x * raw::mul_scalar(keep, 1.0 / (1.0 - p));
}

Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal) {
  check_attention(q, k, v, causal);
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.shape()[3]));
  return matmul(attention_softmax(matmul(q, transpose(k, -1, -2)), scale, causal), v);
}

Tensor flash_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, bool causal) {
  check_attention(q_in, k_in, v_in, causal);
  const auto in = amp::autocast_all("flash_attention", {q_in, k_in, v_in});
  const Tensor &q = in[0], &k = in[1], &v = in[2];
  EMBER_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(),
              "attention: q, k, v must share a dtype, got " + dtype_name(q.dtype()) + ", " + dtype_name(k.dtype()) +
                  ", " + dtype_name(v.dtype()));
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.shape()[3]));
  const Tensor Q = raw::contiguous(q), K = raw::contiguous(k), V = raw::contiguous(v);
  Tensor out = empty(Q.shape(), Q.dtype(), Q.device());
  Tensor lse = empty({Q.shape()[0], Q.shape()[1], Q.shape()[2]}, lse_dtype(Q), Q.device());
  backend_for(Q.device()).flash_attention_forward(Q, K, V, scale, causal, out, lse);
  if (!needs_grad({q, k, v})) return out;
  SavedTensor sq(Q), sk(K), sv(V), so(out), sl(lse);
  return record(out, "FlashAttentionBackward", {q, k, v}, [=](const Grads& g) {
    const char* op = "FlashAttentionBackward";
    const Tensor Qs = sq.get(op), Ks = sk.get(op), Vs = sv.get(op), G = raw::contiguous(g[0]);
    Tensor dq = empty(Qs.shape(), Qs.dtype(), Qs.device());
    Tensor dk = empty(Ks.shape(), Ks.dtype(), Ks.device());
    Tensor dv = empty(Vs.shape(), Vs.dtype(), Vs.device());
    backend_for(Qs.device()).flash_attention_backward(Qs, Ks, Vs, so.get(op), sl.get(op), G, scale, causal, dq, dk,
                                                      dv);
    return Grads{dq, dk, dv};
  });
}

Tensor block_sparse_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                              const BlockSparseLayout& layout) {
  check_attention(q_in, k_in, v_in, true);
  const auto in = amp::autocast_all("block_sparse_attention", {q_in, k_in, v_in});
  const Tensor &q = in[0], &k = in[1], &v = in[2];
  EMBER_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(),
              "block_sparse_attention: q, k, v must share a dtype, got " + dtype_name(q.dtype()) + ", " +
                  dtype_name(k.dtype()) + ", " + dtype_name(v.dtype()));
  const std::int64_t Tq = q.shape()[2], Tk = k.shape()[2];
  EMBER_CHECK(layout.length() == Tk && layout.first_query() <= Tk - Tq,
              "block_sparse_attention: the layout covers keys 0.." + std::to_string(layout.length() - 1) +
                  " and queries from " + std::to_string(layout.first_query()) + ", but q " + shape_str(q.shape()) +
                  " and k " + shape_str(k.shape()) + " need keys 0.." + std::to_string(Tk - 1) +
                  " and queries from " + std::to_string(Tk - Tq));
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.shape()[3]));
  const Tensor Q = raw::contiguous(q), K = raw::contiguous(k), V = raw::contiguous(v);
  Tensor out = empty(Q.shape(), Q.dtype(), Q.device());
  Tensor lse = empty({Q.shape()[0], Q.shape()[1], Tq}, lse_dtype(Q), Q.device());
  backend_for(Q.device()).block_sparse_attention_forward(Q, K, V, layout, scale, out, lse);
  if (!needs_grad({q, k, v})) return out;
  SavedTensor sq(Q), sk(K), sv(V), so(out), sl(lse);
  return record(out, "BlockSparseAttentionBackward", {q, k, v}, [=](const Grads& g) {
    const char* op = "BlockSparseAttentionBackward";
    const Tensor Qs = sq.get(op), Ks = sk.get(op), Vs = sv.get(op), G = raw::contiguous(g[0]);
    Tensor dq = empty(Qs.shape(), Qs.dtype(), Qs.device());
    Tensor dk = empty(Ks.shape(), Ks.dtype(), Ks.device());
    Tensor dv = empty(Vs.shape(), Vs.dtype(), Vs.device());
    backend_for(Qs.device()).block_sparse_attention_backward(Qs, Ks, Vs, so.get(op), sl.get(op), G, layout, scale, dq,
                                                             dk, dv);
    return Grads{dq, dk, dv};
  });
}

Tensor attention_softmax(const Tensor& scores_in, double scale, bool causal) {
  raw::check_defined("attention_softmax", scores_in);
  const Tensor scores = amp::autocast("attention_softmax", scores_in);
  EMBER_CHECK(scores.dim() >= 2, "attention_softmax: expected scores [..., Tq, Tk], got " + shape_str(scores.shape()));
  const Tensor S = raw::contiguous(scores);
  Tensor P = empty(S.shape(), S.dtype(), S.device());
  backend_for(S.device()).attention_softmax(S, scale, causal, P);
  if (!needs_grad({scores})) return P;
  SavedTensor sp(P);
  return record(P, "AttentionSoftmaxBackward", {scores}, [sp, scale](const Grads& g) {
    const Tensor Ps = sp.get("AttentionSoftmaxBackward"), G = raw::contiguous(g[0]);
    Tensor dS = empty(Ps.shape(), Ps.dtype(), Ps.device());
    backend_for(Ps.device()).attention_softmax_backward(Ps, G, scale, dS);
    return Grads{dS};
  });
}

Tensor split_chunks(const Tensor& x, std::int64_t C) {
  raw::check_defined("split_chunks", x);
  EMBER_CHECK(x.dim() >= 2 && C > 0, fmt::format("split_chunks: expected x [..., T, d] and C > 0, got x {} and C = {}",
                                                 shape_str(x.shape()), C));
  const std::int64_t n = x.dim(), T = x.shape()[n - 2], G = (T + C - 1) / C;
  Shape chunked = x.shape();
  chunked[n - 2] = G;
  chunked.insert(chunked.end() - 1, C);
  const Tensor padded = G * C == T ? x : pad(x, {0, 0, 0, G * C - T});
  return reshape(padded, chunked);
}

Tensor merge_chunks(const Tensor& y, std::int64_t T) {
  raw::check_defined("merge_chunks", y);
  const std::int64_t n = y.dim();
  EMBER_CHECK(n >= 3 && T >= 0 && T <= y.shape()[n - 3] * y.shape()[n - 2],
              fmt::format("merge_chunks: expected y [..., G, C, d] holding T = {} rows, got {}", T, shape_str(y.shape())));
  Shape merged(y.shape().begin(), y.shape().end() - 2);
  merged[n - 3] = y.shape()[n - 3] * y.shape()[n - 2];
  merged.push_back(y.shape()[n - 1]);
  const Tensor flat = reshape(y, merged);
  return merged[n - 3] == T ? flat : narrow(flat, n - 3, 0, T);
}

Tensor exclusive_cumsum(const Tensor& x, std::int64_t dim) {
  raw::check_defined("exclusive_cumsum", x);
  const std::int64_t n = x.dim(), d = dim < 0 ? dim + n : dim;
  EMBER_CHECK(d >= 0 && d < n, fmt::format("exclusive_cumsum: dim {} out of range for {}", dim, shape_str(x.shape())));
  std::vector<std::int64_t> pads(2 * (n - d), 0);
  pads[pads.size() - 2] = 1;  // one zero before index 0 of dim d
  return narrow(pad(cumsum(x, d), pads), d, 0, x.shape()[d]);
}

std::pair<Tensor, Tensor> rope_tables(std::int64_t max_len, std::int64_t head_dim, double base, DType dtype) {
  EMBER_CHECK(head_dim > 0 && head_dim % 2 == 0 && max_len > 0,
              "rope_tables: need an even head_dim and max_len > 0, got head_dim " + std::to_string(head_dim) +
                  ", max_len " + std::to_string(max_len));
  const std::int64_t half = head_dim / 2;
  std::vector<double> c(max_len * half), s(max_len * half);
  for (std::int64_t m = 0; m < max_len; ++m)
    for (std::int64_t i = 0; i < half; ++i) {
      const double theta = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      c[m * half + i] = std::cos(static_cast<double>(m) * theta);
      s[m * half + i] = std::sin(static_cast<double>(m) * theta);
    }
  return {from_vector(c, {max_len, half}, dtype), from_vector(s, {max_len, half}, dtype)};
}

Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin, std::int64_t start) {
  raw::check_defined("apply_rope", x);
  EMBER_CHECK(x.dim() == 4 && x.shape()[3] == 2 * cos.shape()[1], "apply_rope: expected x [B, H, T, d] with d = " +
                                                                      std::to_string(2 * cos.shape()[1]) + ", got " +
                                                                      shape_str(x.shape()));
  const std::int64_t T = x.shape()[2], half = x.shape()[3] / 2;
  EMBER_CHECK(start >= 0 && start + T <= cos.shape()[0],
              "apply_rope: positions " + std::to_string(start) + ".." + std::to_string(start + T - 1) +
                  " exceed the table length " + std::to_string(cos.shape()[0]));
  const Tensor c = narrow(cos, 0, start, T).to(x.dtype()), s = narrow(sin, 0, start, T).to(x.dtype());
  const Tensor a = narrow(x, 3, 0, half), b = narrow(x, 3, half, half);
  return cat({a * c - b * s, a * s + b * c}, 3);
}

}  // namespace ember::nn
