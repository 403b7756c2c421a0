/* test_net.c - the whole network: gradients against finite differences of a double-
 * precision reference, spec parsing (good and bad), deterministic init, thread-count
 * independence, batch growth.
 *
 * The reference here re-implements the forward pass naively in double from the net's
 * layer table (NHWC, torch weight layouts), so central differences (h = 1e-5) are accurate
 * to ~1e-9 and any disagreement is the float engine's.  Threshold: normalised max error
 * max|analytic - numeric| / max|numeric| <= 1e-4 over the sampled entries of each tensor. */
#include "testutil.h"

#include "core/net.h"
#include "core/rng.h"

#define FD_H 1e-5
#define TOL_GRAD 1e-4

/* ---- double reference ------------------------------------------------------------------- */

/* f (out_dim) of one image x (in_dim) under parameters P. */
static void ref_forward(const net *n, const double *P, const double *x, double *f) {
    long maxsz = n->in_dim;
    for (int l = 0; l < n->nlayers; l++) {
        long s = (long)n->layers[l].out_c * n->layers[l].out_h * n->layers[l].out_w;
        if (s > maxsz) maxsz = s;
    }
    double *a = malloc(sizeof(double) * maxsz), *b = malloc(sizeof(double) * maxsz);
    memcpy(a, x, sizeof(double) * n->in_dim);
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        const double *w = P + L->w_off, *bias = P + L->b_off;
        const long nin = (long)L->in_c * L->in_h * L->in_w;
        switch (L->kind) {
        case LAYER_CONV:
            for (int oh = 0; oh < L->out_h; oh++)
                for (int ow = 0; ow < L->out_w; ow++)
                    for (int co = 0; co < L->out_c; co++) {
                        double s = bias[co];
                        for (int ci = 0; ci < L->in_c; ci++)
                            for (int kh = 0; kh < L->k; kh++)
                                for (int kw = 0; kw < L->k; kw++) {
                                    int ih = oh * L->stride - L->pad + kh, iw = ow * L->stride - L->pad + kw;
                                    if (ih < 0 || ih >= L->in_h || iw < 0 || iw >= L->in_w) continue;
                                    s += a[(ih * L->in_w + iw) * L->in_c + ci] *
                                         w[((co * L->in_c + ci) * L->k + kh) * L->k + kw];
                                }
                        b[(oh * L->out_w + ow) * L->out_c + co] = s;
                    }
            break;
        case LAYER_DENSE:
            for (int o = 0; o < L->out_c; o++) {
                double s = bias[o];
                for (int i = 0; i < L->in_c; i++) s += a[i] * w[o * L->in_c + i];
                b[o] = s;
            }
            break;
        case LAYER_SWISH:
            for (long i = 0; i < nin; i++) b[i] = a[i] / (1.0 + exp(-a[i]));
            break;
        case LAYER_LRELU:
            for (long i = 0; i < nin; i++) b[i] = a[i] > 0 ? a[i] : L->slope * a[i];
            break;
        case LAYER_FLATTEN:  /* NHWC -> torch's (C,H,W) */
            for (int h = 0; h < L->in_h; h++)
                for (int ww = 0; ww < L->in_w; ww++)
                    for (int c = 0; c < L->in_c; c++)
                        b[(c * L->in_h + h) * L->in_w + ww] = a[(h * L->in_w + ww) * L->in_c + c];
            break;
        }
        double *t = a;
        a = b, b = t;
    }
    memcpy(f, a, sizeof(double) * n->out_dim);
    free(a), free(b);
}

static double ref_energy(const net *n, const double *P, const double *x, int y) {
    double f[16];
    assert_true(n->out_dim <= 16);
    ref_forward(n, P, x, f);
    if (y >= 0) return -f[y];
    if (n->out_dim == 1) return -f[0];
    double mx = f[0], s = 0;
    for (int j = 1; j < n->out_dim; j++) mx = fmax(mx, f[j]);
    for (int j = 0; j < n->out_dim; j++) s += exp(f[j] - mx);
    return -(mx + log(s));
}

/* sum_i E(x_i, y_i) */
static double ref_total(const net *n, const double *P, const double *x, int B, const int *y) {
    double s = 0;
    for (int i = 0; i < B; i++) s += ref_energy(n, P, x + (long)i * n->in_dim, y ? y[i] : -1);
    return s;
}

static void rand_images(float *x, double *xd, long count, uint32_t a) {
    rng_uniform_fill(99, RNG_STREAM_USER, a, 0, x, (int)count);
    for (long i = 0; i < count; i++) x[i] = 2.0f * x[i] - 1.0f, xd[i] = x[i];
}

