#!/usr/bin/env bash
# tests/test_experiment.sh: `xlmr experiment --quick` end to end on the real
# data (training, evaluation, report), the structure of its outputs, resuming
# (finished runs are skipped; a lost run is redone alone) and its errors.
. "$(dirname "$0")/lib.sh"
# busy machines: spinning OpenMP threads slow small models tenfold
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# the data: $XLMR_DATA, else data/, else ../shared/data beside the repository
DATA=""
for d in "${XLMR_DATA:-}" "$ROOT/data" "$ROOT/../shared/data"; do
    if [ -n "$d" ] && [ -d "$d/xquad-r" ] && [ -d "$d/mlqa-r" ]; then DATA=$d; break; fi
done
if [ -z "$DATA" ]; then
    echo "note: no data (set XLMR_DATA or run make data): experiment tests skipped"
    summary experiment
    exit $?
fi
cd "$ROOT" || exit 1
OUT=$TMP/q

# make data (scripts/get_data.sh) from a mirror: copies verified against the
# pinned checksums, idempotent, repairs a damaged file, fails clearly when a
# required file is missing (offline: no download is tried in tests).
GD="$ROOT/scripts/get_data.sh"
if ! (cd "$DATA" && sha256sum --quiet -c "$ROOT/scripts/data.sha256" >/dev/null 2>&1); then
    echo "note: $DATA is not a complete mirror of scripts/data.sha256: get_data tests skipped"
else
    check "get_data from a mirror" env DATA_DIR="$TMP/d" DATA_MIRROR="$DATA" DATA_OFFLINE=1 DATA_LINK=0 "$GD"
    check "get_data: all files verified" sh -c "cd '$TMP/d' && sha256sum --quiet -c '$ROOT/scripts/data.sha256'"
    check "get_data: copies, not links" test ! -L "$TMP/d/xquad-r/en.json"
    check "get_data: second run only verifies" sh -c "env DATA_DIR='$TMP/d' DATA_MIRROR=/nonexistent DATA_OFFLINE=1 '$GD' 2>&1 | grep -q 'present and verified'"
    # (only ever a copy: writing through a link would damage the mirror)
    [ ! -L "$TMP/d/mlqa-r/de.json" ] && chmod u+w "$TMP/d/mlqa-r/de.json" && echo damaged >"$TMP/d/mlqa-r/de.json"
    check "get_data repairs a damaged file" env DATA_DIR="$TMP/d" DATA_MIRROR="$DATA" DATA_OFFLINE=1 DATA_LINK=0 "$GD"
    check "get_data: repaired" sh -c "cd '$TMP/d' && sha256sum --quiet -c '$ROOT/scripts/data.sha256'"
    mkdir -p "$TMP/m" && cp -r "$DATA/xquad-r" "$TMP/m/"
    env DATA_DIR="$TMP/d2" DATA_MIRROR="$TMP/m" DATA_OFFLINE=1 DATA_LINK=0 "$GD" >"$TMP/out" 2>"$TMP/gd.err"
    check "get_data: a required file missing fails" test $? -eq 1
    check "get_data: says which and what to do" sh -c "grep -q 'mlqa-r/de.json' '$TMP/gd.err' && grep -q 'DATA_MIRROR=' '$TMP/gd.err'"
    rm -rf "$TMP/d" "$TMP/d2" "$TMP/m"
fi

