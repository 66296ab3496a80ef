/* sampler.c: the batch samplers of the paper (see sampler.h): the method
 * first, then its resumable state, then the loading of the training TSV.
 *
 * Every pool is a shuffled list of group indices walked front to back, so a
 * pass sees each group once; a batch takes the next groups of the pool it
 * draws from. Which pool, and which rows of a group serve as query and
 * passage, is the sampling strategy: mono takes one language for the whole
 * batch, cross two different languages per pair, hybrid one or the other per
 * batch, mixed one language per pair. All randomness comes from one Rng, so a
 * seed fixes the whole sequence of batches and a saved state continues it. */
#include "sampler.h"

#include <stdlib.h>
#include <string.h>

#include "strmap.h"

/* ------------------------------------------------------------------------- */
/* Sampling: the method                                                      */

static const char *const sampling_names[SAMPLING_COUNT] = {
    [SAMPLING_MONO] = "mono", [SAMPLING_CROSS] = "cross", [SAMPLING_HYBRID] = "hybrid", [SAMPLING_MIXED] = "mixed"};
static const char *const kind_names[BATCH_KIND_COUNT] = {
    [BATCH_MONO] = "mono", [BATCH_CROSS] = "cross", [BATCH_MIXED] = "mixed"};

int sampling_parse(const char *s) {
    for (int i = 0; i < SAMPLING_COUNT; i++)
        if (s && !strcmp(s, sampling_names[i])) return i;
    return -1;
}
const char *sampling_name(int sampling) {
    return sampling >= 0 && sampling < SAMPLING_COUNT ? sampling_names[sampling] : "?";
}
const char *batch_kind_name(int kind) { return kind >= 0 && kind < BATCH_KIND_COUNT ? kind_names[kind] : "?"; }

/* Fisher-Yates with the sampler's own RNG: the order is a function of the seed only. */
static void pool_shuffle(SamplerPool *p, Rng *r) {
    for (int i = p->n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1);
        int t = p->order[i];
        p->order[i] = p->order[j];
        p->order[j] = t;
    }
}

/* The next group of the pool not yet in batch number `stamp`. */
static int pool_next(SamplerPool *p, Rng *r, int *stamp, int batchno) {
    for (;;) {
        if (p->pos == p->n) {
            pool_shuffle(p, r);
            p->pos = 0;
            p->passes++;
        }
        int g = p->order[p->pos];
        if (stamp[g] == batchno) {
            /* Only right after a reshuffle: the group was drawn for this batch at the
             * end of the previous pass. Move it later in this pass (it is still seen
             * once in the pass); fewer than B groups are in the batch and the pool
             * holds >= B, so a group not in the batch lies ahead. */
            int j = p->pos + 1 + (int)rng_below(r, (uint32_t)(p->n - p->pos - 1));
            p->order[p->pos] = p->order[j];
            p->order[j] = g;
            continue;
        }
        p->pos++;
        stamp[g] = batchno;
        return g;
    }
}

static void pool_init(SamplerPool *p, int cap) {
    p->order = xmalloc((size_t)(cap ? cap : 1) * sizeof(int));
    p->n = p->pos = p->passes = 0;
}

