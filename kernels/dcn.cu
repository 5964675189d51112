// CUDA twins of ops/dcn.h (modulated deformable conv v2, mmcv ModulatedDeformConv2d). The CPU op
// is the reference; conventions as its header: NCHW, tap (i, j) of output (oh, ow) samples
// y = (float)(oh*stride - pad + i*dil) + dy, x likewise; offsets (dy, dx) pairs y first, taps
// row-major; offsets and masks read (and their gradients written) through dcn_strides, so the
// mmcv offset reinterpretation and channel slices of a conv output need no copy.
// - mmcv's boundary rule in forward and backward: a sample is 0 (and gets no gradient for x,
//   offset or mask) unless -1 < y < h and -1 < x < w; inside, corners outside the image read 0.
//   NaN coordinates fail the test.
// - Forward: per image, tiles of output positions: a modulated im2col kernel writes
//   col (c_in*kh*kw, np) = mask * bilinear, then y_tile (c_out, np) = W (c_out, K) col (cuBLAS
//   through masa_gemm_ex, kernels/precision.cu: FP32 pedantic math, no TF32, by default; bf16
//   operands with FP32 accumulation in bf16 precision). Tiles keep col under DCN_COL_FLOATS.
// - Backward: dbias by a fixed-order block reduction; per tile dweight += dy col^T (cuBLAS, col
//   recomputed), dcol = W^T dy (cuBLAS), then one thread per (tap, position) loops over input
//   channels in order to form the offset / mask gradients (no atomics, deterministic) and, in the
//   same pass, scatters dx with atomicAdd (NOT deterministic: float sums in arrival order; the CPU
//   is). Like the CPU, the strided offset/mask views must be one-to-one (distinct (b, ch, oh, ow)
//   at distinct addresses), which every layout in dcn.h is.
#include <limits.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define DCN_COL_FLOATS ((int64_t)16 << 20)  // 64 MB column buffer per call at most

// Sample of tap t at output position q (= oh*wo + ow) of image b: returns false when the sample is
// out of range (value and all gradients 0); else corner (y0, x0), fractions, and the mask.
struct dcn_sample {
  int64_t y0, x0;
  float ly, lx, m;
  int64_t off_y;  // element index of the y offset (x is off_y + off.channel)
  int64_t msk;    // element index of the mask
};

static __device__ bool dcn_locate(const dcn_desc &d, const float *__restrict__ offset,
                                  const float *__restrict__ mask, int64_t b, int64_t t, int64_t q,
                                  dcn_sample *s) {
  const int64_t i = t / d.kw, j = t % d.kw, oh = q / d.wo, ow = q % d.wo;
  s->off_y = b * d.off.batch + 2 * t * d.off.channel + oh * d.off.row + ow;
  s->msk = b * d.msk.batch + t * d.msk.channel + oh * d.msk.row + ow;
  s->m = mask[s->msk];
  const float y = (float)(oh * d.stride - d.pad + i * d.dil) + offset[s->off_y];
  const float x = (float)(ow * d.stride - d.pad + j * d.dil) + offset[s->off_y + d.off.channel];
  if (!(y > -1.0f && y < (float)d.h && x > -1.0f && x < (float)d.w)) return false;
  const float y0 = floorf(y), x0 = floorf(x);
  s->y0 = (int64_t)y0;
  s->x0 = (int64_t)x0;
  s->ly = y - y0;
  s->lx = x - x0;
  return true;
}

// The four corners of a located sample, 0 outside the plane xc (h, w).
static __device__ void dcn_corners(const dcn_desc &d, const float *__restrict__ xc,
                                   const dcn_sample &s, float v[4]) {
  const bool r0 = s.y0 >= 0, r1 = s.y0 + 1 < d.h, c0 = s.x0 >= 0, c1 = s.x0 + 1 < d.w;
  const float *p = xc + s.y0 * d.w + s.x0;
  v[0] = r0 && c0 ? p[0] : 0.0f;
  v[1] = r0 && c1 ? p[1] : 0.0f;
  v[2] = r1 && c0 ? p[d.w] : 0.0f;
  v[3] = r1 && c1 ? p[d.w + 1] : 0.0f;
}

