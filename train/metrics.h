/// \file
/// \brief Training metrics as a CSV file: MetricsLog appends one row per logged step (step, then named
/// columns such as loss, lr, tokens_per_s), keeps the rows in memory, and resumes an existing log;
/// read_csv() reads such a file back.
///
/// The columns are fixed by the first row (or by the header of a resumed file); every later row must
/// give exactly those columns. Values are written in the shortest form that reads back to the same
/// double, "nan" and "inf" included, so a value that is not known at a step (an evaluation loss
/// between evaluations) is written as NaN rather than left out.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace ember::train {

/// Named values of one row, in column order for the first row (any order later).
using MetricValues = std::vector<std::pair<std::string, double>>;

/// A CSV file of numbers: its header and its rows.
struct MetricsTable {
  std::vector<std::string> columns;       ///< the header, "step" first for a MetricsLog file
  std::vector<std::vector<double>> rows;  ///< one vector of columns.size() values per row

  /// Position of `name` in columns; throws ember::Error naming it and the columns when absent.
  std::size_t index_of(const std::string& name) const;
  /// Every row's value of column `name`.
  std::vector<double> column(const std::string& name) const;
};

/// Reads a CSV file of numbers with a header line; throws ember::Error naming the file and line when a
/// row has the wrong number of fields or a field is not a number. An empty file gives an empty table.
MetricsTable read_csv(const std::string& path);

/// Appends rows of metrics to a CSV file (flushed after every row) and keeps them in memory.
class MetricsLog {
 public:
  /// Starts a new log at `path`, replacing any file there.
  explicit MetricsLog(std::string path);
  /// Continues the log at `path` for a run resumed at `resume_step`: keeps its header and the rows with
  /// step < resume_step, drops later ones (rewriting the file atomically). A missing file starts anew.
  static MetricsLog resume(const std::string& path, std::int64_t resume_step);

  /// Appends the row (step, values...); the first row fixes the columns. Throws ember::Error on a
  /// column name that is unknown, missing, repeated, named "step", or not writable in CSV (, " or a
  /// line break).
  void append(std::int64_t step, const MetricValues& values);

  /// The columns, "step" first (only "step" before the first row).
  const std::vector<std::string>& columns() const { return table_.columns; }
  /// The rows so far (the resumed ones included).
  const std::vector<std::vector<double>>& rows() const { return table_.rows; }
  /// The columns and rows.
  const MetricsTable& table() const { return table_; }
  /// The CSV file's path.
  const std::string& path() const { return path_; }

 private:
  MetricsLog(std::string path, MetricsTable table, bool fixed);
  std::vector<double> ordered_row(std::int64_t step, const MetricValues& values) const;
  void write_line(const std::string& line);

  std::string path_;
  MetricsTable table_;
  bool fixed_ = false;  // whether the columns are set (and the header written)
  std::ofstream out_;
};

}  // namespace ember::train
