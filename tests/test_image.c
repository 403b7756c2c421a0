/* test_image.c - PNG grids and GIF animations read back with libpng and giflib pixel by
 * pixel, the terminal view's line count and colours, bad arguments and failed writes. */
#include "testutil.h"

#include <dirent.h>
#include <gif_lib.h>
#include <png.h>
#include <signal.h>
#include <sys/resource.h>

#include "io/image.h"

static char dir[256];

/* Float whose conversion to a byte is exactly v. */
static float from_u8(int v) { return (float)v / 255.f * 2.f - 1.f; }

/* n images of h*w with distinct, exactly representable bytes: 7*i + 3*y + x + 10. */
static float *pattern(int n, int h, int w, int salt) {
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1) * h * w);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) p[(i * h + y) * w + x] = from_u8((7 * i + 3 * y + x + 10 + salt) % 256);
    return p;
}

/* What pixel (X, Y) of a grid must hold, derived from the documented layout: cells of
 * (w+2)*scale by (h+2)*scale, the last 2*scale of each the gutter (gray 40); empty cells gray 40. */
static int expected_pixel(int X, int Y, int n, int h, int w, int cols, int scale, int salt) {
    int cw = (w + 2) * scale, ch = (h + 2) * scale;
    int c = X / cw, r = Y / ch, x = (X % cw) / scale, y = (Y % ch) / scale;
    int i = r * cols + c;
    if (x >= w || y >= h || i >= n) return 40;
    return (7 * i + 3 * y + x + 10 + salt) % 256;
}

static int count_files(void) {
    DIR *d = opendir(dir);
    int k = 0;
    for (struct dirent *e; (e = readdir(d));) k += e->d_name[0] != '.';
    closedir(d);
    return k;
}

static void test_to_u8_rounds_and_clamps(void **state) {
    float in[8] = {-1.f, 1.f, 0.f, -2.f, 3.f, NAN, from_u8(77), -1.f + 1.4f / 127.5f}; /* 0.7 rounds up */
    unsigned char out[8];
    image_to_u8(out, in, 8);
    unsigned char want[8] = {0, 255, 128, 0, 255, 0, 77, 1};
    assert_memory_equal(out, want, 8);
}

static void test_png_grid_has_layout_scale_gutter_and_pixels(void **state) {
    int n = 5, h = 3, w = 4, rows = 2, cols = 3, scale = 2;
    float *imgs = pattern(n, h, w, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/grid.png", dir);
    assert_int_equal(png_write_grid(path, imgs, n, h, w, rows, cols, scale), EBM_STATUS_OK);

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_file(&img, path));
    assert_int_equal(img.format & PNG_FORMAT_FLAG_COLOR, 0); /* stored as gray */
    int W = 3 * 4 * 2 + 2 * 2 * 2, H = 2 * 3 * 2 + 1 * 2 * 2;
    assert_int_equal(img.width, W);
    assert_int_equal(img.height, H);
    img.format = PNG_FORMAT_GRAY;
    unsigned char *pix = malloc(PNG_IMAGE_SIZE(img));
    /* png_image converts to sRGB-linear unless the file is 8-bit gray without gamma: then
     * the bytes come back as stored. */
    assert_true(png_image_finish_read(&img, NULL, pix, 0, NULL));
    int bad = 0;
    for (int Y = 0; Y < H; Y++)
        for (int X = 0; X < W; X++) {
            int e = expected_pixel(X, Y, n, h, w, cols, scale, 0);
            if (pix[Y * W + X] != e && bad++ < 5) printf("  pixel (%d,%d) = %d, want %d\n", X, Y, pix[Y * W + X], e);
        }
    printf("  %dx%d grid, %d wrong pixels; image 0 at (0,0): %d, empty cell at the end: %d, gutter at x=8: %d\n", W,
           H, bad, pix[0], pix[W * H - 1], pix[8]);
    assert_int_equal(bad, 0);
    assert_int_equal(pix[0], 10);
    assert_int_equal(pix[W * H - 1], 40);
    assert_int_equal(pix[8], 40);
    assert_int_equal(pix[7], 10 + 3); /* x = 7 is pixel 3 of image 0 at scale 2 */
    free(pix);
    free(imgs);
}

