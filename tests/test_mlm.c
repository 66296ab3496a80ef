/* tests/test_mlm.c: the masked-LM head (xlmr.h) and its loss (loss.h) against
 * the float64 torch XLMRobertaForMaskedLM of tests/ref/make_mlm_vectors.py:
 * logits at the masked positions, the cross-entropy, and the gradient of every
 * parameter (the tied decoder's share of the word embeddings, the head's
 * LayerNorm, the untied decoder); finite differences on the head; loading and
 * saving HF MLM folders; a model without a head refuses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "safetensors.h"
#include "test.h"
#include "util.h"
#include "xlmr.h"

static char *ref_dir(const char *name) {
    char *d = path_join("tests/ref", name);
    if (!is_dir(d)) { /* run from build/ */
        free(d);
        d = path_join("../tests/ref", name);
    }
    return d;
}

/* A reference tensor as floats (NULL + a message when missing or mis-sized). */
static float *ref_get(SafeTensors *st, const char *name, size_t *numel) {
    const StTensor *t = st_find(st, name);
    if (!t) {
        printf("reference tensor %s missing\n", name);
        return NULL;
    }
    float *x = xmalloc((t->numel ? t->numel : 1) * sizeof(float));
    st_read_f32(st, t, x);
    if (numel) *numel = t->numel;
    return x;
}

static int *as_ints(const float *f, size_t n) {
    int *v = xmalloc((n ? n : 1) * sizeof(int));
    for (size_t i = 0; i < n; i++) v[i] = (int)f[i];
    return v;
}

/* The MLM loss (mean over the M positions) of the model on ids; with grads,
 * also the backward (m->grads += ...). logits (M,V) is written. */
static double mlm_loss(Xlmr *m, XlmrActs *a, XlmrMlmActs *h, float *logits, const int *ids, int B, int T,
                       const int *pos, const int *labels, int M, int grads) {
    xlmr_forward(m, a, NULL, ids, B, T, POOL_MEAN, NULL);
    if (xlmr_mlm_forward(m, a, h, logits, pos, M) != 0) return NAN;
    float *dl = grads ? xmalloc((size_t)M * m->cfg.vocab * sizeof(float)) : NULL;
    double loss = mlm_xent_forward_backward(dl, logits, labels, M, m->cfg.vocab, 1.0f / M) / M;
    if (grads) xlmr_mlm_backward(m, a, h, dl);
    free(dl);
    return loss;
}

/* Every parameter gradient against grad.NAME of the reference (as test_xlmr.c:
 * relative to the tensor's largest value, or to the largest gradient of all
 * when the true gradient is ~0, as for the key bias). */
static double worst_grad_err(const Xlmr *m, SafeTensors *st, const char *name, char *worst_name) {
    double gmax = 0, worst = 0;
    for (int i = 0; i < st->n; i++)
        if (!strncmp(st->t[i].name, "grad.", 5)) {
            float *g = ref_get(st, st->t[i].name, NULL);
            for (size_t j = 0; g && j < st->t[i].numel; j++) gmax = fabs(g[j]) > gmax ? fabs(g[j]) : gmax;
            free(g);
        }
    int L = m->cfg.n_layers, seen = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        if (!m->sizes[i]) continue;
        int nl = xlmr_tensor_is_layered(i) ? L : 1;
        size_t per = m->sizes[i] / (size_t)nl, n = 0;
        for (int l = 0; l < nl; l++) {
            char hf[160], key[176];
            snprintf(hf, sizeof hf, xlmr_tensor_name(i), l);
            snprintf(key, sizeof key, "grad.%s", hf);
            float *g = ref_get(st, key, &n);
            const float *mine = m->grads_memory + m->offsets[i] + (size_t)l * per;
            double mag = 0, d = 1;
            for (size_t j = 0; g && n == per && j < per; j++) mag = fabs(g[j]) > mag ? fabs(g[j]) : mag;
            if (g && n == per) d = mag < 1e-6 * gmax ? max_abs_diff(mine, g, per) / gmax : max_rel_diff(mine, g, per);
            CHECK(d <= 1e-4, "%s: %s rel err %.2e", name, key, d);
            if (d > worst) {
                worst = d;
                snprintf(worst_name, 160, "%s", hf);
            }
            seen++;
            free(g);
        }
    }
    return seen ? worst : 1;
}

