/* pretrain.c: masked-LM (and TLM) pretraining (see pretrain.h; `xlmr
 * pretrain` is cmd_pretrain.c). Reading order: the corpus (text files to
 * blocks), the parallel rows, masking, then the pretrainer: a batch, a step,
 * the held-out evaluation, checkpoints and resume, the loop. */
#include "pretrain.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corpus.h"
#include "dist.h"
#include "encode.h"
#include "json.h"
#include "loss.h"
#include "optim.h"
#include "run.h"
#include "xlmr.h"
#include "xlmr_dist.h"

void pretrain_options_default(PretrainOptions *o) {
    *o = (PretrainOptions){.epochs = 1, .batch = 32, .max_len = 128, .mlm_prob = 0.15, .lr = 5e-4, .warmup = 0.06,
                           .weight_decay = 0.01, .max_grad_norm = 1.0, .lang_alpha = 0.3, .tlm_ratio = -1,
                           .heldout = 0.05, .seed = 1, .save_every = 500, .keep = 2, .chunk = 16};
}

/* ---------------------------------------------------------------------------
 * The corpus. */

/* "LANG=FILE" -> LANG, else the file name up to its first '.'; checked. */
static int lang_of(const char *arg, char name[16], const char **path) {
    const char *eq = strchr(arg, '='), *slash = strrchr(arg, '/');
    const char *s = arg;
    size_t n;
    if (eq && (!slash || eq < slash)) {
        n = (size_t)(eq - arg);
        *path = eq + 1;
    } else {
        s = slash ? slash + 1 : arg;
        const char *dot = strchr(s, '.');
        n = dot ? (size_t)(dot - s) : strlen(s);
        *path = arg;
    }
    if (n == 0 || n > 15) return xerr("%s: cannot tell the language (name the file LANG.txt or pass LANG=FILE)", arg);
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '-' || s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z')))
            return xerr("%s: language '%.*s' must be letters, digits, '-' or '_'", arg, (int)n, s);
    memcpy(name, s, n);
    name[n] = 0;
    return 0;
}

/* The lines of data[0..len) (\n-separated, \r stripped); blank lines (spaces,
 * tabs) end a document and are left out. doc[i]: the document of line i. */
typedef struct {
    const char **text;
    size_t *len;
    int *doc;
    int n, n_docs;
} Lines;

static int split_lines(Lines *L, const char *path, const char *data, size_t len) {
    memset(L, 0, sizeof *L);
    int cap = 0, doc = 0, in_doc = 0;
    long lineno = 0;
    for (const char *p = data; p < data + len;) {
        const char *nl = memchr(p, '\n', (size_t)(data + len - p)), *end = nl ? nl : data + len;
        lineno++;
        if (!utf8_valid(p, (size_t)(end - p))) return xerr("%s:%ld: not valid UTF-8", path, lineno);
        const char *q = p;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == end) {
            if (in_doc) doc++;
            in_doc = 0;
        } else {
            if (L->n == cap) {
                cap = cap ? 2 * cap : 256;
                L->text = xrealloc(L->text, (size_t)cap * sizeof *L->text);
                L->len = xrealloc(L->len, (size_t)cap * sizeof *L->len);
                L->doc = xrealloc(L->doc, (size_t)cap * sizeof *L->doc);
            }
            size_t n = (size_t)(end - p);
            if (n && p[n - 1] == '\r') n--;
            L->text[L->n] = p;
            L->len[L->n] = n;
            L->doc[L->n++] = doc;
            in_doc = 1;
        }
        p = nl ? nl + 1 : data + len;
    }
    L->n_docs = L->n ? L->doc[L->n - 1] + 1 : 0;
    return 0;
}

static void lines_free(Lines *L) {
    free(L->text);
    free(L->len);
    free(L->doc);
}

/* Encodes n texts as XLM-R ids without <s> and </s> into outs (replaced). */
static int encode_plain(const Tokenizer *t, const char *const *texts, const size_t *lens, int n, IntVec *outs) {
    if (tokenizer_encode_batch(t, texts, lens, n, TOK_XLMR, 0, outs)) return -1;
    for (int i = 0; i < n; i++) {
        IntVec *v = &outs[i];
        size_t k = v->n >= 2 ? v->n - 2 : 0;
        memmove(v->data, v->data + 1, k * sizeof(int));
        v->n = k;
    }
    return 0;
}

/* Block k of a language of nb blocks is held out: every P-th (P = 1/heldout),
 * or the last one when there are fewer than P (none of a single block). */
static int held_out(int k, int nb, double heldout) {
    if (!(heldout > 0)) return 0;
    int P = (int)floor(1.0 / heldout + 0.5);
    if (P < 2) P = 2;
    return nb >= P ? k % P == P - 1 : nb >= 2 && k == nb - 1;
}

/* One language from its file: tokenized lines, documents concatenated, cut into blocks. */
static int load_lang(PretrainLang *lg, const Tokenizer *t, const char *path, int max_len, double heldout) {
    char *data;
    size_t len;
    if (read_file(path, &data, &len)) return -1;
    Lines L;
    int rc = split_lines(&L, path, data, len);
    if (rc == 0 && L.n == 0) rc = xerr("%s: no text (one document per paragraph, separated by blank lines)", path);
    IntVec *ids = rc == 0 ? xcalloc((size_t)L.n, sizeof *ids) : NULL;
    if (rc == 0) rc = encode_plain(t, L.text, L.len, L.n, ids);
    if (rc == 0) {
        size_t total = 0;
        for (int i = 0; i < L.n; i++) total += ids[i].n;
        if (total == 0) rc = xerr("%s: the text gives no tokens", path);
        lg->ids = xmalloc((total ? total : 1) * sizeof(int));
        int per = max_len - 2;
        for (int i = 0, d0 = 0; i < L.n; i++) {
            /* a new document starts a new block; a full block starts the next */
            int fresh = i == 0 || L.doc[i] != d0;
            d0 = L.doc[i];
            for (size_t j = 0; j < ids[i].n; j++) {
                if (fresh || lg->len.data[lg->len.n - 1] == per) {
                    iv_push(&lg->start, (int)lg->n_ids);
                    iv_push(&lg->len, 0);
                    fresh = 0;
                }
                lg->ids[lg->n_ids++] = ids[i].data[j];
                lg->len.data[lg->len.n - 1]++;
            }
        }
        lg->n_docs = L.n_docs;
        int nb = (int)lg->len.n;
        for (int k = 0; k < nb; k++) {
            iv_push(held_out(k, nb, heldout) ? &lg->held : &lg->train, k);
            if (!held_out(k, nb, heldout)) lg->train_tokens += lg->len.data[k];
        }
    }
    for (int i = 0; ids && i < L.n; i++) iv_free(&ids[i]);
    free(ids);
    lines_free(&L);
    free(data);
    return rc;
}

