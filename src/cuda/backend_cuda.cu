/* backend_cuda.cu - the CUDA backend (backend.h): parameters, Adam moments, replay buffer
 * and every per-iteration tensor live on the GPU; an iteration moves the positive batch in
 * and five numbers out.  The arithmetic is the CPU reference's (backend_cpu.c), in fused
 * kernels (chain_kernels.cu) and small ones (train_kernels.cu).
 *
 * One training iteration (trainer.h's stages, same random numbers):
 *   k_batch     positives with noise, chain starts from the buffer or noise
 *   k_chains    all Langevin steps of the negatives in one launch
 *   writeback   chains back into their buffer slots
 *   k_train     forward + loss-weighted backward of B + N images, activations dumped
 *   k_wgrad     parameter gradients, one GEMM per layer (fixed-order sums)
 *   k_sums      loss terms and |grad|^2 in double -> host (the one synchronisation)
 *   k_adam, k_prep   the update and the kernels' weight layout */
#include <string.h>

#include "backend_cuda.h"
#include "kernels.h"
#include "replica.h"

extern "C" {
#include "../train/adam.h"
}

ebm_status cu_fail(cudaError_t e, const char *what, const char *file, int line) {
    const ebm_status s = e == cudaErrorMemoryAllocation                 ? EBM_STATUS_NOMEM
                         : (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
                            e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction ||
                            e == cudaErrorInvalidDevice)                ? EBM_STATUS_UNSUPPORTED
                                                                        : EBM_STATUS_IO;
    const char *hint = s == EBM_STATUS_NOMEM         ? "; lower --batch or the buffer size, or free the GPU"
                       : s == EBM_STATUS_UNSUPPORTED ? "; check the driver and GPU, or use --device cpu"
                                                     : "";
    return ebm_fail(s, "CUDA: %s failed: %s (%s:%d)%s", what, cudaGetErrorString(e), file, line, hint);
}

struct cuda_ctx {
    int dev, nout, S, B_cap, N_cap, shape; /* shape: cu_chains's (CU_PICK[_TF32] or an index) */
    unsigned long long *csum;  /* replica checksum (device) */
    cudaStream_t st;
    size_t np;
    wlayout_src src;
    int32_t *map;
    float *params, *grads, *m, *v, *wts;
    /* training */
    float *buf, *xraw, *x, *E, *part;
    int *win, *slots, *y;
    float *dA[6], *dG[6];
    double *sums;
    unsigned long long *flags; /* [0] bad, [1] accepted */
    double *h_sums;            /* pinned: 5 sums + 2 flags */
    /* sampling scratch, grown on demand */
    float *sx, *sE, *sg;
    int *sy, s_cap;
};

static void ctx_free(cuda_ctx *c) {
    if (!c) return;
    void *dev_ptrs[] = {c->map, c->params, c->grads, c->m, c->v, c->wts, c->buf, c->xraw, c->x, c->E, c->part, c->win,
                        c->slots, c->y, c->sums, c->flags, c->sx, c->sE, c->sg, c->sy, c->csum};
    for (size_t i = 0; i < sizeof dev_ptrs / sizeof dev_ptrs[0]; i++) cudaFree(dev_ptrs[i]);
    for (int l = 0; l < 6; l++) cudaFree(c->dA[l]), cudaFree(c->dG[l]);
    if (c->h_sums) cudaFreeHost(c->h_sums);
    if (c->st) cudaStreamDestroy(c->st);
    ebm_free(c);
}

template <class T>
static ebm_status dalloc(T **p, size_t count) {
    CU_TRY(cudaMalloc((void **)p, sizeof(T) * (count ? count : 1)));
    return EBM_STATUS_OK;
}

/* The CUDA kernels are compiled for cnn-small and cnn-small-cond only. */
static ebm_status check_net(const net *n, wlayout_src *src) {
    char a[NET_SPEC_MAX], b[NET_SPEC_MAX];
    EBM_TRY(net_spec_expand("cnn-small", a, sizeof a));
    EBM_TRY(net_spec_expand("cnn-small-cond", b, sizeof b));
    if (strcmp(n->spec, a) != 0 && strcmp(n->spec, b) != 0)
        return ebm_fail(EBM_STATUS_UNSUPPORTED,
                        "--device cuda runs the cnn-small and cnn-small-cond networks only (this model is '%s'); "
                        "use --device cpu for other architectures",
                        n->spec);
    int k = 0;
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (L->w_len == 0) continue;
        EBM_ASSERT(k < 6);
        src->w_off[k] = L->w_off, src->b_off[k] = L->b_off, k++;
    }
    EBM_ASSERT(k == 6);
    src->nout = n->out_dim;
    return EBM_STATUS_OK;
}

