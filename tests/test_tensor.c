/* tests/test_tensor.c: sgemm and sgemm_bf16 against scalar references (double
 * accumulation), and the backend the build selected. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tensor.h"
#include "test.h"
#include "util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static Rng rng;

static float *rand_buf(size_t n) {
    float *x = (float *)xmalloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(rng_uniform(&rng) * 2.0 - 1.0);
    return x;
}

/* fp32 accumulation error grows with K; relative to the result's magnitude. */
static double tol_for(int K) { return 1e-5 * sqrt(1.0 + K / 64.0); }

/* The test's own bf16 rounding (round to nearest even), independent of tensor.c. */
static float bf16_rne(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    uint32_t lsb = (u >> 16) & 1u;
    u = (u + 0x7fffu + lsb) & 0xffff0000u;
    float y;
    memcpy(&y, &u, 4);
    return y;
}

typedef void (*Gemm)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                     int);

/* Runs gemm on one case with padded strides and a guard around C, compares
 * against sgemm_ref on (optionally bf16-rounded) inputs. Returns the rel diff. */
static double run_case(Gemm gemm, int bf16, int ta, int tb, int M, int N, int K, float alpha, float beta,
                       int pad, int *guard_ok) {
    int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
    int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    size_t na = (size_t)ar * lda, nb = (size_t)br * ldb, nc = (size_t)M * ldc + 64;
    float *A = rand_buf(na), *B = rand_buf(nb), *C = rand_buf(nc), *R = (float *)xmalloc(nc * sizeof(float));
    if (beta == 0.0f) /* beta == 0 must not read C: NaNs must not leak */
        for (size_t i = 0; i < nc; i++) C[i] = NAN;
    memcpy(R, C, nc * sizeof(float));
    float *Ar = A, *Br = B;
    if (bf16) {
        Ar = (float *)xmalloc((na ? na : 1) * sizeof(float));
        Br = (float *)xmalloc((nb ? nb : 1) * sizeof(float));
        for (size_t i = 0; i < na; i++) Ar[i] = bf16_rne(A[i]);
        for (size_t i = 0; i < nb; i++) Br[i] = bf16_rne(B[i]);
    }
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    sgemm_ref(ta, tb, M, N, K, alpha, Ar, lda, Br, ldb, beta, R, ldc);
    /* compare the M x N block; everything else (stride padding, tail) untouched */
    double mag = 0, err = 0;
    *guard_ok = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            size_t ix = (size_t)i * ldc + j;
            if (j < N) {
                double d = fabs((double)C[ix] - R[ix]);
                if (!(d <= err)) err = d;
                if (fabs(R[ix]) > mag) mag = fabs(R[ix]);
            } else if (memcmp(&C[ix], &R[ix], 4) != 0) {
                *guard_ok = 0;
            }
        }
    for (size_t ix = (size_t)M * ldc; ix < nc; ix++)
        if (memcmp(&C[ix], &R[ix], 4) != 0) *guard_ok = 0;
    if (bf16) {
        free(Ar);
        free(Br);
    }
    free(A);
    free(B);
    free(C);
    free(R);
    return mag > 0 ? err / mag : err;
}

static void test_shapes(Gemm gemm, int bf16, const char *name) {
    static const int sizes[] = {1, 2, 7, 17, 33, 63, 129};
    int ns = (int)(sizeof(sizes) / sizeof(sizes[0])), fails = 0, cases = 0;
    double worst = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int a = 0; a < ns; a++)
                for (int b = 0; b < ns; b++) {
                    /* every (M,N) pair; K cycles through the sizes */
                    int M = sizes[a], N = sizes[b], K = sizes[(a + 2 * b + ta + tb) % ns];
                    float alpha = (a + b) % 3 == 0 ? 1.0f : (a % 2 ? -0.5f : 1.75f);
                    float beta = (a + b) % 4 == 0 ? 0.0f : ((a + b) % 4 == 1 ? 1.0f : 0.3f);
                    int pad = (a * 7 + b) % 5, guard;
                    double d = run_case(gemm, bf16, ta, tb, M, N, K, alpha, beta, pad, &guard);
                    cases++;
                    if (d > worst) worst = d;
                    if (!(d <= tol_for(K)) || !guard) {
                        if (fails++ < 5)
                            printf("  %s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pad=%d: rel %.3g guard %d\n",
                                   name, ta, tb, M, N, K, alpha, beta, pad, d, guard);
                    }
                }
    CHECK_REPORT(fails == 0, "%s: %d shapes (M,N in 7 sizes, 4 transposes), worst rel diff %.2g (%d failed)", name, cases,
                 worst, fails);
}

