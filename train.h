/* train.h: fine-tuning a model folder with InfoNCE on TSV training pairs
 * (sampler.h), with gradient caching, AdamW (optim.h), dev evaluation,
 * atomic checkpoints and exact resume. `xlmr train` is a thin CLI over
 * train_run(); `xlmr experiment` calls train_run() in-process.
 *
 * One step:
 *   1. the sampler draws B pairs (sampler.h);
 *   2. every query ("Query: " + text), passage and hard negative ("Passage: " + text)
 *      is embedded in chunks of `chunk` sequences with training dropout, keeping
 *      only the embeddings (gradient caching: memory depends on chunk, not on B);
 *      queries and passages are chunked apart, each side in order of length so
 *      that a chunk wastes little on padding;
 *   3. InfoNCE (loss.h) over cosine / temperature gives the loss and its gradient
 *      w.r.t. every embedding;
 *   4. each chunk is run forward again with the same dropout masks and backward
 *      with those embedding gradients; the result equals the gradient of the
 *      whole batch at once, up to float rounding (tests/test_train.c);
 *   5. global gradient-norm clipping (1.0), then AdamW with linear warmup and
 *      linear decay towards 0 (optim.h; word-embedding rows updated lazily:
 *      only the rows in the batch, see optim.h). Dropout masks of step s are
 *      seeded by hash(seed, s).
 * Under mpirun (xlmr-mpi, dist.h) the step is data parallel over this global
 * batch: the chunks of 2 and 4 are dealt out to the ranks, the embeddings
 * shared before 3, the gradients summed (xlmr_dist.h) before 5, which every
 * rank applies alike; rank 0 alone writes the output folder and the log.
 *
 * Output folder OUT:
 *   OUT/checkpoint-STEP/  model (HF layout, loadable by transformers) + optimizer.bin
 *                         + trainer_state.bin (sampler, RNG, step) + train_options.json;
 *                         written as checkpoint-STEP.tmp and renamed, the last `keep` kept
 *   OUT/final/            the model after the last step
 *   OUT/best/             the model with the highest dev mAP (with --dev)
 * OUT is locked for the run's life (util.h: dir_lock): a second run on the same
 * OUT fails at once. The tokenizer every saved folder gets is copied once into
 * OUT/.sentencepiece.bpe.model, so deleting any checkpoint mid-run is safe.
 *   OUT/train_log.svg     with --log: the log's loss / lr / dev mAP curves (logplot.h)
 * A folder is never half written: checkpoints are renamed into place, final/ and
 * best/ are swapped in (NAME.tmp -> NAME, the old one kept as NAME.old until
 * then), and a run killed at any moment resumes from its last checkpoint.
 * --resume checks that the options that shape the run (sampling, batch, steps,
 * lr, warmup, seed, --bf16, ...) and the training data are those of the checkpoint
 * (--bf16 is in: BF16 products are ~1e-2 off fp32, so switching mid-run would
 * give a run that is neither the fp32 one nor the BF16 one); the
 * continued run equals one never stopped (bit for bit with the same --chunk and
 * thread count). The --log file is cut back to the checkpoint's step and
 * appended to.
 *
 * Dev (--dev FILE, a TSV like the training data; never a test set): evaluated
 * at step 0, every --eval-every steps and at the end, in eval mode:
 *   dev loss: InfoNCE over fixed batches drawn once by the mixed sampler
 *             (seed fixed, min(B, dev groups) pairs, at most 64 batches), so that
 *             runs with different --sampling are scored on the same batches;
 *   dev mAP:  every dev query against every dev passage (all languages), the
 *             relevant passages being those of its group (pairs_map()).
 * OUT/best is the model of the highest dev mAP (the paper stops on the lowest
 * validation loss; mAP is what is reported, and does not depend on a batch
 * composition).
 *
 * --log FILE: one JSON object per line: per step {"step", "kind", ["dataset",] "loss", "lr",
 * "grad_norm", "tokens_per_s", "seconds"} ("dataset": the --train file's index, with
 * several datasets), per evaluation {"step", "dev_loss", "dev_map"}.
 * A non-finite loss or gradient norm stops the run with an error naming the step
 * and the last complete checkpoint; nothing of that step is applied or saved.
 */
#ifndef XLMR_TRAIN_H
#define XLMR_TRAIN_H

#include "sampler.h"
#include "xlmr.h"

