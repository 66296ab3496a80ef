/* tensor.c: dense fp32 kernels (see tensor.h).
 *
 * sgemm is a Goto/BLIS-style blocked GEMM. Row-major C is vectorised along N,
 * so the packed B block is the "vector" operand (kept in L2) and a packed A
 * sliver of MR rows is the "broadcast" operand (kept in L1):
 *
 *   for ic in M step MC
 *     for pc in K step KC               pack A panel  (MC x KC)  -> Ap
 *       for jc in N step NC             pack B block  (KC x NC)  -> Bp, L2
 *         for ir in MC step MR          A sliver (MR x KC), L1
 *           for jr in NC step NR        B sliver (KC x NR) from L2
 *             micro-kernel: C[MR x NR] (+)= Ap sliver · Bp sliver
 *
 * Packing zero-pads partial slivers, so the micro-kernel always computes a
 * full MR x NR tile; only the store is masked. Each element of C is summed in
 * the same k order whatever the thread count or tile position, so results are
 * bitwise identical for 1 and N threads. Threads split C's rows and share one
 * packing of all of B (each packs every nt-th sliver; one barrier), since each
 * of them needs the whole of B; where B is too large, or M too small to
 * split, they take disjoint blocks of C, each packing its own panels.
 *
 * Small problems (K <= 256; attention's T x T x 64 head products) skip the
 * packing: gemm_small broadcasts A from its rows and loads B rows in place
 * (AVX-512 builds), with the same fma order as the packed kernel.
 *
 * Micro-kernels, chosen at compile time:
 *   AVX-512F       12 x 32 (24 zmm accumulators)
 *   AVX2 + FMA      6 x 16 (12 ymm accumulators)
 *   portable C      4 x 16 (XLMR_SCALAR_ONLY, or any other CPU)
 * BF16 engines, chosen at run time (tensor_set_bf16_engine can force one):
 *   amx           32 x 32 blocks of tdpbf16ps, where the build targets AMX and
 *                 Linux grants the tile state
 *   avx512-bf16   12 x 32 with vdpbf16ps over k pairs, on every x86-64 build,
 *                 where CPUID reports AVX512-BF16
 *   emulated      inputs rounded to bf16, then the fp32 kernels (a product of
 *                 two bf16 values is exact in fp32: only the order of the
 *                 sums differs from the hardware's)
 * All three take the same bf16 inputs and accumulate in fp32. */
/* AMX-BF16 as gcc and clang spell it; syscall() (to ask Linux for the tile
 * state) is outside POSIX. */
#if !defined(XLMR_SCALAR_ONLY) && defined(__linux__) && \
    ((defined(__AMX_TILE__) && defined(__AMX_BF16__)) || (defined(__AMXTILE__) && defined(__AMXBF16__)))
#define XLMR_HAVE_AMX 1
#define _DEFAULT_SOURCE 1
#endif
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* The BF16 kernels are compiled on every x86-64 build whose compiler knows
 * AVX512-BF16 (gcc >= 10, clang >= 9), each function for that instruction set
 * alone (BF16_FN), and run only where CPUID says the CPU has it: one binary
 * uses vdpbf16ps where it can and the exact emulation elsewhere. */
#if !defined(XLMR_SCALAR_ONLY) && defined(__x86_64__) && defined(__GNUC__) && \
    (defined(__clang__) ? __clang_major__ >= 9 : __GNUC__ >= 10)
#define BF16_KERNELS 1
#define BF16_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))
#include <cpuid.h>
#if defined(XLMR_HAVE_AMX)
#define GEMM_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#if !defined(XLMR_SCALAR_ONLY) && (defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__)) || \
                                   defined(BF16_KERNELS))
#include <immintrin.h>
#endif

#if !defined(XLMR_SCALAR_ONLY) && defined(__AVX512F__)
#define GEMM_AVX512 1
#define MR 12
#define NR 32
#elif !defined(XLMR_SCALAR_ONLY) && defined(__AVX2__) && defined(__FMA__)
#define GEMM_AVX2 1
#define MR 6
#define NR 16
#else
#define GEMM_SCALAR 1
#define MR 4
#define NR 16
#endif


/* Cache blocking (measured on the 2-core Xeon with AMX of BENCHMARKS.md: 48 KB
 * L1d, 2 MB L2 per core; KC 512 beat 384 by 4-8% at K = 3072, NC 1024 lost 10%).
 * The A sliver MR x KC x 4 (24 KB) stays in L1; the B block KC x NC x 4 (1 MB)
 * stays in L2 and its KC x NR slivers (64 KB) stream from there; MC bounds the
 * A panel (L3). Blocks are split evenly (e.g. K = 768 -> 2 x 384). */
#ifndef KC_MAX
#define KC_MAX 512
#endif
#ifndef NC_MAX
#define NC_MAX 512
#endif
#ifndef MC_MAX
#define MC_MAX 1536
#endif

/* Below this many multiply-adds a second thread costs more than it saves: an
 * OpenMP fork/join is a few microseconds idle and far more on a loaded machine,
 * while 128^3 multiply-adds take ~20 us on one core. */
#define GEMM_PARALLEL_MIN (128.0 * 128.0 * 128.0)

/* Small problems (attention's per-head T x T x 64 products) skip the packing:
 * at K <= 256 packing A and B costs about as much as the multiply-adds. */
#define SMALL_K_MAX 256
#define SMALL_MN_MAX (512 * 512)

/* ------------------------------------------------------------------------- */
/* Scalar reference. Double accumulation: the ground truth the tests use.   */

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

/* ------------------------------------------------------------------------- */
/* Helpers                                                                   */

/* Micro-kernels stay out of line: inlined into the blocking loops, gcc runs out
 * of vector registers and spills the B sliver to the stack (measured: half the
 * FMA rate on Zen 4, where every spilled operand is a load). */
#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

static int ceil_div(int a, int b) { return (a + b - 1) / b; }
static int round_up(int a, int b) { return ceil_div(a, b) * b; }

/* Splits n into equal blocks of at most max, each a multiple of unit. */
static int even_block(int n, int max, int unit) {
    int nb = ceil_div(n, max);
    int b = round_up(ceil_div(n, nb), unit);
    return b < max ? b : max;
}

/* 64-byte aligned scratch from xmalloc (dies on out-of-memory, not bad input). */
static float *scratch_alloc(size_t nfloats, void **raw) {
    *raw = xmalloc(nfloats * sizeof(float) + 64);
    return (float *)(((uintptr_t)*raw + 63) & ~(uintptr_t)63);
}

/* C (M,N) = beta * C; beta == 0 writes zeros without reading C. */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(c, 0, (size_t)N * sizeof(float));
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* ------------------------------------------------------------------------- */
/* Packing (fp32). Ap: for each MR-row sliver, k-major: Ap[k*MR + r].
 * Bp: for each NR-column sliver, k-major: Bp[k*NR + c]. Zero-padded.       */

