#!/bin/sh
# bench.sh - `ebm bench` at tiny sizes: the header with the FLOPs counted from the layer
# table, the measured CPU ceiling, one Langevin line per batch size, the training line, a
# JSON file whose GFLOP/s agree with its image-steps/s, and bad flags refused with a message.
# Run by scripts/run_tests.sh with $EBM = the binary; exits non-zero on the first failure.
set -u
EBM=${EBM:-build/ebm}
T=$(mktemp -d "${TMPDIR:-/tmp}/ebm-bench-XXXXXX")
trap 'rm -rf "$T"' EXIT
ok=0

fail() { echo "FAIL: $*"; for f in out err; do [ -f "$T/$f" ] && sed "s/^/  $f: /" "$T/$f" | tail -n 8; done; exit 1; }
pass() { ok=$((ok + 1)); echo "ok   $*"; }

# run CODE PATTERN ARGS...: runs ebm, checks the exit code and that stderr matches PATTERN.
run() {
    want=$1; pat=$2; shift 2
    "$EBM" "$@" > "$T/out" 2> "$T/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "ebm $* exited $got, expected $want"
    [ -z "$pat" ] || grep -q -- "$pat" "$T/err" || fail "ebm $*: stderr lacks '$pat'"
}
has() { grep -Eq -- "$1" "$T/out" || fail "output lacks /$1/"; }
# json KEY: the first number after "KEY": in the JSON file.
json() { sed -n "s/.*\"$1\":[[:space:]]*\([-0-9.e+]*\).*/\1/p" "$T/b.json" | head -n 1; }

TINY="--batches 8 --steps 2 --seconds 0.2"
NUM='[0-9]+(\.[0-9]+)?'

run 0 "" bench $TINY --threads 1 --json "$T/b.json"
has "^ebm bench: cnn-small on cpu, 1 thread; 3\.425 MFLOP per image-step"
has "^ceiling: OpenBLAS sgemm 512\^3 on 1 thread, measured now: $NUM GFLOP/s"
has "^langevin batch 8: $NUM( k| M)? image-steps/s, $NUM GFLOP/s \([0-9]+% of the ceiling\); median $NUM ms per 2-step sample\(\) call"
[ "$(grep -c '^langevin batch' "$T/out")" -eq 1 ] || fail "one batch size should give one langevin line"
grep -q '^train' "$T/out" && fail "no --train: no training line expected"
has "^wrote $T/b.json"
pass "header, ceiling and one langevin line per batch size"

[ -s "$T/b.json" ] || fail "--json wrote nothing"
rate=$(json image_steps_per_s); gf=$(json gflops); mf=$(json mflop_per_image_step)
[ -n "$rate" ] && [ -n "$gf" ] && [ -n "$mf" ] || fail "JSON lacks image_steps_per_s, gflops or mflop_per_image_step"
awk -v r="$rate" -v g="$gf" -v m="$mf" 'BEGIN { d = r * m / 1000 - g; exit !(r > 0 && m > 3.42 && m < 3.43 && d * d < 1e-6 * g * g) }' ||
    fail "JSON: $rate image-steps/s x $mf MFLOP should be $gf GFLOP/s"
grep -q '"ceiling":[[:space:]]*{' "$T/b.json" || fail "JSON: no measured ceiling"
pass "JSON figures agree (GFLOP/s = image-steps/s x MFLOP per step)"

run 0 "" bench --batches 8,16 --steps 2 --seconds 0.2 --train --threads 2 --arch cnn-small-cond
has "^ebm bench: cnn-small-cond on cpu, 2 threads"
has "^langevin batch 8: "
has "^langevin batch 16: "
has "^train batch 128: $NUM( k)? iterations/s \(2 Langevin steps on 128 negatives each"
pass "two batch sizes, --train, a conditional network"

run 0 "" bench --help
has "--batches"
"$EBM" help | grep -q "^  bench " || fail "ebm help does not list bench"
pass "--help and 'ebm help' list the command"

run 2 "--batches expects" bench --batches 8,x
run 2 "--batches expects" bench --batches 0
run 2 "did you mean --batches" bench --batchs 8
run 2 "--steps" bench --steps 0
run 2 "needs --device cuda and --train" bench --gpus 2 --train --steps 1
run 2 "--seconds" bench --seconds -1
run 2 "--device expects cpu, cuda" bench --device tpu
run 2 "--precision tf32 runs on the GPU's tensor cores: it needs --device cuda" bench --precision tf32
run 2 "--precision expects fp32 or tf32, got 'fp16'" bench --device cuda --precision fp16
run 2 "--arch foo" bench --arch foo
run 1 "cannot write" bench $TINY --json "$T/no/such/dir/b.json"
[ -s "$T/out" ] && fail "a refused --json should stop before any timing"
run 1 "" bench $TINY --device cuda
grep -Eq "without CUDA|no usable NVIDIA GPU" "$T/err" || fail "--device cuda without a GPU: unclear error"
[ -s "$T/out" ] && fail "--device cuda without a GPU should print only the error"
pass "bad flags and values, an unwritable --json and a missing GPU fail with a message"

echo "bench.sh: $ok groups passed"
