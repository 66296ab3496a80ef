/* tests/test_train.c: InfoNCE gradient, AdamW and schedule, gradient caching,
 * dev mAP, and whole training runs of a tiny model (2 layers, hidden 64, the
 * project tokenizer) on XQuAD-R pairs (tests/fixtures/train): the loss falls and
 * mAP on the training pairs rises; resume after an interruption equals a
 * straight run; bad inputs give one clear error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "loss.h"
#include "optim.h"
#include "sampler.h"
#include "test.h"
#include "tokenizer.h"
#include "train.h"
#include "xlmr.h"

#define FIX "tests/fixtures/train/"
#define SPM "tokenizer/xlmrc.model"

static char tmpdir[256];

static char *tmp_path(const char *name) { return path_join(tmpdir, name); }

/* ------------------------------------------------------------------------- */

static void rand_fill(float *x, int n, Rng *r) {
    for (int i = 0; i < n; i++) x[i] = rng_normal(r);
}

static void normalize_rows(float *x, int n, int C) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < C; j++) s += (double)x[i * C + j] * x[i * C + j];
        for (int j = 0; j < C; j++) x[i * C + j] /= (float)sqrt(s);
    }
}

/* d loss / d q and d loss / d p against central differences (double-checked in float). */
static void test_infonce_grad(void) {
    enum { B = 4, P = 6, C = 8 };
    Rng r;
    rng_seed(&r, 5);
    float q[B * C], p[P * C], dq[B * C], dp[P * C];
    rand_fill(q, B * C, &r);
    rand_fill(p, P * C, &r);
    normalize_rows(q, B, C);
    normalize_rows(p, P, C);
    const float tau = 0.5f;
    double loss = infonce_forward_backward(dq, dp, q, p, B, P, C, tau);
    CHECK(loss > 0 && isfinite(loss), "loss %g", loss);
    double worst = 0;
    const float h = 1e-3f;
    for (int k = 0; k < (B + P) * C; k++) {
        float *x = k < B * C ? &q[k] : &p[k - B * C];
        float g = k < B * C ? dq[k] : dp[k - B * C];
        float x0 = *x;
        *x = x0 + h;
        double lp = infonce_forward_backward(NULL, NULL, q, p, B, P, C, tau);
        *x = x0 - h;
        double lm = infonce_forward_backward(NULL, NULL, q, p, B, P, C, tau);
        *x = x0;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - g) / (fabs(fd) + 1e-3);
        if (err > worst) worst = err;
    }
    CHECK_REPORT(worst < 2e-2, "InfoNCE gradient vs central differences: worst relative error %.2e", worst);
    /* a perfect match scores near zero loss at low temperature */
    float e[2 * 2] = {1, 0, 0, 1};
    double l0 = infonce_forward_backward(NULL, NULL, e, e, 2, 2, 2, 0.05f);
    CHECK(l0 < 1e-6, "orthogonal perfect pairs: loss %g", l0);
}

