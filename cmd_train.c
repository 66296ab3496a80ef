/* cmd_train.c: `xlmr train`, the command line over train_run() (train.h):
 * parses the options, runs, and prints the run's summary as one JSON object. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "dist.h"
#include "encode.h"
#include "json.h"
#include "sampler.h"
#include "stfolder.h"
#include "train.h"
#include "util.h"
#include "xlmr.h"

/* "mono, cross, hybrid or mixed": the strategies of sampler.h, in its order. */
static void sampling_choices(char *buf, size_t n, const char *sep, const char *last_sep) {
    size_t len = 0;
    buf[0] = 0;
    for (int k = 0; k < SAMPLING_COUNT && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", k == 0 ? "" : k == SAMPLING_COUNT - 1 ? last_sep : sep,
                                sampling_name(k));
}

/* What the model folder says (stfolder.h) where no flag does: pooling,
 * prompts, and the length defaults lowered to max_seq_length and the model's
 * limit (an explicit length beyond the limit stays an error, in train_run). */
static int folder_settings(TrainOptions *o, StFolder *sf, int pooling_given, int mlq, int mlp, const char *qp,
                           const char *pp) {
    if (stfolder_read(o->model_dir, sf)) return -1;
    XlmrConfig c;
    char *cpath = path_join(sf->model_dir, "config.json");
    int rc = xlmr_config_read(&c, cpath);
    free(cpath);
    o->model_dir = sf->model_dir;
    if (!pooling_given && sf->pooling >= 0) o->pooling = sf->pooling;
    o->query_prefix = qp ? qp : sf->query_prompt ? sf->query_prompt : XLMR_QUERY_PREFIX;
    o->passage_prefix = pp ? pp : sf->passage_prompt ? sf->passage_prompt : XLMR_PASSAGE_PREFIX;
    if (mlq != -1) o->max_len_query = mlq;
    if (mlp != -1) o->max_len_passage = mlp;
    if (rc) return 0; /* no readable model: train_run reports it, after the training files */
    int limit = xlmr_max_len(&c);
    if (sf->max_seq_length && sf->max_seq_length < limit) limit = sf->max_seq_length;
    if (mlq == -1) o->max_len_query = stfolder_fit_default(o->max_len_query, limit, "train", "--max-len-query");
    if (mlp == -1) o->max_len_passage = stfolder_fit_default(o->max_len_passage, limit, "train", "--max-len-passage");
    return 0;
}

