/* safetensors.c - reader and atomic writer of the safetensors checkpoint format.
 *
 * The reader treats the file as hostile (fuzz/fuzz_safetensors.c hammers it): every number
 * in the header is range-checked before it is used, and every failure names the file and
 * the tensor or field at fault.  The writer lays the tensors out back to back in insertion
 * order from offset 0 and pads the header with spaces to a multiple of 8 bytes, as the
 * reference implementation does: `safetensors.torch.load_file` insists on exactly that
 * (no holes), while our reader also accepts holes. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "atomic.h"
#include "core/common.h"

/* Tensor bytes are copied straight into float/int arrays. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors data is little-endian: this code needs a little-endian machine");

#define ST_HEADER_MAX ((uint64_t)100 << 20) /* the reference implementation's limit too */
#define ST_JSON_INT_MAX 9007199254740992.0  /* 2^53: JSON numbers are doubles in cJSON */
#define ST_KNOWN "F32, F64, I32, I64, U8"

static const char *const dtype_names[] = {"F32", "F64", "I32", "I64", "U8"};
static const size_t dtype_sizes[] = {4, 8, 4, 8, 1};
#define ST_NDTYPES ((int)(sizeof dtype_sizes / sizeof dtype_sizes[0]))

size_t st_dtype_size(st_dtype d) {
    EBM_ASSERT((int)d >= 0 && (int)d < ST_NDTYPES);
    return dtype_sizes[d];
}

const char *st_dtype_name(st_dtype d) {
    EBM_ASSERT((int)d >= 0 && (int)d < ST_NDTYPES);
    return dtype_names[d];
}

size_t st_numel(const st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static void fmt_shape(char *buf, size_t len, const int64_t *shape, int ndim) {
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

/* A JSON number that is an exact non-negative integer. */
static int json_uint(const cJSON *x, double *v) {
    if (!cJSON_IsNumber(x)) return 0;
    double d = x->valuedouble;
    if (!(d >= 0 && d <= ST_JSON_INT_MAX) || d != floor(d)) return 0;
    *v = d;
    return 1;
}

/* ---- reading ------------------------------------------------------------------------ */

static ebm_status parse_tensor(const cJSON *item, size_t blob_len, st_tensor *t) {
    const char *key = item->string;
    size_t klen = strlen(key);
    if (klen == 0) return ebm_fail(EBM_STATUS_BAD_FILE, "a tensor has an empty name");
    if (klen >= ST_NAME_MAX)
        return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%.40s...': name is %zu bytes long, the limit is %d", key,
                        klen, ST_NAME_MAX - 1);
    memcpy(t->name, key, klen + 1);
    if (!cJSON_IsObject(item))
        return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': entry is not an object with dtype, shape and data_offsets",
                        key);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dt)) return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': \"dtype\" missing or not a string", key);
    int d = 0;
    while (d < ST_NDTYPES && strcmp(dt->valuestring, dtype_names[d]) != 0) d++;
    if (d == ST_NDTYPES)
        return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': unknown dtype '%.16s' (known: " ST_KNOWN ")", key,
                        dt->valuestring);
    t->dtype = (st_dtype)d;

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    if (!cJSON_IsArray(shape)) return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': \"shape\" missing or not an array", key);
    int nd = 0;
    size_t numel = 1;
    int too_big = 0;
    for (const cJSON *x = shape->child; x; x = x->next, nd++) {
        if (nd == ST_MAX_DIMS)
            return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': shape has %d dims, at most %d are supported", key,
                            cJSON_GetArraySize(shape), ST_MAX_DIMS);
        double v;
        if (!json_uint(x, &v))
            return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': shape[%d] is not a non-negative integer", key, nd);
        t->shape[nd] = (int64_t)v;
        size_t dim = (size_t)v;
        if (dim != 0 && numel > SIZE_MAX / dim) too_big = 1;
        else numel *= dim;
    }
    t->ndim = nd;
    char sbuf[96];
    fmt_shape(sbuf, sizeof sbuf, t->shape, nd);
    size_t dsize = dtype_sizes[d];
    if (too_big || numel > SIZE_MAX / dsize)
        return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': shape %s is too large", key, sbuf);
    size_t need = numel * dsize;

    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    double b, e;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || !json_uint(offs->child, &b) ||
        !json_uint(offs->child->next, &e))
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "tensor '%s': \"data_offsets\" missing or not [begin, end] with non-negative integers", key);
    if (b > e)
        return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': data_offsets [%.0f, %.0f] end before they begin", key, b,
                        e);
    if (e > (double)blob_len)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "tensor '%s': data_offsets [%.0f, %.0f] run past the end of the data (%zu bytes): the file "
                        "is truncated or corrupt",
                        key, b, e, blob_len);
    t->begin = (size_t)b;
    t->end = (size_t)e;
    if (t->end - t->begin != need)
        return ebm_fail(EBM_STATUS_BAD_FILE, "tensor '%s': data_offsets [%zu, %zu] but shape %s of %s needs %zu bytes",
                        key, t->begin, t->end, sbuf, dtype_names[d], need);
    return EBM_STATUS_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The first name appearing twice among n strings, or NULL.  Sorts a copy, O(n log n): a
 * hostile header can hold tens of thousands of keys. */
