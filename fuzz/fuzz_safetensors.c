/* fuzz/fuzz_safetensors.c: the safetensors reader (safetensors.h) on arbitrary
 * files: st_open validates the header, then every tensor it accepted is looked
 * up and converted with st_read_f32 (F32 / F16 / BF16; others must be refused). */
#include "fuzz/fuzz_common.h"
#include "safetensors.h"

FUZZ_TARGET(safetensors) {
    const char *path = fuzz_tmpfile("model.safetensors", data, size);
    SafeTensors st;
    if (st_open(&st, path) != 0) return 0;
    for (int i = 0; i < st.n; i++) {
        const StTensor *t = &st.t[i];
        if (st_find(&st, t->name) == NULL) abort(); /* every entry can be found */
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
    st_close(&st);
    return 0;
}
