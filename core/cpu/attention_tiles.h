/// \file
/// \brief The tile steps shared by the CPU FlashAttention and block-sparse attention kernels (Dao et al. 2022;
/// technique notes §1 and §9): the online-softmax update of one key tile, its final normalisation, and the
/// recomputing backward of one (query tile, key tile) pair.
///
/// A tile enters as its scaled scores S = s · Q_i K_jᵀ with the hidden entries set to −∞, so one code path serves
/// a causal prefix (flash) and an arbitrary element mask (block-sparse). Forward, per row:
///
///     m' = max(m, rowmax S),  α = exp(m − m'),  P̃ = exp(S − m'),  ℓ ← α ℓ + rowsum P̃,  Ô ← diag(α) Ô + P̃ V_j
///     O  = diag(ℓ)⁻¹ Ô,       L = m + log ℓ
///
/// Backward, with D = rowsum(dO ∘ O) precomputed per query row:
///
///     P = exp(S − L),  dV_j += Pᵀ dO_i,  dS = P ∘ (dO_i V_jᵀ − D),  dQ_i += s · dS K_j,  dK_j += s · dSᵀ Q_i
///
/// Hidden entries are zeroed explicitly rather than trusted to exp(−∞): Eigen's vectorised double exp returns
/// about 5e-309 there, not 0.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ember::cpu {

/// A dynamic row-major matrix (Q, K, V and score tiles are row-major).
template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// A row-major matrix over existing memory.
template <class T>
using MapMat = Eigen::Map<Mat<T>>;
/// A read-only row-major matrix over existing memory.
template <class T>
using ConstMapMat = Eigen::Map<const Mat<T>>;

/// −∞ in T: the score of a hidden (query, key) pair.
template <class T>
constexpr T kHidden = -std::numeric_limits<T>::infinity();

/// The running softmax state of one query tile: row max m, row sum ℓ and the unnormalised output Ô.
template <class T>
struct OnlineSoftmax {
  Mat<T> acc;        ///< Ô [rows, d]
  std::vector<T> m;  ///< running row max (−∞ until a visible key is seen)
  std::vector<T> l;  ///< running row sum ℓ

  /// Starts a tile of `rows` query rows and head dim `d`.
  void reset(std::int64_t rows, std::int64_t d) {
    acc.setZero(rows, d);
    m.assign(rows, kHidden<T>);
    l.assign(rows, T(0));
  }

  /// S: [rows, nc] scaled scores, hidden entries −∞ (overwritten by P̃), Vj: [nc, d]. Folds one key tile in.
  void update(Mat<T>& S, const ConstMapMat<T>& Vj) {
    for (Eigen::Index r = 0; r < S.rows(); ++r) {
      auto row = S.row(r);
      const T row_max = row.maxCoeff();
      if (row_max == kHidden<T>) {  // nothing visible in this tile: P̃ = 0, state unchanged
        row.setZero();
        continue;
      }
      const T m_new = std::max(m[r], row_max);
      const T alpha = std::exp(m[r] - m_new);  // exp(−∞) = 0 on the first visible tile
      row = (row.array() == kHidden<T>).select(T(0), (row.array() - m_new).exp()).matrix();
      l[r] = alpha * l[r] + row.sum();
      acc.row(r) *= alpha;
      m[r] = m_new;
    }
    acc.noalias() += S * Vj;
  }

  /// O: [rows, d] = diag(ℓ)⁻¹ Ô and L[r] = m + log ℓ; a row that saw no visible key gets O = 0 and L = −∞ (a NaN
  /// in ℓ propagates to O rather than passing for such a row).
  void finish(MapMat<T>& O, T* L) const {
    for (Eigen::Index r = 0; r < O.rows(); ++r) {
      if (l[r] == T(0)) {
        O.row(r).setZero();
        L[r] = kHidden<T>;
      } else {
        O.row(r) = acc.row(r) / l[r];
        L[r] = m[r] + std::log(l[r]);
      }
    }
  }
};

/// The gradients of one (query tile i, key tile j) pair, accumulated into dQ_i [nr, d], dK_j and dV_j [nc, d].
template <class T>
struct TileGrads {
  T* dQi;  ///< dQ rows of the query tile
  T* dKj;  ///< dK rows of the key tile
  T* dVj;  ///< dV rows of the key tile
};

/// Starts one head's backward: zeroes its dq [Tq, d], dk and dv [Tk, d] (the tiles accumulate into them) and fills
/// D[i] = rowsum(dO ∘ O)_i for its Tq rows, the term every tile's dS = P ∘ (dP − D) needs.
template <class T>
void begin_head_backward(const T* out, const T* dout, T* dq, T* dk, T* dv, std::int64_t Tq, std::int64_t Tk,
                         std::int64_t d, std::vector<T>& D) {
  MapMat<T>(dq, Tq, d).setZero();
  MapMat<T>(dk, Tk, d).setZero();
  MapMat<T>(dv, Tk, d).setZero();
  const ConstMapMat<T> O(out, Tq, d), dO(dout, Tq, d);
  D.resize(Tq);
  for (std::int64_t i = 0; i < Tq; ++i) D[i] = O.row(i).dot(dO.row(i));
}

/// P: [nr, nc] scaled scores with hidden entries −∞ (overwritten), dP: scratch; L, D: the tile's rows of the
/// logsumexp and of rowsum(dO ∘ O); Qi, dOi: [nr, d]; Kj, Vj: [nc, d]. Adds this pair's terms to g.
template <class T>
void backward_tile(Mat<T>& P, Mat<T>& dP, const T* L, const T* D, const ConstMapMat<T>& Qi, const ConstMapMat<T>& dOi,
                   const ConstMapMat<T>& Kj, const ConstMapMat<T>& Vj, T scale, const TileGrads<T>& g) {
  const Eigen::Index nr = P.rows(), nc = P.cols(), d = Qi.cols();
  for (Eigen::Index r = 0; r < nr; ++r) {
    auto row = P.row(r);
    if (L[r] == kHidden<T>) {  // a row with no visible key has no gradient
      row.setZero();
      continue;
    }
    row = (row.array() == kHidden<T>).select(T(0), (row.array() - L[r]).exp()).matrix();  // P = exp(S − L)
  }
  MapMat<T> dQi(g.dQi, nr, d), dKj(g.dKj, nc, d), dVj(g.dVj, nc, d);
  dVj.noalias() += P.transpose() * dOi;
  dP.resize(nr, nc);
  dP.noalias() = dOi * Vj.transpose();
  for (Eigen::Index r = 0; r < nr; ++r) dP.row(r).array() -= D[r];
  dP.array() *= P.array();  // dS = P ∘ (dP − D)
  dQi.noalias() += scale * (dP * Kj);
  dKj.noalias() += scale * (dP.transpose() * Qi);
}

}  // namespace ember::cpu
