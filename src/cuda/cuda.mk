# cuda.mk - the CUDA backend's build (make cuda / make test-cuda call this with NVCC set).
#   make cuda          build/cuda/ebm (the CLI with --device cuda), the CUDA tests and bench
#   make test-cuda     (cuda-test here) the kernels' CPU emulation test, the GPU parity test, and
#                      compute-sanitizer (memcheck, racecheck, synccheck) on a quick parity run
#   make -f src/cuda/cuda.mk cuda-tests    tests and bench only: needs OpenBLAS and zlib but
#                      none of the CLI's image/web libraries (what the GPU machine builds)
# CUDA_ARCH=sm_90 by default (H100/H200); e.g. CUDA_ARCH=sm_80 for an A100.
include Makefile
.DEFAULT_GOAL := cuda-all

CUDA_ARCH  ?= sm_90
CUDA_HOME  ?= $(patsubst %/bin/,%,$(dir $(NVCC)))
CXX_HOST   ?= g++
NVCCFLAGS  := -std=c++17 -O3 -lineinfo -split-compile=0 -gencode arch=compute_$(CUDA_ARCH:sm_%=%),code=[$(CUDA_ARCH),compute_$(CUDA_ARCH:sm_%=%)] \
              -Iinclude -Isrc -ccbin $(CXX_HOST) -Xcompiler -Wall,-Wextra,-Wno-unknown-pragmas,-Wno-unused-parameter \
              $(EXTRA_CFLAGS)
CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart -lstdc++
CB         := $(BUILD)/cuda

# NCCL (multi-GPU training, backend_multi.cu): nccl.h and libnccl.so.2 under NCCL_HOME, the
# CUDA toolkit or /usr; without it --gpus N > 1 says the build lacks NCCL.
NCCL_HOME  ?=
NCCL_INC   := $(firstword $(foreach d,$(NCCL_HOME) $(CUDA_HOME) /usr,$(if $(wildcard $(d)/include/nccl.h),$(d)/include)))
NCCL_LIB   := $(firstword $(foreach d,$(NCCL_HOME)/lib $(CUDA_HOME)/lib64 /usr/lib/x86_64-linux-gnu,$(if $(wildcard $(d)/libnccl.so.2),$(d))))
ifneq ($(and $(NCCL_INC),$(NCCL_LIB)),)
NVCCFLAGS  += -DEBM_HAVE_NCCL -I$(NCCL_INC)
CUDA_LIBS  += -L$(NCCL_LIB) -Wl,-rpath,$(NCCL_LIB) -l:libnccl.so.2
$(info cuda.mk: NCCL found: $(NCCL_INC)/nccl.h, $(NCCL_LIB)/libnccl.so.2)
else
$(info cuda.mk: NCCL not found (set NCCL_HOME): --gpus N > 1 unavailable)
endif

CU_SRC     := $(wildcard src/cuda/*.cu)
CU_OBJ     := $(CU_SRC:%.cu=$(BUILD)/%.o) $(BUILD)/src/cuda/wlayout.o
CU_HDR     := $(wildcard src/cuda/*.h src/cuda/*.cuh) src/core/boxmuller.h
# what the CUDA tests link from the CPU side: the reference network, sampler and backend
MIN_OBJ    := $(addprefix $(BUILD)/src/,core/common.o core/net.o core/layers.o core/rng.o sample/langevin.o \
                train/backend_cpu.o train/adam.o data/dataset.o data/idx.o io/atomic.o)
MIN_LIBS   := $(EXTRA_LDLIBS) $(shell pkg-config --libs openblas zlib 2>/dev/null || echo -lopenblas -lz) \
              -lm -lpthread -fopenmp
CUDA_LIB_OBJ := $(filter-out $(BUILD)/src/train/backend_nocuda.o,$(LIB_OBJ))

.PHONY: cuda-all cuda-tests cuda-test
cuda-all: $(CB)/ebm cuda-tests
	@echo "built $(CB)/ebm with the CUDA backend ($(CUDA_ARCH))"
cuda-tests: $(CB)/test_fused_emu $(CB)/test_cuda_parity $(CB)/test_multi_gpu $(CB)/cuda_bench

$(BUILD)/src/cuda/%.o: src/cuda/%.cu $(CU_HDR)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CB)/libebm_cuda.a: $(CUDA_LIB_OBJ) $(CU_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(CB)/ebm: $(CLI_OBJ) $(CB)/libebm_cuda.a
	$(CXX_HOST) $(filter-out -std=c11,$(CFLAGS)) -o $@ $^ $(LDLIBS) $(CUDA_LIBS)

$(CB)/obj/%.o: tests/cuda/%.cu $(CU_HDR) $(wildcard tests/cuda/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(CB)/test_fused_emu: $(CB)/obj/test_fused_emu.o $(MIN_OBJ) $(BUILD)/src/cuda/wlayout.o
	$(CXX_HOST) -o $@ $^ $(MIN_LIBS) $(CUDA_LIBS)

$(CB)/%: $(CB)/obj/%.o $(CU_OBJ) $(MIN_OBJ)
	$(CXX_HOST) -o $@ $^ $(MIN_LIBS) $(CUDA_LIBS)

SANITIZER ?= $(CUDA_HOME)/bin/compute-sanitizer
cuda-test: cuda-tests
	$(CB)/test_fused_emu
	$(CB)/test_cuda_parity
	$(CB)/test_multi_gpu
	EBM_CUDA_QUICK=1 $(SANITIZER) --tool memcheck --leak-check full --error-exitcode 3 $(CB)/test_cuda_parity
	EBM_CUDA_QUICK=1 $(SANITIZER) --tool racecheck --error-exitcode 3 $(CB)/test_cuda_parity
	EBM_CUDA_QUICK=1 $(SANITIZER) --tool synccheck --error-exitcode 3 $(CB)/test_cuda_parity
.SECONDARY:
