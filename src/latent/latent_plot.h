/* latent_plot.h - the picture that explains the latent pipeline (for d = 2): the codes of
 * test images coloured by digit, the learned energy E(z) as contour lines over a shaded
 * density exp(-E), a few MALA chains from N(0, I) drawn on top, and beside the plot the
 * image the decoder makes of each chain's end point.  Drawn with cairo, written as a PNG
 * atomically. */
#ifndef EBM_LATENT_PLOT_H
#define EBM_LATENT_PLOT_H

#include <stdint.h>

#include "ebm.h"
#include "pipeline.h"

typedef struct {
    const float *codes;      /* (npoints, 2) codes of test images */
    const uint8_t *labels;   /* (npoints) their digits */
    int npoints;
    const float *paths;      /* (nchains, path_len, 2) chain positions in code space */
    int nchains, path_len;
    const float *end_images; /* (nchains, 784) decoded end points, probabilities */
    const char *title;
} latent_plot_data;

/* BAD_ARG unless the pipeline's code is 2-D. */
ebm_status latent_plot_png(latent_pipeline *p, const latent_plot_data *d, const char *path);

#endif
