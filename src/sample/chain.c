/* chain.c - snapshot recorder for langevin_run (see chain.h). */
#include "chain.h"

#include <string.h>

#include "../core/common.h"
#include "langevin.h"

int chain_num_frames(int steps, int every) {
    int count = 0;
    for (int t = 0; t <= steps; t++) count += langevin_is_snapshot_step(t, steps, every);
    return count;
}

chain_recorder chain_recorder_make(float *frames, float *energies, int *steps, int cap, int n, int dim) {
    EBM_ASSERT(frames && cap >= 0 && n > 0 && dim > 0);
    chain_recorder r = {frames, energies, steps, cap, n, dim, 0};
    return r;
}

ebm_status chain_record(void *ud, int step, const float *x, const float *E, int n, int dim) {
    chain_recorder *r = ud;
    EBM_ASSERT(r && n == r->n && dim == r->dim && r->count < r->cap);
    size_t frame = (size_t)r->count;
    memcpy(r->frames + frame * n * dim, x, (size_t)n * dim * sizeof *x);
    if (r->energies) memcpy(r->energies + frame * n, E, (size_t)n * sizeof *E);
    if (r->steps) r->steps[frame] = step;
    r->count++;
    return EBM_STATUS_OK;
}
