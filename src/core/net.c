/* net.c - the energy network: spec parsing, deterministic init, and forward/backward
 * passes spread over OpenMP threads.
 *
 * Parallel plan (measured against OpenBLAS's own threads in docs/PERF.md): the batch is cut
 * into micro-batches of NET_MICRO images, and each thread takes whole micro-batches through
 * every layer, calling OpenBLAS at one thread.  A micro-batch's activations and im2col
 * matrix stay in the core's L2, and the threads never wait for each other between layers.
 * Parameter gradients are summed per group of consecutive micro-batches (at most
 * NET_GRAD_GROUPS groups, fixed by the batch size alone) into the group's own slot, and the
 * slots are added in group order at the end: no two threads write the same float, and the
 * sum, rounding included, is the same whatever the thread count, so a training run resumed
 * on another machine continues bit for bit.
 *
 * Convolutions run on a copy of the weights in hwc order (whwc, refreshed at every pass:
 * 77k floats, a few tens of microseconds), which lets layers.c use its direct kernels. */
#include "net.h"

#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <string.h>

#include "common.h"
#include "layers.h"
#include "rng.h"

/* Images per inner step: small enough that a micro-batch's working set (about 60 KB of
 * activations per image for cnn-small, plus the im2col matrix) stays in L2, large enough
 * that the GEMMs have rows to amortise OpenBLAS's packing. */
#define NET_MICRO 16
#define NET_GRAD_GROUPS 8

/* Sanity limits for specs: far above any model here, low enough that sizes cannot
 * overflow. */
#define SPEC_MAX_CH 65536
#define SPEC_MAX_HW 4096
#define SPEC_MAX_K 64
#define SPEC_MAX_PARAMS (1L << 28)
#define SPEC_MAX_ACT (1L << 26)

static const struct {
    const char *name, *spec;
} named_specs[] = {
    {"cnn-small", "in:1x28x28,conv:16:5:2:4,swish,conv:32:3:2:1,swish,conv:64:3:2:1,swish,"
                  "conv:64:3:2:1,swish,flatten,dense:64,swish,dense:1"},
    {"cnn-small-cond", "in:1x28x28,conv:16:5:2:4,swish,conv:32:3:2:1,swish,conv:64:3:2:1,swish,"
                       "conv:64:3:2:1,swish,flatten,dense:64,swish,dense:10"},
};

/* ---- spec parsing ------------------------------------------------------------------- */

static long layer_size(const net_layer *L) { return (long)L->out_c * L->out_h * L->out_w; }
static long layer_in_size(const net_layer *L) { return (long)L->in_c * L->in_h * L->in_w; }

