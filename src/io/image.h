/* image.h - pictures of samples: PNG grids (libpng), animated GIFs (giflib), and the
 * terminal view (Unicode half blocks) for users on a remote shell.
 *
 * Images are float (h*w) in [-1, 1] (the data range), drawn white digit on black, as
 * MNIST.  Grids put image i at row i / cols, column i % cols, with a 2-pixel gutter at
 * scale 1, everything scaled up by an integer factor so a person can see the digits. */
#ifndef EBM_IMAGE_H
#define EBM_IMAGE_H

#include <stdio.h>

#include "ebm.h"

/* Converts [-1,1] floats to bytes (round, clamp). */
void image_to_u8(unsigned char *dst, const float *src, long n);

/* Writes a grid of n images (n <= rows*cols) as an 8-bit grayscale PNG, atomically. */
ebm_status png_write_grid(const char *path, const float *imgs, int n, int h, int w, int rows, int cols,
                          int scale);

/* The same grid PNG encoded into memory: *out (malloc'ed, caller frees with free()) holds
 * *len bytes of a complete PNG file, byte for byte what png_write_grid would write. */
ebm_status png_encode_grid_mem(const float *imgs, int n, int h, int w, int rows, int cols, int scale,
                               unsigned char **out, size_t *len);

/* Writes an animated GIF: nframes frames, each a grid of n images (frames stored one after
 * another, n*h*w floats each), delay in 1/100 s, looping forever; atomically. */
ebm_status gif_write_frames(const char *path, const float *frames, int nframes, int n, int h, int w, int rows,
                            int cols, int scale, int delay_cs);

/* Prints a grid to f with Unicode half blocks (two pixel rows per text row), 256-colour grays
 * (24-bit grays when $COLORTERM says truecolor/24bit).  Image rows are separated by a blank
 * line, images in a row by a space: rows*ceil(h/2) + rows-1 lines for rows = ceil(n/cols). */
void term_show_grid(FILE *f, const float *imgs, int n, int h, int w, int cols);
/* The same with the colour mode chosen by the caller (truecolor: 1 = 24-bit, 0 = 256-colour). */
void term_show_grid_mode(FILE *f, const float *imgs, int n, int h, int w, int cols, int truecolor);

#endif
