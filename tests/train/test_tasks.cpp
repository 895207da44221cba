/// \file
/// \brief Synthetic task tests: each generated example is read back token by token and checked
/// against the task's definition (sums parsed as integers, copies compared with the data, recalled
/// values looked up in the context, induction answers found after the first trigger), plus splits,
/// determinism in the seed, spiral geometry, exact-match scoring by hand, and config errors.
#include <chrono>
#include <cmath>
#include <map>
#include <numbers>
#include <set>
#include <string>

#include "helpers.h"
#include "train/data/loader.h"
#include "train/data/tasks.h"

using namespace ember;
using namespace ember::data;

namespace {

/// An [N, T] tensor as a host array.
struct Grid {
  explicit Grid(const Tensor& t) : v(t.to_vector<std::int64_t>()), n(t.size(0)), t(t.size(1)) {}
  std::int64_t at(std::int64_t r, std::int64_t c) const { return v[r * t + c]; }
  std::vector<std::int64_t> v;
  std::int64_t n, t;
};

/// Row r of an LM-style task as text: the inputs and the last target.
std::string full_sequence(const TaskData& task, const Grid& in, const Grid& tg, std::int64_t r) {
  std::vector<std::int64_t> ids(in.v.begin() + r * in.t, in.v.begin() + (r + 1) * in.t);
  ids.push_back(tg.at(r, tg.t - 1));
  return task.tokenizer.decode(ids);
}

bool same(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && test::max_abs_diff(a, b) == 0; }

/// Parses "ddd+ddd=cccc." (answer reversed when `reversed`) with the standard library, independently of
/// the task's own check_addition.
void check_sum(const std::string& s, std::int64_t d, bool reversed, std::set<std::pair<int, int>>* pairs) {
  CAPTURE(s);
  REQUIRE(s.size() == static_cast<std::size_t>(3 * d + 4));
  REQUIRE(s[d] == '+');
  REQUIRE(s[2 * d + 1] == '=');
  REQUIRE(s.back() == '.');
  const int a = std::stoi(s.substr(0, d)), b = std::stoi(s.substr(d + 1, d));
  std::string c = s.substr(2 * d + 2, d + 1);
  if (reversed) c = std::string(c.rbegin(), c.rend());
  CHECK(std::stoi(c) == a + b);
  if (pairs) CHECK(pairs->insert({a, b}).second);  // each pair once
}

}  // namespace

// --- addition ---

TEST_CASE("addition: every example is a correct sum with a reversed answer and an end token") {
  AdditionConfig cfg;
  cfg.num_train = 2000;
  cfg.num_held_out = 500;
  const TaskSplit split = addition_task(cfg, 7);
  const TaskData& train = split.train;
  CHECK(train.name == "addition");
  CHECK(train.inputs.shape() == Shape{2000, 12});
  CHECK(train.targets.shape() == Shape{2000, 12});
  CHECK(train.inputs.dtype() == DType::Int64);
  CHECK(train.targets.dtype() == DType::Int64);
  CHECK(train.seq_len == 12);
  CHECK(train.vocab_size() == 13);
  CHECK(split.held_out.size() == 500);
  std::set<std::pair<int, int>> train_pairs, held_pairs;
  for (const auto* task : {&split.train, &split.held_out}) {
    const Grid in(task->inputs), tg(task->targets);
    for (std::int64_t r = 0; r < in.n; ++r) {
      check_sum(full_sequence(*task, in, tg, r), 3, true, task == &split.train ? &train_pairs : &held_pairs);
      for (std::int64_t t = 0; t < 12; ++t) {
        // scored exactly on the 4 answer digits and the end token, i.e. where the input is '=' or later
        CHECK((tg.at(r, t) != kIgnoreIndex) == (t >= 7));
        if (t >= 7 && t + 1 < 12) CHECK(tg.at(r, t) == in.at(r, t + 1));
      }
    }
  }
  for (const auto& p : held_pairs) CHECK(train_pairs.count(p) == 0);  // no problem seen in training
}

