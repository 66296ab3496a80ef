#!/usr/bin/env python3
"""scripts/make_tokenizer_fixtures.py: reference data for tests/test_tokenizer.*

Writes tests/fixtures/tokenizer/:
  text.txt           test lines: 11 XQuAD languages (NTREX / Tatoeba, never eval
                     data) and hard cases (whitespace runs, NFKC, ligatures,
                     combining marks, emoji ZWJ, zero-width and control
                     characters, an empty line, a >100 KB line, invalid UTF-8)
  xlmr.txt           lines with literal special tokens (<s>, <mask>, ...)
  bf.model, ws.model two tiny unigram models trained here: byte_fallback with
                     user-defined symbols; identity normalisation with
                     treat_whitespace_as_suffix and no whitespace removal
  M.id, M.piece      spm_encode --output_format=id / piece on text.txt
  M.xlmr             HF XLMRobertaTokenizer input_ids on xlmr.txt then text.txt
                     (valid UTF-8 lines only; invalid ones are written as "-")
  M.xlmr16           the same with truncation=True, max_length=16
for M in botchan-en, ja (read from the shared data dir, not copied), xlmrc
(tokenizer/xlmrc.model), bf, ws.

Needs spm_encode/spm_train and a python3 with sentencepiece (e.g. /usr/bin/python3).
  scripts/make_tokenizer_fixtures.py [--retrain]      regenerate fixtures
  scripts/make_tokenizer_fixtures.py --difftest N     differential test of
      ./xlmr tokenize against spm_encode on N random lines per model (not CI)
"""
import os
import random
import subprocess
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests/fixtures/tokenizer")
LANGS = "ar de el en es hi ru th tr vi zh".split()


def data_dir():
    for d in (os.environ.get("XLMR_DATA"), os.path.join(ROOT, "data"), os.path.join(ROOT, "../shared/data")):
        if d and os.path.isdir(os.path.join(d, "spm-fixtures")):
            return d
    sys.exit("make_tokenizer_fixtures: no data directory")


