/* cmd_experiment.c: `xlmr experiment`, the command line over experiment_run()
 * (experiment.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ablation.h"
#include "cli.h"
#include "experiment.h"
#include "sampler.h"
#include "util.h"
#include "xlmr.h"

/* "nano 1/32/1/128, micro 2/64/2/256, ...": the shapes of the grids' presets, from xlmr_preset. */
static void preset_shapes(char *buf, size_t n) {
    static const char *const lists[3] = {EXPERIMENT_SIZES, EXPERIMENT_SIZES_QUICK, EXPERIMENT_SIZES_FULL};
    StrBuf sb = {0}, seen = {0};
    sb_puts(&seen, ",");
    for (int l = 0; l < 3; l++) {
        int k;
        char **names = split_csv(lists[l], &k);
        for (int i = 0; i < k; i++) {
            XlmrConfig c;
            StrBuf tag = {0};
            sb_printf(&tag, ",%s,", names[i]);
            if (!strstr(seen.data, tag.data) && xlmr_preset(&c, names[i]) == 0) {
                sb_printf(&sb, "%s%s %d/%d/%d/%d", sb.len ? ", " : "", names[i], c.n_layers, c.hidden, c.n_heads, c.ffn);
                sb_printf(&seen, "%s,", names[i]);
            }
            sb_free(&tag);
        }
        free_strv(names);
    }
    snprintf(buf, n, "%s", sb.data ? sb.data : "");
    sb_free(&sb);
    sb_free(&seen);
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x) /* a macro's value in a help string */

