/* experiment.c: the grid of sizes x sampling strategies x seeds, trained and
 * evaluated in-process, resumable (see experiment.h). experiment_run() builds
 * the grid from the options, writes the data, loads the evaluation sets, then
 * makes a plan (the list of runs, each with its name and result file) and
 * runs the plan's unfinished runs in order; `xlmr experiment` is cmd_experiment.c. */
#include "experiment.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dist.h"
#include "encode.h"
#include "eval.h"
#include "json.h"
#include "pretrain.h"
#include "report.h"
#include "runrecord.h"
#include "sampler.h"
#include "squad.h"
#include "stfolder.h"
#include "tokenizer.h"
#include "train.h"
#include "util.h"
#include "xlmr.h"

void experiment_options_default(ExperimentOptions *o) {
    *o = (ExperimentOptions){
        .data_dir = "data",
        .out_dir = "results",
        .tokenizer = "tokenizer/xlmrc.model",
        .seeds = -1,
        .steps = -1,
        .batch = -1,
        .max_len_query = -1,
        .max_len_passage = -1,
        .lr = -1,
        .init = NULL, /* pretrained, or random with --quick / --model-dirs */
        .pretrain_steps = -1,
        .qa_steps = -1,
        .multi_dataset = MULTI_PROPORTIONAL,
    };
}

/* A preset is whatever xlmr_preset knows; anything else must be a shape. */
int experiment_size_parse(const char *s, XlmrConfig *cfg, char *name_buf) {
    if (xlmr_preset(cfg, s) == 0) {
        snprintf(name_buf, 64, "%s", s);
        return 0;
    }
    char preset_err[256];
    snprintf(preset_err, sizeof preset_err, "%s", xerr_msg()); /* names xlmr_preset's presets */
    long v[4] = {0, 0, 0, 0};
    int n = 0;
    const char *p = s;
    while (n < 4) {
        char *end;
        if (!isdigit((unsigned char)*p)) break;
        v[n++] = strtol(p, &end, 10);
        p = end;
        if (*p != 'x') break;
        p++;
    }
    if (*p || n < 2)
        return xerr("--sizes: unknown size '%s': not LAYERSxHIDDEN[xHEADS[xFFN]], and %s", s, preset_err);
    if (n < 3) v[2] = v[1] >= 64 ? v[1] / 64 : 1;
    if (n < 4) v[3] = 4 * v[1];
    if (v[0] < 1 || v[0] > 64 || v[1] < 1 || v[1] > 8192 || v[2] < 1 || v[1] % v[2] || v[3] < 1 || v[3] > 65536)
        return xerr("--sizes: bad shape '%s' (layers 1-64, hidden 1-8192 divisible by heads, ffn 1-65536)", s);
    snprintf(name_buf, 64, "%ldx%ldx%ldx%ld", v[0], v[1], v[2], v[3]);
    xlmr_config_default(cfg);
    cfg->n_layers = (int)v[0];
    cfg->hidden = (int)v[1];
    cfg->n_heads = (int)v[2];
    cfg->ffn = (int)v[3];
    return 0;
}

/* ---------------------------------------------------------------------------
 * The grid */

typedef struct {
    char *name;          /* size label in results */
    XlmrConfig shape;    /* random-init sizes: the shape (vocab from the tokenizer) */
    char shape_name[64];
    char *model_dir;     /* --model-dirs: the pretrained folder; NULL: random init */
    double cost;         /* relative cost of one run, for the ETA before one of its runs is timed */
    double secs;         /* wall time of its runs finished in this invocation */
    int n_done, n_left;  /* those runs; runs still to do after the current one */
} GridSize;

typedef struct {
    SquadData *data[RUN_N_DATASETS];
    const char *split_name[RUN_N_DATASETS];
} EvalSets;

typedef struct {
    GridSize *sizes;
    int n_sizes;
    int sampling[SAMPLING_COUNT], n_sampling;
    int seeds, steps, batch, mlq, mlp, eval_every, save_every;
    double lr, warmup;
    int quick, pretrained;
    int init_pretrained, pretrain_steps; /* --init pretrained: sizes pretrained first */
    int start_qa, qa_steps;          /* --init ...+qa: then trained on English QA */
    int eval_dev;                    /* final models on the XQuAD-R dev split only (the ablation) */
    int bf16;                        /* BF16 matrix products in all training and evaluation (--bf16) */
    const char *out, *data, *tokenizer;
    const char *cache;               /* where pretrained and QA starts are kept */
    char *squad_file;                /* SQuAD v1.1 train pairs (CACHE/data/), when a start or --add-squad uses them */
    char *train_file, *dev_file;     /* the TSVs training reads */
    const char **train_files;        /* train_file, then the extra datasets */
    int n_train_files, multi;        /* and how they are mixed (MULTI_*) */
    char **langs;                    /* NULL: all languages */
    int n_langs;
    const char *langs_key;           /* the languages as the grid key names them */
    int xq_split, ml_split;          /* eval splits */
    int keep_models;
    int select_on_dev;               /* model selection on the XQuAD-R dev split (not --quick) */
    char key[512];                   /* settings a finished run must share to be reused */
    char *pairs_summary;             /* where the training pairs come from, for the preamble */
    char *start, *train_data;        /* for the report (Report.start, .train_data) */
    EvalSets ev;
} Grid;

typedef struct {
    Grid *g;
    int run, n_runs;
    const char *label;
    double t_grid, t_run, last_print;
    double done_cost, done_secs; /* runs finished in this invocation */
    GridSize *size;              /* of the current run */
    int tty;
} Progress;

/* One run of the plan. */
typedef struct {
    GridSize *size;
    int sampling, seed;
    int number;          /* 1-based place in the plan, for "[run i/n]" */
    char *name;          /* SIZE-SAMPLING-sSEED */
    char *path;          /* OUT/runs/NAME.json, its record */
    int todo;            /* no reusable record yet */
    int rank;            /* xlmr-mpi: the rank that runs it (plan_spread) */
} PlannedRun;

/* Cost of one run: a fixed part (data, evaluation overheads) plus the
 * transformer's matmul work per token, fitted roughly to timed runs. */
static double size_cost(int layers, int hidden) { return 4e4 + 12.0 * layers * hidden * hidden; }

/* ETA of the grid: a size's runs take what its runs took in this invocation;
 * sizes not timed yet scale the seconds per unit of cost of those that were
 * (or of the current run's progress). */
static double grid_eta(const Progress *p, double frac) {
    const Grid *g = p->g;
    double el = now_seconds() - p->t_run, rate = NAN;
    if (p->done_cost > 0) rate = p->done_secs / p->done_cost;
    else if (frac > 0.02) rate = el / frac / p->size->cost;
    double cur = frac > 0.02 ? el / frac : p->size->n_done ? p->size->secs / p->size->n_done : rate * p->size->cost;
    double left = cur > el ? cur - el : 0;
    for (int i = 0; i < g->n_sizes; i++) {
        const GridSize *s = &g->sizes[i];
        if (!s->n_left) continue;
        left += s->n_left * (s->n_done ? s->secs / s->n_done : rate * s->cost);
    }
    return left; /* NaN while nothing can be estimated */
}

