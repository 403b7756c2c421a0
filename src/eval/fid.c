/* fid.c - Frechet distance between Gaussians fitted to features (see fid.h). */
#include "eval/fid.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "core/common.h"

/* LAPACK's symmetric eigensolver (OpenBLAS ships LAPACK; Debian has no lapacke.h here).
 * The trailing size_t arguments are the hidden lengths of the character arguments that
 * gfortran passes; C callees ignore them. */
void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
            const int *lwork, int *info, size_t jobz_len, size_t uplo_len);

ebm_status fid_stats_alloc(int d, fid_stats *out) {
    EBM_ASSERT(d > 0);
    memset(out, 0, sizeof *out);
    out->d = d;
    out->mu = ebm_alloc(sizeof(double) * (size_t)d);
    out->cov = ebm_alloc(sizeof(double) * (size_t)d * d);
    if (!out->mu || !out->cov) {
        fid_stats_free(out);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for FID statistics (%d features)", d);
    }
    return EBM_STATUS_OK;
}

void fid_stats_free(fid_stats *s) {
    ebm_free(s->mu);
    ebm_free(s->cov);
    memset(s, 0, sizeof *s);
}

ebm_status fid_stats_compute(const float *feat, int n, int d, fid_stats *out) {
    if (n < 2) return ebm_fail(EBM_STATUS_BAD_ARG, "FID needs at least 2 images to estimate a covariance, got %d", n);
    EBM_TRY(fid_stats_alloc(d, out));
    out->n = n;
    double *c = ebm_alloc(sizeof(double) * (size_t)n * d); /* centred features */
    if (!c) {
        fid_stats_free(out);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for FID statistics of %d images", n);
    }
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) out->mu[j] += feat[i * d + j];
    for (int j = 0; j < d; j++) out->mu[j] /= n;
    for (long i = 0; i < n; i++)
        for (int j = 0; j < d; j++) c[i * d + j] = (double)feat[i * d + j] - out->mu[j];
    /* cov = c^T c / (n - 1) */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, n, 1.0 / (n - 1), c, d, c, d, 0.0, out->cov, d);
    ebm_free(c);
    return EBM_STATUS_OK;
}

ebm_status fid_sqrtm_psd(double *s, int d, double *work) {
    double *v = work, *t = work + (size_t)d * d;
    memcpy(v, s, sizeof(double) * (size_t)d * d);
    double wq;
    int lwork = -1, info = 0;
    double *w = ebm_alloc(sizeof(double) * (size_t)d);
    if (!w) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for a %dx%d eigendecomposition", d, d);
    dsyev_("V", "U", &d, v, &d, w, &wq, &lwork, &info, 1, 1); /* workspace query */
    lwork = info == 0 ? (int)wq : 0;
    double *wk = lwork > 0 ? ebm_alloc(sizeof(double) * (size_t)lwork) : NULL;
    if (!wk) {
        ebm_free(w);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for LAPACK's workspace (%dx%d)", d, d);
    }
    dsyev_("V", "U", &d, v, &d, w, wk, &lwork, &info, 1, 1);
    ebm_free(wk);
    if (info != 0) {
        ebm_free(w);
        return ebm_fail(EBM_STATUS_BAD_ARG, "eigendecomposition of a %dx%d covariance failed (LAPACK dsyev info %d)", d,
                        d, info);
    }
    /* dsyev leaves eigenvectors in the columns of the column-major v, i.e. in the rows of
     * v read row-major: s = sum_k w_k v_k v_k^T = V^T diag(sqrt w) V with V = rows. */
    for (int k = 0; k < d; k++) {
        const double r = w[k] > 0 ? sqrt(w[k]) : 0.0;
        for (int j = 0; j < d; j++) t[(size_t)k * d + j] = r * v[(size_t)k * d + j];
    }
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, v, d, t, d, 0.0, s, d);
    ebm_free(w);
    return EBM_STATUS_OK;
}

static int all_finite(const double *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

ebm_status fid_distance(const fid_stats *a, const fid_stats *b, double *out) {
    EBM_ASSERT(a->d == b->d && a->d > 0);
    const int d = a->d;
    const size_t dd = (size_t)d * d;
    if (!all_finite(a->mu, d) || !all_finite(b->mu, d) || !all_finite(a->cov, dd) || !all_finite(b->cov, dd))
        return ebm_fail(EBM_STATUS_DIVERGED, "FID: the features hold NaN or Inf (images with NaN values?)");
    double *m = ebm_alloc(sizeof(double) * 4 * dd);
    if (!m) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for FID (%d features)", d);
    double *sa = m, *t = m + dd, *work = m + 2 * dd;
    memcpy(sa, a->cov, sizeof(double) * dd);
    ebm_status s = fid_sqrtm_psd(sa, d, work);                                                       /* A = S_a^1/2 */
    if (s == EBM_STATUS_OK) {
        cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, d, d, 1.0, b->cov, d, sa, d, 0.0, t, d);   /* A S_b */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, t, d, sa, d, 0.0, work, d); /* A S_b A */
        for (int i = 0; i < d; i++)               /* exact symmetry for dsyev (rounding breaks it) */
            for (int j = 0; j < i; j++) {
                double v = 0.5 * (work[(size_t)i * d + j] + work[(size_t)j * d + i]);
                work[(size_t)i * d + j] = work[(size_t)j * d + i] = v;
            }
        memcpy(t, work, sizeof(double) * dd);
        s = fid_sqrtm_psd(t, d, work);
    }
    if (s == EBM_STATUS_OK) {
        double dmu = 0, tr = 0;
        for (int j = 0; j < d; j++) {
            const double e = a->mu[j] - b->mu[j];
            dmu += e * e;
            tr += a->cov[(size_t)j * d + j] + b->cov[(size_t)j * d + j] - 2.0 * t[(size_t)j * d + j];
        }
        *out = dmu + tr > 0 ? dmu + tr : 0.0; /* rounding can leave -1e-12 for equal statistics */
    }
    ebm_free(m);
    return s;
}
