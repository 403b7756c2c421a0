/* cmd_eval.c - `ebm eval`: how good are a model's samples, in numbers.
 *
 * The project's classifier (src/eval/classifier.h; trained once, cached) looks at N samples:
 * FID against the MNIST test set in its feature space, with the floor beside it (N random
 * training images against the same test set: what real digits score at this N), the share
 * classified with confidence > 0.9 and the predicted-class histogram with its entropy.
 * Fresh chains from uniform noise (what a user asking for new digits gets) and the replay
 * buffer of a training checkpoint are reported separately; any IDX file can be measured
 * with --samples.  For the model's energy: the out-of-distribution AUROC on MNIST test vs
 * Fashion-MNIST test and vs uniform noise (higher energy = out of distribution). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "cli.h"
#include "core/common.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "eval/classifier.h"
#include "eval/eval.h"
#include "io/atomic.h"
#include "io/checkpoint.h"

#define MAX_ROWS 6
#define FLOOR_DRAWS 5
#define STREAM_OOD_NOISE (RNG_STREAM_USER + 2) /* uniform-noise images for the OOD AUROC */

typedef struct {
    const char *key;      /* JSON name */
    char name[48];        /* table name */
    eval_figures f;
    double floor;         /* FID of as many random training images vs the test set; NaN if none */
} row;

typedef struct {
    const char *cmd;
    net *clf;
    double clf_acc;
    dataset test, train;
    fid_stats ref;
    int *perm;            /* random order of the training images, for floors */
    uint64_t seed;
    row rows[MAX_ROWS];
    int nrows;
    int floor_n[MAX_ROWS];
    double floor_fid[MAX_ROWS];
    int nfloor;
} eval_ctx;

typedef struct {
    const char *key, *name;
    int n_in, n_out;
    double auroc;
} ood_figure;

static int fail(const eval_ctx *c, ebm_status s) { return cli_fail(c->cmd, s); }

/* The classifier at path, trained on MNIST (and saved there) when the file is missing. */
static int get_classifier(eval_ctx *c, const char *path, const char *data, int threads) {
    if (access(path, F_OK) == 0) {
        ebm_status s = classifier_load(path, &c->clf, &c->clf_acc);
        if (s != EBM_STATUS_OK) return fail(c, s);
        net_set_threads(c->clf, threads);
        return 0;
    }
    if (cli_check_writable(c->cmd, path)) return 1;
    fprintf(stderr, "%s does not exist: training the evaluation classifier once (a few minutes on 2 cores); "
                    "later runs reuse it\n", path);
    ebm_status s = dataset_load_dir(data, "train", 0x3FF, 0, &c->train);
    if (s != EBM_STATUS_OK) return fail(c, s);
    classifier_params p;
    classifier_params_default(&p);
    s = classifier_train(&c->train, &c->test, &p, stderr, &c->clf);
    if (s != EBM_STATUS_OK) return fail(c, s);
    net_set_threads(c->clf, threads);
    s = classifier_accuracy(c->clf, &c->test, &c->clf_acc);
    char command[600];
    snprintf(command, sizeof command, "ebm eval --classifier %s (trains it when missing), data %s", path, data);
    if (s == EBM_STATUS_OK) s = classifier_save(path, c->clf, c->clf_acc, command);
    if (s != EBM_STATUS_OK) return fail(c, s);
    fprintf(stderr, "wrote %s (test accuracy %.2f%%)\n", path, 100 * c->clf_acc);
    return 0;
}

/* FID floor at n: the mean FID of FLOOR_DRAWS disjoint sets of n random MNIST training
 * images against the test set (cached per n).  One draw alone wanders by +-25% at n = 1000:
 * the mean is a steadier yardstick.  figs (may be NULL) gets the first draw's figures with
 * the mean FID. */
