/* test_eval.c - the figures of `ebm eval`: FID against closed forms on Gaussians, AUROC and
 * entropy on hand-made inputs, and the bundled classifier on real digits (accuracy, FID of
 * training images near the floor, uniform noise far from it), so that the metric cannot
 * silently break. */
#include "testutil.h"

#include <sys/stat.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "eval/classifier.h"
#include "eval/eval.h"
#include "eval/fid.h"
#include "eval/metrics.h"
#include "io/checkpoint.h"

static double fid_of(const fid_stats *a, const fid_stats *b) {
    double f = NAN;
    ebm_status s = fid_distance(a, b, &f);
    if (s != EBM_STATUS_OK) fail_msg("fid_distance: %s", ebm_last_error());
    return f;
}

static void expect_near(const char *what, double got, double want, double tol) {
    printf("  %-44s %.12g (expected %.12g)\n", what, got, want);
    if (!(fabs(got - want) <= tol)) fail_msg("%s: %.12g, expected %.12g (tolerance %g)", what, got, want, tol);
}

/* ---- FID ----------------------------------------------------------------------------- */

static void fid_of_diagonal_gaussians_matches_closed_form(void **state) {
    /* diagonal covariances commute: FID = |mu_a - mu_b|^2 + sum (sqrt(a_j) - sqrt(b_j))^2 */
    enum { D = 6 };
    const double mua[D] = {0, 1, -2, 0.5, 3, 0}, mub[D] = {1, 1, 0, -0.5, 3, 0.25};
    const double va[D] = {1, 4, 0.25, 9, 2, 0}, vb[D] = {4, 1, 0.25, 1, 8, 1};
    fid_stats a, b;
    assert_int_equal(fid_stats_alloc(D, &a), EBM_STATUS_OK);
    assert_int_equal(fid_stats_alloc(D, &b), EBM_STATUS_OK);
    double want = 0;
    for (int j = 0; j < D; j++) {
        a.mu[j] = mua[j], b.mu[j] = mub[j];
        a.cov[j * D + j] = va[j], b.cov[j * D + j] = vb[j];
        want += (mua[j] - mub[j]) * (mua[j] - mub[j]) + (sqrt(va[j]) - sqrt(vb[j])) * (sqrt(va[j]) - sqrt(vb[j]));
    }
    expect_near("FID diagonal", fid_of(&a, &b), want, 1e-9);
    expect_near("FID diagonal, arguments swapped", fid_of(&b, &a), want, 1e-9);
    expect_near("FID of a Gaussian with itself", fid_of(&a, &a), 0.0, 1e-9);
    fid_stats_free(&a);
    fid_stats_free(&b);
}

static void fid_of_non_diagonal_2x2_matches_hand_computation(void **state) {
    /* S_a = diag(4, 1), S_b = [[2, 1], [1, 2]] do not commute.  For 2x2 matrices with
     * non-negative eigenvalues tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); here
     * M = S_a S_b = [[8, 4], [1, 2]]: tr 10, det 12, so tr sqrt(M) = sqrt(10 + 4 sqrt 3),
     * and FID = |(1, -1) - (0, 1)|^2 + 5 + 4 - 2 sqrt(10 + 4 sqrt 3) = 14 - 2 sqrt(10 + 4 sqrt 3). */
    fid_stats a, b;
    assert_int_equal(fid_stats_alloc(2, &a), EBM_STATUS_OK);
    assert_int_equal(fid_stats_alloc(2, &b), EBM_STATUS_OK);
    a.mu[0] = 1, a.mu[1] = -1;
    b.mu[0] = 0, b.mu[1] = 1;
    a.cov[0] = 4, a.cov[3] = 1;
    b.cov[0] = 2, b.cov[1] = 1, b.cov[2] = 1, b.cov[3] = 2;
    const double want = 14.0 - 2.0 * sqrt(10.0 + 4.0 * sqrt(3.0));
    expect_near("FID 2x2 non-diagonal", fid_of(&a, &b), want, 1e-9);
    expect_near("FID 2x2 non-diagonal, swapped", fid_of(&b, &a), want, 1e-9);
    /* S_b against the identity: eigenvalues 3 and 1, FID = 4 + 2 - 2 (sqrt 3 + 1) with equal means */
    a.mu[0] = b.mu[0], a.mu[1] = b.mu[1];
    a.cov[0] = a.cov[3] = 1;
    expect_near("FID [[2,1],[1,2]] vs identity", fid_of(&a, &b), 4.0 - 2.0 * sqrt(3.0), 1e-9);
    fid_stats_free(&a);
    fid_stats_free(&b);
}

