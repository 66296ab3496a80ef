/* eval.c: the LAReQA retrieval evaluation (see eval.h for the protocol).
 * Scores come a block of queries at a time from one sgemm against every
 * candidate; ranks are counts over that score row, not a sort: with n
 * candidates and a handful of relevant ones per query, counting is O(n) per
 * relevant candidate where sorting would be O(n log n) per query. Counting
 * within a language's range [lang_first[l], lang_first[l+1]) gives a rank in
 * the single-language pool (mono, cross), over all candidates the rank in the
 * multilingual pool (multi). */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "json.h"
#include "tensor.h"

/* queries scored per sgemm: the block's score rows (QB, n_cand) stay in cache-friendly size */
#define EVAL_QBLOCK 128

void eval_options_default(EvalOptions *o) {
    *o = (EvalOptions){
        .pooling = POOL_MEAN,
        .batch = 32,
        .query_prefix = XLMR_QUERY_PREFIX,
        .passage_prefix = XLMR_PASSAGE_PREFIX,
        .candidate = EVAL_CAND_SENTENCE,
    };
}

/* ---------------------------------------------------------------------------
 * The ranking rule. */

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

/* Before j an equal score outranks j (>=), after j only a higher one (>): the
 * tie rule as two counts with no per-candidate branch on the index. */
