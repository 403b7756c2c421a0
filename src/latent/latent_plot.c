/* latent_plot.c - codes, energy contours and MALA chains for d = 2 (see latent_plot.h). */
#include "latent_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairo.h>

#include "../core/common.h"
#include "../io/atomic.h"

#define PW 1000          /* picture */
#define PH 800
#define AX 70            /* plot area */
#define AY 56
#define AS 680
#define GRID 160         /* energy evaluated on GRID x GRID points */
#define NLEVELS 12       /* contours every 0.5 nats above the minimum */

/* tab10, the palette most readers know for ten classes */
static const double palette[10][3] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                                      {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                      {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                                      {0.090, 0.745, 0.812}};

typedef struct {
    double lo[2], hi[2];
} view;

static double px(const view *v, double z) { return AX + (z - v->lo[0]) / (v->hi[0] - v->lo[0]) * AS; }
static double py(const view *v, double z) { return AY + AS - (z - v->lo[1]) / (v->hi[1] - v->lo[1]) * AS; }

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Axis ranges: the 0.5%..99.5% quantiles of the codes, widened by 15% each side. */
static ebm_status make_view(const latent_plot_data *d, view *v) {
    float *t = malloc(sizeof(float) * (size_t)d->npoints);
    if (!t) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < d->npoints; i++) t[i] = d->codes[2 * i + a];
        qsort(t, (size_t)d->npoints, sizeof(float), cmp_float);
        const double lo = t[(int)(0.005 * (d->npoints - 1))], hi = t[(int)(0.995 * (d->npoints - 1))];
        const double pad = 0.15 * (hi - lo) + 1e-6;
        v->lo[a] = lo - pad;
        v->hi[a] = hi + pad;
    }
    free(t);
    return EBM_STATUS_OK;
}

/* One contour level by marching squares over the grid E (GRID x GRID, row j = z2 index). */
static void contour(cairo_t *cr, const view *v, const float *E, double level) {
    const double dx = (v->hi[0] - v->lo[0]) / (GRID - 1), dy = (v->hi[1] - v->lo[1]) / (GRID - 1);
    for (int j = 0; j + 1 < GRID; j++)
        for (int i = 0; i + 1 < GRID; i++) {
            /* corners in order around the cell: (i,j) (i+1,j) (i+1,j+1) (i,j+1) */
            const double c[4] = {E[j * GRID + i], E[j * GRID + i + 1], E[(j + 1) * GRID + i + 1],
                                 E[(j + 1) * GRID + i]};
            const double cx[4] = {i, i + 1, i + 1, i}, cy[4] = {j, j, j + 1, j + 1};
            double ex[4], ey[4];
            int ne = 0;
            for (int k = 0; k < 4; k++) {
                const int k2 = (k + 1) % 4;
                if ((c[k] < level) != (c[k2] < level)) {
                    const double t = (level - c[k]) / (c[k2] - c[k]);
                    ex[ne] = cx[k] + t * (cx[k2] - cx[k]);
                    ey[ne] = cy[k] + t * (cy[k2] - cy[k]);
                    ne++;
                }
            }
            if (ne < 2) continue;
            int pairs[2][2] = {{0, 1}, {2, 3}};
            if (ne == 4 && ((c[0] + c[1] + c[2] + c[3]) / 4 < level) == (c[0] < level)) {
                /* saddle whose centre sides with corner 0: the other pairing */
                pairs[0][1] = 3;
                pairs[1][0] = 1;
                pairs[1][1] = 2;
            }
            for (int p = 0; p < ne / 2; p++) {
                const int a = pairs[p][0], b = pairs[p][1];
                cairo_move_to(cr, px(v, v->lo[0] + ex[a] * dx), py(v, v->lo[1] + ey[a] * dy));
                cairo_line_to(cr, px(v, v->lo[0] + ex[b] * dx), py(v, v->lo[1] + ey[b] * dy));
            }
        }
    cairo_stroke(cr);
}

/* Energy on the grid, in code space (the EBM works on standardized codes). */
static ebm_status energy_grid(latent_pipeline *p, const view *v, float *E) {
    float *u = malloc(sizeof(float) * GRID * GRID * 2);
    if (!u) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    for (int j = 0; j < GRID; j++)
        for (int i = 0; i < GRID; i++) {
            u[2 * (j * GRID + i)] = (float)(v->lo[0] + (v->hi[0] - v->lo[0]) * i / (GRID - 1));
            u[2 * (j * GRID + i) + 1] = (float)(v->lo[1] + (v->hi[1] - v->lo[1]) * j / (GRID - 1));
        }
    lebm_standardize(&p->le, u, GRID * GRID, u);
    ebm_status s = lebm_energy(&p->le, u, GRID * GRID, E, NULL);
    free(u);
    return s;
}

