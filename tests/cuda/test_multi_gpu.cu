/* test_multi_gpu.cu - data-parallel training (backend_multi.cu, replica.h) on the GPUs this
 * machine has (make test-cuda runs it).  Exits non-zero on any failure.
 *
 *   shards     (any GPU count) one iteration split into two shards on GPU 0: the two shard
 *              gradients summed equal the whole batch's gradient (normwise 1e-5), the
 *              energy sums add up, and replay-buffer shards start as slots of the whole
 *              buffer (bit-identical)
 *   checksum   replica checksums: equal for equal parameters, changed by one flipped bit
 *   nccl       the NCCL backend on R GPUs (R = all, at most 8; with one GPU, NCCL on one)
 *              against the one-GPU backend, same seed and same whole batch, 20 iterations:
 *              R = 1 bit-identical; R > 1 the loss curve within 1e-3 relative, parameters
 *              normwise within 1e-3, the replicas' checksums equal; a checkpoint's
 *              pull/push round trip with buffer shards; --gpus beyond the machine refused
 *   --bench    training it/s at 128 positives and 128 chains per GPU (60 Langevin steps) on 1
 *              and R GPUs, the scaling (R * it/s(R) / it/s(1)) and the all-reduce time
 *
 * Tolerance of R > 1: the GPUs sum the gradient in another order than one GPU does, and
 * Adam with beta1 = 0 turns a rounding-level gradient into a step of +-lr, so the runs drift
 * apart by rounding, not by a different computation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vector>

#include "cuda/backend_cuda.h"
#include "cuda/replica.h"

static int failures = 0;

#include "cuda_check.h"

static double rel_err(const float *a, const float *b, size_t n) {
    double d2 = 0, b2 = 0;
    for (size_t i = 0; i < n; i++) d2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), b2 += (double)b[i] * b[i];
    return sqrt(d2 / (b2 > 0 ? b2 : 1));
}

static train_hparams train_hp(int B, int N, int S, int steps, bool cond) {
    train_hparams hp;
    memset(&hp, 0, sizeof hp);
    hp.batch = B, hp.n_samples = N, hp.steps = steps;
    hp.lv.eps = 10, hp.lv.sigma = 0.005f, hp.lv.grad_clip = 0.03f, hp.lv.lo = -1, hp.lv.hi = 1, hp.lv.seed = 77;
    hp.alpha = 0.1f, hp.lr = 1e-4f, hp.beta1 = 0.0f, hp.beta2 = 0.999f, hp.adam_eps = 1e-8f;
    hp.data_noise = 0.005f, hp.buffer_size = S, hp.reinit = 0.05f, hp.conditional = cond;
    return hp;
}

template <class T>
static std::vector<T> from_device(const T *d, size_t n) {
    std::vector<T> h(n);
    cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost);
    return h;
}

/* One iteration as one whole batch and as two shards, all on GPU 0. */
static void test_shards(bool cond) {
    printf("shards of one iteration on GPU 0 (%s)\n", cond ? "cnn-small-cond" : "cnn-small");
    const char *spec = cond ? "cnn-small-cond" : "cnn-small";
    const int B = 8, N = 6, R = 2;
    net *n = NULL;
    OK(net_create(&n, spec, 5));
    const train_hparams hp = train_hp(B, N, 0, 8, cond);
    train_hparams hs = train_hp(B / R, N / R, 0, 8, cond);
    cuda_ctx *whole = NULL, *part[R] = {NULL, NULL};
    OK(replica_create(n, &hp, 0, &whole));
    for (int r = 0; r < R; r++) OK(replica_create(n, &hs, 0, &part[r]));
    std::vector<float> x = images(B, 3, 0.9f);
    std::vector<int> y(B);
    for (int i = 0; i < B; i++) y[i] = (3 * i + 1) % 10;
    const uint64_t it = 5;
    OK(replica_grads(whole, x.data(), cond ? y.data() : NULL, B, N, NULL, B, &hp, it));
    OK(replica_sums(whole, B, N));
    OK(replica_sync(whole));
    const size_t np = replica_nparams(whole);
    std::vector<float> g = from_device(replica_grads_buf(whole), np), gsum(np, 0.0f);
    std::vector<double> s = from_device(replica_sums_buf(whole), 5), ssum(4, 0.0);
    for (int r = 0; r < R; r++) {
        const CuShard sh = {r * B / R, r * N / R, N, 0};
        OK(replica_grads(part[r], x.data() + (size_t)r * (B / R) * 784, cond ? y.data() + r * (B / R) : NULL, B / R, N / R,
                         &sh, B, &hp, it));
        OK(replica_sums(part[r], B / R, N / R));
        OK(replica_sync(part[r]));
        std::vector<float> gr = from_device(replica_grads_buf(part[r]), np);
        std::vector<double> sr = from_device(replica_sums_buf(part[r]), 5);
        for (size_t i = 0; i < np; i++) gsum[i] += gr[i];
        for (int k = 0; k < 4; k++) ssum[k] += sr[k];
    }
    const double e = rel_err(gsum.data(), g.data(), np);
    printf("  sum of 2 shard gradients vs the whole batch's: normwise rel %.2e %s\n", e, e <= 1e-5 ? "ok" : "FAIL");
    EXPECT(e <= 1e-5, "shard gradients do not add up to the whole gradient (%.3g)", e);
    for (int k = 0; k < 4; k++)
        EXPECT(fabs(ssum[k] - s[k]) <= 1e-5 * fabs(s[k]) + 1e-9, "energy sum %d: shards %.9g, whole %.9g", k, ssum[k], s[k]);
    printf("  energy sums: shards %.7g %.7g %.7g %.7g, whole %.7g %.7g %.7g %.7g\n", ssum[0], ssum[1], ssum[2], ssum[3],
           s[0], s[1], s[2], s[3]);
    replica_free(whole);
    for (int r = 0; r < R; r++) replica_free(part[r]);

    /* replay-buffer shards: slot q of shard r is slot r*S/R + q of the whole buffer */
    const int S = 10;
    train_hparams hb = train_hp(B, N, S, 2, cond), hbs = train_hp(B / R, N / R, S / R, 2, cond);
    OK(replica_create(n, &hb, 0, &whole));
    std::vector<float> wb((size_t)S * 784), sb((size_t)S * 784);
    OK(replica_pull(whole, n, wb.data()));
    for (int r = 0; r < R; r++) {
        OK(replica_create(n, &hbs, 0, &part[r]));
        OK(replica_buffer_init(part[r], r * (S / R), &hbs));
        OK(replica_pull(part[r], n, sb.data() + (size_t)r * (S / R) * 784));
    }
    EXPECT(memcmp(wb.data(), sb.data(), wb.size() * sizeof(float)) == 0, "buffer shards are not slots of the whole buffer");
    printf("  buffer shards = slots of the whole buffer: %s\n",
           memcmp(wb.data(), sb.data(), wb.size() * sizeof(float)) == 0 ? "ok" : "FAIL");
    replica_free(whole);
    for (int r = 0; r < R; r++) replica_free(part[r]);
    net_free(n);
}

