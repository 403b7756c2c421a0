/* latent_ebm.c - energy on standardized codes, CD training, MALA sampling (see latent_ebm.h). */
#include "latent_ebm.h"

#include <math.h>
#include <omp.h>

#include <cblas.h>
#include <string.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "ckpt.h"

ebm_status lebm_create(latent_ebm *le, int code_dim, int hidden, int max_batch, uint64_t seed) {
    memset(le, 0, sizeof *le);
    if (hidden < 1 || hidden > 4096)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--ebm_hidden_dim %d: use 1..4096 (default 8)", hidden);
    if (code_dim < 1 || code_dim > 256)
        return ebm_fail(EBM_STATUS_BAD_ARG, "latent EBM: code dimension %d out of 1..256", code_dim);
    le->code_dim = code_dim;
    le->hidden = hidden;
    le->max_batch = max_batch;
    const int dims[4] = {code_dim, hidden, hidden, 1}, act[3] = {1, 1, 0};
    EBM_TRY(mlp_create(&le->net, 3, dims, act, max_batch, seed, 3));
    float *buf = ebm_alloc((2 * (size_t)code_dim + (size_t)max_batch) * sizeof(float));
    if (!buf) {
        mlp_free(&le->net);
        return ebm_fail(EBM_STATUS_NOMEM, "latent EBM: out of memory for batch %d", max_batch);
    }
    le->code_mean = buf;
    le->code_std = buf + code_dim;
    le->ones = buf + 2 * code_dim;
    for (int j = 0; j < code_dim; j++) le->code_std[j] = 1.0f;
    for (int i = 0; i < max_batch; i++) le->ones[i] = 1.0f;
    return EBM_STATUS_OK;
}

void lebm_free(latent_ebm *le) {
    if (!le) return;
    mlp_free(&le->net);
    ebm_free(le->code_mean);
    memset(le, 0, sizeof *le);
}

void lebm_fit_standardization(latent_ebm *le, const float *z, long n) {
    const int d = le->code_dim;
    for (int j = 0; j < d; j++) {
        double s = 0, s2 = 0;
        for (long i = 0; i < n; i++) s += z[i * d + j];
        const double mean = n ? s / n : 0;
        for (long i = 0; i < n; i++) s2 += (z[i * d + j] - mean) * (z[i * d + j] - mean);
        const double sd = n > 1 ? sqrt(s2 / (n - 1)) : 0;
        le->code_mean[j] = (float)mean;
        le->code_std[j] = sd > 1e-12 ? (float)sd : 1.0f;
    }
}

void lebm_standardize(const latent_ebm *le, const float *z, long n, float *u) {
    const int d = le->code_dim;
    for (long i = 0; i < n * d; i++) u[i] = (z[i] - le->code_mean[i % d]) / le->code_std[i % d];
}

void lebm_unstandardize(const latent_ebm *le, const float *u, long n, float *z) {
    const int d = le->code_dim;
    for (long i = 0; i < n * d; i++) z[i] = le->code_mean[i % d] + le->code_std[i % d] * u[i];
}

/* The latent EBM runs on one thread, OpenMP and BLAS alike: a chain in R^d costs a few
 * hundred flops per step and a GEMM over all chains (8192 x 8 x 8 by default) is smaller
 * than the cost of waking a thread team; on 2 busy cores, threads made a CD iteration
 * 3-5x slower (47 ms single-threaded against 157 ms with 2 threads, measured). */
typedef struct {
    int omp, blas;
} threads_saved;

static threads_saved single_thread(void) {
    threads_saved t = {omp_get_max_threads(), openblas_get_num_threads()};
    omp_set_num_threads(1);
    if (t.blas != 1) openblas_set_num_threads(1);
    return t;
}

static void restore_threads(threads_saved t) {
    omp_set_num_threads(t.omp);
    if (t.blas != 1) openblas_set_num_threads(t.blas);
}