static ebm_status upload(cuda_ctx *c, const net *host) {
    const size_t bytes = sizeof(float) * c->np;
    CU_TRY(cudaMemcpyAsync(c->params, host->params, bytes, cudaMemcpyHostToDevice, c->st));
    CU_TRY(cudaMemcpyAsync(c->m, host->adam_m, bytes, cudaMemcpyHostToDevice, c->st));
    CU_TRY(cudaMemcpyAsync(c->v, host->adam_v, bytes, cudaMemcpyHostToDevice, c->st));
    EBM_TRY(cu_prep_weights(c->wts, c->params, c->map, c->st));
    CU_TRY(cudaStreamSynchronize(c->st));
    return EBM_STATUS_OK;
}

static ebm_status ensure_sample(cuda_ctx *c, int n) {
    if (n <= c->s_cap) return EBM_STATUS_OK;
    cudaFree(c->sx), cudaFree(c->sE), cudaFree(c->sg), cudaFree(c->sy);
    c->sx = c->sE = c->sg = NULL, c->sy = NULL, c->s_cap = 0;
    EBM_TRY(dalloc(&c->sx, (size_t)n * 784));
    EBM_TRY(dalloc(&c->sE, (size_t)n));
    EBM_TRY(dalloc(&c->sg, (size_t)n * 784));
    EBM_TRY(dalloc(&c->sy, (size_t)n));
    c->s_cap = n;
    return EBM_STATUS_OK;
}

/* Non-finite energies or gradients flagged by the chain kernel, as langevin.c words it. */
static ebm_status diverged(unsigned long long bad, int t0, int steps) {
    const int step = (int)(bad >> 32) + t0;
    return ebm_fail(EBM_STATUS_DIVERGED,
                    "Langevin diverged: non-finite energy or gradient at step %d of %d, chain %u%s; "
                    "lower --eps or check the model",
                    step, steps, (unsigned)(bad & 0xffffffffu), step == 0 ? " (the starting point)" : "");
}

/* langevin.c's check_params, same messages. */
static ebm_status check_lv(int n, int steps, const langevin_params *p, float sigma) {
    if (n < 1) return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: need at least one chain of at least one value (got %d chains of 784)", n);
    if (steps < 0) return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: --steps must be >= 0 (got %d)", steps);
    if (!(p->eps >= 0) || !isfinite(p->eps))
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: --eps must be finite and >= 0 (got %g); try 10 with a clipped gradient",
                        (double)p->eps);
    if (!(sigma >= 0) || !isfinite(sigma))
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: noise sigma must be finite (got %g); use a negative value for sqrt(2 eps)",
                        (double)p->sigma);
    if (p->mala && sigma == 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: MALA needs noise sigma > 0 (its proposal density is undefined without noise)");
    if (isnan(p->grad_clip))
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: gradient clip is NaN; use a value <= 0 to disable clipping");
    if (isnan(p->lo) || isnan(p->hi) || p->lo > p->hi)
        return ebm_fail(EBM_STATUS_BAD_ARG, "langevin: bad data range [%g, %g]; need lo <= hi", (double)p->lo, (double)p->hi);
    return EBM_STATUS_OK;
}

static ebm_status check_labels(const cuda_ctx *c, const int *y, int n) {
    if (!y) return EBM_STATUS_OK;
    for (int i = 0; i < n; i++)
        if (y[i] < -1 || y[i] >= c->nout)
            return ebm_fail(EBM_STATUS_BAD_ARG, "energy: label %d of image %d outside 0..%d (or -1: no label)", y[i], i,
                            c->nout - 1);
    return EBM_STATUS_OK;
}

