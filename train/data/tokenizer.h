/// \file
/// \brief CharTokenizer: a byte-level character vocabulary mapping each character of an alphabet to
/// its index, as in char-rnn (Karpathy 2015) and nanoGPT's shakespeare_char.
///
/// Characters are bytes: a multi-byte UTF-8 character becomes several tokens, one per byte, and
/// decoding the tokens gives back the same bytes. Token id = position of the byte in the alphabet.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace ember::data {

/// Maps each byte of an alphabet to its position in it, and back.
class CharTokenizer {
 public:
  /// An empty vocabulary (no character encodes).
  CharTokenizer();
  /// The vocabulary of `alphabet`, in its order (id i is alphabet[i]); throws if a byte repeats.
  explicit CharTokenizer(std::string alphabet);
  /// The distinct bytes of `text`, sorted by unsigned byte value.
  static CharTokenizer from_text(const std::string& text);

  /// The ids of the bytes of `text`; throws naming the first unknown character and its position.
  std::vector<std::int64_t> encode(const std::string& text) const;
  /// The bytes of `ids`; throws naming the first id outside [0, vocab_size()) and its position.
  std::string decode(const std::vector<std::int64_t>& ids) const;
  /// ids: [T] (Int64, or any integer-valued tensor; any shape is read row-major) -> the bytes.
  std::string decode(const Tensor& ids) const;

  /// The id of byte `c`; throws if it is not in the alphabet.
  std::int64_t id(char c) const;
  /// True when `c` is in the alphabet.
  bool contains(char c) const { return ids_[static_cast<unsigned char>(c)] >= 0; }
  /// The number of ids.
  std::int64_t vocab_size() const { return static_cast<std::int64_t>(alphabet_.size()); }
  /// The bytes in id order.
  const std::string& alphabet() const { return alphabet_; }

 private:
  std::string alphabet_;
  std::array<std::int64_t, 256> ids_;
};

/// A printable form of byte `c` for messages: 'a' for printable ASCII, a C escape (backslash n,
/// backslash xff) for control and non-ASCII bytes.
std::string describe_char(char c);

}  // namespace ember::data
