#!/usr/bin/env bash
# The `ember` command end to end: misuse exits 2 with one line on stderr, a short run ends with the
# summary line and leaves checkpoint, metrics and curves, generate continues a prompt, Ctrl-C saves a
# checkpoint that --resume continues. Usage: cli_test.sh PATH_TO_EMBER
set -u
ember=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_misuse DESCRIPTION ARGS...: exit code 2 and exactly one line on stderr.
expect_misuse() {
  local what=$1; shift
  "$ember" "$@" >out.txt 2>err.txt
  local rc=$?
  [ "$rc" -eq 2 ] || fail "$what: exit code $rc, expected 2"
  [ "$(wc -l <err.txt)" -eq 1 ] || fail "$what: stderr has $(wc -l <err.txt) lines: $(cat err.txt)"
}

expect_misuse "unknown flag" train --bogus
expect_misuse "bad number" train --steps abc
expect_misuse "negative steps" train --steps -5
expect_misuse "unknown task" train --task sorting
expect_misuse "unknown mixer" train --mixer nonsense --steps 1
expect_misuse "missing data file" train --data no_such_file.txt
expect_misuse "no subcommand"
expect_misuse "generate without checkpoint" generate --prompt 1+2=
expect_misuse "resume without checkpoint" train --resume --out empty_dir
expect_misuse "width not divisible into heads" train --dim 130 --heads 4 --steps 1
expect_misuse "bench with an unknown mixer" bench --mixer nonsense
expect_misuse "preset with one layer" train --preset transnormer --layers 1 --steps 1
expect_misuse "preset and mixer together" train --preset transnormer --mixer linear --steps 1
expect_misuse "unknown preset" train --preset gpt5 --steps 1
expect_misuse "mixer option without a number" train --mixer linear --mixer-option chunk=x --steps 1
expect_misuse "mixer option the mixer does not read" train --mixer linear --mixer-option chnk=8 --steps 1
expect_misuse "unknown amp format" train --amp fp8 --steps 1
expect_misuse "medusa and mtp together" train --medusa 2 --mtp 1 --steps 1
"$ember" train --help >/dev/null 2>&1 || fail "train --help exits non-zero"

"$ember" train --digits 1 --steps 30 --dim 32 --heads 2 --layers 1 --out run1 >train.txt 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "short train run exit code $rc: $(tail -3 train.txt)"
grep -Eq '^final: step=30 loss=[0-9.]+ accuracy=[0-9.]+$' train.txt || fail "no summary line: $(tail -3 train.txt)"
for f in checkpoint.safetensors metrics.csv curves.svg; do [ -s "run1/$f" ] || fail "run1/$f missing"; done

"$ember" train --digits 1 --steps 5 --dim 32 --heads 2 --layers 4 --preset transnormer --mixer-option block=4 \
  --out run_tn >tn.txt 2>&1 || fail "transnormer preset run failed: $(tail -3 tn.txt)"
grep -q "4 layers (diag_attention, diag_attention, norm_attention, norm_attention)" tn.txt ||
  fail "transnormer layout not reported: $(head -1 tn.txt)"
grep -Eq '^final: step=5 ' tn.txt || fail "transnormer preset summary: $(tail -2 tn.txt)"

"$ember" generate --checkpoint run1 --prompt "3+4=" >gen.txt 2>&1 || fail "generate failed: $(cat gen.txt)"
grep -Eq '^3\+4=' gen.txt || fail "generate output: $(cat gen.txt)"
expect_misuse "prompt outside the vocabulary" generate --checkpoint run1 --prompt "3x4="
expect_misuse "empty prompt" generate --checkpoint run1 --prompt ""

"$ember" train --digits 1 --steps 100000 --dim 32 --heads 2 --layers 1 --out run2 >int.txt 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "^ember train:" int.txt 2>/dev/null && break; sleep 0.1; done
sleep 1
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" -eq 130 ] || fail "Ctrl-C exit code $rc, expected 130: $(tail -2 int.txt)"
grep -q "checkpoint saved" int.txt || fail "Ctrl-C did not report a checkpoint: $(tail -2 int.txt)"
stopped=$(sed -n 's/^interrupted at step \([0-9]*\):.*/\1/p' int.txt)
target=$((stopped + 20))
"$ember" train --resume --out run2 --steps "$target" >resume.txt 2>&1 || fail "resume failed: $(tail -3 resume.txt)"
grep -Eq "^final: step=$target " resume.txt || fail "resumed run summary: $(tail -2 resume.txt)"

