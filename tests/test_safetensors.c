/* test_safetensors.c - round trips, every kind of malformed file the reader must refuse
 * (with a message naming the file and the field), atomic commits, and a cross-check of our
 * files against Python's loader (scripts/st_check.py). */
#include "testutil.h"

#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "io/safetensors.h"

static char dir[256];

static void path_in_dir(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", dir, name); }

/* Writes 8-byte length + header + blob. */
static void write_st(const char *path, const char *header, const void *blob, size_t bloblen) {
    size_t n = strlen(header);
    uint8_t *buf = malloc(8 + n + bloblen + 1);
    uint64_t n64 = n;
    memcpy(buf, &n64, 8);
    memcpy(buf + 8, header, n);
    if (bloblen) memcpy(buf + 8 + n, blob, bloblen);
    tu_write_file(path, buf, 8 + n + bloblen);
    free(buf);
}

static void expect_bad(const char *what, const char *path, const char *needle) {
    st_file f;
    ebm_status s = st_read(path, &f);
    const char *msg = ebm_last_error();
    printf("  %-34s -> %s: %s\n", what, ebm_status_name(s), msg);
    if (s != EBM_STATUS_BAD_FILE) fail_msg("%s: expected EBM_STATUS_BAD_FILE, got %s", what, ebm_status_name(s));
    if (!strstr(msg, path)) fail_msg("%s: message does not name the file: %s", what, msg);
    if (!strstr(msg, needle)) fail_msg("%s: message lacks '%s': %s", what, needle, msg);
    assert_int_equal(f.ntensors, 0); /* cleaned up on failure */
    assert_null(f.file);
}

static int count_temp_files(void) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* The fixture written by several tests: one tensor of each dtype, a scalar, an empty tensor. */
static float f32v[6] = {1.5f, -2.25f, 3.f, 0.f, -0.5f, 1e-3f};
static double f64v[4] = {1e-300, -2.5, 3.25, 1e300};
static int32_t i32v[4] = {-7, 0, 2147483647, -2147483647 - 1};
static int64_t i64v[1] = {-123456789012345LL};
static uint8_t u8v[5] = {0, 1, 127, 128, 255};

static void write_fixture(const char *path) {
    st_writer *w = st_writer_new();
    assert_non_null(w);
    assert_int_equal(st_writer_meta(w, "spec", "cnn-small"), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "a.f32", ST_F32, 2, (int64_t[]){2, 3}, f32v), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "b.f64", ST_F64, 1, (int64_t[]){4}, f64v), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "c.i32", ST_I32, 2, (int64_t[]){2, 2}, i32v), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "d.i64", ST_I64, 0, NULL, i64v), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "e.u8", ST_U8, 4, (int64_t[]){1, 1, 1, 5}, u8v), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "f.empty", ST_F32, 2, (int64_t[]){0, 3}, NULL), EBM_STATUS_OK);
    assert_int_equal(st_writer_meta(w, "note", "quotes \" and \\ and \n survive"), EBM_STATUS_OK);
    assert_int_equal(st_writer_meta(w, "spec", "cnn-small-cond"), EBM_STATUS_OK); /* replaces */
    assert_int_equal(st_writer_commit(w, path), EBM_STATUS_OK);
}

