/* xlmr_io.c: the Hugging Face model folder of xlmr.h: config.json,
 * model.safetensors (through safetensors.h) and sentencepiece.bpe.model.
 * Tensor names and shapes come from the model's tensor table (xlmr_tensor_*). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "safetensors.h"
#include "util.h"
#include "xlmr.h"

static int get_int_range(const Json *o, const char *key, long lo, long hi, int *out, const char *path) {
    long v;
    if (json_get_int(o, key, &v, path) != 0) return -1;
    if (v < lo || v > hi) return xerr("%s: %s = %ld out of range [%ld, %ld]", path, key, v, lo, hi);
    *out = (int)v;
    return 0;
}

static int get_prob(const Json *o, const char *key, float *out, const char *path) {
    double v = 0.1; /* the released XLM-R value; absent in some configs */
    if (json_get(o, key) && json_get_num(o, key, &v, path) != 0) return -1;
    if (!(v >= 0 && v < 1)) return xerr("%s: %s = %g is not a probability in [0, 1)", path, key, v);
    *out = (float)v;
    return 0;
}

int xlmr_config_read(XlmrConfig *c, const char *path) {
    Json j;
    memset(c, 0, sizeof *c);
    if (json_parse_file_max(&j, path, READ_LIMIT_SMALL) != 0) return -1;
    int rc = -1;
    const char *act;
    double eps;
    if (j.type != JSON_OBJECT) {
        xerr("%s: not a JSON object", path);
        goto done;
    }
    if (get_int_range(&j, "num_hidden_layers", 1, 1000, &c->n_layers, path) ||
        get_int_range(&j, "hidden_size", 1, 1 << 16, &c->hidden, path) ||
        get_int_range(&j, "num_attention_heads", 1, 1 << 16, &c->n_heads, path) ||
        get_int_range(&j, "intermediate_size", 1, 1 << 20, &c->ffn, path) ||
        get_int_range(&j, "vocab_size", 4, 1 << 24, &c->vocab, path) ||
        get_int_range(&j, "max_position_embeddings", 3, 1 << 20, &c->max_pos, path) ||
        get_int_range(&j, "type_vocab_size", 1, 1 << 16, &c->type_vocab, path) ||
        get_int_range(&j, "pad_token_id", 0, 1 << 24, &c->pad_id, path) ||
        json_get_num(&j, "layer_norm_eps", &eps, path) != 0 ||
        get_prob(&j, "hidden_dropout_prob", &c->hidden_dropout, path) ||
        get_prob(&j, "attention_probs_dropout_prob", &c->attn_dropout, path))
        goto done;
    if (!(act = json_get_str(&j, "hidden_act", path))) goto done;
    if (strcmp(act, "gelu") != 0) {
        xerr("%s: hidden_act \"%s\" not supported (only \"gelu\", the exact erf form)", path, act);
        goto done;
    }
    /* absent means "absolute" (the class default, and all XLM-R releases); the
     * relative kinds change attention and are not implemented */
    if (json_get(&j, "position_embedding_type")) {
        const char *pe = json_get_str(&j, "position_embedding_type", path);
        if (!pe) goto done;
        if (strcmp(pe, "absolute") != 0) {
            xerr("%s: position_embedding_type \"%s\" not supported (only \"absolute\")", path, pe);
            goto done;
        }
    }
    if (!(eps > 0 && eps < 1)) {
        xerr("%s: layer_norm_eps = %g out of range (0, 1)", path, eps);
        goto done;
    }
    c->ln_eps = (float)eps;
    c->tie_word_embeddings = 1; /* PretrainedConfig's default */
    const Json *tie = json_get(&j, "tie_word_embeddings");
    if (tie && tie->type != JSON_TRUE && tie->type != JSON_FALSE) {
        xerr("%s: tie_word_embeddings must be true or false", path);
        goto done;
    }
    if (tie) c->tie_word_embeddings = tie->type == JSON_TRUE;
    rc = xlmr_config_check(c, path);
done:
    json_free(&j);
    return rc;
}

