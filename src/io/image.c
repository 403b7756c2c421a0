/* image.c - PNG grids (libpng), animated GIFs (giflib 5) and the terminal half-block view.
 *
 * PNG and GIF share one layout: the grid is rendered into an 8-bit gray canvas, then
 * encoded into a temp file that replaces the target only when complete (atomic.h), or,
 * for PNG, into memory (the web server sends it without touching the disk). */
#include "image.h"

#include <errno.h>
#include <gif_lib.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "core/common.h"

#define GUTTER_GRAY 40     /* dark gray: cells stand apart from the black digit background */
#define MAX_SIDE 32768     /* pixels per side; GIF allows 65535, viewers choke far earlier */
#define MAX_PIXELS (1L << 28)

static inline unsigned char to_u8(float x) {
    float v = (x + 1.f) * 0.5f * 255.f;
    if (!(v > 0.f)) return 0; /* also NaN */
    if (v >= 255.f) return 255;
    return (unsigned char)(v + 0.5f);
}

void image_to_u8(unsigned char *dst, const float *src, long n) {
    for (long i = 0; i < n; i++) dst[i] = to_u8(src[i]);
}

typedef struct {
    int n, h, w, rows, cols, scale;
    int W, H; /* canvas size in pixels */
} grid_layout;

static ebm_status grid_plan(const char *path, int n, int h, int w, int rows, int cols, int scale, grid_layout *g) {
    if (n < 0 || h < 1 || w < 1 || rows < 1 || cols < 1 || scale < 1 || (long)n > (long)rows * cols)
        return ebm_fail(EBM_STATUS_BAD_ARG,
                        "%s: cannot lay out %d images of %dx%d in a %dx%d grid at scale %d (need 0 <= n <= "
                        "rows*cols and sizes >= 1)",
                        path, n, h, w, rows, cols, scale);
    if (h > MAX_SIDE || w > MAX_SIDE || rows > MAX_SIDE || cols > MAX_SIDE || scale > MAX_SIDE)
        return ebm_fail(EBM_STATUS_BAD_ARG, "%s: grid dimensions above %d", path, MAX_SIDE);
    long W = (long)cols * w * scale + (long)(cols - 1) * 2 * scale;
    long H = (long)rows * h * scale + (long)(rows - 1) * 2 * scale;
    if (W > MAX_SIDE || H > MAX_SIDE || W * H > MAX_PIXELS)
        return ebm_fail(EBM_STATUS_BAD_ARG, "%s: a %ldx%ld picture is too large (at most %d per side, %ld pixels): "
                        "use a smaller grid or scale", path, W, H, MAX_SIDE, MAX_PIXELS);
    *g = (grid_layout){n, h, w, rows, cols, scale, (int)W, (int)H};
    return EBM_STATUS_OK;
}

/* Draws imgs (n*h*w floats) into canvas (H*W bytes). */
static void grid_render(const grid_layout *g, const float *imgs, unsigned char *canvas) {
    int s = g->scale;
    memset(canvas, GUTTER_GRAY, (size_t)g->W * (size_t)g->H);
    for (int i = 0; i < g->n; i++) {
        const float *img = imgs + (size_t)i * g->h * g->w;
        int y0 = (i / g->cols) * (g->h + 2) * s, x0 = (i % g->cols) * (g->w + 2) * s;
        for (int y = 0; y < g->h * s; y++) {
            unsigned char *dst = canvas + (size_t)(y0 + y) * g->W + x0;
            const float *src = img + (size_t)(y / s) * g->w;
            for (int x = 0; x < g->w * s; x++) dst[x] = to_u8(src[x / s]);
        }
    }
}

/* ---- PNG ---------------------------------------------------------------------------- */

/* Growing memory sink for png_encode_grid_mem. */
typedef struct {
    unsigned char *buf;
    size_t len, cap;
    int oom;
} png_mem;

typedef struct {
    const unsigned char *pix;
    int W, H;
    png_mem *mem;  /* NULL: encode into the FILE; else into this buffer */
} png_job;

typedef struct {
    char msg[200];
    int errnum;
} png_err_info;

/* libpng reports errors by calling this and must not return: longjmp back to png_encode. */
static void png_on_error(png_structp png, png_const_charp msg) {
    png_err_info *e = png_get_error_ptr(png);
    e->errnum = errno;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static void png_mem_write(png_structp png, png_bytep data, size_t len) {
    png_mem *m = png_get_io_ptr(png);
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        while (cap < m->len + len) cap *= 2;
        unsigned char *nb = realloc(m->buf, cap);
        if (!nb) {
            m->oom = 1;
            png_error(png, "out of memory for the encoded picture");
        }
        m->buf = nb, m->cap = cap;
    }
    memcpy(m->buf + m->len, data, len);
    m->len += len;
}

