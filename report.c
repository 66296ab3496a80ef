/* report.c: results.json, report.md and the SVG charts of the experiment grid,
 * rebuilt from the finished runs' JSON objects (see report.h). */
#include "report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"
#include "svgchart.h"

const char *const report_dataset_titles[RUN_N_DATASETS] = {"XQuAD-R", "MLQA-R"};

/* The paper's Table 1 (mAP) and Table 2 (rank distance, unrounded from Tables 7/8),
 * XLM-R rows; [dataset][strategy SAMPLING_MONO, _CROSS, _HYBRID][mono,cross,multi,rd]. */
static const double paper_xlmr[RUN_N_DATASETS][3][4] = {
    {{.792, .674, .547, 410.2}, {.755, .700, .593, 295.4}, {.798, .705, .593, 286.6}},
    {{.648, .584, .473, 287.5}, {.626, .620, .508, 226.7}, {.648, .623, .512, 227.1}},
};

/* The four figures of the main tables and the gap table. */
static const int main_metrics[4] = {RM_MONO_MAP, RM_CROSS_MAP, RM_MULTI_MAP, RM_MULTI_RD};
static const char *const main_titles[4] = {"Mono mAP", "Cross mAP", "Multi mAP", "Rank distance"};
static int lower_is_better(int metric) { return metric == RM_MULTI_RD; }

/* The strategies the report compares, by sampler.h's names. */
#define MONO sampling_name(SAMPLING_MONO)
#define CROSS sampling_name(SAMPLING_CROSS)
#define HYBRID sampling_name(SAMPLING_HYBRID)

void report_init(Report *rep) {
    memset(rep, 0, sizeof *rep);
    for (int d = 0; d < RUN_N_DATASETS; d++)
        for (int k = 0; k < RUN_N_METRICS; k++) rep->floor[d][k] = NAN;
}

static void free_records(RunRecord **v, int *n) {
    for (int i = 0; i < *n; i++) run_record_free(&(*v)[i]);
    free(*v);
    *v = NULL;
    *n = 0;
}

void report_free(Report *rep) {
    free_records(&rep->runs, &rep->n);
    free_records(&rep->zeroshot, &rep->n_zeroshot);
}

/* ---------------------------------------------------------------------------
 * Reading runs */

static int is_zeroshot(const RunRecord *r) { return !strcmp(r->sampling, RUN_SAMPLING_ZEROSHOT); }

/* Takes r: a start model's record goes to zeroshot, so that it never enters the grid's cells. */
static void add_run(Report *rep, const RunRecord *r) {
    RunRecord **v = is_zeroshot(r) ? &rep->zeroshot : &rep->runs;
    int *n = is_zeroshot(r) ? &rep->n_zeroshot : &rep->n;
    *v = xrealloc(*v, (size_t)(*n + 1) * sizeof **v);
    (*v)[(*n)++] = *r;
}

int report_add_run_json(Report *rep, const char *text, size_t len, const char *name) {
    RunRecord r;
    if (run_record_parse(&r, text, len, name)) return -1;
    add_run(rep, &r);
    return 0;
}

/* Every DIR/NAME.json in name order; with zeroshot_only, a grid run there is an error. */
static int load_dir(Report *rep, const char *dir, int zeroshot_only) {
    int n, rc = 0;
    char **paths = list_files(dir, ".json", &n);
    for (int i = 0; i < n && !rc; i++) {
        RunRecord r;
        rc = run_record_read(&r, paths[i]);
        if (!rc && zeroshot_only && !is_zeroshot(&r)) {
            rc = xerr("%s: sampling \"%s\" in a folder of start-model records (want \"%s\")", paths[i], r.sampling,
                      RUN_SAMPLING_ZEROSHOT);
            run_record_free(&r);
        }
        if (!rc) add_run(rep, &r);
    }
    free_strv(paths);
    return rc;
}

int report_load_dir(Report *rep, const char *dir) { return load_dir(rep, dir, 0); }
int report_load_zeroshot(Report *rep, const char *dir) { return load_dir(rep, dir, 1); }

/* ---------------------------------------------------------------------------
 * Random-ranking floors */

static double harmonic(long n) {
    double h = 0;
    for (long i = n; i >= 1; i--) h += 1.0 / (double)i; /* small terms first */
    return h;
}

/* E[AP] with R relevant items among N, uniformly random ranking: rank k holds
 * a relevant item with probability R/N, and then the expected number of
 * relevant items in the top k is 1 + (k-1)(R-1)/(N-1); so
 * E[AP] = (1/R) sum_k (R/N) (1 + (k-1)(R-1)/(N-1)) / k = (H_N + (R-1)/(N-1)(N - H_N)) / N. */
static double random_ap(long R, long N) {
    if (R <= 0 || N <= 0) return NAN;
    double h = harmonic(N);
    if (N == 1) return 1.0;
    return (h + (double)(R - 1) / (double)(N - 1) * ((double)N - h)) / (double)N;
}

void report_floors(const SquadData *d, double floor[RUN_N_METRICS]) {
    for (int k = 0; k < RUN_N_METRICS; k++) floor[k] = NAN;
    int L = d->n_langs;
    if (L <= 0 || d->n_qs <= 0) return;
    long N = d->lang_first[L] - d->lang_first[0];
    double mono_map = 0, mono_r1 = 0, cross_map = 0, cross_r1 = 0;
    double multi_map = 0, multi_r10 = 0, multi_rd = 0;
    int n_mono = 0, n_pairs = 0, n_multi = 0;
    for (int x = 0; x < L; x++) {
        int nq = 0;
        double ap = 0, r10 = 0, rd = 0;
        for (int q = 0; q < d->n_qs; q++) {
            if (d->qs[q].lang != x) continue;
            long R = 0;
            for (int y = 0; y < L; y++) R += d->rel[(size_t)d->qs[q].group * L + y] >= 0;
            nq++;
            ap += random_ap(R, N);
            r10 += (double)(N < 10 ? N : 10) / (double)N;
            rd += (double)(R - 1) * (double)(N + 1) / (double)(R + 1);
        }
        if (!nq) continue;
        long n = d->lang_first[x + 1] - d->lang_first[x];
        mono_map += harmonic(n) / (double)n; /* every question has its answer in its own pool */
        mono_r1 += 1.0 / (double)n;
        n_mono++;
        multi_map += ap / nq;
        multi_r10 += r10 / nq;
        multi_rd += rd / nq;
        n_multi++;
        for (int y = 0; y < L; y++) {
            if (y == x) continue;
            int has = 0;
            for (int q = 0; q < d->n_qs && !has; q++)
                has = d->qs[q].lang == x && d->rel[(size_t)d->qs[q].group * L + y] >= 0;
            if (!has) continue;
            long ny = d->lang_first[y + 1] - d->lang_first[y];
            cross_map += harmonic(ny) / (double)ny;
            cross_r1 += 1.0 / (double)ny;
            n_pairs++;
        }
    }
    if (n_mono) {
        floor[RM_MONO_MAP] = mono_map / n_mono;
        floor[RM_MONO_R1] = mono_r1 / n_mono;
        floor[RM_MULTI_MAP] = multi_map / n_multi;
        floor[RM_MULTI_R10] = multi_r10 / n_multi;
        floor[RM_MULTI_RD] = multi_rd / n_multi;
    }
    if (n_pairs) {
        floor[RM_CROSS_MAP] = cross_map / n_pairs;
        floor[RM_CROSS_R1] = cross_r1 / n_pairs;
    }
}

