/* experiment.c: `xlmr experiment` — the grid of sizes x sampling strategies x
 * seeds, trained and evaluated in-process, resumable (see experiment.h). */
#include "experiment.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "eval.h"
#include "json.h"
#include "report.h"
#include "sampler.h"
#include "squad.h"
#include "tokenizer.h"
#include "train.h"
#include "util.h"
#include "xlmr.h"

int experiment_size_parse(const char *s, XlmrConfig *cfg, char *name_buf) {
    if (xlmr_preset(cfg, s) == 0) {
        snprintf(name_buf, 64, "%s", s);
        return 0;
    }
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
    if (*p || n < 2) {
        xerr("--sizes: unknown size '%s' (nano, micro, tiny, mini, small, base, large, or LAYERSxHIDDEN[xHEADS[xFFN]])", s);
        return -1;
    }
    if (n < 3) v[2] = v[1] >= 64 ? v[1] / 64 : 1;
    if (n < 4) v[3] = 4 * v[1];
    if (v[0] < 1 || v[0] > 64 || v[1] < 1 || v[1] > 8192 || v[2] < 1 || v[1] % v[2] || v[3] < 1 || v[3] > 65536) {
        xerr("--sizes: bad shape '%s' (layers 1-64, hidden 1-8192 divisible by heads, ffn 1-65536)", s);
        return -1;
    }
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
    GridSize *sizes;
    int n_sizes;
    int sampling[4], n_sampling;
    int seeds, steps, batch, mlq, mlp, eval_every, save_every;
    double lr, warmup;
    const char *out, *data, *tokenizer;
    char *train_file, *dev_file;     /* the TSVs training reads */
    char **langs;                    /* NULL: all languages */
    int n_langs;
    int xq_split, ml_split;          /* eval splits */
    int keep_models;
    int select_on_dev;               /* model selection on the XQuAD-R dev split (not --quick) */
    char key[512];                   /* settings a finished run must share to be reused */
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

/* Writes OUT/data/{train,dev}.tsv from the XQuAD-R train and dev splits. */
#define DEV_GROUPS 100
static int prepare_pairs(Grid *g, char **summary) {
    char *dir = path_join(g->out, "data"), *xq = path_join(g->data, "xquad-r");
    int rc = mkdir_p(dir);
    StrBuf sb = {0};
    static const int splits[2] = {SPLIT_TRAIN, SPLIT_DEV};
    for (int i = 0; i < 2 && !rc; i++) {
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
        if (i == 1 && !g->dev_file && g->select_on_dev) g->dev_file = xstrdup(p);
        free(p);
        squad_free(&d);
    }
    free(dir);
    free(xq);
    *summary = sb.data ? sb.data : xstrdup("");
    return rc;
}

/* ---------------------------------------------------------------------------
 * One run */

static char *run_name(const GridSize *s, int sampling, int seed) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s-%s-s%d", s->name, sampling_name(sampling), seed);
    return sb.data;
}

/* The initial model of (size, seed): written once under OUT/init, shared by every strategy. */
static char *initial_model(const Grid *g, const GridSize *s, int seed) {
    if (s->model_dir) return xstrdup(s->model_dir);
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
    int rc = mkdir_p(dir) || xlmr_save(&m, dir, spm);
    free(spm);
    xlmr_free(&m);
    if (rc) {
        free(dir);
        return NULL;
    }
    return dir;
}

typedef struct {
    SquadData *data[REPORT_N_DATASETS];
    const char *split_name[REPORT_N_DATASETS];
} EvalSets;

