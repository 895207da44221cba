/// \file
/// \brief ProgressBar, format_duration and the terminal test.
#include "train/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>

#include <fmt/format.h>

namespace ember::train {

namespace {

constexpr double kRedrawSeconds = 0.1;  // a terminal line is redrawn at most this often
constexpr double kEmaWeight = 0.1;      // weight of the newest step time in the moving average
constexpr int kBarWidth = 24;

/// 950, 12.3k, 4.56M: throughput with an SI suffix.
std::string si(double v) {
  if (v < 1e3) return fmt::format("{:.0f}", v);
  if (v < 1e6) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.2f}M", v / 1e6);
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 3.6e8) return "--:--";
  const long long s = std::llround(seconds);
  const long long h = s / 3600, m = s % 3600 / 60, sec = s % 60;
  return h > 0 ? fmt::format("{}:{:02}:{:02}", h, m, sec) : fmt::format("{:02}:{:02}", m, sec);
}

bool stdout_is_terminal() { return ::isatty(::fileno(stdout)) == 1; }

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

ProgressBar::ProgressBar(std::int64_t total_steps, std::ostream& out, bool is_terminal, Clock clock,
                         std::int64_t start_step)
    : total_(std::max<std::int64_t>(total_steps, 1)),
      out_(out),
      terminal_(is_terminal),
      clock_(std::move(clock)),
      start_time_(clock_()),
      last_time_(start_time_),
      last_step_(start_step),
      last_printed_(start_step),
      ema_(std::numeric_limits<double>::quiet_NaN()) {}

ProgressBar::~ProgressBar() { finish(); }

double ProgressBar::eta_seconds(std::int64_t step) const {
  return ema_ * static_cast<double>(std::max<std::int64_t>(total_ - step, 0));
}

std::string ProgressBar::status(std::int64_t step, double loss, double tokens_per_s, double now) const {
  std::string s = fmt::format("{}/{}  loss {:.4f}", step, total_, loss);
  if (tokens_per_s > 0) s += fmt::format("  {} tok/s", si(tokens_per_s));
  return s +
         fmt::format("  eta {}  elapsed {}", format_duration(eta_seconds(step)), format_duration(now - start_time_));
}

void ProgressBar::update(std::int64_t step, double loss, double tokens_per_s) {
  const double now = clock_();
  if (step > last_step_) {
    const double dt = (now - last_time_) / static_cast<double>(step - last_step_);
    ema_ = std::isnan(ema_) ? dt : kEmaWeight * dt + (1 - kEmaWeight) * ema_;
    last_time_ = now;
    last_step_ = step;
  }
  const bool last = step >= total_;
  if (terminal_) {
    if (last ? step == last_printed_ : now - last_draw_ < kRedrawSeconds) return;
    last_draw_ = now;
    last_printed_ = step;
    const auto filled =
        static_cast<int>(std::clamp<double>(std::round(kBarWidth * double(step) / total_), 0, kBarWidth));
    draw_terminal(fmt::format("[{}{}] {}", std::string(filled, '#'), std::string(kBarWidth - filled, '-'),
                              status(step, loss, tokens_per_s, now)));
    if (last) finish();
    return;
  }
  // Plain lines: whenever the step crosses a multiple of total/20, and at the end.
  const std::int64_t every = std::max<std::int64_t>(1, total_ / 20);
  if (step <= last_printed_ || (step / every == last_printed_ / every && !last)) return;
  last_printed_ = step;
  out_ << "step " << status(step, loss, tokens_per_s, now) << '\n' << std::flush;
}

void ProgressBar::draw_terminal(const std::string& text) {
  // Pad with spaces so a shorter line fully covers the previous one.
  out_ << '\r' << text << std::string(last_width_ > text.size() ? last_width_ - text.size() : 0, ' ') << std::flush;
  last_width_ = text.size();
  line_open_ = true;
}

void ProgressBar::finish() {
  if (!line_open_) return;
  out_ << '\n' << std::flush;
  line_open_ = false;
}

}  // namespace ember::train
