/* safetensors.c: the safetensors reader/writer (see safetensors.h) and the
 * Hugging Face model-folder I/O of xlmr.h: config.json, model.safetensors,
 * sentencepiece.bpe.model. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "util.h"
#include "xlmr.h"

/* The format's own cap (safetensors refuses larger headers too). */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

float st_bf16_to_f32(unsigned short h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float st_f16_to_f32(unsigned short h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, mant = h & 1023, u;
    if (e == 0) {
        if (mant == 0) {
            u = sign;
        } else { /* subnormal: renormalise */
            e = 127 - 15 + 1;
            while (!(mant & 1024)) { mant <<= 1; e--; }
            u = sign | (e << 23) | ((mant & 1023) << 13);
        }
    } else if (e == 31) {
        u = sign | 0x7f800000u | (mant << 13); /* inf / nan */
    } else {
        u = sign | ((e - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int dtype_size(const char *s, StDtype *dt) {
    static const struct { const char *name; int size; } tab[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
        {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    *dt = !strcmp(s, "F32") ? ST_F32 : !strcmp(s, "F16") ? ST_F16 : !strcmp(s, "BF16") ? ST_BF16 : ST_OTHER;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(s, tab[i].name)) return tab[i].size;
    return 0; /* unknown: allowed for tensors nobody reads; extent unchecked against shape */
}

void st_close(SafeTensors *st) {
    for (int i = 0; i < st->n; i++) free(st->t[i].name);
    free(st->t);
    if (st->map) munmap(st->map, st->map_len);
    free(st->buf);
    free(st->path);
    memset(st, 0, sizeof *st);
}

/* Maps PATH (or reads it when mapping fails). */
static int map_file(SafeTensors *st, const char *path, const unsigned char **bytes, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return xerr("%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return xerr("%s: not a regular file", path);
    }
    *len = (size_t)sb.st_size;
    if (*len > 0) {
        void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            st->map = p;
            st->map_len = *len;
            *bytes = p;
            close(fd);
            return 0;
        }
    }
    close(fd);
    if (read_file(path, &st->buf, len) != 0) return -1;
    *bytes = (const unsigned char *)st->buf;
    return 0;
}

static int parse_entry(SafeTensors *st, StTensor *t, const char *key, const Json *v) {
    const char *p = st->path;
    if (!v || v->type != JSON_OBJECT) return xerr("%s: tensor %s: entry is not an object", p, key);
    const Json *dt = json_get(v, "dtype"), *sh = json_get(v, "shape"), *off = json_get(v, "data_offsets");
    if (!dt || dt->type != JSON_STRING || strlen(dt->str) >= sizeof t->dtype_name)
        return xerr("%s: tensor %s: missing or bad dtype", p, key);
    if (!sh || sh->type != JSON_ARRAY || sh->n > ST_MAX_DIMS)
        return xerr("%s: tensor %s: missing or bad shape", p, key);
    if (!off || off->type != JSON_ARRAY || off->n != 2)
        return xerr("%s: tensor %s: missing or bad data_offsets", p, key);
    t->name = xstrdup(key);
    strcpy(t->dtype_name, dt->str);
    int esize = dtype_size(dt->str, &t->dtype);
    t->ndim = (int)sh->n;
    t->numel = 1;
    for (size_t i = 0; i < sh->n; i++) {
        const Json *d = &sh->items[i];
        if (d->type != JSON_NUMBER || !(d->num >= 0) || d->num > 9.0e15 || d->num != floor(d->num))
            return xerr("%s: tensor %s: bad shape entry", p, key);
        t->shape[i] = (size_t)d->num;
        if (size_mul(t->numel, t->shape[i], &t->numel) != 0)
            return xerr("%s: tensor %s: shape overflows", p, key);
    }
    double b = off->items[0].num, e = off->items[1].num;
    if (off->items[0].type != JSON_NUMBER || off->items[1].type != JSON_NUMBER || !(b >= 0) || !(e >= b) ||
        b != floor(b) || e != floor(e) || e > (double)st->data_len)
        return xerr("%s: tensor %s: data_offsets out of range (data is %zu bytes)", p, key, st->data_len);
    t->begin = (size_t)b;
    t->end = (size_t)e;
    size_t bytes;
    if (esize > 0 && (size_mul(t->numel, (size_t)esize, &bytes) != 0 || bytes != t->end - t->begin))
        return xerr("%s: tensor %s: data_offsets span %zu bytes, shape and dtype need %zu", p, key,
                    t->end - t->begin, t->numel * (size_t)esize);
    return 0;
}

int st_open(SafeTensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    st->path = xstrdup(path);
    const unsigned char *bytes = NULL;
    size_t len = 0;
    if (map_file(st, path, &bytes, &len) != 0) goto fail;
    if (len < 8) {
        xerr("%s: too short for a safetensors file (%zu bytes)", path, len);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | bytes[i];
    if (n > ST_MAX_HEADER || n > len - 8) {
        xerr("%s: header length %llu exceeds the file (%zu bytes)", path, (unsigned long long)n, len);
        goto fail;
    }
    st->data = bytes + 8 + n;
    st->data_len = len - 8 - (size_t)n;
    Json h;
    if (n == 0 || bytes[8] != '{') {
        xerr("%s: header is not a JSON object", path);
        goto fail;
    }
    if (json_parse(&h, (const char *)bytes + 8, (size_t)n, path) != 0) goto fail;
    if (h.type != JSON_OBJECT) {
        json_free(&h);
        xerr("%s: header is not a JSON object", path);
        goto fail;
    }
    st->t = xcalloc(h.n ? h.n : 1, sizeof *st->t);
    for (size_t i = 0; i < h.n; i++) {
        if (!strcmp(h.keys[i], "__metadata__")) continue;
        if (parse_entry(st, &st->t[st->n], h.keys[i], &h.items[i]) != 0) {
            free(st->t[st->n].name); /* a half-filled entry */
            json_free(&h);
            goto fail;
        }
        st->n++;
    }
    json_free(&h);
    return 0;
fail:;
    char *msg = xstrdup(xerr_msg());
    st_close(st);
    xerr("%s", msg);
    free(msg);
    return -1;
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = st->n - 1; i >= 0; i--) /* last duplicate wins, as in json_get */
        if (!strcmp(st->t[i].name, name)) return &st->t[i];
    return NULL;
}

static int host_le(void) {
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

int st_read_f32(const SafeTensors *st, const StTensor *t, float *dst) {
    const unsigned char *s = st->data + t->begin;
    switch (t->dtype) {
    case ST_F32:
        if (host_le()) { /* the file's byte order: copy as is */
            memcpy(dst, s, t->numel * 4);
            return 0;
        }
        for (size_t i = 0; i < t->numel; i++, s += 4) {
            uint32_t u = (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
            memcpy(&dst[i], &u, 4);
        }
        return 0;
    case ST_F16:
        for (size_t i = 0; i < t->numel; i++, s += 2) dst[i] = st_f16_to_f32((unsigned short)(s[0] | s[1] << 8));
        return 0;
    case ST_BF16:
        for (size_t i = 0; i < t->numel; i++, s += 2) dst[i] = st_bf16_to_f32((unsigned short)(s[0] | s[1] << 8));
        return 0;
    default:
        return xerr("%s: tensor %s: dtype %s not supported (F32, F16 or BF16)", st->path, t->name, t->dtype_name);
    }
}

int st_write_f32(const char *path, const StWrite *ts, int n) {
    StrBuf h = {0};
    size_t off = 0;
    sb_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        size_t numel = 1;
        sb_puts(&h, ",");
        sb_json_string(&h, ts[i].name);
        sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < ts[i].ndim; d++) {
            sb_printf(&h, "%s%zu", d ? "," : "", ts[i].shape[d]);
            numel *= ts[i].shape[d];
        }
        sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + numel * 4);
        off += numel * 4;
    }
    sb_puts(&h, "}");
    while (h.len % 8) sb_puts(&h, " "); /* keeps the tensors 8-byte aligned */
    AtomicFile af;
    FILE *f = atomic_open(&af, path);
    if (!f) {
        sb_free(&h);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.data, 1, h.len, f) == h.len;
    sb_free(&h);
    unsigned char buf[4096];
    for (int i = 0; i < n && ok; i++) {
        size_t numel = 1;
        for (int d = 0; d < ts[i].ndim; d++) numel *= ts[i].shape[d];
        for (size_t j = 0; j < numel && ok;) { /* little-endian whatever the host */
            size_t k = 0;
            for (; k < sizeof buf / 4 && j < numel; k++, j++) {
                uint32_t u;
                memcpy(&u, &ts[i].data[j], 4);
                for (int b = 0; b < 4; b++) buf[4 * k + b] = (unsigned char)(u >> (8 * b));
            }
            ok = fwrite(buf, 4, k, f) == k;
        }
    }
    if (!ok) {
        atomic_abort(&af);
        return xerr("%s: write failed", path);
    }
    return atomic_commit(&af);
}

/* ---------------------------------------------------------------------------
 * Model folders. */

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
    if (json_parse_file(&j, path) != 0) return -1;
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
    if (!(eps > 0 && eps < 1)) {
        xerr("%s: layer_norm_eps = %g out of range (0, 1)", path, eps);
        goto done;
    }
    c->ln_eps = (float)eps;
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
    sb_puts(&sb, "{\n  \"architectures\": [\"XLMRobertaModel\"],\n");
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
                   "  \"torch_dtype\": \"float32\",\n  \"type_vocab_size\": %d,\n  \"use_cache\": true,\n"
                   "  \"vocab_size\": %d\n}\n",
              c->max_pos, c->n_heads, c->n_layers, c->pad_id, c->type_vocab, c->vocab);
    int rc = write_file_atomic(path, sb.data, sb.len);
    sb_free(&sb);
    return rc;
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
    /* the file must hold every parameter at 2 bytes or more before we allocate for them */
    double need = 0;
    for (int i = 0; i < XLMR_NUM_TENSORS; i++) {
        size_t shape[2] = {1, 1};
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
        int layered = xlmr_tensor_is_layered(i), nl = layered ? cfg.n_layers : 1;
        size_t shape[2];
        int ndim = xlmr_tensor_shape(&cfg, i, shape);
        size_t per = m->sizes[i] / (size_t)nl;
        for (int l = 0; l < nl; l++) {
            char name[160], pname[176];
            snprintf(name, sizeof name, xlmr_tensor_name(i), l);
            snprintf(pname, sizeof pname, "roberta.%s", name);
            const StTensor *t = st_find(&st, name);
            if (!t) t = st_find(&st, pname);
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
            if (st_read_f32(&st, t, m->params_memory + m->offsets[i] + (size_t)l * per) != 0) goto done;
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
            if (layered != (pass > 0)) continue;
            int l = layered ? pass - 1 : 0;
            size_t per = m->sizes[i] / (size_t)(layered ? c->n_layers : 1);
            char name[160];
            snprintf(name, sizeof name, xlmr_tensor_name(i), l);
            names[n] = xstrdup(name);
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
