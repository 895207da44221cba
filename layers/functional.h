/// \file
/// \brief The differentiable building blocks of layers: linear, embedding, layer norm, RMS norm,
/// dropout, rotary position embedding, and naive, flash and block-sparse causal softmax attention.
///
/// Key equations: linear y = x Wᵀ + b (W is [out, in], as PyTorch); layer norm
/// y = (x − μ)/sqrt(σ² + ε) ⊙ w + b; RMS norm y = x / sqrt(mean(x²) + ε) ⊙ w; attention
/// softmax(Q Kᵀ/√d + M) V with M = −∞ above the (bottom-right aligned) diagonal; RoPE rotates the
/// pairs (i, i + d/2) of each head by the angle m·θ_i, θ_i = base^(−2i/d) ("rotate half", GPT-NeoX/HF pairing).
#pragma once

#include <cstdint>

#include "core/block_sparse.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace ember::nn {

/// x: [..., in], weight: [out, in], bias: [out] or undefined -> [..., out]. One GEMM over all rows.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// ids: [...] Int64, weight: [V, D] -> [..., D] (rows of weight).
Tensor embedding(const Tensor& ids, const Tensor& weight);
/// x: [..., D], weight, bias: [D] or undefined -> [..., D] normalised over the last dim.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
/// x: [..., D], weight: [D] or undefined -> [..., D] divided by the root mean square of the last dim.
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-5);
/// x -> x ⊙ mask / (1 − p) with mask ~ Bernoulli(1 − p) in training; x itself otherwise or when p = 0.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

/// z: [..., 2n] -> [..., n], the gated linear unit a ⊙ σ(b) of z's halves [a, b] along the last dim (Dauphin et al.
/// 2017), as the output layers of S4, S4D and LRU use it. Throws ember::Error for an odd or missing last dim.
Tensor glu(const Tensor& z);
/// q: [B, H, Tq, d], k, v: [B, H, Tk, d] -> [B, H, Tq, d]; softmax(q kᵀ / sqrt(d)) v. When causal, query i
/// (at absolute position Tk − Tq + i) sees keys 0..Tk − Tq + i. Materialises the [Tq, Tk] scores.
Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true);
/// The same attention as naive_attention (scale 1/sqrt(d), same shapes and causal alignment) computed by the
/// backend's FlashAttention kernels: tiled with an online softmax, never materialising the [Tq, Tk] scores; saves
/// only the output and the row logsumexp for backward, which recomputes the tiles.
Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true);
/// q: [B, H, Tq, d], k, v: [B, H, Tk, d] -> [B, H, Tq, d]; the query at position p = Tk − Tq + i takes softmax(q kᵀ /
/// sqrt(d)) over the keys j with layout.allowed(p, j) only (Sparse Transformer, Child et al. 2019). Computed by the
/// backend's block-sparse kernels on the layout's active blocks (FlashAttention's online softmax, saving only the
/// output and the row logsumexp); one autograd node. Needs layout.length() = Tk and layout.first_query() ≤ Tk − Tq.
Tensor block_sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const BlockSparseLayout& layout);
/// scores: [..., Tq, Tk] -> softmax(scale · scores + M) along the last dim, M = −∞ above the bottom-right aligned
/// diagonal when causal (key j hidden from query i when j > Tk − Tq + i). One fused kernel each way.
Tensor attention_softmax(const Tensor& scores, double scale, bool causal);
/// x: [..., T, d] -> [..., G, C, d] with G = ⌈T/C⌉ chunks of C rows, zero-padded after row T − 1: the view the
/// chunkwise forms of linear attention and FLASH compute on, every chunk at once. Differentiable.
Tensor split_chunks(const Tensor& x, std::int64_t C);
/// y: [..., G, C, d] -> [..., T, d]: the chunks back in one sequence, without the padding (T ≤ G·C).
Tensor merge_chunks(const Tensor& y, std::int64_t T);
/// The exclusive prefix sum along dim: out_g = Σ_{h<g} x_h (zero at g = 0), e.g. the state carried into each
/// chunk from the chunks before it. Differentiable.
Tensor exclusive_cumsum(const Tensor& x, std::int64_t dim);
/// The cos and sin tables of RoPE for positions 0..max_len−1: each [max_len, d/2] (d even).
std::pair<Tensor, Tensor> rope_tables(std::int64_t max_len, std::int64_t head_dim, double base = 10000.0,
                                      DType dtype = DType::Float32);
/// x: [B, H, T, d] at positions start..start+T−1 -> x rotated: (a, b) -> (a cos − b sin, a sin + b cos) for the
/// pairs (i, i + d/2), with cos, sin from rope_tables.
Tensor apply_rope(const Tensor& x, const Tensor& cos, const Tensor& sin, std::int64_t start);

}  // namespace ember::nn