static const char *find_duplicate(const char **names, int n) {
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static ebm_status parse_meta(const cJSON *meta, st_file *f) {
    if (!cJSON_IsObject(meta))
        return ebm_fail(EBM_STATUS_BAD_FILE, "\"__metadata__\" is not an object (it must map strings to strings)");
    int n = cJSON_GetArraySize(meta);
    if (n == 0) return EBM_STATUS_OK;
    f->meta_keys = calloc((size_t)n, sizeof(char *));
    f->meta_values = calloc((size_t)n, sizeof(char *));
    if (!f->meta_keys || !f->meta_values) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d metadata entries", n);
    for (const cJSON *x = meta->child; x; x = x->next) {
        if (!cJSON_IsString(x))
            return ebm_fail(EBM_STATUS_BAD_FILE,
                            "\"__metadata__\" entry '%.64s' is not a string (safetensors metadata maps strings to "
                            "strings)",
                            x->string);
        f->meta_keys[f->nmeta] = strdup(x->string);
        f->meta_values[f->nmeta] = strdup(x->valuestring);
        f->nmeta++;
        if (!f->meta_keys[f->nmeta - 1] || !f->meta_values[f->nmeta - 1])
            return ebm_fail(EBM_STATUS_NOMEM, "out of memory for metadata");
    }
    const char **keys = malloc((size_t)n * sizeof *keys);
    if (!keys) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for metadata");
    memcpy(keys, f->meta_keys, (size_t)n * sizeof *keys);
    const char *dup = find_duplicate(keys, n);
    ebm_status s = dup ? ebm_fail(EBM_STATUS_BAD_FILE, "\"__metadata__\" key '%.64s' appears twice", dup)
                       : EBM_STATUS_OK;
    free(keys);
    return s;
}

/* Names unique, byte ranges disjoint (empty tensors hold no bytes and overlap nothing). */
static ebm_status check_tensors(st_file *f) {
    int n = f->ntensors;
    if (n == 0) return EBM_STATUS_OK;
    const st_tensor **ts = malloc((size_t)n * sizeof *ts);
    const char **names = malloc((size_t)n * sizeof *names);
    ebm_status s = EBM_STATUS_OK;
    if (!ts || !names) {
        s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d tensors", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        ts[i] = &f->tensors[i];
        names[i] = f->tensors[i].name;
    }
    const char *dup = find_duplicate(names, n);
    if (dup) {
        s = ebm_fail(EBM_STATUS_BAD_FILE, "tensor name '%s' appears twice in the header", dup);
        goto done;
    }
    qsort(ts, (size_t)n, sizeof *ts, cmp_begin);
    const st_tensor *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (ts[i]->begin == ts[i]->end) continue;
        if (prev && ts[i]->begin < prev->end) {
            s = ebm_fail(EBM_STATUS_BAD_FILE, "tensors '%s' [%zu, %zu] and '%s' [%zu, %zu] overlap in the data",
                         prev->name, prev->begin, prev->end, ts[i]->name, ts[i]->begin, ts[i]->end);
            goto done;
        }
        prev = ts[i];
    }
done:
    free(ts);
    free(names);
    return s;
}

