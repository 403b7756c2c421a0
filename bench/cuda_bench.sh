#!/usr/bin/env bash
# bench/cuda_bench.sh - the CUDA backend on a GPU machine, in one command:
#   build (make -f src/cuda/cuda.mk cuda-tests), parity tests, our benchmark, the PyTorch
#   peer (torch_peer.py bench --graph, train --seconds N) on the same GPU, a table of
#   ratios, then compute-sanitizer on a quick parity run.  Logs go to $OUT (default
#   out/cuda-bench); keep them in docs/bench/.
#
#   bench/cuda_bench.sh                 everything
#   STAGES="build test bench" bench/cuda_bench.sh     a subset (build test bench prof peer san)
#   STAGES=carry bench/cuda_bench.sh    on the development machine: fill .carry/ (below)
#
# Inputs: the peer script and gzipped MNIST, by default from .carry/ (the GPU machine has no
# network and no ../shared): .carry/torch_peer.py, .carry/mnist/*.gz.  Where the machine lacks
# OpenBLAS or zlib headers, the Debian packages in .carry/debs/ are unpacked locally.  .carry/
# is git-ignored; name it in the device tool's `carry` list.
set -u -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/cuda-bench}
BUILD=${BUILD:-build}
export BUILD
CARRY=${CARRY:-.carry}
STAGES=${STAGES:-"build test bench prof peer san"}
PEER_SECONDS=${PEER_SECONDS:-60}
BENCH_SECONDS=${BENCH_SECONDS:-20}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
JOBS=$(nproc 2>/dev/null || echo 4)
has() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }
log() { echo "== $*" | tee -a "$OUT/summary.log"; }

