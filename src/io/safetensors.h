// safetensors reading and writing (the Hugging Face weight format), for untrusted input.
// A file is: u64 little-endian header length N, N bytes of JSON header, then the data.
// The header maps tensor name -> {dtype, shape, data_offsets:[begin,end]} (offsets
// relative to the data section) plus an optional "__metadata__" object of strings.
// Checks on open (matching what the Rust library enforces, and a little stricter):
// see docs/formats.md.
//
// Data pointers point into a read-only mmap of the file. The mmap base is page aligned,
// so a tensor's data is aligned to its element size exactly when 8 + N + begin is; files
// written by this module or by the Python library always are (header padded to a multiple
// of 8, tensors laid out by descending alignment). Files from other writers may not be:
// use st_read_f32 (copies, any alignment) or st_f32_view (checks alignment).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
               ST_U16, ST_U32, ST_U64 } StDtype;
#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const void *data;  // into the mmap; may be unaligned for files from foreign writers
    size_t nbytes;
    const char *file;  // path of the file holding it (owned by the StSet)
} StTensor;

typedef struct StSet StSet;  // tensors of one file or of all shards of a model (mmap'd, read-only)

// path: a .safetensors file, a *.safetensors.index.json, or a directory holding
// model.safetensors.index.json or model.safetensors (the index wins when both exist).
StSet *st_open(const char *path, Err *e);
void st_close(StSet *s);
int st_count(const StSet *s);
const StTensor *st_get(const StSet *s, int i);  // in file order, shards in index order
const StTensor *st_find(const StSet *s, const char *name);  // NULL if absent (hash lookup)
const char *st_metadata(const StSet *s, const char *key);   // __metadata__ value or NULL

// Element size in bytes, the header spelling ("F32", "BF16", ...), and its inverse (-1 if unknown).
size_t st_dtype_size(StDtype d);
const char *st_dtype_name(StDtype d);
int st_dtype_parse(const char *name);

// Checks the shape (ndim and each dim; expect_shape NULL skips the check) and converts any
// float dtype (F32, F16, BF16, F64) to f32 into out (numel floats). The error names the
// file, the tensor, and the expected vs found shape or dtype.
int st_read_f32(const StTensor *t, float *out, int ndim, const int64_t *expect_shape, Err *e);
// What st_read_f32 checks before reading: the shape and a float dtype.
int st_check_float(const StTensor *t, int ndim, const int64_t *expect_shape, Err *e);
// The same, refusing NaN and Inf by tensor and element: for weights, adapters and
// optimizer state, where one would run to empty output much later.
int st_read_f32_finite(const StTensor *t, float *out, int ndim, const int64_t *expect_shape, Err *e);
// Error naming t and the first NaN/Inf among v[0..n).
int st_check_finite(const StTensor *t, const float *v, size_t n, Err *e);
// Zero-copy: the tensor's data as const float* when it is F32, has the expected shape and
// is 4-byte aligned in the mapping; else NULL with the reason in e.
const float *st_f32_view(const StTensor *t, int ndim, const int64_t *expect_shape, Err *e);

typedef struct {
    const char *name;
    StDtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;  // numel * st_dtype_size(dtype) bytes, already in dtype
} StWrite;

// Writes one file atomically (temp + fsync + rename) in the Python library's layout:
// tensors sorted by descending dtype alignment then name, compact JSON header with
// "__metadata__" first, padded with spaces to a multiple of 8. meta_kv holds n_meta
// key,value pairs (2*n_meta strings); transformers expects {"format": "pt"}.
int st_write(const char *path, const StWrite *t, int n, const char *const *meta_kv, int n_meta, Err *e);

// Writes a model into dir the way transformers' save_pretrained does: tensors are taken in
// the given order and a new shard starts when the next tensor would push the current one
// past max_shard_bytes (a larger tensor gets a shard of its own). One shard:
// <prefix>.safetensors. Several: <prefix>-0000i-of-0000N.safetensors plus
// <prefix>.safetensors.index.json ({"metadata":{"total_size"}, "weight_map"}). Each shard
// carries {"format":"pt"}. Stale files of the other layout with the same prefix are removed.
int st_write_sharded(const char *dir, const char *prefix, const StWrite *t, int n,
                     size_t max_shard_bytes, Err *e);

// f32 <-> bf16 / f16, round-to-nearest-even like torch; NaN stays NaN, overflow goes to inf (f16).
void f32_to_bf16(const float *in, uint16_t *out, size_t n);
void bf16_to_f32(const uint16_t *in, float *out, size_t n);
void f32_to_f16(const float *in, uint16_t *out, size_t n);
void f16_to_f32(const uint16_t *in, float *out, size_t n);
