#!/usr/bin/env bash
# tests/test_ecosystem.sh: the ecosystem in and out — the sentence-transformers
# and HF tokenizer files of every model folder written (read back), folders
# laid out as e5 / bge-m3 / 0_Transformer behave as their cards say, embed's
# npy and jsonl formats, length defaults fitted to the model, several training
# datasets, and `xlmr plot`.
. "$(dirname "$0")/lib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
SPM=$ROOT/tokenizer/xlmrc.model
FIX=$ROOT/tests/fixtures/train
M=$TMP/m
# json_has FILE PATTERN: the file holds the pattern once whitespace is squeezed
json_has() { tr -d '\n' <"$1" | tr -s ' ' | grep -qF -- "$2"; }

# ---- the files init writes ----
check "init nano" "$XLMR" init --tokenizer "$SPM" --out "$M" --preset nano --max-pos 130 --seed 3
for f in modules.json 1_Pooling/config.json sentence_bert_config.json config_sentence_transformers.json \
         tokenizer_config.json special_tokens_map.json; do
    check "init writes $f (valid JSON)" sh -c "test -s '$M/$f' && (command -v python3 >/dev/null || exit 0) && python3 -m json.tool '$M/$f' >/dev/null"
done
check "2_Normalize folder" test -d "$M/2_Normalize"
check "modules.json: Transformer at the root" json_has "$M/modules.json" '"path": "", "type": "sentence_transformers.models.Transformer"'
check "modules.json: 1_Pooling, 2_Normalize" sh -c "grep -q '\"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"' '$M/modules.json' && grep -q '\"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"' '$M/modules.json'"
check "pooling: dimension 32, mean" sh -c "grep -q '\"word_embedding_dimension\": 32' '$M/1_Pooling/config.json' && grep -q '\"pooling_mode_mean_tokens\": true' '$M/1_Pooling/config.json' && grep -q '\"pooling_mode_cls_token\": false' '$M/1_Pooling/config.json'"
check "max_seq_length = the model's limit (130 positions: 128)" json_has "$M/sentence_bert_config.json" '"max_seq_length": 128'
check "prompts Query: / Passage:" json_has "$M/config_sentence_transformers.json" '"prompts": {"query": "Query: ", "passage": "Passage: "}'
check "tokenizer_config: XLMRobertaTokenizer, model_max_length 128" sh -c "grep -q '\"tokenizer_class\": \"XLMRobertaTokenizer\"' '$M/tokenizer_config.json' && grep -q '\"model_max_length\": 128' '$M/tokenizer_config.json'"
check "tokenizer_config: <mask> is id 32001 with lstrip" json_has "$M/tokenizer_config.json" '"32001": {"content": "<mask>", "lstrip": true'
check "special_tokens_map: <mask> lstrip, pad, unk" sh -c "grep -q '\"mask_token\": {\"content\": \"<mask>\", \"lstrip\": true' '$M/special_tokens_map.json' && grep -q '\"pad_token\": \"<pad>\"' '$M/special_tokens_map.json' && grep -q '\"unk_token\": \"<unk>\"' '$M/special_tokens_map.json'"

