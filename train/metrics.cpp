/// \file
/// \brief MetricsLog and read_csv.
#include "train/metrics.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/atomic_file.h"
#include "core/error.h"

namespace ember::train {

namespace {

/// Splits one CSV line at commas (metrics files never quote).
std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    fields.push_back(line.substr(start, comma - start));
    if (comma == std::string::npos) return fields;
    start = comma + 1;
  }
}

double parse_number(const std::string& field, const std::string& where, std::size_t index) {
  const char* begin = field.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  EMBER_CHECK(!field.empty() && end == begin + field.size(),
              fmt::format("read_csv: {}: field {} ('{}') is not a number", where, index + 1, field));
  return v;
}

/// "step,loss,lr\n".
std::string header_line(const std::vector<std::string>& columns) {
  return fmt::format("{}\n", fmt::join(columns, ","));
}

/// "12,0.5,0.001\n": the step as an integer, the values in their shortest round-trip form.
std::string row_line(const std::vector<double>& row) {
  std::string line = fmt::format("{}", static_cast<std::int64_t>(row[0]));
  for (std::size_t i = 1; i < row.size(); ++i) line += fmt::format(",{}", row[i]);
  return line + "\n";
}

void check_column_name(const std::string& name) {
  EMBER_CHECK(
      !name.empty() && name.find_first_of(",\"\r\n") == std::string::npos,
      fmt::format("MetricsLog::append: column name \"{}\" is empty or holds a comma, quote or line break", name));
  EMBER_CHECK(name != "step", "MetricsLog::append: \"step\" is the step argument, not a column to pass in values");
}

}  // namespace

std::size_t MetricsTable::index_of(const std::string& name) const {
  const auto it = std::find(columns.begin(), columns.end(), name);
  EMBER_CHECK(it != columns.end(),
              fmt::format("MetricsTable: no column \"{}\" (the columns are {})", name, fmt::join(columns, ", ")));
  return static_cast<std::size_t>(it - columns.begin());
}

std::vector<double> MetricsTable::column(const std::string& name) const {
  const std::size_t i = index_of(name);
  std::vector<double> values;
  for (const auto& row : rows) values.push_back(row[i]);
  return values;
}

MetricsTable read_csv(const std::string& path) {
  std::ifstream in(path);
  EMBER_CHECK(in.is_open(), fmt::format("read_csv: cannot open '{}': {}", path, std::strerror(errno)));
  MetricsTable table;
  std::string line;
  for (std::size_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> fields = split_fields(line);
    if (table.columns.empty()) {
      table.columns = std::move(fields);
      continue;
    }
    const std::string where = fmt::format("{}:{}", path, number);
    EMBER_CHECK(fields.size() == table.columns.size(),
                fmt::format("read_csv: {}: expected {} fields, got {}", where, table.columns.size(), fields.size()));
    std::vector<double> row;
    for (std::size_t i = 0; i < fields.size(); ++i) row.push_back(parse_number(fields[i], where, i));
    table.rows.push_back(std::move(row));
  }
  return table;
}

MetricsLog::MetricsLog(std::string path) : MetricsLog(std::move(path), MetricsTable{{"step"}, {}}, false) {}

MetricsLog::MetricsLog(std::string path, MetricsTable table, bool fixed)
    : path_(std::move(path)), table_(std::move(table)), fixed_(fixed) {
  // A fresh log truncates the file; a resumed one (already rewritten) appends to it.
  out_.open(path_, fixed_ ? std::ios::app : std::ios::trunc);
  EMBER_CHECK(out_.is_open(), fmt::format("MetricsLog: cannot open '{}' for writing: {}", path_, std::strerror(errno)));
}

MetricsLog MetricsLog::resume(const std::string& path, std::int64_t resume_step) {
  if (!std::filesystem::exists(path)) return MetricsLog(path);
  MetricsTable table = read_csv(path);
  if (table.columns.empty()) return MetricsLog(path);
  EMBER_CHECK(table.columns.front() == "step",
              fmt::format("MetricsLog::resume: '{}' has no step column first (header: {})", path,
                          fmt::join(table.columns, ",")));
  std::erase_if(table.rows, [&](const std::vector<double>& row) { return row[0] >= static_cast<double>(resume_step); });
  std::string text = header_line(table.columns);
  for (const auto& row : table.rows) text += row_line(row);
  write_file_atomic(path, text);
  return MetricsLog(path, std::move(table), true);
}

std::vector<double> MetricsLog::ordered_row(std::int64_t step, const MetricValues& values) const {
  std::vector<std::string> names;
  for (const auto& [name, value] : values) {
    check_column_name(name);
    EMBER_CHECK(std::find(names.begin(), names.end(), name) == names.end(),
                fmt::format("MetricsLog::append: column \"{}\" given twice at step {}", name, step));
    EMBER_CHECK(!fixed_ || std::find(columns().begin(), columns().end(), name) != columns().end(),
                fmt::format("MetricsLog::append: unknown column \"{}\" at step {} (the columns are {})", name, step,
                            fmt::join(columns(), ", ")));
    names.push_back(name);
  }
  if (!fixed_) names.insert(names.begin(), "step");
  const std::vector<std::string>& order = fixed_ ? columns() : names;
  std::vector<double> row{static_cast<double>(step)};
  for (std::size_t c = 1; c < order.size(); ++c) {
    const auto it = std::find_if(values.begin(), values.end(), [&](const auto& v) { return v.first == order[c]; });
    EMBER_CHECK(it != values.end(),
                fmt::format("MetricsLog::append: missing column \"{}\" at step {}", order[c], step));
    row.push_back(it->second);
  }
  return row;
}

void MetricsLog::append(std::int64_t step, const MetricValues& values) {
  std::vector<double> row = ordered_row(step, values);
  if (!fixed_) {
    table_.columns = {"step"};
    for (const auto& v : values) table_.columns.push_back(v.first);
    fixed_ = true;
    write_line(header_line(table_.columns));
  }
  write_line(row_line(row));
  table_.rows.push_back(std::move(row));
}

void MetricsLog::write_line(const std::string& line) {
  out_ << line << std::flush;  // flushed, so a crash loses at most the row being written
  EMBER_CHECK(out_.good(), fmt::format("MetricsLog: cannot write to '{}'", path_));
}

}  // namespace ember::train
