#!/usr/bin/env bash
# tests/test_ablation.sh: `xlmr experiment --ablation --quick` end to end on the
# real data: an arm with an English-QA start and SQuAD beside XQuAD-R, measured
# on the dev split; the table; resuming; earlier arms tabled; bad arms refused.
. "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
DATA=""
for d in "${XLMR_DATA:-}" "$ROOT/data" "$ROOT/../shared/data"; do
    if [ -n "$d" ] && [ -d "$d/xquad-r" ] && [ -d "$d/squad-train" ]; then DATA=$d; break; fi
done
cd "$ROOT" || exit 1
OUT=$TMP/ab
A="--ablation --quick --seeds 1 --data $DATA --out $OUT --qa-steps 2"
if [ -n "$DATA" ]; then
    t0=$SECONDS
    check "ablation: one arm (random+qa, xquad+squad)" "$XLMR" experiment $A --starts random+qa --data-arms xquad+squad --lengths 1
    echo "     (arm: $((SECONDS - t0)) s)"
    ARM=$OUT/ablation/random+qa_xquad+squad_1x
    check "the arm is a grid of mono/cross/hybrid" test "$(ls "$ARM"/runs/*.json 2>/dev/null | wc -l)" -eq 3
    check "measured on the dev split only" sh -c "grep -q '\"xquad-r\": {\"split\": \"dev\"' '$ARM/runs/nano-hybrid-s0.json' && ! grep -q mlqa-r '$ARM/runs/nano-hybrid-s0.json'"
    check "final models, no selection on dev" grep -q '"model": "final"' "$ARM/runs/nano-mono-s0.json"
    check "no dev TSV written or listed (nothing selects on it)" sh -c "test ! -e '$ARM/data/dev.tsv' && ! grep -q 'dev split [0-9]' '$ARM/report.md'"
    check "the QA start is cached once" test -s "$OUT/starts/nano-random-qa2/final/model.safetensors"
    check "the QA start is English mono training" grep -q '"kind": "mono"' "$OUT/starts/nano-random-qa2/log.jsonl"
    check "SQuAD pairs written once" test "$(grep -vc '^#' "$OUT/data/squad-train.tsv")" -gt 80000
    check "the start evaluated zero-shot" grep -q '"split": "dev"' "$ARM/zeroshot/nano.json"
    check "the training line names both datasets" grep -q 'SQuAD v1.1 train, English), merged' "$ARM/report.md"
    check "ablation.md: the arm's row" grep -qE '^\| random\+qa \| xquad\+squad \| 6 \| 0\.[0-9]+ / ' "$OUT/ablation.md"
    check "ablation.md: the ranking" grep -qE '^\| random\+qa_xquad\+squad_1x \| [-0-9.]+ \|' "$OUT/ablation.md"
    if command -v python3 >/dev/null 2>&1; then
        check "ablation.json parses, three strategies" python3 -c "
import json, sys
a = json.load(open(sys.argv[1]))['arms']
assert len(a) == 1 and a[0]['arm'] == 'random+qa_xquad+squad_1x', a
for k in ('mono', 'cross', 'hybrid'):
    assert 0 < a[0][k]['cross_map'] < 1 and a[0][k + '_seeds'] == 1
assert a[0]['finetune_seconds'] > 0 and a[0]['start_seconds'] > 0" "$OUT/ablation.json"
    fi
    before=$(cd "$ARM/runs" && sha256sum ./*.json)
    check "a second arm (random, xquad, 2x)" "$XLMR" experiment $A --starts random --data-arms xquad --lengths 2
    check "the first arm is kept, not rerun" test "$before" = "$(cd "$ARM/runs" && sha256sum ./*.json)"
    check "both arms in the table" test "$(grep -cE '^\| random(\+qa)?_xquad' "$OUT/ablation.md")" -eq 2
    check "the 2x arm trains 12 steps" grep -q '"steps": 12' "$OUT/ablation/random_xquad_2x/runs/nano-cross-s0.json"
else
    echo "note: no data with squad-train/ (set XLMR_DATA or run make data): ablation runs skipped"
fi
expect_error "unknown start" "unknown start 'bert'" "$XLMR" experiment --ablation --starts random,bert --out "$TMP/e"
expect_error "bad length" "--lengths: '0'" "$XLMR" experiment --ablation --lengths 0 --out "$TMP/e"
expect_error "unknown data arm" "unknown data 'mlqa'" "$XLMR" experiment --ablation --data-arms mlqa --out "$TMP/e"
expect_error "--init with --ablation" "use --starts, not --init" "$XLMR" experiment --ablation --init random --out "$TMP/e"
expect_error "--starts without --ablation" "options of --ablation" "$XLMR" experiment --starts random --out "$TMP/e"
expect_error "--init bogus+qa" "--init must be random, pretrained, random\+qa or pretrained\+qa" \
    "$XLMR" experiment --init bogus+qa --out "$TMP/e"
expect_error "--qa-steps 0" "qa-steps" "$XLMR" experiment --init random+qa --qa-steps 0 --out "$TMP/e"
summary ablation
