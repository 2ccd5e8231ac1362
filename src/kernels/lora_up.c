// The up-projection of a LoRA adapter, y += s * ax @ B^T, in the form each row count
// runs fastest: a few rows (generation) scale ax and take the matrix-vector path; more
// rows take one SGEMM with alpha = s. ax itself is left as it is (training keeps it for
// the gradient of B).
#include "kernels/kernels.h"

void lora_up_forward(float *y, const float *ax, const float *B, float s, int N, int OUT, int r) {
    if (N <= MATVEC_MAX_ROWS) {
        float sax[MATVEC_MAX_ROWS * r];
        for (int i = 0; i < N * r; i++) sax[i] = ax[i] * s;
        Mat Bm = {MAT_F32, (void *)B, OUT, r};
        matvec_forward(y, sax, &Bm, NULL, N, 1);
        return;
    }
    gemm_nt(y, ax, B, N, OUT, r, s, 1.0f);
}
