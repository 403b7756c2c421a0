/* fused.cuh - cnn-small, forward + backward, for IMG images held in one thread block's
 * shared memory: the body of the fused Langevin kernel and of the training pass.
 *
 * Network (net.c's "cnn-small"/"cnn-small-cond"), every layer seen as a convolution:
 *   L0 conv 1->16  k5 s2 p4   28x28 -> 16x16   swish
 *   L1 conv 16->32 k3 s2 p1   16x16 ->  8x8    swish
 *   L2 conv 32->64 k3 s2 p1    8x8  ->  4x4    swish
 *   L3 conv 64->64 k3 s2 p1    4x4  ->  2x2    swish
 *   L4 dense 256->64 (a 1x1 "conv" on the NHWC-flattened 2x2x64)   swish
 *   L5 dense 64->NOUT (NOUT 1: E = -f; 10: labels or -logsumexp)
 *
 * Shared memory per image (floats; NHWC; "padded" = zero border of the next layer's pad):
 *   X   36x36      the chain state x, padded by 4 for L0 (the border stays zero)
 *   P   A1 18x18x16 padded | A3 6x6x64 padded | A5 64     (layer inputs that die early)
 *   Q   A2 10x10x32 padded | A4 2x2x64 | in backward: dE/dx (784)
 *   D1  16x16x16, D2 9x9x32, D3 5x5x64, D4 3x3x64, D5 64:
 *       swish'(z_l) from the forward pass; the backward pass overwrites each in place with
 *       G_l = dL/dz_l.  The extra row/column at the high end stays zero: it is what the
 *       gather form of the next backward step reads past the edge.
 *   misc: f, dL/df, E and flags per image;  SK: split-K partial sums.
 *
 * Work split (see docs/PERF_CUDA.md): each layer is an implicit GEMM, [positions x K] x
 * [K x channels].  A thread owns TM positions x TN channels in registers and walks K in
 * units of 4 input channels (float4 loads from shared memory for activations, from L1/L2
 * for weights, which live in global memory in layouts made for these loops, see wlayout.h).
 * Layers with few positions split K across threads (KS) and sum the partials in a fixed
 * order, so results do not depend on timing.  The input gradient of a stride-2 conv is a
 * gather over the S*S output-parity classes (sub-pixel convolution): every tap read is a
 * real one and each output is written by one thread, so no atomics are needed. */
#ifndef EBM_CUDA_FUSED_CUH
#define EBM_CUDA_FUSED_CUH

#include "hd.cuh"
#include "wlayout.h"

/* ---- geometry ----------------------------------------------------------------------------- */
template <int CIN_, int COUT_, int K_, int S_, int P_, int H_, int W_>
struct Geo {
    static constexpr int CIN = CIN_, COUT = COUT_, K = K_, S = S_, P = P_, H = H_, W = W_;
    static constexpr int HO = (H + 2 * P - K) / S + 1, WO = (W + 2 * P - K) / S + 1;
};
using G0 = Geo<1, 16, 5, 2, 4, 28, 28>;
using G1 = Geo<16, 32, 3, 2, 1, 16, 16>;
using G2 = Geo<32, 64, 3, 2, 1, 8, 8>;
using G3 = Geo<64, 64, 3, 2, 1, 4, 4>;
using G4 = Geo<256, 64, 1, 1, 0, 1, 1>;
static_assert(G0::HO == 16 && G1::HO == 8 && G2::HO == 4 && G3::HO == 2, "cnn-small shapes");

/* Output-parity class R (0 <= R < S) of a conv's input gradient along one axis: input
 * index i = S*u + R is reached by taps k = K0 + S*t (t < NT) from output index u + D0 - t. */
template <class L, int R>
struct Cls {
    static constexpr int K0 = (R + L::P) % L::S;
    static constexpr int NT = (L::K - K0 + L::S - 1) / L::S;
    static constexpr int D0 = (R + L::P - K0) / L::S;
    static_assert(D0 - (NT - 1) >= 0, "a tap reads before the output's start");
};
/* Rows/columns of zeros needed after a conv output for its backward gather. */
template <class L>
constexpr int grad_pad() {
    static_assert(L::H % L::S == 0 && L::H == L::W, "square inputs divisible by the stride");
    int need = 0;
    for (int r = 0; r < L::S; r++) {
        const int k0 = (r + L::P) % L::S, d0 = (r + L::P - k0) / L::S;
        const int hi = L::H / L::S - 1 + d0 - (L::HO - 1);
        need = hi > need ? hi : need;
    }
    return need;
}

