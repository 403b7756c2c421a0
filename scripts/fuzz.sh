#!/bin/sh
# fuzz.sh SECONDS fuzz/fuzz_*.c - builds each libFuzzer target with clang (ASan + UBSan) and
# runs it for SECONDS from its seed corpus fuzz/corpus/<name>/.  A target names the library
# sources it needs on a line "// FUZZ_SOURCES: a.c b.c".  Prints executions per target;
# exits non-zero on the first crash (the reproducer is left in build-fuzz/).
set -eu
secs=$1; shift
out=build-fuzz
mkdir -p "$out"
flags="-std=c11 -g -O1 -D_GNU_SOURCE -Iinclude -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
for src in "$@"; do
    name=$(basename "$src" .c)
    deps=$(sed -n 's|^// FUZZ_SOURCES: ||p' "$src")
    clang $flags $(pkg-config --cflags libcjson zlib) -o "$out/$name" "$src" $deps \
        $(pkg-config --libs libcjson zlib) -lm
    corpus="$out/corpus-$name"
    mkdir -p "$corpus"
    seeds="fuzz/corpus/${name#fuzz_}"
    log="$out/$name.log"
    if ! (cd "$out" && ./"$name" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 "corpus-$name" "../$seeds") > "$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $name FAILED (see $log)"
        exit 1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $name ran $execs executions in ${secs}s with no crash"
done
