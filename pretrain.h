/* pretrain.h: masked-LM pretraining as XLM-R was made (Conneau et al. 2020),
 * with TLM on parallel text (XLM, Lample & Conneau 2019). `xlmr pretrain` is
 * a thin CLI over pretrain_run(). Checkpoints, log, progress and the
 * non-finite stop are run.h's, shared with train.c; the optimizer is optim.h's.
 *
 * Text: one UTF-8 file per language ("LANG=FILE", or the language from the
 * file name: de.txt -> de), documents separated by blank lines. Every line is
 * tokenized once (XLM-R ids without <s> </s>); a document's lines are
 * concatenated and cut into blocks of max_len - 2 tokens, each trained as
 * <s> block </s>. Blocks never cross documents (RoBERTa's DOC-SENTENCES, not
 * FULL-SENTENCES): a document's last block is shorter, and is padded in its
 * chunk. Held out for the per-language MLM loss: every 20th block of each
 * language (--heldout 0.05), or its last block when it has fewer than 20 (none
 * when it has one).
 *
 * Parallel text (--parallel): TSV rows `group<TAB>lang<TAB>text` ('#' comments
 * and empty lines ignored), the rows of a group translations of each other (the
 * training TSV's first two columns, with one text column). A TLM sequence is
 * two different rows of a random group in HF's pair template
 * <s> A </s></s> B </s>, the longer side truncated first to fit max_len.
 *
 * A batch of step s is a pure function of (seed, s): round(tlm_ratio B) TLM
 * sequences, then monolingual blocks, each of a language drawn with
 * p(l) ∝ (n_l / N)^α (n_l: the language's training tokens; α = lang_alpha,
 * 0.3 as XLM-R) and a block drawn uniformly within it. Masking (RoBERTa /
 * HF's DataCollatorForLanguageModeling): each token other than <s> <pad> </s>
 * <unk> <mask> is chosen with probability mlm_prob; a chosen token becomes
 * <mask> (80%), a uniformly random id of the vocabulary (10%) or stays (10%),
 * and is predicted. New masks every step, seeded by (seed, s, sequence), so a
 * resumed run draws the same batches and masks: resume is exact (bit for bit
 * with the same --chunk and thread count).
 *
 * Loss: cross-entropy at the chosen positions only, mean over the batch's
 * chosen positions; logits computed only there (xlmr_mlm_forward). The batch
 * runs in chunks of `chunk` sequences (memory bounded by the chunk; MLM needs
 * no gradient cache: the loss is a sum over positions). Then clipping, AdamW,
 * warmup + linear decay (optim.h), as xlmr train.
 *
 * Data parallel under MPI (mpirun -np P ./xlmr-mpi pretrain, dist.h), as xlmr
 * train: every rank draws the whole batch and its masks (so every rank knows
 * M, the batch's masked positions), runs chunk k if k mod P is its rank
 * (dropout keyed by the sequence's place in the batch), each chunk's gradient
 * scaled by 1/M; the gradients are summed (xlmr_grads_allreduce) and the loss
 * sums too, so P ranks give one process's steps up to float rounding. The
 * held-out chunks are spread the same way. Rank 0 alone writes checkpoints,
 * final/, the log and the progress line; --resume works with another P.
 *
 * Output OUT: checkpoint-STEP/ (an XLMRobertaForMaskedLM folder + optimizer.bin
 * + trainer_state.bin + pretrain_options.json, atomic, last `keep` kept),
 * final/; --log: {"step", "loss", "lr", "grad_norm", "masked", "tokens_per_s",
 * "seconds"} per step and {"step", "heldout_loss": {LANG: loss, ...}} per
 * evaluation (every eval_every steps and at the end). */
#ifndef XLMR_PRETRAIN_H
#define XLMR_PRETRAIN_H

#include <stdint.h>

#include "tokenizer.h"
#include "util.h"
#include "xlmr.h"

