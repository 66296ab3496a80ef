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

#include "dist.h"
#include "encode.h"
#include "eval.h"
#include "logplot.h"
#include "loss.h"
#include "optim.h"
#include "stfolder.h"
#include "tensor.h"
#include "tokenizer.h"
#include "json.h"
#include "run.h"
#include "util.h"
#include "xlmr_dist.h"

/* The paper's settings (batch 100, lr 3e-5, 10% warmup, tau 0.05, query 64 /
 * passage 256 tokens, hybrid alpha 0.5); the rest as HF's Trainer. */
void train_options_default(TrainOptions *o) {
    *o = (TrainOptions){
        .sampling = SAMPLING_HYBRID,
        .alpha = 0.5,
        .batch = 100,
        .steps = 0,
        .epochs = 1,
        .lr = 3e-5,
        .warmup = 0.1,
        .weight_decay = 0.01,
        .max_grad_norm = 1.0,
        .temperature = 0.05,
        .pooling = POOL_MEAN,
        .max_len_query = 64,
        .max_len_passage = 256,
        .chunk = 16,
        .keep = 2,
        .save_every = 200,
        .seed = 1,
        .query_prefix = XLMR_QUERY_PREFIX,
        .passage_prefix = XLMR_PASSAGE_PREFIX,
        .multi_dataset = MULTI_PROPORTIONAL,
    };
}

void train_report_free(TrainReport *r) {
    free(r->final_dir);
    free(r->best_dir);
    r->final_dir = r->best_dir = NULL;
}

/* ------------------------------------------------------------------------- */
/* One batch with gradient caching                                           */
/* InfoNCE needs every embedding of the batch at once (each query is scored
 * against every passage), but keeping the activations of B queries and B..2B
 * passages for backward would need memory in B. Gradient caching (Gao et al.
 * 2021) splits the step in three: embed everything with no activations kept
 * (pass 1), get the loss and its gradient w.r.t. each embedding (cheap: (N,C)
 * numbers), then run each chunk forward again, now keeping activations, and
 * backward from its slice of those embedding gradients (pass 2). Memory is
 * that of one chunk; the gradient is the whole batch's, because the re-run
 * uses the same dropout masks (keyed by the row's place in the batch). */

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
    XlmrDropout dr = dropout ? *dropout : (XlmrDropout){.train = 0};
    /* data parallel (dist.h): chunk k is rank k mod P's; every rank gets every
     * embedding, so the loss sees the whole batch, and back-propagates its own
     * chunks. The chunks and their masks are those of one process. */
    const int P = dist_size(), me = dist_rank();
    int *owner = xmalloc((size_t)N * sizeof(int)), last = -1;
    for (int k = 0; k < nch; k++)
        for (int i = 0; i < ch[k].n; i++) owner[ch[k].start + i] = k % P;
    /* pass 1: embeddings only; activations live for one chunk */
    for (int k = 0; k < nch; k++) {
        if (k % P != me) continue;
        int T = pad_chunk(pad, ids, lens, ord, ch[k].start, ch[k].n, m->cfg.pad_id);
        dr.seq_base = ch[k].start;
        xlmr_forward(m, a, buf, pad, ch[k].n, T, pooling, &dr);
        for (int i = 0; i < ch[k].n; i++) memcpy(emb + (size_t)ord[ch[k].start + i] * C, buf + (size_t)i * C, row);
        last = k;
    }
    dist_share_rows(emb, C, ord, owner, N);
    double loss = infonce_forward_backward(demb, demb + (size_t)B * C, emb, emb + (size_t)B * C, B, N - B, C, tau);
    /* pass 2, last chunk first: its activations are still in a, so it needs no re-run */
    for (int k = nch - 1; k >= 0; k--) {
        if (k % P != me) continue;
        if (k != last) {
            int T = pad_chunk(pad, ids, lens, ord, ch[k].start, ch[k].n, m->cfg.pad_id);
            dr.seq_base = ch[k].start;
            xlmr_forward(m, a, buf, pad, ch[k].n, T, pooling, &dr);
        }
        for (int i = 0; i < ch[k].n; i++) memcpy(buf + (size_t)i * C, demb + (size_t)ord[ch[k].start + i] * C, row);
        xlmr_backward(m, a, buf);
    }
    free(owner);
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

