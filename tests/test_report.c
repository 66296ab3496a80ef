/* tests/test_report.c: the experiment report on synthetic results — floors
 * against brute force, statistics, the gap table's numbers, results.json,
 * report.md structure and well-formed SVG. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "report.h"
#include "test.h"

/* A synthetic eval data set: L languages with pool sizes n[l]; each group has
 * one question in each language where has[g][l], relevant sentence = first of that pool. */
static void fake_data(SquadData *d, int L, const int *n, int G, const unsigned char *has) {
    memset(d, 0, sizeof *d);
    d->n_langs = L;
    d->lang_first[0] = 0;
    for (int l = 0; l < L; l++) {
        snprintf(d->langs[l], sizeof d->langs[l], "l%d", l);
        d->lang_first[l + 1] = d->lang_first[l] + n[l];
    }
    d->n_sents = d->lang_first[L];
    d->n_groups = G;
    d->rel = xmalloc((size_t)G * L * sizeof *d->rel);
    d->qs = xcalloc((size_t)G * L, sizeof *d->qs);
    for (int g = 0; g < G; g++)
        for (int l = 0; l < L; l++) {
            d->rel[g * L + l] = has[g * L + l] ? d->lang_first[l] : -1;
            if (has[g * L + l]) {
                SquadQuestion *q = &d->qs[d->n_qs++];
                q->lang = l;
                q->group = g;
                q->sent = d->lang_first[l];
            }
        }
}
static void fake_free(SquadData *d) {
    free(d->rel);
    free(d->qs);
}

/* Brute force over all placements of R relevant items among N ranks
 * (R <= 3): mean AP, mean (worst - best), mean fraction in the top 10. */
static void brute(int R, int N, double *ap, double *rd, double *r10) {
    double sa = 0, sr = 0, s10 = 0;
    long cnt = 0;
    int p[3];
    for (p[0] = 1; p[0] <= N; p[0]++)
        for (p[1] = R > 1 ? p[0] + 1 : N + 1; p[1] <= N || R < 2; p[1]++) {
            for (p[2] = R > 2 ? p[1] + 1 : N + 1; p[2] <= N || R < 3; p[2]++) {
                double a = 0, top = 0;
                for (int i = 0; i < R; i++) {
                    a += (double)(i + 1) / p[i];
                    top += p[i] <= 10;
                }
                sa += a / R;
                sr += p[R - 1] - p[0];
                s10 += top / R;
                cnt++;
                if (R < 3) break;
            }
            if (R < 2) break;
        }
    *ap = sa / cnt;
    *rd = sr / cnt;
    *r10 = s10 / cnt;
}

static void test_floors(void) {
    /* two languages (pools 3 and 14); group 0 in both, group 1 only in l0, group 2 only in l1 */
    int n[2] = {3, 14};
    unsigned char has[6] = {1, 1, 1, 0, 0, 1};
    SquadData d;
    fake_data(&d, 2, n, 3, has);
    double f[RUN_N_METRICS];
    report_floors(&d, f);
    double h3 = 1 + 1 / 2. + 1 / 3., h14 = 0;
    for (int i = 1; i <= 14; i++) h14 += 1.0 / i;
    CHECK(fabs(f[RM_MONO_MAP] - (h3 / 3 + h14 / 14) / 2) < 1e-12, "mono floor %g", f[RM_MONO_MAP]);
    CHECK(fabs(f[RM_MONO_R1] - (1 / 3. + 1 / 14.) / 2) < 1e-12, "mono r1 floor %g", f[RM_MONO_R1]);
    /* both ordered pairs have a question with gold in the other language */
    CHECK(fabs(f[RM_CROSS_MAP] - (h14 / 14 + h3 / 3) / 2) < 1e-12, "cross floor %g", f[RM_CROSS_MAP]);
    /* multi: N = 17; l0 queries: group 0 (R=2), group 1 (R=1); l1: group 0 (R=2), group 2 (R=1) */
    double ap1, rd1, t1, ap2, rd2, t2;
    brute(1, 17, &ap1, &rd1, &t1);
    brute(2, 17, &ap2, &rd2, &t2);
    double want_ap = (ap1 + ap2) / 2, want_rd = (rd1 + rd2) / 2, want_10 = (t1 + t2) / 2;
    CHECK(fabs(f[RM_MULTI_MAP] - want_ap) < 1e-12, "multi map floor %.15g vs brute %.15g", f[RM_MULTI_MAP], want_ap);
    CHECK(fabs(f[RM_MULTI_RD] - want_rd) < 1e-12, "rank distance floor %.15g vs brute %.15g", f[RM_MULTI_RD], want_rd);
    CHECK(fabs(f[RM_MULTI_R10] - want_10) < 1e-12, "r10 floor %.15g vs brute %.15g", f[RM_MULTI_R10], want_10);
    fake_free(&d);

    /* R = 3 among N = 12 (three languages of 4), all groups in all languages */
    int n3[3] = {4, 4, 4};
    unsigned char h3all[3] = {1, 1, 1};
    fake_data(&d, 3, n3, 1, h3all);
    report_floors(&d, f);
    double ap3, rd3, t3;
    brute(3, 12, &ap3, &rd3, &t3);
    CHECK(fabs(f[RM_MULTI_MAP] - ap3) < 1e-12, "multi map floor R=3: %.15g vs %.15g", f[RM_MULTI_MAP], ap3);
    CHECK(fabs(f[RM_MULTI_RD] - rd3) < 1e-12, "rd floor R=3: %.15g vs %.15g", f[RM_MULTI_RD], rd3);
    CHECK(fabs(f[RM_MULTI_R10] - t3) < 1e-12, "r10 floor R=3: %.15g vs %.15g", f[RM_MULTI_R10], t3);
    fake_free(&d);

    /* a cross pair with no question having gold in the pool language is left out */
    int n2[2] = {5, 7};
    unsigned char only0[2] = {1, 0};
    fake_data(&d, 2, n2, 1, only0);
    report_floors(&d, f);
    CHECK(isnan(f[RM_CROSS_MAP]), "no cross pair: floor NaN (%g)", f[RM_CROSS_MAP]);
    double h5 = 1 + 1 / 2. + 1 / 3. + 1 / 4. + 1 / 5.;
    CHECK(fabs(f[RM_MONO_MAP] - h5 / 5) < 1e-12, "mono floor only over languages with questions: %g", f[RM_MONO_MAP]);
    fake_free(&d);
}

