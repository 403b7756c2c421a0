/* boxmuller.h - the Box-Muller transform of rng_normal_fill, written once for C (rng.c)
 * and CUDA (src/cuda/hd.cuh), so that CPU and GPU draw bit-identical normals.
 *
 * Two Philox words w1, w2 give u1 = ((w1 >> 8) + 1) / 2^24 in (0,1] and the angle
 * 2 pi m / 2^24 with m = (w2 >> 8) + 1, and the pair r cos, r sin with r = sqrt(-2 ln u1).
 * glibc's and CUDA's logf/sinf/cosf differ in the last ulp, hence our own polynomials:
 *  - ln u: u = 2^k z with z in [sqrt(1/2), sqrt(2)) from the bits, f = z - 1 (exact), then
 *    ln(1+f) = f + f^2 Q(f) with a degree-9 minimax Q, and + k ln 2 in one fma.
 *  - sin/cos: m is exact, so the reduction is too: q = nearest quarter turn, t = the rest
 *    in eighths of a turn (t in [-1, 1], a power-of-two scaling of an integer), then
 *    sin(pi t/4) and cos(pi t/4) as degree-9 / degree-8 minimax polynomials in t.
 * Over all 2^24 grid values of u1 and of m (tests/test_boxmuller.c) the worst errors
 * against double precision are 0.99 ulp (ln) and 1.02 ulp (sin, cos).
 *
 * Bit identity needs every operation rounded the same way by gcc and nvcc: each
 * multiply-add is an explicit fma, no plain product feeds an addition (nothing for a
 * compiler to contract), and the device side uses the _rn intrinsics like hd.cuh.
 * Everything is branch-free, so gcc vectorises loops over these functions. */
#ifndef EBM_BOXMULLER_H
#define EBM_BOXMULLER_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define BM_FN static __host__ __device__ __forceinline__
#else
#define BM_FN static inline
#endif

#ifdef __CUDA_ARCH__
#define BM_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#define BM_MUL(a, b) __fmul_rn((a), (b))
#define BM_SUB(a, b) __fsub_rn((a), (b))
#define BM_SQRT(x) __fsqrt_rn(x)
#else
#define BM_FMA(a, b, c) fmaf((a), (b), (c))
#define BM_MUL(a, b) ((float)(a) * (float)(b))
#define BM_SUB(a, b) ((float)(a) - (float)(b))
#define BM_SQRT(x) sqrtf(x)
#endif

BM_FN uint32_t bm_asuint(float x) {
#ifdef __CUDA_ARCH__
    return __float_as_uint(x);
#else
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
#endif
}

BM_FN float bm_asfloat(uint32_t u) {
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
#endif
}

/* Natural log of a positive normal float (tested on the grid k / 2^24, k = 1 .. 2^24). */
BM_FN float bm_log(float u) {
    const uint32_t ix = bm_asuint(u), d = ix - 0x3f3504f3u; /* bits of sqrt(1/2) */
    const float k = (float)((int32_t)d >> 23); /* exponent (gcc and nvcc shift arithmetically) */
    const float f = BM_SUB(bm_asfloat(ix - (d & 0xff800000u)), 1.0f); /* exact: z in [0.71, 1.42) */
    /* Q(f) = (ln(1+f) - f) / f^2 (scripts/boxmuller_fit.py), by Estrin's scheme: half the
     * dependent steps of Horner's, which the scalar tail of a fill waits on */
    const float f2 = BM_MUL(f, f), f4 = BM_MUL(f2, f2), f8 = BM_MUL(f4, f4);
    const float a0 = BM_FMA(3.333332241e-01f, f, -5.000000000e-01f);
    const float a1 = BM_FMA(2.000145316e-01f, f, -2.500000000e-01f);
    const float a2 = BM_FMA(1.423261911e-01f, f, -1.666811705e-01f);
    const float a3 = BM_FMA(1.179985180e-01f, f, -1.241073385e-01f);
    const float a4 = BM_FMA(6.864325702e-02f, f, -1.161298305e-01f);
    const float q = BM_FMA(a4, f8, BM_FMA(BM_FMA(a3, f2, a2), f4, BM_FMA(a1, f2, a0)));
    return BM_FMA(k, 6.931471825e-01f, BM_FMA(f2, q, f));
}

/* sin and cos of 2 pi m / 2^24 (m taken mod 2^24). */
BM_FN void bm_sincos_turn24(uint32_t m, float *s, float *c) {
    m &= 0xffffffu;
    const uint32_t q = (m + 0x200000u) >> 22; /* the nearest quarter turn, 0..4 */
    const float t = BM_MUL((float)(int32_t)(m - (q << 22)), 4.76837158203125e-7f); /* * 2^-21 */
    const float w = BM_MUL(t, t);
    float ps = 3.098603827e-07f; /* (sin(pi t/4) / t - pi/4) / t^2, scripts/boxmuller_fit.py */
    ps = BM_FMA(ps, w, -3.657401612e-05f);
    ps = BM_FMA(ps, w, 2.490394050e-03f);
    ps = BM_FMA(ps, w, -8.074551076e-02f);
    float pc = 3.541809747e-06f; /* (cos(pi t/4) - 1) / t^2 */
    pc = BM_FMA(pc, w, -3.259611549e-04f);
    pc = BM_FMA(pc, w, 1.585433818e-02f);
    pc = BM_FMA(pc, w, -3.084251285e-01f);
    /* pi/4 = 7.853981853e-01 - 2.185569414e-08: t * pi/4 is rounded once, in the last fma */
    const float sn = BM_FMA(t, 7.853981853e-01f, BM_FMA(t, -2.185569414e-08f, BM_MUL(BM_MUL(t, w), ps)));
    const float cs = BM_FMA(w, pc, 1.0f);
    const float a = (q & 1) ? cs : sn, b = (q & 1) ? sn : cs; /* q pi/2 + x */
    *s = (q & 2) ? -a : a;
    *c = ((q + 1) & 2) ? -b : b;
}

/* The normal pair (r cos, r sin) of two Philox words, as rng_normal_fill lays them out. */
BM_FN void bm_pair(uint32_t w1, uint32_t w2, float *z0, float *z1) {
    const float u1 = BM_MUL((float)(int32_t)((w1 >> 8) + 1u), 1.0f / 16777216.0f);
    const float r = BM_SQRT(BM_MUL(-2.0f, bm_log(u1)));
    float s, c;
    bm_sincos_turn24((w2 >> 8) + 1u, &s, &c);
    *z0 = BM_MUL(r, c);
    *z1 = BM_MUL(r, s);
}

#endif
