/* common.h - what every module of ebm shares: the always-on assert for programmer
 * errors, the error channel for user-caused failures, and checked allocation.
 *
 * Rule of the house: anything a user can cause (a bad file, flag or request) returns an
 * ebm_status and records a message with ebm_fail(); EBM_ASSERT is for bugs only and
 * aborts with file and line, whatever NDEBUG says. */
#ifndef EBM_COMMON_H
#define EBM_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "ebm.h"

#define EBM_ASSERT(cond)                                                              \
    do {                                                                              \
        if (!(cond)) ebm_assert_fail(#cond, __FILE__, __LINE__);                      \
    } while (0)

_Noreturn void ebm_assert_fail(const char *cond, const char *file, int line);

/* Records a printf-style message as this thread's last error and returns s, so that
 * callers write `return ebm_fail(EBM_STATUS_BAD_FILE, "%s: truncated", path);`. */
ebm_status ebm_fail(ebm_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current error message ("loading model.safetensors: <old message>"). */
void ebm_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Checked allocation: NULL only when the size is 0 or memory is out; the caller turns a
 * NULL into EBM_STATUS_NOMEM via ebm_fail.  Zeroed memory, 64-byte aligned. */
void *ebm_alloc(size_t bytes);
void ebm_free(void *p);

/* Propagate a non-OK status. */
#define EBM_TRY(expr)                                                                 \
    do {                                                                              \
        ebm_status ebm__s = (expr);                                                   \
        if (ebm__s != EBM_STATUS_OK) return ebm__s;                                   \
    } while (0)

/* Monotonic wall-clock seconds. */
double ebm_now(void);

#endif
