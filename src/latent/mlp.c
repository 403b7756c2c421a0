/* mlp.c - dense + Swish stacks on one parameter buffer (see mlp.h). */
#include "mlp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/common.h"
#include "../core/layers.h"
#include "../core/rng.h"
#include "../train/adam.h"

ebm_status mlp_create(mlp *m, int nlayers, const int *dims, const int *swish, int max_batch, uint64_t seed,
                      uint32_t init_tag) {
    memset(m, 0, sizeof *m);
    EBM_ASSERT(nlayers >= 1 && nlayers <= MLP_MAX_LAYERS && max_batch >= 1);
    m->nlayers = nlayers;
    m->max_batch = max_batch;
    size_t np = 0, nact = 0;
    int widest = dims[0];
    for (int l = 0; l < nlayers; l++) {
        if (dims[l] < 1 || dims[l + 1] < 1)
            return ebm_fail(EBM_STATUS_BAD_ARG, "mlp: layer %d has size %d -> %d; sizes must be >= 1", l, dims[l],
                            dims[l + 1]);
        m->dims[l] = dims[l];
        m->swish[l] = swish[l];
        m->w_off[l] = np;
        np += (size_t)dims[l + 1] * dims[l];
        m->b_off[l] = np;
        np += (size_t)dims[l + 1];
        nact += (size_t)(swish[l] ? 2 : 1) * dims[l + 1];
        if (dims[l + 1] > widest) widest = dims[l + 1];
    }
    m->dims[nlayers] = dims[nlayers];
    m->nparams = np;
    float *p = ebm_alloc(4 * np * sizeof(float));
    const size_t B = (size_t)max_batch;
    float *a = ebm_alloc((nact + 2 * (size_t)widest) * B * sizeof(float));
    if (!p || !a) {
        ebm_free(p);
        ebm_free(a);
        return ebm_fail(EBM_STATUS_NOMEM, "mlp: out of memory for %zu parameters and batch %d", np, max_batch);
    }
    m->params = p;
    m->grads = p + np;
    m->adam_m = p + 2 * np;
    m->adam_v = p + 3 * np;
    m->acts = a;
    for (int l = 0; l < nlayers; l++) {
        m->pre[l] = a;
        a += B * dims[l + 1];
        m->post[l] = m->pre[l];
        if (swish[l]) {
            m->post[l] = a;
            a += B * dims[l + 1];
        }
    }
    m->scratch0 = a;
    m->scratch1 = a + B * widest;
    for (int l = 0; l < nlayers; l++) {
        const float bound = 1.0f / sqrtf((float)dims[l]);
        float *w = m->params + m->w_off[l];
        size_t nw = (size_t)dims[l + 1] * dims[l] + dims[l + 1]; /* weight then bias, contiguous */
        /* b = 0 stream position; a = (tag << 8) | layer keeps nets of one seed apart */
        float *u = w;
        EBM_ASSERT(nw < (size_t)INT32_MAX);
        rng_uniform_fill(seed, RNG_STREAM_INIT, (init_tag << 8) | (uint32_t)l, 0, u, (int)nw);
        for (size_t i = 0; i < nw; i++) u[i] = (2.0f * u[i] - 1.0f) * bound;
    }
    return EBM_STATUS_OK;
}

void mlp_free(mlp *m) {
    if (!m) return;
    ebm_free(m->params);
    ebm_free(m->acts);
    memset(m, 0, sizeof *m);
}

const float *mlp_forward(mlp *m, const float *x, int B) {
    EBM_ASSERT(B >= 1 && B <= m->max_batch);
    m->last_in = x;
    m->last_B = B;
    const float *in = x;
    for (int l = 0; l < m->nlayers; l++) {
        dense_forward(m->pre[l], in, m->params + m->w_off[l], m->params + m->b_off[l], B, m->dims[l],
                      m->dims[l + 1]);
        if (m->swish[l]) swish_forward(m->post[l], m->pre[l], (long)B * m->dims[l + 1]);
        in = m->post[l];
    }
    return in;
}

void mlp_backward(mlp *m, const float *dout, float *dx, int param_grads) {
    const int B = m->last_B, l0 = 0;
    EBM_ASSERT(B >= 1);
    const float *g = dout; /* gradient w.r.t. the post-activation of layer l */
    for (int l = m->nlayers - 1; l >= l0; l--) {
        const int In = m->dims[l], Out = m->dims[l + 1];
        /* two scratch buffers in turn, so that no call reads and writes the same one */
        const float *dz = g; /* gradient w.r.t. the pre-activation */
        if (m->swish[l]) {
            float *t = g == m->scratch0 ? m->scratch1 : m->scratch0;
            swish_backward(t, g, m->pre[l], (long)B * Out);
            dz = t;
        }
        const float *inp = l == l0 ? m->last_in : m->post[l - 1];
        float *dinp = l == l0 ? dx : (dz == m->scratch0 ? m->scratch1 : m->scratch0);
        dense_backward(dinp, param_grads ? m->grads + m->w_off[l] : NULL,
                       param_grads ? m->grads + m->b_off[l] : NULL, dz, inp, m->params + m->w_off[l], B, In, Out);
        g = dinp;
    }
}