/* A sampler over the groups groups[0..n) of d (all of them when groups is NULL). */
static int build_groups(Sampler *s, const TrainData *d, const int *groups, int n, int sampling, double alpha, int batch,
                        uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (sampling < 0 || sampling >= SAMPLING_COUNT) return xerr("unknown sampling %d", sampling);
    if (batch < 1) return xerr("batch size must be at least 1, got %d", batch);
    if (!(alpha >= 0 && alpha <= 1)) return xerr("alpha must be in [0,1], got %g", alpha);
    s->d = d;
    s->sampling = sampling;
    s->alpha = alpha;
    s->batch = batch;
    rng_seed(&s->rng, seed);
    s->mono = xmalloc((size_t)d->n_langs * sizeof(SamplerPool));
    for (int l = 0; l < d->n_langs; l++) pool_init(&s->mono[l], d->n_groups);
    pool_init(&s->cross, d->n_groups);
    pool_init(&s->mixed, d->n_groups);
    for (int j = 0; j < (groups ? n : d->n_groups); j++) {
        int g = groups ? groups[j] : j;
        int k = d->group_start[g + 1] - d->group_start[g];
        for (int i = d->group_start[g]; i < d->group_start[g + 1]; i++) {
            SamplerPool *p = &s->mono[d->rows[i].lang];
            p->order[p->n++] = g;
        }
        if (k >= 2) s->cross.order[s->cross.n++] = g;
        s->mixed.order[s->mixed.n++] = g;
    }
    s->stamp = xmalloc((size_t)(d->n_groups ? d->n_groups : 1) * sizeof(int));
    for (int g = 0; g < d->n_groups; g++) s->stamp[g] = -1;
    /* the languages of these groups: a mono batch draws one of them */
    s->langs = xmalloc((size_t)(d->n_langs ? d->n_langs : 1) * sizeof(int));
    for (int l = 0; l < d->n_langs; l++)
        if (s->mono[l].n > 0) s->langs[s->n_langs++] = l;
    int use_mono = sampling == SAMPLING_MONO || (sampling == SAMPLING_HYBRID && alpha > 0);
    int use_cross = sampling == SAMPLING_CROSS || (sampling == SAMPLING_HYBRID && alpha < 1);
    int rc = 0;
    if (use_mono)
        for (int j = 0, l; j < s->n_langs && rc == 0 && (l = s->langs[j]) >= 0; j++)
            if (s->mono[l].n < batch)
                rc = xerr("language %s has %d groups, fewer than the batch size %d: a mono batch needs %d distinct "
                          "groups of one language (lower --batch or leave out %s)",
                          d->langs[l], s->mono[l].n, batch, batch, d->langs[l]);
    if (rc == 0 && use_cross && s->cross.n < batch)
        rc = xerr("%d groups have two or more languages, fewer than the batch size %d: a cross batch needs %d "
                  "distinct multilingual groups",
                  s->cross.n, batch, batch);
    if (rc == 0 && sampling == SAMPLING_MIXED && s->mixed.n < batch)
        rc = xerr("%d groups, fewer than the batch size %d", s->mixed.n, batch);
    if (rc) {
        sampler_free(s);
        return -1;
    }
    /* every pool starts in its own shuffled order */
    for (int l = 0; l < d->n_langs; l++) pool_shuffle(&s->mono[l], &s->rng);
    pool_shuffle(&s->cross, &s->rng);
    pool_shuffle(&s->mixed, &s->rng);
    return 0;
}

int sampler_build(Sampler *s, const TrainData *d, int sampling, double alpha, int batch, uint64_t seed) {
    return build_groups(s, d, NULL, 0, sampling, alpha, batch, seed);
}

/* ------------------------------------------------------------------------- */
/* Several datasets: each batch from one of them                             */

static const char *const multi_names[MULTI_COUNT] = {
    [MULTI_MERGED] = "merged", [MULTI_PROPORTIONAL] = "proportional", [MULTI_ROUND_ROBIN] = "round-robin"};

int multi_dataset_parse(const char *s) {
    for (int i = 0; i < MULTI_COUNT; i++)
        if (s && !strcmp(s, multi_names[i])) return i;
    return -1;
}
const char *multi_dataset_name(int mode) { return mode >= 0 && mode < MULTI_COUNT ? multi_names[mode] : "?"; }

/* Groups of one file each: a group with rows in two files belongs to no single dataset. */
static int dataset_groups(const TrainData *d, const char *const *files, int **groups, int *counts) {
    for (int g = 0; g < d->n_groups; g++)
        if (d->group_file[g] < 0)
            return xerr("group '%s' has rows in two training files: with several datasets each file holds its own "
                        "groups (or use --multi-dataset merged)",
                        d->groups[g]);
    for (int k = 0; k < d->n_files; k++) {
        groups[k] = xmalloc((size_t)(d->n_groups ? d->n_groups : 1) * sizeof(int));
        counts[k] = 0;
    }
    for (int g = 0; g < d->n_groups; g++) groups[d->group_file[g]][counts[d->group_file[g]]++] = g;
    for (int k = 0; k < d->n_files; k++)
        if (counts[k] == 0) return xerr("%s: no training rows", files[k]);
    return 0;
}

/* Hybrid on a dataset without B multilingual groups (e.g. English-only SQuAD
 * pairs beside XQuAD-R) cannot draw cross batches: it serves mono ones only. */
