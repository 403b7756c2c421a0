/* rng.c - Philox4x32-10 and the derived uniform/normal streams. */
#include "rng.h"

#include <string.h>

#include "boxmuller.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void philox4x32(const uint32_t ctr[4], uint64_t key, uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, c0, &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* Counter layout: (block index, a, b, stream); key = seed. */
static void block(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t blk,
                  uint32_t out[4]) {
    const uint32_t ctr[4] = {blk, a, b, stream};
    philox4x32(ctr, seed, out);
}

void rng_uniform_fill(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float *out, int n) {
    for (int i = 0; i < n; i += 4) {
        uint32_t w[4];
        block(seed, stream, a, b, (uint32_t)(i / 4), w);
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = (float)(w[j] >> 8) * (1.0f / 16777216.0f);
    }
}

/* rng_normal_fill works on LANES consecutive Philox blocks at a time, in plain loops over
 * the lanes that gcc turns into vector code: Philox's 32x32->64 multiplies become vector
 * multiplies of zero-extended lanes, and boxmuller.h is branch-free.  32 lanes are two
 * AVX-512 registers per word: with 16, each round waits on the last one's multiply latency
 * (1.3 against 0.72 us per 784 normals, docs/PERF.md).  Short tails take the scalar path
 * through the same functions; with no contraction and no libm calls, vector and scalar
 * lanes round alike, so element i does not depend on n (tests/test_rng.c checks it). */
enum { LANES = 32, TAIL_SCALAR = 8 }; /* TAIL_SCALAR: the longest tail done block by block */

/* The 4 words of blocks blk0 .. blk0+LANES-1, word j of block blk0+l in w[j][l].  Not
 * inlined: inside rng_normal_fill gcc 12 unrolls the lane loop and leaves it scalar. */
__attribute__((noinline)) static void philox_lanes(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b,
                                                   uint32_t blk0, uint32_t w[4][LANES]) {
    uint32_t c0[LANES], c1[LANES], c2[LANES], c3[LANES];
    for (int l = 0; l < LANES; l++) c0[l] = blk0 + (uint32_t)l, c1[l] = a, c2[l] = b, c3[l] = stream;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        for (int l = 0; l < LANES; l++) {
            const uint64_t p0 = (uint64_t)PHILOX_M0 * c0[l], p1 = (uint64_t)PHILOX_M1 * c2[l];
            const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c0[l] = n0, c1[l] = (uint32_t)p1, c2[l] = n2, c3[l] = (uint32_t)p0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    memcpy(w[0], c0, sizeof c0), memcpy(w[1], c1, sizeof c1), memcpy(w[2], c2, sizeof c2), memcpy(w[3], c3, sizeof c3);
}

/* Normals 4*blk0 .. 4*(blk0+LANES)-1 into out, in stream order. */
static inline void normal_lanes(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t blk0, float *out) {
    uint32_t w[4][LANES];
    float z[4][LANES];
    philox_lanes(seed, stream, a, b, blk0, w);
    for (int l = 0; l < LANES; l++) {
        bm_pair(w[0][l], w[1][l], &z[0][l], &z[1][l]);
        bm_pair(w[2][l], w[3][l], &z[2][l], &z[3][l]);
    }
    for (int l = 0; l < LANES; l++)
        for (int j = 0; j < 4; j++) out[4 * l + j] = z[j][l];
}

void rng_normal_fill(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float *out, int n) {
    /* Box-Muller: each block of 4 words gives 4 normals (two pairs). */
    int i = 0;
    for (; i + 4 * LANES <= n; i += 4 * LANES) normal_lanes(seed, stream, a, b, (uint32_t)(i / 4), out + i);
    if (n - i > TAIL_SCALAR) { /* a vector pass into scratch beats many scalar blocks */
        float z[4 * LANES];
        normal_lanes(seed, stream, a, b, (uint32_t)(i / 4), z);
        memcpy(out + i, z, sizeof(float) * (size_t)(n - i));
        return;
    }
    for (; i < n; i += 4) {
        uint32_t w[4];
        block(seed, stream, a, b, (uint32_t)(i / 4), w);
        float z[4] = {0};
        for (int p = 0; p < 2 && i + 2 * p < n; p++) /* skip a pair nobody reads */
            bm_pair(w[2 * p], w[2 * p + 1], &z[2 * p], &z[2 * p + 1]);
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = z[j];
    }
}

double rng_uniform_at(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t i) {
    uint32_t w[4];
    block(seed, stream, a, b, i, w);
    uint64_t bits = ((uint64_t)w[0] << 21) ^ (uint64_t)w[1];
    return (double)(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

ebm_rng rng_make(uint64_t seed, uint32_t stream) {
    ebm_rng r = {seed, stream, 0};
    return r;
}

uint32_t rng_u32(ebm_rng *r) {
    uint32_t w[4];
    const uint32_t ctr[4] = {(uint32_t)r->counter, (uint32_t)(r->counter >> 32), 0x5EED5EEDu, r->stream};
    philox4x32(ctr, r->seed, w);
    r->counter++;
    return w[0];
}

double rng_uniform(ebm_rng *r) {
    uint64_t hi = rng_u32(r) >> 6, lo = rng_u32(r) >> 5; /* 26 + 27 = 53 bits */
    return (double)((hi << 27) | lo) * (1.0 / 9007199254740992.0);
}

uint32_t rng_below(ebm_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    uint32_t limit = UINT32_MAX - UINT32_MAX % n; /* reject the biased tail */
    for (;;) {
        uint32_t v = rng_u32(r);
        if (v < limit) return v % n;
    }
}

void rng_permutation(ebm_rng *r, int *perm, int n) {
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint32_t)i + 1);
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}
