/* test_layers.c - every layer of layers.c against a naive double-precision reference
 * written here: the float forward must match the reference, and the float analytic
 * gradients (dinp, dw, db) must match central differences of the reference.
 *
 * Loss: L = sum(out * R) with fixed random R, so dL/dout = R.  Central differences in
 * double with h = 1e-5 (truncation ~h^2, rounding ~1e-16/h: both far below float's 6e-8).
 * Error measure: normalised max error  max|a - n| / max|n|,  thresholds:
 *   forward 1e-5, gradients 1e-4 (float sums of up to ~600 terms sit near 1e-6). */
#include "testutil.h"

#include "core/layers.h"
#include "core/rng.h"

#define FD_H 1e-5
#define TOL_FWD 1e-5
#define TOL_GRAD 1e-4

/* ---- helpers ------------------------------------------------------------------------- */

static void rand_fill(double *d, float *f, long n, double lo, double hi, uint32_t a) {
    float *u = malloc(sizeof(float) * (size_t)(n + 4));
    rng_uniform_fill(1234, RNG_STREAM_USER, a, 0, u, (int)n);
    for (long i = 0; i < n; i++) {
        float v = (float)(lo + (hi - lo) * u[i]);
        if (f) f[i] = v;
        d[i] = v;  /* double copy of the very same float value */
    }
    free(u);
}

static double norm_err(const float *a, const double *n, long len, long *worst) {
    double num = 0, den = 0;
    *worst = 0;
    for (long i = 0; i < len; i++) {
        double e = fabs((double)a[i] - n[i]);
        if (!(e <= num)) num = e, *worst = i;
        if (fabs(n[i]) > den) den = fabs(n[i]);
    }
    return num / (den > 0 ? den : 1.0);
}

static void check(const char *what, const float *a, const double *n, long len, double tol) {
    long wi;
    double e = norm_err(a, n, len, &wi);
    printf("  %-34s n=%-5ld normalised err %.2e (worst [%ld]: %.8g vs %.8g)\n", what, len, e, wi, (double)a[wi],
           n[wi]);
    if (!(e <= tol)) fail_msg("%s: normalised error %.3e above %.1e", what, e, tol);
}

/* Central differences of loss(ctx) w.r.t. every element of v (length n). */
typedef double (*loss_fn)(void *ctx);
static void fd(double *v, long n, loss_fn loss, void *ctx, double *out) {
    for (long i = 0; i < n; i++) {
        const double keep = v[i];
        v[i] = keep + FD_H;
        const double lp = loss(ctx);
        v[i] = keep - FD_H;
        const double lm = loss(ctx);
        v[i] = keep;
        out[i] = (lp - lm) / (2 * FD_H);
    }
}

/* ---- conv2d ------------------------------------------------------------------------------ */

typedef struct {
    int B, H, W, Cin, Cout, K, S, P, Ho, Wo;
    double *inp, *w, *b, *R, *out;
} conv_case;

/* Naive NHWC convolution with PyTorch weight layout [Cout][Cin][K][K]. */
static void conv_ref(conv_case *c) {
    for (int n = 0; n < c->B; n++)
        for (int oh = 0; oh < c->Ho; oh++)
            for (int ow = 0; ow < c->Wo; ow++)
                for (int co = 0; co < c->Cout; co++) {
                    double s = c->b[co];
                    for (int ci = 0; ci < c->Cin; ci++)
                        for (int kh = 0; kh < c->K; kh++)
                            for (int kw = 0; kw < c->K; kw++) {
                                int ih = oh * c->S - c->P + kh, iw = ow * c->S - c->P + kw;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                s += c->inp[((n * c->H + ih) * c->W + iw) * c->Cin + ci] *
                                     c->w[((co * c->Cin + ci) * c->K + kh) * c->K + kw];
                            }
                    c->out[((n * c->Ho + oh) * c->Wo + ow) * c->Cout + co] = s;
                }
}

static double conv_loss(void *ctx) {
    conv_case *c = ctx;
    conv_ref(c);
    double L = 0;
    for (long i = 0; i < (long)c->B * c->Ho * c->Wo * c->Cout; i++) L += c->out[i] * c->R[i];
    return L;
}

