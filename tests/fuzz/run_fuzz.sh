#!/bin/sh
# Builds the safetensors fuzzer with clang++ (libFuzzer + AddressSanitizer) in the build tree and runs it
# from a generated seed corpus. Exits 77 (ctest's SKIP_RETURN_CODE) when clang++ or libFuzzer is missing.
# Usage: run_fuzz.sh CLANGXX CONFIG_FILE WORK_DIR SECONDS GENERATOR
set -u
clangxx=$1 config=$2 work=$3 seconds=$4 generator=$5
here=$(cd "$(dirname "$0")" && pwd)

skip() {
  echo "SKIP: $1"
  exit 77
}

[ -n "$clangxx" ] && [ -x "$clangxx" ] || skip "no clang++ was found when ember was configured (install clang)"
mkdir -p "$work" || exit 1
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
  'extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }' >"$work/probe.cpp"
"$clangxx" -fsanitize=fuzzer,address "$work/probe.cpp" -o "$work/probe" >"$work/probe.log" 2>&1 ||
  skip "$clangxx cannot link a libFuzzer target (libclang_rt.fuzzer missing?): $(tail -n 1 "$work/probe.log")"

echo "== building the fuzzer with $clangxx in $work/build"
cmake -S "$here/project" -B "$work/build" -G "$generator" -DCMAKE_CXX_COMPILER="$clangxx" \
  -DEMBER_FUZZ_CONFIG="$config" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" -j 2 >"$work/build.log" 2>&1 || { tail -n 60 "$work/build.log"; exit 1; }

rm -rf "$work/seeds" && mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
"$work/build/make_corpus" "$work/seeds" || exit 1
echo "== fuzzing safetensors::parse for $seconds s ($(ls "$work/seeds" | wc -l) seeds, corpus in $work/corpus)"
# The first corpus directory collects new interesting inputs; the seeds are read too.
"$work/build/fuzz_safetensors" "$work/corpus" "$work/seeds" -dict="$here/safetensors.dict" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" 2>&1
status=$?
[ $status -eq 0 ] || echo "FAILED: fuzz_safetensors exited with $status; the crashing input is in $work/artifacts/"
exit $status
