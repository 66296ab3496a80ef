#!/usr/bin/env bash
# tests/run.sh: runs every C unit-test program (build/test_*) and every shell
# test (tests/test_*.sh), adds up their RESULT lines and ends with the line
#   N passed, N failed
# Usage: tests/run.sh [BUILD_DIR]   (XLMR=path overrides the binary under test;
#        RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu" runs the C tests through an emulator;
#        SKIP_TESTS="test_experiment test_train.sh ..." leaves out tests by name, e.g. the slowest under
#        emulation: a bare name skips the C program and the script of that name, NAME.sh the script alone)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
cd "$ROOT"
# Idle OpenMP threads sleep instead of spinning: on a loaded 2-core machine spinning
# threads starve the ones doing work, and tests are about results, not speed.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
total_p=0; total_f=0
run_one() {
    local name=$1 kind=$2; shift 2
    case " ${SKIP_TESTS:-} " in *" $name "* | *" $name$kind "*) printf '%-28s skipped (SKIP_TESTS)\n' "$name"; return ;; esac
    local log; log=$(mktemp)
    local t0=$SECONDS
    "$@" >"$log" 2>&1; local rc=$?
    local line; line=$(grep -E '^RESULT ' "$log" | tail -1)
    local p f
    if [ -n "$line" ]; then
        p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
        f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    else
        p=0; f=1
    fi
    # a crash or non-zero exit after the summary still counts as a failure
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    total_p=$((total_p + p)); total_f=$((total_f + f))
    printf '%-28s %4d passed, %d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - t0))
    if [ "$f" -ne 0 ] || [ -n "${VERBOSE:-}" ]; then
        grep -vE '^(ok |RESULT )' "$log" | head -40 | sed 's/^/    /'
        [ -z "$line" ] && echo "    (no RESULT line; exit status $rc)"
    fi
    rm -f "$log"
}
for t in "$BUILD"/test_*; do
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "" ${RUNNER:-} "$t"
done
for t in tests/test_*.sh; do
    [ -f "$t" ] || continue
    run_one "$(basename "$t" .sh)" .sh bash "$t"
done
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
