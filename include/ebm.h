/* ebm.h - public C API of ebm: energy-based generative models of handwritten digits.
 *
 * An energy-based model assigns a scalar energy E(x) to each 28x28 image; low energy
 * means "looks like the data".  Samples come from Langevin dynamics on E.  This header
 * is what programs linking libebm see: opaque handles, status codes, the ebm_ prefix.
 * Nothing in the library calls exit(); every user-caused failure returns a status and
 * leaves a message in ebm_last_error().
 *
 * Build: link with libebm.a and `pkg-config --libs openblas zlib libpng libcjson` -lgif -lm -fopenmp.
 */
#ifndef EBM_H
#define EBM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EBM_VERSION "0.1.0"

typedef enum {
    EBM_STATUS_OK = 0,
    EBM_STATUS_BAD_ARG,      /* a flag or argument out of range */
    EBM_STATUS_IO,           /* open/read/write/rename failed */
    EBM_STATUS_BAD_FILE,     /* file exists but its content is malformed or inconsistent */
    EBM_STATUS_NOMEM,        /* allocation failed */
    EBM_STATUS_DIVERGED,     /* NaN/Inf or exploding energies */
    EBM_STATUS_UNSUPPORTED,  /* valid request this build cannot serve (e.g. no CUDA) */
    EBM_STATUS_INTERRUPTED   /* stopped by a signal after saving state */
} ebm_status;

/* Name of a status ("EBM_STATUS_BAD_FILE"). */
const char *ebm_status_name(ebm_status s);
/* Human-readable message for the last failure on this thread (what was wrong and a hint). */
const char *ebm_last_error(void);

/* ---- models ------------------------------------------------------------------------ */
typedef struct ebm_model ebm_model;

/* spec: "cnn-small" (default), "cnn-small-cond" or an explicit layer list (see docs). */
ebm_status ebm_model_create(const char *spec, uint64_t seed, ebm_model **out);
ebm_status ebm_model_load(const char *path, ebm_model **out);
ebm_status ebm_model_save(const ebm_model *m, const char *path);
void ebm_model_free(ebm_model *m);
size_t ebm_model_num_params(const ebm_model *m);
const char *ebm_model_spec(const ebm_model *m);
/* Energies E[n] of n images x[n*784] in [-1,1]; dEdx may be NULL. */
ebm_status ebm_model_energy(ebm_model *m, const float *x, int n, float *E, float *dEdx);

/* ---- sampling ---------------------------------------------------------------------- */
typedef enum { EBM_SAMPLER_ULA = 0, EBM_SAMPLER_MALA = 1 } ebm_sampler_kind;

typedef struct {
    ebm_sampler_kind kind;
    int steps;         /* Langevin steps */
    float eps;         /* step size on the (clipped) gradient */
    float noise;       /* sigma; <0 means sqrt(2*eps) */
    float grad_clip;   /* clip each gradient element to +-grad_clip; <=0 disables */
    uint64_t seed;
} ebm_sample_params;

/* Default sampling settings of the project (documented in the README). */
ebm_sample_params ebm_sample_params_default(void);

/* Draws n images from noise into x[n*784] (values in [-1,1]).  acceptance may be NULL
 * (filled with the MALA acceptance rate, or 1 for ULA).  digit >= 0 asks a conditional
 * model for that class. */
ebm_status ebm_sample(ebm_model *m, const ebm_sample_params *p, int digit, int n,
                      float *x, float *acceptance);

#ifdef __cplusplus
}
#endif
#endif
