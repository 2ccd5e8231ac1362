// safetensors: reader (mmap, validated) and writer (library-identical layout).
// Format and checks: docs/formats.md.
#include "io/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic.h"

#define ST_MAX_HEADER 100000000ull  // the Rust library's limit (100 MB)

// ---------------------------------------------------------------------------- dtypes

static const struct { const char *name; size_t size; int rank; } DTYPES[] = {
    // rank = position in the Rust library's Dtype enum (its "alignment order"), used to sort on write
    [ST_F32] = {"F32", 4, 9},  [ST_F16] = {"F16", 2, 5}, [ST_BF16] = {"BF16", 2, 6},
    [ST_F64] = {"F64", 8, 10}, [ST_I64] = {"I64", 8, 11}, [ST_I32] = {"I32", 4, 7},
    [ST_I16] = {"I16", 2, 3},  [ST_I8] = {"I8", 1, 2},   [ST_U8] = {"U8", 1, 1},
    [ST_BOOL] = {"BOOL", 1, 0}, [ST_U16] = {"U16", 2, 4}, [ST_U32] = {"U32", 4, 8},
    [ST_U64] = {"U64", 8, 12},
};
#define N_DTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

// Valid in the format but not handled here: named in the error instead of "unknown".
static const char *FOREIGN_DTYPES[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3",
                                       "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"};

size_t st_dtype_size(StDtype d) { return (int)d >= 0 && (int)d < N_DTYPES ? DTYPES[d].size : 0; }
const char *st_dtype_name(StDtype d) { return (int)d >= 0 && (int)d < N_DTYPES ? DTYPES[d].name : "?"; }
int st_dtype_parse(const char *name) {
    for (int i = 0; i < N_DTYPES; i++)
        if (strcmp(DTYPES[i].name, name) == 0) return i;
    return -1;
}

// ---------------------------------------------------------------------------- conversions

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

void f32_to_bf16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = f32_bits(in[i]);
        if ((u & 0x7fffffffu) > 0x7f800000u) { out[i] = 0x7fc0; continue; }  // NaN, as torch
        u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
        out[i] = (uint16_t)(u >> 16);
    }
}

void bf16_to_f32(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = bits_f32((uint32_t)in[i] << 16);
}

static uint16_t f32_to_f16_one(float f) {
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u | (uint16_t)((a >> 13) & 0x3ffu);  // NaN stays NaN (quiet)
    if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds to inf
    if (a < 0x38800000u) {
        // below the smallest normal (2^-14): a subnormal, exact RNE via integer shift
        if (a < 0x33000000u) return sign;  // < 2^-25 rounds to zero (2^-25 ties to even = 0)
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)e;  // value = m * 2^(e-150); f16 subnormal unit is 2^-24
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    // normal: rebias the exponent and round the mantissa's low 13 bits to nearest even
    uint32_t r = a - 0x38000000u;  // exponent 127 -> 15 bias
    r += 0xfffu + ((r >> 13) & 1u);
    return sign | (uint16_t)(r >> 13);
}

void f32_to_f16(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f32_to_f16_one(in[i]);
}