/* Split-K scratch of a tiling policy (floats).  REUSE (see pick_tm) splits K more. */
constexpr int sk_floats(bool reuse) { return reuse ? 8192 : 4096; }

/* ---- shared-memory layout ----------------------------------------------------------------- */
template <int IMG_, int NOUT_, bool MALA_, bool REUSE_ = false, bool PADG_ = false, bool TC_ = false>
struct Lay {
    static constexpr int IMG = IMG_, NOUT = NOUT_;
    static constexpr bool MALA = MALA_;
    static constexpr int XW = 28 + 2 * G0::P;                        /* 36 */
    static constexpr int X_IS = XW * XW;                             /* 1296 */
    /* TC (tc.cuh): floats per position of the layer inputs and output gradients that the
     * tensor-core layers read, chosen so that the 8-byte A loads of a half warp (4 fragment
     * rows x 8 floats) fall on distinct banks: the fewest wavefronts, 2 per load, for every
     * layer (bench/tc_banks.py counts them; docs/PERF_CUDA.md run 8) */
    static constexpr int A1C = TC_ ? 20 : 16, A2C = TC_ ? 36 : 32, A3C = TC_ ? 68 : 64, D3C = TC_ ? 72 : 64,
                         D4C = TC_ ? 68 : 64;
    static_assert(!TC_ || PADG_, "TC implies PADG");
    static constexpr int A1W = G1::W + 2 * G1::P, A1_IS = A1W * A1W * A1C;  /* 18x18x16 */
    static constexpr int A2W = G2::W + 2 * G2::P, A2_IS = A2W * A2W * A2C;  /* 10x10x32 */
    static constexpr int A3W = G3::W + 2 * G3::P, A3_IS = A3W * A3W * A3C;  /* 6x6x64 */
    static constexpr int A4_IS = 256, A5_IS = 64;
    static constexpr int P_IS = A1_IS, Q_IS = A2_IS;
    static_assert(A3_IS <= P_IS && A5_IS <= P_IS && A4_IS <= Q_IS && 784 <= Q_IS, "region sharing");
    /* PADG: D1 and D2 keep 4 spare floats per position, so that the 8 lanes of a quarter
     * warp reading 16-byte G vectors of neighbouring positions in the backward of L0 and L1
     * hit distinct banks (with 16 or 32 floats per position they share 2 or 1 bank groups:
     * ncu's excess wavefronts after POL_PAR's interleaving) */
    static constexpr int D1C = TC_ ? 24 : G0::COUT + (PADG_ ? 4 : 0), D2C = TC_ ? 40 : G1::COUT + (PADG_ ? 4 : 0);
    static constexpr int D1W = G0::HO + grad_pad<G0>(), D1_IS = D1W * D1W * D1C;
    static constexpr int D2W = G1::HO + grad_pad<G1>(), D2_IS = D2W * D2W * D2C;
    static constexpr int D3W = G2::HO + grad_pad<G2>(), D3_IS = D3W * D3W * D3C;
    static constexpr int D4W = G3::HO + grad_pad<G3>(), D4_IS = D4W * D4W * D4C;
    static constexpr int D5_IS = 64;
    /* misc per image: f[16], dout[16], E, dLdE, flags */
    static constexpr int MI_F = 0, MI_DOUT = 16, MI_E = 32, MI_BAD = 33, MI_OUT = 34, MI_ACC = 35, MI_EC = 36,
                         MI_IS = 40;
    static constexpr int SK = sk_floats(REUSE_); /* split-K partials (floats), checked per layer */
    static constexpr int RED = 3 * 64; /* MALA: doubles for the per-image reductions */
    static constexpr int oX = 0, oP = oX + IMG * X_IS, oQ = oP + IMG * P_IS, oD1 = oQ + IMG * Q_IS,
                         oD2 = oD1 + IMG * D1_IS, oD3 = oD2 + IMG * D2_IS, oD4 = oD3 + IMG * D3_IS,
                         oD5 = oD4 + IMG * D4_IS, oM = oD5 + IMG * D5_IS, oSK = oM + IMG * MI_IS,
                         oXC = oSK + SK, oGC = oXC + (MALA ? IMG * 784 : 0),
                         oRED = oGC + (MALA ? IMG * 784 : 0),
                         FLOATS = oRED + (MALA ? 2 * RED * IMG : 0);
    static constexpr size_t BYTES = sizeof(float) * (size_t)FLOATS;
    static_assert(NOUT <= 16, "head width");
    static_assert(oP % 4 == 0 && oQ % 4 == 0 && oD1 % 4 == 0 && oD2 % 4 == 0 && oD3 % 4 == 0 && oD4 % 4 == 0 &&
                      oD5 % 4 == 0 && oSK % 4 == 0 && oRED % 2 == 0 && A1C % 4 == 0,
                  "16-byte alignment of float4 buffers (and of L0's vec4 epilogue stores to A1)");
};