void pretrain_corpus_free(PretrainCorpus *c) {
    for (int i = 0; i < c->n_langs; i++) {
        PretrainLang *lg = &c->langs[i];
        free(lg->ids);
        iv_free(&lg->start);
        iv_free(&lg->len);
        iv_free(&lg->train);
        iv_free(&lg->held);
    }
    free(c->langs);
    memset(c, 0, sizeof *c);
}

int pretrain_corpus_load(PretrainCorpus *c, const Tokenizer *t, const char *const *files, int n, int max_len,
                         double heldout) {
    memset(c, 0, sizeof *c);
    if (n < 1) return xerr("pretrain: no text file given (--text)");
    c->langs = xcalloc((size_t)n, sizeof *c->langs);
    uint64_t h = hash_combine(0x7072657472ull, (uint64_t)max_len);
    h = hash_combine(h, (uint64_t)floor(heldout * 1e6 + 0.5));
    for (int i = 0; i < n; i++) {
        PretrainLang *lg = &c->langs[i];
        const char *path;
        c->n_langs = i + 1;
        if (lang_of(files[i], lg->name, &path)) goto fail;
        for (int j = 0; j < i; j++)
            if (!strcmp(c->langs[j].name, lg->name)) {
                xerr("%s: language '%s' given twice (one file per language)", files[i], lg->name);
                goto fail;
            }
        if (load_lang(lg, t, path, max_len, heldout)) goto fail;
        if (lg->train.n == 0) {
            xerr("%s: no training text left for '%s'", path, lg->name);
            goto fail;
        }
        h = hash_bytes(h, lg->name, strlen(lg->name));
        h = hash_bytes(h, lg->ids, lg->n_ids * sizeof(int));
        h = hash_bytes(h, lg->len.data, lg->len.n * sizeof(int));
    }
    c->fingerprint = h;
    return 0;
fail:
    pretrain_corpus_free(c);
    return -1;
}

void pretrain_lang_probs(const PretrainCorpus *c, double alpha, double *p) {
    double N = 0, z = 0;
    for (int i = 0; i < c->n_langs; i++) N += (double)c->langs[i].train_tokens;
    for (int i = 0; i < c->n_langs; i++) z += p[i] = pow((double)c->langs[i].train_tokens / N, alpha);
    for (int i = 0; i < c->n_langs; i++) p[i] /= z;
}

int pretrain_pick_lang(const double *p, int n, double u) {
    double c = 0;
    for (int l = 0; l < n - 1; l++)
        if (u < (c += p[l])) return l;
    return n - 1;
}

int pretrain_mask(int *ids, int n, int *pos, int *labels, double prob, int mask_id, int vocab, uint64_t key) {
    Rng r;
    rng_seed(&r, key);
    int M = 0;
    for (int i = 0; i < n; i++) {
        /* three draws per position whatever happens, so a position's fate
         * depends on the key and its index only */
        double u = rng_uniform(&r), v = rng_uniform(&r);
        int rnd = (int)rng_below(&r, (uint32_t)vocab);
        int id = ids[i];
        if (id <= 3 || id == mask_id || !(u < prob)) continue; /* <s> <pad> </s> <unk> <mask>: never */
        pos[M] = i;
        labels[M++] = id;
        ids[i] = v < 0.8 ? mask_id : v < 0.9 ? rnd : id;
    }
    return M;
}

/* ---------------------------------------------------------------------------
 * Parallel rows for TLM: groups of at least two translations. */

typedef struct {
    IntVec *rows;   /* (n_rows) ids without specials */
    int n_rows;
    int *grow;      /* rows of group g: grow[gofs[g] .. gofs[g+1]) */
    int *gofs;
    int n_groups;
    uint64_t fingerprint;
} Parallel;

typedef struct {
    char *group;
    size_t text_off, text_len;
    int file;
} ParRow;

static int by_group(const void *a, const void *b) {
    const ParRow *x = a, *y = b;
    int c = strcmp(x->group, y->group);
    return c ? c : (x->file != y->file ? x->file - y->file : (x->text_off > y->text_off) - (x->text_off < y->text_off));
}

/* Rows of one TSV file appended to *rows (group copied, text by offset). */
static int parallel_rows(const char *path, const char *data, size_t len, int file, ParRow **rows, int *n, int *cap) {
    long lineno = 0;
    for (const char *p = data; p < data + len;) {
        const char *nl = memchr(p, '\n', (size_t)(data + len - p)), *end = nl ? nl : data + len;
        lineno++;
        size_t L = (size_t)(end - p);
        if (L && p[L - 1] == '\r') L--;
        if (L && p[0] != '#') {
            const char *t1 = memchr(p, '\t', L), *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(p + L - t1 - 1)) : NULL;
            if (!t1 || !t2 || memchr(t2 + 1, '\t', (size_t)(p + L - t2 - 1)))
                return xerr("%s:%ld: expected 3 tab-separated fields (group, lang, text)", path, lineno);
            if (!utf8_valid(p, L)) return xerr("%s:%ld: not valid UTF-8", path, lineno);
            if (t1 == p || t2 == t1 + 1 || t2 + 1 == p + L) return xerr("%s:%ld: an empty field", path, lineno);
            if (*n == *cap) {
                *cap = *cap ? 2 * *cap : 1024;
                *rows = xrealloc(*rows, (size_t)*cap * sizeof **rows);
            }
            (*rows)[(*n)++] = (ParRow){xstrndup(p, (size_t)(t1 - p)), (size_t)(t2 + 1 - data),
                                       (size_t)(p + L - t2 - 1), file};
        }
        p = nl ? nl + 1 : data + len;
    }
    return 0;
}

