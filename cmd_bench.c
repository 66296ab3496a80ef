/* cmd_bench.c: `xlmr bench gemm|forward|train|tokenize|memory` — the figures of
 * BENCHMARKS.md. Each prints one line per measurement and ends with a line
 * whose last words are "N GFLOPS", "N tokens/s", "N MB/s" or "N GB peak RSS"
 * (bench/compare.sh reads those). Timings are the best of --steps runs after one warm-up run
 * (the first run pays page faults and thread start-up). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "dist.h"
#include "loss.h"
#include "optim.h"
#include "tensor.h"
#include "tokenizer.h"
#include "train.h"
#include "util.h"
#include "xlmr.h"
#include "xlmr_dist.h"

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    int layers, hidden, heads, ffn, vocab, batch, seq, steps, threads, bf16;
    int chunk, seq_query, seq_passage, dense; /* memory */
    const char *size, *model, *bf16_engine;
} BenchOpts;

static void set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static float *rand_floats(Rng *r, size_t n) {
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(rng_uniform(r) * 2.0 - 1.0);
    return x;
}

/* The benchmark shapes come from xlmr_preset: "small" is the "mini" preset with
 * a 32000-token vocabulary, "base" and "large" are those presets with XLM-R's
 * vocabulary of 250002. Options
 * the user gave (> 0) win. Batch/seq defaults depend on the benchmark (memory:
 * the paper's batch of 100 pairs). */