static void test_round_trip_keeps_every_dtype_shape_value_and_metadata(void **state) {
    char path[512];
    path_in_dir(path, sizeof path, "rt.safetensors");
    write_fixture(path);
    st_file f;
    assert_int_equal(st_read(path, &f), EBM_STATUS_OK);
    assert_int_equal(f.ntensors, 6);
    assert_int_equal(f.nmeta, 2);
    assert_string_equal(st_meta(&f, "spec"), "cnn-small-cond");
    assert_string_equal(st_meta(&f, "note"), "quotes \" and \\ and \n survive");
    assert_null(st_meta(&f, "absent"));

    float f32[6];
    double f64[4];
    int32_t i32[4];
    int64_t i64[1];
    uint8_t u8[5];
    assert_int_equal(st_get_f32(&f, "a.f32", f32, 6), EBM_STATUS_OK);
    assert_memory_equal(f32, f32v, sizeof f32);
    assert_int_equal(st_get(&f, "b.f64", ST_F64, f64, 4), EBM_STATUS_OK);
    assert_memory_equal(f64, f64v, sizeof f64);
    assert_int_equal(st_get(&f, "c.i32", ST_I32, i32, 4), EBM_STATUS_OK);
    assert_memory_equal(i32, i32v, sizeof i32);
    assert_int_equal(st_get(&f, "d.i64", ST_I64, i64, 1), EBM_STATUS_OK);
    assert_memory_equal(i64, i64v, sizeof i64);
    assert_int_equal(st_get(&f, "e.u8", ST_U8, u8, 5), EBM_STATUS_OK);
    assert_memory_equal(u8, u8v, sizeof u8);
    assert_int_equal(st_get_f32(&f, "f.empty", NULL, 0), EBM_STATUS_OK);

    const st_tensor *t = st_find(&f, "e.u8");
    assert_non_null(t);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[3], 5);
    assert_int_equal(st_find(&f, "d.i64")->ndim, 0);
    assert_int_equal(st_numel(st_find(&f, "d.i64")), 1);
    assert_int_equal(st_numel(st_find(&f, "f.empty")), 0);

    /* Layout the reference loader insists on: data back to back from 0 to the end, blob
     * 8-byte aligned, header JSON with __metadata__ first. */
    uint64_t n;
    memcpy(&n, f.file, 8);
    assert_int_equal((8 + n) % 8, 0);
    assert_int_equal(f.blob_len, 24 + 32 + 16 + 8 + 5);
    assert_int_equal(st_find(&f, "a.f32")->begin, 0);
    assert_int_equal(st_find(&f, "e.u8")->end, f.blob_len);
    assert_memory_equal(f.file + 8, "{\"__metadata__\":", 16);
    st_free(&f);
    st_free(&f); /* idempotent on a freed file */
}

static void test_parse_from_memory_accepts_padding_holes_and_empty_header(void **state) {
    /* Trailing spaces (padding), a hole before the data, an empty tensor at any offset. */
    const char *h = "  {\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
                    "\"z\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[6,6]}}   \n";
    size_t n = strlen(h);
    uint8_t buf[256] = {0};
    uint64_t n64 = n;
    memcpy(buf, &n64, 8);
    memcpy(buf + 8, h, n);
    float v[2] = {7.f, -8.f};
    memcpy(buf + 8 + n + 4, v, 8);
    st_file f;
    assert_int_equal(st_parse(buf, 8 + n + 12, "mem", &f), EBM_STATUS_OK);
    float got[2];
    assert_int_equal(st_get_f32(&f, "x", got, 2), EBM_STATUS_OK);
    assert_memory_equal(got, v, 8);
    st_free(&f);

    const char *empty = "{}";
    memcpy(buf + 8, empty, 2);
    n64 = 2;
    memcpy(buf, &n64, 8);
    assert_int_equal(st_parse(buf, 10, "mem", &f), EBM_STATUS_OK);
    assert_int_equal(f.ntensors, 0);
    st_free(&f);
}

static void test_reader_rejects_malformed_headers_naming_the_field(void **state) {
    static const struct {
        const char *what, *header, *needle;
        size_t bloblen;
    } cases[] = {
        {"non-JSON header", "{not json}", "not valid JSON", 0},
        {"JSON array header", "[1,2]", "not an object", 0},
        {"unknown dtype", "{\"w\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]}}",
         "tensor 'w': unknown dtype 'F16' (known: F32, F64, I32, I64, U8)", 2},
        {"shape/offset mismatch", "{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[16,1,5,5],\"data_offsets\":[0,100]}}",
         "tensor '0.weight': data_offsets [0, 100] but shape [16,1,5,5] of F32 needs 1600 bytes", 100},
        {"offsets past the data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
         "tensor 'w': data_offsets [0, 16] run past the end of the data (8 bytes)", 8},
        {"offsets reversed", "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,4]}}", "end before they begin",
         8},
        {"overlapping offsets",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         "tensors 'a' [0, 8] and 'b' [4, 12] overlap", 12},
        {"negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,0]}}",
         "tensor 'w': shape[0] is not a non-negative integer", 0},
        {"fractional dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,12]}}",
         "tensor 'w': shape[1] is not a non-negative integer", 12},
        {"five dims", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}",
         "shape has 5 dims, at most 4", 1},
        {"shape overflow", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4503599627370496,4503599627370496],\"data_offsets\":[0,0]}}",
         "is too large", 0},
        {"metadata non-string value", "{\"__metadata__\":{\"epochs\":5}}", "\"__metadata__\" entry 'epochs' is not a string",
         0},
        {"metadata not an object", "{\"__metadata__\":[\"a\"]}", "\"__metadata__\" is not an object", 0},
        {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", "key 'k' appears twice", 0},
        {"two __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", "appears 2 times", 0},
        {"duplicate tensor names",
         "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         "tensor name 'w' appears twice", 2},
        {"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", "tensor 'w': \"dtype\" missing", 1},
        {"missing shape", "{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", "tensor 'w': \"shape\" missing", 1},
        {"three offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}",
         "tensor 'w': \"data_offsets\" missing or not [begin, end]", 2},
        {"tensor entry not an object", "{\"w\":3}", "tensor 'w': entry is not an object", 0},
        {"empty tensor name", "{\"\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", "empty name", 1},
        {"bytes after the JSON", "{} x", "bytes after its JSON object (at byte 3)", 0},
    };
    char path[512];
    uint8_t blob[2048] = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_in_dir(path, sizeof path, "bad.safetensors");
        write_st(path, cases[i].header, blob, cases[i].bloblen);
        expect_bad(cases[i].what, path, cases[i].needle);
    }

    /* A name longer than ST_NAME_MAX. */
    char hdr[512], name[201];
    memset(name, 'n', 200);
    name[200] = 0;
    snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
    write_st(path, hdr, blob, 1);
    expect_bad("name too long", path, "name is 200 bytes long, the limit is 127");

    /* A NUL byte inside the header. */
    uint8_t nul[8 + 4] = {4, 0, 0, 0, 0, 0, 0, 0, '{', '}', 0, ' '};
    tu_write_file(path, nul, sizeof nul);
    expect_bad("NUL in header", path, "bytes after its JSON object");
}

