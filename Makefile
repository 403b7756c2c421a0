# ebm - energy-based models of handwritten digits, in C.
#   make demo    set-up + build + fetch MNIST + sample digits from the bundled model
#   make test    set-up + build + every test (unit, CLI, parity)
#   make check   test + AddressSanitizer/UBSan build of the tests + short libFuzzer runs (CI)
#   make bench   CPU Langevin throughput beside PyTorch (needs /usr/bin/python3 with torch)
#   make cuda    the CUDA backend (only when nvcc is found)
CC      ?= cc
ARCH    ?= -march=native
OPT     ?= -O3
PKGS    := openblas zlib libpng libcjson cairo
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  := $(EXTRA_CFLAGS) -std=c11 $(OPT) $(ARCH) $(WARN) -fopenmp -D_GNU_SOURCE -Iinclude -Isrc \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(EXTRA_LDLIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lgif -lmicrohttpd -lm -lpthread -fopenmp
BUILD   ?= build

NVCC    := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)

LIB_SRC  := $(filter-out src/cuda/%,$(wildcard src/*/*.c))
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)

.PHONY: all setup setup-test data demo test check test-asan fuzz bench cuda test-cuda clean
all: $(BUILD)/ebm

setup:
	@scripts/setup.sh build
setup-test:
	@scripts/setup.sh test
data:
	@scripts/fetch_data.sh data

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libebm.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/ebm: $(CLI_OBJ) $(BUILD)/libebm.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/testutil.h $(BUILD)/libebm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libebm.a $(LDLIBS) -lcmocka

demo: setup
	@$(MAKE) --no-print-directory all data
	$(BUILD)/ebm sample --model models/digits.safetensors --grid 8x8 --steps 256 --out samples.png --show
	$(BUILD)/ebm chain --model models/digits.safetensors --out chain.gif
	@echo "wrote samples.png and chain.gif"

# Every test binary exits non-zero on failure; run_tests.sh prints one summary line.
test: setup-test
	@$(MAKE) --no-print-directory all data $(TESTS)
	@EBM=$(BUILD)/ebm scripts/run_tests.sh $(TESTS)

test-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan CC=gcc ARCH= OPT="-O1 -g" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	    EXTRA_LDLIBS="-fsanitize=address,undefined" build-asan/ebm $(TEST_SRC:tests/%.c=build-asan/tests/%)
	@EBM=build-asan/ebm ASAN_OPTIONS=detect_leaks=1 EBM_SANITIZED=1 scripts/run_tests.sh \
	    $(TEST_SRC:tests/%.c=build-asan/tests/%)

FUZZ_SECONDS ?= 60
fuzz: data
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_SRC)

check: test
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz

bench: all
	@bench/cpu_langevin.sh

cuda:
ifeq ($(NVCC),)
	@echo "nvcc not found: CUDA backend not built"
else
	@echo "nvcc found: $(NVCC)"
	@$(MAKE) --no-print-directory -f src/cuda/cuda.mk NVCC=$(NVCC) BUILD=$(BUILD)
endif

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
