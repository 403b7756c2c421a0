/* fused_net.cuh - the fused passes of cnn-small for one thread block of IMG images:
 * eval (forward + backward), the ULA and MALA chains with in-kernel Philox noise, and the
 * training pass (forward, loss-weighted backward, activations and gradients dumped for the
 * parameter-gradient GEMMs).
 *
 * Every phase is a lambda run by each thread of the block, then a barrier (Ex::par): on
 * the GPU Ex is DevEx; in tests/cuda/test_fused_emu.cu it is HostEx, which runs the
 * threads one after another, so the whole kernel can be checked on a machine without GPU.
 * The math and the random numbers are those of src/sample/langevin.c and
 * src/train/backend_cpu.c; comments name the CPU line each step mirrors. */
#ifndef EBM_CUDA_FUSED_NET_CUH
#define EBM_CUDA_FUSED_NET_CUH

#include "tc.cuh"

/* Runs f(tid) for every thread of the block, then waits for all of them.  With stamps
 * (cuda_bench --phases), thread 0 of block 0 records clock64() after each barrier, so the
 * differences are the phases' durations. */
enum { EX_STAMPS = 4096 };
struct DevEx {
    long long *stamps = nullptr;
    mutable int nstamp = 0;
    template <class F>
    HD void par(F &&f) const {
#ifdef __CUDA_ARCH__
        f((int)threadIdx.x);
        if (!stamps) {
            __syncthreads();
        } else { /* one asm block, so that the clock is read after the barrier, not before */
            long long t;
            asm volatile("bar.sync 0;\n\tmov.u64 %0, %%clock64;" : "=l"(t)::"memory");
            if (blockIdx.x == 0 && threadIdx.x == 0 && nstamp < EX_STAMPS) stamps[nstamp++] = t;
        }
#endif
    }
};

HD void hd_atomic_or(int *p, int v) {
#ifdef __CUDA_ARCH__
    atomicOr(p, v);
#else
    *p |= v;
#endif
}
HD void hd_atomic_min64(unsigned long long *p, unsigned long long v) {
#ifdef __CUDA_ARCH__
    atomicMin(p, v);
#else
    if (v < *p) *p = v;
#endif
}
HD void hd_atomic_add64(unsigned long long *p, unsigned long long v) {
#ifdef __CUDA_ARCH__
    atomicAdd(p, v);
#else
    *p += v;
#endif
}

/* Arguments of a chain launch (sample and training negatives). */
struct LvArgs {
    float *x;                 /* (n, 784) chain states, in place */
    float *E;                 /* (n) energies at the final points, or NULL */
    float *dEdx;              /* (n, 784) dE/dx at the final points (ULA with an eval there), or NULL */
    const int *y;             /* (n) labels for a conditional model, or NULL */
    const float *W;           /* kernel weights (wlayout.h) */
    int n, steps, final_eval, mala;
    float eps, sigma, clip, lo, hi;
    uint64_t seed;
    uint32_t chain0, step0;
    unsigned long long *bad;      /* min over (eval index << 32 | chain) of non-finite evals */
    unsigned long long *accepted; /* MALA acceptances (added to) */
    long long *stamps;            /* EX_STAMPS phase end times of block 0 (DevEx), or NULL */
};

/* Arguments of the training pass over npos positives then nneg negatives. */
struct TrArgs {
    const float *x; /* (npos + nneg, 784) */
    const int *y;   /* labels or NULL */
    const float *W;
    int npos, nneg;
    int npos_all, nneg_all; /* the loss's denominators: the whole batch when this pass is one GPU's
                               shard of a data-parallel step (backend_multi.cu); 0 = npos, nneg */
    float alpha;
    float *E;              /* (npos + nneg) energies out */
    float *dA[6];          /* layer inputs A0..A5, Lay strides */
    float *dG[6];          /* dL/dz of L0..L4 outputs (D layouts) and dL/df (16 per image) */
};

/* Parameter-gradient GEMM of layer l: dW[co][ci][kh][kw] = sum over images and output
 * positions of G[img][oh][ow][co] * A[img][oh*s + kh][ow*s + kw][ci] (A padded, a_w wide),
 * db[co] = sum of G.  L4 is the conv k2 on the 2x2x64 NHWC input, whose (ci, kh, kw) order
 * is exactly PyTorch's flatten order; L5 the conv k1 on 64 inputs with G = dL/df. */
