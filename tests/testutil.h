/* testutil.h - shared helpers for the cmocka tests: temp files, tolerant comparisons that
 * print the worst element, and the data directory. */
#ifndef EBM_TESTUTIL_H
#define EBM_TESTUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ebm.h"

/* A fresh temp directory per test binary, under $TMPDIR; path written into buf. */
static inline void tu_tmpdir(char *buf, size_t len) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/ebm-test-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(buf)) fail_msg("mkdtemp failed");
}

/* Writes bytes to path (for hand-made bad files). */
static inline void tu_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot create %s", path);
    if (len && fwrite(data, 1, len, f) != len) fail_msg("short write %s", path);
    fclose(f);
}

/* Max relative error max|a-b| / (atol + |b|) over n elements; prints the worst and fails
 * above tol. */
static inline double tu_check_close(const char *what, const float *a, const float *b, size_t n, double atol,
                                    double tol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]) / (atol + fabs((double)b[i]));
        if (!(e <= worst)) { worst = e; wi = i; } /* also catches NaN */
    }
    printf("  %-28s n=%-7zu worst rel err %.3e at [%zu] (%.7g vs %.7g)\n", what, n, worst, wi,
           n ? a[wi] : 0.f, n ? b[wi] : 0.f);
    if (!(worst <= tol)) fail_msg("%s: relative error %.3e above %.1e", what, worst, tol);
    return worst;
}

/* Directory of the fetched data (make data), overridable with EBM_DATA. */
static inline const char *tu_data_dir(void) {
    const char *d = getenv("EBM_DATA");
    return d ? d : "data";
}

#endif
