/* train.c: fine-tuning with gradient caching, dev evaluation, atomic
 * checkpoints and exact resume (see train.h; `xlmr train` is cmd_train.c). */
#include "train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "encode.h"
#include "eval.h"
#include "loss.h"
#include "optim.h"
#include "tensor.h"
#include "tokenizer.h"
#include "json.h"
#include "util.h"

/* OpenMP pragmas that vanish without -fopenmp (no unknown-pragma warnings) */

void train_options_default(TrainOptions *o) {
    memset(o, 0, sizeof *o);
    o->sampling = SAMPLING_HYBRID;
    o->alpha = 0.5;
    o->batch = 100;
    o->steps = 0;
    o->epochs = 1;
    o->lr = 3e-5;
    o->warmup = 0.1;
    o->weight_decay = 0.01;
    o->max_grad_norm = 1.0;
    o->temperature = 0.05;
    o->pooling = POOL_MEAN;
    o->max_len_query = 64;
    o->max_len_passage = 256;
    o->chunk = 16;
    o->keep = 2;
    o->save_every = 200;
    o->seed = 1;
    o->query_prefix = "Query: ";
    o->passage_prefix = "Passage: ";
}

void train_report_free(TrainReport *r) {
    free(r->final_dir);
    free(r->best_dir);
    r->final_dir = r->best_dir = NULL;
}

/* ------------------------------------------------------------------------- */
/* One batch with gradient caching                                           */

typedef struct {
    int start, n;
} Chunk;

/* Pads the sequences ord[start..start+n) into pad (n,T) and returns T (the longest). */
static int pad_chunk(int *pad, const int *const *ids, const int *lens, const int *ord, int start, int n, int pad_id) {
    int T = 1;
    for (int i = 0; i < n; i++)
        if (lens[ord[start + i]] > T) T = lens[ord[start + i]];
    for (int i = 0; i < n; i++) {
        int k = ord[start + i];
        for (int t = 0; t < T; t++) pad[(size_t)i * T + t] = t < lens[k] ? ids[k][t] : pad_id;
    }
    return T;
}

/* ord[lo..hi) = lo..hi-1 sorted by length, longest first (stable): chunks of
 * similar lengths waste little on padding. */
static void sort_by_len(int *ord, const int *lens, int lo, int hi) {
    for (int i = lo; i < hi; i++) {
        int k = i;
        for (; k > lo && lens[ord[k - 1]] < lens[i]; k--) ord[k] = ord[k - 1];
        ord[k] = i;
    }
}

double train_batch_step(Xlmr *m, XlmrActs *a, const int *const *ids, const int *lens, int B, int N, int chunk,
                        int pooling, float tau, const XlmrDropout *dropout) {
    const int C = m->cfg.hidden;
    size_t row = (size_t)C * sizeof(float);
    int Tmax = 1;
    for (int i = 0; i < N; i++)
        if (lens[i] > Tmax) Tmax = lens[i];
    /* queries and passages are chunked separately (their lengths differ), each
     * in order of length; row r of the sorted order keys its dropout masks */
    int *ord = xmalloc((size_t)N * sizeof(int));
    sort_by_len(ord, lens, 0, B);
    sort_by_len(ord, lens, B, N);
    Chunk *ch = xmalloc((size_t)(N / chunk + 3) * sizeof(Chunk));
    int nch = 0;
    for (int s = 0; s < B; s += chunk) ch[nch++] = (Chunk){s, B - s < chunk ? B - s : chunk};
    for (int s = B; s < N; s += chunk) ch[nch++] = (Chunk){s, N - s < chunk ? N - s : chunk};
    float *emb = xmalloc((size_t)N * row);              // (N,C) in batch order
    float *demb = xmalloc((size_t)N * row);             // (N,C) in batch order
    float *buf = xmalloc((size_t)chunk * row);          // (chunk,C) in sorted order
    int *pad = xmalloc((size_t)chunk * Tmax * sizeof(int));
    XlmrDropout dr = {0, 0, 0};
    if (dropout) dr = *dropout;
    /* pass 1: embeddings only; activations live for one chunk */
    for (int k = 0; k < nch; k++) {
        int T = pad_chunk(pad, ids, lens, ord, ch[k].start, ch[k].n, m->cfg.pad_id);
        dr.seq_base = ch[k].start;
        xlmr_forward(m, a, buf, pad, ch[k].n, T, pooling, &dr);
        for (int i = 0; i < ch[k].n; i++) memcpy(emb + (size_t)ord[ch[k].start + i] * C, buf + (size_t)i * C, row);
    }
    double loss = infonce_forward_backward(demb, demb + (size_t)B * C, emb, emb + (size_t)B * C, B, N - B, C, tau);
    /* pass 2, last chunk first: its activations are still in a, so it needs no re-run */
    for (int k = nch - 1; k >= 0; k--) {
        if (k != nch - 1) {
            int T = pad_chunk(pad, ids, lens, ord, ch[k].start, ch[k].n, m->cfg.pad_id);
            dr.seq_base = ch[k].start;
            xlmr_forward(m, a, buf, pad, ch[k].n, T, pooling, &dr);
        }
        for (int i = 0; i < ch[k].n; i++) memcpy(buf + (size_t)i * C, demb + (size_t)ord[ch[k].start + i] * C, row);
        xlmr_backward(m, a, buf);
    }
    free(ord);
    free(ch);
    free(emb);
    free(demb);
    free(buf);
    free(pad);
    return loss;
}

