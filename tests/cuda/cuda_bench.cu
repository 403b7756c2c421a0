/* cuda_bench.cu - throughput of the CUDA backend (what `ebm bench --device cuda` reports):
 *   Langevin image-steps/s at batch 128, 1024 and 8192 (60 steps, the kernel alone, every
 *     compiled block shape, and the end-to-end sample() call with its copies),
 *   training iterations/s at batch 128 with 60 Langevin steps (the peer's recipe),
 *   achieved TFLOP/s against the measured fp32 FMA ceiling, and device copy bandwidth.
 * Usage: cuda_bench [--data DIR] [--seconds S] [--reps R] [--profile SHAPE BATCH STEPS]
 * (--profile: one warm-up and one timed launch of that shape, for ncu; --phases SHAPE BATCH
 * STEPS: block 0's clock64() at every barrier of that launch, printed as each phase's cycles,
 * to see where a step's time goes).  The last lines are
 * key=value pairs for bench/cuda_bench.sh. */
#include <algorithm>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include "cuda/backend_cuda.h"
#include "cuda/kernels.h"

/* Useful FLOPs of one Langevin step of cnn-small (forward + dE/dx), 2 per multiply-add:
 * forward 856,128 MACs; input gradient 832,128 MACs (L0's gather skips the padding). */
static const double FLOP_PER_STEP = 2.0 * (856128.0 + 832128.0);

#define DIE(...)                                 \
    do {                                         \
        fprintf(stderr, "cuda_bench: ");         \
        fprintf(stderr, __VA_ARGS__);            \
        fprintf(stderr, "\n");                   \
        exit(1);                                 \
    } while (0)
