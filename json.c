/* json.c: a strict RFC 8259 reader and the StrBuf writers (see json.h).
 * Recursive descent over the bytes; each value is built in place. Strings are
 * validated as UTF-8 while they are copied, \u escapes are decoded (surrogate
 * pairs combined; a lone surrogate is an error). Errors are reported by byte
 * offset and turned into "line L, column C" (columns count characters) only
 * when they happen, so the happy path does no position bookkeeping. */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Nesting deeper than this is refused rather than risking the C stack. */
#define JSON_MAX_DEPTH 512

typedef struct {
    const char *s;
    size_t n, i;
    const char *name;
    int depth;
} Parser;

static int perr(const Parser *p, size_t at, const char *what) {
    long line = 1, col = 1;
    if (at > p->n) at = p->n;
    for (size_t k = 0; k < at; k++) {
        unsigned char c = (unsigned char)p->s[k];
        if (c == '\n') { line++; col = 1; }
        else if ((c & 0xC0) != 0x80) col++; /* count characters, not continuation bytes */
    }
    return xerr("%s: line %ld, column %ld: %s", p->name, line, col, what);
}

static void skip_ws(Parser *p) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') p->i++;
        else break;
    }
}

static int parse_value(Parser *p, Json *out);

static int hex4(const Parser *p, size_t at, unsigned *out) {
    if (at + 4 > p->n) return perr(p, at, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[at + k];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return perr(p, at + k, "bad hex digit in \\u escape");
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* p->i at the opening quote. The decoded text is never longer than the source
 * (escapes shrink; raw bytes are copied), so one allocation of the span suffices. */
static int parse_string(Parser *p, char **str, size_t *len) {
    size_t start = ++p->i;
    /* find the closing quote first to size the buffer */
    size_t e = start;
    while (e < p->n && p->s[e] != '"') e += p->s[e] == '\\' ? 2 : 1;
    if (e >= p->n) return perr(p, start - 1, "unterminated string");
    char *o = xmalloc(e - start + 1);
    size_t k = 0, i = start;
    while (i < e) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\\') {
            char x = p->s[i + 1];
            i += 2;
            switch (x) {
            case '"': o[k++] = '"'; break;
            case '\\': o[k++] = '\\'; break;
            case '/': o[k++] = '/'; break;
            case 'b': o[k++] = '\b'; break;
            case 'f': o[k++] = '\f'; break;
            case 'n': o[k++] = '\n'; break;
            case 'r': o[k++] = '\r'; break;
            case 't': o[k++] = '\t'; break;
            case 'u': {
                unsigned cp;
                if (hex4(p, i, &cp)) goto fail;
                size_t at = i - 2;
                i += 4;
                if (cp >= 0xDC00 && cp <= 0xDFFF) { perr(p, at, "lone low surrogate in \\u escape"); goto fail; }
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    unsigned lo;
                    if (i + 1 >= e || p->s[i] != '\\' || p->s[i + 1] != 'u') {
                        perr(p, at, "high surrogate not followed by a low surrogate");
                        goto fail;
                    }
                    if (hex4(p, i + 2, &lo)) goto fail;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        perr(p, at, "high surrogate not followed by a low surrogate");
                        goto fail;
                    }
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                k += put_utf8(o + k, cp);
                break;
            }
            default: perr(p, i - 2, "invalid escape in string"); goto fail;
            }
        } else if (c < 0x20) {
            perr(p, i, "control character in string (must be escaped)");
            goto fail;
        } else if (c < 0x80) {
            o[k++] = (char)c;
            i++;
        } else {
            /* a run of non-ASCII bytes: validate as one UTF-8 sequence */
            size_t l = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (i + l > e || !utf8_valid(p->s + i, l)) { perr(p, i, "invalid UTF-8"); goto fail; }
            memcpy(o + k, p->s + i, l);
            k += l;
            i += l;
        }
    }
    o[k] = 0;
    p->i = e + 1;
    *str = o;
    *len = k;
    return 0;
fail:
    free(o);
    return -1;
}

