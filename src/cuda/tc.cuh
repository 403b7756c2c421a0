/* tc.cuh - the big layers L1-L3 on the tensor cores (POL_TC): each layer's forward and each
 * parity class of its input gradient as an implicit GEMM of warp tiles, mma.sync m16n8k8
 * with TF32 operands and fp32 accumulation.
 *
 * Why: these six GEMMs are 86% of a Langevin step's multiply-adds, and the fp32 kernel
 * issues about two instructions per FMA (docs/PERF_CUDA.md 6i).  One mma does 1024
 * multiply-adds.  The price is TF32 rounding of both operands (10-bit mantissa, about 5e-4
 * relative per product): a separate precision mode with its own tolerances; fp32 stays the
 * reference and the default.
 *
 * A warp item is 16 rows (positions, in (image, row, column) order) x NW*8 columns (output
 * channels) over a range of K; K walks 8 channels of one tap per k-step, in chunks of a
 * kernel row (TcRows).  The A fragment comes from the activations in shared memory, where
 * Lay's TC strides (A1C, A2C, ... in fused.cuh) spread a fragment's rows over the banks
 * (bench/tc_banks.py), stored already rounded to TF32 by the epilogue that wrote them
 * (fused.cuh's RT).  Columns t and t + 4 of a fragment row are channels 2t and 2t + 1, so a
 * row is one 8-byte load.  The B fragment comes from global memory, where wlayout.h keeps the
 * weights in fragment order, rounded to TF32 too (one coalesced 8-byte load per lane).  Forward
 * layers with few items split K (KS) and sum the partials in a fixed order, as Fwd does; the
 * input gradients deal whole parity classes instead.  The dense L4 runs here too, by warps in
 * fp32 (FwdL4W, BwdL4W), with L5's backward folded in.
 *
 * Fragment layouts (PTX ISA, mma.m16n8k8 .tf32), lane = 4g + t:
 *   A (16x8, row-major): a0 (g, t)  a1 (g+8, t)  a2 (g, t+4)  a3 (g+8, t+4)
 *   B (8x8, column):     b0 (k t, n g)  b1 (k t+4, n g)
 *   C/D (16x8):          c0 (g, 2t)  c1 (g, 2t+1)  c2 (g+8, 2t)  c3 (g+8, 2t+1)
 * In the CPU emulation (tests/cuda/test_fused_emu.cu) lane 0 of each warp runs all 32
 * lanes' loads (TC_NL = 32) and the mma is computed from those fragments by the layouts
 * above, so the emulation checks the fragment indexing, not just the GEMM. */
#ifndef EBM_CUDA_TC_CUH
#define EBM_CUDA_TC_CUH

#include <type_traits>

#include "fused.cuh"

#ifdef __CUDA_ARCH__
enum { TC_NL = 1 }; /* lanes one thread handles: its own on the GPU */
#else
enum { TC_NL = 32 }; /* the whole warp, in lane 0, in the CPU emulation */
#endif

/* Sums each of a warp's NV values over its 32 lanes by recursive halving: while values
 * remain, a round keeps half of them and adds the partner's (lane ^ o) copy of that half,
 * sending it the other half; then plain butterfly rounds.  31 shuffles for 32 values instead
 * of 160.  v[l][i] is lane lane0 + l's value i (on the GPU l = 0; the emulation holds all 32
 * lanes and reproduces every addition).  Afterwards a lane's v[.][0] is the total of value
 * lane / (32 / NV). */
#ifdef __CUDA_ARCH__
/* one round of hd_warp_spread: N values left, partner lane ^ O (compile-time, so that v stays
 * in registers) */
template <int NV, int N, int O>
__device__ __forceinline__ void hd_spread_round(float (&v)[1][NV], int lane) {
    if constexpr (N > 1) {
        const bool up = lane & O;
#pragma unroll
        for (int i = 0; i < N / 2; i++) {
            const float lo = v[0][i], hi = v[0][i + N / 2];
            v[0][i] = FADD(up ? hi : lo, __shfl_xor_sync(0xffffffffu, up ? lo : hi, O));
        }
    } else {
        v[0][0] = FADD(v[0][0], __shfl_xor_sync(0xffffffffu, v[0][0], O));
    }
    if constexpr (O > 1) hd_spread_round<NV, (N > 1 ? N / 2 : 1), O / 2>(v, lane);
}
#endif
template <int NV>
HD void hd_warp_spread(float (&v)[TC_NL][NV]) {
    static_assert(NV >= 1 && NV <= 32 && (NV & (NV - 1)) == 0, "a power of two up to 32");
#ifdef __CUDA_ARCH__
    hd_spread_round<NV, NV, 16>(v, (int)(threadIdx.x % 32));
#else
    float w[32][NV];
    for (int r = 0, o = 16; o; r++, o >>= 1) {
        const int n = NV >> r, h = n > 1 ? n / 2 : 1;
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < h; i++) { /* the half lane l keeps is the one its partner sends */
                const int k = n > 1 && (l & o) ? i + h : i;
                w[l][i] = FADD(v[l][k], v[l ^ o][k]);
            }
        for (int l = 0; l < 32; l++)
            for (int i = 0; i < h; i++) v[l][i] = w[l][i];
    }