static void on_step(void *user, int step, int total, double loss, double lr) {
    Progress *p = user;
    double now = now_seconds();
    if (step != total && now - p->last_print < (p->tty ? 0.5 : 10.0)) return;
    p->last_print = now;
    /* training is taken as 85% of a run; evaluation the rest */
    double frac = 0.85 * step / (double)total;
    char el[32], eta[32];
    fmt_duration(el, sizeof el, now - p->t_run);
    fmt_duration(eta, sizeof eta, grid_eta(p, frac));
    fprintf(stderr, "%s[run %d/%d] %s: step %d/%d loss %.4f lr %.2g, run %s, grid ETA %s%s", p->tty ? "\r" : "",
            p->run, p->n_runs, p->label, step, total, loss, lr, el, eta, p->tty ? "   " : "\n");
    if (p->tty && step == total) fputc('\n', stderr);
}

/* ---------------------------------------------------------------------------
 * Data: the training and dev TSV from XQuAD-R (as `xlmr pairs` writes them). */

/* Writes the questions of groups < max_groups (all when <= 0); returns the count or -1. */
static int write_pairs(const SquadData *d, const char *path, const char *what, int max_groups) {
    AtomicFile af;
    FILE *f = atomic_open(&af, path);
    if (!f) return -1;
    fprintf(f, "# xlmr experiment: %s\n", what);
    int n = squad_write_pairs(d, f, 0, max_groups);
    return atomic_commit(&af) ? -1 : n;
}

/* Writes OUT/data/train.tsv from the XQuAD-R train split, and dev.tsv from
 * the dev split where it selects models. */
#define DEV_GROUPS 100
static int prepare_pairs(Grid *g, char **summary) {
    char *dir = path_join(g->out, "data"), *xq = path_join(g->data, "xquad-r");
    int rc = mkdir_p(dir);
    StrBuf sb = {0};
    static const int splits[2] = {SPLIT_TRAIN, SPLIT_DEV};
    for (int i = 0; i < (g->select_on_dev ? 2 : 1) && !rc; i++) {
        SquadData d;
        if (squad_load(&d, "xquad-r", xq, g->langs, g->n_langs, NULL, splits[i])) {
            rc = -1;
            break;
        }
        char file[32], what[64];
        const char *name = squad_split_name(splits[i]);
        snprintf(file, sizeof file, "%s.tsv", name);
        snprintf(what, sizeof what, "XQuAD-R %s split", name);
        char *p = path_join(dir, file);
        /* dev mAP is computed several times per run: its first DEV_GROUPS
         * questions (in every language) keep that affordable */
        int cap = i == 1 ? DEV_GROUPS : 0, n = write_pairs(&d, p, what, cap);
        rc = n < 0 ? -1 : 0;
        sb_printf(&sb, "%s%s split %d pairs (%d groups, %d languages)", i ? "; " : "", name, n,
                  cap && cap < d.n_groups ? cap : d.n_groups, d.n_langs);
        if (i == 0 && !g->train_file) g->train_file = xstrdup(p);
        if (i == 1 && !g->dev_file) g->dev_file = xstrdup(p);
        free(p);
        squad_free(&d);
    }
    free(dir);
    free(xq);
    *summary = sb.data ? sb.data : xstrdup("");
    return rc;
}

/* CACHE/data/squad-train.tsv: every question of SQuAD v1.1 train (data/squad-train)
 * as an English pair, written once; the path in g->squad_file. */
static int prepare_squad(Grid *g) {
    if (g->squad_file) return 0;
    char *dir = path_join(g->cache, "data"), *path = path_join(dir, "squad-train.tsv");
    char *src = path_join(g->data, "squad-train");
    int rc = 0;
    if (!path_exists(path)) {
        SquadData d;
        rc = mkdir_p(dir) || squad_load_csv(&d, "squad", src, NULL, "en", "all");
        if (!rc) {
            rc = write_pairs(&d, path, "SQuAD v1.1 train, English", 0) < 0 ? -1 : 0;
            squad_free(&d);
        }
    }
    free(dir);
    free(src);
    if (rc) {
        free(path);
        return -1;
    }
    g->squad_file = path;
    return 0;
}

/* ---------------------------------------------------------------------------
 * The start of each size */

/* The model a start is built on: random init of (size, seed) under OUT/init,
 * the size pretrained (one model whatever the seed), or a --model-dirs folder. */
static char *base_model(const Grid *g, const GridSize *s, int seed) {
    if (s->model_dir) return xstrdup(s->model_dir);
    if (g->init_pretrained) { /* one pretrained model per size, whatever the seed */
        char *dir = NULL;
        if (pretrain_start_model(g->cache, g->data, g->tokenizer, &s->shape, s->name, g->pretrain_steps, g->bf16, &dir))
            return NULL;
        return dir;
    }
    StrBuf sb = {0};
    sb_printf(&sb, "%s/init/%s-s%d", g->out, s->name, seed);
    char *dir = sb.data;
    char *files[3] = {path_join(dir, "config.json"), path_join(dir, "model.safetensors"),
                      path_join(dir, "sentencepiece.bpe.model")};
    int have = path_exists(files[0]) && path_exists(files[1]) && path_exists(files[2]);
    for (int i = 0; i < 3; i++) free(files[i]);
    if (have) return dir;
    Tokenizer *t;
    if (tokenizer_load(&t, g->tokenizer)) {
        free(dir);
        return NULL;
    }
    XlmrConfig c = s->shape;
    c.vocab = tokenizer_xlmr_vocab(t);
    tokenizer_free(t);
    Xlmr m;
    if (xlmr_build(&m, &c)) {
        free(dir);
        return NULL;
    }
    /* the seed of the weights depends on (seed) only: the same for every strategy */
    xlmr_init_random(&m, hash_combine(0x1417ULL, (uint64_t)seed));
    char *spm = tokenizer_model_path(g->tokenizer);
    /* a model folder like any other (stfolder.h): the pooling and prompts training uses */
    StFolder sf = {.pooling = POOL_MEAN, .query_prompt = XLMR_QUERY_PREFIX, .passage_prompt = XLMR_PASSAGE_PREFIX};
    int rc = mkdir_p(dir) || stfolder_save_model(&m, dir, spm, &sf);
    free(spm);
    xlmr_free(&m);
    if (rc) {
        free(dir);
        return NULL;
    }
    return dir;
}

/* A "+qa" start: the base model trained by English QA, mono batches of the
 * SQuAD v1.1 train pairs (the first research probe's English-QA stage), with
 * fixed settings (batch 32, lr 5e-4, warmup 10%, query/passage 32/64 tokens)
 * so that one cached model serves every grid: CACHE/starts/SIZE-BASE-qaN[-bf16]/. */
#define QA_BATCH 32
char *experiment_qa_start_dir(const char *cache, const char *size, int pretrain_steps, int qa_steps, int bf16) {
    StrBuf sb = {0};
    if (pretrain_steps) sb_printf(&sb, "%s/starts/%s-mlm%d-qa%d", cache, size, pretrain_steps, qa_steps);
    else sb_printf(&sb, "%s/starts/%s-random-qa%d", cache, size, qa_steps);
    if (bf16) sb_puts(&sb, "-bf16");
    return sb.data;
}

