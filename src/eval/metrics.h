/* metrics.h - the scalar figures of `ebm eval` besides FID: what a classifier says about a
 * set of images (confidence, class histogram and its entropy, agreement with the digit that
 * was asked for) and the AUROC of a score that should be higher on one set than another. */
#ifndef EBM_METRICS_H
#define EBM_METRICS_H

#include "ebm.h"

#define METRICS_CLASSES 10

/* Share of the n rows of probs (n, METRICS_CLASSES) whose largest probability is > thr. */
double metrics_confident_share(const float *probs, int n, float thr);
/* Index of the largest of the k values p (the first one on ties). */
int metrics_argmax(const float *p, int k);
/* hist[c] = number of rows of probs (n, METRICS_CLASSES) whose argmax is c. */
void metrics_class_hist(const float *probs, int n, int hist[METRICS_CLASSES]);
/* Entropy (natural log) of the normalised histogram: ln 10 = 2.303 when perfectly
 * balanced over 10 classes, 0 when every image lands in one class; 0 for an empty one. */
double metrics_entropy(const int *hist, int k);
/* Share of rows of probs whose argmax equals asked[i]. */
double metrics_agreement(const float *probs, const int *asked, int n);

/* Area under the ROC curve for telling `pos` from `neg` by a score (higher = positive):
 * P(score of a random positive > score of a random negative) + 0.5 P(equal), computed from
 * ranks (Mann-Whitney U) with ties given their average rank, in O((n+m) log(n+m)).
 * 1 = perfect separation, 0.5 = chance (or all scores equal), 0 = reversed.  *out is NaN
 * when a set is empty or a score is NaN (a diverged model); NOMEM is the only failure. */
ebm_status metrics_auroc(const float *pos, int npos, const float *neg, int nneg, double *out);

#endif
