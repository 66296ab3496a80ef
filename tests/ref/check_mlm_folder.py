#!/usr/bin/env python3
"""Reads a masked-LM folder (an `xlmr pretrain` checkpoint or final/, an
`xlmr init --mlm-head` folder, or any HF XLMRobertaForMaskedLM folder in
safetensors) into the independent PyTorch XLMRobertaForMaskedLM of
make_mlm_vectors.py and checks that its top-k at every <mask> equals
`xlmr fill-mask` on the same lines (ids exact, probabilities within 1e-4).

    /usr/bin/python3 tests/ref/check_mlm_folder.py MODEL_DIR [LINES_FILE] [--xlmr ./xlmr] [--top-k 5]

LINES_FILE defaults to tests/ref/mlm_fill/inputs.txt. Needs torch; not run by
`make test`. Exits 1 on a difference."""
import argparse, json, os, subprocess, sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from check_folder import read_safetensors  # noqa: E402
from make_mlm_vectors import lm_head  # noqa: E402
from make_vectors import forward  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("lines", nargs="?", default=os.path.join(HERE, "mlm_fill", "inputs.txt"))
    ap.add_argument("--xlmr", default=os.path.join(HERE, "..", "..", "xlmr"))
    ap.add_argument("--top-k", type=int, default=5)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    P = read_safetensors(os.path.join(a.model, "model.safetensors"))
    tied = cfg.get("tie_word_embeddings", True)
    if "lm_head.bias" not in P:
        P["lm_head.bias"] = P["lm_head.decoder.bias"]
    limit = cfg["max_position_embeddings"] - cfg["pad_token_id"] - 1
    ids = subprocess.run([a.xlmr, "tokenize", "--model", a.model, "--max-len", str(limit), a.lines], check=True,
                         capture_output=True, text=True).stdout.splitlines()
    got = subprocess.run([a.xlmr, "fill-mask", "--model", a.model, "--top-k", str(a.top_k)], stdin=open(a.lines),
                         check=True, capture_output=True, text=True).stdout.splitlines()
    mask_id, worst, bad = cfg["vocab_size"] - 1, 0.0, 0
    for row, line in zip(ids, got):
        seq = [int(x) for x in row.split()]
        pos = [i for i, t in enumerate(seq) if t == mask_id]
        mine = json.loads(line)
        if not pos:
            bad += mine != []
            continue
        hidden, _ = forward(P, cfg, torch.tensor([seq]))
        prob = torch.softmax(lm_head(P, cfg, hidden[-1][0, pos], tied), dim=-1)
        for p, m in zip(prob, mine):
            top = torch.topk(p, a.top_k)
            bad += [int(i) for i in top.indices] != [e["token"] for e in m]
            worst = max(worst, max(abs(float(v) - e["score"]) for v, e in zip(top.values, m)))
    print("%s: %d lines, top-%d ids %s, max probability difference %.2e" %
          (a.model, len(ids), a.top_k, "equal" if not bad else "DIFFER (%d)" % bad, worst))
    sys.exit(1 if bad or worst > 1e-4 else 0)


if __name__ == "__main__":
    main()
