/* test_langevin.c - ULA and MALA on energies with known answers (Gaussians, truncated and
 * not), the exact step arithmetic and RNG conventions, determinism across thread counts
 * and batch splits, snapshots, divergence and bad settings.
 *
 * Statistical tolerances: the chains are independent (own noise streams) and run long
 * enough to forget their start, so the final points are N independent draws; a mean is
 * allowed Z standard errors sqrt(var/N), a variance Z * sqrt(2/N) var (Gaussian fourth
 * moment; the truncated Gaussian's is smaller, so this is conservative), a covariance
 * Z * sqrt((S_ij^2 + S_ii S_jj) / N).  ULA's own O(eps) bias is added where it applies. */
#include "testutil.h"

#include <omp.h>

#include "core/common.h"
#include "core/rng.h"
#include "sample/chain.h"
#include "sample/langevin.h"

#define Z 4.5 /* standard errors allowed */

/* ---- test energies ----------------------------------------------------------------- */

/* E(x) = 0.5 (x-mu)^T P (x-mu) + a.x in up to 4 dimensions, with ways to misbehave. */
typedef struct {
    int dim;
    double mu[4], P[4][4], a[4];
    int threaded;         /* parallelise the callback itself over chains */
    int calls;            /* number of calls so far */
    int bad_call;         /* on this call (0 = the first), ... */
    int bad_chain;        /* ... poison this chain's ... */
    int bad_grad;         /* ... gradient (1) or energy (0) with ... */
    float bad_value;      /* ... this value */
    float lo, hi;         /* count points outside [lo, hi] */
    long outside;
} quad;

static ebm_status quad_energy(void *ctx, const float *x, int n, float *E, float *g) {
    quad *q = ctx;
    const int d = q->dim;
    long outside = 0;
#pragma omp parallel for if (q->threaded) schedule(static) reduction(+ : outside)
    for (int c = 0; c < n; c++) {
        const float *xc = x + (size_t)c * d;
        double diff[4], e = 0;
        for (int i = 0; i < d; i++) {
            diff[i] = (double)xc[i] - q->mu[i];
            outside += !(xc[i] >= q->lo && xc[i] <= q->hi);
        }
        for (int i = 0; i < d; i++) {
            double pi = 0;
            for (int j = 0; j < d; j++) pi += q->P[i][j] * diff[j];
            g[(size_t)c * d + i] = (float)(pi + q->a[i]);
            e += 0.5 * diff[i] * pi + q->a[i] * xc[i];
        }
        E[c] = (float)e;
    }
    q->outside += outside;
    if (q->calls == q->bad_call) {
        if (q->bad_grad) g[(size_t)q->bad_chain * d + d - 1] = q->bad_value;
        else E[q->bad_chain] = q->bad_value;
    }
    q->calls++;
    return EBM_STATUS_OK;
}

static quad quad_make(int dim) {
    EBM_ASSERT(dim >= 1 && dim <= 4);
    quad q;
    memset(&q, 0, sizeof q);
    q.dim = dim;
    q.bad_call = -1;
    q.lo = -INFINITY;
    q.hi = INFINITY;
    return q;
}

/* The 3-D Gaussian of the statistics tests: eigenvalues of P 0.39, 1.38, 2.33. */
static quad gauss3(void) {
    quad q = quad_make(3);
    const double P[3][3] = {{2.0, 0.6, 0.3}, {0.6, 1.2, -0.4}, {0.3, -0.4, 0.9}}, mu[3] = {0.5, -1.0, 2.0};
    for (int i = 0; i < 3; i++) {
        q.mu[i] = mu[i];
        for (int j = 0; j < 3; j++) q.P[i][j] = P[i][j];
    }
    return q;
}

/* 1-D Gaussian with mean mu and precision p. */
static quad gauss1(double mu, double p) {
    quad q = quad_make(1);
    q.mu[0] = mu;
    q.P[0][0] = p;
    return q;
}