/* The ranking rule and the average precision are eval's (eval.h): a candidate's
 * rank is 1 + the candidates scoring higher, ties going to the earlier one;
 * AP from the ranks by eval_average_precision(). Scores are computed block by
 * block of QB queries, so memory is (QB, n) and not (n, n). */
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
            /* the group's passages are its relevant candidates, ranked by eval's rule */
            int rel[64], ranks[64], R = r1 - r0 < 64 ? r1 - r0 : 64; /* groups beyond 64 languages: first 64 count */
            for (int k = 0; k < R; k++) rel[k] = r0 + k;
            block += eval_query_average_precision(row, n, rel, R, ranks);
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

/* What a resumed run must share with its checkpoint for the continuation to
 * equal a run never stopped: every option that changes a step's batch, loss,
 * gradient or update (and the schedule, through the total and warmup steps),
 * a hash of the prompts (they change every token sequence), the training
 * data's fingerprint (rows and order decide the batches) and the parameter
 * count (another model), and --bf16: its matrix products round to 8-bit
 * mantissas (about 1e-2 off fp32, not float-rounding noise), so a run that
 * switched would follow neither the fp32 nor the BF16 trajectory, and resume
 * promises the one never stopped. Not in it: --chunk and threads (only float rounding),
 * the dev set, logging and checkpoint cadence, which do not change the
 * trajectory. Stored in trainer_state.bin as raw fixed-width fields. */
typedef struct {
    int32_t sampling, batch, total_steps, warmup, pooling, max_len_query, max_len_passage, freeze;
    int32_t bf16, unused; /* unused (0): the doubles stay 8-byte aligned, no padding bytes reach the file */
    double alpha, lr, weight_decay, max_grad_norm, temperature;
    uint64_t seed, prefixes, data, n_params;
} ResumeKey;

#define STATE_MAGIC 0x54535458u /* "XTST" */
#define STATE_VERSION 2 /* 2: --bf16 in the resume key */
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
    SamplePair *pairs;  /* (batch) the pairs of the current step */
    const int **seq;    /* (3 batch) its token sequences: queries, passages, hard negatives */
    int *lens;          /* (3 batch) */
} Trainer;

/* Every row tokenized once before the first step (with its prompt, truncated
 * to the role's length): a step then only gathers ids, and the same text is
 * never tokenized twice across epochs. */
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

/* The sequences of one batch: queries, positive passages, then hard negatives.
 * Passage i is query i's positive and every other query's in-batch negative;
 * a hard negative is one more negative for every query (loss.h). */
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

/* Dev loss over the fixed dev batches and dev mAP, eval mode (no dropout).
 * Every dev query, passage and hard negative is embedded once; the batches
 * only pick rows of those embeddings, so the dev loss costs no extra forward. */
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

/* This run's sentence-transformers settings (stfolder.h): the pooling, length
 * and prompts it trains with, written into every model folder it saves. */
static StFolder folder_settings_of(const Trainer *tr) {
    const TrainOptions *o = tr->o;
    return (StFolder){.pooling = o->pooling,
                      .max_seq_length = o->max_len_query > o->max_len_passage ? o->max_len_query : o->max_len_passage,
                      .query_prompt = (char *)o->query_prefix,
                      .passage_prompt = (char *)o->passage_prefix};
}

/* A model folder: the HF files plus sentence-transformers' and the tokenizer's. */
static int save_model_files(const Trainer *tr, const char *dir) {
    StFolder f = folder_settings_of(tr);
    return stfolder_save_model(&tr->m, dir, tr->spm, &f);
}

/* Writes the model into OUT/name atomically (run.h). */
static int save_model_dir(Trainer *tr, const char *name) {
    StFolder f = folder_settings_of(tr);
    return run_save_model(&tr->m, tr->o->out_dir, name, tr->spm, &f);
}

