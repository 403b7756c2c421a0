/* classifier.h - the small MNIST classifier that `ebm eval` measures samples with.
 *
 * A CNN built from the project's own layers (net.h), trained once with softmax cross-
 * entropy and Adam on the 60,000 MNIST training images (random small rotations, scalings
 * and shifts as augmentation), then cached as a safetensors file (format "ebm-classifier", bundled
 * as models/classifier.safetensors).  Its penultimate activations (the Swish after the
 * 128-unit dense layer) are the features of the project's FID; its softmax gives the
 * confidence and the predicted class.  The network is small on purpose: the file stays
 * under 1 MB and a forward pass over the 10,000 test images takes seconds on a laptop. */
#ifndef EBM_CLASSIFIER_H
#define EBM_CLASSIFIER_H

#include <stdint.h>
#include <stdio.h>

#include "ebm.h"
#include "core/net.h"
#include "data/dataset.h"

#define CLASSIFIER_SPEC                                                                           \
    "in:1x28x28,conv:32:3:1:1,swish,conv:64:3:2:1,swish,conv:64:3:2:1,swish,conv:64:3:2:1,swish," \
    "flatten,dense:128,swish,dense:10"
#define CLASSIFIER_FORMAT "ebm-classifier"
#define CLASSIFIER_CLASSES 10
#define CLASSIFIER_DEFAULT_PATH "models/classifier.safetensors"

typedef struct {
    int epochs, batch;
    float lr;          /* Adam learning rate, cosine-decayed to lr/20 over the run */
    float max_shift;   /* augmentation: shift by up to +-max_shift pixels, */
    float max_rotate;  /* rotation by up to +-max_rotate degrees, */
    float max_scale;   /* scaling by 1 +- max_scale */
    uint64_t seed;
} classifier_params;

void classifier_params_default(classifier_params *p);

/* Trains a new classifier on `train`; when `test` is given, reports its accuracy after
 * each epoch to `log` (which may be NULL for silence). */
ebm_status classifier_train(const dataset *train, const dataset *test, const classifier_params *p, FILE *log,
                            net **out);

/* Saves n as an "ebm-classifier" file with its test accuracy and the command that made it
 * in the metadata. */
ebm_status classifier_save(const char *path, const net *n, double test_accuracy, const char *command);
/* Loads an "ebm-classifier" file; recorded_accuracy (may be NULL) gets the test accuracy
 * stored at training (NaN if absent).  Other safetensors files are BAD_FILE with a hint. */
ebm_status classifier_load(const char *path, net **out, double *recorded_accuracy);

/* Number of features (the penultimate layer's size). */
int classifier_feature_dim(const net *n);

/* Class probabilities probs (N, 10) and features feats (N, classifier_feature_dim) of N
 * images x (N, 784) in [-1, 1]; either output may be NULL. */
ebm_status classifier_predict(net *n, const float *x, int N, float *probs, float *feats);

/* Share of d's images whose predicted class is their label. */
ebm_status classifier_accuracy(net *n, const dataset *d, double *acc);

#endif
