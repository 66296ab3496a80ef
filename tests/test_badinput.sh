#!/usr/bin/env bash
# tests/test_badinput.sh: the bad-input battery, in one place, through the CLI.
# Every bad input must end in exit status 1 with exactly one stderr line that
# starts with "xlmr", names the offending file (or option), and carries no
# sanitizer report (expect_error in tests/lib.sh); arbitrary bytes as text
# must be processed without error, one output line per input line.
#   malformed model folders   built from a valid `xlmr init --preset tiny` folder
#   tokenizer models          empty, truncated, random bytes, wrong protobuf
#   data files                eval / pairs: truncated JSON, not SQuAD format, answer outside every sentence
#   training files            train / batches: columns, UTF-8, empty fields, duplicates
#   checkpoints               train --resume: truncated / random trainer_state.bin and optimizer.bin, corrupt sampler state
#   arguments                 unknown option, missing value, non-numeric number, missing required option
#   arbitrary text            tokenize / embed: invalid UTF-8, NUL bytes, a 1 MB line
# Some cases overlap other tests (test_model.sh, test_train.sh, test_eval.sh): this is the complete list.
. "$(dirname "$0")/lib.sh"
SPM=$ROOT/tests/fixtures/tokenizer/ws.model   # 500 pieces: a 2 MB tiny model
EVALFIX=$ROOT/tests/fixtures/eval/hand
TRAINFIX=$ROOT/tests/fixtures/train
M=$TMP/model
B=$TMP/bad

# deterministic "random" bytes: N bytes of a hash chain
garbage() { local n=$1 seed=${2:-x}; local i=0; while [ $((i * 32)) -lt "$n" ]; do printf '%s' "$seed$i" | sha256sum | cut -c1-64 | xxd -r -p 2>/dev/null || printf '%s' "$seed$i" | sha256sum | cut -c1-64; i=$((i + 1)); done | head -c "$n"; }
# u64 little-endian header length, the header text, N zero bytes of data
mkst() { local h=$1 n=$2 out=$3 len=${#1} i b=""
    for i in 0 1 2 3 4 5 6 7; do b="$b\\$(printf '%03o' $(((len >> (8 * i)) & 255)))"; done
    { printf "$b"; printf '%s' "$h"; head -c "$n" /dev/zero; } >"$out"; }
# replace the first occurrence of a fixed string in a binary file with one of the same length
bsub() { LC_ALL=C sed -i "0,/$2/s//$3/" "$1"; }

if ! "$XLMR" init --tokenizer "$SPM" --out "$M" --preset tiny >/dev/null 2>&1; then
    fail "xlmr init --preset tiny (every model-folder case below depends on it)"
fi
check "the tiny folder embeds" sh -c "echo 'hello world' | \"$XLMR\" embed --model \"$M\" >/dev/null"
ST=$M/model.safetensors
HLEN=$(od -An -tu8 -N8 "$ST" 2>/dev/null | tr -d ' ')
FSIZE=$(wc -c <"$ST")
DLEN=$((FSIZE - 8 - ${HLEN:-0}))

fresh() { rm -rf "$B"; cp -r "$M" "$B"; }
emb() { echo "hello" | "$XLMR" embed --model "$B"; }
embids() { echo "0 5 2" | "$XLMR" embed --model "$B" --ids; }

# ---- model folders: model.safetensors ----
fresh; : >"$B/model.safetensors"
expect_error "safetensors: empty file" 'model\.safetensors' emb
fresh; head -c 7 "$ST" >"$B/model.safetensors"
expect_error "safetensors: 7 bytes" 'model\.safetensors: too short' emb
fresh; head -c 2000 "$ST" >"$B/model.safetensors"
expect_error "safetensors: truncated in the header" 'model\.safetensors: header length' emb
fresh; head -c 100000 "$ST" >"$B/model.safetensors"
expect_error "safetensors: truncated in the data" 'model\.safetensors: tensor .*data_offsets out of range' emb
fresh; head -c $((FSIZE - 1)) "$ST" >"$B/model.safetensors"
expect_error "safetensors: one byte short" 'model\.safetensors' emb
fresh; garbage 65536 st >"$B/model.safetensors"
expect_error "safetensors: random bytes" 'model\.safetensors' emb
fresh; yes "garbage, not safetensors" | head -c 4096 >"$B/model.safetensors"
expect_error "safetensors: text garbage" 'model\.safetensors' emb
fresh; { printf '\377\377\377\377\377\377\377\377'; tail -c +9 "$ST"; } >"$B/model.safetensors"
expect_error "safetensors: huge header length (2^64-1)" 'model\.safetensors: header length' emb
fresh; { printf '\000\000\000\000\000\000\000\200'; tail -c +9 "$ST"; } >"$B/model.safetensors"
expect_error "safetensors: header length 2^63" 'model\.safetensors: header length' emb
fresh; { printf '\000\000\000\100\000\000\000\000'; tail -c +9 "$ST"; } >"$B/model.safetensors"
expect_error "safetensors: header length 1 GiB" 'model\.safetensors: header length' emb
fresh; { printf '\000\000\000\000\000\000\000\000'; tail -c +9 "$ST"; } >"$B/model.safetensors"
expect_error "safetensors: header length 0" 'model\.safetensors' emb
fresh; mkst '[1,2,3]' 8 "$B/model.safetensors"
expect_error "safetensors: header not an object" 'model\.safetensors' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]' 8 "$B/model.safetensors"
expect_error "safetensors: header not JSON" 'model\.safetensors' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} ' 8 "$B/model.safetensors"
expect_error "safetensors: valid file, tensors missing" 'model\.safetensors' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}}' 8 "$B/model.safetensors"
expect_error "safetensors: offsets past the data" 'model\.safetensors: tensor x: data_offsets' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}' 8 "$B/model.safetensors"
expect_error "safetensors: begin after end" 'model\.safetensors: tensor x: data_offsets' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}' 8 "$B/model.safetensors"
expect_error "safetensors: negative offset" 'model\.safetensors: tensor x: data_offsets' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,1e300]}}' 8 "$B/model.safetensors"
expect_error "safetensors: offset 1e300" 'model\.safetensors: tensor x: data_offsets' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' 8 "$B/model.safetensors"
expect_error "safetensors: extent disagreeing with the shape" 'model\.safetensors: tensor x: data_offsets span' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}' 8 "$B/model.safetensors"
expect_error "safetensors: shape overflowing size_t" 'model\.safetensors: tensor x' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}' 8 "$B/model.safetensors"
expect_error "safetensors: 9 dimensions" 'model\.safetensors: tensor x' emb
fresh; mkst '{"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}' 8 "$B/model.safetensors"
expect_error "safetensors: fractional shape" 'model\.safetensors: tensor x' emb
fresh; mkst '{"x":{"dtype":"F32xxxxxxxxxxxxxxxx","shape":[2],"data_offsets":[0,8]}}' 8 "$B/model.safetensors"
expect_error "safetensors: overlong dtype" 'model\.safetensors: tensor x' emb
fresh; mkst '{"x":{"shape":[2],"data_offsets":[0,8]}}' 8 "$B/model.safetensors"
expect_error "safetensors: no dtype" 'model\.safetensors: tensor x' emb
fresh; mkst '{"x":[]}' 8 "$B/model.safetensors"
expect_error "safetensors: entry not an object" 'model\.safetensors: tensor x' emb
fresh; bsub "$B/model.safetensors" ",$DLEN\]" ",9999999]"
expect_error "safetensors: last offset past the data" 'model\.safetensors: tensor .*data_offsets' emb
fresh; bsub "$B/model.safetensors" '"embeddings.LayerNorm.bias"' '"embeddings.LayerNorm.bixs"'
expect_error "safetensors: a missing tensor" 'model\.safetensors: missing tensor embeddings\.LayerNorm\.bias' emb
fresh; bsub "$B/model.safetensors" '"shape":\[502,128\]' '"shape":[128,502]'
expect_error "safetensors: shape disagreeing with config.json" 'model\.safetensors: tensor .*shape' emb
fresh; bsub "$B/model.safetensors" '"dtype":"F32"' '"dtype":"I32"'
expect_error "safetensors: unsupported dtype for a weight" 'model\.safetensors: tensor .*(dtype|I32)' emb
fresh; rm "$B/model.safetensors"
expect_error "safetensors: missing file" 'model\.safetensors' emb
fresh; rm "$B/model.safetensors"; mkdir "$B/model.safetensors"
expect_error "safetensors: a folder, not a file" 'model\.safetensors' emb
expect_error "model folder missing" 'nowhere' sh -c "echo hi | \"$XLMR\" embed --model \"$TMP/nowhere\""