static void text(cairo_t *cr, double x, double y, double size, const char *s) {
    cairo_set_font_size(cr, size);
    cairo_move_to(cr, x, y);
    cairo_show_text(cr, s);
}

/* The shaded density exp(-(E - Emin)) as a GRID x GRID image stretched over the plot. */
static void draw_density(cairo_t *cr, const float *E, float emin) {
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, GRID, GRID);
    unsigned char *data = cairo_image_surface_get_data(img);
    const int stride = cairo_image_surface_get_stride(img);
    cairo_surface_flush(img);
    for (int j = 0; j < GRID; j++)
        for (int i = 0; i < GRID; i++) {
            const double q = sqrt(exp(-(E[j * GRID + i] - emin))); /* 1 at the mode; sqrt shows the tails */
            /* white to a light blue as the density rises */
            uint32_t r = (uint32_t)(255 - 105 * q), g = (uint32_t)(255 - 70 * q), b = (uint32_t)(255 - 20 * q);
            uint32_t *row = (uint32_t *)(data + (size_t)(GRID - 1 - j) * stride); /* image rows top-down */
            row[i] = (r << 16) | (g << 8) | b;
        }
    cairo_surface_mark_dirty(img);
    cairo_save(cr);
    cairo_rectangle(cr, AX, AY, AS, AS);
    cairo_clip(cr);
    cairo_translate(cr, AX, AY);
    cairo_scale(cr, (double)AS / GRID, (double)AS / GRID);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_BILINEAR);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
}

/* A decoded 28x28 image (probabilities, white digit on black) at (x, y), scale k. */
static void draw_digit(cairo_t *cr, const float *probs, double x, double y, int k) {
    cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 28, 28);
    unsigned char *data = cairo_image_surface_get_data(img);
    const int stride = cairo_image_surface_get_stride(img);
    cairo_surface_flush(img);
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++) {
            float p = probs[r * 28 + c];
            uint32_t g = (uint32_t)lrintf(255.0f * (p < 0 ? 0 : p > 1 ? 1 : p));
            ((uint32_t *)(data + (size_t)r * stride))[c] = (g << 16) | (g << 8) | g;
        }
    cairo_surface_mark_dirty(img);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_scale(cr, k, k);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
}