#endif
}
/* hd_warp_spread, then out(i, total) for each value i, by the first lane that holds it. */
template <int NV, class Out>
HD void hd_warp_spread_out(float (&v)[TC_NL][NV], int lane0, const Out &out) {
    hd_warp_spread<NV>(v);
#pragma unroll
    for (int l = 0; l < TC_NL; l++)
        if ((lane0 + l) % (32 / NV) == 0) out((lane0 + l) / (32 / NV), v[l][0]);
}
/* The warp's total of one value per lane (every lane gets it). */
HD float hd_warp_sum(const float (&p)[TC_NL]) {
    float v[TC_NL][1];
    for (int l = 0; l < TC_NL; l++) v[l][0] = p[l];
    hd_warp_spread<1>(v);
    return v[0][0];
}

/* d += A b for tile j of the TC_NL lanes' accumulators. */
template <int NW>
HD void tc_mma(float (&d)[TC_NL][NW][4], const uint32_t (&a)[TC_NL][4], const uint32_t (&b)[TC_NL][NW][2], int j) {
#ifdef __CUDA_ARCH__
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0][j][0]), "+f"(d[0][j][1]), "+f"(d[0][j][2]), "+f"(d[0][j][3])
        : "r"(a[0][0]), "r"(a[0][1]), "r"(a[0][2]), "r"(a[0][3]), "r"(b[0][j][0]), "r"(b[0][j][1]));
#else
    float A[16][8], B[8][8];
    auto f = bm_asfloat;
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        A[g][t] = f(a[l][0]), A[g + 8][t] = f(a[l][1]), A[g][t + 4] = f(a[l][2]), A[g + 8][t + 4] = f(a[l][3]);
        B[t][g] = f(b[l][j][0]), B[t + 4][g] = f(b[l][j][1]);
    }
    for (int l = 0; l < 32; l++) {
        const int g = l / 4, t = l % 4;
        for (int r = 0; r < 4; r++) {
            const int row = g + 8 * (r / 2), col = 2 * t + r % 2;
            float s = d[l][j][r];
            for (int k = 0; k < 8; k++) s += A[row][k] * B[k][col];
            d[l][j][r] = s;
        }
    }
#endif
}

/* Splits of K: powers of two while the items stay within the warps, each split keeps 8+
 * k-steps and whole chunks. */
constexpr int tc_pick_ks(int items, int ksteps, int nchunks, int nwarp) {
    int ks = 1;
    while (items * ks * 2 <= nwarp && ksteps / (ks * 2) >= 8 && nchunks % (ks * 2) == 0) ks *= 2;
    return ks;
}

/* ---- chunks of k-steps ------------------------------------------------------------------- */
/* A warp item walks K in chunks: the loads of a chunk's KU k-steps are issued together before
 * their mma (the B fragments come from L2, the block's shared memory leaving little L1: one
 * k-step at a time measured slower than fp32, run 7a).  A chunk is one row of the kernel (a
 * tap row kh, or th of a parity class) and CB of its KC channel blocks, all NSUB taps of the
 * row: k-step u of chunk c reads A at at.a + da(u) and the weights' k-step at.k + dk(u),
 * where da and dk are compile-time constants and `at` steps from chunk to chunk.  So the per-step offsets are
 * immediates of the loads and the index arithmetic is paid once per chunk: run 7's version
 * spent about 30 integer instructions per mma on it (ncu, run 8).
 * ASUB: A's offset from one tap of the row to the next; arow, KROW: from one row to the next. */