/* Shapes past the cache blocks (KC 384, NC 512, MC 1536), one per transpose. */
static void test_blocking(Gemm gemm, int bf16, const char *name) {
    static const int shapes[][3] = {{20, 600, 800}, {1600, 33, 40}, {70, 515, 389}, {40, 530, 1061}};
    for (int s = 0; s < 4; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], guard;
        int ta = s & 1, tb = s >> 1;
        double d = run_case(gemm, bf16, ta, tb, M, N, K, 0.75f, s % 2 ? 0.0f : -1.5f, 3, &guard);
        CHECK_REPORT(d <= tol_for(K) && guard, "%s ta=%d tb=%d %dx%dx%d: rel diff %.2g, guard %s", name, ta, tb,
                     M, N, K, d, guard ? "intact" : "OVERWRITTEN");
    }
}

static void test_quick_returns(void) {
    /* alpha == 0 and K == 0: C = beta C, A and B not read (NaNs there must not leak) */
    float A[4] = {NAN, NAN, NAN, NAN}, B[4] = {NAN, NAN, NAN, NAN};
    float C[4] = {1, 2, 3, 4};
    sgemm(0, 0, 2, 2, 2, 0.0f, A, 2, B, 2, 2.0f, C, 2);
    CHECK(C[0] == 2 && C[1] == 4 && C[2] == 6 && C[3] == 8, "alpha=0: C = beta C");
    float D[4] = {NAN, NAN, NAN, NAN};
    sgemm(1, 1, 2, 2, 0, 1.0f, A, 2, B, 2, 0.0f, D, 2);
    CHECK(D[0] == 0 && D[1] == 0 && D[2] == 0 && D[3] == 0, "K=0, beta=0: C zeroed");
    float E[1] = {5};
    sgemm(0, 0, 0, 1, 1, 1.0f, A, 1, B, 1, 0.0f, E, 1);
    sgemm_bf16(0, 0, 1, 0, 1, 1.0f, A, 1, B, 1, 0.0f, E, 1);
    CHECK(E[0] == 5, "M=0 / N=0 leave C alone");
}

static void test_threads(void) {
#ifdef _OPENMP
    int M = 257, N = 300, K = 1100; /* K past a bf16 k block: the shared B panel holds two */
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
    float *C1 = (float *)xmalloc((size_t)M * N * sizeof(float)), *C2 = (float *)xmalloc((size_t)M * N * sizeof(float));
    int saved = omp_get_max_threads(), same = 1;
    for (int tb = 0; tb < 2 && same; tb++)
        for (int bf = 0; bf < 2; bf++) {
            Gemm g = bf ? sgemm_bf16 : sgemm;
            omp_set_num_threads(1);
            g(0, tb, M, N, K, 1.0f, A, K, B, tb ? K : N, 0.0f, C1, N);
            omp_set_num_threads(2);
            g(0, tb, M, N, K, 1.0f, A, K, B, tb ? K : N, 0.0f, C2, N);
            if (memcmp(C1, C2, (size_t)M * N * sizeof(float)) != 0) same = 0;
        }
    omp_set_num_threads(saved);
    CHECK_REPORT(same, "1 and 2 threads give bitwise identical results (fp32 and bf16)");
    /* inside a parallel region sgemm runs serially per caller */
    int ok = 1;
    sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
#pragma omp parallel num_threads(2) reduction(&& : ok)
    {
        float *Ct = (float *)xmalloc((size_t)M * N * sizeof(float));
        sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, Ct, N);
        ok = memcmp(Ct, C1, (size_t)M * N * sizeof(float)) == 0;
        free(Ct);
    }
    CHECK_REPORT(ok, "sgemm called from inside a parallel region");
    free(A);
    free(B);
    free(C1);
    free(C2);
#else
    printf("note: built without OpenMP, thread tests skipped\n");
#endif
}

/* B packed once (sgemm_bf16_pack_b) gives bitwise what sgemm_bf16 gives, on 1
 * and 2 threads, for M below and past the threads' split, N ragged, K past a
 * k block; a handle packed by one engine still gives the current engine's
 * result after a switch (it packs from B then). */
