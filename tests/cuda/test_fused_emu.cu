/* test_fused_emu.cu - the fused CUDA kernels' code run on the CPU (no GPU needed): every
 * phase of FusedNet executes thread after thread (HostEx), and the results are compared
 * with the CPU reference (net_energy, langevin_run, net_backward's parameter gradients).
 * This catches indexing and layout errors of the kernels on any machine with nvcc; the
 * GPU's own rounding and races are checked by test_cuda_parity on the device.
 *
 * Tolerances (fp32, different summation orders): normwise relative error 1e-5 for
 * energies and gradients (each element within 1e-4 of the largest); chains 1e-4 absolute
 * after 5 steps.  The TF32 tensor-core layers (POL_TC, tc.cuh) round both operands of L1-L3
 * to 11 significant bits: TF32_TOL and TF32_CHAIN_TOL instead. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "cuda/cuda_common.h"
#include "cuda/fused_net.cuh"
#include "cuda/wlayout.h"

struct HostEx {
    int nt;
    template <class F>
    HD void par(F &&f) const {
#ifndef __CUDA_ARCH__
        for (int t = 0; t < nt; t++) f(t);
#endif
    }
};

static int failures = 0;
static const double TF32_TOL = 3e-3, TF32_CHAIN_TOL = 3e-3;

/* Normwise relative error |a - b| / |b| (METHOD.md: fp32 lands far under 1e-5 here) and
 * the worst element relative to max|b|; NaN never passes. */
static double check(const char *what, const float *a, const float *b, size_t n, double tol) {
    double d2 = 0, b2 = 0, mx = 0, worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        d2 += d * d, b2 += (double)b[i] * b[i], mx = fmax(mx, fabs((double)b[i]));
        if (!(fabs(d) <= worst)) worst = fabs(d), wi = i;
    }
    const double rel = sqrt(d2 / (b2 > 0 ? b2 : 1)), el = worst / (mx > 0 ? mx : 1);
    const bool ok = rel <= tol && el <= 10 * tol;
    printf("  %-30s n=%-6zu norm rel %.2e, worst %.2e of max at %zu (%.7g vs %.7g) %s\n", what, n, rel, el, wi,
           a[wi], b[wi], ok ? "ok" : "FAIL");
    failures += !ok;
    return rel;
}

static double check_abs(const char *what, const float *a, const float *b, size_t n, double tol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e, wi = i;
    }
    const bool ok = worst <= tol;
    printf("  %-34s n=%-6zu max abs %.2e at %zu (%.7g vs %.7g) %s\n", what, n, worst, wi, a[wi], b[wi],
           ok ? "ok" : "FAIL");
    failures += !ok;
    return worst;
}

static std::vector<float> kernel_weights(const net *n) {
    wlayout_src src;
    int k = 0;
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (L->w_len == 0) continue;
        src.w_off[k] = L->w_off, src.b_off[k] = L->b_off, k++;
    }
    if (k != 6) {
        printf("unexpected network\n");
        exit(1);
    }
    src.nout = n->out_dim;
    std::vector<int32_t> map(WL_TOTAL);
    wlayout_map(&src, map.data());
    std::vector<float> w(WL_TOTAL, 0.0f);
    for (int i = 0; i < WL_TOTAL; i++)
        if (map[i] >= 0) w[i] = i >= WL_TC ? hd_tf32_round(n->params[map[i]]) : n->params[map[i]];
    return w;
}

static std::vector<float> random_images(int n, uint64_t seed) {
    std::vector<float> x((size_t)n * 784);
    for (int i = 0; i < n; i++) {
        rng_uniform_fill(seed, 9, (uint32_t)i, 0, &x[(size_t)i * 784], 784);
        for (int k = 0; k < 784; k++) x[(size_t)i * 784 + k] = -1.0f + 2.0f * x[(size_t)i * 784 + k];
    }
    return x;
}

typedef struct {
    net *n;
    const int *y;
} ectx;
static ebm_status cpu_energy(void *c, const float *x, int n, float *E, float *g) {
    ectx *e = (ectx *)c;
    return net_energy(e->n, x, n, e->y, E, g);
}

/* Runs the block program for every block of a launch, on the host. */
template <int IMG, int NT, int NOUT, bool MALA, int POL = 0>
static void run_chains(const LvArgs &a) {
    using FN = FusedNet<IMG, NT, NOUT, MALA, POL>;
    std::vector<float4> sm((FN::Y::FLOATS + 3) / 4);
    const int blocks = (a.n + IMG - 1) / IMG;
    for (int b = 0; b < blocks; b++) FN::chains(HostEx{NT}, reinterpret_cast<float *>(sm.data()), b, 0, a);
}

