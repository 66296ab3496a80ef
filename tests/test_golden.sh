#!/usr/bin/env bash
# tests/test_golden.sh: what the program computes has not changed. Runs
# tests/golden/record.sh with the binary under test and compares every number of
# every output with the copy committed in tests/golden/ (recorded before the
# redesign of the core): at most 1e-4 apart, absolutely or relatively.
. "$(dirname "$0")/lib.sh"
G=$ROOT/tests/golden
if ! XLMR="$XLMR" bash "$G/record.sh" "$TMP/now" 2>"$TMP/rec.err"; then
    fail "record.sh ran"; sed 's/^/     /' "$TMP/rec.err" | head -5
    summary golden; exit $?
fi
for f in "$G"/*.txt "$G"/*.jsonl; do
    name=$(basename "$f")
    if [ ! -f "$TMP/now/$name" ]; then fail "$name written"; continue; fi
    # every maximal run of number characters, token by token, with the non-numbers equal
    res=$(awk -v tol=1e-4 '
        function toks(line, arr,   n) { n = 0; while (match(line, /-?[0-9][0-9.eE+-]*/)) {
            arr[++n] = substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH) } return n }
        NR == FNR { a[FNR] = $0; na = FNR; next }
        { nb = FNR; x = a[FNR]; y = $0
          gsub(/-?[0-9][0-9.eE+-]*/, "#", x); s = $0; gsub(/-?[0-9][0-9.eE+-]*/, "#", s)
          if (x != s) { print "line " FNR " differs in text"; exit }
          n = toks(a[FNR], u); toks(y, v)
          for (i = 1; i <= n; i++) { d = u[i] - v[i]; if (d < 0) d = -d; m = u[i] < 0 ? -u[i] : u[i]
            if (d > tol && d > tol * m) { print "line " FNR " number " i ": " u[i] " vs " v[i]; exit } } }
        END { if (na != nb && !printed) print "lines " na " vs " nb }' "$f" "$TMP/now/$name")
    [ -z "$res" ] && pass "$name unchanged (1e-4)" || fail "$name: $res"
done
summary golden
