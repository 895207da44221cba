/// \file
/// \brief TaskData, the copy, selective copy, MQAR and induction generators, and exact-match scoring.
/// Each example n draws from its own Philox stream (seed, n), so the first rows of a task do not
/// depend on how many rows are asked for.
#include "train/data/tasks.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/creation.h"
#include "core/error.h"
#include "train/data/random.h"

namespace ember::data {
namespace {

/// The data symbols of copy, selective copy and induction, in id order.
constexpr char kSymbols[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::int64_t kMaxSymbols = 52;

void check_in(const char* op, const char* what, std::int64_t value, std::int64_t low, std::int64_t high) {
  EMBER_CHECK(value >= low && value <= high,
              fmt::format("{}: {} must be in [{}, {}], got {}", op, what, low, high, value));
}

void check_examples(const char* op, std::int64_t num_examples) {
  EMBER_CHECK(num_examples >= 1, fmt::format("{}: num_examples must be at least 1, got {}", op, num_examples));
}

/// Row-major [N, T] buffers for inputs and targets, the targets starting unscored.
struct Rows {
  Rows(std::int64_t n, std::int64_t t)
      : n(n), t(t), inputs(static_cast<std::size_t>(n * t)), targets(static_cast<std::size_t>(n * t), kIgnoreIndex) {}
  std::int64_t* input(std::int64_t row) { return inputs.data() + row * t; }
  std::int64_t* target(std::int64_t row) { return targets.data() + row * t; }
  std::int64_t n, t;
  std::vector<std::int64_t> inputs, targets;
};

/// Writes a full sequence seq[0..T] as inputs seq[0, T) and targets seq[1, T], scoring target t only
/// where scored(t).
template <class Scored>
void write_shifted(Rows& rows, std::int64_t row, const std::vector<std::int64_t>& seq, Scored scored) {
  std::int64_t* in = rows.input(row);
  std::int64_t* tg = rows.target(row);
  for (std::int64_t t = 0; t < rows.t; ++t) {
    in[t] = seq[t];
    if (scored(t)) tg[t] = seq[t + 1];
  }
}

TaskData make_task(std::string name, std::string alphabet, Rows rows, AnswerFormatter formatter = {}) {
  TaskData task;
  task.name = std::move(name);
  task.tokenizer = CharTokenizer(std::move(alphabet));
  task.inputs = from_vector(rows.inputs, {rows.n, rows.t});
  task.targets = from_vector(rows.targets, {rows.n, rows.t});
  task.seq_len = rows.t;
  task.formatter = std::move(formatter);
  return task;
}

std::vector<std::int64_t> row_of(const Tensor& x, std::int64_t row) {
  return select(x, 0, row).to_vector<std::int64_t>();
}

/// The tokens of `values` where `targets` is scored.
std::vector<std::int64_t> scored(const std::vector<std::int64_t>& values, const std::vector<std::int64_t>& targets) {
  std::vector<std::int64_t> out;
  for (std::size_t t = 0; t < targets.size(); ++t)
    if (targets[t] != kIgnoreIndex) out.push_back(values[t]);
  return out;
}

/// Rows of predictions and targets as host vectors, after checking that they match.
struct Compared {
  std::vector<std::int64_t> predictions, targets;
  std::int64_t n, t;
};

Compared compare(const char* op, const Tensor& predictions, const Tensor& targets) {
  EMBER_CHECK(predictions.defined() && targets.defined(), fmt::format("{}: undefined tensor", op));
  EMBER_CHECK(predictions.shape() == targets.shape() && targets.dim() >= 1,
              fmt::format("{}: predictions {} and targets {} must have the same shape [N, ...]", op,
                          shape_str(predictions.shape()), shape_str(targets.shape())));
  EMBER_CHECK(targets.size(0) > 0, fmt::format("{}: no rows in targets {}", op, shape_str(targets.shape())));
  const std::int64_t n = targets.size(0);
  return {predictions.to_vector<std::int64_t>(), targets.to_vector<std::int64_t>(), n, targets.numel() / n};
}

}  // namespace

// --- TaskData ---

std::int64_t TaskData::size() const { return inputs.size(0); }

std::shared_ptr<TensorDataset> TaskData::dataset() const { return std::make_shared<TensorDataset>(inputs, targets); }

std::vector<std::int64_t> TaskData::answer(std::int64_t row) const {
  check_example_index("TaskData::answer", row, size());
  const std::vector<std::int64_t> target = row_of(targets, row);
  return scored(target, target);
}

std::vector<std::int64_t> TaskData::answer(std::int64_t row, const Tensor& predictions) const {
  check_example_index("TaskData::answer", row, size());
  EMBER_CHECK(
      predictions.defined() && predictions.shape() == targets.shape(),
      fmt::format("TaskData::answer: predictions {} must have the targets' shape {}",
                  predictions.defined() ? shape_str(predictions.shape()) : "(undefined)", shape_str(targets.shape())));
  return scored(row_of(predictions, row), row_of(targets, row));
}

namespace {

std::string format_with(const TaskData& task, std::int64_t row, const std::vector<std::int64_t>& answer) {
  const std::vector<std::int64_t> input = row_of(task.inputs, row);
  if (task.formatter) return task.formatter(input, answer);
  return task.tokenizer.decode(input) + " -> " + task.tokenizer.decode(answer);
}

}  // namespace

std::string TaskData::format(std::int64_t row) const { return format_with(*this, row, answer(row)); }

std::string TaskData::format(std::int64_t row, const Tensor& predictions) const {
  return format_with(*this, row, answer(row, predictions));
}

// --- copy ---

TaskData copy_task(const CopyConfig& config, std::uint64_t seed) {
  check_in("copy_task", "length", config.length, 1, 1 << 20);
  check_in("copy_task", "num_symbols", config.num_symbols, 2, kMaxSymbols);
  check_examples("copy_task", config.num_examples);
  const std::int64_t len = config.length, sep = config.num_symbols;
  Rows rows(config.num_examples, 2 * len);
  std::vector<std::int64_t> seq(static_cast<std::size_t>(2 * len + 1));
  for (std::int64_t n = 0; n < rows.n; ++n) {
    PhiloxStream rng(seed, static_cast<std::uint64_t>(n));
    for (std::int64_t i = 0; i < len; ++i) seq[i] = seq[len + 1 + i] = rng.uniform_int(config.num_symbols);
    seq[len] = sep;
    write_shifted(rows, n, seq, [&](std::int64_t t) { return t >= len; });
  }
  std::string alphabet = std::string(kSymbols, static_cast<std::size_t>(config.num_symbols)) + "|";
  const CharTokenizer tok(alphabet);
  auto formatter = [tok, len](const std::vector<std::int64_t>& input, const std::vector<std::int64_t>& answer) {
    return tok.decode(std::vector<std::int64_t>(input.begin(), input.begin() + len + 1)) + tok.decode(answer);
  };
  return make_task("copy", std::move(alphabet), std::move(rows), formatter);
}

// --- selective copy ---

TaskData selective_copy_task(const SelectiveCopyConfig& config, std::uint64_t seed) {
  check_in("selective_copy_task", "num_tokens", config.num_tokens, 1, 1 << 20);
  EMBER_CHECK(
      config.length >= config.num_tokens,
      fmt::format("selective_copy_task: length {} is too short for {} data tokens", config.length, config.num_tokens));
  check_in("selective_copy_task", "num_symbols", config.num_symbols, 2, kMaxSymbols);
  check_examples("selective_copy_task", config.num_examples);
  const std::int64_t len = config.length, k = config.num_tokens, marker = config.num_symbols + 1;
  Rows rows(config.num_examples, len + k);
  for (std::int64_t n = 0; n < rows.n; ++n) {
    PhiloxStream rng(seed, static_cast<std::uint64_t>(n));
    std::int64_t* in = rows.input(n);
    std::int64_t* tg = rows.target(n);
    // Selection sampling (Knuth's algorithm S): k of the len positions, uniformly, in increasing order.
    std::int64_t placed = 0;
    for (std::int64_t p = 0; p < len; ++p) {
      const bool take = rng.uniform_int(len - p) < k - placed;
      in[p] = take ? 1 + rng.uniform_int(config.num_symbols) : 0;
      if (take) tg[len + placed++] = in[p];
    }
    for (std::int64_t j = 0; j < k; ++j) in[len + j] = marker;
  }
  std::string alphabet = ".";  // (not "." + std::string: g++ 12 warns falsely on it, -Wrestrict)
  alphabet.append(kSymbols, static_cast<std::size_t>(config.num_symbols)).push_back('?');
  return make_task("selective_copy", std::move(alphabet), std::move(rows));
}

// --- multi-query associative recall ---

TaskData mqar_task(const MqarConfig& config, std::uint64_t seed) {
  check_in("mqar_task", "num_pairs", config.num_pairs, 1, 26);
  check_in("mqar_task", "num_queries", config.num_queries, 1, config.num_pairs);
  EMBER_CHECK(config.num_keys >= config.num_pairs && config.num_keys <= 26,
              fmt::format("mqar_task: num_keys must be in [num_pairs, 26] = [{}, 26] so that keys are distinct, got {}",
                          config.num_pairs, config.num_keys));
  EMBER_CHECK(config.num_values >= config.num_pairs && config.num_values <= 26,
              fmt::format("mqar_task: num_values must be in [num_pairs, 26] = [{}, 26] so that values are distinct, "
                          "got {}",
                          config.num_pairs, config.num_values));
  check_examples("mqar_task", config.num_examples);
  const std::int64_t pairs = config.num_pairs, queries = config.num_queries, keys = config.num_keys;
  const std::int64_t context = 2 * pairs;
  Rows rows(config.num_examples, 2 * (pairs + queries) - 1);
  std::vector<std::int64_t> seq(static_cast<std::size_t>(rows.t + 1));
  for (std::int64_t n = 0; n < rows.n; ++n) {
    PhiloxStream rng(seed, static_cast<std::uint64_t>(n));
    const std::vector<std::int64_t> key = random_permutation(keys, rng);
    const std::vector<std::int64_t> value = random_permutation(config.num_values, rng);
    const std::vector<std::int64_t> asked = random_permutation(pairs, rng);
    for (std::int64_t i = 0; i < pairs; ++i) {
      seq[2 * i] = key[i];
      seq[2 * i + 1] = keys + value[i];
    }
    for (std::int64_t j = 0; j < queries; ++j) {
      seq[context + 2 * j] = seq[2 * asked[j]];
      seq[context + 2 * j + 1] = seq[2 * asked[j] + 1];
    }
    write_shifted(rows, n, seq, [&](std::int64_t t) { return t >= context && (t - context) % 2 == 0; });
  }
  std::string alphabet = std::string(kSymbols, static_cast<std::size_t>(keys)) +
                         std::string(kSymbols + 26, static_cast<std::size_t>(config.num_values));
  const CharTokenizer tok(alphabet);
  auto formatter = [tok, context](const std::vector<std::int64_t>& input, const std::vector<std::int64_t>& answer) {
    std::string out = tok.decode(std::vector<std::int64_t>(input.begin(), input.begin() + context)) + " |";
    for (std::size_t j = 0; j < answer.size(); ++j)
      out += fmt::format(" {}:{}", tok.alphabet()[input[context + 2 * j]], tok.decode({answer[j]}));
    return out;
  };
  return make_task("mqar", std::move(alphabet), std::move(rows), formatter);
}

// --- induction heads ---

TaskData induction_task(const InductionConfig& config, std::uint64_t seed) {
  check_in("induction_task", "length", config.length, 6, 1 << 24);
  check_in("induction_task", "num_symbols", config.num_symbols, 2, kMaxSymbols);
  check_examples("induction_task", config.num_examples);
  const std::int64_t len = config.length, trigger = config.num_symbols;
  Rows rows(config.num_examples, len - 1);
  std::vector<std::int64_t> seq(static_cast<std::size_t>(len));
  for (std::int64_t n = 0; n < rows.n; ++n) {
    PhiloxStream rng(seed, static_cast<std::uint64_t>(n));
    for (auto& s : seq) s = rng.uniform_int(config.num_symbols);
    const std::int64_t first = rng.uniform_int(len / 2 - 1);  // the trigger and X both in the first half
    seq[first] = seq[len - 2] = trigger;
    seq[len - 1] = seq[first + 1];
    write_shifted(rows, n, seq, [&](std::int64_t t) { return t == len - 2; });
  }
  std::string alphabet = std::string(kSymbols, static_cast<std::size_t>(config.num_symbols)) + "#";
  return make_task("induction", std::move(alphabet), std::move(rows));
}

// --- evaluation ---

namespace {

std::vector<bool> rows_right(const Compared& c) {
  std::vector<bool> ok(static_cast<std::size_t>(c.n), true);
  for (std::int64_t i = 0; i < c.n * c.t; ++i)
    if (c.targets[i] != kIgnoreIndex && c.predictions[i] != c.targets[i]) ok[i / c.t] = false;
  return ok;
}

}  // namespace

std::vector<bool> rows_correct(const Tensor& predictions, const Tensor& targets) {
  return rows_right(compare("rows_correct", predictions, targets));
}

double exact_match(const Tensor& predictions, const Tensor& targets) {
  const std::vector<bool> ok = rows_right(compare("exact_match", predictions, targets));
  const auto right = std::count(ok.begin(), ok.end(), true);
  return static_cast<double>(right) / static_cast<double>(ok.size());
}

double token_accuracy(const Tensor& predictions, const Tensor& targets) {
  const Compared c = compare("token_accuracy", predictions, targets);
  std::int64_t scored_count = 0, right = 0;
  for (std::int64_t i = 0; i < c.n * c.t; ++i) {
    if (c.targets[i] == kIgnoreIndex) continue;
    ++scored_count;
    right += c.predictions[i] == c.targets[i];
  }
  EMBER_CHECK(scored_count > 0, "token_accuracy: targets have no scored position");
  return static_cast<double>(right) / static_cast<double>(scored_count);
}

}  // namespace ember::data
