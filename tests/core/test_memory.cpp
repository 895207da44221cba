/// \file
/// \brief memory_stats: the bytes of live tensor storage and their peak, counted exactly.
#include <doctest/doctest.h>

#include "core/creation.h"
#include "core/memory.h"
#include "core/ops.h"

using namespace ember;

TEST_CASE("memory_stats counts the bytes of live tensors and their peak") {
  const MemoryStats before = memory_stats();
  reset_peak_memory();
  {
    Tensor a = zeros({100, 10}, DType::Float32);  // 4000 bytes
    Tensor b = zeros({50}, DType::Float64);       // 400 bytes
    CHECK(memory_stats().current_bytes - before.current_bytes == 4400);
    Tensor view = raw::reshape(a, {1000});  // a view shares the storage: no new bytes
    CHECK(memory_stats().current_bytes - before.current_bytes == 4400);
  }
  const MemoryStats after = memory_stats();
  CHECK(after.current_bytes == before.current_bytes);
  CHECK(after.peak_bytes - before.current_bytes == 4400);
  reset_peak_memory();
  CHECK(memory_stats().peak_bytes == memory_stats().current_bytes);
}

TEST_CASE("memory_stats peak sees a temporary that is already gone") {
  reset_peak_memory();
  const std::int64_t base = memory_stats().current_bytes;
  Tensor x = zeros({256, 256}, DType::Float32);  // 256 KiB
  Tensor s = raw::sum(raw::matmul(x, x));                  // the [256, 256] product lives only inside this line
  CHECK(memory_stats().current_bytes - base == 256 * 256 * 4 + 4);
  CHECK(memory_stats().peak_bytes - base >= 2 * 256 * 256 * 4);
}
