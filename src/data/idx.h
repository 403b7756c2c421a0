/* idx.h - the IDX format of MNIST (and Fashion-MNIST): read gzipped or raw, write raw.
 *
 * Layout: 2 zero bytes, a type byte (0x08 = uint8 is the only type ebm reads), a byte
 * with the number of dimensions, then each dimension as big-endian uint32, then the data.
 * The reader checks magic, type, dimensions and that the length is exactly what the
 * dimensions say; anything else is EBM_STATUS_BAD_FILE with a message naming the file. */
#ifndef EBM_IDX_H
#define EBM_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "ebm.h"

#define IDX_MAX_DIMS 4
/* Largest data payload accepted (1 GiB): MNIST train images are 47 MB; a header claiming
 * more is taken as corrupt before anything is allocated. */
#define IDX_MAX_BYTES ((size_t)1 << 30)

typedef struct {
    int ndim;
    uint32_t dims[IDX_MAX_DIMS];
    size_t count;      /* product of dims */
    uint8_t *data;     /* count bytes, owned */
} idx_array;

/* Reads path, gzipped (.gz or gzip magic) or raw. */
ebm_status idx_read(const char *path, idx_array *out);
/* Parses an in-memory (already decompressed) IDX image; name is used in messages. */
ebm_status idx_parse(const uint8_t *buf, size_t len, const char *name, idx_array *out);
/* Writes uint8 data atomically (temp file, fsync, rename). */
ebm_status idx_write_u8(const char *path, const uint8_t *data, int ndim, const uint32_t *dims);
void idx_free(idx_array *a);

#endif
