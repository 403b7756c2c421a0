/* autoencoder.c - binary images to codes and back, trained with BCE (see autoencoder.h). */
#include "autoencoder.h"

#include <math.h>
#include <string.h>

#include "../core/common.h"
#include "ckpt.h"

ebm_status ae_create(autoencoder *ae, int in_dim, int hidden, int code_dim, int max_batch, uint64_t seed) {
    memset(ae, 0, sizeof *ae);
    if (hidden < 1 || hidden > 65536)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--auto_hidden_dim %d: use 1..65536 (default 1024)", hidden);
    if (code_dim < 1 || code_dim > 256)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--encoded_dim %d: use 1..256 (default 4)", code_dim);
    ae->in_dim = in_dim;
    ae->hidden = hidden;
    ae->code_dim = code_dim;
    ae->max_batch = max_batch;
    const int ed[3] = {in_dim, hidden, code_dim}, dd[3] = {code_dim, hidden, in_dim}, act[2] = {1, 0};
    ebm_status s = mlp_create(&ae->enc, 2, ed, act, max_batch, seed, 1);
    if (s == EBM_STATUS_OK) s = mlp_create(&ae->dec, 2, dd, act, max_batch, seed, 2);
    const size_t B = (size_t)max_batch;
    float *buf = s == EBM_STATUS_OK ? ebm_alloc(((size_t)code_dim + (size_t)in_dim) * B * sizeof(float))
                                    : NULL;
    if (s == EBM_STATUS_OK && !buf) s = ebm_fail(EBM_STATUS_NOMEM, "autoencoder: out of memory for batch %d", max_batch);
    if (s != EBM_STATUS_OK) {
        ae_free(ae);
        return s;
    }
    ae->dcode = buf;
    ae->dlogits = buf + B * code_dim;
    return EBM_STATUS_OK;
}

void ae_free(autoencoder *ae) {
    if (!ae) return;
    mlp_free(&ae->enc);
    mlp_free(&ae->dec);
    ebm_free(ae->dcode);
    memset(ae, 0, sizeof *ae);
}

/* BCE of target t under logit l, stable for any l: max(l,0) - l t + log(1 + e^-|l|). */
static inline double bce_logit(float l, float t) {
    return (double)(l > 0 ? l : 0) - (double)l * t + log1p(exp(-fabs((double)l)));
}

static inline float sigmoid(float l) { return 1.0f / (1.0f + expf(-l)); }

double ae_loss_grad(autoencoder *ae, const float *x01, int B, long *correct) {
    EBM_ASSERT(B >= 1 && B <= ae->max_batch);
    const int D = ae->in_dim;
    mlp_zero_grad(&ae->enc);
    mlp_zero_grad(&ae->dec);
    const float *z = mlp_forward(&ae->enc, x01, B); /* stays valid: it lives in enc's buffer */
    const float *logits = mlp_forward(&ae->dec, z, B);
    const long n = (long)B * D;
    const float scale = 1.0f / (float)n;
    double loss = 0;
    long ok = 0;
    for (long i = 0; i < n; i++) {
        const float l = logits[i], t = x01[i];
        loss += bce_logit(l, t);
        ae->dlogits[i] = (sigmoid(l) - t) * scale;
        ok += (l >= 0.0f) == (t > 0.5f);
    }
    mlp_backward(&ae->dec, ae->dlogits, ae->dcode, 1);
    mlp_backward(&ae->enc, ae->dcode, NULL, 1);
    if (correct) *correct = ok;
    return loss / (double)n;
}

double ae_train_step(autoencoder *ae, const float *x01, int B, float lr, long *correct) {
    const double loss = ae_loss_grad(ae, x01, B, correct);
    mlp_adam_step(&ae->enc, lr);
    mlp_adam_step(&ae->dec, lr);
    return loss;
}

void ae_encode(autoencoder *ae, const float *x01, long n, float *z) {
    for (long i = 0; i < n; i += ae->max_batch) {
        const int B = (int)(n - i < ae->max_batch ? n - i : ae->max_batch);
        const float *out = mlp_forward(&ae->enc, x01 + i * ae->in_dim, B);
        memcpy(z + i * ae->code_dim, out, (size_t)B * ae->code_dim * sizeof(float));
    }
}

void ae_decode(autoencoder *ae, const float *z, long n, float *probs) {
    for (long i = 0; i < n; i += ae->max_batch) {
        const int B = (int)(n - i < ae->max_batch ? n - i : ae->max_batch);
        const float *logits = mlp_forward(&ae->dec, z + i * ae->code_dim, B);
        float *p = probs + i * ae->in_dim;
        for (long k = 0; k < (long)B * ae->in_dim; k++) p[k] = sigmoid(logits[k]);
    }
}