static double report(const char *what, const float *a, const double *num, int cnt) {
    double e = 0, mx = 0;
    int wi = 0;
    for (int i = 0; i < cnt; i++) {
        double d = fabs(a[i] - num[i]);
        if (!(d <= e)) e = d, wi = i;
        mx = fmax(mx, fabs(num[i]));
    }
    e /= mx > 0 ? mx : 1;
    printf("  %-20s %3d sampled  normalised err %.2e (worst: %.7g vs %.7g)\n", what, cnt, e, (double)a[wi], num[wi]);
    if (!(e <= TOL_GRAD)) fail_msg("%s: normalised error %.3e above %.1e", what, e, TOL_GRAD);
    return e;
}

/* FD check of dE/dtheta (net_forward + net_energy_head + net_backward) and dE/dx
 * (net_energy) for B images, labels y or NULL. */
static void run_fd(const char *spec, const int *y) {
    enum { B = 3, SAMPLES = 12 };
    net *n = NULL;
    assert_int_equal(net_create(&n, spec, 5), EBM_STATUS_OK);
    printf("%s, %s\n", spec, y ? "E(x, y)" : "E(x)");
    const long nx = (long)B * n->in_dim;
    float *x = malloc(sizeof(float) * nx), *f = malloc(sizeof(float) * B * n->out_dim);
    float *dout = malloc(sizeof(float) * B * n->out_dim), *E = malloc(sizeof(float) * B), *E2 = malloc(sizeof(float) * B);
    float *dEdx = malloc(sizeof(float) * nx);
    double *xd = malloc(sizeof(double) * nx), *P = malloc(sizeof(double) * n->nparams);
    rand_images(x, xd, nx, 7);
    for (size_t i = 0; i < n->nparams; i++) P[i] = n->params[i];

    assert_int_equal(net_forward(n, x, B, f), EBM_STATUS_OK);
    net_energy_head(n, f, B, y, E, dout);
    memset(n->grads, 0, sizeof(float) * n->nparams);
    net_backward(n, dout, B, NULL, 1);
    assert_int_equal(net_energy(n, x, B, y, E2, dEdx), EBM_STATUS_OK);
    for (int i = 0; i < B; i++) {
        double r = ref_energy(n, P, xd + (long)i * n->in_dim, y ? y[i] : -1);
        assert_true(fabs(E[i] - r) <= 1e-5 * (1 + fabs(r)));
        assert_true(fabs(E2[i] - r) <= 1e-5 * (1 + fabs(r)));
    }
    for (int j = 0; j < net_num_tensors(n); j++) {
        char name[64];
        size_t off, len;
        net_tensor_info(n, j, name, sizeof name, NULL, NULL, &off, &len);
        float a[SAMPLES];
        double num[SAMPLES];
        int cnt = 0;
        for (; cnt < SAMPLES && (size_t)cnt < len;) {
            size_t i = off + ((size_t)cnt * 7919u + (size_t)j * 31u) % len;
            const double keep = P[i];
            P[i] = keep + FD_H;
            double lp = ref_total(n, P, xd, B, y);
            P[i] = keep - FD_H;
            double lm = ref_total(n, P, xd, B, y);
            P[i] = keep;
            num[cnt] = (lp - lm) / (2 * FD_H);
            a[cnt++] = n->grads[i];
        }
        report(name, a, num, cnt);
    }
    /* dE/dx: corners and edges (which only the padded first conv reaches) and a spread. */
    for (int img = 0; img < B; img++) {
        enum { NPIX = 24 };
        float a[NPIX];
        double num[NPIX];
        int pix[NPIX] = {0, 27, 756, 783, 14, 392, 405};
        for (int k = 7; k < NPIX; k++) pix[k] = (k * 331 + img * 17) % n->in_dim;
        for (int k = 0; k < NPIX; k++) {
            double *xi = xd + (long)img * n->in_dim;
            const int p = pix[k] % n->in_dim;
            const double keep = xi[p];
            xi[p] = keep + FD_H;
            double lp = ref_energy(n, P, xi, y ? y[img] : -1);
            xi[p] = keep - FD_H;
            double lm = ref_energy(n, P, xi, y ? y[img] : -1);
            xi[p] = keep;
            num[k] = (lp - lm) / (2 * FD_H);
            a[k] = dEdx[(long)img * n->in_dim + p];
        }
        char what[32];
        snprintf(what, sizeof what, "dE/dx image %d", img);
        report(what, a, num, NPIX);
    }
    free(x), free(f), free(dout), free(E), free(E2), free(dEdx), free(xd), free(P);
    net_free(n);
}