static float f16_to_f32_one(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        float v = (float)m * 5.9604644775390625e-08f;  // m * 2^-24, exact
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

void f16_to_f32(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = f16_to_f32_one(in[i]);
}

// ---------------------------------------------------------------------------- the set

typedef struct {
    char *path;
    uint8_t *map;
    size_t size;
    json_t *meta;  // the "__metadata__" object or NULL
} StFile;

struct StSet {
    StFile *files;
    int nfiles;
    StTensor *t;
    int n, cap;
    int *slot;  // open-addressing hash of names -> index, -1 empty
    int nslot;  // power of two >= 2n
};

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void build_index(StSet *s) {
    free(s->slot);
    s->nslot = 16;
    while (s->nslot < 2 * s->n) s->nslot *= 2;
    s->slot = xmalloc((size_t)s->nslot * sizeof(int));
    for (int i = 0; i < s->nslot; i++) s->slot[i] = -1;
    for (int i = 0; i < s->n; i++) {
        size_t j = name_hash(s->t[i].name) & (size_t)(s->nslot - 1);
        while (s->slot[j] >= 0) j = (j + 1) & (size_t)(s->nslot - 1);
        s->slot[j] = i;
    }
}

const StTensor *st_find(const StSet *s, const char *name) {
    if (!s || !s->slot) return NULL;
    size_t j = name_hash(name) & (size_t)(s->nslot - 1);
    while (s->slot[j] >= 0) {
        if (strcmp(s->t[s->slot[j]].name, name) == 0) return &s->t[s->slot[j]];
        j = (j + 1) & (size_t)(s->nslot - 1);
    }
    return NULL;
}

int st_count(const StSet *s) { return s ? s->n : 0; }
const StTensor *st_get(const StSet *s, int i) { return s && i >= 0 && i < s->n ? &s->t[i] : NULL; }

const char *st_metadata(const StSet *s, const char *key) {
    for (int f = 0; s && f < s->nfiles; f++) {
        json_t *v = s->files[f].meta ? json_object_get(s->files[f].meta, key) : NULL;
        if (v) return json_string_value(v);
    }
    return NULL;
}

void st_close(StSet *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) free(s->t[i].name);
    for (int f = 0; f < s->nfiles; f++) {
        if (s->files[f].map) munmap(s->files[f].map, s->files[f].size);
        json_decref(s->files[f].meta);
        free(s->files[f].path);
    }
    free(s->files);
    free(s->t);
    free(s->slot);
    free(s);
}

// ---------------------------------------------------------------------------- parsing one file

static int is_foreign_dtype(const char *d) {
    for (size_t i = 0; i < sizeof FOREIGN_DTYPES / sizeof *FOREIGN_DTYPES; i++)
        if (strcmp(d, FOREIGN_DTYPES[i]) == 0) return 1;
    return 0;
}