# A resumed run rebuilds the same task: selective copy's T = seq + markers, so the saved --seq must stay 8 (T = 10),
# and Mamba and RWKV (time and channel mixing) train from the command line.
"$ember" train --task selective_copy --seq 8 --steps 3 --dim 32 --layers 1 --mixer mamba --out run_sc >sc.txt 2>&1 ||
  fail "selective_copy run failed: $(tail -3 sc.txt)"
"$ember" train --resume --out run_sc --steps 5 >sc2.txt 2>&1 || fail "selective_copy resume failed: $(tail -3 sc2.txt)"
grep -q "T = 10," sc.txt && grep -q "T = 10," sc2.txt || fail "resume changed the task: $(head -1 sc.txt) / $(head -1 sc2.txt)"
"$ember" train --digits 1 --steps 3 --dim 32 --layers 1 --mixer rwkv --mlp rwkv --out run_rwkv >rwkv.txt 2>&1 ||
  fail "rwkv run failed: $(tail -3 rwkv.txt)"
grep -Eq '^final: step=3 ' rwkv.txt || fail "rwkv summary: $(tail -2 rwkv.txt)"

# Mixed precision: fp16 reports its loss scale, and a resumed run keeps the precision it was started with.
"$ember" train --digits 1 --steps 4 --dim 32 --heads 2 --layers 1 --amp fp16 --out run_fp16 >fp16.txt 2>&1 ||
  fail "fp16 run failed: $(tail -3 fp16.txt)"
grep -q "mixed precision fp16 with loss scaling" fp16.txt || fail "fp16 not reported: $(head -1 fp16.txt)"
grep -Eq '^loss scale: [0-9]+ \([0-9]+ of 4 steps skipped' fp16.txt || fail "no loss scale line: $(tail -4 fp16.txt)"
"$ember" train --resume --out run_fp16 --steps 6 >fp16b.txt 2>&1 || fail "fp16 resume failed: $(tail -3 fp16b.txt)"
grep -q "mixed precision fp16 with loss scaling" fp16b.txt || fail "resume lost --amp: $(head -1 fp16b.txt)"
"$ember" train --digits 1 --steps 3 --dim 32 --heads 2 --layers 1 --amp bf16 --mixer mamba --out run_bf16 >bf16.txt 2>&1 ||
  fail "bf16 mamba run failed: $(tail -3 bf16.txt)"
grep -q "mixed precision bf16 without loss scaling" bf16.txt || fail "bf16 not reported: $(head -1 bf16.txt)"

# Speculative decoding: Medusa heads and MTP modules trained with the model, then greedy speculative generation,
# which must reproduce plain greedy decoding exactly.
"$ember" train --task copy --steps 20 --dim 32 --heads 2 --layers 1 --medusa 2 --out run_medusa >medusa.txt 2>&1 ||
  fail "medusa run failed: $(tail -3 medusa.txt)"
grep -q "2 Medusa heads" medusa.txt || fail "medusa heads not reported: $(head -1 medusa.txt)"
"$ember" generate --checkpoint run_medusa --speculative medusa --held-out 4 >spec.txt 2>&1 ||
  fail "medusa generate failed: $(tail -3 spec.txt)"
grep -q "identical to greedy decoding: 4 of 4" spec.txt || fail "medusa output differs from greedy: $(cat spec.txt)"
grep -Eq "tokens per forward" spec.txt || fail "no tokens per forward: $(cat spec.txt)"
expect_misuse "mtp on a medusa run" generate --checkpoint run_medusa --speculative mtp --held-out 2
expect_misuse "held-out without speculative" generate --checkpoint run_medusa --held-out 3
"$ember" train --task copy --steps 20 --dim 32 --heads 2 --layers 1 --mixer retnet --mtp 2 --out run_mtp >mtp.txt 2>&1 ||
  fail "mtp run failed: $(tail -3 mtp.txt)"
"$ember" generate --checkpoint run_mtp --speculative mtp --prompt "abcd|" >spec2.txt 2>&1 ||
  fail "mtp generate failed: $(tail -3 spec2.txt)"
grep -q "identical to greedy decoding: 1 of 1" spec2.txt || fail "mtp output differs from greedy: $(cat spec2.txt)"

[ "$failures" -eq 0 ] && echo "all ember command checks passed"
exit $((failures > 0))