static void test_png_bad_arguments_are_bad_arg_and_write_nothing(void **state) {
    float *imgs = pattern(4, 2, 2, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/badarg.png", dir);
    int before = count_files();
    assert_int_equal(png_write_grid(path, imgs, 5, 2, 2, 2, 2, 1), EBM_STATUS_BAD_ARG); /* n > rows*cols */
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), path));
    assert_int_equal(png_write_grid(path, imgs, 4, 2, 2, 2, 2, 0), EBM_STATUS_BAD_ARG);  /* scale 0 */
    assert_int_equal(png_write_grid(path, imgs, 4, 2, 2, 0, 2, 1), EBM_STATUS_BAD_ARG);  /* rows 0 */
    assert_int_equal(png_write_grid(path, imgs, 4, 2, 2, 2, -1, 1), EBM_STATUS_BAD_ARG); /* cols < 0 */
    assert_int_equal(png_write_grid(path, imgs, -1, 2, 2, 2, 2, 1), EBM_STATUS_BAD_ARG);
    assert_int_equal(png_write_grid(path, imgs, 4, 2, 2, 2, 2, 100000), EBM_STATUS_BAD_ARG); /* too large */
    assert_int_equal(count_files(), before);
    free(imgs);
}

static void test_png_unwritable_path_is_io_error(void **state) {
    float *imgs = pattern(1, 2, 2, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
    assert_int_equal(png_write_grid(path, imgs, 1, 2, 2, 1, 1, 1), EBM_STATUS_IO);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), path));
    free(imgs);
}

/* libpng's own write error (a size limit, as a full disk) comes back through setjmp as
 * EBM_STATUS_IO, and the previous picture survives. */
static void test_png_write_error_inside_libpng_keeps_old_file(void **state) {
    char path[512];
    snprintf(path, sizeof path, "%s/keep.png", dir);
    float *small = pattern(1, 2, 2, 0);
    assert_int_equal(png_write_grid(path, small, 1, 2, 2, 1, 1, 1), EBM_STATUS_OK);
    FILE *f = fopen(path, "rb");
    unsigned char before[512];
    size_t nb = fread(before, 1, sizeof before, f);
    fclose(f);

    int n = 64, h = 28, w = 28;
    float *noise = malloc(sizeof(float) * n * h * w);
    uint32_t s = 12345;
    for (int i = 0; i < n * h * w; i++) {
        s = s * 1664525u + 1013904223u;
        noise[i] = (float)(s >> 8) / 8388608.f - 1.f; /* incompressible */
    }
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 2000;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    ebm_status st = png_write_grid(path, noise, n, h, w, 8, 8, 1);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    printf("  %s\n", ebm_last_error());
    assert_int_equal(st, EBM_STATUS_IO);
    assert_non_null(strstr(ebm_last_error(), path));

    unsigned char after[512];
    f = fopen(path, "rb");
    size_t na = fread(after, 1, sizeof after, f);
    fclose(f);
    assert_int_equal(na, nb);
    assert_memory_equal(after, before, nb);
    DIR *d = opendir(dir);
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) fail_msg("temp file %s left behind", e->d_name);
    closedir(d);
    free(noise);
    free(small);
}

static void test_gif_has_frames_loop_extension_delay_and_pixels(void **state) {
    int nframes = 3, n = 2, h = 5, w = 3, rows = 1, cols = 2, scale = 1, delay = 7;
    size_t per = (size_t)n * h * w;
    float *frames = malloc(sizeof(float) * per * nframes);
    for (int k = 0; k < nframes; k++) {
        float *p = pattern(n, h, w, 50 * k);
        memcpy(frames + k * per, p, sizeof(float) * per);
        free(p);
    }
    char path[512];
    snprintf(path, sizeof path, "%s/chain.gif", dir);
    assert_int_equal(gif_write_frames(path, frames, nframes, n, h, w, rows, cols, scale, delay), EBM_STATUS_OK);

    int err = 0;
    GifFileType *gif = DGifOpenFileName(path, &err);
    assert_non_null(gif);
    assert_int_equal(DGifSlurp(gif), GIF_OK);
    int W = 2 * 3 + 2, H = 5;
    assert_int_equal(gif->SWidth, W);
    assert_int_equal(gif->SHeight, H);
    assert_int_equal(gif->ImageCount, nframes);
    assert_non_null(gif->SColorMap);
    assert_int_equal(gif->SColorMap->ColorCount, 256);
    for (int i = 0; i < 256; i++) {
        GifColorType c = gif->SColorMap->Colors[i];
        if (c.Red != i || c.Green != i || c.Blue != i) fail_msg("palette entry %d is not gray %d", i, i);
    }

    /* The NETSCAPE2.0 block (attached to the first image by DGifSlurp), then {1, 0, 0}. */
    int loop = 0;
    SavedImage *s0 = &gif->SavedImages[0];
    for (int b = 0; b + 1 < s0->ExtensionBlockCount; b++) {
        ExtensionBlock *e = &s0->ExtensionBlocks[b];
        if (e->Function == APPLICATION_EXT_FUNC_CODE && e->ByteCount == 11 && !memcmp(e->Bytes, "NETSCAPE2.0", 11)) {
            ExtensionBlock *d = &s0->ExtensionBlocks[b + 1];
            loop = d->ByteCount == 3 && d->Bytes[0] == 1 && d->Bytes[1] == 0 && d->Bytes[2] == 0;
        }
    }
    assert_true(loop);

    int bad = 0;
    for (int k = 0; k < nframes; k++) {
        GraphicsControlBlock gcb;
        assert_int_equal(DGifSavedExtensionToGCB(gif, k, &gcb), GIF_OK);
        assert_int_equal(gcb.DelayTime, delay);
        SavedImage *im = &gif->SavedImages[k];
        assert_int_equal(im->ImageDesc.Width, W);
        assert_int_equal(im->ImageDesc.Height, H);
        for (int Y = 0; Y < H; Y++)
            for (int X = 0; X < W; X++) bad += im->RasterBits[Y * W + X] != expected_pixel(X, Y, n, h, w, cols, scale, 50 * k);
    }
    printf("  %dx%d, %d frames, loop forever, delay %d cs, %d wrong pixels\n", W, H, gif->ImageCount, delay, bad);
    assert_int_equal(bad, 0);
    DGifCloseFile(gif, &err);
    free(frames);
}

