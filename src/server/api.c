/* api.c - the JSON endpoints of `ebm serve` (api.h, docs/API.md).
 *
 * Chains start as `ebm sample` starts them (chain i from the uniform noise of (seed,
 * RNG_STREAM_START, i, 0)) and run on the model's backend, so the page, the API and the
 * command give the same images for the same seed and settings.  A model's lock is held
 * while its network computes; a chain stream runs `every` steps per lock, continuing the
 * same chains (langevin_params.step0 keeps the random numbers those of one long run). */
#include "api.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "core/rng.h"
#include "io/image.h"
#include "io/metrics.h"
#include "params.h"

#define METRICS_MAX_POINTS 2000        /* the dashboard plots at most this many rows */
#define SAMPLES_MAX_BYTES (16L << 20)  /* a sample grid PNG larger than this is not sent */

struct api_ctx {
    const server_config *c;
    api_model_info *info;
    pthread_mutex_t *locks;  /* one per model */
    pthread_mutex_t busy_lock;
    int busy;
    char samples_path[4096]; /* "" when there is none */
};

struct api_stream {
    api_ctx *a;
    api_chain_req q;
    const server_model *m;
    float *x, *E;
    int *y;
    langevin_params lp;
    int t;              /* steps done */
    int started, finished;
    long proposed, accepted;
    double t0;
    char *event;
};

/* ---- replies ------------------------------------------------------------------------ */

static const char json_type[] = "application/json";

/* Rounds a float to 7 significant digits so that JSON carries "-0.0123", not the 17
 * digits of the nearest double. */
static double f7(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", v);
    return strtod(buf, NULL);
}

static void reply_json(api_response *r, int status, cJSON *j) {
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!s) {
        r->status = 500;
        r->content_type = json_type;
        r->body = strdup("{\"error\":\"out of memory\"}");
        r->len = r->body ? strlen(r->body) : 0;
        return;
    }
    r->status = status;
    r->content_type = json_type;
    r->body = s;
    r->len = strlen(s);
}

void api_error(api_response *r, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *j = cJSON_CreateObject();
    if (j) cJSON_AddStringToObject(j, "error", msg);
    reply_json(r, status, j);
}

/* A library failure: the user's settings (400), a chain that blew up (422), or ours. */
static void reply_status(api_response *r, ebm_status s) {
    int code = s == EBM_STATUS_BAD_ARG ? 400 : s == EBM_STATUS_DIVERGED ? 422 : s == EBM_STATUS_NOMEM ? 503 : 500;
    api_error(r, code, "%s", ebm_last_error());
}

char *api_base64(const unsigned char *src, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)src[i] << 16 | (unsigned)src[i + 1] << 8 | src[i + 2];
        *o++ = tab[v >> 18], *o++ = tab[v >> 12 & 63], *o++ = tab[v >> 6 & 63], *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)src[i] << 16 | (i + 1 < n ? (unsigned)src[i + 1] << 8 : 0);
        *o++ = tab[v >> 18], *o++ = tab[v >> 12 & 63];
        *o++ = i + 1 < n ? tab[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    *o = 0;
    return out;
}

static char *data_url(const unsigned char *png, size_t len) {
    char *b = api_base64(png, len);
    if (!b) return NULL;
    static const char prefix[] = "data:image/png;base64,";
    char *s = malloc(sizeof prefix + strlen(b));
    if (s) {
        memcpy(s, prefix, sizeof prefix - 1);
        strcpy(s + sizeof prefix - 1, b);
    }
    free(b);
    return s;
}

/* Adds "image": the grid as a PNG data URL. */
static ebm_status add_grid(cJSON *j, const server_model *m, const float *x, int n, int rows, int cols, int scale) {
    unsigned char *png;
    size_t len;
    EBM_TRY(png_encode_grid_mem(x, n, m->n->in_h, m->n->in_w, rows, cols, scale, &png, &len));
    char *url = data_url(png, len);
    free(png);
    if (!url) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for the picture");
    cJSON_AddStringToObject(j, "image", url);
    free(url);
    return EBM_STATUS_OK;
}