# ---- reading: the folder's pooling, length and prompts; flags win ----
printf 'hello world\nzweite Zeile\n' >"$TMP/in.txt"
"$XLMR" embed --model "$M" <"$TMP/in.txt" >"$TMP/def.txt"
"$XLMR" embed --model "$M" --pooling mean <"$TMP/in.txt" >"$TMP/mean.txt"
"$XLMR" embed --model "$M" --pooling cls <"$TMP/in.txt" >"$TMP/cls.txt"
check "default pooling = the folder's (mean)" cmp -s "$TMP/def.txt" "$TMP/mean.txt"
sed -i 's/"pooling_mode_cls_token": false/"pooling_mode_cls_token": true/; s/"pooling_mode_mean_tokens": true/"pooling_mode_mean_tokens": false/' "$M/1_Pooling/config.json"
"$XLMR" embed --model "$M" <"$TMP/in.txt" >"$TMP/def2.txt"
check "1_Pooling says cls: embed pools <s>" cmp -s "$TMP/def2.txt" "$TMP/cls.txt"
"$XLMR" embed --model "$M" --pooling mean <"$TMP/in.txt" >"$TMP/mean2.txt"
check "--pooling wins over the folder" cmp -s "$TMP/mean2.txt" "$TMP/mean.txt"
printf 'Query: hello world\nQuery: zweite Zeile\n' | "$XLMR" embed --model "$M" >"$TMP/qp_manual.txt"
"$XLMR" embed --model "$M" --prompt query <"$TMP/in.txt" >"$TMP/qp.txt"
check "--prompt query = the folder's query prompt" cmp -s "$TMP/qp.txt" "$TMP/qp_manual.txt"
"$XLMR" embed --model "$M" --prefix "Query: " <"$TMP/in.txt" >"$TMP/qp2.txt"
check "--prefix S = S in front" cmp -s "$TMP/qp2.txt" "$TMP/qp_manual.txt"
long=$(printf 'word %.0s' $(seq 1 200))
echo "$long" | "$XLMR" embed --model "$M" >"$TMP/l128.txt"
echo "$long" | "$XLMR" embed --model "$M" --max-len 16 >"$TMP/l16.txt"
sed -i 's/"max_seq_length": 128/"max_seq_length": 16/' "$M/sentence_bert_config.json"
echo "$long" | "$XLMR" embed --model "$M" >"$TMP/lst.txt"
check "max_seq_length 16 truncates as --max-len 16" cmp -s "$TMP/lst.txt" "$TMP/l16.txt"
check "... and differs from 128" sh -c "! cmp -s '$TMP/lst.txt' '$TMP/l128.txt'"
echo "$long" | "$XLMR" embed --model "$M" --max-len 128 >"$TMP/l128b.txt"
check "--max-len wins over max_seq_length" cmp -s "$TMP/l128b.txt" "$TMP/l128.txt"

