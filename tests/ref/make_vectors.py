#!/usr/bin/python3
"""tests/ref/make_vectors.py: reference vectors for tests/test_xlmr.c and tests/test_model.sh.

A faithful plain-torch XLM-RoBERTa (transformers' modeling_xlm_roberta.py,
XLMRobertaModel in eval mode: position ids from token ids, token type 0,
embedding LayerNorm, post-LN layers with separate Q/K/V, finfo.min key mask,
exact erf GELU, LayerNorm eps from config.json), run in float64 on float32
(or bf16-rounded) weights. Mean pooling as sentence-transformers (mask-weighted,
<s> and </s> included), CLS = final state of token 0, F.normalize, and the
InfoNCE of loss.h (rows 0..B/2-1 queries, B/2..B-1 their passages, tau 0.05).

Writes, for each configuration NAME (a: 3 layers, padding, mean pooling;
b: 1 layer, 3 heads, type_vocab 2, eps 1e-6, no dropout keys, CLS pooling):
  tests/ref/xlmr_NAME/config.json, model.safetensors  -- an HF model folder
      a: F32, plain names.  b: BF16, "roberta." prefix, plus pooler.*, lm_head.*
      and an I64 embeddings.position_ids (tensors a loader must skip)
  tests/ref/xlmr_a_f16/   config a in F16 with the "roberta." prefix
  tests/ref/xlmr_NAME/ref.safetensors -- F32 reference tensors:
      ids (B,T) token ids as floats;  hidden.L (B,T,C) for L = 0..layers
      (0 = embeddings output);  emb.mean, emb.cls (B,C) normalised embeddings;
      loss (1) InfoNCE of the configuration's pooling;  grad.HFNAME the gradient
      of that loss for every parameter (HF names, one per layer).
  tests/ref/xlmr_NAME/ids.txt  -- the rows without padding (xlmr embed --ids input)
  tests/ref/xlmr_NAME/emb_mean.txt, emb_cls.txt -- the expected embed output
Run: /usr/bin/python3 tests/ref/make_vectors.py   (torch and numpy; deterministic)
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TAU = 0.05

NAMES = [  # per-layer names, in xlmr.h's XlmrParams order
    "attention.self.query.weight", "attention.self.query.bias",
    "attention.self.key.weight", "attention.self.key.bias",
    "attention.self.value.weight", "attention.self.value.bias",
    "attention.output.dense.weight", "attention.output.dense.bias",
    "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
    "intermediate.dense.weight", "intermediate.dense.bias",
    "output.dense.weight", "output.dense.bias",
    "output.LayerNorm.weight", "output.LayerNorm.bias",
]


def write_safetensors(path, tensors, dtypes=None, extra=None):
    """tensors: list of (name, np.ndarray float32). dtypes: name -> F32|F16|BF16."""
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    items = list(tensors) + list(extra or [])
    for name, arr in items:
        dt = (dtypes or {}).get(name, "F32")
        if arr.dtype == np.int64:
            dt, raw = "I64", arr.astype("<i8").tobytes()
        elif dt == "F32":
            raw = arr.astype("<f4").tobytes()
        elif dt == "F16":
            raw = arr.astype("<f2").tobytes()
        else:  # BF16: the top half of the float32 (values are already bf16-exact)
            u = arr.astype("<f4").view("<u4")
            raw = (u >> 16).astype("<u2").tobytes()
        header[name] = {"dtype": dt, "shape": list(arr.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def bf16_round(x):
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000  # round to nearest even
    return u.astype(np.uint32).view(np.float32)


def make_params(cfg, rng):
    """Random weights larger than HF's 0.02 so every path carries signal."""
    C, Fh, L = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    P = {}
    def n(*shape, s=0.2):
        return (rng.standard_normal(shape) * s).astype(np.float32)
    P["embeddings.word_embeddings.weight"] = n(cfg["vocab_size"], C, s=0.5)
    P["embeddings.position_embeddings.weight"] = n(cfg["max_position_embeddings"], C, s=0.5)
    P["embeddings.token_type_embeddings.weight"] = n(cfg["type_vocab_size"], C, s=0.5)
    P["embeddings.LayerNorm.weight"] = 1 + n(C, s=0.1)
    P["embeddings.LayerNorm.bias"] = n(C, s=0.1)
    for l in range(L):
        p = "encoder.layer.%d." % l
        for w in ("query", "key", "value"):
            P[p + "attention.self.%s.weight" % w] = n(C, C, s=0.35)
            P[p + "attention.self.%s.bias" % w] = n(C, s=0.1)
        P[p + "attention.output.dense.weight"] = n(C, C)
        P[p + "attention.output.dense.bias"] = n(C, s=0.1)
        P[p + "attention.output.LayerNorm.weight"] = 1 + n(C, s=0.1)
        P[p + "attention.output.LayerNorm.bias"] = n(C, s=0.1)
        P[p + "intermediate.dense.weight"] = n(Fh, C)
        P[p + "intermediate.dense.bias"] = n(Fh, s=0.1)
        P[p + "output.dense.weight"] = n(C, Fh)
        P[p + "output.dense.bias"] = n(C, s=0.1)
        P[p + "output.LayerNorm.weight"] = 1 + n(C, s=0.1)
        P[p + "output.LayerNorm.bias"] = n(C, s=0.1)
    return P


