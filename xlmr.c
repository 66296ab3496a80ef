/* xlmr.c: the XLM-RoBERTa encoder (see xlmr.h), forward and backward, in the
 * style of llm.c's train_gpt2.c.
 *
 * Architecture (transformers.XLMRobertaModel, eval mode = no dropout):
 *   pos  = pad + cumsum(ids != pad) * (ids != pad)     (pads get pad, tokens pad+1, pad+2, ...)
 *   h0   = drop(LN(word[ids] + pos_emb[pos] + type_emb[0]))
 *   per layer (post-LN, separate Q/K/V, masked keys skipped, exact erf GELU):
 *     a    = softmax(Q Kᵀ / sqrt(hs)) over keys with ids != pad, then drop
 *     res1 = drop(ctx Waoᵀ + bao) + x;           h1 = LN1(res1)
 *     res2 = drop(gelu(h1 Wfcᵀ + bfc) Wfoᵀ + bfo) + h1;  out = LN2(res2)
 *   pooled = mean over non-pad positions (<s> and </s> included) or the state of token 0
 *   out    = pooled / max(||pooled||, 1e-12)
 * Dropout masks (train mode only) are a pure function of (seed, seq_base + b,
 * layer, site, position): site 0 the embeddings, 1 the attention
 * probabilities (position (head, i, j)), 2 the attention output, 3 the FFN
 * output (position (t, c)). One hash64 gives four 16-bit uniforms (positions
 * 4k..4k+3). Neither chunking, thread count nor padding length changes a mask.
 *
 * Memory: one flat parameter buffer in XlmrParams order; the per-layer tensors
 * are stacked (L, ...) so tensor i of layer l is params_memory + offsets[i] +
 * l * sizes[i] / L. Gradients use the same layout. Word-embedding gradient rows
 * are tracked (touched_rows) so nothing dense over the vocabulary runs per step.
 * XlmrActs keeps, per layer, exactly what backward needs: Q, K, V, ctx, the
 * two LayerNorm inputs with their mean/rstd, h1, the FFN pre-activation and
 * the layer output; the attention probabilities (pre-dropout) only while they
 * are no larger than ctx (NH T <= C), else backward recomputes them from Q and
 * K (base, chunk 16 x 256: 600 MB less for ~1.5% more FLOPs). GELU outputs
 * and dropout masks are recomputed in backward. Inference (xlmr_embed) keeps
 * one layer of scratch and one (T,T) score block per thread.
 *
 * Speed (issue 7): biases, dropout, residual and LayerNorm run as one pass per
 * row after each GEMM (residual_layernorm_forward, bias + GELU); backward
 * writes its outputs instead of zeroing and accumulating. erf and exp are
 * branch-free polynomials (erf_approx, exp_approx) that `omp simd` vectorises:
 * GELU and softmax were a fifth of a training step with libm's erff/expf.
 * -DXLMR_PROFILE prints the wall time of each kernel at exit.
 *
 * Parallelism: the GEMMs come from tensor.h (parallel inside); attention runs
 * in parallel over (batch, head) with serial GEMMs inside; elementwise kernels
 * over rows. Results do not depend on the thread count beyond GEMM rounding. */
#include "xlmr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif
/* `omp simd` is a request: under the sanitizers clang cannot vectorise and
 * would warn at every such loop. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

typedef void (*GemmFn)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                       int);

/* -DXLMR_PROFILE: wall time per kernel, printed to stderr at exit (serial
 * call sites only; a profile of the whole step, not of threads). */
#ifdef XLMR_PROFILE
#include <stdio.h>
enum { PROF_MAX = 48 };
static const char *prof_name[PROF_MAX];
static double prof_sec[PROF_MAX];
static long prof_calls[PROF_MAX];
static void prof_print(void) {
    double tot = 0;
    for (int i = 0; i < PROF_MAX && prof_name[i]; i++) tot += prof_sec[i];
    for (int i = 0; i < PROF_MAX && prof_name[i]; i++)
        fprintf(stderr, "prof %-30s %9.3f s %5.1f%% %8ld calls\n", prof_name[i], prof_sec[i],
                100 * prof_sec[i] / (tot > 0 ? tot : 1), prof_calls[i]);
}
static void prof_add(const char *name, double s) {
    int i = 0;
    while (i < PROF_MAX - 1 && prof_name[i] && strcmp(prof_name[i], name)) i++;
    if (!prof_name[0]) atexit(prof_print);
    prof_name[i] = name;
    prof_sec[i] += s;
    prof_calls[i]++;
}
#define PROF(name, stmt)                         \
    do {                                         \
        double prof_t0_ = now_seconds();         \
        stmt;                                    \
        prof_add(name, now_seconds() - prof_t0_); \
    } while (0)
#else
#define PROF(name, stmt) stmt
#endif

/* ---------------------------------------------------------------------------
 * Parameter table. */

static const char *const tensor_names[XLMR_NUM_TENSORS] = {
    "embeddings.word_embeddings.weight",
    "embeddings.position_embeddings.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.LayerNorm.weight",
    "embeddings.LayerNorm.bias",
    "encoder.layer.%d.attention.self.query.weight",
    "encoder.layer.%d.attention.self.query.bias",
    "encoder.layer.%d.attention.self.key.weight",
    "encoder.layer.%d.attention.self.key.bias",
    "encoder.layer.%d.attention.self.value.weight",
    "encoder.layer.%d.attention.self.value.bias",
    "encoder.layer.%d.attention.output.dense.weight",
    "encoder.layer.%d.attention.output.dense.bias",
    "encoder.layer.%d.attention.output.LayerNorm.weight",
    "encoder.layer.%d.attention.output.LayerNorm.bias",
    "encoder.layer.%d.intermediate.dense.weight",
    "encoder.layer.%d.intermediate.dense.bias",
    "encoder.layer.%d.output.dense.weight",
    "encoder.layer.%d.output.dense.bias",
    "encoder.layer.%d.output.LayerNorm.weight",
    "encoder.layer.%d.output.LayerNorm.bias",
};

const char *xlmr_tensor_name(int i) { return i >= 0 && i < XLMR_NUM_TENSORS ? tensor_names[i] : NULL; }
int xlmr_tensor_is_layered(int i) { return i >= 5 && i < XLMR_NUM_TENSORS; }

/* 1 for matrices and embedding tables; 0 for biases and LayerNorm weights/biases. */
int xlmr_tensor_decays(int i) {
    static const unsigned char decays[XLMR_NUM_TENSORS] = {1, 1, 1, 0, 0, 1, 0, 1, 0, 1, 0,
                                                           1, 0, 0, 0, 1, 0, 1, 0, 0, 0};
    return i >= 0 && i < XLMR_NUM_TENSORS ? decays[i] : 0;
}

int xlmr_tensor_shape(const XlmrConfig *c, int i, size_t shape[2]) {
    size_t C = (size_t)c->hidden, F = (size_t)c->ffn;
    switch (i) {
    case 0: shape[0] = (size_t)c->vocab; shape[1] = C; return 2;
    case 1: shape[0] = (size_t)c->max_pos; shape[1] = C; return 2;
    case 2: shape[0] = (size_t)c->type_vocab; shape[1] = C; return 2;
    case 5: case 7: case 9: case 11: shape[0] = C; shape[1] = C; return 2;
    case 15: shape[0] = F; shape[1] = C; return 2;
    case 16: shape[0] = F; return 1;
    case 17: shape[0] = C; shape[1] = F; return 2;
    default: shape[0] = C; return 1;
    }
}

