/* test_dataset.c - digit selection parsing, loading with selection and limit, shape and
 * label checks, file discovery, binarization, the batcher, and real MNIST / Fashion-MNIST. */
#include "testutil.h"

#include <sys/stat.h>

#include "data/dataset.h"
#include "data/idx.h"

static char tmpdir[512];

static void expect_error(const char *what, ebm_status s, ebm_status want, const char *n1, const char *n2) {
    const char *msg = ebm_last_error();
    printf("  %-28s %s: %s\n", what, ebm_status_name(s), msg);
    if (s != want) fail_msg("%s: got %s, expected %s", what, ebm_status_name(s), ebm_status_name(want));
    if (n1 && !strstr(msg, n1)) fail_msg("%s: message \"%s\" does not mention \"%s\"", what, msg, n1);
    if (n2 && !strstr(msg, n2)) fail_msg("%s: message \"%s\" does not mention \"%s\"", what, msg, n2);
}

/* ---- digits_parse ------------------------------------------------------------------ */

static void digits_parse_accepts_all_single_and_lists(void **state) {
    struct { const char *s; uint16_t mask; } ok[] = {
        {"all", 0x3FF}, {"", 0x3FF}, {NULL, 0x3FF}, {"  all ", 0x3FF}, {"   ", 0x3FF},
        {"3", 1 << 3}, {" 3 ", 1 << 3}, {"5,7", (1 << 5) | (1 << 7)}, {" 5 , 7 ", (1 << 5) | (1 << 7)},
        {"0", 1}, {"9,0", 0x201}, {"0,1,2,3,4,5,6,7,8,9", 0x3FF},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint16_t m = 0xFFFF;
        ebm_status s = digits_parse(ok[i].s, &m);
        if (s != EBM_STATUS_OK) fail_msg("\"%s\": %s", ok[i].s ? ok[i].s : "(null)", ebm_last_error());
        if (m != ok[i].mask) fail_msg("\"%s\": mask 0x%x, expected 0x%x", ok[i].s, m, ok[i].mask);
    }
}

