/* test_idx.c - the IDX reader and writer: round trips (raw and gzip), every malformed
 * header and length the reader must refuse (each through the raw file, gzip file and
 * in-memory paths, checking the status and the message), I/O failures, real MNIST. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/idx.h"

static char tmpdir[512];

static void path_in_tmp(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", tmpdir, name); }

/* Writes bytes gzip-compressed (what `make data` caches). */
static void write_gz(const char *path, const void *data, size_t len) {
    gzFile g = gzopen(path, "wb");
    if (!g) fail_msg("gzopen %s failed", path);
    if (len && gzwrite(g, data, (unsigned)len) != (int)len) fail_msg("gzwrite %s failed", path);
    if (gzclose(g) != Z_OK) fail_msg("gzclose %s failed", path);
}

static void *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(*len ? *len : 1);
    if (*len && fread(buf, 1, *len, f) != *len) fail_msg("short read %s", path);
    fclose(f);
    return buf;
}

/* Fails unless s == want and the last error contains every non-NULL needle. */
static void expect_error(const char *what, ebm_status s, ebm_status want, const char *n1, const char *n2,
                         const char *n3) {
    const char *msg = ebm_last_error();
    printf("  %-34s %s: %s\n", what, ebm_status_name(s), msg);
    if (s != want) fail_msg("%s: got %s, expected %s", what, ebm_status_name(s), ebm_status_name(want));
    const char *needles[3] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i] && !strstr(msg, needles[i]))
            fail_msg("%s: message \"%s\" does not mention \"%s\"", what, msg, needles[i]);
}

/* A valid 3-D IDX (2x3x5 = 30 data bytes) built by hand, independent of idx_write_u8. */
static size_t make_valid(uint8_t *buf) {
    const uint8_t hdr[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 5};
    memcpy(buf, hdr, 16);
    for (int i = 0; i < 30; i++) buf[16 + i] = (uint8_t)(7 * i + 1);
    return 46;
}

static void roundtrip_raw_write_then_read_gives_same_dims_and_bytes(void **state) {
    uint8_t data[2 * 3 * 4];
    for (int i = 0; i < 24; i++) data[i] = (uint8_t)(255 - 11 * i);
    uint32_t dims[3] = {2, 3, 4};
    char path[600];
    path_in_tmp(path, sizeof path, "rt.idx");
    assert_int_equal(idx_write_u8(path, data, 3, dims), EBM_STATUS_OK);

    size_t len;
    uint8_t *bytes = read_all(path, &len);
    const uint8_t want_hdr[16] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4};
    assert_int_equal(len, 16 + 24);
    assert_memory_equal(bytes, want_hdr, 16); /* big-endian dims, as MNIST tools expect */
    free(bytes);

    idx_array a;
    assert_int_equal(idx_read(path, &a), EBM_STATUS_OK);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.dims[0], 2);
    assert_int_equal(a.dims[1], 3);
    assert_int_equal(a.dims[2], 4);
    assert_int_equal(a.count, 24);
    assert_memory_equal(a.data, data, 24);
    idx_free(&a);
    assert_null(a.data);

    /* The temp file is gone after the rename. */
    DIR *dir = opendir(tmpdir);
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir));)
        if (strstr(e->d_name, ".tmp.")) fail_msg("temp file %s left behind", e->d_name);
    closedir(dir);
}

static void roundtrip_gz_file_reads_like_raw(void **state) {
    uint8_t buf[64];
    size_t len = make_valid(buf);
    char path[600];
    path_in_tmp(path, sizeof path, "valid.idx.gz");
    write_gz(path, buf, len);
    idx_array a;
    assert_int_equal(idx_read(path, &a), EBM_STATUS_OK);
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.count, 30);
    assert_memory_equal(a.data, buf + 16, 30);
    idx_free(&a);

    assert_int_equal(idx_parse(buf, len, "mem", &a), EBM_STATUS_OK);
    assert_int_equal(a.dims[2], 5);
    assert_memory_equal(a.data, buf + 16, 30);
    idx_free(&a);
}