typedef struct {
    const char *model_dir;          /* required: model folder (config.json, model.safetensors, sentencepiece.bpe.model) */
    const char *const *train_files; /* required: one or more TSV files (sampler.h) */
    int n_train_files;
    int multi_dataset;              /* MULTI_* (sampler.h): how several files are mixed (default proportional) */
    const char *out_dir;            /* required */
    int sampling;                   /* SAMPLING_* from sampler.h (default SAMPLING_HYBRID) */
    double alpha;                   /* hybrid: probability of a mono batch (default 0.5) */
    int batch;                      /* pairs per batch (default 100, as the paper) */
    int steps;                      /* optimizer steps; 0: derived from epochs */
    double epochs;                  /* used when steps == 0: steps = ceil(epochs * groups / batch) (default 1) */
    double lr;                      /* peak learning rate (default 3e-5) */
    double warmup;                  /* < 1: fraction of the steps, >= 1: steps (default 0.1) */
    double weight_decay;            /* decoupled, not on biases/LayerNorm (default 0.01) */
    double max_grad_norm;           /* global clipping (default 1.0; <= 0: off) */
    double temperature;             /* InfoNCE tau (default 0.05) */
    int pooling;                    /* POOL_MEAN (default) or POOL_CLS */
    int max_len_query;              /* tokens incl. <s> </s> (default 64) */
    int max_len_passage;            /* (default 256) */
    int chunk;                      /* sequences per forward/backward chunk (default 16) */
    const char *dev_file;           /* optional dev TSV */
    int eval_every;                 /* steps between dev evaluations (default 0: only at the end; needs dev_file) */
    int select_trained;             /* best/ only from evaluations after step 0: the start's dev mAP is logged,
                                       but the model chosen is one this run trained (the experiment's strategies) */
    int save_every;                 /* steps between checkpoints (default 200; 0: only at the end) */
    int keep;                       /* checkpoints kept (default 2) */
    int resume;                     /* continue from the last checkpoint in out_dir */
    int freeze_embeddings;          /* no update of the word-embedding table */
    int use_bf16;                   /* BF16 matrix products (fp32 weights, gradients, AdamW state) */
    unsigned long long seed;        /* sampler, dropout (default 1) */
    const char *log_file;           /* optional JSONL log */
    const char *query_prefix;       /* default "Query: " */
    const char *passage_prefix;     /* default "Passage: " */
    int quiet;                      /* no progress line on stderr */
    /* Called after every step when non-NULL (e.g. the experiment grid's own progress). */
    void (*on_step)(void *user, int step, int total_steps, double loss, double lr);
    void *user;
    int stop_after;                 /* stop after this many steps of this call, as if interrupted (0: no limit);
                                       a later call with resume continues (time-sliced runs, tests) */
} TrainOptions;

typedef struct {
    int steps;            /* steps done in total (including those before a resume) */
    double train_seconds; /* wall time of this call */
    double final_loss;    /* smoothed training loss at the end */
    double best_dev_map;  /* highest dev mAP (NaN without --dev) */
    double best_dev_loss; /* dev loss at that evaluation (NaN without --dev) */
    int best_step;        /* step of the best dev mAP (-1 without --dev) */
    char *final_dir;      /* OUT/final */
    char *best_dir;       /* OUT/best, or NULL without --dev */
} TrainReport;

void train_options_default(TrainOptions *o);
/* Runs the training described by o. 0 on success; -1 + xerr on failure (bad
 * files, NaN loss, ...), in which case the last complete checkpoint stays intact. */
int train_run(const TrainOptions *o, TrainReport *r);
void train_report_free(TrainReport *r);

/* ---- pieces, for tests and `xlmr bench` ---- */
/* The loss of one batch with gradient caching, its gradient accumulated (+=) into
 * m->grads. ids[0..B) are the queries, ids[B..2B) their positive passages,
 * ids[2B..N) extra negatives (hard negatives); lens[i] tokens each (no padding).
 * Sequences are embedded `chunk` at a time (a built for at least chunk x the
 * longest), then InfoNCE (loss.h, temperature tau) gives d loss / d embedding,
 * then each chunk runs forward again with the same dropout masks and backward.
 * dropout NULL: eval mode. Returns the loss.
 * In a job of P ranks (dist.h) rank r embeds and back-propagates the chunks
 * k = r mod P, the embeddings are shared so the loss (the same on every rank)
 * is the whole batch's, and m->grads receives this rank's share only
 * (xlmr_grads_allreduce sums them): the result is that of one process. */
double train_batch_step(Xlmr *m, XlmrActs *a, const int *const *ids, const int *lens, int B, int N, int chunk,
                        int pooling, float tau, const XlmrDropout *dropout);
/* Dev mAP: every query of rows [0,n) against every passage, relevant = the
 * passages of the same group. q, p (n,C) L2-normalised, rows as in d. */
double pairs_map(const TrainData *d, const float *q, const float *p, int C);

#endif
