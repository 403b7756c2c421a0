#!/bin/sh
# train_sample.sh - the ebm command end to end: a tiny training run writes a checkpoint,
# metrics, curves and a sample grid; sample and chain load it and write PNG/IDX/GIF;
# Ctrl-C saves and resume continues at the right iteration with identical state; bad
# flags, missing files, a wrong architecture and unwritable outputs fail with a message.
# Run by scripts/run_tests.sh with $EBM = the binary; exits non-zero on the first failure.
set -u
EBM=${EBM:-build/ebm}
DATA=${EBM_DATA:-data}/mnist
T=$(mktemp -d "${TMPDIR:-/tmp}/ebm-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT
ok=0

fail() { echo "FAIL: $*"; [ -f "$T/err" ] && sed 's/^/  stderr: /' "$T/err" | tail -n 5; exit 1; }
pass() { ok=$((ok + 1)); echo "ok   $*"; }

# run CODE PATTERN ARGS...: runs ebm, checks the exit code and that stderr matches PATTERN.
run() {
    want=$1; pat=$2; shift 2
    "$EBM" "$@" > "$T/out" 2> "$T/err"
    got=$?
    [ "$got" -eq "$want" ] || fail "ebm $* exited $got, expected $want"
    [ -z "$pat" ] || grep -q -- "$pat" "$T/err" || fail "ebm $*: stderr lacks '$pat'"
}

magic() { head -c "$2" "$1" | od -An -c | tr -d ' \n'; }

TINY="--digits 3 --limit 300 --langevin-steps 5 --batch 16 --buffer 256 --threads 2 --data $DATA"

# --- training ---------------------------------------------------------------------------
run 0 "" train $TINY --iters 6 --out "$T/m.safetensors" --sample-every 3 --sample-steps 10
for f in m.safetensors m-samples.png m-metrics.jsonl m-curves.png; do
    [ -s "$T/$f" ] || fail "training did not write $f"
done
[ "$(wc -l < "$T/m-metrics.jsonl")" -eq 6 ] || fail "metrics log should have 6 lines"
grep -q '"iteration": 6, "time": [0-9.]*, "loss"' "$T/m-metrics.jsonl" || fail "metrics line 6 malformed"
[ "$(magic "$T/m-curves.png" 4)" = "211PNG" ] || fail "curves are not a PNG"
grep -q "trained iterations 1..6" "$T/out" || fail "no summary line"
pass "train writes checkpoint, samples, metrics and curves"

# --- sample and chain load the checkpoint ---------------------------------------------------
run 0 "" sample --model "$T/m.safetensors" --grid 3x4 --steps 8 --out "$T/s.png,$T/s.idx" --seed 4
[ "$(magic "$T/s.png" 4)" = "211PNG" ] || fail "sample PNG"
[ "$(magic "$T/s.idx" 4)" = "\\0\\0\\b003" ] || fail "sample IDX magic: $(magic "$T/s.idx" 4)"
[ "$(wc -c < "$T/s.idx")" -eq $((16 + 12 * 784)) ] || fail "IDX should hold 12 images of 28x28"
run 0 "" sample --model "$T/m.safetensors" -n 5 --steps 4 --sampler mala --eps 1e-4 --noise auto --show
grep -q "MALA acceptance rate" "$T/out" || fail "MALA should print its acceptance rate"
grep -q "▀" "$T/out" || fail "--show printed no half blocks"
run 0 "" chain --model "$T/m.safetensors" -n 3 --steps 8 --every 4 --out "$T/c.gif"
[ "$(magic "$T/c.gif" 6)" = "GIF89a" ] || fail "chain GIF"
run 0 "" chain --model "$T/m.safetensors" -n 3 --steps 8 --every 4 --out "$T/c.png"
[ "$(magic "$T/c.png" 4)" = "211PNG" ] || fail "chain PNG"
grep -q "3 snapshots" "$T/out" || fail "8 steps every 4 should make 3 snapshots"
pass "sample (PNG, IDX, MALA, --show) and chain (GIF, PNG) load the checkpoint"

# --- determinism ----------------------------------------------------------------------------
run 0 "" sample --model "$T/m.safetensors" -n 6 --steps 8 --seed 9 --out "$T/d1.idx"
run 0 "" sample --model "$T/m.safetensors" -n 6 --steps 8 --seed 9 --threads 1 --out "$T/d2.idx"
cmp -s "$T/d1.idx" "$T/d2.idx" || fail "same seed and flags gave different samples"
run 0 "" sample --model "$T/m.safetensors" -n 6 --steps 8 --seed 10 --out "$T/d3.idx"
cmp -s "$T/d1.idx" "$T/d3.idx" && fail "another seed gave the same samples"
pass "same seed gives byte-identical samples (any thread count), another seed differs"

# --- resume: 3 + 3 iterations equal 6 ---------------------------------------------------------
run 0 "" train $TINY --iters 3 --out "$T/r.safetensors" --sample-every 0
run 0 "resuming .*at iteration 3 of 6" train --resume "$T/r.safetensors" --iters 6 --sample-every 0
[ "$(wc -l < "$T/r-metrics.jsonl")" -eq 6 ] || fail "resumed metrics log should have 6 lines"
run 0 "" sample --model "$T/r.safetensors" -n 6 --steps 8 --seed 9 --out "$T/d4.idx"
cmp -s "$T/d1.idx" "$T/d4.idx" || fail "3 + resume 3 iterations differ from 6 straight"
run 0 "" train --resume "$T/r.safetensors" --iters 6
grep -q "already at iteration 6" "$T/out" || fail "resume at the target should say so"
pass "resume continues at iteration 3 and ends bit-identical to a straight run"

# --- Ctrl-C saves, resume continues from there -------------------------------------------------
"$EBM" train $TINY --iters 100000 --out "$T/i.safetensors" --sample-every 0 --checkpoint-every 0 \
    > "$T/out" 2> "$T/err" &
pid=$!
n=0
while [ ! -s "$T/i-metrics.jsonl" ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done
kill -INT $pid
wait $pid
code=$?
[ $code -eq 130 ] || fail "SIGINT: exit $code, expected 130"
grep -q "interrupted at iteration [0-9]*; resume with --resume $T/i.safetensors" "$T/err" || fail "SIGINT message"
at=$(sed -n 's/.*interrupted at iteration \([0-9]*\);.*/\1/p' "$T/err")
run 0 "resuming .*at iteration $at of" train --resume "$T/i.safetensors" --iters $((at + 1)) --sample-every 0
pass "SIGINT saves at iteration $at (exit 130) and resume continues there"

# --- class-conditional model and the small exported model ----------------------------------
run 0 "" train --digits 3,7 --limit 200 --langevin-steps 3 --batch 16 --buffer 64 --threads 2 --data "$DATA" \
    --iters 2 --conditional --out "$T/cond.safetensors" --export "$T/cond-model.safetensors" --sample-every 0
grep -q '"spec":"[^"]*dense:10"' "$T/cond-model.safetensors" || fail "conditional model should have 10 outputs"
[ "$(wc -c < "$T/cond-model.safetensors")" -lt 400000 ] || fail "the exported model should be small"
run 0 "" sample --model "$T/cond-model.safetensors" --digit 7 -n 4 --steps 4 --out "$T/seven.png"
run 0 "" train --digits 3,7 --limit 200 --langevin-steps 3 --batch 16 --threads 2 --data "$DATA" \
    --iters 2 --conditional --marginal 0.5 --out "$T/jem.safetensors" --sample-every 0
grep -qF 'marginal\":0.5' "$T/jem.safetensors" || fail "the config should record --marginal 0.5"
run 2 "needs --conditional" train $TINY --iters 1 --marginal 0.5 --out "$T/jem2.safetensors"
pass "conditional training, --marginal, --export of the plain model, sample --digit"

# --- an unconditional model with a mixture head: ten outputs, trained without labels -------
# E(x) = -logsumexp_y f(x)[y]; it must sample as one model of all digits and refuse --digit.
run 0 "" train --digits 3,7 --limit 200 --langevin-steps 3 --batch 16 --threads 2 --data "$DATA" \
    --iters 2 --arch cnn-small-cond --out "$T/mix.safetensors" --export "$T/mix-model.safetensors" --sample-every 0
run 2 "is unconditional (trained without labels)" sample --model "$T/mix-model.safetensors" --digit 7 -n 2 --steps 2
run 2 "is unconditional" chain --model "$T/mix-model.safetensors" --digit 7 -n 2 --steps 2 --out "$T/mix.png"
run 0 "" sample --model "$T/mix-model.safetensors" -n 4 --steps 4 --out "$T/mix.idx"
[ "$(wc -c < "$T/mix.idx")" -eq $((16 + 4 * 784)) ] || fail "mixture-head samples: wrong IDX size"
pass "a ten-output model trained without labels samples unconditionally and refuses --digit"

# --- warm start: --init takes another model's parameters, nothing else -----------------------
# lr 1e-12 moves no weight visibly, so the warm-started model samples what its source samples
run 0 "starting from the parameters of" train $TINY --iters 1 --lr 1e-12 --seed 9 --init "$T/m.safetensors" \
    --out "$T/w.safetensors" --sample-every 0
run 0 "" sample --model "$T/w.safetensors" -n 4 --steps 4 --out "$T/w.idx"
run 0 "" sample --model "$T/m.safetensors" -n 4 --steps 4 --out "$T/m4.idx"
cmp -s "$T/w.idx" "$T/m4.idx" || fail "--init did not take the source model's parameters"
run 0 "" train $TINY --iters 1 --lr 1e-12 --seed 9 --out "$T/w0.safetensors" --sample-every 0
run 0 "" sample --model "$T/w0.safetensors" -n 4 --steps 4 --out "$T/w0.idx"
cmp -s "$T/w0.idx" "$T/m4.idx" && fail "a fresh seed-9 model samples like the source: the check above proves nothing"
run 2 "its architecture is" train $TINY --iters 1 --arch cnn-small-cond --init "$T/m.safetensors" --out "$T/w1.safetensors"
run 2 "give --resume or --init, not both" train --resume "$T/m.safetensors" --init "$T/m.safetensors" --iters 9
pass "--init starts a fresh run from another model's parameters; a wrong architecture is refused"

# --- errors -----------------------------------------------------------------------------------
run 2 "unknown flag --lrr (did you mean --lr?)" train --lrr 1
run 2 "--lr expects a positive number, got 'abc'" train --lr abc
run 2 "--batch expects a positive integer, got '0'" train --batch=0
run 2 "--noise expects a non-negative number or 'auto', got 'x'" sample --model "$T/m.safetensors" --noise x
run 2 "did you mean 'train'" trian
run 2 "--gpus 2 needs --device cuda" train $TINY --iters 1 --gpus 2 --out "$T/g.safetensors"
run 2 "--gpus expects a positive integer" train $TINY --iters 1 --gpus 0 --out "$T/g.safetensors"
run 2 "--precision tf32 runs on the GPU's tensor cores: it needs --device cuda" train $TINY --iters 1 --precision tf32 --out "$T/g.safetensors"
run 2 "--precision expects fp32 or tf32, got 'bf16'" sample --model "$T/m.safetensors" --precision bf16
run 2 "--precision tf32 runs on the GPU's tensor cores" chain --model "$T/m.safetensors" --precision tf32
run 2 "--model FILE is required" chain
run 2 "extension must be .png or .gif" chain --model "$T/m.safetensors" --out "$T/c.jpg"
run 1 "nope.safetensors" sample --model "$T/nope.safetensors"
run 1 "cannot write $T/nodir/x.png: No such file or directory" sample --model "$T/m.safetensors" --out "$T/nodir/x.png"
run 1 "cannot write $T/nodir/m.safetensors" train $TINY --iters 1 --out "$T/nodir/m.safetensors"
run 1 "$T/nodata" train --data "$T/nodata" --iters 1 --out "$T/x.safetensors"
run 2 "cannot resume it as --arch cnn-small-cond" train --resume "$T/m.safetensors" --arch cnn-small-cond --iters 9
# a safetensors file that says cnn-small but holds a 1-element 0.weight
json='{"__metadata__":{"spec":"cnn-small"},"0.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
len=$(printf '%s' "$json" | wc -c)
{ printf "\\$(printf %03o "$len")\\0\\0\\0\\0\\0\\0\\0"; printf '%s' "$json"; printf '\0\0\0\0'; } > "$T/bad.safetensors"
run 1 "another architecture" sample --model "$T/bad.safetensors"
run 2 "needs a class-conditional model" sample --model "$T/m.safetensors" --digit 3
pass "bad flags, missing files, wrong architecture and unwritable outputs fail with clear messages"

echo "cli train_sample: $ok groups passed"