/* One launch of `steps` steps from the current device points; bad flag checked. */
static ebm_status run_chains(cuda_ctx *c, int n, bool labels, int steps, int final_eval, const langevin_params *p,
                             float sigma, int t0, int total, unsigned long long *accepted) {
    CU_TRY(cudaMemsetAsync(c->flags, 0xff, sizeof(unsigned long long), c->st));
    CU_TRY(cudaMemsetAsync(c->flags + 1, 0, sizeof(unsigned long long), c->st));
    LvArgs a;
    memset(&a, 0, sizeof a);
    a.x = c->sx, a.E = c->sE, a.y = labels ? c->sy : NULL, a.W = c->wts;
    a.n = n, a.steps = steps, a.final_eval = final_eval, a.mala = p->mala != 0;
    a.eps = p->eps, a.sigma = sigma, a.clip = p->grad_clip, a.lo = p->lo, a.hi = p->hi;
    a.seed = p->seed, a.chain0 = p->chain0, a.step0 = p->step0 + (uint32_t)t0;
    a.bad = c->flags, a.accepted = c->flags + 1;
    EBM_TRY(cu_chains(&a, c->nout, a.mala ? -1 : c->shape, c->st));
    unsigned long long fl[2];
    CU_TRY(cudaMemcpyAsync(fl, c->flags, sizeof fl, cudaMemcpyDeviceToHost, c->st));
    CU_TRY(cudaStreamSynchronize(c->st));
    if (fl[0] != ~0ull) return diverged(fl[0], t0, total);
    *accepted += fl[1];
    return EBM_STATUS_OK;
}

static ebm_status cuda_sample(void *ctx, float *x, const int *y, int n, int steps, const langevin_params *p,
                              langevin_stats *stats, langevin_snapshot_fn snap, void *ud, int every) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    EBM_ASSERT(x && p);
    const float sigma = langevin_sigma(p);
    EBM_TRY(check_lv(n, steps, p, sigma));
    EBM_TRY(check_labels(c, y, n));
    if (stats) memset(stats, 0, sizeof *stats);
    const int final_eval = p->mala || stats || snap;
    if (steps == 0 && !final_eval) return EBM_STATUS_OK;
    CU_TRY(cudaSetDevice(c->dev));
    EBM_TRY(ensure_sample(c, n));
    CU_TRY(cudaMemcpyAsync(c->sx, x, sizeof(float) * (size_t)n * 784, cudaMemcpyHostToDevice, c->st));
    if (y) CU_TRY(cudaMemcpyAsync(c->sy, y, sizeof(int) * (size_t)n, cudaMemcpyHostToDevice, c->st));
    float *E = NULL;
    if (snap || stats) {
        E = (float *)ebm_alloc(sizeof(float) * (size_t)n);
        if (!E) return ebm_fail(EBM_STATUS_NOMEM, "langevin: out of memory for %d energies", n);
    }
    unsigned long long accepted = 0;
    ebm_status s = EBM_STATUS_OK;
    if (!snap) {
        s = run_chains(c, n, y != NULL, steps, final_eval, p, sigma, 0, steps, &accepted);
        if (s == EBM_STATUS_OK) {
            CU_TRY(cudaMemcpy(x, c->sx, sizeof(float) * (size_t)n * 784, cudaMemcpyDeviceToHost));
            if (E) CU_TRY(cudaMemcpy(E, c->sE, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost));
        }
    } else {
        /* one launch per stretch between snapshot steps (langevin_is_snapshot_step); each
         * launch evaluates at its start, the very point the last one ended on, so the split
         * changes nothing but one extra evaluation per stretch */
        int t = 0, t1 = 0; /* this stretch runs from step t to step t1 */
        for (;;) {
            s = run_chains(c, n, y != NULL, t1 - t, final_eval, p, sigma, t, steps, &accepted);
            if (s != EBM_STATUS_OK) break;
            CU_TRY(cudaMemcpy(x, c->sx, sizeof(float) * (size_t)n * 784, cudaMemcpyDeviceToHost));
            CU_TRY(cudaMemcpy(E, c->sE, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost));
            s = snap(ud, t1, x, E, n, 784);
            if (s != EBM_STATUS_OK || t1 == steps) break;
            t = t1;
            t1 = every > 0 ? (t / every + 1) * every : steps;
            if (t1 > steps) t1 = steps;
        }
    }
    if (s == EBM_STATUS_OK && stats) {
        stats->proposed = (long)n * steps;
        stats->accepted = p->mala ? (long)accepted : (long)n * steps;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += E[i];
        stats->mean_energy = sum / n;
    }
    ebm_free(E);
    return s;
}

