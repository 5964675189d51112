// CUDA twins of the pointwise activations in ops/activation.h: GELU (exact erf form), sigmoid and
// hard sigmoid, forward and backward (backward accumulates into dx; NULL dx is skipped).
// Grid-stride loops, 64-bit indices, one thread per element: no reductions, so deterministic.
// Arithmetic mirrors the CPU expression by expression; the _rn intrinsics stop nvcc from fusing
// a*b+c into an FMA, so ops built only from + - * / (hard sigmoid, sigmoid backward) are
// bit-identical to the CPU. erfcf/expf are CUDA's (a few ulp from glibc's): GELU and sigmoid
// forward differ from the CPU by a few ulp. No __restrict__: in-place calls (y == x, dx == dy)
// are allowed, each thread reading element i before writing it.
#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define POINTWISE_THREADS 256

#define GRID_STRIDE(i, n)                                                          \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);        \
       i += (int64_t)gridDim.x * blockDim.x)

static __global__ void gelu_forward_kernel(int64_t n, const float *x,
                                           float *y) {
  const float inv_sqrt2 = 0.70710678118654752440f;
  GRID_STRIDE(i, n) {
    float v = x[i];
    y[i] = __fmul_rn(__fmul_rn(0.5f, v), erfcf(__fmul_rn(-v, inv_sqrt2)));
  }
}

static __global__ void gelu_backward_kernel(int64_t n, const float *x,
                                            const float *dy, float *dx) {
  const float inv_sqrt2 = 0.70710678118654752440f, inv_sqrt2pi = 0.39894228040143267794f;
  GRID_STRIDE(i, n) {
    float v = x[i];
    float cdf = __fmul_rn(0.5f, erfcf(__fmul_rn(-v, inv_sqrt2)));
    float pdf = __fmul_rn(inv_sqrt2pi, expf(__fmul_rn(__fmul_rn(-0.5f, v), v)));
    dx[i] = __fadd_rn(dx[i], __fmul_rn(dy[i], __fadd_rn(cdf, __fmul_rn(v, pdf))));
  }
}

static __global__ void sigmoid_forward_kernel(int64_t n, const float *x,
                                              float *y) {
  GRID_STRIDE(i, n) {
    float v = x[i];
    // exp of a non-positive number only, as the CPU: no overflow for large |x|.
    if (v >= 0.0f) {
      y[i] = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-v)));
    } else {
      float e = expf(v);
      y[i] = __fdiv_rn(e, __fadd_rn(1.0f, e));
    }
  }
}

static __global__ void sigmoid_backward_kernel(int64_t n, const float *y,
                                               const float *dy,
                                               float *dx) {
  GRID_STRIDE(i, n) {
    float s = y[i];
    dx[i] = __fadd_rn(dx[i], __fmul_rn(__fmul_rn(dy[i], s), __fsub_rn(1.0f, s)));
  }
}

static __global__ void hard_sigmoid_forward_kernel(int64_t n, const float *x,
                                                   float *y) {
  GRID_STRIDE(i, n) {
    float t = __fdiv_rn(__fadd_rn(x[i], 3.0f), 6.0f);
    y[i] = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
  }
}

// Gradient 1/6 strictly inside (-3, 3), 0 at and beyond the kinks (the CPU's rule).
static __global__ void hard_sigmoid_backward_kernel(int64_t n, const float *x,
                                                    const float *dy,
                                                    float *dx) {
  GRID_STRIDE(i, n) {
    float v = x[i];
    if (v > -3.0f && v < 3.0f) dx[i] = __fadd_rn(dx[i], __fdiv_rn(dy[i], 6.0f));
  }
}

extern "C" void gelu_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream) {
  if (n <= 0) return;
  gelu_forward_kernel<<<blocks_for(n, POINTWISE_THREADS), POINTWISE_THREADS, 0, stream>>>(n, x, y);
  cudaLaunchCheck();
}

extern "C" void gelu_backward_cuda(int64_t n, const float *x, const float *dy, float *dx,
                                   cudaStream_t stream) {
  if (n <= 0 || !dx) return;
  gelu_backward_kernel<<<blocks_for(n, POINTWISE_THREADS), POINTWISE_THREADS, 0, stream>>>(n, x, dy,
                                                                                          dx);
  cudaLaunchCheck();
}

extern "C" void sigmoid_forward_cuda(int64_t n, const float *x, float *y, cudaStream_t stream) {
  if (n <= 0) return;
  sigmoid_forward_kernel<<<blocks_for(n, POINTWISE_THREADS), POINTWISE_THREADS, 0, stream>>>(n, x,
                                                                                            y);
  cudaLaunchCheck();
}

extern "C" void sigmoid_backward_cuda(int64_t n, const float *y, const float *dy, float *dx,
                                      cudaStream_t stream) {
  if (n <= 0 || !dx) return;
  sigmoid_backward_kernel<<<blocks_for(n, POINTWISE_THREADS), POINTWISE_THREADS, 0, stream>>>(
      n, y, dy, dx);
  cudaLaunchCheck();
}

extern "C" void hard_sigmoid_forward_cuda(int64_t n, const float *x, float *y,
                                          cudaStream_t stream) {
  if (n <= 0) return;
  hard_sigmoid_forward_kernel<<<blocks_for(n, POINTWISE_THREADS), POINTWISE_THREADS, 0, stream>>>(
      n, x, y);
  cudaLaunchCheck();
}

extern "C" void hard_sigmoid_backward_cuda(int64_t n, const float *x, const float *dy, float *dx,
                                           cudaStream_t stream) {
  if (n <= 0 || !dx) return;
  hard_sigmoid_backward_kernel<<<blocks_for(n, POINTWISE_THREADS), POINTWISE_THREADS, 0,
                                 stream>>>(n, x, dy, dx);
  cudaLaunchCheck();
}