static void pack_a(float *Ap, int transA, const float *A, int lda, int i0, int mc, int p0, int kc) {
    for (int ir = 0; ir < mc; ir += MR) {
        int m = mc - ir < MR ? mc - ir : MR;
        float *dst = Ap + (size_t)ir * kc;
        if (transA) { /* A is (K,M): row k holds the MR values contiguously */
            for (int k = 0; k < kc; k++) {
                const float *src = A + (size_t)(p0 + k) * lda + i0 + ir;
                float *d = dst + (size_t)k * MR;
                int r = 0;
                for (; r < m; r++) d[r] = src[r];
                for (; r < MR; r++) d[r] = 0.0f;
            }
        } else { /* A is (M,K): gather a column of the sliver per k */
            for (int r = 0; r < m; r++) {
                const float *src = A + (size_t)(i0 + ir + r) * lda + p0;
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = src[k];
            }
            for (int r = m; r < MR; r++)
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = 0.0f;
        }
    }
}

#if defined(GEMM_AVX512)
static int pack_b_trans16(float *dst, const float *B, int ldb, int n, int kc);
#endif

static void pack_b(float *Bp, int transB, const float *B, int ldb, int j0, int nc, int p0, int kc) {
    for (int jr = 0; jr < nc; jr += NR) {
        int n = nc - jr < NR ? nc - jr : NR;
        float *dst = Bp + (size_t)jr * kc;
        if (!transB) { /* B is (K,N): contiguous rows */
            for (int k = 0; k < kc; k++) {
                const float *src = B + (size_t)(p0 + k) * ldb + j0 + jr;
                float *d = dst + (size_t)k * NR;
                int c = 0;
                for (; c < n; c++) d[c] = src[c];
                for (; c < NR; c++) d[c] = 0.0f;
            }
        } else { /* B is (N,K): transpose in 4 x NR chunks of k to keep writes local */
            int k = 0;
#if defined(GEMM_AVX512)
            k = pack_b_trans16(dst, B + (size_t)(j0 + jr) * ldb + p0, ldb, n, kc);
#endif
            for (; k + 4 <= kc; k += 4) {
                float *d = dst + (size_t)k * NR;
                int c = 0;
                for (; c < n; c++) {
                    const float *src = B + (size_t)(j0 + jr + c) * ldb + p0 + k;
                    d[c] = src[0];
                    d[NR + c] = src[1];
                    d[2 * NR + c] = src[2];
                    d[3 * NR + c] = src[3];
                }
                for (; c < NR; c++) d[c] = d[NR + c] = d[2 * NR + c] = d[3 * NR + c] = 0.0f;
            }
            for (; k < kc; k++) {
                float *d = dst + (size_t)k * NR;
                int c = 0;
                for (; c < n; c++) d[c] = B[(size_t)(j0 + jr + c) * ldb + p0 + k];
                for (; c < NR; c++) d[c] = 0.0f;
            }
        }
    }
}

/* ------------------------------------------------------------------------- */
/* AVX-512 helpers, shared by the fp32 kernels of AVX-512 builds and by the
 * BF16 kernels of every x86-64 build (AVX512_FN: their instruction set where
 * the build's own flags lack it).                                          */

#if defined(GEMM_AVX512) || defined(BF16_KERNELS)
#if defined(GEMM_AVX512)
#define AVX512_FN
#else
#define AVX512_FN __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))
#endif

#define ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

/* Stores one row pair of accumulators with lane masks for partial tiles. */
static inline AVX512_FN void store_row16(float *c, __m512 acc, __mmask16 mask, __m512 valpha, float beta) {
    __m512 v = _mm512_mul_ps(acc, valpha);
    if (beta != 0.0f) {
        __m512 old = _mm512_maskz_loadu_ps(mask, c);
        v = _mm512_fmadd_ps(_mm512_set1_ps(beta), old, v);
    }
    _mm512_mask_storeu_ps(c, mask, v);
}

/* The 12 x 32 accumulator tile every AVX-512 micro-kernel keeps in registers:
 * c<r>_0 holds columns 0-15 of row r, c<r>_1 columns 16-31. TILE_STORE writes
 * the rows r < m to C through the lane masks m0, m1 (the kernel's own names). */
#define TILE_DECL(r) __m512 c##r##_0 = _mm512_setzero_ps(), c##r##_1 = _mm512_setzero_ps();
#define TILE_STORE(r)                                                      \
    if (r < m) {                                                           \
        store_row16(C + (size_t)r * ldc, c##r##_0, m0, valpha, beta);      \
        store_row16(C + (size_t)r * ldc + 16, c##r##_1, m1, valpha, beta); \
    }

/* The lane mask of a 16-column half tile holding n (<= 0 .. >= 16) columns. */
static inline AVX512_FN __mmask16 tile_mask(int n) { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1); }

/* Transposes a 16 x 16 block of 32-bit elements held in r[0..15] (row i -> column i). */
static inline AVX512_FN void transpose16x16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + 4 + i], 0x88);
            t[h + 4 + i] = _mm512_shuffle_i32x4(r[h + i], r[h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; i++) {
        r[i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_i32x4(t[i], t[8 + i], 0xdd);
    }
}

/* One NR-column sliver of B (N,K) (rows: its n <= NR columns, the rest zero),
 * k-major as pack_b makes it, for the k in whole steps of 16: 16 x 16
 * transposes in registers. Returns the k done. */
#if defined(GEMM_AVX512)
static int pack_b_trans16(float *dst, const float *B, int ldb, int n, int kc) {
    int k = 0;
    for (; k + 16 <= kc; k += 16)
        for (int c0 = 0; c0 < NR; c0 += 16) {
            __m512i v[16];
            for (int i = 0; i < 16; i++)
                v[i] = c0 + i < n ? _mm512_loadu_si512((const void *)(B + (size_t)(c0 + i) * ldb + k))
                                  : _mm512_setzero_si512();
            transpose16x16(v);
            for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(dst + (size_t)(k + i) * NR + c0), v[i]);
        }
    return k;
}
#endif

#endif

/* ------------------------------------------------------------------------- */
/* Micro-kernels: C[m x n] = alpha * (Ap · Bp) + beta * C, m <= MR, n <= NR.
 * beta == 0 never reads C.                                                 */

#if defined(GEMM_AVX512)

static NOINLINE void kernel(int kc, const float *restrict Ap, const float *restrict Bp, float *C, int ldc,
                   float alpha, float beta, int m, int n) {
    ROWS12(TILE_DECL)
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
#define STEP(r)                                 \
    {                                           \
        __m512 a = _mm512_set1_ps(Ap[r]);       \
        c##r##_0 = _mm512_fmadd_ps(a, b0, c##r##_0); \
        c##r##_1 = _mm512_fmadd_ps(a, b1, c##r##_1); \
    }
        ROWS12(STEP)
#undef STEP
        Ap += MR;
        Bp += NR;
    }
    __m512 valpha = _mm512_set1_ps(alpha);
    __mmask16 m0 = tile_mask(n), m1 = tile_mask(n - 16);
    ROWS12(TILE_STORE)
}

#elif defined(GEMM_AVX2)

#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)