/* Parses the file image f->file of len bytes; messages without the file name. */
static ebm_status parse_image(st_file *f, size_t len) {
    if (len < 8)
        return ebm_fail(EBM_STATUS_BAD_FILE, "only %zu bytes, too short for a safetensors file (8-byte header length)",
                        len);
    uint64_t n;
    memcpy(&n, f->file, 8);
    if (n == 0) return ebm_fail(EBM_STATUS_BAD_FILE, "header length is 0: not a safetensors file");
    if (n > ST_HEADER_MAX)
        return ebm_fail(EBM_STATUS_BAD_FILE, "header length %llu is above the 100 MB limit: not a safetensors file",
                        (unsigned long long)n);
    if (n > len - 8)
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "header length %llu runs past the end of the file (%zu bytes): truncated, or not a "
                        "safetensors file",
                        (unsigned long long)n, len);
    f->blob = f->file + 8 + n;
    f->blob_len = len - 8 - (size_t)n;

    /* A private NUL-terminated copy, so that the JSON parser never reads the blob. */
    char *text = malloc((size_t)n + 1);
    if (!text) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for a %llu-byte header", (unsigned long long)n);
    memcpy(text, f->file + 8, (size_t)n);
    text[n] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, 0);
    ebm_status s = EBM_STATUS_OK;
    if (!root) {
        s = ebm_fail(EBM_STATUS_BAD_FILE, "header is not valid JSON (error near byte %zu of %llu)",
                     end ? (size_t)(end - text) : 0, (unsigned long long)n);
        goto done;
    }
    for (const char *p = end; p < text + n; p++) /* the spec allows trailing spaces as padding */
        if (!strchr(" \t\r\n", *p) || *p == 0) {
            s = ebm_fail(EBM_STATUS_BAD_FILE, "header has bytes after its JSON object (at byte %zu)", (size_t)(p - text));
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        s = ebm_fail(EBM_STATUS_BAD_FILE, "header is JSON but not an object of tensors");
        goto done;
    }
    int nmeta = 0, nt = 0;
    for (const cJSON *x = root->child; x; x = x->next) {
        if (strcmp(x->string, "__metadata__") == 0) nmeta++;
        else nt++;
    }
    if (nmeta > 1) {
        s = ebm_fail(EBM_STATUS_BAD_FILE, "\"__metadata__\" appears %d times in the header", nmeta);
        goto done;
    }
    if (nt > 0 && !(f->tensors = calloc((size_t)nt, sizeof *f->tensors))) {
        s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d tensors", nt);
        goto done;
    }
    for (const cJSON *x = root->child; x && s == EBM_STATUS_OK; x = x->next) {
        if (strcmp(x->string, "__metadata__") == 0) s = parse_meta(x, f);
        else s = parse_tensor(x, f->blob_len, &f->tensors[f->ntensors++]);
    }
    if (s == EBM_STATUS_OK) s = check_tensors(f);
done:
    cJSON_Delete(root);
    free(text);
    return s;
}

/* Takes ownership of img (from ebm_alloc). */
static ebm_status parse_owned(uint8_t *img, size_t len, const char *name, st_file *out) {
    out->file = img;
    out->source = strdup(name);
    ebm_status s = out->source ? parse_image(out, len) : ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    if (s != EBM_STATUS_OK) {
        ebm_error_prefix("%s", name);
        st_free(out);
    }
    return s;
}

ebm_status st_parse(const uint8_t *buf, size_t len, const char *name, st_file *out) {
    EBM_ASSERT(out && name && (buf || len == 0));
    memset(out, 0, sizeof *out);
    uint8_t *img = ebm_alloc(len ? len : 1);
    if (!img) return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory for %zu bytes", name, len);
    if (len) memcpy(img, buf, len);
    return parse_owned(img, len, name, out);
}

