// safetensors reader/writer: round trips (single file and sharded), exact header bytes,
// conversions, a table of corrupted files and a header fuzz loop.
// With arguments it is also the driver of tests/oracle/test_safetensors_hf.py:
//   test_safetensors --dump PATH   prints the tensors of PATH (file, index or dir) as JSON
//   test_safetensors --write DIR   writes the fixed set the oracle reads with the library
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/atomic.h"
#include "io/safetensors.h"
#include "testing.h"

static char tmpdir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void put_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(2); }
    fwrite(data, 1, n, f);
    fclose(f);
}

// A file from a header string and a data section of data_len bytes (0, 1, 2, ...).
// hlen_field 0 means the true length.
static size_t make_raw(uint8_t *buf, uint64_t hlen_field, const char *header, size_t data_len) {
    size_t hl = strlen(header);
    if (hlen_field == 0) hlen_field = hl;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen_field >> (8 * i));
    memcpy(buf + 8, header, hl);
    for (size_t i = 0; i < data_len; i++) buf[8 + hl + i] = (uint8_t)i;
    return 8 + hl + data_len;
}

// ---------------------------------------------------------------------------- fixed tensor set

// Values that exercise rounding: ties, subnormals, overflow for f16, signed zero, inf, NaN.
static void source_values(float *v, int n) {
    static const float special[] = {0.0f, -0.0f, 1.0f, -2.5f, 1.00390625f /* 1+2^-8 */, 1.01171875f,
                                    65504.0f, 65519.0f, 65520.0f, 1e6f, 5.9604645e-08f, 2.9802322e-08f,
                                    8.940697e-08f, 1e-40f, 3.3895314e38f, INFINITY, -INFINITY, NAN};
    int ns = (int)(sizeof special / sizeof *special);
    for (int i = 0; i < n; i++)
        v[i] = i < ns ? special[i] : (float)sin(0.37 * i) * powf(2.0f, (float)((i * 7) % 41 - 20));
}

#define NSRC 96
typedef struct {
    float src[NSRC];
    uint16_t h[NSRC], b[NSRC];
    double d[6];
    int64_t i64[5];
    int32_t i32[3];
    int16_t i16[4];
    int8_t i8[5];
    uint8_t u8[7];
    uint8_t bl[3];
    float scalar;
} Fixed;

static int fixed_set(Fixed *x, StWrite *w) {
    source_values(x->src, NSRC);
    f32_to_f16(x->src, x->h, NSRC);
    f32_to_bf16(x->src, x->b, NSRC);
    for (int i = 0; i < 6; i++) x->d[i] = 1.0 / (i + 1) - 0.3;
    for (int i = 0; i < 5; i++) x->i64[i] = (int64_t)(i - 2) * 1234567890123ll;
    for (int i = 0; i < 3; i++) x->i32[i] = -7 + 100000 * i;
    for (int i = 0; i < 4; i++) x->i16[i] = (int16_t)(-300 + 250 * i);
    for (int i = 0; i < 5; i++) x->i8[i] = (int8_t)(-128 + 60 * i);
    for (int i = 0; i < 7; i++) x->u8[i] = (uint8_t)(37 * i);
    for (int i = 0; i < 3; i++) x->bl[i] = (uint8_t)(i % 2);
    x->scalar = 3.25f;
    int n = 0;
    w[n++] = (StWrite){"src.f32", ST_F32, 2, {8, 12}, x->src};
    w[n++] = (StWrite){"layers.0.h", ST_F16, 3, {2, 4, 12}, x->h};
    w[n++] = (StWrite){"layers.0.b", ST_BF16, 1, {NSRC}, x->b};
    w[n++] = (StWrite){"z.f64", ST_F64, 2, {3, 2}, x->d};
    w[n++] = (StWrite){"ids", ST_I64, 1, {5}, x->i64};
    w[n++] = (StWrite){"i32", ST_I32, 1, {3}, x->i32};
    w[n++] = (StWrite){"i16", ST_I16, 2, {2, 2}, x->i16};
    w[n++] = (StWrite){"i8", ST_I8, 1, {5}, x->i8};
    w[n++] = (StWrite){"u8", ST_U8, 1, {7}, x->u8};
    w[n++] = (StWrite){"mask", ST_BOOL, 1, {3}, x->bl};
    w[n++] = (StWrite){"scalar", ST_F32, 0, {0}, &x->scalar};
    w[n++] = (StWrite){"empty", ST_F32, 2, {0, 4}, NULL};
    return n;
}

