// CUDA twins of global average pooling (ops/activation.h): x (n, c, hw) -> y (n, c); backward
// accumulates dy / hw into every pixel of dx (NULL skipped).
// Forward: one block per (image, channel) plane (grid-stride over planes), the plane sum in
// double through block_sum's fixed tree: deterministic, and within double rounding of the CPU's
// sequential double sum, so y matches to the last float bit in all but rare rounding ties.
// Backward: one thread per dx element, same float ops as the CPU: bit-identical.
#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

static __global__ void global_avg_pool_forward_kernel(int64_t planes, int64_t hw, const float *x,
                                                      float *y) {
  __shared__ double sh[REDUCE_THREADS];
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const float *xp = x + p * hw;
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) s += (double)xp[i];
    s = block_sum(s, sh);
    if (threadIdx.x == 0) y[p] = (float)(s / (double)hw);
  }
}

static __global__ void global_avg_pool_backward_kernel(int64_t total, int64_t hw, const float *dy,
                                                       float *dx) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
       i += (int64_t)gridDim.x * blockDim.x) {
    float g = (float)((double)dy[i / hw] / (double)hw);
    dx[i] = __fadd_rn(dx[i], g);
  }
}

extern "C" void global_avg_pool_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                             float *y, cudaStream_t stream) {
  if (n * c <= 0 || hw <= 0) return;
  global_avg_pool_forward_kernel<<<blocks_for(n * c, 1), REDUCE_THREADS, 0, stream>>>(n * c, hw,
                                                                                     x, y);
  cudaLaunchCheck();
}

extern "C" void global_avg_pool_backward_cuda(int64_t n, int64_t c, int64_t hw, const float *dy,
                                              float *dx, cudaStream_t stream) {
  if (n * c * hw <= 0 || !dx) return;
  global_avg_pool_backward_kernel<<<blocks_for(n * c * hw, 256), 256, 0, stream>>>(n * c * hw, hw,
                                                                                  dy, dx);
  cudaLaunchCheck();
}