template <int IMG, int NT, int NOUT, int POL = 0>
static void test_energy(net *n, const char *name, bool labels) {
    printf("energy and dE/dx, %s, IMG %d NT %d%s, policy %d\n", name, IMG, NT, labels ? ", labels" : "", POL);
    const int N = 3;
    std::vector<float> w = kernel_weights(n), x = random_images(N, 11), E(N), g((size_t)N * 784), Er(N),
                       gr((size_t)N * 784);
    std::vector<int> y(N);
    for (int i = 0; i < N; i++) y[i] = (3 * i + 1) % n->out_dim;
    LvArgs a;
    memset(&a, 0, sizeof a);
    unsigned long long bad = ~0ull;
    a.x = x.data(), a.E = E.data(), a.dEdx = g.data(), a.y = labels ? y.data() : nullptr, a.W = w.data();
    a.n = N, a.steps = 0, a.final_eval = 1, a.bad = &bad;
    a.eps = 1, a.sigma = 0, a.lo = -1, a.hi = 1;
    std::vector<float> x0 = x;
    run_chains<IMG, NT, NOUT, false, POL>(a);
    if (net_energy(n, x0.data(), N, labels ? y.data() : nullptr, Er.data(), gr.data()) != EBM_STATUS_OK) exit(1);
    const double tol = (POL & POL_TC) ? TF32_TOL : 1e-5;
    check("E", E.data(), Er.data(), N, tol);
    check("dE/dx", g.data(), gr.data(), g.size(), tol);
    check_abs("x unchanged", x.data(), x0.data(), x.size(), 0);
    if (bad != ~0ull) printf("  unexpected non-finite flag\n"), failures++;
}

template <int IMG, int NT, bool MALA, int POL = 0>
static void test_chain(net *n) {
    printf("%s chains, IMG %d NT %d, policy %d\n", MALA ? "MALA" : "ULA", IMG, NT, POL);
    const int N = 3, steps = 5;
    std::vector<float> w = kernel_weights(n), x = random_images(N, 12), E(N);
    std::vector<float> xr = x;
    langevin_params p;
    memset(&p, 0, sizeof p);
    p.mala = MALA;
    p.eps = MALA ? 0.02f : 10.0f;
    p.sigma = MALA ? -1.0f : 0.005f;
    p.grad_clip = MALA ? 0.0f : 0.03f;
    p.lo = -1, p.hi = 1, p.seed = 77, p.chain0 = 5, p.step0 = 3;
    /* keep MALA proposals mostly inside the box */
    if (MALA)
        for (auto &v : x) v *= 0.5f;
    xr = x;
    unsigned long long bad = ~0ull, acc = 0;
    LvArgs a;
    memset(&a, 0, sizeof a);
    a.x = x.data(), a.E = E.data(), a.W = w.data(), a.n = N, a.steps = steps, a.final_eval = 1, a.mala = MALA;
    a.eps = p.eps, a.sigma = langevin_sigma(&p), a.clip = p.grad_clip, a.lo = p.lo, a.hi = p.hi;
    a.seed = p.seed, a.chain0 = p.chain0, a.step0 = p.step0, a.bad = &bad, a.accepted = &acc;
    run_chains<IMG, NT, 1, MALA, POL>(a);
    ectx ec = {n, nullptr};
    langevin_stats st;
    if (langevin_run(cpu_energy, &ec, xr.data(), N, 784, steps, &p, &st, nullptr, nullptr, 0) != EBM_STATUS_OK)
        exit(1);
    check_abs("x after the chain", x.data(), xr.data(), x.size(), (POL & POL_TC) ? TF32_CHAIN_TOL : 1e-4);
    if (MALA) {
        printf("  accepted %llu of %d (CPU %ld)\n", acc, N * steps, st.accepted);
        if ((long)acc != st.accepted) failures++;
    }
    double mE = 0;
    for (int i = 0; i < N; i++) mE += E[i];
    printf("  mean E %.7g (CPU %.7g)\n", mE / N, st.mean_energy);
    if (fabs(mE / N - st.mean_energy) > ((POL & POL_TC) ? TF32_TOL : 1e-4) * (1 + fabs(st.mean_energy))) failures++;
}