static char *qa_start_model(Grid *g, const GridSize *s) {
    char *base = base_model(g, s, 0); /* one per size, from seed 0's base */
    if (!base || prepare_squad(g)) {
        free(base);
        return NULL;
    }
    StrBuf dir = {0};
    char *d = experiment_qa_start_dir(g->cache, s->name, g->init_pretrained ? g->pretrain_steps : 0, g->qa_steps, g->bf16);
    sb_puts(&dir, d);
    free(d);
    char *fin = path_join(dir.data, "final"), *fin_cfg = path_join(fin, "config.json"),
         *log = path_join(dir.data, "log.jsonl");
    int rc = 0;
    if (!path_exists(fin_cfg)) {
        const char *files[1] = {g->squad_file};
        TrainOptions o;
        train_options_default(&o);
        o.model_dir = base;
        o.train_files = files;
        o.n_train_files = 1;
        o.out_dir = dir.data;
        o.sampling = SAMPLING_MONO;
        o.batch = QA_BATCH;
        o.steps = g->qa_steps;
        o.lr = 5e-4;
        o.max_len_query = 32;
        o.max_len_passage = 64;
        o.save_every = g->qa_steps >= 200 ? g->qa_steps / 4 : 0;
        o.keep = 1;
        o.resume = 1;
        o.use_bf16 = g->bf16;
        o.log_file = log;
        TrainReport tr = {0};
        fprintf(stderr, "experiment: %s start: English QA, %d steps of batch %d from %s\n", s->name, g->qa_steps,
                QA_BATCH, base);
        int was = dist_solo(1); /* one process, as pretraining (pretrain.h) */
        rc = mkdir_p(dir.data) || train_run(&o, &tr);
        dist_solo(was);
        train_report_free(&tr);
    }
    free(fin_cfg);
    free(log);
    free(base);
    sb_free(&dir);
    if (rc) {
        free(fin);
        return NULL;
    }
    return fin;
}

/* The initial model of (size, seed), shared by every strategy. */
static char *initial_model(Grid *g, const GridSize *s, int seed) {
    return g->start_qa ? qa_start_model(g, s) : base_model(g, s, seed);
}

/* ---------------------------------------------------------------------------
 * One run */

static char *run_name(const GridSize *s, int sampling, int seed) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s-%s-s%d", s->name, sampling_name(sampling), seed);
    return sb.data;
}

/* OUT/work/NAME, the run's training folder. A folder left by a run with other
 * settings cannot be resumed: it is removed first. */
static char *work_dir(const Grid *g, const char *name) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s/work/%s", g->out, name);
    char *keyf = path_join(sb.data, "grid_key.txt"), *old = NULL;
    size_t olen;
    if (read_file_max(keyf, READ_LIMIT_SMALL, &old, &olen) == 0 && strcmp(old, g->key) != 0) remove_tree(sb.data);
    free(old);
    int rc = mkdir_p(sb.data) || write_file_atomic(keyf, g->key, strlen(g->key));
    free(keyf);
    if (rc) {
        sb_free(&sb);
        return NULL;
    }
    return sb.data;
}

/* One run's training: the grid's settings, resumed from the run's own
 * checkpoint when there is one, quiet (the grid prints its own progress). */
static void run_train_options(const Grid *g, const PlannedRun *run, const char *init, const char *const *files,
                              const char *out, Progress *pr, TrainOptions *o) {
    train_options_default(o);
    o->model_dir = init;
    o->train_files = files;
    o->n_train_files = g->n_train_files;
    o->multi_dataset = g->multi;
    o->out_dir = out;
    o->sampling = run->sampling;
    o->alpha = 0.5;
    o->batch = g->batch;
    o->steps = g->steps;
    o->lr = g->lr;
    o->warmup = g->warmup;
    o->max_len_query = g->mlq;
    o->max_len_passage = g->mlp;
    o->dev_file = g->dev_file;
    o->eval_every = g->dev_file ? g->eval_every : 0;
    o->select_trained = 1; /* a strategy's cell is a model that strategy trained, never the shared start */
    o->save_every = g->save_every;
    o->keep = 1;
    o->resume = 1;
    o->seed = (unsigned long long)run->seed + 1;
    o->use_bf16 = g->bf16;
    o->quiet = 1;
    o->on_step = on_step;
    o->user = pr;
}

/* The trained model (dir) on every evaluation set: res[d] for each one loaded. */
static int run_eval_sets(const Grid *g, const char *dir, const Progress *pr, EvalResult *res[RUN_N_DATASETS],
                         XlmrConfig *cfg, size_t *n_params) {
    Xlmr m;
    Tokenizer *tok = NULL;
    if (xlmr_load(&m, dir)) return -1;
    m.use_bf16 = g->bf16;
    *cfg = m.cfg;
    *n_params = m.n_params;
    int rc = tokenizer_load(&tok, dir);
    for (int d = 0; d < RUN_N_DATASETS && !rc; d++) {
        if (!g->ev.data[d]) continue;
        EvalOptions eo;
        eval_options_default(&eo);
        eo.max_len = g->mlq > g->mlp ? g->mlq : g->mlp;
        eo.label = pr->tty ? run_dataset_names[d] : NULL;
        res[d] = xcalloc(1, sizeof(EvalResult));
        rc = eval_run(&m, tok, g->ev.data[d], &eo, res[d]);
    }
    if (tok) tokenizer_free(tok);
    xlmr_free(&m);
    return rc;
}

/* "[run i/n] NAME: done in ...; xquad-r mAP mono ... cross ... multi ..." */
static void print_run_done(const Progress *pr, const RunRecord *rec) {
    fprintf(stderr, "[run %d/%d] %s: done in %.0f s (train %.0f s, eval %.0f s)", pr->run, pr->n_runs, pr->label,
            now_seconds() - pr->t_run, rec->train_seconds, rec->eval_seconds);
    for (int d = 0; d < RUN_N_DATASETS; d++)
        if (!isnan(rec->m[d][RM_MONO_MAP]))
            fprintf(stderr, "; %s mAP mono %.3f cross %.3f multi %.3f", run_dataset_names[d], rec->m[d][RM_MONO_MAP],
                    rec->m[d][RM_CROSS_MAP], rec->m[d][RM_MULTI_MAP]);
    fputc('\n', stderr);
}

/* Evaluates the model in dir on every evaluation set and writes rec (its
 * training fields filled by the caller) to path, atomically. */
