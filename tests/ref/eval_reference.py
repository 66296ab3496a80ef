#!/usr/bin/python3
"""tests/ref/eval_reference.py: an independent numpy implementation of the
LAReQA evaluation protocol (eval.h), used to make the committed expectations
for tests/test_eval.c.

  /usr/bin/python3 tests/ref/eval_reference.py gen     # (re)writes tests/fixtures/eval/{hand,synth}/
  /usr/bin/python3 tests/ref/eval_reference.py check DIR LANG,LANG,...
      prints candidate / question counts of a real data set (XQuAD-R: 13014 / 1190x11)

The ranking here is a stable sort (numpy lexsort on (-score, index)), not the
counting the C code does: the two must agree on every rank, ties included.
Needs numpy only.
"""
import json
import os
import random
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "fixtures", "eval")


# ---------------------------------------------------------------------------
# Data: the same order as squad.c (language, article in file order, paragraph, sentence).
def load(folder, langs):
    cands, cand_lang, questions = [], [], []  # questions: (lang, id, own candidate index)
    for li, lang in enumerate(langs):
        with open(os.path.join(folder, lang + ".json"), encoding="utf-8") as f:
            d = json.load(f)
        for art in d["data"]:
            for par in art["paragraphs"]:
                base = len(cands)
                for s in par["sentences"]:
                    cands.append(s)
                    cand_lang.append(li)
                for qa in par["qas"]:
                    a = qa["answers"][0]["answer_start"]
                    hit = [i for i, (b0, b1) in enumerate(par["sentence_breaks"]) if b0 <= a < b1]
                    assert len(hit) >= 1, qa["id"]
                    questions.append((li, qa["id"], base + hit[0], qa["question"]))
    return cands, np.array(cand_lang), questions


def metrics(langs, cand_lang, questions, Q, Cm):
    """Q (nq, C), Cm (nc, C): scores are plain dot products (rows already normalised)."""
    L = len(langs)
    S = Q.astype(np.float32) @ Cm.astype(np.float32).T
    rel = {}  # id -> {lang: candidate}
    for li, qid, c, _ in questions:
        rel.setdefault(qid, {}).setdefault(li, c)
    idx_all = np.arange(S.shape[1])

    def rank_in(scores, pool, j):
        # stable order: higher score first, then lower index
        order = pool[np.lexsort((pool, -scores[pool]))]
        return int(np.nonzero(order == j)[0][0]) + 1

    mono = {l: [] for l in range(L)}
    cross = {(x, y): [] for x in range(L) for y in range(L) if x != y}
    multi = {l: [] for l in range(L)}
    for qi, (x, qid, own, _) in enumerate(questions):
        s = S[qi]
        for y, j in rel[qid].items():
            pool = np.nonzero(cand_lang == y)[0]
            r = rank_in(s, pool, j)
            (mono[x] if y == x else cross[(x, y)]).append((1.0 / r, 1.0 if r == 1 else 0.0))
        order = idx_all[np.lexsort((idx_all, -s))]
        pos = np.empty_like(order)
        pos[order] = np.arange(1, len(order) + 1)
        ranks = sorted(int(pos[j]) for j in rel[qid].values())
        ap = np.mean([(k + 1) / r for k, r in enumerate(ranks)])
        r10 = np.mean([r <= 10 for r in ranks])
        multi[x].append((ap, r10, ranks[-1] - ranks[0]))

    out = {"mono": {}, "cross": {}, "multi": {}}
    by = {}
    for l in range(L):
        if mono[l]:
            a = np.array(mono[l])
            by[langs[l]] = {"map": a[:, 0].mean(), "r1": a[:, 1].mean(), "questions": len(a)}
    out["mono"] = {"map": np.mean([v["map"] for v in by.values()]), "r1": np.mean([v["r1"] for v in by.values()]),
                   "by_lang": by}
    by = {}
    for (x, y), v in cross.items():
        if v:
            a = np.array(v)
            by[langs[x] + "-" + langs[y]] = {"map": a[:, 0].mean(), "r1": a[:, 1].mean(), "questions": len(a)}
    out["cross"] = {"map": np.mean([v["map"] for v in by.values()]), "r1": np.mean([v["r1"] for v in by.values()]),
                    "by_pair": by}
    by = {}
    for l in range(L):
        if multi[l]:
            a = np.array(multi[l])
            by[langs[l]] = {"map": a[:, 0].mean(), "r10": a[:, 1].mean(), "rank_distance": a[:, 2].mean()}
    out["multi"] = {"map": np.mean([v["map"] for v in by.values()]), "r10": np.mean([v["r10"] for v in by.values()]),
                    "rank_distance": np.mean([v["rank_distance"] for v in by.values()]), "by_lang": by}

    def fl(o):
        if isinstance(o, dict):
            return {k: fl(v) for k, v in o.items()}
        return float(o) if not isinstance(o, int) else o
    return fl(out)