static int apply_size(BenchOpts *o, const char *kind) {
    int small = !strcmp(o->size, "small"), large = !strcmp(o->size, "large");
    if (!small && !large && strcmp(o->size, "base"))
        return xerr("bench: --size must be small, base or large, got '%s'", o->size);
    XlmrConfig pc;
    if (xlmr_preset(&pc, small ? "mini" : o->size) != 0) return -1;
    int L = pc.n_layers, C = pc.hidden, A = pc.n_heads, F = pc.ffn, V = small ? 32000 : 250002;
    int B = !strcmp(kind, "memory") ? 100 : small ? 32 : (!strcmp(kind, "train") ? 8 : 16), T = small ? 64 : 128;
    if (o->layers <= 0) o->layers = L;
    if (o->hidden <= 0) o->hidden = C;
    if (o->heads <= 0) o->heads = A;
    if (o->ffn <= 0) o->ffn = F;
    if (o->vocab <= 0) o->vocab = V;
    if (o->batch <= 0) o->batch = B;
    if (o->seq <= 0) o->seq = T;
    if (o->steps <= 0) o->steps = 3;
    if (o->chunk <= 0) o->chunk = 16;
    if (o->seq_query <= 0) o->seq_query = 64;
    if (o->seq_passage <= 0) o->seq_passage = 256;
    if (o->vocab < 8) return xerr("bench: --vocab must be at least 8");
    if (!strcmp(kind, "memory") || !strcmp(kind, "dist")) { /* the model's positions must cover the longest sequence */
        if (o->seq_query < 2 || o->seq_passage < 2 || o->seq_query > 512 || o->seq_passage > 512)
            return xerr("bench %s: --seq-query and --seq-passage must be within [2, 512]", kind);
        o->seq = o->seq_query > o->seq_passage ? o->seq_query : o->seq_passage;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */

typedef struct {
    const char *what;
    int ta, tb, M, N, K;
} Shape;

/* Process CPU time (all threads). With one thread, best-of-runs CPU time is the
 * speed undisturbed by other processes on a shared machine. */
static double cpu_seconds(void) {
#if defined(CLOCK_PROCESS_CPUTIME_ID)
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#endif
    return (double)clock() / CLOCKS_PER_SEC;
}

/* Best wall time of reps runs after a warm-up; *cpu gets the least CPU time. */
static double time_gemm(const Shape *s, int bf16, int reps, Rng *r, double *cpu) {
    int ar = s->ta ? s->K : s->M, ac = s->ta ? s->M : s->K, br = s->tb ? s->N : s->K, bc = s->tb ? s->K : s->N;
    float *A = rand_floats(r, (size_t)ar * ac), *B = rand_floats(r, (size_t)br * bc);
    float *C = xcalloc((size_t)s->M * s->N, sizeof(float));
    double best = 1e300;
    *cpu = 1e300;
    for (int i = 0; i <= reps; i++) { /* run 0 is the warm-up */
        double c = cpu_seconds(), t = now_seconds();
        (bf16 ? sgemm_bf16 : sgemm)(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, ac, B, bc, 0.0f, C, s->N);
        t = now_seconds() - t;
        c = cpu_seconds() - c;
        if (i > 0 && t < best) best = t;
        if (i > 0 && c < *cpu) *cpu = c;
    }
    free(A);
    free(B);
    free(C);
    return best;
}

/* max |C_bf16 - C_fp32| / max |C_fp32| on inputs uniform in [-1, 1]. */
static double bf16_error(const Shape *s, Rng *r) {
    int ar = s->ta ? s->K : s->M, ac = s->ta ? s->M : s->K, br = s->tb ? s->N : s->K, bc = s->tb ? s->K : s->N;
    size_t nc = (size_t)s->M * s->N;
    float *A = rand_floats(r, (size_t)ar * ac), *B = rand_floats(r, (size_t)br * bc);
    float *C = xmalloc(nc * sizeof(float)), *D = xmalloc(nc * sizeof(float));
    sgemm(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, ac, B, bc, 0.0f, C, s->N);
    sgemm_bf16(s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, ac, B, bc, 0.0f, D, s->N);
    double err = 0, mag = 0;
    for (size_t i = 0; i < nc; i++) {
        double d = fabs((double)D[i] - C[i]);
        if (!(d <= err)) err = d;
        if (fabs(C[i]) > mag) mag = fabs(C[i]);
    }
    free(A), free(B), free(C), free(D);
    return mag > 0 ? err / mag : err;
}

/* Attention's per-head products on one thread, as the model runs them inside
 * its parallel loop over (batch, head): head slices of width hs in rows of C
 * floats. Q Kᵀ (T,T,hs) NT, P V (T,hs,T) NN, Pᵀ dctx (T,hs,T) TN. */
static void bench_attention_gemms(const BenchOpts *o, Rng *r) {
    int C = o->hidden, hs = o->hidden / (o->heads > 0 ? o->heads : 1), reps = 100;
    int saved = num_threads();
    set_threads(1);
    printf("attention per-head products, head size %d, 1 thread, best of %d x %d calls:\n", hs, o->steps, reps);
    for (int T = 64; T <= 256; T *= 2) {
        float *q = rand_floats(r, (size_t)T * C), *k = rand_floats(r, (size_t)T * C), *P = rand_floats(r, (size_t)T * T);
        float *out = xmalloc((size_t)T * (T > C ? T : C) * sizeof(float));
        static const char *names[3] = {"Q K^T NT", "P V NN", "P^T d TN"};
        for (int op = 0; op < 3; op++) {
            double best = 1e300;
            for (int i = 0; i <= o->steps; i++) {
                double t = now_seconds();
                for (int j = 0; j < reps; j++) {
                    if (op == 0) sgemm(0, 1, T, T, hs, 0.125f, q, C, k, C, 0.0f, out, T);
                    else sgemm(op == 2, 0, T, hs, T, 1.0f, P, T, k, C, 0.0f, out, C);
                }
                t = (now_seconds() - t) / reps;
                if (i > 0 && t < best) best = t;
            }
            printf("attention T %3d %-9s %9.2f us per call %9.1f GFLOPS\n", T, names[op], best * 1e6,
                   2.0 * T * T * hs / best / 1e9);
        }
        free(q), free(k), free(P), free(out);
    }
    set_threads(saved);
}

static int bench_gemm(const BenchOpts *o) {
    int Ntok = o->batch * o->seq, C = o->hidden, F = o->ffn;
    /* The model's GEMMs (PyTorch weights (out,in)): forward y = x W^T (NT),
     * backward dx = dy W (NN) and dW = dy^T x (TN); then square NN.
     * bench/torch_bench.py lists the same shapes under the same names. */
    Shape shapes[] = {
        {"fwd qkv/ao x W^T", 0, 1, Ntok, C, C}, {"fwd fc x W^T", 0, 1, Ntok, F, C},
        {"fwd fo x W^T", 0, 1, Ntok, C, F},     {"bwd dx qkv dy W", 0, 0, Ntok, C, C},
        {"bwd dx fc dy W", 0, 0, Ntok, C, F},   {"bwd dx fo dy W", 0, 0, Ntok, F, C},
        {"bwd dW qkv dy^T x", 1, 0, C, C, Ntok}, {"bwd dW fc dy^T x", 1, 0, F, C, Ntok},
        {"bwd dW fo dy^T x", 1, 0, C, F, Ntok}, {"square", 0, 0, C, C, C},
        {"square", 0, 0, 2 * C, 2 * C, 2 * C},
    };
    int ns = (int)(sizeof(shapes) / sizeof(shapes[0]));
    Rng r;
    rng_seed(&r, 1);
    printf("bench gemm: backend %s, %d threads, bf16 %s, best of %d\n", tensor_backend(), num_threads(),
           o->bf16 ? tensor_bf16_engine() : "off", o->steps);
    /* cpuGF: flops per second of process CPU time (all threads together) */
    printf("%-18s %2s %6s %6s %6s %10s %9s %9s%s\n", "shape", "op", "M", "N", "K", "ms", "GFLOPS", "cpuGF",
           o->bf16 ? "   bf16 ms  bf16 GFLOPS  speed-up  bf16 rel err" : "");
    double flops_all = 0, t_all = 0, tb_all = 0;
    for (int i = 0; i < ns; i++) {
        const Shape *s = &shapes[i];
        double fl = 2.0 * s->M * s->N * s->K;
        double cpu, t = time_gemm(s, 0, o->steps, &r, &cpu);
        flops_all += fl;
        t_all += t;
        printf("%-18s %c%c %6d %6d %6d %10.3f %9.1f %9.1f", s->what, "NT"[s->ta], "NT"[s->tb], s->M, s->N, s->K,
               t * 1e3, fl / t / 1e9, fl / cpu / 1e9);
        if (o->bf16) {
            double tb = time_gemm(s, 1, o->steps, &r, &cpu);
            tb_all += tb;
            printf(" %10.3f %12.1f %9.2fx %13.2e", tb * 1e3, fl / tb / 1e9, t / tb, bf16_error(s, &r));
        }
        printf("\n");
    }
    bench_attention_gemms(o, &r);
    if (o->bf16) printf("bf16 total: %.1f GFLOPS (%.2fx fp32)\n", flops_all / tb_all / 1e9, t_all / tb_all);
    printf("gemm total: %.1f GFLOPS\n", flops_all / t_all / 1e9);
    return 0;
}

/* ------------------------------------------------------------------------- */

static int build_model(Xlmr *m, const BenchOpts *o) {
    XlmrConfig c;
    memset(&c, 0, sizeof(c));
    c.n_layers = o->layers;
    c.hidden = o->hidden;
    c.n_heads = o->heads;
    c.ffn = o->ffn;
    c.vocab = o->vocab;
    c.max_pos = o->seq + 2 > 514 ? o->seq + 2 : 514; /* positions start at pad_id + 1 */
    c.type_vocab = 1;
    c.pad_id = 1;
    c.ln_eps = 1e-5f;
    c.hidden_dropout = 0.1f;
    c.attn_dropout = 0.1f;
    if (xlmr_config_check(&c, "bench") != 0) return -1;
    if (xlmr_build(m, &c) != 0) return -1;
    xlmr_init_random(m, 1);
    m->use_bf16 = o->bf16;
    return 0;
}

/* Random ids in [3, V): no padding, so every position costs a full token. */
static int *rand_ids(Rng *r, int n, int V) {
    int *ids = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) ids[i] = 3 + (int)rng_below(r, (uint32_t)(V - 3));
    return ids;
}

/* Multiply-adds x 2 of one encoder pass per token: the linear layers plus the
 * attention products (Q Kᵀ and P V: 2 T C each). */
static double forward_flops_per_token(const BenchOpts *o) {
    double C = o->hidden, F = o->ffn, T = o->seq;
    return o->layers * 2.0 * (4.0 * C * C + 2.0 * C * F + 2.0 * T * C);
}

static void print_model(const char *what, const Xlmr *m, const BenchOpts *o) {
    printf("bench %s: L%d H%d A%d F%d V%d, %.1fM params, batch %d x seq %d, backend %s, %d threads, GEMMs %s\n", what,
           o->layers, o->hidden, o->heads, o->ffn, o->vocab, m->n_params / 1e6, o->batch, o->seq, tensor_backend(),
           num_threads(), o->bf16 ? tensor_bf16_engine() : "fp32");
}

static int bench_forward(const BenchOpts *o) {
    Xlmr m;
    if (build_model(&m, o) != 0) return -1;
    print_model("forward", &m, o);
    Rng r;
    rng_seed(&r, 2);
    int B = o->batch, T = o->seq;
    int *ids = rand_ids(&r, B * T, o->vocab);
    float *out = xmalloc((size_t)B * o->hidden * sizeof(float));
    double best = 1e300;
    if (o->bf16) { /* once, as for every xlmr_embed_ragged (and torch's model.to(bfloat16)) */
        double t = now_seconds();
        xlmr_bf16_pack(&m);
        printf("bf16: weights packed in %.1f ms (once per model, not per batch)\n", (now_seconds() - t) * 1e3);
    }
    for (int i = 0; i <= o->steps; i++) {
        double t = now_seconds();
        if (xlmr_embed(&m, out, ids, B, T, POOL_MEAN) != 0) {
            free(ids), free(out), xlmr_free(&m);
            return -1;
        }
        t = now_seconds() - t;
        if (i > 0 && t < best) best = t;
        if (i > 0) printf("run %d: %.1f ms\n", i, t * 1e3);
    }
    double tokens = (double)B * T;
    if (o->bf16) { /* the cost of BF16: the same batch in fp32, timed the same way */
        float *ref = xmalloc((size_t)B * o->hidden * sizeof(float));
        double best32 = 1e300;
        xlmr_bf16_unpack(&m); /* packed or not, bitwise the same embeddings */
        if (xlmr_embed(&m, ref, ids, B, T, POOL_MEAN) != 0) die("bench: xlmr_embed failed");
        printf("bf16 packed weights vs packed per product: %s\n",
               memcmp(ref, out, (size_t)B * o->hidden * sizeof(float)) ? "DIFFERENT" : "bitwise identical");
        m.use_bf16 = 0;
        for (int i = 0; i <= o->steps; i++) {
            double t = now_seconds();
            if (xlmr_embed(&m, ref, ids, B, T, POOL_MEAN) != 0) {
                free(ids), free(out), free(ref), xlmr_free(&m);
                return -1;
            }
            t = now_seconds() - t;
            if (i > 0 && t < best32) best32 = t;
        }
        double maxd = 0, mincos = 1; /* rows are L2-normalised: the dot product is the cosine */
        for (int b = 0; b < B; b++) {
            double dot = 0;
            for (int c = 0; c < o->hidden; c++) {
                size_t ix = (size_t)b * o->hidden + c;
                double d = fabs((double)out[ix] - ref[ix]);
                if (!(d <= maxd)) maxd = d;
                dot += (double)out[ix] * ref[ix];
            }
            if (!(dot >= mincos)) mincos = dot;
        }
        printf("bf16 vs fp32: max |emb diff| %.2e, min cosine %.6f; fp32 %.1f ms, bf16 speed-up %.2fx\n", maxd, mincos,
               best32 * 1e3, best32 / best);
        free(ref);
    }
    printf("forward: %.1f ms per batch, %.1f GFLOPS (linear + attention products)\n", best * 1e3,
           tokens * forward_flops_per_token(o) / best / 1e9);
    printf("forward: %.0f tokens/s\n", tokens / best);
    free(ids);
    free(out);
    xlmr_free(&m);
    return 0;
}

/* One training step as train.c runs it without gradient caching: B queries and
 * B passages (seq tokens each) in one forward with dropout, InfoNCE (tau 0.05),
 * backward, gradient-norm clipping and an AdamW update. */
static int bench_train(const BenchOpts *o) {
    Xlmr m;
    if (build_model(&m, o) != 0) return -1;
    if (xlmr_grads_alloc(&m) != 0) {
        xlmr_free(&m);
        return -1;
    }
    print_model("train", &m, o);
    int B = o->batch, T = o->seq, C = o->hidden, S = 2 * B;
    Rng r;
    rng_seed(&r, 3);
    XlmrActs *acts = xlmr_acts_build(&m, S, T);
    AdamW opt;
    AdamWConfig oc;
    adamw_config_default(&oc);
    adamw_build(&opt, m.n_params);
    float *emb = xmalloc((size_t)S * C * sizeof(float)), *demb = xmalloc((size_t)S * C * sizeof(float));
    double best = 1e300, tf_best = 0, tb_best = 0, to_best = 0;
    for (int i = 0; i <= o->steps; i++) {
        int *ids = rand_ids(&r, S * T, o->vocab); /* fresh rows each step, as real batches */
        XlmrDropout drop = {1, (uint64_t)i + 1, 0};
        double t0 = now_seconds();
        xlmr_zero_grad(&m);
        xlmr_forward(&m, acts, emb, ids, S, T, POOL_MEAN, &drop);
        double loss = infonce_forward_backward(demb, demb + (size_t)B * C, emb, emb + (size_t)B * C, B, B, C, 0.05f);
        double t1 = now_seconds();
        xlmr_backward(&m, acts, demb);
        double t2 = now_seconds();
        float gs = clip_scale(xlmr_grad_norm(&m, 0), 1.0);
        xlmr_adamw_step(&m, &opt, &oc, 1e-5f, gs, 0);
        double t3 = now_seconds();
        free(ids);
        if (!isfinite(loss)) {
            free(emb), free(demb), adamw_free(&opt), xlmr_acts_free(acts), xlmr_free(&m);
            return xerr("bench train: loss is not finite");
        }
        if (i > 0)
            printf("step %d: loss %.4f, %.1f ms (forward+loss %.1f, backward %.1f, clip+adamw %.1f)\n", i, loss,
                   (t3 - t0) * 1e3, (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
        if (i > 0 && t3 - t0 < best) {
            best = t3 - t0;
            tf_best = t1 - t0;
            tb_best = t2 - t1;
            to_best = t3 - t2;
        }
    }
    double tokens = (double)S * T;
    printf("train: %.1f ms per step (forward %.1f, backward %.1f, optimizer %.1f), %.1f GFLOPS (3x forward)\n",
           best * 1e3, tf_best * 1e3, tb_best * 1e3, to_best * 1e3, 3.0 * tokens * forward_flops_per_token(o) / best / 1e9);
    printf("train: %.0f tokens/s\n", tokens / best);
    free(emb);
    free(demb);
    adamw_free(&opt);
    xlmr_acts_free(acts);
    xlmr_free(&m);
    return 0;
}

/* ------------------------------------------------------------------------- */

static double gb(size_t bytes) { return bytes / 1e9; }

/* Peak resident memory of one training step as `xlmr train` runs it: gradient
 * caching (train_batch_step: B queries of seq_query tokens and B passages of
 * seq_passage tokens, embedded `chunk` at a time with dropout, InfoNCE, then
 * each chunk again forward + backward), gradient-norm clipping and AdamW.
 * Gradients and moments are calloc'ed: untouched word-embedding rows cost no
 * memory until a batch uses them; --dense touches every page first (a long run
 * that has seen the whole vocabulary). The activations depend on chunk and the
 * longest sequence, not on B; only the (2B, C) embedding caches grow with B. */
/* ids[0..B) queries of seq_query tokens, ids[B..2B) passages of seq_passage:
 * <s> random pieces </s>, no padding (allocated here). */
static void rand_pairs(Rng *r, const BenchOpts *o, int **ids, int *lens) {
    for (int i = 0; i < 2 * o->batch; i++) {
        lens[i] = i < o->batch ? o->seq_query : o->seq_passage;
        ids[i] = xmalloc((size_t)lens[i] * sizeof(int));
        for (int t = 0; t < lens[i]; t++)
            ids[i][t] = t == 0 ? 0 : t == lens[i] - 1 ? 2 : 3 + (int)rng_below(r, (uint32_t)(o->vocab - 3));
    }
}

static int bench_memory(const BenchOpts *o) {
    Xlmr m;
    if (build_model(&m, o) != 0) return -1;
    if (xlmr_grads_alloc(&m) != 0) {
        xlmr_free(&m);
        return -1;
    }
    int B = o->batch, N = 2 * B, Tq = o->seq_query, Tp = o->seq_passage;
    print_model("memory", &m, o);
    printf("step: %d pairs, queries %d tokens, passages %d tokens, chunk %d, dropout on%s\n", B, Tq, Tp, o->chunk,
           o->dense ? ", gradients and moments touched densely" : "");
    size_t pbytes = m.n_params * sizeof(float);
    printf("parameters %.2f GB, gradients %.2f GB, AdamW moments %.2f GB (allocated)\n", gb(pbytes), gb(pbytes),
           gb(2 * pbytes));
    AdamW opt;
    AdamWConfig oc;
    adamw_config_default(&oc);
    adamw_build(&opt, m.n_params);
    if (o->dense) {
        memset(m.grads_memory, 0, pbytes);
        memset(opt.m, 0, pbytes);
        memset(opt.v, 0, pbytes);
    }
    printf("after building the model and optimizer: %.3f GB peak RSS\n", gb(peak_rss_bytes()));
    XlmrActs *acts = xlmr_acts_build(&m, o->chunk, o->seq);
    Rng r;
    rng_seed(&r, 5);
    int **ids = xmalloc((size_t)N * sizeof(int *)), *lens = xmalloc((size_t)N * sizeof(int));
    rand_pairs(&r, o, ids, lens);
    XlmrDropout drop = {1, 7, 0};
    double t0 = now_seconds();
    double loss = train_batch_step(&m, acts, (const int *const *)ids, lens, B, N, o->chunk, POOL_MEAN, 0.05f, &drop);
    double gnorm = xlmr_grad_norm(&m, 0);
    xlmr_adamw_step(&m, &opt, &oc, 1e-5f, clip_scale(gnorm, 1.0), 0);
    double t = now_seconds() - t0;
    for (int i = 0; i < N; i++) free(ids[i]);
    free(ids);
    free(lens);
    xlmr_acts_free(acts);
    adamw_free(&opt);
    xlmr_free(&m);
    if (!isfinite(loss) || !isfinite(gnorm)) return xerr("bench memory: loss or gradient norm is not finite");
    printf("step: loss %.4f, gradient norm %.3g, %.1f s\n", loss, gnorm, t);
    printf("memory: %.3f GB peak RSS\n", gb(peak_rss_bytes()));
    return 0;
}

/* The data-parallel step of `xlmr train` over the ranks of the job (xlmr-mpi
 * under mpirun -np P; one process otherwise): gradient caching with the chunks
 * spread over the ranks (train_batch_step), the gradient exchange
 * (xlmr_grads_allreduce), clipping and AdamW, on batch pairs of random tokens
 * (the same on every rank, new each step). Rank 0 prints the job's tokens/s. */
static int bench_dist(const BenchOpts *o) {
    Xlmr m;
    if (build_model(&m, o) != 0 || xlmr_grads_alloc(&m) != 0) return -1;
    int B = o->batch, N = 2 * B, P = dist_size(), me = dist_rank();
    if (me == 0) print_model("dist", &m, o);
    XlmrActs *acts = xlmr_acts_build(&m, o->chunk, o->seq);
    AdamW opt;
    AdamWConfig oc;
    adamw_config_default(&oc);
    adamw_build(&opt, m.n_params);
    Rng r;
    rng_seed(&r, 5);
    int **ids = xmalloc((size_t)N * sizeof(int *)), *lens = xmalloc((size_t)N * sizeof(int));
    double best = 1e300, tc = 0, tx = 0, loss = 0;
    for (int i = 0; i <= o->steps && isfinite(loss); i++) {
        rand_pairs(&r, o, ids, lens);
        XlmrDropout drop = {1, (uint64_t)i + 1, 0};
        dist_barrier();
        double t0 = now_seconds();
        xlmr_zero_grad(&m);
        loss = train_batch_step(&m, acts, (const int *const *)ids, lens, B, N, o->chunk, POOL_MEAN, 0.05f, &drop);
        double t1 = now_seconds();
        xlmr_grads_allreduce(&m, 1);
        double t2 = now_seconds();
        xlmr_adamw_step(&m, &opt, &oc, 1e-5f, clip_scale(xlmr_grad_norm(&m, 0), 1.0), 0);
        double t = now_seconds() - t0;
        dist_allreduce_sum_d(&t, 1); /* the job's step: the mean over the ranks */
        t /= P;
        if (i > 0 && t < best) {
            best = t;
            tc = t1 - t0;
            tx = t2 - t1;
        }
        for (int k = 0; k < N; k++) free(ids[k]);
    }
    free(ids);
    free(lens);
    xlmr_acts_free(acts);
    adamw_free(&opt);
    xlmr_free(&m);
    if (!isfinite(loss)) return xerr("bench dist: loss is not finite");
    double tokens = (double)B * (o->seq_query + o->seq_passage);
    if (me == 0)
        printf("dist: %d ranks x %d threads: %.1f ms per step (rank 0: embed+backward %.1f, exchange %.1f), "
               "%.0f tokens/s\n", P, num_threads(), best * 1e3, tc * 1e3, tx * 1e3, tokens / best);
    return 0;
}

/* ------------------------------------------------------------------------- */

static int bench_tokenize(const BenchOpts *o, const char *file) {
    Tokenizer *tok;
    if (tokenizer_load(&tok, o->model) != 0) return -1;
    char *data;
    size_t len;
    if (read_file(file, &data, &len) != 0) {
        tokenizer_free(tok);
        return -1;
    }
    /* one text per line */
    int n = 0, cap = 1024;
    const char **texts = xmalloc((size_t)cap * sizeof(char *));
    size_t *lens = xmalloc((size_t)cap * sizeof(size_t));
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && data[j] != '\n') j++;
        if (n == cap) {
            cap *= 2;
            texts = xrealloc(texts, (size_t)cap * sizeof(char *));
            lens = xrealloc(lens, (size_t)cap * sizeof(size_t));
        }
        texts[n] = data + i;
        lens[n++] = j - i;
        i = j + 1;
    }
    IntVec *outs = xcalloc(n ? (size_t)n : 1, sizeof(IntVec));
    int all = num_threads(), rc = 0;
    double mb = len / 1e6, rate = 0;
    printf("bench tokenize: %s, %d lines, %.2f MB\n", file, n, mb);
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        int nt = pass == 0 ? 1 : all;
        set_threads(nt);
        double best = 1e300;
        size_t ntok = 0;
        for (int i = 0; i <= o->steps; i++) {
            double t = now_seconds();
            if (tokenizer_encode_batch(tok, texts, lens, n, TOK_SPM, 0, outs) != 0) {
                rc = -1;
                break;
            }
            t = now_seconds() - t;
            if (i > 0 && t < best) best = t;
        }
        if (rc) break;
        for (int i = 0; i < n; i++) ntok += outs[i].n;
        rate = mb / best;
        printf("%d thread%s: %.1f ms, %.0f pieces/s, %.2f MB/s\n", nt, nt == 1 ? "" : "s", best * 1e3, ntok / best,
               rate);
    }
    set_threads(all);
    if (rc == 0) printf("tokenize: %.2f MB/s\n", rate);
    for (int i = 0; i < n; i++) iv_free(&outs[i]);
    free(outs);
    free(texts);
    free(lens);
    free(data);
    tokenizer_free(tok);
    return rc;
}

