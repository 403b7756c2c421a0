# device_env.sh - sourced on a GPU machine that has no network and no Debian libraries:
# unpacks the binaries built on the development machine (.carry/bin.tar.xz: .carry/build/cuda/*
# and the shared libraries they need in .carry/lib), links the carried MNIST and
# Fashion-MNIST into data/, and points LD_LIBRARY_PATH at those libraries and at an NCCL
# (the CUDA toolkit's, else the one PyTorch's wheels bring).  .carry/ (git-ignored) is made
# on the development machine by scripts/make_carry.sh.
C=${CARRY:-.carry}
[ -f "$C/bin.tar.xz" ] && tar xJf "$C/bin.tar.xz" -C "$C"
mkdir -p data
[ -d "$C/mnist" ] && [ ! -e data/mnist ] && ln -sfn "../$C/mnist" data/mnist
[ -d "$C/fashion" ] && [ ! -e data/fashion ] && ln -sfn "../$C/fashion" data/fashion
PY_NCCL=$(python3 -c 'import nvidia.nccl as m; print(list(m.__path__)[0])' 2>/dev/null)
NCCL_DIR=$(dirname "$(ls /usr/local/cuda/lib64/libnccl.so.2 /usr/lib/x86_64-linux-gnu/libnccl.so.2 \
    "$PY_NCCL/lib/libnccl.so.2" 2>/dev/null | head -1)" 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/$C/lib${NCCL_DIR:+:$NCCL_DIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NCCL_NVLS_ENABLE=0 BUILD=$C/build EBM=$C/build/cuda/ebm
echo "device_env: binaries in $BUILD/cuda, NCCL from ${NCCL_DIR:-nowhere}"
