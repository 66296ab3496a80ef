#!/usr/bin/env python3
"""bench/torch_bench.py: the PyTorch side of bench/compare.sh.

Runs the same measurements as `xlmr bench gemm|forward|train` with the same
options and prints lines ending in "N GFLOPS" / "N tokens/s" like it:
  gemm     torch.mm on the model's GEMM shapes (fp32; OpenBLAS/MKL-DNN as torch has it)
  forward  an XLM-R encoder in plain torch (eval, no_grad), mean pooling, L2 norm
  tokenize sentencepiece's own encode (C++) of FILE's lines, 1 and --threads threads
  train    B queries + B passages forward with dropout, InfoNCE (tau 0.05),
           backward, clip_grad_norm_(1.0), AdamW (lr 1e-5, wd 0.01, none on
           biases/LayerNorm). The word embedding is sparse (nn.Embedding(sparse=True)
           + SparseAdam), which matches xlmr's lazy row updates (optim.h).
--bf16: PyTorch's own BF16, each the way a user would run it: gemm on bfloat16
  tensors, forward on the model converted with .to(torch.bfloat16), train under
  torch.autocast("cpu", torch.bfloat16) with fp32 weights (oneDNN's BF16 kernels:
  AMX or AVX512-BF16 where the CPU has them).
Timings: best of --steps runs after one warm-up, as xlmr bench.
"""
import argparse
import math
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as Fn
except ImportError:
    print("torch_bench: torch is not installed", file=sys.stderr)
    sys.exit(3)


def presets(a):
    small = a.size == "small"
    d = dict(layers=4 if small else 12, hidden=256 if small else 768, heads=4 if small else 12,
             ffn=1024 if small else 3072, vocab=32000 if small else 250002,
             batch=32 if small else (8 if a.kind == "train" else 16), seq=64 if small else 128)
    for k, v in d.items():
        if getattr(a, k) is None or getattr(a, k) <= 0:
            setattr(a, k, v)


class Layer(nn.Module):
    def __init__(s, C, NH, F, p):
        super().__init__()
        s.NH, s.p = NH, p
        s.q, s.k, s.v, s.ao = (nn.Linear(C, C) for _ in range(4))
        s.ln1, s.ln2 = nn.LayerNorm(C, eps=1e-5), nn.LayerNorm(C, eps=1e-5)
        s.fc, s.fo = nn.Linear(C, F), nn.Linear(F, C)

    def forward(s, x, mask):
        B, T, C = x.shape
        hs = C // s.NH
        q = s.q(x).view(B, T, s.NH, hs).transpose(1, 2)
        k = s.k(x).view(B, T, s.NH, hs).transpose(1, 2)
        v = s.v(x).view(B, T, s.NH, hs).transpose(1, 2)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hs) + mask
        att = Fn.dropout(att.softmax(-1), s.p, s.training)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, C)
        h1 = s.ln1(Fn.dropout(s.ao(ctx), s.p, s.training) + x)
        return s.ln2(Fn.dropout(s.fo(Fn.gelu(s.fc(h1))), s.p, s.training) + h1)


class Xlmr(nn.Module):
    def __init__(s, a, sparse):
        super().__init__()
        C = a.hidden
        s.word = nn.Embedding(a.vocab, C, padding_idx=1, sparse=sparse)
        s.pos = nn.Embedding(max(514, a.seq + 2), C)
        s.typ = nn.Embedding(1, C)
        s.ln = nn.LayerNorm(C, eps=1e-5)
        s.layers = nn.ModuleList(Layer(C, a.heads, a.ffn, 0.1) for _ in range(a.layers))
        for m in s.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(s, ids):
        keep = (ids != 1)
        pos = torch.cumsum(keep.int(), 1) * keep + 1
        x = s.word(ids) + s.pos(pos) + s.typ.weight[0]
        x = Fn.dropout(s.ln(x), 0.1, s.training)
        mask = ((~keep).to(x.dtype) * -1e9)[:, None, None, :]
        for l in s.layers:
            x = l(x, mask)
        k = keep.unsqueeze(-1).to(x.dtype)
        pooled = (x * k).sum(1) / k.sum(1)
        return Fn.normalize(pooled, dim=-1)


def best_of(fn, steps, cpu=None):
    """Best wall time of steps runs after a warm-up; cpu (a list) gets the least process CPU time."""
    fn()  # warm-up
    best = bc = float("inf")
    for _ in range(steps):
        c, t = time.process_time(), time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
        bc = min(bc, time.process_time() - c)
    if cpu is not None:
        cpu.append(bc)
    return best


def fwd_flops_per_token(a):
    C, F, T = a.hidden, a.ffn, a.seq
    return a.layers * 2.0 * (4 * C * C + 2 * C * F + 2 * T * C)


def dtype(a):
    return torch.bfloat16 if a.bf16 else torch.float32