/* ---------------------------------------------------------------------------
 * Statistics */

ReportStat report_stat(const double *x, int n) {
    ReportStat s = {NAN, NAN, 0};
    double sum = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(x[i])) { sum += x[i]; s.n++; }
    if (!s.n) return s;
    s.mean = sum / s.n;
    if (s.n >= 2) {
        double ss = 0;
        for (int i = 0; i < n; i++)
            if (!isnan(x[i])) ss += (x[i] - s.mean) * (x[i] - s.mean);
        s.sd = sqrt(ss / (s.n - 1));
    }
    return s;
}

static const RunRecord *find_run(const Report *rep, const char *size, const char *sampling, int seed) {
    for (int i = rep->n - 1; i >= 0; i--) /* the last one read wins */
        if (rep->runs[i].seed == seed && !strcmp(rep->runs[i].size, size) &&
            !strcmp(rep->runs[i].sampling, sampling))
            return &rep->runs[i];
    return NULL;
}

/* The cell (size, sampling): one value per run (runs of the same seed counted once). */
static ReportStat cell_stat(const Report *rep, const char *size, const char *sampling, int dataset, int metric) {
    double *x = xmalloc((size_t)(rep->n + 1) * sizeof *x);
    int n = 0;
    for (int i = 0; i < rep->n; i++) {
        const RunRecord *r = &rep->runs[i];
        if (strcmp(r->size, size) || strcmp(r->sampling, sampling)) continue;
        if (find_run(rep, size, sampling, r->seed) != r) continue;
        x[n++] = r->m[dataset][metric];
    }
    ReportStat s = report_stat(x, n);
    free(x);
    return s;
}

ReportStat report_paired_diff(const Report *rep, const char *size, const char *sa, const char *sb,
                              int dataset, int metric) {
    double *x = xmalloc((size_t)(rep->n + 1) * sizeof *x);
    int n = 0;
    for (int i = 0; i < rep->n; i++) {
        const RunRecord *a = &rep->runs[i];
        if (strcmp(a->size, size) || strcmp(a->sampling, sa) || find_run(rep, size, sa, a->seed) != a) continue;
        const RunRecord *b = find_run(rep, size, sb, a->seed);
        if (b) x[n++] = a->m[dataset][metric] - b->m[dataset][metric];
    }
    ReportStat s = report_stat(x, n);
    free(x);
    return s;
}

/* The report's one rule for "exceeds the spread": |difference| > 2 standard errors. */
static int beyond_2se(double diff, double se) { return !isnan(diff) && !isnan(se) && fabs(diff) > 2.0 * se; }

int report_exceeds_spread(ReportStat d) { return d.n >= 2 && beyond_2se(d.mean, d.sd / sqrt((double)d.n)); }

/* The same rule for cells of two independent grids (no pairing by seed: the
 * grids start from different weights): the difference of the means against
 * its standard error sqrt(sa^2/na + sb^2/nb), at least 2 seeds on each side. */
static int exceeds_spread_unpaired(ReportStat a, ReportStat b) {
    return a.n >= 2 && b.n >= 2 && beyond_2se(a.mean - b.mean, sqrt(a.sd * a.sd / a.n + b.sd * b.sd / b.n));
}

/* ---------------------------------------------------------------------------
 * The grid's axes: sizes (by parameter count) and strategies (canonical order). */

typedef struct {
    char **v;
    int n;
} Names;

static int names_find(const Names *a, const char *s) {
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->v[i], s)) return i;
    return -1;
}
static void names_add(Names *a, const char *s) {
    if (names_find(a, s) >= 0) return;
    a->v = xrealloc(a->v, (size_t)(a->n + 1) * sizeof *a->v);
    a->v[a->n++] = (char *)s; /* borrowed from the runs */
}

static double size_params(const Report *rep, const char *size) {
    for (int i = 0; i < rep->n; i++)
        if (!strcmp(rep->runs[i].size, size)) return rep->runs[i].params;
    return 0;
}

/* The first known non-embedding count of the size (older records lack it); NaN when none. */
static double size_non_emb(const Report *rep, const char *size) {
    for (int i = 0; i < rep->n; i++)
        if (!strcmp(rep->runs[i].size, size) && !isnan(rep->runs[i].non_embedding_params))
            return rep->runs[i].non_embedding_params;
    return NAN;
}

static void grid_axes(const Report *rep, Names *sizes, Names *samplings) {
    memset(sizes, 0, sizeof *sizes);
    memset(samplings, 0, sizeof *samplings);
    for (int i = 0; i < rep->n; i++) names_add(sizes, rep->runs[i].size);
    /* insertion sort by parameter count (stable: ties keep first appearance) */
    for (int i = 1; i < sizes->n; i++) {
        char *s = sizes->v[i];
        double p = size_params(rep, s);
        int j = i - 1;
        while (j >= 0 && size_params(rep, sizes->v[j]) > p) {
            sizes->v[j + 1] = sizes->v[j];
            j--;
        }
        sizes->v[j + 1] = s;
    }
    /* the strategies in sampler.h's order first; others follow in order of appearance */
    for (int c = 0; c < SAMPLING_COUNT; c++)
        for (int i = 0; i < rep->n; i++)
            if (!strcmp(rep->runs[i].sampling, sampling_name(c))) {
                names_add(samplings, rep->runs[i].sampling);
                break;
            }
    for (int i = 0; i < rep->n; i++) names_add(samplings, rep->runs[i].sampling);
}

static int has_dataset(const Report *rep, int d) {
    for (int i = 0; i < rep->n; i++)
        for (int k = 0; k < RUN_N_METRICS; k++)
            if (!isnan(rep->runs[i].m[d][k])) return 1;
    return 0;
}

/* ---------------------------------------------------------------------------
 * results.json */

void report_results_json(const Report *rep, StrBuf *sb) {
    sb_puts(sb, "{\"floors\": {");
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        sb_printf(sb, "%s\n  ", d ? "," : "");
        sb_json_string(sb, run_dataset_names[d]);
        sb_puts(sb, ": {");
        for (int k = 0; k < RUN_N_METRICS; k++) {
            sb_printf(sb, "%s\"%s\": ", k ? ", " : "", run_metric_names[k]);
            sb_json_number(sb, rep->floor[d][k]);
        }
        sb_puts(sb, "}");
    }
    Names sizes, samplings;
    grid_axes(rep, &sizes, &samplings);
    sb_puts(sb, "},\n\"sizes\": [");
    for (int s = 0; s < sizes.n; s++) {
        sb_puts(sb, s ? ",\n {\"size\": " : "\n {\"size\": ");
        sb_json_string(sb, sizes.v[s]);
        sb_printf(sb, ", \"params\": %.0f, \"non_embedding_params\": ", size_params(rep, sizes.v[s]));
        sb_json_number(sb, size_non_emb(rep, sizes.v[s]));
        sb_puts(sb, "}");
    }
    sb_puts(sb, "],\n\"runs\": [");
    for (int i = 0; i < rep->n; i++) {
        sb_puts(sb, i ? ",\n" : "\n");
        sb_puts(sb, rep->runs[i].json);
    }
    sb_puts(sb, "\n],\n\"zeroshot\": [");
    for (int i = 0; i < rep->n_zeroshot; i++) {
        sb_puts(sb, i ? ",\n" : "\n");
        sb_puts(sb, rep->zeroshot[i].json);
    }
    sb_puts(sb, "\n]}\n");
    free(sizes.v);
    free(samplings.v);
}

