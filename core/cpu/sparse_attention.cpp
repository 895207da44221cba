/// \file
/// \brief CPU block-sparse attention (Sparse Transformer, Child et al. 2019; technique notes §9): FlashAttention's
/// online softmax and recomputing backward, visiting only the active blocks of a BlockSparseLayout.
///
/// Per (batch, head) and query block-row I (the queries at positions I·b..I·b + b − 1), with A(I) the layout's
/// active key blocks and allowed(i, j) the pattern's element rule:
///
///     for J in A(I):  S = s · Q_I K_Jᵀ,  S_ij = −∞ where not allowed(i, j),  online-softmax update with V_J
///     O_I = diag(ℓ)⁻¹ Ô,  L_I = m + log ℓ
///
/// and backward recomputes P = exp(S − L) on the same blocks with D = rowsum(dO ∘ O) (core/cpu/attention_tiles.h).
/// The work is b²·d per active block, so for strided or fixed patterns with l ≈ √T it grows like T·√T. Consecutive
/// active blocks of a row are merged into one key tile of up to 64 keys, so that the local band runs as one GEMM.
/// Queries sit at positions Tk − Tq..Tk − 1 (bottom-right aligned, as a KV-cache step needs). Forward runs in
/// parallel over B·H × query block-rows, backward over B·H (each (b, h) owns its dK and dV).
#include <algorithm>
#include <vector>

#include "core/cpu/attention_tiles.h"
#include "core/cpu/cpu_backend.h"
#include "core/cpu/loops.h"