static int eval_and_record(const Grid *g, const char *dir, RunRecord *rec, const char *path, const Progress *pr) {
    EvalResult *res[RUN_N_DATASETS] = {0};
    double t_eval = now_seconds();
    size_t n_params = 0;
    XlmrConfig c;
    int rc = run_eval_sets(g, dir, pr, res, &c, &n_params);
    if (!rc) {
        rec->eval_seconds = now_seconds() - t_eval;
        rec->params = (double)n_params;
        rec->non_embedding_params = (double)xlmr_non_embedding_params(&c);
        rec->layers = c.n_layers, rec->hidden = c.hidden, rec->heads = c.n_heads, rec->ffn = c.ffn, rec->vocab = c.vocab;
        rec->batch = g->batch, rec->lr = g->lr, rec->max_len_query = g->mlq, rec->max_len_passage = g->mlp;
        rec->grid_key = g->key;
        for (int d = 0; d < RUN_N_DATASETS; d++) {
            rec->eval[d] = res[d];
            rec->split[d] = g->ev.split_name[d];
        }
        StrBuf sb = {0};
        run_record_json(rec, &sb);
        rc = write_file_atomic(path, sb.data, sb.len);
        sb_free(&sb);
    }
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        free(res[d]);
        rec->eval[d] = NULL;
    }
    return rc;
}

/* One run: trains from the (size, seed) initial model, evaluates the model
 * selected on dev (else the final one) and writes its record atomically. */
static int do_run(Grid *g, const PlannedRun *run, Progress *pr) {
    const GridSize *s = run->size;
    char *init = initial_model(g, s, run->seed);
    char *work = init ? work_dir(g, run->name) : NULL;
    if (!work) {
        free(init);
        return -1;
    }
    const char **files = g->train_files;
    files[0] = g->train_file;
    char *tout = path_join(work, "train");
    TrainOptions o;
    run_train_options(g, run, init, files, tout, pr, &o);
    TrainReport tr = {0};
    int rc = train_run(&o, &tr);
    const char *chosen = tr.best_dir && path_exists(tr.best_dir) ? tr.best_dir : tr.final_dir;
    if (!rc && !chosen) rc = xerr("%s: training ended without a model", tout);
    if (!rc) {
        RunRecord rec = {
            .size = s->name, .sampling = sampling_name(run->sampling), .seed = run->seed, .steps = tr.steps,
            .train_seconds = tr.train_seconds, .alpha = o.alpha, .final_loss = tr.final_loss,
            .best_dev_map = tr.best_dev_map, .best_step = tr.best_step,
            .model = chosen == tr.best_dir ? "best" : "final",
        };
        rc = eval_and_record(g, chosen, &rec, run->path, pr);
        if (!rc) {
            RunRecord back;
            if (run_record_read(&back, run->path) == 0) { /* the figures as the report will read them */
                print_run_done(pr, &back);
                run_record_free(&back);
            }
        }
    }
    if (!rc && !g->keep_models) remove_tree(work);
    train_report_free(&tr);
    free(tout);
    free(work);
    free(init);
    return rc;
}

/* The settings every finished run of this output folder must share. */
static uint64_t file_hash(const char *path) {
    uint64_t h = 0;
    char *text;
    size_t len;
    if (path && read_file(path, &text, &len) == 0) {
        h = hash_bytes(h, text, len);
        free(text);
    }
    return h;
}

static void grid_key(Grid *g, const char *langs) {
    /* the training data and, for random-init sizes, the tokenizer they start from */
    uint64_t h = file_hash(g->train_file);
    for (int i = 1; i < g->n_train_files; i++) /* extra datasets, and how they are mixed */
        h = hash_combine(hash_combine(h, file_hash(g->train_files[i])), (uint64_t)g->multi);
    if (!g->sizes[0].model_dir) {
        char *spm = tokenizer_model_path(g->tokenizer);
        h = hash_combine(h, file_hash(spm));
        free(spm);
    }
    snprintf(g->key, sizeof g->key, "steps=%d batch=%d lr=%g warmup=%g mlq=%d mlp=%d xq=%d ml=%d langs=%.100s train=%016llx",
             g->steps, g->batch, g->lr, g->warmup, g->mlq, g->mlp, g->xq_split, g->ml_split, langs,
             (unsigned long long)h);
    size_t n = strlen(g->key); /* a pretrained start is another grid than the random one */
    if (g->init_pretrained) n += (size_t)snprintf(g->key + n, sizeof g->key - n, " init=pretrained:%d", g->pretrain_steps);
    if (g->start_qa && n < sizeof g->key) n += (size_t)snprintf(g->key + n, sizeof g->key - n, " qa=%d", g->qa_steps);
    if (g->eval_dev && n < sizeof g->key) n += (size_t)snprintf(g->key + n, sizeof g->key - n, " eval=dev");
    if (g->bf16 && n < sizeof g->key) n += (size_t)snprintf(g->key + n, sizeof g->key - n, " bf16");
    if (g->dev_file && n < sizeof g->key) snprintf(g->key + n, sizeof g->key - n, " select=trained");
}

/* Checks a finished run's file: 1 reusable, 0 absent, -1 made with other settings. */
static int finished(const Grid *g, const char *path) {
    if (!path_exists(path)) return 0;
    RunRecord r;
    if (run_record_read(&r, path)) return -1; /* written atomically: damaged by something else */
    int ok = r.grid_key && !strcmp(r.grid_key, g->key);
    run_record_free(&r);
    if (!ok)
        return xerr("%s: made with other settings than this grid's (%s): use another --out, or delete it", path,
                    g->key);
    return 1;
}

/* The start models before any fine-tuning (pretrained or QA starts; one per
 * size), evaluated like a run: OUT/zeroshot/SIZE.json, sampling "zero-shot". */
static int zeroshot_starts(Grid *g, Progress *pr) {
    if (!g->init_pretrained && !g->start_qa) return 0;
    char *dir = path_join(g->out, "zeroshot");
    int rc = mkdir_p(dir);
    for (int i = 0; i < g->n_sizes && !rc; i++) {
        GridSize *s = &g->sizes[i];
        StrBuf path = {0};
        sb_printf(&path, "%s/%s.json", dir, s->name);
        int f = finished(g, path.data);
        char *init = f == 0 ? initial_model(g, s, 0) : NULL;
        if (f < 0 || (f == 0 && !init)) rc = -1;
        if (init) {
            RunRecord rec = {.size = s->name, .sampling = RUN_SAMPLING_ZEROSHOT, .seed = 0, .steps = 0, .train_seconds = NAN,
                             .alpha = NAN, .final_loss = NAN, .best_dev_map = NAN, .best_step = -1, .model = "start"};
            pr->label = s->name;
            rc = eval_and_record(g, init, &rec, path.data, pr);
            if (!rc) fprintf(stderr, "experiment: %s start evaluated before fine-tuning: %s\n", s->name, path.data);
        }
        free(init);
        sb_free(&path);
    }
    free(dir);
    return rc;
}

/* Every run file under DIR must come from this grid's settings: the report
 * puts them side by side. */
static int check_runs_dir(const Grid *g, const char *dir) {
    int n, rc = 0;
    char **paths = list_files(dir, ".json", &n);
    for (int i = 0; i < n && !rc; i++) rc = finished(g, paths[i]) < 0 ? -1 : 0;
    free_strv(paths);
    return rc;
}