static void fid_of_a_large_random_covariance_depends_only_on_the_mean_shift(void **state) {
    /* the square roots must be accurate where the real features live (d = 128, rank-
     * deficient: 100 vectors): with equal covariances FID is exactly |mu_a - mu_b|^2, which
     * a rounding error in tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2) would show */
    enum { D = 128, N = 100 };
    float *f = malloc(sizeof(float) * N * D);
    rng_normal_fill(7, RNG_STREAM_USER, 0, 0, f, N * D);
    fid_stats a, b;
    assert_int_equal(fid_stats_compute(f, N, D, &a), EBM_STATUS_OK);
    assert_int_equal(fid_stats_compute(f, N, D, &b), EBM_STATUS_OK);
    double tr = 0;
    for (int j = 0; j < D; j++) tr += a.cov[j * D + j], b.mu[j] += 0.01 * (j % 3);
    const double want = 0.0001 * (43 * 0 + 43 * 1 + 42 * 4); /* j % 3 = 0, 1, 2 for 43, 43, 42 of the j */
    printf("  trace of the covariance %.3f\n", tr);
    expect_near("FID, equal covariances", fid_of(&a, &b), want, 1e-6 * tr);
    fid_stats_free(&a);
    fid_stats_free(&b);
    free(f);
}

static void fid_stats_are_the_mean_and_unbiased_covariance(void **state) {
    /* points (0,0), (2,0), (0,2), (2,2) plus (1,1) and (1,1): mean (1,1), cov diag(0.8, 0.8) */
    const float p[12] = {0, 0, 2, 0, 0, 2, 2, 2, 1, 1, 1, 1};
    fid_stats s;
    assert_int_equal(fid_stats_compute(p, 6, 2, &s), EBM_STATUS_OK);
    expect_near("mean x", s.mu[0], 1.0, 1e-12);
    expect_near("mean y", s.mu[1], 1.0, 1e-12);
    expect_near("var x (divides by n-1)", s.cov[0], 4.0 / 5.0, 1e-12);
    expect_near("cov xy", s.cov[1], 0.0, 1e-12);
    expect_near("cov yx", s.cov[2], 0.0, 1e-12);
    expect_near("var y", s.cov[3], 4.0 / 5.0, 1e-12);
    fid_stats_free(&s);
    assert_int_equal(fid_stats_compute(p, 1, 2, &s), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "at least 2"));
}

static void fid_from_gaussian_samples_approaches_closed_form(void **state) {
    /* samples x = mu + L z with L = [[2, 0], [1, 1]] (cov [[4, 2], [2, 2]]) against exact
     * N(0, I): FID = |mu|^2 + 6 + 2 - 2 tr sqrt(cov) = |mu|^2 + 8 - 2 sqrt(6 + 2 sqrt 4) */
    enum { N = 200000 };
    float *x = malloc(sizeof(float) * N * 2), z[2];
    for (int i = 0; i < N; i++) {
        rng_normal_fill(3, RNG_STREAM_USER, (uint32_t)i, 0, z, 2);
        x[2 * i] = 0.5f + 2 * z[0];
        x[2 * i + 1] = -1.0f + z[0] + z[1];
    }
    fid_stats a, b;
    assert_int_equal(fid_stats_compute(x, N, 2, &a), EBM_STATUS_OK);
    assert_int_equal(fid_stats_alloc(2, &b), EBM_STATUS_OK);
    b.cov[0] = b.cov[3] = 1;
    expect_near("FID of samples vs closed form", fid_of(&a, &b), 1.25 + 8 - 2 * sqrt(10.0), 0.03);
    b.mu[0] = 10; /* and it notices a shifted mean */
    expect_near("shifted mean", fid_of(&a, &b), 9.5 * 9.5 + 1 + 8 - 2 * sqrt(10.0), 0.2);
    fid_stats_free(&a);
    fid_stats_free(&b);
    free(x);
}

