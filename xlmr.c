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
 * Reading order: the tensor table, the kernels (each *_forward followed by its
 * *_backward), layer_forward and layer_backward (one HF XLMRobertaLayer down
 * and back up), then xlmr_forward / xlmr_backward.
 *
 * Dropout masks (train mode only) are a pure function of (seed, seq_base + b,
 * layer, site, position), sites named by DropSite. A training step runs the
 * batch in chunks twice (gradient caching: a forward without gradient for the
 * loss, then forward + backward per chunk); because no mask depends on the
 * chunk, the thread count or the padding length, the re-forward of a chunk
 * reproduces exactly the activations the loss saw.
 *
 * Memory: one flat parameter buffer in XlmrTensorId order; the per-layer
 * tensors are stacked (L, ...) and layer_weights() gives layer l's slices by
 * name. Gradients use the same layout. Word-embedding gradient rows are
 * tracked (touched_rows) so nothing dense over the vocabulary runs per step.
 * XlmrActs keeps, per layer, exactly what backward needs: Q, K, V, ctx, the
 * two LayerNorm inputs with their mean/rstd, h1, the FFN pre-activation and
 * the layer output; the attention probabilities (pre-dropout) only while they
 * are no larger than ctx (NH T <= C), else backward recomputes them from Q and
 * K (base, chunk 16 x 256: 600 MB less for ~1.5% more FLOPs). GELU outputs
 * and dropout masks are recomputed in backward. Inference (xlmr_embed) keeps
 * one layer of scratch and one (T,T) score block per thread.
 *
 * Speed: dropout, residual and LayerNorm run as one pass per row after the
 * output GEMMs (residual_layernorm_forward); backward writes its outputs
 * instead of zeroing and accumulating. erf and exp are branch-free polynomials
 * (erf_approx, exp_approx) that `omp simd` vectorises: GELU and softmax were a
 * fifth of a training step with libm's erff/expf.
 *
 * Parallelism: the GEMMs come from tensor.h (parallel inside); attention runs
 * in parallel over (batch, head) with serial GEMMs inside; elementwise kernels
 * over rows. Results do not depend on the thread count beyond GEMM rounding. */
#include "xlmr.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "tensor.h"
#include "util.h"

/* `omp simd` is a request: under the sanitizers clang cannot vectorise and
 * would warn at every such loop. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* ---------------------------------------------------------------------------
 * The tensor table: one row per XlmrTensorId. The masked-LM head's rows have
 * 0 elements in a model without one (tensor_present); its decoder row also in
 * a tied model, whose decoder is word_emb. */

typedef enum { DIM_NONE, DIM_C, DIM_F, DIM_V, DIM_P, DIM_TV } Dim; /* sizes from XlmrConfig */
typedef enum { INIT_NORMAL, INIT_ZERO, INIT_ONE } Init;            /* HF's _init_weights */
typedef enum { PART_BODY, PART_HEAD, PART_DECODER } Part;          /* which models hold the tensor */

typedef struct {
    const char *hf_name; /* printf format with the layer for the per-layer tensors */
    Dim shape[2];        /* as stored in model.safetensors; shape[1] DIM_NONE for vectors */
    int layered;         /* stacked (L, ...) */
    int decays;          /* AdamW weight decay applies (not to biases and LayerNorm) */
    int lazy_rows;       /* gradient only in touched_rows (the word-embedding table) */
    Init init;           /* N(0, 0.02), 0 or 1 */
    size_t field;        /* offsetof(XlmrParams, ...): the named pointer of this tensor */
    Part part;           /* present in every model, with a head, or with an untied decoder */
} TensorSpec;

#define EMB(name, r, c, dec, lazy, ini, f) {name, {r, c}, 0, dec, lazy, ini, offsetof(XlmrParams, f), PART_BODY}
#define LAYER(name, r, c, dec, ini, f) \
    {"encoder.layer.%d." name, {r, c}, 1, dec, 0, ini, offsetof(XlmrParams, f), PART_BODY}
