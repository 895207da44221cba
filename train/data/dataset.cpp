/// \file
/// \brief Dataset, TensorDataset, TextDataset, and reading and splitting texts.
#include "train/data/dataset.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/error.h"

namespace ember::data {

void check_example_index(const char* op, std::int64_t i, std::int64_t size) {
  EMBER_CHECK(i >= 0 && i < size, fmt::format("{}: index {} is out of range [0, {})", op, i, size));
}

// --- Dataset ---

Dataset::~Dataset() = default;

Example Dataset::get_batch(const std::vector<std::int64_t>& indices) const {
  EMBER_CHECK(!indices.empty(), "Dataset::get_batch: no indices");
  std::vector<Tensor> inputs, targets;
  for (std::int64_t i : indices) {
    Example e = get(i);
    inputs.push_back(std::move(e.input));
    targets.push_back(std::move(e.target));
  }
  return {stack(inputs, 0), stack(targets, 0)};
}

// --- TensorDataset ---

TensorDataset::TensorDataset(Tensor inputs, Tensor targets) : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  EMBER_CHECK(inputs_.defined() && targets_.defined(), "TensorDataset: inputs and targets must be defined tensors");
  EMBER_CHECK(inputs_.dim() >= 1 && targets_.dim() >= 1,
              fmt::format("TensorDataset: inputs {} and targets {} need a dim 0 to index examples along",
                          shape_str(inputs_.shape()), shape_str(targets_.shape())));
  EMBER_CHECK(inputs_.size(0) == targets_.size(0),
              fmt::format("TensorDataset: inputs {} and targets {} have different lengths ({} != {})",
                          shape_str(inputs_.shape()), shape_str(targets_.shape()), inputs_.size(0), targets_.size(0)));
}

std::int64_t TensorDataset::size() const { return inputs_.size(0); }

Example TensorDataset::get(std::int64_t i) const {
  check_example_index("TensorDataset::get", i, size());
  return {select(inputs_, 0, i), select(targets_, 0, i)};
}

Example TensorDataset::get_batch(const std::vector<std::int64_t>& indices) const {
  EMBER_CHECK(!indices.empty(), "TensorDataset::get_batch: no indices");
  for (std::int64_t i : indices) check_example_index("TensorDataset::get_batch", i, size());
  const auto n = static_cast<std::int64_t>(indices.size());
  const Tensor index = from_vector(indices, {n});
  return {index_select(inputs_, 0, index.to(inputs_.device())), index_select(targets_, 0, index.to(targets_.device()))};
}

// --- TextDataset ---

TextDataset::TextDataset(const std::string& text, std::int64_t seq_len)
    : TextDataset(text, seq_len, CharTokenizer::from_text(text)) {}

TextDataset::TextDataset(const std::string& text, std::int64_t seq_len, CharTokenizer tokenizer)
    : tokenizer_(std::move(tokenizer)), seq_len_(seq_len) {
  EMBER_CHECK(seq_len >= 1, fmt::format("TextDataset: seq_len must be at least 1, got {}", seq_len));
  const auto length = static_cast<std::int64_t>(text.size());
  EMBER_CHECK(length >= seq_len + 1,
              fmt::format("TextDataset: the text has {} characters, fewer than seq_len + 1 = {} (one window of input "
                          "and shifted target)",
                          length, seq_len + 1));
  ids_ = tokenizer_.encode(text);
}

std::int64_t TextDataset::size() const { return static_cast<std::int64_t>(ids_.size()) - seq_len_; }

Example TextDataset::get(std::int64_t i) const {
  check_example_index("TextDataset::get", i, size());
  const Example row = get_batch({i});
  return {reshape(row.input, {seq_len_}), reshape(row.target, {seq_len_})};
}

Example TextDataset::get_batch(const std::vector<std::int64_t>& indices) const {
  EMBER_CHECK(!indices.empty(), "TextDataset::get_batch: no indices");
  const auto b = static_cast<std::int64_t>(indices.size());
  Tensor input = Tensor::empty({b, seq_len_}, DType::Int64), target = Tensor::empty({b, seq_len_}, DType::Int64);
  std::int64_t* in = input.data_ptr<std::int64_t>();
  std::int64_t* out = target.data_ptr<std::int64_t>();
  const std::size_t bytes = static_cast<std::size_t>(seq_len_) * sizeof(std::int64_t);
  for (std::int64_t r = 0; r < b; ++r) {
    const std::int64_t i = indices[r];
    check_example_index("TextDataset::get_batch", i, size());
    std::memcpy(in + r * seq_len_, ids_.data() + i, bytes);
    std::memcpy(out + r * seq_len_, ids_.data() + i + 1, bytes);
  }
  return {input, target};
}

// --- texts ---

std::string load_text_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  EMBER_CHECK(file.is_open(), fmt::format("load_text_file: cannot open '{}'", path));
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  EMBER_CHECK(!file.bad(), fmt::format("load_text_file: error while reading '{}'", path));
  EMBER_CHECK(!text.empty(), fmt::format("load_text_file: '{}' is empty", path));
  return text;
}

TextSplit split_text(const std::string& text, double held_out_fraction) {
  EMBER_CHECK(held_out_fraction >= 0 && held_out_fraction < 1,
              fmt::format("split_text: held_out_fraction must be in [0, 1), got {}", held_out_fraction));
  const auto held = static_cast<std::size_t>(std::llround(held_out_fraction * static_cast<double>(text.size())));
  const std::size_t cut = text.size() - held;
  return {text.substr(0, cut), text.substr(cut)};
}

}  // namespace ember::data
