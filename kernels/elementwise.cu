// CUDA twins of ops/elementwise.h (fill, scale, axpy, add, relu_mask, row_dot, row_scale_add) and
// of batch_norm_fold (ops/norm.h). Grid-stride loops over 64-bit indices; the _rn intrinsics keep
// nvcc from contracting a*x+y into an FMA so results are bit-identical to the CPU twins. row_dot
// sums in double with the fixed block tree of block_reduce.cuh (deterministic; its order differs
// from the CPU's sequential sum, so it matches to double rounding, not bitwise).
#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define EW_THREADS 256
#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

static __global__ void ew_fill_kernel(int64_t n, float v, float *y) {
  GRID_STRIDE(i, n) y[i] = v;
}
static __global__ void ew_scale_kernel(int64_t n, float a, float *y) {
  GRID_STRIDE(i, n) y[i] = __fmul_rn(y[i], a);
}
static __global__ void ew_div_kernel(int64_t n, float a, float *y) {
  GRID_STRIDE(i, n) y[i] = __fdiv_rn(y[i], a);
}
static __global__ void ew_axpy_kernel(int64_t n, float a, const float *x, float *y) {
  if (a == 1.0f) {
    GRID_STRIDE(i, n) y[i] = __fadd_rn(y[i], x[i]);
  } else {
    GRID_STRIDE(i, n) y[i] = __fadd_rn(y[i], __fmul_rn(a, x[i]));
  }
}
static __global__ void ew_add_kernel(int64_t n, const float *a, const float *b, float *y) {
  GRID_STRIDE(i, n) y[i] = __fadd_rn(a[i], b[i]);
}
static __global__ void ew_relu_mask_kernel(int64_t n, const float *y, float *g) {
  GRID_STRIDE(i, n) if (!(y[i] > 0.0f)) g[i] = 0.0f;
}
static __global__ void ew_row_dot_kernel(int64_t cols, const float *a, const float *b, float *y) {
  __shared__ double sh[REDUCE_THREADS];
  int64_t r = blockIdx.x;
  const float *ar = a + r * cols, *br = b + r * cols;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
    s = __dadd_rn(s, __dmul_rn((double)ar[i], (double)br[i]));
  s = block_sum(s, sh);
  if (threadIdx.x == 0) y[r] = (float)s;
}
static __global__ void ew_row_scale_add_kernel(int64_t rows, int64_t cols, const float *s,
                                            const float *x, float *y) {
  GRID_STRIDE(i, rows * cols) y[i] = __fadd_rn(y[i], __fmul_rn(s[i / cols], x[i]));
}
static __global__ void ew_gather_kernel(int64_t n, const float *src, const int64_t *idx,
                                        float *dst) {
  GRID_STRIDE(k, n) dst[k] = src[idx[k]];
}
static __global__ void ew_scatter_add_kernel(int64_t n, const float *src, const int64_t *idx,
                                             float *dst) {
  GRID_STRIDE(k, n) dst[idx[k]] = __fadd_rn(dst[idx[k]], src[k]);  // distinct indices: no race
}

// db[o] += sum over (b, q) of g[b, o, q] (bias gradients): one block per channel, double, fixed
// tree.
static __global__ void channel_sum_accumulate_kernel(int64_t n, int64_t c, int64_t p,
                                                     const float *g, float *db) {
  __shared__ double sh[REDUCE_THREADS];
  const int64_t o = blockIdx.x;
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n * p; i += blockDim.x)
    s = __dadd_rn(s, (double)g[((i / p) * c + o) * p + i % p]);
  s = block_sum(s, sh);
  if (threadIdx.x == 0) db[o] = __fadd_rn(db[o], (float)s);
}

static __global__ void batch_norm_fold_kernel(int64_t c, float eps, const float *gamma,
                                              const float *beta, const float *rm,
                                              const float *rv, float *scale, float *shift) {
  GRID_STRIDE(ch, c) {
    double s = __ddiv_rn(gamma ? (double)gamma[ch] : 1.0,
                         sqrt(__dadd_rn((double)rv[ch], (double)eps)));
    scale[ch] = (float)s;
    shift[ch] = (float)__dsub_rn(beta ? (double)beta[ch] : 0.0, __dmul_rn((double)rm[ch], s));
  }
}