static void options_json(const TrainOptions *o, int total, StrBuf *sb) {
    sb_puts(sb, "{\"model\": ");
    sb_json_string(sb, o->model_dir);
    sb_puts(sb, ", \"train\": [");
    for (int i = 0; i < o->n_train_files; i++) {
        if (i) sb_puts(sb, ", ");
        sb_json_string(sb, o->train_files[i]);
    }
    sb_puts(sb, "], ");
    if (o->n_train_files > 1) sb_printf(sb, "\"multi_dataset\": \"%s\", ", multi_dataset_name(o->multi_dataset));
    sb_puts(sb, "\"sampling\": ");
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

/* trainer_state.bin: the TrainerState record, then the sampler's state
 * (sampler.h), written atomically (AtomicFile: a temporary file renamed). */
static int state_write(const Trainer *tr, const char *path) {
    TrainerState st = {
        .magic = STATE_MAGIC,
        .version = STATE_VERSION,
        .step = tr->step,
        .best_step = tr->best_step,
        .loss_ema = tr->loss_ema,
        .best_map = tr->best_map,
        .best_loss = tr->best_loss,
        .train_seconds = tr->train_seconds,
        .tokens = tr->tokens,
        .key = tr->key,
    };
    AtomicFile af;
    FILE *f = atomic_open(&af, path);
    if (!f) return -1;
    if (fwrite(&st, sizeof st, 1, f) != 1 || sampler_state_write(&tr->sampler, f) != 0) {
        atomic_abort(&af);
        return xerr("%s: write failed", path);
    }
    return atomic_commit(&af);
}

/* Everything of a checkpoint into the folder dir. */
static int checkpoint_write(const Trainer *tr, const char *dir) {
    if (mkdir_p(dir) || save_model_files(tr, dir)) return -1;
    char *p = path_join(dir, "optimizer.bin");
    int rc = xlmr_adamw_save(&tr->opt, &tr->m, p);
    free(p);
    if (rc == 0) {
        p = path_join(dir, "trainer_state.bin");
        rc = state_write(tr, p);
        free(p);
    }
    if (rc == 0) {
        p = path_join(dir, "train_options.json");
        StrBuf sb = {0};
        options_json(tr->o, tr->total, &sb);
        rc = write_file_atomic(p, sb.data, sb.len);
        sb_free(&sb);
        free(p);
    }
    return rc;
}

static int checkpoint_write_cb(void *tr, const char *dir) { return checkpoint_write(tr, dir); }

/* OUT/checkpoint-STEP, atomically, the last `keep` kept (run.h). */
static int checkpoint_save(Trainer *tr) {
    char *dst = NULL;
    if (run_checkpoint_save(tr->o->out_dir, tr->step, tr->o->keep, checkpoint_write_cb, tr, &dst)) return -1;
    free(dst);
    return 0;
}

/* The first option of the key that differs, named as on the command line. */
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
    KEY(n_params, "model size") KEY(bf16, "--bf16 setting")
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
    else if (st.magic == STATE_MAGIC && st.version == 1)
        rc = xerr("%s: written by an older xlmr (state version 1, before --bf16 joined the resume key): "
                  "continue it with that version or start the run again", p);
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

/* The loss shown and reported: an EMA (0.95) of the per-step loss, which is
 * noisy with small batches; divided by 1 - 0.95^step as Adam's moments are,
 * since the EMA starts at 0. Saved in checkpoints, so a resume continues it. */
static double ema_value(const Trainer *tr) {
    double c = 1.0 - pow(0.95, tr->step);
    return c > 0 ? tr->loss_ema / c : NAN;
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
    if (o->sampling < 0 || o->sampling >= SAMPLING_COUNT) return xerr("train: unknown sampling %d", o->sampling);
    if (o->multi_dataset < 0 || o->multi_dataset >= MULTI_COUNT) return xerr("train: unknown --multi-dataset %d", o->multi_dataset);
    if (!(o->alpha >= 0 && o->alpha <= 1)) return xerr("train: --alpha must be in [0,1], got %g", o->alpha);
    if (o->batch < 1) return xerr("train: --batch must be >= 1, got %d", o->batch);
    if (o->steps < 0) return xerr("train: --steps must be >= 0, got %d", o->steps);
    if (o->steps == 0 && !(o->epochs > 0 && o->epochs <= 1e6))
        return xerr("train: --epochs must be in (0, 1e6], got %g", o->epochs);
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
    /* they are written into train_options.json, which must stay valid UTF-8 JSON */
    if (!utf8_valid(o->query_prefix, strlen(o->query_prefix)) ||
        !utf8_valid(o->passage_prefix, strlen(o->passage_prefix)))
        return xerr("train: --query-prefix and --passage-prefix must be valid UTF-8 text");
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
    free(tr->pairs);
    free(tr->seq);
    free(tr->lens);
}

/* Dev set: loaded, tokenized later; fixed batches drawn once by the mixed
 * sampler with a fixed seed, so that every strategy and every evaluation of a
 * run is scored on the same batches (a strategy's own sampler would make the
 * dev loss a measure of its batch composition). */
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

/* A dev evaluation: logged, and OUT/best replaced when the dev mAP is the
 * highest so far (the first candidate always counts; with select_trained the
 * step-0 evaluation is no candidate). */
static int run_eval(Trainer *tr) {
    double dl = NAN, dm = NAN;
    if (evaluate(tr, &dl, &dm)) return -1;
    int candidate = tr->step > 0 || !tr->o->select_trained;
    int better = candidate && (tr->best_step < 0 || dm > tr->best_map);
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
        if (dist_rank() == 0 && save_model_dir(tr, "best")) return -1; /* rank 0 alone writes */
        tr->best_map = dm;
        tr->best_loss = dl;
        tr->best_step = tr->step;
    }
    return 0;
}

