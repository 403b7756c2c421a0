/* test_boxmuller.c - the polynomial log and sincos of boxmuller.h against double precision
 * over every input the normal stream can give them: u1 = k / 2^24 and the angle 2 pi m / 2^24
 * for k, m = 1 .. 2^24 (exhaustive; a sanitizer build, EBM_SANITIZED=1, takes every 7th).
 * Errors are in ulps of the float nearest the reference, printed with where the worst is.
 *
 * The sincos reference reduces exactly too (m mod 2^24 = q 2^22 + s, angle q pi/2 +
 * (pi/4) s/2^21, in double), so the zeros at multiples of pi/2 are exact zeros and every
 * other value keeps ~1e-16 relative accuracy; sin(2 pi m / 2^24) in double would not. */
#include "testutil.h"

#include "core/boxmuller.h"

#define MAX_ULP 2.0 /* the accuracy promised for each function */

/* The spacing of floats at |ref| (a normal float here): its double exponent, minus 23. */
static double ulp_of(double ref) {
    uint64_t b;
    memcpy(&b, &ref, sizeof b);
    b = (((b >> 52) & 0x7ff) - 23) << 52;
    double u;
    memcpy(&u, &b, sizeof u);
    return u;
}

/* |got - ref| in ulps of ref as a float; an exact-zero reference must be met exactly. */
static double ulp_err(float got, double ref) {
    if (ref == 0) return got == 0 ? 0 : INFINITY;
    return fabs((double)got - ref) / ulp_of(ref);
}

static uint32_t stride(void) { return getenv("EBM_SANITIZED") ? 7 : 1; }

static void ref_sincos(uint32_t m, double *s, double *c) {
    m &= 0xffffffu;
    const uint32_t q = ((m + 0x200000u) >> 22) & 3;
    const double x = (double)((int32_t)m - (int32_t)(((m + 0x200000u) >> 22) << 22)) * (M_PI / 4 / 2097152.0);
    double sx, cx;
    sincos(x, &sx, &cx);
    const double S[4] = {sx, cx, -sx, -cx}, C[4] = {cx, -sx, -cx, sx};
    *s = S[q], *c = C[q];
}

static void test_log_over_all_grid_values(void **state) {
    (void)state;
    double worst = 0, sum = 0, r_worst = 0;
    uint32_t at = 0, r_at = 0;
    long n = 0;
    const uint32_t step = stride();
    for (uint32_t k = 1; k <= 1u << 24; k += step) {
        const float u = (float)k * (1.0f / 16777216.0f);
        const double ref = log((double)u);
        const float got = bm_log(u);
        const double e = ulp_err(got, ref);
        if (!(e <= worst)) worst = e, at = k;
        sum += e, n++;
        /* what Box-Muller makes of it: r = sqrt(-2 ln u) */
        const double er = ulp_err(sqrtf(-2.0f * got), sqrt(-2.0 * ref));
        if (!(er <= r_worst)) r_worst = er, r_at = k;
    }
    const float u = (float)at * (1.0f / 16777216.0f);
    printf("  ln u1 over %ld grid values: worst %.3f ulp at u1 = %u/2^24 (%.9g: %.9g vs %.17g), mean %.4f ulp\n", n,
           worst, at, u, bm_log(u), log((double)u), sum / n);
    printf("  r = sqrt(-2 ln u1): worst %.3f ulp at u1 = %u/2^24\n", r_worst, r_at);
    if (!(worst <= MAX_ULP)) fail_msg("bm_log: %.3f ulp at u1 = %u / 2^24", worst, at);
    if (!(r_worst <= MAX_ULP)) fail_msg("sqrt(-2 bm_log): %.3f ulp at u1 = %u / 2^24", r_worst, r_at);
}

static void test_sincos_over_all_grid_values(void **state) {
    (void)state;
    double ws = 0, wc = 0, sum = 0;
    uint32_t as = 0, ac = 0;
    long n = 0;
    const uint32_t step = stride();
    for (uint32_t m = 1; m <= 1u << 24; m += step) {
        float s, c;
        double rs, rc;
        bm_sincos_turn24(m, &s, &c);
        ref_sincos(m, &rs, &rc);
        const double es = ulp_err(s, rs), ec = ulp_err(c, rc);
        if (!(es <= ws)) ws = es, as = m;
        if (!(ec <= wc)) wc = ec, ac = m;
        sum += es + ec, n += 2;
    }
    printf("  sin over %ld grid values: worst %.3f ulp at m = %u (angle 2 pi m / 2^24)\n", n / 2, ws, as);
    printf("  cos over %ld grid values: worst %.3f ulp at m = %u; mean of both %.4f ulp\n", n / 2, wc, ac, sum / n);
    if (!(ws <= MAX_ULP)) fail_msg("bm_sincos_turn24: sin %.3f ulp at m = %u", ws, as);
    if (!(wc <= MAX_ULP)) fail_msg("bm_sincos_turn24: cos %.3f ulp at m = %u", wc, ac);
    /* the exact zeros and ones of the quarter turns */
    const uint32_t quarters[] = {1u << 22, 2u << 22, 3u << 22, 4u << 22};
    const float want_s[] = {1, 0, -1, 0}, want_c[] = {0, -1, 0, 1};
    for (int i = 0; i < 4; i++) {
        float s, c;
        bm_sincos_turn24(quarters[i], &s, &c);
        if (s != want_s[i] || c != want_c[i])
            fail_msg("quarter turn %d: sin %.9g cos %.9g, want %g %g", i + 1, s, c, want_s[i], want_c[i]);
    }
}

/* The pair against the double-precision Box-Muller for 2^24 (u1, m) pairs: every u1 once,
 * with m a scrambled function of it.  Printed, and held to the sum of the parts' bounds
 * plus the two roundings (sqrt, the product). */
static void test_pair_against_double_box_muller(void **state) {
    (void)state;
    double worst = 0;
    uint32_t at1 = 0, at2 = 0;
    const uint32_t step = stride();
    for (uint32_t k = 0; k < 1u << 24; k += step) {
        const uint32_t w1 = k << 8, w2 = (k * 2654435761u) << 8;
        float z0, z1;
        bm_pair(w1, w2, &z0, &z1);
        double rs, rc;
        ref_sincos((w2 >> 8) + 1, &rs, &rc);
        const double r = sqrt(-2.0 * log((double)(k + 1) / 16777216.0));
        const double e = fmax(ulp_err(z0, r * rc), ulp_err(z1, r * rs));
        if (!(e <= worst)) worst = e, at1 = w1, at2 = w2;
    }
    printf("  bm_pair over 2^24 word pairs: worst %.3f ulp at words %08x %08x\n", worst, at1, at2);
    if (!(worst <= 2 * MAX_ULP)) fail_msg("bm_pair: %.3f ulp at words %08x %08x", worst, at1, at2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_over_all_grid_values),
        cmocka_unit_test(test_sincos_over_all_grid_values),
        cmocka_unit_test(test_pair_against_double_box_muller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
