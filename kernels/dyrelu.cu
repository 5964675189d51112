// CUDA twins of dyrelu_forward/backward (ops/activation.h): mmdet DyReLU (ratio 4), per image
//   p = GAP(x) (c), h = relu(w1 p + b1) (c_mid), z = w2 h + b2 (4c), t = hsig(z) - 0.5,
//   coef = (2 t + 1, t, 2 t, t) = (a1, b1, a2, b2) per channel, y = max(x a1 + b1, x a2 + b2).
// Cache layout as the CPU's: p (n, c) | h (n, c_mid) | z (n, 4c) | coef (n, 4c).
// - GAP: global_avg_pool_forward_cuda (tree sum in double: matches the CPU to double rounding).
// - The two 1x1 convs are tiny: one thread per output, sequential double sums in the CPU's order
//   with _rn intrinsics (no FMA contraction), so h / z / coef follow from p bit for bit.
// - Pointwise parts (y, dx) repeat the CPU's float expressions with _rn intrinsics: bit-identical
//   given the same coefficients.
// - Backward: the per-(image, channel) coefficient gradients are block reductions in double
//   (fixed tree: deterministic, within double rounding of the CPU's sequential sums); every
//   parameter gradient is one thread summing over the images in order (no atomics). NULL
//   gradient pointers are skipped; all gradients accumulate (+=).
#include "block_reduce.cuh"
#include "cuda_check.h"
#include "kernels.h"

#define GRID_STRIDE(i, n)                                                   \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (int64_t)gridDim.x * blockDim.x)

static __device__ inline float hsig_dev(float v) {
  float t = __fdiv_rn(__fadd_rn(v, 3.0f), 6.0f);
  return t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
}

// h (n, c_mid) = relu(b1 + w1 p): thread per (b, m).
static __global__ void dyrelu_fc1_kernel(int64_t n, int64_t c, int64_t c_mid,
                                         const float *__restrict__ p,
                                         const float *__restrict__ w1,
                                         const float *__restrict__ b1, float *__restrict__ h) {
  GRID_STRIDE(idx, n * c_mid) {
    const int64_t b = idx / c_mid, m = idx % c_mid;
    double s = b1 ? (double)b1[m] : 0.0;
    for (int64_t ch = 0; ch < c; ch++)
      s = __dadd_rn(s, __dmul_rn((double)w1[m * c + ch], (double)p[b * c + ch]));
    h[idx] = s > 0.0 ? (float)s : 0.0f;
  }
}

// z (n, 4c) = b2 + w2 h, coef from z: thread per (b, k).
static __global__ void dyrelu_fc2_kernel(int64_t n, int64_t c, int64_t c_mid,
                                         const float *__restrict__ h,
                                         const float *__restrict__ w2,
                                         const float *__restrict__ b2, float *__restrict__ z,
                                         float *__restrict__ coef) {
  GRID_STRIDE(idx, n * 4 * c) {
    const int64_t b = idx / (4 * c), k = idx % (4 * c);
    double s = b2 ? (double)b2[k] : 0.0;
    for (int64_t m = 0; m < c_mid; m++)
      s = __dadd_rn(s, __dmul_rn((double)w2[k * c_mid + m], (double)h[b * c_mid + m]));
    const float zk = (float)s;
    z[idx] = zk;
    const float t = __fsub_rn(hsig_dev(zk), 0.5f);
    const int64_t part = k / c;
    const float t2 = __fmul_rn(2.0f, t);
    coef[idx] = part == 0 ? __fadd_rn(t2, 1.0f) : (part == 2 ? t2 : t);
  }
}

static __global__ void dyrelu_apply_kernel(int64_t n, int64_t c, int64_t hw,
                                           const float *__restrict__ x,
                                           const float *__restrict__ coef,
                                           float *__restrict__ y) {
  GRID_STRIDE(i, n * c * hw) {
    const int64_t bc = i / hw, b = bc / c, ch = bc % c;
    const float *cf = coef + b * 4 * c;
    const float a1 = cf[ch], c1 = cf[c + ch], a2 = cf[2 * c + ch], c2 = cf[3 * c + ch];
    const float u1 = __fadd_rn(__fmul_rn(x[i], a1), c1), u2 = __fadd_rn(__fmul_rn(x[i], a2), c2);
    y[i] = u1 > u2 ? u1 : u2;
  }
}

