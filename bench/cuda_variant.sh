#!/usr/bin/env bash
# bench/cuda_variant.sh - on the development machine: a cuda_bench binary with a candidate
# kernel, to time side by side with others in one device call (docs/PERF_CUDA.md runs 9-10).
#
#   bench/cuda_variant.sh NAME "IMG, NT" [SRC [NVCC flags...]]
#
# builds out/variants/cb_NAME: chain_kernels.cu with only shapes 14 and 13, shape 13 being
# <IMG, NT, 1 or 10 outputs, ULA, POL_TC | POL_TC0 ...>, compiled from SRC (default src/; e.g.
# a patched copy made by bench/f16_proto.py) with the extra flags, linked against the objects
# of build-dev/ (scripts/make_carry.sh builds them).  Pack with
#   (cd out/variants && XZ_OPT=-9e tar cJf ../../.carry/var.tar.xz cb_*)
# (one thread: xz then shares the binaries' common bytes, about 1 MB per extra binary) and on
# the GPU machine: tar xJf .carry/var.tar.xz -C /tmp/v; /tmp/v/cb_NAME --profile 13 8192 60
set -euo pipefail
cd "$(dirname "$0")/.."
N=$1 S=$2 SRC=${3:-src}
shift $(($# < 3 ? $# : 3))
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
B=${BUILD_DEV:-build-dev} V=out/variants
mkdir -p "$V"
python3 - "$SRC/cuda/chain_kernels.cu" "$V/ck_$N.cu" "$S" <<'PY'
import sys
src, out, s13 = sys.argv[1:]
s = open(src).read()
a = s.index('template <int NOUT>\nstatic ebm_status chains_nout')
b = s.index('ebm_status cu_chains(')
pol = 'POL_PAR | POL_REUSE | POL_PAD | POL_TC | POL_TC0'
body = f'''template <int NOUT>
static ebm_status chains_nout(const LvArgs *a, int shape, cudaStream_t st) {{
    /* variant build (bench/cuda_variant.sh): shapes 14 and 13 only */
    if (shape == 14) return launch_chains<1, 256, NOUT, false, 1, {pol}>(a, st);
    return launch_chains<{s13}, NOUT, false, 1, {pol}>(a, st);
}}

'''
open(out, 'w').write(s[:a] + body + s[b:])
PY
"$NVCC" -std=c++17 -O3 -lineinfo -gencode 'arch=compute_90,code=[sm_90,compute_90]' -Iinclude -I"$SRC" -I"$SRC/cuda" \
    "$@" -c "$V/ck_$N.cu" -o "$V/ck_$N.o"
objs=$(for o in cuda/obj/cuda_bench src/cuda/backend_cuda src/cuda/backend_multi src/cuda/train_kernels src/cuda/wlayout \
    src/core/common src/core/net src/core/layers src/core/rng src/sample/langevin src/train/backend_cpu src/train/adam \
    src/data/dataset src/data/idx src/io/atomic; do echo "$B/$o.o"; done)
CUDA_HOME=$(dirname "$(dirname "$NVCC")")
# shellcheck disable=SC2086
g++ -o "$V/cb_$N" $objs "$V/ck_$N.o" $(pkg-config --libs openblas zlib 2>/dev/null || echo -lopenblas -lz) -lm -lpthread \
    -fopenmp -L"$CUDA_HOME/lib64" -Wl,-rpath,"$CUDA_HOME/lib64" -lcudart -lstdc++ -l:libnccl.so.2
strip "$V/cb_$N"
echo "built $V/cb_$N"
