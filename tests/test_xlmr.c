/* tests/test_xlmr.c: the encoder against the float64 torch reference
 * (tests/ref/make_vectors.py: hidden states, pooled embeddings, InfoNCE loss
 * and every parameter gradient), loading variants (F16, BF16, roberta. prefix,
 * extra tensors), a finite-difference gradient check with and without dropout,
 * the chunked re-forward, the scalar/1-thread paths and save/load. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "loss.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"
#include "xlmr.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static char *ref_dir(const char *name) {
    char *d = path_join("tests/ref", name);
    if (!is_dir(d)) { /* run from build/ */
        free(d);
        d = path_join("../tests/ref", name);
    }
    return d;
}

typedef struct {
    SafeTensors st;
    int B, T;
    int *ids;
} Ref;

static float *ref_get(Ref *r, const char *name, size_t numel) {
    const StTensor *t = st_find(&r->st, name);
    if (!t || t->numel != numel) {
        printf("reference tensor %s missing or of the wrong size\n", name);
        return NULL;
    }
    float *x = xmalloc(numel * sizeof(float));
    st_read_f32(&r->st, t, x);
    return x;
}

static int ref_open(Ref *r, const char *dir) {
    char *p = path_join(dir, "ref.safetensors");
    int rc = st_open(&r->st, p);
    free(p);
    if (rc) return -1;
    const StTensor *t = st_find(&r->st, "ids");
    r->B = (int)t->shape[0];
    r->T = (int)t->shape[1];
    float *f = ref_get(r, "ids", (size_t)r->B * r->T);
    r->ids = xmalloc((size_t)r->B * r->T * sizeof(int));
    for (int i = 0; i < r->B * r->T; i++) r->ids[i] = (int)f[i];
    free(f);
    return 0;
}

static void ref_close(Ref *r) {
    st_close(&r->st);
    free(r->ids);
}

/* InfoNCE over out (B,C): first half queries, second half passages; dout (B,C). */
static double loss_of(const float *out, float *dout, int B, int C) {
    int H = B / 2;
    return infonce_forward_backward(dout, dout ? dout + (size_t)H * C : NULL, out, out + (size_t)H * C, H, H, C,
                                    0.05f);
}