void xlmr_config_default(XlmrConfig *cfg) {
    *cfg = (XlmrConfig){.n_layers = 12, .hidden = 768, .n_heads = 12, .ffn = 3072, .vocab = 0, .max_pos = 514,
                        .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f, .hidden_dropout = 0.1f, .attn_dropout = 0.1f};
}

static const struct {
    const char *name;
    int layers, hidden, heads, ffn;
} presets[] = {
    {"nano", 1, 32, 1, 128},    {"micro", 2, 64, 2, 256},      {"tiny", 2, 128, 2, 512},
    {"mini", 4, 256, 4, 1024},  {"small", 6, 384, 6, 1536},    {"base", 12, 768, 12, 3072},
    {"large", 24, 1024, 16, 4096},
};

int xlmr_preset(XlmrConfig *cfg, const char *name) {
    xlmr_config_default(cfg);
    for (size_t i = 0; i < sizeof presets / sizeof *presets; i++)
        if (!strcmp(name, presets[i].name)) {
            cfg->n_layers = presets[i].layers;
            cfg->hidden = presets[i].hidden;
            cfg->n_heads = presets[i].heads;
            cfg->ffn = presets[i].ffn;
            return 0;
        }
    return xerr("unknown preset '%s' (nano, micro, tiny, mini, small, base, large)", name);
}

int xlmr_pooling_parse(const char *name) {
    if (!strcmp(name, "mean")) return POOL_MEAN;
    if (!strcmp(name, "cls")) return POOL_CLS;
    return xerr("unknown pooling '%s' (mean or cls)", name);
}

int xlmr_max_len(const XlmrConfig *c) { return c->max_pos - c->pad_id - 1; }

int xlmr_config_check(const XlmrConfig *c, const char *name) {
    if (c->n_layers < 1 || c->hidden < 1 || c->n_heads < 1 || c->ffn < 1 || c->vocab < 4 || c->max_pos < 3 ||
        c->type_vocab < 1)
        return xerr("%s: sizes must be positive (layers, hidden, heads, ffn, vocab >= 4, max_pos >= 3, "
                    "type_vocab)", name);
    if (c->hidden % c->n_heads != 0)
        return xerr("%s: num_attention_heads (%d) does not divide hidden_size (%d)", name, c->n_heads, c->hidden);
    if (c->pad_id < 0 || c->pad_id >= c->vocab)
        return xerr("%s: pad_token_id %d outside the vocabulary (%d)", name, c->pad_id, c->vocab);
    if (c->pad_id + 2 >= c->max_pos)
        return xerr("%s: max_position_embeddings (%d) leaves no room for tokens after pad_token_id (%d)", name,
                    c->max_pos, c->pad_id);
    if (!(c->ln_eps > 0) || !(c->hidden_dropout >= 0 && c->hidden_dropout < 1) ||
        !(c->attn_dropout >= 0 && c->attn_dropout < 1))
        return xerr("%s: layer_norm_eps must be > 0 and dropout probabilities in [0, 1)", name);
    /* 2^34 floats = 64 GiB: anything larger is a corrupt config, not a model */
    double n = (double)c->vocab * c->hidden + (double)c->max_pos * c->hidden +
               (double)c->n_layers * (4.0 * c->hidden * c->hidden + 2.0 * c->hidden * c->ffn);
    if (n > 17179869184.0) return xerr("%s: the configuration implies %.3g parameters, too many", name, n);
    return 0;
}

static void point_tensors(XlmrParams *p, float *mem, const size_t *offsets) {
    float **ptrs[XLMR_NUM_TENSORS] = {&p->word_emb, &p->pos_emb, &p->type_emb, &p->emb_ln_w, &p->emb_ln_b,
                                      &p->q_w, &p->q_b, &p->k_w, &p->k_b, &p->v_w, &p->v_b, &p->ao_w, &p->ao_b,
                                      &p->ln1_w, &p->ln1_b, &p->fc_w, &p->fc_b, &p->fo_w, &p->fo_b,
                                      &p->ln2_w, &p->ln2_b};
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) *ptrs[i] = mem + offsets[i];
}

int xlmr_build(Xlmr *m, const XlmrConfig *cfg) {
    memset(m, 0, sizeof *m);
    if (xlmr_config_check(cfg, "config") != 0) return -1;
    m->cfg = *cfg;
    size_t off = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        size_t shape[2] = {1, 1};
        int nd = xlmr_tensor_shape(cfg, i, shape);
        m->sizes[i] = shape[0] * (nd == 2 ? shape[1] : 1) * (size_t)(xlmr_tensor_is_layered(i) ? cfg->n_layers : 1);
        m->offsets[i] = off;
        off += m->sizes[i];
    }
    m->n_params = off;
    m->params_memory = xcalloc(off, sizeof(float));
    point_tensors(&m->params, m->params_memory, m->offsets);
    return 0;
}

void xlmr_init_random(Xlmr *m, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    const XlmrConfig *c = &m->cfg;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        float *t = m->params_memory + m->offsets[i];
        size_t shape[2];
        int nd = xlmr_tensor_shape(c, i, shape);
        int is_ln_w = i == 3 || i == 13 || i == 19;
        for (size_t j = 0; j < m->sizes[i]; j++)
            t[j] = nd == 2 ? 0.02f * rng_normal(&r) : is_ln_w ? 1.0f : 0.0f;
    }
    /* nn.Embedding(padding_idx=pad): HF zeroes the padding rows */
    memset(m->params.word_emb + (size_t)c->pad_id * c->hidden, 0, (size_t)c->hidden * sizeof(float));
    memset(m->params.pos_emb + (size_t)c->pad_id * c->hidden, 0, (size_t)c->hidden * sizeof(float));
}

void xlmr_free(Xlmr *m) {
    free(m->params_memory);
    free(m->grads_memory);
    free(m->touched_rows);
    free(m->row_touched);
    memset(m, 0, sizeof *m);
}

int xlmr_grads_alloc(Xlmr *m) {
    if (m->grads_memory) return 0;
    m->grads_memory = xcalloc(m->n_params, sizeof(float));
    point_tensors(&m->grads, m->grads_memory, m->offsets);
    m->touched_rows = xcalloc((size_t)m->cfg.vocab, sizeof(int));
    m->row_touched = xcalloc((size_t)m->cfg.vocab, 1);
    m->n_touched = 0;
    return 0;
}

void xlmr_zero_grad(Xlmr *m) {
    if (!m->grads_memory) return;
    size_t C = (size_t)m->cfg.hidden;
    for (int r = 0; r < m->n_touched; r++) {
        memset(m->grads.word_emb + (size_t)m->touched_rows[r] * C, 0, C * sizeof(float));
        m->row_touched[m->touched_rows[r]] = 0;
    }
    m->n_touched = 0;
    /* everything after the word table is dense and comparatively small */
    memset(m->grads_memory + m->offsets[1], 0, (m->n_params - m->offsets[1]) * sizeof(float));
}

static GemmFn gemm_of(const Xlmr *m) { return m->use_ref_gemm ? sgemm_ref : m->use_bf16 ? sgemm_bf16 : sgemm; }

/* ---------------------------------------------------------------------------
 * Kernels. Each *_forward has its *_backward; backward kernels accumulate (+=)
 * into parameter gradients. Shapes: N = B*T rows. */

/* Position ids as HF's create_position_ids_from_input_ids. */
static void positions_forward(int *pos, const int *ids, int B, int T, int pad) {
    for (int b = 0; b < B; b++) {
        int n = 0;
        for (int t = 0; t < T; t++) {
            int real = ids[b * T + t] != pad;
            n += real;
            pos[b * T + t] = real ? pad + n : pad;
        }
    }
}