static void test_packed(const char *engine) {
    static const int shapes[][3] = {{5, 33, 40}, {30, 300, 1100}, {257, 48, 200}, {64, 96, 64}};
    int same = 1, cases = 0;
#ifdef _OPENMP
    int saved = omp_get_max_threads();
#endif
    for (int s = 0; s < 4; s++)
        for (int tr = 0; tr < 4; tr++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = tr & 1, tb = tr >> 1;
            int lda = ta ? M : K, ldb = tb ? K : N;
            float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
            float *C1 = rand_buf((size_t)M * N), *C2 = (float *)xmalloc((size_t)M * N * sizeof(float));
            memcpy(C2, C1, (size_t)M * N * sizeof(float));
            float beta = s % 2 ? 0.5f : 0.0f;
            Bf16Packed *p = sgemm_bf16_pack_b(tb, N, K, B, ldb);
#ifdef _OPENMP
            omp_set_num_threads(1 + (tr + s) % 2);
#endif
            sgemm_bf16(ta, tb, M, N, K, 1.25f, A, lda, B, ldb, beta, C1, N);
            sgemm_bf16_packed(ta, M, N, K, 1.25f, A, lda, p, beta, C2, N, NULL);
            same &= memcmp(C1, C2, (size_t)M * N * sizeof(float)) == 0;
            cases++;
            if (s == 1 && tr == 1) { /* the engine switched under the handle */
                tensor_set_bf16_engine("emulated");
                sgemm_bf16(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C1, N);
                sgemm_bf16_packed(ta, M, N, K, 1.0f, A, lda, p, 0.0f, C2, N, NULL);
                same &= memcmp(C1, C2, (size_t)M * N * sizeof(float)) == 0;
                tensor_set_bf16_engine(engine);
            }
            sgemm_bf16_packed_free(p);
            free(A), free(B), free(C1), free(C2);
        }
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    CHECK_REPORT(same, "sgemm_bf16_packed[%s]: %d shapes x transposes bitwise equal to sgemm_bf16", engine, cases);
}

/* An epilogue that depends on the element's place (so a block handed over at
 * the wrong (i, j) shows) and counts how often each element was visited. */
typedef struct {
    int ldc;
    int *visits; /* (M, ldc) */
} Mark;

static void mark_apply(const void *ctx, float *c, int ldc, int i, int j, int m, int n) {
    const Mark *mk = (const Mark *)ctx;
    for (int r = 0; r < m; r++)
        for (int k = 0; k < n; k++) {
            c[(size_t)r * ldc + k] = 0.5f * c[(size_t)r * ldc + k] + (float)((i + r) * 7 + (j + k));
            mk->visits[(size_t)(i + r) * mk->ldc + j + k]++;
        }
}

/* sgemm_fused (and sgemm_bf16_packed with an epilogue) give bitwise the
 * product followed by the epilogue, visiting each element of C once and
 * nothing past it: strips of tiles inside every engine's blocked products
 * (1 and 2 threads, C split by rows or columns, shared B or not, several k
 * blocks, ragged edges), one pass after the small and the quick-return paths. */
static void test_epilogue(GemmFn g, const char *name) {
    /* {5, 600, 800} on 2 threads: C split by columns (the tiles of the second block start at j > 0) */
    static const int shapes[][3] = {{5, 33, 40}, {300, 70, 1100}, {257, 600, 200}, {64, 64, 64}, {3, 4, 0},
                                    {5, 600, 800}};
    int same = 1, once = 1, cases = 0;
#ifdef _OPENMP
    int saved = omp_get_max_threads();
#endif
    for (int s = 0; s < 6; s++)
        for (int tr = 0; tr < 4; tr++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = tr & 1, tb = tr >> 1;
            int lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 3;
            float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
            float *C1 = rand_buf((size_t)M * ldc), *C2 = (float *)xmalloc((size_t)M * ldc * sizeof(float));
            int *v1 = (int *)xcalloc((size_t)M * ldc, sizeof(int)), *v2 = (int *)xcalloc((size_t)M * ldc, sizeof(int));
            memcpy(C2, C1, (size_t)M * ldc * sizeof(float));
            float beta = s % 2 ? 0.5f : 0.0f;
            Mark m1 = {ldc, v1}, m2 = {ldc, v2};
            GemmEpilogue epi = {mark_apply, &m2};
#ifdef _OPENMP
            omp_set_num_threads(s == 5 ? 2 : 1 + (tr + s) % 2);
#endif
            g(ta, tb, M, N, K, 1.25f, A, lda, B, ldb, beta, C1, ldc);
            mark_apply(&m1, C1, ldc, 0, 0, M, N);
            if (g == sgemm_bf16 && tr < 2) { /* through a packed B */
                Bf16Packed *p = sgemm_bf16_pack_b(tb, N, K, B, ldb);
                sgemm_bf16_packed(ta, M, N, K, 1.25f, A, lda, p, beta, C2, ldc, &epi);
                sgemm_bf16_packed_free(p);
            } else {
                sgemm_fused(g, ta, tb, M, N, K, 1.25f, A, lda, B, ldb, beta, C2, ldc, &epi);
            }
            same &= memcmp(C1, C2, (size_t)M * ldc * sizeof(float)) == 0;
            once &= memcmp(v1, v2, (size_t)M * ldc * sizeof(int)) == 0;
            cases++;
            free(A), free(B), free(C1), free(C2), free(v1), free(v2);
        }
#ifdef _OPENMP
    omp_set_num_threads(saved);
#endif
    CHECK_REPORT(same && once, "%s with an epilogue: %d shapes x transposes bitwise the product then the epilogue, "
                 "each element once (%s)", name, cases, once ? "yes" : "NO");
}

