#!/usr/bin/env bash
# scripts/ci_hardening.sh: what CI runs beyond `make test`.
#   1. deps           apt-get install of whatever is missing: clang, libclang-rt-14-dev
#                     (ASan/UBSan/libFuzzer runtimes), libomp-dev (clang -fopenmp),
#                     gcc-aarch64-linux-gnu + libc6-dev-arm64-cross, qemu-user
#   2. check-scalar   make check-scalar: NATIVE=0 OMP=0, -pedantic -Werror
#   3. test-sanitize  make test-sanitize: the whole suite against clang ASan+UBSan
#   4. fuzz           fuzz/run.sh $FUZZ_SECONDS (default 6 s per target)
#   5. test-aarch64   make test-aarch64: the portable build cross-compiled for
#                     arm64 and the suite run under qemu-user
# Prints the time of each stage and exits non-zero when any stage failed (all
# stages run regardless, so one CI log shows every failure).
# Usage: scripts/ci_hardening.sh [STAGE...]   (default: all; e.g. `fuzz test-aarch64`)
# Environment: FUZZ_SECONDS (6), JOBS (make -j, default: nproc), NO_APT=1 skips installs.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
FUZZ_SECONDS=${FUZZ_SECONDS:-6}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
STAGES=${*:-deps check-scalar test-sanitize fuzz test-aarch64}
LOGDIR=${LOGDIR:-build-ci}
mkdir -p "$LOGDIR"

deps() {
    [ -n "${NO_APT:-}" ] && { echo "NO_APT set: not installing"; return 0; }
    local need=()
    command -v clang >/dev/null 2>&1 || need+=(clang)
    # the sanitizer and libFuzzer runtimes of clang 14 (Debian splits them out)
    if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 &&
       ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-aarch64.a >/dev/null 2>&1; then
        need+=(libclang-rt-14-dev)
    fi
    echo 'int main(void){return 0;}' | clang -fopenmp -x c -o /dev/null - >/dev/null 2>&1 || need+=(libomp-dev)
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
    [ -f /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
    command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)
    command -v xxd >/dev/null 2>&1 || need+=(xxd)
    if [ ${#need[@]} -eq 0 ]; then echo "all present"; return 0; fi
    local sudo=; [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "installing: ${need[*]}"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
}
stage_cmd() {
    case $1 in
    deps) deps ;;
    check-scalar) make -j"$JOBS" check-scalar ;;
    test-sanitize) make -j"$JOBS" test-sanitize ;;
    # a fixed libFuzzer seed: CI explores the same inputs on every run (a prefix of
    # what a longer local `FUZZ_FLAGS=-seed=1 fuzz/run.sh N` explores), so it is not flaky
    fuzz) FUZZ_FLAGS="${FUZZ_FLAGS:--seed=1}" fuzz/run.sh "$FUZZ_SECONDS" ;;
    test-aarch64) make -j"$JOBS" test-aarch64 ;;
    *) echo "unknown stage $1 (deps check-scalar test-sanitize fuzz test-aarch64)" >&2; return 2 ;;
    esac
}

status=0
report=""
t_all=$(date +%s)
for s in $STAGES; do
    echo "::group::$s"
    t0=$(date +%s)
    stage_cmd "$s" 2>&1 | tee "$LOGDIR/$s.log"
    rc=${PIPESTATUS[0]}
    dt=$(( $(date +%s) - t0 ))
    echo "::endgroup::"
    if [ "$rc" -eq 0 ]; then r="ok  "; else r="FAIL"; status=1; fi
    line=$(printf '%-14s %s %5ds  (exit %d, log %s/%s.log)' "$s" "$r" "$dt" "$rc" "$LOGDIR" "$s")
    echo "$line"
    # the suite's closing line, where there is one
    tail_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGDIR/$s.log" | tail -1)
    [ -n "$tail_line" ] && line="$line  $tail_line"
    report="$report$line"$'\n'
done
echo "---- hardening summary (total $(( $(date +%s) - t_all ))s)"
printf '%s' "$report"
exit $status
