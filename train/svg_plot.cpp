/// \file
/// \brief LinePlot and DecisionBoundaryPlot: SVG text built by hand (no dependency), one element per line.
#include "train/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/creation.h"
#include "core/error.h"

namespace ember::train {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

/// Text with &, <, > and " escaped for XML.
std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

/// k * m * 10^e computed so that 3 * 0.1 gives 0.3 (dividing by 10^-e rather than multiplying by 10^e).
double scaled(double k, double m, int e) { return e < 0 ? k * m / std::pow(10.0, -e) : k * m * std::pow(10.0, e); }

/// A data range mapped onto a pixel interval; on a log axis the range holds log10 of the values.
struct Axis {
  double lo = 0, hi = 1;  // data range (log10 when log)
  double p0 = 0, p1 = 1;  // pixel positions of lo and hi
  bool log = false;
  /// The pixel of value v.
  double map(double v) const { return p0 + ((log ? std::log10(v) : v) - lo) / (hi - lo) * (p1 - p0); }
  /// Whether v is drawable on this axis.
  bool accepts(double v) const { return std::isfinite(v) && (!log || v > 0); }
  /// The ticks inside the range.
  std::vector<double> ticks() const {
    std::vector<double> all = log ? log_ticks(std::pow(10.0, lo), std::pow(10.0, hi)) : nice_ticks(lo, hi);
    const double eps = 1e-9 * (hi - lo);
    std::erase_if(all, [&](double t) {
      const double v = log ? std::log10(t) : t;
      return v < lo - eps || v > hi + eps;
    });
    return all;
  }
};

/// Min and max of the accepted values (in axis units), padded when equal; [0, 1] when there are none.
void fit_range(Axis& axis, const std::vector<double>& values) {
  double lo = kInf, hi = -kInf;
  for (double v : values) {
    if (!axis.accepts(v)) continue;
    const double u = axis.log ? std::log10(v) : v;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  if (lo > hi) lo = 0, hi = 1;
  std::tie(axis.lo, axis.hi) = padded_range(lo, hi);
}

std::string fmt_px(double v) { return fmt::format("{:.2f}", v); }

/// The document head: XML declaration, <svg> with a white background and the title.
void open_svg(std::string& out, int width, int height, const std::string& title) {
  fmt::format_to(std::back_inserter(out),
                 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
                 "font-family=\"sans-serif\" font-size=\"12\">\n"
                 "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
                 "<text x=\"{2}\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">{3}</text>\n",
                 width, height, width / 2.0, xml_escape(title));
}

/// The frame of a plot area, grid lines and tick labels of both axes.
void draw_axes(std::string& out, const Axis& x, const Axis& y) {
  const double left = x.p0, right = x.p1, top = y.p1, bottom = y.p0;
  auto o = std::back_inserter(out);
  for (double t : x.ticks())
    fmt::format_to(o,
                   "<line class=\"grid\" x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#e0e0e0\"/>\n"
                   "<text class=\"tick\" x=\"{0}\" y=\"{3}\" text-anchor=\"middle\">{4:g}</text>\n",
                   fmt_px(x.map(t)), fmt_px(top), fmt_px(bottom), fmt_px(bottom + 16), t);
  for (double t : y.ticks())
    fmt::format_to(o,
                   "<line class=\"grid\" x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"#e0e0e0\"/>\n"
                   "<text class=\"tick\" x=\"{3}\" y=\"{4}\" text-anchor=\"end\">{5:g}</text>\n",
                   fmt_px(left), fmt_px(right), fmt_px(y.map(t)), fmt_px(left - 6), fmt_px(y.map(t) + 4), t);
  fmt::format_to(o,
                 "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#444\"/>\n",
                 fmt_px(left), fmt_px(top), fmt_px(right - left), fmt_px(bottom - top));
}

/// A y-axis label, rotated, centred beside the plot area.
void draw_y_label(std::string& out, const Axis& y, double x, const std::string& label) {
  const double mid = (y.p0 + y.p1) / 2;
  fmt::format_to(std::back_inserter(out),
                 "<text x=\"{0}\" y=\"{1}\" text-anchor=\"middle\" transform=\"rotate(-90 {0} {1})\">{2}</text>\n",
                 fmt_px(x), fmt_px(mid), xml_escape(label));
}

}  // namespace

std::pair<double, double> padded_range(double lo, double hi) {
  if (lo < hi) return {lo, hi};
  const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
  return {lo - pad, hi + pad};
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  std::tie(lo, hi) = padded_range(lo, hi);
  target = std::max(target, 2);  // with 2, a large enough step always fits (0 or +-step around the data)
  const double range = hi - lo;
  if (!std::isfinite(range) || !std::isnormal(range / target)) return {lo, hi};
  const int e = static_cast<int>(std::floor(std::log10(range / target)));  // 10^e is never too large
  static constexpr double kMantissas[] = {1, 2, 5};
  for (int i = 0; i < 60; ++i) {  // 1, 2, 5, 10, 20, ... x 10^e until the covering span has <= target steps
    const double m = kMantissas[i % 3];
    const int ei = e + i / 3;
    const double step = scaled(1, m, ei);
    if (!std::isnormal(step)) break;
    const double k0 = std::floor(lo / step + 1e-9), k1 = std::ceil(hi / step - 1e-9);
    if (!(k1 - k0 <= target)) continue;
    std::vector<double> ticks;
    for (int n = 0; n <= static_cast<int>(k1 - k0); ++n) ticks.push_back(scaled(k0 + n, m, ei));
    return ticks;
  }
  return {lo, hi};
}

std::vector<double> log_ticks(double lo, double hi) {
  if (!(lo > 0) || !std::isfinite(lo) || !std::isfinite(hi) || hi < lo) return {};
  const int d0 = static_cast<int>(std::floor(std::log10(lo) + 1e-12));
  const int d1 = static_cast<int>(std::ceil(std::log10(hi) - 1e-12));
  const int stride = (d1 - d0 + 7) / 8;  // at most about 9 decade ticks over a huge range
  std::vector<double> decades, fine;
  for (int d = d0;; d += std::max(stride, 1)) {
    decades.push_back(scaled(1, 1, d));
    if (d >= d1) break;
  }
  for (int d = d0; d <= d1 && stride <= 1; ++d)
    for (double m : {1.0, 2.0, 5.0}) fine.push_back(scaled(1, m, d));
  const auto inside = std::count_if(decades.begin(), decades.end(), [&](double t) { return t >= lo && t <= hi; });
  if (inside >= 3 || fine.empty()) return decades;
  // From the last fine tick <= lo to the first >= hi.
  const auto first = std::find_if(fine.rbegin(), fine.rend(), [&](double t) { return t <= lo; });
  const auto last = std::find_if(fine.begin(), fine.end(), [&](double t) { return t >= hi; });
  return std::vector<double>(first == fine.rend() ? fine.begin() : std::prev(first.base()),
                             last == fine.end() ? fine.end() : std::next(last));
}

std::string series_colour(std::size_t index) {
  static const char* kTab10[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  return kTab10[index % 10];
}

// --- LinePlot ---

LinePlot::LinePlot(std::string title, std::string x_label, std::string y_label)
    : title_(std::move(title)), x_label_(std::move(x_label)), panels_{Panel{std::move(y_label), false, {}}} {}

LinePlot& LinePlot::add(const std::string& name, const std::vector<double>& x, const std::vector<double>& y) {
  EMBER_CHECK(x.size() == y.size(),
              fmt::format("LinePlot::add: series \"{}\" has {} x values but {} y values", name, x.size(), y.size()));
  panels_.back().series.push_back({name, x, y});
  return *this;
}

LinePlot& LinePlot::log_y(bool on) {
  panels_.back().log_y = on;
  return *this;
}

LinePlot& LinePlot::log_x(bool on) {
  log_x_ = on;
  return *this;
}

LinePlot& LinePlot::add_panel(const std::string& y_label, bool log_y) {
  panels_.push_back({y_label, log_y, {}});
  return *this;
}

std::string LinePlot::svg(int width, int panel_height) const {
  EMBER_CHECK(width >= 200 && panel_height >= 100,
              fmt::format("LinePlot::svg: {} x {} is too small (at least 200 x 100)", width, panel_height));
  const double left = 70, right = width - 20.0, title_h = 40, x_label_h = 40;
  const int height = static_cast<int>(title_h + x_label_h) + panel_height * static_cast<int>(panels_.size());
  std::string out;
  open_svg(out, width, height, title_);
  auto o = std::back_inserter(out);
  // The x range is shared: every drawable point of every panel.
  Axis x{0, 1, left, right, log_x_};
  std::vector<double> xs;
  for (const Panel& p : panels_)
    for (const Series& s : p.series)
      for (std::size_t i = 0; i < s.x.size(); ++i)
        if (Axis{0, 1, 0, 1, p.log_y}.accepts(s.y[i])) xs.push_back(s.x[i]);
  fit_range(x, xs);
  std::map<std::string, std::size_t> colour_of;  // a name keeps its colour in every panel
  for (std::size_t pi = 0; pi < panels_.size(); ++pi) {
    const Panel& p = panels_[pi];
    const double top = title_h + pi * panel_height + 10, bottom = top + panel_height - 40;
    Axis y{0, 1, bottom, top, p.log_y};
    std::vector<double> ys;
    for (const Series& s : p.series)
      for (std::size_t i = 0; i < s.y.size(); ++i)
        if (x.accepts(s.x[i])) ys.push_back(s.y[i]);
    fit_range(y, ys);
    draw_axes(out, x, y);
    draw_y_label(out, y, 18, p.y_label);
    for (std::size_t si = 0; si < p.series.size(); ++si) {
      const Series& s = p.series[si];
      std::string points, last;
      std::size_t n = 0;
      for (std::size_t i = 0; i < s.x.size(); ++i) {
        if (!x.accepts(s.x[i]) || !y.accepts(s.y[i])) continue;
        last = fmt::format("cx=\"{}\" cy=\"{}\"", fmt_px(x.map(s.x[i])), fmt_px(y.map(s.y[i])));
        points += fmt::format("{}{},{}", n++ ? " " : "", fmt_px(x.map(s.x[i])), fmt_px(y.map(s.y[i])));
      }
      const std::string c = series_colour(colour_of.try_emplace(s.name, colour_of.size()).first->second);
      if (n > 0)
        fmt::format_to(o,
                       "<polyline class=\"series\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>\n",
                       c, points);
      if (n == 1) fmt::format_to(o, "<circle {} r=\"3\" fill=\"{}\"/>\n", last, c);  // a lone point draws no line
      // Legend entry, top right inside the panel.
      const double ly = top + 16 + 16 * si;
      fmt::format_to(
          o,
          "<line class=\"legend\" x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"3\"/>\n"
          "<text x=\"{4}\" y=\"{5}\" text-anchor=\"end\">{6}</text>\n",
          fmt_px(right - 30), fmt_px(ly), fmt_px(right - 10), c, fmt_px(right - 36), fmt_px(ly + 4),
          xml_escape(s.name));
    }
  }
  fmt::format_to(o, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n</svg>\n", fmt_px((left + right) / 2),
                 height - 10, xml_escape(x_label_));
  return out;
}

void LinePlot::save(const std::string& path, int width, int panel_height) const {
  write_file_atomic(path, svg(width, panel_height));
}

// --- DecisionBoundaryPlot ---

DecisionBoundaryPlot::DecisionBoundaryPlot(std::string title, double x_min, double x_max, double y_min, double y_max,
                                           int rows, int cols)
    : title_(std::move(title)), x_min_(x_min), x_max_(x_max), y_min_(y_min), y_max_(y_max), rows_(rows), cols_(cols) {
  EMBER_CHECK(
      x_min < x_max && y_min < y_max && std::isfinite(x_max - x_min) && std::isfinite(y_max - y_min),
      fmt::format("DecisionBoundaryPlot: empty or infinite region [{}, {}] x [{}, {}]", x_min, x_max, y_min, y_max));
  EMBER_CHECK(rows >= 1 && cols >= 1 && rows <= 4096 && cols <= 4096,
              fmt::format("DecisionBoundaryPlot: grid of {} x {} cells (each side must be in [1, 4096])", rows, cols));
}

Tensor DecisionBoundaryPlot::cell_centers() const {
  std::vector<double> xy;
  xy.reserve(2 * static_cast<std::size_t>(rows_) * cols_);
  const double dx = (x_max_ - x_min_) / cols_, dy = (y_max_ - y_min_) / rows_;
  for (int i = 0; i < rows_; ++i)
    for (int j = 0; j < cols_; ++j) {
      xy.push_back(x_min_ + (j + 0.5) * dx);
      xy.push_back(y_min_ + (i + 0.5) * dy);
    }
  return from_vector(xy, {static_cast<std::int64_t>(rows_) * cols_, 2}, DType::Float32);
}

DecisionBoundaryPlot& DecisionBoundaryPlot::set_classes(const Tensor& classes) {
  const Shape grid{rows_, cols_}, flat{static_cast<std::int64_t>(rows_) * cols_};
  EMBER_CHECK(classes.shape() == grid || classes.shape() == flat,
              fmt::format("DecisionBoundaryPlot::set_classes: classes of shape {} for a grid of {} (or {})",
                          shape_str(classes.shape()), shape_str(grid), shape_str(flat)));
  classes_.clear();
  for (double v : classes.to_vector<double>()) {
    EMBER_CHECK(std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e9,
                fmt::format("DecisionBoundaryPlot::set_classes: class {} is not an integer", v));
    classes_.push_back(static_cast<int>(v));
  }
  return *this;
}

DecisionBoundaryPlot& DecisionBoundaryPlot::set_classes(const std::function<int(double, double)>& classify) {
  classes_.clear();
  const double dx = (x_max_ - x_min_) / cols_, dy = (y_max_ - y_min_) / rows_;
  for (int i = 0; i < rows_; ++i)
    for (int j = 0; j < cols_; ++j) classes_.push_back(classify(x_min_ + (j + 0.5) * dx, y_min_ + (i + 0.5) * dy));
  return *this;
}

DecisionBoundaryPlot& DecisionBoundaryPlot::add_points(const std::vector<double>& x, const std::vector<double>& y,
                                                       const std::vector<int>& labels) {
  EMBER_CHECK(
      x.size() == y.size() && x.size() == labels.size(),
      fmt::format("DecisionBoundaryPlot::add_points: {} x, {} y and {} labels", x.size(), y.size(), labels.size()));
  px_.insert(px_.end(), x.begin(), x.end());
  py_.insert(py_.end(), y.begin(), y.end());
  labels_.insert(labels_.end(), labels.begin(), labels.end());
  return *this;
}

DecisionBoundaryPlot& DecisionBoundaryPlot::add_points(const Tensor& xy, const Tensor& labels) {
  EMBER_CHECK(xy.dim() == 2 && xy.size(1) == 2 && labels.dim() == 1 && labels.size(0) == xy.size(0),
              fmt::format("DecisionBoundaryPlot::add_points: need xy [N, 2] and labels [N], got {} and {}",
                          shape_str(xy.shape()), shape_str(labels.shape())));
  const std::vector<double> v = xy.to_vector<double>(), l = labels.to_vector<double>();
  std::vector<double> x, y;
  std::vector<int> lab;
  for (std::size_t i = 0; i < l.size(); ++i) {
    x.push_back(v[2 * i]);
    y.push_back(v[2 * i + 1]);
    lab.push_back(static_cast<int>(l[i]));
  }
  return add_points(x, y, lab);
}

std::string DecisionBoundaryPlot::svg(int size) const {
  EMBER_CHECK(size >= 100, fmt::format("DecisionBoundaryPlot::svg: size {} is too small (at least 100)", size));
  const double left = 50, right = size - 10.0, top = 40, bottom = size - 30.0;
  std::string out;
  open_svg(out, size, size, title_);
  auto o = std::back_inserter(out);
  const Axis x{x_min_, x_max_, left, right, false}, y{y_min_, y_max_, bottom, top, false};
  const double cw = (right - left) / cols_, ch = (bottom - top) / rows_;
  fmt::format_to(o, "<g class=\"cells\" shape-rendering=\"crispEdges\" fill-opacity=\"0.35\">\n");
  for (int i = 0; !classes_.empty() && i < rows_; ++i)
    for (int j = 0; j < cols_;) {  // one rect per run of equal classes along a row
      const int c = classes_[static_cast<std::size_t>(i) * cols_ + j];
      int end = j + 1;
      while (end < cols_ && classes_[static_cast<std::size_t>(i) * cols_ + end] == c) ++end;
      fmt::format_to(o, "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", fmt_px(left + j * cw),
                     fmt_px(bottom - (i + 1) * ch), fmt_px((end - j) * cw), fmt_px(ch),
                     series_colour(static_cast<std::size_t>(std::abs(c))));
      j = end;
    }
  fmt::format_to(o, "</g>\n");
  draw_axes(out, x, y);
  for (std::size_t i = 0; i < px_.size(); ++i) {
    if (!std::isfinite(px_[i]) || !std::isfinite(py_[i])) continue;
    fmt::format_to(
        o, "<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\" stroke=\"white\" stroke-width=\"0.5\"/>\n",
        fmt_px(x.map(px_[i])), fmt_px(y.map(py_[i])), series_colour(static_cast<std::size_t>(std::abs(labels_[i]))));
  }
  out += "</svg>\n";
  return out;
}

void DecisionBoundaryPlot::save(const std::string& path, int size) const { write_file_atomic(path, svg(size)); }

}  // namespace ember::train