static NOINLINE void kernel(int kc, const float *restrict Ap, const float *restrict Bp, float *C, int ldc,
                   float alpha, float beta, int m, int n) {
#define DECL(r) __m256 c##r##_0 = _mm256_setzero_ps(), c##r##_1 = _mm256_setzero_ps();
    ROWS6(DECL)
#undef DECL
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
#define STEP(r)                                    \
    {                                              \
        __m256 a = _mm256_broadcast_ss(Ap + r);    \
        c##r##_0 = _mm256_fmadd_ps(a, b0, c##r##_0); \
        c##r##_1 = _mm256_fmadd_ps(a, b1, c##r##_1); \
    }
        ROWS6(STEP)
#undef STEP
        Ap += MR;
        Bp += NR;
    }
    __m256 valpha = _mm256_set1_ps(alpha), vbeta = _mm256_set1_ps(beta);
    /* Full rows go straight to C; partial ones through a padded row buffer. */
    float row[NR];
#define STORE(r)                                                                  \
    if (r < m) {                                                                  \
        float *c = C + (size_t)r * ldc;                                           \
        float *t = n == NR ? c : row;                                             \
        if (n < NR && beta != 0.0f) { memcpy(row, c, (size_t)n * sizeof(float)); } \
        __m256 v0 = _mm256_mul_ps(c##r##_0, valpha), v1 = _mm256_mul_ps(c##r##_1, valpha); \
        if (beta != 0.0f) {                                                       \
            v0 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(t), v0);                  \
            v1 = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(t + 8), v1);              \
        }                                                                         \
        _mm256_storeu_ps(t, v0);                                                  \
        _mm256_storeu_ps(t + 8, v1);                                              \
        if (n < NR) memcpy(c, row, (size_t)n * sizeof(float));                    \
    }
    ROWS6(STORE)
#undef STORE
}

#else /* portable C */

static NOINLINE void kernel(int kc, const float *restrict Ap, const float *restrict Bp, float *C, int ldc,
                   float alpha, float beta, int m, int n) {
    float acc[MR][NR];
    memset(acc, 0, sizeof(acc));
    for (int k = 0; k < kc; k++) {
        for (int r = 0; r < MR; r++) {
            float a = Ap[r];
            for (int c = 0; c < NR; c++) acc[r][c] += a * Bp[c];
        }
        Ap += MR;
        Bp += NR;
    }
    for (int r = 0; r < m; r++) {
        float *c = C + (size_t)r * ldc;
        for (int j = 0; j < n; j++) {
            float v = alpha * acc[r][j];
            c[j] = beta == 0.0f ? v : v + beta * c[j];
        }
    }
}

#endif

/* ------------------------------------------------------------------------- */
/* Small GEMM without packing (AVX-512). The micro-kernel broadcasts A straight
 * from its rows (op(A)[i][k] = a_i[k * ak]) and loads B rows straight from B
 * (masked at the right edge); only a transposed B sliver is copied, into a
 * stack buffer. Same k order, same fma chain and same store as kernel(), so
 * the result is bitwise that of the packed path (K <= KC_MAX: one k block). */

#if defined(GEMM_AVX512)
#define SMALL_GEMM 1

/* C[m x n] = alpha * op(A)[rows i0..] · Bs + beta * C. Rows past m reuse row
 * m - 1 (in bounds, never stored). B row k at Bs + k * bk. */
static NOINLINE void kernel_direct(int K, const float *A, size_t ai, size_t ak, int m, const float *restrict Bs, size_t bk,
                          __mmask16 m0, __mmask16 m1, float *C, int ldc, float alpha, float beta) {
#define PTR(r) const float *a##r = A + (size_t)(r < m ? r : m - 1) * ai;
    ROWS12(PTR)
#undef PTR
    ROWS12(TILE_DECL)
    size_t ka = 0;
    for (int k = 0; k < K; k++, ka += ak, Bs += bk) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, Bs), b1 = _mm512_maskz_loadu_ps(m1, Bs + 16);
#define STEP(r)                                      \
    {                                                \
        __m512 a = _mm512_set1_ps(a##r[ka]);         \
        c##r##_0 = _mm512_fmadd_ps(a, b0, c##r##_0); \
        c##r##_1 = _mm512_fmadd_ps(a, b1, c##r##_1); \
    }
        ROWS12(STEP)
#undef STEP
    }
    __m512 valpha = _mm512_set1_ps(alpha);
    ROWS12(TILE_STORE)
}

static void gemm_small(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    float Bt[SMALL_K_MAX * NR]; /* a transposed B sliver, k-major (32 KB) */
    size_t ai = transA ? 1 : (size_t)lda, ak = transA ? (size_t)lda : 1;
    for (int jr = 0; jr < N; jr += NR) {
        int n = N - jr < NR ? N - jr : NR;
        __mmask16 m0 = tile_mask(n), m1 = tile_mask(n - 16);
        const float *bs = B + jr;
        size_t bk = (size_t)ldb;
        if (transB) { /* B is (N,K): rows jr..jr+n become k-major, 16 x 16 at a time */
            for (int c0 = 0; c0 < n; c0 += 16)
                for (int k = 0; k < K; k += 16) {
                    int kw = K - k < 16 ? K - k : 16;
                    __mmask16 km = (__mmask16)((1u << kw) - 1);
                    __m512i r[16];
                    for (int c = 0; c < 16; c++)
                        r[c] = c0 + c < n ? _mm512_maskz_loadu_epi32(km, B + (size_t)(jr + c0 + c) * ldb + k)
                                          : _mm512_setzero_si512();
                    transpose16x16(r);
                    for (int i = 0; i < kw; i++) _mm512_storeu_si512((void *)(Bt + (size_t)(k + i) * NR + c0), r[i]);
                }
            bs = Bt;
            bk = NR;
        }
        for (int ir = 0; ir < M; ir += MR) {
            int m = M - ir < MR ? M - ir : MR;
            kernel_direct(K, A + (size_t)ir * ai, ai, ak, m, bs, bk, m0, m1, C + (size_t)ir * ldc + jr, ldc, alpha,
                          beta);
        }
    }
}
#endif

/* ------------------------------------------------------------------------- */
/* Serial blocked GEMM on one block of C.                                    */

/* C (M,N) of one thread. Bpre: all of B packed once by gemm_shared_b (per k
 * block of fp32_kblock(K), round_up(N, NR) columns of slivers), or NULL to
 * pack each block here. */
static int fp32_kblock(int K) { return even_block(K, KC_MAX, 1); }

/* epi on the strip of m rows from row i, columns j.. j+n, of a block whose
 * origin is row i0, column j0 of the product, once the strip's tiles are
 * final. The strip (at most 32 rows x NC_MAX) is still in cache; applied to
 * each tile right after its kernel instead, the epilogue measured slower in
 * training than the separate passes it replaces (short rows, and loads right
 * behind the kernel's stores to the same lines). */
static void strip_tail(const GemmEpilogue *epi, float *C, int ldc, int i, int j, int m, int n, int i0, int j0) {
    epi->apply(epi->ctx, C + (size_t)i * ldc + j, ldc, i0 + i, j0 + j, m, n);
}

