/* safetensors.h: the safetensors format (huggingface/safetensors), read and written.
 *   u64 LE header length N | N bytes of JSON (may be space-padded) | byte buffer
 *   header: {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *            "__metadata__": {string: string}}   offsets relative to the byte buffer.
 * Reading maps the file (read() fallback), checks every entry (dtype size x shape
 * = extent, extents inside the buffer) before anything trusts it, and converts
 * F32 / F16 / BF16 to float. Writing is F32, 8-byte aligned, atomic.
 * Knows nothing of models: xlmr_load/xlmr_save (xlmr_io.c) use it. */
#ifndef XLMR_SAFETENSORS_H
#define XLMR_SAFETENSORS_H

#include <stddef.h>

#define ST_MAX_DIMS 8

typedef enum { ST_F32, ST_F16, ST_BF16, ST_OTHER } StDtype;

typedef struct {
    char *name;
    StDtype dtype;
    char dtype_name[12];
    int ndim;
    size_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t begin, end; /* byte extent in the data buffer */
} StTensor;

typedef struct {
    char *path;
    StTensor *t;
    int n;
    const unsigned char *data; /* the byte buffer after the header */
    size_t data_len;
    void *map;   /* mmap of the whole file, or NULL */
    size_t map_len;
    char *buf;   /* whole-file read when mmap is unavailable */
} SafeTensors;

/* Opens and validates PATH. -1 + xerr("PATH: what is wrong"). */
int st_open(SafeTensors *st, const char *path);
void st_close(SafeTensors *st);
const StTensor *st_find(const SafeTensors *st, const char *name);
/* Converts tensor t (F32, F16 or BF16) to t->numel floats at dst. */
int st_read_f32(const SafeTensors *st, const StTensor *t, float *dst);

/* One tensor to write: data holds prod(shape) floats. */
typedef struct {
    const char *name;
    int ndim;
    size_t shape[4];
    const float *data;
} StWrite;
/* Writes the n tensors (F32, in the order given) to PATH atomically. */
int st_write_f32(const char *path, const StWrite *ts, int n);

/* IEEE half and bfloat16 to float (exact). */
float st_f16_to_f32(unsigned short h);
float st_bf16_to_f32(unsigned short h);

#endif
