/* latent_train.c - the latent pipeline's training run (see latent_train.h). */
#include "latent_train.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "../core/common.h"
#include "../data/dataset.h"
#include "../io/atomic.h"
#include "autoencoder.h"
#include "latent_ebm.h"

void latent_config_default(latent_config *c) {
    *c = (latent_config){
        .data_dir = "data/mnist",
        .threshold = 128,
        .auto_hidden = 1024,
        .code_dim = 4,
        .auto_epochs = 30,
        .auto_batch = 64,
        .auto_lr = 3e-4f,
        .ebm_hidden = 8,
        .ebm_epochs = 3,
        .ebm_batch = 1024,
        .ebm_lr = 3e-4f,
        .samples_per_datapoint = 8,
        .mcmc_steps = 20,
        .mala = 1,
        .step_size = 0.05f,
        .seed = 1,
    };
}

ebm_status latent_config_check(const latent_config *c) {
    if (c->threshold < 1 || c->threshold > 255)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--binarize-threshold %d: use 1..255 (pixel bytes >= it become 1)",
                        c->threshold);
    if (c->auto_hidden < 1 || c->auto_hidden > 65536)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--auto_hidden_dim %d: use 1..65536", c->auto_hidden);
    if (c->code_dim < 1 || c->code_dim > 256)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--encoded_dim %d: use 1..256", c->code_dim);
    if (c->ebm_hidden < 1 || c->ebm_hidden > 4096)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--ebm_hidden_dim %d: use 1..4096", c->ebm_hidden);
    if (c->auto_batch < 1 || c->ebm_batch < 1)
        return ebm_fail(EBM_STATUS_BAD_ARG, "batch sizes must be >= 1 (--auto_batch_size %d, --ebm_batch_size %d)",
                        c->auto_batch, c->ebm_batch);
    if (c->auto_epochs < 0 || c->ebm_epochs < 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "epochs must be >= 0 (--auto_num_epochs %d, --ebm_num_epochs %d)",
                        c->auto_epochs, c->ebm_epochs);
    if (c->samples_per_datapoint < 1 || (long)c->samples_per_datapoint * c->ebm_batch > (1L << 24))
        return ebm_fail(EBM_STATUS_BAD_ARG,
                        "--mcmc_samples_per_datapoint %d x --ebm_batch_size %d chains: use 1 or more and at most "
                        "16M chains in all",
                        c->samples_per_datapoint, c->ebm_batch);
    if (c->mcmc_steps < 0) return ebm_fail(EBM_STATUS_BAD_ARG, "--mcmc_steps %d must be >= 0", c->mcmc_steps);
    if (!(c->step_size > 0) || !isfinite(c->step_size))
        return ebm_fail(EBM_STATUS_BAD_ARG, "--step_size %g must be > 0 (try 0.05)", (double)c->step_size);
    if (!(c->auto_lr > 0) || !(c->ebm_lr > 0))
        return ebm_fail(EBM_STATUS_BAD_ARG, "learning rates must be > 0 (--auto_lr %g, --ebm_lr %g)",
                        (double)c->auto_lr, (double)c->ebm_lr);
    return EBM_STATUS_OK;
}

/* ---- the JSON-lines log ------------------------------------------------------------ */

typedef struct {
    const char *path;
    int ae_keep, ebm_keep;   /* epochs whose lines survive a resume */
} log_filter;

/* Writes the lines of the old log that belong to epochs kept by the resume. */
static ebm_status filter_lines(FILE *out, void *ctx) {
    const log_filter *lf = ctx;
    FILE *in = fopen(lf->path, "r");
    if (!in) return EBM_STATUS_OK;
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "phase"),
                    *ep = cJSON_GetObjectItemCaseSensitive(j, "epoch");
        int keep = cJSON_IsString(ph) && cJSON_IsNumber(ep) &&
                   ((strcmp(ph->valuestring, "autoencoder") == 0 && ep->valuedouble <= lf->ae_keep) ||
                    (strcmp(ph->valuestring, "ebm") == 0 && ep->valuedouble <= lf->ebm_keep));
        cJSON_Delete(j);
        if (keep && fputs(line, out) < 0) {
            fclose(in);
            return ebm_fail(EBM_STATUS_IO, "write failed");
        }
    }
    fclose(in);
    return EBM_STATUS_OK;
}

