/* args.c - flag parsing and --help for the subcommands (see args.h). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

int args_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

/* "n_samples" -> "n-samples" into buf. */
static void normalize(const char *s, size_t len, char *buf, size_t cap) {
    size_t k = 0;
    for (; k < len && k + 1 < cap; k++) buf[k] = s[k] == '_' ? '-' : s[k];
    buf[k] = 0;
}

static arg_opt *find_long(arg_cmd *cmd, const char *name) {
    for (int i = 0; i < cmd->nopts; i++)
        if (strcmp(cmd->opts[i].name, name) == 0) return &cmd->opts[i];
    return NULL;
}

static arg_opt *find_short(arg_cmd *cmd, char c) {
    for (int i = 0; i < cmd->nopts; i++)
        if (cmd->opts[i].short_name == c) return &cmd->opts[i];
    return NULL;
}

static const char *nearest(const arg_cmd *cmd, const char *name) {
    const char *best = NULL;
    int bd = 99;
    for (int i = 0; i < cmd->nopts; i++) {
        int d = args_distance(name, cmd->opts[i].name);
        if (strncmp(name, cmd->opts[i].name, strlen(name)) == 0 && strlen(name) >= 2) d = 1;
        if (d < bd) bd = d, best = cmd->opts[i].name;
    }
    return bd <= 2 || (best && bd <= (int)strlen(name) / 3) ? best : NULL;
}

static const char *kind_word(const arg_opt *o) {
    int integer = o->type == ARG_INT || o->type == ARG_U64;
    if (o->check & ARG_POS) return integer ? "a positive integer" : "a positive number";
    if (o->check & ARG_NONNEG) return integer ? "a non-negative integer" : "a non-negative number";
    return integer ? "an integer" : "a number";
}

static int bad_value(const arg_cmd *cmd, const arg_opt *o, const char *v) {
    fprintf(stderr, "ebm %s: --%s expects %s%s, got '%s'\n", cmd->name, o->name, kind_word(o),
            (o->check & ARG_AUTO) ? " or 'auto'" : "", v);
    return 2;
}

static int set_value(const arg_cmd *cmd, arg_opt *o, const char *v) {
    char *end;
    errno = 0;
    switch (o->type) {
    case ARG_FLAG:
        *(int *)o->dst = 1;
        return 0;
    case ARG_STR:
        if (!*v) {
            fprintf(stderr, "ebm %s: --%s needs a non-empty value\n", cmd->name, o->name);
            return 2;
        }
        *(const char **)o->dst = v;
        return 0;
    case ARG_INT: {
        long x = strtol(v, &end, 10);
        if (!*v || *end || errno || x < -2147483647L || x > 2147483647L) return bad_value(cmd, o, v);
        if (((o->check & ARG_POS) && x <= 0) || ((o->check & ARG_NONNEG) && x < 0)) return bad_value(cmd, o, v);
        *(int *)o->dst = (int)x;
        return 0;
    }
    case ARG_U64: {
        if (*v == '-') return bad_value(cmd, o, v);
        unsigned long long x = strtoull(v, &end, 10);
        if (!*v || *end || errno || ((o->check & ARG_POS) && x == 0)) return bad_value(cmd, o, v);
        *(uint64_t *)o->dst = (uint64_t)x;
        return 0;
    }
    case ARG_FLOAT: {
        if ((o->check & ARG_AUTO) && strcmp(v, "auto") == 0) {
            *(float *)o->dst = -1.0f;
            return 0;
        }
        float x = strtof(v, &end);
        if (!*v || *end || !isfinite(x)) return bad_value(cmd, o, v);
        if (((o->check & ARG_POS) && !(x > 0)) || ((o->check & ARG_NONNEG) && !(x >= 0))) return bad_value(cmd, o, v);
        *(float *)o->dst = x;
        return 0;
    }
    }
    return 2;
}

