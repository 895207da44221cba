/// \file
/// \brief Metrics CSV (exact file text, column rules, resume, read_csv), SVG plots (well-formed markup,
/// one polyline per series with the right points, data min/max on the plot edges, 1-2-5 ticks against
/// hand-computed lists) and the progress bar (line counts, \r redraws, ETA from a fake clock).
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "helpers.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/svg_plot.h"

namespace fs = std::filesystem;
using namespace ember;
using ember::test::TempDir;
using namespace ember::train;
using ember::test::slurp;
using ember::test::spit;

namespace {

/// Empty when every tag of the XML text is closed in order and there is one root <svg>; else why not.
std::string check_well_formed(const std::string& xml) {
  std::vector<std::string> stack;
  int roots = 0;
  for (std::size_t i = xml.find('<'); i != std::string::npos; i = xml.find('<', i + 1)) {
    const std::size_t end = xml.find('>', i);
    if (end == std::string::npos) return "unterminated tag at " + std::to_string(i);
    const std::string tag = xml.substr(i + 1, end - i - 1);
    if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) return "unbalanced quotes in <" + tag + ">";
    if (tag.find('<') != std::string::npos) return "'<' inside a tag at " + std::to_string(i);
    if (tag.front() == '?' || tag.front() == '!') continue;
    const std::string name = tag.substr(tag.front() == '/', tag.find_first_of(" /", 1) - (tag.front() == '/'));
    if (tag.front() == '/') {
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> does not close <" + (stack.empty() ? "" : stack.back()) + ">";
      stack.pop_back();
    } else if (tag.back() != '/') {
      if (stack.empty()) ++roots;
      stack.push_back(name);
    } else if (stack.empty()) {
      return "self-closed element outside the root";
    }
    i = end;
  }
  if (!stack.empty()) return "<" + stack.back() + "> is never closed";
  if (roots != 1) return "expected one root element, found " + std::to_string(roots);
  return xml.find("<svg") != std::string::npos ? "" : "no <svg> element";
}

/// The attributes of every <tag ...> element, in document order.
std::vector<std::map<std::string, std::string>> elements(const std::string& xml, const std::string& tag) {
  std::vector<std::map<std::string, std::string>> found;
  for (std::size_t i = xml.find("<" + tag + " "); i != std::string::npos; i = xml.find("<" + tag + " ", i + 1)) {
    const std::string body = xml.substr(i, xml.find('>', i) - i);
    std::map<std::string, std::string> attrs;
    for (std::size_t eq = body.find("=\""); eq != std::string::npos; eq = body.find("=\"", eq + 1)) {
      const std::size_t name_start = body.rfind(' ', eq) + 1, close = body.find('"', eq + 2);
      attrs[body.substr(name_start, eq - name_start)] = body.substr(eq + 2, close - eq - 2);
      eq = close;
    }
    found.push_back(attrs);
  }
  return found;
}

/// The (x, y) pairs of a polyline's points attribute.
std::vector<std::pair<double, double>> points_of(const std::string& points) {
  std::vector<std::pair<double, double>> p;
  std::istringstream in(points);
  std::string pair;
  while (in >> pair)
    p.emplace_back(std::stod(pair.substr(0, pair.find(','))), std::stod(pair.substr(pair.find(',') + 1)));
  return p;
}

/// The text of every <text ...>...</text> whose attributes include `attr`.
std::vector<std::string> texts_with(const std::string& xml, const std::string& attr) {
  std::vector<std::string> out;
  for (std::size_t i = xml.find("<text "); i != std::string::npos; i = xml.find("<text ", i + 1)) {
    const std::size_t gt = xml.find('>', i);
    if (xml.substr(i, gt - i).find(attr) == std::string::npos) continue;
    out.push_back(xml.substr(gt + 1, xml.find("</text>", gt) - gt - 1));
  }
  return out;
}

void check_ticks(const std::vector<double>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-12));
}

}  // namespace

// --- MetricsLog and read_csv ---

