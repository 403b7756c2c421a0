/* curves.h - a picture of the training curves (cairo): mean energies of positives and
 * negatives, the loss, and the gradient norm against the iteration, each raw (light) and
 * smoothed (dark), so a user sees at a glance whether a run is healthy: E+ below E-, both
 * bounded, the loss near zero. */
#ifndef EBM_CURVES_H
#define EBM_CURVES_H

#include "ebm.h"
#include "metrics.h"

/* Writes a PNG (atomically) of n rows; title goes on top.  n == 0 is BAD_ARG. */
ebm_status curves_write_png(const char *path, const metrics_row *rows, int n, const char *title);

#endif
