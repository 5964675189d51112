// CUDA twins of conv2d_forward/backward (ops/conv.h): im2col + cuBLAS GEMM, not cuDNN, so that the
// math is the CPU's: same zero-padding rule, groups, stride, dilation, PyTorch weight layout
// (c_out, c_in/g, kh, kw). The GEMMs go through masa_gemm_ex (kernels/precision.cu): FP32
// pedantic math (no TF32) by default; bf16 operands with FP32 accumulation in bf16 precision.
// - Per image, per group, tiles of whole output rows (column buffer <= CONV_COL_FLOATS floats):
//   col (K = cin_g*kh*kw, np) by an im2col kernel, then y_g (cout_g, np) = W_g (cout_g, K) col.
//   1x1 / stride 1 / no padding / one group uses the input planes as the column matrix directly.
// - Backward: dbias by a fixed-order block reduction (double); dW_g += dy_g col^T (cuBLAS,
//   accumulating with beta = 1); dcol = W_g^T dy_g, then a GATHER col2im: one thread per input
//   element sums, in fixed tap order, the columns that read it. No atomics: dx, dw, dbias are
//   deterministic run to run (cuBLAS SGEMM is deterministic for a fixed stream and handle).
#include <limits.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define CONV_COL_FLOATS ((int64_t)16 << 20)  // 64 MB column buffer per call at most

typedef struct {
  int64_t ho, wo, P, cin_g, cout_g, K;
  int64_t rows_per_tile;
  int direct;
} conv_geom;

static conv_geom conv_geom_of(const conv2d_desc *d) {
  masa_assert(d->n >= 0 && d->c_in > 0 && d->h > 0 && d->w > 0 && d->c_out > 0);
  masa_assert(d->kh > 0 && d->kw > 0 && d->stride_h > 0 && d->stride_w > 0);
  masa_assert(d->pad_h >= 0 && d->pad_w >= 0 && d->dil_h > 0 && d->dil_w > 0);
  masa_assert(d->groups > 0 && d->c_in % d->groups == 0 && d->c_out % d->groups == 0);
  conv_geom g;
  g.ho = conv2d_out_h(d);
  g.wo = conv2d_out_w(d);
  masa_assert(g.ho > 0 && g.wo > 0);
  g.P = g.ho * g.wo;
  g.cin_g = d->c_in / d->groups;
  g.cout_g = d->c_out / d->groups;
  g.K = g.cin_g * d->kh * d->kw;
  g.direct = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
             d->pad_w == 0 && d->groups == 1;
  int64_t rows = CONV_COL_FLOATS / (g.K * g.wo);
  if (rows < 1) rows = 1;
  g.rows_per_tile = rows < g.ho ? rows : g.ho;
  masa_assert(g.K <= INT_MAX && g.P <= INT_MAX && d->c_out <= INT_MAX && d->h * d->w <= INT_MAX);
  return g;
}

// col (K, np) for output rows [row0, row0 + nrows) of one image-group xg (cin_g, h, w).
static __global__ void conv_im2col_kernel(conv2d_desc d, conv_geom g, const float *__restrict__ xg,
                                          int64_t row0, int64_t np, float *__restrict__ col) {
  const int64_t total = g.K * np, kk = d.kh * d.kw;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = idx % np, r = idx / np;
    const int64_t ci = r / kk, i = (r / d.kw) % d.kh, j = r % d.kw;
    const int64_t oh = row0 + p / g.wo, ow = p % g.wo;
    const int64_t ih = oh * d.stride_h - d.pad_h + i * d.dil_h;
    const int64_t iw = ow * d.stride_w - d.pad_w + j * d.dil_w;
    col[idx] = (ih >= 0 && ih < d.h && iw >= 0 && iw < d.w) ? xg[(ci * d.h + ih) * d.w + iw] : 0.0f;
  }
}

