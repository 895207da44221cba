/// \file
/// \brief libFuzzer target for safetensors::parse: any input must either parse or throw ember::Error
/// (never crash, read out of bounds, leak or throw anything else), and what parses must survive
/// serialize() and parse() again unchanged.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/safetensors.h"

namespace {

/// The raw bytes of a contiguous CPU tensor.
bool same_bytes(const ember::Tensor& a, const ember::Tensor& b) {
  const std::size_t n = a.numel() * ember::element_size(a.dtype());
  return n == 0 || std::memcmp(a.raw_data(), b.raw_data(), n) == 0;
}

/// Aborts (which libFuzzer reports with the input) unless a and b hold the same tensors and metadata.
void check_equal(const ember::safetensors::Contents& a, const ember::safetensors::Contents& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) std::abort();
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& [name_a, ta] = a.tensors[i];
    const auto& [name_b, tb] = b.tensors[i];
    if (name_a != name_b || ta.dtype() != tb.dtype() || ta.shape() != tb.shape() || !same_bytes(ta, tb)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace st = ember::safetensors;
  st::Contents contents;
  try {
    contents = st::parse(data, size, "fuzz input");
  } catch (const ember::Error&) {
    return 0;  // a clear rejection is the expected outcome for most inputs
  }
  const std::vector<std::uint8_t> bytes = st::serialize(contents.tensors, contents.metadata);
  check_equal(contents, st::parse(bytes.data(), bytes.size(), "re-serialized fuzz input"));
  return 0;
}