/* ---------------------------------------------------------------------------
 * report.md */

static void fmt_metric(StrBuf *sb, double x, int metric) {
    if (isnan(x)) sb_puts(sb, "–");
    else if (metric == RM_MULTI_RD) sb_printf(sb, "%.1f", x);
    else sb_printf(sb, "%.3f", x);
}

static void fmt_stat(StrBuf *sb, ReportStat s, int metric) {
    fmt_metric(sb, s.mean, metric);
    if (!isnan(s.sd)) {
        sb_puts(sb, " ± ");
        fmt_metric(sb, s.sd, metric);
    }
}

static void fmt_signed(StrBuf *sb, double x, int metric) {
    if (isnan(x)) { sb_puts(sb, "–"); return; }
    double unit = metric == RM_MULTI_RD ? 0.1 : 0.001;
    if (fabs(x) < unit / 2) x = 0; /* no "-0.000" */
    sb_printf(sb, metric == RM_MULTI_RD ? "%+.1f" : "%+.3f", x);
}

/* A paired difference: "+0.021 ± 0.001" (no sd with one seed). */
static void fmt_diff(StrBuf *sb, ReportStat g, int metric) {
    fmt_signed(sb, g.mean, metric);
    if (!isnan(g.sd)) {
        sb_puts(sb, " ± ");
        fmt_metric(sb, g.sd, metric);
    }
}

static void fmt_params(StrBuf *sb, double p) {
    if (isnan(p)) sb_puts(sb, "—"); /* not in the records (older ones lack non_embedding_params) */
    else if (p >= 1e6) sb_printf(sb, "%.1fM", p / 1e6);
    else if (p >= 1e3) sb_printf(sb, "%.0fk", p / 1e3);
    else sb_printf(sb, "%.0f", p);
}

/* Markdown-safe text (the names come from the command line). */
static void md_text(StrBuf *sb, const char *s) {
    for (; *s; s++) {
        if (*s == '|' || *s == '*' || *s == '_' || *s == '`' || *s == '<' || *s == '>') sb_puts(sb, "\\");
        sb_append(sb, s, 1);
    }
}

/* Which specialised strategy (mono or cross) is best for (size, dataset, metric), by mean;
 * NULL when neither has data. */
static const char *best_specialised(const Report *rep, const char *size, int d, int metric) {
    ReportStat m = cell_stat(rep, size, MONO, d, metric), c = cell_stat(rep, size, CROSS, d, metric);
    if (isnan(m.mean) && isnan(c.mean)) return NULL;
    if (isnan(c.mean)) return MONO;
    if (isnan(m.mean)) return CROSS;
    if (lower_is_better(metric)) return m.mean <= c.mean ? MONO : CROSS;
    return m.mean >= c.mean ? MONO : CROSS;
}

/* The gap of (size, dataset, metric): hybrid minus the best specialised
 * strategy (*best; NULL when none), paired by seed; n = 0 when there are no pairs. */
static ReportStat gap_stat(const Report *rep, const char *size, int d, int metric, const char **best) {
    const char *b = best_specialised(rep, size, d, metric);
    if (best) *best = b;
    return b ? report_paired_diff(rep, size, HYBRID, b, d, metric) : (ReportStat){NAN, NAN, 0};
}

/* A gap table cell: "+0.021 ± 0.001 (mono) \*", "–" without pairs. */
static void fmt_gap(StrBuf *sb, ReportStat g, const char *best, int metric) {
    if (!g.n) {
        sb_puts(sb, "–");
        return;
    }
    fmt_diff(sb, g, metric);
    sb_printf(sb, " (%s)%s", best, report_exceeds_spread(g) ? " \\*" : "");
}

/* The first cells of a per-size row: "| size | params | non-emb." */
static void md_size_cells(StrBuf *sb, const Report *rep, const char *size) {
    sb_puts(sb, "| ");
    md_text(sb, size);
    sb_puts(sb, " | ");
    fmt_params(sb, size_params(rep, size));
    sb_puts(sb, " | ");
    fmt_params(sb, size_non_emb(rep, size));
}

static void md_main_table(const Report *rep, const Names *sizes, const Names *samplings, int d, StrBuf *sb) {
    sb_printf(sb, "\n### %s: mAP, recall and rank distance (mean ± sd over seeds)\n\n", report_dataset_titles[d]);
    sb_puts(sb, "| size | params | non-emb. | sampling | seeds | Mono mAP | Cross mAP | Multi mAP | Rank distance ↓ "
                "| Mono R@1 | Cross R@1 | Multi R@10 |\n");
    sb_puts(sb, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    static const int cols[7] = {RM_MONO_MAP, RM_CROSS_MAP, RM_MULTI_MAP, RM_MULTI_RD, RM_MONO_R1, RM_CROSS_R1, RM_MULTI_R10};
    for (int s = 0; s < sizes->n; s++)
        for (int g = 0; g < samplings->n; g++) {
            ReportStat n0 = cell_stat(rep, sizes->v[s], samplings->v[g], d, RM_MONO_MAP);
            if (!n0.n) continue;
            md_size_cells(sb, rep, sizes->v[s]);
            sb_puts(sb, " | ");
            md_text(sb, samplings->v[g]);
            sb_printf(sb, " | %d", n0.n);
            for (int c = 0; c < 7; c++) {
                ReportStat st = cell_stat(rep, sizes->v[s], samplings->v[g], d, cols[c]);
                /* bold the best strategy of the size per column */
                int best = 1;
                for (int h = 0; h < samplings->n && best; h++) {
                    ReportStat o = cell_stat(rep, sizes->v[s], samplings->v[h], d, cols[c]);
                    if (isnan(o.mean) || isnan(st.mean)) continue;
                    best = lower_is_better(cols[c]) ? st.mean <= o.mean : st.mean >= o.mean;
                }
                sb_puts(sb, " | ");
                if (best && !isnan(st.mean) && samplings->n > 1) sb_puts(sb, "**");
                fmt_stat(sb, st, cols[c]);
                if (best && !isnan(st.mean) && samplings->n > 1) sb_puts(sb, "**");
            }
            sb_puts(sb, " |\n");
        }
    sb_puts(sb, "| *random ranking* | | | | |");
    for (int c = 0; c < 7; c++) {
        sb_puts(sb, " *");
        fmt_metric(sb, rep->floor[d][cols[c]], cols[c]);
        sb_puts(sb, "* |");
    }
    sb_puts(sb, "\n");
}

static void md_gap_table(const Report *rep, const Names *sizes, StrBuf *sb) {
    sb_puts(sb, "\n## The gap table: hybrid minus the best specialised strategy\n\n");
    sb_puts(sb, "For each size and setting, the better of mono and cross (by mean over seeds; named in "
                "brackets) is subtracted from hybrid, seed by seed (for a given size and seed every strategy "
                "starts from the same weights), and the paired differences are shown as mean ± sd. "
                "Positive is better for hybrid in mAP; for rank distance negative is better. "
                "`*`: |mean| > 2 standard errors of the paired difference (at least 2 seeds) — the "
                "difference exceeds the spread over seeds; with 2–3 seeds this is a rough screen, not a "
                "significance test. The last columns give the change of the gap from the smallest to the "
                "largest size, and the paper's XLM-R gap (Table 1 / Tables 7–8, one model, one run).\n\n");
    sb_puts(sb, "| data | setting |");
    for (int s = 0; s < sizes->n; s++) {
        sb_puts(sb, " ");
        md_text(sb, sizes->v[s]);
        sb_puts(sb, " |");
    }
    sb_puts(sb, " change with size | paper XLM-R |\n|---|---|");
    for (int s = 0; s < sizes->n; s++) sb_puts(sb, "---:|");
    sb_puts(sb, "---:|---:|\n");
    for (int row = 0; row < 2; row++) { /* the parameters of each size: total, then without the embeddings */
        sb_puts(sb, row ? "| | non-emb. |" : "| | params |");
        for (int s = 0; s < sizes->n; s++) {
            sb_puts(sb, " ");
            fmt_params(sb, row ? size_non_emb(rep, sizes->v[s]) : size_params(rep, sizes->v[s]));
            sb_puts(sb, " |");
        }
        sb_puts(sb, " | |\n");
    }
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (!has_dataset(rep, d)) continue;
        for (int k = 0; k < 4; k++) {
            int metric = main_metrics[k];
            sb_printf(sb, "| %s | %s |", report_dataset_titles[d], main_titles[k]);
            double first = NAN, last = NAN;
            for (int s = 0; s < sizes->n; s++) {
                const char *best;
                ReportStat g = gap_stat(rep, sizes->v[s], d, metric, &best);
                sb_puts(sb, " ");
                fmt_gap(sb, g, best, metric);
                sb_puts(sb, " |");
                if (!g.n) continue;
                if (isnan(first)) first = g.mean;
                last = g.mean;
            }
            sb_puts(sb, " ");
            fmt_signed(sb, sizes->n > 1 ? last - first : NAN, metric);
            const double *p = paper_xlmr[d][0];
            double best_p = lower_is_better(metric) ? fmin(p[k], paper_xlmr[d][1][k]) : fmax(p[k], paper_xlmr[d][1][k]);
            sb_puts(sb, " | ");
            fmt_signed(sb, paper_xlmr[d][2][k] - best_p, metric);
            sb_puts(sb, " |\n");
        }
    }
}

