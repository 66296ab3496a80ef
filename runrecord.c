/* runrecord.c: OUT/runs/NAME.json written and read back (see runrecord.h). */
#include "runrecord.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

const char *const run_dataset_names[RUN_N_DATASETS] = {"xquad-r", "mlqa-r"};
const char *const run_metric_names[RUN_N_METRICS] = {
    "mono_map", "mono_r1", "cross_map", "cross_r1", "multi_map", "multi_r10", "rank_distance"};

/* Where each figure sits in an eval settings object: SETTING.KEY. */
static const char *const metric_path[RUN_N_METRICS][2] = {
    {"mono", "map"}, {"mono", "r1"}, {"cross", "map"}, {"cross", "r1"},
    {"multi", "map"}, {"multi", "r10"}, {"multi", "rank_distance"}};

/* "eval_data": what each data set's figures were computed on. */
static void eval_data_json(const RunRecord *r, StrBuf *sb) {
    sb_puts(sb, ",\n \"eval_data\": {");
    int first = 1;
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        const EvalResult *e = r->eval[d];
        if (!e) continue;
        sb_printf(sb, "%s\"%s\": {\"split\": \"%s\", \"questions\": %d, \"candidates\": %d, \"langs\": [",
                  first ? "" : ", ", run_dataset_names[d], r->split[d], e->questions, e->candidates);
        for (int l = 0; l < e->n_langs; l++) {
            if (l) sb_puts(sb, ", ");
            sb_json_string(sb, e->langs[l]);
        }
        sb_puts(sb, "]}");
        first = 0;
    }
    sb_puts(sb, "}");
}

/* A string, or null where the writer has none (a start model has no grid key of its own). */
static void string_or_null(StrBuf *sb, const char *s) {
    if (s) sb_json_string(sb, s);
    else sb_puts(sb, "null");
}

void run_record_json(const RunRecord *r, StrBuf *sb) {
    sb_puts(sb, "{\"size\": ");
    sb_json_string(sb, r->size);
    sb_puts(sb, ", \"sampling\": ");
    sb_json_string(sb, r->sampling);
    sb_printf(sb, ", \"seed\": %d, \"params\": %.0f", r->seed, r->params);
    if (isfinite(r->non_embedding_params) && r->non_embedding_params > 0)
        sb_printf(sb, ", \"non_embedding_params\": %.0f", r->non_embedding_params);
    sb_printf(sb, ", \"steps\": %.0f, \"train_seconds\": ", r->steps);
    sb_json_number(sb, r->train_seconds);
    sb_puts(sb, ", \"eval_seconds\": ");
    sb_json_number(sb, r->eval_seconds);
    sb_printf(sb, ",\n \"config\": {\"layers\": %d, \"hidden\": %d, \"heads\": %d, \"ffn\": %d, \"vocab\": %d}",
              r->layers, r->hidden, r->heads, r->ffn, r->vocab);
    sb_printf(sb, ", \"batch\": %d, \"alpha\": ", r->batch);
    sb_json_number(sb, r->alpha);
    sb_puts(sb, ", \"lr\": ");
    sb_json_number(sb, r->lr);
    sb_printf(sb, ", \"max_len_query\": %d, \"max_len_passage\": %d, \"final_loss\": ", r->max_len_query,
              r->max_len_passage);
    sb_json_number(sb, r->final_loss);
    sb_puts(sb, ", \"best_dev_map\": ");
    sb_json_number(sb, r->best_dev_map);
    sb_printf(sb, ", \"best_step\": %d, \"model\": ", r->best_step);
    string_or_null(sb, r->model);
    sb_puts(sb, ", \"grid_key\": ");
    string_or_null(sb, r->grid_key);
    eval_data_json(r, sb);
    sb_puts(sb, ",\n \"eval\": {");
    int first = 1;
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (!r->eval[d]) continue;
        sb_printf(sb, "%s\n  \"%s\": ", first ? "" : ",", run_dataset_names[d]);
        eval_result_json(r->eval[d], sb);
        first = 0;
    }
    sb_puts(sb, "}}\n");
}

/* A number or null (NaN) at obj.key.sub; NaN when absent. */
static double get_num2(const Json *obj, const char *key, const char *sub) {
    const Json *o = json_get(obj, key);
    const Json *v = o ? json_get(o, sub) : NULL;
    return v && v->type == JSON_NUMBER ? v->num : NAN;
}

/* The figures of "eval": each data set optional, each figure NaN when absent. */
static int parse_eval(RunRecord *r, const Json *ev, const char *name) {
    if (!ev || ev->type != JSON_OBJECT) return xerr("%s: missing object \"eval\"", name);
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        const Json *s = json_get(ev, run_dataset_names[d]);
        for (int k = 0; k < RUN_N_METRICS; k++) r->m[d][k] = NAN;
        if (!s) continue;
        if (s->type != JSON_OBJECT) return xerr("%s: eval.%s must be an object", name, run_dataset_names[d]);
        for (int k = 0; k < RUN_N_METRICS; k++) r->m[d][k] = get_num2(s, metric_path[k][0], metric_path[k][1]);
    }
    return 0;
}

int run_record_parse(RunRecord *r, const char *text, size_t len, const char *name) {
    memset(r, 0, sizeof *r);
    Json j;
    if (json_parse(&j, text, len, name)) return -1;
    int rc = -1;
    long seed;
    const char *size, *sampling;
    if (j.type != JSON_OBJECT) {
        xerr("%s: a run must be a JSON object", name);
        goto done;
    }
    if (!(size = json_get_str(&j, "size", name)) || !(sampling = json_get_str(&j, "sampling", name)) ||
        json_get_int(&j, "seed", &seed, name) || json_get_num(&j, "params", &r->params, name) ||
        json_get_num(&j, "steps", &r->steps, name))
        goto done;
    const Json *ts = json_get(&j, "train_seconds"), *es = json_get(&j, "eval_seconds"), *key = json_get(&j, "grid_key");
    const Json *ne = json_get(&j, "non_embedding_params");
    r->non_embedding_params = ne && ne->type == JSON_NUMBER ? ne->num : NAN; /* older records lack it */
    r->train_seconds = ts && ts->type == JSON_NUMBER ? ts->num : NAN;
    r->eval_seconds = es && es->type == JSON_NUMBER ? es->num : NAN;
    if (parse_eval(r, json_get(&j, "eval"), name)) goto done;
    r->seed = (int)seed;
    r->size = xstrdup(size);
    r->sampling = xstrdup(sampling);
    r->grid_key = key && key->type == JSON_STRING ? xstrdup(key->str) : NULL;
    /* the text, without trailing whitespace, for results.json */
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' ' || text[len - 1] == '\r')) len--;
    r->json = xstrndup(text, len);
    rc = 0;
done:
    json_free(&j);
    return rc;
}

int run_record_read(RunRecord *r, const char *path) {
    char *text;
    size_t len;
    memset(r, 0, sizeof *r);
    if (read_file_max(path, READ_LIMIT_SMALL, &text, &len)) return -1;
    int rc = run_record_parse(r, text, len, path);
    free(text);
    return rc;
}

/* The reader's strings are its own copies (xstrdup): const only to share the
 * struct with the writer, which points at the caller's strings. */
void run_record_free(RunRecord *r) {
    free((char *)r->size);
    free((char *)r->sampling);
    free((char *)r->grid_key);
    free(r->json);
    memset(r, 0, sizeof *r);
}