/* ---- work split ----------------------------------------------------------------------------- */
/* TM: largest of 4, 2, 1 that divides the row and still leaves about NT items (the
 * measured default), or with REUSE the largest that divides the row, the threads then
 * filled by splitting K: each weight loaded from L1 feeds TM positions instead of one
 * (ncu saw the L1/TEX pipe as the limit, docs/PERF_CUDA.md). */
constexpr int pick_tm(int items_tm1, int row, int nt, bool reuse) {
    return reuse ? (row % 4 == 0 ? 4 : row % 2 == 0 ? 2 : 1)
                 : (row % 4 == 0 && items_tm1 / 4 >= nt) ? 4 : (row % 2 == 0 && items_tm1 / 2 >= nt) ? 2 : 1;
}
/* KS: powers of two while the items stay under NT and each split keeps 4+ units. */
constexpr int pick_ks(int items, int nu, int nt) {
    int ks = 1;
    while (items * ks * 2 <= nt && nu / (ks * 2) >= 4) ks *= 2;
    return ks;
}

/* ---- epilogues ------------------------------------------------------------------------------ */
/* fp32 -> TF32 bits, round to nearest, ties away from zero (cvt.rna.tf32.f32). */
HD uint32_t hd_tf32(float x) {
#ifdef __CUDA_ARCH__
    uint32_t r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
#else
    uint32_t u = bm_asuint(x);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    return u;
#endif
}
HD float hd_tf32_round(float x) { return bm_asfloat(hd_tf32(x)); }

/* The value an epilogue stores: with RT rounded to TF32, for a buffer that only tensor-core
 * GEMMs read (tc.cuh): what their cvt.rna would do at every load, done once at the store. */
template <bool RT>
HD float hd_out(float v) { return RT ? hd_tf32_round(v) : v; }
/* swish and swish' as the epilogue computes them: the TF32 mode (RT) takes the fast form */
template <bool RT>
HD void hd_swish_rt(float z, float *a, float *d) {
    if constexpr (RT) hd_swish_fast(z, a, d);
    else hd_swish(z, a, d);
}

/* Forward: z -> A_next (swish, padded by APAD in an AW-wide buffer) and D (swish', DW wide).
 * RT (the TF32 mode) rounds A (not D, which stays an fp32 factor of the backward) and takes
 * the fast swish. */
template <bool RT = false>
struct EpiSwishR {
    float *A, *D;
    int a_is, aw, apad, d_is, dw, c, dc; /* c: channels (A's floats per position); dc: D's */
    HD void operator()(int img, int oh, int ow, int co, float z) const {
        float a, d;
        hd_swish_rt<RT>(z, &a, &d);
        A[img * a_is + ((oh + apad) * aw + ow + apad) * c + co] = hd_out<RT>(a);
        D[img * d_is + (oh * dw + ow) * dc + co] = d;
    }
    /* channels co, co+1 (co even, strides even): one 8-byte store each (tc.cuh) */
    HD void vec2(int img, int oh, int ow, int co, float z0, float z1) const {
        float2 a, d;
        hd_swish_rt<RT>(z0, &a.x, &d.x), hd_swish_rt<RT>(z1, &a.y, &d.y);
        a.x = hd_out<RT>(a.x), a.y = hd_out<RT>(a.y);
        *reinterpret_cast<float2 *>(A + img * a_is + ((oh + apad) * aw + ow + apad) * c + co) = a;
        *reinterpret_cast<float2 *>(D + img * d_is + (oh * dw + ow) * dc + co) = d;
    }
    /* channels co..co+3 (co % 4 == 0): one 16-byte store each to A and D */
    HD void vec4(int img, int oh, int ow, int co, const float *z) const {
        float4 a, d;
        hd_swish_rt<RT>(z[0], &a.x, &d.x), hd_swish_rt<RT>(z[1], &a.y, &d.y), hd_swish_rt<RT>(z[2], &a.z, &d.z), hd_swish_rt<RT>(z[3], &a.w, &d.w);
        a.x = hd_out<RT>(a.x), a.y = hd_out<RT>(a.y), a.z = hd_out<RT>(a.z), a.w = hd_out<RT>(a.w);
        *reinterpret_cast<float4 *>(A + img * a_is + ((oh + apad) * aw + ow + apad) * c + co) = a;
        *reinterpret_cast<float4 *>(D + img * d_is + (oh * dw + ow) * dc + co) = d;
    }
};
using EpiSwish = EpiSwishR<false>;
/* *p = v * *p for 4 floats (16-byte aligned): the gradient epilogues' vector form. */
template <bool RT = false>
HD void hd_scale4(float *p, const float *v) {
    float4 *q = reinterpret_cast<float4 *>(p);
    float4 r = *q;
    r.x = hd_out<RT>(FMUL(v[0], r.x)), r.y = hd_out<RT>(FMUL(v[1], r.y)), r.z = hd_out<RT>(FMUL(v[2], r.z)),
    r.w = hd_out<RT>(FMUL(v[3], r.w));
    *q = r;
}
/* Backward: v = dL/d(layer input) -> G = v * swish' in place in the D buffer (OW wide, c
 * floats per position).  RT rounds G. */
