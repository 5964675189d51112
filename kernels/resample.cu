// CUDA twins of the pooling and resampling ops in ops/resample.h: NCHW maps viewed as n*c
// independent (h, w) planes, same index rules as the CPU (see ops/resample.c): max_pool2d with no
// padding, floor mode, first maximum wins, NaN propagates; legacy 'nearest'; bilinear with
// align_corners=True. Axis scales are computed on the host exactly as the CPU does and every
// device product uses _rn intrinsics (no FMA contraction), so source indices and weights are
// bit-identical to the CPU's.
// Backward passes are GATHER-style, one thread per input pixel, no atomics: each thread finds the
// outputs that can reach its pixel, visits them in the CPU's row-major output order, and adds
// their contributions to its own register in that order, starting from the incoming dx. The
// float sums are therefore the CPU's sums operation for operation: bit-identical and
// deterministic.
// - max_pool2d: outputs (oy, ox) whose window holds (iy, ix): oy*s <= iy <= oy*s + k - 1, i.e.
//   ceil((iy - k + 1) / s) <= oy <= floor(iy / s), clipped to [0, ho); a window contributes when
//   its argmax is this pixel. argmax must come from max_pool2d_forward (it lies in its window).
// - nearest: src(o) = min(floor(o * scale), in - 1) never decreases with o, so the outputs that
//   copy input row iy are the contiguous range [first o with src >= iy, first o with src >= iy+1),
//   found by binary search; same for columns.
// - bilinear (align_corners): each output reads rows lo and hi of its tap, hi in {lo, lo + 1} (hi
//   == lo only at lo == in - 1), and lo never decreases with o. So the outputs that touch input row
//   iy are exactly those with lo in {iy - 1, iy} (lo == iy - 1 means hi == iy, as iy <= in - 1): a
//   contiguous range [first o with lo >= iy - 1, first o with lo >= iy + 1). Within it, each
//   output adds its four CPU terms (lo,lo), (lo,hi), (hi,lo), (hi,hi) in that order, each only if
//   its (row, col) is this pixel; zero-weight terms are added too, as the CPU adds them.
#include <math.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define RESAMPLE_THREADS 256

#define GRID_STRIDE(i, n)                                                          \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);        \
       i += (int64_t)gridDim.x * blockDim.x)

// ---- max_pool2d ----

static __global__ void max_pool2d_forward_kernel(int64_t planes, int64_t h, int64_t w, int64_t k,
                                                 int64_t s, int64_t ho, int64_t wo,
                                                 const float *x, float *y, int64_t *argmax) {
  GRID_STRIDE(i, planes * ho * wo) {
    const int64_t ox = i % wo, oy = (i / wo) % ho, pl = i / (wo * ho);
    const float *xp = x + pl * h * w;
    const int64_t iy0 = oy * s, ix0 = ox * s;
    int64_t best = iy0 * w + ix0;
    float m = -INFINITY;
    for (int64_t iy = iy0; iy < iy0 + k; iy++)
      for (int64_t ix = ix0; ix < ix0 + k; ix++) {
        float v = xp[iy * w + ix];
        if (v > m || isnan(v)) {
          m = v;
          best = iy * w + ix;
        }
      }
    y[i] = m;
    if (argmax) argmax[i] = best;
  }
}

static __device__ inline int64_t pool_first_out(int64_t i, int64_t k, int64_t s) {
  const int64_t t = i - k + 1;
  return t <= 0 ? 0 : (t + s - 1) / s;
}

static __global__ void max_pool2d_backward_kernel(int64_t planes, int64_t h, int64_t w, int64_t k,
                                                  int64_t s, int64_t ho, int64_t wo,
                                                  const int64_t *argmax, const float *dy,
                                                  float *dx) {
  GRID_STRIDE(i, planes * h * w) {
    const int64_t ix = i % w, iy = (i / w) % h, pl = i / (w * h);
    const int64_t flat = iy * w + ix;
    const int64_t oy0 = pool_first_out(iy, k, s), ox0 = pool_first_out(ix, k, s);
    const int64_t oy1 = min(iy / s, ho - 1), ox1 = min(ix / s, wo - 1);  // inclusive
    const int64_t *ap = argmax + pl * ho * wo;
    const float *dyp = dy + pl * ho * wo;
    float acc = dx[i];
    for (int64_t oy = oy0; oy <= oy1; oy++)
      for (int64_t ox = ox0; ox <= ox1; ox++)
        if (ap[oy * wo + ox] == flat) acc = __fadd_rn(acc, dyp[oy * wo + ox]);
    dx[i] = acc;
  }
}

