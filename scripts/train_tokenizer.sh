#!/usr/bin/env bash
# scripts/train_tokenizer.sh: rebuilds tokenizer/xlmrc.model, the project's
# multilingual SentencePiece unigram model (see tokenizer/README.md).
#   scripts/train_tokenizer.sh [OUT_PREFIX]     (default tokenizer/xlmrc)
# Reads ${DATA:-data} (falls back to ../shared/data). Needs spm_train and python3.
# Deterministic: the sample is a fixed prefix of each source in file order, the
# trainer loads every sampled line (no shuffling) and runs on a fixed thread count.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DATA=${DATA:-data}
[ -d "$DATA" ] || DATA=../shared/data
[ -d "$DATA/parallel" ] || { echo "train_tokenizer.sh: no data in $DATA" >&2; exit 1; }
OUT=${1:-tokenizer/xlmrc}
VOCAB=${VOCAB:-32000}
CAP_BYTES=${CAP_BYTES:-600000}
PY=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/xlmrc-spm.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Language-balanced sample of NON-evaluation text (never xquad-r or mlqa-r):
# per language, NTREX first, then its Tatoeba side, then native/SQuAD-train QA
# text (questions and contexts, in file order), each language capped at
# CAP_BYTES of UTF-8, so that no language dominates the piece inventory.
"$PY" - "$DATA" "$CAP_BYTES" "$WORK/sample.txt" <<'PYEOF'
import json, os, sys
data, cap, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
langs = "ar de el en es hi ru th tr vi zh".split()
def lines_of(path):
    with open(path, encoding="utf-8") as f:
        for l in f:
            l = l.rstrip("\n").strip()
            if l: yield l
def tsv(path, col):
    for l in lines_of(path):
        parts = l.split("\t")
        if len(parts) == 2 and parts[col].strip(): yield parts[col].strip()
def squad(path):
    with open(path, encoding="utf-8") as f: d = json.load(f)
    for art in d["data"]:
        for p in art["paragraphs"]:
            for line in p["context"].split("\n"):
                if line.strip(): yield line.strip()
            for q in p["qas"]:
                if q["question"].strip(): yield q["question"].strip()
qa = {"en": ["squad-train/train-v1.1.json"], "ar": ["native-qa/ar-arcd.json"],
      "tr": ["native-qa/tr-tquad-train.json"],
      "zh": ["native-qa/zh-cmrc2018-trial.json", "native-qa/zh-cmrc2018-dev.json"]}
with open(out, "w", encoding="utf-8") as fo:
    for lang in langs:
        srcs = [lines_of(os.path.join(data, "parallel/ntrex", lang + ".txt"))]
        if lang == "en":
            srcs += [tsv(os.path.join(data, "parallel/tatoeba", l + "-en.tsv"), 1) for l in langs if l != "en"]
        else:
            srcs.append(tsv(os.path.join(data, "parallel/tatoeba", lang + "-en.tsv"), 0))
        srcs += [squad(os.path.join(data, p)) for p in qa.get(lang, [])]
        n = nl = 0
        seen = set()
        for src in srcs:
            for l in src:
                if l in seen: continue
                b = len(l.encode("utf-8")) + 1
                if n + b > cap: break
                seen.add(l); fo.write(l + "\n"); n += b; nl += 1
            if n + 200 > cap: break
        print(f"{lang}: {nl} lines, {n} bytes", file=sys.stderr)
PYEOF

# relative names: the trainer_spec stored in the model records them
OUT_ABS=$(mkdir -p "$(dirname "$OUT")" && cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
cd "$WORK"
spm_train --input=sample.txt --model_prefix=xlmrc \
  --model_type=unigram --vocab_size="$VOCAB" \
  --normalization_rule_name=nmt_nfkc --character_coverage=0.9995 \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --input_sentence_size=0 --shuffle_input_sentence=false --random_seed=1 \
  --max_sentence_length=16384 --num_threads=2 --minloglevel=1
cp xlmrc.model "$OUT_ABS.model"
echo "wrote $OUT.model ($(wc -c <"$OUT_ABS.model") bytes)"