static void embeddings_forward(float *out, const int *ids, const int *pos, const float *word, const float *pemb,
                               const float *type0, int N, int C) { // out (N,C)
    OMP(omp parallel for)
    for (int n = 0; n < N; n++) {
        const float *w = word + (size_t)ids[n] * C, *p = pemb + (size_t)pos[n] * C;
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = w[c] + p[c] + type0[c];
    }
}

static void embeddings_backward(Xlmr *m, const float *dout, const int *ids, const int *pos, int N) {
    int C = m->cfg.hidden, pad = m->cfg.pad_id;
    float *dword = m->grads.word_emb, *dpos = m->grads.pos_emb, *dtype = m->grads.type_emb;
    /* serial: many tokens share rows; it is O(N*C), small next to the GEMMs */
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        int id = ids[n];
        if (id == pad) continue; /* padding_idx rows (word and position) never learn */
        if (!m->row_touched[id]) {
            m->row_touched[id] = 1;
            m->touched_rows[m->n_touched++] = id;
        }
        float *dw = dword + (size_t)id * C, *dp = dpos + (size_t)pos[n] * C;
        for (int c = 0; c < C; c++) {
            dw[c] += d[c];
            dp[c] += d[c];
            dtype[c] += d[c];
        }
    }
}

/* Column sums run over a fixed number of row blocks, each summed along its rows
 * (contiguous, vectorised) and then added in block order: the result does not
 * depend on the thread count. */
enum { ROW_BLOCKS = 16 };

/* db (OC) += column sums of dout (N,OC) */
static void colsum_accumulate(float *db, const float *dout, int N, int OC) {
    float *part = xcalloc((size_t)ROW_BLOCKS * OC, sizeof(float));
    OMP(omp parallel for)
    for (int r = 0; r < ROW_BLOCKS; r++) {
        float *p = part + (size_t)r * OC;
        for (int n = (int)((int64_t)N * r / ROW_BLOCKS); n < (int)((int64_t)N * (r + 1) / ROW_BLOCKS); n++) {
            const float *d = dout + (size_t)n * OC;
            OMP(omp simd)
            for (int o = 0; o < OC; o++) p[o] += d[o];
        }
    }
    for (int r = 0; r < ROW_BLOCKS; r++)
        for (int o = 0; o < OC; o++) db[o] += part[(size_t)r * OC + o];
    free(part);
}

/* out (N,OC) = inp (N,C) · w (OC,C)ᵀ + b; b may be NULL (a later kernel adds it) */
static void matmul_forward(GemmFn g, float *out, const float *inp, const float *w, const float *b, int N, int C,
                           int OC) {
    g(0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC);
    if (!b) return;
    OMP(omp parallel for)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * OC;
        OMP(omp simd)
        for (int j = 0; j < OC; j++) o[j] += b[j];
    }
}

/* dinp (N,C) = dout·w (+= when acc); dw (OC,C) += doutᵀ·inp; db += column sums of dout.
 * dinp may be inp when acc = 0 (the FFN's G buffer becomes dG). */
static void matmul_backward(GemmFn g, float *dinp, int acc, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    g(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C); /* first: dinp may overwrite inp (acc = 0) */
    if (dinp) g(0, 0, N, C, OC, 1.0f, dout, OC, w, C, acc ? 1.0f : 0.0f, dinp, C);
    colsum_accumulate(db, dout, N, OC);
}

/* ---- special functions for the elementwise kernels ----
 * libm's erff/expf are calls the compiler cannot vectorise; these are plain
 * arithmetic (no calls, no branches) so `omp simd` loops run 16 lanes at once
 * (simdlen(16): gcc otherwise picks 8-lane AVX2 vectors on AVX-512 CPUs).
 * Accuracy against double erf/exp (steps of 1e-5 over [-12, 12], exp over
 * [-87, 88]): exp_approx relative error < 1.2e-7, erf_approx absolute error < 1.7e-7, GELU
 * absolute error 4.5e-7, the same as with libm's erff (float rounding of
 * 0.5 x (1 + erf) dominates). */

/* Inlined into the `omp simd` loops whatever gcc's size heuristics say: an
 * out-of-line call there is one scalar call per element, not a vector. */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* Fused multiply-add where the CPU has one (-std=c99 never contracts a * b + c). */
#ifdef __FMA__
#define MADD(a, b, c) fmaf(a, b, c)
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/* e^x for x in [-87, 88] (clamped outside; NaN gives e^-87): Cephes' expf. */
static ALWAYS_INLINE float exp_approx(float x) {
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln 2) */
    float r = MADD(n, -0.693359375f, x);                               /* ln 2 in two parts */
    r = MADD(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = MADD(p, r, 1.3981999507e-3f);
    p = MADD(p, r, 8.3334519073e-3f);
    p = MADD(p, r, 4.1665795894e-2f);
    p = MADD(p, r, 1.6666665459e-1f);
    p = MADD(p, r, 5.0000001201e-1f);
    float e = MADD(p, r * r, r + 1.0f);
    int32_t bits = ((int32_t)n + 127) * (1 << 23); /* 2^n: n in [-126, 127] */
    float s;
    memcpy(&s, &bits, sizeof s);
    return e * s;
}

/* erf: Taylor series below |x| = 0.5, else 1 - erfc with Numerical Recipes'
 * Chebyshev fit of erfc (relative error < 1.2e-7). */
static ALWAYS_INLINE float erf_approx(float x) {
    float z = x * x, a = fabsf(x);
    float p = MADD(z, -0.000854832702f, 0.00522397762f); /* 2/sqrt(pi) (-1)^n / (n! (2n+1)) */
    p = MADD(p, z, -0.0268661707f);
    p = MADD(p, z, 0.112837917f);
    p = MADD(p, z, -0.376126389f);
    p = MADD(p, z, 1.12837917f);
    float small = x * p;
    float t = 1.0f / MADD(0.5f, a, 1.0f);
    float q = MADD(t, 0.17087277f, -0.82215223f);
    q = MADD(q, t, 1.48851587f);
    q = MADD(q, t, -1.13520398f);
    q = MADD(q, t, 0.27886807f);
    q = MADD(q, t, -0.18628806f);
    q = MADD(q, t, 0.09678418f);
    q = MADD(q, t, 0.37409196f);
    q = MADD(q, t, 1.00002368f);
    q = MADD(q, t, -1.26551223f);
    float big = 1.0f - t * exp_approx(q - z);
    big = x < 0.0f ? -big : big;
    return a < 0.5f ? small : big;
}

/* x (N,F) += bias (F) (when bias is not NULL); out (N,F) = gelu(x), exact: 0.5 x (1 + erf(x / sqrt 2)) */
static void gelu_forward(float *out, float *x, const float *bias, int N, int F) {
    OMP(omp parallel for)
    for (int n = 0; n < N; n++) {
        float *xr = x + (size_t)n * F, *o = out + (size_t)n * F;
        if (bias) {
            OMP(omp simd)
            for (int f = 0; f < F; f++) xr[f] += bias[f];
        }
        OMP(omp simd simdlen(16))
        for (int f = 0; f < F; f++) o[f] = 0.5f * xr[f] * (1.0f + erf_approx(xr[f] * 0.70710678118654752f));
    }
}

/* For backward: out = gelu(x) (recomputed rather than kept) and its derivative
 * dg = Φ(x) + x φ(x), sharing one erf; all (N). */