constexpr int tc_cb(int kc, int nsub) { /* channel blocks per chunk: KU = NSUB * CB <= 8 */
    int cb = kc;
    while (cb > 1 && (kc % cb || cb * nsub > 8)) cb--;
    return cb;
}
template <int NSUB, int KC, int ASUB>
struct TcRows {
    static constexpr int CB = tc_cb(KC, NSUB), NCB = KC / CB, KU = NSUB * CB, KROW = NSUB * KC;
    static constexpr bool PAIRED = true; /* columns t, t + 4 are channels 2t, 2t + 1 (wlayout.c frag) */
    static constexpr bool CVT = false;   /* A stored rounded (the RT epilogues) */
    int arow;
    HD static constexpr int dk(int u) { return (u / CB) * KC + u % CB; }
    HD static constexpr int da(int u, int, int) { return (u / CB) * ASUB + (u % CB) * 8; } /* channel 2t */
    /* chunk c's A offset, weights' k-step and channel block, stepped from chunk to chunk
     * (the divisions by NCB once per item, not per chunk) */
    struct At {
        int a, k, cb;
    };
    HD At first(int c) const { return {(c / NCB) * arow + (c % NCB) * CB * 8, (c / NCB) * KROW + (c % NCB) * CB, c % NCB}; }
    HD void next(At &at) const {
        if (NCB == 1 || at.cb == NCB - 1) {
            at.a += arow - (NCB - 1) * CB * 8, at.k += KROW - (NCB - 1) * CB, at.cb = 0;
        } else {
            at.a += CB * 8, at.k += CB, at.cb++;
        }
    }
};

/* A operands: the tensor-core layers' inputs and output gradients are stored already rounded
 * to TF32 (fused.cuh's RT epilogues), so they load as they are; L0's input, the chain state x,
 * stays fp32 and is rounded as it loads (the plan's CVT). */
template <bool CVT>
HD uint32_t tc_ld(const float *p) { return CVT ? hd_tf32(*p) : bm_asuint(*p); }

/* How tc_item hides the weight loads' L2 latency (docs/PERF_CUDA.md run 9).  NONE: a chunk's
 * B fragments are loaded at its start.  DOUBLE (one-tile items): chunk c + 1's are loaded into
 * a second register set before chunk c's A loads and mma, the loop unrolled by two; 1.08x on
 * the 256-thread shape 14, but it spills at the 128-register cap of the 512-thread shape 13. */
enum { TC_PIPE_NONE = 0, TC_PIPE_DOUBLE = 1 };
template <int NT>
HD constexpr int tc_pipe() { return NT <= 256 ? TC_PIPE_DOUBLE : TC_PIPE_NONE; }

/* Accumulators of a warp item: with one tile (NW 1) a chunk's KU mma form one dependent
 * chain, so the even and odd k-steps get one each, summed at the end (run 10a: 1.005x at
 * batch 8192, 1.016x at 128). */
template <int NW, int KU>
HD constexpr int tc_nacc() { return NW == 1 && KU > 1 ? 2 : 1; }

/* The K loop of one warp item: acc (zeroed here) = A B over chunks [c0, c0 + NCH) of the
 * plan PL (TcRows or FwdTc0's), NW tiles of B from tile nt0, the loads overlapped as PIPE
 * says.  base[l][h]: the row of lane lane0 + l's A elements (row g for h 0, g + 8 for h 1),
 * at its first column (t, or channel 2t with PL::PAIRED).  (Unrolled whole, run 7c measured
 * it slower: spills at the 128-register cap.) */
