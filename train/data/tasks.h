/// \file
/// \brief Synthetic tasks generated in code, for training small models in minutes and telling
/// sequence mixers apart: addition, copy, selective copy (Mamba, Gu & Dao 2023, secs. 3.1 and 4.1),
/// multi-query associative recall (MQAR; Zoology, Arora et al. 2023), induction heads (Olsson et al.
/// 2022; the Mamba setup), and the 2-D interleaved spirals for classifiers.
///
/// A sequence task is next-token prediction over characters: inputs [N, T] and targets [N, T], both
/// Int64 token ids, where the model predicts targets[n, t] from inputs[n, 0..t] and positions that are
/// not scored hold kIgnoreIndex (-100, PyTorch's cross_entropy default). For LM-style tasks targets is
/// the sequence shifted by one; only the answer positions are kept. Every task is written in printable
/// characters, so a CharTokenizer names its vocabulary and an example prints as text. Sequence tasks
/// are generated with integer arithmetic only, so (config, seed) gives the same data on every platform.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "train/data/dataset.h"
#include "train/data/tokenizer.h"

namespace ember::data {

/// The target value of positions that are not scored (PyTorch's cross_entropy ignore_index).
inline constexpr std::int64_t kIgnoreIndex = -100;

/// Prints one example: `input` is its input row [T], `answer` the tokens at its scored positions in
/// order (the targets, or a model's predictions there).
using AnswerFormatter =
    std::function<std::string(const std::vector<std::int64_t>& input, const std::vector<std::int64_t>& answer)>;

/// A generated sequence task: token ids, their vocabulary, and how to print an example.
struct TaskData {
  std::string name;           ///< "addition", "copy", ...
  CharTokenizer tokenizer;    ///< the vocabulary; vocab_size() is the model's
  Tensor inputs;              ///< [N, T] Int64
  Tensor targets;             ///< [N, T] Int64; kIgnoreIndex where not scored
  std::int64_t seq_len = 0;   ///< T
  AnswerFormatter formatter;  ///< task-specific printing; empty: decoded input, " -> ", decoded answer