struct WgradGeo {
    int cin, cout, k, s, a_is, a_w, g_is, g_w, ho;
};
HD WgradGeo wgrad_geo(int l, int nout) {
    const WgradGeo g[6] = {
        {1, 16, 5, 2, 1296, 36, 4096, 16, 16}, {16, 32, 3, 2, 5184, 18, 2592, 9, 8},
        {32, 64, 3, 2, 3200, 10, 1600, 5, 4},  {64, 64, 3, 2, 2304, 6, 576, 3, 2},
        {64, 64, 2, 1, 256, 2, 64, 1, 1},      {64, nout, 1, 1, 64, 1, 16, 1, 1}};
    return g[l];
}

template <int IMG, int NT, int NOUT, bool MALA, int POL = 0>
struct FusedNet {
    static constexpr bool TC = (POL & POL_TC) != 0, TC0 = (POL & POL_TC0) != 0; /* tensor cores (tc.cuh) */
    static_assert(!TC0 || TC, "L0 on the tensor cores reads Lay's TC strides");
    using Y = Lay<IMG, NOUT, MALA, (POL & POL_REUSE) != 0, (POL & POL_PAD) != 0, TC>;
    using F0 = Fwd<G0, IMG, NT, POL>;
    using F1 = Fwd<G1, IMG, NT, POL>;
    using F2 = Fwd<G2, IMG, NT, POL>;
    using F3 = Fwd<G3, IMG, NT, POL>;
    using F4 = Fwd<G4, IMG, NT, POL>;
    using B0 = Bwd<G0, IMG, NT, POL, Y::D1C>;
    using B1 = Bwd<G1, IMG, NT, POL, Y::D2C>;
    using B2 = Bwd<G2, IMG, NT, POL>;
    using B3 = Bwd<G3, IMG, NT, POL>;
    using B4 = Bwd<G4, IMG, NT, POL>;
    using T1 = FwdTc<G1, IMG, NT, Y::A1C>;
    using T2 = FwdTc<G2, IMG, NT, Y::A2C>;
    using T3 = FwdTc<G3, IMG, NT, Y::A3C>;
    using U1 = BwdTc<G1, IMG, NT, Y::D2C>;
    using U2 = BwdTc<G2, IMG, NT, Y::D3C>;
    using U3 = BwdTc<G3, IMG, NT, Y::D4C>;
    using T0 = FwdTc0<IMG, NT>;
    using U0 = BwdTc0<IMG, NT, Y::D1C>;
    /* L1-L3 as run, forward and input gradient, and their weights: fp32 or tensor cores (the
     * two forms take the same arguments) */
    template <class A, class B>
    using Pick = typename std::conditional<TC, A, B>::type;
    using FL1 = Pick<T1, F1>;
    using FL2 = Pick<T2, F2>;
    using FL3 = Pick<T3, F3>;
    using BL1 = Pick<U1, B1>;
    using BL2 = Pick<U2, B2>;
    using BL3 = Pick<U3, B3>;
    static constexpr int WF1 = TC ? WL_TF1 : WL_F1, WF2 = TC ? WL_TF2 : WL_F2, WF3 = TC ? WL_TF3 : WL_F3,
                         WB1 = TC ? WL_TB1 : WL_R1, WB2 = TC ? WL_TB2 : WL_R2, WB3 = TC ? WL_TB3 : WL_R3;

    /* Zeroes the border of pad p of a W x W x C buffer (interior untouched). */
    HD static void zero_border(int tid, float *buf, int is, int W, int C, int p) {
        const int top = p * W, side = (W - 2 * p) * p, per = (2 * top + 2 * side) * C;
        for (int i = tid; i < IMG * per; i += NT) {
            const int img = i / per, r = i % per, c = r % C, cell = r / C;
            int h, w;
            if (cell < 2 * top) {
                h = cell / W, w = cell % W;
                if (h >= p) h += W - 2 * p;
            } else {
                const int k = cell - 2 * top;
                h = p + k / (2 * p), w = k % (2 * p);
                if (w >= p) w += W - 2 * p;
            }
            buf[img * is + (h * W + w) * C + c] = 0.0f;
        }
    }
    /* Copies IMG images of `is` floats to global memory (training dumps). */
    HD static void dump(int tid, float *dst, const float *src, int is, int nval) {
        for (int i = tid; i < nval * is; i += NT) dst[i] = src[i];
    }