TEST_CASE("MetricsLog: the CSV text is a header and one line per row") {
  TempDir dir("ember-metrics");
  const std::string path = dir / "metrics.csv";
  spit(path, "old file\n");
  MetricsLog log(path);
  CHECK(slurp(path).empty());  // a new log replaces the old file
  log.append(1, {{"loss", 0.5}, {"lr", 0.001}, {"tokens_per_s", 1500}});
  log.append(2, {{"lr", 0.0005}, {"tokens_per_s", 1e-300}, {"loss", 0.1}});  // any order after the first row
  log.append(3, {{"loss", NAN}, {"lr", INFINITY}, {"tokens_per_s", -2.5}});
  CHECK(slurp(path) ==
        "step,loss,lr,tokens_per_s\n"
        "1,0.5,0.001,1500\n"
        "2,0.1,0.0005,1e-300\n"
        "3,nan,inf,-2.5\n");
  CHECK(log.columns() == std::vector<std::string>{"step", "loss", "lr", "tokens_per_s"});
  REQUIRE(log.rows().size() == 3);
  CHECK(log.rows()[1] == std::vector<double>{2, 0.1, 0.0005, 1e-300});
  CHECK(log.table().column("lr") == std::vector<double>{0.001, 0.0005, INFINITY});
}

TEST_CASE("MetricsLog: rows must give exactly the columns of the first row") {
  TempDir dir("ember-metrics");
  MetricsLog log(dir / "m.csv");
  CHECK(log.columns() == std::vector<std::string>{"step"});
  CHECK_THROWS_EMBER(log.append(0, {{"loss", 1}, {"loss", 2}}), "column \"loss\" given twice at step 0");
  CHECK_THROWS_EMBER(log.append(0, {{"step", 1}}), "\"step\" is the step argument");
  CHECK_THROWS_EMBER(log.append(0, {{"a,b", 1}}), "column name \"a,b\" is empty or holds a comma");
  CHECK_THROWS_EMBER(log.append(0, {{"", 1}}), "column name \"\" is empty");
  log.append(0, {{"loss", 1}, {"acc", 0.5}});
  CHECK_THROWS_EMBER(log.append(1, {{"loss", 1}, {"acc", 0.5}, {"lr", 3}}),
                     "MetricsLog::append: unknown column \"lr\" at step 1 (the columns are step, loss, acc)");
  CHECK_THROWS_EMBER(log.append(1, {{"loss", 1}}), "MetricsLog::append: missing column \"acc\" at step 1");
  CHECK(slurp(dir / "m.csv") == "step,loss,acc\n0,1,0.5\n");  // rejected rows leave no trace
  CHECK(log.rows().size() == 1);
}

TEST_CASE("read_csv: values read back exactly, errors name the file and line") {
  TempDir dir("ember-metrics");
  spit(dir / "a.csv", "step,x,y\r\n0,0.1,-3\r\n\r\n7,1e-300,nan\n");
  const MetricsTable t = read_csv(dir / "a.csv");
  CHECK(t.columns == std::vector<std::string>{"step", "x", "y"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0] == std::vector<double>{0, 0.1, -3});
  CHECK(t.rows[1][1] == 1e-300);
  CHECK(std::isnan(t.rows[1][2]));
  CHECK_THROWS_EMBER(t.index_of("z"), "no column \"z\" (the columns are step, x, y)");
  // What MetricsLog writes, read_csv reads back bit for bit.
  MetricsLog log(dir / "b.csv");
  const double third = 1.0 / 3, tiny = 4.9406564584124654e-324, big = 1.7976931348623157e308;
  log.append(5, {{"v", third}, {"w", tiny}, {"z", big}});
  CHECK(read_csv(dir / "b.csv").rows == std::vector<std::vector<double>>{{5, third, tiny, big}});
  spit(dir / "short.csv", "step,x\n1,2\n3\n");
  CHECK_THROWS_EMBER(read_csv(dir / "short.csv"),
                     ("read_csv: " + (dir / "short.csv") + ":3: expected 2 fields, got 1").c_str());
  spit(dir / "text.csv", "step,x\n1,abc\n");
  CHECK_THROWS_EMBER(read_csv(dir / "text.csv"), ":2: field 2 ('abc') is not a number");
  spit(dir / "empty_field.csv", "step,x\n1,\n");
  CHECK_THROWS_EMBER(read_csv(dir / "empty_field.csv"), "field 2 ('') is not a number");
  CHECK_THROWS_EMBER(read_csv(dir / "missing.csv"), ("read_csv: cannot open '" + (dir / "missing.csv") + "'").c_str());
  spit(dir / "empty.csv", "");
  CHECK(read_csv(dir / "empty.csv").columns.empty());
}