static void check_parity(const char *name, int tied) {
    char *dir = ref_dir(name), *rpath = path_join(dir, "ref.safetensors");
    Xlmr m;
    SafeTensors st;
    int ok = xlmr_load(&m, dir) == 0;
    CHECK(ok, "%s: load: %s", name, xerr_msg());
    if (!ok || st_open(&st, rpath) != 0) {
        CHECK(0, "%s: reference: %s", name, xerr_msg());
        free(dir);
        free(rpath);
        return;
    }
    CHECK(m.cfg.mlm_head && m.cfg.tie_word_embeddings == tied && (m.sizes[XLMR_T_LM_DECODER_W] == 0) == tied,
          "%s: head detected (%s decoder)", name, tied ? "tied" : "untied");
    const StTensor *ti = st_find(&st, "ids");
    int B = (int)ti->shape[0], T = (int)ti->shape[1], V = m.cfg.vocab;
    size_t nid, M;
    float *f = ref_get(&st, "ids", &nid), *fp = ref_get(&st, "pos", &M), *fl = ref_get(&st, "labels", NULL);
    int *ids = as_ints(f, nid), *pos = as_ints(fp, M), *labels = as_ints(fl, M);
    free(f); free(fp); free(fl);
    XlmrActs *a = xlmr_acts_build(&m, B, T);
    XlmrMlmActs *h = xlmr_mlm_acts_build(&m, (int)M);
    float *logits = xmalloc(M * V * sizeof(float)), *rlog = ref_get(&st, "logits", NULL), *rl = ref_get(&st, "loss", NULL);
    xlmr_grads_alloc(&m);
    xlmr_zero_grad(&m);
    double loss = mlm_loss(&m, a, h, logits, ids, B, T, pos, labels, (int)M, 0);
    double dlog = max_abs_diff(logits, rlog, M * V);
    CHECK_REPORT(dlog <= 2e-5, "%s: logits at the %zu masked positions (%zu x %d) max abs err %.2e", name, M, M, V,
                 dlog);
    loss = mlm_loss(&m, a, h, logits, ids, B, T, pos, labels, (int)M, 1);
    CHECK_REPORT(fabs(loss - rl[0]) <= 1e-5 * fabs(rl[0]), "%s: masked-LM loss %.7f vs torch %.7f", name, loss,
                 (double)rl[0]);
    char wname[160] = "";
    double gw = worst_grad_err(&m, &st, name, wname);
    CHECK_REPORT(gw <= 1e-4, "%s: gradients of every tensor (%s decoder, head LayerNorm), worst rel err %.2e (%s)",
                 name, tied ? "tied" : "untied", gw, wname);
    if (tied)
        CHECK(m.n_touched == V, "tied decoder: every word-embedding row touched (%d of %d)", m.n_touched, V);
    xlmr_zero_grad(&m);
    int zero = m.n_touched == 0;
    for (size_t i = 0; i < m.n_params && zero; i++) zero = m.grads_memory[i] == 0;
    CHECK(zero, "%s: zero_grad after the head's backward leaves nothing", name);
    /* save -> load: the same model, in XLMRobertaForMaskedLM's layout */
    char *tmp = path_join(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", "xlmr_test_mlm");
    Xlmr back;
    CHECK(xlmr_save(&m, tmp, NULL) == 0 && xlmr_load(&back, tmp) == 0, "%s: save/load: %s", name, xerr_msg());
    CHECK(back.n_params == m.n_params && !memcmp(back.params_memory, m.params_memory, m.n_params * sizeof(float)) &&
              back.cfg.mlm_head && back.cfg.tie_word_embeddings == tied,
          "%s: saved and reloaded, head and all", name);
    char *spath = path_join(tmp, "model.safetensors"), *cpath = path_join(tmp, "config.json");
    SafeTensors w;
    if (st_open(&w, spath) == 0) {
        CHECK(st_find(&w, "roberta.embeddings.word_embeddings.weight") && st_find(&w, "lm_head.dense.weight") &&
                  st_find(&w, "lm_head.bias") && !st_find(&w, "embeddings.word_embeddings.weight") &&
                  (st_find(&w, "lm_head.decoder.weight") != NULL) == !tied,
              "%s: written under HF MLM names (roberta. body, lm_head.*, decoder only when untied)", name);
        st_close(&w);
    }
    size_t clen = 0;
    char *cj = NULL;
    if (read_file(cpath, &cj, &clen) != 0) cj = NULL;
    CHECK(cj && strstr(cj, "\"XLMRobertaForMaskedLM\"") && strstr(cj, tied ? "\"tie_word_embeddings\": true"
                                                                          : "\"tie_word_embeddings\": false"),
          "%s: config.json says XLMRobertaForMaskedLM", name);
    free(cj);
    xlmr_free(&back);
    free(spath); free(cpath); free(tmp);
    free(ids); free(pos); free(labels); free(logits); free(rlog); free(rl);
    xlmr_mlm_acts_free(h);
    xlmr_acts_free(a);
    xlmr_free(&m);
    st_close(&st);
    free(dir);
    free(rpath);
}

/* Central differences on coordinates of every head tensor and on decoder rows
 * that no input token uses (their gradient comes from the tied decoder alone). */
static void check_finite_differences(void) {
    char *dir = ref_dir("mlm_a");
    Xlmr m;
    if (xlmr_load(&m, dir) != 0) {
        CHECK(0, "load: %s", xerr_msg());
        free(dir);
        return;
    }
    int B = 2, T = 6, V = m.cfg.vocab, C = m.cfg.hidden;
    static const int ids[12] = {0, 40, 89, 17, 2, 1, 0, 89, 55, 60, 33, 2};
    static const int pos[3] = {2, 7, 9}, labels[3] = {12, 70, 5};
    XlmrActs *a = xlmr_acts_build(&m, B, T);
    XlmrMlmActs *h = xlmr_mlm_acts_build(&m, 3);
    float *logits = xmalloc(3 * (size_t)V * sizeof(float));
    xlmr_grads_alloc(&m);
    mlm_loss(&m, a, h, logits, ids, B, T, pos, labels, 3, 1);
    static const int tensors[] = {XLMR_T_LM_DENSE_W, XLMR_T_LM_DENSE_B, XLMR_T_LM_LN_W, XLMR_T_LM_LN_B,
                                  XLMR_T_LM_BIAS, XLMR_T_WORD_EMB, XLMR_T_FO_W};
    Rng r;
    rng_seed(&r, 5);
    int bad = 0, n = 0;
    double worst = 0;
    for (size_t ti = 0; ti < sizeof tensors / sizeof *tensors; ti++)
        for (int k = 0; k < 4; k++) {
            int i = tensors[ti];
            /* word embeddings: rows 12 and 70 are labels only (decoder), 40 is an input too */
            size_t j = i == XLMR_T_WORD_EMB ? (size_t)(k == 0 ? 12 : k == 1 ? 70 : k == 2 ? 40 : 25) * C +
                                                  rng_below(&r, (uint32_t)C)
                                            : rng_below(&r, (uint32_t)m.sizes[i]);
            float *p = m.params_memory + m.offsets[i] + j, save = *p;
            const float e = 1e-2f;
            *p = save + e;
            double lp = mlm_loss(&m, a, h, logits, ids, B, T, pos, labels, 3, 0);
            *p = save - e;
            double lm = mlm_loss(&m, a, h, logits, ids, B, T, pos, labels, 3, 0);
            *p = save;
            double fd = (lp - lm) / (2.0 * e), g = m.grads_memory[m.offsets[i] + j];
            double err = fabs(fd - g) / (fabs(fd) + fabs(g) + 1e-2);
            if (err > worst) worst = err;
            if (err > 2e-2) {
                bad++;
                printf("  fd %s[%zu]: fd %.6g, backward %.6g\n", xlmr_tensor_name(i), j, fd, g);
            }
            n++;
        }
    CHECK_REPORT(bad == 0, "finite differences on the head and the tied decoder: %d coordinates, worst rel err %.2e",
                 n, worst);
    free(logits);
    xlmr_mlm_acts_free(h);
    xlmr_acts_free(a);
    xlmr_free(&m);
    free(dir);
}

/* A folder without a head loads as before and the head refuses with a clear
 * error; xlmr_with_mlm_head adds an HF-initialised, tied head. */
static void check_no_head(void) {
    char *dir = ref_dir("xlmr_a");
    Xlmr m, w;
    if (xlmr_load(&m, dir) != 0) {
        CHECK(0, "load: %s", xerr_msg());
        free(dir);
        return;
    }
    CHECK(!m.cfg.mlm_head && m.sizes[XLMR_T_LM_DENSE_W] == 0, "xlmr_a: no head, no head tensors");
    XlmrActs *a = xlmr_acts_build(&m, 1, 3);
    XlmrMlmActs *h = xlmr_mlm_acts_build(&m, 1);
    static const int ids[3] = {0, 5, 2}, pos[1] = {1};
    float logits[90];
    xlmr_forward(&m, a, NULL, ids, 1, 3, POOL_MEAN, NULL);
    CHECK(xlmr_mlm_forward(&m, a, h, logits, pos, 1) != 0 && strstr(xerr_msg(), "no masked-LM head"),
          "a model without a head says so: %s", xerr_msg());
    CHECK(xlmr_with_mlm_head(&w, &m, 3) == 0 && w.cfg.mlm_head && w.cfg.tie_word_embeddings, "with_mlm_head");
    int body_same = 1, init_ok = 1;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        if (m.sizes[i]) body_same &= !memcmp(w.params_memory + w.offsets[i], m.params_memory + m.offsets[i],
                                             m.sizes[i] * sizeof(float));
    }
    for (int c = 0; c < m.cfg.hidden; c++) init_ok &= w.params.lm_ln_w[c] == 1 && w.params.lm_ln_b[c] == 0;
    for (int v = 0; v < m.cfg.vocab; v++) init_ok &= w.params.lm_bias[v] == 0;
    CHECK(body_same && init_ok && w.params.lm_dense_w[0] != 0, "with_mlm_head: the body kept, the head HF-initialised");
    int pos_bad[1] = {3};
    xlmr_forward(&w, a, NULL, ids, 1, 3, POOL_MEAN, NULL);
    CHECK(xlmr_mlm_forward(&w, a, h, logits, pos_bad, 1) != 0, "a position outside the batch is refused");
    CHECK(xlmr_mlm_forward(&w, a, h, logits, pos, 1) == 0, "the new head runs");
    xlmr_mlm_acts_free(h);
    xlmr_acts_free(a);
    xlmr_free(&w);
    xlmr_free(&m);
    free(dir);
}

