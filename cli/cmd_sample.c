/* cmd_sample.c - `ebm sample`: new digits from a model by Langevin chains, as a PNG grid,
 * an IDX file of uint8 images (the MNIST format, for evaluation tools) or in the terminal. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "core/common.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "io/image.h"

#define MAX_OUTS 4

/* Splits "a.png,b.idx" into paths (pointers into buf). */
static int split_outs(char *buf, char **outs) {
    int k = 0;
    for (char *p = strtok(buf, ","); p && k < MAX_OUTS; p = strtok(NULL, ",")) outs[k++] = p;
    return k;
}

/* Starting points from test images: n picks by a permutation seeded like the chains. */
static int data_start(const char *cmd, const char *dir, int digit, uint64_t seed, float *x, int n, int dim) {
    uint16_t mask = digit >= 0 ? (uint16_t)(1u << digit) : 0x3FF;
    dataset d;
    ebm_status s = dataset_load_dir(dir, "t10k", mask, 0, &d);
    if (s != EBM_STATUS_OK) return cli_fail(cmd, s);
    if (d.h * d.w != dim) {
        fprintf(stderr, "ebm %s: test images are %dx%d, the model takes %d values\n", cmd, d.h, d.w, dim);
        dataset_free(&d);
        return 1;
    }
    int *perm = malloc(sizeof(int) * (size_t)d.n);
    if (!perm) {
        dataset_free(&d);
        return cli_fail(cmd, ebm_fail(EBM_STATUS_NOMEM, "out of memory"));
    }
    ebm_rng r = rng_make(seed, RNG_STREAM_DATA);
    rng_permutation(&r, perm, d.n);
    for (int i = 0; i < n; i++) memcpy(x + (size_t)i * dim, d.x + (size_t)perm[i % d.n] * dim, sizeof(float) * (size_t)dim);
    free(perm);
    dataset_free(&d);
    return 0;
}

static int write_idx(const char *cmd, const char *path, const float *x, int n, int h, int w) {
    unsigned char *u8 = malloc((size_t)n * h * w);
    if (!u8) return cli_fail(cmd, ebm_fail(EBM_STATUS_NOMEM, "out of memory"));
    image_to_u8(u8, x, (long)n * h * w);
    const uint32_t dims[3] = {(uint32_t)n, (uint32_t)h, (uint32_t)w};
    ebm_status s = idx_write_u8(path, u8, 3, dims);
    free(u8);
    return s == EBM_STATUS_OK ? 0 : cli_fail(cmd, s);
}

