/* cuda_common.h - what the CUDA backend's C++ files share: the project's C headers made
 * includable from C++, and checked CUDA calls.
 *
 * Every CUDA call and kernel launch goes through CU_TRY: a failure becomes an ebm_status
 * with a message naming the call, file and line and a hint (out of device memory ->
 * EBM_STATUS_NOMEM; no device or a broken driver -> EBM_STATUS_UNSUPPORTED; anything else,
 * such as a kernel fault, -> EBM_STATUS_IO).  Nothing here exits. */
#ifndef EBM_CUDA_COMMON_H
#define EBM_CUDA_COMMON_H

#include <cuda_runtime.h>

#if defined(__cplusplus) && !defined(_Noreturn)
#define _Noreturn [[noreturn]]
#endif
#ifdef __cplusplus
extern "C" {
#endif
#include "../core/common.h"
#include "../core/net.h"
#include "../core/rng.h"
#include "../sample/langevin.h"
#include "../train/backend.h"
#include "../train/trainer.h"
#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C"
#endif
ebm_status cu_fail(cudaError_t e, const char *what, const char *file, int line);

#define CU_TRY(call)                                                                   \
    do {                                                                               \
        cudaError_t cu__e = (call);                                                    \
        if (cu__e != cudaSuccess) return cu_fail(cu__e, #call, __FILE__, __LINE__);    \
    } while (0)

/* After a launch: the launch's own error (bad configuration, too much shared memory). */
#define CU_LAUNCHED(what) CU_TRY(cudaPeekAtLastError() != cudaSuccess ? cudaGetLastError() : cudaSuccess)

#endif