template <bool RT = false>
struct EpiGradR {
    float *D;
    int d_is, dw, c;
    HD void operator()(int img, int ih, int iw, int ci, float v) const {
        float *p = D + img * d_is + (ih * dw + iw) * c + ci;
        *p = hd_out<RT>(FMUL(v, *p));
    }
    HD void vec4(int img, int ih, int iw, int ci, const float *v) const {
        hd_scale4<RT>(D + img * d_is + (ih * dw + iw) * c + ci, v);
    }
    HD void vec2(int img, int ih, int iw, int ci, float v0, float v1) const { /* tc.cuh */
        float2 *q = reinterpret_cast<float2 *>(D + img * d_is + (ih * dw + iw) * c + ci);
        float2 r = *q;
        r.x = hd_out<RT>(FMUL(v0, r.x)), r.y = hd_out<RT>(FMUL(v1, r.y));
        *q = r;
    }
};
using EpiGrad = EpiGradR<false>;
/* Backward of the dense layer L4: input index j (NHWC of 2x2x64) lands in D4 (3x3 positions
 * of DC floats: 64, or Lay's D4C). */
template <int DC = 64, bool RT = false>
struct EpiGradD4 {
    float *D;
    int d_is, dw;
    HD void operator()(int img, int, int, int j, float v) const {
        const int p = j >> 6, c = j & 63;
        float *q = D + img * d_is + ((p >> 1) * dw + (p & 1)) * DC + c;
        *q = hd_out<RT>(FMUL(v, *q));
    }
    HD void vec4(int img, int, int, int j, const float *v) const { /* j % 4 == 0: one position */
        const int p = j >> 6, c = j & 63;
        hd_scale4<RT>(D + img * d_is + ((p >> 1) * dw + (p & 1)) * DC + c, v);
    }
};
/* Backward of L0: dE/dx, plain. */
struct EpiPlain {
    float *O;
    int o_is, ow_, c;
    HD void operator()(int img, int ih, int iw, int ci, float v) const { O[img * o_is + (ih * ow_ + iw) * c + ci] = v; }
};

/* ---- split-K sum of a forward layer (Fwd and tc.cuh's FwdTc) ------------------------------- */
/* KS splits of M positions (image, row, column) x COUT, each output's partials in split order,
 * plus the bias, through the scalar epilogue. */
template <class L, int NT, int M, int KS, class Epi>
HD void fwd_reduce(int tid, const float *sk, const float *__restrict__ b, const Epi &epi) {
    constexpr int HW = L::HO * L::WO;
    for (int idx = tid; idx < M * L::COUT; idx += NT) {
        const int m = idx / L::COUT, co = idx % L::COUT;
        float s = 0.0f;
        for (int k = 0; k < KS; k++) s += sk[(k * M + m) * L::COUT + co];
        const int img = m / HW, q = m % HW;
        epi(img, q / L::WO, q % L::WO, co, s + LDG(b + co));
    }
}

/* ---- forward convolution ------------------------------------------------------------------- */
/* One layer's forward for IMG images: `in` is the padded NHWC input (in_is floats per image),
 * wf the weights [K*K][CIN][COUT], b the bias.  Items: (split, position group, channel group). */
/* Tiling policy bits: POL_REUSE (pick_tm), POL_PAR (input-gradient classes run side by
 * side rather than one after another, see Bwd::compute), POL_PAD (Lay's padded D1/D2),
 * POL_BAL (KsPlan's per-class splits), POL_TC (L1-L3 on the tensor cores, TF32: tc.cuh), POL_TC0
 * (L0 as well). */