#define HEAD(name, r, c, dec, ini, f, part) {"lm_head." name, {r, c}, 0, dec, 0, ini, offsetof(XlmrParams, f), part}
static const TensorSpec tensor_table[XLMR_NUM_TENSORS] = {
    [XLMR_T_WORD_EMB] = EMB("embeddings.word_embeddings.weight", DIM_V, DIM_C, 1, 1, INIT_NORMAL, word_emb),
    [XLMR_T_POS_EMB] = EMB("embeddings.position_embeddings.weight", DIM_P, DIM_C, 1, 0, INIT_NORMAL, pos_emb),
    [XLMR_T_TYPE_EMB] = EMB("embeddings.token_type_embeddings.weight", DIM_TV, DIM_C, 1, 0, INIT_NORMAL, type_emb),
    [XLMR_T_EMB_LN_W] = EMB("embeddings.LayerNorm.weight", DIM_C, DIM_NONE, 0, 0, INIT_ONE, emb_ln_w),
    [XLMR_T_EMB_LN_B] = EMB("embeddings.LayerNorm.bias", DIM_C, DIM_NONE, 0, 0, INIT_ZERO, emb_ln_b),
    [XLMR_T_Q_W] = LAYER("attention.self.query.weight", DIM_C, DIM_C, 1, INIT_NORMAL, q_w),
    [XLMR_T_Q_B] = LAYER("attention.self.query.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, q_b),
    [XLMR_T_K_W] = LAYER("attention.self.key.weight", DIM_C, DIM_C, 1, INIT_NORMAL, k_w),
    [XLMR_T_K_B] = LAYER("attention.self.key.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, k_b),
    [XLMR_T_V_W] = LAYER("attention.self.value.weight", DIM_C, DIM_C, 1, INIT_NORMAL, v_w),
    [XLMR_T_V_B] = LAYER("attention.self.value.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, v_b),
    [XLMR_T_AO_W] = LAYER("attention.output.dense.weight", DIM_C, DIM_C, 1, INIT_NORMAL, ao_w),
    [XLMR_T_AO_B] = LAYER("attention.output.dense.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, ao_b),
    [XLMR_T_LN1_W] = LAYER("attention.output.LayerNorm.weight", DIM_C, DIM_NONE, 0, INIT_ONE, ln1_w),
    [XLMR_T_LN1_B] = LAYER("attention.output.LayerNorm.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, ln1_b),
    [XLMR_T_FC_W] = LAYER("intermediate.dense.weight", DIM_F, DIM_C, 1, INIT_NORMAL, fc_w),
    [XLMR_T_FC_B] = LAYER("intermediate.dense.bias", DIM_F, DIM_NONE, 0, INIT_ZERO, fc_b),
    [XLMR_T_FO_W] = LAYER("output.dense.weight", DIM_C, DIM_F, 1, INIT_NORMAL, fo_w),
    [XLMR_T_FO_B] = LAYER("output.dense.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, fo_b),
    [XLMR_T_LN2_W] = LAYER("output.LayerNorm.weight", DIM_C, DIM_NONE, 0, INIT_ONE, ln2_w),
    [XLMR_T_LN2_B] = LAYER("output.LayerNorm.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, ln2_b),
    [XLMR_T_LM_DENSE_W] = HEAD("dense.weight", DIM_C, DIM_C, 1, INIT_NORMAL, lm_dense_w, PART_HEAD),
    [XLMR_T_LM_DENSE_B] = HEAD("dense.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, lm_dense_b, PART_HEAD),
    [XLMR_T_LM_LN_W] = HEAD("layer_norm.weight", DIM_C, DIM_NONE, 0, INIT_ONE, lm_ln_w, PART_HEAD),
    [XLMR_T_LM_LN_B] = HEAD("layer_norm.bias", DIM_C, DIM_NONE, 0, INIT_ZERO, lm_ln_b, PART_HEAD),
    [XLMR_T_LM_BIAS] = HEAD("bias", DIM_V, DIM_NONE, 0, INIT_ZERO, lm_bias, PART_HEAD),
    [XLMR_T_LM_DECODER_W] = HEAD("decoder.weight", DIM_V, DIM_C, 1, INIT_NORMAL, lm_decoder, PART_DECODER),
};
#undef EMB
#undef LAYER
#undef HEAD

static int valid_id(int i) { return i >= 0 && i < XLMR_NUM_TENSORS; }
const char *xlmr_tensor_name(int i) { return valid_id(i) ? tensor_table[i].hf_name : NULL; }
int xlmr_tensor_is_layered(int i) { return valid_id(i) && tensor_table[i].layered; }
int xlmr_tensor_decays(int i) { return valid_id(i) && tensor_table[i].decays; }
int xlmr_tensor_lazy_rows(int i) { return valid_id(i) && tensor_table[i].lazy_rows; }
int xlmr_tensor_in_head(int i) { return valid_id(i) && tensor_table[i].part != PART_BODY; }

int xlmr_tensor_present(const XlmrConfig *c, int i) {
    Part p = tensor_table[i].part;
    return p == PART_BODY || (c->mlm_head && (p == PART_HEAD || !c->tie_word_embeddings));
}

static size_t dim_size(const XlmrConfig *c, Dim d) {
    switch (d) {
    case DIM_C: return (size_t)c->hidden;
    case DIM_F: return (size_t)c->ffn;
    case DIM_V: return (size_t)c->vocab;
    case DIM_P: return (size_t)c->max_pos;
    case DIM_TV: return (size_t)c->type_vocab;
    default: return 1;
    }
}

int xlmr_tensor_shape(const XlmrConfig *c, int i, size_t shape[2]) {
    const TensorSpec *t = &tensor_table[valid_id(i) ? i : 0];
    shape[0] = dim_size(c, t->shape[0]);
    if (t->shape[1] == DIM_NONE) return 1;
    shape[1] = dim_size(c, t->shape[1]);
    return 2;
}

/* Elements of tensor i in one layer (in all of the model for the others). */
static size_t tensor_numel(const XlmrConfig *c, int i) {
    size_t shape[2] = {1, 1};
    xlmr_tensor_shape(c, i, shape);
    return shape[0] * shape[1];
}

size_t xlmr_non_embedding_params(const XlmrConfig *c) {
    size_t n = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        if (i == XLMR_T_WORD_EMB || i == XLMR_T_POS_EMB || i == XLMR_T_TYPE_EMB || xlmr_tensor_in_head(i)) continue;
        n += tensor_numel(c, i) * (size_t)(xlmr_tensor_is_layered(i) ? c->n_layers : 1);
    }
    return n;
}

/* Points every named pointer of p at its tensor in mem. */
static void point_tensors(XlmrParams *p, float *mem, const size_t *offsets) {
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) *(float **)((char *)p + tensor_table[i].field) = mem + offsets[i];
}

/* One layer's slice of every per-layer tensor, by name: the same function
 * serves the parameters and the gradients. */
typedef struct {
    float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* attention.self.{query,key,value}: (C,C), (C) */
    float *ao_w, *ao_b;                       /* attention.output.dense: (C,C), (C) */
    float *ln1_w, *ln1_b;                     /* attention.output.LayerNorm: (C) */
    float *fc_w, *fc_b;                       /* intermediate.dense: (F,C), (F) */
    float *fo_w, *fo_b;                       /* output.dense: (C,F), (C) */
    float *ln2_w, *ln2_b;                     /* output.LayerNorm: (C) */
} XlmrLayerWeights;

static XlmrLayerWeights layer_weights(const XlmrParams *p, const XlmrConfig *c, int l) {
#define AT(f, id) .f = p->f + (size_t)l * tensor_numel(c, id)
    return (XlmrLayerWeights){
        AT(q_w, XLMR_T_Q_W),     AT(q_b, XLMR_T_Q_B),     AT(k_w, XLMR_T_K_W),     AT(k_b, XLMR_T_K_B),
        AT(v_w, XLMR_T_V_W),     AT(v_b, XLMR_T_V_B),     AT(ao_w, XLMR_T_AO_W),   AT(ao_b, XLMR_T_AO_B),
        AT(ln1_w, XLMR_T_LN1_W), AT(ln1_b, XLMR_T_LN1_B), AT(fc_w, XLMR_T_FC_W),   AT(fc_b, XLMR_T_FC_B),
        AT(fo_w, XLMR_T_FO_W),   AT(fo_b, XLMR_T_FO_B),   AT(ln2_w, XLMR_T_LN2_W), AT(ln2_b, XLMR_T_LN2_B),
    };
#undef AT
}

/* ---------------------------------------------------------------------------
 * Configurations. */

void xlmr_config_default(XlmrConfig *cfg) {
    *cfg = (XlmrConfig){.n_layers = 12, .hidden = 768, .n_heads = 12, .ffn = 3072, .vocab = 0, .max_pos = 514,
                        .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f, .hidden_dropout = 0.1f, .attn_dropout = 0.1f,
                        .mlm_head = 0, .tie_word_embeddings = 1};
}

/* The one list of model presets (xlmr init, xlmr experiment and xlmr bench use it). */
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

/* RoBERTa numbers positions from pad_id + 1 (pads take pad_id itself), so the
 * first pad_id + 1 rows of the position table are never a token's. */
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

/* ---------------------------------------------------------------------------
 * Model lifetime: parameters, initialisation, gradients. */

int xlmr_build(Xlmr *m, const XlmrConfig *cfg) {
    memset(m, 0, sizeof *m);
    if (xlmr_config_check(cfg, "config") != 0) return -1;
    m->cfg = *cfg;
    size_t off = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        m->sizes[i] = xlmr_tensor_present(cfg, i) ? tensor_numel(cfg, i) * (size_t)(tensor_table[i].layered ? cfg->n_layers : 1) : 0;
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
        Init init = tensor_table[i].init;
        for (size_t j = 0; j < m->sizes[i]; j++)
            t[j] = init == INIT_NORMAL ? 0.02f * rng_normal(&r) : init == INIT_ONE ? 1.0f : 0.0f;
    }
    /* nn.Embedding(padding_idx=pad): HF zeroes the padding rows */
    memset(m->params.word_emb + (size_t)c->pad_id * c->hidden, 0, (size_t)c->hidden * sizeof(float));
    memset(m->params.pos_emb + (size_t)c->pad_id * c->hidden, 0, (size_t)c->hidden * sizeof(float));
}

int xlmr_with_mlm_head(Xlmr *dst, const Xlmr *src, uint64_t seed) {
    XlmrConfig c = src->cfg;
    if (!c.mlm_head) {
        c.mlm_head = 1;
        c.tie_word_embeddings = 1;
    }
    if (xlmr_build(dst, &c) != 0) return -1;
    if (!src->cfg.mlm_head) xlmr_init_random(dst, seed); /* the head's initialisation; the body is src's */
    for (int i = 0; i < XLMR_NUM_TENSORS; i++)
        if (src->sizes[i] == dst->sizes[i] && src->sizes[i])
            memcpy(dst->params_memory + dst->offsets[i], src->params_memory + src->offsets[i],
                   src->sizes[i] * sizeof(float));
    dst->use_bf16 = src->use_bf16;
    dst->use_ref_gemm = src->use_ref_gemm;
    return 0;
}

void xlmr_free(Xlmr *m) {
    xlmr_bf16_unpack(m);
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
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        float *g = m->grads_memory + m->offsets[i];
        if (!tensor_table[i].lazy_rows) {
            memset(g, 0, m->sizes[i] * sizeof(float));
            continue;
        }
        /* lazy rows: only the rows embeddings_backward touched hold gradient */
        for (int r = 0; r < m->n_touched; r++) memset(g + (size_t)m->touched_rows[r] * C, 0, C * sizeof(float));
    }
    for (int r = 0; r < m->n_touched; r++) m->row_touched[m->touched_rows[r]] = 0;
    m->n_touched = 0;
}

static GemmFn gemm_of(const Xlmr *m) { return m->use_ref_gemm ? sgemm_ref : m->use_bf16 ? sgemm_bf16 : sgemm; }

/* ---------------------------------------------------------------------------
 * Kernels. Each *_forward is followed by its *_backward, outputs first.
 * Backward kernels write the input gradients (overwrite) and accumulate (+=)
 * into parameter gradients. N = B*T rows. */

/* ---- embeddings ---- */

/* pos (B,T): position ids as HF's create_position_ids_from_input_ids. Pads get
 * pad_id and tokens pad_id + 1, pad_id + 2, ...: RoBERTa inherited this from
 * fairseq, so row pad_id of the table is the padding row and a left-padded
 * sequence gets the same positions as an unpadded one. Integers: no backward. */
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

/* out (N,C) = word[ids] + pemb[pos] + type0: RobertaEmbeddings before its
 * LayerNorm (token_type_ids are all 0 for XLM-R). */
static void embeddings_forward(float *out, const int *ids, const int *pos, const float *word, const float *pemb,
                               const float *type0, int N, int C) {
    OMP(omp parallel for)
    for (int n = 0; n < N; n++) {
        const float *w = word + (size_t)ids[n] * C, *p = pemb + (size_t)pos[n] * C;
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = w[c] + p[c] + type0[c];
    }
}

/* m->grads.{word,pos,type}_emb += dout (N,C) scattered by ids and pos. Lazy
 * rows: the word rows that receive gradient are recorded in m->touched_rows,
 * so zero_grad and the optimizer visit those rows of the (V,C) table only. */
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

/* ---- linear layers (nn.Linear: weight (OC,C), y = x Wᵀ + b) ---- */

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

/* What a linear does to its product: + b, and where gelu is set, gelu(out) there too. */
typedef struct {
    const float *b;
    float *gelu;
} LinearTail;
static void linear_tail(const void *ctx, float *c, int ldc, int i, int j, int m, int n);

/* out (N,OC) = inp (N,C) · w (OC,C)ᵀ + b (OC): every linear of the model.
 * gelu (N,OC), or NULL: also gelu(out) there, the activation after
 * XLMRobertaIntermediate's linear (gelu may be out: inference keeps no
 * pre-activation). Bias and GELU are applied to each strip of the product
 * while it is in cache (linear_tail), not in passes over out, which is larger
 * than the caches at base. pw: w packed for BF16 inference (xlmr_bf16_pack)
 * when g is sgemm_bf16, or NULL. */

static void matmul_forward(GemmFn g, const Bf16Packed *pw, float *out, float *gelu, const float *inp,
                           const float *w, const float *b, int N, int C, int OC) {
    LinearTail tail = {b, gelu};
    GemmEpilogue epi = {linear_tail, &tail};
    if (pw && g == sgemm_bf16)
        sgemm_bf16_packed(0, N, OC, C, 1.0f, inp, C, pw, 0.0f, out, OC, &epi);
    else
        sgemm_fused(g, 0, 1, N, OC, C, 1.0f, inp, C, w, C, 0.0f, out, OC, &epi);
}

/* dinp (N,C) = dout (N,OC) · w (+= when acc: a residual path already holds a
 * gradient there); dw (OC,C) += doutᵀ · inp; db (OC) += column sums of dout. */
static void matmul_backward(GemmFn g, float *dinp, int acc, float *dw, float *db, const float *dout,
                            const float *inp, const float *w, int N, int C, int OC) {
    g(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
    g(0, 0, N, C, OC, 1.0f, dout, OC, w, C, acc ? 1.0f : 0.0f, dinp, C);
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

/* ---- GELU (hidden_act "gelu": the exact erf form) ---- */

static ALWAYS_INLINE float gelu_cdf(float x) { return 0.5f * (1.0f + erf_approx(x * 0.70710678118654752f)); }

/* The block c (m,n) at row i, column j of a linear's output (row stride ldc)
 * += b, then, where the LinearTail ctx has one, its gelu block = gelu(c) =
 * c Φ(c) (same stride; may be c itself). */
static void linear_tail(const void *ctx, float *c, int ldc, int i, int j, int m, int n) {
    const LinearTail *t = ctx;
    const float *b = t->b + j;
    for (int r = 0; r < m; r++) {
        float *x = c + (size_t)r * ldc;
        if (!t->gelu) {
            OMP(omp simd simdlen(16))
            for (int k = 0; k < n; k++) x[k] += b[k];
            continue;
        }
        float *o = t->gelu + (size_t)(i + r) * ldc + j;
        OMP(omp simd simdlen(16))
        for (int k = 0; k < n; k++) {
            float v = x[k] + b[k];
            x[k] = v;
            o[k] = v * gelu_cdf(v);
        }
    }
}

/* gelu'(x) = Φ(x) + x φ(x), from Φ(x) = cdf. */
static ALWAYS_INLINE float gelu_slope(float x, float cdf) {
    float pdf = 0.39894228040143268f * exp_approx(-0.5f * x * x);
    return cdf + x * pdf;
}

/* dinp (n) = dout * gelu'(inp) (dinp may be dout). */
static void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    OMP(omp parallel for simd simdlen(16))
    for (size_t i = 0; i < n; i++) dinp[i] = dout[i] * gelu_slope(inp[i], gelu_cdf(inp[i]));
}

/* out (n) = gelu(x), then x (n) = gelu'(x): a layer's backward recomputes
 * GELU(fc) for output.dense's weight gradient and needs the slope after it;
 * one pass evaluates Φ once for both, not once for each. */
static void gelu_forward_slope(float *out, float *x, size_t n) {
    OMP(omp parallel for simd simdlen(16))
    for (size_t i = 0; i < n; i++) {
        float v = x[i], cdf = gelu_cdf(v);
        out[i] = v * cdf;
        x[i] = gelu_slope(v, cdf);
    }
}

/* d (n) *= slope (n): the chain rule through an elementwise function. */
static void scale_by(float *d, const float *slope, size_t n) {
    OMP(omp parallel for simd simdlen(16))
    for (size_t i = 0; i < n; i++) d[i] *= slope[i];
}

/* ---- dropout: counter-based masks ----
 * A mask is a pure function of (seed, sequence, layer, site, position): the
 * key hashes the first four, the position picks a 16-bit uniform from the
 * key's stream. Nothing is stored: backward and the re-forward of a chunk
 * regenerate the same mask, so chunked gradient caching is exact. */

/* The dropout sites of XLM-R (the value is part of the mask key). */
typedef enum {
    DROP_EMB = 0,        /* RobertaEmbeddings.dropout, after the LayerNorm */
    DROP_ATTN_PROBS = 1, /* XLMRobertaSelfAttention.dropout, on the probabilities */
    DROP_ATTN_OUT = 2,   /* XLMRobertaSelfOutput.dropout, before its residual */
    DROP_FFN_OUT = 3,    /* XLMRobertaOutput.dropout, before its residual */
} DropSite;

typedef struct {
    int on;
    uint64_t seed;
    int seq_base;
    float p, scale;     /* drop probability, 1/(1-p) */
    uint32_t threshold; /* drop when the 16-bit uniform is below it */
} Drop;

static Drop drop_make(const XlmrDropout *d, float p) {
    Drop r = {.on = 0, .p = p, .scale = 1.0f};
    if (d && d->train && p > 0) {
        r.on = 1;
        r.seed = d->seed;
        r.seq_base = d->seq_base;
        r.scale = 1.0f / (1.0f - p);
        r.threshold = (uint32_t)(p * 65536.0f + 0.5f);
    }
    return r;
}

/* A dropout site of one layer; sequence b of the batch is row b of every (B, ...) tensor. */
typedef struct {
    const Drop *drop;
    int layer;
    DropSite site;
} DropAt;

static uint64_t drop_key(const Drop *d, int b, int layer, DropSite site) {
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

/* out (B,T,C) = inp with dropout (out may be inp). Position t C + c of sequence
 * b: independent of T, like the attention masks. */
static void dropout_forward(float *out, const float *inp, const DropAt *at, int B, int T, int C) {
    const Drop *d = at->drop;
    if (!d->on) {
        if (out != inp) memcpy(out, inp, (size_t)B * T * C * sizeof(float));
        return;
    }
    OMP(omp parallel for)
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * T * C;
        drop_row(d, drop_key(d, b, at->layer, at->site), 0, out + o, inp + o, (size_t)T * C);
    }
}

/* dinp (B,T,C) = dout with the forward's mask: dropout is linear (dinp may be dout). */
static void dropout_backward(float *dinp, const float *dout, const DropAt *at, int B, int T, int C) {
    dropout_forward(dinp, dout, at, B, T, C);
}

/* ---- LayerNorm ---- */

/* What a LayerNorm keeps for backward: its input and each row's mean and 1/std. */
typedef struct {
    float *inp;        /* (N,C) */
    float *mean, *rstd; /* (N) */
} LnActs;

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

/* dx (C) = the input gradient of one row of LN, from dout (C). */
static ALWAYS_INLINE void layernorm_row_backward(float *dx, const float *dout, const float *x, const float *w,
                                                 float mu, float rs, int C) {
    double dm = 0, dnm = 0;
    OMP(omp simd reduction(+ : dm, dnm))
    for (int c = 0; c < C; c++) {
        float dnorm = dout[c] * w[c];
        dm += dnorm;
        dnm += (double)dnorm * (x[c] - mu) * rs;
    }
    float dmf = (float)(dm / C), dnmf = (float)(dnm / C);
    OMP(omp simd)
    for (int c = 0; c < C; c++) dx[c] = (dout[c] * w[c] - dmf - (x[c] - mu) * rs * dnmf) * rs;
}

/* dw, db (C) += the LayerNorm parameter gradients over N rows, as partial sums
 * per row block (as colsum_accumulate: independent of the thread count). */
static void layernorm_param_backward(float *dw, float *db, const float *dout, const LnActs *ln, int N, int C) {
    float *part = xcalloc((size_t)ROW_BLOCKS * 2 * C, sizeof(float));
    OMP(omp parallel for)
    for (int r = 0; r < ROW_BLOCKS; r++) {
        float *gw = part + (size_t)r * 2 * C, *gb = gw + C;
        for (int n = (int)((int64_t)N * r / ROW_BLOCKS); n < (int)((int64_t)N * (r + 1) / ROW_BLOCKS); n++) {
            const float *x = ln->inp + (size_t)n * C, *g = dout + (size_t)n * C;
            float mu = ln->mean[n], rs = ln->rstd[n];
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

/* out (N,C) = LN(ln->inp) with w, b (C); writes ln->mean, ln->rstd (N). */
static void layernorm_forward(float *out, const LnActs *ln, const float *w, const float *b, int N, int C,
                              float eps) {
    OMP(omp parallel for)
    for (int n = 0; n < N; n++)
        layernorm_row(out + (size_t)n * C, ln->mean + n, ln->rstd + n, ln->inp + (size_t)n * C, w, b, C, eps);
}

/* dinp (N,C) = the gradient of ln->inp from dout (N,C); dw, db (C) +=. */
static void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const LnActs *ln,
                               const float *w, int N, int C) {
    OMP(omp parallel for)
    for (int n = 0; n < N; n++)
        layernorm_row_backward(dinp + (size_t)n * C, dout + (size_t)n * C, ln->inp + (size_t)n * C, w, ln->mean[n],
                               ln->rstd[n], C);
    layernorm_param_backward(dw, db, dout, ln, N, C);
}

/* ---- the residual branch of a post-LN block, fused ----
 * XLMRobertaSelfOutput and XLMRobertaOutput: out = LayerNorm(dropout(y) + x),
 * y the dense layer's output (bias included). One pass per row while it is in
 * cache instead of three over the whole (B,T,C) tensor. */

/* ln->inp (B,T,C) = drop(y) + x; out (B,T,C) = LN(ln->inp) with w, b. The mask
 * is dropout_forward's (position t C + c of sequence b). */
static void residual_layernorm_forward(float *out, const LnActs *ln, const float *y, const float *x, const float *w,
                                       const float *b, const DropAt *at, int B, int T, int C, float eps) {
    const Drop *d = at->drop;
    OMP(omp parallel for)
    for (int n = 0; n < B * T; n++) {
        float *r = ln->inp + (size_t)n * C;
        const float *yr = y + (size_t)n * C, *xr = x + (size_t)n * C;
        if (d->on)
            drop_row(d, drop_key(d, n / T, at->layer, at->site), (size_t)(n % T) * C, r, yr, (size_t)C);
        else
            memcpy(r, yr, (size_t)C * sizeof(float));
        OMP(omp simd)
        for (int c = 0; c < C; c++) r[c] += xr[c];
        layernorm_row(out + (size_t)n * C, ln->mean + n, ln->rstd + n, r, w, b, C, eps);
    }
}

/* The reverse: dx (B,T,C) = d ln->inp, the gradient along the residual path;
 * dy (B,T,C) = dropout_backward(dx), the gradient entering the branch; dw, db +=. */
static void residual_layernorm_backward(float *dx, float *dy, float *dw, float *db, const float *dout,
                                        const LnActs *ln, const float *w, const DropAt *at, int B, int T, int C) {
    const Drop *d = at->drop;
    OMP(omp parallel for)
    for (int n = 0; n < B * T; n++) {
        float *dxr = dx + (size_t)n * C, *dyr = dy + (size_t)n * C;
        layernorm_row_backward(dxr, dout + (size_t)n * C, ln->inp + (size_t)n * C, w, ln->mean[n], ln->rstd[n], C);
        if (d->on)
            drop_row(d, drop_key(d, n / T, at->layer, at->site), (size_t)(n % T) * C, dyr, dxr, (size_t)C);
        else
            memcpy(dyr, dxr, (size_t)C * sizeof(float));
    }
    layernorm_param_backward(dw, db, dout, ln, B * T, C);
}

/* ---- attention (XLMRobertaSelfAttention, eager: masked keys get probability 0) ---- */

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
    int nan = 0;
    for (int j = 0; j < T; j++) {
        float v = keep[j] ? row[j] : -INFINITY;
        mx = v > mx ? v : mx;
        nan |= v != v;
    }
    /* a NaN or +Inf score stays visible as NaN probabilities (exp_approx
     * clamps NaN to a finite value, which would hide the damage) */
    if (nan || mx == INFINITY) {
        for (int j = 0; j < T; j++) row[j] = NAN;
        return;
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

/* What attention needs besides its tensors. */
typedef struct {
    GemmFn g;
    const int *ids; /* (B,T): keys with ids == pad are masked */
    int pad, B, T, C, NH;
    int layer;      /* of the dropout mask */
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
                    attn_drop(a->drop, drop_key(a->drop, b, a->layer, DROP_ATTN_PROBS), h, T, pd, P);
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
                uint64_t key = pd ? drop_key(a->drop, b, a->layer, DROP_ATTN_PROBS) : 0;
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

/* ---- pooling and normalisation (sentence-transformers' Pooling + Normalize) ---- */

/* out (B,C) = the mean of h (B,T,C) over the non-pad positions (POOL_MEAN), or
 * h[:, 0], the <s> token (POOL_CLS). */
static void pool_forward(float *out, const float *h, const int *ids, int pad, int B, int T, int C, int pooling) {
    OMP(omp parallel for)
    for (int b = 0; b < B; b++) {
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

/* dh (B,T,C) overwritten from dout (B,C): spread over the pooled positions, 0 elsewhere. */
static void pool_backward(float *dh, const float *dout, const int *ids, int pad, int B, int T, int C,
                          int pooling) {
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

/* dx (B,C) overwritten from dout (B,C), through out = x / norm. */
static void normalize_backward(float *dx, const float *dout, const float *out, const float *norm, int B,
                               int C) {
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
 * One encoder layer (HF XLMRobertaLayer). The same code runs training (buffers
 * per layer, kept for backward) and inference (one set reused by every layer). */

/* One layer's activations kept for backward. */
typedef struct {
    float *q, *k, *v; /* (B,T,C) attention.self.{query,key,value} outputs */
    float *att;       /* (B,NH,T,T) probabilities before dropout, or NULL (backward recomputes) */
    float *ctx;       /* (B,T,C) the attention context, input of attention.output.dense */
    LnActs ln1;       /* attention.output.LayerNorm; its input res1 = drop(ctx Waoᵀ + bao) + x */
    float *h1;        /* (B,T,C) its output */
    float *fc;        /* (B,T,F) intermediate.dense output (bias included), the GELU's input;
                         layer_backward leaves gelu'(fc) there */
    LnActs ln2;       /* output.LayerNorm; its input res2 = drop(gelu(fc) Wfoᵀ + bfo) + h1 */
} LayerActs;

/* Scratch of layer_forward, shared by the layers. */
typedef struct {
    float *branch; /* (B,T,C) a dense layer's output, before its dropout and residual */
    float *gelu;   /* (B,T,F) GELU(fc), input of output.dense */
} LayerScratch;

/* Scratch of layer_backward, shared by the layers. */
typedef struct {
    float *dh1, *dbranch, *dctx, *dq, *dk, *dv; /* (B,T,C) gradients */
    float *gelu;                                /* (B,T,F) GELU(fc), recomputed */
    float *dgelu;                               /* (B,T,F) its gradient, then that of fc */
} LayerGradScratch;

/* A layer's weight matrices, as xlmr_bf16_pack packs them. */
enum { LIN_Q, LIN_K, LIN_V, LIN_AO, LIN_FC, LIN_FO, LIN_COUNT };

void xlmr_bf16_pack(Xlmr *m) {
    const XlmrConfig *c = &m->cfg;
    if (!m->use_bf16 || m->use_ref_gemm || m->bf16_packed) return;
    int C = c->hidden, F = c->ffn;
    m->bf16_packed = xcalloc((size_t)c->n_layers * LIN_COUNT, sizeof *m->bf16_packed);
    for (int l = 0; l < c->n_layers; l++) {
        XlmrLayerWeights w = layer_weights(&m->params, c, l);
        Bf16Packed **pk = m->bf16_packed + (size_t)l * LIN_COUNT;
        /* op(B) = wᵀ: (in, out) from w (out, in), as matmul_forward multiplies */
        pk[LIN_Q] = sgemm_bf16_pack_b(1, C, C, w.q_w, C);
        pk[LIN_K] = sgemm_bf16_pack_b(1, C, C, w.k_w, C);
        pk[LIN_V] = sgemm_bf16_pack_b(1, C, C, w.v_w, C);
        pk[LIN_AO] = sgemm_bf16_pack_b(1, C, C, w.ao_w, C);
        pk[LIN_FC] = sgemm_bf16_pack_b(1, F, C, w.fc_w, C);
        pk[LIN_FO] = sgemm_bf16_pack_b(1, C, F, w.fo_w, F);
    }
}

void xlmr_bf16_unpack(Xlmr *m) {
    if (!m->bf16_packed) return;
    for (size_t i = 0; i < (size_t)m->cfg.n_layers * LIN_COUNT; i++) sgemm_bf16_packed_free(m->bf16_packed[i]);
    free(m->bf16_packed);
    m->bf16_packed = NULL;
}

/* The constants of one layer's kernels. */
typedef struct {
    AttnDims attn;
    DropAt attn_out, ffn_out;
} LayerDims;

static LayerDims layer_dims(const Xlmr *m, GemmFn g, int l, const int *ids, int B, int T, const Drop *hd,
                            const Drop *ad) {
    const XlmrConfig *c = &m->cfg;
    return (LayerDims){
        .attn = {.g = g, .ids = ids, .pad = c->pad_id, .B = B, .T = T, .C = c->hidden, .NH = c->n_heads,
                 .layer = l, .drop = ad},
        .attn_out = {.drop = hd, .layer = l, .site = DROP_ATTN_OUT},
        .ffn_out = {.drop = hd, .layer = l, .site = DROP_FFN_OUT},
    };
}

/* out (B,T,C) = layer l of x (B,T,C), keeping s for backward. hd: the hidden
 * dropout, ad: the attention-probability dropout. */
static void layer_forward(const Xlmr *m, int l, float *out, const float *x, const LayerActs *s,
                          const LayerScratch *t, const int *ids, int B, int T, const Drop *hd, const Drop *ad) {
    const XlmrConfig *c = &m->cfg;
    GemmFn g = gemm_of(m);
    int C = c->hidden, F = c->ffn, N = B * T;
    XlmrLayerWeights w = layer_weights(&m->params, c, l);
    LayerDims d = layer_dims(m, g, l, ids, B, T, hd, ad);
    static Bf16Packed *const unpacked[LIN_COUNT];
    Bf16Packed *const *pk = m->bf16_packed ? m->bf16_packed + (size_t)l * LIN_COUNT : unpacked;
    // attention.self: q, k, v = x Wᵀ + b; ctx = drop(softmax(q kᵀ / sqrt(hs))) v per head
    matmul_forward(g, pk[LIN_Q], s->q, NULL, x, w.q_w, w.q_b, N, C, C);
    matmul_forward(g, pk[LIN_K], s->k, NULL, x, w.k_w, w.k_b, N, C, C);
    matmul_forward(g, pk[LIN_V], s->v, NULL, x, w.v_w, w.v_b, N, C, C);
    attention_forward(s->ctx, s->att, s->q, s->k, s->v, &d.attn);
    // attention.output: h1 = LayerNorm(drop(ctx Waoᵀ + bao) + x)
    matmul_forward(g, pk[LIN_AO], t->branch, NULL, s->ctx, w.ao_w, w.ao_b, N, C, C);
    residual_layernorm_forward(s->h1, &s->ln1, t->branch, x, w.ln1_w, w.ln1_b, &d.attn_out, B, T, C, c->ln_eps);
    // intermediate: gelu(h1 Wfcᵀ + bfc)
    matmul_forward(g, pk[LIN_FC], s->fc, t->gelu, s->h1, w.fc_w, w.fc_b, N, C, F);
    // output: out = LayerNorm(drop(gelu Wfoᵀ + bfo) + h1)
    matmul_forward(g, pk[LIN_FO], t->branch, NULL, t->gelu, w.fo_w, w.fo_b, N, F, C);
    residual_layernorm_forward(out, &s->ln2, t->branch, s->h1, w.ln2_w, w.ln2_b, &d.ffn_out, B, T, C, c->ln_eps);
}

/* dx (B,T,C) = the gradient at layer l's input from dout (B,T,C) at its output
 * (dx may be dout); the layer's parameter gradients +=. layer_forward read
 * bottom-up: each line undoes the forward line with the same comment. */
static void layer_backward(Xlmr *m, int l, float *dx, const float *dout, const float *x, const LayerActs *s,
                           const LayerGradScratch *t, const int *ids, int B, int T, const Drop *hd,
                           const Drop *ad) {
    const XlmrConfig *c = &m->cfg;
    GemmFn g = gemm_of(m);
    int C = c->hidden, F = c->ffn, N = B * T;
    XlmrLayerWeights w = layer_weights(&m->params, c, l), dw = layer_weights(&m->grads, c, l);
    LayerDims d = layer_dims(m, g, l, ids, B, T, hd, ad);
    // output: out = LayerNorm(drop(gelu Wfoᵀ + bfo) + h1)
    residual_layernorm_backward(t->dh1, t->dbranch, dw.ln2_w, dw.ln2_b, dout, &s->ln2, w.ln2_w, &d.ffn_out, B, T, C);
    gelu_forward_slope(t->gelu, s->fc, (size_t)N * F); /* recomputed rather than kept; fc becomes gelu'(fc) */
    matmul_backward(g, t->dgelu, 0, dw.fo_w, dw.fo_b, t->dbranch, t->gelu, w.fo_w, N, F, C);
    // intermediate: gelu(h1 Wfcᵀ + bfc); h1 also feeds the residual, so dh1 +=
    scale_by(t->dgelu, s->fc, (size_t)N * F);
    matmul_backward(g, t->dh1, 1, dw.fc_w, dw.fc_b, t->dgelu, s->h1, w.fc_w, N, C, F);
    // attention.output: h1 = LayerNorm(drop(ctx Waoᵀ + bao) + x); dx starts as the residual's gradient
    residual_layernorm_backward(dx, t->dbranch, dw.ln1_w, dw.ln1_b, t->dh1, &s->ln1, w.ln1_w, &d.attn_out, B, T, C);
    matmul_backward(g, t->dctx, 0, dw.ao_w, dw.ao_b, t->dbranch, s->ctx, w.ao_w, N, C, C);
    // attention.self: q, k, v = x Wᵀ + b; ctx = drop(softmax(q kᵀ / sqrt(hs))) v per head
    attention_backward(t->dq, t->dk, t->dv, t->dctx, s->att, s->q, s->k, s->v, &d.attn);
    matmul_backward(g, dx, 1, dw.q_w, dw.q_b, t->dq, x, w.q_w, N, C, C);
    matmul_backward(g, dx, 1, dw.k_w, dw.k_b, t->dk, x, w.k_w, N, C, C);
    matmul_backward(g, dx, 1, dw.v_w, dw.v_b, t->dv, x, w.v_w, N, C, C);
}

/* ---------------------------------------------------------------------------
 * Activations. */

struct XlmrActs {
    int capB, capT, C;     /* built for */
    int B, T, pooling;     /* of the last forward */
    Drop hd, ad;           /* its dropout: hidden_dropout_prob, attention_probs_dropout_prob */
    int *ids, *pos;        /* (B,T) */
    float *emb, *emb_mean, *emb_rstd; /* (B,T,C) embedding sum, input of embeddings.LayerNorm; (B,T) its stats */
    float *h;              /* (L+1,B,T,C) layer outputs; h[0] after the embedding dropout */
    float *q, *k, *v, *ctx, *res1, *h1, *res2; /* (L,B,T,C) */
    float *mean1, *rstd1, *mean2, *rstd2;      /* (L,B,T) */
    float *att;            /* (L,B,NH,T,T) probabilities before dropout, or NULL */
    float *fc;             /* (L,B,T,F) FFN pre-activation */
    float *pooled, *out, *norm; /* (B,C), (B,C), (B) */
    LayerScratch fwd;      /* forward scratch, shared by the layers */
    LayerGradScratch bwd;  /* backward scratch (its gelu is fwd.gelu) */
    float *dh;             /* (B,T,C) gradient at a layer's output, then at its input */
    float *demb;           /* (B,T,C) gradient of the embedding sum */
    float *dpooled;        /* (B,C) */
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
    float **per_layer_nc[] = {&a->q, &a->k, &a->v, &a->ctx, &a->res1, &a->h1, &a->res2};
    for (size_t i = 0; i < sizeof per_layer_nc / sizeof *per_layer_nc; i++)
        *per_layer_nc[i] = xmalloc(L * N * C * sizeof(float));
    float **per_layer_n[] = {&a->mean1, &a->rstd1, &a->mean2, &a->rstd2};
    for (size_t i = 0; i < sizeof per_layer_n / sizeof *per_layer_n; i++)
        *per_layer_n[i] = xmalloc(L * N * sizeof(float));
    /* probabilities larger than ctx (NH T > C: base at T = 256 would keep
     * 600 MB per 16 x 256 chunk) are recomputed by backward instead */
    if ((size_t)c->n_heads * T <= C) a->att = xmalloc(L * N * (size_t)c->n_heads * (size_t)T * sizeof(float));
    a->fc = xmalloc(L * N * F * sizeof(float));
    a->pooled = xmalloc((size_t)B * C * sizeof(float));
    a->out = xmalloc((size_t)B * C * sizeof(float));
    a->norm = xmalloc((size_t)B * sizeof(float));
    a->dpooled = xmalloc((size_t)B * C * sizeof(float));
    a->fwd = (LayerScratch){.branch = xmalloc(N * C * sizeof(float)), .gelu = xmalloc(N * F * sizeof(float))};
    float **nc[] = {&a->bwd.dh1, &a->bwd.dbranch, &a->bwd.dctx, &a->bwd.dq, &a->bwd.dk, &a->bwd.dv, &a->dh, &a->demb};
    for (size_t i = 0; i < sizeof nc / sizeof *nc; i++) *nc[i] = xmalloc(N * C * sizeof(float));
    a->bwd.gelu = a->fwd.gelu;
    a->bwd.dgelu = xmalloc(N * F * sizeof(float));
    return a;
}

void xlmr_acts_free(XlmrActs *a) {
    if (!a) return;
    float *fs[] = {a->emb, a->emb_mean, a->emb_rstd, a->h, a->q, a->k, a->v, a->ctx, a->res1, a->h1, a->res2,
                   a->mean1, a->rstd1, a->mean2, a->rstd2, a->att, a->fc, a->pooled, a->out, a->norm, a->dpooled,
                   a->fwd.branch, a->fwd.gelu, /* bwd.gelu is fwd.gelu */
                   a->bwd.dh1, a->bwd.dbranch, a->bwd.dctx, a->bwd.dq, a->bwd.dk, a->bwd.dv, a->bwd.dgelu, a->dh,
                   a->demb};
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) free(fs[i]);
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


/* Layer l's views of a: the per-layer stride is the current (B,T), so the
 * buffers of a smaller batch stay contiguous. */
static LayerActs layer_acts(const XlmrActs *a, const Xlmr *m, int l) {
    size_t N = (size_t)a->B * a->T, C = (size_t)m->cfg.hidden, F = (size_t)m->cfg.ffn;
    size_t NH = (size_t)m->cfg.n_heads, NC = N * C;
    return (LayerActs){
        .q = a->q + l * NC,
        .k = a->k + l * NC,
        .v = a->v + l * NC,
        .att = a->att ? a->att + l * N * NH * a->T : NULL,
        .ctx = a->ctx + l * NC,
        .ln1 = {.inp = a->res1 + l * NC, .mean = a->mean1 + l * N, .rstd = a->rstd1 + l * N},
        .h1 = a->h1 + l * NC,
        .fc = a->fc + l * N * F,
        .ln2 = {.inp = a->res2 + l * NC, .mean = a->mean2 + l * N, .rstd = a->rstd2 + l * N},
    };
}

/* ---------------------------------------------------------------------------
 * The model: forward, backward, inference. */

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
    const XlmrParams *p = &m->params;
    LnActs emb_ln = {.inp = a->emb, .mean = a->emb_mean, .rstd = a->emb_rstd};
    DropAt emb_drop = {.drop = &a->hd, .layer = 0, .site = DROP_EMB};
    // embeddings: h0 = drop(LayerNorm(word[ids] + pos_emb[pos] + type_emb[0]))
    positions_forward(a->pos, ids, B, T, c->pad_id);
    embeddings_forward(a->emb, ids, a->pos, p->word_emb, p->pos_emb, p->type_emb, N, C);
    layernorm_forward(a->h, &emb_ln, p->emb_ln_w, p->emb_ln_b, N, C, c->ln_eps);
    dropout_forward(a->h, a->h, &emb_drop, B, T, C);
    // encoder.layer[l]: h[l+1] = layer l of h[l]
    for (int l = 0; l < c->n_layers; l++) {
        LayerActs s = layer_acts(a, m, l);
        layer_forward(m, l, a->h + (l + 1) * NC, a->h + l * NC, &s, &a->fwd, ids, B, T, &a->hd, &a->ad);
    }
    // pooling (sentence-transformers): mean over non-pad tokens or token 0, then L2-normalised
    pool_forward(a->pooled, a->h + (size_t)c->n_layers * NC, ids, c->pad_id, B, T, C, pooling);
    normalize_forward(a->out, a->norm, a->pooled, B, C);
    if (out) memcpy(out, a->out, (size_t)B * C * sizeof(float));
}

/* The encoder's backward from a->dh, the gradient at the last hidden state
 * (overwritten on the way down). */
static void encoder_backward(Xlmr *m, XlmrActs *a) {
    const XlmrConfig *c = &m->cfg;
    if (m->bf16_packed) die("xlmr: backward on a model packed for BF16 inference (xlmr_bf16_unpack first)");
    if (!m->grads_memory) xlmr_grads_alloc(m);
    int B = a->B, T = a->T, C = c->hidden, N = B * T;
    size_t NC = (size_t)N * C;
    LnActs emb_ln = {.inp = a->emb, .mean = a->emb_mean, .rstd = a->emb_rstd};
    DropAt emb_drop = {.drop = &a->hd, .layer = 0, .site = DROP_EMB};
    // encoder.layer[l], last to first; a->dh: d h[l+1] in, d h[l] out
    for (int l = c->n_layers - 1; l >= 0; l--) {
        LayerActs s = layer_acts(a, m, l);
        layer_backward(m, l, a->dh, a->dh, a->h + (size_t)l * NC, &s, &a->bwd, a->ids, B, T, &a->hd, &a->ad);
    }
    // embeddings: h0 = drop(LayerNorm(word[ids] + pos_emb[pos] + type_emb[0]))
    dropout_backward(a->bwd.dbranch, a->dh, &emb_drop, B, T, C);
    layernorm_backward(a->demb, m->grads.emb_ln_w, m->grads.emb_ln_b, a->bwd.dbranch, &emb_ln, m->params.emb_ln_w,
                       N, C);
    embeddings_backward(m, a->demb, a->ids, a->pos, N);
}

void xlmr_backward(Xlmr *m, XlmrActs *a, const float *dout) {
    const XlmrConfig *c = &m->cfg;
    // pooling
    normalize_backward(a->dpooled, dout, a->out, a->norm, a->B, c->hidden);
    pool_backward(a->dh, a->dpooled, a->ids, c->pad_id, a->B, a->T, c->hidden, a->pooling);
    encoder_backward(m, a);
}

void xlmr_backward_hidden(Xlmr *m, XlmrActs *a, const float *dh) {
    if (dh != a->dh) memcpy(a->dh, dh, (size_t)a->B * a->T * m->cfg.hidden * sizeof(float));
    encoder_backward(m, a);
}

/* ---------------------------------------------------------------------------
 * The masked-LM head (XLMRobertaLMHead), at the M chosen positions only. */

struct XlmrMlmActs {
    int capM, M;
    int *pos;       /* (M) rows of the encoder output */
    float *x;       /* (M,C) the encoder's last hidden state at pos, input of lm_head.dense */
    float *d;       /* (M,C) lm_head.dense output, the GELU's input */
    float *g;       /* (M,C) GELU output, lm_head.layer_norm's input */
    float *mean, *rstd; /* (M) its statistics */
    float *y;       /* (M,C) layer_norm output, the decoder's input */
    float *dy, *dg; /* (M,C) backward scratch */
};

XlmrMlmActs *xlmr_mlm_acts_build(const Xlmr *m, int M) {
    XlmrMlmActs *h = xcalloc(1, sizeof *h);
    size_t Mc = (size_t)(M > 0 ? M : 1), MC = Mc * (size_t)m->cfg.hidden;
    h->capM = M;
    h->pos = xmalloc(Mc * sizeof(int));
    float **mc[] = {&h->x, &h->d, &h->g, &h->y, &h->dy, &h->dg};
    for (size_t i = 0; i < sizeof mc / sizeof *mc; i++) *mc[i] = xmalloc(MC * sizeof(float));
    h->mean = xmalloc(Mc * sizeof(float));
    h->rstd = xmalloc(Mc * sizeof(float));
    return h;
}

void xlmr_mlm_acts_free(XlmrMlmActs *h) {
    if (!h) return;
    float *fs[] = {h->x, h->d, h->g, h->y, h->dy, h->dg, h->mean, h->rstd};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++) free(fs[i]);
    free(h->pos);
    free(h);
}

/* The decoder weight (V,C) of the head, tied or not, in p (parameters or gradients). */
static float *decoder_of(const Xlmr *m, const XlmrParams *p) {
    return m->cfg.tie_word_embeddings ? p->word_emb : p->lm_decoder;
}

/* Every word-embedding row receives the tied decoder's gradient. */
static void touch_all_rows(Xlmr *m) {
    int V = m->cfg.vocab;
    if (m->n_touched == V) return;
    for (int r = 0; r < V; r++) m->row_touched[r] = 1;
    for (int r = 0; r < V; r++) m->touched_rows[r] = r;
    m->n_touched = V;
}

int xlmr_mlm_forward(Xlmr *m, const XlmrActs *a, XlmrMlmActs *h, float *logits, const int *pos, int M) {
    const XlmrConfig *c = &m->cfg;
    if (!c->mlm_head) return xerr("the model has no masked-LM head (lm_head.* tensors)");
    if (M < 0 || M > h->capM) return xerr("xlmr_mlm_forward: %d positions, built for %d", M, h->capM);
    int C = c->hidden, N = a->B * a->T;
    for (int i = 0; i < M; i++)
        if (pos[i] < 0 || pos[i] >= N) return xerr("xlmr_mlm_forward: position %d outside [0, %d)", pos[i], N);
    h->M = M;
    if (M == 0) return 0;
    memcpy(h->pos, pos, (size_t)M * sizeof(int));
    GemmFn g = gemm_of(m);
    const XlmrParams *p = &m->params;
    const float *last = xlmr_acts_hidden(a, c->n_layers);
    LnActs ln = {.inp = h->g, .mean = h->mean, .rstd = h->rstd};
    for (int i = 0; i < M; i++) memcpy(h->x + (size_t)i * C, last + (size_t)pos[i] * C, (size_t)C * sizeof(float));
    // dense: d = x Wdᵀ + bd, then the exact GELU
    matmul_forward(g, NULL, h->d, h->g, h->x, p->lm_dense_w, p->lm_dense_b, M, C, C);
    // layer_norm: y = LayerNorm(g)
    layernorm_forward(h->y, &ln, p->lm_ln_w, p->lm_ln_b, M, C, c->ln_eps);
    // decoder: logits = y Eᵀ + bias
    matmul_forward(g, NULL, logits, NULL, h->y, decoder_of(m, p), p->lm_bias, M, C, c->vocab);
    return 0;
}

void xlmr_mlm_backward(Xlmr *m, XlmrActs *a, XlmrMlmActs *h, const float *dlogits) {
    const XlmrConfig *c = &m->cfg;
    if (!m->grads_memory) xlmr_grads_alloc(m);
    int M = h->M, C = c->hidden, N = a->B * a->T;
    if (M == 0) return; /* no position: no gradient anywhere */
    GemmFn g = gemm_of(m);
    const XlmrParams *p = &m->params;
    XlmrParams *d = &m->grads;
    LnActs ln = {.inp = h->g, .mean = h->mean, .rstd = h->rstd};
    // decoder: logits = y Eᵀ + bias; the tied E's gradient reaches every row
    matmul_backward(g, h->dy, 0, decoder_of(m, d), d->lm_bias, dlogits, h->y, decoder_of(m, p), M, C, c->vocab);
    if (c->tie_word_embeddings) touch_all_rows(m);
    // layer_norm, then GELU and dense
    layernorm_backward(h->dg, d->lm_ln_w, d->lm_ln_b, h->dy, &ln, p->lm_ln_w, M, C);
    gelu_backward(h->dg, h->dg, h->d, (size_t)M * C);
    matmul_backward(g, h->dy, 0, d->lm_dense_w, d->lm_dense_b, h->dg, h->x, p->lm_dense_w, M, C, C);
    // the gradient at the encoder's output: dx at the chosen rows, 0 elsewhere
    memset(a->dh, 0, (size_t)N * C * sizeof(float));
    for (int i = 0; i < M; i++) {
        float *dst = a->dh + (size_t)h->pos[i] * C;
        const float *src = h->dy + (size_t)i * C;
        for (int k = 0; k < C; k++) dst[k] += src[k];
    }
    encoder_backward(m, a);
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
    /* one layer's activations, reused by every layer; x and y swap between layers */
    float *x = xmalloc(NC * sizeof(float)), *y = xmalloc(NC * sizeof(float)), *emb = xmalloc(NC * sizeof(float));
    float *acts = xmalloc(7 * NC * sizeof(float)), *stats = xmalloc(4 * N * sizeof(float));
    float *fc = xmalloc(NF * sizeof(float));
    float *pooled = xmalloc((size_t)Bc * C * sizeof(float)), *norm = xmalloc((size_t)Bc * sizeof(float));
    int *pos = xmalloc(N * sizeof(int));
    LayerActs s = {.q = acts, .k = acts + NC, .v = acts + 2 * NC, .att = NULL, .ctx = acts + 3 * NC,
                   .ln1 = {.inp = acts + 4 * NC, .mean = stats, .rstd = stats + N}, .h1 = acts + 5 * NC, .fc = fc,
                   .ln2 = {.inp = acts + 6 * NC, .mean = stats + 2 * N, .rstd = stats + 3 * N}};
    LayerScratch t = {.branch = xmalloc(NC * sizeof(float)), .gelu = fc}; /* GELU in place: no backward */
    LnActs emb_ln = {.inp = emb, .mean = stats, .rstd = stats + N};
    Drop off = drop_make(NULL, 0);
    const XlmrParams *p = &m->params;
    for (int b0 = 0; b0 < B; b0 += Bc) {
        int nb = B - b0 < Bc ? B - b0 : Bc, n = nb * T;
        const int *id = ids + (size_t)b0 * T;
        positions_forward(pos, id, nb, T, c->pad_id);
        embeddings_forward(emb, id, pos, p->word_emb, p->pos_emb, p->type_emb, n, C);
        layernorm_forward(x, &emb_ln, p->emb_ln_w, p->emb_ln_b, n, C, c->ln_eps);
        for (int l = 0; l < L; l++) {
            layer_forward(m, l, y, x, &s, &t, id, nb, T, &off, &off);
            float *swap = x;
            x = y;
            y = swap;
        }
        pool_forward(pooled, x, id, c->pad_id, nb, T, C, pooling);
        normalize_forward(out + (size_t)b0 * C, norm, pooled, nb, C);
    }
    free(x); free(y); free(emb); free(acts); free(stats); free(fc); free(t.branch);
    free(pooled); free(norm); free(pos);
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
    int rc = 0, packed_here = !m->bf16_packed && n > 0;
    if (packed_here) xlmr_bf16_pack(m); /* the weights are those of every batch */
    /* data parallel (dist.h): batch j is rank j mod P's, then every rank gets
     * every row; the batches are those of one process, so are the embeddings */
    const int P = dist_size(), me = dist_rank();
    for (int i0 = 0; i0 < n && rc == 0; i0 += batch) {
        if ((i0 / batch) % P != me) continue;
        int nb = n - i0 < batch ? n - i0 : batch, T = lens[order[i0]] > 0 ? lens[order[i0]] : 1;
        for (int b = 0; b < nb; b++) {
            int k = order[i0 + b];
            for (int t = 0; t < T; t++) pad[b * T + t] = t < lens[k] ? ids[k][t] : c->pad_id;
        }
        if ((rc = xlmr_embed(m, emb, pad, nb, T, pooling)) != 0) break;
        for (int b = 0; b < nb; b++)
            memcpy(out + (size_t)order[i0 + b] * C, emb + (size_t)b * C, (size_t)C * sizeof(float));
        double now = now_seconds();
        if (label && me == 0 && (now - last > 2.0 || i0 + nb >= n - (P - 1) * batch)) {
            double rate = (i0 + nb) / (now - t0 + 1e-9);
            fprintf(stderr, "%s: %d/%d texts, %.0f/s, ETA %.0fs\n", label, i0 + nb, n, rate, (n - i0 - nb) / rate);
            last = now;
        }
    }
    if (packed_here) xlmr_bf16_unpack(m);
    if (rc == 0 && P > 1) {
        int *owner = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int));
        for (int i = 0; i < n; i++) owner[i] = (i / batch) % P;
        dist_share_rows(out, C, order, owner, n);
        free(owner);
    }
    free(order);
    free(pad);
    free(emb);
    return rc;
}
