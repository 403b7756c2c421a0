/* cmd_bench.c - `ebm bench`: how fast the backend users run is on this machine.
 *
 * Langevin image-steps/s per batch size, timed through the backend's sample() (the call
 * `ebm sample` makes, with its copies on CUDA): a warm-up call, then calls of `steps` ULA
 * steps from the same uniform noise until the time budget is spent (at least BENCH_MIN_REPS),
 * reporting the median.  The achieved GFLOP/s counts the FLOPs of one image-step from the
 * network's layer table (forward + dE/dx, multiply-add = 2), and is set against a ceiling
 * measured in the same run: on the CPU the OpenBLAS sgemm rate at 512^3 on as many threads.
 * With --train, training iterations/s at batch 128 through the backend's train_step, on
 * random positives (the arithmetic does not depend on what the images show). */
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "core/common.h"
#include "core/rng.h"
#include "io/atomic.h"
#include "train/trainer.h"

#define BENCH_MAX_BATCHES 16
#define BENCH_MAX_BATCH (1 << 20)
#define BENCH_MIN_REPS 3
#define BENCH_MAX_REPS 1000
#define BENCH_TRAIN_BATCH 128 /* the peer recipe's batch (shared/bench) */

typedef struct {
    int reps;
    double median_s, min_s;
} timing;

typedef struct {
    int batch;
    timing t;
    double rate, gflops; /* image-steps/s, GFLOP/s */
} lv_row;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarise(double *v, int n, timing *t) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    t->reps = n;
    t->min_s = v[0];
    t->median_s = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "128,1024" -> out; the count, or -1 after printing what is wrong. */
static int parse_batches(const char *s, int *out) {
    int k = 0;
    const char *p = s;
    while (1) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v <= 0 || v > BENCH_MAX_BATCH || (*end && *end != ',') || k == BENCH_MAX_BATCHES) {
            fprintf(stderr,
                    "ebm bench: --batches expects up to %d batch sizes in 1..%d separated by commas, such as "
                    "128,1024; got '%s'\n",
                    BENCH_MAX_BATCHES, BENCH_MAX_BATCH, s);
            return -1;
        }
        out[k++] = (int)v;
        if (!*end) return k;
        p = end + 1;
    }
}

/* FLOPs of one Langevin image-step: the forward pass plus the backward pass to the input,
 * which runs the same GEMM shapes; activations are left out (under 1 %). */
static double step_flops(const net *n) {
    double f = 0;
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (L->kind == LAYER_CONV) f += 2.0 * L->out_h * L->out_w * L->out_c * (double)L->in_c * L->k * L->k;
        else if (L->kind == LAYER_DENSE) f += 2.0 * L->in_c * L->out_c;
    }
    return 2.0 * f;
}