static void gelu_recompute(float *out, float *dg, const float *x, size_t N) {
    OMP(omp parallel for simd simdlen(16))
    for (size_t i = 0; i < N; i++) {
        float cdf = 0.5f * (1.0f + erf_approx(x[i] * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * exp_approx(-0.5f * x[i] * x[i]);
        out[i] = x[i] * cdf;
        dg[i] = cdf + x[i] * pdf;
    }
}

/* dinp (N) = dout * gelu'(x), the derivative from gelu_recompute (dinp may be dout) */
static void gelu_backward(float *dinp, const float *dg, const float *dout, size_t N) {
    OMP(omp parallel for simd)
    for (size_t i = 0; i < N; i++) dinp[i] = dout[i] * dg[i];
}

/* ---- dropout: counter-based masks ---- */

typedef struct {
    int on;
    uint64_t seed;
    int seq_base;
    float p, scale;     /* drop probability, 1/(1-p) */
    uint32_t threshold; /* drop when the 16-bit uniform is below it */
} Drop;

static Drop drop_make(const XlmrDropout *d, float p) {
    Drop r = {0, 0, 0, p, 1.0f, 0};
    if (d && d->train && p > 0) {
        r.on = 1;
        r.seed = d->seed;
        r.seq_base = d->seq_base;
        r.scale = 1.0f / (1.0f - p);
        r.threshold = (uint32_t)(p * 65536.0f + 0.5f);
    }
    return r;
}

static uint64_t drop_key(const Drop *d, int b, int layer, int site) {
    return hash_combine(hash_combine(hash_combine(d->seed, (uint64_t)(d->seq_base + b)), (uint64_t)layer),
                        (uint64_t)site);
}

/* util.c's hash64 (splitmix64's finaliser), inline so the mask loop vectorises. */
static ALWAYS_INLINE uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* out[i] = x[i] * mask(key, pos0 + i) * scale for i < n (out may be x). The
 * uniform of position p is 16-bit lane p % 4 of hash64(key + p / 4). */
static void drop_row(const Drop *d, uint64_t key, size_t pos0, float *out, const float *x, size_t n) {
    size_t i = 0;
    while (i < n && (pos0 + i) % 4) { /* up to the first whole group of 4 */
        size_t p = pos0 + i;
        out[i] = (uint32_t)(mix64(key + p / 4) >> (16 * (p % 4)) & 0xffff) < d->threshold ? 0.0f : x[i] * d->scale;
        i++;
    }
    /* whole groups, 256 positions at a time: hashes to 16-bit uniforms, then the mask */
    uint32_t thr = d->threshold;
    float scale = d->scale;
    for (; i + 4 <= n;) {
        size_t g0 = (pos0 + i) / 4, ng = (n - i) / 4 < 64 ? (n - i) / 4 : 64;
        uint16_t u[256];
        OMP(omp simd)
        for (size_t g = 0; g < ng; g++) {
            uint64_t h = mix64(key + g0 + g);
            u[4 * g] = (uint16_t)h;
            u[4 * g + 1] = (uint16_t)(h >> 16);
            u[4 * g + 2] = (uint16_t)(h >> 32);
            u[4 * g + 3] = (uint16_t)(h >> 48);
        }
        float *o = out + i;
        const float *xi = x + i;
        OMP(omp simd)
        for (size_t k = 0; k < 4 * ng; k++) {
            float v = xi[k] * scale; /* loaded unconditionally: a select, not a branch */
            o[k] = u[k] < thr ? 0.0f : v;
        }
        i += 4 * ng;
    }
    for (; i < n; i++) {
        size_t p = pos0 + i;
        out[i] = (uint32_t)(mix64(key + p / 4) >> (16 * (p % 4)) & 0xffff) < d->threshold ? 0.0f : x[i] * d->scale;
    }
}

/* out (B,T,C) = x with dropout (out may be x). */
static void dropout_forward(float *out, const float *x, const Drop *d, int layer, int site, int B, int T, int C) {
    if (!d->on) {
        if (out != x) memcpy(out, x, (size_t)B * T * C * sizeof(float));
        return;
    }
    OMP(omp parallel for)
    for (int b = 0; b < B; b++) {
        uint64_t key = drop_key(d, b, layer, site);
        size_t o = (size_t)b * T * C;
        /* position t*C + c: independent of T, like the attention masks */
        drop_row(d, key, 0, out + o, x + o, (size_t)T * C);
    }
}

/* Dropout is linear: its backward is the same masked scaling. */
static void dropout_backward(float *dinp, const float *dout, const Drop *d, int layer, int site, int B, int T,
                             int C) {
    dropout_forward(dinp, dout, d, layer, site, B, T, C);
}

/* ---- LayerNorm, fused with the residual branch that feeds it ---- */

/* o (C) = LN(x) with w, b; writes its mean and 1/std. Sums in double. */
static void layernorm_row(float *o, float *mean, float *rstd, const float *x, const float *w, const float *b, int C,
                          float eps) {
    double s = 0, v = 0;
    OMP(omp simd reduction(+ : s))
    for (int c = 0; c < C; c++) s += x[c];
    float mu = (float)(s / C);
    OMP(omp simd reduction(+ : v))
    for (int c = 0; c < C; c++) v += (double)(x[c] - mu) * (x[c] - mu);
    float rs = (float)(1.0 / sqrt(v / C + eps));
    OMP(omp simd)
    for (int c = 0; c < C; c++) o[c] = (x[c] - mu) * rs * w[c] + b[c];
    *mean = mu;
    *rstd = rs;
}

static void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w,
                              const float *b, int N, int C, float eps) { // out (N,C)
    OMP(omp parallel for)
    for (int n = 0; n < N; n++)
        layernorm_row(out + (size_t)n * C, mean + n, rstd + n, inp + (size_t)n * C, w, b, C, eps);
}

/* res (B,T,C) = drop(y + bias) + x and out = LN(res): the residual branch of a
 * post-LN block, one pass over each row while it is in cache. The mask is
 * dropout_forward's (position t C + c of sequence b). */
static void residual_layernorm_forward(float *out, float *res, float *mean, float *rstd, const float *y,
                                       const float *bias, const float *x, const float *w, const float *b,
                                       const Drop *d, int layer, int site, int B, int T, int C, float eps) {
    OMP(omp parallel for)
    for (int n = 0; n < B * T; n++) {
        float *r = res + (size_t)n * C;
        const float *yr = y + (size_t)n * C, *xr = x + (size_t)n * C;
        OMP(omp simd)
        for (int c = 0; c < C; c++) r[c] = yr[c] + bias[c];
        if (d->on) drop_row(d, drop_key(d, n / T, layer, site), (size_t)(n % T) * C, r, r, (size_t)C);
        OMP(omp simd)
        for (int c = 0; c < C; c++) r[c] += xr[c];
        layernorm_row(out + (size_t)n * C, mean + n, rstd + n, r, w, b, C, eps);
    }
}

/* Backward of out = LN(inp): dinp (B,T,C) overwritten; dbranch (B,T,C), when
 * not NULL, = dropout_backward of dinp (the gradient entering the residual
 * branch that residual_layernorm_forward dropped); dw, db +=. */
static void layernorm_backward(float *dinp, float *dbranch, float *dw, float *db, const float *dout,
                               const float *inp, const float *w, const float *mean, const float *rstd,
                               const Drop *d, int layer, int site, int B, int T, int C) {
    int N = B * T;
    OMP(omp parallel for)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
        float mu = mean[n], rs = rstd[n];
        double dm = 0, dnm = 0;
        OMP(omp simd reduction(+ : dm, dnm))
        for (int c = 0; c < C; c++) {
            float dnorm = g[c] * w[c];
            dm += dnorm;
            dnm += (double)dnorm * (x[c] - mu) * rs;
        }
        float dmf = (float)(dm / C), dnmf = (float)(dnm / C);
        float *di = dinp + (size_t)n * C;
        OMP(omp simd)
        for (int c = 0; c < C; c++) di[c] = (g[c] * w[c] - dmf - (x[c] - mu) * rs * dnmf) * rs;
        if (!dbranch) continue;
        float *br = dbranch + (size_t)n * C;
        if (d->on)
            drop_row(d, drop_key(d, n / T, layer, site), (size_t)(n % T) * C, br, di, (size_t)C);
        else
            memcpy(br, di, (size_t)C * sizeof(float));
    }
    /* parameter gradients: partial sums per row block (as colsum_accumulate) */
    float *part = xcalloc((size_t)ROW_BLOCKS * 2 * C, sizeof(float));
    OMP(omp parallel for)
    for (int r = 0; r < ROW_BLOCKS; r++) {
        float *gw = part + (size_t)r * 2 * C, *gb = gw + C;
        for (int n = (int)((int64_t)N * r / ROW_BLOCKS); n < (int)((int64_t)N * (r + 1) / ROW_BLOCKS); n++) {
            const float *x = inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float mu = mean[n], rs = rstd[n];
            OMP(omp simd)
            for (int c = 0; c < C; c++) {
                gw[c] += g[c] * (x[c] - mu) * rs;
                gb[c] += g[c];
            }
        }
    }
    for (int r = 0; r < ROW_BLOCKS; r++)
        for (int c = 0; c < C; c++) {
            dw[c] += part[(size_t)r * 2 * C + c];
            db[c] += part[(size_t)r * 2 * C + C + c];
        }
    free(part);
}

