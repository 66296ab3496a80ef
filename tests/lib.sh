# tests/lib.sh: helpers for the shell tests of the CLI (sourced by tests/*.sh).
# Each check prints "ok"/"FAIL" and a name; the script ends with `summary NAME`,
# which prints "RESULT NAME: N passed, M failed" for tests/run.sh to add up.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
XLMR=${XLMR:-$ROOT/xlmr}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/xlmr-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PASSED=0
FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "ok   $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
# check NAME COMMAND...: passes when the command exits 0
check() { local name=$1; shift; if "$@" >"$TMP/out" 2>"$TMP/err"; then pass "$name"; else fail "$name"; sed 's/^/     /' "$TMP/err" | head -5; fi; }
# expect_error NAME PATTERN COMMAND...: the command must exit 1 with exactly one
# line on stderr that starts with "xlmr" and matches PATTERN (grep -E), and must
# not be killed by a signal or report a sanitizer error.
expect_error() {
    local name=$1 pat=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
    local lines; lines=$(wc -l <"$TMP/err")
    if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -qE -- "$pat" "$TMP/err" && ! grep -q Sanitizer "$TMP/err"; then
        pass "$name"
    else
        fail "$name (exit $rc, stderr: $(head -c 300 "$TMP/err" | tr '\n' '|'))"
    fi
}
summary() { echo "RESULT $1: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; }
