/* trainer.c - configuration, positives, checkpoints with exact resume, and the training
 * loop (see trainer.h for the mathematics and the random numbers). */
#include "trainer.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/common.h"
#include "../core/rng.h"
#include "../io/checkpoint.h"
#include "../io/curves.h"
#include "../io/image.h"
#include "../io/metrics.h"

struct trainer {
    train_config cfg;
    const dataset *d;
    net *n;
    train_backend be;
    uint64_t iter;          /* completed iterations */
    double elapsed;         /* training seconds, summed over resumes */
    int nb;                 /* batches per epoch */
    int *perm;              /* permutation of epoch perm_epoch */
    int64_t perm_epoch;
    float *xb;              /* (B, D) positives */
    int *yb;                /* (B) their labels */
    float *buffer;          /* host copy of the replay buffer, for saving */
    uint64_t saved_iter;    /* iteration of the last checkpoint written or resumed from */
    int saved;              /* whether such a checkpoint exists */
};

/* ---- configuration -------------------------------------------------------------------- */

void train_config_default(train_config *c) {
    memset(c, 0, sizeof *c);
    train_hparams *h = &c->hp;
    h->batch = 128;
    h->n_samples = 128;
    h->steps = 60;
    h->lv.mala = 0;
    h->lv.eps = 10.0f;
    h->lv.sigma = 0.005f;
    h->lv.grad_clip = 0.03f;
    h->lv.lo = -1.0f;
    h->lv.hi = 1.0f;
    h->alpha = 0.1f;
    h->lr = 1e-4f;
    h->beta1 = 0.0f;
    h->beta2 = 0.999f;
    h->adam_eps = 1e-8f;
    h->data_noise = 0.005f;
    h->buffer_size = TRAIN_DEFAULT_BUFFER;
    h->reinit = 0.05f;
    h->conditional = 0;
    snprintf(c->arch, sizeof c->arch, "cnn-small");
    snprintf(c->data_dir, sizeof c->data_dir, "data/mnist");
    snprintf(c->digits, sizeof c->digits, "all");
    c->seed = 0;
    c->limit = 0;
    c->iters = 0;
}

char *train_config_to_json(const train_config *c) {
    const train_hparams *h = &c->hp;
    cJSON *j = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    cJSON_AddStringToObject(j, "arch", c->arch);
    cJSON_AddStringToObject(j, "seed", seed); /* a string: JSON numbers lose bits past 2^53 */
    cJSON_AddStringToObject(j, "data", c->data_dir);
    cJSON_AddStringToObject(j, "digits", c->digits);
    cJSON_AddNumberToObject(j, "limit", c->limit);
    cJSON_AddNumberToObject(j, "iters", (double)c->iters);
    cJSON_AddNumberToObject(j, "batch", h->batch);
    cJSON_AddNumberToObject(j, "n_samples", h->n_samples);
    cJSON_AddNumberToObject(j, "langevin_steps", h->steps);
    cJSON_AddNumberToObject(j, "eps", h->lv.eps);
    cJSON_AddNumberToObject(j, "noise", h->lv.sigma);
    cJSON_AddNumberToObject(j, "grad_clip", h->lv.grad_clip);
    cJSON_AddNumberToObject(j, "range_lo", h->lv.lo);
    cJSON_AddNumberToObject(j, "range_hi", h->lv.hi);
    cJSON_AddNumberToObject(j, "alpha", h->alpha);
    cJSON_AddNumberToObject(j, "lr", h->lr);
    cJSON_AddNumberToObject(j, "beta1", h->beta1);
    cJSON_AddNumberToObject(j, "beta2", h->beta2);
    cJSON_AddNumberToObject(j, "adam_eps", h->adam_eps);
    cJSON_AddNumberToObject(j, "data_noise", h->data_noise);
    cJSON_AddNumberToObject(j, "buffer", h->buffer_size);
    cJSON_AddNumberToObject(j, "reinit", h->reinit);
    cJSON_AddBoolToObject(j, "conditional", h->conditional);
    cJSON_AddNumberToObject(j, "marginal", h->marginal);
    cJSON_AddNumberToObject(j, "marginal_chains", h->marginal_chains);
    cJSON_AddStringToObject(j, "lr_decay", c->lr_cosine ? "cosine" : "none");
    cJSON_AddNumberToObject(j, "lr_final", c->lr_final);
    if (c->init[0]) cJSON_AddStringToObject(j, "init", c->init);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static int get_num(const cJSON *j, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(x)) return 0;
    *v = x->valuedouble;
    return 1;
}

