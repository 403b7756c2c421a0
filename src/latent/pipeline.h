/* pipeline.h - using a trained latent pipeline: load the autoencoder and the EBM of one
 * run (checking that they belong together), and turn MCMC samples of the code into images. */
#ifndef EBM_LATENT_PIPELINE_H
#define EBM_LATENT_PIPELINE_H

#include "ebm.h"
#include "../sample/langevin.h"
#include "autoencoder.h"
#include "latent_ebm.h"

typedef struct {
    autoencoder ae;
    ae_info ai;
    latent_ebm le;
    lebm_info li;
} latent_pipeline;

/* Loads dir/autoencoder.safetensors and dir/latent_ebm.safetensors (or the two paths
 * given, when ae_path/ebm_path are non-NULL) and runs lebm_check_pair.  max_batch: rows
 * per forward pass (chunking only). */
ebm_status latent_pipeline_load(const char *dir, const char *ae_path, const char *ebm_path, int max_batch,
                                latent_pipeline *p);
void latent_pipeline_free(latent_pipeline *p);

/* n images: n fresh chains (lebm_sample with lv), decoded to pixel probabilities
 * probs (n, 784); codes z (n, code_dim) may be NULL. */
ebm_status latent_pipeline_generate(latent_pipeline *p, int n, int steps, const langevin_params *lv, float *probs,
                                    float *z, langevin_stats *st);

#endif