/* ------------------------------------------------------------------------- */
/* Dev metrics                                                               */

double pairs_map(const TrainData *d, const float *q, const float *p, int C) {
    const int n = d->n_rows, QB = 64;
    float *s = xmalloc((size_t)QB * n * sizeof(float));
    double total = 0;
    for (int q0 = 0; q0 < n; q0 += QB) {
        int nq = n - q0 < QB ? n - q0 : QB;
        sgemm(0, 1, nq, n, C, 1.0f, q + (size_t)q0 * C, C, p, C, 0.0f, s, n); // (nq,n) cosine
        double block = 0;
        OMP(omp parallel for reduction(+ : block) schedule(dynamic))
        for (int i = 0; i < nq; i++) {
            const float *row = s + (size_t)i * n;
            int g = d->rows[q0 + i].group, r0 = d->group_start[g], r1 = d->group_start[g + 1];
            int ranks[64], R = r1 - r0 < 64 ? r1 - r0 : 64; /* groups beyond 64 languages: first 64 count */
            /* rank = 1 + candidates scoring higher, ties going to the earlier candidate */
            for (int k = 0; k < R; k++) {
                int j = r0 + k, rank = 1;
                float sj = row[j];
                for (int c = 0; c < n; c++) rank += row[c] > sj || (row[c] == sj && c < j);
                ranks[k] = rank;
            }
            block += eval_average_precision(ranks, R);
        }
        total += block;
    }
    free(s);
    return n ? total / n : 0.0;
}

/* ------------------------------------------------------------------------- */
/* The trainer                                                               */

typedef struct {
    IntVec *q, *p, *h; /* (n_rows) token ids; h[i].n == 0 without a hard negative */
} RowIds;

/* Options that must match for a resume to continue the same run. */
typedef struct {
    int32_t sampling, batch, total_steps, warmup, pooling, max_len_query, max_len_passage, freeze;
    double alpha, lr, weight_decay, max_grad_norm, temperature;
    uint64_t seed, prefixes, data, n_params;
} ResumeKey;

#define STATE_MAGIC 0x54535458u /* "XTST" */
#define STATE_VERSION 1
typedef struct {
    uint32_t magic, version;
    int32_t step, best_step;
    double loss_ema, best_map, best_loss, train_seconds;
    int64_t tokens;
    ResumeKey key;
} TrainerState;

typedef struct {
    const TrainOptions *o;
    TrainData data, dev;
    int have_dev;
    Sampler sampler;
    Xlmr m;
    Tokenizer *tok;
    char *src_dir, *spm;  /* the folder the model came from and its tokenizer file */
    AdamW opt;
    AdamWConfig acfg;
    XlmrActs *acts;
    RowIds ids, dev_ids;
    SamplePair *dev_pairs;
    int dev_batch, dev_nbatches;
    int total, warmup, step;
    double loss_ema, best_map, best_loss, train_seconds;
    int best_step;
    long long tokens;
    FILE *log;
    ResumeKey key;
} Trainer;

static uint64_t str_hash(const char *s, uint64_t h) {
    return hash_combine(hash_bytes(h, s, strlen(s)), 0x100);
}

static int tokenize_rows(Trainer *tr, const TrainData *d, RowIds *out) {
    const TrainOptions *o = tr->o;
    int n = d->n_rows;
    const char **texts = xmalloc((size_t)(n ? n : 1) * sizeof(char *));
    out->q = xcalloc((size_t)(n ? n : 1), sizeof(IntVec));
    out->p = xcalloc((size_t)(n ? n : 1), sizeof(IntVec));
    out->h = xcalloc((size_t)(n ? n : 1), sizeof(IntVec));
    int rc = 0;
    for (int i = 0; i < n; i++) texts[i] = d->rows[i].query;
    rc = encode_tokenize(tr->tok, texts, n, o->query_prefix, o->max_len_query, out->q);
    for (int i = 0; i < n && rc == 0; i++) texts[i] = d->rows[i].passage;
    if (rc == 0) rc = encode_tokenize(tr->tok, texts, n, o->passage_prefix, o->max_len_passage, out->p);
    if (rc == 0 && d->n_hard) {
        /* rows without a hard negative tokenize an empty text and are reset below */
        for (int i = 0; i < n; i++) texts[i] = d->rows[i].hard ? d->rows[i].hard : "";
        rc = encode_tokenize(tr->tok, texts, n, o->passage_prefix, o->max_len_passage, out->h);
        for (int i = 0; i < n; i++)
            if (!d->rows[i].hard) out->h[i].n = 0;
    }
    free(texts);
    if (rc) return -1;
    /* ids beyond the model's table would mean a tokenizer of another model */
    for (int i = 0; i < n; i++) {
        const IntVec *v[3] = {&out->q[i], &out->p[i], &out->h[i]};
        for (int k = 0; k < 3; k++)
            for (size_t t = 0; t < v[k]->n; t++)
                if (v[k]->data[t] < 0 || v[k]->data[t] >= tr->m.cfg.vocab)
                    return xerr("%s: the tokenizer gives id %d, outside the model's vocabulary of %d", tr->src_dir,
                                v[k]->data[t], tr->m.cfg.vocab);
    }
    return 0;
}

