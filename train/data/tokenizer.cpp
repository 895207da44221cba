/// \file
/// \brief CharTokenizer: byte <-> id tables.
#include "train/data/tokenizer.h"

#include <utility>

#include <fmt/format.h>

#include "core/error.h"

namespace ember::data {

std::string describe_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  switch (c) {
    case '\n': return "'\\n'";
    case '\t': return "'\\t'";
    case '\r': return "'\\r'";
    default: break;
  }
  if (u < 0x20 || u >= 0x7f) return fmt::format("'\\x{:02x}'", u);
  return fmt::format("'{}'", c);
}

CharTokenizer::CharTokenizer() { ids_.fill(-1); }

CharTokenizer::CharTokenizer(std::string alphabet) : alphabet_(std::move(alphabet)) {
  ids_.fill(-1);
  for (std::size_t i = 0; i < alphabet_.size(); ++i) {
    const auto u = static_cast<unsigned char>(alphabet_[i]);
    EMBER_CHECK(ids_[u] < 0, fmt::format("CharTokenizer: character {} appears twice in the alphabet (positions {} "
                                         "and {})",
                                         describe_char(alphabet_[i]), ids_[u], i));
    ids_[u] = static_cast<std::int64_t>(i);
  }
}

CharTokenizer CharTokenizer::from_text(const std::string& text) {
  std::array<bool, 256> seen{};
  for (char c : text) seen[static_cast<unsigned char>(c)] = true;
  std::string alphabet;
  for (int u = 0; u < 256; ++u)
    if (seen[u]) alphabet.push_back(static_cast<char>(u));
  return CharTokenizer(std::move(alphabet));
}

std::int64_t CharTokenizer::id(char c) const {
  const std::int64_t i = ids_[static_cast<unsigned char>(c)];
  EMBER_CHECK(i >= 0, fmt::format("CharTokenizer::id: character {} is not in the alphabet", describe_char(c)));
  return i;
}

std::vector<std::int64_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<std::int64_t> out(text.size());
  for (std::size_t p = 0; p < text.size(); ++p) {
    out[p] = ids_[static_cast<unsigned char>(text[p])];
    EMBER_CHECK(out[p] >= 0, fmt::format("CharTokenizer::encode: unknown character {} at position {} (the "
                                         "alphabet has {} characters)",
                                         describe_char(text[p]), p, alphabet_.size()));
  }
  return out;
}

std::string CharTokenizer::decode(const std::vector<std::int64_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (std::size_t p = 0; p < ids.size(); ++p) {
    EMBER_CHECK(ids[p] >= 0 && ids[p] < vocab_size(),
                fmt::format("CharTokenizer::decode: id {} at position {} is outside [0, {})", ids[p], p, vocab_size()));
    out[p] = alphabet_[static_cast<std::size_t>(ids[p])];
  }
  return out;
}

std::string CharTokenizer::decode(const Tensor& ids) const {
  EMBER_CHECK(ids.defined(), "CharTokenizer::decode: undefined tensor");
  return decode(ids.to_vector<std::int64_t>());
}

}  // namespace ember::data
