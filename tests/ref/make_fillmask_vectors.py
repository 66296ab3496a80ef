#!/usr/bin/python3
"""tests/ref/make_fillmask_vectors.py: the expected output of `xlmr fill-mask` (tests/test_mlm.sh).

tests/ref/mlm_fill/ is a small XLMRobertaForMaskedLM folder: random weights
(make_vectors.py's scales, so predictions are peaked and the top 5 well
separated), 2 layers, hidden 32, max_position_embeddings 40 (38 tokens), and
a 200-piece unigram tokenizer (sentencepiece.bpe.model, trained once with
  spm_train --input=LATIN_LINES --model_prefix=tiny --model_type=unigram --vocab_size=200
    --normalization_rule_name=identity --character_coverage=1.0 --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1
on the Latin-script lines of tests/fixtures/tokenizer/text.txt).
The ids of inputs.txt come from `./xlmr tokenize --max-len 38` (the C tokenizer, tested
against spm_encode and HF's <mask> rule elsewhere; build ./xlmr first); the
torch model of make_mlm_vectors.py gives the logits at each <mask>, softmax,
top 5. Writes mlm_fill/expected.txt, one line per input: "id score id score ..."
for each mask, masks separated by " | ", empty when the input has none.
Run: /usr/bin/python3 tests/ref/make_fillmask_vectors.py
"""
import json
import os
import subprocess

import numpy as np
import torch
import torch.nn.functional as F

from make_mlm_vectors import head_params, lm_head
from make_vectors import HERE, config, forward, make_params, order, write_safetensors

D = os.path.join(HERE, "mlm_fill")
ROOT = os.path.dirname(os.path.dirname(HERE))

if __name__ == "__main__":
    cfg = config(2, 32, 2, 64, 202, 40, 1, 1e-5, True)
    cfg["architectures"] = ["XLMRobertaForMaskedLM"]
    rng = np.random.default_rng(21)
    P = make_params(cfg, rng)
    P.update(head_params(cfg, rng, True))
    with open(os.path.join(D, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(D, "model.safetensors"),
                      [("roberta." + k, P[k]) for k in order(cfg)] + [(k, P[k]) for k in P if k.startswith("lm_head.")])
    out = subprocess.run([os.path.join(ROOT, "xlmr"), "tokenize", "--model", D, "--max-len", "38",
                          os.path.join(D, "inputs.txt")], check=True, capture_output=True, text=True).stdout
    T64 = {k: torch.tensor(v, dtype=torch.float64) for k, v in P.items()}
    mask_id, lines, gaps = cfg["vocab_size"] - 1, [], []
    for row in out.splitlines():
        ids = [int(x) for x in row.split()]
        pos = [i for i, t in enumerate(ids) if t == mask_id]
        if not pos:
            lines.append("")
            continue
        hidden, _ = forward(T64, cfg, torch.tensor([ids]))
        prob = torch.softmax(lm_head(T64, cfg, hidden[-1][0, pos], True), dim=-1)
        masks = []
        for p in prob:
            top = torch.topk(p, 6)
            gaps.append(float((top.values[:-1] - top.values[1:]).min()))
            masks.append(" ".join("%d %.8g" % (int(i), float(v)) for v, i in zip(top.values[:5], top.indices[:5])))
        lines.append(" | ".join(masks))
    with open(os.path.join(D, "expected.txt"), "w") as f:
        f.write("".join(l + "\n" for l in lines))
    print("mlm_fill: %d inputs, %d masks, smallest gap in a top 6: %.2e" % (len(lines), len(gaps), min(gaps)))