int eval_rank(const float *scores, int lo, int hi, int j) {
    float x = scores[j];
    int mid = j < lo ? lo : j > hi ? hi : j;
    return 1 + count_ge(scores, lo, mid, x) + count_gt(scores, mid + (j >= lo && j < hi), hi, x);
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

double eval_query_average_precision(const float *scores, int n, const int *relevant, int n_rel, int *ranks) {
    for (int k = 0; k < n_rel; k++) ranks[k] = eval_rank(scores, 0, n, relevant[k]);
    return eval_average_precision(ranks, n_rel);
}

/* ---------------------------------------------------------------------------
 * The metrics: every question scored in every pool, then averaged per setting. */

/* Per question: its reciprocal rank and hit@1 in its own language's pool
 * (mono), in each other language's pool ([qi * L + l], rr -1 where it has no
 * relevant sentence: cross), and AP, R@10 and rank distance in the union of
 * all pools (multi). */
typedef struct {
    double *mono_rr, *cross_rr;
    unsigned char *mono_hit, *cross_hit;
    double *multi_ap, *multi_r10, *multi_rd;
} QueryScores;

static void query_scores_build(QueryScores *qs, int nq, int L) {
    qs->mono_rr = xcalloc((size_t)nq, sizeof(double));
    qs->mono_hit = xcalloc((size_t)nq, 1);
    qs->cross_rr = xmalloc((size_t)nq * (size_t)L * sizeof(double));
    qs->cross_hit = xcalloc((size_t)nq * (size_t)L, 1);
    qs->multi_ap = xcalloc((size_t)nq, sizeof(double));
    qs->multi_r10 = xcalloc((size_t)nq, sizeof(double));
    qs->multi_rd = xcalloc((size_t)nq, sizeof(double));
}

static void query_scores_free(QueryScores *qs) {
    free(qs->mono_rr);
    free(qs->mono_hit);
    free(qs->cross_rr);
    free(qs->cross_hit);
    free(qs->multi_ap);
    free(qs->multi_r10);
    free(qs->multi_rd);
}

/* Question qi against its score row s (n_sents): its ranks in every pool. */
static void score_question(const EvalData *d, int qi, const float *s, QueryScores *qs) {
    const int L = d->n_langs, nc = d->n_sents;
    const SquadQuestion *Q = &d->qs[qi];
    const int *rel = d->rel + (size_t)Q->group * L;
    int relevant[SQUAD_MAX_LANGS], ranks[SQUAD_MAX_LANGS], nr = 0;
    for (int l = 0; l < L; l++) {
        qs->cross_rr[(size_t)qi * L + l] = -1;
        int j = rel[l];
        if (j < 0) continue;
        relevant[nr++] = j;
        int pool = eval_rank(s, d->lang_first[l], d->lang_first[l + 1], j);
        if (l == Q->lang) {
            qs->mono_rr[qi] = 1.0 / pool;
            qs->mono_hit[qi] = pool == 1;
        } else {
            qs->cross_rr[(size_t)qi * L + l] = 1.0 / pool;
            qs->cross_hit[(size_t)qi * L + l] = pool == 1;
        }
    }
    /* multi: ranks come back sorted, so the spread is last - first */
    qs->multi_ap[qi] = eval_query_average_precision(s, nc, relevant, nr, ranks);
    int top10 = 0;
    for (int k = 0; k < nr; k++) top10 += ranks[k] <= 10;
    qs->multi_r10[qi] = (double)top10 / nr;
    qs->multi_rd[qi] = ranks[nr - 1] - ranks[0];
}

static void score_questions(const EvalData *d, const float *q, const float *c, int C, QueryScores *qs) {
    const int nq = d->n_qs, nc = d->n_sents;
    float *S = xmalloc((size_t)EVAL_QBLOCK * (size_t)nc * sizeof(float));
    for (int q0 = 0; q0 < nq; q0 += EVAL_QBLOCK) {
        int qb = nq - q0 < EVAL_QBLOCK ? nq - q0 : EVAL_QBLOCK;
        sgemm(0, 1, qb, nc, C, 1.0f, q + (size_t)q0 * C, C, c, C, 0.0f, S, nc); // (qb, nc)
        OMP(omp parallel for schedule(dynamic, 4))
        for (int b = 0; b < qb; b++) score_question(d, q0 + b, S + (size_t)b * nc, qs);
    }
    free(S);
}

/* mono: mean per language, then the macro-average over the languages with questions */
static void mono_means(const EvalData *d, const QueryScores *qs, EvalResult *r) {
    for (int qi = 0; qi < d->n_qs; qi++) {
        EvalScore *m = &r->mono_lang[d->qs[qi].lang];
        m->map += qs->mono_rr[qi];
        m->r1 += qs->mono_hit[qi];
        m->n++;
    }
    int n_lang = 0;
    for (int X = 0; X < d->n_langs; X++) {
        EvalScore *m = &r->mono_lang[X];
        if (!m->n) continue;
        m->map /= m->n;
        m->r1 /= m->n;
        r->mono.map += m->map;
        r->mono.r1 += m->r1;
        r->mono.n += m->n;
        n_lang++;
    }
    if (n_lang) {
        r->mono.map /= n_lang;
        r->mono.r1 /= n_lang;
    }
}

/* cross: mean per (query language, pool language) pair, then the macro-average over the pairs with questions */
static void cross_means(const EvalData *d, const QueryScores *qs, EvalResult *r) {
    const int L = d->n_langs;
    for (int qi = 0; qi < d->n_qs; qi++)
        for (int Y = 0; Y < L; Y++) {
            double rr = qs->cross_rr[(size_t)qi * L + Y];
            if (rr < 0) continue;
            EvalScore *p = &r->cross_pair[d->qs[qi].lang][Y];
            p->map += rr;
            p->r1 += qs->cross_hit[(size_t)qi * L + Y];
            p->n++;
        }
    int n_pairs = 0;
    for (int X = 0; X < L; X++)
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
    if (n_pairs) {
        r->cross.map /= n_pairs;
        r->cross.r1 /= n_pairs;
    }
}

/* multi: mean per query language, then the macro-average over the languages with questions */
static void multi_means(const EvalData *d, const QueryScores *qs, EvalResult *r) {
    for (int qi = 0; qi < d->n_qs; qi++) {
        EvalScore *u = &r->multi_lang[d->qs[qi].lang];
        u->map += qs->multi_ap[qi];
        u->r10 += qs->multi_r10[qi];
        u->rd += qs->multi_rd[qi];
        u->n++;
    }
    int n_lang = 0;
    for (int X = 0; X < d->n_langs; X++) {
        EvalScore *u = &r->multi_lang[X];
        if (!u->n) continue;
        u->map /= u->n;
        u->r10 /= u->n;
        u->rd /= u->n;
        r->multi.map += u->map;
        r->multi.r10 += u->r10;
        r->multi.rd += u->rd;
        r->multi.n += u->n;
        n_lang++;
    }
    if (n_lang) {
        r->multi.map /= n_lang;
        r->multi.r10 /= n_lang;
        r->multi.rd /= n_lang;
    }
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
    QueryScores qs;
    query_scores_build(&qs, nq, L);
    score_questions(d, q, c, C, &qs);
    mono_means(d, &qs, r);
    cross_means(d, &qs, r);
    multi_means(d, &qs, r);
    query_scores_free(&qs);
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

/* The first row of e (n, C) with a NaN or infinite value, or -1. A NaN score
 * compares false with every other, so it would rank first everywhere: a
 * damaged model must be an error, never a perfect score. */
static int first_nonfinite_row(const float *e, int n, int C) {
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++)
            if (!isfinite(e[(size_t)i * C + c])) return i;
    return -1;
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
    EncodeOptions eo = {o->max_len, o->batch, o->pooling, o->query_prefix ? o->query_prefix : XLMR_QUERY_PREFIX, NULL};
    if (o->label) {
        snprintf(lq, sizeof lq, "%s: questions", o->label);
        eo.label = lq;
    }
    int rc = embed_unique(m, t, qt, nq, &eo, C, qe);
    if (rc == 0) {
        eo.prefix = o->passage_prefix ? o->passage_prefix : XLMR_PASSAGE_PREFIX;
        if (o->label) {
            snprintf(lc, sizeof lc, "%s: candidates", o->label);
            eo.label = lc;
        }
        rc = embed_unique(m, t, ct, nc, &eo, C, ce);
    }
    double t1 = now_seconds();
    int bad_q = rc == 0 ? first_nonfinite_row(qe, nq, C) : -1, bad_c = rc == 0 ? first_nonfinite_row(ce, nc, C) : -1;
    if (bad_q >= 0)
        rc = xerr("eval: the model gives a non-finite embedding for question %s (%s): \"%.60s\"", d->qs[bad_q].id,
                  d->langs[d->qs[bad_q].lang], d->qs[bad_q].question);
    else if (bad_c >= 0)
        rc = xerr("eval: the model gives a non-finite embedding for candidate %d (%s): \"%.60s\"", bad_c,
                  d->langs[d->paras[d->sents[bad_c].para].lang], d->sents[bad_c].text);
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
/* [, ]"k": v */
static void json_kv(StrBuf *sb, const char *k, double v, int comma) {
    if (comma) sb_puts(sb, ", ");
    sb_json_key(sb, k);
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
        sb_json_key(sb, r->langs[l]);
        if (!per_lang[l].n) { /* a language without questions has no score, not a score of 0 */
            sb_puts(sb, "null");
            continue;
        }
        sb_puts(sb, "{");
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
            char pair[2 * sizeof r->langs[0] + 1];
            snprintf(pair, sizeof pair, "%s-%s", r->langs[x], r->langs[y]);
            sb_json_key(sb, pair);
            sb_puts(sb, "{");
            score_json(sb, p, 0, 1);
            sb_puts(sb, "}");
        }
    sb_puts(sb, "}}, \"multi\": {");
    score_json(sb, &r->multi, 1, 0);
    by_lang_json(sb, r, r->multi_lang, 1);
    sb_puts(sb, "}}}");
}

void eval_report_json(const EvalResult *r, const char *dataset, const char *model, StrBuf *sb) {
    sb_puts(sb, "{");
    sb_json_key(sb, "dataset");
    sb_json_string(sb, dataset ? dataset : "");
    sb_puts(sb, ", ");
    sb_json_key(sb, "model");
    sb_json_string(sb, model ? model : "");
    sb_puts(sb, ", ");
    sb_json_key(sb, "settings");
    eval_result_json(r, sb);
    json_kv(sb, "questions", r->questions, 1);
    json_kv(sb, "candidates", r->candidates, 1);
    sb_puts(sb, "}\n");
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
        if (!r->mono_lang[x].n) { /* no questions in this language: nothing to report */
            fprintf(f, "%-6s %8s %8s %9s %8s %9s %9s %8s\n", r->langs[x], "n/a", "n/a", "n/a", "n/a", "n/a", "n/a", "n/a");
            continue;
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