static ebm_status run_chains(latent_ebm *le, float *u, int n, int steps, const langevin_params *p,
                             langevin_stats *st, langevin_snapshot_fn snap, void *ud) {
    threads_saved t = single_thread();
    ebm_status s = langevin_run(lebm_energy, le, u, n, le->code_dim, steps, p, st, snap, ud, 1);
    restore_threads(t);
    return s;
}

typedef struct {
    const latent_ebm *le;
    float *path;
    int steps;
} path_rec;

/* Stores step t of every chain, unstandardized, into path (n, steps + 1, d). */
static ebm_status record(void *ud, int t, const float *u, const float *E, int n, int d) {
    const path_rec *r = ud;
    for (int c = 0; c < n; c++)
        lebm_unstandardize(r->le, u + (size_t)c * d, 1, r->path + ((size_t)c * (r->steps + 1) + t) * d);
    return EBM_STATUS_OK;
}

ebm_status lebm_energy(void *ctx, const float *u, int n, float *E, float *dEdu) {
    latent_ebm *le = ctx;
    const int d = le->code_dim;
    for (int i = 0; i < n; i += le->max_batch) {
        const int B = n - i < le->max_batch ? n - i : le->max_batch;
        const float *x = u + (size_t)i * d;
        const float *f = mlp_forward(&le->net, x, B);
        for (int b = 0; b < B; b++) {
            double q = 0;
            for (int j = 0; j < d; j++) q += (double)x[b * d + j] * x[b * d + j];
            E[i + b] = f[b] + (float)(0.5 * q);
        }
        if (dEdu) {
            float *g = dEdu + (size_t)i * d;
            mlp_backward(&le->net, le->ones, g, 0);
            for (long k = 0; k < (long)B * d; k++) g[k] += x[k];
        }
    }
    return EBM_STATUS_OK;
}

/* Accumulates scale * d f / d params over n rows, chunked; returns the mean E (with base). */
static double accumulate(latent_ebm *le, const float *u, int n, float scale) {
    const int d = le->code_dim;
    double sum = 0;
    for (int i = 0; i < n; i += le->max_batch) {
        const int B = n - i < le->max_batch ? n - i : le->max_batch;
        const float *x = u + (size_t)i * d;
        const float *f = mlp_forward(&le->net, x, B);
        for (int b = 0; b < B; b++) {
            double q = 0;
            for (int j = 0; j < d; j++) q += (double)x[b * d + j] * x[b * d + j];
            sum += f[b] + 0.5 * q;
        }
        /* the backward seed is dLoss/df = scale for every row */
        for (int b = 0; b < B; b++) le->ones[b] = scale;
        mlp_backward(&le->net, le->ones, NULL, 1);
        for (int b = 0; b < B; b++) le->ones[b] = 1.0f;
    }
    return sum / n;
}

ebm_status lebm_train_step(latent_ebm *le, const float *u_pos, int B, const lebm_train_params *tp, uint64_t iter,
                           float *neg, lebm_step_stats *st) {
    const int d = le->code_dim, K = tp->samples_per_datapoint;
    EBM_ASSERT(B >= 1 && K >= 1 && tp->steps >= 0);
    const long nneg = (long)K * B;
    if (nneg > INT32_MAX / d)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--ebm_batch_size %d x --mcmc_samples_per_datapoint %d is too many chains",
                        B, K);
    for (int k = 0; k < K; k++) memcpy(neg + (size_t)k * B * d, u_pos, (size_t)B * d * sizeof(float));
    langevin_params lv = tp->lv;
    lv.chain0 = 0;
    lv.step0 = (uint32_t)(iter * (uint64_t)tp->steps);
    langevin_stats ls;
    ebm_status s = run_chains(le, neg, (int)nneg, tp->steps, &lv, &ls, NULL, NULL);
    if (s != EBM_STATUS_OK) {
        ebm_error_prefix("latent EBM iteration %llu", (unsigned long long)iter);
        return s;
    }
    mlp_zero_grad(&le->net);
    threads_saved t = single_thread();
    st->e_pos = accumulate(le, u_pos, B, 1.0f / (float)B);
    st->e_neg = accumulate(le, neg, (int)nneg, -1.0f / (float)nneg);
    restore_threads(t);
    st->acceptance = ls.proposed ? (double)ls.accepted / (double)ls.proposed : 1.0;
    if (!isfinite(st->e_pos) || !isfinite(st->e_neg))
        return ebm_fail(EBM_STATUS_DIVERGED,
                        "latent EBM diverged at iteration %llu (E data %g, E samples %g); lower --ebm_lr or --step_size",
                        (unsigned long long)iter, st->e_pos, st->e_neg);
    mlp_adam_step(&le->net, tp->lr);
    return EBM_STATUS_OK;
}

