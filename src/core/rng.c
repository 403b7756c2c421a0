/* rng.c - Philox4x32-10 and the derived uniform/normal streams. */
#include "rng.h"

#include <math.h>

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

/* 24-bit uniform in (0,1]: never 0, so log() is safe in Box-Muller. */
static inline float u24_open0(uint32_t w) { return ((float)(w >> 8) + 1.0f) * (1.0f / 16777216.0f); }

void rng_uniform_fill(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float *out, int n) {
    for (int i = 0; i < n; i += 4) {
        uint32_t w[4];
        block(seed, stream, a, b, (uint32_t)(i / 4), w);
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = (float)(w[j] >> 8) * (1.0f / 16777216.0f);
    }
}

void rng_normal_fill(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float *out, int n) {
    /* Box-Muller: each block of 4 words gives 4 normals (two pairs). */
    for (int i = 0; i < n; i += 4) {
        uint32_t w[4];
        block(seed, stream, a, b, (uint32_t)(i / 4), w);
        float z[4] = {0};
        for (int p = 0; p < 2 && i + 2 * p < n; p++) { /* skip a pair nobody reads */
            float u1 = u24_open0(w[2 * p]), u2 = u24_open0(w[2 * p + 1]);
            float r = sqrtf(-2.0f * logf(u1));
            float t = 6.28318530717958647692f * u2;
            z[2 * p] = r * cosf(t);
            z[2 * p + 1] = r * sinf(t);
        }
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