/* Parity with the torch reference for one configuration. */
static void check_parity(const char *name, int pooling) {
    char *dir = ref_dir(name);
    Xlmr m;
    Ref r;
    int ok = xlmr_load(&m, dir) == 0;
    CHECK(ok, "%s: load: %s", name, xerr_msg());
    if (!ok || ref_open(&r, dir) != 0) {
        CHECK(0, "%s: reference: %s", name, xerr_msg());
        free(dir);
        return;
    }
    int B = r.B, T = r.T, C = m.cfg.hidden, L = m.cfg.n_layers;
    XlmrActs *a = xlmr_acts_build(&m, B, T);
    float *out = xmalloc((size_t)B * C * sizeof(float)), *dout = xmalloc((size_t)B * C * sizeof(float));
    char key[200];
    /* the other pooling first, so the activations end with the loss's pooling */
    int other = pooling == POOL_MEAN ? POOL_CLS : POOL_MEAN;
    const char *pname[2] = {"emb.mean", "emb.cls"};
    xlmr_forward(&m, a, out, r.ids, B, T, other, NULL);
    float *e = ref_get(&r, pname[other], (size_t)B * C);
    CHECK_REPORT(e && max_abs_diff(out, e, (size_t)B * C) <= 1e-5, "%s: %s max abs err %.2e", name, pname[other],
                 e ? max_abs_diff(out, e, (size_t)B * C) : -1.0);
    free(e);
    xlmr_forward(&m, a, out, r.ids, B, T, pooling, NULL);
    double worst = 0;
    for (int l = 0; l <= L; l++) {
        snprintf(key, sizeof key, "hidden.%d", l);
        float *h = ref_get(&r, key, (size_t)B * T * C);
        double d = h ? max_abs_diff(xlmr_acts_hidden(a, l), h, (size_t)B * T * C) : 1;
        if (d > worst) worst = d;
        free(h);
    }
    CHECK_REPORT(worst <= 1e-5, "%s: hidden states (%d layers + embeddings) max abs err %.2e", name, L, worst);
    e = ref_get(&r, pname[pooling], (size_t)B * C);
    CHECK_REPORT(e && max_abs_diff(out, e, (size_t)B * C) <= 1e-5, "%s: %s max abs err %.2e", name,
                 pname[pooling], e ? max_abs_diff(out, e, (size_t)B * C) : -1.0);
    /* the inference path */
    float *emb = xmalloc((size_t)B * C * sizeof(float));
    CHECK(xlmr_embed(&m, emb, r.ids, B, T, pooling) == 0, "embed: %s", xerr_msg());
    CHECK_REPORT(e && max_abs_diff(emb, e, (size_t)B * C) <= 1e-5, "%s: xlmr_embed max abs err %.2e", name,
                 e ? max_abs_diff(emb, e, (size_t)B * C) : -1.0);
    /* the BF16 compute path (bf16 GEMM inputs, fp32 accumulation and weights): close, not equal */
    m.use_bf16 = 1;
    CHECK(xlmr_embed(&m, emb, r.ids, B, T, pooling) == 0, "embed bf16: %s", xerr_msg());
    /* weights packed once for BF16 inference: bitwise the same embeddings */
    float *emb_pk = xmalloc((size_t)B * C * sizeof(float));
    xlmr_bf16_pack(&m);
    CHECK(m.bf16_packed && xlmr_embed(&m, emb_pk, r.ids, B, T, pooling) == 0, "embed bf16 packed: %s", xerr_msg());
    xlmr_bf16_unpack(&m);
    CHECK_REPORT(!m.bf16_packed && !memcmp(emb, emb_pk, (size_t)B * C * sizeof(float)),
                 "%s: xlmr_embed in BF16 with the weights packed once = packed per product, bitwise", name);
    free(emb_pk);
    m.use_bf16 = 0;
    double dbf = e ? max_abs_diff(emb, e, (size_t)B * C) : -1.0;
    CHECK_REPORT(e && dbf > 0 && dbf <= 1e-2, "%s: xlmr_embed in BF16 vs torch FP32 max abs err %.2e (<= 1e-2)", name,
                 dbf);
    free(e);
    double loss = loss_of(out, dout, B, C);
    float *rl = ref_get(&r, "loss", 1);
    CHECK_REPORT(rl && fabs(loss - rl[0]) <= 1e-5 * fabs(rl[0]) + 1e-6, "%s: loss %.7f vs %.7f", name, loss,
                 rl ? rl[0] : 0);
    free(rl);
    xlmr_grads_alloc(&m);
    xlmr_zero_grad(&m);
    xlmr_backward(&m, a, dout);
    double gworst = 0, gmax = 0;
    char gname[160] = "";
    for (int i = 0; i < r.st.n; i++) {
        if (strncmp(r.st.t[i].name, "grad.", 5) != 0) continue;
        float *g = ref_get(&r, r.st.t[i].name, r.st.t[i].numel);
        for (size_t j = 0; g && j < r.st.t[i].numel; j++) gmax = fabs(g[j]) > gmax ? fabs(g[j]) : gmax;
        free(g);
    }
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        if (!m.sizes[i]) continue; /* the masked-LM head's: no head here */
        int nl = xlmr_tensor_is_layered(i) ? L : 1;
        size_t per = m.sizes[i] / (size_t)nl;
        for (int l = 0; l < nl; l++) {
            char hf[160];
            snprintf(hf, sizeof hf, xlmr_tensor_name(i), l);
            snprintf(key, sizeof key, "grad.%s", hf);
            float *g = ref_get(&r, key, per), *mine = m.grads_memory + m.offsets[i] + (size_t)l * per;
            double mag = 0, d = 1;
            for (size_t j = 0; g && j < per; j++) mag = fabs(g[j]) > mag ? fabs(g[j]) : mag;
            /* the key bias cannot change a softmax: its true gradient is 0 and
             * both sides hold rounding noise, judged against the largest gradient */
            if (g) d = mag < 1e-6 * gmax ? max_abs_diff(mine, g, per) / gmax : max_rel_diff(mine, g, per);
            CHECK(d <= 1e-4, "%s: %s rel err %.2e", name, key, d);
            if (d > gworst) {
                gworst = d;
                snprintf(gname, sizeof gname, "%s", hf);
            }
            free(g);
        }
    }
    CHECK_REPORT(gworst <= 1e-4, "%s: gradients of all %d tensors, worst rel err %.2e (%s)", name,
                 XLMR_NUM_TENSORS, gworst, gname);
    /* sparse word-embedding rows: exactly the distinct non-pad ids */
    int distinct = 0;
    unsigned char *seen = xcalloc((size_t)m.cfg.vocab, 1);
    for (int i = 0; i < B * T; i++)
        if (r.ids[i] != m.cfg.pad_id && !seen[r.ids[i]]) seen[r.ids[i]] = 1, distinct++;
    CHECK(m.n_touched == distinct, "touched rows %d, expected %d", m.n_touched, distinct);
    float padrow = 0;
    for (int c = 0; c < C; c++)
        padrow += fabsf(m.grads.pos_emb[(size_t)m.cfg.pad_id * C + c]) +
                  fabsf(m.grads.word_emb[(size_t)m.cfg.pad_id * C + c]);
    CHECK(padrow == 0, "padding rows got gradient");
    xlmr_zero_grad(&m);
    int zero = m.n_touched == 0;
    for (size_t i = 0; i < m.n_params && zero; i++) zero = m.grads_memory[i] == 0;
    CHECK(zero, "zero_grad left gradient behind");
    free(seen);
    free(emb);
    free(out);
    free(dout);
    xlmr_acts_free(a);
    xlmr_free(&m);
    ref_close(&r);
    free(dir);
}

