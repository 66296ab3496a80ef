/* eval.c: the LAReQA retrieval evaluation (see eval.h for the protocol) and
 * `xlmr eval`.
 * Scores come a block of queries at a time from one sgemm against every
 * candidate; ranks are counts over that score row (no sorting): for a relevant
 * candidate j with score s, the candidates ranked above it are those k < j with
 * score >= s and those k > j with score > s. Counting within j's language range
 * gives its rank in the single-language pool (mono/cross), counting over all
 * candidates its rank in the multilingual pool. */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "encode.h"
#include "json.h"
#include "tensor.h"

/* queries scored per sgemm: the block's score rows (QB, n_cand) stay in cache-friendly size */
#define EVAL_QBLOCK 128

void eval_options_default(EvalOptions *o) {
    memset(o, 0, sizeof *o);
    o->pooling = POOL_MEAN;
    o->batch = 32;
    o->query_prefix = "Query: ";
    o->passage_prefix = "Passage: ";
    o->candidate = EVAL_CAND_SENTENCE;
}

/* Number of s[k] >= x for k in [lo, hi) (ge) or > x (gt). Eight independent
 * lanes of branch-free compares, so the compiler vectorises them. */
static int count_ge(const float *s, int lo, int hi, float x) {
    int acc[8] = {0}, k = lo;
    for (; k + 8 <= hi; k += 8)
        for (int u = 0; u < 8; u++) acc[u] += s[k + u] >= x;
    int n = 0;
    for (; k < hi; k++) n += s[k] >= x;
    for (int u = 0; u < 8; u++) n += acc[u];
    return n;
}
static int count_gt(const float *s, int lo, int hi, float x) {
    int acc[8] = {0}, k = lo;
    for (; k + 8 <= hi; k += 8)
        for (int u = 0; u < 8; u++) acc[u] += s[k + u] > x;
    int n = 0;
    for (; k < hi; k++) n += s[k] > x;
    for (int u = 0; u < 8; u++) n += acc[u];
    return n;
}
/* candidates in [lo, hi) that outrank candidate j (ties: the earlier one wins) */
static int count_above(const float *s, int lo, int hi, int j) {
    float x = s[j];
    int mid = j < lo ? lo : j > hi ? hi : j;
    return count_ge(s, lo, mid, x) + count_gt(s, mid + (j >= lo && j < hi), hi, x);
}

double eval_average_precision(int *ranks, int n) {
    for (int a = 1; a < n; a++) /* insertion sort: n is small (one rank per language) */
        for (int k = a; k > 0 && ranks[k - 1] > ranks[k]; k--) {
            int t = ranks[k];
            ranks[k] = ranks[k - 1];
            ranks[k - 1] = t;
        }
    double ap = 0;
    for (int k = 0; k < n; k++) ap += (double)(k + 1) / ranks[k];
    return ap / n;
}

