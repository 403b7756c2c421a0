/* test_cuda_parity.cu - the CUDA backend against the CPU reference from the same seed, on
 * a machine with an NVIDIA GPU (make test-cuda).  Exits non-zero on any failure.
 *
 * Tolerances (fp32; the two sides sum in different orders):
 *   Philox uniforms, rng_uniform_at and normals: bit-identical (both run src/core/boxmuller.h),
 *     and so are its log and sincos on every one of the 2^24 grid values
 *   energies, dE/dx, parameter gradients: normwise relative error <= 1e-5 (every element
 *     within 1e-4 of the largest); bias gradients 5e-5
 *   ULA chains, 20 steps of eps 10: max |x_cuda - x_cpu| <= 1e-4
 *   MALA chains: the same accept decisions (at most one chain may flip on a tie), 1e-4
 *   training, 3 iterations (also with half the batch on the marginal, and with chains of two digits):
 *     loss/energies 1e-4 relative, gradient norm 1e-4, buffer 1e-4,
 *     parameters within 2 lr per iteration (Adam with beta1 = 0 moves each weight by about
 *     lr * sign(g), so a gradient within rounding of zero may step the other way)
 * The TF32 tensor-core shapes (POL_TC): energies, dE/dx, chains and mean energy within
 * TF32_TOL (the CPU emulation, test_fused_emu, sees about 5e-4 on dE/dx).
 * EBM_CUDA_QUICK=1 runs small sizes only (for compute-sanitizer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "cuda/backend_cuda.h"
#include "cuda/kernels.h"

static int failures = 0;
static const double TF32_TOL = 3e-3;
static bool quick = false;

#include "cuda_check.h"

static double check_rel(const char *what, const float *a, const float *b, size_t n, double tol) {
    double d2 = 0, b2 = 0, mx = 0, worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        d2 += d * d, b2 += (double)b[i] * b[i], mx = fmax(mx, fabs((double)b[i]));
        if (!(fabs(d) <= worst)) worst = fabs(d), wi = i;
    }
    const double rel = sqrt(d2 / (b2 > 0 ? b2 : 1)), el = worst / (mx > 0 ? mx : 1);
    const bool ok = rel <= tol && el <= 10 * tol;
    printf("  %-34s n=%-7zu norm rel %.2e, worst %.2e of max at %zu (%.7g vs %.7g) %s\n", what, n, rel, el, wi,
           n ? a[wi] : 0.f, n ? b[wi] : 0.f, ok ? "ok" : "FAIL");
    failures += !ok;
    return rel;
}

static double check_abs(const char *what, const float *a, const float *b, size_t n, double tol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e, wi = i;
    }
    const bool ok = worst <= tol;
    printf("  %-34s n=%-7zu max abs %.2e at %zu (%.7g vs %.7g) %s\n", what, n, worst, wi, n ? a[wi] : 0.f,
           n ? b[wi] : 0.f, ok ? "ok" : "FAIL");
    failures += !ok;
    return worst;
}

static train_hparams sampling_hp(void) {
    train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.lv.lo = -1, hp.lv.hi = 1;
    return hp;
}

static void test_rng(void) {
    printf("device Philox vs rng.c\n");
    const int n = quick ? 64 : 4096;
    float *dn, *du;
    double *da;
    if (cudaMalloc(&dn, n * 4) || cudaMalloc(&du, n * 4) || cudaMalloc(&da, n * 8)) {
        EXPECT(0, "cudaMalloc");
        return;
    }
    OK(cu_rng_fill(dn, du, da, 0x1234567890abcdefull, 2, 77, 5, n, 0));
    std::vector<float> gn(n), gu(n), cn(n), cu(n);
    std::vector<double> ga(n);
    cudaMemcpy(gn.data(), dn, n * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(gu.data(), du, n * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(ga.data(), da, n * 8, cudaMemcpyDeviceToHost);
    cudaFree(dn), cudaFree(du), cudaFree(da);
    rng_normal_fill(0x1234567890abcdefull, 2, 77, 5, cn.data(), n);
    rng_uniform_fill(0x1234567890abcdefull, 2, 77, 5, cu.data(), n);
    int nbad = 0, ubad = 0, abad = 0, first = -1;
    for (int i = 0; i < n; i++) {
        const int bad = memcmp(&gn[i], &cn[i], 4) != 0;
        nbad += bad;
        if (bad && first < 0) first = i;
        ubad += memcmp(&gu[i], &cu[i], 4) != 0;
        abad += ga[i] != rng_uniform_at(0x1234567890abcdefull, 2, 77, 5, (uint32_t)i);
    }
    printf("  normals differing: %d of %d", nbad, n);
    if (first >= 0) printf(" (first at %d: %.9g vs %.9g)", first, gn[first], cn[first]);
    printf("; uniforms differing: %d; uniform_at differing: %d\n", ubad, abad);
    EXPECT(nbad == 0 && ubad == 0 && abad == 0, "device RNG differs from rng.c");
}

/* boxmuller.h's log and sincos on every input the normal stream gives them. */
__global__ void k_boxmuller_grid(float *lg, float *sn, float *cs, uint32_t n, uint32_t step) {
    const uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const uint32_t m = 1 + i * step;
    lg[i] = bm_log(BM_MUL((float)(int32_t)m, 1.0f / 16777216.0f));
    bm_sincos_turn24(m, &sn[i], &cs[i]);
}