static void check_loading(void) {
    char *da = ref_dir("xlmr_a"), *df = ref_dir("xlmr_a_f16"), *db = ref_dir("xlmr_b");
    Xlmr a, f, b;
    CHECK(xlmr_load(&a, da) == 0, "load a: %s", xerr_msg());
    CHECK(xlmr_load(&f, df) == 0, "load a_f16: %s", xerr_msg());
    /* every value the F16 rounding of the F32 one: relative 2^-11, subnormals 2^-24 */
    int ok = a.n_params == f.n_params;
    double worst = 0;
    for (size_t i = 0; ok && i < a.n_params; i++) {
        double d = fabs((double)a.params_memory[i] - f.params_memory[i]);
        if (d > fabs(a.params_memory[i]) * (1.0 / 2048) + 6e-8) ok = 0;
        if (d > worst) worst = d;
    }
    CHECK_REPORT(ok && worst > 0, "F16 + roberta. prefix loads as the rounded F32 model (max diff %.2e)", worst);
    CHECK(xlmr_load(&b, db) == 0, "load b: %s", xerr_msg());
    CHECK(b.cfg.hidden_dropout == 0.1f && b.cfg.attn_dropout == 0.1f, "dropout defaults");
    CHECK(fabsf(b.cfg.ln_eps - 1e-6f) < 1e-12f && b.cfg.type_vocab == 2, "eps and type_vocab from config.json");
    /* save + load: bit-identical */
    char tmpl[] = "/tmp/xlmr-test-XXXXXX";
    char *tmp = mkdtemp(tmpl);
    CHECK(tmp && xlmr_save(&a, tmp, NULL) == 0, "save: %s", xerr_msg());
    Xlmr s;
    CHECK(tmp && xlmr_load(&s, tmp) == 0, "reload: %s", xerr_msg());
    CHECK(s.n_params == a.n_params && !memcmp(s.params_memory, a.params_memory, a.n_params * sizeof(float)) &&
              !memcmp(&s.cfg, &a.cfg, sizeof s.cfg),
          "save/load round trip differs");
    if (tmp) remove_tree(tmp);
    xlmr_free(&s);
    xlmr_free(&a);
    xlmr_free(&f);
    xlmr_free(&b);
    free(da);
    free(df);
    free(db);
}

/* ---- a tiny random model for the self-consistency checks ---- */