ebm_status lebm_sample(latent_ebm *le, int n, int steps, const langevin_params *p, float *z, float *path,
                       langevin_stats *st) {
    const int d = le->code_dim;
    for (int i = 0; i < n; i++) rng_normal_fill(p->seed, RNG_STREAM_START, p->chain0 + (uint32_t)i, 0, z + (size_t)i * d, d);
    path_rec rec = {le, path, steps};
    EBM_TRY(run_chains(le, z, n, steps, p, st, path ? record : NULL, &rec));
    lebm_unstandardize(le, z, n, z);
    return EBM_STATUS_OK;
}

ebm_status lebm_save(const latent_ebm *le, const lebm_info *info, int with_adam, const char *path) {
    st_writer *w = st_writer_new();
    if (!w) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory", path);
    const int64_t dshape[1] = {le->code_dim};
    ebm_status s = mlp_save(&le->net, w, "", with_adam, "optim.");
    if (s == EBM_STATUS_OK) s = st_writer_add(w, "code_mean", ST_F32, 1, dshape, le->code_mean);
    if (s == EBM_STATUS_OK) s = st_writer_add(w, "code_std", ST_F32, 1, dshape, le->code_std);
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "format", LEBM_FORMAT);
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "format_version", "1");
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "ebm_version", EBM_VERSION);
    if (s == EBM_STATUS_OK)
        s = st_writer_meta(w, "energy",
                           "u = (z - code_mean) / code_std; E(z) = net(u) + 0.5 * sum(u^2); net = Linear(encoded_dim, "
                           "hidden_dim) SiLU Linear(hidden_dim, hidden_dim) SiLU Linear(hidden_dim, 1)");
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "encoded_dim", "%d", le->code_dim);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "hidden_dim", "%d", le->hidden);
    if (s == EBM_STATUS_OK)
        s = ckpt_meta_printf(w, "autoencoder_fingerprint", "%016llx", (unsigned long long)info->ae_fingerprint);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "epochs_done", "%d", info->epochs_done);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "adam_t", "%ld", le->net.adam_t);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "seed", "%llu", (unsigned long long)info->seed);
    if (s == EBM_STATUS_OK) s = st_writer_meta(w, "sampler", info->sampler_mala ? "mala" : "ula");
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "mcmc_steps", "%d", info->mcmc_steps);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "step_size", "%.9g", (double)info->step_size);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "mcmc_samples_per_datapoint", "%d", info->samples_per_datapoint);
    if (s == EBM_STATUS_OK) s = ckpt_meta_printf(w, "train_seconds", "%.3f", info->train_seconds);
    if (s == EBM_STATUS_OK && info->acceptance >= 0)
        s = ckpt_meta_printf(w, "train_acceptance", "%.6f", info->acceptance);
    if (s != EBM_STATUS_OK) {
        st_writer_free(w);
        return s;
    }
    return st_writer_commit(w, path);
}

