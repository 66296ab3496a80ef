/* cmd_pretrain.c: `xlmr pretrain`, the command line over pretrain_run()
 * (pretrain.h): parses the options, runs, and prints the run's summary (with
 * the held-out MLM loss and the training tokens per language) as one JSON object. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "dist.h"
#include "json.h"
#include "pretrain.h"
#include "util.h"

int cmd_pretrain(int argc, char **argv) {
    PretrainOptions o;
    pretrain_options_default(&o);
    StrList text = {0}, par = {0};
    int steps = 0, seed = 1, resume = 0, quiet = 0, bf16 = 0;
    double epochs = 0;
    Opt opts[] = {
        {"model", OPT_STR, &o.model_dir, "DIR", "model folder to start from (a masked-LM head is added when it has none)"},
        {"text", OPT_STR_LIST, &text, "FILE...", "one UTF-8 file per language, LANG=FILE or LANG.txt; documents "
                                                 "separated by blank lines"},
        {"parallel", OPT_STR_LIST, &par, "FILE...", "TSV group<TAB>lang<TAB>text (rows of a group are translations): "
                                                    "TLM pairs <s> A </s></s> B </s>"},
        {"out", OPT_STR, &o.out_dir, "DIR", "output folder: checkpoint-STEP/, final/"},
        {"steps", OPT_COUNT, &steps, "N", "optimizer steps (default: from --epochs)"},
        {"epochs", OPT_POS, &epochs, "E", "passes over the training blocks: steps = ceil(E*blocks/B) (default 1)"},
        {"batch", OPT_COUNT, &o.batch, "B", "sequences per step (default 32)"},
        {"max-len", OPT_LEN, &o.max_len, "N", "tokens per sequence incl. <s> </s> (default 128)"},
        {"mlm-prob", OPT_FLOAT, &o.mlm_prob, "P", "share of tokens predicted, 80% <mask> / 10% random / 10% kept "
                                                  "(default 0.15)"},
        {"lr", OPT_POS, &o.lr, "LR", "peak learning rate (default 5e-4)"},
        {"warmup", OPT_FLOAT, &o.warmup, "W", "linear warmup: < 1 a fraction of the steps, >= 1 steps (default 0.06)"},
        {"weight-decay", OPT_FLOAT, &o.weight_decay, "WD", "AdamW decoupled weight decay (default 0.01)"},
        {"lang-alpha", OPT_FLOAT, &o.lang_alpha, "A", "language sampling p(l) ~ (n_l/N)^A (default 0.3, XLM-R's)"},
        {"tlm-ratio", OPT_PROB, &o.tlm_ratio, "R", "share of a batch's sequences that are TLM pairs (default 0.5 "
                                                    "with --parallel)"},
        {"heldout", OPT_PROB, &o.heldout, "H", "share of each language's blocks held out for the MLM loss "
                                                "(default 0.05)"},
        {"chunk", OPT_COUNT, &o.chunk, "C", "sequences per forward/backward chunk, bounds memory (default 16)"},
        {"eval-every", OPT_COUNT0, &o.eval_every, "K", "steps between held-out evaluations (default: at the end only)"},
        {"save-every", OPT_COUNT0, &o.save_every, "K", "steps between checkpoints, 0: only at the end (default 500)"},
        {"keep", OPT_COUNT, &o.keep, "K", "checkpoints kept (default 2)"},
        {"resume", OPT_FLAG, &resume, NULL, "continue from the last checkpoint in --out (same options)"},
        {"seed", OPT_INT, &seed, "S", "seed of batches, masks and dropout (default 1)"},
        {"log", OPT_STR, &o.log_file, "FILE", "JSONL log: one object per step and per evaluation"},
        {"quiet", OPT_FLAG, &quiet, NULL, "no progress line"},
        {"bf16", OPT_FLAG, &bf16, NULL, "BF16 matrix products (fp32 master weights, gradients and accumulation)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr pretrain",
               "Pretrains with XLM-R's masked-LM objective (and TLM on parallel text): blocks of --max-len tokens\n"
               "within documents, languages sampled by (n_l/N)^alpha, dynamic 80/10/10 masking, AdamW, dropout\n"
               "on, atomic checkpoints and exact resume. Prints a JSON summary on stdout.",
               NULL);
    opts_require("pretrain", "model", o.model_dir);
    opts_require("pretrain", "text", text.n ? &text : NULL);
    opts_require("pretrain", "out", o.out_dir);
    if (steps && epochs) die("pretrain: give --steps or --epochs, not both");
    o.steps = steps;
    if (epochs) o.epochs = epochs;
    o.text_files = (const char *const *)text.v;
    o.n_text_files = text.n;
    o.parallel_files = (const char *const *)par.v;
    o.n_parallel_files = par.n;
    o.resume = resume;
    o.quiet = quiet;
    o.seed = (unsigned long long)(unsigned)seed;
    o.use_bf16 = bf16;
    PretrainReport r;
    if (pretrain_run(&o, &r)) die_xerr();
    StrBuf sb = {0};
    sb_printf(&sb, "{\"steps\": %d, \"train_seconds\": %.3f, \"final_loss\": ", r.steps, r.train_seconds);
    sb_json_number(&sb, r.final_loss);
    sb_puts(&sb, ", \"heldout_loss\": {");
    for (int l = 0; l < r.n_langs; l++) {
        sb_puts(&sb, l ? ", " : "");
        sb_json_key(&sb, r.langs[l]);
        sb_json_number(&sb, r.heldout_loss[l]);
    }
    sb_puts(&sb, "}, \"tokens\": {");
    for (int l = 0; l < r.n_langs; l++) {
        sb_puts(&sb, l ? ", " : "");
        sb_json_key(&sb, r.langs[l]);
        sb_printf(&sb, "%lld", r.tokens[l]);
    }
    sb_puts(&sb, "}}\n");
    if (dist_rank() == 0) fputs(sb.data, stdout); /* one summary for the job */
    sb_free(&sb);
    pretrain_report_free(&r);
    free(text.v);
    free(par.v);
    return 0;
}
