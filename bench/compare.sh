#!/usr/bin/env bash
# bench/compare.sh: the same benchmarks in `xlmr bench` and in PyTorch
# (bench/torch_bench.py), one after the other, with the ratio xlmr / torch.
#
#   bench/compare.sh [--quick] [--fp32] [--no-amx] [--threads N] [--steps N] [--only gemm|model|tokenize]
#     --quick      small shapes only (gemm at 512 tokens, train/forward small)
#     --fp32       no BF16 rows (by default every GEMM and model figure is also
#                  taken in BF16: xlmr --bf16 against torch's own BF16, a
#                  bfloat16 model for forward, CPU autocast for training)
#     --no-amx     on a CPU with AMX, BF16 as on one without it, on both sides:
#                  xlmr --bf16-engine avx512-bf16, torch with ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16
#     --threads N  threads for both sides (default 2)
#     --steps N    timed runs per measurement, best kept, both sides (default 3;
#                  more when the machine is shared: the best run is the least disturbed)
#     --only X     one part of the comparison
# Environment: XLMR (binary, default ./xlmr), PYTHON (default /usr/bin/python3),
#   TOK_MODEL (SentencePiece model for tokenize, default tokenizer/xlmrc.model),
#   TOK_TEXT (text file; default the NTREX sentences of the data folder),
#   LOG (where both sides' full output goes, default $TMPDIR/xlmr-compare.log).
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset for the torch runs only (they
# select slower OpenBLAS kernels); xlmr does not use OpenBLAS.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
XLMR=${XLMR:-$ROOT/xlmr}
PY=${PYTHON:-/usr/bin/python3}
LOG=${LOG:-${TMPDIR:-/tmp}/xlmr-compare.log}
THREADS=2
QUICK=0
BF16=1
STEPS=3
ONLY=all
XENGINE=()
TENV=()
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1 ;;
    --fp32) BF16=0 ;;
    --no-amx) XENGINE=(--bf16-engine avx512-bf16); TENV=(ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16) ;;
    --threads) THREADS=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
[ -x "$XLMR" ] || { echo "compare.sh: $XLMR not built (run make)" >&2; exit 1; }

TORCH=1
if ! "$PY" -c 'import torch' 2>/dev/null; then
    TORCH=0
    echo "compare.sh: PyTorch is NOT installed for $PY: only xlmr's figures are shown, no ratios"
fi
: >"$LOG"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)${XENGINE[@]+", no AMX (both sides)"}" | tee -a "$LOG"

xl() { echo "\$ xlmr bench $*" >>"$LOG"; "$XLMR" bench "$@" ${XENGINE[@]+"${XENGINE[@]}"} --threads "$THREADS" --steps "$STEPS" 2>&1 | tee -a "$LOG"; }
th() {
    echo "\$ torch_bench.py $*" >>"$LOG"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${TENV[@]+"${TENV[@]}"} "$PY" bench/torch_bench.py "$@" --threads "$THREADS" --steps "$STEPS" 2>&1 |
        tee -a "$LOG"
}
figure() { tail -1 | awk '{print $(NF-1)}'; } # "... N unit" -> N
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
row() { printf '%-52s %14s %14s %8s\n' "$1" "$2" "$3" "$4"; }

if [ "$QUICK" = 1 ]; then
    GEMM="--batch 4 --seq 128"; FWD="--size small"; TRAINS="small"
else
    GEMM="--batch 16 --seq 128"; FWD="--size base --batch 16 --seq 128"; TRAINS="small base"
fi

# --- gemm: per shape, joined on (op, M, N, K) ---
if [ "$ONLY" = all ] || [ "$ONLY" = gemm ]; then
xg=$(xl gemm $GEMM --bf16)
tg=""
tgb=""
[ "$TORCH" = 1 ] && tg=$(th gemm $GEMM)
[ "$TORCH" = 1 ] && [ "$BF16" = 1 ] && tgb=$(th gemm $GEMM --bf16)
echo
echo "== GEMM (GFLOPS, $THREADS threads; xlmr fp32 and bf16, torch.mm fp32)"
echo "(cpu: GFLOPS per second of process CPU time, all threads; with 1 thread the undisturbed speed on a shared machine)"
printf '%-20s %2s %6s %6s %6s %8s %8s %6s %8s %8s %6s %9s %7s %9s\n' shape op M N K xlmr torch ratio \
    "xlmr-cpu" "torch-cpu" ratio "xlmr-bf16" "bf16/fp32" "bf16 err"
# xlmr lines: NAME... op M N K ms GF cpuGF bf16ms bf16GF speedup err; torch: NAME... op M N K ms GF cpuGF
echo "$xg" | awk '$0 ~ / [NT][NT] +[0-9]+ +[0-9]+ +[0-9]+ / && NF >= 11 {
        n = NF - 11; name = $1; for (i = 2; i <= n; i++) name = name " " $i
        print name "|" $(n+1) "|" $(n+2) "|" $(n+3) "|" $(n+4) "|" $(n+6) "|" $(n+7) "|" $(n+9) "|" $(n+10) "|" $(n+11) }' >"$LOG.x"
