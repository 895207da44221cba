/// \file
/// \brief Thread count shared by OpenMP and OpenBLAS.
#include "core/threads.h"

#include <cblas.h>
#include <omp.h>

#include <fmt/format.h>

#include "core/error.h"

namespace ember {

namespace {
/// Caps nesting once, so a BLAS call inside an ember parallel loop runs on its caller's thread.
struct NestingGuard {
  NestingGuard() { omp_set_max_active_levels(1); }
} nesting_guard;
}  // namespace

void set_num_threads(int n) {
  EMBER_CHECK(n >= 1, fmt::format("set_num_threads: need at least 1 thread, got {}", n));
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace ember
