#!/usr/bin/env bash
# tests/test_eval.sh: `xlmr pairs` and `xlmr eval` from the command line —
# the TSV on the tiny fixtures, and one-line errors naming the file on bad data.
. "$(dirname "$0")/lib.sh"
FIX=$ROOT/tests/fixtures/eval
T=$(printf '\t')

# pairs on the hand fixture: every question, its answer's sentence
check "pairs hand" "$XLMR" pairs --dataset xquad-r --data "$FIX/hand" --langs en,de --split all --out "$TMP/p.tsv"
cat >"$TMP/want.tsv" <<EOF
a${T}en${T}What is alpha?${T}Alpha one.
b${T}en${T}What is gamma?${T}Gamma three.
c${T}en${T}Gamma again?${T}Gamma three.
a${T}de${T}Was ist älpha?${T}Älpha eins.
b${T}de${T}Was ist gämma?${T}Gämma drei.
EOF
check "pairs hand: rows" diff <(grep -v '^#' "$TMP/p.tsv") "$TMP/want.tsv"
check "pairs hand: comment header" grep -q '^# xlmr pairs: dataset=xquad-r split=all' "$TMP/p.tsv"
check "pairs context" "$XLMR" pairs --dataset xquad-r --data "$FIX/hand" --langs en --split all --candidate context --out "$TMP/c.tsv"
check "pairs context: sentence + paragraph" grep -qx "b${T}en${T}What is gamma?${T}Gamma three. Alpha one. Beta two. Gamma three." "$TMP/c.tsv"
# stdout, and the default split for the evaluation sets is train (article 0 of en is train)
"$XLMR" pairs --dataset xquad-r --data "$FIX/hand" --langs en >"$TMP/s.tsv" 2>/dev/null
check "pairs stdout, default split train" test "$(grep -vc '^#' "$TMP/s.tsv")" -eq 3
"$XLMR" pairs --dataset xquad-r --data "$FIX/hand" --langs en --split test >"$TMP/s.tsv" 2>/dev/null
check "pairs split test: no rows" test "$(grep -vc '^#' "$TMP/s.tsv")" -eq 0
"$XLMR" pairs --dataset xquad-r --data "$FIX/synth" --langs en,de,es,ar --split all >"$TMP/s.tsv" 2>/dev/null
check "pairs synth: 127 questions" test "$(grep -vc '^#' "$TMP/s.tsv")" -eq 127

# squad: no sentence_breaks, split by the sentence splitter; tabs/newlines in text become spaces
cat >"$TMP/sq.json" <<'EOF'
{"version": "1.1", "data": [{"title": "A", "paragraphs": [
 {"context": "Paris is big. The Seine flows\tthrough it! Is it old? Yes, very.",
  "qas": [{"id": "q1", "question": "What flows?\nTell", "answers": [{"answer_start": 18, "text": "Seine"}]},
          {"id": "q2", "question": "Old?", "answers": [{"answer_start": 47, "text": "old"}]},
          {"id": "q3", "question": "Big?", "answers": [{"answer_start": 0, "text": "Paris"}]}]}]}]}
EOF
check "pairs squad file" "$XLMR" pairs --dataset squad --data "$TMP/sq.json" --out "$TMP/sq.tsv"
cat >"$TMP/want.tsv" <<EOF
q1${T}en${T}What flows? Tell${T}The Seine flows through it!
q2${T}en${T}Old?${T}Is it old?
q3${T}en${T}Big?${T}Paris is big.
EOF
check "pairs squad: sentences from the splitter" diff <(grep -v '^#' "$TMP/sq.tsv") "$TMP/want.tsv"
mkdir -p "$TMP/sqdir" && cp "$TMP/sq.json" "$TMP/sqdir/a.json" && cp "$TMP/sq.json" "$TMP/sqdir/b.json"
"$XLMR" pairs --dataset squad --data "$TMP/sqdir" --lang tr >"$TMP/s.tsv" 2>/dev/null
check "pairs squad folder, --lang" test "$(grep -c "${T}tr${T}" "$TMP/s.tsv")" -eq 6

# bad data: one line naming the file
mkdir -p "$TMP/bad1" "$TMP/bad2" "$TMP/bad3"
head -c 300 "$FIX/hand/en.json" >"$TMP/bad1/en.json"
expect_error "truncated JSON" "bad1/en.json: line 1, column [0-9]+: " \
    "$XLMR" pairs --dataset xquad-r --data "$TMP/bad1" --langs en --split all
