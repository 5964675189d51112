// Row-major single-precision GEMM on the CPU through OpenBLAS:
// C (m, n) = alpha * op(A) * op(B) + beta * C, op(A) (m, k), op(B) (k, n).
#ifndef MASA_GEMM_H
#define MASA_GEMM_H

#include <stdint.h>

void gemm_cpu(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc);

#endif