static void make_preamble(const Grid *g, const char *pairs, const EvalSets *ev, StrBuf *sb, int quick) {
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    sb_printf(sb, "Generated by `xlmr experiment%s` on %s (%d threads).\n\n", quick ? " --quick" : "", date,
              num_threads());
    sb_puts(sb, "- **Models**: ");
    for (int i = 0; i < g->n_sizes; i++) {
        const GridSize *s = &g->sizes[i];
        sb_printf(sb, "%s%s", i ? "; " : "", s->name);
        if (s->model_dir) sb_printf(sb, " (pretrained: %s)", s->model_dir);
        else sb_printf(sb, " (%d layer%s, hidden %d, %d head%s, FFN %d)", s->shape.n_layers,
                       s->shape.n_layers == 1 ? "" : "s", s->shape.hidden, s->shape.n_heads,
                       s->shape.n_heads == 1 ? "" : "s", s->shape.ffn);
    }
    sb_puts(sb, g->sizes[0].model_dir ? ".\n"
                : g->init_pretrained || g->start_qa
                    ? "; XLM-R architecture with the project tokenizer, each size given its start first (below).\n"
                    : "; XLM-R architecture from random initialisation with the project tokenizer.\n");
    sb_printf(sb, "- **Training**: %s. %d steps of batch %d, AdamW lr %g (warmup %g, linear decay), InfoNCE "
                  "τ 0.05, query/passage max %d/%d tokens, hybrid α 0.5, %s. Same data, steps, batch and seeds "
                  "for every strategy; for a given size and seed every strategy starts from the same weights.\n",
              pairs, g->steps, g->batch, g->lr, g->warmup, g->mlq, g->mlp,
              g->bf16 ? "BF16 matrix products (`--bf16`, fp32 weights and accumulation; the starts and evaluation too)"
                      : "fp32");
    sb_printf(sb, "- **Model selection**: %s.\n",
              g->dev_file ? "the checkpoint with the best dev mAP (evaluated every third of the steps and at the end; "
                            "the start's is logged, never chosen: each strategy's model is one it trained)"
                         : "none: the final model is evaluated (no dev set)");
    sb_puts(sb, "- **Evaluation**: ");
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (!ev->data[d]) continue;
        if (!strcmp(ev->split_name[d], "all")) sb_printf(sb, "%sall of %s", d ? "; " : "", report_dataset_titles[d]);
        else sb_printf(sb, "%s%s %s split", d ? "; " : "", report_dataset_titles[d], ev->split_name[d]);
        sb_printf(sb, " (%d questions, %d candidates, %d languages)", ev->data[d]->n_qs, ev->data[d]->n_sents,
                  ev->data[d]->n_langs);
    }
    sb_puts(sb, g->eval_dev ? ". The final models are measured on the dev split (`--eval-dev`): the test split and "
                              "MLQA-R are not looked at.\n"
                            : ". MLQA-R is never trained on (zero-shot).\n");
}

/* ---------------------------------------------------------------------------
 * Building the grid from the options */

/* Steps, batch, lengths and learning rate: given, or the defaults of the grid
 * (--quick, --full, pretrained folders). */
static int grid_settings(Grid *g, const ExperimentOptions *o) {
    int quick = o->quick, full = o->full;
    g->quick = quick;
    g->pretrained = o->model_dirs != NULL;
    if (g->pretrained && !o->train_file) return xerr("experiment: --model-dirs needs --train FILE (the training pairs)");
    g->seeds = o->seeds >= 0 ? o->seeds : quick ? 1 : 3;
    g->steps = o->steps >= 0 ? o->steps : quick ? 6 : full ? 600 : 150;
    g->batch = o->batch >= 0 ? o->batch : quick ? 8 : 32;
    g->lr = o->lr >= 0 ? o->lr : g->pretrained ? 3e-5 : 5e-4;
    g->warmup = 0.1;
    g->mlq = o->max_len_query > 0 ? o->max_len_query : g->pretrained ? 64 : 32;
    g->mlp = o->max_len_passage > 0 ? o->max_len_passage : g->pretrained ? 256 : 64;
    /* dev mAP at the start, every third of the run and at the end; checkpoints
     * only where a run is long enough for an interruption to cost much */
    g->eval_every = g->steps >= 20 ? g->steps / 3 : 0;
    g->save_every = g->steps >= 200 ? g->steps / 4 : 0;
    g->keep_models = o->keep_models;
    g->select_on_dev = !quick;
    /* The start: EXPERIMENT_INIT by default (chosen by the ablation, ablation.h);
     * --quick (the tests' grid, seconds per run) and --model-dirs (folders
     * pretrained already) start from random weights or the given folders
     * unless --init says otherwise. */
    const char *init = o->init ? o->init : quick || g->pretrained ? "random" : EXPERIMENT_INIT;
    size_t n = strlen(init);
    g->start_qa = n > 3 && !strcmp(init + n - 3, "+qa");
    if (g->start_qa) n -= 3;
    g->init_pretrained = n == 10 && !strncmp(init, "pretrained", n);
    if (!g->init_pretrained && !(n == 6 && !strncmp(init, "random", n)))
        return xerr("experiment: --init must be random, pretrained, random+qa or pretrained+qa, got '%s'", init);
    if ((g->init_pretrained || g->start_qa) && g->pretrained)
        return xerr("experiment: --init %s is for --sizes, not --model-dirs", init);
    g->pretrain_steps = o->pretrain_steps >= 0 ? o->pretrain_steps : EXPERIMENT_PRETRAIN_STEPS;
    g->qa_steps = o->qa_steps >= 0 ? o->qa_steps : EXPERIMENT_QA_STEPS;
    if (g->pretrain_steps < 1) return xerr("experiment: --pretrain-steps must be >= 1");
    if (g->qa_steps < 1) return xerr("experiment: --qa-steps must be >= 1");
    /* the ablation measures on dev: the final model, no selection on (part of) the same split */
    g->eval_dev = o->eval_dev;
    if (g->eval_dev) g->select_on_dev = 0;
    if (g->eval_dev && g->pretrained) return xerr("experiment: --eval-dev is for --sizes, not --model-dirs");
    g->bf16 = o->bf16;
    g->out = o->out_dir;
    g->cache = o->cache_dir ? o->cache_dir : o->out_dir;
    g->data = o->data_dir;
    g->tokenizer = o->tokenizer;
    if (g->seeds < 1 || g->seeds > 100) return xerr("experiment: --seeds must be 1..100");
    if (g->steps < 1) return xerr("experiment: --steps must be >= 1");
    if (g->batch < 2) return xerr("experiment: --batch must be >= 2");
    if (!(g->lr > 0)) return xerr("experiment: --lr must be > 0");
    return 0;
}

