/// \file
/// \brief Self-contained SVG charts for training runs: LinePlot (loss curves, one or more panels,
/// optional log-scale x and y) and DecisionBoundaryPlot (the class of every point of a 2-D grid, with the data
/// drawn on top, as in the spirals tutorial).
///
/// Axes map the data's [min, max] linearly onto the plot area, px = left + (x - min) / (max - min) * width
/// (on a log axis the same with log10 of the values); ticks are "nice" numbers, multiples of 1, 2 or 5
/// times a power of ten. NaN and infinite values are skipped (and values <= 0 on a log axis).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember::train {

/// Tick values for a linear axis over [lo, hi]: consecutive multiples of a step of 1, 2 or 5 x 10^k,
/// the smallest such step giving at most `target` intervals, from the last multiple <= lo to the first
/// >= hi. A zero-width range is widened first (see padded_range()); non-finite bounds give no ticks.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

/// Tick values for a log axis over [lo, hi] (lo > 0): the powers of ten from the last <= lo to the first
/// >= hi, and also 2 and 5 times them when that gives fewer than three ticks inside the range.
std::vector<double> log_ticks(double lo, double hi);

/// [lo, hi] unchanged when lo < hi; otherwise widened around the value by 10% of it (by 1 around 0).
std::pair<double, double> padded_range(double lo, double hi);

/// The first ten colours of matplotlib's "tab10" cycle, as "#rrggbb"; index wraps around.
std::string series_colour(std::size_t index);

/// Line chart with a legend, in one or more panels stacked vertically that share the x axis.
class LinePlot {
 public:
  /// A chart with a title, an x-axis label and the first panel's y-axis label.
  LinePlot(std::string title, std::string x_label, std::string y_label);

  /// Adds a series (a polyline) to the current (last) panel; x and y must have the same length. Each new name
  /// takes the next colour of series_colour(); a name already added (in any panel) keeps its colour.
  LinePlot& add(const std::string& name, const std::vector<double>& x, const std::vector<double>& y);
  /// Makes the current panel's y axis logarithmic (values <= 0 are then skipped).
  LinePlot& log_y(bool on = true);
  /// Makes the shared x axis logarithmic (points with x <= 0 are then skipped), e.g. for scaling plots.
  LinePlot& log_x(bool on = true);
  /// Starts a new panel below the others, with its own y-axis label; add() then adds to it.
  LinePlot& add_panel(const std::string& y_label, bool log_y = false);

  /// The chart as a standalone SVG document, `width` wide and `panel_height` per panel.
  std::string svg(int width = 720, int panel_height = 360) const;
  /// Writes svg() to `path` atomically.
  void save(const std::string& path, int width = 720, int panel_height = 360) const;

 private:
  struct Series {
    std::string name;
    std::vector<double> x, y;
  };
  struct Panel {
    std::string y_label;
    bool log_y = false;
    std::vector<Series> series;
  };
  std::string title_, x_label_;
  bool log_x_ = false;
  std::vector<Panel> panels_;
};

/// A classifier's decision regions on a 2-D grid, with labelled points on top.
///
/// The grid has `rows` x `cols` cells over [x_min, x_max] x [y_min, y_max]; row 0 is the bottom row
/// (y_min), as with a meshgrid of increasing y, and cell (i, j) is centred at
/// (x_min + (j + 0.5) dx, y_min + (i + 0.5) dy).
class DecisionBoundaryPlot {
 public:
  /// An empty plot over the given region and grid.
  DecisionBoundaryPlot(std::string title, double x_min, double x_max, double y_min, double y_max, int rows = 100,
                       int cols = 100);

  /// The cell centres, row-major, as a [rows * cols, 2] Float32 tensor of (x, y): feed it to a model and
  /// pass the predicted classes to set_classes().
  Tensor cell_centers() const;
  /// Sets the class of every cell from an integer-valued tensor of shape [rows, cols] or [rows * cols].
  DecisionBoundaryPlot& set_classes(const Tensor& classes);
  /// Sets the class of every cell to classify(x, y) at its centre.
  DecisionBoundaryPlot& set_classes(const std::function<int(double x, double y)>& classify);
  /// Adds data points (x[i], y[i]) of class labels[i].
  DecisionBoundaryPlot& add_points(const std::vector<double>& x, const std::vector<double>& y,
                                   const std::vector<int>& labels);
  /// Adds data points from an [N, 2] tensor of (x, y) and an [N] tensor of integer labels.
  DecisionBoundaryPlot& add_points(const Tensor& xy, const Tensor& labels);

  /// The plot as a standalone SVG document, `size` pixels square.
  std::string svg(int size = 480) const;
  /// Writes svg() to `path` atomically.
  void save(const std::string& path, int size = 480) const;

 private:
  std::string title_;
  double x_min_, x_max_, y_min_, y_max_;
  int rows_, cols_;
  std::vector<int> classes_;  // rows_ * cols_ once set, row-major, row 0 at y_min
  std::vector<double> px_, py_;
  std::vector<int> labels_;
};

}  // namespace ember::train
