/* curves.c - training curves as a PNG through cairo (see curves.h). */
#include "curves.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cairo.h>

#include "atomic.h"
#include "../core/common.h"

#define W 960
#define PANEL_H 230
#define TOP 44
#define LEFT 78
#define RIGHT 24
#define GAP 34

typedef struct {
    const char *label;
    double r, g, b;
    float (*get)(const metrics_row *);
} series;

static float get_epos(const metrics_row *r) { return r->e_pos; }
static float get_eneg(const metrics_row *r) { return r->e_neg; }
static float get_loss(const metrics_row *r) { return r->loss; }
static float get_gnorm(const metrics_row *r) { return r->grad_norm; }

/* A round step (1, 2 or 5 times a power of ten) giving about `target` ticks over range. */
static double nice_step(double range, int target) {
    double raw = range / target, p = pow(10.0, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

/* Running mean over a centred window, so trends show through the per-iteration noise. */
static void smooth(const double *v, int n, int win, double *out) {
    double s = 0;
    int lo = 0, hi = 0; /* window [lo, hi) */
    for (int i = 0; i < n; i++) {
        int a = i - win / 2 < 0 ? 0 : i - win / 2, b = i + win / 2 + 1 > n ? n : i + win / 2 + 1;
        while (hi < b) s += v[hi++];
        while (lo < a) s -= v[lo++];
        out[i] = s / (hi - lo);
    }
}

static void draw_panel(cairo_t *cr, double y0, const metrics_row *rows, int n, const series *ser, int nser,
                       const char *ylabel, double *buf, double *sm) {
    const double x0 = LEFT, x1 = W - RIGHT, y1 = y0 + PANEL_H;
    double it0 = (double)rows[0].iteration, it1 = (double)rows[n - 1].iteration;
    if (it1 <= it0) it1 = it0 + 1;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < nser; s++)
        for (int i = 0; i < n; i++) {
            double v = ser[s].get(&rows[i]);
            if (isfinite(v)) lo = fmin(lo, v), hi = fmax(hi, v);
        }
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-6 * (fabs(hi) + 1e-30) || hi == lo) lo -= 0.5, hi += 0.5;
    double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
#define PX(it) (x0 + ((it) - it0) / (it1 - it0) * (x1 - x0))
#define PY(v) (y1 - ((v) - lo) / (hi - lo) * (y1 - y0))
    /* frame, grid and tick labels */
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_fill(cr);
    cairo_set_font_size(cr, 11);
    cairo_set_line_width(cr, 1);
    char txt[64];
    double ys = nice_step(hi - lo, 5);
    for (double v = ceil(lo / ys) * ys; v <= hi; v += ys) {
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, x0, floor(PY(v)) + 0.5);
        cairo_line_to(cr, x1, floor(PY(v)) + 0.5);
        cairo_stroke(cr);
        snprintf(txt, sizeof txt, "%.4g", fabs(v) < ys * 1e-6 ? 0.0 : v);
        cairo_text_extents_t te;
        cairo_text_extents(cr, txt, &te);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, x0 - 6 - te.x_advance, PY(v) + 4);
        cairo_show_text(cr, txt);
    }
    double xs = nice_step(it1 - it0, 8);
    for (double v = ceil(it0 / xs) * xs; v <= it1; v += xs) {
        cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
        cairo_move_to(cr, floor(PX(v)) + 0.5, y0);
        cairo_line_to(cr, floor(PX(v)) + 0.5, y1);
        cairo_stroke(cr);
        snprintf(txt, sizeof txt, "%.0f", v);
        cairo_text_extents_t te;
        cairo_text_extents(cr, txt, &te);
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_move_to(cr, PX(v) - te.x_advance / 2, y1 + 14);
        cairo_show_text(cr, txt);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_rectangle(cr, x0 + 0.5, y0 + 0.5, x1 - x0 - 1, y1 - y0 - 1);
    cairo_stroke(cr);
    cairo_save(cr);
    cairo_move_to(cr, 18, y0 + PANEL_H / 2 + 30);
    cairo_rotate(cr, -M_PI / 2);
    cairo_set_font_size(cr, 12);
    cairo_show_text(cr, ylabel);
    cairo_restore(cr);
    /* series: raw light, smoothed dark; clipped to the panel */
    cairo_save(cr);
    cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
    cairo_clip(cr);
    int win = n / 50 < 1 ? 1 : n / 50;
    for (int s = 0; s < nser; s++) {
        for (int i = 0; i < n; i++) buf[i] = ser[s].get(&rows[i]);
        smooth(buf, n, win, sm);
        for (int pass = 0; pass < 2; pass++) {
            const double *v = pass ? sm : buf;
            double k = pass ? 1.0 : 0.35;
            cairo_set_source_rgb(cr, 1 - k * (1 - ser[s].r), 1 - k * (1 - ser[s].g), 1 - k * (1 - ser[s].b));
            cairo_set_line_width(cr, pass ? 1.8 : 1.0);
            int pen = 0;
            for (int i = 0; i < n; i++) {
                if (!isfinite(v[i])) {
                    pen = 0;
                    continue;
                }
                double px = PX((double)rows[i].iteration), py = PY(v[i]);
                if (pen) cairo_line_to(cr, px, py);
                else cairo_move_to(cr, px, py);
                pen = 1;
            }
            if (n == 1) cairo_arc(cr, PX((double)rows[0].iteration), PY(v[0]), 2, 0, 2 * M_PI);
            cairo_stroke(cr);
        }
    }
    cairo_restore(cr);
    /* legend, on a white box so that it never hides behind a curve or a grid label */
    double lw = 10;
    cairo_set_font_size(cr, 12);
    for (int s = 0; s < nser; s++) {
        cairo_text_extents_t te;
        cairo_text_extents(cr, ser[s].label, &te);
        lw += 30 + te.x_advance;
    }
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_rectangle(cr, x0 + 4, y0 + 3, lw - 10, 16);
    cairo_fill(cr);
    double lx = x0 + 10;
    for (int s = 0; s < nser; s++) {
        cairo_set_source_rgb(cr, ser[s].r, ser[s].g, ser[s].b);
        cairo_rectangle(cr, lx, y0 + 8, 14, 3);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        cairo_move_to(cr, lx + 18, y0 + 14);
        cairo_set_font_size(cr, 12);
        cairo_show_text(cr, ser[s].label);
        cairo_text_extents_t te;
        cairo_text_extents(cr, ser[s].label, &te);
        lx += 30 + te.x_advance;
    }
#undef PX
#undef PY
}

