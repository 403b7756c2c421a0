/* cmd_chain.c - `ebm chain`: snapshots of Langevin chains every k steps, noise -> digit,
 * as a PNG (rows = chains, columns = time) or an animated GIF (a frame per snapshot). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "core/common.h"
#include "io/image.h"
#include "sample/chain.h"

/* Terminal width in characters (80 when unknown). */
static int term_cols(void) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    return c && atoi(c) > 0 ? atoi(c) : 80;
}

int cmd_chain(int argc, char **argv) {
    const char *C = "chain";
    const char *model = NULL, *out = "chain.gif";
    int n = 8, every = -1, show = 0, scale = 2, delay = 8, hold = 150, digit = -1;
    cli_sampler_flags sf = {-1, NAN, NAN, NAN, "ula", 0, "cpu", 0, "fp32"};
    arg_opt opts[] = {
        {"model", 'm', ARG_STR, &model, 0, "FILE", "model or checkpoint (.safetensors)", 0},
        {"n", 'n', ARG_INT, &n, ARG_POS, "N", "number of chains", 0},
        {"every", 0, ARG_INT, &every, ARG_POS, "K", "a snapshot every K steps (and the first and last) (default: steps/15, so about 16 frames)", 0},
        {"out", 'o', ARG_STR, &out, 0, "FILE", "c.png (rows = chains, columns = time) or c.gif (animation)", 0},
        {"show", 0, ARG_FLAG, &show, 0, NULL, "print snapshots in the terminal (as many as fit its width)", 0},
        {"scale", 0, ARG_INT, &scale, ARG_POS, "K", "pixels per image pixel", 0},
        {"delay", 0, ARG_INT, &delay, ARG_POS, "CS", "GIF frame delay in 1/100 s", 0},
        {"hold", 0, ARG_INT, &hold, ARG_NONNEG, "CS", "GIF: how long the last frame stays, in 1/100 s", 0},
        {"digit", 0, ARG_INT, &digit, ARG_NONNEG, "D", "class to draw (class-conditional models)", 0},
        CLI_SAMPLER_OPTS(sf),
    };
    arg_cmd cmd = {C, "--model FILE [--out chain.gif|chain.png] [-n N] [--steps N] [--every K] [flags]",
                   "Runs N Langevin chains from uniform noise and records them every K steps, so you can watch\n"
                   "noise turn into digits: a PNG with one row per chain and one column per snapshot, or an\n"
                   "animated GIF with one frame per snapshot.  Sampler settings default to the model's.",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (!model) {
        fprintf(stderr, "ebm chain: --model FILE is required (e.g. --model models/digits.safetensors)\n");
        return 2;
    }
    const int gif = cli_has_ext(out, ".gif");
    if (!gif && !cli_has_ext(out, ".png")) {
        fprintf(stderr, "ebm chain: --out %s: the extension must be .png or .gif (the format follows it)\n", out);
        return 2;
    }
    int device;
    int tf32;
    if ((r = cli_parse_device(C, sf.device, &device)) || (r = cli_parse_precision(C, sf.precision, device, &tf32))) return r;
    if (cli_check_writable(C, out)) return 1;
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
    if (every < 0) every = sf.steps / 15 > 1 ? sf.steps / 15 : 1;
    const int nf = chain_num_frames(sf.steps, every);
    const int nhold = gif ? (hold + delay - 1) / delay : 0;
    float *x = ebm_alloc(sizeof(float) * (size_t)n * dim);
    float *frames = ebm_alloc(sizeof(float) * (size_t)(nf + nhold) * n * dim);
    float *strip = gif ? NULL : ebm_alloc(sizeof(float) * (size_t)nf * n * dim);
    int *y = digit >= 0 ? ebm_alloc(sizeof(int) * (size_t)n) : NULL;
    train_backend be = {0};
    if (!x || !frames || (!gif && !strip) || (digit >= 0 && !y))
        r = cli_fail(C, ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d frames of %d chains", nf, n));
    for (int i = 0; !r && y && i < n; i++) y[i] = digit;
    if (!r) cli_noise_start(x, n, dim, sf.seed, p.lo, p.hi);
    if (!r) r = cli_backend(C, &m, device, tf32, &be);
    chain_recorder rec = chain_recorder_make(frames, NULL, NULL, nf, n, dim);
    langevin_stats st = {0};
    if (!r) {
        ebm_status s = be.sample(be.ctx, x, y, n, sf.steps, &p, &st, chain_record, &rec, every);
        if (s != EBM_STATUS_OK) r = cli_fail(C, s);
    }
    const size_t fsz = (size_t)n * dim;
    if (!r && gif) {
        for (int k = 0; k < nhold; k++) memcpy(frames + (size_t)(nf + k) * fsz, frames + (size_t)(nf - 1) * fsz, sizeof(float) * fsz);
        int cols = (int)ceil(sqrt((double)n)), rows = (n + cols - 1) / cols;
        ebm_status s = gif_write_frames(out, frames, nf + nhold, n, h, w, rows, cols, scale, delay);
        if (s != EBM_STATUS_OK) r = cli_fail(C, s);
    } else if (!r) {
        for (int c = 0; c < n; c++) /* row c = chain c through time */
            for (int f = 0; f < nf; f++)
                memcpy(strip + ((size_t)c * nf + f) * dim, frames + (size_t)f * fsz + (size_t)c * dim, sizeof(float) * dim);
        ebm_status s = png_write_grid(out, strip, n * nf, h, w, n, nf, scale);
        if (s != EBM_STATUS_OK) r = cli_fail(C, s);
    }
    if (!r) {
        printf("wrote %s: %d chains, %d snapshots (every %d of %d %s steps, eps %g, noise %g), final mean energy %.4f\n",
               out, n, nf, every, sf.steps, p.mala ? "MALA" : "ULA", p.eps, langevin_sigma(&p), st.mean_energy);
        if (p.mala)
            printf("MALA acceptance rate %.3f\n", st.proposed ? (double)st.accepted / st.proposed : 0.0);
    }
    if (!r && show) {
        /* as many evenly spaced snapshots as fit the terminal, chains as rows */
        int fit = term_cols() / (w + 1);
        int k = fit < 2 ? 2 : fit;
        if (k > nf) k = nf;
        float *view = ebm_alloc(sizeof(float) * (size_t)n * k * dim);
        if (view) {
            for (int c = 0; c < n; c++)
                for (int j = 0; j < k; j++) {
                    int f = k == 1 ? nf - 1 : (int)((long)j * (nf - 1) / (k - 1));
                    memcpy(view + ((size_t)c * k + j) * dim, frames + (size_t)f * fsz + (size_t)c * dim, sizeof(float) * dim);
                }
            term_show_grid(stdout, view, n * k, h, w, k);
            ebm_free(view);
        }
    }
    if (be.destroy) be.destroy(be.ctx);
    ebm_free(x);
    ebm_free(frames);
    ebm_free(strip);
    ebm_free(y);
    cli_model_free(&m);
    return r;
}
