/* fuzz/fuzz_common.h: shared by the libFuzzer targets (fuzz/fuzz_*.c) and by
 * tests/test_fuzz_regressions.c, which #includes every target with
 * FUZZ_REPLAY defined to replay fuzz/regressions/<target>/ without libFuzzer.
 *
 * A target is written as
 *     FUZZ_TARGET(json) { ... uses data, size ...; return 0; }
 * which defines int fuzz_one_json(const uint8_t *data, size_t size) and, unless
 * FUZZ_REPLAY is defined, LLVMFuzzerTestOneInput calling it.
 *
 * Parsers that only read from a path get the input through fuzz_tmpfile(): a
 * file in $FUZZ_SCRATCH, else /dev/shm (else $TMPDIR or /tmp), in a folder of
 * this process, rewritten per input and removed at exit (a crash leaves it:
 * fuzz/run.sh points FUZZ_SCRATCH at a folder it removes). */
#ifndef XLMR_FUZZ_COMMON_H
#define XLMR_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "util.h"

#ifdef FUZZ_REPLAY
#define FUZZ_TARGET(name) int fuzz_one_##name(const uint8_t *data, size_t size)
#else
#define FUZZ_TARGET(name)                                                  \
    int fuzz_one_##name(const uint8_t *data, size_t size);                 \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);          \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {         \
        return fuzz_one_##name(data, size);                                \
    }                                                                      \
    int fuzz_one_##name(const uint8_t *data, size_t size)
#endif

/* The scratch folder of this process (created once, removed at exit). */
static char fuzz_dir_[256];
static void fuzz_cleanup_(void) {
    if (fuzz_dir_[0]) remove_tree(fuzz_dir_);
}
static inline const char *fuzz_scratch_dir(void) {
    if (!fuzz_dir_[0]) {
        struct stat sb;
        const char *base = getenv("FUZZ_SCRATCH"); /* fuzz/run.sh: a folder it removes afterwards */
        if (!base || !*base) base = "/dev/shm";
        if (stat(base, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(base, W_OK) != 0) {
            base = getenv("TMPDIR");
            if (!base || !*base) base = "/tmp";
        }
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/xlmr-fuzz-%ld", base, (long)getpid());
        if (mkdir_p(fuzz_dir_)) {
            fprintf(stderr, "fuzz: cannot create %s: %s\n", fuzz_dir_, xerr_msg());
            abort();
        }
        atexit(fuzz_cleanup_);
    }
    return fuzz_dir_;
}

/* Writes data to SCRATCH/name (plain fopen/fwrite: fast, not atomic) and
 * returns the path (static storage, valid until the next call). */
static inline const char *fuzz_tmpfile(const char *name, const uint8_t *data, size_t size) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f)) {
        fprintf(stderr, "fuzz: cannot write %s\n", path);
        abort();
    }
    return path;
}

/* A NUL-terminated copy of the input (the caller frees it). */
static inline char *fuzz_strdup(const uint8_t *data, size_t size) {
    char *s = xmalloc(size + 1);
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

/* A binary state file damaged as the input says: f holds the valid state
 * (written, not rewound; its length a multiple of 4). data[1] bit 0: cut the
 * state to 4 * data[2] bytes; then from data[2] (data[3] with the cut) 5-byte
 * records: a word index and the 4 bytes written there, in host order (the
 * state's own). Returns a new tmpfile to read from, rewound, or NULL when the
 * input is too short for its own flags. Closes f. */
static inline FILE *fuzz_damage_state(FILE *f, const uint8_t *data, size_t size) {
    long len = ftell(f);
    if (len <= 0 || len % 4) abort();
    unsigned char *st = xmalloc((size_t)len);
    rewind(f);
    if (fread(st, 1, (size_t)len, f) != (size_t)len) abort();
    fclose(f);
    size_t n = (size_t)len, words = n / 4, i = 2;
    if (data[1] & 1) {
        if (size < 3) {
            free(st);
            return NULL;
        }
        size_t cut = 4 * (size_t)data[2];
        if (cut < n) n = cut;
        i = 3;
    }
    for (; i + 5 <= size; i += 5) {
        size_t w = data[i] % words;
        if (4 * w + 4 <= n) memcpy(st + 4 * w, data + i + 1, 4);
    }
    FILE *g = tmpfile();
    if (!g) abort();
    if (n && fwrite(st, 1, n, g) != n) abort();
    rewind(g);
    free(st);
    return g;
}

#endif