// A JSON integer >= 0 into *out; 0 on success.
static int get_uint(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

typedef struct { uint64_t begin, end; int idx; } Span;

static int span_cmp(const void *a, const void *b) {
    const Span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

// Parses one tensor entry of the header into t (name already set). data_len bounds offsets.
static int parse_entry(const char *path, const char *name, json_t *info, uint64_t data_len,
                       StTensor *t, Span *span, Err *e) {
    if (!json_is_object(info)) return err_set(e, "%s: tensor '%s': header entry is not an object", path, name);
    json_t *jd = json_object_get(info, "dtype"), *js = json_object_get(info, "shape"),
           *jo = json_object_get(info, "data_offsets");
    if (!jd) return err_set(e, "%s: tensor '%s': missing dtype", path, name);
    if (!js) return err_set(e, "%s: tensor '%s': missing shape", path, name);
    if (!jo) return err_set(e, "%s: tensor '%s': missing data_offsets", path, name);
    if (!json_is_string(jd)) return err_set(e, "%s: tensor '%s': dtype is not a string", path, name);
    const char *ds = json_string_value(jd);
    int d = st_dtype_parse(ds);
    if (d < 0 && is_foreign_dtype(ds))
        return err_set(e, "%s: tensor '%s': dtype %s is not supported by antibody", path, name, ds);
    if (d < 0) return err_set(e, "%s: tensor '%s': unknown dtype '%.40s'", path, name, ds);
    t->dtype = (StDtype)d;
    if (!json_is_array(js)) return err_set(e, "%s: tensor '%s': shape is not an array", path, name);
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return err_set(e, "%s: tensor '%s': %zu dimensions, at most %d supported", path, name, nd, ST_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        uint64_t dim;
        if (get_uint(json_array_get(js, i), &dim) != 0)
            return err_set(e, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
        if (__builtin_mul_overflow(numel, dim, &numel) || numel > (uint64_t)INT64_MAX)
            return err_set(e, "%s: tensor '%s': shape overflows (element count too large)", path, name);
        t->shape[i] = (int64_t)dim;
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, (uint64_t)DTYPES[d].size, &nbytes))
        return err_set(e, "%s: tensor '%s': byte size overflows", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return err_set(e, "%s: tensor '%s': data_offsets is not a [begin, end] pair", path, name);
    uint64_t b, en;
    if (get_uint(json_array_get(jo, 0), &b) != 0 || get_uint(json_array_get(jo, 1), &en) != 0)
        return err_set(e, "%s: tensor '%s': data_offsets are not non-negative integers", path, name);
    if (en < b)
        return err_set(e, "%s: tensor '%s': data_offsets end %llu < begin %llu", path, name,
                       (unsigned long long)en, (unsigned long long)b);
    if (en > data_len)
        return err_set(e, "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %llu bytes)",
                       path, name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
    if (en - b != nbytes)
        return err_set(e, "%s: tensor '%s': data_offsets span %llu bytes but shape x %s needs %llu", path, name,
                       (unsigned long long)(en - b), ds, (unsigned long long)nbytes);
    t->numel = (int64_t)numel;
    t->nbytes = (size_t)nbytes;
    span->begin = b;
    span->end = en;
    return 0;
}

// Maps and validates one file, appending its tensors to s. Leaves s consistent on error
// (tensors appended so far stay owned by s and are freed by st_close).
static int load_file(StSet *s, const char *path, Err *e) {
    int fd = open_regular(path, e);  // a FIFO would block a plain open
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return err_set(e, "%s: cannot stat: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < 8) {
        close(fd);
        return err_set(e, "%s: file is %llu bytes, shorter than the 8-byte header length", path,
                       (unsigned long long)size);
    }
    uint8_t *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return err_set(e, "%s: mmap failed: %s", path, strerror(errno));
    s->files = xrealloc(s->files, (size_t)(s->nfiles + 1) * sizeof(StFile));
    StFile *f = &s->files[s->nfiles++];
    f->path = xstrdup(path);
    f->map = map;
    f->size = (size_t)size;
    f->meta = NULL;

    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | map[i];
    if (hlen > ST_MAX_HEADER)
        return err_set(e, "%s: header length %llu exceeds the 100 MB limit", path, (unsigned long long)hlen);
    if (hlen > size - 8)
        return err_set(e, "%s: header length %llu larger than the file (%llu bytes)", path,
                       (unsigned long long)hlen, (unsigned long long)size);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)map + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return err_set(e, "%s: header is not valid JSON: %s (at byte %d)", path, jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, "%s: header is not a JSON object", path);
    }
    uint64_t data_len = size - 8 - hlen;
    const uint8_t *data = map + 8 + hlen;
    size_t nt = json_object_size(root);
    Span *spans = xmalloc((nt ? nt : 1) * sizeof(Span));
    int ns = 0, rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) { rc = err_set(e, "%s: __metadata__ is not an object", path); break; }
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) { rc = err_set(e, "%s: __metadata__ value '%s' is not a string", path, mk); break; }
            }
            if (rc) break;
            f->meta = json_incref(val);
            continue;
        }
        if (st_find(s, key)) {
            rc = err_set(e, "%s: tensor '%s' appears twice (also in %s)", path, key, st_find(s, key)->file);
            break;
        }
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->t = xrealloc(s->t, (size_t)s->cap * sizeof(StTensor));
        }
        StTensor *t = &s->t[s->n];
        memset(t, 0, sizeof *t);
        if (parse_entry(path, key, val, data_len, t, &spans[ns], e) != 0) { rc = -1; break; }
        t->name = xstrdup(key);
        t->file = f->path;
        spans[ns].idx = s->n++;
        ns++;
    }
    if (rc == 0) {
        // The Rust library's rule: sorted by offsets, tensors tile the data section exactly.
        qsort(spans, (size_t)ns, sizeof(Span), span_cmp);
        uint64_t pos = 0;
        for (int i = 0; i < ns && rc == 0; i++) {
            if (spans[i].begin != pos)
                rc = err_set(e, "%s: tensor '%s' starts at data byte %llu, expected %llu (%s)", path,
                             s->t[spans[i].idx].name, (unsigned long long)spans[i].begin,
                             (unsigned long long)pos, spans[i].begin < pos ? "overlaps the previous tensor" : "hole before it");
            pos = spans[i].end;
        }
        if (rc == 0 && pos != data_len)
            rc = err_set(e, "%s: tensors cover %llu of the %llu data bytes (file not fully covered)", path,
                         (unsigned long long)pos, (unsigned long long)data_len);
    }
    if (rc == 0)
        for (int i = 0; i < ns; i++) s->t[spans[i].idx].data = data + spans[i].begin;
    free(spans);
    json_decref(root);
    build_index(s);
    return rc;
}

