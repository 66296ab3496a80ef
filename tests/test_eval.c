/* tests/test_eval.c: SQuAD-format loading, sentence splitting, splits, and the
 * retrieval metrics — hand-computed cases and tests/ref/eval_reference.py's
 * expectations on random embeddings (tests/fixtures/eval/). With the real data
 * (XLMR_DATA, data/ or ../shared/data) also the data set sizes. */
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "json.h"
#include "squad.h"
#include "tests/test.h"
#include "util.h"

#define FIX "tests/fixtures/eval/"

/* "n C" then n rows of C numbers */
static float *read_emb(const char *path, int *n, int *C) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    float *x = NULL;
    if (fscanf(f, "%d %d", n, C) == 2 && *n > 0 && *C > 0 && *n < 1000000 && *C < 100000) {
        x = xmalloc((size_t)*n * (size_t)*C * sizeof(float));
        for (size_t i = 0; i < (size_t)*n * (size_t)*C; i++)
            if (fscanf(f, "%f", &x[i]) != 1) { free(x); x = NULL; break; }
    }
    fclose(f);
    return x;
}

static int close_to(double a, double b) { return fabs(a - b) <= 1e-9 * (1 + fabs(b)); }

static double jnum(const Json *o, const char *k) {
    const Json *v = json_get(o, k);
    return v && v->type == JSON_NUMBER ? v->num : -999;
}

/* every number of an expected "settings" JSON against r; returns the mismatch count */
static int compare_expected(const EvalResult *r, const Json *e) {
    int bad = 0;
    const Json *mono = json_get(e, "mono"), *cross = json_get(e, "cross"), *multi = json_get(e, "multi");
    bad += !close_to(r->mono.map, jnum(mono, "map")) + !close_to(r->mono.r1, jnum(mono, "r1"));
    bad += !close_to(r->cross.map, jnum(cross, "map")) + !close_to(r->cross.r1, jnum(cross, "r1"));
    bad += !close_to(r->multi.map, jnum(multi, "map")) + !close_to(r->multi.r10, jnum(multi, "r10"));
    bad += !close_to(r->multi.rd, jnum(multi, "rank_distance"));
    const Json *ml = json_get(mono, "by_lang"), *ul = json_get(multi, "by_lang"), *cp = json_get(cross, "by_pair");
    for (int l = 0; l < r->n_langs; l++) {
        const Json *m = json_get(ml, r->langs[l]), *u = json_get(ul, r->langs[l]);
        bad += !m || !close_to(r->mono_lang[l].map, jnum(m, "map")) || !close_to(r->mono_lang[l].r1, jnum(m, "r1")) ||
               r->mono_lang[l].n != (int)jnum(m, "questions");
        bad += !u || !close_to(r->multi_lang[l].map, jnum(u, "map")) || !close_to(r->multi_lang[l].r10, jnum(u, "r10")) ||
               !close_to(r->multi_lang[l].rd, jnum(u, "rank_distance"));
    }
    int pairs = 0;
    for (int x = 0; x < r->n_langs; x++)
        for (int y = 0; y < r->n_langs; y++) {
            if (x == y || !r->cross_pair[x][y].n) continue;
            char key[40];
            snprintf(key, sizeof key, "%s-%s", r->langs[x], r->langs[y]);
            const Json *p = json_get(cp, key);
            bad += !p || !close_to(r->cross_pair[x][y].map, jnum(p, "map")) ||
                   !close_to(r->cross_pair[x][y].r1, jnum(p, "r1")) || r->cross_pair[x][y].n != (int)jnum(p, "questions");
            pairs++;
        }
    bad += cp == NULL || (size_t)pairs != cp->n;
    return bad;
}

