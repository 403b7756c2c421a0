/* ckpt.h - reading the metadata of the latent pipeline's checkpoints: numbers stored as
 * strings in safetensors' __metadata__ map, parsed strictly, with messages that name the
 * file and the key.  (Writing goes through st_writer_meta with printf-formatted values.) */
#ifndef EBM_LATENT_CKPT_H
#define EBM_LATENT_CKPT_H

#include <stdint.h>

#include "ebm.h"
#include "../io/safetensors.h"

/* Integer metadata `key` of f (file name `path` for messages), required in [lo, hi]. */
ebm_status ckpt_meta_long(const st_file *f, const char *path, const char *key, long lo, long hi, long *out);
/* Floating-point metadata; absent keys give `dflt` when required is 0. */
ebm_status ckpt_meta_double(const st_file *f, const char *path, const char *key, int required, double dflt,
                            double *out);
/* 64-bit value written as 16 hex digits. */
ebm_status ckpt_meta_hex64(const st_file *f, const char *path, const char *key, uint64_t *out);
/* Requires metadata "format" == format, so a pixel model given as an autoencoder (or the
 * two files of a pair swapped) is named as such. */
ebm_status ckpt_check_format(const st_file *f, const char *path, const char *format);
/* printf into a small buffer and st_writer_meta it. */
ebm_status ckpt_meta_printf(st_writer *w, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