static void test_optim(void) {
    AdamWConfig c;
    adamw_config_default(&c);
    CHECK(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f && c.weight_decay == 0.01f, "AdamW defaults");
    /* two steps of AdamW against the formula in double */
    float p[3] = {0.5f, -1.0f, 2.0f}, g[3] = {0.1f, -0.2f, 0.0f}, m[3] = {0}, v[3] = {0};
    double P[3] = {0.5, -1.0, 2.0}, M[3] = {0}, V[3] = {0};
    for (int t = 1; t <= 2; t++) {
        adamw_update(p, g, m, v, 3, 0.1f, 0.01f, 0.5f, &c, t);
        for (int i = 0; i < 3; i++) {
            double gi = 0.5 * g[i];
            M[i] = 0.9 * M[i] + 0.1 * gi;
            V[i] = 0.999 * V[i] + 0.001 * gi * gi;
            double mh = M[i] / (1 - pow(0.9, t)), vh = V[i] / (1 - pow(0.999, t));
            P[i] -= 0.1 * (mh / (sqrt(vh) + 1e-8) + 0.01 * P[i]);
        }
    }
    int ok = 1;
    for (int i = 0; i < 3; i++) ok &= fabs(p[i] - P[i]) < 1e-6;
    CHECK(ok, "AdamW matches the formula: %g %g %g vs %g %g %g", p[0], p[1], p[2], P[0], P[1], P[2]);
    /* schedule: warmup 4 of 10, peak 1 */
    CHECK(lr_schedule(1, 10, 4, 1.0) == 0.25 && lr_schedule(4, 10, 4, 1.0) == 1.0, "warmup");
    CHECK(lr_schedule(5, 10, 4, 1.0) == 1.0 && fabs(lr_schedule(6, 10, 4, 1.0) - 5.0 / 6) < 1e-12 &&
              fabs(lr_schedule(10, 10, 4, 1.0) - 1.0 / 6) < 1e-12,
          "linear decay");
    CHECK(lr_schedule(1, 10, 0, 2.0) == 2.0, "no warmup starts at the peak");
    CHECK(warmup_steps(0.1, 100) == 10 && warmup_steps(5, 100) == 5 && warmup_steps(500, 100) == 100 &&
              warmup_steps(0, 100) == 0,
          "warmup_steps");
    CHECK(clip_scale(0.5, 1.0) == 1.0f && fabsf(clip_scale(4.0, 1.0) - 0.25f) < 1e-6f && clip_scale(4.0, 0) == 1.0f,
          "clip_scale");
}

/* ------------------------------------------------------------------------- */
/* A tiny model in memory                                                    */

static void tiny_config(XlmrConfig *c, int vocab) {
    xlmr_config_default(c); /* XLM-R's pad id, LayerNorm eps and dropout */
    c->n_layers = 2;
    c->hidden = 32;
    c->n_heads = 2;
    c->ffn = 64;
    c->vocab = vocab;
    c->max_pos = 40;
}

/* Gradients of a batch with chunks of 1, 3 and 12 (all at once) agree; dropout
 * is on and matters (eval mode gives other gradients). Two batches: sequences of
 * varied lengths with hidden dropout only, and sequences of one length with
 * attention dropout too (xlmr.c keys attention-dropout masks by the padded
 * length T, so with attention dropout padding changes the masks). */
enum { CB = 5, CN = 12 }; /* the batch of the gradient tests: 5 queries, 5 passages, 2 negatives */
static void make_batch(int same_len, int store[CN][20], int *lens, const int **ids) {
    Rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < CN; i++) {
        lens[i] = same_len ? 17 : 4 + (int)rng_below(&r, 14);
        store[i][0] = 0;
        for (int t = 1; t < lens[i] - 1; t++) store[i][t] = 4 + (int)rng_below(&r, 96);
        store[i][lens[i] - 1] = 2;
        ids[i] = store[i];
    }
}

static double *cache_grads(Xlmr *m, int same_len, int mode, double *loss, int *seen) {
    enum { B = CB, N = CN };
    int store[N][20], lens[N];
    const int *ids[N];
    make_batch(same_len, store, lens, ids);
    for (int i = 0; i < N; i++)
        for (int t = 0; seen && t < lens[i]; t++) seen[store[i][t]] = 1;
    XlmrDropout dr = {1, 1234, 0};
    int chunk = mode == 0 ? N : mode == 1 ? 3 : mode == 2 ? 1 : mode == 3 ? N : 3; /* 3, 4: eval */
    XlmrActs *a = xlmr_acts_build(m, chunk, 20);
    xlmr_zero_grad(m);
    *loss = train_batch_step(m, a, ids, lens, B, N, chunk, POOL_MEAN, 0.05f, mode >= 3 ? NULL : &dr);
    xlmr_acts_free(a);
    double *g = malloc(m->n_params * sizeof(double));
    for (size_t i = 0; i < m->n_params; i++) g[i] = m->grads_memory[i];
    return g;
}

