#!/usr/bin/env bash
# tests/test_train.sh: `xlmr batches` and `xlmr train` from the command line:
# batch lines, one-line errors for bad training files, and a training run killed
# with SIGKILL at a random moment that leaves a loadable checkpoint and resumes.
. "$(dirname "$0")/lib.sh"
# OpenMP threads that sleep rather than spin when they wait: on a shared, loaded
# machine spinning makes these runs several times slower
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
FIX=$ROOT/tests/fixtures/train
SPM=$ROOT/tokenizer/xlmrc.model

# ---- xlmr batches ----
check "batches runs" "$XLMR" batches --train "$FIX/train.tsv" --sampling hybrid --batch 8 --steps 200 --seed 5
cp "$TMP/out" "$TMP/hybrid.txt"
# every line: a kind and 8 pairs QLANG:PLANG:GROUP; mono one language; cross q != p; no group twice
awk '{
    if ($1 != "mono" && $1 != "cross") bad = "kind " $1
    if (NF != 9) bad = "pairs " NF - 1
    delete seen
    for (i = 2; i <= NF; i++) {
        split($i, a, ":")
        if (seen[a[3]]++) bad = "group twice: " a[3]
        if ($1 == "cross" && a[1] == a[2]) bad = "cross with q == p"
        if ($1 == "mono" && (a[1] != a[2] || (i > 2 && a[1] != lang))) bad = "mono mixes languages"
        lang = a[1]
    }
} END { if (bad) { print bad; exit 1 } }' "$TMP/hybrid.txt" && pass "batch lines well formed" || fail "batch lines well formed"
n_mono=$(grep -c '^mono' "$TMP/hybrid.txt")
[ "$n_mono" -gt 65 ] && [ "$n_mono" -lt 135 ] && pass "hybrid alpha 0.5: $n_mono of 200 mono" || fail "hybrid mono share $n_mono/200"
check "batches mixed" "$XLMR" batches --train "$FIX/train.tsv" --sampling mixed --batch 5 --steps 3 --seed 5
awk '$1 != "mixed" || NF != 6 { exit 1 } { for (i = 2; i <= NF; i++) { split($i, a, ":"); if (a[1] != a[2]) exit 1 } }' "$TMP/out" \
    && pass "mixed: same-language pairs" || fail "mixed: same-language pairs"
"$XLMR" batches --train "$FIX/train.tsv" --sampling cross --batch 8 --steps 20 --seed 9 >"$TMP/a.txt"
"$XLMR" batches --train "$FIX/train.tsv" --sampling cross --batch 8 --steps 20 --seed 9 >"$TMP/b.txt"
cmp -s "$TMP/a.txt" "$TMP/b.txt" && [ -s "$TMP/a.txt" ] && pass "same seed, same batches" || fail "same seed, same batches"

# ---- bad training files: one line naming file and line ----
printf 'g1\ten\tq\tp\ng2\ten\tq\n' >"$TMP/cols.tsv"
expect_error "wrong column count" '^xlmr: .*cols\.tsv:2: expected 4 or 5 tab-separated columns.*found 3$' \
    "$XLMR" batches --train "$TMP/cols.tsv" --batch 1 --steps 1
printf '# c\ng1\ten\tq\xfe\tp\n' >"$TMP/utf8.tsv"
expect_error "invalid UTF-8" '^xlmr: .*utf8\.tsv:2: invalid UTF-8$' "$XLMR" batches --train "$TMP/utf8.tsv" --batch 1 --steps 1
printf 'g1\ten\tq\tp\ng2\ten\t\tp\n' >"$TMP/empty.tsv"
expect_error "empty text" '^xlmr: .*empty\.tsv:2: empty query' "$XLMR" batches --train "$FIX/dev.tsv" "$TMP/empty.tsv" --batch 1 --steps 1
expect_error "missing file" '^xlmr: .*nope\.tsv: cannot open' "$XLMR" batches --train "$TMP/nope.tsv"
expect_error "mono batch too big" '^xlmr: language de has 16 groups, fewer than the batch size 20' \
    "$XLMR" batches --train "$FIX/dev.tsv" --sampling mono --batch 20