static void tiny_model(Xlmr *m) {
    XlmrConfig c = {.n_layers = 2, .hidden = 16, .n_heads = 2, .ffn = 32, .vocab = 30, .max_pos = 20,
                    .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f, .hidden_dropout = 0.1f, .attn_dropout = 0.1f};
    xlmr_build(m, &c);
    xlmr_init_random(m, 0); /* LayerNorm weights 1, biases 0: the vectors are perturbed around those */
    Rng r;
    rng_seed(&r, 7);
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        size_t shape[2];
        int nd = xlmr_tensor_shape(&c, i, shape);
        float *t = m->params_memory + m->offsets[i];
        for (size_t j = 0; j < m->sizes[i]; j++) t[j] = nd == 2 ? 0.4f * rng_normal(&r) : t[j] + 0.1f * rng_normal(&r);
    }
}

static const int tiny_ids[4 * 10] = {
    0, 5, 9, 12, 7, 2, 1, 1, 1, 1,
    0, 4, 17, 22, 3, 8, 11, 29, 6, 2,
    0, 13, 2, 1, 1, 1, 1, 1, 1, 1,
    0, 21, 14, 5, 19, 25, 2, 1, 1, 1,
};

static double tiny_loss(Xlmr *m, XlmrActs *a, const XlmrDropout *d, float *out, float *dout) {
    xlmr_forward(m, a, out, tiny_ids, 4, 10, POOL_MEAN, d);
    return loss_of(out, dout, 4, m->cfg.hidden);
}

static void check_finite_differences(int dropout) {
    Xlmr m;
    tiny_model(&m);
    XlmrDropout d = {1, 1234, 0};
    const XlmrDropout *dp = dropout ? &d : NULL;
    int C = m.cfg.hidden;
    XlmrActs *a = xlmr_acts_build(&m, 4, 10);
    float out[4 * 16], dout[4 * 16];
    xlmr_grads_alloc(&m);
    tiny_loss(&m, a, dp, out, dout);
    xlmr_backward(&m, a, dout);
    Rng r;
    rng_seed(&r, 99);
    int bad = 0, n = 0;
    double worst = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++)
        for (int k = 0; k < 2 && m.sizes[i]; k++) {
            size_t j;
            if (i == XLMR_T_WORD_EMB) j = (size_t)tiny_ids[11 + k] * C + rng_below(&r, (uint32_t)C); /* rows in use */
            else if (i == XLMR_T_POS_EMB) j = (size_t)(3 + k) * C + rng_below(&r, (uint32_t)C);
            else if (i == XLMR_T_TYPE_EMB) j = rng_below(&r, (uint32_t)C);
            else j = rng_below(&r, (uint32_t)m.sizes[i]);
            float *p = m.params_memory + m.offsets[i] + j, save = *p;
            const float h = 1e-2f;
            *p = save + h;
            double lp = tiny_loss(&m, a, dp, out, NULL);
            *p = save - h;
            double lm = tiny_loss(&m, a, dp, out, NULL);
            *p = save;
            double fd = (lp - lm) / (2.0 * h), g = m.grads_memory[m.offsets[i] + j];
            double err = fabs(fd - g) / (fabs(fd) + fabs(g) + 1e-2);
            if (err > worst) worst = err;
            if (err > 3e-2) {
                bad++;
                printf("  fd %s[%zu]: fd %.6g, backward %.6g\n", xlmr_tensor_name(i), j, fd, g);
            }
            n++;
        }
    CHECK_REPORT(bad == 0, "finite differences, dropout %s: %d coordinates, worst rel err %.2e", dropout ? "on" : "off",
                 n, worst);
    xlmr_acts_free(a);
    xlmr_free(&m);
}

/* The same batch in two chunks (seq_base 0 and 2) gives the same outputs and
 * gradients as one call, dropout on; masks depend on the seed only. */
