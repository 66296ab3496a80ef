/* report.h: the experiment grid's results — one JSON object per finished run
 * (OUT/runs/NAME.json, runrecord.h), gathered into results.json,
 * report.md (tables, the gap table, spread over seeds, random-ranking floors,
 * a reading of the numbers beside the paper's Table 1) and SVG charts; with
 * the start models' zero-shot figures (OUT/zeroshot/SIZE.json) before the
 * tables and, optionally, another grid's figures beside this one's.
 * Knows nothing of models or training: it reads numbers. */
#ifndef XLMR_REPORT_H
#define XLMR_REPORT_H

#include "json.h"
#include "runrecord.h"
#include "squad.h"
#include "util.h"

/* The data sets (run_dataset_names) by their titles: "XQuAD-R", "MLQA-R". */
extern const char *const report_dataset_titles[RUN_N_DATASETS];

typedef struct Report {
    RunRecord *runs; /* the grid, as read back: size, sampling, seed, params, non_embedding_params, steps,
                      * train_seconds, m, json; never a zero-shot record */
    int n;
    /* The start models before fine-tuning (sampling RUN_SAMPLING_ZEROSHOT),
     * one per size (the last one read wins); never part of the grid's cells. */
    RunRecord *zeroshot;
    int n_zeroshot;
    /* Expected value of each metric under random ranking, for the pools the
     * runs were evaluated on (report_floors); NaN when unknown. */
    double floor[RUN_N_DATASETS][RUN_N_METRICS];
    /* Free-form markdown put under the title (grid, data, timings); may be NULL. */
    const char *preamble;
    /* What the models started from, for the report's caveats: NULL for random
     * initialisation, else e.g. "the pretrained folders of --model-dirs (base)". */
    const char *start;
    /* What they were trained on: NULL for the XQuAD-R train split, else e.g. "the pairs of FILE". */
    const char *train_data;
    /* Another grid to put beside this one (e.g. the random-initialisation
     * grid beside the pretrained one), borrowed: report_free leaves it alone;
     * NULL for none. Its floor[][] are used where known, else this one's. */
    const struct Report *compare;
    const char *compare_label; /* e.g. "random initialisation (results-random/)" */
} Report;

void report_init(Report *rep);
/* Frees the runs and the zero-shot records (not compare); the rest is kept. */
void report_free(Report *rep);
/* Parses one run object (run_record_parse) and appends it: to zeroshot when
 * its sampling is RUN_SAMPLING_ZEROSHOT, else to runs. NAME is for error
 * messages. -1 + xerr on a malformed object. */
int report_add_run_json(Report *rep, const char *text, size_t len, const char *name);
/* Adds every DIR/NAME.json (sorted by name), each as report_add_run_json
 * does. A missing DIR is no error. */
int report_load_dir(Report *rep, const char *dir);
/* The same for the start models' records (OUT/zeroshot): -1 + xerr on a
 * record whose sampling is not RUN_SAMPLING_ZEROSHOT. A missing DIR is no error. */
int report_load_zeroshot(Report *rep, const char *dir);

/* Floors of the metrics under uniformly random ranking, exact:
 *   one relevant item in a pool of n: E[AP] = E[1/rank] = H_n / n, E[R@1] = 1/n;
 *   R relevant in N: E[AP] = (H_N + (R-1)/(N-1) (N - H_N)) / N,
 *   E[R@10 as a fraction] = min(10, N) / N,
 *   E[worst rank - best rank] = (R-1)(N+1)/(R+1);
 * averaged exactly as the eval averages (per query, per language or pair, then macro). */
void report_floors(const SquadData *d, double floor[RUN_N_METRICS]);

/* Summary of one cell: mean and sample standard deviation over seeds. */
typedef struct {
    double mean, sd; /* sd NaN when n < 2 */
    int n;
} ReportStat;
ReportStat report_stat(const double *x, int n); /* NaNs are skipped */
/* Paired difference a - b over seeds present in both (same size, same seed):
 * mean, sd, n. */
ReportStat report_paired_diff(const Report *rep, const char *size, const char *sa, const char *sb,
                              int dataset, int metric);
/* 1 when |mean| > 2 standard errors of the paired difference (n >= 2): the
 * report's rule for "exceeds the spread over seeds". Not a significance test. */
int report_exceeds_spread(ReportStat d);

/* Writes OUT/results.json, OUT/report.md, OUT/map_<dataset>.svg,
 * OUT/rank_distance.svg and OUT/gap.svg, each atomically. */
int report_write(const Report *rep, const char *out_dir);
/* The pieces, for tests. */
/* results.json: {"floors", "sizes": [{"size", "params", "non_embedding_params"}] (the
 * grid's, by parameters), "runs": [...], "zeroshot": [...]}, the records as read. */
void report_results_json(const Report *rep, StrBuf *sb);
/* report.md: the zero-shot section (when there are zero-shot records) before
 * the tables, the section "Beside <compare_label>" (when compare is set) after
 * the gap and comparison tables. */
void report_markdown(const Report *rep, StrBuf *sb);
/* kind 0: mAP per setting (mono, cross, multi) for one dataset; kind 1: rank distance, both datasets. */
void report_svg(const Report *rep, int kind, int dataset, StrBuf *sb);
/* gap.svg: hybrid minus the best specialised strategy against parameters (log
 * axis), one line per setting, error bars = sd of the per-seed differences. */
void report_gap_svg(const Report *rep, StrBuf *sb);

#endif