/* Parses a decimal integer in [lo, hi] that spans all of s. */
static int parse_int(const char *s, long lo, long hi, int *out) {
    if (!*s || isspace((unsigned char)*s)) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* Splits tok at ':' into at most nf fields (tok is modified); returns the field count. */
static int split_fields(char *tok, char **f, int nf) {
    int k = 0;
    f[k++] = tok;
    for (char *p = tok; *p; p++) {
        if (*p == ':') {
            *p = '\0';
            if (k == nf) return nf + 1;
            f[k++] = p + 1;
        }
    }
    return k;
}

static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
    if (*pos >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    *pos += w > 0 ? (size_t)w : 0;
}

#define SPEC_HINT                                                                             \
    "expected in:CxHxW, conv:OUT:K:S:P, dense:OUT, swish, lrelu:SLOPE or flatten, "           \
    "or a named spec: cnn-small, cnn-small-cond"

/* Parses spec into n's shape fields (layers, in/out shapes, nparams, offsets) and writes
 * the canonical spec into n->spec. */
static ebm_status parse_spec(const char *spec, net *n) {
    if (!spec) return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: none given (try cnn-small)");
    for (size_t i = 0; i < sizeof named_specs / sizeof named_specs[0]; i++)
        if (strcmp(spec, named_specs[i].name) == 0) spec = named_specs[i].spec;
    char buf[NET_SPEC_MAX];
    if (strlen(spec) >= sizeof buf)
        return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: longer than %d characters", NET_SPEC_MAX - 1);
    strcpy(buf, spec);

    memset(n, 0, sizeof *n);
    int c = 1, h = 28, w = 28, flat = 0, ntok = 0;
    size_t nparams = 0, pos = 0;
    char canon[NET_SPEC_MAX * 2];
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save), ntok++) {
        while (isspace((unsigned char)*tok)) tok++;
        for (char *e = tok + strlen(tok); e > tok && isspace((unsigned char)e[-1]); e--) e[-1] = '\0';
        char orig[NET_SPEC_MAX];
        snprintf(orig, sizeof orig, "%s", tok);
        char *f[6];
        int nf = split_fields(tok, f, 5);
        if (strcmp(f[0], "in") == 0) {
            int dims[3];
            char *x1 = nf == 2 ? strchr(f[1], 'x') : NULL, *x2 = x1 ? strchr(x1 + 1, 'x') : NULL;
            if (ntok != 0)
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: '%s' must be the first token", orig);
            if (!x2) return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: bad '%s' (expected in:CxHxW, e.g. in:1x28x28)", orig);
            *x1 = *x2 = '\0';
            if (!parse_int(f[1], 1, SPEC_MAX_CH, &dims[0]) || !parse_int(x1 + 1, 1, SPEC_MAX_HW, &dims[1]) ||
                !parse_int(x2 + 1, 1, SPEC_MAX_HW, &dims[2]))
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: bad numbers in '%s' (expected in:CxHxW, e.g. in:1x28x28)", orig);
            c = dims[0], h = dims[1], w = dims[2];
            flat = h == 1 && w == 1;
            n->in_c = c, n->in_h = h, n->in_w = w;
            continue;
        }
        if (ntok == 0) n->in_c = c, n->in_h = h, n->in_w = w;  /* default input */
        if (n->nlayers == NET_MAX_LAYERS)
            return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: too many layers at '%s' (at most %d)", orig,
                            NET_MAX_LAYERS);
        net_layer *L = &n->layers[n->nlayers];
        L->in_c = c, L->in_h = h, L->in_w = w;
        if (strcmp(f[0], "conv") == 0) {
            int out, k, s, p;
            if (nf != 5 || !parse_int(f[1], 1, SPEC_MAX_CH, &out) || !parse_int(f[2], 1, SPEC_MAX_K, &k) ||
                !parse_int(f[3], 1, SPEC_MAX_K, &s) || !parse_int(f[4], 0, SPEC_MAX_K, &p))
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: bad '%s' (expected conv:OUT:K:S:P with OUT,K,S >= 1, P >= 0, e.g. conv:32:3:2:1)", orig);
            if (flat)
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: '%s' needs an image input, but its input is flat (after flatten or dense)", orig);
            if (h + 2 * p < k || w + 2 * p < k)
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: '%s' on a %dx%d input gives an empty output (kernel larger than the padded input)", orig, h, w);
            L->kind = LAYER_CONV;
            L->k = k, L->stride = s, L->pad = p;
            L->out_c = out, L->out_h = conv_out_size(h, k, s, p), L->out_w = conv_out_size(w, k, s, p);
            L->w_len = (size_t)out * c * k * k, L->b_len = (size_t)out;
            append(canon, sizeof canon, &pos, ",conv:%d:%d:%d:%d", out, k, s, p);
        } else if (strcmp(f[0], "dense") == 0) {
            int out;
            if (nf != 2 || !parse_int(f[1], 1, SPEC_MAX_CH, &out))
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: bad '%s' (expected dense:OUT with OUT >= 1, e.g. dense:64)", orig);
            if (!flat)
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: '%s' follows a %dx%dx%d image; put 'flatten' before it", orig, c, h, w);
            L->kind = LAYER_DENSE;
            L->in_c = c * h * w, L->in_h = L->in_w = 1;
            L->out_c = out, L->out_h = L->out_w = 1;
            L->w_len = (size_t)out * c * h * w, L->b_len = (size_t)out;
            append(canon, sizeof canon, &pos, ",dense:%d", out);
        } else if (strcmp(f[0], "swish") == 0 && nf == 1) {
            L->kind = LAYER_SWISH;
            L->out_c = c, L->out_h = h, L->out_w = w;
            append(canon, sizeof canon, &pos, ",swish");
        } else if (strcmp(f[0], "lrelu") == 0) {
            char *end = NULL;
            double slope = nf == 2 && *f[1] ? strtod(f[1], &end) : NAN;
            if (nf != 2 || !end || *end || !isfinite(slope) || fabs(slope) > 1e6)
                return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: bad '%s' (expected lrelu:SLOPE, e.g. lrelu:0.2)", orig);
            L->kind = LAYER_LRELU;
            L->slope = (float)slope;
            L->out_c = c, L->out_h = h, L->out_w = w;
            append(canon, sizeof canon, &pos, ",lrelu:%.9g", (double)L->slope);
        } else if (strcmp(f[0], "flatten") == 0 && nf == 1) {
            L->kind = LAYER_FLATTEN;
            L->out_c = c * h * w, L->out_h = L->out_w = 1;
            append(canon, sizeof canon, &pos, ",flatten");
            flat = 1;
        } else {
            return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: unknown token '%s' (%s)", orig, SPEC_HINT);
        }
        if (L->kind == LAYER_DENSE) flat = 1;
        if (layer_size(L) > SPEC_MAX_ACT || L->w_len > (size_t)SPEC_MAX_PARAMS)
            return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: '%s' is too large", orig);
        L->w_off = nparams, L->b_off = nparams + L->w_len;
        nparams += L->w_len + L->b_len;
        if (nparams > (size_t)SPEC_MAX_PARAMS)
            return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: more than %ld parameters at '%s'", SPEC_MAX_PARAMS, orig);
        c = L->out_c, h = L->out_h, w = L->out_w;
        n->nlayers++;
    }
    if (n->nlayers == 0)
        return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: '%s' has no layers (%s)", spec, SPEC_HINT);
    n->in_dim = n->in_c * n->in_h * n->in_w;
    n->out_dim = c * h * w;
    n->nparams = nparams;
    int head = snprintf(n->spec, sizeof n->spec, "in:%dx%dx%d%s", n->in_c, n->in_h, n->in_w, canon);
    if (pos >= sizeof canon || head >= (int)sizeof n->spec)
        return ebm_fail(EBM_STATUS_BAD_ARG, "model spec: canonical form longer than %d characters", NET_SPEC_MAX - 1);
    /* Activation slots: the input copy, then each layer's output. */
    long off = n->in_dim;
    for (int l = 0; l < n->nlayers; l++) {
        n->layers[l].act_off = off;
        off += layer_size(&n->layers[l]);
    }
    n->act_per_image = off;
    return EBM_STATUS_OK;
}