static void test_boxmuller_grid(void) {
    printf("boxmuller.h on the device vs the host, grid values k / 2^24\n");
    const uint32_t step = quick ? 4099 : 1, n = ((1u << 24) - 1) / step + 1;
    float *d;
    if (cudaMalloc(&d, (size_t)n * 12)) {
        EXPECT(0, "cudaMalloc");
        return;
    }
    k_boxmuller_grid<<<(n + 255) / 256, 256>>>(d, d + n, d + 2 * (size_t)n, n, step);
    std::vector<float> g((size_t)n * 3);
    EXPECT(cudaMemcpy(g.data(), d, (size_t)n * 12, cudaMemcpyDeviceToHost) == cudaSuccess, "k_boxmuller_grid: %s",
           cudaGetErrorString(cudaGetLastError()));
    cudaFree(d);
    long bad[3] = {0, 0, 0};
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t m = 1 + i * step;
        float h[3];
        h[0] = bm_log((float)(int32_t)m * (1.0f / 16777216.0f));
        bm_sincos_turn24(m, &h[1], &h[2]);
        for (int j = 0; j < 3; j++) bad[j] += memcmp(&h[j], &g[(size_t)j * n + i], 4) != 0;
    }
    printf("  %u values: log differs at %ld, sin at %ld, cos at %ld\n", n, bad[0], bad[1], bad[2]);
    EXPECT(bad[0] == 0 && bad[1] == 0 && bad[2] == 0, "device Box-Muller differs from the host's");
}

static void test_energy(const char *spec, bool labels) {
    printf("energy and dE/dx, %s%s\n", spec, labels ? " with labels" : "");
    net *n = NULL;
    OK(net_create(&n, spec, 21));
    train_hparams hp = sampling_hp();
    train_backend be;
    ebm_status s = backend_cuda_create(n, &hp, 0, &be);
    if (s != EBM_STATUS_OK) {
        printf("  FAIL backend_cuda_create: %s\n", ebm_last_error());
        failures++;
        net_free(n);
        return;
    }
    const int N = quick ? 3 : 37;
    std::vector<float> x = images(N, 5, 1.0f), E(N), g((size_t)N * 784), Er(N), gr((size_t)N * 784);
    std::vector<int> y(N);
    for (int i = 0; i < N; i++) y[i] = (i * 7 + 3) % n->out_dim;
    if (net_energy(n, x.data(), N, labels ? y.data() : NULL, Er.data(), gr.data()) != EBM_STATUS_OK) failures++;
    cu_shape sh[32];
    const int ns = cu_chain_shapes(sh, 32);
    for (int k = 0; k < ns; k++) {
        backend_cuda_set_shape(be.ctx, k);
        std::fill(E.begin(), E.end(), NAN);
        std::fill(g.begin(), g.end(), NAN);
        s = backend_cuda_energy(be.ctx, x.data(), N, labels ? y.data() : NULL, E.data(), g.data());
        EXPECT(s == EBM_STATUS_OK, "backend_cuda_energy: %s", ebm_last_error());
        char w[64], lab[8], shape[40];
        cu_pol_label(sh[k].pol, lab);
        snprintf(shape, sizeof shape, "%d img x %d thr x %d%s%s", sh[k].img, sh[k].nt, sh[k].minb, *lab ? " " : "", lab);
        const double tol = (sh[k].pol & POL_TC) ? TF32_TOL : 1e-5;
        snprintf(w, sizeof w, "E (%s)", shape);
        check_rel(w, E.data(), Er.data(), N, tol);
        snprintf(w, sizeof w, "dE/dx (%s)", shape);
        check_rel(w, g.data(), gr.data(), g.size(), tol);
    }
    be.destroy(be.ctx);
    net_free(n);
}

