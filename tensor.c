/* tensor.c: placeholder (scalar only) until the kernels land. */
#include "tensor.h"
void sgemm_ref(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            C[(size_t)i * ldc + j] = alpha * (float)s + (beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j]);
        }
}
void sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_ref(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