static void fid_refuses_non_finite_statistics(void **state) {
    fid_stats a, b;
    assert_int_equal(fid_stats_alloc(2, &a), EBM_STATUS_OK);
    assert_int_equal(fid_stats_alloc(2, &b), EBM_STATUS_OK);
    a.mu[1] = NAN;
    double f = 0;
    assert_int_equal(fid_distance(&a, &b, &f), EBM_STATUS_DIVERGED);
    assert_non_null(strstr(ebm_last_error(), "NaN"));
    fid_stats_free(&a);
    fid_stats_free(&b);
}

/* ---- AUROC, entropy, confidence ------------------------------------------------------ */

static double auroc(const float *pos, int np, const float *neg, int nn) {
    double a = -1;
    assert_int_equal(metrics_auroc(pos, np, neg, nn, &a), EBM_STATUS_OK);
    return a;
}

static void auroc_of_hand_made_scores(void **state) {
    const float hi[4] = {5, 6, 7, 8}, lo[3] = {1, 2, 3}, same[5] = {2, 2, 2, 2, 2};
    expect_near("perfect separation", auroc(hi, 4, lo, 3), 1.0, 0);
    expect_near("reversed", auroc(lo, 3, hi, 4), 0.0, 0);
    expect_near("all tied", auroc(same, 5, same, 3), 0.5, 0);
    /* pos {0.9, 0.4, 0.6} vs neg {0.5, 0.4, 0.1}: 3 + (1 + 0.5) + 3 = 7.5 wins of 9 pairs */
    const float p[3] = {0.9f, 0.4f, 0.6f}, n[3] = {0.5f, 0.4f, 0.1f};
    expect_near("mixed, one tie", auroc(p, 3, n, 3), 7.5 / 9.0, 1e-12);
    /* ties inside one set only do not matter: {1,1,3} vs {2,2}: 0 + 0 + 2 of 6 */
    const float p2[3] = {1, 1, 3}, n2[2] = {2, 2};
    expect_near("ties within a set", auroc(p2, 3, n2, 2), 2.0 / 6.0, 1e-12);
    const float bad[2] = {1, NAN};
    assert_true(isnan(auroc(bad, 2, lo, 3)));
    assert_true(isnan(auroc(hi, 0, lo, 3)));
}

static void entropy_of_histograms(void **state) {
    const int uniform[10] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7}, one[10] = {0, 0, 0, 40}, two[10] = {5, 0, 0, 0, 0, 0, 0, 0, 0, 5},
              none[10] = {0};
    expect_near("uniform over 10 classes = ln 10", metrics_entropy(uniform, 10), log(10.0), 1e-12);
    expect_near("one class = 0", metrics_entropy(one, 10), 0.0, 0);
    expect_near("two equal classes = ln 2", metrics_entropy(two, 10), log(2.0), 1e-12);
    expect_near("empty = 0", metrics_entropy(none, 10), 0.0, 0);
}

static void confidence_histogram_and_agreement_on_hand_made_probabilities(void **state) {
    float p[3][10] = {{0}};
    p[0][3] = 0.95f, p[0][1] = 0.05f;  /* confident 3 */
    p[1][7] = 0.9f, p[1][2] = 0.1f;    /* exactly 0.9: not > 0.9 */
    p[2][0] = 0.6f, p[2][9] = 0.4f;    /* unsure 0 */
    expect_near("share > 0.9", metrics_confident_share(&p[0][0], 3, 0.9f), 1.0 / 3.0, 1e-12);
    int h[10];
    metrics_class_hist(&p[0][0], 3, h);
    assert_int_equal(h[3], 1);
    assert_int_equal(h[7], 1);
    assert_int_equal(h[0], 1);
    assert_int_equal(h[9], 0);
    const int asked[3] = {3, 2, 0};
    expect_near("agreement", metrics_agreement(&p[0][0], asked, 3), 2.0 / 3.0, 1e-12);
    float x[3];
    const uint8_t u[3] = {0, 255, 51};
    eval_u8_to_float(x, u, 3);
    expect_near("pixel 0 -> -1", x[0], -1.0, 0);
    expect_near("pixel 255 -> 1", x[1], 1.0, 0);
    expect_near("pixel 51 -> -0.6", x[2], -0.6, 1e-6);
}

