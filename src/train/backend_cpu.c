/* backend_cpu.c - the reference backend: one training iteration and Langevin sampling on
 * the host network, exactly as pinned down in trainer.h (random numbers, write-back order,
 * loss, Adam).  Parameters and Adam moments are the host net's own; the replay buffer
 * lives here. */
#include <math.h>
#include <string.h>

#include "backend.h"
#include "adam.h"
#include "trainer.h"
#include "../core/common.h"
#include "../core/rng.h"

typedef struct {
    net *n;
    int dim, out_dim;
    int S;            /* replay-buffer chains */
    int B_cap, N_cap; /* sizes the scratch was made for */
    float *buffer;    /* (S, dim) */
    float *xpos;      /* (B_cap, dim) */
    float *xneg;      /* (N_cap, dim) */
    float *f;         /* (max(B,N), out_dim) network outputs */
    float *dout;      /* (max(B,N), out_dim) */
    float *E;         /* (max(B,N)) */
    int *slots;       /* (N_cap) */
    int *yneg;        /* (N_cap) */
} cpu_ctx;

typedef struct {
    net *n;
    const int *y;
} energy_ctx;

static ebm_status cpu_energy(void *ctx, const float *x, int n, float *E, float *dEdx) {
    energy_ctx *c = ctx;
    return net_energy(c->n, x, n, c->y, E, dEdx);
}

/* x = lo + (hi - lo) * u, the uniform noise image of (seed, RNG_STREAM_START, a, b). */
static void noise_image(float *x, int dim, uint64_t seed, uint32_t a, uint32_t b, float lo, float hi) {
    rng_uniform_fill(seed, RNG_STREAM_START, a, b, x, dim);
    for (int k = 0; k < dim; k++) x[k] = lo + (hi - lo) * x[k];
}

/* Energies of B images from outputs f (B, out_dim) and, given dloss/dE in E's place on
 * the second call, dout = dloss/dE * dE/df.  out_dim 1: E = -f; label y >= 0: E = -f[y];
 * otherwise (no labels, or label -1) E = -logsumexp(f). */
static void head_energy(const float *f, int B, int out_dim, const int *y, float *E) {
    for (int i = 0; i < B; i++) {
        const float *fi = f + (size_t)i * out_dim;
        if (out_dim == 1) {
            E[i] = -fi[0];
        } else if (y && y[i] >= 0) {
            E[i] = -fi[y[i]];
        } else {
            float mx = fi[0];
            for (int k = 1; k < out_dim; k++) mx = fmaxf(mx, fi[k]);
            double s = 0;
            for (int k = 0; k < out_dim; k++) s += exp((double)(fi[k] - mx));
            E[i] = (float)-((double)mx + log(s)); /* as net_energy computes it */
        }
    }
}

static void head_backward(const float *f, const float *dLdE, int B, int out_dim, const int *y, float *dout) {
    for (int i = 0; i < B; i++) {
        const float *fi = f + (size_t)i * out_dim;
        float *di = dout + (size_t)i * out_dim;
        if (out_dim == 1) {
            di[0] = -dLdE[i];
        } else if (y && y[i] >= 0) {
            for (int k = 0; k < out_dim; k++) di[k] = 0;
            di[y[i]] = -dLdE[i];
        } else { /* dE/df = -softmax(f) */
            float mx = fi[0];
            for (int k = 1; k < out_dim; k++) mx = fmaxf(mx, fi[k]);
            double s = 0;
            for (int k = 0; k < out_dim; k++) s += exp((double)(fi[k] - mx));
            const double lse = (double)mx + log(s);
            for (int k = 0; k < out_dim; k++) di[k] = (float)(-(double)dLdE[i] * exp((double)fi[k] - lse));
        }
    }
}

/* Forward one group, loss terms, backward into the parameter gradients.
 * sign = +1 for positives, -1 for negatives.  Returns sum E and sum E^2 in double. */
static ebm_status group_pass(cpu_ctx *c, const float *x, const int *y, int B, float sign, float alpha,
                             double *sum_e, double *sum_e2) {
    EBM_TRY(net_forward(c->n, x, B, c->f));
    head_energy(c->f, B, c->out_dim, y, c->E);
    double s = 0, s2 = 0;
    for (int i = 0; i < B; i++) {
        s += c->E[i];
        s2 += (double)c->E[i] * c->E[i];
        c->E[i] = (sign + 2.0f * alpha * c->E[i]) / (float)B; /* now dloss/dE */
    }
    head_backward(c->f, c->E, B, c->out_dim, y, c->dout);
    net_backward(c->n, c->dout, B, NULL, 1);
    *sum_e = s;
    *sum_e2 = s2;
    return EBM_STATUS_OK;
}