typedef struct {
    const char *model_dir;                /* required; a head is added (HF init) when it has none */
    const char *const *text_files;        /* required: LANG=FILE or FILE */
    int n_text_files;
    const char *const *parallel_files;    /* optional TSVs for TLM */
    int n_parallel_files;
    const char *out_dir;                  /* required */
    int steps;                            /* 0: from epochs */
    double epochs;                        /* steps = ceil(epochs * training blocks / batch) (default 1) */
    int batch;                            /* sequences per step (default 32) */
    int max_len;                          /* tokens per sequence with specials (default 128) */
    double mlm_prob;                      /* (default 0.15) */
    double lr, warmup, weight_decay, max_grad_norm; /* defaults 5e-4, 0.06, 0.01, 1.0 */
    double lang_alpha;                    /* (default 0.3) */
    double tlm_ratio;                     /* share of TLM sequences (default 0.5 with --parallel, else 0) */
    double heldout;                       /* share of blocks held out (default 0.05) */
    unsigned long long seed;              /* (default 1) */
    const char *log_file;
    int eval_every;                       /* steps between held-out evaluations (0: only at the end) */
    int save_every;                       /* (default 500; 0: only at the end) */
    int keep;                             /* (default 2) */
    int resume, use_bf16, chunk, quiet;   /* chunk: sequences per forward/backward (default 16) */
    int stop_after;                       /* stop after this many steps of this call (tests) */
} PretrainOptions;

void pretrain_options_default(PretrainOptions *o);

typedef struct {
    int steps;
    double train_seconds, final_loss;
    int n_langs;
    char **langs;           /* (n_langs) */
    double *heldout_loss;   /* (n_langs) at the end; NaN for a language with nothing held out */
    long long *tokens;      /* (n_langs) training tokens per language */
} PretrainReport;

int pretrain_run(const PretrainOptions *o, PretrainReport *r);
void pretrain_report_free(PretrainReport *r);

/* A pretrained start for `xlmr experiment --init pretrained`: the size with
 * shape cfg (vocab from the tokenizer spm) pretrained once on the corpus of
 * corpus.h (built from data_dir into OUT/corpus/ when missing) for `steps`
 * steps of batch 32 x 128 tokens, TLM on its parallel file, in OUT/pretrained/NAME/
 * (start/ the random init, checkpoints, log.jsonl, final/). A folder whose
 * final/ exists is reused; an interrupted one resumes. bf16: BF16 matrix
 * products (--bf16), in a folder of its own. *final_dir: NAME/final. */
/* OUT/pretrained/SIZE-Nsteps[-bf16]: where pretrain_start_model keeps a size pretrained for a budget. */
char *pretrain_cache_dir(const char *out, const char *name, int steps, int bf16); /* malloc'd */
int pretrain_start_model(const char *out, const char *data_dir, const char *spm, const XlmrConfig *cfg,
                         const char *name, int steps, int bf16, char **final_dir);

/* ---- pieces, for tests ---- */

/* One language's text, tokenized and cut into blocks (of up to max_len - 2 ids). */
typedef struct {
    char name[16];
    int *ids;                   /* all tokens, documents in order */
    size_t n_ids;
    IntVec start, len;          /* blocks: offsets into ids and lengths */
    IntVec train, held;         /* block indices for training and held out */
    long long train_tokens;
    int n_docs;
} PretrainLang;

typedef struct {
    PretrainLang *langs;
    int n_langs;
    uint64_t fingerprint;       /* of every language's name, ids and blocks */
} PretrainCorpus;

/* Reads, tokenizes and packs the text files. -1 + xerr("FILE[:LINE]: ...") for
 * an unreadable, empty or non-UTF-8 file, a language without text, a bad or
 * repeated language name. */
int pretrain_corpus_load(PretrainCorpus *c, const Tokenizer *t, const char *const *files, int n, int max_len,
                         double heldout);
void pretrain_corpus_free(PretrainCorpus *c);
/* p (n_langs) = (n_l / N)^alpha normalised, n_l the training tokens. */
void pretrain_lang_probs(const PretrainCorpus *c, double alpha, double *p);
/* The language of a uniform u in [0,1) under p (n): the first l with u < p_0 + ... + p_l. */
int pretrain_pick_lang(const double *p, int n, double u);

/* Masks ids[0..n) in place (see above); writes the chosen positions to pos and
 * their original ids to labels (each up to n); returns how many. mask_id is
 * <mask>, vocab the vocabulary size; key seeds the draws. */
int pretrain_mask(int *ids, int n, int *pos, int *labels, double prob, int mask_id, int vocab, uint64_t key);

#endif