int cmd_sample(int argc, char **argv) {
    const char *C = "sample";
    const char *model = NULL, *grid = NULL, *out = NULL, *init = "noise", *data = "data/mnist";
    int n = 64, digit = -1, show = 0, scale = 2;
    cli_sampler_flags sf = {-1, NAN, NAN, NAN, "ula", 0, "cpu", 0, "fp32"};
    arg_opt opts[] = {
        {"model", 'm', ARG_STR, &model, 0, "FILE", "model or checkpoint (.safetensors) to sample from", 0},
        {"n", 'n', ARG_INT, &n, ARG_POS, "N", "number of samples", 0},
        {"grid", 0, ARG_STR, &grid, 0, "RxC", "grid of R rows and C columns (n = R*C); default near-square", 0},
        {"out", 'o', ARG_STR, &out, 0, "FILE", "x.png (grid) and/or x.idx (uint8 images), comma-separated; default samples.png", 0},
        {"show", 0, ARG_FLAG, &show, 0, NULL, "print the grid in the terminal (Unicode half blocks)", 0},
        {"scale", 0, ARG_INT, &scale, ARG_POS, "K", "PNG pixels per image pixel", 0},
        {"init", 0, ARG_STR, &init, 0, "noise|data", "start chains from uniform noise or from test images", 0},
        {"data", 0, ARG_STR, &data, 0, "DIR", "MNIST directory for --init data", 0},
        {"digit", 0, ARG_INT, &digit, ARG_NONNEG, "D", "class to draw (class-conditional models; without it, the grid has one row per training digit, in turn)", 0},
        CLI_SAMPLER_OPTS(sf),
    };
    arg_cmd cmd = {C, "--model FILE [-n N | --grid RxC] [--out x.png|x.idx] [--show] [flags]",
                   "Draws new images from an energy-based model: Langevin chains from uniform noise (or from test\n"
                   "images with --init data), as a PNG grid, an IDX file or in the terminal.  The sampler settings\n"
                   "default to those the model was trained with; the same seed and flags give identical files.",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!model) {
        fprintf(stderr, "ebm sample: --model FILE is required (e.g. --model models/digits.safetensors)\n");
        return 2;
    }
    int rows = 0, cols = 0;
    if (grid) {
        char tail;
        if (sscanf(grid, "%dx%d%c", &rows, &cols, &tail) != 2 || rows < 1 || cols < 1 || rows > 1000 || cols > 1000) {
            fprintf(stderr, "ebm sample: --grid expects RxC such as 8x8, got '%s'\n", grid);
            return 2;
        }
        if (!args_given(&cmd, "n")) n = rows * cols;
        else if (n > rows * cols) {
            fprintf(stderr, "ebm sample: -n %d does not fit --grid %s\n", n, grid);
            return 2;
        }
    } else {
        cols = (int)ceil(sqrt((double)n));
        rows = (n + cols - 1) / cols;
    }
    if (strcmp(init, "noise") != 0 && strcmp(init, "data") != 0) {
        fprintf(stderr, "ebm sample: --init expects noise or data, got '%s'\n", init);
        return 2;
    }
    int device;
    int tf32;
    if ((r = cli_parse_device(C, sf.device, &device)) || (r = cli_parse_precision(C, sf.precision, device, &tf32))) return r;
    char outbuf[4096];
    char *outs[MAX_OUTS];
    snprintf(outbuf, sizeof outbuf, "%s", out ? out : (show ? "" : "samples.png"));
    int nout = split_outs(outbuf, outs);
    for (int i = 0; i < nout; i++) {
        if (!cli_has_ext(outs[i], ".png") && !cli_has_ext(outs[i], ".idx")) {
            fprintf(stderr, "ebm sample: --out %s: the extension must be .png or .idx (the format follows it)\n", outs[i]);
            return 2;
        }
        if (cli_check_writable(C, outs[i])) return 1;
    }
    cli_model m;
    if ((r = cli_load_model(C, model, sf.threads, &m))) return r;
    if (sf.steps < 0) sf.steps = m.sample_steps;
    langevin_params p;
    if ((r = cli_langevin_params(C, &sf, &m, &p))) {
        cli_model_free(&m);
        return r;
    }
    if ((r = cli_check_digit(C, &m, model, digit))) {
        cli_model_free(&m);
        return r;
    }
    const int dim = m.n->in_dim, h = m.n->in_h, w = m.n->in_w;
    float *x = ebm_alloc(sizeof(float) * (size_t)n * dim);
    /* A conditional model draws the asked digit, or one of its training digits per grid row. */
    int *y = m.conditional ? ebm_alloc(sizeof(int) * (size_t)n) : NULL;
    train_backend be = {0};
    if (!x || (m.conditional && !y)) r = cli_fail(C, ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d samples", n));
    for (int i = 0; !r && y && i < n; i++) y[i] = digit >= 0 ? digit : m.classes[i / cols % m.nclasses];
    if (!r && strcmp(init, "data") == 0) r = data_start(C, data, digit, sf.seed, x, n, dim);
    else if (!r) cli_noise_start(x, n, dim, sf.seed, p.lo, p.hi);
    if (!r) r = cli_backend(C, &m, device, tf32, &be);
    langevin_stats st = {0};
    double t0 = ebm_now();
    if (!r) {
        ebm_status s = be.sample(be.ctx, x, y, n, sf.steps, &p, &st, NULL, NULL, 0);
        if (s != EBM_STATUS_OK) r = cli_fail(C, s);
    }
    double dt = ebm_now() - t0;
    for (int i = 0; !r && i < nout; i++) {
        if (cli_has_ext(outs[i], ".png")) {
            ebm_status s = png_write_grid(outs[i], x, n, h, w, rows, cols, scale);
            if (s != EBM_STATUS_OK) r = cli_fail(C, s);
        } else {
            r = write_idx(C, outs[i], x, n, h, w);
        }
        if (!r) printf("wrote %s\n", outs[i]);
    }
    if (!r && show) term_show_grid(stdout, x, n, h, w, cols);
    if (!r) {
        printf("%d samples, %d %s steps (eps %g, noise %g, clip %g, seed %llu), mean energy %.4f, %.1f s\n", n,
               sf.steps, p.mala ? "MALA" : "ULA", p.eps, langevin_sigma(&p), p.grad_clip,
               (unsigned long long)sf.seed, st.mean_energy, dt);
        if (p.mala)
            printf("MALA acceptance rate %.3f (%ld of %ld proposals)\n",
                   st.proposed ? (double)st.accepted / st.proposed : 0.0, st.accepted, st.proposed);
    }
    if (be.destroy) be.destroy(be.ctx);
    ebm_free(x);
    ebm_free(y);
    cli_model_free(&m);
    return r;
}