static void test_fd_cnn_small(void **st) { (void)st; run_fd("cnn-small", NULL); }
static void test_fd_cnn_small_cond_logsumexp(void **st) { (void)st; run_fd("cnn-small-cond", NULL); }
static void test_fd_cnn_small_cond_labels(void **st) {
    (void)st;
    const int y[3] = {4, 0, 9};
    run_fd("cnn-small-cond", y);
}
/* Swish first (its input is the caller's x) and two Swish in a row (the energy pass stores
 * each derivative over the layer's input). */
static void test_fd_swish_first_and_stacked(void **st) {
    (void)st;
    run_fd("in:1x6x6,swish,conv:4:3:1:1,swish,swish,flatten,dense:2,swish", NULL);
}

static void test_fd_lrelu_and_non_square_spec(void **st) {
    (void)st;
    run_fd("in:2x9x7,conv:4:3:1:1,lrelu:0.2,conv:6:3:2:0,swish,flatten,dense:5,lrelu:0.1,dense:3", NULL);
}

/* ---- spec parsing --------------------------------------------------------------------- */

static const char *CNN_SMALL = "in:1x28x28,conv:16:5:2:4,swish,conv:32:3:2:1,swish,conv:64:3:2:1,swish,"
                               "conv:64:3:2:1,swish,flatten,dense:64,swish,dense:1";

static void test_spec_named_expand_to_canonical(void **st) {
    (void)st;
    char buf[NET_SPEC_MAX];
    assert_int_equal(net_spec_expand("cnn-small", buf, sizeof buf), EBM_STATUS_OK);
    assert_string_equal(buf, CNN_SMALL);
    assert_int_equal(net_spec_expand("cnn-small-cond", buf, sizeof buf), EBM_STATUS_OK);
    assert_non_null(strstr(buf, ",swish,dense:10"));
    /* explicit, with spaces and the default input omitted; canonical form re-parses to itself */
    assert_int_equal(net_spec_expand(" conv:8:3:1:1 , lrelu:0.25,flatten, dense:10 ", buf, sizeof buf), EBM_STATUS_OK);
    assert_string_equal(buf, "in:1x28x28,conv:8:3:1:1,lrelu:0.25,flatten,dense:10");
    char again[NET_SPEC_MAX];
    assert_int_equal(net_spec_expand(buf, again, sizeof again), EBM_STATUS_OK);
    assert_string_equal(buf, again);
    /* too small an output buffer is an error, not a truncation */
    assert_int_equal(net_spec_expand("cnn-small", buf, 20), EBM_STATUS_BAD_ARG);
}

static void test_spec_cnn_small_shapes_and_torch_names(void **st) {
    (void)st;
    net *n = NULL;
    assert_int_equal(net_create(&n, "cnn-small", 0), EBM_STATUS_OK);
    assert_string_equal(n->spec, CNN_SMALL);
    assert_int_equal(n->nlayers, 12);
    assert_int_equal(n->in_dim, 784);
    assert_int_equal(n->out_dim, 1);
    assert_int_equal(n->nparams, 76993);  /* = sum(p.numel() for p in torch_peer.energy_net().parameters()) */
    assert_int_equal(n->layers[0].out_h, 16);  /* (28 + 8 - 5) / 2 + 1 */
    assert_int_equal(n->layers[6].out_h, 2);
    assert_int_equal(n->layers[8].out_c, 256);
    assert_int_equal(net_num_tensors(n), 12);
    const char *names[12] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias",
                             "6.weight", "6.bias", "9.weight", "9.bias", "11.weight", "11.bias"};
    const int64_t shapes[12][4] = {{16, 1, 5, 5}, {16}, {32, 16, 3, 3}, {32}, {64, 32, 3, 3}, {64},
                                   {64, 64, 3, 3}, {64}, {64, 256}, {64}, {1, 64}, {1}};
    const int ndims[12] = {4, 1, 4, 1, 4, 1, 4, 1, 2, 1, 2, 1};
    size_t total = 0;
    for (int j = 0; j < 12; j++) {
        char name[32];
        int nd;
        int64_t sh[4];
        size_t off, len, prod = 1;
        net_tensor_info(n, j, name, sizeof name, &nd, sh, &off, &len);
        assert_string_equal(name, names[j]);
        assert_int_equal(nd, ndims[j]);
        for (int d = 0; d < nd; d++) assert_int_equal(sh[d], shapes[j][d]), prod *= (size_t)sh[d];
        assert_int_equal(len, prod);
        assert_int_equal(off, total);  /* packed, in order */
        total += len;
    }
    assert_int_equal(total, n->nparams);
    net_free(n);
}