ebm_status backend_cuda_energy(void *ctx, const float *x, int n, const int *y, float *E, float *dEdx) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    if (n <= 0) return EBM_STATUS_OK;
    EBM_TRY(check_labels(c, y, n));
    CU_TRY(cudaSetDevice(c->dev));
    EBM_TRY(ensure_sample(c, n));
    CU_TRY(cudaMemcpyAsync(c->sx, x, sizeof(float) * (size_t)n * 784, cudaMemcpyHostToDevice, c->st));
    if (y) CU_TRY(cudaMemcpyAsync(c->sy, y, sizeof(int) * (size_t)n, cudaMemcpyHostToDevice, c->st));
    CU_TRY(cudaMemsetAsync(c->flags, 0xff, sizeof(unsigned long long), c->st));
    LvArgs a;
    memset(&a, 0, sizeof a);
    a.x = c->sx, a.E = c->sE, a.dEdx = dEdx ? c->sg : NULL, a.y = y ? c->sy : NULL, a.W = c->wts;
    a.n = n, a.steps = 0, a.final_eval = 1, a.eps = 0, a.sigma = 0, a.lo = -INFINITY, a.hi = INFINITY;
    a.bad = c->flags;
    EBM_TRY(cu_chains(&a, c->nout, c->shape, c->st));
    CU_TRY(cudaMemcpyAsync(E, c->sE, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost, c->st));
    if (dEdx) CU_TRY(cudaMemcpyAsync(dEdx, c->sg, sizeof(float) * (size_t)n * 784, cudaMemcpyDeviceToHost, c->st));
    CU_TRY(cudaStreamSynchronize(c->st));
    return EBM_STATUS_OK;
}

void backend_cuda_set_shape(void *ctx, int shape) { ((cuda_ctx *)ctx)->shape = shape; }

const float *backend_cuda_weights(void *ctx) { return ((cuda_ctx *)ctx)->wts; }

/* ---- one training iteration, in stages (replica.h) -------------------------------------- */

ebm_status replica_grads(cuda_ctx *c, const float *x_pos, const int *y_pos, int B, int N, const CuShard *sh,
                         int B_all, const train_hparams *hp, uint64_t iter) {
    EBM_ASSERT(B > 0 && B <= c->B_cap && N > 0 && N <= c->N_cap);
    const bool cond = hp->conditional != 0;
    if (cond) EBM_ASSERT(y_pos && c->nout > 1);
    CU_TRY(cudaSetDevice(c->dev));
    const uint64_t s = hp->lv.seed;
    CuShard shm = {0, 0, N, 0}; /* the whole batch, unless sh says which share */
    if (sh) shm = *sh;
    const int N_all = shm.n_all, neg0 = shm.neg0;
    shm.n_marg = cond ? train_marginal_count(hp->marginal_chains, N_all) : 0;
    /* 1-2. positives and chain starts */
    CU_TRY(cudaMemcpyAsync(c->xraw, x_pos, sizeof(float) * (size_t)B * 784, cudaMemcpyHostToDevice, c->st));
    if (cond) CU_TRY(cudaMemcpyAsync(c->y, y_pos, sizeof(int) * (size_t)B, cudaMemcpyHostToDevice, c->st));
    CuClasses cls;
    cls.n = train_chain_classes(hp->classes, c->nout, cls.c);
    EBM_TRY(cu_batch(c->x, c->slots, c->y + B, c->xraw, B, N, c->buf, c->S, &cls, s, iter, hp->data_noise, hp->reinit,
                     hp->lv.lo, hp->lv.hi, &shm, c->st));
    /* 3. Langevin on the negatives */
    CU_TRY(cudaMemsetAsync(c->flags, 0xff, sizeof(unsigned long long), c->st));
    if (hp->steps > 0) {
        langevin_params lv = hp->lv;
        lv.mala = 0;
        LvArgs a;
        memset(&a, 0, sizeof a);
        a.x = c->x + (size_t)B * 784, a.y = cond ? c->y + B : NULL, a.W = c->wts;
        a.n = N, a.steps = hp->steps, a.final_eval = 0, a.mala = 0;
        a.eps = lv.eps, a.sigma = langevin_sigma(&lv), a.clip = lv.grad_clip, a.lo = lv.lo, a.hi = lv.hi;
        a.seed = s, a.chain0 = (uint32_t)(iter * (uint64_t)N_all + (uint64_t)neg0), a.step0 = 0, a.bad = c->flags;
        EBM_TRY(cu_chains(&a, c->nout, c->shape, c->st));
    }
    /* 4. write-back */
    if (c->S > 0) EBM_TRY(cu_writeback(c->buf, c->win, c->slots, c->x + (size_t)B * 784, N, c->st));
    /* 5. loss and parameter gradient, normalised by the whole batch */
    TrArgs t;
    memset(&t, 0, sizeof t);
    t.x = c->x, t.y = cond ? c->y : NULL, t.W = c->wts, t.npos = B, t.nneg = N, t.alpha = hp->alpha, t.E = c->E;
    t.npos_all = B_all, t.nneg_all = N_all;
    for (int l = 0; l < 6; l++) t.dA[l] = c->dA[l], t.dG[l] = c->dG[l];
    EBM_TRY(cu_train_pass(&t, c->nout, c->st));
    EBM_TRY(cu_wgrad(c->grads, c->part, c->dA, c->dG, B + N, c->nout, c->src.w_off, c->src.b_off, c->st));
    return EBM_STATUS_OK;
}