ebm_status net_spec_expand(const char *spec, char *out, size_t out_len) {
    net *n = ebm_alloc(sizeof *n);
    if (!n) return ebm_fail(EBM_STATUS_NOMEM, "model spec: out of memory");
    ebm_status s = parse_spec(spec, n);
    if (s == EBM_STATUS_OK) {
        if (strlen(n->spec) >= out_len)
            s = ebm_fail(EBM_STATUS_BAD_ARG, "model spec: buffer of %zu bytes too small for '%s'", out_len, n->spec);
        else
            strcpy(out, n->spec);
    }
    ebm_free(n);
    return s;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

/* One thread's workspace: the im2col matrix, two gradient ping-pong buffers of a
 * micro-batch of the largest layer, and (for net_energy) a micro-batch's activations. */
typedef struct {
    float *cols, *g, *g2, *acts;
} thread_ws;

static void work_sizes(const net *n, long *cols, long *gmax) {
    *cols = 0, *gmax = n->in_dim;
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (L->kind == LAYER_CONV) {
            long c = conv2d_workspace(NET_MICRO, L->out_h, L->out_w, L->in_c, L->k);
            if (c > *cols) *cols = c;
        }
        if (layer_size(L) > *gmax) *gmax = layer_size(L);
    }
}

static long work_floats(const net *n) {
    long cols, gmax;
    work_sizes(n, &cols, &gmax);
    long total = cols + 2 * NET_MICRO * gmax + NET_MICRO * n->act_per_image;
    return (total + 15) & ~15L;  /* keeps each thread's slice 64-byte aligned */
}

