/* adam.h - the Adam optimizer (Kingma & Ba 2015) over one flat parameter buffer, in
 * exactly PyTorch's arithmetic (torch.optim.Adam, non-fused, amsgrad off, no weight
 * decay), so a run can be compared with the peer and so that the CUDA backend can
 * reproduce it element for element:
 *
 *   m = beta1*m + (1-beta1)*g
 *   v = beta2*v + (1-beta2)*g*g
 *   bc1 = 1 - beta1^t,  bc2 = 1 - beta2^t               (double, then float)
 *   p = p + (-(lr/bc1) * m) / (sqrt(v)/sqrt(bc2) + eps) (float, in this order)
 *
 * t counts Adam steps from 1 (the trainer passes iteration + 1).  One known difference:
 * 1 - beta is formed in float from a float beta (1 - 0.999f = 0.00099998713), where torch
 * uses the double 0.001: the second moment differs by about 1e-5 relative, the parameters
 * by rounding only (tests/test_trainer.c checks both against torch). */
#ifndef EBM_ADAM_H
#define EBM_ADAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float lr, beta1, beta2, eps;
} adam_params;

/* One step on n parameters p with gradients g and moments m, v (all (n)). */
void adam_step(float *p, const float *g, float *m, float *v, size_t n, const adam_params *ap, uint64_t t);

/* Bias-correction factors of step t (what adam_step uses), for backends that run the
 * element loop elsewhere: step_size = lr / bc1, and sqrt(bc2). */
void adam_factors(const adam_params *ap, uint64_t t, float *step_size, float *sqrt_bc2);

#endif