# ---------------------------------------------------------------------------
# Fixtures.
def write_set(folder, files):
    os.makedirs(folder, exist_ok=True)
    for lang, doc in files.items():
        with open(os.path.join(folder, lang + ".json"), "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=None)
            f.write("\n")


def paragraph(sents, qas):
    """sents: list of sentences; qas: list of (id, question, sentence index, offset in sentence)."""
    ctx, breaks, pos = "", [], 0
    for i, s in enumerate(sents):
        if i:
            ctx += " "
            pos += 1
        breaks.append([pos, pos + len(s)])  # code points, as the files have them
        ctx += s
        pos += len(s)
    out = []
    for qid, q, si, off in qas:
        a = breaks[si][0] + off
        out.append({"id": qid, "question": q, "answers": [{"answer_start": a, "text": ctx[a:a + 3]}]})
    return {"context": ctx, "sentences": sents, "sentence_breaks": breaks, "qas": out}


def gen_hand():
    # en: E0 E1 E2 (questions a->E0, b->E2, c->E2); de: D0 D1 (a->D0, b->D1; no c)
    en = {"version": "1", "data": [{"title": "T", "paragraphs": [paragraph(
        ["Alpha one.", "Beta two.", "Gamma three."],
        [("a", "What is alpha?", 0, 2), ("b", "What is gamma?", 2, 0), ("c", "Gamma again?", 2, 11)])]}]}
    de = {"version": "1", "data": [{"title": "T", "paragraphs": [paragraph(
        ["Älpha eins.", "Gämma drei."],
        [("a", "Was ist älpha?", 0, 3), ("b", "Was ist gämma?", 1, 10)])]}]}
    write_set(os.path.join(FIX, "hand"), {"en": en, "de": de})


WORDS = ["alpha", "beta", "gamma", "délta", "über", "ナ", "кошка", "قطة", "日本", "x", "y", "z"]


def gen_synth(rng):
    langs = ["en", "de", "es", "ar"]
    n_art = 12
    files = {l: {"version": "1", "data": []} for l in langs}
    for a in range(n_art):
        n_par = rng.randint(1, 2)
        arts = {l: {"title": "art%d-%s" % (a, l), "paragraphs": []} for l in langs}
        for p in range(n_par):
            nq = rng.randint(1, 3)
            for li, l in enumerate(langs):
                ns = rng.randint(2, 5)
                sents = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) + "." for _ in range(ns)]
                qas = []
                for q in range(nq):
                    if l != "en" and rng.random() < 0.25:
                        continue  # this translation is missing
                    si = rng.randrange(ns)
                    qas.append(("a%dp%dq%d" % (a, p, q), "question %d %d %d %s" % (a, p, q, l), si,
                                rng.randrange(len(sents[si]))))
                arts[l]["paragraphs"].append(paragraph(sents, qas))
        for l in langs:
            files[l]["data"].append(arts[l])
    files["es"]["data"].reverse()  # articles need not be in the same order in every language
    folder = os.path.join(FIX, "synth")
    write_set(folder, files)
    return folder, langs


def save_emb(path, X):
    with open(path, "w") as f:
        f.write("%d %d\n" % X.shape)
        for row in X:
            f.write(" ".join("%.9g" % v for v in row) + "\n")


def gen():
    rng = random.Random(1234)
    gen_hand()
    folder, langs = gen_synth(rng)
    cands, cand_lang, questions = load(folder, langs)
    nrng = np.random.default_rng(99)
    # case "gauss": random unit vectors (C=16); case "int": entries in {-1,0,1} (C=4), many exact ties
    for name, C in (("gauss", 16), ("int", 4)):
        if name == "gauss":
            Q = nrng.standard_normal((len(questions), C)).astype(np.float32)
            Cm = nrng.standard_normal((len(cands), C)).astype(np.float32)
            Q /= np.linalg.norm(Q, axis=1, keepdims=True)
            Cm /= np.linalg.norm(Cm, axis=1, keepdims=True)
            # make some relevant candidates easy so the metrics are not all near zero
            for qi, (x, qid, own, _) in enumerate(questions):
                if qi % 3 == 0:
                    Cm[own] = 0.5 * Cm[own] + 0.5 * Q[qi]
                    Cm[own] /= np.linalg.norm(Cm[own])
        else:
            Q = nrng.integers(-1, 2, (len(questions), C)).astype(np.float32)
            Cm = nrng.integers(-1, 2, (len(cands), C)).astype(np.float32)
        save_emb(os.path.join(folder, "q_%s.txt" % name), Q)
        save_emb(os.path.join(folder, "c_%s.txt" % name), Cm)
        res = metrics(langs, cand_lang, questions, Q, Cm)
        res["questions"] = len(questions)
        res["candidates"] = len(cands)
        with open(os.path.join(folder, "expected_%s.json" % name), "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
            f.write("\n")
        print(name, "questions", len(questions), "candidates", len(cands), "mono", res["mono"]["map"],
              "cross", res["cross"]["map"], "multi", res["multi"]["map"], res["multi"]["r10"])


def check(folder, langs):
    cands, cand_lang, questions = load(folder, langs)
    print("candidates", len(cands), "questions", len(questions))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "gen":
        gen()
    elif len(sys.argv) == 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3].split(","))
    else:
        sys.exit(__doc__)
