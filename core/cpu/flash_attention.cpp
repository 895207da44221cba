/// \file
/// \brief CPU FlashAttention (Dao et al. 2022, FA2 loop order): exact softmax attention in tiles, never
/// materialising the Tq×Tk score matrix.
///
/// Per (batch, head), with s the scale, queries in tiles Q_i of Br rows and keys/values in tiles K_j, V_j of
/// Bc rows. Forward, for each query tile, running max m (start −∞), running sum ℓ (start 0), accumulator Ô:
///
///     S_ij = s · Q_i K_jᵀ                       (masked entries dropped)
///     m'   = max(m, rowmax S_ij),  α = exp(m − m'),  P̃ = exp(S_ij − m')
///     ℓ    ← α ℓ + rowsum P̃,       Ô ← diag(α) Ô + P̃ V_j,   m ← m'
///     O_i  = diag(ℓ)⁻¹ Ô,           L_i = m + log ℓ   (natural-log logsumexp of the row)
///
/// Backward recomputes each tile from L instead of storing P:
///
///     D    = rowsum(dO ∘ O)
///     P_ij = exp(s · Q_i K_jᵀ − L_i),   dV_j += P_ijᵀ dO_i,   dP_ij = dO_i V_jᵀ
///     dS_ij = P_ij ∘ (dP_ij − D_i),      dQ_i += s · dS_ij K_j,  dK_j += s · dS_ijᵀ Q_i
///
/// Causal masking is bottom-right aligned: query i sees keys j ≤ Tk − Tq + i. The visible keys of a row are a
/// prefix, so key tiles past the last visible key of a query tile are skipped and, inside the diagonal tile,
/// each row only takes its visible prefix (the rest of P is 0). A row with no visible key gives O = 0 and
/// L = −∞ (the FlashAttention convention) and no gradient. The tile steps live in core/cpu/attention_tiles.h,
/// shared with the block-sparse kernel. Forward runs in parallel over B·H × query tiles,
/// backward over B·H (each (b, h) owns its dK and dV, so there are no races).
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

/// Query and key tile sizes: a 64×64 score tile plus 64×d Q, K, V, O tiles stay in L1/L2 for usual head dims.
constexpr std::int64_t kBr = 64, kBc = 64;

/// The attention geometry shared by forward and backward.
struct Geometry {
  std::int64_t BH, Tq, Tk, d;
  bool causal;
  /// Number of keys query row i (0-based within its head) sees.
  std::int64_t visible(std::int64_t i) const {
    return causal ? std::clamp<std::int64_t>(Tk - Tq + i + 1, 0, Tk) : Tk;
  }
  /// Hides the keys past each row's visible prefix in S, the scores of rows i0.. against keys j0.. .
  template <class T>
  void mask(Mat<T>& S, std::int64_t i0, std::int64_t j0) const {
    for (Eigen::Index r = 0; r < S.rows(); ++r) {
      const std::int64_t n = std::clamp<std::int64_t>(visible(i0 + r) - j0, 0, S.cols());
      S.row(r).tail(S.cols() - n).setConstant(kHidden<T>);
    }
  }
};

/// Forward for query tile `tile` of head `bh`.
template <class T>
void forward_tile(const Geometry& g, const T* q, const T* k, const T* v, T* out, T* lse, T scale, std::int64_t bh,
                  std::int64_t tile, Mat<T>& S, cpu::OnlineSoftmax<T>& state) {
  const std::int64_t d = g.d, i0 = tile * kBr, nr = std::min(kBr, g.Tq - i0);
  const ConstMapMat<T> Q(q + (bh * g.Tq + i0) * d, nr, d);
  const T* K = k + bh * g.Tk * d;
  const T* V = v + bh * g.Tk * d;
  state.reset(nr, d);
  const std::int64_t kend = g.visible(i0 + nr - 1);  // the last row of the tile sees the most keys
  for (std::int64_t j0 = 0; j0 < kend; j0 += kBc) {
    const std::int64_t nc = std::min(kBc, kend - j0);
    const ConstMapMat<T> Kj(K + j0 * d, nc, d), Vj(V + j0 * d, nc, d);
    S.resize(nr, nc);
    S.noalias() = scale * (Q * Kj.transpose());
    g.mask(S, i0, j0);
    state.update(S, Vj);
  }
  MapMat<T> O(out + (bh * g.Tq + i0) * d, nr, d);
  state.finish(O, lse + bh * g.Tq + i0);
}