/* ---- attention ---- */

/* out (T,T) = the probabilities p (T,T) of head h with dropout. Mask position
 * (h, i, j) = h 2^40 + i 2^20 + j: independent of T, so a sequence gets the
 * same masks whatever it is padded to (T <= max_pos <= 2^20). */
static void attn_drop(const Drop *d, uint64_t key, int h, int T, float *out, const float *p) {
    for (int i = 0; i < T; i++)
        drop_row(d, key, ((uint64_t)h << 40) + ((uint64_t)i << 20), out + (size_t)i * T, p + (size_t)i * T,
                 (size_t)T);
}

/* row (T) = softmax over the keys with keep[j]; masked keys get exactly 0
 * (exp(finfo.min - max) underflows to 0 in HF). A row with no key is all 0. */
static void softmax_row(float *row, const unsigned char *keep, int T) {
    float mx = -INFINITY, sum = 0;
    for (int j = 0; j < T; j++) {
        float v = keep[j] ? row[j] : -INFINITY;
        mx = v > mx ? v : mx;
    }
    OMP(omp simd simdlen(16) reduction(+ : sum))
    for (int j = 0; j < T; j++) {
        row[j] = keep[j] ? exp_approx(row[j] - mx) : 0.0f;
        sum += row[j];
    }
    float inv = sum > 0 ? 1.0f / sum : 0.0f;
    OMP(omp simd)
    for (int j = 0; j < T; j++) row[j] *= inv;
}

typedef struct {
    GemmFn g;
    const int *ids;
    int pad, B, T, C, NH, layer;
    const Drop *drop;
} AttnDims;

/* P (T,T) = softmax(scale q kᵀ) of one head: q, k (T,hs) with row stride C;
 * keep (T) receives the key mask of sequence b. */
static void attn_probs(float *P, unsigned char *keep, const float *q, const float *k, const AttnDims *a, int b) {
    int T = a->T, C = a->C, hs = C / a->NH;
    const int *id = a->ids + (size_t)b * T;
    a->g(0, 1, T, T, hs, 1.0f / sqrtf((float)hs), q, C, k, C, 0.0f, P, T);
    for (int j = 0; j < T; j++) keep[j] = id[j] != a->pad;
    for (int i = 0; i < T; i++) softmax_row(P + (size_t)i * T, keep, T);
}

/* ctx (B,T,C) from q, k, v (B,T,C). att (B,NH,T,T) keeps the probabilities for
 * backward, or is NULL (one (T,T) block per thread; backward recomputes them). */
static void attention_forward(float *ctx, float *att, const float *q, const float *k, const float *v,
                              const AttnDims *a) {
    int B = a->B, T = a->T, C = a->C, NH = a->NH, hs = C / NH;
    OMP(omp parallel)
    {
        float *block = att ? NULL : xmalloc((size_t)T * T * sizeof(float));
        float *pd = a->drop->on ? xmalloc((size_t)T * T * sizeof(float)) : NULL;
        unsigned char *keep = xmalloc((size_t)T);
        OMP(omp for collapse(2) schedule(dynamic))
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                size_t off = (size_t)b * T * C + (size_t)h * hs;
                float *P = att ? att + ((size_t)b * NH + h) * T * T : block;
                attn_probs(P, keep, q + off, k + off, a, b);
                const float *use = P;
                if (pd) {
                    attn_drop(a->drop, drop_key(a->drop, b, a->layer, 1), h, T, pd, P);
                    use = pd;
                }
                a->g(0, 0, T, hs, T, 1.0f, use, T, v + off, C, 0.0f, ctx + off, C);
            }
        free(block);
        free(pd);
        free(keep);
    }
}

/* dq, dk, dv (B,T,C) overwritten from dctx (B,T,C) and the probabilities:
 * att (B,NH,T,T) as kept by attention_forward, or NULL to recompute them. */
static void attention_backward(float *dq, float *dk, float *dv, const float *dctx, const float *att,
                               const float *q, const float *k, const float *v, const AttnDims *a) {
    int B = a->B, T = a->T, C = a->C, NH = a->NH, hs = C / NH;
    float scale = 1.0f / sqrtf((float)hs);
    OMP(omp parallel)
    {
        float *dp = xmalloc((size_t)T * T * sizeof(float));
        float *pd = a->drop->on ? xmalloc((size_t)T * T * sizeof(float)) : NULL;
        float *block = att ? NULL : xmalloc((size_t)T * T * sizeof(float));
        unsigned char *keep = xmalloc((size_t)T);
        OMP(omp for collapse(2) schedule(dynamic))
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++) {
                size_t off = (size_t)b * T * C + (size_t)h * hs;
                const float *P = att ? att + ((size_t)b * NH + h) * T * T : block, *use = P;
                if (!att) attn_probs(block, keep, q + off, k + off, a, b); /* as the forward did */
                uint64_t key = pd ? drop_key(a->drop, b, a->layer, 1) : 0;
                if (pd) {
                    attn_drop(a->drop, key, h, T, pd, P);
                    use = pd;
                }
                // ctx = use · V  =>  dV = useᵀ · dctx,  d(use) = dctx · Vᵀ
                a->g(1, 0, T, hs, T, 1.0f, use, T, dctx + off, C, 0.0f, dv + off, C);
                a->g(0, 1, T, T, hs, 1.0f, dctx + off, C, v + off, C, 0.0f, dp, T);
                if (pd) attn_drop(a->drop, key, h, T, dp, dp);
                // softmax: dS = P ∘ (dP - rowsum(P ∘ dP)); masked keys have P = 0
                for (int i = 0; i < T; i++) {
                    const float *pr = P + (size_t)i * T;
                    float *dr = dp + (size_t)i * T, dot = 0;
                    OMP(omp simd reduction(+ : dot))
                    for (int j = 0; j < T; j++) dot += pr[j] * dr[j];
                    OMP(omp simd)
                    for (int j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - dot);
                }
                // S = scale Q Kᵀ  =>  dQ = scale dS K,  dK = scale dSᵀ Q
                a->g(0, 0, T, hs, T, scale, dp, T, k + off, C, 0.0f, dq + off, C);
                a->g(1, 0, T, hs, T, scale, dp, T, q + off, C, 0.0f, dk + off, C);
            }
        free(dp);
        free(pd);
        free(block);
        free(keep);
    }
}