/* Host version of the parameter-gradient GEMM over the dumps (what k_wgrad computes). */
static void host_wgrad(const TrArgs &a, int nimg, int nout, const net *n, std::vector<float> &grads) {
    int l6 = 0;
    for (int li = 0; li < n->nlayers; li++) {
        const net_layer *L = &n->layers[li];
        if (L->w_len == 0) continue;
        const WgradGeo g = wgrad_geo(l6, nout);
        const float *A = a.dA[l6], *G = a.dG[l6];
        for (int co = 0; co < g.cout; co++) {
            double db = 0;
            for (int img = 0; img < nimg; img++)
                for (int oh = 0; oh < g.ho; oh++)
                    for (int ow = 0; ow < g.ho; ow++) db += G[(size_t)img * g.g_is + (oh * g.g_w + ow) * g.cout + co];
            grads[L->b_off + co] = (float)db;
            for (int ci = 0; ci < g.cin; ci++)
                for (int kh = 0; kh < g.k; kh++)
                    for (int kw = 0; kw < g.k; kw++) {
                        double s = 0;
                        for (int img = 0; img < nimg; img++)
                            for (int oh = 0; oh < g.ho; oh++)
                                for (int ow = 0; ow < g.ho; ow++)
                                    s += (double)G[(size_t)img * g.g_is + (oh * g.g_w + ow) * g.cout + co] *
                                         A[(size_t)img * g.a_is + ((oh * g.s + kh) * g.a_w + ow * g.s + kw) * g.cin + ci];
                        grads[L->w_off + ((size_t)(co * g.cin + ci) * g.k + kh) * g.k + kw] = (float)s;
                    }
        }
        l6++;
    }
}

template <int IMG, int NT, int NOUT>
static void test_train(net *n, bool labels) {
    printf("training pass, IMG %d NT %d NOUT %d%s\n", IMG, NT, NOUT, labels ? ", labels" : "");
    using FN = FusedNet<IMG, NT, NOUT, false>;
    const int npos = 3, nneg = 2, N = npos + nneg;
    const float alpha = 0.1f;
    std::vector<float> w = kernel_weights(n), x = random_images(N, 13), E(N);
    std::vector<int> y(N);
    for (int i = 0; i < N; i++) y[i] = (7 * i + 2) % NOUT;
    std::vector<std::vector<float>> dA(6), dG(6);
    TrArgs a;
    memset(&a, 0, sizeof a);
    for (int l = 0; l < 6; l++) {
        dA[l].assign((size_t)N * FN::dump_is(l, true), NAN);
        dG[l].assign((size_t)N * FN::dump_is(l, false), NAN);
        a.dA[l] = dA[l].data(), a.dG[l] = dG[l].data();
    }
    a.x = x.data(), a.y = labels ? y.data() : nullptr, a.W = w.data(), a.npos = npos, a.nneg = nneg;
    a.alpha = alpha, a.E = E.data();
    std::vector<float4> sm((FN::Y::FLOATS + 3) / 4);
    for (int b = 0; b < (N + IMG - 1) / IMG; b++) FN::train(HostEx{NT}, reinterpret_cast<float *>(sm.data()), b, a);
    std::vector<float> grads(n->nparams, NAN);
    host_wgrad(a, N, NOUT, n, grads);
    /* CPU reference: backend_cpu.c's group_pass, positives then negatives */
    memset(n->grads, 0, sizeof(float) * n->nparams);
    std::vector<float> Er(N), f((size_t)N * NOUT), dout((size_t)N * NOUT);
    for (int grp = 0; grp < 2; grp++) {
        const int off = grp ? npos : 0, B = grp ? nneg : npos;
        const float sign = grp ? -1.0f : 1.0f;
        if (net_forward(n, &x[(size_t)off * 784], B, f.data()) != EBM_STATUS_OK) exit(1);
        for (int i = 0; i < B; i++) {
            const float *fi = &f[(size_t)i * NOUT];
            float *di = &dout[(size_t)i * NOUT];
            float Ei, dlde;
            if (NOUT == 1 || labels) {
                const int k = NOUT == 1 ? 0 : y[off + i];
                Ei = -fi[k];
                dlde = (sign + 2.0f * alpha * Ei) / (float)B;
                for (int j = 0; j < NOUT; j++) di[j] = 0;
                di[k] = -dlde;
            } else {
                float mx = fi[0];
                for (int j = 1; j < NOUT; j++) mx = fmaxf(mx, fi[j]);
                double s = 0;
                for (int j = 0; j < NOUT; j++) s += exp((double)(fi[j] - mx));
                double lse = (double)mx + log(s);
                Ei = (float)-lse;
                dlde = (sign + 2.0f * alpha * Ei) / (float)B;
                for (int j = 0; j < NOUT; j++) di[j] = (float)(-(double)dlde * exp((double)fi[j] - lse));
            }
            Er[off + i] = Ei;
        }
        net_backward(n, dout.data(), B, NULL, 1);
    }
    check("E", E.data(), Er.data(), N, 1e-4);
    char name[64];
    for (int li = 0, l6 = 0; li < n->nlayers; li++) {
        const net_layer *L = &n->layers[li];
        if (L->w_len == 0) continue;
        snprintf(name, sizeof name, "dW layer %d", l6);
        check(name, &grads[L->w_off], &n->grads[L->w_off], L->w_len, 1e-5);
        snprintf(name, sizeof name, "db layer %d", l6);
        check(name, &grads[L->b_off], &n->grads[L->b_off], L->b_len, 5e-5);
        l6++;
    }
}