/// Backward for head `bh`: writes dq, dk, dv of that head.
template <class T>
void backward_head(const Geometry& g, const T* q, const T* k, const T* v, const T* out, const T* lse, const T* dout,
                   T scale, T* dq, T* dk, T* dv, std::int64_t bh, Mat<T>& P, Mat<T>& dP, std::vector<T>& D) {
  const std::int64_t d = g.d, qoff = bh * g.Tq * d, koff = bh * g.Tk * d;
  cpu::begin_head_backward(out + qoff, dout + qoff, dq + qoff, dk + koff, dv + koff, g.Tq, g.Tk, d, D);
  const ConstMapMat<T> dO(dout + qoff, g.Tq, d);
  const T* L = lse + bh * g.Tq;
  for (std::int64_t i0 = 0; i0 < g.Tq; i0 += kBr) {
    const std::int64_t nr = std::min(kBr, g.Tq - i0), kend = g.visible(i0 + nr - 1);
    const ConstMapMat<T> Qi(q + qoff + i0 * d, nr, d), dOi(dout + qoff + i0 * d, nr, d);
    for (std::int64_t j0 = 0; j0 < kend; j0 += kBc) {
      const std::int64_t nc = std::min(kBc, kend - j0);
      const ConstMapMat<T> Kj(k + koff + j0 * d, nc, d), Vj(v + koff + j0 * d, nc, d);
      P.resize(nr, nc);
      P.noalias() = scale * (Qi * Kj.transpose());
      g.mask(P, i0, j0);
      cpu::backward_tile<T>(P, dP, L + i0, D.data() + i0, Qi, dOi, Kj, Vj, scale,
                            {dq + qoff + i0 * d, dk + koff + j0 * d, dv + koff + j0 * d});
    }
  }
}

}  // namespace

void CpuBackend::flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                                         const Tensor& out, const Tensor& lse) {
  if (cpu::is_16bit(q.dtype()))
    return cpu::through_float32({q, k, v}, {out, lse}, [&](const auto& in, const auto& o) {
      flash_attention_forward(in[0], in[1], in[2], scale, causal, o[0], o[1]);
    });
  const Geometry g{q.shape()[0] * q.shape()[1], q.shape()[2], k.shape()[2], q.shape()[3], causal};
  const std::int64_t tiles = (g.Tq + kBr - 1) / kBr, n = g.BH * tiles;
  cpu::dispatch_float_double("flash_attention_forward", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::parallel_range(n, g.BH * g.Tq * std::max<std::int64_t>(g.Tk, 1) * std::max<std::int64_t>(g.d, 1),
                        [&](std::int64_t b, std::int64_t e) {
                          Mat<T> S;
                          cpu::OnlineSoftmax<T> state;
                          for (std::int64_t t = b; t < e; ++t)
                            forward_tile<T>(g, q.data_ptr<T>(), k.data_ptr<T>(), v.data_ptr<T>(), out.data_ptr<T>(),
                                            lse.data_ptr<T>(), static_cast<T>(scale), t / tiles, t % tiles, S, state);
                        });
  });
}

void CpuBackend::flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                                          const Tensor& lse, const Tensor& dout, double scale, bool causal,
                                          const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  if (cpu::is_16bit(q.dtype()))
    return cpu::through_float32({q, k, v, out, lse, dout}, {dq, dk, dv}, [&](const auto& in, const auto& o) {
      flash_attention_backward(in[0], in[1], in[2], in[3], in[4], in[5], scale, causal, o[0], o[1], o[2]);
    });
  const Geometry g{q.shape()[0] * q.shape()[1], q.shape()[2], k.shape()[2], q.shape()[3], causal};
  cpu::dispatch_float_double("flash_attention_backward", q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::parallel_range(g.BH, g.BH * g.Tq * std::max<std::int64_t>(g.Tk, 1) * std::max<std::int64_t>(g.d, 1) * 2,
                        [&](std::int64_t b, std::int64_t e) {
                          Mat<T> P, dP;
                          std::vector<T> D;
                          for (std::int64_t bh = b; bh < e; ++bh)
                            backward_head<T>(g, q.data_ptr<T>(), k.data_ptr<T>(), v.data_ptr<T>(), out.data_ptr<T>(),
                                             lse.data_ptr<T>(), dout.data_ptr<T>(), static_cast<T>(scale),
                                             dq.data_ptr<T>(), dk.data_ptr<T>(), dv.data_ptr<T>(), bh, P, dP, D);
                        });
  });
}

}  // namespace ember