ebm_status replica_sums(cuda_ctx *c, int B, int N) {
    CU_TRY(cudaSetDevice(c->dev));
    return cu_sums(c->sums, c->E, B, N, c->grads, c->np, c->st);
}

ebm_status replica_fetch(cuda_ctx *c) {
    CU_TRY(cudaSetDevice(c->dev));
    CU_TRY(cudaMemcpyAsync(c->h_sums, c->sums, 5 * sizeof(double), cudaMemcpyDeviceToHost, c->st));
    CU_TRY(cudaMemcpyAsync(c->h_sums + 5, c->flags, sizeof(unsigned long long), cudaMemcpyDeviceToHost, c->st));
    return EBM_STATUS_OK;
}

ebm_status replica_read(cuda_ctx *c, int B_all, int N_all, const train_hparams *hp, train_step_stats *st) {
    unsigned long long bad;
    memcpy(&bad, c->h_sums + 5, sizeof bad);
    if (bad != ~0ull) return diverged(bad, 0, hp->steps);
    const double *h = c->h_sums;
    const double e_pos = h[0] / B_all, e_neg = h[2] / N_all;
    const double loss = e_pos - e_neg + hp->alpha * (h[1] / B_all + h[3] / N_all);
    st->loss = (float)loss;
    st->e_pos = (float)e_pos;
    st->e_neg = (float)e_neg;
    st->grad_norm = (float)sqrt(h[4]);
    if (!isfinite(loss) || !isfinite(h[4]))
        return ebm_fail(EBM_STATUS_DIVERGED, "loss %g, gradient norm %g (not finite)", loss, sqrt(h[4]));
    return EBM_STATUS_OK;
}

ebm_status replica_update(cuda_ctx *c, const train_hparams *hp, uint64_t iter) {
    CU_TRY(cudaSetDevice(c->dev));
    adam_params ap = {hp->lr, hp->beta1, hp->beta2, hp->adam_eps};
    float step_size, sqrt_bc2;
    adam_factors(&ap, iter + 1, &step_size, &sqrt_bc2);
    EBM_TRY(cu_adam(c->params, c->grads, c->m, c->v, c->np, step_size, ap.beta1, ap.beta2, ap.eps, sqrt_bc2, c->st));
    EBM_TRY(cu_prep_weights(c->wts, c->params, c->map, c->st));
    return EBM_STATUS_OK;
}

ebm_status replica_checksum(cuda_ctx *c, unsigned long long *out) {
    CU_TRY(cudaSetDevice(c->dev));
    EBM_TRY(cu_checksum(c->csum, c->params, c->np, c->st));
    CU_TRY(cudaMemcpyAsync(out, c->csum, sizeof *out, cudaMemcpyDeviceToHost, c->st));
    CU_TRY(cudaStreamSynchronize(c->st));
    return EBM_STATUS_OK;
}

ebm_status replica_sync(cuda_ctx *c) {
    CU_TRY(cudaSetDevice(c->dev));
    CU_TRY(cudaStreamSynchronize(c->st));
    return EBM_STATUS_OK;
}

ebm_status replica_buffer_init(cuda_ctx *c, int q0, const train_hparams *hp) {
    CU_TRY(cudaSetDevice(c->dev));
    return cu_buffer_init(c->buf, c->S, q0, hp->lv.seed, hp->lv.lo, hp->lv.hi, c->st);
}

