/* test_checkpoint.c - models in safetensors files: round trip with metadata, the public
 * model API, a different architecture refused with a clear message, truncated files
 * refused, and the metrics log that goes with a checkpoint. */
#include "testutil.h"

#include "core/common.h"
#include "core/net.h"
#include "io/checkpoint.h"
#include "io/curves.h"
#include "io/metrics.h"
#include "io/safetensors.h"

static char tmp[256];

static void path_in_tmp(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", tmp, name); }

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*len);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void test_round_trip_keeps_every_parameter_and_metadata(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "rt.safetensors");
    net *n, *back;
    assert_int_equal(net_create(&n, "cnn-small", 7), EBM_STATUS_OK);
    float extra[6] = {1, 2, 3, 4, 5, 6};
    ckpt_tensor ex = {"extra", extra, 2, {2, 3}};
    ckpt_meta meta = {"note", "hello"};
    assert_int_equal(ckpt_save(path, n, CKPT_FORMAT_MODEL, &ex, 1, &meta, 1), EBM_STATUS_OK);

    assert_int_equal(ckpt_load_model(path, &back), EBM_STATUS_OK);
    assert_string_equal(back->spec, n->spec);
    assert_int_equal(back->nparams, n->nparams);
    assert_memory_equal(back->params, n->params, sizeof(float) * n->nparams);

    st_file f;
    assert_int_equal(ckpt_open(path, &f), EBM_STATUS_OK);
    assert_string_equal(ckpt_meta_get(&f, "format"), CKPT_FORMAT_MODEL);
    assert_string_equal(ckpt_meta_get(&f, "data_range"), "[-1,1]");
    assert_string_equal(ckpt_meta_get(&f, "ebm_version"), EBM_VERSION);
    assert_string_equal(ckpt_meta_get(&f, "note"), "hello");
    assert_non_null(ckpt_meta_get(&f, "created"));
    const st_tensor *w0 = st_find(&f, "0.weight");
    assert_non_null(w0); /* torch layout: conv [Cout, Cin, K, K] */
    assert_int_equal(w0->ndim, 4);
    assert_int_equal(w0->shape[0], 16);
    assert_int_equal(w0->shape[1], 1);
    assert_int_equal(w0->shape[2], 5);
    assert_non_null(st_find(&f, "11.bias")); /* the last dense layer, index as in nn.Sequential */
    float got[6];
    assert_int_equal(st_get_f32(&f, "extra", got, 6), EBM_STATUS_OK);
    assert_memory_equal(got, extra, sizeof extra);
    st_free(&f);
    net_free(n);
    net_free(back);
}

static void test_public_model_api_saves_loads_and_gives_same_energies(void **state) {
    (void)state;
    char path[512];
    path_in_tmp(path, sizeof path, "api.safetensors");
    ebm_model *m, *b;
    assert_int_equal(ebm_model_create("cnn-small", 3, &m), EBM_STATUS_OK);
    assert_true(ebm_model_num_params(m) > 70000 && ebm_model_num_params(m) < 90000);
    assert_int_equal(ebm_model_save(m, path), EBM_STATUS_OK);
    assert_int_equal(ebm_model_load(path, &b), EBM_STATUS_OK);
    assert_string_equal(ebm_model_spec(m), ebm_model_spec(b));
    float x[2 * 784], e1[2], e2[2];
    for (int i = 0; i < 2 * 784; i++) x[i] = (float)((i * 37) % 200) / 100.0f - 1.0f;
    assert_int_equal(ebm_model_energy(m, x, 2, e1, NULL), EBM_STATUS_OK);
    assert_int_equal(ebm_model_energy(b, x, 2, e2, NULL), EBM_STATUS_OK);
    assert_memory_equal(e1, e2, sizeof e1);

    /* sampling: deterministic for a seed, inside the data range, digit refused by an
     * unconditional model */
    ebm_sample_params p = ebm_sample_params_default();
    p.steps = 5;
    float s1[3 * 784], s2[3 * 784], acc = -1;
    assert_int_equal(ebm_sample(m, &p, -1, 3, s1, &acc), EBM_STATUS_OK);
    assert_int_equal(ebm_sample(b, &p, -1, 3, s2, NULL), EBM_STATUS_OK);
    assert_memory_equal(s1, s2, sizeof s1);
    assert_true(acc == 1.0f);
    for (int i = 0; i < 3 * 784; i++) assert_true(s1[i] >= -1.0f && s1[i] <= 1.0f);
    assert_int_equal(ebm_sample(m, &p, 3, 3, s1, NULL), EBM_STATUS_BAD_ARG);
    printf("  %s\n", ebm_last_error());
    ebm_model_free(m);
    ebm_model_free(b);
}

