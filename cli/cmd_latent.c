/* cmd_latent.c - `ebm latent train|infer|plot`: the binarized-MNIST pipeline of an
 * autoencoder to R^d and an energy-based model on the codes (src/latent/). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <omp.h>

#include "args.h"
#include "cli.h"
#include "core/common.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "io/image.h"
#include "latent/latent_plot.h"
#include "latent/latent_train.h"
#include "latent/pipeline.h"

#define DEFAULT_DIR "out/latent"
#define BUNDLED_DIR "models/latent"
#define INFER_STEPS 500   /* fresh chains start at N(0, I): enough steps to forget it */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1; /* stop after the current batch; the last epoch's checkpoint stays */
}

static void set_threads(int threads) {
    if (threads <= 0) return;
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
}

/* mkdir -p */
static int make_dirs(const char *cmd, const char *dir) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1;; p++) {
        const int end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "ebm %s: cannot create directory %s: %s\n", cmd, buf, strerror(errno));
                return 1;
            }
            if (end) break;
            *p = '/';
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ebm %s: --out-dir %s is not a directory\n", cmd, dir);
        return 1;
    }
    return 0;
}

static int parse_sampler(const char *cmd, const char *s, int *mala) {
    if (strcmp(s, "mala") == 0) *mala = 1;
    else if (strcmp(s, "ula") == 0) *mala = 0;
    else {
        fprintf(stderr, "ebm %s: --sampler expects mala or ula, got '%s'\n", cmd, s);
        return 2;
    }
    return 0;
}

/* Images in [-1, 1] for the PNG writer: probabilities, or thresholded at 0.5. */
static void to_pixels(const float *probs, long n, int probabilities, float *x) {
    for (long i = 0; i < n; i++) x[i] = probabilities ? 2.0f * probs[i] - 1.0f : (probs[i] >= 0.5f ? 1.0f : -1.0f);
}

static ebm_status write_grid(const char *path, const float *x, int n) {
    const int cols = n < 10 ? n : 10, rows = (n + cols - 1) / cols;
    return png_write_grid(path, x, n, 28, 28, rows, cols, n <= 20 ? 4 : 2);
}

static ebm_status write_idx(const char *path, const float *x, int n) {
    uint8_t *u8 = malloc((size_t)n * 784);
    if (!u8) return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    image_to_u8(u8, x, (long)n * 784);
    const uint32_t dims[3] = {(uint32_t)n, 28, 28};
    ebm_status s = idx_write_u8(path, u8, 3, dims);
    free(u8);
    return s;
}

/* The sampler settings of a trained EBM, overridden by the flags given. */
static int sampler_params(const char *cmd, const latent_pipeline *p, const char *sampler, float step_size,
                          uint64_t seed, langevin_params *lv) {
    *lv = (langevin_params){.mala = p->li.sampler_mala, .eps = p->li.step_size, .sigma = -1, .grad_clip = 0,
                            .lo = -INFINITY, .hi = INFINITY, .seed = seed};
    if (sampler && parse_sampler(cmd, sampler, &lv->mala)) return 2;
    if (step_size > 0) lv->eps = step_size;
    return 0;
}

/* The default model directory: this machine's last training run, else the bundled one. */
static const char *default_model_dir(void) {
    struct stat st;
    return stat(DEFAULT_DIR "/" LATENT_AE_FILE, &st) == 0 || stat(BUNDLED_DIR "/" LATENT_AE_FILE, &st) != 0
               ? DEFAULT_DIR
               : BUNDLED_DIR;
}

/* ---- plot --------------------------------------------------------------------------- */

/* Draws dir's pipeline (d = 2) to out: codes of npoints test images, nchains MALA paths. */
static ebm_status plot(latent_pipeline *p, const char *data, int npoints, int nchains, int steps,
                       const langevin_params *lv, const char *out, const char *title) {
    dataset te = {0};
    float *codes = NULL, *paths = NULL, *ends = NULL, *imgs = NULL;
    if (p->le.code_dim != 2) return latent_plot_png(p, &(latent_plot_data){0}, out); /* the error */
    ebm_status s = dataset_load_dir(data, "t10k", 0x3ff, npoints, &te);
    if (s != EBM_STATUS_OK) return s;
    binarize_u8_to01(te.x, (long)te.n * 784, p->ai.binarize_threshold, te.x);
    codes = malloc(sizeof(float) * (size_t)te.n * 2);
    paths = malloc(sizeof(float) * (size_t)nchains * (steps + 1) * 2);
    ends = malloc(sizeof(float) * (size_t)nchains * 2);
    imgs = malloc(sizeof(float) * (size_t)nchains * 784);
    if (!codes || !paths || !ends || !imgs) s = ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    if (s == EBM_STATUS_OK) {
        ae_encode(&p->ae, te.x, te.n, codes);
        s = lebm_sample(&p->le, nchains, steps, lv, ends, paths, NULL);
    }
    if (s == EBM_STATUS_OK) {
        ae_decode(&p->ae, ends, nchains, imgs);
        latent_plot_data d = {codes, te.y, te.n, paths, nchains, steps + 1, imgs, title};
        s = latent_plot_png(p, &d, out);
    }
    free(codes);
    free(paths);
    free(ends);
    free(imgs);
    dataset_free(&te);
    return s;
}