// ---------------------------------------------------------------------------- opening

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

// An index names shard files relative to its own directory; only plain file names are
// accepted so an untrusted index cannot reach outside that directory.
static int load_index(StSet *s, const char *path, Err *e) {
    size_t len;
    char *text = read_file(path, &len, e);
    if (!text) return -1;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!root) return err_set(e, "%s: not valid JSON: %s (line %d)", path, jerr.text, jerr.line);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(root);
        return err_set(e, "%s: no \"weight_map\" object", path);
    }
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    // Shards in order of first mention, each loaded once.
    int rc = 0;
    const char **shards = xmalloc((json_object_size(wm) + 1) * sizeof(char *));
    int nsh = 0;
    const char *name;
    json_t *v;
    json_object_foreach(wm, name, v) {
        const char *file = json_string_value(v);
        if (!file) { rc = err_set(e, "%s: weight_map entry '%s' is not a string", path, name); break; }
        if (!*file || strchr(file, '/') || strchr(file, '\\') || strcmp(file, ".") == 0 || strcmp(file, "..") == 0) {
            rc = err_set(e, "%s: weight_map entry '%s' names '%s', not a plain file name", path, name, file);
            break;
        }
        int seen = 0;
        for (int i = 0; i < nsh && !seen; i++) seen = strcmp(shards[i], file) == 0;
        if (!seen) shards[nsh++] = file;
    }
    for (int i = 0; i < nsh && rc == 0; i++) {
        char *p = join(dir, shards[i]);
        if (!exists(p)) rc = err_set(e, "%s: shard '%s' is missing (%s)", path, shards[i], p);
        else if (load_file(s, p, e) != 0) rc = -1;
        free(p);
    }
    // Index and shards must agree both ways.
    if (rc == 0) {
        json_object_foreach(wm, name, v) {
            const StTensor *t = st_find(s, name);
            const char *file = json_string_value(v);
            if (!t) { rc = err_set(e, "%s: tensor '%s' is listed for %s but that shard does not have it", path, name, file); break; }
            const char *base = strrchr(t->file, '/');
            base = base ? base + 1 : t->file;
            if (strcmp(base, file) != 0) {
                rc = err_set(e, "%s: tensor '%s' is listed for %s but found in %s", path, name, file, base);
                break;
            }
        }
    }
    for (int i = 0; i < s->n && rc == 0; i++)
        if (!json_object_get(wm, s->t[i].name))
            rc = err_set(e, "%s: shard %s has tensor '%s' that the weight_map does not list", path, s->t[i].file, s->t[i].name);
    free(shards);
    free(dir);
    json_decref(root);
    return rc;
}

// A folder without safetensors weights; PyTorch's pickle files (OPT's released checkpoints
// are pytorch_model.bin) are named with the one-line conversion: antibody does not unpickle
// (a pickle can run code when loaded).
static int no_safetensors(const char *path, Err *e) {
    char *bin = join(path, "pytorch_model.bin"), *bin_idx = join(path, "pytorch_model.bin.index.json");
    int pickle = exists(bin) || exists(bin_idx);
    free(bin);
    free(bin_idx);
    if (pickle)
        return err_set(e, "%s: the weights are PyTorch pickle files (pytorch_model.bin), which antibody does not read "
                          "(loading a pickle can run code); convert them once with transformers: "
                          "AutoModelForCausalLM.from_pretrained(DIR).save_pretrained(DIR, safe_serialization=True)", path);
    return err_set(e, "%s: directory has neither model.safetensors.index.json nor model.safetensors", path);
}