// col (c_in*taps, np): column q - p0 of image b.
static __global__ void dcn_im2col_kernel(dcn_desc d, const float *__restrict__ x,
                                         const float *__restrict__ offset,
                                         const float *__restrict__ mask, int64_t b, int64_t p0,
                                         int64_t np, float *__restrict__ col) {
  const int64_t taps = d.kh * d.kw, total = d.c_in * taps * np;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = idx % np, t = (idx / np) % taps, c = idx / (np * taps);
    dcn_sample s;
    float out = 0.0f;
    if (dcn_locate(d, offset, mask, b, t, p0 + p, &s)) {
      float v[4];
      dcn_corners(d, x + (b * d.c_in + c) * d.h * d.w, s, v);
      const float a = s.ly, e = s.lx, ha = 1.0f - a, he = 1.0f - e;
      out = s.m * (ha * he * v[0] + ha * e * v[1] + a * he * v[2] + a * e * v[3]);
    }
    col[idx] = out;
  }
}

// One thread per (tap, position) of the tile; channels in order. dcol (c_in*taps, np).
static __global__ void dcn_col2im_kernel(dcn_desc d, const float *__restrict__ x,
                                         const float *__restrict__ offset,
                                         const float *__restrict__ mask, int64_t b, int64_t p0,
                                         int64_t np, const float *__restrict__ dcol,
                                         float *__restrict__ dx, float *__restrict__ doffset,
                                         float *__restrict__ dmask) {
  const int64_t taps = d.kh * d.kw, total = taps * np;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x) {
    const int64_t p = idx % np, t = idx / np;
    dcn_sample s;
    if (!dcn_locate(d, offset, mask, b, t, p0 + p, &s)) continue;  // all gradients 0
    const float a = s.ly, e = s.lx, ha = 1.0f - a, he = 1.0f - e;
    const bool r0 = s.y0 >= 0, r1 = s.y0 + 1 < d.h, c0 = s.x0 >= 0, c1 = s.x0 + 1 < d.w;
    float gy = 0.0f, gx = 0.0f, gm = 0.0f;
    for (int64_t c = 0; c < d.c_in; c++) {
      const float g0 = dcol[(c * taps + t) * np + p], gmv = g0 * s.m;
      const int64_t plane = (b * d.c_in + c) * d.h * d.w;
      if (doffset || dmask) {
        float v[4];
        dcn_corners(d, x + plane, s, v);
        gm += g0 * (ha * he * v[0] + ha * e * v[1] + a * he * v[2] + a * e * v[3]);
        gy += gmv * (he * (v[2] - v[0]) + e * (v[3] - v[1]));
        gx += gmv * (ha * (v[1] - v[0]) + a * (v[3] - v[2]));
      }
      if (dx) {
        float *q = dx + plane + s.y0 * d.w + s.x0;
        if (r0 && c0) atomicAdd(q, gmv * (ha * he));
        if (r0 && c1) atomicAdd(q + 1, gmv * (ha * e));
        if (r1 && c0) atomicAdd(q + d.w, gmv * (a * he));
        if (r1 && c1) atomicAdd(q + d.w + 1, gmv * (a * e));
      }
    }
    if (doffset) {
      doffset[s.off_y] += gy;
      doffset[s.off_y + d.off.channel] += gx;
    }
    if (dmask) dmask[s.msk] += gm;
  }
}

// y (c_out, hw) of one image += bias.
static __global__ void dcn_bias_kernel(int64_t n, int64_t c_out, int64_t hw,
                                       const float *__restrict__ bias, float *__restrict__ y) {
  const int64_t total = n * c_out * hw;
  for (int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
       idx += (int64_t)gridDim.x * blockDim.x)
    y[idx] += bias[(idx / hw) % c_out];
}

static void dcn_validate_cuda(const dcn_desc *d) {
  masa_assert(d->n >= 0 && d->c_in > 0 && d->h > 0 && d->w > 0 && d->c_out > 0);
  masa_assert(d->kh > 0 && d->kw > 0 && d->stride > 0 && d->pad >= 0 && d->dil > 0);
  masa_assert(d->ho == (d->h + 2 * d->pad - d->dil * (d->kh - 1) - 1) / d->stride + 1);
  masa_assert(d->wo == (d->w + 2 * d->pad - d->dil * (d->kw - 1) - 1) / d->stride + 1);
  masa_assert(d->ho > 0 && d->wo > 0);
  masa_assert(d->h < (1 << 24) && d->w < (1 << 24));
  masa_assert(d->c_in * d->kh * d->kw <= INT_MAX && d->c_out <= INT_MAX &&
              d->ho * d->wo <= INT_MAX);
}

// Positions per tile so that the column buffer stays under DCN_COL_FLOATS.
static int64_t dcn_tile_positions(const dcn_desc *d) {
  const int64_t K = d->c_in * d->kh * d->kw, hw = d->ho * d->wo;
  int64_t cap = DCN_COL_FLOATS / K;
  if (cap < 1) cap = 1;
  return cap < hw ? cap : hw;
}