/* hd_normal4, the kernels' noise, as the host compiles it: the same bits as rng_normal_fill
 * (test_cuda_parity checks the device's). */
static void test_normals(void) {
    printf("hd_normal4 (host) vs rng_normal_fill\n");
    const int n = 4 * 1000;
    std::vector<float> z(n), r(n);
    long bad = 0;
    for (uint32_t c = 0; c < 64; c++) {
        rng_normal_fill(0x1234567890abcdefull + c, RNG_STREAM_NOISE, c, 7 * c, r.data(), n);
        for (int q = 0; q < n / 4; q++) hd_normal4(0x1234567890abcdefull + c, RNG_STREAM_NOISE, c, 7 * c, q, &z[4 * q]);
        for (int i = 0; i < n; i++) bad += memcmp(&z[i], &r[i], 4) != 0;
    }
    printf("  %d normals differing: %ld %s\n", 64 * n, bad, bad ? "FAIL" : "ok");
    failures += bad != 0;
}

template <class B>
static void print_plan(const char *name) {
    printf("  %s %d/%d/%d/%d (%d)", name, B::PLAN.ks[0], B::PLAN.ks[1], B::PLAN.ks[2], B::PLAN.ks[3], B::PLAN.cost);
}

/* The work split of each layer (what docs/PERF_CUDA.md tabulates). */
template <int IMG, int NT, int POL>
static void describe(void) {
    using FN = FusedNet<IMG, NT, 1, false, POL>;
    printf("tiling IMG %d NT %d policy %d (TM positions x 4 channels per thread, KS splits of K, items):\n", IMG, NT,
           POL);
    printf("  fwd  L0 %dx%d %d  L1 %dx%d %d  L2 %dx%d %d  L3 %dx%d %d  L4 %dx%d %d\n", FN::F0::TM, FN::F0::KS, FN::F0::ITEMS,
           FN::F1::TM, FN::F1::KS, FN::F1::ITEMS, FN::F2::TM, FN::F2::KS, FN::F2::ITEMS, FN::F3::TM, FN::F3::KS,
           FN::F3::ITEMS, FN::F4::TM, FN::F4::KS, FN::F4::ITEMS);
    printf("  bwd  L0 %dx%d %d  L1 %dx%d %d  L2 %dx%d %d  L3 %dx%d %d  L4 %dx%d %d  (items per class)\n", FN::B0::TM,
           FN::B0::KS, FN::B0::ITEMS, FN::B1::TM, FN::B1::KS, FN::B1::ITEMS, FN::B2::TM, FN::B2::KS, FN::B2::ITEMS,
           FN::B3::TM, FN::B3::KS, FN::B3::ITEMS, FN::B4::TM, FN::B4::KS, FN::B4::ITEMS);
    printf("  bwd splits per parity class (most units any thread does):");
    print_plan<typename FN::B0>("L0");
    print_plan<typename FN::B1>("L1");
    print_plan<typename FN::B2>("L2");
    print_plan<typename FN::B3>("L3");
    if (FN::TC)
        printf("\n  TC (warp tiles of 16 x NW*8, K splits, warp items): fwd L1 %dx%d %d  L2 %dx%d %d  L3 %dx%d %d;"
               " bwd L1 NW %d %d per class  L2 NW %d %d  L3 NW %d %d",
               FN::T1::NW, FN::T1::KS, FN::T1::ITEMS, FN::T2::NW, FN::T2::KS, FN::T2::ITEMS, FN::T3::NW, FN::T3::KS,
               FN::T3::ITEMS, FN::U1::NW, FN::U1::PER, FN::U2::NW, FN::U2::PER, FN::U3::NW, FN::U3::PER);
    printf("\n  shared memory %zu bytes\n", FN::Y::BYTES);
}

