/* params.c - checks the web API's request parameters (see params.h). */
#include "params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const cJSON *obj;
    int query;   /* values are strings to be read as numbers */
    char *err;
} pctx;

__attribute__((format(printf, 2, 3))) static int fail(const pctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, API_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* Refuses keys outside `allowed` (NULL-terminated) and keys given twice. */
static int check_keys(const pctx *c, const char *const *allowed) {
    unsigned seen = 0;
    for (const cJSON *it = c->obj->child; it; it = it->next) {
        int k = 0;
        while (allowed[k] && strcmp(allowed[k], it->string) != 0) k++;
        if (!allowed[k]) {
            char list[200] = "";
            for (int j = 0; allowed[j]; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", allowed[j]);
            return fail(c, "unknown parameter '%.40s'; this endpoint takes: %s", it->string, list);
        }
        if (seen & (1u << k)) return fail(c, "parameter '%s' given twice", allowed[k]);
        seen |= 1u << k;
    }
    return 0;
}

static const cJSON *get(const pctx *c, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->obj, key);
    return it && !cJSON_IsNull(it) ? it : NULL;
}

/* A number (1), absent (0) or an error (-1). */
static int get_number(const pctx *c, const char *key, double *out) {
    const cJSON *it = get(c, key);
    if (!it) return 0;
    double v;
    if (cJSON_IsNumber(it)) v = it->valuedouble;
    else if (c->query && cJSON_IsString(it)) {
        char *end;
        const char *s = it->valuestring;
        v = strtod(s, &end);
        if (!*s || *end) return fail(c, "%s must be a number, got '%.40s'", key, s);
    } else
        return fail(c, "%s must be a number", key);
    if (!isfinite(v)) return fail(c, "%s must be a finite number", key);
    *out = v;
    return 1;
}

static int get_int(const pctx *c, const char *key, int lo, int hi, int *out) {
    double v = 0;
    int r = get_number(c, key, &v);
    if (r <= 0) return r;
    if (v != floor(v) || v < lo || v > hi)
        return fail(c, "%s must be an integer from %d to %d, got %.10g", key, lo, hi, v);
    *out = (int)v;
    return 1;
}

static int get_float(const pctx *c, const char *key, double lo, double hi, float *out) {
    double v = 0;
    int r = get_number(c, key, &v);
    if (r <= 0) return r;
    if (v < lo || v > hi) return fail(c, "%s must be from %g to %g, got %.10g", key, lo, hi, v);
    *out = (float)v;
    return 1;
}

/* One of the NULL-terminated choices: its index (out), absent (0) or error (-1). */
static int get_choice(const pctx *c, const char *key, const char *const *choices, int *out) {
    const cJSON *it = get(c, key);
    if (!it) return 0;
    char list[120] = "";
    for (int j = 0; choices[j]; j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? " or " : "", choices[j]);
    if (!cJSON_IsString(it)) return fail(c, "%s must be a string: %s", key, list);
    for (int j = 0; choices[j]; j++)
        if (strcmp(it->valuestring, choices[j]) == 0) {
            *out = j;
            return 1;
        }
    return fail(c, "%s must be %s, got '%.40s'", key, list, it->valuestring);
}

static int get_model(const pctx *c, const api_model_info *models, int nmodels, int *out) {
    *out = 0;
    const cJSON *it = get(c, "model");
    if (!it) return 0;
    if (!cJSON_IsString(it)) return fail(c, "model must be a string (a name from /api/models)");
    for (int i = 0; i < nmodels; i++)
        if (strcmp(models[i].name, it->valuestring) == 0) {
            *out = i;
            return 1;
        }
    char list[160] = "";
    for (int i = 0; i < nmodels; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", models[i].name);
    return fail(c, "unknown model '%.40s'; this server has: %s", it->valuestring, list);
}

/* The settings of api_sampler, with the model's defaults for what is absent. */
static int get_sampler(const pctx *c, const api_model_info *models, int nmodels, int default_steps,
                       api_sampler *s) {
    if (get_model(c, models, nmodels, &s->model) < 0) return -1;
    const api_model_info *m = &models[s->model];
    s->steps = default_steps > 0 ? default_steps : m->steps;
    s->eps = m->eps;
    s->noise = m->noise;
    s->grad_clip = m->grad_clip;
    s->mala = 0;
    s->seed = 0;
    s->digit = -1;
    s->scale = 2;
    static const char *const samplers[] = {"ula", "mala", NULL};
    if (get_int(c, "steps", 0, API_MAX_STEPS, &s->steps) < 0) return -1;
    if (get_float(c, "eps", 0, API_MAX_EPS, &s->eps) < 0) return -1;
    const cJSON *noise = get(c, "noise");
    if (noise && cJSON_IsString(noise) && strcmp(noise->valuestring, "auto") == 0) s->noise = -1.f;
    else if (get_float(c, "noise", 0, API_MAX_NOISE, &s->noise) < 0) return -1;
    if (get_float(c, "grad_clip", -1e6, 1e6, &s->grad_clip) < 0) return -1;
    if (get_choice(c, "sampler", samplers, &s->mala) < 0) return -1;
    if (s->mala && s->noise == 0.f) return fail(c, "the MALA sampler needs noise > 0");
    double seed = 0;
    int r = get_number(c, "seed", &seed);
    if (r < 0) return -1;
    if (r && (seed != floor(seed) || seed < 0 || seed > API_MAX_SEED))
        return fail(c, "seed must be an integer from 0 to 2^53, got %.17g", seed);
    if (r) s->seed = (uint64_t)seed;
    if (get_int(c, "scale", 1, API_MAX_SCALE, &s->scale) < 0) return -1;
    r = get_int(c, "digit", -1, 1 << 20, &s->digit);
    if (r < 0) return -1;
    if (s->digit >= 0 && m->classes == 0)
        return fail(c, "model '%s' is not class-conditional: leave digit out (or use a model trained with "
                    "--conditional)", m->name);
    if (s->digit >= m->classes && m->classes > 0)
        return fail(c, "digit must be from 0 to %d for model '%s', got %d", m->classes - 1, m->name, s->digit);
    if (s->digit >= 0 && m->digits && !(m->digits >> s->digit & 1u))
        return fail(c, "model '%s' was not trained on digit %d (see its \"digits\" in /api/models)", m->name,
                    s->digit);
    return 0;
}

/* An image of exactly m->dim values in [lo, hi] (malloc'ed into *out). */
static int get_image(const pctx *c, const char *key, const api_model_info *m, float **out) {
    const cJSON *it = get(c, key);
    if (!it) return fail(c, "%s is required: an array of %d numbers from %g to %g (row by row)", key, m->dim, m->lo, m->hi);
    if (!cJSON_IsArray(it)) return fail(c, "%s must be an array of %d numbers", key, m->dim);
    int n = cJSON_GetArraySize(it);
    if (n != m->dim) return fail(c, "%s must hold exactly %d values (the model's image size), got %d", key, m->dim, n);
    float *x = malloc(sizeof(float) * (size_t)m->dim);
    if (!x) return fail(c, "out of memory");
    int i = 0;
    for (const cJSON *v = it->child; v; v = v->next, i++) {
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < m->lo || v->valuedouble > m->hi) {
            free(x);
            return fail(c, "%s[%d] must be a number from %g to %g", key, i, m->lo, m->hi);
        }
        x[i] = (float)v->valuedouble;
    }
    *out = x;
    return 0;
}

static int get_mask(const pctx *c, const api_model_info *m, unsigned char **out) {
    const cJSON *it = get(c, "mask");
    if (!it) return fail(c, "mask is required for mode inpaint: %d values, 1 = keep the pixel, 0 = let the model draw it",
                         m->dim);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != m->dim)
        return fail(c, "mask must be an array of exactly %d values (0 or 1)", m->dim);
    unsigned char *k = malloc((size_t)m->dim);
    if (!k) return fail(c, "out of memory");
    int i = 0;
    for (const cJSON *v = it->child; v; v = v->next, i++) {
        if (!cJSON_IsNumber(v) || (v->valuedouble != 0 && v->valuedouble != 1)) {
            free(k);
            return fail(c, "mask[%d] must be 0 or 1", i);
        }
        k[i] = v->valuedouble == 1;
    }
    *out = k;
    return 0;
}

