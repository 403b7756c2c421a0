/* args.h - the flag parser of the ebm command: a table of options per subcommand.
 *
 *   --flag VALUE and --flag=VALUE are the same; so are --n-samples and --n_samples.
 *   Short options take a value too: -n 16 or -n16.  Numbers are checked as a whole
 *   ("ebm train: --lr expects a positive number, got 'abc'"); unknown flags are refused
 *   with the nearest known one suggested.  A flag's dst holds its default before parsing,
 *   which --help prints. */
#ifndef EBM_ARGS_H
#define EBM_ARGS_H

#include <stdint.h>
#include <stdio.h>

typedef enum {
    ARG_FLAG,   /* int*: set to 1, takes no value */
    ARG_STR,    /* const char**: points into argv */
    ARG_INT,    /* int* */
    ARG_U64,    /* uint64_t* */
    ARG_FLOAT   /* float* */
} arg_type;

enum {
    ARG_ANY = 0,
    ARG_POS = 1,     /* > 0 */
    ARG_NONNEG = 2,  /* >= 0 */
    ARG_AUTO = 4     /* ARG_FLOAT: the word "auto" stores -1 */
};

typedef struct {
    const char *name;   /* long name with dashes, no leading "--" */
    char short_name;    /* or 0 */
    arg_type type;
    void *dst;
    int check;          /* ARG_POS | ARG_NONNEG | ARG_AUTO */
    const char *meta;   /* value placeholder in --help ("N", "FILE") */
    const char *help;
    int given;          /* set by args_parse when the flag appears */
} arg_opt;

typedef struct {
    const char *name;       /* "train": messages say "ebm train: ..." */
    const char *synopsis;   /* one line after "usage: ebm train " */
    const char *about;      /* a paragraph */
    arg_opt *opts;
    int nopts;
} arg_cmd;

/* Parses argv[1..argc-1] (argv[0] is the subcommand's name).  Returns 0 when parsed, 2
 * after printing a usage error to stderr, -1 after printing --help to stdout. */
int args_parse(arg_cmd *cmd, int argc, char **argv);
void args_usage(const arg_cmd *cmd, FILE *f);
/* Whether flag `name` was given (asserts that the name exists). */
int args_given(const arg_cmd *cmd, const char *name);
/* Levenshtein distance, for suggestions (also used for subcommand names). */
int args_distance(const char *a, const char *b);

#endif
