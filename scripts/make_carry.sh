#!/bin/sh
# make_carry.sh - on the development machine (nvcc, no GPU): builds the CUDA binaries for a GPU
# machine that has no network and no Debian libraries, and packs what they need into .carry/
# (git-ignored) for the device tool's `carry: [".carry"]`:
#   .carry/bin.tar.xz   build/cuda/{ebm,test_cuda_parity,test_multi_gpu,cuda_bench,test_fused_emu}
#                       and lib/ (the shared libraries `ldd` names, less glibc, libstdc++,
#                       libgcc, CUDA's runtime and NCCL, which the GPU machine has)
#   .carry/mnist, .carry/fashion (test images only), .carry/torch_peer.py
# There, `. scripts/device_env.sh` unpacks it and sets the library path; then e.g.
#   STAGES="test bench peer san" bench/cuda_bench.sh      or      $EBM train --device cuda ...
# ARCH=-march=x86-64-v3: the GPU machine's CPU need not have this one's AVX-512.
set -eu
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
B=${BUILD_DEV:-build-dev}
C=${CARRY:-.carry}
make -f src/cuda/cuda.mk NVCC="$NVCC" BUILD="$B" ARCH=-march=x86-64-v3 -j"$(nproc)" "$B/cuda/ebm" cuda-tests
[ -f data/mnist/train-images-idx3-ubyte.gz ] || scripts/fetch_data.sh data
rm -rf "$C" && mkdir -p "$C/pack/build/cuda" "$C/pack/lib" "$C/mnist" "$C/fashion"
for b in ebm test_cuda_parity test_multi_gpu cuda_bench test_fused_emu; do cp "$B/cuda/$b" "$C/pack/build/cuda/"; done
strip "$C"/pack/build/cuda/*
ldd "$B/cuda/ebm" "$B/cuda/cuda_bench" | awk '/=> \//{print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+|libcudart|libnccl)\.so' |
    while read -r l; do cp -L "$l" "$C/pack/lib/"; done
(cd "$C/pack" && XZ_OPT="-T0 -9" tar cJf ../bin.tar.xz build lib) # -9: the device tool carries 64 MiB in all
rm -rf "$C/pack"
cp data/mnist/*.gz "$C/mnist/"
cp data/fashion/t10k-* "$C/fashion/"
[ -f ../shared/bench/torch_peer.py ] && cp ../shared/bench/torch_peer.py "$C/"
du -sh "$C"