static void inverse3(const double A[4][4], double inv[3][3]) {
    double det = A[0][0] * (A[1][1] * A[2][2] - A[1][2] * A[2][1]) - A[0][1] * (A[1][0] * A[2][2] - A[1][2] * A[2][0]) +
                 A[0][2] * (A[1][0] * A[2][1] - A[1][1] * A[2][0]);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int r0 = (j + 1) % 3, r1 = (j + 2) % 3, c0 = (i + 1) % 3, c1 = (i + 2) % 3;
            inv[i][j] = (A[r0][c0] * A[r1][c1] - A[r0][c1] * A[r1][c0]) / det;
        }
}

static langevin_params params(int mala, float eps, uint64_t seed) {
    langevin_params p = {mala, eps, -1.0f, 0.0f, -INFINITY, INFINITY, seed, 0, 0};
    return p;
}

static float *filled(int n, float v) {
    float *x = malloc((size_t)n * sizeof *x);
    for (int i = 0; i < n; i++) x[i] = v;
    return x;
}

/* Mean (dim) and covariance (dim x dim) of n points. */
static void moments(const float *x, int n, int dim, double *mean, double cov[3][3]) {
    for (int i = 0; i < dim; i++) {
        double s = 0;
        for (int c = 0; c < n; c++) s += x[(size_t)c * dim + i];
        mean[i] = s / n;
    }
    for (int i = 0; i < dim; i++)
        for (int j = 0; j < dim; j++) {
            double s = 0;
            for (int c = 0; c < n; c++) s += (x[(size_t)c * dim + i] - mean[i]) * (x[(size_t)c * dim + j] - mean[j]);
            cov[i][j] = s / (n - 1);
        }
}

static void check_within(const char *what, double got, double want, double tol) {
    printf("  %-34s %9.5f  truth %9.5f  |diff| %.5f  tol %.5f\n", what, got, want, fabs(got - want), tol);
    if (!(fabs(got - want) <= tol)) fail_msg("%s = %.5f, expected %.5f +- %.5f", what, got, want, tol);
}

/* Runs n chains of the 1-D Gaussian from x0 and returns the mean and variance at the end. */
static void run_gauss1(quad *q, const langevin_params *p, int n, int steps, float x0, double *mean, double *var,
                       double *acc) {
    float *x = filled(n, x0);
    langevin_stats st;
    ebm_status s = langevin_run(quad_energy, q, x, n, 1, steps, p, &st, NULL, NULL, 0);
    if (s != EBM_STATUS_OK) fail_msg("langevin_run: %s: %s", ebm_status_name(s), ebm_last_error());
    double m[3], cov[3][3];
    moments(x, n, 1, m, cov);
    *mean = m[0];
    *var = cov[0][0];
    if (acc) *acc = (double)st.accepted / st.proposed;
    free(x);
}

/* ---- statistics -------------------------------------------------------------------- */

static void test_ula_small_eps_reproduces_3d_gaussian_mean_and_covariance(void **state) {
    (void)state;
    quad q = gauss3();
    double S[3][3];
    inverse3(q.P, S);
    /* ULA's stationary covariance solves S_eps = A S_eps A + 2 eps I with A = I - eps P;
     * S_eps - S ~ eps/2 I is the known discretisation bias, allowed on top of the MC error. */
    const float eps = 0.02f;
    double Se[3][3] = {{0}}, A[3][3], T[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) A[i][j] = (i == j) - (double)eps * q.P[i][j];
    for (int it = 0; it < 20000; it++) {
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                T[i][j] = 0;
                for (int k = 0; k < 3; k++) T[i][j] += A[i][k] * Se[k][j];
            }
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                Se[i][j] = 2.0 * eps * (i == j);
                for (int k = 0; k < 3; k++) Se[i][j] += T[i][k] * A[k][j];
            }
    }
    /* Slowest mode relaxes as exp(-eps 0.39 t): 1000 steps leave e^-7.8 of the start. */
    const int n = 4000, steps = 1000;
    float *x = filled(n * 3, 0.0f);
    langevin_params p = params(0, eps, 2024);
    langevin_stats st;
    assert_int_equal(langevin_run(quad_energy, &q, x, n, 3, steps, &p, &st, NULL, NULL, 0), EBM_STATUS_OK);
    assert_true(st.proposed == (long)n * steps && st.accepted == st.proposed);
    double mean[3], cov[3][3];
    moments(x, n, 3, mean, cov);
    char what[64];
    for (int i = 0; i < 3; i++) {
        snprintf(what, sizeof what, "ULA eps=0.02 mean[%d]", i);
        check_within(what, mean[i], q.mu[i], Z * sqrt(Se[i][i] / n));
    }
    for (int i = 0; i < 3; i++)
        for (int j = i; j < 3; j++) {
            snprintf(what, sizeof what, "ULA eps=0.02 cov[%d][%d]", i, j);
            double se = sqrt((Se[i][j] * Se[i][j] + Se[i][i] * Se[j][j]) / n);
            check_within(what, cov[i][j], S[i][j], Z * se + fabs(Se[i][j] - S[i][j]));
        }
    free(x);
}