// ---------------------------------------------------------------------------- driver modes

static void print_json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static void print_float(float f) {
    if (isnan(f)) printf("NaN");
    else if (isinf(f)) printf(f > 0 ? "Infinity" : "-Infinity");
    else printf("%.9g", f);
}

static int dump(const char *path) {
    Err e = {0};
    StSet *s = st_open(path, &e);
    if (!s) { fprintf(stderr, "%s\n", e.msg); return 1; }
    printf("{\"format\": ");
    const char *fmt = st_metadata(s, "format");
    if (fmt) print_json_str(fmt); else printf("null");
    printf(", \"tensors\": [\n");
    for (int i = 0; i < st_count(s); i++) {
        const StTensor *t = st_get(s, i);
        if (st_find(s, t->name) != t) { fprintf(stderr, "st_find disagrees for %s\n", t->name); return 1; }
        printf("%s{\"name\": ", i ? ",\n" : "");
        print_json_str(t->name);
        printf(", \"dtype\": \"%s\", \"shape\": [", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
        printf("], \"numel\": %lld, \"hex\": \"", (long long)t->numel);
        for (size_t b = 0; b < t->nbytes; b++) printf("%02x", ((const uint8_t *)t->data)[b]);
        printf("\"");
        if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64) {
            float *v = xmalloc((size_t)t->numel * sizeof(float) + 1);
            if (st_read_f32(t, v, t->ndim, t->shape, &e) != 0) { fprintf(stderr, "%s\n", e.msg); return 1; }
            printf(", \"f32\": [");
            for (int64_t k = 0; k < t->numel; k++) {
                if (k) printf(", ");
                print_float(v[k]);
            }
            printf("]");
            free(v);
        }
        printf("}");
    }
    printf("]}\n");
    st_close(s);
    return 0;
}

static int write_fixed(const char *dir) {
    Err e = {0};
    Fixed x;
    StWrite w[16];
    int n = fixed_set(&x, w);
    char p[1024];
    if (mkdir_p(dir, &e) != 0) { fprintf(stderr, "%s\n", e.msg); return 1; }
    const char *meta[2] = {"format", "pt"};
    snprintf(p, sizeof p, "%s/single.safetensors", dir);
    if (st_write(p, w, n, meta, 1, &e) != 0) { fprintf(stderr, "%s\n", e.msg); return 1; }
    snprintf(p, sizeof p, "%s/sharded", dir);
    // 200 bytes: several shards, and src.f32 (384 bytes) alone in one of its own
    if (st_write_sharded(p, "model", w, n, 200, &e) != 0) { fprintf(stderr, "%s\n", e.msg); return 1; }
    return 0;
}

// ---------------------------------------------------------------------------- unit tests

