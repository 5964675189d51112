// CUDA twins of the ResNet unit ops: frozen-BN affine + residual + ReLU, the parameter gradients
// of a BN normalising with running statistics (ops/norm.h) and the stem max-pool 3x3/2 pad 1
// (ops/resample.h).
// - affine_add_relu and the max-pool repeat the CPU's float operations in order (the _rn
//   intrinsics stop FMA contraction): bit-identical.
// - bn_frozen_param_backward: one block per channel, double sums through the fixed tree of
//   block_reduce.cuh: deterministic, equal to the CPU's sequential double sums up to double
//   rounding (then rounded to float).
// - The max-pool backward gathers instead of scattering (windows overlap: 3 wide, stride 2): each
//   input pixel visits the at most 2 x 2 outputs whose window covers it, in increasing output
//   order, and adds the dy of those whose argmax is this pixel, in that order, onto dx: the same
//   additions in the same order as the CPU's scatter loop, no atomics.
#include <math.h>

#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define RN_THREADS 256
#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

static __global__ void affine_add_relu_kernel(int64_t n, int64_t c, int64_t hw, const float *x,
                                              const float *scale, const float *shift,
                                              const float *res, int relu, float *y) {
  GRID_STRIDE(i, n * c * hw) {
    int64_t ch = (i / hw) % c;
    float v = __fadd_rn(__fmul_rn(x[i], scale[ch]), shift[ch]);
    if (res) v = __fadd_rn(v, res[i]);
    if (relu) v = v > 0.0f ? v : 0.0f;
    y[i] = v;
  }
}

static __global__ void bn_frozen_param_backward_kernel(int64_t n, int64_t c, int64_t hw,
                                                       float eps, const float *dy, const float *x,
                                                       const float *rm, const float *rv,
                                                       float *dgamma, float *dbeta) {
  __shared__ double sh[2 * RN_THREADS];
  int64_t ch = blockIdx.x;
  double mean = rm[ch], sg = 0.0, sgx = 0.0;
  for (int64_t b = 0; b < n; b++) {
    const float *gc = dy + (b * c + ch) * hw, *xc = x + (b * c + ch) * hw;
    for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
      sg = __dadd_rn(sg, (double)gc[i]);
      sgx = __dadd_rn(sgx, __dmul_rn((double)gc[i], __dsub_rn((double)xc[i], mean)));
    }
  }
  block_sum2(&sg, &sgx, sh);
  if (threadIdx.x == 0) {
    if (dgamma)
      dgamma[ch] = __fadd_rn(dgamma[ch],
                             (float)__ddiv_rn(sgx, sqrt(__dadd_rn((double)rv[ch], (double)eps))));
    if (dbeta) dbeta[ch] = __fadd_rn(dbeta[ch], (float)sg);
  }
}

static __device__ inline int64_t pool3_out(int64_t in) { return (in + 2 - 3) / 2 + 1; }

static __global__ void max_pool3s2p1_forward_kernel(int64_t planes, int64_t h, int64_t w,
                                                    const float *x, float *y, int64_t *argmax) {
  int64_t ho = pool3_out(h), wo = pool3_out(w);
  GRID_STRIDE(o, planes * ho * wo) {
    int64_t p = o / (ho * wo), oh = (o / wo) % ho, ow = o % wo;
    const float *xp = x + p * h * w;
    float best = -INFINITY;
    int64_t bi = -1;
    bool stop = false;
    for (int64_t i = oh * 2 - 1; i <= oh * 2 + 1 && !stop; i++) {
      if (i < 0 || i >= h) continue;
      for (int64_t j = ow * 2 - 1; j <= ow * 2 + 1; j++) {
        if (j < 0 || j >= w) continue;
        float v = xp[i * w + j];
        if (bi < 0 || v > best || isnan(v)) {
          best = v;
          bi = i * w + j;
          if (isnan(v)) {
            stop = true;
            break;
          }
        }
      }
    }
    y[o] = best;
    if (argmax) argmax[o] = bi;
  }
}

static __global__ void max_pool3s2p1_backward_kernel(int64_t planes, int64_t h, int64_t w,
                                                     const int64_t *argmax, const float *dy,
                                                     float *dx) {
  int64_t ho = pool3_out(h), wo = pool3_out(w);
  GRID_STRIDE(e, planes * h * w) {
    int64_t p = e / (h * w), ih = (e / w) % h, iw = e % w, flat = ih * w + iw;
    // Outputs whose window [2 oh - 1, 2 oh + 1] contains ih: oh in [ceil((ih - 1) / 2), (ih + 1) / 2].
    int64_t oh0 = ih >= 1 ? ih / 2 : 0, oh1 = (ih + 1) / 2;
    int64_t ow0 = iw >= 1 ? iw / 2 : 0, ow1 = (iw + 1) / 2;
    if (oh1 > ho - 1) oh1 = ho - 1;
    if (ow1 > wo - 1) ow1 = wo - 1;
    float v = dx[e];
    for (int64_t oh = oh0; oh <= oh1; oh++)
      for (int64_t ow = ow0; ow <= ow1; ow++) {
        int64_t q = (p * ho + oh) * wo + ow;
        if (argmax[q] == flat) v = __fadd_rn(v, dy[q]);
      }
    dx[e] = v;
  }
}

#define LAUNCH(n) blocks_for((n), RN_THREADS), RN_THREADS, 0, stream

extern "C" void affine_add_relu_forward_cuda(int64_t n, int64_t c, int64_t hw, const float *x,
                                             const float *scale, const float *shift,
                                             const float *res, int relu, float *y,
                                             cudaStream_t stream) {
  if (n * c * hw <= 0) return;
  affine_add_relu_kernel<<<LAUNCH(n * c * hw)>>>(n, c, hw, x, scale, shift, res, relu, y);
  cudaLaunchCheck();
}

extern "C" void bn_frozen_param_backward_cuda(int64_t n, int64_t c, int64_t hw, float eps,
                                              const float *dy, const float *x,
                                              const float *running_mean,
                                              const float *running_var, float *dgamma,
                                              float *dbeta, cudaStream_t stream) {
  if (c <= 0 || (!dgamma && !dbeta)) return;
  masa_assert(c <= 0x7fffffff);
  bn_frozen_param_backward_kernel<<<(unsigned)c, RN_THREADS, 0, stream>>>(
      n, c, hw, eps, dy, x, running_mean, running_var, dgamma, dbeta);
  cudaLaunchCheck();
}

extern "C" void max_pool3s2p1_forward_cuda(int64_t planes, int64_t h, int64_t w, const float *x,
                                           float *y, int64_t *argmax, cudaStream_t stream) {
  int64_t total = planes * max_pool3s2p1_out_size(h) * max_pool3s2p1_out_size(w);
  if (total <= 0) return;
  max_pool3s2p1_forward_kernel<<<LAUNCH(total)>>>(planes, h, w, x, y, argmax);
  cudaLaunchCheck();
}

extern "C" void max_pool3s2p1_backward_cuda(int64_t planes, int64_t h, int64_t w,
                                            const int64_t *argmax, const float *dy, float *dx,
                                            cudaStream_t stream) {
  if (planes * h * w <= 0) return;
  max_pool3s2p1_backward_kernel<<<LAUNCH(planes * h * w)>>>(planes, h, w, argmax, dy, dx);
  cudaLaunchCheck();
}