TEST_CASE("MetricsLog::resume keeps the rows before the resume step and appends after them") {
  TempDir dir("ember-metrics");
  const std::string path = dir / "m.csv";
  spit(path, "step,loss,lr\n10,2.5,0.1\n20,2,0.1\n30,1.5,0.05\n40,1,0.05\n");
  MetricsLog log = MetricsLog::resume(path, 30);
  CHECK(slurp(path) == "step,loss,lr\n10,2.5,0.1\n20,2,0.1\n");
  CHECK(log.columns() == std::vector<std::string>{"step", "loss", "lr"});
  CHECK(log.rows() == std::vector<std::vector<double>>{{10, 2.5, 0.1}, {20, 2, 0.1}});
  log.append(30, {{"loss", 1.25}, {"lr", 0.05}});
  CHECK_THROWS_EMBER(log.append(31, {{"loss", 1}}), "missing column \"lr\"");
  CHECK(slurp(path) == "step,loss,lr\n10,2.5,0.1\n20,2,0.1\n30,1.25,0.05\n");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);  // no temporary file left
}

TEST_CASE("MetricsLog::resume of a missing or empty file starts anew, a foreign CSV is refused") {
  TempDir dir("ember-metrics");
  MetricsLog fresh = MetricsLog::resume(dir / "none.csv", 100);
  fresh.append(100, {{"loss", 3}});
  CHECK(slurp(dir / "none.csv") == "step,loss\n100,3\n");
  spit(dir / "header_only.csv", "step,loss\n");
  MetricsLog h = MetricsLog::resume(dir / "header_only.csv", 5);
  CHECK_THROWS_EMBER(h.append(5, {{"acc", 1}}), "unknown column \"acc\"");
  h.append(5, {{"loss", 0.5}});
  CHECK(slurp(dir / "header_only.csv") == "step,loss\n5,0.5\n");
  spit(dir / "other.csv", "epoch,loss\n1,2\n");
  CHECK_THROWS_EMBER(MetricsLog::resume(dir / "other.csv", 1), "has no step column first (header: epoch,loss)");
}

// --- ticks ---

TEST_CASE("nice_ticks: hand-computed 1-2-5 ticks covering the range") {
  check_ticks(nice_ticks(0, 10), {0, 2, 4, 6, 8, 10});              // step 1 needs 10 intervals, 2 needs 5
  check_ticks(nice_ticks(0.13, 0.87), {0, 0.2, 0.4, 0.6, 0.8, 1});  // 0.1 needs 8 (1..9), 0.2 needs 5 (0..5)
  check_ticks(nice_ticks(-3.7, 12.2), {-5, 0, 5, 10, 15});          // 2 needs 9 (-2..7), 5 needs 4 (-1..3)
  check_ticks(nice_ticks(1234, 1240, 4), {1234, 1236, 1238, 1240});
  check_ticks(nice_ticks(0.001, 0.0042, 3), {0, 0.002, 0.004, 0.006});
  check_ticks(nice_ticks(10, 0), {0, 2, 4, 6, 8, 10});   // reversed bounds
  check_ticks(nice_ticks(5, 5), {4.5, 5, 5.5});          // padded to [4.5, 5.5]
  check_ticks(nice_ticks(0, 0), {-1, -0.5, 0, 0.5, 1});  // padded to [-1, 1]
  check_ticks(nice_ticks(-250, -20), {-250, -200, -150, -100, -50, 0});
  CHECK(nice_ticks(0.1, 0.3)[1] == 0.15);  // 3 * 0.05 prints as 0.15, not 0.15000000000000002
  CHECK(nice_ticks(NAN, 1).empty());
  CHECK(nice_ticks(0, INFINITY).empty());
}