TEST_CASE("addition: answers in the usual order, one digit, and every pair when all are asked for") {
  AdditionConfig cfg;
  cfg.digits = 1;
  cfg.num_train = 80;
  cfg.num_held_out = 20;  // all 100 pairs of one-digit numbers
  cfg.reverse_answer = false;
  const TaskSplit split = addition_task(cfg, 3);
  std::set<std::pair<int, int>> pairs;
  for (const auto* task : {&split.train, &split.held_out}) {
    const Grid in(task->inputs), tg(task->targets);
    for (std::int64_t r = 0; r < in.n; ++r) check_sum(full_sequence(*task, in, tg, r), 1, false, &pairs);
  }
  CHECK(pairs.size() == 100);
  CHECK(split.train.tokenizer.decode(select(split.train.inputs, 0, 0)).size() == 6);  // "a+b=cc"
}

TEST_CASE("addition: the same seed gives the same problems, another seed others") {
  AdditionConfig cfg;
  cfg.num_train = 300;
  cfg.num_held_out = 50;
  const TaskSplit a = addition_task(cfg, 11), b = addition_task(cfg, 11), c = addition_task(cfg, 12);
  CHECK(same(a.train.inputs, b.train.inputs));
  CHECK(same(a.held_out.targets, b.held_out.targets));
  CHECK_FALSE(same(a.train.inputs, c.train.inputs));
}

TEST_CASE("addition: printing un-reverses the answer, check_addition reads sequences back") {
  AdditionConfig cfg;
  CHECK(format_addition_example("123+045=8610.", cfg) == "123+045=168");
  CHECK(format_addition_example("999+999=8991.", cfg) == "999+999=1998");
  CHECK(format_addition_example("000+000=0000.", cfg) == "000+000=0");
  CHECK(format_addition_example("123+045=86", cfg) == "123+045=68");  // a partial answer
  CHECK(format_addition_example("123+045=", cfg) == "123+045=");
  const AdditionCheck ok = check_addition("123+045=8610.", cfg);
  CHECK(ok.well_formed);
  CHECK(ok.correct);
  CHECK(ok.a == 123);
  CHECK(ok.b == 45);
  CHECK(ok.answer == 168);
  CHECK(check_addition("123+045=8610.extra", cfg).correct);
  const AdditionCheck wrong = check_addition("123+045=8620.", cfg);
  CHECK(wrong.well_formed);
  CHECK_FALSE(wrong.correct);
  CHECK(wrong.answer == 268);
  CHECK_FALSE(check_addition("123+045=8610", cfg).well_formed);   // no end token
  CHECK_FALSE(check_addition("123+045=86x0.", cfg).well_formed);  // not a digit
  AdditionConfig plain = cfg;
  plain.reverse_answer = false;
  CHECK(check_addition("123+045=0168.", plain).correct);
  CHECK(format_addition_example("123+045=0168.", plain) == "123+045=168");

  cfg.num_train = 50;
  cfg.num_held_out = 0;
  const TaskData task = addition_task(cfg, 5).train;
  const Grid in(task.inputs), tg(task.targets);
  for (std::int64_t r = 0; r < 50; ++r) {
    const std::string s = full_sequence(task, in, tg, r);
    const int a = std::stoi(s.substr(0, 3)), b = std::stoi(s.substr(4, 3));
    CHECK(task.format(r) == s.substr(0, 8) + std::to_string(a + b));
    CHECK(check_addition(s, cfg).correct);
  }
  // A prediction with one wrong answer digit prints the wrong sum.
  Tensor predictions = clamp(task.targets, 0, 12);  // the right tokens where scored
  std::vector<std::int64_t> p = predictions.to_vector<std::int64_t>();
  p[7] = (p[7] + 1) % 10;  // row 0's units digit
  predictions = from_vector(p, task.targets.shape());
  const std::string s0 = full_sequence(task, in, tg, 0);
  const int sum0 = std::stoi(s0.substr(0, 3)) + std::stoi(s0.substr(4, 3));
  CHECK(task.format(0, predictions) == s0.substr(0, 8) + std::to_string(sum0 - sum0 % 10 + (sum0 + 1) % 10));
  CHECK(exact_match(predictions, task.targets) == doctest::Approx(49.0 / 50));
}