static void check_chunking_and_paths(void) {
    Xlmr m;
    tiny_model(&m);
    int C = m.cfg.hidden;
    size_t np = m.n_params;
    XlmrActs *a = xlmr_acts_build(&m, 4, 10);
    float out[4 * 16], dout[4 * 16], o2[4 * 16], ev[4 * 16];
    XlmrDropout d = {1, 77, 0}, d2 = {1, 77, 2}, other = {1, 78, 0};
    xlmr_grads_alloc(&m);
    tiny_loss(&m, a, &d, out, dout);
    xlmr_backward(&m, a, dout);
    float *g1 = xmalloc(np * sizeof(float));
    memcpy(g1, m.grads_memory, np * sizeof(float));
    xlmr_zero_grad(&m);
    XlmrActs *h = xlmr_acts_build(&m, 2, 10);
    xlmr_forward(&m, h, o2, tiny_ids, 2, 10, POOL_MEAN, &d);
    xlmr_backward(&m, h, dout);
    xlmr_forward(&m, h, o2 + 2 * C, tiny_ids + 20, 2, 10, POOL_MEAN, &d2);
    xlmr_backward(&m, h, dout + 2 * C);
    double dout_err = max_abs_diff(o2, out, 4 * (size_t)C), dg = max_rel_diff(m.grads_memory, g1, np);
    CHECK_REPORT(dout_err <= 1e-6 && dg <= 1e-5, "chunked re-forward with dropout: outputs %.1e, grads rel %.1e",
                 dout_err, dg);
    /* each sequence alone, unpadded: the same masks, so the same embedding */
    static const int lens[4] = {6, 10, 3, 7};
    double worst = 0;
    for (int b = 0; b < 4; b++) {
        XlmrDropout db = {1, 77, b};
        xlmr_forward(&m, h, o2, tiny_ids + 10 * b, 1, lens[b], POOL_MEAN, &db);
        double e = max_abs_diff(o2, out + (size_t)b * C, (size_t)C);
        if (e > worst) worst = e;
    }
    CHECK_REPORT(worst <= 1e-6, "dropout masks independent of padding: unpadded sequences %.1e", worst);
    xlmr_forward(&m, a, ev, tiny_ids, 4, 10, POOL_MEAN, NULL);
    xlmr_forward(&m, a, o2, tiny_ids, 4, 10, POOL_MEAN, &other);
    CHECK(max_abs_diff(ev, out, 4 * (size_t)C) > 1e-3 && max_abs_diff(o2, out, 4 * (size_t)C) > 1e-3,
          "dropout changes the output and depends on the seed");
    XlmrDropout nod = {0, 77, 0};
    xlmr_forward(&m, a, o2, tiny_ids, 4, 10, POOL_MEAN, &nod);
    CHECK(max_abs_diff(ev, o2, 4 * (size_t)C) == 0, "train = 0 is eval mode");

    /* scalar sgemm_ref against the fast sgemm, and 1 thread against all */
    xlmr_zero_grad(&m);
    tiny_loss(&m, a, &d, out, dout);
    xlmr_backward(&m, a, dout);
    memcpy(g1, m.grads_memory, np * sizeof(float));
    m.use_ref_gemm = 1;
    xlmr_zero_grad(&m);
    tiny_loss(&m, a, &d, o2, dout);
    xlmr_backward(&m, a, dout);
    m.use_ref_gemm = 0;
    CHECK_REPORT(max_abs_diff(o2, out, 4 * (size_t)C) <= 1e-5 && max_rel_diff(m.grads_memory, g1, np) <= 1e-4,
                 "sgemm vs sgemm_ref: outputs %.1e, grads rel %.1e", max_abs_diff(o2, out, 4 * (size_t)C),
                 max_rel_diff(m.grads_memory, g1, np));
#ifdef _OPENMP
    int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    xlmr_zero_grad(&m);
    tiny_loss(&m, a, &d, o2, dout);
    xlmr_backward(&m, a, dout);
    omp_set_num_threads(nt);
    CHECK_REPORT(max_abs_diff(o2, out, 4 * (size_t)C) <= 1e-5 && max_rel_diff(m.grads_memory, g1, np) <= 1e-4,
                 "1 thread vs %d: outputs %.1e, grads rel %.1e", nt, max_abs_diff(o2, out, 4 * (size_t)C),
                 max_rel_diff(m.grads_memory, g1, np));
#endif
    /* BF16 GEMMs (fp32 master weights): close, not equal */
    m.use_bf16 = 1;
    tiny_loss(&m, a, &d, o2, NULL);
    m.use_bf16 = 0;
    CHECK_REPORT(max_abs_diff(o2, out, 4 * (size_t)C) <= 3e-2, "BF16 GEMMs vs FP32: outputs %.1e",
                 max_abs_diff(o2, out, 4 * (size_t)C));
    /* inference on ragged input equals the padded batch */
    const int *rows[4] = {tiny_ids, tiny_ids + 10, tiny_ids + 20, tiny_ids + 30};
    CHECK(xlmr_embed_ragged(&m, o2, rows, lens, 4, 3, POOL_MEAN, NULL) == 0, "ragged: %s", xerr_msg());
    CHECK_REPORT(max_abs_diff(o2, ev, 4 * (size_t)C) <= 1e-6, "ragged inference = padded training forward (%.1e)",
                 max_abs_diff(o2, ev, 4 * (size_t)C));
    XlmrActs *big = xlmr_acts_build(&m, 5, 16); /* activations larger than the batch */
    xlmr_forward(&m, big, o2, tiny_ids, 4, 10, POOL_MEAN, NULL);
    CHECK(max_abs_diff(o2, ev, 4 * (size_t)C) == 0, "forward in larger activations");
    xlmr_acts_free(big);
    int badid[3] = {0, 30, 2};
    CHECK(xlmr_embed(&m, o2, badid, 1, 3, POOL_MEAN) == -1, "an id past the vocabulary is refused");
    free(g1);
    xlmr_acts_free(a);
    xlmr_acts_free(h);
    xlmr_free(&m);
}