static void md_comparisons(const Report *rep, const Names *sizes, StrBuf *sb) {
    static const int pair[3][2] = {
        {SAMPLING_HYBRID, SAMPLING_MONO}, {SAMPLING_HYBRID, SAMPLING_CROSS}, {SAMPLING_MONO, SAMPLING_CROSS}};
    sb_puts(sb, "\n## Which differences exceed the spread over seeds\n\n");
    sb_puts(sb, "Paired differences A − B (mean ± sd over seeds); `*` as in the gap table.\n\n");
    sb_puts(sb, "| data | size | A − B | Mono mAP | Cross mAP | Multi mAP | Rank distance |\n");
    sb_puts(sb, "|---|---|---|---:|---:|---:|---:|\n");
    int n_flag = 0, n_all = 0;
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (!has_dataset(rep, d)) continue;
        for (int s = 0; s < sizes->n; s++)
            for (int p = 0; p < 3; p++) {
                const char *pairs[2] = {sampling_name(pair[p][0]), sampling_name(pair[p][1])};
                if (!report_paired_diff(rep, sizes->v[s], pairs[0], pairs[1], d, RM_MONO_MAP).n) continue;
                sb_printf(sb, "| %s | ", report_dataset_titles[d]);
                md_text(sb, sizes->v[s]);
                sb_printf(sb, " | %s − %s |", pairs[0], pairs[1]);
                for (int k = 0; k < 4; k++) {
                    ReportStat g = report_paired_diff(rep, sizes->v[s], pairs[0], pairs[1], d, main_metrics[k]);
                    sb_puts(sb, " ");
                    fmt_diff(sb, g, main_metrics[k]);
                    int x = report_exceeds_spread(g);
                    n_flag += x;
                    n_all += g.n >= 2;
                    sb_puts(sb, x ? " \\* |" : " |");
                }
                sb_puts(sb, "\n");
            }
    }
    sb_printf(sb, "\n%d of %d differences with at least 2 seeds exceed the spread.\n", n_flag, n_all);
}

/* The zero-shot records seen as a grid of one strategy, so that the cell
 * helpers read them; rep's own runs stay out of it. */
static Report zeroshot_view(const Report *rep) {
    Report z = *rep;
    z.runs = rep->zeroshot;
    z.n = rep->n_zeroshot;
    z.zeroshot = NULL;
    z.n_zeroshot = 0;
    z.compare = NULL;
    return z;
}

/* Where fine-tuning starts from: each size's start model as it is, beside the floors. */
static void md_zeroshot(const Report *rep, StrBuf *sb) {
    Report z = zeroshot_view(rep);
    if (!z.n) return;
    Names sizes, samplings;
    grid_axes(&z, &sizes, &samplings);
    sb_puts(sb, "\n## Before fine-tuning: the start models (zero-shot)\n\n");
    sb_puts(sb, "Each size's start model evaluated as it is, before any retrieval training, on the same evaluation "
                "sets as the grid (one evaluation each, no seeds). What fine-tuning adds is the distance from "
                "these rows to the tables below; the last row is random ranking.\n\n");
    sb_puts(sb, "| size | params | non-emb. |");
    int cols = 0;
    for (int d = 0; d < RUN_N_DATASETS; d++)
        if (has_dataset(&z, d)) {
            for (int k = 0; k < 4; k++) sb_printf(sb, " %s %s%s |", report_dataset_titles[d], main_titles[k],
                                                  lower_is_better(main_metrics[k]) ? " ↓" : "");
            cols += 4;
        }
    sb_puts(sb, "\n|---|---:|---:|");
    for (int c = 0; c < cols; c++) sb_puts(sb, "---:|");
    for (int row = 0; row <= sizes.n; row++) { /* the last row: the floors */
        sb_puts(sb, "\n");
        if (row < sizes.n) md_size_cells(sb, &z, sizes.v[row]);
        else sb_puts(sb, "| *random ranking* | |");
        sb_puts(sb, " |");
        for (int d = 0; d < RUN_N_DATASETS; d++) {
            if (!has_dataset(&z, d)) continue;
            for (int k = 0; k < 4; k++) {
                int metric = main_metrics[k];
                sb_puts(sb, row < sizes.n ? " " : " *");
                fmt_metric(sb, row < sizes.n ? cell_stat(&z, sizes.v[row], RUN_SAMPLING_ZEROSHOT, d, metric).mean
                                              : rep->floor[d][metric],
                           metric);
                sb_puts(sb, row < sizes.n ? " |" : "* |");
            }
        }
    }
    sb_puts(sb, "\n");
    free(sizes.v);
    free(samplings.v);
}

/* The other grid's floor where it knows it, else this one's (the same evaluation sets). */
static double compare_floor(const Report *rep, int d, int metric) {
    double f = rep->compare->floor[d][metric];
    return isnan(f) ? rep->floor[d][metric] : f;
}

