/* atomic.h - writing a file so that readers see either the old content or the new, never
 * half of it: checkpoints, PNGs and GIFs all go through here.  A crash or a full disk in
 * the middle of a save must not destroy the last good checkpoint. */
#ifndef EBM_ATOMIC_H
#define EBM_ATOMIC_H

#include <stdio.h>

#include "ebm.h"

/* Writes the content into the open temp file f; returns a status, with a message set by
 * ebm_fail (no file name needed: the caller's path is prefixed). */
typedef ebm_status (*io_write_fn)(FILE *f, void *ctx);

/* Calls fn on a temp file path.tmp.<pid> in the same directory, then flushes, fsyncs and
 * renames it over path and fsyncs the directory.  On any failure the temp file is removed,
 * path is left as it was, and the status comes back with "cannot write <path>: " before
 * the message (EBM_STATUS_IO for open/write/rename errors). */
ebm_status io_write_atomic(const char *path, io_write_fn fn, void *ctx);

#endif
