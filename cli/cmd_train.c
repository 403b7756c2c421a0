/* cmd_train.c - `ebm train`: maximum-likelihood training of an energy-based model on MNIST
 * with Langevin negatives; progress, metrics, sample grids, checkpoints, resume, Ctrl-C. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "core/common.h"
#include "data/dataset.h"
#include "io/metrics.h"
#include "train/trainer.h"

/* Training length when neither --epochs nor --iters is given. */
#define DEFAULT_EPOCHS 10

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1; /* the loop saves and stops after the current iteration */
}

static void install_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* "<stem><suffix>" where stem is out without ".safetensors". */
static void derived(char *buf, size_t len, const char *out, const char *suffix) {
    size_t n = strlen(out);
    if (cli_has_ext(out, ".safetensors")) n -= strlen(".safetensors");
    snprintf(buf, len, "%.*s%s", (int)n, out, suffix);
}

int cmd_train(int argc, char **argv) {
    const char *C = "train";
    train_config cfg;
    train_config_default(&cfg);
    train_hparams *h = &cfg.hp;
    const char *digits = "all", *arch = "cnn-small", *data = "data/mnist", *out = "model.safetensors";
    const char *resume = NULL, *metrics = NULL, *curves = NULL, *device_s = "cpu", *export_model = NULL;
    const char *lr_decay = "none", *init_from = NULL, *precision = "fp32";
    int epochs = DEFAULT_EPOCHS, threads = 0, n_samples = -1, ckpt_every = 100, sample_every = 500;
    int sample_steps = -1, metrics_every = 1, log_every = 50, gpus = 1;
    uint64_t iters = 0;
    float max_minutes = 0;
    arg_opt opts[] = {
        {"digits", 0, ARG_STR, &digits, 0, "all|D|D,D", "which digits to learn: all, one (3) or a list (5,7)", 0},
        {"data", 0, ARG_STR, &data, 0, "DIR", "MNIST directory (make data)", 0},
        {"limit", 0, ARG_INT, &cfg.limit, ARG_NONNEG, "N", "use only the first N selected images (0 = all)", 0},
        {"epochs", 0, ARG_INT, &epochs, ARG_POS, "N", "passes over the selected images", 0},
        {"iters", 0, ARG_U64, &iters, ARG_POS, "N", "total iterations instead of --epochs (a resumed run counts on)", 0},
        {"batch", 0, ARG_INT, &h->batch, ARG_POS, "B", "positives per iteration", 0},
        {"n-samples", 0, ARG_INT, &n_samples, ARG_POS, "N", "negatives (Langevin chains) per iteration (default: --batch)", 0},
        {"lr", 0, ARG_FLOAT, &h->lr, ARG_POS, "X", "Adam learning rate", 0},
        {"lr-decay", 0, ARG_STR, &lr_decay, 0, "none|cosine", "learning-rate schedule over the run's --iters", 0},
        {"lr-final", 0, ARG_FLOAT, &cfg.lr_final, ARG_NONNEG, "X", "the learning rate the cosine schedule ends at", 0},
        {"beta1", 0, ARG_FLOAT, &h->beta1, ARG_NONNEG, "X", "Adam beta1", 0},
        {"beta2", 0, ARG_FLOAT, &h->beta2, ARG_NONNEG, "X", "Adam beta2", 0},
        {"alpha", 0, ARG_FLOAT, &h->alpha, ARG_NONNEG, "X", "energy regulariser: alpha * (E+^2 + E-^2)", 0},
        {"langevin-steps", 0, ARG_INT, &h->steps, ARG_NONNEG, "N", "Langevin steps per iteration", 0},
        {"eps", 0, ARG_FLOAT, &h->lv.eps, ARG_NONNEG, "X", "Langevin step size on the clipped gradient", 0},
        {"noise", 0, ARG_FLOAT, &h->lv.sigma, ARG_NONNEG | ARG_AUTO, "S|auto",
         "Langevin noise sigma; auto = sqrt(2 eps), proper Langevin (the recipe decouples them)", 0},
        {"grad-clip", 0, ARG_FLOAT, &h->lv.grad_clip, ARG_ANY, "C", "clip Langevin gradients to +-C (<= 0: off)", 0},
        {"data-noise", 0, ARG_FLOAT, &h->data_noise, ARG_NONNEG, "S", "noise sigma added to the positives", 0},
        {"buffer", 0, ARG_INT, &h->buffer_size, ARG_NONNEG, "N", "replay-buffer chains; 0 = short-run chains from noise", 0},
        {"reinit", 0, ARG_FLOAT, &h->reinit, ARG_NONNEG, "P", "probability that a buffer chain restarts from noise", 0},
        {"arch", 0, ARG_STR, &arch, 0, "SPEC", "network: cnn-small, cnn-small-cond or a layer list", 0},
        {"conditional", 0, ARG_FLAG, &h->conditional, 0, NULL, "class-conditional model E(x,y) (arch cnn-small-cond)", 0},
        {"marginal", 0, ARG_FLOAT, &h->marginal, ARG_NONNEG, "P",
         "with --conditional: share of positives and chains that train the marginal E(x) instead (JEM-style)", 0},
        {"marginal-chains", 0, ARG_FLOAT, &h->marginal_chains, ARG_NONNEG, "Q",
         "with --conditional: share of chains on the marginal (default: --marginal's); 1 with --marginal 0 trains the joint p(x,y)", 0},
        {"seed", 0, ARG_U64, &cfg.seed, 0, "N", "seed of the initialisation and every random draw", 0},
        {"threads", 0, ARG_INT, &threads, ARG_NONNEG, "N", "CPU threads (0 = all cores)", 0},
        {"device", 0, ARG_STR, &device_s, 0, "cpu|cuda", "where the arithmetic runs", 0},
        {"gpus", 0, ARG_INT, &gpus, ARG_POS, "N",
         "with --device cuda[:K]: data-parallel on GPUs K..K+N-1 through NCCL (batch, chains and buffer split evenly)", 0},
        {"precision", 0, ARG_STR, &precision, 0, "fp32|tf32", CLI_PRECISION_HELP, 0},
        {"out", 'o', ARG_STR, &out, 0, "FILE", "checkpoint (.safetensors), also a model for sample/chain", 0},
        {"export", 0, ARG_STR, &export_model, 0, "FILE", "also write the plain model (no optimizer, no buffer) at the end", 0},
        {"checkpoint-every", 0, ARG_INT, &ckpt_every, ARG_NONNEG, "N", "save every N iterations (0: only at the end)", 0},
        {"resume", 0, ARG_STR, &resume, 0, "FILE", "continue a run from its checkpoint (exactly)", 0},
        {"init", 0, ARG_STR, &init_from, 0, "FILE",
         "start a fresh run from this model's parameters (same --arch; e.g. fine-tune with --conditional)", 0},
        {"sample-every", 0, ARG_INT, &sample_every, ARG_NONNEG, "N",
         "grid of fresh samples every N iterations and at the end, <out>-samples.png (0: none)", 0},
        {"sample-steps", 0, ARG_INT, &sample_steps, ARG_POS, "N", "Langevin steps for those grids (default: --langevin-steps without a buffer, else 256)", 0},
        {"metrics", 0, ARG_STR, &metrics, 0, "FILE", "JSON-lines log (default <out>-metrics.jsonl; 'none': off)", 0},
        {"metrics-every", 0, ARG_INT, &metrics_every, ARG_POS, "K", "log every K iterations", 0},
        {"curves", 0, ARG_STR, &curves, 0, "FILE", "training-curves PNG at the end (default <out>-curves.png)", 0},
        {"log-every", 0, ARG_INT, &log_every, ARG_POS, "N", "progress line every N iterations when not on a terminal", 0},
        {"max-minutes", 0, ARG_FLOAT, &max_minutes, ARG_POS, "M", "stop (and save) after M minutes of this run", 0},
    };
    arg_cmd cmd = {C, "[--digits 3] [--epochs N | --iters N] [--out model.safetensors] [flags]",
                   "Trains an energy-based model E(x) on MNIST digits by maximum likelihood: each iteration lowers\n"
                   "the energy of a batch of real images and raises that of samples from Langevin chains (fresh\n"
                   "from noise by default, or from a replay buffer with --buffer N).  Checkpoints are written atomically every\n"
                   "--checkpoint-every iterations, at the end and on Ctrl-C; --resume continues exactly.",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    uint64_t start_iter = 0;
    if (resume) {
        /* the checkpoint's config is the base; flags given now override it */
        ebm_status s = trainer_peek(resume, &cfg, &start_iter, NULL);
        if (s != EBM_STATUS_OK) return cli_fail(C, s);
        r = args_parse(&cmd, argc, argv);
        EBM_ASSERT(r == 0);
        if (!args_given(&cmd, "n-samples")) n_samples = cfg.hp.n_samples;
        if (!args_given(&cmd, "out")) out = resume;
    }
    if (args_given(&cmd, "epochs") && args_given(&cmd, "iters")) {
        fprintf(stderr, "ebm train: give --epochs or --iters, not both\n");
        return 2;
    }
    if (args_given(&cmd, "digits")) snprintf(cfg.digits, sizeof cfg.digits, "%s", digits);
    if (args_given(&cmd, "data")) snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", data);
    if (args_given(&cmd, "arch")) snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    else if (!resume && h->conditional) snprintf(cfg.arch, sizeof cfg.arch, "cnn-small-cond");
    h->n_samples = n_samples > 0 ? n_samples : h->batch;
    if (args_given(&cmd, "marginal") && !args_given(&cmd, "marginal-chains")) h->marginal_chains = h->marginal;
    if (args_given(&cmd, "lr-decay")) {
        if (strcmp(lr_decay, "cosine") != 0 && strcmp(lr_decay, "none") != 0) {
            fprintf(stderr, "ebm train: --lr-decay expects none or cosine, got '%s'\n", lr_decay);
            return 2;
        }
        cfg.lr_cosine = strcmp(lr_decay, "cosine") == 0;
    }
    int device, tf32;
    if ((r = cli_parse_device(C, device_s, &device)) || (r = cli_parse_precision(C, precision, device, &tf32))) return r;
    if (!(h->beta1 < 1) || !(h->beta2 < 1)) {
        fprintf(stderr, "ebm train: --beta1 and --beta2 must be below 1\n");
        return 2;
    }
    if (!(h->reinit <= 1)) {
        fprintf(stderr, "ebm train: --reinit is a probability, got %g\n", h->reinit);
        return 2;
    }
    char metrics_path[4096] = "", curves_path[4096] = "", samples_path[4096] = "";
    if (!(metrics && strcmp(metrics, "none") == 0)) {
        if (metrics) snprintf(metrics_path, sizeof metrics_path, "%s", metrics);
        else derived(metrics_path, sizeof metrics_path, out, "-metrics.jsonl");
        if (curves) snprintf(curves_path, sizeof curves_path, "%s", curves);
        else derived(curves_path, sizeof curves_path, out, "-curves.png");
    }
    if (sample_every > 0) derived(samples_path, sizeof samples_path, out, "-samples.png");
    if (!cli_has_ext(out, ".safetensors")) {
        fprintf(stderr, "ebm train: --out %s: checkpoints are safetensors files; name it <name>.safetensors\n", out);
        return 2;
    }
    if (export_model && !cli_has_ext(export_model, ".safetensors")) {
        fprintf(stderr, "ebm train: --export %s: models are safetensors files; name it <name>.safetensors\n", export_model);
        return 2;
    }
    const char *paths[] = {out, metrics_path, curves_path, samples_path, export_model ? export_model : ""};
    for (int i = 0; i < 5; i++)
        if (paths[i][0] && cli_check_writable(C, paths[i])) return 1;

    uint16_t mask;
    ebm_status s = digits_parse(cfg.digits, &mask);
    if (s != EBM_STATUS_OK) return cli_fail(C, s);
    dataset d;
    s = dataset_load_dir(cfg.data_dir, "train", mask, cfg.limit, &d);
    if (s != EBM_STATUS_OK) return cli_fail(C, s);
    if (d.n < h->batch) {
        fprintf(stderr, "ebm train: only %d images selected (--digits %s, --limit %d) but --batch is %d: lower --batch\n",
                d.n, cfg.digits, cfg.limit, h->batch);
        dataset_free(&d);
        return 2;
    }
    const uint64_t nb = (uint64_t)(d.n / h->batch);
    if (args_given(&cmd, "iters")) cfg.iters = iters;
    else if (args_given(&cmd, "epochs") || !resume) cfg.iters = (uint64_t)epochs * nb;
    trainer *t = NULL;
    cli_set_threads(threads);
    const train_place where = {device, gpus, threads, tf32};
    if (resume && init_from) {
        fprintf(stderr, "ebm train: give --resume or --init, not both (a resumed run keeps its own parameters)\n");
        dataset_free(&d);
        return 2;
    }
    s = resume ? trainer_resume(resume, &cfg, &d, where, &t) : trainer_create(&cfg, &d, where, &t);
    if (s == EBM_STATUS_OK && init_from) {
        s = trainer_init_from(t, init_from);
        if (s != EBM_STATUS_OK) trainer_free(t);
        else fprintf(stderr, "starting from the parameters of %s\n", init_from);
    }
    if (s != EBM_STATUS_OK) {
        dataset_free(&d);
        return cli_fail(C, s);
    }
    if (resume && cfg.iters <= start_iter) {
        printf("%s is already at iteration %llu of %llu: nothing to do (raise --iters or --epochs to train more)\n",
               resume, (unsigned long long)start_iter, (unsigned long long)cfg.iters);
        trainer_free(t);
        dataset_free(&d);
        return 0;
    }
    metrics_log *ml = NULL;
    if (metrics_path[0]) {
        s = metrics_open(metrics_path, start_iter, &ml);
        if (s != EBM_STATUS_OK) {
            trainer_free(t);
            dataset_free(&d);
            return cli_fail(C, s);
        }
    }
    net *n = trainer_net(t);
    char lr_note[64] = "";
    if (cfg.lr_cosine) snprintf(lr_note, sizeof lr_note, " (cosine to %g)", cfg.lr_final);
    if (resume)
        fprintf(stderr, "resuming %s at iteration %llu of %llu\n", resume, (unsigned long long)start_iter,
                (unsigned long long)cfg.iters);
    fprintf(stderr,
            "training %s (%zu parameters) on %d images (digits %s) from %s: %llu iterations (%llu per epoch), batch %d, "
            "%d negatives from %s, %d Langevin steps (eps %g, noise %g, clip %g), lr %g%s, alpha %g, %s%s\n",
            cfg.arch, n->nparams, d.n, cfg.digits, cfg.data_dir, (unsigned long long)cfg.iters, (unsigned long long)nb,
            h->batch, h->n_samples, h->buffer_size ? "a replay buffer" : "noise (short-run)", h->steps, h->lv.eps,
            h->lv.sigma < 0 ? (double)langevin_sigma(&h->lv) : (double)h->lv.sigma, h->lv.grad_clip, h->lr, lr_note, h->alpha,
            device < 0 ? "cpu" : "cuda", gpus > 1 ? " (data-parallel on several GPUs)" : "");
    install_handlers();
    train_run_opts o = {
        .out = out,
        .checkpoint_every = ckpt_every,
        .samples_png = samples_path[0] ? samples_path : NULL,
        .sample_every = sample_every,
        .sample_steps = sample_steps > 0 ? sample_steps : h->buffer_size == 0 ? h->steps : 256,
        .metrics = ml,
        .metrics_every = metrics_every,
        .curves_png = curves_path[0] ? curves_path : NULL,
        .export_model = export_model,
        .progress = stderr,
        .progress_tty = isatty(STDERR_FILENO),
        .log_every = log_every,
        .max_seconds = 60.0 * max_minutes,
        .stop = &stop_flag,
    };
    const double t0 = ebm_now();
    s = trainer_run(t, &o);
    const double dt = ebm_now() - t0;
    const uint64_t done = trainer_iteration(t) - start_iter;
    if (s == EBM_STATUS_OK) {
        printf("trained iterations %llu..%llu in %.1f s (%.2f it/s); wrote %s", (unsigned long long)start_iter + 1,
               (unsigned long long)trainer_iteration(t), dt, dt > 0 ? done / dt : 0.0, out);
        if (export_model) printf(", %s", export_model);
        if (o.samples_png) printf(", %s", o.samples_png);
        if (ml) printf(", %s, %s", metrics_path, curves_path);
        printf("\n");
        if (trainer_iteration(t) < cfg.iters)
            printf("stopped by --max-minutes at iteration %llu of %llu; continue with --resume %s\n",
                   (unsigned long long)trainer_iteration(t), (unsigned long long)cfg.iters, out);
    }
    r = s == EBM_STATUS_OK ? 0 : cli_fail(C, s);
    metrics_close(ml);
    trainer_free(t);
    dataset_free(&d);
    return r;
}
