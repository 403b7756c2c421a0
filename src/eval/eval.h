/* eval.h - the figures `ebm eval` reports for one set of images: FID against reference
 * statistics (the MNIST test set) in the classifier's feature space, the share classified
 * with confidence > 0.9, the predicted-class histogram and its entropy, and, when a digit
 * was asked for each image (conditional sampling), the share classified as that digit. */
#ifndef EBM_EVAL_H
#define EBM_EVAL_H

#include "ebm.h"
#include "core/net.h"
#include "eval/fid.h"
#include "eval/metrics.h"

#define EVAL_CONFIDENCE 0.9f

typedef struct {
    int n;
    double fid;                   /* NaN without reference statistics */
    double confident;             /* share with max softmax > EVAL_CONFIDENCE */
    int hist[METRICS_CLASSES];    /* predicted classes */
    double entropy;               /* of hist, natural log (ln 10 = 2.303 is balanced) */
    double asked;                 /* share classified as asked[i]; NaN when asked is NULL */
} eval_figures;

/* Runs the classifier clf on n images x (n, 784) in [-1, 1] (n >= 2) and fills out.
 * ref (may be NULL) is what FID compares with; stats (may be NULL) receives the set's own
 * feature statistics (the caller frees them), for use as a reference. */
ebm_status eval_images(net *clf, const float *x, int n, const int *asked, const fid_stats *ref, eval_figures *out,
                       fid_stats *stats);

/* n uint8 images (0..255) to floats in [-1, 1], the data range of every model. */
void eval_u8_to_float(float *dst, const uint8_t *src, long n);

#endif