static void test_large_eps_ula_is_biased_as_predicted_and_mala_is_exact(void **state) {
    (void)state;
    /* 1-D, precision p = 2, eps = 0.4 (eps p = 0.8).  ULA: x' = (1 - eps p) x + sqrt(2 eps) xi
     * has stationary variance v = 2 eps / (1 - (1 - eps p)^2) = 1 / (p (1 - eps p / 2)). */
    const double pr = 2.0, mu = 0.3;
    const float eps = 0.4f;
    const int n = 40000;
    quad q = gauss1(mu, pr);
    double m, v, acc;
    langevin_params p = params(0, eps, 7);
    run_gauss1(&q, &p, n, 30, -2.0f, &m, &v, NULL); /* contraction 0.2 per step */
    const double v_ula = 1.0 / (pr * (1.0 - eps * pr / 2.0)), v_true = 1.0 / pr;
    check_within("ULA eps*p=0.8 mean", m, mu, Z * sqrt(v_ula / n));
    check_within("ULA eps*p=0.8 var vs 1/(p(1-eps p/2))", v, v_ula, Z * sqrt(2.0 / n) * v_ula);
    if (!(fabs(v - v_true) > 10 * sqrt(2.0 / n) * v_true)) fail_msg("ULA at large eps should be visibly biased");

    p.mala = 1;
    run_gauss1(&q, &p, n, 60, -2.0f, &m, &v, &acc); /* mixed after ~10 steps */
    printf("  MALA eps*p=0.8 acceptance %.4f\n", acc);
    check_within("MALA eps*p=0.8 mean", m, mu, Z * sqrt(v_true / n));
    check_within("MALA eps*p=0.8 var vs 1/p", v, v_true, Z * sqrt(2.0 / n) * v_true);
}

static void test_mala_with_clipped_gradient_stays_exact(void **state) {
    (void)state;
    /* Clipping changes the proposal; the MH ratio must use the clipped drift both ways.
     * Unit Gaussian, clip 0.3: most points have |grad| > 0.3. */
    const int n = 40000;
    quad q = gauss1(0.0, 1.0);
    langevin_params p = params(1, 0.5f, 99);
    p.grad_clip = 0.3f;
    double m, v, acc;
    run_gauss1(&q, &p, n, 80, 1.0f, &m, &v, &acc); /* mixed after ~20 steps */
    printf("  MALA clip 0.3 acceptance %.4f\n", acc);
    check_within("MALA clip=0.3 mean", m, 0.0, Z * sqrt(1.0 / n));
    check_within("MALA clip=0.3 var vs 1", v, 1.0, Z * sqrt(2.0 / n));
}

static void test_mala_acceptance_is_in_0_1_and_falls_with_eps(void **state) {
    (void)state;
    const float eps[] = {0.05f, 0.2f, 0.5f, 1.0f};
    const int n = 1000, steps = 100;
    double prev = 1.0;
    for (int k = 0; k < 4; k++) {
        quad q = gauss3();
        float *x = filled(n * 3, 0.0f);
        langevin_params p = params(1, eps[k], 5);
        langevin_stats st;
        assert_int_equal(langevin_run(quad_energy, &q, x, n, 3, steps, &p, &st, NULL, NULL, 0), EBM_STATUS_OK);
        assert_true(st.proposed == (long)n * steps);
        double acc = (double)st.accepted / st.proposed;
        printf("  MALA 3-D eps %.2f: acceptance %.4f (%ld of %ld)\n", eps[k], acc, st.accepted, st.proposed);
        assert_true(acc > 0 && acc < 1);
        /* an acceptance rate over n*steps = 1e5 proposals has se ~ 0.002; the gaps are > 0.07 */
        assert_true(acc < prev - 0.01);
        prev = acc;
        free(x);
    }
}

