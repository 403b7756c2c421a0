#!/bin/sh
# serve_api.sh - `ebm serve` as a user runs it, driven with curl as docs/API.md shows:
# flags and their errors, every endpoint once with a good request, the bad requests a
# user can send (malformed JSON, NaN, unknown model, wrong image size, a 10 MB body,
# unknown and "../" paths), the server still answering afterwards, and a clean stop on
# SIGTERM.  The model is trained here, tiny (3 iterations on 64 images).
set -u
EBM=${EBM:-build/ebm}
DATA=${EBM_DATA:-data}
if [ ! -d "$DATA/mnist" ]; then
    echo "skipped: $DATA/mnist is absent (run 'make data')"
    exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/ebm-serve-XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
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
        sed 's/^/     | /' "$T/out" | tail -n 6
    fi
}

# http STATUS PATTERN NAME -- curl arguments...: the HTTP status and a body matching PATTERN
http() {
    want=$1 pat=$2 name=$3
    shift 4
    got=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 60 "$@")
    if [ "$got" = "$want" ] && grep -q -- "$pat" "$T/body"; then ok "$name"; else
        bad "$name (HTTP $got, wanted $want and /$pat/)"
        head -c 300 "$T/body" | sed 's/^/     | /'
        echo
    fi
}

"$EBM" train --digits 3 --limit 64 --batch 8 --iters 3 --langevin-steps 4 --buffer 0 --sample-every 2 \
    --sample-steps 5 --metrics-every 1 --threads 2 --data "$DATA/mnist" --out "$T/tiny.safetensors" > "$T/train.log" 2>&1 ||
    { echo "FAIL: could not train the tiny model:"; tail -n 5 "$T/train.log"; exit 1; }
cp "$T/tiny.safetensors" "$T/other.safetensors"

# ---- flags ----
expect 2 "--model FILE is required" "no --model" -- "$EBM" serve
expect 2 "--device expects cpu, cuda" "bad --device" -- "$EBM" serve --model "$T/tiny.safetensors" --device tpu
expect 2 "--port expects" "port out of range" -- "$EBM" serve --model "$T/tiny.safetensors" --port 70000
expect 2 "unknown flag --prot" "unknown flag" -- "$EBM" serve --model "$T/tiny.safetensors" --prot 1
expect 1 "cannot open" "missing model file" -- "$EBM" serve --model "$T/nope.safetensors"
expect 2 "--host no.such.host.invalid" "unresolvable --host" -- \
    "$EBM" serve --model "$T/tiny.safetensors" --host no.such.host.invalid --port 0
expect 0 "repeat to serve several" "--help" -- "$EBM" serve --help

# ---- a running server: two models, the training log ----
"$EBM" serve --model "$T/tiny.safetensors" -m "$T/other.safetensors" --port 0 --metrics "$T/tiny-metrics.jsonl" \
    --threads 2 > "$T/serve.out" 2> "$T/serve.err" &
pid=$!
U=
for _ in $(seq 100); do
    U=$(sed -n 's|^ebm serve: \(http://[^ ]*\)/  .*|\1|p' "$T/serve.out")
    [ -n "$U" ] && break
    sleep 0.1
done
[ -n "$U" ] && ok "server started: $U" || { bad "server started"; cat "$T/serve.out" "$T/serve.err"; exit 1; }
port=${U##*:}
expect 1 "Address already in use" "a second server on the same port" -- "$EBM" serve --model "$T/tiny.safetensors" --port "$port"

zeros=$(awk 'BEGIN { for (i = 0; i < 784; i++) printf "%s-1", i ? "," : "" }')
half=$(awk 'BEGIN { for (i = 0; i < 784; i++) printf "%s%d", i ? "," : "", i < 392 }')

http 200 '"name":"tiny".*"name":"other"' "GET /api/models lists both models" -- "$U/api/models"
http 200 '<canvas id="draw-canvas"' "GET / is the page" -- "$U/"
http 200 '"energies":\[' "POST /api/sample (JSON)" -- --json '{"n": 4, "steps": 10, "seed": 1}' "$U/api/sample"
http 200 'PNG' "POST /api/sample (format png)" -- --json '{"n": 4, "steps": 10, "format": "png"}' "$U/api/sample"
http 200 '"model":"other"' "POST /api/sample on the second model" -- --json '{"model": "other", "n": 1, "steps": 1}' "$U/api/sample"
http 200 'event: done' "GET /api/chain streams to the end" -- -N "$U/api/chain?n=2&steps=20&every=5"
frames=$(grep -c '^event: frame' "$T/body")
[ "$frames" -eq 5 ] && ok "the chain stream has 5 frames (steps 0, 5, .., 20)" || bad "chain frames: $frames, wanted 5"
http 200 '"energy":-\{0,1\}[0-9]' "POST /api/energy" -- --json "{\"pixels\": [$zeros]}" "$U/api/energy"
http 200 '"mode":"inpaint"' "POST /api/complete (inpaint)" -- \
    --json "{\"pixels\": [$zeros], \"mask\": [$half], \"n\": 2, \"steps\": 5}" "$U/api/complete"
http 200 '"rows":3,.*"samples":"data:image/png' "GET /api/metrics has the log and the sample grid" -- "$U/api/metrics"

# ---- bad requests ----
http 400 'malformed JSON' "malformed JSON" -- --json '{"n": 4' "$U/api/sample"
http 400 'malformed JSON' "NaN in JSON" -- --json '{"eps": NaN}' "$U/api/sample"
http 400 'eps must be a finite number' "NaN in a query" -- "$U/api/chain?eps=nan"
http 400 'n must be an integer from 1 to 64' "n too large" -- --json '{"n": 1000}' "$U/api/sample"
http 400 'steps must be an integer from 0 to 1000' "steps too large" -- --json '{"steps": 100000}' "$U/api/sample"
http 400 "unknown model 'nope'; this server has: tiny, other" "unknown model" -- --json '{"model": "nope"}' "$U/api/sample"
http 400 'exactly 784 values' "wrong image size" -- --json '{"pixels": [0, 0]}' "$U/api/energy"
http 400 'pixels is required' "missing pixels" -- --json '{}' "$U/api/energy"
http 415 'Content-Type: application/json' "form-encoded body" -- -d 'n=4' "$U/api/sample"
head -c 10485760 /dev/zero | tr '\0' ' ' > "$T/big.json"
http 413 'over the limit of 65536 bytes' "a 10 MB body" -- --json "@$T/big.json" "$U/api/sample"
http 404 'no such page or endpoint' "unknown route" -- "$U/api/nothing"
http 404 'no such page or endpoint' "../ path" -- --path-as-is "$U/../../etc/passwd"
http 404 'no such page or endpoint' "encoded ../ path" -- --path-as-is "$U/%2e%2e/%2e%2e/etc/passwd"
http 405 'takes POST' "GET on a POST endpoint" -- "$U/api/sample"
http 200 '"models"' "the server still answers after all that" -- "$U/api/models"

# ---- stop ----
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then bad "stops within 5 s of SIGTERM"; else
    wait "$pid"
    rc=$?
    pid=
    [ "$rc" -eq 0 ] && grep -q "stopping" "$T/serve.out" && ok "SIGTERM stops it cleanly (exit 0)" ||
        bad "SIGTERM: exit $rc"
fi
grep -q '^POST /api/sample 200' "$T/serve.err" && ok "access log on stderr" || bad "access log on stderr"

echo "serve_api: $fails failure(s)"
[ "$fails" -eq 0 ]