StSet *st_open(const char *path, Err *e) {
    StSet *s = xcalloc(1, sizeof(StSet));
    int rc;
    if (is_dir(path)) {
        char *idx = join(path, "model.safetensors.index.json"), *single = join(path, "model.safetensors");
        if (exists(idx)) rc = load_index(s, idx, e);
        else if (exists(single)) rc = load_file(s, single, e);
        else rc = no_safetensors(path, e);
        free(idx);
        free(single);
    } else if (ends_with(path, ".json")) {
        rc = load_index(s, path, e);
    } else {
        rc = load_file(s, path, e);
    }
    if (rc != 0) {
        st_close(s);
        return NULL;
    }
    build_index(s);
    return s;
}

// ---------------------------------------------------------------------------- typed access

static void shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static int check_shape(const StTensor *t, int ndim, const int64_t *expect, Err *e) {
    if (!expect) return 0;
    int ok = ndim == t->ndim;
    for (int i = 0; ok && i < ndim; i++) ok = expect[i] == t->shape[i];
    if (ok) return 0;
    char want[256], got[256];
    shape_str(want, sizeof want, ndim, expect);
    shape_str(got, sizeof got, t->ndim, t->shape);
    return err_set(e, "%s: tensor '%s' has shape %s, expected %s", t->file, t->name, got, want);
}

// NaN or Inf in loaded numbers would run to empty output much later: refuse them by name.
int st_check_finite(const StTensor *t, const float *v, size_t n, Err *e) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return err_set(e, "%s: tensor '%s' holds %s at element %zu", t->file, t->name, isnan(v[i]) ? "NaN" : "Inf", i);
    return 0;
}

int st_check_float(const StTensor *t, int ndim, const int64_t *expect_shape, Err *e) {
    if (check_shape(t, ndim, expect_shape, e) != 0) return -1;
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return err_set(e, "%s: tensor '%s' has dtype %s, expected a float dtype (F32, F16, BF16, F64)", t->file, t->name,
                       st_dtype_name(t->dtype));
    return 0;
}

int st_read_f32_finite(const StTensor *t, float *out, int ndim, const int64_t *expect_shape, Err *e) {
    int rc = st_read_f32(t, out, ndim, expect_shape, e);
    return rc ? rc : st_check_finite(t, out, (size_t)t->numel, e);
}

int st_read_f32(const StTensor *t, float *out, int ndim, const int64_t *expect_shape, Err *e) {
    if (check_shape(t, ndim, expect_shape, e) != 0) return -1;
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32:
        if (n) memcpy(out, p, n * 4);
        return 0;
    case ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return 0;
    case ST_F16:
    case ST_BF16: {
        uint16_t buf[1024];  // staged so unaligned data is fine
        for (size_t i = 0; i < n; i += 1024) {
            size_t m = n - i < 1024 ? n - i : 1024;
            memcpy(buf, p + 2 * i, 2 * m);
            if (t->dtype == ST_F16) f16_to_f32(buf, out + i, m);
            else bf16_to_f32(buf, out + i, m);
        }
        return 0;
    }
    default:
        return err_set(e, "%s: tensor '%s' has dtype %s, expected a float dtype (F32, F16, BF16, F64)",
                       t->file, t->name, st_dtype_name(t->dtype));
    }
}

const float *st_f32_view(const StTensor *t, int ndim, const int64_t *expect_shape, Err *e) {
    if (check_shape(t, ndim, expect_shape, e) != 0) return NULL;
    if (t->dtype != ST_F32) {
        err_set(e, "%s: tensor '%s' has dtype %s, expected F32", t->file, t->name, st_dtype_name(t->dtype));
        return NULL;
    }
    if ((uintptr_t)t->data % 4 != 0) {
        err_set(e, "%s: tensor '%s' data is not 4-byte aligned in the file (use st_read_f32)", t->file, t->name);
        return NULL;
    }
    return t->data;
}

// ---------------------------------------------------------------------------- writing

typedef struct { char *s; size_t n, cap; } Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 256;
        b->s = xrealloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}
static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

// JSON string escaping exactly as serde_json writes it (so headers match byte for byte).
static void buf_json_str(Buf *b, const char *s) {
    buf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"') buf_puts(b, "\\\"");
        else if (c == '\\') buf_puts(b, "\\\\");
        else if (c == '\n') buf_puts(b, "\\n");
        else if (c == '\r') buf_puts(b, "\\r");
        else if (c == '\t') buf_puts(b, "\\t");
        else if (c == '\b') buf_puts(b, "\\b");
        else if (c == '\f') buf_puts(b, "\\f");
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); buf_puts(b, esc); }
        else buf_put(b, (const char *)&c, 1);
    }
    buf_puts(b, "\"");
}

