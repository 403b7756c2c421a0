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
# the flags, objects and libraries of cuda.mk's cuda_bench link, less chain_kernels.o (set -f:
# the flags hold brackets)
set -f
# shellcheck disable=SC2016 # $(...) here are make's variables
vars=$(make -s -f src/cuda/cuda.mk NVCC="$NVCC" BUILD="$B" --eval 'variant-vars: ; @echo "NVCCFLAGS=$(NVCCFLAGS)"; \
    echo "OBJS=$(CB)/obj/cuda_bench.o $(filter-out %/chain_kernels.o,$(CU_OBJ)) $(MIN_OBJ)"; echo "LIBS=$(MIN_LIBS) $(CUDA_LIBS)"' \
    variant-vars)
var() { printf '%s\n' "$vars" | sed -n "s/^$1=//p"; }
# shellcheck disable=SC2046 # word splitting of the flag lists is meant
"$NVCC" -I"$SRC" -I"$SRC/cuda" $(var NVCCFLAGS) "$@" -c "$V/ck_$N.cu" -o "$V/ck_$N.o"
# shellcheck disable=SC2046
g++ -o "$V/cb_$N" "$V/ck_$N.o" $(var OBJS) $(var LIBS)
strip "$V/cb_$N"
echo "built $V/cb_$N"
