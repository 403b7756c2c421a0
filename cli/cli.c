/* cli.c - helpers shared by the subcommands (see cli.h). */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "train/trainer.h"

int cli_exit_code(ebm_status s) {
    switch (s) {
    case EBM_STATUS_OK: return 0;
    case EBM_STATUS_BAD_ARG: return 2;
    case EBM_STATUS_INTERRUPTED: return 130;
    default: return 1;
    }
}

int cli_fail(const char *cmd, ebm_status s) {
    fprintf(stderr, "ebm %s: %s\n", cmd, ebm_last_error());
    return cli_exit_code(s);
}

int cli_has_ext(const char *path, const char *ext) {
    size_t lp = strlen(path), le = strlen(ext);
    return lp > le && strcasecmp(path + lp - le, ext) == 0;
}

int cli_check_writable(const char *cmd, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "ebm %s: cannot write %s: Is a directory\n", cmd, path);
        return 1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    if (access(dir, W_OK) != 0) {
        fprintf(stderr, "ebm %s: cannot write %s: %s\n", cmd, path, strerror(errno));
        return 1;
    }
    return 0;
}

int cli_parse_device(const char *cmd, const char *s, int *device) {
    char *end;
    if (strcmp(s, "cpu") == 0) {
        *device = -1;
        return 0;
    }
    if (strcmp(s, "cuda") == 0 || strcmp(s, "gpu") == 0) {
        *device = 0;
        return 0;
    }
    if (strncmp(s, "cuda:", 5) == 0) {
        long v = strtol(s + 5, &end, 10);
        if (s[5] && !*end && v >= 0 && v < 64) {
            *device = (int)v;
            return 0;
        }
    }
    fprintf(stderr, "ebm %s: --device expects cpu, cuda or cuda:N, got '%s'\n", cmd, s);
    return 2;
}

int cli_parse_precision(const char *cmd, const char *s, int device, int *tf32) {
    if (strcmp(s, "fp32") == 0 || strcmp(s, "tf32") == 0) {
        *tf32 = s[0] == 't';
        if (*tf32 && device < 0) {
            fprintf(stderr, "ebm %s: --precision tf32 runs on the GPU's tensor cores: it needs --device cuda\n", cmd);
            return 2;
        }
        return 0;
    }
    fprintf(stderr, "ebm %s: --precision expects fp32 or tf32, got '%s'\n", cmd, s);
    return 2;
}

int cli_load_model(const char *cmd, const char *path, int threads, cli_model *m) {
    memset(m, 0, sizeof *m);
    st_file f;
    ebm_status s = ckpt_open(path, &f);
    if (s != EBM_STATUS_OK) return cli_fail(cmd, s);
    s = ckpt_load_net(&f, 0, &m->n);
    if (s != EBM_STATUS_OK) {
        st_free(&f);
        return cli_fail(cmd, s);
    }
    train_config c;
    train_config_default(&c);
    const char *json = ckpt_meta_get(&f, "train_config");
    c.hp.conditional = -1; /* stays -1 when the file does not say */
    if (json && train_config_from_json(json, &c) == EBM_STATUS_OK) m->trained_steps = c.hp.steps;
    m->sample_steps = c.hp.buffer_size == 0 && m->trained_steps > 0 ? m->trained_steps : CLI_LONG_CHAIN;
    m->eps = c.hp.lv.eps;
    m->noise = c.hp.lv.sigma;
    m->grad_clip = c.hp.lv.grad_clip;
    m->lo = c.hp.lv.lo;
    m->hi = c.hp.lv.hi;
    /* Conditional = trained with labels.  A several-output network trained without them is an
     * unconditional model with a mixture energy, E(x) = -logsumexp_y f(x)[y]; files
     * without a training config are taken as conditional when they have several outputs. */
    m->conditional = c.hp.conditional >= 0 ? c.hp.conditional && m->n->out_dim > 1 : m->n->out_dim > 1;
    /* the digits it learnt: the config's --digits (all outputs for files without one) */
    uint16_t mask = 0;
    if (json && digits_parse(c.digits, &mask) != EBM_STATUS_OK) mask = 0;
    if (m->conditional) m->nclasses = train_chain_classes(mask, m->n->out_dim, m->classes);
    st_free(&f);
    net_set_threads(m->n, threads);
    cli_set_threads(threads);
    return 0;
}

void cli_set_threads(int threads) {
    if (threads > 0) omp_set_num_threads(threads);
}

void cli_model_free(cli_model *m) {
    net_free(m->n);
    m->n = NULL;
}

int cli_model_has_digit(const cli_model *m, int d) {
    for (int i = 0; i < m->nclasses; i++)
        if (m->classes[i] == d) return 1;
    return 0;
}

void cli_model_digits(const cli_model *m, char *buf, size_t len) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < m->nclasses && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%d", i ? "," : "", m->classes[i]);
}

int cli_check_digit(const char *cmd, const cli_model *m, const char *path, int d) {
    if (d < 0 || cli_model_has_digit(m, d)) return 0;
    if (!m->conditional) {
        fprintf(stderr, "ebm %s: --digit %d needs a class-conditional model; %s is unconditional (trained without "
                        "labels): leave --digit out\n", cmd, d, path);
    } else {
        char list[64];
        cli_model_digits(m, list, sizeof list);
        fprintf(stderr, "ebm %s: --digit %d: %s was trained on digit%s %s\n", cmd, d, path, m->nclasses == 1 ? "" : "s",
                list);
    }
    return 2;
}

int cli_backend(const char *cmd, cli_model *m, int device, int tf32, train_backend *be) {
    train_hparams hp;
    memset(&hp, 0, sizeof hp); /* sampling only: no batch, no buffer */
    hp.tf32 = tf32;
    hp.lv.lo = m->lo;
    hp.lv.hi = m->hi;
    ebm_status s = device < 0 ? backend_cpu_create(m->n, &hp, be) : backend_cuda_create(m->n, &hp, device, be);
    return s == EBM_STATUS_OK ? 0 : cli_fail(cmd, s);
}

void cli_noise_start(float *x, int n, int dim, uint64_t seed, float lo, float hi) {
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * dim;
        rng_uniform_fill(seed, RNG_STREAM_START, (uint32_t)i, 0, xi, dim);
        for (int k = 0; k < dim; k++) xi[k] = lo + (hi - lo) * xi[k];
    }
}

int cli_langevin_params(const char *cmd, const cli_sampler_flags *f, const cli_model *m, langevin_params *p) {
    memset(p, 0, sizeof *p);
    if (strcmp(f->sampler, "ula") == 0) p->mala = 0;
    else if (strcmp(f->sampler, "mala") == 0) p->mala = 1;
    else {
        fprintf(stderr, "ebm %s: --sampler expects ula or mala, got '%s'\n", cmd, f->sampler);
        return 2;
    }
    p->eps = isnan(f->eps) ? m->eps : f->eps;
    p->sigma = isnan(f->noise) ? m->noise : f->noise;
    p->grad_clip = isnan(f->grad_clip) ? m->grad_clip : f->grad_clip;
    p->lo = m->lo;
    p->hi = m->hi;
    p->seed = f->seed;
    p->chain0 = 0;
    p->step0 = 0;
    return 0;
}
