#include "data/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "util/sha256.h"

void dataset_init(Dataset *d) { d->rows = NULL; d->n = d->cap = 0; }

void dataset_add(Dataset *d, const char *instruction, const char *input, const char *output,
                 const char *label, const char *category, int harmful) {
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->rows = xrealloc(d->rows, (size_t)d->cap * sizeof(Sample));
    }
    Sample *s = &d->rows[d->n++];
    s->instruction = xstrdup(instruction);
    s->input = xstrdup(input);
    s->output = xstrdup(output);
    s->label = xstrdup(label);
    s->category = xstrdup(category);
    s->harmful = harmful;
}

void dataset_free(Dataset *d) {
    for (int i = 0; i < d->n; i++) {
        Sample *s = &d->rows[i];
        free(s->instruction); free(s->input); free(s->output); free(s->label); free(s->category);
    }
    free(d->rows);
    dataset_init(d);
}

void dataset_sha256(const Dataset *d, char hex[65]) {
    Sha256 s;
    sha256_init(&s);
    for (int i = 0; i < d->n; i++) {
        const Sample *r = &d->rows[i];
        const char *f[5] = {r->instruction, r->input, r->output, r->label, r->category};
        for (int k = 0; k < 5; k++) sha256_update(&s, f[k] ? f[k] : "", strlen(f[k] ? f[k] : "") + 1);  // NUL-separated
        char h = r->harmful ? '1' : '0';
        sha256_update(&s, &h, 1);
    }
    sha256_hex(&s, hex);
}