static void get_str(const cJSON *j, const char *key, char *dst, size_t len) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, key);
    if (cJSON_IsString(x)) snprintf(dst, len, "%s", x->valuestring);
}

ebm_status train_config_from_json(const char *json, train_config *c) {
    cJSON *j = cJSON_Parse(json);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return ebm_fail(EBM_STATUS_BAD_FILE, "training config is not a JSON object");
    }
    train_hparams *h = &c->hp;
    double v;
    char seed[32] = "";
    get_str(j, "arch", c->arch, sizeof c->arch);
    get_str(j, "seed", seed, sizeof seed);
    if (seed[0]) c->seed = strtoull(seed, NULL, 10);
    get_str(j, "data", c->data_dir, sizeof c->data_dir);
    get_str(j, "digits", c->digits, sizeof c->digits);
    if (get_num(j, "limit", &v)) c->limit = (int)v;
    if (get_num(j, "iters", &v)) c->iters = (uint64_t)v;
    if (get_num(j, "batch", &v)) h->batch = (int)v;
    if (get_num(j, "n_samples", &v)) h->n_samples = (int)v;
    if (get_num(j, "langevin_steps", &v)) h->steps = (int)v;
    if (get_num(j, "eps", &v)) h->lv.eps = (float)v;
    if (get_num(j, "noise", &v)) h->lv.sigma = (float)v;
    if (get_num(j, "grad_clip", &v)) h->lv.grad_clip = (float)v;
    if (get_num(j, "range_lo", &v)) h->lv.lo = (float)v;
    if (get_num(j, "range_hi", &v)) h->lv.hi = (float)v;
    if (get_num(j, "alpha", &v)) h->alpha = (float)v;
    if (get_num(j, "lr", &v)) h->lr = (float)v;
    if (get_num(j, "beta1", &v)) h->beta1 = (float)v;
    if (get_num(j, "beta2", &v)) h->beta2 = (float)v;
    if (get_num(j, "adam_eps", &v)) h->adam_eps = (float)v;
    if (get_num(j, "data_noise", &v)) h->data_noise = (float)v;
    if (get_num(j, "buffer", &v)) h->buffer_size = (int)v;
    if (get_num(j, "reinit", &v)) h->reinit = (float)v;
    if (get_num(j, "marginal", &v)) h->marginal = h->marginal_chains = (float)v; /* one share before */
    if (get_num(j, "marginal_chains", &v)) h->marginal_chains = (float)v;
    const cJSON *cond = cJSON_GetObjectItemCaseSensitive(j, "conditional");
    if (cJSON_IsBool(cond)) h->conditional = cJSON_IsTrue(cond);
    char decay[16] = "";
    get_str(j, "lr_decay", decay, sizeof decay);
    if (decay[0]) c->lr_cosine = strcmp(decay, "cosine") == 0;
    if (get_num(j, "lr_final", &v)) c->lr_final = (float)v;
    get_str(j, "init", c->init, sizeof c->init);
    cJSON_Delete(j);
    return EBM_STATUS_OK;
}

float trainer_lr(const train_config *c, uint64_t it) {
    if (!c->lr_cosine || c->iters == 0) return c->hp.lr;
    const double f = it >= c->iters ? 1.0 : (double)it / (double)c->iters;
    return (float)(c->lr_final + 0.5 * (c->hp.lr - c->lr_final) * (1.0 + cos(M_PI * f)));
}