static void add_floats(cJSON *j, const char *key, const float *v, int n) {
    cJSON *arr = cJSON_AddArrayToObject(j, key);
    for (int i = 0; arr && i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(f7(v[i])));
}

static double mean(const float *v, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : 0;
}

/* The settings as used, echoed in replies so a result can be reproduced. */
static void add_sampler(cJSON *j, const api_ctx *a, const api_sampler *s, const langevin_params *lp) {
    cJSON_AddStringToObject(j, "model", a->info[s->model].name);
    cJSON_AddStringToObject(j, "sampler", s->mala ? "mala" : "ula");
    cJSON_AddNumberToObject(j, "steps", s->steps);
    cJSON_AddNumberToObject(j, "eps", f7(lp->eps));
    cJSON_AddNumberToObject(j, "noise", f7(langevin_sigma(lp)));
    cJSON_AddNumberToObject(j, "grad_clip", f7(lp->grad_clip));
    cJSON_AddNumberToObject(j, "seed", (double)s->seed);
    if (s->digit >= 0) cJSON_AddNumberToObject(j, "digit", s->digit);
    else cJSON_AddNullToObject(j, "digit");
}

/* ---- shared state ------------------------------------------------------------------- */

api_ctx *api_create(const server_config *c) {
    api_ctx *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->c = c;
    a->info = calloc((size_t)c->nmodels, sizeof *a->info);
    a->locks = calloc((size_t)c->nmodels, sizeof *a->locks);
    if (!a->info || !a->locks) {
        free(a->info);
        free(a->locks);
        free(a);
        return NULL;
    }
    for (int i = 0; i < c->nmodels; i++) {
        const server_model *m = &c->models[i];
        a->info[i] = (api_model_info){m->name, m->conditional ? m->n->out_dim : 0, m->n->in_dim, m->lo, m->hi,
                                      m->steps, m->eps, m->noise, m->grad_clip,
                                      m->conditional ? m->digits : (uint16_t)0};
        pthread_mutex_init(&a->locks[i], NULL);
    }
    pthread_mutex_init(&a->busy_lock, NULL);
    /* the trainer writes <out>-metrics.jsonl beside <out>-samples.png */
    const char *mp = c->metrics_path, *suffix = "-metrics.jsonl";
    if (c->samples_path) snprintf(a->samples_path, sizeof a->samples_path, "%s", c->samples_path);
    else if (mp && strlen(mp) > strlen(suffix) && strcmp(mp + strlen(mp) - strlen(suffix), suffix) == 0)
        snprintf(a->samples_path, sizeof a->samples_path, "%.*s-samples.png", (int)(strlen(mp) - strlen(suffix)), mp);
    return a;
}

void api_free(api_ctx *a) {
    if (!a) return;
    for (int i = 0; i < a->c->nmodels; i++) pthread_mutex_destroy(&a->locks[i]);
    pthread_mutex_destroy(&a->busy_lock);
    free(a->info);
    free(a->locks);
    free(a);
}

/* Counts a compute request in; 0 (with a 503 reply) when max_busy are already in. */
static int busy_enter(api_ctx *a, api_response *r) {
    pthread_mutex_lock(&a->busy_lock);
    int ok = a->busy < a->c->max_busy;
    if (ok) a->busy++;
    int busy = a->busy;
    pthread_mutex_unlock(&a->busy_lock);
    if (!ok) {
        api_error(r, 503, "server busy: %d requests are computing; try again in a moment", busy);
        r->retry_after = 1;
    }
    return ok;
}

static void busy_leave(api_ctx *a) {
    pthread_mutex_lock(&a->busy_lock);
    a->busy--;
    pthread_mutex_unlock(&a->busy_lock);
}

/* ---- running chains ----------------------------------------------------------------- */

static langevin_params make_lp(const server_model *m, const api_sampler *s) {
    langevin_params p = {s->mala, s->eps, s->noise, s->grad_clip, m->lo, m->hi, s->seed, 0, 0};
    return p;
}