/* The CPU ceiling: best of 5 OpenBLAS sgemm 512^3 (after 2 warm-ups) on `threads` threads. */
static double sgemm_gflops(int threads) {
    const int N = 512;
    float *a = ebm_alloc(sizeof(float) * N * N), *b = ebm_alloc(sizeof(float) * N * N),
          *c = ebm_alloc(sizeof(float) * N * N);
    double best = 0;
    if (a && b && c) {
        for (int i = 0; i < N * N; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
        const int prev = openblas_get_num_threads();
        openblas_set_num_threads(threads);
        for (int r = 0; r < 7; r++) {
            double t = ebm_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
            t = ebm_now() - t;
            if (r >= 2 && 2.0 * N * N * N / t > best) best = 2.0 * N * N * N / t;
        }
        openblas_set_num_threads(prev);
    }
    ebm_free(a), ebm_free(b), ebm_free(c);
    return best * 1e-9;
}

/* Times be->sample on B chains from the same noise x0: one warm-up call (buffers, thread
 * pool, device set-up), then calls until `seconds` have passed and at least BENCH_MIN_REPS. */
static ebm_status time_sample(train_backend *be, const float *x0, float *x, int B, int dim, int steps,
                              const langevin_params *p, double seconds, timing *t) {
    static double v[BENCH_MAX_REPS];
    int n = 0;
    const size_t bytes = sizeof(float) * (size_t)B * dim;
    double t_end = 0;
    for (int r = -1; n < BENCH_MAX_REPS && (n < BENCH_MIN_REPS || ebm_now() < t_end); r++) {
        memcpy(x, x0, bytes);
        double t0 = ebm_now();
        ebm_status s = be->sample(be->ctx, x, NULL, B, steps, p, NULL, NULL, NULL, 0);
        if (s != EBM_STATUS_OK) return s;
        double dt = ebm_now() - t0;
        if (r < 0) t_end = ebm_now() + seconds;
        else v[n++] = dt;
    }
    summarise(v, n, t);
    return EBM_STATUS_OK;
}

/* Times be->train_step the same way, on B random positives (labels i % classes). */
static ebm_status time_train(train_backend *be, const train_hparams *hp, int dim, int classes, double seconds,
                             timing *t) {
    static double v[BENCH_MAX_REPS];
    const int B = hp->batch;
    float *x = ebm_alloc(sizeof(float) * (size_t)B * dim);
    int *y = classes > 1 ? ebm_alloc(sizeof(int) * (size_t)B) : NULL;
    if (!x || (classes > 1 && !y)) {
        ebm_free(x), ebm_free(y);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d positives", B);
    }
    rng_uniform_fill(1, RNG_STREAM_DATA, 0, 0, x, B * dim);
    for (long i = 0; i < (long)B * dim; i++) x[i] = 2.0f * x[i] - 1.0f;
    for (int i = 0; y && i < B; i++) y[i] = i % classes;
    ebm_status s = EBM_STATUS_OK;
    int n = 0;
    double t_end = 0;
    for (int r = -1; n < BENCH_MAX_REPS && (n < BENCH_MIN_REPS || ebm_now() < t_end); r++) {
        train_step_stats st;
        double t0 = ebm_now();
        s = be->train_step(be->ctx, x, y, B, hp, (uint64_t)(r + 1), &st);
        if (s != EBM_STATUS_OK) break;
        double dt = ebm_now() - t0;
        if (r < 0) t_end = ebm_now() + seconds;
        else v[n++] = dt;
    }
    ebm_free(x), ebm_free(y);
    if (s == EBM_STATUS_OK) summarise(v, n, t);
    return s;
}

/* "43.2 k" style. */
static const char *human(char *buf, size_t len, double v) {
    if (v >= 1e6) snprintf(buf, len, "%.2f M", v * 1e-6);
    else if (v >= 1e3) snprintf(buf, len, "%.1f k", v * 1e-3);
    else snprintf(buf, len, "%.1f", v);
    return buf;
}

static int load_average(double la[3]) {
    FILE *f = fopen("/proc/loadavg", "r");
    int ok = f && fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) == 3;
    if (f) fclose(f);
    return ok;
}

static ebm_status write_text(FILE *f, void *ctx) {
    if (fputs(ctx, f) < 0 || fputc('\n', f) < 0) return ebm_fail(EBM_STATUS_IO, "write failed");
    return EBM_STATUS_OK;
}

static void json_timing(cJSON *o, const timing *t) {
    cJSON_AddNumberToObject(o, "reps", t->reps);
    cJSON_AddNumberToObject(o, "median_s", t->median_s);
    cJSON_AddNumberToObject(o, "min_s", t->min_s);
}