static void gemm_rows(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc, const void *Bpre,
                      const GemmEpilogue *epi, int i0, int j0) {
    int kcb = fp32_kblock(K);
    int ncb = even_block(N, NC_MAX, NR);
    int mcb = even_block(M, MC_MAX, MR);
    int npad = round_up(N, NR);
    void *raw_a, *raw_b = NULL;
    float *Ap = scratch_alloc((size_t)round_up(mcb, MR) * kcb, &raw_a);
    float *Bp = Bpre ? NULL : scratch_alloc((size_t)round_up(ncb, NR) * kcb, &raw_b);
    for (int ic = 0; ic < M; ic += mcb) {
        int mc = M - ic < mcb ? M - ic : mcb;
        for (int pc = 0; pc < K; pc += kcb) {
            int kc = K - pc < kcb ? K - pc : kcb;
            float bt = pc == 0 ? beta : 1.0f; /* later k blocks accumulate */
            const GemmEpilogue *tail = pc + kc == K ? epi : NULL;
            pack_a(Ap, transA, A, lda, ic, mc, pc, kc);
            for (int jc = 0; jc < N; jc += ncb) {
                int nc = N - jc < ncb ? N - jc : ncb;
                const float *Bb = Bpre ? (const float *)Bpre + (size_t)pc * npad + (size_t)jc * kc : Bp;
                if (!Bpre) pack_b(Bp, transB, B, ldb, jc, nc, pc, kc);
                for (int ir = 0; ir < mc; ir += MR) {
                    int m = mc - ir < MR ? mc - ir : MR;
                    const float *a = Ap + (size_t)ir * kc;
                    for (int jr = 0; jr < nc; jr += NR) {
                        int n = nc - jr < NR ? nc - jr : NR;
                        kernel(kc, a, Bb + (size_t)jr * kc, C + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                               alpha, bt, m, n);
                    }
                    if (tail) strip_tail(tail, C, ldc, ic + ir, jc, m, nc, i0, j0);
                }
            }
        }
    }
    free(raw_a);
    free(raw_b);
}

static void pack_b_fp32(void *Bp, int transB, const float *B, int ldb, int j0, int nc, int p0, int kc) {
    pack_b((float *)Bp, transB, B, ldb, j0, nc, p0, kc);
}

/* Splits C into pm x pn blocks for nt threads (pm * pn = nt), preferring
 * splits of M (each thread then packs disjoint A and shares B's reads). */
static void thread_grid(int M, int N, int nt, int *pm, int *pn) {
    int best_m = 1, best_n = nt;
    double best = 1e300;
    for (int a = 1; a <= nt; a++) {
        if (nt % a) continue;
        int b = nt / a;
        /* cost: per-thread tile perimeter (packing) plus idle edges */
        double tm = (double)round_up(ceil_div(M, a), MR), tn = (double)round_up(ceil_div(N, b), NR);
        double cost = tm * tn * 1.0 + 0.01 * (tm + tn) * 64.0;
        if (cost < best - 1e-9) { best = cost; best_m = a; best_n = b; }
    }
    *pm = best_m;
    *pn = best_n;
}

/* Threads a GEMM called here may use: 1 inside a parallel region. */
static int threads_here(void) {
#ifdef _OPENMP
    return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

/* Threads an M x N x K product gets: those here, where it is large enough to pay for the fork. */
static int gemm_threads(int M, int N, int K) {
    return (double)M * N * K >= GEMM_PARALLEL_MIN ? threads_here() : 1;
}

/* An engine's blocked product on one block of C (M,N): the block at row i0,
 * column j0 of the product's C, so that epi (NULL: none), applied to each
 * strip of tiles once it is final, gets the strip's place in the whole.
 * Bpre: all of op(B) packed once (gemm_shared_b), or NULL to pack each block
 * here. */
typedef void (*BlockFn)(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc, const void *Bpre,
                        const GemmEpilogue *epi, int i0, int j0);

/* Runs fn on the disjoint blocks of C, in parallel where that pays. */
static void gemm_dispatch(BlockFn fn, int mr, int nr, int transA, int transB, int M, int N, int K, float alpha,
                          const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                          const GemmEpilogue *epi) {
    int nt = gemm_threads(M, N, K);
    if (nt <= 1) {
        fn(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL, epi, 0, 0);
        return;
    }
    int pm, pn;
    thread_grid(M, N, nt, &pm, &pn);
    /* block sizes rounded to the micro-tile so only the last block is ragged */
    int bm = round_up(ceil_div(M, pm), mr), bn = round_up(ceil_div(N, pn), nr);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int t = 0; t < pm * pn; t++) {
        int i0 = (t / pn) * bm, j0 = (t % pn) * bn;
        if (i0 >= M || j0 >= N) continue;
        int m = M - i0 < bm ? M - i0 : bm, n = N - j0 < bn ? N - j0 : bn;
        const float *a = transA ? A + i0 : A + (size_t)i0 * lda;
        const float *b = transB ? B + (size_t)j0 * ldb : B + j0;
        fn(transA, transB, m, n, K, alpha, a, lda, b, ldb, beta, C + (size_t)i0 * ldc + j0, ldc, NULL, epi, i0, j0);
    }
}

/* ---- one packing of B shared by the threads ----
 * Threads that split M all need the whole of B: packing it per thread packs it
 * once per thread. Here each packs every nt-th sliver of all of B into one
 * panel, a barrier, then each multiplies its rows against the whole.
 * An engine's packed B is a run of 32-bit units (an fp32 value, or a k pair of
 * bf16 values): per k block of kblock(K), round_up(N, nr) columns of slivers
 * of ceil(kc / kunit) units each. */
typedef struct {
    int mr, nr, kunit;
    int (*kblock)(int K);
    void (*pack_b)(void *Bp, int transB, const float *B, int ldb, int j0, int nc, int p0, int kc);
    BlockFn rows;
} GemmEngine;

/* Packed B of at most this many bytes is shared by the threads (the MLM
 * decoder's 250k x 768 is not: it is packed block by block per thread). */
#define SHARED_B_MAX ((size_t)32 << 20)

/* Thread t of nth packs its share of all of op(B) (K,N) into Bp: every
 * nth-th sliver of every k block. */
static void pack_b_share(const GemmEngine *e, uint32_t *Bp, int transB, const float *B, int ldb, int N, int K,
                         int t, int nth) {
    int kcb = e->kblock(K), npad = round_up(N, e->nr);
    for (int pc = 0; pc < K; pc += kcb) {
        int kc = K - pc < kcb ? K - pc : kcb, ku = ceil_div(kc, e->kunit);
        uint32_t *Bk = Bp + (size_t)(pc / e->kunit) * npad;
        for (int jr = t * e->nr; jr < N; jr += nth * e->nr)
            e->pack_b(Bk + (size_t)jr * ku, transB, B, ldb, jr, N - jr < e->nr ? N - jr : e->nr, pc, kc);
    }
}

/* All of op(B) packed by engine e: units of scratch_alloc'ed memory (*raw). */
static size_t packed_units(const GemmEngine *e, int N, int K) {
    return (size_t)round_up(N, e->nr) * (size_t)ceil_div(K, e->kunit);
}

/* C (M,N) on nt threads splitting M against all of op(B) packed once: Bpre
 * when given (packed earlier), else packed here by the threads together. */
