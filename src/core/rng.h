/* rng.h - counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * Every random number is a pure function of (seed, stream, a, b, index), so a chain's
 * noise does not depend on thread count or visiting order, and the CUDA backend can draw
 * the very same numbers in-kernel.  Streams separate uses (Langevin noise, MALA accept,
 * shuffling, init).  Conventions: a = chain (or sample) index, b = step. */
#ifndef EBM_RNG_H
#define EBM_RNG_H

#include <stdint.h>

enum {
    RNG_STREAM_INIT = 1,    /* parameter initialisation */
    RNG_STREAM_NOISE = 2,   /* Langevin noise xi */
    RNG_STREAM_ACCEPT = 3,  /* MALA accept/reject uniforms */
    RNG_STREAM_START = 4,   /* chain starting points (uniform noise images) */
    RNG_STREAM_DATA = 5,    /* shuffling, batch selection, replay-buffer picks */
    RNG_STREAM_USER = 16    /* first free stream for other modules */
};

/* One Philox4x32-10 block: 4 random words from a 128-bit counter and 64-bit key. */
void philox4x32(const uint32_t ctr[4], uint64_t key, uint32_t out[4]);

/* n standard normals for (seed, stream, a, b); element i is the same whatever n is. */
void rng_normal_fill(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float *out, int n);
/* n uniforms in [0,1) for (seed, stream, a, b). */
void rng_uniform_fill(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float *out, int n);
/* The i-th uniform of (seed, stream, a, b), in [0,1), in double precision (53 bits). */
double rng_uniform_at(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t i);

/* A sequential generator for bookkeeping (shuffles, picks): its whole state is
 * (seed, stream, counter), so it is saved in checkpoints and resumes exactly. */
typedef struct {
    uint64_t seed;
    uint32_t stream;
    uint64_t counter;
} ebm_rng;

ebm_rng rng_make(uint64_t seed, uint32_t stream);
uint32_t rng_u32(ebm_rng *r);
double rng_uniform(ebm_rng *r);          /* [0,1) */
uint32_t rng_below(ebm_rng *r, uint32_t n); /* uniform in [0,n), unbiased */
void rng_permutation(ebm_rng *r, int *perm, int n); /* Fisher-Yates over 0..n-1 */

#endif