static void parallel_free(Parallel *P) {
    for (int i = 0; i < P->n_rows; i++) iv_free(&P->rows[i]);
    free(P->rows);
    free(P->grow);
    free(P->gofs);
    memset(P, 0, sizeof *P);
}

static int parallel_load(Parallel *P, const Tokenizer *t, const char *const *files, int n) {
    memset(P, 0, sizeof *P);
    char **data = xcalloc((size_t)(n > 0 ? n : 1), sizeof *data);
    ParRow *rows = NULL;
    int nr = 0, cap = 0, rc = 0;
    for (int f = 0; f < n && rc == 0; f++) {
        size_t len;
        rc = read_file(files[f], &data[f], &len) || parallel_rows(files[f], data[f], len, f, &rows, &nr, &cap);
    }
    if (rc == 0 && nr == 0 && n > 0) rc = xerr("%s: no parallel rows", files[0]);
    if (rc == 0) {
        qsort(rows, (size_t)nr, sizeof *rows, by_group);
        const char **texts = xmalloc((size_t)nr * sizeof *texts);
        size_t *lens = xmalloc((size_t)nr * sizeof *lens);
        for (int i = 0; i < nr; i++) {
            texts[i] = data[rows[i].file] + rows[i].text_off;
            lens[i] = rows[i].text_len;
        }
        P->rows = xcalloc((size_t)nr, sizeof *P->rows);
        P->n_rows = nr;
        rc = encode_plain(t, texts, lens, nr, P->rows);
        free(texts);
        free(lens);
        P->grow = xmalloc((size_t)nr * sizeof(int));
        P->gofs = xmalloc((size_t)(nr + 1) * sizeof(int));
        uint64_t h = 0x70617261ull;
        int k = 0;
        for (int i = 0; i < nr && rc == 0;) {
            int j = i;
            while (j < nr && !strcmp(rows[j].group, rows[i].group)) j++;
            if (j - i >= 2) { /* a group of one row has no translation to pair with */
                P->gofs[P->n_groups++] = k;
                for (int r = i; r < j; r++) P->grow[k++] = r;
            }
            i = j;
        }
        P->gofs[P->n_groups] = k;
        for (int i = 0; i < nr; i++) h = hash_bytes(h, P->rows[i].data, P->rows[i].n * sizeof(int));
        P->fingerprint = hash_combine(h, (uint64_t)P->n_groups);
        if (rc == 0 && P->n_groups == 0) rc = xerr("%s: no group with two or more translations", files[0]);
    }
    for (int i = 0; i < nr; i++) free(rows[i].group);
    free(rows);
    for (int f = 0; f < n; f++) free(data[f]);
    free(data);
    if (rc) parallel_free(P);
    return rc ? -1 : 0;
}

/* ---------------------------------------------------------------------------
 * The pretrainer. */

/* What a resumed run must share with its checkpoint (as train.c's ResumeKey). */
typedef struct {
    int32_t batch, total, warmup, max_len;
    double mlm_prob, lr, weight_decay, max_grad_norm, lang_alpha, tlm_ratio;
    uint64_t seed, text, parallel, n_params;
} PretrainKey;

#define PSTATE_MAGIC 0x54525058u /* "XPRT" */
typedef struct {
    uint32_t magic, version;
    int32_t step, unused;
    double loss_ema, train_seconds;
    int64_t tokens;
    PretrainKey key;
} PretrainState;

typedef struct {
    const PretrainOptions *o;
    PretrainCorpus corpus;
    Parallel par;
    double *probs;              /* (n_langs) p(l) */
    Xlmr m;
    Tokenizer *tok;
    char *spm;
    AdamW opt;
    AdamWConfig acfg;
    XlmrActs *acts;
    XlmrMlmActs *head;
    float *logits;
    size_t logits_cap;          /* positions the logits buffer holds */
    int *seq, *lens, *pos, *labels, *n_masked; /* (B, max_len) sequences, masks; (B) lengths, counts */
    int *pad, *cpos, *clab;     /* (chunk max_len) one chunk, padded */
    int total, warmup, step, n_tlm, mask_id;
    double loss_ema, train_seconds;
    long long tokens;
    FILE *log;
    PretrainKey key;
} Pretrainer;

/* Sequence b of step s into p->seq row b (unmasked); returns its length. */
static int draw_sequence(Pretrainer *p, Rng *r, int b) {
    int T = p->o->max_len, *out = p->seq + (size_t)b * T, n = 0;
    out[n++] = 0;
    if (b < p->n_tlm) { /* TLM: <s> A </s></s> B </s>, the longer side cut first */
        const Parallel *P = &p->par;
        int g = (int)rng_below(r, (uint32_t)P->n_groups), k = P->gofs[g + 1] - P->gofs[g];
        int i = (int)rng_below(r, (uint32_t)k), j = (int)rng_below(r, (uint32_t)(k - 1));
        j += j >= i;
        const IntVec *A = &P->rows[P->grow[P->gofs[g] + i]], *B = &P->rows[P->grow[P->gofs[g] + j]];
        int la = (int)A->n, lb = (int)B->n, room = T - 4;
        while (la + lb > room) la >= lb ? la-- : lb--;
        memcpy(out + n, A->data, (size_t)la * sizeof(int));
        n += la;
        out[n++] = 2;
        out[n++] = 2;
        memcpy(out + n, B->data, (size_t)lb * sizeof(int));
        n += lb;
    } else { /* a block of a language drawn with p(l) */
        int l = pretrain_pick_lang(p->probs, p->corpus.n_langs, rng_uniform(r));
        const PretrainLang *lg = &p->corpus.langs[l];
        int k = lg->train.data[rng_below(r, (uint32_t)lg->train.n)];
        memcpy(out + n, lg->ids + lg->start.data[k], (size_t)lg->len.data[k] * sizeof(int));
        n += lg->len.data[k];
    }
    out[n++] = 2;
    return n;
}