static void check_init(void) {
    Xlmr m;
    tiny_model(&m);
    xlmr_init_random(&m, 5);
    double s = 0, s2 = 0;
    size_t n = m.sizes[XLMR_T_Q_W];
    for (size_t i = 0; i < n; i++) s += m.params.q_w[i], s2 += (double)m.params.q_w[i] * m.params.q_w[i];
    double sd = sqrt(s2 / n - (s / n) * (s / n));
    int ok = fabs(sd - 0.02) < 0.002 && m.params.ln1_w[3] == 1 && m.params.q_b[2] == 0 && m.params.emb_ln_b[0] == 0;
    for (int c = 0; c < m.cfg.hidden; c++) ok &= m.params.word_emb[m.cfg.pad_id * m.cfg.hidden + c] == 0;
    CHECK_REPORT(ok, "HF init: N(0, 0.02) weights (sd %.4f), LayerNorm 1/0, biases 0, padding rows 0", sd);
    CHECK(xlmr_tensor_decays(XLMR_T_WORD_EMB) && !xlmr_tensor_decays(XLMR_T_Q_B) &&
              !xlmr_tensor_decays(XLMR_T_LN1_W) && xlmr_tensor_decays(XLMR_T_FC_W),
          "decay flags");
    int lazy = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) lazy += xlmr_tensor_lazy_rows(i);
    CHECK(lazy == 1 && xlmr_tensor_lazy_rows(XLMR_T_WORD_EMB), "lazy rows: the word-embedding table only");
    size_t shape[2];
    CHECK(xlmr_tensor_shape(&m.cfg, XLMR_T_FO_W, shape) == 2 && shape[0] == (size_t)m.cfg.hidden &&
              shape[1] == (size_t)m.cfg.ffn && xlmr_tensor_shape(&m.cfg, XLMR_T_FC_B, shape) == 1 &&
              shape[0] == (size_t)m.cfg.ffn && xlmr_tensor_is_layered(XLMR_T_Q_W) &&
              !xlmr_tensor_is_layered(XLMR_T_EMB_LN_B) &&
              !strcmp(xlmr_tensor_name(XLMR_T_LN2_B), "encoder.layer.%d.output.LayerNorm.bias"),
          "tensor table: shapes, layers and names");
    xlmr_free(&m);
}