enum { POL_REUSE = 1, POL_PAR = 2, POL_PAD = 4 /* Lay's PADG */, POL_BAL = 8 /* Bwd's KsPlan */, POL_TC = 16 /* tc.cuh */,
       POL_TC0 = 32 /* L0 too */ };

template <class L, int IMG, int NT, int POL = 0>
struct Fwd {
    static constexpr bool REUSE = (POL & POL_REUSE) != 0;
    static constexpr int CV = L::CIN % 4 == 0 ? 4 : 1, NCV = L::CIN / CV, NU = L::K * L::K * NCV;
    static constexpr int HW = L::HO * L::WO, M = IMG * HW;
    static constexpr int TN = 4, NCG = L::COUT / TN;
    static constexpr int ROW = HW == 1 ? IMG : L::WO; /* positions of one item lie in one row */
    static constexpr int TM = pick_tm(M * NCG, ROW, NT, REUSE), NPG = M / TM;
    static constexpr int KS = pick_ks(NPG * NCG, NU, NT);
    static constexpr int ITEMS = NPG * NCG * KS;
    static constexpr int WP = L::W + 2 * L::P;
    /* A group's TM positions are NPR columns apart, so neighbouring lanes own neighbouring
     * positions: their shared-memory accesses spread over the banks (adjacent positions
     * TM apart put up to 8 lanes on one bank: ncu counted 55-60% excess wavefronts). */
    static constexpr int NPR = HW == 1 ? 1 : L::WO / TM;
    static_assert(L::COUT % TN == 0 && ROW % TM == 0, "tiling");
    static_assert(KS == 1 || KS * M * L::COUT <= sk_floats(REUSE), "split-K scratch");

    /* Position group pg -> first image, output row and first column (the others follow
     * every NPR columns; for the dense layer, every image). */
    HD static void pos(int pg, int &img, int &oh, int &ow) {
        if constexpr (HW == 1) {
            img = pg * TM, oh = 0, ow = 0;
        } else {
            const int rr = pg / NPR;
            img = rr / L::HO, oh = rr % L::HO, ow = pg % NPR;
        }
    }

    template <class Epi>
    HD static void compute(int tid, const float *in, int in_is, const float *__restrict__ wf,
                           const float *__restrict__ b, float *sk, const Epi &epi) {
        for (int it = tid; it < ITEMS; it += NT) {
            const int cg = it % NCG, r = it / NCG, pg = r % NPG, ks = r / NPG;
            int img, oh, ow;
            pos(pg, img, oh, ow);
            const int pstep = HW == 1 ? in_is : NPR * L::S * L::CIN;
            const float *a0 = in + img * in_is + (oh * L::S * WP + ow * L::S) * L::CIN;
            float acc[TM][TN];
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int n = 0; n < TN; n++) acc[i][n] = 0.0f;
            const int u0 = KS == 1 ? 0 : ks * NU / KS, u1 = KS == 1 ? NU : (ks + 1) * NU / KS;
#pragma unroll 2
            for (int u = u0; u < u1; u++) {
                const int tap = u / NCV, cv = u - tap * NCV, kh = tap / L::K, kw = tap - kh * L::K;
                const float *ap = a0 + (kh * WP + kw) * L::CIN + cv * CV;
                const float *wp = wf + u * CV * L::COUT + cg * TN;
                float w[CV][TN];
#pragma unroll
                for (int j = 0; j < CV; j++) {
                    const float4 v = LDG(reinterpret_cast<const float4 *>(wp + j * L::COUT));
                    w[j][0] = v.x, w[j][1] = v.y, w[j][2] = v.z, w[j][3] = v.w;
                }
#pragma unroll
                for (int i = 0; i < TM; i++) {
                    float a[CV];
                    if (CV == 4) {
                        const float4 v = *reinterpret_cast<const float4 *>(ap + i * pstep);
                        a[0] = v.x, a[CV > 1 ? 1 : 0] = v.y, a[CV > 2 ? 2 : 0] = v.z, a[CV > 3 ? 3 : 0] = v.w;
                    } else {
                        a[0] = ap[i * pstep];
                    }
#pragma unroll
                    for (int j = 0; j < CV; j++)
#pragma unroll
                        for (int n = 0; n < TN; n++) acc[i][n] = fmaf(a[j], w[j][n], acc[i][n]);
                }
            }
#pragma unroll
            for (int i = 0; i < TM; i++) { /* 16-byte stores: TN = 4 channels of one position */
                const int im = HW == 1 ? img + i : img, oww = HW == 1 ? 0 : ow + i * NPR;
                if (KS == 1) {
                    float z[TN];
#pragma unroll
                    for (int n = 0; n < TN; n++) z[n] = acc[i][n] + LDG(b + cg * TN + n);
                    epi.vec4(im, oh, oww, cg * TN, z);
                } else {
                    const int m = im * HW + oh * L::WO + oww;
                    *reinterpret_cast<float4 *>(sk + (ks * M + m) * L::COUT + cg * TN) =
                        make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
                }
            }
        }
    }
    /* Split-K: sums the partials in split order, adds the bias, applies the epilogue. */
    template <class Epi>
    HD static void reduce(int tid, const float *sk, const float *__restrict__ b, const Epi &epi) {
        fwd_reduce<L, NT, M, KS>(tid, sk, b, epi);
    }
};