static cairo_status_t write_chunk(void *closure, const unsigned char *data, unsigned int len) {
    return fwrite(data, 1, len, closure) == len ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

static ebm_status write_png(FILE *f, void *ctx) {
    cairo_status_t cs = cairo_surface_write_to_png_stream(ctx, write_chunk, f);
    return cs == CAIRO_STATUS_SUCCESS ? EBM_STATUS_OK : ebm_fail(EBM_STATUS_IO, "%s", cairo_status_to_string(cs));
}

ebm_status curves_write_png(const char *path, const metrics_row *rows, int n, const char *title) {
    if (n <= 0) return ebm_fail(EBM_STATUS_BAD_ARG, "cannot draw %s: no metrics rows", path);
    const int H = TOP + 3 * (PANEL_H + GAP) + 10;
    double *buf = malloc(sizeof(double) * 2 * (size_t)n);
    if (!buf) return ebm_fail(EBM_STATUS_NOMEM, "cannot draw %s: out of memory", path);
    cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t *cr = cairo_create(surf);
    cairo_set_source_rgb(cr, 0.97, 0.97, 0.97);
    cairo_paint(cr);
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_set_font_size(cr, 15);
    cairo_move_to(cr, LEFT, 26);
    cairo_show_text(cr, title ? title : "training");
    const series energies[] = {{"E+ (data)", 0.12, 0.40, 0.75, get_epos}, {"E- (samples)", 0.85, 0.33, 0.10, get_eneg}};
    const series loss[] = {{"loss", 0.20, 0.55, 0.25, get_loss}};
    const series gnorm[] = {{"gradient norm", 0.45, 0.30, 0.65, get_gnorm}};
    draw_panel(cr, TOP, rows, n, energies, 2, "mean energy", buf, buf + n);
    draw_panel(cr, TOP + PANEL_H + GAP, rows, n, loss, 1, "loss", buf, buf + n);
    draw_panel(cr, TOP + 2 * (PANEL_H + GAP), rows, n, gnorm, 1, "gradient norm", buf, buf + n);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_font_size(cr, 12);
    cairo_move_to(cr, W / 2 - 25, H - 4);
    cairo_show_text(cr, "iteration");
    cairo_surface_flush(surf);
    ebm_status s = cairo_status(cr) == CAIRO_STATUS_SUCCESS
                       ? io_write_atomic(path, write_png, surf)
                       : ebm_fail(EBM_STATUS_IO, "cannot draw %s: %s", path, cairo_status_to_string(cairo_status(cr)));
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    free(buf);
    return s;
}