static void test_gif_bad_arguments_and_unwritable_path(void **state) {
    float *f = pattern(1, 2, 2, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/x.gif", dir);
    assert_int_equal(gif_write_frames(path, f, 0, 1, 2, 2, 1, 1, 1, 5), EBM_STATUS_BAD_ARG);
    assert_int_equal(gif_write_frames(path, f, 1, 2, 2, 2, 1, 1, 1, 5), EBM_STATUS_BAD_ARG);
    assert_int_equal(gif_write_frames(path, f, 1, 1, 2, 2, 1, 1, 1, -1), EBM_STATUS_BAD_ARG);
    snprintf(path, sizeof path, "%s/missing-dir/x.gif", dir);
    assert_int_equal(gif_write_frames(path, f, 1, 1, 2, 2, 1, 1, 1, 5), EBM_STATUS_IO);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), path));
    free(f);
}

static char *capture(int n, int h, int w, int cols, int mode, const float *imgs) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (mode < 0) term_show_grid(f, imgs, n, h, w, cols);
    else term_show_grid_mode(f, imgs, n, h, w, cols, mode);
    fclose(f);
    return buf;
}

static int count_str(const char *s, const char *needle) {
    int k = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) k++;
    return k;
}

static void test_terminal_view_lines_blocks_and_colours(void **state) {
    int n = 5, h = 5, w = 3, cols = 2; /* 3 image rows of ceil(5/2) = 3 lines, 2 blank lines */
    float *imgs = pattern(n, h, w, 0);
    imgs[0] = 1.f; /* white top-left pixel */
    char *out = capture(n, h, w, cols, 0, imgs);
    printf("  %zu bytes, %d lines\n", strlen(out), count_str(out, "\n"));
    assert_int_equal(count_str(out, "\n"), 3 * 3 + 2);
    assert_int_equal(count_str(out, "\xe2\x96\x80"), n * w * 3);
    assert_non_null(strstr(out, "\x1b[38;5;231m")); /* white in the 256-colour palette */
    assert_null(strstr(out, "\x1b[38;2;"));
    /* Odd h: the lower half of each image's last line is the terminal's own background, set
     * once per image there (colours are only sent when they change). */
    assert_int_equal(count_str(out, "\x1b[49m"), n);
    free(out);

    out = capture(n, h, w, cols, 1, imgs);
    assert_non_null(strstr(out, "\x1b[38;2;255;255;255m"));
    assert_int_equal(count_str(out, "\n"), 11);
    free(out);

    setenv("COLORTERM", "truecolor", 1);
    out = capture(n, h, w, cols, -1, imgs);
    assert_non_null(strstr(out, "\x1b[38;2;"));
    free(out);
    unsetenv("COLORTERM");
    out = capture(n, h, w, cols, -1, imgs);
    assert_null(strstr(out, "\x1b[38;2;"));
    free(out);
    free(imgs);
}

int main(void) {
    tu_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_u8_rounds_and_clamps),
        cmocka_unit_test(test_png_grid_has_layout_scale_gutter_and_pixels),
        cmocka_unit_test(test_png_bad_arguments_are_bad_arg_and_write_nothing),
        cmocka_unit_test(test_png_unwritable_path_is_io_error),
        cmocka_unit_test(test_png_write_error_inside_libpng_keeps_old_file),
        cmocka_unit_test(test_gif_has_frames_loop_extension_delay_and_pixels),
        cmocka_unit_test(test_gif_bad_arguments_and_unwritable_path),
        cmocka_unit_test(test_terminal_view_lines_blocks_and_colours),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
