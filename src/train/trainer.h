/* trainer.h - maximum-likelihood training of an energy network with Langevin negatives
 * (contrastive divergence), its configuration, checkpoints with exact resume, and the
 * training loop with progress, metrics, sample grids and the divergence guard.
 *
 * The arithmetic of an iteration runs in a backend (backend.h); this module chooses the
 * positives, keeps the iteration count and the files.  Every random number of training
 * is a pure function of (seed, stream, iteration, index) through the Philox generator
 * (rng.h), so a checkpoint needs no RNG state beyond the iteration, a run of 2N
 * iterations equals N iterations + resume + N more bit for bit (on the CPU at any thread count:
 * net.c sums gradients in fixed groups), and
 * the CUDA backend draws the same numbers as the CPU one.
 *
 * ---- Random numbers of iteration `it` (0-based), seed s = hp->lv.seed -----------------
 * Every backend must draw exactly these (B = batch, N = n_samples, D = in_dim, S =
 * buffer_size, lo/hi = hp->lv.lo/hi; floats unless said otherwise):
 *  1. Positive noise, image i < B:  z = rng_normal_fill(s, TRAIN_STREAM_POS, it, i, D)
 *       x+[i][k] = fminf(fmaxf(x[i][k] + data_noise * z[k], lo), hi)
 *  2. Negatives, chain j < N.  With S > 0 (replay buffer):
 *       slot_j   = (int)(rng_uniform_at(s, TRAIN_STREAM_BUFFER, it, j, 0) * S)   (double, floor)
 *       reinit_j = rng_uniform_at(s, TRAIN_STREAM_BUFFER, it, j, 1) < (double)reinit
 *       start    = reinit_j ? noise_j : buffer[slot_j]
 *     With S == 0 (short-run): start = noise_j.
 *     noise_j: u = rng_uniform_fill(s, RNG_STREAM_START, it * N + j, 0, D) (a in uint32),
 *       x[k] = lo + (hi - lo) * u[k].
 *     Conditional models, with c[0..nc) = train_chain_classes(hp->classes, out_dim) (the
 *       training digits, backend.h): label y_j = c[slot_j % nc] with a buffer (a slot keeps
 *       its class, so persistent chains stay with one digit), else
 *       y_j = c[(int)(rng_uniform_at(s, TRAIN_STREAM_BUFFER, it, j, 2) * nc)]; then
 *       y_j = -1 (the marginal E(x)) for j < train_marginal_count(marginal_chains, N), and the
 *       trainer gives positives i < train_marginal_count(marginal, B) the label -1 too.
 *  3. Langevin (ULA, langevin.h) on the N chains with lv.seed = s, chain0 = it * N
 *     (uint32), step0 = 0: chain j's noise at step t is rng_normal_fill(s,
 *     RNG_STREAM_NOISE, it * N + j, t, D).
 *  4. Write-back: buffer[slot_j] = x-_j for j = 0, 1, ..., N-1 in order: when two chains
 *     picked the same slot, the larger j wins.
 *  5. Buffer initialisation (fresh run): slot q gets lo + (hi - lo) * u with
 *     u = rng_uniform_fill(s, RNG_STREAM_START, q, 1, D)  (b = 1 keeps it apart from 2).
 * ---- Loss and update ------------------------------------------------------------------
 *  E+ = E(x+) (or E(x+, y+)), E- = E(x-) (or E(x-, y-)),
 *  loss = mean E+ - mean E- + alpha * (mean E+^2 + mean E-^2)
 *  dloss/dE+_i = (1 + 2 alpha E+_i) / B,   dloss/dE-_j = (-1 + 2 alpha E-_j) / N,
 *  grad_norm = the L2 norm of the whole parameter gradient, before the update;
 *  one Adam step (adam.h) with t = it + 1.  A backend applies no update when the loss or
 *  the gradient is not finite, and returns EBM_STATUS_DIVERGED.
 *  Stats: loss, e_pos = mean E+, e_neg = mean E- (double sums, reported as float).
 *  Conditional models with marginal = 0, marginal_chains = 1 (labelled positives, chains on
 *  E(x)) follow the gradient of the joint log-likelihood log p(x, y): its negative phase is
 *  E_p(x,y)[dE(x,y)] = E_p(x)[sum_y p(y|x) dE(x,y)] = E_p(x)[dE(x)].  Chains per class
 *  (marginal_chains = 0) follow log p(x | y) instead, which leaves each class's offset, and
 *  so the marginal E(x), unconstrained.
 * ---- Sampling-only backends --------------------------------------------------------------
 *  `ebm sample` and `ebm chain` create a backend with hp zeroed except lv.lo/hi (batch =
 *  n_samples = buffer_size = 0) and call only sample/destroy.  Their chain i starts from
 *  lo + (hi - lo) * rng_uniform_fill(seed, RNG_STREAM_START, i, 0, D), with chain0 = 0.
 * ---- Positives (host, this module) -----------------------------------------------------
 *  nb = n_images / B batches per epoch (the short tail is dropped); iteration it uses
 *  epoch e = it / nb, batch k = it % nb: images perm_e[k*B .. k*B+B-1] where perm_e =
 *  rng_permutation over the selected images from {s, RNG_STREAM_DATA, counter e << 40}.
 */
