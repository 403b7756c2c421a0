/* latent_train.h - the whole latent pipeline as one run: binarize MNIST, train the
 * autoencoder, encode the training set, train the latent EBM by contrastive divergence;
 * with progress lines, a JSON-lines log, a checkpoint after every epoch and exact resume.
 *
 * Files in out_dir: autoencoder.safetensors, latent_ebm.safetensors (autoencoder.h and
 * latent_ebm.h say what they hold) and latent-metrics.jsonl, one object per line:
 *   {"phase":"autoencoder","epoch":3,"iteration":2814,"time":48.1,"train_bce":0.16,
 *    "test_bce":0.155,"test_accuracy":0.928}                           (one per epoch)
 *   {"phase":"ebm","epoch":1,"iteration":12,"time":171.9,"loss":-0.02,"e_pos":1.9,
 *    "e_neg":1.92,"acceptance":0.81}                                   (one per iteration)
 * time is seconds of training summed over resumed runs.
 *
 * Randomness: every draw is a function of the seed and counters (rng.h): the autoencoder's
 * epoch e shuffles with ebm_rng {seed, LATENT_STREAM_AE, e << 40}, the EBM's with
 * {seed, LATENT_STREAM_EBM, e << 40}; chains as latent_ebm.h says.  A checkpoint is
 * written after each epoch, so an interrupted run resumes from the last finished epoch
 * and ends bit for bit where an uninterrupted one would (same thread count).
 * A resumed run that trains the autoencoder further starts a new EBM, since the old one
 * modelled the old codes. */
#ifndef EBM_LATENT_TRAIN_H
#define EBM_LATENT_TRAIN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "ebm.h"
#include "../core/rng.h"

enum { LATENT_STREAM_AE = RNG_STREAM_USER + 8, LATENT_STREAM_EBM = RNG_STREAM_USER + 9 };

#define LATENT_AE_FILE "autoencoder.safetensors"
#define LATENT_EBM_FILE "latent_ebm.safetensors"
#define LATENT_METRICS_FILE "latent-metrics.jsonl"

typedef struct {
    const char *data_dir;       /* MNIST directory (train and t10k files) */
    int limit;                  /* first N training images; 0 = all */
    int test_limit;             /* first N test images for the per-epoch figures; 0 = all */
    int threshold;              /* binarize: byte >= threshold -> 1 */
    int auto_hidden, code_dim, auto_epochs, auto_batch;
    float auto_lr;
    int ebm_hidden, ebm_epochs, ebm_batch;
    float ebm_lr;
    int samples_per_datapoint, mcmc_steps, mala;
    float step_size;
    uint64_t seed;
} latent_config;

/* The defaults (hidden 1024, d 4, 30 epochs of batch 64 at 3e-4; EBM hidden 8, 3
 * epochs of batch 1024 at 3e-4, 8 chains per code) and ours for the sampler: MALA, 20
 * steps of size 0.05 in standardized code space, threshold 128, seed 1. */
void latent_config_default(latent_config *c);
/* Range checks naming the flag (BAD_ARG). */
ebm_status latent_config_check(const latent_config *c);

typedef struct {
    const char *out_dir;
    int resume;                 /* continue from the files in out_dir */
    FILE *progress;             /* NULL: quiet */
    int progress_tty;           /* rewrite one line (\r) instead of printing every log_every */
    int log_every;              /* iterations between progress lines when not a tty */
    volatile sig_atomic_t *stop;/* set by a signal handler: stop after the current batch */
} latent_run_opts;

typedef struct {
    double test_bce, test_accuracy;   /* autoencoder on the test set, last epoch */
    double acceptance;                /* MALA acceptance over the last EBM epoch */
    double ae_seconds, ebm_seconds;   /* wall time of this run's phases */
    int ae_epochs_run, ebm_epochs_run;
} latent_result;

ebm_status latent_train(const latent_config *c, const latent_run_opts *o, latent_result *res);

#endif