static void test_other_architecture_is_refused_with_both_specs(void **state) {
    (void)state;
    char path[512], lying[512];
    path_in_tmp(path, sizeof path, "small.safetensors");
    path_in_tmp(lying, sizeof lying, "lying.safetensors");
    net *small, *big, *out = NULL;
    assert_int_equal(net_create(&small, "in:1x28x28,conv:8:5:2:4,swish,flatten,dense:1", 1), EBM_STATUS_OK);
    assert_int_equal(net_create(&big, "cnn-small", 1), EBM_STATUS_OK);
    assert_int_equal(ckpt_save(path, small, CKPT_FORMAT_MODEL, NULL, 0, NULL, 0), EBM_STATUS_OK);

    st_file f;
    assert_int_equal(ckpt_open(path, &f), EBM_STATUS_OK);
    assert_int_equal(ckpt_load_params(&f, big), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "architecture"));
    assert_non_null(strstr(ebm_last_error(), big->spec));
    assert_non_null(strstr(ebm_last_error(), small->spec));
    st_free(&f);

    /* a file whose metadata claims cnn-small but whose tensors are another net's */
    st_writer *w = st_writer_new();
    char name[64];
    for (int j = 0; j < net_num_tensors(small); j++) {
        int nd;
        int64_t shape[4];
        size_t off, len;
        net_tensor_info(small, j, name, sizeof name, &nd, shape, &off, &len);
        assert_int_equal(st_writer_add(w, name, ST_F32, nd, shape, small->params + off), EBM_STATUS_OK);
    }
    assert_int_equal(st_writer_meta(w, "spec", "cnn-small"), EBM_STATUS_OK);
    assert_int_equal(st_writer_commit(w, lying), EBM_STATUS_OK);
    assert_int_equal(ckpt_load_model(lying, &out), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "shape"));
    assert_non_null(strstr(ebm_last_error(), "0.weight"));
    assert_null(out);
    net_free(small);
    net_free(big);
}

static void test_truncated_or_foreign_files_are_refused(void **state) {
    (void)state;
    char path[512], cut[512];
    path_in_tmp(path, sizeof path, "whole.safetensors");
    path_in_tmp(cut, sizeof cut, "cut.safetensors");
    net *n, *out = NULL;
    assert_int_equal(net_create(&n, "cnn-small", 2), EBM_STATUS_OK);
    assert_int_equal(ckpt_save(path, n, CKPT_FORMAT_MODEL, NULL, 0, NULL, 0), EBM_STATUS_OK);
    size_t len;
    uint8_t *b = read_all(path, &len);
    const size_t cuts[] = {len - 4, len / 2, 100, 8, 3, 0};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        tu_write_file(cut, b, cuts[k]);
        ebm_status s = ckpt_load_model(cut, &out);
        printf("  %zu of %zu bytes: %s\n", cuts[k], len, ebm_last_error());
        assert_int_equal(s, EBM_STATUS_BAD_FILE);
        assert_null(out);
        assert_non_null(strstr(ebm_last_error(), cut));
    }
    /* a valid safetensors file without model tensors */
    st_writer *w = st_writer_new();
    int64_t shape[1] = {2};
    float v[2] = {1, 2};
    assert_int_equal(st_writer_add(w, "something", ST_F32, 1, shape, v), EBM_STATUS_OK);
    assert_int_equal(st_writer_commit(w, cut), EBM_STATUS_OK);
    assert_int_equal(ckpt_load_model(cut, &out), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "not an ebm model"));
    char missing[512];
    path_in_tmp(missing, sizeof missing, "nope.safetensors");
    assert_int_equal(ckpt_load_model(missing, &out), EBM_STATUS_IO);
    free(b);
    net_free(n);
}

static void test_metrics_log_resume_drops_later_lines_and_curves_draw(void **state) {
    (void)state;
    char path[512], png[512];
    path_in_tmp(path, sizeof path, "m.jsonl");
    path_in_tmp(png, sizeof png, "curves.png");
    metrics_log *m;
    assert_int_equal(metrics_open(path, 0, &m), EBM_STATUS_OK);
    for (int i = 1; i <= 10; i++) {
        metrics_row r = {(uint64_t)i, 0.5 * i, -0.01f * i, -0.1f * i, 0.05f * i, 0.3f, 1e-4f};
        assert_int_equal(metrics_append(m, &r), EBM_STATUS_OK);
    }
    metrics_close(m);
    /* resumed from a checkpoint at iteration 6: lines 7..10 go */
    assert_int_equal(metrics_open(path, 6, &m), EBM_STATUS_OK);
    metrics_row r7 = {7, 9.0, 1, 2, 3, 4, 5};
    assert_int_equal(metrics_append(m, &r7), EBM_STATUS_OK);
    metrics_close(m);
    metrics_row *rows;
    int n;
    assert_int_equal(metrics_read(path, &rows, &n), EBM_STATUS_OK);
    assert_int_equal(n, 7);
    for (int i = 0; i < 7; i++) assert_int_equal(rows[i].iteration, (uint64_t)i + 1);
    assert_true(rows[6].time == 9.0 && rows[5].e_pos == -0.1f * 6);
    assert_int_equal(curves_write_png(png, rows, n, "test"), EBM_STATUS_OK);
    size_t len;
    uint8_t *b = read_all(png, &len);
    assert_true(len > 1000 && memcmp(b, "\x89PNG", 4) == 0);
    free(b);
    free(rows);
    tu_write_file(path, "{\"iteration\": 1}\n", 17);
    assert_int_equal(metrics_read(path, &rows, &n), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), ":1:"));
}

int main(void) {
    tu_tmpdir(tmp, sizeof tmp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_every_parameter_and_metadata),
        cmocka_unit_test(test_public_model_api_saves_loads_and_gives_same_energies),
        cmocka_unit_test(test_other_architecture_is_refused_with_both_specs),
        cmocka_unit_test(test_truncated_or_foreign_files_are_refused),
        cmocka_unit_test(test_metrics_log_resume_drops_later_lines_and_curves_draw),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return failed ? 1 : 0;
}
