// FUZZ_SOURCES: src/server/params.c
/* fuzz_params.c - libFuzzer target for the web API's request-parameter parser (the code
 * every request body and query string of `ebm serve` goes through).
 *
 * Each input is tried as a JSON body (params_parse_body, then every endpoint's checks, as
 * a body and as a query object) and as a query string "k=v&k=v" turned into an object of
 * strings, as http.c does.  Invariants: a refusal leaves a message; an acceptance leaves
 * values inside the documented limits.  Any crash, sanitizer report or broken invariant is
 * a finding. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/params.h"

static const api_model_info models[2] = {
    {"plain", 0, 784, -1.f, 1.f, 256, 10.f, 0.005f, 0.03f, 0},
    {"cond", 10, 784, -1.f, 1.f, 256, 10.f, 0.005f, 0.03f, 0x2FF}, /* trained on all digits but 8 */
};

static void check_sampler(const api_sampler *s) {
    if (s->model < 0 || s->model > 1 || s->steps < 0 || s->steps > API_MAX_STEPS || !(s->eps >= 0) ||
        !(s->eps <= API_MAX_EPS) || !(s->noise == -1.f || (s->noise >= 0 && s->noise <= API_MAX_NOISE)) ||
        !isfinite(s->grad_clip) || s->scale < 1 || s->scale > API_MAX_SCALE || s->digit < -1 ||
        s->digit >= (models[s->model].classes ? models[s->model].classes : 0) + (s->digit < 0) ||
        (s->digit >= 0 && !(models[s->model].digits >> s->digit & 1u)) ||
        (double)s->seed > API_MAX_SEED)
        abort();
}

static void run_all(const cJSON *obj, int query) {
    char err[API_ERR_LEN];
    api_sample_req s;
    err[0] = 0;
    if (params_sample(obj, query, models, 2, &s, err) == 0) {
        check_sampler(&s.s);
        if (s.n < 1 || s.n > API_MAX_N || s.rows < 1 || s.cols < 1 || s.rows > API_MAX_GRID ||
            s.cols > API_MAX_GRID || s.rows * s.cols < s.n)
            abort();
    } else if (!err[0])
        abort();
    api_chain_req c;
    err[0] = 0;
    if (params_chain(obj, query, models, 2, &c, err) == 0) {
        check_sampler(&c.s);
        int frames = c.s.steps / c.every + 1 + (c.s.steps % c.every != 0);
        if (c.n < 1 || c.n > API_MAX_CHAINS || c.every < 1 || frames > API_MAX_FRAMES) abort();
    } else if (!err[0])
        abort();
    api_energy_req e;
    err[0] = 0;
    if (params_energy(obj, query, models, 2, &e, err) == 0) {
        for (int i = 0; i < 784; i++)
            if (!(e.pixels[i] >= -1.f && e.pixels[i] <= 1.f)) abort();
        params_free_energy(&e);
    } else if (!err[0])
        abort();
    api_complete_req k;
    err[0] = 0;
    if (params_complete(obj, query, models, 2, &k, err) == 0) {
        check_sampler(&k.s);
        if (k.n < 1 || k.n > API_MAX_COMPLETIONS || !k.pixels || (k.inpaint && !k.mask)) abort();
        for (int i = 0; k.mask && i < 784; i++)
            if (k.mask[i] > 1) abort();
        params_free_complete(&k);
    } else if (!err[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[API_ERR_LEN];
    cJSON *body = params_parse_body((const char *)data, size, err);
    if (body) {
        run_all(body, 0);
        run_all(body, 1);
        cJSON_Delete(body);
    }
    /* as a query string: k=v pairs split on '&', values as strings, duplicates refused */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    cJSON *q = cJSON_CreateObject();
    int dup = 0;
    for (char *save = NULL, *pair = strtok_r(text, "&", &save); pair; pair = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(pair, '=');
        if (eq) *eq = 0;
        if (cJSON_GetObjectItemCaseSensitive(q, pair)) dup = 1;
        else cJSON_AddStringToObject(q, pair, eq ? eq + 1 : "");
    }
    if (!dup) run_all(q, 1);
    cJSON_Delete(q);
    free(text);
    return 0;
}