void mlp_zero_grad(mlp *m) { memset(m->grads, 0, m->nparams * sizeof(float)); }

void mlp_adam_step(mlp *m, float lr) {
    const adam_params ap = {lr, 0.9f, 0.999f, 1e-8f};
    m->adam_t++;
    adam_step(m->params, m->grads, m->adam_m, m->adam_v, m->nparams, &ap, (uint64_t)m->adam_t);
}

int mlp_torch_index(const mlp *m, int l) {
    int idx = 0;
    for (int k = 0; k < l; k++) idx += m->swish[k] ? 2 : 1;
    return idx;
}

static void tensor_name(char *buf, size_t len, const char *prefix, int idx, const char *what) {
    snprintf(buf, len, "%s%d.%s", prefix, idx, what);
}

ebm_status mlp_save(const mlp *m, st_writer *w, const char *prefix, int with_adam, const char *optim_prefix) {
    char name[ST_NAME_MAX];
    for (int l = 0; l < m->nlayers; l++) {
        const int idx = mlp_torch_index(m, l);
        const int64_t ws[2] = {m->dims[l + 1], m->dims[l]}, bs[1] = {m->dims[l + 1]};
        tensor_name(name, sizeof name, prefix, idx, "weight");
        EBM_TRY(st_writer_add(w, name, ST_F32, 2, ws, m->params + m->w_off[l]));
        tensor_name(name, sizeof name, prefix, idx, "bias");
        EBM_TRY(st_writer_add(w, name, ST_F32, 1, bs, m->params + m->b_off[l]));
    }
    if (with_adam) {
        const int64_t n[1] = {(int64_t)m->nparams};
        snprintf(name, sizeof name, "%sm", optim_prefix);
        EBM_TRY(st_writer_add(w, name, ST_F32, 1, n, m->adam_m));
        snprintf(name, sizeof name, "%sv", optim_prefix);
        EBM_TRY(st_writer_add(w, name, ST_F32, 1, n, m->adam_v));
    }
    return EBM_STATUS_OK;
}

/* Checks that tensor `name` exists with exactly the 1-D or 2-D shape expected. */
static ebm_status check_shape(const st_file *f, const char *name, int ndim, int64_t d0, int64_t d1) {
    const st_tensor *t = st_find(f, name);
    if (!t)
        return ebm_fail(EBM_STATUS_BAD_FILE, "tensor \"%s\" missing; the file is not this kind of model", name);
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char want[64];
        if (ndim == 2)
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
        else
            snprintf(want, sizeof want, "[%lld]", (long long)d0);
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "tensor \"%s\" has %d dims (first %lld), expected shape %s; the file's metadata and "
                        "tensors disagree",
                        name, t->ndim, (long long)t->shape[0], want);
    }
    return EBM_STATUS_OK;
}

ebm_status mlp_load(mlp *m, const st_file *f, const char *prefix, int want_adam, const char *optim_prefix) {
    char name[ST_NAME_MAX];
    for (int l = 0; l < m->nlayers; l++) {
        const int idx = mlp_torch_index(m, l);
        tensor_name(name, sizeof name, prefix, idx, "weight");
        EBM_TRY(check_shape(f, name, 2, m->dims[l + 1], m->dims[l]));
        EBM_TRY(st_get_f32(f, name, m->params + m->w_off[l], (size_t)m->dims[l + 1] * m->dims[l]));
        tensor_name(name, sizeof name, prefix, idx, "bias");
        EBM_TRY(check_shape(f, name, 1, m->dims[l + 1], 0));
        EBM_TRY(st_get_f32(f, name, m->params + m->b_off[l], (size_t)m->dims[l + 1]));
    }
    memset(m->adam_m, 0, 2 * m->nparams * sizeof(float)); /* m and v are adjacent */
    if (want_adam) {
        snprintf(name, sizeof name, "%sm", optim_prefix);
        if (st_find(f, name)) {
            EBM_TRY(st_get_f32(f, name, m->adam_m, m->nparams));
            snprintf(name, sizeof name, "%sv", optim_prefix);
            EBM_TRY(st_get_f32(f, name, m->adam_v, m->nparams));
        }
    }
    return EBM_STATUS_OK;
}

uint64_t mlp_fingerprint(const mlp *m) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)m->params;
    for (size_t i = 0; i < m->nparams * sizeof(float); i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}
