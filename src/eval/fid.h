/* fid.h - the Frechet distance between two Gaussians fitted to feature vectors (the "FID"
 * of generative-model papers, here in the feature space of the project's own classifier).
 *
 *   FID = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))
 *
 * Everything is in double precision.  tr((S_a S_b)^(1/2)) is computed as
 * tr((A S_b A)^(1/2)) with A = S_a^(1/2): the two matrices are similar (A S_b A =
 * A (S_a S_b) A^-1 when S_a is invertible, and by continuity otherwise), and A S_b A is
 * symmetric positive semi-definite, so both square roots come from a symmetric eigen-
 * decomposition (LAPACK dsyev) with tiny negative eigenvalues of rounding clamped to 0.
 * This avoids the complex-valued detours of scipy's sqrtm. */
#ifndef EBM_FID_H
#define EBM_FID_H

#include "ebm.h"

typedef struct {
    int d;          /* feature dimension */
    int n;          /* vectors the statistics came from (0 when set by hand) */
    double *mu;     /* (d) mean */
    double *cov;    /* (d, d) covariance, unbiased (divides by n - 1, as numpy's cov) */
} fid_stats;

/* Mean and covariance of n feature vectors feat (n, d); n >= 2. */
ebm_status fid_stats_compute(const float *feat, int n, int d, fid_stats *out);
/* Empty statistics of dimension d (mu and cov zeroed), for callers that fill them in. */
ebm_status fid_stats_alloc(int d, fid_stats *out);
void fid_stats_free(fid_stats *s);

/* Frechet distance between a and b (same d).  EBM_STATUS_DIVERGED if a statistic is not
 * finite (features of a diverged model), EBM_STATUS_BAD_ARG if LAPACK fails. */
ebm_status fid_distance(const fid_stats *a, const fid_stats *b, double *out);

/* In-place square root of a symmetric positive semi-definite d x d matrix s (row-major;
 * symmetric, so the order does not matter); negative eigenvalues count as 0.  work needs
 * 2*d*d doubles. */
ebm_status fid_sqrtm_psd(double *s, int d, double *work);

#endif