int replica_device(const cuda_ctx *c) { return c->dev; }
cudaStream_t replica_stream(const cuda_ctx *c) { return c->st; }
float *replica_grads_buf(cuda_ctx *c) { return c->grads; }
double *replica_sums_buf(cuda_ctx *c) { return c->sums; }
size_t replica_nparams(const cuda_ctx *c) { return c->np; }

static ebm_status cuda_train_step(void *ctx, const float *x_pos, const int *y_pos, int B, const train_hparams *hp,
                                  uint64_t iter, train_step_stats *st) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    const int N = hp->n_samples;
    EBM_ASSERT(hp->buffer_size == c->S);
    EBM_TRY(replica_grads(c, x_pos, y_pos, B, N, NULL, B, hp, iter));
    EBM_TRY(replica_sums(c, B, N));
    EBM_TRY(replica_fetch(c));
    CU_TRY(cudaStreamSynchronize(c->st));
    EBM_TRY(replica_read(c, B, N, hp, st));
    /* 6. Adam, then the kernels' weight copy */
    return replica_update(c, hp, iter);
}

static ebm_status cuda_pull(void *ctx, net *host, float *buffer) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    EBM_ASSERT(host->nparams == c->np);
    CU_TRY(cudaSetDevice(c->dev));
    const size_t bytes = sizeof(float) * c->np;
    CU_TRY(cudaMemcpyAsync(host->params, c->params, bytes, cudaMemcpyDeviceToHost, c->st));
    CU_TRY(cudaMemcpyAsync(host->adam_m, c->m, bytes, cudaMemcpyDeviceToHost, c->st));
    CU_TRY(cudaMemcpyAsync(host->adam_v, c->v, bytes, cudaMemcpyDeviceToHost, c->st));
    if (buffer && c->S)
        CU_TRY(cudaMemcpyAsync(buffer, c->buf, sizeof(float) * (size_t)c->S * 784, cudaMemcpyDeviceToHost, c->st));
    CU_TRY(cudaStreamSynchronize(c->st));
    return EBM_STATUS_OK;
}

static ebm_status cuda_push(void *ctx, const net *host, const float *buffer) {
    cuda_ctx *c = (cuda_ctx *)ctx;
    EBM_ASSERT(host->nparams == c->np);
    CU_TRY(cudaSetDevice(c->dev));
    if (buffer && c->S)
        CU_TRY(cudaMemcpyAsync(c->buf, buffer, sizeof(float) * (size_t)c->S * 784, cudaMemcpyHostToDevice, c->st));
    return upload(c, host);
}

static void cuda_destroy(void *ctx) { ctx_free((cuda_ctx *)ctx); }

