/* checkpoint.c - network tensors + metadata in safetensors files (see checkpoint.h). */
#include "checkpoint.h"

#include <string.h>
#include <time.h>

#include "../core/common.h"

static void fmt_shape(char *buf, size_t len, const int64_t *shape, int ndim) {
    size_t k = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < ndim && k < len; i++)
        k += (size_t)snprintf(buf + k, len - k, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (k < len) snprintf(buf + k, len - k, "]");
}

ebm_status ckpt_save(const char *path, const net *n, const char *format, const ckpt_tensor *extra, int nextra,
                     const ckpt_meta *meta, int nmeta) {
    st_writer *w = st_writer_new();
    if (!w) return ebm_fail(EBM_STATUS_NOMEM, "cannot write %s: out of memory", path);
    ebm_status s = EBM_STATUS_OK;
    char name[64];
    for (int j = 0; j < net_num_tensors(n) && s == EBM_STATUS_OK; j++) {
        int ndim;
        int64_t shape[4];
        size_t off, len;
        net_tensor_info(n, j, name, sizeof name, &ndim, shape, &off, &len);
        s = st_writer_add(w, name, ST_F32, ndim, shape, n->params + off);
    }
    for (int j = 0; j < nextra && s == EBM_STATUS_OK; j++)
        s = st_writer_add(w, extra[j].name, ST_F32, extra[j].ndim, extra[j].shape, extra[j].data);
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const ckpt_meta std[] = {
        {"format", format},
        {"spec", n->spec},
        {"data_range", CKPT_DATA_RANGE},
        {"energy", n->out_dim == 1 ? "E(x) = -f(x)" : "E(x,y) = -f(x)[y], E(x) = -logsumexp_y f(x)[y]"},
        {"layout", "input NCHW as torch (1 channel: 28x28 row-major pixels); weights in torch layout"},
        {"ebm_version", EBM_VERSION},
        {"created", created},
    };
    for (size_t j = 0; j < sizeof std / sizeof std[0] && s == EBM_STATUS_OK; j++)
        s = st_writer_meta(w, std[j].key, std[j].value);
    for (int j = 0; j < nmeta && s == EBM_STATUS_OK; j++) s = st_writer_meta(w, meta[j].key, meta[j].value);
    if (s != EBM_STATUS_OK) {
        st_writer_free(w);
        ebm_error_prefix("cannot write %s", path);
        return s;
    }
    return st_writer_commit(w, path);
}

ebm_status ckpt_open(const char *path, st_file *f) {
    EBM_TRY(st_read(path, f));
    if (!st_find(f, "0.weight")) {
        st_free(f);
        return ebm_fail(EBM_STATUS_BAD_FILE,
                        "%s: no tensor '0.weight': a safetensors file, but not an ebm model or checkpoint", path);
    }
    return EBM_STATUS_OK;
}

const char *ckpt_meta_get(const st_file *f, const char *key) { return st_meta(f, key); }

ebm_status ckpt_load_params(const st_file *f, net *n) {
    const char *src = f->source ? f->source : "model";
    const char *spec = st_meta(f, "spec");
    if (spec) {
        char canon[NET_SPEC_MAX];
        ebm_status s = net_spec_expand(spec, canon, sizeof canon);
        if (s != EBM_STATUS_OK) {
            ebm_error_prefix("%s: architecture in metadata", src);
            return EBM_STATUS_BAD_FILE;
        }
        if (strcmp(canon, n->spec) != 0)
            return ebm_fail(EBM_STATUS_BAD_FILE,
                            "%s: the model's architecture is '%s', but '%s' was expected (a different --arch?)", src,
                            canon, n->spec);
    }
    char name[64];
    for (int j = 0; j < net_num_tensors(n); j++) {
        int ndim;
        int64_t shape[4];
        size_t off, len;
        net_tensor_info(n, j, name, sizeof name, &ndim, shape, &off, &len);
        const st_tensor *t = st_find(f, name);
        if (!t)
            return ebm_fail(EBM_STATUS_BAD_FILE, "%s: tensor '%s' missing: not a model of architecture '%s'", src,
                            name, n->spec);
        int same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
        if (!same) {
            char got[96], want[96];
            fmt_shape(got, sizeof got, t->shape, t->ndim);
            fmt_shape(want, sizeof want, shape, ndim);
            return ebm_fail(EBM_STATUS_BAD_FILE,
                            "%s: tensor '%s' has shape %s but architecture '%s' needs %s: the file was written for "
                            "another architecture",
                            src, name, got, n->spec, want);
        }
        EBM_TRY(st_get_f32(f, name, n->params + off, len));
    }
    return EBM_STATUS_OK;
}

ebm_status ckpt_load_net(const st_file *f, uint64_t seed, net **out) {
    *out = NULL;
    const char *spec = st_meta(f, "spec");
    net *n;
    ebm_status s = net_create(&n, spec ? spec : "cnn-small", seed);
    if (s != EBM_STATUS_OK) {
        ebm_error_prefix("%s: architecture '%s' in metadata", f->source ? f->source : "model",
                         spec ? spec : "cnn-small");
        return EBM_STATUS_BAD_FILE;
    }
    s = ckpt_load_params(f, n);
    if (s != EBM_STATUS_OK) {
        if (!spec) ebm_error_prefix("no 'spec' in its metadata, so cnn-small was tried");
        net_free(n);
        return s;
    }
    *out = n;
    return EBM_STATUS_OK;
}

ebm_status ckpt_load_model(const char *path, net **out) {
    st_file f;
    *out = NULL;
    EBM_TRY(ckpt_open(path, &f));
    ebm_status s = ckpt_load_net(&f, 0, out);
    st_free(&f);
    return s;
}