static ebm_status cpu_train_step(void *ctx, const float *x_pos, const int *y_pos, int B, const train_hparams *hp,
                                 uint64_t iter, train_step_stats *st) {
    cpu_ctx *c = ctx;
    const int D = c->dim, N = hp->n_samples;
    const uint64_t s = hp->lv.seed;
    const float lo = hp->lv.lo, hi = hp->lv.hi;
    EBM_ASSERT(B > 0 && B <= c->B_cap && N > 0 && N <= c->N_cap);
    EBM_ASSERT(hp->buffer_size == c->S);
    if (hp->conditional) EBM_ASSERT(y_pos && c->out_dim > 1);

    /* 1. positives with a little noise */
    for (int i = 0; i < B; i++) {
        float *xi = c->xpos + (size_t)i * D;
        rng_normal_fill(s, TRAIN_STREAM_POS, (uint32_t)iter, (uint32_t)i, xi, D);
        const float *src = x_pos + (size_t)i * D;
        for (int k = 0; k < D; k++) xi[k] = fminf(fmaxf(src[k] + hp->data_noise * xi[k], lo), hi);
    }
    /* 2. chain starts */
    int cls[TRAIN_MAX_CLASSES];
    const int nc = train_chain_classes(hp->classes, c->out_dim, cls);
    for (int j = 0; j < N; j++) {
        float *xj = c->xneg + (size_t)j * D;
        uint32_t a = (uint32_t)(iter * (uint64_t)N + (uint64_t)j);
        int fresh = 1;
        if (c->S > 0) {
            int slot = (int)(rng_uniform_at(s, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 0) * c->S);
            if (slot >= c->S) slot = c->S - 1;
            c->slots[j] = slot;
            fresh = rng_uniform_at(s, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 1) < (double)hp->reinit;
            if (!fresh) memcpy(xj, c->buffer + (size_t)slot * D, sizeof(float) * (size_t)D);
            c->yneg[j] = cls[slot % nc];
        } else {
            c->yneg[j] = cls[(int)(rng_uniform_at(s, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 2) * nc)];
        }
        if (j < train_marginal_count(hp->marginal_chains, N)) c->yneg[j] = -1; /* a chain on the marginal E(x) */
        if (fresh) noise_image(xj, D, s, a, 0, lo, hi);
    }
    const int *yneg = hp->conditional ? c->yneg : NULL;
    /* 3. Langevin */
    langevin_params lv = hp->lv;
    lv.mala = 0;
    lv.chain0 = (uint32_t)(iter * (uint64_t)N);
    lv.step0 = 0;
    energy_ctx ec = {c->n, yneg};
    EBM_TRY(langevin_run(cpu_energy, &ec, c->xneg, N, D, hp->steps, &lv, NULL, NULL, NULL, 0));
    /* 4. write-back, larger j last */
    for (int j = 0; j < N && c->S > 0; j++)
        memcpy(c->buffer + (size_t)c->slots[j] * D, c->xneg + (size_t)j * D, sizeof(float) * (size_t)D);
    /* 5. loss and parameter gradient */
    net *n = c->n;
    memset(n->grads, 0, sizeof(float) * n->nparams);
    double sp, sp2, sn, sn2;
    EBM_TRY(group_pass(c, c->xpos, hp->conditional ? y_pos : NULL, B, 1.0f, hp->alpha, &sp, &sp2));
    EBM_TRY(group_pass(c, c->xneg, yneg, N, -1.0f, hp->alpha, &sn, &sn2));
    double e_pos = sp / B, e_neg = sn / N;
    double loss = e_pos - e_neg + hp->alpha * (sp2 / B + sn2 / N);
    double g2 = 0;
    for (size_t i = 0; i < n->nparams; i++) g2 += (double)n->grads[i] * n->grads[i];
    st->loss = (float)loss;
    st->e_pos = (float)e_pos;
    st->e_neg = (float)e_neg;
    st->grad_norm = (float)sqrt(g2);
    if (!isfinite(loss) || !isfinite(g2))
        return ebm_fail(EBM_STATUS_DIVERGED, "loss %g, gradient norm %g (not finite)", loss, sqrt(g2));
    /* 6. Adam */
    adam_params ap = {hp->lr, hp->beta1, hp->beta2, hp->adam_eps};
    adam_step(n->params, n->grads, n->adam_m, n->adam_v, n->nparams, &ap, iter + 1);
    return EBM_STATUS_OK;
}

