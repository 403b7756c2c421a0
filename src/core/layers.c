/* layers.c - forward/backward pairs of the network's layers (see layers.h for layouts and
 * the gradient rule: parameter gradients +=, input gradients =).
 *
 * Convolutions come in two weight layouts.  PyTorch's [Cout, Cin, K, K] (conv2d_forward):
 * im2col in (ci, kh, kw) column order + one sgemm; the reference, and what checkpoints hold.
 * hwc [Cout, K, K, Cin] (conv2d_forward_hwc), what the network runs: im2col copies whole
 * pixel vectors, and where it measures faster the convolution is direct, with no im2col
 * matrix at all.  NHWC activations make a GEMM's [B*Ho*Wo, Cout] output NHWC as is.
 * These functions run single-threaded on the slice they are given; net.c splits the
 * batch across threads (and keeps OpenBLAS at one thread while it does). */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common.h"

/* -std=c11 turns off the contraction of a*b+c into one FMA; the direct convolution and the
 * element-wise loops want it (one rounding instead of two, and twice the throughput). */
#if defined(__clang__)
#pragma clang fp contract(fast)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=fast")
#endif

/* gcc vectorizes with 256-bit registers by default even where 512-bit ones exist; the
 * element-wise activations run ~1.3x faster with the full width (measured, docs/PERF.md). */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define WIDE_SIMD __attribute__((target("prefer-vector-width=512")))
#else
#define WIDE_SIMD
#endif

long conv2d_workspace(int B, int Ho, int Wo, int Cin, int K) { return (long)B * Ho * Wo * Cin * K * K; }

/* cols (B*Ho*Wo, Cin*K*K) from inp (B,H,W,Cin); zeros where the window hangs over the
 * padding. */
static void im2col(float *cols, const float *inp, int B, int H, int W, int Cin, int K, int stride, int pad,
                   int Ho, int Wo) {
    const int KK = K * K, Kc = Cin * KK;
    for (int b = 0; b < B; b++) {
        const float *img = inp + (long)b * H * W * Cin;
        for (int oh = 0; oh < Ho; oh++) {
            for (int ow = 0; ow < Wo; ow++) {
                float *row = cols + (((long)b * Ho + oh) * Wo + ow) * Kc;
                for (int kh = 0; kh < K; kh++) {
                    const int ih = oh * stride - pad + kh;
                    for (int kw = 0; kw < K; kw++) {
                        const int iw = ow * stride - pad + kw;
                        float *dst = row + kh * K + kw;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
                            for (int ci = 0; ci < Cin; ci++) dst[ci * KK] = 0.0f;
                        } else {
                            const float *src = img + ((long)ih * W + iw) * Cin;
                            for (int ci = 0; ci < Cin; ci++) dst[ci * KK] = src[ci];
                        }
                    }
                }
            }
        }
    }
}

/* The adjoint of im2col: dinp (=) gathers every column entry back onto its pixel. */
static void col2im(float *dinp, const float *cols, int B, int H, int W, int Cin, int K, int stride, int pad,
                   int Ho, int Wo) {
    const int KK = K * K, Kc = Cin * KK;
    memset(dinp, 0, sizeof(float) * (size_t)B * H * W * Cin);
    for (int b = 0; b < B; b++) {
        float *img = dinp + (long)b * H * W * Cin;
        for (int oh = 0; oh < Ho; oh++) {
            for (int ow = 0; ow < Wo; ow++) {
                const float *row = cols + (((long)b * Ho + oh) * Wo + ow) * Kc;
                for (int kh = 0; kh < K; kh++) {
                    const int ih = oh * stride - pad + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < K; kw++) {
                        const int iw = ow * stride - pad + kw;
                        if (iw < 0 || iw >= W) continue;
                        float *dst = img + ((long)ih * W + iw) * Cin;
                        const float *src = row + kh * K + kw;
                        for (int ci = 0; ci < Cin; ci++) dst[ci] += src[ci * KK];
                    }
                }
            }
        }
    }
}