/* Reading beside the other grid, one sentence per data set: is cross mAP
 * further above its floor here, and is hybrid at least as good as both
 * specialists in either grid; "beyond the spread" only by the 2-SE rule. */
static void md_compare_reading(const Report *rep, const Names *sizes, const Names *samplings, int d,
                               const char *label, StrBuf *sb) {
    const Report *o = rep->compare;
    double f_this = rep->floor[d][RM_CROSS_MAP], f_other = compare_floor(rep, d, RM_CROSS_MAP);
    int known = !isnan(f_this) && !isnan(f_other);
    int n_cells = 0, n_above = 0, n_above_sig = 0, n_below_sig = 0;
    double sum = 0;
    for (int s = 0; s < sizes->n; s++)
        for (int g = 0; g < samplings->n; g++) {
            ReportStat a = cell_stat(rep, sizes->v[s], samplings->v[g], d, RM_CROSS_MAP);
            ReportStat b = cell_stat(o, sizes->v[s], samplings->v[g], d, RM_CROSS_MAP);
            if (isnan(a.mean) || isnan(b.mean)) continue;
            if (known) { /* the margins over the floors; the sds are the cells' own */
                a.mean -= f_this;
                b.mean -= f_other;
            }
            n_cells++;
            n_above += a.mean > b.mean;
            sum += a.mean - b.mean;
            if (exceeds_spread_unpaired(a, b)) {
                n_above_sig += a.mean > b.mean;
                n_below_sig += a.mean < b.mean;
            }
        }
    /* hybrid >= both specialists: gap >= 0 in the better direction, over the cells both grids have */
    int n_gaps = 0, n_ge[2] = {0, 0}, n_sig[2] = {0, 0};
    for (int s = 0; s < sizes->n; s++)
        for (int k = 0; k < 4; k++) {
            int metric = main_metrics[k];
            ReportStat g[2] = {gap_stat(rep, sizes->v[s], d, metric, NULL), gap_stat(o, sizes->v[s], d, metric, NULL)};
            if (!g[0].n || !g[1].n) continue;
            n_gaps++;
            for (int i = 0; i < 2; i++) {
                double good = lower_is_better(metric) ? -g[i].mean : g[i].mean;
                n_ge[i] += good >= 0;
                n_sig[i] += good > 0 && report_exceeds_spread(g[i]);
            }
        }
    if (!n_cells && !n_gaps) return;
    sb_printf(sb, "- %s: ", report_dataset_titles[d]);
    if (n_cells) {
        sb_printf(sb, "cross mAP is %s here than beside %s in %d of %d (size, strategy) cells, by %+.3f on average; "
                      "beyond the spread over seeds, %d of the cells are higher here and %d lower",
                  known ? "further above its random floor" : "higher (floors unknown)", label, n_above, n_cells,
                  sum / n_cells, n_above_sig, n_below_sig);
        if (!n_above_sig && !n_below_sig) sb_puts(sb, ", so no difference between the grids is established");
    }
    if (n_gaps)
        sb_printf(sb, "%shybrid is at least as good as both specialists in %d of %d (size, setting) cells here "
                      "(%d clearly above, beyond the spread) and in %d of %d beside %s (%d clearly above)",
                  n_cells ? "; " : "", n_ge[0], n_gaps, n_sig[0], n_ge[1], n_gaps, label, n_sig[1]);
    sb_puts(sb, ".\n");
}

/* This grid beside another: the cells both have, the gaps of both, a reading. */
static void md_compare(const Report *rep, const Names *sizes, const Names *samplings, StrBuf *sb) {
    const Report *o = rep->compare;
    if (!o) return;
    StrBuf lb = {0}; /* the label, markdown-safe */
    md_text(&lb, rep->compare_label ? rep->compare_label : "the other grid");
    const char *label = lb.data;
    sb_printf(sb, "\n## Beside %s\n\n", label);
    sb_printf(sb, "Each cell: this grid / %s (Δ = this − other), means over seeds, for the sizes and strategies "
                  "both grids have; params are this grid's. `*`: |Δ| > 2 standard errors of the difference of "
                  "the two means (at least 2 seeds on each side): the gap table's screen, unpaired because "
                  "the two grids do not start from the same weights.\n",
              label);
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (!has_dataset(rep, d) || !has_dataset(o, d)) continue;
        sb_printf(sb, "\n### %s: this / other (Δ)\n\n", report_dataset_titles[d]);
        sb_puts(sb, "| size | params | non-emb. | sampling | seeds | Mono mAP | Cross mAP | Multi mAP | Rank distance ↓ |\n");
        sb_puts(sb, "|---|---:|---:|---|---:|---:|---:|---:|---:|\n");
        for (int s = 0; s < sizes->n; s++)
            for (int g = 0; g < samplings->n; g++) {
                ReportStat a0 = cell_stat(rep, sizes->v[s], samplings->v[g], d, RM_MONO_MAP);
                ReportStat b0 = cell_stat(o, sizes->v[s], samplings->v[g], d, RM_MONO_MAP);
                if (!a0.n || !b0.n) continue;
                md_size_cells(sb, rep, sizes->v[s]);
                sb_puts(sb, " | ");
                md_text(sb, samplings->v[g]);
                sb_printf(sb, " | %d / %d", a0.n, b0.n);
                for (int k = 0; k < 4; k++) {
                    int metric = main_metrics[k];
                    ReportStat a = cell_stat(rep, sizes->v[s], samplings->v[g], d, metric);
                    ReportStat b = cell_stat(o, sizes->v[s], samplings->v[g], d, metric);
                    sb_puts(sb, " | ");
                    fmt_metric(sb, a.mean, metric);
                    sb_puts(sb, " / ");
                    fmt_metric(sb, b.mean, metric);
                    sb_puts(sb, " (");
                    fmt_signed(sb, a.mean - b.mean, metric);
                    sb_puts(sb, exceeds_spread_unpaired(a, b) ? ") \\*" : ")");
                }
                sb_puts(sb, " |\n");
            }
        sb_puts(sb, "| *random ranking* | | | | |");
        for (int k = 0; k < 4; k++) {
            sb_puts(sb, " *");
            fmt_metric(sb, rep->floor[d][main_metrics[k]], main_metrics[k]);
            sb_puts(sb, " / ");
            fmt_metric(sb, compare_floor(rep, d, main_metrics[k]), main_metrics[k]);
            sb_puts(sb, "* |");
        }
        sb_puts(sb, "\n");
    }
    sb_puts(sb, "\n### The gap in both grids: hybrid minus the best specialised strategy\n\n");
    sb_puts(sb, "As in the gap table (paired by seed within each grid; `*` on the gap as there).\n\n");
    sb_printf(sb, "| data | setting | size | params | non-emb. | this grid | %s |\n|---|---|---|---:|---:|---:|---:|\n",
              label);
    for (int d = 0; d < RUN_N_DATASETS; d++)
        for (int k = 0; k < 4; k++)
            for (int s = 0; s < sizes->n; s++) {
                int metric = main_metrics[k];
                const char *ba, *bb;
                ReportStat a = gap_stat(rep, sizes->v[s], d, metric, &ba), b = gap_stat(o, sizes->v[s], d, metric, &bb);
                if (!a.n || !b.n) continue;
                sb_printf(sb, "| %s | %s ", report_dataset_titles[d], main_titles[k]);
                md_size_cells(sb, rep, sizes->v[s]);
                sb_puts(sb, " | ");
                fmt_gap(sb, a, ba, metric);
                sb_puts(sb, " | ");
                fmt_gap(sb, b, bb, metric);
                sb_puts(sb, " |\n");
            }
    sb_puts(sb, "\n");
    for (int d = 0; d < RUN_N_DATASETS; d++)
        if (has_dataset(rep, d) && has_dataset(o, d)) md_compare_reading(rep, sizes, samplings, d, label, sb);
    sb_free(&lb);
}

