/* test_latent.c - the latent pipeline: MLP/autoencoder gradients against a double-precision
 * reference by finite differences, reconstruction after a short training run on MNIST,
 * MALA on a known 2-D mixture, the latent EBM's sampler and training, checkpoints and the
 * consistency check between the autoencoder and the EBM files. */
#include "testutil.h"

#include <sys/stat.h>

#include <omp.h>

#include "core/common.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "latent/autoencoder.h"
#include "latent/latent_ebm.h"
#include "latent/mlp.h"
#include "sample/langevin.h"

/* ---- double-precision reference of an mlp (same parameter layout) -------------------- */

/* Forward of m's architecture with parameters p (double) on one row x; returns the output
 * (written into out, dims[nlayers] values). */
static void ref_forward(const mlp *m, const double *p, const double *x, double *out) {
    double a[2][1024];
    const double *in = x;
    for (int l = 0; l < m->nlayers; l++) {
        const int In = m->dims[l], Out = m->dims[l + 1];
        assert_true(Out <= 1024);
        double *o = a[l % 2];
        for (int j = 0; j < Out; j++) {
            double s = p[m->b_off[l] + j];
            for (int i = 0; i < In; i++) s += p[m->w_off[l] + (size_t)j * In + i] * in[i];
            o[j] = m->swish[l] ? s / (1.0 + exp(-s)) : s;
        }
        in = o;
    }
    memcpy(out, in, sizeof(double) * m->dims[m->nlayers]);
}

static double ref_bce(double l, double t) { return fmax(l, 0) - l * t + log1p(exp(-fabs(l))); }

/* Mean per-pixel BCE of the autoencoder with encoder params pe, decoder params pd. */
static double ref_ae_loss(const autoencoder *ae, const double *pe, const double *pd, const float *x, int B) {
    double loss = 0, xin[64], z[16], logits[64];
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < ae->in_dim; i++) xin[i] = x[b * ae->in_dim + i];
        ref_forward(&ae->enc, pe, xin, z);
        ref_forward(&ae->dec, pd, z, logits);
        for (int i = 0; i < ae->in_dim; i++) loss += ref_bce(logits[i], xin[i]);
    }
    return loss / ((double)B * ae->in_dim);
}

static double *to_double(const float *p, size_t n) {
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = p[i];
    return d;
}

static void test_autoencoder_gradients_match_double_precision_finite_differences(void **state) {
    (void)state;
    autoencoder ae;
    assert_int_equal(ae_create(&ae, 20, 9, 3, 8, 7), EBM_STATUS_OK);
    const int B = 5;
    float x[5 * 20];
    ebm_rng r = rng_make(3, RNG_STREAM_USER);
    for (int i = 0; i < B * 20; i++) x[i] = rng_uniform(&r) < 0.4 ? 1.0f : 0.0f;
    const double loss = ae_loss_grad(&ae, x, B, NULL);
    double *pe = to_double(ae.enc.params, ae.enc.nparams), *pd = to_double(ae.dec.params, ae.dec.nparams);
    const double ref = ref_ae_loss(&ae, pe, pd, x, B);
    printf("  loss %.9f, double reference %.9f\n", loss, ref);
    assert_true(fabs(loss - ref) < 1e-5);
    /* central differences in double on the reference, h = 1e-5 (error ~h^2, far below float's) */
    const double h = 1e-5;
    float *fd_e = malloc(ae.enc.nparams * sizeof(float)), *fd_d = malloc(ae.dec.nparams * sizeof(float));
    for (int which = 0; which < 2; which++) {
        double *p = which ? pd : pe;
        const size_t n = which ? ae.dec.nparams : ae.enc.nparams;
        float *fd = which ? fd_d : fd_e;
        for (size_t i = 0; i < n; i++) {
            const double keep = p[i];
            p[i] = keep + h;
            const double up = ref_ae_loss(&ae, pe, pd, x, B);
            p[i] = keep - h;
            const double dn = ref_ae_loss(&ae, pe, pd, x, B);
            p[i] = keep;
            fd[i] = (float)((up - dn) / (2 * h));
        }
    }
    /* atol relative to the typical gradient size (~1e-2 here) */
    tu_check_close("encoder grads vs FD", ae.enc.grads, fd_e, ae.enc.nparams, 1e-3, 2e-3);
    tu_check_close("decoder grads vs FD", ae.dec.grads, fd_d, ae.dec.nparams, 1e-3, 2e-3);
    free(fd_e);
    free(fd_d);
    free(pe);
    free(pd);
    ae_free(&ae);
}