DATA = data_dir()
MODELS = [
    ("botchan-en", os.path.join(DATA, "spm-fixtures/botchan-en.model")),
    ("ja", os.path.join(DATA, "spm-fixtures/ja.model")),
    ("xlmrc", os.path.join(ROOT, "tokenizer/xlmrc.model")),
    ("bf", os.path.join(FIX, "bf.model")),
    ("ws", os.path.join(FIX, "ws.model")),
]


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def text_lines():
    out = []
    for lang in LANGS:  # NTREX lines 10-11 and one Tatoeba pair per language
        nt = read_lines(os.path.join(DATA, "parallel/ntrex", lang + ".txt"))
        out += [nt[10], nt[11]]
        if lang != "en":
            tt = read_lines(os.path.join(DATA, "parallel/tatoeba", lang + "-en.tsv"))
            out.append(tt[3].split("\t")[0])
    hard = [
        "",
        "   leading spaces",
        "trailing spaces   ",
        "  both  \t ends \t ",
        "runs    of     spaces\t\t\tand\ttabs",
        " \t \u3000 ",
        "ＦＵＬＬ－ｗｉｄｔｈ　ＡＢＣ　１２３　！？",
        "ｶﾀｶﾅ ﾊﾝｶｸ ｶﾞｷﾞ",
        "① ㈱ ㎏ ™ ½ ² ℃ Ⅻ ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ",
        "e\u0301 a\u0300 n\u0303 \u1e9b\u0323 Ä Å A\u030a \u0928\u093c \u0915\u094d\u0937",
        "👨\u200d👩\u200d👧\u200d👦 👍🏽 👋🏿 🏳\ufe0f\u200d🌈 ❤\ufe0f 🇩🇪",
        "zero\u200bwidth\u200cjoin\u200dmarks\ufeffbom\u2060wj",
        "ctrl\x01\x02\x07\x1b[0m\x7f\x85\x9f end",
        "cr at end\r",
        "mid\rcr",
        "▁already▁escaped ▁",
        "\ufffd literal replacement",
        "nbsp\u00a0and\u2009thin\u202fspaces\u2003em",
        "Ǆ ǅ ǆ ﬓ ﷺ ﷽",
        "ÀÉÎÕÜ àéîõü ß ẞ İ ı ς Σ",
        "digits 0123456789 ٠١٢٣٤٥٦٧٨٩ ०१२३ ๐๑๒",
        "<s> <mask> </s> <unk> <pad> literal",
        "a" * 300,
        "x",
        "!!!???...,,,",
        "Tokyo<sep>Tokyo@@ ringing the bell @@@ <sep><sep> sing the Tokyoite",
    ]
    out += hard
    # a line over 100 KB: all languages, repeated (repetition keeps git small)
    block = " ".join(read_lines(os.path.join(DATA, "parallel/ntrex", l + ".txt"))[12] for l in LANGS)
    long = (block + "  ") * (100_500 // len(block.encode("utf-8")) + 1)
    out.append(long)
    return out


INVALID = [  # raw byte lines (not valid UTF-8), appended after the text lines
    b"bad \xff byte",
    b"\xc3\x28 overlong? \xc0\xaf \xe0\x80\xaf",
    b"surrogate \xed\xa0\x80 and \xed\xbf\xbf",
    b"truncated \xe2\x82",
    b"\xf4\x90\x80\x80 above max, \xf8\x88\x80\x80\x80",
    b"cont \x80\x80\xbf lead \xe3\x81",
    b"nul \x00 byte \x00\x00 end",
    b"\xe2\x96",
]

XLMR_LINES = [
    "Hello <mask> world",
    "Hello <mask>",
    "<mask> at start",
    "tabs\t \u3000<mask>end",
    "<s>inside</s>",
    "a <s> b </s> c",
    "<unk><pad><mask><mask>",
    "<mask>   <mask>",
    "near misses <S> <mask <s < s> <maskx> </mask>",
    "un<mask>ed",
    " <mask> ",
    "<mask>",
    "",
]


def write_bytes_lines(path, lines):
    with open(path, "wb") as f:
        for l in lines:
            f.write((l.encode("utf-8") if isinstance(l, str) else l) + b"\n")


def spm_encode(model, infile, fmt):
    return subprocess.run(["spm_encode", "--model=" + model, "--output_format=" + fmt],
                          stdin=open(infile, "rb"), check=True, capture_output=True).stdout


# HF's XLMRobertaTokenizer (slow): specials split out of the text (trie,
# leftmost-longest), <mask> is AddedToken(lstrip=True), each remaining chunk
# goes through sp.encode(out_type=str), pieces map through fairseq offsets.
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def hf_split(text):
    parts, i, start = [], 0, 0
    while i < len(text):
        m = None
        for s in SPECIALS:
            if text.startswith(s, i) and (m is None or len(s) > len(m)):
                m = s
        if m:
            parts.append(text[start:i])
            parts.append(m)
            i += len(m)
            start = i
        else:
            i += 1
    parts.append(text[start:])
    return parts


def hf_input_ids(sp, text, max_length=None):
    tokens = hf_split(text)
    for i, tok in enumerate(tokens):
        if tok in SPECIALS and i % 2 == 1:
            if tok == "<mask>" and i > 0 and tokens[i - 1]:
                tokens[i - 1] = tokens[i - 1].rstrip()
    fairseq = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    mask_id = len(sp) + 1
    ids = []
    for i, tok in enumerate(tokens):
        if not tok:
            continue
        if i % 2 == 1:
            ids.append(mask_id if tok == "<mask>" else fairseq[tok])
            continue
        for piece in sp.encode(tok, out_type=str):
            if piece in fairseq:
                ids.append(fairseq[piece])
            else:
                sid = sp.piece_to_id(piece)
                ids.append(sid + 1 if sid else 3)
    if max_length is not None:
        ids = ids[:max_length - 2]
    return [0] + ids + [2]


def train_small_models():
    src = os.path.join(FIX, "train_small.txt")
    lines = []
    for lang in ("en", "el", "de"):
        lines += read_lines(os.path.join(DATA, "parallel/ntrex", lang + ".txt"))[100:500]
    write_bytes_lines(src, lines)
    common = ["--input=" + src, "--model_type=unigram", "--input_sentence_size=0",
              "--shuffle_input_sentence=false", "--num_threads=1", "--minloglevel=2"]
    subprocess.run(["spm_train", "--model_prefix=" + os.path.join(FIX, "bf"), "--vocab_size=600",
                    "--byte_fallback=true", "--character_coverage=0.98",
                    "--user_defined_symbols=<sep>,@@,ing▁the,Tokyo"] + common, check=True)
    subprocess.run(["spm_train", "--model_prefix=" + os.path.join(FIX, "ws"), "--vocab_size=500",
                    "--normalization_rule_name=identity", "--treat_whitespace_as_suffix=true",
                    "--remove_extra_whitespaces=false", "--split_digits=true"] + common, check=True)
    os.remove(src)
    for m in ("bf", "ws"):
        os.remove(os.path.join(FIX, m + ".vocab"))


def make_fixtures(retrain):
    os.makedirs(FIX, exist_ok=True)
    if retrain or not os.path.exists(os.path.join(FIX, "bf.model")):
        train_small_models()
    text = text_lines()
    write_bytes_lines(os.path.join(FIX, "text.txt"), text + INVALID)
    write_bytes_lines(os.path.join(FIX, "xlmr.txt"), XLMR_LINES)
    for name, path in MODELS:
        for fmt, ext in (("id", "id"), ("piece", "piece")):
            with open(os.path.join(FIX, name + "." + ext), "wb") as f:
                f.write(spm_encode(path, os.path.join(FIX, "text.txt"), fmt))
        sp = spm.SentencePieceProcessor(model_file=path)
        for ext, ml in (("xlmr", None), ("xlmr16", 16)):
            with open(os.path.join(FIX, name + "." + ext), "w", encoding="utf-8") as f:
                for l in XLMR_LINES + text:
                    f.write(" ".join(map(str, hf_input_ids(sp, l, ml))) + "\n")
                for _ in INVALID:
                    f.write("-\n")
    print("fixtures written to", FIX)


def random_line(rng, words, raw_bytes=True):
    ranges = [(0x20, 0x7E), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x600, 0x6FF),
              (0x900, 0x97F), (0xE00, 0xE7F), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x2150, 0x218F),
              (0x2460, 0x24FF), (0x3000, 0x30FF), (0x3200, 0x33FF), (0x4E00, 0x4FFF), (0xAC00, 0xAD00),
              (0xF900, 0xFAFF), (0xFB00, 0xFB4F), (0xFE00, 0xFE6F), (0xFF00, 0xFFEF), (0x1F300, 0x1FAFF),
              (0x1D400, 0x1D7FF), (0xE0000, 0xE007F), (0x0, 0x1F), (0x7F, 0x9F)]
    specials = [" ", "  ", "\t", "\r", "\u3000", "\u00a0", "\u200b", "\u200d", "\ufe0f", "\u2581", "\ufffd",
                "<s>", "<mask>", "</s>", "@@", "<sep>", "Tokyo", "\x00"]
    out = bytearray()
    for _ in range(rng.randint(0, 40)):
        r = rng.random()
        if r < 0.3:
            out += rng.choice(words).encode("utf-8")
        elif r < 0.55:
            lo, hi = rng.choice(ranges)
            c = rng.randint(lo, hi)
            if c != 10 and not 0xD800 <= c <= 0xDFFF:
                out += chr(c).encode("utf-8")
        elif r < 0.8:
            out += rng.choice(specials).encode("utf-8")
        elif raw_bytes:
            out += bytes(b for b in (rng.randrange(256) for _ in range(rng.randint(1, 4))) if b != 10)
    return bytes(out)


