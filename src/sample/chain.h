/* chain.h - records Langevin snapshots into caller-owned buffers, for `ebm chain`
 * (noise -> digit, frame by frame) and for tests that look inside a run.
 *
 *   int frames = chain_num_frames(steps, every);
 *   chain_recorder r = chain_recorder_make(buf, energies, frame_steps, frames, n, dim);
 *   langevin_run(f, ctx, x, n, dim, steps, &p, NULL, chain_record, &r, every);
 *   // r.count frames: buf (frames, n, dim), energies (frames, n), frame_steps (frames)
 */
#ifndef EBM_CHAIN_H
#define EBM_CHAIN_H

#include "ebm.h"

typedef struct {
    float *frames;    /* (cap, n, dim) */
    float *energies;  /* (cap, n), or NULL */
    int *steps;       /* (cap) step of each frame, or NULL */
    int cap, n, dim;
    int count;        /* frames recorded so far */
} chain_recorder;

/* How many snapshots langevin_run makes for (steps, every): the size of the buffers. */
int chain_num_frames(int steps, int every);

chain_recorder chain_recorder_make(float *frames, float *energies, int *steps, int cap, int n, int dim);

/* A langevin_snapshot_fn; ud is a chain_recorder*.  The buffers must hold
 * chain_num_frames() frames of the same n and dim (a mismatch is a bug: it asserts). */
ebm_status chain_record(void *ud, int step, const float *x, const float *E, int n, int dim);

#endif