/* --model-dirs NAME=DIR,...: each pretrained folder a size of the grid. */
static int grid_pretrained_sizes(Grid *g, const char *dirs, int *min_limit) {
    int n, rc = 0;
    char **items = split_csv(dirs, &n);
    g->sizes = xcalloc((size_t)(n ? n : 1), sizeof *g->sizes);
    for (int i = 0; i < n && !rc; i++) {
        char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i] || !eq[1]) {
            rc = xerr("experiment: --model-dirs wants NAME=DIR, got '%s'", items[i]);
            break;
        }
        *eq = 0;
        GridSize *s = &g->sizes[g->n_sizes++];
        s->name = xstrdup(items[i]);
        s->model_dir = xstrdup(eq + 1);
        XlmrConfig c;
        char *cfg = path_join(s->model_dir, "config.json");
        rc = xlmr_config_read(&c, cfg);
        free(cfg);
        if (!rc) s->cost = size_cost(c.n_layers, c.hidden);
        if (!rc && (*min_limit == 0 || xlmr_max_len(&c) < *min_limit)) *min_limit = xlmr_max_len(&c);
    }
    free_strv(items);
    return rc;
}

/* --sizes: presets or shapes, trained from random initialisation. */
static int grid_random_sizes(Grid *g, const ExperimentOptions *o) {
    int n, rc = 0;
    const char *list = o->sizes ? o->sizes : o->quick ? EXPERIMENT_SIZES_QUICK : o->full ? EXPERIMENT_SIZES_FULL
                                                                                          : EXPERIMENT_SIZES;
    char **items = split_csv(list, &n);
    if (n < 1) rc = xerr("experiment: --sizes is empty");
    g->sizes = xcalloc((size_t)(n ? n : 1), sizeof *g->sizes);
    for (int i = 0; i < n && !rc; i++) {
        GridSize *s = &g->sizes[g->n_sizes++];
        rc = experiment_size_parse(items[i], &s->shape, s->shape_name);
        s->name = xstrdup(s->shape_name);
        s->cost = size_cost(s->shape.n_layers, s->shape.hidden);
    }
    free_strv(items);
    if (!rc && !path_exists(g->tokenizer))
        rc = xerr("%s: not found: run from the repository root or pass --tokenizer", g->tokenizer);
    return rc;
}

static int grid_sizes(Grid *g, const ExperimentOptions *o) {
    int limit = 0;
    if (g->pretrained ? grid_pretrained_sizes(g, o->model_dirs, &limit) : grid_random_sizes(g, o)) return -1;
    /* length defaults fitted to the smallest model; explicit ones are checked by train_run */
    if (limit && o->max_len_query <= 0) g->mlq = stfolder_fit_default(g->mlq, limit, "experiment", "--max-len-query");
    if (limit && o->max_len_passage <= 0) g->mlp = stfolder_fit_default(g->mlp, limit, "experiment", "--max-len-passage");
    for (int i = 0; i < g->n_sizes; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(g->sizes[i].name, g->sizes[j].name))
                return xerr("experiment: size '%s' given twice", g->sizes[i].name);
    return 0;
}

/* --sampling: the strategies, each once; by default all of sampler.h's (--quick: all but mixed). */
static int grid_strategies(Grid *g, const ExperimentOptions *o) {
    if (!o->sampling) {
        int n = o->quick ? SAMPLING_HYBRID + 1 : SAMPLING_COUNT;
        for (int k = 0; k < n; k++) g->sampling[g->n_sampling++] = k;
        return 0;
    }
    int n, rc = 0;
    char **items = split_csv(o->sampling, &n);
    for (int i = 0; i < n && !rc; i++) {
        int k = sampling_parse(items[i]);
        if (k < 0) {
            StrBuf names = {0};
            for (int c = 0; c < SAMPLING_COUNT; c++) sb_printf(&names, "%s%s", c ? ", " : "", sampling_name(c));
            rc = xerr("experiment: unknown sampling '%s' (%s)", items[i], names.data);
            sb_free(&names);
            break;
        }
        for (int j = 0; j < g->n_sampling && !rc; j++)
            if (g->sampling[j] == k) rc = xerr("experiment: sampling '%s' given twice", items[i]);
        if (!rc) g->sampling[g->n_sampling++] = k; /* each at most once: never more than SAMPLING_COUNT */
    }
    free_strv(items);
    if (!rc && !g->n_sampling) rc = xerr("experiment: --sampling is empty");
    return rc;
}

/* Extra datasets (--train A B, --add-train): the list training reads, and how the report names them. */
static int datasets_summary(Grid *g, const ExperimentOptions *o, StrBuf *sb) {
    int n_more = o->n_more_train + (o->add_squad != 0);
    if (o->add_squad && prepare_squad(g)) return -1;
    g->n_train_files = 1 + n_more;
    g->train_files = xcalloc((size_t)g->n_train_files, sizeof *g->train_files);
    g->multi = o->multi_dataset;
    for (int i = 0; i < o->n_more_train; i++) g->train_files[i + 1] = o->more_train[i];
    if (o->add_squad) g->train_files[n_more] = g->squad_file;
    if (!n_more) return 0;
    sb_printf(sb, "; with %d more dataset%s (", n_more, n_more > 1 ? "s" : "");
    for (int i = 0; i < n_more; i++)
        sb_printf(sb, "%s%s", i ? ", " : "", i == o->n_more_train ? "SQuAD v1.1 train, English" : o->more_train[i]);
    if (g->multi == MULTI_MERGED) sb_puts(sb, "), merged into one pool of groups");
    else
        sb_printf(sb, "), mixed %s: each batch from one file, %s, the sampling strategy within it", multi_dataset_name(g->multi),
                  g->multi == MULTI_PROPORTIONAL ? "chosen with probability proportional to its number of groups"
                                                 : "the files in turn");
    return 0;
}

/* The data: training and dev TSVs (given, or written from XQuAD-R), the eval
 * splits, and the grid key that depends on them. */
static int grid_data(Grid *g, const ExperimentOptions *o) {
    if (o->langs || o->quick) g->langs = split_csv(o->langs ? o->langs : EXPERIMENT_LANGS_QUICK, &g->n_langs);
    g->langs_key = o->langs ? o->langs : o->quick ? EXPERIMENT_LANGS_QUICK : "all";
    int have = 1;
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        char *dir = path_join(g->data, run_dataset_names[d]);
        have = have && is_dir(dir);
        free(dir);
    }
    if (!have) return xerr("%s: no xquad-r/ and mlqa-r/ there: run `make data` or pass --data DIR", g->data);
    if (mkdir_p(g->out)) return -1;
    g->xq_split = g->pretrained ? SPLIT_ALL : g->eval_dev ? SPLIT_DEV : SPLIT_TEST;
    g->ml_split = g->quick ? SPLIT_TEST : SPLIT_ALL;
    if (o->dev_file) g->dev_file = xstrdup(o->dev_file);
    StrBuf sb = {0};
    if (o->train_file) {
        g->train_file = xstrdup(o->train_file);
        sb_printf(&sb, "pairs from %s", o->train_file);
        StrBuf td = {0};
        sb_printf(&td, "the pairs of %s", o->train_file);
        g->train_data = td.data;
    } else {
        char *sum;
        if (prepare_pairs(g, &sum)) return -1;
        sb_printf(&sb, "XQuAD-R pairs (%s)", sum);
        free(sum);
    }
    if (datasets_summary(g, o, &sb)) {
        sb_free(&sb);
        return -1;
    }
    g->pairs_summary = sb.data;
    if (g->init_pretrained || g->start_qa) {
        StrBuf st = {0};
        if (g->init_pretrained)
            sb_printf(&st, "their own masked-LM + TLM pretraining (%d steps of batch 32 x 128 tokens per size on the "
                           "non-evaluation text of data/, from random initialisation)", g->pretrain_steps);
        else sb_puts(&st, "random initialisation");
        if (g->start_qa)
            sb_printf(&st, ", then English QA (%d steps of batch %d, mono batches of the SQuAD v1.1 train pairs)",
                      g->qa_steps, QA_BATCH);
        g->start = st.data;
    }
    if (g->pretrained) {
        StrBuf st = {0};
        sb_puts(&st, "the pretrained folders of --model-dirs (");
        for (int i = 0; i < g->n_sizes; i++)
            sb_printf(&st, "%s%s: %s", i ? ", " : "", g->sizes[i].name, g->sizes[i].model_dir);
        sb_puts(&st, ")");
        g->start = st.data;
    }
    grid_key(g, g->langs_key);
    return 0;
}

