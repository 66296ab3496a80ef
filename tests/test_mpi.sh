#!/usr/bin/env bash
# tests/test_mpi.sh: data-parallel runs of ./xlmr-mpi (make mpi) under mpirun
# against one process (./xlmr): training and pretraining with 2 ranks give the
# per-step losses of one process (within 1e-5) and its final weights (within 1% of how far
# training moved them), eval and embed give the
# same figures and vectors, a run resumes across a change of the rank count,
# and a rank killed mid-run stops the job and leaves its last checkpoint whole.
# Skipped with a note when mpirun or ./xlmr-mpi is missing; REQUIRE_MPI=1 (CI)
# makes that a failure.
. "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# containers often forbid the cross-memory attach of Open MPI's shared-memory transport
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
XMPI=${XLMR_MPI:-$ROOT/xlmr-mpi}
SPM=$ROOT/tokenizer/xlmrc.model
if ! [ "$XLMR" -ef "$ROOT/xlmr" ]; then # the sanitizer and aarch64 suites: ./xlmr-mpi is the native build
    echo "note: XLMR=$XLMR is not ./xlmr, the build xlmr-mpi is compared with: the MPI tests are skipped"
    summary mpi
    exit $?
fi
if ! command -v mpirun >/dev/null || [ ! -x "$XMPI" ] || [ ! -f "$SPM" ]; then
    echo "note: mpirun, $XMPI (make mpi) or $SPM missing: the MPI tests are skipped"
    [ -n "${REQUIRE_MPI:-}" ] && fail "REQUIRE_MPI set but MPI tests cannot run"
    summary mpi
    exit $?
fi
MPIRUN=(mpirun --oversubscribe -np)
[ "$(id -u)" = 0 ] && MPIRUN=(mpirun --allow-run-as-root --oversubscribe -np)
mpi() { local np=$1; shift; "${MPIRUN[@]}" "$np" "$XMPI" "$@"; }