extern "C" void dcn_forward_cuda(const dcn_desc *d, const float *x, const float *offset,
                                 const float *mask, const float *weight, const float *bias,
                                 float *y, cudaStream_t stream) {
  dcn_validate_cuda(d);
  if (d->n == 0) return;
  const int64_t K = d->c_in * d->kh * d->kw, hw = d->ho * d->wo, cap = dcn_tile_positions(d);
  float *col;
  cudaCheck(cudaMallocAsync((void **)&col, (size_t)(K * cap) * sizeof(float), stream));
  for (int64_t b = 0; b < d->n; b++) {
    for (int64_t p0 = 0; p0 < hw; p0 += cap) {
      const int64_t np = hw - p0 < cap ? hw - p0 : cap;
      dcn_im2col_kernel<<<blocks_for(K * np, 256), 256, 0, stream>>>(*d, x, offset, mask, b, p0, np,
                                                                    col);
      cudaLaunchCheck();
      // Row-major y_tile (c_out, np) = W (c_out, K) col (K, np); column-major that is
      // y^T (np, c_out) = col^T (np, K) W^T (K, c_out), both operands untransposed views.
      masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_N, (int)np, (int)d->c_out, (int)K, 1.0f, col,
                   (int)np, weight, (int)K, 0.0f, y + b * d->c_out * hw + p0, (int)hw);
    }
  }
  if (bias) {
    dcn_bias_kernel<<<blocks_for(d->n * d->c_out * hw, 256), 256, 0, stream>>>(d->n, d->c_out, hw,
                                                                              bias, y);
    cudaLaunchCheck();
  }
  cudaCheck(cudaFreeAsync(col, stream));
}

extern "C" void dcn_backward_cuda(const dcn_desc *d, const float *x, const float *offset,
                                  const float *mask, const float *weight, const float *dy,
                                  float *dx, float *doffset, float *dmask, float *dweight,
                                  float *dbias, cudaStream_t stream) {
  dcn_validate_cuda(d);
  if (d->n == 0) return;
  const int64_t K = d->c_in * d->kh * d->kw, hw = d->ho * d->wo, taps = d->kh * d->kw;
  if (dbias) {
    channel_sum_accumulate_cuda(d->n, d->c_out, hw, dy, dbias, stream);
  }
  const int need_dcol = dx || doffset || dmask;
  if (!dweight && !need_dcol) return;
  const int64_t cap = dcn_tile_positions(d);
  float *col;
  cudaCheck(cudaMallocAsync((void **)&col, (size_t)(K * cap) * sizeof(float), stream));
  for (int64_t b = 0; b < d->n; b++) {
    const float *dyb = dy + b * d->c_out * hw;
    for (int64_t p0 = 0; p0 < hw; p0 += cap) {
      const int64_t np = hw - p0 < cap ? hw - p0 : cap;
      if (dweight) {
        dcn_im2col_kernel<<<blocks_for(K * np, 256), 256, 0, stream>>>(*d, x, offset, mask, b, p0,
                                                                      np, col);
        cudaLaunchCheck();
        // dW (c_out, K) += dy_tile (c_out, np) col^T; column-major: dW^T (K, c_out) =
        // (col^T)^T (K, np) dy^T (np, c_out), where col^T / dy^T are the column-major views.
        masa_gemm_ex(stream, CUBLAS_OP_T, CUBLAS_OP_N, (int)K, (int)d->c_out, (int)np, 1.0f, col,
                     (int)np, dyb + p0, (int)hw, 1.0f, dweight, (int)K);
      }
      if (!need_dcol) continue;
      // dcol (K, np) = W^T (K, c_out) dy_tile (c_out, np); column-major: dcol^T (np, K) =
      // dy^T (np, c_out) W (c_out, K), W being the transpose of the view W^T (K, c_out).
      masa_gemm_ex(stream, CUBLAS_OP_N, CUBLAS_OP_T, (int)np, (int)K, (int)d->c_out, 1.0f,
                   dyb + p0, (int)hw, weight, (int)K, 0.0f, col, (int)np);
      dcn_col2im_kernel<<<blocks_for(taps * np, 128), 128, 0, stream>>>(
          *d, x, offset, mask, b, p0, np, col, dx, doffset, dmask);
      cudaLaunchCheck();
    }
  }
  cudaCheck(cudaFreeAsync(col, stream));
}
