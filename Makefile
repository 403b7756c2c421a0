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
CFLAGS  := $(EXTRA_CFLAGS) -std=c11 $(OPT) $(ARCH) $(WARN) -fno-math-errno -fopenmp -D_GNU_SOURCE -Iinclude -Isrc \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(EXTRA_LDLIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lgif -lmicrohttpd -lm -lpthread -fopenmp
BUILD   ?= build

NVCC    := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)

LIB_SRC  := $(filter-out src/cuda/%,$(wildcard src/*/*.c))
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/web_assets.o
WEB_SRC  := $(wildcard web/*.html web/*.css web/*.js web/*.svg)
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

# The web page of `ebm serve`, compiled into the binary: no files needed at run time.
$(BUILD)/gen/web_assets.c: $(WEB_SRC) src/server/embed.sh
	@mkdir -p $(dir $@)
	sh src/server/embed.sh $@ $(WEB_SRC)
$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c src/server/assets.h
	$(CC) $(CFLAGS) -c $< -o $@

# playwright-core for the browser test of `ebm serve` (tests/web; Chromium from Debian).
tests/web/node_modules/.package-lock.json: tests/web/package.json tests/web/package-lock.json
	cd tests/web && npm ci --no-audit --no-fund --loglevel=error

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
	$(BUILD)/ebm sample --model models/digits.safetensors --grid 8x8 --out samples.png --show
	$(BUILD)/ebm chain --model models/digits.safetensors --out chain.gif
	@echo "wrote samples.png and chain.gif"

# Every test binary exits non-zero on failure; run_tests.sh prints one summary line.
test: setup-test
	@$(MAKE) --no-print-directory all data $(TESTS) tests/web/node_modules/.package-lock.json
	@EBM=$(BUILD)/ebm scripts/run_tests.sh $(TESTS)

test-asan:
	@$(MAKE) --no-print-directory BUILD=build-asan CC=gcc ARCH= OPT="-O1 -g" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	    EXTRA_LDLIBS="-fsanitize=address,undefined" build-asan/ebm $(TEST_SRC:tests/%.c=build-asan/tests/%)
	@EBM=build-asan/ebm ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp EBM_SANITIZED=1 scripts/run_tests.sh \
	    $(TEST_SRC:tests/%.c=build-asan/tests/%)

FUZZ_SECONDS ?= 60
fuzz: data
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_SRC)

check: test
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory fuzz

$(BUILD)/bench/%: bench/%.c $(BUILD)/libebm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libebm.a $(LDLIBS)

bench: all $(BUILD)/bench/langevin_cpu
	@BUILD=$(BUILD) bench/cpu_langevin.sh

cuda:
ifeq ($(NVCC),)
	@echo "nvcc not found: CUDA backend not built"
else
	@echo "nvcc found: $(NVCC)"
	@$(MAKE) --no-print-directory -f src/cuda/cuda.mk NVCC=$(NVCC) BUILD=$(BUILD)
endif

# CUDA parity tests + compute-sanitizer; needs nvcc here and a GPU to pass (src/cuda/cuda.mk).
test-cuda:
ifeq ($(NVCC),)
	@echo "nvcc not found: no CUDA tests"
else
	@$(MAKE) --no-print-directory -f src/cuda/cuda.mk NVCC=$(NVCC) BUILD=$(BUILD) cuda-test
endif

clean:
	rm -rf build build-asan build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