# max |a - b| over the float32 words of two files of the same layout (the
# safetensors headers are the same bytes, so they compare equal); words as hex
# (od is fast at that), only the differing ones decoded
maxdiff() {
    paste -d' ' <(od -An -v -tx4 -w32 "$1") <(od -An -v -tx4 -w32 "$2") | awk '
        function f32(h,   v, i, e, m, x) {
            v = 0
            for (i = 1; i <= 8; i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1
            e = int(v / 8388608) % 256; m = v % 8388608
            if (e == 255) return 1e30
            x = e ? (1 + m / 8388608) * 2 ^ (e - 127) : m * 2 ^ -149
            return v >= 2147483648 ? -x : x
        }
        { n = NF / 2; for (i = 1; i <= n; i++) if ($i != $(i + n)) { d = f32($i) - f32($(i + n)); if (d < 0) d = -d; if (d > m) m = d } }
        END { printf "%g\n", m + 0 }'
}
within() { awk -v d="$1" -v t="$2" 'BEGIN { exit !(d + 0 <= t + 0) }'; }
# the per-step losses of two logs, max |a - b| (same steps in both)
loss_diff() {
    paste <(grep -o '"loss": [^,]*' "$1" | cut -d' ' -f2) <(grep -o '"loss": [^,]*' "$2" | cut -d' ' -f2) |
        awk 'NF != 2 { bad = 1 } { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++ }
             END { if (bad || n == 0) print 1e9; else printf "%g\n", m }'
}
# NAME DIR1 DIR2 START: the two runs' weights agree to 1% of the largest move
# training made from START (the initial model, or for pretraining, whose initial
# model has no masked-LM head yet, the checkpoint of step 3). Not to a fixed
# 1e-5: the ranks sum the chunks' gradients in another order than one process, and Adam divides each update by
# the gradient's own size, so a weight whose gradient is near zero turns a
# rounding difference into a visible one (1.3e-5 of a 4e-3 move with
# -march=sapphirerapids, 2e-6 with znver4). A lost or doubled chunk moves
# weights by about as much as training does.
same_model() {
    local a=$2/model.safetensors b=$3/model.safetensors s=$4/model.safetensors
    local n; n=$(($(od -An -tu8 -N8 "$a") + 8))
    if ! cmp -s <(head -c "$n" "$a") <(head -c "$n" "$b") || ! cmp -s <(head -c "$n" "$a") <(head -c "$n" "$s"); then
        fail "$1 (the safetensors headers differ)"; return
    fi
    local d m; d=$(maxdiff "$a" "$b"); m=$(maxdiff "$a" "$s")
    awk -v d="$d" -v m="$m" 'BEGIN { exit !(m > 0 && d <= 0.01 * m) }' &&
        pass "$1 (weights max diff $d, training moved them up to $m)" ||
        fail "$1 (weights max diff $d, over 1% of the largest move, $m)"
}

"$ROOT/xlmr" init --tokenizer "$SPM" --out "$TMP/m" --preset tiny --hidden 64 --heads 2 --ffn 128 --max-pos 130 \
    --seed 3 >/dev/null 2>&1 && pass "tiny model" || fail "tiny model"
FIX=$ROOT/tests/fixtures/train
# chunk 2 and batch 4: 2 query and 4 passage chunks (with hard negatives) to spread over the ranks
ARGS=(--model "$TMP/m" --train "$FIX/hard.tsv" --batch 4 --chunk 2 --max-len-query 24 --max-len-passage 48
      --lr 1e-3 --steps 6 --quiet --dev "$FIX/dev.tsv" --eval-every 3)

# ---- train: 2 ranks = 1 process ----
check "train, 1 process" "$XLMR" train "${ARGS[@]}" --out "$TMP/p1" --log "$TMP/p1.jsonl"
check "train, 2 ranks" mpi 2 train "${ARGS[@]}" --out "$TMP/p2" --log "$TMP/p2.jsonl"
[ "$(grep -c '"steps": 6' "$TMP/out")" = 1 ] && pass "one summary for the job" || fail "one summary: $(cat "$TMP/out")"
d=$(loss_diff "$TMP/p1.jsonl" "$TMP/p2.jsonl")
within "$d" 1e-5 && pass "per-step losses (max diff $d)" || fail "per-step losses (max diff $d)"
[ "$(grep -c dev_map "$TMP/p2.jsonl")" = 3 ] && pass "dev evaluations logged once" || fail "dev evaluations in the log"
same_model "final weights" "$TMP/p1/final" "$TMP/p2/final" "$TMP/m"
[ -d "$TMP/p2/best" ] && pass "best model written" || fail "best model written"

# ---- resume with another rank count: a run stopped after checkpoint-3 ----
stopped() { # SRC DST: DST = SRC as a run killed after its checkpoint-3
    cp -r "$1" "$2" && rm -rf "$2/checkpoint-6" "$2/final" "$2/best"
}
ARGS_R=("${ARGS[@]}" --save-every 3 --keep 2)
"$XLMR" train "${ARGS_R[@]}" --out "$TMP/r1" >/dev/null 2>&1
stopped "$TMP/r1" "$TMP/r1to2"
check "resume 1 -> 2 ranks" mpi 2 train "${ARGS_R[@]}" --out "$TMP/r1to2" --resume
same_model "resumed 1 -> 2 = uninterrupted" "$TMP/r1/final" "$TMP/r1to2/final" "$TMP/m"
mpi 2 train "${ARGS_R[@]}" --out "$TMP/r2" >/dev/null 2>&1
stopped "$TMP/r2" "$TMP/r2to1"
check "resume 2 ranks -> 1 process" "$XLMR" train "${ARGS_R[@]}" --out "$TMP/r2to1" --resume
same_model "resumed 2 -> 1 = uninterrupted" "$TMP/r1/final" "$TMP/r2to1/final" "$TMP/m"

# ---- pretrain: 2 ranks = 1 process, and resume across a change of the rank count ----
# the per-step numbers of two logs (losses, lr, grad norms, held-out losses;
# timings aside), max relative difference
rel_diff() {
    vals() { sed 's/, "tokens_per_s.*//' "$1" | grep -o '": -*[0-9][0-9.e+-]*' | cut -c4-; }
    paste <(vals "$1") <(vals "$2") | awk 'NF != 2 { bad = 1 }
        { d = $1 - $2; if (d < 0) d = -d; a = $1 < 0 ? -$1 : $1; if (a > 0) d /= a; if (d > m) m = d; n++ }
        END { if (bad || n == 0) print 1e9; else printf "%g\n", m }'
}
REF=$ROOT/tests/ref/mlm_fill
"$ROOT/xlmr" init --tokenizer "$REF/sentencepiece.bpe.model" --preset nano --max-pos 40 --out "$TMP/pm" >/dev/null 2>&1
sed -n 1,60p "$ROOT/README.md" >"$TMP/en.txt"
sed -n 60,90p "$ROOT/README.md" >"$TMP/de.txt"
printf 'g1\ten\tHello world\ng1\tde\tHallo Welt\ng2\ten\tThe model\ng2\tde\tDas Modell\n' >"$TMP/par.tsv"
# batch 8, chunk 3: 3 chunks for 2 ranks (one rank runs two), evaluations at steps 3 and 6
PARGS=(pretrain --model "$TMP/pm" --text "$TMP/en.txt" "de=$TMP/de.txt" --parallel "$TMP/par.tsv" --steps 6 --batch 8
       --max-len 32 --chunk 3 --save-every 3 --eval-every 3 --quiet)
check "pretrain, 1 process" "$XLMR" "${PARGS[@]}" --out "$TMP/q1" --log "$TMP/q1.jsonl"
check "pretrain, 2 ranks" mpi 2 "${PARGS[@]}" --out "$TMP/q2" --log "$TMP/q2.jsonl"
[ "$(grep -c '"steps": 6' "$TMP/out")" = 1 ] && pass "pretrain: one summary for the job" ||
    fail "pretrain: one summary: $(cat "$TMP/out")"
d=$(rel_diff "$TMP/q1.jsonl" "$TMP/q2.jsonl")
[ "$(grep -c heldout_loss "$TMP/q2.jsonl")" = 2 ] && within "$d" 1e-5 &&
    pass "pretrain: per-step and held-out losses (max rel diff $d)" || fail "pretrain: the logs (max rel diff $d)"
same_model "pretrain: final weights" "$TMP/q1/final" "$TMP/q2/final" "$TMP/q1/checkpoint-3"
# 4 ranks for 3 chunks: rank 3 touches no word row, the others all of them (the tied decoder)
check "pretrain, 4 ranks (one without a chunk)" mpi 4 "${PARGS[@]}" --out "$TMP/q4" --log "$TMP/q4.jsonl"
d=$(rel_diff "$TMP/q1.jsonl" "$TMP/q4.jsonl")
within "$d" 1e-5 && pass "pretrain, 4 ranks: the log (max rel diff $d)" || fail "pretrain, 4 ranks: the log (max rel diff $d)"
same_model "pretrain, 4 ranks: final weights" "$TMP/q1/final" "$TMP/q4/final" "$TMP/q1/checkpoint-3"
pstopped() { # SRC DST: DST = SRC (run and log) as a run killed after its checkpoint-3
    cp -r "$1" "$2" && cp "$1.jsonl" "$2.jsonl" && rm -rf "$2/checkpoint-6" "$2/final"
}
pstopped "$TMP/q1" "$TMP/q1to2"
check "pretrain: resume 1 -> 2 ranks" mpi 2 "${PARGS[@]}" --out "$TMP/q1to2" --log "$TMP/q1to2.jsonl" --resume
same_model "pretrain: resumed 1 -> 2 = uninterrupted" "$TMP/q1/final" "$TMP/q1to2/final" "$TMP/q1/checkpoint-3"
d=$(rel_diff "$TMP/q1.jsonl" "$TMP/q1to2.jsonl")
within "$d" 1e-5 && pass "pretrain: resumed 1 -> 2, the log (max rel diff $d)" || fail "pretrain: resumed log (max rel diff $d)"
pstopped "$TMP/q2" "$TMP/q2to1"
check "pretrain: resume 2 ranks -> 1 process" "$XLMR" "${PARGS[@]}" --out "$TMP/q2to1" --log "$TMP/q2to1.jsonl" --resume
same_model "pretrain: resumed 2 -> 1 = uninterrupted" "$TMP/q1/final" "$TMP/q2to1/final" "$TMP/q1/checkpoint-3"

# ---- a rank killed mid-run: the job stops, the last checkpoint is whole ----
# The whole job takes about a second, so rank 1 is found as soon as it starts
# and killed the moment checkpoint-4 appears; where the machine still finishes
# first (the kill came too late: nothing was tested), it is tried again.
KARGS=(--model "$TMP/m" --train "$FIX/hard.tsv" --batch 4 --chunk 2 --max-len-query 24 --max-len-passage 48
       --lr 1e-3 --steps 60 --save-every 2 --keep 2 --quiet)
rank1() { # the pid of rank 1 of this test's job, or nothing
    local p env
    for p in $(pgrep -f "xlmr-mpi train" || true); do
        env=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null) || continue
        echo "$env" | grep -qx "XLMR_TEST_TAG=$TMP" && echo "$env" | grep -qx 'OMPI_COMM_WORLD_RANK=1' && echo "$p"
    done
}
for try in 1 2 3; do
    rm -rf "$TMP/k"
    XLMR_TEST_TAG=$TMP mpi 2 train "${KARGS[@]}" --out "$TMP/k" >/dev/null 2>"$TMP/k.err" &
    job=$!
    victim=""
    for _ in $(seq 500); do [ -n "$victim" ] || victim=$(rank1); [ -d "$TMP/k/checkpoint-4" ] && break; sleep 0.02; done
    [ -n "$victim" ] || victim=$(rank1)
    [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
    wait $job; rc=$?
    [ -d "$TMP/k/final" ] || break # killed before the end
    echo "note: try $try: the job finished before rank 1 was killed; again"
done
[ -n "$victim" ] && [ "$rc" -ne 0 ] && grep -q "signal 9" "$TMP/k.err" &&
    pass "rank 1 killed: the job stops (exit $rc)" || fail "rank 1 killed (victim '$victim', exit $rc)"
ls -d "$TMP"/k/checkpoint-* >/dev/null 2>&1 && ! ls -d "$TMP"/k/*.tmp >/dev/null 2>&1 && [ ! -d "$TMP/k/final" ] &&
    pass "checkpoints left whole" || fail "checkpoints after the kill: $(ls "$TMP/k" | tr '\n' ' ')"
check "the killed run resumes" mpi 2 train "${KARGS[@]}" --out "$TMP/k" --resume
[ -d "$TMP/k/final" ] && pass "resumed run finishes" || fail "resumed run finishes"

# ---- ranks that do not read the same folders: a clear error before any step ----
# (MPMD: each rank its own arguments, as machines without a shared folder would see)
SARGS=(train --model "$TMP/m" --train "$FIX/hard.tsv" --batch 4 --max-len-query 24 --max-len-passage 48 --quiet)
"$XLMR" "${SARGS[@]}" --steps 2 --out "$TMP/sa" >/dev/null 2>&1
"${MPIRUN[@]}" 1 "$XMPI" "${SARGS[@]}" --steps 2 --out "$TMP/sa" --resume : -np 1 "$XMPI" "${SARGS[@]}" --steps 2 \
    --out "$TMP/sb" --resume >/dev/null 2>"$TMP/s.err"
rc=$?
[ $rc -ne 0 ] && grep -q 'the ranks see different checkpoints (rank 1: none): --out must be a folder all ranks share' \
    "$TMP/s.err" && pass "ranks with different --out folders: error" || fail "different --out folders (exit $rc)"
"$ROOT/xlmr" init --tokenizer "$SPM" --out "$TMP/m2" --preset tiny --hidden 64 --heads 2 --ffn 128 --max-pos 130 \
    --seed 4 >/dev/null 2>&1
"${MPIRUN[@]}" 1 "$XMPI" "${SARGS[@]}" --steps 2 --out "$TMP/sc" : -np 1 "$XMPI" "${SARGS[@]}" --steps 2 \
    --model "$TMP/m2" --out "$TMP/sc" >/dev/null 2>"$TMP/s.err"
rc=$?
[ $rc -ne 0 ] && grep -q 'the ranks loaded different weights' "$TMP/s.err" && [ ! -d "$TMP/sc/final" ] &&
    pass "ranks with different models: error" || fail "different models (exit $rc)"

# ---- eval and embed: the same figures, the same vectors ----
EV=(eval --model "$TMP/p1/final" --dataset xquad-r --data "$ROOT/tests/fixtures/eval/synth" --langs ar,de,en,es --batch 3)
"$XLMR" "${EV[@]}" --json "$TMP/e1.json" >"$TMP/e1.txt" 2>/dev/null
check "eval, 2 ranks" mpi 2 "${EV[@]}" --json "$TMP/e2.json"
cmp -s "$TMP/e1.json" "$TMP/e2.json" && [ -s "$TMP/e1.json" ] && pass "eval: identical figures" || fail "eval figures differ"
grep -v '^[0-9]* questions' "$TMP/e1.txt" >"$TMP/e1.tab"
grep -v '^[0-9]* questions' "$TMP/out" >"$TMP/e2.tab"
cmp -s "$TMP/e1.tab" "$TMP/e2.tab" && [ -s "$TMP/e2.tab" ] && pass "eval: one table, rank 0's" || fail "eval table"
printf 'one line\nthe second line, longer than the first\n3\nfour four\nfive\n' >"$TMP/lines.txt"
"$XLMR" embed --model "$TMP/m" --batch 2 <"$TMP/lines.txt" >"$TMP/v1.txt"
mpi 2 embed --model "$TMP/m" --batch 2 <"$TMP/lines.txt" >"$TMP/v2.txt" 2>/dev/null
cmp -s "$TMP/v1.txt" "$TMP/v2.txt" && [ "$(wc -l <"$TMP/v2.txt")" = 5 ] && pass "embed: identical vectors" ||
    fail "embed vectors differ"

# ---- experiment: the runs spread over 2 ranks, the results of one process ----
DATA=""
for d in "${XLMR_DATA:-}" "$ROOT/data" "$ROOT/../shared/data"; do
    if [ -n "$d" ] && [ -d "$d/xquad-r" ] && [ -d "$d/mlqa-r" ]; then DATA=$d; break; fi
done
if [ -z "$DATA" ]; then
    echo "note: no data (set XLMR_DATA or run make data): the experiment test is skipped"
else
    X=(experiment --quick --sizes nano --sampling mono,cross --steps 3 --data "$DATA")
    (cd "$ROOT" && "$XLMR" "${X[@]}" --out "$TMP/x1" >/dev/null 2>&1)
    check "experiment, 2 ranks" sh -c "cd '$ROOT' && $(printf '%q ' "${MPIRUN[@]}") 2 '$XMPI' $(printf '%q ' "${X[@]}") --out '$TMP/x2'"
    untimed() { sed -E 's/"[a-z_]*seconds": [0-9.e+-]+//g; s/[^;]* of training in all//; /^Generated by/d' "$1"; }
    cmp -s <(untimed "$TMP/x1/results.json") <(untimed "$TMP/x2/results.json") && [ -s "$TMP/x2/results.json" ] &&
        pass "experiment: results.json of one process (timings aside)" || fail "experiment: results.json differs"
    cmp -s <(untimed "$TMP/x1/report.md") <(untimed "$TMP/x2/report.md") && pass "experiment: the same report" ||
        fail "experiment: report.md differs: $(diff <(untimed "$TMP/x1/report.md") <(untimed "$TMP/x2/report.md") | head -4 | tr '\n' '|')"
fi
summary mpi