static ResumeKey resume_key(const Trainer *tr) {
    const TrainOptions *o = tr->o;
    /* each prompt closed by 0x100, a value no byte takes: ("ab", "c") and ("a", "bc") differ */
    uint64_t prefixes = hash_combine(hash_bytes(0, o->query_prefix, strlen(o->query_prefix)), 0x100);
    prefixes = hash_combine(hash_bytes(prefixes, o->passage_prefix, strlen(o->passage_prefix)), 0x100);
    return (ResumeKey){
        .sampling = o->sampling,
        .batch = o->batch,
        .total_steps = tr->total,
        .warmup = tr->warmup,
        .pooling = o->pooling,
        .max_len_query = o->max_len_query,
        .max_len_passage = o->max_len_passage,
        .freeze = o->freeze_embeddings,
        .bf16 = o->use_bf16 != 0,
        .alpha = o->alpha,
        .lr = o->lr,
        .weight_decay = o->weight_decay,
        .max_grad_norm = o->max_grad_norm,
        .temperature = o->temperature,
        .seed = o->seed,
        .prefixes = prefixes,
        .data = tr->data.fingerprint,
        .n_params = tr->m.n_params,
    };
}

/* Where a run starts: the last complete checkpoint in OUT (with --resume), or
 * the model folder. Sets tr->src_dir and *last (the checkpoint's step, or -1);
 * -1 + xerr when OUT holds a run and --resume was not given. */
static int find_start(Trainer *tr, int *last) {
    const TrainOptions *o = tr->o;
    /* a kill while final/ or best/ was swapped in leaves NAME.old: put back */
    const char *const names[2] = {"final", "best"};
    if (run_find_last(o->out_dir, names, 2, o->resume, last)) return -1;
    tr->src_dir = *last >= 0 ? run_ckpt_path(o->out_dir, *last, "") : xstrdup(o->model_dir);
    if (*last < 0 && o->resume && !o->quiet)
        fprintf(stderr, "train: %s holds no checkpoint: starting from %s\n", o->out_dir, o->model_dir);
    return 0;
}