void ae_evaluate(autoencoder *ae, const float *x01, long n, double *bce, double *accuracy) {
    double loss = 0;
    long ok = 0;
    for (long i = 0; i < n; i += ae->max_batch) {
        const int B = (int)(n - i < ae->max_batch ? n - i : ae->max_batch);
        const float *x = x01 + i * ae->in_dim;
        const float *logits = mlp_forward(&ae->dec, mlp_forward(&ae->enc, x, B), B);
        for (long k = 0; k < (long)B * ae->in_dim; k++) {
            loss += bce_logit(logits[k], x[k]);
            ok += (logits[k] >= 0.0f) == (x[k] > 0.5f);
        }
    }
    const double total = (double)n * ae->in_dim;
    *bce = loss / total;
    *accuracy = (double)ok / total;
}

uint64_t ae_fingerprint(const autoencoder *ae) { return mlp_fingerprint(&ae->enc); }

ebm_status ae_save(const autoencoder *ae, const ae_info *info, int with_adam, const char *path) {
    st_writer *w = st_writer_new();
    if (!w) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory", path);
    ebm_status s = mlp_save(&ae->enc, w, "encoder.", with_adam, "optim.encoder.");
    if (s == EBM_STATUS_OK) s = mlp_save(&ae->dec, w, "decoder.", with_adam, "optim.decoder.");
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "format", AE_FORMAT);
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "format_version", "1");
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "ebm_version", EBM_VERSION);
    if (s == EBM_STATUS_OK)
        s = st_writer_meta(w, "architecture",
                           "encoder: Linear(input_dim,hidden_dim) SiLU Linear(hidden_dim,encoded_dim); decoder: "
                           "Linear(encoded_dim,hidden_dim) SiLU Linear(hidden_dim,input_dim) then sigmoid");
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "data", "MNIST pixels binarized: 1 if byte >= binarize_threshold");
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "input_dim", "%d", ae->in_dim);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "hidden_dim", "%d", ae->hidden);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "encoded_dim", "%d", ae->code_dim);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "binarize_threshold", "%d", info->binarize_threshold);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "epochs_done", "%d", info->epochs_done);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "adam_t", "%ld", ae->enc.adam_t);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "seed", "%llu", (unsigned long long)info->seed);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "train_seconds", "%.3f", info->train_seconds);
    if (s == EBM_STATUS_OK && info->test_bce >= 0) s = ckpt_meta_printf(w, "test_bce", "%.6f", info->test_bce);
    if (s == EBM_STATUS_OK && info->test_accuracy >= 0)
        s = ckpt_meta_printf(w, "test_accuracy", "%.6f", info->test_accuracy);
    if (s != EBM_STATUS_OK) {
        st_writer_free(w);
        return s;
    }
    return st_writer_commit(w, path);
}

ebm_status ae_load(const char *path, int max_batch, autoencoder *ae, ae_info *info) {
    st_file f;
    EBM_TRY(st_read(path, &f));
    long in_dim = 0, hidden = 0, code_dim = 0, thr = 0, epochs = 0, adam_t = 0, seed = 0;
    double bce = -1, acc = -1, secs = 0;
    ebm_status s = ckpt_check_format(&f, path, AE_FORMAT);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "input_dim", 1, 1 << 20, &in_dim);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "hidden_dim", 1, 65536, &hidden);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "encoded_dim", 1, 256, &code_dim);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "binarize_threshold", 0, 256, &thr);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "epochs_done", 0, 1 << 30, &epochs);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "adam_t", 0, 1L << 40, &adam_t);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "seed", 0, 0x7fffffffffffffffL, &seed);
    if (s == EBM_STATUS_OK) s = ckpt_meta_double(&f, path, "test_bce", 0, -1, &bce);
    if (s == EBM_STATUS_OK) s = ckpt_meta_double(&f, path, "test_accuracy", 0, -1, &acc);
    if (s == EBM_STATUS_OK) s = ckpt_meta_double(&f, path, "train_seconds", 0, 0, &secs);
    if (s == EBM_STATUS_OK) s = ae_create(ae, (int)in_dim, (int)hidden, (int)code_dim, max_batch, 0);
    if (s == EBM_STATUS_OK) {
        s = mlp_load(&ae->enc, &f, "encoder.", 1, "optim.encoder.");
        if (s == EBM_STATUS_OK) s = mlp_load(&ae->dec, &f, "decoder.", 1, "optim.decoder.");
        if (s != EBM_STATUS_OK) {
            ebm_error_prefix("%s", path);
            ae_free(ae);
        }
    }
    st_free(&f);
    if (s != EBM_STATUS_OK) return s;
    ae->enc.adam_t = ae->dec.adam_t = adam_t;
    info->binarize_threshold = (int)thr;
    info->epochs_done = (int)epochs;
    info->seed = (uint64_t)seed;
    info->test_bce = bce;
    info->test_accuracy = acc;
    info->train_seconds = secs;
    return EBM_STATUS_OK;
}