static thread_ws thread_work(const net *n, int t) {
    long cols, gmax;
    work_sizes(n, &cols, &gmax);
    thread_ws w;
    w.cols = n->work + (long)t * n->work_per_thread;
    w.g = w.cols + cols;
    w.g2 = w.g + NET_MICRO * gmax;
    w.acts = w.g2 + NET_MICRO * gmax;
    return w;
}

/* Gradient groups of a batch of B images: consecutive micro-batches, at most
 * NET_GRAD_GROUPS, so that the grouping depends on B alone. */
static int grad_groups(int B) {
    const int nmb = (B + NET_MICRO - 1) / NET_MICRO;
    return nmb < NET_GRAD_GROUPS ? (nmb > 0 ? nmb : 1) : NET_GRAD_GROUPS;
}

/* Grows acts and the gradient groups to B images and the per-thread buffers to
 * n->nthreads; outside hot loops. */
static ebm_status ensure_buffers(net *n, int B) {
    if (B > n->max_batch) {
        float *a = ebm_alloc(sizeof(float) * (size_t)n->act_per_image * (size_t)B);
        if (!a) return ebm_fail(EBM_STATUS_NOMEM, "network: out of memory for activations of %d images", B);
        ebm_free(n->acts);
        n->acts = a;
        n->max_batch = B;
    }
    if (grad_groups(n->max_batch) > n->grad_groups && n->nparams) {
        const int G = grad_groups(n->max_batch);
        float *gg = ebm_alloc(sizeof(float) * n->nparams * (size_t)G);
        if (!gg) return ebm_fail(EBM_STATUS_NOMEM, "network: out of memory for %d gradient groups", G);
        ebm_free(n->group_grads);
        n->group_grads = gg, n->grad_groups = G;
    }
    if (n->nthreads > n->work_threads) {
        float *wk = ebm_alloc(sizeof(float) * (size_t)n->work_per_thread * (size_t)n->nthreads);
        if (!wk) return ebm_fail(EBM_STATUS_NOMEM, "network: out of memory for %d threads' scratch", n->nthreads);
        ebm_free(n->work);
        n->work = wk, n->work_threads = n->nthreads;
    }
    return EBM_STATUS_OK;
}

int net_num_tensors(const net *n) {
    int k = 0;
    for (int l = 0; l < n->nlayers; l++) k += n->layers[l].w_len ? 2 : 0;
    return k;
}

void net_tensor_info(const net *n, int j, char *name, size_t name_len, int *ndim, int64_t shape[4],
                     size_t *offset, size_t *len) {
    EBM_ASSERT(j >= 0 && j < net_num_tensors(n));
    int k = 0;
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (!L->w_len) continue;
        if (k == j || k + 1 == j) {
            const int bias = k + 1 == j;
            if (name) snprintf(name, name_len, "%d.%s", l, bias ? "bias" : "weight");
            int64_t s[4] = {L->out_c, L->in_c, L->k, L->k};
            int nd = bias ? 1 : L->kind == LAYER_CONV ? 4 : 2;
            if (ndim) *ndim = nd;
            if (shape) {
                for (int d = 0; d < 4; d++) shape[d] = d < nd ? s[d] : 0;
            }
            if (offset) *offset = bias ? L->b_off : L->w_off;
            if (len) *len = bias ? L->b_len : L->w_len;
            return;
        }
        k += 2;
    }
}

