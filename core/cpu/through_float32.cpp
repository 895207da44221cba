/// \file
/// \brief cpu::through_float32: how the CPU backend runs a kernel that has only Float32/Float64 code on Float16
/// and BFloat16 tensors — widen the inputs, run in Float32, round the outputs back (technique notes §8: CPU
/// arithmetic on the 16-bit formats goes through Float32).
#include "core/cpu/loops.h"
#include "core/ops.h"

namespace ember::cpu {

bool is_16bit(DType dtype) { return dtype == DType::Float16 || dtype == DType::BFloat16; }

void through_float32(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const Float32Kernel& run) {
  std::vector<Tensor> in, out;
  for (const Tensor& t : inputs) in.push_back(t.defined() && is_16bit(t.dtype()) ? raw::to_dtype(t, DType::Float32) : t);
  for (const Tensor& t : outputs)
    out.push_back(t.defined() && is_16bit(t.dtype()) ? Tensor::empty(t.shape(), DType::Float32, t.device()) : t);
  run(in, out);
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (out[i].defined() && !out[i].is_same(outputs[i])) raw::copy_(outputs[i], out[i]);
}

}  // namespace ember::cpu