/* The shortest %g that reads back as the same float (1e-05, not 9.99999975e-06). */
static void sb_float(StrBuf *sb, float x) {
    char tmp[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)x);
        if ((float)strtod(tmp, NULL) == x) break;
    }
    sb_puts(sb, tmp);
}

static int write_config(const XlmrConfig *c, const char *path) {
    StrBuf sb = {0};
    sb_printf(&sb, "{\n  \"architectures\": [\"%s\"],\n", c->mlm_head ? "XLMRobertaForMaskedLM" : "XLMRobertaModel");
    sb_puts(&sb, "  \"attention_probs_dropout_prob\": ");
    sb_float(&sb, c->attn_dropout);
    sb_printf(&sb, ",\n  \"bos_token_id\": 0,\n  \"classifier_dropout\": null,\n  \"eos_token_id\": 2,\n"
                   "  \"hidden_act\": \"gelu\",\n  \"hidden_dropout_prob\": ");
    sb_float(&sb, c->hidden_dropout);
    sb_printf(&sb, ",\n  \"hidden_size\": %d,\n  \"initializer_range\": 0.02,\n  \"intermediate_size\": %d,\n"
                   "  \"layer_norm_eps\": ", c->hidden, c->ffn);
    sb_float(&sb, c->ln_eps);
    sb_printf(&sb, ",\n  \"max_position_embeddings\": %d,\n  \"model_type\": \"xlm-roberta\",\n"
                   "  \"num_attention_heads\": %d,\n  \"num_hidden_layers\": %d,\n  \"output_past\": true,\n"
                   "  \"pad_token_id\": %d,\n  \"position_embedding_type\": \"absolute\",\n"
                   "  \"tie_word_embeddings\": %s,\n"
                   "  \"torch_dtype\": \"float32\",\n  \"type_vocab_size\": %d,\n  \"use_cache\": true,\n"
                   "  \"vocab_size\": %d\n}\n",
              c->max_pos, c->n_heads, c->n_layers, c->pad_id, c->tie_word_embeddings ? "true" : "false",
              c->type_vocab, c->vocab);
    int rc = write_file_atomic(path, sb.data, sb.len);
    sb_free(&sb);
    return rc;
}

/* One NaN or Inf weight makes every embedding NaN (or, in one embedding row,
 * plausible-looking garbage), and NaN compares false with everything: refused
 * at load, in one pass over memory just written. */
static int check_finite(const float *x, size_t n, const char *spath, const char *name) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k]))
            return xerr("%s: tensor %s has a non-finite value (%s) at index %zu", spath, name,
                        isnan(x[k]) ? "nan" : x[k] > 0 ? "inf" : "-inf", k);
    return 0;
}