# JSON and XML checks with whatever the machine has (python3 or xmllint), else a crude one.
have() { command -v "$1" >/dev/null 2>&1; }
check_results_json() {
    if have python3; then
        python3 - "$1" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
runs = r["runs"]
assert len(runs) == 6, len(runs)
cells = {(x["size"], x["sampling"], x["seed"]) for x in runs}
want = {(s, m, 0) for s in ("nano", "micro") for m in ("mono", "cross", "hybrid")}
assert cells == want, cells
for x in runs:
    assert x["params"] > 0 and x["steps"] == 6 and x["train_seconds"] > 0
    for ds in ("xquad-r", "mlqa-r"):
        s = x["eval"][ds]
        for k in ("map", "r1"):
            assert 0 <= s["mono"][k] <= 1 and 0 <= s["cross"][k] <= 1, (ds, k)
        assert 0 <= s["multi"]["map"] <= 1 and 0 <= s["multi"]["r10"] <= 1 and s["multi"]["rank_distance"] >= 0
        assert set(s["mono"]["by_lang"]) == {"ar", "de", "en"}, s["mono"]["by_lang"].keys()
        assert len(s["cross"]["by_pair"]) == 6
for ds in ("xquad-r", "mlqa-r"):
    f = r["floors"][ds]
    assert 0 < f["mono_map"] < 0.2 and 0 < f["multi_map"] < 0.2 and f["rank_distance"] > 0, f
EOF
    else
        [ "$(grep -c '"sampling"' "$1")" -eq 6 ] && grep -q '"rank_distance"' "$1"
    fi
}
check_svg() {
    if have xmllint; then xmllint --noout "$1"
    elif have python3; then python3 -c 'import sys, xml.etree.ElementTree as E; assert E.parse(sys.argv[1]).getroot().tag.endswith("svg")' "$1"
    else grep -q '</svg>' "$1"
    fi
}
sums() { (cd "$OUT/runs" && sha256sum ./*.json); }

t0=$SECONDS
check "quick grid runs" "$XLMR" experiment --quick --data "$DATA" --out "$OUT"
cp "$TMP/err" "$TMP/log1"
echo "     (quick grid: $((SECONDS - t0)) s)"
check "six run files" test "$(ls "$OUT"/runs/*.json 2>/dev/null | wc -l)" -eq 6
check "results.json: every run, every setting" check_results_json "$OUT/results.json"
for f in map_xquad-r.svg map_mlqa-r.svg rank_distance.svg; do
    check "$f well-formed" check_svg "$OUT/$f"
done
check "svg has bars" grep -q '<rect x=' "$OUT/map_xquad-r.svg"
for pat in '^### XQuAD-R' '^### MLQA-R' '^## The gap table' '\*random ranking\*' '^## Reading' \
    '^| XQuAD-R \| Multi mAP \|' '^| nano \| .* \| hybrid \| 1 \|' 'paper XLM-R'; do
    check "report.md has: $pat" grep -qE "$pat" "$OUT/report.md"
done
check "progress lines" grep -q '^\[run 6/6\] micro-hybrid-s0: done' "$TMP/log1"

# Re-running skips every finished run and changes none of them.
before=$(sums)
check "re-run" "$XLMR" experiment --quick --data "$DATA" --out "$OUT"
cp "$TMP/err" "$TMP/log2"
check "re-run: nothing to do" grep -q '6 finished, 0 to do' "$TMP/log2"
check "re-run: run files unchanged" test "$before" = "$(sums)"
check "re-run: report rebuilt" test -s "$OUT/report.md"

# A lost run (as if interrupted) is redone alone; the others are kept.
rm "$OUT/runs/micro-cross-s0.json"
check "resume after a lost run" "$XLMR" experiment --quick --data "$DATA" --out "$OUT"
cp "$TMP/err" "$TMP/log3"
check "resume: one run to do" grep -q '5 finished, 1 to do' "$TMP/log3"
check "resume: only that run ran" test "$(grep -c '^\[run .*: done in' "$TMP/log3")" -eq 1
check "resume: six runs again" check_results_json "$OUT/results.json"

# --model-dirs: the same grid from given model folders (here the quick grid's
# initial nano model stands in for a pretrained one), on a user's TSV, evaluated
# on the whole of XQuAD-R and MLQA-R (restricted to 3 languages to stay fast).
check "model-dirs grid" "$XLMR" experiment --model-dirs pre=$OUT/init/nano-s0 --train "$OUT/data/train.tsv" \
    --sampling mono,hybrid --seeds 1 --steps 2 --batch 4 --langs ar,de,en --data "$DATA" --out "$TMP/pre"
check "model-dirs: two runs" test "$(ls "$TMP"/pre/runs/pre-*.json 2>/dev/null | wc -l)" -eq 2
check "model-dirs: all of XQuAD-R" grep -q '"xquad-r": {"split": "all", "questions": 3570' "$TMP/pre/runs/pre-mono-s0.json"
check "model-dirs: report" grep -q '^| pre |' "$TMP/pre/report.md"

# --bf16: BF16 products in the start's training, fine-tuning and evaluation:
# a grid of its own (key, start folder), figures near but not equal to fp32's.
BF=(experiment --quick --sizes nano --sampling mono --data "$DATA" --out "$TMP/bf")
check "bf16 grid (English-QA start)" "$XLMR" "${BF[@]}" --bf16 --init random+qa --qa-steps 2
check "bf16: its own start folder" test -f "$TMP/bf/starts/nano-random-qa2-bf16/final/config.json"
check "bf16: in the grid key" grep -q '"grid_key": "[^"]* bf16' "$TMP/bf/runs/nano-mono-s0.json"
check "bf16: in the report" grep -q 'BF16 matrix products' "$TMP/bf/report.md"
expect_error "bf16 and fp32 runs never mix" 'made with other settings' "$XLMR" "${BF[@]}" --init random+qa --qa-steps 2
# (the final training loss moves with every product; mAP only where a rank changes)
field() { grep -o "$2[0-9.e-]*" "$1" | head -1 | grep -o '[0-9.e-]*$'; }
check "bf16 grid from random init" "$XLMR" "${BF[@]}" --bf16 --out "$TMP/bf2"
A=$OUT/runs/nano-mono-s0.json B=$TMP/bf2/runs/nano-mono-s0.json
a=$(field "$A" '"final_loss": '); b=$(field "$B" '"final_loss": ')
[ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = (a - b) / a; exit !(d < 0.05 && d > -0.05) }' &&
    pass "bf16: final loss near fp32's, not equal ($b against $a)" || fail "bf16 against fp32 final loss: '$b' '$a'"
a=$(field "$A" '"xquad-r": {[^}]*"mono": {"map": '); b=$(field "$B" '"xquad-r": {[^}]*"mono": {"map": ')
[ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d < 0.05 && d > -0.05) }' &&
    pass "bf16: XQuAD-R mono mAP near fp32's ($b against $a)" || fail "bf16 against fp32 mono mAP: '$b' '$a'"

# Errors: one line, exit status 1.
expect_error "other settings in the same --out" 'made with other settings' \
    "$XLMR" experiment --quick --steps 7 --data "$DATA" --out "$OUT"
sed 's/"grid_key": "steps=6 /"grid_key": "steps=99 /' "$OUT/runs/nano-mono-s0.json" >"$OUT/runs/other-mono-s0.json"
expect_error "a foreign run in runs/" 'other-mono-s0.json: made with other settings' \
    "$XLMR" experiment --quick --data "$DATA" --out "$OUT"
printf '{"size": ' >"$OUT/runs/other-mono-s0.json"
expect_error "a damaged run file" 'other-mono-s0.json' "$XLMR" experiment --quick --data "$DATA" --out "$OUT"
rm -f "$OUT/runs/other-mono-s0.json"
expect_error "unknown size" 'unknown size' "$XLMR" experiment --quick --sizes nano,huge --data "$DATA" --out "$TMP/e1"
expect_error "bad shape" 'bad shape' "$XLMR" experiment --sizes 2x65x2 --data "$DATA" --out "$TMP/e1"
expect_error "unknown sampling" 'unknown sampling' "$XLMR" experiment --sampling mono,bogus --data "$DATA" --out "$TMP/e1"
expect_error "no data" 'make data' "$XLMR" experiment --quick --data "$TMP/nodata" --out "$TMP/e1"
expect_error "model-dirs without --train" 'needs --train' "$XLMR" experiment --model-dirs base=/nonexistent --out "$TMP/e1"
expect_error "model-dirs: missing folder" 'config.json' \
    "$XLMR" experiment --model-dirs base=$TMP/none --train "$OUT/data/train.tsv" --data "$DATA" --out "$TMP/e1"
check "--help documents the options" sh -c "'$XLMR' experiment --help | grep -q -- '--model-dirs'"

summary experiment