TEST_CASE("nice_ticks: over many ranges, equal 1-2-5 steps, at most `target` intervals, covering the data") {
  std::uint64_t s = 12345;
  auto uniform = [&s] {  // a small LCG, so the ranges are fixed
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(s >> 11) / 9007199254740992.0;
  };
  for (int trial = 0; trial < 500; ++trial) {
    const double scale = std::pow(10.0, std::floor(uniform() * 16) - 8);
    const double lo = (uniform() * 2 - 1) * scale, hi = lo + uniform() * scale + 1e-3 * scale;
    const int target = 2 + trial % 8;
    const std::vector<double> t = nice_ticks(lo, hi, target);
    REQUIRE(t.size() >= 2);
    CHECK(static_cast<int>(t.size()) - 1 <= target);
    CHECK(t.front() <= lo + 1e-9 * scale);
    CHECK(t.back() >= hi - 1e-9 * scale);
    const double step = t[1] - t[0];
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    CHECK((std::abs(mantissa - 1) < 1e-6 || std::abs(mantissa - 2) < 1e-6 || std::abs(mantissa - 5) < 1e-6));
    for (std::size_t i = 0; i < t.size(); ++i) {
      CHECK(t[i] == doctest::Approx(t[0] + i * step).epsilon(1e-9).scale(std::abs(step)));
      CHECK(std::abs(t[i] / step - std::round(t[i] / step)) < 1e-6);  // multiples of the step
    }
    // No smaller 1-2-5 step would do: the next smaller one needs more than `target` intervals.
    const double smaller = mantissa < 1.5 ? step / 2 : mantissa < 3 ? step / 2 : step * 2 / 5;
    CHECK(std::ceil(hi / smaller - 1e-9) - std::floor(lo / smaller + 1e-9) > target);
  }
}

TEST_CASE("log_ticks: decades, or 1-2-5 within a decade or two") {
  check_ticks(log_ticks(0.02, 30), {0.01, 0.1, 1, 10, 100});
  check_ticks(log_ticks(1.5, 4), {1, 2, 5});
  check_ticks(log_ticks(3, 300), {2, 5, 10, 20, 50, 100, 200, 500});
  check_ticks(log_ticks(1, 1000), {1, 10, 100, 1000});
  CHECK(log_ticks(1e-300, 1e300).size() <= 12);
  CHECK(log_ticks(0, 1).empty());
  CHECK(log_ticks(-1, 1).empty());
}

// --- LinePlot ---

TEST_CASE("LinePlot: well-formed SVG, one polyline per series, NaN/Inf/non-positive log values skipped") {
  LinePlot plot("loss <train & eval>", "step", "loss");
  std::vector<double> x, y;
  for (int i = 0; i <= 10; ++i) x.push_back(i), y.push_back(10 - i);
  plot.add("train", x, y);
  plot.add("eval", {0, 2, 4, 6, 8, 10}, {9, NAN, 7, INFINITY, 5, 4});
  plot.add_panel("lr", true).add("lr", {0, 5, 10}, {0.1, 0, -1}).add("warmup", {1, 2, 3, 4}, {1e-4, 1e-3, 1e-2, 0.1});
  const std::string svg = plot.svg();
  CHECK(check_well_formed(svg) == "");
  CHECK(svg.find("loss &lt;train &amp; eval&gt;") != std::string::npos);
  const auto lines = elements(svg, "polyline");
  REQUIRE(lines.size() == 4);
  CHECK(points_of(lines[0].at("points")).size() == 11);
  CHECK(points_of(lines[1].at("points")).size() == 4);  // NaN and Inf skipped
  CHECK(points_of(lines[2].at("points")).size() == 1);  // 0 and -1 have no log
  CHECK(points_of(lines[3].at("points")).size() == 4);
  CHECK(elements(svg, "circle").size() == 1);  // the lone point is drawn as a dot
  std::set<std::string> colours;
  for (const auto& l : lines) colours.insert(l.at("stroke"));
  CHECK(colours.size() == 4);
  CHECK(lines[0].at("stroke") == "#1f77b4");
  CHECK(lines[1].at("stroke") == "#ff7f0e");
  const auto legend = texts_with(svg, "text-anchor=\"end\"");  // y tick labels and legend names
  for (const char* name : {"train", "eval", "lr", "warmup"})
    CHECK(std::find(legend.begin(), legend.end(), name) != legend.end());
  CHECK(elements(svg, "rect").size() == 3);  // background and two panel frames
}