TEST_CASE("addition: 100k examples in well under a second") {
  AdditionConfig cfg;
  cfg.num_train = 100000;
  cfg.num_held_out = 10000;
  const auto start = std::chrono::steady_clock::now();
  const TaskSplit split = addition_task(cfg, 1);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("addition_task: " << seconds * 1e3 << " ms for 110k examples");
  CHECK(split.train.size() == 100000);
  CHECK(seconds < 1.0);
}

TEST_CASE("addition: bad configs are rejected with the values") {
  AdditionConfig cfg;
  cfg.digits = 0;
  CHECK_THROWS_EMBER(addition_task(cfg, 0), "addition_task: digits must be in [1, 9], got 0");
  cfg.digits = 10;
  CHECK_THROWS_EMBER(addition_task(cfg, 0), "got 10");
  cfg.digits = 1;
  cfg.num_train = 90;
  cfg.num_held_out = 11;
  CHECK_THROWS_EMBER(addition_task(cfg, 0),
                     "addition_task: 101 problems asked for (num_train 90 + num_held_out 11) but only 100 distinct "
                     "(a, b) pairs exist with digits = 1");
  cfg.num_train = 0;
  CHECK_THROWS_EMBER(addition_task(cfg, 0), "num_train must be at least 1, got 0");
  cfg.num_train = 5;
  cfg.num_held_out = -1;
  CHECK_THROWS_EMBER(addition_task(cfg, 0), "num_held_out must be non-negative, got -1");
  CHECK_THROWS_EMBER(check_addition("1+1=20.", AdditionConfig{0}), "check_addition: digits must be in [1, 9]");
}

// --- copy ---

TEST_CASE("copy: the scored targets are the data tokens in order, after the separator") {
  CopyConfig cfg;
  cfg.length = 6;
  cfg.num_symbols = 5;
  cfg.num_examples = 300;
  const TaskData task = copy_task(cfg, 4);
  CHECK(task.inputs.shape() == Shape{300, 12});
  CHECK(task.vocab_size() == 6);
  CHECK(task.tokenizer.alphabet() == "abcde|");
  const Grid in(task.inputs), tg(task.targets);
  const std::int64_t sep = task.tokenizer.id('|');
  std::set<std::int64_t> used;
  for (std::int64_t r = 0; r < in.n; ++r) {
    std::vector<std::int64_t> data(in.v.begin() + r * 12, in.v.begin() + r * 12 + 6);
    for (std::int64_t x : data) {
      CHECK(x >= 0);
      CHECK(x < 5);
      used.insert(x);
    }
    CHECK(in.at(r, 6) == sep);
    std::vector<std::int64_t> scored;
    for (std::int64_t t = 0; t < 12; ++t) {
      CHECK((tg.at(r, t) != kIgnoreIndex) == (t >= 6));
      if (tg.at(r, t) != kIgnoreIndex) scored.push_back(tg.at(r, t));
    }
    CHECK(scored == data);
    for (std::int64_t t = 7; t < 12; ++t) CHECK(in.at(r, t) == data[t - 7]);  // the copy so far, teacher-forced
    CHECK(task.format(r) == task.tokenizer.decode(data) + "|" + task.tokenizer.decode(data));
  }
  CHECK(used.size() == 5);
}