namespace ember {

namespace {

using cpu::ConstMapMat;
using cpu::kHidden;
using cpu::MapMat;
using cpu::Mat;

/// The most keys one merged run of consecutive active blocks may span (flash's key tile).
constexpr std::int64_t kMaxRun = 64;

/// The geometry of one call: heads, lengths, head dim, and where the queries start.
struct Geometry {
  std::int64_t BH, Tq, Tk, d;
  const BlockSparseLayout& layout;
  /// Absolute position of query row 0.
  std::int64_t p0() const { return Tk - Tq; }
  /// The first block-row holding a query.
  std::int64_t first_row() const { return p0() / layout.block(); }
  /// Query rows of block-row I: absolute positions [begin, end).
  std::pair<std::int64_t, std::int64_t> rows(std::int64_t I) const {
    const std::int64_t b = layout.block();
    return {std::max(I * b, p0()), std::min(I * b + b, Tk)};
  }
  /// Calls f(j0, nc) for each run of consecutive active key blocks of block-row I (keys j0..j0 + nc − 1).
  template <class F>
  void for_each_key_run(std::int64_t I, F&& f) const {
    const auto& cols = layout.columns();
    const std::int64_t b = layout.block(), end = layout.row_begin(I + 1);
    for (std::int64_t p = layout.row_begin(I); p < end;) {
      std::int64_t q = p + 1;
      while (q < end && cols[q] == cols[q - 1] + 1 && (q - p + 1) * b <= kMaxRun) ++q;
      const std::int64_t j0 = cols[p] * b;
      f(j0, std::min(cols[q - 1] * b + b, Tk) - j0);
      p = q;
    }
  }
  /// Hides the pairs the pattern does not allow in S, the scores of positions i0.. against keys j0.. .
  template <class T>
  void mask(Mat<T>& S, std::int64_t i0, std::int64_t j0) const {
    for (Eigen::Index r = 0; r < S.rows(); ++r)
      for (Eigen::Index c = 0; c < S.cols(); ++c)
        if (!layout.allowed(i0 + r, j0 + c)) S(r, c) = kHidden<T>;
  }
};

/// Forward for query block-row I of head bh.
template <class T>
void forward_row(const Geometry& g, const T* q, const T* k, const T* v, T* out, T* lse, T scale, std::int64_t bh,
                 std::int64_t I, Mat<T>& S, cpu::OnlineSoftmax<T>& state) {
  const std::int64_t i0 = g.rows(I).first, i1 = g.rows(I).second;  // plain variables: clang 14 cannot capture a structured binding
  const std::int64_t d = g.d, nr = i1 - i0, row0 = bh * g.Tq + (i0 - g.p0());
  const ConstMapMat<T> Q(q + row0 * d, nr, d);
  state.reset(nr, d);
  g.for_each_key_run(I, [&](std::int64_t j0, std::int64_t nc) {
    const ConstMapMat<T> Kj(k + (bh * g.Tk + j0) * d, nc, d), Vj(v + (bh * g.Tk + j0) * d, nc, d);
    S.resize(nr, nc);
    S.noalias() = scale * (Q * Kj.transpose());
    g.mask(S, i0, j0);
    state.update(S, Vj);
  });
  MapMat<T> O(out + row0 * d, nr, d);
  state.finish(O, lse + row0);
}

/// Backward for head bh: writes dq, dk, dv of that head.
template <class T>
void backward_head(const Geometry& g, const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                   T scale, T* dq, T* dk, T* dv, std::int64_t bh, Mat<T>& P, Mat<T>& dP, std::vector<T>& D) {
  const std::int64_t d = g.d, qoff = bh * g.Tq * d, koff = bh * g.Tk * d;
  cpu::begin_head_backward(out + qoff, dout + qoff, dq + qoff, dk + koff, dv + koff, g.Tq, g.Tk, d, D);
  const ConstMapMat<T> dO(dout + qoff, g.Tq, d);
  for (std::int64_t I = g.first_row(); I < g.layout.block_rows(); ++I) {
    const std::int64_t i0 = g.rows(I).first, i1 = g.rows(I).second;  // plain variables: clang 14 cannot capture a structured binding
    const std::int64_t nr = i1 - i0, r0 = i0 - g.p0();
    const ConstMapMat<T> Qi(q + qoff + r0 * d, nr, d), dOi(dout + qoff + r0 * d, nr, d);
    g.for_each_key_run(I, [&](std::int64_t j0, std::int64_t nc) {
      const ConstMapMat<T> Kj(k + koff + j0 * d, nc, d), Vj(v + koff + j0 * d, nc, d);
      P.resize(nr, nc);
      P.noalias() = scale * (Qi * Kj.transpose());
      g.mask(P, i0, j0);
      cpu::backward_tile<T>(P, dP, lse + bh * g.Tq + r0, D.data() + r0, Qi, dOi, Kj, Vj, scale,
                            {dq + qoff + r0 * d, dk + koff + j0 * d, dv + koff + j0 * d});
    });
  }
}

/// The work of one pass for OpenMP's grain decision: b²·d per active block and head.
std::int64_t work_of(const Geometry& g) {
  const std::int64_t b = g.layout.block();
  return g.BH * std::max<std::int64_t>(g.layout.active_blocks(), 1) * b * b * std::max<std::int64_t>(g.d, 1);
}

}  // namespace

void CpuBackend::block_sparse_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v,
                                                const BlockSparseLayout& layout, double scale, const Tensor& out,
                                                const Tensor& lse) {
  if (cpu::is_16bit(q.dtype()))
    return cpu::through_float32({q, k, v}, {out, lse}, [&](const auto& in, const auto& o) {
      block_sparse_attention_forward(in[0], in[1], in[2], layout, scale, o[0], o[1]);
    });
  const Geometry g{q.shape()[0] * q.shape()[1], q.shape()[2], k.shape()[2], q.shape()[3], layout};
  if (g.Tq == 0) return;
  const std::int64_t rows = layout.block_rows() - g.first_row(), n = g.BH * rows;
  cpu::dispatch_float_double("block_sparse_attention_forward", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::parallel_range(n, work_of(g), [&](std::int64_t b, std::int64_t e) {
      Mat<T> S;
      cpu::OnlineSoftmax<T> state;
      for (std::int64_t t = b; t < e; ++t)
        forward_row<T>(g, q.data_ptr<T>(), k.data_ptr<T>(), v.data_ptr<T>(), out.data_ptr<T>(), lse.data_ptr<T>(),
                       static_cast<T>(scale), t / rows, g.first_row() + t % rows, S, state);
    });
  });
}

void CpuBackend::block_sparse_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                                 const Tensor& lse, const Tensor& dout, const BlockSparseLayout& layout,
                                                 double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  if (cpu::is_16bit(q.dtype()))
    return cpu::through_float32({q, k, v, out, lse, dout}, {dq, dk, dv}, [&](const auto& in, const auto& o) {
      block_sparse_attention_backward(in[0], in[1], in[2], in[3], in[4], in[5], layout, scale, o[0], o[1], o[2]);
    });
  const Geometry g{q.shape()[0] * q.shape()[1], q.shape()[2], k.shape()[2], q.shape()[3], layout};
  cpu::dispatch_float_double("block_sparse_attention_backward", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::parallel_range(g.BH, 2 * work_of(g), [&](std::int64_t b, std::int64_t e) {
      Mat<T> P, dP;
      std::vector<T> D;
      for (std::int64_t bh = b; bh < e; ++bh)
        backward_head<T>(g, q.data_ptr<T>(), k.data_ptr<T>(), v.data_ptr<T>(), out.data_ptr<T>(), lse.data_ptr<T>(),
                         dout.data_ptr<T>(), static_cast<T>(scale), dq.data_ptr<T>(), dk.data_ptr<T>(),
                         dv.data_ptr<T>(), bh, P, dP, D);
    });
  });
}

}  // namespace ember