/* The small-problem path (no packing, serial; K <= 256): attention's per-head
 * products on strided operands against the reference, and bitwise equality with
 * the packed path, which sgemm takes for the same shape when 2 threads may run
 * (M N K >= 128^3) while a caller inside a parallel region gets the small one. */
static void test_small(void) {
    static const int att[][2] = {{64, 64}, {7, 64}, {130, 64}, {256, 64}}; /* T, head size */
    int fails = 0, cases = 0;
    double worst = 0;
    for (int s = 0; s < 4; s++) {
        int T = att[s][0], hs = att[s][1], C = 3 * hs + 5; /* heads interleaved in rows of C */
        float *q = rand_buf((size_t)T * C), *k = rand_buf((size_t)T * C), *P = rand_buf((size_t)T * T);
        float *S = (float *)xmalloc((size_t)T * T * sizeof(float)), *R = (float *)xmalloc((size_t)T * T * sizeof(float));
        float *o = (float *)xmalloc((size_t)T * C * sizeof(float)), *ro = (float *)xmalloc((size_t)T * C * sizeof(float));
        for (int op = 0; op < 4; op++) {
            double d;
            if (op == 0) { /* scores: Q Kᵀ (NT) */
                sgemm(0, 1, T, T, hs, 0.125f, q + hs, C, k + hs, C, 0.0f, S, T);
                sgemm_ref(0, 1, T, T, hs, 0.125f, q + hs, C, k + hs, C, 0.0f, R, T);
                d = max_rel_diff(S, R, (size_t)T * T);
            } else { /* P V (NN), Pᵀ dctx (TN), and P V accumulated (beta 1) */
                int ta = op == 2;
                float beta = op == 3 ? 1.0f : 0.0f;
                for (size_t i = 0; i < (size_t)T * C; i++) o[i] = ro[i] = (float)i * 1e-4f;
                sgemm(ta, 0, T, hs, T, 1.0f, P, T, k + hs, C, beta, o + hs, C);
                sgemm_ref(ta, 0, T, hs, T, 1.0f, P, T, k + hs, C, beta, ro + hs, C);
                d = max_rel_diff(o, ro, (size_t)T * C); /* includes the other heads' columns: untouched */
            }
            cases++;
            if (d > worst) worst = d;
            if (!(d <= tol_for(T > hs ? T : hs)) && fails++ < 3) printf("  attention T=%d op %d: rel %.3g\n", T, op, d);
        }
        free(q), free(k), free(P), free(S), free(R), free(o), free(ro);
    }
    CHECK_REPORT(fails == 0, "small path: %d attention products (strided heads) match the reference, worst %.2g", cases,
                 worst);
#ifdef _OPENMP
    static const int sh[][3] = {{250, 130, 65}, {131, 257, 63}, {97, 90, 256}, {255, 255, 33}};
    int same = 1, saved = omp_get_max_threads();
    omp_set_num_threads(2);
    for (int s = 0; s < 4; s++) {
        int M = sh[s][0], N = sh[s][1], K = sh[s][2], ta = s & 1, tb = s >> 1;
        float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
        float *C1 = rand_buf((size_t)M * N), *C2 = (float *)xmalloc((size_t)M * N * sizeof(float));
        memcpy(C2, C1, (size_t)M * N * sizeof(float));
        sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 0.75f, C1, N); /* packed, 2 threads */
#pragma omp parallel num_threads(2)
#pragma omp single
        sgemm(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 0.75f, C2, N); /* small, inside a region */
        if (memcmp(C1, C2, (size_t)M * N * sizeof(float)) != 0) {
            same = 0;
            printf("  ta=%d tb=%d %dx%dx%d: small and packed paths differ\n", ta, tb, M, N, K);
        }
        free(A), free(B), free(C1), free(C2);
    }
    omp_set_num_threads(saved);
    CHECK_REPORT(same, "small path bitwise equal to the packed path (4 transposes, ragged tiles, beta 0.75)");