static void test_conversions(void) {
    float in[] = {1.0f, 1.00390625f, 1.01171875f, -1.00390625f, 3.3961775e38f, NAN, INFINITY, 1e-40f};
    uint16_t b[8];
    f32_to_bf16(in, b, 8);
    CHECK(b[0] == 0x3f80 && b[1] == 0x3f80, "tie 1+2^-8 rounds to even 1.0: %04x", b[1]);
    CHECK(b[2] == 0x3f82, "1+3*2^-8 rounds up to 1+2^-6: %04x", b[2]);
    CHECK(b[3] == 0xbf80, "negative tie: %04x", b[3]);
    CHECK(b[4] == 0x7f80, "rounding past the largest bf16 gives inf: %04x", b[4]);
    CHECK(b[5] == 0x7fc0 && b[6] == 0x7f80, "NaN %04x inf %04x", b[5], b[6]);
    float h_in[] = {65504.0f, 65519.0f, 65520.0f, 5.9604645e-08f, 2.9802322e-08f, 8.940697e-08f,
                    -0.0f, 1.0009765625f, 1.00048828125f, 6.1035156e-05f, NAN, -INFINITY};
    uint16_t h[12];
    f32_to_f16(h_in, h, 12);
    uint16_t want[12] = {0x7bff, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0002, 0x8000, 0x3c01, 0x3c00, 0x0400, 0, 0xfc00};
    for (int i = 0; i < 12; i++)
        if (i != 10) CHECK(h[i] == want[i], "f16 of %g: got %04x want %04x", h_in[i], h[i], want[i]);
    CHECK((h[10] & 0x7c00) == 0x7c00 && (h[10] & 0x3ff), "f16 NaN stays NaN: %04x", h[10]);
    // f16 -> f32 -> f16 is the identity on every non-NaN half
    int bad = 0;
    for (uint32_t u = 0; u < 65536; u++) {
        uint16_t x = (uint16_t)u, y;
        float f;
        f16_to_f32(&x, &f, 1);
        f32_to_f16(&f, &y, 1);
        if (!isnan(f) && x != y) bad++;
    }
    CHECK(bad == 0, "%d halves do not round trip", bad);
    uint16_t one = 0x3c00, sub = 0x0001;
    float f1, fs;
    f16_to_f32(&one, &f1, 1);
    f16_to_f32(&sub, &fs, 1);
    CHECK(f1 == 1.0f && fs == 5.9604645e-08f, "f16 decode %g %g", f1, fs);
}

static void test_exact_header(void) {
    // The Python library writes exactly these bytes (compact JSON, space padding to 8).
    float v[6] = {0, 1, 2, 3, 4, 5};
    StWrite w = {"attn0", ST_F32, 4, {1, 1, 2, 3}, v};
    char p[512];
    snprintf(p, sizeof p, "%s/exact.safetensors", tmpdir);
    Err e = {0};
    CHECK(st_write(p, &w, 1, NULL, 0, &e) == 0, "%s", e.msg);
    size_t len;
    char *b = read_file(p, &len, &e);
    const char *hdr = "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ";
    CHECK(b && len == 8 + 72 + 24, "file length %zu", len);
    CHECK(b && (uint8_t)b[0] == 72 && memcmp(b + 8, hdr, 72) == 0, "header bytes differ");
    CHECK(b && memcmp(b + 80, v, 24) == 0, "data bytes differ");
    free(b);
    const char *meta[2] = {"format", "pt"};
    CHECK(st_write(p, NULL, 0, meta, 1, &e) == 0, "%s", e.msg);
    b = read_file(p, &len, &e);
    CHECK(b && len == 8 + 32 && memcmp(b + 8, "{\"__metadata__\":{\"format\":\"pt\"}}", 32) == 0,
          "empty file with metadata: %zu bytes", len);
    free(b);
    StSet *s = st_open(p, &e);
    CHECK(s && st_count(s) == 0 && st_metadata(s, "format") && strcmp(st_metadata(s, "format"), "pt") == 0, "%s", e.msg);
    st_close(s);
}

