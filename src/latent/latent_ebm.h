/* latent_ebm.h - the second stage of the latent pipeline: an energy E(z) on the
 * autoencoder's codes, trained by contrastive divergence, sampled by MALA (or ULA).
 *
 * Codes are standardized with the training set's per-dimension mean and std,
 * u = (z - code_mean) / code_std, and the energy is
 *     E(u) = f(u) + |u|^2 / 2,    f = MLP  d -> h (Swish) -> h (Swish) -> 1
 * The Gaussian term is a fixed base measure (as in latent-space EBM priors, Pang et al.
 * 2020): exp(-E) stays normalizable whatever a small f learns, chains cannot drift off to
 * infinity, and N(0, I) is both the starting point of fresh chains and a fair first guess
 * of the code distribution, which f then corrects.
 *
 * Contrastive divergence (one iteration on B codes): K = samples_per_datapoint chains
 * start at each code, run `steps` MALA steps; loss = mean f(u+) - mean f(u-), whose
 * gradient lowers the energy of data and raises it where the chains went.
 * RNG: chain c of iteration i uses counters (chain0 = 0, step0 = i * steps), so a resumed
 * run draws the same numbers as an uninterrupted one.
 *
 * Checkpoint "latent_ebm.safetensors": tensors 0/2/4.weight/.bias (torch.nn.Sequential
 * Linear, SiLU, Linear, SiLU, Linear), code_mean, code_std, optionally optim.m/v;
 * metadata format, encoded_dim, hidden_dim, autoencoder_fingerprint (the encoder whose
 * codes it models), epochs_done, adam_t, seed, sampler settings. */
#ifndef EBM_LATENT_EBM_H
#define EBM_LATENT_EBM_H

#include <stdint.h>

#include "ebm.h"
#include "../sample/langevin.h"
#include "autoencoder.h"
#include "mlp.h"

#define LEBM_FORMAT "ebm-latent-energy"

typedef struct {
    int code_dim, hidden, max_batch;
    mlp net;
    float *code_mean, *code_std;   /* (code_dim) each */
    float *ones;                   /* (max_batch) backward seed, one allocation with the above */
} latent_ebm;

typedef struct {
    int epochs_done;
    uint64_t seed;
    uint64_t ae_fingerprint;
    int sampler_mala, mcmc_steps, samples_per_datapoint;
    float step_size;
    double acceptance;             /* of the last training epoch; < 0 when unknown */
    double train_seconds;          /* training wall time, summed over resumed runs */
} lebm_info;

typedef struct {
    int samples_per_datapoint;     /* K */
    int steps;                     /* MCMC steps per iteration */
    langevin_params lv;            /* mala, eps, sigma (< 0: sqrt(2 eps)), seed; no clip, no range */
    float lr;
} lebm_train_params;

typedef struct {
    double e_pos, e_neg;           /* mean E of the data and of the chains' end points */
    double acceptance;             /* MALA acceptance of this iteration (1 for ULA) */
} lebm_step_stats;

ebm_status lebm_create(latent_ebm *le, int code_dim, int hidden, int max_batch, uint64_t seed);
void lebm_free(latent_ebm *le);

/* Sets code_mean and code_std from n codes z (n, code_dim); a dimension with zero spread
 * gets std 1 (so u stays finite). */
void lebm_fit_standardization(latent_ebm *le, const float *z, long n);
/* u = (z - mean)/std and back, n rows, may be in place. */
void lebm_standardize(const latent_ebm *le, const float *z, long n, float *u);
void lebm_unstandardize(const latent_ebm *le, const float *u, long n, float *z);

/* energy_fn for langevin_run (ctx = latent_ebm*): E (n) and dE/du (n, code_dim, may be NULL)
 * of n standardized codes u, any n. */
ebm_status lebm_energy(void *ctx, const float *u, int n, float *E, float *dEdu);

/* One CD iteration on B standardized codes u_pos (B, code_dim); neg is scratch of
 * K*B*code_dim floats and holds the chains' end points on return. */
ebm_status lebm_train_step(latent_ebm *le, const float *u_pos, int B, const lebm_train_params *tp, uint64_t iter,
                           float *neg, lebm_step_stats *st);

/* n fresh chains from N(0, I) (chain i's start from (p->seed, RNG_STREAM_START, i)), `steps`
 * steps of p; writes the CODES z (n, code_dim) (unstandardized, ready for the decoder).
 * path, when non-NULL, receives every step's codes too: (n, steps + 1, code_dim). */
ebm_status lebm_sample(latent_ebm *le, int n, int steps, const langevin_params *p, float *z, float *path,
                       langevin_stats *st);

ebm_status lebm_save(const latent_ebm *le, const lebm_info *info, int with_adam, const char *path);
ebm_status lebm_load(const char *path, int max_batch, latent_ebm *le, lebm_info *info);

/* The two files of a pipeline belong together: the decoder takes codes of the dimension
 * the EBM models, and the EBM was trained on this encoder's codes.  Clear BAD_FILE errors
 * naming both files otherwise. */
ebm_status lebm_check_pair(const autoencoder *ae, const char *ae_path, const latent_ebm *le,
                           const lebm_info *info, const char *le_path);

#endif
