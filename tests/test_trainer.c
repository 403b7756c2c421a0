/* test_trainer.c - training: Adam against torch.optim.Adam, one CPU iteration's parameter
 * gradient against finite differences of the loss (negatives held fixed), the random
 * numbers of trainer.h's contract, exact resume, the divergence guard, the config JSON. */
#include "testutil.h"

#include "core/common.h"
#include "core/net.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "train/adam.h"
#include "train/backend.h"
#include "train/trainer.h"

static char tmp[256];

/* n smooth synthetic 28x28 images in [-1, 1] (blobs), labels i % 10; no files needed. */
static dataset make_data(int n) {
    dataset d = {n, 28, 28, malloc(sizeof(float) * (size_t)n * 784), malloc((size_t)n)};
    for (int i = 0; i < n; i++) {
        float c[2];
        rng_uniform_fill(99, 7, (uint32_t)i, 0, c, 2);
        for (int p = 0; p < 784; p++) {
            float dy = (float)(p / 28) - 8 - 12 * c[0], dx = (float)(p % 28) - 8 - 12 * c[1];
            d.x[(size_t)i * 784 + p] = 2.0f * expf(-(dx * dx + dy * dy) / 18.0f) - 1.0f;
        }
        d.y[i] = (uint8_t)(i % 10);
    }
    return d;
}

static void free_data(dataset *d) {
    free(d->x);
    free(d->y);
}

/* ---- Adam --------------------------------------------------------------------------- */

static void test_adam_matches_torch_three_steps(void **state) {
    (void)state;
    float p[4] = {1.0f, -2.0f, 0.5f, 3.0f}, m[4] = {0}, v[4] = {0};
    const float g[3][4] = {{0.5f, -0.1f, 0.0f, 2.0f}, {0.25f, 0.3f, -1e-3f, -1.0f}, {-0.4f, 0.2f, 1e-3f, 0.5f}};
    adam_params ap = {0.1f, 0.9f, 0.999f, 1e-8f};
    for (int t = 0; t < 3; t++) adam_step(p, g[t], m, v, 4, &ap, (uint64_t)t + 1);
    /* torch 1.13: torch.optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8), same grads */
    const float want_p[4] = {0.7853946089744568f, -2.0158591270446777f, 0.5698944926261902f, 2.8393235206604004f};
    const float want_m[4] = {0.023000000044703484f, 0.03890000283718109f, 1.0000005204346962e-05f, 0.12199999392032623f};
    const float want_v[4] = {0.00047193776117637753f, 0.00013989002036396414f, 1.9990002986247646e-09f,
                             0.005241004284471273f};
    tu_check_close("adam params", p, want_p, 4, 1e-12, 1e-6);
    tu_check_close("adam exp_avg", m, want_m, 4, 1e-12, 1e-6);
    /* 1 - beta2 is computed from the float 0.999f here, from the double 0.999 in torch:
     * 0.00099998713 vs 0.001, a relative 1.3e-5 on the second moment's increment */
    tu_check_close("adam exp_avg_sq", v, want_v, 4, 1e-12, 2e-5);
}

static void test_adam_beta1_zero_first_step_moves_by_lr(void **state) {
    (void)state;
    float p[2] = {0.1f, -0.2f}, m[2] = {0}, v[2] = {0};
    const float g[2] = {3.0f, -0.02f};
    adam_params ap = {1e-4f, 0.0f, 0.999f, 1e-8f};
    adam_step(p, g, m, v, 2, &ap, 1);
    const float want[2] = {0.09989999979734421f, -0.19990000128746033f}; /* torch, betas (0, 0.999) */
    tu_check_close("adam beta1=0 step", p, want, 2, 1e-12, 1e-6);
}

/* ---- one iteration of the CPU backend ------------------------------------------------- */

static double loss_of(net *n, const float *xp, int B, const float *xn, int N, float alpha) {
    float *E = malloc(sizeof(float) * (size_t)(B > N ? B : N));
    double sp = 0, sp2 = 0, sn = 0, sn2 = 0;
    assert_int_equal(net_energy(n, xp, B, NULL, E, NULL), EBM_STATUS_OK);
    for (int i = 0; i < B; i++) sp += E[i], sp2 += (double)E[i] * E[i];
    assert_int_equal(net_energy(n, xn, N, NULL, E, NULL), EBM_STATUS_OK);
    for (int j = 0; j < N; j++) sn += E[j], sn2 += (double)E[j] * E[j];
    free(E);
    return sp / B - sn / N + alpha * (sp2 / B + sn2 / N);
}