static double rel_diff(const double *a, const double *ref, size_t n) {
    double mag = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
        double e = fabs(a[i] - ref[i]);
        if (!(e <= d)) d = e;
    }
    return d / (mag > 0 ? mag : 1);
}

/* The whole batch gradient (eval mode, chunks of 3, sorted by length inside)
 * against central differences of the batch loss, for the largest gradient
 * entries of a few tensors: checks the gather/scatter of the embeddings too. */
static void test_batch_fd(void) {
    enum { N = 12 };
    XlmrConfig cfg;
    tiny_config(&cfg, 100);
    Xlmr m;
    xlmr_build(&m, &cfg);
    xlmr_init_random(&m, 21);
    xlmr_grads_alloc(&m);
    double l0;
    double *g = cache_grads(&m, 0, 4, &l0, NULL);
    /* the loss itself against embeddings computed one sequence at a time, in batch order */
    int store[CN][20], lens[CN];
    const int *ids[CN];
    make_batch(0, store, lens, ids);
    float e[CN * 32];
    for (int i = 0; i < CN; i++) xlmr_embed(&m, e + i * 32, ids[i], 1, lens[i], POOL_MEAN);
    double lref = infonce_forward_backward(NULL, NULL, e, e + CB * 32, CB, CN - CB, 32, 0.05f);
    CHECK(fabs(lref - l0) < 1e-5, "batch loss %.7f equals the loss of separately embedded sequences %.7f", l0, lref);
    int tensors[5] = {XLMR_T_WORD_EMB, XLMR_T_V_W, XLMR_T_LN1_W, XLMR_T_FC_W, XLMR_T_LN2_B};
    double worst = 0;
    for (int ti = 0; ti < 5; ti++) {
        size_t off = m.offsets[tensors[ti]], best = off;
        for (size_t i = off; i < off + m.sizes[tensors[ti]]; i++)
            if (fabs(g[i]) > fabs(g[best])) best = i;
        float x0 = m.params_memory[best];
        const float h = 1e-2f;
        double lp, lm;
        m.params_memory[best] = x0 + h;
        free(cache_grads(&m, 0, 4, &lp, NULL));
        m.params_memory[best] = x0 - h;
        free(cache_grads(&m, 0, 4, &lm, NULL));
        m.params_memory[best] = x0;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - g[best]) / (fabs(fd) + 1e-3);
        if (getenv("VERBOSE")) printf("  tensor %d [%zu]: analytic %.6g numeric %.6g\n", tensors[ti], best - off, g[best], fd);
        if (err > worst) worst = err;
    }
    CHECK_REPORT(worst < 2e-2, "batch gradient (chunked, length-sorted) vs central differences: worst rel error %.1e",
                 worst);
    free(g);
    xlmr_free(&m);
}