static void test_stats(void) {
    double x[5] = {1, 2, NAN, 3, 6};
    ReportStat s = report_stat(x, 5);
    CHECK(s.n == 4 && fabs(s.mean - 3) < 1e-12, "mean %g n %d", s.mean, s.n);
    CHECK(fabs(s.sd - sqrt(14.0 / 3)) < 1e-12, "sd %g", s.sd);
    s = report_stat(x, 1);
    CHECK(s.n == 1 && isnan(s.sd), "one value: no sd");
    s = report_stat(x + 2, 1);
    CHECK(s.n == 0 && isnan(s.mean), "no value: NaN");
    CHECK(report_exceeds_spread((ReportStat){0.1, 0.01, 3}), "clear difference exceeds the spread");
    CHECK(!report_exceeds_spread((ReportStat){0.1, 0.2, 3}), "noisy difference does not");
    CHECK(!report_exceeds_spread((ReportStat){0.1, NAN, 1}), "one seed never exceeds");
}

/* A synthetic run: mAP = base(size) + off(strategy) + 0.001 seed (+ jitter per seed for hybrid);
 * non_embedding_params written unless NaN. */
static void add_run_ne(Report *rep, const char *size, double params, double non_emb, const char *samp, int seed,
                       double base, double off) {
    StrBuf sb = {0};
    double v = base + off + 0.001 * seed;
    sb_puts(&sb, "{\"size\": ");
    sb_json_string(&sb, size);
    sb_puts(&sb, ", \"sampling\": ");
    sb_json_string(&sb, samp);
    sb_printf(&sb, ", \"seed\": %d, \"params\": %.0f, ", seed, params);
    if (!isnan(non_emb)) sb_printf(&sb, "\"non_embedding_params\": %.0f, ", non_emb);
    sb_puts(&sb, "\"steps\": 100, \"train_seconds\": 12.5, \"eval\": {");
    for (int d = 0; d < 2; d++) {
        double w = v - 0.1 * d;
        sb_printf(&sb, "%s\"%s\": {\"mono\": {\"map\": %.6f, \"r1\": %.6f, \"by_lang\": {}}, "
                       "\"cross\": {\"map\": %.6f, \"r1\": %.6f, \"by_pair\": {}}, "
                       "\"multi\": {\"map\": %.6f, \"r10\": %.6f, \"rank_distance\": %.6f, \"by_lang\": {}}}",
                  d ? ", " : "", d ? "mlqa-r" : "xquad-r", w, w - 0.05, w - 0.2, w - 0.25, w - 0.3, w - 0.1,
                  1000 * (1 - w));
    }
    sb_puts(&sb, "}}\n");
    int rc = report_add_run_json(rep, sb.data, sb.len, "synthetic");
    CHECK(rc == 0, "add run: %s", rc ? xerr_msg() : "");
    sb_free(&sb);
}
static void add_run(Report *rep, const char *size, double params, const char *samp, int seed, double base, double off) {
    add_run_ne(rep, size, params, NAN, samp, seed, base, off);
}