static double norm_pdf(double z) { return exp(-0.5 * z * z) / sqrt(2 * M_PI); }
static double norm_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

static void test_mala_with_bounds_samples_the_truncated_gaussian(void **state) {
    (void)state;
    /* N(0.6, 0.5^2) restricted to [-1, 1]: about 21% of its mass lies above 1. */
    const double mu = 0.6, s = 0.5, lo = -1, hi = 1;
    const double al = (lo - mu) / s, be = (hi - mu) / s, Zn = norm_cdf(be) - norm_cdf(al);
    const double r = (norm_pdf(al) - norm_pdf(be)) / Zn;
    const double t_mean = mu + s * r, t_var = s * s * (1 + (al * norm_pdf(al) - be * norm_pdf(be)) / Zn - r * r);
    const int n = 20000;
    quad q = gauss1(mu, 1 / (s * s));
    q.lo = (float)lo;
    q.hi = (float)hi;
    langevin_params p = params(1, 0.05f, 31);
    p.lo = (float)lo;
    p.hi = (float)hi;
    double m, v, acc;
    run_gauss1(&q, &p, n, 100, -0.9f, &m, &v, &acc); /* mixed after ~20 steps */
    printf("  MALA truncated: acceptance %.4f\n", acc);
    check_within("MALA [-1,1] truncated mean", m, t_mean, Z * sqrt(t_var / n));
    check_within("MALA [-1,1] truncated var", v, t_var, Z * sqrt(2.0 / n) * t_var);
    assert_int_equal(q.outside, 0); /* proposals outside the range are never evaluated */
}

/* ---- exact arithmetic and RNG conventions ------------------------------------------ */

static void test_ula_step_clips_gradient_elementwise_and_clamps(void **state) {
    (void)state;
    quad q = quad_make(2);
    q.P[0][0] = q.P[1][1] = 1.0;
    langevin_params p = params(0, 0.1f, 1);
    p.sigma = 0; /* no noise: a plain gradient step */
    float x[2] = {10.0f, 0.2f};
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 2, 1, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_true(x[0] == 10.0f - 0.1f * 10.0f && x[1] == 0.2f - 0.1f * 0.2f);

    p.grad_clip = 0.5f; /* first element clipped, second not */
    x[0] = 10.0f; x[1] = 0.2f;
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 2, 1, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_true(x[0] == 10.0f - 0.1f * 0.5f && x[1] == 0.2f - 0.1f * 0.2f);
    x[0] = -10.0f;
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 2, 1, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_true(x[0] == -10.0f + 0.1f * 0.5f);

    p.grad_clip = 0; /* clamp to [lo, hi] */
    p.lo = -1.0f; p.hi = 9.5f;
    x[0] = 20.0f; x[1] = -0.95f;
    q.mu[1] = 5.0; /* pulls x[1] up: -0.95 + 0.1 * 5.95 */
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 2, 1, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_true(x[0] == 9.5f);
    q.mu[1] = -50.0; /* pulls x[1] below lo */
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 2, 1, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_true(x[1] == -1.0f);
}

