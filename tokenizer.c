/* tokenizer.c: SentencePiece unigram tokenisation in C, bit-exact with
 * spm_encode, and the XLM-R id mapping of Hugging Face's (slow, sentencepiece
 * based) XLMRobertaTokenizer. See tokenizer.h.
 *
 * Pipeline for one text:
 *   normalize()  precompiled charsmap (Darts-clone trie, longest match) and
 *                whitespace rules of Normalizer::Normalize -> "▁Hello▁world"
 *   encode_core() then the best segmentation over the piece trie, one best
 *                node per byte end position (Model::EncodeOptimized), and
 *                unknown runs merged, or split into <0xNN> byte pieces
 *                (SentencePieceProcessor::Encode)
 * The model is immutable after tokenizer_load(); all per-call state lives in
 * a TokScratch, so threads share one Tokenizer. */
#include "tokenizer.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { PT_NORMAL = 1, PT_UNKNOWN = 2, PT_CONTROL = 3, PT_USER = 4, PT_UNUSED = 5, PT_BYTE = 6 };

#define EDGE_EMPTY 0xFFFFFFFFu
#define MAX_TRIE_NODES 0xFFFFFF /* node*256+byte must fit below EDGE_EMPTY */

typedef struct {
    int base, check; /* children at base + byte; check: the parent unit */
    int val;         /* piece ending here (| VAL_USER), -1 for none or UNUSED */
    float score;
} DAUnit;
#define VAL_USER 0x40000000

struct Tokenizer {
    char *path;
    int n;               /* pieces */
    char **piece;        /* piece strings (NUL-terminated, may not contain NUL) */
    float *score;
    unsigned char *type; /* PT_* */
    int unk_id;
    int byte_id[256]; /* id of <0xNN>, unk_id where the model lacks it */
    int byte_fallback, ws_suffix;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    int has_user; /* USER_DEFINED pieces exist: they bypass normalisation */
    float min_score, max_score; /* over NORMAL pieces, as SentencePiece */
    /* precompiled charsmap: Darts-clone units + pool of NUL-terminated strings */
    uint32_t *units;
    size_t n_units;
    char *pool;
    size_t pool_len;
    /* piece trie (NORMAL, USER_DEFINED, UNUSED pieces), a double array
     * whose unit 0 is the root */
    DAUnit *da;
    size_t n_da;
    unsigned char plain[256]; /* ASCII bytes that no charsmap rule or user piece starts with */
};

struct TokScratch {
    char *norm; /* normalised text */
    size_t nlen, ncap;
    float *bscore; /* lattice: best path score, start and id per end position */
    int *bstart, *bid;
    size_t lcap;
    int *tid, *ta, *tb, *tbyte; /* output pieces: id, [a,b) in norm, byte or -1 */
    size_t tn, tcap;
    IntVec tmp;
};

/* ---------------------------------------------------------------------------
 * Protocol buffers (proto2 wire format): just enough to walk messages. */

typedef struct {
    const uint8_t *p, *end;
} PB;