/* PyTorch's default for Conv2d and Linear: weights and biases U(-b, b), b = 1/sqrt(fan_in)
 * (kaiming_uniform with a = sqrt(5)).  Tensor j (net_tensor_info's order) draws its
 * uniforms from (seed, RNG_STREAM_INIT, j, 0). */
static void init_tensor(float *p, size_t len, float bound, uint64_t seed, int j) {
    rng_uniform_fill(seed, RNG_STREAM_INIT, (uint32_t)j, 0, p, (int)len);
    for (size_t i = 0; i < len; i++) p[i] = (2.0f * p[i] - 1.0f) * bound;
}

static void init_params(net *n, uint64_t seed) {
    for (int l = 0, j = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (!L->w_len) continue;
        const float bound = (float)(1.0 / sqrt((double)L->w_len / L->out_c));
        init_tensor(n->params + L->w_off, L->w_len, bound, seed, j++);
        init_tensor(n->params + L->b_off, L->b_len, bound, seed, j++);
    }
}

ebm_status net_create(net **out, const char *spec, uint64_t seed) {
    *out = NULL;
    net *n = ebm_alloc(sizeof *n);
    if (!n) return ebm_fail(EBM_STATUS_NOMEM, "network: out of memory");
    ebm_status s = parse_spec(spec, n);
    if (s != EBM_STATUS_OK) {
        ebm_free(n);
        return s;
    }
    n->params = ebm_alloc(sizeof(float) * n->nparams);
    n->grads = ebm_alloc(sizeof(float) * n->nparams);
    n->adam_m = ebm_alloc(sizeof(float) * n->nparams);
    n->adam_v = ebm_alloc(sizeof(float) * n->nparams);
    n->whwc = ebm_alloc(sizeof(float) * n->nparams);
    n->work_per_thread = work_floats(n);
    n->nthreads = omp_get_max_threads();
    if (n->nparams && (!n->params || !n->grads || !n->adam_m || !n->adam_v || !n->whwc)) {
        net_free(n);
        return ebm_fail(EBM_STATUS_NOMEM, "network: out of memory for %zu parameters", n->nparams);
    }
    s = ensure_buffers(n, NET_MICRO);
    if (s != EBM_STATUS_OK) {
        net_free(n);
        return s;
    }
    init_params(n, seed);
    *out = n;
    return EBM_STATUS_OK;
}

void net_free(net *n) {
    if (!n) return;
    ebm_free(n->params);
    ebm_free(n->grads);
    ebm_free(n->adam_m);
    ebm_free(n->adam_v);
    ebm_free(n->acts);
    ebm_free(n->work);
    ebm_free(n->group_grads);
    ebm_free(n->whwc);
    ebm_free(n);
}

void net_set_threads(net *n, int nthreads) { n->nthreads = nthreads > 0 ? nthreads : omp_get_max_threads(); }

/* ---- passes --------------------------------------------------------------------------- */

/* Where one micro-batch's tensors live: x (its input images), act[l] (layer l's output for
 * its first image; images follow contiguously). */
typedef struct {
    const float *x;
    float *act[NET_MAX_LAYERS];
} mb_view;

/* View of images [b, b+m) inside the whole-batch activation buffer. */
static mb_view view_batch(const net *n, int b) {
    mb_view v;
    v.x = n->acts + (long)b * n->in_dim;
    for (int l = 0; l < n->nlayers; l++)
        v.act[l] = n->acts + n->layers[l].act_off * n->max_batch + (long)b * layer_size(&n->layers[l]);
    return v;
}