static void check_fixed(StSet *s, const Fixed *x, const StWrite *w, int n, const char *what) {
    CHECK(s && st_count(s) == n, "%s: count %d", what, st_count(s));
    if (!s) return;
    for (int i = 0; i < n; i++) {
        const StTensor *t = st_find(s, w[i].name);
        CHECK(t != NULL, "%s: %s missing", what, w[i].name);
        if (!t) continue;
        size_t nb = st_dtype_size(w[i].dtype);
        for (int d = 0; d < w[i].ndim; d++) nb *= (size_t)w[i].shape[d];
        CHECK(t->dtype == w[i].dtype && t->ndim == w[i].ndim && t->nbytes == nb, "%s: %s header", what, w[i].name);
        CHECK(nb == 0 || memcmp(t->data, w[i].data, nb) == 0, "%s: %s data", what, w[i].name);
        CHECK((uintptr_t)t->data % st_dtype_size(t->dtype) == 0, "%s: %s unaligned", what, w[i].name);
    }
    CHECK(st_find(s, "nope") == NULL, "absent tensor found");
    Err e = {0};
    float got[NSRC], want[NSRC];
    int64_t shape_h[3] = {2, 4, 12}, shape_b[1] = {NSRC};
    CHECK(st_read_f32(st_find(s, "layers.0.h"), got, 3, shape_h, &e) == 0, "%s", e.msg);
    f16_to_f32(x->h, want, NSRC);
    CHECK(memcmp(got, want, sizeof got) == 0, "%s: f16 -> f32", what);
    CHECK(st_read_f32(st_find(s, "layers.0.b"), got, 1, shape_b, &e) == 0, "%s", e.msg);
    int far = 0;
    for (int i = 0; i < NSRC; i++)
        if (isfinite(x->src[i]) && fabsf(x->src[i]) < 3e38f && fabsf(x->src[i]) > 1e-37f && fabsf(got[i] - x->src[i]) > fabsf(x->src[i]) * (1.0f / 256)) far++;
    CHECK(far == 0, "%s: %d bf16 values further than half an ulp", what, far);
    int64_t shape_s[2] = {8, 12};
    const float *view = st_f32_view(st_find(s, "src.f32"), 2, shape_s, &e);
    CHECK(view && memcmp(view, x->src, sizeof x->src) == 0, "%s: f32 view %s", what, e.msg);
    float d[6];
    int64_t shape_d[2] = {3, 2};
    CHECK(st_read_f32(st_find(s, "z.f64"), d, 2, shape_d, &e) == 0 && d[0] == (float)x->d[0] && d[5] == (float)x->d[5], "f64");
}

static void test_round_trip(void) {
    Fixed x;
    StWrite w[16];
    int n = fixed_set(&x, w);
    Err e = {0};
    char p[512], q[600];
    snprintf(p, sizeof p, "%s/rt.safetensors", tmpdir);
    const char *meta[4] = {"format", "pt", "note", "a \"quoted\"\nline"};
    CHECK(st_write(p, w, n, meta, 2, &e) == 0, "%s", e.msg);
    StSet *s = st_open(p, &e);
    CHECK(s != NULL, "%s", e.msg);
    check_fixed(s, &x, w, n, "single");
    CHECK(s && st_metadata(s, "note") && strcmp(st_metadata(s, "note"), "a \"quoted\"\nline") == 0, "metadata escape");
    // file order is descending alignment then name: I64 first, BOOL last
    CHECK(s && strcmp(st_get(s, 0)->name, "ids") == 0 && strcmp(st_get(s, n - 1)->name, "mask") == 0, "write order");
    st_close(s);

    snprintf(p, sizeof p, "%s/model", tmpdir);
    CHECK(st_write_sharded(p, "model", w, n, 200, &e) == 0, "%s", e.msg);
    snprintf(q, sizeof q, "%s/model.safetensors.index.json", p);
    CHECK(access(q, F_OK) == 0, "index written");
    snprintf(q, sizeof q, "%s/model-00001-of-00004.safetensors", p);
    CHECK(access(q, F_OK) == 0, "shard 1 of 4 written");
    s = st_open(p, &e);
    CHECK(s != NULL, "%s", e.msg);
    check_fixed(s, &x, w, n, "sharded");
    CHECK(s && strcmp(st_metadata(s, "format"), "pt") == 0, "shards carry format=pt");
    // the oversized src.f32 comes first, alone, in shard 1 (huggingface_hub's rule)
    CHECK(s && strstr(st_find(s, "src.f32")->file, "model-00001-of-00004") && strstr(st_find(s, "ids")->file, "-00004"),
          "shard assignment");
    st_close(s);
    snprintf(q, sizeof q, "%s/model.safetensors.index.json", p);
    s = st_open(q, &e);
    CHECK(s && st_count(s) == n, "open by index path: %s", e.msg);
    st_close(s);
    // Re-saving as one file removes the index and the shards.
    CHECK(st_write_sharded(p, "model", w, n, 1 << 20, &e) == 0, "%s", e.msg);
    CHECK(access(q, F_OK) != 0, "stale index removed");
    snprintf(q, sizeof q, "%s/model-00001-of-00004.safetensors", p);
    CHECK(access(q, F_OK) != 0, "stale shard removed");
    s = st_open(p, &e);
    check_fixed(s, &x, w, n, "resaved");
    st_close(s);

    // writer refuses bad input
    StWrite dup[2] = {w[0], w[0]};
    dup[1].dtype = ST_F16;
    CHECK(st_write(p, dup, 2, NULL, 0, &e) != 0 && strstr(e.msg, "twice"), "duplicate names: %s", e.msg);
}