def order(cfg):
    names = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
             "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for l in range(cfg["num_hidden_layers"]):
        names += ["encoder.layer.%d.%s" % (l, s) for s in NAMES]
    return names


def forward(P, cfg, ids):
    """XLMRobertaModel.forward (eval), float64. Returns the hidden states and the attention mask."""
    pad, C, NH = cfg["pad_token_id"], cfg["hidden_size"], cfg["num_attention_heads"]
    eps, hs = cfg["layer_norm_eps"], C // NH
    B, T = ids.shape
    mask = ids.ne(pad).long()
    pos = torch.cumsum(mask, dim=1) * mask + pad  # create_position_ids_from_input_ids
    x = (F.embedding(ids, P["embeddings.word_embeddings.weight"], padding_idx=pad)
         + F.embedding(torch.zeros_like(ids), P["embeddings.token_type_embeddings.weight"])
         + F.embedding(pos, P["embeddings.position_embeddings.weight"], padding_idx=pad))
    x = F.layer_norm(x, (C,), P["embeddings.LayerNorm.weight"], P["embeddings.LayerNorm.bias"], eps)
    hidden = [x]
    ext = (1.0 - mask[:, None, None, :].double()) * torch.finfo(torch.float64).min
    for l in range(cfg["num_hidden_layers"]):
        g = lambda s: P["encoder.layer.%d.%s" % (l, s)]
        def heads(t):
            return t.view(B, T, NH, hs).permute(0, 2, 1, 3)
        q = heads(F.linear(x, g("attention.self.query.weight"), g("attention.self.query.bias")))
        k = heads(F.linear(x, g("attention.self.key.weight"), g("attention.self.key.bias")))
        v = heads(F.linear(x, g("attention.self.value.weight"), g("attention.self.value.bias")))
        s = q @ k.transpose(-1, -2) / math.sqrt(hs) + ext
        ctx = (torch.softmax(s, dim=-1) @ v).permute(0, 2, 1, 3).reshape(B, T, C)
        a = F.linear(ctx, g("attention.output.dense.weight"), g("attention.output.dense.bias"))
        h1 = F.layer_norm(a + x, (C,), g("attention.output.LayerNorm.weight"), g("attention.output.LayerNorm.bias"), eps)
        f = F.gelu(F.linear(h1, g("intermediate.dense.weight"), g("intermediate.dense.bias")))
        o = F.linear(f, g("output.dense.weight"), g("output.dense.bias"))
        x = F.layer_norm(o + h1, (C,), g("output.LayerNorm.weight"), g("output.LayerNorm.bias"), eps)
        hidden.append(x)
    return hidden, mask


def pool(x, mask, how):
    if how == "cls":
        e = x[:, 0]
    else:
        m = mask[..., None].double()
        e = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(e, p=2, dim=1, eps=1e-12)


def infonce(e):
    B = e.shape[0] // 2
    s = e[:B] @ e[B:].T / TAU
    return F.cross_entropy(s, torch.arange(B))


def fmt(rows):
    return "".join(" ".join("%.9g" % v for v in r) + "\n" for r in rows)


