/* fuzz/fuzz_sampler_state.c: the sampler's resume state (sampler_state_read,
 * sampler.h; stored in checkpoint-STEP/trainer_state.bin by `xlmr train`) on
 * corrupted states. Raw bytes would almost never get past the magic and the
 * training-data fingerprint, so the input patches a valid state instead:
 *   byte 0      sampling (mono / cross / hybrid / mixed) and batch size (1 or 2)
 *   byte 1      when odd, the state is cut to 4 * byte 2 bytes
 *   then 5-byte patches: a word index (mod the state's 32-bit words) and an
 *               int32 (little-endian) written there.
 * A state that reads back must draw batches of valid, distinct groups. */
#include "fuzz/fuzz_common.h"
#include "sampler.h"

static TrainData *fuzz_ss_data_(void) {
    static TrainData d;
    static int loaded;
    if (!loaded) {
        /* groups with 1, 2 and 3 languages: the mono pools differ from each other
         * and from the cross and mixed pools */
        static const char tsv[] = "g0\ten\tq0\tp0\ng0\tde\tq0de\tp0de\ng0\tzh\tq0zh\tp0zh\n"
                                  "g1\ten\tq1\tp1\ng1\tde\tq1de\tp1de\n"
                                  "g2\ten\tq2\tp2\ng2\tzh\tq2zh\tp2zh\n"
                                  "g3\ten\tq3\tp3\ng3\tde\tq3de\tp3de\ng3\tzh\tq3zh\tp3zh\n"
                                  "g4\ten\tq4\tp4\n"
                                  "g5\tde\tq5\tp5\ng5\tzh\tq5zh\tp5zh\n";
        const char *path = fuzz_tmpfile("sampler_state.tsv", (const uint8_t *)tsv, sizeof tsv - 1);
        const char *files[1] = {path};
        if (train_data_load(&d, files, 1) != 0) {
            fprintf(stderr, "fuzz_sampler_state: %s\n", xerr_msg());
            abort();
        }
        loaded = 1;
    }
    return &d;
}

FUZZ_TARGET(sampler_state) {
    if (size < 2) return 0;
    TrainData *d = fuzz_ss_data_();
    int sampling = data[0] % 4, batch = 1 + (data[0] >> 2) % 2;
    Sampler s;
    if (sampler_build(&s, d, sampling, 0.5, batch, 3) != 0) abort();
    SamplePair pairs[2];
    (void)sampler_next(&s, pairs); /* a state part-way through a pass */
    /* the valid state, in memory */
    FILE *f = tmpfile();
    if (!f) abort();
    if (sampler_state_write(&s, f) != 0) abort();
    f = fuzz_damage_state(f, data, size);
    if (!f) {
        sampler_free(&s);
        return 0;
    }
    Sampler s2;
    if (sampler_build(&s2, d, sampling, 0.5, batch, 11) != 0) abort();
    if (sampler_state_read(&s2, f, "state") == 0) {
        for (int step = 0; step < 4; step++) {
            int kind = sampler_next(&s2, pairs);
            if (kind < BATCH_MONO || kind > BATCH_MIXED) abort();
            for (int k = 0; k < batch; k++) {
                if (pairs[k].qrow < 0 || pairs[k].qrow >= d->n_rows || pairs[k].prow < 0 || pairs[k].prow >= d->n_rows)
                    abort(); /* a row that does not exist */
                if (d->rows[pairs[k].qrow].group != d->rows[pairs[k].prow].group) abort();
                if (kind == BATCH_CROSS && pairs[k].qrow == pairs[k].prow) abort();
                for (int m = 0; m < k; m++)
                    if (d->rows[pairs[m].qrow].group == d->rows[pairs[k].qrow].group) abort(); /* distinct groups */
            }
        }
    }
    fclose(f);
    sampler_free(&s2);
    sampler_free(&s);
    return 0;
}
