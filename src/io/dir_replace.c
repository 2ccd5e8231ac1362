// Whole-folder replacement that survives kill -9 (docs/reliability.md).
#include "io/dir_replace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int dir_remove_flat(const char *path, Err *e) {
    DIR *d = opendir(path);
    if (!d) {
        if (errno == ENOENT) return 0;
        if (errno == ENOTDIR) {  // a stray file where our folder goes
            if (unlink(path) == 0) return 0;
            return err_set(e, "%s: cannot remove: %s", path, strerror(errno));
        }
        return err_set(e, "%s: cannot open folder: %s", path, strerror(errno));
    }
    struct dirent *de;
    int rc = 0;
    while (!rc && (errno = 0, de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = xasprintf("%s/%s", path, de->d_name);
        if (unlink(p) != 0) rc = err_set(e, "%s: cannot remove: %s", p, strerror(errno));
        free(p);
    }
    if (!rc && errno) rc = err_set(e, "%s: cannot list folder: %s", path, strerror(errno));
    closedir(d);
    if (!rc && rmdir(path) != 0) rc = err_set(e, "%s: cannot remove folder: %s", path, strerror(errno));
    return rc;
}

static int exists(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0;
}

// fsync of the folder holding path, so that renames in it are durable.
static void sync_parent(const char *path) {
    char *parent = xstrdup(path);
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = '\0';
    else if (slash) *slash = '\0';
    int fd = open(slash ? parent : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(parent);
}

static int recover(const char *dir, const char *old, const char *last, Err *e) {
    if (exists(dir)) return 1;
    if (!exists(old)) return 0;
    char *marker = xasprintf("%s/%s", old, last);
    int complete = exists(marker);
    free(marker);
    if (!complete) return dir_remove_flat(old, e) ? -1 : 0;
    if (rename(old, dir) != 0) return err_set(e, "%s: cannot restore the previous checkpoint from %s: %s", dir, old, strerror(errno));
    sync_parent(dir);
    return 1;
}

int dir_recover(const char *dir, const char *last, Err *e) {
    char *old = xasprintf("%s.old", dir);
    int rc = recover(dir, old, last, e);
    free(old);
    return rc;
}

int dir_stage(const char *dir, const char *last, Err *e) {
    char *tmp = xasprintf("%s.tmp", dir), *old = xasprintf("%s.old", dir);
    int rc = 0;
    if (recover(dir, old, last, e) < 0 || dir_remove_flat(old, e) || dir_remove_flat(tmp, e)) rc = -1;  // DIR.old is only garbage once DIR exists
    else if (mkdir(tmp, 0755) != 0) rc = err_set(e, "%s: cannot create folder: %s", tmp, strerror(errno));
    free(tmp);
    free(old);
    return rc;
}

int dir_replace(const char *dir, Err *e) {
    char *tmp = xasprintf("%s.tmp", dir), *old = xasprintf("%s.old", dir);
    int rc = 0;
    sync_parent(tmp);  // DIR.tmp's own entries were fsync'd by the atomic writes into it
    if (exists(dir) && rename(dir, old) != 0) rc = err_set(e, "%s: cannot move to %s: %s", dir, old, strerror(errno));
    else if (rename(tmp, dir) != 0) rc = err_set(e, "%s: cannot move %s into place: %s", dir, tmp, strerror(errno));
    else {
        sync_parent(dir);
        rc = dir_remove_flat(old, e);
    }
    free(tmp);
    free(old);
    return rc;
}