    /* Forward through L4 into A5/D5, then f = L5(A5).  dumpA (training) or NULL.  With TC
     * (Langevin only), f is a warp's sum per image and the head follows in the same phase
     * (the labels lab); eval then skips its head phase. */
    template <class Ex>
    HD static void forward(const Ex &ex, float *sm, const float *W, float *const *dA, int nval, const int *lab = nullptr) {
        float *X = sm + Y::oX, *P = sm + Y::oP, *Q = sm + Y::oQ, *M = sm + Y::oM;
        float *D1 = sm + Y::oD1, *D2 = sm + Y::oD2, *D3 = sm + Y::oD3, *D4 = sm + Y::oD4, *D5 = sm + Y::oD5;
        float *SK = sm + Y::oSK;
        const EpiSwishR<TC> e0 = {P, D1, Y::A1_IS, Y::A1W, G1::P, Y::D1_IS, Y::D1W, Y::A1C, Y::D1C};
        const EpiSwishR<TC> e1 = {Q, D2, Y::A2_IS, Y::A2W, G2::P, Y::D2_IS, Y::D2W, Y::A2C, Y::D2C};
        const EpiSwishR<TC> e2 = {P, D3, Y::A3_IS, Y::A3W, G3::P, Y::D3_IS, Y::D3W, Y::A3C, Y::D3C};
        const EpiSwish e3 = {Q, D4, Y::A4_IS, 2, 0, Y::D4_IS, Y::D4W, 64, Y::D4C};
        const EpiSwish e4 = {P, D5, Y::A5_IS, 1, 0, Y::D5_IS, 1, 64, 64};
        ex.par([&](int t) {
            zero_border(t, P, Y::A1_IS, Y::A1W, Y::A1C, G1::P);
            if constexpr (TC0) T0::compute(t, X, Y::X_IS, W + WL_TF0, W + WL_B0, e0);
            else F0::compute(t, X, Y::X_IS, W + WL_F0, W + WL_B0, SK, e0);
            if (dA) dump(t, dA[0], X, Y::X_IS, nval);
        });
        if (!TC0 && F0::KS > 1) ex.par([&](int t) { F0::reduce(t, SK, W + WL_B0, e0); });
        ex.par([&](int t) {
            zero_border(t, Q, Y::A2_IS, Y::A2W, Y::A2C, G2::P);
            FL1::compute(t, P, Y::A1_IS, W + WF1, W + WL_B1, SK, e1);
            if (dA) dump(t, dA[1], P, Y::A1_IS, nval);
        });
        if (FL1::KS > 1) ex.par([&](int t) { FL1::reduce(t, SK, W + WL_B1, e1); });
        ex.par([&](int t) {
            zero_border(t, P, Y::A3_IS, Y::A3W, Y::A3C, G3::P);
            FL2::compute(t, Q, Y::A2_IS, W + WF2, W + WL_B2, SK, e2);
            if (dA) dump(t, dA[2], Q, Y::A2_IS, nval);
        });
        if (FL2::KS > 1) ex.par([&](int t) { FL2::reduce(t, SK, W + WL_B2, e2); });
        ex.par([&](int t) {
            FL3::compute(t, P, Y::A3_IS, W + WF3, W + WL_B3, SK, e3);
            if (dA) dump(t, dA[3], P, Y::A3_IS, nval);
        });
        if (FL3::KS > 1) ex.par([&](int t) { FL3::reduce(t, SK, W + WL_B3, e3); });
        if constexpr (TC) {
            ex.par([&](int t) { FwdL4W<IMG, NT>::compute(t, Q, Y::A4_IS, W + WL_F4W, W + WL_B4, e4); });
        } else {
            ex.par([&](int t) {
                F4::compute(t, Q, Y::A4_IS, W + WL_F4, W + WL_B4, SK, e4);
                if (dA) dump(t, dA[4], Q, Y::A4_IS, nval);
            });
            if (F4::KS > 1) ex.par([&](int t) { F4::reduce(t, SK, W + WL_B4, e4); });
        }
        /* L5: f = W5 a5 + b5, one thread per (image, output); with TC one warp per image,
         * then its head (a 64-term sum in one thread was 1.1 k cycles, docs/PERF_CUDA.md run 9) */
        if constexpr (TC) {
            ex.par([&](int t) {
                if (TC_NL > 1 && t % 32) return;
                const bool lead = TC_NL > 1 || t % 32 == 0; /* lane 0 writes f, and reads it in head */
                for (int img = t / 32; img < IMG; img += NT / 32) {
                    const float *a = P + img * Y::A5_IS;
                    float *Mi = M + img * Y::MI_IS;
                    for (int o = 0; o < NOUT; o++) {
                        const float *w = W + WL_F5 + o * 64;
                        float pr[TC_NL];
#pragma unroll
                        for (int l = 0; l < TC_NL; l++) {
                            const int j = (TC_NL == 1 ? t % 32 : 0) + l;
                            pr[l] = fmaf(a[j + 32], LDG(w + j + 32), FMUL(a[j], LDG(w + j)));
                        }
                        const float f = FADD(hd_warp_sum(pr), LDG(W + WL_B5 + o));
                        if (lead) Mi[Y::MI_F + o] = f;
                    }
                    if (lab && lead) head(Mi, lab[img], false, 0.0f, 1.0f, 0.0f);
                }
            });
            return;
        }
        ex.par([&](int t) {
            if (dA) dump(t, dA[5], P, Y::A5_IS, nval);
            for (int i = t; i < IMG * NOUT; i += NT) {
                const int img = i / NOUT, o = i % NOUT;
                const float *a = P + img * Y::A5_IS, *w = W + WL_F5 + o * 64;
                float s = 0.0f;
                for (int j = 0; j < 64; j++) s = fmaf(a[j], LDG(w + j), s);
                M[img * Y::MI_IS + Y::MI_F + o] = s + LDG(W + WL_B5 + o);
            }
        });
        (void)D1, (void)D2, (void)D3, (void)D4, (void)D5;
    }