static void test_latent_energy_input_gradient_matches_finite_differences(void **state) {
    (void)state;
    latent_ebm le;
    assert_int_equal(lebm_create(&le, 3, 6, 4, 11), EBM_STATUS_OK);
    const int n = 7; /* more rows than max_batch: exercises the chunking */
    float u[7 * 3], E[7], g[7 * 3];
    rng_normal_fill(5, RNG_STREAM_USER, 0, 0, u, n * 3);
    assert_int_equal(lebm_energy(&le, u, n, E, g), EBM_STATUS_OK);
    double *p = to_double(le.net.params, le.net.nparams);
    float fd[7 * 3], Eref[7];
    const double h = 1e-5;
    for (int b = 0; b < n; b++) {
        double x[3], f;
        for (int j = 0; j < 3; j++) x[j] = u[b * 3 + j];
        ref_forward(&le.net, p, x, &f);
        Eref[b] = (float)(f + 0.5 * (x[0] * x[0] + x[1] * x[1] + x[2] * x[2]));
        for (int j = 0; j < 3; j++) {
            double e[2];
            for (int s = 0; s < 2; s++) {
                double y[3] = {x[0], x[1], x[2]};
                y[j] += s ? -h : h;
                ref_forward(&le.net, p, y, &f);
                e[s] = f + 0.5 * (y[0] * y[0] + y[1] * y[1] + y[2] * y[2]);
            }
            fd[b * 3 + j] = (float)((e[0] - e[1]) / (2 * h));
        }
    }
    tu_check_close("E(u) vs double reference", E, Eref, n, 1e-3, 1e-5);
    tu_check_close("dE/du vs FD", g, fd, n * 3, 1e-3, 1e-4);
    free(p);
    lebm_free(&le);
}

/* ---- MNIST: a short training run reconstructs held-out digits ------------------------ */

static int have_mnist(char *dir, size_t len) {
    struct stat st;
    snprintf(dir, len, "%s/mnist", tu_data_dir());
    if (stat(dir, &st) == 0) return 1;
    printf("  skipped: %s/ is absent (run `make data`)\n", dir);
    return 0;
}

/* Bound: 1 epoch over 5000 images, hidden 256, d 4, batch 64, lr 3e-3, seed 1 measured
 * BCE 0.190 / pixel accuracy 0.910 on the first 1000 test images; the marginal baseline
 * (every pixel predicted by its training frequency) is 0.256, an untrained net 0.696. */
#define AE_TEST_BCE_BOUND 0.205
#define AE_TEST_ACC_BOUND 0.90