TEST_CASE("LinePlot: data min and max land on the edges of the plot area") {
  LinePlot plot("t", "x", "y");
  plot.add("a", {2, 4, 12}, {0, 3, -1}).add("b", {5, 7}, {1, 2});
  const std::string svg = plot.svg(600, 300);
  const auto frames = elements(svg, "rect");
  REQUIRE(frames.size() == 2);
  const auto& f = frames[1];
  REQUIRE(f.at("class") == "frame");
  const double left = std::stod(f.at("x")), top = std::stod(f.at("y"));
  const double right = left + std::stod(f.at("width")), bottom = top + std::stod(f.at("height"));
  const auto a = points_of(elements(svg, "polyline")[0].at("points"));
  REQUIRE(a.size() == 3);
  CHECK(a[0].first == doctest::Approx(left).epsilon(1e-4));     // x = 2, the minimum
  CHECK(a[2].first == doctest::Approx(right).epsilon(1e-4));    // x = 12, the maximum
  CHECK(a[1].second == doctest::Approx(top).epsilon(1e-4));     // y = 3, the maximum (SVG y grows down)
  CHECK(a[2].second == doctest::Approx(bottom).epsilon(1e-4));  // y = -1, the minimum
  // x = 4 is a fifth of the way, y = 0 a quarter of the way up.
  CHECK(a[1].first == doctest::Approx(left + (right - left) * 0.2).epsilon(1e-4));
  CHECK(a[0].second == doctest::Approx(bottom - (bottom - top) * 0.25).epsilon(1e-4));
  // y ticks: nice_ticks(-1, 3) is -1, 0, 1, 2, 3; x ticks: nice_ticks(2, 12) is 2, 4, ..., 12.
  const auto labels = texts_with(svg, "class=\"tick\"");
  CHECK(labels == std::vector<std::string>{"2", "4", "6", "8", "10", "12", "-1", "0", "1", "2", "3"});
}

TEST_CASE("LinePlot: empty series, all-equal values and a log axis") {
  LinePlot empty("nothing", "step", "loss");
  empty.add("none", {}, {}).add("nan", {1, 2}, {NAN, NAN});
  const std::string e = empty.svg();
  CHECK(check_well_formed(e) == "");
  CHECK(elements(e, "polyline").empty());
  CHECK(texts_with(e, "text-anchor=\"end\"").back() == "nan");  // still in the legend

  LinePlot flat("flat", "step", "loss");
  flat.add("c", {0, 1, 2}, {5, 5, 5});
  const std::string s = flat.svg(500, 300);
  const auto f = elements(s, "rect")[1];
  const double mid = std::stod(f.at("y")) + std::stod(f.at("height")) / 2;
  for (const auto& [px, py] : points_of(elements(s, "polyline")[0].at("points"))) CHECK(py == doctest::Approx(mid));
  const auto labels = texts_with(s, "class=\"tick\"");
  CHECK(std::find(labels.begin(), labels.end(), "4.5") != labels.end());  // y range padded to [4.5, 5.5]
  CHECK(std::find(labels.begin(), labels.end(), "5.5") != labels.end());

  LinePlot log("log", "step", "loss");
  log.log_y().add("l", {0, 1, 2}, {1, 10, 100});
  const std::string l = log.svg(500, 300);
  const auto g = elements(l, "rect")[1];
  const auto p = points_of(elements(l, "polyline")[0].at("points"));
  const double top = std::stod(g.at("y")), bottom = top + std::stod(g.at("height"));
  CHECK(p[1].second == doctest::Approx((top + bottom) / 2));  // 10 is half-way between 1 and 100 in log10
  const auto ticks = texts_with(l, "class=\"tick\"");
  CHECK(std::vector<std::string>(ticks.end() - 3, ticks.end()) == std::vector<std::string>{"1", "10", "100"});
  CHECK_THROWS_EMBER(log.add("bad", {1, 2}, {1}), "series \"bad\" has 2 x values but 1 y values");
}