/* The batch of step s, masked: a pure function of (seed, s). */
static long long draw_batch(Pretrainer *p, int s, int *M) {
    const PretrainOptions *o = p->o;
    Rng r;
    rng_seed(&r, hash_combine(hash_combine(o->seed, (uint64_t)s), 0xba7c4ull));
    long long toks = 0;
    *M = 0;
    for (int b = 0; b < o->batch; b++) {
        size_t off = (size_t)b * o->max_len;
        p->lens[b] = draw_sequence(p, &r, b);
        uint64_t key = hash_combine(hash_combine(hash_combine(o->seed, (uint64_t)s), (uint64_t)b), 0x3a5cull);
        p->n_masked[b] = pretrain_mask(p->seq + off, p->lens[b], p->pos + off, p->labels + off, o->mlm_prob,
                                       p->mask_id, p->m.cfg.vocab, key);
        *M += p->n_masked[b];
        toks += p->lens[b];
    }
    return toks;
}

/* The summed MLM loss of sequences [b0, b1) of the buffers; with train, the
 * gradient of dscale times it accumulated into m->grads. */
static double run_chunk(Pretrainer *p, int b0, int b1, float dscale, const XlmrDropout *dr) {
    int L = p->o->max_len, T = 1, Mc = 0, V = p->m.cfg.vocab;
    for (int b = b0; b < b1; b++) T = p->lens[b] > T ? p->lens[b] : T;
    for (int b = b0; b < b1; b++) {
        int *row = p->pad + (size_t)(b - b0) * T;
        for (int t = 0; t < T; t++) row[t] = t < p->lens[b] ? p->seq[(size_t)b * L + t] : p->m.cfg.pad_id;
        for (int i = 0; i < p->n_masked[b]; i++) {
            p->cpos[Mc] = (b - b0) * T + p->pos[(size_t)b * L + i];
            p->clab[Mc++] = p->labels[(size_t)b * L + i];
        }
    }
    if (Mc == 0) return 0;
    if ((size_t)Mc > p->logits_cap) {
        p->logits_cap = (size_t)Mc;
        free(p->logits);
        p->logits = xmalloc(p->logits_cap * (size_t)V * sizeof(float));
    }
    xlmr_forward(&p->m, p->acts, NULL, p->pad, b1 - b0, T, POOL_MEAN, dr);
    if (xlmr_mlm_forward(&p->m, p->acts, p->head, p->logits, p->cpos, Mc)) die_xerr(); /* built for it */
    int train = dr && dr->train;
    double loss = mlm_xent_forward_backward(train ? p->logits : NULL, p->logits, p->clab, Mc, V, dscale);
    if (train) xlmr_mlm_backward(&p->m, p->acts, p->head, p->logits);
    return loss;
}

typedef struct {
    int step, masked;
    long long tokens;
    double loss, lr, grad_norm, seconds, end;
} PretrainStep;

/* One optimizer step (as train.c's train_step): the batch in chunks, clip, AdamW. */
static int pretrain_step(Pretrainer *p, PretrainStep *st) {
    const PretrainOptions *o = p->o;
    int s = p->step + 1, M;
    double t0 = now_seconds();
    long long toks = draw_batch(p, s, &M);
    xlmr_zero_grad(&p->m);
    /* data parallel (dist.h): every rank draws the whole batch, so M is the
     * global batch's count everywhere; chunk k is rank k mod P's, its dropout
     * keyed by its place in the batch, so P ranks compute one process's sums */
    double sum = 0;
    for (int b0 = 0, k = 0; b0 < o->batch; b0 += o->chunk, k++) {
        if (k % dist_size() != dist_rank()) continue;
        int b1 = b0 + o->chunk < o->batch ? b0 + o->chunk : o->batch;
        XlmrDropout dr = {.train = 1, .seed = hash_combine(o->seed, (uint64_t)s), .seq_base = b0};
        sum += run_chunk(p, b0, b1, M ? 1.0f / M : 0.0f, &dr);
    }
    dist_allreduce_sum_d(&sum, 1);
    xlmr_grads_allreduce(&p->m, 1); /* each rank's share -> the whole batch's */
    double loss = M ? sum / M : 0, norm = xlmr_grad_norm(&p->m, 0);
    if (!isfinite(loss) || !isfinite(norm)) return run_nonfinite_error(o->out_dir, s, loss, norm);
    double lr = lr_schedule(s, p->total, p->warmup, o->lr);
    xlmr_adamw_step(&p->m, &p->opt, &p->acfg, (float)lr, clip_scale(norm, o->max_grad_norm), 0);
    p->step = s;
    p->loss_ema = 0.95 * p->loss_ema + 0.05 * loss;
    p->tokens += toks;
    double end = now_seconds();
    *st = (PretrainStep){s, M, toks, loss, lr, norm, end - t0, end};
    return 0;
}

static double ema_value(const Pretrainer *p) {
    double c = 1.0 - pow(0.95, p->step);
    return c > 0 ? p->loss_ema / c : NAN;
}

/* loss (n_langs): the MLM loss on each language's held-out blocks (up to 64),
 * eval mode, masks fixed once (seed 0x5eed), so evaluations compare. Data
 * parallel: every rank masks every chunk (the counts), runs chunk c if it is
 * rank c mod P's, and the sums are added up over the ranks. */