static void gemm_shared_b(const GemmEngine *e, int nt, const uint32_t *Bpre, int transA, int transB, int M, int N,
                          int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C,
                          int ldc, const GemmEpilogue *epi) {
    void *raw = NULL;
    uint32_t *mine = Bpre ? NULL : (uint32_t *)scratch_alloc(packed_units(e, N, K), &raw);
    const uint32_t *Bp = Bpre ? Bpre : mine;
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
#endif
    {
        int t = 0, nth = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nth = omp_get_num_threads();
#endif
        if (mine) {
            pack_b_share(e, mine, transB, B, ldb, N, K, t, nth);
#ifdef _OPENMP
#pragma omp barrier
#endif
        }
        int bm = round_up(ceil_div(M, nth), e->mr), i0 = t * bm;
        if (i0 < M)
            e->rows(transA, transB, M - i0 < bm ? M - i0 : bm, N, K, alpha, transA ? A + i0 : A + (size_t)i0 * lda,
                    lda, B, ldb, beta, C + (size_t)i0 * ldc, ldc, Bp, epi, i0, 0);
    }
    free(raw);
}

/* epi (or nothing, when NULL) over all of C (M,N) in one pass after the
 * product, rows split between the threads here: for the paths without tiles
 * (the small products, the quick returns, other GEMMs). */
static void epilogue_after(const GemmEpilogue *epi, float *C, int ldc, int M, int N) {
    if (!epi || M <= 0 || N <= 0) return;
    int nt = (double)M * N >= 16384.0 ? threads_here() : 1;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt)
#endif
    for (int i = 0; i < M; i += MR) epi->apply(epi->ctx, C + (size_t)i * ldc, ldc, i, 0, M - i < MR ? M - i : MR, N);
    (void)nt;
}

/* C = alpha op(A) op(B) + beta C, then epi on each strip of tiles once it
 * is final, on engine e: one shared packing of B where the threads can split
 * M and it fits, else disjoint blocks (e's rows packing their own B). */
static void gemm_run(const GemmEngine *e, int transA, int transB, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc,
                     const GemmEpilogue *epi) {
    int nt = gemm_threads(M, N, K);
    if (nt > 1 && M >= nt * e->mr && packed_units(e, N, K) * 4 <= SHARED_B_MAX)
        gemm_shared_b(e, nt, NULL, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    else
        gemm_dispatch(e->rows, e->mr, e->nr, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
}

static const GemmEngine fp32_engine = {MR, NR, 1, fp32_kblock, pack_b_fp32, gemm_rows};

/* sgemm, then epi (NULL: none). */
static void sgemm_then(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc, const GemmEpilogue *epi) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) { /* BLAS quick return: A and B are not read */
        scale_c(M, N, beta, C, ldc);
        epilogue_after(epi, C, ldc, M, N);
        return;
    }
#if defined(SMALL_GEMM)
    /* serial whatever the thread count: small products run inside the callers'
     * parallel loops (attention heads), and a fork costs more than they do */
    if (K <= SMALL_K_MAX && (double)M * N <= SMALL_MN_MAX &&
        ((double)M * N * K < GEMM_PARALLEL_MIN || threads_here() == 1)) {
        gemm_small(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        epilogue_after(epi, C, ldc, M, N);
        return;
    }
#endif
    gemm_run(&fp32_engine, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
}

void sgemm(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_then(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

/* ------------------------------------------------------------------------- */
/* BF16                                                                      */

/* fp32 -> bf16 bits, round to nearest even (NaN stays a quiet NaN). */
static inline uint16_t bf16_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* The engines sgemm_bf16 runs on, in the order tensor_set_bf16_engine names them. */
typedef enum { ENGINE_AUTO, ENGINE_AMX, ENGINE_AVX512_BF16, ENGINE_EMULATED, ENGINE_COUNT } Bf16Engine;
static const char *const engine_names[ENGINE_COUNT] = {"auto", "amx", "avx512-bf16", "emulated"};

#if defined(BF16_KERNELS)

/* The vdpbf16ps tile: 12 rows x 32 columns, as the fp32 AVX-512 kernel's. */
#define BMR 12
#define BNR 32

/* CPUID leaf 7: AVX-512 F, DQ, BW and VL (subleaf 0, EBX), AVX512_BF16
 * (subleaf 1, EAX bit 5); and the OS must save the zmm and mask registers on
 * a context switch (XCR0 bits 1, 2 and 5-7), or the instructions fault. */
static int cpu_has_avx512_bf16(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & 1u << 27)) return 0; /* OSXSAVE: xgetbv works */
    unsigned xcr0, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_hi) : "c"(0));
    (void)xcr0_hi;
    if ((xcr0 & 0xe6u) != 0xe6u) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    unsigned need = 1u << 16 | 1u << 17 | 1u << 30 | 1u << 31;
    if ((b & need) != need || a < 1) return 0; /* a: the highest subleaf */
    __get_cpuid_count(7, 1, &a, &b, &c, &d);
    return (a >> 5) & 1u;
}

/* Packed B holds k in pairs (vdpbf16ps and tdpbf16ps sum two products per lane):
 * Bp: per BNR sliver, per k pair p, per col c: one uint32 = (B[2p][c], B[2p+1][c]),
 * zero-padded to kp pairs (AMX wants kp a multiple of 16). A packs row-major
 * (pack_a_bf16), where a row's k pairs already lie side by side. Vector
 * conversions (vcvtne2ps2bf16) round to nearest even like bf16_bits and, like
 * every BF16 instruction, read denormal inputs as zero. */
/* 32 floats at lo (16) and hi (16) as 32 bf16 in one register, lo's first. */
static inline BF16_FN __m512i bf16x32(__m512 lo, __m512 hi) { return (__m512i)_mm512_cvtne2ps_pbh(hi, lo); }

/* [x0..x15 | y0..y15] (bf16) -> 16 pairs (x_j, y_j). */
static inline BF16_FN __m512i pair_up(__m512i v) {
    const __m512i ilv = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(ilv, v);
}

/* Ap: per mr-row sliver, row-major bf16 with kcp (even, >= kc) k per row:
 * element (r, k) at sliver + r * kcp + k, zero-padded rows and k. Both
 * engines read A so: AMX loads it as tiles, the vdpbf16ps kernel broadcasts a
 * row's k pair, so that A (M,K) packs by conversion alone, no transpose. */