ebm_status st_read(const char *path, st_file *out) {
    EBM_ASSERT(out && path);
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ebm_fail(EBM_STATUS_IO, "%s: cannot open: %s (check the path)", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return ebm_fail(EBM_STATUS_IO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *img = ebm_alloc(len ? len : 1);
    if (!img) {
        close(fd);
        return ebm_fail(EBM_STATUS_NOMEM, "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, img + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int err = errno;
            close(fd);
            ebm_free(img);
            return ebm_fail(EBM_STATUS_IO, "%s: read failed after %zu of %zu bytes: %s", path, got, len,
                            r < 0 ? strerror(err) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    return parse_owned(img, len, path, out);
}

void st_free(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->nmeta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->tensors);
    ebm_free(f->file);
    free(f->source);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

ebm_status st_get(const st_file *f, const char *name, st_dtype dtype, void *dst, size_t count) {
    const char *src = f->source ? f->source : "safetensors";
    const st_tensor *t = st_find(f, name);
    if (!t)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: tensor '%s' missing (the file holds %d tensors): not a checkpoint of this model?",
                        src, name, f->ntensors);
    if (t->dtype != dtype)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: tensor '%s' is %s, expected %s", src, name, dtype_names[t->dtype],
                        dtype_names[dtype]);
    size_t n = st_numel(t);
    if (n != count) {
        char sbuf[96];
        fmt_shape(sbuf, sizeof sbuf, t->shape, t->ndim);
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s: tensor '%s' has shape %s (%zu elements), expected %zu: a checkpoint of another "
                        "architecture?",
                        src, name, sbuf, n, count);
    }
    if (n) memcpy(dst, f->blob + t->begin, t->end - t->begin);
    return EBM_STATUS_OK;
}

ebm_status st_get_f32(const st_file *f, const char *name, float *dst, size_t count) {
    EBM_TRY(st_get(f, name, ST_F32, dst, count));
    for (size_t i = 0; i < count; i++)
        if (!isfinite(dst[i]))
            return ebm_fail(EBM_STATUS_BAD_FILE,
                            "%s: tensor '%s' holds NaN/Inf at element %zu: the checkpoint is corrupt or training "
                            "diverged",
                            f->source ? f->source : "safetensors", name, i);
    return EBM_STATUS_OK;
}

/* ---- writing ------------------------------------------------------------------------ */

typedef struct {
    char name[ST_NAME_MAX];
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;
    size_t nbytes;
} st_entry;

struct st_writer {
    st_entry *e;
    int n, cap;
    char **keys, **values;
    int nmeta, metacap;
};

st_writer *st_writer_new(void) { return calloc(1, sizeof(st_writer)); }

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->nmeta; i++) {
        free(w->keys[i]);
        free(w->values[i]);
    }
    free(w->keys);
    free(w->values);
    free(w->e);
    free(w);
}

ebm_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                         const void *data) {
    EBM_ASSERT(w && name && (int)dtype >= 0 && (int)dtype < ST_NDTYPES);
    size_t klen = strlen(name);
    if (klen == 0 || klen >= ST_NAME_MAX || strcmp(name, "__metadata__") == 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "safetensors: tensor name '%.40s' is empty, reserved or longer than %d bytes",
                        name, ST_NAME_MAX - 1);
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return ebm_fail(EBM_STATUS_BAD_ARG, "safetensors: tensor '%s' has %d dims, at most %d supported", name, ndim,
                        ST_MAX_DIMS);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return ebm_fail(EBM_STATUS_BAD_ARG, "safetensors: tensor '%s' added twice", name);
    st_entry e = {.dtype = dtype, .ndim = ndim, .data = data};
    memcpy(e.name, name, klen + 1);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && numel > (SIZE_MAX >> 4) / (size_t)shape[i]))
            return ebm_fail(EBM_STATUS_BAD_ARG, "safetensors: tensor '%s' has a negative or huge dim %lld", name,
                            (long long)shape[i]);
        e.shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    e.nbytes = numel * dtype_sizes[dtype];
    EBM_ASSERT(data || e.nbytes == 0);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_entry *ne = realloc(w->e, (size_t)cap * sizeof *ne);
        if (!ne) return ebm_fail(EBM_STATUS_NOMEM, "safetensors: out of memory adding tensor '%s'", name);
        w->e = ne;
        w->cap = cap;
    }
    w->e[w->n++] = e;
    return EBM_STATUS_OK;
}