static int cmd_plot(int argc, char **argv) {
    const char *C = "latent plot";
    const char *dir = NULL, *out = "latent_plot.png", *data = "data/mnist", *sampler = NULL;
    int npoints = 3000, nchains = 6, steps = 60, threads = 0;
    float step_size = 0;
    uint64_t seed = 1;
    arg_opt opts[] = {
        {"model-dir", 0, ARG_STR, &dir, 0, "DIR", "directory of `ebm latent train` (default " DEFAULT_DIR ")", 0},
        {"out", 'o', ARG_STR, &out, 0, "FILE.png", "picture to write", 0},
        {"data", 0, ARG_STR, &data, 0, "DIR", "MNIST directory (the test images are plotted)", 0},
        {"num-points", 0, ARG_INT, &npoints, ARG_POS, "N", "test images whose codes are drawn", 0},
        {"chains", 0, ARG_INT, &nchains, ARG_POS, "N", "MALA chains drawn (at most 8)", 0},
        {"steps", 0, ARG_INT, &steps, ARG_POS, "N", "steps per chain", 0},
        {"step-size", 0, ARG_FLOAT, &step_size, ARG_POS, "X", "MCMC step size (default: the model's)", 0},
        {"sampler", 0, ARG_STR, &sampler, 0, "mala|ula", "MCMC kind (default: the model's)", 0},
        {"seed", 0, ARG_U64, &seed, 0, "N", "seed of the chains", 0},
        {"threads", 0, ARG_INT, &threads, ARG_NONNEG, "N", "CPU threads (0 = all cores)", 0},
    };
    arg_cmd cmd = {C, "[--model-dir DIR] [--out latent_plot.png]",
                   "Draws a 2-D latent pipeline (trained with --encoded_dim 2): codes of test images coloured by\n"
                   "digit, the energy E(z) as contours, MALA chains from N(0, I) and what the decoder makes of\n"
                   "their end points.",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (nchains > 8) {
        fprintf(stderr, "ebm %s: --chains %d: at most 8 fit beside the plot\n", C, nchains);
        return 2;
    }
    if (!cli_has_ext(out, ".png")) {
        fprintf(stderr, "ebm %s: --out %s: the plot is a PNG; name it <name>.png\n", C, out);
        return 2;
    }
    if (cli_check_writable(C, out)) return 1;
    set_threads(threads);
    if (!dir) dir = default_model_dir();
    latent_pipeline p;
    ebm_status s = latent_pipeline_load(dir, NULL, NULL, 1024, &p);
    if (s != EBM_STATUS_OK) return cli_fail(C, s);
    langevin_params lv;
    if ((r = sampler_params(C, &p, sampler, step_size, seed, &lv))) {
        latent_pipeline_free(&p);
        return r;
    }
    char title[256];
    snprintf(title, sizeof title, "latent EBM on a 2-D autoencoder code (%s)", dir);
    s = plot(&p, data, npoints, nchains, steps, &lv, out, title);
    latent_pipeline_free(&p);
    if (s != EBM_STATUS_OK) return cli_fail(C, s);
    printf("wrote %s\n", out);
    return 0;
}

/* ---- infer -------------------------------------------------------------------------- */

static int cmd_infer(int argc, char **argv) {
    const char *C = "latent infer";
    const char *dir = NULL, *model = NULL, *out = "latent_samples.png", *idx = NULL, *sampler = NULL;
    int n = 10, steps = INFER_STEPS, probabilities = 0, threads = 0;
    float step_size = 0;
    uint64_t seed = 1;
    arg_opt opts[] = {
        {"num-images", 'n', ARG_INT, &n, ARG_POS, "N", "images to generate", 0},
        {"model-dir", 0, ARG_STR, &dir, 0, "DIR",
         "directory of `ebm latent train` (default " DEFAULT_DIR ", else " BUNDLED_DIR ")", 0},
        {"model", 0, ARG_STR, &model, 0, "DIR", "the same as --model-dir", 0},
        {"out", 'o', ARG_STR, &out, 0, "FILE", "grid picture (.png) or IDX file (.idx)", 0},
        {"idx", 0, ARG_STR, &idx, 0, "FILE", "also write the images as IDX (uint8, n x 28 x 28)", 0},
        {"steps", 0, ARG_INT, &steps, ARG_NONNEG, "N", "MCMC steps from N(0, I)", 0},
        {"step-size", 0, ARG_FLOAT, &step_size, ARG_POS, "X", "MCMC step size (default: the model's)", 0},
        {"sampler", 0, ARG_STR, &sampler, 0, "mala|ula", "MCMC kind (default: the model's, mala)", 0},
        {"probabilities", 0, ARG_FLAG, &probabilities, 0, NULL,
         "show the decoder's pixel probabilities instead of thresholding them at 0.5", 0},
        {"seed", 0, ARG_U64, &seed, 0, "N", "random seed: same seed and flags, same images", 0},
        {"threads", 0, ARG_INT, &threads, ARG_NONNEG, "N", "CPU threads (0 = all cores)", 0},
    };
    arg_cmd cmd = {C, "[--num_images 10] [--model-dir DIR] [--out samples.png|samples.idx] [flags]",
                   "Generates binarized digits: codes z sampled by MALA (or ULA) from the latent EBM, starting\n"
                   "at N(0, I), decoded by the autoencoder and thresholded at 0.5 (or shown as probabilities).",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (dir && model && strcmp(dir, model) != 0) {
        fprintf(stderr, "ebm %s: --model and --model-dir name different directories; give one\n", C);
        return 2;
    }
    if (!dir) dir = model ? model : default_model_dir();
    if (n > 100000) {
        fprintf(stderr, "ebm %s: --num_images %d: at most 100000 per call\n", C, n);
        return 2;
    }
    const int out_png = cli_has_ext(out, ".png");
    if (!out_png && !cli_has_ext(out, ".idx")) {
        fprintf(stderr, "ebm %s: --out %s: name a .png (grid picture) or .idx (MNIST format) file\n", C, out);
        return 2;
    }
    if (idx && !cli_has_ext(idx, ".idx")) {
        fprintf(stderr, "ebm %s: --idx %s: name it <name>.idx\n", C, idx);
        return 2;
    }
    if (out_png && n > 400) {
        fprintf(stderr, "ebm %s: --num_images %d is too many for one picture (at most 400); write --out x.idx\n",
                C, n);
        return 2;
    }
    if (cli_check_writable(C, out) || (idx && cli_check_writable(C, idx))) return 1;
    set_threads(threads);
    latent_pipeline p;
    ebm_status s = latent_pipeline_load(dir, NULL, NULL, 1024, &p);
    if (s != EBM_STATUS_OK) return cli_fail(C, s);
    langevin_params lv;
    if ((r = sampler_params(C, &p, sampler, step_size, seed, &lv))) {
        latent_pipeline_free(&p);
        return r;
    }
    float *probs = malloc(sizeof(float) * (size_t)n * 784), *x = malloc(sizeof(float) * (size_t)n * 784);
    langevin_stats st;
    const double t0 = ebm_now();
    s = probs && x ? latent_pipeline_generate(&p, n, steps, &lv, probs, NULL, &st)
                   : ebm_fail(EBM_STATUS_NOMEM, "out of memory for %d images", n);
    const double dt = ebm_now() - t0;
    if (s == EBM_STATUS_OK) {
        to_pixels(probs, (long)n * 784, probabilities, x);
        s = out_png ? write_grid(out, x, n) : write_idx(out, x, n);
        if (s == EBM_STATUS_OK && idx) s = write_idx(idx, x, n);
    }
    if (s == EBM_STATUS_OK) {
        printf("sampled %d codes with %s (%d steps of size %g from N(0, I)) in %.2f s", n,
               lv.mala ? "MALA" : "ULA", steps, (double)lv.eps, dt);
        if (lv.mala && st.proposed) printf(": acceptance %.3f", (double)st.accepted / (double)st.proposed);
        printf("\nwrote %s%s%s (%s)\n", out, idx ? " and " : "", idx ? idx : "",
               probabilities ? "pixel probabilities" : "thresholded at 0.5");
    }
    free(probs);
    free(x);
    latent_pipeline_free(&p);
    return s == EBM_STATUS_OK ? 0 : cli_fail(C, s);
}

/* ---- train -------------------------------------------------------------------------- */

/* After training: a 10x10 grid of samples in the run's directory, and the plot when d = 2. */
static ebm_status after_training(const char *dir, const char *data, uint64_t seed, char *wrote, size_t len) {
    latent_pipeline p;
    EBM_TRY(latent_pipeline_load(dir, NULL, NULL, 1024, &p));
    langevin_params lv = {.mala = p.li.sampler_mala, .eps = p.li.step_size, .sigma = -1, .lo = -INFINITY,
                          .hi = INFINITY, .seed = seed};
    float *probs = malloc(sizeof(float) * 100 * 784), *x = malloc(sizeof(float) * 100 * 784);
    char path[4096];
    ebm_status s = probs && x ? latent_pipeline_generate(&p, 100, INFER_STEPS, &lv, probs, NULL, NULL)
                              : ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    if (s == EBM_STATUS_OK) {
        to_pixels(probs, 100L * 784, 0, x);
        snprintf(path, sizeof path, "%s/latent-samples.png", dir);
        s = png_write_grid(path, x, 100, 28, 28, 10, 10, 2);
        snprintf(wrote, len, "%s", path);
    }
    if (s == EBM_STATUS_OK && p.le.code_dim == 2) {
        snprintf(path, sizeof path, "%s/latent-plot.png", dir);
        s = plot(&p, data, 3000, 6, 60, &lv, path, "latent EBM on a 2-D autoencoder code");
        size_t k = strlen(wrote);
        snprintf(wrote + k, len - k, ", %s", path);
    }
    free(probs);
    free(x);
    latent_pipeline_free(&p);
    return s;
}

static int cmd_train_latent(int argc, char **argv) {
    const char *C = "latent train";
    latent_config c;
    latent_config_default(&c);
    const char *out_dir = DEFAULT_DIR, *sampler = "mala";
    int resume = 0, threads = 0, log_every = 200;
    arg_opt opts[] = {
        {"auto-hidden-dim", 0, ARG_INT, &c.auto_hidden, ARG_POS, "H", "autoencoder hidden units (784-H-d-H-784)", 0},
        {"encoded-dim", 0, ARG_INT, &c.code_dim, ARG_POS, "D", "code dimension d", 0},
        {"auto-num-epochs", 0, ARG_INT, &c.auto_epochs, ARG_NONNEG, "N", "autoencoder epochs", 0},
        {"auto-batch-size", 0, ARG_INT, &c.auto_batch, ARG_POS, "B", "autoencoder batch", 0},
        {"auto-lr", 0, ARG_FLOAT, &c.auto_lr, ARG_POS, "X", "autoencoder Adam learning rate", 0},
        {"ebm-hidden-dim", 0, ARG_INT, &c.ebm_hidden, ARG_POS, "H", "energy MLP hidden units (d-H-H-1)", 0},
        {"ebm-num-epochs", 0, ARG_INT, &c.ebm_epochs, ARG_NONNEG, "N", "latent EBM epochs over the codes", 0},
        {"ebm-batch-size", 0, ARG_INT, &c.ebm_batch, ARG_POS, "B", "codes per contrastive-divergence iteration", 0},
        {"ebm-lr", 0, ARG_FLOAT, &c.ebm_lr, ARG_POS, "X", "latent EBM Adam learning rate", 0},
        {"mcmc-samples-per-datapoint", 0, ARG_INT, &c.samples_per_datapoint, ARG_POS, "K",
         "MCMC chains started at each code (negatives per iteration = K x batch)", 0},
        {"mcmc-steps", 0, ARG_INT, &c.mcmc_steps, ARG_NONNEG, "N", "MCMC steps per iteration", 0},
        {"step-size", 0, ARG_FLOAT, &c.step_size, ARG_POS, "X",
         "MCMC step size eps in standardized code space (noise sqrt(2 eps))", 0},
        {"sampler", 0, ARG_STR, &sampler, 0, "mala|ula", "Metropolis-adjusted Langevin or plain Langevin", 0},
        {"binarize-threshold", 0, ARG_INT, &c.threshold, ARG_POS, "T", "pixel bytes >= T become 1, others 0", 0},
        {"data", 0, ARG_STR, &c.data_dir, 0, "DIR", "MNIST directory (make data)", 0},
        {"limit", 0, ARG_INT, &c.limit, ARG_NONNEG, "N", "use only the first N training images (0 = all)", 0},
        {"test-limit", 0, ARG_INT, &c.test_limit, ARG_NONNEG, "N",
         "test images for the per-epoch figures (0 = all 10000)", 0},
        {"out-dir", 'o', ARG_STR, &out_dir, 0, "DIR",
         "where " LATENT_AE_FILE ", " LATENT_EBM_FILE " and " LATENT_METRICS_FILE " go", 0},
        {"resume", 0, ARG_FLAG, &resume, 0, NULL, "continue the run in --out-dir from its last finished epoch", 0},
        {"seed", 0, ARG_U64, &c.seed, 0, "N", "seed of the initialisation, shuffling and chains", 0},
        {"threads", 0, ARG_INT, &threads, ARG_NONNEG, "N", "CPU threads (0 = all cores)", 0},
        {"log-every", 0, ARG_INT, &log_every, ARG_POS, "N", "progress line every N iterations when not on a terminal", 0},
    };
    arg_cmd cmd = {C,
                   "[--auto_hidden_dim 1024] [--encoded_dim 4] [--auto_num_epochs 30] [--ebm_hidden_dim 8] "
                   "[--mcmc_samples_per_datapoint 8] [flags]",
                   "Trains the latent pipeline on binarized MNIST: an autoencoder 784 -> H -> d -> H -> 784 (sigmoid\n"
                   "output, binary cross-entropy), then an energy E(z) on the codes by contrastive divergence with\n"
                   "MALA (K chains started at each code).  Underscore and dash spellings of the flags are the same.\n"
                   "A checkpoint is written after every epoch; --resume continues exactly.",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if ((r = parse_sampler(C, sampler, &c.mala))) return r;
    ebm_status s = latent_config_check(&c);
    if (s != EBM_STATUS_OK) {
        fprintf(stderr, "ebm %s: %s\n", C, ebm_last_error());
        return 2;
    }
    if (make_dirs(C, out_dir)) return 1;
    set_threads(threads);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    latent_run_opts o = {.out_dir = out_dir, .resume = resume, .progress = stderr,
                         .progress_tty = isatty(STDERR_FILENO), .log_every = log_every, .stop = &stop_flag};
    latent_result res;
    const double t0 = ebm_now();
    s = latent_train(&c, &o, &res);
    if (s != EBM_STATUS_OK) return cli_fail(C, s);
    char wrote[8192] = "";
    s = after_training(out_dir, c.data_dir, c.seed, wrote, sizeof wrote);
    if (s != EBM_STATUS_OK) return cli_fail(C, s);
    printf("latent pipeline: test BCE %.4f per pixel, test pixel accuracy %.4f, %s acceptance %.3f; this run "
           "%.1f s (autoencoder %d epochs %.1f s, EBM %d epochs %.1f s)\n",
           res.test_bce, res.test_accuracy, c.mala ? "MALA" : "ULA", res.acceptance, ebm_now() - t0,
           res.ae_epochs_run, res.ae_seconds, res.ebm_epochs_run, res.ebm_seconds);
    printf("wrote %s/%s, %s/%s, %s/%s, %s\n", out_dir, LATENT_AE_FILE, out_dir, LATENT_EBM_FILE, out_dir,
           LATENT_METRICS_FILE, wrote);
    return 0;
}

/* ---- dispatch ----------------------------------------------------------------------- */

int cmd_latent(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char *about;
    } subs[] = {
        {"train", cmd_train_latent, "train the autoencoder, then the latent EBM"},
        {"infer", cmd_infer, "sample codes by MALA, decode them to binarized digits"},
        {"plot", cmd_plot, "picture of a 2-D latent space: codes, energy contours, chains"},
    };
    const int ns = (int)(sizeof subs / sizeof subs[0]);
    for (int i = 0; argc >= 2 && i < ns; i++)
        if (strcmp(argv[1], subs[i].name) == 0) return subs[i].run(argc - 1, argv + 1);
    const int help = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                                   strcmp(argv[1], "help") == 0);
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help) fprintf(stderr, "ebm latent: unknown subcommand '%s'\n", argv[1]);
    fprintf(f, "usage: ebm latent <subcommand> [flags]\n\nThe binarized-MNIST pipeline: an autoencoder to R^d and an "
               "energy-based model of the codes.\n\n");
    for (int i = 0; i < ns; i++) fprintf(f, "  %-6s %s\n", subs[i].name, subs[i].about);
    fprintf(f, "\n'ebm latent <subcommand> --help' lists its flags.\n");
    return help ? 0 : 2;
}
