/// \file
/// \brief HiPPO matrices, discretisations and online approximation (technique notes §4): the closed forms of
/// A and B, Ā and B̄ by Euler, bilinear and ZOH (exp by scaling and squaring with a [6/6] Padé approximant),
/// c_k = Ā c_{k−1} + B̄ f_k, and reconstruction from Legendre and Laguerre polynomials.
#include "layers/ssm/hippo.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "core/creation.h"
#include "core/error.h"

namespace ember::nn {

namespace {

using i64 = std::int64_t;

/// A dense row-major matrix of doubles: just enough linear algebra for the small N×N HiPPO systems.
struct Mat {
  i64 rows = 0;
  i64 cols = 0;
  std::vector<double> v;

  Mat(i64 r, i64 c) : rows(r), cols(c), v(static_cast<std::size_t>(r * c), 0.0) {}
  Mat(i64 r, i64 c, std::vector<double> values) : rows(r), cols(c), v(std::move(values)) {}
  double& operator()(i64 i, i64 j) { return v[static_cast<std::size_t>(i * cols + j)]; }
  double operator()(i64 i, i64 j) const { return v[static_cast<std::size_t>(i * cols + j)]; }
};

Mat identity(i64 n) {
  Mat I(n, n);
  for (i64 i = 0; i < n; ++i) I(i, i) = 1.0;
  return I;
}

Mat operator*(const Mat& X, const Mat& Y) {
  Mat Z(X.rows, Y.cols);
  for (i64 i = 0; i < X.rows; ++i)
    for (i64 k = 0; k < X.cols; ++k)
      for (i64 j = 0; j < Y.cols; ++j) Z(i, j) += X(i, k) * Y(k, j);
  return Z;
}

Mat operator*(double s, Mat X) {
  for (double& x : X.v) x *= s;
  return X;
}

Mat operator+(Mat X, const Mat& Y) {
  for (std::size_t i = 0; i < X.v.size(); ++i) X.v[i] += Y.v[i];
  return X;
}

/// The X solving M X = R, by Gaussian elimination with partial pivoting; `what` names M in the error
/// thrown when it is singular.
Mat solve(Mat M, Mat R, const char* what) {
  const i64 n = M.rows;
  for (i64 p = 0; p < n; ++p) {
    i64 best = p;
    for (i64 i = p + 1; i < n; ++i)
      if (std::abs(M(i, p)) > std::abs(M(best, p))) best = i;
    EMBER_CHECK(M(best, p) != 0.0, fmt::format("discretize: {} is singular ([{}, {}])", what, n, n));
    for (i64 j = 0; j < n; ++j) std::swap(M(p, j), M(best, j));
    for (i64 j = 0; j < R.cols; ++j) std::swap(R(p, j), R(best, j));
    for (i64 i = p + 1; i < n; ++i) {
      const double l = M(i, p) / M(p, p);
      for (i64 j = p; j < n; ++j) M(i, j) -= l * M(p, j);
      for (i64 j = 0; j < R.cols; ++j) R(i, j) -= l * R(p, j);
    }
  }
  for (i64 i = n - 1; i >= 0; --i)
    for (i64 j = 0; j < R.cols; ++j) {
      double s = R(i, j);
      for (i64 k = i + 1; k < n; ++k) s -= M(i, k) * R(k, j);
      R(i, j) = s / M(i, i);
    }
  return R;
}

/// max_j Σ_i |X_ij|, the matrix 1-norm.
double norm1(const Mat& X) {
  double best = 0.0;
  for (i64 j = 0; j < X.cols; ++j) {
    double s = 0.0;
    for (i64 i = 0; i < X.rows; ++i) s += std::abs(X(i, j));
    best = std::max(best, s);
  }
  return best;
}

/// exp(X) by scaling and squaring: exp(X) = exp(X/2^s)^(2^s) with |X/2^s|₁ ≤ ½, where the [6/6] Padé approximant
/// D(Y)⁻¹N(Y), N(Y) = Σ_j c_j Y^j, D(Y) = N(−Y), has relative error below 1e-16.
Mat expm(const Mat& X) {
  constexpr int q = 6;
  const double norm = norm1(X);
  const int s = norm > 0.5 ? static_cast<int>(std::ceil(std::log2(norm / 0.5))) : 0;
  const Mat Y = std::ldexp(1.0, -s) * X;
  Mat num = identity(X.rows), den = identity(X.rows), power = identity(X.rows);
  double c = 1.0;
  for (int j = 1; j <= q; ++j) {
    c *= static_cast<double>(q - j + 1) / (j * (2 * q - j + 1));  // c_j = (2q−j)! q! / ((2q)! j! (q−j)!)
    power = power * Y;
    num = num + c * power;
    den = den + ((j % 2 == 0) ? c : -c) * power;
  }
  Mat E = solve(den, num, "the Pade denominator");
  for (int i = 0; i < s; ++i) E = E * E;
  return E;
}

/// A [N, N], B [N, 1] -> (Ā, B̄) of step dt by `method` (see Discretization).
std::pair<Mat, Mat> discretize_mat(const Mat& A, const Mat& B, double dt, Discretization method) {
  const i64 N = A.rows;
  const Mat I = identity(N);
  switch (method) {
    case Discretization::ForwardEuler: return {I + dt * A, dt * B};
    case Discretization::BackwardEuler: {
      const Mat M = I + (-dt) * A;
      return {solve(M, I, "I - dt A"), solve(M, dt * B, "I - dt A")};
    }
    case Discretization::Bilinear: {
      const Mat M = I + (-dt / 2) * A;
      return {solve(M, I + (dt / 2) * A, "I - dt A/2"), solve(M, dt * B, "I - dt A/2")};
    }
    case Discretization::ZOH: {
      // exp(Δ[[A, B], [0, 0]]) = [[exp(ΔA), A⁻¹(exp(ΔA) − I)B], [0, 1]]: both blocks from one exponential.
      Mat M(N + 1, N + 1);
      for (i64 i = 0; i < N; ++i) {
        for (i64 j = 0; j < N; ++j) M(i, j) = dt * A(i, j);
        M(i, N) = dt * B(i, 0);
      }
      const Mat E = expm(M);
      Mat Abar(N, N), Bbar(N, 1);
      for (i64 i = 0; i < N; ++i) {
        for (i64 j = 0; j < N; ++j) Abar(i, j) = E(i, j);
        Bbar(i, 0) = E(i, N);
      }
      return {Abar, Bbar};
    }
  }
  throw Error(fmt::format("discretize: unknown method {}", static_cast<int>(method)));
}

void check_method(Discretization method, const char* op) {
  const int m = static_cast<int>(method);
  EMBER_CHECK(m >= 0 && m <= static_cast<int>(Discretization::ZOH), fmt::format("{}: unknown method {}", op, m));
}

void check_size(std::int64_t N, const char* op) {
  EMBER_CHECK(N >= 1, fmt::format("{}: the state size N must be at least 1 (got {})", op, N));
}

/// The closed forms of A [N, N] and B [N] (θ = 1) with the sign baked into A.
std::pair<std::vector<double>, std::vector<double>> closed_forms(HippoKind kind, i64 N) {
  std::vector<double> A(static_cast<std::size_t>(N * N)), B(static_cast<std::size_t>(N));
  auto r = [](i64 n) { return std::sqrt(2.0 * static_cast<double>(n) + 1.0); };  // √(2n+1)
  for (i64 n = 0; n < N; ++n) {
    for (i64 k = 0; k < N; ++k) {
      double& a = A[static_cast<std::size_t>(n * N + k)];
      switch (kind) {
        case HippoKind::LegS: a = n > k ? -r(n) * r(k) : (n == k ? -static_cast<double>(n + 1) : 0.0); break;
        case HippoKind::LegT: a = -r(n) * r(k) * (n >= k || (k - n) % 2 == 0 ? 1.0 : -1.0); break;
        case HippoKind::LagT: a = n > k ? -1.0 : (n == k ? -0.5 : 0.0); break;
      }
    }
    B[static_cast<std::size_t>(n)] = kind == HippoKind::LagT ? 1.0 : r(n);
  }
  return {A, B};
}

void check_kind(HippoKind kind, const char* op) {
  const int k = static_cast<int>(kind);
  EMBER_CHECK(k >= 0 && k <= static_cast<int>(HippoKind::LagT), fmt::format("{}: unknown HiPPO kind {}", op, k));
}

}  // namespace

StateSpace hippo_matrices(HippoKind kind, std::int64_t N, double theta) {
  check_kind(kind, "hippo_matrices");
  check_size(N, "hippo_matrices");
  EMBER_CHECK(theta > 0.0, fmt::format("hippo_matrices: the window theta must be positive (got {})", theta));
  auto [A, B] = closed_forms(kind, N);
  if (kind == HippoKind::LegT) {
    for (double& a : A) a /= theta;
    for (double& b : B) b /= theta;
  }
  return {from_vector(A, {N, N}, DType::Float64), from_vector(B, {N}, DType::Float64)};
}

Tensor legs_rank_correction(std::int64_t N) {
  check_size(N, "legs_rank_correction");
  std::vector<double> P(static_cast<std::size_t>(N));
  for (i64 n = 0; n < N; ++n) P[static_cast<std::size_t>(n)] = std::sqrt(static_cast<double>(n) + 0.5);
  return from_vector(P, {N}, DType::Float64);
}

StateSpace discretize(const Tensor& A, const Tensor& B, double dt, Discretization method) {
  EMBER_CHECK(A.defined() && B.defined(), "discretize: A and B must be defined tensors");
  const i64 N = A.dim() == 2 ? A.shape()[0] : -1;
  EMBER_CHECK(N >= 1 && A.shape()[1] == N && B.dim() == 1 && B.shape()[0] == N,
              fmt::format("discretize: expected A [N, N] and B [N], got A {} and B {}", shape_str(A.shape()),
                          shape_str(B.shape())));
  EMBER_CHECK(is_floating(A.dtype()) && is_floating(B.dtype()), "discretize: A and B must have a floating-point dtype");
  EMBER_CHECK(dt > 0.0, fmt::format("discretize: the step dt must be positive (got {})", dt));
  check_method(method, "discretize");
  auto [Abar, Bbar] = discretize_mat(Mat(N, N, A.to_vector<double>()), Mat(N, 1, B.to_vector<double>()), dt, method);
  return {from_vector(Abar.v, {N, N}, A.dtype()), from_vector(Bbar.v, {N}, A.dtype())};
}

std::vector<double> legendre(std::int64_t N, double x) {
  check_size(N, "legendre");
  std::vector<double> P(static_cast<std::size_t>(N));
  P[0] = 1.0;
  if (N > 1) P[1] = x;
  for (i64 n = 1; n + 1 < N; ++n) {
    const double nd = static_cast<double>(n);
    P[n + 1] = ((2 * nd + 1) * x * P[n] - nd * P[n - 1]) / (nd + 1);
  }
  return P;
}

std::vector<double> laguerre(std::int64_t N, double x) {
  check_size(N, "laguerre");
  std::vector<double> L(static_cast<std::size_t>(N));
  L[0] = 1.0;
  if (N > 1) L[1] = 1.0 - x;
  for (i64 n = 1; n + 1 < N; ++n) {
    const double nd = static_cast<double>(n);
    L[n + 1] = ((2 * nd + 1 - x) * L[n] - nd * L[n - 1]) / (nd + 1);
  }
  return L;
}

HippoProjection::HippoProjection(HippoKind kind, std::int64_t N, Discretization method, double dt, double theta)
    : kind_(kind), N_(N), method_(method), theta_(theta) {
  check_method(method, "HippoProjection");
  EMBER_CHECK(dt > 0.0, fmt::format("HippoProjection: the step dt must be positive (got {})", dt));
  StateSpace ss = hippo_matrices(kind, N, theta);
  A_ = ss.A.to_vector<double>();
  B_ = ss.B.to_vector<double>();
  c_.assign(static_cast<std::size_t>(N), 0.0);
  if (kind != HippoKind::LegS) {
    auto [Abar, Bbar] = discretize_mat(Mat(N, N, A_), Mat(N, 1, B_), dt, method);
    Abar_ = std::move(Abar.v);
    Bbar_ = std::move(Bbar.v);
  }
}

void HippoProjection::update(double f) {
  ++k_;
  if (kind_ == HippoKind::LegS) {
    // The scale-invariant ODE c' = (1/t)(Ac + Bf) stepped from t = k−1 to k: (ΔA, ΔB) becomes (A/k, B/k).
    auto [Abar, Bbar] = discretize_mat(Mat(N_, N_, A_), Mat(N_, 1, B_), 1.0 / static_cast<double>(k_), method_);
    Abar_ = std::move(Abar.v);
    Bbar_ = std::move(Bbar.v);
  }
  std::vector<double> next(static_cast<std::size_t>(N_));
  for (i64 n = 0; n < N_; ++n) {
    double s = Bbar_[n] * f;
    for (i64 j = 0; j < N_; ++j) s += Abar_[n * N_ + j] * c_[j];
    next[n] = s;
  }
  c_ = std::move(next);
}

std::vector<double> HippoProjection::reconstruct(const std::vector<double>& points) const {
  std::vector<double> out;
  out.reserve(points.size());
  for (const double p : points) {
    double y = 0.0;
    if (kind_ == HippoKind::LagT) {
      EMBER_CHECK(p >= 0.0, fmt::format("HippoProjection::reconstruct: LagT lag {} is negative", p));
      const std::vector<double> L = laguerre(N_, p);
      for (i64 n = 0; n < N_; ++n) y += c_[n] * L[n];
      y *= std::exp(-p / 2);
    } else {
      const bool legs = kind_ == HippoKind::LegS;
      const double hi = legs ? 1.0 : theta_;
      EMBER_CHECK(p >= 0.0 && p <= hi, fmt::format("HippoProjection::reconstruct: {} {} is outside [0, {}]",
                                                   legs ? "LegS point" : "LegT lag", p, hi));
      const std::vector<double> P = legendre(N_, legs ? 2 * p - 1 : 1 - 2 * p / theta_);
      for (i64 n = 0; n < N_; ++n) y += c_[n] * std::sqrt(2.0 * static_cast<double>(n) + 1.0) * P[n];
    }
    out.push_back(y);
  }
  return out;
}

}  // namespace ember::nn