#ifndef EBM_TRAINER_H
#define EBM_TRAINER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "ebm.h"
#include "backend.h"
#include "../core/net.h"
#include "../data/dataset.h"

enum {
    TRAIN_STREAM_POS = RNG_STREAM_USER + 0,    /* positive noise */
    TRAIN_STREAM_BUFFER = RNG_STREAM_USER + 1  /* replay-buffer slot picks, re-init, labels */
};

/* The default negatives mode, in one place: 0 = short-run chains from uniform noise every
 * iteration (Nijkamp et al. 2019), so that sampling from noise with the training chain
 * length is what the model learned.  Measured (docs/QUALITY.md, 4 min on an H100, fresh
 * chains from noise, 1000 samples): FID/floor 7.6 short-run vs 21.6 with an 8192-chain
 * replay buffer; a positive value selects the persistent buffer with re-initialisation. */
#define TRAIN_DEFAULT_BUFFER 0
/* Divergence guard: a mean energy beyond this is taken as a run blowing up. */
#define TRAIN_ENERGY_LIMIT 1e4f

/* Everything that defines a run's mathematics; saved in checkpoints as JSON. */
typedef struct {
    train_hparams hp;
    char arch[NET_SPEC_MAX];   /* spec as given ("cnn-small" or a layer list) */
    uint64_t seed;             /* model init and every random draw of training */
    char data_dir[512];
    char digits[64];           /* "all", "3", "5,7" */
    int limit;                 /* first `limit` selected images; 0 = all */
    uint64_t iters;            /* total iterations to reach (not "more") */
    int lr_cosine;             /* 1: the learning rate falls from hp.lr to lr_final along a half
                                  cosine over iters (trainer_lr); 0: constant hp.lr */
    float lr_final;
    char init[512];            /* the model a warm-started run took its first parameters from
                                  (trainer_init_from), "" for a seeded start; provenance only */
} train_config;

/* The learning rate of iteration it (0-based) under c's schedule. */
float trainer_lr(const train_config *c, uint64_t it);

/* The peer recipe (shared/bench/README.md): batch 128, lr 1e-4, Adam betas (0, 0.999),
 * 60 Langevin steps of eps 10 on gradients clipped to 0.03 with noise 0.005, alpha 0.1,
 * but negatives from TRAIN_DEFAULT_BUFFER (short-run chains from noise; re-init 0.05 applies
 * when a buffer is chosen), cnn-small, data in [-1, 1]. */
void train_config_default(train_config *c);
/* JSON text of c (caller frees with free()); parse it back (fields absent keep c's). */
char *train_config_to_json(const train_config *c);
ebm_status train_config_from_json(const char *json, train_config *c);
/* Checks ranges (batch > 0, eps >= 0, ...); BAD_ARG naming the flag. */
ebm_status train_config_check(const train_config *c);

typedef struct trainer trainer;

