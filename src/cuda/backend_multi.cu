/* backend_multi.cu - data-parallel training on several GPUs of one host (backend.h,
 * backend_cuda_multi_create): one process, one host thread, one replica (replica.h) and one
 * NCCL communicator per GPU, made together by ncclCommInitAll.
 *
 * Why one process: the trainer, its data and its checkpoint stay exactly as on one GPU (one
 * file, one writer, resume unchanged), nothing is launched by hand, and one thread can keep
 * every GPU busy because an iteration is a handful of asynchronous launches per GPU.  The
 * process-per-GPU plan for several hosts is in docs/SCALING.md.
 *
 * One iteration on R GPUs (whole batch B positives, N chains; GPU r holds B/R and N/R):
 *   every GPU   replica_grads on its share; the random numbers are those of positives
 *               r*B/R.. and chains r*N/R.. of the whole batch (CuShard), so with no replay
 *               buffer R GPUs compute the one-GPU iteration, summed in another order
 *   NCCL        all-reduce (sum, in place) of the parameter gradients, one group call
 *   every GPU   replica_sums, then an all-reduce of the four energy sums (double)
 *   host        one synchronisation, the stats, the divergence check (any GPU)
 *   every GPU   the same Adam step on the same summed gradient: parameters stay identical,
 *               which multi_verify checks (trainer.c calls it every TRAIN_VERIFY_EVERY
 *               iterations and before each checkpoint)
 * With a replay buffer, GPU r keeps slots r*S/R .. (r+1)*S/R - 1 and its chains pick slots in
 * that shard only; the checkpoint holds the shards in order, as one buffer.
 * NVLink multicast (NVLS) stays off: NCCL_NVLS_ENABLE=0 is forced before NCCL starts. */
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "replica.h"

ebm_status backend_cuda_multi_create(net *host, const train_hparams *hp, int device, int gpus, train_backend *out) {
    if (gpus <= 1) return backend_cuda_create(host, hp, device, out);
    return backend_cuda_dp_create(host, hp, device, gpus, out);
}

#ifdef EBM_HAVE_NCCL
#include <nccl.h>

#define MULTI_MAX 16

#define NC_TRY(call)                                                                                         \
    do {                                                                                                     \
        const ncclResult_t r_ = (call);                                                                      \
        if (r_ != ncclSuccess)                                                                               \
            return ebm_fail(EBM_STATUS_IO, "NCCL: %s failed: %s (%s:%d)", #call, ncclGetErrorString(r_), __FILE__, \
                            __LINE__);                                                                       \
    } while (0)

typedef struct {
    int R, B, N, S;          /* GPUs; whole batch, chains and buffer */
    cuda_ctx *rep[MULTI_MAX];
    ncclComm_t comm[MULTI_MAX];
    cudaEvent_t ar0, ar1;    /* around the gradient all-reduce on GPU 0's stream */
    double ar_ms, step_ms;   /* summed over timed iterations */
    long timed;
} multi_ctx;

static void multi_free(multi_ctx *m) {
    if (!m) return;
    for (int r = 0; r < m->R; r++) {
        if (m->comm[r]) ncclCommDestroy(m->comm[r]);
        if (m->rep[r]) replica_free(m->rep[r]);
    }
    if (m->ar0) cudaEventDestroy(m->ar0);
    if (m->ar1) cudaEventDestroy(m->ar1);
    ebm_free(m);
}

static ebm_status allreduce_grads(multi_ctx *m) {
    const size_t np = replica_nparams(m->rep[0]);
    CU_TRY(cudaSetDevice(replica_device(m->rep[0])));
    CU_TRY(cudaEventRecord(m->ar0, replica_stream(m->rep[0])));
    NC_TRY(ncclGroupStart());
    for (int r = 0; r < m->R; r++) {
        float *g = replica_grads_buf(m->rep[r]);
        NC_TRY(ncclAllReduce(g, g, np, ncclFloat, ncclSum, m->comm[r], replica_stream(m->rep[r])));
    }
    NC_TRY(ncclGroupEnd());
    CU_TRY(cudaSetDevice(replica_device(m->rep[0])));
    CU_TRY(cudaEventRecord(m->ar1, replica_stream(m->rep[0])));
    return EBM_STATUS_OK;
}