static double dataset_alpha(const TrainData *d, const int *groups, int n, int sampling, double alpha, int batch) {
    if (sampling != SAMPLING_HYBRID) return alpha;
    int multi = 0;
    for (int j = 0; j < n; j++) multi += d->group_start[groups[j] + 1] - d->group_start[groups[j]] >= 2;
    return multi < batch ? 1.0 : alpha;
}

int sampler_build_multi(Sampler *s, const TrainData *d, const char *const *files, int mode, int sampling, double alpha,
                        int batch, uint64_t seed) {
    if (mode < 0 || mode >= MULTI_COUNT) return xerr("unknown --multi-dataset mode %d", mode);
    if (mode == MULTI_MERGED || d->n_files < 2) return sampler_build(s, d, sampling, alpha, batch, seed);
    int D = d->n_files, rc = 0;
    int **groups = xcalloc((size_t)D, sizeof *groups), *counts = xcalloc((size_t)D, sizeof(int));
    Sampler *sets = xcalloc((size_t)D, sizeof *sets);
    rc = dataset_groups(d, files, groups, counts);
    int built = 0;
    for (; rc == 0 && built < D; built++)
        if (build_groups(&sets[built], d, groups[built], counts[built], sampling,
                         dataset_alpha(d, groups[built], counts[built], sampling, alpha, batch), batch,
                         hash_combine(seed, (uint64_t)built + 1))) {
            char *msg = xstrdup(xerr_msg());
            rc = xerr("%s: %s", files[built], msg);
            free(msg);
            break;
        }
    for (int k = 0; k < D; k++) free(groups[k]);
    free(groups);
    if (rc) {
        for (int k = 0; k < built; k++) sampler_free(&sets[k]);
        free(sets);
        free(counts);
        return -1;
    }
    memset(s, 0, sizeof *s); /* the parent draws no pairs itself: no pools */
    s->d = d;
    s->sampling = sampling;
    s->alpha = alpha;
    s->batch = batch;
    s->multi = mode;
    s->sets = sets;
    s->set_groups = counts;
    s->n_sets = D;
    rng_seed(&s->pick, hash_combine(seed, 0xda7a5e7ULL));
    return 0;
}

/* The dataset of the next batch: in turn, or with probability proportional to its groups. */
static int pick_dataset(Sampler *s) {
    if (s->multi == MULTI_ROUND_ROBIN) return (int)(s->batches % s->n_sets);
    uint32_t r = rng_below(&s->pick, (uint32_t)s->d->n_groups);
    int k = 0;
    while (k < s->n_sets - 1 && r >= (uint32_t)s->set_groups[k]) r -= (uint32_t)s->set_groups[k++];
    return k;
}

void sampler_free(Sampler *s) {
    for (int k = 0; k < s->n_sets; k++) sampler_free(&s->sets[k]);
    free(s->sets);
    free(s->set_groups);
    free(s->langs);
    if (s->mono && s->d)
        for (int l = 0; l < s->d->n_langs; l++) free(s->mono[l].order);
    free(s->mono);
    free(s->cross.order);
    free(s->mixed.order);
    free(s->stamp);
    memset(s, 0, sizeof *s);
}

int sampler_next(Sampler *s, SamplePair *pairs) {
    if (s->n_sets) {
        s->dataset = pick_dataset(s);
        s->batches++;
        return sampler_next(&s->sets[s->dataset], pairs);
    }
    const TrainData *d = s->d;
    int batchno = (int)(s->batches++ & 0x7fffffff);
    int kind;
    if (s->sampling == SAMPLING_MONO) kind = BATCH_MONO;
    else if (s->sampling == SAMPLING_CROSS) kind = BATCH_CROSS;
    else if (s->sampling == SAMPLING_MIXED) kind = BATCH_MIXED;
    else kind = rng_uniform(&s->rng) < s->alpha ? BATCH_MONO : BATCH_CROSS;
    if (kind == BATCH_MONO) {
        int lang = s->langs[rng_below(&s->rng, (uint32_t)s->n_langs)];
        for (int i = 0; i < s->batch; i++) {
            int g = pool_next(&s->mono[lang], &s->rng, s->stamp, batchno);
            pairs[i].qrow = pairs[i].prow = train_data_find(d, g, lang);
        }
    } else if (kind == BATCH_CROSS) {
        for (int i = 0; i < s->batch; i++) {
            int g = pool_next(&s->cross, &s->rng, s->stamp, batchno);
            int k = d->group_start[g + 1] - d->group_start[g];
            int qi = (int)rng_below(&s->rng, (uint32_t)k);
            int pi = (int)rng_below(&s->rng, (uint32_t)(k - 1));
            if (pi >= qi) pi++;
            pairs[i].qrow = d->group_start[g] + qi;
            pairs[i].prow = d->group_start[g] + pi;
        }
    } else {
        for (int i = 0; i < s->batch; i++) {
            int g = pool_next(&s->mixed, &s->rng, s->stamp, batchno);
            int k = d->group_start[g + 1] - d->group_start[g];
            pairs[i].qrow = pairs[i].prow = d->group_start[g] + (int)rng_below(&s->rng, (uint32_t)k);
        }
    }
    return kind;
}