static void heldout_losses(Pretrainer *p, double *loss) {
    const PretrainOptions *o = p->o;
    int B = o->batch < o->chunk ? o->batch : o->chunk, L = o->max_len, c = 0;
    int *Mt = xcalloc((size_t)p->corpus.n_langs, sizeof(int));
    for (int l = 0; l < p->corpus.n_langs; l++) {
        const PretrainLang *lg = &p->corpus.langs[l];
        int nh = (int)lg->held.n < 64 ? (int)lg->held.n : 64;
        loss[l] = 0;
        for (int h0 = 0; h0 < nh; h0 += B, c++) {
            int nb = h0 + B < nh ? B : nh - h0;
            for (int b = 0; b < nb; b++) {
                int k = lg->held.data[h0 + b], *row = p->seq + (size_t)b * L;
                row[0] = 0;
                memcpy(row + 1, lg->ids + lg->start.data[k], (size_t)lg->len.data[k] * sizeof(int));
                row[lg->len.data[k] + 1] = 2;
                p->lens[b] = lg->len.data[k] + 2;
                uint64_t key = hash_combine(hash_combine(0x5eedull, (uint64_t)l), (uint64_t)k);
                p->n_masked[b] = pretrain_mask(row, p->lens[b], p->pos + (size_t)b * L, p->labels + (size_t)b * L,
                                               o->mlm_prob, p->mask_id, p->m.cfg.vocab, key);
                Mt[l] += p->n_masked[b];
            }
            if (c % dist_size() == dist_rank()) loss[l] += run_chunk(p, 0, nb, 0, NULL);
        }
    }
    dist_allreduce_sum_d(loss, (size_t)p->corpus.n_langs);
    for (int l = 0; l < p->corpus.n_langs; l++) loss[l] = Mt[l] ? loss[l] / Mt[l] : NAN;
    free(Mt);
}

static void log_json(Pretrainer *p, const char *line) {
    if (!p->log) return;
    fputs(line, p->log);
    fflush(p->log);
}

/* A held-out evaluation: logged and printed; loss (n_langs) kept by the caller. */
static void evaluate(Pretrainer *p, double *loss) {
    heldout_losses(p, loss);
    StrBuf sb = {0};
    sb_printf(&sb, "{\"step\": %d, \"heldout_loss\": {", p->step);
    for (int l = 0; l < p->corpus.n_langs; l++) {
        sb_puts(&sb, l ? ", " : "");
        sb_json_key(&sb, p->corpus.langs[l].name);
        sb_json_number(&sb, loss[l]);
    }
    sb_puts(&sb, "}}\n");
    log_json(p, sb.data);
    if (!p->o->quiet) {
        fprintf(stderr, "%spretrain: held-out MLM loss at step %d:", isatty(2) ? "\n" : "", p->step);
        for (int l = 0; l < p->corpus.n_langs; l++) fprintf(stderr, " %s %.4f", p->corpus.langs[l].name, loss[l]);
        fputc('\n', stderr);
    }
    sb_free(&sb);
}

/* ---- checkpoints and resume ---- */

static void options_json(const Pretrainer *p, StrBuf *sb) {
    const PretrainOptions *o = p->o;
    sb_puts(sb, "{\"model\": ");
    sb_json_string(sb, o->model_dir);
    sb_puts(sb, ", \"text\": [");
    for (int i = 0; i < o->n_text_files; i++) {
        sb_puts(sb, i ? ", " : "");
        sb_json_string(sb, o->text_files[i]);
    }
    sb_puts(sb, "], \"parallel\": [");
    for (int i = 0; i < o->n_parallel_files; i++) {
        sb_puts(sb, i ? ", " : "");
        sb_json_string(sb, o->parallel_files[i]);
    }
    sb_printf(sb, "], \"steps\": %d, \"batch\": %d, \"max_len\": %d, \"mlm_prob\": %.17g, \"lr\": %.17g, "
                  "\"warmup\": %.17g, \"weight_decay\": %.17g, \"lang_alpha\": %.17g, \"tlm_ratio\": %.17g, "
                  "\"heldout\": %.17g, \"seed\": %llu, \"chunk\": %d}\n",
              p->total, o->batch, o->max_len, o->mlm_prob, o->lr, o->warmup, o->weight_decay, o->lang_alpha,
              p->n_tlm / (double)o->batch, o->heldout, o->seed, o->chunk);
}

/* The sentence-transformers files of a pretrained folder (stfolder.h): the
 * fine-tuning defaults (mean pooling, the method's prompts), so the folder is a
 * ready start for `xlmr train` and loads in sentence-transformers as it is. */
static StFolder pretrain_folder_settings(int max_len) {
    return (StFolder){.pooling = POOL_MEAN, .max_seq_length = max_len,
                      .query_prompt = XLMR_QUERY_PREFIX, .passage_prompt = XLMR_PASSAGE_PREFIX};
}

static int checkpoint_write(void *ctx, const char *dir) {
    Pretrainer *p = ctx;
    StFolder f = pretrain_folder_settings(p->o->max_len);
    if (mkdir_p(dir) || stfolder_save_model(&p->m, dir, p->spm, &f)) return -1;
    char *path = path_join(dir, "optimizer.bin");
    int rc = xlmr_adamw_save(&p->opt, &p->m, path);
    free(path);
    PretrainState st;
    memset(&st, 0, sizeof st); /* padding too: the file is a function of the run */
    st.magic = PSTATE_MAGIC;
    st.version = 1;
    st.step = p->step;
    st.loss_ema = p->loss_ema;
    st.train_seconds = p->train_seconds;
    st.tokens = p->tokens;
    st.key = p->key;
    path = path_join(dir, "trainer_state.bin");
    if (rc == 0) rc = write_file_atomic(path, &st, sizeof st);
    free(path);
    StrBuf sb = {0};
    options_json(p, &sb);
    path = path_join(dir, "pretrain_options.json");
    if (rc == 0) rc = write_file_atomic(path, sb.data, sb.len);
    free(path);
    sb_free(&sb);
    return rc;
}