    /* Energy head of image img (net.c's energy_head, or backend_cpu.c's head_backward when
     * dLdE is given): writes E and dout = dLdE * dE/df (dLdE = 1 for Langevin). */
    HD static void head(float *Mi, int label, bool train, float sign, float nb, float alpha) {
        const float *f = Mi + Y::MI_F;
        float *dout = Mi + Y::MI_DOUT;
        float E;
        if (label >= 0 || NOUT == 1) {
            const int k = NOUT == 1 ? 0 : label;
            E = -f[k];
            for (int j = 0; j < NOUT; j++) dout[j] = 0.0f;
            if (!train) {
                dout[k] = -1.0f;
            } else {
                const float dlde = FDIV(FADD(sign, FMUL(FMUL(2.0f, alpha), E)), nb);
                dout[k] = -dlde;
            }
        } else {
            float mx = f[0];
            for (int j = 1; j < NOUT; j++) mx = f[j] > mx ? f[j] : mx;
            double s = 0.0;
            for (int j = 0; j < NOUT; j++) s += exp((double)FSUB(f[j], mx));
            const double lse = (double)mx + log(s);
            E = (float)-lse;
            if (!train) {
                for (int j = 0; j < NOUT; j++) dout[j] = (float)-exp((double)f[j] - lse);
            } else {
                const float dlde = FDIV(FADD(sign, FMUL(FMUL(2.0f, alpha), E)), nb);
                for (int j = 0; j < NOUT; j++) dout[j] = (float)(-(double)dlde * exp((double)f[j] - lse));
            }
        }
        Mi[Y::MI_E] = E;
    }