static ebm_status log_open(const char *path, int ae_keep, int ebm_keep, FILE **out) {
    log_filter lf = {path, ae_keep, ebm_keep};
    if (ae_keep > 0 || ebm_keep > 0) EBM_TRY(io_write_atomic(path, filter_lines, &lf));
    *out = fopen(path, ae_keep > 0 || ebm_keep > 0 ? "a" : "w");
    if (!*out) return ebm_fail(EBM_STATUS_IO, "cannot open %s: %s", path, strerror(errno));
    return EBM_STATUS_OK;
}

/* ---- progress ---------------------------------------------------------------------- */

static void fmt_eta(char *buf, size_t len, double s) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, len, "?");
    else if (s >= 3600) snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else snprintf(buf, len, "%d:%02d", (int)s / 60, (int)s % 60);
}

static int show(const latent_run_opts *o, long it, long total) {
    return o->progress && (o->progress_tty || it == 1 || it == total || it % (o->log_every > 0 ? o->log_every : 200) == 0);
}

/* ---- the run ----------------------------------------------------------------------- */

typedef struct {
    const latent_config *c;
    const latent_run_opts *o;
    char ae_path[4096], ebm_path[4096], log_path[4096];
    dataset train, test;
    autoencoder ae;
    latent_ebm le;
    ae_info ai;
    lebm_info li;
    FILE *log;
    double t_run0, elapsed0;   /* this run's start, training seconds before it */
} run;

static double elapsed(const run *r) { return r->elapsed0 + (ebm_now() - r->t_run0); }

static ebm_status interrupted(const char *what, const char *path, int done) {
    return ebm_fail(EBM_STATUS_INTERRUPTED,
                    "interrupted during %s; %s holds the last finished epoch (%d): continue with --resume", what,
                    path, done);
}