/* What the models started from and were trained on, against the paper's setting. */
static void md_starting_point(const Report *rep, StrBuf *sb) {
    const char *data = rep->train_data ? rep->train_data : "the XQuAD-R train split only (a few thousand parallel pairs)";
    if (rep->start)
        sb_printf(sb, "- The models start from %s and are fine-tuned on %s. The paper fine-tunes a pretrained "
                      "XLM-R on millions of pairs. Absolute numbers are comparable with Table 1 only as far as "
                      "the models and the training data are; the direction of the differences between "
                      "strategies is, within one size.\n", rep->start, data);
    else
        sb_printf(sb, "- The models are small encoders trained from random initialisation on %s. The paper "
                      "fine-tunes a pretrained XLM-R on millions of pairs. Absolute numbers are not comparable "
                      "with Table 1; only the direction of the differences between strategies is, and only "
                      "within one size.\n", data);
}

/* Sentences generated from the numbers: what they say, and what they do not. */
static void md_reading(const Report *rep, const Names *sizes, const Names *samplings, StrBuf *sb) {
    sb_puts(sb, "\n## Reading\n\n");
    int max_seeds = 0;
    for (int s = 0; s < sizes->n; s++)
        for (int g = 0; g < samplings->n; g++) {
            int n = cell_stat(rep, sizes->v[s], samplings->v[g], 0, RM_MONO_MAP).n;
            int n1 = cell_stat(rep, sizes->v[s], samplings->v[g], 1, RM_MONO_MAP).n;
            if (n1 > n) n = n1;
            if (n > max_seeds) max_seeds = n;
        }
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (!has_dataset(rep, d)) continue;
        /* distance from the floor: the best and worst cell of each setting */
        for (int k = 0; k < 3; k++) {
            int metric = main_metrics[k];
            double lo = INFINITY, hi = -INFINITY;
            const char *hi_size = NULL, *hi_samp = NULL;
            for (int s = 0; s < sizes->n; s++)
                for (int g = 0; g < samplings->n; g++) {
                    ReportStat st = cell_stat(rep, sizes->v[s], samplings->v[g], d, metric);
                    if (isnan(st.mean)) continue;
                    if (st.mean < lo) lo = st.mean;
                    if (st.mean > hi) { hi = st.mean; hi_size = sizes->v[s]; hi_samp = samplings->v[g]; }
                }
            if (!hi_size) continue;
            double f = rep->floor[d][metric];
            sb_printf(sb, "- %s %s: cells range from %.3f to %.3f (best: ", report_dataset_titles[d], main_titles[k], lo, hi);
            md_text(sb, hi_size);
            sb_puts(sb, ", ");
            md_text(sb, hi_samp);
            sb_puts(sb, ")");
            if (!isnan(f) && f > 0)
                sb_printf(sb, "; random ranking gives %.3f, so the best cell is %.1f× the floor%s", f, hi / f,
                          hi < 2 * f ? " — close to chance: differences here say little" : "");
            sb_puts(sb, ".\n");
        }
        /* the gap's direction and how it moves with size */
        for (int k = 0; k < 4; k++) {
            int metric = main_metrics[k], n_pos = 0, n_sig = 0, n_sz = 0;
            double first = NAN, last = NAN;
            for (int s = 0; s < sizes->n; s++) {
                ReportStat g = gap_stat(rep, sizes->v[s], d, metric, NULL);
                if (!g.n) continue;
                double good = lower_is_better(metric) ? -g.mean : g.mean;
                n_pos += good > 0;
                n_sig += report_exceeds_spread(g);
                n_sz++;
                if (isnan(first)) first = good;
                last = good;
            }
            if (!n_sz) continue;
            sb_printf(sb, "- %s %s: hybrid beats the best specialised strategy at %d of %d sizes "
                          "(%d of these gaps exceed the spread)",
                      report_dataset_titles[d], main_titles[k], n_pos, n_sz, n_sig);
            if (n_sz > 1) {
                double ch = last - first;
                if (fabs(ch) < (lower_is_better(metric) ? 0.05 : 0.0005)) /* below the shown precision: rounding noise */
                    sb_puts(sb, "; the gap is the same at the smallest and the largest size");
                else sb_printf(sb, "; from the smallest to the largest size the gap moves %.3g %s hybrid", fabs(ch),
                               ch > 0 ? "in favour of" : "against");
            }
            sb_puts(sb, ".\n");
        }
    }
    /* does hybrid combine the strengths of both, or interpolate between them? */
    int n_between = 0, n_above = 0, n_cells = 0;
    for (int d = 0; d < RUN_N_DATASETS; d++)
        for (int s = 0; s < sizes->n; s++)
            for (int k = 0; k < 4; k++) {
                int metric = main_metrics[k];
                double h = cell_stat(rep, sizes->v[s], HYBRID, d, metric).mean;
                double m = cell_stat(rep, sizes->v[s], MONO, d, metric).mean;
                double c = cell_stat(rep, sizes->v[s], CROSS, d, metric).mean;
                if (isnan(h) || isnan(m) || isnan(c)) continue;
                double good = lower_is_better(metric) ? -h : h;
                double best = lower_is_better(metric) ? -fmin(m, c) : fmax(m, c);
                n_cells++;
                if (good > best) n_above++;
                else if (h >= fmin(m, c) && h <= fmax(m, c)) n_between++;
            }
    if (n_cells)
        sb_printf(sb, "- Over all %d (data set, size, setting) cells of the gap table, hybrid is above both mono and "
                      "cross in %d, between them in %d and below both in %d: %s\n",
                  n_cells, n_above, n_between, n_cells - n_above - n_between,
                  n_above * 2 > n_cells ? "it mostly combines the strengths of the two."
                  : n_between * 2 > n_cells ? "it mostly interpolates between the two rather than combining them."
                                            : "no single pattern.");
    sb_puts(sb, "\nWhat these numbers do not say:\n\n");
    if (max_seeds < 2)
        sb_puts(sb, "- Only one seed per cell: there is no spread to judge any difference by.\n");
    else
        sb_printf(sb, "- With %d seeds per cell the sd is itself uncertain; differences flagged above are the "
                      "ones worth a second look, not established effects.\n", max_seeds);
    md_starting_point(rep, sb);
    sb_puts(sb, "- MLQA-R is zero-shot here (other articles and annotators; no MLQA data in training).\n");
    sb_puts(sb, "- Rank distance measures language bias only: a model that ranks at random also has no bias "
                "beyond the random-ranking value. Read it together with multilingual mAP; a low rank distance "
                "with multi mAP near its floor is not a good model.\n");
    sb_puts(sb, "- Model selection used the dev split's mAP; XQuAD-R test numbers come from 10 of its 48 "
                "articles, a small sample.\n");
}