static BF16_FN void pack_a_bf16(uint16_t *Ap, int mr, int transA, const float *A, int lda, int i0, int mc, int p0,
                                int kc, int kcp) {
    for (int ir = 0; ir < mc; ir += mr) {
        int m = mc - ir < mr ? mc - ir : mr;
        uint16_t *dst = Ap + (size_t)ir * kcp;
        if (!transA) {
            for (int r = 0; r < mr; r++) {
                uint16_t *d = dst + (size_t)r * kcp;
                int k = 0;
                if (r < m) {
                    const float *src = A + (size_t)(i0 + ir + r) * lda + p0;
                    for (; k + 32 <= kc; k += 32)
                        _mm512_storeu_si512((void *)(d + k), bf16x32(_mm512_loadu_ps(src + k), _mm512_loadu_ps(src + k + 16)));
                    for (; k < kc; k++) d[k] = bf16_bits(src[k]);
                }
                for (; k < kcp; k++) d[k] = 0;
            }
            continue;
        }
        /* A is (K,M): 32 k rows x 16 columns at a time, transposed in registers */
        for (int r0 = 0; r0 < mr; r0 += 16) {
            int rows = mr - r0 < 16 ? mr - r0 : 16;                     /* rows of the sliver */
            int w = m - r0 < 0 ? 0 : m - r0 < rows ? m - r0 : rows; /* of them, valid */
            __mmask16 mask = tile_mask(w);
            int k = 0;
            for (; k + 32 <= kc; k += 32) {
                __m512i lo[16], hi[16];
                for (int j = 0; j < 16; j++) {
                    const float *src = A + (size_t)(p0 + k + j) * lda + i0 + ir + r0;
                    lo[j] = _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, src));
                    hi[j] = _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, src + (size_t)16 * lda));
                }
                transpose16x16(lo);
                transpose16x16(hi);
                for (int i = 0; i < rows; i++)
                    _mm512_storeu_si512((void *)(dst + (size_t)(r0 + i) * kcp + k),
                                        bf16x32(_mm512_castsi512_ps(lo[i]), _mm512_castsi512_ps(hi[i])));
            }
            for (int i = 0; i < rows; i++) {
                uint16_t *d = dst + (size_t)(r0 + i) * kcp;
                for (int kk = k; kk < kcp; kk++)
                    d[kk] = i < w && kk < kc ? bf16_bits(A[(size_t)(p0 + kk) * lda + i0 + ir + r0 + i]) : 0;
            }
        }
    }
}

/* Bp with kp = kcp / 2 pairs (kcp even, >= kc); both engines use this layout. */
static BF16_FN void pack_b_bf16(uint32_t *Bp, int transB, const float *B, int ldb, int j0, int nc, int p0, int kc,
                                int kcp) {
    int kp = kcp / 2;
    for (int jr = 0; jr < nc; jr += BNR) {
        int n = nc - jr < BNR ? nc - jr : BNR;
        uint32_t *dst = Bp + (size_t)jr * kp;
        if (!transB) { /* rows 2p and 2p+1 of B (K,N): 32 columns, paired */
            __mmask16 m0 = tile_mask(n), m1 = tile_mask(n - 16);
            for (int p = 0; p < kp; p++) {
                uint32_t *d = dst + (size_t)p * BNR;
                const float *r0 = B + (size_t)(p0 + 2 * p) * ldb + j0 + jr, *r1 = r0 + ldb;
                int has0 = 2 * p < kc, has1 = 2 * p + 1 < kc;
                for (int c = 0; c < BNR; c += 16) {
                    __mmask16 mk = c ? m1 : m0;
                    __m512 x = has0 ? _mm512_maskz_loadu_ps(mk, r0 + c) : _mm512_setzero_ps();
                    __m512 y = has1 ? _mm512_maskz_loadu_ps(mk, r1 + c) : _mm512_setzero_ps();
                    _mm512_storeu_si512((void *)(d + c), pair_up(bf16x32(x, y)));
                }
            }
            continue;
        }
        /* B (N,K): column c's k are contiguous, 32 of them are 16 pairs; 16
         * columns of pairs are transposed into 16 rows of the sliver */
        for (int c0 = 0; c0 < BNR; c0 += 16) {
            int k = 0;
            for (; k + 32 <= kc; k += 32) {
                __m512i v[16];
                for (int i = 0; i < 16; i++) {
                    const float *src = B + (size_t)(j0 + jr + c0 + i) * ldb + p0 + k;
                    v[i] = c0 + i < n ? bf16x32(_mm512_loadu_ps(src), _mm512_loadu_ps(src + 16)) : _mm512_setzero_si512();
                }
                transpose16x16(v);
                for (int i = 0; i < 16; i++) _mm512_storeu_si512((void *)(dst + (size_t)(k / 2 + i) * BNR + c0), v[i]);
            }
            for (; k < kcp; k += 2)
                for (int c = c0; c < c0 + 16; c++) {
                    uint32_t v = 0;
                    if (c < n && k < kc) {
                        const float *src = B + (size_t)(j0 + jr + c) * ldb + p0;
                        v = bf16_bits(src[k]);
                        if (k + 1 < kc) v |= (uint32_t)bf16_bits(src[k + 1]) << 16;
                    }
                    dst[(size_t)(k / 2) * BNR + c] = v;
                }
        }
    }
}

/* A row's k pair (two bf16) as one 32-bit lane; memcpy, as Ap holds uint16_t. */
static inline uint32_t bf16_pair(const uint16_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Ap: BMR rows of 2 kp bf16 (pack_a_bf16 with kcp = 2 kp); Bp: kp pairs x BNR. */
static NOINLINE BF16_FN void kernel_bf16(int kp, const uint16_t *restrict Ap, const uint32_t *restrict Bp, float *C,
                                         int ldc, float alpha, float beta, int m, int n) {
    ROWS12(TILE_DECL)
    const size_t s = (size_t)2 * kp;
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_load_si512((const void *)Bp);
        __m512bh b1 = (__m512bh)_mm512_load_si512((const void *)(Bp + 16));
#define STEP(r)                                                               \
    {                                                                         \
        __m512bh a = (__m512bh)_mm512_set1_epi32((int)bf16_pair(Ap + r * s)); \
        c##r##_0 = _mm512_dpbf16_ps(c##r##_0, a, b0);                         \
        c##r##_1 = _mm512_dpbf16_ps(c##r##_1, a, b1);                         \
    }
        ROWS12(STEP)
#undef STEP
        Ap += 2;
        Bp += BNR;
    }
    __m512 valpha = _mm512_set1_ps(alpha);
    __mmask16 m0 = tile_mask(n), m1 = tile_mask(n - 16);
    ROWS12(TILE_STORE)
}

/* k per block of a bf16 product: pairs make a bf16 sliver half the bytes of
 * an fp32 one, so twice the k of the fp32 blocks. */
static int kblock_bf16(int K) { return even_block(K, 2 * KC_MAX, 2); }

/* C (M,N) of one thread. Bpre: all of B packed once by gemm_shared_b (per k
 * block of kblock_bf16(K), round_up(N, BNR) columns of slivers), or NULL to
 * pack each block here. */