ebm_status train_config_check(const train_config *c) {
    const train_hparams *h = &c->hp;
#define BAD(...) return ebm_fail(EBM_STATUS_BAD_ARG, __VA_ARGS__)
    if (h->batch < 1) BAD("--batch must be at least 1 (got %d)", h->batch);
    if (h->n_samples < 1) BAD("--n-samples must be at least 1 (got %d)", h->n_samples);
    if (h->steps < 0) BAD("--langevin-steps must be >= 0 (got %d)", h->steps);
    if (!(h->lv.eps >= 0) || !isfinite(h->lv.eps)) BAD("--eps must be a finite number >= 0 (got %g)", h->lv.eps);
    if (isnan(h->lv.sigma) || isinf(h->lv.sigma)) BAD("--noise must be a number or 'auto' (got %g)", h->lv.sigma);
    if (!(h->alpha >= 0)) BAD("--alpha must be >= 0 (got %g)", h->alpha);
    if (!(h->lr > 0) || !isfinite(h->lr)) BAD("--lr must be a positive number (got %g)", h->lr);
    if (!(h->beta1 >= 0 && h->beta1 < 1)) BAD("--beta1 must be in [0, 1) (got %g)", h->beta1);
    if (!(h->beta2 >= 0 && h->beta2 < 1)) BAD("--beta2 must be in [0, 1) (got %g)", h->beta2);
    if (!(h->adam_eps > 0)) BAD("Adam epsilon must be positive (got %g)", h->adam_eps);
    if (!(h->data_noise >= 0)) BAD("--data-noise must be >= 0 (got %g)", h->data_noise);
    if (h->buffer_size < 0) BAD("--buffer must be >= 0 (got %d; 0 means short-run chains from noise)", h->buffer_size);
    if (!(h->reinit >= 0 && h->reinit <= 1)) BAD("--reinit must be a probability in [0, 1] (got %g)", h->reinit);
    if (c->limit < 0) BAD("--limit must be >= 0 (got %d)", c->limit);
    if (!(h->marginal >= 0 && h->marginal <= 1)) BAD("--marginal must be a share in [0, 1] (got %g)", h->marginal);
    if (!(h->marginal_chains >= 0 && h->marginal_chains <= 1))
        BAD("--marginal-chains must be a share in [0, 1] (got %g)", h->marginal_chains);
    if ((h->marginal > 0 || h->marginal_chains > 0) && !h->conditional)
        BAD("%s %g needs --conditional (an unconditional model trains only the marginal)",
            h->marginal > 0 ? "--marginal" : "--marginal-chains", h->marginal > 0 ? h->marginal : h->marginal_chains);
    if (!(c->lr_final >= 0 && c->lr_final <= h->lr))
        BAD("--lr-final must be between 0 and --lr (got %g with --lr %g)", c->lr_final, h->lr);
    if ((uint64_t)h->n_samples * (c->iters + 1) > UINT32_MAX)
        BAD("--n-samples x iterations must stay below 2^32 (chain indices of the random numbers)");
#undef BAD
    return EBM_STATUS_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

void trainer_free(trainer *t) {
    if (!t) return;
    if (t->be.destroy) t->be.destroy(t->be.ctx);
    net_free(t->n);
    ebm_free(t->perm);
    ebm_free(t->xb);
    ebm_free(t->yb);
    ebm_free(t->buffer);
    ebm_free(t);
}

/* Everything but the parameters: buffers, backend.  The net is already in t->n. */
static ebm_status setup(trainer *t, const train_config *c, const dataset *d, train_place where) {
    t->cfg = *c;
    t->cfg.hp.lv.seed = c->seed;
    t->cfg.hp.lv.mala = 0;
    t->cfg.hp.tf32 = where.tf32;
    t->d = d;
    t->perm_epoch = -1;
    const train_hparams *h = &t->cfg.hp;
    EBM_TRY(train_config_check(&t->cfg));
    if (d->h * d->w != t->n->in_dim)
        return ebm_fail(EBM_STATUS_BAD_ARG, "images of %dx%d do not fit architecture '%s' (input of %d values)", d->h,
                        d->w, t->n->spec, t->n->in_dim);
    if (d->n < h->batch)
        return ebm_fail(EBM_STATUS_BAD_ARG, "only %d images selected (--digits %s, --limit %d) but --batch is %d: lower --batch",
                        d->n, c->digits, c->limit, h->batch);
    if (h->conditional && t->n->out_dim < 2)
        return ebm_fail(EBM_STATUS_BAD_ARG, "--conditional needs a model with one output per class (--arch cnn-small-cond); "
                                            "'%s' has one output", c->arch);
    if (h->conditional && !d->y) return ebm_fail(EBM_STATUS_BAD_ARG, "--conditional needs labels, and the data has none");
    if (h->conditional)
        for (int i = 0; i < d->n; i++)
            if (d->y[i] >= t->n->out_dim)
                return ebm_fail(EBM_STATUS_BAD_ARG, "label %d does not fit a model with %d classes", d->y[i], t->n->out_dim);
    if (h->conditional) { /* chains are drawn for the training digits only (trainer.h, 2.) */
        uint16_t mask;
        EBM_TRY(digits_parse(c->digits, &mask));
        t->cfg.hp.classes = mask;
    }
    t->nb = d->n / h->batch;
    net_set_threads(t->n, where.threads);
    t->perm = ebm_alloc(sizeof(int) * (size_t)d->n);
    t->xb = ebm_alloc(sizeof(float) * (size_t)h->batch * (size_t)t->n->in_dim);
    t->yb = ebm_alloc(sizeof(int) * (size_t)h->batch);
    if (h->buffer_size) t->buffer = ebm_alloc(sizeof(float) * (size_t)h->buffer_size * (size_t)t->n->in_dim);
    if (!t->perm || !t->xb || !t->yb || (h->buffer_size && !t->buffer))
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for batches and the replay buffer");
    if (where.device < 0) {
        if (where.gpus > 1) return ebm_fail(EBM_STATUS_BAD_ARG, "--gpus %d needs --device cuda", where.gpus);
        if (where.tf32) return ebm_fail(EBM_STATUS_BAD_ARG, "--precision tf32 needs --device cuda");
        return backend_cpu_create(t->n, h, &t->be);
    }
    return backend_cuda_multi_create(t->n, h, where.device, where.gpus, &t->be);
}

ebm_status trainer_create(const train_config *c, const dataset *d, train_place where, trainer **out) {
    *out = NULL;
    trainer *t = ebm_alloc(sizeof *t);
    if (!t) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    ebm_status s = net_create(&t->n, c->arch, c->seed);
    if (s == EBM_STATUS_OK) s = setup(t, c, d, where);
    if (s != EBM_STATUS_OK) {
        trainer_free(t);
        return s;
    }
    *out = t;
    return EBM_STATUS_OK;
}

/* Reads the state keys of an open checkpoint. */
static ebm_status read_state(const st_file *f, train_config *c, uint64_t *iteration, double *elapsed) {
    const char *src = f->source ? f->source : "checkpoint";
    const char *format = st_meta(f, "format"), *cfg = st_meta(f, "train_config"), *it = st_meta(f, "iteration");
    if (!format || strcmp(format, CKPT_FORMAT_TRAIN) != 0 || !cfg || !it)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s is a model without training state (no optimizer moments, buffer or iteration): cannot "
                        "resume from it; start a new run instead",
                        src);
    if (c) {
        train_config_default(c);
        ebm_status s = train_config_from_json(cfg, c);
        if (s != EBM_STATUS_OK) {
            ebm_error_prefix("%s", src);
            return s;
        }
    }
    char *end;
    unsigned long long v = strtoull(it, &end, 10);
    if (*end || end == it) return ebm_fail(EBM_STATUS_BAD_FILE, "%s: iteration '%s' is not a number", src, it);
    if (iteration) *iteration = v;
    const char *el = st_meta(f, "elapsed_s");
    if (elapsed) *elapsed = el ? strtod(el, NULL) : 0.0;
    return EBM_STATUS_OK;
}

