/* model.c - the public model and sampling API of include/ebm.h, over the network
 * (net.h), checkpoints (checkpoint.h) and the Langevin sampler (langevin.h).  Chains here
 * use the same random numbers as `ebm sample`: chain i starts from the uniform noise of
 * (seed, RNG_STREAM_START, i, 0) and draws its Langevin noise as langevin.h says, so the
 * library and the command give the same images for the same seed. */
#include <math.h>
#include <string.h>

#include "common.h"
#include "net.h"
#include "rng.h"
#include "../io/checkpoint.h"
#include "../sample/langevin.h"

struct ebm_model {
    net *n;
};

static ebm_status wrap(net *n, ebm_model **out) {
    ebm_model *m = ebm_alloc(sizeof *m);
    if (!m) {
        net_free(n);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    }
    m->n = n;
    *out = m;
    return EBM_STATUS_OK;
}

ebm_status ebm_model_create(const char *spec, uint64_t seed, ebm_model **out) {
    EBM_ASSERT(out);
    *out = NULL;
    net *n;
    EBM_TRY(net_create(&n, spec ? spec : "cnn-small", seed));
    return wrap(n, out);
}

ebm_status ebm_model_load(const char *path, ebm_model **out) {
    EBM_ASSERT(path && out);
    *out = NULL;
    net *n;
    EBM_TRY(ckpt_load_model(path, &n));
    return wrap(n, out);
}

ebm_status ebm_model_save(const ebm_model *m, const char *path) {
    EBM_ASSERT(m && path);
    return ckpt_save(path, m->n, CKPT_FORMAT_MODEL, NULL, 0, NULL, 0);
}

void ebm_model_free(ebm_model *m) {
    if (!m) return;
    net_free(m->n);
    ebm_free(m);
}

size_t ebm_model_num_params(const ebm_model *m) { return m->n->nparams; }

const char *ebm_model_spec(const ebm_model *m) { return m->n->spec; }

ebm_status ebm_model_energy(ebm_model *m, const float *x, int n, float *E, float *dEdx) {
    EBM_ASSERT(m && (x || n == 0) && (E || n == 0));
    if (n < 0) return ebm_fail(EBM_STATUS_BAD_ARG, "energy of %d images: need n >= 0", n);
    return net_energy(m->n, x, n, NULL, E, dEdx);
}

ebm_sample_params ebm_sample_params_default(void) {
    /* the training recipe's sampler, with enough steps for fresh chains from noise */
    ebm_sample_params p = {EBM_SAMPLER_ULA, 256, 10.0f, 0.005f, 0.03f, 0};
    return p;
}

typedef struct {
    net *n;
    const int *y;
} energy_ctx;

static ebm_status energy_cb(void *ctx, const float *x, int n, float *E, float *dEdx) {
    energy_ctx *c = ctx;
    return net_energy(c->n, x, n, c->y, E, dEdx);
}

ebm_status ebm_sample(ebm_model *m, const ebm_sample_params *p, int digit, int n, float *x, float *acceptance) {
    EBM_ASSERT(m && p && (x || n == 0));
    if (n <= 0) return ebm_fail(EBM_STATUS_BAD_ARG, "need at least one sample (got n = %d)", n);
    if (p->kind != EBM_SAMPLER_ULA && p->kind != EBM_SAMPLER_MALA)
        return ebm_fail(EBM_STATUS_BAD_ARG, "unknown sampler kind %d", (int)p->kind);
    net *nt = m->n;
    if (digit >= 0 && (nt->out_dim < 2 || digit >= nt->out_dim))
        return ebm_fail(EBM_STATUS_BAD_ARG, "digit %d: the model has %d output%s (class-conditional models draw a chosen "
                        "digit)", digit, nt->out_dim, nt->out_dim == 1 ? "" : "s");
    int *y = NULL;
    if (digit >= 0) {
        y = ebm_alloc(sizeof(int) * (size_t)n);
        if (!y) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
        for (int i = 0; i < n; i++) y[i] = digit;
    }
    const int D = nt->in_dim;
    const float lo = -1.0f, hi = 1.0f;
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * D;
        rng_uniform_fill(p->seed, RNG_STREAM_START, (uint32_t)i, 0, xi, D);
        for (int k = 0; k < D; k++) xi[k] = lo + (hi - lo) * xi[k];
    }
    langevin_params lp = {p->kind == EBM_SAMPLER_MALA, p->eps, p->noise, p->grad_clip, lo, hi, p->seed, 0, 0};
    langevin_stats st = {0};
    energy_ctx ec = {nt, y};
    ebm_status s = langevin_run(energy_cb, &ec, x, n, D, p->steps, &lp, &st, NULL, NULL, 0);
    ebm_free(y);
    if (s == EBM_STATUS_OK && acceptance) *acceptance = st.proposed ? (float)st.accepted / (float)st.proposed : 1.0f;
    return s;
}