static BF16_FN void gemm_rows_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A,
                                   int lda, const float *B, int ldb, float beta, float *C, int ldc,
                                   const void *Bpre, const GemmEpilogue *epi, int i0, int j0) {
    int kcb = kblock_bf16(K);
    int ncb = even_block(N, NC_MAX, BNR);
    int mcb = even_block(M, MC_MAX, BMR);
    int kpb = kcb / 2, npad = round_up(N, BNR);
    void *raw_a, *raw_b = NULL;
    uint16_t *Ap = (uint16_t *)scratch_alloc((size_t)round_up(mcb, BMR) * kpb, &raw_a);
    uint32_t *Bp = Bpre ? NULL : (uint32_t *)scratch_alloc((size_t)round_up(ncb, BNR) * kpb, &raw_b);
    for (int ic = 0; ic < M; ic += mcb) {
        int mc = M - ic < mcb ? M - ic : mcb;
        for (int pc = 0; pc < K; pc += kcb) {
            int kc = K - pc < kcb ? K - pc : kcb, kp = (kc + 1) / 2;
            float bt = pc == 0 ? beta : 1.0f;
            const GemmEpilogue *tail = pc + kc == K ? epi : NULL;
            pack_a_bf16(Ap, BMR, transA, A, lda, ic, mc, pc, kc, 2 * kp);
            for (int jc = 0; jc < N; jc += ncb) {
                int nc = N - jc < ncb ? N - jc : ncb;
                const uint32_t *Bb = Bpre ? (const uint32_t *)Bpre + (size_t)(pc / 2) * npad + (size_t)jc * kp : Bp;
                if (!Bpre) pack_b_bf16(Bp, transB, B, ldb, jc, nc, pc, kc, 2 * kp);
                for (int ir = 0; ir < mc; ir += BMR) {
                    int m = mc - ir < BMR ? mc - ir : BMR;
                    for (int jr = 0; jr < nc; jr += BNR) {
                        int n = nc - jr < BNR ? nc - jr : BNR;
                        kernel_bf16(kp, Ap + (size_t)ir * 2 * kp, Bb + (size_t)jr * kp,
                                    C + (size_t)(ic + ir) * ldc + jc + jr, ldc, alpha, bt, m, n);
                    }
                    if (tail) strip_tail(tail, C, ldc, ic + ir, jc, m, nc, i0, j0);
                }
            }
        }
    }
    free(raw_a);
    free(raw_b);
}

static BF16_FN void pack_b_bf16_units(void *Bp, int transB, const float *B, int ldb, int j0, int nc, int p0,
                                      int kc) {
    pack_b_bf16((uint32_t *)Bp, transB, B, ldb, j0, nc, p0, kc, round_up(kc, 2));
}

static const GemmEngine avx512_bf16_engine = {BMR, BNR, 2, kblock_bf16, pack_b_bf16_units, gemm_rows_bf16};

#endif /* BF16_KERNELS */

#if defined(GEMM_AMX)
/* AMX-BF16 tiles: 8 tile registers of 16 rows x 64 bytes. A 32 x 32 block of C
 * lives in tiles 0-3 (2 x 2 tiles of 16 x 16 fp32); per 32 k: A rows 0-15 and
 * 16-31 in tiles 4, 5 (16 rows x 32 bf16), B k-pairs x columns 0-15 and 16-31 in
 * tiles 6, 7 (16 k-pairs x 16 columns, pairs interleaved as pack_b_bf16 makes
 * them). tdpbf16ps does 16 x 16 x 32 multiply-adds with fp32 accumulation.
 * Linux hands out the tile state only on request (arch_prctl); without it the
 * AVX512-BF16 kernel runs instead. Compiled only where the build targets AMX
 * (-march=sapphirerapids or native there). */
#define AMX_MR 32
#define AMX_KQ 32 /* k per tile step: 16 pairs */
#define AMX_KC 512

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} AmxConfig;

static int amx_state; /* 0 not asked yet, 1 usable, -1 refused */

static int amx_usable(void) {
    int st;
#ifdef _OPENMP
#pragma omp critical(xlmr_amx_state)
#endif
    {
        if (amx_state == 0) /* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: per process */
            amx_state = syscall(SYS_arch_prctl, 0x1023, 18) == 0 ? 1 : -1;
        st = amx_state;
    }
    return st == 1;
}

/* Ap as pack_a_bf16 makes it with mr = AMX_MR: a sliver's 16-row halves are A tiles. */
static void kernel_amx(int kcp, const uint16_t *Ap, const uint32_t *Bp, float *C, int ldc, float alpha, float beta,
                       int m, int n) {
    float tmp[AMX_MR * BNR] __attribute__((aligned(64)));
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    size_t sa = (size_t)kcp * 2; /* bytes per A row */
    for (int q = 0; q < kcp; q += AMX_KQ) {
        _tile_loadd(4, Ap + q, sa);
        _tile_loadd(5, Ap + (size_t)16 * kcp + q, sa);
        _tile_loadd(6, Bp + (size_t)(q / 2) * BNR, BNR * 4);
        _tile_loadd(7, Bp + (size_t)(q / 2) * BNR + 16, BNR * 4);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, tmp, BNR * 4);
    _tile_stored(1, tmp + 16, BNR * 4);
    _tile_stored(2, tmp + 16 * BNR, BNR * 4);
    _tile_stored(3, tmp + 16 * BNR + 16, BNR * 4);
    __m512 valpha = _mm512_set1_ps(alpha);
    __mmask16 m0 = tile_mask(n), m1 = tile_mask(n - 16);
    for (int r = 0; r < m; r++) {
        store_row16(C + (size_t)r * ldc, _mm512_load_ps(tmp + r * BNR), m0, valpha, beta);
        store_row16(C + (size_t)r * ldc + 16, _mm512_load_ps(tmp + r * BNR + 16), m1, valpha, beta);
    }
}

/* A BlockFn (Bpre unused: AMX packs B per block itself). */
static void gemm_rows_amx(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc, const void *Bpre,
                          const GemmEpilogue *epi, int i0, int j0) {
    AmxConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg); /* per thread */
    int kcb = even_block(K, AMX_KC, AMX_KQ);
    int ncb = even_block(N, NC_MAX, BNR);
    int mcb = even_block(M, MC_MAX, AMX_MR);
    int kcpb = round_up(kcb, AMX_KQ);
    void *raw_a, *raw_b;
    uint16_t *Ap = (uint16_t *)scratch_alloc((size_t)round_up(mcb, AMX_MR) * kcpb / 2, &raw_a);
    uint32_t *Bp = (uint32_t *)scratch_alloc((size_t)round_up(ncb, BNR) * kcpb / 2, &raw_b);
    for (int ic = 0; ic < M; ic += mcb) {
        int mc = M - ic < mcb ? M - ic : mcb;
        for (int pc = 0; pc < K; pc += kcb) {
            int kc = K - pc < kcb ? K - pc : kcb, kcp = round_up(kc, AMX_KQ);
            float bt = pc == 0 ? beta : 1.0f;
            const GemmEpilogue *tail = pc + kc == K ? epi : NULL;
            pack_a_bf16(Ap, AMX_MR, transA, A, lda, ic, mc, pc, kc, kcp);
            for (int jc = 0; jc < N; jc += ncb) {
                int nc = N - jc < ncb ? N - jc : ncb;
                pack_b_bf16(Bp, transB, B, ldb, jc, nc, pc, kc, kcp);
                for (int ir = 0; ir < mc; ir += AMX_MR) {
                    int m = mc - ir < AMX_MR ? mc - ir : AMX_MR;
                    for (int jr = 0; jr < nc; jr += BNR) {
                        int n = nc - jr < BNR ? nc - jr : BNR;
                        kernel_amx(kcp, Ap + (size_t)ir * kcp, Bp + (size_t)jr * (kcp / 2),
                                   C + (size_t)(ic + ir) * ldc + jc + jr, ldc, alpha, bt, m, n);
                    }
                    if (tail) strip_tail(tail, C, ldc, ic + ir, jc, m, nc, i0, j0);
                }
            }
        }
    }
    free(raw_a);
    free(raw_b);
    _tile_release();
}
#endif /* GEMM_AMX */

