#include "io/provenance.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "util/sha256.h"
#include "util/version.h"

json_t *provenance_new(void) {
    json_t *o = json_object();
    json_object_set_new(o, "antibody_version", json_string(antibody_version()));
    json_object_set_new(o, "commit", json_string(antibody_commit()));
    json_object_set_new(o, "blas", json_string(blas_name()));
    json_object_set_new(o, "threads", json_integer(omp_threads()));
    json_object_set_new(o, "isa", json_string(isa_name(isa_active())));
    char cpu[160] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    for (char line[512]; f && fgets(line, sizeof line, f);)
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            const char *v = strchr(line, ':') + 1;
            while (*v == ' ' || *v == '\t') v++;
            snprintf(cpu, sizeof cpu, "%.*s", (int)strcspn(v, "\n"), v);
            break;
        }
    if (f) fclose(f);
    json_object_set_new(o, "cpu", json_string(cpu));
    char date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(o, "date", json_string(date));
    return o;
}

static int decides_weights(const char *name) {
    size_t n = strlen(name);
    return !strcmp(name, "config.json") || !strcmp(name, "adapter_config.json") || !strcmp(name, "tokenizer.json") ||
           (n > 12 && !strcmp(name + n - 12, ".safetensors")) || (n > 23 && !strcmp(name + n - 23, ".safetensors.index.json"));
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int folder_sha256(const char *dir, char hex[65], Err *e) {
    DIR *d = opendir(dir);
    if (!d) return err_set(e, "%s: cannot open folder", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (!decides_weights(de->d_name)) continue;
        if (n == cap) names = xrealloc(names, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    Sha256 s;
    sha256_init(&s);
    int rc = n ? 0 : err_set(e, "%s: no model or adapter files", dir);
    for (int i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]), h[65];
        if (!rc && !(rc = sha256_file(path, h, e))) {
            sha256_update(&s, names[i], strlen(names[i]) + 1);
            sha256_update(&s, h, 64);
        }
        free(path);
        free(names[i]);
    }
    free(names);
    if (!rc) sha256_hex(&s, hex);
    return rc;
}

