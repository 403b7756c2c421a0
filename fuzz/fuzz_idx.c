// FUZZ_SOURCES: src/data/idx.c src/io/atomic.c src/core/common.c
/* fuzz_idx.c - libFuzzer target for the IDX reader.
 *
 * Each input goes through idx_parse (memory) and through idx_read (a memfd, so zlib's
 * gzip and raw paths both run).  For raw inputs the two readers must agree: same status,
 * same dims and bytes.  Any crash, sanitizer report or disagreement is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/common.h"
#include "data/idx.h"

static int memfd = -1;
static char memfd_path[64];

static void check_consistent(const idx_array *a) {
    size_t count = 1;
    if (a->ndim < 1 || a->ndim > IDX_MAX_DIMS) abort();
    for (int i = 0; i < a->ndim; i++) count *= a->dims[i];
    if (count != a->count || count == 0 || count > IDX_MAX_BYTES || !a->data) abort();
    volatile uint8_t sink = a->data[0] ^ a->data[count - 1]; /* touch both ends for ASan */
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    idx_array p, r;
    ebm_status sp = idx_parse(data, size, "fuzz", &p);
    if (sp == EBM_STATUS_OK) check_consistent(&p);
    else if (p.data || sp != EBM_STATUS_BAD_FILE) abort();

    if (memfd < 0) {
        memfd = memfd_create("fuzz_idx", 0);
        if (memfd < 0) abort();
        snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    }
    if (ftruncate(memfd, 0) != 0 || (size && pwrite(memfd, data, size, 0) != (ssize_t)size)) abort();
    ebm_status sr = idx_read(memfd_path, &r);
    if (sr == EBM_STATUS_OK) check_consistent(&r);
    else if (r.data) abort();

    int gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip) {
        if (sr != sp) {
            fprintf(stderr, "idx_read says %s, idx_parse says %s\n", ebm_status_name(sr), ebm_status_name(sp));
            abort();
        }
        if (sr == EBM_STATUS_OK &&
            (r.ndim != p.ndim || memcmp(r.dims, p.dims, sizeof r.dims) != 0 || memcmp(r.data, p.data, r.count) != 0))
            abort();
    }
    idx_free(&p);
    idx_free(&r);
    return 0;
}
