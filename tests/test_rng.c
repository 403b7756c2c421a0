/* test_rng.c - Philox4x32-10 against the Random123 known answers, and the statistics and
 * bookkeeping promises of rng.h.  Statistical tolerances are 4-5 standard errors of the
 * Monte-Carlo estimate (fixed seeds, so a pass is reproducible; a real bug moves the
 * estimate by far more). */
#include "testutil.h"

#include "core/boxmuller.h"
#include "core/rng.h"

#define Z 4.5 /* standard errors allowed */

static void check_kat(const uint32_t ctr[4], uint64_t key, const uint32_t want[4]) {
    uint32_t got[4];
    philox4x32(ctr, key, got);
    printf("  philox(%08x %08x %08x %08x, key %016llx) = %08x %08x %08x %08x\n", ctr[0], ctr[1], ctr[2], ctr[3],
           (unsigned long long)key, got[0], got[1], got[2], got[3]);
    for (int i = 0; i < 4; i++)
        if (got[i] != want[i]) fail_msg("word %d: got %08x, Random123 says %08x", i, got[i], want[i]);
}

static void test_philox_matches_random123_known_answers(void **state) {
    (void)state;
    const uint32_t c0[4] = {0, 0, 0, 0}, w0[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    check_kat(c0, 0, w0);
    const uint32_t c1[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
                   w1[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    check_kat(c1, 0xffffffffffffffffull, w1);
    /* key word 0 is the low half of the uint64 key */
    const uint32_t c2[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
                   w2[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    check_kat(c2, ((uint64_t)0x299f31d0 << 32) | 0xa4093822u, w2);
}

static double phi_cdf(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov distance of sorted v against cdf. */
static double ks_distance(float *v, int n, double (*cdf)(double)) {
    qsort(v, (size_t)n, sizeof *v, cmp_float);
    double d = 0;
    for (int i = 0; i < n; i++) {
        double F = cdf(v[i]);
        d = fmax(d, fmax(fabs(F - (double)i / n), fabs((double)(i + 1) / n - F)));
    }
    return d;
}

static void test_normals_have_mean0_var1_and_pass_ks(void **state) {
    (void)state;
    const int n = 1000000;
    float *v = malloc((size_t)n * sizeof *v);
    rng_normal_fill(42, RNG_STREAM_NOISE, 3, 7, v, n);
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
    for (int i = 0; i < n; i++) {
        double z = v[i];
        if (!isfinite(z)) fail_msg("normal %d is not finite", i);
        s1 += z; s2 += z * z; s3 += z * z * z; s4 += z * z * z * z;
    }
    double mean = s1 / n, var = s2 / n - mean * mean, skew = s3 / n, kurt = s4 / n;
    double d = ks_distance(v, n, phi_cdf);
    printf("  1e6 normals: mean %.5f (se %.4f)  var %.5f (se %.4f)  E z^3 %.4f (se %.4f)  E z^4 %.4f (se %.4f)"
           "  KS D*sqrt(n) %.3f\n",
           mean, 1 / sqrt(n), var, sqrt(2.0 / n), skew, sqrt(15.0 / n), kurt, sqrt(96.0 / n), d * sqrt(n));
    assert_true(fabs(mean) < Z / sqrt(n));
    assert_true(fabs(var - 1) < Z * sqrt(2.0 / n));
    assert_true(fabs(skew) < Z * sqrt(15.0 / n));      /* Var(z^3) = 15 */
    assert_true(fabs(kurt - 3) < Z * sqrt(96.0 / n));  /* Var(z^4) = 105 - 9 */
    assert_true(d * sqrt(n) < 1.95);                   /* KS critical value at p = 0.001 */
    free(v);
}

static void test_normals_of_neighbouring_chains_are_uncorrelated(void **state) {
    (void)state;
    const int n = 200000;
    float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b), *c = malloc((size_t)n * sizeof *c);
    rng_normal_fill(1, RNG_STREAM_NOISE, 0, 0, a, n);
    rng_normal_fill(1, RNG_STREAM_NOISE, 1, 0, b, n); /* next chain */
    rng_normal_fill(1, RNG_STREAM_NOISE, 0, 1, c, n); /* next step */
    double ab = 0, ac = 0, lag = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        ac += (double)a[i] * c[i];
        if (i) lag += (double)a[i] * a[i - 1];
    }
    ab /= n; ac /= n; lag /= n - 1;
    printf("  correlations: chain %.5f  step %.5f  lag-1 %.5f  (se %.5f)\n", ab, ac, lag, 1 / sqrt(n));
    assert_true(fabs(ab) < Z / sqrt(n));
    assert_true(fabs(ac) < Z / sqrt(n));
    assert_true(fabs(lag) < Z / sqrt(n));
    free(a); free(b); free(c);
}

/* rng_normal_fill runs 32 Philox blocks (128 normals) at a time in vector code and a tail
 * of up to 8 normals block by block: lengths on both sides of each boundary. */
static void test_fill_element_i_does_not_depend_on_n(void **state) {
    (void)state;
    enum { N = 100003 }; /* 781 chunks of 128 and a tail of 35 */
    float *full = malloc(sizeof(float) * N), *part = malloc(sizeof(float) * (N + 1));
    float *ufull = malloc(sizeof(float) * N), *upart = malloc(sizeof(float) * (N + 1));
    rng_normal_fill(9, RNG_STREAM_NOISE, 5, 11, full, N);
    rng_uniform_fill(9, RNG_STREAM_START, 5, 11, ufull, N);
    const int lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 64, 127, 128, 129, 136, 137, 784, 999, 1000, N - 1};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
        memset(part, 0xff, sizeof(float) * (N + 1));
        memset(upart, 0xff, sizeof(float) * (N + 1));
        rng_normal_fill(9, RNG_STREAM_NOISE, 5, 11, part, lens[k]);
        rng_uniform_fill(9, RNG_STREAM_START, 5, 11, upart, lens[k]);
        if (memcmp(part, full, (size_t)lens[k] * sizeof(float)))
            fail_msg("rng_normal_fill: first %d values differ from the first %d of a longer fill", lens[k], lens[k]);
        if (memcmp(upart, ufull, (size_t)lens[k] * sizeof(float)))
            fail_msg("rng_uniform_fill: first %d values differ from a longer fill", lens[k]);
        /* nothing written past n */
        uint32_t bits;
        memcpy(&bits, &part[lens[k]], sizeof bits);
        assert_int_equal(bits, 0xffffffffu);
    }
    free(full), free(part), free(ufull), free(upart);
}

/* The vector code against the definition, one Philox block at a time: block q's words
 * (w0, w1, w2, w3) give elements 4q .. 4q+3 as bm_pair(w0, w1) and bm_pair(w2, w3). */
static void test_normals_are_box_muller_of_each_philox_block(void **state) {
    (void)state;
    enum { N = 4131 }; /* 32 chunks, and a tail of 35 through the vector code */
    float got[N], want[N + 3];
    const uint64_t seeds[] = {0, 42, 0xfedcba9876543210ull};
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        rng_normal_fill(seeds[s], RNG_STREAM_NOISE, 3 + (uint32_t)s, 17, got, N);
        for (int q = 0; 4 * q < N; q++) {
            const uint32_t ctr[4] = {(uint32_t)q, 3 + (uint32_t)s, 17, RNG_STREAM_NOISE};
            uint32_t w[4];
            philox4x32(ctr, seeds[s], w);
            bm_pair(w[0], w[1], &want[4 * q], &want[4 * q + 1]);
            bm_pair(w[2], w[3], &want[4 * q + 2], &want[4 * q + 3]);
        }
        for (int i = 0; i < N; i++)
            if (memcmp(&got[i], &want[i], sizeof(float)))
                fail_msg("seed %zu element %d: %.9g, the block definition gives %.9g", s, i, got[i], want[i]);
    }
}

static void test_streams_chains_steps_and_seeds_give_different_numbers(void **state) {
    (void)state;
    float base[8], other[8];
    rng_normal_fill(1, RNG_STREAM_NOISE, 2, 3, base, 8);
    const struct { uint64_t seed; uint32_t stream, a, b; } v[] = {
        {2, RNG_STREAM_NOISE, 2, 3}, {1, RNG_STREAM_ACCEPT, 2, 3}, {1, RNG_STREAM_NOISE, 3, 3},
        {1, RNG_STREAM_NOISE, 2, 4}, {1ull << 32 | 1, RNG_STREAM_NOISE, 2, 3}};
    for (size_t k = 0; k < sizeof v / sizeof *v; k++) {
        rng_normal_fill(v[k].seed, v[k].stream, v[k].a, v[k].b, other, 8);
        if (!memcmp(base, other, sizeof base)) fail_msg("variant %zu repeats the base numbers", k);
    }
}

static double uniform_cdf(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }

static void test_uniforms_are_in_0_1_and_uniform(void **state) {
    (void)state;
    const int n = 400000;
    float *v = malloc((size_t)n * sizeof *v);
    rng_uniform_fill(7, RNG_STREAM_START, 0, 0, v, n);
    double s = 0;
    for (int i = 0; i < n; i++) {
        if (!(v[i] >= 0.0f && v[i] < 1.0f)) fail_msg("rng_uniform_fill[%d] = %.9g outside [0,1)", i, v[i]);
        s += v[i];
    }
    double d = ks_distance(v, n, uniform_cdf);
    printf("  uniform_fill: mean %.5f (se %.5f)  KS D*sqrt(n) %.3f\n", s / n, sqrt(1.0 / 12 / n), d * sqrt(n));
    assert_true(fabs(s / n - 0.5) < Z * sqrt(1.0 / 12 / n));
    assert_true(d * sqrt(n) < 1.95);

    /* rng_uniform_at: [0,1), 53-bit resolution, mean 1/2 */
    double sa = 0;
    int fine = 0;
    const int m = 100000;
    for (int i = 0; i < m; i++) {
        double u = rng_uniform_at(7, RNG_STREAM_ACCEPT, (uint32_t)i, 3, 0);
        if (!(u >= 0 && u < 1)) fail_msg("rng_uniform_at = %.17g outside [0,1)", u);
        sa += u;
        double scaled = u * 4294967296.0;
        fine += scaled != floor(scaled); /* bits below 2^-32 are used */
    }
    printf("  uniform_at: mean %.5f (se %.5f), %d of %d use more than 32 bits\n", sa / m, sqrt(1.0 / 12 / m), fine, m);
    assert_true(fabs(sa / m - 0.5) < Z * sqrt(1.0 / 12 / m));
    assert_true(fine > m * 0.99);
    assert_true(rng_uniform_at(7, RNG_STREAM_ACCEPT, 0, 3, 0) != rng_uniform_at(7, RNG_STREAM_ACCEPT, 0, 3, 1));

    /* sequential rng_uniform */
    ebm_rng r = rng_make(5, RNG_STREAM_DATA);
    double ss = 0;
    for (int i = 0; i < m; i++) {
        double u = rng_uniform(&r);
        if (!(u >= 0 && u < 1)) fail_msg("rng_uniform = %.17g outside [0,1)", u);
        ss += u;
    }
    printf("  rng_uniform: mean %.5f\n", ss / m);
    assert_true(fabs(ss / m - 0.5) < Z * sqrt(1.0 / 12 / m));
    free(v);
}

static void test_rng_below_is_in_range_and_unbiased(void **state) {
    (void)state;
    ebm_rng r = rng_make(11, RNG_STREAM_DATA);
    for (int i = 0; i < 100; i++) assert_int_equal(rng_below(&r, 1), 0);
    /* chi-square over 7 cells, 6 degrees of freedom: 22.46 is the p = 0.001 point */
    enum { K = 7 };
    const int n = 140000;
    long cnt[K] = {0};
    for (int i = 0; i < n; i++) {
        uint32_t v = rng_below(&r, K);
        if (v >= K) fail_msg("rng_below(7) = %u", v);
        cnt[v]++;
    }
    double chi2 = 0, e = (double)n / K;
    for (int k = 0; k < K; k++) chi2 += (cnt[k] - e) * (cnt[k] - e) / e;
    printf("  rng_below(7): chi2 = %.2f (6 dof, p=0.001 point 22.46)\n", chi2);
    assert_true(chi2 < 22.46);

    /* A bound where naive `u32 % n` is badly biased (2/3 of the values would be < n/2). */
    const uint32_t big = 3000000000u;
    double s = 0;
    const int m = 100000;
    for (int i = 0; i < m; i++) {
        uint32_t v = rng_below(&r, big);
        if (v >= big) fail_msg("rng_below(%u) = %u", big, v);
        s += v;
    }
    double mean = s / m / big, se = sqrt(1.0 / 12 / m);
    printf("  rng_below(3e9): mean/n %.5f (se %.5f; modulo bias would give 0.414)\n", mean, se);
    assert_true(fabs(mean - 0.5) < Z * se);
}

static void test_permutation_is_a_uniform_permutation(void **state) {
    (void)state;
    ebm_rng r = rng_make(3, RNG_STREAM_DATA);
    enum { N = 1000 };
    int perm[N], seen[N], other[N];
    rng_permutation(&r, perm, N);
    memset(seen, 0, sizeof seen);
    int fixed = 0;
    for (int i = 0; i < N; i++) {
        assert_true(perm[i] >= 0 && perm[i] < N);
        assert_int_equal(seen[perm[i]], 0);
        seen[perm[i]] = 1;
        fixed += perm[i] == i;
    }
    assert_true(fixed < 10); /* a random permutation has ~1 fixed point */
    rng_permutation(&r, other, N);
    assert_memory_not_equal(perm, other, sizeof perm);
    rng_permutation(&r, perm, 0);
    rng_permutation(&r, perm, 1);
    assert_int_equal(perm[0], 0);

    /* All 24 orders of 4 items equally likely: chi-square, 23 dof, p = 0.001 point 49.73. */
    const int m = 48000;
    long cnt[256] = {0};
    for (int i = 0; i < m; i++) {
        int p[4];
        rng_permutation(&r, p, 4);
        cnt[p[0] * 64 + p[1] * 16 + p[2] * 4 + p[3]]++;
    }
    double chi2 = 0, e = m / 24.0;
    int orders = 0;
    for (int k = 0; k < 256; k++)
        if (cnt[k]) { orders++; chi2 += (cnt[k] - e) * (cnt[k] - e) / e; }
    printf("  permutations of 4: %d orders seen, chi2 = %.2f (23 dof, p=0.001 point 49.73)\n", orders, chi2);
    assert_int_equal(orders, 24);
    assert_true(chi2 < 49.73);
}

static void test_sequential_rng_resumes_from_saved_state(void **state) {
    (void)state;
    ebm_rng r = rng_make(0x1234567890abcdefull, RNG_STREAM_DATA);
    for (int i = 0; i < 100; i++) rng_u32(&r);
    (void)rng_uniform(&r);
    (void)rng_below(&r, 1000);
    const uint64_t seed = r.seed, counter = r.counter;
    const uint32_t stream = r.stream;
    uint32_t first[50], again[50];
    for (int i = 0; i < 50; i++) first[i] = rng_u32(&r);
    ebm_rng s = rng_make(seed, stream); /* as a checkpoint loader would rebuild it */
    s.counter = counter;
    for (int i = 0; i < 50; i++) again[i] = rng_u32(&s);
    assert_memory_equal(first, again, sizeof first);
    assert_true(r.counter == s.counter);

    /* The counter's high word counts: crossing 2^32 does not repeat the start. */
    ebm_rng lo = rng_make(1, RNG_STREAM_DATA), hi = rng_make(1, RNG_STREAM_DATA);
    hi.counter = 1ull << 32;
    int same = 0;
    for (int i = 0; i < 16; i++) same += rng_u32(&lo) == rng_u32(&hi);
    assert_true(same < 2);
    /* A different stream of the same seed is a different sequence. */
    ebm_rng a = rng_make(1, RNG_STREAM_DATA), b = rng_make(1, RNG_STREAM_USER);
    same = 0;
    for (int i = 0; i < 16; i++) same += rng_u32(&a) == rng_u32(&b);
    assert_true(same < 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_matches_random123_known_answers),
        cmocka_unit_test(test_normals_have_mean0_var1_and_pass_ks),
        cmocka_unit_test(test_normals_of_neighbouring_chains_are_uncorrelated),
        cmocka_unit_test(test_fill_element_i_does_not_depend_on_n),
        cmocka_unit_test(test_normals_are_box_muller_of_each_philox_block),
        cmocka_unit_test(test_streams_chains_steps_and_seeds_give_different_numbers),
        cmocka_unit_test(test_uniforms_are_in_0_1_and_uniform),
        cmocka_unit_test(test_rng_below_is_in_range_and_unbiased),
        cmocka_unit_test(test_permutation_is_a_uniform_permutation),
        cmocka_unit_test(test_sequential_rng_resumes_from_saved_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