static void test_grad_cache(void) {
    enum { N = 12 };
    XlmrConfig cfg;
    tiny_config(&cfg, 100);
    Xlmr m;
    CHECK(xlmr_build(&m, &cfg) == 0, "build");
    xlmr_init_random(&m, 11);
    xlmr_grads_alloc(&m);
    for (int same = 0; same < 2; same++) {
        m.cfg.attn_dropout = same ? 0.1f : 0.0f;
        double loss[4], *g[4];
        for (int k = 0; k < 4; k++) g[k] = cache_grads(&m, same, k, &loss[k], NULL);
        double d3 = rel_diff(g[1], g[0], m.n_params), d1 = rel_diff(g[2], g[0], m.n_params);
        double deval = rel_diff(g[3], g[0], m.n_params);
        CHECK_REPORT(fabs(loss[1] - loss[0]) < 1e-5 && fabs(loss[2] - loss[0]) < 1e-5 && d3 < 1e-4 && d1 < 1e-4,
                     "gradient caching (%s): loss %.6f (chunk 12) %.6f (3) %.6f (1); gradients max rel diff %.1e (3) "
                     "%.1e (1)",
                     same ? "one length, all dropout" : "varied lengths, hidden dropout", loss[0], loss[1], loss[2],
                     d3, d1);
        CHECK(deval > 1e-3 && fabs(loss[3] - loss[0]) > 1e-6,
              "dropout changes the gradient (%.1e), so the test can fail", deval);
        double nz = 0;
        for (size_t i = 0; i < m.n_params; i++) nz += g[0][i] != 0;
        CHECK(nz > m.n_params / 4, "gradients reach the parameters (%g nonzero)", nz);
        for (int k = 0; k < 4; k++) free(g[k]);
    }
    m.cfg.attn_dropout = 0.1f;
    /* the batch of the lazy-row checks below: varied lengths */
    double l;
    int seen[100] = {0};
    free(cache_grads(&m, 0, 0, &l, seen));
    /* lazy AdamW: only rows seen in the batch move; frozen: none */
    float *before = malloc(m.n_params * sizeof(float));
    memcpy(before, m.params_memory, m.n_params * sizeof(float));
    AdamW opt;
    AdamWConfig ac;
    adamw_config_default(&ac);
    adamw_build(&opt, m.n_params);
    xlmr_adamw_step(&m, &opt, &ac, 1e-3f, 1.0f, 1);
    int frozen_ok = !memcmp(before, m.params_memory, m.sizes[XLMR_T_WORD_EMB] * sizeof(float)) &&
                    memcmp(before + m.offsets[XLMR_T_POS_EMB], m.params_memory + m.offsets[XLMR_T_POS_EMB], m.sizes[XLMR_T_POS_EMB] * sizeof(float));
    CHECK(frozen_ok, "frozen embeddings stay, other tensors move");
    xlmr_adamw_step(&m, &opt, &ac, 1e-3f, 1.0f, 0);
    int lazy_ok = 1, moved = 0;
    for (int row = 0; row < 100; row++) {
        int changed = memcmp(before + row * 32, m.params_memory + row * 32, 32 * sizeof(float)) != 0;
        if (changed != seen[row] && row != 1) lazy_ok = 0;
        moved += changed;
    }
    CHECK(lazy_ok && moved > 10, "lazy rows: exactly the %d rows seen in the batch moved", moved);
    /* optimizer state round trip, and refusals */
    char *op = tmp_path("opt.bin");
    CHECK(xlmr_adamw_save(&opt, &m, op) == 0, "optimizer save: %s", xerr_msg());
    AdamW o2;
    CHECK(xlmr_adamw_load(&o2, &m, op) == 0 && o2.t == 2 && !memcmp(o2.m, opt.m, m.n_params * sizeof(float)) &&
              !memcmp(o2.v, opt.v, m.n_params * sizeof(float)),
          "optimizer load restores m, v, t: %s", xerr_msg());
    adamw_free(&o2);
    Xlmr m2;
    XlmrConfig c2 = cfg;
    c2.ffn = 48;
    xlmr_build(&m2, &c2);
    CHECK(xlmr_adamw_load(&o2, &m2, op) == -1 && strstr(xerr_msg(), "another model"), "other model refused: %s",
          xerr_msg());
    xlmr_free(&m2);
    FILE *f = fopen(op, "r+b");
    CHECK(f && ftruncate(fileno(f), 1000) == 0, "truncate");
    if (f) fclose(f);
    CHECK(xlmr_adamw_load(&o2, &m, op) == -1 && strstr(xerr_msg(), "truncated"), "truncated refused: %s", xerr_msg());
    free(op);
    adamw_free(&opt);
    free(before);
    xlmr_free(&m);
}

