/* dataset.h - images and labels in memory, digit selection, shuffled batches.
 *
 * Pixels are stored as floats in [-1, 1] (p/255*2-1), the data range of every model. */
#ifndef EBM_DATASET_H
#define EBM_DATASET_H

#include <stdint.h>

#include "ebm.h"
#include "../core/rng.h"

typedef struct {
    int n, h, w;       /* n images of h x w */
    float *x;          /* (n, h*w) in [-1, 1] */
    uint8_t *y;        /* (n) labels 0..9 */
} dataset;

/* Parses a digit selection: "all" (or "" / NULL), "3", "5,7" -> bitmask of digits 0..9.
 * Unknown or repeated entries are EBM_STATUS_BAD_ARG with a message. */
ebm_status digits_parse(const char *s, uint16_t *mask);

/* Loads an image IDX (n, h, w) and label IDX (n) and keeps the digits in mask;
 * limit > 0 keeps at most the first `limit` selected images. */
ebm_status dataset_load(const char *images_path, const char *labels_path, uint16_t mask, int limit,
                        dataset *out);

/* Finds the MNIST (or Fashion-MNIST) files of a split in dir: "<prefix>-images-idx3-ubyte"
 * with or without ".gz"; split is "train" or "t10k". */
ebm_status dataset_paths(const char *dir, const char *split, char *images, char *labels, int len);

/* Shorthand: dataset_paths + dataset_load. */
ebm_status dataset_load_dir(const char *dir, const char *split, uint16_t mask, int limit, dataset *out);

void dataset_free(dataset *d);

/* Binarizes images for the latent pipeline: each pixel x in [-1, 1] is mapped back to its
 * 0..255 value p (rounded) and out01 = 1 when p >= threshold_255, else 0.  NaN maps to 0.
 * x and out01 are (n); they may be the same array. */
void binarize_u8_to01(const float *x, long n, int threshold_255, float *out01);

/* Epoch iteration: a permutation from r, then batches of B (the last one short). */
typedef struct {
    const dataset *d;
    int *perm;
    int pos, B;
} batcher;

ebm_status batcher_init(batcher *bt, const dataset *d, int B, ebm_rng *r);
/* Copies the next batch into x (B, h*w) and y (B) (y may be NULL); returns its size, 0 at
 * the end of the epoch.  batcher_reshuffle starts a new epoch. */
int batcher_next(batcher *bt, float *x, uint8_t *y);
void batcher_reshuffle(batcher *bt, ebm_rng *r);
void batcher_free(batcher *bt);

#endif
