/* fuzz_safetensors.c - libFuzzer target for the safetensors reader: st_parse must refuse
 * any malformed input with a status (never crash, overrun, leak or hit UB), and every F32
 * tensor of an accepted file must be readable with st_get_f32. */
// FUZZ_SOURCES: src/io/safetensors.c src/io/atomic.c src/core/common.c
#include <stdint.h>
#include <stdlib.h>

#include "core/common.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    if (st_parse(data, size, "fuzz.safetensors", &f) != EBM_STATUS_OK) {
        EBM_ASSERT(f.file == NULL && f.tensors == NULL); /* cleaned up on failure */
        return 0;
    }
    for (int i = 0; i < f.ntensors; i++) {
        const st_tensor *t = &f.tensors[i];
        EBM_ASSERT(t->begin <= t->end && t->end <= f.blob_len);
        EBM_ASSERT(t->end - t->begin == st_numel(t) * st_dtype_size(t->dtype));
        EBM_ASSERT(st_find(&f, t->name) == t); /* names are unique */
        if (t->dtype != ST_F32) continue;
        size_t n = st_numel(t);
        float *dst = malloc(n ? n * sizeof(float) : 1);
        if (!dst) continue;
        (void)st_get_f32(&f, t->name, dst, n); /* NaN/Inf is a valid refusal */
        free(dst);
    }
    for (int i = 0; i < f.nmeta; i++) EBM_ASSERT(st_meta(&f, f.meta_keys[i]) != NULL);
    st_free(&f);
    return 0;
}