#endif
}

static void test_bf16_rounding(void) {
    /* halfway cases round to even: 1 + 2^-8 -> 1, 1 + 3*2^-8 -> 1 + 2^-6 */
    float a[2] = {1.0f + 1.0f / 256, 1.0f + 3.0f / 256}, b[2] = {1.0f, 1.0f}, c[4];
    sgemm_bf16(0, 0, 2, 1, 1, 1.0f, a, 1, b, 1, 0.0f, c, 1);
    CHECK_REPORT(c[0] == 1.0f && c[1] == 1.0f + 1.0f / 64, "bf16 rounds halfway to even (%.9g %.9g)", c[0], c[1]);
    /* just above halfway rounds up */
    float a2 = 1.0f + 1.0f / 256 + 1.0f / 65536;
    sgemm_bf16(0, 0, 1, 1, 1, 1.0f, &a2, 1, b, 1, 0.0f, c, 1);
    CHECK(c[0] == 1.0f + 1.0f / 128, "bf16 rounds above halfway up (%.9g)", c[0]);
    /* the error against fp32 is that of bf16 inputs: well above fp32's, below 1% */
    int M = 64, N = 96, K = 256;
    float *A = rand_buf((size_t)M * K), *B = rand_buf((size_t)K * N);
    float *C1 = (float *)xmalloc((size_t)M * N * sizeof(float)), *C2 = (float *)xmalloc((size_t)M * N * sizeof(float));
    sgemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C1, N);
    sgemm_bf16(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C2, N);
    double d = max_rel_diff(C2, C1, (size_t)M * N);
    CHECK_REPORT(d > 1e-4 && d < 1e-2, "bf16 vs fp32 rel diff %.2g (bf16 has 8 mantissa bits)", d);
    printf("note: tensor_has_bf16() = %d, bf16 engine %s, backend %s\n", tensor_has_bf16(), tensor_bf16_engine(),
           tensor_backend());
    free(A);
    free(B);
    free(C1);
    free(C2);
}

/* tensor_backend names what the build selected. */
static void test_backend(void) {
    const char *be = tensor_backend();
#ifdef _OPENMP
    CHECK(strstr(be, "+openmp") != NULL, "backend %s names openmp", be);
#else
    CHECK(strstr(be, "openmp") == NULL, "backend %s", be);
#endif
#ifdef XLMR_SCALAR_ONLY
    CHECK(strncmp(be, "scalar", 6) == 0, "XLMR_SCALAR_ONLY selects the scalar kernels, got %s", be);
    CHECK(tensor_has_bf16() == 0, "XLMR_SCALAR_ONLY has no bf16 instructions");
#endif
}

int main(void) {
    rng_seed(&rng, 1234);
    test_shapes(sgemm, 0, "sgemm");
    test_blocking(sgemm, 0, "sgemm");
    test_small();
    test_epilogue(sgemm, "sgemm");
    test_epilogue(sgemm_ref, "sgemm_ref");
    /* every bf16 engine this build and CPU run: the hardware ones where there
     * are any, and always the emulation (the path of CPUs without BF16) */
    const char *engines[] = {"amx", "avx512-bf16", "emulated"};
    int ran = 0;
    for (int e = 0; e < 3; e++) {
        if (tensor_set_bf16_engine(engines[e]) != 0) {
            printf("note: bf16 engine %s does not run here\n", engines[e]);
            continue;
        }
        char name[64];
        snprintf(name, sizeof(name), "sgemm_bf16[%s]", tensor_bf16_engine());
        CHECK(!strcmp(tensor_bf16_engine(), engines[e]), "engine %s forced, %s runs", engines[e],
              tensor_bf16_engine());
        test_shapes(sgemm_bf16, 1, name);
        test_blocking(sgemm_bf16, 1, name);
        test_bf16_rounding();
        test_threads();
        test_packed(engines[e]);
        test_epilogue(sgemm_bf16, name);
        ran++;
    }
    CHECK(ran >= 1 + tensor_has_bf16(), "%d bf16 engines tested (has_bf16 %d)", ran, tensor_has_bf16());
    CHECK(tensor_set_bf16_engine("tpu") == -1, "an unknown engine is refused");
    CHECK(tensor_set_bf16_engine("auto") == 0 && strcmp(tensor_bf16_engine(), "auto") != 0,
          "auto picks a real engine (%s)", tensor_bf16_engine());
    test_quick_returns();
    test_backend();
    return test_summary("tensor");
}
