#!/usr/bin/env bash
# fuzz/make_seeds.sh: (re)builds the seed corpora fuzz/seeds/<target>/ from real
# files: the test fixtures of this repository and, where present, slices of the
# shared data sets (XQUAD_DIR / SHARED_DATA, default ../shared/data). The seeds
# are committed (kept small: < 1 MB in all); run this only to refresh them.
# Larger real inputs (the botchan-en / ja SentencePiece models, tokenizer/xlmrc.model)
# are not copied: fuzz/run.sh adds them to the scratch corpus when they exist.
# Usage: fuzz/make_seeds.sh     (needs python3)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SHARED=${SHARED_DATA:-}
if [ -z "$SHARED" ]; then
    for d in ../shared/data /work/shared/data; do [ -d "$d" ] && { SHARED=$d; break; }; done
fi
S=fuzz/seeds
rm -rf "$S"
mkdir -p "$S"/{safetensors,json,spm_model,tokenize,tsv,squad,sampler_state}
export ROOT S SHARED
python3 - <<'PY'
import json, os, struct, glob
S = os.environ["S"]; SHARED = os.environ.get("SHARED", "")

def put(target, name, data):
    if isinstance(data, str): data = data.encode("utf-8")
    with open(os.path.join(S, target, name), "wb") as f: f.write(data)

# ---- safetensors: tiny synthetic files + the real header of a test model
def st(tensors, meta=None, pad=0, align=True):
    hdr, buf = {}, b""
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    if meta is not None: hdr["__metadata__"] = meta
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if align: h += b" " * ((8 - len(h) % 8) % 8)
    h += b" " * pad
    return struct.pack("<Q", len(h)) + h + buf
f32 = lambda *xs: struct.pack("<%df" % len(xs), *xs)
put("safetensors", "f32.safetensors", st([("w", "F32", [2, 3], f32(1, 2, 3, 4, 5, 6)), ("b", "F32", [3], f32(0, -1, 2.5))], {"format": "pt"}))
put("safetensors", "f16_bf16.safetensors", st([("h", "F16", [2, 2], struct.pack("<4H", 0x3c00, 0xc000, 0x7c00, 0x0001)),
                                              ("g", "BF16", [3], struct.pack("<3H", 0x3f80, 0x7fc0, 0x8000))]))
put("safetensors", "scalar_empty.safetensors", st([("s", "F32", [], f32(7)), ("z", "F32", [0, 5], b""), ("i", "I64", [1], struct.pack("<q", -3))], {}))
put("safetensors", "padded.safetensors", st([("x", "F32", [1, 1, 1, 2], f32(1, 2))], {"a": "b"}, pad=16))
put("safetensors", "empty.safetensors", st([], None))
for ref in ("tests/ref/xlmr_b/model.safetensors",):
    if os.path.exists(ref):
        raw = open(ref, "rb").read()
        n = struct.unpack("<Q", raw[:8])[0]
        hdr = json.loads(raw[8:8 + n])
        # the real header (names, shapes, dtypes), re-pointed at 4-element data
        small = []
        for k, v in hdr.items():
            if k == "__metadata__": continue
            small.append((k, "F32", [2, 2], f32(0.5, -0.5, 1, 0)))
            if len(small) == 12: break
        put("safetensors", "xlmr_names.safetensors", st(small, hdr.get("__metadata__", {"format": "pt"})))

# ---- json: config files, edge cases of the grammar, a slice of XQuAD-R
for p in sorted(glob.glob("tests/ref/*/config.json")):
    put("json", "config_" + p.split("/")[-2] + ".json", open(p, "rb").read())
put("json", "config_tiny.json", json.dumps({"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512, "vocab_size": 1000, "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1, "layer_norm_eps": 1e-05, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}, indent=2))
put("json", "escapes.json", '{"a":"\\u00e9\\ud83d\\ude00\\n\\t\\"\\\\\\/\\b\\f\\r\\u0000","b":[1,-0,2.5e-3,1E+2,-1.5e308,0.0],"c":{"d":[[],{}],"e":null,"f":true,"g":false}}')
put("json", "utf8.json", '["日本語", "Ελληνικά", "عربى", "\U0001F600", ""]')
put("json", "deep.json", "[" * 40 + "]" * 40)
put("json", "numbers.json", "[0, 1, -1, 123456789012345678901234567890, 1e400, -1e-400, 0.1, 3.14159e+0]")
put("json", "scalars.json", ' \r\n\t"x" ')

# ---- spm_model: small hand-built unigram models (protobuf written here) + a real small one
def varint(v):
    out = b""
    while True:
        b = v & 0x7f; v >>= 7
        if v: out += bytes([b | 0x80])
        else: return out + bytes([b])
def fld(num, wt, payload):
    key = varint(num << 3 | wt)
    if wt == 0: return key + varint(payload)
    if wt == 5: return key + payload
    return key + varint(len(payload)) + payload
def piece(s, score, typ=1):
    return fld(1, 2, fld(1, 2, s.encode()) + fld(2, 5, struct.pack("<f", score)) + (fld(3, 0, typ) if typ != 1 else b""))
def model(pieces, byte_fallback=False, normalizer=None):
    m = b"".join(piece(*p) for p in pieces)
    m += fld(2, 2, fld(3, 0, 1) + fld(4, 0, len(pieces)) + (fld(35, 0, 1) if byte_fallback else b""))
    if normalizer is not None: m += fld(3, 2, normalizer)
    return m
base = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3)]
words = ["\u2581", "\u2581the", "\u2581a", "e", "t", "a", "o", "n", "s", "th", "he", "in", "\u2581hello", "\u2581world", "日", "本", "語", ",", "."]
pl = base + [(w, -1.0 - i * 0.5) for i, w in enumerate(words)]
put("spm_model", "tiny.model", model(pl, normalizer=fld(1, 2, b"identity") + fld(3, 0, 1) + fld(4, 0, 1) + fld(5, 0, 1)))
put("spm_model", "no_dummy.model", model(pl, normalizer=fld(3, 0, 0) + fld(4, 0, 0)))
put("spm_model", "user.model", model(base + [("<mask>", 0, 4), ("USER", 0, 4)] + pl[3:]))
put("spm_model", "bytes.model", model(base + [("<0x%02X>" % b, 0, 6) for b in range(256)] + pl[3:], byte_fallback=True))
# a tiny precompiled charsmap: a 1-unit trie (root only) and a pool of one string
put("spm_model", "charsmap.model", model(pl, normalizer=fld(1, 2, b"tiny") + fld(2, 2, struct.pack("<I", 4) + struct.pack("<I", 0) + b"a\0")))
if os.path.exists("tests/fixtures/tokenizer/ws.model"):
    put("spm_model", "ws.model", open("tests/fixtures/tokenizer/ws.model", "rb").read())

# ---- tokenize: lines of real text, special tokens, invalid UTF-8
if os.path.exists("tests/fixtures/tokenizer/text.txt"):
    lines = open("tests/fixtures/tokenizer/text.txt", "rb").read().split(b"\n")
    for i in range(0, min(len(lines), 400), 40):
        put("tokenize", "text%03d.txt" % i, lines[i][:400])
if os.path.exists("tests/fixtures/tokenizer/xlmr.txt"):
    for i, l in enumerate(open("tests/fixtures/tokenizer/xlmr.txt", "rb").read().split(b"\n")[:12]):
        put("tokenize", "special%02d.txt" % i, l)
put("tokenize", "invalid_utf8.txt", b"ab\xff\xfe c\xc3 \xe2\x82 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf end")
put("tokenize", "nul.txt", b"a\x00b \x00 <s>\x00</s>")
put("tokenize", "spaces.txt", "  \t\u3000 x \u00a0 y\u200b\r ")
put("tokenize", "nfkc.txt", "ｆｕｌｌ ｗｉｄｔｈ ①②③ ﬁ Å Ω ㍻ ")

# ---- tsv: slices of the training fixtures + edge cases
for src, n in (("tests/fixtures/train/train.tsv", 12), ("tests/fixtures/train/hard.tsv", 6), ("tests/fixtures/train/dev.tsv", 6)):
    if os.path.exists(src):
        rows = open(src, "rb").read().split(b"\n")[:n]
        put("tsv", os.path.basename(src), b"\n".join(r[:300] for r in rows) + b"\n")
put("tsv", "crlf.tsv", b"# comment\r\n\r\ng1\ten\tq one\tp one\r\ng1\tde\tq eins\tp eins\r\ng2\ten\tq two\tp two\thard two\r\ng2\tpt-BR\tq dois\tp dois\r\n")
put("tsv", "multi.tsv", "".join("g%d\t%s\tquestion %d %s\tpassage %d %s\n" % (g, l, g, l, g, l) for g in range(6) for l in ("en", "zh", "ar")[: 1 + g % 3]))

# ---- squad: the hand fixtures, slices of XQuAD-R / MLQA-R / native QA / SQuAD train
for p in sorted(glob.glob("tests/fixtures/eval/hand/*.json")):
    put("squad", "hand_" + os.path.basename(p), open(p, "rb").read())
def slice_squad(path, n_art=1, n_par=2, n_q=2):
    d = json.load(open(path, encoding="utf-8"))
    out = {"version": d.get("version", "1"), "data": []}
    for a in d["data"][:n_art]:
        a2 = dict(a); a2["paragraphs"] = []
        for p in a["paragraphs"][:n_par]:
            p2 = dict(p); p2["qas"] = p["qas"][:n_q]; a2["paragraphs"].append(p2)
        out["data"].append(a2)
    return json.dumps(out, ensure_ascii=False)
if SHARED and os.path.isdir(SHARED):
    for rel, name in (("xquad-r/en.json", "xquad_en.json"), ("xquad-r/zh.json", "xquad_zh.json"), ("mlqa-r/de.json", "mlqa_de.json"),
                      ("native-qa/tr-tquad-dev.json", "tquad.json")):
        p = os.path.join(SHARED, rel)
        if os.path.exists(p): put("squad", name, slice_squad(p))
    p = os.path.join(SHARED, "xquad-r/en.json")
    if os.path.exists(p): put("json", "xquad_slice.json", slice_squad(p, 1, 1, 1))

# ---- sampler_state: patch programs over a valid state (see fuzz/fuzz_sampler_state.c)
put("sampler_state", "mono1", b"\x00\x00")
put("sampler_state", "cross2", b"\x05\x00")
put("sampler_state", "hybrid_patch", b"\x02\x00" + bytes([14]) + struct.pack("<i", 3))
put("sampler_state", "mixed_cut", b"\x03\x01\x08")
PY
du -sh "$S"; for d in "$S"/*; do echo "$(basename "$d"): $(ls "$d" | wc -l) files, $(du -sk "$d" | cut -f1) KB"; done
