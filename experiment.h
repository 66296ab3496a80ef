/* experiment.h: the size x sampling x seed grid of the
 * research question (how does model size change the gap between hybrid and
 * specialised batch sampling?), resumable run by run.
 *
 * Per (size, seed): one initial model (random init from the project
 * tokenizer, or a user's pretrained folder with --model-dirs), shared by every
 * strategy. Per (size, sampling, seed): train_run() on the training pairs with
 * dev-split model selection, then eval_run() on the XQuAD-R test split and on
 * all of MLQA-R; the result is written at once (atomically) as
 * OUT/runs/SIZE-SAMPLING-sSEED.json and results.json, report.md and the charts
 * (report.h) are rebuilt from every finished run. A second invocation skips
 * finished runs and resumes an interrupted one from its last checkpoint.
 *
 * Folders under OUT: runs/ (results, runrecord.h), zeroshot/ (the start
 * models evaluated before fine-tuning), data/ (training and dev TSV), init/
 * (initial models), work/ (training checkpoints, removed when a run is done);
 * under CACHE (default OUT): pretrained/ and starts/ (pretrained and QA starts),
 * corpus/ (the pretraining text). `xlmr experiment` (cmd_experiment.c) is experiment_run(). */
#ifndef XLMR_EXPERIMENT_H
#define XLMR_EXPERIMENT_H

#include "xlmr.h"

/* A preset name (xlmr_preset: "nano", "micro", "tiny", ...) or "LxH" / "LxHxA" /
 * "LxHxAxF" (layers x hidden [x heads [x ffn]]; heads default max(1, H/64),
 * ffn 4H) -> cfg (xlmr_config_default with that shape; vocab left 0) and
 * name_buf (>= 64 bytes): the size's name in results ("LxHxAxF" for parsed
 * shapes). -1 + xerr on an unknown name or a bad shape. */
int experiment_size_parse(const char *s, XlmrConfig *cfg, char *name_buf);

/* The grids' sizes (presets of xlmr_preset, or a shape) and --quick's languages.
 * The default's fourth size, 3 layers x 192 (1.3M non-embedding parameters),
 * sits between tiny (0.4M) and mini (3.2M) on a log scale: mini's 12 runs alone
 * take about 50 minutes on 2 cores, 3x192's about 25, which keeps `make run`
 * near 45 minutes (README, Results). */
#define EXPERIMENT_SIZES "nano,micro,tiny,3x192"
#define EXPERIMENT_SIZES_QUICK "nano,micro"
/* --full: the default ladder and mini at 4x the steps; 3 h 48 min on 2 cores
 * with the starts made (measured 2026-12-02, README); small, several hours
 * more, is left to --full --sizes ...,small */
#define EXPERIMENT_SIZES_FULL "nano,micro,tiny,3x192,mini"
/* The default start of the --sizes models (see --init): chosen by the protocol
 * ablation on the XQuAD-R dev split (README, "The protocol ablation"): English
 * QA from random initialisation lifted cross-lingual mAP most above its floor,
 * in the least time; masked-LM starts of 375 or 1,500 steps did not add to it */
#define EXPERIMENT_INIT "random+qa"
/* --init pretrained: masked-LM + TLM steps per size (batch 32 x 128 tokens) */
#define EXPERIMENT_PRETRAIN_STEPS 1500
/* "+qa" starts: English-QA steps of batch 32 (about 0.3 of an epoch of SQuAD v1.1 train) */
#define EXPERIMENT_QA_STEPS 800
#define EXPERIMENT_LANGS_QUICK "ar,de,en"

typedef struct {
    const char *sizes;       /* "S,S": experiment_size_parse names; NULL: EXPERIMENT_SIZES (--quick, --full: theirs) */
    const char *sampling;    /* "S,S": strategies; NULL: all of sampler.h (--quick: mono, cross, hybrid) */
    const char *model_dirs;  /* "NAME=DIR,...": pretrained folders instead of sizes (needs train_file) */
    const char *train_file;  /* training TSV; NULL: the XQuAD-R train split, written to OUT/data/ */
    const char *const *more_train; /* more training TSVs, each a dataset beside train_file (sampler.h) */
    int n_more_train;
    int multi_dataset;       /* MULTI_*: how the datasets are mixed (default proportional) */
    const char *dev_file;    /* dev TSV; NULL: the XQuAD-R dev split when train_file is NULL and not quick */
    const char *langs;       /* "L,L"; NULL: all (--quick: EXPERIMENT_LANGS_QUICK) */
    const char *data_dir;    /* holding xquad-r/ and mlqa-r/ (default "data") */
    const char *out_dir;     /* default "results" */
    const char *tokenizer;   /* SentencePiece model of random-init sizes (default tokenizer/xlmrc.model) */
    int seeds, steps, batch; /* < 0: 3 / 150 / 32 (--quick 1 / 6 / 8; --full 600 steps) */
    int max_len_query, max_len_passage; /* <= 0: 32 / 64 (pretrained 64 / 256) */
    double lr;               /* < 0: 5e-4 (pretrained 3e-5) */
    int quick, full;         /* the reduced grid of the tests; the larger one */
    int keep_models;         /* keep each run's checkpoints under OUT/work/ */
    const char *init;        /* the --sizes models' start: "pretrained" (each size first pretrained once,
                                pretrain.h: pretrain_start_model, CACHE/pretrained/SIZE-Nsteps[-bf16]/) or "random",
                                either followed by "+qa" (then trained on English QA, below);
                                NULL: pretrained, but random for --quick and --model-dirs */
    int pretrain_steps;      /* < 0: EXPERIMENT_PRETRAIN_STEPS */
    int qa_steps;            /* "+qa" starts: steps of mono contrastive training on the SQuAD v1.1 train pairs
                                (batch 32), once per size, cached in CACHE/starts/; < 0: EXPERIMENT_QA_STEPS */
    const char *cache_dir;   /* CACHE: where pretrained and QA starts (and the corpus) are kept; NULL: out_dir */
    int add_squad;           /* the SQuAD v1.1 train pairs as one more training dataset (English only) */
    int eval_dev;            /* evaluate the final models on the XQuAD-R dev split alone (no model
                                selection, no test split, no MLQA-R): the ablation's measurements */
    const char *compare_dir; /* another experiment's OUT: its grid shown beside this one in the report */
    int bf16;                /* BF16 matrix products (fp32 weights and accumulation) in every training, the
                                starts' included, and evaluation: a grid of its own (key, start caches) */
} ExperimentOptions;

void experiment_options_default(ExperimentOptions *o);
/* CACHE/starts/SIZE-mlmN-qaQ (pretrain_steps N > 0) or SIZE-random-qaQ, with
 * "-bf16" for a start trained with BF16 products: where a "+qa" start is
 * trained (final/ its model, log.jsonl its steps). malloc'd. */
char *experiment_qa_start_dir(const char *cache, const char *size, int pretrain_steps, int qa_steps, int bf16);
/* Runs the grid's unfinished runs, writing each run's record and rebuilding
 * OUT/results.json, report.md and the charts after each. 0, or -1 + xerr. */
int experiment_run(const ExperimentOptions *o);

#endif