int args_parse(arg_cmd *cmd, int argc, char **argv) {
    for (int i = 0; i < cmd->nopts; i++) cmd->opts[i].given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_usage(cmd, stdout);
            return -1;
        }
        arg_opt *o = NULL;
        const char *val = NULL;
        char name[64];
        if (a[0] == '-' && a[1] == '-' && a[2]) {
            const char *eq = strchr(a + 2, '=');
            normalize(a + 2, eq ? (size_t)(eq - a - 2) : strlen(a + 2), name, sizeof name);
            o = find_long(cmd, name);
            if (!o) {
                const char *s = nearest(cmd, name);
                fprintf(stderr, "ebm %s: unknown flag --%s", cmd->name, name);
                if (s) fprintf(stderr, " (did you mean --%s?)", s);
                fprintf(stderr, "; see 'ebm %s --help'\n", cmd->name);
                return 2;
            }
            if (eq) val = eq + 1;
        } else if (a[0] == '-' && a[1] && a[1] != '-' && !(a[1] >= '0' && a[1] <= '9')) {
            o = find_short(cmd, a[1]);
            if (!o) {
                fprintf(stderr, "ebm %s: unknown flag -%c; see 'ebm %s --help'\n", cmd->name, a[1], cmd->name);
                return 2;
            }
            if (a[2]) val = a[2] == '=' ? a + 3 : a + 2;
        } else {
            fprintf(stderr, "ebm %s: unexpected argument '%s' (flags start with --); see 'ebm %s --help'\n", cmd->name,
                    a, cmd->name);
            return 2;
        }
        if (o->type == ARG_FLAG) {
            if (val) {
                fprintf(stderr, "ebm %s: --%s takes no value (got '%s')\n", cmd->name, o->name, val);
                return 2;
            }
        } else if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ebm %s: --%s needs a value (%s)\n", cmd->name, o->name, o->meta ? o->meta : "VALUE");
                return 2;
            }
            val = argv[++i];
        }
        int r = set_value(cmd, o, val ? val : "");
        if (r) return r;
        o->given = 1;
    }
    return 0;
}

void args_usage(const arg_cmd *cmd, FILE *f) {
    fprintf(f, "usage: ebm %s %s\n\n%s\n\nflags:\n", cmd->name, cmd->synopsis, cmd->about);
    for (int i = 0; i < cmd->nopts; i++) {
        const arg_opt *o = &cmd->opts[i];
        char left[80];
        int k = 0;
        if (o->short_name) k = snprintf(left, sizeof left, "-%c, ", o->short_name);
        snprintf(left + k, sizeof left - (size_t)k, "--%s%s%s", o->name, o->type == ARG_FLAG ? "" : " ",
                 o->type == ARG_FLAG ? "" : (o->meta ? o->meta : "VALUE"));
        char def[64] = "";
        switch (o->type) {
        case ARG_STR:
            if (*(const char **)o->dst) snprintf(def, sizeof def, " (default %s)", *(const char **)o->dst);
            break;
        case ARG_INT: /* a negative default means "decided later" (the help text says how) */
            if (*(int *)o->dst >= 0) snprintf(def, sizeof def, " (default %d)", *(int *)o->dst);
            break;
        case ARG_U64: snprintf(def, sizeof def, " (default %llu)", (unsigned long long)*(uint64_t *)o->dst); break;
        case ARG_FLOAT:
            if (isnan(*(float *)o->dst)) break; /* the default is decided later (help says which) */
            if ((o->check & ARG_AUTO) && *(float *)o->dst < 0) snprintf(def, sizeof def, " (default auto)");
            else snprintf(def, sizeof def, " (default %g)", *(float *)o->dst);
            break;
        case ARG_FLAG: break;
        }
        fprintf(f, "  %-26s %s%s\n", left, o->help, def);
    }
}

int args_given(const arg_cmd *cmd, const char *name) {
    for (int i = 0; i < cmd->nopts; i++)
        if (strcmp(cmd->opts[i].name, name) == 0) return cmd->opts[i].given;
    EBM_ASSERT(!"args_given: no such flag");
    return 0;
}