// dxg (cin_g, h, w) += sum of the dcol (K, np) entries of output rows [row0, row0 + nrows) that
// read each input element; taps in order (deterministic).
static __global__ void conv_col2im_kernel(conv2d_desc d, conv_geom g, const float *__restrict__ dcol,
                                          int64_t row0, int64_t nrows, float *__restrict__ dxg) {
  const int64_t total = g.cin_g * d.h * d.w, np = nrows * g.wo;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t iw = idx % d.w, ih = (idx / d.w) % d.h, ci = idx / (d.w * d.h);
    float s = 0.0f;
    for (int64_t i = 0; i < d.kh; i++) {
      const int64_t nh = ih + d.pad_h - i * d.dil_h;  // = oh * stride_h
      if (nh < 0 || nh % d.stride_h) continue;
      const int64_t oh = nh / d.stride_h;
      if (oh < row0 || oh >= row0 + nrows) continue;
      for (int64_t j = 0; j < d.kw; j++) {
        const int64_t nw = iw + d.pad_w - j * d.dil_w;
        if (nw < 0 || nw % d.stride_w) continue;
        const int64_t ow = nw / d.stride_w;
        if (ow >= g.wo) continue;
        s += dcol[((ci * d.kh + i) * d.kw + j) * np + (oh - row0) * g.wo + ow];
      }
    }
    dxg[idx] += s;
  }
}

// y (n, c, P) += bias[c].
static __global__ void conv_bias_kernel(int64_t n, int64_t c, int64_t P,
                                        const float *__restrict__ bias, float *__restrict__ y) {
  const int64_t total = n * c * P;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x)
    y[idx] += bias[(idx / P) % c];
}

extern "C" void conv2d_forward_cuda(const conv2d_desc *d, const float *x, const float *w,
                                    const float *bias, float *y, cudaStream_t stream) {
  // cuDNN where it takes the shape (fp32 mode; bf16 mode keeps the bf16 GEMM path below).
  if (cuda_conv_backend() != 0 && !cuda_precision_bf16() &&
      conv2d_forward_cudnn(d, x, w, bias, y, stream))
    return;
  const conv_geom g = conv_geom_of(d);
  if (d->n == 0) return;
  const int64_t HW = d->h * d->w;
  float *col = NULL;
  if (!g.direct)
    cudaCheck(cudaMallocAsync((void **)&col, (size_t)(g.K * g.rows_per_tile * g.wo) * sizeof(float),
                              stream));
  for (int64_t b = 0; b < d->n; b++)
    for (int64_t gr = 0; gr < d->groups; gr++) {
      const float *xg = x + (b * d->c_in + gr * g.cin_g) * HW;
      const float *wg = w + gr * g.cout_g * g.K;
      for (int64_t row0 = 0; row0 < g.ho; row0 += g.rows_per_tile) {
        const int64_t nrows = g.ho - row0 < g.rows_per_tile ? g.ho - row0 : g.rows_per_tile;
        const int64_t np = nrows * g.wo;
        const float *bmat;
        int64_t ldb;
        if (g.direct) {
          bmat = xg + row0 * g.wo, ldb = HW;  // ho == h, wo == w
        } else {
          conv_im2col_kernel<<<blocks_for(g.K * np, 256), 256, 0, stream>>>(*d, g, xg, row0, np, col);
          cudaLaunchCheck();
          bmat = col, ldb = np;
        }
        // Row-major y (cout_g, np) = W_g (cout_g, K) col (K, np); column-major:
        // y^T (np, cout_g) = col^T (np, K) W_g^T (K, cout_g).
        float *yt = y + (b * d->c_out + gr * g.cout_g) * g.P + row0 * g.wo;
        masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_N, (int)np, (int)g.cout_g, (int)g.K, 1.0f, bmat,
                     (int)ldb, wg, (int)g.K, 0.0f, yt, (int)g.P);
      }
    }
  if (bias) {
    conv_bias_kernel<<<blocks_for(d->n * d->c_out * g.P, 256), 256, 0, stream>>>(d->n, d->c_out, g.P,
                                                                                bias, y);
    cudaLaunchCheck();
  }
  if (col) cudaCheck(cudaFreeAsync(col, stream));
}