template <int NW, int NCH, int PIPE, class PL>
HD void tc_item(float (&acc)[TC_NL][NW][4], const float *const (&base)[TC_NL][2], const PL &pl,
                const float *__restrict__ wt, int n8, int nt0, int c0, int lane0) {
    constexpr int KU = PL::KU, NA = tc_nacc<NW, KU>();
    float accs[NA][TC_NL][NW][4];
#pragma unroll
    for (int i = 0; i < NA; i++)
#pragma unroll
        for (int l = 0; l < TC_NL; l++)
#pragma unroll
            for (int j = 0; j < NW; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) accs[i][l][j][e] = 0.0f;
    const float2 *w2 = reinterpret_cast<const float2 *>(wt) + nt0 * 32 + lane0;
    using BF = uint32_t[KU][TC_NL][NW][2];
    auto load_b = [&](BF &bf, int k) {
        const float2 *wc = w2 + k * n8 * 32;
#pragma unroll
        for (int u = 0; u < KU; u++)
#pragma unroll
            for (int l = 0; l < TC_NL; l++)
#pragma unroll
                for (int j = 0; j < NW; j++) {
                    const float2 v = LDG(wc + (PL::dk(u) * n8 + j) * 32 + l);
                    bf[u][l][j][0] = bm_asuint(v.x), bf[u][l][j][1] = bm_asuint(v.y);
                }
    };
    auto run = [&](const BF &bf, int ao) {
        uint32_t a[KU][TC_NL][4];
#pragma unroll
        for (int u = 0; u < KU; u++)
#pragma unroll
            for (int l = 0; l < TC_NL; l++) {
                const float *p0 = base[l][0] + ao, *p1 = base[l][1] + ao;
                const int o0 = pl.da(u, 0, lane0 + l);
                if constexpr (PL::PAIRED) { /* columns t, t + 4: one 8-byte load per row */
                    static_assert(!PL::CVT, "paired loads read rounded operands");
                    const float2 r0 = *reinterpret_cast<const float2 *>(p0 + o0), r1 = *reinterpret_cast<const float2 *>(p1 + o0);
                    a[u][l][0] = bm_asuint(r0.x), a[u][l][2] = bm_asuint(r0.y);
                    a[u][l][1] = bm_asuint(r1.x), a[u][l][3] = bm_asuint(r1.y);
                } else {
                    const int o1 = pl.da(u, 1, lane0 + l);
                    a[u][l][0] = tc_ld<PL::CVT>(p0 + o0), a[u][l][1] = tc_ld<PL::CVT>(p1 + o0);
                    a[u][l][2] = tc_ld<PL::CVT>(p0 + o1), a[u][l][3] = tc_ld<PL::CVT>(p1 + o1);
                }
            }
#pragma unroll
        for (int u = 0; u < KU; u++)
#pragma unroll
            for (int j = 0; j < NW; j++) tc_mma<NW>(accs[u % NA], a[u], bf[u], j);
    };
    auto at = pl.first(c0);
    if constexpr (PIPE == TC_PIPE_DOUBLE && NW == 1) { /* the loop unrolled by two */
        BF b0, b1;
        load_b(b0, at.k);
#pragma unroll 1
        for (int c = 0; c < NCH; c += 2) {
            auto an = at;
            pl.next(an);
            if (c + 1 < NCH) load_b(b1, an.k);
            run(b0, at.a);
            if (c + 1 >= NCH) break;
            at = an;
            pl.next(an);
            if (c + 2 < NCH) load_b(b0, an.k);
            run(b1, at.a);
            at = an;
        }
    } else {
#pragma unroll 1
        for (int c = 0; c < NCH; c++, pl.next(at)) {
            BF bf;
            load_b(bf, at.k);
            run(bf, at.a);
        }
    }
#pragma unroll
    for (int l = 0; l < TC_NL; l++)
#pragma unroll
        for (int j = 0; j < NW; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[l][j][e] = NA == 1 ? accs[0][l][j][e] : FADD(accs[0][l][j][e], accs[NA - 1][l][j][e]);
}

/* ---- forward ------------------------------------------------------------------------------- */
/* Layer L for IMG images: `in` padded NHWC with PSI floats per position (in_is per image),
 * wt the fragment-ordered weights (wlayout.h WL_TF*), b the bias. */
template <class L, int IMG, int NT, int PSI>
struct FwdTc {
    static constexpr int HW = L::HO * L::WO, M = IMG * HW, WP = L::W + 2 * L::P, NWARP = NT / 32;
    static constexpr int KC = L::CIN / 8, KST = L::K * L::K * KC, N8 = L::COUT / 8, MT = (M + 15) / 16;
    static constexpr int NW = (N8 % 2 == 0 && MT * N8 / 2 >= NWARP) ? 2 : 1, NG = N8 / NW;
    /* chunks: a kernel row kh; the next tap is PSI floats on, the next row WP * PSI */
    using R = TcRows<L::K, KC, PSI>;
    static constexpr int NCHT = L::K * R::NCB; /* chunks in all */
    static constexpr int KS = tc_pick_ks(MT * NG, KST, NCHT, NWARP), ITEMS = MT * NG * KS, NCH = NCHT / KS;
    static_assert(NCHT % KS == 0, "equal splits");
    static_assert(L::CIN % 8 == 0 && L::COUT % 8 == 0 && PSI >= L::CIN && PSI % 2 == 0, "TC tiling");
    static_assert(KS == 1 || KS * M * L::COUT <= sk_floats(true), "split-K scratch");

    HD static void pos(int m, int &img, int &oh, int &ow) {
        img = m / HW;
        const int q = m % HW;
        oh = q / L::WO, ow = q % L::WO;
    }
    template <class Epi>
    HD static void compute(int tid, const float *in, int in_is, const float *__restrict__ wt,
                           const float *__restrict__ b, float *sk, const Epi &epi) {
        if (TC_NL > 1 && tid % 32) return;
        const int warp = tid / 32, lane0 = TC_NL == 1 ? tid % 32 : 0;
        for (int it = warp; it < ITEMS; it += NWARP) {
            const int ng = it % NG, r = it / NG, mt = r % MT, ks = r / MT;
            const float *base[TC_NL][2] = {};
#pragma unroll
            for (int l = 0; l < TC_NL; l++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int lane = lane0 + l, m = mt * 16 + lane / 4 + 8 * h, mc = m < M ? m : M - 1;
                    int img, oh, ow;
                    pos(mc, img, oh, ow);
                    base[l][h] = in + img * in_is + (oh * L::S * WP + ow * L::S) * PSI + 2 * (lane % 4);
                }
            float acc[TC_NL][NW][4];
            tc_item<NW, NCH, tc_pipe<NT>()>(acc, base, R{WP * PSI}, wt, N8, ng * NW, ks * NCH, lane0);
#pragma unroll
            for (int l = 0; l < TC_NL; l++) {
                const int lane = lane0 + l;
#pragma unroll
                for (int j = 0; j < NW; j++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int m = mt * 16 + lane / 4 + 8 * h, co = (ng * NW + j) * 8 + 2 * (lane % 4);
                        if (m >= M) continue;
                        if (KS == 1) {
                            int img, oh, ow;
                            pos(m, img, oh, ow);
                            epi.vec2(img, oh, ow, co, acc[l][j][2 * h] + LDG(b + co), acc[l][j][2 * h + 1] + LDG(b + co + 1));
                        } else {
                            *reinterpret_cast<float2 *>(sk + (ks * M + m) * L::COUT + co) =
                                make_float2(acc[l][j][2 * h], acc[l][j][2 * h + 1]);
                        }
                    }
            }
        }
    }
    /* Split-K: the partials summed in split order, plus the bias, through the epilogue. */
    template <class Epi>
    HD static void reduce(int tid, const float *sk, const float *__restrict__ b, const Epi &epi) {
        fwd_reduce<L, NT, M, KS>(tid, sk, b, epi);
    }
};

/* ---- input gradient, by output-parity class ----------------------------------------------- */
/* Taps of parity class c = RH * S + RW (Cls in fused.cuh), and the classes' order in the
 * fragment-ordered backward weights (wlayout.h WL_TB*): class after class, taps th-major. */
template <class L>
HD constexpr int tc_cls_taps(int c) {
    const int rh = c / L::S, rw = c % L::S;
    const int nh = (L::K - (rh + L::P) % L::S + L::S - 1) / L::S, nw = (L::K - (rw + L::P) % L::S + L::S - 1) / L::S;
    return nh * nw;
}
template <class L>
HD constexpr int tc_cls_woff(int c) { /* floats before class c's fragments */
    int o = 0;
    for (int i = 0; i < c; i++) o += tc_cls_taps<L>(i) * L::COUT * L::CIN;
    return o;
}

/* G: dL/dz of the layer's output, GC floats per position, (HO + pad) x (WO + pad) (gw wide,
 * g_is per image); writes epi(img, ih, iw, ci, dL/d input). */
template <class L, int IMG, int NT, int GC>
struct BwdTc {
    static constexpr int NCLS = L::S * L::S, U = L::H / L::S, HWC = U * U, M = IMG * HWC, NWARP = NT / 32;
    static constexpr int KC = L::COUT / 8, N8 = L::CIN / 8, MT = (M + 15) / 16;
    static constexpr int NW = (N8 % 2 == 0 && MT * N8 / 2 >= NWARP / 2) ? 2 : 1, NG = N8 / NW, PER = MT * NG;
    static_assert(L::S == 2 && L::COUT % 8 == 0 && L::CIN % 8 == 0 && GC >= L::COUT && GC % 2 == 0, "TC tiling");
    /* Items are whole classes' K (1, 2, 2 and 4 taps for k3), dealt round-robin over the warps
     * class after class in ORDER: with PER = NWARP / 2 (shape 13's layers) the 4-tap and
     * 1-tap classes share half the warps and the 2-tap classes the other half, 5 and 4 taps
     * a warp.  Run 8 split the 4-tap class in two and summed the halves in a phase of its own:
     * 2.3 k cycles a step slower at batch 8192 (docs/PERF_CUDA.md run 9). */
    HD static constexpr int order(int i) { return i == 0 ? 3 : i == 1 ? 1 : i == 2 ? 0 : 2; }
    HD static constexpr int item_off(int c) { /* first item of class c in dealing order */
        int o = 0;
        for (int i = 0; i < NCLS && order(i) != c; i++) o += PER;
        return o;
    }
    static constexpr bool REDUCE = false; /* as Bwd's: no split-sum phase */

    template <int RH, int RW, class Epi>
    HD static void cls(int tid, const float *G, int g_is, int gw, const float *__restrict__ wt, const Epi &epi) {
        using CH = Cls<L, RH>;
        using CW = Cls<L, RW>;
        constexpr int C = RH * L::S + RW, TAPS = CH::NT * CW::NT, OFF = item_off(C);
        /* chunks: a tap row th (G one row up, gw * GC floats back); the next tap tw is one
         * position back */
        using R = TcRows<CW::NT, KC, -GC>;
        constexpr int NCH = CH::NT * R::NCB;
        constexpr int WOFF = tc_cls_woff<L>(C);
        static_assert(TAPS == tc_cls_taps<L>(C), "class taps");
        const float *wc = wt + WOFF;
        const int warp = tid / 32, lane0 = TC_NL == 1 ? tid % 32 : 0;
        for (int it = ((warp - OFF) % NWARP + NWARP) % NWARP; it < PER; it += NWARP) {
            const int ng = it % NG, mt = it / NG;
            const float *base[TC_NL][2] = {};
#pragma unroll
            for (int l = 0; l < TC_NL; l++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int lane = lane0 + l, m = mt * 16 + lane / 4 + 8 * h, mc = m < M ? m : M - 1;
                    const int img = mc / HWC, q = mc % HWC, u = q / U, v = q % U;
                    base[l][h] = G + img * g_is + ((u + CH::D0) * gw + v + CW::D0) * GC + 2 * (lane % 4);
                }
            float acc[TC_NL][NW][4];
            tc_item<NW, NCH, tc_pipe<NT>()>(acc, base, R{-gw * GC}, wc, N8, ng * NW, 0, lane0);
#pragma unroll
            for (int l = 0; l < TC_NL; l++) {
                const int lane = lane0 + l;
#pragma unroll
                for (int j = 0; j < NW; j++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int m = mt * 16 + lane / 4 + 8 * h, ci = (ng * NW + j) * 8 + 2 * (lane % 4);
                        if (m >= M) continue;
                        const int img = m / HWC, q = m % HWC, u = q / U, v = q % U;
                        epi.vec2(img, u * L::S + RH, v * L::S + RW, ci, acc[l][j][2 * h], acc[l][j][2 * h + 1]);
                    }
            }
        }
    }
    template <class Epi>
    HD static void compute(int tid, const float *G, int g_is, int gw, const float *__restrict__ wt, float * /* sk:
                           Bwd's arguments, no split here */, const Epi &epi) {
        if (TC_NL > 1 && tid % 32) return;
        cls<1, 1>(tid, G, g_is, gw, wt, epi);
        cls<0, 1>(tid, G, g_is, gw, wt, epi);
        cls<1, 0>(tid, G, g_is, gw, wt, epi);
        cls<0, 0>(tid, G, g_is, gw, wt, epi);
    }
};

/* ---- L0 (1 -> 16, k5 s2 p4) ------------------------------------------------------------- */
/* Forward: K = 25 taps of the one input channel, padded to 4 k-steps (B's rows 25-31 are
 * zero, so those A columns read any finite value: x[0] of the row).  X: the padded 36x36
 * chain state. */
template <int IMG, int NT>
struct FwdTc0 {
    using L = G0;
    static constexpr int HW = L::HO * L::WO, M = IMG * HW, XW = L::W + 2 * L::P, NWARP = NT / 32;
    static constexpr int KST = 4, N8 = 2, NW = 2, MT = M / 16, ITEMS = MT;
    static_assert(M % 16 == 0 && L::K * L::K <= 8 * KST, "L0 tiling");
    HD static int koff(int k) { return k < L::K * L::K ? (k / L::K) * XW + k % L::K : 0; }
    /* tc_item's plan: one chunk of the 4 k-steps; column t of k-step u is tap 8 u + t */
    struct Plan {
        static constexpr int KU = KST;
        static constexpr bool PAIRED = false;
        static constexpr bool CVT = true; /* X, the chain state, is fp32 */
        HD static constexpr int dk(int u) { return u; }
        HD static int da(int u, int col, int lane) { return koff(u * 8 + lane % 4 + 4 * col); }
        struct At {
            int a, k;
        };
        HD static At first(int) { return {0, 0}; }
        HD static void next(At &) {}
    };
    template <class Epi>
    HD static void compute(int tid, const float *X, int x_is, const float *__restrict__ wt,
                           const float *__restrict__ b, const Epi &epi) {
        if (TC_NL > 1 && tid % 32) return;
        const int warp = tid / 32, lane0 = TC_NL == 1 ? tid % 32 : 0;
        for (int mt = warp; mt < MT; mt += NWARP) {
            const float *base[TC_NL][2] = {};
#pragma unroll
            for (int l = 0; l < TC_NL; l++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int m = mt * 16 + (lane0 + l) / 4 + 8 * h, img = m / HW, q = m % HW;
                    base[l][h] = X + img * x_is + (q / L::WO) * L::S * XW + (q % L::WO) * L::S;
                }
            float acc[TC_NL][NW][4];
            tc_item<NW, 1, tc_pipe<NT>()>(acc, base, Plan{}, wt, N8, 0, 0, lane0);
#pragma unroll
            for (int l = 0; l < TC_NL; l++) {
                const int lane = lane0 + l;
#pragma unroll
                for (int j = 0; j < NW; j++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        const int m = mt * 16 + lane / 4 + 8 * h, co = j * 8 + 2 * (lane % 4), q = m % HW;
                        epi.vec2(m / HW, q / L::WO, q % L::WO, co, acc[l][j][2 * h] + LDG(b + co),
                                 acc[l][j][2 * h + 1] + LDG(b + co + 1));
                    }
            }
        }
    }
};

/* Input gradient, dE/dx: the four parity classes at once.  Output-grid point (u, v) of class
 * (RH, RW) is x[2u + RH][2v + RW]; every class reads G at (u + wh, v + ww), wh, ww < 3, with
 * kernel tap (RH + 4 - 2 wh, RW + 4 - 2 ww) where that is < 5.  So one GEMM does all:
 * rows (image, u, v), K = 9 window points x 16 channels, columns n = RH * 2 + RW (4 of the
 * 8; B is zero where a window point is no tap of a class).  Lane t = 0 (1) holds classes 0, 1
 * (2, 3): x[2u + t][2v], x[2u + t][2v + 1], one 8-byte store to Q (28 wide). */
template <int IMG, int NT, int GC>
struct BwdTc0 {
    using L = G0;
    static constexpr int U = L::H / L::S, HWC = U * U, M = IMG * HWC, NWARP = NT / 32, KC = L::COUT / 8;
    static constexpr int MT = (M + 15) / 16;
    /* chunks: a window row wh (gw * GC floats on); the next window point is GC on */
    using R = TcRows<3, KC, GC>;
    static_assert(L::S == 2 && L::K == 5 && L::P == 4 && GC % 2 == 0, "L0's window form");
    HD static void compute(int tid, const float *G, int g_is, int gw, const float *__restrict__ wt, float *Q,
                           int q_is) {
        if (TC_NL > 1 && tid % 32) return;
        const int warp = tid / 32, lane0 = TC_NL == 1 ? tid % 32 : 0;
        for (int mt = warp; mt < MT; mt += NWARP) {
            const float *base[TC_NL][2] = {};
#pragma unroll
            for (int l = 0; l < TC_NL; l++)
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int lane = lane0 + l, m = mt * 16 + lane / 4 + 8 * h, mc = m < M ? m : M - 1;
                    const int img = mc / HWC, q = mc % HWC;
                    base[l][h] = G + img * g_is + ((q / U) * gw + q % U) * GC + 2 * (lane % 4);
                }
            float acc[TC_NL][1][4];
            tc_item<1, 3 * R::NCB, tc_pipe<NT>()>(acc, base, R{gw * GC}, wt, 1, 0, 0, lane0);
#pragma unroll
            for (int l = 0; l < TC_NL; l++) {
                const int lane = lane0 + l, t = lane % 4;
                if (t > 1) continue; /* columns 4-7: no class */
#pragma unroll
                for (int h = 0; h < 2; h++) {
                    const int m = mt * 16 + lane / 4 + 8 * h;
                    if (m >= M) continue;
                    const int img = m / HWC, q = m % HWC, u = q / U, v = q % U;
                    *reinterpret_cast<float2 *>(Q + img * q_is + (2 * u + t) * 28 + 2 * v) =
                        make_float2(acc[l][0][2 * h], acc[l][0][2 * h + 1]);
                }
            }
        }
    }
};