    /* Backward from dout to G1 (in D1); with_dx: then dE/dx into Q (784 per image). */
    template <class Ex>
    HD static void backward(const Ex &ex, float *sm, const float *W, bool with_dx) {
        float *Q = sm + Y::oQ, *M = sm + Y::oM;
        float *D1 = sm + Y::oD1, *D2 = sm + Y::oD2, *D3 = sm + Y::oD3, *D4 = sm + Y::oD4, *D5 = sm + Y::oD5;
        float *SK = sm + Y::oSK;
        const EpiGradD4<Y::D4C, TC> e4 = {D4, Y::D4_IS, Y::D4W};
        if constexpr (TC) { /* L5 and L4 in one phase (tc.cuh) */
            ex.par([&](int t) {
                BwdL4W<IMG, NT, NOUT>::compute(t, M, Y::MI_IS, Y::MI_DOUT, D5, Y::D5_IS, W + WL_F5, W + WL_R4W, e4);
            });
        } else {
            /* L5: G5 = (W5^T dout) * swish'(z5), in place in D5 */
            ex.par([&](int t) {
                for (int i = t; i < IMG * 64; i += NT) {
                    const int img = i / 64, j = i % 64;
                    const float *d = M + img * Y::MI_IS + Y::MI_DOUT;
                    float s = 0.0f;
                    for (int o = 0; o < NOUT; o++) s = fmaf(d[o], LDG(W + WL_F5 + o * 64 + j), s);
                    D5[img * Y::D5_IS + j] = FMUL(s, D5[img * Y::D5_IS + j]);
                }
            });
            ex.par([&](int t) { B4::compute(t, D5, Y::D5_IS, 1, W + WL_R4, SK, e4); });
            if (B4::REDUCE) ex.par([&](int t) { B4::reduce(t, SK, e4); });
        }
        const EpiGradR<TC> e3 = {D3, Y::D3_IS, Y::D3W, Y::D3C};
        const EpiGradR<TC> e2 = {D2, Y::D2_IS, Y::D2W, Y::D2C};
        const EpiGradR<TC0> e1 = {D1, Y::D1_IS, Y::D1W, Y::D1C};
        ex.par([&](int t) { BL3::compute(t, D4, Y::D4_IS, Y::D4W, W + WB3, SK, e3); });
        if constexpr (BL3::REDUCE) ex.par([&](int t) { BL3::reduce(t, SK, e3); });
        ex.par([&](int t) { BL2::compute(t, D3, Y::D3_IS, Y::D3W, W + WB2, SK, e2); });
        if constexpr (BL2::REDUCE) ex.par([&](int t) { BL2::reduce(t, SK, e2); });
        ex.par([&](int t) { BL1::compute(t, D2, Y::D2_IS, Y::D2W, W + WB1, SK, e1); });
        if constexpr (BL1::REDUCE) ex.par([&](int t) { BL1::reduce(t, SK, e1); });
        if (with_dx) {
            const EpiPlain e0 = {Q, Y::Q_IS, 28, 1};
            if constexpr (TC0) {
                ex.par([&](int t) { U0::compute(t, D1, Y::D1_IS, Y::D1W, W + WL_TB0, Q, Y::Q_IS); });
            } else {
                ex.par([&](int t) { B0::compute(t, D1, Y::D1_IS, Y::D1W, W + WL_R0, SK, e0); });
                if (B0::REDUCE) ex.par([&](int t) { B0::reduce(t, SK, e0); });
            }
        }
    }

    /* E and dE/dx (into Q) at the points in X. */
    template <class Ex>
    HD static void eval(const Ex &ex, float *sm, const float *W, const int *lab) {
        forward(ex, sm, W, nullptr, IMG, lab);
        if constexpr (!TC)
            ex.par([&](int t) {
                if (t < IMG) head(sm + Y::oM + t * Y::MI_IS, lab[t], false, 0.0f, 1.0f, 0.0f);
            });
        backward(ex, sm, W, true);
    }

    /* Zeroes shared memory, loads the block's chains into X and their labels. */
    template <class Ex>
    HD static void load(const Ex &ex, float *sm, const float *x, int nval) {
        ex.par([&](int t) {
            for (int i = t; i < Y::FLOATS; i += NT) sm[i] = 0.0f;
        });
        ex.par([&](int t) {
            for (int i = t; i < nval * 784; i += NT) {
                const int img = i / 784, e = i % 784;
                sm[Y::oX + img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4] = x[i];
            }
        });
    }

    /* Finite check of E and dE/dx of the valid images (langevin.c's evaluate): sets MI_BAD. */
    HD static void check(int t, float *sm, int nval, const int *skip) {
        float *Q = sm + Y::oQ, *M = sm + Y::oM;
        for (int i = t; i < nval * 196; i += NT) {
            const int img = i / 196, q = i % 196;
            if (skip && skip[img]) continue;
            check_at(M, img, q, *reinterpret_cast<const float4 *>(Q + img * Y::Q_IS + 4 * q));
        }
    }
    /* check's test of image img's dE/dx at pixels 4q .. 4q + 3 (g), and at q 0 of its E */
    HD static void check_at(float *M, int img, int q, const float4 &g) {
        bool ok = isfinite(g.x) && isfinite(g.y) && isfinite(g.z) && isfinite(g.w);
        if (q == 0) ok = ok && isfinite(M[img * Y::MI_IS + Y::MI_E]);
        if (!ok) hd_atomic_or(reinterpret_cast<int *>(M + img * Y::MI_IS + Y::MI_BAD), 1);
    }
    /* After a check: the first bad image's chain, recorded globally; true if any. */
    HD static bool bad_stop(float *sm, int nval, int t, uint32_t evalidx, uint32_t chain0, unsigned long long *bad) {
        const float *M = sm + Y::oM;
        for (int img = 0; img < nval; img++) {
            if (*reinterpret_cast<const int *>(M + img * Y::MI_IS + Y::MI_BAD)) {
                if (t == 0) hd_atomic_min64(bad, ((unsigned long long)evalidx << 32) | (chain0 + (uint32_t)img));
                return true;
            }
        }
        return false;
    }