static langevin_params lv_params(bool mala) {
    langevin_params p;
    memset(&p, 0, sizeof p);
    p.mala = mala;
    p.eps = mala ? 0.02f : 10.0f;
    p.sigma = mala ? -1.0f : 0.005f;
    p.grad_clip = mala ? 0.0f : 0.03f;
    p.lo = -1, p.hi = 1, p.seed = 4242, p.chain0 = 11, p.step0 = 2;
    return p;
}

static int snaps_seen;
static ebm_status count_snap(void *ud, int step, const float *x, const float *E, int n, int dim) {
    (void)x, (void)E, (void)n, (void)dim;
    int *steps = (int *)ud;
    steps[snaps_seen++ % 64] = step;
    return EBM_STATUS_OK;
}

static void test_chains(bool mala) {
    printf("%s chains, CUDA vs CPU from the same seed\n", mala ? "MALA" : "ULA");
    net *n = NULL;
    OK(net_create(&n, "cnn-small", 22));
    train_hparams hp = sampling_hp();
    train_backend gpu, cpu;
    OK(backend_cuda_create(n, &hp, 0, &gpu));
    OK(backend_cpu_create(n, &hp, &cpu));
    const int N = quick ? 3 : 37, steps = quick ? 2 : (mala ? 10 : 20);
    const langevin_params p = lv_params(mala);
    std::vector<float> x0 = images(N, 6, mala ? 0.5f : 1.0f), xr = x0;
    langevin_stats sr, sg;
    OK(cpu.sample(cpu.ctx, xr.data(), NULL, N, steps, &p, &sr, NULL, NULL, 0));
    cu_shape sh[32];
    const int ns = mala ? 1 : cu_chain_shapes(sh, 32);
    for (int k = 0; k < ns; k++) {
        if (!mala) backend_cuda_set_shape(gpu.ctx, k);
        std::vector<float> x = x0;
        OK(gpu.sample(gpu.ctx, x.data(), NULL, N, steps, &p, &sg, NULL, NULL, 0));
        char w[64];
        snprintf(w, sizeof w, "x after %d steps (shape %d)", steps, mala ? -1 : k);
        if (!mala) {
            check_abs(w, x.data(), xr.data(), x.size(), (sh[k].pol & POL_TC) ? TF32_TOL : 1e-4);
        } else {
            int off = 0;
            for (int i = 0; i < N; i++) {
                double d = 0;
                for (int e = 0; e < 784; e++) d = fmax(d, fabs((double)x[(size_t)i * 784 + e] - xr[(size_t)i * 784 + e]));
                off += d > 1e-4;
            }
            printf("  %-34s chains off by > 1e-4: %d of %d\n", w, off, N);
            EXPECT(off <= 1, "MALA chains differ");
            printf("  accepted %ld of %ld (CPU %ld of %ld)\n", sg.accepted, sg.proposed, sr.accepted, sr.proposed);
            EXPECT(labs(sg.accepted - sr.accepted) <= 1 && sg.proposed == sr.proposed, "acceptance counts differ");
        }
        printf("  mean energy %.7g (CPU %.7g)\n", sg.mean_energy, sr.mean_energy);
        const double etol = (!mala && (sh[k].pol & POL_TC)) ? TF32_TOL : 1e-4;
        EXPECT(fabs(sg.mean_energy - sr.mean_energy) <= etol * (1 + fabs(sr.mean_energy)), "mean energy");
    }
    /* snapshots: the same steps as the CPU and the same end point as one launch */
    if (!mala) {
        int sg_steps[64], sr_steps[64];
        backend_cuda_set_shape(gpu.ctx, -1);
        std::vector<float> a = x0, b = x0, c = x0;
        snaps_seen = 0;
        OK(gpu.sample(gpu.ctx, a.data(), NULL, N, steps, &p, NULL, count_snap, sg_steps, 7));
        const int ng = snaps_seen;
        snaps_seen = 0;
        OK(cpu.sample(cpu.ctx, c.data(), NULL, N, steps, &p, NULL, count_snap, sr_steps, 7));
        const int nr = snaps_seen;
        OK(gpu.sample(gpu.ctx, b.data(), NULL, N, steps, &p, NULL, NULL, NULL, 0));
        EXPECT(ng == nr && memcmp(sg_steps, sr_steps, sizeof(int) * (ng < 64 ? ng : 64)) == 0,
               "snapshot steps differ (%d vs %d calls)", ng, nr);
        EXPECT(memcmp(a.data(), b.data(), a.size() * 4) == 0, "snapshots changed the chain");
        printf("  snapshots every 7: %d calls, same steps as the CPU, same end point as one launch\n", ng);
    }
    gpu.destroy(gpu.ctx);
    cpu.destroy(cpu.ctx);
    net_free(n);
}