/* The same two in (kh, kw, ci) column order, for weights in (Cout, K, K, Cin): for one
 * output pixel and one kernel row kh, the K window pixels are neighbours in NHWC memory, so
 * the K*Cin floats they contribute are one contiguous run in the image and in cols.  That
 * turns the scalar scatter above into a few vector copies per output pixel. */

/* Window columns [*kw0, *kw1) of output column ow that fall inside the image. */
static inline void window_cols(int ow, int K, int stride, int pad, int W, int *kw0, int *kw1) {
    const int iw0 = ow * stride - pad;
    *kw0 = iw0 < 0 ? -iw0 : 0;
    *kw1 = iw0 + K > W ? W - iw0 : K;
    if (*kw1 < *kw0) *kw1 = *kw0;
}

static void im2col_hwc(float *cols, const float *inp, int B, int H, int W, int Cin, int K, int stride, int pad,
                       int Ho, int Wo) {
    const int Kc = Cin * K * K, KC = K * Cin;
    for (int b = 0; b < B; b++) {
        const float *img = inp + (long)b * H * W * Cin;
        for (int oh = 0; oh < Ho; oh++) {
            for (int ow = 0; ow < Wo; ow++) {
                float *row = cols + (((long)b * Ho + oh) * Wo + ow) * Kc;
                int kw0, kw1;
                window_cols(ow, K, stride, pad, W, &kw0, &kw1);
                const int lo = kw0 * Cin, hi = kw1 * Cin;
                for (int kh = 0; kh < K; kh++) {
                    float *dst = row + kh * KC;
                    const int ih = oh * stride - pad + kh;
                    if (ih < 0 || ih >= H) {
                        for (int i = 0; i < KC; i++) dst[i] = 0.0f;
                        continue;
                    }
                    const float *src = img + ((long)ih * W + (ow * stride - pad)) * Cin;
                    for (int i = 0; i < lo; i++) dst[i] = 0.0f;
                    for (int i = lo; i < hi; i++) dst[i] = src[i];
                    for (int i = hi; i < KC; i++) dst[i] = 0.0f;
                }
            }
        }
    }
}

static void col2im_hwc(float *dinp, const float *cols, int B, int H, int W, int Cin, int K, int stride, int pad,
                       int Ho, int Wo) {
    const int Kc = Cin * K * K, KC = K * Cin;
    memset(dinp, 0, sizeof(float) * (size_t)B * H * W * Cin);
    for (int b = 0; b < B; b++) {
        float *img = dinp + (long)b * H * W * Cin;
        for (int oh = 0; oh < Ho; oh++) {
            for (int ow = 0; ow < Wo; ow++) {
                const float *row = cols + (((long)b * Ho + oh) * Wo + ow) * Kc;
                int kw0, kw1;
                window_cols(ow, K, stride, pad, W, &kw0, &kw1);
                const int lo = kw0 * Cin, hi = kw1 * Cin;
                for (int kh = 0; kh < K; kh++) {
                    const int ih = oh * stride - pad + kh;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + kh * KC;
                    float *dst = img + ((long)ih * W + (ow * stride - pad)) * Cin;
                    for (int i = lo; i < hi; i++) dst[i] += src[i];
                }
            }
        }
    }
}

/* out (M, N) = bias broadcast over rows. */
static void fill_bias(float *out, const float *b, long M, int N) {
    for (long i = 0; i < M; i++) memcpy(out + i * N, b, sizeof(float) * (size_t)N);
}

/* db (N) += column sums of d (M, N). */
static void add_colsum(float *db, const float *d, long M, int N) {
    for (long i = 0; i < M; i++)
        for (int j = 0; j < N; j++) db[j] += d[i * N + j];
}

