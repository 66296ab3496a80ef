/* npy.h: NumPy .npy files (format version 1.0), the array format numpy.load
 * and most vector stores read. Stands alone (util.h). */
#ifndef XLMR_NPY_H
#define XLMR_NPY_H

#include <stddef.h>

#include "util.h"

/* Appends a whole .npy file to sb: the magic "\x93NUMPY", version 1.0, a
 * header {'descr': '<f4', 'fortran_order': False, 'shape': (rows, cols), }
 * padded with spaces and a newline to a multiple of 64 bytes, then x
 * (rows, cols) as little-endian float32 whatever the host's byte order. */
void npy_f32_2d(StrBuf *sb, const float *x, size_t rows, size_t cols);

#endif