#define LAUNCH(n) blocks_for((n), EW_THREADS), EW_THREADS, 0, stream

extern "C" void ew_fill_cuda(int64_t n, float v, float *y, cudaStream_t stream) {
  if (n <= 0) return;
  ew_fill_kernel<<<LAUNCH(n)>>>(n, v, y);
  cudaLaunchCheck();
}
extern "C" void ew_scale_cuda(int64_t n, float a, float *y, cudaStream_t stream) {
  if (n <= 0) return;
  ew_scale_kernel<<<LAUNCH(n)>>>(n, a, y);
  cudaLaunchCheck();
}
extern "C" void ew_div_cuda(int64_t n, float a, float *y, cudaStream_t stream) {
  if (n <= 0) return;
  ew_div_kernel<<<LAUNCH(n)>>>(n, a, y);
  cudaLaunchCheck();
}
extern "C" void ew_axpy_cuda(int64_t n, float a, const float *x, float *y, cudaStream_t stream) {
  if (n <= 0) return;
  ew_axpy_kernel<<<LAUNCH(n)>>>(n, a, x, y);
  cudaLaunchCheck();
}
extern "C" void ew_add_cuda(int64_t n, const float *a, const float *b, float *y,
                         cudaStream_t stream) {
  if (n <= 0) return;
  ew_add_kernel<<<LAUNCH(n)>>>(n, a, b, y);
  cudaLaunchCheck();
}
extern "C" void ew_relu_mask_cuda(int64_t n, const float *y, float *g, cudaStream_t stream) {
  if (n <= 0) return;
  ew_relu_mask_kernel<<<LAUNCH(n)>>>(n, y, g);
  cudaLaunchCheck();
}
extern "C" void ew_row_dot_cuda(int64_t rows, int64_t cols, const float *a, const float *b, float *y,
                             cudaStream_t stream) {
  if (rows <= 0) return;
  masa_assert(rows <= 0x7fffffff);
  ew_row_dot_kernel<<<(unsigned)rows, REDUCE_THREADS, 0, stream>>>(cols, a, b, y);
  cudaLaunchCheck();
}
extern "C" void ew_row_scale_add_cuda(int64_t rows, int64_t cols, const float *s, const float *x,
                                   float *y, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  ew_row_scale_add_kernel<<<LAUNCH(rows * cols)>>>(rows, cols, s, x, y);
  cudaLaunchCheck();
}
extern "C" void ew_gather_cuda(int64_t n, const float *src, const int64_t *idx, float *dst,
                               cudaStream_t stream) {
  if (n <= 0) return;
  ew_gather_kernel<<<LAUNCH(n)>>>(n, src, idx, dst);
  cudaLaunchCheck();
}
extern "C" void ew_scatter_add_cuda(int64_t n, const float *src, const int64_t *idx, float *dst,
                                    cudaStream_t stream) {
  if (n <= 0) return;
  ew_scatter_add_kernel<<<LAUNCH(n)>>>(n, src, idx, dst);
  cudaLaunchCheck();
}

extern "C" void channel_sum_accumulate_cuda(int64_t n, int64_t c, int64_t p, const float *g,
                                            float *db, cudaStream_t stream) {
  if (c <= 0) return;
  masa_assert(c <= 0x7fffffff);
  channel_sum_accumulate_kernel<<<(unsigned)c, REDUCE_THREADS, 0, stream>>>(n, c, p, g, db);
  cudaLaunchCheck();
}

extern "C" void batch_norm_fold_cuda(int64_t c, float eps, const float *gamma, const float *beta,
                                     const float *running_mean, const float *running_var,
                                     float *scale, float *shift, cudaStream_t stream) {
  if (c <= 0) return;
  batch_norm_fold_kernel<<<LAUNCH(c)>>>(c, eps, gamma, beta, running_mean, running_var, scale,
                                        shift);
  cudaLaunchCheck();
}
