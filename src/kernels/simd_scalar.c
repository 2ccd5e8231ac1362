// The vector kernels (simd.h) in portable C: what runs on a CPU without AVX2 (and on
// other architectures), and the plain form the AVX2 and AVX-512 tables are tested against.
// The compiler still vectorises these loops for the build's baseline.
#include <math.h>

#include "kernels/simd.h"
#include "kernels/simd_loops.h"

static void matvec_rows(float *out, const float *in, const Mat *W, const float *bias, int N, int accumulate, int r0,
                        int r1) {
    int OUT = W->rows, IN = W->cols;
    for (int r = r0; r < r1; r++) {
        const float *wf = W->type == MAT_F32 ? (const float *)W->data + (size_t)r * IN : NULL;
        const uint16_t *wb = (const uint16_t *)W->data + (size_t)r * IN;
        for (int i = 0; i < N; i++) {
            const float *xi = in + (size_t)i * IN;
            float s = 0.0f;
            if (wf) {
#pragma omp simd reduction(+ : s)
                for (int j = 0; j < IN; j++) s += wf[j] * xi[j];
            } else {
#pragma omp simd reduction(+ : s)
                for (int j = 0; j < IN; j++) s += bf16_to_float(wb[j]) * xi[j];
            }
            float v = s + (bias ? bias[r] : 0.0f);
            float *o = out + (size_t)i * OUT + r;
            *o = accumulate ? *o + v : v;
        }
    }
}

static void mask_row(float *xm, const float *x, const uint8_t *bits, size_t off, int n, float keep) {
    for (int j = 0; j < n; j += 16) {
        uint32_t m = mask_bits16(bits, off + j, off + n);
        for (int k = 0; k < 16 && j + k < n; k++) xm[j + k] = (m >> k & 1) ? x[j + k] * keep : 0.0f;
    }
}

// The masked kernels a block of 64 columns at a time: the block's dropped-out rows on the
// stack through mask_row, then loops the compiler vectorises.
#define MASK_BLOCK 64
static void dot8_masked(float *out, const float *x, const uint8_t *bits, size_t off, float keep, const float *A,
                        size_t ld, int n) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f, s4 = 0.0f, s5 = 0.0f, s6 = 0.0f, s7 = 0.0f, xm[MASK_BLOCK];
    for (int j0 = 0; j0 < n; j0 += MASK_BLOCK) {
        int m = n - j0 < MASK_BLOCK ? n - j0 : MASK_BLOCK;
        const float *a = A + j0;
        mask_row(xm, x + j0, bits, off + j0, m, keep);
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)
        for (int j = 0; j < m; j++) {
            float v = xm[j];
            s0 += v * a[j], s1 += v * a[ld + j], s2 += v * a[2 * ld + j], s3 += v * a[3 * ld + j];
            s4 += v * a[4 * ld + j], s5 += v * a[5 * ld + j], s6 += v * a[6 * ld + j], s7 += v * a[7 * ld + j];
        }
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3, out[4] = s4, out[5] = s5, out[6] = s6, out[7] = s7;
}

static void outer8_masked(float *g, const float *c, int r, const float *x, const uint8_t *bits, size_t off, int nb,
                          int n, float keep) {
    float xm[8][MASK_BLOCK];
    for (int j0 = 0; j0 < n; j0 += MASK_BLOCK) {
        int m = n - j0 < MASK_BLOCK ? n - j0 : MASK_BLOCK;
        for (int i = 0; i < 8; i++) {
            if (i < nb) mask_row(xm[i], x + (size_t)i * n + j0, bits, off + (size_t)i * n + j0, m, keep);
            else
                for (int j = 0; j < m; j++) xm[i][j] = 0.0f;
        }
        for (int k = 0; k < r; k++) {
            float *gk = g + (size_t)k * n + j0;
            const float *ck = c + k * 8;
#pragma omp simd
            for (int j = 0; j < m; j++) {
                float acc = gk[j];
                for (int i = 0; i < 8; i++) acc += ck[i] * xm[i][j];
                gk[j] = acc;
            }
        }
    }
}

static void loop_axpy(float *y, float a, const float *x, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) y[j] += a * x[j];
}

