// Output-folder lock (docs/reliability.md, "Concurrent runs").
#include "io/dir_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic.h"

// Under the lock no other run writes here, so an atomic write's temporary file
// (NAME.tmp.XXXXXX, util/atomic.c) is what a killed run left behind: remove it.
static void remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *en;
    while ((en = readdir(d))) {
        const char *t = strstr(en->d_name, ".tmp.");
        if (!t || strlen(t + 5) != 6 || strchr(t + 5, '.')) continue;
        char *p = malloc(strlen(dir) + strlen(en->d_name) + 2);
        if (!p) break;
        sprintf(p, "%s/%s", dir, en->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISREG(st.st_mode)) unlink(p);
        free(p);
    }
    closedir(d);
}

// The holder's pid as it wrote it into the lock file (0 when unreadable).
static long holder_pid(int fd) {
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

int dir_lock(DirLock *l, const char *dir, Err *e) {
    l->fd = -1;
    l->path = NULL;
    if (mkdir_p(dir, e)) return -1;
    size_t n = strlen(dir) + sizeof "/.antibody.lock";
    char *path = xmalloc(n);
    snprintf(path, n, "%s/.antibody.lock", dir);
    // The file is removed on release, so the one we lock may have been unlinked by its
    // previous holder between our open and our flock: retry until the locked file is the
    // one at the path.
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            err_set(e, "%s: cannot open lock file: %s", path, strerror(errno));
            free(path);
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int saved = errno;
            long pid = saved == EWOULDBLOCK ? holder_pid(fd) : 0;
            close(fd);
            free(path);
            if (saved != EWOULDBLOCK) return err_set(e, "%s: cannot lock: %s", dir, strerror(saved));
            if (pid > 0) return err_set(e, "%s: in use by another antibody run (pid %ld); wait for it or use another folder", dir, pid);
            return err_set(e, "%s: in use by another antibody run; wait for it or use another folder", dir);
        }
        struct stat a, b;
        if (fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
            char pid[32];
            int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
            if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
                int saved = errno;
                close(fd);
                err_set(e, "%s: cannot write lock file: %s", path, strerror(saved));
                free(path);
                return -1;
            }
            l->fd = fd;
            l->path = path;
            remove_stale_temporaries(dir);
            return 0;
        }
        close(fd);  // locked a file that was just removed: take the new one
    }
    err_set(e, "%s: lock file keeps changing; another run is starting and stopping there", dir);
    free(path);
    return -1;
}

void dir_unlock(DirLock *l) {
    if (l->fd >= 0) {
        unlink(l->path);  // while still held, so nobody can lock the old file and keep it
        close(l->fd);
    }
    free(l->path);
    l->fd = -1;
    l->path = NULL;
}