static void digits_parse_rejects_bad_entries_naming_them(void **state) {
    struct { const char *s, *needle; } bad[] = {
        {"10", "bad entry \"10\""}, {"a", "bad entry \"a\""}, {"3,3", "digit 3 is repeated"},
        {"5,", "empty entry"},      {",5", "empty entry"},    {"5,,7", "empty entry"},
        {"-1", "bad entry \"-1\""}, {"ALL", "bad entry \"ALL\""}, {"3;4", "bad entry \"3;4\""},
        {"5, 7x", "bad entry \"7x\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint16_t m = 0xFFFF;
        expect_error(bad[i].s, digits_parse(bad[i].s, &m), EBM_STATUS_BAD_ARG, bad[i].needle, "\"5,7\"");
        assert_non_null(strstr(ebm_last_error(), "\"all\"")); /* shows the accepted forms */
        assert_int_equal(m, 0);
    }
}

/* ---- loading from hand-made files -------------------------------------------------- */

/* 6 images of 2x3: image i has pixels {0, 255, 51, i, 2i, 3i}; labels below. */
static const uint8_t small_labels[6] = {1, 3, 1, 4, 3, 1};

static void write_small(const char *images, const char *labels) {
    uint8_t px[6 * 6];
    for (int i = 0; i < 6; i++) {
        const uint8_t row[6] = {0, 255, 51, (uint8_t)i, (uint8_t)(2 * i), (uint8_t)(3 * i)};
        memcpy(px + 6 * i, row, 6);
    }
    uint32_t dims[3] = {6, 2, 3}, ldims[1] = {6};
    assert_int_equal(idx_write_u8(images, px, 3, dims), EBM_STATUS_OK);
    assert_int_equal(idx_write_u8(labels, small_labels, 1, ldims), EBM_STATUS_OK);
}

static void small_paths(char *im, char *lb) {
    snprintf(im, 600, "%s/small-images.idx", tmpdir);
    snprintf(lb, 600, "%s/small-labels.idx", tmpdir);
}

static void load_keeps_selected_digits_in_order_scaled_to_pm1(void **state) {
    char im[600], lb[600];
    small_paths(im, lb);
    write_small(im, lb);
    dataset d;
    uint16_t mask;
    assert_int_equal(digits_parse("3,4", &mask), EBM_STATUS_OK);
    if (dataset_load(im, lb, mask, 0, &d) != EBM_STATUS_OK) fail_msg("%s", ebm_last_error());
    assert_int_equal(d.n, 3);
    assert_int_equal(d.h, 2);
    assert_int_equal(d.w, 3);
    const int src[3] = {1, 3, 4}; /* the images labelled 3 or 4, in file order */
    for (int k = 0; k < 3; k++) {
        assert_int_equal(d.y[k], small_labels[src[k]]);
        const float *x = d.x + 6 * k;
        assert_true(x[0] == -1.0f); /* exact endpoints */
        assert_true(x[1] == 1.0f);
        assert_float_equal(x[2], 51.0 / 255 * 2 - 1, 1e-7); /* -0.6 */
        assert_float_equal(x[5], 3.0 * src[k] / 255 * 2 - 1, 1e-7);
    }
    dataset_free(&d);
    assert_null(d.x);
}

static void load_limit_keeps_first_selected(void **state) {
    char im[600], lb[600];
    small_paths(im, lb);
    write_small(im, lb);
    dataset d;
    assert_int_equal(dataset_load(im, lb, 1 << 1, 2, &d), EBM_STATUS_OK);
    assert_int_equal(d.n, 2); /* three images are labelled 1; the limit keeps two */
    assert_float_equal(d.x[6 + 3], 2.0 / 255 * 2 - 1, 1e-7); /* the second is image 2 */
    dataset_free(&d);
    assert_int_equal(dataset_load(im, lb, 1 << 1, 100, &d), EBM_STATUS_OK);
    assert_int_equal(d.n, 3);
    dataset_free(&d);
}

static void load_empty_selection_names_digits_and_file(void **state) {
    char im[600], lb[600];
    small_paths(im, lb);
    write_small(im, lb);
    dataset d;
    uint16_t mask;
    assert_int_equal(digits_parse("0,7", &mask), EBM_STATUS_OK);
    expect_error("no 0 or 7 in the file", dataset_load(im, lb, mask, 0, &d), EBM_STATUS_BAD_ARG,
                 "no images of digits {0,7}", lb);
    assert_null(d.x);
    expect_error("mask 0", dataset_load(im, lb, 0, 0, &d), EBM_STATUS_BAD_ARG, "empty", NULL);
}

static void load_rejects_bad_shapes_and_labels(void **state) {
    char im[600], lb[600], other[600];
    small_paths(im, lb);
    write_small(im, lb);
    snprintf(other, sizeof other, "%s/other.idx", tmpdir);
    dataset d;
    uint8_t buf[64] = {0};

    uint32_t d2[2] = {6, 6};
    assert_int_equal(idx_write_u8(other, buf, 2, d2), EBM_STATUS_OK);
    expect_error("2-D images", dataset_load(other, lb, 0x3FF, 0, &d), EBM_STATUS_BAD_FILE, "must be 3-D", other);
    expect_error("2-D labels", dataset_load(im, other, 0x3FF, 0, &d), EBM_STATUS_BAD_FILE, "must be 1-D", other);

    uint32_t d1[1] = {5};
    assert_int_equal(idx_write_u8(other, small_labels, 1, d1), EBM_STATUS_OK);
    expect_error("5 labels for 6 images", dataset_load(im, other, 0x3FF, 0, &d), EBM_STATUS_BAD_FILE,
                 "has 6 images", "has 5 labels");

    uint8_t badlab[6] = {1, 2, 3, 10, 4, 5};
    d1[0] = 6;
    assert_int_equal(idx_write_u8(other, badlab, 1, d1), EBM_STATUS_OK);
    expect_error("label 10", dataset_load(im, other, 0x3FF, 0, &d), EBM_STATUS_BAD_FILE, "label 3 is 10", other);
    assert_null(d.x);

    snprintf(other, sizeof other, "%s/missing.idx", tmpdir);
    expect_error("missing labels", dataset_load(im, other, 0x3FF, 0, &d), EBM_STATUS_IO, other, NULL);
}

static void paths_find_gz_or_raw_and_hint_make_data(void **state) {
    char dir[600], a[700], b[700], im[700], lb[700];
    snprintf(dir, sizeof dir, "%s/split", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    expect_error("empty directory", dataset_paths(dir, "t10k", im, lb, (int)sizeof im), EBM_STATUS_IO,
                 "t10k-images-idx3-ubyte[.gz] not found", "make data");
    snprintf(a, sizeof a, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(b, sizeof b, "%s/t10k-labels-idx1-ubyte", dir);
    tu_write_file(a, "", 0);
    expect_error("labels missing", dataset_paths(dir, "t10k", im, lb, (int)sizeof im), EBM_STATUS_IO,
                 "t10k-labels-idx1-ubyte[.gz] not found", "make data");
    tu_write_file(b, "", 0);
    assert_int_equal(dataset_paths(dir, "t10k", im, lb, (int)sizeof im), EBM_STATUS_OK);
    assert_string_equal(im, a);
    assert_string_equal(lb, b);
    expect_error("bad split", dataset_paths(dir, "test", im, lb, (int)sizeof im), EBM_STATUS_BAD_ARG,
                 "\"test\"", "\"t10k\"");
    expect_error("path too long", dataset_paths(dir, "t10k", im, lb, 20), EBM_STATUS_BAD_ARG, "too long", NULL);
}

/* ---- binarize ---------------------------------------------------------------------- */

static void binarize_recovers_pixel_levels_at_threshold(void **state) {
    /* Every 0..255 level as dataset_load scales it, then binarized at several thresholds. */
    float x[256], out[256];
    for (int p = 0; p < 256; p++) x[p] = (float)(p / 255.0 * 2.0 - 1.0);
    const int thresholds[5] = {0, 1, 128, 255, 256};
    for (int t = 0; t < 5; t++) {
        binarize_u8_to01(x, 256, thresholds[t], out);
        for (int p = 0; p < 256; p++)
            if (out[p] != (p >= thresholds[t] ? 1.0f : 0.0f))
                fail_msg("threshold %d: pixel %d -> %g", thresholds[t], p, out[p]);
    }
    /* Out of range and NaN: below -1 and NaN are 0, above 1 is 255. */
    float odd[4] = {-2.0f, 2.0f, NAN, 0.0f}, o[4];
    binarize_u8_to01(odd, 4, 128, o);
    assert_true(o[0] == 0.0f && o[1] == 1.0f && o[2] == 0.0f && o[3] == 1.0f); /* 0.0 is p=128 (127.5 rounds up) */
    /* In place. */
    binarize_u8_to01(x, 256, 200, x);
    int ones = 0;
    for (int p = 0; p < 256; p++) ones += x[p] == 1.0f;
    assert_int_equal(ones, 56);
}

/* ---- batcher ----------------------------------------------------------------------- */

/* n images of 1x2 whose first pixel holds the index, so batches reveal what they hold. */
static dataset make_indexed(int n) {
    dataset d = {n, 1, 2, calloc((size_t)n * 2, sizeof(float)), calloc((size_t)n, 1)};
    for (int i = 0; i < n; i++) {
        d.x[2 * i] = (float)i;
        d.x[2 * i + 1] = -(float)i;
        d.y[i] = (uint8_t)(i % 10);
    }
    return d;
}

/* Runs one epoch; checks batch sizes, each index exactly once, x/y agreement; writes the order. */
static void run_epoch(batcher *bt, const dataset *d, int B, int *order) {
    float *x = malloc((size_t)B * 2 * sizeof(float));
    uint8_t *y = malloc((size_t)B);
    int *seen = calloc((size_t)d->n, sizeof(int));
    int pos = 0, k, batches = 0;
    while ((k = batcher_next(bt, x, batches % 2 ? NULL : y)) > 0) {
        int want = d->n - pos < B ? d->n - pos : B;
        assert_int_equal(k, want);
        for (int i = 0; i < k; i++) {
            int idx = (int)x[2 * i];
            assert_true(idx >= 0 && idx < d->n);
            assert_true(x[2 * i + 1] == -(float)idx);
            if (batches % 2 == 0) assert_int_equal(y[i], idx % 10);
            seen[idx]++;
            order[pos + i] = idx;
        }
        pos += k;
        batches++;
    }
    assert_int_equal(pos, d->n);
    assert_int_equal(batches, (d->n + B - 1) / B);
    assert_int_equal(batcher_next(bt, x, y), 0); /* stays at the end */
    for (int i = 0; i < d->n; i++)
        if (seen[i] != 1) fail_msg("index %d visited %d times", i, seen[i]);
    free(x);
    free(y);
    free(seen);
}

static int same_order(const int *a, const int *b, int n) { return memcmp(a, b, (size_t)n * sizeof(int)) == 0; }

static void batcher_visits_each_index_once_and_is_seeded(void **state) {
    const int n = 103, B = 10;
    dataset d = make_indexed(n);
    int o1[103], o2[103], o3[103], o4[103], ident[103];
    for (int i = 0; i < n; i++) ident[i] = i;

    ebm_rng r1 = rng_make(42, RNG_STREAM_DATA);
    batcher bt;
    assert_int_equal(batcher_init(&bt, &d, B, &r1), EBM_STATUS_OK);
    run_epoch(&bt, &d, B, o1);
    batcher_reshuffle(&bt, &r1);
    run_epoch(&bt, &d, B, o2);
    batcher_free(&bt);
    assert_false(same_order(o1, ident, n)); /* shuffled at all */
    assert_false(same_order(o1, o2, n));    /* reshuffled per epoch */

    ebm_rng r2 = rng_make(42, RNG_STREAM_DATA); /* same seed: same two epochs */
    assert_int_equal(batcher_init(&bt, &d, B, &r2), EBM_STATUS_OK);
    run_epoch(&bt, &d, B, o3);
    assert_true(same_order(o1, o3, n));
    batcher_reshuffle(&bt, &r2);
    run_epoch(&bt, &d, B, o3);
    assert_true(same_order(o2, o3, n));
    batcher_free(&bt);

    ebm_rng r3 = rng_make(43, RNG_STREAM_DATA); /* different seed: different order */
    assert_int_equal(batcher_init(&bt, &d, B, &r3), EBM_STATUS_OK);
    run_epoch(&bt, &d, B, o4);
    assert_false(same_order(o1, o4, n));
    batcher_free(&bt);

    /* A batch larger than the data set gives one short batch. */
    assert_int_equal(batcher_init(&bt, &d, 500, &r3), EBM_STATUS_OK);
    int big[103];
    run_epoch(&bt, &d, 500, big);
    batcher_free(&bt);
    free(d.x);
    free(d.y);
}

static void batcher_rejects_bad_batch_size(void **state) {
    dataset d = make_indexed(3);
    ebm_rng r = rng_make(1, RNG_STREAM_DATA);
    batcher bt;
    expect_error("batch 0", batcher_init(&bt, &d, 0, &r), EBM_STATUS_BAD_ARG, "batch size 0", NULL);
    assert_null(bt.perm);
    free(d.x);
    free(d.y);
}

/* ---- real data (skipped only when the data directory is absent) -------------------- */

static int have_data(void) {
    struct stat st;
    if (stat(tu_data_dir(), &st) == 0) return 1;
    printf("  skipped: %s/ is absent (run `make data` to fetch MNIST and Fashion-MNIST)\n", tu_data_dir());
    return 0;
}

static void load_dir_or_fail(const char *sub, const char *split, const char *digits, int limit, dataset *d) {
    char dir[600];
    uint16_t mask;
    snprintf(dir, sizeof dir, "%s/%s", tu_data_dir(), sub);
    assert_int_equal(digits_parse(digits, &mask), EBM_STATUS_OK);
    if (dataset_load_dir(dir, split, mask, limit, d) != EBM_STATUS_OK) fail_msg("%s", ebm_last_error());
}

static void mnist_t10k_all_digits(void **state) {
    if (!have_data()) skip();
    dataset d;
    load_dir_or_fail("mnist", "t10k", "all", 0, &d);
    assert_int_equal(d.n, 10000);
    assert_int_equal(d.h, 28);
    assert_int_equal(d.w, 28);
    const uint8_t first[5] = {7, 2, 1, 0, 4};
    assert_memory_equal(d.y, first, 5);
    float lo = 1, hi = -1;
    for (size_t i = 0; i < (size_t)d.n * 784; i++) {
        lo = d.x[i] < lo ? d.x[i] : lo;
        hi = d.x[i] > hi ? d.x[i] : hi;
    }
    assert_true(lo == -1.0f && hi == 1.0f);
    double sum = 0; /* first image back in 0..255: 18454 per Python's gzip module */
    for (int i = 0; i < 784; i++) sum += (d.x[i] + 1.0) * 127.5;
    assert_float_equal(sum, 18454.0, 1e-2);
    dataset_free(&d);
}

static void mnist_t10k_digit_selection_counts(void **state) {
    if (!have_data()) skip();
    dataset d;
    load_dir_or_fail("mnist", "t10k", "3", 0, &d);
    assert_int_equal(d.n, 1010);
    for (int i = 0; i < d.n; i++) assert_int_equal(d.y[i], 3);
    double sum = 0; /* the first 3 is image 18, pixel sum 35433 */
    for (int i = 0; i < 784; i++) sum += (d.x[i] + 1.0) * 127.5;
    assert_float_equal(sum, 35433.0, 1e-2);
    dataset_free(&d);

    load_dir_or_fail("mnist", "t10k", " 5 ,7", 0, &d);
    assert_int_equal(d.n, 892 + 1028);
    for (int i = 0; i < d.n; i++) assert_true(d.y[i] == 5 || d.y[i] == 7);
    dataset_free(&d);

    dataset full, lim;
    load_dir_or_fail("mnist", "t10k", "3", 0, &full);
    load_dir_or_fail("mnist", "t10k", "3", 100, &lim);
    assert_int_equal(lim.n, 100);
    assert_memory_equal(lim.x, full.x, 100 * 784 * sizeof(float));
    dataset_free(&full);
    dataset_free(&lim);
}

static void mnist_train_has_60000_with_known_class_counts(void **state) {
    if (!have_data()) skip();
    dataset d;
    load_dir_or_fail("mnist", "train", "all", 0, &d);
    assert_int_equal(d.n, 60000);
    const int want[10] = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
    int count[10] = {0};
    for (int i = 0; i < d.n; i++) count[d.y[i]]++;
    for (int c = 0; c < 10; c++) assert_int_equal(count[c], want[c]);
    dataset_free(&d);
}

static void fashion_t10k_reads_through_same_loader(void **state) {
    if (!have_data()) skip();
    dataset d;
    load_dir_or_fail("fashion", "t10k", "all", 0, &d);
    assert_int_equal(d.n, 10000);
    assert_int_equal(d.h, 28);
    const uint8_t first[5] = {9, 2, 1, 1, 6};
    assert_memory_equal(d.y, first, 5);
    dataset_free(&d);
    load_dir_or_fail("fashion", "t10k", "3", 0, &d);
    assert_int_equal(d.n, 1000);
    dataset_free(&d);
}

int main(void) {
    tu_tmpdir(tmpdir, sizeof tmpdir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(digits_parse_accepts_all_single_and_lists),
        cmocka_unit_test(digits_parse_rejects_bad_entries_naming_them),
        cmocka_unit_test(load_keeps_selected_digits_in_order_scaled_to_pm1),
        cmocka_unit_test(load_limit_keeps_first_selected),
        cmocka_unit_test(load_empty_selection_names_digits_and_file),
        cmocka_unit_test(load_rejects_bad_shapes_and_labels),
        cmocka_unit_test(paths_find_gz_or_raw_and_hint_make_data),
        cmocka_unit_test(binarize_recovers_pixel_levels_at_threshold),
        cmocka_unit_test(batcher_visits_each_index_once_and_is_seeded),
        cmocka_unit_test(batcher_rejects_bad_batch_size),
        cmocka_unit_test(mnist_t10k_all_digits),
        cmocka_unit_test(mnist_t10k_digit_selection_counts),
        cmocka_unit_test(mnist_train_has_60000_with_known_class_counts),
        cmocka_unit_test(fashion_t10k_reads_through_same_loader),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed ? 1 : 0;
}