/* Data parallel: the ranks' weights checked equal, then rank 0 alone writes. */
static int checkpoint_save(Pretrainer *p) {
    char *dst = NULL;
    if (xlmr_ranks_agree(&p->m, p->step)) return -1;
    if (dist_rank() != 0) return 0;
    if (run_checkpoint_save(p->o->out_dir, p->step, p->o->keep, checkpoint_write, p, &dst)) return -1;
    free(dst);
    return 0;
}

static int read_state(Pretrainer *p, const char *dir) {
    char *path = path_join(dir, "trainer_state.bin");
    char *data = NULL;
    size_t len = 0;
    PretrainState st;
    int rc = read_file(path, &data, &len);
    if (rc == 0 && len != sizeof st) rc = xerr("%s: not a pretraining state (size %zu)", path, len);
    if (rc == 0) memcpy(&st, data, sizeof st);
    if (rc == 0 && (st.magic != PSTATE_MAGIC || st.version != 1)) rc = xerr("%s: not a pretraining state", path);
    if (rc == 0 && (st.step < 0 || st.step > p->total)) rc = xerr("%s: step %d outside [0, %d]", path, st.step, p->total);
    const PretrainKey *a = &st.key, *b = &p->key;
#define KEY(f, opt) \
    if (rc == 0 && a->f != b->f) rc = xerr("%s: the checkpoint was made with another " opt " (resume with the options of the run)", dir);
    KEY(batch, "--batch") KEY(total, "--steps/--epochs") KEY(warmup, "--warmup") KEY(max_len, "--max-len")
    KEY(mlm_prob, "--mlm-prob") KEY(lr, "--lr") KEY(weight_decay, "--weight-decay") KEY(max_grad_norm, "max grad norm")
    KEY(lang_alpha, "--lang-alpha") KEY(tlm_ratio, "--tlm-ratio") KEY(seed, "--seed") KEY(text, "text (--text)")
    KEY(parallel, "parallel text (--parallel)") KEY(n_params, "model size")
#undef KEY
    if (rc == 0) {
        p->step = st.step;
        p->loss_ema = st.loss_ema;
        p->train_seconds = st.train_seconds;
        p->tokens = st.tokens;
    }
    free(data);
    free(path);
    return rc;
}

static PretrainKey make_key(const Pretrainer *p) {
    const PretrainOptions *o = p->o;
    return (PretrainKey){.batch = o->batch, .total = p->total, .warmup = p->warmup, .max_len = o->max_len,
                         .mlm_prob = o->mlm_prob, .lr = o->lr, .weight_decay = o->weight_decay,
                         .max_grad_norm = o->max_grad_norm, .lang_alpha = o->lang_alpha,
                         .tlm_ratio = p->n_tlm / (double)o->batch, .seed = o->seed, .text = p->corpus.fingerprint,
                         .parallel = p->par.fingerprint, .n_params = p->m.n_params};
}

/* The model (with a head: one is added to a folder without), from the last
 * checkpoint with --resume or from the model folder; optimizer and state. */
static int load_start(Pretrainer *p, const char *src, int from_checkpoint) {
    const PretrainOptions *o = p->o;
    Xlmr m;
    if (xlmr_load(&m, src)) return -1;
    int rc = xlmr_with_mlm_head(&p->m, &m, hash_combine(o->seed, 0x4ead));
    xlmr_free(&m);
    if (rc) return -1;
    p->m.use_bf16 = o->use_bf16;
    if (o->max_len > xlmr_max_len(&p->m.cfg))
        return xerr("%s: --max-len %d exceeds the model's limit of %d tokens", src, o->max_len, xlmr_max_len(&p->m.cfg));
    xlmr_grads_alloc(&p->m);
    adamw_config_default(&p->acfg);
    p->acfg.weight_decay = (float)o->weight_decay;
    if (!from_checkpoint) {
        adamw_build(&p->opt, p->m.n_params);
        return 0;
    }
    char *path = path_join(src, "optimizer.bin");
    rc = xlmr_adamw_load(&p->opt, &p->m, path);
    free(path);
    return rc;
}

static int check_options(const PretrainOptions *o) {
    if (!o->model_dir) return xerr("pretrain: no model folder given (--model)");
    if (!o->out_dir || !*o->out_dir) return xerr("pretrain: no output folder given (--out)");
    if (o->n_text_files < 1) return xerr("pretrain: no text file given (--text)");
    if (!(o->mlm_prob > 0 && o->mlm_prob < 1)) return xerr("pretrain: --mlm-prob must be in (0,1), got %g", o->mlm_prob);
    if (!(o->lang_alpha >= 0 && o->lang_alpha <= 1)) return xerr("pretrain: --lang-alpha must be in [0,1], got %g", o->lang_alpha);
    if (o->tlm_ratio > 1 || (o->tlm_ratio > 0 && o->n_parallel_files == 0))
        return xerr("pretrain: --tlm-ratio must be in [0,1] and needs --parallel");
    if (o->batch < 1 || o->chunk < 1) return xerr("pretrain: --batch and --chunk must be >= 1");
    if (o->max_len < 6) return xerr("pretrain: --max-len must be >= 6, got %d", o->max_len);
    if (o->steps < 0 || (o->steps == 0 && !(o->epochs > 0 && o->epochs < 1e6)))
        return xerr("pretrain: --steps must be >= 0 and --epochs > 0");
    if (!(o->lr > 0 && o->lr < 1)) return xerr("pretrain: --lr must be in (0,1), got %g", o->lr);
    if (!(o->warmup >= 0)) return xerr("pretrain: --warmup must be >= 0");
    if (!(o->weight_decay >= 0 && o->weight_decay < 1)) return xerr("pretrain: --weight-decay must be in [0,1)");
    if (!(o->heldout >= 0 && o->heldout < 0.5)) return xerr("pretrain: --heldout must be in [0, 0.5)");
    if (o->save_every < 0 || o->eval_every < 0 || o->keep < 1 || o->stop_after < 0)
        return xerr("pretrain: --save-every and --eval-every must be >= 0, --keep >= 1");
    return 0;
}