static void test_short_autoencoder_training_reconstructs_held_out_binarized_digits(void **state) {
    (void)state;
    char dir[512];
    if (!have_mnist(dir, sizeof dir)) skip();
    dataset tr, te;
    assert_int_equal(dataset_load_dir(dir, "train", 0x3ff, 5000, &tr), EBM_STATUS_OK);
    assert_int_equal(dataset_load_dir(dir, "t10k", 0x3ff, 1000, &te), EBM_STATUS_OK);
    const int D = tr.h * tr.w;
    binarize_u8_to01(tr.x, (long)tr.n * D, 128, tr.x);
    binarize_u8_to01(te.x, (long)te.n * D, 128, te.x);
    /* marginal baseline */
    double base = 0;
    for (int i = 0; i < D; i++) {
        double q = 0;
        for (int k = 0; k < tr.n; k++) q += tr.x[(long)k * D + i];
        q = (q + 0.5) / (tr.n + 1.0);
        for (int k = 0; k < te.n; k++) {
            const double t = te.x[(long)k * D + i];
            base -= t * log(q) + (1 - t) * log(1 - q);
        }
    }
    base /= (double)te.n * D;
    autoencoder ae;
    assert_int_equal(ae_create(&ae, D, 256, 4, 64, 1), EBM_STATUS_OK);
    double bce0, acc0, bce, acc;
    ae_evaluate(&ae, te.x, te.n, &bce0, &acc0);
    ebm_rng r = rng_make(1, RNG_STREAM_DATA);
    batcher bt;
    assert_int_equal(batcher_init(&bt, &tr, 64, &r), EBM_STATUS_OK);
    float *xb = malloc(sizeof(float) * 64 * D);
    const double t0 = ebm_now();
    for (int B; (B = batcher_next(&bt, xb, NULL)) > 0;) ae_train_step(&ae, xb, B, 3e-3f, NULL);
    const double secs = ebm_now() - t0;
    ae_evaluate(&ae, te.x, te.n, &bce, &acc);
    printf("  test BCE/pixel %.4f (untrained %.4f, marginal baseline %.4f), accuracy %.4f; epoch %.2f s\n", bce,
           bce0, base, acc, secs);
    assert_true(bce < AE_TEST_BCE_BOUND);
    assert_true(acc > AE_TEST_ACC_BOUND);
    assert_true(bce < 0.8 * base);
    free(xb);
    batcher_free(&bt);
    ae_free(&ae);
    dataset_free(&tr);
    dataset_free(&te);
}

/* ---- MALA on a known 2-D mixture --------------------------------------------------- */

/* Two isotropic Gaussians (std S) at (-1, 0) weight 0.3 and (+1, 0) weight 0.7. */
#define MIX_S 0.6
static const double mix_w[2] = {0.3, 0.7}, mix_mu[2] = {-1.0, 1.0};

static ebm_status mixture_energy(void *ctx, const float *x, int n, float *E, float *g) {
    (void)ctx;
    for (int i = 0; i < n; i++) {
        const double a = x[2 * i], b = x[2 * i + 1];
        double p[2], tot = 0;
        for (int k = 0; k < 2; k++) {
            p[k] = mix_w[k] * exp(-((a - mix_mu[k]) * (a - mix_mu[k]) + b * b) / (2 * MIX_S * MIX_S));
            tot += p[k];
        }
        E[i] = (float)-log(tot);
        double ga = 0;
        for (int k = 0; k < 2; k++) ga += p[k] / tot * (a - mix_mu[k]) / (MIX_S * MIX_S);
        g[2 * i] = (float)ga;
        g[2 * i + 1] = (float)(b / (MIX_S * MIX_S));
    }
    return EBM_STATUS_OK;
}

static void test_mala_reproduces_mode_weights_of_a_2d_gaussian_mixture(void **state) {
    (void)state;
    const int n = 4000, steps = 400;
    float *x = malloc(sizeof(float) * n * 2);
    rng_normal_fill(9, RNG_STREAM_START, 0, 0, x, n * 2);
    langevin_params p = {.mala = 1, .eps = 0.15f, .sigma = -1, .grad_clip = 0, .lo = -INFINITY, .hi = INFINITY,
                         .seed = 9};
    langevin_stats st;
    /* one thread, as the latent EBM runs its chains (latent_ebm.c says why) */
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(langevin_run(mixture_energy, NULL, x, n, 2, steps, &p, &st, NULL, NULL, 0), EBM_STATUS_OK);
    omp_set_num_threads(threads);
    int right = 0;
    double m2 = 0;
    for (int i = 0; i < n; i++) {
        right += x[2 * i] > 0;
        m2 += (double)x[2 * i + 1] * x[2 * i + 1];
    }
    /* P(x > 0) = sum_k w_k Phi(mu_k / S) */
    double want = 0;
    for (int k = 0; k < 2; k++) want += mix_w[k] * 0.5 * erfc(-mix_mu[k] / (MIX_S * sqrt(2.0)));
    const double got = (double)right / n, acc = (double)st.accepted / st.proposed;
    printf("  P(x>0) %.4f (exact %.4f, se %.4f), var(y) %.3f (exact %.3f), acceptance %.3f\n", got, want,
           sqrt(want * (1 - want) / n), m2 / n, MIX_S * MIX_S, acc);
    assert_true(fabs(got - want) < 0.03);
    assert_true(fabs(m2 / n - MIX_S * MIX_S) < 0.03);
    assert_true(acc > 0.0 && acc < 1.0);
    free(x);
}

