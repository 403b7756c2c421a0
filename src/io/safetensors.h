/* safetensors.h - the safetensors checkpoint format (https://huggingface.co/docs/safetensors).
 *
 * File: 8-byte little-endian header length N, N bytes of JSON header
 *   {"__metadata__": {"key": "string", ...}, "name": {"dtype": "F32", "shape": [..],
 *    "data_offsets": [begin, end]}, ...}, then the data blob (offsets relative to it).
 * The reader trusts nothing: header length within the file, valid JSON, known dtypes,
 * shape product x dtype size == end - begin, offsets inside the blob, no overlaps, and
 * (for F32) finite values where the caller asks.  Writing is atomic. */
#ifndef EBM_SAFETENSORS_H
#define EBM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ebm.h"

#define ST_MAX_DIMS 4
#define ST_NAME_MAX 128

typedef enum { ST_F32, ST_F64, ST_I32, ST_I64, ST_U8 } st_dtype;

typedef struct {
    char name[ST_NAME_MAX];
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t begin, end;        /* byte offsets into the blob */
} st_tensor;

typedef struct {
    int ntensors;
    st_tensor *tensors;
    int nmeta;
    char **meta_keys, **meta_values;   /* __metadata__ string map */
    uint8_t *blob;                     /* tensor data */
    size_t blob_len;
    uint8_t *file;                     /* owned file image (blob points into it) */
    char *source;                      /* file name given to st_read/st_parse, used in messages */
} st_file;

/* Bytes per element ("F32" -> 4) and the dtype's name in the header. */
size_t st_dtype_size(st_dtype d);
const char *st_dtype_name(st_dtype d);
/* Number of elements (product of the shape; 1 for a 0-dim scalar). */
size_t st_numel(const st_tensor *t);

/* Reading.  Failure messages already start with the file name (st_read's path or st_parse's
 * name), so callers need not prefix it again; on failure *out is left empty. */
ebm_status st_read(const char *path, st_file *out);
ebm_status st_parse(const uint8_t *buf, size_t len, const char *name, st_file *out); /* copies buf */
void st_free(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);  /* NULL if absent */
/* Copies tensor `name` as float32 into dst (count elements expected, dtype F32, shape product
 * must equal count); checks all values are finite.  Clear errors otherwise. */
ebm_status st_get_f32(const st_file *f, const char *name, float *dst, size_t count);
/* Copies tensor `name` of any dtype into dst after checking the dtype and the element
 * count (no value checks): for integer tensors such as step counters. */
ebm_status st_get(const st_file *f, const char *name, st_dtype dtype, void *dst, size_t count);

/* Writing: collect tensors (pointers are borrowed until st_writer_commit) and metadata. */
typedef struct st_writer st_writer;
st_writer *st_writer_new(void); /* NULL when out of memory */
ebm_status st_writer_add(st_writer *w, const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                         const void *data);
ebm_status st_writer_meta(st_writer *w, const char *key, const char *value); /* again: replaces */
/* Writes path atomically (path.tmp.<pid>, fsync, rename, fsync dir) and frees w, also on
 * failure; then path holds either the old content or the whole new file. */
ebm_status st_writer_commit(st_writer *w, const char *path);
void st_writer_free(st_writer *w);

#endif
