/* net.h - an energy network built from a spec string; the engine's central object.
 *
 * Spec grammar (comma-separated, in order; indices match torch.nn.Sequential so tensor
 * names "<index>.weight"/"<index>.bias" load into PyTorch unchanged):
 *   in:CxHxW           input shape (first token; default in:1x28x28 when omitted)
 *   conv:OUT:K:S:P     2-D convolution, OUT channels, kernel K, stride S, padding P
 *   dense:OUT          fully connected
 *   swish | lrelu:SLOPE | flatten
 * Named specs: "cnn-small" (DESIGN.md, 1 output), "cnn-small-cond" (10 outputs).
 *
 * f(x) is the network output (B, out_dim).  Energy: out_dim 1 -> E(x) = -f(x);
 * out_dim > 1 -> E(x) = -logsumexp_y f(x)[y] and E(x,y) = -f(x)[y].
 *
 * Memory: parameters, parameter gradients and Adam moments are each one allocation
 * (params/grads/adam_m/adam_v, nparams floats); activations one allocation sized for
 * max_batch.  Layer tensors are carved out of these by offsets. */
#ifndef EBM_NET_H
#define EBM_NET_H

#include <stddef.h>
#include <stdint.h>

#include "ebm.h"

#define NET_MAX_LAYERS 32
#define NET_SPEC_MAX 512

typedef enum { LAYER_CONV, LAYER_DENSE, LAYER_SWISH, LAYER_LRELU, LAYER_FLATTEN } layer_kind;

typedef struct {
    layer_kind kind;
    int in_c, in_h, in_w;     /* input shape (dense: in_c = features, in_h = in_w = 1) */
    int out_c, out_h, out_w;  /* output shape */
    int k, stride, pad;       /* conv only */
    float slope;              /* lrelu only */
    size_t w_off, b_off;      /* offsets into params/grads (conv, dense) */
    size_t w_len, b_len;      /* 0 for parameter-free layers */
    long act_off;             /* offset of this layer's OUTPUT in the activation buffer, per batch */
} net_layer;

typedef struct net {
    char spec[NET_SPEC_MAX];  /* canonical expanded spec */
    int nlayers;
    net_layer layers[NET_MAX_LAYERS];
    int in_c, in_h, in_w, in_dim, out_dim;
    size_t nparams;
    float *params, *grads, *adam_m, *adam_v;
    int nthreads;             /* OpenMP threads used across the batch (>=1) */
    /* private: activation and workspace buffers, per-thread gradient scratch */
    int max_batch;
    float *acts;              /* [input copy | layer 0 out | ...], each max_batch x its size;
                               * layer l's output for images [0,B) starts at acts + act_off*max_batch */
    float *work;
    long work_per_thread;
    float *group_grads;       /* parameter gradients of each group of micro-batches (net.c) */
    int grad_groups;          /* slots allocated in group_grads */
    long act_per_image;       /* floats of acts per image (input copy + every layer output) */
    int work_threads;         /* thread slots allocated in work */
    float *whwc;              /* params as the last pass read them, conv weights in (Cout,K,K,Cin)
                               * order (layers.h: conv2d_forward_hwc); nparams floats */
} net;

/* Expands a named spec ("cnn-small") or validates an explicit one into canonical form. */
ebm_status net_spec_expand(const char *spec, char *out, size_t out_len);

/* Builds the network and initialises parameters deterministically from seed
 * (PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases). */
ebm_status net_create(net **out, const char *spec, uint64_t seed);
void net_free(net *n);
/* Sets the OpenMP thread count for this net (0 = all cores). */
void net_set_threads(net *n, int nthreads);

/* f(x) for B images: x (B, in_dim) in NHWC order (for 1 channel, the plain pixel order);
 * out (B, out_dim).  Keeps activations for net_backward. */
ebm_status net_forward(net *n, const float *x, int B, float *out);
/* Back-propagates dout (B, out_dim) through the last net_forward: dx (B, in_dim) written
 * when non-NULL; parameter gradients accumulated into n->grads when with_param_grads. */
void net_backward(net *n, const float *dout, int B, float *dx, int with_param_grads);

/* Energy and its input gradient: E (B), dEdx (B, in_dim) or NULL.
 * y == NULL: E(x) (logsumexp for out_dim > 1); else E(x, y[i]), where y[i] = -1 means no
 * label, E(x) (y[i] outside [-1, out_dim) is EBM_STATUS_BAD_ARG).  Langevin's inner loop: it runs forward and
 * backward per small group of images in per-thread scratch that stays in cache, so it
 * neither uses nor disturbs the activations that net_backward reads, and computes no
 * parameter gradients. */
ebm_status net_energy(net *n, const float *x, int B, const int *y, float *E, float *dEdx);

/* The energy head alone, on network outputs f (B, out_dim) from net_forward: E (B) and
 * dE/df (B, out_dim; may be NULL), y as in net_energy (labels must be in range).  The
 * trainer scales dE/df by dLoss/dE and hands it to net_backward. */
void net_energy_head(const net *n, const float *f, int B, const int *y, float *E, float *dEdf);

/* Name of parameter tensor j (0..2*ntensors) as torch would call it: "0.weight", ... */
int net_num_tensors(const net *n);
void net_tensor_info(const net *n, int j, char *name, size_t name_len, int *ndim, int64_t shape[4],
                     size_t *offset, size_t *len);

#endif