int cmd_train(int argc, char **argv) {
    TrainOptions o;
    train_options_default(&o);
    StrList train = {0};
    char *sampling = (char *)sampling_name(o.sampling), *pooling = NULL;
    char choices[128], sampling_help[192];
    sampling_choices(choices, sizeof choices, " | ", " | ");
    snprintf(sampling_help, sizeof sampling_help, "%s (default %s)", choices, sampling);
    int steps = 0, seed = 1, resume = 0, freeze = 0, quiet = 0, bf16 = 0, mlq = -1, mlp = -1; /* -1: not given */
    char *qp = NULL, *pp = NULL, *multi = "proportional";
    double epochs = 0;
    Opt opts[] = {
        {"model", OPT_STR, &o.model_dir, "DIR", "model folder to start from (config.json, model.safetensors, sentencepiece.bpe.model; "
                                                "or a sentence-transformers folder)"},
        {"train", OPT_STR_LIST, &train, "FILE...", "training TSV: group<TAB>lang<TAB>query<TAB>passage[<TAB>hard_negative]"},
        {"out", OPT_STR, &o.out_dir, "DIR", "output folder: checkpoint-STEP/, final/, best/"},
        {"sampling", OPT_STR, &sampling, "S", sampling_help},
        {"multi-dataset", OPT_STR, &multi, "M", "several --train files: proportional (default: each batch from one "
                                                "file, drawn by its number of groups), round-robin, or merged (one pool)"},
        {"alpha", OPT_PROB, &o.alpha, "A", "hybrid: probability of a mono batch (default 0.5)"},
        {"batch", OPT_COUNT, &o.batch, "B", "pairs per batch (default 100)"},
        {"steps", OPT_COUNT, &steps, "N", "optimizer steps (default: from --epochs)"},
        {"epochs", OPT_POS, &epochs, "E", "passes over the groups: steps = ceil(E*groups/B) (default 1)"},
        {"lr", OPT_POS, &o.lr, "LR", "peak learning rate (default 3e-5)"},
        {"warmup", OPT_FLOAT, &o.warmup, "W", "linear warmup: < 1 a fraction of the steps, >= 1 steps (default 0.1)"},
        {"weight-decay", OPT_FLOAT, &o.weight_decay, "WD", "AdamW decoupled weight decay, not on biases/LayerNorm (default 0.01)"},
        {"temperature", OPT_POS, &o.temperature, "T", "InfoNCE temperature on cosine scores (default 0.05)"},
        {"pooling", OPT_STR, &pooling, "P", "mean | cls (default: the folder's 1_Pooling, else mean)"},
        {"max-len-query", OPT_LEN, &mlq, "N", "query tokens incl. <s> </s> (default 64, lowered to the folder's "
                                              "max_seq_length or the model's limit)"},
        {"max-len-passage", OPT_LEN, &mlp, "N", "passage tokens incl. <s> </s> (default 256, lowered likewise)"},
        {"chunk", OPT_COUNT, &o.chunk, "C", "sequences per forward/backward chunk, bounds memory (default 16)"},
        {"dev", OPT_STR, &o.dev_file, "FILE", "dev TSV: dev loss + dev mAP, best model by dev mAP in OUT/best"},
        {"eval-every", OPT_COUNT0, &o.eval_every, "K", "steps between dev evaluations (default: at start and end only)"},
        {"save-every", OPT_COUNT0, &o.save_every, "K", "steps between checkpoints, 0: only at the end (default 200)"},
        {"keep", OPT_COUNT, &o.keep, "K", "checkpoints kept (default 2)"},
        {"resume", OPT_FLAG, &resume, NULL, "continue from the last checkpoint in --out (same options)"},
        {"freeze-embeddings", OPT_FLAG, &freeze, NULL, "do not update the word-embedding table"},
        {"seed", OPT_INT, &seed, "S", "seed of the sampler and dropout (default 1)"},
        {"log", OPT_STR, &o.log_file, "FILE", "JSONL log: one object per step and per evaluation"},
        {"query-prefix", OPT_TEXT, &qp, "S", "prepended to queries (default: the folder's query prompt, else \"" XLMR_QUERY_PREFIX "\")"},
        {"passage-prefix", OPT_TEXT, &pp, "S", "prepended to passages (default: the folder's passage prompt, else \"" XLMR_PASSAGE_PREFIX "\")"},
        {"quiet", OPT_FLAG, &quiet, NULL, "no progress line"},
        {"bf16", OPT_FLAG, &bf16, NULL, "BF16 matrix products (fp32 master weights, gradients and accumulation)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr train",
               "Fine-tunes a model folder with InfoNCE (in-batch negatives, cosine / temperature) on\n"
               "TSV pairs, with gradient caching, AdamW (b1 0.9, b2 0.999, eps 1e-8; word-embedding rows\n"
               "updated lazily: only rows seen in the batch), linear warmup + linear decay, gradient-norm\n"
               "clipping at 1.0, dropout on. Prints a JSON summary on stdout.",
               NULL);
    opts_require("train", "model", o.model_dir);
    opts_require("train", "train", train.n ? &train : NULL);
    opts_require("train", "out", o.out_dir);
    o.sampling = sampling_parse(sampling);
    if (o.sampling < 0) {
        sampling_choices(choices, sizeof choices, ", ", " or ");
        die("train: --sampling must be %s, got '%s'", choices, sampling);
    }
    if ((o.multi_dataset = multi_dataset_parse(multi)) < 0)
        die("train: --multi-dataset must be proportional, round-robin or merged, got '%s'", multi);
    if (pooling && (o.pooling = xlmr_pooling_parse(pooling)) < 0)
        die("train: --pooling must be mean or cls, got '%s'", pooling);
    if (steps && epochs) die("train: give --steps or --epochs, not both");
    o.steps = steps;
    if (epochs) o.epochs = epochs;
    StFolder sf;
    if (folder_settings(&o, &sf, pooling != NULL, mlq, mlp, qp, pp)) die_xerr();
    o.train_files = (const char *const *)train.v;
    o.n_train_files = train.n;
    o.resume = resume;
    o.freeze_embeddings = freeze;
    o.quiet = quiet;
    o.seed = (unsigned long long)(unsigned)seed;
    o.use_bf16 = bf16;
    TrainReport r;
    if (train_run(&o, &r)) die_xerr();
    StrBuf sb = {0};
    sb_printf(&sb, "{\"steps\": %d, \"train_seconds\": %.3f, \"final_loss\": ", r.steps, r.train_seconds);
    sb_json_number(&sb, r.final_loss);
    sb_puts(&sb, ", \"best_dev_map\": ");
    sb_json_number(&sb, r.best_dev_map);
    sb_puts(&sb, ", \"best_dev_loss\": ");
    sb_json_number(&sb, r.best_dev_loss);
    sb_printf(&sb, ", \"best_step\": %d, \"final\": ", r.best_step);
    if (r.final_dir) sb_json_string(&sb, r.final_dir);
    else sb_puts(&sb, "null");
    sb_puts(&sb, ", \"best\": ");
    if (r.best_dir) sb_json_string(&sb, r.best_dir);
    else sb_puts(&sb, "null");
    sb_puts(&sb, "}\n");
    if (dist_rank() == 0) fputs(sb.data, stdout); /* one summary for the job */
    sb_free(&sb);
    train_report_free(&r);
    stfolder_free(&sf);
    free(train.v);
    return 0;
}
