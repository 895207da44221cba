// Tutorial 13: S4 and S4D (Gu, Goel, Ré 2022; Gu, Gupta, Goel, Ré 2022) — one state space model, three views. The
// same linear system x' = Ax + Bu, y = Cx is integrated as an ODE, run as a recurrence after discretisation, and
// applied as a convolution with its kernel; the program checks that the three agree for S4D-Lin (diagonal A, zero-
// order hold) and S4 (HiPPO-LegS as diagonal plus low rank, bilinear), shows why complex modes come with a 2·Re,
// draws the kernels, and times the FFT convolution against the direct one.
// Run: tutorial_13_s4_s4d [--short] [--out DIR]. The page README.md next to this file explains each step.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "ember.h"
#include "layers/ssm/s4.h"
#include "layers/ssm/s4d.h"
#include "train/svg_plot.h"
#include "tutorials/tutorial.h"

using namespace ember;

namespace {

using cd = std::complex<double>;
using Vec = std::vector<double>;
using CVec = std::vector<cd>;

// The test input, a smooth signal of time.
double input(double t) { return std::sin(3.0 * t) + 0.5 * std::cos(7.0 * t + 1.0); }

// Row `row` of a [rows, n] (re, im) pair of tensors as complex numbers.
CVec row_of(const Tensor& re, const Tensor& im, std::int64_t row) {
  const Vec r = select(re, 0, row).contiguous().to_vector<double>();
  const Vec i = select(im, 0, row).contiguous().to_vector<double>();
  CVec z;
  for (std::size_t n = 0; n < r.size(); ++n) z.emplace_back(r[n], i[n]);
  return z;
}

// Channel 0 of a layer in its own coordinates: the N/2 kept modes of x' = Λx − P·s + B u with the real coupling
// s = 2·Re Σ conj(P_n) x_n (P = 0 for S4D), and y = 2·Re Σ C_n x_n.
struct Modes {
  CVec lambda, P, B, C;
};

Modes modes_of(const nn::S4D& m) {
  const CVec lambda = row_of(m.lambda().re, m.lambda().im, 0);
  return {lambda, CVec(lambda.size(), 0.0), CVec(lambda.size(), 1.0), row_of(m.C_re, m.C_im, 0)};
}

Modes modes_of(const nn::S4& m) {
  return {row_of(m.lambda().re, m.lambda().im, 0), row_of(m.P_re, m.P_im, 0), row_of(m.B_re, m.B_im, 0),
          row_of(m.C_re, m.C_im, 0)};
}

// dx/dt of the continuous system at state x and input u.
CVec derivative(const Modes& s, const CVec& x, double u) {
  cd coupling = 0.0;
  for (std::size_t n = 0; n < x.size(); ++n) coupling += std::conj(s.P[n]) * x[n];
  const double real_coupling = 2.0 * coupling.real();
  CVec dx(x.size());
  for (std::size_t n = 0; n < x.size(); ++n) dx[n] = s.lambda[n] * x[n] - s.P[n] * real_coupling + s.B[n] * u;
  return dx;
}

double output(const Modes& s, const CVec& x) {
  cd y = 0.0;
  for (std::size_t n = 0; n < x.size(); ++n) y += s.C[n] * x[n];
  return 2.0 * y.real();
}

// View 1: y(kΔ), k = 1..L, by classical Runge–Kutta with 50 substeps per Δ on the continuous input.
Vec ode_view(const Modes& s, double dt, std::int64_t L) {
  const int sub = 50;
  const double h = dt / sub;
  CVec x(s.lambda.size(), 0.0);
  Vec y;
  double t = 0.0;
  auto axpy = [](const CVec& a, const CVec& b, double c) {
    CVec r(a.size());
    for (std::size_t n = 0; n < a.size(); ++n) r[n] = a[n] + c * b[n];
    return r;
  };
  for (std::int64_t k = 0; k < L; ++k) {
    for (int j = 0; j < sub; ++j, t += h) {
      const CVec k1 = derivative(s, x, input(t)), k2 = derivative(s, axpy(x, k1, h / 2), input(t + h / 2));
      const CVec k3 = derivative(s, axpy(x, k2, h / 2), input(t + h / 2)),
                 k4 = derivative(s, axpy(x, k3, h), input(t + h));
      for (std::size_t n = 0; n < x.size(); ++n) x[n] += h / 6 * (k1[n] + 2.0 * k2[n] + 2.0 * k3[n] + k4[n]);
    }
    y.push_back(output(s, x));
  }
  return y;
}

// The samples the discrete views see: u_k = u((k − ½)Δ), the midpoint of step k (what makes both rules second order).
Vec samples(double dt, std::int64_t L) {
  Vec u;
  for (std::int64_t k = 1; k <= L; ++k) u.push_back(input((static_cast<double>(k) - 0.5) * dt));
  return u;
}

// View 2 for S4D: x ← Ā ⊙ x + B̄ u_k with the layer's zero-order-hold (Ā, B̄).
Vec recurrent_view(const nn::S4D& m, const Vec& u) {
  const auto [A_bar, B_bar] = m.discretize();
  const CVec a = row_of(A_bar.re, A_bar.im, 0), b = row_of(B_bar.re, B_bar.im, 0);
  const Modes s = modes_of(m);
  CVec x(a.size(), 0.0);
  Vec y;
  for (double uk : u) {
    for (std::size_t n = 0; n < x.size(); ++n) x[n] = a[n] * x[n] + b[n] * uk;
    y.push_back(output(s, x));
  }
  return y;
}

// View 2 for S4: x ← Ā₁₁ x + Ā₁₂ conj(x) + B̄₁ u_k with the top blocks of the layer's bilinear (Ā, B̄).
Vec recurrent_view(const nn::S4& m, const Vec& u) {
  const auto [A_bar, B_bar] = m.discretize();
  const std::int64_t N = m.d_state, M = N / 2;
  const CVec a = row_of(reshape(A_bar.re, {m.d_model, N * N}), reshape(A_bar.im, {m.d_model, N * N}), 0);
  const CVec b = row_of(B_bar.re, B_bar.im, 0);
  const Modes s = modes_of(m);
  CVec x(static_cast<std::size_t>(M), 0.0);
  Vec y;
  for (double uk : u) {
    CVec next(x.size());
    for (std::int64_t r = 0; r < M; ++r) {
      next[r] = b[r] * uk;
      for (std::int64_t c = 0; c < M; ++c) next[r] += a[r * N + c] * x[c] + a[r * N + M + c] * std::conj(x[c]);
    }
    x = next;
    y.push_back(output(s, x));
  }
  return y;
}

// View 3: y_k = Σ_{j ≤ k} K̄_j u_{k−j}, the direct causal convolution with the layer's kernel (channel 0).
Vec convolution_view(const Tensor& kernel, const Vec& u) {
  const Vec K = select(kernel, 0, 0).contiguous().to_vector<double>();
  Vec y(u.size(), 0.0);
  for (std::size_t k = 0; k < u.size(); ++k)
    for (std::size_t j = 0; j <= k; ++j) y[k] += K[j] * u[k - j];
  return y;
}

double max_diff(const Vec& a, const Vec& b) {
  double d = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// A Float64 layer config with one channel and N states.
nn::MixerConfig config(std::int64_t N, std::int64_t channels = 1) {
  static Generator gen(13);
  nn::MixerConfig c;
  c.d_model = channels;
  c.options = {{"d_state", static_cast<double>(N)}};
  c.gen = &gen;
  return c;
}

void set_dt(const Tensor& log_dt, double dt) {
  NoGradGuard no_grad;
  Tensor handle = log_dt;
  handle.fill_(std::log(dt));
}

// Section 1: the three views of S4D-Lin and of S4, at two step sizes (halving Δ should quarter the ODE error).
void three_views(tutorial::Claims& claims, nn::S4D& s4d, nn::S4& s4) {
  tutorial::section("1. One SSM, three views: ODE, recurrence, convolution");
  const double horizon = 2.0;
  std::printf("%-8s %7s %6s %22s %22s\n", "layer", "Δ", "L", "max |ODE − recurrence|", "max |recur. − conv.|");
  for (int which = 0; which < 2; ++which) {
    double ode_err[2] = {0, 0}, conv_err = 0.0;
    for (int i = 0; i < 2; ++i) {
      const double dt = i == 0 ? 0.01 : 0.005;
      const auto L = static_cast<std::int64_t>(std::lround(horizon / dt));
      const Vec u = samples(dt, L);
      Vec ode, rec, conv;
      if (which == 0) {
        set_dt(s4d.log_dt, dt);
        ode = ode_view(modes_of(s4d), dt, L), rec = recurrent_view(s4d, u), conv = convolution_view(s4d.kernel(L), u);
      } else {
        set_dt(s4.log_dt, dt);
        ode = ode_view(modes_of(s4), dt, L), rec = recurrent_view(s4, u), conv = convolution_view(s4.kernel(L), u);
      }
      ode_err[i] = max_diff(ode, rec);
      conv_err = std::max(conv_err, max_diff(rec, conv));
      std::printf("%-8s %7.3f %6lld %22.2e %22.2e\n", which == 0 ? "S4D-Lin" : "S4", dt, static_cast<long long>(L),
                  ode_err[i], max_diff(rec, conv));
    }
    const std::string name = which == 0 ? "S4D-Lin (ZOH)" : "S4 (bilinear)";
    claims.check(conv_err < 1e-12, name + ": the convolution with K̄ gives the recurrence's outputs (to 1e-12)");
    claims.check(ode_err[0] / ode_err[1] > 3.0 && ode_err[0] / ode_err[1] < 5.0,
                 name + ": halving Δ divides the distance to the ODE by about 4 (second order)");
  }
  std::printf("largest |Im λ|: S4D-Lin %.1f, S4 %.1f (faster modes, larger Δ·|λ|, larger error)\n",
              max(abs(s4d.A_imag)).item(), max(abs(s4.A_imag)).item());
  const Tensor x = randn({2, 50, 1}, DType::Float64);
  auto state = s4.init_state(2, 50);
  std::vector<Tensor> ys;
  for (std::int64_t t = 0; t < 50; ++t) ys.push_back(s4.step(select(x, 1, t), *state));
  const double layer_err = max(abs(stack(ys, 1) - s4.forward(x))).item();
  std::printf("whole S4 layer (with GELU, Linear, GLU): max |step − forward| = %.1e\n", layer_err);
  claims.check(layer_err < 1e-12, "the S4 layer's step (recurrence) and forward (FFT convolution) agree");
}

// Section 2: complex modes in real tensors, and why the outputs carry a 2·Re.
void complex_convention(tutorial::Claims& claims, nn::S4D& s4d, nn::S4& s4) {
  tutorial::section("2. Complex numbers as (re, im) pairs, and the 2·Re");
  set_dt(s4d.log_dt, 0.1);
  const auto [A_bar, B_bar] = s4d.discretize();
  const CVec a = row_of(A_bar.re, A_bar.im, 0), b = row_of(B_bar.re, B_bar.im, 0), C = modes_of(s4d).C;
  const Vec K = select(s4d.kernel(4), 0, 0).to_vector<double>();
  std::printf("%3s %26s %26s %12s\n", "ℓ", "Σ_kept C B̄ Āˡ", "+ conjugate modes", "kernel()");
  double worst = 0.0;
  for (int l = 0; l < 4; ++l) {
    cd kept = 0.0;
    for (std::size_t n = 0; n < a.size(); ++n) kept += C[n] * b[n] * std::pow(a[n], l);
    const cd both = kept + std::conj(kept);
    std::printf("%3d %12.5f %+12.5fi %12.5f %+12.5fi %12.5f\n", l, kept.real(), kept.imag(), both.real(), both.imag(),
                K[l]);
    worst = std::max(worst, std::abs(both.imag()) + std::abs(both.real() - K[l]));
  }
  claims.check(worst < 1e-12, "kept modes plus their conjugates give a real kernel, 2·Re of the kept sum");
  set_dt(s4.log_dt, 0.1);
  const Complex A = s4.discretize().first;
  const std::int64_t M = s4.d_state / 2;
  const double coupling = max(abs(narrow(narrow(A.re, 1, 0, M), 2, M, M))).item();
  std::printf("S4: largest |Ā₁₂| (kept modes ← conjugates) = %.3f; with P = 0 it is ", coupling);
  NoGradGuard no_grad;
  const Tensor saved = s4.P_re.clone(), saved_im = s4.P_im.clone();
  s4.P_re.fill_(0.0);
  s4.P_im.fill_(0.0);
  const Complex A0 = s4.discretize().first;
  const double uncoupled = max(abs(narrow(narrow(A0.re, 1, 0, M), 2, M, M))).item();
  std::printf("%.1e\n", uncoupled);
  s4.P_re.copy_(saved);
  s4.P_im.copy_(saved_im);
  claims.check(coupling > 1e-3 && uncoupled == 0.0,
               "the low-rank term couples each mode to the conjugates (a diagonal A does not)");
}

// Section 3: the kernels as pictures (ASCII here, SVG with --out).
void draw_kernels(tutorial::Claims& claims, nn::S4D& s4d, nn::S4& s4, const std::string& dir) {
  tutorial::section("3. What the kernels look like");
  const std::int64_t L = 256;
  set_dt(s4d.log_dt, 0.01);
  set_dt(s4.log_dt, 0.01);
  const Vec k4d = select(s4d.kernel(L), 0, 0).to_vector<double>(), k4 = select(s4.kernel(L), 0, 0).to_vector<double>();
  const char* names[2] = {"S4D-Lin", "S4 (LegS)"};
  const Vec* kernels[2] = {&k4d, &k4};
  for (int i = 0; i < 2; ++i) {
    const Vec& K = *kernels[i];
    const double top = *std::max_element(K.begin(), K.end()), bottom = *std::min_element(K.begin(), K.end());
    std::printf("%s, N = 16, Δ = 0.01, ℓ = 0..%lld (every 4th), K̄ in [%.3f, %.3f]:\n", names[i],
                static_cast<long long>(L - 1), bottom, top);
    const int rows = 9, cols = 64;
    for (int r = 0; r < rows; ++r) {  // a bar from 0 to each value, one row per band of height (top − bottom)/rows
      std::string line = "  |";
      const double level = top - (top - bottom) * (r + 0.5) / rows;
      for (int c = 0; c < cols; ++c) {
        const double v = K[static_cast<std::size_t>(c * L / cols)];
        line += (level >= 0.0 ? v >= level : v <= level) ? '#' : ' ';
      }
      std::printf("%s\n", line.c_str());
    }
  }
  // K̄_0 = C B̄ = 2·Re Σ C_n B̄_n: read off discretize(), independent of the generating function kernel() uses.
  const Modes s = modes_of(s4);
  const Complex B_bar = s4.discretize().second;
  const CVec b = row_of(B_bar.re, B_bar.im, 0);
  cd k0 = 0.0;
  for (std::size_t n = 0; n < s.C.size(); ++n) k0 += s.C[n] * b[n];
  std::printf("S4: K̄_0 = %.6f, 2·Re Σ C_n B̄_n = %.6f\n", k4[0], 2.0 * k0.real());
  claims.check(std::abs(k4[0] - 2.0 * k0.real()) < 1e-12,
               "S4's kernel starts at C B̄ (the generating function at work)");
  if (dir.empty()) return;
  Vec ell;
  for (std::int64_t l = 0; l < L; ++l) ell.push_back(static_cast<double>(l));
  train::LinePlot plot("SSM convolution kernels K̄ (channel 0, N = 16, Δ = 0.01)", "ℓ", "K̄_ℓ");
  plot.add("S4D-Lin", ell, k4d).add("S4 (HiPPO-LegS)", ell, k4);
  std::filesystem::create_directories(dir);
  plot.save(dir + "/s4_kernels.svg");
  std::printf("wrote %s/s4_kernels.svg\n", dir.c_str());
}

// Section 4: the convolution by FFT, O(L log L), against the direct sum, O(L²), for H channels.
void convolution_cost(tutorial::Claims& claims, bool quick) {
  tutorial::section("4. FFT convolution against the direct sum");
  const std::int64_t H = 16;
  std::printf("H = %lld channels, Float64 (times: best of 3, not checked; the machine may be busy):\n",
              static_cast<long long>(H));
  std::printf("%6s %14s %14s %10s %12s\n", "L", "direct (ms)", "FFT (ms)", "ratio", "max |diff|");
  double worst = 0.0;
  for (std::int64_t L = 256; L <= (quick ? 2048 : 8192); L *= 2) {
    const Tensor u = randn({H, L}, DType::Float64), k = randn({H, L}, DType::Float64) / static_cast<double>(L);
    const Vec uv = u.to_vector<double>(), kv = k.to_vector<double>();
    Vec direct(uv.size());
    const double t_direct = tutorial::best_seconds([&] {
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t t = 0; t < L; ++t) {
          double acc = 0.0;
          for (std::int64_t j = 0; j <= t; ++j) acc += kv[h * L + j] * uv[h * L + t - j];
          direct[h * L + t] = acc;
        }
    });
    Tensor y;
    const double t_fft = tutorial::best_seconds([&] { y = fft_conv(u, k); });
    const double diff = max_diff(y.to_vector<double>(), direct);
    worst = std::max(worst, diff);
    std::printf("%6lld %14.2f %14.2f %10.1f %12.1e\n", static_cast<long long>(L), 1e3 * t_direct, 1e3 * t_fft,
                t_direct / t_fft, diff);
  }
  claims.check(worst < 1e-12, "the FFT convolution equals the direct causal sum");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = tutorial::short_mode(argc, argv);
  tutorial::Claims claims;
  nn::S4D s4d(config(16));
  nn::S4 s4(config(16));
  s4d.to(DType::Float64);
  s4.to(DType::Float64);
  three_views(claims, s4d, s4);
  complex_convention(claims, s4d, s4);
  draw_kernels(claims, s4d, s4, tutorial::out_dir(argc, argv));
  convolution_cost(claims, quick);
  return claims.exit_code();
}