extern "C" void dyrelu_forward_cuda(int64_t n, int64_t c, int64_t hw, int64_t c_mid,
                                    const float *x, const float *w1, const float *b1,
                                    const float *w2, const float *b2, float *y, float *cache,
                                    cudaStream_t stream) {
  masa_assert(n >= 0 && c > 0 && hw > 0 && c_mid > 0);
  if (n == 0) return;
  float *p = cache, *h = p + n * c, *z = h + n * c_mid, *coef = z + n * 4 * c;
  global_avg_pool_forward_cuda(n, c, hw, x, p, stream);
  dyrelu_fc1_kernel<<<blocks_for(n * c_mid, 128), 128, 0, stream>>>(n, c, c_mid, p, w1, b1, h);
  cudaLaunchCheck();
  dyrelu_fc2_kernel<<<blocks_for(n * 4 * c, 128), 128, 0, stream>>>(n, c, c_mid, h, w2, b2, z,
                                                                    coef);
  cudaLaunchCheck();
  dyrelu_apply_kernel<<<blocks_for(n * c * hw, 256), 256, 0, stream>>>(n, c, hw, x, coef, y);
  cudaLaunchCheck();
}

// dcoef (n, 4c) in (a1, b1, a2, b2) order: one block per (b, ch) plane (grid-stride).
static __global__ void dyrelu_dcoef_kernel(int64_t n, int64_t c, int64_t hw,
                                           const float *__restrict__ x,
                                           const float *__restrict__ coef,
                                           const float *__restrict__ dy,
                                           double *__restrict__ dcoef) {
  __shared__ double sh[2 * REDUCE_THREADS];
  for (int64_t bc = blockIdx.x; bc < n * c; bc += gridDim.x) {
    const int64_t b = bc / c, ch = bc % c;
    const float *cf = coef + b * 4 * c;
    const float a1 = cf[ch], c1 = cf[c + ch], a2 = cf[2 * c + ch], c2 = cf[3 * c + ch];
    const float *xc = x + bc * hw, *dyc = dy + bc * hw;
    double ga1 = 0.0, gc1 = 0.0, ga2 = 0.0, gc2 = 0.0;
    for (int64_t i = threadIdx.x; i < hw; i += blockDim.x) {
      const float u1 = __fadd_rn(__fmul_rn(xc[i], a1), c1);
      const float u2 = __fadd_rn(__fmul_rn(xc[i], a2), c2);
      const double g = dyc[i], gx = __dmul_rn(g, (double)xc[i]);
      if (u1 > u2) {
        ga1 = __dadd_rn(ga1, gx);
        gc1 = __dadd_rn(gc1, g);
      } else if (u1 < u2) {
        ga2 = __dadd_rn(ga2, gx);
        gc2 = __dadd_rn(gc2, g);
      } else {
        ga1 = __dadd_rn(ga1, __dmul_rn(0.5, gx));
        gc1 = __dadd_rn(gc1, __dmul_rn(0.5, g));
        ga2 = __dadd_rn(ga2, __dmul_rn(0.5, gx));
        gc2 = __dadd_rn(gc2, __dmul_rn(0.5, g));
      }
    }
    block_sum2(&ga1, &gc1, sh);
    block_sum2(&ga2, &gc2, sh);
    if (threadIdx.x == 0) {
      double *dcf = dcoef + b * 4 * c;
      dcf[ch] = ga1;
      dcf[c + ch] = gc1;
      dcf[2 * c + ch] = ga2;
      dcf[3 * c + ch] = gc2;
    }
  }
}