/* ---- pooling and normalisation ---- */

static void pool_forward(float *out, const float *h, const int *ids, int pad, int B, int T, int C, int pooling) {
    OMP(omp parallel for)
    for (int b = 0; b < B; b++) { // out (B,C)
        float *o = out + (size_t)b * C;
        const float *hb = h + (size_t)b * T * C;
        if (pooling == POOL_CLS) {
            memcpy(o, hb, (size_t)C * sizeof(float));
            continue;
        }
        int n = 0;
        for (int c = 0; c < C; c++) o[c] = 0;
        for (int t = 0; t < T; t++) {
            if (ids[b * T + t] == pad) continue;
            n++;
            for (int c = 0; c < C; c++) o[c] += hb[(size_t)t * C + c];
        }
        float inv = 1.0f / (n > 0 ? (float)n : 1e-9f); /* sentence-transformers clamps the count at 1e-9 */
        for (int c = 0; c < C; c++) o[c] *= inv;
    }
}

static void pool_backward(float *dh, const float *dout, const int *ids, int pad, int B, int T, int C,
                          int pooling) { // dh (B,T,C) overwritten
    OMP(omp parallel for)
    for (int b = 0; b < B; b++) {
        float *d = dh + (size_t)b * T * C;
        const float *g = dout + (size_t)b * C;
        memset(d, 0, (size_t)T * C * sizeof(float));
        if (pooling == POOL_CLS) {
            memcpy(d, g, (size_t)C * sizeof(float));
            continue;
        }
        int n = 0;
        for (int t = 0; t < T; t++) n += ids[b * T + t] != pad;
        float inv = 1.0f / (n > 0 ? (float)n : 1e-9f);
        for (int t = 0; t < T; t++)
            if (ids[b * T + t] != pad)
                for (int c = 0; c < C; c++) d[(size_t)t * C + c] = g[c] * inv;
    }
}

/* out (B,C) = x / max(||x||, 1e-12) as F.normalize; norm (B) keeps the divisor. */
static void normalize_forward(float *out, float *norm, const float *x, int B, int C) {
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int c = 0; c < C; c++) s += (double)x[(size_t)b * C + c] * x[(size_t)b * C + c];
        float n = (float)sqrt(s);
        if (!(n > 1e-12f)) n = 1e-12f;
        for (int c = 0; c < C; c++) out[(size_t)b * C + c] = x[(size_t)b * C + c] / n;
        norm[b] = n;
    }
}

static void normalize_backward(float *dx, const float *dout, const float *out, const float *norm, int B,
                               int C) { // dx (B,C) overwritten
    for (int b = 0; b < B; b++) {
        const float *y = out + (size_t)b * C, *g = dout + (size_t)b * C;
        float *d = dx + (size_t)b * C;
        if (norm[b] <= 1e-12f) { /* clamped: the divisor is a constant */
            for (int c = 0; c < C; c++) d[c] = g[c] / norm[b];
            continue;
        }
        double dot = 0;
        for (int c = 0; c < C; c++) dot += (double)y[c] * g[c];
        for (int c = 0; c < C; c++) d[c] = (g[c] - y[c] * (float)dot) / norm[b];
    }
}

/* ---------------------------------------------------------------------------
 * One encoder layer. The same code runs training (buffers per layer, kept)
 * and inference (one set of scratch buffers reused by every layer). */

typedef struct {
    float *q, *k, *v, *att, *ctx, *res1, *mean1, *rstd1, *h1, *fc, *res2, *mean2, *rstd2;
} LayerActs;

/* Views of tensor i for layer l. */
static float *layer_slice(const Xlmr *m, float *base, int i, int l) {
    return base + m->offsets[i] + (size_t)l * (m->sizes[i] / (size_t)m->cfg.n_layers);
}

/* out (B,T,C) = layer l of x (B,T,C); scratch (B,T,F) and tmp (B,T,C) are clobbered. */
static void layer_forward(const Xlmr *m, int l, float *out, const float *x, const LayerActs *s, float *scratch,
                          float *tmp, const int *ids, int B, int T, const Drop *hd, const Drop *ad) {
    const XlmrConfig *c = &m->cfg;
    GemmFn g = gemm_of(m);
    int C = c->hidden, F = c->ffn, N = B * T;
    float *P = m->params_memory;
#define W(i) layer_slice(m, P, i, l)
    PROF("fwd linear q/k/v", matmul_forward(g, s->q, x, W(5), W(6), N, C, C));
    PROF("fwd linear q/k/v", matmul_forward(g, s->k, x, W(7), W(8), N, C, C));
    PROF("fwd linear q/k/v", matmul_forward(g, s->v, x, W(9), W(10), N, C, C));
    AttnDims a = {g, ids, c->pad_id, B, T, C, c->n_heads, l, ad};
    PROF("fwd attention", attention_forward(s->ctx, s->att, s->q, s->k, s->v, &a));
    PROF("fwd linear attn-out", matmul_forward(g, tmp, s->ctx, W(11), NULL, N, C, C));
    // h1 = LN1(drop(ctx Waoᵀ + bao) + x)
    PROF("fwd bias+dropout+residual+LN",
         residual_layernorm_forward(s->h1, s->res1, s->mean1, s->rstd1, tmp, W(12), x, W(13), W(14), hd, l, 2, B, T,
                                    C, c->ln_eps));
    PROF("fwd linear ffn-in", matmul_forward(g, s->fc, s->h1, W(15), NULL, N, C, F));
    PROF("fwd bias+gelu", gelu_forward(scratch, s->fc, W(16), N, F)); /* with fc's bias */
    PROF("fwd linear ffn-out", matmul_forward(g, tmp, scratch, W(17), NULL, N, F, C));
    // out = LN2(drop(gelu(h1 Wfcᵀ + bfc) Wfoᵀ + bfo) + h1)
    PROF("fwd bias+dropout+residual+LN",
         residual_layernorm_forward(out, s->res2, s->mean2, s->rstd2, tmp, W(18), s->h1, W(19), W(20), hd, l, 3, B, T,
                                    C, c->ln_eps));
#undef W
}

/* ---------------------------------------------------------------------------
 * Activations. */

struct XlmrActs {
    int capB, capT, C;     /* built for */
    int B, T, pooling;     /* of the last forward */
    Drop hd, ad;           /* its dropout */
    int *ids, *pos;        /* (B,T) */
    float *emb, *emb_mean, *emb_rstd; /* embedding sum (B,T,C) and its LayerNorm stats */
    float *h;              /* (L+1,B,T,C) layer outputs; h[0] after the embedding dropout */
    float *q, *k, *v, *ctx, *res1, *h1, *res2; /* (L,B,T,C) */
    float *mean1, *rstd1, *mean2, *rstd2;      /* (L,B,T) */
    float *att;            /* (L,B,NH,T,T) probabilities before dropout */
    float *fc;             /* (L,B,T,F) FFN pre-activation */
    float *pooled, *out, *norm; /* (B,C), (B,C), (B) */
    /* scratch shared by forward and backward */
    float *big1, *big2;    /* (B,T,F) */
    float *d[8];           /* (B,T,C) each */
};