static void roundtrip_large_gz_beyond_growth_chunk(void **state) {
    /* 3 MiB: the reader grows its buffer in steps from 1 MiB; check the seams. */
    uint32_t dims[2] = {3, 1 << 20};
    size_t n = (size_t)dims[0] * dims[1];
    uint8_t *buf = malloc(12 + n);
    const uint8_t hdr[12] = {0, 0, 8, 2, 0, 0, 0, 3, 0, 0x10, 0, 0};
    memcpy(buf, hdr, 12);
    for (size_t i = 0; i < n; i++) buf[12 + i] = (uint8_t)(i * 2654435761u >> 24);
    char path[600];
    path_in_tmp(path, sizeof path, "large.idx.gz");
    write_gz(path, buf, 12 + n);
    idx_array a;
    assert_int_equal(idx_read(path, &a), EBM_STATUS_OK);
    assert_int_equal(a.count, n);
    assert_memory_equal(a.data, buf + 12, n);
    idx_free(&a);
    free(buf);
}

/* One malformed input, checked through all three entry points. */
typedef struct {
    const char *what;
    uint8_t bytes[64];
    size_t len;
    const char *n1, *n2; /* both must be in the message */
} bad_case;

static void check_bad_case(const bad_case *c) {
    char what[128], path[600];
    idx_array a;

    snprintf(what, sizeof what, "%s (memory)", c->what);
    expect_error(what, idx_parse(c->bytes, c->len, "buffer.idx", &a), EBM_STATUS_BAD_FILE, c->n1, c->n2,
                 "buffer.idx");
    assert_null(a.data);

    path_in_tmp(path, sizeof path, "bad.idx");
    tu_write_file(path, c->bytes, c->len);
    snprintf(what, sizeof what, "%s (raw file)", c->what);
    expect_error(what, idx_read(path, &a), EBM_STATUS_BAD_FILE, c->n1, c->n2, path);
    assert_null(a.data);

    path_in_tmp(path, sizeof path, "bad.idx.gz");
    write_gz(path, c->bytes, c->len);
    snprintf(what, sizeof what, "%s (gzip file)", c->what);
    expect_error(what, idx_read(path, &a), EBM_STATUS_BAD_FILE, c->n1, c->n2, path);
    assert_null(a.data);
}

static void truncated_by_one_byte_names_expected_and_got(void **state) {
    bad_case c = {"truncated by 1 byte", {0}, 0, "need 30 data bytes", "got 29"};
    c.len = make_valid(c.bytes) - 1;
    check_bad_case(&c);
    assert_non_null(strstr(ebm_last_error(), "2x3x5"));
}

static void trailing_byte_is_an_error(void **state) {
    bad_case c = {"one trailing byte", {0}, 0, "1 unexpected byte(s)", "after the 30 data bytes"};
    c.len = make_valid(c.bytes);
    c.bytes[c.len++] = 0x42;
    check_bad_case(&c);
}

static void wrong_magic_is_rejected(void **state) {
    bad_case c = {"wrong magic", {0}, 0, "not an IDX file", "00 00 08"};
    c.len = make_valid(c.bytes);
    c.bytes[1] = 0x01;
    check_bad_case(&c);
}

static void non_uint8_type_byte_is_rejected(void **state) {
    bad_case c = {"float32 type byte", {0}, 0, "0x0d (float32)", "only 0x08"};
    c.len = make_valid(c.bytes);
    c.bytes[2] = 0x0D;
    check_bad_case(&c);
}

static void zero_dimensions_is_rejected(void **state) {
    bad_case c = {"0 dimensions", {0, 0, 8, 0, 1, 2, 3}, 7, "0 dimensions", "1 to 4"};
    check_bad_case(&c);
}

static void five_dimensions_is_rejected(void **state) {
    bad_case c = {"5 dimensions", {0, 0, 8, 5}, 0, "5 dimensions", "1 to 4"};
    for (int i = 0; i < 5; i++) c.bytes[4 + 4 * i + 3] = 1;
    c.len = 4 + 20 + 1;
    check_bad_case(&c);
}

static void a_zero_dimension_is_rejected(void **state) {
    bad_case c = {"zero dimension", {0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 0}, 12, "dimension 1 is 0", NULL};
    check_bad_case(&c);
}

