/* backend_cuda.h - extras of the CUDA backend beyond backend.h's contract, for the parity
 * tests and the benchmark: energies and input gradients on the device, and the knob that
 * pins the fused kernel's block shape. */
#ifndef EBM_BACKEND_CUDA_H
#define EBM_BACKEND_CUDA_H

#include "ebm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* E (n) and dE/dx (n*784, may be NULL) at x (n*784, host) with the backend's current
 * parameters; y: labels or NULL (net_energy's meaning).  ctx: a CUDA train_backend's ctx. */
ebm_status backend_cuda_energy(void *ctx, const float *x, int n, const int *y, float *E, float *dEdx);

/* Block shape of the ULA kernel for later sample() calls: an index of cu_chain_shapes, or
 * -1 (-2) for the automatic fp32 (TF32) pick; the backend starts with hp->tf32's pick. */
void backend_cuda_set_shape(void *ctx, int shape);

/* The device buffer of weights in the kernels' layout (wlayout.h), for benchmarks that
 * launch the chain kernel directly. */
const float *backend_cuda_weights(void *ctx);

/* Mean time of the gradient all-reduce per iteration so far (ms, GPU 0's stream), for the
 * scaling benchmark.  ctx: a backend_cuda_multi_create backend's ctx with gpus > 1. */
double backend_cuda_multi_allreduce_ms(void *ctx);

#ifdef __cplusplus
}
#endif
#endif
