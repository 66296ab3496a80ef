/* optim.h: AdamW (decoupled weight decay, as torch.optim.AdamW), the learning-
 * rate schedule and global gradient-norm clipping, for the XLM-R parameters.
 *
 * Word embeddings are updated lazily: only the rows that received gradient this
 * step (Xlmr.touched_rows) are updated; other rows keep their m and v untouched
 * and get neither an Adam step nor weight decay. This differs from dense AdamW
 * (where a row without gradient still moves by its decaying momentum and by the
 * weight decay) and matches torch.optim.SparseAdam plus decoupled decay on the
 * touched rows; on XLM-R's 250,002 x 768 table a dense pass per step would cost
 * more than the step itself. Every other tensor is updated densely. */
#ifndef XLMR_OPTIM_H
#define XLMR_OPTIM_H

#include <stddef.h>

#include "xlmr.h"

typedef struct {
    float beta1, beta2, eps; /* 0.9, 0.999, 1e-8 */
    float weight_decay;      /* 0.01; not applied to tensors where xlmr_tensor_decays() is 0 */
} AdamWConfig;

typedef struct {
    float *m, *v;  /* (n) first and second moments, laid out as Xlmr.params_memory */
    size_t n;
    long long t;   /* updates done (bias correction uses t for every tensor) */
} AdamW;

void adamw_config_default(AdamWConfig *c);
void adamw_build(AdamW *a, size_t n); /* zeroed moments */
void adamw_free(AdamW *a);

/* One AdamW step (t already incremented) on p[0..n) with gradient gscale * g:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps) + lr wd p          */
void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float wd, float gscale,
                  const AdamWConfig *c, long long t);

/* The whole model: dense tensors, lazy word-embedding rows (skipped entirely when
 * freeze_embeddings). Increments a->t. gscale multiplies every gradient (clipping). */
void xlmr_adamw_step(Xlmr *m, AdamW *a, const AdamWConfig *c, float lr, float gscale, int freeze_embeddings);

/* L2 norm of all gradients that the step would apply (double accumulation). */
double xlmr_grad_norm(const Xlmr *m, int freeze_embeddings);
/* PyTorch's clip_grad_norm_ factor: min(1, max_norm / (norm + 1e-6)); 1 when max_norm <= 0. */
float clip_scale(double norm, double max_norm);

/* Learning rate of update s = 1..total: linear warmup peak*s/W over the first W
 * updates, then linear decay peak*(total-s+1)/(total-W) from peak at s = W+1 to
 * peak/(total-W) at the last update (0 would be one update after it). */
double lr_schedule(int s, int total, int warmup, double peak);
/* warmup < 1: that fraction of total (rounded); >= 1: that many updates (at most total). */
int warmup_steps(double warmup, int total);

/* Optimizer state file: "XADW" magic, version, sizes (checked against the model on
 * load), t, then the moments; word-embedding rows whose moments are all zero are
 * left out (a frozen table costs nothing). Written atomically. */
int xlmr_adamw_save(const AdamW *a, const Xlmr *m, const char *path);
int xlmr_adamw_load(AdamW *a, const Xlmr *m, const char *path);

#endif
