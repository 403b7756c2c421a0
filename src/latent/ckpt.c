/* ckpt.c - strict parsing of checkpoint metadata (see ckpt.h). */
#include "ckpt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "../core/common.h"

static ebm_status need(const st_file *f, const char *path, const char *key, const char **v) {
    *v = st_meta(f, key);
    if (!*v)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s: metadata \"%s\" missing; the file was not written by `ebm latent train`", path, key);
    return EBM_STATUS_OK;
}

ebm_status ckpt_meta_long(const st_file *f, const char *path, const char *key, long lo, long hi, long *out) {
    const char *v;
    EBM_TRY(need(f, path, key, &v));
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: metadata %s = \"%s\" is not an integer in [%ld, %ld]", path, key,
                        v, lo, hi);
    *out = x;
    return EBM_STATUS_OK;
}

ebm_status ckpt_meta_double(const st_file *f, const char *path, const char *key, int required, double dflt,
                            double *out) {
    const char *v = st_meta(f, key);
    if (!v) {
        if (required) return need(f, path, key, &v);
        *out = dflt;
        return EBM_STATUS_OK;
    }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: metadata %s = \"%s\" is not a number", path, key, v);
    *out = x;
    return EBM_STATUS_OK;
}

ebm_status ckpt_meta_hex64(const st_file *f, const char *path, const char *key, uint64_t *out) {
    const char *v;
    EBM_TRY(need(f, path, key, &v));
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 16);
    if (errno || strlen(v) != 16 || *end)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: metadata %s = \"%s\" is not 16 hex digits", path, key, v);
    *out = (uint64_t)x;
    return EBM_STATUS_OK;
}

ebm_status ckpt_check_format(const st_file *f, const char *path, const char *format) {
    const char *v = st_meta(f, "format");
    if (!v || strcmp(v, format) != 0)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s: metadata format is \"%s\", expected \"%s\"; `ebm latent train` writes "
                        "autoencoder.safetensors and latent_ebm.safetensors, check which file goes where",
                        path, v ? v : "(none)", format);
    return EBM_STATUS_OK;
}

ebm_status ckpt_meta_printf(st_writer *w, const char *key, const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return st_writer_meta(w, key, buf);
}