/* View of a micro-batch whose activations live in thread scratch `acts` (NET_MICRO images). */
static mb_view view_scratch(const net *n, const float *x, float *acts) {
    mb_view v;
    v.x = x;
    for (int l = 0; l < n->nlayers; l++) v.act[l] = acts + n->layers[l].act_off * NET_MICRO;
    return v;
}

/* Forward through one micro-batch with the weights in n->whwc.  energy_only: the pass is
 * followed by an input-gradient-only backward (net_energy), so each Swish keeps its
 * derivative in place of its input, which no later step reads. */
static void forward_mb(const net *n, const mb_view *v, int m, float *cols, int energy_only) {
    const float *src = v->x;
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        float *dst = v->act[l];
        const float *w = n->whwc + L->w_off, *b = n->whwc + L->b_off;
        const long sz = m * layer_size(L);
        switch (L->kind) {
        case LAYER_CONV:
            conv2d_forward_hwc(dst, cols, src, w, b, m, L->in_h, L->in_w, L->in_c, L->out_c, L->k, L->stride,
                               L->pad);
            break;
        case LAYER_DENSE: dense_forward(dst, src, w, b, m, L->in_c, L->out_c); break;
        case LAYER_SWISH:
            if (energy_only && l > 0) swish_forward_grad(dst, v->act[l - 1], src, sz);
            else swish_forward(dst, src, sz);
            break;
        case LAYER_LRELU: leakyrelu_forward(dst, src, sz, L->slope); break;
        case LAYER_FLATTEN: flatten_forward(dst, src, m, L->in_h, L->in_w, L->in_c); break;
        }
        src = dst;
    }
}

/* Back-propagates g (m, out_dim; overwritten) through the micro-batch: dx (m, in_dim) when
 * non-NULL, parameter gradients += into grads (hwc layout for conv weights) when non-NULL.
 * g and g2 are scratch of m x (largest layer) floats each. */
static void backward_mb(const net *n, const mb_view *v, int m, float *g, float *g2, float *cols, float *dx,
                        float *grads, int energy_only) {
    for (int l = n->nlayers - 1; l >= 0; l--) {
        const net_layer *L = &n->layers[l];
        if (l == 0 && !dx && !(grads && L->w_len)) break;
        const float *inp = l ? v->act[l - 1] : v->x;
        float *dinp = l ? g2 : dx;
        const float *w = n->whwc + L->w_off;
        float *dw = grads && L->w_len ? grads + L->w_off : NULL, *db = dw ? grads + L->b_off : NULL;
        const long nin = m * layer_in_size(L);
        switch (L->kind) {
        case LAYER_CONV:
            conv2d_backward_hwc(dinp, dw, db, cols, g, inp, w, m, L->in_h, L->in_w, L->in_c, L->out_c, L->k,
                                L->stride, L->pad, 0);
            break;
        case LAYER_DENSE: dense_backward(dinp, dw, db, g, inp, w, m, L->in_c, L->out_c); break;
        case LAYER_SWISH:
            if (dinp && energy_only && l > 0) mul_backward(dinp, g, inp, nin);  /* inp holds the derivative */
            else if (dinp) swish_backward(dinp, g, inp, nin);
            break;
        case LAYER_LRELU:
            if (dinp) leakyrelu_backward(dinp, g, inp, nin, L->slope);
            break;
        case LAYER_FLATTEN:
            if (dinp) flatten_backward(dinp, g, m, L->in_h, L->in_w, L->in_c);
            break;
        }
        float *t = g;
        g = g2, g2 = t;
    }
}

/* n->whwc = the parameters as this pass uses them (conv weights reordered to hwc). */
static void refresh_weights(net *n) {
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (!L->w_len) continue;
        if (L->kind == LAYER_CONV)
            conv2d_weight_to_hwc(n->whwc + L->w_off, n->params + L->w_off, L->out_c, L->in_c, L->k);
        else
            memcpy(n->whwc + L->w_off, n->params + L->w_off, sizeof(float) * L->w_len);
        memcpy(n->whwc + L->b_off, n->params + L->b_off, sizeof(float) * L->b_len);
    }
}