/* The preset table and XLM-R's fixed settings (what `xlmr init` and `xlmr experiment` build from). */
static void check_presets(void) {
    XlmrConfig c;
    CHECK(xlmr_preset(&c, "micro") == 0 && c.n_layers == 2 && c.hidden == 64 && c.n_heads == 2 && c.ffn == 256,
          "preset micro: %d/%d/%d/%d", c.n_layers, c.hidden, c.n_heads, c.ffn);
    CHECK(xlmr_preset(&c, "large") == 0 && c.n_layers == 24 && c.hidden == 1024 && c.n_heads == 16 && c.ffn == 4096,
          "preset large");
    CHECK(c.max_pos == 514 && c.type_vocab == 1 && c.pad_id == 1 && c.ln_eps == 1e-5f && c.hidden_dropout == 0.1f &&
              c.attn_dropout == 0.1f && c.vocab == 0,
          "preset: XLM-R's fixed settings, vocab left to the caller");
    c.vocab = 100;
    CHECK(xlmr_config_check(&c, "large") == 0, "preset large passes the config check: %s", xerr_msg());
    CHECK(xlmr_max_len(&c) == 512, "max_len of max_pos 514, pad 1: %d", xlmr_max_len(&c));
    CHECK(xlmr_preset(&c, "huge") == -1 && strstr(xerr_msg(), "huge") && strstr(xerr_msg(), "nano"),
          "unknown preset: %s", xerr_msg());
    xlmr_config_default(&c);
    CHECK(c.n_layers == 12 && c.hidden == 768 && c.n_heads == 12 && c.ffn == 3072, "default shape: base");
    /* base: 12 x (4 x (768^2 + 768) + 2 x 768 x 3072 + 3072 + 768 + 4 x 768) + 2 x 768 (the embedding
     * LayerNorm) = 85,056,000: xlm-roberta-base's 278,043,648 less its embedding tables and pooler */
    c.vocab = 250002;
    CHECK(xlmr_non_embedding_params(&c) == 85056000ULL, "non-embedding parameters of base: %zu",
          xlmr_non_embedding_params(&c));
    Xlmr m;
    xlmr_preset(&c, "nano");
    c.vocab = 300;
    c.mlm_head = 1;
    if (xlmr_build(&m, &c) == 0) { /* the total less the three embedding tables and the head */
        size_t emb = (size_t)(c.vocab + c.max_pos + c.type_vocab) * (size_t)c.hidden, head = 0;
        for (int i = 0; i < XLMR_NUM_TENSORS; i++) head += xlmr_tensor_in_head(i) ? m.sizes[i] : 0;
        CHECK(head > 0 && xlmr_non_embedding_params(&c) == m.n_params - emb - head, "non-embedding parameters of nano");
        xlmr_free(&m);
    }
}

/* encode_texts = tokenize (prefix + text) then embed, whatever the batch size. */
static void check_encode(void) {
    /* the project's tokenizer (in the repository), else a data fixture */
    const char *cands[] = {"tokenizer/xlmrc.model", "../tokenizer/xlmrc.model", getenv("XLMR_DATA"), "data",
                           "../shared/data"};
    char *spm = NULL;
    for (int i = 0; i < 5 && !spm; i++) {
        if (!cands[i]) continue;
        char *p = i < 2 ? xstrdup(cands[i]) : path_join(cands[i], "spm-fixtures/botchan-en.model");
        if (path_exists(p)) spm = p;
        else free(p);
    }
    if (!spm) {
        printf("note: no tokenizer/xlmrc.model nor spm-fixtures/botchan-en.model: encode checks skipped\n");
        return;
    }
    Tokenizer *t;
    CHECK(tokenizer_load(&t, spm) == 0, "tokenizer: %s", xerr_msg());
    XlmrConfig c = {.n_layers = 1, .hidden = 16, .n_heads = 2, .ffn = 24, .vocab = tokenizer_xlmr_vocab(t),
                    .max_pos = 40, .type_vocab = 1, .pad_id = 1, .ln_eps = 1e-5f, .hidden_dropout = 0.1f,
                    .attn_dropout = 0.1f};
    Xlmr m;
    xlmr_build(&m, &c);
    xlmr_init_random(&m, 3);
    const char *texts[5] = {"I am a cat.", "", "It was a dark and stormy night, and the rain fell in torrents.",
                            "cat", "Soseki wrote Botchan in 1906, a short novel about a young teacher from Tokyo."};
    float e1[5 * 16], e2[5 * 16], one[16];
    EncodeOptions o = {.max_len = 12, .batch = 2, .pooling = POOL_MEAN, .prefix = "query: ", .label = NULL};
    CHECK(encode_texts(&m, t, texts, 5, &o, e1) == 0, "encode: %s", xerr_msg());
    o.batch = 0;
    CHECK(encode_texts(&m, t, texts, 5, &o, e2) == 0, "encode: %s", xerr_msg());
    CHECK(max_abs_diff(e1, e2, 5 * 16) <= 1e-6, "batch size changes embeddings");
    IntVec v = {0};
    double worst = 0;
    for (int i = 0; i < 5; i++) {
        StrBuf sb = {0};
        sb_printf(&sb, "query: %s", texts[i]);
        tokenizer_encode_xlmr(t, sb.data, sb.len, 12, &v);
        xlmr_embed(&m, one, v.data, 1, (int)v.n, POOL_MEAN);
        double d = max_abs_diff(one, e1 + 16 * i, 16);
        if (d > worst) worst = d;
        CHECK(v.n <= 12, "max_len");
        sb_free(&sb);
    }
    CHECK_REPORT(worst <= 1e-6, "encode_texts = tokenize(prefix + text) + xlmr_embed (%.1e)", worst);
    o.max_len = 41;
    CHECK(encode_texts(&m, t, texts, 5, &o, e2) == -1, "max_len past the positions refused");
    iv_free(&v);
    tokenizer_free(t);
    xlmr_free(&m);
    free(spm);
}

