/* optim.c: see optim.h. */
#include "optim.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void adamw_config_default(AdamWConfig *c) {
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.01f;
}

void adamw_build(AdamW *a, size_t n) {
    /* calloc: untouched pages (a frozen embedding table) cost no memory */
    a->m = xcalloc(n ? n : 1, sizeof(float));
    a->v = xcalloc(n ? n : 1, sizeof(float));
    a->n = n;
    a->t = 0;
}

void adamw_free(AdamW *a) {
    free(a->m);
    free(a->v);
    memset(a, 0, sizeof *a);
}

void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float wd, float gscale,
                  const AdamWConfig *c, long long t) {
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps;
    const float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
    long long nn = (long long)n;
    OMP(omp parallel for simd if (parallel : nn > 65536))
    for (long long i = 0; i < nn; i++) {
        float gi = g[i] * gscale;
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        /* decoupled decay (torch.optim.AdamW): p *= 1 - lr wd, then the Adam step */
        p[i] -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i]);
    }
}

/* The word-embedding table (V,C): updated by rows, stored by rows. */
static size_t emb_rows(const Xlmr *m) { return (size_t)m->cfg.vocab; }
static size_t emb_dim(const Xlmr *m) { return (size_t)m->cfg.hidden; }
/* The moments of row r of the table. */
static float *emb_row(float *moments, const Xlmr *m, size_t r) {
    return moments + m->offsets[XLMR_T_WORD_EMB] + r * emb_dim(m);
}

void xlmr_adamw_step(Xlmr *m, AdamW *a, const AdamWConfig *c, float lr, float gscale, int freeze_embeddings) {
    a->t++;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        size_t off = m->offsets[i];
        float wd = xlmr_tensor_decays(i) ? c->weight_decay : 0.0f;
        float *p = m->params_memory + off, *g = m->grads_memory + off;
        if (xlmr_tensor_lazy_rows(i)) {
            if (freeze_embeddings) continue;
            size_t C = emb_dim(m);
            /* lazy rows: only those with gradient this step, in parallel by rows */
            OMP(omp parallel for if (m->n_touched > 64))
            for (int k = 0; k < m->n_touched; k++) {
                size_t r = (size_t)m->touched_rows[k] * C;
                adamw_update(p + r, g + r, a->m + off + r, a->v + off + r, C, lr, wd, gscale, c, a->t);
            }
            continue;
        }
        adamw_update(p, g, a->m + off, a->v + off, m->sizes[i], lr, wd, gscale, c, a->t);
    }
}

static double sumsq(const float *x, size_t n) {
    double s = 0;
    long long nn = (long long)n;
    /* simd: partial sums in vector lanes (a sum of squares in double: the
     * order changes only the last bits) */
    OMP(omp parallel for simd reduction(+ : s) if (parallel : nn > 65536))
    for (long long i = 0; i < nn; i++) s += (double)x[i] * x[i];
    return s;
}

double xlmr_grad_norm(const Xlmr *m, int freeze_embeddings) {
    double s = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        const float *g = m->grads_memory + m->offsets[i];
        if (xlmr_tensor_lazy_rows(i)) {
            if (freeze_embeddings) continue;
            size_t C = emb_dim(m);
            double rows = 0;
            OMP(omp parallel for reduction(+ : rows) if (m->n_touched > 64))
            for (int k = 0; k < m->n_touched; k++) rows += sumsq(g + (size_t)m->touched_rows[k] * C, C);
            s += rows;
            continue;
        }
        s += sumsq(g, m->sizes[i]);
    }
    return sqrt(s);
}

float clip_scale(double norm, double max_norm) {
    if (max_norm <= 0 || !(norm > max_norm)) return 1.0f;
    return (float)(max_norm / (norm + 1e-6));
}

double lr_schedule(int s, int total, int warmup, double peak) {
    if (s <= warmup && warmup > 0) return peak * s / warmup;
    if (total <= warmup) return peak;
    double r = (double)(total - s + 1) / (double)(total - warmup);
    return r > 0 ? peak * r : 0.0;
}

int warmup_steps(double warmup, int total) {
    if (warmup <= 0) return 0;
    double w = warmup < 1 ? warmup * total : warmup;
    int k = (int)floor(w + 0.5);
    return k > total ? total : k;
}

/* ------------------------------------------------------------------------- */
/* State file                                                                */

#define ADAMW_MAGIC 0x57444158u /* "XADW" */
#define ADAMW_VERSION 1

typedef struct {
    uint32_t magic, version;
    uint64_t n, rows, dim, n_stored_rows;
    int64_t t;
} AdamWHeader;