TEST_CASE("copy: determinism, and bad configs") {
  CopyConfig cfg;
  CHECK(same(copy_task(cfg, 1).inputs, copy_task(cfg, 1).inputs));
  CHECK_FALSE(same(copy_task(cfg, 1).inputs, copy_task(cfg, 2).inputs));
  cfg.num_examples = 10;  // the first rows do not depend on how many are asked for
  CHECK(same(copy_task(cfg, 1).inputs, slice(copy_task(CopyConfig{}, 1).inputs, 0, 0, 10)));
  CHECK_THROWS_EMBER(copy_task(CopyConfig{0}, 0), "copy_task: length must be in [1, 1048576], got 0");
  CHECK_THROWS_EMBER(copy_task(CopyConfig{4, 1}, 0), "copy_task: num_symbols must be in [2, 52], got 1");
  CHECK_THROWS_EMBER(copy_task(CopyConfig{4, 53}, 0), "got 53");
  CHECK_THROWS_EMBER(copy_task(CopyConfig{4, 8, 0}, 0), "copy_task: num_examples must be at least 1, got 0");
}

// --- selective copy ---

TEST_CASE("selective copy: the targets at the markers are the data tokens in order") {
  SelectiveCopyConfig cfg;
  cfg.length = 64;
  cfg.num_tokens = 8;
  cfg.num_examples = 400;
  const TaskData task = selective_copy_task(cfg, 9);
  CHECK(task.inputs.shape() == Shape{400, 72});
  CHECK(task.seq_len == 72);
  const std::int64_t noise = task.tokenizer.id('.'), marker = task.tokenizer.id('?');
  const Grid in(task.inputs), tg(task.targets);
  double position_sum = 0;
  std::set<std::vector<std::int64_t>> layouts;
  for (std::int64_t r = 0; r < in.n; ++r) {
    std::vector<std::int64_t> data, where;
    for (std::int64_t t = 0; t < 64; ++t) {
      CHECK(in.at(r, t) != marker);
      CHECK(tg.at(r, t) == kIgnoreIndex);
      if (in.at(r, t) == noise) continue;
      data.push_back(in.at(r, t));
      where.push_back(t);
      position_sum += static_cast<double>(t);
    }
    REQUIRE(data.size() == 8);
    layouts.insert(where);
    for (std::int64_t j = 0; j < 8; ++j) {
      CHECK(in.at(r, 64 + j) == marker);
      CHECK(tg.at(r, 64 + j) == data[j]);
    }
  }
  CHECK(layouts.size() == 400);  // positions are drawn anew for each example
  // Uniform positions have mean 31.5; the mean of 3200 of them has a standard deviation of 0.33.
  CHECK(std::abs(position_sum / 3200 - 31.5) < 1.5);
  CHECK(task.format(0).substr(64) == "???????? -> " + task.tokenizer.decode(task.answer(0)));
}

TEST_CASE("selective copy: the paper's defaults, determinism, and bad configs") {
  SelectiveCopyConfig cfg;
  cfg.num_examples = 20;
  const TaskData task = selective_copy_task(cfg, 0);
  CHECK(task.vocab_size() == 16);  // noise, 14 data symbols, marker
  CHECK(task.seq_len == 256 + 16);
  CHECK(same(task.inputs, selective_copy_task(cfg, 0).inputs));
  CHECK_FALSE(same(task.inputs, selective_copy_task(cfg, 1).inputs));
  cfg.length = 8;
  CHECK_THROWS_EMBER(selective_copy_task(cfg, 0), "selective_copy_task: length 8 is too short for 16 data tokens");
  cfg.length = 16;  // every position holds data: allowed
  CHECK(selective_copy_task(cfg, 0).inputs.shape() == Shape{20, 32});
  cfg.num_symbols = 1;
  CHECK_THROWS_EMBER(selective_copy_task(cfg, 0), "selective_copy_task: num_symbols must be in [2, 52], got 1");
  cfg.num_symbols = 4;
  cfg.num_tokens = 0;
  CHECK_THROWS_EMBER(selective_copy_task(cfg, 0), "num_tokens must be in [1");
}

// --- MQAR ---

