/* safetensors.c: the safetensors reader/writer (see safetensors.h). */
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
#include "strmap.h"
#include "util.h"

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

static int cmp_extent(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* The format's own rules (as the safetensors library validates): names are
 * unique, and the extents, in order, tile the byte buffer exactly: no
 * overlap (two tensors sharing bytes), no gap, no tail that no tensor
 * indexes. Anything else is a damaged or hand-made file, and silently
 * picking one duplicate, or ignoring gigabytes, would hide it. */
static int check_layout(const SafeTensors *st) {
    StrMap names = {0};
    int rc = 0;
    for (int i = 0; i < st->n && rc == 0; i++) {
        int found;
        strmap_slot(&names, st->t[i].name, &found);
        if (found) rc = xerr("%s: tensor %s appears twice in the header", st->path, st->t[i].name);
    }
    strmap_free(&names);
    if (rc) return rc;
    const StTensor **by = xmalloc((size_t)(st->n ? st->n : 1) * sizeof *by);
    for (int i = 0; i < st->n; i++) by[i] = &st->t[i];
    qsort(by, (size_t)st->n, sizeof *by, cmp_extent);
    size_t at = 0;
    for (int i = 0; i < st->n && rc == 0; i++) {
        if (by[i]->begin < at)
            rc = xerr("%s: tensor %s: data_offsets [%zu, %zu] overlap tensor %s", st->path, by[i]->name, by[i]->begin,
                      by[i]->end, by[i - 1]->name);
        else if (by[i]->begin > at)
            rc = xerr("%s: bytes %zu to %zu of the data belong to no tensor", st->path, at, by[i]->begin);
        at = by[i]->end;
    }
    if (rc == 0 && at != st->data_len)
        rc = xerr("%s: %zu bytes after the last tensor belong to no tensor", st->path, st->data_len - at);
    free(by);
    return rc;
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
    if (check_layout(st) != 0) goto fail;
    return 0;
fail:;
    char *msg = xstrdup(xerr_msg());
    st_close(st);
    xerr("%s", msg);
    free(msg);
    return -1;
}

const StTensor *st_find(const SafeTensors *st, const char *name) {
    for (int i = st->n - 1; i >= 0; i--) /* names are unique (check_layout) */
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
