// Activations, row softmax, global average pooling and DyReLU on the CPU.
// - Elementwise ops work on flat arrays of n floats; backward accumulates (ops/ops.h).
// - GELU is the exact erf form 0.5 x (1 + erf(x / sqrt 2)) (F.gelu default, approximate='none'),
//   evaluated as 0.5 x erfc(-x / sqrt 2): no cancellation in 1 + erf for negative x.
// - Hard sigmoid is mmcv HSigmoid(bias 3, divisor 6) = clamp((x + 3) / 6, 0, 1). Its gradient
//   follows F.hardsigmoid: 1/6 strictly inside (-3, 3), 0 at and beyond the kinks. (mmcv's
//   clamp_ would pass 1/6 at exactly +-3 too; the two differ only on that measure-zero set.)
// - ReLU gradient: dy where the output y > 0 (0 at x = 0, like torch).
// - Softmax / log-softmax subtract the row max before exp; row sums in double.
// - DyReLU follows mmdet's DyReLU (see ops/activation.h). torch.max(u1, u2) sends the gradient to
//   the larger branch and half to each on a tie, like torch.maximum's backward.
// - Every reduction (pooling, DyReLU coefficient gradients, parameter gradients) is in double in
//   a fixed order: results do not depend on the thread count.
#include "ops/activation.h"

#include <math.h>
#include <string.h>

#include "core/check.h"

#define ACT_PAR_MIN 32768  // elements below which loops stay serial

void relu_forward_cpu(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
  for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward_cpu(int64_t n, const float *y, const float *dy, float *dx) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
  for (int64_t i = 0; i < n; i++)
    if (y[i] > 0.0f) dx[i] += dy[i];
}

void gelu_forward_cpu(int64_t n, const float *x, float *y) {
  const float inv_sqrt2 = 0.70710678118654752440f;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++) y[i] = 0.5f * x[i] * erfcf(-x[i] * inv_sqrt2);
}

void gelu_backward_cpu(int64_t n, const float *x, const float *dy, float *dx) {
  if (!dx) return;
  const float inv_sqrt2 = 0.70710678118654752440f, inv_sqrt2pi = 0.39894228040143267794f;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    float cdf = 0.5f * erfcf(-v * inv_sqrt2);
    float pdf = inv_sqrt2pi * expf(-0.5f * v * v);
    dx[i] += dy[i] * (cdf + v * pdf);
  }
}

void sigmoid_forward_cpu(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN / 8)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    // exp of a non-positive number only: no overflow for large |x|.
    if (v >= 0.0f) {
      y[i] = 1.0f / (1.0f + expf(-v));
    } else {
      float e = expf(v);
      y[i] = e / (1.0f + e);
    }
  }
}

void sigmoid_backward_cpu(int64_t n, const float *y, const float *dy, float *dx) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
  for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

static inline float hsig(float v) {
  float t = (v + 3.0f) / 6.0f;
  return t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
}

void hard_sigmoid_forward_cpu(int64_t n, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
  for (int64_t i = 0; i < n; i++) y[i] = hsig(x[i]);
}

void hard_sigmoid_backward_cpu(int64_t n, const float *x, const float *dy, float *dx) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (n > ACT_PAR_MIN)
  for (int64_t i = 0; i < n; i++)
    if (x[i] > -3.0f && x[i] < 3.0f) dx[i] += dy[i] / 6.0f;
}

// ---- softmax over rows ----

static float row_max(const float *x, int64_t cols) {
  float m = -INFINITY;
  for (int64_t j = 0; j < cols; j++)
    if (x[j] > m) m = x[j];
  return m;
}

void softmax_forward_cpu(int64_t rows, int64_t cols, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (rows * cols > ACT_PAR_MIN / 8)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float m = row_max(xr, cols);
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) {
      yr[j] = expf(xr[j] - m);
      s += yr[j];
    }
    float inv = (float)(1.0 / s);
    for (int64_t j = 0; j < cols; j++) yr[j] *= inv;
  }
}

void softmax_backward_cpu(int64_t rows, int64_t cols, const float *y, const float *dy, float *dx) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (rows * cols > ACT_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * cols, *dyr = dy + r * cols;
    float *dxr = dx + r * cols;
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) s += (double)dyr[j] * yr[j];
    float fs = (float)s;
    for (int64_t j = 0; j < cols; j++) dxr[j] += yr[j] * (dyr[j] - fs);
  }
}

void log_softmax_forward_cpu(int64_t rows, int64_t cols, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (rows * cols > ACT_PAR_MIN / 8)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols;
    float m = row_max(xr, cols);
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) s += expf(xr[j] - m);
    float lse = (float)log(s);
    for (int64_t j = 0; j < cols; j++) yr[j] = (xr[j] - m) - lse;
  }
}