static void test_diverged(void) {
    printf("non-finite energies\n");
    net *n = NULL;
    OK(net_create(&n, "cnn-small", 23));
    for (size_t i = 0; i < n->nparams; i++) n->params[i] = 1e30f;
    train_hparams hp = sampling_hp();
    train_backend gpu;
    OK(backend_cuda_create(n, &hp, 0, &gpu));
    std::vector<float> x = images(3, 7, 1.0f);
    langevin_params p = lv_params(false);
    langevin_stats st;
    const ebm_status s = gpu.sample(gpu.ctx, x.data(), NULL, 3, 2, &p, &st, NULL, NULL, 0);
    printf("  %s: %s\n", ebm_status_name(s), ebm_last_error());
    EXPECT(s == EBM_STATUS_DIVERGED && strstr(ebm_last_error(), "step 0 of 2"), "expected DIVERGED at step 0");
    gpu.destroy(gpu.ctx);
    net_free(n);
}

/* Chains that overflow in their first move (noise 3e38, no clamp: x becomes infinite, E not
 * a number): every shape, and MALA, must stop at the step the CPU names, with its chain.  The
 * fused check-and-move phase moves x before the verdict (fused_net.cuh), so the reported step
 * is what this pins. */
static void test_diverged_midway(void) {
    printf("divergence after the first move\n");
    net *n = NULL;
    OK(net_create(&n, "cnn-small", 24));
    train_hparams hp = sampling_hp();
    train_backend gpu, cpu;
    OK(backend_cuda_create(n, &hp, 0, &gpu));
    OK(backend_cpu_create(n, &hp, &cpu));
    cu_shape sh[32];
    const int ns = cu_chain_shapes(sh, 32);
    for (int mala = 0; mala < 2; mala++) {
        langevin_params p = lv_params(mala);
        p.sigma = 3e38f, p.lo = -INFINITY, p.hi = INFINITY;
        std::vector<float> x0 = images(3, 9, 1.0f), x = x0;
        ebm_status s = cpu.sample(cpu.ctx, x.data(), NULL, 3, 3, &p, NULL, NULL, NULL, 0);
        char want[32];
        const char *e = strstr(ebm_last_error(), "step ");
        snprintf(want, sizeof want, "%.*s", e ? (int)strcspn(e, ":,") : 0, e ? e : "");
        printf("  CPU%s: %s: %s\n", mala ? " MALA" : "", ebm_status_name(s), ebm_last_error());
        EXPECT(s == EBM_STATUS_DIVERGED && *want && !strstr(want, "step 0"), "the CPU should diverge after step 0");
        for (int k = 0; k < (mala ? 1 : ns); k++) {
            backend_cuda_set_shape(gpu.ctx, mala ? -1 : k);
            x = x0;
            s = gpu.sample(gpu.ctx, x.data(), NULL, 3, 3, &p, NULL, NULL, NULL, 0);
            const bool same = s == EBM_STATUS_DIVERGED && *want && strstr(ebm_last_error(), want) &&
                              strstr(ebm_last_error(), "chain 11");
            if (!same) printf("  shape %d: %s: %s\n", k, ebm_status_name(s), ebm_last_error());
            EXPECT(same, "shape %d%s: expected DIVERGED at the CPU's %s, chain 11", k, mala ? " (MALA)" : "", want);
        }
        printf("  %s: every shape reports %s, chain 11\n", mala ? "MALA" : "ULA", want);
    }
    backend_cuda_set_shape(gpu.ctx, -1);
    gpu.destroy(gpu.ctx);
    cpu.destroy(cpu.ctx);
    net_free(n);
}

