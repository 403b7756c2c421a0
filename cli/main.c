/* main.c - the ebm command: dispatches to one subcommand per file (cli/cmd_<name>.c).
 * Adding a subcommand is one line in EBM_COMMANDS plus its file. */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "ebm.h"

#define EBM_COMMANDS(X)                                                              \
    X(train, "train an energy-based model on MNIST digits")                          \
    X(sample, "draw new digits from a model (PNG grid, IDX file or the terminal)")   \
    X(chain, "watch Langevin chains turn noise into digits (PNG strip or GIF)")   \
    X(eval, "sample quality in numbers: FID vs MNIST, confidence, class balance, OOD AUROC") \
    X(latent, "binarized MNIST: autoencoder + energy model on its codes (train|infer|plot)") \
    X(serve, "web page + JSON API: generate, watch chains live, draw, follow training") \
    X(bench, "throughput here: Langevin image-steps/s and GFLOP/s per batch, training it/s")

#define DECLARE(name, about) int cmd_##name(int argc, char **argv);
EBM_COMMANDS(DECLARE)

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *about;
} commands[] = {
#define ENTRY(name, about) {#name, cmd_##name, about},
    EBM_COMMANDS(ENTRY)
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f) {
    fprintf(f, "ebm %s - energy-based generative models of handwritten digits\n\nusage: ebm <command> [flags]\n\n"
               "commands:\n", EBM_VERSION);
    for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].about);
    fprintf(f, "  %-10s %s\n  %-10s %s\n\n'ebm <command> --help' lists a command's flags.\n", "version",
            "print the version", "help", "this text, or 'ebm help <command>'");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "version") == 0 || strcmp(name, "--version") == 0) {
        printf("ebm %s\n", EBM_VERSION);
        return 0;
    }
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc > 2) {
            for (int i = 0; i < NCOMMANDS; i++)
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *args[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, args) == 0 ? 0 : 2;
                }
            fprintf(stderr, "ebm help: no command '%s'\n", argv[2]);
            return 2;
        }
        usage(stdout);
        return 0;
    }
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    const char *best = NULL;
    int bd = 3;
    for (int i = 0; i < NCOMMANDS; i++) {
        int d = args_distance(name, commands[i].name);
        if (d < bd) bd = d, best = commands[i].name;
    }
    fprintf(stderr, "ebm: unknown command '%s'", name);
    if (best) fprintf(stderr, " (did you mean '%s'?)", best);
    fprintf(stderr, "; run 'ebm help' for the list\n");
    return 2;
}
