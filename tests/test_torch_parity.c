/* test_torch_parity.c - the whole network against PyTorch.
 *
 * tests/fixtures/cnn_small{,_cond}_torch.safetensors come from scripts/make_torch_fixture.py: the peer's
 * energy network (torch.nn.Sequential, default init from a fixed seed), 8 inputs in
 * [-1, 1], and float64 references of the energies, dE/dx and every parameter gradient of
 * sum(E).  The weights load by their torch names into a net built from the same spec; every
 * tensor must then match with relative error <= 1e-4, where the error of an element is
 * |ours - torch| / (|torch| + 1e-2 * max|torch over the tensor|): an element a hundred
 * times smaller than the tensor's largest (a gradient summed from much larger terms that
 * cancel) is judged against that scale, since float32 rounding scales with the terms. */
#include "testutil.h"

#include "core/net.h"
#include "io/safetensors.h"

#define TOL 1e-4
#define NB 8

static const char *fixture_dir(void) {
    const char *d = getenv("EBM_FIXTURES");
    return d ? d : "tests/fixtures";
}

static double check_tensor(const char *what, const float *ours, const float *ref, size_t n) {
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)ref[i]));
    return tu_check_close(what, ours, ref, n, 1e-2 * mx, TOL);
}

static float *get(const st_file *f, const char *name, size_t count) {
    float *p = malloc(sizeof(float) * count);
    ebm_status s = st_get_f32(f, name, p, count);
    if (s != EBM_STATUS_OK) fail_msg("fixture tensor %s: %s", name, ebm_last_error());
    return p;
}

/* Opens the fixture, builds the net named in its metadata and loads the torch weights. */
static net *load(const char *file, st_file *f) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", fixture_dir(), file);
    if (st_read(path, f) != EBM_STATUS_OK)
        fail_msg("%s (regenerate with /usr/bin/python3 scripts/make_torch_fixture.py): %s", path, ebm_last_error());
    const char *spec = st_meta(f, "spec");
    assert_non_null(spec);
    net *n = NULL;
    assert_int_equal(net_create(&n, spec, 1), EBM_STATUS_OK);
    for (int j = 0; j < net_num_tensors(n); j++) {
        char name[64];
        int ndim;
        int64_t shape[4];
        size_t off, len;
        net_tensor_info(n, j, name, sizeof name, &ndim, shape, &off, &len);
        const st_tensor *t = st_find(f, name);
        if (!t) fail_msg("%s: no tensor %s", path, name);
        assert_int_equal(t->ndim, ndim);
        for (int d = 0; d < ndim; d++) assert_int_equal(t->shape[d], shape[d]);  /* torch layout as is */
        assert_int_equal(st_get_f32(f, name, n->params + off, len), EBM_STATUS_OK);
    }
    return n;
}

/* Parameter gradients of sum(E) via net_forward + net_backward, dE/df computed here. */
static void param_grads(net *n, const float *x) {
    float *f = malloc(sizeof(float) * NB * n->out_dim), *dout = malloc(sizeof(float) * NB * n->out_dim);
    assert_int_equal(net_forward(n, x, NB, f), EBM_STATUS_OK);
    for (int i = 0; i < NB; i++) {
        const float *fi = f + i * n->out_dim;
        double mx = fi[0], s = 0;
        for (int j = 1; j < n->out_dim; j++) mx = fmax(mx, fi[j]);
        for (int j = 0; j < n->out_dim; j++) s += exp(fi[j] - mx);
        for (int j = 0; j < n->out_dim; j++)  /* E = -f (1 output) or -logsumexp f */
            dout[i * n->out_dim + j] = n->out_dim == 1 ? -1.0f : (float)-(exp(fi[j] - mx) / s);
    }
    memset(n->grads, 0, sizeof(float) * n->nparams);
    net_backward(n, dout, NB, NULL, 1);
    free(f), free(dout);
}

static void run_parity(const char *file, int nthreads) {
    st_file f;
    net *n = load(file, &f);
    net_set_threads(n, nthreads);
    printf("%s (%s, %d threads)\n", file, n->spec, nthreads);
    float *x = get(&f, "input", (size_t)NB * n->in_dim);
    float *E = malloc(sizeof(float) * NB), *dEdx = malloc(sizeof(float) * NB * n->in_dim);
    assert_int_equal(net_energy(n, x, NB, NULL, E, dEdx), EBM_STATUS_OK);
    float *Eref = get(&f, "energy", NB), *dref = get(&f, "dEdx", (size_t)NB * n->in_dim);
    check_tensor("energy", E, Eref, NB);
    check_tensor("dEdx", dEdx, dref, (size_t)NB * n->in_dim);
    param_grads(n, x);
    for (int j = 0; j < net_num_tensors(n); j++) {
        char name[64], gname[80];
        size_t off, len;
        net_tensor_info(n, j, name, sizeof name, NULL, NULL, &off, &len);
        snprintf(gname, sizeof gname, "grad.%s", name);
        float *g = get(&f, gname, len);
        check_tensor(gname, n->grads + off, g, len);
        free(g);
    }
    if (st_find(&f, "labels")) {  /* conditional: E(x, y) = -f(x)[y] */
        const st_tensor *t = st_find(&f, "labels");
        assert_int_equal(t->dtype, ST_I32);
        assert_int_equal(t->end - t->begin, sizeof(int32_t) * NB);
        int y[NB];
        memcpy(y, f.blob + t->begin, sizeof y);
        assert_int_equal(net_energy(n, x, NB, y, E, dEdx), EBM_STATUS_OK);
        float *Ey = get(&f, "energy_y", NB), *dy = get(&f, "dEdx_y", (size_t)NB * n->in_dim);
        check_tensor("energy_y", E, Ey, NB);
        check_tensor("dEdx_y", dEdx, dy, (size_t)NB * n->in_dim);
        free(Ey), free(dy);
    }
    free(x), free(E), free(dEdx), free(Eref), free(dref);
    net_free(n);
    st_free(&f);
}

static void test_cnn_small_matches_torch(void **st) { (void)st; run_parity("cnn_small_torch.safetensors", 1); }
static void test_cnn_small_matches_torch_2_threads(void **st) { (void)st; run_parity("cnn_small_torch.safetensors", 2); }
static void test_cnn_small_cond_matches_torch(void **st) { (void)st; run_parity("cnn_small_cond_torch.safetensors", 1); }
static void test_cnn_small_cond_matches_torch_2_threads(void **st) {
    (void)st;
    run_parity("cnn_small_cond_torch.safetensors", 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cnn_small_matches_torch),
        cmocka_unit_test(test_cnn_small_matches_torch_2_threads),
        cmocka_unit_test(test_cnn_small_cond_matches_torch),
        cmocka_unit_test(test_cnn_small_cond_matches_torch_2_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
