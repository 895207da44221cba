/// \file
/// \brief The one thread setting: it governs ember's OpenMP loops and OpenBLAS alike (OpenBLAS's
/// OpenMP build shares the pool), and nested parallel regions run single-threaded.
#pragma once

namespace ember {

/// Uses `n` threads (n >= 1) for ember's loops and BLAS.
void set_num_threads(int n);
/// The current thread count (by default, every core).
int get_num_threads();

}  // namespace ember