/* ---- the latent EBM's sampler and training ------------------------------------------ */

static void test_latent_ebm_with_zero_net_samples_gaussian_of_code_mean_and_std(void **state) {
    (void)state;
    latent_ebm le;
    assert_int_equal(lebm_create(&le, 2, 8, 512, 1), EBM_STATUS_OK);
    memset(le.net.params, 0, le.net.nparams * sizeof(float)); /* f = 0: E = |u|^2/2 */
    le.code_mean[0] = 3.0f, le.code_mean[1] = -1.0f;
    le.code_std[0] = 2.0f, le.code_std[1] = 0.5f;
    const int n = 3000;
    float *z = malloc(sizeof(float) * n * 2);
    langevin_params p = {.mala = 1, .eps = 0.3f, .sigma = -1, .lo = -INFINITY, .hi = INFINITY, .seed = 4};
    langevin_stats st;
    assert_int_equal(lebm_sample(&le, n, 50, &p, z, NULL, &st), EBM_STATUS_OK);
    double s[2] = {0}, s2[2] = {0};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < 2; j++) s[j] += z[2 * i + j], s2[j] += (double)z[2 * i + j] * z[2 * i + j];
    for (int j = 0; j < 2; j++) {
        const double mean = s[j] / n, sd = sqrt(s2[j] / n - mean * mean);
        printf("  dim %d: mean %.3f (want %.1f), std %.3f (want %.2f)\n", j, mean, le.code_mean[j], sd,
               le.code_std[j]);
        assert_true(fabs(mean - le.code_mean[j]) < 4 * le.code_std[j] / sqrt(n));
        assert_true(fabs(sd / le.code_std[j] - 1) < 0.05);
    }
    printf("  acceptance %.3f\n", (double)st.accepted / st.proposed);
    free(z);
    lebm_free(&le);
}

/* Data: a 2-D mixture far from Gaussian (two blobs at u1 = +-1.2, std 0.3); standardized as
 * the pipeline does.  CD training must move mass out of the gap between the blobs, where
 * the N(0, I) base alone puts most of it. */
static void test_contrastive_divergence_learns_a_bimodal_code_distribution(void **state) {
    (void)state;
    const int N = 4096, B = 256, K = 4, n = 2000;
    float *z = malloc(sizeof(float) * N * 2), *neg = malloc(sizeof(float) * K * B * 2),
          *s = malloc(sizeof(float) * n * 2);
    rng_normal_fill(2, RNG_STREAM_USER, 0, 0, z, N * 2);
    for (int i = 0; i < N; i++) {
        z[2 * i] = z[2 * i] * 0.3f + (i % 2 ? 1.2f : -1.2f);
        z[2 * i + 1] *= 0.3f;
    }
    latent_ebm le;
    assert_int_equal(lebm_create(&le, 2, 16, K * B, 5), EBM_STATUS_OK);
    lebm_fit_standardization(&le, z, N);
    lebm_standardize(&le, z, N, z);
    lebm_train_params tp = {.samples_per_datapoint = K, .steps = 20, .lr = 1e-2f,
                            .lv = {.mala = 1, .eps = 0.05f, .sigma = -1, .lo = -INFINITY, .hi = INFINITY, .seed = 8}};
    langevin_params sp = {.mala = 1, .eps = 0.05f, .sigma = -1, .lo = -INFINITY, .hi = INFINITY, .seed = 6};
    langevin_stats st;
    /* share of fresh samples in the gap |u1| < 0.4 (the data has ~0.3% there) */
    double gap[2];
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1)
            for (int it = 0; it < 400; it++) {
                lebm_step_stats ss;
                const int off = (it * B) % N;
                assert_int_equal(lebm_train_step(&le, z + (size_t)off * 2, B, &tp, (uint64_t)it, neg, &ss),
                                 EBM_STATUS_OK);
                if (it % 100 == 0) printf("  it %d: E data %.3f, E chains %.3f, acceptance %.3f\n", it, ss.e_pos,
                                          ss.e_neg, ss.acceptance);
            }
        assert_int_equal(lebm_sample(&le, n, 500, &sp, s, NULL, &st), EBM_STATUS_OK);
        int in_gap = 0;
        for (int i = 0; i < n; i++) in_gap += fabsf((s[2 * i] - le.code_mean[0]) / le.code_std[0]) < 0.4f;
        gap[phase] = (double)in_gap / n;
    }
    printf("  share of samples in the gap: %.3f before training, %.3f after (data ~0.003)\n", gap[0], gap[1]);
    assert_true(gap[0] > 0.25);
    assert_true(gap[1] < 0.5 * gap[0]);
    free(z);
    free(neg);
    free(s);
    lebm_free(&le);
}

