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

static void suffixed(char *out, size_t cap, const char *dir, const char *suffix) {
    snprintf(out, cap, "%s%s", dir, suffix);
}

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
    char p[4096];
    int rc = 0;
    while (!rc && (errno = 0, de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", path, de->d_name);
        if (unlink(p) != 0) rc = err_set(e, "%s: cannot remove: %s", p, strerror(errno));
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
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash == parent) slash[1] = '\0';
    else if (slash) *slash = '\0';
    else strcpy(parent, ".");
    int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int dir_recover(const char *dir, const char *last, Err *e) {
    char old[4096], marker[4300];
    suffixed(old, sizeof old, dir, ".old");
    if (exists(dir)) return 1;
    if (!exists(old)) return 0;
    snprintf(marker, sizeof marker, "%s/%s", old, last);
    if (!exists(marker)) return dir_remove_flat(old, e) ? -1 : 0;
    if (rename(old, dir) != 0) return err_set(e, "%s: cannot restore the previous checkpoint from %s: %s", dir, old, strerror(errno));
    sync_parent(dir);
    return 1;
}

int dir_stage(const char *dir, const char *last, Err *e) {
    char tmp[4096], old[4096];
    suffixed(tmp, sizeof tmp, dir, ".tmp");
    suffixed(old, sizeof old, dir, ".old");
    if (dir_recover(dir, last, e) < 0) return -1;  // DIR.old is only garbage once DIR exists
    if (dir_remove_flat(old, e) || dir_remove_flat(tmp, e)) return -1;
    if (mkdir(tmp, 0755) != 0) return err_set(e, "%s: cannot create folder: %s", tmp, strerror(errno));
    return 0;
}

int dir_replace(const char *dir, Err *e) {
    char tmp[4096], old[4096];
    suffixed(tmp, sizeof tmp, dir, ".tmp");
    suffixed(old, sizeof old, dir, ".old");
    sync_parent(tmp);  // DIR.tmp's own entries were fsync'd by the atomic writes into it
    if (exists(dir) && rename(dir, old) != 0) return err_set(e, "%s: cannot move to %s: %s", dir, old, strerror(errno));
    if (rename(tmp, dir) != 0) return err_set(e, "%s: cannot move %s into place: %s", dir, tmp, strerror(errno));
    sync_parent(dir);
    return dir_remove_flat(old, e);
}
