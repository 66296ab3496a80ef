/* tensor.h: dense fp32 kernels. Knows nothing of models.
 * Row-major everywhere. Two tiers: a scalar reference (always compiled,
 * the ground truth tests compare against) and a fast tier (SIMD micro-kernels
 * chosen at compile time: AVX-512, AVX2/FMA, else scalar; OpenMP over tiles). */
#ifndef XLMR_TENSOR_H
#define XLMR_TENSOR_H

#include <stddef.h>
#include <stdint.h>

/* C (M,N) = alpha * op(A) · op(B) + beta * C, BLAS semantics, row-major.
 *   op(A) is (M,K): A is (M,K) with row stride lda, or (K,M) when transA.
 *   op(B) is (K,N): B is (K,N) with row stride ldb, or (N,K) when transB.
 * beta == 0 overwrites C without reading it (NaNs in C do not leak).
 * Parallel over tiles with OpenMP when called outside a parallel region;
 * serial inside one (so callers may parallelise over heads or batch). Small
 * problems (K <= 256, e.g. attention's per-head products) run serially without
 * packing or allocation; every path gives bitwise the same result. */
void sgemm(int transA, int transB, int M, int N, int K, float alpha,
           const float *A, int lda, const float *B, int ldb, float beta,
           float *C, int ldc);
/* The signature of sgemm, sgemm_ref and sgemm_bf16 (callers pick one). */
typedef void (*GemmFn)(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);
/* Elementwise work on a product's result (a bias, an activation) done while
 * it is in cache: apply(ctx, c, ldc, i, j, m, n) receives the block c (m,n) at
 * row i, column j of C (row stride ldc), once its values are final; blocks are
 * disjoint and may run on several threads at once. */
typedef struct {
    void (*apply)(const void *ctx, float *c, int ldc, int i, int j, int m, int n);
    const void *ctx;
} GemmEpilogue;
/* g (sgemm, sgemm_ref or sgemm_bf16), then epi over all of C (NULL: none):
 * strip by strip (a row of final tiles) inside the blocked products of sgemm
 * and of every BF16 engine, one pass after the product for the small ones
 * and sgemm_ref. Bitwise g followed by epi. */
void sgemm_fused(GemmFn g, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const GemmEpilogue *epi);
/* The scalar reference with identical semantics (double-free of tricks). */
void sgemm_ref(int transA, int transB, int M, int N, int K, float alpha,
               const float *A, int lda, const float *B, int ldb, float beta,
               float *C, int ldc);

/* BF16 compute (round-to-nearest-even inputs, fp32 accumulation), same
 * semantics as sgemm otherwise. Available on every build; the engine is chosen
 * at run time: AMX-BF16 tiles where compiled in and granted by Linux, else
 * AVX512-BF16 dot products where CPUID reports them (any x86-64 build), else an
 * exact emulation (bf16-rounded copies through the fp32 kernels).
 * tensor_has_bf16() is 1 when this CPU runs BF16 instructions for it.
 * Results are identical for 1 and N threads within one engine. */
int tensor_has_bf16(void);
/* The engine sgemm_bf16 runs on: "amx" (AMX-BF16 tiles, fp32 accumulation),
 * "avx512-bf16" (vdpbf16ps) or "emulated" (bf16-rounded inputs, fp32 kernels). */
const char *tensor_bf16_engine(void);
/* Forces one of those engines, or "auto" (the best usable, the default). -1,
 * nothing changed, when the name is unknown or the engine cannot run here.
 * Not thread-safe: call it between products (tests and benchmarks compare). */
int tensor_set_bf16_engine(const char *name);
void sgemm_bf16(int transA, int transB, int M, int N, int K, float alpha,
                const float *A, int lda, const float *B, int ldb, float beta,
                float *C, int ldc);

/* op(B) (K,N) packed once for many BF16 products with it (a weight across
 * inference batches): all of it in the engine's layout, 2 bytes an element,
 * where the engine has one (avx512-bf16); elsewhere, or once the engine has
 * changed, products pack from B as sgemm_bf16 does. B must stay alive and
 * unchanged while the handle is in use. Results are bitwise those of
 * sgemm_bf16(transA, transB, ...). K == 0 or alpha == 0 are handled as there. */
typedef struct Bf16Packed Bf16Packed;
Bf16Packed *sgemm_bf16_pack_b(int transB, int N, int K, const float *B, int ldb);
/* sgemm_bf16 with op(B) from a handle, then epi as sgemm_fused (NULL: none);
 * N and K must be those it was packed with. */
void sgemm_bf16_packed(int transA, int M, int N, int K, float alpha, const float *A, int lda, const Bf16Packed *B,
                       float beta, float *C, int ldc, const GemmEpilogue *epi);
void sgemm_bf16_packed_free(Bf16Packed *B);

/* What the build selected: "avx512", "avx2", or "scalar"; plus "+openmp". */
const char *tensor_backend(void);

#endif