echo "$tg" | awk '$0 ~ / [NT][NT] +[0-9]+ +[0-9]+ +[0-9]+ / { print $(NF-6) "|" $(NF-5) "|" $(NF-4) "|" $(NF-3) "|" $(NF-1) "|" $NF }' >"$LOG.t"
while IFS='|' read -r name op M N K gf cgf bgf sp err; do
    tl=$(awk -F'|' -v o="$op" -v m="$M" -v n="$N" -v k="$K" '$1==o && $2==m && $3==n && $4==k {print $5 "|" $6; exit}' "$LOG.t")
    tgf=${tl%|*}
    tcgf=${tl#*|}
    printf '%-20s %2s %6s %6s %6s %8s %8s %6s %8s %8s %6s %9s %7s %9s\n' "$name" "$op" "$M" "$N" "$K" "$gf" "${tgf:--}" \
        "$(ratio "$gf" "${tgf:-0}")" "$cgf" "${tcgf:--}" "$(ratio "$cgf" "${tcgf:-0}")" "$bgf" "$sp" "$err"
done <"$LOG.x"
rm -f "$LOG.x" "$LOG.t"
total() { grep "^$1 total" | sed 's/ GFLOPS.*//' | awk '{print $NF}'; } # "gemm total: N GFLOPS ..." -> N
row "gemm total fp32 (GFLOPS)" "$(echo "$xg" | total gemm)" "$(echo "$tg" | total gemm)" \
    "$(ratio "$(echo "$xg" | total gemm)" "$(echo "$tg" | total gemm)")"
[ "$BF16" = 1 ] && row "gemm total bf16 (GFLOPS; torch.mm on bfloat16)" "$(echo "$xg" | total bf16)" \
    "$(echo "$tgb" | total gemm)" "$(ratio "$(echo "$xg" | total bf16)" "$(echo "$tgb" | total gemm)")"

fi

# --- model-level ---
if [ "$ONLY" = all ] || [ "$ONLY" = model ]; then
echo
echo "== Model ($THREADS threads)"
row "benchmark" "xlmr" "torch" "ratio"
model_row() { # label unit args...
    local label=$1; shift
    local x t=""
    x=$(xl "$@" | figure)
    [ "$TORCH" = 1 ] && t=$(th "$@" | figure)
    row "$label" "$x" "${t:--}" "$(ratio "$x" "${t:-0}")"
}
model_row "forward $FWD (tokens/s)" forward $FWD
for s in $TRAINS; do model_row "train --size $s (tokens/s)" train --size "$s"; done
if [ "$BF16" = 1 ]; then
    model_row "forward $FWD --bf16 (tokens/s)" forward $FWD --bf16
    for s in $TRAINS; do model_row "train --size $s --bf16 (tokens/s)" train --size "$s" --bf16; done
fi
fi

# --- tokenize: xlmr's tokenizer vs sentencepiece's own (C++ behind python) ---
if [ "$ONLY" = all ] || [ "$ONLY" = tokenize ]; then
echo
echo "== Tokenize ($THREADS threads)"
row "benchmark" "xlmr" "sentencepiece" "ratio"
TOK_MODEL=${TOK_MODEL:-$ROOT/tokenizer/xlmrc.model}
if [ -z "${TOK_TEXT:-}" ]; then
    for d in "${XLMR_DATA:-}" "$ROOT/data" "$ROOT/../shared/data"; do
        if [ -n "$d" ] && [ -d "$d/parallel/ntrex" ]; then
            TOK_TEXT=$(mktemp "${TMPDIR:-/tmp}/xlmr-ntrex.XXXXXX")
            cat "$d"/parallel/ntrex/*.txt >"$TOK_TEXT"
            trap 'rm -f "$TOK_TEXT"' EXIT
            break
        fi
    done
fi
if [ -f "$TOK_MODEL" ] && [ -n "${TOK_TEXT:-}" ] && [ -f "$TOK_TEXT" ]; then
    x1=$(xl tokenize --model "$TOK_MODEL" "$TOK_TEXT")
    t1=""
    "$PY" -c 'import sentencepiece' 2>/dev/null && t1=$(th tokenize --model "$TOK_MODEL" "$TOK_TEXT")
    [ -z "$t1" ] && echo "(sentencepiece is NOT installed for $PY: no tokenize ratio)"
    xs=$(echo "$x1" | grep '^1 thread' | awk '{print $(NF-1)}')
    ts=$(echo "$t1" | grep '^1 thread' | awk '{print $(NF-1)}')
    row "tokenize 1 thread (MB/s)" "$xs" "${ts:--}" "$(ratio "$xs" "${ts:-0}")"
    xa=$(echo "$x1" | figure)
    ta=$(echo "$t1" | figure)
    row "tokenize $THREADS threads (MB/s)" "$xa" "${ta:--}" "$(ratio "$xa" "${ta:-0}")"
else
    echo "(tokenize skipped: no model at $TOK_MODEL or no text; set TOK_MODEL / TOK_TEXT)"
fi
fi
echo
echo "full output: $LOG"
