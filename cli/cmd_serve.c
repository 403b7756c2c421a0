/* cmd_serve.c - `ebm serve`: a web page (embedded in the binary) and a JSON API to draw
 * digits from one or more models, watch chains live, score and complete drawings, and
 * follow a training run.  Runs until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "core/common.h"
#include "server/server.h"

#define MAX_MODELS 16
#define NAME_LEN 64

/* Takes every --model/-m out of argv (the flag parser keeps only the last of a repeated
 * flag); returns the number of models, or -1 after printing a usage error. */
static int take_models(int *argc, char **argv, const char **models) {
    int k = 0, j = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (strcmp(a, "--model") == 0 || strcmp(a, "-m") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "ebm serve: %s needs a value (FILE)\n", a);
                return -1;
            }
            v = argv[++i];
        } else if (strncmp(a, "--model=", 8) == 0) {
            v = a + 8;
        } else if (strncmp(a, "-m", 2) == 0 && a[2]) {
            v = a[2] == '=' ? a + 3 : a + 2;
        } else {
            argv[j++] = argv[i];
            continue;
        }
        if (k == MAX_MODELS) {
            fprintf(stderr, "ebm serve: at most %d models\n", MAX_MODELS);
            return -1;
        }
        models[k++] = v;
    }
    *argc = j;
    return k;
}

/* "runs/digits.safetensors" -> "digits"; a second "digits" becomes "digits-2". */
static void model_name(const char *path, char names[][NAME_LEN], int i) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t len = strlen(b);
    const char *ext = ".safetensors";
    if (len > strlen(ext) && strcmp(b + len - strlen(ext), ext) == 0) len -= strlen(ext);
    if (len > NAME_LEN - 8) len = NAME_LEN - 8;
    snprintf(names[i], NAME_LEN, "%.*s", (int)len, b);
    for (int dup = 2, clash = 1; clash; dup++) {
        clash = 0;
        for (int j = 0; j < i; j++) clash |= strcmp(names[j], names[i]) == 0;
        if (clash) snprintf(names[i], NAME_LEN, "%.*s-%d", (int)len, b, dup);
    }
}