ebm_status replica_device_count(int *count) {
    *count = 0;
    const cudaError_t e = cudaGetDeviceCount(count);
    if (e != cudaSuccess || *count == 0)
        return ebm_fail(EBM_STATUS_UNSUPPORTED, "--device cuda: no usable NVIDIA GPU (%s); use --device cpu",
                        e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
    return EBM_STATUS_OK;
}

static ebm_status create(cuda_ctx *c, net *host, const train_hparams *hp, int device) {
    int count = 0;
    EBM_TRY(replica_device_count(&count));
    if (device < 0 || device >= count)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--device cuda: GPU %d does not exist (this machine has %d, 0..%d)", device,
                        count, count - 1);
    c->dev = device;
    CU_TRY(cudaSetDevice(device));
    if (cu_probe() != cudaSuccess) {
        cudaDeviceProp pr;
        cudaGetDeviceProperties(&pr, device);
        cudaGetLastError();
        return ebm_fail(EBM_STATUS_UNSUPPORTED,
                        "--device cuda: this ebm was built for another GPU generation than %s (sm_%d%d); "
                        "rebuild with make cuda CUDA_ARCH=sm_%d%d",
                        pr.name, pr.major, pr.minor, pr.major, pr.minor);
    }
    CU_TRY(cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking));
    EBM_TRY(check_net(host, &c->src));
    c->nout = host->out_dim;
    c->np = host->nparams;
    c->shape = hp->tf32 ? CU_PICK_TF32 : CU_PICK;
    int32_t *hmap = (int32_t *)ebm_alloc(sizeof(int32_t) * WL_TOTAL);
    if (!hmap) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the CUDA weight map");
    wlayout_map(&c->src, hmap);
    ebm_status s = dalloc(&c->map, WL_TOTAL);
    if (s == EBM_STATUS_OK && cudaMemcpy(c->map, hmap, sizeof(int32_t) * WL_TOTAL, cudaMemcpyHostToDevice) != cudaSuccess)
        s = ebm_fail(EBM_STATUS_IO, "CUDA: copying the weight map failed");
    ebm_free(hmap);
    EBM_TRY(s);
    EBM_TRY(dalloc(&c->params, c->np));
    EBM_TRY(dalloc(&c->grads, c->np));
    EBM_TRY(dalloc(&c->m, c->np));
    EBM_TRY(dalloc(&c->v, c->np));
    EBM_TRY(dalloc(&c->wts, WL_TOTAL));
    CU_TRY(cudaMemset(c->wts, 0, sizeof(float) * WL_TOTAL));
    EBM_TRY(dalloc(&c->flags, 2));
    EBM_TRY(dalloc(&c->csum, 1));
    CU_TRY(cudaMallocHost((void **)&c->h_sums, 8 * sizeof(double)));
    if (hp->buffer_size < 0 || hp->batch < 0 || hp->n_samples < 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "negative buffer, batch or sample count");
    c->S = hp->buffer_size, c->B_cap = hp->batch, c->N_cap = hp->n_samples;
    if (c->B_cap > 0 && c->N_cap > 0) {
        const int n = c->B_cap + c->N_cap;
        EBM_TRY(dalloc(&c->buf, (size_t)c->S * 784));
        EBM_TRY(dalloc(&c->win, (size_t)c->S));
        EBM_TRY(dalloc(&c->xraw, (size_t)c->B_cap * 784));
        EBM_TRY(dalloc(&c->x, (size_t)n * 784));
        EBM_TRY(dalloc(&c->E, (size_t)n));
        EBM_TRY(dalloc(&c->slots, (size_t)c->N_cap));
        EBM_TRY(dalloc(&c->y, (size_t)n));
        CU_TRY(cudaMemset(c->y, 0, sizeof(int) * (size_t)n));
        for (int l = 0; l < 6; l++) {
            EBM_TRY(dalloc(&c->dA[l], (size_t)n * cu_dump_is(l, 1)));
            EBM_TRY(dalloc(&c->dG[l], (size_t)n * cu_dump_is(l, 0)));
        }
        EBM_TRY(dalloc(&c->part, cu_wgrad_scratch(n)));
        EBM_TRY(dalloc(&c->sums, 5));
        EBM_TRY(cu_buffer_init(c->buf, c->S, 0, hp->lv.seed, hp->lv.lo, hp->lv.hi, c->st));
    }
    return upload(c, host);
}

ebm_status replica_create(net *host, const train_hparams *hp, int device, cuda_ctx **out) {
    *out = NULL;
    cuda_ctx *c = (cuda_ctx *)ebm_alloc(sizeof *c);
    if (!c) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the CUDA backend");
    memset(c, 0, sizeof *c);
    const ebm_status s = create(c, host, hp, device);
    if (s != EBM_STATUS_OK) {
        ctx_free(c);
        return s;
    }
    *out = c;
    return EBM_STATUS_OK;
}

void replica_free(cuda_ctx *c) { ctx_free(c); }

ebm_status replica_pull(cuda_ctx *c, net *host, float *buffer) { return cuda_pull(c, host, buffer); }
ebm_status replica_push(cuda_ctx *c, const net *host, const float *buffer) { return cuda_push(c, host, buffer); }
ebm_status replica_sample(cuda_ctx *c, float *x, const int *y, int n, int steps, const langevin_params *p,
                          langevin_stats *stats, langevin_snapshot_fn snap, void *ud, int every) {
    return cuda_sample(c, x, y, n, steps, p, stats, snap, ud, every);
}

ebm_status backend_cuda_create(net *host, const train_hparams *hp, int device, train_backend *out) {
    memset(out, 0, sizeof *out);
    cuda_ctx *c;
    EBM_TRY(replica_create(host, hp, device, &c));
    out->name = "cuda";
    out->ctx = c;
    out->train_step = cuda_train_step;
    out->sample = cuda_sample;
    out->pull = cuda_pull;
    out->push = cuda_push;
    out->destroy = cuda_destroy;
    return EBM_STATUS_OK;
}