/* ---- input gradient of a convolution, by output-parity class -------------------------------- */
/* How K is split per output-parity class.  The classes of a stride-2 conv have different tap
 * counts (1, 2, 2 and 4 for k3), so one split for all (pick_ks) gives the heavy class's items
 * up to 4x the work of the light ones.  With POL_BAL each class is cut into items of about CH
 * units, CH chosen at compile time to minimise the most units any thread does (items dealt
 * round-robin, as POL_PAR does), within the split-K scratch.  Measured in run 6
 * (docs/PERF_CUDA.md): no faster, so the automatic pick keeps the uniform plan; but the
 * uniform plan read through this table (the reduce's run-time split count) is what left
 * shape 9 without register spills, 1.34x faster than the constant-count loop. */
struct KsPlan {
    int ks[4], off[4], slot[4]; /* splits, first item, first partial slot (split classes only) */
    int items, slots, cost;
};
constexpr KsPlan ks_plan(const int *units, int ncls, int per_split, int nt, int max_slots, int ch, int uniform_ks) {
    KsPlan p{};
    int items = 0, slots = 0;
    for (int c = 0; c < ncls; c++) {
        const int k = uniform_ks ? uniform_ks : (units[c] + ch - 1) / ch;
        p.ks[c] = k, p.off[c] = items, p.slot[c] = slots;
        items += per_split * k;
        if (k > 1 || uniform_ks > 1) slots += k;
    }
    p.items = items, p.slots = slots;
    int worst = 0; /* thread t does items t, t + nt, ...; item i of class c, split ks has
                      (ks + 1) * units / k - ks * units / k units */
    for (int t = 0; t < nt && t < items; t++) {
        int s = 0;
        for (int i = t; i < items; i += nt) {
            int c = ncls - 1;
            while (i < p.off[c]) c--;
            const int ks = (i - p.off[c]) / per_split, k = p.ks[c];
            s += (ks + 1) * units[c] / k - ks * units[c] / k;
        }
        worst = s > worst ? s : worst;
    }
    /* a split-K phase costs a barrier and the partials' traffic: about 6 units (run 6) */
    p.cost = slots > max_slots ? 1 << 30 : worst + (slots ? 6 : 0);
    return p;
}
constexpr KsPlan ks_plan_best(const int *units, int ncls, int per_split, int nt, int max_slots, int uniform_ks) {
    KsPlan best = ks_plan(units, ncls, per_split, nt, max_slots, 0, uniform_ks);
    int umax = 0;
    for (int c = 0; c < ncls; c++) umax = units[c] > umax ? units[c] : umax;
    for (int ch = 4; ch <= umax; ch++) {
        const KsPlan p = ks_plan(units, ncls, per_split, nt, max_slots, ch, 0);
        if (p.cost < best.cost) best = p;
    }
    return best;
}

/* G: dL/dz of the layer's output in a (HO+pad) x (WO+pad) buffer of GC floats per position
 * (COUT, or more with Lay's PADG; g_is per image), wb: weights [K*K][COUT][CIN].  Writes
 * epi(img, ih, iw, ci, dL/d input). */