int eval_metrics(const EvalData *d, const float *q, const float *c, int C, EvalResult *r) {
    memset(r, 0, sizeof *r);
    const int L = d->n_langs, nq = d->n_qs, nc = d->n_sents;
    if (C <= 0 || L <= 0 || L > SQUAD_MAX_LANGS) return xerr("eval: bad sizes (C=%d, languages=%d)", C, L);
    if (nq == 0 || nc == 0) return xerr("eval: no questions or no candidates");
    double t0 = now_seconds();
    r->n_langs = L;
    memcpy(r->langs, d->langs, sizeof r->langs);
    r->questions = nq;
    r->candidates = nc;
    /* per question: mono RR/R@1, cross RR/R@1 per pool language (-1: no relevant there), multi AP/R@10/RD */
    double *mono_rr = xcalloc((size_t)nq, sizeof(double)), *multi = xcalloc((size_t)nq * 3, sizeof(double));
    double *cross_rr = xmalloc((size_t)nq * (size_t)L * sizeof(double));
    unsigned char *mono_hit = xcalloc((size_t)nq, 1), *cross_hit = xcalloc((size_t)nq * (size_t)L, 1);
    float *S = xmalloc((size_t)EVAL_QBLOCK * (size_t)nc * sizeof(float));
    for (int q0 = 0; q0 < nq; q0 += EVAL_QBLOCK) {
        int qb = nq - q0 < EVAL_QBLOCK ? nq - q0 : EVAL_QBLOCK;
        sgemm(0, 1, qb, nc, C, 1.0f, q + (size_t)q0 * C, C, c, C, 0.0f, S, nc); // (qb, nc)
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4)
#endif
        for (int b = 0; b < qb; b++) {
            const int qi = q0 + b;
            const SquadQuestion *Q = &d->qs[qi];
            const float *s = S + (size_t)b * nc;
            const int *rel = d->rel + (size_t)Q->group * L;
            int ranks[SQUAD_MAX_LANGS], nr = 0;
            for (int l = 0; l < L; l++) {
                cross_rr[(size_t)qi * L + l] = -1;
                int j = rel[l];
                if (j < 0) continue;
                int pool = 1 + count_above(s, d->lang_first[l], d->lang_first[l + 1], j);
                ranks[nr++] = 1 + count_above(s, 0, nc, j);
                if (l == Q->lang) {
                    mono_rr[qi] = 1.0 / pool;
                    mono_hit[qi] = pool == 1;
                } else {
                    cross_rr[(size_t)qi * L + l] = 1.0 / pool;
                    cross_hit[(size_t)qi * L + l] = pool == 1;
                }
            }
            /* multi: AP (sorts the at most L ranks), R@10 and the spread */
            multi[3 * qi] = eval_average_precision(ranks, nr);
            int top10 = 0;
            for (int k = 0; k < nr; k++) top10 += ranks[k] <= 10;
            multi[3 * qi + 1] = (double)top10 / nr;
            multi[3 * qi + 2] = ranks[nr - 1] - ranks[0];
        }
    }
    /* means per language (pair), then macro-averages */
    for (int qi = 0; qi < nq; qi++) {
        int X = d->qs[qi].lang;
        EvalScore *m = &r->mono_lang[X], *u = &r->multi_lang[X];
        m->map += mono_rr[qi];
        m->r1 += mono_hit[qi];
        m->n++;
        u->map += multi[3 * qi];
        u->r10 += multi[3 * qi + 1];
        u->rd += multi[3 * qi + 2];
        u->n++;
        for (int Y = 0; Y < L; Y++) {
            double rr = cross_rr[(size_t)qi * L + Y];
            if (rr < 0) continue;
            EvalScore *p = &r->cross_pair[X][Y];
            p->map += rr;
            p->r1 += cross_hit[(size_t)qi * L + Y];
            p->n++;
        }
    }
    int n_mono = 0, n_pairs = 0;
    for (int X = 0; X < L; X++) {
        EvalScore *m = &r->mono_lang[X], *u = &r->multi_lang[X];
        if (m->n) {
            m->map /= m->n;
            m->r1 /= m->n;
            u->map /= u->n;
            u->r10 /= u->n;
            u->rd /= u->n;
            r->mono.map += m->map;
            r->mono.r1 += m->r1;
            r->multi.map += u->map;
            r->multi.r10 += u->r10;
            r->multi.rd += u->rd;
            r->mono.n += m->n;
            r->multi.n += u->n;
            n_mono++;
        }
        for (int Y = 0; Y < L; Y++) {
            EvalScore *p = &r->cross_pair[X][Y];
            if (!p->n) continue;
            p->map /= p->n;
            p->r1 /= p->n;
            r->cross.map += p->map;
            r->cross.r1 += p->r1;
            r->cross.n += p->n;
            n_pairs++;
        }
    }
    if (n_mono) {
        r->mono.map /= n_mono;
        r->mono.r1 /= n_mono;
        r->multi.map /= n_mono;
        r->multi.r10 /= n_mono;
        r->multi.rd /= n_mono;
    }
    if (n_pairs) {
        r->cross.map /= n_pairs;
        r->cross.r1 /= n_pairs;
    }
    free(S);
    free(mono_rr);
    free(multi);
    free(cross_rr);
    free(mono_hit);
    free(cross_hit);
    r->metric_seconds = now_seconds() - t0;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Embedding: each distinct text once. */

/* Distinct strings of texts[0..n): uniq gets the first occurrence of each, idx[i] its index in uniq. */
static int dedupe(char *const *texts, int n, const char ***uniq, int *idx) {
    StrMap seen = {0};
    const char **u = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(char *));
    int nu = 0;
    for (int i = 0; i < n; i++) {
        int found;
        int *v = strmap_slot(&seen, texts[i], &found);
        if (!found) {
            *v = nu;
            u[nu++] = texts[i];
        }
        idx[i] = *v;
    }
    strmap_free(&seen);
    *uniq = u;
    return nu;
}