/* The evaluation sets, loaded once for every run; their random-ranking floors into rep. */
static int load_eval_sets(Grid *g, Report *rep) {
    const int splits[RUN_N_DATASETS] = {g->xq_split, g->ml_split};
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (g->eval_dev && d > 0) break; /* XQuAD-R dev alone: MLQA-R is a test set */
        char *dir = path_join(g->data, run_dataset_names[d]); /* folders named as the data sets */
        g->ev.data[d] = xcalloc(1, sizeof(SquadData));
        /* MLQA-R lacks some XQuAD-R languages: keep those it has */
        char **lv = NULL;
        int nl = 0, rc = 0;
        if (g->langs) {
            lv = xcalloc((size_t)g->n_langs + 1, sizeof *lv);
            for (int i = 0; i < g->n_langs; i++) {
                StrBuf f = {0};
                sb_printf(&f, "%s/%s.json", dir, g->langs[i]);
                if (path_exists(f.data)) lv[nl++] = g->langs[i];
                sb_free(&f);
            }
            if (nl == 0) rc = xerr("%s: none of the languages of --langs", dir);
        }
        if (!rc) rc = squad_load(g->ev.data[d], run_dataset_names[d], dir, lv, nl, NULL, splits[d]);
        free(lv);
        free(dir);
        if (rc) return -1;
        g->ev.split_name[d] = squad_split_name(splits[d]);
        report_floors(g->ev.data[d], rep->floor[d]);
    }
    return 0;
}

static void grid_free(Grid *g) {
    for (int d = 0; d < RUN_N_DATASETS; d++) {
        if (g->ev.data[d]) squad_free(g->ev.data[d]);
        free(g->ev.data[d]);
    }
    for (int i = 0; i < g->n_sizes; i++) {
        free(g->sizes[i].name);
        free(g->sizes[i].model_dir);
    }
    free(g->sizes);
    if (g->langs) free_strv(g->langs);
    free(g->train_file);
    free(g->train_files);
    free(g->squad_file);
    free(g->dev_file);
    free(g->pairs_summary);
    free(g->start);
    free(g->train_data);
}

/* ---------------------------------------------------------------------------
 * The plan: every run of the grid, seed outermost (an interrupted grid has
 * whole seeds), then size, then strategy. */

static void plan_free(PlannedRun *plan, int n) {
    for (int i = 0; i < n; i++) {
        free(plan[i].name);
        free(plan[i].path);
    }
    free(plan);
}

/* The runs and their result files under runs_dir; todo = no reusable result yet. */
static int plan_build(Grid *g, const char *runs_dir, PlannedRun **out, int *n_runs, int *n_todo) {
    int n = g->n_sizes * g->n_sampling * g->seeds, i = 0, rc = 0;
    PlannedRun *plan = xcalloc((size_t)n, sizeof *plan);
    *n_todo = 0;
    for (int seed = 0; seed < g->seeds; seed++)
        for (int si = 0; si < g->n_sizes; si++)
            for (int k = 0; k < g->n_sampling; k++, i++) {
                PlannedRun *r = &plan[i];
                *r = (PlannedRun){.size = &g->sizes[si], .sampling = g->sampling[k], .seed = seed, .number = i + 1};
                r->name = run_name(r->size, r->sampling, seed);
                StrBuf p = {0};
                sb_printf(&p, "%s/%s.json", runs_dir, r->name);
                r->path = p.data;
                int f = rc ? 0 : finished(g, r->path);
                if (f < 0) rc = -1;
                r->todo = !f;
                if (r->todo) {
                    (*n_todo)++;
                    r->size->n_left++;
                }
            }
    *out = plan;
    *n_runs = n;
    return rc;
}

/* xlmr-mpi (dist.h): the runs are spread over the ranks and each is trained
 * and evaluated by one rank alone (dist_solo), so that every record is the one
 * a single process writes, and nothing is exchanged during a run: the grid's
 * models are small, and whole runs scale better than one run split P ways.
 * Each unfinished run goes to the rank with the least cost so far, in plan
 * order (the same on every rank). */
static void plan_spread(PlannedRun *plan, int n, int P) {
    double *load = xcalloc((size_t)P, sizeof(double));
    for (int i = 0; i < n; i++) {
        if (!plan[i].todo) continue;
        int r = 0;
        for (int k = 1; k < P; k++)
            if (load[k] < load[r]) r = k;
        plan[i].rank = r;
        load[r] += plan[i].size->cost;
        if (r != dist_world_rank()) plan[i].size->n_left--; /* the grid ETA: this rank's runs */
    }
    free(load);
}

/* The initial models of the unfinished runs, written by rank 0 before the
 * runs start: the strategies of a (size, seed) share one, which two ranks
 * would otherwise write at the same time. */
static int plan_initial_models(Grid *g, const PlannedRun *plan, int n) {
    for (int i = 0; i < n; i++) {
        if (!plan[i].todo) continue;
        char *dir = initial_model(g, plan[i].size, plan[i].seed);
        if (!dir) return -1;
        free(dir);
    }
    return 0;
}

/* The report's records read again: the grid's runs and the start models'
 * zero-shot figures (the compared grid, if any, stays as loaded). */
static int report_reload(const Grid *g, Report *rep, const char *runs_dir) {
    report_free(rep);
    char *zs = path_join(g->out, "zeroshot");
    int rc = report_load_dir(rep, runs_dir) || report_load_zeroshot(rep, zs);
    free(zs);
    return rc ? -1 : 0;
}

/* The plan's unfinished runs in order (this rank's, under xlmr-mpi); after
 * each, the report is rebuilt from every finished run (so that an interrupted
 * grid has an up-to-date one; under xlmr-mpi by rank 0 only). */
static int run_plan(Grid *g, PlannedRun *plan, int n_runs, Report *rep, const char *runs_dir, Progress *pr) {
    for (int i = 0; i < n_runs; i++) {
        PlannedRun *run = &plan[i];
        if (!run->todo || run->rank != dist_world_rank()) continue;
        GridSize *s = run->size;
        pr->run = run->number;
        pr->label = run->name;
        pr->t_run = now_seconds();
        pr->last_print = 0;
        pr->size = s;
        s->n_left--;
        if (do_run(g, run, pr)) return -1;
        double secs = now_seconds() - pr->t_run;
        pr->done_cost += s->cost;
        pr->done_secs += secs;
        s->secs += secs;
        s->n_done++;
        if (dist_world_rank() != 0) continue;
        if (report_reload(g, rep, runs_dir) || report_write(rep, g->out)) return -1;
    }
    return 0;
}