ebm_status lebm_load(const char *path, int max_batch, latent_ebm *le, lebm_info *info) {
    st_file f;
    EBM_TRY(st_read(path, &f));
    long d = 0, h = 0, epochs = 0, adam_t = 0, seed = 0, steps = 0, K = 0;
    double eps = 0, acc = -1, secs = 0;
    uint64_t fp = 0;
    ebm_status s = ckpt_check_format(&f, path, LEBM_FORMAT);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "encoded_dim", 1, 256, &d);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "hidden_dim", 1, 4096, &h);
    if (s == EBM_STATUS_OK) s = ckpt_meta_hex64(&f, path, "autoencoder_fingerprint", &fp);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "epochs_done", 0, 1 << 30, &epochs);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "adam_t", 0, 1L << 40, &adam_t);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "seed", 0, 0x7fffffffffffffffL, &seed);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "mcmc_steps", 0, 1 << 30, &steps);
    if (s == EBM_STATUS_OK) s = ckpt_meta_long(&f, path, "mcmc_samples_per_datapoint", 1, 1 << 20, &K);
    if (s == EBM_STATUS_OK) s = ckpt_meta_double(&f, path, "step_size", 1, 0, &eps);
    if (s == EBM_STATUS_OK) s = ckpt_meta_double(&f, path, "train_acceptance", 0, -1, &acc);
    if (s == EBM_STATUS_OK) s = ckpt_meta_double(&f, path, "train_seconds", 0, 0, &secs);
    const char *sampler = st_meta(&f, "sampler");
    if (s == EBM_STATUS_OK && (!sampler || (strcmp(sampler, "mala") != 0 && strcmp(sampler, "ula") != 0)))
        s = ebm_fail(EBM_STATUS_BAD_FILE, "%s: metadata sampler is \"%s\", expected \"mala\" or \"ula\"", path,
                     sampler ? sampler : "(none)");
    int mala = s == EBM_STATUS_OK && strcmp(sampler, "mala") == 0;
    if (s == EBM_STATUS_OK) s = lebm_create(le, (int)d, (int)h, max_batch, 0);
    if (s == EBM_STATUS_OK) {
        s = mlp_load(&le->net, &f, "", 1, "optim.");
        if (s == EBM_STATUS_OK) s = st_get_f32(&f, "code_mean", le->code_mean, (size_t)d);
        if (s == EBM_STATUS_OK) s = st_get_f32(&f, "code_std", le->code_std, (size_t)d);
        for (int j = 0; s == EBM_STATUS_OK && j < d; j++)
            if (!(le->code_std[j] > 0))
                s = ebm_fail(EBM_STATUS_BAD_FILE, "code_std[%d] = %g must be > 0", j, (double)le->code_std[j]);
        if (s != EBM_STATUS_OK) {
            ebm_error_prefix("%s", path);
            lebm_free(le);
        }
    }
    st_free(&f);
    if (s != EBM_STATUS_OK) return s;
    le->net.adam_t = adam_t;
    info->epochs_done = (int)epochs;
    info->seed = (uint64_t)seed;
    info->ae_fingerprint = fp;
    info->sampler_mala = mala;
    info->mcmc_steps = (int)steps;
    info->samples_per_datapoint = (int)K;
    info->step_size = (float)eps;
    info->acceptance = acc;
    info->train_seconds = secs;
    return EBM_STATUS_OK;
}

ebm_status lebm_check_pair(const autoencoder *ae, const char *ae_path, const latent_ebm *le,
                           const lebm_info *info, const char *le_path) {
    if (ae->code_dim != le->code_dim)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "inconsistent pair: the decoder in %s takes %d-dim codes (encoded_dim %d) but the EBM in %s "
                        "models %d-dim codes; the files come from different runs: use the autoencoder.safetensors "
                        "and latent_ebm.safetensors of one --out-dir",
                        ae_path, ae->code_dim, ae->code_dim, le_path, le->code_dim);
    const uint64_t fp = ae_fingerprint(ae);
    if (fp != info->ae_fingerprint)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "inconsistent pair: the EBM in %s was trained on the codes of another autoencoder "
                        "(fingerprint %016llx, %s has %016llx); use the two files of one run, or delete %s and "
                        "rerun `ebm latent train --resume` to train a new EBM on this autoencoder",
                        le_path, (unsigned long long)info->ae_fingerprint, ae_path, (unsigned long long)fp, le_path);
    return EBM_STATUS_OK;
}