static void test_hand(void) {
    char *langs[] = {"en", "de"};
    SquadData d;
    int rc = squad_load(&d, "xquad-r", FIX "hand", langs, 2, NULL, SPLIT_ALL);
    CHECK(rc == 0, "hand loads: %s", xerr_msg());
    if (rc) return;
    CHECK(d.n_sents == 5 && d.n_qs == 5 && d.n_groups == 3 && d.lang_first[1] == 3 && d.lang_first[2] == 5,
          "hand sizes %d %d %d", d.n_sents, d.n_qs, d.n_groups);
    /* relevance: a -> E0 / D0, b -> E2 / D1, c -> E2 only */
    int want_rel[] = {0, 3, 2, 4, 2, -1};
    CHECK(memcmp(d.rel, want_rel, sizeof want_rel) == 0, "relevant sentences (code-point answer_start in de)");
    /* candidates one-hot, so each query row is its score row (E0 E1 E2 D0 D1) */
    float c[25] = {0}, q[25] = {
        1, 2, 0, 1, 0,    /* en a */
        0, 0, 0, 0, 0,    /* en b: all tied */
        0, 0, 3, 5, 0,    /* en c: no de translation */
        0, 0, 0, 2, 2,    /* de a */
        -1, 0, -1, 1, 0}; /* de b */
    for (int i = 0; i < 5; i++) c[i * 5 + i] = 1;
    EvalResult r;
    CHECK(eval_metrics(&d, q, c, 5, &r) == 0, "eval_metrics");
    /* hand-computed (see the derivation in the report): */
    CHECK(close_to(r.mono_lang[0].map, (0.5 + 1.0 / 3 + 1) / 3) && close_to(r.mono_lang[0].r1, 1.0 / 3), "mono en");
    CHECK(close_to(r.mono_lang[1].map, 0.75) && close_to(r.mono_lang[1].r1, 0.5), "mono de");
    CHECK(close_to(r.mono.map, ((0.5 + 1.0 / 3 + 1) / 3 + 0.75) / 2) && close_to(r.mono.r1, (1.0 / 3 + 0.5) / 2),
          "mono macro");
    CHECK(r.cross_pair[0][1].n == 2 && close_to(r.cross_pair[0][1].map, 0.75) && close_to(r.cross_pair[0][1].r1, 0.5),
          "cross en-de (question c has no de sentence)");
    CHECK(r.cross_pair[1][0].n == 2 && close_to(r.cross_pair[1][0].map, (1 + 1.0 / 3) / 2) &&
              close_to(r.cross_pair[1][0].r1, 0.5),
          "cross de-en");
    CHECK(close_to(r.cross.map, (0.75 + 2.0 / 3) / 2) && close_to(r.cross.r1, 0.5), "cross macro");
    double ap_en = ((0.5 + 2.0 / 3) / 2 + (1.0 / 3 + 2.0 / 5) / 2 + 0.5) / 3;
    double ap_de = ((1 + 2.0 / 3) / 2 + (1.0 / 3 + 2.0 / 5) / 2) / 2;
    CHECK(close_to(r.multi_lang[0].map, ap_en) && close_to(r.multi_lang[1].map, ap_de), "multi AP per language");
    CHECK(close_to(r.multi_lang[0].rd, 1.0) && close_to(r.multi_lang[1].rd, 2.0), "rank distance per language");
    CHECK(close_to(r.multi.map, (ap_en + ap_de) / 2) && close_to(r.multi.r10, 1) && close_to(r.multi.rd, 1.5),
          "multi macro");
    CHECK(r.questions == 5 && r.candidates == 5, "counts");
    /* the JSON writer: parses, and carries the numbers */
    StrBuf sb = {0};
    eval_report_json(&r, "xquad-r", "m", &sb);
    Json j;
    CHECK(json_parse(&j, sb.data, sb.len, "report") == 0, "report JSON parses: %s", xerr_msg());
    CHECK(compare_expected(&r, json_get(&j, "settings")) == 0, "report JSON round-trips");
    CHECK(jnum(&j, "questions") == 5 && jnum(&j, "candidates") == 5, "report counts");
    json_free(&j);
    sb_free(&sb);
    /* bad sizes */
    CHECK(eval_metrics(&d, q, c, 0, &r) != 0, "C = 0 refused");
    squad_free(&d);
}