/* n->grads += the G groups' gradients (added in group order into group 0's slot by nt
 * threads, conv weights folded back from hwc to PyTorch's layout). */
static void reduce_grads(net *n, int G, int nt) {
    float *sum = n->group_grads;
    const long np = (long)n->nparams;
    if (G > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (long i = 0; i < np; i++)
            for (int g = 1; g < G; g++) sum[i] += n->group_grads[(size_t)g * n->nparams + (size_t)i];
    }
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (!L->w_len) continue;
        if (L->kind == LAYER_CONV)
            conv2d_grad_from_hwc_add(n->grads + L->w_off, sum + L->w_off, L->out_c, L->in_c, L->k);
        else
            for (size_t i = 0; i < L->w_len; i++) n->grads[L->w_off + i] += sum[L->w_off + i];
        for (size_t i = 0; i < L->b_len; i++) n->grads[L->b_off + i] += sum[L->b_off + i];
    }
}

/* OpenBLAS at one thread while our threads run (its pool would oversubscribe the cores);
 * restored afterwards for other users of the library. */
static int blas_single_begin(void) {
    int prev = openblas_get_num_threads();
    if (prev != 1) openblas_set_num_threads(1);
    return prev;
}
static void blas_single_end(int prev) {
    if (prev != 1) openblas_set_num_threads(prev);
}

static int threads_for(const net *n, int B) {
    int nt = n->nthreads < n->work_threads ? n->nthreads : n->work_threads;
    return nt < B ? nt : (B > 0 ? B : 1);
}

ebm_status net_forward(net *n, const float *x, int B, float *out) {
    EBM_ASSERT(B >= 0);
    if (B == 0) return EBM_STATUS_OK;
    EBM_TRY(ensure_buffers(n, B));
    refresh_weights(n);
    const int nt = threads_for(n, B), blas = blas_single_begin();
    const int nmb = (B + NET_MICRO - 1) / NET_MICRO;
#pragma omp parallel num_threads(nt)
    {
        thread_ws w = thread_work(n, omp_get_thread_num());
        /* dynamic: a thread the OS delays does not hold the other back; the grouping of
         * images into micro-batches (and so every result) is the same whoever computes it */
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < nmb; k++) {
            const int b = k * NET_MICRO, m = B - b < NET_MICRO ? B - b : NET_MICRO;
            memcpy(n->acts + (long)b * n->in_dim, x + (long)b * n->in_dim, sizeof(float) * (size_t)m * n->in_dim);
            mb_view v = view_batch(n, b);
            forward_mb(n, &v, m, w.cols, 0);
            if (out) memcpy(out + (long)b * n->out_dim, v.act[n->nlayers - 1], sizeof(float) * (size_t)m * n->out_dim);
        }
    }
    blas_single_end(blas);
    return EBM_STATUS_OK;
}

/* Parameter gradients: group g of G = grad_groups(B) holds micro-batches [nmb*g/G,
 * nmb*(g+1)/G) and sums them in order into its own slot, whichever thread takes it. */
