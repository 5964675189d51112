// CUDA twin of linear_forward/backward (ops/conv.h) through cuBLAS. cuBLAS is column-major:
// a row-major (r, c) matrix is its column-major (c, r) transpose, so y^T = w x^T becomes
// gemm(op(w) = w^T viewed col-major...) as written below. The GEMMs go through masa_gemm_ex
// (kernels/precision.cu): FP32 pedantic math (no TF32) by default, for parity checks; bf16
// operands with FP32 accumulation in bf16 precision.
#include <limits.h>

#include "cuda_check.h"
#include "kernels.h"

static __global__ void add_bias_rows(int64_t n, int64_t out, const float *__restrict__ b,
                                     float *__restrict__ y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n * out;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] += b[i % out];
}

// db[o] += sum_n dy[n, o]; one thread per output feature, fixed order (deterministic).
static __global__ void bias_grad(int64_t n, int64_t out, const float *__restrict__ dy,
                                 float *__restrict__ db) {
  int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= out) return;
  float s = 0.0f;
  for (int64_t r = 0; r < n; r++) s += dy[r * out + o];
  db[o] += s;
}

extern "C" void linear_forward_cuda(int64_t n, int64_t in, int64_t out, const float *x,
                                    const float *w, const float *b, float *y, cudaStream_t stream) {
  if (n == 0 || out == 0) return;
  masa_assert(n <= INT_MAX && in <= INT_MAX && out <= INT_MAX);
  // Column-major: Y^T (out, n) = W (out, in) [col-major view of row-major w is (in, out) -> T]
  //               * X^T (in, n) [col-major view of row-major x].
  masa_gemm_ex(stream, CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)n, (int)in, 1.0f, w, (int)in, x,
               (int)in, 0.0f, y, (int)out);
  if (b) {
    add_bias_rows<<<(unsigned)((n * out + 255) / 256 > 65535 ? 65535 : (n * out + 255) / 256), 256, 0,
                    stream>>>(n, out, b, y);
    cudaLaunchCheck();
  }
}

extern "C" void linear_backward_cuda(int64_t n, int64_t in, int64_t out, const float *x,
                                     const float *w, const float *dy, float *dx, float *dw,
                                     float *db, cudaStream_t stream) {
  if (n == 0) return;
  masa_assert(n <= INT_MAX && in <= INT_MAX && out <= INT_MAX);
  if (dx)  // dx (n, in) += dy (n, out) w (out, in); col-major: dX^T (in, n) += W^T... 
    masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_N, (int)in, (int)n, (int)out, 1.0f, w, (int)in, dy,
                 (int)out, 1.0f, dx, (int)in);
  if (dw)  // dw (out, in) += dy^T (out, n) x (n, in); col-major: dW^T (in, out) += X^T dY
    masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_T, (int)in, (int)out, (int)n, 1.0f, x, (int)in, dy,
                 (int)out, 1.0f, dw, (int)in);
  if (db) {
    bias_grad<<<(unsigned)((out + 255) / 256), 256, 0, stream>>>(n, out, dy, db);
    cudaLaunchCheck();
  }
}