static void test_ula_noise_is_sqrt_2eps_times_rng_normal_fill_of_chain_and_step(void **state) {
    (void)state;
    quad q = quad_make(4); /* flat energy: the step is pure noise */
    const int n = 3, dim = 4, steps = 4;
    langevin_params p = params(0, 0.02f, 77);
    p.chain0 = 10;
    p.step0 = 1000;
    float x[12] = {0}, want[12] = {0}, xi[4];
    assert_int_equal(langevin_run(quad_energy, &q, x, n, dim, steps, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    const float sigma = sqrtf(2.0f * 0.02f);
    assert_true(langevin_sigma(&p) == sigma);
    for (int t = 0; t < steps; t++)
        for (int c = 0; c < n; c++) {
            rng_normal_fill(77, RNG_STREAM_NOISE, 10 + (uint32_t)c, 1000 + (uint32_t)t, xi, dim);
            for (int j = 0; j < dim; j++) want[c * dim + j] += sigma * xi[j]; /* x - eps * 0 + sigma xi */
        }
    assert_memory_equal(x, want, sizeof x);
    p.sigma = 0.25f;
    assert_true(langevin_sigma(&p) == 0.25f);
}

static void test_mala_accepts_with_the_documented_ratio_and_uniform(void **state) {
    (void)state;
    /* Linear energy E = a.x, decoupled sigma: log ratio = (2 eps / sigma^2 - 1) a.(y - x),
     * so about half the proposals are refused and each decision can be predicted. */
    quad q = quad_make(2);
    q.a[0] = 0.7; q.a[1] = -0.3;
    const int n = 400;
    const float eps = 0.1f, sigma = 0.3f;
    langevin_params p = params(1, eps, 4242);
    p.sigma = sigma;
    p.chain0 = 5;
    p.step0 = 9;
    float *x = filled(n * 2, 0.25f);
    langevin_stats st;
    assert_int_equal(langevin_run(quad_energy, &q, x, n, 2, 1, &p, &st, NULL, NULL, 0), EBM_STATUS_OK);
    long want_acc = 0;
    for (int c = 0; c < n; c++) {
        float xi[2], y[2];
        rng_normal_fill(4242, RNG_STREAM_NOISE, 5 + (uint32_t)c, 9, xi, 2);
        double dot = 0;
        for (int j = 0; j < 2; j++) {
            y[j] = 0.25f - eps * (float)q.a[j] + sigma * xi[j];
            dot += q.a[j] * ((double)y[j] - 0.25);
        }
        double log_ratio = (2.0 * eps / ((double)sigma * sigma) - 1.0) * dot;
        double u = rng_uniform_at(4242, RNG_STREAM_ACCEPT, 5 + (uint32_t)c, 9, 0);
        int acc = log(u) < log_ratio;
        want_acc += acc;
        const float *xc = x + 2 * c;
        if (acc ? (xc[0] != y[0] || xc[1] != y[1]) : (xc[0] != 0.25f || xc[1] != 0.25f))
            fail_msg("chain %d: %s expected (log u %.4f, log ratio %.4f), got (%g, %g)", c, acc ? "accept" : "reject",
                     log(u), log_ratio, xc[0], xc[1]);
    }
    printf("  accepted %ld of %d, as predicted\n", st.accepted, n);
    assert_true(st.accepted == want_acc && st.proposed == n);
    assert_true(want_acc > n / 10 && want_acc < n - n / 10);
    free(x);
}

static void test_energy_is_called_once_per_step(void **state) {
    (void)state;
    quad q = gauss3();
    float x[30] = {0};
    langevin_params p = params(0, 0.1f, 1);
    assert_int_equal(langevin_run(quad_energy, &q, x, 10, 3, 7, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_int_equal(q.calls, 7); /* ULA without stats: no evaluation after the last step */
    q.calls = 0;
    langevin_stats st;
    assert_int_equal(langevin_run(quad_energy, &q, x, 10, 3, 7, &p, &st, NULL, NULL, 0), EBM_STATUS_OK);
    assert_int_equal(q.calls, 8);
    float E[10], g[30];
    quad_energy(&q, x, 10, E, g);
    double mean = 0;
    for (int c = 0; c < 10; c++) mean += E[c] / 10.0;
    assert_true(fabs(st.mean_energy - mean) < 1e-5 * (1 + fabs(mean)));
    q.calls = 0;
    p.mala = 1;
    assert_int_equal(langevin_run(quad_energy, &q, x, 10, 3, 7, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_int_equal(q.calls, 8);
    q.calls = 0;
    assert_int_equal(langevin_run(quad_energy, &q, x, 10, 3, 0, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_true(q.calls <= 1);
}

/* ---- determinism ------------------------------------------------------------------- */

enum { DN = 64, DD = 3, DSTEPS = 40 };

static void run_det(int mala, int threaded, int threads, uint32_t chain0, int n, int steps, uint32_t step0,
                    float *x, langevin_stats *st) {
    quad q = gauss3();
    q.threaded = threaded;
    langevin_params p = params(mala, 0.3f, 123);
    p.lo = -1.5f; p.hi = 2.5f; /* exercise clamping and out-of-range rejections */
    p.grad_clip = 1.0f;
    p.chain0 = chain0;
    p.step0 = step0;
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    ebm_status s = langevin_run(quad_energy, &q, x, n, DD, steps, &p, st, NULL, NULL, 0);
    omp_set_num_threads(before);
    if (s != EBM_STATUS_OK) fail_msg("%s: %s", ebm_status_name(s), ebm_last_error());
}

static void start_points(float *x) {
    rng_uniform_fill(1, RNG_STREAM_START, 0, 0, x, DN * DD);
    for (int i = 0; i < DN * DD; i++) x[i] = -1.0f + 2.0f * x[i];
}

static void test_same_seed_gives_bit_identical_chains(void **state) {
    (void)state;
    for (int mala = 0; mala <= 1; mala++) {
        float a[DN * DD], b[DN * DD];
        langevin_stats sa, sb;
        start_points(a);
        start_points(b);
        run_det(mala, 0, 2, 0, DN, DSTEPS, 0, a, &sa);
        run_det(mala, 0, 2, 0, DN, DSTEPS, 0, b, &sb);
        assert_memory_equal(a, b, sizeof a);
        assert_true(sa.accepted == sb.accepted && sa.mean_energy == sb.mean_energy);
        if (mala) printf("  MALA determinism run: acceptance %.3f\n", (double)sa.accepted / sa.proposed);
        start_points(b);
        quad q = gauss3();
        langevin_params p = params(mala, 0.3f, 124); /* another seed moves the chains */
        assert_int_equal(langevin_run(quad_energy, &q, b, DN, DD, DSTEPS, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
        assert_memory_not_equal(a, b, sizeof a);
    }
}

static void test_split_batches_and_resumed_runs_equal_one_run(void **state) {
    (void)state;
    for (int mala = 0; mala <= 1; mala++) {
        float whole[DN * DD], split[DN * DD], resumed[DN * DD];
        langevin_stats sw, s1, s2;
        start_points(whole);
        start_points(split);
        start_points(resumed);
        run_det(mala, 0, 2, 0, DN, DSTEPS, 0, whole, &sw);
        /* chains 0..23 and 24..63 as two calls */
        run_det(mala, 0, 2, 0, 24, DSTEPS, 0, split, &s1);
        run_det(mala, 0, 2, 24, DN - 24, DSTEPS, 0, split + 24 * DD, &s2);
        assert_memory_equal(whole, split, sizeof whole);
        assert_true(s1.accepted + s2.accepted == sw.accepted);
        /* 15 steps, then 25 more from step0 = 15 (a persistent chain picked up again) */
        run_det(mala, 0, 2, 0, DN, 15, 0, resumed, &s1);
        run_det(mala, 0, 2, 0, DN, DSTEPS - 15, 15, resumed, &s2);
        assert_memory_equal(whole, resumed, sizeof whole);
        assert_true(s1.accepted + s2.accepted == sw.accepted);
    }
}

static void test_chains_do_not_depend_on_thread_count(void **state) {
    (void)state;
    for (int mala = 0; mala <= 1; mala++) {
        float ref[DN * DD], x[DN * DD];
        start_points(ref);
        run_det(mala, 0, 1, 0, DN, DSTEPS, 0, ref, NULL);
        const int threads[] = {2, 3, 4};
        for (int k = 0; k < 3; k++)
            for (int threaded = 0; threaded <= 1; threaded++) {
                start_points(x);
                run_det(mala, threaded, threads[k], 0, DN, DSTEPS, 0, x, NULL);
                if (memcmp(x, ref, sizeof x))
                    fail_msg("%s with %d threads (threaded energy: %d) differs from 1 thread", mala ? "MALA" : "ULA",
                             threads[k], threaded);
            }
    }
}

/* ---- snapshots --------------------------------------------------------------------- */

typedef struct {
    int stop_at;
    int seen;
} stopper;

static ebm_status stop_snapshot(void *ud, int step, const float *x, const float *E, int n, int dim) {
    stopper *s = ud;
    s->seen = step;
    return step == s->stop_at ? ebm_fail(EBM_STATUS_INTERRUPTED, "stopped at step %d", step) : EBM_STATUS_OK;
}

static void test_snapshots_come_at_the_right_steps_with_the_right_points(void **state) {
    (void)state;
    const struct { int steps, every, nframes, frame_steps[6]; } cases[] = {
        {10, 3, 5, {0, 3, 6, 9, 10}}, {10, 5, 3, {0, 5, 10}}, {10, 0, 2, {0, 10}}, {0, 4, 1, {0}}, {3, 1, 4, {0, 1, 2, 3}}};
    enum { N = 8, D = 3 };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int steps = cases[k].steps, every = cases[k].every;
        assert_int_equal(chain_num_frames(steps, every), cases[k].nframes);
        for (int mala = 0; mala <= 1; mala++) {
            float frames[6 * N * D], energies[6 * N], x[N * D] = {0};
            int fsteps[6];
            chain_recorder r = chain_recorder_make(frames, energies, fsteps, cases[k].nframes, N, D);
            quad q = gauss3();
            langevin_params p = params(mala, 0.2f, 3);
            assert_int_equal(langevin_run(quad_energy, &q, x, N, D, steps, &p, NULL, chain_record, &r, every),
                             EBM_STATUS_OK);
            assert_int_equal(r.count, cases[k].nframes);
            for (int f = 0; f < r.count; f++) {
                assert_int_equal(fsteps[f], cases[k].frame_steps[f]);
                /* the frame is what a run of that many steps ends with, and E is its energy */
                float y[N * D] = {0}, E[N], g[N * D];
                assert_int_equal(langevin_run(quad_energy, &q, y, N, D, fsteps[f], &p, NULL, NULL, NULL, 0),
                                 EBM_STATUS_OK);
                assert_memory_equal(frames + (size_t)f * N * D, y, sizeof y);
                quad_energy(&q, y, N, E, g);
                assert_memory_equal(energies + (size_t)f * N, E, sizeof E);
            }
            assert_memory_equal(frames + (size_t)(r.count - 1) * N * D, x, sizeof x);
        }
    }
    /* A snapshot that refuses stops the run there, with its status and message. */
    float x[N * D] = {0}, y[N * D] = {0};
    quad q = gauss3();
    langevin_params p = params(1, 0.2f, 3);
    stopper s = {6, -1};
    assert_int_equal(langevin_run(quad_energy, &q, x, N, D, 20, &p, NULL, stop_snapshot, &s, 2), EBM_STATUS_INTERRUPTED);
    assert_int_equal(s.seen, 6);
    assert_string_equal(ebm_last_error(), "stopped at step 6");
    assert_int_equal(langevin_run(quad_energy, &q, y, N, D, 6, &p, NULL, NULL, NULL, 0), EBM_STATUS_OK);
    assert_memory_equal(x, y, sizeof x);
}

/* ---- failures ---------------------------------------------------------------------- */

static void expect_diverged(int mala, int bad_call, int bad_chain, int bad_grad, float value, const char *step_text,
                            const char *chain_text) {
    quad q = gauss3();
    q.bad_call = bad_call;
    q.bad_chain = bad_chain;
    q.bad_grad = bad_grad;
    q.bad_value = value;
    float x[16 * 3] = {0};
    langevin_params p = params(mala, 0.1f, 8);
    p.chain0 = 100;
    p.grad_clip = 0.5f; /* clipping must not hide a NaN gradient */
    ebm_status s = langevin_run(quad_energy, &q, x, 16, 3, 20, &p, NULL, NULL, NULL, 0);
    const char *msg = ebm_last_error();
    printf("  %s: %s\n", ebm_status_name(s), msg);
    assert_int_equal(s, EBM_STATUS_DIVERGED);
    if (!strstr(msg, step_text) || !strstr(msg, chain_text) || !strstr(msg, "lower --eps"))
        fail_msg("message lacks '%s', '%s' or the hint: %s", step_text, chain_text, msg);
    assert_int_equal(q.calls, bad_call + 1); /* stopped at once */
}

static void test_nan_or_inf_energy_or_gradient_stops_with_diverged(void **state) {
    (void)state;
    expect_diverged(0, 7, 5, 0, NAN, "step 7 of 20", "chain 105");
    expect_diverged(0, 0, 0, 0, INFINITY, "step 0 of 20", "chain 100");
    expect_diverged(0, 3, 15, 1, NAN, "step 3 of 20", "chain 115");
    expect_diverged(1, 4, 2, 0, NAN, "step 4 of 20", "chain 102");
    expect_diverged(1, 9, 11, 1, -INFINITY, "step 9 of 20", "chain 111");
}

static ebm_status failing_energy(void *ctx, const float *x, int n, float *E, float *g) {
    return ebm_fail(EBM_STATUS_NOMEM, "model: out of memory");
}

static void test_bad_settings_and_failing_energy_return_status(void **state) {
    (void)state;
    quad q = gauss3();
    float x[3] = {0};
    langevin_params p = params(0, -1.0f, 1);
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 3, 5, &p, NULL, NULL, NULL, 0), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--eps"));
    p = params(0, NAN, 1);
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 3, 5, &p, NULL, NULL, NULL, 0), EBM_STATUS_BAD_ARG);
    p = params(1, 0.1f, 1);
    p.sigma = 0;
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 3, 5, &p, NULL, NULL, NULL, 0), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "MALA"));
    p = params(0, 0.1f, 1);
    p.lo = 1; p.hi = -1;
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 3, 5, &p, NULL, NULL, NULL, 0), EBM_STATUS_BAD_ARG);
    p = params(0, 0.1f, 1);
    assert_int_equal(langevin_run(quad_energy, &q, x, 1, 3, -1, &p, NULL, NULL, NULL, 0), EBM_STATUS_BAD_ARG);
    assert_int_equal(langevin_run(quad_energy, &q, x, 0, 3, 5, &p, NULL, NULL, NULL, 0), EBM_STATUS_BAD_ARG);
    assert_int_equal(q.calls, 0);
    assert_int_equal(langevin_run(failing_energy, NULL, x, 1, 3, 5, &p, NULL, NULL, NULL, 0), EBM_STATUS_NOMEM);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "out of memory"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ula_small_eps_reproduces_3d_gaussian_mean_and_covariance),
        cmocka_unit_test(test_large_eps_ula_is_biased_as_predicted_and_mala_is_exact),
        cmocka_unit_test(test_mala_with_clipped_gradient_stays_exact),
        cmocka_unit_test(test_mala_acceptance_is_in_0_1_and_falls_with_eps),
        cmocka_unit_test(test_mala_with_bounds_samples_the_truncated_gaussian),
        cmocka_unit_test(test_ula_step_clips_gradient_elementwise_and_clamps),
        cmocka_unit_test(test_ula_noise_is_sqrt_2eps_times_rng_normal_fill_of_chain_and_step),
        cmocka_unit_test(test_mala_accepts_with_the_documented_ratio_and_uniform),
        cmocka_unit_test(test_energy_is_called_once_per_step),
        cmocka_unit_test(test_same_seed_gives_bit_identical_chains),
        cmocka_unit_test(test_split_batches_and_resumed_runs_equal_one_run),
        cmocka_unit_test(test_chains_do_not_depend_on_thread_count),
        cmocka_unit_test(test_snapshots_come_at_the_right_steps_with_the_right_points),
        cmocka_unit_test(test_nan_or_inf_energy_or_gradient_stops_with_diverged),
        cmocka_unit_test(test_bad_settings_and_failing_energy_return_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