int main(void) {
    describe<1, 256, 0>();
    describe<1, 512, 0>();
    describe<2, 512, 0>();
    describe<1, 256, 3>();
    describe<1, 512, 3>();
    describe<2, 512, 3>();
    describe<2, 512, 7>(); /* POL_PAD: same tiling, padded D1/D2 */
    describe<1, 512, 15>(); /* POL_BAL: per-class splits of the input gradients */
    describe<2, 512, 15>();
    net *n = NULL, *nc = NULL;
    if (net_create(&n, "cnn-small", 3) != EBM_STATUS_OK || net_create(&nc, "cnn-small-cond", 4) != EBM_STATUS_OK) {
        printf("net_create: %s\n", ebm_last_error());
        return 1;
    }
    net_set_threads(n, 1);
    net_set_threads(nc, 1);
    test_normals();
    test_energy<1, 256, 1>(n, "cnn-small", false);
    test_energy<2, 512, 1>(n, "cnn-small", false);
    test_energy<1, 512, 1>(n, "cnn-small", false);
    test_energy<2, 256, 1>(n, "cnn-small", false);
    test_energy<1, 256, 10>(nc, "cnn-small-cond", false);
    test_energy<2, 512, 10>(nc, "cnn-small-cond", true);
    test_energy<1, 256, 1, 2>(n, "cnn-small", false);
    test_energy<1, 512, 1, 2>(n, "cnn-small", false);
    test_energy<2, 512, 1, 2>(n, "cnn-small", false);
    test_energy<1, 256, 1, 3>(n, "cnn-small", false);
    test_energy<1, 512, 1, 3>(n, "cnn-small", false);
    test_energy<2, 512, 1, 3>(n, "cnn-small", false);
    test_energy<1, 256, 1, 7>(n, "cnn-small", false);
    test_energy<1, 512, 1, 7>(n, "cnn-small", false);
    test_energy<2, 512, 1, 7>(n, "cnn-small", false);
    test_energy<2, 512, 10, 7>(nc, "cnn-small-cond", true);
    test_energy<1, 512, 10, 7>(nc, "cnn-small-cond", true); /* the pick for <= 1 chain per SM */
    test_chain<2, 512, false, 7>(n);
    test_chain<1, 512, false, 7>(n);
    test_energy<1, 512, 1, 15>(n, "cnn-small", false); /* POL_BAL: per-class splits */
    test_energy<2, 512, 1, 15>(n, "cnn-small", false);
    test_chain<2, 512, false, 15>(n);
    test_chain<1, 512, false, 15>(n);
    describe<1, 512, POL_PAR | POL_REUSE | POL_PAD | POL_TC>(); /* TF32 tensor cores */
    describe<2, 512, POL_PAR | POL_REUSE | POL_PAD | POL_TC>();
    test_energy<1, 512, 1, 23>(n, "cnn-small", false);
    test_energy<2, 512, 1, 23>(n, "cnn-small", false);
    test_energy<2, 512, 10, 23>(nc, "cnn-small-cond", true);
    test_energy<1, 512, 10, 23>(nc, "cnn-small-cond", false);
    test_energy<1, 256, 1, 55>(n, "cnn-small", false); /* L0 too; shape 14, the TF32 pick up to one chain per SM */
    test_energy<2, 512, 1, 55>(n, "cnn-small", false);
    test_energy<2, 256, 10, 55>(nc, "cnn-small-cond", true);
    test_chain<2, 512, false, 55>(n); /* shape 13, the TF32 pick beyond */
    test_chain<1, 256, false, 55>(n);  /* shape 14 */
    test_energy<2, 512, 10, 55>(nc, "cnn-small-cond", true);
    test_chain<2, 512, false, 23>(n);
    test_chain<1, 512, false, 23>(n);
    test_chain<1, 256, false, 2>(n);
    test_chain<1, 256, false>(n);
    test_chain<2, 512, false>(n);
    test_chain<1, 256, true>(n);
    test_chain<2, 512, true>(n);
    test_train<1, 256, 1>(n, false);
    test_train<2, 512, 1>(n, false);
    test_train<2, 256, 10>(nc, true);
    test_train<1, 256, 10>(nc, false);
    net_free(n);
    net_free(nc);
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