# ---- model folders: config.json ----
cfg() { sed -i "s/$1/$2/" "$B/config.json"; }
fresh; echo '{"hidden_size": 128,' >"$B/config.json"
expect_error "config: not JSON" 'config\.json' emb
fresh; : >"$B/config.json"
expect_error "config: empty" 'config\.json' emb
fresh; echo '[1, 2]' >"$B/config.json"
expect_error "config: an array" 'config\.json' emb
fresh; printf '{"hidden_size": 128, \377}' >"$B/config.json"
expect_error "config: invalid UTF-8" 'config\.json' emb
fresh; rm "$B/config.json"
expect_error "config: missing" 'config\.json' emb
for key in hidden_size num_attention_heads num_hidden_layers intermediate_size vocab_size max_position_embeddings; do
    fresh; sed "s/\"$key\"/\"renamed_$key\"/" "$M/config.json" >"$B/config.json"
    expect_error "config: missing key $key" "config\\.json.*$key" emb
done
fresh; cfg '"num_attention_heads": 2' '"num_attention_heads": 3'
expect_error "config: heads not dividing hidden" 'config\.json: .*num_attention_heads' emb
fresh; cfg '"num_attention_heads": 2' '"num_attention_heads": 0'
expect_error "config: zero heads" 'config\.json' emb
fresh; cfg '"hidden_size": 128' '"hidden_size": -128'
expect_error "config: negative hidden_size" 'config\.json' emb
fresh; cfg '"hidden_size": 128' '"hidden_size": 128.5'
expect_error "config: fractional hidden_size" 'config\.json' emb
fresh; cfg '"hidden_size": 128' '"hidden_size": "128"'
expect_error "config: hidden_size a string" 'config\.json' emb
fresh; cfg '"vocab_size": 502' '"vocab_size": 1e30'
expect_error "config: absurd vocab_size" 'config\.json' emb
fresh; cfg '"num_hidden_layers": 2' '"num_hidden_layers": 2147483648'
expect_error "config: layers past int" 'config\.json' emb
fresh; cfg '"num_hidden_layers": 2' '"num_hidden_layers": 3'
expect_error "config: more layers than the weights" 'model\.safetensors: missing tensor encoder\.layer\.2\.' emb
fresh; cfg '"intermediate_size": 512' '"intermediate_size": 500'
expect_error "config: intermediate_size disagreeing with the weights" 'model\.safetensors: tensor .*shape' emb
fresh; cfg '"vocab_size": 502' '"vocab_size": 503'
expect_error "config: vocab_size disagreeing with the weights" 'model\.safetensors: tensor .*shape' emb
fresh; cfg '"layer_norm_eps": 1e-05' '"layer_norm_eps": "small"'
expect_error "config: layer_norm_eps a string" 'config\.json.*layer_norm_eps' emb
fresh; cfg '"hidden_dropout_prob": 0.1' '"hidden_dropout_prob": 1.5'
expect_error "config: dropout above 1" 'config\.json.*hidden_dropout_prob' emb
fresh; cfg '"hidden_act": "gelu"' '"hidden_act": "relu"'
expect_error "config: hidden_act not gelu" 'config\.json.*hidden_act' emb