TEST_CASE("mqar: every query's target is the value paired with that key earlier in the sequence") {
  MqarConfig cfg;
  cfg.num_pairs = 6;
  cfg.num_queries = 4;
  cfg.num_keys = 10;
  cfg.num_values = 12;
  cfg.num_examples = 300;
  const TaskData task = mqar_task(cfg, 21);
  CHECK(task.inputs.shape() == Shape{300, 19});
  CHECK(task.vocab_size() == 22);
  CHECK(task.tokenizer.alphabet() == "abcdefghijABCDEFGHIJKL");
  const Grid in(task.inputs), tg(task.targets);
  int shuffled_rows = 0;
  for (std::int64_t r = 0; r < in.n; ++r) {
    std::map<std::int64_t, std::int64_t> value_of, position_of;
    std::set<std::int64_t> values;
    for (std::int64_t i = 0; i < 6; ++i) {
      const std::int64_t k = in.at(r, 2 * i), v = in.at(r, 2 * i + 1);
      CHECK(k < 10);  // keys and values come from disjoint ranges
      CHECK(v >= 10);
      CHECK(value_of.emplace(k, v).second);  // distinct keys
      CHECK(values.insert(v).second);        // distinct values
      position_of[k] = i;
      CHECK(tg.at(r, 2 * i) == kIgnoreIndex);
      CHECK(tg.at(r, 2 * i + 1) == kIgnoreIndex);
    }
    std::set<std::int64_t> asked;
    std::int64_t last_position = -1;
    bool in_order = true;
    for (std::int64_t j = 0; j < 4; ++j) {
      const std::int64_t q = in.at(r, 12 + 2 * j);
      REQUIRE(value_of.count(q) == 1);
      CHECK(asked.insert(q).second);
      CHECK(tg.at(r, 12 + 2 * j) == value_of[q]);
      if (j < 3) {
        CHECK(in.at(r, 13 + 2 * j) == value_of[q]);  // the answer follows the query in the input
        CHECK(tg.at(r, 13 + 2 * j) == kIgnoreIndex);
      }
      in_order = in_order && position_of[q] > last_position;
      last_position = position_of[q];
    }
    shuffled_rows += !in_order;
  }
  CHECK(shuffled_rows > 200);  // queries come in random order (in context order with probability 1/24)
  const std::string shown = task.format(0);
  CHECK(shown.size() == 12 + 2 + 4 * 4);
  CHECK(shown.substr(12, 2) == " |");
}

TEST_CASE("mqar: determinism and bad configs") {
  MqarConfig cfg;
  cfg.num_examples = 50;
  const TaskData task = mqar_task(cfg, 5);
  CHECK(task.seq_len == 31);
  CHECK(same(task.targets, mqar_task(cfg, 5).targets));
  CHECK_FALSE(same(task.inputs, mqar_task(cfg, 6).inputs));
  cfg.num_keys = 4;
  CHECK_THROWS_EMBER(mqar_task(cfg, 0),
                     "mqar_task: num_keys must be in [num_pairs, 26] = [8, 26] so that keys are "
                     "distinct, got 4");
  cfg.num_keys = 26;
  cfg.num_values = 27;
  CHECK_THROWS_EMBER(mqar_task(cfg, 0), "mqar_task: num_values must be in [num_pairs, 26] = [8, 26]");
  cfg.num_values = 26;
  cfg.num_queries = 9;
  CHECK_THROWS_EMBER(mqar_task(cfg, 0), "mqar_task: num_queries must be in [1, 8], got 9");
  cfg.num_pairs = 0;
  CHECK_THROWS_EMBER(mqar_task(cfg, 0), "mqar_task: num_pairs must be in [1, 26], got 0");
}

// --- induction heads ---