ebm_status trainer_init_from(trainer *t, const char *path) {
    if (t->iter != 0) return ebm_fail(EBM_STATUS_BAD_ARG, "--init %s: only a fresh run starts from another model", path);
    st_file f;
    EBM_TRY(ckpt_open(path, &f));
    net *src = NULL;
    ebm_status s = ckpt_load_net(&f, 0, &src);
    st_free(&f);
    if (s == EBM_STATUS_OK && strcmp(src->spec, t->n->spec) != 0)
        s = ebm_fail(EBM_STATUS_BAD_ARG, "--init %s: its architecture is '%s', this run's is '%s' (--arch)", path,
                     src->spec, t->n->spec);
    if (s == EBM_STATUS_OK) {
        memcpy(t->n->params, src->params, sizeof(float) * t->n->nparams);
        s = t->be.push(t->be.ctx, t->n, NULL);
        snprintf(t->cfg.init, sizeof t->cfg.init, "%s", path);
    }
    net_free(src);
    return s;
}

ebm_status trainer_peek(const char *path, train_config *c, uint64_t *iteration, double *elapsed) {
    st_file f;
    EBM_TRY(ckpt_open(path, &f));
    ebm_status s = read_state(&f, c, iteration, elapsed);
    st_free(&f);
    return s;
}

