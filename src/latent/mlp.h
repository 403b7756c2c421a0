/* mlp.h - a small multilayer perceptron (a stack of dense layers, each optionally
 * followed by Swish) for the latent pipeline: the autoencoder (784 -> H -> d -> H -> 784)
 * and the latent energy (d -> h -> h -> 1) are both one of these.
 *
 * Memory, as everywhere in ebm: one allocation holds params, grads and the two Adam
 * moments (4 x nparams floats, carved in that order), one more the activations and
 * backward scratch for up to max_batch rows.  Parameter gradients accumulate (+=) until
 * mlp_zero_grad; the input gradient is written (=).
 *
 * Layer l has weight (dims[l+1], dims[l]) and bias (dims[l+1]), PyTorch's nn.Linear
 * layout; in a torch.nn.Sequential with an activation module after each activated layer
 * it is module number mlp_torch_index(m, l), which names the tensors in checkpoints.
 */
#ifndef EBM_LATENT_MLP_H
#define EBM_LATENT_MLP_H

#include <stddef.h>
#include <stdint.h>

#include "ebm.h"
#include "../io/safetensors.h"

#define MLP_MAX_LAYERS 8

typedef struct {
    int nlayers;                       /* dense layers */
    int dims[MLP_MAX_LAYERS + 1];      /* dims[0] inputs ... dims[nlayers] outputs */
    int swish[MLP_MAX_LAYERS];         /* 1: Swish after layer l */
    size_t w_off[MLP_MAX_LAYERS], b_off[MLP_MAX_LAYERS];
    size_t nparams;
    float *params, *grads, *adam_m, *adam_v;   /* one allocation, nparams floats each */
    long adam_t;                               /* Adam steps taken */
    int max_batch;
    /* private: per layer, the pre-activation (max_batch, dims[l+1]) and, for activated
     * layers, the post-activation; two backward scratch buffers; the last forward pass. */
    float *acts;
    float *pre[MLP_MAX_LAYERS], *post[MLP_MAX_LAYERS];
    float *scratch0, *scratch1;
    const float *last_in;
    int last_B;
} mlp;

/* Builds the network; weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's
 * default) from (seed, init_tag), so two nets of one seed differ by their tag. */
ebm_status mlp_create(mlp *m, int nlayers, const int *dims, const int *swish, int max_batch, uint64_t seed,
                      uint32_t init_tag);
void mlp_free(mlp *m);

/* Forward pass for B <= max_batch rows x (B, dims[0]); returns the output (B,
 * dims[nlayers]), a pointer into the activation buffer valid until the next call.
 * x must stay unchanged until mlp_backward. */
const float *mlp_forward(mlp *m, const float *x, int B);

/* Back-propagates dout (B, dims[nlayers]) of the last forward pass: dx (B, dims[0]) written
 * when non-NULL; parameter gradients accumulated when param_grads. */
void mlp_backward(mlp *m, const float *dout, float *dx, int param_grads);

void mlp_zero_grad(mlp *m);

/* One Adam step on all parameters (bias-corrected; beta1 0.9, beta2 0.999, eps 1e-8 as
 * torch.optim.Adam, the optimiser of the original pipeline). */
void mlp_adam_step(mlp *m, float lr);

/* Module index of dense layer l in the equivalent torch.nn.Sequential. */
int mlp_torch_index(const mlp *m, int l);

/* Adds the tensors "<prefix><idx>.weight"/".bias" to w (borrowing m's memory until commit);
 * with_adam also adds the Adam moments as "<optim_prefix>m" and "...v" (flat) for resume. */
ebm_status mlp_save(const mlp *m, st_writer *w, const char *prefix, int with_adam, const char *optim_prefix);
/* Loads what mlp_save wrote into a net built with the same dims (checked by the tensor
 * shapes); Adam moments are loaded when present in f and want_adam, else zeroed. */
ebm_status mlp_load(mlp *m, const st_file *f, const char *prefix, int want_adam, const char *optim_prefix);

/* 64-bit FNV-1a hash of the parameters: identifies the exact network a second model
 * was trained against (the latent EBM records its autoencoder's). */
uint64_t mlp_fingerprint(const mlp *m);

#endif
