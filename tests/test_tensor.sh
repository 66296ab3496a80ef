#!/usr/bin/env bash
# tests/test_tensor.sh: `xlmr bench` on tiny shapes — every benchmark runs, ends
# with its figure line, and bad options give one clean error line.
. "$(dirname "$0")/lib.sh"

tiny="--layers 1 --hidden 32 --heads 2 --ffn 64 --vocab 100 --batch 2 --seq 8 --steps 1"
# last_line_matches PATTERN COMMAND...: runs it; its last stdout line must match
last_line_matches() { local pat=$1; shift; "$@" >"$TMP/o" && tail -1 "$TMP/o" | grep -qE "$pat"; }

check "help lists the options" bash -c "'$XLMR' bench --help | grep -q -- '--threads' && '$XLMR' bench --help | grep -q -- '--bf16'"
check "gemm ends in GFLOPS" last_line_matches '^gemm total: [0-9.]+ GFLOPS$' "$XLMR" bench gemm $tiny
check "gemm times attention's per-head products" bash -c "'$XLMR' bench gemm $tiny | grep -cE '^attention T +(64|128|256) .* us per call +[0-9.]+ GFLOPS$' | grep -qx 9"
check "gemm --bf16 --threads 1" last_line_matches ' GFLOPS$' "$XLMR" bench gemm $tiny --bf16 --threads 1
check "gemm --bf16 reports a speed-up" bash -c "'$XLMR' bench gemm $tiny --bf16 | grep -qE '^bf16 total: [0-9.]+ GFLOPS \\([0-9.]+x fp32\\)$'"
check "gemm --bf16-engine emulated" bash -c "'$XLMR' bench gemm $tiny --bf16 --bf16-engine emulated | grep -qE '^bench gemm: .* bf16 emulated,'"
check "forward ends in tokens/s" last_line_matches '^forward: [0-9]+ tokens/s$' "$XLMR" bench forward $tiny
check "forward --bf16 compares with fp32" bash -c "'$XLMR' bench forward $tiny --bf16 | grep -qE '^bf16 vs fp32: max \|emb diff\| [0-9.]+e-0[2-9], min cosine (0\.99|1\.0)'"
check "train ends in tokens/s" last_line_matches '^train: [0-9]+ tokens/s$' "$XLMR" bench train $tiny
check "train --bf16 loss is finite" bash -c "'$XLMR' bench train $tiny --bf16 --steps 2 | grep -qE '^step 2: loss [0-9]+\\.[0-9]+'"
check "forward --size small --layers 1" last_line_matches 'tokens/s$' "$XLMR" bench forward --size small --layers 1 --batch 2 --seq 16 --steps 1

mem="--layers 1 --hidden 32 --heads 2 --ffn 64 --vocab 100 --batch 5 --chunk 2 --seq-query 8 --seq-passage 12"
check "memory ends in GB peak RSS" last_line_matches '^memory: [0-9.]+ GB peak RSS$' "$XLMR" bench memory $mem
check "memory runs the step (loss, clipping)" bash -c "'$XLMR' bench memory $mem --threads 1 | grep -qE '^step: loss [0-9]+\.[0-9]+, gradient norm [0-9.e+-]+, '"
# a vocabulary-heavy model (8M parameters, 32 MB per copy): --dense touches the
# gradients and both moments (96 MB more), the lazy run only the rows it uses
peak() { "$XLMR" bench memory --layers 1 --hidden 32 --heads 2 --ffn 64 --vocab 250002 --batch 2 --chunk 2 --seq-query 8 --seq-passage 8 --threads 1 "$@" | sed -n 's/^memory: \([0-9.]*\) GB peak RSS$/\1/p'; }
lazy=$(peak) dense=$(peak --dense)
check "memory --dense is 0.09 GB above the lazy peak ($lazy -> $dense GB)" awk -v a="$lazy" -v b="$dense" 'BEGIN { exit !(a > 0 && b - a > 0.09 && b - a < 0.2) }'

FIX=$ROOT/tests/fixtures/tokenizer
if [ -f "$FIX/bf.model" ] && [ -f "$FIX/text.txt" ]; then
    check "tokenize ends in MB/s" last_line_matches '^tokenize: [0-9.]+ MB/s$' "$XLMR" bench tokenize --model "$FIX/bf.model" "$FIX/text.txt" --steps 1
    expect_error "tokenize: missing file" 'xlmr: .*nope' "$XLMR" bench tokenize --model "$FIX/bf.model" "$TMP/nope"
else
    echo "note: tests/fixtures/tokenizer/{bf.model,text.txt} missing, tokenize bench not tested"
fi

expect_error "no benchmark named" '^xlmr: bench: which benchmark' "$XLMR" bench
expect_error "unknown benchmark" "^xlmr: bench: unknown benchmark 'fast'" "$XLMR" bench fast
expect_error "unknown option" '^xlmr: bench: unknown option' "$XLMR" bench gemm --fast
expect_error "bad size preset" '^xlmr: bench: --size must be small, base or large' "$XLMR" bench gemm --size huge
expect_error "memory: passage too long" '^xlmr: bench memory: --seq-query and --seq-passage must be within' "$XLMR" bench memory $mem --seq-passage 600
expect_error "memory: negative chunk" '^xlmr: bench: sizes must be positive' "$XLMR" bench memory $mem --chunk -1
expect_error "negative size" '^xlmr: bench: sizes must be positive' "$XLMR" bench gemm --batch -2
expect_error "tokenize needs --model" '^xlmr: bench tokenize: --model is required' "$XLMR" bench tokenize x.txt
expect_error "gemm takes no file" '^xlmr: bench gemm: takes no file' "$XLMR" bench gemm x.txt
expect_error "heads must divide hidden" '^xlmr: ' "$XLMR" bench forward $tiny --heads 3
summary tensor-cli