int cmd_bench(int argc, char **argv) {
    const char *C = "bench";
    const char *device_s = "cpu", *batches_s = NULL, *arch = "cnn-small", *json = NULL, *precision = "fp32";
    int steps = 60, train = 0, threads = 0, gpus = 1;
    float seconds = 2.0f;
    arg_opt opts[] = {
        {"device", 0, ARG_STR, &device_s, 0, "cpu|cuda", "the backend to time", 0},
        {"batches", 0, ARG_STR, &batches_s, 0, "B,B,...",
         "batch sizes (default 128,1024 on the CPU, 128,1024,8192 on CUDA)", 0},
        {"steps", 0, ARG_INT, &steps, ARG_POS, "N", "Langevin steps per sample() call and per training iteration", 0},
        {"seconds", 0, ARG_FLOAT, &seconds, ARG_POS, "S",
         "time budget per figure, after a warm-up call (at least 3 timed calls each)", 0},
        {"train", 0, ARG_FLAG, &train, 0, NULL, "also time training iterations (batch 128, 128 negatives)", 0},
        {"gpus", 0, ARG_INT, &gpus, ARG_POS, "N",
         "with --device cuda --train: also train data-parallel on N GPUs at batch 128 per GPU and print the scaling", 0},
        {"precision", 0, ARG_STR, &precision, 0, "fp32|tf32", CLI_PRECISION_HELP, 0},
        {"threads", 0, ARG_INT, &threads, ARG_NONNEG, "N", "CPU threads (0 = all cores)", 0},
        {"arch", 0, ARG_STR, &arch, 0, "SPEC", "network: cnn-small, cnn-small-cond or a layer list", 0},
        {"json", 0, ARG_STR, &json, 0, "FILE", "also write the figures as JSON", 0},
    };
    arg_cmd cmd = {C, "[--device cpu|cuda] [--precision fp32|tf32] [--batches 128,1024] [--steps 60] [--seconds S] [--train] [--json FILE]",
                   "Times the backend that `ebm sample` and `ebm train` run, on this machine: Langevin\n"
                   "image-steps/s per batch size through the backend's sample() (medians of repeated calls after\n"
                   "a warm-up), the GFLOP/s that makes (FLOPs counted from the network's layer table) against a\n"
                   "ceiling measured in the same run (CPU: OpenBLAS sgemm 512^3), and with --train training\n"
                   "iterations/s.  Weights are a fresh initialisation: speed does not depend on them.",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    int device, tf32;
    if ((r = cli_parse_device(C, device_s, &device)) || (r = cli_parse_precision(C, precision, device, &tf32))) return r;
    int batches[BENCH_MAX_BATCHES];
    const int nb = parse_batches(batches_s ? batches_s : device < 0 ? "128,1024" : "128,1024,8192", batches);
    if (nb < 0) return 2;
    if (json && cli_check_writable(C, json)) return 1;

    net *n = NULL;
    ebm_status s = net_create(&n, arch, 0);
    if (s != EBM_STATUS_OK) {
        fprintf(stderr, "ebm bench: --arch %s: %s\n", arch, ebm_last_error());
        return cli_exit_code(s);
    }
    net_set_threads(n, threads);
    /* Every OpenMP loop of the process, not only the network's: the sampler's update loops
     * otherwise take all cores, and with --threads 1 their idle spinning thread cost 4x on a
     * busy 2-core machine (5.4 k against 21.7 k image-steps/s at batch 128). */
    omp_set_num_threads(n->nthreads);
    const double flops = step_flops(n);
    const int dim = n->in_dim;
    train_config tc;
    train_config_default(&tc);
    langevin_params p = tc.hp.lv;
    p.seed = 0, p.chain0 = 0, p.step0 = 0, p.mala = 0;
    int maxb = 0;
    for (int i = 0; i < nb; i++) maxb = batches[i] > maxb ? batches[i] : maxb;
    float *x0 = ebm_alloc(sizeof(float) * (size_t)maxb * dim), *x = ebm_alloc(sizeof(float) * (size_t)maxb * dim);
    lv_row rows[BENCH_MAX_BATCHES];
    timing tt = {0}, tgt = {0};
    train_hparams hg; /* the several-GPU run's */
    train_backend be = {0};
    train_hparams hp;
    memset(&hp, 0, sizeof hp); /* sampling only: no batch, no buffer (as cli_backend) */
    hp.lv = p;
    hp.tf32 = tc.hp.tf32 = tf32;
    if (gpus > 1 && (device < 0 || !train)) {
        fprintf(stderr, "ebm bench: --gpus %d times training on several GPUs: it needs --device cuda and --train\n", gpus);
        ebm_free(x0), ebm_free(x);
        net_free(n);
        return 2;
    }
    /* The backend first, so that a missing GPU is the only thing said. */
    if (!x0 || !x) s = ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d chains", maxb);
    else s = device < 0 ? backend_cpu_create(n, &hp, &be) : backend_cuda_create(n, &hp, device, &be);
    if (s != EBM_STATUS_OK) {
        ebm_free(x0), ebm_free(x);
        net_free(n);
        return cli_fail(C, s);
    }
    double la0[3] = {0}, la1[3] = {0};
    const int have_la = load_average(la0);
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    char threads_txt[32] = "";
    if (device < 0) snprintf(threads_txt, sizeof threads_txt, ", %d thread%s", n->nthreads, n->nthreads == 1 ? "" : "s");
    printf("ebm bench: %s on %s%s%s; %.3f MFLOP per image-step (forward + dE/dx, from the layer table)\n", arch,
           device < 0 ? "cpu" : device_s, tf32 ? ", TF32 chains" : "", threads_txt, flops * 1e-6);
    if (have_la) printf("load average %.2f %.2f %.2f on %ld cores\n", la0[0], la0[1], la0[2], cores);
    fflush(stdout);

    /* The ceiling first, before the chains warm anything up. */
    const double ceiling = device < 0 ? sgemm_gflops(n->nthreads) : 0;
    char hb[32], hb2[32];
    if (device < 0)
        printf("ceiling: OpenBLAS sgemm 512^3 on %d thread%s, measured now: %.1f GFLOP/s = %s image-steps/s\n",
               n->nthreads, n->nthreads == 1 ? "" : "s", ceiling, human(hb, sizeof hb, ceiling * 1e9 / flops));
    else
        printf("ceiling: not measured (the backend interface has no peak probe); GFLOP/s below are achieved rates "
               "only; bench/cuda_bench.sh measures the fp32 FMA peak\n");

    cli_noise_start(x0, maxb, dim, 0, p.lo, p.hi);
    for (int i = 0; s == EBM_STATUS_OK && i < nb; i++) {
        lv_row *rw = &rows[i];
        rw->batch = batches[i];
        s = time_sample(&be, x0, x, rw->batch, dim, steps, &p, seconds, &rw->t);
        if (s != EBM_STATUS_OK) break;
        rw->rate = (double)rw->batch * steps / rw->t.median_s;
        rw->gflops = rw->rate * flops * 1e-9;
        char pct[48] = "";
        if (ceiling > 0) snprintf(pct, sizeof pct, " (%.0f%% of the ceiling)", 100 * rw->gflops / ceiling);
        printf("langevin batch %d: %s image-steps/s, %.1f GFLOP/s%s; median %.1f ms per %d-step sample() call, "
               "fastest %.1f ms, %d calls\n",
               rw->batch, human(hb, sizeof hb, rw->rate), rw->gflops, pct, rw->t.median_s * 1e3, steps,
               rw->t.min_s * 1e3, rw->t.reps);
        fflush(stdout);
    }
    if (be.destroy) be.destroy(be.ctx);
    memset(&be, 0, sizeof be);

    if (s == EBM_STATUS_OK && train) {
        tc.hp.batch = BENCH_TRAIN_BATCH;
        tc.hp.n_samples = BENCH_TRAIN_BATCH;
        tc.hp.steps = steps;
        tc.hp.conditional = n->out_dim > 1;
        s = device < 0 ? backend_cpu_create(n, &tc.hp, &be) : backend_cuda_create(n, &tc.hp, device, &be);
        if (s == EBM_STATUS_OK) s = time_train(&be, &tc.hp, dim, n->out_dim, seconds, &tt);
        if (s == EBM_STATUS_OK)
            printf("train batch %d: %s iterations/s (%d Langevin steps on %d negatives each, %s image-steps/s); "
                   "median %.1f ms per iteration, fastest %.1f ms, %d iterations\n",
                   tc.hp.batch, human(hb, sizeof hb, 1 / tt.median_s), steps, tc.hp.n_samples,
                   human(hb2, sizeof hb2, (double)tc.hp.n_samples * steps / tt.median_s), tt.median_s * 1e3,
                   tt.min_s * 1e3, tt.reps);
        if (be.destroy) be.destroy(be.ctx);
        memset(&be, 0, sizeof be);
    }
    /* the same per-GPU work on `gpus` GPUs: scaling = gpus * it/s(gpus) / it/s(1) */
    if (s == EBM_STATUS_OK && train && gpus > 1) {
        hg = tc.hp;
        hg.batch = BENCH_TRAIN_BATCH * gpus;
        hg.n_samples = BENCH_TRAIN_BATCH * gpus;
        s = backend_cuda_multi_create(n, &hg, device, gpus, &be);
        if (s == EBM_STATUS_OK) s = time_train(&be, &hg, dim, n->out_dim, seconds, &tgt);
        if (s == EBM_STATUS_OK)
            printf("train on %d GPUs, batch %d (%d per GPU): %s iterations/s, scaling %.2fx of %d; median %.1f ms per "
                   "iteration, %d iterations\n",
                   gpus, hg.batch, BENCH_TRAIN_BATCH, human(hb, sizeof hb, 1 / tgt.median_s),
                   gpus * tt.median_s / tgt.median_s, gpus, tgt.median_s * 1e3, tgt.reps);
        if (be.destroy) be.destroy(be.ctx);
    }
    if (s == EBM_STATUS_OK && load_average(la1))
        printf("load average %.2f at the end (%.2f at the start): on a busy machine rerun and compare\n", la1[0],
               la0[0]);

    if (s == EBM_STATUS_OK && json) {
        cJSON *js = cJSON_CreateObject(), *lv = cJSON_AddArrayToObject(js, "langevin");
        cJSON_AddStringToObject(js, "ebm_version", EBM_VERSION);
        cJSON_AddStringToObject(js, "device", device < 0 ? "cpu" : device_s);
        cJSON_AddStringToObject(js, "precision", tf32 ? "tf32" : "fp32");
        if (device < 0) cJSON_AddNumberToObject(js, "threads", n->nthreads);
        cJSON_AddStringToObject(js, "arch", n->spec);
        cJSON_AddNumberToObject(js, "mflop_per_image_step", flops * 1e-6);
        if (ceiling > 0) {
            cJSON *c = cJSON_AddObjectToObject(js, "ceiling");
            cJSON_AddStringToObject(c, "what", "OpenBLAS sgemm 512^3");
            cJSON_AddNumberToObject(c, "gflops", ceiling);
        } else {
            cJSON_AddNullToObject(js, "ceiling");
        }
        cJSON_AddNumberToObject(js, "steps", steps);
        for (int i = 0; i < nb; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "batch", rows[i].batch);
            cJSON_AddNumberToObject(o, "image_steps_per_s", rows[i].rate);
            cJSON_AddNumberToObject(o, "gflops", rows[i].gflops);
            json_timing(o, &rows[i].t);
            cJSON_AddItemToArray(lv, o);
        }
        if (train) {
            cJSON *o = cJSON_AddObjectToObject(js, "train");
            cJSON_AddNumberToObject(o, "batch", tc.hp.batch);
            cJSON_AddNumberToObject(o, "n_samples", tc.hp.n_samples);
            cJSON_AddNumberToObject(o, "iterations_per_s", 1 / tt.median_s);
            json_timing(o, &tt);
        }
        if (train && gpus > 1) {
            cJSON *o = cJSON_AddObjectToObject(js, "train_gpus");
            cJSON_AddNumberToObject(o, "gpus", gpus);
            cJSON_AddNumberToObject(o, "batch", hg.batch);
            cJSON_AddNumberToObject(o, "iterations_per_s", 1 / tgt.median_s);
            cJSON_AddNumberToObject(o, "scaling", gpus * tt.median_s / tgt.median_s);
            json_timing(o, &tgt);
        }
        if (have_la) {
            cJSON *o = cJSON_AddArrayToObject(js, "load_average");
            for (int i = 0; i < 3; i++) cJSON_AddItemToArray(o, cJSON_CreateNumber(la0[i]));
        }
        char *text = cJSON_Print(js);
        s = text ? io_write_atomic(json, write_text, text) : ebm_fail(EBM_STATUS_NOMEM, "out of memory for JSON");
        free(text);
        cJSON_Delete(js);
        if (s == EBM_STATUS_OK) printf("wrote %s\n", json);
    }
    ebm_free(x0);
    ebm_free(x);
    net_free(n);
    return s == EBM_STATUS_OK ? 0 : cli_fail(C, s);
}
