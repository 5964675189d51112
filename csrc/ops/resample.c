// Pooling and resampling of NCHW float32 maps, viewed as n*c independent (h, w) planes; mirrors
// PyTorch's CPU kernels (F.max_pool2d, F.interpolate 'nearest' and 'bilinear' align_corners=True
// with an output size, not a scale factor).
// - max_pool2d: no padding, no dilation, floor mode. Scan is row-major; a value replaces the
//   running max when it is greater or NaN (NaN propagates), so ties keep the first maximum.
//   argmax holds the flat index into the (h, w) plane; the running max starts at -inf with the
//   window's first element as its index, as PyTorch.
// - nearest (legacy): src = min((int64)floorf((float)dst * ((float)in / out)), in - 1).
// - bilinear, align_corners: scale = (float)(in - 1) / (out - 1) (0 when out == 1),
//   src = scale * dst, lo = min(floor(src), in - 1), hi = lo + (lo < in - 1), l = clamp(src - lo).
// - Backward passes accumulate into dx; each thread owns whole planes and visits outputs in
//   scan order, so results are race-free and identical for any thread count.
#include "ops/resample.h"

#include <math.h>

#include "core/check.h"

int64_t max_pool2d_out_size(int64_t in, int64_t k, int64_t s) {
  if (in < k) return 0;  // PyTorch rejects this; an empty output keeps callers memory-safe
  return (in - k) / s + 1;
}

void max_pool2d_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                            const float *x, float *y, int64_t *argmax) {
  masa_assert(k >= 1 && s >= 1);
  int64_t ho = max_pool2d_out_size(h, k, s), wo = max_pool2d_out_size(w, k, s);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < n * c; pl++) {
    const float *xp = x + pl * h * w;
    float *yp = y + pl * ho * wo;
    int64_t *ap = argmax ? argmax + pl * ho * wo : NULL;
    for (int64_t oy = 0; oy < ho; oy++) {
      for (int64_t ox = 0; ox < wo; ox++) {
        int64_t iy0 = oy * s, ix0 = ox * s;
        int64_t best = iy0 * w + ix0;
        float m = -INFINITY;
        for (int64_t iy = iy0; iy < iy0 + k; iy++) {
          for (int64_t ix = ix0; ix < ix0 + k; ix++) {
            float v = xp[iy * w + ix];
            if (v > m || isnan(v)) {
              m = v;
              best = iy * w + ix;
            }
          }
        }
        yp[oy * wo + ox] = m;
        if (ap) ap[oy * wo + ox] = best;
      }
    }
  }
}

void max_pool2d_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s,
                             const int64_t *argmax, const float *dy, float *dx) {
  if (!dx) return;
  masa_assert(argmax != NULL);
  int64_t ho = max_pool2d_out_size(h, k, s), wo = max_pool2d_out_size(w, k, s);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < n * c; pl++) {
    float *dxp = dx + pl * h * w;
    const float *dyp = dy + pl * ho * wo;
    const int64_t *ap = argmax + pl * ho * wo;
    for (int64_t i = 0; i < ho * wo; i++) dxp[ap[i]] += dyp[i];
  }
}

// Source index of each output index along one axis (legacy nearest rule).
static void nearest_index(int64_t in, int64_t out, int64_t *src) {
  float scale = (float)in / (float)out;
  for (int64_t o = 0; o < out; o++) {
    int64_t i = (int64_t)floorf((float)o * scale);
    src[o] = i < in - 1 ? i : in - 1;
  }
}

void upsample_nearest_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                  int64_t wo, const float *x, float *y) {
  int64_t *sy = (int64_t *)mallocCheck((size_t)(ho + wo) * sizeof(int64_t)), *sx = sy + ho;
  nearest_index(h, ho, sy);
  nearest_index(w, wo, sx);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < n * c; pl++) {
    const float *xp = x + pl * h * w;
    float *yp = y + pl * ho * wo;
    for (int64_t oy = 0; oy < ho; oy++) {
      const float *row = xp + sy[oy] * w;
      for (int64_t ox = 0; ox < wo; ox++) yp[oy * wo + ox] = row[sx[ox]];
    }
  }
  free(sy);
}

void upsample_nearest_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                   int64_t wo, const float *dy, float *dx) {
  if (!dx) return;
  int64_t *sy = (int64_t *)mallocCheck((size_t)(ho + wo) * sizeof(int64_t)), *sx = sy + ho;
  nearest_index(h, ho, sy);
  nearest_index(w, wo, sx);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < n * c; pl++) {
    float *dxp = dx + pl * h * w;
    const float *dyp = dy + pl * ho * wo;
    for (int64_t oy = 0; oy < ho; oy++) {
      float *row = dxp + sy[oy] * w;
      for (int64_t ox = 0; ox < wo; ox++) row[sx[ox]] += dyp[oy * wo + ox];
    }
  }
  free(sy);
}