static void overflowing_dimension_product_is_rejected(void **state) {
    /* 0xffffffff^4 wraps around 64 bits; the check must catch it before multiplying. */
    bad_case c = {"dims product overflows", {0, 0, 8, 4}, 20, "more than 1073741824 bytes", "4294967295"};
    memset(c.bytes + 4, 0xff, 16);
    check_bad_case(&c);
    /* 65536 x 65536 x 1 = 4 GiB: no overflow, but over the cap; and exactly 2^32 wraps a
     * 32-bit product to 0. */
    bad_case d = {"dims over the 1 GiB cap", {0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1}, 16,
                  "more than 1073741824 bytes", "65536x65536"};
    check_bad_case(&d);
}

static void claimed_1gib_with_no_data_fails_fast_as_truncated(void **state) {
    /* 1024 x 1024 x 1024 = exactly the cap: accepted as a header, then truncated at 0 bytes.
     * The reader must not allocate the full GiB up front (ASan would show it as slow). */
    bad_case c = {"1 GiB claimed, none present", {0, 0, 8, 3, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0}, 16,
                  "need 1073741824 data bytes", "got 0"};
    check_bad_case(&c);
}

static void truncated_header_is_rejected(void **state) {
    bad_case c = {"empty file", {0}, 0, "truncated IDX header", NULL};
    check_bad_case(&c);
    bad_case d = {"dims cut short", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0}, 10, "truncated IDX header", "need 16"};
    check_bad_case(&d);
}

static void gzip_garbage_is_a_clear_error(void **state) {
    uint8_t junk[64] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03};
    for (int i = 10; i < 64; i++) junk[i] = (uint8_t)(i * 37 + 5);
    char path[600];
    path_in_tmp(path, sizeof path, "garbage.gz");
    tu_write_file(path, junk, sizeof junk);
    idx_array a;
    expect_error("gzip header + garbage", idx_read(path, &a), EBM_STATUS_BAD_FILE, "corrupt or truncated gzip", path,
                 "fetch it again");
    assert_null(a.data);
}

static void truncated_gzip_stream_is_a_clear_error(void **state) {
    uint8_t buf[64];
    size_t len = make_valid(buf);
    char path[600];
    path_in_tmp(path, sizeof path, "cut.idx.gz");
    write_gz(path, buf, len);
    size_t glen;
    uint8_t *g = read_all(path, &glen);
    tu_write_file(path, g, glen - 6); /* drop part of the CRC/length trailer */
    idx_array a;
    expect_error("gzip stream cut short", idx_read(path, &a), EBM_STATUS_BAD_FILE, "gzip", path, NULL);
    g[glen - 5] ^= 0xff; /* intact length, wrong CRC */
    tu_write_file(path, g, glen);
    expect_error("gzip CRC mismatch", idx_read(path, &a), EBM_STATUS_BAD_FILE, "gzip", path, NULL);
    free(g);
}

static void missing_file_is_io_error_with_path_and_reason(void **state) {
    char path[600];
    path_in_tmp(path, sizeof path, "does-not-exist.idx");
    idx_array a;
    expect_error("missing file", idx_read(path, &a), EBM_STATUS_IO, path, strerror(ENOENT), NULL);
    assert_null(a.data);
}

static void directory_instead_of_file_is_io_error(void **state) {
    idx_array a;
    expect_error("a directory", idx_read(tmpdir, &a), EBM_STATUS_IO, tmpdir, NULL, NULL);
}

static void unwritable_output_path_is_io_error(void **state) {
    uint8_t data[4] = {1, 2, 3, 4};
    uint32_t dims[1] = {4};
    char path[700];
    path_in_tmp(path, sizeof path, "no-such-dir/out.idx");
    expect_error("write into missing directory", idx_write_u8(path, data, 1, dims), EBM_STATUS_IO, path,
                 strerror(ENOENT), NULL);
    /* A regular file where a directory is expected (works even as root, unlike chmod). */
    char file[600];
    path_in_tmp(file, sizeof file, "plainfile");
    tu_write_file(file, "x", 1);
    snprintf(path, sizeof path, "%s/out.idx", file);
    expect_error("write under a regular file", idx_write_u8(path, data, 1, dims), EBM_STATUS_IO, path,
                 strerror(ENOTDIR), NULL);
}