#define TRY(call)                                                                                 \
    do {                                                                                          \
        ebm_status s_ = (call);                                                                   \
        if (s_ != EBM_STATUS_OK) DIE("%s: %s: %s", #call, ebm_status_name(s_), ebm_last_error()); \
    } while (0)
#define CU(call)                                                                     \
    do {                                                                             \
        cudaError_t e_ = (call);                                                     \
        if (e_ != cudaSuccess) DIE("%s: %s", #call, cudaGetErrorString(e_));         \
    } while (0)

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

/* Milliseconds of one launch of `steps` ULA steps on n chains (median of reps), the kernel
 * alone; the chains restart from the same points each rep. */
static double time_chains(const float *W, int n, int steps, int shape, int reps, long long *stamps = NULL) {
    std::vector<float> x0((size_t)n * 784);
    for (int i = 0; i < n; i++) rng_uniform_fill(1, RNG_STREAM_START, (uint32_t)i, 0, &x0[(size_t)i * 784], 784);
    for (auto &v : x0) v = 2 * v - 1;
    float *x, *xs;
    unsigned long long *flags;
    CU(cudaMalloc(&x, x0.size() * 4));
    CU(cudaMalloc(&xs, x0.size() * 4));
    CU(cudaMalloc(&flags, 16));
    CU(cudaMemcpy(xs, x0.data(), x0.size() * 4, cudaMemcpyHostToDevice));
    LvArgs a;
    memset(&a, 0, sizeof a);
    a.x = x, a.W = W, a.n = n, a.steps = steps, a.final_eval = 0;
    a.eps = 10, a.sigma = 0.005f, a.clip = 0.03f, a.lo = -1, a.hi = 1, a.seed = 7, a.bad = flags, a.stamps = stamps;
    cudaEvent_t e0, e1;
    CU(cudaEventCreate(&e0));
    CU(cudaEventCreate(&e1));
    std::vector<double> ms;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        CU(cudaMemcpy(x, xs, x0.size() * 4, cudaMemcpyDeviceToDevice));
        CU(cudaMemset(flags, 0xff, 8));
        CU(cudaEventRecord(e0));
        TRY(cu_chains(&a, 1, shape, 0));
        CU(cudaEventRecord(e1));
        CU(cudaEventSynchronize(e1));
        float t;
        CU(cudaEventElapsedTime(&t, e0, e1));
        if (r >= 0) ms.push_back(t);
    }
    unsigned long long bad;
    CU(cudaMemcpy(&bad, flags, 8, cudaMemcpyDeviceToHost));
    if (bad != ~0ull) DIE("chains diverged in the benchmark (flag %llx)", bad);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaFree(x), cudaFree(xs), cudaFree(flags);
    return median(ms);
}

int main(int argc, char **argv) {
    const char *data = NULL;
    double seconds = 10;
    int reps = 5, prof[3] = {-2, 0, 0};
    bool phases = false;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--profile") || !strcmp(argv[i], "--phases")) && i + 3 < argc) {
            phases = !strcmp(argv[i], "--phases");
            for (int k = 0; k < 3; k++) prof[k] = atoi(argv[++i]);
            continue;
        }
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else DIE("usage: cuda_bench [--data DIR] [--seconds S] [--reps R] [--profile|--phases SHAPE BATCH STEPS]");
    }
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || !count) DIE("no CUDA GPU");
    cudaDeviceProp pr;
    CU(cudaGetDeviceProperties(&pr, 0));
    printf("device: %s, %d SMs, sm_%d%d, %.0f MiB, L2 %d MiB\n", pr.name, pr.multiProcessorCount, pr.major, pr.minor,
           pr.totalGlobalMem / 1048576.0, pr.l2CacheSize >> 20);
    if (prof[0] > -2) {
        net *pn = NULL;
        TRY(net_create(&pn, "cnn-small", 0));
        train_hparams php;
        memset(&php, 0, sizeof php);
        php.lv.lo = -1, php.lv.hi = 1;
        train_backend pb;
        TRY(backend_cuda_create(pn, &php, 0, &pb));
        long long *st = NULL;
        if (phases) {
            CU(cudaMalloc(&st, EX_STAMPS * sizeof *st));
            CU(cudaMemset(st, 0, EX_STAMPS * sizeof *st));
        }
        const double ms = time_chains(backend_cuda_weights(pb.ctx), prof[1], prof[2], prof[0], 1, st);
        printf("profile: shape %d, batch %d, %d steps: %.3f ms, %.2f M image-steps/s\n", prof[0], prof[1], prof[2], ms,
               prof[1] * (double)prof[2] / (ms * 1e3));
        if (phases) { /* the timed launch overwrote the warm-up's stamps */
            std::vector<long long> h(EX_STAMPS);
            CU(cudaMemcpy(h.data(), st, EX_STAMPS * sizeof *st, cudaMemcpyDeviceToHost));
            int k = 0;
            while (k < EX_STAMPS && h[k]) k++;
            printf("phases: %d barriers in block 0, %.0f cycles from the first to the last\n", k, k ? (double)(h[k - 1] - h[0]) : 0.0);
            for (int i = 1; i < k; i++) printf("phase %4d %8lld cycles\n", i, h[i] - h[i - 1]);
            cudaFree(st);
        }
        pb.destroy(pb.ctx);
        net_free(pn);
        return 0;
    }
    double fma, copy;
    TRY(cu_peak_fma(&fma));
    TRY(cu_peak_copy(&copy));
    printf("ceilings: fp32 FMA %.1f TFLOP/s (measured), device copy %.0f GB/s (read + write)\n", fma / 1e12, copy / 1e9);
    printf("work: %.3f MFLOP per Langevin step per image (forward + dE/dx)\n", FLOP_PER_STEP / 1e6);

    net *n = NULL;
    TRY(net_create(&n, "cnn-small", 0));
    train_hparams shp;
    memset(&shp, 0, sizeof shp);
    shp.lv.lo = -1, shp.lv.hi = 1;
    train_backend be;
    TRY(backend_cuda_create(n, &shp, 0, &be));
    const float *W = backend_cuda_weights(be.ctx); /* device pointer, kernel layout */

    const int batches[3] = {128, 1024, 8192}, steps = 60;
    cu_shape sh[32];
    const int ns = cu_chain_shapes(sh, 32);
    EBM_ASSERT(ns <= 32); /* run 2 printed garbage labels for shapes 8-10 with an array of 8 */
    double best[3] = {0, 0, 0}, best_tf32[3] = {0, 0, 0};
    printf("\nLangevin, %d steps, kernel time (median of %d)\n", steps, reps);
    printf("%-8s", "batch");
    char lab[8];
    for (int k = 0; k < ns; k++)
        printf("   %dimg x %d x %db%-4s      ", sh[k].img, sh[k].nt, sh[k].minb, cu_pol_label(sh[k].pol, lab));
    printf("  auto (fp32)                               auto (TF32)\n");
    for (int bi = 0; bi < 3; bi++) {
        const int b = batches[bi];
        printf("%-8d", b);
        for (int k = 0; k < ns; k++) {
            const double ms = time_chains(W, b, steps, k, reps);
            const double rate = b * (double)steps / (ms * 1e-3);
            best[bi] = rate > best[bi] ? rate : best[bi];
            printf("  %8.3f ms %6.2f M", ms, rate / 1e6);
            fflush(stdout);
        }
        const double ms = time_chains(W, b, steps, -1, reps);
        const double rate = b * (double)steps / (ms * 1e-3);
        printf("  %8.3f ms %6.2f M (%.1f TFLOP/s, %.0f%% of FMA peak)\n", ms, rate / 1e6, rate * FLOP_PER_STEP / 1e12,
               100 * rate * FLOP_PER_STEP / fma);
        best[bi] = rate; /* report the shape the backend picks */
        const double mt = time_chains(W, b, steps, CU_PICK_TF32, reps);
        best_tf32[bi] = b * (double)steps / (mt * 1e-3);
        printf("%8s  TF32 pick: %8.3f ms %6.2f M (%.1f TFLOP/s useful)\n", "", mt, best_tf32[bi] / 1e6,
               best_tf32[bi] * FLOP_PER_STEP / 1e12);
    }
    /* end to end through sample(): copies in and out included */
    double e2e[3], e2e_tf32[3];
    for (int pass = 0; pass < 6; pass++) {
        const int bi = pass % 3, tf32 = pass / 3;
        backend_cuda_set_shape(be.ctx, tf32 ? CU_PICK_TF32 : CU_PICK);
        const int b = batches[bi];
        std::vector<float> x((size_t)b * 784);
        langevin_params p;
        memset(&p, 0, sizeof p);
        p.eps = 10, p.sigma = 0.005f, p.grad_clip = 0.03f, p.lo = -1, p.hi = 1, p.seed = 3;
        std::vector<double> t;
        for (int r = -1; r < reps; r++) {
            for (int i = 0; i < b; i++) rng_uniform_fill(1, RNG_STREAM_START, (uint32_t)i, 0, &x[(size_t)i * 784], 784);
            const double t0 = ebm_now();
            TRY(be.sample(be.ctx, x.data(), NULL, b, steps, &p, NULL, NULL, NULL, 0));
            if (r >= 0) t.push_back(ebm_now() - t0);
        }
        (tf32 ? e2e_tf32 : e2e)[bi] = b * (double)steps / median(t);
        printf("sample() end to end, batch %5d%s: %.2f M image-steps/s\n", b, tf32 ? ", TF32" : "",
               (tf32 ? e2e_tf32 : e2e)[bi] / 1e6);
    }
    be.destroy(be.ctx);

    /* training: the peer's recipe (shared/bench/README.md) */
    train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.batch = 128, hp.n_samples = 128, hp.steps = 60;
    hp.lv.eps = 10, hp.lv.sigma = 0.005f, hp.lv.grad_clip = 0.03f, hp.lv.lo = -1, hp.lv.hi = 1, hp.lv.seed = 1;
    hp.alpha = 0.1f, hp.lr = 1e-4f, hp.beta1 = 0, hp.beta2 = 0.999f, hp.adam_eps = 1e-8f, hp.data_noise = 0.005f;
    hp.buffer_size = 8192, hp.reinit = 0.05f;
    dataset d;
    memset(&d, 0, sizeof d);
    bool have_data = false;
    if (data) {
        uint16_t mask;
        TRY(digits_parse("all", &mask));
        have_data = dataset_load_dir(data, "train", mask, 0, &d) == EBM_STATUS_OK;
        if (!have_data) printf("(no MNIST in %s: %s; random positives)\n", data, ebm_last_error());
    }
    std::vector<float> xpos((size_t)hp.batch * 784);
    double its2[2];
    for (int tf32 = 0; tf32 < 2; tf32++) { /* fp32 chains, then TF32 chains (gradients fp32 both times) */
        hp.tf32 = tf32;
        net *tn = NULL;
        TRY(net_create(&tn, "cnn-small", 1));
        train_backend tb;
        TRY(backend_cuda_create(tn, &hp, 0, &tb));
        ebm_rng r = rng_make(5, RNG_STREAM_DATA);
        uint64_t it = 0;
        train_step_stats st;
        double t0 = 0, tstart = ebm_now();
        long done = 0;
        for (;;) {
            for (int i = 0; i < hp.batch; i++) {
                if (have_data) memcpy(&xpos[(size_t)i * 784], d.x + (size_t)rng_below(&r, (uint32_t)d.n) * 784, 784 * 4);
                else rng_uniform_fill(it, 9, (uint32_t)i, 0, &xpos[(size_t)i * 784], 784);
            }
            TRY(tb.train_step(tb.ctx, xpos.data(), NULL, hp.batch, &hp, it, &st));
            it++;
            if (it == 5) t0 = ebm_now(), done = 0; /* warm-up */
            else done++;
            if (it > 5 && ebm_now() - t0 >= seconds) break;
            if (it % 500 == 0)
                printf("  it %llu loss %.4f E+ %.3f E- %.3f |g| %.3g\n", (unsigned long long)it, st.loss, st.e_pos,
                       st.e_neg, st.grad_norm);
        }
        its2[tf32] = done / (ebm_now() - t0);
        printf("training, batch 128, 60 steps/iteration%s: %.1f it/s (%ld iterations, %.1f s in all)\n",
               tf32 ? ", TF32 chains" : "", its2[tf32], done, ebm_now() - tstart);
        printf("  last: loss %.4f E+ %.3f E- %.3f |g| %.3g\n", st.loss, st.e_pos, st.e_neg, st.grad_norm);
        tb.destroy(tb.ctx);
        net_free(tn);
    }
    const double its = its2[0];
    net_free(n);
    if (have_data) dataset_free(&d);

    printf("\nkey=value\n");
    printf("device=%s\n", pr.name);
    printf("fma_tflops=%.2f\ncopy_gbs=%.0f\n", fma / 1e12, copy / 1e9);
    for (int bi = 0; bi < 3; bi++) printf("langevin_%d=%.0f\n", batches[bi], best[bi]);
    for (int bi = 0; bi < 3; bi++) printf("sample_%d=%.0f\n", batches[bi], e2e[bi]);
    printf("train_its=%.2f\n", its);
    for (int bi = 0; bi < 3; bi++) printf("langevin_tf32_%d=%.0f\n", batches[bi], best_tf32[bi]);
    for (int bi = 0; bi < 3; bi++) printf("sample_tf32_%d=%.0f\n", batches[bi], e2e_tf32[bi]);
    printf("train_its_tf32=%.2f\n", its2[1]);
    return 0;
}
