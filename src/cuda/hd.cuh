/* hd.cuh - what the CUDA kernels share with their CPU emulation: the host/device
 * qualifiers, exactly-rounded float operations (no FMA contraction where the CPU reference
 * has none), the read-only load, and Philox4x32-10 with the uniform/normal streams of
 * src/core/rng.c reproduced bit for bit (the normals through the same Box-Muller code,
 * src/core/boxmuller.h).
 *
 * Why the emulation: this project's build machine has nvcc but no GPU, and device time is
 * scarce.  The fused kernels are written as phases run by "every thread of the block"
 * between barriers (exec.par below); on the host the same phases run thread after thread,
 * so tests/cuda/test_fused_emu.cu checks every index of the kernels against the CPU
 * network without a GPU. */
#ifndef EBM_CUDA_HD_CUH
#define EBM_CUDA_HD_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

extern "C" {
#include "../core/rng.h"
}
#include "../core/boxmuller.h"

#define HD __host__ __device__ __forceinline__

#ifdef __CUDA_ARCH__
#define LDG(p) __ldg(p)
#define FMUL(a, b) __fmul_rn((a), (b))
#define FADD(a, b) __fadd_rn((a), (b))
#define FSUB(a, b) __fsub_rn((a), (b))
#define FDIV(a, b) __fdiv_rn((a), (b))
#define FFMA(a, b, c) __fmaf_rn((a), (b), (c))
#else
#define LDG(p) (*(p))
#define FMUL(a, b) ((float)(a) * (float)(b))
#define FADD(a, b) ((float)(a) + (float)(b))
#define FSUB(a, b) ((float)(a) - (float)(b))
#define FDIV(a, b) ((float)(a) / (float)(b))
#define FFMA(a, b, c) fmaf((a), (b), (c))
#endif

/* ---- Philox4x32-10 (rng.c) ------------------------------------------------------------- */
HD uint32_t hd_mulhi(uint32_t a, uint32_t b) {
#ifdef __CUDA_ARCH__
    return __umulhi(a, b);
#else
    return (uint32_t)(((uint64_t)a * b) >> 32);
#endif
}

HD void hd_philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint64_t key, uint32_t out[4]) {
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
#pragma unroll
    for (int round = 0; round < 10; round++) {
        const uint32_t hi0 = hd_mulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        const uint32_t hi1 = hd_mulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

/* Counter layout of rng.c: (block index, a, b, stream), key = seed. */
HD void hd_block(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t blk, uint32_t w[4]) {
    hd_philox(blk, a, b, stream, seed, w);
}

/* Elements 4*blk .. 4*blk+3 of rng_normal_fill(seed, stream, a, b, ...). */
HD void hd_normal4(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t blk, float z[4]) {
    uint32_t w[4];
    hd_block(seed, stream, a, b, blk, w);
    bm_pair(w[0], w[1], &z[0], &z[1]);
    bm_pair(w[2], w[3], &z[2], &z[3]);
}

/* Elements 4*blk .. 4*blk+3 of rng_uniform_fill. */
HD void hd_uniform4(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t blk, float u[4]) {
    uint32_t w[4];
    hd_block(seed, stream, a, b, blk, w);
#pragma unroll
    for (int j = 0; j < 4; j++) u[j] = FMUL((float)(w[j] >> 8), 1.0f / 16777216.0f);
}

/* rng_uniform_at. */
HD double hd_uniform_at(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t i) {
    uint32_t w[4];
    hd_block(seed, stream, a, b, i, w);
    const uint64_t bits = ((uint64_t)w[0] << 21) ^ (uint64_t)w[1];
    return (double)(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* ---- activations (layers.c's fast_expf and sigmoid, same operations in the same order) -- */
HD float hd_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float n = FSUB(FADD(FMUL(x, 1.44269504088896341f), 12582912.0f), 12582912.0f);
    float r = FFMA(n, -0.693359375f, x);
    r = FFMA(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = FFMA(p, r, 1.3981999507e-3f);
    p = FFMA(p, r, 8.3334519073e-3f);
    p = FFMA(p, r, 4.1665795894e-2f);
    p = FFMA(p, r, 1.6666665459e-1f);
    p = FFMA(p, r, 5.0000001201e-1f);
    p = FADD(FFMA(FMUL(p, r), r, r), 1.0f);
    const int32_t e = (int32_t)n + 127;
#ifdef __CUDA_ARCH__
    const float s = __int_as_float(e << 23);
#else
    union {
        uint32_t u;
        float f;
    } su = {(uint32_t)e << 23};
    const float s = su.f;
#endif
    return FMUL(p, s);
}

HD float hd_sigmoid(float x) { return FDIV(1.0f, FADD(1.0f, hd_expf(-x))); }

/* swish(z) and its derivative s + z s (1 - s), as layers.c evaluates them. */
HD void hd_swish(float z, float *a, float *d) {
    const float s = hd_sigmoid(z);
    *a = FMUL(z, s);
    *d = FADD(s, FMUL(FMUL(z, s), FSUB(1.0f, s)));
}

/* hd_swish from the hardware's approximate exp2 and reciprocal (about 2 ulp): the TF32 mode's
 * epilogues (fused.cuh RT), where TF32 rounding (2^-11) dwarfs it and the accurate form's
 * exp and division were most of L0's forward (ncu, docs/PERF_CUDA.md run 8).  The CPU
 * emulation has no such hardware and computes hd_swish. */
HD void hd_swish_fast(float z, float *a, float *d) {
#ifdef __CUDA_ARCH__
    const float s = __fdividef(1.0f, 1.0f + __expf(-z));
    *a = z * s;
    *d = s + z * s * (1.0f - s);
#else
    hd_swish(z, a, d);
#endif
}

HD float hd_clampf(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }

#endif