/* ---- checkpoints -------------------------------------------------------------------- */

static void test_checkpoints_round_trip_and_pair_check_accepts_matching_files(void **state) {
    (void)state;
    char dir[256], ap[300], ep[300];
    tu_tmpdir(dir, sizeof dir);
    snprintf(ap, sizeof ap, "%s/autoencoder.safetensors", dir);
    snprintf(ep, sizeof ep, "%s/latent_ebm.safetensors", dir);
    autoencoder ae, ae2;
    latent_ebm le, le2;
    assert_int_equal(ae_create(&ae, 30, 10, 4, 16, 1), EBM_STATUS_OK);
    assert_int_equal(lebm_create(&le, 4, 8, 16, 2), EBM_STATUS_OK);
    le.code_mean[2] = 0.5f;
    le.code_std[3] = 2.0f;
    ae.enc.adam_m[3] = 0.25f;
    ae.enc.adam_t = ae.dec.adam_t = 17;
    ae_info ai = {.binarize_threshold = 128, .epochs_done = 3, .seed = 42, .test_bce = 0.1, .test_accuracy = 0.9};
    lebm_info li = {.epochs_done = 1, .seed = 42, .ae_fingerprint = ae_fingerprint(&ae), .sampler_mala = 1,
                    .mcmc_steps = 20, .samples_per_datapoint = 8, .step_size = 0.05f, .acceptance = 0.8};
    assert_int_equal(ae_save(&ae, &ai, 1, ap), EBM_STATUS_OK);
    assert_int_equal(lebm_save(&le, &li, 0, ep), EBM_STATUS_OK);
    ae_info ai2;
    lebm_info li2;
    assert_int_equal(ae_load(ap, 16, &ae2, &ai2), EBM_STATUS_OK);
    assert_int_equal(lebm_load(ep, 16, &le2, &li2), EBM_STATUS_OK);
    assert_memory_equal(ae.enc.params, ae2.enc.params, ae.enc.nparams * sizeof(float));
    assert_memory_equal(ae.dec.params, ae2.dec.params, ae.dec.nparams * sizeof(float));
    assert_memory_equal(ae.enc.adam_m, ae2.enc.adam_m, 2 * ae.enc.nparams * sizeof(float));
    assert_memory_equal(le.net.params, le2.net.params, le.net.nparams * sizeof(float));
    assert_memory_equal(le.code_mean, le2.code_mean, 4 * sizeof(float));
    assert_memory_equal(le.code_std, le2.code_std, 4 * sizeof(float));
    assert_int_equal(ae2.enc.adam_t, 17);
    assert_int_equal(ai2.epochs_done, 3);
    assert_int_equal(ai2.seed, 42);
    assert_int_equal(li2.mcmc_steps, 20);
    assert_int_equal(li2.sampler_mala, 1);
    assert_true(li2.step_size == 0.05f);
    assert_int_equal(lebm_check_pair(&ae2, ap, &le2, &li2, ep), EBM_STATUS_OK);
    /* swapped files: named as the wrong kind */
    autoencoder bad;
    assert_int_equal(ae_load(ep, 16, &bad, &ai2), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "expected \"ebm-latent-autoencoder\""));
    ae_free(&ae);
    ae_free(&ae2);
    lebm_free(&le);
    lebm_free(&le2);
    remove(ap);
    remove(ep);
    rmdir(dir);
}