static ebm_status train_autoencoder(run *r, latent_result *res) {
    const latent_config *c = r->c;
    const latent_run_opts *o = r->o;
    const int D = r->train.h * r->train.w;
    float *xb = ebm_alloc(sizeof(float) * (size_t)c->auto_batch * D);
    batcher bt;
    ebm_rng rng = rng_make(c->seed, LATENT_STREAM_AE);
    ebm_status s = xb ? batcher_init(&bt, &r->train, c->auto_batch, &rng)
                      : ebm_fail(EBM_STATUS_NOMEM, "out of memory for a batch of %d images", c->auto_batch);
    if (s != EBM_STATUS_OK) {
        ebm_free(xb);
        return s;
    }
    const long nb = (r->train.n + c->auto_batch - 1) / c->auto_batch, total = nb * c->auto_epochs;
    const double t0 = ebm_now();
    long its_run = 0;
    for (int e = r->ai.epochs_done; e < c->auto_epochs && s == EBM_STATUS_OK; e++) {
        rng.counter = (uint64_t)e << 40;
        batcher_reshuffle(&bt, &rng);
        double sum = 0;
        long k = 0, correct = 0, pixels = 0;
        const double te0 = ebm_now();
        for (int B; (B = batcher_next(&bt, xb, NULL)) > 0;) {
            if (o->stop && *o->stop) {
                s = interrupted("autoencoder training", r->ae_path, e);
                break;
            }
            long ok;
            const double bce = ae_train_step(&r->ae, xb, B, c->auto_lr, &ok);
            if (!isfinite(bce)) {
                s = ebm_fail(EBM_STATUS_DIVERGED,
                             "autoencoder diverged (BCE %g) in epoch %d; lower --auto_lr (now %g); %s holds epoch %d",
                             bce, e + 1, (double)c->auto_lr, r->ae_path, e);
                break;
            }
            sum += bce * B;
            correct += ok;
            pixels += (long)B * D;
            k++;
            its_run++;
            const long it = (long)e * nb + k;
            if (show(o, it, total)) {
                char eta[32];
                const double rate = its_run / (ebm_now() - t0);
                fmt_eta(eta, sizeof eta, (total - it) / rate);
                fprintf(o->progress, "%sautoencoder epoch %d/%d  it %ld/%ld  %.1f it/s  ETA %s  bce %.4f  acc %.4f%s",
                        o->progress_tty ? "\r\033[K" : "", e + 1, c->auto_epochs, it, total, rate, eta,
                        sum / ((double)pixels / D), (double)correct / pixels, o->progress_tty ? "" : "\n");
                fflush(o->progress);
            }
        }
        if (s != EBM_STATUS_OK) break;
        ae_evaluate(&r->ae, r->test.x, r->test.n, &r->ai.test_bce, &r->ai.test_accuracy);
        r->ai.epochs_done = e + 1;
        r->ai.train_seconds = elapsed(r);
        s = ae_save(&r->ae, &r->ai, 1, r->ae_path);
        if (s != EBM_STATUS_OK) break;
        const double train_bce = sum / ((double)pixels / D);
        fprintf(r->log,
                "{\"phase\":\"autoencoder\",\"epoch\":%d,\"iteration\":%ld,\"time\":%.3f,\"train_bce\":%.6f,"
                "\"test_bce\":%.6f,\"test_accuracy\":%.6f}\n",
                e + 1, (long)(e + 1) * nb, r->ai.train_seconds, train_bce, r->ai.test_bce, r->ai.test_accuracy);
        fflush(r->log);
        if (o->progress)
            fprintf(o->progress,
                    "%sautoencoder epoch %d/%d: train BCE %.4f, test BCE %.4f, test pixel accuracy %.4f (%.1f s)\n",
                    o->progress_tty ? "\r\033[K" : "", e + 1, c->auto_epochs, train_bce, r->ai.test_bce,
                    r->ai.test_accuracy, ebm_now() - te0);
        res->ae_epochs_run++;
    }
    res->ae_seconds = ebm_now() - t0;
    batcher_free(&bt);
    ebm_free(xb);
    return s;
}

