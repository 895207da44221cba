// Tutorial 12: HiPPO (Gu, Dao, Ermon, Rudra, Ré 2020) — memory as polynomial projection. A recurrent model has a
// fixed-size state; HiPPO asks which state remembers a whole signal best, and answers: the N coefficients of the
// signal's projection onto orthogonal polynomials, updated online by a linear ODE c' = Ac + Bf. The program prints
// the (A, B) of the three measures, streams a signal through each, reconstructs it from the coefficients, and
// compares the discretisations. S4 (tutorial 13) starts from the LegS matrix built here.
// Run: tutorial_12_hippo [--short] [--out DIR]. The page README.md next to this file explains each step.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ember.h"
#include "train/svg_plot.h"
#include "tutorials/tutorial.h"

using namespace ember;
using nn::Discretization;
using nn::HippoKind;
using nn::HippoProjection;

namespace {

using Vec = std::vector<double>;
constexpr double kPi = 3.14159265358979323846;

double rmse(const Vec& a, const Vec& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s / static_cast<double>(a.size()));
}

// The signal every section streams: two tones and a narrow bump at s = 0.3.
double signal(double s) {
  return std::sin(2 * kPi * 2 * s) + 0.5 * std::sin(2 * kPi * 5 * s + 1) + std::exp(-std::pow((s - 0.3) / 0.05, 2));
}

void print_matrix(const char* name, const Tensor& M) {
  const Vec v = M.to_vector<double>();
  const std::int64_t rows = M.dim() == 2 ? M.shape()[0] : 1, cols = M.shape()[M.dim() - 1];
  std::printf("  %s =\n", name);
  for (std::int64_t i = 0; i < rows; ++i) {
    std::printf("    ");
    for (std::int64_t j = 0; j < cols; ++j) std::printf("%8.4f", v[i * cols + j]);
    std::printf("\n");
  }
}

// 1. The three measures' matrices, and the structure S4 relies on: LegS is lower triangular (its eigenvalues are its
// diagonal −1, ..., −N) and becomes normal after adding the rank-1 term PPᵀ.
void matrices(tutorial::Claims& claims) {
  tutorial::section("1. The HiPPO matrices (N = 4)");
  const char* names[] = {"LegS", "LegT", "LagT"};
  const HippoKind kinds[] = {HippoKind::LegS, HippoKind::LegT, HippoKind::LagT};
  for (int i = 0; i < 3; ++i) {
    const nn::StateSpace s = nn::hippo_matrices(kinds[i], 4);
    std::printf("%s:\n", names[i]);
    print_matrix("A", s.A);
    print_matrix("B", s.B);
  }
  const std::int64_t N = 16;
  const Vec A = nn::hippo_matrices(HippoKind::LegS, N).A.to_vector<double>();
  const Vec P = nn::legs_rank_correction(N).to_vector<double>();
  double upper = 0.0, diag = 0.0, sym = 0.0;
  for (std::int64_t n = 0; n < N; ++n)
    for (std::int64_t k = 0; k < N; ++k) {
      if (k > n) upper = std::max(upper, std::abs(A[n * N + k]));
      if (k == n) diag = std::max(diag, std::abs(A[n * N + n] + static_cast<double>(n + 1)));
      // the symmetric part of A + PPᵀ, which should be −½ I
      const double s = 0.5 * (A[n * N + k] + A[k * N + n]) + P[n] * P[k] + (n == k ? 0.5 : 0.0);
      sym = std::max(sym, std::abs(s));
    }
  std::printf("N = %lld: max |A_nk| above the diagonal %.1e, max |A_nn + n + 1| %.1e, "
              "max |sym(A + PP^T) + I/2| %.1e\n", static_cast<long long>(N), upper, diag, sym);
  claims.check(upper == 0.0 && diag == 0.0, "LegS is lower triangular with diagonal -1, ..., -N (its eigenvalues)");
  claims.check(sym < 1e-12, "A_LegS + P P^T = -I/2 + a skew-symmetric matrix (normal plus low rank: S4's NPLR form)");
}

// The LegS memory of signal() sampled at L points of [0, 1], reconstructed at P midpoints of the whole history.
struct Reconstruction {
  Vec x, truth, approx;
  double error;
};

