#!/bin/sh
# run_tests.sh - runs each test binary (cmocka) and the CLI tests, prints one summary line.
# Exits non-zero if any binary fails.  Output of each binary goes to build/test-logs/.
set -u
logs=${TEST_LOGS:-build/test-logs}
mkdir -p "$logs"
pass=0; fail=0; failed=""
for t in "$@"; do
    name=$(basename "$t")
    start=$(date +%s)
    if "$t" > "$logs/$name.log" 2>&1; then
        status=ok; pass=$((pass + 1))
    else
        status=FAILED; fail=$((fail + 1)); failed="$failed $name"
    fi
    n=$(grep -c '^\[       OK \]' "$logs/$name.log" 2>/dev/null || true)
    printf '%-28s %-6s %3s cases  %3ss\n' "$name" "$status" "$n" "$(( $(date +%s) - start ))"
    [ "$status" = ok ] || tail -n 30 "$logs/$name.log"
done
for t in tests/cli/*.sh; do
    [ -f "$t" ] || continue
    name=cli-$(basename "$t" .sh)
    start=$(date +%s)
    if EBM=${EBM:-build/ebm} sh "$t" > "$logs/$name.log" 2>&1; then
        status=ok; pass=$((pass + 1))
    else
        status=FAILED; fail=$((fail + 1)); failed="$failed $name"
    fi
    printf '%-28s %-6s            %3ss\n' "$name" "$status" "$(( $(date +%s) - start ))"
    [ "$status" = ok ] || tail -n 30 "$logs/$name.log"
done
echo "ebm tests: $pass passed, $fail failed${failed:+ (failed:$failed)}; logs in $logs/"
[ "$fail" -eq 0 ]
