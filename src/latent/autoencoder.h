/* autoencoder.h - the first stage of the latent pipeline: binarized images {0,1}^784 to a
 * continuous code z in R^d and back.
 *
 *   encoder  784 -> hidden (Swish) -> d              (torch: encoder.0, SiLU, encoder.2)
 *   decoder  d -> hidden (Swish) -> 784 logits        (torch: decoder.0, SiLU, decoder.2)
 *   p(x=1 | z) = sigmoid(logits); loss = binary cross-entropy, mean over pixels and images
 *   (torch.nn.BCELoss's default), computed from the logits for stability.
 *
 * Checkpoint "autoencoder.safetensors": the eight tensors above (the decoder's sigmoid is
 * not a tensor: apply torch.sigmoid), optionally the Adam moments "optim.encoder.m/v",
 * "optim.decoder.m/v" for --resume, and metadata: format, input_dim, hidden_dim,
 * encoded_dim, activation, binarize_threshold, epochs_done, adam_t, seed, test figures. */
#ifndef EBM_LATENT_AUTOENCODER_H
#define EBM_LATENT_AUTOENCODER_H

#include <stdint.h>

#include "ebm.h"
#include "mlp.h"

#define AE_FORMAT "ebm-latent-autoencoder"

typedef struct {
    int in_dim, hidden, code_dim, max_batch;
    mlp enc, dec;
    float *dcode, *dlogits;   /* backward scratch, one allocation, max_batch rows each */
} autoencoder;

/* What the checkpoint records besides the weights. */
typedef struct {
    int binarize_threshold;
    int epochs_done;
    uint64_t seed;
    double test_bce, test_accuracy;   /* after the last epoch; < 0 when not measured */
    double train_seconds;          /* training wall time, summed over resumed runs */
} ae_info;

ebm_status ae_create(autoencoder *ae, int in_dim, int hidden, int code_dim, int max_batch, uint64_t seed);
void ae_free(autoencoder *ae);

/* Gradients (accumulated into the cleared grads of enc and dec) of the mean per-pixel BCE
 * of reconstructing x01 (B, in_dim); returns that BCE, *correct as below. */
double ae_loss_grad(autoencoder *ae, const float *x01, int B, long *correct);

/* One optimisation step on a batch x01 (B, in_dim) of binary images: gradients of the mean
 * per-pixel BCE, then Adam with learning rate lr.  Returns that BCE; *correct (may be NULL)
 * receives the number of pixels whose thresholded reconstruction is right. */
double ae_train_step(autoencoder *ae, const float *x01, int B, float lr, long *correct);

/* Codes z (n, code_dim) of n images, any n (chunked by max_batch). */
void ae_encode(autoencoder *ae, const float *x01, long n, float *z);
/* Pixel probabilities (n, in_dim) of n codes, any n. */
void ae_decode(autoencoder *ae, const float *z, long n, float *probs);
/* Mean per-pixel BCE and the share of pixels reconstructed right (probability >= 0.5
 * exactly where the pixel is 1) over n images. */
void ae_evaluate(autoencoder *ae, const float *x01, long n, double *bce, double *accuracy);

/* Atomic write; with_adam adds the optimiser state needed by --resume. */
ebm_status ae_save(const autoencoder *ae, const ae_info *info, int with_adam, const char *path);
/* Reads a checkpoint into a freshly created autoencoder (sized from its metadata). */
ebm_status ae_load(const char *path, int max_batch, autoencoder *ae, ae_info *info);

/* Identifies the exact encoder weights (a latent EBM records the fingerprint of the
 * autoencoder whose codes it was trained on). */
uint64_t ae_fingerprint(const autoencoder *ae);

#endif