/* The model, its tokenizer and the optimizer, from tr->src_dir; on a resume
 * also the AdamW moments and the trainer's state (step, sampler, RNG). */
static int load_start(Trainer *tr, int from_checkpoint) {
    const TrainOptions *o = tr->o;
    if (xlmr_load(&tr->m, tr->src_dir)) return -1;
    tr->m.use_bf16 = o->use_bf16;
    if (tokenizer_load(&tr->tok, tr->src_dir)) return -1;
    /* the tokenizer file every saved folder gets a copy of: one the run owns,
     * copied once into OUT, since the user may delete the folder we started
     * from or any checkpoint (to free disk) while the run goes on */
    if (!(tr->spm = run_own_tokenizer(tr->src_dir, o->out_dir))) return -1;
    int limit = xlmr_max_len(&tr->m.cfg);
    if (o->max_len_query > limit || o->max_len_passage > limit)
        return xerr("%s: --max-len-query %d / --max-len-passage %d exceed the model's limit of %d tokens", tr->src_dir,
                    o->max_len_query, o->max_len_passage, limit);
    xlmr_grads_alloc(&tr->m);
    adamw_config_default(&tr->acfg);
    tr->acfg.weight_decay = (float)o->weight_decay;
    tr->key = resume_key(tr);
    if (!from_checkpoint) {
        adamw_build(&tr->opt, tr->m.n_params);
        return 0;
    }
    char *p = path_join(tr->src_dir, "optimizer.bin");
    int rc = xlmr_adamw_load(&tr->opt, &tr->m, p);
    free(p);
    return rc || read_state(tr, tr->src_dir) ? -1 : 0;
}

/* --chunk capped at the largest side of a step (passages and hard negatives:
 * 2B sequences): a larger chunk changes nothing but the activation memory. */
static int chunk_size(const TrainOptions *o) { return o->chunk / 2 < o->batch ? o->chunk : 2 * o->batch; }

/* Everything a run needs before its first step: data, sampler, dev set, start
 * point, tokenized rows, activations, batch buffers and the log. */
static int trainer_open(Trainer *tr, const TrainOptions *o) {
    memset(tr, 0, sizeof *tr);
    tr->o = o;
    tr->best_step = -1;
    tr->best_map = tr->best_loss = NAN;
    if (train_data_load(&tr->data, o->train_files, o->n_train_files)) return -1;
    if (sampler_build_multi(&tr->sampler, &tr->data, o->train_files, o->multi_dataset, o->sampling, o->alpha, o->batch,
                            o->seed))
        return -1;
    double total = o->steps ? o->steps : ceil(o->epochs * tr->data.n_groups / o->batch);
    if (total > 1e9) return xerr("train: --epochs %g gives %.0f steps, more than 1e9", o->epochs, total);
    tr->total = (int)total;
    if (tr->total < 1) tr->total = 1;
    tr->warmup = warmup_steps(o->warmup, tr->total);
    if (o->dev_file && setup_dev(tr)) return -1;
    if (mkdir_p(o->out_dir)) return -1;
    int last;
    if (find_start(tr, &last) || load_start(tr, last >= 0) || xlmr_ranks_loaded_same(&tr->m, tr->src_dir)) return -1;
    if (tokenize_rows(tr, &tr->data, &tr->ids)) return -1;
    if (tr->have_dev && tokenize_rows(tr, &tr->dev, &tr->dev_ids)) return -1;
    int Tmax = o->max_len_query > o->max_len_passage ? o->max_len_query : o->max_len_passage;
    tr->acts = xlmr_acts_build(&tr->m, chunk_size(o), Tmax);
    tr->pairs = xmalloc((size_t)o->batch * sizeof(SamplePair));
    tr->seq = xmalloc((size_t)3 * o->batch * sizeof(int *));
    tr->lens = xmalloc((size_t)3 * o->batch * sizeof(int));
    if (o->log_file) {
        /* a resumed run continues the log of the steps up to its checkpoint */
        if (last >= 0 && run_log_truncate(o->log_file, tr->step)) return -1;
        tr->log = fopen(o->log_file, last >= 0 ? "a" : "w");
        if (!tr->log) return xerr("%s: cannot write: %s", o->log_file, strerror(errno));
    }
    return 0;
}