    /* The ULA or MALA chains of block `blk` (langevin.c's langevin_run, same order). */
    template <class Ex>
    HD static void chains(const Ex &ex, float *sm, int blk, int tid0, const LvArgs &a) {
        const int img0 = blk * IMG, nval = a.n - img0 < IMG ? a.n - img0 : IMG;
        const uint32_t c0 = a.chain0 + (uint32_t)img0;
        float *X = sm + Y::oX, *Q = sm + Y::oQ, *M = sm + Y::oM;
        int lab[IMG];
        for (int i = 0; i < IMG; i++) lab[i] = (a.y && i < nval) ? a.y[img0 + i] : -1;
        load(ex, sm, a.x + (size_t)img0 * 784, nval);
        eval(ex, sm, a.W, lab);
        const float clip = a.clip;
        if (!MALA) {
            for (int s = 0; s < a.steps; s++) {
                /* the finite check of eval s (check) and ula_move, x = clamp(x - eps*clip(g) +
                 * sigma*xi), in one pass: a bad chain stops the block before x is written
                 * back, so moving it before the verdict changes nothing */
                ex.par([&](int t) {
                    for (int i = t; i < nval * 196; i += NT) {
                        const int img = i / 196, q = i % 196;
                        float z[4];
                        hd_normal4(a.seed, RNG_STREAM_NOISE, c0 + (uint32_t)img, a.step0 + (uint32_t)s, (uint32_t)q, z);
                        const float4 g4 = *reinterpret_cast<const float4 *>(Q + img * Y::Q_IS + 4 * q);
                        const float g[4] = {g4.x, g4.y, g4.z, g4.w};
                        check_at(M, img, q, g4);
#pragma unroll
                        for (int j = 0; j < 4; j++) {
                            const int e = 4 * q + j;
                            float *xp = X + img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4;
                            const float gc = clip > 0.0f ? hd_clampf(g[j], -clip, clip) : g[j];
                            const float v = FADD(FSUB(*xp, FMUL(a.eps, gc)), FMUL(a.sigma, z[j]));
                            *xp = hd_clampf(v, a.lo, a.hi);
                        }
                    }
                });
                if (bad_stop(sm, nval, tid0, (uint32_t)s, c0, a.bad)) return;
                if (s + 1 < a.steps || a.final_eval) eval(ex, sm, a.W, lab);
            }
            if (a.steps == 0 || a.final_eval) { /* the last eval's check */
                ex.par([&](int t) { check(t, sm, nval, nullptr); });
                if (bad_stop(sm, nval, tid0, (uint32_t)a.steps, c0, a.bad)) return;
            }
            ex.par([&](int t) {
                for (int i = t; i < nval * 784; i += NT) {
                    const int img = i / 784, e = i % 784;
                    a.x[(size_t)img0 * 784 + i] = X[img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4];
                }
                if (a.E && t < nval) a.E[img0 + t] = M[t * Y::MI_IS + Y::MI_E];
                if (a.dEdx)
                    for (int i = t; i < nval * 784; i += NT)
                        a.dEdx[(size_t)img0 * 784 + i] = Q[(i / 784) * Y::Q_IS + i % 784];
            });
        } else {
            ex.par([&](int t) { check(t, sm, nval, nullptr); });
            if (bad_stop(sm, nval, tid0, 0, c0, a.bad)) return;
            mala(ex, sm, nval, img0, c0, tid0, lab, a);
        }
    }