int cmd_experiment(int argc, char **argv) {
    AblationOptions ab = {0};
    ExperimentOptions o;
    experiment_options_default(&o);
    int ablation = 0;
    StrList train = {0}, add = {0};
    char *multi = "proportional";
    char shapes[256], sizes_help[512], sampling_help[256], all[96];
    preset_shapes(shapes, sizeof shapes);
    snprintf(sizes_help, sizeof sizes_help,
             "model sizes: a preset of `xlmr init --preset` (%s, ... as layers/hidden/heads/ffn), or LxH[xA[xF]] "
             "(default " EXPERIMENT_SIZES "; --quick " EXPERIMENT_SIZES_QUICK "; --full " EXPERIMENT_SIZES_FULL ")",
             shapes);
    all[0] = 0;
    for (int k = 0, len = 0; k < SAMPLING_COUNT; k++)
        len += snprintf(all + len, sizeof all - (size_t)len, "%s%s", k ? "," : "", sampling_name(k));
    snprintf(sampling_help, sizeof sampling_help, "strategies (default %s; --quick %s,%s,%s)", all,
             sampling_name(SAMPLING_MONO), sampling_name(SAMPLING_CROSS), sampling_name(SAMPLING_HYBRID));
    Opt opts[] = {
        {"sizes", OPT_STR, &o.sizes, "S,S", sizes_help},
        {"sampling", OPT_STR, &o.sampling, "S,S", sampling_help},
        {"seeds", OPT_COUNT, &o.seeds, "N", "seeds per cell (default 3; --quick 1)"},
        {"steps", OPT_COUNT, &o.steps, "N", "training steps per run (default 150; --quick 6; --full 600)"},
        {"batch", OPT_COUNT, &o.batch, "B", "pairs per batch (default 32; --quick 8)"},
        {"lr", OPT_POS, &o.lr, "LR", "peak learning rate (default 5e-4 from random init, 3e-5 with --model-dirs)"},
        {"max-len-query", OPT_LEN, &o.max_len_query, "N", "query tokens incl. <s> </s> (default 32; 64 with --model-dirs)"},
        {"max-len-passage", OPT_LEN, &o.max_len_passage, "N", "passage tokens (default 64; 256 with --model-dirs)"},
        {"quick", OPT_FLAG, &o.quick, NULL,
         "a reduced grid for tests (2 sizes x mono/cross/hybrid, 1 seed, few steps, no dev selection; 3 languages, "
         "test splits only)"},
        {"full", OPT_FLAG, &o.full, NULL, "the larger grid: sizes " EXPERIMENT_SIZES_FULL ", 600 steps, 3 seeds (hours)"},
        {"model-dirs", OPT_STR, &o.model_dirs, "NAME=DIR,...",
         "start from pretrained HF folders instead (e.g. base=xlm-roberta-base); needs --train; evaluates on all of "
         "XQuAD-R and MLQA-R"},
        {"train", OPT_STR_LIST, &train, "FILE...", "training TSVs, each a dataset (default: the XQuAD-R train split, "
                                                   "written to OUT/data/)"},
        {"add-train", OPT_STR_LIST, &add, "FILE...", "more datasets beside those (e.g. `xlmr pairs --dataset squad` output)"},
        {"multi-dataset", OPT_STR, &multi, "M", "several datasets: proportional (default: each batch from one, drawn "
                                                "by its number of groups), round-robin or merged (one pool)"},
        {"dev", OPT_STR, &o.dev_file, "FILE", "dev TSV for model selection (default: the XQuAD-R dev split without --train)"},
        {"langs", OPT_STR, &o.langs, "L,L", "languages of training and evaluation (default all; --quick " EXPERIMENT_LANGS_QUICK ")"},
        {"data", OPT_STR, &o.data_dir, "DIR", "data folder holding xquad-r/ and mlqa-r/ (default data: run `make data`)"},
        {"tokenizer", OPT_STR, &o.tokenizer, "FILE", "SentencePiece model of random-init sizes (default tokenizer/xlmrc.model)"},
        {"out", OPT_STR, &o.out_dir, "DIR", "output folder (default results)"},
        {"keep-models", OPT_FLAG, &o.keep_models, NULL, "keep each run's checkpoints under OUT/work/ (default: removed)"},
        {"init", OPT_STR, &o.init, "START",
         "start of the --sizes models: pretrained (each size pretrained once with the masked-LM + TLM objective on "
         "the xlmr corpus text, cached in CACHE/pretrained/SIZE-Nsteps/, resumable) or random (the default of "
         "--quick), either optionally +qa: then trained on English QA (mono batches of the SQuAD v1.1 train pairs, "
         "cached in CACHE/starts/); default " EXPERIMENT_INIT " (chosen by --ablation)"},
        {"pretrain-steps", OPT_COUNT, &o.pretrain_steps, "N", "pretraining steps per size with --init pretrained "
                                                            "(batch 32 x 128 tokens; default " STRINGIFY(EXPERIMENT_PRETRAIN_STEPS) ")"},
        {"qa-steps", OPT_COUNT, &o.qa_steps, "N", "English-QA steps of a +qa start (batch 32; default " STRINGIFY(EXPERIMENT_QA_STEPS) ")"},
        {"cache", OPT_STR, &o.cache_dir, "DIR", "CACHE: where starts and the corpus are kept (default OUT)"},
        {"add-squad", OPT_FLAG, &o.add_squad, NULL, "the SQuAD v1.1 train pairs (English) as one more dataset (with "
                                                    "cross: --multi-dataset merged, where they join the English pool)"},
        {"eval-dev", OPT_FLAG, &o.eval_dev, NULL, "measure the final models on the XQuAD-R dev split only (no model "
                                                  "selection, no test split, no MLQA-R)"},
        {"compare", OPT_STR, &o.compare_dir, "DIR", "another experiment's output folder: its grid beside this one in the report"},
        {"bf16", OPT_FLAG, &o.bf16, NULL, "BF16 matrix products (fp32 weights and accumulation) in all training, the "
                                          "starts' included, and evaluation: faster where the CPU has BF16 "
                                          "instructions (README, Results); products ~1e-2 off fp32, the grid's figures within ~0.001; "
                                          "its own grid and starts"},
        {"ablation", OPT_FLAG, &ablation, NULL, "the protocol ablation instead of one grid: every start x data x length "
                                                "arm a grid of mono/cross/hybrid x seeds (default 2) at sizes "
                                                ABLATION_SIZES " (--quick " ABLATION_SIZES_QUICK "), measured on the "
                                                "XQuAD-R dev split; OUT/ablation/ARM/, OUT/ablation.md"},
        {"starts", OPT_STR, &ab.starts, "S,S", "--ablation starts: random | mlm:STEPS, each optionally +qa (default "
                                               ABLATION_STARTS ")"},
        {"data-arms", OPT_STR, &ab.data, "D,D", "--ablation data: xquad | xquad+squad (default " ABLATION_DATA ")"},
        {"lengths", OPT_STR, &ab.lengths, "K,K", "--ablation fine-tuning lengths, multiples of --steps (default "
                                                 ABLATION_LENGTHS ")"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr experiment [options]",
               "Trains and evaluates the grid sizes x sampling strategies x seeds and writes OUT/results.json, "
               "OUT/report.md and SVG charts. Each finished run is saved at once as OUT/runs/NAME.json; running "
               "the same command again skips finished runs and resumes the interrupted one.",
               NULL);
    if (o.quick && o.full) die("experiment: --quick and --full exclude each other");
    if ((o.multi_dataset = multi_dataset_parse(multi)) < 0)
        die("experiment: --multi-dataset must be proportional, round-robin or merged, got '%s'", multi);
    /* the first --train file replaces the XQuAD-R split; every other file is one more dataset */
    const char **more = xcalloc((size_t)(train.n + add.n + 1), sizeof *more);
    if (train.n) o.train_file = train.v[0];
    for (int i = 1; i < train.n; i++) more[o.n_more_train++] = train.v[i];
    for (int i = 0; i < add.n; i++) more[o.n_more_train++] = add.v[i];
    o.more_train = more;
    if (!ablation && (ab.starts || ab.data || ab.lengths))
        die("experiment: --starts, --data-arms and --lengths are options of --ablation");
    ab.grid = o;
    if (ablation ? ablation_run(&ab) : experiment_run(&o)) die_xerr();
    free(more);
    free(train.v);
    free(add.v);
    return 0;
}
