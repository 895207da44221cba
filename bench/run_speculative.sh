#!/usr/bin/env bash
# Speculative decoding (issue 7): trains small models with Medusa heads or MTP modules on built-in tasks and on a text
# file, then decodes held-out prompts greedily both ways (`ember generate --speculative KIND --held-out 50`): tokens
# per base-model forward, how many outputs equal plain greedy decoding, and the wall-clock ratio, each prompt timed
# as the best of three runs of each decoder in the same process.
# Usage: bench/run_speculative.sh [BUILD_DIR] (default build); runs go to $OUT (default runs/speculative) and are
# reused when their checkpoint exists.
set -euo pipefail
build=${1:-build}
ember=$build/cli/ember
out=${OUT:-runs/speculative}
mkdir -p "$out"
export OMP_WAIT_POLICY=PASSIVE

# train DIR FLAGS...: an `ember train` run into $out/DIR unless it is there already.
train() {
  local dir=$1
  shift
  [ -f "$out/$dir/checkpoint.safetensors" ] || "$ember" train "$@" --out "$out/$dir" >"$out/$dir.log" 2>&1
  grep '^final:' "$out/$dir.log" | sed "s|^|$dir: |"
}

# measure DIR KIND [FLAGS...]: speculative decoding of 50 held-out prompts.
measure() {
  local dir=$1 kind=$2
  shift 2
  echo "== $dir: --speculative $kind $*"
  "$ember" generate --checkpoint "$out/$dir" --speculative "$kind" --held-out 50 "$@"
}

train copy_medusa --task copy --steps 600 --medusa 3
train addition_medusa --task addition --steps 2000 --medusa 3
train text_medusa --data README.md --seq 64 --batch 32 --steps 1500 --medusa 3
train copy_mtp --task copy --steps 600 --layers 4 --mtp 1
train text_mtp --data README.md --seq 64 --batch 32 --steps 1500 --layers 4 --mtp 1

measure copy_medusa medusa --tree medusa
measure copy_medusa medusa --tree chain
measure addition_medusa medusa --tree medusa
measure addition_medusa medusa --tree chain
measure text_medusa medusa --tree medusa
measure text_medusa medusa --tree chain
measure copy_mtp mtp
measure text_mtp mtp
