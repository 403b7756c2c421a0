/* dataset.c - MNIST-format images and labels in memory, digit selection, shuffled batches. */
#include "data/dataset.h"

#include <ctype.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "data/idx.h"

#define DIGITS_ALL 0x3FFu
#define DIGITS_FORMS "use \"all\", one digit such as \"3\", or distinct digits 0-9 separated by commas such as \"5,7\""

ebm_status digits_parse(const char *s, uint16_t *mask) {
    *mask = 0;
    if (!s) s = "";
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    const char *end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1])) end--;
    if (end == p || (end - p == 3 && strncmp(p, "all", 3) == 0)) {
        *mask = DIGITS_ALL;
        return EBM_STATUS_OK;
    }
    uint16_t m = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *q = comma ? comma : end, *a = p, *b = q;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (a == b)
            return ebm_fail(EBM_STATUS_BAD_ARG, "digits \"%s\": empty entry; %s", s, DIGITS_FORMS);
        if (b - a != 1 || *a < '0' || *a > '9')
            return ebm_fail(EBM_STATUS_BAD_ARG, "digits \"%s\": bad entry \"%.*s\"; %s", s, (int)(b - a), a,
                            DIGITS_FORMS);
        uint16_t bit = (uint16_t)(1u << (*a - '0'));
        if (m & bit)
            return ebm_fail(EBM_STATUS_BAD_ARG, "digits \"%s\": digit %c is repeated; %s", s, *a, DIGITS_FORMS);
        m |= bit;
        if (!comma) break;
        p = comma + 1;
    }
    *mask = m;
    return EBM_STATUS_OK;
}

/* "{5,7}" for messages. */
static const char *mask_str(char *buf, uint16_t mask) {
    char *p = buf;
    *p++ = '{';
    for (int d = 0; d < 10; d++)
        if (mask & (1u << d)) {
            if (p > buf + 1) *p++ = ',';
            *p++ = (char)('0' + d);
        }
    *p++ = '}';
    *p = 0;
    return buf;
}

/* Checks shapes and labels of the pair; both come from files a user names. */
static ebm_status check_pair(const idx_array *im, const idx_array *lb, const char *images_path,
                             const char *labels_path) {
    if (im->ndim != 3)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: images must be 3-D (n, height, width), this file has %d dimensions",
                        images_path, im->ndim);
    if (lb->ndim != 1)
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s: labels must be 1-D (n), this file has %d dimensions", labels_path,
                        lb->ndim);
    if (im->dims[0] != lb->dims[0])
        return ebm_fail(EBM_STATUS_BAD_FILE, "%s has %u images but %s has %u labels; are they from the same split?",
                        images_path, (unsigned)im->dims[0], labels_path, (unsigned)lb->dims[0]);
    for (size_t i = 0; i < lb->count; i++)
        if (lb->data[i] > 9)
            return ebm_fail(EBM_STATUS_BAD_FILE, "%s: label %zu is %u, expected a digit class 0..9", labels_path, i,
                            (unsigned)lb->data[i]);
    return EBM_STATUS_OK;
}

static ebm_status select_images(const idx_array *im, const idx_array *lb, uint16_t mask, int limit,
                                const char *labels_path, dataset *out) {
    int total = (int)lb->count, hw = (int)(im->dims[1] * im->dims[2]), n = 0;
    for (int i = 0; i < total && (limit <= 0 || n < limit); i++) n += (mask >> lb->data[i]) & 1;
    if (n == 0) {
        char ms[24];
        return ebm_fail(EBM_STATUS_BAD_ARG, "no images of digits %s in %s", mask_str(ms, mask), labels_path);
    }
    out->n = n;
    out->h = (int)im->dims[1];
    out->w = (int)im->dims[2];
    out->x = ebm_alloc((size_t)n * (size_t)hw * sizeof(float));
    out->y = ebm_alloc((size_t)n);
    if (!out->x || !out->y)
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d images of %dx%d", n, out->h, out->w);
    /* A table gives exact endpoints (0 -> -1, 255 -> +1) and one rounding per value. */
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)(v / 255.0 * 2.0 - 1.0);
    for (int i = 0, k = 0; k < n; i++) {
        if (!((mask >> lb->data[i]) & 1)) continue;
        const uint8_t *src = im->data + (size_t)i * (size_t)hw;
        float *dst = out->x + (size_t)k * (size_t)hw;
        for (int j = 0; j < hw; j++) dst[j] = lut[src[j]];
        out->y[k++] = lb->data[i];
    }
    return EBM_STATUS_OK;
}

