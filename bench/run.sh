#!/usr/bin/env bash
# Builds and runs ember's benchmarks, then prints the ratios bench/RESULTS.md records:
#   matmul:      ember GFLOP/s / max(Eigen, OpenBLAS) GFLOP/s, per case and thread count
#   elementwise: ember GB/s / best plain-loop GB/s (serial or OpenMP) at the same thread count
# Each benchmark runs REPS times (default 3), randomly interleaved so background load falls on every
# contender alike; the table uses the median. Usage: bench/run.sh [extra Google Benchmark flags]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build-bench}
reps=${REPS:-3}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"${JOBS:-2}" --target bench_matmul bench_elementwise >/dev/null

flags=(--benchmark_min_time=0.2 --benchmark_repetitions="$reps" --benchmark_enable_random_interleaving=true
       --benchmark_report_aggregates_only=true --benchmark_out_format=json)
echo "load before: $(cat /proc/loadavg)"
"$build/bench/bench_matmul" "${flags[@]}" --benchmark_out="$build/bench/matmul.json" "$@"
"$build/bench/bench_elementwise" "${flags[@]}" --benchmark_out="$build/bench/elementwise.json" "$@"
echo "load after:  $(cat /proc/loadavg)"

python3 - "$build/bench/matmul.json" "$build/bench/elementwise.json" <<'PY'
import json, sys

def medians(path, counter):
    """{(family, impl, case, threads): median counter} from one Google Benchmark JSON file."""
    out = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        parts = b["run_name"].split("/")  # family/impl/[case/]threads:T/real_time
        family, impl = parts[0], parts[1]
        threads = int(next(p for p in parts if p.startswith("threads:")).split(":")[1])
        case = parts[2] if len(parts) > 4 else family
        out[(family, impl, case, threads)] = b[counter]
    return out

mm = medians(sys.argv[1], "GFLOPS")
print("\nmatmul, Float32, GFLOP/s (median); ratio = ember / max(Eigen, OpenBLAS); target >= 0.90")
print(f"| {'case (M x N x K)':<28} | thr | {'ember':>7} | {'Eigen':>7} | {'OpenBLAS':>8} | ratio | target |")
print(f"|{'-'*30}|-----|{'-'*9}|{'-'*9}|{'-'*10}|-------|--------|")
order = ["square256", "square512", "square1024", "square2048", "proj_2048x512x128", "transB_1024",
         "batch64_128x128x32", "batch64_transB_128x128x32"]
cases = order + sorted({k[2] for k in mm} - set(order))
for case in cases:
    for t in (1, 2):
        e, g, o = (mm.get(("matmul", i, case, t)) for i in ("ember", "eigen", "openblas"))
        if None in (e, g, o):
            continue
        r = e / max(g, o)
        # The issue's target covers every size from 512 up; 256 and the 64 small head products are reported only.
        has_target = not (case == "square256" or case.startswith("batch64"))
        verdict = ("met" if r >= 0.9 else "MISSED") if has_target else "-"
        print(f"| {case:<28} | {t:>3} | {e:7.1f} | {g:7.1f} | {o:8.1f} | {r:5.2f} | {verdict:<6} |")

ew = medians(sys.argv[2], "bytes_per_second")
print("\nelementwise, Float32, GB/s (median); ratio = ember / best plain loop; target >= 0.80")
print(f"| {'case':<36} | thr | {'ember':>6} | {'loop':>6} | {'loop_omp':>8} | ratio | target |")
print(f"|{'-'*38}|-----|{'-'*8}|{'-'*8}|{'-'*10}|-------|--------|")
names = {"add": "add [16M] + [16M]", "bias_add": "bias add [4096,4096] + [4096]"}
for fam in ("add", "bias_add"):
    for t in (1, 2):
        e, l, p = (ew.get((fam, i, fam, t)) for i in ("ember", "loop", "loop_omp"))
        if None in (e, l, p):
            continue
        r = e / max(l, p)
        print(f"| {names[fam]:<36} | {t:>3} | {e/1e9:6.1f} | {l/1e9:6.1f} | {p/1e9:8.1f} | {r:5.2f} | "
              f"{'met' if r >= 0.8 else 'MISSED':<6} |")
PY
