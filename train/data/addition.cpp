/// \file
/// \brief The addition task: distinct (a, b) pairs split into training and held-out problems, and
/// reading "a+b=c." sequences back as numbers.
#include <algorithm>
#include <cctype>
#include <unordered_set>
#include <utility>

#include <fmt/format.h>

#include "core/creation.h"
#include "core/error.h"
#include "train/data/random.h"
#include "train/data/tasks.h"

namespace ember::data {
namespace {

constexpr char kAlphabet[] = "0123456789+=.";  // digit k has id k
constexpr std::int64_t kPlus = 10, kEquals = 11, kEnd = 12;

std::int64_t pow10(std::int64_t e) {
  std::int64_t p = 1;
  while (e-- > 0) p *= 10;
  return p;
}

void check_digits(const char* op, std::int64_t digits) {
  EMBER_CHECK(digits >= 1 && digits <= 9, fmt::format("{}: digits must be in [1, 9], got {}", op, digits));
}

/// `count` distinct integers of [0, total) in uniformly random order: Floyd's sampling of a uniform
/// subset (Bentley & Floyd, CACM 1987) in O(count), then a Fisher-Yates shuffle of it.
std::vector<std::int64_t> distinct_sample(std::int64_t total, std::int64_t count, PhiloxStream& rng) {
  std::unordered_set<std::int64_t> taken;
  taken.reserve(static_cast<std::size_t>(2 * count));
  std::vector<std::int64_t> out;
  out.reserve(static_cast<std::size_t>(count));
  for (std::int64_t j = total - count; j < total; ++j) {
    const std::int64_t r = rng.uniform_int(j + 1);
    const std::int64_t pick = taken.count(r) ? j : r;
    taken.insert(pick);
    out.push_back(pick);
  }
  for (std::int64_t i = count - 1; i > 0; --i) std::swap(out[i], out[rng.uniform_int(i + 1)]);
  return out;
}

/// Writes `value` zero-padded to `width` digits, most significant first unless `reversed`.
void write_digits(std::int64_t value, std::int64_t width, bool reversed, std::int64_t* out) {
  for (std::int64_t i = 0; i < width; ++i, value /= 10) out[reversed ? i : width - 1 - i] = value % 10;
}

/// The problems pairs[begin, end) (pair code = a * 10^digits + b) as a task.
TaskData addition_rows(const std::vector<std::int64_t>& pairs, std::size_t begin, std::size_t end,
                       const AdditionConfig& config) {
  const std::int64_t d = config.digits, t_len = 3 * d + 3, base = pow10(d);
  const auto n = static_cast<std::int64_t>(end - begin);
  std::vector<std::int64_t> inputs(static_cast<std::size_t>(n * t_len));
  std::vector<std::int64_t> targets(inputs.size(), kIgnoreIndex);
  std::vector<std::int64_t> seq(static_cast<std::size_t>(t_len + 1));
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int64_t a = pairs[begin + r] / base, b = pairs[begin + r] % base;
    write_digits(a, d, false, &seq[0]);
    seq[d] = kPlus;
    write_digits(b, d, false, &seq[d + 1]);
    seq[2 * d + 1] = kEquals;
    write_digits(a + b, d + 1, config.reverse_answer, &seq[2 * d + 2]);
    seq[3 * d + 3] = kEnd;
    std::copy(seq.begin(), seq.end() - 1, inputs.begin() + r * t_len);
    std::copy(seq.begin() + 2 * d + 2, seq.end(), targets.begin() + r * t_len + 2 * d + 1);
  }
  TaskData task;
  task.name = "addition";
  task.tokenizer = CharTokenizer(kAlphabet);
  task.inputs = from_vector(inputs, {n, t_len});
  task.targets = from_vector(targets, {n, t_len});
  task.seq_len = t_len;
  task.formatter = [tok = task.tokenizer, config](const std::vector<std::int64_t>& input,
                                                  const std::vector<std::int64_t>& answer) {
    const std::vector<std::int64_t> prompt(input.begin(), input.begin() + 2 * config.digits + 2);
    return format_addition_example(tok.decode(prompt) + tok.decode(answer), config);
  };
  return task;
}

/// The number written by `text` (all digits), read backwards when `reversed`.
std::int64_t parse_number(std::string text, bool reversed) {
  if (reversed) std::reverse(text.begin(), text.end());
  std::int64_t value = 0;
  for (char c : text) value = 10 * value + (c - '0');
  return value;
}

bool all_digits(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

TaskSplit addition_task(const AdditionConfig& config, std::uint64_t seed) {
  check_digits("addition_task", config.digits);
  EMBER_CHECK(config.num_train >= 1,
              fmt::format("addition_task: num_train must be at least 1, got {}", config.num_train));
  EMBER_CHECK(config.num_held_out >= 0,
              fmt::format("addition_task: num_held_out must be non-negative, got {}", config.num_held_out));
  const std::int64_t total = pow10(2 * config.digits), count = config.num_train + config.num_held_out;
  EMBER_CHECK(count <= total,
              fmt::format("addition_task: {} problems asked for (num_train {} + num_held_out {}) but only "
                          "{} distinct (a, b) pairs exist with digits = {}",
                          count, config.num_train, config.num_held_out, total, config.digits));
  PhiloxStream rng(seed, 0);
  const std::vector<std::int64_t> pairs = distinct_sample(total, count, rng);
  const auto cut = static_cast<std::size_t>(config.num_train);
  return {addition_rows(pairs, 0, cut, config), addition_rows(pairs, cut, pairs.size(), config)};
}

AdditionCheck check_addition(const std::string& sequence, const AdditionConfig& config) {
  check_digits("check_addition", config.digits);
  const auto d = static_cast<std::size_t>(config.digits);
  AdditionCheck check;
  if (sequence.size() < 3 * d + 4) return check;
  const std::string a = sequence.substr(0, d), b = sequence.substr(d + 1, d), c = sequence.substr(2 * d + 2, d + 1);
  check.well_formed = all_digits(a) && all_digits(b) && all_digits(c) && sequence[d] == '+' &&
                      sequence[2 * d + 1] == '=' && sequence[3 * d + 3] == kAlphabet[kEnd];
  if (!check.well_formed) return check;
  check.a = parse_number(a, false);
  check.b = parse_number(b, false);
  check.answer = parse_number(c, config.reverse_answer);
  check.correct = check.a + check.b == check.answer;
  return check;
}

std::string format_addition_example(const std::string& sequence, const AdditionConfig& config) {
  check_digits("format_addition_example", config.digits);
  const auto prompt = static_cast<std::size_t>(2 * config.digits + 2);
  if (sequence.size() <= prompt) return sequence;
  std::string answer = sequence.substr(prompt);
  answer = answer.substr(0, answer.find(kAlphabet[kEnd]));
  if (config.reverse_answer) std::reverse(answer.begin(), answer.end());
  if (all_digits(answer)) answer.erase(0, std::min(answer.find_first_not_of('0'), answer.size() - 1));
  return sequence.substr(0, prompt) + answer;
}

}  // namespace ember::data