static void test_pairs_map(void) {
    const char *f = FIX "dev.tsv";
    TrainData d;
    CHECK(train_data_load(&d, &f, 1) == 0, "dev load");
    int n = d.n_rows, C = 64;
    float *q = calloc((size_t)n * C, sizeof(float)), *p = calloc((size_t)n * C, sizeof(float));
    /* one direction per group: every relevant passage ties at score 1 above all others */
    for (int i = 0; i < n; i++) q[i * C + d.rows[i].group] = p[i * C + d.rows[i].group] = 1;
    double perfect = pairs_map(&d, q, p, C);
    CHECK(fabs(perfect - 1) < 1e-12, "perfect embeddings: mAP %g", perfect);
    /* all scores equal: ranks follow candidate order; AP computed by hand for query 0 */
    for (int i = 0; i < n * C; i++) q[i] = p[i] = 0;
    for (int i = 0; i < n; i++) q[i * C] = p[i * C] = 1;
    double want = 0;
    for (int i = 0; i < n; i++) {
        int g = d.rows[i].group, r0 = d.group_start[g], R = d.group_start[g + 1] - r0;
        double ap = 0;
        for (int k = 0; k < R; k++) ap += (double)(k + 1) / (r0 + k + 1);
        want += ap / R;
    }
    double got = pairs_map(&d, q, p, C);
    CHECK(fabs(got - want / n) < 1e-12, "ties go to earlier candidates: mAP %g, want %g", got, want / n);
    free(q);
    free(p);
    train_data_free(&d);
}

/* ------------------------------------------------------------------------- */
/* Whole runs                                                                */

/* A model folder with the project tokenizer: 2 layers, hidden 64. */
static int make_model(const char *dir, uint64_t seed, int poison) {
    Tokenizer *t;
    if (tokenizer_load(&t, SPM)) return -1;
    XlmrConfig c;
    tiny_config(&c, tokenizer_xlmr_vocab(t));
    tokenizer_free(t);
    c.hidden = 64;
    c.ffn = 128;
    c.max_pos = 130;
    Xlmr m;
    if (xlmr_build(&m, &c)) return -1;
    xlmr_init_random(&m, seed);
    /* poison 1: a NaN weight (refused at load); 2: finite weights so large
     * (FLT_MAX) that the forward pass overflows to NaN */
    if (poison == 1) m.params.ln2_w[0] = NAN;
    for (int k = 0; k < 8 && poison == 2; k++) m.params.emb_ln_w[k] = 3.4028234e38f;
    int rc = mkdir_p(dir) || xlmr_save(&m, dir, SPM);
    xlmr_free(&m);
    return rc;
}

/* First `groups` groups of train.tsv in en, de, zh, written to a file. */
static char *subset(const char *name, int groups) {
    const char *f = FIX "train.tsv";
    TrainData d;
    train_data_load(&d, &f, 1);
    char *out = tmp_path(name);
    FILE *o = fopen(out, "w");
    int k = 0;
    for (int g = 0; g < d.n_groups && k < groups; g++) {
        int rows[3], n = 0;
        const char *want[3] = {"de", "en", "zh"};
        for (int i = d.group_start[g]; i < d.group_start[g + 1]; i++)
            for (int w = 0; w < 3; w++)
                if (!strcmp(d.langs[d.rows[i].lang], want[w])) rows[n++] = i;
        if (n != 3) continue;
        for (int i = 0; i < 3; i++)
            fprintf(o, "%s\t%s\t%s\t%s\n", d.groups[g], d.langs[d.rows[rows[i]].lang], d.rows[rows[i]].query,
                    d.rows[rows[i]].passage);
        k++;
    }
    fclose(o);
    train_data_free(&d);
    return out;
}

static void run_options(TrainOptions *o, const char *model, const char **train, const char *out) {
    train_options_default(o);
    o->model_dir = model;
    o->train_files = train;
    o->n_train_files = 1;
    o->out_dir = out;
    o->batch = 8;
    o->lr = 2e-3;
    o->warmup = 2;
    o->max_len_query = 24;
    o->max_len_passage = 48;
    o->chunk = 8;
    o->quiet = 1;
}