static int pb_varint(PB *b, uint64_t *v) {
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* Reads one field: 1 with the field, 0 at the end, -1 when malformed. For
 * LEN fields, data and len give the payload; for fixed32 *v holds the raw bits. */
static int pb_next(PB *b, uint32_t *field, int *wt, uint64_t *v, const uint8_t **data, size_t *len) {
    if (b->p >= b->end) return 0;
    uint64_t key;
    if (pb_varint(b, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    if (*field == 0 || (key >> 3) > 0x1FFFFFFF) return -1;
    switch (*wt) {
    case 0: return pb_varint(b, v) ? -1 : 1;
    case 1:
        if (b->end - b->p < 8) return -1;
        b->p += 8;
        return 1;
    case 2: {
        uint64_t n;
        if (pb_varint(b, &n) || n > (uint64_t)(b->end - b->p)) return -1;
        *data = b->p;
        *len = (size_t)n;
        b->p += n;
        return 1;
    }
    case 5: {
        if (b->end - b->p < 4) return -1;
        const uint8_t *q = b->p;
        *v = (uint64_t)q[0] | (uint64_t)q[1] << 8 | (uint64_t)q[2] << 16 | (uint64_t)q[3] << 24;
        b->p += 4;
        return 1;
    }
    default: return -1; /* groups (3, 4) are not used by the model proto */
    }
}

/* ---------------------------------------------------------------------------
 * Piece trie. Built first as a hashed trie (edges keyed by node*256+byte),
 * then laid out as a double array for encoding: the child of unit p on byte c
 * is unit da[p].base + c when its check is p. A unit carries the piece that
 * ends there and its score, so one cache line serves each step of the walk. */

typedef struct {
    int n_nodes;
    int *val;      /* piece id ending at the node, or -1 */
    uint32_t *key; /* edge table: node*256+byte -> child */
    int *child;
    uint32_t mask;
} HashTrie;

static int ht_child(const HashTrie *h, int node, unsigned char c) {
    uint32_t key = (uint32_t)node * 256u + c;
    for (uint32_t i = (key * 0x9E3779B1u >> 7) & h->mask;; i = (i + 1) & h->mask) {
        if (h->key[i] == key) return h->child[i];
        if (h->key[i] == EDGE_EMPTY) return -1;
    }
}

static void ht_insert(HashTrie *h, uint32_t key, int child) {
    uint32_t i = (key * 0x9E3779B1u >> 7) & h->mask;
    while (h->key[i] != EDGE_EMPTY) i = (i + 1) & h->mask;
    h->key[i] = key;
    h->child[i] = child;
}

/* Double-array construction state: the free units form a linked list so that
 * finding a base for a node looks at free units only. */
typedef struct {
    DAUnit *u;
    int *next, *prev; /* free list; -1 ends */
    int head, tail, cap;
} DABuild;

static void da_grow(DABuild *b, int need) {
    if (need <= b->cap) return;
    int cap = b->cap ? b->cap : 1024;
    while (cap < need) {
        if (cap > INT32_MAX / 2) die("tokenizer: piece trie too large");
        cap *= 2;
    }
    b->u = xrealloc(b->u, (size_t)cap * sizeof(DAUnit));
    b->next = xrealloc(b->next, (size_t)cap * sizeof(int));
    b->prev = xrealloc(b->prev, (size_t)cap * sizeof(int));
    for (int i = b->cap; i < cap; i++) {
        b->u[i] = (DAUnit){0, -1, -1, 0.0f};
        b->prev[i] = b->tail;
        b->next[i] = -1;
        if (b->tail >= 0) b->next[b->tail] = i;
        else b->head = i;
        b->tail = i;
    }
    b->cap = cap;
}

static void da_take(DABuild *b, int i) {
    if (b->prev[i] >= 0) b->next[b->prev[i]] = b->next[i];
    else b->head = b->next[i];
    if (b->next[i] >= 0) b->prev[b->next[i]] = b->prev[i];
    else b->tail = b->prev[i];
}

/* Encoded unit value: the piece id, with PT_USER flagged; -1 for none and for
 * UNUSED pieces, which the Viterbi walk steps over. */
static int unit_val(const Tokenizer *t, int id) {
    if (id < 0 || t->type[id] == PT_UNUSED) return -1;
    return t->type[id] == PT_USER ? id | VAL_USER : id;
}

static int da_build(Tokenizer *t, const HashTrie *h) {
    /* children of every node, sorted by byte (edges counted by parent) */
    int nn = h->n_nodes;
    int *cnt = xcalloc((size_t)nn + 1, sizeof(int));
    for (uint32_t i = 0; i <= h->mask; i++)
        if (h->key[i] != EDGE_EMPTY) cnt[(h->key[i] >> 8) + 1]++;
    for (int i = 0; i < nn; i++) cnt[i + 1] += cnt[i];
    int *fill = xmalloc((size_t)nn * sizeof(int));
    memcpy(fill, cnt, (size_t)nn * sizeof(int));
    int *lab = xmalloc(((size_t)cnt[nn] + 1) * sizeof(int)), *kid = xmalloc(((size_t)cnt[nn] + 1) * sizeof(int));
    for (uint32_t i = 0; i <= h->mask; i++) {
        if (h->key[i] == EDGE_EMPTY) continue;
        int p = (int)(h->key[i] >> 8), j = fill[p]++;
        lab[j] = (int)(h->key[i] & 255);
        kid[j] = h->child[i];
        for (; j > cnt[p] && lab[j - 1] > lab[j]; j--) { /* insertion sort by byte */
            int x = lab[j]; lab[j] = lab[j - 1]; lab[j - 1] = x;
            x = kid[j]; kid[j] = kid[j - 1]; kid[j - 1] = x;
        }
    }
    DABuild b = {NULL, NULL, NULL, -1, -1, 0};
    da_grow(&b, 512);
    da_take(&b, 0);
    b.u[0].check = -2; /* the root, parent of nothing's check */
    b.u[0].val = -1;
    /* breadth first: queue of (trie node, unit) */
    int *qn = xmalloc((size_t)nn * sizeof(int)), *qu = xmalloc((size_t)nn * sizeof(int));
    int qh = 0, qt = 0;
    qn[qt] = 0, qu[qt++] = 0;
    while (qh < qt) {
        int node = qn[qh], unit = qu[qh++];
        int c0 = cnt[node], c1 = cnt[node + 1];
        if (c0 == c1) continue; /* a leaf: base 0 leads nowhere (no unit has it as check) */
        int base;
        for (int p = b.head;; p = b.next[p]) {
            if (p < 0) { /* list exhausted: grow, the new units are free */
                p = b.cap;
                da_grow(&b, b.cap + 512);
            }
            base = p - lab[c0];
            if (base < 1) continue;
            da_grow(&b, base + 257); /* every base + byte stays inside the array */
            int ok = 1;
            for (int j = c0 + 1; j < c1 && ok; j++) ok = b.u[base + lab[j]].check == -1;
            if (ok) break;
        }
        b.u[unit].base = base;
        for (int j = c0; j < c1; j++) {
            int v = base + lab[j];
            da_take(&b, v);
            b.u[v].check = unit;
            b.u[v].val = unit_val(t, h->val[kid[j]]);
            b.u[v].score = h->val[kid[j]] >= 0 ? t->score[h->val[kid[j]]] : 0.0f;
            qn[qt] = kid[j], qu[qt++] = v;
        }
    }
    free(qn), free(qu), free(cnt), free(fill), free(lab), free(kid), free(b.next), free(b.prev);
    t->da = b.u;
    t->n_da = (size_t)b.cap;
    return 0;
}

/* Builds the trie of NORMAL, USER_DEFINED and UNUSED pieces
 * (ModelInterface::InitializePieces); a repeated piece is an error there too. */
static int trie_build(Tokenizer *t) {
    size_t total = 0;
    for (int i = 0; i < t->n; i++) total += strlen(t->piece[i]);
    if (total >= MAX_TRIE_NODES) return xerr("%s: pieces too long in total (%zu bytes)", t->path, total);
    HashTrie h;
    uint32_t cap = 1024;
    while (cap < 2 * total + 2) cap *= 2;
    h.mask = cap - 1;
    h.key = xmalloc(cap * sizeof(uint32_t));
    h.child = xmalloc(cap * sizeof(int));
    memset(h.key, 0xFF, cap * sizeof(uint32_t));
    h.val = xmalloc((total + 1) * sizeof(int));
    h.val[0] = -1;
    h.n_nodes = 1;
    int rc = 0;
    for (int i = 0; i < t->n && !rc; i++) {
        int ty = t->type[i];
        if (ty != PT_NORMAL && ty != PT_USER && ty != PT_UNUSED) continue;
        int node = 0;
        for (const unsigned char *s = (const unsigned char *)t->piece[i]; *s; s++) {
            int ch = ht_child(&h, node, *s);
            if (ch < 0) {
                ch = h.n_nodes++;
                h.val[ch] = -1;
                ht_insert(&h, (uint32_t)node * 256u + *s, ch);
            }
            node = ch;
        }
        if (h.val[node] >= 0) rc = xerr("%s: piece %d \"%s\" is defined twice", t->path, i, t->piece[i]);
        h.val[node] = i;
    }
    if (!rc) rc = da_build(t, &h);
    free(h.key), free(h.child), free(h.val);
    return rc;
}

/* ---------------------------------------------------------------------------
 * Loading. */

static int parse_piece(Tokenizer *t, const uint8_t *d, size_t n, int idx) {
    PB b = {d, d + n};
    uint32_t f;
    int wt, r;
    uint64_t v = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    int have_piece = 0;
    t->type[idx] = PT_NORMAL; /* proto default */
    t->score[idx] = 0.0f;
    t->piece[idx] = NULL;
    while ((r = pb_next(&b, &f, &wt, &v, &data, &len)) == 1) {
        if (f == 1 && wt == 2) {
            if (memchr(data, 0, len)) return xerr("%s: piece %d contains a NUL byte", t->path, idx);
            free(t->piece[idx]);
            t->piece[idx] = xstrndup((const char *)data, len);
            have_piece = 1;
        } else if (f == 2 && wt == 5) {
            uint32_t bits = (uint32_t)v;
            memcpy(&t->score[idx], &bits, 4);
            /* Viterbi sums scores: a NaN or Inf would silently decide every path it touches */
            if (!isfinite(t->score[idx]))
                return xerr("%s: piece %d has a non-finite score (%s)", t->path, idx,
                            isnan(t->score[idx]) ? "nan" : "inf");
        } else if (f == 3 && wt == 0) {
            if (v < 1 || v > 6) return xerr("%s: piece %d has unknown type %llu", t->path, idx, (unsigned long long)v);
            t->type[idx] = (unsigned char)v;
        } else if (f <= 3) {
            return xerr("%s: piece %d: field %u has the wrong wire type", t->path, idx, f);
        }
    }
    if (r < 0) return xerr("%s: malformed piece %d", t->path, idx);
    if (!have_piece || !t->piece[idx][0]) return xerr("%s: piece %d is empty", t->path, idx);
    return 0;
}

static int parse_trainer(Tokenizer *t, const uint8_t *d, size_t n) {
    PB b = {d, d + n};
    uint32_t f;
    int wt, r;
    uint64_t v = 0;
    const uint8_t *data;
    size_t len;
    while ((r = pb_next(&b, &f, &wt, &v, &data, &len)) == 1) {
        if (wt != 0) continue;
        if (f == 3 && v != 1) {
            const char *names[] = {"?", "unigram", "bpe", "word", "char"};
            return xerr("%s: model type %s is not supported (only unigram)", t->path, v <= 4 ? names[v] : "unknown");
        }
        if (f == 24) t->ws_suffix = v != 0;
        if (f == 35) t->byte_fallback = v != 0;
    }
    return r < 0 ? xerr("%s: malformed trainer_spec", t->path) : 0;
}

/* Darts-clone unit fields (darts.h: DoubleArrayUnit). */
static inline int unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & 0x7FFFFFFFu; }
static inline uint32_t unit_label(uint32_t u) { return u & (0x80000000u | 0xFFu); }
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

static int parse_normalizer(Tokenizer *t, const uint8_t *d, size_t n) {
    PB b = {d, d + n};
    uint32_t f;
    int wt, r;
    uint64_t v = 0;
    const uint8_t *data = NULL;
    size_t len = 0;
    while ((r = pb_next(&b, &f, &wt, &v, &data, &len)) == 1) {
        if (f == 2 && wt == 2) {
            free(t->units);
            free(t->pool);
            t->units = NULL;
            t->pool = NULL;
            t->n_units = t->pool_len = 0;
            if (len == 0) continue; /* no charsmap: identity */
            if (len < 4) return xerr("%s: precompiled_charsmap truncated", t->path);
            uint32_t tb = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                          (uint32_t)data[3] << 24;
            if (tb == 0 || tb % 4 || tb > len - 4)
                return xerr("%s: precompiled_charsmap: bad trie size %u", t->path, tb);
            t->n_units = tb / 4;
            t->units = xmalloc(tb);
            for (size_t i = 0; i < t->n_units; i++) {
                const uint8_t *q = data + 4 + 4 * i;
                t->units[i] = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
            }
            t->pool_len = len - 4 - tb;
            t->pool = xmalloc(t->pool_len + 1);
            memcpy(t->pool, data + 4 + tb, t->pool_len);
            t->pool[t->pool_len] = 0; /* a last string without its NUL still ends */
            /* every leaf value must point into the pool */
            for (size_t i = 0; i < t->n_units; i++)
                if ((t->units[i] >> 31) && unit_value(t->units[i]) >= t->pool_len && t->pool_len)
                    return xerr("%s: precompiled_charsmap: value outside the string pool", t->path);
            if (t->pool_len == 0) return xerr("%s: precompiled_charsmap has no string pool", t->path);
        } else if (wt == 0 && f == 3) {
            t->add_dummy_prefix = v != 0;
        } else if (wt == 0 && f == 4) {
            t->remove_extra_ws = v != 0;
        } else if (wt == 0 && f == 5) {
            t->escape_ws = v != 0;
        }
    }
    return r < 0 ? xerr("%s: malformed normalizer_spec", t->path) : 0;
}

static int byte_piece_value(const char *s) {
    /* "<0xNN>" with upper-case hex, as SentencePiece's ByteToPiece writes it */
    if (strlen(s) != 6 || strncmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A ModelProto: field 1 the pieces (repeated), 2 trainer_spec, 3 normalizer_spec;
 * other fields are skipped, as a newer SentencePiece may add some. */
static int load_from(Tokenizer *t, const uint8_t *buf, size_t n) {
    if (n == 0) return xerr("%s: empty file", t->path);
    PB b = {buf, buf + n};
    uint32_t f;
    int wt, r;
    uint64_t v;
    const uint8_t *data = NULL;
    size_t len = 0;
    /* first pass: count pieces, so the arrays are sized from checked data */
    size_t count = 0;
    while ((r = pb_next(&b, &f, &wt, &v, &data, &len)) == 1)
        if (f == 1 && wt == 2) count++;
    if (r < 0) return xerr("%s: not a SentencePiece model (malformed protobuf)", t->path);
    if (count == 0) return xerr("%s: not a SentencePiece model (no pieces)", t->path);
    if (count > 0x7FFFFFF) return xerr("%s: too many pieces", t->path);
    t->n = (int)count;
    t->piece = xcalloc(count, sizeof(char *));
    t->score = xcalloc(count, sizeof(float));
    t->type = xcalloc(count, 1);
    t->add_dummy_prefix = t->remove_extra_ws = t->escape_ws = 1; /* proto2 defaults */
    b.p = buf;
    int idx = 0;
    while ((r = pb_next(&b, &f, &wt, &v, &data, &len)) == 1) {
        if (wt != 2) continue;
        if (f == 1) {
            if (parse_piece(t, data, len, idx++)) return -1;
        } else if (f == 2) {
            if (parse_trainer(t, data, len)) return -1;
        } else if (f == 3) {
            if (parse_normalizer(t, data, len)) return -1;
        }
    }
    t->unk_id = -1;
    for (int c = 0; c < 256; c++) t->byte_id[c] = -1;
    t->min_score = 3.402823466e+38f; /* FLT_MAX, FLT_MIN: SentencePiece's initial values */
    t->max_score = 1.175494351e-38f;
    for (int i = 0; i < t->n; i++) {
        switch (t->type[i]) {
        case PT_UNKNOWN:
            if (t->unk_id >= 0) return xerr("%s: more than one unknown piece", t->path);
            t->unk_id = i;
            break;
        case PT_USER: t->has_user = 1; break;
        case PT_NORMAL:
            if (t->score[i] < t->min_score) t->min_score = t->score[i];
            if (t->score[i] > t->max_score) t->max_score = t->score[i];
            break;
        case PT_BYTE: {
            if (!t->byte_fallback)
                return xerr("%s: byte piece %s found although byte_fallback is false", t->path, t->piece[i]);
            int bv = byte_piece_value(t->piece[i]);
            if (bv < 0) return xerr("%s: bad byte piece \"%s\"", t->path, t->piece[i]);
            t->byte_id[bv] = i;
            break;
        }
        default: break;
        }
    }
    if (t->unk_id < 0) return xerr("%s: the model defines no unknown piece", t->path);
    for (int c = 0; c < 256; c++) /* a byte without its <0xNN> piece is encoded as <unk> */
        if (t->byte_id[c] < 0) t->byte_id[c] = t->unk_id;
    if (trie_build(t)) return -1;
    /* plain ASCII bytes are copied by the normaliser without a trie lookup:
     * most of English text takes that fast path */
    for (int c = 0; c < 128; c++) {
        int rule = 0;
        if (t->units) { /* the root has a child labelled c */
            size_t pos = unit_offset(t->units[0]) ^ (size_t)c;
            rule = pos < t->n_units && unit_label(t->units[pos]) == (uint32_t)c;
        }
        if (t->has_user) { /* a user-defined piece may start with c */
            int nx = t->da[0].base + c;
            rule |= t->da[nx].check == 0;
        }
        t->plain[c] = !rule;
    }
    return 0;
}

char *tokenizer_model_path(const char *path) {
    return is_dir(path) ? path_join(path, "sentencepiece.bpe.model") : xstrdup(path);
}

int tokenizer_load(Tokenizer **out, const char *path) {
    *out = NULL;
    char *file = tokenizer_model_path(path);
    char *buf;
    size_t n;
    if (read_file_max(file, READ_LIMIT_MODEL, &buf, &n)) {
        free(file);
        return -1;
    }
    Tokenizer *t = xcalloc(1, sizeof(Tokenizer));
    t->path = file;
    int rc = load_from(t, (const uint8_t *)buf, n);
    free(buf);
    if (rc) {
        tokenizer_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    if (t->piece)
        for (int i = 0; i < t->n; i++) free(t->piece[i]);
    free(t->piece);
    free(t->score);
    free(t->type);
    free(t->units);
    free(t->pool);
    free(t->da);
    free(t->path);
    free(t);
}

int tokenizer_n_pieces(const Tokenizer *t) { return t->n; }
const char *tokenizer_piece(const Tokenizer *t, int id) { return id >= 0 && id < t->n ? t->piece[id] : NULL; }
int tokenizer_xlmr_vocab(const Tokenizer *t) { return t->n + 2; }

/* ---------------------------------------------------------------------------
 * Scratch. */

TokScratch *tok_scratch_new(void) { return xcalloc(1, sizeof(TokScratch)); }

void tok_scratch_free(TokScratch *s) {
    if (!s) return;
    free(s->norm);
    free(s->bscore);
    free(s->bstart);
    free(s->bid);
    free(s->tid);
    free(s->ta);
    free(s->tb);
    free(s->tbyte);
    iv_free(&s->tmp);
    free(s);
}

static void norm_reserve(TokScratch *s, size_t extra) {
    if (extra < s->ncap && s->nlen < s->ncap - extra) return; /* room for extra and a NUL */
    size_t need;
    if (size_add(s->nlen, extra, &need) || size_add(need, 1, &need)) die("tokenizer: text too large");
    if (need <= s->ncap) return;
    size_t cap = s->ncap ? s->ncap : 256;
    while (cap < need) cap *= 2;
    s->norm = xrealloc(s->norm, cap);
    s->ncap = cap;
}

static void norm_put(TokScratch *s, const char *p, size_t n) {
    norm_reserve(s, n);
    memcpy(s->norm + s->nlen, p, n);
    s->nlen += n;
}

static void tok_push(TokScratch *s, int id, size_t a, size_t b, int byte) {
    if (s->tn == s->tcap) {
        s->tcap = s->tcap ? 2 * s->tcap : 64;
        s->tid = xrealloc(s->tid, s->tcap * sizeof(int));
        s->ta = xrealloc(s->ta, s->tcap * sizeof(int));
        s->tb = xrealloc(s->tb, s->tcap * sizeof(int));
        s->tbyte = xrealloc(s->tbyte, s->tcap * sizeof(int));
    }
    s->tid[s->tn] = id;
    s->ta[s->tn] = (int)a;
    s->tb[s->tn] = (int)b;
    s->tbyte[s->tn] = byte;
    s->tn++;
}

/* ---------------------------------------------------------------------------
 * Normalisation (Normalizer::Normalize). */

/* Length of the UTF-8 character at s as SentencePiece decodes it
 * (string_util::DecodeUTF8): 0 when malformed. A literal U+FFFD is valid. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    if (n >= 2 && (c & 0xE0) == 0xC0) {
        uint32_t cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu);
        if ((s[1] & 0xC0) == 0x80 && cp >= 0x80) return 2;
    } else if (n >= 3 && (c & 0xF0) == 0xE0) {
        uint32_t cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
        if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && cp >= 0x800 && (cp < 0xD800 || cp >= 0xE000))
            return 3;
    } else if (n >= 4 && (c & 0xF8) == 0xF0) {
        uint32_t cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
        if ((s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 && cp >= 0x10000 &&
            cp <= 0x10FFFF)
            return 4;
    }
    return 0;
}

/* Normalizer::NormalizePrefix: the replacement of the longest rule matching
 * at s (user-defined pieces first, unchanged), else one character. */
static void normalize_prefix(const Tokenizer *t, const unsigned char *s, size_t n, const char **out, size_t *out_len,
                             size_t *consumed) {
    if (t->plain[s[0]]) { /* no rule starts with this ASCII byte */
        *out = (const char *)s;
        *out_len = *consumed = 1;
        return;
    }
    if (t->has_user) { /* PrefixMatcher over USER_DEFINED pieces, longest */
        size_t best = 0;
        const DAUnit *da = t->da;
        for (int p = 0, i = 0; (size_t)i < n; i++) {
            int nx = da[p].base + s[i];
            if (da[nx].check != p) break;
            p = nx;
            if (da[p].val >= 0 && (da[p].val & VAL_USER)) best = (size_t)i + 1;
        }
        if (best) {
            *out = (const char *)s;
            *out_len = *consumed = best;
            return;
        }
    }
    if (t->units) { /* Darts-clone commonPrefixSearch, keeping the longest match */
        const uint32_t *u = t->units;
        size_t pos = unit_offset(u[0]), best = 0;
        uint32_t val = 0;
        for (size_t i = 0; i < n; i++) {
            pos ^= s[i];
            if (pos >= t->n_units) break;
            uint32_t unit = u[pos];
            if (unit_label(unit) != s[i]) break;
            pos ^= unit_offset(unit);
            if (pos >= t->n_units) break;
            if (unit_has_leaf(unit)) {
                best = i + 1;
                val = unit_value(u[pos]);
            }
        }
        if (best) {
            if (val >= t->pool_len) val = (uint32_t)t->pool_len; /* the pool's final NUL: empty */
            *out = t->pool + val;
            *out_len = strlen(*out);
            *consumed = best;
            return;
        }
    }
    size_t m = utf8_char_len(s, n);
    if (m == 0) { /* malformed: U+FFFD for one byte */
        *out = "\xEF\xBF\xBD";
        *out_len = 3;
        *consumed = 1;
    } else {
        *out = (const char *)s;
        *out_len = *consumed = m;
    }
}

static void add_ws(const Tokenizer *t, TokScratch *s) {
    if (t->escape_ws) norm_put(s, "\xE2\x96\x81", 3);
    else norm_put(s, " ", 1);
}

static void normalize(const Tokenizer *t, TokScratch *s, const unsigned char *in, size_t n) {
    s->nlen = 0;
    const char *sp;
    size_t splen, used, i = 0;
    if (t->remove_extra_ws) { /* drop leading pieces that normalise to " " */
        while (i < n) {
            normalize_prefix(t, in + i, n - i, &sp, &splen, &used);
            if (!(splen == 1 && sp[0] == ' ')) break;
            i += used;
        }
    }
    if (i >= n) return;
    if (!t->ws_suffix && t->add_dummy_prefix) add_ws(t, s);
    int prev_space = t->remove_extra_ws;
    while (i < n) {
        normalize_prefix(t, in + i, n - i, &sp, &splen, &used);
        if (prev_space && t->remove_extra_ws)
            while (splen && sp[0] == ' ') sp++, splen--;
        if (splen) {
            norm_reserve(s, 3 * splen);
            for (size_t k = 0; k < splen; k++) {
                if (t->escape_ws && sp[k] == ' ') {
                    memcpy(s->norm + s->nlen, "\xE2\x96\x81", 3);
                    s->nlen += 3;
                } else {
                    s->norm[s->nlen++] = sp[k];
                }
            }
            prev_space = sp[splen - 1] == ' ';
        }
        i += used;
        if (!t->remove_extra_ws) prev_space = 0;
    }
    if (t->remove_extra_ws) { /* strip trailing whitespace symbols */
        const char *w = t->escape_ws ? "\xE2\x96\x81" : " ";
        size_t wl = t->escape_ws ? 3 : 1;
        while (s->nlen >= wl && !memcmp(s->norm + s->nlen - wl, w, wl)) s->nlen -= wl;
    }
    if (t->ws_suffix && t->add_dummy_prefix) add_ws(t, s);
}

/* ---------------------------------------------------------------------------
 * Viterbi (Model::EncodeOptimized) and the unknown/byte handling of
 * SentencePieceProcessor::Encode. Fills s->tid/ta/tb/tbyte. */

static void lattice_reserve(TokScratch *s, size_t n) {
    if (n <= s->lcap) return;
    size_t cap = s->lcap ? s->lcap : 256;
    while (cap < n) cap *= 2;
    s->bscore = xrealloc(s->bscore, cap * sizeof(float));
    s->bstart = xrealloc(s->bstart, cap * sizeof(int));
    s->bid = xrealloc(s->bid, cap * sizeof(int));
    s->lcap = cap;
}

static int encode_core(const Tokenizer *t, TokScratch *s, const char *text, size_t len) {
    s->tn = 0;
    normalize(t, s, (const unsigned char *)text, len);
    size_t size = s->nlen;
    if (size == 0) return 0;
    if (size > 0x7FFFFFF0) return xerr("tokenizer: text too large (%zu bytes)", len); /* int offsets */
    const unsigned char *q = (const unsigned char *)s->norm;
    lattice_reserve(s, size + 1);
    float *bscore = s->bscore;
    int *bstart = s->bstart, *bid = s->bid;
    for (size_t i = 0; i <= size; i++) {
        bscore[i] = 0.0f;
        bstart[i] = -1;
        bid[i] = -1;
    }
    const float unk_score = t->min_score - 10.0f; /* kUnkPenalty */
    size_t start = 0;
    while (start < size) {
        static const unsigned char onechar[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
        size_t mblen = onechar[q[start] >> 4];
        if (mblen > size - start) mblen = size - start;
        const float base = bscore[start];
        int single = 0, p = 0;
        const DAUnit *da = t->da;
        for (size_t k = start; k < size; k++) {
            int nx = da[p].base + q[k];
            if (da[nx].check != p) break;
            p = nx;
            int id = da[p].val;
            if (id < 0) continue; /* no piece ends here, or an UNUSED one */
            size_t length = k + 1 - start;
            /* SentencePiece computes in double here (the user-defined branch
             * subtracts the double 0.1) and stores the float back; ties keep
             * the first candidate (strictly greater replaces). */
            double sc = (id & VAL_USER) ? (double)((float)length * t->max_score) - 0.1 : (double)da[p].score;
            id &= ~VAL_USER;
            double cand = sc + (double)base;
            if (bstart[k + 1] == -1 || cand > (double)bscore[k + 1]) {
                bscore[k + 1] = (float)cand;
                bstart[k + 1] = (int)start;
                bid[k + 1] = id;
            }
            if (length == mblen) single = 1;
        }
        if (!single) {
            size_t e = start + mblen;
            float cand = unk_score + base; /* float here: both operands are */
            if (bstart[e] == -1 || cand > bscore[e]) {
                bscore[e] = cand;
                bstart[e] = (int)start;
                bid[e] = t->unk_id;
            }
        }
        start += mblen;
    }
    /* backtrack into tid/ta/tb (reversed), then reverse in place */
    for (size_t e = size; e > 0;) {
        size_t b = (size_t)bstart[e];
        tok_push(s, bid[e], b, e, -1);
        e = b;
    }
    for (size_t i = 0, j = s->tn - 1; i < j; i++, j--) {
        int x;
        x = s->tid[i], s->tid[i] = s->tid[j], s->tid[j] = x;
        x = s->ta[i], s->ta[i] = s->ta[j], s->ta[j] = x;
        x = s->tb[i], s->tb[i] = s->tb[j], s->tb[j] = x;
    }
    /* unknown pieces: split into bytes (byte_fallback) or merge runs */
    size_t m = 0, n = s->tn;
    int prev_unk = 0;
    if (t->byte_fallback) {
        int has_unk = 0;
        for (size_t i = 0; i < n; i++) has_unk |= s->tid[i] == t->unk_id;
        if (!has_unk) return 0;
        /* expanding in place needs room: copy the path aside first */
        IntVec *tmp = &s->tmp;
        tmp->n = 0;
        for (size_t i = 0; i < n; i++) {
            iv_push(tmp, s->tid[i]);
            iv_push(tmp, s->ta[i]);
            iv_push(tmp, s->tb[i]);
        }
        s->tn = 0;
        for (size_t i = 0; i < n; i++) {
            int id = tmp->data[3 * i], a = tmp->data[3 * i + 1], b = tmp->data[3 * i + 2];
            if (id != t->unk_id) {
                tok_push(s, id, (size_t)a, (size_t)b, -1);
                continue;
            }
            for (int k = a; k < b; k++) {
                unsigned char c = q[k];
                tok_push(s, t->byte_id[c], (size_t)k, (size_t)k + 1, c);
            }
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int is_unk = s->tid[i] == t->unk_id;
        if (is_unk && prev_unk) {
            s->tb[m - 1] = s->tb[i];
        } else {
            s->tid[m] = s->tid[i];
            s->ta[m] = s->ta[i];
            s->tb[m] = s->tb[i];
            s->tbyte[m] = -1;
            m++;
        }
        prev_unk = is_unk;
    }
    s->tn = m;
    return 0;
}

/* ---------------------------------------------------------------------------
 * Public encoders. */

int tokenizer_encode_spm_s(const Tokenizer *t, TokScratch *s, const char *text, size_t len, IntVec *out) {
    if (encode_core(t, s, text, len)) return -1;
    for (size_t i = 0; i < s->tn; i++) iv_push(out, s->tid[i]);
    return 0;
}

int tokenizer_encode_pieces_s(const Tokenizer *t, TokScratch *s, const char *text, size_t len, StrBuf *out) {
    if (encode_core(t, s, text, len)) return -1;
    for (size_t i = 0; i < s->tn; i++) {
        if (i) sb_append(out, " ", 1);
        if (s->tbyte[i] >= 0) {
            char hex[8];
            static const char digits[] = "0123456789ABCDEF";
            hex[0] = '<', hex[1] = '0', hex[2] = 'x', hex[3] = digits[s->tbyte[i] >> 4],
            hex[4] = digits[s->tbyte[i] & 15], hex[5] = '>';
            sb_append(out, hex, 6);
        } else {
            sb_append(out, s->norm + s->ta[i], (size_t)(s->tb[i] - s->ta[i]));
        }
    }
    if (!out->data) sb_append(out, "", 0);
    return 0;
}

/* 1 when the code point is whitespace for Python's str.isspace(). */
static int py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

/* Length of s[0..n) after Python's str.rstrip() (whitespace of valid UTF-8). */
static size_t py_rstrip(const unsigned char *s, size_t n) {
    while (n > 0) {
        size_t b = n - 1;
        while (b > 0 && n - b < 4 && (s[b] & 0xC0) == 0x80) b--;
        size_t m = utf8_char_len(s + b, n - b);
        if (m != n - b) return n;
        uint32_t c;
        if (m == 1) c = s[b];
        else if (m == 2) c = ((s[b] & 0x1Fu) << 6) | (s[b + 1] & 0x3Fu);
        else if (m == 3) c = ((s[b] & 0x0Fu) << 12) | ((s[b + 1] & 0x3Fu) << 6) | (s[b + 2] & 0x3Fu);
        else return n; /* no 4-byte whitespace */
        if (!py_isspace(c)) return n;
        n = b;
    }
    return 0;
}

/* HF's special tokens: <s> <pad> </s> <unk> <mask>; returns the match length
 * and sets *id, or 0. */
static size_t match_special(const Tokenizer *t, const char *p, size_t n, int *id) {
    static const char *const names[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
    for (int k = 0; k < 5; k++) {
        size_t l = strlen(names[k]);
        if (l <= n && !memcmp(p, names[k], l)) {
            *id = k < 4 ? k : t->n + 1;
            return l;
        }
    }
    return 0;
}

static int xlmr_chunk(const Tokenizer *t, TokScratch *s, const char *p, size_t n, IntVec *out) {
    if (n == 0) return 0;
    if (encode_core(t, s, p, n)) return -1;
    /* fairseq offset: spm id 0 (<unk> in XLM-R's model) becomes 3, others +1 */
    for (size_t i = 0; i < s->tn; i++) iv_push(out, s->tid[i] ? s->tid[i] + 1 : 3);
    return 0;
}

int tokenizer_encode_xlmr_s(const Tokenizer *t, TokScratch *s, const char *text, size_t len, int max_len,
                            IntVec *out) {
    if (max_len == 1 || max_len < 0) return xerr("tokenizer: max_len %d is too small (need 0 or >= 2)", max_len);
    /* XLM-R's ids put <unk> at 3 and <mask> at n + 1: with fewer than 3 pieces
     * (<unk>, <s>, </s> in SentencePiece's numbering) they collide or overflow. */
    if (t->n < 3) return xerr("%s: %d piece(s): XLM-R ids need at least 3 (<unk>, <s>, </s>)", t->path, t->n);
    out->n = 0;
    iv_push(out, 0);
    /* Split out literal special tokens (leftmost match), as the slow
     * tokenizer's tokens_trie.split; <mask> (lstrip=True) eats the whitespace
     * to its left. Each text chunk is encoded by SentencePiece on its own. */
    size_t chunk = 0;
    for (size_t i = 0; i < len;) {
        int id;
        size_t l = text[i] == '<' ? match_special(t, text + i, len - i, &id) : 0;
        if (!l) {
            i++;
            continue;
        }
        size_t end = i;
        if (id == t->n + 1) end = chunk + py_rstrip((const unsigned char *)text + chunk, i - chunk);
        if (xlmr_chunk(t, s, text + chunk, end - chunk, out)) return -1;
        iv_push(out, id);
        i += l;
        chunk = i;
    }
    if (xlmr_chunk(t, s, text + chunk, len - chunk, out)) return -1;
    if (max_len > 0 && out->n + 1 > (size_t)max_len) out->n = (size_t)max_len - 1;
    iv_push(out, 2);
    return 0;
}

int tokenizer_encode_spm(const Tokenizer *t, const char *text, size_t len, IntVec *out) {
    TokScratch *s = tok_scratch_new();
    int rc = tokenizer_encode_spm_s(t, s, text, len, out);
    tok_scratch_free(s);
    return rc;
}

int tokenizer_encode_pieces(const Tokenizer *t, const char *text, size_t len, StrBuf *out) {
    TokScratch *s = tok_scratch_new();
    int rc = tokenizer_encode_pieces_s(t, s, text, len, out);
    tok_scratch_free(s);
    return rc;
}

int tokenizer_encode_xlmr(const Tokenizer *t, const char *text, size_t len, int max_len, IntVec *out) {
    TokScratch *s = tok_scratch_new();
    int rc = tokenizer_encode_xlmr_s(t, s, text, len, max_len, out);
    tok_scratch_free(s);
    return rc;
}

int tokenizer_encode_batch(const Tokenizer *t, const char *const *texts, const size_t *lens, int n, int mode,
                           int max_len, IntVec *outs) {
    if (n < 0 || (mode != TOK_XLMR && mode != TOK_SPM)) return xerr("tokenizer: bad batch arguments");
    if (mode == TOK_XLMR && (max_len == 1 || max_len < 0))
        return xerr("tokenizer: max_len %d is too small (need 0 or >= 2)", max_len);
    int failed = -1; /* a text too large to encode (xerr is not for threads) */
#ifdef _OPENMP
#pragma omp parallel
#endif
    {
        TokScratch *s = tok_scratch_new();
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 8)
#endif
        for (int i = 0; i < n; i++) {
            outs[i].n = 0;
            int rc = mode == TOK_XLMR ? tokenizer_encode_xlmr_s(t, s, texts[i], lens[i], max_len, &outs[i])
                                      : tokenizer_encode_spm_s(t, s, texts[i], lens[i], &outs[i]);
            if (rc) failed = i; /* any one of them */
        }
        tok_scratch_free(s);
    }
    return failed >= 0 ? xerr("tokenizer: text %d is too large to encode", failed) : 0;
}
