/// \file
/// \brief The sequence-mixer benchmarks of issue 4: cost against the sequence length T, at B = 1, 4 heads of
/// dim 32 (d_model 128), with a plain timing loop (median of N repetitions after one warm-up run).
///
///   sweep    every registered mixer: one forward and backward of a full layer (x [1, T, 128] requires grad,
///            y = mixer.forward(x), sum(y ⊙ g).backward()) for T = 256, 512, ..., 16384: median ms and the
///            peak extra tensor memory (memory_stats().peak_bytes − the bytes live before, over the warm-up
///            run); then time(16384) / time(2048) of the linear-time mixers against the target ≤ 10.
///   kernels  nn::flash_attention against nn::naive_attention on q, k, v [1, 4, T, 32], causal, forward and
///            backward: targets peak(flash) < peak(naive) / 8 at T = 16384, time(flash) ≤ 1.2 time(naive) at
///            T = 1024 and time(flash) < time(naive) from T = 4096.
///   decode   the cost of one `step` at position p₁ = 100 and p₂ = 100 + 15·256 = 3940 (the same offset in
///            a 256-token chunk and a 64-token block): p₂/p₁ ≈ 1 for the fixed-state mixers.
///   point    one kernel at one T as a JSON line (median ms, peak tensor MiB, RSS growth MiB), for
///            bench/compare_pytorch.py's `attention` mode.
///
/// A point whose time or memory, extrapolated quadratically from the previous T, would exceed --max-point-s or
/// --max-mem-gib is printed as "skipped (reason)"; one whose peak exceeds --single-rep-gib is timed once. Outputs go to
/// --out: NAME.csv and NAME.svg (log-log time and memory against T, one line per mixer, drawn with train::LinePlot).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "ember.h"