static void draw(cairo_t *cr, const latent_plot_data *d, const view *v, const float *E) {
    float emin = E[0];
    for (int i = 1; i < GRID * GRID; i++) emin = fminf(emin, E[i]);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    draw_density(cr, E, emin);
    cairo_save(cr);
    cairo_rectangle(cr, AX, AY, AS, AS);
    cairo_clip(cr);
    /* contours */
    cairo_set_line_width(cr, 0.8);
    for (int k = 1; k <= NLEVELS; k++) {
        const double shade = 0.35 + 0.4 * k / NLEVELS;
        cairo_set_source_rgb(cr, shade, shade, shade + 0.05);
        contour(cr, v, E, emin + 0.5 * k);
    }
    /* codes */
    for (int i = 0; i < d->npoints; i++) {
        const double *c = palette[d->labels[i] % 10];
        cairo_set_source_rgba(cr, c[0], c[1], c[2], 0.55);
        cairo_arc(cr, px(v, d->codes[2 * i]), py(v, d->codes[2 * i + 1]), 1.7, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    /* chains: a white halo under a black line, open circle at the start, numbered end */
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    for (int pass = 0; pass < 2; pass++)
        for (int c = 0; c < d->nchains; c++) {
            const float *pth = d->paths + (size_t)c * d->path_len * 2;
            cairo_move_to(cr, px(v, pth[0]), py(v, pth[1]));
            for (int t = 1; t < d->path_len; t++) cairo_line_to(cr, px(v, pth[2 * t]), py(v, pth[2 * t + 1]));
            if (pass == 0) cairo_set_source_rgba(cr, 1, 1, 1, 0.85), cairo_set_line_width(cr, 3.0);
            else cairo_set_source_rgb(cr, 0, 0, 0), cairo_set_line_width(cr, 1.0);
            cairo_stroke(cr);
        }
    for (int c = 0; c < d->nchains; c++) {
        const float *pth = d->paths + (size_t)c * d->path_len * 2, *end = pth + 2 * (d->path_len - 1);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 1.5);
        cairo_arc(cr, px(v, pth[0]), py(v, pth[1]), 4, 0, 2 * M_PI);
        cairo_stroke(cr);
        cairo_arc(cr, px(v, end[0]), py(v, end[1]), 6, 0, 2 * M_PI);
        cairo_fill(cr);
        char num[16];
        snprintf(num, sizeof num, "%d", c + 1);
        cairo_set_source_rgb(cr, 1, 1, 1);
        text(cr, px(v, end[0]) - 3.2, py(v, end[1]) + 3.5, 10, num);
    }
    cairo_restore(cr);
    /* frame, ticks, labels */
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, AX + 0.5, AY + 0.5, AS, AS);
    cairo_stroke(cr);
    for (int a = 0; a < 2; a++)
        for (int k = 0; k <= 4; k++) {
            const double z = v->lo[a] + (v->hi[a] - v->lo[a]) * k / 4;
            char lab[32];
            snprintf(lab, sizeof lab, "%.1f", z);
            if (a == 0) text(cr, px(v, z) - 10, AY + AS + 18, 11, lab);
            else text(cr, AX - 38, py(v, z) + 4, 11, lab);
        }
    text(cr, AX + AS / 2 - 10, AY + AS + 38, 13, "z1");
    text(cr, AX - 38, AY + AS / 2 + 30, 13, "z2");
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_BOLD);
    text(cr, AX, 24, 15, d->title);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    text(cr, AX, 44, 11.5,
         "dots: codes of test images by digit;  lines: E(z) every 0.5 nats, shading exp(-E);  "
         "black: MALA chains from N(0, I)");
    /* legend and the decoded chain ends */
    const double lx = AX + AS + 30;
    text(cr, lx, AY + 12, 13, "digit");
    for (int k = 0; k < 10; k++) {
        cairo_set_source_rgb(cr, palette[k][0], palette[k][1], palette[k][2]);
        cairo_arc(cr, lx + 6, AY + 30 + 20 * k, 5, 0, 2 * M_PI);
        cairo_fill(cr);
        char lab[16];
        snprintf(lab, sizeof lab, "%d", k);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, lx + 18, AY + 34 + 20 * k, 12, lab);
    }
    const double ty = AY + 250;
    text(cr, lx, ty, 13, "chain ends, decoded");
    for (int c = 0; c < d->nchains && c < 8; c++) {
        const double x = lx + (c % 2) * 100, y = ty + 14 + (c / 2) * 104;
        draw_digit(cr, d->end_images + (size_t)c * 784, x + 14, y, 3);
        char num[16];
        snprintf(num, sizeof num, "%d", c + 1);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text(cr, x, y + 14, 12, num);
    }
}

static cairo_status_t write_chunk(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static ebm_status write_png(FILE *f, void *ctx) {
    cairo_status_t cs = cairo_surface_write_to_png_stream(ctx, write_chunk, f);
    return cs == CAIRO_STATUS_SUCCESS ? EBM_STATUS_OK : ebm_fail(EBM_STATUS_IO, "%s", cairo_status_to_string(cs));
}

ebm_status latent_plot_png(latent_pipeline *p, const latent_plot_data *d, const char *path) {
    if (p->le.code_dim != 2)
        return ebm_fail(EBM_STATUS_BAD_ARG,
                        "the plot draws 2-D codes but this pipeline has encoded_dim %d; train one with "
                        "`ebm latent train --encoded_dim 2 --out-dir DIR` and plot DIR",
                        p->le.code_dim);
    if (d->npoints < 2) return ebm_fail(EBM_STATUS_BAD_ARG, "the plot needs at least 2 codes (got %d)", d->npoints);
    view v;
    EBM_TRY(make_view(d, &v));
    float *E = malloc(sizeof(float) * GRID * GRID);
    if (!E) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    ebm_status s = energy_grid(p, &v, E);
    if (s != EBM_STATUS_OK) {
        free(E);
        return s;
    }
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, PW, PH);
    cairo_t *cr = cairo_create(surf);
    draw(cr, d, &v, E);
    cairo_surface_flush(surf);
    s = cairo_status(cr) == CAIRO_STATUS_SUCCESS
            ? io_write_atomic(path, write_png, surf)
            : ebm_fail(EBM_STATUS_IO, "cannot draw %s: %s", path, cairo_status_to_string(cairo_status(cr)));
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    free(E);
    return s;
}
