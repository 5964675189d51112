// CUDA twin of gemm_cpu (ops/gemm.h): row-major C (m, n) = alpha op(A) op(B) + beta C through
// cuBLAS. A row-major matrix is the column-major transpose, so C^T = op(B)^T op(A)^T is computed
// with the operands swapped. Through masa_gemm_ex (kernels/precision.cu): FP32 pedantic math (no
// TF32) by default, bf16 operands with FP32 accumulation in bf16 precision.
#include <limits.h>

#include "cuda_check.h"
#include "kernels.h"

extern "C" void gemm_cuda(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                          float *c, int64_t ldc, cudaStream_t stream) {
  if (m == 0 || n == 0) return;
  masa_assert(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
              ldc <= INT_MAX);
  masa_gemm_ex(stream, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N,
               (int)n, (int)m, (int)k, alpha, b, (int)ldb, a, (int)lda, beta, c, (int)ldc);
}
