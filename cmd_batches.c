/* cmd_batches.c: `xlmr batches` — prints the batches a sampler draws, so the
 * samplers of sampler.h can be inspected (and tested) without training. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "sampler.h"
#include "util.h"

int cmd_batches(int argc, char **argv) {
    StrList train = {0};
    char *sampling_s = "hybrid", *multi_s = "proportional";
    double alpha = 0.5;
    int batch = 100, steps = 10, seed = 1;
    Opt opts[] = {
        {"train", OPT_STR_LIST, &train, "FILE...", "training TSV files: group<TAB>lang<TAB>query<TAB>passage[<TAB>hard_negative]"},
        {"sampling", OPT_STR, &sampling_s, "S", "mono | cross | hybrid | mixed (default hybrid)"},
        {"multi-dataset", OPT_STR, &multi_s, "M", "several files: proportional (default), round-robin or merged"},
        {"alpha", OPT_PROB, &alpha, "A", "hybrid: probability of a mono batch (default 0.5)"},
        {"batch", OPT_COUNT, &batch, "B", "pairs per batch (default 100)"},
        {"steps", OPT_COUNT, &steps, "N", "batches to draw (default 10)"},
        {"seed", OPT_INT, &seed, "S", "random seed (default 1)"},
        {0}};
    opts_parse(argc, argv, opts, "xlmr batches",
               "Prints the batches a sampler draws, one line each: mono|cross|mixed, then for every\n"
               "pair a space and QLANG:PLANG:GROUP. With several datasets (--train A B, not merged) the\n"
               "kind is followed by @FILE, the dataset the batch came from.",
               NULL);
    opts_require("batches", "train", train.n ? &train : NULL);
    int sampling = sampling_parse(sampling_s);
    if (sampling < 0) die("batches: --sampling must be mono, cross, hybrid or mixed, got '%s'", sampling_s);
    int multi = multi_dataset_parse(multi_s);
    if (multi < 0) die("batches: --multi-dataset must be proportional, round-robin or merged, got '%s'", multi_s);
    TrainData d;
    Sampler s;
    if (train_data_load(&d, (const char *const *)train.v, train.n)) die_xerr();
    if (sampler_build_multi(&s, &d, (const char *const *)train.v, multi, sampling, alpha, batch, (uint64_t)(unsigned)seed))
        die_xerr();
    SamplePair *pairs = xmalloc((size_t)batch * sizeof(SamplePair));
    StrBuf sb = {0};
    for (int b = 0; b < steps; b++) {
        int kind = sampler_next(&s, pairs);
        sb.len = 0;
        sb_puts(&sb, batch_kind_name(kind));
        if (s.n_sets) sb_printf(&sb, " @%s", train.v[s.dataset]);
        for (int i = 0; i < batch; i++) {
            const TrainRow *q = &d.rows[pairs[i].qrow], *p = &d.rows[pairs[i].prow];
            sb_printf(&sb, " %s:%s:%s", d.langs[q->lang], d.langs[p->lang], d.groups[q->group]);
        }
        sb_puts(&sb, "\n");
        fputs(sb.data, stdout);
    }
    sb_free(&sb);
    free(pairs);
    sampler_free(&s);
    train_data_free(&d);
    free(train.v);
    return 0; /* main() checks stdout */
}