// dz (n, 4c): back through coef = affine(hsig(z) - 0.5).
static __global__ void dyrelu_dz_kernel(int64_t n, int64_t c, const float *__restrict__ z,
                                        const double *__restrict__ dcoef,
                                        double *__restrict__ dz) {
  GRID_STRIDE(idx, n * 4 * c) {
    const int64_t part = (idx % (4 * c)) / c;
    const double dt = __dmul_rn(dcoef[idx], (part == 0 || part == 2) ? 2.0 : 1.0);
    const float zk = z[idx];
    dz[idx] = (zk > -3.0f && zk < 3.0f) ? __ddiv_rn(dt, 6.0) : 0.0;
  }
}

// db2[k] += sum_b dz[b, k]; dw2[k, m] += sum_b dz[b, k] h[b, m]: thread per (k, m) (m == 0
// also does db2[k]).
static __global__ void dyrelu_dfc2_kernel(int64_t n, int64_t c, int64_t c_mid,
                                          const double *__restrict__ dz,
                                          const float *__restrict__ h, float *__restrict__ dw2,
                                          float *__restrict__ db2) {
  GRID_STRIDE(idx, 4 * c * c_mid) {
    const int64_t k = idx / c_mid, m = idx % c_mid;
    if (db2 && m == 0) {
      double sb = 0.0;
      for (int64_t b = 0; b < n; b++) sb = __dadd_rn(sb, dz[b * 4 * c + k]);
      db2[k] = __fadd_rn(db2[k], (float)sb);
    }
    if (dw2) {
      double s = 0.0;
      for (int64_t b = 0; b < n; b++)
        s = __dadd_rn(s, __dmul_rn(dz[b * 4 * c + k], (double)h[b * c_mid + m]));
      dw2[idx] = __fadd_rn(dw2[idx], (float)s);
    }
  }
}

// dh[b, m] = h > 0 ? sum_k dz[b, k] w2[k, m] : 0.
static __global__ void dyrelu_dh_kernel(int64_t n, int64_t c, int64_t c_mid,
                                        const double *__restrict__ dz,
                                        const float *__restrict__ h,
                                        const float *__restrict__ w2, double *__restrict__ dh) {
  GRID_STRIDE(idx, n * c_mid) {
    const int64_t b = idx / c_mid, m = idx % c_mid;
    double s = 0.0;
    if (h[idx] > 0.0f)
      for (int64_t k = 0; k < 4 * c; k++)
        s = __dadd_rn(s, __dmul_rn(dz[b * 4 * c + k], (double)w2[k * c_mid + m]));
    dh[idx] = s;
  }
}

// db1[m] += sum_b dh[b, m]; dw1[m, ch] += sum_b dh[b, m] p[b, ch]: thread per (m, ch).
static __global__ void dyrelu_dfc1_kernel(int64_t n, int64_t c, int64_t c_mid,
                                          const double *__restrict__ dh,
                                          const float *__restrict__ p, float *__restrict__ dw1,
                                          float *__restrict__ db1) {
  GRID_STRIDE(idx, c_mid * c) {
    const int64_t m = idx / c, ch = idx % c;
    if (db1 && ch == 0) {
      double sb = 0.0;
      for (int64_t b = 0; b < n; b++) sb = __dadd_rn(sb, dh[b * c_mid + m]);
      db1[m] = __fadd_rn(db1[m], (float)sb);
    }
    if (dw1) {
      double s = 0.0;
      for (int64_t b = 0; b < n; b++)
        s = __dadd_rn(s, __dmul_rn(dh[b * c_mid + m], (double)p[b * c + ch]));
      dw1[idx] = __fadd_rn(dw1[idx], (float)s);
    }
  }
}

// dp[b, ch] = (sum_m dh[b, m] w1[m, ch]) / hw: the gradient through the average pool.
static __global__ void dyrelu_dp_kernel(int64_t n, int64_t c, int64_t c_mid, int64_t hw,
                                        const double *__restrict__ dh,
                                        const float *__restrict__ w1, double *__restrict__ dp) {
  GRID_STRIDE(idx, n * c) {
    const int64_t b = idx / c, ch = idx % c;
    double s = 0.0;
    for (int64_t m = 0; m < c_mid; m++)
      s = __dadd_rn(s, __dmul_rn(dh[b * c_mid + m], (double)w1[m * c + ch]));
    dp[idx] = __ddiv_rn(s, (double)hw);
  }
}