/* Where a trainer computes: device -1 for the CPU backend, else the first CUDA device;
 * gpus > 1 trains data-parallel on GPUs device .. device + gpus - 1 (backend.h,
 * backend_cuda_multi_create); threads: CPU threads, 0 = all cores; tf32: the CUDA chains on
 * the TF32 tensor cores (train_hparams.tf32). */
typedef struct {
    int device, gpus, threads, tf32;
} train_place;

/* Checks that the replicas of a data-parallel backend agree every this many iterations
 * (and before every checkpoint). */
#define TRAIN_VERIFY_EVERY 100

/* d must outlive the trainer and hold at least hp.batch images. */
ebm_status trainer_create(const train_config *c, const dataset *d, train_place where, trainer **out);
/* Reads a checkpoint's config, iteration and elapsed seconds (no tensors); NULL outputs skipped. */
ebm_status trainer_peek(const char *path, train_config *c, uint64_t *iteration, double *elapsed);
/* Restores parameters, Adam moments, replay buffer and iteration from path; c is the
 * config to continue with (trainer_peek's, possibly with changed lr/eps/...; the
 * architecture, seed, buffer size, n_samples and conditional flag must be the file's). */
ebm_status trainer_resume(const char *path, const train_config *c, const dataset *d, train_place where,
                          trainer **out);
void trainer_free(trainer *t);
/* Warm start: a fresh trainer (iteration 0) takes the parameters of the model or checkpoint
 * at path (same architecture; Adam moments, buffer and iteration stay fresh), e.g. to
 * fine-tune an unconditional model into a conditional one.  BAD_ARG on another architecture
 * or a trainer that has already run. */
ebm_status trainer_init_from(trainer *t, const char *path);

/* One iteration (the current one) then iteration += 1.  DIVERGED when the backend refuses
 * or an energy is non-finite or beyond TRAIN_ENERGY_LIMIT (message names the iteration). */
ebm_status trainer_step(trainer *t, train_step_stats *st);
/* Writes the full checkpoint (model, "adam.m", "adam.v", "buffer", state) atomically. */
ebm_status trainer_save(trainer *t, const char *path);
/* Writes only the network (plus the training config, whose sampler settings `ebm sample`
 * takes as defaults): the small file to ship, ~1/80 of a checkpoint with its buffer. */
ebm_status trainer_export(trainer *t, const char *path);
/* n fresh chains from noise (steps of the training sampler, seeded by seed) into x (n, D);
 * conditional models draw the training digits in turn (chain i: c[i % nc], as above).  For
 * progress grids. */
ebm_status trainer_sample(trainer *t, float *x, int n, int steps, uint64_t seed);

uint64_t trainer_iteration(const trainer *t);
int trainer_batches_per_epoch(const trainer *t);
const train_config *trainer_config(const trainer *t);
/* The host network with the current parameters (pulled from the backend). */
net *trainer_net(trainer *t);
/* Copies the replay buffer (buffer_size * D floats) to dst. */
ebm_status trainer_buffer(trainer *t, float *dst);

/* ---- the loop -------------------------------------------------------------------------- */
typedef struct metrics_log metrics_log;

typedef struct {
    const char *out;           /* checkpoint path: every checkpoint_every, at the end, on stop */
    int checkpoint_every;      /* 0 = only at the end */
    const char *samples_png;   /* grid of fresh samples every sample_every and at the end, or NULL */
    int sample_every;
    int sample_steps;
    metrics_log *metrics;      /* or NULL */
    int metrics_every;
    const char *curves_png;    /* training curves drawn from the metrics log at the end, or NULL */
    const char *export_model;  /* the plain model (trainer_export) written at the end, or NULL */
    FILE *progress;            /* or NULL for silence */
    int progress_tty;          /* 1: one live line (\r); 0: a line every log_every iterations */
    int log_every;
    double max_seconds;        /* wall-clock budget of this run (0 = none) */
    volatile sig_atomic_t *stop; /* set by a signal handler: save, then EBM_STATUS_INTERRUPTED */
} train_run_opts;

/* Trains up to the config's iters.  OK; INTERRUPTED after saving; DIVERGED without
 * overwriting the last good checkpoint (message: iteration, hint, which file is kept). */
ebm_status trainer_run(trainer *t, const train_run_opts *o);

#endif