static void noise_start(float *x, int n, int dim, uint64_t seed, float lo, float hi) {
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * dim;
        rng_uniform_fill(seed, RNG_STREAM_START, (uint32_t)i, 0, xi, dim);
        for (int k = 0; k < dim; k++) xi[k] = lo + (hi - lo) * xi[k];
    }
}

typedef struct {
    float *E;  /* energies of the last snapshot */
} capture;

static ebm_status capture_energies(void *ud, int step, const float *x, const float *E, int n, int dim) {
    (void)step, (void)x, (void)dim;
    memcpy(((capture *)ud)->E, E, sizeof(float) * (size_t)n);
    return EBM_STATUS_OK;
}

/* `steps` steps of n chains from x (the model must be locked); E (or NULL: no final
 * energy evaluation for ULA) gets the final energies, the MALA counts are added to
 * *proposed / *accepted. */
static ebm_status run_locked(const server_model *m, float *x, const int *y, int n, int steps,
                             const langevin_params *lp, float *E, long *proposed, long *accepted) {
    langevin_stats st = {0};
    capture cap = {E};
    ebm_status s = m->be.sample(m->be.ctx, x, y, n, steps, lp, lp->mala ? &st : NULL, E ? capture_energies : NULL,
                                E ? &cap : NULL, 0);
    *proposed += st.proposed;
    *accepted += st.accepted;
    return s;
}

static float acceptance(long proposed, long accepted) {
    return proposed ? (float)accepted / (float)proposed : 1.f;
}

static int *labels(int digit, int n) {
    int *y = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; y && i < n; i++) y[i] = digit;
    return y;
}

/* ---- endpoints ---------------------------------------------------------------------- */

