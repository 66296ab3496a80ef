/* loss.c: see loss.h. */
#include "loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"
#include "util.h"

double infonce_forward_backward(float *dq, float *dp, const float *q, const float *p,
                                int B, int P, int C, float tau) {
    float *s = xmalloc((size_t)B * P * sizeof(float)); /* (B,P) scores, then dS */
    sgemm(0, 1, B, P, C, 1.0f / tau, q, C, p, C, 0.0f, s, P);
    double loss = 0;
    for (int i = 0; i < B; i++) {
        float *row = s + (size_t)i * P;
        double mx = row[0];
        for (int j = 1; j < P; j++) if (row[j] > mx) mx = row[j];
        double sum = 0;
        for (int j = 0; j < P; j++) sum += exp((double)row[j] - mx);
        double lse = mx + log(sum);
        loss += lse - row[i];
        /* dloss/ds_ij = (softmax_ij - [i==j]) / B */
        for (int j = 0; j < P; j++)
            row[j] = (float)((exp((double)row[j] - lse) - (i == j)) / B);
    }
    /* s = q p^T / tau  =>  dq = dS p / tau,  dp = dS^T q / tau */
    if (dq) sgemm(0, 0, B, C, P, 1.0f / tau, s, P, p, C, 0.0f, dq, C);
    if (dp) sgemm(1, 0, P, C, B, 1.0f / tau, s, P, q, C, 0.0f, dp, C);
    free(s);
    return loss / B;
}

double mlm_xent_forward_backward(float *dlogits, const float *logits, const int *labels, int M, int V,
                                 float dscale) {
    double *per = xmalloc((size_t)(M > 0 ? M : 1) * sizeof(double)), loss = 0;
    OMP(omp parallel for)
    for (int i = 0; i < M; i++) {
        const float *row = logits + (size_t)i * V;
        float mx = row[0], target = row[labels[i]];
        for (int j = 1; j < V; j++) mx = row[j] > mx ? row[j] : mx;
        /* one exp per logit (the softmax numerators are kept in dlogits, which
         * may be the logits themselves: target was read first); float exp of
         * values <= 0, summed in double */
        double sum = 0;
        float *d = dlogits ? dlogits + (size_t)i * V : NULL;
        for (int j = 0; j < V; j++) {
            float e = expf(row[j] - mx);
            sum += e;
            if (d) d[j] = e;
        }
        per[i] = (double)mx + log(sum) - target;
        if (!d) continue;
        float scale = (float)(dscale / sum);
        for (int j = 0; j < V; j++) d[j] *= scale;
        d[labels[i]] -= dscale;
    }
    for (int i = 0; i < M; i++) loss += per[i]; /* in order: independent of the thread count */
    free(per);
    return loss;
}