ebm_status trainer_resume(const char *path, const train_config *c, const dataset *d, train_place where,
                          trainer **out) {
    *out = NULL;
    st_file f;
    EBM_TRY(ckpt_open(path, &f));
    train_config fc;
    trainer *t = NULL;
    ebm_status s = read_state(&f, &fc, NULL, NULL);
    if (s == EBM_STATUS_OK) {
        char a[NET_SPEC_MAX], b[NET_SPEC_MAX];
        if (net_spec_expand(c->arch, a, sizeof a) != EBM_STATUS_OK || net_spec_expand(fc.arch, b, sizeof b) != EBM_STATUS_OK ||
            strcmp(a, b) != 0)
            s = ebm_fail(EBM_STATUS_BAD_ARG, "%s was trained with --arch %s; cannot resume it as --arch %s", path, fc.arch,
                         c->arch);
        else if (c->seed != fc.seed)
            s = ebm_fail(EBM_STATUS_BAD_ARG, "%s was trained with --seed %llu; a resumed run keeps its seed", path,
                         (unsigned long long)fc.seed);
        else if (c->hp.buffer_size != fc.hp.buffer_size)
            s = ebm_fail(EBM_STATUS_BAD_ARG, "%s has a replay buffer of %d; cannot resume with --buffer %d", path,
                         fc.hp.buffer_size, c->hp.buffer_size);
        else if (c->hp.n_samples != fc.hp.n_samples)
            s = ebm_fail(EBM_STATUS_BAD_ARG, "%s was trained with --n-samples %d; cannot resume with %d", path,
                         fc.hp.n_samples, c->hp.n_samples);
        else if (c->hp.conditional != fc.hp.conditional)
            s = ebm_fail(EBM_STATUS_BAD_ARG, "%s was trained %s --conditional; resume it the same way", path,
                         fc.hp.conditional ? "with" : "without");
    }
    if (s == EBM_STATUS_OK) {
        t = ebm_alloc(sizeof *t);
        if (!t) s = ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    }
    if (s == EBM_STATUS_OK) s = ckpt_load_net(&f, c->seed, &t->n);
    if (s == EBM_STATUS_OK) s = read_state(&f, NULL, &t->iter, &t->elapsed);
    if (s == EBM_STATUS_OK) s = st_get_f32(&f, "adam.m", t->n->adam_m, t->n->nparams);
    if (s == EBM_STATUS_OK) s = st_get_f32(&f, "adam.v", t->n->adam_v, t->n->nparams);
    if (s == EBM_STATUS_OK) s = setup(t, c, d, where);
    if (s == EBM_STATUS_OK && t->cfg.hp.buffer_size)
        s = st_get_f32(&f, "buffer", t->buffer, (size_t)t->cfg.hp.buffer_size * (size_t)t->n->in_dim);
    if (s == EBM_STATUS_OK) s = t->be.push(t->be.ctx, t->n, t->buffer);
    st_free(&f);
    if (s != EBM_STATUS_OK) {
        trainer_free(t);
        return s;
    }
    t->saved = 1;
    t->saved_iter = t->iter;
    *out = t;
    return EBM_STATUS_OK;
}

/* ---- one iteration ---------------------------------------------------------------------- */