static void test_train_step_gradient_matches_finite_differences(void **state) {
    (void)state;
    const int B = 8, N = 8, D = 784, S = 4096;
    const uint64_t iter = 5, seed = 11;
    net *n;
    assert_int_equal(net_create(&n, "cnn-small", 3), EBM_STATUS_OK);
    train_config c;
    train_config_default(&c);
    train_hparams hp = c.hp;
    hp.batch = B, hp.n_samples = N, hp.steps = 3, hp.buffer_size = S, hp.reinit = 0.5f, hp.lr = 1e-3f;
    hp.lv.seed = seed;
    dataset d = make_data(B);
    train_backend be;
    assert_int_equal(backend_cpu_create(n, &hp, &be), EBM_STATUS_OK);
    float *theta0 = malloc(sizeof(float) * n->nparams);
    memcpy(theta0, n->params, sizeof(float) * n->nparams);
    train_step_stats st;
    assert_int_equal(be.train_step(be.ctx, d.x, NULL, B, &hp, iter, &st), EBM_STATUS_OK);
    float *g = malloc(sizeof(float) * n->nparams);
    memcpy(g, n->grads, sizeof(float) * n->nparams);

    /* the update is one Adam step from zero moments with t = iter + 1 */
    float *want = malloc(sizeof(float) * n->nparams), *m0 = calloc(n->nparams, 4), *v0 = calloc(n->nparams, 4);
    memcpy(want, theta0, sizeof(float) * n->nparams);
    adam_params ap = {hp.lr, hp.beta1, hp.beta2, hp.adam_eps};
    adam_step(want, g, m0, v0, n->nparams, &ap, iter + 1);
    assert_memory_equal(want, n->params, sizeof(float) * n->nparams);

    /* positives and negatives rebuilt from trainer.h's contract */
    float *buffer = malloc(sizeof(float) * (size_t)S * D), *xp = malloc(sizeof(float) * (size_t)B * D),
          *xn = malloc(sizeof(float) * (size_t)N * D);
    assert_int_equal(be.pull(be.ctx, n, buffer), EBM_STATUS_OK);
    for (int i = 0; i < B; i++) {
        float z[784];
        rng_normal_fill(seed, TRAIN_STREAM_POS, (uint32_t)iter, (uint32_t)i, z, D);
        for (int k = 0; k < D; k++)
            xp[i * D + k] = fminf(fmaxf(d.x[i * D + k] + hp.data_noise * z[k], -1.0f), 1.0f);
    }
    int slots[8], fresh = 0;
    for (int j = 0; j < N; j++) {
        slots[j] = (int)(rng_uniform_at(seed, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 0) * S);
        for (int q = 0; q < j; q++) assert_int_not_equal(slots[q], slots[j]); /* no collision at this seed */
        fresh += rng_uniform_at(seed, TRAIN_STREAM_BUFFER, (uint32_t)iter, (uint32_t)j, 1) < hp.reinit;
        memcpy(xn + j * D, buffer + (size_t)slots[j] * D, sizeof(float) * D);
    }
    printf("  %d of %d chains re-initialised\n", fresh, N);
    /* a slot nobody picked still holds its initial noise (b = 1) */
    float u[784];
    rng_uniform_fill(seed, RNG_STREAM_START, 17, 1, u, D);
    for (int k = 0; k < D; k++) u[k] = -1.0f + 2.0f * u[k];
    int picked17 = 0;
    for (int j = 0; j < N; j++) picked17 |= slots[j] == 17;
    if (!picked17) assert_memory_equal(u, buffer + (size_t)17 * D, sizeof(float) * D);

    memcpy(n->params, theta0, sizeof(float) * n->nparams);
    double L0 = loss_of(n, xp, B, xn, N, hp.alpha);
    printf("  loss: backend %.8f, rebuilt %.8f\n", st.loss, L0);
    assert_true(fabs(L0 - st.loss) <= 1e-5 * (1 + fabs(L0)));
    double g2 = 0, gmax = 0;
    for (size_t i = 0; i < n->nparams; i++) g2 += (double)g[i] * g[i], gmax = fmax(gmax, fabs(g[i]));
    assert_true(fabs(sqrt(g2) - st.grad_norm) <= 1e-4 * sqrt(g2));

    /* central differences on 48 parameters spread over every tensor */
    const double h = 2e-3;
    double worst = 0;
    size_t wi = 0;
    for (int t = 0; t < 48; t++) {
        size_t i = (size_t)((double)t / 48 * (double)n->nparams) + (size_t)t % 7;
        float keep = n->params[i];
        n->params[i] = keep + (float)h;
        double lp = loss_of(n, xp, B, xn, N, hp.alpha);
        n->params[i] = keep - (float)h;
        double lm = loss_of(n, xp, B, xn, N, hp.alpha);
        n->params[i] = keep;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - g[i]) / (1e-2 * gmax + fabs(fd));
        if (err > worst) worst = err, wi = i;
    }
    printf("  finite differences: worst normalized error %.3e at param %zu (analytic %.6g), max |g| %.3g\n", worst, wi,
           g[wi], gmax);
    assert_true(worst < 3e-2);

    be.destroy(be.ctx);
    net_free(n);
    free(theta0), free(g), free(want), free(m0), free(v0), free(buffer), free(xp), free(xn);
    free_data(&d);
}

