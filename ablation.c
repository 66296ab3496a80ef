/* ablation.c: the protocol ablation (ablation.h): each arm an experiment grid
 * measured on the XQuAD-R dev split, then one table of the arms. */
#include "ablation.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "json.h"
#include "pretrain.h"
#include "report.h"
#include "runrecord.h"
#include "sampler.h"
#include "squad.h"
#include "util.h"

/* The strategies every arm compares: the paper's two specialists and hybrid. */
#define ABLATION_SAMPLING "mono,cross,hybrid"
enum { N_STRAT = 3 };
static const char *const strat_names[N_STRAT] = {"mono", "cross", "hybrid"};
enum { DATA_XQUAD = 0, DATA_XQUAD_SQUAD = 1 };
static const char *const data_names[2] = {"xquad", "xquad+squad"};

typedef struct {
    char name[64];       /* as given: "mlm:375+qa" */
    int pretrain_steps;  /* 0: random initialisation */
    int qa;              /* then English QA */
} Start;

typedef struct {
    const Start *start;
    int data, mult, steps;
    char *dir;           /* OUT/ablation/NAME */
    char name[128];      /* "mlm375+qa_xquad_1x" */
    int run;             /* run by this invocation (else found from an earlier one: tabled only) */
} Arm;

/* Table order: by start (random first, then by budget; without QA first), data, length. */
static int arm_cmp(const void *pa, const void *pb) {
    const Arm *a = pa, *b = pb;
    int ka[4] = {a->start->pretrain_steps, a->start->qa, a->data, a->mult};
    int kb[4] = {b->start->pretrain_steps, b->start->qa, b->data, b->mult};
    for (int i = 0; i < 4; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

/* "random" | "mlm:N", optionally "+qa". */
static int parse_start(const char *s, Start *st) {
    memset(st, 0, sizeof *st);
    snprintf(st->name, sizeof st->name, "%s", s);
    size_t n = strlen(s);
    st->qa = n > 3 && !strcmp(s + n - 3, "+qa");
    if (st->qa) n -= 3;
    if (n == 6 && !strncmp(s, "random", 6)) return 0;
    char *end;
    long v = n > 4 && !strncmp(s, "mlm:", 4) ? strtol(s + 4, &end, 10) : 0;
    if (v >= 1 && v <= 10000000 && end == s + n) {
        st->pretrain_steps = (int)v;
        return 0;
    }
    return xerr("experiment: --starts: unknown start '%s' (random or mlm:STEPS, each optionally +qa)", s);
}

/* An arm's folder name back to its parts: "mlm375+qa_xquad+squad_4x". 0, or -1 when
 * the name is not an arm's. */
static int parse_arm_name(const char *name, Start *st, int *data, int *mult) {
    const char *u2 = strrchr(name, '_'), *u1 = NULL;
    for (const char *p = name; p < u2; p++)
        if (*p == '_') u1 = p;
    if (!u1 || !u2) return -1;
    char *end;
    long k = strtol(u2 + 1, &end, 10);
    if (end == u2 + 1 || strcmp(end, "x") || k < 1 || k > 1000) return -1;
    *mult = (int)k;
    size_t dl = (size_t)(u2 - u1 - 1);
    *data = dl == 5 && !strncmp(u1 + 1, "xquad", 5) ? DATA_XQUAD : dl == 11 && !strncmp(u1 + 1, "xquad+squad", 11) ? DATA_XQUAD_SQUAD : -1;
    char sn[64];
    size_t sl = (size_t)(u1 - name);
    if (*data < 0 || sl >= sizeof sn - 1) return -1;
    if (sl > 3 && !strncmp(name, "mlm", 3)) snprintf(sn, sizeof sn, "mlm:%.*s", (int)(sl - 3), name + 3);
    else snprintf(sn, sizeof sn, "%.*s", (int)sl, name);
    return parse_start(sn, st);
}

static void arm_init(Arm *a, const Start *st, int data, int mult, int base_steps, const char *out) {
    *a = (Arm){.start = st, .data = data, .mult = mult, .steps = base_steps * mult};
    char sname[64];
    if (st->pretrain_steps) snprintf(sname, sizeof sname, "mlm%d%s", st->pretrain_steps, st->qa ? "+qa" : "");
    else snprintf(sname, sizeof sname, "%s", st->name);
    snprintf(a->name, sizeof a->name, "%s_%s_%dx", sname, data_names[data], mult);
    StrBuf d = {0};
    sb_printf(&d, "%s/ablation/%s", out, a->name);
    a->dir = d.data;
}

/* The grid of one arm: the user's grid with the arm's start, data and steps
 * at the ablation's sizes, measured on dev; the starts cached in OUT for every arm. */
static void arm_options(const AblationOptions *o, const Arm *a, const char *sizes, ExperimentOptions *e) {
    *e = o->grid;
    e->sizes = sizes;
    e->out_dir = a->dir;
    e->cache_dir = o->grid.out_dir;
    e->eval_dev = 1;
    e->steps = a->steps;
    e->init = a->start->pretrain_steps ? (a->start->qa ? "pretrained+qa" : "pretrained")
                                       : (a->start->qa ? "random+qa" : "random");
    e->pretrain_steps = a->start->pretrain_steps ? a->start->pretrain_steps : -1;
    e->add_squad = a->data == DATA_XQUAD_SQUAD;
    /* English-only pairs join the English pool: mono batches in English draw
     * them, cross batches cannot (every strategy keeps its meaning); drawn by
     * dataset size instead, 87,599 SQuAD groups against 747 would give
     * nearly every batch to English and none to cross-only */
    e->multi_dataset = MULTI_MERGED;
    if (!e->sampling) e->sampling = ABLATION_SAMPLING;
    if (e->seeds < 0) e->seeds = 2;
}

/* Seconds of the steps a JSONL training log records (its "seconds" fields):
 * what a cached start cost to make. 0 when there is no log. */
static double log_seconds(const char *path) {
    char *text;
    size_t len;
    if (read_file(path, &text, &len)) return 0;
    double s = 0;
    for (const char *p = text; (p = strstr(p, "\"seconds\": ")); p += 11) s += strtod(p + 11, NULL);
    free(text);
    return s;
}

static double start_seconds(const char *cache, const Start *st, const char *size, int qa_steps, int bf16) {
    double s = 0;
    if (st->pretrain_steps) {
        char *dir = pretrain_cache_dir(cache, size, st->pretrain_steps, bf16), *log = path_join(dir, "log.jsonl");
        s += log_seconds(log);
        free(log);
        free(dir);
    }
    if (st->qa) {
        char *dir = experiment_qa_start_dir(cache, size, st->pretrain_steps, qa_steps, bf16);
        char *log = path_join(dir, "log.jsonl");
        s += log_seconds(log);
        free(log);
        free(dir);
    }
    return s;
}

/* ---------------------------------------------------------------------------
 * The table of the arms */

/* One size of one arm: mean over seeds of each strategy's dev figures. */
typedef struct {
    double m[N_STRAT][RUN_N_METRICS]; /* NaN where no run */
    int n[N_STRAT];
    double zero[RUN_N_METRICS];       /* the start before fine-tuning; NaN when not evaluated */
    double finetune_s, start_s;
} ArmSize;

static void arm_size_figures(const Arm *a, const char *size, const char *cache, int qa_steps, int bf16, ArmSize *f) {
    for (int k = 0; k < N_STRAT; k++)
        for (int j = 0; j < RUN_N_METRICS; j++) f->m[k][j] = NAN;
    for (int j = 0; j < RUN_N_METRICS; j++) f->zero[j] = NAN;
    f->finetune_s = 0;
    f->start_s = start_seconds(cache, a->start, size, qa_steps, bf16);
    Report rep;
    report_init(&rep);
    char *runs = path_join(a->dir, "runs");
    if (report_load_dir(&rep, runs) == 0) {
        for (int k = 0; k < N_STRAT; k++) {
            double x[RUN_N_METRICS][100];
            f->n[k] = 0;
            for (int i = 0; i < rep.n; i++) {
                const RunRecord *r = &rep.runs[i];
                if (strcmp(r->size, size) || strcmp(r->sampling, strat_names[k]) || f->n[k] >= 100) continue;
                for (int j = 0; j < RUN_N_METRICS; j++) x[j][f->n[k]] = r->m[0][j];
                f->n[k]++;
                f->finetune_s += (isnan(r->train_seconds) ? 0 : r->train_seconds) +
                                 (isnan(r->eval_seconds) ? 0 : r->eval_seconds);
            }
            for (int j = 0; j < RUN_N_METRICS && f->n[k]; j++) f->m[k][j] = report_stat(x[j], f->n[k]).mean;
        }
    }
    report_free(&rep);
    free(runs);
    StrBuf zp = {0};
    sb_printf(&zp, "%s/zeroshot/%s.json", a->dir, size);
    RunRecord z;
    if (path_exists(zp.data) && run_record_read(&z, zp.data) == 0) {
        for (int j = 0; j < RUN_N_METRICS; j++) f->zero[j] = z.m[0][j];
        run_record_free(&z);
    }
    sb_free(&zp);
}

/* Mean over the strategies of cross-lingual mAP above its floor: how far the
 * arm lifts the setting the question is about. */
static double arm_lift(const ArmSize *f, const double *floor) {
    double s = 0;
    int n = 0;
    for (int k = 0; k < N_STRAT; k++)
        if (!isnan(f->m[k][RM_CROSS_MAP])) s += f->m[k][RM_CROSS_MAP] - floor[RM_CROSS_MAP], n++;
    return n == N_STRAT ? s / n : NAN;
}

/* Hybrid minus the better specialist (metric; lower is better for rank distance). */
static double hybrid_gap(const ArmSize *f, int metric) {
    double mono = f->m[0][metric], cross = f->m[1][metric], hyb = f->m[2][metric];
    if (metric == RM_MULTI_RD) return hyb - (mono < cross ? mono : cross);
    return hyb - (mono > cross ? mono : cross);
}

static void md_num(StrBuf *sb, double x) {
    if (isnan(x)) sb_puts(sb, "—");
    else sb_printf(sb, "%.3f", x);
}

static void md_triple(StrBuf *sb, const double *m) {
    md_num(sb, m[RM_MONO_MAP]);
    sb_puts(sb, " / ");
    md_num(sb, m[RM_CROSS_MAP]);
    sb_puts(sb, " / ");
    md_num(sb, m[RM_MULTI_MAP]);
}

static void md_minutes(StrBuf *sb, double s) { sb_printf(sb, "%.1f", s / 60); }

static void json_figures(StrBuf *sb, const double *m) {
    sb_puts(sb, "{");
    for (int j = 0; j < RUN_N_METRICS; j++) {
        sb_puts(sb, j ? ", " : "");
        sb_json_key(sb, run_metric_names[j]);
        sb_json_number(sb, m[j]);
    }
    sb_puts(sb, "}");
}

/* ablation.md and ablation.json from every arm's finished runs. */
static int write_summary(const AblationOptions *o, const Arm *arms, int n_arms, char **sizes, int n_sizes,
                         const double *floor, const char *floor_what) {
    const char *out = o->grid.out_dir, *cache = o->grid.out_dir;
    int qa_steps = o->grid.qa_steps >= 0 ? o->grid.qa_steps : EXPERIMENT_QA_STEPS;
    StrBuf md = {0}, js = {0};
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    sb_printf(&md, "# The protocol ablation (XQuAD-R dev split)\n\nGenerated by `xlmr experiment --ablation` on %s "
                   "(%d threads). Each arm is a grid of mono / cross / hybrid x seeds, fine-tuned from the arm's start "
                   "and measured on %s: the final models, no model selection, never the test split or MLQA-R. "
                   "Cells: mean over seeds of mAP mono / cross / multi; RD: rank distance (lower: less language "
                   "bias). Random floors: mAP ",
              date, num_threads(), floor_what);
    md_triple(&md, floor);
    sb_printf(&md, ", RD %.0f. *lift*: cross-lingual mAP above its floor, mean of the three strategies; "
                   "*hyb − best*: hybrid minus the better specialist in cross-lingual mAP (> 0: hybrid beats both). "
                   "Minutes: fine-tuning and evaluating the arm's runs; the start's own cost (pretraining, English "
                   "QA; made once, shared by the arms) beside it.\n",
              floor[RM_MULTI_RD]);
    sb_puts(&js, "{\"floor\": ");
    json_figures(&js, floor);
    sb_puts(&js, ", \"arms\": [");
    double *lift = xcalloc((size_t)n_arms, sizeof(double)), *mins = xcalloc((size_t)n_arms, sizeof(double));
    int n_rows = 0;
    for (int si = 0; si < n_sizes; si++) {
        sb_printf(&md, "\n## %s\n\n| start | data | steps | zero-shot | mono | cross | hybrid | RD mono / cross / hybrid "
                       "| lift | hyb − best | minutes (start) |\n| --- | --- | ---: | --- | --- | --- | --- | --- | ---: | ---: | ---: |\n",
                  sizes[si]);
        for (int i = 0; i < n_arms; i++) {
            const Arm *a = &arms[i];
            ArmSize f;
            arm_size_figures(a, sizes[si], cache, qa_steps, o->grid.bf16, &f);
            double l = arm_lift(&f, floor), gap = hybrid_gap(&f, RM_CROSS_MAP);
            lift[i] += l / n_sizes;
            mins[i] += (f.finetune_s + f.start_s) / 60;
            if (!f.n[0] && !f.n[1] && !f.n[2]) continue; /* not started: in neither table */
            sb_printf(&md, "| %s | %s | %d | ", a->start->name, data_names[a->data], a->steps);
            md_triple(&md, f.zero);
            for (int k = 0; k < N_STRAT; k++) {
                sb_puts(&md, " | ");
                md_triple(&md, f.m[k]);
            }
            sb_puts(&md, " | ");
            for (int k = 0; k < N_STRAT; k++) {
                sb_puts(&md, k ? " / " : "");
                if (isnan(f.m[k][RM_MULTI_RD])) sb_puts(&md, "—");
                else sb_printf(&md, "%.0f", f.m[k][RM_MULTI_RD]);
            }
            sb_puts(&md, " | ");
            md_num(&md, l);
            sb_puts(&md, " | ");
            if (isnan(gap)) sb_puts(&md, "—");
            else sb_printf(&md, "%+.3f", gap);
            sb_puts(&md, " | ");
            md_minutes(&md, f.finetune_s);
            sb_puts(&md, " (");
            md_minutes(&md, f.start_s);
            sb_puts(&md, ") |\n");
            sb_printf(&js, "%s{\"arm\": ", n_rows++ ? ", " : "");
            sb_json_string(&js, a->name);
            sb_puts(&js, ", \"size\": ");
            sb_json_string(&js, sizes[si]);
            sb_puts(&js, ", \"start\": ");
            sb_json_string(&js, a->start->name);
            sb_printf(&js, ", \"data\": \"%s\", \"steps\": %d, \"zeroshot\": ", data_names[a->data], a->steps);
            json_figures(&js, f.zero);
            for (int k = 0; k < N_STRAT; k++) {
                sb_printf(&js, ", \"%s\": ", strat_names[k]);
                json_figures(&js, f.m[k]);
                sb_printf(&js, ", \"%s_seeds\": %d", strat_names[k], f.n[k]);
            }
            sb_puts(&js, ", \"lift\": ");
            sb_json_number(&js, l);
            sb_puts(&js, ", \"hybrid_minus_best_cross_map\": ");
            sb_json_number(&js, gap);
            sb_puts(&js, ", \"finetune_seconds\": ");
            sb_json_number(&js, f.finetune_s);
            sb_puts(&js, ", \"start_seconds\": ");
            sb_json_number(&js, f.start_s);
            sb_puts(&js, "}");
        }
    }
    sb_puts(&js, "]}\n");
    /* the arms by lift (all sizes measured), the choice's first criterion */
    int *order = xcalloc((size_t)n_arms, sizeof(int)), n_ranked = 0;
    for (int i = 0; i < n_arms; i++)
        if (!isnan(lift[i])) order[n_ranked++] = i;
    for (int i = 1; i < n_ranked; i++)
        for (int j = i; j > 0 && lift[order[j]] > lift[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    sb_puts(&md, "\n## The arms by lift (mean over the sizes)\n\n| arm | lift | minutes, all sizes (with starts) |\n"
                 "| --- | ---: | ---: |\n");
    for (int i = 0; i < n_ranked; i++)
        sb_printf(&md, "| %s | %.3f | %.1f |\n", arms[order[i]].name, lift[order[i]], mins[order[i]]);
    if (n_ranked < n_arms) sb_printf(&md, "\n%d arm(s) not finished at every size are left out.\n", n_arms - n_ranked);
    free(order);
    free(lift);
    free(mins);
    char *pm = path_join(out, "ablation.md"), *pj = path_join(out, "ablation.json");
    int rc = write_file_atomic(pm, md.data, md.len) || write_file_atomic(pj, js.data, js.len);
    free(pm);
    free(pj);
    sb_free(&md);
    sb_free(&js);
    return rc ? -1 : 0;
}

/* The random floors of the dev split the arms are measured on. */
static int dev_floors(const AblationOptions *o, double *floor, StrBuf *what) {
    SquadData d;
    char *dir = path_join(o->grid.data_dir, "xquad-r");
    int nl = 0;
    char **langs = NULL;
    const char *ls = o->grid.langs ? o->grid.langs : o->grid.quick ? EXPERIMENT_LANGS_QUICK : NULL;
    if (ls) langs = split_csv(ls, &nl);
    int rc = squad_load(&d, "xquad-r", dir, langs, nl, NULL, SPLIT_DEV);
    if (!rc) {
        report_floors(&d, floor);
        sb_printf(what, "the XQuAD-R dev split (%d questions, %d candidates, %d languages)", d.n_qs, d.n_sents, d.n_langs);
        squad_free(&d);
    }
    if (langs) free_strv(langs);
    free(dir);
    return rc;
}

int ablation_run(const AblationOptions *o) {
    int n_st, n_data, n_len, n_sizes, rc = 0;
    char **st_s = split_csv(o->starts ? o->starts : ABLATION_STARTS, &n_st);
    char **data_s = split_csv(o->data ? o->data : ABLATION_DATA, &n_data);
    char **len_s = split_csv(o->lengths ? o->lengths : ABLATION_LENGTHS, &n_len);
    const char *sizes_s = o->grid.sizes ? o->grid.sizes : o->grid.quick ? ABLATION_SIZES_QUICK : ABLATION_SIZES;
    char **sizes = split_csv(sizes_s, &n_sizes);
    /* the arms of earlier invocations (folders under OUT/ablation/) join the table */
    StrBuf adir = {0};
    sb_printf(&adir, "%s/ablation", o->grid.out_dir);
    int n_found;
    char **found = list_files(adir.data, "x", &n_found);
    sb_free(&adir);
    Start *starts = xcalloc((size_t)(n_st + n_found + 1), sizeof *starts);
    int *datas = xcalloc((size_t)(n_data ? n_data : 1), sizeof(int)), *mults = xcalloc((size_t)(n_len ? n_len : 1), sizeof(int));
    if (!n_st || !n_data || !n_len) rc = xerr("experiment: --starts, --data-arms and --lengths must not be empty");
    for (int i = 0; i < n_st && !rc; i++) rc = parse_start(st_s[i], &starts[i]);
    for (int i = 0; i < n_data && !rc; i++) {
        datas[i] = !strcmp(data_s[i], "xquad") ? DATA_XQUAD : !strcmp(data_s[i], "xquad+squad") ? DATA_XQUAD_SQUAD : -1;
        if (datas[i] < 0) rc = xerr("experiment: --data-arms: unknown data '%s' (xquad or xquad+squad)", data_s[i]);
    }
    for (int i = 0; i < n_len && !rc; i++) {
        char *end;
        long v = strtol(len_s[i], &end, 10);
        if (end == len_s[i] || *end || v < 1 || v > 1000)
            rc = xerr("experiment: --lengths: '%s' is not a multiple of the steps (1-1000)", len_s[i]);
        mults[i] = (int)v;
    }
    if (!rc && o->grid.model_dirs) rc = xerr("experiment: --ablation starts from --sizes, not --model-dirs");
    if (!rc && o->grid.init) rc = xerr("experiment: --ablation sets each arm's start: use --starts, not --init");
    int base_steps = o->grid.steps >= 0 ? o->grid.steps : o->grid.quick ? 6 : 150;
    int n_run = rc ? 0 : n_st * n_data * n_len, n_arms = n_run, n_starts = n_st;
    Arm *arms = xcalloc((size_t)(n_run + n_found + 1), sizeof *arms);
    for (int i = 0, k = 0; i < n_st && !rc; i++)
        for (int j = 0; j < n_data; j++)
            for (int l = 0; l < n_len; l++, k++) {
                arm_init(&arms[k], &starts[i], datas[j], mults[l], base_steps, o->grid.out_dir);
                arms[k].run = 1;
            }
    for (int f = 0; f < n_found && !rc; f++) {
        const char *name = strrchr(found[f], '/') + 1;
        int data, mult, known = 0;
        for (int i = 0; i < n_arms; i++) known |= !strcmp(arms[i].name, name);
        if (known || !is_dir(found[f]) || parse_arm_name(name, &starts[n_starts], &data, &mult)) continue;
        arm_init(&arms[n_arms++], &starts[n_starts++], data, mult, base_steps, o->grid.out_dir);
    }
    free_strv(found);
    qsort(arms, (size_t)n_arms, sizeof *arms, arm_cmp);
    double floor[RUN_N_METRICS];
    StrBuf what = {0};
    DirLock lock = {-1}; /* the shared starts and the summary: one ablation per OUT (xlmr-mpi: rank 0 holds it) */
    const int writer = dist_world_rank() == 0;
    if (!rc) rc = mkdir_p(o->grid.out_dir) || (writer && dir_lock(o->grid.out_dir, &lock)) || dev_floors(o, floor, &what);
    for (int i = 0, k = 0; i < n_arms && !rc; i++) {
        if (!arms[i].run) continue;
        ExperimentOptions e;
        arm_options(o, &arms[i], sizes_s, &e);
        fprintf(stderr, "ablation: arm %d/%d %s\n", ++k, n_run, arms[i].name);
        rc = experiment_run(&e) || (writer && write_summary(o, arms, n_arms, sizes, n_sizes, floor, what.data));
    }
    if (!rc && !n_run && writer) rc = write_summary(o, arms, n_arms, sizes, n_sizes, floor, what.data);
    if (!rc && writer) fprintf(stderr, "ablation: %d arms run, %d in the table: %s/ablation.md\n", n_run, n_arms, o->grid.out_dir);
    dir_unlock(&lock);
    for (int i = 0; i < n_arms; i++) free(arms[i].dir);
    free(arms);
    free(starts);
    free(datas);
    free(mults);
    sb_free(&what);
    free_strv(st_s);
    free_strv(data_s);
    free_strv(len_s);
    free_strv(sizes);
    return rc ? -1 : 0;
}