Reconstruction legs(std::int64_t N, std::int64_t L, std::int64_t P = 400) {
  HippoProjection h(HippoKind::LegS, N, Discretization::Bilinear);
  for (std::int64_t j = 1; j <= L; ++j) h.update(signal(static_cast<double>(j) / L));
  Reconstruction r;
  for (std::int64_t i = 0; i < P; ++i) {
    r.x.push_back((i + 0.5) / P);
    r.truth.push_back(signal(r.x.back()));
  }
  r.approx = h.reconstruct(r.x);
  r.error = rmse(r.approx, r.truth);
  return r;
}

// The LegS coefficients after streaming signal() over [0, 1] in L samples.
Vec legs_coefficients(std::int64_t N, std::int64_t L) {
  HippoProjection h(HippoKind::LegS, N, Discretization::Bilinear);
  for (std::int64_t j = 1; j <= L; ++j) h.update(signal(static_cast<double>(j) / L));
  return h.coefficients();
}

// 2. LegS: a uniform measure over the whole history, so a fixed number of coefficients describes all of it. Two
// errors add up: projecting onto N polynomials (falls with N) and the discrete steps (falls like 1/L).
std::vector<Reconstruction> legs_memory(tutorial::Claims& claims, std::int64_t L) {
  tutorial::section("2. LegS remembers the whole history");
  std::vector<Reconstruction> runs, fine;
  std::printf("%4s %14s %14s\n", "N", "L = 500", ("L = " + std::to_string(L)).c_str());
  for (std::int64_t N : {4, 8, 16, 32, 64}) {
    runs.push_back(legs(N, 500));
    fine.push_back(legs(N, L));
    std::printf("%4lld %14.2e %14.2e\n", static_cast<long long>(N), runs.back().error, fine.back().error);
  }
  bool falling = true;
  for (std::size_t i = 1; i < fine.size(); ++i) falling = falling && fine[i].error < fine[i - 1].error / 1.5;
  claims.check(falling, "with enough samples every doubling of N cuts the error by more than 1.5x");
  claims.check(fine[4].error < runs[4].error / 2, "at N = 64 the step error dominates: more samples, less error");
  // Timescale invariance: LegS has no step size, so the same signal at a different sampling rate leaves the
  // same coefficients (up to the step error).
  const Vec a = legs_coefficients(32, L / 2), b = legs_coefficients(32, L);
  double diff = 0.0, size = 0.0;
  for (std::size_t n = 0; n < a.size(); ++n) {
    diff = std::max(diff, std::abs(a[n] - b[n]));
    size = std::max(size, std::abs(b[n]));
  }
  std::printf("N = 32: max |c(L = %lld) - c(L = %lld)| = %.2e, max |c| = %.2f\n", static_cast<long long>(L / 2),
              static_cast<long long>(L), diff, size);
  claims.check(diff < 0.01 * size, "LegS has no step size: the signal at half the rate leaves the same coefficients");
  return fine;
}

// The error of reconstructing f(1 − u) for u in [0, window] after streaming signal() over [0, 1] in L steps.
double legt_window_error(std::int64_t N, std::int64_t L, double window, Discretization method) {
  HippoProjection h(HippoKind::LegT, N, method, 1.0 / L, window);
  for (std::int64_t k = 1; k <= L; ++k) h.update(signal(static_cast<double>(k) / L));
  Vec u, truth;
  for (int i = 0; i < 200; ++i) {
    u.push_back(window * (i + 0.5) / 200);
    truth.push_back(signal(1.0 - u.back()));
  }
  return rmse(h.reconstruct(u), truth);
}

// 3. LegT: a sliding window of width θ. With the same N it describes the recent past far better than LegS, which
// spreads its N coefficients over everything seen.
void legt_window(tutorial::Claims& claims, std::int64_t L) {
  tutorial::section("3. LegT remembers a sliding window");
  const double theta = 0.25;
  const std::int64_t N = 16;
  const double legt = legt_window_error(N, L, theta, Discretization::Bilinear);
  const Reconstruction all = legs(N, L, 400);
  Vec tail_truth(all.truth.begin() + 300, all.truth.end()), tail(all.approx.begin() + 300, all.approx.end());
  const double legs_tail = rmse(tail, tail_truth);
  std::printf("N = %lld, last quarter of the signal: LegT (theta = %.2f) RMSE %.2e, LegS RMSE %.2e\n",
              static_cast<long long>(N), theta, legt, legs_tail);
  claims.check(legt < legs_tail / 10, "on its window LegT is over 10x more accurate than LegS with the same N");
}