static void test_synth(const char *name) {
    char *langs[] = {"en", "de", "es", "ar"};
    SquadData d;
    int rc = squad_load(&d, "xquad-r", FIX "synth", langs, 4, NULL, SPLIT_ALL);
    CHECK(rc == 0, "synth loads: %s", xerr_msg());
    if (rc) return;
    char p[256];
    int nq, nc, C, C2;
    snprintf(p, sizeof p, FIX "synth/q_%s.txt", name);
    float *q = read_emb(p, &nq, &C);
    snprintf(p, sizeof p, FIX "synth/c_%s.txt", name);
    float *c = read_emb(p, &nc, &C2);
    snprintf(p, sizeof p, FIX "synth/expected_%s.json", name);
    Json e;
    CHECK(q && c && C == C2 && nq == d.n_qs && nc == d.n_sents, "%s embeddings match the data (%d x %d)", name, nq, nc);
    if (q && c && C == C2 && nq == d.n_qs && nc == d.n_sents && json_parse_file(&e, p) == 0) {
        EvalResult r;
        CHECK(eval_metrics(&d, q, c, C, &r) == 0, "metrics");
        int bad = compare_expected(&r, &e);
        CHECK_REPORT(bad == 0, "%s: vs eval_reference.py (mono %.4f, cross %.4f, multi %.4f / R@10 %.4f / RD %.2f): %d mismatches",
                     name, r.mono.map, r.cross.map, r.multi.map, r.multi.r10, r.multi.rd, bad);
        CHECK(jnum(&e, "questions") == r.questions && jnum(&e, "candidates") == r.candidates, "counts");
        json_free(&e);
    }
    free(q);
    free(c);
    squad_free(&d);
}

/* split by the en article: ids are "a<en article>p..q..", es lists its articles reversed */
static void test_splits(void) {
    char *langs[] = {"en", "de", "es", "ar"};
    int total_q = 0, total_s = 0;
    SquadData all;
    CHECK(squad_load(&all, "xquad-r", FIX "synth", langs, 4, NULL, SPLIT_ALL) == 0, "all");
    for (int s = SPLIT_TRAIN; s <= SPLIT_TEST; s++) {
        SquadData d;
        if (squad_load(&d, "xquad-r", FIX "synth", langs, 4, NULL, s)) {
            CHECK(0, "split %d: %s", s, xerr_msg());
            continue;
        }
        int bad = 0;
        for (int i = 0; i < d.n_qs; i++) bad += squad_split_of_article(atoi(d.qs[i].id + 1)) != s;
        CHECK(bad == 0 && d.n_qs > 0, "split %d: every question from an en article of the split (%d bad)", s, bad);
        total_q += d.n_qs;
        total_s += d.n_sents;
        squad_free(&d);
    }
    CHECK(total_q == all.n_qs && total_s == all.n_sents, "splits partition the data");
    squad_free(&all);
    CHECK(squad_split_parse("dev") == SPLIT_DEV && squad_split_parse(NULL) == SPLIT_ALL, "split names");
    CHECK(squad_split_parse("val") < 0 && strstr(xerr_msg(), "unknown split"), "bad split name");
    CHECK(squad_split_of_article(0) == SPLIT_TRAIN && squad_split_of_article(5) == SPLIT_TRAIN &&
              squad_split_of_article(6) == SPLIT_DEV && squad_split_of_article(17) == SPLIT_DEV &&
              squad_split_of_article(18) == SPLIT_TEST && squad_split_of_article(29) == SPLIT_TEST,
          "article rule");
}

static int splits_to(const char *text, const char *want) {
    IntVec b = {0};
    int n = squad_split_sentences(text, &b);
    StrBuf sb = {0};
    for (int i = 0; i < n; i++) sb_printf(&sb, "%s%d-%d", i ? " " : "", b.data[2 * i], b.data[2 * i + 1]);
    int ok = strcmp(sb.data ? sb.data : "", want) == 0;
    if (!ok) printf("  split '%s' -> '%s', want '%s'\n", text, sb.data ? sb.data : "", want);
    sb_free(&sb);
    iv_free(&b);
    return ok;
}

