#!/usr/bin/env bash
# tests/test_perf.sh: the --bf16 compute path from the command line: embed,
# eval and train accept it, BF16 embeddings stay within 3e-2 of the torch FP32
# reference yet differ from the FP32 run (the flag reaches the GEMMs), and a
# BF16 training run finishes with a finite loss.
. "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
REF=$ROOT/tests/ref
FIX=$ROOT/tests/fixtures/train
SPM=$ROOT/tokenizer/xlmrc.model

# max |a-b| over two files of space-separated floats
maxdiff() { awk 'NR==FNR { for (i = 1; i <= NF; i++) a[FNR, i] = $i; n[FNR] = NF; next }
    { if (NF != n[FNR]) { print "shape"; bad = 1; exit } for (i = 1; i <= NF; i++) { d = $i - a[FNR, i]; if (d < 0) d = -d; if (d > m) m = d } rows++ }
    END { if (!bad) print (rows ? m : "empty") }' "$1" "$2"; }
# within LO < diff <= HI
diff_in() { local d; d=$(maxdiff "$1" "$2"); echo "max abs diff $d"; awk -v d="$d" -v lo="$3" -v hi="$4" 'BEGIN { exit !(d != "" && d + 0 == d && d > lo && d <= hi) }'; }

for cmd in embed eval train; do
    "$XLMR" $cmd --help >"$TMP/help.txt" 2>&1
    check "$cmd --help documents --bf16" grep -q -- '--bf16' "$TMP/help.txt"
done

"$XLMR" embed --model "$REF/xlmr_a" --ids <"$REF/xlmr_a/ids.txt" >"$TMP/f32.txt"
"$XLMR" embed --model "$REF/xlmr_a" --ids --bf16 <"$REF/xlmr_a/ids.txt" >"$TMP/bf16.txt"
check "embed --bf16: 4 embeddings" test "$(wc -l <"$TMP/bf16.txt")" -eq 4
check "embed --bf16 within 3e-2 of torch FP32, not equal to it" diff_in "$TMP/bf16.txt" "$REF/xlmr_a/emb_mean.txt" 0 3e-2
check "embed --bf16 differs from the FP32 run" diff_in "$TMP/bf16.txt" "$TMP/f32.txt" 0 3e-2
check "unit norm in BF16" awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; if (s < 0.9999 || s > 1.0001) exit 1 }' "$TMP/bf16.txt"

if [ -f "$SPM" ]; then
    "$XLMR" init --tokenizer "$SPM" --out "$TMP/m" --preset tiny --hidden 32 --heads 2 --ffn 64 --max-pos 70 --seed 3 \
        >/dev/null 2>&1 && pass "tiny model" || fail "tiny model"
    check "train --bf16 runs" "$XLMR" train --model "$TMP/m" --train "$FIX/hard.tsv" --out "$TMP/o" --batch 4 --steps 2 \
        --max-len-query 16 --max-len-passage 32 --chunk 3 --quiet --bf16
    cp "$TMP/out" "$TMP/train.json"
    check "train --bf16: finite loss" grep -qE '"final_loss": [0-9]' "$TMP/train.json"
else
    echo "note: $SPM missing: the BF16 training run is skipped"
fi
summary perf_cli