static void png_mem_flush(png_structp png) { (void)png; }

static ebm_status png_encode(FILE *f, void *vjob) {
    const png_job *job = vjob;
    png_err_info err = {"", 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return ebm_fail(EBM_STATUS_NOMEM, "libpng: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        if (job->mem && job->mem->oom) return ebm_fail(EBM_STATUS_NOMEM, "libpng: %s", err.msg);
        return ebm_fail(EBM_STATUS_IO, "libpng: %s (%s)", err.msg, err.errnum ? strerror(err.errnum) : "no system error");
    }
    if (job->mem) png_set_write_fn(png, job->mem, png_mem_write, png_mem_flush);
    else png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)job->W, (png_uint_32)job->H, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < job->H; y++) png_write_row(png, job->pix + (size_t)y * job->W);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return EBM_STATUS_OK;
}

ebm_status png_write_grid(const char *path, const float *imgs, int n, int h, int w, int rows, int cols,
                          int scale) {
    EBM_ASSERT(path && (imgs || n == 0));
    grid_layout g = {0};
    EBM_TRY(grid_plan(path, n, h, w, rows, cols, scale, &g));
    unsigned char *canvas = malloc((size_t)g.W * (size_t)g.H);
    if (!canvas) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory for a %dx%d picture", path, g.W, g.H);
    grid_render(&g, imgs, canvas);
    png_job job = {canvas, g.W, g.H, NULL};
    ebm_status s = io_write_atomic(path, png_encode, &job);
    free(canvas);
    return s;
}

ebm_status png_encode_grid_mem(const float *imgs, int n, int h, int w, int rows, int cols, int scale,
                               unsigned char **out, size_t *len) {
    EBM_ASSERT((imgs || n == 0) && out && len);
    *out = NULL;
    *len = 0;
    grid_layout g = {0};
    EBM_TRY(grid_plan("PNG", n, h, w, rows, cols, scale, &g));
    unsigned char *canvas = malloc((size_t)g.W * (size_t)g.H);
    if (!canvas) return ebm_fail(EBM_STATUS_NOMEM, "PNG: out of memory for a %dx%d picture", g.W, g.H);
    grid_render(&g, imgs, canvas);
    png_mem mem = {NULL, 0, 0, 0};
    png_job job = {canvas, g.W, g.H, &mem};
    ebm_status s = png_encode(NULL, &job);
    free(canvas);
    if (s != EBM_STATUS_OK) {
        free(mem.buf);
        return s;
    }
    *out = mem.buf;
    *len = mem.len;
    return EBM_STATUS_OK;
}

/* ---- GIF ---------------------------------------------------------------------------- */

typedef struct {
    const grid_layout *g;
    const float *frames;
    int nframes, delay_cs;
    unsigned char *canvas;
} gif_job;

static int gif_output(GifFileType *gif, const GifByteType *buf, int len) {
    return (int)fwrite(buf, 1, (size_t)len, (FILE *)gif->UserData);
}

static ebm_status gif_encode(FILE *f, void *vjob) {
    const gif_job *job = vjob;
    const grid_layout *g = job->g;
    int err = 0;
    GifFileType *gif = EGifOpen(f, gif_output, &err);
    if (!gif) return ebm_fail(EBM_STATUS_NOMEM, "giflib: %s", GifErrorString(err));
    ColorMapObject *cmap = GifMakeMapObject(256, NULL);
    if (!cmap) {
        EGifCloseFile(gif, &err);
        return ebm_fail(EBM_STATUS_NOMEM, "giflib: out of memory");
    }
    for (int i = 0; i < 256; i++) cmap->Colors[i] = (GifColorType){(GifByteType)i, (GifByteType)i, (GifByteType)i};
    EGifSetGifVersion(gif, true); /* GIF89a: needed for the extensions below */
    bool ok = EGifPutScreenDesc(gif, g->W, g->H, 8, 0, cmap) == GIF_OK;
    GifFreeMapObject(cmap);

    /* NETSCAPE2.0 application extension: sub-block 1, loop count 0 = forever. */
    static const GifByteType loop[3] = {1, 0, 0};
    ok = ok && EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) == GIF_OK &&
         EGifPutExtensionBlock(gif, 11, "NETSCAPE2.0") == GIF_OK && EGifPutExtensionBlock(gif, 3, loop) == GIF_OK &&
         EGifPutExtensionTrailer(gif) == GIF_OK;

    GraphicsControlBlock gcb = {.DisposalMode = DISPOSE_DO_NOT, .UserInputFlag = false,
                                .DelayTime = job->delay_cs, .TransparentColor = NO_TRANSPARENT_COLOR};
    GifByteType ext[4];
    int elen = (int)EGifGCBToExtension(&gcb, ext);
    size_t frame_floats = (size_t)g->n * g->h * g->w;
    for (int k = 0; ok && k < job->nframes; k++) {
        grid_render(g, job->frames + (size_t)k * frame_floats, job->canvas);
        ok = EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, elen, ext) == GIF_OK &&
             EGifPutImageDesc(gif, 0, 0, g->W, g->H, false, NULL) == GIF_OK;
        for (int y = 0; ok && y < g->H; y++) ok = EGifPutLine(gif, job->canvas + (size_t)y * g->W, g->W) == GIF_OK;
    }
    int gerr = gif->Error, saved_errno = errno;
    if (EGifCloseFile(gif, &err) != GIF_OK && ok) { /* writes the trailer */
        ok = false;
        gerr = err;
        saved_errno = errno;
    }
    if (!ok)
        return ebm_fail(EBM_STATUS_IO, "giflib: %s (%s)", GifErrorString(gerr),
                        saved_errno ? strerror(saved_errno) : "no system error");
    return EBM_STATUS_OK;
}