# e5-like: mean pooling, "query: " / "passage: ", a Transformer in 0_Transformer
E5=$TMP/e5
"$XLMR" init --tokenizer "$SPM" --out "$E5/0_Transformer" --preset nano --seed 4 2>/dev/null
mv "$E5/0_Transformer/1_Pooling" "$E5/0_Transformer/2_Normalize" "$E5/"
rm "$E5/0_Transformer/modules.json" "$E5/0_Transformer/config_sentence_transformers.json"
cat >"$E5/modules.json" <<'J'
[{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
 {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
J
echo '{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": null}' >"$E5/config_sentence_transformers.json"
check "0_Transformer layout loads" "$XLMR" embed --model "$E5" --prompt query <"$TMP/in.txt"
cp "$TMP/out" "$TMP/e5q.txt"
printf 'query: hello world\nquery: zweite Zeile\n' | "$XLMR" embed --model "$E5/0_Transformer" --pooling mean >"$TMP/e5q_manual.txt"
check "e5-like: mean pooling and its \"query: \" prompt" cmp -s "$TMP/e5q.txt" "$TMP/e5q_manual.txt"
printf 'passage: hello world\npassage: zweite Zeile\n' | "$XLMR" embed --model "$E5/0_Transformer" >"$TMP/e5p_manual.txt"
"$XLMR" embed --model "$E5" --prompt passage <"$TMP/in.txt" >"$TMP/e5p.txt"
check "e5-like: its \"passage: \" prompt" cmp -s "$TMP/e5p.txt" "$TMP/e5p_manual.txt"

EV="--dataset xquad-r --data $ROOT/tests/fixtures/eval/synth --langs en,de,es,ar"
"$XLMR" eval --model "$E5" $EV --json "$TMP/ev1.json" >/dev/null 2>&1
"$XLMR" eval --model "$E5/0_Transformer" $EV --pooling mean --query-prefix "query: " --passage-prefix "passage: " --json "$TMP/ev2.json" >/dev/null 2>&1
"$XLMR" eval --model "$E5/0_Transformer" $EV --json "$TMP/ev3.json" >/dev/null 2>&1
for i in 1 2 3; do sed 's/"model": "[^"]*"//' "$TMP/ev$i.json" >"$TMP/ev$i.cut"; done
check "eval of an e5-like folder = its prompts given as flags" sh -c "grep -q settings '$TMP/ev1.cut' && cmp -s '$TMP/ev1.cut' '$TMP/ev2.cut'"
check "... and differs from the default prompts" sh -c "! cmp -s '$TMP/ev1.cut' '$TMP/ev3.cut'"
expect_error "eval: an explicit --max-len beyond the limit" "eval: --max-len 600 exceeds the model's limit of 512" \
    "$XLMR" eval --model "$E5" $EV --max-len 600
cp -r "$E5" "$TMP/e5d"
echo '{"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query"}' >"$TMP/e5d/config_sentence_transformers.json"
"$XLMR" embed --model "$TMP/e5d" <"$TMP/in.txt" >"$TMP/e5d.txt"
check "default_prompt_name: embed prepends that prompt" cmp -s "$TMP/e5d.txt" "$TMP/e5q.txt"
echo '{"prompts": {"query": "query: "}, "default_prompt_name": "title"}' >"$TMP/e5d/config_sentence_transformers.json"
expect_error "default_prompt_name not among the prompts" "default_prompt_name must name one of the prompts" \
    "$XLMR" embed --model "$TMP/e5d" </dev/null
cp "$E5/config_sentence_transformers.json" "$TMP/e5d/"
echo '{"max_seq_length": 64, "do_lower_case": true}' >"$TMP/e5d/0_Transformer/sentence_bert_config.json"
expect_error "do_lower_case true is named" "do_lower_case true is not supported" "$XLMR" embed --model "$TMP/e5d" </dev/null

# bge-m3-like: CLS pooling, 8194 positions, max_seq_length 8192
BGE=$TMP/bge
"$XLMR" init --tokenizer "$SPM" --out "$BGE" --preset nano --max-pos 8194 --seed 5 2>/dev/null
sed -i 's/"pooling_mode_cls_token": false/"pooling_mode_cls_token": true/; s/"pooling_mode_mean_tokens": true/"pooling_mode_mean_tokens": false/' "$BGE/1_Pooling/config.json"
check "bge-m3-like: max_seq_length 8192" json_has "$BGE/sentence_bert_config.json" '"max_seq_length": 8192'
long2=$(printf 'mot %.0s' $(seq 1 1500))
echo "$long2" | "$XLMR" embed --model "$BGE" >"$TMP/bge.txt"
echo "$long2" | "$XLMR" embed --model "$BGE" --pooling cls --max-len 8192 >"$TMP/bge_cls.txt"
check "bge-m3-like: CLS pooling over a 1500-word input, no flags" cmp -s "$TMP/bge.txt" "$TMP/bge_cls.txt"

# what is not supported is named
D=$TMP/dense; cp -r "$M" "$D"
cat >"$D/modules.json" <<'J'
[{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
 {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
 {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
J
expect_error "a Dense module is named" 'modules.json: module 2 \(sentence_transformers.models.Dense\) is not supported' \
    "$XLMR" embed --model "$D" </dev/null
cp -r "$M" "$TMP/maxp"; sed -i 's/"pooling_mode_max_tokens": false/"pooling_mode_max_tokens": true/' "$TMP/maxp/1_Pooling/config.json"
expect_error "max pooling is named" '1_Pooling/config.json: pooling_mode_max_tokens is not supported' "$XLMR" embed --model "$TMP/maxp" </dev/null
cp -r "$M" "$TMP/esc"; echo '[{"idx": 0, "name": "0", "path": "../x", "type": "sentence_transformers.models.Transformer"}]' >"$TMP/esc/modules.json"
expect_error "a module path out of the folder" "leaves the folder" "$XLMR" embed --model "$TMP/esc" </dev/null
cp -r "$M" "$TMP/badj"; echo '{"max_seq_length": "x"}' >"$TMP/badj/sentence_bert_config.json"
expect_error "a bad max_seq_length" "sentence_bert_config.json.*max_seq_length" "$XLMR" embed --model "$TMP/badj" </dev/null
cp -r "$M" "$TMP/badp"; echo '{"prompts": {"query": 3}}' >"$TMP/badp/config_sentence_transformers.json"
expect_error "a bad prompt" "prompts.query must be a string" "$XLMR" embed --model "$TMP/badp" --prompt query </dev/null

# ---- embed formats ----
"$XLMR" embed --model "$M" --format npy --output "$TMP/e.npy" <"$TMP/in.txt"
check "npy: magic, version 1.0" sh -c "head -c 8 '$TMP/e.npy' | od -An -c | tr -d ' \n' | grep -q '223NUMPY001\\\\0'"
check "npy: header dict, shape (2, 32)" sh -c "head -c 128 '$TMP/e.npy' | grep -aqF \"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 32), }\""
hl=$(od -An -tu2 -j8 -N2 "$TMP/e.npy" | tr -d ' ')
check "npy: header padded to 64, ends in newline, then 2*32*4 bytes" sh -c "[ \$(( (10 + $hl) % 64 )) -eq 0 ] && [ \"\$(od -An -c -j$((9 + hl)) -N1 '$TMP/e.npy' | tr -d ' ')\" = '\\n' ] && [ \$(stat -c %s '$TMP/e.npy') -eq $((10 + hl + 256)) ]"
"$XLMR" embed --model "$M" --format jsonl <"$TMP/in.txt" >"$TMP/e.jsonl"
check "jsonl: one object per input" sh -c "[ \$(grep -c '^{\"index\": [01], \"embedding\": \\[' '$TMP/e.jsonl') -eq 2 ]"
"$XLMR" embed --model "$M" --output "$TMP/e.txt" <"$TMP/in.txt"
"$XLMR" embed --model "$M" <"$TMP/in.txt" >"$TMP/e2.txt"
check "--output FILE = stdout's text" cmp -s "$TMP/e.txt" "$TMP/e2.txt"
PY=$(for p in python3 /usr/bin/python3; do command -v $p >/dev/null && $p -c 'import numpy' 2>/dev/null && { echo $p; break; }; done)
if [ -n "$PY" ]; then
    check "numpy loads the npy = the text output" $PY -c "
import numpy as np, json, sys
a = np.load('$TMP/e.npy'); t = np.loadtxt('$TMP/e.txt', dtype=np.float32)
j = np.array([json.loads(l)['embedding'] for l in open('$TMP/e.jsonl')], dtype=np.float32)
assert a.dtype == np.float32 and a.shape == (2, 32), (a.dtype, a.shape)
assert np.abs(a - t).max() < 1e-7 and np.abs(a - j).max() < 1e-7"
else
    echo "skip numpy check (no numpy)"
fi
expect_error "--format bad" "embed: --format must be text, npy or jsonl" "$XLMR" embed --model "$M" --format csv </dev/null
expect_error "--prompt with --ids" "embed: --ids takes no --prompt" "$XLMR" embed --model "$M" --ids --prompt query </dev/null

# ---- length defaults fitted to the model ----
S=$TMP/small
"$XLMR" init --tokenizer "$SPM" --out "$S" --preset nano --max-pos 66 --seed 2 2>/dev/null   # limit 64
"$XLMR" train --model "$S" --train "$FIX/train.tsv" --out "$TMP/run_s" --batch 4 --steps 1 --quiet >"$TMP/s.out" 2>"$TMP/s.err"
check "train on a 64-token model with default lengths" test $? -eq 0
check "one note: --max-len-passage lowered to 64" sh -c "[ \$(wc -l <'$TMP/s.err') -eq 1 ] && grep -q 'train: --max-len-passage default 256 lowered to the model.s limit of 64 tokens' '$TMP/s.err'"
check "the run's options say 64 / 64" json_has "$TMP/run_s/final/../checkpoint-1/train_options.json" '"max_len_query": 64, "max_len_passage": 64'
expect_error "an explicit length beyond the limit is an error" "exceed the model's limit of 64" \
    "$XLMR" train --model "$S" --train "$FIX/train.tsv" --out "$TMP/run_s2" --batch 4 --steps 1 --quiet --max-len-passage 100
check "train's folders carry the files (final)" test -s "$TMP/run_s/final/modules.json" -a -s "$TMP/run_s/final/tokenizer_config.json"
check "train's final: max_seq_length 64, the run's prompts" sh -c "grep -q '\"max_seq_length\": 64' '$TMP/run_s/final/sentence_bert_config.json' && grep -q 'Query: ' '$TMP/run_s/final/config_sentence_transformers.json'"
# train takes the folder's pooling and prompts
"$XLMR" train --model "$E5" --train "$FIX/train.tsv" --out "$TMP/run_e5" --batch 4 --steps 1 --quiet >/dev/null 2>&1
check "train from an e5-like folder keeps its prompts" json_has "$TMP/run_e5/checkpoint-1/train_options.json" '"query_prefix": "query: ", "passage_prefix": "passage: "'
check "... and writes them into its checkpoints" json_has "$TMP/run_e5/checkpoint-1/config_sentence_transformers.json" '"query": "query: ", "passage": "passage: "'
"$XLMR" train --model "$BGE" --train "$FIX/train.tsv" --out "$TMP/run_bge" --batch 4 --steps 1 --quiet --query-prefix "Q: " >/dev/null 2>&1
check "train from a bge-like folder: cls pooling; --query-prefix wins" sh -c "grep -q '\"pooling\": \"cls\"' '$TMP/run_bge/checkpoint-1/train_options.json' && grep -q '\"query_prefix\": \"Q: \"' '$TMP/run_bge/checkpoint-1/train_options.json' && grep -q '\"pooling_mode_cls_token\": true' '$TMP/run_bge/final/1_Pooling/config.json'"

# ---- several datasets ----
awk -F'\t' -v A="$TMP/A.tsv" -v B="$TMP/B.tsv" '!/^#/ { if (!($1 in g)) g[$1] = n++; print > (g[$1] < 60 ? A : B) }' "$FIX/train.tsv"
awk -F'\t' -v OFS='\t' '$2 == "en" { $1 = "en-" $1; print }' "$FIX/train.tsv" >"$TMP/C.tsv"   # 80 English-only groups
cat "$TMP/A.tsv" "$TMP/B.tsv" >"$TMP/AB.tsv"
BA="--batch 4 --seed 9"
"$XLMR" batches --train "$TMP/A.tsv" "$TMP/B.tsv" $BA --steps 300 --multi-dataset merged >"$TMP/merged.txt"
"$XLMR" batches --train "$TMP/AB.tsv" $BA --steps 300 >"$TMP/one.txt"
check "merged = one file (today's behaviour)" cmp -s "$TMP/merged.txt" "$TMP/one.txt"
"$XLMR" batches --train "$TMP/A.tsv" "$TMP/B.tsv" $BA --steps 400 >"$TMP/prop.txt"
# every batch's groups are in the file it names
awk 'FILENAME != "-" && FNR == 1 { f = FILENAME } FILENAME != ARGV[ARGC-1] { split($0, c, "\t"); own[c[1]] = FILENAME; next }
     { file = substr($2, 2); for (i = 3; i <= NF; i++) { split($i, a, ":"); if (own[a[3]] != file) bad++ } }
     END { exit bad > 0 }' "$TMP/A.tsv" "$TMP/B.tsv" "$TMP/prop.txt" && pass "proportional: each batch from the file it names" || fail "proportional: batch from one file"
nA=$(grep -c " @$TMP/A.tsv " "$TMP/prop.txt")
[ "$nA" -gt 270 ] && [ "$nA" -lt 330 ] && pass "proportional: A (60 of 80 groups) serves $nA of 400 batches" || fail "proportional share of A: $nA/400"
"$XLMR" batches --train "$TMP/A.tsv" "$TMP/B.tsv" $BA --steps 6 --multi-dataset round-robin >"$TMP/rr.txt"
check "round-robin: A, B, A, B, ..." sh -c "[ \"\$(awk '{print \$2}' '$TMP/rr.txt' | tr '\n' ' ')\" = '@$TMP/A.tsv @$TMP/B.tsv @$TMP/A.tsv @$TMP/B.tsv @$TMP/A.tsv @$TMP/B.tsv ' ]"
"$XLMR" batches --train "$TMP/A.tsv" "$TMP/C.tsv" $BA --steps 200 --sampling hybrid >"$TMP/hc.txt"
check "hybrid on an English-only dataset: mono batches only there" sh -c "grep -q '^cross @$TMP/A.tsv' '$TMP/hc.txt' && ! grep -q '^cross @$TMP/C.tsv' '$TMP/hc.txt' && grep -q '^mono @$TMP/C.tsv' '$TMP/hc.txt'"
awk -F'\t' -v E="$TMP/Aen.tsv" -v O="$TMP/Aother.tsv" '{ print > ($2 == "en" ? E : O) }' "$TMP/A.tsv"
expect_error "a group in two files" "group '.*' has rows in two training files" \
    "$XLMR" batches --train "$TMP/Aother.tsv" "$TMP/Aen.tsv" $BA --steps 1
expect_error "cross on an English-only dataset names it" "C.tsv: 0 groups have two or more languages" \
    "$XLMR" batches --train "$TMP/A.tsv" "$TMP/C.tsv" $BA --steps 1 --sampling cross
expect_error "--multi-dataset bad" "batches: --multi-dataset must be proportional, round-robin or merged" \
    "$XLMR" batches --train "$TMP/A.tsv" --multi-dataset some
# training on two datasets; resume exact
TR="--model $S --train $TMP/A.tsv $TMP/C.tsv --batch 4 --steps 4 --save-every 2 --keep 5 --quiet --max-len-passage 48 --log"
check "train on two datasets" "$XLMR" train $TR "$TMP/mt.jsonl" --out "$TMP/mt"
check "the log names each step's dataset" sh -c "[ \$(grep -c '\"dataset\": [01], ' '$TMP/mt.jsonl') -eq 4 ]"
check "train_options.json says how they were mixed" grep -q '"multi_dataset": "proportional"' "$TMP/mt/checkpoint-4/train_options.json"
"$XLMR" train $TR "$TMP/mt2.jsonl" --out "$TMP/mt2" >/dev/null 2>&1
rm -rf "$TMP/mt2/checkpoint-4" "$TMP/mt2/final"
check "resume from step 2" "$XLMR" train $TR "$TMP/mt2.jsonl" --out "$TMP/mt2" --resume
check "resumed two-dataset run = the uninterrupted one (bit for bit)" cmp -s "$TMP/mt/final/model.safetensors" "$TMP/mt2/final/model.safetensors"
expect_error "resume with another --multi-dataset is refused" "multi-dataset" \
    "$XLMR" train $TR "$TMP/mt3.jsonl" --out "$TMP/mt2" --resume --multi-dataset round-robin

# ---- xlmr plot ----
check "train --log writes OUT/train_log.svg at the end" sh -c "grep -q 'Training log $TMP/mt.jsonl: 4 steps' '$TMP/mt/train_log.svg'"
check "plot a training log" "$XLMR" plot "$TMP/mt.jsonl"
check "plot: LOG.svg beside the log, one <svg>, loss and lr curves" sh -c "[ \$(grep -c '<svg' '$TMP/mt.svg') -eq 1 ] && grep -q '</svg>' '$TMP/mt.svg' && grep -q 'Loss (InfoNCE)' '$TMP/mt.svg' && grep -q 'Learning rate' '$TMP/mt.svg' && [ \$(grep -c 'stroke-width=\"1.5\"' '$TMP/mt.svg') -eq 3 ]"
"$XLMR" train --model "$S" --train "$FIX/train.tsv" --dev "$FIX/dev.tsv" --eval-every 2 --batch 4 --steps 4 --quiet \
    --max-len-passage 48 --log "$TMP/dev.jsonl" --out "$TMP/devrun" >/dev/null 2>&1
check "plot --out, with dev loss and mAP" "$XLMR" plot "$TMP/dev.jsonl" --out "$TMP/dev_plot.svg"
check "... a dev mAP panel with 3 evaluations" sh -c "grep -q 'Dev mAP' '$TMP/dev_plot.svg' && [ \$(grep -c '<title>dev mAP' '$TMP/dev_plot.svg') -eq 3 ]"
if command -v rsvg-convert >/dev/null; then
    check "the chart renders (rsvg-convert)" rsvg-convert "$TMP/dev_plot.svg" -o "$TMP/dev_plot.png"
fi
printf '{"step": 1, "loss": 2}\nnot json\n' >"$TMP/bad.jsonl"
expect_error "plot: a bad line is named" "bad.jsonl, log line 2: " "$XLMR" plot "$TMP/bad.jsonl"
echo '{"step": 0, "dev_map": 0.1}' >"$TMP/nostep.jsonl"
expect_error "plot: a log without steps" "no training steps" "$XLMR" plot "$TMP/nostep.jsonl"
expect_error "plot: no log" "plot: give one log file" "$XLMR" plot

# the experiment with a second dataset (needs the data; skipped without it, and
# where test_experiment is skipped: emulated runs)
DATA=""
case " ${SKIP_TESTS:-} " in *" test_experiment "*) XLMR_DATA=/nonexistent ;; esac
[ "${XLMR_DATA:-}" = /nonexistent ] || for d in "${XLMR_DATA:-}" "$ROOT/data" "$ROOT/../shared/data"; do
    [ -n "$d" ] && [ -d "$d/xquad-r" ] && [ -d "$d/mlqa-r" ] && { DATA=$d; break; }
done
if [ -n "$DATA" ]; then
    check "experiment with --add-train" "$XLMR" experiment --quick --sizes nano --sampling hybrid --steps 2 \
        --data "$DATA" --out "$TMP/exq" --add-train "$TMP/C.tsv" --tokenizer "$SPM"
    check "the report has the gap chart" sh -c "grep -q '(gap.svg)' '$TMP/exq/report.md' && grep -q 'parameters (log scale)' '$TMP/exq/gap.svg'"
    check "the report says how the datasets were mixed" grep -q "with 1 more dataset ($TMP/C.tsv), mixed proportional: each batch from one file" "$TMP/exq/report.md"
else
    echo "note: no data: experiment with two datasets skipped"
fi

summary test_ecosystem