/* Reads a JSONL log: dev_map of the first and last evaluation, mean loss of the first and last k steps. */
static void read_log(const char *path, double *map0, double *map1, double *loss0, double *loss1, int k) {
    char *data;
    size_t len;
    *map0 = *map1 = *loss0 = *loss1 = NAN;
    if (read_file(path, &data, &len)) return;
    double losses[1000];
    int n = 0, first = 1;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        Json j;
        if (json_parse(&j, line, strlen(line), path)) continue;
        const Json *dm = json_get(&j, "dev_map"), *l = json_get(&j, "loss");
        if (dm && dm->type == JSON_NUMBER) {
            if (first) *map0 = dm->num;
            *map1 = dm->num;
            first = 0;
        }
        if (l && l->type == JSON_NUMBER && n < 1000) losses[n++] = l->num;
        json_free(&j);
    }
    free(data);
    if (n >= 2 * k) {
        *loss0 = *loss1 = 0;
        for (int i = 0; i < k; i++) {
            *loss0 += losses[i] / k;
            *loss1 += losses[n - k + i] / k;
        }
    }
}

/* The step of best/ by the rule, from a log's dev evaluations: the first
 * candidate, then any strictly higher mAP; step 0 a candidate unless skip0. */
static int expected_best(const char *log, int skip0) {
    char *data;
    size_t len;
    if (read_file(log, &data, &len)) return -9;
    int best = -1;
    double bm = NAN;
    for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
        Json j;
        if (json_parse(&j, line, strlen(line), log)) continue;
        const Json *dm = json_get(&j, "dev_map"), *st = json_get(&j, "step");
        if (dm && st && dm->type == JSON_NUMBER && !(skip0 && st->num == 0) && (best < 0 || dm->num > bm)) {
            best = (int)st->num;
            bm = dm->num;
        }
        json_free(&j);
    }
    free(data);
    return best;
}

/* Model selection: the step-0 evaluation is a candidate for best/ unless
 * select_trained, when the model chosen is always one the run trained. A
 * learning rate of 0 in float keeps the weights, so step 0 is as good as any
 * (the evaluations tie but for rounding) and the rule decides. */
static void test_select_trained(const char *model) {
    char *train = subset("select.tsv", 16);
    const char *files[1] = {train};
    for (int sel = 0; sel < 2; sel++) {
        char name[32], lname[32];
        snprintf(name, sizeof name, "select%d", sel);
        snprintf(lname, sizeof lname, "select%d.jsonl", sel);
        char *out = tmp_path(name), *log = tmp_path(lname);
        TrainOptions o;
        run_options(&o, model, files, out);
        o.steps = 4;
        o.lr = 1e-300; /* 0 in float: the weights never move */
        o.dev_file = train;
        o.eval_every = 2;
        o.select_trained = sel;
        o.log_file = log;
        TrainReport r;
        int rc = train_run(&o, &r), want = expected_best(log, sel);
        CHECK(rc == 0 && r.best_step == want && (!sel || r.best_step > 0), "select_trained %d: best step %d (want %d)",
              sel, rc ? -9 : r.best_step, want);
        if (rc == 0) train_report_free(&r);
        free(out);
        free(log);
    }
    free(train);
}

static void test_learns(const char *model) {
    char *train = subset("learn.tsv", 24), *out = tmp_path("learn"), *log = tmp_path("learn.jsonl");
    const char *files[1] = {train};
    TrainOptions o;
    run_options(&o, model, files, out);
    o.steps = 36;
    o.sampling = SAMPLING_HYBRID;
    o.dev_file = train; /* mAP on the training pairs themselves */
    o.log_file = log;
    TrainReport r;
    double t0 = now_seconds();
    int rc = train_run(&o, &r);
    double secs = now_seconds() - t0;
    CHECK(rc == 0, "train_run: %s", rc ? xerr_msg() : "");
    double map0, map1, l0, l1;
    read_log(log, &map0, &map1, &l0, &l1, 6);
    CHECK_REPORT(l1 < 0.8 * l0, "training loss falls: first 6 steps %.3f, last 6 %.3f (%.1f s)", l0, l1, secs);
    CHECK_REPORT(map1 > map0 + 0.1, "mAP on the training pairs rises: %.3f -> %.3f", map0, map1);
    CHECK(rc == 0 && r.steps == 36 && r.best_step > 0 && r.best_dev_map >= map1 - 1e-12 && r.final_dir &&
              r.best_dir,
          "report: steps %d best step %d map %g", r.steps, r.best_step, r.best_dev_map);
    /* the final and best folders load as models */
    Xlmr m;
    CHECK(rc == 0 && xlmr_load(&m, r.final_dir) == 0, "final/ loads: %s", xerr_msg());
    if (rc == 0) xlmr_free(&m);
    CHECK(rc == 0 && xlmr_load(&m, r.best_dir) == 0, "best/ loads: %s", xerr_msg());
    if (rc == 0) xlmr_free(&m);
    /* only the last `keep` (2) checkpoints: here just the end */
    char *ck = path_join(out, "checkpoint-36");
    CHECK(is_dir(ck), "checkpoint-36 exists");
    free(ck);
    train_report_free(&r);
    free(train);
    free(out);
    free(log);
}