static __global__ void dyrelu_dx_kernel(int64_t n, int64_t c, int64_t hw,
                                        const float *__restrict__ x,
                                        const float *__restrict__ coef,
                                        const double *__restrict__ dp,
                                        const float *__restrict__ dy, float *__restrict__ dx) {
  GRID_STRIDE(i, n * c * hw) {
    const int64_t bc = i / hw, b = bc / c, ch = bc % c;
    const float *cf = coef + b * 4 * c;
    const float a1 = cf[ch], c1 = cf[c + ch], a2 = cf[2 * c + ch], c2 = cf[3 * c + ch];
    const float u1 = __fadd_rn(__fmul_rn(x[i], a1), c1), u2 = __fadd_rn(__fmul_rn(x[i], a2), c2);
    const float a = u1 > u2 ? a1 : (u1 < u2 ? a2 : __fmul_rn(0.5f, __fadd_rn(a1, a2)));
    dx[i] = __fadd_rn(dx[i], __fadd_rn(__fmul_rn(dy[i], a), (float)dp[bc]));
  }
}

extern "C" void dyrelu_backward_cuda(int64_t n, int64_t c, int64_t hw, int64_t c_mid,
                                     const float *x, const float *w1, const float *w2,
                                     const float *cache, const float *dy, float *dx, float *dw1,
                                     float *db1, float *dw2, float *db2, cudaStream_t stream) {
  masa_assert(n >= 0 && c > 0 && hw > 0 && c_mid > 0);
  if (n == 0) return;
  const float *p = cache, *h = p + n * c, *z = h + n * c_mid, *coef = z + n * 4 * c;
  // Workspace (doubles): dcoef (n, 4c) | dz (n, 4c) | dh (n, c_mid) | dp (n, c).
  double *ws = NULL;
  cudaCheck(cudaMallocAsync((void **)&ws, (size_t)(n * (9 * c + c_mid)) * sizeof(double), stream));
  double *dcoef = ws, *dz = dcoef + n * 4 * c, *dh = dz + n * 4 * c, *dp = dh + n * c_mid;
  dyrelu_dcoef_kernel<<<blocks_for(n * c, 1), REDUCE_THREADS, 0, stream>>>(n, c, hw, x, coef, dy,
                                                                          dcoef);
  cudaLaunchCheck();
  dyrelu_dz_kernel<<<blocks_for(n * 4 * c, 256), 256, 0, stream>>>(n, c, z, dcoef, dz);
  cudaLaunchCheck();
  if (dw2 || db2) {
    dyrelu_dfc2_kernel<<<blocks_for(4 * c * c_mid, 128), 128, 0, stream>>>(n, c, c_mid, dz, h,
                                                                          dw2, db2);
    cudaLaunchCheck();
  }
  dyrelu_dh_kernel<<<blocks_for(n * c_mid, 128), 128, 0, stream>>>(n, c, c_mid, dz, h, w2, dh);
  cudaLaunchCheck();
  if (dw1 || db1) {
    dyrelu_dfc1_kernel<<<blocks_for(c_mid * c, 128), 128, 0, stream>>>(n, c, c_mid, dh, p, dw1,
                                                                      db1);
    cudaLaunchCheck();
  }
  if (dx) {
    dyrelu_dp_kernel<<<blocks_for(n * c, 128), 128, 0, stream>>>(n, c, c_mid, hw, dh, w1, dp);
    cudaLaunchCheck();
    dyrelu_dx_kernel<<<blocks_for(n * c * hw, 256), 256, 0, stream>>>(n, c, hw, x, coef, dp, dy,
                                                                      dx);
    cudaLaunchCheck();
  }
  cudaCheck(cudaFreeAsync(ws, stream));
}