static void load_batch(trainer *t, uint64_t it) {
    const int B = t->cfg.hp.batch, D = t->n->in_dim;
    int64_t e = (int64_t)(it / (uint64_t)t->nb);
    int k = (int)(it % (uint64_t)t->nb);
    if (e != t->perm_epoch) {
        ebm_rng r = rng_make(t->cfg.seed, RNG_STREAM_DATA);
        r.counter = (uint64_t)e << 40;
        rng_permutation(&r, t->perm, t->d->n);
        t->perm_epoch = e;
    }
    for (int i = 0; i < B; i++) {
        int idx = t->perm[k * B + i];
        memcpy(t->xb + (size_t)i * D, t->d->x + (size_t)idx * D, sizeof(float) * (size_t)D);
        t->yb[i] = t->d->y ? t->d->y[idx] : 0;
    }
    /* the first positives of a conditional model's batch may train the marginal (label -1) */
    const int nm = t->cfg.hp.conditional ? train_marginal_count(t->cfg.hp.marginal, B) : 0;
    for (int i = 0; i < nm; i++) t->yb[i] = -1;
}

ebm_status trainer_step(trainer *t, train_step_stats *st) {
    const uint64_t it = t->iter;
    load_batch(t, it);
    memset(st, 0, sizeof *st);
    train_hparams hp = t->cfg.hp;
    hp.lr = trainer_lr(&t->cfg, it);
    ebm_status s = t->be.train_step(t->be.ctx, t->xb, t->yb, hp.batch, &hp, it, st);
    if (s == EBM_STATUS_OK && !(fabsf(st->e_pos) <= TRAIN_ENERGY_LIMIT && fabsf(st->e_neg) <= TRAIN_ENERGY_LIMIT))
        s = ebm_fail(EBM_STATUS_DIVERGED, "mean energies E+ %g, E- %g (beyond +-%g)", st->e_pos, st->e_neg,
                     TRAIN_ENERGY_LIMIT);
    if (s != EBM_STATUS_OK) {
        if (s == EBM_STATUS_DIVERGED) ebm_error_prefix("diverged at iteration %llu", (unsigned long long)(it + 1));
        return s;
    }
    t->iter = it + 1;
    if (t->be.verify && t->iter % TRAIN_VERIFY_EVERY == 0) return t->be.verify(t->be.ctx, t->iter);
    return EBM_STATUS_OK;
}

/* ---- saving, sampling, accessors ------------------------------------------------------ */

/* A checkpoint must load again, and the loader refuses NaN/Inf: never write one. */
static ebm_status check_finite(const trainer *t, const char *path) {
    const net *n = t->n;
    for (size_t i = 0; i < n->nparams; i++)
        if (!isfinite(n->params[i]) || !isfinite(n->adam_m[i]) || !isfinite(n->adam_v[i]))
            return ebm_fail(EBM_STATUS_DIVERGED, "not writing %s: parameter %zu is not finite at iteration %llu", path, i,
                            (unsigned long long)t->iter);
    return EBM_STATUS_OK;
}

ebm_status trainer_save(trainer *t, const char *path) {
    if (t->be.verify) EBM_TRY(t->be.verify(t->be.ctx, t->iter));
    EBM_TRY(t->be.pull(t->be.ctx, t->n, t->buffer));
    EBM_TRY(check_finite(t, path));
    const net *n = t->n;
    ckpt_tensor extra[3] = {
        {"adam.m", n->adam_m, 1, {(int64_t)n->nparams}},
        {"adam.v", n->adam_v, 1, {(int64_t)n->nparams}},
        {"buffer", t->buffer, 4, {t->cfg.hp.buffer_size, n->in_c, n->in_h, n->in_w}},
    };
    char *cfg = train_config_to_json(&t->cfg);
    if (!cfg) return ebm_fail(EBM_STATUS_NOMEM, "cannot write %s: out of memory", path);
    char iter[32], elapsed[32];
    snprintf(iter, sizeof iter, "%llu", (unsigned long long)t->iter);
    snprintf(elapsed, sizeof elapsed, "%.3f", t->elapsed);
    const ckpt_meta meta[] = {
        {"iteration", iter},
        {"elapsed_s", elapsed},
        {"train_config", cfg},
        {"rng", "philox4x32-10; every draw is a function of (seed, stream, iteration, index): see src/train/trainer.h"},
    };
    ebm_status s = ckpt_save(path, n, CKPT_FORMAT_TRAIN, extra, t->cfg.hp.buffer_size ? 3 : 2, meta, 4);
    cJSON_free(cfg);
    if (s == EBM_STATUS_OK) {
        t->saved = 1;
        t->saved_iter = t->iter;
    }
    return s;
}

