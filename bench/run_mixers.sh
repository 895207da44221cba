#!/usr/bin/env bash
# The sequence-mixer benchmarks of issue 4 (bench/bench_mixers.cpp), then PyTorch beside ember's FlashAttention:
#   sweep    every registered mixer, forward + backward time and peak extra memory for T = 256 ... 16384,
#            and time(16384) / time(2048) of the linear-time mixers (target <= 10)
#   kernels  nn::flash_attention against nn::naive_attention (memory < 1/8 at 16384, time <= 1.2x at 1024,
#            faster from 4096)
#   decode   one step at position 100 and 3940 (target ratio <= 1.3 for the fixed-state mixers)
#   pytorch  bench/compare_pytorch.py attention at T = 4096 (skipped without /usr/bin/python3's torch)
# Each step prints its tables; the sweeps also write CSV and SVG files to $OUT (default build-bench/bench/mixers).
# Usage: bench/run_mixers.sh [sweep|kernels|decode|pytorch ...] (all four by default). THREADS (default 2) and
# REPS (default 5) apply to every step; LENGTHS (e.g. "256 512") replaces the sweeps' T values and TORCH_T (default
# 4096) the PyTorch comparison's, for a quick check; ONLY (e.g. "s4d mamba") limits sweep and decode to those
# mixers. Run it on a quiet machine: about 10 minutes at most per step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
out=${OUT:-$build/bench/mixers}
threads=${THREADS:-2}
reps=${REPS:-5}
read -r -a lengths <<<"${LENGTHS:-256 512 1024 2048 4096 8192 16384}"
read -r -a only <<<"${ONLY:-}"
only_flags=()
[ ${#only[@]} -gt 0 ] && only_flags=(--only "${only[@]}")
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(sweep kernels decode pytorch)

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target bench_mixers >/dev/null
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

bench=("$build/bench/bench_mixers")
for step in "${steps[@]}"; do
  echo "== $step (load: $(cat /proc/loadavg))"
  case $step in
    sweep) "${bench[@]}" sweep --threads "$threads" --reps "$reps" --out "$out" --lengths "${lengths[@]}" "${only_flags[@]}" ;;
    kernels) "${bench[@]}" kernels --threads "$threads" --reps "$reps" --out "$out" --lengths "${lengths[@]}" ;;
    decode) "${bench[@]}" decode --threads "$threads" "${only_flags[@]}" ;;
    pytorch)
      status=0
      /usr/bin/python3 "$root/bench/compare_pytorch.py" attention "$build" --T "${TORCH_T:-4096}" --threads "$threads" \
        --reps "$reps" || status=$?
      [ "$status" -eq 0 ] || [ "$status" -eq 77 ] || exit "$status"
      ;;
    *) echo "unknown step '$step' (sweep, kernels, decode, pytorch)" >&2; exit 2 ;;
  esac
done
echo "load after: $(cat /proc/loadavg)"