/* Every start tag closed, in order; the document one <svg> element. */
static int xml_balanced(const char *s) {
    const char *stack[64];
    size_t lens[64];
    int depth = 0, roots = 0;
    while ((s = strchr(s, '<'))) {
        if (s[1] == '?') { s = strstr(s, "?>"); if (!s) return 0; continue; }
        const char *e = strchr(s, '>');
        if (!e) return 0;
        if (s[1] == '/') {
            size_t l = strcspn(s + 2, " >");
            if (!depth || lens[depth - 1] != l || strncmp(stack[depth - 1], s + 2, l)) return 0;
            depth--;
        } else {
            for (const char *p = s + 1; p < e; p++)
                if (*p == '<' || *p == '&') { /* no raw < or & inside a tag */
                    if (*p == '<') return 0;
                }
            if (e[-1] != '/') {
                if (depth == 64) return 0;
                if (!depth) roots++;
                stack[depth] = s + 1;
                lens[depth++] = strcspn(s + 1, " >/");
            } else if (!depth) roots++;
        }
        s = e + 1;
    }
    return depth == 0 && roots == 1;
}

static int count(const char *s, const char *sub) {
    int n = 0;
    for (; (s = strstr(s, sub)); s += strlen(sub)) n++;
    return n;
}

static void test_report(void) {
    Report rep;
    report_init(&rep);
    static const char *const sizes[3] = {"small", "tiny", "medium"}; /* out of order on purpose */
    static const double params[3] = {2e6, 0.5e6, 8e6};
    static const double base[3] = {0.30, 0.20, 0.40};
    static const char *const samps[4] = {"hybrid", "cross", "mono", "mixed"};
    static const double off[4] = {0.05, 0.02, 0.03, 0.0};
    for (int s = 0; s < 3; s++)
        for (int g = 0; g < 4; g++)
            for (int seed = 0; seed < 3; seed++)
                add_run(&rep, sizes[s], params[s], samps[g], seed, base[s], off[g] + (g == 0 ? 0.002 * (seed == 1) : 0));
    CHECK(rep.n == 36, "36 runs (%d)", rep.n);
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < RUN_N_METRICS; k++) rep.floor[d][k] = 0.01 * (k + 1);
    rep.preamble = "Synthetic grid <&>.";

    /* hybrid - mono per seed: 0.02 + 0.002 [seed 1] -> mean 0.02067, sd 0.00115 */
    ReportStat g = report_paired_diff(&rep, "tiny", "hybrid", "mono", 0, RM_MONO_MAP);
    CHECK(g.n == 3 && fabs(g.mean - (0.02 + 0.002 / 3)) < 1e-9, "paired diff mean %g n %d", g.mean, g.n);
    CHECK(report_exceeds_spread(g), "hybrid-mono exceeds spread");
    ReportStat z = report_paired_diff(&rep, "tiny", "mono", "nonexistent", 0, RM_MONO_MAP);
    CHECK(z.n == 0, "missing strategy: no pairs");

    StrBuf md = {0};
    report_markdown(&rep, &md);
    CHECK(strstr(md.data, "### XQuAD-R") && strstr(md.data, "### MLQA-R"), "both data set tables");
    CHECK(strstr(md.data, "gap table"), "gap table present");
    CHECK(strstr(md.data, "Synthetic grid <&>."), "preamble kept");
    /* sizes ordered by parameters: tiny before small before medium in the gap table header */
    const char *hdr = strstr(md.data, "| data | setting |");
    CHECK(hdr && strstr(hdr, "tiny") < strstr(hdr, "small") && strstr(hdr, "small") < strstr(hdr, "medium"),
          "sizes sorted by parameter count");
    /* the gap for mono mAP is hybrid - mono (mono is the best specialised): +0.021 ± 0.001 (mono) * */
    CHECK(strstr(md.data, "+0.021 ± 0.001 (mono) \\*") != NULL, "gap cell with sd, best and flag");
    /* rank distance: lower is better; mono's is lowest: hybrid - mono = -20.7 */
    CHECK(strstr(md.data, "-20.7 ± 1.2 (mono) \\*") != NULL, "rank-distance gap");
    /* the paper row: XQ mono gap .798 - .792 */
    CHECK(strstr(md.data, "+0.006 |\n") != NULL, "paper gap");
    CHECK(count(md.data, "| *random ranking* |") == 2, "floor row per data set");
    CHECK(strstr(md.data, "| small | 2.0M | — | mono | 3 | 0.331 ± 0.001 |") != NULL, "cell mean ± sd, non-emb. unknown"); /* 0.3 + 0.03 + 0.001 seed */
    CHECK(strstr(md.data, "## Reading") && strstr(md.data, "do not say"), "reading section");
    CHECK(strstr(md.data, "Over all 24 (data set, size, setting) cells of the gap table, hybrid is above both mono and "
                          "cross in 24, between them in 0 and below both in 0") != NULL,
          "hybrid above both everywhere");
    CHECK(strstr(md.data, "at 3 of 3 sizes (3 of these gaps exceed the spread)") != NULL, "reading counts gaps");
    CHECK(strstr(md.data, "map_xquad-r.svg") && strstr(md.data, "rank_distance.svg"), "charts linked");
    /* the caveats name the starting point: random initialisation unless the grid says otherwise */
    CHECK(strstr(md.data, "trained from random initialisation on the XQuAD-R train split") != NULL,
          "random-init caveat by default");
    sb_free(&md);
    rep.start = "the pretrained folders of --model-dirs (base: /m/base)";
    rep.train_data = "the pairs of /d/train.tsv";
    StrBuf md2 = {0};
    report_markdown(&rep, &md2);
    CHECK(!strstr(md2.data, "random initialisation") &&
              strstr(md2.data, "start from the pretrained folders of --model-dirs (base: /m/base) and are fine-tuned "
                               "on the pairs of /d/train.tsv"),
          "pretrained caveat names the folders and the data");
    sb_free(&md2);
    rep.start = rep.train_data = NULL;

    StrBuf js = {0};
    report_results_json(&rep, &js);
    Json j;
    int rc = json_parse(&j, js.data, js.len, "results.json");
    CHECK(rc == 0, "results.json parses: %s", rc ? xerr_msg() : "");
    if (!rc) {
        const Json *runs = json_get(&j, "runs");
        CHECK(runs && runs->type == JSON_ARRAY && runs->n == 36, "36 runs in results.json");
        const Json *r0 = runs ? json_at(runs, 0) : NULL;
        const Json *ev = r0 ? json_get(r0, "eval") : NULL;
        CHECK(ev && json_get(ev, "xquad-r") && json_get(ev, "mlqa-r"), "eval objects kept");
        const Json *fl = json_get(&j, "floors");
        const Json *fx = fl ? json_get(fl, "xquad-r") : NULL;
        double v = -1;
        CHECK(fx && json_get_num(fx, "rank_distance", &v, "x") == 0 && fabs(v - 0.07) < 1e-12, "floors written");
        json_free(&j);
    }
    sb_free(&js);

    for (int kind = 0; kind < 2; kind++) {
        StrBuf svg = {0};
        report_svg(&rep, kind, 1, &svg);
        CHECK(xml_balanced(svg.data), "svg %d well-formed", kind);
        CHECK(strstr(svg.data, "xmlns=\"http://www.w3.org/2000/svg\"") != NULL, "svg namespace");
        int bars = count(svg.data, "<rect x=") - 4; /* minus the legend squares */
        CHECK(bars == (kind == 0 ? 3 : 2) * 12, "svg %d: one bar per cell and panel (%d)", kind, bars);
        CHECK(count(svg.data, "stroke-dasharray") == (kind == 0 ? 3 : 2), "floor line per panel");
        sb_free(&svg);
    }

    /* the gap chart: hybrid - best specialised against parameters, both data sets */
    StrBuf gap = {0};
    report_gap_svg(&rep, &gap);
    CHECK(xml_balanced(gap.data), "gap svg well-formed");
    CHECK(count(gap.data, "<circle") == 2 * 4 * 3, "gap svg: a point per data set, setting and size (%d)",
          count(gap.data, "<circle"));
    /* tiny (0.5M): hybrid - mono mono mAP = 0.02067 ± 0.00115, drawn first (sizes by parameters) */
    CHECK(strstr(gap.data, "<title>Mono mAP: 0.02067 at 5e+05 (± 0.001155)</title>") != NULL, "gap point and error bar");
    CHECK(strstr(gap.data, "<title>Rank distance: -20.67 at 8e+06") != NULL, "rank-distance gap point");
    CHECK(strstr(gap.data, ">1M</text>") != NULL && strstr(gap.data, ">5M</text>") != NULL, "log axis ticks in parameters");
    if (getenv("XLMR_REPORT_SVG")) write_file_atomic(getenv("XLMR_REPORT_SVG"), gap.data, gap.len);
    sb_free(&gap);

    /* names that need escaping */
    add_run(&rep, "a<b&c", 1e5, "mono", 0, 0.1, 0);
    StrBuf svg = {0};
    report_svg(&rep, 0, 0, &svg);
    CHECK(xml_balanced(svg.data) && strstr(svg.data, "a&lt;b&amp;c") && !strstr(svg.data, "a<b"), "svg escapes names");
    sb_free(&svg);

    /* report_write + report_load_dir round trip */
    char dir[] = "/tmp/xlmr-test-report.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "tmp dir");
    char *runs = path_join(dir, "runs");
    mkdir_p(runs);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "run%d.json", i);
        char *p = path_join(runs, name);
        write_file_atomic(p, rep.runs[i].json, strlen(rep.runs[i].json));
        free(p);
    }
    char *junk = path_join(runs, "notes.txt");
    write_file_atomic(junk, "x", 1);
    Report r2;
    report_init(&r2);
    CHECK(report_load_dir(&r2, runs) == 0 && r2.n == 3, "load dir: 3 runs (%d)", r2.n);
    CHECK(report_write(&r2, dir) == 0, "report_write: %s", xerr_msg());
    static const char *const files[] = {"results.json", "report.md", "map_xquad-r.svg", "map_mlqa-r.svg", "rank_distance.svg"};
    for (int i = 0; i < 5; i++) {
        char *p = path_join(dir, files[i]);
        CHECK(path_exists(p), "%s written", files[i]);
        free(p);
    }
    Report r3;
    report_init(&r3);
    CHECK(report_load_dir(&r3, "/nonexistent/dir") == 0 && r3.n == 0, "missing dir: no runs, no error");
    report_free(&r2);
    remove_tree(dir);
    free(runs);
    free(junk);

    /* bad run objects */
    static const char *const bad[] = {
        "[1,2]", "{\"size\": \"s\"}", "{\"size\": \"s\", \"sampling\": \"mono\", \"seed\": 0, \"params\": 1, \"steps\": 1}",
        "{\"size\": \"s\", \"sampling\": \"mono\", \"seed\": 0, \"params\": 1, \"steps\": 1, \"eval\": {\"xquad-r\": 3}}",
        "{\"size\": ", "{\"size\": 3, \"sampling\": \"mono\", \"seed\": 0, \"params\": 1, \"steps\": 1, \"eval\": {}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int n0 = rep.n;
        int e = report_add_run_json(&rep, bad[i], strlen(bad[i]), "runs/bad.json");
        CHECK(e == -1 && rep.n == n0 && strstr(xerr_msg(), "runs/bad.json"), "bad run %zu rejected: %s", i, xerr_msg());
    }
    report_free(&rep);
}