/* The loss alone: by hand on a 2 x 3 case, and dlogits written in place. */
static void check_loss(void) {
    float lg[6] = {1, 2, 3, 0, 0, 0}, d[6];
    int lab[2] = {2, 0};
    double want = (log(exp(1.0) + exp(2.0) + exp(3.0)) - 3) + log(3.0);
    double got = mlm_xent_forward_backward(d, lg, lab, 2, 3, 0.5f);
    double s = exp(1.0) + exp(2.0) + exp(3.0);
    CHECK(fabs(got - want) < 1e-6 && fabs(d[2] - 0.5 * (exp(3.0) / s - 1)) < 1e-6 && fabs(d[3] - 0.5 * (1 / 3.0 - 1)) < 1e-6 &&
              fabs(d[4] - 0.5 / 3.0) < 1e-6,
          "mlm_xent by hand: %.7f vs %.7f", got, want);
    double in_place = mlm_xent_forward_backward(lg, lg, lab, 2, 3, 0.5f);
    CHECK(in_place == got && !memcmp(lg, d, sizeof d), "mlm_xent in place");
}

int main(void) {
    check_parity("mlm_a", 1);
    check_parity("mlm_b", 0);
    check_finite_differences();
    check_no_head();
    check_loss();
    return test_summary("mlm");
}
