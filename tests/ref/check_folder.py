#!/usr/bin/env python3
"""Reads an xlmr.c model folder (config.json + model.safetensors, e.g. a training
checkpoint) into the independent PyTorch XLM-R of make_vectors.py and checks that
its embeddings equal `xlmr embed --ids` on the same ids.

    /usr/bin/python3 tests/ref/check_folder.py MODEL_DIR [--xlmr ./xlmr] [--pooling mean|cls]

Needs torch (Debian python3-torch); not run by `make test`. Prints the max abs
difference and exits 1 when it is above 1e-4."""
import argparse, json, os, struct, subprocess, sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_vectors import forward, order, pool  # noqa: E402

DT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}


def read_safetensors(path):
    """A reader of our own: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        x = torch.frombuffer(bytearray(data[b:e]), dtype=DT[t["dtype"]]).reshape(t["shape"])
        out[name[len("roberta."):] if name.startswith("roberta.") else name] = x.double()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--xlmr", default=os.path.join(os.path.dirname(__file__), "..", "..", "xlmr"))
    ap.add_argument("--pooling", default="mean")
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    P = read_safetensors(os.path.join(a.model, "model.safetensors"))
    missing = [k for k in order(cfg) if k not in P]
    if missing:
        sys.exit("missing tensors: %s" % missing[:3])
    g = torch.Generator().manual_seed(0)
    V, pad = cfg["vocab_size"], cfg["pad_token_id"]
    lens = [5, 17, 9, 30]
    rows = [[0] + torch.randint(3, V, (n - 2,), generator=g).tolist() + [2] for n in lens]
    T = max(lens)
    ids = torch.tensor([r + [pad] * (T - len(r)) for r in rows])
    hidden, mask = forward(P, cfg, ids)
    ref = pool(hidden[-1], mask, a.pooling)
    text = "".join(" ".join(map(str, r)) + "\n" for r in rows)
    out = subprocess.run([a.xlmr, "embed", "--model", a.model, "--ids", "--pooling", a.pooling],
                         input=text.encode(), capture_output=True, check=True).stdout.decode()
    got = torch.tensor([[float(v) for v in line.split()] for line in out.splitlines()], dtype=torch.float64)
    d = (got - ref).abs().max().item()
    print("%s: max |xlmr embed - torch| = %.3g over %d sequences (%s pooling)" % (a.model, d, len(rows), a.pooling))
    sys.exit(0 if d <= 1e-4 else 1)


if __name__ == "__main__":
    main()
