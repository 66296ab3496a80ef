/* fuzz/fuzz_safetensors.c: the safetensors reader (safetensors.h) on arbitrary
 * files: st_open validates the header, then every tensor it accepted is looked
 * up and converted with st_read_f32 (F32 / F16 / BF16; others must be refused).
 * An accepted file has unique names and extents that tile its data exactly. */
#include "fuzz/fuzz_common.h"
#include "safetensors.h"

FUZZ_TARGET(safetensors) {
    const char *path = fuzz_tmpfile("model.safetensors", data, size);
    SafeTensors st;
    if (st_open(&st, path) != 0) return 0;
    size_t covered = 0;
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.t[i];
        if (st_find(&st, t->name) != t) abort(); /* every entry can be found, and names are unique */
        covered += t->end - t->begin;
        for (int j = 0; j < i && st.n <= 4096; j++) /* extents never share a byte */
            if (st.t[j].begin < t->end && t->begin < st.t[j].end) abort();
        if (t->end < t->begin || t->end > st.data_len) abort(); /* st_open promised this */
        if (t->dtype == ST_OTHER) {
            if (st_read_f32(&st, t, NULL) == 0) abort(); /* must be refused */
            continue;
        }
        size_t es = t->dtype == ST_F32 ? 4 : 2;
        if (t->numel * es != t->end - t->begin) abort();
        float *dst = xmalloc((t->numel + 1) * sizeof(float));
        if (st_read_f32(&st, t, dst) != 0) abort();
        free(dst);
    }
    if (covered != st.data_len) abort(); /* ... and tile the data: no gap, no unindexed tail */
    st_close(&st);
    return 0;
}
