/// \file
/// \brief Datasets: the Dataset interface (size and indexed examples, as torch.utils.data.Dataset),
/// TensorDataset (rows of in-memory tensors) and TextDataset (character windows of a text for
/// next-token prediction: input = chars [i, i + T), target = chars [i + 1, i + T + 1)).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "train/data/tokenizer.h"

namespace ember::data {

/// One example: what the model reads and what it should output.
struct Example {
  Tensor input;   ///< the model's input
  Tensor target;  ///< the desired output (class ids, next tokens, ...)
};

/// A finite, indexable collection of examples.
class Dataset {
 public:
  virtual ~Dataset();
  /// The number of examples.
  virtual std::int64_t size() const = 0;
  /// Example i, 0 <= i < size(); throws otherwise.
  virtual Example get(std::int64_t i) const = 0;
  /// The examples at `indices`, stacked along a new dim 0: input [B, ...], target [B, ...].
  /// The default stacks get(i) one by one; datasets that can gather rows at once override it.
  virtual Example get_batch(const std::vector<std::int64_t>& indices) const;
};

/// Rows of two in-memory tensors: example i is (inputs[i], targets[i]), views of the stored tensors.
class TensorDataset : public Dataset {
 public:
  /// inputs: [N, ...], targets: [N, ...]; throws unless both are defined, have a dim 0, and agree on N.
  TensorDataset(Tensor inputs, Tensor targets);
  std::int64_t size() const override;
  Example get(std::int64_t i) const override;
  /// indices: B row numbers -> input [B, ...], target [B, ...], gathered with one index_select each.
  Example get_batch(const std::vector<std::int64_t>& indices) const override;
  /// The stored inputs [N, ...].
  const Tensor& inputs() const { return inputs_; }
  /// The stored targets [N, ...].
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_;
  Tensor targets_;
};

/// Every window of seq_len + 1 consecutive characters of a text, for character-level language
/// modelling: example i has input = ids of chars [i, i + seq_len) and target = ids of chars
/// [i + 1, i + seq_len + 1), both [seq_len] Int64, so target[t] is the character after input[..t].
/// Windows overlap (stride 1): size() = length - seq_len.
class TextDataset : public Dataset {
 public:
  /// The windows of `text`, with the vocabulary of its distinct characters.
  TextDataset(const std::string& text, std::int64_t seq_len);
  /// The windows of `text` under `tokenizer` (build it from the whole text before splitting, so that a
  /// held-out part shares the training vocabulary). Throws if text has fewer than seq_len + 1
  /// characters, if seq_len < 1, or if a character is not in the tokenizer.
  TextDataset(const std::string& text, std::int64_t seq_len, CharTokenizer tokenizer);
  std::int64_t size() const override;
  Example get(std::int64_t i) const override;
  /// indices: B window starts -> input [B, seq_len], target [B, seq_len], copied straight from the ids.
  Example get_batch(const std::vector<std::int64_t>& indices) const override;
  /// The vocabulary.
  const CharTokenizer& tokenizer() const { return tokenizer_; }
  /// Characters per input.
  std::int64_t seq_len() const { return seq_len_; }
  /// The ids of the whole text.
  const std::vector<std::int64_t>& ids() const { return ids_; }

 private:
  CharTokenizer tokenizer_;
  std::int64_t seq_len_;
  std::vector<std::int64_t> ids_;
};

/// The bytes of the file at `path`; throws if it cannot be read or is empty.
std::string load_text_file(const std::string& path);

/// A text cut in two: the head for training and the tail held out for evaluation.
struct TextSplit {
  std::string train;     ///< the first (1 - fraction) of the characters
  std::string held_out;  ///< the last round(fraction * length) characters
};

/// Cuts `text` so that the held-out part is its tail; 0 <= held_out_fraction < 1. The tail, not a
/// random sample of windows, so that no held-out window overlaps a training window.
TextSplit split_text(const std::string& text, double held_out_fraction);

/// Throws naming `op` unless 0 <= i < size.
void check_example_index(const char* op, std::int64_t i, std::int64_t size);

}  // namespace ember::data