namespace {

using namespace ember;

constexpr std::int64_t kHeads = 4, kHeadDim = 32, kModel = kHeads * kHeadDim;
constexpr double kMiB = 1024.0 * 1024.0;

/// The run-wide settings (command-line flags).
struct Settings {
  std::vector<std::int64_t> lengths{256, 512, 1024, 2048, 4096, 8192, 16384};  ///< the T of the sweep
  int reps = 5;                ///< timed repetitions at most (after the warm-up run)
  double point_budget_s = 10;  ///< fewer repetitions when they would take longer than this (at least one)
  double max_point_s = 60;     ///< skip a point whose extrapolated warm-up run takes longer
  double max_mem_gib = 16;     ///< skip a point whose extrapolated peak extra memory is larger
  double single_rep_gib = 4;   ///< one timed repetition only for a point whose peak extra memory is larger
  int threads = 2;             ///< set_num_threads
  std::string out = ".";       ///< the folder for the CSV and SVG files
};

/// One measured (or skipped) point.
struct Point {
  std::int64_t T = 0;    ///< the sequence length
  double ms = NAN;       ///< median wall time of one run
  double mib = NAN;      ///< peak extra tensor memory of one run
  int reps = 0;          ///< timed repetitions behind `ms`
  std::string note;      ///< per-T options, or why the point was skipped
  bool skipped = false;  ///< not run (see note)
};

/// Wall seconds from `start` to now.
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The median of v (the mean of the middle two for an even count).
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// A field of /proc/self/status in MiB ("VmRSS": resident now, "VmHWM": the peak since the last reset).
double status_mib(const std::string& field) {
  std::ifstream f("/proc/self/status");
  std::string key;
  double kib = NAN;
  while (f >> key) {
    if (key == field + ":") {
      f >> kib;
      break;
    }
    f.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return kib / 1024;
}

/// Resets VmHWM to VmRSS (Linux ≥ 4.0: write "5" to /proc/self/clear_refs), so that VmHWM − the VmRSS before
/// is the peak RSS growth of what runs next. False where the kernel refuses it.
bool reset_peak_rss() { return static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5" << std::flush); }

/// Runs `run` once to warm up, measuring the peak extra tensor memory, then times it min(reps, budget / warm-up
/// time) times (at least once; once only above --single-rep-gib) and keeps the median.
Point measure(const std::function<void()>& run, const Settings& s) {
  Point p;
  reset_peak_memory();
  const std::int64_t before = memory_stats().current_bytes;
  auto start = std::chrono::steady_clock::now();
  run();
  const double warm_s = seconds_since(start);
  p.mib = static_cast<double>(memory_stats().peak_bytes - before) / kMiB;
  p.reps = std::clamp(static_cast<int>(s.point_budget_s / std::max(warm_s, 1e-9)), 1, s.reps);
  if (p.mib > s.single_rep_gib * 1024) p.reps = 1;
  std::vector<double> times;
  for (int i = 0; i < p.reps; ++i) {
    start = std::chrono::steady_clock::now();
    run();
    times.push_back(1e3 * seconds_since(start));
  }
  p.ms = median(times);
  return p;
}

/// Why the point at T should be skipped, extrapolating the last measured point quadratically (the worst growth
/// of any mixer here); nullopt to run it.
std::optional<std::string> skip_reason(const std::vector<Point>& done, std::int64_t T, const Settings& s) {
  auto last = std::find_if(done.rbegin(), done.rend(), [](const Point& p) { return !p.skipped; });
  if (last == done.rend()) return std::nullopt;
  const double growth = std::pow(static_cast<double>(T) / static_cast<double>(last->T), 2);
  const double est_s = last->ms * 1e-3 * growth, est_gib = last->mib * growth / 1024;
  if (est_gib > s.max_mem_gib)
    return fmt::format("skipped (estimated {:.1f} GiB > --max-mem-gib {})", est_gib, s.max_mem_gib);
  if (est_s > s.max_point_s)
    return fmt::format("skipped (estimated {:.0f} s > --max-point-s {})", est_s, s.max_point_s);
  return std::nullopt;
}

/// Measures `run_at(T)` for every T of the sweep (or skips it), printing each point as it completes.
std::vector<Point> sweep_lengths(const std::string& name, const Settings& s,
                                 const std::function<Point(std::int64_t)>& run_at) {
  std::vector<Point> points;
  for (std::int64_t T : s.lengths) {
    if (auto reason = skip_reason(points, T, s)) {
      points.push_back({T, NAN, NAN, 0, *reason, true});
    } else {
      points.push_back(run_at(T));
      points.back().T = T;
    }
    const Point& p = points.back();
    if (p.skipped)
      std::printf("  %-16s T=%-6lld %s\n", name.c_str(), static_cast<long long>(T), p.note.c_str());
    else
      std::printf("  %-16s T=%-6lld %10.2f ms %9.1f MiB  (%d reps%s%s)\n", name.c_str(), static_cast<long long>(T),
                  p.ms, p.mib, p.reps, p.note.empty() ? "" : "; ", p.note.c_str());
    std::fflush(stdout);
  }
  return points;
}

// --- sweep: every registered mixer ---

/// The per-T options of `name` and how to print them: sparse (strided) gets stride l = its block b (8) times
/// round(√T / b), the paper's l ≈ √T; every mixer gets max_len = T (GAU's fixed 1/n is then 1/T).
std::map<std::string, double> options_at(const std::string& name, std::int64_t T, std::string& note) {
  if (name != "sparse") return {};
  const std::int64_t b = 8;
  const std::int64_t l = b * std::max<std::int64_t>(1, std::llround(std::sqrt(static_cast<double>(T)) / b));
  note = fmt::format("strided, stride l = {} ≈ √T, block {}", l, b);
  return {{"pattern", 2}, {"stride", static_cast<double>(l)}, {"block", static_cast<double>(b)}};
}

/// One forward and backward of mixer `name` over x [1, T, 128], measured.
Point mixer_point(const std::string& name, std::int64_t T, const Settings& s) {
  nn::MixerConfig config;
  config.d_model = kModel;
  config.n_heads = kHeads;
  config.max_len = T;
  std::string note;
  config.options = options_at(name, T, note);
  Generator gen(1);
  config.gen = &gen;
  const auto mixer = nn::make_mixer(name, config);
  Tensor x = randn({1, T, kModel}, DType::Float32, Device::cpu(), 0, 1, &gen);
  x.requires_grad_();
  const Tensor g = randn({1, T, kModel}, DType::Float32, Device::cpu(), 0, 1, &gen);
  Point p = measure(
      [&] {
        mixer->zero_grad();
        x.set_grad(Tensor());
        sum(mixer->forward(x) * g).backward();
      },
      s);
  p.note = note;
  return p;
}

// --- kernels: nn::flash_attention against nn::naive_attention ---

using Kernel = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, bool);

/// One forward and backward of `kernel` on q, k, v [1, 4, T, 32], causal, measured.
Point kernel_point(Kernel kernel, std::int64_t T, const Settings& s) {
  Generator gen(2);
  const Shape shape{1, kHeads, T, kHeadDim};
  std::vector<Tensor> qkv;
  for (int i = 0; i < 3; ++i) {
    qkv.push_back(randn(shape, DType::Float32, Device::cpu(), 0, 1, &gen));
    qkv.back().requires_grad_();
  }
  const Tensor g = randn(shape, DType::Float32, Device::cpu(), 0, 1, &gen);
  return measure(
      [&] {
        for (Tensor& t : qkv) t.set_grad(Tensor());
        sum(kernel(qkv[0], qkv[1], qkv[2], true) * g).backward();
      },
      s);
}

// --- output: table, CSV, plot ---

using Results = std::map<std::string, std::vector<Point>>;

/// Two markdown tables, median ms then peak extra MiB: one row per series, one column per T.
void print_table(const Results& results, const Settings& s) {
  for (const bool time : {true, false}) {
    std::string head = time ? "| ms |" : "| MiB |", rule = "|---|";
    for (std::int64_t T : s.lengths) head += fmt::format(" T = {} |", T), rule += "---|";
    std::printf("\n%s\n%s\n", head.c_str(), rule.c_str());
    for (const auto& [name, points] : results) {
      std::string row = "| " + name + " |";
      for (const Point& p : points)
        row += p.skipped ? " skipped |" : time ? fmt::format(" {:.2f} |", p.ms) : fmt::format(" {:.1f} |", p.mib);
      std::printf("%s\n", row.c_str());
    }
  }
}

/// NAME.csv: name,T,ms,peak_mib,reps,note (ms and peak_mib empty for a skipped point).
void write_csv(const Results& results, const std::string& path) {
  std::ofstream f(path);
  f << "name,T,ms,peak_mib,reps,note\n";
  for (const auto& [name, points] : results)
    for (const Point& p : points)
      f << fmt::format("{},{},{},{},{},\"{}\"\n", name, p.T, p.skipped ? "" : fmt::format("{:.4f}", p.ms),
                       p.skipped ? "" : fmt::format("{:.3f}", p.mib), p.reps, p.note);
  EMBER_CHECK(f.good(), "bench_mixers: could not write " + path);
}

/// NAME.svg: time against T (log-log) in the first panel, peak extra memory in the second.
void write_plot(const Results& results, const std::string& title, const std::string& path) {
  train::LinePlot plot(title, "sequence length T", "forward + backward, ms");
  plot.log_x().log_y();
  auto column = [](const std::vector<Point>& points, double Point::*field) {
    std::vector<double> out;
    for (const Point& p : points) out.push_back(p.*field);
    return out;
  };
  auto lengths = [](const std::vector<Point>& points) {
    std::vector<double> out;
    for (const Point& p : points) out.push_back(static_cast<double>(p.T));
    return out;
  };
  for (const auto& [name, points] : results) plot.add(name, lengths(points), column(points, &Point::ms));
  plot.add_panel("peak extra tensor memory, MiB", true);
  for (const auto& [name, points] : results) plot.add(name, lengths(points), column(points, &Point::mib));
  plot.save(path, 800, 420);
}

/// Table, CSV and plot of one command's results under --out.
void report(const Results& results, const Settings& s, const std::string& stem, const std::string& title) {
  print_table(results, s);
  std::filesystem::create_directories(s.out);
  const std::string base = (std::filesystem::path(s.out) / stem).string();
  write_csv(results, base + ".csv");
  write_plot(results, title, base + ".svg");
  std::printf("\nwrote %s.csv and %s.svg\n", base.c_str(), base.c_str());
}

/// The point at T, or null when T was not in the sweep or was skipped.
const Point* at(const std::vector<Point>& points, std::int64_t T) {
  for (const Point& p : points)
    if (p.T == T && !p.skipped) return &p;
  return nullptr;
}

/// "met" / "MISSED" / "n/a (reason)" for a target.
std::string verdict(bool measured, bool met) { return measured ? (met ? "met" : "MISSED") : "n/a (not measured)"; }

// --- the commands ---

/// The first line of /proc/loadavg ("?" where there is none).
std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string line;
  std::getline(f, line);
  return line.empty() ? "?" : line;
}

/// The conditions line printed before every table: threads, sizes, how time and memory are measured, the load.
void print_conditions(const Settings& s) {
  std::printf(
      "threads %d; B = 1, %lld heads of dim %lld (d_model %lld); Float32 CPU; timing: plain loop, median "
      "of up to %d runs after one warm-up run (fewer when they would exceed %g s, one above %g GiB); memory: "
      "memory_stats() peak - live bytes before, over the warm-up run\nload: %s\n",
      s.threads, static_cast<long long>(kHeads), static_cast<long long>(kHeadDim), static_cast<long long>(kModel),
      s.reps, s.point_budget_s, s.single_rep_gib, load_average().c_str());
}

/// The registered mixers, or those of `only`; throws naming an unknown one.
std::vector<std::string> selected_mixers(const std::vector<std::string>& only) {
  const std::vector<std::string> all = nn::mixer_names();
  for (const std::string& name : only)
    if (std::find(all.begin(), all.end(), name) == all.end())
      throw Error(fmt::format("bench_mixers: unknown mixer '{}' (known: {})", name, fmt::join(all, ", ")));
  return only.empty() ? all : only;
}

/// `sweep`: every mixer (or those of `only`) over the lengths, then the linear-time ratios.
void run_sweep(const Settings& s, const std::vector<std::string>& only) {
  const std::vector<std::string> names = selected_mixers(only);
  print_conditions(s);
  Results results;
  for (const std::string& name : names)
    results[name] = sweep_lengths(name, s, [&](std::int64_t T) { return mixer_point(name, T, s); });
  report(results, s, "mixers", "sequence mixers: forward + backward against T (B = 1, 4 heads x 32)");
  std::printf(
      "\nlinear-time mixers: time(16384) / time(2048), target <= 10\n| mixer | ratio | target |\n|---|---|---|\n");
  for (const std::string name :
       {"linear", "performer", "norm_attention", "mixed_chunk", "s4d", "s4", "mamba", "rwkv", "retnet", "lru"}) {
    if (!results.count(name)) continue;
    const Point *a = at(results[name], 2048), *b = at(results[name], 16384);
    const double r = a && b ? b->ms / a->ms : NAN;
    std::printf("| %s | %.2f | %s |\n", name.c_str(), r, verdict(a && b, r <= 10).c_str());
  }
}

/// `kernels`: flash against naive over the lengths, then the three FlashAttention targets.
void run_kernels(const Settings& s) {
  print_conditions(s);
  Results results;
  results["flash"] = sweep_lengths("flash", s, [&](std::int64_t T) { return kernel_point(nn::flash_attention, T, s); });
  results["naive"] = sweep_lengths("naive", s, [&](std::int64_t T) { return kernel_point(nn::naive_attention, T, s); });
  report(results, s, "kernels", "flash_attention vs naive_attention, q, k, v [1, 4, T, 32], causal, fwd + bwd");
  const auto &f = results["flash"], &n = results["naive"];
  std::printf(
      "\nFlashAttention kernel against the naive kernel\n| check | flash | naive | ratio | target |\n"
      "|---|---|---|---|---|\n");
  if (const Point* a = at(f, 16384), *b = at(n, 16384); a && b)
    std::printf("| peak memory, T = 16384 | %.1f MiB | %.1f MiB | %.4f | < 1/8: %s |\n", a->mib, b->mib,
                a->mib / b->mib, verdict(true, a->mib < b->mib / 8).c_str());
  else
    std::printf("| peak memory, T = 16384 | | | | %s |\n", verdict(false, false).c_str());
  if (const Point* a = at(f, 1024), *b = at(n, 1024); a && b)
    std::printf("| time, T = 1024 | %.2f ms | %.2f ms | %.2f | <= 1.2: %s |\n", a->ms, b->ms, a->ms / b->ms,
                verdict(true, a->ms <= 1.2 * b->ms).c_str());
  for (std::int64_t T : s.lengths) {
    const Point *a = at(f, T), *b = at(n, T);
    if (T < 4096 || !a || !b) continue;
    std::printf("| time, T = %lld | %.2f ms | %.2f ms | %.2f | < 1: %s |\n", static_cast<long long>(T), a->ms, b->ms,
                a->ms / b->ms, verdict(true, a->ms < b->ms).c_str());
  }
}

/// How the step cost of `name` should depend on the position.
std::string decode_kind(const std::string& name) {
  static const std::map<std::string, std::string> kinds{{"linear", "fixed state"},
                                                        {"performer", "fixed state"},
                                                        {"norm_attention", "fixed state"},
                                                        {"mixed_chunk", "fixed state (chunk of 256)"},
                                                        {"diag_attention", "bounded window (block of 64)"},
                                                        {"sparse", "l + p/l keys (strided, l = 64)"},
                                                        {"softmax", "KV cache: grows with p"},
                                                        {"flash_attention", "KV cache: grows with p"},
                                                        {"gau", "KV cache: grows with p"},
                                                        {"s4d", "fixed state"},
                                                        {"s4", "fixed state"},
                                                        {"mamba", "fixed state"},
                                                        {"rwkv", "fixed state"},
                                                        {"retnet", "fixed state"},
                                                        {"lru", "fixed state"}};
  const auto it = kinds.find(name);
  return it == kinds.end() ? "-" : it->second;
}

/// The median µs of one step over `n` steps from the state's current position.
double time_steps(const nn::SequenceMixer& mixer, nn::MixerState& state, const Tensor& x_t, int n) {
  std::vector<double> times;
  for (int i = 0; i < n; ++i) {
    const auto start = std::chrono::steady_clock::now();
    mixer.step(x_t, state);
    times.push_back(1e6 * seconds_since(start));
  }
  return median(times);
}

/// `decode`: the step cost at p1 and p2 of every mixer (or those of `only`).
void run_decode(const Settings& s, const std::vector<std::string>& only) {
  const std::vector<std::string> names = selected_mixers(only);
  std::printf("threads %d; B = 1, %lld heads of dim %lld (d_model %lld); Float32 CPU\nload: %s\n", s.threads,
              static_cast<long long>(kHeads), static_cast<long long>(kHeadDim), static_cast<long long>(kModel),
              load_average().c_str());
  const std::int64_t p1 = 100, p2 = 100 + 15 * 256, max_len = 4200;
  const int n = 32;
  std::printf(
      "\ndecoding: median µs of one step over %d steps from position p1 = %lld and p2 = %lld (max_len %lld; "
      "sparse strided with stride 64 ≈ √4096, block 8); target p2/p1 <= 1.3 for the fixed-state mixers\n"
      "| mixer | state | µs at p1 | µs at p2 | p2 / p1 | target |\n|---|---|---|---|---|---|\n",
      n, static_cast<long long>(p1), static_cast<long long>(p2), static_cast<long long>(max_len));
  NoGradGuard no_grad;
  for (const std::string& name : names) {
    nn::MixerConfig config;
    config.d_model = kModel;
    config.n_heads = kHeads;
    config.max_len = max_len;
    if (name == "sparse") config.options = {{"pattern", 2}, {"stride", 64}, {"block", 8}};
    Generator gen(3);
    config.gen = &gen;
    const auto mixer = nn::make_mixer(name, config);
    const Tensor x_t = randn({1, kModel}, DType::Float32, Device::cpu(), 0, 1, &gen);
    auto state = mixer->init_state(1, max_len);
    while (state->position < p1) mixer->step(x_t, *state);
    const double a = time_steps(*mixer, *state, x_t, n);
    while (state->position < p2) mixer->step(x_t, *state);
    const double b = time_steps(*mixer, *state, x_t, n);
    const std::string kind = decode_kind(name);
    const bool fixed = kind.rfind("fixed", 0) == 0;
    std::printf("| %s | %s | %.1f | %.1f | %.2f | %s |\n", name.c_str(), kind.c_str(), a, b, b / a,
                fixed ? verdict(true, b / a <= 1.3).c_str() : "-");
  }
}

/// `point`: one kernel at one T, with the process's peak RSS growth, as one JSON line.
void run_point(const Settings& s, const std::string& kernel, std::int64_t T) {
  EMBER_CHECK(kernel == "flash" || kernel == "naive",
              "bench_mixers point: kernel must be flash or naive, got '" + kernel + "'");
  const double rss_before = status_mib("VmRSS");
  const bool reset = reset_peak_rss();
  const Point p = kernel_point(kernel == "flash" ? nn::flash_attention : nn::naive_attention, T, s);
  std::printf(
      "{\"kernel\": \"%s\", \"T\": %lld, \"threads\": %d, \"ms\": %.4f, \"reps\": %d, "
      "\"tensor_peak_mib\": %.3f, \"rss_growth_mib\": %.3f, \"rss_peak_reset\": %s}\n",
      kernel.c_str(), static_cast<long long>(T), s.threads, p.ms, p.reps, p.mib, status_mib("VmHWM") - rss_before,
      reset ? "true" : "false");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ember's sequence-mixer benchmarks (issue 4): time and memory against T"};
  app.require_subcommand(1);
  Settings s;
  std::vector<std::string> only;
  std::string kernel = "flash";
  std::int64_t point_T = 4096;
  auto add_threads_reps = [&](CLI::App* c) {
    c->add_option("--threads", s.threads, "threads (set_num_threads)")->check(CLI::PositiveNumber);
    c->add_option("--reps", s.reps, "timed repetitions at most (after one warm-up run)")->check(CLI::PositiveNumber);
  };
  auto add_sweep_flags = [&](CLI::App* c) {
    add_threads_reps(c);
    c->add_option("--lengths", s.lengths, "sequence lengths T")->check(CLI::PositiveNumber);
    c->add_option("--point-budget-s", s.point_budget_s, "fewer repetitions when they would take longer");
    c->add_option("--max-point-s", s.max_point_s, "skip a point whose estimated run takes longer");
    c->add_option("--max-mem-gib", s.max_mem_gib, "skip a point whose estimated peak memory is larger");
    c->add_option("--single-rep-gib", s.single_rep_gib, "one timed repetition above this peak memory");
    c->add_option("--out", s.out, "folder for NAME.csv and NAME.svg");
  };
  auto* sweep = app.add_subcommand("sweep", "every registered mixer, forward + backward against T");
  add_sweep_flags(sweep);
  sweep->add_option("--only", only, "these mixers only");
  auto* kernels = app.add_subcommand("kernels", "flash_attention vs naive_attention against T");
  add_sweep_flags(kernels);
  auto* decode = app.add_subcommand("decode", "step cost at position 100 and 3940");
  decode->add_option("--threads", s.threads, "threads (set_num_threads)")->check(CLI::PositiveNumber);
  decode->add_option("--only", only, "these mixers only");
  auto* point = app.add_subcommand("point", "one kernel at one T, as a JSON line");
  add_threads_reps(point);
  point->add_option("kernel", kernel, "flash or naive")->required();
  point->add_option("T", point_T, "sequence length")->required()->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  try {
    ember::set_num_threads(s.threads);
    if (*sweep) run_sweep(s, only);
    if (*kernels) run_kernels(s);
    if (*decode) run_decode(s, only);
    if (*point) run_point(s, kernel, point_T);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