ebm_status trainer_export(trainer *t, const char *path) {
    EBM_TRY(t->be.pull(t->be.ctx, t->n, NULL));
    EBM_TRY(check_finite(t, path));
    char *cfg = train_config_to_json(&t->cfg);
    if (!cfg) return ebm_fail(EBM_STATUS_NOMEM, "cannot write %s: out of memory", path);
    char iter[32];
    snprintf(iter, sizeof iter, "%llu", (unsigned long long)t->iter);
    const ckpt_meta meta[] = {{"iteration", iter}, {"train_config", cfg}};
    ebm_status s = ckpt_save(path, t->n, CKPT_FORMAT_MODEL, NULL, 0, meta, 2);
    cJSON_free(cfg);
    return s;
}

ebm_status trainer_sample(trainer *t, float *x, int n, int steps, uint64_t seed) {
    const int D = t->n->in_dim;
    const train_hparams *h = &t->cfg.hp;
    int *y = NULL;
    if (h->conditional) {
        y = ebm_alloc(sizeof(int) * (size_t)n);
        if (!y) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
        int cls[TRAIN_MAX_CLASSES];
        const int nc = train_chain_classes(h->classes, t->n->out_dim, cls);
        for (int i = 0; i < n; i++) y[i] = cls[i % nc];
    }
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * D;
        rng_uniform_fill(seed, RNG_STREAM_START, (uint32_t)i, 0, xi, D);
        for (int k = 0; k < D; k++) xi[k] = h->lv.lo + (h->lv.hi - h->lv.lo) * xi[k];
    }
    langevin_params lv = h->lv;
    lv.seed = seed;
    lv.chain0 = 0;
    lv.step0 = 0;
    ebm_status s = t->be.sample(t->be.ctx, x, y, n, steps, &lv, NULL, NULL, NULL, 0);
    ebm_free(y);
    return s;
}

uint64_t trainer_iteration(const trainer *t) { return t->iter; }
int trainer_batches_per_epoch(const trainer *t) { return t->nb; }
const train_config *trainer_config(const trainer *t) { return &t->cfg; }

net *trainer_net(trainer *t) {
    EBM_ASSERT(t->be.pull(t->be.ctx, t->n, NULL) == EBM_STATUS_OK);
    return t->n;
}

ebm_status trainer_buffer(trainer *t, float *dst) { return t->be.pull(t->be.ctx, t->n, dst); }

/* ---- the loop ------------------------------------------------------------------------- */

static void fmt_duration(char *buf, size_t len, double s) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, len, "?");
        return;
    }
    long v = (long)(s + 0.5);
    if (v >= 3600) snprintf(buf, len, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else snprintf(buf, len, "%ld:%02ld", v / 60, v % 60);
}

static void progress(trainer *t, const train_run_opts *o, const train_step_stats *st, double rate, int final) {
    const uint64_t it = t->iter, total = t->cfg.iters, nb = (uint64_t)t->nb;
    char eta[32];
    fmt_duration(eta, sizeof eta, rate > 0 ? (double)(total - it) / rate : -1);
    fprintf(o->progress, "%sepoch %llu/%llu  it %llu/%llu  %.2f it/s  ETA %s  loss %+.4f  E+ %+.4f  E- %+.4f%s",
            o->progress_tty ? "\r\033[K" : "", (unsigned long long)((it - 1) / nb + 1),
            (unsigned long long)((total + nb - 1) / nb), (unsigned long long)it, (unsigned long long)total, rate, eta,
            st->loss, st->e_pos, st->e_neg, o->progress_tty && !final ? "" : "\n");
    fflush(o->progress);
}

static ebm_status write_grid(trainer *t, const train_run_opts *o) {
    const int n = t->cfg.hp.conditional ? 100 : 64, side = t->cfg.hp.conditional ? 10 : 8;
    float *x = ebm_alloc(sizeof(float) * (size_t)n * (size_t)t->n->in_dim);
    if (!x) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the sample grid");
    /* the same starting noise every time, so successive grids show the model changing */
    ebm_status s = trainer_sample(t, x, n, o->sample_steps > 0 ? o->sample_steps : 256, t->cfg.seed + 0x5eed);
    if (s == EBM_STATUS_OK) s = png_write_grid(o->samples_png, x, n, t->n->in_h, t->n->in_w, side, side, 2);
    ebm_free(x);
    return s;
}