// Descending dtype rank, then name: the Python library's order (aligned data for free).
static int write_order(const void *a, const void *b, void *ctx) {
    const StWrite *t = ctx, *x = &t[*(const int *)a], *y = &t[*(const int *)b];
    if (DTYPES[x->dtype].rank != DTYPES[y->dtype].rank) return DTYPES[y->dtype].rank - DTYPES[x->dtype].rank;
    return strcmp(x->name, y->name);
}

static int name_order(const void *a, const void *b, void *ctx) {
    const StWrite *t = ctx;
    return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}

static int has_duplicate_name(const char *path, const StWrite *t, int n, Err *e) {
    int *ord = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) ord[i] = i;
    qsort_r(ord, (size_t)n, sizeof(int), name_order, (void *)t);
    int dup = 0;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(t[ord[i]].name, t[ord[i - 1]].name) == 0) dup = err_set(e, "%s: tensor '%s' given twice", path, t[ord[i]].name);
    free(ord);
    return dup;
}

static int tensor_bytes(const char *path, const StWrite *t, size_t *out, Err *e) {
    if (!t->name) return err_set(e, "%s: tensor without a name", path);
    if ((int)t->dtype < 0 || (int)t->dtype >= N_DTYPES) return err_set(e, "%s: tensor '%s': bad dtype", path, t->name);
    if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) return err_set(e, "%s: tensor '%s': bad ndim %d", path, t->name, t->ndim);
    uint64_t n = DTYPES[t->dtype].size;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0 || __builtin_mul_overflow(n, (uint64_t)t->shape[i], &n))
            return err_set(e, "%s: tensor '%s': bad shape", path, t->name);
    if (n && !t->data) return err_set(e, "%s: tensor '%s': no data", path, t->name);
    *out = (size_t)n;
    return 0;
}

int st_write(const char *path, const StWrite *t, int n, const char *const *meta_kv, int n_meta, Err *e) {
    int *ord = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    size_t *nb = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(size_t));
    for (int i = 0; i < n; i++) {
        ord[i] = i;
        if (tensor_bytes(path, &t[i], &nb[i], e) != 0 || strcmp(t[i].name, "__metadata__") == 0) {
            if (strcmp(t[i].name ? t[i].name : "", "__metadata__") == 0) err_set(e, "%s: '__metadata__' is reserved", path);
            free(ord), free(nb);
            return -1;
        }
    }
    if (has_duplicate_name(path, t, n, e)) {
        free(ord), free(nb);
        return -1;
    }
    qsort_r(ord, (size_t)n, sizeof(int), write_order, (void *)t);
    Buf h = {0};
    buf_puts(&h, "{");
    int first = 1;
    if (n_meta > 0) {
        buf_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < n_meta; i++) {
            if (i) buf_puts(&h, ",");
            buf_json_str(&h, meta_kv[2 * i]);
            buf_puts(&h, ":");
            buf_json_str(&h, meta_kv[2 * i + 1]);
        }
        buf_puts(&h, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const StWrite *w = &t[ord[k]];
        char num[64];
        if (!first) buf_puts(&h, ",");
        first = 0;
        buf_json_str(&h, w->name);
        buf_puts(&h, ":{\"dtype\":\"");
        buf_puts(&h, DTYPES[w->dtype].name);
        buf_puts(&h, "\",\"shape\":[");
        for (int i = 0; i < w->ndim; i++) {
            snprintf(num, sizeof num, "%s%lld", i ? "," : "", (long long)w->shape[i]);
            buf_puts(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + nb[ord[k]]));
        buf_puts(&h, num);
        off += nb[ord[k]];
    }
    buf_puts(&h, "}");
    while (h.n % 8) buf_puts(&h, " ");
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    AtomicFile a;
    FILE *f = atomic_open(&a, path, e);
    int rc = f ? 0 : -1;
    if (f) {
        int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.s, 1, h.n, f) == h.n;
        for (int k = 0; k < n && ok; k++)
            ok = nb[ord[k]] == 0 || fwrite(t[ord[k]].data, 1, nb[ord[k]], f) == nb[ord[k]];
        if (!ok) {
            atomic_abort(&a);
            rc = err_set(e, "%s: write failed: %s", path, strerror(errno));
        } else {
            rc = atomic_commit(&a, e);
        }
    }
    free(h.s);
    free(ord);
    free(nb);
    return rc;
}

