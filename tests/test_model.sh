#!/usr/bin/env bash
# tests/test_model.sh: xlmr init / xlmr embed through the CLI — parity of the
# embeddings with the torch reference (tests/ref/make_vectors.py), arbitrary
# bytes as text, and one-line errors naming the file for broken model folders.
. "$(dirname "$0")/lib.sh"
REF=$ROOT/tests/ref
# a SentencePiece model for init: the project's own (in the repository), else a data fixture
SPM=none; VOCAB=0
if [ -f "$ROOT/tokenizer/xlmrc.model" ]; then SPM=$ROOT/tokenizer/xlmrc.model; VOCAB=32002; else
    for d in "${XLMR_DATA:-}" "$ROOT/data" "$ROOT/../shared/data"; do
        [ -n "$d" ] && [ -f "$d/spm-fixtures/botchan-en.model" ] && { SPM=$d/spm-fixtures/botchan-en.model; VOCAB=1002; break; }
    done
fi

# max |a-b| over two files of space-separated floats, same shape required
maxdiff() { awk 'NR==FNR { for (i = 1; i <= NF; i++) a[FNR, i] = $i; n[FNR] = NF; next }
    { if (NF != n[FNR]) { print "shape"; bad = 1; exit } for (i = 1; i <= NF; i++) { d = $i - a[FNR, i]; if (d < 0) d = -d; if (d > m) m = d } rows++ }
    END { if (!bad) print (rows ? m : "empty") }' "$1" "$2"; }
close_to() { local d; d=$(maxdiff "$1" "$2"); echo "max abs diff $d"; awk -v d="$d" 'BEGIN { exit !(d != "" && d + 0 == d && d <= 1e-4) }'; }

# ---- parity with the reference (ids in, embeddings out) ----
"$XLMR" embed --model "$REF/xlmr_a" --ids <"$REF/xlmr_a/ids.txt" >"$TMP/a_mean.txt"
check "embed --ids, mean pooling, F32 = torch (1e-4)" close_to "$TMP/a_mean.txt" "$REF/xlmr_a/emb_mean.txt"
"$XLMR" embed --model "$REF/xlmr_b" --ids --pooling cls --batch 3 <"$REF/xlmr_b/ids.txt" >"$TMP/b_cls.txt"
check "embed --ids, cls pooling, BF16 + roberta. prefix = torch" close_to "$TMP/b_cls.txt" "$REF/xlmr_b/emb_cls.txt"
"$XLMR" embed --model "$REF/xlmr_a_f16" --ids <"$REF/xlmr_a/ids.txt" >"$TMP/f16.txt"
check "embed with F16 weights runs" test "$(wc -l <"$TMP/f16.txt")" -eq 4

printf '0 5 6 7 2\n' | "$XLMR" embed --model "$REF/xlmr_a" --ids --max-len 3 >"$TMP/t1.txt"
printf '0 5 2\n' | "$XLMR" embed --model "$REF/xlmr_a" --ids >"$TMP/t2.txt"
check "--max-len truncates HF-style (<s>, first N-2, </s>)" cmp -s "$TMP/t1.txt" "$TMP/t2.txt"
check "no input, no output" sh -c "\"$XLMR\" embed --model \"$REF/xlmr_a\" --ids </dev/null | cmp -s - /dev/null"

# ---- init, then text in ----
if [ -f "$SPM" ]; then
    check "init --preset tiny" "$XLMR" init --tokenizer "$SPM" --out "$TMP/m" --preset tiny --seed 1
    check "init writes config, weights, tokenizer" test -s "$TMP/m/config.json" -a -s "$TMP/m/model.safetensors" -a -s "$TMP/m/sentencepiece.bpe.model"
    check "config.json: XLMRobertaModel, vocab = pieces + 2" grep -q "\"vocab_size\": $VOCAB\$" "$TMP/m/config.json"
    check "init overrides" "$XLMR" init --tokenizer "$SPM" --out "$TMP/m2" --preset tiny --layers 1 --hidden 32 --heads 4 --ffn 40 --max-pos 40
    check "overridden sizes in config.json" grep -q '"intermediate_size": 40' "$TMP/m2/config.json"
    check "init --preset nano (the one preset table of xlmr.c)" "$XLMR" init --tokenizer "$SPM" --out "$TMP/m3" --preset nano --max-pos 40
    check "preset nano sizes in config.json" sh -c "grep -q '\"hidden_size\": 32' \"$TMP/m3/config.json\" && grep -q '\"intermediate_size\": 128' \"$TMP/m3/config.json\""
    { printf 'hello world\n\n'; printf 'nul\000byte and \377\376 invalid \300\200 utf-8\n';
      head -c 1000000 /dev/zero | tr '\0' 'a'; printf '\n'; printf 'no newline at the end'; } >"$TMP/in.txt"
    check "embed arbitrary bytes (NUL, invalid UTF-8, a 1 MB line)" "$XLMR" embed --model "$TMP/m2" --max-len 16 --batch 2 <"$TMP/in.txt"
    "$XLMR" embed --model "$TMP/m2" --max-len 16 <"$TMP/in.txt" >"$TMP/e.txt" 2>/dev/null
    check "one output line per input line" test "$(wc -l <"$TMP/e.txt")" -eq 5
    check "32 floats per line" test "$(awk '{ print NF }' "$TMP/e.txt" | sort -u)" = 32
    check "unit norm" awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; if (s < 0.9999 || s > 1.0001) exit 1 }' "$TMP/e.txt"
    printf 'same text\nsame text\n' | "$XLMR" embed --model "$TMP/m2" >"$TMP/s.txt"
    check "same text, same embedding" test "$(sort -u "$TMP/s.txt" | wc -l)" -eq 1
    expect_error "embed --max-len past the model" 'max-len' "$XLMR" embed --model "$TMP/m2" --max-len 100 </dev/null
    expect_error "init: unknown preset" 'preset' "$XLMR" init --tokenizer "$SPM" --out "$TMP/x" --preset huge
    expect_error "init: heads not dividing hidden" 'num_attention_heads' "$XLMR" init --tokenizer "$SPM" --out "$TMP/x" --preset tiny --heads 3