static void comb_add_masked(float *o, const float *d, int r, const float *A, size_t ld, const uint8_t *bits,
                            size_t off, int n, float keep) {
    float y[MASK_BLOCK];
    for (int j0 = 0; j0 < n; j0 += MASK_BLOCK) {
        int m = n - j0 < MASK_BLOCK ? n - j0 : MASK_BLOCK;
        for (int j = 0; j < m; j++) y[j] = 0.0f;
        for (int k = 0; k < r; k++) {
            const float *a = A + k * ld + j0;
#pragma omp simd
            for (int j = 0; j < m; j++) y[j] += d[k] * a[j];
        }
        for (int j = 0; j < m; j += 16) {
            uint32_t mb = mask_bits16(bits, off + j0 + j, off + j0 + m);
            for (int q = 0; q < 16 && j + q < m; q++) o[j0 + j + q] += (mb >> q & 1) ? y[j + q] * keep : 0.0f;
        }
    }
}

static void dropout_bits(uint8_t *bits, size_t b0, size_t b1, uint32_t thr, uint32_t k0, uint32_t k1) {
    for (size_t b = b0; b < b1; b++) bits[b] = dropout_byte(b, thr, k0, k1);
}

#define EXP_MIN -87.3365448f  // ln(FLT_MIN): below it the vector tables give 0, and so does this one
static inline float exp_flushed(float x) { return x < EXP_MIN ? 0.0f : expf(x); }

static double exp_sum(float *x, int n, float shift) {
    double s = 0;
    for (int j = 0; j < n; j++) {
        x[j] = exp_flushed(x[j] - shift);
        s += x[j];
    }
    return s;
}

static void swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = g[i] / (1.0f + exp_flushed(-g[i])) * u[i];
}

static void swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float sig = 1.0f / (1.0f + exp_flushed(-g[i]));
        dg[i] = dout[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
        du[i] = dout[i] * g[i] * sig;
    }
}

// ---- Gemma's tanh loops (libm's tanhf), in transformers' order of operations
static void softcap(float *x, float cap, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i] / cap) * cap;
}

static void geglu_fwd(float *out, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i], inner = GELU_BETA * (x + GELU_KAPPA * (x * x * x));
        out[i] = 0.5f * x * (1.0f + tanhf(inner)) * u[i];
    }
}

// d gelu_tanh(g)/dg = 0.5 (1 + t) + 0.5 g (1 - t^2) b (1 + 3 k g^2), t = tanh(b (g + k g^3))
static void geglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = g[i], x2 = x * x, t = tanhf(GELU_BETA * (x + GELU_KAPPA * x2 * x));
        float gelu = 0.5f * x * (1.0f + t);
        float d = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_BETA * (1.0f + 3.0f * GELU_KAPPA * x2);
        dg[i] = dout[i] * u[i] * d;
        du[i] = dout[i] * gelu;
    }
}

// The query heads of KV heads [kh0, kh1) against len cached positions: scores, softmax,
// weighted values.
static void attend_cached(float *out, float *att_buf, int att_stride, const float *q, const float *kc,
                          const float *vc, int len, int NH, int NKV, int HD, float scale, float softcap, int kh0,
                          int kh1) {
    int KV = NKV * HD, G = NH / NKV;
    for (int h = kh0 * G; h < kh1 * G; h++) {
        int kh = h / G;
        const float *qh = q + (size_t)h * HD;
        float *att = att_buf + (size_t)h * att_stride, mx = -INFINITY;
        for (int t = 0; t < len; t++) att[t] = loop_dot(qh, kc + (size_t)t * KV + kh * HD, HD) * scale;
        if (softcap > 0.0f) softcap_forward(att, softcap, (size_t)len);
        for (int t = 0; t < len; t++) mx = att[t] > mx ? att[t] : mx;
        float sum = (float)exp_sum(att, len, mx), *o = out + (size_t)h * HD;
        for (int j = 0; j < HD; j++) o[j] = 0.0f;
        for (int t = 0; t < len; t++) loop_axpy(o, att[t] / sum, vc + (size_t)t * KV + kh * HD, HD);
    }
}

const SimdKernels simd_scalar = {
    .matvec_rows = matvec_rows,
    .mask_row = mask_row,
    .dot = loop_dot,
    .dot8_masked = dot8_masked,
    .outer8_masked = outer8_masked,
    .comb_add_masked = comb_add_masked,
    .dropout_bits = dropout_bits,
    .exp_sum = exp_sum,
    .swiglu_fwd = swiglu_fwd,
    .swiglu_bwd = swiglu_bwd,
    .softcap = softcap,
    .geglu_fwd = geglu_fwd,
    .geglu_bwd = geglu_bwd,
    .attend_cached = attend_cached,
};
