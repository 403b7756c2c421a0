/* metrics.c - classifier-based figures and the rank AUROC (see metrics.h). */
#include "eval/metrics.h"

#include <math.h>
#include <stdlib.h>

#include "core/common.h"

int metrics_argmax(const float *p, int k) {
    int best = 0;
    for (int j = 1; j < k; j++)
        if (p[j] > p[best]) best = j;
    return best;
}

double metrics_confident_share(const float *probs, int n, float thr) {
    if (n <= 0) return NAN;
    long c = 0;
    for (long i = 0; i < n; i++) {
        const float *p = probs + i * METRICS_CLASSES;
        c += p[metrics_argmax(p, METRICS_CLASSES)] > thr;
    }
    return (double)c / n;
}

void metrics_class_hist(const float *probs, int n, int hist[METRICS_CLASSES]) {
    for (int j = 0; j < METRICS_CLASSES; j++) hist[j] = 0;
    for (long i = 0; i < n; i++) hist[metrics_argmax(probs + i * METRICS_CLASSES, METRICS_CLASSES)]++;
}

double metrics_entropy(const int *hist, int k) {
    long total = 0;
    for (int j = 0; j < k; j++) total += hist[j];
    if (total == 0) return 0.0;
    double h = 0.0;
    for (int j = 0; j < k; j++)
        if (hist[j] > 0) {
            const double p = (double)hist[j] / total;
            h -= p * log(p);
        }
    return h;
}

double metrics_agreement(const float *probs, const int *asked, int n) {
    if (n <= 0) return NAN;
    long c = 0;
    for (long i = 0; i < n; i++) c += metrics_argmax(probs + i * METRICS_CLASSES, METRICS_CLASSES) == asked[i];
    return (double)c / n;
}

typedef struct {
    float s;
    int pos;
} scored;

static int cmp_scored(const void *a, const void *b) {
    const float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return (x > y) - (x < y);
}

ebm_status metrics_auroc(const float *pos, int npos, const float *neg, int nneg, double *out) {
    *out = NAN;
    if (npos <= 0 || nneg <= 0) return EBM_STATUS_OK;
    const long n = (long)npos + nneg;
    scored *a = ebm_alloc(sizeof(scored) * (size_t)n);
    if (!a) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the AUROC of %ld scores", n);
    for (long i = 0; i < npos; i++) a[i] = (scored){pos[i], 1};
    for (long i = 0; i < nneg; i++) a[npos + i] = (scored){neg[i], 0};
    for (long i = 0; i < n; i++)
        if (isnan(a[i].s)) {
            ebm_free(a);
            return EBM_STATUS_OK;
        }
    qsort(a, (size_t)n, sizeof *a, cmp_scored);
    /* sum of the positives' ranks (1-based), a tie group sharing its average rank */
    double rank_sum = 0.0;
    for (long i = 0; i < n;) {
        long j = i;
        long npos_group = 0;
        while (j < n && a[j].s == a[i].s) npos_group += a[j++].pos;
        rank_sum += npos_group * 0.5 * (double)(i + 1 + j);
        i = j;
    }
    ebm_free(a);
    const double u = rank_sum - 0.5 * (double)npos * (npos + 1);
    *out = u / ((double)npos * nneg);
    return EBM_STATUS_OK;
}
