/* params.h - the web API's request parameters: JSON bodies and query strings checked into
 * plain structs, each refusal a sentence for a 400 reply ("n must be an integer from 1 to
 * 64, got 100").  Pure (no model, no I/O, no locks), so libFuzzer can drive it.
 *
 * Rules for every endpoint: unknown keys are refused (a typo must not be ignored), numbers
 * must be finite and in range, integers whole, strings from a fixed list, images exactly
 * the model's size with every value in its data range.  A query string's values arrive as
 * strings and are read as numbers where a number is expected; a JSON body must use JSON
 * numbers.  The limits below are the documented ones (docs/API.md). */
#ifndef EBM_PARAMS_H
#define EBM_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#define API_MAX_BODY (64 * 1024)   /* bytes of a request body */
#define API_MAX_N 64               /* images per /api/sample */
#define API_MAX_CHAINS 16          /* chains per /api/chain */
#define API_MAX_COMPLETIONS 16     /* completions per /api/complete */
#define API_MAX_STEPS 1000         /* Langevin steps of any request */
#define API_MAX_FRAMES 101         /* snapshots per /api/chain stream */
#define API_MAX_GRID 64            /* rows or columns of a grid */
#define API_MAX_SCALE 8            /* PNG pixels per image pixel */
#define API_MAX_EPS 1e4            /* step size */
#define API_MAX_NOISE 10.0         /* noise sigma */
#define API_MAX_SEED 9007199254740992.0 /* 2^53: every integer up to it is exact in JSON */
#define API_ERR_LEN 256

/* What validation needs to know of a served model. */
typedef struct {
    const char *name;
    int classes;       /* 0: unconditional; else the number of outputs (classes) */
    int dim;           /* values per image (784) */
    float lo, hi;      /* data range of pixels */
    int steps;         /* the sampler's defaults */
    float eps, noise, grad_clip;
    uint16_t digits;   /* conditional: the digits a request may ask for (bit d; 0 = every class) */
} api_model_info;

/* Langevin settings shared by every sampling request. */
typedef struct {
    int model;         /* index into the model list */
    int steps;
    float eps, noise, grad_clip;  /* noise < 0: sqrt(2 eps) ("auto") */
    int mala;
    uint64_t seed;
    int digit;         /* -1: any (unconditional or E(x) = -logsumexp) */
    int scale;
} api_sampler;

typedef struct {
    api_sampler s;
    int n, rows, cols;
    int png;           /* 1: answer image/png; 0: JSON with a data URL */
} api_sample_req;

typedef struct {
    api_sampler s;
    int n, every;
} api_chain_req;

typedef struct {
    int model;
    float *pixels;     /* dim values, malloc'ed: params_free_* frees */
} api_energy_req;

typedef struct {
    api_sampler s;
    int n;
    int inpaint;       /* 1: clamp pixels where mask = 1; 0: denoise (start from the drawing) */
    float *pixels;     /* dim values */
    unsigned char *mask; /* dim values (inpaint only), else NULL */
} api_complete_req;

/* Each returns 0 and fills the request, or -1 with a message in err (API_ERR_LEN). */
int params_sample(const cJSON *body, int query, const api_model_info *models, int nmodels, api_sample_req *r,
                  char *err);
int params_chain(const cJSON *body, int query, const api_model_info *models, int nmodels, api_chain_req *r,
                 char *err);
int params_energy(const cJSON *body, int query, const api_model_info *models, int nmodels, api_energy_req *r,
                  char *err);
int params_complete(const cJSON *body, int query, const api_model_info *models, int nmodels, api_complete_req *r,
                    char *err);
void params_free_energy(api_energy_req *r);
void params_free_complete(api_complete_req *r);

/* Parses a request body (len bytes, not NUL-terminated) that must be a JSON object; NULL
 * with a message in err otherwise.  The caller frees the result with cJSON_Delete. */
cJSON *params_parse_body(const char *body, size_t len, char *err);

#endif
