/* xlmr_dist.h: the gradient exchange of data-parallel training (dist.h):
 * after each rank has back-propagated its share of the batch, every rank
 * holds the gradient of the whole batch. */
#ifndef XLMR_XLMR_DIST_H
#define XLMR_XLMR_DIST_H

#include "xlmr.h"

/* m->grads = the sum over the ranks of m->grads, the same on every rank.
 * Dense tensors: one all-reduce per run of consecutive tensors (every tensor but
 * the word embeddings: (n_params - V*C) floats). Word embeddings (skipped when
 * word_emb is 0, a frozen table): only the union U of the ranks' touched rows,
 * an all-gather of the row ids (sum of |touched| ints) and an all-reduce of
 * (|U|, C) floats, never (V, C); afterwards touched_rows is U in ascending
 * order on every rank, so the optimizer visits the same rows everywhere.
 * A job of one process: nothing. */
void xlmr_grads_allreduce(Xlmr *m, int word_emb);

/* A hash of the parameters, to check that every rank holds the same model. */
uint64_t xlmr_params_hash(const Xlmr *m);

#endif