TEST_CASE("LinePlot::log_x maps x by log10, skips x <= 0 and ticks decades") {
  LinePlot plot("log-log", "T", "ms");
  plot.log_x().log_y().add("t", {0, 1, 10, 1000}, {5, 1, 10, 1000});  // x = 0 cannot be drawn
  const std::string svg = plot.svg(500, 300);
  const auto frame = elements(svg, "rect")[1];
  const double left = std::stod(frame.at("x")), right = left + std::stod(frame.at("width"));
  const double top = std::stod(frame.at("y")), bottom = top + std::stod(frame.at("height"));
  const auto p = points_of(elements(svg, "polyline")[0].at("points"));
  REQUIRE(p.size() == 3);
  // log10 x = 0, 1, 3 over [0, 3]: a third of the way for x = 10; y likewise. Pixels are written to 0.01.
  CHECK(std::abs(p[0].first - left) <= 0.005);
  CHECK(std::abs(p[1].first - (left + (right - left) / 3)) <= 0.005);
  CHECK(std::abs(p[2].first - right) <= 0.005);
  CHECK(std::abs(p[1].second - (bottom - (bottom - top) / 3)) <= 0.005);
  const auto ticks = texts_with(svg, "class=\"tick\"");
  CHECK(std::vector<std::string>(ticks.begin(), ticks.begin() + 4) ==
        std::vector<std::string>{"1", "10", "100", "1000"});
}

TEST_CASE("LinePlot: a series name keeps its colour across panels, new names take the next colour") {
  LinePlot plot("two panels", "T", "ms");
  plot.add("a", {1, 2}, {1, 2}).add("b", {1, 2}, {2, 1});
  plot.add_panel("MiB").add("b", {1, 2}, {3, 4}).add("c", {1, 2}, {4, 3}).add("a", {1, 2}, {5, 5});
  const auto lines = elements(plot.svg(), "polyline");
  REQUIRE(lines.size() == 5);
  std::vector<std::string> strokes;
  for (const auto& l : lines) strokes.push_back(l.at("stroke"));
  CHECK(strokes == std::vector<std::string>{series_colour(0), series_colour(1), series_colour(1), series_colour(2),
                                            series_colour(0)});
}

TEST_CASE("LinePlot::save writes the SVG") {
  TempDir dir("ember-metrics");
  LinePlot plot("t", "x", "y");
  plot.add("a", {0, 1}, {0, 1});
  plot.save(dir / "p.svg");
  CHECK(slurp(dir / "p.svg") == plot.svg());
}

// --- DecisionBoundaryPlot ---