static void expect_bad(const char *spec, const char *needle) {
    net *n = (net *)0x1;
    ebm_status s = net_create(&n, spec, 0);
    printf("  %-40.40s -> %s: %s\n", spec, ebm_status_name(s), ebm_last_error());
    assert_int_equal(s, EBM_STATUS_BAD_ARG);
    assert_null(n);
    if (!strstr(ebm_last_error(), needle)) fail_msg("error for '%s' does not name '%s': %s", spec, needle, ebm_last_error());
}

static void test_spec_errors_name_the_token(void **st) {
    (void)st;
    expect_bad("cnn-big", "cnn-big");
    expect_bad("conv:16:5:2:4,swish,fancy,flatten,dense:1", "fancy");
    expect_bad("conv:16:5:2,flatten,dense:1", "conv:16:5:2");
    expect_bad("conv:16:5:2:4:1,flatten,dense:1", "conv:16:5:2:4:1");
    expect_bad("conv:0:3:1:1,flatten,dense:1", "conv:0:3:1:1");
    expect_bad("conv:8:x:1:1,flatten,dense:1", "conv:8:x:1:1");
    expect_bad("conv:8:3:0:1,flatten,dense:1", "conv:8:3:0:1");
    expect_bad("conv:8:3:1:-1,flatten,dense:1", "conv:8:3:1:-1");
    expect_bad("conv:8:3:1:1,dense:10", "dense:10");                       /* no flatten */
    expect_bad("conv:8:3:1:1,flatten,conv:8:3:1:1", "conv:8:3:1:1");       /* conv on flat */
    expect_bad("in:1x4x4,conv:8:7:1:1,flatten,dense:1", "conv:8:7:1:1");   /* empty output */
    expect_bad("in:1x28x28,conv:8:3:2:1,conv:8:3:2:0,conv:8:3:2:0,conv:8:3:2:0", "conv:8:3:2:0");
    expect_bad("flatten,in:1x28x28,dense:1", "in:1x28x28");                /* in: not first */
    expect_bad("in:1x28,flatten,dense:1", "in:1x28");
    expect_bad("in:0x28x28,flatten,dense:1", "in:0x28x28");
    expect_bad("flatten,dense:", "dense:");
    expect_bad("flatten,dense:12abc", "dense:12abc");
    expect_bad("lrelu,flatten,dense:1", "lrelu");
    expect_bad("lrelu:abc,flatten,dense:1", "lrelu:abc");
    expect_bad("lrelu:nan,flatten,dense:1", "lrelu:nan");
    expect_bad("swish:3,flatten,dense:1", "swish:3");
    expect_bad("", "no layers");
    expect_bad("in:1x28x28", "no layers");
    expect_bad("conv:99999999999:3:1:1", "conv:99999999999:3:1:1");
    char many[NET_SPEC_MAX] = "flatten";
    for (int i = 1; i <= NET_MAX_LAYERS; i++) strcat(many, ",swish");
    expect_bad(many, "too many layers at 'swish' (at most 32)");
    char longer[NET_SPEC_MAX + 8];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    expect_bad(longer, "longer than");
    ebm_status s = net_create(&(net *){NULL}, NULL, 0);
    assert_int_equal(s, EBM_STATUS_BAD_ARG);
}

/* ---- init ----------------------------------------------------------------------------- */

