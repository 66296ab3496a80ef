/* loss.h: InfoNCE with in-batch negatives (query -> passage, one direction),
 * the loss of sentence-transformers' MultipleNegativesRankingLoss, and the
 * masked-LM cross-entropy. Knows nothing of models: it takes embeddings and logits. */
#ifndef XLMR_LOSS_H
#define XLMR_LOSS_H

/* q (B,C) queries and p (P,C) passages, both L2-normalised, P >= B:
 * passage i is the positive of query i, every other passage (the rest of the
 * batch, then any hard negatives at rows B..P-1) is a negative.
 *   s_ij = q_i . p_j / tau
 *   loss = (1/B) sum_i [ logsumexp_j s_ij - s_ii ]
 * Writes dq (B,C) and dp (P,C) = d loss / d q, d loss / d p (overwritten;
 * either may be NULL). Log-sum-exp in double, shifted by the row max, so no
 * score overflows. Returns the loss. */
double infonce_forward_backward(float *dq, float *dp, const float *q, const float *p,
                                int B, int P, int C, float tau);

/* Masked-LM cross-entropy over M positions with logits (M,V) and labels (M)
 * in [0, V): returns sum_i [ logsumexp_j logits_ij - logits_i,label_i ] (the
 * caller divides by the number of masked positions of the batch, as HF's
 * mean over labels != -100). dlogits (M,V) = dscale (softmax_i - onehot_i)
 * (may be logits itself: the (M,V) buffer is reused; NULL: loss only).
 * Log-sum-exp in double, shifted by the row max. */
double mlm_xent_forward_backward(float *dlogits, const float *logits, const int *labels, int M, int V,
                                 float dscale);

#endif