def build(name, cfg, lens, pooling, seed, dtype, prefix, extras, variants=()):
    rng = np.random.default_rng(seed)
    P = make_params(cfg, rng)
    if dtype == "BF16":
        P = {k: bf16_round(v) for k, v in P.items()}
    B, T, pad, V = len(lens), max(lens), cfg["pad_token_id"], cfg["vocab_size"]
    ids = np.full((B, T), pad, dtype=np.int64)
    for b, n in enumerate(lens):  # <s> pieces </s>, never pad inside
        body = rng.integers(3, V, size=n - 2)
        ids[b, :n] = np.concatenate([[0], body, [2]])
    ids[1, 1] = 3  # <unk> occurs
    d = os.path.join(HERE, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    names = order(cfg)
    dt = {prefix + k: dtype for k in names}
    extra = []
    if extras:
        C = cfg["hidden_size"]
        extra = [("pooler.dense.weight", np.ones((C, C), np.float32)), ("pooler.dense.bias", np.zeros(C, np.float32)),
                 ("lm_head.bias", np.zeros(V, np.float32)),
                 (prefix + "embeddings.position_ids", np.arange(cfg["max_position_embeddings"], dtype=np.int64)[None])]
    write_safetensors(os.path.join(d, "model.safetensors"), [(prefix + k, P[k]) for k in names], dt, extra)
    for vname, vdtype, vprefix in variants:
        vd = os.path.join(HERE, vname)
        os.makedirs(vd, exist_ok=True)
        with open(os.path.join(vd, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        write_safetensors(os.path.join(vd, "model.safetensors"), [(vprefix + k, P[k]) for k in names],
                          {vprefix + k: vdtype for k in names})

    T64 = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in P.items()}
    tid = torch.tensor(ids)
    hidden, mask = forward(T64, cfg, tid)
    em, ec = pool(hidden[-1], mask, "mean"), pool(hidden[-1], mask, "cls")
    loss = infonce(em if pooling == "mean" else ec)
    loss.backward()
    ref = [("ids", ids.astype(np.float32))]
    ref += [("hidden.%d" % l, h.detach().numpy().astype(np.float32)) for l, h in enumerate(hidden)]
    ref += [("emb.mean", em.detach().numpy().astype(np.float32)), ("emb.cls", ec.detach().numpy().astype(np.float32))]
    ref += [("loss", np.array([loss.item()], np.float32))]
    ref += [("grad." + k, T64[k].grad.numpy().astype(np.float32)) for k in names]
    write_safetensors(os.path.join(d, "ref.safetensors"), ref)
    with open(os.path.join(d, "ids.txt"), "w") as f:
        f.write("".join(" ".join(str(int(i)) for i in ids[b, :n]) + "\n" for b, n in enumerate(lens)))
    with open(os.path.join(d, "emb_mean.txt"), "w") as f:
        f.write(fmt(em.detach().numpy()))
    with open(os.path.join(d, "emb_cls.txt"), "w") as f:
        f.write(fmt(ec.detach().numpy()))
    print("%s: loss %.6f" % (name, loss.item()))


def config(L, C, NH, Fh, V, P, TV, eps, dropout_keys):
    c = {"architectures": ["XLMRobertaModel"], "model_type": "xlm-roberta", "bos_token_id": 0, "eos_token_id": 2,
         "pad_token_id": 1, "hidden_act": "gelu", "num_hidden_layers": L, "hidden_size": C,
         "num_attention_heads": NH, "intermediate_size": Fh, "vocab_size": V, "max_position_embeddings": P,
         "type_vocab_size": TV, "layer_norm_eps": eps, "initializer_range": 0.02}
    if dropout_keys:
        c["hidden_dropout_prob"] = 0.1
        c["attention_probs_dropout_prob"] = 0.1
    return c


if __name__ == "__main__":
    torch.manual_seed(0)
    build("xlmr_a", config(3, 32, 4, 64, 90, 24, 1, 1e-5, True), [12, 7, 9, 4], "mean", 1, "F32", "", False,
          variants=[("xlmr_a_f16", "F16", "roberta.")])
    build("xlmr_b", config(1, 48, 3, 80, 70, 20, 2, 1e-6, False), [9, 3, 6, 9], "cls", 2, "BF16", "roberta.", True)