static void test_inconsistent_checkpoint_pair_is_a_clear_error(void **state) {
    (void)state;
    autoencoder ae4, ae4b;
    latent_ebm le2, le4;
    assert_int_equal(ae_create(&ae4, 30, 10, 4, 16, 1), EBM_STATUS_OK);
    assert_int_equal(ae_create(&ae4b, 30, 10, 4, 16, 99), EBM_STATUS_OK);
    assert_int_equal(lebm_create(&le2, 2, 8, 16, 2), EBM_STATUS_OK);
    assert_int_equal(lebm_create(&le4, 4, 8, 16, 2), EBM_STATUS_OK);
    lebm_info li = {.ae_fingerprint = ae_fingerprint(&ae4)};
    /* decoder takes 4-dim codes, EBM models 2-dim ones */
    assert_int_equal(lebm_check_pair(&ae4, "a.safetensors", &le2, &li, "e.safetensors"), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "decoder in a.safetensors takes 4-dim codes"));
    assert_non_null(strstr(ebm_last_error(), "EBM in e.safetensors models 2-dim codes"));
    /* same dims, but trained on another autoencoder's codes */
    assert_int_equal(lebm_check_pair(&ae4b, "b.safetensors", &le4, &li, "e.safetensors"), EBM_STATUS_BAD_FILE);
    printf("  %s\n", ebm_last_error());
    assert_non_null(strstr(ebm_last_error(), "codes of another autoencoder"));
    assert_int_equal(lebm_check_pair(&ae4, "a.safetensors", &le4, &li, "e.safetensors"), EBM_STATUS_OK);
    ae_free(&ae4);
    ae_free(&ae4b);
    lebm_free(&le2);
    lebm_free(&le4);
}

static void test_bad_sizes_are_clear_errors(void **state) {
    (void)state;
    autoencoder ae;
    latent_ebm le;
    assert_int_equal(ae_create(&ae, 784, 0, 4, 8, 1), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--auto_hidden_dim 0"));
    assert_int_equal(ae_create(&ae, 784, 16, 0, 8, 1), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--encoded_dim 0"));
    assert_int_equal(lebm_create(&le, 4, -3, 8, 1), EBM_STATUS_BAD_ARG);
    assert_non_null(strstr(ebm_last_error(), "--ebm_hidden_dim -3"));
}

/* Each test prints its wall time, to keep the binary within its budget (~30 s). */
static double t_start;
static int timer_start(void **state) {
    (void)state;
    t_start = ebm_now();
    return 0;
}
static int timer_stop(void **state) {
    (void)state;
    printf("  (%.2f s)\n", ebm_now() - t_start);
    return 0;
}
#define TIMED(t) cmocka_unit_test_setup_teardown(t, timer_start, timer_stop)

int main(void) {
    const struct CMUnitTest tests[] = {
        TIMED(test_autoencoder_gradients_match_double_precision_finite_differences),
        TIMED(test_latent_energy_input_gradient_matches_finite_differences),
        TIMED(test_short_autoencoder_training_reconstructs_held_out_binarized_digits),
        TIMED(test_mala_reproduces_mode_weights_of_a_2d_gaussian_mixture),
        TIMED(test_latent_ebm_with_zero_net_samples_gaussian_of_code_mean_and_std),
        TIMED(test_contrastive_divergence_learns_a_bimodal_code_distribution),
        TIMED(test_checkpoints_round_trip_and_pair_check_accepts_matching_files),
        TIMED(test_inconsistent_checkpoint_pair_is_a_clear_error),
        TIMED(test_bad_sizes_are_clear_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