typedef struct {
    const char *label;
    const char *header;  // NULL: raw bytes built by the case
    int64_t hlen_delta;  // added to the true header length
    size_t data_len;
    const char *expect;  // substring of the error
} Bad;

static void test_corrupt(void) {
    static const Bad cases[] = {
        {"bad json", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 0, 4, "not valid JSON"},
        {"not object", "[1,2,3]", 0, 0, "not a JSON object"},
        {"header too long", "{}", 100, 0, "larger than the file"},
        {"header huge", "{}", 200000000, 0, "100 MB"},
        {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, "missing dtype"},
        {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 0, 4, "missing shape"},
        {"missing offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 0, 4, "missing data_offsets"},
        {"unknown dtype", "{\"a\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, "unknown dtype"},
        {"fp8 dtype", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0, 1, "not supported"},
        {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, 4, "non-negative"},
        {"real dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 0, 4, "non-negative"},
        {"overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 0, 4, "overflow"},
        {"bytes overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]}}", 0, 4, "overflow"},
        {"nine dims", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 1, "dimensions"},
        {"offsets out of range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 4, "out of range"},
        {"end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 0, 4, "< begin"},
        {"size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 0, 4, "needs 8"},
        {"offsets not pair", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 0, 4, "pair"},
        {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, "overlaps"},
        {"hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 0, 8, "hole"},
        {"trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 8, "not fully covered"},
        {"duplicate name", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2, "duplicate"},
        {"metadata not strings", "{\"__metadata__\":{\"x\":1}}", 0, 0, "not a string"},
        {"entry not object", "{\"a\":5}", 0, 0, "not an object"},
    };
    uint8_t buf[4096];
    char p[512];
    Err e;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const Bad *c = &cases[i];
        snprintf(p, sizeof p, "%s/bad%02zu.safetensors", tmpdir, i);
        size_t n = make_raw(buf, strlen(c->header) + (uint64_t)c->hlen_delta, c->header, c->data_len);
        put_file(p, buf, n);
        memset(&e, 0, sizeof e);
        StSet *s = st_open(p, &e);
        CHECK(s == NULL, "%s: accepted", c->label);
        st_close(s);
        CHECK(strstr(e.msg, p) && strstr(e.msg, c->expect) && !strchr(e.msg, '\n'), "%s: message '%s' lacks '%s'", c->label, e.msg, c->expect);
    }
    // truncated: shorter than 8 bytes, and cut inside the data
    snprintf(p, sizeof p, "%s/short.safetensors", tmpdir);
    put_file(p, "\x08\0\0", 3);
    StSet *s = st_open(p, &e);
    CHECK(!s && strstr(e.msg, p) && strstr(e.msg, "shorter than"), "short: %s", e.msg);
    size_t n = make_raw(buf, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
    put_file(p, buf, n - 5);
    s = st_open(p, &e);
    CHECK(!s && strstr(e.msg, p) && strstr(e.msg, "out of range"), "truncated data: %s", e.msg);
    put_file(p, buf, n);
    s = st_open(p, &e);
    CHECK(s != NULL, "the untruncated control opens: %s", e.msg);
    // wrong dtype / shape asked of a good tensor
    if (s) {
        float out[4];
        int64_t want[2] = {2, 2};
        CHECK(st_read_f32(st_find(s, "a"), out, 2, want, &e) != 0 && strstr(e.msg, p) &&
              strstr(e.msg, "has shape [4], expected [2, 2]"), "shape mismatch: %s", e.msg);
    }
    st_close(s);
    n = make_raw(buf, 0, "{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16);
    put_file(p, buf, n);
    s = st_open(p, &e);
    float out2[2];
    int64_t two = 2;
    CHECK(s && st_read_f32(st_find(s, "a"), out2, 1, &two, &e) != 0 && strstr(e.msg, p) && strstr(e.msg, "dtype I64"),
          "dtype mismatch: %s", e.msg);
    CHECK(s && !st_f32_view(st_find(s, "a"), 1, &two, &e), "view of I64");
    st_close(s);
    // unaligned data (a foreign writer's header without padding): view refuses, read copies
    n = make_raw(buf, 0, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    put_file(p, buf, n);
    s = st_open(p, &e);
    float one = 0;
    int64_t d1 = 1;
    CHECK(s && !st_f32_view(st_find(s, "a"), 1, &d1, &e) && strstr(e.msg, "aligned"), "unaligned view: %s", e.msg);
    CHECK(s && st_read_f32(st_find(s, "a"), &one, 1, &d1, &e) == 0 && memcmp(&one, "\0\1\2\3", 4) == 0, "unaligned read");
    st_close(s);
    // missing file, directory without model files
    snprintf(p, sizeof p, "%s/does-not-exist.safetensors", tmpdir);
    s = st_open(p, &e);
    CHECK(!s && strstr(e.msg, p) && strstr(e.msg, "cannot open"), "missing: %s", e.msg);
    snprintf(p, sizeof p, "%s/emptydir", tmpdir);
    mkdir_p(p, &e);
    s = st_open(p, &e);
    CHECK(!s && strstr(e.msg, p) && strstr(e.msg, "neither"), "empty dir: %s", e.msg);
}

static void test_bad_index(void) {
    Fixed x;
    StWrite w[16];
    int n = fixed_set(&x, w);
    Err e = {0};
    char dir[512], idx[600], shard[600];
    snprintf(dir, sizeof dir, "%s/idx", tmpdir);
    CHECK(st_write_sharded(dir, "model", w, n, 200, &e) == 0, "%s", e.msg);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    size_t len;
    char *orig = read_file(idx, &len, &e);
    struct { const char *label, *body, *expect; } cases[] = {
        {"missing shard", "{\"weight_map\":{\"a\":\"model-00009-of-00009.safetensors\"}}", "shard 'model-00009-of-00009.safetensors' is missing"},
        {"escaping path", "{\"weight_map\":{\"a\":\"../x.safetensors\"}}", "not a plain file name"},
        {"no weight_map", "{\"metadata\":{}}", "weight_map"},
        {"bad json", "{\"weight_map\":", "not valid JSON"},
        {"absent tensor", "{\"weight_map\":{\"ids\":\"model-00004-of-00004.safetensors\",\"ghost\":\"model-00004-of-00004.safetensors\"}}", "does not have it"},
        {"unlisted tensor", "{\"weight_map\":{\"ids\":\"model-00004-of-00004.safetensors\"}}", "does not list"},
        {"wrong shard", "{\"weight_map\":{\"src.f32\":\"model-00001-of-00004.safetensors\",\"ids\":\"model-00004-of-00004.safetensors\",\"i32\":\"model-00001-of-00004.safetensors\"}}", "listed for model-00001-of-00004.safetensors but found in model-00004-of-00004.safetensors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        write_file_atomic(idx, cases[i].body, strlen(cases[i].body), &e);
        StSet *s = st_open(dir, &e);
        CHECK(!s && strstr(e.msg, idx) && strstr(e.msg, cases[i].expect), "%s: '%s'", cases[i].label, e.msg);
        st_close(s);
    }
    // a good index over a corrupt shard names the shard
    write_file_atomic(idx, orig, len, &e);
    snprintf(shard, sizeof shard, "%s/model-00002-of-00004.safetensors", dir);
    truncate(shard, 12);
    StSet *s = st_open(dir, &e);
    CHECK(!s && strstr(e.msg, shard), "corrupt shard: '%s'", e.msg);
    free(orig);
    // a folder of PyTorch pickles (OPT's releases) is named with the conversion, not read
    char bin[600];
    snprintf(dir, sizeof dir, "%s/pickle", tmpdir);
    mkdir(dir, 0755);
    s = st_open(dir, &e);
    CHECK(!s && strstr(e.msg, "neither model.safetensors.index.json nor model.safetensors"), "empty: '%s'", e.msg);
    snprintf(bin, sizeof bin, "%s/pytorch_model.bin", dir);
    put_file(bin, "PK", 2);
    s = st_open(dir, &e);
    CHECK(!s && strstr(e.msg, "pytorch_model.bin") && strstr(e.msg, "safe_serialization=True"), "pickle: '%s'", e.msg);
}

// Random byte flips in the header of a valid file must give a clean error or a valid set.
static void test_fuzz(void) {
    Fixed x;
    StWrite w[16];
    int n = fixed_set(&x, w);
    Err e = {0};
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/fuzz-src.safetensors", tmpdir);
    snprintf(q, sizeof q, "%s/fuzz.safetensors", tmpdir);
    st_write(p, w, n, NULL, 0, &e);
    size_t len;
    uint8_t *orig = (uint8_t *)read_file(p, &len, &e);
    uint8_t *b = xmalloc(len);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | orig[i];
    uint32_t rng = 12345;
    int opened = 0, rejected = 0;
    for (int it = 0; it < 2000; it++) {
        memcpy(b, orig, len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 1103515245u + 12345u;
            size_t at = (rng >> 8) % (8 + hl);
            rng = rng * 1103515245u + 12345u;
            b[at] = (it & 1) ? (uint8_t)(rng >> 16) : (uint8_t)(b[at] ^ (1u << ((rng >> 16) & 7)));
        }
        size_t cut = len;
        if (it % 10 == 9) cut = (rng >> 4) % len;  // sometimes truncated too
        put_file(q, b, cut);
        StSet *s = st_open(q, &e);
        if (s) {
            opened++;
            // whatever opened must be readable end to end
            for (int i = 0; i < st_count(s); i++) {
                const StTensor *t = st_get(s, i);
                volatile uint8_t sum = 0;
                for (size_t j = 0; j < t->nbytes; j++) sum ^= ((const uint8_t *)t->data)[j];
                (void)sum;
            }
        } else {
            rejected++;
            CHECK(strstr(e.msg, q) != NULL, "fuzz message lacks the path: %s", e.msg);
        }
        st_close(s);
    }
    CHECK(rejected > 1000 && opened + rejected == 2000, "fuzz: %d opened, %d rejected", opened, rejected);
    free(orig);
    free(b);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--dump") == 0) return dump(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--write") == 0) return write_fixed(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--dump PATH | --write DIR]\n", argv[0]);
        return 2;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/antibody-st-XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    test_conversions();
    test_exact_header();
    test_round_trip();
    test_corrupt();
    test_bad_index();
    test_fuzz();
    rm_rf(tmpdir);
    TEST_SUMMARY();
}