static void test_init_is_deterministic_in_torch_ranges(void **st) {
    (void)st;
    net *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(net_create(&a, "cnn-small", 42), EBM_STATUS_OK);
    assert_int_equal(net_create(&b, "cnn-small", 42), EBM_STATUS_OK);
    assert_int_equal(net_create(&c, "cnn-small", 43), EBM_STATUS_OK);
    assert_memory_equal(a->params, b->params, sizeof(float) * a->nparams);
    size_t same = 0;
    for (size_t i = 0; i < a->nparams; i++) same += a->params[i] == c->params[i];
    printf("  seed 42 vs 43: %zu of %zu parameters equal\n", same, a->nparams);
    assert_true(same < a->nparams / 1000);
    for (int j = 0; j < net_num_tensors(a); j++) {  /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
        char name[32];
        int nd;
        int64_t sh[4];
        size_t off, len;
        net_tensor_info(a, j, name, sizeof name, &nd, sh, &off, &len);
        const net_layer *L = NULL;
        for (int l = 0; l < a->nlayers; l++)
            if (a->layers[l].w_len && (a->layers[l].w_off == off || a->layers[l].b_off == off)) L = &a->layers[l];
        assert_non_null(L);
        const double bound = 1.0 / sqrt((double)L->w_len / L->out_c);
        double mx = 0, mean = 0;
        for (size_t i = 0; i < len; i++) mx = fmax(mx, fabs(a->params[off + i])), mean += a->params[off + i];
        mean /= (double)len;
        assert_true(mx <= bound);
        if (len >= 1000) {  /* uniform: reaches near the bound, centred */
            assert_true(mx > 0.99 * bound);
            assert_true(fabs(mean) < 0.05 * bound);
        }
        for (size_t i = 0; i < len; i++) assert_true(a->grads[off + i] == 0 && a->adam_m[off + i] == 0 && a->adam_v[off + i] == 0);
    }
    net_free(a), net_free(b), net_free(c);
}

/* ---- threads, batch sizes, labels ------------------------------------------------------ */

static double max_abs(const float *a, long n) {
    double m = 0;
    for (long i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Every result is the same bit for bit on 1, 2 or 3 threads: energies, dE/dx and the
 * parameter gradients, whose per-group sums are added in a fixed order (net.c), at a batch
 * of fewer micro-batches than gradient groups and at one of more. */
static void test_thread_count_does_not_change_results(void **st) {
    (void)st;
    const int batches[2] = {37, 300}; /* 37: odd, not a multiple of the micro-batch */
    const char *specs[2] = {"cnn-small", "cnn-small-cond"};
    for (int sp = 0; sp < 2; sp++)
        for (int bi = 0; bi < 2; bi++) {
            const int B = batches[bi];
            net *n = NULL;
            assert_int_equal(net_create(&n, specs[sp], 3), EBM_STATUS_OK);
            const long nx = (long)B * n->in_dim;
            float *x = malloc(sizeof(float) * nx), *E[3], *dx[3], *g[3], *dout = malloc(sizeof(float) * B * n->out_dim);
            float *f = malloc(sizeof(float) * B * n->out_dim), *Eh = malloc(sizeof(float) * B);
            double *xd = malloc(sizeof(double) * nx);
            rand_images(x, xd, nx, 11);
            for (int t = 0; t < 3; t++) {
                net_set_threads(n, t + 1);
                E[t] = malloc(sizeof(float) * B), dx[t] = malloc(sizeof(float) * nx), g[t] = malloc(sizeof(float) * n->nparams);
                assert_int_equal(net_energy(n, x, B, NULL, E[t], dx[t]), EBM_STATUS_OK);
                assert_int_equal(net_forward(n, x, B, f), EBM_STATUS_OK);
                net_energy_head(n, f, B, NULL, Eh, dout);
                memset(n->grads, 0, sizeof(float) * n->nparams);
                net_backward(n, dout, B, NULL, 1);
                memcpy(g[t], n->grads, sizeof(float) * n->nparams);
                for (int i = 0; i < B; i++) assert_true(fabsf(Eh[i] - E[t][i]) <= 1e-6f * (1e-3f + fabsf(E[t][i])));
            }
            printf("%s, %d images: energy, dE/dx and parameter gradients on 2 and 3 threads equal 1 thread's "
                   "bit for bit (|g| max %.3g)\n", specs[sp], B, max_abs(g[0], (long)n->nparams));
            for (int t = 1; t < 3; t++) {
                assert_memory_equal(E[t], E[0], sizeof(float) * B);
                assert_memory_equal(dx[t], dx[0], sizeof(float) * nx);
                assert_memory_equal(g[t], g[0], sizeof(float) * n->nparams);
            }
            for (int t = 0; t < 3; t++) free(E[t]), free(dx[t]), free(g[t]);
            free(x), free(dout), free(f), free(Eh), free(xd);
            net_free(n);
        }
}

static void test_batch_grows_and_param_grads_accumulate(void **st) {
    (void)st;
    net *n = NULL;
    assert_int_equal(net_create(&n, "cnn-small", 9), EBM_STATUS_OK);
    enum { BIG = 100 };
    float *x = malloc(sizeof(float) * BIG * 784), *f = malloc(sizeof(float) * BIG), *E = malloc(sizeof(float) * BIG);
    float *dout = malloc(sizeof(float) * BIG), *g1 = malloc(sizeof(float) * n->nparams);
    double *xd = malloc(sizeof(double) * BIG * 784);
    rand_images(x, xd, (long)BIG * 784, 12);
    assert_int_equal(net_energy(n, x, 0, NULL, E, NULL), EBM_STATUS_OK);  /* empty batch */
    assert_int_equal(net_forward(n, x, 3, f), EBM_STATUS_OK);
    assert_int_equal(net_forward(n, x, BIG, f), EBM_STATUS_OK);           /* grows */
    assert_true(n->max_batch >= BIG);
    assert_int_equal(net_energy(n, x, BIG, NULL, E, NULL), EBM_STATUS_OK);
    for (int i = 0; i < BIG; i++) assert_true(fabsf(E[i] + f[i]) <= 1e-6f * (1e-3f + fabsf(f[i])));
    /* backward twice without clearing doubles the parameter gradients (+=) */
    for (int i = 0; i < BIG; i++) dout[i] = -1.0f;
    memset(n->grads, 0, sizeof(float) * n->nparams);
    net_backward(n, dout, BIG, NULL, 1);
    memcpy(g1, n->grads, sizeof(float) * n->nparams);
    net_backward(n, dout, BIG, NULL, 1);
    for (size_t i = 0; i < n->nparams; i++) g1[i] *= 2.0f;
    tu_check_close("grads after 2 backward = 2x", n->grads, g1, n->nparams, 1e-6, 1e-6);
    free(x), free(f), free(E), free(dout), free(g1), free(xd);
    net_free(n);
}

static void test_energy_rejects_labels_out_of_range(void **st) {
    (void)st;
    net *n = NULL;
    assert_int_equal(net_create(&n, "cnn-small-cond", 1), EBM_STATUS_OK);
    float x[2 * 784] = {0}, E[2];
    int y[2] = {3, 10};
    assert_int_equal(net_energy(n, x, 2, y, E, NULL), EBM_STATUS_BAD_ARG);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "label 10"));
    y[1] = -2;
    assert_int_equal(net_energy(n, x, 2, y, E, NULL), EBM_STATUS_BAD_ARG);
    y[1] = 9;
    assert_int_equal(net_energy(n, x, 2, y, E, NULL), EBM_STATUS_OK);
    net_free(n);
}

