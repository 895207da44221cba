/// \file
/// \brief ProgressBar: training progress on a terminal (one line redrawn after a carriage return, at most about ten
/// times a second) or as plain lines in a log (about twenty in a run), with loss, tokens/s, elapsed
/// time and an ETA.
///
/// The ETA is (total - step) times an exponential moving average of the time per step,
/// ema <- 0.1 * dt + 0.9 * ema, so it follows a run that speeds up or slows down without jumping at
/// every step.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>

namespace ember::train {

/// "mm:ss" below an hour, "h:mm:ss" from there (rounded to the second); "--:--" for a negative,
/// NaN or infinite time.
std::string format_duration(double seconds);

/// True when standard output is a terminal (isatty).
bool stdout_is_terminal();

/// Seconds from a monotonic clock.
double monotonic_seconds();

/// Shows the progress of a loop of `total_steps` steps.
class ProgressBar {
 public:
  /// A clock in seconds; tests inject a fake one.
  using Clock = std::function<double()>;

  /// Writes to `out`: one redrawn line when `is_terminal` (e.g. stdout_is_terminal()), else plain
  /// lines every max(1, total_steps / 20) steps and at the last step. `start_step` is where a resumed
  /// run begins.
  ProgressBar(std::int64_t total_steps, std::ostream& out, bool is_terminal, Clock clock = monotonic_seconds,
              std::int64_t start_step = 0);
  /// Ends a terminal line that finish() did not.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Reports that `step` steps are done, with the current loss and throughput.
  void update(std::int64_t step, double loss, double tokens_per_s);
  /// Ends the terminal line (idempotent; update() at the last step does it too).
  void finish();

  /// Seconds per step as the moving average estimates it (NaN before the first update).
  double seconds_per_step() const { return ema_; }
  /// The estimated seconds left after `step` steps.
  double eta_seconds(std::int64_t step) const;

 private:
  std::string status(std::int64_t step, double loss, double tokens_per_s, double now) const;
  void draw_terminal(const std::string& text);

  std::int64_t total_;
  std::ostream& out_;
  bool terminal_;
  Clock clock_;
  double start_time_;
  double last_time_;
  std::int64_t last_step_;
  std::int64_t last_printed_;
  double ema_;
  double last_draw_ = -1e300;
  std::size_t last_width_ = 0;
  bool line_open_ = false;
};

}  // namespace ember::train
