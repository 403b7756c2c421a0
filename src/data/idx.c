/* idx.c - IDX reader (gzipped or raw, through zlib) and atomic writer.
 *
 * Depends on zlib and core/common.c only, so the fuzzer (clang, no OpenMP/BLAS) can build it.
 * Every size comes from the file, so each is checked before it is used: the dimensions'
 * product against IDX_MAX_BYTES before any allocation, and the data length exactly. */
#include "data/idx.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "core/common.h"
#include "io/atomic.h"

/* Human name of an IDX type byte, for the "unsupported type" message. */
static const char *type_name(uint8_t t) {
    switch (t) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    }
    return "unknown";
}

/* "10000x28x28" into buf. */
static const char *dims_str(char *buf, size_t len, int ndim, const uint32_t *dims) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && used < len; i++) {
        int k = snprintf(buf + used, len - used, i ? "x%u" : "%u", (unsigned)dims[i]);
        if (k < 0) break;
        used += (size_t)k;
    }
    return buf;
}

/* Checks the 4-byte magic; sets *ndim. */
static ebm_status check_magic(const uint8_t m[4], const char *name, int *ndim) {
    if (m[0] != 0 || m[1] != 0)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s: not an IDX file (starts %02x %02x %02x %02x, expected 00 00 08 <ndim>); "
                        "is it an MNIST-format file?",
                        name, m[0], m[1], m[2], m[3]);
    if (m[2] != 0x08)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s: IDX data type 0x%02x (%s) is not supported; ebm reads only 0x08 (uint8) images and labels",
                        name, m[2], type_name(m[2]));
    if (m[3] < 1 || m[3] > IDX_MAX_DIMS)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: IDX header has %d dimensions; ebm reads 1 to %d", name, m[3],
                        IDX_MAX_DIMS);
    *ndim = m[3];
    return EBM_STATUS_OK;
}

/* Decodes the big-endian dimensions and their product; rejects 0 and anything whose
 * product would pass IDX_MAX_BYTES (checked step by step, so it cannot overflow). */
static ebm_status check_dims(const uint8_t *p, int ndim, const char *name, idx_array *out) {
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        uint32_t d = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
                     (uint32_t)p[4 * i + 3];
        if (d == 0) return ebm_fail(EBM_STATUS_BAD_FILE, "%s: IDX dimension %d is 0", name, i);
        out->dims[i] = d;
        if (count > IDX_MAX_BYTES / d) {
            char ds[64];
            return ebm_fail(EBM_STATUS_BAD_FILE,
                            "%s: IDX dimensions %s describe more than %zu bytes (the limit); the header is corrupt",
                            name, dims_str(ds, sizeof ds, i + 1, out->dims), (size_t)IDX_MAX_BYTES);
        }
        count *= d;
    }
    out->ndim = ndim;
    out->count = count;
    return EBM_STATUS_OK;
}

static ebm_status fail_truncated(const char *name, const idx_array *a, size_t got) {
    char ds[64];
    return ebm_fail(EBM_STATUS_BAD_FILE,
                    "%s: truncated: dimensions %s need %zu data bytes, got %zu; the file is incomplete, fetch it again",
                    name, dims_str(ds, sizeof ds, a->ndim, a->dims), a->count, got);
}

static ebm_status fail_trailing(const char *name, const idx_array *a, size_t extra) {
    char ds[64];
    return ebm_fail(EBM_STATUS_BAD_FILE,
                    "%s: %zu unexpected byte(s) after the %zu data bytes that dimensions %s describe", name, extra,
                    a->count, dims_str(ds, sizeof ds, a->ndim, a->dims));
}

void idx_free(idx_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

ebm_status idx_parse(const uint8_t *buf, size_t len, const char *name, idx_array *out) {
    memset(out, 0, sizeof *out);
    if (len < 4)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: truncated IDX header (%zu bytes, need at least 4)", name, len);
    int ndim = 0;
    EBM_TRY(check_magic(buf, name, &ndim));
    size_t hdr = 4 + 4 * (size_t)ndim;
    if (len < hdr)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: truncated IDX header (%zu bytes, %d dimensions need %zu)", name,
                        len, ndim, hdr);
    idx_array a = {0};
    EBM_TRY(check_dims(buf + 4, ndim, name, &a));
    if (len - hdr < a.count) return fail_truncated(name, &a, len - hdr);
    if (len - hdr > a.count) return fail_trailing(name, &a, len - hdr - a.count);
    a.data = malloc(a.count);
    if (!a.data) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory for %zu bytes", name, a.count);
    memcpy(a.data, buf + hdr, a.count);
    *out = a;
    return EBM_STATUS_OK;
}

/* Reads up to n bytes; *got is what arrived.  A zlib error (corrupt or cut-short gzip,
 * which zlib reports as Z_BUF_ERROR while still handing out the bytes before it) or an
 * OS read error is a failure; a plain short read is not (the caller judges it). */