extern "C" void max_pool2d_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                                        int64_t s, const float *x, float *y, int64_t *argmax,
                                        cudaStream_t stream) {
  masa_assert(k >= 1 && s >= 1);
  const int64_t ho = max_pool2d_out_size(h, k, s), wo = max_pool2d_out_size(w, k, s);
  const int64_t total = n * c * ho * wo;
  if (total <= 0) return;
  max_pool2d_forward_kernel<<<blocks_for(total, RESAMPLE_THREADS), RESAMPLE_THREADS, 0, stream>>>(
      n * c, h, w, k, s, ho, wo, x, y, argmax);
  cudaLaunchCheck();
}

extern "C" void max_pool2d_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                                         int64_t s, const int64_t *argmax, const float *dy,
                                         float *dx, cudaStream_t stream) {
  if (!dx) return;
  masa_assert(argmax != NULL && k >= 1 && s >= 1);
  const int64_t ho = max_pool2d_out_size(h, k, s), wo = max_pool2d_out_size(w, k, s);
  const int64_t total = n * c * h * w;
  if (total <= 0 || ho * wo <= 0) return;  // no outputs: nothing flows back
  max_pool2d_backward_kernel<<<blocks_for(total, RESAMPLE_THREADS), RESAMPLE_THREADS, 0, stream>>>(
      n * c, h, w, k, s, ho, wo, argmax, dy, dx);
  cudaLaunchCheck();
}

// ---- nearest (legacy) ----

static __device__ inline int64_t nearest_src(int64_t o, float scale, int64_t in) {
  const int64_t i = (int64_t)floorf(__fmul_rn((float)o, scale));
  return i < in - 1 ? i : in - 1;
}

// First output index o in [0, out) with nearest_src(o) >= t (out if none).
static __device__ int64_t nearest_first_ge(int64_t t, int64_t out, float scale, int64_t in) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (nearest_src(mid, scale, in) >= t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

static __global__ void upsample_nearest_forward_kernel(int64_t planes, int64_t h, int64_t w,
                                                       int64_t ho, int64_t wo, float sh, float sw,
                                                       const float *x, float *y) {
  GRID_STRIDE(i, planes * ho * wo) {
    const int64_t ox = i % wo, oy = (i / wo) % ho, pl = i / (wo * ho);
    y[i] = x[pl * h * w + nearest_src(oy, sh, h) * w + nearest_src(ox, sw, w)];
  }
}

static __global__ void upsample_nearest_backward_kernel(int64_t planes, int64_t h, int64_t w,
                                                        int64_t ho, int64_t wo, float sh,
                                                        float sw, const float *dy, float *dx) {
  GRID_STRIDE(i, planes * h * w) {
    const int64_t ix = i % w, iy = (i / w) % h, pl = i / (w * h);
    const int64_t oy0 = nearest_first_ge(iy, ho, sh, h), oy1 = nearest_first_ge(iy + 1, ho, sh, h);
    const int64_t ox0 = nearest_first_ge(ix, wo, sw, w), ox1 = nearest_first_ge(ix + 1, wo, sw, w);
    const float *dyp = dy + pl * ho * wo;
    float acc = dx[i];
    for (int64_t oy = oy0; oy < oy1; oy++)
      for (int64_t ox = ox0; ox < ox1; ox++) acc = __fadd_rn(acc, dyp[oy * wo + ox]);
    dx[i] = acc;
  }
}

extern "C" void upsample_nearest_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w,
                                              int64_t ho, int64_t wo, const float *x, float *y,
                                              cudaStream_t stream) {
  const int64_t total = n * c * ho * wo;
  if (total <= 0 || h <= 0 || w <= 0) return;
  const float sh = (float)h / (float)ho, sw = (float)w / (float)wo;  // the CPU's float scales
  upsample_nearest_forward_kernel<<<blocks_for(total, RESAMPLE_THREADS), RESAMPLE_THREADS, 0,
                                    stream>>>(n * c, h, w, ho, wo, sh, sw, x, y);
  cudaLaunchCheck();
}

extern "C" void upsample_nearest_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w,
                                               int64_t ho, int64_t wo, const float *dy, float *dx,
                                               cudaStream_t stream) {
  const int64_t total = n * c * h * w;
  if (!dx || total <= 0 || ho <= 0 || wo <= 0) return;
  const float sh = (float)h / (float)ho, sw = (float)w / (float)wo;
  upsample_nearest_backward_kernel<<<blocks_for(total, RESAMPLE_THREADS), RESAMPLE_THREADS, 0,
                                     stream>>>(n * c, h, w, ho, wo, sh, sw, dy, dx);
  cudaLaunchCheck();
}

// ---- bilinear, align_corners=True ----

typedef struct {
  int64_t lo, hi;
  float wlo, whi;  // 1 - l and l
} lin_tap;