static void row_ids_free(RowIds *r, int n) {
    for (int i = 0; r->q && i < n; i++) {
        iv_free(&r->q[i]);
        iv_free(&r->p[i]);
        iv_free(&r->h[i]);
    }
    free(r->q);
    free(r->p);
    free(r->h);
    memset(r, 0, sizeof *r);
}

/* The sequences of one batch: queries, positive passages, then hard negatives. */
static int gather(const TrainData *d, const RowIds *ids, const SamplePair *pairs, int B, const int **seq, int *lens) {
    int N = 2 * B;
    for (int i = 0; i < B; i++) {
        seq[i] = ids->q[pairs[i].qrow].data;
        lens[i] = (int)ids->q[pairs[i].qrow].n;
        seq[B + i] = ids->p[pairs[i].prow].data;
        lens[B + i] = (int)ids->p[pairs[i].prow].n;
    }
    for (int i = 0; i < B && d->n_hard; i++)
        if (ids->h[pairs[i].prow].n) {
            seq[N] = ids->h[pairs[i].prow].data;
            lens[N++] = (int)ids->h[pairs[i].prow].n;
        }
    return N;
}

/* Dev loss over the fixed dev batches and dev mAP, eval mode. */
static int evaluate(Trainer *tr, double *dev_loss, double *dev_map) {
    const TrainData *d = &tr->dev;
    int n = d->n_rows, C = tr->m.cfg.hidden;
    float *q = xmalloc((size_t)n * C * sizeof(float)), *p = xmalloc((size_t)n * C * sizeof(float));
    float *h = d->n_hard ? xmalloc((size_t)n * C * sizeof(float)) : NULL;
    const int **seq = xmalloc((size_t)n * sizeof(int *));
    int *lens = xmalloc((size_t)n * sizeof(int)), rc = 0;
    IntVec *sets[3] = {tr->dev_ids.q, tr->dev_ids.p, tr->dev_ids.h};
    float *outs[3] = {q, p, h};
    for (int k = 0; k < 3 && rc == 0; k++) {
        if (!outs[k]) continue;
        int cnt = 0;
        int *where = xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n; i++)
            if (sets[k][i].n) {
                seq[cnt] = sets[k][i].data;
                lens[cnt] = (int)sets[k][i].n;
                where[cnt++] = i;
            }
        float *tmp = xmalloc((size_t)(cnt ? cnt : 1) * C * sizeof(float));
        rc = xlmr_embed_ragged(&tr->m, tmp, seq, lens, cnt, 32, tr->o->pooling, NULL);
        for (int i = 0; i < cnt && rc == 0; i++) memcpy(outs[k] + (size_t)where[i] * C, tmp + (size_t)i * C, C * sizeof(float));
        free(tmp);
        free(where);
    }
    if (rc == 0) {
        int B = tr->dev_batch;
        float *bq = xmalloc((size_t)B * C * sizeof(float)), *bp = xmalloc((size_t)2 * B * C * sizeof(float));
        double sum = 0;
        for (int b = 0; b < tr->dev_nbatches; b++) {
            const SamplePair *pr = tr->dev_pairs + (size_t)b * B;
            int P = B;
            for (int i = 0; i < B; i++) {
                memcpy(bq + (size_t)i * C, q + (size_t)pr[i].qrow * C, C * sizeof(float));
                memcpy(bp + (size_t)i * C, p + (size_t)pr[i].prow * C, C * sizeof(float));
            }
            for (int i = 0; i < B && h; i++)
                if (d->rows[pr[i].prow].hard) memcpy(bp + (size_t)P++ * C, h + (size_t)pr[i].prow * C, C * sizeof(float));
            sum += infonce_forward_backward(NULL, NULL, bq, bp, B, P, C, (float)tr->o->temperature);
        }
        *dev_loss = sum / tr->dev_nbatches;
        *dev_map = pairs_map(d, q, p, C);
        free(bq);
        free(bp);
    }
    free(q);
    free(p);
    free(h);
    free(seq);
    free(lens);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Folders                                                                   */

static char *ckpt_path(const char *out, int step, const char *suffix) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s%scheckpoint-%d%s", out, out[strlen(out) - 1] == '/' ? "" : "/", step, suffix);
    return sb.data;
}

/* Step of a "checkpoint-N" name, or -1. */
static int ckpt_step(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0 || !name[11]) return -1;
    long v = 0;
    for (const char *s = name + 11; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000) return -1;
        v = v * 10 + (*s - '0');
    }
    return (int)v;
}