static int files_equal(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (read_file(a, &x, &nx)) return 0;
    if (read_file(b, &y, &ny)) {
        free(x);
        return 0;
    }
    int eq = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return eq;
}

/* N steps, interrupted, resumed for N more == 2N straight. */
static void test_resume(const char *model) {
    char *train = subset("resume.tsv", 12), *a = tmp_path("straight"), *b = tmp_path("resumed");
    const char *files[1] = {train};
    TrainOptions o;
    TrainReport r;
    run_options(&o, model, files, a);
    o.steps = 8;
    o.batch = 4;
    o.save_every = 2;
    o.keep = 1;
    CHECK(train_run(&o, &r) == 0, "straight run: %s", xerr_msg());
    train_report_free(&r);
    o.out_dir = b;
    o.stop_after = 3; /* stops between checkpoints: saves checkpoint-3 when it stops */
    CHECK(train_run(&o, &r) == 0 && r.steps == 3 && r.final_dir == NULL, "interrupted after 3: %s", xerr_msg());
    train_report_free(&r);
    o.stop_after = 0;
    /* without --resume the folder is refused */
    CHECK(train_run(&o, &r) == -1 && strstr(xerr_msg(), "pass --resume"), "existing run needs --resume: %s",
          xerr_msg());
    o.resume = 1;
    o.lr = 1e-3;
    CHECK(train_run(&o, &r) == -1 && strstr(xerr_msg(), "another --lr"), "resume with another --lr refused: %s",
          xerr_msg());
    o.lr = 2e-3;
    CHECK(train_run(&o, &r) == 0 && r.steps == 8, "resumed: %s", xerr_msg());
    train_report_free(&r);
    char *fa = path_join(a, "final/model.safetensors"), *fb = path_join(b, "final/model.safetensors");
    Xlmr ma, mb;
    char *da = path_join(a, "final"), *db = path_join(b, "final");
    int la = xlmr_load(&ma, da), lb = xlmr_load(&mb, db);
    CHECK(la == 0 && lb == 0, "both finals load");
    if (la == 0 && lb == 0) {
        double d = max_rel_diff(mb.params_memory, ma.params_memory, ma.n_params);
        CHECK_REPORT(d < 1e-5, "resume: 3 steps + 5 resumed == 8 straight, max rel diff %.1e%s", d,
                     files_equal(fa, fb) ? " (bit-identical)" : "");
        xlmr_free(&ma);
        xlmr_free(&mb);
    }
    /* keep 1: only the last checkpoint is left */
    char *c8 = path_join(b, "checkpoint-8"), *c6 = path_join(b, "checkpoint-6"), *c3 = path_join(b, "checkpoint-3");
    CHECK(is_dir(c8) && !path_exists(c6) && !path_exists(c3), "--keep 1 keeps checkpoint-8 only");
    free(c8);
    free(c6);
    free(c3);
    free(fa);
    free(fb);
    free(da);
    free(db);
    free(train);
    free(a);
    free(b);
}

/* Issue 16: the user deletes the newest checkpoint (to free disk) while the
 * run goes on; the next save must not need it (the tokenizer is the run's own). */
typedef struct {
    const char *out;
    int removed;
} DeleteCk;

