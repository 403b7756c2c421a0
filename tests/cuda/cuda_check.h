/* cuda_check.h - the checks the CUDA test programs share.  Each program defines
 * `static int failures` (what its exit status reports) before including this.
 *   EXPECT(cond, fmt, ...)  counts a failure and says where and why, and goes on
 *   OK(call)                an ebm_status call that must succeed; else counts, names the
 *                           call and ebm_last_error(), and returns from the test */
#ifndef EBM_TESTS_CUDA_CHECK_H
#define EBM_TESTS_CUDA_CHECK_H

#include <stdio.h>

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

#endif
