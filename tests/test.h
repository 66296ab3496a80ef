/* tests/test.h: a minimal harness for the C unit tests.
 * Each tests/test_*.c is its own program: it calls CHECK/CHECK_CLOSE and ends
 * main with `return test_summary("name");`, which prints
 *   RESULT name: N passed, M failed
 * that tests/run.sh adds up into the suite's closing line. */
#ifndef XLMR_TEST_H
#define XLMR_TEST_H

#include <math.h>
#include <stdio.h>

static int test_passed_, test_failed_;

#define CHECK(cond, ...)                                               \
    do {                                                               \
        if (cond) {                                                    \
            test_passed_++;                                            \
        } else {                                                       \
            test_failed_++;                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                \
            printf(__VA_ARGS__);                                       \
            printf("\n");                                              \
        }                                                              \
    } while (0)

/* Named check that always prints one line (for figures worth seeing in the log). */
#define CHECK_REPORT(cond, ...)                                        \
    do {                                                               \
        int ok_ = (cond);                                              \
        if (ok_) test_passed_++; else test_failed_++;                  \
        printf("%s ", ok_ ? "ok  " : "FAIL");                          \
        printf(__VA_ARGS__);                                           \
        printf("\n");                                                  \
    } while (0)

static inline int test_summary(const char *name) {
    printf("RESULT %s: %d passed, %d failed\n", name, test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

/* Max |a-b| over n floats. */
static inline double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as failure */
    }
    return m;
}

/* Max |a-b| / max|b| (relative to the reference tensor's magnitude). */
static inline double max_rel_diff(const float *a, const float *ref, size_t n) {
    double mag = 0;
    for (size_t i = 0; i < n; i++) if (fabs(ref[i]) > mag) mag = fabs(ref[i]);
    double d = max_abs_diff(a, ref, n);
    return mag > 0 ? d / mag : d;
}

#endif