static void pretrainer_free(Pretrainer *p) {
    if (p->log) fclose(p->log);
    xlmr_acts_free(p->acts);
    xlmr_mlm_acts_free(p->head);
    adamw_free(&p->opt);
    if (p->tok) tokenizer_free(p->tok);
    xlmr_free(&p->m);
    pretrain_corpus_free(&p->corpus);
    parallel_free(&p->par);
    int *is[] = {p->seq, p->lens, p->pos, p->labels, p->n_masked, p->pad, p->cpos, p->clab};
    for (size_t i = 0; i < sizeof is / sizeof *is; i++) free(is[i]);
    free(p->logits);
    free(p->probs);
    free(p->spm);
}

/* Data, model, optimizer, buffers, log: everything before the first step. */
static int pretrainer_open(Pretrainer *p, const PretrainOptions *o) {
    memset(p, 0, sizeof *p);
    p->o = o;
    const char *const fin[1] = {"final"}; /* a kill while final/ was swapped in: put back */
    int last;
    if (run_find_last(o->out_dir, fin, 1, o->resume, &last)) return -1;
    char *src = last >= 0 ? run_ckpt_path(o->out_dir, last, "") : xstrdup(o->model_dir);
    int rc = tokenizer_load(&p->tok, src);
    if (rc == 0) rc = load_start(p, src, last >= 0);
    if (rc == 0) rc = xlmr_ranks_loaded_same(&p->m, src);
    if (rc == 0 && !(p->spm = run_own_tokenizer(src, o->out_dir))) rc = -1; /* run.h: the run's own copy */
    if (rc == 0 && tokenizer_xlmr_vocab(p->tok) != p->m.cfg.vocab)
        rc = xerr("%s: the tokenizer's vocabulary (%d) differs from vocab_size (%d)", src, tokenizer_xlmr_vocab(p->tok),
                  p->m.cfg.vocab);
    p->mask_id = rc == 0 ? tokenizer_xlmr_vocab(p->tok) - 1 : 0;
    if (rc == 0) rc = pretrain_corpus_load(&p->corpus, p->tok, o->text_files, o->n_text_files, o->max_len, o->heldout);
    if (rc == 0 && o->n_parallel_files) rc = parallel_load(&p->par, p->tok, o->parallel_files, o->n_parallel_files);
    if (rc == 0) {
        double tlm = o->tlm_ratio >= 0 ? o->tlm_ratio : o->n_parallel_files ? 0.5 : 0;
        p->n_tlm = (int)floor(tlm * o->batch + 0.5);
        long long blocks = 0;
        for (int l = 0; l < p->corpus.n_langs; l++) blocks += (long long)p->corpus.langs[l].train.n;
        p->total = o->steps ? o->steps : (int)ceil(o->epochs * (double)blocks / o->batch);
        if (p->total < 1) p->total = 1;
        p->warmup = warmup_steps(o->warmup, p->total);
        p->probs = xmalloc((size_t)p->corpus.n_langs * sizeof(double));
        pretrain_lang_probs(&p->corpus, o->lang_alpha, p->probs);
        p->key = make_key(p);
        if (last >= 0) rc = read_state(p, src);
    }
    free(src);
    if (rc) return -1;
    size_t BL = (size_t)o->batch * o->max_len, CL = (size_t)o->chunk * o->max_len;
    int **bl[] = {&p->seq, &p->pos, &p->labels}, **cl[] = {&p->pad, &p->cpos, &p->clab};
    for (int i = 0; i < 3; i++) *bl[i] = xmalloc(BL * sizeof(int));
    for (int i = 0; i < 3; i++) *cl[i] = xmalloc(CL * sizeof(int));
    p->lens = xmalloc((size_t)o->batch * sizeof(int));
    p->n_masked = xmalloc((size_t)o->batch * sizeof(int));
    p->acts = xlmr_acts_build(&p->m, o->chunk, o->max_len);
    p->head = xlmr_mlm_acts_build(&p->m, (int)CL);
    if (o->log_file) {
        if (last >= 0 && run_log_truncate(o->log_file, p->step)) return -1;
        p->log = fopen(o->log_file, last >= 0 ? "a" : "w");
        if (!p->log) return xerr("%s: cannot write: %s", o->log_file, strerror(errno));
    }
    return 0;
}

static void log_step(Pretrainer *p, const PretrainStep *st) {
    if (!p->log) return;
    StrBuf sb = {0};
    sb_printf(&sb, "{\"step\": %d, \"loss\": ", st->step);
    sb_json_number(&sb, st->loss);
    sb_puts(&sb, ", \"lr\": ");
    sb_json_number(&sb, st->lr);
    sb_puts(&sb, ", \"grad_norm\": ");
    sb_json_number(&sb, st->grad_norm);
    sb_printf(&sb, ", \"masked\": %d, \"tokens_per_s\": %.1f, \"seconds\": %.3f}\n", st->masked,
              st->tokens / (st->seconds > 0 ? st->seconds : 1e-9), st->seconds);
    log_json(p, sb.data);
    sb_free(&sb);
}

static int pretrain_loop(Pretrainer *p, double *heldout) {
    const PretrainOptions *o = p->o;
    RunProgress pg = {.t0 = now_seconds(), .train_before = p->train_seconds, .first_step = p->step, .tty = isatty(2)};
    for (int done = 0; p->step < p->total; done++) {
        if (o->stop_after && done >= o->stop_after) return checkpoint_save(p);
        PretrainStep st = {0};
        if (pretrain_step(p, &st)) return -1;
        p->train_seconds = pg.train_before + (st.end - pg.t0);
        log_step(p, &st);
        if (!o->quiet)
            run_progress_line(&pg, "pretrain", st.step, p->total, ema_value(p), st.lr,
                              st.tokens / (st.seconds > 0 ? st.seconds : 1e-9), st.end);
        int at_end = st.step == p->total;
        if (o->eval_every > 0 && st.step % o->eval_every == 0 && !at_end) evaluate(p, heldout);
        if (o->save_every > 0 && st.step % o->save_every == 0 && !at_end && checkpoint_save(p)) return -1;
    }
    evaluate(p, heldout);
    StFolder f = pretrain_folder_settings(o->max_len);
    if (checkpoint_save(p)) return -1;
    return dist_rank() == 0 && run_save_model(&p->m, o->out_dir, "final", p->spm, &f) ? -1 : 0; /* rank 0 writes */
}