typedef struct {
  int64_t lo, hi;
  float wlo, whi;  // 1 - l and l
} lin_tap;

static void linear_taps_ac(int64_t in, int64_t out, lin_tap *t) {
  float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
  for (int64_t o = 0; o < out; o++) {
    float src = scale * (float)o;
    int64_t lo = (int64_t)floorf(src);
    if (lo > in - 1) lo = in - 1;
    float l = src - (float)lo;
    l = l < 0.0f ? 0.0f : (l > 1.0f ? 1.0f : l);
    t[o].lo = lo;
    t[o].hi = lo + (lo < in - 1 ? 1 : 0);
    t[o].whi = l;
    t[o].wlo = 1.0f - l;
  }
}

void resize_bilinear_ac_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                    int64_t wo, const float *x, float *y) {
  lin_tap *ty = (lin_tap *)mallocCheck((size_t)(ho + wo) * sizeof(lin_tap)), *tx = ty + ho;
  linear_taps_ac(h, ho, ty);
  linear_taps_ac(w, wo, tx);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < n * c; pl++) {
    const float *xp = x + pl * h * w;
    float *yp = y + pl * ho * wo;
    for (int64_t oy = 0; oy < ho; oy++) {
      const lin_tap *a = &ty[oy];
      const float *r0 = xp + a->lo * w, *r1 = xp + a->hi * w;
      for (int64_t ox = 0; ox < wo; ox++) {
        const lin_tap *b = &tx[ox];
        yp[oy * wo + ox] = a->wlo * (b->wlo * r0[b->lo] + b->whi * r0[b->hi]) +
                           a->whi * (b->wlo * r1[b->lo] + b->whi * r1[b->hi]);
      }
    }
  }
  free(ty);
}

void resize_bilinear_ac_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t ho,
                                     int64_t wo, const float *dy, float *dx) {
  if (!dx) return;
  lin_tap *ty = (lin_tap *)mallocCheck((size_t)(ho + wo) * sizeof(lin_tap)), *tx = ty + ho;
  linear_taps_ac(h, ho, ty);
  linear_taps_ac(w, wo, tx);
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < n * c; pl++) {
    float *dxp = dx + pl * h * w;
    const float *dyp = dy + pl * ho * wo;
    for (int64_t oy = 0; oy < ho; oy++) {
      const lin_tap *a = &ty[oy];
      float *r0 = dxp + a->lo * w, *r1 = dxp + a->hi * w;
      for (int64_t ox = 0; ox < wo; ox++) {
        const lin_tap *b = &tx[ox];
        float g = dyp[oy * wo + ox];
        r0[b->lo] += a->wlo * b->wlo * g;
        r0[b->hi] += a->wlo * b->whi * g;
        r1[b->lo] += a->whi * b->wlo * g;
        r1[b->hi] += a->whi * b->whi * g;
      }
    }
  }
  free(ty);
}

// ---- ResNet stem max-pool 3x3 / 2, padding 1 ----

int64_t max_pool3s2p1_out_size(int64_t in) { return (in + 2 - 3) / 2 + 1; }

void max_pool3s2p1_forward_cpu(int64_t planes, int64_t h, int64_t w, const float *x, float *y,
                               int64_t *argmax) {
  int64_t ho = max_pool3s2p1_out_size(h), wo = max_pool3s2p1_out_size(w);
#pragma omp parallel for schedule(static) if (planes * ho * wo > 32768)
  for (int64_t p = 0; p < planes; p++) {
    const float *xp = x + p * h * w;
    for (int64_t oh = 0; oh < ho; oh++)
      for (int64_t ow = 0; ow < wo; ow++) {
        float best = -INFINITY;
        int64_t bi = -1;
        for (int64_t i = oh * 2 - 1; i <= oh * 2 + 1; i++) {
          if (i < 0 || i >= h) continue;
          for (int64_t j = ow * 2 - 1; j <= ow * 2 + 1; j++) {
            if (j < 0 || j >= w) continue;
            float v = xp[i * w + j];
            if (bi < 0 || v > best || isnan(v)) {
              best = v;
              bi = i * w + j;
              if (isnan(v)) goto done;
            }
          }
        }
      done:
        y[(p * ho + oh) * wo + ow] = best;
        if (argmax) argmax[(p * ho + oh) * wo + ow] = bi;
      }
  }
}

void max_pool3s2p1_backward_cpu(int64_t planes, int64_t h, int64_t w, const int64_t *argmax,
                                const float *dy, float *dx) {
  int64_t ho = max_pool3s2p1_out_size(h), wo = max_pool3s2p1_out_size(w);
#pragma omp parallel for schedule(static) if (planes * ho * wo > 32768)
  for (int64_t p = 0; p < planes; p++)
    for (int64_t q = 0; q < ho * wo; q++) dx[p * h * w + argmax[p * ho * wo + q]] += dy[p * ho * wo + q];
}