/* non_embedding_params: written when known, read back; absent (0 in the writer) reads as NaN. */
static void test_record_non_emb(void) {
    RunRecord w = {.size = "tiny", .sampling = "mono", .seed = 1, .params = 500000, .non_embedding_params = 123456,
                   .steps = 10, .train_seconds = NAN, .eval_seconds = NAN, .lr = NAN, .final_loss = NAN,
                   .best_dev_map = NAN, .model = "best", .grid_key = "k"};
    StrBuf sb = {0};
    run_record_json(&w, &sb);
    CHECK(strstr(sb.data, "\"params\": 500000, \"non_embedding_params\": 123456, \"steps\": 10") != NULL,
          "non_embedding_params written beside params: %s", sb.data);
    RunRecord r;
    int rc = run_record_parse(&r, sb.data, sb.len, "w.json");
    CHECK(rc == 0 && r.non_embedding_params == 123456 && r.params == 500000, "non_embedding_params read back (%g)",
          rc ? NAN : r.non_embedding_params);
    if (!rc) run_record_free(&r);
    sb.len = 0;
    w.non_embedding_params = 0; /* not filled in */
    run_record_json(&w, &sb);
    CHECK(!strstr(sb.data, "non_embedding_params"), "unknown non_embedding_params not written");
    sb.len = 0;
    w.model = w.grid_key = NULL; /* a start model's record may have neither */
    run_record_json(&w, &sb);
    CHECK(strstr(sb.data, "\"model\": null, \"grid_key\": null") != NULL, "NULL strings written as null");
    rc = run_record_parse(&r, sb.data, sb.len, "w.json");
    CHECK(rc == 0 && isnan(r.non_embedding_params), "absent non_embedding_params reads as NaN");
    if (!rc) run_record_free(&r);
    sb_free(&sb);
}