int pretrain_run(const PretrainOptions *o, PretrainReport *r) {
    memset(r, 0, sizeof *r);
    r->final_loss = NAN;
    if (check_options(o)) return -1;
    PretrainOptions mine = *o; /* rank 0 alone prints and logs (run.h: run_lock) */
    DirLock lock = {-1};
    if (run_lock(mine.out_dir, &lock, &mine.quiet, &mine.log_file)) return -1;
    o = &mine;
    double t0 = now_seconds();
    Pretrainer p;
    int rc = pretrainer_open(&p, o);
    double *held = rc == 0 ? xmalloc((size_t)p.corpus.n_langs * sizeof(double)) : NULL;
    if (rc == 0) rc = pretrain_loop(&p, held);
    if (rc == 0) {
        r->steps = p.step;
        r->train_seconds = now_seconds() - t0;
        r->final_loss = ema_value(&p);
        r->n_langs = p.corpus.n_langs;
        r->langs = xcalloc((size_t)r->n_langs, sizeof *r->langs);
        r->tokens = xcalloc((size_t)r->n_langs, sizeof *r->tokens);
        r->heldout_loss = held;
        held = NULL;
        for (int l = 0; l < r->n_langs; l++) {
            r->langs[l] = xstrdup(p.corpus.langs[l].name);
            r->tokens[l] = p.corpus.langs[l].train_tokens;
            if (p.step < p.total) r->heldout_loss[l] = NAN; /* stopped early: no final evaluation */
        }
    }
    free(held);
    pretrainer_free(&p);
    dir_unlock(&lock);
    return rc ? -1 : 0;
}

void pretrain_report_free(PretrainReport *r) {
    for (int i = 0; i < r->n_langs; i++) free(r->langs[i]);
    free(r->langs);
    free(r->heldout_loss);
    free(r->tokens);
    memset(r, 0, sizeof *r);
}

/* The corpus of corpus.h under OUT/corpus (built once: its parallel.tsv is
 * written last, so its presence says the folder is whole). */
static int ensure_corpus(const char *out, const char *data_dir, char **dir) {
    *dir = path_join(out, "corpus");
    char *par = path_join(*dir, "parallel.tsv");
    int rc = 0;
    if (!path_exists(par)) {
        CorpusStats *st = NULL;
        int n;
        long long np;
        rc = corpus_build(data_dir, *dir, NULL, &st, &n, &np);
        free(st);
    }
    free(par);
    return rc;
}

/* One folder per size, budget and precision: a cached model is reused only for
 * the budget it was pretrained with, in fp32 or BF16 products as it was made. */
char *pretrain_cache_dir(const char *out, const char *name, int steps, int bf16) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s/pretrained/%s-%dsteps%s", out, name, steps, bf16 ? "-bf16" : "");
    return sb.data;
}

int pretrain_start_model(const char *out, const char *data_dir, const char *spm, const XlmrConfig *cfg,
                         const char *name, int steps, int bf16, char **final_dir) {
    StrBuf base = {0};
    char *cache = pretrain_cache_dir(out, name, steps, bf16);
    sb_puts(&base, cache);
    free(cache);
    char *fin = path_join(base.data, "final"), *fin_cfg = path_join(fin, "config.json");
    char *start = path_join(base.data, "start"), *log = path_join(base.data, "log.jsonl"), *corpus = NULL;
    int rc = 0, n_text = 0;
    char **texts = NULL;
    if (!path_exists(fin_cfg)) {
        rc = ensure_corpus(out, data_dir, &corpus);
        if (rc == 0) texts = list_files(corpus, ".txt", &n_text);
        if (rc == 0 && !path_exists(start)) { /* the random init, once per size */
            Tokenizer *t;
            Xlmr m;
            XlmrConfig c = *cfg;
            rc = tokenizer_load(&t, spm);
            if (rc == 0) {
                c.vocab = tokenizer_xlmr_vocab(t);
                c.mlm_head = 1;
                c.tie_word_embeddings = 1;
                tokenizer_free(t);
                rc = xlmr_build(&m, &c);
            }
            if (rc == 0) {
                xlmr_init_random(&m, hash_combine(0x1417ULL, 0x9e7ULL));
                char *spm_file = tokenizer_model_path(spm);
                StFolder f = pretrain_folder_settings(0) /* 0: the model's limit */;
                rc = run_save_model(&m, base.data, "start", spm_file, &f);
                free(spm_file);
                xlmr_free(&m);
            }
        }
        char *par = corpus ? path_join(corpus, "parallel.tsv") : NULL;
        const char *pars[1] = {par};
        PretrainOptions o;
        pretrain_options_default(&o);
        o.model_dir = start;
        o.text_files = (const char *const *)texts;
        o.n_text_files = n_text;
        o.parallel_files = pars;
        o.n_parallel_files = 1;
        o.out_dir = base.data;
        o.steps = steps;
        o.save_every = steps >= 40 ? steps / 4 : 0;
        o.resume = 1;
        o.use_bf16 = bf16;
        o.log_file = log;
        PretrainReport r;
        if (rc == 0 && n_text == 0) rc = xerr("%s: no text files", corpus);
        /* one process pretrains: the experiment calls this on rank 0 while the
         * others wait (or within a rank's own runs), never as a collective */
        int was = dist_solo(1);
        if (rc == 0 && (rc = pretrain_run(&o, &r)) == 0) pretrain_report_free(&r);
        dist_solo(was);
        free(par);
    }
    if (texts) free_strv(texts);
    free(corpus);
    free(start);
    free(log);
    free(fin_cfg);
    sb_free(&base);
    if (rc) {
        free(fin);
        return -1;
    }
    *final_dir = fin;
    return 0;
}