/* out (n, C): embeddings of texts, each distinct text encoded once */
static int embed_unique(Xlmr *m, const Tokenizer *t, char *const *texts, int n, const EncodeOptions *eo,
                        int C, float *out) {
    const char **u;
    int *idx = xmalloc((size_t)n * sizeof(int));
    int nu = dedupe(texts, n, &u, idx);
    float *e = xmalloc((size_t)nu * (size_t)C * sizeof(float));
    int rc = encode_texts(m, t, (const char *const *)u, nu, eo, e);
    if (rc == 0)
        for (int i = 0; i < n; i++) memcpy(out + (size_t)i * C, e + (size_t)idx[i] * C, (size_t)C * sizeof(float));
    free(e);
    free(u);
    free(idx);
    return rc;
}

int eval_run(Xlmr *m, const Tokenizer *t, const EvalData *d, const EvalOptions *o, EvalResult *r) {
    EvalOptions def;
    if (!o) {
        eval_options_default(&def);
        o = &def;
    }
    const int C = m->cfg.hidden, nq = d->n_qs, nc = d->n_sents;
    double t0 = now_seconds();
    char **qt = xmalloc((size_t)(nq > 0 ? nq : 1) * sizeof(char *));
    char **ct = xmalloc((size_t)(nc > 0 ? nc : 1) * sizeof(char *));
    for (int i = 0; i < nq; i++) qt[i] = d->qs[i].question;
    for (int i = 0; i < nc; i++) {
        const char *s = d->sents[i].text;
        if (o->candidate == EVAL_CAND_CONTEXT) {
            StrBuf sb = {0};
            sb_puts(&sb, s);
            sb_puts(&sb, " ");
            sb_puts(&sb, d->paras[d->sents[i].para].context);
            ct[i] = sb.data;
        } else {
            ct[i] = (char *)s;
        }
    }
    float *qe = xmalloc((size_t)(nq > 0 ? nq : 1) * (size_t)C * sizeof(float));
    float *ce = xmalloc((size_t)(nc > 0 ? nc : 1) * (size_t)C * sizeof(float));
    char lq[256], lc[256];
    EncodeOptions eo = {o->max_len, o->batch, o->pooling, o->query_prefix ? o->query_prefix : "Query: ", NULL};
    if (o->label) {
        snprintf(lq, sizeof lq, "%s: questions", o->label);
        eo.label = lq;
    }
    int rc = embed_unique(m, t, qt, nq, &eo, C, qe);
    if (rc == 0) {
        eo.prefix = o->passage_prefix ? o->passage_prefix : "Passage: ";
        if (o->label) {
            snprintf(lc, sizeof lc, "%s: candidates", o->label);
            eo.label = lc;
        }
        rc = embed_unique(m, t, ct, nc, &eo, C, ce);
    }
    double t1 = now_seconds();
    if (rc == 0) rc = eval_metrics(d, qe, ce, C, r);
    if (rc == 0) r->embed_seconds = t1 - t0;
    if (o->candidate == EVAL_CAND_CONTEXT)
        for (int i = 0; i < nc; i++) free(ct[i]);
    free(qt);
    free(ct);
    free(qe);
    free(ce);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Reports. */
static void json_kv(StrBuf *sb, const char *k, double v, int comma) {
    if (comma) sb_puts(sb, ", ");
    sb_json_string(sb, k);
    sb_puts(sb, ": ");
    sb_json_number(sb, v);
}

/* The members of a score: "map", "r1" (mono, cross) or "map", "r10",
 * "rank_distance" (multi); with_n adds "questions" (mono and cross only). */
static void score_json(StrBuf *sb, const EvalScore *s, int multi, int with_n) {
    json_kv(sb, "map", s->map, 0);
    if (multi) {
        json_kv(sb, "r10", s->r10, 1);
        json_kv(sb, "rank_distance", s->rd, 1);
    } else {
        json_kv(sb, "r1", s->r1, 1);
        if (with_n) json_kv(sb, "questions", s->n, 1);
    }
}

/* , "by_lang": {"ar": {...}, ...} */
static void by_lang_json(StrBuf *sb, const EvalResult *r, const EvalScore *per_lang, int multi) {
    sb_puts(sb, ", \"by_lang\": {");
    for (int l = 0; l < r->n_langs; l++) {
        if (l) sb_puts(sb, ", ");
        sb_json_string(sb, r->langs[l]);
        sb_puts(sb, ": {");
        score_json(sb, &per_lang[l], multi, 1);
        sb_puts(sb, "}");
    }
}

void eval_result_json(const EvalResult *r, StrBuf *sb) {
    sb_puts(sb, "{\"mono\": {");
    score_json(sb, &r->mono, 0, 0);
    by_lang_json(sb, r, r->mono_lang, 0);
    sb_puts(sb, "}}, \"cross\": {");
    score_json(sb, &r->cross, 0, 0);
    sb_puts(sb, ", \"by_pair\": {");
    int first = 1;
    for (int x = 0; x < r->n_langs; x++)
        for (int y = 0; y < r->n_langs; y++) {
            const EvalScore *p = &r->cross_pair[x][y];
            if (x == y || !p->n) continue;
            if (!first) sb_puts(sb, ", ");
            first = 0;
            sb_printf(sb, "\"%s-%s\": {", r->langs[x], r->langs[y]);
            score_json(sb, p, 0, 1);
            sb_puts(sb, "}");
        }
    sb_puts(sb, "}}, \"multi\": {");
    score_json(sb, &r->multi, 1, 0);
    by_lang_json(sb, r, r->multi_lang, 1);
    sb_puts(sb, "}}}");
}

void eval_report_json(const EvalResult *r, const char *dataset, const char *model, StrBuf *sb) {
    sb_puts(sb, "{\"dataset\": ");
    sb_json_string(sb, dataset ? dataset : "");
    sb_puts(sb, ", \"model\": ");
    sb_json_string(sb, model ? model : "");
    sb_puts(sb, ", \"settings\": ");
    eval_result_json(r, sb);
    sb_printf(sb, ", \"questions\": %d, \"candidates\": %d}\n", r->questions, r->candidates);
}

void eval_result_print(const EvalResult *r, FILE *f) {
    fprintf(f, "%-6s %8s %8s %9s %8s %9s %9s %8s\n", "lang", "mono.mAP", "mono.R1", "cross.mAP", "cross.R1",
            "multi.mAP", "multi.R10", "multi.RD");
    for (int x = 0; x < r->n_langs; x++) {
        /* cross for a query language: mean over its pool languages */
        double cm = 0, cr = 0;
        int np = 0;
        for (int y = 0; y < r->n_langs; y++)
            if (y != x && r->cross_pair[x][y].n) {
                cm += r->cross_pair[x][y].map;
                cr += r->cross_pair[x][y].r1;
                np++;
            }
        fprintf(f, "%-6s %8.4f %8.4f %9.4f %8.4f %9.4f %9.4f %8.2f\n", r->langs[x], r->mono_lang[x].map,
                r->mono_lang[x].r1, np ? cm / np : 0, np ? cr / np : 0, r->multi_lang[x].map, r->multi_lang[x].r10,
                r->multi_lang[x].rd);
    }
    fprintf(f, "%-6s %8.4f %8.4f %9.4f %8.4f %9.4f %9.4f %8.2f\n", "all", r->mono.map, r->mono.r1, r->cross.map,
            r->cross.r1, r->multi.map, r->multi.r10, r->multi.rd);
    fprintf(f, "\ncross mAP (row: query language, column: pool language)\n%-6s", "");
    for (int y = 0; y < r->n_langs; y++) fprintf(f, " %6s", r->langs[y]);
    fputc('\n', f);
    for (int x = 0; x < r->n_langs; x++) {
        fprintf(f, "%-6s", r->langs[x]);
        for (int y = 0; y < r->n_langs; y++) {
            if (x == y) fprintf(f, " %6s", "-");
            else if (!r->cross_pair[x][y].n) fprintf(f, " %6s", "n/a");
            else fprintf(f, " %6.3f", r->cross_pair[x][y].map);
        }
        fputc('\n', f);
    }
    fprintf(f, "\n%d questions, %d candidates; embedding %.1f s, metrics %.2f s\n", r->questions, r->candidates,
            r->embed_seconds, r->metric_seconds);
}

/* ---------------------------------------------------------------------------
 * xlmr eval */
int cmd_eval(int argc, char **argv) {
    char *model = NULL, *dataset = NULL, *data = NULL, *pooling = "mean", *cand = "sentence", *langs = NULL;
    char *split_s = "all", *json_out = NULL;
    char *qp = "Query: ", *pp = "Passage: ";
    int max_len = 0, batch = 32, bf16 = 0;
    Opt opts[] = {
        {"model", OPT_STR, &model, "DIR", "model folder (config.json, model.safetensors, sentencepiece.bpe.model) (required)"},
        {"dataset", OPT_STR, &dataset, "NAME", "xquad-r or mlqa-r (required)"},
        {"data", OPT_STR, &data, "DIR", "the data set's folder, e.g. data/xquad-r (required)"},
        {"pooling", OPT_STR, &pooling, "P", "mean (default) or cls"},
        {"max-len", OPT_INT, &max_len, "N", "tokens per text including <s> and </s> (default: the model's limit)"},
        {"query-prefix", OPT_STR, &qp, "S", "prepended to questions (default \"Query: \")"},
        {"passage-prefix", OPT_STR, &pp, "S", "prepended to candidates (default \"Passage: \")"},
        {"candidate", OPT_STR, &cand, "MODE", "sentence (default) or context: candidate = sentence + \" \" + its paragraph (LAReQA)"},
        {"langs", OPT_STR, &langs, "L,L", "languages (default: all of the data set)"},
        {"split", OPT_STR, &split_s, "S", "all (default), train, dev or test: by article, index k of en.json, "
                                          "k mod 10 = 0-5 train, 6-7 dev, 8-9 test"},
        {"json", OPT_STR, &json_out, "FILE", "also write the results as JSON (atomically)"},
        {"batch", OPT_INT, &batch, "B", "texts per forward call (default 32)"},
        {"bf16", OPT_FLAG, &bf16, NULL, "BF16 matrix products (fp32 weights and accumulation): faster, ~1e-2 off"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr eval --model DIR --dataset NAME --data DIR",
               "Evaluates a model on XQuAD-R / MLQA-R: mono, cross and multilingual retrieval "
               "(mAP, R@1, R@10, rank distance), every sentence a candidate.",
               NULL);
    opts_require("xlmr eval", "model", model);
    opts_require("xlmr eval", "dataset", dataset);
    opts_require("xlmr eval", "data", data);
    if (strcmp(dataset, "xquad-r") != 0 && strcmp(dataset, "mlqa-r") != 0)
        die("eval: --dataset must be xquad-r or mlqa-r");
    EvalOptions o;
    eval_options_default(&o);
    if ((o.pooling = xlmr_pooling_parse(pooling)) < 0) die("eval: --pooling must be mean or cls");
    if (!strcmp(cand, "context")) o.candidate = EVAL_CAND_CONTEXT;
    else if (strcmp(cand, "sentence") != 0) die("eval: --candidate must be sentence or context");
    if (batch <= 0) die("eval: --batch must be positive");
    if (max_len < 0 || max_len == 1 || max_len == 2) die("eval: --max-len must be at least 3");
    o.max_len = max_len;
    o.batch = batch;
    o.query_prefix = qp;
    o.passage_prefix = pp;
    o.label = "eval";
    EvalData d;
    if (squad_load_csv(&d, dataset, data, langs, NULL, split_s)) die_xerr();
    Xlmr m;
    Tokenizer *t = NULL;
    if (xlmr_load(&m, model)) die_xerr();
    m.use_bf16 = bf16;
    if (tokenizer_load(&t, model)) die_xerr();
    EvalResult r;
    if (eval_run(&m, t, &d, &o, &r)) die_xerr();
    printf("%s on %s (split %s)\n", model, dataset, split_s);
    eval_result_print(&r, stdout);
    if (json_out) {
        StrBuf sb = {0};
        eval_report_json(&r, dataset, model, &sb);
        if (write_file_atomic(json_out, sb.data, sb.len)) die_xerr();
        sb_free(&sb);
    }
    tokenizer_free(t);
    xlmr_free(&m);
    squad_free(&d);
    return 0;
}