echo '{"version": "1", "articles": []}' >"$TMP/bad2/en.json"
expect_error "not SQuAD format" "bad2/en.json: not SQuAD format" \
    "$XLMR" pairs --dataset xquad-r --data "$TMP/bad2" --langs en --split all
echo '[1, 2]' >"$TMP/bad2/de.json"
expect_error "not SQuAD format (array)" "bad2/de.json: not SQuAD format" \
    "$XLMR" pairs --dataset xquad-r --data "$TMP/bad2" --langs de --split all
sed 's/"answer_start": 2,/"answer_start": 10,/' "$FIX/hand/en.json" >"$TMP/bad3/en.json"
expect_error "answer_start between sentences" "bad3/en.json: question a: answer_start 10 is outside every sentence" \
    "$XLMR" pairs --dataset xquad-r --data "$TMP/bad3" --langs en --split all
sed 's/"answer_start": 18/"answer_start": 999/' "$TMP/sq.json" >"$TMP/bad3/sq.json"
expect_error "answer_start past the paragraph" "bad3/sq.json: question q1: answer_start 999 is outside every sentence" \
    "$XLMR" pairs --dataset squad --data "$TMP/bad3/sq.json"
expect_error "missing language file" "bad3/de.json: cannot open" \
    "$XLMR" pairs --dataset xquad-r --data "$TMP/bad3" --langs de
expect_error "unknown dataset" "unknown dataset" "$XLMR" pairs --dataset nq --data "$TMP"
expect_error "unknown split" "unknown split" "$XLMR" pairs --dataset xquad-r --data "$FIX/hand" --split val
expect_error "bad --candidate" "candidate" "$XLMR" pairs --dataset xquad-r --data "$FIX/hand" --candidate para
expect_error "pairs without --data" "pairs: --data is required" "$XLMR" pairs --dataset xquad-r

# eval: options and errors (the model itself is tested by the model's tests)
"$XLMR" eval --help >"$TMP/help.txt" 2>&1
check "eval --help documents every option" grep -q -- "--candidate MODE" "$TMP/help.txt"
check "eval --help documents the split rule" grep -q -- "k mod 10" "$TMP/help.txt"
expect_error "eval without --model" "eval: --model is required" "$XLMR" eval --dataset xquad-r --data "$FIX/hand"
expect_error "eval bad dataset" "xquad-r or mlqa-r" "$XLMR" eval --model "$TMP" --dataset squad --data "$FIX/hand"
expect_error "eval bad data" "bad1/en.json: line 1" \
    "$XLMR" eval --model "$TMP/nomodel" --dataset xquad-r --data "$TMP/bad1" --langs en
expect_error "eval missing model" "nomodel" \
    "$XLMR" eval --model "$TMP/nomodel" --dataset xquad-r --data "$FIX/hand" --langs en,de

# end to end with a tiny random model (the tokenizer fixture's SentencePiece model)
SPM=$ROOT/tests/fixtures/tokenizer/ws.model
if [ -f "$SPM" ]; then
    "$XLMR" init --tokenizer "$SPM" --out "$TMP/m" --layers 1 --hidden 32 --heads 2 --ffn 64 >/dev/null 2>&1
    check "eval runs" "$XLMR" eval --model "$TMP/m" --dataset xquad-r --data "$FIX/synth" --langs en,de,es,ar \
        --max-len 24 --json "$TMP/r.json"
    cp "$TMP/out" "$TMP/table.txt"
    check "eval table" grep -qE "^all +[0-9]" "$TMP/table.txt"
    check "eval JSON: counts" grep -q '"questions": 127, "candidates": 255}' "$TMP/r.json"
    check "eval JSON: every part" grep -q '"by_pair": {"en-de": {"map": ' "$TMP/r.json"
    check "eval JSON: multi" grep -q '"multi": {"map": [0-9.e-]*, "r10": [0-9.e-]*, "rank_distance": ' "$TMP/r.json"
    check "eval --candidate context --pooling cls" "$XLMR" eval --model "$TMP/m" --dataset xquad-r --data "$FIX/hand" \
        --langs en,de --candidate context --pooling cls --max-len 16 --query-prefix "" --passage-prefix "P: "
else
    fail "tokenizer fixture $SPM missing: eval end to end not run"
fi
summary eval_cli