/* Trains, selects, evaluates; writes OUT/runs/NAME.json. */
static int do_run(Grid *g, GridSize *s, int sampling, int seed, const EvalSets *ev, Progress *pr,
                  const char *result_path) {
    char *name = run_name(s, sampling, seed);
    char *init = initial_model(g, s, seed);
    if (!init) {
        free(name);
        return -1;
    }
    StrBuf wsb = {0};
    sb_printf(&wsb, "%s/work/%s", g->out, name);
    char *work = wsb.data;
    /* a work folder left by a run with other settings cannot be resumed */
    char *keyf = path_join(work, "grid_key.txt");
    char *old = NULL;
    size_t olen;
    if (read_file(keyf, &old, &olen) == 0 && strcmp(old, g->key) != 0) remove_tree(work);
    free(old);
    int rc = mkdir_p(work) || write_file_atomic(keyf, g->key, strlen(g->key));
    free(keyf);

    TrainOptions o;
    train_options_default(&o);
    const char *files[1] = {g->train_file};
    o.model_dir = init;
    o.train_files = files;
    o.n_train_files = 1;
    char *tout = path_join(work, "train");
    o.out_dir = tout;
    o.sampling = sampling;
    o.alpha = 0.5;
    o.batch = g->batch;
    o.steps = g->steps;
    o.lr = g->lr;
    o.warmup = g->warmup;
    o.max_len_query = g->mlq;
    o.max_len_passage = g->mlp;
    o.dev_file = g->dev_file;
    o.eval_every = g->dev_file ? g->eval_every : 0;
    o.save_every = g->save_every;
    o.keep = 1;
    o.resume = 1;
    o.seed = (unsigned long long)seed + 1;
    o.quiet = 1;
    o.on_step = on_step;
    o.user = pr;
    TrainReport tr;
    memset(&tr, 0, sizeof tr);
    if (!rc) rc = train_run(&o, &tr);

    Xlmr m;
    Tokenizer *tok = NULL;
    EvalResult *res[REPORT_N_DATASETS] = {0};
    double t_eval = now_seconds();
    const char *chosen = tr.best_dir && path_exists(tr.best_dir) ? tr.best_dir : tr.final_dir;
    int loaded = 0;
    if (!rc && chosen) {
        rc = xlmr_load(&m, chosen);
        loaded = rc == 0;
        if (!rc) rc = tokenizer_load(&tok, chosen);
    } else if (!rc) {
        rc = xerr("%s: training ended without a model", tout);
    }
    for (int d = 0; d < REPORT_N_DATASETS && !rc; d++) {
        if (!ev->data[d]) continue;
        EvalOptions eo;
        eval_options_default(&eo);
        eo.max_len = g->mlq > g->mlp ? g->mlq : g->mlp;
        eo.label = pr->tty ? report_dataset_names[d] : NULL;
        res[d] = xcalloc(1, sizeof(EvalResult));
        rc = eval_run(&m, tok, ev->data[d], &eo, res[d]);
    }
    t_eval = now_seconds() - t_eval;

    if (!rc) {
        StrBuf sb = {0};
        sb_puts(&sb, "{\"size\": ");
        sb_json_string(&sb, s->name);
        sb_puts(&sb, ", \"sampling\": ");
        sb_json_string(&sb, sampling_name(sampling));
        sb_printf(&sb, ", \"seed\": %d, \"params\": %zu, \"steps\": %d, \"train_seconds\": ", seed, m.n_params, tr.steps);
        sb_json_number(&sb, tr.train_seconds);
        sb_puts(&sb, ", \"eval_seconds\": ");
        sb_json_number(&sb, t_eval);
        sb_printf(&sb, ",\n \"config\": {\"layers\": %d, \"hidden\": %d, \"heads\": %d, \"ffn\": %d, \"vocab\": %d}",
                  m.cfg.n_layers, m.cfg.hidden, m.cfg.n_heads, m.cfg.ffn, m.cfg.vocab);
        sb_printf(&sb, ", \"batch\": %d, \"alpha\": 0.5, \"lr\": ", g->batch);
        sb_json_number(&sb, g->lr);
        sb_printf(&sb, ", \"max_len_query\": %d, \"max_len_passage\": %d, \"final_loss\": ", g->mlq, g->mlp);
        sb_json_number(&sb, tr.final_loss);
        sb_puts(&sb, ", \"best_dev_map\": ");
        sb_json_number(&sb, tr.best_dev_map);
        sb_printf(&sb, ", \"best_step\": %d, \"model\": ", tr.best_step);
        sb_json_string(&sb, chosen == tr.best_dir ? "best" : "final");
        sb_puts(&sb, ", \"grid_key\": ");
        sb_json_string(&sb, g->key);
        sb_puts(&sb, ",\n \"eval_data\": {");
        int first = 1;
        for (int d = 0; d < REPORT_N_DATASETS; d++) {
            if (!res[d]) continue;
            sb_printf(&sb, "%s\"%s\": {\"split\": \"%s\", \"questions\": %d, \"candidates\": %d, \"langs\": [",
                      first ? "" : ", ", report_dataset_names[d], ev->split_name[d], res[d]->questions,
                      res[d]->candidates);
            for (int l = 0; l < res[d]->n_langs; l++) {
                if (l) sb_puts(&sb, ", ");
                sb_json_string(&sb, res[d]->langs[l]);
            }
            sb_puts(&sb, "]}");
            first = 0;
        }
        sb_puts(&sb, "},\n \"eval\": {");
        first = 1;
        for (int d = 0; d < REPORT_N_DATASETS; d++) {
            if (!res[d]) continue;
            sb_printf(&sb, "%s\n  \"%s\": ", first ? "" : ",", report_dataset_names[d]);
            eval_result_json(res[d], &sb);
            first = 0;
        }
        sb_puts(&sb, "}}\n");
        rc = write_file_atomic(result_path, sb.data, sb.len);
        sb_free(&sb);
        if (!rc) {
            fprintf(stderr, "[run %d/%d] %s: done in %.0f s (train %.0f s, eval %.0f s)", pr->run, pr->n_runs,
                    name, now_seconds() - pr->t_run, tr.train_seconds, t_eval);
            for (int d = 0; d < REPORT_N_DATASETS; d++)
                if (res[d])
                    fprintf(stderr, "; %s mAP mono %.3f cross %.3f multi %.3f", report_dataset_names[d],
                            res[d]->mono.map, res[d]->cross.map, res[d]->multi.map);
            fputc('\n', stderr);
        }
    }
    if (!rc && !g->keep_models) remove_tree(work);
    for (int d = 0; d < REPORT_N_DATASETS; d++) free(res[d]);
    if (tok) tokenizer_free(tok);
    if (loaded) xlmr_free(&m);
    train_report_free(&tr);
    free(tout);
    free(work);
    free(init);
    free(name);
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
    if (!g->sizes[0].model_dir) {
        char *spm = tokenizer_model_path(g->tokenizer);
        h = hash_combine(h, file_hash(spm));
        free(spm);
    }
    snprintf(g->key, sizeof g->key, "steps=%d batch=%d lr=%g warmup=%g mlq=%d mlp=%d xq=%d ml=%d langs=%.100s train=%016llx",
             g->steps, g->batch, g->lr, g->warmup, g->mlq, g->mlp, g->xq_split, g->ml_split, langs,
             (unsigned long long)h);
}