def bench_gemm(a):
    N, C, F = a.batch * a.seq, a.hidden, a.ffn
    shapes = [("fwd qkv/ao x W^T", 0, 1, N, C, C), ("fwd fc x W^T", 0, 1, N, F, C), ("fwd fo x W^T", 0, 1, N, C, F),
              ("bwd dx qkv dy W", 0, 0, N, C, C), ("bwd dx fc dy W", 0, 0, N, C, F), ("bwd dx fo dy W", 0, 0, N, F, C),
              ("bwd dW qkv dy^T x", 1, 0, C, C, N), ("bwd dW fc dy^T x", 1, 0, F, C, N),
              ("bwd dW fo dy^T x", 1, 0, C, F, N), ("square", 0, 0, C, C, C), ("square", 0, 0, 2 * C, 2 * C, 2 * C)]
    print(f"torch gemm: torch {torch.__version__}, {dtype(a)}, {torch.get_num_threads()} threads, best of {a.steps}")
    print(f"{'shape':<18} op {'M':>6} {'N':>6} {'K':>6} {'ms':>10} {'GFLOPS':>9} {'cpuGF':>9}")
    tot_f = tot_t = 0.0
    for name, ta, tb, M, Nn, K in shapes:
        A = (torch.rand(K, M) if ta else torch.rand(M, K)).to(dtype(a))
        B = (torch.rand(Nn, K) if tb else torch.rand(K, Nn)).to(dtype(a))
        out = torch.empty(M, Nn, dtype=dtype(a))
        opA = A.t() if ta else A
        opB = B.t() if tb else B
        cpu = []
        t = best_of(lambda: torch.mm(opA, opB, out=out), a.steps, cpu)
        fl = 2.0 * M * Nn * K
        tot_f += fl
        tot_t += t
        print(f"{name:<18} {'NT'[ta]}{'NT'[tb]} {M:6d} {Nn:6d} {K:6d} {t * 1e3:10.3f} {fl / t / 1e9:9.1f} "
              f"{fl / cpu[0] / 1e9:9.1f}")
    print(f"gemm total: {tot_f / tot_t / 1e9:.1f} GFLOPS")


def rand_ids(a, n):
    return torch.randint(3, a.vocab, (n, a.seq))


def bench_forward(a):
    torch.manual_seed(1)
    m = Xlmr(a, False).eval().to(dtype(a))
    ids = rand_ids(a, a.batch)
    print(f"torch forward: L{a.layers} H{a.hidden} A{a.heads} F{a.ffn} V{a.vocab}, batch {a.batch} x seq {a.seq}, "
          f"{dtype(a)}, {torch.get_num_threads()} threads")
    with torch.no_grad():
        t = best_of(lambda: m(ids), a.steps)
    tok = a.batch * a.seq
    print(f"forward: {t * 1e3:.1f} ms per batch, {tok * fwd_flops_per_token(a) / t / 1e9:.1f} GFLOPS")
    print(f"forward: {tok / t:.0f} tokens/s")


def bench_train(a):
    torch.manual_seed(1)
    m = Xlmr(a, True).train()
    decay, no_decay = [], []
    for n, p in m.named_parameters():
        if n == "word.weight":
            continue
        (no_decay if n.endswith("bias") or ".ln" in n or n.startswith("ln") else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-5)
    sopt = torch.optim.SparseAdam([m.word.weight], lr=1e-5)
    B = a.batch
    print(f"torch train: L{a.layers} H{a.hidden} A{a.heads} F{a.ffn} V{a.vocab}, batch {B} pairs x seq {a.seq}, "
          f"{'autocast bf16' if a.bf16 else 'fp32'}, {torch.get_num_threads()} threads")

    def step():
        ids = rand_ids(a, 2 * B)
        opt.zero_grad(set_to_none=True)
        sopt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            e = m(ids)
            s = e[:B] @ e[B:].t() / 0.05
            loss = Fn.cross_entropy(s.float(), torch.arange(B))
        loss.backward()
        dense = [p for p in m.parameters() if p.grad is not None and not p.grad.is_sparse]
        torch.nn.utils.clip_grad_norm_(dense, 1.0)
        opt.step()
        sopt.step()
        return loss

    t = best_of(step, a.steps)
    tok = 2 * B * a.seq
    print(f"train: {t * 1e3:.1f} ms per step, {3 * tok * fwd_flops_per_token(a) / t / 1e9:.1f} GFLOPS (3x forward)")
    print(f"train: {tok / t:.0f} tokens/s")


def bench_tokenize(a):
    try:
        import sentencepiece as spm
    except ImportError:
        print("torch_bench: sentencepiece is not installed", file=sys.stderr)
        sys.exit(3)
    sp = spm.SentencePieceProcessor(model_file=a.model)
    data = open(a.file, "rb").read()
    lines = data.decode("utf-8", errors="replace").split("\n")
    if data.endswith(b"\n"):
        lines.pop()
    mb = len(data) / 1e6
    print(f"sentencepiece tokenize: {a.file}, {len(lines)} lines, {mb:.2f} MB")
    t = best_of(lambda: sp.encode(lines), a.steps)
    print(f"1 thread: {t * 1e3:.1f} ms, {mb / t:.2f} MB/s")
    t2 = best_of(lambda: sp.encode(lines, num_threads=a.threads), a.steps)
    print(f"{a.threads} threads: {t2 * 1e3:.1f} ms, {mb / t2:.2f} MB/s")
    print(f"tokenize: {mb / t2:.2f} MB/s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["gemm", "forward", "train", "tokenize"])
    p.add_argument("file", nargs="?", help="tokenize: text file, one text per line")
    p.add_argument("--model", help="tokenize: SentencePiece .model file")
    p.add_argument("--size", default="base", choices=["small", "base"])
    for k in ["layers", "hidden", "heads", "ffn", "vocab", "batch", "seq"]:
        p.add_argument("--" + k, type=int)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--bf16", action="store_true", help="PyTorch's BF16 (see above)")
    a = p.parse_intermixed_args()
    presets(a)
    torch.set_num_threads(a.threads)
    {"gemm": bench_gemm, "forward": bench_forward, "train": bench_train, "tokenize": bench_tokenize}[a.kind](a)


if __name__ == "__main__":
    main()