/* What one step did, for its log line and progress line. */
typedef struct {
    int step, kind;      /* kind: BATCH_* of sampler.h */
    long long tokens;    /* tokens in the batch (no padding) */
    double loss, lr, grad_norm;
    double seconds, end; /* duration of the step; now_seconds() at its end */
} StepStats;

/* One optimizer step: draw a batch, its loss and gradient (train_batch_step),
 * clip, AdamW at the scheduled learning rate. The dropout masks of step s are
 * seeded by hash(seed, s), so a resumed run draws the same masks. */
static int train_step(Trainer *tr, StepStats *st) {
    const TrainOptions *o = tr->o;
    const int B = o->batch, s = tr->step + 1;
    double t0 = now_seconds();
    int kind = sampler_next(&tr->sampler, tr->pairs);
    int N = gather(&tr->data, &tr->ids, tr->pairs, B, tr->seq, tr->lens);
    long long toks = 0;
    for (int i = 0; i < N; i++) toks += tr->lens[i];
    xlmr_zero_grad(&tr->m);
    XlmrDropout dr = {.train = 1, .seed = hash_combine(o->seed, (uint64_t)s), .seq_base = 0};
    double loss = train_batch_step(&tr->m, tr->acts, (const int *const *)tr->seq, tr->lens, B, N, chunk_size(o),
                                   o->pooling, (float)o->temperature, &dr);
    xlmr_grads_allreduce(&tr->m, !o->freeze_embeddings); /* each rank's share -> the whole batch's */
    double norm = xlmr_grad_norm(&tr->m, o->freeze_embeddings);
    if (!isfinite(loss) || !isfinite(norm)) return run_nonfinite_error(o->out_dir, s, loss, norm);
    double lr = lr_schedule(s, tr->total, tr->warmup, o->lr);
    xlmr_adamw_step(&tr->m, &tr->opt, &tr->acfg, (float)lr, clip_scale(norm, o->max_grad_norm), o->freeze_embeddings);
    tr->step = s;
    tr->loss_ema = 0.95 * tr->loss_ema + 0.05 * loss;
    tr->tokens += toks;
    double end = now_seconds();
    *st = (StepStats){.step = s, .kind = kind, .tokens = toks, .loss = loss, .lr = lr, .grad_norm = norm,
                      .seconds = end - t0, .end = end};
    return 0;
}

static double tokens_per_s(const StepStats *st) { return st->tokens / (st->seconds > 0 ? st->seconds : 1e-9); }

/* --log: {"step", "kind", "loss", "lr", "grad_norm", "tokens_per_s", "seconds"} */
static void log_step(Trainer *tr, const StepStats *st) {
    if (!tr->log) return;
    StrBuf sb = {0};
    sb_printf(&sb, "{\"step\": %d, \"kind\": \"%s\", ", st->step, batch_kind_name(st->kind));
    if (tr->sampler.n_sets) sb_printf(&sb, "\"dataset\": %d, ", tr->sampler.dataset); /* the --train file's index */
    sb_puts(&sb, "\"loss\": ");
    sb_json_number(&sb, st->loss);
    sb_puts(&sb, ", \"lr\": ");
    sb_json_number(&sb, st->lr);
    sb_puts(&sb, ", \"grad_norm\": ");
    sb_json_number(&sb, st->grad_norm);
    sb_printf(&sb, ", \"tokens_per_s\": %.1f, \"seconds\": %.3f}\n", tokens_per_s(st), st->seconds);
    log_json(tr, sb.data);
    sb_free(&sb);
}

/* Steps until the end, or until o->stop_after steps of this call; dev
 * evaluations and checkpoints on their cadence (those of the last step are
 * train_finish's). */