/* Checks a finished run's file: 1 reusable, 0 absent, -1 made with other settings. */
static int finished(const Grid *g, const char *path) {
    if (!path_exists(path)) return 0;
    Json j;
    if (json_parse_file(&j, path)) return -1; /* written atomically: damaged by something else */
    const Json *k = json_get(&j, "grid_key");
    int ok = k && k->type == JSON_STRING && !strcmp(k->str, g->key);
    json_free(&j);
    if (!ok) {
        xerr("%s: made with other settings than this grid's (%s): use another --out, or delete it", path, g->key);
        return -1;
    }
    return 1;
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
        else sb_printf(sb, " (%d layers, hidden %d, %d heads, FFN %d)", s->shape.n_layers, s->shape.hidden,
                       s->shape.n_heads, s->shape.ffn);
    }
    sb_puts(sb, g->sizes[0].model_dir ? ".\n" : "; XLM-R architecture from random initialisation with the project tokenizer.\n");
    sb_printf(sb, "- **Training**: %s. %d steps of batch %d, AdamW lr %g (warmup %g, linear decay), InfoNCE "
                  "τ 0.05, query/passage max %d/%d tokens, hybrid α 0.5. Same data, steps, batch and seeds "
                  "for every strategy; for a given size and seed every strategy starts from the same weights.\n",
              pairs, g->steps, g->batch, g->lr, g->warmup, g->mlq, g->mlp);
    sb_printf(sb, "- **Model selection**: %s.\n",
              g->dev_file ? "the checkpoint with the best dev mAP (evaluated at the start, every third of the steps and at the end)"
                         : "none: the final model is evaluated (no dev set)");
    sb_puts(sb, "- **Evaluation**: ");
    for (int d = 0; d < REPORT_N_DATASETS; d++) {
        if (!ev->data[d]) continue;
        if (!strcmp(ev->split_name[d], "all")) sb_printf(sb, "%sall of %s", d ? "; " : "", report_dataset_titles[d]);
        else sb_printf(sb, "%s%s %s split", d ? "; " : "", report_dataset_titles[d], ev->split_name[d]);
        sb_printf(sb, " (%d questions, %d candidates, %d languages)", ev->data[d]->n_qs, ev->data[d]->n_sents,
                  ev->data[d]->n_langs);
    }
    sb_puts(sb, ". MLQA-R is never trained on (zero-shot).\n");
}