static int row_nonzero(const float *m, const float *v, size_t C) {
    for (size_t j = 0; j < C; j++)
        if (m[j] != 0.0f || v[j] != 0.0f) return 1;
    return 0;
}

int xlmr_adamw_save(const AdamW *a, const Xlmr *m, const char *path) {
    if (a->n != m->n_params) return xerr("%s: optimizer has %zu values, model %zu", path, a->n, m->n_params);
    size_t V = emb_rows(m), C = emb_dim(m), E = m->offsets[XLMR_T_WORD_EMB] + m->sizes[XLMR_T_WORD_EMB];
    IntVec rows = {0};
    for (size_t r = 0; r < V; r++)
        if (row_nonzero(emb_row(a->m, m, r), emb_row(a->v, m, r), C)) iv_push(&rows, (int)r);
    AdamWHeader h = {ADAMW_MAGIC, ADAMW_VERSION, a->n, V, C, rows.n, a->t};
    AtomicFile af;
    FILE *f = atomic_open(&af, path);
    if (!f) {
        iv_free(&rows);
        return -1;
    }
    int ok = fwrite(&h, sizeof h, 1, f) == 1;
    if (ok && rows.n) ok = fwrite(rows.data, sizeof(int), rows.n, f) == rows.n;
    for (size_t k = 0; k < rows.n && ok; k++)
        ok = fwrite(emb_row(a->m, m, (size_t)rows.data[k]), sizeof(float), C, f) == C &&
             fwrite(emb_row(a->v, m, (size_t)rows.data[k]), sizeof(float), C, f) == C;
    /* the dense rest: everything after the table (which the layout puts first, at offset 0) */
    size_t rest = a->n - E;
    if (ok && m->offsets[XLMR_T_WORD_EMB] != 0) ok = 0;
    if (ok && rest) ok = fwrite(a->m + E, sizeof(float), rest, f) == rest && fwrite(a->v + E, sizeof(float), rest, f) == rest;
    iv_free(&rows);
    if (!ok) {
        atomic_abort(&af);
        return xerr("%s: write failed", path);
    }
    return atomic_commit(&af);
}

int xlmr_adamw_load(AdamW *a, const Xlmr *m, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return xerr("%s: cannot open", path);
    AdamWHeader h;
    size_t V = emb_rows(m), C = emb_dim(m), E = m->offsets[XLMR_T_WORD_EMB] + m->sizes[XLMR_T_WORD_EMB];
    int rc = 0;
    if (fread(&h, sizeof h, 1, f) != 1) rc = xerr("%s: truncated optimizer state", path);
    else if (h.magic != ADAMW_MAGIC) rc = xerr("%s: not an optimizer state (bad magic)", path);
    else if (h.version != ADAMW_VERSION) rc = xerr("%s: optimizer state version %u, expected %d", path, h.version, ADAMW_VERSION);
    else if (h.n != m->n_params || h.rows != V || h.dim != C || h.n_stored_rows > V || h.t < 0)
        rc = xerr("%s: optimizer state is for another model (%llu values, %llu x %llu table; model %zu, %zu x %zu)",
                  path, (unsigned long long)h.n, (unsigned long long)h.rows, (unsigned long long)h.dim,
                  m->n_params, V, C);
    if (rc) {
        fclose(f);
        return -1;
    }
    adamw_build(a, m->n_params);
    a->t = h.t;
    size_t nr = (size_t)h.n_stored_rows;
    int *rows = xmalloc((nr ? nr : 1) * sizeof(int));
    if (nr && fread(rows, sizeof(int), nr, f) != nr) rc = xerr("%s: truncated optimizer state", path);
    for (size_t k = 0; k < nr && rc == 0; k++) {
        if (rows[k] < 0 || (size_t)rows[k] >= V) {
            rc = xerr("%s: corrupt optimizer state (row %d)", path, rows[k]);
            break;
        }
        float *pm = emb_row(a->m, m, (size_t)rows[k]), *pv = emb_row(a->v, m, (size_t)rows[k]);
        if (fread(pm, sizeof(float), C, f) != C || fread(pv, sizeof(float), C, f) != C)
            rc = xerr("%s: truncated optimizer state", path);
    }
    size_t rest = a->n - E;
    if (rc == 0 && rest && (fread(a->m + E, sizeof(float), rest, f) != rest || fread(a->v + E, sizeof(float), rest, f) != rest))
        rc = xerr("%s: truncated optimizer state", path);
    if (rc == 0 && fgetc(f) != EOF) rc = xerr("%s: trailing bytes in the optimizer state", path);
    free(rows);
    fclose(f);
    if (rc) adamw_free(a);
    return rc;
}