static void test_sentences(void) {
    CHECK(splits_to("One. Two! Three?", "0-5 5-10 10-16"), "ascii enders");
    CHECK(splits_to("Mr. Smith went. Then J. R. Tolkien came.", "0-16 16-40"), "abbreviations and initials");
    CHECK(splits_to("It cost 3.5 million. Next", "0-21 21-25"), "decimal point");
    CHECK(splits_to("He said \"stop.\" Then left.", "0-16 16-26"), "closing quote after the ender");
    CHECK(splits_to("e.g. this is fine. Yes", "0-19 19-22"), "e.g.");
    CHECK(splits_to("\xe6\x97\xa5\xe6\x9c\xac\xe3\x80\x82\xe4\xb8\xad\xe5\x9b\xbd\xef\xbc\x81\xe5\xa5\xbd", "0-3 3-6 6-7"),
          "CJK enders need no space");
    CHECK(splits_to("\xe0\xa4\xb9\xe0\xa5\x88 \xe0\xa5\xa4 \xe0\xa4\xb9\xe0\xa5\x88", "0-5 5-7"), "danda");
    CHECK(splits_to("No ender at all", "0-15"), "one sentence");
    CHECK(splits_to("Musul).Astronom bilgini.Tam ad\xc4\xb1.\xc4\xb0lk", "0-7 7-24 24-32 32-35"),
          "no space before a capital (TQuAD)");
    CHECK(splits_to("The U.S.A. won. In J.R.R. Tolkien", "0-16 16-33"), "acronyms and initials are not split");
    CHECK(splits_to("End.  ", "0-6"), "trailing space joins the last sentence");
    CHECK(splits_to("", ""), "empty");
}

/* data sets on disk: XLMR_DATA, data/, or ../shared/data */
static const char *data_dir(void) {
    const char *e = getenv("XLMR_DATA");
    if (e && *e) return e;
    if (is_dir("data/xquad-r")) return "data";
    if (is_dir("../shared/data/xquad-r")) return "../shared/data";
    return NULL;
}

static void test_real(void) {
    const char *dd = data_dir();
    if (!dd) {
        printf("note: no data folder (XLMR_DATA, data/, ../shared/data): real data set sizes not checked\n");
        return;
    }
    char *dir = path_join(dd, "xquad-r");
    SquadData d;
    double t0 = now_seconds();
    int rc = squad_load(&d, "xquad-r", dir, NULL, 0, NULL, SPLIT_ALL);
    double dt = now_seconds() - t0;
    CHECK_REPORT(rc == 0 && d.n_sents == 13014 && d.n_qs == 13090 && d.n_groups == 1190 && d.n_langs == 11,
                 "XQuAD-R: %d candidates, %d questions, %d ids (13014 / 1190x11) loaded in %.2f s", d.n_sents, d.n_qs,
                 d.n_groups, dt);
    if (rc == 0) {
        int full = 1;
        for (size_t i = 0; i < (size_t)d.n_groups * 11; i++) full &= d.rel[i] >= 0;
        CHECK(full, "XQuAD-R: every id has a relevant sentence in every language");
        /* the metrics on random embeddings over the whole 13,090 x 13,014 setting */
        int C = getenv("XLMR_EVAL_BENCH") ? 384 : 32;
        float *q = xmalloc((size_t)d.n_qs * C * sizeof(float)), *c = xmalloc((size_t)d.n_sents * C * sizeof(float));
        Rng g;
        rng_seed(&g, 7);
        for (size_t i = 0; i < (size_t)d.n_qs * C; i++) q[i] = rng_normal(&g) / sqrtf((float)C);
        for (size_t i = 0; i < (size_t)d.n_sents * C; i++) c[i] = rng_normal(&g) / sqrtf((float)C);
        EvalResult r;
        rc = eval_metrics(&d, q, c, C, &r);
        /* random: multi R@10 about 10/13014 per relevant, mono mAP about ln(1183)/1183 */
        CHECK_REPORT(rc == 0 && r.multi.r10 < 0.01 && r.mono.map < 0.02, "XQuAD-R metrics, random C=%d: %.2f s (mono %.4f, multi %.5f, RD %.0f)",
                     C, r.metric_seconds, r.mono.map, r.multi.map, r.multi.rd);
        free(q);
        free(c);
        squad_free(&d);
    }
    free(dir);
    dir = path_join(dd, "mlqa-r");
    rc = squad_load(&d, "mlqa-r", dir, NULL, 0, NULL, SPLIT_ALL);
    CHECK_REPORT(rc == 0 && d.n_sents == 20534 && d.n_qs == 4199 && d.n_groups == 1148,
                 "MLQA-R: %d candidates, %d questions, %d ids (20534 / 4199 / 1148) %s", d.n_sents, d.n_qs, d.n_groups,
                 rc ? xerr_msg() : "");
    if (rc == 0) {
        SquadData s;
        int nq = 0, ns = 0;
        for (int sp = SPLIT_TRAIN; sp <= SPLIT_TEST; sp++) {
            if (squad_load(&s, "mlqa-r", dir, NULL, 0, NULL, sp)) break;
            printf("     MLQA-R split %d: %d questions, %d candidates\n", sp, s.n_qs, s.n_sents);
            nq += s.n_qs;
            ns += s.n_sents;
            squad_free(&s);
        }
        CHECK(nq == d.n_qs && ns == d.n_sents, "MLQA-R splits partition the data");
        squad_free(&d);
    }
    free(dir);
}