static ebm_status train_ebm(run *r, const float *u, long n, latent_result *res) {
    const latent_config *c = r->c;
    const latent_run_opts *o = r->o;
    const int d = c->code_dim, B = c->ebm_batch, K = c->samples_per_datapoint;
    if (n < B)
        return ebm_fail(EBM_STATUS_BAD_ARG, "only %ld training codes but --ebm_batch_size %d: lower it (or --limit)",
                        n, B);
    const long nb = n / B, total = nb * c->ebm_epochs;
    int *perm = ebm_alloc(sizeof(int) * (size_t)n);
    float *pos = ebm_alloc(sizeof(float) * (size_t)B * d), *neg = ebm_alloc(sizeof(float) * (size_t)K * B * d);
    ebm_status s = EBM_STATUS_OK;
    if (!perm || !pos || !neg) s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d x %d chains", K, B);
    lebm_train_params tp = {.samples_per_datapoint = K, .steps = c->mcmc_steps, .lr = c->ebm_lr,
                            .lv = {.mala = c->mala, .eps = c->step_size, .sigma = -1, .grad_clip = 0,
                                   .lo = -INFINITY, .hi = INFINITY, .seed = c->seed}};
    const double t0 = ebm_now();
    long its_run = 0;
    for (int e = r->li.epochs_done; e < c->ebm_epochs && s == EBM_STATUS_OK; e++) {
        ebm_rng rng = rng_make(c->seed, LATENT_STREAM_EBM);
        rng.counter = (uint64_t)e << 40;
        rng_permutation(&rng, perm, (int)n);
        long proposed_acc = 0;
        double acc_sum = 0;
        for (long k = 0; k < nb; k++) {
            if (o->stop && *o->stop) {
                s = interrupted("latent EBM training", r->ebm_path, e);
                break;
            }
            for (int b = 0; b < B; b++) memcpy(pos + (size_t)b * d, u + (size_t)perm[k * B + b] * d, sizeof(float) * d);
            const long it = (long)e * nb + k + 1;
            lebm_step_stats st;
            s = lebm_train_step(&r->le, pos, B, &tp, (uint64_t)(it - 1), neg, &st);
            if (s != EBM_STATUS_OK) {
                ebm_error_prefix("%s holds epoch %d", r->ebm_path, e);
                break;
            }
            its_run++;
            acc_sum += st.acceptance;
            proposed_acc++;
            fprintf(r->log,
                    "{\"phase\":\"ebm\",\"epoch\":%d,\"iteration\":%ld,\"time\":%.3f,\"loss\":%.6g,\"e_pos\":%.6g,"
                    "\"e_neg\":%.6g,\"acceptance\":%.4f}\n",
                    e + 1, it, elapsed(r), st.e_pos - st.e_neg, st.e_pos, st.e_neg, st.acceptance);
            if (show(o, it, total)) {
                char eta[32];
                const double rate = its_run / (ebm_now() - t0);
                fmt_eta(eta, sizeof eta, (total - it) / rate);
                fprintf(o->progress,
                        "%slatent EBM epoch %d/%d  it %ld/%ld  %.2f it/s  ETA %s  E data %+.4f  E chains %+.4f  "
                        "acceptance %.3f%s",
                        o->progress_tty ? "\r\033[K" : "", e + 1, c->ebm_epochs, it, total, rate, eta, st.e_pos,
                        st.e_neg, st.acceptance, o->progress_tty ? "" : "\n");
                fflush(o->progress);
            }
        }
        fflush(r->log);
        if (s != EBM_STATUS_OK) break;
        r->li.epochs_done = e + 1;
        r->li.acceptance = proposed_acc ? acc_sum / proposed_acc : -1;
        r->li.train_seconds = elapsed(r);
        s = lebm_save(&r->le, &r->li, 1, r->ebm_path);
        if (s == EBM_STATUS_OK && o->progress)
            fprintf(o->progress, "%slatent EBM epoch %d/%d: mean %s acceptance %.3f\n", o->progress_tty ? "\r\033[K" : "",
                    e + 1, c->ebm_epochs, c->mala ? "MALA" : "(ULA)", r->li.acceptance);
        res->acceptance = r->li.acceptance;
        res->ebm_epochs_run++;
    }
    res->ebm_seconds = ebm_now() - t0;
    ebm_free(perm);
    ebm_free(pos);
    ebm_free(neg);
    return s;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A resumed file must have the architecture the flags ask for. */
static ebm_status check_same(const char *path, const char *what, const char *flag, long file, long want) {
    if (file == want) return EBM_STATUS_OK;
    return ebm_fail(EBM_STATUS_BAD_ARG,
                    "--resume: %s has %s %ld but %s is %ld; repeat the first run's flags (%s %ld) or use another "
                    "--out-dir",
                    path, what, file, flag, want, flag, file);
}

static ebm_status setup_ae(run *r) {
    const latent_config *c = r->c;
    const int D = r->train.h * r->train.w;
    if (r->o->resume && file_exists(r->ae_path)) {
        EBM_TRY(ae_load(r->ae_path, c->auto_batch, &r->ae, &r->ai));
        ebm_status s = check_same(r->ae_path, "hidden_dim", "--auto_hidden_dim", r->ae.hidden, c->auto_hidden);
        if (s == EBM_STATUS_OK) s = check_same(r->ae_path, "encoded_dim", "--encoded_dim", r->ae.code_dim, c->code_dim);
        if (s == EBM_STATUS_OK)
            s = check_same(r->ae_path, "binarize_threshold", "--binarize-threshold", r->ai.binarize_threshold,
                           c->threshold);
        if (s == EBM_STATUS_OK && r->ae.in_dim != D)
            s = ebm_fail(EBM_STATUS_BAD_ARG, "--resume: %s models %d pixels but the data has %d", r->ae_path,
                         r->ae.in_dim, D);
        if (s == EBM_STATUS_OK && r->ai.seed != c->seed)
            s = check_same(r->ae_path, "seed", "--seed", (long)r->ai.seed, (long)c->seed);
        return s;
    }
    r->ai = (ae_info){.binarize_threshold = c->threshold, .seed = c->seed, .test_bce = -1, .test_accuracy = -1};
    return ae_create(&r->ae, D, c->auto_hidden, c->code_dim, c->auto_batch, c->seed);
}

/* The EBM to continue: the file's when resuming on the same autoencoder, else a new one
 * fitted to the codes' mean and spread. */
static ebm_status setup_ebm(run *r, int ae_changed, const float *z, long n) {
    const latent_config *c = r->c;
    const int max_batch = c->samples_per_datapoint * c->ebm_batch;
    if (r->o->resume && !ae_changed && file_exists(r->ebm_path)) {
        EBM_TRY(lebm_load(r->ebm_path, max_batch, &r->le, &r->li));
        ebm_status s = lebm_check_pair(&r->ae, r->ae_path, &r->le, &r->li, r->ebm_path);
        if (s == EBM_STATUS_OK) s = check_same(r->ebm_path, "hidden_dim", "--ebm_hidden_dim", r->le.hidden, c->ebm_hidden);
        if (s == EBM_STATUS_OK) return EBM_STATUS_OK;
        lebm_free(&r->le);
        return s;
    }
    if (r->o->resume && ae_changed && file_exists(r->ebm_path) && r->o->progress)
        fprintf(r->o->progress, "the autoencoder changed in this run: training a new latent EBM\n");
    EBM_TRY(lebm_create(&r->le, c->code_dim, c->ebm_hidden, max_batch, c->seed));
    lebm_fit_standardization(&r->le, z, n);
    r->li = (lebm_info){.seed = c->seed, .acceptance = -1};
    return EBM_STATUS_OK;
}

ebm_status latent_train(const latent_config *c, const latent_run_opts *o, latent_result *res) {
    EBM_TRY(latent_config_check(c));
    memset(res, 0, sizeof *res);
    res->test_bce = res->test_accuracy = res->acceptance = -1;
    run *r = calloc(1, sizeof *r);
    if (!r) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    r->c = c;
    r->o = o;
    snprintf(r->ae_path, sizeof r->ae_path, "%s/%s", o->out_dir, LATENT_AE_FILE);
    snprintf(r->ebm_path, sizeof r->ebm_path, "%s/%s", o->out_dir, LATENT_EBM_FILE);
    snprintf(r->log_path, sizeof r->log_path, "%s/%s", o->out_dir, LATENT_METRICS_FILE);
    r->t_run0 = ebm_now();
    float *z = NULL;
    ebm_status s = dataset_load_dir(c->data_dir, "train", 0x3ff, c->limit, &r->train);
    if (s == EBM_STATUS_OK) s = dataset_load_dir(c->data_dir, "t10k", 0x3ff, c->test_limit, &r->test);
    if (s != EBM_STATUS_OK) goto done;
    binarize_u8_to01(r->train.x, (long)r->train.n * r->train.h * r->train.w, c->threshold, r->train.x);
    binarize_u8_to01(r->test.x, (long)r->test.n * r->test.h * r->test.w, c->threshold, r->test.x);
    if ((s = setup_ae(r)) != EBM_STATUS_OK) goto done;
    const int ae_done0 = r->ai.epochs_done;
    const int ae_changed = ae_done0 < c->auto_epochs || !o->resume;
    /* the EBM checkpoint's epoch count decides which of its log lines survive */
    int ebm_keep = 0;
    if (o->resume && !ae_changed && file_exists(r->ebm_path)) {
        lebm_info li;
        latent_ebm tmp;
        if (lebm_load(r->ebm_path, 1, &tmp, &li) == EBM_STATUS_OK) {
            ebm_keep = li.epochs_done;
            r->elapsed0 = li.train_seconds;
            lebm_free(&tmp);
        }
    }
    if (!ebm_keep) r->elapsed0 = o->resume ? r->ai.train_seconds : 0;
    if ((s = log_open(r->log_path, o->resume ? ae_done0 : 0, ebm_keep, &r->log)) != EBM_STATUS_OK) goto done;
    if (o->progress) {
        if (o->resume)
            fprintf(o->progress, "resuming %s: autoencoder at epoch %d of %d%s\n", o->out_dir, ae_done0,
                    c->auto_epochs, ebm_keep ? ", latent EBM trained too" : "");
        fprintf(o->progress,
                "latent pipeline on %d binarized images (threshold %d) from %s: autoencoder %d-%d-%d-%d-%d "
                "(%zu parameters), %d epochs of batch %d, lr %g; latent EBM %d-%d-%d-1, %d epochs of batch %d, "
                "%d chains per code, %d %s steps of size %g, lr %g\n",
                r->train.n, c->threshold, c->data_dir, r->ae.in_dim, c->auto_hidden, c->code_dim, c->auto_hidden,
                r->ae.in_dim, r->ae.enc.nparams + r->ae.dec.nparams, c->auto_epochs, c->auto_batch,
                (double)c->auto_lr, c->code_dim, c->ebm_hidden, c->ebm_hidden, c->ebm_epochs, c->ebm_batch,
                c->samples_per_datapoint, c->mcmc_steps, c->mala ? "MALA" : "ULA", (double)c->step_size,
                (double)c->ebm_lr);
    }
    if ((s = train_autoencoder(r, res)) != EBM_STATUS_OK) goto done;
    res->test_bce = r->ai.test_bce;
    res->test_accuracy = r->ai.test_accuracy;
    if (r->ai.epochs_done == 0) {
        s = ebm_fail(EBM_STATUS_BAD_ARG, "--auto_num_epochs 0: the EBM needs a trained autoencoder");
        goto done;
    }
    const long n = r->train.n;
    z = ebm_alloc(sizeof(float) * (size_t)n * c->code_dim);
    if (!z) {
        s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for %ld codes", n);
        goto done;
    }
    ae_encode(&r->ae, r->train.x, n, z);
    if ((s = setup_ebm(r, ae_changed, z, n)) != EBM_STATUS_OK) goto done;
    r->li.ae_fingerprint = ae_fingerprint(&r->ae);
    r->li.sampler_mala = c->mala;
    r->li.mcmc_steps = c->mcmc_steps;
    r->li.step_size = c->step_size;
    r->li.samples_per_datapoint = c->samples_per_datapoint;
    lebm_standardize(&r->le, z, n, z);
    s = train_ebm(r, z, n, res);
    if (s == EBM_STATUS_OK && res->acceptance < 0) res->acceptance = r->li.acceptance;
    if (s == EBM_STATUS_OK && r->li.epochs_done == 0 && c->ebm_epochs == 0 && !file_exists(r->ebm_path))
        s = lebm_save(&r->le, &r->li, 1, r->ebm_path); /* an untrained EBM = the Gaussian base alone */
done:
    if (r->log) fclose(r->log);
    ebm_free(z);
    lebm_free(&r->le);
    ae_free(&r->ae);
    dataset_free(&r->train);
    dataset_free(&r->test);
    free(r);
    return s;
}