static __device__ inline lin_tap linear_tap_ac(int64_t o, float scale, int64_t in) {
  lin_tap t;
  const float src = __fmul_rn(scale, (float)o);
  int64_t lo = (int64_t)floorf(src);
  if (lo > in - 1) lo = in - 1;
  float l = __fsub_rn(src, (float)lo);
  l = l < 0.0f ? 0.0f : (l > 1.0f ? 1.0f : l);
  t.lo = lo;
  t.hi = lo + (lo < in - 1 ? 1 : 0);
  t.whi = l;
  t.wlo = __fsub_rn(1.0f, l);
  return t;
}

// First output index o in [0, out) whose tap has lo >= t (out if none).
static __device__ int64_t tap_first_ge(int64_t t, int64_t out, float scale, int64_t in) {
  int64_t lo = 0, hi = out;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (linear_tap_ac(mid, scale, in).lo >= t) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

static __global__ void resize_bilinear_ac_forward_kernel(int64_t planes, int64_t h, int64_t w,
                                                         int64_t ho, int64_t wo, float sh,
                                                         float sw, const float *x, float *y) {
  GRID_STRIDE(i, planes * ho * wo) {
    const int64_t ox = i % wo, oy = (i / wo) % ho, pl = i / (wo * ho);
    const lin_tap a = linear_tap_ac(oy, sh, h), b = linear_tap_ac(ox, sw, w);
    const float *r0 = x + pl * h * w + a.lo * w, *r1 = x + pl * h * w + a.hi * w;
    const float top = __fadd_rn(__fmul_rn(b.wlo, r0[b.lo]), __fmul_rn(b.whi, r0[b.hi]));
    const float bot = __fadd_rn(__fmul_rn(b.wlo, r1[b.lo]), __fmul_rn(b.whi, r1[b.hi]));
    y[i] = __fadd_rn(__fmul_rn(a.wlo, top), __fmul_rn(a.whi, bot));
  }
}

static __global__ void resize_bilinear_ac_backward_kernel(int64_t planes, int64_t h, int64_t w,
                                                          int64_t ho, int64_t wo, float sh,
                                                          float sw, const float *dy, float *dx) {
  GRID_STRIDE(i, planes * h * w) {
    const int64_t ix = i % w, iy = (i / w) % h, pl = i / (w * h);
    const int64_t oy0 = tap_first_ge(iy - 1, ho, sh, h), oy1 = tap_first_ge(iy + 1, ho, sh, h);
    const int64_t ox0 = tap_first_ge(ix - 1, wo, sw, w), ox1 = tap_first_ge(ix + 1, wo, sw, w);
    const float *dyp = dy + pl * ho * wo;
    float acc = dx[i];
    for (int64_t oy = oy0; oy < oy1; oy++) {
      const lin_tap a = linear_tap_ac(oy, sh, h);
      for (int64_t ox = ox0; ox < ox1; ox++) {
        const lin_tap b = linear_tap_ac(ox, sw, w);
        const float g = dyp[oy * wo + ox];
        if (a.lo == iy && b.lo == ix) acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(a.wlo, b.wlo), g));
        if (a.lo == iy && b.hi == ix) acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(a.wlo, b.whi), g));
        if (a.hi == iy && b.lo == ix) acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(a.whi, b.wlo), g));
        if (a.hi == iy && b.hi == ix) acc = __fadd_rn(acc, __fmul_rn(__fmul_rn(a.whi, b.whi), g));
      }
    }
    dx[i] = acc;
  }
}

static float align_corners_scale(int64_t in, int64_t out) {
  return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;  // the CPU's float scale
}

extern "C" void resize_bilinear_ac_forward_cuda(int64_t n, int64_t c, int64_t h, int64_t w,
                                                int64_t ho, int64_t wo, const float *x, float *y,
                                                cudaStream_t stream) {
  const int64_t total = n * c * ho * wo;
  if (total <= 0 || h <= 0 || w <= 0) return;
  resize_bilinear_ac_forward_kernel<<<blocks_for(total, RESAMPLE_THREADS), RESAMPLE_THREADS, 0,
                                      stream>>>(n * c, h, w, ho, wo, align_corners_scale(h, ho),
                                                align_corners_scale(w, wo), x, y);
  cudaLaunchCheck();
}

extern "C" void resize_bilinear_ac_backward_cuda(int64_t n, int64_t c, int64_t h, int64_t w,
                                                 int64_t ho, int64_t wo, const float *dy,
                                                 float *dx, cudaStream_t stream) {
  const int64_t total = n * c * h * w;
  if (!dx || total <= 0 || ho <= 0 || wo <= 0) return;
  resize_bilinear_ac_backward_kernel<<<blocks_for(total, RESAMPLE_THREADS), RESAMPLE_THREADS, 0,
                                       stream>>>(n * c, h, w, ho, wo, align_corners_scale(h, ho),
                                                 align_corners_scale(w, wo), dy, dx);
  cudaLaunchCheck();
}