static int train_loop(Trainer *tr) {
    const TrainOptions *o = tr->o;
    RunProgress pg = {.t0 = now_seconds(), .train_before = tr->train_seconds, .first_step = tr->step, .tty = isatty(2)};
    int rc = 0;
    for (int done_here = 0; tr->step < tr->total && rc == 0; done_here++) {
        if (o->stop_after && done_here >= o->stop_after) break;
        StepStats st = {0};
        if (train_step(tr, &st)) return -1;
        tr->train_seconds = pg.train_before + (st.end - pg.t0);
        log_step(tr, &st);
        if (tr->log && stream_flush_checked(tr->log, o->log_file)) return -1; /* a full disk stops the run */
        if (o->on_step) o->on_step(o->user, st.step, tr->total, ema_value(tr), st.lr);
        if (!o->quiet) run_progress_line(&pg, "train", st.step, tr->total, ema_value(tr), st.lr, tokens_per_s(&st), st.end);
        int at_end = st.step == tr->total;
        if (tr->have_dev && o->eval_every > 0 && st.step % o->eval_every == 0 && !at_end) rc = run_eval(tr);
        if (rc == 0 && o->save_every > 0 && st.step % o->save_every == 0 && !at_end)
            rc = xlmr_ranks_agree(&tr->m, tr->step) || (dist_rank() == 0 && checkpoint_save(tr)) ? -1 : 0; /* rank 0 alone writes */
    }
    return rc;
}

/* At the end: the last dev evaluation, the last checkpoint and OUT/final.
 * Stopped early (stop_after): a checkpoint to resume from. */
static int train_finish(Trainer *tr) {
    int writer = dist_rank() == 0; /* rank 0 alone writes */
    if (xlmr_ranks_agree(&tr->m, tr->step)) return -1;
    if (tr->step < tr->total) return writer ? checkpoint_save(tr) : 0;
    if (tr->have_dev && tr->best_step != tr->total && run_eval(tr)) return -1;
    return writer && (checkpoint_save(tr) || save_model_dir(tr, "final")) ? -1 : 0;
}

/* OUT/train_log.svg from the finished --log (logplot.h); a chart that cannot
 * be drawn costs the run nothing but a note. */
static void write_log_plot(const TrainOptions *o) {
    char *svg = path_join(o->out_dir, "train_log.svg");
    if (logplot_write(o->log_file, svg) && !o->quiet) fprintf(stderr, "train: no chart of the log: %s\n", xerr_msg());
    free(svg);
}

int train_run(const TrainOptions *o, TrainReport *r) {
    *r = (TrainReport){.final_loss = NAN, .best_dev_map = NAN, .best_dev_loss = NAN, .best_step = -1};
    if (check_options(o)) return -1;
    TrainOptions mine = *o; /* rank 0 alone prints and logs (run.h: run_lock) */
    DirLock lock = {-1};
    if (run_lock(mine.out_dir, &lock, &mine.quiet, &mine.log_file)) return -1;
    o = &mine;
    double t_start = now_seconds();
    Trainer tr;
    int rc = trainer_open(&tr, o);
    if (rc == 0 && tr.have_dev && tr.step == 0) rc = run_eval(&tr);
    if (rc == 0) rc = train_loop(&tr);
    if (rc == 0) rc = train_finish(&tr);
    if (rc == 0 && tr.log) { /* the log's last lines (the final evaluation) must have reached the disk */
        rc = stream_close_checked(tr.log, o->log_file);
        tr.log = NULL;
    }
    if (rc == 0) {
        r->steps = tr.step;
        r->train_seconds = now_seconds() - t_start;
        r->final_loss = ema_value(&tr);
        r->best_dev_map = tr.best_map;
        r->best_dev_loss = tr.best_loss;
        r->best_step = tr.best_step;
        r->final_dir = tr.step == tr.total ? path_join(o->out_dir, "final") : NULL;
        r->best_dir = tr.have_dev ? path_join(o->out_dir, "best") : NULL;
    }
    trainer_free(&tr);
    if (rc == 0 && o->log_file && r->final_dir) write_log_plot(o);
    dir_unlock(&lock);
    return rc ? -1 : 0;
}