template <class L, int IMG, int NT, int POL = 0, int GC = L::COUT>
struct Bwd {
    static constexpr bool REUSE = (POL & POL_REUSE) != 0, PAR = (POL & POL_PAR) != 0;
    static constexpr int NCLS = L::S * L::S, U = L::H / L::S, HWC = U * U, MC = IMG * HWC;
    static constexpr int NCV = L::COUT / 4;
    static constexpr int TN = L::CIN % 4 == 0 ? 4 : 1, NCG = L::CIN / TN;
    static constexpr int ROW = HWC == 1 ? IMG : U;
    static constexpr int TM = pick_tm(NCLS * MC * NCG, ROW, NT, REUSE), NPG = MC / TM;
    /* every class has at least one tap; the fewest units decide the split */
    static constexpr int KS = pick_ks(NCLS * NPG * NCG, NCV, NT);
    static constexpr int ITEMS = NPG * NCG * KS; /* per class (without POL_BAL) */
    static constexpr int NPR = HWC == 1 ? 1 : U / TM; /* a group's positions: NPR apart (Fwd) */
    static_assert(L::COUT % 4 == 0 && ROW % TM == 0, "tiling");
    static constexpr bool BAL = (POL & POL_BAL) != 0;
    static_assert(!BAL || PAR, "POL_BAL deals items as POL_PAR does");
    struct Units {
        int u[4];
    };
    static constexpr Units units() { /* class c = RH * S + RW has Cls<RH>::NT * Cls<RW>::NT taps */
        constexpr int t0 = Cls<L, 0>::NT, t1 = Cls<L, L::S - 1>::NT;
        Units x{};
        for (int c = 0; c < NCLS; c++) x.u[c] = (c / L::S ? t1 : t0) * (c % L::S ? t1 : t0) * NCV;
        return x;
    }
    static constexpr Units UNITS = units();
    /* the plan in use: POL_BAL's best, else pick_ks's uniform split (cost printed by the emulator test) */
    static constexpr KsPlan PLAN =
        BAL ? ks_plan_best(UNITS.u, NCLS, NPG * NCG, NT, sk_floats(REUSE) / (MC * L::CIN), KS)
            : ks_plan(UNITS.u, NCLS, NPG * NCG, NT, 1 << 30, 0, KS);
    static constexpr bool REDUCE = PLAN.slots > 0;
    /* PLAN's fields for a class known only at run time: device code may read integral
     * constants, not the members of a constexpr struct */
    static constexpr int K0_ = PLAN.ks[0], K1_ = PLAN.ks[1], K2_ = PLAN.ks[2], K3_ = PLAN.ks[3];
    static constexpr int S0_ = PLAN.slot[0], S1_ = PLAN.slot[1], S2_ = PLAN.slot[2], S3_ = PLAN.slot[3];
    static constexpr int O0_ = PLAN.off[0], O1_ = PLAN.off[1], O2_ = PLAN.off[2], O3_ = PLAN.off[3];
    HD static int plan_ks(int c) { return c == 0 ? K0_ : c == 1 ? K1_ : c == 2 ? K2_ : K3_; }
    HD static int plan_slot(int c) { return c == 0 ? S0_ : c == 1 ? S1_ : c == 2 ? S2_ : S3_; }
    HD static int plan_off(int c) { return c == 0 ? O0_ : c == 1 ? O1_ : c == 2 ? O2_ : O3_; }
    static_assert(PLAN.slots * MC * L::CIN <= sk_floats(REUSE), "split-K scratch"); /* either plan */