  /// N, the number of examples.
  std::int64_t size() const;
  /// The tokenizer's vocabulary size.
  std::int64_t vocab_size() const { return tokenizer.vocab_size(); }
  /// A TensorDataset over (inputs, targets), sharing their data.
  std::shared_ptr<TensorDataset> dataset() const;
  /// The target tokens of row `row` at its scored positions, in order.
  std::vector<std::int64_t> answer(std::int64_t row) const;
  /// predictions: [N, T] -> the predicted tokens of row `row` at its scored positions, in order.
  std::vector<std::int64_t> answer(std::int64_t row, const Tensor& predictions) const;
  /// Row `row` with its expected answer, in the task's notation (e.g. "123+045=168").
  std::string format(std::int64_t row) const;
  /// predictions: [N, T] -> row `row` with the predicted answer in place of the expected one.
  std::string format(std::int64_t row, const Tensor& predictions) const;
};

/// Training and held-out examples of one task.
struct TaskSplit {
  TaskData train;     ///< for fitting
  TaskData held_out;  ///< for evaluation; shares no problem with train where the task says so
};

// --- addition ---

/// Settings of the addition task. Alphabet "0123456789+=." (digit k has id k; '.' ends the answer).
struct AdditionConfig {
  std::int64_t digits = 3;           ///< digits per operand, 1..9; operands are zero-padded to this
  std::int64_t num_train = 10000;    ///< training problems
  std::int64_t num_held_out = 1000;  ///< held-out problems, none sharing an (a, b) pair with training
  /// Write the digits+1 answer digits least significant first ("123+045=8610."). Then each answer
  /// digit depends only on the operand digits of its place and the carry out of the digit the model
  /// has just written, so a left-to-right model can compute it in one step; in the usual order the
  /// first digit needs every carry at once, and small models learn far more slowly (Lee et al.,
  /// "Teaching arithmetic to small transformers", 2023).
  bool reverse_answer = true;
};

/// "a+b=c." problems for distinct random pairs (a, b), 0 <= a, b < 10^digits: inputs are the first
/// T = 3 digits + 3 characters, targets the next characters, scored only on the digits+1 answer digits
/// and the end token. Throws if digits is not in [1, 9], a count is negative, num_train < 1, or there
/// are fewer than num_train + num_held_out distinct pairs.
TaskSplit addition_task(const AdditionConfig& config, std::uint64_t seed);

/// An addition sequence read back as numbers.
struct AdditionCheck {
  bool well_formed = false;  ///< digits, '+', digits, '=', digits+1 digits, '.' (anything after is ignored)
  std::int64_t a = 0;        ///< the first operand
  std::int64_t b = 0;        ///< the second operand
  std::int64_t answer = 0;   ///< the written answer, un-reversed
  bool correct = false;      ///< well formed and a + b == answer
};

/// Parses a full sequence such as "123+045=8610." (a prompt and a generated answer) and checks it.
AdditionCheck check_addition(const std::string& sequence, const AdditionConfig& config);

/// "123+045=8610." -> "123+045=168": the answer un-reversed (when config.reverse_answer), without its
/// end token and leading zeros. Characters that are not digits are kept, so wrong predictions show.
std::string format_addition_example(const std::string& sequence, const AdditionConfig& config);

// --- copy ---

/// Settings of the copy task. Data symbols are the first num_symbols of a-z, A-Z; '|' separates.
struct CopyConfig {
  std::int64_t length = 10;          ///< tokens to copy (>= 1)
  std::int64_t num_symbols = 8;      ///< data vocabulary, 2..52
  std::int64_t num_examples = 1000;  ///< N
};

/// "abcde|abcde": `length` random symbols, '|', and the same symbols again; T = 2 length, scored on
/// the copy only.
TaskData copy_task(const CopyConfig& config, std::uint64_t seed);

// --- selective copy ---

/// Settings of the selective copy task. Alphabet: '.' (noise, id 0), the data symbols (ids
/// 1..num_symbols, from a-z, A-Z), '?' (marker, last id); the defaults give the paper's vocabulary of 16.
struct SelectiveCopyConfig {
  std::int64_t length = 256;         ///< noise plus data tokens before the markers
  std::int64_t num_tokens = 16;      ///< data tokens to remember (<= length)
  std::int64_t num_symbols = 14;     ///< data vocabulary, 2..52
  std::int64_t num_examples = 1000;  ///< N
};

/// Mamba's selective copying: num_tokens random data symbols at random positions (in order) among
/// noise tokens, `length` in all, then num_tokens markers; the target at the k-th marker is the k-th
/// data token, and nothing else is scored. T = length + num_tokens. As in the paper's generator the
/// markers are inputs (the model never sees its own answers); solving it needs content-aware
/// selection, which time-invariant convolutions and SSMs (S4) lack.
TaskData selective_copy_task(const SelectiveCopyConfig& config, std::uint64_t seed);

// --- multi-query associative recall ---

/// Settings of MQAR. Keys are the first num_keys of a-z, values the first num_values of A-Z.
struct MqarConfig {
  std::int64_t num_pairs = 8;        ///< key-value pairs in the context
  std::int64_t num_queries = 8;      ///< keys asked back, 1..num_pairs
  std::int64_t num_keys = 26;        ///< key vocabulary, num_pairs..26
  std::int64_t num_values = 26;      ///< value vocabulary, num_pairs..26
  std::int64_t num_examples = 1000;  ///< N
};

/// Zoology's multi-query associative recall: "aXbYcZ" pairs distinct keys with distinct values, then
/// num_queries of the keys (a random subset, in random order) each followed by its value, "bYaX".
/// The target after each queried key is its value; nothing else is scored. T = 2 (num_pairs +
/// num_queries) - 1. Unlike Zoology there are no filler tokens between queries.
TaskData mqar_task(const MqarConfig& config, std::uint64_t seed);

// --- induction heads ---

/// Settings of the induction task. Data symbols from a-z, A-Z; '#' is the trigger.
struct InductionConfig {
  std::int64_t length = 64;          ///< full sequence length (>= 6); T = length - 1
  std::int64_t num_symbols = 16;     ///< data vocabulary, 2..52
  std::int64_t num_examples = 1000;  ///< N
};

/// Random symbols with the trigger '#' once in the first half followed by a random symbol X, and '#'
/// again as the last input; the only scored target, after it, is X ("...#X......#" -> X). A model
/// solves it by finding the earlier trigger and copying what followed: an induction head.
TaskData induction_task(const InductionConfig& config, std::uint64_t seed);

// --- spirals ---

/// -> inputs [N, 2] Float32, targets [N] Int64 (N = num_classes n_per_class, arm by arm): the
/// interleaved 2-D spirals. Point i of arm k lies at radius r = (i + 0.5) / n_per_class and angle
/// 2 pi (k / num_classes + 1.5 r), plus Gaussian noise of std `noise` on each coordinate (drawn from a
/// Generator seeded with `seed`); each arm winds 1.5 turns, so the arms interleave.
TensorDataset spirals(std::int64_t n_per_class, std::int64_t num_classes = 2, double noise = 0.1,
                      std::uint64_t seed = 0);

// --- evaluation ---

/// predictions: [N, T], targets: [N, T] -> for each row, whether every scored position (target !=
/// kIgnoreIndex) is predicted right (a row without scored positions counts as right).
std::vector<bool> rows_correct(const Tensor& predictions, const Tensor& targets);

/// predictions: [N, T] (e.g. argmax(logits, -1)), targets: [N, T] -> the fraction of rows whose every
/// scored position is right. With teacher-forced predictions this is also the exact-match accuracy of
/// greedy decoding: if every answer token is the argmax given the correct prefix, greedy generation
/// produces exactly that prefix, token by token; if one is not, greedy decoding follows the correct
/// prefix up to the first such token and then emits the wrong one.
double exact_match(const Tensor& predictions, const Tensor& targets);

/// predictions: [N, T], targets: [N, T] -> the fraction of scored positions predicted right.
double token_accuracy(const Tensor& predictions, const Tensor& targets);

}  // namespace ember::data