TEST_CASE("DecisionBoundaryPlot: cell centres, runs of classes as rects, points by label") {
  DecisionBoundaryPlot small("grid", 0, 3, 0, 2, 2, 3);
  const Tensor c = small.cell_centers();
  CHECK(c.shape() == Shape{6, 2});
  CHECK(c.to_vector<double>() == std::vector<double>{0.5, 0.5, 1.5, 0.5, 2.5, 0.5, 0.5, 1.5, 1.5, 1.5, 2.5, 1.5});

  DecisionBoundaryPlot plot("spirals", -1, 1, -1, 1, 4, 4);
  // Row 0 is the bottom row; runs per row: 2, 1, 3, 1 -> 7 rects.
  plot.set_classes(from_vector(std::vector<std::int64_t>{0, 0, 1, 1, 0, 0, 0, 0, 2, 1, 1, 2, 1, 1, 1, 1}, {4, 4}));
  plot.add_points({-1, 1, 0, NAN}, {-1, 1, 0, 0}, {0, 1, 2, 1});
  const std::string svg = plot.svg(400);
  CHECK(check_well_formed(svg) == "");
  auto rects = elements(svg, "rect");
  const auto frame = rects.back();
  REQUIRE(frame.at("class") == "frame");
  rects.erase(rects.begin());  // the background
  rects.pop_back();            // the frame
  REQUIRE(rects.size() == 7);
  const double left = std::stod(frame.at("x")), top = std::stod(frame.at("y"));
  const double w = std::stod(frame.at("width")), h = std::stod(frame.at("height"));
  // The first run: row 0 (bottom), columns 0-1, class 0.
  CHECK(std::stod(rects[0].at("x")) == doctest::Approx(left).epsilon(1e-4));
  CHECK(std::stod(rects[0].at("y")) == doctest::Approx(top + h * 0.75).epsilon(1e-4));
  CHECK(std::stod(rects[0].at("width")) == doctest::Approx(w / 2).epsilon(1e-4));
  CHECK(rects[0].at("fill") == "#1f77b4");
  CHECK(rects[1].at("fill") == "#ff7f0e");
  CHECK(std::stod(rects[2].at("width")) == doctest::Approx(w).epsilon(1e-4));  // row 1: one run
  CHECK(rects[3].at("fill") == "#2ca02c");                                     // row 2 starts with class 2
  const auto points = elements(svg, "circle");
  REQUIRE(points.size() == 3);  // the NaN point is skipped
  CHECK(points[0].at("fill") == "#1f77b4");
  CHECK(points[1].at("fill") == "#ff7f0e");
  CHECK(points[2].at("fill") == "#2ca02c");
  CHECK(std::stod(points[0].at("cx")) == doctest::Approx(left).epsilon(1e-4));  // (-1, -1): bottom left
  CHECK(std::stod(points[0].at("cy")) == doctest::Approx(top + h).epsilon(1e-4));
  CHECK(std::stod(points[1].at("cx")) == doctest::Approx(left + w).epsilon(1e-4));  // (1, 1): top right
  CHECK(std::stod(points[1].at("cy")) == doctest::Approx(top).epsilon(1e-4));
}

TEST_CASE("DecisionBoundaryPlot: classes from a function, tensors of points, and errors") {
  DecisionBoundaryPlot plot("halves", -1, 1, -1, 1, 3, 4);
  plot.set_classes([](double x, double) { return x > 0 ? 1 : 0; });
  plot.add_points(from_vector(std::vector<double>{0.5, 0.5, -0.5, -0.5}, {2, 2}),
                  from_vector(std::vector<std::int64_t>{1, 0}, {2}));
  const std::string svg = plot.svg();
  CHECK(check_well_formed(svg) == "");
  CHECK(elements(svg, "rect").size() == 2 + 3 * 2);  // background, frame, two runs per row
  CHECK(elements(svg, "circle").size() == 2);
  CHECK_THROWS_EMBER(plot.set_classes(zeros({4, 3}, DType::Int64)), "classes of shape [4, 3] for a grid of [3, 4]");
  CHECK_THROWS_EMBER(plot.set_classes(full({12}, 0.5)), "class 0.5 is not an integer");
  CHECK_THROWS_EMBER(plot.add_points({1}, {1, 2}, {0}), "1 x, 2 y and 1 labels");
  CHECK_THROWS_EMBER(DecisionBoundaryPlot("bad", 1, 1, 0, 1), "empty or infinite region");
  CHECK_THROWS_EMBER(DecisionBoundaryPlot("bad", 0, 1, 0, 1, 0, 5), "grid of 0 x 5 cells");
}

// --- ProgressBar ---

TEST_CASE("format_duration: mm:ss below an hour, h:mm:ss above") {
  CHECK(format_duration(0) == "00:00");
  CHECK(format_duration(59.4) == "00:59");
  CHECK(format_duration(59.6) == "01:00");
  CHECK(format_duration(61) == "01:01");
  CHECK(format_duration(3599) == "59:59");
  CHECK(format_duration(3600) == "1:00:00");
  CHECK(format_duration(3661) == "1:01:01");
  CHECK(format_duration(36000 + 120 + 3) == "10:02:03");
  CHECK(format_duration(-1) == "--:--");
  CHECK(format_duration(NAN) == "--:--");
  CHECK(format_duration(INFINITY) == "--:--");
}

