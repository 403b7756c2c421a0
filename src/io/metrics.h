/* metrics.h - the training log as JSON lines, one object per logged iteration:
 *   {"iteration": 120, "time": 31.5, "loss": -0.0123, "e_pos": -0.51, "e_neg": -0.49,
 *    "grad_norm": 0.84, "lr": 0.0001}
 * iteration counts completed iterations (1 after the first); time is seconds of training
 * since the run began, summed over resumes.  Each line is flushed as it is written, so a
 * killed run leaves a readable file; a resumed run first drops the lines after its
 * checkpoint's iteration so the log has no duplicates. */
#ifndef EBM_METRICS_H
#define EBM_METRICS_H

#include <stdint.h>

#include "ebm.h"

typedef struct {
    uint64_t iteration;
    double time;
    float loss, e_pos, e_neg, grad_norm, lr;
} metrics_row;

typedef struct metrics_log metrics_log;

/* Opens path for appending.  keep_upto = 0: starts an empty log; else keeps the existing
 * lines with iteration <= keep_upto (a missing file is fine). */
ebm_status metrics_open(const char *path, uint64_t keep_upto, metrics_log **out);
ebm_status metrics_append(metrics_log *m, const metrics_row *r);
const char *metrics_path(const metrics_log *m);
void metrics_close(metrics_log *m);

/* Reads every row of a log (rows malloc'ed, caller frees); a malformed line is BAD_FILE
 * naming the line. */
ebm_status metrics_read(const char *path, metrics_row **rows, int *n);

#endif