/* ---- resume ---------------------------------------------------------------------------- */

static train_config tiny_config(void) {
    train_config c;
    train_config_default(&c);
    c.hp.batch = 8;
    c.hp.n_samples = 6;
    c.hp.steps = 3;
    c.hp.buffer_size = 64;
    c.hp.reinit = 0.2f;
    c.hp.lr = 1e-3f;
    c.seed = 5;
    c.iters = 6;
    return c;
}

static void run_iters(trainer *t, int k) {
    train_step_stats st;
    for (int i = 0; i < k; i++) assert_int_equal(trainer_step(t, &st), EBM_STATUS_OK);
}

/* 6 iterations on 2 threads equal 3 on 1 thread + resume + 3 on 3 threads, bit for bit:
 * batches of 40 (3 gradient groups, net.c) so that the thread counts really split them. */
static void test_resume_continues_bit_for_bit(void **state) {
    (void)state;
    dataset d = make_data(200); /* 5 batches per epoch: the 6 iterations cross an epoch */
    train_config c = tiny_config();
    c.hp.batch = c.hp.n_samples = 40;
    char path[512];
    snprintf(path, sizeof path, "%s/half.safetensors", tmp);

    trainer *a, *b, *r;
    assert_int_equal(trainer_create(&c, &d, (train_place){-1, 1, 2, 0}, &a), EBM_STATUS_OK);
    run_iters(a, 6);
    assert_int_equal(trainer_create(&c, &d, (train_place){-1, 1, 1, 0}, &b), EBM_STATUS_OK);
    run_iters(b, 3);
    assert_int_equal(trainer_save(b, path), EBM_STATUS_OK);
    trainer_free(b);

    train_config pc;
    uint64_t it;
    assert_int_equal(trainer_peek(path, &pc, &it, NULL), EBM_STATUS_OK);
    assert_int_equal(it, 3);
    assert_int_equal(pc.hp.buffer_size, 64);
    assert_true(pc.hp.lr == c.hp.lr && pc.hp.lv.eps == c.hp.lv.eps && pc.seed == c.seed);
    assert_int_equal(trainer_resume(path, &pc, &d, (train_place){-1, 1, 3, 0}, &r), EBM_STATUS_OK);
    assert_int_equal(trainer_iteration(r), 3);
    run_iters(r, 3);
    assert_int_equal(trainer_iteration(r), 6);

    net *na = trainer_net(a), *nr = trainer_net(r);
    assert_memory_equal(na->params, nr->params, sizeof(float) * na->nparams);
    assert_memory_equal(na->adam_m, nr->adam_m, sizeof(float) * na->nparams);
    assert_memory_equal(na->adam_v, nr->adam_v, sizeof(float) * na->nparams);
    float *ba = malloc(sizeof(float) * 64 * 784), *br = malloc(sizeof(float) * 64 * 784);
    assert_int_equal(trainer_buffer(a, ba), EBM_STATUS_OK);
    assert_int_equal(trainer_buffer(r, br), EBM_STATUS_OK);
    assert_memory_equal(ba, br, sizeof(float) * 64 * 784);

    /* a training checkpoint is also a plain model */
    net *plain;
    assert_int_equal(ckpt_load_model(path, &plain), EBM_STATUS_OK);
    assert_string_equal(plain->spec, na->spec);
    net_free(plain);

    free(ba), free(br);
    trainer_free(a);
    trainer_free(r);
    free_data(&d);
}

