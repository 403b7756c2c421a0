/* langevin.h - overdamped Langevin (ULA) and Metropolis-adjusted Langevin (MALA) chains
 * on any differentiable energy, given as a callback.
 *
 * ULA step:  x' = clamp(x - eps * clip(dE/dx) + sigma * xi, lo, hi),  xi ~ N(0, I).
 *   Proper Langevin has sigma = sqrt(2 eps); the EBM recipe decouples them (eps = 10 on
 *   a gradient clipped to +-0.03, sigma = 0.005).
 * MALA step: the same proposal without the clamp, accepted with probability
 *   min(1, exp(-E(x') + E(x)) q(x|x') / q(x'|x)),  q(b|a) = N(b; a - eps*clip(g(a)), sigma^2 I);
 *   proposals outside [lo, hi] are rejected (the target is zero there), which keeps the
 *   stationary distribution exact.
 * Noise for chain c at step t is rng_normal_fill(seed, RNG_STREAM_NOISE, c, t, ...), the
 * accept uniform rng_uniform_at(seed, RNG_STREAM_ACCEPT, c, t, 0): chains are fixed by the
 * seed whatever the thread count or batch split. */
#ifndef EBM_LANGEVIN_H
#define EBM_LANGEVIN_H

#include <stdint.h>

#include "ebm.h"

/* Energies E (n) and gradients dEdx (n, dim) of n points x (n, dim). */
typedef ebm_status (*energy_fn)(void *ctx, const float *x, int n, float *E, float *dEdx);

typedef struct {
    int mala;          /* 0: ULA, 1: MALA */
    float eps;         /* gradient step */
    float sigma;       /* noise std; < 0 means sqrt(2 eps) */
    float grad_clip;   /* <= 0: no clipping */
    float lo, hi;      /* data range; use -INFINITY/INFINITY for none */
    uint64_t seed;
    uint32_t chain0;   /* global index of chain 0 (for the RNG counter) */
    uint32_t step0;    /* global index of the first step (for the RNG counter) */
} langevin_params;

typedef struct {
    long proposed, accepted;   /* MALA counts (ULA: proposed = accepted) */
    double mean_energy;        /* mean E over chains after the last step */
} langevin_stats;

/* Called every `every` steps (and after step 0 = the start, and after the last step) with
 * the current points; returns non-OK to stop early.  `step` counts the steps done in this
 * call (0 .. steps, not offset by step0); every <= 0 means the start and the end only; E
 * holds the energies of x.  On an early stop langevin_run returns the snapshot's status
 * and x holds the points the snapshot saw. */
typedef ebm_status (*langevin_snapshot_fn)(void *ud, int step, const float *x, const float *E, int n, int dim);

/* Runs `steps` steps on n chains x (n, dim) in place.  Allocates its own scratch, once.
 * snapshot may be NULL. stats may be NULL.  Returns EBM_STATUS_BAD_ARG for a bad
 * setting (eps < 0, lo > hi, MALA with sigma 0, ...), EBM_STATUS_DIVERGED when an energy
 * or gradient is NaN/Inf (the message names the step and chain), or the callback's status.
 * Float arithmetic per element, so that other backends can match it bit for bit:
 *   ULA:  x = clamp(x - eps * cg + sigma * xi, lo, hi)      (cg = clipped gradient)
 *   MALA: y = x - eps * cg + sigma * xi; log accept ratio in double:
 *         E(x) - E(y) + eps * sum (y-x)(cg(x)+cg(y)) / sigma^2
 *                     + eps^2 (|cg(x)|^2 - |cg(y)|^2) / (2 sigma^2);
 *         accept when log(u) < that ratio.
 * The energy is called once per step on all n points (plus once at the start; ULA needs
 * one more call at the end only when stats or snapshot ask for energies).  The callback
 * is called outside any parallel region, so it may use OpenMP itself.  Starting points
 * are expected inside [lo, hi]. */
ebm_status langevin_run(energy_fn f, void *ctx, float *x, int n, int dim, int steps,
                        const langevin_params *p, langevin_stats *stats,
                        langevin_snapshot_fn snapshot, void *ud, int every);

/* sigma actually used for p. */
float langevin_sigma(const langevin_params *p);

/* 1 when langevin_run hands the points after `t` of `steps` steps to its snapshot. */
int langevin_is_snapshot_step(int t, int steps, int every);

#endif
