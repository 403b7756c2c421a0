/* metrics.c - JSON-lines training log (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../core/common.h"

struct metrics_log {
    FILE *f;
    char *path;
};

/* Parses one line into r; 0 when it is not a metrics object. */
static int parse_row(const char *line, metrics_row *r) {
    cJSON *j = cJSON_Parse(line);
    if (!j) return 0;
    const char *keys[] = {"iteration", "time", "loss", "e_pos", "e_neg", "grad_norm", "lr"};
    double v[7];
    int ok = cJSON_IsObject(j);
    for (int k = 0; ok && k < 7; k++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
        ok = cJSON_IsNumber(x);
        if (ok) v[k] = x->valuedouble;
    }
    cJSON_Delete(j);
    if (!ok || v[0] < 0) return 0;
    r->iteration = (uint64_t)v[0];
    r->time = v[1];
    r->loss = (float)v[2];
    r->e_pos = (float)v[3];
    r->e_neg = (float)v[4];
    r->grad_norm = (float)v[5];
    r->lr = (float)v[6];
    return 1;
}

/* Reads the whole file into a NUL-terminated string; NULL with errno when absent. */
static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (n + 1 < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) free(buf);
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf || err) {
        free(buf);
        errno = err ? EIO : ENOMEM;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

ebm_status metrics_open(const char *path, uint64_t keep_upto, metrics_log **out) {
    *out = NULL;
    char *old = NULL;
    size_t len = 0;
    if (keep_upto > 0) {
        old = slurp(path, &len);
        if (!old && errno != ENOENT)
            return ebm_fail(EBM_STATUS_IO, "cannot read metrics log %s: %s", path, strerror(errno));
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        int err = errno;
        free(old);
        return ebm_fail(EBM_STATUS_IO, "cannot write %s: %s", path, strerror(err));
    }
    /* Keep the lines up to the checkpoint; rewriting in place is fine: the log is not
     * precious state, the checkpoint is. */
    for (char *line = old, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        else next = line + strlen(line);
        metrics_row r;
        if (parse_row(line, &r) && r.iteration <= keep_upto) fprintf(f, "%s\n", line);
    }
    free(old);
    fflush(f);
    metrics_log *m = calloc(1, sizeof *m);
    char *p = strdup(path);
    if (!m || !p) {
        fclose(f);
        free(m);
        free(p);
        return ebm_fail(EBM_STATUS_NOMEM, "out of memory");
    }
    m->f = f;
    m->path = p;
    *out = m;
    return EBM_STATUS_OK;
}

ebm_status metrics_append(metrics_log *m, const metrics_row *r) {
    fprintf(m->f,
            "{\"iteration\": %llu, \"time\": %.3f, \"loss\": %.9g, \"e_pos\": %.9g, \"e_neg\": %.9g, "
            "\"grad_norm\": %.9g, \"lr\": %.9g}\n",
            (unsigned long long)r->iteration, r->time, r->loss, r->e_pos, r->e_neg, r->grad_norm, r->lr);
    if (fflush(m->f) != 0 || ferror(m->f))
        return ebm_fail(EBM_STATUS_IO, "cannot write %s: %s", m->path, strerror(errno));
    return EBM_STATUS_OK;
}

const char *metrics_path(const metrics_log *m) { return m->path; }

void metrics_close(metrics_log *m) {
    if (!m) return;
    fclose(m->f);
    free(m->path);
    free(m);
}

ebm_status metrics_read(const char *path, metrics_row **rows, int *n) {
    *rows = NULL;
    *n = 0;
    size_t len;
    char *text = slurp(path, &len);
    if (!text) return ebm_fail(EBM_STATUS_IO, "cannot read %s: %s", path, strerror(errno));
    int cap = 0, count = 0, lineno = 0;
    metrics_row *out = NULL;
    ebm_status s = EBM_STATUS_OK;
    for (char *line = text, *next; *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        else next = line + strlen(line);
        lineno++;
        if (line[strspn(line, " \t\r")] == 0) continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 256;
            metrics_row *nr = realloc(out, sizeof *out * (size_t)cap);
            if (!nr) {
                s = ebm_fail(EBM_STATUS_NOMEM, "out of memory reading %s", path);
                break;
            }
            out = nr;
        }
        if (!parse_row(line, &out[count])) {
            s = ebm_fail(EBM_STATUS_BAD_FILE, "%s:%d: not a metrics line (JSON object with iteration, time, loss, "
                                              "e_pos, e_neg, grad_norm, lr)", path, lineno);
            break;
        }
        count++;
    }
    free(text);
    if (s != EBM_STATUS_OK) {
        free(out);
        return s;
    }
    *rows = out;
    *n = count;
    return EBM_STATUS_OK;
}
