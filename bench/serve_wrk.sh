#!/bin/sh
# serve_wrk.sh - load check of `ebm serve` on loopback: wrk POSTs /api/sample for SECS
# seconds (default 30) over CONNS connections (default 8) and reports requests/s, latency
# percentiles, errors (goal: none) and the server's RSS before and after (goal: flat).
#   bench/serve_wrk.sh [MODEL.safetensors]     (default: a tiny model trained here)
# Needs wrk (Debian package `wrk`).  Traffic goes to 127.0.0.1 only; wrk stops by itself.
set -eu
EBM=${EBM:-build/ebm}
SECS=${SECS:-30}
CONNS=${CONNS:-8}
BODY=${BODY:-'{"n": 4, "steps": 16, "seed": 1}'}
command -v wrk > /dev/null || { echo "serve_wrk: wrk is not installed (apt-get install wrk)"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/ebm-wrk-XXXXXX")
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$T"' EXIT
model=${1:-}
if [ -z "$model" ]; then
    model=$T/tiny.safetensors
    "$EBM" train --digits 3 --limit 64 --batch 8 --iters 2 --langevin-steps 2 --buffer 0 --sample-every 0 \
        --metrics none --out "$model" > "$T/train.log" 2>&1 || { cat "$T/train.log"; exit 1; }
fi
"$EBM" serve --model "$model" --port 0 --quiet > "$T/serve.out" 2>&1 &
pid=$!
url=
for _ in $(seq 100); do
    url=$(sed -n 's|^ebm serve: \(http://[^ ]*\)/  .*|\1|p' "$T/serve.out")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "serve_wrk: the server did not start"; cat "$T/serve.out"; exit 1; }
rss() { sed -n "s/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$pid/status"; }
cat > "$T/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
LUA
curl -s -o /dev/null --json "$BODY" "$url/api/sample" # warm-up: first allocations, thread pools
rss0=$(rss)
wrk -t 2 -c "$CONNS" -d "${SECS}s" --timeout 10s --latency -s "$T/post.lua" "$url/api/sample" > "$T/wrk.out"
rss1=$(rss)
cat "$T/wrk.out"
rps=$(sed -n 's/^Requests\/sec: *//p' "$T/wrk.out")
lat=$(awk '$1 ~ /^(50|90|99)%$/ { printf "%s p%s %s", sep, substr($1, 1, length($1) - 1), $2; sep = "," }' "$T/wrk.out")
errs=$(sed -n 's/^ *Socket errors: *//p; s/^ *Non-2xx or 3xx responses: *//p' "$T/wrk.out")
echo "serve_wrk: POST /api/sample $BODY, $CONNS connections, ${SECS}s: $rps requests/s,$lat;" \
     "errors: ${errs:-none}; server RSS $rss0 kB before, $rss1 kB after"