/* Direct convolution (hwc weights only), used where it measures faster than im2col +
 * sgemm (docs/PERF.md):
 *  - forward, when an image has at least DIRECT_PX output pixels (conv 1-3 of cnn-small):
 *    DIRECT_PX output pixels x DIRECT_CO channels stay in registers while the taps stream
 *    by, so there is no im2col matrix to write and read back (conv 4, with 2x2 outputs,
 *    is faster through sgemm);
 *  - backward (to the input, and to the weights) for small kernels (Cin*K*K <= DIRECT_T,
 *    the 5x5 first layer on 1-channel images), where sgemm would see an inner dimension of
 *    16 or 25: each pixel's column gradient is formed in registers and added onto its
 *    window; the weight gradient keeps one accumulator per tap over all pixels.
 * Both work on a zero-bordered copy of the image, so every window is whole. */
#define DIRECT_T 32
#define DIRECT_CO 16
#define DIRECT_PX 8

/* GCC/Clang vector extensions: 16 floats, lowered to whatever SIMD the target has (one
 * AVX-512 register, two AVX ones, ...).  memcpy loads/stores allow any alignment. */
typedef float v16f __attribute__((vector_size(64)));

static long padded_size(int H, int W, int Cin, int pad) { return (long)(H + 2 * pad) * (W + 2 * pad) * Cin; }

/* The workspace rounded up to 64 bytes for the vectors (callers may pass any float*). */
static float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

static void pad_image(float *dst, const float *img, int H, int W, int Cin, int pad) {
    const int Wp = W + 2 * pad;
    memset(dst, 0, sizeof(float) * (size_t)padded_size(H, W, Cin, pad));
    for (int h = 0; h < H; h++)
        memcpy(dst + ((long)(h + pad) * Wp + pad) * Cin, img + (long)h * W * Cin, sizeof(float) * (size_t)W * Cin);
}

/* Floats of workspace the direct forward needs: the weights regrouped by channel blocks,
 * then one padded image. */
static long fwd_direct_floats(int H, int W, int Cin, int Cout, int K, int pad) {
    return 16 + (long)(Cout + DIRECT_CO - 1) / DIRECT_CO * DIRECT_CO * Cin * K * K + padded_size(H, W, Cin, pad);
}

static void conv_fwd_direct(float *out, float *work, const float *inp, const float *w_hwc, const float *b, int B,
                            int H, int W, int Cin, int Cout, int K, int stride, int pad, int Ho, int Wo) {
    const int T = Cin * K * K, KC = K * Cin, Wp = W + 2 * pad, nblk = (Cout + DIRECT_CO - 1) / DIRECT_CO;
    work = align64(work);
    v16f *wt = (v16f *)work;  /* wt[blk*T + t]: tap t of the block's channels */
    float *padded = work + (long)nblk * T * DIRECT_CO;
    for (int blk = 0; blk < nblk; blk++)
        for (int t = 0; t < T; t++) {
            v16f v = {0};
            for (int j = 0; j < DIRECT_CO && blk * DIRECT_CO + j < Cout; j++) v[j] = w_hwc[(long)(blk * DIRECT_CO + j) * T + t];
            wt[(long)blk * T + t] = v;
        }
    for (int n = 0; n < B; n++) {
        pad_image(padded, inp + (long)n * H * W * Cin, H, W, Cin, pad);
        for (int blk = 0; blk < nblk; blk++) {
            const int co0 = blk * DIRECT_CO, nb = Cout - co0 < DIRECT_CO ? Cout - co0 : DIRECT_CO;
            const v16f *wb = wt + (long)blk * T;
            v16f bias = {0};
            for (int j = 0; j < nb; j++) bias[j] = b[co0 + j];
            /* output pixels in blocks of DIRECT_PX, row-major over the image (a block may
             * span rows when Wo is small) */
            for (int p0 = 0; p0 < Ho * Wo; p0 += DIRECT_PX) {
                const int np = Ho * Wo - p0 < DIRECT_PX ? Ho * Wo - p0 : DIRECT_PX;
                const float *src[DIRECT_PX];
                for (int q = 0; q < DIRECT_PX; q++) {
                    const int p = p0 + (q < np ? q : 0), oh = p / Wo, ow = p % Wo;
                    src[q] = padded + ((long)oh * stride * Wp + (long)ow * stride) * Cin;
                }
                v16f a[DIRECT_PX];
                for (int q = 0; q < DIRECT_PX; q++) a[q] = bias;
                for (int kh = 0; kh < K; kh++) {
                    const v16f *wr = wb + kh * KC;
                    const long ro = (long)kh * Wp * Cin;
                    for (int i = 0; i < KC; i++) {  /* fixed trip count: all in registers */
                        const v16f w = wr[i];
                        for (int q = 0; q < DIRECT_PX; q++) a[q] += src[q][ro + i] * w;
                    }
                }
                float *o = out + ((long)n * Ho * Wo + p0) * Cout + co0;
                for (int q = 0; q < np; q++) {
                    if (nb == DIRECT_CO) memcpy(o + (long)q * Cout, &a[q], sizeof a[q]);
                    else for (int j = 0; j < nb; j++) o[(long)q * Cout + j] = a[q][j];
                }
            }
        }
    }
}