static ebm_status gz_read_upto(gzFile g, void *buf, size_t n, size_t *got, const char *path) {
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        if (want > (size_t)INT_MAX / 2) want = (size_t)INT_MAX / 2;
        int k = gzread(g, (uint8_t *)buf + *got, (unsigned)want);
        if (k > 0) *got += (size_t)k;
        if (k <= 0 || (size_t)k < want) break;
    }
    int err;
    const char *msg = gzerror(g, &err);
    if (err == Z_ERRNO) return ebm_fail(EBM_STATUS_IO, "%s: read error: %s", path, strerror(errno));
    if (err != Z_OK) {
        size_t pl = strlen(path); /* zlib's message repeats "path: " */
        if (strncmp(msg, path, pl) == 0 && strncmp(msg + pl, ": ", 2) == 0) msg += pl + 2;
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s: corrupt or truncated gzip stream (zlib: %s); the file is damaged, fetch it again", path,
                        msg);
    }
    return EBM_STATUS_OK;
}

/* The data is read into a buffer that grows as bytes arrive, so a small file whose header
 * claims a large size costs memory only for the bytes it really holds. */
static ebm_status read_data(gzFile g, const char *path, idx_array *a) {
    size_t cap = a->count < ((size_t)1 << 20) ? a->count : ((size_t)1 << 20), have = 0;
    a->data = malloc(cap);
    if (!a->data) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory for %zu bytes", path, cap);
    for (;;) {
        size_t got;
        EBM_TRY(gz_read_upto(g, a->data + have, cap - have, &got, path));
        have += got;
        if (have < cap) return fail_truncated(path, a, have);
        if (have == a->count) return EBM_STATUS_OK;
        size_t next = cap > a->count / 2 ? a->count : 2 * cap;
        uint8_t *p = realloc(a->data, next);
        if (!p) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory for %zu bytes", path, next);
        a->data = p;
        cap = next;
    }
}

static ebm_status read_gz(gzFile g, const char *path, idx_array *out) {
    uint8_t hdr[4 + 4 * IDX_MAX_DIMS];
    size_t got;
    EBM_TRY(gz_read_upto(g, hdr, 4, &got, path));
    if (got < 4)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: truncated IDX header (%zu bytes, need at least 4)", path, got);
    int ndim = 0;
    EBM_TRY(check_magic(hdr, path, &ndim));
    EBM_TRY(gz_read_upto(g, hdr + 4, 4 * (size_t)ndim, &got, path));
    if (got < 4 * (size_t)ndim)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: truncated IDX header (%zu bytes, %d dimensions need %zu)", path,
                        4 + got, ndim, 4 + 4 * (size_t)ndim);
    EBM_TRY(check_dims(hdr + 4, ndim, path, out));
    EBM_TRY(read_data(g, path, out));
    /* Anything after the data means the header and the payload disagree. */
    size_t extra = 0;
    uint8_t scratch[4096];
    do {
        EBM_TRY(gz_read_upto(g, scratch, sizeof scratch, &got, path));
        extra += got;
    } while (got == sizeof scratch);
    if (extra) return fail_trailing(path, out, extra);
    return EBM_STATUS_OK;
}

ebm_status idx_read(const char *path, idx_array *out) {
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return ebm_fail(EBM_STATUS_IO, "cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(g, 1 << 17);
    ebm_status s = read_gz(g, path, out);
    gzclose_r(g);
    if (s != EBM_STATUS_OK) idx_free(out);
    return s;
}

/* Writes all of buf or returns an I/O failure naming path. */
/* What io_write_atomic writes into its temp file: header (big-endian dims), then data. */
typedef struct {
    const uint8_t *data;
    int ndim;
    const uint32_t *dims;
    size_t count;
} idx_payload;

static ebm_status write_payload(FILE *f, void *ctx) {
    const idx_payload *p = ctx;
    uint8_t hdr[4 + 4 * IDX_MAX_DIMS] = {0, 0, 0x08, (uint8_t)p->ndim};
    for (int i = 0; i < p->ndim; i++) {
        hdr[4 + 4 * i] = (uint8_t)(p->dims[i] >> 24);
        hdr[5 + 4 * i] = (uint8_t)(p->dims[i] >> 16);
        hdr[6 + 4 * i] = (uint8_t)(p->dims[i] >> 8);
        hdr[7 + 4 * i] = (uint8_t)p->dims[i];
    }
    const size_t hlen = 4 + 4 * (size_t)p->ndim;
    if (fwrite(hdr, 1, hlen, f) != hlen || (p->count && fwrite(p->data, 1, p->count, f) != p->count))
        return ebm_fail(EBM_STATUS_IO, "%s", strerror(errno));
    return EBM_STATUS_OK;
}

ebm_status idx_write_u8(const char *path, const uint8_t *data, int ndim, const uint32_t *dims) {
    if (ndim < 1 || ndim > IDX_MAX_DIMS)
        return ebm_fail(EBM_STATUS_BAD_ARG, "%s: cannot write %d dimensions as IDX (1 to %d)", path, ndim,
                        IDX_MAX_DIMS);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == 0) return ebm_fail(EBM_STATUS_BAD_ARG, "%s: cannot write IDX dimension %d = 0", path, i);
        if (count > IDX_MAX_BYTES / dims[i])
            return ebm_fail(EBM_STATUS_BAD_ARG, "%s: IDX data would exceed %zu bytes", path, (size_t)IDX_MAX_BYTES);
        count *= dims[i];
    }
    idx_payload p = {data, ndim, dims, count};
    return io_write_atomic(path, write_payload, &p); /* readers never see half a file */
}
