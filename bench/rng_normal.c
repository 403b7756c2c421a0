/* rng_normal.c - cost of rng_normal_fill on one thread: the Langevin update draws one
 * fill of 784 normals per chain and step.  A fixed amount of work (--calls fills of --n
 * normals, chains 0, 1, 2, ...), so whole-process timings of two builds compare directly.
 *
 * Output: `rng_normal n N calls C us_per_call_median M us_per_call_min m ns_per_normal P`
 * (median and fastest of the rounds of 1000 calls; P from the median), and a checksum
 * that keeps the compiler from dropping the work.
 *
 * Usage: rng_normal [--n 784] [--calls 200000] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long n = 784, calls = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--calls") && i + 1 < argc) calls = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--n 784] [--calls 200000]\n", argv[0]);
            return 2;
        }
    }
    enum { ROUND = 1000 };
    if (n <= 0 || n > (1 << 24) || calls < ROUND) {
        fprintf(stderr, "%s: need 0 < n <= 2^24 and calls >= %d\n", argv[0], ROUND);
        return 2;
    }
    float *z = ebm_alloc(sizeof(float) * (size_t)n);
    const long rounds = calls / ROUND;
    double *t = ebm_alloc(sizeof(double) * (size_t)rounds), sum = 0;
    if (!z || !t) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    for (long r = 0; r < rounds; r++) {
        const double t0 = ebm_now();
        for (int c = 0; c < ROUND; c++) {
            rng_normal_fill(0, RNG_STREAM_NOISE, (uint32_t)(r * ROUND + c), 7, z, (int)n);
            sum += z[c % n];
        }
        t[r] = (ebm_now() - t0) / ROUND;
    }
    qsort(t, (size_t)rounds, sizeof *t, cmp_double);
    const double med = rounds % 2 ? t[rounds / 2] : 0.5 * (t[rounds / 2 - 1] + t[rounds / 2]);
    printf("rng_normal n %ld calls %ld us_per_call_median %.3f us_per_call_min %.3f ns_per_normal %.2f checksum %.6g\n",
           n, rounds * ROUND, med * 1e6, t[0] * 1e6, med * 1e9 / (double)n, sum);
    ebm_free(z), ebm_free(t);
    return 0;
}
