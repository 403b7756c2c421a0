#!/bin/sh
# serve_e2e.sh - the page of `ebm serve` in a real browser (tests/web/e2e.mjs: Debian's
# chromium driven by playwright-core): trains a tiny model here (a few iterations on 64
# images, so that the dashboard has a log and a sample grid), serves it on a free loopback
# port, runs the browser test, and stops the server.  Screenshots: build/test-logs/serve*.png.
# E2E_MODEL=FILE.safetensors serves that model instead (with its -metrics.jsonl beside it,
# when there is one) and E2E_STEPS=256 runs longer chains: how docs/img/serve.png is made
# with a trained model.
set -u
EBM=${EBM:-build/ebm}
DATA=${EBM_DATA:-data}
if [ ! -d "$DATA/mnist" ]; then
    echo "skipped: $DATA/mnist is absent (run 'make data')"
    exit 0
fi
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "FAIL: $CHROMIUM not found (scripts/setup.sh test installs chromium)"; exit 1; }
[ -d tests/web/node_modules/playwright-core ] ||
    { echo "FAIL: tests/web/node_modules is missing (make test runs npm ci there)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ebm-e2e-XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

"$EBM" train --digits 3 --limit 64 --batch 8 --iters 3 --langevin-steps 4 --buffer 0 --sample-every 2 \
    --sample-steps 5 --metrics-every 1 --threads 2 --data "$DATA/mnist" --out "$T/tiny.safetensors" > "$T/train.log" 2>&1 ||
    { echo "FAIL: could not train the tiny model:"; tail -n 5 "$T/train.log"; exit 1; }

model=${E2E_MODEL:-$T/tiny.safetensors}
metrics=${model%.safetensors}-metrics.jsonl
[ -f "$metrics" ] || metrics=$T/tiny-metrics.jsonl
"$EBM" serve --model "$model" --port 0 --metrics "$metrics" --threads 2 \
    > "$T/serve.out" 2> "$T/serve.err" &
pid=$!
url=
for _ in $(seq 100); do
    url=$(sed -n 's|^ebm serve: \(http://[^ ]*\)  .*|\1|p' "$T/serve.out")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$url" ] || { echo "FAIL: the server did not start:"; cat "$T/serve.out" "$T/serve.err"; exit 1; }
echo "serving $url"

EBM_URL=$url E2E_STEPS=${E2E_STEPS:-40} SHOTS=${TEST_LOGS:-build/test-logs} CHROMIUM=$CHROMIUM node tests/web/e2e.mjs
rc=$?
kill -0 "$pid" 2>/dev/null || { echo "FAIL: the server died during the browser test"; rc=1; }
echo "server log (last lines):"
tail -n 12 "$T/serve.err" | sed 's/^/  | /'
exit $rc