static ebm_status allreduce_sums(multi_ctx *m) {
    NC_TRY(ncclGroupStart());
    for (int r = 0; r < m->R; r++) {
        double *s = replica_sums_buf(m->rep[r]); /* [0..3]: energy sums; [4] |g|^2 of the summed g */
        NC_TRY(ncclAllReduce(s, s, 4, ncclDouble, ncclSum, m->comm[r], replica_stream(m->rep[r])));
    }
    NC_TRY(ncclGroupEnd());
    return EBM_STATUS_OK;
}

static ebm_status multi_train_step(void *ctx, const float *x_pos, const int *y_pos, int B, const train_hparams *hp,
                                   uint64_t iter, train_step_stats *st) {
    multi_ctx *m = (multi_ctx *)ctx;
    EBM_ASSERT(B == m->B && hp->n_samples == m->N && hp->buffer_size == m->S);
    const int Bs = B / m->R, Ns = m->N / m->R;
    for (int r = 0; r < m->R; r++) {
        const CuShard sh = {r * Bs, r * Ns, m->N, 0}; /* replica_grads fills in n_marg */
        EBM_TRY(replica_grads(m->rep[r], x_pos + (size_t)r * Bs * 784, y_pos ? y_pos + (size_t)r * Bs : NULL, Bs, Ns,
                              &sh, B, hp, iter));
    }
    EBM_TRY(allreduce_grads(m));
    for (int r = 0; r < m->R; r++) EBM_TRY(replica_sums(m->rep[r], Bs, Ns));
    EBM_TRY(allreduce_sums(m));
    for (int r = 0; r < m->R; r++) EBM_TRY(replica_fetch(m->rep[r]));
    for (int r = 0; r < m->R; r++) EBM_TRY(replica_sync(m->rep[r]));
    /* any GPU's bad chain stops the run; the sums, hence the stats, are the same on all */
    for (int r = m->R - 1; r >= 0; r--) EBM_TRY(replica_read(m->rep[r], B, m->N, hp, st));
    float ms = 0;
    if (cudaEventElapsedTime(&ms, m->ar0, m->ar1) == cudaSuccess) m->ar_ms += ms, m->timed++;
    for (int r = 0; r < m->R; r++) EBM_TRY(replica_update(m->rep[r], hp, iter));
    return EBM_STATUS_OK;
}

static ebm_status multi_verify(void *ctx, uint64_t iter) {
    multi_ctx *m = (multi_ctx *)ctx;
    unsigned long long c0 = 0, c;
    EBM_TRY(replica_checksum(m->rep[0], &c0));
    for (int r = 1; r < m->R; r++) {
        EBM_TRY(replica_checksum(m->rep[r], &c));
        if (c != c0)
            return ebm_fail(EBM_STATUS_DIVERGED,
                            "data-parallel replicas disagree after iteration %llu: parameter checksum %016llx on GPU %d, "
                            "%016llx on GPU %d (a bug in ebm, not in your settings: please report it; the last "
                            "checkpoint is the last verified state)",
                            (unsigned long long)iter, c0, replica_device(m->rep[0]), c, replica_device(m->rep[r]));
    }
    return EBM_STATUS_OK;
}

static ebm_status multi_pull(void *ctx, net *host, float *buffer) {
    multi_ctx *m = (multi_ctx *)ctx;
    const size_t shard = (size_t)(m->S / m->R) * 784;
    for (int r = m->R - 1; r >= 0; r--) EBM_TRY(replica_pull(m->rep[r], host, buffer ? buffer + r * shard : NULL));
    return EBM_STATUS_OK;
}

static ebm_status multi_push(void *ctx, const net *host, const float *buffer) {
    multi_ctx *m = (multi_ctx *)ctx;
    const size_t shard = (size_t)(m->S / m->R) * 784;
    for (int r = 0; r < m->R; r++) EBM_TRY(replica_push(m->rep[r], host, buffer ? buffer + r * shard : NULL));
    return EBM_STATUS_OK;
}

static ebm_status multi_sample(void *ctx, float *x, const int *y, int n, int steps, const langevin_params *p,
                               langevin_stats *stats, langevin_snapshot_fn snap, void *ud, int every) {
    return replica_sample(((multi_ctx *)ctx)->rep[0], x, y, n, steps, p, stats, snap, ud, every);
}

