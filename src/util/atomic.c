#include "util/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void atomic_clear(AtomicFile *a) {
    free(a->path);
    free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

FILE *atomic_open(AtomicFile *a, const char *path, Err *e) {
    memset(a, 0, sizeof *a);
    size_t n = strlen(path);
    a->path = xstrdup(path);
    a->tmp = xmalloc(n + 16);
    snprintf(a->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(a->tmp);
    if (fd < 0) {
        err_set(e, "%s: cannot create temp file: %s", path, strerror(errno));
        atomic_clear(a);
        return NULL;
    }
    fchmod(fd, 0644);  // mkstemp makes 0600; outputs are ordinary files
    a->f = fdopen(fd, "wb");
    if (!a->f) {
        err_set(e, "%s: fdopen: %s", path, strerror(errno));
        close(fd);
        unlink(a->tmp);
        atomic_clear(a);
        return NULL;
    }
    return a->f;
}

// fsync of the directory holding path, so the rename itself is durable.
static void fsync_parent(const char *path) {
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int atomic_commit(AtomicFile *a, Err *e) {
    if (!a->f) {
        atomic_clear(a);
        return err_set(e, "atomic_commit: file is not open");
    }
    int bad = fflush(a->f) != 0 || ferror(a->f);
    int saved = errno;
    if (!bad && fsync(fileno(a->f)) != 0) bad = 1, saved = errno;
    if (fclose(a->f) != 0 && !bad) bad = 1, saved = errno;
    a->f = NULL;
    if (bad) {
        unlink(a->tmp);
        err_set(e, "%s: write failed: %s", a->path, strerror(saved));
        atomic_clear(a);
        return -1;
    }
    if (rename(a->tmp, a->path) != 0) {
        saved = errno;
        unlink(a->tmp);
        err_set(e, "%s: rename from temp file failed: %s", a->path, strerror(saved));
        atomic_clear(a);
        return -1;
    }
    fsync_parent(a->path);
    atomic_clear(a);
    return 0;
}

void atomic_abort(AtomicFile *a) {
    if (a->f) fclose(a->f);
    if (a->tmp) unlink(a->tmp);
    atomic_clear(a);
}

int write_file_atomic(const char *path, const void *data, size_t n, Err *e) {
    AtomicFile a;
    FILE *f = atomic_open(&a, path, e);
    if (!f) return -1;
    if (n && fwrite(data, 1, n, f) != n) {
        int saved = errno;
        atomic_abort(&a);
        return err_set(e, "%s: write failed: %s", path, strerror(saved));
    }
    return atomic_commit(&a, e);
}

int write_file_in(const char *dir, const char *name, const void *data, size_t n, Err *e) {
    char *path = xasprintf("%s/%s", dir, name);
    int rc = write_file_atomic(path, data, n, e);
    free(path);
    return rc;
}

int mkdir_p(const char *path, Err *e) {
    if (!path || !*path) return err_set(e, "mkdir_p: empty path");
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            err_set(e, "%s: cannot create directory: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        struct stat st;
        if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            err_set(e, "%s: exists and is not a directory", p);
            free(p);
            return -1;
        }
        *s = c;
        if (c == '\0') break;
    }
    free(p);
    return 0;
}

int open_regular(const char *path, Err *e) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(e, "%s: not a regular file", path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

char *read_file(const char *path, size_t *len, Err *e) {
    int fd = open_regular(path, e);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        err_set(e, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        err_set(e, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

json_t *read_json(const char *path, size_t flags, Err *e) {
    size_t len;
    char *text = read_file(path, &len, e);
    if (!text) return NULL;
    json_error_t je;
    json_t *root = json_loadb(text, len, flags, &je);
    free(text);
    if (!root) err_set(e, "%s:%d:%d: malformed JSON: %s", path, je.line, je.column, je.text);
    return root;
}