    template <class Ex>
    HD static void mala(const Ex &ex, float *sm, int nval, int img0, uint32_t c0, int tid0, const int *lab,
                        const LvArgs &a) {
        float *X = sm + Y::oX, *Q = sm + Y::oQ, *M = sm + Y::oM;
        float *XC = sm + Y::oXC, *GC = sm + Y::oGC;
        double *RED = reinterpret_cast<double *>(sm + Y::oRED);
        const float clip = a.clip;
        const double eps = a.eps, inv_s2 = 1.0 / ((double)a.sigma * a.sigma);
        /* current point, clipped gradient, energy */
        ex.par([&](int t) {
            for (int i = t; i < nval * 784; i += NT) {
                const int img = i / 784, e = i % 784;
                XC[i] = X[img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4];
                const float g = Q[img * Y::Q_IS + e];
                GC[i] = clip > 0.0f ? hd_clampf(g, -clip, clip) : g;
            }
            if (t < nval) M[t * Y::MI_IS + Y::MI_EC] = M[t * Y::MI_IS + Y::MI_E];
        });
        unsigned long long acc_count = 0;
        for (int s = 0; s < a.steps; s++) {
            /* mala_propose: y = x - eps*cg + sigma*xi; outside [lo, hi] -> rejected, y = x */
            ex.par([&](int t) {
                if (t < IMG) *reinterpret_cast<int *>(M + t * Y::MI_IS + Y::MI_OUT) = 0;
            });
            ex.par([&](int t) {
                for (int i = t; i < nval * 196; i += NT) {
                    const int img = i / 196, q = i % 196;
                    float z[4];
                    hd_normal4(a.seed, RNG_STREAM_NOISE, c0 + (uint32_t)img, a.step0 + (uint32_t)s, (uint32_t)q, z);
                    int out = 0;
#pragma unroll
                    for (int j = 0; j < 4; j++) {
                        const int e = 4 * q + j;
                        const float v = FADD(FSUB(XC[img * 784 + e], FMUL(a.eps, GC[img * 784 + e])), FMUL(a.sigma, z[j]));
                        out |= !(v >= a.lo && v <= a.hi);
                        X[img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4] = v;
                    }
                    if (out) hd_atomic_or(reinterpret_cast<int *>(M + img * Y::MI_IS + Y::MI_OUT), 1);
                }
            });
            ex.par([&](int t) {
                for (int i = t; i < nval * 784; i += NT) {
                    const int img = i / 784, e = i % 784;
                    if (*reinterpret_cast<const int *>(M + img * Y::MI_IS + Y::MI_OUT))
                        X[img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4] = XC[i];
                }
            });
            eval(ex, sm, a.W, lab);
            int skip[IMG];
            for (int i = 0; i < IMG; i++) skip[i] = *reinterpret_cast<const int *>(M + i * Y::MI_IS + Y::MI_OUT);
            /* check, clip g(y), partial sums of the Hastings ratio: 64 slots per image */
            ex.par([&](int t) { check(t, sm, nval, skip); });
            if (bad_stop(sm, nval, tid0, (uint32_t)s + 1, c0, a.bad)) return;
            ex.par([&](int t) {
                for (int i = t; i < nval * 64; i += NT) {
                    const int img = i / 64, sl = i % 64;
                    double cross = 0, gx2 = 0, gy2 = 0;
                    for (int e = sl; e < 784; e += 64) {
                        float *gp = Q + img * Y::Q_IS + e;
                        const float gy = clip > 0.0f ? hd_clampf(*gp, -clip, clip) : *gp;
                        *gp = gy;
                        const float yv = X[img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4];
                        const float xv = XC[img * 784 + e], gx = GC[img * 784 + e];
                        cross += ((double)yv - xv) * ((double)gx + gy);
                        gx2 += (double)gx * gx;
                        gy2 += (double)gy * gy;
                    }
                    double *r = RED + img * 3 * 64;
                    r[sl] = cross, r[64 + sl] = gx2, r[128 + sl] = gy2;
                }
            });
            /* mala_accept */
            ex.par([&](int t) {
                if (t < nval) {
                    float *Mi = M + t * Y::MI_IS;
                    int acc = 0;
                    if (!*reinterpret_cast<const int *>(Mi + Y::MI_OUT)) {
                        const double *r = RED + t * 3 * 64;
                        double cross = 0, gx2 = 0, gy2 = 0;
                        for (int k = 0; k < 64; k++) cross += r[k], gx2 += r[64 + k], gy2 += r[128 + k];
                        const double lr = (double)Mi[Y::MI_EC] - Mi[Y::MI_E] + eps * cross * inv_s2 +
                                          eps * eps * (gx2 - gy2) * 0.5 * inv_s2;
                        const double u = hd_uniform_at(a.seed, RNG_STREAM_ACCEPT, c0 + (uint32_t)t, a.step0 + (uint32_t)s, 0);
                        acc = log(u) < lr;
                    }
                    *reinterpret_cast<int *>(Mi + Y::MI_ACC) = acc;
                }
            });
            ex.par([&](int t) {
                for (int i = t; i < nval * 784; i += NT) {
                    const int img = i / 784, e = i % 784;
                    float *Mi = M + img * Y::MI_IS;
                    if (*reinterpret_cast<const int *>(Mi + Y::MI_ACC)) {
                        XC[i] = X[img * Y::X_IS + (e / 28 + 4) * Y::XW + e % 28 + 4];
                        GC[i] = Q[img * Y::Q_IS + e];
                    }
                }
            });
            /* EC after every reader of the flags is past the barrier above */
            ex.par([&](int t) {
                if (t < nval) {
                    float *Mi = M + t * Y::MI_IS;
                    if (*reinterpret_cast<const int *>(Mi + Y::MI_ACC)) Mi[Y::MI_EC] = Mi[Y::MI_E];
                }
            });
            for (int i = 0; i < nval; i++) acc_count += *reinterpret_cast<const int *>(M + i * Y::MI_IS + Y::MI_ACC);
        }
        ex.par([&](int t) {
            for (int i = t; i < nval * 784; i += NT) a.x[(size_t)img0 * 784 + i] = XC[i];
            if (a.E && t < nval) a.E[img0 + t] = M[t * Y::MI_IS + Y::MI_EC];
        });
        if (tid0 == 0 && a.accepted) hd_atomic_add64(a.accepted, acc_count);
    }