static void test_resume_refuses_changed_buffer_and_plain_models(void **state) {
    (void)state;
    dataset d = make_data(40);
    train_config c = tiny_config();
    char path[512], model[512];
    snprintf(path, sizeof path, "%s/ref.safetensors", tmp);
    snprintf(model, sizeof model, "%s/plain.safetensors", tmp);
    trainer *t;
    assert_int_equal(trainer_create(&c, &d, (train_place){-1, 1, 1, 0}, &t), EBM_STATUS_OK);
    run_iters(t, 1);
    assert_int_equal(trainer_save(t, path), EBM_STATUS_OK);
    assert_int_equal(ckpt_save(model, trainer_net(t), CKPT_FORMAT_MODEL, NULL, 0, NULL, 0), EBM_STATUS_OK);
    trainer_free(t);

    train_config changed = c;
    changed.hp.buffer_size = 128;
    assert_int_equal(trainer_resume(path, &changed, &d, (train_place){-1, 1, 1, 0}, &t), EBM_STATUS_BAD_ARG);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "--buffer"));
    assert_null(t);
    assert_int_equal(trainer_resume(model, &c, &d, (train_place){-1, 1, 1, 0}, &t), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "cannot resume"));
    free_data(&d);
}

/* ---- divergence guard ------------------------------------------------------------------ */

static void test_absurd_lr_stops_with_hint_and_keeps_checkpoint(void **state) {
    (void)state;
    dataset d = make_data(40);
    train_config c = tiny_config();
    char path[512];
    snprintf(path, sizeof path, "%s/good.safetensors", tmp);
    trainer *t;
    assert_int_equal(trainer_create(&c, &d, (train_place){-1, 1, 1, 0}, &t), EBM_STATUS_OK);
    run_iters(t, 1);
    assert_int_equal(trainer_save(t, path), EBM_STATUS_OK);
    trainer_free(t);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *before = malloc((size_t)len);
    assert_int_equal(fread(before, 1, (size_t)len, f), (size_t)len);
    fclose(f);

    c.hp.lr = 1e6f;
    c.iters = 50;
    assert_int_equal(trainer_create(&c, &d, (train_place){-1, 1, 1, 0}, &t), EBM_STATUS_OK);
    train_run_opts o = {.out = path, .checkpoint_every = 0};
    ebm_status s = trainer_run(t, &o);
    printf("  %s\n", ebm_last_error());
    assert_int_equal(s, EBM_STATUS_DIVERGED);
    assert_true(trainer_iteration(t) < 50);
    assert_non_null(strstr(ebm_last_error(), "diverged at iteration"));
    assert_non_null(strstr(ebm_last_error(), "lower --lr"));
    assert_non_null(strstr(ebm_last_error(), path));
    trainer_free(t);

    f = fopen(path, "rb");
    assert_non_null(f);
    char *after = malloc((size_t)len + 1);
    assert_int_equal(fread(after, 1, (size_t)len + 1, f), (size_t)len);
    fclose(f);
    assert_memory_equal(before, after, (size_t)len);
    free(before), free(after);
    free_data(&d);
}

/* ---- configuration ----------------------------------------------------------------------- */