static void delete_newest(void *user, int step, int total, double loss, double lr) {
    DeleteCk *d = user;
    if (step != 3) return;
    char *ck = path_join(d->out, "checkpoint-2");
    d->removed = is_dir(ck) && remove_tree(ck) == 0;
    free(ck);
}

static void test_delete_checkpoint(const char *model) {
    char *train = subset("del.tsv", 8), *out = tmp_path("del");
    const char *files[1] = {train};
    TrainOptions o;
    TrainReport r;
    run_options(&o, model, files, out);
    o.batch = 4;
    o.steps = 4;
    o.save_every = 2;
    o.keep = 1;
    DeleteCk d = {out, 0};
    o.on_step = delete_newest;
    o.user = &d;
    int rc = train_run(&o, &r);
    CHECK(d.removed, "checkpoint-2 deleted during step 3");
    CHECK(rc == 0 && r.final_dir, "the newest checkpoint deleted mid-run: the run still saves: %s", rc ? xerr_msg() : "");
    char *tok = path_join(out, "checkpoint-4/sentencepiece.bpe.model");
    CHECK(files_equal(tok, SPM), "the next checkpoint has the tokenizer");
    if (rc == 0) train_report_free(&r);
    free(tok);
    free(train);
    free(out);
}

static void test_errors(const char *model) {
    char *bad = tmp_path("bad.tsv"), *out = tmp_path("err");
    FILE *f = fopen(bad, "w");
    fputs("g1\ten\tq\tp\ng2\ten\tq\n", f);
    fclose(f);
    const char *files[1] = {bad};
    TrainOptions o;
    TrainReport r;
    run_options(&o, model, files, out);
    o.steps = 2;
    CHECK(train_run(&o, &r) == -1 && strstr(xerr_msg(), "bad.tsv:2: expected 4 or 5"), "bad TSV: %s", xerr_msg());
    char *poisoned = tmp_path("nanmodel"), *train = subset("nan.tsv", 8);
    files[0] = train;
    CHECK(make_model(poisoned, 3, 1) == 0, "poisoned model");
    o.model_dir = poisoned;
    o.batch = 4;
    CHECK(train_run(&o, &r) == -1 && strstr(xerr_msg(), "tensor encoder.layer.0.output.LayerNorm.weight has a non-finite value (nan) at index 0"),
          "a NaN weight is refused at load: %s", xerr_msg());
    remove_tree(out);
    CHECK(make_model(poisoned, 3, 2) == 0, "overflowing model");
    CHECK(train_run(&o, &r) == -1 && strstr(xerr_msg(), "step 1: the loss is NaN") && strstr(xerr_msg(), "none"),
          "NaN loss stops the run: %s", xerr_msg());
    char *ck = path_join(out, "checkpoint-1");
    CHECK(!path_exists(ck), "no checkpoint of the NaN step");
    o.model_dir = model;
    o.batch = 500;
    CHECK(train_run(&o, &r) == -1 && strstr(xerr_msg(), "fewer than the batch size"), "batch too big: %s",
          xerr_msg());
    o.batch = 4;
    o.max_len_passage = 1000;
    CHECK(train_run(&o, &r) == -1 && strstr(xerr_msg(), "limit"), "max len over the model's: %s", xerr_msg());
    free(ck);
    free(poisoned);
    free(train);
    free(bad);
    free(out);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/xlmr-test-train.XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_infonce_grad();
    test_optim();
    test_grad_cache();
    test_batch_fd();
    test_pairs_map();
    char *model = tmp_path("model");
    if (!path_exists(SPM)) {
        printf("note: %s missing: whole-run tests skipped\n", SPM);
    } else {
        CHECK(make_model(model, 7, 0) == 0, "tiny model: %s", xerr_msg());
        test_learns(model);
        test_select_trained(model);
        test_resume(model);
        test_errors(model);
        test_delete_checkpoint(model);
    }
    free(model);
    remove_tree(tmpdir);
    return test_summary("train");
}