/* Two grids: tiny (500k, 100k non-emb.) and small (2M, non-emb. unknown) × hybrid, cross, mono × seeds 0, 2.
 * This one: base 0.40 / 0.50, hybrid +0.05 (above mono +0.03 and cross +0.02). The other: every base
 * 0.05 lower, hybrid +0.025 (below mono), no small hybrid, and a size "huge" this one lacks. */
static void two_grids(Report *a, Report *b) {
    static const char *const samps[3] = {"hybrid", "cross", "mono"};
    static const double off_a[3] = {0.05, 0.02, 0.03}, off_b[3] = {0.025, 0.02, 0.03};
    report_init(a);
    report_init(b);
    for (int g = 0; g < 3; g++)
        for (int seed = 0; seed <= 2; seed += 2) {
            add_run_ne(a, "tiny", 5e5, 1e5, samps[g], seed, 0.40, off_a[g]);
            add_run_ne(a, "small", 2e6, NAN, samps[g], seed, 0.50, off_a[g]);
            add_run_ne(b, "tiny", 5e5, 1e5, samps[g], seed, 0.35, off_b[g]);
            if (g) add_run_ne(b, "small", 2e6, NAN, samps[g], seed, 0.45, off_b[g]);
            add_run_ne(b, "huge", 8e6, 7e6, samps[g], seed, 0.60, off_b[g]);
        }
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < RUN_N_METRICS; k++) a->floor[d][k] = 0.01 * (k + 1); /* b's stay unknown */
}