ebm_status dataset_load(const char *images_path, const char *labels_path, uint16_t mask, int limit,
                        dataset *out) {
    memset(out, 0, sizeof *out);
    if (mask == 0 || (mask & ~DIGITS_ALL))
        return ebm_fail(EBM_STATUS_BAD_ARG, "digit selection mask 0x%x is empty or names classes above 9",
                        (unsigned)mask);
    idx_array im, lb;
    ebm_status s = idx_read(labels_path, &lb);
    if (s != EBM_STATUS_OK) return s;
    s = idx_read(images_path, &im);
    if (s == EBM_STATUS_OK) s = check_pair(&im, &lb, images_path, labels_path);
    if (s == EBM_STATUS_OK) s = select_images(&im, &lb, mask, limit, labels_path, out);
    if (s != EBM_STATUS_OK) dataset_free(out);
    idx_free(&im);
    idx_free(&lb);
    return s;
}

/* First of "<dir>/<name>.gz" and "<dir>/<name>" that is a regular file. */
static int find_file(const char *dir, const char *name, char *buf, int len) {
    const char *ext[2] = {".gz", ""};
    struct stat st;
    for (int i = 0; i < 2; i++) {
        int k = snprintf(buf, (size_t)len, "%s/%s%s", dir, name, ext[i]);
        if (k < 0 || k >= len) return -1;
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) return 1;
    }
    return 0;
}

ebm_status dataset_paths(const char *dir, const char *split, char *images, char *labels, int len) {
    if (!split || (strcmp(split, "train") != 0 && strcmp(split, "t10k") != 0))
        return ebm_fail(EBM_STATUS_BAD_ARG, "data split \"%s\" is unknown; use \"train\" or \"t10k\"",
                        split ? split : "(null)");
    char name[2][64];
    snprintf(name[0], sizeof name[0], "%s-images-idx3-ubyte", split);
    snprintf(name[1], sizeof name[1], "%s-labels-idx1-ubyte", split);
    char *out[2] = {images, labels};
    for (int i = 0; i < 2; i++) {
        int r = find_file(dir, name[i], out[i], len);
        if (r < 0) return ebm_fail(EBM_STATUS_BAD_ARG, "data directory path too long: %s", dir);
        if (r == 0)
            return ebm_fail(EBM_STATUS_IO,
                            "%s/%s[.gz] not found; run `make data` to fetch MNIST into data/, or pass the directory "
                            "that holds the IDX files",
                            dir, name[i]);
    }
    return EBM_STATUS_OK;
}

ebm_status dataset_load_dir(const char *dir, const char *split, uint16_t mask, int limit, dataset *out) {
    char images[4096], labels[4096];
    memset(out, 0, sizeof *out);
    EBM_TRY(dataset_paths(dir, split, images, labels, (int)sizeof images));
    return dataset_load(images, labels, mask, limit, out);
}

void dataset_free(dataset *d) {
    if (!d) return;
    ebm_free(d->x);
    ebm_free(d->y);
    memset(d, 0, sizeof *d);
}

void binarize_u8_to01(const float *x, long n, int threshold_255, float *out01) {
    for (long i = 0; i < n; i++) {
        /* Back to the 0..255 pixel the float came from; NaN and values below -1 count as 0. */
        float v = x[i];
        int p = 0;
        if (v > -1.0f) p = v >= 1.0f ? 255 : (int)((v + 1.0f) * 127.5f + 0.5f);
        out01[i] = p >= threshold_255 ? 1.0f : 0.0f;
    }
}

ebm_status batcher_init(batcher *bt, const dataset *d, int B, ebm_rng *r) {
    memset(bt, 0, sizeof *bt);
    if (B < 1) return ebm_fail(EBM_STATUS_BAD_ARG, "batch size %d: must be at least 1", B);
    if (d->n < 1) return ebm_fail(EBM_STATUS_BAD_ARG, "cannot make batches of an empty data set");
    bt->perm = ebm_alloc((size_t)d->n * sizeof(int));
    if (!bt->perm) return ebm_fail(EBM_STATUS_NOMEM, "out of memory for a permutation of %d images", d->n);
    bt->d = d;
    bt->B = B;
    batcher_reshuffle(bt, r);
    return EBM_STATUS_OK;
}

int batcher_next(batcher *bt, float *x, uint8_t *y) {
    const dataset *d = bt->d;
    int k = d->n - bt->pos < bt->B ? d->n - bt->pos : bt->B;
    if (k <= 0) return 0;
    size_t hw = (size_t)d->h * (size_t)d->w;
    for (int i = 0; i < k; i++) {
        int src = bt->perm[bt->pos + i];
        memcpy(x + (size_t)i * hw, d->x + (size_t)src * hw, hw * sizeof(float));
        if (y) y[i] = d->y[src];
    }
    bt->pos += k;
    return k;
}

void batcher_reshuffle(batcher *bt, ebm_rng *r) {
    rng_permutation(r, bt->perm, bt->d->n);
    bt->pos = 0;
}

void batcher_free(batcher *bt) {
    if (!bt) return;
    ebm_free(bt->perm);
    memset(bt, 0, sizeof *bt);
}