/* ---- L4 (dense 256 -> 64) by warps, with the tensor-core shapes ---------------------------- */
/* L4 has two rows (images) per block: too few for tensor-core tiles, and as Fwd/Bwd's split
 * K it took a GEMM phase, a barrier and a split-sum phase each way (2.4 k cycles forward, 2.6 k
 * backward with L5's, docs/PERF_CUDA.md run 9).  Here a warp owns a group of outputs for all
 * the block's images, its lanes split K, and hd_warp_spread sums the partials in registers:
 * one phase each way, no scratch.  The weights are in the order the lanes read them
 * (wlayout.h WL_F4W, WL_R4W): with the plain layouts each 16-byte load of a warp touched 32
 * cache lines, and the two phases took 5.9 k and 5.6 k cycles (run 9).  The sums' order
 * differs from the fp32 kernel's, so only the TF32 shapes (POL_TC) use it. */
template <int IMG, int NT>
struct FwdL4W {
    static constexpr int NWARP = NT / 32, NV = IMG * 4;
    static_assert(NV <= 32, "values per lane");
    /* A4: IMG x 256 (NHWC 2x2x64, a4_is apart); wf WL_F4W, b [64]; warp item cg: outputs
     * 4 cg .. 4 cg + 3; lane l: inputs l + 32 c, c < 8 */
    template <class Epi>
    HD static void compute(int tid, const float *A4, int a4_is, const float *__restrict__ wf,
                           const float *__restrict__ b, const Epi &epi) {
        if (TC_NL > 1 && tid % 32) return;
        const int lane0 = TC_NL == 1 ? tid % 32 : 0;
        for (int cg = tid / 32; cg < 16; cg += NWARP) {
            float v[TC_NL][NV];
#pragma unroll
            for (int l = 0; l < TC_NL; l++) {
                const int lane = lane0 + l;
                float w[8][4];
#pragma unroll
                for (int c = 0; c < 8; c++) {
                    const float4 q = LDG(reinterpret_cast<const float4 *>(wf + ((cg * 8 + c) * 32 + lane) * 4));
                    w[c][0] = q.x, w[c][1] = q.y, w[c][2] = q.z, w[c][3] = q.w;
                }
#pragma unroll
                for (int img = 0; img < IMG; img++) {
                    float a[8];
#pragma unroll
                    for (int c = 0; c < 8; c++) a[c] = A4[img * a4_is + lane + 32 * c];
#pragma unroll
                    for (int n = 0; n < 4; n++) {
                        float sum = 0.0f;
#pragma unroll
                        for (int c = 0; c < 8; c++) sum = fmaf(a[c], w[c][n], sum);
                        v[l][img * 4 + n] = sum;
                    }
                }
            }
            hd_warp_spread_out<NV>(v, lane0, [&](int i, float s) {
                const int co = 4 * cg + i % 4;
                epi(i / 4, 0, 0, co, FADD(s, LDG(b + co)));
            });
        }
    }
};