static void test_non_emb_columns(void) {
    Report a, b;
    two_grids(&a, &b);
    StrBuf md = {0};
    report_markdown(&a, &md);
    CHECK(strstr(md.data, "| size | params | non-emb. | sampling | seeds |") != NULL, "main table: non-emb. header");
    CHECK(strstr(md.data, "| tiny | 500k | 100k | mono | 2 | 0.431 ± 0.001 |") != NULL, "main table: non-emb. known");
    CHECK(strstr(md.data, "| small | 2.0M | — | mono | 2 | 0.531 ± 0.001 |") != NULL, "main table: non-emb. unknown");
    CHECK(strstr(md.data, "| *random ranking* | | | | | *0.010* |") != NULL, "floor row one cell wider");
    CHECK(strstr(md.data, "| | params | 500k | 2.0M | | |\n| | non-emb. | 100k | — | | |\n") != NULL,
          "gap table: params and non-emb. per size");
    CHECK(strstr(md.data, "2 sizes (tiny 500k (100k non-emb.), small 2.0M)") != NULL, "intro: non-emb. where known");
    CHECK(!strstr(md.data, "## Beside") && !strstr(md.data, "## Before fine-tuning"), "no compare, no zero-shot section");
    /* the gaps are equal at both sizes up to rounding noise in the last bits */
    CHECK(count(md.data, "the gap is the same at the smallest and the largest size") == 8, "no gap change from noise");
    sb_free(&md);
    StrBuf js = {0};
    report_results_json(&a, &js);
    CHECK(strstr(js.data, "\"sizes\": [\n {\"size\": \"tiny\", \"params\": 500000, \"non_embedding_params\": 100000},\n"
                          " {\"size\": \"small\", \"params\": 2000000, \"non_embedding_params\": null}]") != NULL,
          "results.json: params and non-emb. per size");
    sb_free(&js);
    report_free(&a);
    report_free(&b);
}

