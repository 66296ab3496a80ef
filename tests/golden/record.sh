#!/usr/bin/env bash
# tests/golden/record.sh OUTDIR: the outputs that the redesign of the core must not
# change, written by the binary in $XLMR (default ./xlmr) at 1 thread:
#   emb_*.txt    embeddings of the committed reference model folders (fp32 and --bf16)
#   train.jsonl  per-step losses of a short seeded training run with dropout and dev
#   trained.txt  embeddings of that run's final model
# tests/test_golden.sh runs it again and compares with the committed copy in
# tests/golden/ within 1e-4 (recorded before the redesign, commit 59d9703).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
XLMR=${XLMR:-$ROOT/xlmr}
OUT=$1
mkdir -p "$OUT"
export OMP_NUM_THREADS=1
for m in xlmr_a xlmr_a_f16 xlmr_b; do
    ids=$ROOT/tests/ref/${m%_f16}/ids.txt
    "$XLMR" embed --model "$ROOT/tests/ref/$m" --ids <"$ids" >"$OUT/emb_${m}_mean.txt"
    "$XLMR" embed --model "$ROOT/tests/ref/$m" --ids --pooling cls <"$ids" >"$OUT/emb_${m}_cls.txt"
    "$XLMR" embed --model "$ROOT/tests/ref/$m" --ids --bf16 <"$ids" >"$OUT/emb_${m}_bf16.txt"
done
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
FIX=$ROOT/tests/fixtures/train
"$XLMR" init --tokenizer "$ROOT/tokenizer/xlmrc.model" --out "$W/m" --preset tiny --hidden 64 --heads 2 \
    --ffn 128 --max-pos 130 --seed 3 >/dev/null
"$XLMR" train --model "$W/m" --train "$FIX/hard.tsv" --dev "$FIX/dev.tsv" --eval-every 4 --out "$W/o" \
    --batch 8 --steps 8 --max-len-query 24 --max-len-passage 48 --lr 1e-3 --chunk 3 --seed 7 --quiet \
    --log "$W/log.jsonl" >/dev/null
# wall-clock fields differ from run to run: keep the computed ones
sed -E 's/, *"(tokens_per_s|elapsed_s|time_s|wall_s|seconds)": *[-0-9.eE+]+//g' "$W/log.jsonl" >"$OUT/train.jsonl"
cut -f3 "$FIX/dev.tsv" | grep -v '^#' | head -12 | "$XLMR" embed --model "$W/o/final" >"$OUT/trained.txt"