# ---- tokenizer models ----
tokz() { echo "hello world" | "$XLMR" tokenize --model "$1"; }
: >"$TMP/empty.model"
expect_error "spm: empty .model" 'empty\.model' tokz "$TMP/empty.model"
head -c 1000 "$SPM" >"$TMP/trunc.model"
expect_error "spm: truncated .model" 'trunc\.model' tokz "$TMP/trunc.model"
head -c $(($(wc -c <"$SPM") - 3)) "$SPM" >"$TMP/trunc3.model"
expect_error "spm: .model 3 bytes short" 'trunc3\.model' tokz "$TMP/trunc3.model"
garbage 5000 spm >"$TMP/random.model"
expect_error "spm: random bytes" 'random\.model' tokz "$TMP/random.model"
printf '\012\377\377\377\377\017' >"$TMP/hugelen.model"
expect_error "spm: length-delimited field of 4 GiB" 'hugelen\.model' tokz "$TMP/hugelen.model"
printf '\012\005\012\003abc' >"$TMP/nounk.model"
expect_error "spm: no unknown piece" 'nounk\.model' tokz "$TMP/nounk.model"
# a model with only its <unk> piece (found by fuzzing): SentencePiece ids work, XLM-R ids cannot
cp "$ROOT"/fuzz/regressions/spm_model/crash-6640a1fcb5d48dadccc6eb073627d3289e2cc517 "$TMP/onepiece.model"
expect_error "spm: one piece, XLM-R ids" 'onepiece\.model: 1 piece' tokz "$TMP/onepiece.model"
check "spm: one piece, SentencePiece ids" sh -c "echo hello | '$XLMR' tokenize --spm-ids --model '$TMP/onepiece.model'"
cp "$ROOT/tests/fixtures/eval/hand/en.json" "$TMP/json.model"
expect_error "spm: a JSON file" 'json\.model' tokz "$TMP/json.model"
expect_error "spm: missing file" 'nope\.model' tokz "$TMP/nope.model"
expect_error "spm: folder without sentencepiece.bpe.model" 'sentencepiece\.bpe\.model' tokz "$TMP"
expect_error "init: bad tokenizer" 'random\.model' "$XLMR" init --tokenizer "$TMP/random.model" --out "$TMP/x" --preset tiny
fresh; cp "$TMP/trunc.model" "$B/sentencepiece.bpe.model"
expect_error "embed: truncated sentencepiece.bpe.model" 'sentencepiece\.bpe\.model' emb
fresh; rm "$B/sentencepiece.bpe.model"
expect_error "embed: no sentencepiece.bpe.model" 'sentencepiece\.bpe\.model' emb
fresh; cp "$ROOT/tests/fixtures/tokenizer/bf.model" "$B/sentencepiece.bpe.model"
expect_error "embed: tokenizer larger than the vocabulary" '(sentencepiece\.bpe\.model|vocab)' emb

# ---- data files: eval / pairs ----
mkdir -p "$TMP/d1" "$TMP/d2" "$TMP/d3" "$TMP/d4" "$TMP/d5"
head -c 200 "$EVALFIX/en.json" >"$TMP/d1/en.json"
echo '{"version": "1", "paragraphs": []}' >"$TMP/d2/en.json"
sed 's/"answer_start": 21/"answer_start": 999/' "$EVALFIX/en.json" >"$TMP/d3/en.json"
sed 's/"answer_start": 21/"answer_start": -1/' "$EVALFIX/en.json" >"$TMP/d4/en.json"
printf '\357\273\277' >"$TMP/d5/en.json"; garbage 300 squad >>"$TMP/d5/en.json"
pairs() { "$XLMR" pairs --dataset xquad-r --data "$1" --langs en --split all; }
ev() { "$XLMR" eval --model "$M" --dataset xquad-r --data "$1" --langs en; }
expect_error "pairs: truncated JSON" 'd1/en\.json: line [0-9]+' pairs "$TMP/d1"
expect_error "pairs: not SQuAD format" 'd2/en\.json: .*SQuAD' pairs "$TMP/d2"
expect_error "pairs: answer outside every sentence" 'd3/en\.json: .*outside every sentence' pairs "$TMP/d3"
expect_error "pairs: negative answer_start" 'd4/en\.json' pairs "$TMP/d4"
expect_error "pairs: random bytes" 'd5/en\.json' pairs "$TMP/d5"
expect_error "pairs: missing language file" 'de\.json' "$XLMR" pairs --dataset xquad-r --data "$TMP/d2" --langs de --split all
expect_error "pairs: squad, truncated file" 'd1/en\.json' "$XLMR" pairs --dataset squad --data "$TMP/d1/en.json"
expect_error "pairs: squad, empty folder" 'empty-dir' sh -c "mkdir -p \"$TMP/empty-dir\" && \"$XLMR\" pairs --dataset squad --data \"$TMP/empty-dir\""
expect_error "eval: truncated JSON" 'd1/en\.json: line [0-9]+' ev "$TMP/d1"
expect_error "eval: not SQuAD format" 'd2/en\.json: .*SQuAD' ev "$TMP/d2"
expect_error "eval: answer outside every sentence" 'd3/en\.json: .*outside every sentence' ev "$TMP/d3"
expect_error "eval: random bytes" 'd5/en\.json' ev "$TMP/d5"
fresh; : >"$B/config.json"
expect_error "eval: broken model folder" 'config\.json' "$XLMR" eval --model "$B" --dataset xquad-r --data "$EVALFIX" --langs en