// 4. LagT: an exponentially decaying measure, sharp on the recent past and blurred on the old. The error is measured
// in bands of lag and averaged over five end times, since each end time sees the signal at another phase.
void lagt_decay(tutorial::Claims& claims) {
  tutorial::section("4. LagT remembers the recent past best");
  const double dt = 1e-2;
  const std::int64_t N = 32, every = 2000, bands = 5;
  auto slow = [](double s) { return std::sin(s) + 0.5 * std::sin(2.3 * s); };
  HippoProjection h(HippoKind::LagT, N, Discretization::ZOH, dt);
  Vec band_error(bands, 0.0);
  for (std::int64_t k = 1; k <= 5 * every; ++k) {
    h.update(slow(k * dt - dt / 2));
    if (k % every != 0) continue;
    for (std::int64_t b = 0; b < bands; ++b) {
      Vec u, truth;
      for (int i = 0; i < 100; ++i) {
        u.push_back(2.0 * b + 2.0 * (i + 0.5) / 100);
        truth.push_back(slow(k * dt - u.back()));
      }
      band_error[b] += rmse(h.reconstruct(u), truth) / 5;
    }
  }
  std::printf("N = %lld, mean RMSE by lag:", static_cast<long long>(N));
  for (std::int64_t b = 0; b < bands; ++b) std::printf("  [%d, %d] %.2e", static_cast<int>(2 * b), static_cast<int>(2 * b + 2), band_error[b]);
  std::printf("\n");
  claims.check(band_error[0] < band_error[4] / 1.5, "the error at lags 8-10 is over 1.5x that at lags 0-2");
}

// 5. From the ODE to a recurrence: the same LegT memory with four discretisations, at a fine and a coarse step.
void discretisations(tutorial::Claims& claims) {
  tutorial::section("5. Discretisation");
  const char* names[] = {"forward Euler", "backward Euler", "bilinear", "ZOH"};
  const Discretization methods[] = {Discretization::ForwardEuler, Discretization::BackwardEuler,
                                    Discretization::Bilinear, Discretization::ZOH};
  const std::int64_t N = 32;
  const double theta = 0.25;
  std::printf("LegT, N = %lld, window %.2f: RMSE over the window\n%16s %14s %14s\n", static_cast<long long>(N), theta,
              "", "L = 4000", "L = 200");
  double err[4][2];
  for (int m = 0; m < 4; ++m) {
    err[m][0] = legt_window_error(N, 4000, theta, methods[m]);
    err[m][1] = legt_window_error(N, 200, theta, methods[m]);
    std::printf("%16s %14.2e %14.2e\n", names[m], err[m][0], err[m][1]);
  }
  claims.check(!(err[0][1] < 1.0), "forward Euler blows up at the coarse step (its |eigenvalues| leave the unit circle)");
  claims.check(err[2][1] < 0.5 && err[3][1] < 0.5, "bilinear and ZOH stay accurate at the coarse step");
  claims.check(err[2][0] < 0.05 && err[3][0] < 0.05, "at the fine step bilinear and ZOH agree with the signal");
}

// Writes the pictures: the signal and its LegS reconstructions.
void save_pictures(const std::string& dir, const std::vector<Reconstruction>& runs) {
  if (dir.empty()) return;
  train::LinePlot plot("HiPPO-LegS: a signal and its reconstruction from N coefficients", "fraction of history",
                       "f");
  plot.add("signal", runs[0].x, runs[0].truth);
  plot.add("N = 8", runs[1].x, runs[1].approx);
  plot.add("N = 32", runs[3].x, runs[3].approx);
  plot.save(dir + "/hippo_legs.svg");
  std::printf("wrote %s/hippo_legs.svg\n", dir.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  tutorial::Claims claims;
  matrices(claims);
  const auto runs = legs_memory(claims, quick ? 2000 : 8000);
  legt_window(claims, quick ? 2000 : 8000);
  lagt_decay(claims);
  discretisations(claims);
  save_pictures(tutorial::out_dir(argc, argv), runs);
  return claims.exit_code();
}