static void md_paper(StrBuf *sb) {
    static const char *const names[3] = {"X-X-mono (mono)", "X-Y (cross)", "Hybrid"};
    sb_puts(sb, "\n## The paper's XLM-R results (Table 1; rank distance from Tables 7–8)\n\n");
    sb_puts(sb, "| sampling | XQ Mono | XQ Cross | XQ Multi | XQ rank dist. | ML Mono | ML Cross | ML Multi | ML rank dist. |\n");
    sb_puts(sb, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int g = 0; g < 3; g++) {
        sb_printf(sb, "| %s |", names[g]);
        for (int d = 0; d < RUN_N_DATASETS; d++)
            sb_printf(sb, " %.3f | %.3f | %.3f | %.1f |", paper_xlmr[d][g][0], paper_xlmr[d][g][1],
                      paper_xlmr[d][g][2], paper_xlmr[d][g][3]);
        sb_puts(sb, "\n");
    }
}

void report_markdown(const Report *rep, StrBuf *sb) {
    Names sizes, samplings;
    grid_axes(rep, &sizes, &samplings);
    sb_puts(sb, "# Hybrid versus specialised batch sampling, by model size\n\n");
    if (rep->preamble) sb_printf(sb, "%s\n\n", rep->preamble);
    int seeds_max = 0;
    for (int i = 0; i < rep->n; i++)
        if (rep->runs[i].seed + 1 > seeds_max) seeds_max = rep->runs[i].seed + 1;
    double secs = 0;
    for (int i = 0; i < rep->n; i++)
        if (!isnan(rep->runs[i].train_seconds)) secs += rep->runs[i].train_seconds;
    sb_printf(sb, "%d finished runs: %d sizes (", rep->n, sizes.n);
    for (int s = 0; s < sizes.n; s++) {
        sb_puts(sb, s ? ", " : "");
        md_text(sb, sizes.v[s]);
        sb_puts(sb, " ");
        fmt_params(sb, size_params(rep, sizes.v[s]));
        double ne = size_non_emb(rep, sizes.v[s]);
        if (!isnan(ne)) {
            sb_puts(sb, " (");
            fmt_params(sb, ne);
            sb_puts(sb, " non-emb.)");
        }
    }
    sb_printf(sb, ") × %d strategies (", samplings.n);
    for (int g = 0; g < samplings.n; g++) {
        sb_puts(sb, g ? ", " : "");
        md_text(sb, samplings.v[g]);
    }
    sb_printf(sb, "); %.0f s of training in all.\n", secs);
    sb_puts(sb, "Figures are mean ± sample sd over seeds; the best strategy of each size is in bold. "
                "*Random ranking* is the exact expected value of each metric when the pool is ranked "
                "uniformly at random (mono/cross mAP = mean over pools of H_n/n; multilingual AP with R "
                "relevant in N: (H_N + (R−1)/(N−1)·(N−H_N))/N; rank distance (R−1)(N+1)/(R+1); computed "
                "per query on the actual pools and averaged as the metric is).\n");
    md_zeroshot(rep, sb);
    for (int d = 0; d < RUN_N_DATASETS; d++)
        if (has_dataset(rep, d)) md_main_table(rep, &sizes, &samplings, d, sb);
    md_gap_table(rep, &sizes, sb);
    md_comparisons(rep, &sizes, sb);
    md_compare(rep, &sizes, &samplings, sb);
    md_reading(rep, &sizes, &samplings, sb);
    md_paper(sb);
    sb_puts(sb, "\n## Charts\n\n");
    for (int d = 0; d < RUN_N_DATASETS; d++)
        if (has_dataset(rep, d))
            sb_printf(sb, "![%s mAP by setting, size and strategy](map_%s.svg)\n\n", report_dataset_titles[d],
                      run_dataset_names[d]);
    sb_puts(sb, "![Rank distance by size and strategy](rank_distance.svg)\n\n");
    sb_puts(sb, "![The gap, hybrid minus the best specialised strategy, against parameters](gap.svg)\n");
    free(sizes.v);
    free(samplings.v);
}

/* ---------------------------------------------------------------------------
 * SVG charts: grouped bars (x: size, bars: strategy), error bars = sd over
 * seeds, a dashed line at the random-ranking floor. */

static const char *const colors[] = {"#4878d0", "#ee854a", "#6acc64", "#956cb4", "#8c613c", "#dc7ec0", "#797979"};
#define N_COLORS (int)(sizeof colors / sizeof *colors)

static void svg_text(StrBuf *sb, const char *s) { svg_escape(sb, s); }

/* A "nice" upper bound for the axis: 1, 2 or 5 times a power of ten at or above x. */
static double nice_ceil(double x) {
    if (!(x > 0)) return 1;
    double p = pow(10, floor(log10(x)));
    for (int i = 0; i < 4; i++) {
        static const double m[4] = {1, 2, 5, 10};
        if (m[i] * p >= x * (1 - 1e-9)) return m[i] * p;
    }
    return 10 * p;
}

static void svg_panel(StrBuf *sb, const Report *rep, const Names *sizes, const Names *samplings, int d, int metric,
                      const char *title, double x0, double y0, double w, double h) {
    double top = y0 + 28, bottom = y0 + h - 36, left = x0 + 48, right = x0 + w - 8;
    double ymax = 0, fl = rep->floor[d][metric];
    for (int s = 0; s < sizes->n; s++)
        for (int g = 0; g < samplings->n; g++) {
            ReportStat st = cell_stat(rep, sizes->v[s], samplings->v[g], d, metric);
            double v = st.mean + (isnan(st.sd) ? 0 : st.sd);
            if (v > ymax) ymax = v;
        }
    if (!isnan(fl) && fl > ymax) ymax = fl;
    ymax = nice_ceil(ymax * 1.05);
    if (metric != RM_MULTI_RD && ymax > 1) ymax = 1;
#define Y(v) (bottom - ((v) / ymax) * (bottom - top))
    sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-weight=\"bold\">", (left + right) / 2, y0 + 16);
    svg_text(sb, title);
    sb_puts(sb, "</text>\n");
    for (int t = 0; t <= 5; t++) { /* y grid and ticks */
        double v = ymax * t / 5, y = Y(v);
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y, right, y);
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">", left - 4, y + 4);
        if (metric == RM_MULTI_RD) sb_printf(sb, "%.0f", v);
        else sb_printf(sb, "%.2f", v);
        sb_puts(sb, "</text>\n");
    }
    sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left, bottom, right, bottom);
    sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", left, top, left, bottom);
    double gw = sizes->n ? (right - left) / sizes->n : 0;
    double bw = samplings->n ? gw * 0.8 / samplings->n : 0;
    for (int s = 0; s < sizes->n; s++) {
        double gx = left + gw * s + gw * 0.1;
        for (int g = 0; g < samplings->n; g++) {
            ReportStat st = cell_stat(rep, sizes->v[s], samplings->v[g], d, metric);
            if (isnan(st.mean)) continue;
            double v = st.mean < 0 ? 0 : st.mean > ymax ? ymax : st.mean;
            double x = gx + bw * g;
            sb_printf(sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>", x, Y(v),
                      bw * 0.92, bottom - Y(v), colors[g % N_COLORS]);
            svg_text(sb, sizes->v[s]);
            sb_puts(sb, " ");
            svg_text(sb, samplings->v[g]);
            sb_printf(sb, metric == RM_MULTI_RD ? ": %.1f" : ": %.4f", st.mean);
            if (!isnan(st.sd)) sb_printf(sb, metric == RM_MULTI_RD ? " ± %.1f" : " ± %.4f", st.sd);
            sb_printf(sb, " (%d seeds)</title></rect>\n", st.n);
            if (!isnan(st.sd)) {
                double cx = x + bw * 0.46, lo = st.mean - st.sd, hi = st.mean + st.sd;
                lo = lo < 0 ? 0 : lo > ymax ? ymax : lo;
                hi = hi < 0 ? 0 : hi > ymax ? ymax : hi;
                sb_printf(sb, "<path d=\"M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f\" stroke=\"#222\" fill=\"none\"/>\n",
                          cx, Y(lo), Y(hi), cx - 3, Y(lo), cx + 3, cx - 3, Y(hi), cx + 3);
            }
        }
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">", left + gw * (s + 0.5),
                  bottom + 16);
        svg_text(sb, sizes->v[s]);
        sb_puts(sb, "</text>\n");
    }
    if (!isnan(fl) && fl <= ymax) {
        sb_printf(sb, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#c00\" stroke-dasharray=\"5,4\"/>\n",
                  left, Y(fl), right, Y(fl));
        sb_printf(sb, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"10\" fill=\"#c00\">random</text>\n",
                  right - 2, Y(fl) - 3);
    }