static void test_zeroshot(void) {
    Report a, b;
    two_grids(&a, &b);
    StrBuf md0 = {0}, js0 = {0}, gap0 = {0}, svg0 = {0};
    report_markdown(&a, &md0);
    report_gap_svg(&a, &gap0);
    report_svg(&a, 0, 0, &svg0);
    report_results_json(&a, &js0);
    int n0 = a.n;
    add_run_ne(&a, "small", 2e6, NAN, RUN_SAMPLING_ZEROSHOT, 0, 0.50, 0); /* out of order: rows by params */
    add_run_ne(&a, "tiny", 5e5, 1e5, RUN_SAMPLING_ZEROSHOT, 0, 0.45, 0);
    CHECK(a.n == n0 && a.n_zeroshot == 2, "zero-shot records kept apart (%d runs, %d zero-shot)", a.n, a.n_zeroshot);
    StrBuf md = {0};
    report_markdown(&a, &md);
    const char *z = strstr(md.data, "\n## Before fine-tuning: the start models (zero-shot)\n");
    const char *t = strstr(md.data, "\n### XQuAD-R: mAP");
    CHECK(z && t && z < t, "zero-shot section before the main tables");
    CHECK(strstr(md.data, "| size | params | non-emb. | XQuAD-R Mono mAP | XQuAD-R Cross mAP | XQuAD-R Multi mAP | "
                          "XQuAD-R Rank distance ↓ | MLQA-R Mono mAP |") != NULL,
          "zero-shot header");
    const char *rt = strstr(md.data, "| tiny | 500k | 100k | 0.450 | 0.250 | 0.150 | 550.0 | 0.350 | 0.150 | 0.050 | 650.0 |\n");
    const char *rs = strstr(md.data, "| small | 2.0M | — | 0.500 | 0.300 | 0.200 | 500.0 | 0.400 | 0.200 | 0.100 | 600.0 |\n");
    CHECK(rt && rs && rt < rs && rs < t, "zero-shot rows, by parameters, with their figures");
    CHECK(strstr(md.data, "| *random ranking* | | | *0.010* | *0.030* | *0.050* | *0.1* | *0.010* |") != NULL,
          "zero-shot floors row");
    if (getenv("XLMR_REPORT_ZS_MD")) write_file_atomic(getenv("XLMR_REPORT_ZS_MD"), md.data, md.len); /* to look at */
    /* everything else is as without the zero-shot records */
    if (z && t) {
        size_t pre = (size_t)(z - md.data), cut = (size_t)(t - z);
        CHECK(md.len - cut == md0.len && !memcmp(md.data, md0.data, pre) &&
                  !strcmp(md.data + pre + cut, md0.data + pre),
              "grid tables, gaps and reading unchanged by zero-shot records");
    }
    CHECK(!strstr(md.data, "| zero-shot |") && strstr(md.data, "12 finished runs: 2 sizes (tiny 500k (100k non-emb.), small 2.0M) × 3 strategies (mono, cross, hybrid)"),
          "zero-shot is no strategy of the grid");
    StrBuf gap = {0}, svg = {0};
    report_gap_svg(&a, &gap);
    report_svg(&a, 0, 0, &svg);
    CHECK(gap.len == gap0.len && !strcmp(gap.data, gap0.data) && !strcmp(svg.data, svg0.data), "charts unchanged");
    StrBuf js = {0};
    report_results_json(&a, &js);
    Json j;
    int rc = json_parse(&j, js.data, js.len, "results.json");
    CHECK(rc == 0, "results.json parses: %s", rc ? xerr_msg() : "");
    if (!rc) {
        const Json *zs = json_get(&j, "zeroshot"), *runs = json_get(&j, "runs");
        const Json *z0 = zs && zs->type == JSON_ARRAY && zs->n == 2 ? json_at(zs, 0) : NULL;
        const Json *sm = z0 ? json_get(z0, "sampling") : NULL;
        CHECK(z0 && sm && sm->type == JSON_STRING && !strcmp(sm->str, "zero-shot"), "results.json: zeroshot array");
        CHECK(runs && runs->n == (size_t)n0, "results.json: runs without the zero-shot records");
        json_free(&j);
    }
    CHECK(strstr(js0.data, "\"zeroshot\": [\n]}") != NULL, "results.json: empty zeroshot array without records");

    /* loading: runs/ routes a zero-shot record apart; zeroshot/ takes only zero-shot records */
    char dir[] = "/tmp/xlmr-test-zeroshot.XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "tmp dir");
    char *zdir = path_join(dir, "zeroshot"), *rdir = path_join(dir, "runs");
    mkdir_p(zdir);
    mkdir_p(rdir);
    char *p1 = path_join(zdir, "tiny.json"), *p2 = path_join(zdir, "small.json"), *p3 = path_join(rdir, "a.json");
    write_file_atomic(p1, a.zeroshot[1].json, strlen(a.zeroshot[1].json));
    write_file_atomic(p2, a.zeroshot[0].json, strlen(a.zeroshot[0].json));
    write_file_atomic(p3, a.zeroshot[0].json, strlen(a.zeroshot[0].json));
    Report r;
    report_init(&r);
    rc = report_load_zeroshot(&r, zdir);
    CHECK(rc == 0 && r.n_zeroshot == 2 && r.n == 0 && !strcmp(r.zeroshot[0].size, "small"),
          "load zero-shot dir, sorted by name: %s", rc ? xerr_msg() : "");
    CHECK(report_load_zeroshot(&r, "/nonexistent/zeroshot") == 0 && r.n_zeroshot == 2, "missing zero-shot dir: no error");
    CHECK(report_load_dir(&r, rdir) == 0 && r.n == 0 && r.n_zeroshot == 3, "a zero-shot record in runs/ stays apart");
    write_file_atomic(p1, a.runs[0].json, strlen(a.runs[0].json));
    rc = report_load_zeroshot(&r, zdir);
    CHECK(rc == -1 && strstr(xerr_msg(), "tiny.json") && strstr(xerr_msg(), "hybrid"), "a grid run in zeroshot/ is an error: %s",
          xerr_msg());
    report_free(&r);
    CHECK(r.n_zeroshot == 0 && !r.zeroshot, "report_free frees the zero-shot records");
    remove_tree(dir);
    free(zdir), free(rdir), free(p1), free(p2), free(p3);
    sb_free(&md), sb_free(&md0), sb_free(&js), sb_free(&js0), sb_free(&gap), sb_free(&gap0), sb_free(&svg), sb_free(&svg0);
    report_free(&a);
    report_free(&b);
}

