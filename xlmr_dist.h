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
 * A tied MLM decoder touches every row on a rank that ran a masked position
 * (xlmr_mlm_backward): U is then the whole table, and when every rank touched
 * every row the row ids are not exchanged at all.
 * A job of one process: nothing. */
void xlmr_grads_allreduce(Xlmr *m, int word_emb);

/* A hash of the parameters, to check that every rank holds the same model. */
uint64_t xlmr_params_hash(const Xlmr *m);

/* Data parallel: every rank applies the same update to the same weights, so
 * they stay equal; checked (xlmr_params_hash) where it matters, as an MPI sum
 * that differed between ranks would make them drift apart. Both 0 in a job of
 * one process. After loading src: -1 + xerr("SRC: the ranks loaded different
 * weights: ..."); before a checkpoint of step: -1 + xerr("step STEP: the
 * ranks' weights differ; training stopped before the checkpoint"). */
int xlmr_ranks_loaded_same(const Xlmr *m, const char *src);
int xlmr_ranks_agree(const Xlmr *m, int step);

#endif