void net_backward(net *n, const float *dout, int B, float *dx, int with_param_grads) {
    EBM_ASSERT(B >= 0 && B <= n->max_batch);
    if (B == 0) return;
    const int nmb = (B + NET_MICRO - 1) / NET_MICRO, G = grad_groups(B);
    const int nt0 = threads_for(n, B), nt = nt0 < G ? nt0 : G, blas = blas_single_begin();
    EBM_ASSERT(!with_param_grads || !n->nparams || G <= n->grad_groups);
#pragma omp parallel num_threads(nt)
    {
        thread_ws w = thread_work(n, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int g = 0; g < G; g++) {
            float *grads = NULL;
            if (with_param_grads && n->nparams) {
                grads = n->group_grads + (size_t)g * n->nparams;
                memset(grads, 0, sizeof(float) * n->nparams);
            }
            for (int k = (int)((long)nmb * g / G); k < (int)((long)nmb * (g + 1) / G); k++) {
                const int b = k * NET_MICRO, m = B - b < NET_MICRO ? B - b : NET_MICRO;
                memcpy(w.g, dout + (long)b * n->out_dim, sizeof(float) * (size_t)m * n->out_dim);
                mb_view v = view_batch(n, b);
                backward_mb(n, &v, m, w.g, w.g2, w.cols, dx ? dx + (long)b * n->in_dim : NULL, grads, 0);
            }
        }
    }
    blas_single_end(blas);
    if (with_param_grads && n->nparams) reduce_grads(n, G, nt0);
}

/* E and dE/df for one image's outputs f (out_dim); label < 0 means E(x). */
static float energy_head(const float *f, int out_dim, int label, float *dEdf) {
    if (label >= 0) {
        if (dEdf) {
            memset(dEdf, 0, sizeof(float) * (size_t)out_dim);
            dEdf[label] = -1.0f;
        }
        return -f[label];
    }
    if (out_dim == 1) {
        if (dEdf) dEdf[0] = -1.0f;
        return -f[0];
    }
    float mx = f[0];
    for (int j = 1; j < out_dim; j++) mx = f[j] > mx ? f[j] : mx;
    double s = 0.0;
    for (int j = 0; j < out_dim; j++) s += exp((double)(f[j] - mx));
    const double lse = (double)mx + log(s);
    if (dEdf)
        for (int j = 0; j < out_dim; j++) dEdf[j] = (float)-exp((double)f[j] - lse);
    return (float)-lse;
}

void net_energy_head(const net *n, const float *f, int B, const int *y, float *E, float *dEdf) {
    for (int i = 0; i < B; i++) {
        EBM_ASSERT(!y || (y[i] >= -1 && y[i] < n->out_dim));
        E[i] = energy_head(f + (long)i * n->out_dim, n->out_dim, y ? y[i] : -1,
                           dEdf ? dEdf + (long)i * n->out_dim : NULL);
    }
}

ebm_status net_energy(net *n, const float *x, int B, const int *y, float *E, float *dEdx) {
    EBM_ASSERT(B >= 0);
    if (y) {
        for (int i = 0; i < B; i++)
            if (y[i] < -1 || y[i] >= n->out_dim)
                return ebm_fail(EBM_STATUS_BAD_ARG, "energy: label %d of image %d outside 0..%d (or -1: no label)", y[i],
                                i, n->out_dim - 1);
    }
    if (B == 0) return EBM_STATUS_OK;
    EBM_TRY(ensure_buffers(n, 0));
    refresh_weights(n);
    const int nt = threads_for(n, B), blas = blas_single_begin();
    const int nmb = (B + NET_MICRO - 1) / NET_MICRO;
#pragma omp parallel num_threads(nt)
    {
        thread_ws w = thread_work(n, omp_get_thread_num());
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < nmb; k++) {
            const int b = k * NET_MICRO, m = B - b < NET_MICRO ? B - b : NET_MICRO;
            mb_view v = view_scratch(n, x + (long)b * n->in_dim, w.acts);
            forward_mb(n, &v, m, w.cols, dEdx != NULL);
            const float *f = v.act[n->nlayers - 1];
            for (int i = 0; i < m; i++)
                E[b + i] = energy_head(f + (long)i * n->out_dim, n->out_dim, y ? y[b + i] : -1,
                                       dEdx ? w.g + (long)i * n->out_dim : NULL);
            if (dEdx) backward_mb(n, &v, m, w.g, w.g2, w.cols, dEdx + (long)b * n->in_dim, NULL, 1);
        }
    }
    blas_single_end(blas);
    return EBM_STATUS_OK;
}