TEST_CASE("induction: the only target is the token that followed the first trigger") {
  InductionConfig cfg;
  cfg.length = 32;
  cfg.num_symbols = 8;
  cfg.num_examples = 500;
  const TaskData task = induction_task(cfg, 13);
  CHECK(task.inputs.shape() == Shape{500, 31});
  CHECK(task.vocab_size() == 9);
  const std::int64_t trigger = task.tokenizer.id('#');
  const Grid in(task.inputs), tg(task.targets);
  std::set<std::int64_t> firsts;
  for (std::int64_t r = 0; r < in.n; ++r) {
    std::vector<std::int64_t> at;
    for (std::int64_t t = 0; t < 31; ++t) {
      if (in.at(r, t) == trigger) at.push_back(t);
      if (t < 30) CHECK(tg.at(r, t) == kIgnoreIndex);
    }
    REQUIRE(at.size() == 2);
    CHECK(at[1] == 30);     // the second trigger is the last input
    CHECK(at[0] + 1 < 16);  // the first trigger and its follower lie in the first half
    CHECK(in.at(r, at[0] + 1) != trigger);
    CHECK(tg.at(r, 30) == in.at(r, at[0] + 1));
    firsts.insert(at[0]);
  }
  CHECK(firsts.size() == 15);  // every allowed position of the first trigger occurs
  CHECK(task.format(0) == task.tokenizer.decode(select(task.inputs, 0, 0)) + " -> " +
                              task.tokenizer.decode(std::vector<std::int64_t>{tg.at(0, 30)}));
}

TEST_CASE("induction: determinism and bad configs") {
  InductionConfig cfg;
  cfg.num_examples = 30;
  CHECK(same(induction_task(cfg, 1).inputs, induction_task(cfg, 1).inputs));
  CHECK_FALSE(same(induction_task(cfg, 1).inputs, induction_task(cfg, 2).inputs));
  cfg.length = 5;
  CHECK_THROWS_EMBER(induction_task(cfg, 0), "induction_task: length must be in [6, 16777216], got 5");
  cfg.length = 6;
  CHECK(induction_task(cfg, 0).seq_len == 5);
  cfg.num_symbols = 1;
  CHECK_THROWS_EMBER(induction_task(cfg, 0), "induction_task: num_symbols must be in [2, 52], got 1");
}

// --- spirals ---

TEST_CASE("spirals: balanced classes, without noise, radius grows with angle along each arm") {
  const TensorDataset ds = spirals(100, 3, 0.0, 1);
  CHECK(ds.inputs().shape() == Shape{300, 2});
  CHECK(ds.inputs().dtype() == DType::Float32);
  CHECK(ds.targets().shape() == Shape{300});
  CHECK(ds.targets().dtype() == DType::Int64);
  const auto xy = ds.inputs().to_vector<double>();
  const auto label = ds.targets().to_vector<std::int64_t>();
  std::map<std::int64_t, int> count;
  for (auto l : label) ++count[l];
  CHECK(count == std::map<std::int64_t, int>{{0, 100}, {1, 100}, {2, 100}});
  for (std::int64_t k = 0; k < 3; ++k) {
    std::vector<std::int64_t> arm;
    for (std::int64_t i = 0; i < 300; ++i)
      if (label[i] == k) arm.push_back(i);
    double unwrapped = 0;
    for (std::size_t j = 1; j < arm.size(); ++j) {
      const double x0 = xy[2 * arm[j - 1]], y0 = xy[2 * arm[j - 1] + 1], x1 = xy[2 * arm[j]], y1 = xy[2 * arm[j] + 1];
      CHECK(std::hypot(x1, y1) > std::hypot(x0, y0));
      double step = std::atan2(y1, x1) - std::atan2(y0, x0);  // counter-clockwise turn between points
      if (step < 0) step += 2 * std::numbers::pi;
      CHECK(step > 0);
      CHECK(step < 0.5);
      unwrapped += step;
      // point j of arm k is point j of arm 0 turned by 2 pi k / 3
      const double c = std::cos(2 * std::numbers::pi * k / 3), s = std::sin(2 * std::numbers::pi * k / 3);
      const double ax = xy[2 * j], ay = xy[2 * j + 1];
      CHECK(std::abs(c * ax - s * ay - x1) < 1e-5);
      CHECK(std::abs(s * ax + c * ay - y1) < 1e-5);
    }
    CHECK(unwrapped > 2 * std::numbers::pi);  // the arms wind more than once: they interleave
    CHECK(std::hypot(xy[2 * arm.back()], xy[2 * arm.back() + 1]) < 1.0);
  }
}

