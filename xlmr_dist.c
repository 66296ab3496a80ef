/* xlmr_dist.c: the gradient exchange of data-parallel training (see xlmr_dist.h). */
#include "xlmr_dist.h"

#include <stdlib.h>
#include <string.h>

#include "dist.h"
#include "util.h"

static int by_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The union of the ranks' touched word rows becomes every rank's touched set
 * (rows a rank did not touch hold zero gradient there: zero_grad clears what it
 * marked), then the (|U|, C) rows are summed. */
static void word_rows_allreduce(Xlmr *m) {
    const int P = dist_size(), C = m->cfg.hidden;
    int *counts = xcalloc((size_t)P, sizeof(int));
    counts[dist_rank()] = m->n_touched;
    dist_allreduce_max_i(counts, (size_t)P);
    int total = 0;
    for (int r = 0; r < P; r++) total += counts[r];
    int *all = NULL;
    if ((long long)total < (long long)P * m->cfg.vocab) { /* else every rank touched every row: U is known */
        all = xmalloc((size_t)total * sizeof(int));
        dist_allgatherv_i(all, m->touched_rows, counts);
        for (int i = 0; i < total; i++)
            if (!m->row_touched[all[i]]) {
                m->row_touched[all[i]] = 1;
                m->touched_rows[m->n_touched++] = all[i];
            }
    }
    qsort(m->touched_rows, (size_t)m->n_touched, sizeof(int), by_int);
    size_t row = (size_t)C * sizeof(float);
    float *buf = xmalloc((size_t)m->n_touched * row), *g = m->grads.word_emb;
    for (int k = 0; k < m->n_touched; k++) memcpy(buf + (size_t)k * C, g + (size_t)m->touched_rows[k] * C, row);
    dist_allreduce_sum_f(buf, (size_t)m->n_touched * C);
    for (int k = 0; k < m->n_touched; k++) memcpy(g + (size_t)m->touched_rows[k] * C, buf + (size_t)k * C, row);
    free(buf);
    free(all);
    free(counts);
}

void xlmr_grads_allreduce(Xlmr *m, int word_emb) {
    if (dist_size() == 1) return;
    for (int i = 0; i < XLMR_NUM_TENSORS;) {
        if (xlmr_tensor_lazy_rows(i)) {
            if (word_emb) word_rows_allreduce(m);
            i++;
            continue;
        }
        int j = i;
        size_t n = 0;
        while (j < XLMR_NUM_TENSORS && !xlmr_tensor_lazy_rows(j)) n += m->sizes[j++];
        dist_allreduce_sum_f(m->grads_memory + m->offsets[i], n);
        i = j;
    }
}

/* Word by word (a quarter of the work of hash_bytes): about 2 s at base size here,
 * paid at the start and at each checkpoint. */
uint64_t xlmr_params_hash(const Xlmr *m) {
    uint64_t h = 0;
    for (size_t i = 0; i < m->n_params; i++) {
        uint32_t w;
        memcpy(&w, m->params_memory + i, sizeof w);
        h = hash_combine(h, w);
    }
    return h;
}

int xlmr_ranks_loaded_same(const Xlmr *m, const char *src) {
    if (dist_size() == 1 || dist_agree(xlmr_params_hash(m))) return 0;
    return xerr("%s: the ranks loaded different weights: every rank must read the same folder", src);
}

int xlmr_ranks_agree(const Xlmr *m, int step) {
    if (dist_size() == 1 || dist_agree(xlmr_params_hash(m))) return 0;
    return xerr("step %d: the ranks' weights differ; training stopped before the checkpoint", step);
}