/* ------------------------------------------------------------------------- */
/* State                                                                     */

#define SAMPLER_MAGIC 0x504d5358u /* "XSMP" */
#define SAMPLER_VERSION 1

typedef struct {
    uint32_t magic, version;
    int32_t sampling, batch, n_langs, n_groups;
    double alpha;
    uint64_t rng, fingerprint;
    int64_t batches;
} SamplerHeader;

static int pool_write(const SamplerPool *p, FILE *f) {
    int32_t h[3] = {p->n, p->pos, p->passes};
    if (fwrite(h, sizeof h, 1, f) != 1) return -1;
    if (p->n && fwrite(p->order, sizeof(int), (size_t)p->n, f) != (size_t)p->n) return -1;
    return 0;
}

/* mark: n_groups ints of scratch (left negative: s->stamp serves). The state must hold the pool's own groups (as
 * sampler_build made them), each once: a group of another pool would serve a
 * batch it cannot fill (a mono language it lacks, a cross pair from one row). */
static int pool_read(SamplerPool *p, FILE *f, int n_groups, int *mark, const char *name) {
    int32_t h[3];
    if (fread(h, sizeof h, 1, f) != 1) return xerr("%s: sampler state is truncated", name);
    if (h[0] != p->n || h[1] < 0 || h[1] > p->n || h[2] < 0)
        return xerr("%s: sampler state does not match the training data (pool of %d groups, state has %d)", name,
                    p->n, (int)h[0]);
    for (int g = 0; g < n_groups; g++) mark[g] = -1;         /* -1: not in this pool */
    for (int i = 0; i < p->n; i++) mark[p->order[i]] = -2; /* -2: a member (< 0: never a batch number) */
    if (p->n && fread(p->order, sizeof(int), (size_t)p->n, f) != (size_t)p->n)
        return xerr("%s: sampler state is truncated", name);
    for (int i = 0; i < p->n; i++) {
        int g = p->order[i];
        if (g < 0 || g >= n_groups || mark[g] != -2) return xerr("%s: sampler state is corrupt", name);
        mark[g] = -3; /* seen */
    }
    p->pos = h[1];
    p->passes = h[2];
    return 0;
}

/* Several datasets: this header, then each dataset's sampler state in order. */
#define MULTI_MAGIC 0x544c4d58u /* "XMLT" */
typedef struct {
    uint32_t magic, version;
    int32_t mode, n_sets, dataset, pad;
    uint64_t pick;
    int64_t batches;
} MultiHeader;

static int multi_state_write(const Sampler *s, FILE *f) {
    MultiHeader h = {MULTI_MAGIC, SAMPLER_VERSION, s->multi, s->n_sets, s->dataset, 0, s->pick.s, s->batches};
    if (fwrite(&h, sizeof h, 1, f) != 1) return xerr("cannot write the sampler state");
    for (int k = 0; k < s->n_sets; k++)
        if (sampler_state_write(&s->sets[k], f)) return -1;
    return 0;
}

static int multi_state_read(Sampler *s, FILE *f, const char *name) {
    MultiHeader h;
    if (fread(&h, sizeof h, 1, f) != 1) return xerr("%s: sampler state is truncated", name);
    if (h.magic == SAMPLER_MAGIC) return xerr("%s: sampler state is for --multi-dataset merged", name);
    if (h.magic != MULTI_MAGIC || h.version != SAMPLER_VERSION) return xerr("%s: not a sampler state (bad magic)", name);
    if (h.mode != s->multi || h.n_sets != s->n_sets)
        return xerr("%s: sampler state is for --multi-dataset %s over %d files", name, multi_dataset_name(h.mode),
                    (int)h.n_sets);
    if (h.batches < 0 || h.dataset < 0 || h.dataset >= s->n_sets) return xerr("%s: sampler state is corrupt", name);
    for (int k = 0; k < s->n_sets; k++)
        if (sampler_state_read(&s->sets[k], f, name)) return -1;
    s->pick.s = h.pick;
    s->batches = h.batches;
    s->dataset = h.dataset;
    return 0;
}