/* Complete checkpoints in out, ascending; removes leftover *.tmp folders (a run killed while saving). */
static int list_checkpoints(const char *out, IntVec *steps) {
    DIR *dir = opendir(out);
    if (!dir) return 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t L = strlen(e->d_name);
        if (L > 4 && !strcmp(e->d_name + L - 4, ".tmp") && !strncmp(e->d_name, "checkpoint-", 11)) {
            char *p = path_join(out, e->d_name);
            remove_tree(p);
            free(p);
            continue;
        }
        int s = ckpt_step(e->d_name);
        if (s < 0) continue;
        char *p = path_join(out, e->d_name), *st = path_join(p, "trainer_state.bin");
        if (is_dir(p) && path_exists(st)) iv_push(steps, s);
        free(p);
        free(st);
    }
    closedir(dir);
    for (size_t a = 1; a < steps->n; a++)
        for (size_t b = a; b > 0 && steps->data[b] < steps->data[b - 1]; b--) {
            int t = steps->data[b];
            steps->data[b] = steps->data[b - 1];
            steps->data[b - 1] = t;
        }
    return 0;
}

/* Replaces the folder dst by tmp: dst -> dst.old, tmp -> dst, remove dst.old.
 * A kill in between leaves dst.old, which restore_dir() puts back. */
static int swap_dir(const char *tmp, const char *dst) {
    StrBuf old = {0};
    sb_printf(&old, "%s.old", dst);
    int rc = 0;
    remove_tree(old.data);
    if (path_exists(dst) && rename(dst, old.data) != 0) rc = xerr("%s: cannot rename: %s", dst, strerror(errno));
    if (rc == 0 && rename(tmp, dst) != 0) rc = xerr("%s: cannot rename into place: %s", dst, strerror(errno));
    if (rc == 0) remove_tree(old.data);
    sb_free(&old);
    return rc;
}

static void restore_dir(const char *dst) {
    StrBuf old = {0};
    sb_printf(&old, "%s.old", dst);
    if (!path_exists(dst) && is_dir(old.data)) rename(old.data, dst);
    sb_free(&old);
}

/* Writes the model into OUT/name atomically (OUT/name.tmp, then swap). */
static int save_model_dir(Trainer *tr, const char *name) {
    char *dst = path_join(tr->o->out_dir, name);
    StrBuf tmp = {0};
    sb_printf(&tmp, "%s.tmp", dst);
    remove_tree(tmp.data);
    int rc = mkdir_p(tmp.data);
    if (rc == 0) rc = xlmr_save(&tr->m, tmp.data, tr->spm);
    if (rc == 0) rc = swap_dir(tmp.data, dst);
    if (rc == 0) fsync_dir(tr->o->out_dir);
    else remove_tree(tmp.data);
    free(dst);
    sb_free(&tmp);
    return rc;
}

static void options_json(const TrainOptions *o, int total, StrBuf *sb) {
    sb_puts(sb, "{\"model\": ");
    sb_json_string(sb, o->model_dir);
    sb_puts(sb, ", \"train\": [");
    for (int i = 0; i < o->n_train_files; i++) {
        if (i) sb_puts(sb, ", ");
        sb_json_string(sb, o->train_files[i]);
    }
    sb_puts(sb, "], \"sampling\": ");
    sb_json_string(sb, sampling_name(o->sampling));
    sb_printf(sb, ", \"alpha\": %.17g, \"batch\": %d, \"steps\": %d, \"lr\": %.17g, \"warmup\": %.17g", o->alpha,
              o->batch, total, o->lr, o->warmup);
    sb_printf(sb, ", \"weight_decay\": %.17g, \"max_grad_norm\": %.17g, \"temperature\": %.17g, \"pooling\": \"%s\"",
              o->weight_decay, o->max_grad_norm, o->temperature, o->pooling == POOL_CLS ? "cls" : "mean");
    sb_printf(sb, ", \"max_len_query\": %d, \"max_len_passage\": %d, \"chunk\": %d, \"freeze_embeddings\": %s",
              o->max_len_query, o->max_len_passage, o->chunk, o->freeze_embeddings ? "true" : "false");
    sb_printf(sb, ", \"seed\": %llu, \"query_prefix\": ", o->seed);
    sb_json_string(sb, o->query_prefix);
    sb_puts(sb, ", \"passage_prefix\": ");
    sb_json_string(sb, o->passage_prefix);
    if (o->dev_file) {
        sb_puts(sb, ", \"dev\": ");
        sb_json_string(sb, o->dev_file);
    }
    sb_puts(sb, "}\n");
}

