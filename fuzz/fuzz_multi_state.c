/* fuzz/fuzz_multi_state.c: the resume state of a sampler over several datasets
 * (sampler_build_multi, sampler.h: a header, then each file's sampler state)
 * on corrupted states, as fuzz_sampler_state does for one pool:
 *   byte 0      sampling (mono / cross / hybrid / mixed), then bit 2: round-robin
 *               instead of proportional
 *   byte 1      when odd, the state is cut to 4 * byte 2 bytes
 *   then 5-byte patches: a word index (mod the state's 32-bit words) and an
 *               int32 (little-endian) written there.
 * A state that reads back must draw batches of valid, distinct groups, each
 * batch from one file. */
#include "fuzz/fuzz_common.h"
#include "sampler.h"

static TrainData *fuzz_ms_data_(void) {
    static TrainData d;
    static int loaded;
    if (!loaded) {
        /* two files whose pools differ: A has three languages, B a group in one */
        static const char a[] = "a0\ten\tq\tp\na0\tde\tq\tp\na0\tzh\tq\tp\na1\ten\tq\tp\na1\tde\tq\tp\n"
                                "a2\ten\tq\tp\na2\tde\tq\tp\na2\tzh\tq\tp\n";
        static const char b[] = "b0\ten\tq\tp\nb0\tzh\tq\tp\nb1\ten\tq\tp\nb2\tde\tq\tp\nb2\tzh\tq\tp\n";
        static char *files[2]; /* static: reachable to the end (fuzz_tmpfile's buffer is reused) */
        files[0] = xstrdup(fuzz_tmpfile("multi_a.tsv", (const uint8_t *)a, sizeof a - 1));
        files[1] = xstrdup(fuzz_tmpfile("multi_b.tsv", (const uint8_t *)b, sizeof b - 1));
        if (train_data_load(&d, (const char *const *)files, 2) != 0) {
            fprintf(stderr, "fuzz_multi_state: %s\n", xerr_msg());
            abort();
        }
        loaded = 1;
    }
    return &d;
}

FUZZ_TARGET(multi_state) {
    if (size < 2) return 0;
    TrainData *d = fuzz_ms_data_();
    static const char *const names[2] = {"a.tsv", "b.tsv"};
    int sampling = data[0] % 4, mode = data[0] & 4 ? MULTI_ROUND_ROBIN : MULTI_PROPORTIONAL;
    Sampler s;
    if (sampler_build_multi(&s, d, names, mode, sampling, 0.5, 1, 3) != 0) abort();
    SamplePair pairs[1];
    (void)sampler_next(&s, pairs);
    FILE *f = tmpfile();
    if (!f) abort();
    if (sampler_state_write(&s, f) != 0) abort();
    f = fuzz_damage_state(f, data, size);
    if (!f) {
        sampler_free(&s);
        return 0;
    }
    Sampler s2;
    if (sampler_build_multi(&s2, d, names, mode, sampling, 0.5, 1, 11) != 0) abort();
    if (sampler_state_read(&s2, f, "state") == 0) {
        for (int step = 0; step < 6; step++) {
            int kind = sampler_next(&s2, pairs);
            if (kind < BATCH_MONO || kind > BATCH_MIXED || s2.dataset < 0 || s2.dataset >= s2.n_sets) abort();
            if (pairs[0].qrow < 0 || pairs[0].qrow >= d->n_rows || pairs[0].prow < 0 || pairs[0].prow >= d->n_rows)
                abort();
            int g = d->rows[pairs[0].qrow].group;
            if (g != d->rows[pairs[0].prow].group || d->group_file[g] != s2.dataset) abort(); /* another file's group */
            if (kind == BATCH_CROSS && pairs[0].qrow == pairs[0].prow) abort();
        }
    }
    fclose(f);
    sampler_free(&s2);
    sampler_free(&s);
    return 0;
}
