/* backend.h - where the arithmetic of training and sampling runs: the CPU reference or a
 * device (CUDA).  The trainer and the CLI drive a backend; a backend owns its copy of the
 * parameters, Adam moments and replay buffer (on the device for CUDA), so that an
 * iteration moves only the positive batch in and a few scalars out.
 *
 * The math of one training iteration (identical on every backend, from the same seed):
 *   1. positives x+ (B images, host memory, given by the trainer),
 *   2. negatives: n_samples chains started from the replay buffer (each slot re-initialised
 *      to uniform noise with probability reinit) or, with buffer_size 0, from uniform noise;
 *      `steps` Langevin steps (langevin.h); written back to the buffer,
 *   3. loss = mean E(x+) - mean E(x-) + alpha * (mean E(x+)^2 + mean E(x-)^2),
 *   4. gradients of the loss w.r.t. the parameters, then one Adam step.
 * The random numbers of each stage are pinned down in trainer.h so that backends agree. */
#ifndef EBM_BACKEND_H
#define EBM_BACKEND_H

#include <stdint.h>

#include "ebm.h"
#include "../core/net.h"
#include "../sample/langevin.h"

typedef struct {
    int batch;            /* B positives per iteration */
    int n_samples;        /* negatives per iteration */
    int steps;            /* Langevin steps per iteration */
    langevin_params lv;   /* eps, sigma, clip, range, seed (mala = 0 in training) */
    float alpha;          /* energy magnitude regulariser */
    float lr, beta1, beta2, adam_eps;
    float data_noise;     /* std of noise added to positives (0.005) */
    int buffer_size;      /* 0: short-run chains from noise */
    float reinit;         /* replay-buffer re-initialisation probability */
    int conditional;      /* class-conditional energy: positives carry labels */
    float marginal;       /* conditional models: the share of positives that train the marginal
                             E(x) = -logsumexp_y E(x, y) instead of E(x, y) (label -1; JEM-style) */
    float marginal_chains; /* ... and the share of chains that sample the marginal instead of one
                             class; 1 with marginal 0 is the joint likelihood of (x, y) (trainer.h) */
    uint16_t classes;     /* conditional models: the classes whose chains are drawn (bit d = digit d,
                             the training digits); 0 = every output.  Set by the trainer from
                             --digits, not saved: the config's digits say it */
    int tf32;             /* CUDA: the ULA chains' convolutions on the TF32 tensor cores
                             (--precision tf32; gradients of the parameters stay fp32).  A run-time
                             choice like --device: not saved */
} train_hparams;

#define TRAIN_MAX_CLASSES 16

/* The classes conditional chains are drawn from, ascending, into c (TRAIN_MAX_CLASSES):
 * the set bits of classes below out_dim, or every output when none is set.  Returns how
 * many.  With all ten digits it is 0..9, so chain labels are what they were before digit
 * subsets had their own (trainer.h, random numbers 2). */
static inline int train_chain_classes(uint16_t classes, int out_dim, int *c) {
    int n = 0;
    for (int d = 0; d < out_dim && d < TRAIN_MAX_CLASSES; d++)
        if (classes >> d & 1u) c[n++] = d;
    if (n == 0)
        for (int d = 0; d < out_dim && d < TRAIN_MAX_CLASSES; d++) c[n++] = d;
    return n;
}

/* How many of n positives or chains train the marginal: the first floor(share * n). */
static inline int train_marginal_count(float share, int n) { return share > 0 ? (int)(share * (float)n) : 0; }

typedef struct {
    float loss, e_pos, e_neg, grad_norm;
} train_step_stats;

typedef struct train_backend {
    const char *name;     /* "cpu", "cuda" */
    void *ctx;
    /* One iteration (see above); iter is the global iteration index (for the RNG). */
    ebm_status (*train_step)(void *ctx, const float *x_pos, const int *y_pos, int B, const train_hparams *hp,
                             uint64_t iter, train_step_stats *st);
    /* Langevin (ULA or MALA per p) on n host points in place; stats may be NULL. */
    ebm_status (*sample)(void *ctx, float *x, const int *y, int n, int steps, const langevin_params *p,
                         langevin_stats *stats, langevin_snapshot_fn snap, void *ud, int every);
    /* Copies parameters and Adam moments (into host->params/adam_m/adam_v) and the replay
     * buffer (buffer_size*in_dim floats, may be NULL) to the host, and back. */
    ebm_status (*pull)(void *ctx, net *host, float *buffer);
    ebm_status (*push)(void *ctx, const net *host, const float *buffer);
    void (*destroy)(void *ctx);
    /* Backends with several copies of the parameters (data-parallel, several GPUs): checks
     * that every copy is bit-identical; DIVERGED naming the copies when not.  NULL otherwise. */
    ebm_status (*verify)(void *ctx, uint64_t iter);
} train_backend;

/* The CPU reference backend, operating on `host` directly. */
ebm_status backend_cpu_create(net *host, const train_hparams *hp, train_backend *out);
/* The CUDA backend (returns EBM_STATUS_UNSUPPORTED with a clear message when this build has
 * no CUDA or no GPU is present). device = GPU index. */
ebm_status backend_cuda_create(net *host, const train_hparams *hp, int device, train_backend *out);
/* Data-parallel training on GPUs device .. device + gpus - 1 of this host, one process,
 * NCCL (backend_multi.cu): each GPU runs batch/gpus positives, n_samples/gpus chains and its
 * buffer_size/gpus shard of the replay buffer; the gradients are summed by all-reduce and
 * every GPU takes the same Adam step.  gpus = 1 is backend_cuda_create.  UNSUPPORTED when
 * this build has no CUDA or no NCCL. */
ebm_status backend_cuda_multi_create(net *host, const train_hparams *hp, int device, int gpus, train_backend *out);

#endif