static void run_conv_case(int B, int H, int W, int Cin, int Cout, int K, int S, int P) {
    conv_case c = {B, H, W, Cin, Cout, K, S, P, conv_out_size(H, K, S, P), conv_out_size(W, K, S, P), 0, 0, 0, 0, 0};
    printf("conv2d B=%d %dx%dx%d -> %d, K=%d S=%d P=%d (out %dx%d)\n", B, H, W, Cin, Cout, K, S, P, c.Ho, c.Wo);
    const long ni = (long)B * H * W * Cin, nw = (long)Cout * Cin * K * K, no = (long)B * c.Ho * c.Wo * Cout;
    c.inp = malloc(sizeof(double) * ni), c.w = malloc(sizeof(double) * nw), c.b = malloc(sizeof(double) * Cout);
    c.R = malloc(sizeof(double) * no), c.out = malloc(sizeof(double) * no);
    float *inp = malloc(sizeof(float) * ni), *w = malloc(sizeof(float) * nw), *b = malloc(sizeof(float) * Cout);
    float *R = malloc(sizeof(float) * no);
    rand_fill(c.inp, inp, ni, -1, 1, 1);
    rand_fill(c.w, w, nw, -0.5, 0.5, 2);
    rand_fill(c.b, b, Cout, -0.5, 0.5, 3);
    rand_fill(c.R, R, no, -1, 1, 4);

    double *ndi = malloc(sizeof(double) * ni), *ndw = malloc(sizeof(double) * nw), *ndb = malloc(sizeof(double) * Cout);
    fd(c.inp, ni, conv_loss, &c, ndi);
    fd(c.w, nw, conv_loss, &c, ndw);
    fd(c.b, Cout, conv_loss, &c, ndb);
    conv_ref(&c);
    /* Both weight layouts: PyTorch's (im2col + sgemm) and hwc (direct or sgemm, by shape). */
    for (int hwc = 0; hwc < 2; hwc++) {
        printf(" %s weights\n", hwc ? "hwc (Cout,K,K,Cin)" : "torch (Cout,Cin,K,K)");
        float *cols = malloc(sizeof(float) * (size_t)conv2d_workspace(B, c.Ho, c.Wo, Cin, K));
        float *out = malloc(sizeof(float) * no), *wl = malloc(sizeof(float) * nw);
        float *dinp = malloc(sizeof(float) * ni), *dwl = calloc(nw, sizeof(float)), *dw = calloc(nw, sizeof(float));
        float *db = calloc(Cout, sizeof(float));
        if (hwc) conv2d_weight_to_hwc(wl, w, Cout, Cin, K);
        else memcpy(wl, w, sizeof(float) * nw);
        (hwc ? conv2d_forward_hwc : conv2d_forward)(out, cols, inp, wl, b, B, H, W, Cin, Cout, K, S, P);
        check("forward vs double reference", out, c.out, no, TOL_FWD);
        (hwc ? conv2d_backward_hwc : conv2d_backward)(dinp, dwl, db, cols, R, inp, wl, B, H, W, Cin, Cout, K, S, P, !hwc);
        if (hwc) conv2d_grad_from_hwc_add(dw, dwl, Cout, Cin, K);  /* dw += dwl, back in torch layout */
        else memcpy(dw, dwl, sizeof(float) * nw);
        check("dinp vs central differences", dinp, ndi, ni, TOL_GRAD);
        check("dw vs central differences", dw, ndw, nw, TOL_GRAD);
        check("db vs central differences", db, ndb, Cout, TOL_GRAD);

        /* Second call, cols recomputed from inp: dw, db double (+=), dinp is rewritten (=). */
        double *two_dw = malloc(sizeof(double) * nw), *two_db = malloc(sizeof(double) * Cout), *ddi = malloc(sizeof(double) * ni);
        for (long i = 0; i < nw; i++) two_dw[i] = 2.0 * dwl[i];
        for (int i = 0; i < Cout; i++) two_db[i] = 2.0 * db[i];
        for (long i = 0; i < ni; i++) ddi[i] = dinp[i];
        (hwc ? conv2d_backward_hwc : conv2d_backward)(dinp, dwl, db, cols, R, inp, wl, B, H, W, Cin, Cout, K, S, P, 0);
        check("dw after 2 calls = 2x (+=)", dwl, two_dw, nw, 1e-6);
        check("db after 2 calls = 2x (+=)", db, two_db, Cout, 1e-6);
        check("dinp after 2 calls unchanged (=)", dinp, ddi, ni, 1e-6);
        /* NULL gradients are skipped, and dinp alone is still right. */
        float *dinp2 = malloc(sizeof(float) * ni);
        (hwc ? conv2d_backward_hwc : conv2d_backward)(dinp2, NULL, NULL, cols, R, inp, wl, B, H, W, Cin, Cout, K, S, P, 0);
        check("dinp alone (dw, db NULL)", dinp2, ndi, ni, TOL_GRAD);
        free(cols), free(out), free(wl), free(dinp), free(dwl), free(dw), free(db), free(two_dw), free(two_db), free(ddi), free(dinp2);
    }
    free(ndi), free(ndw), free(ndb);
    free(c.inp), free(c.w), free(c.b), free(c.R), free(c.out);
    free(inp), free(w), free(b), free(R);
}