/* ---- the bundled classifier on real digits ------------------------------------------- */

static const char *classifier_path(void) {
    const char *p = getenv("EBM_CLASSIFIER");
    return p ? p : CLASSIFIER_DEFAULT_PATH;
}

static int have_data(void) {
    struct stat st;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/mnist", tu_data_dir());
    if (stat(dir, &st) == 0) return 1;
    printf("  skipped: %s is absent (run `make data` to fetch MNIST)\n", dir);
    return 0;
}

static net *load_classifier(void) {
    net *n = NULL;
    double acc = 0;
    ebm_status s = classifier_load(classifier_path(), &n, &acc);
    if (s != EBM_STATUS_OK) fail_msg("%s (the classifier is bundled in models/; run tests from the repository root)",
                                     ebm_last_error());
    printf("  %s: recorded test accuracy %.4f, %d features\n", classifier_path(), acc, classifier_feature_dim(n));
    return n;
}

static void load_split(const char *split, int limit, dataset *d) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/mnist", tu_data_dir());
    if (dataset_load_dir(dir, split, 0x3FF, limit, d) != EBM_STATUS_OK) fail_msg("%s", ebm_last_error());
}

static void classifier_accuracy_on_2000_test_images_is_at_least_99_percent(void **state) {
    if (!have_data()) skip();
    net *n = load_classifier();
    dataset te;
    load_split("t10k", 2000, &te);
    double acc = 0;
    assert_int_equal(classifier_accuracy(n, &te, &acc), EBM_STATUS_OK);
    printf("  accuracy on the first %d test images: %.4f\n", te.n, acc);
    if (!(acc >= 0.99)) fail_msg("classifier accuracy %.4f < 0.99", acc);
    dataset_free(&te);
    net_free(n);
}