static int save_checkpoint(Trainer *tr) {
    const char *out = tr->o->out_dir;
    char *dst = ckpt_path(out, tr->step, ""), *tmp = ckpt_path(out, tr->step, ".tmp");
    remove_tree(tmp);
    int rc = mkdir_p(tmp);
    if (rc == 0) rc = xlmr_save(&tr->m, tmp, tr->spm);
    if (rc == 0) {
        char *p = path_join(tmp, "optimizer.bin");
        rc = xlmr_adamw_save(&tr->opt, &tr->m, p);
        free(p);
    }
    if (rc == 0) {
        char *p = path_join(tmp, "trainer_state.bin");
        TrainerState st;
        memset(&st, 0, sizeof st);
        st.magic = STATE_MAGIC;
        st.version = STATE_VERSION;
        st.step = tr->step;
        st.best_step = tr->best_step;
        st.loss_ema = tr->loss_ema;
        st.best_map = tr->best_map;
        st.best_loss = tr->best_loss;
        st.train_seconds = tr->train_seconds;
        st.tokens = tr->tokens;
        st.key = tr->key;
        AtomicFile af;
        FILE *f = atomic_open(&af, p);
        if (!f) rc = -1;
        else if (fwrite(&st, sizeof st, 1, f) != 1 || sampler_state_write(&tr->sampler, f) != 0) {
            atomic_abort(&af);
            rc = xerr("%s: write failed", p);
        } else rc = atomic_commit(&af);
        free(p);
    }
    if (rc == 0) {
        char *p = path_join(tmp, "train_options.json");
        StrBuf sb = {0};
        options_json(tr->o, tr->total, &sb);
        rc = write_file_atomic(p, sb.data, sb.len);
        sb_free(&sb);
        free(p);
    }
    if (rc == 0) {
        remove_tree(dst); /* a checkpoint of the same step from an interrupted run */
        if (rename(tmp, dst) != 0) rc = xerr("%s: cannot rename into place: %s", dst, strerror(errno));
        else fsync_dir(out);
    }
    if (rc == 0) {
        /* the tokenizer file to copy from now on: the newest checkpoint's, which
         * pruning never removes (the one we started from may go) */
        free(tr->spm);
        tr->spm = path_join(dst, "sentencepiece.bpe.model");
    }
    if (rc != 0) remove_tree(tmp);
    free(dst);
    free(tmp);
    if (rc) return -1;
    /* keep the last `keep` */
    IntVec steps = {0};
    list_checkpoints(out, &steps);
    for (size_t i = 0; i + (size_t)tr->o->keep < steps.n; i++) {
        /* renamed first: a kill during the removal leaves a .tmp folder, which the
         * next start removes, never a half-deleted checkpoint */
        char *p = ckpt_path(out, steps.data[i], ""), *t = ckpt_path(out, steps.data[i], ".tmp");
        remove_tree(t);
        if (rename(p, t) == 0) remove_tree(t);
        free(p);
        free(t);
    }
    iv_free(&steps);
    return 0;
}

static int check_key(const ResumeKey *a, const ResumeKey *b, const char *name) {
#define KEY(f, opt)                                                                                         \
    if (a->f != b->f)                                                                                       \
        return xerr("%s: the checkpoint was made with another " opt " (resume with the options of the run)", \
                    name);
    KEY(sampling, "--sampling") KEY(batch, "--batch") KEY(total_steps, "--steps/--epochs") KEY(warmup, "--warmup")
    KEY(pooling, "--pooling") KEY(max_len_query, "--max-len-query") KEY(max_len_passage, "--max-len-passage")
    KEY(freeze, "--freeze-embeddings") KEY(alpha, "--alpha") KEY(lr, "--lr") KEY(weight_decay, "--weight-decay")
    KEY(max_grad_norm, "max grad norm") KEY(temperature, "--temperature") KEY(seed, "--seed")
    KEY(prefixes, "--query-prefix/--passage-prefix") KEY(data, "training data")
    KEY(n_params, "model size")
#undef KEY
    return 0;
}

