/* langevin_cpu.c - CPU throughput of one Langevin step of the cnn-small energy: net_energy
 * with dE/dx, then the ULA update x = clamp(x - eps*clip(g) + sigma*xi, -1, 1) with Philox
 * noise (the sampler's recipe).  For each batch size and thread count it times many steps
 * one by one and prints medians, and it measures the floor: the FLOPs of a step (counted
 * from the layer table) at the sgemm rate OpenBLAS reaches on this machine with the same
 * number of threads (512^3).
 *
 * Output: one line per configuration, `ebm batch B threads T steps S step_ms M energy_ms E
 * update_ms U image_steps_per_s R min_step_ms m min_energy_ms e` (medians, then the fastest
 * step, which is what A/B comparisons on a busy machine should look at), and `floor threads T gflops G ...`; bench/cpu_langevin.sh
 * puts them beside PyTorch's.
 *
 * Usage: langevin_cpu [--batches 128,1024] [--threads 1,2] [--seconds 3] */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/net.h"
#include "core/rng.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int parse_list(const char *s, int *out, int max) {
    int k = 0;
    while (*s && k < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0) return -1;
        out[k++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return k;
}

/* FLOPs of one step: forward, plus the backward to the input (the same GEMM sizes, but no
 * parameter gradients), counting multiply-adds as 2. */
static double step_flops(const net *n) {
    double f = 0;
    for (int l = 0; l < n->nlayers; l++) {
        const net_layer *L = &n->layers[l];
        if (L->kind == LAYER_CONV)
            f += 2.0 * L->out_h * L->out_w * L->out_c * (double)L->in_c * L->k * L->k;
        else if (L->kind == LAYER_DENSE)
            f += 2.0 * L->in_c * L->out_c;
    }
    return 2.0 * f;
}

/* Best-of-5 sgemm rate at 512^3 with `threads` OpenBLAS threads. */
static double sgemm_gflops(int threads) {
    const int N = 512;
    float *a = ebm_alloc(sizeof(float) * N * N), *b = ebm_alloc(sizeof(float) * N * N), *c = ebm_alloc(sizeof(float) * N * N);
    for (int i = 0; i < N * N; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    openblas_set_num_threads(threads);
    double best = 0;
    for (int r = 0; r < 7; r++) {
        double t = ebm_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
        t = ebm_now() - t;
        if (r >= 2 && 2.0 * N * N * N / t > best) best = 2.0 * N * N * N / t;
    }
    ebm_free(a), ebm_free(b), ebm_free(c);
    return best * 1e-9;
}

/* One ULA update, chains split over threads (noise is a function of chain and step);
 * scratch holds threads x dim floats. */
static void ula_update(float *x, const float *g, int B, int dim, uint32_t step, int threads, float *scratch) {
    const float eps = 10.0f, sigma = 0.005f, clip = 0.03f;
#pragma omp parallel num_threads(threads)
    {
        float *xi = scratch + (long)omp_get_thread_num() * dim;
#pragma omp for schedule(static)
        for (int c = 0; c < B; c++) {
            rng_normal_fill(0, RNG_STREAM_NOISE, (uint32_t)c, step, xi, dim);
            float *xc = x + (long)c * dim;
            const float *gc = g + (long)c * dim;
            for (int i = 0; i < dim; i++) {
                float gi = gc[i] < -clip ? -clip : (gc[i] > clip ? clip : gc[i]);
                float v = xc[i] - eps * gi + sigma * xi[i];
                xc[i] = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
            }
        }
    }
}

int main(int argc, char **argv) {
    int batches[8] = {128, 1024}, nb = 2, threads[8] = {1, 2}, nt = 2;
    double seconds = 3.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--batches") && i + 1 < argc) nb = parse_list(argv[++i], batches, 8);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nt = parse_list(argv[++i], threads, 8);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--batches 128,1024] [--threads 1,2] [--seconds 3]\n", argv[0]);
            return 2;
        }
        if (nb <= 0 || nt <= 0 || !(seconds > 0)) {
            fprintf(stderr, "%s: bad value for %s\n", argv[0], argv[i - 1]);
            return 2;
        }
    }
    net *n = NULL;
    if (net_create(&n, "cnn-small", 0) != EBM_STATUS_OK) {
        fprintf(stderr, "langevin_cpu: %s\n", ebm_last_error());
        return 1;
    }
    const double flops = step_flops(n);
    printf("# cnn-small: %.3f MFLOP per image-step (forward + input gradient)\n", flops * 1e-6);
    for (int ti = 0; ti < nt; ti++) {
        const double g = sgemm_gflops(threads[ti]);
        printf("floor threads %d gflops %.1f floor_image_steps_per_s %.0f floor_us_per_image_step %.2f\n", threads[ti], g,
               g * 1e9 / flops, flops / (g * 1e9) * 1e6);
    }
    for (int bi = 0; bi < nb; bi++) {
        const int B = batches[bi], dim = n->in_dim;
        float *x = ebm_alloc(sizeof(float) * (size_t)B * dim), *g = ebm_alloc(sizeof(float) * (size_t)B * dim);
        float *E = ebm_alloc(sizeof(float) * (size_t)B);
        int maxt = 1;
        for (int ti = 0; ti < nt; ti++) maxt = threads[ti] > maxt ? threads[ti] : maxt;
        float *scratch = ebm_alloc(sizeof(float) * (size_t)maxt * dim);
        if (!x || !g || !E || !scratch) {
            fprintf(stderr, "langevin_cpu: out of memory for batch %d\n", B);
            return 1;
        }
        for (int ti = 0; ti < nt; ti++) {
            net_set_threads(n, threads[ti]);
            rng_uniform_fill(1, RNG_STREAM_START, 0, 0, x, B * dim);
            for (long i = 0; i < (long)B * dim; i++) x[i] = 2.0f * x[i] - 1.0f;
            for (int w = 0; w < 3; w++) {  /* warm-up: buffers, OpenMP pool, caches */
                if (net_energy(n, x, B, NULL, E, g) != EBM_STATUS_OK) {
                    fprintf(stderr, "langevin_cpu: %s\n", ebm_last_error());
                    return 1;
                }
                ula_update(x, g, B, dim, (uint32_t)w, threads[ti], scratch);
            }
            enum { MAXSTEPS = 4000 };
            static double te[MAXSTEPS], tu[MAXSTEPS], ts[MAXSTEPS];
            int steps = 0;
            const double t_end = ebm_now() + seconds;
            while (steps < MAXSTEPS && (steps < 7 || ebm_now() < t_end)) {
                double t0 = ebm_now();
                net_energy(n, x, B, NULL, E, g);
                double t1 = ebm_now();
                ula_update(x, g, B, dim, (uint32_t)(steps + 3), threads[ti], scratch);
                double t2 = ebm_now();
                te[steps] = t1 - t0, tu[steps] = t2 - t1, ts[steps] = t2 - t0;
                steps++;
            }
            const double me = median(te, steps), mu = median(tu, steps), ms = median(ts, steps);
            const double best = ts[0], ebest = te[0];  /* sorted by median() */
            printf("ebm batch %d threads %d steps %d step_ms %.3f energy_ms %.3f update_ms %.3f image_steps_per_s %.0f "
                   "min_step_ms %.3f min_energy_ms %.3f\n",
                   B, threads[ti], steps, ms * 1e3, me * 1e3, mu * 1e3, B / ms, best * 1e3, ebest * 1e3);
            fflush(stdout);
        }
        ebm_free(x), ebm_free(g), ebm_free(E), ebm_free(scratch);
    }
    net_free(n);
    return 0;
}