static void test_config_json_round_trip(void **state) {
    (void)state;
    train_config c = tiny_config(), r;
    c.seed = 18446744073709551557ull; /* beyond 2^53: must survive as a string */
    c.hp.lr = 3.3e-5f;
    c.hp.lv.sigma = -1.0f;
    c.hp.conditional = 1;
    snprintf(c.arch, sizeof c.arch, "cnn-small-cond");
    snprintf(c.digits, sizeof c.digits, "5,7");
    c.limit = 300;
    c.lr_cosine = 1, c.lr_final = 1e-6f;
    char *j = train_config_to_json(&c);
    assert_non_null(j);
    train_config_default(&r);
    assert_int_equal(train_config_from_json(j, &r), EBM_STATUS_OK);
    free(j);
    assert_true(r.seed == c.seed && r.hp.lr == c.hp.lr && r.hp.lv.sigma == c.hp.lv.sigma);
    assert_true(r.hp.batch == c.hp.batch && r.hp.n_samples == c.hp.n_samples && r.hp.steps == c.hp.steps);
    assert_true(r.hp.buffer_size == c.hp.buffer_size && r.hp.reinit == c.hp.reinit && r.hp.conditional == 1);
    assert_true(r.hp.alpha == c.hp.alpha && r.hp.beta2 == c.hp.beta2 && r.hp.lv.grad_clip == c.hp.lv.grad_clip);
    assert_true(r.limit == 300 && r.iters == c.iters);
    assert_true(r.lr_cosine == 1 && r.lr_final == 1e-6f);
    assert_string_equal(r.arch, "cnn-small-cond");
    assert_string_equal(r.digits, "5,7");
    assert_int_equal(train_config_from_json("[1,2]", &r), EBM_STATUS_BAD_FILE);
    c.hp.reinit = 1.5f;
    assert_int_equal(train_config_check(&c), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--reinit"));
}

/* iters CPU training steps of a fresh cnn-small-cond (seed 3) on x, y under h: the last
 * step's stats in *st, the parameters after it returned (malloc'd; *np of them). */
static float *cond_net_steps(const train_hparams *h, const float *x, const int *y, int B, int iters,
                             train_step_stats *st, size_t *np) {
    net *n;
    assert_int_equal(net_create(&n, "cnn-small-cond", 3), EBM_STATUS_OK);
    train_backend be;
    assert_int_equal(backend_cpu_create(n, h, &be), EBM_STATUS_OK);
    for (int it = 0; it < iters; it++)
        assert_int_equal(be.train_step(be.ctx, x, y, B, h, (uint64_t)it, st), EBM_STATUS_OK);
    float *p = malloc(sizeof(float) * n->nparams);
    memcpy(p, n->params, sizeof(float) * n->nparams);
    *np = n->nparams;
    be.destroy(be.ctx);
    net_free(n);
    return p;
}

/* Conditional chains are drawn for the training digits only (trainer.h, random numbers 2):
 * with the head's weights zeroed and bias b_y = y, chain j's energy is -y_j, so mean E- is
 * minus the mean label, checked against the draws trainer.h specifies: c[(int)(u_j * nc)]
 * for digits {3, 5}, and (int)(u_j * 10), the labels of before, for all ten digits. */
static void test_chain_classes(void **state) {
    (void)state;
    const int B = 8, N = 64;
    int c[TRAIN_MAX_CLASSES];
    assert_int_equal(train_chain_classes(0x28, 10, c), 2);
    assert_true(c[0] == 3 && c[1] == 5);
    assert_int_equal(train_chain_classes(0, 10, c), 10);
    assert_int_equal(train_chain_classes(0x3FF, 10, c), 10);
    assert_true(c[0] == 0 && c[9] == 9);
    assert_int_equal(train_chain_classes(0x400, 10, c), 10); /* no digit below the outputs: all */
    train_config cfg;
    train_config_default(&cfg);
    train_hparams hp = cfg.hp;
    hp.batch = B, hp.n_samples = N, hp.steps = 1, hp.buffer_size = 0, hp.lv.seed = 6, hp.conditional = 1;
    dataset d = make_data(B);
    int y[8];
    for (int i = 0; i < B; i++) y[i] = i % 2 ? 5 : 3;
    const uint16_t masks[2] = {0x28, 0};
    for (int k = 0; k < 2; k++) {
        train_hparams h = hp;
        h.classes = masks[k];
        net *n;
        assert_int_equal(net_create(&n, "cnn-small-cond", 3), EBM_STATUS_OK);
        const net_layer *L = &n->layers[n->nlayers - 1];
        memset(n->params + L->w_off, 0, sizeof(float) * L->w_len);
        for (int o = 0; o < 10; o++) n->params[L->b_off + o] = (float)o;
        train_backend be;
        assert_int_equal(backend_cpu_create(n, &h, &be), EBM_STATUS_OK);
        train_step_stats st;
        assert_int_equal(be.train_step(be.ctx, d.x, y, B, &h, 0, &st), EBM_STATUS_OK);
        const int nc = train_chain_classes(h.classes, 10, c);
        double sum = 0;
        int seen = 0;
        for (int j = 0; j < N; j++) {
            const int lab = c[(int)(rng_uniform_at(h.lv.seed, TRAIN_STREAM_BUFFER, 0, (uint32_t)j, 2) * nc)];
            sum += lab;
            seen |= 1 << lab;
        }
        printf("  digits %s: E- %.6g, expected %.6g (labels seen 0x%03x)\n", k ? "all" : "3,5", st.e_neg, -sum / N, seen);
        assert_float_equal(st.e_neg, -sum / N, 1e-5);
        if (k == 0) assert_int_equal(seen, 0x28);
        else assert_true(__builtin_popcount(seen) >= 8);
        be.destroy(be.ctx);
        net_free(n);
    }
    /* the trainer takes the classes from --digits */
    for (int i = 0; i < B; i++) d.y[i] = (uint8_t)y[i];
    train_config tc = cfg;
    tc.hp.batch = B, tc.hp.n_samples = 4, tc.hp.steps = 1, tc.hp.conditional = 1;
    snprintf(tc.arch, sizeof tc.arch, "cnn-small-cond");
    snprintf(tc.digits, sizeof tc.digits, "3,5");
    trainer *t;
    assert_int_equal(trainer_create(&tc, &d, (train_place){-1, 1, 1, 0}, &t), EBM_STATUS_OK);
    assert_int_equal(trainer_config(t)->hp.classes, 0x28);
    trainer_free(t);
    dataset_free(&d);
}

/* --marginal 1 on a conditional model: every positive and chain trains the marginal, which is
 * exactly the unconditional step of the same network (same random numbers), bit for bit; a
 * share of 0.5 differs from both.  --marginal without --conditional is refused. */
static void test_marginal_share(void **state) {
    (void)state;
    const int B = 8, N = 6;
    train_config c;
    train_config_default(&c);
    train_hparams hp = c.hp;
    hp.batch = B, hp.n_samples = N, hp.steps = 2, hp.buffer_size = 0, hp.lr = 1e-3f, hp.lv.seed = 4;
    dataset d = make_data(B);
    int y[8];
    for (int i = 0; i < B; i++) y[i] = i % 10;
    float *p[3];
    size_t np;
    train_step_stats st[3];
    const float share[3] = {1.0f, 0.0f, 0.5f};
    for (int k = 0; k < 3; k++) {
        train_hparams h = hp;
        h.conditional = k != 1, h.marginal = h.marginal_chains = k == 1 ? 0 : share[k];
        int yk[8];
        for (int i = 0; i < B; i++) yk[i] = i < train_marginal_count(h.marginal, B) ? -1 : y[i];
        p[k] = cond_net_steps(&h, d.x, h.conditional ? yk : NULL, B, 2, &st[k], &np);
    }
    assert_memory_equal(p[0], p[1], sizeof(float) * np);
    assert_memory_not_equal(p[2], p[1], sizeof(float) * np);
    assert_true(st[0].loss == st[1].loss && st[0].e_neg == st[1].e_neg && st[2].loss != st[1].loss);
    printf("  loss: marginal 1 %.7g = unconditional %.7g; marginal 0.5 %.7g\n", st[0].loss, st[1].loss, st[2].loss);
    for (int k = 0; k < 3; k++) free(p[k]);
    dataset_free(&d);
    c.hp.marginal = 0.5f;
    assert_int_equal(train_config_check(&c), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--marginal 0.5 needs --conditional"));
    c.hp.conditional = 1, c.hp.marginal = 1.5f;
    assert_int_equal(train_config_check(&c), EBM_STATUS_BAD_ARG);
}

/* The joint likelihood (--marginal 0 --marginal-chains 1): one step from the same parameters
 * has the labelled positives of the conditional step (E+ bit for bit) and the chains of the
 * marginal step (E- bit for bit), and a loss and update unlike either.  An old checkpoint's
 * config (one "marginal" share) gives both shares that value. */
static void test_joint_likelihood(void **state) {
    (void)state;
    const int B = 8, N = 6;
    train_config c;
    train_config_default(&c);
    train_hparams hp = c.hp;
    hp.batch = B, hp.n_samples = N, hp.steps = 3, hp.buffer_size = 0, hp.lr = 1e-3f, hp.lv.seed = 5;
    hp.conditional = 1;
    dataset d = make_data(B);
    int y[8], ym[8];
    for (int i = 0; i < B; i++) y[i] = (3 * i) % 10, ym[i] = -1;
    const float pos_share[3] = {0, 1, 0}, chain_share[3] = {0, 1, 1}; /* conditional, marginal, joint */
    train_step_stats st[3];
    float *p[3];
    size_t np;
    for (int k = 0; k < 3; k++) {
        train_hparams h = hp;
        h.marginal = pos_share[k], h.marginal_chains = chain_share[k];
        p[k] = cond_net_steps(&h, d.x, k == 1 ? ym : y, B, 1, &st[k], &np);
    }
    printf("  E+ %.7g (conditional %.7g)  E- %.7g (marginal %.7g)\n", st[2].e_pos, st[0].e_pos, st[2].e_neg, st[1].e_neg);
    assert_true(st[2].e_pos == st[0].e_pos && st[2].e_neg == st[1].e_neg);
    assert_true(st[2].e_neg != st[0].e_neg && st[2].loss != st[0].loss && st[2].loss != st[1].loss);
    assert_memory_not_equal(p[2], p[0], sizeof(float) * 100);
    for (int k = 0; k < 3; k++) free(p[k]);
    dataset_free(&d);
    train_config r;
    assert_int_equal(train_config_from_json("{\"conditional\":true,\"marginal\":0.25}", &r), EBM_STATUS_OK);
    assert_true(r.hp.marginal == 0.25f && r.hp.marginal_chains == 0.25f);
    assert_int_equal(train_config_from_json("{\"conditional\":true,\"marginal\":0,\"marginal_chains\":1}", &r),
                     EBM_STATUS_OK);
    assert_true(r.hp.marginal == 0 && r.hp.marginal_chains == 1);
    c.hp.conditional = 1, c.hp.marginal_chains = 2;
    assert_int_equal(train_config_check(&c), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--marginal-chains"));
}

/* The cosine schedule: lr at the start, the mean halfway, lr_final at the end, falling. */
static void test_lr_schedule(void **state) {
    (void)state;
    train_config c = tiny_config();
    c.hp.lr = 2e-4f, c.iters = 1000;
    assert_true(trainer_lr(&c, 0) == c.hp.lr && trainer_lr(&c, 999) == c.hp.lr); /* constant by default */
    c.lr_cosine = 1, c.lr_final = 2e-5f;
    assert_true(fabsf(trainer_lr(&c, 0) - 2e-4f) <= 1e-6f * 2e-4f);
    assert_true(fabsf(trainer_lr(&c, 500) - 1.1e-4f) <= 1e-6f * 1.1e-4f);
    assert_true(fabsf(trainer_lr(&c, 1000) - 2e-5f) <= 1e-6f * 2e-5f && trainer_lr(&c, 5000) == trainer_lr(&c, 1000));
    for (uint64_t it = 1; it <= 1000; it++) assert_true(trainer_lr(&c, it) <= trainer_lr(&c, it - 1));
    c.lr_final = 3e-4f;
    assert_int_equal(train_config_check(&c), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--lr-final"));
}

int main(void) {
    tu_tmpdir(tmp, sizeof tmp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_matches_torch_three_steps),
        cmocka_unit_test(test_adam_beta1_zero_first_step_moves_by_lr),
        cmocka_unit_test(test_train_step_gradient_matches_finite_differences),
        cmocka_unit_test(test_resume_continues_bit_for_bit),
        cmocka_unit_test(test_resume_refuses_changed_buffer_and_plain_models),
        cmocka_unit_test(test_absurd_lr_stops_with_hint_and_keeps_checkpoint),
        cmocka_unit_test(test_config_json_round_trip),
        cmocka_unit_test(test_lr_schedule),
        cmocka_unit_test(test_marginal_share),
        cmocka_unit_test(test_joint_likelihood),
        cmocka_unit_test(test_chain_classes),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return failed ? 1 : 0;
}