static void test_reader_rejects_bad_header_lengths_and_truncation(void **state) {
    char path[512];
    path_in_dir(path, sizeof path, "len.safetensors");
    uint8_t buf[32] = {0};
    uint64_t n;

    tu_write_file(path, buf, 5);
    expect_bad("5-byte file", path, "too short");

    n = 0;
    memcpy(buf, &n, 8);
    memcpy(buf + 8, "{}", 2);
    tu_write_file(path, buf, 10);
    expect_bad("header length 0", path, "header length is 0");

    n = (uint64_t)1 << 40;
    memcpy(buf, &n, 8);
    tu_write_file(path, buf, 10);
    expect_bad("huge header length", path, "above the 100 MB limit");

    n = 1000;
    memcpy(buf, &n, 8);
    tu_write_file(path, buf, 20);
    expect_bad("header length past the end", path, "header length 1000 runs past the end of the file (20 bytes)");

    /* A good file cut short: first in its data, then inside its header. */
    write_fixture(path);
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    uint8_t whole[4096];
    size_t len = fread(whole, 1, sizeof whole, fp);
    fclose(fp);
    tu_write_file(path, whole, len - 3);
    expect_bad("truncated in the data", path, "tensor 'e.u8': data_offsets [80, 85] run past the end of the data (82 bytes)");
    tu_write_file(path, whole, 40);
    expect_bad("truncated in the header", path, "runs past the end of the file (40 bytes)");
}

static void test_get_f32_reports_nan_inf_missing_dtype_and_count(void **state) {
    char path[512];
    path_in_dir(path, sizeof path, "nan.safetensors");
    float v[32];
    for (int i = 0; i < 32; i++) v[i] = (float)i;
    v[17] = NAN;
    float inf[3] = {0.f, 1.f, INFINITY};
    int32_t iv[2] = {1, 2};
    st_writer *w = st_writer_new();
    assert_int_equal(st_writer_add(w, "3.weight", ST_F32, 2, (int64_t[]){4, 8}, v), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "inf", ST_F32, 1, (int64_t[]){3}, inf), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "ints", ST_I32, 1, (int64_t[]){2}, iv), EBM_STATUS_OK);
    assert_int_equal(st_writer_commit(w, path), EBM_STATUS_OK);

    st_file f;
    assert_int_equal(st_read(path, &f), EBM_STATUS_OK); /* reading alone does not look at values */
    float dst[32];
    assert_int_equal(st_get_f32(&f, "3.weight", dst, 32), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "nan.safetensors: tensor '3.weight' holds NaN/Inf at element 17: "
                                              "the checkpoint is corrupt or training diverged"));
    assert_int_equal(st_get_f32(&f, "inf", dst, 3), EBM_STATUS_BAD_FILE);
    assert_non_null(strstr(ebm_last_error(), "at element 2"));
    assert_int_equal(st_get_f32(&f, "x", dst, 1), EBM_STATUS_BAD_FILE);
    assert_non_null(strstr(ebm_last_error(), "tensor 'x' missing"));
    assert_int_equal(st_get_f32(&f, "ints", dst, 2), EBM_STATUS_BAD_FILE);
    assert_non_null(strstr(ebm_last_error(), "tensor 'ints' is I32, expected F32"));
    assert_int_equal(st_get_f32(&f, "3.weight", dst, 16), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "has shape [4,8] (32 elements), expected 16"));
    assert_int_equal(st_get(&f, "ints", ST_I32, iv, 2), EBM_STATUS_OK);
    st_free(&f);
}