static void test_conv2d_k5_s2_p4_like_first_layer(void **st) { (void)st; run_conv_case(2, 12, 12, 1, 3, 5, 2, 4); }
static void test_conv2d_k3_s2_p1(void **st) { (void)st; run_conv_case(2, 8, 8, 3, 4, 3, 2, 1); }
static void test_conv2d_k1_s1_p0(void **st) { (void)st; run_conv_case(2, 5, 4, 3, 5, 1, 1, 0); }
static void test_conv2d_non_square_k3_s1_p1(void **st) { (void)st; run_conv_case(1, 7, 5, 2, 3, 3, 1, 1); }
static void test_conv2d_non_square_k3_s2_p0_drops_edges(void **st) { (void)st; run_conv_case(2, 9, 6, 2, 3, 3, 2, 0); }
static void test_conv2d_stride_above_kernel_skips_pixels(void **st) { (void)st; run_conv_case(1, 7, 8, 2, 2, 2, 3, 1); }
/* 20 channels: a full and a partial block of 16; 5x4 = 20 pixels: a partial block of 8. */
static void test_conv2d_channel_and_pixel_tails(void **st) { (void)st; run_conv_case(2, 9, 7, 6, 20, 3, 2, 1); }
/* 2x2 outputs from a wide kernel input: the sgemm path of the hwc layout. */
static void test_conv2d_tiny_output_uses_gemm(void **st) { (void)st; run_conv_case(3, 4, 4, 8, 5, 3, 2, 1); }

/* ---- dense ---------------------------------------------------------------------------- */

typedef struct {
    int B, In, Out;
    double *inp, *w, *b, *R;
} dense_case;

static double dense_loss(void *ctx) {
    dense_case *c = ctx;
    double L = 0;
    for (int n = 0; n < c->B; n++)
        for (int o = 0; o < c->Out; o++) {
            double s = c->b[o];
            for (int i = 0; i < c->In; i++) s += c->inp[n * c->In + i] * c->w[o * c->In + i];
            L += s * c->R[n * c->Out + o];
        }
    return L;
}