static long bwd_direct_floats(int H, int W, int Cin, int Cout, int pad) {
    return 16 + (long)Cout * DIRECT_T + padded_size(H, W, Cin, pad);
}

static void conv_bwd_direct(float *dinp, float *work, const float *dout, const float *w_hwc, int B, int H, int W,
                            int Cin, int Cout, int K, int stride, int pad, int Ho, int Wo) {
    const int T = Cin * K * K, KC = K * Cin, Wp = W + 2 * pad;
    work = align64(work);
    v16f *wp = (v16f *)work;  /* wp[co*NV + v]: channel co's taps, zero beyond T */
    enum { NV = DIRECT_T / 16 };
    float *padded = work + (long)Cout * DIRECT_T;
    for (int co = 0; co < Cout; co++)
        for (int v = 0; v < NV; v++) {
            v16f x = {0};
            for (int l = 0; l < 16 && v * 16 + l < T; l++) x[l] = w_hwc[(long)co * T + v * 16 + l];
            wp[co * NV + v] = x;
        }
    for (int n = 0; n < B; n++) {
        memset(padded, 0, sizeof(float) * (size_t)padded_size(H, W, Cin, pad));
        for (int oh = 0; oh < Ho; oh++) {
            for (int ow = 0; ow < Wo; ow += 2) {
                /* two pixels at once: four independent FMA chains per column vector */
                const int two = ow + 1 < Wo;
                const float *d0 = dout + (((long)n * Ho + oh) * Wo + ow) * Cout, *d1 = two ? d0 + Cout : d0;
                v16f c0[NV] = {{0}}, c0b[NV] = {{0}}, c1[NV] = {{0}}, c1b[NV] = {{0}};
                int co = 0;
                for (; co + 1 < Cout; co += 2)
                    for (int v = 0; v < NV; v++) {
                        const v16f w = wp[co * NV + v], wb = wp[(co + 1) * NV + v];
                        c0[v] += d0[co] * w, c0b[v] += d0[co + 1] * wb;
                        c1[v] += d1[co] * w, c1b[v] += d1[co + 1] * wb;
                    }
                for (; co < Cout; co++)
                    for (int v = 0; v < NV; v++) c0[v] += d0[co] * wp[co * NV + v], c1[v] += d1[co] * wp[co * NV + v];
                for (int v = 0; v < NV; v++) c0[v] += c0b[v], c1[v] += c1b[v];
                for (int q = 0; q <= two; q++) {
                    const float *col = (const float *)(q ? c1 : c0);
                    float *dst = padded + ((long)oh * stride * Wp + (long)(ow + q) * stride) * Cin;
                    for (int kh = 0; kh < K; kh++, dst += (long)Wp * Cin)
                        for (int i = 0; i < KC; i++) dst[i] += col[kh * KC + i];
                }
            }
        }
        for (int h = 0; h < H; h++)
            memcpy(dinp + ((long)n * H + h) * W * Cin, padded + ((long)(h + pad) * Wp + pad) * Cin,
                   sizeof(float) * (size_t)W * Cin);
    }
}

