#!/usr/bin/python3
"""tests/ref/make_mlm_vectors.py: reference vectors for tests/test_mlm.c (the masked-LM head).

A plain-torch XLMRobertaForMaskedLM (transformers' modeling_xlm_roberta.py): the
encoder of make_vectors.py (XLMRobertaModel, eval mode, float64) followed by
XLMRobertaLMHead: dense (C x C, bias) -> exact erf GELU -> LayerNorm (eps from
config.json) -> decoder (tied to the word embeddings unless tie_word_embeddings
is false) + lm_head.bias. The loss is F.cross_entropy over the masked positions
only (labels -100 elsewhere in HF: the mean over the M chosen positions).

Writes, for each configuration NAME:
  tests/ref/NAME/config.json, model.safetensors -- an HF XLMRobertaForMaskedLM folder
      mlm_a: 2 layers, tied decoder (no lm_head.decoder.weight), F32, "roberta." prefix
      mlm_b: 1 layer, 3 heads, eps 1e-6, tie_word_embeddings false with its own
             lm_head.decoder.weight; the bias stored as lm_head.decoder.bias
  tests/ref/NAME/ref.safetensors -- F32:
      ids (B,T) with <mask> (V-1) at the masked positions;  pos (M) rows b T + t;
      labels (M);  logits (M,V);  loss (1);  grad.NAME for every parameter
      (encoder names without the prefix, one per layer; lm_head.* for the head)
Run: /usr/bin/python3 tests/ref/make_mlm_vectors.py   (torch and numpy; deterministic)
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from make_vectors import HERE, config, forward, make_params, order, write_safetensors


def head_params(cfg, rng, tied):
    C, V = cfg["hidden_size"], cfg["vocab_size"]
    n = lambda *shape, s=0.2: (rng.standard_normal(shape) * s).astype(np.float32)
    P = {"lm_head.dense.weight": n(C, C, s=0.3), "lm_head.dense.bias": n(C, s=0.1),
         "lm_head.layer_norm.weight": 1 + n(C, s=0.1), "lm_head.layer_norm.bias": n(C, s=0.1),
         "lm_head.bias": n(V, s=0.1)}
    if not tied:
        P["lm_head.decoder.weight"] = n(V, C, s=0.5)
    return P


def lm_head(P, cfg, x, tied):
    """XLMRobertaLMHead.forward on x (M,C)."""
    C = cfg["hidden_size"]
    d = F.gelu(F.linear(x, P["lm_head.dense.weight"], P["lm_head.dense.bias"]))
    y = F.layer_norm(d, (C,), P["lm_head.layer_norm.weight"], P["lm_head.layer_norm.bias"], cfg["layer_norm_eps"])
    E = P["embeddings.word_embeddings.weight"] if tied else P["lm_head.decoder.weight"]
    return F.linear(y, E, P["lm_head.bias"])


def build(name, cfg, lens, seed, tied):
    rng = np.random.default_rng(seed)
    P = make_params(cfg, rng)
    P.update(head_params(cfg, rng, tied))
    B, T, pad, V = len(lens), max(lens), cfg["pad_token_id"], cfg["vocab_size"]
    mask_id = V - 1
    ids = np.full((B, T), pad, dtype=np.int64)
    pos, labels = [], []
    for b, n in enumerate(lens):
        body = rng.integers(3, V - 1, size=n - 2)
        ids[b, :n] = np.concatenate([[0], body, [2]])
        for t in range(1, n - 1):  # about a quarter of the non-special tokens; at least one per row
            if rng.random() < 0.25 or t == 1:
                pos.append(b * T + t)
                labels.append(int(ids[b, t]))
                if rng.random() < 0.8:
                    ids[b, t] = mask_id
    cfg = dict(cfg, architectures=["XLMRobertaForMaskedLM"])
    if not tied:
        cfg["tie_word_embeddings"] = False
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    body_names = order(cfg)
    head_names = [k for k in P if k.startswith("lm_head.")]
    stored = [("roberta." + k, P[k]) for k in body_names]
    stored += [("lm_head.decoder.bias" if (k == "lm_head.bias" and not tied) else k, P[k]) for k in head_names]
    write_safetensors(os.path.join(d, "model.safetensors"), stored)

    T64 = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in P.items()}
    hidden, _ = forward(T64, cfg, torch.tensor(ids))
    x = hidden[-1].reshape(B * T, -1)[torch.tensor(pos)]
    logits = lm_head(T64, cfg, x, tied)
    loss = F.cross_entropy(logits, torch.tensor(labels))
    loss.backward()
    ref = [("ids", ids.astype(np.float32)), ("pos", np.array(pos, np.float32)),
           ("labels", np.array(labels, np.float32)),
           ("logits", logits.detach().numpy().astype(np.float32)), ("loss", np.array([loss.item()], np.float32))]
    ref += [("grad." + k, T64[k].grad.numpy().astype(np.float32)) for k in body_names + head_names]
    write_safetensors(os.path.join(d, "ref.safetensors"), ref)
    print("%s: %d masked positions, loss %.6f" % (name, len(pos), loss.item()))


if __name__ == "__main__":
    torch.manual_seed(0)
    build("mlm_a", config(2, 32, 4, 64, 90, 24, 1, 1e-5, True), [12, 7, 9, 4], 11, True)
    build("mlm_b", config(1, 48, 3, 80, 70, 20, 2, 1e-6, False), [9, 3, 6, 9], 12, False)