ebm_status gif_write_frames(const char *path, const float *frames, int nframes, int n, int h, int w, int rows,
                            int cols, int scale, int delay_cs) {
    EBM_ASSERT(path && (frames || n == 0 || nframes == 0));
    if (nframes < 1 || delay_cs < 0 || delay_cs > 65535)
        return ebm_fail(EBM_STATUS_BAD_ARG, "%s: an animation needs >= 1 frame and a delay of 0..65535 cs (got %d, %d)",
                        path, nframes, delay_cs);
    grid_layout g = {0};
    EBM_TRY(grid_plan(path, n, h, w, rows, cols, scale, &g));
    unsigned char *canvas = malloc((size_t)g.W * (size_t)g.H);
    if (!canvas) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory for a %dx%d picture", path, g.W, g.H);
    gif_job job = {&g, frames, nframes, delay_cs, canvas};
    ebm_status s = io_write_atomic(path, gif_encode, &job);
    free(canvas);
    return s;
}

/* ---- terminal ----------------------------------------------------------------------- */

/* Nearest xterm-256 gray: 16 is black, 231 white, 232..255 the ramp 8, 18, .., 238. */
static int xterm_gray(unsigned char v) {
    if (v < 4) return 16;
    if (v > 246) return 231;
    int k = (v - 8 + 5) / 10;
    return 232 + (k < 0 ? 0 : k > 23 ? 23 : k);
}

static void term_color(FILE *f, int bg, int v, int truecolor) {
    if (v < 0) fputs(bg ? "\x1b[49m" : "\x1b[39m", f);
    else if (truecolor) fprintf(f, "\x1b[%d;2;%d;%d;%dm", bg ? 48 : 38, v, v, v);
    else fprintf(f, "\x1b[%d;5;%dm", bg ? 48 : 38, xterm_gray((unsigned char)v));
}

void term_show_grid_mode(FILE *f, const float *imgs, int n, int h, int w, int cols, int truecolor) {
    EBM_ASSERT(f && (imgs || n == 0) && n >= 0 && h > 0 && w > 0 && cols > 0);
    int nrows = (n + cols - 1) / cols;
    for (int r = 0; r < nrows; r++) {
        if (r > 0) fputc('\n', f);
        for (int ty = 0; ty < (h + 1) / 2; ty++) {
            int fg = -2, bg = -2; /* last colours sent on this line; -2 = none yet */
            for (int c = 0; c < cols && r * cols + c < n; c++) {
                const float *img = imgs + (size_t)(r * cols + c) * h * w;
                if (c > 0) {
                    fputs("\x1b[0m ", f);
                    fg = bg = -2;
                }
                for (int x = 0; x < w; x++) {
                    int top = to_u8(img[(2 * ty) * w + x]);
                    int bot = 2 * ty + 1 < h ? to_u8(img[(2 * ty + 1) * w + x]) : -1;
                    if (top != fg) term_color(f, 0, fg = top, truecolor);
                    if (bot != bg) term_color(f, 1, bg = bot, truecolor);
                    fputs("\xe2\x96\x80", f); /* U+2580 upper half block: fg above, bg below */
                }
            }
            fputs("\x1b[0m\n", f);
        }
    }
    fflush(f);
}

void term_show_grid(FILE *f, const float *imgs, int n, int h, int w, int cols) {
    const char *ct = getenv("COLORTERM");
    int truecolor = ct && (strstr(ct, "truecolor") || strstr(ct, "24bit"));
    term_show_grid_mode(f, imgs, n, h, w, cols, truecolor);
}