static void test_checksum(void) {
    printf("replica checksums\n");
    net *n = NULL;
    OK(net_create(&n, "cnn-small", 9));
    const train_hparams hp = train_hp(0, 0, 0, 0, false);
    cuda_ctx *a = NULL, *b = NULL;
    OK(replica_create(n, &hp, 0, &a));
    OK(replica_create(n, &hp, 0, &b));
    unsigned long long ca, cb, cc;
    OK(replica_checksum(a, &ca));
    OK(replica_checksum(b, &cb));
    EXPECT(ca == cb, "equal parameters, checksums %016llx and %016llx", ca, cb);
    uint32_t bits;
    memcpy(&bits, &n->params[1234], 4);
    bits ^= 1u; /* the lowest mantissa bit of one weight */
    memcpy(&n->params[1234], &bits, 4);
    OK(replica_push(b, n, NULL));
    OK(replica_checksum(b, &cc));
    EXPECT(cc != ca, "one flipped bit left the checksum at %016llx", cc);
    printf("  equal: %016llx = %016llx; one bit flipped: %016llx %s\n", ca, cb, cc, ca == cb && cc != ca ? "ok" : "FAIL");
    replica_free(a);
    replica_free(b);
    net_free(n);
}

static void test_nccl(int R, int S) {
    printf("NCCL backend on %d GPU%s vs one GPU, 20 iterations, buffer %d\n", R, R == 1 ? "" : "s", S);
    net *a = NULL, *b = NULL;
    OK(net_create(&a, "cnn-small", 41));
    OK(net_create(&b, "cnn-small", 41));
    const int B = 16 * R, N = 16 * R, iters = 20;
    train_hparams hp = train_hp(B, N, S * R, 10, false);
    train_backend one, dp;
    OK(backend_cuda_create(a, &hp, 0, &one));
    OK(backend_cuda_dp_create(b, &hp, 0, R, &dp));
    double worst = 0;
    bool identical = true;
    for (int it = 0; it < iters; it++) {
        std::vector<float> xp = images(B, 200 + it, 0.9f);
        train_step_stats s1, s2;
        OK(one.train_step(one.ctx, xp.data(), NULL, B, &hp, it, &s1));
        OK(dp.train_step(dp.ctx, xp.data(), NULL, B, &hp, it, &s2));
        const double d = fabs((double)s2.loss - s1.loss) / (fabs((double)s1.loss) + 1e-3);
        worst = fmax(worst, d);
        identical = identical && memcmp(&s1, &s2, sizeof s1) == 0;
        if (it % 5 == 0 || it == iters - 1)
            printf("  it %2d: loss %.7g (one GPU %.7g)  E+ %.6g (%.6g)  E- %.6g (%.6g)\n", it, s2.loss, s1.loss, s2.e_pos,
                   s1.e_pos, s2.e_neg, s1.e_neg);
    }
    OK(dp.verify(dp.ctx, iters));
    std::vector<float> pa, pb, buf((size_t)hp.buffer_size * 784 + 1);
    OK(one.pull(one.ctx, a, NULL));
    OK(dp.pull(dp.ctx, b, buf.data()));
    pa.assign(a->params, a->params + a->nparams);
    pb.assign(b->params, b->params + b->nparams);
    const double pe = rel_err(pb.data(), pa.data(), pa.size());
    if (S == 0 && R == 1) {
        EXPECT(identical && pe == 0, "NCCL on one GPU is not bit-identical to the one-GPU backend (params rel %.3g)", pe);
        printf("  one GPU through NCCL: stats and parameters bit-identical %s\n", identical && pe == 0 ? "ok" : "FAIL");
    } else if (S == 0) {
        EXPECT(worst <= 1e-3, "loss curves differ by %.3g relative", worst);
        EXPECT(pe <= 1e-3, "parameters differ by %.3g normwise", pe);
        printf("  loss curve: worst relative difference %.2e; parameters normwise %.2e %s\n", worst, pe,
               worst <= 1e-3 && pe <= 1e-3 ? "ok" : "FAIL");
    }
    /* a checkpoint's round trip: pull (shards in order) then push, then pull again */
    std::vector<float> buf2(buf.size());
    OK(dp.push(dp.ctx, b, buf.data()));
    OK(dp.pull(dp.ctx, b, buf2.data()));
    EXPECT(memcmp(buf.data(), buf2.data(), (size_t)hp.buffer_size * 784 * 4) == 0, "buffer changed in push/pull");
    EXPECT(memcmp(pb.data(), b->params, pb.size() * 4) == 0, "parameters changed in push/pull");
    OK(dp.verify(dp.ctx, iters));
    printf("  checksums agree across GPUs; push/pull round trip exact\n");
    dp.destroy(dp.ctx);
    one.destroy(one.ctx);
    net_free(a);
    net_free(b);
}

