/* npy.c: the .npy writer (see npy.h; the format is numpy/lib/format.py's). */
#include "npy.h"

#include <stdint.h>
#include <string.h>

void npy_f32_2d(StrBuf *sb, const float *x, size_t rows, size_t cols) {
    char dict[128];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    size_t pre = 10; /* magic (6) + version (2) + header length (2) */
    size_t hlen = (size_t)n + 1, total = (pre + hlen + 63) / 64 * 64;
    hlen = total - pre; /* spaces then '\n' fill up to the 64-byte boundary */
    unsigned char head[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    sb_append(sb, (const char *)head, sizeof head);
    sb_append(sb, dict, (size_t)n);
    for (size_t i = (size_t)n; i + 1 < hlen; i++) sb_append(sb, " ", 1);
    sb_append(sb, "\n", 1);
    for (size_t i = 0; i < rows * cols; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
        sb_append(sb, (const char *)b, 4);
    }
}
