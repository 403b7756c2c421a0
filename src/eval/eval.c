/* eval.c - the figures of one set of images (see eval.h). */
#include "eval/eval.h"

#include <math.h>

#include "core/common.h"
#include "eval/classifier.h"

void eval_u8_to_float(float *dst, const uint8_t *src, long n) {
    for (long i = 0; i < n; i++) dst[i] = (float)src[i] / 255.0f * 2.0f - 1.0f;
}

ebm_status eval_images(net *clf, const float *x, int n, const int *asked, const fid_stats *ref, eval_figures *out,
                       fid_stats *stats) {
    const int fd = classifier_feature_dim(clf);
    out->n = n;
    out->fid = out->asked = NAN;
    float *probs = ebm_alloc(sizeof(float) * (size_t)n * CLASSIFIER_CLASSES);
    float *feats = ebm_alloc(sizeof(float) * (size_t)n * fd);
    fid_stats own = {0};
    ebm_status s = EBM_STATUS_OK;
    if (!probs || !feats) s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for the features of %d images", n);
    if (s == EBM_STATUS_OK) s = classifier_predict(clf, x, n, probs, feats);
    if (s == EBM_STATUS_OK) {
        out->confident = metrics_confident_share(probs, n, EVAL_CONFIDENCE);
        metrics_class_hist(probs, n, out->hist);
        out->entropy = metrics_entropy(out->hist, METRICS_CLASSES);
        if (asked) out->asked = metrics_agreement(probs, asked, n);
        s = fid_stats_compute(feats, n, fd, &own);
    }
    if (s == EBM_STATUS_OK && ref) s = fid_distance(&own, ref, &out->fid);
    ebm_free(probs);
    ebm_free(feats);
    if (s == EBM_STATUS_OK && stats) *stats = own;
    else fid_stats_free(&own);
    return s;
}