static void multi_destroy(void *ctx) { multi_free((multi_ctx *)ctx); }

static ebm_status divisible(const char *what, int v, int gpus) {
    if (v % gpus == 0) return EBM_STATUS_OK;
    return ebm_fail(EBM_STATUS_BAD_ARG, "--gpus %d: %s %d does not split evenly over %d GPUs; use a multiple of %d", gpus,
                    what, v, gpus, gpus);
}

static ebm_status multi_create(multi_ctx *m, net *host, const train_hparams *hp, int device, int gpus) {
    int count = 0;
    EBM_TRY(replica_device_count(&count));
    if (gpus < 1 || gpus > MULTI_MAX) return ebm_fail(EBM_STATUS_BAD_ARG, "--gpus %d: between 1 and %d GPUs", gpus, MULTI_MAX);
    if (device < 0 || device + gpus > count)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--gpus %d from GPU %d: this machine has %d GPU%s (0..%d)", gpus, device, count,
                        count == 1 ? "" : "s", count - 1);
    EBM_TRY(divisible("--batch", hp->batch, gpus));
    EBM_TRY(divisible("--n-samples", hp->n_samples, gpus));
    EBM_TRY(divisible("--buffer", hp->buffer_size, gpus));
    if (hp->batch <= 0 || hp->n_samples <= 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--gpus %d is for training (batch and n_samples > 0)", gpus);
    m->B = hp->batch, m->N = hp->n_samples, m->S = hp->buffer_size;
    train_hparams hs = *hp;
    hs.batch /= gpus, hs.n_samples /= gpus, hs.buffer_size /= gpus;
    for (int r = 0; r < gpus; r++) {
        EBM_TRY(replica_create(host, &hs, device + r, &m->rep[r]));
        m->R = r + 1;
        EBM_TRY(replica_buffer_init(m->rep[r], r * hs.buffer_size, &hs));
    }
    /* NVLink multicast can take a shared host's GPUs out of service: never let NCCL use it */
    setenv("NCCL_NVLS_ENABLE", "0", 1);
    int devs[MULTI_MAX];
    for (int r = 0; r < gpus; r++) devs[r] = device + r;
    NC_TRY(ncclCommInitAll(m->comm, gpus, devs));
    CU_TRY(cudaSetDevice(device));
    CU_TRY(cudaEventCreate(&m->ar0));
    CU_TRY(cudaEventCreate(&m->ar1));
    for (int r = 0; r < gpus; r++) EBM_TRY(replica_sync(m->rep[r]));
    return multi_verify(m, 0);
}

ebm_status backend_cuda_dp_create(net *host, const train_hparams *hp, int device, int gpus, train_backend *out) {
    memset(out, 0, sizeof *out);
    multi_ctx *m = (multi_ctx *)ebm_alloc(sizeof *m);
    if (!m) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the multi-GPU backend");
    memset(m, 0, sizeof *m);
    const ebm_status s = multi_create(m, host, hp, device, gpus);
    if (s != EBM_STATUS_OK) {
        multi_free(m);
        return s;
    }
    out->name = "cuda-multi";
    out->ctx = m;
    out->train_step = multi_train_step;
    out->sample = multi_sample;
    out->pull = multi_pull;
    out->push = multi_push;
    out->destroy = multi_destroy;
    out->verify = multi_verify;
    return EBM_STATUS_OK;
}

double backend_cuda_multi_allreduce_ms(void *ctx) {
    const multi_ctx *m = (const multi_ctx *)ctx;
    return m->timed ? m->ar_ms / m->timed : 0;
}

#else /* built without NCCL */

ebm_status backend_cuda_dp_create(net *host, const train_hparams *hp, int device, int gpus, train_backend *out) {
    memset(out, 0, sizeof *out);
    return ebm_fail(EBM_STATUS_UNSUPPORTED,
                    "--gpus %d: this ebm was built without NCCL; install NCCL (nccl.h and libnccl) and rebuild with "
                    "make cuda, or train with --gpus 1",
                    gpus);
}

double backend_cuda_multi_allreduce_ms(void *ctx) { return 0; }

#endif
