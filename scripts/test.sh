#!/usr/bin/env bash
# Builds ember and runs the whole test suite (every ctest test, CUDA ones skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
# Tests run side by side, each with its own OpenMP threads: passive waiting keeps a thread that waits at a
# barrier from spinning on a core another test needs (spinning made parallel regions up to 10x slower).
OMP_WAIT_POLICY=PASSIVE ctest --test-dir build --output-on-failure -j"$(nproc)"