static void test_compare(void) {
    Report a, b;
    two_grids(&a, &b);
    StrBuf md0 = {0};
    report_markdown(&a, &md0);
    a.compare = &b;
    a.compare_label = "random init_2";
    StrBuf md = {0};
    report_markdown(&a, &md);
    const char *c = strstr(md.data, "\n## Beside random init\\_2\n");
    CHECK(c != NULL, "compare section, label markdown-safe");
    CHECK(c && c > strstr(md.data, "## The gap table") && c < strstr(md.data, "\n## Reading"), "after the gap table");
    if (!c) c = md.data;
    /* this grid's own sections are unchanged */
    CHECK(!strncmp(md.data, md0.data, (size_t)(c - md.data)), "tables before the section unchanged");
    CHECK(strstr(c, "### XQuAD-R: this / other (Δ)") && strstr(c, "### MLQA-R: this / other (Δ)"), "a table per data set");
    /* tiny mono: 0.431 vs 0.381 (mean over seeds 0, 2), sd 0.0014 each: Δ +0.050 beyond 2 SE */
    CHECK(strstr(c, "| tiny | 500k | 100k | mono | 2 / 2 | 0.431 / 0.381 (+0.050) \\* | 0.231 / 0.181 (+0.050) \\* | "
                    "0.131 / 0.081 (+0.050) \\* | 569.0 / 619.0 (-50.0) \\* |\n") != NULL,
          "compare cells: this / other (Δ)");
    /* tiny hybrid: 0.451 vs 0.376 */
    CHECK(strstr(c, "| tiny | 500k | 100k | hybrid | 2 / 2 | 0.451 / 0.376 (+0.075) \\* |") != NULL, "hybrid Δ");
    CHECK(strstr(c, "| small | 2.0M | — | cross | 2 / 2 | 0.521 / 0.471 (+0.050) \\* |") != NULL, "small cross");
    CHECK(!strstr(c, "| small | 2.0M | — | hybrid |") && !strstr(c, "huge"), "cells missing on one side skipped");
    CHECK(strstr(c, "| *random ranking* | | | | | *0.010 / 0.010* | *0.030 / 0.030* |") != NULL,
          "floors: the other's unknown, this one's used");
    /* gaps: hybrid - mono is +0.020 here, -0.005 there; small has none there */
    CHECK(strstr(c, "| data | setting | size | params | non-emb. | this grid | random init\\_2 |") != NULL, "gap header");
    CHECK(strstr(c, "| XQuAD-R | Mono mAP | tiny | 500k | 100k | +0.020 ± 0.000 (mono) \\* | -0.005 ± 0.000 (mono) \\* |\n") != NULL,
          "gaps side by side");
    CHECK(strstr(c, "| MLQA-R | Rank distance | tiny | 500k | 100k | -20.0 ± 0.0 (mono) \\* | +5.0 ± 0.0 (mono) \\* |\n") != NULL,
          "rank-distance gaps side by side");
    CHECK(!strstr(c, "| Mono mAP | small |"), "gap of a size without hybrid on one side skipped");
    /* the reading: 5 cells in both (tiny x 3, small x 2), Δ (0.075 + 4 x 0.05) / 5 */
    CHECK(strstr(c, "- XQuAD-R: cross mAP is further above its random floor here than beside random init\\_2 in 5 of 5 "
                    "(size, strategy) cells, by +0.055 on average; beyond the spread over seeds, 5 of the cells "
                    "are higher here and 0 lower; hybrid is at least as good as both specialists in 4 of 4 (size, setting) "
                    "cells here (4 clearly above, beyond the spread) and in 0 of 4 beside random init\\_2 (0 clearly above).\n") != NULL,
          "compare reading: %s", strstr(c, "- XQuAD-R: cross") ? strstr(c, "- XQuAD-R: cross") : "(none)");
    CHECK(strstr(c, "- MLQA-R: cross mAP is further above") != NULL, "a sentence per data set");
    if (getenv("XLMR_REPORT_MD")) write_file_atomic(getenv("XLMR_REPORT_MD"), md.data, md.len); /* to look at */
    sb_free(&md);

    /* one seed per cell: nothing beyond the spread, and the sentence says so */
    Report a1, b1;
    report_init(&a1);
    report_init(&b1);
    add_run_ne(&a1, "tiny", 5e5, NAN, "cross", 0, 0.40, 0);
    add_run_ne(&b1, "tiny", 5e5, NAN, "cross", 0, 0.30, 0);
    a1.compare = &b1;
    a1.compare_label = "B";
    report_markdown(&a1, &md);
    CHECK(strstr(md.data, "| tiny | 500k | — | cross | 1 / 1 | 0.400 / 0.300 (+0.100) |") != NULL, "no flag with one seed");
    CHECK(strstr(md.data, "in 1 of 1 (size, strategy) cells, by +0.100 on average; beyond the spread over seeds, 0 of the cells "
                          "are higher here and 0 lower, so no difference between the grids is established.\n") != NULL,
          "no overclaim with one seed");
    sb_free(&md);
    sb_free(&md0);
    report_free(&a1);
    report_free(&b1);
    report_free(&a);
    report_free(&b);
}

int main(void) {
    test_floors();
    test_stats();
    test_report();
    test_record_non_emb();
    test_non_emb_columns();
    test_zeroshot();
    test_compare();
    return test_summary("report");
}
