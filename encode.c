/* encode.c: text to embeddings (see encode.h). Tokenizes in parallel, then
 * xlmr_embed_ragged sorts by length and batches so little is spent on padding. */
#include "encode.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

int encode_tokenize(const Tokenizer *t, const char *const *texts, int n, const char *prefix, int max_len,
                    IntVec *ids) {
    size_t plen = prefix ? strlen(prefix) : 0;
    size_t *lens = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *lens);
    char **joined = plen ? xcalloc((size_t)(n > 0 ? n : 1), sizeof *joined) : NULL;
    for (int i = 0; i < n; i++) {
        lens[i] = strlen(texts[i]);
        if (joined) {
            joined[i] = xmalloc(plen + lens[i] + 1);
            memcpy(joined[i], prefix, plen);
            memcpy(joined[i] + plen, texts[i], lens[i] + 1);
            lens[i] += plen;
        }
    }
    int rc = tokenizer_encode_batch(t, joined ? (const char *const *)joined : texts, lens, n, TOK_XLMR, max_len,
                                    ids);
    for (int i = 0; joined && i < n; i++) free(joined[i]);
    free(joined);
    free(lens);
    return rc;
}

int encode_texts(Xlmr *m, const Tokenizer *t, const char *const *texts, int n, const EncodeOptions *o,
                 float *out) {
    int limit = xlmr_max_len(&m->cfg);
    int max_len = o->max_len <= 0 ? limit : o->max_len;
    if (max_len < 2 || max_len > limit)
        return xerr("max_len %d outside [2, %d] (the model's position table)", max_len, limit);
    IntVec *ids = xcalloc((size_t)(n > 0 ? n : 1), sizeof *ids);
    const int **rows = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    int *lens = xmalloc((size_t)(n > 0 ? n : 1) * sizeof *lens);
    int rc = encode_tokenize(t, texts, n, o->prefix, max_len, ids);
    if (rc == 0) {
        for (int i = 0; i < n; i++) {
            rows[i] = ids[i].data;
            lens[i] = (int)ids[i].n;
        }
        rc = xlmr_embed_ragged(m, out, rows, lens, n, o->batch, o->pooling, o->label);
    }
    for (int i = 0; i < n; i++) iv_free(&ids[i]);
    free(ids);
    free(rows);
    free(lens);
    return rc;
}