static int need_object(const cJSON *body, char *err) {
    if (cJSON_IsObject(body)) return 0;
    snprintf(err, API_ERR_LEN, "the parameters must be a JSON object");
    return -1;
}

int params_sample(const cJSON *body, int query, const api_model_info *models, int nmodels, api_sample_req *r,
                  char *err) {
    static const char *const keys[] = {"model", "n", "rows", "cols", "steps", "eps", "noise", "grad_clip",
                                       "sampler", "seed", "digit", "scale", "format", NULL};
    static const char *const formats[] = {"json", "png", NULL};
    if (need_object(body, err)) return -1;
    pctx c = {body, query, err};
    memset(r, 0, sizeof *r);
    if (check_keys(&c, keys) || get_sampler(&c, models, nmodels, 0, &r->s)) return -1;
    r->n = 16;
    int has_n = get_int(&c, "n", 1, API_MAX_N, &r->n);
    if (has_n < 0 || get_int(&c, "rows", 1, API_MAX_GRID, &r->rows) < 0 ||
        get_int(&c, "cols", 1, API_MAX_GRID, &r->cols) < 0 || get_choice(&c, "format", formats, &r->png) < 0)
        return -1;
    if (r->rows && r->cols && !has_n) r->n = r->rows * r->cols <= API_MAX_N ? r->rows * r->cols : API_MAX_N;
    if (!r->cols) r->cols = r->rows ? (r->n + r->rows - 1) / r->rows : (int)ceil(sqrt((double)r->n));
    if (!r->rows) r->rows = (r->n + r->cols - 1) / r->cols;
    if (r->rows * r->cols < r->n)
        return fail(&c, "a %dx%d grid holds %d images, fewer than n = %d", r->rows, r->cols, r->rows * r->cols, r->n);
    return 0;
}