/* Weight gradient for small kernels (Cin*K*K <= DIRECT_T): per output pixel, the outer
 * product of its DIRECT_CO channel gradients with its window, the T accumulators (one
 * vector of channels per tap) held in registers over all pixels; sgemm would see an inner
 * dimension of 25 and 16 rows.  dw_hwc += (hwc layout). */
static void conv_dw_direct(float *dw_hwc, float *work, const float *dout, const float *inp, int B, int H, int W,
                           int Cin, int Cout, int K, int stride, int pad, int Ho, int Wo) {
    const int T = Cin * K * K, KC = K * Cin, Wp = W + 2 * pad;
    float *padded = work;
    for (int co0 = 0; co0 < Cout; co0 += DIRECT_CO) {
        const int nb = Cout - co0 < DIRECT_CO ? Cout - co0 : DIRECT_CO;
        v16f acc[DIRECT_T];
        for (int t = 0; t < DIRECT_T; t++) acc[t] = (v16f){0};
        for (int n = 0; n < B; n++) {
            pad_image(padded, inp + (long)n * H * W * Cin, H, W, Cin, pad);
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++) {
                    const float *dp = dout + (((long)n * Ho + oh) * Wo + ow) * Cout + co0;
                    v16f d = {0};
                    if (nb == DIRECT_CO) memcpy(&d, dp, sizeof d);
                    else for (int j = 0; j < nb; j++) d[j] = dp[j];
                    const float *src = padded + ((long)oh * stride * Wp + (long)ow * stride) * Cin;
                    for (int kh = 0; kh < K; kh++)
                        for (int i = 0; i < KC; i++) acc[kh * KC + i] += src[(long)kh * Wp * Cin + i] * d;
                }
        }
        for (int t = 0; t < T; t++)
            for (int j = 0; j < nb; j++) dw_hwc[(long)(co0 + j) * T + t] += acc[t][j];
    }
}

/* Which convolutions go direct (hwc weights; the workspace, sized for im2col, must hold
 * what the direct code needs: always so here unless the stride exceeds the kernel). */
static int use_direct_fwd(int hwc, int H, int W, int Cin, int Cout, int K, int pad, int Ho, int Wo, long M) {
    return hwc && (Cin * K * K <= DIRECT_T || Ho * Wo >= DIRECT_PX) &&
           fwd_direct_floats(H, W, Cin, Cout, K, pad) <= M * Cin * K * K;
}
static int use_direct_dw(int hwc, int H, int W, int Cin, int K, int pad, long M) {
    return hwc && Cin * K * K <= DIRECT_T && padded_size(H, W, Cin, pad) <= M * Cin * K * K;
}
static int use_direct_bwd(int hwc, int H, int W, int Cin, int Cout, int K, int pad, long M) {
    return hwc && Cin * K * K <= DIRECT_T && bwd_direct_floats(H, W, Cin, Cout, pad) <= M * Cin * K * K;
}

/* Both weight layouts share the GEMMs; only the column order of cols differs. */
static void conv_fwd(int hwc, float *out, float *cols, const float *inp, const float *w, const float *b, int B,
                     int H, int W, int Cin, int Cout, int K, int stride, int pad) {
    const int Ho = conv_out_size(H, K, stride, pad), Wo = conv_out_size(W, K, stride, pad);
    const int Kc = Cin * K * K;
    const long M = (long)B * Ho * Wo;
    EBM_ASSERT(Ho > 0 && Wo > 0 && M <= INT32_MAX);
    if (use_direct_fwd(hwc, H, W, Cin, Cout, K, pad, Ho, Wo, M)) {
        conv_fwd_direct(out, cols, inp, w, b, B, H, W, Cin, Cout, K, stride, pad, Ho, Wo);
        return;
    }
    (hwc ? im2col_hwc : im2col)(cols, inp, B, H, W, Cin, K, stride, pad, Ho, Wo);
    fill_bias(out, b, M, Cout);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, Cout, Kc, 1.0f, cols, Kc, w, Kc, 1.0f, out,
                Cout);
}