namespace {

/// Lines of plain output from updating every step 1..total.
std::size_t plain_lines(std::int64_t total, std::int64_t every_nth_update = 1) {
  std::ostringstream out;
  double t = 0;
  ProgressBar bar(total, out, false, [&t] { return t; });
  for (std::int64_t s = every_nth_update; s <= total; s += every_nth_update) {
    t += 1;
    bar.update(s, 1.0, 100);
  }
  const std::string text = out.str();
  CHECK(text.find('\r') == std::string::npos);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("ProgressBar: plain lines every max(1, total / 20) steps and at the end") {
  CHECK(plain_lines(100) == 20);  // 5, 10, ..., 100
  CHECK(plain_lines(45) == 23);   // 2, 4, ..., 44 and 45
  CHECK(plain_lines(7) == 7);     // every step
  CHECK(plain_lines(1) == 1);
  CHECK(plain_lines(1000, 10) == 20);  // updates every 10 steps still cross each multiple of 50 once
  CHECK(plain_lines(100, 7) == 14);    // 7, 14, ..., 98: each crosses a multiple of 5 (and 100 never comes)
}

TEST_CASE("ProgressBar: a terminal line is redrawn with \\r at most every 0.1 s and ended at the last step") {
  std::ostringstream out;
  double t = 0;
  {
    ProgressBar bar(100, out, true, [&t] { return t; });
    for (int s = 1; s <= 100; ++s) {
      t = 0.03 * s;
      bar.update(s, 2.0, 5e4);
    }
  }
  const std::string text = out.str();
  // Drawn at steps 1, 5, 9, ..., 97 (0.12 s apart; 0.09 is too soon) and at 100.
  CHECK(std::count(text.begin(), text.end(), '\r') == 26);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(text.back() == '\n');
  const std::string last = text.substr(text.rfind('\r') + 1);
  CHECK(last.find("[########################] 100/100  loss 2.0000  50.0k tok/s  eta 00:00  elapsed 00:03") == 0);
  const std::string first = text.substr(1, text.find('\r', 1) - 1);
  CHECK(first.find("[------------------------] 1/100") == 0);
}

TEST_CASE("ProgressBar: ETA from a moving average of the step time") {
  std::ostringstream out;
  double t = 0;
  ProgressBar bar(100, out, false, [&t] { return t; });
  for (int s = 1; s <= 10; ++s) {
    t = 2.0 * s;
    bar.update(s, 0.5, 0);
  }
  CHECK(bar.seconds_per_step() == doctest::Approx(2.0));
  CHECK(bar.eta_seconds(10) == doctest::Approx(180));
  CHECK(out.str().find("step 10/100  loss 0.5000  eta 03:00  elapsed 00:20\n") != std::string::npos);
  t += 12;  // the next step takes 12 s: ema = 0.1 * 12 + 0.9 * 2 = 3
  bar.update(11, 0.5, 0);
  CHECK(bar.seconds_per_step() == doctest::Approx(3.0));
  t += 2 * 3;  // two steps at once, 3 s each: the average stays 3
  bar.update(13, 0.5, 0);
  CHECK(bar.seconds_per_step() == doctest::Approx(3.0));
  CHECK(bar.eta_seconds(13) == doctest::Approx(3.0 * 87));
}

TEST_CASE("ProgressBar: a resumed run measures from its start step") {
  std::ostringstream out;
  double t = 100;
  ProgressBar bar(
      5000, out, false, [&t] { return t; }, 4000);
  CHECK(std::isnan(bar.seconds_per_step()));
  t = 103;
  bar.update(4001, 1, 0);
  CHECK(bar.seconds_per_step() == doctest::Approx(3.0));
  CHECK(bar.eta_seconds(4001) == doctest::Approx(3.0 * 999));
}
