#!/usr/bin/env bash
# tests/test_tokenizer.sh: `xlmr tokenize` against spm_encode / HF reference
# output (tests/fixtures/tokenizer, scripts/make_tokenizer_fixtures.py), its
# line handling on arbitrary bytes, and its errors.
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
FIX=tests/fixtures/tokenizer
XM=tokenizer/xlmrc.model

check "--help documents the options" bash -c "'$XLMR' tokenize --help | grep -q -- --spm-ids && '$XLMR' tokenize --help | grep -q -- --pieces && '$XLMR' tokenize --help | grep -q -- --max-len"

# reference output, line by line; lines without a HF reference ("-": invalid UTF-8) are dropped
same_as() { # same_as EXPECTED MODEL [OPTIONS...] < input
    local want=$1 model=$2; shift 2
    "$XLMR" tokenize --model "$model" "$@" >"$TMP/got" || return 1
    if grep -qx -- - "$want"; then
        paste -d '\t' "$want" "$TMP/got" | grep -v $'^-\t' | cut -f1 >"$TMP/w2"
        paste -d '\t' "$want" "$TMP/got" | grep -v $'^-\t' | cut -f2 >"$TMP/g2"
        cmp -s "$TMP/w2" "$TMP/g2"
    else
        cmp -s "$want" "$TMP/got"
    fi
}
cat $FIX/xlmr.txt $FIX/text.txt >"$TMP/xin"
DATA=${XLMR_DATA:-data}
[ -f "$DATA/spm-fixtures/botchan-en.model" ] || DATA=../shared/data
models="xlmrc:$XM bf:$FIX/bf.model ws:$FIX/ws.model"
if [ -f "$DATA/spm-fixtures/botchan-en.model" ]; then
    models="$models botchan-en:$DATA/spm-fixtures/botchan-en.model ja:$DATA/spm-fixtures/ja.model"
else
    echo "note: no shared data dir (\$XLMR_DATA, data/, ../shared/data): botchan-en/ja fixtures skipped"
fi
for nm in $models; do
    name=${nm%%:*} model=${nm#*:}
    check "$name --spm-ids = spm_encode --output_format=id" same_as $FIX/$name.id "$model" --spm-ids <$FIX/text.txt
    check "$name --pieces = spm_encode --output_format=piece" same_as $FIX/$name.piece "$model" --pieces <$FIX/text.txt
    check "$name ids = HF XLMRobertaTokenizer input_ids" same_as $FIX/$name.xlmr "$model" <"$TMP/xin"
    check "$name --max-len 16 = HF truncation" same_as $FIX/$name.xlmr16 "$model" --max-len 16 <"$TMP/xin"
done

# a model folder holding sentencepiece.bpe.model
mkdir -p "$TMP/folder" && cp $FIX/ws.model "$TMP/folder/sentencepiece.bpe.model"
check "model folder" same_as $FIX/ws.id "$TMP/folder" --spm-ids <$FIX/text.txt
check "FILE argument reads the file" bash -c "'$XLMR' tokenize --model $XM --spm-ids $FIX/text.txt | cmp -s - $FIX/xlmrc.id"

# lines: split on \n only; a last line without \n counts; no input, no output
lines_of() { "$XLMR" tokenize --model $XM "$@" | wc -l; }
check "no trailing newline" test "$(printf 'a\nb' | lines_of)" = 2
check "empty input gives no output" test "$(printf '' | lines_of)" = 0
check "empty line gives <s> </s>" test "$(printf '\n' | "$XLMR" tokenize --model $XM)" = "0 2"
check "\\r is text, not a line end" test "$(printf 'a\rb\r\n' | lines_of --pieces)" = 1
# arbitrary bytes (the model file itself: NULs, invalid UTF-8, long lines)
nl=$(tr -cd '\n' <$XM | wc -c)
[ "$(tail -c 1 $XM | od -An -c | tr -d ' ')" = '\n' ] || nl=$((nl + 1))
check "arbitrary bytes: one output line per input line" test "$(lines_of --pieces <$XM)" = "$nl"
head -c 1048576 /dev/zero | tr '\0' 'x' >"$TMP/big"
check "1 MB line" test "$(lines_of --spm-ids <"$TMP/big")" = 1
check "1 MB line, XLM-R ids truncated" test "$("$XLMR" tokenize --model $XM --max-len 8 <"$TMP/big" | wc -w)" = 8

# errors: one line, exit status 1
expect_error "missing --model" "xlmr.*--model" "$XLMR" tokenize
expect_error "missing model file" "xlmr: /nonexistent.model" "$XLMR" tokenize --model /nonexistent.model
: >"$TMP/empty.model"
expect_error "empty model file" "empty" "$XLMR" tokenize --model "$TMP/empty.model"
head -c 5000 $XM >"$TMP/trunc.model"
expect_error "truncated model file" "trunc.model" "$XLMR" tokenize --model "$TMP/trunc.model"
head -c 3000 $FIX/text.txt >"$TMP/text.model"
expect_error "not a model" "text.model" "$XLMR" tokenize --model "$TMP/text.model"
printf '\x0a\x05\x0a\x01\x61\x18\x02\x12\x02\x18\x02' >"$TMP/bpe.model"
expect_error "BPE model" "not supported" "$XLMR" tokenize --model "$TMP/bpe.model"
expect_error "--spm-ids with --pieces" "exclude" "$XLMR" tokenize --model $XM --spm-ids --pieces </dev/null
expect_error "--max-len 1" "max-len" "$XLMR" tokenize --model $XM --max-len 1 </dev/null
summary tokenizer_cli