# ---- training files: train / batches ----
printf 'g1\ten\tq\tp\ng2\ten\tq only\n' >"$TMP/cols.tsv"
printf 'g1\ten\tq\tp\ng2\ten\tq\tp\th\textra\n' >"$TMP/cols6.tsv"
printf 'g1\ten\tq\tp\ng2\ten\tq \377\tp\n' >"$TMP/utf8.tsv"
printf 'g1\ten\tq\tp\ng2\ten\t\tp\n' >"$TMP/emptyq.tsv"
printf 'g1\ten\tq\tp\ng2\ten\tq\t\n' >"$TMP/emptyp.tsv"
printf 'g1\ten\tq\tp\ng2\ten\tq\tp\t\n' >"$TMP/emptyh.tsv"
printf 'g1\ten\tq\tp\n\ten\tq\tp\n' >"$TMP/emptyg.tsv"
printf 'g1\ten\tq\tp\ng2\ten us\tq\tp\n' >"$TMP/lang.tsv"
printf 'g1\ten\tq\tp\ng1\ten\tq2\tp2\n' >"$TMP/dup.tsv"
printf '# only a comment\n\n' >"$TMP/norows.tsv"
: >"$TMP/empty.tsv"
printf 'g1\ten\tq\000x\tp\n' >"$TMP/nul.tsv"
garbage 3000 tsv >"$TMP/random.tsv"
bat() { "$XLMR" batches --train "$1" --batch 1 --steps 1; }
tr_() { "$XLMR" train --model "$M" --train "$1" --out "$TMP/run" --batch 1 --steps 1 --quiet; }
for f in cols:'cols\.tsv:2' cols6:'cols6\.tsv:2' utf8:'utf8\.tsv:2' emptyq:'emptyq\.tsv:2' emptyp:'emptyp\.tsv:2' \
         emptyh:'emptyh\.tsv:2' emptyg:'emptyg\.tsv:2' lang:'lang\.tsv:2' dup:'dup\.tsv:2' norows:'norows\.tsv' \
         empty:'empty\.tsv' nul:'nul\.tsv:1' random:'random\.tsv'; do
    name=${f%%:*} pat=${f#*:}
    expect_error "batches: $name.tsv" "$pat" bat "$TMP/$name.tsv"
    expect_error "train: $name.tsv" "$pat" tr_ "$TMP/$name.tsv"
done
expect_error "batches: missing file" 'nope\.tsv' bat "$TMP/nope.tsv"
expect_error "train: missing file" 'nope\.tsv' tr_ "$TMP/nope.tsv"
expect_error "train: bad --dev file" 'utf8\.tsv:2' "$XLMR" train --model "$M" --train "$TRAINFIX/dev.tsv" --dev "$TMP/utf8.tsv" --out "$TMP/run2" --batch 1 --steps 1 --quiet
fresh; : >"$B/config.json"
expect_error "train: broken model folder" 'config\.json' "$XLMR" train --model "$B" --train "$TRAINFIX/dev.tsv" --out "$TMP/run3" --batch 1 --steps 1 --quiet

# ---- checkpoints: --resume from a damaged checkpoint ----
# 4 groups, the last with one language: cross batches draw from the first 3
printf 'g0\ten\tq0\tp0\ng0\tde\tq0de\tp0de\ng1\ten\tq1\tp1\ng1\tde\tq1de\tp1de\ng2\ten\tq2\tp2\ng2\tde\tq2de\tp2de\ng3\ten\tq3\tp3\n' >"$TMP/ck.tsv"
CKARGS=(--model "$M" --train "$TMP/ck.tsv" --sampling cross --batch 1 --steps 4 --save-every 2 --quiet)
if "$XLMR" train "${CKARGS[@]}" --out "$TMP/ck0" >/dev/null 2>&1 && [ -f "$TMP/ck0/checkpoint-2/trainer_state.bin" ]; then
    rm -rf "$TMP/ck0/checkpoint-4" "$TMP/ck0/final" # resume from checkpoint-2
    ck() { rm -rf "$TMP/ck"; cp -r "$TMP/ck0" "$TMP/ck"; C=$TMP/ck/checkpoint-2; }
    resume() { "$XLMR" train "${CKARGS[@]}" --out "$TMP/ck" --resume; }
    ck
    check "resume from an intact checkpoint" sh -c "\"$XLMR\" train $(printf '%q ' "${CKARGS[@]}") --out \"$TMP/ck\" --resume >/dev/null"
    ck; head -c 10 "$TMP/ck0/checkpoint-2/trainer_state.bin" >"$C/trainer_state.bin"
    expect_error "resume: truncated trainer_state.bin" 'trainer_state\.bin: truncated' resume
    ck; garbage 320 ts >"$C/trainer_state.bin"
    expect_error "resume: random trainer_state.bin" 'trainer_state\.bin' resume
    ck; SZ=$(wc -c <"$C/trainer_state.bin"); head -c $((SZ - 4)) "$TMP/ck0/checkpoint-2/trainer_state.bin" >"$C/trainer_state.bin"
    expect_error "resume: sampler state cut short" 'trainer_state\.bin: sampler state is truncated' resume
    # the last order entry of the cross pool (3 groups) set to group 3, which has one language:
    # the pool would draw a cross pair from a one-row group (fuzz/regressions/sampler_state)
    ck; SZ=$(wc -c <"$C/trainer_state.bin")
    printf '\003\000\000\000' | dd of="$C/trainer_state.bin" bs=1 seek=$((SZ - 28 - 4)) conv=notrunc 2>/dev/null
    expect_error "resume: sampler state naming a group outside its pool" 'trainer_state\.bin: sampler state is corrupt' resume
    ck; printf '\377\377\377\377' | dd of="$C/trainer_state.bin" bs=1 seek=$(($(wc -c <"$C/trainer_state.bin") - 4)) conv=notrunc 2>/dev/null
    expect_error "resume: sampler state with a group index out of range" 'trainer_state\.bin: sampler state is corrupt' resume
    ck; head -c 100 "$TMP/ck0/checkpoint-2/optimizer.bin" >"$C/optimizer.bin"
    expect_error "resume: truncated optimizer.bin" 'optimizer\.bin' resume
    ck; printf 'x' >>"$C/optimizer.bin"
    expect_error "resume: optimizer.bin with a trailing byte" 'optimizer\.bin' resume
    ck; garbage 4096 opt >"$C/optimizer.bin"
    expect_error "resume: random optimizer.bin" 'optimizer\.bin' resume
    ck; head -c 5000 "$TMP/ck0/checkpoint-2/model.safetensors" >"$C/model.safetensors"
    expect_error "resume: truncated checkpoint model.safetensors" 'model\.safetensors' resume
    ck; rm "$C/trainer_state.bin" # incomplete by design (trainer_state.bin is written last): not a checkpoint
    check "resume: a checkpoint without trainer_state.bin is skipped (starts over)" resume
else
    fail "train a checkpoint to damage (every resume case depends on it)"
fi

# ---- arguments, per subcommand ----
DEV=$TRAINFIX/dev.tsv
args_battery() { # CMD NUMERIC_OPTION VALUE_OPTION REQUIRED_ARGS...: unknown option, missing value, non-numeric number
    local cmd=$1 numopt=$2 valopt=$3; shift 3
    expect_error "$cmd: unknown option" "^xlmr: $cmd: unknown option '--bogus'" "$XLMR" "$cmd" "$@" --bogus </dev/null
    expect_error "$cmd: missing value ($valopt at the end)" "$valopt needs a value" "$XLMR" "$cmd" "$@" "$valopt" </dev/null
    [ "$numopt" = - ] && return
    expect_error "$cmd: missing value ($numopt at the end)" "$numopt needs a value" "$XLMR" "$cmd" "$@" "$numopt" </dev/null
    expect_error "$cmd: non-numeric number ($numopt 12abc)" "$numopt expects an? (integer|number)" "$XLMR" "$cmd" "$@" "$numopt" 12abc </dev/null
    expect_error "$cmd: empty number ($numopt '')" "$numopt expects an? (integer|number)" "$XLMR" "$cmd" "$@" "$numopt" '' </dev/null
}
args_battery init --seed --preset --tokenizer "$SPM" --out "$TMP/a1"
args_battery tokenize --max-len --model --model "$SPM"
args_battery embed --batch --pooling --model "$M"
args_battery pairs - --split --dataset xquad-r --data "$EVALFIX"
args_battery batches --steps --sampling --train "$DEV"
args_battery train --lr --sampling --model "$M" --train "$DEV" --out "$TMP/a2"
args_battery eval --batch --json --model "$M" --dataset xquad-r --data "$EVALFIX"
args_battery experiment --seeds --sizes --quick --out "$TMP/a3"
args_battery bench --steps --size gemm --size small
args_battery plot - --out "$TMP/no.jsonl"
expect_error "plot: a missing log" "no.jsonl: cannot open" "$XLMR" plot "$TMP/no.jsonl"
expect_error "train: --multi-dataset bad" "train: --multi-dataset must be" "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a2" --multi-dataset x
expect_error "train: non-numeric float (--alpha 0.5x)" "alpha expects" "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a2" --alpha 0.5x
expect_error "batches: non-numeric float (--alpha x)" "alpha expects" "$XLMR" batches --train "$DEV" --alpha x
expect_error "init: --tokenizer required" 'tokenizer' "$XLMR" init --out "$TMP/a1"
expect_error "init: --out required" 'out' "$XLMR" init --tokenizer "$SPM"
expect_error "tokenize: --model required" 'model' "$XLMR" tokenize </dev/null
expect_error "embed: --model required" 'model' "$XLMR" embed </dev/null
expect_error "pairs: --dataset required" 'dataset' "$XLMR" pairs --data "$EVALFIX"
expect_error "pairs: --data required" 'data' "$XLMR" pairs --dataset xquad-r
expect_error "batches: --train required" 'train' "$XLMR" batches
expect_error "one prefix: a required option" "^xlmr: eval: --model is required" "$XLMR" eval --dataset xquad-r --data "$EVALFIX"
expect_error "one prefix: a command's own check" "^xlmr: tokenize: --spm-ids and --pieces exclude each other" "$XLMR" tokenize --model "$SPM" --spm-ids --pieces </dev/null
expect_error "train: --model required" 'model' "$XLMR" train --train "$DEV" --out "$TMP/a2"
expect_error "train: --train required" 'train' "$XLMR" train --model "$M" --out "$TMP/a2"
expect_error "train: --out required" 'out' "$XLMR" train --model "$M" --train "$DEV"
expect_error "eval: --model required" 'model' "$XLMR" eval --dataset xquad-r --data "$EVALFIX"
expect_error "eval: --dataset required" 'dataset' "$XLMR" eval --model "$M" --data "$EVALFIX"
expect_error "eval: --data required" 'data' "$XLMR" eval --model "$M" --dataset xquad-r
expect_error "bench: no benchmark named" 'gemm' "$XLMR" bench
expect_error "bench: unknown benchmark" 'bogus|gemm' "$XLMR" bench bogus
expect_error "unknown command" "unknown command 'bogus'" "$XLMR" bogus
expect_error "batches: --batch 0" 'batch' "$XLMR" batches --train "$DEV" --batch 0
expect_error "batches: --batch -1" 'batch' "$XLMR" batches --train "$DEV" --batch -1
expect_error "batches: --batch past int" 'batch' "$XLMR" batches --train "$DEV" --batch 99999999999999999999
expect_error "batches: --alpha 2" 'alpha' "$XLMR" batches --train "$DEV" --alpha 2
expect_error "batches: --alpha nan" 'alpha' "$XLMR" batches --train "$DEV" --alpha nan
expect_error "embed: --batch 0" 'batch' "$XLMR" embed --model "$M" --batch 0 </dev/null
expect_error "embed: --max-len 1" 'max-len' "$XLMR" embed --model "$M" --max-len 1 </dev/null
expect_error "tokenize: --max-len -5" 'max-len' "$XLMR" tokenize --model "$SPM" --max-len -5 </dev/null
expect_error "tokenize: two input files" 'tokenize' "$XLMR" tokenize --model "$SPM" "$DEV" "$DEV" </dev/null
expect_error "tokenize: missing input file" 'nope\.txt' "$XLMR" tokenize --model "$SPM" "$TMP/nope.txt"
expect_error "train: --lr -1" 'lr' "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a4" --lr -1 --steps 1 --batch 1 --quiet
expect_error "train: --temperature 0" 'temperature' "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a4" --temperature 0 --steps 1 --batch 1 --quiet
expect_error "train: --chunk 0" 'chunk' "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a4" --chunk 0 --steps 1 --batch 1 --quiet

expect_error "embed --ids: id past the vocabulary" '(vocabulary|token ids|502)' sh -c "echo '0 502 2' | \"$XLMR\" embed --model \"$M\" --ids"
expect_error "embed --ids: id past int" 'line 1' sh -c "echo '0 99999999999 2' | \"$XLMR\" embed --model \"$M\" --ids"
expect_error "embed --ids: negative id" 'line 1' sh -c "echo '0 -1 2' | \"$XLMR\" embed --model \"$M\" --ids"
expect_error "embed --ids: not numbers" 'line 2' sh -c "printf '0 2\\n0 x 2\\n' | \"$XLMR\" embed --model \"$M\" --ids"
expect_error "eval: a language twice" 'en' "$XLMR" eval --model "$M" --dataset xquad-r --data "$EVALFIX" --langs en,en
expect_error "pairs: a path as language code" 'language code' "$XLMR" pairs --dataset xquad-r --data "$EVALFIX" --langs ../../etc/passwd
expect_error "init: too many parameters" 'parameters' "$XLMR" init --tokenizer "$SPM" --out "$TMP/a5" --preset tiny --layers 100000 --hidden 65536
expect_error "init: hidden past any sane size" 'hidden' "$XLMR" init --tokenizer "$SPM" --out "$TMP/a5" --preset tiny --hidden 2147483647
expect_error "init: negative ffn" 'ffn' "$XLMR" init --tokenizer "$SPM" --out "$TMP/a5" --preset tiny --ffn -4

# ---- hardening round 2 (issue 16) ----
# 1. non-finite weights: refused at load with the tensor and index; an overflow
#    to NaN at run time is an error naming the text, never a rank or a printed NaN
toff() { head -c $((8 + HLEN)) "$ST" | tail -c +9 | grep -ao "\"$1\":{[^}]*}" | sed 's/.*data_offsets":\[\([0-9]*\),.*/\1/'; }
poke() { printf "$3" | dd of="$B/model.safetensors" bs=1 seek=$((8 + HLEN + $2)) conv=notrunc 2>/dev/null; }
fresh; poke x $(($(toff encoder.layer.0.output.dense.weight) + 4 * 123)) '\000\000\200\177'
expect_error "weights: +Inf in layer 0 output.dense" 'model\.safetensors: tensor encoder\.layer\.0\.output\.dense\.weight has a non-finite value \(inf\) at index 123' emb
fresh; poke x $(($(toff embeddings.word_embeddings.weight) + 4 * 700)) '\000\000\300\177'
expect_error "weights: one NaN in a word-embedding row" 'tensor embeddings\.word_embeddings\.weight has a non-finite value \(nan\) at index 700' emb
fresh; bsub "$B/model.safetensors" '"dtype":"F32"' '"dtype":"F32"'
for i in 0 1 2 3 4 5 6 7; do poke x $(($(toff embeddings.LayerNorm.weight) + 4 * i)) '\377\377\177\177'; done # FLT_MAX: finite, overflows
expect_error "embed: an embedding overflowing to NaN is an error, not -nan" 'embed: line 1: the model gives a non-finite embedding' emb
eval_nan_rc() { "$XLMR" eval --model "$B" --dataset xquad-r --data "$EVALFIX" --langs en,de >"$TMP/ev.out" 2>"$TMP/ev.err"; echo $?; }
rc=$(eval_nan_rc)
if [ "$rc" = 1 ] && ! grep -q 'mono' "$TMP/ev.out" && tail -1 "$TMP/ev.err" | grep -q '^xlmr: eval: the model gives a non-finite embedding for question a (en)'; then
    pass "eval: NaN embeddings: exit 1 naming the question, no table"; else fail "eval: NaN embeddings (exit $rc: $(tail -1 "$TMP/ev.err"))"; fi

# 2. output that cannot be written is an error naming it
expect_error "eval >/dev/full" 'stdout: write error: No space left' sh -c "\"$XLMR\" eval --model \"$M\" --dataset xquad-r --data \"$EVALFIX\" --langs en,de >/dev/full 2>\"$TMP/e.err\"; rc=\$?; grep '^xlmr' \"$TMP/e.err\" >&2; exit \$rc"
expect_error "batches >/dev/full" 'stdout: write error' sh -c "\"$XLMR\" batches --train \"$TRAINFIX/dev.tsv\" --batch 2 --steps 3 >/dev/full"
expect_error "train >/dev/full (its JSON summary)" 'stdout: write error' sh -c "\"$XLMR\" train --model \"$M\" --train \"$TRAINFIX/dev.tsv\" --out \"$TMP/full\" --batch 1 --steps 1 --quiet >/dev/full"
expect_error "pairs >/dev/full" 'stdout: write error' sh -c "\"$XLMR\" pairs --dataset xquad-r --data \"$EVALFIX\" --langs en,de >/dev/full 2>\"$TMP/p.err\"; rc=\$?; grep xlmr \"$TMP/p.err\" >&2; exit \$rc"
expect_error "tokenize >/dev/full" 'stdout: write error' sh -c "echo hello | \"$XLMR\" tokenize --model \"$SPM\" >/dev/full"
expect_error "embed >/dev/full" 'stdout: write error' sh -c "echo hello | \"$XLMR\" embed --model \"$M\" >/dev/full"
expect_error "embed: a directory as stdin" 'stdin: read error: Is a directory' sh -c "\"$XLMR\" embed --model \"$M\" <\"$TMP\""
expect_error "embed: stdin closed" 'stdin: read error: Bad file descriptor' sh -c "\"$XLMR\" embed --model \"$M\" <&-"
expect_error "tokenize: a directory as stdin" 'stdin: read error: Is a directory' sh -c "\"$XLMR\" tokenize --model \"$SPM\" <\"$TMP\""
expect_error "train --log on a full disk" 'full.*write error' "$XLMR" train --model "$M" --train "$TRAINFIX/dev.tsv" --out "$TMP/full2" --batch 1 --steps 2 --quiet --log /dev/full

# 3. one run per output folder: a second run on a locked --out refuses at once,
#    the first is untouched. The first blocks reading its --train FIFO, which it
#    opens after taking the lock: once our writer's open returns, it holds it.
rm -f "$TMP/fifo.tsv"; mkfifo "$TMP/fifo.tsv"
"$XLMR" train --model "$M" --train "$TMP/fifo.tsv" --out "$TMP/locked" --batch 1 --steps 2 --quiet >"$TMP/first.out" 2>"$TMP/first.err" &
FIRST=$!
exec 3>"$TMP/fifo.tsv"
expect_error "train: a second run on the same --out refuses" "locked: another xlmr run holds this folder \\(pid $FIRST\\)" \
    "$XLMR" train --model "$M" --train "$TRAINFIX/dev.tsv" --out "$TMP/locked" --batch 1 --steps 2 --quiet
expect_error "experiment: --out held by a training run refuses" "locked: another xlmr run holds this folder \\(pid $FIRST\\)" \
    "$XLMR" experiment --quick --out "$TMP/locked" --data "$TMP/nodata"
cat "$TRAINFIX/dev.tsv" >&3; exec 3>&-
wait $FIRST; rc=$?
if [ "$rc" -eq 0 ] && [ -d "$TMP/locked/final" ] && grep -q '"steps": 2' "$TMP/first.out"; then pass "train: the first run is untouched by the refused one"
else fail "train: the first run (exit $rc: $(head -c 300 "$TMP/first.err"))"; fi
check "train: the lock is released at the end (a resume takes it)" "$XLMR" train --model "$M" --train "$TRAINFIX/dev.tsv" --out "$TMP/locked" --batch 1 --steps 2 --quiet --resume

# 5. a UTF-8 byte order mark is no part of the text
{ printf '\357\273\277# pairs with a BOM\n'; grep -v '^#' "$TRAINFIX/dev.tsv"; } >"$TMP/bom_comment.tsv"
{ printf '\357\273\277'; grep -v '^#' "$TRAINFIX/dev.tsv"; } >"$TMP/bom.tsv"
grep -v '^#' "$TRAINFIX/dev.tsv" >"$TMP/nobom.tsv"
check "TSV: a BOM before a # comment" "$XLMR" batches --train "$TMP/bom_comment.tsv" --batch 2 --steps 2
same_batches() { cmp -s <("$XLMR" batches --train "$TMP/bom.tsv" --sampling mono --batch 4 --steps 20) <("$XLMR" batches --train "$TMP/nobom.tsv" --sampling mono --batch 4 --steps 20); }
check "TSV: a BOM is not part of the first group id (mono batches as without it)" same_batches
fresh; { printf '\357\273\277'; cat "$M/config.json"; } >"$B/config.json"
check "config.json with a BOM loads (json_parse skips it)" emb
mkdir -p "$TMP/bomdata"; cp "$EVALFIX"/*.json "$TMP/bomdata/"; { printf '\357\273\277'; cat "$EVALFIX/en.json"; } >"$TMP/bomdata/en.json"
same_eval() { cmp -s <("$XLMR" eval --model "$M" --dataset xquad-r --data "$TMP/bomdata" --langs en,de 2>/dev/null | grep -v embedding) \
                    <("$XLMR" eval --model "$M" --dataset xquad-r --data "$EVALFIX" --langs en,de 2>/dev/null | grep -v embedding | sed "s#$EVALFIX#$TMP/bomdata#"); }
check "eval: a JSON data file with a BOM reads as without it" same_eval
same_embed() { cmp -s <(printf '\357\273\277hello\nworld\n' | "$XLMR" embed --model "$M") <(printf 'hello\nworld\n' | "$XLMR" embed --model "$M"); }
check "embed: a BOM on stdin is not part of the first line" same_embed
same_tok() { cmp -s <(printf '\357\273\277hello\n' | "$XLMR" tokenize --model "$SPM") <(printf 'hello\n' | "$XLMR" tokenize --model "$SPM"); }
check "tokenize: a BOM on stdin is not part of the first line" same_tok

# 6. a language without questions is missing, not 0
mkdir -p "$TMP/nodedata"; cp "$EVALFIX/en.json" "$TMP/nodedata/"; echo '{"data": []}' >"$TMP/nodedata/de.json"
"$XLMR" eval --model "$M" --dataset xquad-r --data "$TMP/nodedata" --langs en,de --json "$TMP/node.json" >"$TMP/node.out" 2>"$TMP/node.err"; rc=$?
if [ "$rc" -eq 0 ] && grep -qE '^de +n/a +n/a' "$TMP/node.out" && grep -q '"de": null' "$TMP/node.json" && grep -q 'de has no questions' "$TMP/node.err"; then
    pass "eval: a language without questions is n/a (JSON null), with a note"; else fail "eval: a language without questions (exit $rc)"; fi

# 7. small files have a size limit; an endless one stops there
fresh; rm "$B/config.json"; ln -s /dev/zero "$B/config.json"
expect_error "config.json -> /dev/zero stops at the limit" 'config\.json: larger than 16 MB' emb
fresh; truncate -s 20M "$B/config.json"
expect_error "config.json of 20 MB" 'config\.json: larger than 16 MB' emb
expect_error "tokenizer model -> /dev/zero stops at the limit" 'larger than 1024 MB' "$XLMR" tokenize --model /dev/zero

# 8. one rule per kind of option
expect_error "train: --steps 0" 'train: --steps must be an integer >= 1' "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a6" --steps 0
expect_error "train: --epochs 0" 'train: --epochs must be a number > 0' "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a6" --epochs 0
expect_error "train: --epochs 1e9" 'train: --epochs must be in \(0, 1e6\], got 1e\+09' "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a6" --epochs 1e9
expect_error "batches: --steps 0" 'batches: --steps must be an integer >= 1' "$XLMR" batches --train "$DEV" --steps 0
expect_error "batches: --alpha 2" 'batches: --alpha must be a number in \[0, 1\]' "$XLMR" batches --train "$DEV" --alpha 2
expect_error "embed: --max-len 2" 'embed: --max-len must be an integer >= 3' "$XLMR" embed --model "$M" --max-len 2
expect_error "eval: --max-len 2" 'eval: --max-len must be an integer >= 3' "$XLMR" eval --model "$M" --dataset xquad-r --data "$EVALFIX" --max-len 2
expect_error "experiment: --batch 0" 'experiment: --batch must be an integer >= 1' "$XLMR" experiment --batch 0
check "train: --chunk 1000000000 is capped at the batch" "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a7" --batch 1 --steps 1 --chunk 1000000000 --quiet
expect_error "train: non-UTF-8 --query-prefix" 'train: --query-prefix must be valid UTF-8' "$XLMR" train --model "$M" --train "$DEV" --out "$TMP/a6" --query-prefix $'Q\377: '
expect_error "eval: non-UTF-8 --passage-prefix" 'eval: --passage-prefix must be valid UTF-8' "$XLMR" eval --model "$M" --dataset xquad-r --data "$EVALFIX" --passage-prefix $'\300\257'

# 9. parser laxness
mkst '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}' 12 "$TMP/overlap.safetensors"
fresh; cp "$TMP/overlap.safetensors" "$B/model.safetensors"
expect_error "safetensors: overlapping data_offsets" 'model\.safetensors: tensor b: data_offsets \[4, 12\] overlap tensor a' emb
fresh; mkst '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' 8 "$B/model.safetensors"
expect_error "safetensors: a tensor name twice" 'model\.safetensors: tensor a appears twice' emb
fresh; mkst '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}' 12 "$B/model.safetensors"
expect_error "safetensors: bytes between tensors" 'model\.safetensors: bytes 4 to 8 of the data belong to no tensor' emb
fresh; head -c 4096 /dev/zero >>"$B/model.safetensors"
expect_error "safetensors: an unindexed tail" 'model\.safetensors: 4096 bytes after the last tensor belong to no tensor' emb
fresh; cfg '"position_embedding_type": "absolute"' '"position_embedding_type": "relative_key"'
expect_error "config: position_embedding_type relative_key" 'config\.json: position_embedding_type "relative_key" not supported' emb
fresh; cfg '"position_embedding_type": "absolute"' '"position_embedding_type": 3'
expect_error "config: position_embedding_type not a string" 'config\.json.*position_embedding_type' emb
fresh; sed -i '/position_embedding_type/d' "$B/config.json"
check "config: position_embedding_type absent means absolute" emb
cp "$SPM" "$TMP/nanscore.model"; printf '\000\000\300\177' | dd of="$TMP/nanscore.model" bs=1 seek=53 conv=notrunc 2>/dev/null
expect_error "spm: a NaN piece score" 'nanscore\.model: piece 3 has a non-finite score \(nan\)' tokz "$TMP/nanscore.model"
cp "$SPM" "$TMP/infscore.model"; printf '\000\000\200\377' | dd of="$TMP/infscore.model" bs=1 seek=53 conv=notrunc 2>/dev/null
expect_error "spm: a -Inf piece score" 'infscore\.model: piece 3 has a non-finite score \(inf\)' tokz "$TMP/infscore.model"
fresh; cp "$B/model.safetensors" "$TMP/kept.safetensors"
expect_error "init --out an existing model folder" 'init: .*holds a model folder already \(config\.json\): pass --force' "$XLMR" init --tokenizer "$SPM" --out "$B" --preset nano
check "init --out an existing model folder: left as it was" cmp -s "$B/model.safetensors" "$TMP/kept.safetensors"
check "init --force overwrites it" "$XLMR" init --tokenizer "$SPM" --out "$B" --preset nano --force
if [ -d "$TMP/ck0/checkpoint-2" ]; then
    ck
    expect_error "resume: --bf16 is part of the resume key" 'checkpoint was made with another --bf16' "$XLMR" train "${CKARGS[@]}" --out "$TMP/ck" --resume --bf16
fi

# ---- arbitrary bytes as text: processed, one line out per line in ----
{ printf 'plain line\n'; printf 'bad \377\376 utf8 \300\257 \355\240\200 \364\220\200\200\n'; printf 'nul \000 inside \000\000\n'
  printf '\n'; printf '\r\n'; printf '<s></s><mask><pad><unk>\n'; printf '\t\v\f \342\200\203\n'
  head -c 1048576 /dev/zero | tr '\0' 'a'; printf '\n'
  garbage 2000 txt | tr -d '\n'; printf '\n'; } >"$TMP/weird.txt"
NIN=$(wc -l <"$TMP/weird.txt")
lines_ok() { local out; out=$("$@" <"$TMP/weird.txt" | wc -l) && [ "$out" -eq "$NIN" ]; }
check "tokenize: arbitrary bytes, $NIN lines in = out" lines_ok "$XLMR" tokenize --model "$SPM"
check "tokenize --spm-ids: arbitrary bytes" lines_ok "$XLMR" tokenize --model "$SPM" --spm-ids
check "tokenize --pieces: arbitrary bytes" lines_ok "$XLMR" tokenize --model "$SPM" --pieces
check "tokenize --max-len 8: arbitrary bytes" lines_ok "$XLMR" tokenize --model "$SPM" --max-len 8
check "embed: arbitrary bytes" lines_ok "$XLMR" embed --model "$M" --max-len 64
check "embed --pooling cls --batch 3: arbitrary bytes" lines_ok "$XLMR" embed --model "$M" --max-len 32 --pooling cls --batch 3
check "embed: no stderr output on arbitrary bytes" sh -c "\"$XLMR\" embed --model \"$M\" --max-len 32 <\"$TMP/weird.txt\" 2>&1 >/dev/null | (! grep -q .)"
summary badinput