static void run_dense_case(int B, int In, int Out) {
    printf("dense B=%d %d -> %d\n", B, In, Out);
    dense_case c = {B, In, Out, malloc(sizeof(double) * B * In), malloc(sizeof(double) * Out * In),
                    malloc(sizeof(double) * Out), malloc(sizeof(double) * B * Out)};
    float *inp = malloc(sizeof(float) * B * In), *w = malloc(sizeof(float) * Out * In), *b = malloc(sizeof(float) * Out);
    float *R = malloc(sizeof(float) * B * Out), *out = malloc(sizeof(float) * B * Out);
    rand_fill(c.inp, inp, (long)B * In, -1, 1, 11);
    rand_fill(c.w, w, (long)Out * In, -0.5, 0.5, 12);
    rand_fill(c.b, b, Out, -0.5, 0.5, 13);
    rand_fill(c.R, R, (long)B * Out, -1, 1, 14);
    dense_forward(out, inp, w, b, B, In, Out);
    double *ref = malloc(sizeof(double) * B * Out);
    for (int n = 0; n < B; n++)
        for (int o = 0; o < Out; o++) {
            double s = c.b[o];
            for (int i = 0; i < In; i++) s += c.inp[n * In + i] * c.w[o * In + i];
            ref[n * Out + o] = s;
        }
    check("forward vs double reference", out, ref, (long)B * Out, TOL_FWD);
    float *dinp = malloc(sizeof(float) * B * In), *dw = calloc((size_t)Out * In, sizeof(float)), *db = calloc(Out, sizeof(float));
    dense_backward(dinp, dw, db, R, inp, w, B, In, Out);
    double *ndi = malloc(sizeof(double) * B * In), *ndw = malloc(sizeof(double) * Out * In), *ndb = malloc(sizeof(double) * Out);
    fd(c.inp, (long)B * In, dense_loss, &c, ndi);
    fd(c.w, (long)Out * In, dense_loss, &c, ndw);
    fd(c.b, Out, dense_loss, &c, ndb);
    check("dinp vs central differences", dinp, ndi, (long)B * In, TOL_GRAD);
    check("dw vs central differences", dw, ndw, (long)Out * In, TOL_GRAD);
    check("db vs central differences", db, ndb, Out, TOL_GRAD);
    for (long i = 0; i < (long)Out * In; i++) ndw[i] = 2.0 * dw[i];
    for (int i = 0; i < Out; i++) ndb[i] = 2.0 * db[i];
    for (long i = 0; i < (long)B * In; i++) ndi[i] = dinp[i];
    dense_backward(dinp, dw, db, R, inp, w, B, In, Out);
    check("dw after 2 calls = 2x (+=)", dw, ndw, (long)Out * In, 1e-6);
    check("db after 2 calls = 2x (+=)", db, ndb, Out, 1e-6);
    check("dinp after 2 calls unchanged (=)", dinp, ndi, (long)B * In, 1e-6);
    free(c.inp), free(c.w), free(c.b), free(c.R), free(inp), free(w), free(b), free(R), free(out), free(ref);
    free(dinp), free(dw), free(db), free(ndi), free(ndw), free(ndb);
}

static void test_dense(void **st) { (void)st; run_dense_case(3, 7, 5); }
static void test_dense_single_output(void **st) { (void)st; run_dense_case(4, 9, 1); }

/* ---- element-wise and flatten --------------------------------------------------------- */

typedef struct {
    long n;
    double *x, *R;
    double (*f)(double);
} ew_case;

static double swish_d(double x) { return x / (1.0 + exp(-x)); }
static double lrelu_d(double x) { return x > 0 ? x : 0.2 * x; }
static double ew_loss(void *ctx) {
    ew_case *c = ctx;
    double L = 0;
    for (long i = 0; i < c->n; i++) L += c->f(c->x[i]) * c->R[i];
    return L;
}

static void run_ew(const char *name, ew_case *c, float *x, float *R,
                   void (*fwd)(float *, const float *, long), void (*bwd)(float *, const float *, const float *, long)) {
    printf("%s n=%ld\n", name, c->n);
    float *out = malloc(sizeof(float) * c->n), *dinp = malloc(sizeof(float) * c->n);
    double *ref = malloc(sizeof(double) * c->n), *nd = malloc(sizeof(double) * c->n);
    fwd(out, x, c->n);
    for (long i = 0; i < c->n; i++) ref[i] = c->f(c->x[i]);
    check("forward vs double reference", out, ref, c->n, TOL_FWD);
    bwd(dinp, R, x, c->n);
    fd(c->x, c->n, ew_loss, c, nd);
    check("dinp vs central differences", dinp, nd, c->n, TOL_GRAD);
    free(out), free(dinp), free(ref), free(nd);
}

static void lrelu_fwd(float *o, const float *x, long n) { leakyrelu_forward(o, x, n, 0.2f); }
static void lrelu_bwd(float *d, const float *g, const float *x, long n) { leakyrelu_backward(d, g, x, n, 0.2f); }

static void test_swish_over_wide_range(void **st) {
    (void)st;
    enum { N = 400 };
    double xd[N], Rd[N];
    float x[N], R[N];
    rand_fill(xd, x, N, -12, 12, 21);
    rand_fill(Rd, R, N, -1, 1, 22);
    ew_case c = {N, xd, Rd, swish_d};
    run_ew("swish", &c, x, R, swish_forward, swish_backward);
    /* Saturation: far tails must be finite (x and 0), not NaN. */
    float big[4] = {-200.f, -90.f, 90.f, 200.f}, ob[4], gb[4], ones[4] = {1, 1, 1, 1};
    swish_forward(ob, big, 4);
    swish_backward(gb, ones, big, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(isfinite(ob[i]) && isfinite(gb[i]));
        assert_true(fabsf(ob[i] - (big[i] > 0 ? big[i] : 0.f)) < 1e-6f * fabsf(big[i]));
    }
}