static ebm_status write_curves(trainer *t, const train_run_opts *o) {
    metrics_row *rows;
    int n;
    EBM_TRY(metrics_read(metrics_path(o->metrics), &rows, &n));
    char title[1024];
    snprintf(title, sizeof title, "%.200s: %.200s, digits %s, batch %d, lr %g, %d Langevin steps (eps %g)", o->out,
             t->cfg.arch, t->cfg.digits, t->cfg.hp.batch, t->cfg.hp.lr, t->cfg.hp.steps, t->cfg.hp.lv.eps);
    ebm_status s = n > 0 ? curves_write_png(o->curves_png, rows, n, title) : EBM_STATUS_OK;
    free(rows);
    return s;
}

/* The divergence message: what, where, what to do, and which file is still good. */
static ebm_status diverged(trainer *t, const train_run_opts *o) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", ebm_last_error());
    if (t->saved)
        return ebm_fail(EBM_STATUS_DIVERGED,
                        "%s. hint: lower --lr, raise --alpha or lower --eps; last good checkpoint kept at %s "
                        "(iteration %llu): continue from it with --resume %s and a lower --lr",
                        msg, o->out, (unsigned long long)t->saved_iter, o->out);
    return ebm_fail(EBM_STATUS_DIVERGED,
                    "%s. hint: lower --lr, raise --alpha or lower --eps; no checkpoint was written yet (%s left as it "
                    "was)",
                    msg, o->out);
}

ebm_status trainer_run(trainer *t, const train_run_opts *o) {
    const uint64_t start = t->iter, total = t->cfg.iters;
    const double t0 = ebm_now(), elapsed0 = t->elapsed;
    const int log_every = o->log_every > 0 ? o->log_every : 50;
    train_step_stats st = {0};
    ebm_status s = EBM_STATUS_OK;
    int stopped = 0;
    while (t->iter < total) {
        if (o->stop && *o->stop) {
            stopped = 1;
            break;
        }
        if (o->max_seconds > 0 && ebm_now() - t0 >= o->max_seconds) break;
        s = trainer_step(t, &st);
        t->elapsed = elapsed0 + (ebm_now() - t0);
        if (s == EBM_STATUS_DIVERGED) {
            if (o->progress && o->progress_tty) fprintf(o->progress, "\n");
            return diverged(t, o);
        }
        if (s != EBM_STATUS_OK) return s;
        const uint64_t it = t->iter;
        const double rate = (double)(it - start) / (ebm_now() - t0);
        if (o->metrics && (o->metrics_every <= 1 || it % (uint64_t)o->metrics_every == 0 || it == total)) {
            metrics_row r = {it, t->elapsed, st.loss, st.e_pos, st.e_neg, st.grad_norm, trainer_lr(&t->cfg, it - 1)};
            EBM_TRY(metrics_append(o->metrics, &r));
        }
        if (o->progress && (o->progress_tty || it == start + 1 || it % (uint64_t)log_every == 0 || it == total))
            progress(t, o, &st, rate, it == total);
        if (o->out && o->checkpoint_every > 0 && it % (uint64_t)o->checkpoint_every == 0 && it < total)
            EBM_TRY(trainer_save(t, o->out));
        if (o->samples_png && o->sample_every > 0 && it % (uint64_t)o->sample_every == 0 && it < total)
            EBM_TRY(write_grid(t, o));
    }
    if (o->progress && o->progress_tty && t->iter != total && t->iter > start) fprintf(o->progress, "\n");
    if (o->out) EBM_TRY(trainer_save(t, o->out));
    if (stopped)
        return ebm_fail(EBM_STATUS_INTERRUPTED, "interrupted at iteration %llu; resume with --resume %s",
                        (unsigned long long)t->iter, o->out ? o->out : "<checkpoint>");
    if (o->export_model) EBM_TRY(trainer_export(t, o->export_model));
    if (o->samples_png) EBM_TRY(write_grid(t, o));
    if (o->metrics && o->curves_png) s = write_curves(t, o);
    return s;
}