void api_models(api_ctx *a, const cJSON *params, int query, api_response *r) {
    (void)params, (void)query;
    cJSON *j = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(j, "models");
    for (int i = 0; i < a->c->nmodels; i++) {
        const server_model *m = &a->c->models[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(list, o);
        cJSON_AddStringToObject(o, "name", m->name);
        cJSON_AddStringToObject(o, "spec", m->n->spec);
        cJSON_AddNumberToObject(o, "params", (double)m->n->nparams);
        cJSON_AddBoolToObject(o, "conditional", m->conditional);
        cJSON_AddNumberToObject(o, "classes", a->info[i].classes);
        if (m->conditional) { /* the digits requests may ask for (0 = every output, as in training) */
            int dig[TRAIN_MAX_CLASSES];
            const int nd = train_chain_classes(a->info[i].digits, a->info[i].classes, dig);
            cJSON *dl = cJSON_AddArrayToObject(o, "digits");
            for (int k = 0; k < nd; k++) cJSON_AddItemToArray(dl, cJSON_CreateNumber(dig[k]));
        }
        cJSON_AddNumberToObject(o, "height", m->n->in_h);
        cJSON_AddNumberToObject(o, "width", m->n->in_w);
        cJSON_AddNumberToObject(o, "lo", f7(m->lo));
        cJSON_AddNumberToObject(o, "hi", f7(m->hi));
        cJSON_AddStringToObject(o, "backend", m->be.name ? m->be.name : "cpu");
        cJSON *d = cJSON_AddObjectToObject(o, "defaults");
        cJSON_AddNumberToObject(d, "steps", m->steps);
        cJSON_AddNumberToObject(d, "eps", f7(m->eps));
        if (m->noise < 0) cJSON_AddStringToObject(d, "noise", "auto");
        else cJSON_AddNumberToObject(d, "noise", f7(m->noise));
        cJSON_AddNumberToObject(d, "grad_clip", f7(m->grad_clip));
        cJSON_AddStringToObject(d, "sampler", "ula");
    }
    cJSON *l = cJSON_AddObjectToObject(j, "limits");
    cJSON_AddNumberToObject(l, "n", API_MAX_N);
    cJSON_AddNumberToObject(l, "chains", API_MAX_CHAINS);
    cJSON_AddNumberToObject(l, "completions", API_MAX_COMPLETIONS);
    cJSON_AddNumberToObject(l, "steps", API_MAX_STEPS);
    cJSON_AddNumberToObject(l, "frames", API_MAX_FRAMES);
    cJSON_AddNumberToObject(l, "grid", API_MAX_GRID);
    cJSON_AddNumberToObject(l, "scale", API_MAX_SCALE);
    cJSON_AddNumberToObject(l, "body_bytes", API_MAX_BODY);
    cJSON_AddBoolToObject(j, "metrics", a->c->metrics_path != NULL);
    cJSON_AddStringToObject(j, "version", EBM_VERSION);
    reply_json(r, 200, j);
}

void api_sample(api_ctx *a, const cJSON *params, int query, api_response *r) {
    api_sample_req q;
    char err[API_ERR_LEN];
    if (params_sample(params, query, a->info, a->c->nmodels, &q, err)) {
        api_error(r, 400, "%s", err);
        return;
    }
    const server_model *m = &a->c->models[q.s.model];
    const int n = q.n, dim = m->n->in_dim;
    float *x = malloc(sizeof(float) * (size_t)n * dim), *E = malloc(sizeof(float) * (size_t)n);
    int *y = q.s.digit >= 0 ? labels(q.s.digit, n) : NULL;
    if (!x || !E || (q.s.digit >= 0 && !y)) {
        api_error(r, 503, "out of memory for %d samples", n);
        goto done;
    }
    if (!busy_enter(a, r)) goto done;
    langevin_params lp = make_lp(m, &q.s);
    noise_start(x, n, dim, q.s.seed, m->lo, m->hi);
    long prop = 0, acc = 0;
    double t0 = ebm_now();
    pthread_mutex_lock(&a->locks[q.s.model]);
    ebm_status s = run_locked(m, x, y, n, q.s.steps, &lp, E, &prop, &acc);
    pthread_mutex_unlock(&a->locks[q.s.model]);
    double dt = ebm_now() - t0;
    busy_leave(a);
    if (s != EBM_STATUS_OK) {
        reply_status(r, s);
        goto done;
    }
    if (q.png) {
        unsigned char *png;
        size_t len;
        s = png_encode_grid_mem(x, n, m->n->in_h, m->n->in_w, q.rows, q.cols, q.s.scale, &png, &len);
        if (s != EBM_STATUS_OK) reply_status(r, s);
        else *r = (api_response){200, "image/png", (char *)png, len, NULL, 0};
        goto done;
    }
    cJSON *j = cJSON_CreateObject();
    add_sampler(j, a, &q.s, &lp);
    cJSON_AddNumberToObject(j, "n", n);
    cJSON_AddNumberToObject(j, "rows", q.rows);
    cJSON_AddNumberToObject(j, "cols", q.cols);
    cJSON_AddNumberToObject(j, "seconds", f7((float)dt));
    cJSON_AddNumberToObject(j, "acceptance", f7(acceptance(prop, acc)));
    cJSON_AddNumberToObject(j, "mean_energy", f7((float)mean(E, n)));
    add_floats(j, "energies", E, n);
    s = add_grid(j, m, x, n, q.rows, q.cols, q.s.scale);
    if (s != EBM_STATUS_OK) {
        cJSON_Delete(j);
        reply_status(r, s);
    } else
        reply_json(r, 200, j);
done:
    free(x);
    free(E);
    free(y);
}

void api_energy(api_ctx *a, const cJSON *params, int query, api_response *r) {
    api_energy_req q;
    char err[API_ERR_LEN];
    if (params_energy(params, query, a->info, a->c->nmodels, &q, err)) {
        api_error(r, 400, "%s", err);
        return;
    }
    const server_model *m = &a->c->models[q.model];
    const int dim = m->n->in_dim, K = a->info[q.model].classes;
    float e = 0, *xs = K ? malloc(sizeof(float) * (size_t)K * dim) : NULL, *ek = K ? malloc(sizeof(float) * K) : NULL;
    int *ys = K ? malloc(sizeof(int) * K) : NULL;
    if (K && (!xs || !ek || !ys)) {
        api_error(r, 503, "out of memory");
        goto done;
    }
    for (int k = 0; k < K; k++) {
        memcpy(xs + (size_t)k * dim, q.pixels, sizeof(float) * dim);
        ys[k] = k;
    }
    pthread_mutex_lock(&a->locks[q.model]);
    ebm_status s = net_energy(m->n, q.pixels, 1, NULL, &e, NULL);
    if (s == EBM_STATUS_OK && K) s = net_energy(m->n, xs, K, ys, ek, NULL); /* E(x, y) for every y */
    pthread_mutex_unlock(&a->locks[q.model]);
    if (s != EBM_STATUS_OK) {
        reply_status(r, s);
        goto done;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", a->info[q.model].name);
    cJSON_AddNumberToObject(j, "energy", f7(e));
    if (K) { /* p(y|x) = exp(-E(x,y)) / sum_y' exp(-E(x,y')) */
        double lo = ek[0], z = 0;
        for (int k = 1; k < K; k++) lo = ek[k] < lo ? ek[k] : lo;
        float *p = malloc(sizeof(float) * K);
        for (int k = 0; k < K; k++) z += exp(lo - ek[k]);
        for (int k = 0; p && k < K; k++) p[k] = (float)(exp(lo - ek[k]) / z);
        if (p) add_floats(j, "probs", p, K);
        add_floats(j, "class_energies", ek, K);
        free(p);
    }
    reply_json(r, 200, j);
done:
    free(xs);
    free(ek);
    free(ys);
    params_free_energy(&q);
}

void api_complete(api_ctx *a, const cJSON *params, int query, api_response *r) {
    api_complete_req q;
    char err[API_ERR_LEN];
    if (params_complete(params, query, a->info, a->c->nmodels, &q, err)) {
        api_error(r, 400, "%s", err);
        return;
    }
    const server_model *m = &a->c->models[q.s.model];
    const int n = q.n, dim = m->n->in_dim;
    float *x = malloc(sizeof(float) * (size_t)n * dim), *E = malloc(sizeof(float) * (size_t)n), e0 = 0;
    int *y = q.s.digit >= 0 ? labels(q.s.digit, n) : NULL;
    if (!x || !E || (q.s.digit >= 0 && !y)) {
        api_error(r, 503, "out of memory for %d completions", n);
        goto done;
    }
    if (!busy_enter(a, r)) goto done;
    langevin_params lp = make_lp(m, &q.s);
    /* inpaint: free pixels start from noise, kept ones from the drawing; denoise: all
     * from the drawing */
    if (q.inpaint) noise_start(x, n, dim, q.s.seed, m->lo, m->hi);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < dim; k++)
            if (!q.inpaint || q.mask[k]) x[(size_t)i * dim + k] = q.pixels[k];
    long prop = 0, acc = 0;
    double t0 = ebm_now();
    pthread_mutex_lock(&a->locks[q.s.model]);
    ebm_status s = net_energy(m->n, q.pixels, 1, y, &e0, NULL);
    if (s == EBM_STATUS_OK && !q.inpaint) s = run_locked(m, x, y, n, q.s.steps, &lp, E, &prop, &acc);
    /* inpaint: one step at a time, the kept pixels put back after each; step0 keeps the
     * noise that of one long run */
    for (int t = 0; s == EBM_STATUS_OK && q.inpaint && t <= q.s.steps; t++) {
        lp.step0 = (uint32_t)t;
        s = run_locked(m, x, y, n, t < q.s.steps, &lp, t < q.s.steps ? NULL : E, &prop, &acc); /* last: energies */
        for (int i = 0; t < q.s.steps && i < n; i++)
            for (int k = 0; k < dim; k++)
                if (q.mask[k]) x[(size_t)i * dim + k] = q.pixels[k];
    }
    pthread_mutex_unlock(&a->locks[q.s.model]);
    double dt = ebm_now() - t0;
    busy_leave(a);
    if (s != EBM_STATUS_OK) {
        reply_status(r, s);
        goto done;
    }
    int cols = n < 8 ? n : 8, rows = (n + cols - 1) / cols;
    cJSON *j = cJSON_CreateObject();
    add_sampler(j, a, &q.s, &lp);
    cJSON_AddStringToObject(j, "mode", q.inpaint ? "inpaint" : "denoise");
    cJSON_AddNumberToObject(j, "n", n);
    cJSON_AddNumberToObject(j, "rows", rows);
    cJSON_AddNumberToObject(j, "cols", cols);
    cJSON_AddNumberToObject(j, "seconds", f7((float)dt));
    cJSON_AddNumberToObject(j, "acceptance", f7(acceptance(prop, acc)));
    cJSON_AddNumberToObject(j, "input_energy", f7(e0));
    cJSON_AddNumberToObject(j, "mean_energy", f7((float)mean(E, n)));
    add_floats(j, "energies", E, n);
    s = add_grid(j, m, x, n, rows, cols, q.s.scale);
    if (s != EBM_STATUS_OK) {
        cJSON_Delete(j);
        reply_status(r, s);
    } else
        reply_json(r, 200, j);
done:
    free(x);
    free(E);
    free(y);
    params_free_complete(&q);
}

/* ---- the training log --------------------------------------------------------------- */

/* The file's bytes when it exists and is at most max bytes; NULL otherwise. */
static unsigned char *read_small_file(const char *path, long max, size_t *len, double *mtime) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > max) return NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = malloc((size_t)st.st_size);
    size_t got = b ? fread(b, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!b || got != (size_t)st.st_size) {
        free(b);
        return NULL;
    }
    *len = got;
    *mtime = (double)st.st_mtime;
    return b;
}