static void test_train(const char *spec, bool cond, float marginal = 0.0f, float marginal_chains = 0.0f,
                       uint16_t classes = 0) {
    printf("training iterations, %s%s%s%s: CUDA vs CPU backends from the same seed\n", spec,
           marginal > 0 ? ", half the batch on the marginal" : "", marginal_chains == 1 ? ", every chain on the marginal" : "",
           classes ? ", chains of digits 3 and 5 only" : "");
    net *a = NULL, *b = NULL;
    OK(net_create(&a, spec, 31));
    OK(net_create(&b, spec, 31));
    train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.batch = quick ? 2 : 16, hp.n_samples = quick ? 3 : 16, hp.steps = quick ? 2 : 10;
    hp.lv.eps = 10, hp.lv.sigma = 0.005f, hp.lv.grad_clip = 0.03f, hp.lv.lo = -1, hp.lv.hi = 1, hp.lv.seed = 99;
    hp.alpha = 0.1f, hp.lr = 1e-4f, hp.beta1 = 0.0f, hp.beta2 = 0.999f, hp.adam_eps = 1e-8f;
    hp.data_noise = 0.005f, hp.buffer_size = quick ? 8 : 64, hp.reinit = 0.05f, hp.conditional = cond;
    hp.marginal = marginal, hp.marginal_chains = marginal_chains, hp.classes = classes;
    train_backend gpu, cpu;
    OK(backend_cpu_create(a, &hp, &cpu));
    OK(backend_cuda_create(b, &hp, 0, &gpu));
    const int B = hp.batch, iters = quick ? 2 : 3;
    for (int it = 0; it < iters; it++) {
        std::vector<float> xp = images(B, 100 + it, 0.9f);
        std::vector<int> yp(B);
        for (int i = 0; i < B; i++)
            yp[i] = i < train_marginal_count(marginal, B) ? -1 : classes ? ((i + it) % 2 ? 5 : 3) : (i + it) % 10;
        train_step_stats sc, sg;
        OK(cpu.train_step(cpu.ctx, xp.data(), cond ? yp.data() : NULL, B, &hp, it, &sc));
        OK(gpu.train_step(gpu.ctx, xp.data(), cond ? yp.data() : NULL, B, &hp, it, &sg));
        printf("  it %d: loss %.7g (CPU %.7g)  E+ %.6g (%.6g)  E- %.6g (%.6g)  |g| %.6g (%.6g)\n", it, sg.loss, sc.loss,
               sg.e_pos, sc.e_pos, sg.e_neg, sc.e_neg, sg.grad_norm, sc.grad_norm);
        const float got[4] = {sg.loss, sg.e_pos, sg.e_neg, sg.grad_norm}, ref[4] = {sc.loss, sc.e_pos, sc.e_neg, sc.grad_norm};
        for (int k = 0; k < 4; k++)
            EXPECT(fabs(got[k] - ref[k]) <= 1e-4 * fabs(ref[k]) + 1e-6, "iteration %d stat %d: %g vs %g", it, k, got[k],
                   ref[k]);
    }
    std::vector<float> bufc((size_t)hp.buffer_size * 784), bufg(bufc.size());
    OK(cpu.pull(cpu.ctx, a, bufc.data()));
    std::vector<float> pa(a->params, a->params + a->nparams);
    OK(gpu.pull(gpu.ctx, b, bufg.data()));
    check_abs("parameters", b->params, pa.data(), a->nparams, 2.0 * hp.lr * iters);
    check_rel("parameters (normwise)", b->params, pa.data(), a->nparams, 1e-3);
    check_abs("replay buffer", bufg.data(), bufc.data(), bufc.size(), 1e-4);
    /* push/pull round trip */
    OK(gpu.push(gpu.ctx, a, bufc.data()));
    OK(gpu.pull(gpu.ctx, b, bufg.data()));
    check_abs("push then pull", b->params, a->params, a->nparams, 0);
    gpu.destroy(gpu.ctx);
    cpu.destroy(cpu.ctx);
    net_free(a);
    net_free(b);
}

int main(void) {
    quick = getenv("EBM_CUDA_QUICK") && atoi(getenv("EBM_CUDA_QUICK"));
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("test_cuda_parity: no CUDA GPU here; nothing to compare (run on the GPU machine)\n");
        return 1;
    }
    cudaDeviceProp pr;
    cudaGetDeviceProperties(&pr, 0);
    printf("test_cuda_parity on %s (sm_%d%d, %d SMs)%s\n", pr.name, pr.major, pr.minor, pr.multiProcessorCount,
           quick ? ", quick" : "");
    test_rng();
    test_boxmuller_grid();
    test_energy("cnn-small", false);
    test_energy("cnn-small-cond", false);
    test_energy("cnn-small-cond", true);
    test_chains(false);
    test_chains(true);
    test_diverged();
    test_diverged_midway();
    test_train("cnn-small", false);
    test_train("cnn-small-cond", true);
    test_train("cnn-small-cond", true, 0.5f, 0.5f);
    test_train("cnn-small-cond", true, 0.0f, 1.0f); /* the joint likelihood */
    test_train("cnn-small-cond", true, 0.0f, 0.0f, 0x28); /* --digits 3,5 */
    printf("test_cuda_parity: %s (%d failure%s)\n", failures ? "FAILED" : "passed", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