else
    echo "note: neither tokenizer/xlmrc.model nor spm-fixtures/botchan-en.model (XLMR_DATA, data/, ../shared/data): init/text checks skipped"
fi
check "init --help documents the presets" sh -c "\"$XLMR\" init --help | grep -q 'small 6/384/6/1536'"
expect_error "init without --tokenizer" 'tokenizer' "$XLMR" init --out "$TMP/x"

# ---- broken model folders: exit 1, one line naming the file ----
fresh() { rm -rf "$TMP/bad"; mkdir "$TMP/bad"; cp "$REF/xlmr_a/config.json" "$REF/xlmr_a/model.safetensors" "$TMP/bad/"; }
emb() { echo "0 5 2" | "$XLMR" embed --model "$TMP/bad" --ids; }
# u64 little-endian length, then the header text, then N zero bytes of data
mkst() { local h=$1 n=$2 len=${#1} i b=""; for i in 0 1 2 3 4 5 6 7; do b="$b\\$(printf '%03o' $(((len >> (8 * i)) & 255)))"; done
    { printf "$b"; printf '%s' "$h"; head -c "$n" /dev/zero; } >"$TMP/bad/model.safetensors"; }

fresh; head -c 5000 "$REF/xlmr_a/model.safetensors" >"$TMP/bad/model.safetensors"
expect_error "truncated model.safetensors" 'model\.safetensors' emb
fresh; head -c 20000 "$REF/xlmr_a/model.safetensors" >"$TMP/bad/model.safetensors"
expect_error "model.safetensors truncated in the data" 'model\.safetensors: tensor .*data_offsets out of range' emb
fresh; head -c 3 "$REF/xlmr_a/model.safetensors" >"$TMP/bad/model.safetensors"
expect_error "3-byte model.safetensors" 'model\.safetensors: too short' emb
fresh; yes "garbage, not safetensors" | head -c 4096 >"$TMP/bad/model.safetensors"
expect_error "garbage model.safetensors" 'model\.safetensors' emb
fresh; printf '\377\377\377\377\377\377\377\377{}' >"$TMP/bad/model.safetensors"
expect_error "huge header length" 'model\.safetensors: header length' emb
fresh; printf '\350\003\000\000\000\000\000\000{"a":1}' >"$TMP/bad/model.safetensors"
expect_error "header length past the end" 'model\.safetensors: header length' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}' 8
expect_error "data offsets out of range" 'model\.safetensors: tensor x: data_offsets' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8
expect_error "extent disagreeing with shape" 'model\.safetensors: tensor x: data_offsets span' emb
fresh; LC_ALL=C sed -i 's/"embeddings.LayerNorm.bias"/"embeddings.LayerNorm.bixs"/' "$TMP/bad/model.safetensors"
expect_error "a missing tensor" 'model\.safetensors: missing tensor embeddings\.LayerNorm\.bias' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' 8
expect_error "too little data for config.json" 'model\.safetensors: 8 bytes of data, too few' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]' 8
expect_error "header not JSON" 'model\.safetensors' emb
fresh; sed -i 's/"num_hidden_layers": 3/"num_hidden_layers": 4/' "$TMP/bad/config.json"
expect_error "a missing layer" 'missing tensor encoder\.layer\.3\.' emb
fresh; sed -i 's/"intermediate_size": 64/"intermediate_size": 72/' "$TMP/bad/config.json"
expect_error "shape disagreeing with config.json" 'model\.safetensors: tensor .* has shape .*config\.json' emb
fresh; echo '{"hidden_size": 32,' >"$TMP/bad/config.json"
expect_error "config.json not JSON" 'config\.json' emb
fresh; grep -v '"hidden_size"' "$REF/xlmr_a/config.json" >"$TMP/bad/config.json"
expect_error "config.json lacking hidden_size" 'config\.json.*hidden_size' emb
fresh; sed -i 's/"num_attention_heads": 4/"num_attention_heads": 5/' "$TMP/bad/config.json"
expect_error "heads not dividing hidden" 'config\.json: num_attention_heads' emb
fresh; sed -i 's/"hidden_act": "gelu"/"hidden_act": "gelu_new"/' "$TMP/bad/config.json"
expect_error "hidden_act not gelu" 'config\.json: hidden_act' emb
fresh; sed -i 's/"vocab_size": 90/"vocab_size": 1e30/' "$TMP/bad/config.json"
expect_error "absurd vocab_size" 'config\.json' emb
fresh; rm "$TMP/bad/model.safetensors"
expect_error "no model.safetensors" 'model\.safetensors' emb
expect_error "no model folder" 'config\.json' sh -c "echo 0 2 | \"$XLMR\" embed --model \"$TMP/nowhere\" --ids"
fresh
expect_error "id past the vocabulary" 'vocabulary' sh -c "echo 0 90 2 | \"$XLMR\" embed --model \"$TMP/bad\" --ids"
expect_error "not ids" 'line 2' sh -c "printf '0 2\n0 x 2\n' | \"$XLMR\" embed --model \"$TMP/bad\" --ids"
expect_error "bad pooling" 'pooling' "$XLMR" embed --model "$TMP/bad" --pooling max
summary model
