/// \file
/// \brief HiPPO (technique notes §4): the N = 4 matrices of the verified table and the closed forms for N = 8
/// (oracle 1); LegS eigenvalues −1..−N (oracle 5) and the NPLR identity (oracle 6); every discretisation against
/// its definition (residuals of the linear systems, exp by an unscaled Taylor series and by RK4 integration of
/// the ODE, closed forms for a singular A), Euler against ZOH to O(Δ²); Legendre and Laguerre polynomials against
/// their explicit forms and orthogonality by quadrature; online approximation: LegS c_0 is the running mean
/// (oracle 2), the LegS cubic (oracle 3), LegT improving with N (oracle 4), LagT coefficients against the
/// projection integral; bad input throws ember::Error.
#include <cmath>
#include <functional>
#include <numbers>

#include "helpers.h"
#include "layers/ssm/hippo.h"

using namespace ember;
using namespace ember::nn;
using ember::test::max_diff;
using i64 = std::int64_t;
using Vec = std::vector<double>;

namespace {

constexpr double pi = std::numbers::pi;

/// The tensor's values as doubles (row-major).
Vec vec(const Tensor& t) { return t.to_vector<double>(); }

/// Row-major n×n product X Y.
Vec mm(const Vec& X, const Vec& Y, i64 n) {
  Vec Z(n * n, 0.0);
  for (i64 i = 0; i < n; ++i)
    for (i64 j = 0; j < n; ++j)
      for (i64 k = 0; k < n; ++k) Z[i * n + j] += X[i * n + k] * Y[k * n + j];
  return Z;
}

/// Row-major n×n matrix times vector.
Vec mv(const Vec& X, const Vec& v, i64 n) {
  Vec y(n, 0.0);
  for (i64 i = 0; i < n; ++i)
    for (i64 k = 0; k < n; ++k) y[i] += X[i * n + k] * v[k];
  return y;
}

/// I + s X (n×n).
Vec eye_plus(const Vec& X, double s, i64 n) {
  Vec Y(n * n);
  for (i64 i = 0; i < n * n; ++i) Y[i] = s * X[i] + (i % (n + 1) == 0 ? 1.0 : 0.0);
  return Y;
}

/// exp(X) as Σ X^j / j! summed until the terms stop changing it (no scaling, no squaring).
Vec taylor_exp(const Vec& X, i64 n) {
  Vec sum = eye_plus(X, 0.0, n), term = sum;
  for (int j = 1; j < 400; ++j) {
    term = mm(term, X, n);
    double biggest = 0.0;
    for (double& t : term) {
      t /= j;
      biggest = std::max(biggest, std::abs(t));
    }
    for (i64 i = 0; i < n * n; ++i) sum[i] += term[i];
    if (biggest < 1e-300) break;
  }
  return sum;
}

/// x(Δ) for x' = A x + B u (u constant) from x(0) = x0, by `steps` classical RK4 steps.
Vec rk4(const Vec& A, const Vec& B, double u, Vec x, double dt, int steps, i64 n) {
  const double h = dt / steps;
  auto f = [&](const Vec& y) {
    Vec d = mv(A, y, n);
    for (i64 i = 0; i < n; ++i) d[i] += B[i] * u;
    return d;
  };
  auto axpy = [&](const Vec& y, const Vec& d, double s) {
    Vec z = y;
    for (i64 i = 0; i < n; ++i) z[i] += s * d[i];
    return z;
  };
  for (int s = 0; s < steps; ++s) {
    const Vec k1 = f(x), k2 = f(axpy(x, k1, h / 2)), k3 = f(axpy(x, k2, h / 2)), k4 = f(axpy(x, k3, h));
    for (i64 i = 0; i < n; ++i) x[i] += h / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
  }
  return x;
}

/// ∫_a^b g by composite Simpson with `m` (even) intervals.
double simpson(const std::function<double(double)>& g, double a, double b, int m) {
  const double h = (b - a) / m;
  double s = g(a) + g(b);
  for (int i = 1; i < m; ++i) s += (i % 2 ? 4.0 : 2.0) * g(a + i * h);
  return s * h / 3;
}

/// [N, N] Gram matrix G_mn = ∫_a^b φ_m φ_n w by composite Simpson with `m` (even) intervals; basis(x) gives
/// φ_0(x)..φ_{N−1}(x).
Vec gram(const std::function<Vec(double)>& basis, const std::function<double(double)>& w, double a, double b, int m,
         i64 N) {
  const double h = (b - a) / m;
  Vec G(N * N, 0.0);
  for (int i = 0; i <= m; ++i) {
    const double x = a + i * h, weight = (i == 0 || i == m ? 1.0 : i % 2 ? 4.0 : 2.0) * h / 3 * w(x);
    const Vec phi = basis(x);
    for (i64 r = 0; r < N; ++r)
      for (i64 c = 0; c < N; ++c) G[r * N + c] += weight * phi[r] * phi[c];
  }
  return G;
}

/// √(mean of (a_i − b_i)²).
double rmse(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

/// The test's own closed form of entry (n, k) of A for `kind` (θ = 1).
double closed_A(HippoKind kind, i64 n, i64 k) {
  const double rn = std::sqrt(2.0 * n + 1), rk = std::sqrt(2.0 * k + 1);
  if (kind == HippoKind::LegS) return n > k ? -rn * rk : n == k ? -(n + 1.0) : 0.0;
  if (kind == HippoKind::LegT) return n >= k ? -rn * rk : -rn * rk * std::pow(-1.0, static_cast<double>(n - k));
  return n > k ? -1.0 : n == k ? -0.5 : 0.0;
}

/// LegS with N coefficients and `method` fed the cubic 1 − 2x + 3x² − 4x³ at x = k/L, k = 1..L: the RMSE of
/// the reconstruction at the L midpoints (i + ½)/L (oracle 3).
double legs_cubic_rmse(i64 N, i64 L, Discretization method) {
  auto f = [](double x) { return 1 - 2 * x + 3 * x * x - 4 * x * x * x; };
  HippoProjection h(HippoKind::LegS, N, method);
  for (i64 k = 1; k <= L; ++k) h.update(f(static_cast<double>(k) / L));
  Vec x(L), truth(L);
  for (i64 i = 0; i < L; ++i) {
    x[i] = (i + 0.5) / L;
    truth[i] = f(x[i]);
  }
  return rmse(h.reconstruct(x), truth);
}

/// LegT (θ = 1, Δ = 1e-3, bilinear) with N coefficients fed sin(4πt) + 0.5cos(10πt) at t = kΔ for 3000 steps:
/// the RMSE over the last window at 1000 midpoint lags (oracle 4).
double legt_window_rmse(i64 N) {
  auto f = [](double t) { return std::sin(4 * pi * t) + 0.5 * std::cos(10 * pi * t); };
  const double dt = 1e-3;
  const i64 K = 3000;
  HippoProjection h(HippoKind::LegT, N, Discretization::Bilinear, dt, 1.0);
  for (i64 k = 1; k <= K; ++k) h.update(f(k * dt));
  Vec u(1000), truth(1000);
  for (i64 i = 0; i < 1000; ++i) {
    u[i] = (i + 0.5) / 1000;
    truth[i] = f(K * dt - u[i]);
  }
  return rmse(h.reconstruct(u), truth);
}

}  // namespace

TEST_CASE("hippo matrices equal the verified N = 4 table") {
  // technique notes §4, the [verified] N = 4 values, given to 4 decimals.
  const Vec legs_A = {-1, 0, 0, 0, -1.7321, -2, 0, 0, -2.2361, -3.8730, -3, 0, -2.6458, -4.5826, -5.9161, -4};
  const Vec legt_A = {-1,      1.7321,  -2.2361, 2.6458, -1.7321, -3,      3.8730,  -4.5826,
                      -2.2361, -3.8730, -5,      5.9161, -2.6458, -4.5826, -5.9161, -7};
  const Vec lagt_A = {-.5, 0, 0, 0, -1, -.5, 0, 0, -1, -1, -.5, 0, -1, -1, -1, -.5};
  const Vec leg_B = {1, 1.7321, 2.2361, 2.6458}, lag_B = {1, 1, 1, 1};
  const StateSpace legs = hippo_matrices(HippoKind::LegS, 4), legt = hippo_matrices(HippoKind::LegT, 4),
                   lagt = hippo_matrices(HippoKind::LagT, 4);
  CHECK(legs.A.shape() == Shape{4, 4});
  CHECK(legs.B.shape() == Shape{4});
  CHECK(legs.A.dtype() == DType::Float64);
  CHECK(max_diff(vec(legs.A), legs_A) < 5e-5);
  CHECK(max_diff(vec(legt.A), legt_A) < 5e-5);
  CHECK(max_diff(vec(lagt.A), lagt_A) == 0.0);
  CHECK(max_diff(vec(legs.B), leg_B) < 5e-5);
  CHECK(max_diff(vec(legt.B), leg_B) < 5e-5);
  CHECK(max_diff(vec(lagt.B), lag_B) == 0.0);
}

TEST_CASE("hippo matrices equal the closed forms entry by entry for N = 8 and LegT divides by theta") {
  const i64 N = 8;
  for (HippoKind kind : {HippoKind::LegS, HippoKind::LegT, HippoKind::LagT}) {
    CAPTURE(static_cast<int>(kind));
    const StateSpace ss = hippo_matrices(kind, N);
    const Vec A = vec(ss.A), B = vec(ss.B);
    for (i64 n = 0; n < N; ++n) {
      for (i64 k = 0; k < N; ++k) CHECK(A[n * N + k] == doctest::Approx(closed_A(kind, n, k)).epsilon(1e-14));
      CHECK(B[n] == doctest::Approx(kind == HippoKind::LagT ? 1.0 : std::sqrt(2.0 * n + 1)).epsilon(1e-14));
    }
  }
  const Vec A1 = vec(hippo_matrices(HippoKind::LegT, N).A), B1 = vec(hippo_matrices(HippoKind::LegT, N).B);
  const StateSpace wide = hippo_matrices(HippoKind::LegT, N, 2.5);
  const Vec A25 = vec(wide.A), B25 = vec(wide.B);
  for (i64 i = 0; i < N * N; ++i) CHECK(A25[i] == doctest::Approx(A1[i] / 2.5).epsilon(1e-15));
  for (i64 n = 0; n < N; ++n) CHECK(B25[n] == doctest::Approx(B1[n] / 2.5).epsilon(1e-15));
  // θ belongs to LegT only.
  CHECK(max_diff(vec(hippo_matrices(HippoKind::LegS, N, 2.5).A), vec(hippo_matrices(HippoKind::LegS, N).A)) == 0.0);
}

TEST_CASE("hippo LegS eigenvalues are -1 to -N and ZOH maps them to exp(-dt n)") {
  // Oracle 5: A_LegS is lower triangular, so its eigenvalues are its diagonal −1, ..., −N; exp(ΔA) is then
  // lower triangular with diagonal e^{−Δ(n+1)}.
  const i64 N = 32;
  const StateSpace legs = hippo_matrices(HippoKind::LegS, N);
  const Vec A = vec(legs.A);
  for (i64 n = 0; n < N; ++n) {
    for (i64 k = n + 1; k < N; ++k) CHECK(A[n * N + k] == 0.0);
    CHECK(A[n * N + n] == -(n + 1.0));
  }
  const double dt = 0.05;
  const Vec Abar = vec(discretize(legs.A, legs.B, dt, Discretization::ZOH).A);
  double worst = 0.0, upper = 0.0;
  for (i64 n = 0; n < N; ++n) {
    worst = std::max(worst, std::abs(Abar[n * N + n] - std::exp(-dt * (n + 1))));
    for (i64 k = n + 1; k < N; ++k) upper = std::max(upper, std::abs(Abar[n * N + k]));
  }
  MESSAGE("ZOH diagonal error " << worst << ", largest upper entry " << upper);
  CHECK(worst < 1e-13);
  CHECK(upper < 1e-13);
}

TEST_CASE("hippo NPLR identity: A_LegS + PPt has symmetric part -I/2") {
  // Oracle 6: with P_n = √(n + ½), (A + PPᵀ) + (A + PPᵀ)ᵀ = −I.
  const i64 N = 16;
  const Vec A = vec(hippo_matrices(HippoKind::LegS, N).A), P = vec(legs_rank_correction(N));
  REQUIRE(P.size() == static_cast<std::size_t>(N));
  double worst = 0.0;
  for (i64 n = 0; n < N; ++n) {
    CHECK(P[n] == doctest::Approx(std::sqrt(n + 0.5)).epsilon(1e-15));
    for (i64 k = 0; k < N; ++k) {
      const double s = A[n * N + k] + P[n] * P[k] + A[k * N + n] + P[k] * P[n];
      worst = std::max(worst, std::abs(s - (n == k ? -1.0 : 0.0)));
    }
  }
  MESSAGE("largest |(A + PPt) + (A + PPt)t + I| = " << worst);
  CHECK(worst < 1e-12);
}

TEST_CASE("hippo forward Euler is I + dt A and dt B") {
  const i64 N = 6;
  const double dt = 0.01;
  const StateSpace legt = hippo_matrices(HippoKind::LegT, N);
  const StateSpace d = discretize(legt.A, legt.B, dt, Discretization::ForwardEuler);
  const Vec A = vec(legt.A), B = vec(legt.B);
  CHECK(max_diff(vec(d.A), eye_plus(A, dt, N)) < 1e-15);
  Vec dB = B;
  for (double& b : dB) b *= dt;
  CHECK(max_diff(vec(d.B), dB) < 1e-15);
}

TEST_CASE("hippo backward Euler and bilinear solve their defining linear systems") {
  // (I − ΔA)Ā = I, (I − ΔA)B̄ = ΔB; (I − ΔA/2)Ā = I + ΔA/2, (I − ΔA/2)B̄ = ΔB: checked as residuals, no inverse.
  const i64 N = 8;
  const double dt = 0.3;
  for (HippoKind kind : {HippoKind::LegS, HippoKind::LegT, HippoKind::LagT}) {
    CAPTURE(static_cast<int>(kind));
    const StateSpace ss = hippo_matrices(kind, N);
    const Vec A = vec(ss.A), B = vec(ss.B);
    Vec dB = B;
    for (double& b : dB) b *= dt;
    const StateSpace be = discretize(ss.A, ss.B, dt, Discretization::BackwardEuler);
    CHECK(max_diff(mm(eye_plus(A, -dt, N), vec(be.A), N), eye_plus(A, 0.0, N)) < 1e-12);
    CHECK(max_diff(mv(eye_plus(A, -dt, N), vec(be.B), N), dB) < 1e-12);
    const StateSpace bl = discretize(ss.A, ss.B, dt, Discretization::Bilinear);
    CHECK(max_diff(mm(eye_plus(A, -dt / 2, N), vec(bl.A), N), eye_plus(A, dt / 2, N)) < 1e-12);
    CHECK(max_diff(mv(eye_plus(A, -dt / 2, N), vec(bl.B), N), dB) < 1e-12);
  }
  // LegS is triangular: the bilinear Ā is too, with the Möbius map (1 + Δλ/2)/(1 − Δλ/2) of λ = −(n+1) on its
  // diagonal.
  const Vec Abar = vec(discretize(hippo_matrices(HippoKind::LegS, N).A, hippo_matrices(HippoKind::LegS, N).B, dt,
                                  Discretization::Bilinear)
                           .A);
  for (i64 n = 0; n < N; ++n)
    CHECK(Abar[n * N + n] == doctest::Approx((1 - dt * (n + 1) / 2) / (1 + dt * (n + 1) / 2)).epsilon(1e-13));
}

TEST_CASE("hippo ZOH equals a Taylor series of exp and RK4 integration of the ODE") {
  const i64 N = 8;
  for (HippoKind kind : {HippoKind::LegS, HippoKind::LegT, HippoKind::LagT}) {
    for (double dt : {1e-3, 0.1, 0.5}) {
      CAPTURE(static_cast<int>(kind));
      CAPTURE(dt);
      const StateSpace ss = hippo_matrices(kind, N);
      const Vec A = vec(ss.A), B = vec(ss.B);
      const StateSpace z = discretize(ss.A, ss.B, dt, Discretization::ZOH);
      const Vec Abar = vec(z.A), Bbar = vec(z.B);
      // Ā = exp(ΔA) by the plain series (|ΔA| ≤ 20 here, so cancellation costs at most ~1e-9 relative).
      Vec dA = A;
      for (double& a : dA) a *= dt;
      const Vec series = taylor_exp(dA, N);
      double scale = 1.0;
      for (double s : series) scale = std::max(scale, std::abs(s));
      CHECK(max_diff(Abar, series) / scale < 1e-9);
      // B̄ = A⁻¹(exp(ΔA) − I)B, checked without an inverse as A B̄ = (Ā − I) B.
      Vec rhs = mv(Abar, B, N);
      for (i64 i = 0; i < N; ++i) rhs[i] -= B[i];
      CHECK(max_diff(mv(A, Bbar, N), rhs) < 1e-11);
      // B̄ is x(Δ) for x' = Ax + B·1 from x(0) = 0, and column j of Ā is x(Δ) from x(0) = e_j with no input.
      const Vec x_B = rk4(A, B, 1.0, Vec(N, 0.0), dt, 2000, N);
      CHECK(max_diff(Bbar, x_B) < 1e-10);
      Vec e0(N, 0.0), col0(N);
      e0[0] = 1.0;
      const Vec x_A = rk4(A, B, 0.0, e0, dt, 2000, N);
      for (i64 i = 0; i < N; ++i) col0[i] = Abar[i * N];
      CHECK(max_diff(col0, x_A) < 1e-10);
    }
  }
}

TEST_CASE("hippo ZOH needs no inverse of A: the nilpotent and zero matrices") {
  // A = [[0, 1], [0, 0]]: exp(ΔA) = [[1, Δ], [0, 1]] and B̄ = ∫_0^Δ exp(sA) ds B = [[Δ, Δ²/2], [0, Δ]] B.
  const double dt = 0.7, b0 = 0.3, b1 = -1.2;
  const StateSpace z = discretize(tensor({{0.0, 1.0}, {0.0, 0.0}}, DType::Float64), tensor({b0, b1}, DType::Float64),
                                  dt, Discretization::ZOH);
  CHECK(max_diff(vec(z.A), {1.0, dt, 0.0, 1.0}) < 1e-15);
  CHECK(max_diff(vec(z.B), {dt * b0 + dt * dt / 2 * b1, dt * b1}) < 1e-15);
  const StateSpace zero =
      discretize(zeros({3, 3}, DType::Float64), tensor({1.0, 2.0, 3.0}, DType::Float64), dt, Discretization::ZOH);
  CHECK(max_diff(vec(zero.A), {1, 0, 0, 0, 1, 0, 0, 0, 1}) == 0.0);
  CHECK(max_diff(vec(zero.B), {dt, 2 * dt, 3 * dt}) < 1e-15);
  // Float32 in, Float32 out.
  CHECK(discretize(zeros({3, 3}), ones({3}), dt, Discretization::ZOH).A.dtype() == DType::Float32);
}

TEST_CASE("hippo every discretisation agrees with ZOH to second order in dt") {
  // Euler, backward Euler and bilinear all match exp(ΔA) to O(Δ²) (bilinear to O(Δ³)): halving Δ divides the
  // distance to ZOH by about 4 (8 for bilinear).
  const StateSpace legt = hippo_matrices(HippoKind::LegT, 6);
  for (Discretization m : {Discretization::ForwardEuler, Discretization::BackwardEuler, Discretization::Bilinear}) {
    CAPTURE(static_cast<int>(m));
    auto gap = [&](double dt) {
      const StateSpace a = discretize(legt.A, legt.B, dt, m), z = discretize(legt.A, legt.B, dt, Discretization::ZOH);
      return std::max(max_diff(vec(a.A), vec(z.A)), max_diff(vec(a.B), vec(z.B)));
    };
    const double ratio = gap(1e-3) / gap(5e-4);
    MESSAGE("gap ratio at dt = 1e-3 vs 5e-4: " << ratio);
    if (m == Discretization::Bilinear)
      CHECK(ratio == doctest::Approx(8.0).epsilon(0.05));
    else
      CHECK(ratio == doctest::Approx(4.0).epsilon(0.05));
    CHECK(gap(1e-3) < 1e-3);
  }
}

TEST_CASE("hippo Legendre and Laguerre recurrences give the explicit polynomials and are orthogonal") {
  for (double x : {-1.0, -0.63, 0.0, 0.2, 0.9, 1.0}) {
    const Vec P = legendre(5, x);
    REQUIRE(P.size() == 5);
    CHECK(P[0] == 1.0);
    CHECK(P[1] == x);
    CHECK(P[2] == doctest::Approx((3 * x * x - 1) / 2).epsilon(1e-14));
    CHECK(P[3] == doctest::Approx((5 * x * x * x - 3 * x) / 2).epsilon(1e-14));
    CHECK(P[4] == doctest::Approx((35 * std::pow(x, 4) - 30 * x * x + 3) / 8).epsilon(1e-14));
  }
  for (double x : {0.0, 0.4, 1.7, 5.0, 12.5}) {
    const Vec L = laguerre(5, x);
    CHECK(L[0] == 1.0);
    CHECK(L[1] == 1 - x);
    CHECK(L[2] == doctest::Approx((x * x - 4 * x + 2) / 2).epsilon(1e-13));
    CHECK(L[3] == doctest::Approx((-std::pow(x, 3) + 9 * x * x - 18 * x + 6) / 6).epsilon(1e-13));
    CHECK(L[4] ==
          doctest::Approx((std::pow(x, 4) - 16 * std::pow(x, 3) + 72 * x * x - 96 * x + 24) / 24).epsilon(1e-13));
  }
  CHECK(legendre(1, 0.3).size() == 1);
  // ∫_{−1}^{1} P_m P_n = 2/(2n+1) δ_mn and ∫_0^∞ L_m L_n e^{−x} = δ_mn (Simpson; e^{−80} ends the tail).
  const i64 N = 8;
  const Vec leg = gram([&](double x) { return legendre(N, x); }, [](double) { return 1.0; }, -1, 1, 20000, N);
  const Vec lag =
      gram([&](double x) { return laguerre(N, x); }, [](double x) { return std::exp(-x); }, 0, 80, 200000, N);
  double leg_err = 0.0, lag_err = 0.0;
  for (i64 m = 0; m < N; ++m)
    for (i64 n = 0; n < N; ++n) {
      leg_err = std::max(leg_err, std::abs(leg[m * N + n] - (m == n ? 2.0 / (2 * n + 1) : 0.0)));
      lag_err = std::max(lag_err, std::abs(lag[m * N + n] - (m == n ? 1.0 : 0.0)));
    }
  MESSAGE("Gram matrix errors: Legendre " << leg_err << ", Laguerre " << lag_err);
  CHECK(leg_err < 1e-12);
  CHECK(lag_err < 1e-10);
}

TEST_CASE("hippo LegS forward Euler keeps the running mean in c_0") {
  // Oracle 2: A_00 = −1 and B_0 = 1 make c_0[k] = (1 − 1/k)c_0[k−1] + f_k/k, the running mean.
  Generator gen(5);
  const Vec f = randn({2000}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).to_vector<double>();
  HippoProjection h(HippoKind::LegS, 6, Discretization::ForwardEuler);
  double sum = 0.0, worst = 0.0;
  for (std::size_t k = 0; k < f.size(); ++k) {
    h.update(f[k]);
    sum += f[k];
    worst = std::max(worst, std::abs(h.coefficients()[0] - sum / static_cast<double>(k + 1)));
  }
  CHECK(h.steps() == 2000);
  MESSAGE("largest |c_0 - running mean| = " << worst);
  CHECK(worst < 1e-15);
}

TEST_CASE("hippo LegS reconstructs a cubic with error shrinking like 1 over L") {
  // Oracle 3 [verified]: Euler 2.5e-3 (L = 1000) and 6.3e-4 (L = 4000); bilinear 4.3e-3 and 1.1e-3.
  const double e1000 = legs_cubic_rmse(8, 1000, Discretization::ForwardEuler);
  const double e4000 = legs_cubic_rmse(8, 4000, Discretization::ForwardEuler);
  const double b1000 = legs_cubic_rmse(8, 1000, Discretization::Bilinear);
  const double b4000 = legs_cubic_rmse(8, 4000, Discretization::Bilinear);
  MESSAGE("Euler " << e1000 << " " << e4000 << ", bilinear " << b1000 << " " << b4000);
  CHECK(e1000 < 5e-3);
  CHECK(e1000 == doctest::Approx(2.5e-3).epsilon(0.05));
  CHECK(e4000 == doctest::Approx(6.3e-4).epsilon(0.05));
  CHECK(e1000 / e4000 == doctest::Approx(4.0).epsilon(0.1));
  CHECK(b1000 == doctest::Approx(4.3e-3).epsilon(0.05));
  CHECK(b4000 == doctest::Approx(1.1e-3).epsilon(0.05));
}

TEST_CASE("hippo LegT approximation of a two-tone signal improves as N grows") {
  // Oracle 4 [verified]: RMSE over the last window 6.8e-3 at N = 32 and 64, 0.21 at N = 16.
  const double e16 = legt_window_rmse(16), e32 = legt_window_rmse(32), e64 = legt_window_rmse(64);
  MESSAGE("LegT window RMSE: N=16 " << e16 << ", N=32 " << e32 << ", N=64 " << e64);
  CHECK(e16 > 0.1);
  CHECK(e32 < 1e-2);
  CHECK(e64 < 1e-2);
  CHECK(e32 == doctest::Approx(6.8e-3).epsilon(0.05));
  CHECK(e16 == doctest::Approx(0.21).epsilon(0.1));
}

TEST_CASE("hippo LagT ZOH coefficients equal the Laguerre projection integral") {
  // c_n(t) = ∫_0^∞ f(t − u) L_n(u) e^{−u/2} du solves c' = A_LagT c + B f exactly, and ZOH is exact for an input
  // held constant over each step: f = f_k on (t_{k−1}, t_k], f = 0 before 0. So c after K random samples equals
  // Σ_k f_k ∫_{t − t_k}^{t − t_{k−1}} L_n(u) e^{−u/2} du, each piece by Simpson.
  const i64 N = 8, K = 1500;
  const double dt = 2e-3, t = K * dt;
  Generator gen(11);
  const Vec f = randn({K}, DType::Float64, Device::cpu(), 0.0, 1.0, &gen).to_vector<double>();
  HippoProjection h(HippoKind::LagT, N, Discretization::ZOH, dt);
  for (double fk : f) h.update(fk);
  double worst = 0.0;
  for (i64 n = 0; n < N; ++n) {
    auto g = [&](double u) { return laguerre(N, u)[n] * std::exp(-u / 2); };
    double c = 0.0;
    for (i64 k = 1; k <= K; ++k) c += f[k - 1] * simpson(g, t - k * dt, t - (k - 1) * dt, 4);
    worst = std::max(worst, std::abs(h.coefficients()[n] - c));
  }
  MESSAGE("largest |c_n - projection integral| = " << worst);
  CHECK(worst < 1e-10);
}

TEST_CASE("hippo LagT reconstruction of a smooth signal improves as N grows") {
  // f(s) = sin(s) for s ≥ 0 (0 before), ZOH with Δ = 1e-3 up to t = 20: the error of f(t − u), u ∈ [0, 4], falls
  // as more Laguerre functions L_n(u) e^{−u/2} are kept.
  auto lagt_rmse = [](i64 N) {
    const double dt = 1e-3;
    HippoProjection h(HippoKind::LagT, N, Discretization::ZOH, dt);
    for (i64 k = 1; k <= 20000; ++k) h.update(std::sin(k * dt - dt / 2));  // the midpoint of each held step
    Vec u(400), truth(400);
    for (i64 i = 0; i < 400; ++i) {
      u[i] = (i + 0.5) / 100;
      truth[i] = std::sin(20.0 - u[i]);
    }
    return rmse(h.reconstruct(u), truth);
  };
  const double e4 = lagt_rmse(4), e16 = lagt_rmse(16), e32 = lagt_rmse(32);
  MESSAGE("LagT RMSE over u in [0, 4]: N=4 " << e4 << ", N=16 " << e16 << ", N=32 " << e32);
  CHECK(e16 < e4 / 2);
  CHECK(e32 < e16 / 2);
}

TEST_CASE("hippo bad input throws ember::Error naming the op") {
  const StateSpace legs = hippo_matrices(HippoKind::LegS, 3);
  CHECK_THROWS_EMBER(hippo_matrices(static_cast<HippoKind>(7), 4), "hippo_matrices: unknown HiPPO kind 7");
  CHECK_THROWS_EMBER(hippo_matrices(HippoKind::LegS, 0), "hippo_matrices: the state size N must be at least 1");
  CHECK_THROWS_EMBER(hippo_matrices(HippoKind::LegT, 4, 0.0), "hippo_matrices: the window theta must be positive");
  CHECK_THROWS_EMBER(hippo_matrices(HippoKind::LegT, 4, -1.0), "theta");
  CHECK_THROWS_EMBER(legs_rank_correction(-2), "legs_rank_correction");
  CHECK_THROWS_EMBER(legendre(0, 0.5), "legendre");
  CHECK_THROWS_EMBER(laguerre(0, 0.5), "laguerre");
  CHECK_THROWS_EMBER(discretize(legs.A, legs.B, 0.0, Discretization::ZOH), "discretize: the step dt must be positive");
  CHECK_THROWS_EMBER(discretize(legs.A, legs.B, -1e-3, Discretization::Bilinear), "dt");
  CHECK_THROWS_EMBER(discretize(legs.A, legs.B, 0.1, static_cast<Discretization>(9)), "discretize: unknown method 9");
  CHECK_THROWS_EMBER(discretize(zeros({3, 4}, DType::Float64), legs.B, 0.1, Discretization::ZOH),
                     "discretize: expected A [N, N] and B [N], got A [3, 4] and B [3]");
  CHECK_THROWS_EMBER(discretize(legs.A, zeros({4}, DType::Float64), 0.1, Discretization::ZOH),
                     "got A [3, 3] and B [4]");
  CHECK_THROWS_EMBER(discretize(legs.B, legs.B, 0.1, Discretization::ZOH), "got A [3] and B [3]");
  CHECK_THROWS_EMBER(discretize(legs.A, zeros({3, 1}, DType::Float64), 0.1, Discretization::ZOH), "B [3, 1]");
  CHECK_THROWS_EMBER(discretize(zeros({3, 3}, DType::Int64), legs.B, 0.1, Discretization::ZOH), "floating-point");
  // I − ΔA/2 = 0 when A = 2I and Δ = 1; I − ΔA = 0 when A = I.
  CHECK_THROWS_EMBER(
      discretize(eye(2, -1, DType::Float64) * 2.0, ones({2}, DType::Float64), 1.0, Discretization::Bilinear),
      "discretize: I - dt A/2 is singular ([2, 2])");
  CHECK_THROWS_EMBER(
      discretize(eye(2, -1, DType::Float64), ones({2}, DType::Float64), 1.0, Discretization::BackwardEuler),
      "I - dt A is singular");
  CHECK_THROWS_EMBER(HippoProjection(HippoKind::LegT, 0), "N must be at least 1");
  CHECK_THROWS_EMBER(HippoProjection(HippoKind::LegT, 4, Discretization::ZOH, 0.0), "HippoProjection: the step dt");
  CHECK_THROWS_EMBER(HippoProjection(HippoKind::LegT, 4, Discretization::ZOH, 1e-3, -2.0), "theta");
  CHECK_THROWS_EMBER(HippoProjection(static_cast<HippoKind>(-1), 4), "unknown HiPPO kind -1");
  CHECK_THROWS_EMBER(HippoProjection(HippoKind::LegS, 4, static_cast<Discretization>(4)), "unknown method 4");
  CHECK_THROWS_EMBER(HippoProjection(HippoKind::LegS, 4).reconstruct({0.5, 1.5}), "LegS point 1.5 is outside [0, 1]");
  CHECK_THROWS_EMBER(HippoProjection(HippoKind::LegT, 4, Discretization::Bilinear, 1e-3, 2.0).reconstruct({-0.1}),
                     "LegT lag -0.1 is outside [0, 2]");
  CHECK_THROWS_EMBER(HippoProjection(HippoKind::LagT, 4).reconstruct({-1.0}), "LagT lag -1 is negative");
}
