// CUDA twins of conv_transpose2x2_forward/backward (ops/conv.h): ConvTranspose2d kernel 2,
// stride 2, no padding, weight (c_in, c_out, 2, 2) (PyTorch layout), so every output pixel
// (2i + a, 2j + e) is fed by exactly one input pixel (i, j) through tap (a, e).
// As the CPU twin: per image, tiles of whole input rows, cols (M = 4 c_out, np) = wt^T x_tile by
// cuBLAS SGEMM (FP32 pedantic, no TF32), then a scatter kernel adds the bias; the backward
// gathers dy into dcols (M, np) and runs dx_tile += wt dcols and dwt += x_tile dcols^T (beta 1,
// accumulating like the CPU). dbias by a fixed-order double block reduction per channel. No
// atomics anywhere: deterministic run to run. The GEMMs sum in cuBLAS's order, not OpenBLAS's,
// so y / dx / dwt match the CPU to float rounding, not bitwise.
#include <limits.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define CONVT_COL_FLOATS ((int64_t)16 << 20)  // column buffer per call at most (64 MB)

static int64_t convt_rows_per_tile_cuda(int64_t c_out, int64_t h, int64_t w) {
  int64_t rows = CONVT_COL_FLOATS / (4 * c_out * w);
  if (rows < 1) rows = 1;
  return rows < h ? rows : h;
}

// y rows [2 r0, 2 (r0 + nr)) of image yb (c_out, 2h, 2w) from cols (M, np), np = nr * w.
static __global__ void convt_scatter_kernel(int64_t c_out, int64_t w, int64_t r0, int64_t nr,
                                            const float *__restrict__ cols,
                                            const float *__restrict__ bias, float *__restrict__ yb,
                                            int64_t h) {
  const int64_t W2 = 2 * w, rows2 = 2 * nr, np = nr * w;
  const int64_t total = c_out * rows2 * W2;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t ox = idx % W2, oyl = (idx / W2) % rows2, co = idx / (W2 * rows2);
    const int64_t i = oyl >> 1, a = oyl & 1, j = ox >> 1, e = ox & 1;
    const float v = cols[(co * 4 + a * 2 + e) * np + i * w + j];
    yb[(co * 2 * h + 2 * r0 + oyl) * W2 + ox] = __fadd_rn(v, bias ? bias[co] : 0.0f);
  }
}

// dcols (M, np) from dy rows [2 r0, 2 (r0 + nr)) of image dyb (c_out, 2h, 2w).
static __global__ void convt_gather_kernel(int64_t c_out, int64_t w, int64_t r0, int64_t nr,
                                           const float *__restrict__ dyb,
                                           float *__restrict__ dcols, int64_t h) {
  const int64_t W2 = 2 * w, np = nr * w, total = 4 * c_out * np;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = idx % np, r = idx / np;
    const int64_t co = r >> 2, a = (r >> 1) & 1, e = r & 1, i = p / w, j = p % w;
    dcols[idx] = dyb[(co * 2 * h + 2 * (r0 + i) + a) * W2 + 2 * j + e];
  }
}

extern "C" void conv_transpose2x2_forward_cuda(int64_t n, int64_t c_in, int64_t h, int64_t w,
                                               int64_t c_out, const float *x, const float *wt,
                                               const float *bias, float *y,
                                               cudaStream_t stream) {
  masa_assert(n >= 0 && c_in > 0 && h > 0 && w > 0 && c_out > 0);
  if (n == 0) return;
  const int64_t HW = h * w, M = 4 * c_out, HW4 = 4 * HW;
  masa_assert(M <= INT_MAX && HW <= INT_MAX && c_in <= INT_MAX);
  const int64_t rows = convt_rows_per_tile_cuda(c_out, h, w);
  float *cols = NULL;
  cudaCheck(cudaMallocAsync((void **)&cols, (size_t)(M * rows * w) * sizeof(float), stream));
  for (int64_t b = 0; b < n; b++)
    for (int64_t r0 = 0; r0 < h; r0 += rows) {
      const int64_t nr = h - r0 < rows ? h - r0 : rows, np = nr * w;
      // cols (M, np) = wt^T (M, c_in) x_tile (c_in, np), x_tile rows of pitch HW.
      gemm_cuda(1, 0, M, np, c_in, 1.0f, wt, M, x + b * c_in * HW + r0 * w, HW, 0.0f, cols, np,
                stream);
      const int64_t total = c_out * 4 * np;
      convt_scatter_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(
          c_out, w, r0, nr, cols, bias, y + b * c_out * HW4, h);
      cudaLaunchCheck();
    }
  cudaCheck(cudaFreeAsync(cols, stream));
}

extern "C" void conv_transpose2x2_backward_cuda(int64_t n, int64_t c_in, int64_t h, int64_t w,
                                                int64_t c_out, const float *x, const float *wt,
                                                const float *dy, float *dx, float *dwt,
                                                float *dbias, cudaStream_t stream) {
  masa_assert(n >= 0 && c_in > 0 && h > 0 && w > 0 && c_out > 0);
  if (n == 0) return;
  const int64_t HW = h * w, M = 4 * c_out, HW4 = 4 * HW;
  masa_assert(M <= INT_MAX && HW <= INT_MAX && c_in <= INT_MAX && c_out <= INT_MAX);
  if (dbias) {
    channel_sum_accumulate_cuda(n, c_out, HW4, dy, dbias, stream);
  }
  if (!dx && !dwt) return;
  const int64_t rows = convt_rows_per_tile_cuda(c_out, h, w);
  float *dcols = NULL;
  cudaCheck(cudaMallocAsync((void **)&dcols, (size_t)(M * rows * w) * sizeof(float), stream));
  for (int64_t b = 0; b < n; b++)
    for (int64_t r0 = 0; r0 < h; r0 += rows) {
      const int64_t nr = h - r0 < rows ? h - r0 : rows, np = nr * w;
      convt_gather_kernel<<<blocks_for(M * np, 256), 256, 0, stream>>>(
          c_out, w, r0, nr, dy + b * c_out * HW4, dcols, h);
      cudaLaunchCheck();
      // dx_tile (c_in, np) += wt (c_in, M) dcols (M, np)
      if (dx)
        gemm_cuda(0, 0, c_in, np, M, 1.0f, wt, M, dcols, np, 1.0f, dx + b * c_in * HW + r0 * w,
                  HW, stream);
      // dwt (c_in, M) += x_tile (c_in, np) dcols^T (np, M)
      if (dwt)
        gemm_cuda(0, 1, c_in, M, np, 1.0f, x + b * c_in * HW + r0 * w, HW, dcols, np, 1.0f, dwt,
                  M, stream);
    }
  cudaCheck(cudaFreeAsync(dcols, stream));
}
