/* encode.h: text to embeddings — tokenizes a list of texts (in parallel),
 * groups them by length into batches to waste little on padding, and runs
 * xlmr_embed. Composes tokenizer and xlmr; used by embed, eval and train. */
#ifndef XLMR_ENCODE_H
#define XLMR_ENCODE_H

#include "tokenizer.h"
#include "xlmr.h"

/* The method's prompts (arXiv 2408.10536): every query and passage is embedded
 * with its role written in front, so one shared encoder can tell them apart. */
#define XLMR_QUERY_PREFIX "Query: "
#define XLMR_PASSAGE_PREFIX "Passage: "

typedef struct {
    int max_len;        /* tokens per text including <s> and </s>; <= 0: the model's limit (max_pos - pad_id - 1) */
    int batch;          /* texts per forward call (default 32 when <= 0) */
    int pooling;        /* POOL_MEAN or POOL_CLS */
    const char *prefix; /* prepended to every text (e.g. "Query: "); may be NULL */
    const char *label;  /* when non-NULL: a progress line with ETA on stderr, "label: i/n ..." */
} EncodeOptions;

/* out (n, C): the L2-normalised embedding of prefix + texts[i]. -1 + xerr on failure. */
int encode_texts(Xlmr *m, const Tokenizer *t, const char *const *texts, int n,
                 const EncodeOptions *o, float *out);

/* Tokenizes prefix + texts[i] for i < n into XLM-R ids (in parallel), each truncated to max_len.
 * ids[i] must be zero-initialised IntVecs; they are filled. */
int encode_tokenize(const Tokenizer *t, const char *const *texts, int n, const char *prefix,
                    int max_len, IntVec *ids);

#endif