def difftest(n):
    rng = random.Random(12345)
    words = []
    for lang in LANGS:
        for l in read_lines(os.path.join(DATA, "parallel/ntrex", lang + ".txt"))[1000:1040]:
            words += l.split()
    lines = [random_line(rng, words) for _ in range(n)]
    tmp = "/tmp/xlmr_difftest.txt"
    write_bytes_lines(tmp, lines)
    xlmr = os.environ.get("XLMR", os.path.join(ROOT, "xlmr"))
    bad = 0
    for name, path in MODELS:
        for fmt, opt in (("id", "--spm-ids"), ("piece", "--pieces")):
            want = spm_encode(path, tmp, fmt).split(b"\n")
            got = subprocess.run([xlmr, "tokenize", "--model", path, opt], stdin=open(tmp, "rb"),
                                 check=True, capture_output=True).stdout.split(b"\n")
            diff = [i for i in range(max(len(want), len(got)))
                    if i >= len(want) or i >= len(got) or want[i] != got[i]]
            bad += len(diff)
            print(f"{name:10s} {fmt:5s} {len(lines)} lines: {len(diff)} differ"
                  + (f" (first: line {diff[0]}: {lines[diff[0]][:80]!r})" if diff else ""))
        sp = spm.SentencePieceProcessor(model_file=path)
        valid = [l for l in lines if is_utf8(l)] + [random_line(rng, words, False) for _ in range(n)]
        write_bytes_lines(tmp, valid)
        got = subprocess.run([xlmr, "tokenize", "--model", path], stdin=open(tmp, "rb"),
                             check=True, capture_output=True).stdout.decode().split("\n")
        nd = sum(1 for i, l in enumerate(valid)
                 if got[i] != " ".join(map(str, hf_input_ids(sp, l.decode("utf-8")))))
        bad += nd
        print(f"{name:10s} xlmr  {len(valid)} valid lines: {nd} differ")
        write_bytes_lines(tmp, lines)
    sys.exit(1 if bad else 0)


def is_utf8(b):
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--difftest":
        difftest(int(sys.argv[2]))
    else:
        make_fixtures("--retrain" in sys.argv)