int params_chain(const cJSON *body, int query, const api_model_info *models, int nmodels, api_chain_req *r,
                 char *err) {
    static const char *const keys[] = {"model", "n", "every", "steps", "eps", "noise", "grad_clip",
                                       "sampler", "seed", "digit", "scale", NULL};
    if (need_object(body, err)) return -1;
    pctx c = {body, query, err};
    memset(r, 0, sizeof *r);
    if (check_keys(&c, keys) || get_sampler(&c, models, nmodels, 0, &r->s)) return -1;
    r->n = 8;
    r->every = 0;
    if (get_int(&c, "n", 1, API_MAX_CHAINS, &r->n) < 0 || get_int(&c, "every", 1, API_MAX_STEPS, &r->every) < 0)
        return -1;
    if (!r->every) { /* a frame every 8 steps, fewer when that would pass the frame limit */
        int k = (r->s.steps + API_MAX_FRAMES - 3) / (API_MAX_FRAMES - 2);
        r->every = k > 8 ? k : 8;
    }
    int frames = r->s.steps / r->every + 1 + (r->s.steps % r->every != 0);
    if (frames > API_MAX_FRAMES)
        return fail(&c, "%d steps every %d make %d frames, more than %d: raise every to at least %d", r->s.steps,
                    r->every, frames, API_MAX_FRAMES, (r->s.steps + API_MAX_FRAMES - 3) / (API_MAX_FRAMES - 2));
    return 0;
}

int params_energy(const cJSON *body, int query, const api_model_info *models, int nmodels, api_energy_req *r,
                  char *err) {
    static const char *const keys[] = {"model", "pixels", NULL};
    if (need_object(body, err)) return -1;
    pctx c = {body, query, err};
    memset(r, 0, sizeof *r);
    if (check_keys(&c, keys) || get_model(&c, models, nmodels, &r->model) < 0) return -1;
    return get_image(&c, "pixels", &models[r->model], &r->pixels);
}

int params_complete(const cJSON *body, int query, const api_model_info *models, int nmodels, api_complete_req *r,
                    char *err) {
    static const char *const keys[] = {"model", "pixels", "mask", "mode", "n", "steps", "eps", "noise",
                                       "grad_clip", "sampler", "seed", "digit", "scale", NULL};
    static const char *const modes[] = {"denoise", "inpaint", NULL};
    if (need_object(body, err)) return -1;
    pctx c = {body, query, err};
    memset(r, 0, sizeof *r);
    r->n = 4;
    r->inpaint = 1;
    if (check_keys(&c, keys) || get_sampler(&c, models, nmodels, 0, &r->s) < 0 ||
        get_choice(&c, "mode", modes, &r->inpaint) < 0 || get_int(&c, "n", 1, API_MAX_COMPLETIONS, &r->n) < 0)
        return -1;
    if (!get(&c, "steps")) r->s.steps = r->inpaint ? 200 : 60;
    const api_model_info *m = &models[r->s.model];
    if (get_image(&c, "pixels", m, &r->pixels)) return -1;
    if (r->inpaint && get_mask(&c, m, &r->mask)) {
        params_free_complete(r);
        return -1;
    }
    if (!r->inpaint && get(&c, "mask")) {
        params_free_complete(r);
        return fail(&c, "mask is for mode inpaint; denoise starts every chain from the whole drawing");
    }
    return 0;
}

void params_free_energy(api_energy_req *r) {
    free(r->pixels);
    r->pixels = NULL;
}

void params_free_complete(api_complete_req *r) {
    free(r->pixels);
    free(r->mask);
    r->pixels = NULL;
    r->mask = NULL;
}

cJSON *params_parse_body(const char *body, size_t len, char *err) {
    if (len == 0) {
        snprintf(err, API_ERR_LEN, "empty body: send the parameters as a JSON object (Content-Type: application/json)");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!j) {
        long at = end ? (long)(end - body) : 0;
        snprintf(err, API_ERR_LEN, "malformed JSON at byte %ld of %zu (NaN and Infinity are not JSON; use numbers)", at,
                 len);
        return NULL;
    }
    /* the rest may only be white space */
    for (const char *p = end; p < body + len; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t') {
            snprintf(err, API_ERR_LEN, "malformed JSON: unexpected data after the object at byte %ld", (long)(p - body));
            cJSON_Delete(j);
            return NULL;
        }
    if (!cJSON_IsObject(j)) {
        snprintf(err, API_ERR_LEN, "the body must be a JSON object ({\"n\": 16, ...})");
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}