static void conv_bwd(int hwc, float *dinp, float *dw, float *db, float *cols, const float *dout,
                     const float *inp, const float *w, int B, int H, int W, int Cin, int Cout, int K, int stride,
                     int pad, int cols_valid) {
    const int Ho = conv_out_size(H, K, stride, pad), Wo = conv_out_size(W, K, stride, pad);
    const int Kc = Cin * K * K;
    const long M = (long)B * Ho * Wo;
    EBM_ASSERT(Ho > 0 && Wo > 0 && M <= INT32_MAX);
    if (db) add_colsum(db, dout, M, Cout);
    if (dw && use_direct_dw(hwc, H, W, Cin, K, pad, M)) {
        conv_dw_direct(dw, cols, dout, inp, B, H, W, Cin, Cout, K, stride, pad, Ho, Wo);
    } else if (dw) {
        if (!cols_valid) (hwc ? im2col_hwc : im2col)(cols, inp, B, H, W, Cin, K, stride, pad, Ho, Wo);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Cout, Kc, (int)M, 1.0f, dout, Cout, cols, Kc,
                    1.0f, dw, Kc);
    }
    if (dinp && use_direct_bwd(hwc, H, W, Cin, Cout, K, pad, M)) {
        conv_bwd_direct(dinp, cols, dout, w, B, H, W, Cin, Cout, K, stride, pad, Ho, Wo);
    } else if (dinp) {
        /* cols is free now: reuse it for d(cols) = dout (M, Cout) x w (Cout, Kc). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, Kc, Cout, 1.0f, dout, Cout, w, Kc, 0.0f,
                    cols, Kc);
        (hwc ? col2im_hwc : col2im)(dinp, cols, B, H, W, Cin, K, stride, pad, Ho, Wo);
    }
}

void conv2d_forward(float *out, float *cols, const float *inp, const float *w, const float *b, int B, int H,
                    int W, int Cin, int Cout, int K, int stride, int pad) {
    conv_fwd(0, out, cols, inp, w, b, B, H, W, Cin, Cout, K, stride, pad);
}

void conv2d_backward(float *dinp, float *dw, float *db, float *cols, const float *dout, const float *inp,
                     const float *w, int B, int H, int W, int Cin, int Cout, int K, int stride, int pad,
                     int cols_valid) {
    conv_bwd(0, dinp, dw, db, cols, dout, inp, w, B, H, W, Cin, Cout, K, stride, pad, cols_valid);
}

void conv2d_forward_hwc(float *out, float *cols, const float *inp, const float *w_hwc, const float *b, int B,
                        int H, int W, int Cin, int Cout, int K, int stride, int pad) {
    conv_fwd(1, out, cols, inp, w_hwc, b, B, H, W, Cin, Cout, K, stride, pad);
}

void conv2d_backward_hwc(float *dinp, float *dw_hwc, float *db, float *cols, const float *dout,
                         const float *inp, const float *w_hwc, int B, int H, int W, int Cin, int Cout, int K,
                         int stride, int pad, int cols_valid) {
    conv_bwd(1, dinp, dw_hwc, db, cols, dout, inp, w_hwc, B, H, W, Cin, Cout, K, stride, pad, cols_valid);
}

void conv2d_weight_to_hwc(float *w_hwc, const float *w, int Cout, int Cin, int K) {
    for (int co = 0; co < Cout; co++)
        for (int ci = 0; ci < Cin; ci++)
            for (int kk = 0; kk < K * K; kk++)
                w_hwc[((long)co * K * K + kk) * Cin + ci] = w[((long)co * Cin + ci) * K * K + kk];
}

void conv2d_grad_from_hwc_add(float *dw, const float *dw_hwc, int Cout, int Cin, int K) {
    for (int co = 0; co < Cout; co++)
        for (int ci = 0; ci < Cin; ci++)
            for (int kk = 0; kk < K * K; kk++)
                dw[((long)co * Cin + ci) * K * K + kk] += dw_hwc[((long)co * K * K + kk) * Cin + ci];
}

void dense_forward(float *out, const float *inp, const float *w, const float *b, int B, int In, int Out) {
    fill_bias(out, b, B, Out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, Out, In, 1.0f, inp, In, w, In, 1.0f, out, Out);
}

void dense_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                    int B, int In, int Out) {
    if (db) add_colsum(db, dout, B, Out);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Out, In, B, 1.0f, dout, Out, inp, In, 1.0f, dw,
                    In);
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, In, Out, 1.0f, dout, Out, w, In, 0.0f, dinp,
                    In);
}

/* exp(x) for float, written so that gcc vectorizes the loops that call it (libm's expf
 * does not vectorize without -ffast-math, and swish calls it once per activation).
 * Range reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 polynomial: about 1 ulp
 * over [-87, 88], which is all sigmoid needs. */
static inline float fast_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    /* round to nearest by the 1.5*2^23 trick (nearbyintf does not vectorize) */
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = fmaf(n, -0.693359375f, x);      /* ln2 split in two for an exact product */
    r = fmaf(n, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p * r, r, r) + 1.0f;
    union {
        uint32_t u;
        float f;
    } s = {.u = (uint32_t)((int32_t)n + 127) << 23};
    return p * s.f;
}