int xlmr_load(Xlmr *m, const char *dir) {
    memset(m, 0, sizeof *m);
    char *cpath = path_join(dir, "config.json"), *spath = path_join(dir, "model.safetensors");
    XlmrConfig cfg;
    SafeTensors st;
    int rc = -1, opened = 0, built = 0;
    if (xlmr_config_read(&cfg, cpath) != 0) goto done;
    if (st_open(&st, spath) != 0) goto done;
    opened = 1;
    /* a head when its first tensor is stored; its own decoder only when untied */
    cfg.mlm_head = st_find(&st, "lm_head.dense.weight") != NULL;
    if (cfg.mlm_head && !cfg.tie_word_embeddings && !st_find(&st, "lm_head.decoder.weight")) {
        xerr("%s: tie_word_embeddings is false in %s but lm_head.decoder.weight is missing", spath, cpath);
        goto done;
    }
    /* the file must hold every parameter at 2 bytes or more before we allocate for them */
    double need = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        size_t shape[2] = {1, 1};
        if (!xlmr_tensor_present(&cfg, i)) continue;
        int nd = xlmr_tensor_shape(&cfg, i, shape);
        need += 2.0 * (double)shape[0] * (nd == 2 ? (double)shape[1] : 1) * (xlmr_tensor_is_layered(i) ? cfg.n_layers : 1);
    }
    if (need > (double)st.data_len) {
        xerr("%s: %zu bytes of data, too few for the model %s describes", spath, st.data_len, cpath);
        goto done;
    }
    if (xlmr_build(m, &cfg) != 0) goto done;
    built = 1;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        if (!m->sizes[i]) continue;
        int layered = xlmr_tensor_is_layered(i), nl = layered ? cfg.n_layers : 1;
        size_t shape[2];
        int ndim = xlmr_tensor_shape(&cfg, i, shape);
        size_t per = m->sizes[i] / (size_t)nl;
        for (int l = 0; l < nl; l++) {
            char name[160], pname[176];
            snprintf(name, sizeof name, xlmr_tensor_name(i), l);
            snprintf(pname, sizeof pname, "roberta.%s", name);
            const StTensor *t = st_find(&st, name);
            if (!t && !xlmr_tensor_in_head(i)) t = st_find(&st, pname);
            if (!t && i == XLMR_T_LM_BIAS) t = st_find(&st, "lm_head.decoder.bias"); /* the same tensor in HF */
            if (!t) {
                xerr("%s: missing tensor %s", spath, name);
                goto done;
            }
            int same = t->ndim == ndim;
            for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
            if (!same) {
                StrBuf got = {0}, want = {0};
                sb_puts(&got, "");
                sb_puts(&want, "");
                for (int d = 0; d < t->ndim; d++) sb_printf(&got, "%s%zu", d ? "," : "", t->shape[d]);
                for (int d = 0; d < ndim; d++) sb_printf(&want, "%s%zu", d ? "," : "", shape[d]);
                xerr("%s: tensor %s has shape [%s], %s implies [%s]", spath, t->name, got.data, cpath, want.data);
                sb_free(&want);
                sb_free(&got);
                goto done;
            }
            float *dst = m->params_memory + m->offsets[i] + (size_t)l * per;
            if (st_read_f32(&st, t, dst) != 0 || check_finite(dst, t->numel, spath, t->name) != 0) goto done;
        }
    }
    rc = 0;
done:
    if (rc != 0 && built) xlmr_free(m);
    if (opened) st_close(&st);
    free(cpath);
    free(spath);
    return rc;
}

int xlmr_save(const Xlmr *m, const char *dir, const char *spm_model) {
    if (mkdir_p(dir) != 0) return -1;
    char *cpath = path_join(dir, "config.json"), *spath = path_join(dir, "model.safetensors");
    const XlmrConfig *c = &m->cfg;
    int n = 0, rc = -1;
    StWrite *ts = xcalloc((size_t)XLMR_NUM_TENSORS * (size_t)c->n_layers, sizeof *ts);
    char **names = xcalloc((size_t)XLMR_NUM_TENSORS * (size_t)c->n_layers, sizeof *names);
    /* HF order: embeddings, then layer by layer */
    for (int pass = 0; pass < 1 + c->n_layers; pass++)
        for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
            int layered = xlmr_tensor_is_layered(i);
            if (layered != (pass > 0) || !m->sizes[i]) continue;
            int l = layered ? pass - 1 : 0;
            size_t per = m->sizes[i] / (size_t)(layered ? c->n_layers : 1);
            char name[160];
            snprintf(name, sizeof name, xlmr_tensor_name(i), l);
            /* XLMRobertaForMaskedLM keeps the encoder under "roberta." */
            char full[176];
            snprintf(full, sizeof full, "%s%s", c->mlm_head && !xlmr_tensor_in_head(i) ? "roberta." : "", name);
            names[n] = xstrdup(full);
            ts[n].name = names[n];
            ts[n].ndim = xlmr_tensor_shape(c, i, ts[n].shape);
            ts[n].data = m->params_memory + m->offsets[i] + (size_t)l * per;
            n++;
        }
    if (st_write_f32(spath, ts, n) != 0 || write_config(c, cpath) != 0) goto done;
    if (spm_model) {
        char *dst = path_join(dir, "sentencepiece.bpe.model");
        int same = !strcmp(dst, spm_model);
        int r = same ? 0 : copy_file(spm_model, dst);
        free(dst);
        if (r != 0) goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(ts);
    free(cpath);
    free(spath);
    return rc;
}