/* The emulation: bf16-rounded copies of A and B through the fp32 kernels. */
static inline float bf16_round(float x) {
    uint32_t u = (uint32_t)bf16_bits(x) << 16;
    float y;
    memcpy(&y, &u, 4);
    return y;
}

/* Copies op(X) rounded to bf16, keeping X's layout (rows x cols, stride ld). */
static float *bf16_copy(const float *X, int rows, int cols, int ld) {
    float *y = (float *)xmalloc((size_t)rows * cols * sizeof(float));
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) y[(size_t)i * cols + j] = bf16_round(X[(size_t)i * ld + j]);
    return y;
}

static void gemm_emulated(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc, const GemmEpilogue *epi) {
    int ar = transA ? K : M, ac = transA ? M : K;
    int br = transB ? N : K, bc = transB ? K : N;
    float *a = bf16_copy(A, ar, ac, lda), *b = bf16_copy(B, br, bc, ldb);
    sgemm_then(transA, transB, M, N, K, alpha, a, ac, b, bc, beta, C, ldc, epi);
    free(a);
    free(b);
}

/* Whether engine e can run here: compiled in, and the CPU (and for AMX, Linux) allow it. */
static int engine_usable(Bf16Engine e) {
    switch (e) {
#if defined(GEMM_AMX)
    case ENGINE_AMX: return amx_usable();
#endif
#if defined(BF16_KERNELS)
    case ENGINE_AVX512_BF16: return cpu_has_avx512_bf16();
#endif
    case ENGINE_EMULATED: return 1;
    default: return 0;
    }
}

/* The best engine (asked once: CPUID traps to the hypervisor in a VM) and the
 * one tensor_set_bf16_engine forced, if any. */
static Bf16Engine engine_best, engine_forced;

static Bf16Engine engine_auto(void) {
    if (!engine_best) {
#ifdef _OPENMP
#pragma omp critical(xlmr_bf16_engine)
#endif
        for (Bf16Engine e = ENGINE_AMX; !engine_best; e++)
            if (engine_usable(e)) engine_best = e;
    }
    return engine_best;
}

static Bf16Engine engine_now(void) { return engine_forced ? engine_forced : engine_auto(); }

int tensor_has_bf16(void) { return engine_auto() != ENGINE_EMULATED; }

const char *tensor_bf16_engine(void) { return engine_names[engine_now()]; }

int tensor_set_bf16_engine(const char *name) {
    for (int e = ENGINE_AUTO; e < ENGINE_COUNT; e++)
        if (!strcmp(name, engine_names[e])) {
            if (e != ENGINE_AUTO && !engine_usable((Bf16Engine)e)) return -1;
            engine_forced = (Bf16Engine)e;
            return 0;
        }
    return -1;
}

/* sgemm_bf16, then epi (NULL: none). */
static void sgemm_bf16_then(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                            const float *B, int ldb, float beta, float *C, int ldc, const GemmEpilogue *epi) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        epilogue_after(epi, C, ldc, M, N);
        return;
    }
    switch (engine_now()) {
#if defined(GEMM_AMX)
    case ENGINE_AMX:
        gemm_dispatch(gemm_rows_amx, AMX_MR, BNR, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc,
                      epi);
        return;
#endif
#if defined(BF16_KERNELS)
    case ENGINE_AVX512_BF16:
        gemm_run(&avx512_bf16_engine, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
        return;
#endif
    default: gemm_emulated(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    }
}

void sgemm_bf16(int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm_bf16_then(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void sgemm_fused(GemmFn g, int transA, int transB, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const GemmEpilogue *epi) {
    if (g == sgemm) {
        sgemm_then(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    } else if (g == sgemm_bf16) {
        sgemm_bf16_then(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, epi);
    } else {
        g(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        epilogue_after(epi, C, ldc, M, N);
    }
}

struct Bf16Packed {
    Bf16Engine engine; /* the one that packed it; another one packs from B per product */
    int transB, N, K, ldb;
    const float *B;
    uint32_t *panel; /* all of op(B) in the engine's layout, or NULL */
    void *raw;
};

Bf16Packed *sgemm_bf16_pack_b(int transB, int N, int K, const float *B, int ldb) {
    Bf16Packed *p = xcalloc(1, sizeof *p);
    *p = (Bf16Packed){.engine = engine_now(), .transB = transB, .N = N, .K = K, .ldb = ldb, .B = B};
#if defined(BF16_KERNELS)
    if (p->engine == ENGINE_AVX512_BF16 && N > 0 && K > 0) {
        const GemmEngine *e = &avx512_bf16_engine;
        p->panel = (uint32_t *)scratch_alloc(packed_units(e, N, K), &p->raw);
        int nt = threads_here();
#ifdef _OPENMP
#pragma omp parallel num_threads(nt)
        pack_b_share(e, p->panel, transB, B, ldb, N, K, omp_get_thread_num(), omp_get_num_threads());
#else
        pack_b_share(e, p->panel, transB, B, ldb, N, K, 0, 1);
#endif
    }
#endif
    return p;
}

void sgemm_bf16_packed(int transA, int M, int N, int K, float alpha, const float *A, int lda, const Bf16Packed *B,
                       float beta, float *C, int ldc, const GemmEpilogue *epi) {
    if (N != B->N || K != B->K) die("sgemm_bf16_packed: a %dx%d product with B packed as %dx%d", K, N, B->K, B->N);
#if defined(BF16_KERNELS)
    if (B->panel && engine_now() == B->engine && M > 0 && N > 0 && alpha != 0.0f) {
        const GemmEngine *e = &avx512_bf16_engine;
        int nt = gemm_threads(M, N, K);
        if (M < nt * e->mr) nt = M / e->mr > 1 ? M / e->mr : 1;
        if (nt > 1)
            gemm_shared_b(e, nt, B->panel, transA, B->transB, M, N, K, alpha, A, lda, NULL, 0, beta, C, ldc, epi);
        else
            e->rows(transA, B->transB, M, N, K, alpha, A, lda, NULL, 0, beta, C, ldc, B->panel, epi, 0, 0);
        return;
    }
#endif
    sgemm_bf16_then(transA, B->transB, M, N, K, alpha, A, lda, B->B, B->ldb, beta, C, ldc, epi);
}

void sgemm_bf16_packed_free(Bf16Packed *B) {
    if (!B) return;
    free(B->raw);
    free(B);
}

const char *tensor_backend(void) {
#if defined(GEMM_AVX512)
#define BK_ISA "avx512"
#elif defined(GEMM_AVX2)
#define BK_ISA "avx2"
#else
#define BK_ISA "scalar"
#endif
#ifdef _OPENMP
    return BK_ISA "+openmp";
#else
    return BK_ISA;
#endif
}