XlmrActs *xlmr_acts_build(const Xlmr *m, int B, int T) {
    const XlmrConfig *c = &m->cfg;
    XlmrActs *a = xcalloc(1, sizeof *a);
    size_t L = (size_t)c->n_layers, C = (size_t)c->hidden, F = (size_t)c->ffn, N = (size_t)B * T;
    a->capB = B;
    a->capT = T;
    a->C = c->hidden;
    a->ids = xmalloc(N * sizeof(int));
    a->pos = xmalloc(N * sizeof(int));
    a->emb = xmalloc(N * C * sizeof(float));
    a->emb_mean = xmalloc(N * sizeof(float));
    a->emb_rstd = xmalloc(N * sizeof(float));
    a->h = xmalloc((L + 1) * N * C * sizeof(float));
    float **lc[] = {&a->q, &a->k, &a->v, &a->ctx, &a->res1, &a->h1, &a->res2};
    for (size_t i = 0; i < sizeof lc / sizeof lc[0]; i++) *lc[i] = xmalloc(L * N * C * sizeof(float));
    float **ln[] = {&a->mean1, &a->rstd1, &a->mean2, &a->rstd2};
    for (size_t i = 0; i < 4; i++) *ln[i] = xmalloc(L * N * sizeof(float));
    /* probabilities larger than ctx (NH T > C: base at T = 256 would keep
     * 600 MB per 16 x 256 chunk) are recomputed by backward instead */
    if ((size_t)c->n_heads * T <= C) a->att = xmalloc(L * N * (size_t)c->n_heads * (size_t)T * sizeof(float));
    a->fc = xmalloc(L * N * F * sizeof(float));
    a->pooled = xmalloc((size_t)B * C * sizeof(float));
    a->out = xmalloc((size_t)B * C * sizeof(float));
    a->norm = xmalloc((size_t)B * sizeof(float));
    a->big1 = xmalloc(N * F * sizeof(float));
    a->big2 = xmalloc(N * F * sizeof(float));
    for (int i = 0; i < 8; i++) a->d[i] = xmalloc(N * C * sizeof(float));
    return a;
}

void xlmr_acts_free(XlmrActs *a) {
    if (!a) return;
    float *fs[] = {a->emb, a->emb_mean, a->emb_rstd, a->h, a->q, a->k, a->v, a->ctx, a->res1, a->h1,
                   a->res2, a->mean1, a->rstd1, a->mean2, a->rstd2, a->att, a->fc, a->pooled, a->out,
                   a->norm, a->big1, a->big2};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) free(fs[i]);
    for (int i = 0; i < 8; i++) free(a->d[i]);
    free(a->ids);
    free(a->pos);
    free(a);
}

const float *xlmr_acts_hidden(const XlmrActs *a, int l) { return a->h + (size_t)l * a->B * a->T * a->C; }

int xlmr_check_ids(const Xlmr *m, const int *ids, int B, int T) {
    const XlmrConfig *c = &m->cfg;
    int limit = xlmr_max_len(c);
    for (int b = 0; b < B; b++) {
        int n = 0;
        for (int t = 0; t < T; t++) {
            int id = ids[(size_t)b * T + t];
            if (id < 0 || id >= c->vocab) return xerr("token id %d outside the vocabulary [0, %d)", id, c->vocab);
            n += id != c->pad_id;
        }
        if (n > limit) return xerr("a sequence of %d tokens exceeds the model's limit of %d", n, limit);
    }
    return 0;
}

static LayerActs layer_acts(const XlmrActs *a, const Xlmr *m, int l) {
    size_t N = (size_t)a->B * a->T, C = (size_t)m->cfg.hidden, F = (size_t)m->cfg.ffn;
    size_t NH = (size_t)m->cfg.n_heads;
    /* per-layer stride = the current (B,T), so the packed buffers stay contiguous */
    LayerActs s = {a->q + l * N * C, a->k + l * N * C, a->v + l * N * C, a->att ? a->att + l * N * NH * a->T : NULL,
                   a->ctx + l * N * C, a->res1 + l * N * C, a->mean1 + l * N, a->rstd1 + l * N,
                   a->h1 + l * N * C, a->fc + l * N * F, a->res2 + l * N * C, a->mean2 + l * N,
                   a->rstd2 + l * N};
    return s;
}

/* ---------------------------------------------------------------------------
 * Forward, backward, inference. */

void xlmr_forward(Xlmr *m, XlmrActs *a, float *out, const int *ids, int B, int T, int pooling,
                  const XlmrDropout *dropout) {
    const XlmrConfig *c = &m->cfg;
    if (B > a->capB || T > a->capT || B < 1 || T < 1)
        die("xlmr_forward: batch %dx%d exceeds the activations (%dx%d)", B, T, a->capB, a->capT);
    if (xlmr_check_ids(m, ids, B, T) != 0) die_xerr(); /* a caller bug: ids come from the tokenizer */
    int C = c->hidden, N = B * T;
    size_t NC = (size_t)N * C;
    a->B = B;
    a->T = T;
    a->pooling = pooling;
    a->hd = drop_make(dropout, c->hidden_dropout);
    a->ad = drop_make(dropout, c->attn_dropout);
    memcpy(a->ids, ids, (size_t)N * sizeof(int));
    positions_forward(a->pos, ids, B, T, c->pad_id);
    XlmrParams *p = &m->params;
    PROF("fwd embeddings", embeddings_forward(a->emb, ids, a->pos, p->word_emb, p->pos_emb, p->type_emb, N, C));
    PROF("fwd embeddings",
         layernorm_forward(a->h, a->emb_mean, a->emb_rstd, a->emb, p->emb_ln_w, p->emb_ln_b, N, C, c->ln_eps));
    PROF("fwd embeddings", dropout_forward(a->h, a->h, &a->hd, 0, 0, B, T, C));
    for (int l = 0; l < c->n_layers; l++) {
        LayerActs s = layer_acts(a, m, l);
        layer_forward(m, l, a->h + (l + 1) * NC, a->h + l * NC, &s, a->big1, a->d[0], ids, B, T, &a->hd, &a->ad);
    }
    PROF("fwd pool+normalize",
         pool_forward(a->pooled, a->h + (size_t)c->n_layers * NC, ids, c->pad_id, B, T, C, pooling));
    PROF("fwd pool+normalize", normalize_forward(a->out, a->norm, a->pooled, B, C));
    memcpy(out, a->out, (size_t)B * C * sizeof(float));
}