TEST_CASE("spirals: noise is Gaussian of the given std, seeds, errors") {
  const auto clean = spirals(2000, 2, 0.0, 0).inputs().to_vector<double>();
  const auto noisy = spirals(2000, 2, 0.05, 3).inputs().to_vector<double>();
  double sum = 0, sq = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    const double d = noisy[i] - clean[i];
    sum += d;
    sq += d * d;
  }
  const double n = static_cast<double>(clean.size());
  CHECK(std::abs(sum / n) < 0.005);
  CHECK(std::sqrt(sq / n) == doctest::Approx(0.05).epsilon(0.05));
  CHECK(same(spirals(50, 2, 0.1, 4).inputs(), spirals(50, 2, 0.1, 4).inputs()));
  CHECK_FALSE(same(spirals(50, 2, 0.1, 4).inputs(), spirals(50, 2, 0.1, 5).inputs()));
  CHECK(DataLoader(std::make_shared<TensorDataset>(spirals(10)), 8, true, 0).next().input.shape() == Shape{8, 2});
  CHECK_THROWS_EMBER(spirals(0), "spirals: n_per_class must be at least 1, got 0");
  CHECK_THROWS_EMBER(spirals(5, 0), "spirals: num_classes must be at least 1, got 0");
  CHECK_THROWS_EMBER(spirals(5, 2, -1), "spirals: noise must be finite and >= 0, got -1");
}

// --- scoring ---

TEST_CASE("exact_match and token_accuracy on hand-made predictions") {
  const Tensor targets = from_vector(std::vector<std::int64_t>{-100, 1, 2,     //
                                                               -100, 3, 4,     //
                                                               5, -100, -100,  //
                                                               -100, -100, -100},
                                     {4, 3});
  const Tensor predictions = from_vector(std::vector<std::int64_t>{9, 1, 0,   // one of two wrong
                                                                   3, 4, 4,   // one of two wrong
                                                                   5, 0, 0,   // right (unscored tokens do not count)
                                                                   1, 1, 1},  // nothing scored: right
                                         {4, 3});
  CHECK(rows_correct(predictions, targets) == std::vector<bool>{false, false, true, true});
  CHECK(exact_match(predictions, targets) == 0.5);
  CHECK(token_accuracy(predictions, targets) == doctest::Approx(3.0 / 5));
  CHECK(exact_match(clamp(targets, 0, 9), targets) == 1.0);
  CHECK_THROWS_EMBER(exact_match(predictions, zeros({4, 2}, DType::Int64)),
                     "exact_match: predictions [4, 3] and targets [4, 2] must have the same shape");
  CHECK_THROWS_EMBER(exact_match(zeros({0, 3}, DType::Int64), zeros({0, 3}, DType::Int64)), "exact_match: no rows");
  CHECK_THROWS_EMBER(token_accuracy(predictions, full({4, 3}, -100, DType::Int64)),
                     "token_accuracy: targets have no scored position");
}

TEST_CASE("TaskData: a dataset for the loader, and answers at the scored positions") {
  CopyConfig cfg;
  cfg.num_examples = 40;
  const TaskData task = copy_task(cfg, 8);
  DataLoader loader(task.dataset(), 16, true, 1);
  const Batch b = loader.next();
  CHECK(b.input.shape() == Shape{16, 20});
  CHECK(b.target.shape() == Shape{16, 20});
  const Grid in(task.inputs);
  CHECK(task.answer(3) == std::vector<std::int64_t>(in.v.begin() + 3 * 20, in.v.begin() + 3 * 20 + 10));
  CHECK_THROWS_EMBER(task.answer(40), "TaskData::answer: index 40 is out of range [0, 40)");
  CHECK_THROWS_EMBER(task.answer(0, zeros({2, 2}, DType::Int64)), "TaskData::answer: predictions [2, 2] must have");
}