if [ "$STAGES" = carry ]; then
    mkdir -p "$CARRY/mnist" "$CARRY/debs"
    cp data/mnist/*.gz "$CARRY/mnist/" && cp ../shared/bench/torch_peer.py "$CARRY/" || exit 1
    (cd "$CARRY/debs" && apt-get download libopenblas0-pthread libopenblas-pthread-dev libgfortran5 libquadmath0 \
        zlib1g zlib1g-dev) || exit 1
    du -sh "$CARRY"
    exit 0
fi
mkdir -p "$OUT"

# ---- libraries: system OpenBLAS/zlib, else the carried .debs ------------------------------
if has build && { [ -n "${FORCE_DEBS:-}" ] || ! printf '#include <cblas.h>\n#include <zlib.h>\n' | cc -E -x c - $(pkg-config --cflags openblas zlib 2>/dev/null) >/dev/null 2>&1; }; then
    ROOT=$PWD/$CARRY/root
    mkdir -p "$ROOT"
    for f in "$CARRY"/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
    L=$ROOT/usr/lib/x86_64-linux-gnu
    ln -sf "$ROOT/lib/x86_64-linux-gnu/libz.so.1" "$L/libz.so" 2>/dev/null
    [ -e "$ROOT/lib/x86_64-linux-gnu/libz.so.1" ] || ln -sf "$(ldconfig -p | awk '/libz\.so\.1 .*x86-64/{print $NF; exit}')" "$L/libz.so"
    export EXTRA_CFLAGS="-I$ROOT/usr/include -I$ROOT/usr/include/x86_64-linux-gnu/openblas-pthread"
    export EXTRA_LDLIBS="-L$L/openblas-pthread -L$L -L$ROOT/lib/x86_64-linux-gnu"
    export LD_LIBRARY_PATH="$L/openblas-pthread:$L:$ROOT/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
    log "using OpenBLAS/zlib unpacked from $CARRY/debs"
fi
export NCCL_NVLS_ENABLE=0   # never NVLink multicast (docs/SCALING.md)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$JOBS}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv \
    >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt" | tee -a "$OUT/summary.log"

if has build; then
    log "build"
    t0=$(date +%s)
    make -f src/cuda/cuda.mk NVCC="$NVCC" -j"$JOBS" cuda-tests >"$OUT/build.log" 2>&1 || {
        tail -40 "$OUT/build.log"
        log "BUILD FAILED"
        exit 1
    }
    log "built in $(($(date +%s) - t0)) s"
fi

if has test; then
    log "test_fused_emu (the kernels' code on the CPU)"
    $BUILD/cuda/test_fused_emu >"$OUT/test_emu.log" 2>&1
    echo "rc=$?" >>"$OUT/test_emu.log"
    tail -2 "$OUT/test_emu.log" | tee -a "$OUT/summary.log"
    log "test_cuda_parity"
    $BUILD/cuda/test_cuda_parity >"$OUT/test_parity.log" 2>&1
    echo "rc=$?" >>"$OUT/test_parity.log"
    grep -E "FAIL|passed|FAILED|rc=" "$OUT/test_parity.log" | tail -15 | tee -a "$OUT/summary.log"
    log "test_multi_gpu"
    $BUILD/cuda/test_multi_gpu >"$OUT/test_multi.log" 2>&1
    echo "rc=$?" >>"$OUT/test_multi.log"
    grep -E "FAIL|ok$|passed|FAILED|rc=|only one" "$OUT/test_multi.log" | tail -20 | tee -a "$OUT/summary.log"
fi

if has bench; then
    log "cuda_bench"
    $BUILD/cuda/cuda_bench --data "$CARRY/mnist" --seconds "$BENCH_SECONDS" 2>&1 | tee "$OUT/cuda_bench.log" | grep -v "^  it "
    log "multi-GPU training throughput"
    $BUILD/cuda/test_multi_gpu --bench 2>&1 | tee "$OUT/multi_bench.log"
fi

if has prof && command -v ncu >/dev/null; then
    log "ncu on the chain kernel"
    # the automatic picks (chain_kernels.cu, cu_chain_pick): fp32 shape 9 up to one chain per SM, 10 beyond (TF32: 14, 13)
    for cfg in "9 128 5" "10 8192 2"; do
        set -- $cfg
        # WarpStateStats and SourceCounters: stall reasons and the excess shared-memory
        # wavefronts (bank conflicts) that run 6 found (docs/PERF_CUDA.md)
        timeout 150 ncu --section SpeedOfLight --section Occupancy --section ComputeWorkloadAnalysis \
            --section MemoryWorkloadAnalysis --section LaunchStats --section WarpStateStats --section SchedulerStats \
            --section InstructionStats --section SourceCounters -k regex:k_chains --launch-skip 1 --launch-count 1 \
            $BUILD/cuda/cuda_bench --profile "$1" "$2" "$3" >"$OUT/ncu_shape$1_b$2.log" 2>&1
        grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|L1/TEX Hit|Achieved Occupancy|Registers Per|Executed Ipc A|FMA|Issue Slots Busy|L2 Hit|excessive" \
            "$OUT/ncu_shape$1_b$2.log" | head -20 | tee -a "$OUT/summary.log"
        # block 0's cycles per phase (barrier to barrier), 60 steps
        $BUILD/cuda/cuda_bench --phases "$1" "$2" 60 >"$OUT/phases_shape$1_b$2.log" 2>&1
    done
fi

if has peer; then
    PEER=$CARRY/torch_peer.py
    [ -f "$PEER" ] || PEER=../shared/bench/torch_peer.py
    log "peer bench --graph"
    PYTHONUNBUFFERED=1 python3 "$PEER" bench --graph --batches 128 1024 8192 --steps 60 2>&1 | tee "$OUT/peer_bench.log"
    log "peer train --seconds $PEER_SECONDS"
    PYTHONUNBUFFERED=1 python3 "$PEER" train --data "$CARRY/mnist" --seconds "$PEER_SECONDS" --out "$OUT/peer.idx" \
        2>&1 | tee "$OUT/peer_train.log" | grep -v "^it "
    rm -f "$OUT/peer.idx" "$OUT/peer-buffer.idx"
fi

# ---- the table of ratios -----------------------------------------------------------------
if [ -f "$OUT/cuda_bench.log" ] && [ -f "$OUT/peer_bench.log" ]; then
    python3 - "$OUT" <<'EOF' | tee "$OUT/ratios.md" | tee -a "$OUT/summary.log"
import re, sys, os
out = sys.argv[1]
kv = dict(l.strip().split("=", 1) for l in open(os.path.join(out, "cuda_bench.log")) if re.match(r"^\w+=", l))
peer = {}
for l in open(os.path.join(out, "peer_bench.log")):
    m = re.match(r"(eager|cudagraph)\s+batch\s+(\d+).*?([\d.]+) image-steps/s", l)
    if m: peer[(m.group(1), int(m.group(2)))] = float(m.group(3))
pt = None
if os.path.exists(os.path.join(out, "peer_train.log")):
    for l in open(os.path.join(out, "peer_train.log")):
        m = re.search(r"\(([\d.]+) it/s\)", l)
        if m: pt = float(m.group(1))
print(f"device: {kv.get('device')}  (fp32 FMA ceiling {kv.get('fma_tflops')} TFLOP/s measured)")
print("| figure | ebm (CUDA) | peer eager | peer CUDA graph | ratio vs best peer |")
print("| --- | --- | --- | --- | --- |")
for b in (128, 1024, 8192):
    ours = float(kv.get(f"langevin_{b}", "nan"))
    e, g = peer.get(("eager", b)), peer.get(("cudagraph", b))
    best = max([v for v in (e, g) if v] or [float("nan")])
    f = lambda v: f"{v/1e6:.2f} M" if v else "-"
    print(f"| Langevin image-steps/s, batch {b}, 60 steps | {f(ours)} | {f(e)} | {f(g)} | {ours/best:.1f}x |")
    t = float(kv.get(f"langevin_tf32_{b}", "nan"))
    if t == t: print(f"| ... with --precision tf32 | {f(t)} | | | {t/best:.1f}x |")
ti = float(kv.get("train_its", "nan"))
print(f"| training it/s, batch 128, 60 steps | {ti:.1f} | {pt if pt else '-'} | - | {ti/pt if pt else float('nan'):.1f}x |")
EOF
fi

if has san; then
    SAN=$(command -v compute-sanitizer || echo "$(dirname "$NVCC")/compute-sanitizer")
    for tool in ${SAN_TOOLS:-memcheck racecheck synccheck}; do
        log "compute-sanitizer $tool (quick parity run)"
        extra=""
        [ $tool = memcheck ] && extra="--leak-check full"
        EBM_CUDA_QUICK=1 timeout "${SAN_TIMEOUT:-240}" "$SAN" --tool $tool $extra --error-exitcode 3 $BUILD/cuda/test_cuda_parity \
            >"$OUT/sanitizer_$tool.log" 2>&1
        echo "rc=$?" >>"$OUT/sanitizer_$tool.log"
        grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|FAILED|rc=" "$OUT/sanitizer_$tool.log" | tail -4 | tee -a "$OUT/summary.log"
    done
fi
log "done; logs in $OUT"
