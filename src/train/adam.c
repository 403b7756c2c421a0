/* adam.c - Adam in PyTorch's order of operations (see adam.h). */
#include "adam.h"

#include <math.h>

void adam_factors(const adam_params *ap, uint64_t t, float *step_size, float *sqrt_bc2) {
    double bc1 = 1.0 - pow((double)ap->beta1, (double)t);
    double bc2 = 1.0 - pow((double)ap->beta2, (double)t);
    *step_size = (float)((double)ap->lr / bc1);
    *sqrt_bc2 = (float)sqrt(bc2);
}

void adam_step(float *p, const float *g, float *m, float *v, size_t n, const adam_params *ap, uint64_t t) {
    float step_size, sqrt_bc2;
    adam_factors(ap, t, &step_size, &sqrt_bc2);
    const float b1 = ap->beta1, b2 = ap->beta2, eps = ap->eps;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / sqrt_bc2 + eps;
        p[i] += (-step_size * m[i]) / denom; /* torch's addcdiv_(m, denom, value=-step_size) */
    }
}