static void test_refusals(int count) {
    printf("refusals\n");
    net *n = NULL;
    OK(net_create(&n, "cnn-small", 1));
    train_backend be;
    train_hparams hp = train_hp(16, 16, 0, 2, false);
    ebm_status s = backend_cuda_multi_create(n, &hp, 0, count + 1, &be);
    printf("  --gpus %d: %s: %s\n", count + 1, ebm_status_name(s), ebm_last_error());
    EXPECT(s == EBM_STATUS_BAD_ARG && strstr(ebm_last_error(), "this machine has"), "too many GPUs not refused");
    if (count >= 2) {
        hp.batch = 15;
        s = backend_cuda_multi_create(n, &hp, 0, 2, &be);
        printf("  --batch 15 on 2 GPUs: %s: %s\n", ebm_status_name(s), ebm_last_error());
        EXPECT(s == EBM_STATUS_BAD_ARG && strstr(ebm_last_error(), "split evenly"), "uneven batch not refused");
    }
    net_free(n);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* it/s of R GPUs at 128 positives + 128 chains per GPU; R = 0: the plain one-GPU backend. */
static double bench_its(int R, double *ar_ms) {
    const int G = R ? R : 1, B = 128 * G, warm = 20, iters = 200;
    net *n = NULL;
    if (net_create(&n, "cnn-small", 3) != EBM_STATUS_OK) return 0;
    train_hparams hp = train_hp(B, B, 0, 60, false);
    train_backend be;
    ebm_status s = R ? backend_cuda_dp_create(n, &hp, 0, R, &be) : backend_cuda_create(n, &hp, 0, &be);
    if (s != EBM_STATUS_OK) {
        printf("  FAIL: %s\n", ebm_last_error());
        failures++;
        net_free(n);
        return 0;
    }
    std::vector<float> xp = images(B, 7, 0.9f);
    train_step_stats st;
    double t0 = 0;
    for (int it = 0; it < warm + iters; it++) {
        if (it == warm) t0 = now();
        if (be.train_step(be.ctx, xp.data(), NULL, B, &hp, it, &st) != EBM_STATUS_OK) {
            printf("  FAIL: %s\n", ebm_last_error());
            failures++;
            break;
        }
    }
    const double its = iters / (now() - t0);
    if (ar_ms) *ar_ms = R ? backend_cuda_multi_allreduce_ms(be.ctx) : 0;
    be.destroy(be.ctx);
    net_free(n);
    return its;
}

int main(int argc, char **argv) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        printf("test_multi_gpu: no CUDA GPU here (run on the GPU machine)\n");
        return 1;
    }
    const int R = count > 8 ? 8 : count;
    printf("test_multi_gpu: %d GPU%s visible\n", count, count == 1 ? "" : "s");
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        double ar = 0;
        const double one = bench_its(0, NULL), dp1 = bench_its(1, &ar);
        printf("bench: per GPU 128 positives + 128 chains, 60 Langevin steps (cnn-small)\n");
        printf("  1 GPU (plain backend): %.1f it/s, %.3f ms per iteration\n", one, 1e3 / one);
        printf("  1 GPU through NCCL:    %.1f it/s, all-reduce %.3f ms per iteration\n", dp1, ar);
        printf("multi_its_1=%.2f\nmulti_its_1_nccl=%.2f\n", one, dp1);
        if (R > 1) {
            const double its = bench_its(R, &ar);
            printf("  %d GPUs:               %.1f it/s (x%d images per iteration): scaling %.2fx of %d, all-reduce %.3f ms of "
                   "%.3f ms per iteration\n",
                   R, its, R, R * its / one, R, ar, 1e3 / its);
            printf("multi_its_%d=%.2f\nmulti_scaling_%d=%.3f\nmulti_allreduce_ms_%d=%.4f\n", R, its, R, R * its / one, R, ar);
        }
        return failures ? 1 : 0;
    }
    test_shards(false);
    test_shards(true);
    test_checksum();
    test_nccl(1, 0);
    test_nccl(1, 8);
    if (R > 1) {
        test_nccl(R, 0);
        test_nccl(R, 8);
    } else {
        printf("only one GPU: the %s run on several GPUs is not tested here\n", "NCCL");
    }
    test_refusals(count);
    printf("test_multi_gpu: %s (%d failure%s)\n", failures ? "FAILED" : "passed", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