static int parse_number(Parser *p, Json *out) {
    size_t st = p->i, i = p->i;
    const char *s = p->s;
    size_t n = p->n;
    if (i < n && s[i] == '-') i++;
    if (i >= n || s[i] < '0' || s[i] > '9') return perr(p, i, "invalid number (digit expected)");
    if (s[i] == '0') {
        i++;
        if (i < n && s[i] >= '0' && s[i] <= '9') return perr(p, i, "invalid number (leading zero)");
    } else {
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && s[i] == '.') {
        i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return perr(p, i, "invalid number (digit expected after '.')");
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= n || s[i] < '0' || s[i] > '9') return perr(p, i, "invalid number (digit expected in exponent)");
        while (i < n && s[i] >= '0' && s[i] <= '9') i++;
    }
    /* the text need not be NUL-terminated: convert a copy */
    char buf[64];
    char *tmp = i - st < sizeof buf ? buf : xmalloc(i - st + 1);
    memcpy(tmp, s + st, i - st);
    tmp[i - st] = 0;
    errno = 0;
    double v = strtod(tmp, NULL);
    if (tmp != buf) free(tmp);
    if (isinf(v)) return perr(p, st, "number out of range");
    out->type = JSON_NUMBER;
    out->num = v;
    p->i = i;
    return 0;
}

static int parse_literal(Parser *p, const char *word, JsonType t, Json *out) {
    size_t l = strlen(word);
    if (p->n - p->i < l || memcmp(p->s + p->i, word, l) != 0) return perr(p, p->i, "invalid literal");
    p->i += l;
    out->type = t;
    return 0;
}

/* Arrays and objects: items gathered in a growing buffer, shrunk to fit at the end. */
static int parse_container(Parser *p, Json *out, int is_obj) {
    if (++p->depth > JSON_MAX_DEPTH) return perr(p, p->i, "nesting too deep");
    char close = is_obj ? '}' : ']';
    size_t open_at = p->i++;
    out->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
    size_t cap = 0;
    skip_ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (out->n == cap) {
            cap = cap ? cap * 2 : 4;
            out->items = xrealloc(out->items, cap * sizeof(Json));
            if (is_obj) out->keys = xrealloc(out->keys, cap * sizeof(char *));
        }
        Json *v = &out->items[out->n];
        memset(v, 0, sizeof *v);
        if (is_obj) {
            if (p->i >= p->n) return perr(p, p->i, "unexpected end of input in object");
            if (p->s[p->i] != '"') return perr(p, p->i, "object key (string) expected");
            char *key;
            size_t kl;
            if (parse_string(p, &key, &kl)) return -1;
            out->keys[out->n] = key;
            out->n++; /* counted now so json_free releases the key on error */
            skip_ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') return perr(p, p->i, "':' expected after object key");
            p->i++;
            skip_ws(p);
            if (parse_value(p, v)) return -1;
        } else {
            out->n++;
            if (parse_value(p, v)) return -1;
        }
        skip_ws(p);
        if (p->i >= p->n) return perr(p, open_at, is_obj ? "unterminated object" : "unterminated array");
        char c = p->s[p->i++];
        if (c == close) break;
        if (c != ',') return perr(p, p->i - 1, is_obj ? "',' or '}' expected" : "',' or ']' expected");
        skip_ws(p);
        if (p->i < p->n && p->s[p->i] == close) return perr(p, p->i, "trailing comma");
    }
    if (out->n < cap) {
        out->items = xrealloc(out->items, out->n * sizeof(Json));
        if (is_obj) out->keys = xrealloc(out->keys, out->n * sizeof(char *));
    }
    p->depth--;
    return 0;
}

static int parse_value(Parser *p, Json *out) {
    memset(out, 0, sizeof *out);
    skip_ws(p);
    if (p->i >= p->n) return perr(p, p->i, "unexpected end of input (value expected)");
    char c = p->s[p->i];
    switch (c) {
    case '{': return parse_container(p, out, 1);
    case '[': return parse_container(p, out, 0);
    case '"': out->type = JSON_STRING; return parse_string(p, &out->str, &out->len);
    case 't': return parse_literal(p, "true", JSON_TRUE, out);
    case 'f': return parse_literal(p, "false", JSON_FALSE, out);
    case 'n': return parse_literal(p, "null", JSON_NULL, out);
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p, out);
        return perr(p, p->i, "unexpected character (value expected)");
    }
}