extern "C" void conv2d_backward_cuda(const conv2d_desc *d, const float *x, const float *w,
                                     const float *dy, float *dx, float *dw, float *dbias,
                                     cudaStream_t stream) {
  if (cuda_conv_backend() != 0 && !cuda_precision_bf16() &&
      conv2d_backward_cudnn(d, x, w, dy, dx, dw, dbias, stream))
    return;
  const conv_geom g = conv_geom_of(d);
  if (d->n == 0) return;
  if (dbias) {
    channel_sum_accumulate_cuda(d->n, d->c_out, g.P, dy, dbias, stream);
  }
  if (!dx && !dw) return;
  const int64_t HW = d->h * d->w;
  float *col = NULL;
  if (!g.direct)
    cudaCheck(cudaMallocAsync((void **)&col, (size_t)(g.K * g.rows_per_tile * g.wo) * sizeof(float),
                              stream));
  for (int64_t b = 0; b < d->n; b++)
    for (int64_t gr = 0; gr < d->groups; gr++) {
      const float *xg = x + (b * d->c_in + gr * g.cin_g) * HW;
      const float *wg = w + gr * g.cout_g * g.K;
      for (int64_t row0 = 0; row0 < g.ho; row0 += g.rows_per_tile) {
        const int64_t nrows = g.ho - row0 < g.rows_per_tile ? g.ho - row0 : g.rows_per_tile;
        const int64_t np = nrows * g.wo;
        const float *dyt = dy + (b * d->c_out + gr * g.cout_g) * g.P + row0 * g.wo;  // ld P
        if (dw) {
          const float *bmat;
          int64_t ldb;
          if (g.direct) {
            bmat = xg + row0 * g.wo, ldb = HW;
          } else {
            conv_im2col_kernel<<<blocks_for(g.K * np, 256), 256, 0, stream>>>(*d, g, xg, row0, np,
                                                                            col);
            cudaLaunchCheck();
            bmat = col, ldb = np;
          }
          // dW_g (cout_g, K) += dy (cout_g, np) col^T; column-major: dW_g^T (K, cout_g) +=
          // op_T(col^T view (np, K)) dy^T view (np, cout_g).
          masa_gemm_ex(stream, CUBLAS_OP_T, CUBLAS_OP_N, (int)g.K, (int)g.cout_g, (int)np, 1.0f,
                       bmat, (int)ldb, dyt, (int)g.P, 1.0f, dw + gr * g.cout_g * g.K, (int)g.K);
        }
        if (dx) {
          // dcol (K, np) = W_g^T (K, cout_g) dy (cout_g, np); column-major: dcol^T (np, K) =
          // dy^T view (np, cout_g) op_T(W_g^T view (K, cout_g)).
          if (g.direct) {  // dcol is dx itself: accumulate in place (beta = 1), ld HW
            masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_T, (int)np, (int)g.K, (int)g.cout_g, 1.0f,
                         dyt, (int)g.P, wg, (int)g.K, 1.0f, dx + b * d->c_in * HW + row0 * g.wo,
                         (int)HW);
          } else {
            masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_T, (int)np, (int)g.K, (int)g.cout_g, 1.0f,
                         dyt, (int)g.P, wg, (int)g.K, 0.0f, col, (int)np);
            conv_col2im_kernel<<<blocks_for(g.cin_g * HW, 256), 256, 0, stream>>>(
                *d, g, col, row0, nrows, dx + (b * d->c_in + gr * g.cin_g) * HW);
            cudaLaunchCheck();
          }
        }
      }
    }
  if (col) cudaCheck(cudaFreeAsync(col, stream));
}