void xlmr_backward(Xlmr *m, XlmrActs *a, const float *dout) {
    const XlmrConfig *c = &m->cfg;
    if (!m->grads_memory) xlmr_grads_alloc(m);
    GemmFn g = gemm_of(m);
    int B = a->B, T = a->T, C = c->hidden, F = c->ffn, N = B * T;
    size_t NC = (size_t)N * C;
    float *dh = a->d[0], *dres = a->d[1], *dh1 = a->d[2], *dt = a->d[3], *dctx = a->d[4];
    float *dq = a->d[5], *dk = a->d[6], *dv = a->d[7], *G = a->big1, *dg = a->big2;
    float *P = m->params_memory, *D = m->grads_memory;
    normalize_backward(a->pooled, dout, a->out, a->norm, B, C); /* the pooled values are no longer needed */
    PROF("bwd pool", pool_backward(dh, a->pooled, a->ids, c->pad_id, B, T, C, a->pooling));
    for (int l = c->n_layers - 1; l >= 0; l--) {
        LayerActs s = layer_acts(a, m, l);
        const float *x = a->h + (size_t)l * NC;
#define W(i) layer_slice(m, P, i, l)
#define DW(i) layer_slice(m, D, i, l)
        // out = LN2(res2), res2 = drop(G Wfoᵀ + bfo) + h1, G = gelu(fc)
        PROF("bwd LN+dropout", layernorm_backward(dh1, dt, DW(19), DW(20), dh, s.res2, W(19), s.mean2, s.rstd2,
                                                      &a->hd, l, 3, B, T, C));
        PROF("bwd gelu recompute", gelu_recompute(G, dg, s.fc, (size_t)N * F));
        PROF("bwd linear ffn-out", matmul_backward(g, G, 0, DW(17), DW(18), dt, G, W(17), N, F, C)); /* G := dG */
        PROF("bwd gelu", gelu_backward(G, dg, G, (size_t)N * F));
        // fc = h1 Wfcᵀ + bfc
        PROF("bwd linear ffn-in", matmul_backward(g, dh1, 1, DW(15), DW(16), G, s.h1, W(15), N, C, F));
        // h1 = LN1(res1), res1 = drop(ctx Waoᵀ + bao) + x; dh now holds d x, the residual path
        PROF("bwd LN+dropout", layernorm_backward(dh, dt, DW(13), DW(14), dh1, s.res1, W(13), s.mean1, s.rstd1,
                                                      &a->hd, l, 2, B, T, C));
        PROF("bwd linear attn-out", matmul_backward(g, dctx, 0, DW(11), DW(12), dt, s.ctx, W(11), N, C, C));
        AttnDims ad = {g, a->ids, c->pad_id, B, T, C, c->n_heads, l, &a->ad};
        PROF("bwd attention", attention_backward(dq, dk, dv, dctx, s.att, s.q, s.k, s.v, &ad));
        PROF("bwd linear q/k/v", matmul_backward(g, dh, 1, DW(5), DW(6), dq, x, W(5), N, C, C));
        PROF("bwd linear q/k/v", matmul_backward(g, dh, 1, DW(7), DW(8), dk, x, W(7), N, C, C));
        PROF("bwd linear q/k/v", matmul_backward(g, dh, 1, DW(9), DW(10), dv, x, W(9), N, C, C));
#undef W
#undef DW
    }
    // h0 = drop(LN(emb))
    PROF("bwd embeddings", dropout_backward(dt, dh, &a->hd, 0, 0, B, T, C));
    PROF("bwd embeddings", layernorm_backward(dres, NULL, m->grads.emb_ln_w, m->grads.emb_ln_b, dt, a->emb,
                                              m->params.emb_ln_w, a->emb_mean, a->emb_rstd, &a->hd, 0, 0, B, T, C));
    PROF("bwd embeddings", embeddings_backward(m, dres, a->ids, a->pos, N));
}

int xlmr_embed(Xlmr *m, float *out, const int *ids, int B, int T, int pooling) {
    const XlmrConfig *c = &m->cfg;
    if (B < 1 || T < 1) return xerr("xlmr_embed: empty batch %dx%d", B, T);
    if (xlmr_check_ids(m, ids, B, T) != 0) return -1;
    int C = c->hidden, F = c->ffn, L = c->n_layers;
    /* rows per chunk: about 2048 tokens of scratch whatever B */
    int Bc = 2048 / T;
    if (Bc < 1) Bc = 1;
    if (Bc > B) Bc = B;
    size_t NC = (size_t)Bc * T * C, NF = (size_t)Bc * T * F, N = (size_t)Bc * T;
    float *x = xmalloc(NC * sizeof(float)), *y = xmalloc(NC * sizeof(float)), *tmp = xmalloc(NC * sizeof(float));
    float *buf = xmalloc(7 * NC * sizeof(float)), *stats = xmalloc(4 * N * sizeof(float));
    float *fc = xmalloc(NF * sizeof(float)), *scratch = xmalloc(NF * sizeof(float));
    float *pooled = xmalloc((size_t)Bc * C * sizeof(float)), *norm = xmalloc((size_t)Bc * sizeof(float));
    int *pos = xmalloc(N * sizeof(int));
    LayerActs s = {buf, buf + NC, buf + 2 * NC, NULL, buf + 3 * NC, buf + 4 * NC, stats, stats + N,
                   buf + 5 * NC, fc, buf + 6 * NC, stats + 2 * N, stats + 3 * N};
    Drop off = drop_make(NULL, 0);
    XlmrParams *p = &m->params;
    for (int b0 = 0; b0 < B; b0 += Bc) {
        int nb = B - b0 < Bc ? B - b0 : Bc, n = nb * T;
        const int *id = ids + (size_t)b0 * T;
        positions_forward(pos, id, nb, T, c->pad_id);
        embeddings_forward(tmp, id, pos, p->word_emb, p->pos_emb, p->type_emb, n, C);
        layernorm_forward(x, stats, stats + N, tmp, p->emb_ln_w, p->emb_ln_b, n, C, c->ln_eps);
        for (int l = 0; l < L; l++) {
            layer_forward(m, l, y, x, &s, scratch, tmp, id, nb, T, &off, &off);
            float *t = x;
            x = y;
            y = t;
        }
        pool_forward(pooled, x, id, c->pad_id, nb, T, C, pooling);
        normalize_forward(out + (size_t)b0 * C, norm, pooled, nb, C);
    }
    free(x); free(y); free(tmp); free(buf); free(stats); free(fc); free(scratch); free(pooled); free(norm);
    free(pos);
    return 0;
}

typedef struct {
    int len, idx;
} LenIdx;
static int by_len_desc(const void *x, const void *y) {
    const LenIdx *a = x, *b = y;
    return a->len != b->len ? b->len - a->len : a->idx - b->idx;
}

int xlmr_embed_ragged(Xlmr *m, float *out, const int *const *ids, const int *lens, int n, int batch,
                      int pooling, const char *label) {
    const XlmrConfig *c = &m->cfg;
    int C = c->hidden, limit = xlmr_max_len(c);
    if (batch <= 0) batch = 32;
    if (batch > n) batch = n > 0 ? n : 1;
    for (int i = 0; i < n; i++)
        if (lens[i] < 0 || lens[i] > limit)
            return xerr("text %d: %d tokens exceed the model's limit of %d", i, lens[i], limit);
    LenIdx *li = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *li);
    int *order = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) li[i] = (LenIdx){lens[i], i};
    qsort(li, (size_t)n, sizeof *li, by_len_desc);
    for (int i = 0; i < n; i++) order[i] = li[i].idx;
    free(li);
    int Tmax = n > 0 && lens[order[0]] > 0 ? lens[order[0]] : 1;
    int *pad = xmalloc((size_t)batch * Tmax * sizeof(int));
    float *emb = xmalloc((size_t)batch * C * sizeof(float));
    double t0 = now_seconds(), last = t0;
    int rc = 0;
    for (int i0 = 0; i0 < n && rc == 0; i0 += batch) {
        int nb = n - i0 < batch ? n - i0 : batch, T = lens[order[i0]] > 0 ? lens[order[i0]] : 1;
        for (int b = 0; b < nb; b++) {
            int k = order[i0 + b];
            for (int t = 0; t < T; t++) pad[b * T + t] = t < lens[k] ? ids[k][t] : c->pad_id;
        }
        if ((rc = xlmr_embed(m, emb, pad, nb, T, pooling)) != 0) break;
        for (int b = 0; b < nb; b++)
            memcpy(out + (size_t)order[i0 + b] * C, emb + (size_t)b * C, (size_t)C * sizeof(float));
        double now = now_seconds();
        if (label && (now - last > 2.0 || i0 + nb == n)) {
            double rate = (i0 + nb) / (now - t0 + 1e-9);
            fprintf(stderr, "%s: %d/%d texts, %.0f/s, ETA %.0fs\n", label, i0 + nb, n, rate, (n - i0 - nb) / rate);
            last = now;
        }
    }
    free(order);
    free(pad);
    free(emb);
    return rc;
}
