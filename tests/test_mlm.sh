#!/usr/bin/env bash
# tests/test_mlm.sh: xlmr fill-mask through the CLI — the top 5 at every <mask>
# of a corner set (literal <mask> at the start, glued to words, doubled,
# after runs of spaces, look-alikes that are not masks, a mask truncated away)
# against the torch reference (tests/ref/make_fillmask_vectors.py), the JSON
# keys of HF's pipeline, folders written by init --mlm-head, and one-line errors.
. "$(dirname "$0")/lib.sh"
REF=$ROOT/tests/ref/mlm_fill

# fill-mask JSON lines -> "id score id score ... | ..." (the reference's format)
flat() { sed -E 's/"token_str": "([^"\\]|\\.)*", //g; s/\], \[/ | /g; s/"token": //g; s/"score": //g; s/[][{},]/ /g' |
    awk '{ $1 = $1; print }'; }
# same ids and separators, scores within 1e-4
same_top() { awk 'NR==FNR { a[FNR] = $0; next }
    { n = split(a[FNR], x, " "); m = split($0, y, " "); rows++
      if (n != m) { bad = 1; print "line " FNR ": " n " vs " m " fields"; next }
      want = "id"
      for (i = 1; i <= n; i++) {
        if (x[i] == "|" || y[i] == "|") { if (x[i] != y[i]) bad = 1; want = "id"; continue }
        if (want == "id") { if (x[i] != y[i]) { bad = 1; print "line " FNR ": id " x[i] " vs " y[i] } want = "score"; continue }
        d = x[i] - y[i]; if (d < 0) d = -d; if (d > w) w = d; if (d > 1e-4) bad = 1; want = "id" } }
    END { print "rows " rows ", worst score diff " w; exit bad || rows == 0 }' "$1" "$2"; }

"$XLMR" fill-mask --model "$REF" --top-k 5 <"$REF/inputs.txt" >"$TMP/fill.jsonl"
flat <"$TMP/fill.jsonl" >"$TMP/fill.txt"
check "fill-mask top 5 = torch (ids exact, scores 1e-4) on the <mask> corner set" same_top "$REF/expected.txt" "$TMP/fill.txt"
check "one JSON line per input" test "$(wc -l <"$TMP/fill.jsonl")" -eq "$(wc -l <"$REF/inputs.txt")"
check "no mask, look-alikes, empty line, mask truncated away: []" \
    test "$(sed -n '4p;8p;9p;10p;12p' "$TMP/fill.jsonl" | sort -u)" = "[]"
check "two masks: two lists, in order" test "$(sed -n 3p "$TMP/fill.jsonl" | grep -o '\], \[' | wc -l)" -eq 1
check "HF pipeline keys" grep -q '^\[\[{"token": [0-9]*, "token_str": "[^"]*", "score": 0\.[0-9]*}, {"token"' "$TMP/fill.jsonl"
printf 'Hello <mask> world\n' | "$XLMR" fill-mask --model "$REF" --top-k 1 >"$TMP/k1.jsonl"
flat <"$TMP/k1.jsonl" >"$TMP/k1.txt"
head -1 "$REF/expected.txt" | cut -d' ' -f1-2 >"$TMP/k1.want"
check "--top-k 1: the best of the top 5" same_top "$TMP/k1.want" "$TMP/k1.txt"
# the whole vocabulary: probabilities sum to 1
printf '<mask>\n' | "$XLMR" fill-mask --model "$REF" --top-k 202 | flat >"$TMP/all.txt"
check "--top-k V: probabilities sum to 1" awk '{ for (i = 2; i <= NF; i += 2) s += $i } END { d = s - 1; exit !(d < 1e-5 && d > -1e-5) }' "$TMP/all.txt"

# a folder written by init --mlm-head predicts; one without a head says so
check "init --mlm-head" "$XLMR" init --tokenizer "$REF/sentencepiece.bpe.model" --preset nano --mlm-head --out "$TMP/m"
check "its config says XLMRobertaForMaskedLM" grep -q XLMRobertaForMaskedLM "$TMP/m/config.json"
printf 'a <mask>\n' | "$XLMR" fill-mask --model "$TMP/m" --top-k 3 >"$TMP/m.jsonl" 2>"$TMP/m.err"
check "fill-mask on an init --mlm-head folder" grep -q '^\[\[{"token"' "$TMP/m.jsonl"
"$XLMR" init --tokenizer "$REF/sentencepiece.bpe.model" --preset nano --out "$TMP/n" 2>/dev/null
expect_error "no head: a clear error" "fill-mask: .* has no masked-LM head" "$XLMR" fill-mask --model "$TMP/n" </dev/null
expect_error "--top-k 0" "fill-mask: --top-k" "$XLMR" fill-mask --model "$REF" --top-k 0 </dev/null
expect_error "--max-len too long" "fill-mask: --max-len" "$XLMR" fill-mask --model "$REF" --max-len 100 </dev/null
expect_error "no --model" "fill-mask" "$XLMR" fill-mask </dev/null
# a head with a tensor missing
mkdir -p "$TMP/broken" && cp "$REF/config.json" "$REF/sentencepiece.bpe.model" "$TMP/broken/"
python3 - "$REF/model.safetensors" "$TMP/broken/model.safetensors" 2>/dev/null <<'PY' || cp "$REF/model.safetensors" "$TMP/broken/"
import json, struct, sys
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n])
h["lm_head.layer_norm.wrong"] = h.pop("lm_head.layer_norm.weight")
b = json.dumps(h).encode(); b += b" " * (-len(b) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(b)) + b + raw[8 + n:])
PY
if grep -q "layer_norm.wrong" "$TMP/broken/model.safetensors"; then
    expect_error "a head with a tensor missing" "missing tensor lm_head.layer_norm.weight" \
        "$XLMR" fill-mask --model "$TMP/broken" </dev/null
fi
summary mlm-cli