void log_softmax_backward_cpu(int64_t rows, int64_t cols, const float *y, const float *dy,
                              float *dx) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (rows * cols > ACT_PAR_MIN / 8)
  for (int64_t r = 0; r < rows; r++) {
    const float *yr = y + r * cols, *dyr = dy + r * cols;
    float *dxr = dx + r * cols;
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) s += dyr[j];
    float fs = (float)s;
    for (int64_t j = 0; j < cols; j++) dxr[j] += dyr[j] - expf(yr[j]) * fs;
  }
}

// ---- global average pool ----

void global_avg_pool_forward_cpu(int64_t n, int64_t c, int64_t hw, const float *x, float *y) {
#pragma omp parallel for schedule(static) if (n * c * hw > ACT_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    const float *xc = x + bc * hw;
    double s = 0.0;
    for (int64_t i = 0; i < hw; i++) s += xc[i];
    y[bc] = (float)(s / (double)hw);
  }
}

void global_avg_pool_backward_cpu(int64_t n, int64_t c, int64_t hw, const float *dy, float *dx) {
  if (!dx) return;
#pragma omp parallel for schedule(static) if (n * c * hw > ACT_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    float g = (float)((double)dy[bc] / (double)hw);
    float *dxc = dx + bc * hw;
    for (int64_t i = 0; i < hw; i++) dxc[i] += g;
  }
}

// ---- DyReLU ----
// cache layout: p (n, c) pooled input | h (n, c_mid) after ReLU | z (n, 4c) before HSigmoid |
// coef (n, 4c) = (a1, b1, a2, b2) after the affine maps, i.e. what multiplies / shifts x.

int64_t dyrelu_cache_size(int64_t n, int64_t c, int64_t c_mid) { return n * (9 * c + c_mid); }

void dyrelu_forward_cpu(int64_t n, int64_t c, int64_t hw, int64_t c_mid, const float *x,
                        const float *w1, const float *b1, const float *w2, const float *b2,
                        float *y, float *cache) {
  masa_assert(n >= 0 && c > 0 && hw > 0 && c_mid > 0);
  float *p = cache, *h = p + n * c, *z = h + n * c_mid, *coef = z + n * 4 * c;
  global_avg_pool_forward_cpu(n, c, hw, x, p);
  for (int64_t b = 0; b < n; b++) {
    for (int64_t m = 0; m < c_mid; m++) {
      double s = b1 ? b1[m] : 0.0;
      for (int64_t ch = 0; ch < c; ch++) s += (double)w1[m * c + ch] * p[b * c + ch];
      h[b * c_mid + m] = s > 0.0 ? (float)s : 0.0f;
    }
    for (int64_t k = 0; k < 4 * c; k++) {
      double s = b2 ? b2[k] : 0.0;
      for (int64_t m = 0; m < c_mid; m++) s += (double)w2[k * c_mid + m] * h[b * c_mid + m];
      float zk = (float)s;
      z[b * 4 * c + k] = zk;
      float t = hsig(zk) - 0.5f;
      int64_t part = k / c;  // 0: a1, 1: b1, 2: a2, 3: b2
      coef[b * 4 * c + k] = part == 0 ? 2.0f * t + 1.0f : (part == 2 ? 2.0f * t : t);
    }
  }
#pragma omp parallel for schedule(static) if (n * c * hw > ACT_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    int64_t b = bc / c, ch = bc % c;
    const float *cf = coef + b * 4 * c;
    float a1 = cf[ch], c1 = cf[c + ch], a2 = cf[2 * c + ch], c2 = cf[3 * c + ch];
    const float *xc = x + bc * hw;
    float *yc = y + bc * hw;
    for (int64_t i = 0; i < hw; i++) {
      float u1 = xc[i] * a1 + c1, u2 = xc[i] * a2 + c2;
      yc[i] = u1 > u2 ? u1 : u2;
    }
  }
}

