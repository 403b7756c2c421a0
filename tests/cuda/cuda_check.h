/* cuda_check.h - the checks the CUDA test programs share.  Each program defines
 * `static int failures` (what its exit status reports) before including this.
 *   EXPECT(cond, fmt, ...)  counts a failure and says where and why, and goes on
 *   OK(call)                an ebm_status call that must succeed; else counts, names the
 *                           call and ebm_last_error(), and returns from the test
 *   images(n, seed, scale)  n test images, uniform in [-scale, scale] */
#ifndef EBM_TESTS_CUDA_CHECK_H
#define EBM_TESTS_CUDA_CHECK_H

#include <stdio.h>
#include <vector>

#include "cuda/cuda_common.h"

#define EXPECT(cond, ...)                                                                            \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            printf("  FAIL %s:%d: ", __FILE__, __LINE__);                                           \
            printf(__VA_ARGS__);                                                                    \
            printf("\n");                                                                           \
            failures++;                                                                             \
        }                                                                                           \
    } while (0)

#define OK(call)                                                                                    \
    do {                                                                                            \
        ebm_status s_ = (call);                                                                     \
        if (s_ != EBM_STATUS_OK) {                                                                  \
            printf("  FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call, ebm_status_name(s_), \
                   ebm_last_error());                                                               \
            failures++;                                                                             \
            return;                                                                                 \
        }                                                                                           \
    } while (0)

static std::vector<float> images(int n, uint64_t seed, float scale) {
    std::vector<float> x((size_t)n * 784);
    for (int i = 0; i < n; i++) {
        rng_uniform_fill(seed, 9, (uint32_t)i, 0, &x[(size_t)i * 784], 784);
        for (int k = 0; k < 784; k++) x[(size_t)i * 784 + k] = scale * (2.0f * x[(size_t)i * 784 + k] - 1.0f);
    }
    return x;
}

#endif