static int floor_at(eval_ctx *c, const char *data, int n, double *fid, eval_figures *figs) {
    for (int i = 0; i < c->nfloor && !figs; i++)
        if (c->floor_n[i] == n) {
            *fid = c->floor_fid[i];
            return 0;
        }
    ebm_status s = EBM_STATUS_OK;
    if (!c->train.n) s = dataset_load_dir(data, "train", 0x3FF, 0, &c->train);
    if (s != EBM_STATUS_OK) return fail(c, s);
    if (n > c->train.n) n = c->train.n;
    if (!c->perm) {
        c->perm = ebm_alloc(sizeof(int) * (size_t)c->train.n);
        if (!c->perm) return fail(c, ebm_fail(EBM_STATUS_NOMEM, "out of memory"));
        ebm_rng r = rng_make(c->seed, RNG_STREAM_DATA);
        rng_permutation(&r, c->perm, c->train.n);
    }
    const int D = c->train.h * c->train.w;
    int draws = c->train.n / n < FLOOR_DRAWS ? c->train.n / n : FLOOR_DRAWS;
    float *x = ebm_alloc(sizeof(float) * (size_t)n * D);
    if (!x) return fail(c, ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d images", n));
    double sum = 0;
    for (int k = 0; k < draws && s == EBM_STATUS_OK; k++) {
        for (int i = 0; i < n; i++)
            memcpy(x + (size_t)i * D, c->train.x + (size_t)c->perm[k * n + i] * D, sizeof(float) * D);
        eval_figures f;
        s = eval_images(c->clf, x, n, NULL, &c->ref, &f, NULL);
        sum += f.fid;
        if (k == 0 && figs) *figs = f;
    }
    ebm_free(x);
    if (s != EBM_STATUS_OK) return fail(c, s);
    *fid = sum / draws;
    if (figs) figs->fid = *fid;
    if (c->nfloor < MAX_ROWS) c->floor_n[c->nfloor] = n, c->floor_fid[c->nfloor++] = *fid;
    return 0;
}

/* Evaluates n images x as a new row of the table. */
static int add_row(eval_ctx *c, const char *data, const char *key, const char *name, const float *x, int n,
                   const int *asked) {
    EBM_ASSERT(c->nrows < MAX_ROWS);
    if (n < 2) {
        fprintf(stderr, "ebm %s: %s: %d image%s, FID needs at least 2\n", c->cmd, name, n, n == 1 ? "" : "s");
        return 1;
    }
    row *rw = &c->rows[c->nrows];
    rw->key = key;
    snprintf(rw->name, sizeof rw->name, "%s", name);
    ebm_status s = eval_images(c->clf, x, n, asked, &c->ref, &rw->f, NULL);
    if (s != EBM_STATUS_OK) return fail(c, s);
    int r = floor_at(c, data, n, &rw->floor, NULL);
    if (!r) c->nrows++;
    return r;
}

/* Images of an IDX file (n, 28, 28), the first n at most. */
static int load_idx_samples(eval_ctx *c, const char *path, int n_max, float **x, int *n) {
    idx_array a;
    ebm_status s = idx_read(path, &a);
    if (s != EBM_STATUS_OK) return fail(c, s);
    if (a.ndim != 3 || a.dims[1] != 28 || a.dims[2] != 28) {
        fprintf(stderr, "ebm %s: %s: expected images of 28x28 (an IDX file of shape (n, 28, 28), as `ebm sample --out "
                        "x.idx` writes), got %d dimensions\n", c->cmd, path, a.ndim);
        idx_free(&a);
        return 1;
    }
    *n = (int)a.dims[0] < n_max ? (int)a.dims[0] : n_max;
    *x = ebm_alloc(sizeof(float) * (size_t)*n * 784);
    if (!*x) {
        idx_free(&a);
        return fail(c, ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d images", *n));
    }
    eval_u8_to_float(*x, a.data, (long)*n * 784);
    idx_free(&a);
    return 0;
}

/* The replay buffer of a training checkpoint: up to n of its images, picked at random;
 * *n = 0 when the file has none. */
static int load_buffer(eval_ctx *c, const char *path, float **x, int *n) {
    st_file f;
    ebm_status s = st_read(path, &f);
    if (s != EBM_STATUS_OK) return fail(c, s);
    const st_tensor *t = st_find(&f, "buffer");
    if (!t || t->ndim < 1 || t->shape[0] < 1) {
        st_free(&f);
        *n = 0;
        return 0;
    }
    const int count = (int)t->shape[0];
    if (st_numel(t) != (size_t)count * 784) {
        st_free(&f);
        fprintf(stderr, "ebm %s: %s: the replay buffer does not hold 28x28 images\n", c->cmd, path);
        return 1;
    }
    float *all = ebm_alloc(sizeof(float) * st_numel(t));
    int *perm = ebm_alloc(sizeof(int) * (size_t)count);
    if (!all || !perm) s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for a replay buffer of %d images", count);
    if (s == EBM_STATUS_OK) s = st_get_f32(&f, "buffer", all, st_numel(t));
    st_free(&f);
    if (s == EBM_STATUS_OK) {
        *n = *n < count ? *n : count;
        *x = ebm_alloc(sizeof(float) * (size_t)*n * 784);
        if (!*x) s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d images", *n);
    }
    if (s == EBM_STATUS_OK) {
        ebm_rng r = rng_make(c->seed, RNG_STREAM_DATA);
        rng_permutation(&r, perm, count);
        for (int i = 0; i < *n; i++) memcpy(*x + (size_t)i * 784, all + (size_t)perm[i] * 784, sizeof(float) * 784);
    }
    ebm_free(all);
    ebm_free(perm);
    return s == EBM_STATUS_OK ? 0 : fail(c, s);
}

/* Energies E(x) of n images in one allocation the caller frees. */
static int energies(eval_ctx *c, net *m, const float *x, int n, float **E) {
    *E = ebm_alloc(sizeof(float) * (size_t)n);
    if (!*E) return fail(c, ebm_fail(EBM_STATUS_NOMEM, "out of memory"));
    ebm_status s = net_energy(m, x, n, NULL, *E, NULL);
    return s == EBM_STATUS_OK ? 0 : fail(c, s);
}

/* OOD AUROC of E(x): MNIST test (in) against `out` images (higher energy = OOD). */
static int ood(eval_ctx *c, net *m, const float *E_test, const float *xo, int no, ood_figure *of) {
    float *E = NULL;
    int r = energies(c, m, xo, no, &E);
    if (!r) {
        ebm_status s = metrics_auroc(E, no, E_test, c->test.n, &of->auroc);
        if (s != EBM_STATUS_OK) r = fail(c, s);
    }
    of->n_in = c->test.n;
    of->n_out = no;
    ebm_free(E);
    return r;
}

/* Fresh chains from uniform noise with the model's sampler (per digit for a conditional
 * model: chain i asks for its training digits in turn, i mod 10 when it learnt all ten). */
static int fresh_chains(eval_ctx *c, const char *data, cli_model *m,
                        const cli_sampler_flags *sf, int n, cJSON *js) {
    int device, r;
    int tf32;
    if ((r = cli_parse_device(c->cmd, sf->device, &device)) || (r = cli_parse_precision(c->cmd, sf->precision, device, &tf32)))
        return r;
    langevin_params p;
    if ((r = cli_langevin_params(c->cmd, sf, m, &p))) return r;
    float *x = ebm_alloc(sizeof(float) * (size_t)n * 784);
    int *y = m->conditional ? ebm_alloc(sizeof(int) * (size_t)n) : NULL;
    if (!x || (m->conditional && !y)) {
        ebm_free(x);
        ebm_free(y);
        return fail(c, ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d samples", n));
    }
    for (int i = 0; y && i < n; i++) y[i] = m->classes[i % m->nclasses];
    cli_noise_start(x, n, 784, sf->seed, p.lo, p.hi);
    train_backend be = {0};
    r = cli_backend(c->cmd, m, device, tf32, &be);
    langevin_stats st = {0};
    const double t0 = ebm_now();
    if (!r) {
        const char *per = !y ? "" : m->nclasses == 10 ? " (digit i mod 10 for chain i)" : " (its training digits in turn)";
        fprintf(stderr, "sampling %d fresh chains from uniform noise%s: %d %s steps on %s ...\n", n, per, sf->steps,
                p.mala ? "MALA" : "ULA", be.name);
        ebm_status s = be.sample(be.ctx, x, y, n, sf->steps, &p, &st, NULL, NULL, 0);
        if (s != EBM_STATUS_OK) r = fail(c, s);
    }
    const double dt = ebm_now() - t0;
    if (be.destroy) be.destroy(be.ctx);
    char name[48];
    snprintf(name, sizeof name, "fresh chains (%d steps)", sf->steps);
    if (!r) r = add_row(c, data, "fresh", name, x, n, y);
    ebm_free(x);
    ebm_free(y);
    if (r) return r;
    printf("fresh chains: %d from uniform noise, %d %s steps, eps %g, noise %g, grad clip %g, seed %llu%s (%.1f s on "
           "%s)\n", n, sf->steps, p.mala ? "MALA" : "ULA", p.eps, langevin_sigma(&p), p.grad_clip,
           (unsigned long long)sf->seed, m->conditional ? ", per digit E(x,y)" : "", dt, device < 0 ? "cpu" : "cuda");
    if (p.mala) printf("MALA acceptance rate %.3f\n", st.proposed ? (double)st.accepted / st.proposed : 0.0);
    cJSON *o = cJSON_AddObjectToObject(js, "sampler");
    cJSON_AddStringToObject(o, "kind", p.mala ? "mala" : "ula");
    cJSON_AddNumberToObject(o, "steps", sf->steps);
    cJSON_AddNumberToObject(o, "eps", p.eps);
    cJSON_AddNumberToObject(o, "noise", langevin_sigma(&p));
    cJSON_AddNumberToObject(o, "grad_clip", p.grad_clip);
    cJSON_AddNumberToObject(o, "seconds", dt);
    cJSON_AddStringToObject(o, "device", device < 0 ? "cpu" : "cuda");
    cJSON_AddBoolToObject(o, "per_digit", m->conditional);
    if (p.mala) cJSON_AddNumberToObject(o, "acceptance", st.proposed ? (double)st.accepted / st.proposed : 0.0);
    return 0;
}

/* ---- output ------------------------------------------------------------------------- */

static void num_or_dash(char *buf, size_t len, double v, const char *fmt) {
    if (isnan(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, fmt, v);
}

static void print_row(const row *rw) {
    char fid[16], fl[16], ratio[16], asked[16];
    num_or_dash(fid, sizeof fid, rw->f.fid, "%.3f");
    num_or_dash(fl, sizeof fl, rw->floor, "%.3f");
    num_or_dash(ratio, sizeof ratio, rw->f.fid / rw->floor, "%.1f");
    num_or_dash(asked, sizeof asked, rw->f.asked, "%.3f");
    printf("%-26.26s %6d %9s %7s %7s %9.3f %8.3f %8s  ", rw->name, rw->f.n, fid, fl, ratio, rw->f.confident,
           rw->f.entropy, asked);
    for (int j = 0; j < METRICS_CLASSES; j++) printf(" %d", rw->f.hist[j]);
    printf("\n");
}

static void json_num(cJSON *o, const char *k, double v) {
    if (isnan(v) || isinf(v)) cJSON_AddNullToObject(o, k);
    else cJSON_AddNumberToObject(o, k, v);
}

static void json_row(cJSON *sets, const row *rw) {
    cJSON *o = cJSON_AddObjectToObject(sets, rw->key);
    cJSON_AddStringToObject(o, "name", rw->name);
    cJSON_AddNumberToObject(o, "n", rw->f.n);
    json_num(o, "fid", rw->f.fid);
    json_num(o, "fid_floor", rw->floor);
    json_num(o, "fid_over_floor", rw->f.fid / rw->floor);
    json_num(o, "confident_share", rw->f.confident);
    json_num(o, "class_entropy", rw->f.entropy);
    cJSON_AddItemToObject(o, "class_histogram", cJSON_CreateIntArray(rw->f.hist, METRICS_CLASSES));
    json_num(o, "asked_share", rw->f.asked);
}

static ebm_status write_text(FILE *f, void *ctx) {
    const char *s = ctx;
    if (fputs(s, f) < 0 || fputc('\n', f) < 0) return ebm_fail(EBM_STATUS_IO, "write failed");
    return EBM_STATUS_OK;
}

static void print_table(const eval_ctx *c, const ood_figure *oods, int nood) {
    printf("\n%-26s %6s %9s %7s %7s %9s %8s %8s   %s\n", "set", "N", "FID", "floor", "/floor", "conf>0.9", "entropy",
           "asked", "predicted class counts 0..9");
    for (int i = 0; i < c->nrows; i++) print_row(&c->rows[i]);
    printf("floor: mean FID of %d draws of as many random MNIST training images against the test set;\n"
           "entropy: ln 10 = 2.303 is balanced; asked: share classified as the digit asked for (MNIST test: its\n"
           "label, i.e. the classifier's accuracy)\n", FLOOR_DRAWS);
    if (nood) printf("\nOOD AUROC of E(x) (higher energy = out of distribution):\n");
    for (int i = 0; i < nood; i++) {
        char a[16];
        num_or_dash(a, sizeof a, oods[i].auroc, "%.4f");
        printf("  MNIST test vs %-22s %8s   (%d vs %d images)\n", oods[i].name, a, oods[i].n_in, oods[i].n_out);
    }
}

int cmd_eval(int argc, char **argv) {
    const char *C = "eval";
    const char *model = NULL, *samples = NULL, *json = NULL, *data = "data/mnist", *fashion = "data/fashion";
    const char *clf_path = CLASSIFIER_DEFAULT_PATH;
    int n = 2000, digit_check = -1;
    cli_sampler_flags sf = {-1, NAN, NAN, NAN, "ula", 0, "cpu", 0, "fp32"};
    arg_opt opts[] = {
        {"model", 'm', ARG_STR, &model, 0, "FILE", "model or training checkpoint (.safetensors) to evaluate", 0},
        {"n", 'n', ARG_INT, &n, ARG_POS, "N", "samples per set (and the floor's training images)", 0},
        {"samples", 0, ARG_STR, &samples, 0, "FILE.idx", "also evaluate the images of an IDX file (n, 28, 28)", 0},
        {"digit-check", 0, ARG_INT, &digit_check, ARG_NONNEG, "D",
         "the --samples images were drawn for digit D: report the share classified as D", 0},
        {"json", 0, ARG_STR, &json, 0, "FILE", "also write the figures as JSON", 0},
        {"data", 0, ARG_STR, &data, 0, "DIR", "MNIST directory (test set = reference, training set = floor)", 0},
        {"fashion", 0, ARG_STR, &fashion, 0, "DIR", "Fashion-MNIST directory (out-of-distribution test)", 0},
        {"classifier", 0, ARG_STR, &clf_path, 0, "FILE", "evaluation classifier; trained and saved there if missing", 0},
        CLI_SAMPLER_OPTS(sf),
    };
    arg_cmd cmd = {C, "--model FILE [--n N] [--samples FILE.idx] [--json FILE] [sampler flags]",
                   "Measures sample quality with the project's MNIST classifier: FID against the MNIST test set in its\n"
                   "feature space beside the floor (as many real training images), the share classified with confidence\n"
                   "> 0.9, the predicted-class histogram and its entropy; fresh chains from noise and the replay buffer\n"
                   "separately; and the out-of-distribution AUROC of the energy (MNIST vs Fashion-MNIST and noise).",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!model && !samples) {
        fprintf(stderr, "ebm eval: give --model FILE (a model to sample) and/or --samples FILE.idx (images to measure)\n");
        return 2;
    }
    if (n < 2) {
        fprintf(stderr, "ebm eval: -n must be at least 2 (FID estimates a covariance), got %d\n", n);
        return 2;
    }
    if (digit_check > 9 || (digit_check >= 0 && !samples)) {
        fprintf(stderr, "ebm eval: --digit-check takes a digit 0..9 and goes with --samples FILE.idx (got %d%s)\n",
                digit_check, samples ? "" : ", no --samples");
        return 2;
    }
    if (json && cli_check_writable(C, json)) return 1;

    eval_ctx c = {0};
    c.cmd = C;
    c.seed = sf.seed;
    c.clf_acc = NAN;
    cli_model m = {0};
    cJSON *js = cJSON_CreateObject(), *sets = NULL;
    ood_figure oods[2];
    int nood = 0, ns = 0, have_fashion = 0;
    float *x = NULL, *xs = NULL, *E_test = NULL;
    dataset fd = {0};
    /* everything a user can get wrong is read before the minutes of sampling */
    ebm_status s = dataset_load_dir(data, "t10k", 0x3FF, 0, &c.test);
    if (s != EBM_STATUS_OK) r = fail(&c, s);
    if (!r && c.test.h * c.test.w != 784) {
        fprintf(stderr, "ebm eval: %s: test images are %dx%d, expected MNIST's 28x28\n", data, c.test.h, c.test.w);
        r = 1;
    }
    if (!r && samples) r = load_idx_samples(&c, samples, n, &xs, &ns);
    if (!r && model) r = cli_load_model(C, model, sf.threads, &m);
    if (!r && model && sf.steps < 0) sf.steps = m.sample_steps;
    if (!r && model && m.n->in_dim != 784) {
        fprintf(stderr, "ebm eval: %s takes %d values per image; the evaluation is for 28x28 MNIST models\n", model,
                m.n->in_dim);
        r = 1;
    }
    if (!r && model) {
        s = dataset_load_dir(fashion, "t10k", 0x3FF, 0, &fd);
        if (s == EBM_STATUS_OK && fd.h * fd.w != 784) {
            fprintf(stderr, "ebm eval: %s: images are %dx%d, expected 28x28\n", fashion, fd.h, fd.w);
            r = 1;
        } else if (s == EBM_STATUS_OK) {
            have_fashion = 1;
        } else if (args_given(&cmd, "fashion")) {
            r = fail(&c, s);
        } else { /* the default place is empty: the rest of the report is still worth having */
            fprintf(stderr, "ebm eval: %s; OOD vs Fashion-MNIST skipped (run `make data`, or give --fashion DIR)\n",
                    ebm_last_error());
        }
    }
    if (!r) r = get_classifier(&c, clf_path, data, sf.threads);
    /* reference statistics, and the test set's own figures ("asked" = its labels: accuracy) */
    if (!r) {
        row *rw = &c.rows[c.nrows++];
        rw->key = "mnist_test";
        snprintf(rw->name, sizeof rw->name, "MNIST test (reference)");
        rw->floor = NAN;
        int *y = ebm_alloc(sizeof(int) * (size_t)c.test.n);
        for (int i = 0; y && i < c.test.n; i++) y[i] = c.test.y[i];
        s = y ? eval_images(c.clf, c.test.x, c.test.n, y, NULL, &rw->f, &c.ref)
              : ebm_fail(EBM_STATUS_NOMEM, "out of memory");
        ebm_free(y);
        if (s != EBM_STATUS_OK) r = fail(&c, s);
        else c.clf_acc = rw->f.asked;
        if (!r) printf("classifier %s: test accuracy %.2f%% on %d MNIST test images\n", clf_path, 100 * c.clf_acc,
                       c.test.n);
    }
    if (!r) {
        row *rw = &c.rows[c.nrows];
        rw->key = "mnist_train";
        snprintf(rw->name, sizeof rw->name, "MNIST train (floor)");
        r = floor_at(&c, data, n, &rw->floor, &rw->f);
        if (!r) rw->floor = NAN, c.nrows++;
    }
    if (!r && model) r = fresh_chains(&c, data, &m, &sf, n, js);
    if (!r && model) {
        int nb = n;
        r = load_buffer(&c, model, &x, &nb);
        if (!r && nb) r = add_row(&c, data, "buffer", "replay buffer", x, nb, NULL);
        ebm_free(x);
        x = NULL;
    }
    if (!r && samples) {
        int *asked = digit_check >= 0 ? ebm_alloc(sizeof(int) * (size_t)ns) : NULL;
        for (int i = 0; asked && i < ns; i++) asked[i] = digit_check;
        const char *base = strrchr(samples, '/');
        r = add_row(&c, data, "samples", base ? base + 1 : samples, xs, ns, asked);
        ebm_free(asked);
    }
    /* out-of-distribution detection by the model's energy */
    if (!r && model) r = energies(&c, m.n, c.test.x, c.test.n, &E_test);
    if (!r && model) {
        oods[nood] = (ood_figure){"fashion_mnist", "Fashion-MNIST test", 0, 0, NAN};
        if (have_fashion) r = ood(&c, m.n, E_test, fd.x, fd.n, &oods[nood]);
        nood++;
    }
    if (!r && model) {
        x = ebm_alloc(sizeof(float) * (size_t)n * 784);
        if (!x) r = fail(&c, ebm_fail(EBM_STATUS_NOMEM, "out of memory"));
        else {
            /* not the fresh chains' starting points: a stream of its own */
            for (int i = 0; i < n; i++) {
                float *xi = x + (size_t)i * 784;
                rng_uniform_fill(c.seed, STREAM_OOD_NOISE, (uint32_t)i, 0, xi, 784);
                for (int k = 0; k < 784; k++) xi[k] = 2.0f * xi[k] - 1.0f;
            }
            oods[nood] = (ood_figure){"uniform_noise", "uniform noise", 0, 0, NAN};
            r = ood(&c, m.n, E_test, x, n, &oods[nood++]);
        }
        ebm_free(x);
        x = NULL;
    }
    if (!r) {
        print_table(&c, oods, nood);
        cJSON_AddStringToObject(js, "ebm_version", EBM_VERSION);
        if (model) cJSON_AddStringToObject(js, "model", model);
        if (samples) cJSON_AddStringToObject(js, "samples", samples);
        cJSON_AddNumberToObject(js, "n", n);
        cJSON_AddNumberToObject(js, "seed", (double)sf.seed);
        cJSON *cl = cJSON_AddObjectToObject(js, "classifier");
        cJSON_AddStringToObject(cl, "path", clf_path);
        json_num(cl, "test_accuracy", c.clf_acc);
        sets = cJSON_AddObjectToObject(js, "sets");
        for (int i = 0; i < c.nrows; i++) json_row(sets, &c.rows[i]);
        if (nood) {
            cJSON *o = cJSON_AddObjectToObject(js, "ood_auroc");
            for (int i = 0; i < nood; i++) json_num(o, oods[i].key, oods[i].auroc);
        }
        if (json) {
            char *text = cJSON_Print(js);
            s = text ? io_write_atomic(json, write_text, text) : ebm_fail(EBM_STATUS_NOMEM, "out of memory for JSON");
            free(text);
            if (s != EBM_STATUS_OK) r = fail(&c, s);
            else printf("\nwrote %s\n", json);
        }
    }
    cJSON_Delete(js);
    ebm_free(E_test);
    ebm_free(xs);
    dataset_free(&fd);
    cli_model_free(&m);
    net_free(c.clf);
    fid_stats_free(&c.ref);
    ebm_free(c.perm);
    dataset_free(&c.test);
    dataset_free(&c.train);
    return r;
}