int json_parse(Json *out, const char *text, size_t len, const char *name) {
    memset(out, 0, sizeof *out);
    Parser p = {text, len, 0, name ? name : "json", 0};
    /* RFC 8259 lets a parser ignore a leading byte order mark */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.i = 3;
    if (parse_value(&p, out)) {
        json_free(out);
        return -1;
    }
    skip_ws(&p);
    if (p.i != p.n) {
        json_free(out);
        return perr(&p, p.i, "unexpected data after the value");
    }
    return 0;
}

int json_parse_file(Json *out, const char *path) { return json_parse_file_max(out, path, READ_LIMIT_DATA); }

int json_parse_file_max(Json *out, const char *path, size_t limit) {
    char *data;
    size_t len;
    memset(out, 0, sizeof *out);
    if (read_file_max(path, limit, &data, &len)) return -1;
    int rc = json_parse(out, data, len, path);
    free(data);
    return rc;
}

void json_free(Json *j) {
    if (!j) return;
    free(j->str);
    for (size_t i = 0; i < j->n; i++) {
        if (j->items) json_free(&j->items[i]);
        if (j->keys) free(j->keys[i]);
    }
    free(j->items);
    free(j->keys);
    memset(j, 0, sizeof *j);
}

const Json *json_get(const Json *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = obj->n; i-- > 0;) /* from the end: the last duplicate wins */
        if (strncmp(obj->keys[i], key, kl + 1) == 0) return &obj->items[i];
    return NULL;
}

const Json *json_at(const Json *arr, size_t i) {
    if (!arr || (arr->type != JSON_ARRAY && arr->type != JSON_OBJECT) || i >= arr->n) return NULL;
    return &arr->items[i];
}

int json_get_num(const Json *obj, const char *key, double *out, const char *name) {
    const Json *v = json_get(obj, key);
    if (!v) return xerr("%s: missing key %s", name, key);
    if (v->type != JSON_NUMBER) return xerr("%s: %s must be a number", name, key);
    *out = v->num;
    return 0;
}

int json_get_int(const Json *obj, const char *key, long *out, const char *name) {
    double d;
    if (json_get_num(obj, key, &d, name)) return -1;
    /* LONG_MAX is not exact in a double; compare against 2^63 / 2^31 bounds */
    double hi = -(double)LONG_MIN;
    if (d != floor(d) || d < (double)LONG_MIN || d >= hi) return xerr("%s: %s must be an integer", name, key);
    *out = (long)d;
    return 0;
}

const char *json_get_str(const Json *obj, const char *key, const char *name) {
    const Json *v = json_get(obj, key);
    if (!v) { xerr("%s: missing key %s", name, key); return NULL; }
    if (v->type != JSON_STRING) { xerr("%s: %s must be a string", name, key); return NULL; }
    return v->str;
}

/* ---------------------------------------------------------------------------
 * Writing. */
void sb_json_string(StrBuf *sb, const char *s) {
    sb_append(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': sb_append(sb, "\\\"", 2); break;
        case '\\': sb_append(sb, "\\\\", 2); break;
        case '\n': sb_append(sb, "\\n", 2); break;
        case '\r': sb_append(sb, "\\r", 2); break;
        case '\t': sb_append(sb, "\\t", 2); break;
        default:
            if (*p < 0x20) sb_printf(sb, "\\u%04x", *p);
            else sb_append(sb, (const char *)p, 1);
        }
    }
    sb_append(sb, "\"", 1);
}

void sb_json_key(StrBuf *sb, const char *key) {
    sb_json_string(sb, key);
    sb_puts(sb, ": ");
}

void sb_json_number(StrBuf *sb, double x) {
    if (!isfinite(x)) sb_puts(sb, "null");
    else if (x == floor(x) && fabs(x) < 1e15) sb_printf(sb, "%.0f", x);
    else sb_printf(sb, "%.17g", x);
}