/* Backward of L5 and L4 in one: lane l recomputes G5 = (W5^T dout) * swish'(z5) (fused_net's
 * L5 step, the same operations) for its outputs l, l + 32, then dL/dA4 = W4^T G5 for the
 * warp's 16 inputs j of every image; epi scales by swish'(z4) (EpiGradD4). */
template <int IMG, int NT, int NOUT>
struct BwdL4W {
    static constexpr int NWARP = NT / 32, NV = IMG * 16;
    static_assert(NV <= 32, "values per lane");
    /* M: misc (dout at mi_dout, mi_is apart); D5: swish'(z5) (d5_is apart); wb WL_R4W, w5
     * [NOUT][64] */
    template <class Epi>
    HD static void compute(int tid, const float *M, int mi_is, int mi_dout, const float *D5, int d5_is,
                           const float *__restrict__ w5, const float *__restrict__ wb, const Epi &epi) {
        if (TC_NL > 1 && tid % 32) return;
        const int lane0 = TC_NL == 1 ? tid % 32 : 0;
        for (int jg = tid / 32; jg < 16; jg += NWARP) {
            float v[TC_NL][NV];
#pragma unroll
            for (int l = 0; l < TC_NL; l++) {
                const int lane = lane0 + l;
                float w[2][16], g[IMG][2];
#pragma unroll
                for (int k = 0; k < 2; k++)
#pragma unroll
                    for (int q = 0; q < 4; q++) {
                        const float4 x = LDG(reinterpret_cast<const float4 *>(wb + (((jg * 2 + k) * 4 + q) * 32 + lane) * 4));
                        w[k][4 * q] = x.x, w[k][4 * q + 1] = x.y, w[k][4 * q + 2] = x.z, w[k][4 * q + 3] = x.w;
                    }
#pragma unroll
                for (int img = 0; img < IMG; img++)
#pragma unroll
                    for (int k = 0; k < 2; k++) {
                        const int co = lane + 32 * k;
                        const float *d = M + img * mi_is + mi_dout;
                        float s = 0.0f;
                        for (int o = 0; o < NOUT; o++) s = fmaf(d[o], LDG(w5 + o * 64 + co), s);
                        g[img][k] = FMUL(s, D5[img * d5_is + co]);
                    }
#pragma unroll
                for (int img = 0; img < IMG; img++)
#pragma unroll
                    for (int jj = 0; jj < 16; jj++) v[l][img * 16 + jj] = fmaf(g[img][1], w[1][jj], FMUL(g[img][0], w[0][jj]));
            }
            hd_warp_spread_out<NV>(v, lane0, [&](int i, float s) { epi(i / 16, 0, 0, 16 * jg + i % 16, s); });
        }
    }
};

#endif