ebm_status st_writer_meta(st_writer *w, const char *key, const char *value) {
    EBM_ASSERT(w && key && value);
    char *v = strdup(value);
    if (!v) return ebm_fail(EBM_STATUS_NOMEM, "safetensors: out of memory for metadata '%s'", key);
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->keys[i], key) == 0) { /* setting a key again replaces its value */
            free(w->values[i]);
            w->values[i] = v;
            return EBM_STATUS_OK;
        }
    if (w->nmeta == w->metacap) {
        int cap = w->metacap ? 2 * w->metacap : 8;
        char **nk = realloc(w->keys, (size_t)cap * sizeof *nk);
        if (nk) w->keys = nk;
        char **nv = nk ? realloc(w->values, (size_t)cap * sizeof *nv) : NULL;
        if (nv) w->values = nv;
        if (!nk || !nv) {
            free(v);
            return ebm_fail(EBM_STATUS_NOMEM, "safetensors: out of memory for metadata '%s'", key);
        }
        w->metacap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return ebm_fail(EBM_STATUS_NOMEM, "safetensors: out of memory for metadata '%s'", key);
    }
    w->keys[w->nmeta] = k;
    w->values[w->nmeta++] = v;
    return EBM_STATUS_OK;
}

/* The header JSON, NULL when out of memory. */
static char *build_header(const st_writer *w) {
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && w->nmeta) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        ok = meta != NULL;
        for (int i = 0; ok && i < w->nmeta; i++) ok = cJSON_AddStringToObject(meta, w->keys[i], w->values[i]) != NULL;
    }
    size_t off = 0;
    for (int i = 0; ok && i < w->n; i++) {
        const st_entry *e = &w->e[i];
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON *shape = t ? cJSON_AddArrayToObject(t, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(t, "data_offsets") : NULL;
        ok = offs && cJSON_AddStringToObject(t, "dtype", dtype_names[e->dtype]);
        for (int d = 0; ok && d < e->ndim; d++) ok = cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->shape[d]));
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
        ok = ok && cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)(off + e->nbytes)));
        off += e->nbytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

typedef struct {
    const st_writer *w;
    const char *json;
} st_commit_ctx;

static ebm_status write_content(FILE *f, void *vctx) {
    const st_commit_ctx *c = vctx;
    size_t jlen = strlen(c->json);
    uint64_t n = (jlen + 7) & ~(size_t)7; /* the blob starts 8-byte aligned */
    static const char spaces[8] = "        ";
    int ok = fwrite(&n, 8, 1, f) == 1 && fwrite(c->json, 1, jlen, f) == jlen &&
             fwrite(spaces, 1, n - jlen, f) == n - jlen;
    for (int i = 0; ok && i < c->w->n; i++) {
        const st_entry *e = &c->w->e[i];
        ok = e->nbytes == 0 || fwrite(e->data, 1, e->nbytes, f) == e->nbytes;
    }
    return ok ? EBM_STATUS_OK : ebm_fail(EBM_STATUS_IO, "%s (disk full?)", strerror(errno));
}

ebm_status st_writer_commit(st_writer *w, const char *path) {
    EBM_ASSERT(w && path);
    char *json = build_header(w);
    ebm_status s;
    if (!json) {
        s = ebm_fail(EBM_STATUS_NOMEM, "cannot write %s: out of memory for the header", path);
    } else {
        st_commit_ctx c = {w, json};
        s = io_write_atomic(path, write_content, &c);
    }
    cJSON_free(json);
    st_writer_free(w);
    return s;
}