/* ---------------------------------------------------------------------------
 * xlmr experiment */

int cmd_experiment(int argc, char **argv) {
    char *sizes_s = NULL, *samp_s = NULL, *dirs_s = NULL, *train_s = NULL, *dev_s = NULL, *data = "data",
         *out = "results", *tokenizer = "tokenizer/xlmrc.model", *langs_s = NULL;
    int seeds = -1, steps = -1, batch = -1, quick = 0, full = 0, mlq = -1, mlp = -1, keep = 0;
    double lr = -1;
    Opt opts[] = {
        {"sizes", OPT_STR, &sizes_s, "S,S",
         "model sizes: nano 1/32/1/128, micro 2/64/2/256, tiny 2/128/2/512, mini 4/256/4/1024, small 6/384/6/1536 "
         "(layers/hidden/heads/ffn), or LxH[xA[xF]] (default nano,micro,tiny; --quick nano,micro; --full micro,tiny,mini)"},
        {"sampling", OPT_STR, &samp_s, "S,S", "strategies (default mono,cross,hybrid,mixed; --quick mono,cross,hybrid)"},
        {"seeds", OPT_INT, &seeds, "N", "seeds per cell (default 3; --quick 1)"},
        {"steps", OPT_INT, &steps, "N", "training steps per run (default 150; --quick 6; --full 600)"},
        {"batch", OPT_INT, &batch, "B", "pairs per batch (default 32; --quick 8)"},
        {"lr", OPT_FLOAT, &lr, "LR", "peak learning rate (default 5e-4 from random init, 3e-5 with --model-dirs)"},
        {"max-len-query", OPT_INT, &mlq, "N", "query tokens incl. <s> </s> (default 32; 64 with --model-dirs)"},
        {"max-len-passage", OPT_INT, &mlp, "N", "passage tokens (default 64; 256 with --model-dirs)"},
        {"quick", OPT_FLAG, &quick, NULL,
         "a reduced grid for tests (2 sizes x mono/cross/hybrid, 1 seed, few steps, no dev selection; 3 languages, "
         "test splits only)"},
        {"full", OPT_FLAG, &full, NULL, "the larger grid: sizes micro,tiny,mini, 600 steps, 3 seeds (hours)"},
        {"model-dirs", OPT_STR, &dirs_s, "NAME=DIR,...",
         "start from pretrained HF folders instead (e.g. base=xlm-roberta-base); needs --train; evaluates on all of "
         "XQuAD-R and MLQA-R"},
        {"train", OPT_STR, &train_s, "FILE", "training TSV (default: the XQuAD-R train split, written to OUT/data/)"},
        {"dev", OPT_STR, &dev_s, "FILE", "dev TSV for model selection (default: the XQuAD-R dev split without --train)"},
        {"langs", OPT_STR, &langs_s, "L,L", "languages of training and evaluation (default all; --quick ar,de,en)"},
        {"data", OPT_STR, &data, "DIR", "data folder holding xquad-r/ and mlqa-r/ (default data: run `make data`)"},
        {"tokenizer", OPT_STR, &tokenizer, "FILE", "SentencePiece model of random-init sizes (default tokenizer/xlmrc.model)"},
        {"out", OPT_STR, &out, "DIR", "output folder (default results)"},
        {"keep-models", OPT_FLAG, &keep, NULL, "keep each run's checkpoints under OUT/work/ (default: removed)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr experiment [options]",
               "Trains and evaluates the grid sizes x sampling strategies x seeds and writes OUT/results.json, "
               "OUT/report.md and SVG charts. Each finished run is saved at once as OUT/runs/NAME.json; running "
               "the same command again skips finished runs and resumes the interrupted one.",
               NULL);
    if (quick && full) die("experiment: --quick and --full exclude each other");
    Grid g;
    memset(&g, 0, sizeof g);
    int pretrained = dirs_s != NULL;
    if (pretrained && !train_s) die("experiment: --model-dirs needs --train FILE (the training pairs)");
    g.seeds = seeds >= 0 ? seeds : quick ? 1 : 3;
    g.steps = steps >= 0 ? steps : quick ? 6 : full ? 600 : 150;
    g.batch = batch >= 0 ? batch : quick ? 8 : 32;
    g.lr = lr >= 0 ? lr : pretrained ? 3e-5 : 5e-4;
    g.warmup = 0.1;
    g.mlq = mlq > 0 ? mlq : pretrained ? 64 : 32;
    g.mlp = mlp > 0 ? mlp : pretrained ? 256 : 64;
    g.eval_every = g.steps >= 20 ? g.steps / 3 : 0;
    g.save_every = g.steps >= 200 ? g.steps / 4 : 0;
    g.keep_models = keep;
    g.select_on_dev = !quick;
    g.out = out;
    g.data = data;
    g.tokenizer = tokenizer;
    if (g.seeds < 1 || g.seeds > 100) die("experiment: --seeds must be 1..100");
    if (g.steps < 1) die("experiment: --steps must be >= 1");
    if (g.batch < 2) die("experiment: --batch must be >= 2");
    if (!(g.lr > 0)) die("experiment: --lr must be > 0");

    /* sizes */
    if (pretrained) {
        int n;
        char **items = split_csv(dirs_s, &n);
        g.sizes = xcalloc((size_t)n, sizeof *g.sizes);
        for (int i = 0; i < n; i++) {
            char *eq = strchr(items[i], '=');
            if (!eq || eq == items[i] || !eq[1]) die("experiment: --model-dirs wants NAME=DIR, got '%s'", items[i]);
            *eq = 0;
            GridSize *s = &g.sizes[g.n_sizes++];
            s->name = xstrdup(items[i]);
            s->model_dir = xstrdup(eq + 1);
            XlmrConfig c;
            char *cfg = path_join(s->model_dir, "config.json");
            if (xlmr_config_read(&c, cfg)) die_xerr();
            free(cfg);
            s->cost = size_cost(c.n_layers, c.hidden);
        }
        free_strv(items);
    } else {
        int n;
        char **items = split_csv(sizes_s ? sizes_s : quick ? "nano,micro" : full ? "micro,tiny,mini" : "nano,micro,tiny", &n);
        if (n < 1) die("experiment: --sizes is empty");
        g.sizes = xcalloc((size_t)n, sizeof *g.sizes);
        for (int i = 0; i < n; i++) {
            GridSize *s = &g.sizes[g.n_sizes++];
            if (experiment_size_parse(items[i], &s->shape, s->shape_name)) die_xerr();
            s->name = xstrdup(s->shape_name);
            s->cost = size_cost(s->shape.n_layers, s->shape.hidden);
        }
        free_strv(items);
        if (!path_exists(tokenizer)) die("%s: not found: run from the repository root or pass --tokenizer", tokenizer);
    }
    for (int i = 0; i < g.n_sizes; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(g.sizes[i].name, g.sizes[j].name)) die("experiment: size '%s' given twice", g.sizes[i].name);
    /* strategies */
    {
        int n;
        char **items = split_csv(samp_s ? samp_s : quick ? "mono,cross,hybrid" : "mono,cross,hybrid,mixed", &n);
        for (int i = 0; i < n; i++) {
            int k = sampling_parse(items[i]);
            if (k < 0 || k > 3) die("experiment: unknown sampling '%s' (mono, cross, hybrid, mixed)", items[i]);
            for (int j = 0; j < g.n_sampling; j++)
                if (g.sampling[j] == k) die("experiment: sampling '%s' given twice", items[i]);
            if (g.n_sampling == 4) die("experiment: at most 4 strategies");
            g.sampling[g.n_sampling++] = k;
        }
        free_strv(items);
        if (!g.n_sampling) die("experiment: --sampling is empty");
    }
    if (langs_s || quick) g.langs = split_csv(langs_s ? langs_s : "ar,de,en", &g.n_langs);

    /* data */
    char *xq_dir = path_join(data, "xquad-r"), *ml_dir = path_join(data, "mlqa-r");
    if (!is_dir(xq_dir) || !is_dir(ml_dir))
        die("%s: no xquad-r/ and mlqa-r/ there: run `make data` or pass --data DIR", data);
    if (mkdir_p(out)) die_xerr();
    g.xq_split = pretrained ? SPLIT_ALL : SPLIT_TEST;
    g.ml_split = quick ? SPLIT_TEST : SPLIT_ALL;
    char *pairs_summary = NULL;
    if (train_s) {
        g.train_file = xstrdup(train_s);
        if (dev_s) g.dev_file = xstrdup(dev_s);
        StrBuf sb = {0};
        sb_printf(&sb, "pairs from %s", train_s);
        pairs_summary = sb.data;
    } else {
        if (dev_s) g.dev_file = xstrdup(dev_s);
        char *sum;
        if (prepare_pairs(&g, &sum)) die_xerr();
        StrBuf sb = {0};
        sb_printf(&sb, "XQuAD-R pairs (%s)", sum);
        free(sum);
        pairs_summary = sb.data;
    }
    grid_key(&g, langs_s ? langs_s : quick ? "ar,de,en" : "all");

    EvalSets ev;
    memset(&ev, 0, sizeof ev);
    Report rep;
    report_init(&rep);
    const char *dirs[REPORT_N_DATASETS] = {xq_dir, ml_dir};
    const int splits[REPORT_N_DATASETS] = {g.xq_split, g.ml_split};
    for (int d = 0; d < REPORT_N_DATASETS; d++) {
        ev.data[d] = xcalloc(1, sizeof(SquadData));
        /* MLQA-R lacks some XQuAD-R languages: keep those it has */
        char **lv = NULL;
        int nl = 0;
        if (g.langs) {
            lv = xcalloc((size_t)g.n_langs + 1, sizeof *lv);
            for (int i = 0; i < g.n_langs; i++) {
                char *f = path_join(dirs[d], g.langs[i]);
                char *fj = xmalloc(strlen(f) + 6);
                sprintf(fj, "%s.json", f);
                if (path_exists(fj)) lv[nl++] = g.langs[i];
                free(f);
                free(fj);
            }
        }
        if (g.langs && nl == 0) die("%s: none of the languages of --langs", dirs[d]);
        if (squad_load(ev.data[d], report_dataset_names[d], dirs[d], lv, nl, NULL, splits[d])) die_xerr();
        free(lv);
        ev.split_name[d] = squad_split_name(splits[d]);
        report_floors(ev.data[d], rep.floor[d]);
    }
    StrBuf pre = {0};
    make_preamble(&g, pairs_summary, &ev, &pre, quick);
    rep.preamble = pre.data;

    /* the grid: seed outermost, so that an interrupted grid has whole seeds */
    int n_runs = g.n_sizes * g.n_sampling * g.seeds;
    char *runs_dir = path_join(out, "runs");
    if (mkdir_p(runs_dir)) die_xerr();
    Progress pr;
    memset(&pr, 0, sizeof pr);
    pr.g = &g;
    pr.n_runs = n_runs;
    pr.tty = isatty(2);
    pr.t_grid = now_seconds();
    if (check_runs_dir(&g, runs_dir)) die_xerr();
    int *todo = xcalloc((size_t)n_runs, sizeof *todo);
    int n_todo = 0, idx = 0;
    for (int seed = 0; seed < g.seeds; seed++)
        for (int si = 0; si < g.n_sizes; si++)
            for (int k = 0; k < g.n_sampling; k++, idx++) {
                char *name = run_name(&g.sizes[si], g.sampling[k], seed);
                char file[300];
                snprintf(file, sizeof file, "%s.json", name);
                char *p = path_join(runs_dir, file);
                int f = finished(&g, p);
                if (f < 0) die_xerr();
                if (!f) {
                    todo[idx] = 1;
                    n_todo++;
                    g.sizes[si].n_left++;
                }
                free(p);
                free(name);
            }
    fprintf(stderr, "experiment: %d runs (%d sizes x %d strategies x %d seeds), %d finished, %d to do; output in %s/\n",
            n_runs, g.n_sizes, g.n_sampling, g.seeds, n_runs - n_todo, n_todo, out);
    int rc = 0;
    idx = 0;
    for (int seed = 0; seed < g.seeds && !rc; seed++)
        for (int si = 0; si < g.n_sizes && !rc; si++)
            for (int k = 0; k < g.n_sampling && !rc; k++, idx++) {
                if (!todo[idx]) continue;
                GridSize *s = &g.sizes[si];
                char *name = run_name(s, g.sampling[k], seed);
                char file[300];
                snprintf(file, sizeof file, "%s.json", name);
                char *p = path_join(runs_dir, file);
                pr.run = idx + 1;
                pr.label = name;
                pr.t_run = now_seconds();
                pr.last_print = 0;
                pr.size = s;
                s->n_left--;
                rc = do_run(&g, s, g.sampling[k], seed, &ev, &pr, p);
                if (!rc) {
                    double secs = now_seconds() - pr.t_run;
                    pr.done_cost += s->cost;
                    pr.done_secs += secs;
                    s->secs += secs;
                    s->n_done++;
                    /* rebuild the report from every finished run */
                    report_free(&rep);
                    if (report_load_dir(&rep, runs_dir) || report_write(&rep, out)) rc = -1;
                }
                free(p);
                free(name);
            }
    if (!rc && n_todo == 0) { /* nothing to run: still (re)write the report */
        if (report_load_dir(&rep, runs_dir) || report_write(&rep, out)) rc = -1;
    }
    if (!rc) {
        char el[32];
        fmt_duration(el, sizeof el, now_seconds() - pr.t_grid);
        fprintf(stderr, "experiment: %d runs done in %s; report: %s/report.md\n", n_runs, el, out);
    }
    free(todo);
    free(runs_dir);
    report_free(&rep);
    sb_free(&pre);
    for (int d = 0; d < REPORT_N_DATASETS; d++) {
        squad_free(ev.data[d]);
        free(ev.data[d]);
    }
    for (int i = 0; i < g.n_sizes; i++) {
        free(g.sizes[i].name);
        free(g.sizes[i].model_dir);
    }
    free(g.sizes);
    if (g.langs) free_strv(g.langs);
    free(g.train_file);
    free(g.dev_file);
    free(pairs_summary);
    free(xq_dir);
    free(ml_dir);
    if (rc) die_xerr();
    return 0;
}
