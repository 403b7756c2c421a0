/* atomic.c - temp file, fsync, rename, fsync of the directory. */
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"

/* The rename is only durable once the directory entry is on disk too.  Filesystems that
 * cannot fsync a directory (EINVAL) are fine: there is nothing more we could do. */
static ebm_status fsync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) >= sizeof dir) return EBM_STATUS_OK;
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return EBM_STATUS_OK; /* e.g. a directory we may write into but not read */
    int rc = fsync(fd), err = errno;
    close(fd);
    if (rc != 0 && err != EINVAL && err != EROFS)
        return ebm_fail(EBM_STATUS_IO, "fsync of directory %s failed: %s", dir, strerror(err));
    return EBM_STATUS_OK;
}

ebm_status io_write_atomic(const char *path, io_write_fn fn, void *ctx) {
    EBM_ASSERT(path && fn);
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) return ebm_fail(EBM_STATUS_NOMEM, "cannot write %s: out of memory", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        ebm_status s = ebm_fail(EBM_STATUS_IO, "cannot write %s: cannot create %s: %s (does the directory exist and is it writable?)",
                                path, tmp, strerror(errno));
        free(tmp);
        return s;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int err = errno;
        close(fd);
        unlink(tmp);
        free(tmp);
        return ebm_fail(EBM_STATUS_IO, "cannot write %s: %s", path, strerror(err));
    }
    ebm_status s = fn(f, ctx);
    if (s == EBM_STATUS_OK && (fflush(f) != 0 || ferror(f)))
        s = ebm_fail(EBM_STATUS_IO, "%s (disk full?)", strerror(errno));
    if (s == EBM_STATUS_OK && fsync(fileno(f)) != 0) s = ebm_fail(EBM_STATUS_IO, "fsync: %s", strerror(errno));
    if (fclose(f) != 0 && s == EBM_STATUS_OK) s = ebm_fail(EBM_STATUS_IO, "close: %s", strerror(errno));
    if (s == EBM_STATUS_OK && rename(tmp, path) != 0)
        s = ebm_fail(EBM_STATUS_IO, "rename of %s failed: %s", tmp, strerror(errno));
    if (s != EBM_STATUS_OK) {
        unlink(tmp);
        free(tmp);
        ebm_error_prefix("cannot write %s", path);
        return s;
    }
    free(tmp);
    s = fsync_dir_of(path);
    if (s != EBM_STATUS_OK) ebm_error_prefix("cannot write %s", path);
    return s;
}
