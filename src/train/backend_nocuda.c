/* backend_nocuda.c - backend_cuda_create for builds without CUDA (compiled only when the
 * Makefile found no nvcc): asking for --device cuda gets a clear answer, not a link error. */
#include <string.h>

#include "backend.h"
#include "../core/common.h"

ebm_status backend_cuda_create(net *host, const train_hparams *hp, int device, train_backend *out) {
    (void)host;
    (void)hp;
    (void)device;
    memset(out, 0, sizeof *out);
    return ebm_fail(EBM_STATUS_UNSUPPORTED,
                    "this ebm was built without CUDA: rebuild on a machine with nvcc (make cuda)");
}

ebm_status backend_cuda_multi_create(net *host, const train_hparams *hp, int device, int gpus, train_backend *out) {
    (void)gpus;
    return backend_cuda_create(host, hp, device, out);
}