/* ------------------------------------------------------------------------- */

int cmd_bench(int argc, char **argv) {
    BenchOpts o;
    memset(&o, 0, sizeof(o));
    o.size = "base";
    Opt opts[] = {
        {"size", OPT_STR, &o.size, "small|base|large",
         "shape (default base): small = preset mini with V32000, B32 T64; base, large = those presets"},
        {"layers", OPT_INT, &o.layers, "L", "encoder layers (default from --size)"},
        {"hidden", OPT_INT, &o.hidden, "C", "hidden size (default from --size)"},
        {"heads", OPT_INT, &o.heads, "NH", "attention heads (default from --size)"},
        {"ffn", OPT_INT, &o.ffn, "F", "intermediate size (default from --size)"},
        {"vocab", OPT_INT, &o.vocab, "V", "vocabulary size (default from --size)"},
        {"batch", OPT_INT, &o.batch, "B", "sequences (train: query/passage pairs) per batch; gemm: M = B x T"},
        {"seq", OPT_INT, &o.seq, "T", "tokens per sequence (default 128, small 64)"},
        {"steps", OPT_INT, &o.steps, "N", "timed runs after one warm-up; the best is reported (default 3)"},
        {"threads", OPT_INT, &o.threads, "N", "OpenMP threads (default: all)"},
        {"bf16", OPT_FLAG, &o.bf16, NULL, "BF16 GEMMs (gemm: timed next to fp32)"},
        {"bf16-engine", OPT_STR, &o.bf16_engine, "NAME",
         "BF16 products on amx, avx512-bf16 or emulated (default auto: the best this CPU runs)"},
        {"model", OPT_STR, &o.model, "PATH", "tokenize: SentencePiece .model file or model folder"},
        {"chunk", OPT_INT, &o.chunk, "C", "memory: sequences per forward/backward chunk (default 16)"},
        {"seq-query", OPT_INT, &o.seq_query, "T", "memory: tokens per query (default 64)"},
        {"seq-passage", OPT_INT, &o.seq_passage, "T", "memory: tokens per passage (default 256)"},
        {"dense", OPT_FLAG, &o.dense, NULL, "memory: touch every page of the gradients and moments first"},
        {0},
    };
    StrList pos = {0};
    opts_parse(argc, argv, opts, "xlmr bench",
               "Measures throughput and memory: `xlmr bench gemm|forward|train|tokenize|memory [options]`.\n"
               "  gemm      the model's GEMM shapes (M = batch x seq tokens), GFLOPS\n"
               "  forward   xlmr_embed of a random model on batch x seq random ids, tokens/s\n"
               "  train     forward + InfoNCE + backward + AdamW on batch pairs, tokens/s\n"
               "  tokenize  --model PATH FILE: SentencePiece encoding of FILE's lines, MB/s\n"
               "  memory    peak RSS of one training step with gradient caching (batch pairs,\n"
               "            default 100) + clipping + AdamW, GB\n"
               "  dist      the training step of xlmr train over the ranks of mpirun -np P (xlmr-mpi),\n"
               "            gradient caching + gradient exchange + AdamW, tokens/s of the job",
               &pos);
    if (pos.n < 1) die("bench: which benchmark? gemm, forward, train, tokenize, memory or dist (see --help)");
    const char *kind = pos.v[0];
    int is_tok = !strcmp(kind, "tokenize");
    if (strcmp(kind, "gemm") && strcmp(kind, "forward") && strcmp(kind, "train") && strcmp(kind, "memory") &&
        strcmp(kind, "dist") && !is_tok)
        die("bench: unknown benchmark '%s' (gemm, forward, train, tokenize, memory, dist)", kind);
    if (pos.n != (is_tok ? 2 : 1))
        die("bench %s: %s", kind, is_tok ? "expects one FILE of text lines" : "takes no file argument");
    if (is_tok && !o.model) die("bench tokenize: --model is required");
    if (o.threads < 0 || o.layers < 0 || o.hidden < 0 || o.heads < 0 || o.ffn < 0 || o.vocab < 0 || o.batch < 0 ||
        o.seq < 0 || o.steps < 0 || o.chunk < 0 || o.seq_query < 0 || o.seq_passage < 0)
        die("bench: sizes must be positive");
    if (apply_size(&o, kind) != 0) die_xerr();
    set_threads(o.threads);
    if (o.bf16_engine && tensor_set_bf16_engine(o.bf16_engine) != 0)
        die("bench: --bf16-engine %s: not an engine this build and CPU run (amx, avx512-bf16, emulated, auto)",
            o.bf16_engine);
    int rc;
    if (!strcmp(kind, "gemm")) rc = bench_gemm(&o);
    else if (!strcmp(kind, "forward")) rc = bench_forward(&o);
    else if (!strcmp(kind, "train")) rc = bench_train(&o);
    else if (!strcmp(kind, "memory")) rc = bench_memory(&o);
    else if (!strcmp(kind, "dist")) rc = bench_dist(&o);
    else rc = bench_tokenize(&o, pos.v[1]);
    free(pos.v);
    if (rc != 0) die_xerr();
    return 0;
}
