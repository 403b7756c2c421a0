#!/bin/sh
# cpu_langevin.sh - CPU Langevin throughput of ebm beside PyTorch, in the same run.
#
# Runs bench/langevin_cpu (ebm) and bench/torch_cpu_langevin.py (the peer's network in
# PyTorch) ROUNDS times, alternating, and prints one table of medians over the rounds:
# image-steps/s of one Langevin step (energy + input gradient + update), the ratio
# ebm/PyTorch, and the floor: the step's FLOPs at the sgemm rate OpenBLAS reaches here
# with the same number of threads.  A busy machine slows both alike; rerun to see spread.
#
# Environment: BUILD (build), PYTHON (/usr/bin/python3), ROUNDS (3), SECONDS_PER (2: seconds
# per configuration and round), BATCHES (128,1024), THREADS (1,2).
set -eu
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
ROUNDS=${ROUNDS:-3}
SECONDS_PER=${SECONDS_PER:-2}
BATCHES=${BATCHES:-128,1024}
THREADS=${THREADS:-1,2}
BIN=$BUILD/bench/langevin_cpu

cd "$(dirname "$0")/.."
if [ ! -x "$BIN" ]; then
    make --no-print-directory "$BIN" || { echo "cpu_langevin.sh: cannot build $BIN (see make's error above)" >&2; exit 1; }
fi
have_torch=1
if ! "$PYTHON" -c 'import torch' 2>/dev/null; then
    echo "cpu_langevin.sh: no PyTorch for $PYTHON (Debian: apt-get install python3-torch); ebm figures only" >&2
    have_torch=0
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds x ${SECONDS_PER}s per configuration"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    "$BIN" --batches "$BATCHES" --threads "$THREADS" --seconds "$SECONDS_PER" >> "$log"
    if [ "$have_torch" = 1 ]; then
        "$PYTHON" bench/torch_cpu_langevin.py --batches $(echo "$BATCHES" | tr , ' ') \
            --threads $(echo "$THREADS" | tr , ' ') --seconds "$SECONDS_PER" >> "$log"
    fi
    r=$((r + 1))
done

# Medians over rounds per (who, batch, threads); then one row per configuration.
awk '
function med(key,   n, i, j, t, a) {
    n = split(vals[key], a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n ? (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) : 0
}
function add(key, v) { vals[key] = vals[key] " " v; seen[key] = 1 }
/^#/ { if ($0 ~ /MFLOP/ && !said++) print; next }
$1 == "floor" { add("floor " $3, $7) }
$1 == "ebm"   { add("ebm " $3 " " $5, $15); add("ebmE " $3 " " $5, $3 / $11 * 1000); cfg[$3 " " $5] = 1
                add("ebmB " $3 " " $5, $3 / $17 * 1000) }
$1 == "torch" { add("torch " $3 " " $5, $11); add("torchB " $3 " " $5, $3 / $13 * 1000) }
END {
    printf "| batch | threads | ebm image-steps/s | ebm energy+grad only | PyTorch image-steps/s | ebm / PyTorch | floor image-steps/s | floor / ebm |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    n = 0
    for (c in cfg) keys[++n] = c
    for (i = 2; i <= n; i++) for (j = i; j > 1; j--) {
        split(keys[j - 1], p, " "); split(keys[j], q, " ")
        if (p[1] + 0 > q[1] + 0 || (p[1] == q[1] && p[2] + 0 > q[2] + 0)) { t = keys[j]; keys[j] = keys[j - 1]; keys[j - 1] = t }
    }
    for (i = 1; i <= n; i++) {
        split(keys[i], p, " ")
        e = med("ebm " keys[i]); ee = med("ebmE " keys[i]); f = med("floor " p[2])
        tt = ("torch " keys[i]) in seen ? med("torch " keys[i]) : 0
        printf "| %s | %s | %.0f | %.0f | %s | %s | %.0f | %.2fx |\n", p[1], p[2], e, ee,
               tt ? sprintf("%.0f", tt) : "-", tt ? sprintf("%.2fx", e / tt) : "-", f, f / e
    }
    # The fastest step of each run (median over rounds): what an idle machine would give.
    printf "\nFastest step (image-steps/s; a busy machine hurts 2-thread runs most):\n"
    printf "| batch | threads | ebm | PyTorch | ebm / PyTorch | floor / ebm |\n|---|---|---|---|---|---|\n"
    for (i = 1; i <= n; i++) {
        split(keys[i], p, " ")
        e = med("ebmB " keys[i]); f = med("floor " p[2])
        tt = ("torchB " keys[i]) in seen ? med("torchB " keys[i]) : 0
        printf "| %s | %s | %.0f | %s | %s | %.2fx |\n", p[1], p[2], e, tt ? sprintf("%.0f", tt) : "-",
               tt ? sprintf("%.2fx", e / tt) : "-", f / e
    }
}' "$log"