int cmd_serve(int argc, char **argv) {
    const char *C = "serve";
    const char *model = NULL, *host = "127.0.0.1", *device_s = "cpu", *metrics = NULL, *samples = NULL;
    const char *precision = "fp32";
    int port = 8080, threads = 0, timeout = 30, quiet = 0;
    arg_opt opts[] = {
        {"model", 'm', ARG_STR, &model, 0, "FILE", "model or checkpoint (.safetensors); repeat to serve several", 0},
        {"host", 0, ARG_STR, &host, 0, "ADDR", "address to listen on (0.0.0.0: every interface, reachable by others)", 0},
        {"port", 'p', ARG_INT, &port, ARG_NONNEG, "N", "TCP port (0: any free port, printed at start)", 0},
        {"device", 0, ARG_STR, &device_s, 0, "cpu|cuda", "where the chains run", 0},
        {"precision", 0, ARG_STR, &precision, 0, "fp32|tf32", CLI_PRECISION_HELP, 0},
        {"threads", 0, ARG_INT, &threads, ARG_NONNEG, "N", "CPU threads per computation (0 = all cores)", 0},
        {"metrics", 0, ARG_STR, &metrics, 0, "FILE", "training log (JSON lines of ebm train) for the dashboard", 0},
        {"samples", 0, ARG_STR, &samples, 0, "FILE", "sample grid PNG for the dashboard (default: beside --metrics)", 0},
        {"timeout", 0, ARG_INT, &timeout, ARG_POS, "S", "close connections idle for S seconds", 0},
        {"quiet", 'q', ARG_FLAG, &quiet, 0, NULL, "no access log on stderr", 0},
    };
    arg_cmd cmd = {C, "--model FILE [--model FILE2 ...] [--host 127.0.0.1] [--port 8080] [--device cpu|cuda] [flags]",
                   "Serves a web page to generate digits, watch Langevin chains live, draw a digit and see its\n"
                   "energy or let the model complete it, and follow a training run (--metrics); the page and its\n"
                   "JSON API (docs/API.md) are built into the binary.  Listens on 127.0.0.1 unless --host says\n"
                   "otherwise; Ctrl-C stops it.",
                   opts, (int)(sizeof opts / sizeof opts[0])};
    const char *paths[MAX_MODELS];
    int nmodels = take_models(&argc, argv, paths);
    if (nmodels < 0) return 2;
    int r = args_parse(&cmd, argc, argv);
    if (r) return r < 0 ? 0 : r;
    if (nmodels == 0) {
        fprintf(stderr, "ebm serve: --model FILE is required (e.g. --model models/digits.safetensors)\n");
        return 2;
    }
    if (port > 65535) {
        fprintf(stderr, "ebm serve: --port expects 0..65535, got %d\n", port);
        return 2;
    }
    int device, tf32;
    if ((r = cli_parse_device(C, device_s, &device)) || (r = cli_parse_precision(C, precision, device, &tf32))) return r;

    static char names[MAX_MODELS][NAME_LEN];
    cli_model cms[MAX_MODELS];
    server_model sms[MAX_MODELS];
    memset(cms, 0, sizeof cms);
    memset(sms, 0, sizeof sms);
    int loaded = 0;
    for (; loaded < nmodels && !r; loaded++) {
        if ((r = cli_load_model(C, paths[loaded], threads, &cms[loaded]))) break;
        if ((r = cli_backend(C, &cms[loaded], device, tf32, &sms[loaded].be))) {
            cli_model_free(&cms[loaded]);
            break;
        }
        model_name(paths[loaded], names, loaded);
        const cli_model *m = &cms[loaded];
        sms[loaded].name = names[loaded];
        sms[loaded].n = m->n;
        sms[loaded].eps = m->eps;
        sms[loaded].noise = m->noise;
        sms[loaded].grad_clip = m->grad_clip;
        sms[loaded].lo = m->lo;
        sms[loaded].hi = m->hi;
        sms[loaded].steps = m->sample_steps; /* the chain length the model samples best with */
        sms[loaded].conditional = m->conditional;
        for (int k = 0; k < m->nclasses; k++) sms[loaded].digits |= (uint16_t)(1u << m->classes[k]);
    }

    /* SIGINT/SIGTERM are taken by sigwait below; blocked before the server's threads start
     * so that none of them receives one */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    server *srv = NULL;
    if (!r) {
        server_config c = server_config_default();
        c.host = host;
        c.port = port;
        c.models = sms;
        c.nmodels = nmodels;
        c.metrics_path = metrics;
        c.samples_path = samples;
        c.timeout_s = timeout;
        c.quiet = quiet;
        ebm_status s = server_start(&c, &srv);
        if (s != EBM_STATUS_OK) r = cli_fail(C, s);
    }
    if (!r) {
        int v6 = strchr(host, ':') != NULL;
        printf("ebm serve: http://%s%s%s:%d/  (%d model%s:", v6 ? "[" : "", host, v6 ? "]" : "", server_port(srv),
               nmodels, nmodels == 1 ? "" : "s");
        for (int i = 0; i < nmodels; i++) printf(" %s", names[i]);
        printf(", %s)%s\n", sms[0].be.name, metrics ? "; dashboard reads the training log" : "");
        if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
            printf("ebm serve: listening on every interface: anyone who can reach this machine can use it\n");
        printf("ebm serve: Ctrl-C stops\n");
        fflush(stdout);
        int sig = 0;
        sigwait(&stop, &sig);
        printf("ebm serve: %s, stopping\n", sig == SIGINT ? "interrupted" : "terminated");
        server_stop(srv);
    }
    for (int i = 0; i < loaded; i++) {
        if (sms[i].be.destroy) sms[i].be.destroy(sms[i].be.ctx);
        cli_model_free(&cms[i]);
    }
    return r;
}