static inline float sigmoidf_(float x) { return 1.0f / (1.0f + fast_expf(-x)); }

WIDE_SIMD void swish_forward(float *out, const float *inp, long n) {
    for (long i = 0; i < n; i++) out[i] = inp[i] * sigmoidf_(inp[i]);
}

WIDE_SIMD void swish_backward(float *dinp, const float *dout, const float *inp, long n) {
    /* d/dx x s(x) = s + x s (1 - s) */
    for (long i = 0; i < n; i++) {
        const float x = inp[i], s = sigmoidf_(x);
        dinp[i] = dout[i] * (s + x * s * (1.0f - s));
    }
}

WIDE_SIMD void swish_forward_grad(float *out, float *dact, const float *inp, long n) {
    for (long i = 0; i < n; i++) {
        const float x = inp[i], s = sigmoidf_(x);
        out[i] = x * s;
        dact[i] = s + x * s * (1.0f - s);
    }
}

WIDE_SIMD void mul_backward(float *dinp, const float *dout, const float *dact, long n) {
    for (long i = 0; i < n; i++) dinp[i] = dout[i] * dact[i];
}

void leakyrelu_forward(float *out, const float *inp, long n, float slope) {
    for (long i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : slope * inp[i];
}

void leakyrelu_backward(float *dinp, const float *dout, const float *inp, long n, float slope) {
    for (long i = 0; i < n; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : slope * dout[i];
}

void flatten_forward(float *out, const float *inp, int B, int H, int W, int C) {
    const long HW = (long)H * W;
    for (int b = 0; b < B; b++) {
        const float *src = inp + (long)b * HW * C;
        float *dst = out + (long)b * HW * C;
        for (long p = 0; p < HW; p++)
            for (int c = 0; c < C; c++) dst[c * HW + p] = src[p * C + c];
    }
}

void flatten_backward(float *dinp, const float *dout, int B, int H, int W, int C) {
    const long HW = (long)H * W;
    for (int b = 0; b < B; b++) {
        const float *src = dout + (long)b * HW * C;
        float *dst = dinp + (long)b * HW * C;
        for (long p = 0; p < HW; p++)
            for (int c = 0; c < C; c++) dst[p * C + c] = src[c * HW + p];
    }
}