static void write_rejects_bad_dims(void **state) {
    uint8_t data[4] = {0};
    uint32_t dims[5] = {1, 1, 1, 1, 1};
    char path[600];
    path_in_tmp(path, sizeof path, "bad-dims.idx");
    expect_error("write 0 dims", idx_write_u8(path, data, 0, dims), EBM_STATUS_BAD_ARG, "0 dimensions", NULL,
                 NULL);
    expect_error("write 5 dims", idx_write_u8(path, data, 5, dims), EBM_STATUS_BAD_ARG, "5 dimensions", NULL,
                 NULL);
    dims[1] = 0;
    expect_error("write a zero dim", idx_write_u8(path, data, 2, dims), EBM_STATUS_BAD_ARG, "dimension 1 = 0",
                 NULL, NULL);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* nothing written */
}

/* Real data: skipped only when the data directory is absent. */
static int have_mnist(char *dir, size_t len) {
    snprintf(dir, len, "%s/mnist", tu_data_dir());
    struct stat st;
    if (stat(tu_data_dir(), &st) != 0) {
        printf("  skipped: %s/ is absent (run `make data` to fetch MNIST)\n", tu_data_dir());
        return 0;
    }
    return 1;
}

static void mnist_t10k_labels_and_images_read(void **state) {
    char dir[512], path[700];
    if (!have_mnist(dir, sizeof dir)) skip();
    idx_array a;
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    if (idx_read(path, &a) != EBM_STATUS_OK) fail_msg("%s", ebm_last_error());
    assert_int_equal(a.ndim, 1);
    assert_int_equal(a.count, 10000);
    const uint8_t first[5] = {7, 2, 1, 0, 4};
    assert_memory_equal(a.data, first, 5);
    idx_free(&a);

    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    if (idx_read(path, &a) != EBM_STATUS_OK) fail_msg("%s", ebm_last_error());
    assert_int_equal(a.ndim, 3);
    assert_int_equal(a.dims[0], 10000);
    assert_int_equal(a.dims[1], 28);
    assert_int_equal(a.dims[2], 28);
    long sum = 0;
    for (int i = 0; i < 784; i++) sum += a.data[i];
    assert_int_equal(sum, 18454); /* first image's pixel sum, from Python's gzip module */
    idx_free(&a);
}

int main(void) {
    tu_tmpdir(tmpdir, sizeof tmpdir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_raw_write_then_read_gives_same_dims_and_bytes),
        cmocka_unit_test(roundtrip_gz_file_reads_like_raw),
        cmocka_unit_test(roundtrip_large_gz_beyond_growth_chunk),
        cmocka_unit_test(truncated_by_one_byte_names_expected_and_got),
        cmocka_unit_test(trailing_byte_is_an_error),
        cmocka_unit_test(wrong_magic_is_rejected),
        cmocka_unit_test(non_uint8_type_byte_is_rejected),
        cmocka_unit_test(zero_dimensions_is_rejected),
        cmocka_unit_test(five_dimensions_is_rejected),
        cmocka_unit_test(a_zero_dimension_is_rejected),
        cmocka_unit_test(overflowing_dimension_product_is_rejected),
        cmocka_unit_test(claimed_1gib_with_no_data_fails_fast_as_truncated),
        cmocka_unit_test(truncated_header_is_rejected),
        cmocka_unit_test(gzip_garbage_is_a_clear_error),
        cmocka_unit_test(truncated_gzip_stream_is_a_clear_error),
        cmocka_unit_test(missing_file_is_io_error_with_path_and_reason),
        cmocka_unit_test(directory_instead_of_file_is_io_error),
        cmocka_unit_test(unwritable_output_path_is_io_error),
        cmocka_unit_test(write_rejects_bad_dims),
        cmocka_unit_test(mnist_t10k_labels_and_images_read),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed ? 1 : 0;
}