void dyrelu_backward_cpu(int64_t n, int64_t c, int64_t hw, int64_t c_mid, const float *x,
                         const float *w1, const float *w2, const float *cache, const float *dy,
                         float *dx, float *dw1, float *db1, float *dw2, float *db2) {
  masa_assert(n >= 0 && c > 0 && hw > 0 && c_mid > 0);
  const float *p = cache, *h = p + n * c, *z = h + n * c_mid, *coef = z + n * 4 * c;
  // Gradients w.r.t. the coefficients (n, 4c) in (a1, b1, a2, b2) order.
  double *dcoef = mallocCheck((size_t)(n * 4 * c) * sizeof(double));
#pragma omp parallel for schedule(static) if (n * c * hw > ACT_PAR_MIN)
  for (int64_t bc = 0; bc < n * c; bc++) {
    int64_t b = bc / c, ch = bc % c;
    const float *cf = coef + b * 4 * c;
    float a1 = cf[ch], c1 = cf[c + ch], a2 = cf[2 * c + ch], c2 = cf[3 * c + ch];
    const float *xc = x + bc * hw, *dyc = dy + bc * hw;
    double ga1 = 0.0, gc1 = 0.0, ga2 = 0.0, gc2 = 0.0;
    for (int64_t i = 0; i < hw; i++) {
      float u1 = xc[i] * a1 + c1, u2 = xc[i] * a2 + c2;
      double g = dyc[i];
      if (u1 > u2) {
        ga1 += g * xc[i];
        gc1 += g;
      } else if (u1 < u2) {
        ga2 += g * xc[i];
        gc2 += g;
      } else {
        ga1 += 0.5 * g * xc[i];
        gc1 += 0.5 * g;
        ga2 += 0.5 * g * xc[i];
        gc2 += 0.5 * g;
      }
    }
    double *dcf = dcoef + b * 4 * c;
    dcf[ch] = ga1;
    dcf[c + ch] = gc1;
    dcf[2 * c + ch] = ga2;
    dcf[3 * c + ch] = gc2;
  }
  // Back through coef = affine(hsig(z) - 0.5), conv2, ReLU, conv1 (tiny: serial, double).
  double *dz = mallocCheck((size_t)(n * 4 * c) * sizeof(double));
  double *dh = mallocCheck((size_t)(n * c_mid) * sizeof(double));
  double *dp = mallocCheck((size_t)(n * c) * sizeof(double));
  for (int64_t b = 0; b < n; b++)
    for (int64_t k = 0; k < 4 * c; k++) {
      int64_t part = k / c;
      double dt = dcoef[b * 4 * c + k] * ((part == 0 || part == 2) ? 2.0 : 1.0);
      float zk = z[b * 4 * c + k];
      dz[b * 4 * c + k] = (zk > -3.0f && zk < 3.0f) ? dt / 6.0 : 0.0;
    }
  for (int64_t k = 0; k < 4 * c; k++) {
    double sb = 0.0;
    for (int64_t b = 0; b < n; b++) sb += dz[b * 4 * c + k];
    if (db2) db2[k] += (float)sb;
    if (dw2)
      for (int64_t m = 0; m < c_mid; m++) {
        double s = 0.0;
        for (int64_t b = 0; b < n; b++) s += dz[b * 4 * c + k] * h[b * c_mid + m];
        dw2[k * c_mid + m] += (float)s;
      }
  }
  for (int64_t b = 0; b < n; b++)
    for (int64_t m = 0; m < c_mid; m++) {
      double s = 0.0;
      if (h[b * c_mid + m] > 0.0f)
        for (int64_t k = 0; k < 4 * c; k++) s += dz[b * 4 * c + k] * w2[k * c_mid + m];
      dh[b * c_mid + m] = s;  // already through the ReLU
    }
  for (int64_t m = 0; m < c_mid; m++) {
    double sb = 0.0;
    for (int64_t b = 0; b < n; b++) sb += dh[b * c_mid + m];
    if (db1) db1[m] += (float)sb;
    if (dw1)
      for (int64_t ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int64_t b = 0; b < n; b++) s += dh[b * c_mid + m] * p[b * c + ch];
        dw1[m * c + ch] += (float)s;
      }
  }
  if (dx) {
    for (int64_t b = 0; b < n; b++)
      for (int64_t ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int64_t m = 0; m < c_mid; m++) s += dh[b * c_mid + m] * w1[m * c + ch];
        dp[b * c + ch] = s / (double)hw;  // through the average pool
      }
#pragma omp parallel for schedule(static) if (n * c * hw > ACT_PAR_MIN)
    for (int64_t bc = 0; bc < n * c; bc++) {
      int64_t b = bc / c, ch = bc % c;
      const float *cf = coef + b * 4 * c;
      float a1 = cf[ch], c1 = cf[c + ch], a2 = cf[2 * c + ch], c2 = cf[3 * c + ch];
      float g0 = (float)dp[bc];
      const float *xc = x + bc * hw, *dyc = dy + bc * hw;
      float *dxc = dx + bc * hw;
      for (int64_t i = 0; i < hw; i++) {
        float u1 = xc[i] * a1 + c1, u2 = xc[i] * a2 + c2;
        float a = u1 > u2 ? a1 : (u1 < u2 ? a2 : 0.5f * (a1 + a2));
        dxc[i] += dyc[i] * a + g0;
      }
    }
  }
  free(dcoef);
  free(dz);
  free(dh);
  free(dp);
}
