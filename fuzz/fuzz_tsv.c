/* fuzz/fuzz_tsv.c: the training TSV reader (train_data_load, sampler.h) on
 * arbitrary files; data that loads is checked for consistency and fed to every
 * sampler (batch size from the first byte), drawing a few batches each, and the
 * sampler state is written and read back. */
#include "fuzz/fuzz_common.h"
#include "sampler.h"

FUZZ_TARGET(tsv) {
    const char *path = fuzz_tmpfile("train.tsv", data, size);
    TrainData d;
    const char *files[1] = {path};
    if (train_data_load(&d, files, 1) != 0) {
        if (strncmp(xerr_msg(), path, strlen(path)) != 0) abort(); /* errors name the file */
        return 0;
    }
    if (d.n_rows <= 0 || d.n_groups <= 0 || d.n_langs <= 0 || d.group_start[d.n_groups] != d.n_rows) abort();
    for (int i = 0; i < d.n_rows; i++) {
        const TrainRow *r = &d.rows[i];
        if (r->group < 0 || r->group >= d.n_groups || r->lang < 0 || r->lang >= d.n_langs) abort();
        if (!r->query[0] || !r->passage[0] || (r->hard && !r->hard[0])) abort(); /* fields are non-empty */
        if (!utf8_valid(r->query, strlen(r->query)) || !utf8_valid(r->passage, strlen(r->passage))) abort();
        if (train_data_find(&d, r->group, r->lang) != i) abort();
    }
    int batch = 1 + (size ? data[0] % 4 : 0);
    for (int sampling = SAMPLING_MONO; sampling <= SAMPLING_MIXED; sampling++) {
        Sampler s;
        if (sampler_build(&s, &d, sampling, 0.5, batch, 7) != 0) continue; /* too few groups: an error, fine */
        SamplePair pairs[4];
        for (int step = 0; step < 3; step++) {
            int kind = sampler_next(&s, pairs);
            if (kind < BATCH_MONO || kind > BATCH_MIXED) abort();
            for (int k = 0; k < batch; k++) {
                if (pairs[k].qrow < 0 || pairs[k].qrow >= d.n_rows || pairs[k].prow < 0 || pairs[k].prow >= d.n_rows)
                    abort();
                if (d.rows[pairs[k].qrow].group != d.rows[pairs[k].prow].group) abort();
                for (int m = 0; m < k; m++)
                    if (d.rows[pairs[m].qrow].group == d.rows[pairs[k].qrow].group) abort(); /* distinct groups */
            }
        }
        /* state round trip */
        FILE *f = tmpfile();
        if (f) {
            if (sampler_state_write(&s, f) == 0) {
                rewind(f);
                Sampler s2;
                if (sampler_build(&s2, &d, sampling, 0.5, batch, 99) != 0) abort();
                if (sampler_state_read(&s2, f, "state") != 0) abort();
                SamplePair p1[4], p2[4];
                if (sampler_next(&s, p1) != sampler_next(&s2, p2)) abort();
                if (memcmp(p1, p2, (size_t)batch * sizeof(SamplePair)) != 0) abort();
                sampler_free(&s2);
            }
            fclose(f);
        }
        sampler_free(&s);
    }
    train_data_free(&d);
    return 0;
}