    /* Training pass of block blk: E, dL/dE weighted backward, dumps of A_l and G_l. */
    template <class Ex>
    HD static void train(const Ex &ex, float *sm, int blk, const TrArgs &a) {
        static_assert(!(POL & (POL_PAD | POL_TC)), "the dumps are read with wgrad_geo's unpadded strides");
        const int n = a.npos + a.nneg, img0 = blk * IMG, nval = n - img0 < IMG ? n - img0 : IMG;
        float *M = sm + Y::oM;
        load(ex, sm, a.x + (size_t)img0 * 784, nval);
        float *dA[6];
        for (int l = 0; l < 6; l++) dA[l] = a.dA[l] + (size_t)img0 * dump_is(l, true);
        forward(ex, sm, a.W, dA, nval);
        ex.par([&](int t) {
            if (t < nval) {
                const int gi = img0 + t;
                const bool pos = gi < a.npos;
                head(M + t * Y::MI_IS, a.y ? a.y[gi] : -1, true, pos ? 1.0f : -1.0f,
                     (float)(pos ? (a.npos_all ? a.npos_all : a.npos) : (a.nneg_all ? a.nneg_all : a.nneg)), a.alpha);
                a.E[gi] = M[t * Y::MI_IS + Y::MI_E];
            } else if (t < IMG) {
                for (int j = 0; j < 16; j++) M[t * Y::MI_IS + Y::MI_DOUT + j] = 0.0f;
            }
        });
        backward(ex, sm, a.W, false);
        ex.par([&](int t) {
            const float *src[5] = {sm + Y::oD1, sm + Y::oD2, sm + Y::oD3, sm + Y::oD4, sm + Y::oD5};
            for (int l = 0; l < 5; l++) dump(t, a.dG[l] + (size_t)img0 * dump_is(l, false), src[l], dump_is(l, false), nval);
            for (int i = t; i < nval * 16; i += NT) a.dG[5][(size_t)img0 * 16 + i] = M[(i / 16) * Y::MI_IS + Y::MI_DOUT + i % 16];
        });
    }

    /* the training pass's dumps are read with wgrad_geo's strides: no PADG there */
    static_assert((POL & POL_PAD) ||
                      (Y::X_IS == 1296 && Y::A1_IS == 5184 && Y::A2_IS == 3200 && Y::A3_IS == 2304 &&
                       Y::D1_IS == 4096 && Y::D2_IS == 2592 && Y::D3_IS == 1600 && Y::D4_IS == 576),
                  "wgrad_geo matches the shared-memory layout");
    /* Floats per image of dump l: layer inputs A0..A5, or output gradients G of L0..L4 (D
     * layouts) and dL/df (16). */
    HD static int dump_is(int l, bool input) {
        if (input) {
            const int is[6] = {Y::X_IS, Y::A1_IS, Y::A2_IS, Y::A3_IS, Y::A4_IS, Y::A5_IS};
            return is[l];
        }
        const int is[6] = {Y::D1_IS, Y::D2_IS, Y::D3_IS, Y::D4_IS, Y::D5_IS, 16};
        return is[l];
    }
};

#endif