    /* Items start, start + NT, ... of class (RH, RW). */
    template <int RH, int RW, class Epi>
    HD static void cls(int start, const float *G, int g_is, int gw, const float *__restrict__ wb, float *sk,
                       const Epi &epi) {
        using CH = Cls<L, RH>;
        using CW = Cls<L, RW>;
        constexpr int NU = CH::NT * CW::NT * NCV, CI = RH * L::S + RW;
        constexpr int KSC = PLAN.ks[CI], ITC = NPG * NCG * KSC, SLOT = PLAN.slot[CI];
        static_assert(BAL || (KSC == KS && (KS == 1 || SLOT == CI * KS)), "the uniform plan is pick_ks's split");
        for (int it = start; it < ITC; it += NT) {
            const int cg = it % NCG, r = it / NCG, pg = r % NPG, ks = r / NPG;
            int img, u, v0;
            if constexpr (HWC == 1) {
                img = pg * TM, u = 0, v0 = 0;
            } else {
                const int rr = pg / NPR;
                img = rr / U, u = rr % U, v0 = pg % NPR;
            }
            const int pstep = HWC == 1 ? g_is : NPR * GC;
            const float *g0 = G + img * g_is + (u * gw + v0) * GC;
            float acc[TM][TN];
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int n = 0; n < TN; n++) acc[i][n] = 0.0f;
            const int u0 = KSC == 1 ? 0 : ks * NU / KSC, u1 = KSC == 1 ? NU : (ks + 1) * NU / KSC;
#pragma unroll 2
            for (int un = u0; un < u1; un++) {
                const int tap = un / NCV, cv = un - tap * NCV, th = tap / CW::NT, tw = tap - th * CW::NT;
                const int kh = CH::K0 + th * L::S, kw = CW::K0 + tw * L::S;
                const float *gp = g0 + ((CH::D0 - th) * gw + (CW::D0 - tw)) * GC + cv * 4;
                const float *wp = wb + ((kh * L::K + kw) * L::COUT + cv * 4) * L::CIN + cg * TN;
                float w[4][TN];
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    if (TN == 4) {
                        const float4 q = LDG(reinterpret_cast<const float4 *>(wp + j * L::CIN));
                        w[j][0] = q.x, w[j][TN > 1 ? 1 : 0] = q.y, w[j][TN > 2 ? 2 : 0] = q.z,
                        w[j][TN > 3 ? 3 : 0] = q.w;
                    } else if (!(REUSE && L::CIN == 1)) {
                        w[j][0] = LDG(wp + j * L::CIN);
                    }
                }
                if (REUSE && L::CIN == 1) { /* the unit's 4 output channels are adjacent: one load */
                    const float4 q = LDG(reinterpret_cast<const float4 *>(wp));
                    w[0][0] = q.x, w[1][0] = q.y, w[2][0] = q.z, w[3][0] = q.w;
                }
#pragma unroll
                for (int i = 0; i < TM; i++) {
                    const float4 q = *reinterpret_cast<const float4 *>(gp + i * pstep);
                    const float a[4] = {q.x, q.y, q.z, q.w};
#pragma unroll
                    for (int j = 0; j < 4; j++)
#pragma unroll
                        for (int n = 0; n < TN; n++) acc[i][n] = fmaf(a[j], w[j][n], acc[i][n]);
                }
            }
#pragma unroll
            for (int i = 0; i < TM; i++) {
                const int im = HWC == 1 ? img + i : img, vv = HWC == 1 ? 0 : v0 + i * NPR;
                const int m = im * HWC + u * U + vv;
                if constexpr (TN == 4) { /* 16-byte accesses, as in Fwd */
                    if (KSC == 1)
                        epi.vec4(im, u * L::S + RH, vv * L::S + RW, cg * TN, acc[i]);
                    else
                        *reinterpret_cast<float4 *>(sk + ((SLOT + ks) * MC + m) * L::CIN + cg * TN) =
                            make_float4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
                } else {
                    if (KSC == 1) epi(im, u * L::S + RH, vv * L::S + RW, cg, acc[i][0]);
                    else sk[((SLOT + ks) * MC + m) * L::CIN + cg] = acc[i][0];
                }
            }
        }
    }
    /* Without PAR every thread starts each class at item tid: a class with fewer items than
     * threads leaves the rest idle (run 1's shapes).  With PAR the PLAN.items items are
     * dealt out round-robin over the whole block, class after class. */
    HD static int start(int tid, int c) { return PAR ? ((tid - plan_off(c)) % NT + NT) % NT : tid; }
    template <class Epi>
    HD static void compute(int tid, const float *G, int g_is, int gw, const float *__restrict__ wb, float *sk,
                           const Epi &epi) {
        cls<0, 0>(start(tid, 0), G, g_is, gw, wb, sk, epi);
        if (L::S == 2) {
            cls<0, L::S - 1>(start(tid, 1), G, g_is, gw, wb, sk, epi);
            cls<L::S - 1, 0>(start(tid, 2), G, g_is, gw, wb, sk, epi);
            cls<L::S - 1, L::S - 1>(start(tid, 3), G, g_is, gw, wb, sk, epi);
        }
    }
    template <class Epi>
    HD static void reduce(int tid, const float *sk, const Epi &epi) {
        for (int idx = tid; idx < NCLS * MC * L::CIN; idx += NT) {
            const int ci = idx % L::CIN, m = (idx / L::CIN) % MC, c = idx / (L::CIN * MC);
            const int ksc = plan_ks(c), slot = plan_slot(c);
            if (ksc == 1) continue; /* written by its items (POL_BAL) */
            float s = 0.0f;
            for (int k = 0; k < ksc; k++) s += sk[((slot + k) * MC + m) * L::CIN + ci];
            const int img = m / HWC, q = m % HWC, u = q / U, v = q % U;
            epi(img, u * L::S + c / L::S, v * L::S + c % L::S, ci, s);
        }
    }
};

#endif
