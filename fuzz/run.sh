#!/usr/bin/env bash
# fuzz/run.sh: builds the libFuzzer targets and runs each one for SECONDS.
#   fuzz/run.sh [SECONDS] [TARGET...]      (default 60 s, every target)
# Build: clang; the library objects (every top-level *.c but main.c and the
# commands cmd_*.c) go to build-fuzz/ with
# -fsanitize=fuzzer-no-link,address,undefined, the targets
# fuzz/fuzz_*.c are linked with -fsanitize=fuzzer. Objects are rebuilt when a
# source or header is newer.
# Run: each target starts from a scratch copy of fuzz/seeds/<target>/ plus
# fuzz/regressions/<target>/ (committed seeds are never modified) and runs for
# -max_total_time=SECONDS. On a crash, leak, timeout or out-of-memory the input
# is copied to fuzz/regressions/<target>/ (replayed by tests/test_fuzz_regressions
# on every build from then on) and the script fails.
# Environment: CC (default clang), FUZZ_FLAGS (extra libFuzzer flags),
# XLMR_FUZZ_MODEL (the tokenizer model of fuzz_tokenize).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
SECONDS_EACH=${1:-60}
shift || true
ALL="safetensors json spm_model tokenize tsv squad sampler_state multi_state"
TARGETS=${*:-$ALL}
CC=${CC:-clang}
B=build-fuzz
mkdir -p "$B"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-std=c99 -O1 -g -D_POSIX_C_SOURCE=200809L -DXLMR_SCALAR_ONLY $SAN"

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz/run.sh: $CC not found (apt-get install clang)" >&2; exit 2
fi
# -- build --------------------------------------------------------------------
newest_h=$(ls -t ./*.h fuzz/*.h 2>/dev/null | head -1)
build_fail=0
objs=()
for src in *.c; do
    case $src in main.c | cmd_*.c) continue ;; esac
    obj=$B/${src%.c}.o
    objs+=("$obj")
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_h" -nt "$obj" ]; then
        echo "CC   $src"
        $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || build_fail=1
    fi
done
[ "$build_fail" -eq 0 ] || { echo "fuzz/run.sh: build failed" >&2; exit 2; }
rm -f "$B/libxlmr-fuzz.a"
ar rcs "$B/libxlmr-fuzz.a" "${objs[@]}"
for t in $TARGETS; do
    [ -f "fuzz/fuzz_$t.c" ] || { echo "fuzz/run.sh: no target fuzz/fuzz_$t.c" >&2; exit 2; }
    echo "LD   fuzz_$t"
    $CC $CFLAGS -I. -fsanitize=fuzzer "fuzz/fuzz_$t.c" "$B/libxlmr-fuzz.a" -lm -o "$B/fuzz_$t" || exit 2
done

# -- run ----------------------------------------------------------------------
# extra real inputs that are too large to commit as seeds (used when present)
extra_inputs() {
    case $1 in
    spm_model)
        for m in tests/fixtures/tokenizer/*.model ../shared/data/spm-fixtures/*.model \
                 /work/shared/data/spm-fixtures/*.model; do
            [ -f "$m" ] && echo "$m"
        done ;;
    esac
}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# the targets' temp files (inputs written for path-only parsers): in memory
# where /dev/shm exists, removed at the end even when a target crashed
SCRATCH=/dev/shm/xlmr-fuzz-run.$$
mkdir -p "$SCRATCH" 2>/dev/null || SCRATCH=$ROOT/$B/scratch.$$
mkdir -p "$SCRATCH"
export FUZZ_SCRATCH=$SCRATCH
trap 'rm -rf "$SCRATCH"' EXIT
status=0
summary=""
for t in $TARGETS; do
    work=$B/run-$t
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    [ -d "fuzz/seeds/$t" ] && cp fuzz/seeds/"$t"/* "$work/corpus/" 2>/dev/null
    [ -d "fuzz/regressions/$t" ] && cp fuzz/regressions/"$t"/* "$work/corpus/" 2>/dev/null
    for f in $(extra_inputs "$t"); do cp "$f" "$work/corpus/extra-$(basename "$f")"; done
    dict=; [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
    t0=$(date +%s)
    # -rss_limit_mb: an input that makes a parser allocate gigabytes is a finding
    "$B/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" $dict ${FUZZ_FLAGS:-} "$work/corpus" \
        >"$work/log" 2>&1
    rc=$?
    runs=$(grep -E '^stat::number_of_executed_units' "$work/log" | awk '{print $2}')
    cov=$(grep -oE 'cov: [0-9]+' "$work/log" | tail -1)
    found=$(ls "$work/artifacts" 2>/dev/null)
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        status=1
        mkdir -p "fuzz/regressions/$t"
        for a in $found; do cp "$work/artifacts/$a" "fuzz/regressions/$t/$a"; done
        line=$(printf '%-12s FAIL (exit %d) after %ss: %s -> fuzz/regressions/%s/' "$t" "$rc" $(( $(date +%s) - t0 )) "$(echo $found)" "$t")
        echo "$line"
        grep -E 'ERROR: |runtime error|SUMMARY|^    #[0-9] ' "$work/log" | head -25 | sed 's/^/    /'
    else
        line=$(printf '%-12s ok   %ss, %s runs, %s' "$t" $(( $(date +%s) - t0 )) "${runs:-?}" "${cov:-}")
        echo "$line"
    fi
    summary="$summary$line"$'\n'
done
echo "---- fuzz summary (${SECONDS_EACH}s per target; logs in $B/run-TARGET/log)"
printf '%s' "$summary"
exit $status
