#!/bin/sh
# latent.sh - `ebm latent train|infer|plot` end to end on a small slice of MNIST: files,
# dashed and underscore flags alike, exact resume, IDX/PNG outputs, the 2-D plot, and the
# errors a user can cause (bad flags, inconsistent checkpoint pair, missing model).
set -u
EBM=${EBM:-build/ebm}
DATA=${EBM_DATA:-data}/mnist
if [ ! -d "$DATA" ]; then
    echo "skipped: $DATA is absent (run 'make data')"
    exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/ebm-latent-XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
# expect CODE PATTERN NAME -- command...: exit code and a line of output matching PATTERN
expect() {
    code=$1 pat=$2 name=$3
    shift 4
    "$@" > "$T/out" 2>&1
    rc=$?
    if [ "$rc" -eq "$code" ] && grep -q -- "$pat" "$T/out"; then ok "$name"; else
        bad "$name (exit $rc, wanted $code and /$pat/)"
        sed 's/^/     | /' "$T/out" | tail -n 8
    fi
}

SMALL="--auto_hidden_dim 64 --auto_batch_size 64 --limit 2000 --test-limit 500 --ebm_hidden_dim 8
       --ebm_batch_size 256 --mcmc_samples_per_datapoint 4 --mcmc_steps 10 --threads 2 --seed 3"
# shellcheck disable=SC2086
expect 0 "test BCE" "train writes a pipeline (underscore flags)" -- \
    "$EBM" latent train $SMALL --encoded_dim 2 --auto_num_epochs 2 --ebm_num_epochs 2 --out-dir "$T/a"
for f in autoencoder.safetensors latent_ebm.safetensors latent-metrics.jsonl latent-samples.png latent-plot.png; do
    [ -s "$T/a/$f" ] && ok "train wrote $f" || bad "train wrote $f"
done
[ "$(grep -c '"phase":"autoencoder"' "$T/a/latent-metrics.jsonl")" -eq 2 ] && ok "one metrics line per autoencoder epoch" ||
    bad "one metrics line per autoencoder epoch"

# the same run spelled with dashes gives the same model
DASHED=$(echo "$SMALL" | sed 's/--\([a-z_]*\)/--\1/g; s/_/-/g')
# shellcheck disable=SC2086
expect 0 "test BCE" "train accepts dashed flags" -- \
    "$EBM" latent train $DASHED --encoded-dim 2 --auto-num-epochs 2 --ebm-num-epochs 2 --out-dir "$T/b"
"$EBM" latent infer --model-dir "$T/a" --num_images 16 --out "$T/a.idx" > /dev/null 2>&1
"$EBM" latent infer --model-dir "$T/b" --num-images 16 --out "$T/b.idx" > /dev/null 2>&1
cmp -s "$T/a.idx" "$T/b.idx" && ok "dashed and underscore runs sample the same images" ||
    bad "dashed and underscore runs sample the same images"

# resume: 1 epoch each, then --resume to 2 epochs each == 2 epochs straight
# shellcheck disable=SC2086
"$EBM" latent train $SMALL --encoded_dim 2 --auto_num_epochs 1 --ebm_num_epochs 1 --out-dir "$T/c" > /dev/null 2>&1
# shellcheck disable=SC2086
expect 0 "resuming $T/c: autoencoder at epoch 1 of 2" "--resume continues from the last epoch" -- \
    "$EBM" latent train $SMALL --encoded_dim 2 --auto_num_epochs 2 --ebm_num_epochs 2 --out-dir "$T/c" --resume
"$EBM" latent infer --model-dir "$T/c" --num_images 16 --out "$T/c.idx" > /dev/null 2>&1
cmp -s "$T/a.idx" "$T/c.idx" && ok "interrupted + resumed run equals the straight run" ||
    bad "interrupted + resumed run equals the straight run"
[ "$(wc -l < "$T/c/latent-metrics.jsonl")" -eq "$(wc -l < "$T/a/latent-metrics.jsonl")" ] &&
    ok "resumed metrics log has no duplicate lines" || bad "resumed metrics log has no duplicate lines"
# shellcheck disable=SC2086
expect 2 "encoded_dim 2 but --encoded_dim is 4" "--resume with other dims is refused" -- \
    "$EBM" latent train $SMALL --encoded_dim 4 --auto_num_epochs 2 --out-dir "$T/c" --resume

# infer
expect 0 "acceptance 0\.[0-9]" "infer --num_images 10 prints the MALA acceptance" -- \
    "$EBM" latent infer --num_images 10 --model-dir "$T/a" --out "$T/s.png"
[ -s "$T/s.png" ] && ok "infer wrote a PNG" || bad "infer wrote a PNG"
expect 0 "pixel probabilities" "infer --probabilities" -- \
    "$EBM" latent infer --num_images 4 --model "$T/a" --out "$T/p.png" --idx "$T/p.idx" --probabilities
[ "$(wc -c < "$T/p.idx")" -eq $((16 + 4 * 784)) ] && ok "infer --idx writes n x 28 x 28 bytes" ||
    bad "infer --idx writes n x 28 x 28 bytes"
expect 0 "ULA" "infer --sampler ula" -- \
    "$EBM" latent infer --num_images 4 --model-dir "$T/a" --out "$T/u.png" --sampler ula --steps 50 --step-size 0.02

# plot
expect 0 "wrote" "plot draws a 2-D pipeline" -- "$EBM" latent plot --model-dir "$T/a" --out "$T/plot.png"
[ -s "$T/plot.png" ] && ok "plot wrote a PNG" || bad "plot wrote a PNG"

# errors a user can cause
# shellcheck disable=SC2086
"$EBM" latent train $SMALL --encoded_dim 4 --auto_num_epochs 1 --ebm_num_epochs 1 --out-dir "$T/d4" > /dev/null 2>&1
expect 2 "has encoded_dim 4" "plot of a 4-D pipeline says what to do" -- \
    "$EBM" latent plot --model-dir "$T/d4" --out "$T/x.png"
mkdir -p "$T/mixed"
cp "$T/d4/autoencoder.safetensors" "$T/mixed/"
cp "$T/a/latent_ebm.safetensors" "$T/mixed/"
expect 1 "inconsistent pair: the decoder in .* takes 4-dim codes .* models 2-dim codes" \
    "decoder dim != EBM dim is a clear error" -- "$EBM" latent infer --model-dir "$T/mixed" --out "$T/x.png"
expect 1 "no latent pipeline in .* train one with" "missing model directory" -- \
    "$EBM" latent infer --model-dir "$T/nothing" --out "$T/x.png"
expect 2 "encoded" "--encoded_dim 0 is refused" -- "$EBM" latent train --encoded_dim 0 --out-dir "$T/e"
expect 2 "did you mean --encoded-dim" "a misspelt flag gets a suggestion" -- \
    "$EBM" latent train --encoded_dims 3 --out-dir "$T/e"
expect 2 "mala or ula" "--sampler must be mala or ula" -- "$EBM" latent train --sampler hmc --out-dir "$T/e"
expect 2 "expects\|positive\|number" "--auto_lr abc is refused" -- "$EBM" latent train --auto_lr abc --out-dir "$T/e"
expect 2 "name a .png" "infer --out with an unknown extension" -- \
    "$EBM" latent infer --model-dir "$T/a" --out "$T/x.jpg"
expect 2 "unknown subcommand 'sample'" "unknown latent subcommand" -- "$EBM" latent sample
expect 0 "auto-hidden-dim" "latent train --help lists the flags" -- "$EBM" latent train --help

echo "latent CLI: $fails failed"
[ "$fails" -eq 0 ]
