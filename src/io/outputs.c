#include "io/outputs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int out_dir_usable(const char *dir, Err *e) {
    struct stat s;
    if (stat(dir, &s)) {
        if (errno == ENOENT) return 0;
        return err_set(e, "%s: %s", dir, strerror(errno));
    }
    if (!S_ISDIR(s.st_mode)) return err_set(e, "%s: exists and is not a folder; give another --out", dir);
    if (access(dir, W_OK)) return err_set(e, "%s: folder is not writable", dir);
    return 0;
}

int out_dir_claim(const char *dir, const char *const *names, int n, int overwrite, Err *e) {
    if (out_dir_usable(dir, e)) return -1;
    char found[512] = "";
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        char *p = xasprintf("%s/%s", dir, names[i]);
        struct stat s;
        int present = !lstat(p, &s);
        if (present && overwrite && unlink(p)) {
            err_set(e, "%s: cannot remove: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        free(p);
        if (!present || overwrite) continue;
        if (len < sizeof found - 1)
            len += (size_t)snprintf(found + len, sizeof found - len, "%s%s", len ? ", " : "", names[i]);
    }
    if (len) return err_set(e, "%s holds %s of an earlier run; give another --out or --overwrite to replace them", dir, found);
    return 0;
}

int adapters_distinct(const char *const *dirs, int n, Err *e) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) {
            char *a = realpath(dirs[i], NULL), *b = realpath(dirs[j], NULL);  // malloc'd, any length
            const char *ra = a ? a : dirs[i], *rb = b ? b : dirs[j];
            int same = !strcmp(ra, rb);
            if (same)
                err_set(e, "adapter %s is given twice (as %s and %s): merging it twice doubles its update", ra, dirs[j],
                        dirs[i]);
            free(a);
            free(b);
            if (same) return -1;
        }
    return 0;
}
