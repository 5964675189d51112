// CUDA twins of ops/activation.h. Grid-stride loops with 64-bit indices.
#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

static __global__ void relu_forward_kernel(int64_t n, const float *__restrict__ x, float *__restrict__ y) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static __global__ void relu_backward_kernel(int64_t n, const float *__restrict__ y,
                                            const float *__restrict__ dy, float *__restrict__ dx) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    if (y[i] > 0.0f) dx[i] += dy[i];
}

extern "C" void relu_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream) {
  if (n == 0) return;
  relu_forward_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(n, x, y);
  cudaLaunchCheck();
}

extern "C" void relu_backward_cuda(int64_t n, const float *y, const float *dy, float *dx,
                                   cudaStream_t stream) {
  if (n == 0 || !dx) return;
  relu_backward_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(n, y, dy, dx);
  cudaLaunchCheck();
}
