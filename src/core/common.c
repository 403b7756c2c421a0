/* common.c - error channel, assert, aligned allocation, clock. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

static _Thread_local char last_error[1024];

const char *ebm_status_name(ebm_status s) {
    switch (s) {
    case EBM_STATUS_OK: return "EBM_STATUS_OK";
    case EBM_STATUS_BAD_ARG: return "EBM_STATUS_BAD_ARG";
    case EBM_STATUS_IO: return "EBM_STATUS_IO";
    case EBM_STATUS_BAD_FILE: return "EBM_STATUS_BAD_FILE";
    case EBM_STATUS_NOMEM: return "EBM_STATUS_NOMEM";
    case EBM_STATUS_DIVERGED: return "EBM_STATUS_DIVERGED";
    case EBM_STATUS_UNSUPPORTED: return "EBM_STATUS_UNSUPPORTED";
    case EBM_STATUS_INTERRUPTED: return "EBM_STATUS_INTERRUPTED";
    }
    return "EBM_STATUS_UNKNOWN";
}

const char *ebm_last_error(void) { return last_error; }

ebm_status ebm_fail(ebm_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

void ebm_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* Messages longer than the buffer are cut; the prefix and its start matter most. */
    size_t plen = strlen(prefix);
    if (plen > sizeof last_error - 3) plen = sizeof last_error - 3;
    memcpy(last_error, prefix, plen);
    memcpy(last_error + plen, ": ", 2);
    size_t room = sizeof last_error - plen - 3, olen = strnlen(old, room);
    memcpy(last_error + plen + 2, old, olen);
    last_error[plen + 2 + olen] = '\0';
}

void ebm_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "ebm: internal error: assertion `%s` failed at %s:%d (a bug: please report it)\n",
            cond, file, line);
    fflush(stderr);
    abort();
}

void *ebm_alloc(size_t bytes) {
    if (bytes == 0) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void ebm_free(void *p) { free(p); }

double ebm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