static void test_missing_file_or_directory_is_io_error(void **state) {
    char path[512];
    st_file f;
    path_in_dir(path, sizeof path, "does-not-exist.safetensors");
    assert_int_equal(st_read(path, &f), EBM_STATUS_IO);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), path));
    assert_int_equal(st_read(dir, &f), EBM_STATUS_IO);
    assert_non_null(strstr(ebm_last_error(), "not a regular file"));
}

static void test_writer_rejects_bad_names_and_dims(void **state) {
    st_writer *w = st_writer_new();
    float x[4] = {0};
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(st_writer_add(w, "", ST_F32, 1, (int64_t[]){1}, x), EBM_STATUS_BAD_ARG);
    assert_int_equal(st_writer_add(w, "__metadata__", ST_F32, 1, (int64_t[]){1}, x), EBM_STATUS_BAD_ARG);
    assert_int_equal(st_writer_add(w, longname, ST_F32, 1, (int64_t[]){1}, x), EBM_STATUS_BAD_ARG);
    assert_int_equal(st_writer_add(w, "x", ST_F32, 5, (int64_t[]){1, 1, 1, 1, 1}, x), EBM_STATUS_BAD_ARG);
    assert_int_equal(st_writer_add(w, "x", ST_F32, 1, (int64_t[]){-4}, x), EBM_STATUS_BAD_ARG);
    assert_int_equal(st_writer_add(w, "x", ST_F32, 1, (int64_t[]){4}, x), EBM_STATUS_OK);
    assert_int_equal(st_writer_add(w, "x", ST_F32, 1, (int64_t[]){4}, x), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "'x' added twice"));
    st_writer_free(w);
}

static void test_commit_into_missing_directory_is_io_error_naming_path(void **state) {
    char blocker[512], path[600];
    path_in_dir(blocker, sizeof blocker, "plainfile");
    tu_write_file(blocker, "x", 1);
    snprintf(path, sizeof path, "%s/model.safetensors", blocker); /* parent is a file: ENOTDIR, even for root */
    st_writer *w = st_writer_new();
    float x = 1.f;
    assert_int_equal(st_writer_add(w, "x", ST_F32, 0, NULL, &x), EBM_STATUS_OK);
    assert_int_equal(st_writer_commit(w, path), EBM_STATUS_IO);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), path));
    assert_int_equal(count_temp_files(), 0);
}

/* A write that fails half-way (file size limit, as a full disk would) must leave the last
 * good checkpoint intact and no temp file behind. */
static void test_failed_commit_leaves_original_file_untouched(void **state) {
    char path[512];
    path_in_dir(path, sizeof path, "keep.safetensors");
    write_fixture(path);
    uint8_t before[4096], after[4096];
    FILE *fp = fopen(path, "rb");
    size_t nb = fread(before, 1, sizeof before, fp);
    fclose(fp);

    static float big[16384];
    for (int i = 0; i < 16384; i++) big[i] = (float)i;
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 4096;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    st_writer *w = st_writer_new();
    assert_int_equal(st_writer_add(w, "big", ST_F32, 1, (int64_t[]){16384}, big), EBM_STATUS_OK);
    ebm_status s = st_writer_commit(w, path);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    printf("  %s\n", ebm_last_error());
    assert_int_equal(s, EBM_STATUS_IO);
    assert_non_null(strstr(ebm_last_error(), path));

    fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t na = fread(after, 1, sizeof after, fp);
    fclose(fp);
    assert_int_equal(na, nb);
    assert_memory_equal(after, before, nb);
    assert_int_equal(count_temp_files(), 0);
}

/* Our file through Python: the safetensors package where installed, else st_check.py's own
 * reader; either must see the same tensors, shapes and sums as C. */