/* swish_forward_grad + mul_backward (Langevin's path) give what swish_forward/backward give. */
static void test_swish_cached_derivative_matches(void **st) {
    (void)st;
    enum { N = 300 };
    double xd[N], Rd[N];
    float x[N], R[N], o1[N], o2[N], g1[N], g2[N], dact[N];
    rand_fill(xd, x, N, -10, 10, 23);
    rand_fill(Rd, R, N, -1, 1, 24);
    swish_forward(o1, x, N);
    swish_backward(g1, R, x, N);
    memcpy(dact, x, sizeof x);
    swish_forward_grad(o2, dact, dact, N);  /* in place over the input, as net.c calls it */
    mul_backward(g2, R, dact, N);
    for (int i = 0; i < N; i++) {
        assert_true(fabsf(o1[i] - o2[i]) <= 1e-6f * (1.0f + fabsf(o1[i])));
        assert_true(fabsf(g1[i] - g2[i]) <= 1e-6f * (1.0f + fabsf(g1[i])));
    }
}

static void test_lrelu_away_from_kink(void **st) {
    (void)st;
    enum { N = 200 };
    double xd[N], Rd[N];
    float x[N], R[N];
    rand_fill(xd, x, N, -3, 3, 31);
    for (int i = 0; i < N; i++)  /* keep |x| >= 0.05 so that x +- h never crosses 0 */
        if (fabs(xd[i]) < 0.05) xd[i] = x[i] = (xd[i] < 0 ? -0.05f : 0.05f);
    rand_fill(Rd, R, N, -1, 1, 32);
    ew_case c = {N, xd, Rd, lrelu_d};
    run_ew("lrelu(0.2)", &c, x, R, lrelu_fwd, lrelu_bwd);
}

typedef struct {
    int B, H, W, C;
    double *x, *R;
} flat_case;

static double flat_loss(void *ctx) {
    flat_case *c = ctx;
    double L = 0;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->H; h++)
            for (int w = 0; w < c->W; w++)
                for (int ch = 0; ch < c->C; ch++)
                    L += c->x[((b * c->H + h) * c->W + w) * c->C + ch] *
                         c->R[b * c->H * c->W * c->C + (ch * c->H + h) * c->W + w];
    return L;
}

static void test_flatten_is_torch_chw_order(void **st) {
    (void)st;
    enum { B = 2, H = 3, W = 4, C = 5, N = B * H * W * C };
    double xd[N], Rd[N], ref[N], nd[N];
    float x[N], R[N], out[N], dinp[N];
    rand_fill(xd, x, N, -1, 1, 41);
    rand_fill(Rd, R, N, -1, 1, 42);
    flatten_forward(out, x, B, H, W, C);
    for (int b = 0; b < B; b++)  /* torch: x.permute(0,3,1,2).reshape(B, -1) */
        for (int h = 0; h < H; h++)
            for (int w = 0; w < W; w++)
                for (int ch = 0; ch < C; ch++)
                    ref[b * H * W * C + (ch * H + h) * W + w] = xd[((b * H + h) * W + w) * C + ch];
    printf("flatten %dx%dx%dx%d\n", B, H, W, C);
    check("forward vs (C,H,W) order", out, ref, N, 0);
    flatten_backward(dinp, R, B, H, W, C);
    flat_case c = {B, H, W, C, xd, Rd};
    fd(xd, N, flat_loss, &c, nd);
    check("dinp vs central differences", dinp, nd, N, TOL_GRAD);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d_k5_s2_p4_like_first_layer),
        cmocka_unit_test(test_conv2d_k3_s2_p1),
        cmocka_unit_test(test_conv2d_k1_s1_p0),
        cmocka_unit_test(test_conv2d_non_square_k3_s1_p1),
        cmocka_unit_test(test_conv2d_non_square_k3_s2_p0_drops_edges),
        cmocka_unit_test(test_conv2d_stride_above_kernel_skips_pixels),
        cmocka_unit_test(test_conv2d_channel_and_pixel_tails),
        cmocka_unit_test(test_conv2d_tiny_output_uses_gemm),
        cmocka_unit_test(test_swish_cached_derivative_matches),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_dense_single_output),
        cmocka_unit_test(test_swish_over_wide_range),
        cmocka_unit_test(test_lrelu_away_from_kink),
        cmocka_unit_test(test_flatten_is_torch_chw_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