expect_error "bad sampling" '^xlmr: .*--sampling must be' "$XLMR" batches --train "$FIX/dev.tsv" --sampling x-y

# ---- xlmr train ----
"$XLMR" train --help >"$TMP/help.txt"
ok=1
for o in model train out sampling alpha batch steps epochs lr warmup weight-decay temperature pooling max-len-query \
    max-len-passage chunk dev eval-every save-every keep resume freeze-embeddings seed log query-prefix passage-prefix; do
    grep -q -- "--$o" "$TMP/help.txt" || { ok=0; echo "     --$o missing from --help"; }
done
[ $ok = 1 ] && pass "train --help documents every option" || fail "train --help documents every option"
expect_error "train: bad file" '^xlmr: .*cols\.tsv:2: expected 4 or 5' \
    "$XLMR" train --model "$TMP/none" --train "$TMP/cols.tsv" --out "$TMP/o1" --batch 1 --steps 1
expect_error "train: --steps and --epochs" '^xlmr: .*--steps or --epochs' \
    "$XLMR" train --model "$TMP/none" --train "$FIX/dev.tsv" --out "$TMP/o1" --steps 3 --epochs 1

if [ ! -f "$SPM" ]; then
    echo "note: $SPM missing: the training runs are skipped"
    summary train_cli
    exit $?
fi
"$XLMR" init --tokenizer "$SPM" --out "$TMP/m" --preset tiny --hidden 64 --heads 2 --ffn 128 --max-pos 130 --seed 3 \
    >/dev/null 2>&1 && pass "tiny model" || fail "tiny model"
ARGS=(--model "$TMP/m" --train "$FIX/hard.tsv" --batch 4 --max-len-query 24 --max-len-passage 48 --lr 1e-3 --quiet)

# a run killed at a random moment after its first checkpoint
"$XLMR" train "${ARGS[@]}" --out "$TMP/k" --steps 40 --save-every 2 --keep 2 --log "$TMP/k.jsonl" >/dev/null 2>"$TMP/k.err" &
pid=$!
checkpoints() { ls -d "$TMP"/k/checkpoint-* 2>/dev/null | grep -E '/checkpoint-[0-9]+$'; }
for _ in $(seq 1 400); do
    [ -n "$(checkpoints)" ] && break
    sleep 0.05
done
sleep "0.$((RANDOM % 10))"
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
last=$(checkpoints | sed 's/.*checkpoint-//' | sort -n | tail -1)
[ -n "$last" ] && pass "killed run left checkpoint-$last" || fail "killed run left no checkpoint"
printf 'hello world\n' >"$TMP/text.txt"
check "the checkpoint loads" "$XLMR" embed --model "$TMP/k/checkpoint-$last" <"$TMP/text.txt"
check "resume completes" "$XLMR" train "${ARGS[@]}" --out "$TMP/k" --steps 40 --save-every 2 --keep 2 --log "$TMP/k.jsonl" --resume
grep -q '"steps": 40' "$TMP/out" && pass "resumed to step 40" || fail "resumed to step 40: $(cat "$TMP/out")"
check "final loads" "$XLMR" embed --model "$TMP/k/final" <"$TMP/text.txt"
n_ck=$(ls -d "$TMP"/k/checkpoint-* | wc -l) # leftover .tmp folders count too: there must be none
[ "$n_ck" -eq 2 ] && [ -d "$TMP/k/checkpoint-40" ] && pass "--keep 2" || fail "--keep 2: $(ls "$TMP/k" | tr '\n' ' ')"
# the log reads as one run: steps 1..40 once each, in order
grep -o '^{"step": [0-9]*, "kind"' "$TMP/k.jsonl" | grep -o '[0-9]*' >"$TMP/steps.txt"
seq 1 40 | cmp -s - "$TMP/steps.txt" && pass "log: steps 1..40 once each" || fail "log: steps $(tr '\n' ' ' <"$TMP/steps.txt")"
expect_error "existing run needs --resume" '^xlmr: .*pass --resume' "$XLMR" train "${ARGS[@]}" --out "$TMP/k" --steps 40
expect_error "resume with other options" '^xlmr: .*another --batch' \
    "$XLMR" train "${ARGS[@]}" --out "$TMP/k" --steps 40 --batch 3 --resume
summary train_cli