static void test_python_loader_reads_our_file(void **state) {
    if (access("/usr/bin/python3", X_OK) != 0 || access("scripts/st_check.py", R_OK) != 0) {
        printf("  skipped: needs /usr/bin/python3 and scripts/st_check.py (run from the repository root)\n");
        skip();
    }
    char path[512], cmd[1200];
    path_in_dir(path, sizeof path, "py.safetensors");
    static float w1[16 * 25];
    for (int i = 0; i < 16 * 25; i++) w1[i] = (float)i * 0.125f - 20.f;
    write_fixture(path);
    /* Add a larger conv-shaped tensor in a second file to exercise a 4-dim shape. */
    char path2[512];
    path_in_dir(path2, sizeof path2, "py2.safetensors");
    st_writer *w = st_writer_new();
    assert_int_equal(st_writer_add(w, "0.weight", ST_F32, 4, (int64_t[]){16, 1, 5, 5}, w1), EBM_STATUS_OK);
    assert_int_equal(st_writer_meta(w, "format", "pt"), EBM_STATUS_OK);
    assert_int_equal(st_writer_commit(w, path2), EBM_STATUS_OK);

    const char *files[2] = {path, path2};
    for (int k = 0; k < 2; k++) {
        st_file f;
        assert_int_equal(st_read(files[k], &f), EBM_STATUS_OK);
        snprintf(cmd, sizeof cmd, "/usr/bin/python3 scripts/st_check.py '%s' 2>&1", files[k]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        char line[512];
        int seen = 0;
        while (fgets(line, sizeof line, p)) {
            printf("  py: %s", line);
            if (strncmp(line, "loader:", 7) == 0) continue;
            char name[ST_NAME_MAX], shape[64];
            double sum;
            if (sscanf(line, "%127[^\t]\t%63[^\t]\t%lf", name, shape, &sum) != 3) {
                /* an empty shape (scalar) gives an empty middle field */
                if (sscanf(line, "%127[^\t]\t\t%lf", name, &sum) != 2) fail_msg("unparsable line: %s", line);
                shape[0] = 0;
            }
            const st_tensor *t = st_find(&f, name);
            if (!t) fail_msg("python reports tensor '%s' that C does not have", name);
            char want[64] = "";
            for (int d = 0, o = 0; d < t->ndim; d++)
                o += snprintf(want + o, sizeof want - (size_t)o, "%s%lld", d ? "," : "", (long long)t->shape[d]);
            if (strcmp(want, shape) != 0) fail_msg("tensor '%s': python shape %s, C shape %s", name, shape, want);
            double csum = 0;
            const uint8_t *b = f.blob + t->begin;
            for (size_t i = 0; i < st_numel(t); i++) {
                switch (t->dtype) {
                case ST_F32: { float v; memcpy(&v, b + 4 * i, 4); csum += v; break; }
                case ST_F64: { double v; memcpy(&v, b + 8 * i, 8); csum += v; break; }
                case ST_I32: { int32_t v; memcpy(&v, b + 4 * i, 4); csum += v; break; }
                case ST_I64: { int64_t v; memcpy(&v, b + 8 * i, 8); csum += (double)v; break; }
                case ST_U8: csum += b[i]; break;
                }
            }
            if (!(fabs(sum - csum) <= 1e-9 * (1 + fabs(csum))))
                fail_msg("tensor '%s': python sum %.17g, C sum %.17g", name, sum, csum);
            seen++;
        }
        int rc = pclose(p);
        if (rc != 0) fail_msg("st_check.py failed on %s (status %d)", files[k], rc);
        assert_int_equal(seen, f.ntensors);
        st_free(&f);
    }
}

int main(void) {
    tu_tmpdir(dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_every_dtype_shape_value_and_metadata),
        cmocka_unit_test(test_parse_from_memory_accepts_padding_holes_and_empty_header),
        cmocka_unit_test(test_reader_rejects_malformed_headers_naming_the_field),
        cmocka_unit_test(test_reader_rejects_bad_header_lengths_and_truncation),
        cmocka_unit_test(test_get_f32_reports_nan_inf_missing_dtype_and_count),
        cmocka_unit_test(test_missing_file_or_directory_is_io_error),
        cmocka_unit_test(test_writer_rejects_bad_names_and_dims),
        cmocka_unit_test(test_commit_into_missing_directory_is_io_error_naming_path),
        cmocka_unit_test(test_failed_commit_leaves_original_file_untouched),
        cmocka_unit_test(test_python_loader_reads_our_file),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return rc;
}