/* Label -1 means no label: the marginal E(x) = -logsumexp_y f(x)[y], with its gradient, as
 * with y == NULL, beside labelled images in the same call. */
static void test_energy_label_minus_one_is_the_marginal(void **st) {
    (void)st;
    net *n = NULL;
    assert_int_equal(net_create(&n, "cnn-small-cond", 2), EBM_STATUS_OK);
    static float x[3 * 784], g[3 * 784], gm[3 * 784];
    for (int i = 0; i < 3 * 784; i++) x[i] = sinf(0.37f * (float)i);
    float E[3], Em[3];
    int y[3] = {4, -1, 7};
    assert_int_equal(net_energy(n, x, 3, y, E, g), EBM_STATUS_OK);
    assert_int_equal(net_energy(n, x, 3, NULL, Em, gm), EBM_STATUS_OK);
    assert_true(E[1] == Em[1] && E[0] != Em[0] && E[2] != Em[2]);
    assert_memory_equal(g + 784, gm + 784, 784 * sizeof(float));
    printf("  E(x1, -1) = %.7g = E(x1); E(x0, 4) = %.7g, E(x0) = %.7g\n", E[1], E[0], Em[0]);
    net_free(n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_cnn_small),
        cmocka_unit_test(test_fd_cnn_small_cond_logsumexp),
        cmocka_unit_test(test_fd_cnn_small_cond_labels),
        cmocka_unit_test(test_fd_lrelu_and_non_square_spec),
        cmocka_unit_test(test_fd_swish_first_and_stacked),
        cmocka_unit_test(test_spec_named_expand_to_canonical),
        cmocka_unit_test(test_spec_cnn_small_shapes_and_torch_names),
        cmocka_unit_test(test_spec_errors_name_the_token),
        cmocka_unit_test(test_init_is_deterministic_in_torch_ranges),
        cmocka_unit_test(test_thread_count_does_not_change_results),
        cmocka_unit_test(test_batch_grows_and_param_grads_accumulate),
        cmocka_unit_test(test_energy_rejects_labels_out_of_range),
        cmocka_unit_test(test_energy_label_minus_one_is_the_marginal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