static int read_state(Trainer *tr, const char *dir) {
    char *p = path_join(dir, "trainer_state.bin");
    FILE *f = fopen(p, "rb");
    int rc = 0;
    TrainerState st;
    if (!f) rc = xerr("%s: cannot open", p);
    else if (fread(&st, sizeof st, 1, f) != 1) rc = xerr("%s: truncated trainer state", p);
    else if (st.magic != STATE_MAGIC || st.version != STATE_VERSION) rc = xerr("%s: not a trainer state (magic/version)", p);
    else if (st.step < 0 || st.step > tr->total) rc = xerr("%s: step %d outside [0, %d]", p, (int)st.step, tr->total);
    else if (check_key(&st.key, &tr->key, dir)) rc = -1;
    else if (sampler_state_read(&tr->sampler, f, p)) rc = -1;
    if (rc == 0) {
        tr->step = st.step;
        tr->best_step = st.best_step;
        tr->loss_ema = st.loss_ema;
        tr->best_map = st.best_map;
        tr->best_loss = st.best_loss;
        tr->train_seconds = st.train_seconds;
        tr->tokens = st.tokens;
    }
    if (f) fclose(f);
    free(p);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Progress and log                                                          */

static double ema_value(const Trainer *tr) {
    /* bias-corrected EMA (0.95) of the training loss */
    double c = 1.0 - pow(0.95, tr->step);
    return c > 0 ? tr->loss_ema / c : NAN;
}

/* On resume: drops the log lines of steps after the checkpoint (a killed run
 * got further than its last checkpoint), so that the log reads as one run. */
static int log_truncate(const char *path, int step) {
    char *data;
    size_t len;
    if (!path_exists(path)) return 0;
    if (read_file(path, &data, &len)) return -1;
    StrBuf sb = {0};
    sb_puts(&sb, "");
    for (char *line = data; line < data + len;) {
        char *nl = memchr(line, '\n', (size_t)(data + len - line));
        char *next = nl ? nl + 1 : data + len;
        int s;
        if (nl && sscanf(line, "{\"step\": %d", &s) == 1 && s <= step) sb_append(&sb, line, (size_t)(next - line));
        line = next;
    }
    int rc = write_file_atomic(path, sb.data, sb.len);
    sb_free(&sb);
    free(data);
    return rc;
}

static void log_json(Trainer *tr, const char *line) {
    if (!tr->log) return;
    fputs(line, tr->log);
    fflush(tr->log);
}

/* ------------------------------------------------------------------------- */
/* train_run                                                                 */

static int check_options(const TrainOptions *o) {
    if (!o->model_dir) return xerr("train: no model folder given (--model)");
    if (!o->out_dir || !*o->out_dir) return xerr("train: no output folder given (--out)");
    if (o->n_train_files < 1 || !o->train_files) return xerr("train: no training file given (--train)");
    if (o->sampling < 0 || o->sampling > 3) return xerr("train: unknown sampling %d", o->sampling);
    if (!(o->alpha >= 0 && o->alpha <= 1)) return xerr("train: --alpha must be in [0,1], got %g", o->alpha);
    if (o->batch < 1) return xerr("train: --batch must be >= 1, got %d", o->batch);
    if (o->steps < 0) return xerr("train: --steps must be >= 0, got %d", o->steps);
    if (o->steps == 0 && !(o->epochs > 0 && o->epochs < 1e6)) return xerr("train: --epochs must be > 0, got %g", o->epochs);
    if (!(o->lr > 0 && o->lr < 1)) return xerr("train: --lr must be in (0,1), got %g", o->lr);
    if (!(o->warmup >= 0)) return xerr("train: --warmup must be >= 0, got %g", o->warmup);
    if (!(o->weight_decay >= 0 && o->weight_decay < 1)) return xerr("train: --weight-decay must be in [0,1), got %g", o->weight_decay);
    if (!(o->temperature > 0)) return xerr("train: --temperature must be > 0, got %g", o->temperature);
    if (o->pooling != POOL_MEAN && o->pooling != POOL_CLS) return xerr("train: unknown pooling %d", o->pooling);
    if (o->max_len_query < 3 || o->max_len_passage < 3)
        return xerr("train: --max-len-query and --max-len-passage must be >= 3 (<s>, a token, </s>)");
    if (o->chunk < 1) return xerr("train: --chunk must be >= 1, got %d", o->chunk);
    if (o->eval_every < 0 || o->save_every < 0) return xerr("train: --eval-every and --save-every must be >= 0");
    if (o->keep < 1) return xerr("train: --keep must be >= 1, got %d", o->keep);
    if (o->eval_every > 0 && !o->dev_file) return xerr("train: --eval-every needs --dev");
    if (o->stop_after < 0) return xerr("train: stop_after must be >= 0");
    if (!o->query_prefix || !o->passage_prefix) return xerr("train: prefixes must not be NULL");
    return 0;
}

static void trainer_free(Trainer *tr) {
    if (tr->log) fclose(tr->log);
    xlmr_acts_free(tr->acts);
    row_ids_free(&tr->ids, tr->data.n_rows);
    row_ids_free(&tr->dev_ids, tr->dev.n_rows);
    free(tr->dev_pairs);
    adamw_free(&tr->opt);
    if (tr->tok) tokenizer_free(tr->tok);
    xlmr_free(&tr->m);
    sampler_free(&tr->sampler);
    train_data_free(&tr->data);
    if (tr->have_dev) train_data_free(&tr->dev);
    free(tr->src_dir);
    free(tr->spm);
}

/* Dev set: loaded, tokenized later; fixed batches drawn once by the mixed sampler. */
static int setup_dev(Trainer *tr) {
    const TrainOptions *o = tr->o;
    if (train_data_load(&tr->dev, &o->dev_file, 1)) return -1;
    tr->have_dev = 1;
    tr->dev_batch = o->batch < tr->dev.n_groups ? o->batch : tr->dev.n_groups;
    tr->dev_nbatches = tr->dev.n_groups / tr->dev_batch;
    if (tr->dev_nbatches > 64) tr->dev_nbatches = 64;
    Sampler s;
    if (sampler_build(&s, &tr->dev, SAMPLING_MIXED, 0.5, tr->dev_batch, 0x5eedULL)) return -1;
    tr->dev_pairs = xmalloc((size_t)tr->dev_nbatches * tr->dev_batch * sizeof(SamplePair));
    for (int b = 0; b < tr->dev_nbatches; b++) sampler_next(&s, tr->dev_pairs + (size_t)b * tr->dev_batch);
    sampler_free(&s);
    return 0;
}

static int run_eval(Trainer *tr) {
    double dl = NAN, dm = NAN;
    if (evaluate(tr, &dl, &dm)) return -1;
    int better = tr->best_step < 0 || dm > tr->best_map;
    if (!tr->o->quiet)
        fprintf(stderr, "%sdev step %d: loss %.4f mAP %.4f%s\n", isatty(2) ? "\n" : "", tr->step, dl, dm,
                better ? " (best)" : "");
    if (tr->log) {
        StrBuf sb = {0};
        sb_printf(&sb, "{\"step\": %d, \"dev_loss\": ", tr->step);
        sb_json_number(&sb, dl);
        sb_puts(&sb, ", \"dev_map\": ");
        sb_json_number(&sb, dm);
        sb_puts(&sb, "}\n");
        log_json(tr, sb.data);
        sb_free(&sb);
    }
    if (better) {
        if (save_model_dir(tr, "best")) return -1;
        tr->best_map = dm;
        tr->best_loss = dl;
        tr->best_step = tr->step;
    }
    return 0;
}

int train_run(const TrainOptions *o, TrainReport *r) {
    memset(r, 0, sizeof *r);
    r->best_dev_map = r->best_dev_loss = NAN;
    r->best_step = -1;
    r->final_loss = NAN;
    if (check_options(o)) return -1;
    double t_start = now_seconds();
    Trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.o = o;
    tr.best_step = -1;
    tr.best_map = tr.best_loss = NAN;
    int rc = 0;
    if (train_data_load(&tr.data, o->train_files, o->n_train_files)) return -1;
    if (sampler_build(&tr.sampler, &tr.data, o->sampling, o->alpha, o->batch, o->seed)) {
        train_data_free(&tr.data);
        return -1;
    }
    tr.total = o->steps ? o->steps : (int)ceil(o->epochs * tr.data.n_groups / o->batch);
    if (tr.total < 1) tr.total = 1;
    tr.warmup = warmup_steps(o->warmup, tr.total);
    if (o->dev_file && setup_dev(&tr)) goto fail;
    if (mkdir_p(o->out_dir)) goto fail;
    {
        char *names[2] = {path_join(o->out_dir, "final"), path_join(o->out_dir, "best")};
        for (int i = 0; i < 2; i++) {
            restore_dir(names[i]);
            free(names[i]);
        }
    }
    /* where to start: the last complete checkpoint, or the model folder */
    IntVec ck = {0};
    list_checkpoints(o->out_dir, &ck);
    int last = ck.n ? ck.data[ck.n - 1] : -1;
    iv_free(&ck);
    if (last >= 0 && !o->resume) {
        xerr("%s: holds checkpoint-%d already: pass --resume to continue that run, or choose another --out",
             o->out_dir, last);
        goto fail;
    }
    tr.src_dir = last >= 0 ? ckpt_path(o->out_dir, last, "") : xstrdup(o->model_dir);
    if (last < 0 && o->resume && !o->quiet)
        fprintf(stderr, "train: %s holds no checkpoint: starting from %s\n", o->out_dir, o->model_dir);
    if (xlmr_load(&tr.m, tr.src_dir)) goto fail;
    tr.m.use_bf16 = o->use_bf16;
    if (tokenizer_load(&tr.tok, tr.src_dir)) goto fail;
    tr.spm = path_join(tr.src_dir, "sentencepiece.bpe.model");
    {
        int limit = xlmr_max_len(&tr.m.cfg);
        if (o->max_len_query > limit || o->max_len_passage > limit) {
            xerr("%s: --max-len-query %d / --max-len-passage %d exceed the model's limit of %d tokens", tr.src_dir,
                 o->max_len_query, o->max_len_passage, limit);
            goto fail;
        }
    }
    xlmr_grads_alloc(&tr.m);
    adamw_config_default(&tr.acfg);
    tr.acfg.weight_decay = (float)o->weight_decay;
    tr.key = (ResumeKey){o->sampling, o->batch, tr.total, tr.warmup, o->pooling, o->max_len_query,
                         o->max_len_passage, o->freeze_embeddings, o->alpha, o->lr, o->weight_decay,
                         o->max_grad_norm, o->temperature, o->seed,
                         str_hash(o->passage_prefix, str_hash(o->query_prefix, 0)), tr.data.fingerprint,
                         tr.m.n_params};
    if (last >= 0) {
        char *p = path_join(tr.src_dir, "optimizer.bin");
        rc = xlmr_adamw_load(&tr.opt, &tr.m, p);
        free(p);
        if (rc || read_state(&tr, tr.src_dir)) goto fail;
    } else {
        adamw_build(&tr.opt, tr.m.n_params);
    }
    if (tokenize_rows(&tr, &tr.data, &tr.ids)) goto fail;
    if (tr.have_dev && tokenize_rows(&tr, &tr.dev, &tr.dev_ids)) goto fail;
    {
        int Tmax = o->max_len_query > o->max_len_passage ? o->max_len_query : o->max_len_passage;
        tr.acts = xlmr_acts_build(&tr.m, o->chunk, Tmax);
    }
    if (o->log_file) {
        if (last >= 0 && log_truncate(o->log_file, tr.step)) goto fail;
        tr.log = fopen(o->log_file, last >= 0 ? "a" : "w");
        if (!tr.log) {
            xerr("%s: cannot write: %s", o->log_file, strerror(errno));
            goto fail;
        }
    }
    if (tr.have_dev && tr.step == 0 && run_eval(&tr)) goto fail;

    {
        const int B = o->batch;
        SamplePair *pairs = xmalloc((size_t)B * sizeof(SamplePair));
        const int **seq = xmalloc((size_t)3 * B * sizeof(int *));
        int *lens = xmalloc((size_t)3 * B * sizeof(int));
        int tty = isatty(2), first = tr.step, done_here = 0;
        double t0 = now_seconds(), last_print = 0, train_before = tr.train_seconds;
        while (tr.step < tr.total && rc == 0) {
            if (o->stop_after && done_here >= o->stop_after) break;
            double ts = now_seconds();
            int kind = sampler_next(&tr.sampler, pairs);
            int N = gather(&tr.data, &tr.ids, pairs, B, seq, lens);
            long long toks = 0;
            for (int i = 0; i < N; i++) toks += lens[i];
            int s = tr.step + 1;
            xlmr_zero_grad(&tr.m);
            XlmrDropout dr = {1, hash_combine(o->seed, (uint64_t)s), 0};
            double loss = train_batch_step(&tr.m, tr.acts, (const int *const *)seq, lens, B, N, o->chunk, o->pooling,
                                           (float)o->temperature, &dr);
            double norm = xlmr_grad_norm(&tr.m, o->freeze_embeddings);
            if (!isfinite(loss) || !isfinite(norm)) {
                /* no update: the model and the checkpoints on disk stay as they were */
                IntVec c2 = {0};
                list_checkpoints(o->out_dir, &c2);
                char *p = c2.n ? ckpt_path(o->out_dir, c2.data[c2.n - 1], "") : xstrdup("none");
                rc = xerr("step %d: the %s is %s; training stopped (last complete checkpoint: %s)", s,
                          isfinite(loss) ? "gradient norm" : "loss", isnan(isfinite(loss) ? norm : loss) ? "NaN" : "infinite", p);
                free(p);
                iv_free(&c2);
                break;
            }
            double lr = lr_schedule(s, tr.total, tr.warmup, o->lr);
            xlmr_adamw_step(&tr.m, &tr.opt, &tr.acfg, (float)lr, clip_scale(norm, o->max_grad_norm), o->freeze_embeddings);
            tr.step = s;
            done_here++;
            tr.loss_ema = 0.95 * tr.loss_ema + 0.05 * loss;
            tr.tokens += toks;
            double now = now_seconds(), dt = now - ts;
            tr.train_seconds = train_before + (now - t0);
            if (tr.log) {
                StrBuf sb = {0};
                sb_printf(&sb, "{\"step\": %d, \"kind\": \"%s\", \"loss\": ", s, batch_kind_name(kind));
                sb_json_number(&sb, loss);
                sb_puts(&sb, ", \"lr\": ");
                sb_json_number(&sb, lr);
                sb_puts(&sb, ", \"grad_norm\": ");
                sb_json_number(&sb, norm);
                sb_printf(&sb, ", \"tokens_per_s\": %.1f, \"seconds\": %.3f}\n", toks / (dt > 0 ? dt : 1e-9), dt);
                log_json(&tr, sb.data);
                sb_free(&sb);
            }
            if (o->on_step) o->on_step(o->user, s, tr.total, ema_value(&tr), lr);
            if (!o->quiet && (s == tr.total || now - last_print > (tty ? 0.25 : 5.0))) {
                char el[32], eta[32];
                double rate = (s - first) / (now - t0 + 1e-9);
                fmt_duration(el, sizeof el, now - t0);
                fmt_duration(eta, sizeof eta, (tr.total - s) / (rate > 0 ? rate : 1e-9));
                fprintf(stderr, "%strain: step %d/%d loss %.4f lr %.3g %.0f tok/s elapsed %s ETA %s%s",
                        tty ? "\r" : "", s, tr.total, ema_value(&tr), lr, toks / (dt > 0 ? dt : 1e-9), el, eta,
                        tty ? "   " : "\n");
                if (tty && s == tr.total) fputc('\n', stderr);
                last_print = now;
            }
            int at_end = s == tr.total;
            if (tr.have_dev && o->eval_every > 0 && s % o->eval_every == 0 && !at_end) rc = run_eval(&tr);
            if (rc == 0 && o->save_every > 0 && s % o->save_every == 0 && !at_end) rc = save_checkpoint(&tr);
        }
        free(pairs);
        free(seq);
        free(lens);
    }
    if (rc) goto fail;
    if (tr.step == tr.total) {
        /* the end: dev evaluation, last checkpoint, final model */
        if (tr.have_dev && tr.best_step != tr.total && run_eval(&tr)) goto fail;
        if (save_checkpoint(&tr) || save_model_dir(&tr, "final")) goto fail;
    } else if (save_checkpoint(&tr)) { /* stopped early (stop_after): resumable from here */
        goto fail;
    }
    r->steps = tr.step;
    r->train_seconds = now_seconds() - t_start;
    r->final_loss = ema_value(&tr);
    r->best_dev_map = tr.best_map;
    r->best_dev_loss = tr.best_loss;
    r->best_step = tr.best_step;
    r->final_dir = tr.step == tr.total ? path_join(o->out_dir, "final") : NULL;
    r->best_dir = tr.have_dev ? path_join(o->out_dir, "best") : NULL;
    trainer_free(&tr);
    return 0;
fail:
    trainer_free(&tr);
    return -1;
}