int sampler_state_write(const Sampler *s, FILE *f) {
    if (s->n_sets) return multi_state_write(s, f);
    SamplerHeader h;
    memset(&h, 0, sizeof h);
    h.magic = SAMPLER_MAGIC;
    h.version = SAMPLER_VERSION;
    h.sampling = s->sampling;
    h.batch = s->batch;
    h.n_langs = s->d->n_langs;
    h.n_groups = s->d->n_groups;
    h.alpha = s->alpha;
    h.rng = s->rng.s;
    h.fingerprint = s->d->fingerprint;
    h.batches = s->batches;
    if (fwrite(&h, sizeof h, 1, f) != 1) return xerr("cannot write the sampler state");
    for (int l = 0; l < s->d->n_langs; l++)
        if (pool_write(&s->mono[l], f)) return xerr("cannot write the sampler state");
    if (pool_write(&s->cross, f) || pool_write(&s->mixed, f)) return xerr("cannot write the sampler state");
    return 0;
}

int sampler_state_read(Sampler *s, FILE *f, const char *name) {
    if (s->n_sets) return multi_state_read(s, f, name);
    SamplerHeader h;
    if (fread(&h, sizeof h, 1, f) != 1) return xerr("%s: sampler state is truncated", name);
    if (h.magic == MULTI_MAGIC) return xerr("%s: sampler state is for several datasets (--multi-dataset)", name);
    if (h.magic != SAMPLER_MAGIC) return xerr("%s: not a sampler state (bad magic)", name);
    if (h.version != SAMPLER_VERSION) return xerr("%s: sampler state version %u, expected %d", name, h.version, SAMPLER_VERSION);
    if (h.fingerprint != s->d->fingerprint || h.n_langs != s->d->n_langs || h.n_groups != s->d->n_groups)
        return xerr("%s: the training data changed since this state was saved", name);
    if (h.sampling != s->sampling || h.batch != s->batch || h.alpha != s->alpha)
        return xerr("%s: sampler state is for --sampling %s --alpha %g --batch %d", name, sampling_name(h.sampling),
                    h.alpha, (int)h.batch);
    if (h.batches < 0) return xerr("%s: sampler state is corrupt", name);
    for (int l = 0; l < s->d->n_langs; l++)
        if (pool_read(&s->mono[l], f, s->d->n_groups, s->stamp, name)) return -1;
    if (pool_read(&s->cross, f, s->d->n_groups, s->stamp, name) ||
        pool_read(&s->mixed, f, s->d->n_groups, s->stamp, name))
        return -1;
    s->rng.s = h.rng;
    s->batches = h.batches;
    for (int g = 0; g < s->d->n_groups; g++) s->stamp[g] = -1;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Loading: the TSV rows, validated, languages sorted, rows grouped          */

typedef struct {
    TrainRow row;
    int file, line; /* for messages about duplicates */
} RawRow;

/* Names seen so far (groups or languages): index by name, and the names in order. */
typedef struct {
    StrMap index;
    char ***names; /* the owner's array (grows) */
    int *count;
} NameTable;

/* Index of the name s[0..n), added as the next one when new. */
static int name_intern(NameTable *t, const char *s, size_t n) {
    char *key = xstrndup(s, n);
    int found;
    int *v = strmap_slot(&t->index, key, &found);
    if (found) {
        free(key);
        return *v;
    }
    int k = *t->count;
    if ((k & (k - 1)) == 0) /* grow in powers of two */
        *t->names = xrealloc(*t->names, (size_t)(k ? 2 * k : 1) * sizeof(char *));
    (*t->names)[k] = key; /* the table owns the string; the map borrows it */
    *v = k;
    ++*t->count;
    return k;
}

static int lang_ok(const char *s, size_t n) {
    if (n < 1 || n > 15) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* By (group, lang), then where it was read: equal neighbours are duplicates,
 * and the message names the later one. */
static int cmp_raw(const void *a, const void *b) {
    const RawRow *x = a, *y = b;
    if (x->row.group != y->row.group) return x->row.group < y->row.group ? -1 : 1;
    if (x->row.lang != y->row.lang) return x->row.lang < y->row.lang ? -1 : 1;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static const char *field_names[5] = {"group", "lang", "query", "passage", "hard negative"};

typedef struct {
    RawRow *rows;
    int n, cap;
    NameTable groups, langs;
} RawRows;

/* Splits the line [p, le) at tabs: up to 6 fields into f / fl; returns the count (may exceed 6). */
static int split_fields(char *p, char *le, char *f[6], size_t fl[6]) {
    int nf = 0;
    char *s = p;
    for (;;) {
        char *tab = memchr(s, '\t', (size_t)(le - s));
        char *fe = tab ? tab : le;
        if (nf < 6) { f[nf] = s; fl[nf] = (size_t)(fe - s); }
        nf++;
        if (!tab) return nf;
        s = tab + 1;
    }
}

/* One data line [p, le) of path: checked, then appended to raw. */
static int tsv_read_row(RawRows *raw, char *p, char *le, const char *path, int file_index, int line) {
    if (memchr(p, 0, (size_t)(le - p))) return xerr("%s:%d: NUL byte in the line", path, line);
    if (!utf8_valid(p, (size_t)(le - p))) return xerr("%s:%d: invalid UTF-8", path, line);
    char *f[6];
    size_t fl[6];
    int nf = split_fields(p, le, f, fl);
    if (nf != 4 && nf != 5)
        return xerr("%s:%d: expected 4 or 5 tab-separated columns (group, lang, query, passage[, hard negative]), found %d",
                    path, line, nf);
    for (int i = 0; i < nf; i++) {
        int blank = 1; /* '\t' and '\n' cannot occur inside a field */
        for (size_t k = 0; k < fl[i]; k++)
            if (f[i][k] != ' ' && f[i][k] != '\r' && f[i][k] != '\v' && f[i][k] != '\f') { blank = 0; break; }
        if (blank) return xerr("%s:%d: empty %s (column %d)", path, line, field_names[i], i + 1);
    }
    if (!lang_ok(f[1], fl[1]))
        return xerr("%s:%d: bad language code '%.*s' (1-15 characters of A-Z a-z 0-9 _ -)", path, line,
                    (int)(fl[1] > 40 ? 40 : fl[1]), f[1]);
    if (raw->n == raw->cap) {
        raw->cap = raw->cap ? 2 * raw->cap : 1024;
        raw->rows = xrealloc(raw->rows, (size_t)raw->cap * sizeof(RawRow));
    }
    RawRow *r = &raw->rows[raw->n++];
    r->row.group = name_intern(&raw->groups, f[0], fl[0]);
    r->row.lang = name_intern(&raw->langs, f[1], fl[1]);
    r->row.query = xstrndup(f[2], fl[2]);
    r->row.passage = xstrndup(f[3], fl[3]);
    r->row.hard = nf == 5 ? xstrndup(f[4], fl[4]) : NULL;
    r->file = file_index;
    r->line = line;
    return 0;
}

/* Every row of one TSV file, appended to raw. */
static int tsv_read_file(RawRows *raw, const char *path, int file_index) {
    char *data;
    size_t len;
    if (read_file_max(path, READ_LIMIT_DATA, &data, &len)) return -1;
    int rc = 0, line = 0;
    char *p = data + utf8_bom_len(data, len), *end = data + len; /* a BOM is no part of the first group id */
    while (p < end && rc == 0) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r') le--;
        if (le > p && *p != '#') rc = tsv_read_row(raw, p, le, path, file_index, line);
        p = next;
    }
    free(data);
    return rc;
}

/* Languages in code order, so that their indices do not depend on which file
 * or row named them first; the rows are renumbered to match. */
static void sort_languages(TrainData *d, RawRows *raw) {
    char **sorted = xmalloc((size_t)d->n_langs * sizeof(char *));
    memcpy(sorted, d->langs, (size_t)d->n_langs * sizeof(char *));
    qsort(sorted, (size_t)d->n_langs, sizeof(char *), cmp_str);
    int *remap = xmalloc((size_t)d->n_langs * sizeof(int));
    for (int i = 0; i < d->n_langs; i++)
        for (int j = 0; j < d->n_langs; j++)
            if (sorted[j] == d->langs[i]) remap[i] = j;
    for (int i = 0; i < raw->n; i++) raw->rows[i].row.lang = remap[raw->rows[i].row.lang];
    free(d->langs);
    d->langs = sorted;
    free(remap);
}

/* The rows sorted by (group, lang); a second row of a group in one language is an error. */
static int group_rows(const TrainData *d, RawRows *raw, const char *const *files) {
    RawRow *r = raw->rows;
    qsort(r, (size_t)raw->n, sizeof(RawRow), cmp_raw);
    for (int i = 1; i < raw->n; i++)
        if (r[i].row.group == r[i - 1].row.group && r[i].row.lang == r[i - 1].row.lang)
            return xerr("%s:%d: group '%s' already has a row in language %s (%s:%d)", files[r[i].file], r[i].line,
                        d->groups[r[i].row.group], d->langs[r[i].row.lang], files[r[i - 1].file], r[i - 1].line);
    return 0;
}

/* FNV-1a over every row's parts, each with its terminating NUL so that field
 * boundaries count: the same files give the same value on every run. */
static uint64_t data_fingerprint(const TrainData *d) {
    uint64_t h = HASH_FNV1A_BASIS;
    for (int i = 0; i < d->n_rows; i++) {
        const TrainRow *r = &d->rows[i];
        const char *parts[5] = {d->groups[r->group], d->langs[r->lang], r->query, r->passage, r->hard ? r->hard : ""};
        for (int k = 0; k < 5; k++) h = hash_fnv1a(h, parts[k], strlen(parts[k]) + 1);
    }
    return h;
}

int train_data_load(TrainData *d, const char *const *files, int n_files) {
    memset(d, 0, sizeof *d);
    RawRows raw = {.groups = {.names = &d->groups, .count = &d->n_groups},
                   .langs = {.names = &d->langs, .count = &d->n_langs}};
    int rc = 0;
    if (n_files < 1) rc = xerr("no training file given");
    for (int i = 0; i < n_files && rc == 0; i++) rc = tsv_read_file(&raw, files[i], i);
    if (rc == 0 && raw.n == 0) rc = xerr("%s: no training rows", files[0]);
    strmap_free(&raw.groups.index);
    strmap_free(&raw.langs.index);
    if (rc == 0) {
        sort_languages(d, &raw);
        rc = group_rows(d, &raw, files);
    }
    /* the rows move into d (also on failure, so that train_data_free frees their texts) */
    d->rows = xmalloc((size_t)(raw.n ? raw.n : 1) * sizeof(TrainRow));
    for (int i = 0; i < raw.n; i++) d->rows[i] = raw.rows[i].row;
    d->n_rows = raw.n;
    d->n_files = n_files;
    d->group_file = xmalloc((size_t)(d->n_groups ? d->n_groups : 1) * sizeof(int));
    for (int g = 0; g < d->n_groups; g++) d->group_file[g] = -2; /* -2: no row yet */
    for (int i = 0; i < raw.n; i++) {
        int *gf = &d->group_file[raw.rows[i].row.group];
        *gf = *gf == -2 || *gf == raw.rows[i].file ? raw.rows[i].file : -1;
    }
    free(raw.rows);
    if (rc) {
        train_data_free(d);
        return -1;
    }
    d->group_start = xcalloc((size_t)d->n_groups + 1, sizeof(int));
    for (int i = 0; i < d->n_rows; i++) d->group_start[d->rows[i].group + 1]++;
    for (int g = 0; g < d->n_groups; g++) d->group_start[g + 1] += d->group_start[g];
    for (int i = 0; i < d->n_rows; i++) d->n_hard += d->rows[i].hard != NULL;
    d->fingerprint = data_fingerprint(d);
    return 0;
}

void train_data_free(TrainData *d) {
    for (int i = 0; i < d->n_rows; i++) {
        free(d->rows[i].query);
        free(d->rows[i].passage);
        free(d->rows[i].hard);
    }
    for (int i = 0; i < d->n_langs; i++) free(d->langs[i]);
    for (int i = 0; i < d->n_groups; i++) free(d->groups[i]);
    free(d->rows);
    free(d->langs);
    free(d->groups);
    free(d->group_start);
    free(d->group_file);
    memset(d, 0, sizeof *d);
}

int train_data_find(const TrainData *d, int g, int lang) {
    for (int i = d->group_start[g]; i < d->group_start[g + 1]; i++)
        if (d->rows[i].lang == lang) return i;
    return -1;
}