void api_metrics(api_ctx *a, const cJSON *params, int query, api_response *r) {
    (void)params, (void)query;
    const char *path = a->c->metrics_path;
    if (!path) {
        api_error(r, 404, "no training log: start the server with --metrics FILE.jsonl (the log of ebm train)");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "path", path);
    metrics_row *rows = NULL;
    int nrows = 0;
    struct stat st;
    if (stat(path, &st) != 0) {
        cJSON_AddBoolToObject(j, "waiting", 1); /* a run that has not logged yet */
    } else {
        ebm_status s = metrics_read(path, &rows, &nrows);
        if (s != EBM_STATUS_OK) {
            cJSON_Delete(j);
            api_error(r, 500, "cannot read the training log: %s", ebm_last_error());
            return;
        }
        cJSON_AddBoolToObject(j, "waiting", 0);
    }
    /* at most METRICS_MAX_POINTS rows, evenly spaced, always with the last */
    int stride = nrows > METRICS_MAX_POINTS ? (nrows + METRICS_MAX_POINTS - 1) / METRICS_MAX_POINTS : 1;
    cJSON_AddNumberToObject(j, "rows", nrows);
    cJSON_AddNumberToObject(j, "stride", stride);
    static const char *const cols[] = {"iteration", "time", "loss", "e_pos", "e_neg", "grad_norm", "lr"};
    cJSON *c = cJSON_AddObjectToObject(j, "columns");
    for (int k = 0; k < 7; k++) {
        cJSON *arr = cJSON_AddArrayToObject(c, cols[k]);
        for (int i = 0; i < nrows; i++) {
            if (i % stride != 0 && i != nrows - 1) continue;
            const metrics_row *w = &rows[i];
            double v = k == 0 ? (double)w->iteration : k == 1 ? w->time : f7(k == 2 ? w->loss : k == 3 ? w->e_pos :
                                                                         k == 4 ? w->e_neg : k == 5 ? w->grad_norm : w->lr);
            cJSON_AddItemToArray(arr, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
    }
    free(rows);
    size_t len = 0;
    double mtime = 0;
    unsigned char *png = a->samples_path[0] ? read_small_file(a->samples_path, SAMPLES_MAX_BYTES, &len, &mtime) : NULL;
    char *url = png && len > 8 && memcmp(png, "\x89PNG", 4) == 0 ? data_url(png, len) : NULL;
    free(png);
    if (url) {
        cJSON_AddStringToObject(j, "samples", url);
        cJSON_AddNumberToObject(j, "samples_mtime", mtime);
    } else
        cJSON_AddNullToObject(j, "samples");
    free(url);
    reply_json(r, 200, j);
}

/* ---- chain streams ------------------------------------------------------------------ */

void api_chain(api_ctx *a, const cJSON *params, int query, api_response *r) {
    api_chain_req q;
    char err[API_ERR_LEN];
    if (params_chain(params, query, a->info, a->c->nmodels, &q, err)) {
        api_error(r, 400, "%s", err);
        return;
    }
    const server_model *m = &a->c->models[q.s.model];
    const int n = q.n, dim = m->n->in_dim;
    api_stream *st = calloc(1, sizeof *st);
    if (st) {
        st->x = malloc(sizeof(float) * (size_t)n * dim);
        st->E = malloc(sizeof(float) * (size_t)n);
        st->y = q.s.digit >= 0 ? labels(q.s.digit, n) : NULL;
    }
    if (!st || !st->x || !st->E || (q.s.digit >= 0 && !st->y)) {
        if (st) free(st->x), free(st->E), free(st->y);
        free(st);
        api_error(r, 503, "out of memory for %d chains", n);
        return;
    }
    if (!busy_enter(a, r)) {
        free(st->x), free(st->E), free(st->y), free(st);
        return;
    }
    st->a = a;
    st->q = q;
    st->m = m;
    st->lp = make_lp(m, &q.s);
    st->t0 = ebm_now();
    noise_start(st->x, n, dim, q.s.seed, m->lo, m->hi);
    *r = (api_response){200, "text/event-stream", NULL, 0, st, 0};
}

static int set_event(api_stream *st, const char *name, cJSON *j) {
    char *data = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    free(st->event);
    st->event = NULL;
    if (!data) return 0;
    size_t len = strlen(name) + strlen(data) + 20;
    st->event = malloc(len);
    if (st->event) snprintf(st->event, len, "event: %s\ndata: %s\n\n", name, data);
    free(data);
    return st->event != NULL;
}

int api_stream_next(api_stream *st, const char **data, size_t *len) {
    if (st->finished) return 0;
    const api_chain_req *q = &st->q;
    cJSON *j = cJSON_CreateObject();
    if (st->started && st->t >= q->s.steps) { /* after the last frame */
        add_sampler(j, st->a, &q->s, &st->lp);
        cJSON_AddNumberToObject(j, "n", q->n);
        cJSON_AddNumberToObject(j, "every", q->every);
        cJSON_AddNumberToObject(j, "acceptance", f7(acceptance(st->proposed, st->accepted)));
        cJSON_AddNumberToObject(j, "seconds", f7((float)(ebm_now() - st->t0)));
        st->finished = 1;
        if (!set_event(st, "done", j)) return 0;
        *data = st->event;
        *len = strlen(st->event);
        return 1;
    }
    /* the first frame is the noise (0 steps, energies only), then `every` steps a frame */
    int k = !st->started ? 0 : q->s.steps - st->t < q->every ? q->s.steps - st->t : q->every;
    st->lp.step0 = (uint32_t)st->t;
    pthread_mutex_lock(&st->a->locks[q->s.model]);
    ebm_status s = run_locked(st->m, st->x, st->y, q->n, k, &st->lp, st->E, &st->proposed, &st->accepted);
    pthread_mutex_unlock(&st->a->locks[q->s.model]);
    st->started = 1;
    st->t += k;
    int cols = (int)ceil(sqrt((double)q->n)), rows = (q->n + cols - 1) / cols;
    if (s == EBM_STATUS_OK) {
        cJSON_AddNumberToObject(j, "step", st->t);
        cJSON_AddNumberToObject(j, "steps", q->s.steps);
        cJSON_AddNumberToObject(j, "mean_energy", f7((float)mean(st->E, q->n)));
        add_floats(j, "energies", st->E, q->n);
        s = add_grid(j, st->m, st->x, q->n, rows, cols, q->s.scale);
    }
    if (s != EBM_STATUS_OK) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "error", ebm_last_error());
        st->finished = 1;
        if (!set_event(st, "error", j)) return 0;
    } else if (!set_event(st, "frame", j))
        return 0;
    *data = st->event;
    *len = strlen(st->event);
    return 1;
}

void api_stream_free(api_stream *st) {
    if (!st) return;
    busy_leave(st->a);
    free(st->x);
    free(st->E);
    free(st->y);
    free(st->event);
    free(st);
}
