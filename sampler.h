/* sampler.h: training pairs (TSV) and the batch samplers of the paper
 * (X-X-mono, X-Y, hybrid) plus LAReQA's mixed X-X.
 *
 * Training data: UTF-8 text, one row per language version of a pair:
 *     group<TAB>lang<TAB>query<TAB>passage[<TAB>hard_negative]
 *   - rows sharing `group` are translations of the same (query, passage) pair;
 *     a group has at most one row per language;
 *   - lang: 1-15 characters of [A-Za-z0-9_-] (e.g. en, zh, pt-BR);
 *   - every field is non-empty; the hard negative (optional) is a passage in
 *     the row's language that does not answer the query;
 *   - lines starting with '#' are comments and empty lines are ignored; a
 *     trailing '\r' (CRLF files) is dropped; anything else that is not a valid
 *     row is an error "FILE:LINE: what is wrong" (nothing is skipped silently).
 *   Several files may be given; a group may span files when they are merged
 *   into one pool (sampler_build), not when each file is a dataset of its own
 *   (sampler_build_multi).
 *
 * Samplers (B pairs a batch, never the same group twice in a batch):
 *   mono   (X-X-mono) the batch language X is uniform over the languages; B
 *          groups that have X; pairs (query_X, passage_X).
 *   cross  (X-Y) per pair a group with >= 2 languages (single-language groups
 *          never serve cross batches); query language uniform over the group's
 *          languages, passage language uniform over the others.
 *   hybrid each batch is mono with probability alpha, else cross.
 *   mixed  (LAReQA X-X) per pair a group and one language uniform over the
 *          group's languages; query and passage in that language; languages
 *          mix within the batch.
 * Groups are drawn without replacement: each pool (one per language for mono,
 * one for cross, one for mixed) walks through a shuffled order of its groups
 * and reshuffles when exhausted, so every group is seen once per pass.
 * A pool that may serve a batch must hold at least B groups, else start-up
 * fails naming the language (mono) or the pool: every mono batch must be able
 * to fill B distinct groups in any language it may draw.
 * The state (RNG + pool orders and positions) is saved and restored for resume. */
#ifndef XLMR_SAMPLER_H
#define XLMR_SAMPLER_H

#include <stdint.h>
#include <stdio.h>

#include "util.h"

typedef struct {
    int group, lang;               /* indices into TrainData.groups / langs */
    char *query, *passage, *hard;  /* hard may be NULL */
} TrainRow;

typedef struct {
    char **langs;      /* sorted language codes */
    int n_langs;
    char **groups;     /* group names, in order of first appearance */
    int n_groups;
    TrainRow *rows;    /* sorted by (group, lang) */
    int n_rows;
    int *group_start;  /* (n_groups + 1): rows of group g are [group_start[g], group_start[g+1]) */
    int n_hard;        /* rows with a hard negative */
    uint64_t fingerprint; /* hash of the whole content: resume checks the data did not change */
    int n_files;       /* files loaded */
    int *group_file;   /* (n_groups) the file of each group's rows; -1 when they span files */
} TrainData;

/* Reads and validates the files. -1 + xerr("FILE:LINE: ...") on the first bad row. */
int train_data_load(TrainData *d, const char *const *files, int n_files);
void train_data_free(TrainData *d);
/* Row of language lang in group g, or -1. */
int train_data_find(const TrainData *d, int g, int lang);

enum { SAMPLING_MONO = 0, SAMPLING_CROSS = 1, SAMPLING_HYBRID = 2, SAMPLING_MIXED = 3, SAMPLING_COUNT = 4 };
enum { BATCH_MONO = 0, BATCH_CROSS = 1, BATCH_MIXED = 2, BATCH_KIND_COUNT = 3 };
/* "mono" | "cross" | "hybrid" | "mixed" -> SAMPLING_*, or -1. */
int sampling_parse(const char *s);
const char *sampling_name(int sampling);
const char *batch_kind_name(int kind);

typedef struct {
    int qrow, prow; /* rows giving the query and the passage (same group) */
} SamplePair;

typedef struct {
    int *order;  /* shuffled group indices */
    int n, pos;  /* order[pos..n) are left in this pass */
    int passes;  /* completed passes */
} SamplerPool;

typedef struct Sampler Sampler;
struct Sampler {
    const TrainData *d;
    int sampling, batch;
    double alpha;
    Rng rng;
    SamplerPool *mono;  /* (d->n_langs) */
    SamplerPool cross, mixed;
    int *langs, n_langs; /* the languages its groups have (mono batches draw among them) */
    long long batches;  /* drawn so far */
    int *stamp;         /* (n_groups) scratch: batch number a group was last drawn in */
    /* several datasets (sampler_build_multi): one sampler per training file */
    int multi;          /* MULTI_* (MULTI_MERGED: no sets) */
    Sampler *sets;      /* (n_sets) each over its file's groups, with its own RNG */
    int *set_groups;    /* (n_sets) groups of each */
    int n_sets;
    Rng pick;           /* proportional: which dataset */
    int dataset;        /* dataset of the last batch (0 when merged) */
};

/* -1 + xerr when a pool the sampler may use has fewer than B groups. */
int sampler_build(Sampler *s, const TrainData *d, int sampling, double alpha, int batch, uint64_t seed);

/* Several training files (the paper's "sampled based on dataset size"):
 *   merged        one pool of all groups: sampler_build, whatever the files;
 *   proportional  each batch from one file, drawn with probability proportional
 *                 to its number of groups (sentence-transformers' PROPORTIONAL);
 *   round-robin   each batch from the next file in turn;
 * the strategy (mono/cross/hybrid/mixed) applies within the file. Each file's
 * pools must hold B groups (errors name the file), and no group may have rows
 * in two files. With one file every mode is merged. */
enum { MULTI_MERGED = 0, MULTI_PROPORTIONAL = 1, MULTI_ROUND_ROBIN = 2, MULTI_COUNT = 3 };
int multi_dataset_parse(const char *s); /* "merged" | "proportional" | "round-robin" -> MULTI_*, or -1 */
const char *multi_dataset_name(int mode);
int sampler_build_multi(Sampler *s, const TrainData *d, const char *const *files, int mode, int sampling, double alpha,
                        int batch, uint64_t seed);
void sampler_free(Sampler *s);
/* Draws the next batch into pairs (batch entries); returns its BATCH_* kind
 * (s->dataset: the file it came from). */
int sampler_next(Sampler *s, SamplePair *pairs);
/* State for resume: binary, versioned, sizes checked against the data on read. */
int sampler_state_write(const Sampler *s, FILE *f);
int sampler_state_read(Sampler *s, FILE *f, const char *name);

#endif
