// CUDA twins of the row softmax / log-softmax in ops/activation.h: x, y, dy, dx (rows, cols),
// softmax over the last dim; backward accumulates into dx (NULL skipped).
// One block of REDUCE_THREADS threads per row (grid-stride over rows). Row max in float
// (order-free), row sums in double through block_sum's fixed tree: deterministic, and within
// double rounding of the CPU's sequential double sums. Each thread touches only its own columns
// after every reduction barrier, so y == x (forward) and dx == dy (backward) in place are safe.
// expf/log are CUDA's: a few float ulp from glibc.
#include <math.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

static __device__ float row_max(const float *xr, int64_t cols, float *sh) {
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) m = fmaxf(m, xr[j]);
  return block_max(m, sh);
}

static __global__ void softmax_forward_kernel(int64_t rows, int64_t cols, const float *x,
                                              float *y) {
  __shared__ double shd[REDUCE_THREADS];
  __shared__ float shf[REDUCE_THREADS];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float m = row_max(xr, cols, shf);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      float e = expf(__fsub_rn(xr[j], m));
      yr[j] = e;
      s += (double)e;
    }
    s = block_sum(s, shd);
    float inv = (float)(1.0 / s);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) yr[j] = __fmul_rn(yr[j], inv);
  }
}

static __global__ void log_softmax_forward_kernel(int64_t rows, int64_t cols, const float *x,
                                                  float *y) {
  __shared__ double shd[REDUCE_THREADS];
  __shared__ float shf[REDUCE_THREADS];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float m = row_max(xr, cols, shf);
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += (double)expf(__fsub_rn(xr[j], m));
    s = block_sum(s, shd);
    float lse = (float)log(s);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      yr[j] = __fsub_rn(__fsub_rn(xr[j], m), lse);
  }
}

// dx += y * (dy - sum(dy * y))
static __global__ void softmax_backward_kernel(int64_t rows, int64_t cols, const float *y,
                                               const float *dy, float *dx) {
  __shared__ double shd[REDUCE_THREADS];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *yr = y + r * cols, *dyr = dy + r * cols;
    float *dxr = dx + r * cols;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      s = __dadd_rn(s, __dmul_rn((double)dyr[j], (double)yr[j]));
    float fs = (float)block_sum(s, shd);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      dxr[j] = __fadd_rn(dxr[j], __fmul_rn(yr[j], __fsub_rn(dyr[j], fs)));
  }
}

// dx += dy - exp(y) * sum(dy)
static __global__ void log_softmax_backward_kernel(int64_t rows, int64_t cols, const float *y,
                                                   const float *dy, float *dx) {
  __shared__ double shd[REDUCE_THREADS];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *yr = y + r * cols, *dyr = dy + r * cols;
    float *dxr = dx + r * cols;
    double s = 0.0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += (double)dyr[j];
    float fs = (float)block_sum(s, shd);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
      dxr[j] = __fadd_rn(dxr[j], __fsub_rn(dyr[j], __fmul_rn(expf(yr[j]), fs)));
  }
}

static unsigned row_blocks(int64_t rows) { return blocks_for(rows, 1); }

extern "C" void softmax_forward_cuda(int64_t rows, int64_t cols, const float *x, float *y,
                                     cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  softmax_forward_kernel<<<row_blocks(rows), REDUCE_THREADS, 0, stream>>>(rows, cols, x, y);
  cudaLaunchCheck();
}

extern "C" void softmax_backward_cuda(int64_t rows, int64_t cols, const float *y, const float *dy,
                                      float *dx, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || !dx) return;
  softmax_backward_kernel<<<row_blocks(rows), REDUCE_THREADS, 0, stream>>>(rows, cols, y, dy, dx);
  cudaLaunchCheck();
}

extern "C" void log_softmax_forward_cuda(int64_t rows, int64_t cols, const float *x, float *y,
                                         cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  log_softmax_forward_kernel<<<row_blocks(rows), REDUCE_THREADS, 0, stream>>>(rows, cols, x, y);
  cudaLaunchCheck();
}

extern "C" void log_softmax_backward_cuda(int64_t rows, int64_t cols, const float *y,
                                          const float *dy, float *dx, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0 || !dx) return;
  log_softmax_backward_kernel<<<row_blocks(rows), REDUCE_THREADS, 0, stream>>>(rows, cols, y, dy,
                                                                              dx);
  cudaLaunchCheck();
}