/* Attention probabilities are kept when NH T <= C and recomputed by backward
 * otherwise: both give the same gradients, bit for bit (dropout on). */
static void check_attention_recompute(void) {
    Xlmr m;
    tiny_model(&m); /* C 16, NH 2: kept up to T = 8 */
    int C = m.cfg.hidden, T = 8, ids[3 * 8];
    for (int b = 0; b < 3; b++) /* rows 0, 2, 3 of tiny_ids: at most 7 tokens */
        memcpy(ids + b * T, tiny_ids + 10 * (b == 0 ? 0 : b + 1), (size_t)T * sizeof(int));
    size_t np = m.n_params;
    float out[3 * 16], o2[3 * 16], dout[3 * 16];
    XlmrDropout d = {1, 5, 0};
    xlmr_grads_alloc(&m);
    XlmrActs *kept = xlmr_acts_build(&m, 3, T), *recomputed = xlmr_acts_build(&m, 3, 2 * T);
    xlmr_forward(&m, kept, out, ids, 3, T, POOL_MEAN, &d);
    for (int i = 0; i < 3 * C; i++) dout[i] = 0.1f * (float)((i * 7) % 11) - 0.5f;
    xlmr_backward(&m, kept, dout);
    float *g1 = xmalloc(np * sizeof(float));
    memcpy(g1, m.grads_memory, np * sizeof(float));
    xlmr_zero_grad(&m);
    xlmr_forward(&m, recomputed, o2, ids, 3, T, POOL_MEAN, &d);
    xlmr_backward(&m, recomputed, dout);
    CHECK_REPORT(max_abs_diff(o2, out, 3 * (size_t)C) == 0 && max_abs_diff(m.grads_memory, g1, np) == 0,
                 "attention probabilities kept = recomputed in backward: outputs %.1e, grads %.1e",
                 max_abs_diff(o2, out, 3 * (size_t)C), max_abs_diff(m.grads_memory, g1, np));
    double gsum = 0;
    for (size_t i = 0; i < np; i++) gsum += fabs(g1[i]);
    CHECK(gsum > 0, "the attention check has gradient");
    free(g1);
    xlmr_acts_free(kept);
    xlmr_acts_free(recomputed);
    xlmr_free(&m);
}

int main(void) {
    check_parity("xlmr_a", POOL_MEAN);
    check_parity("xlmr_b", POOL_CLS);
    check_loading();
    check_finite_differences(0);
    check_finite_differences(1);
    check_chunking_and_paths();
    check_attention_recompute();
    check_init();
    check_presets();
    check_encode();
    return test_summary("xlmr");
}