static ebm_status cpu_sample(void *ctx, float *x, const int *y, int n, int steps, const langevin_params *p,
                             langevin_stats *stats, langevin_snapshot_fn snap, void *ud, int every) {
    cpu_ctx *c = ctx;
    energy_ctx ec = {c->n, y};
    return langevin_run(cpu_energy, &ec, x, n, c->dim, steps, p, stats, snap, ud, every);
}

static ebm_status cpu_pull(void *ctx, net *host, float *buffer) {
    cpu_ctx *c = ctx;
    EBM_ASSERT(host->nparams == c->n->nparams);
    if (host != c->n) {
        memcpy(host->params, c->n->params, sizeof(float) * host->nparams);
        memcpy(host->adam_m, c->n->adam_m, sizeof(float) * host->nparams);
        memcpy(host->adam_v, c->n->adam_v, sizeof(float) * host->nparams);
    }
    if (buffer && c->S) memcpy(buffer, c->buffer, sizeof(float) * (size_t)c->S * c->dim);
    return EBM_STATUS_OK;
}

static ebm_status cpu_push(void *ctx, const net *host, const float *buffer) {
    cpu_ctx *c = ctx;
    EBM_ASSERT(host->nparams == c->n->nparams);
    if (host != c->n) {
        memcpy(c->n->params, host->params, sizeof(float) * host->nparams);
        memcpy(c->n->adam_m, host->adam_m, sizeof(float) * host->nparams);
        memcpy(c->n->adam_v, host->adam_v, sizeof(float) * host->nparams);
    }
    if (buffer && c->S) memcpy(c->buffer, buffer, sizeof(float) * (size_t)c->S * c->dim);
    return EBM_STATUS_OK;
}

static void cpu_destroy(void *ctx) {
    cpu_ctx *c = ctx;
    if (!c) return;
    ebm_free(c->buffer);
    ebm_free(c->xpos);
    ebm_free(c->xneg);
    ebm_free(c->f);
    ebm_free(c->dout);
    ebm_free(c->E);
    ebm_free(c->slots);
    ebm_free(c->yneg);
    ebm_free(c);
}

ebm_status backend_cpu_create(net *host, const train_hparams *hp, train_backend *out) {
    memset(out, 0, sizeof *out);
    if (hp->buffer_size < 0 || hp->batch < 0 || hp->n_samples < 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "negative buffer, batch or sample count");
    cpu_ctx *c = ebm_alloc(sizeof *c);
    if (!c) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the CPU backend");
    c->n = host;
    c->dim = host->in_dim;
    c->out_dim = host->out_dim;
    c->S = hp->buffer_size;
    c->B_cap = hp->batch;
    c->N_cap = hp->n_samples;
    size_t D = (size_t)c->dim, G = (size_t)(c->B_cap > c->N_cap ? c->B_cap : c->N_cap);
    int ok = 1;
    if (c->S) ok &= (c->buffer = ebm_alloc(sizeof(float) * (size_t)c->S * D)) != NULL;
    if (G) {
        ok &= (c->xpos = ebm_alloc(sizeof(float) * (c->B_cap ? (size_t)c->B_cap : 1) * D)) != NULL;
        ok &= (c->xneg = ebm_alloc(sizeof(float) * (c->N_cap ? (size_t)c->N_cap : 1) * D)) != NULL;
        ok &= (c->f = ebm_alloc(sizeof(float) * G * (size_t)c->out_dim)) != NULL;
        ok &= (c->dout = ebm_alloc(sizeof(float) * G * (size_t)c->out_dim)) != NULL;
        ok &= (c->E = ebm_alloc(sizeof(float) * G)) != NULL;
        ok &= (c->slots = ebm_alloc(sizeof(int) * (c->N_cap ? (size_t)c->N_cap : 1))) != NULL;
        ok &= (c->yneg = ebm_alloc(sizeof(int) * (c->N_cap ? (size_t)c->N_cap : 1))) != NULL;
    }
    if (!ok) {
        cpu_destroy(c);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the replay buffer (%d chains) and batches",
                        hp->buffer_size);
    }
    for (int q = 0; q < c->S; q++)
        noise_image(c->buffer + (size_t)q * D, c->dim, hp->lv.seed, (uint32_t)q, 1, hp->lv.lo, hp->lv.hi);
    out->name = "cpu";
    out->ctx = c;
    out->train_step = cpu_train_step;
    out->sample = cpu_sample;
    out->pull = cpu_pull;
    out->push = cpu_push;
    out->destroy = cpu_destroy;
    return EBM_STATUS_OK;
}