/* --init pretrained: every size pretrained (or found cached) before the runs,
 * and a preamble line with each one's final held-out MLM loss per language
 * (the last heldout_loss of OUT/pretrained/SIZE-Nsteps/log.jsonl). */
static int pretrain_sizes(Grid *g, StrBuf *sb) {
    sb_printf(sb, "- **Pretraining** (`--init pretrained`): each size pretrained once, %d steps of batch 32 × 128 "
                  "tokens, masked LM + TLM on the `xlmr corpus` text (`OUT/corpus/`); held-out MLM loss per "
                  "language at the end:",
              g->pretrain_steps);
    for (int i = 0; i < g->n_sizes; i++) {
        GridSize *s = &g->sizes[i];
        char *dir = NULL, *data = NULL;
        if (pretrain_start_model(g->cache, g->data, g->tokenizer, &s->shape, s->name, g->pretrain_steps, g->bf16, &dir))
            return -1;
        free(dir);
        StrBuf log = {0};
        char *cache = pretrain_cache_dir(g->cache, s->name, g->pretrain_steps, g->bf16);
        sb_printf(&log, "%s/log.jsonl", cache);
        free(cache);
        size_t len;
        const char *last = NULL;
        if (read_file(log.data, &data, &len) == 0)
            for (const char *p = data; (p = strstr(p, "{\"step\"")); p++)
                if (strncmp(strchr(p, ',') ? strchr(p, ',') : p, ", \"heldout_loss\"", 16) == 0) last = p;
        Json j;
        const Json *h = NULL;
        int parsed = last && json_parse(&j, last, strcspn(last, "\n"), log.data) == 0;
        if (parsed) h = json_get(&j, "heldout_loss");
        sb_printf(sb, "%s %s:", i ? ";" : "", s->name);
        for (size_t k = 0; h && k < h->n; k++)
            sb_printf(sb, "%s %s %.3f", k ? "," : "", h->keys[k], h->items[k].type == JSON_NUMBER ? h->items[k].num : NAN);
        if (!h) sb_puts(sb, " (no evaluation logged)");
        if (parsed) json_free(&j);
        sb_free(&log);
        free(data);
    }
    sb_puts(sb, ".\n");
    return 0;
}

int experiment_run(const ExperimentOptions *o) {
    Grid g = {0};
    Report rep;
    report_init(&rep);
    StrBuf pre = {0};
    PlannedRun *plan = NULL;
    int n_runs = 0, n_todo = 0;
    char *runs_dir = path_join(o->out_dir, "runs");
    const int P = dist_world_size(), me = dist_world_rank();
    DirLock lock = {-1}; /* one experiment per --out for its whole life (util.h); rank 0 holds it for the job */
    if (me != 0) dist_barrier(); /* rank 0 first: it writes the data and initial models */
    int rc = grid_settings(&g, o) || mkdir_p(o->out_dir) || (me == 0 && dir_lock(o->out_dir, &lock)) ||
             grid_sizes(&g, o) || grid_strategies(&g, o) || grid_data(&g, o) || load_eval_sets(&g, &rep);
    if (!rc) rc = mkdir_p(runs_dir) || check_runs_dir(&g, runs_dir) || plan_build(&g, runs_dir, &plan, &n_runs, &n_todo);
    if (!rc) {
        make_preamble(&g, g.pairs_summary, &g.ev, &pre, g.quick);
        if (g.init_pretrained) rc = pretrain_sizes(&g, &pre);
        if (!rc && g.start_qa) sb_printf(&pre, "- **English QA** (`--init ...+qa`): each size's start then trained %d steps "
                                             "of batch %d (mono batches, lr 5e-4) on the SQuAD v1.1 train pairs.\n",
                                         g.qa_steps, QA_BATCH);
        if (!rc && !o->init && !g.quick && !g.pretrained)
            sb_puts(&pre, "- **Why this start**: it is the default (`" EXPERIMENT_INIT "`), chosen by the protocol "
                          "ablation (`xlmr experiment --ablation`, OUT/ablation.md) on the XQuAD-R dev split: of the "
                          "starts random, English QA, masked LM for 375 or 1,500 steps and masked LM then English QA, "
                          "it lifted cross-lingual mAP furthest above its floor (mean over strategies, nano and tiny) "
                          "at the least cost.\n");
        rep.preamble = pre.data;
        rep.start = g.start;
        rep.train_data = g.train_data;
    }
    Report other; /* --compare: another grid beside this one */
    report_init(&other);
    StrBuf other_label = {0};
    if (!rc && o->compare_dir) {
        char *od = path_join(o->compare_dir, "runs");
        if (!is_dir(od)) rc = xerr("%s: no runs/ there: --compare wants another experiment's output folder", o->compare_dir);
        else rc = report_load_dir(&other, od);
        free(od);
        sb_printf(&other_label, "the grid of %s", o->compare_dir);
        rep.compare = &other;
        rep.compare_label = other_label.data;
    }
    if (!rc && P > 1) {
        plan_spread(plan, n_runs, P);
        if (me == 0) rc = plan_initial_models(&g, plan, n_runs);
    }
    Progress pr = {.g = &g, .n_runs = n_runs, .tty = isatty(2), .t_grid = now_seconds()};
    if (!rc && me == 0) rc = zeroshot_starts(&g, &pr);
    if (me == 0) dist_barrier();
    if (!rc) {
        if (me == 0)
            fprintf(stderr, "experiment: %d runs (%d sizes x %d strategies x %d seeds), %d finished, %d to do; output in %s/%s\n",
                    n_runs, g.n_sizes, g.n_sampling, g.seeds, n_runs - n_todo, n_todo, g.out,
                    P > 1 ? "; runs spread over the ranks" : "");
        dist_solo(1);
        rc = run_plan(&g, plan, n_runs, &rep, runs_dir, &pr);
        dist_solo(0);
    }
    if (!rc && P > 1) dist_barrier(); /* every rank's runs are done */
    if (!rc && me == 0 && (n_todo == 0 || P > 1)) { /* nothing ran here, or others ran: (re)write the report */
        rc = report_reload(&g, &rep, runs_dir) || report_write(&rep, g.out);
    }
    if (!rc && me == 0) {
        char el[32];
        fmt_duration(el, sizeof el, now_seconds() - pr.t_grid);
        fprintf(stderr, "experiment: %d runs done in %s; report: %s/report.md\n", n_runs, el, g.out);
    }
    dir_unlock(&lock);
    plan_free(plan, n_runs);
    free(runs_dir);
    report_free(&rep);
    report_free(&other);
    sb_free(&other_label);
    sb_free(&pre);
    grid_free(&g);
    return rc ? -1 : 0;
}