// "<prefix>-00001-of-00003.safetensors" -> 1 when the name has that exact form.
static int is_shard_name(const char *name, const char *prefix) {
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0) return 0;
    const char *r = name + pl;
    if (strlen(r) != strlen("-00001-of-00001.safetensors")) return 0;
    for (int i = 0; i < 27; i++) {
        char c = r[i], want = "-00001-of-00001.safetensors"[i];
        if (want >= '0' && want <= '9' ? !(c >= '0' && c <= '9') : c != want) return 0;
    }
    return 1;
}

int st_write_sharded(const char *dir, const char *prefix, const StWrite *t, int n,
                     size_t max_shard_bytes, Err *e) {
    if (mkdir_p(dir, e) != 0) return -1;
    // Assign shards like huggingface_hub's split_torch_state_dict_into_shards.
    int *shard_of = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    int nshard = 0, cur = -1;
    size_t cur_bytes = 0, total = 0;
    for (int i = 0; i < n; i++) {
        size_t nb;
        if (tensor_bytes(dir, &t[i], &nb, e) != 0) { free(shard_of); return -1; }
        total += nb;
        if (nb > max_shard_bytes) { shard_of[i] = nshard++; continue; }
        if (cur >= 0 && cur_bytes + nb > max_shard_bytes) cur = -1;
        if (cur < 0) { cur = nshard++; cur_bytes = 0; }
        shard_of[i] = cur;
        cur_bytes += nb;
    }
    if (nshard == 0) nshard = 1;  // an empty model is still one (empty) file
    StWrite *part = xmalloc((size_t)(n > 0 ? n : 1) * sizeof(StWrite));
    const char *meta[2] = {"format", "pt"};
    json_t *wm = json_object();
    int rc = 0;
    for (int s = 0; s < nshard && rc == 0; s++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (shard_of[i] == s) part[m++] = t[i];
        char *file = nshard == 1 ? xasprintf("%s.safetensors", prefix)
                                 : xasprintf("%s-%05d-of-%05d.safetensors", prefix, s + 1, nshard);
        char *path = xasprintf("%s/%s", dir, file);
        rc = st_write(path, part, m, meta, 1, e);
        for (int i = 0; i < m; i++) json_object_set_new(wm, part[i].name, json_string(file));
        free(path);
        free(file);
    }
    char *index = xasprintf("%s/%s.safetensors.index.json", dir, prefix);
    if (rc == 0 && nshard > 1) {
        json_t *root = json_pack("{s:{s:I},s:O}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
        size_t len = strlen(text);
        text = xrealloc(text, len + 2);
        text[len] = '\n';
        rc = write_file_atomic(index, text, len + 1, e);
        free(text);
        json_decref(root);
    }
    // Remove what a previous save with the other layout (or more shards) left behind.
    if (rc == 0) {
        char *single = xasprintf("%s/%s.safetensors", dir, prefix);
        unlink(nshard == 1 ? index : single);
        free(single);
        DIR *d = opendir(dir);
        struct dirent *de;
        char keep[64];
        snprintf(keep, sizeof keep, "-of-%05d.safetensors", nshard);
        while (d && (de = readdir(d))) {
            if (!is_shard_name(de->d_name, prefix)) continue;
            if (nshard > 1 && ends_with(de->d_name, keep) && atoi(de->d_name + strlen(prefix) + 1) <= nshard) continue;
            char *path = xasprintf("%s/%s", dir, de->d_name);
            unlink(path);
            free(path);
        }
        if (d) closedir(d);
    }
    free(index);
    json_decref(wm);
    free(part);
    free(shard_of);
    return rc;
}
