/* runrecord.h: one finished run of the experiment grid, OUT/runs/NAME.json.
 * The one definition of that file: experiment.c fills a RunRecord and writes
 * it (run_record_json), report.c reads it back (run_record_parse) and keeps
 * the figures it tabulates. The file:
 *   {"size", "sampling", "seed", "params", ["non_embedding_params",] "steps", "train_seconds", "eval_seconds",
 *    "config": {"layers", "hidden", "heads", "ffn", "vocab"}, "batch", "alpha", "lr",
 *    "max_len_query", "max_len_passage", "final_loss", "best_dev_map", "best_step",
 *    "model" ("best" | "final"), "grid_key",
 *    "eval_data": {DATASET: {"split", "questions", "candidates", "langs": [...]}},
 *    "eval": {DATASET: <eval_result_json>}}
 * with DATASET one of run_dataset_names. Non-finite numbers are null.
 * A start model evaluated before any fine-tuning is a record of the same form
 * with sampling RUN_SAMPLING_ZEROSHOT, steps 0 and seed 0 (OUT/zeroshot/SIZE.json). */
#ifndef XLMR_RUNRECORD_H
#define XLMR_RUNRECORD_H

#include "eval.h"
#include "util.h"

/* The two evaluation sets, in report order. */
#define RUN_N_DATASETS 2
extern const char *const run_dataset_names[RUN_N_DATASETS]; /* "xquad-r", "mlqa-r" */

/* The figures read back from an eval settings object (eval_result_json). */
enum {
    RM_MONO_MAP, RM_MONO_R1, RM_CROSS_MAP, RM_CROSS_R1, RM_MULTI_MAP, RM_MULTI_R10, RM_MULTI_RD,
    RUN_N_METRICS
};
extern const char *const run_metric_names[RUN_N_METRICS]; /* "mono_map", ... (results.json keys) */

/* The sampling of a start model's record: no sampling, no training. */
#define RUN_SAMPLING_ZEROSHOT "zero-shot"

typedef struct {
    const char *size, *sampling;      /* the grid cell */
    int seed;
    double params, steps;             /* parameter count; optimizer steps done */
    /* params less the word, position and token-type embedding tables; written
     * only when > 0 (a designated initializer leaves it 0: unknown), NaN when
     * read from a record without it */
    double non_embedding_params;
    double train_seconds, eval_seconds; /* NaN when absent */
    /* written only (the reader leaves them 0 / NULL): */
    int layers, hidden, heads, ffn, vocab;
    int batch, max_len_query, max_len_passage, best_step;
    double alpha, lr, final_loss, best_dev_map;
    const char *model;                /* "best" | "final": the model evaluated; NULL writes null */
    const char *split[RUN_N_DATASETS];      /* squad_split_name of each data set evaluated */
    const EvalResult *eval[RUN_N_DATASETS]; /* NULL where not evaluated */
    /* read back (ignored by the writer): */
    const char *grid_key;             /* the settings of the grid the run belongs to; NULL when absent
                                       * (the writer reads it too: NULL writes null) */
    double m[RUN_N_DATASETS][RUN_N_METRICS]; /* the figures of each data set; NaN where absent */
    char *json;                       /* the object as read, without trailing whitespace */
} RunRecord;

/* Appends the file's text for r to sb. */
void run_record_json(const RunRecord *r, StrBuf *sb);
/* Parses a run object: size, sampling, seed, params, steps and eval are
 * required, non_embedding_params, train_seconds and grid_key optional. r owns its strings
 * (run_record_free). NAME is for error messages. -1 + xerr on a malformed object. */
int run_record_parse(RunRecord *r, const char *text, size_t len, const char *name);
/* read_file + run_record_parse. */
int run_record_read(RunRecord *r, const char *path);
void run_record_free(RunRecord *r);

#endif