static void training_images_score_near_the_floor_and_noise_scores_terribly(void **state) {
    if (!have_data()) skip();
    enum { N = 1000, FLOORS = 4 };
    net *n = load_classifier();
    dataset te, tr;
    load_split("t10k", 0, &te);
    load_split("train", (1 + FLOORS) * N, &tr);
    /* reference: every other test image, so both halves of the test set (its first 5,000
     * come from other writers than its last) at half the cost of `ebm eval`'s 10,000 */
    const int nref = te.n / 2;
    float *xr = malloc(sizeof(float) * (size_t)nref * 784);
    int *y = malloc(sizeof(int) * (size_t)nref);
    for (int i = 0; i < nref; i++) {
        memcpy(xr + (size_t)i * 784, te.x + (size_t)(2 * i) * 784, sizeof(float) * 784);
        y[i] = te.y[2 * i];
    }
    fid_stats ref;
    eval_figures ft, base, real, noise; /* base: the floor */
    assert_int_equal(eval_images(n, xr, nref, y, NULL, &ft, &ref), EBM_STATUS_OK);
    /* floor: the mean FID of training images [N, 2N), [2N, 3N), ... (one draw alone wanders
     * by +-25%, as `ebm eval` knows too); the set under test: training images [0, N) */
    double floor_fid = 0;
    for (int k = 1; k <= FLOORS; k++) {
        assert_int_equal(eval_images(n, tr.x + (size_t)k * N * 784, N, NULL, &ref, &base, NULL), EBM_STATUS_OK);
        printf("  floor draw %d: FID %.3f\n", k, base.fid);
        floor_fid += base.fid / FLOORS;
    }
    base.fid = floor_fid;
    assert_int_equal(eval_images(n, tr.x, N, NULL, &ref, &real, NULL), EBM_STATUS_OK);
    float *xn = malloc(sizeof(float) * N * 784);
    for (int i = 0; i < N; i++) {
        rng_uniform_fill(11, RNG_STREAM_USER, (uint32_t)i, 0, xn + (size_t)i * 784, 784);
        for (int k = 0; k < 784; k++) xn[(size_t)i * 784 + k] = 2 * xn[(size_t)i * 784 + k] - 1;
    }
    assert_int_equal(eval_images(n, xn, N, NULL, &ref, &noise, NULL), EBM_STATUS_OK);
    printf("  %-20s %8s %8s %8s\n", "set", "FID", "conf", "entropy");
    printf("  %-20s %8s %8.3f %8.3f  (accuracy %.4f)\n", "MNIST test, even", "-", ft.confident, ft.entropy, ft.asked);
    printf("  %-20s %8.3f %8.3f %8.3f\n", "floor (mean)", base.fid, base.confident, base.entropy);
    printf("  %-20s %8.3f %8.3f %8.3f\n", "train [0, 1000)", real.fid, real.confident, real.entropy);
    printf("  %-20s %8.3f %8.3f %8.3f\n", "uniform noise", noise.fid, noise.confident, noise.entropy);
    if (!(real.fid <= 1.5 * base.fid + 0.05))
        fail_msg("FID of training images %.3f is not near the floor %.3f", real.fid, base.fid);
    if (!(real.confident > 0.9)) fail_msg("confidence share of training images %.3f <= 0.9", real.confident);
    if (!(real.entropy > 2.25)) fail_msg("class entropy of training images %.3f <= 2.25", real.entropy);
    if (!(noise.fid > 50 * base.fid)) fail_msg("FID of noise %.3f is not far above the floor %.3f", noise.fid, base.fid);
    if (!(noise.entropy < 1.5 || noise.confident < 0.5))
        fail_msg("noise looks like digits: entropy %.3f, confidence share %.3f", noise.entropy, noise.confident);
    free(xn);
    free(xr);
    free(y);
    fid_stats_free(&ref);
    dataset_free(&te);
    dataset_free(&tr);
    net_free(n);
}

static void classifier_load_refuses_a_model_file_naming_it(void **state) {
    char dir[512], path[600];
    tu_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    net *m;
    assert_int_equal(net_create(&m, "cnn-small", 1), EBM_STATUS_OK);
    assert_int_equal(ckpt_save(path, m, CKPT_FORMAT_MODEL, NULL, 0, NULL, 0), EBM_STATUS_OK);
    net_free(m);
    net *n = NULL;
    ebm_status s = classifier_load(path, &n, NULL);
    printf("  %s\n", ebm_last_error());
    assert_int_equal(s, EBM_STATUS_BAD_FILE);
    assert_null(n);
    assert_non_null(strstr(ebm_last_error(), path));
    assert_non_null(strstr(ebm_last_error(), "--classifier"));
    remove(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fid_of_diagonal_gaussians_matches_closed_form),
        cmocka_unit_test(fid_of_non_diagonal_2x2_matches_hand_computation),
        cmocka_unit_test(fid_of_a_large_random_covariance_depends_only_on_the_mean_shift),
        cmocka_unit_test(fid_stats_are_the_mean_and_unbiased_covariance),
        cmocka_unit_test(fid_from_gaussian_samples_approaches_closed_form),
        cmocka_unit_test(fid_refuses_non_finite_statistics),
        cmocka_unit_test(auroc_of_hand_made_scores),
        cmocka_unit_test(entropy_of_histograms),
        cmocka_unit_test(confidence_histogram_and_agreement_on_hand_made_probabilities),
        cmocka_unit_test(classifier_accuracy_on_2000_test_images_is_at_least_99_percent),
        cmocka_unit_test(training_images_score_near_the_floor_and_noise_scores_terribly),
        cmocka_unit_test(classifier_load_refuses_a_model_file_naming_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
