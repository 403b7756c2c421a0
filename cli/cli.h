/* cli.h - what the ebm subcommands share: exit codes, error printing, output checks,
 * loading a model with its sampler defaults, and the backend that runs the chains.
 *
 * Exit codes: 0 success, 1 runtime failure (missing or bad file, I/O, divergence),
 * 2 usage (bad flag or value), 130 interrupted (SIGINT, state saved). */
#ifndef EBM_CLI_H
#define EBM_CLI_H

#include <stdint.h>

#include "ebm.h"
#include "core/net.h"
#include "sample/langevin.h"
#include "train/backend.h"

/* Exit code for a status. */
int cli_exit_code(ebm_status s);
/* Prints "ebm <cmd>: <last error>" to stderr and returns the exit code of s. */
int cli_fail(const char *cmd, ebm_status s);
/* 1 when path ends with ext (case-insensitive), e.g. ".png". */
int cli_has_ext(const char *path, const char *ext);
/* Checks that path can be created (its directory exists and is writable, path is not a
 * directory); prints "ebm <cmd>: cannot write <path>: <reason>" and returns 1 if not. */
int cli_check_writable(const char *cmd, const char *path);
/* Parses --device: "cpu" -> -1, "cuda" -> 0, "cuda:N" -> N; prints and returns 2 if bad. */
int cli_parse_device(const char *cmd, const char *s, int *device);
/* Parses --precision: "fp32" -> 0, "tf32" -> 1 (the CUDA chains' convolutions on the TF32
 * tensor cores; needs device >= 0); prints and returns 2 if bad. */
int cli_parse_precision(const char *cmd, const char *s, int device, int *tf32);
#define CLI_PRECISION_HELP                                                                                      \
    "with --device cuda: tf32 runs the ULA chains' convolutions on the TF32 tensor cores (1.7-2.2x "            \
    "faster; dE/dx within about 1e-3 of fp32's; training's parameter gradients stay fp32)"

/* A model loaded for sampling, with the Langevin settings it was trained with (the
 * project defaults for files without a training config). */
typedef struct {
    net *n;
    float eps, noise, grad_clip, lo, hi;
    int trained_steps;       /* Langevin steps per training iteration, 0 if unknown */
    int sample_steps;        /* default chain length for sampling: a short-run model (trained
                              * on chains from noise) samples best with its training length;
                              * a replay-buffer model with CLI_LONG_CHAIN steps */
    int conditional;
    int nclasses;            /* conditional models: the digits it was trained on, ascending (every */
    int classes[TRAIN_MAX_CLASSES]; /* output when the file does not say); 0 for unconditional ones */
} cli_model;

#define CLI_LONG_CHAIN 256

/* Loads path; prints the error and returns an exit code (0 on success). */
int cli_load_model(const char *cmd, const char *path, int threads, cli_model *m);
void cli_model_free(cli_model *m);
/* 1 when m is conditional and was trained on digit d. */
int cli_model_has_digit(const cli_model *m, int d);
/* m's training digits as text ("3,5"), for messages. */
void cli_model_digits(const cli_model *m, char *buf, size_t len);
/* Checks --digit d for m (d < 0: none asked); prints why not and returns 2, else 0. */
int cli_check_digit(const char *cmd, const cli_model *m, const char *path, int d);
/* --threads N > 0 caps every OpenMP loop (the sampler's too), not only the network's: an
 * idle OpenMP thread spinning on a busy core costs a single-thread run up to 4x. */
void cli_set_threads(int threads);

/* The backend that runs sampling chains on m->n (CPU, or CUDA when device >= 0). */
int cli_backend(const char *cmd, cli_model *m, int device, int tf32, train_backend *be);

/* Uniform noise starting points of n chains (chain i: rng (seed, RNG_STREAM_START, i, 0)). */
void cli_noise_start(float *x, int n, int dim, uint64_t seed, float lo, float hi);

/* Sampler flags shared by sample and chain. */
typedef struct {
    int steps;
    float eps, noise, grad_clip;  /* NAN = the model's own */
    const char *sampler;          /* "ula" | "mala" */
    uint64_t seed;
    const char *device;
    int threads;
    const char *precision; /* fp32 | tf32 */
} cli_sampler_flags;

/* Langevin parameters from the flags and the model; 2 after printing on a bad --sampler. */
int cli_langevin_params(const char *cmd, const cli_sampler_flags *f, const cli_model *m, langevin_params *p);

#define CLI_SAMPLER_OPTS(sf)                                                                                        \
    {"steps", 0, ARG_INT, &(sf).steps, ARG_NONNEG, "N",                                                            \
     "Langevin steps (default: the training chain length for models trained on chains from noise, else 256)", 0},                                     \
    {"eps", 0, ARG_FLOAT, &(sf).eps, ARG_NONNEG, "X", "step size on the clipped gradient (default: the model's)", 0}, \
    {"noise", 0, ARG_FLOAT, &(sf).noise, ARG_NONNEG | ARG_AUTO, "S|auto",                                          \
     "noise sigma; auto = sqrt(2 eps), proper Langevin (default: the model's)", 0},                               \
    {"grad-clip", 0, ARG_FLOAT, &(sf).grad_clip, ARG_ANY, "C", "clip gradients to +-C, <= 0 disables (default: the model's)", 0}, \
    {"sampler", 0, ARG_STR, &(sf).sampler, 0, "ula|mala", "unadjusted Langevin or Metropolis-adjusted (MALA)", 0}, \
    {"seed", 0, ARG_U64, &(sf).seed, 0, "N", "random seed: same seed and flags, same output", 0},                  \
    {"device", 0, ARG_STR, &(sf).device, 0, "cpu|cuda", "where the chains run", 0},                                \
    {"threads", 0, ARG_INT, &(sf).threads, ARG_NONNEG, "N", "CPU threads (0 = all cores)", 0},                     \
    {"precision", 0, ARG_STR, &(sf).precision, 0, "fp32|tf32", CLI_PRECISION_HELP, 0}

#endif