#undef Y
}

void report_svg(const Report *rep, int kind, int dataset, StrBuf *sb) {
    Names sizes, samplings;
    grid_axes(rep, &sizes, &samplings);
    int panels = kind == 0 ? 3 : RUN_N_DATASETS;
    double pw = 300, ph = 300, W = pw * panels + 20, H = ph + 60;
    sb_printf(sb, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                  "font-family=\"sans-serif\" font-size=\"13\">\n",
              W, H, W, H);
    sb_printf(sb, "<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", W, H);
    sb_printf(sb, "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">%s</text>\n",
              kind == 0 ? (dataset == 0 ? "XQuAD-R: mAP by size and strategy (error bars: sd over seeds)"
                                        : "MLQA-R: mAP by size and strategy (error bars: sd over seeds)")
                        : "Rank distance (lower is better; error bars: sd over seeds)");
    for (int p = 0; p < panels; p++) {
        if (kind == 0) {
            static const char *const t[3] = {"Mono mAP", "Cross mAP", "Multi mAP"};
            svg_panel(sb, rep, &sizes, &samplings, dataset, main_metrics[p], t[p], 10 + pw * p, 30, pw, ph);
        } else {
            svg_panel(sb, rep, &sizes, &samplings, p, RM_MULTI_RD, report_dataset_titles[p], 10 + pw * p, 30, pw, ph);
        }
    }
    for (int g = 0; g < samplings.n; g++) { /* legend */
        double x = 60 + g * 110, y = H - 14;
        sb_printf(sb, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", x, y - 10,
                  colors[g % N_COLORS]);
        sb_printf(sb, "<text x=\"%.0f\" y=\"%.0f\">", x + 16, y);
        svg_text(sb, samplings.v[g]);
        sb_puts(sb, "</text>\n");
    }
    sb_puts(sb, "</svg>\n");
    free(sizes.v);
    free(samplings.v);
}

/* ---------------------------------------------------------------------------
 * The chart the research question asks for: hybrid minus the best specialised
 * strategy (per size, as in the gap table) against parameters on a log axis,
 * one line per setting, error bars = sd of the per-seed differences. */

static void gap_series(const Report *rep, const Names *sizes, int d, int metric, double *x, double *y, double *e) {
    for (int s = 0; s < sizes->n; s++) {
        ReportStat g = gap_stat(rep, sizes->v[s], d, metric, NULL);
        x[s] = size_params(rep, sizes->v[s]);
        y[s] = g.n ? g.mean : NAN;
        e[s] = g.sd;
    }
}

void report_gap_svg(const Report *rep, StrBuf *sb) {
    Names sizes, samplings;
    grid_axes(rep, &sizes, &samplings);
    int n = sizes.n ? sizes.n : 1;
    double *buf = xmalloc((size_t)(4 * 3 * n) * sizeof *buf); /* x, y, err for each of 4 metrics */
    double pw = 400, ph = 330, W = 2 * pw + 20, H = 2 * ph + 70;
    svg_begin(sb, W, H, "Hybrid minus the best specialised strategy, by model size (error bars: sd over seeds)");
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        SvgSeries ser[4];
        for (int k = 0; k < 4; k++) {
            double *x = buf + (size_t)(3 * k) * n, *y = x + n, *e = y + n;
            gap_series(rep, &sizes, d, main_metrics[k], x, y, e);
            ser[k] = (SvgSeries){main_titles[k], x, y, e, sizes.n, 1, k + 1};
        }
        char title[96];
        snprintf(title, sizeof title, "%s: mAP gap", report_dataset_titles[d]);
        SvgPanel map = {title, "parameters (log scale)", "hybrid - best specialised", 10 + pw * d, 30, pw, ph, 1, 1, 0};
        svg_line_panel(sb, &map, ser, 3);
        snprintf(title, sizeof title, "%s: rank distance gap (lower is better)", report_dataset_titles[d]);
        SvgPanel rd = {title, "parameters (log scale)", "hybrid - best specialised", 10 + pw * d, 30 + ph, pw, ph, 1, 1, 0};
        svg_line_panel(sb, &rd, ser + 3, 1);
    }
    svg_legend(sb, main_titles, 4, 60, H - 14);
    svg_end(sb);
    free(buf);
    free(sizes.v);
    free(samplings.v);
}

/* ---------------------------------------------------------------------------
 * Writing everything */

static int write_sb(const char *dir, const char *name, const StrBuf *sb) {
    char *p = path_join(dir, name);
    int rc = write_file_atomic(p, sb->data ? sb->data : "", sb->len);
    free(p);
    return rc;
}

int report_write(const Report *rep, const char *out_dir) {
    if (mkdir_p(out_dir)) return -1;
    StrBuf sb = {0};
    int rc = 0;
    report_results_json(rep, &sb);
    rc |= write_sb(out_dir, "results.json", &sb);
    sb.len = 0;
    report_markdown(rep, &sb);
    if (!rc) rc |= write_sb(out_dir, "report.md", &sb);
    for (int d = 0; d < RUN_N_DATASETS && !rc; d++) {
        if (!has_dataset(rep, d)) continue;
        char name[64];
        snprintf(name, sizeof name, "map_%s.svg", run_dataset_names[d]);
        sb.len = 0;
        report_svg(rep, 0, d, &sb);
        rc |= write_sb(out_dir, name, &sb);
    }
    if (!rc) {
        sb.len = 0;
        report_svg(rep, 1, 0, &sb);
        rc |= write_sb(out_dir, "rank_distance.svg", &sb);
    }
    if (!rc) {
        sb.len = 0;
        report_gap_svg(rep, &sb);
        rc |= write_sb(out_dir, "gap.svg", &sb);
    }
    sb_free(&sb);
    return rc ? -1 : 0;
}