/* AP from ranks, sorting them: ranks {3, 1} -> (1/1 + 2/3) / 2. */
static void test_average_precision(void) {
    int r[3] = {3, 1, 10};
    double ap = eval_average_precision(r, 3);
    CHECK(fabs(ap - (1.0 + 2.0 / 3 + 3.0 / 10) / 3) < 1e-12 && r[0] == 1 && r[1] == 3 && r[2] == 10,
          "average precision %.6f, ranks sorted %d %d %d", ap, r[0], r[1], r[2]);
    int one[1] = {4};
    CHECK(eval_average_precision(one, 1) == 0.25, "one relevant at rank 4: AP 1/4");
}

/* The ranking rule: higher scores first, ties to the earlier candidate;
 * checked by hand and against the rule written as a plain count. */
static void test_rank_rule(void) {
    const float s[5] = {0.5f, 0.9f, 0.5f, 0.1f, 0.9f};
    CHECK(eval_rank(s, 0, 5, 1) == 1 && eval_rank(s, 0, 5, 4) == 2 && eval_rank(s, 0, 5, 0) == 3 &&
              eval_rank(s, 0, 5, 2) == 4 && eval_rank(s, 0, 5, 3) == 5,
          "ranks of {0.5, 0.9, 0.5, 0.1, 0.9}: 3 1 4 5 2");
    CHECK(eval_rank(s, 2, 5, 2) == 2 && eval_rank(s, 2, 5, 4) == 1, "ranks within the pool [2, 5)");
    int rel[2] = {2, 0}, ranks[2];
    double ap = eval_query_average_precision(s, 5, rel, 2, ranks);
    CHECK(ranks[0] == 3 && ranks[1] == 4 && fabs(ap - (1.0 / 3 + 2.0 / 4) / 2) < 1e-12,
          "query AP from ranks 3 and 4: %.6f", ap);
    /* few distinct values, so ties are common; pools of every length up to 40 (the 8-lane counts and their tails) */
    Rng r;
    rng_seed(&r, 7);
    float v[40];
    int bad = 0;
    for (int trial = 0; trial < 200; trial++) {
        int n = 1 + (int)rng_below(&r, 40);
        for (int k = 0; k < n; k++) v[k] = (float)rng_below(&r, 4) * 0.25f;
        int lo = (int)rng_below(&r, (uint32_t)n), hi = lo + 1 + (int)rng_below(&r, (uint32_t)(n - lo));
        for (int j = lo; j < hi; j++) {
            int want = 1;
            for (int k = lo; k < hi; k++) want += v[k] > v[j] || (v[k] == v[j] && k < j);
            bad += eval_rank(v, lo, hi, j) != want;
        }
    }
    CHECK(bad == 0, "eval_rank agrees with the plain count (%d mismatches)", bad);
}

int main(void) {
    test_sentences();
    test_average_precision();
    test_rank_rule();
    test_hand();
    test_synth("gauss");
    test_synth("int");
    test_splits();
    test_real();
    return test_summary("eval");
}
