/// \file
/// \brief nn::FlashAttention: MultiHeadAttention with the FlashAttention kernel in `attend`.
#include "layers/attention/flash_attention.h"

#include "layers/functional.h"

namespace ember::nn {

FlashAttention::FlashAttention(const MixerConfig& config) : MultiHeadAttention(config, "FlashAttention") {}

Tensor FlashAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v) const {
  return flash_attention(q, k, v, true);
}

}  // namespace ember::nn
