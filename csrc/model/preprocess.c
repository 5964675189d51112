#include "model/preprocess.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"

void preprocess_cfg_init(preprocess_cfg *cfg, int scale_long, int scale_short, int pad_divisor) {
  static const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
  cfg->scale_long = scale_long > scale_short ? scale_long : scale_short;
  cfg->scale_short = scale_long > scale_short ? scale_short : scale_long;
  cfg->pad_divisor = pad_divisor;
  memcpy(cfg->mean, mean, sizeof mean);
  memcpy(cfg->std, std, sizeof std);
}

void rescale_keep_ratio(int h, int w, int scale_long, int scale_short, int *new_h, int *new_w) {
  masa_assert(h > 0 && w > 0 && scale_long > 0 && scale_short > 0);
  double lo = scale_long > scale_short ? scale_long : scale_short;
  double sh = scale_long > scale_short ? scale_short : scale_long;
  double f = fmin(lo / (double)(h > w ? h : w), sh / (double)(h < w ? h : w));
  *new_w = (int)((double)w * f + 0.5);
  *new_h = (int)((double)h * f + 0.5);
}

// ---------------------------------------------------------------------------------------------
// cv2.resize INTER_LINEAR, uint8 (OpenCV 4.x imgproc/resize.cpp semantics, x86 build).

#define COEF_BITS 11
#define COEF_SCALE (1 << COEF_BITS)

static inline uint8_t sat_u8(int v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }
// cvRound / saturate_cast<short>(float): round half to even (default rounding mode).
static inline int round_even(float v) { return (int)lrintf(v); }

// 2x downscale: OpenCV switches INTER_LINEAR to its fast INTER_AREA path, the mean of each 2x2
// block rounded as its SIMD code does, (sum + 2) >> 2 (checked against cv2 on every element).
static void resize_area2_u8(const uint8_t *src, int sw, int cn, uint8_t *dst, int dh, int dw) {
  int64_t W = (int64_t)dw * cn;
#pragma omp parallel for schedule(static) if ((int64_t)dh * W > 65536)
  for (int dy = 0; dy < dh; dy++) {
    const uint8_t *s0 = src + (int64_t)(2 * dy) * sw * cn, *s1 = s0 + (int64_t)sw * cn;
    uint8_t *d = dst + (int64_t)dy * W;
    for (int64_t x = 0; x < W; x++) {
      int64_t o = 2 * (x / cn) * cn + x % cn;
      d[x] = (uint8_t)((s0[o] + s0[o + cn] + s1[o] + s1[o + cn] + 2) >> 2);
    }
  }
}

void resize_linear_u8(const uint8_t *src, int sh, int sw, int cn, uint8_t *dst, int dh, int dw) {
  masa_assert(sh > 0 && sw > 0 && dh > 0 && dw > 0 && cn >= 1 && cn <= 4);
  if (sh == dh && sw == dw) {
    memcpy(dst, src, (size_t)sh * sw * cn);
    return;
  }
  double inv_sx = (double)dw / sw, inv_sy = (double)dh / sh;
  double scale_x = 1.0 / inv_sx, scale_y = 1.0 / inv_sy;
  int isx = (int)lrint(scale_x), isy = (int)lrint(scale_y);
  if (fabs(scale_x - isx) < DBL_EPSILON && fabs(scale_y - isy) < DBL_EPSILON && isx == 2 &&
      isy == 2) {
    resize_area2_u8(src, sw, cn, dst, dh, dw);
    return;
  }
  // Horizontal taps: source pixel and 11-bit weights per destination column.
  int *xofs = mallocCheck((size_t)dw * sizeof(int));
  short *alpha = mallocCheck((size_t)dw * 2 * sizeof(short));
  for (int dx = 0; dx < dw; dx++) {
    float fx = (float)((dx + 0.5) * scale_x - 0.5);
    int sx = (int)floorf(fx);
    fx -= (float)sx;
    if (sx < 0) fx = 0, sx = 0;
    if (sx >= sw - 1) fx = 0, sx = sw - 1;
    xofs[dx] = sx;
    alpha[2 * dx] = (short)round_even((1.f - fx) * COEF_SCALE);
    alpha[2 * dx + 1] = (short)round_even(fx * COEF_SCALE);
  }
  int64_t W = (int64_t)dw * cn;
  // Vertical pass as OpenCV's SIMD code computes it (which, in the cv2 4.11 x86 build we checked,
  // covers every element of a row, tails included): ((S >> 4) * beta) >> 16 per row, summed,
  // rounded by (v + 2) >> 2. (The plain-C formula (S0 b0 + S1 b1 + 2^21) >> 22 differs by 1 in
  // about 0.2% of the elements.)
#pragma omp parallel
  {
    // Two horizontally resampled rows, tagged with their source row (reused by the next dy).
    int *buf[2] = {mallocCheck((size_t)W * sizeof(int)), mallocCheck((size_t)W * sizeof(int))};
    int tag[2] = {-1, -1};
#pragma omp for schedule(static)
    for (int dy = 0; dy < dh; dy++) {
      float fy = (float)((dy + 0.5) * scale_y - 0.5);
      int sy = (int)floorf(fy);
      fy -= (float)sy;
      int b0 = round_even((1.f - fy) * COEF_SCALE), b1 = round_even(fy * COEF_SCALE);
      int need[2] = {sy < 0 ? 0 : sy >= sh ? sh - 1 : sy,
                     sy + 1 < 0 ? 0 : sy + 1 >= sh ? sh - 1 : sy + 1};
      int idx[2];
      for (int k = 0; k < 2; k++) {
        int j = tag[0] == need[k] ? 0 : tag[1] == need[k] ? 1 : -1;
        if (j < 0) {
          j = k == 0 ? (tag[0] == need[1] ? 1 : 0) : 1 - idx[0];
          const uint8_t *s = src + (int64_t)need[k] * sw * cn;
          int *hd = buf[j];
          for (int dx = 0; dx < dw; dx++) {
            const uint8_t *p = s + (int64_t)xofs[dx] * cn;
            const uint8_t *q = xofs[dx] + 1 < sw ? p + cn : p;
            int a0 = alpha[2 * dx], a1 = alpha[2 * dx + 1];
            for (int ch = 0; ch < cn; ch++) hd[dx * cn + ch] = p[ch] * a0 + q[ch] * a1;
          }
          tag[j] = need[k];
        }
        idx[k] = j;
      }
      const int *h0 = buf[idx[0]], *h1 = buf[idx[1]];
      uint8_t *d = dst + (int64_t)dy * W;
      for (int64_t x = 0; x < W; x++) {
        int v = (((h0[x] >> 4) * b0) >> 16) + (((h1[x] >> 4) * b1) >> 16);
        d[x] = sat_u8((v + 2) >> 2);
      }
    }
    free(buf[0]);
    free(buf[1]);
  }
  free(xofs);
  free(alpha);
}

// ---------------------------------------------------------------------------------------------

void normalize_pad_rgb(const uint8_t *rgb, int h, int w, const preprocess_cfg *cfg, float *out,
                       int out_h, int out_w) {
  masa_assert(h <= out_h && w <= out_w);
  int64_t plane = (int64_t)out_h * out_w;
  for (int c = 0; c < 3; c++) {
    float mean = cfg->mean[c], std = cfg->std[c];
    float *o = out + c * plane;
#pragma omp parallel for schedule(static) if (plane > 65536)
    for (int y = 0; y < out_h; y++) {
      float *orow = o + (int64_t)y * out_w;
      if (y >= h) {
        memset(orow, 0, (size_t)out_w * sizeof(float));
        continue;
      }
      const uint8_t *srow = rgb + (int64_t)y * w * 3 + c;
      for (int x = 0; x < w; x++) orow[x] = ((float)srow[3 * x] - mean) / std;
      for (int x = w; x < out_w; x++) orow[x] = 0.0f;
    }
  }
}

void preprocess_images(const image_u8 *ims, int n, const preprocess_cfg *cfg, tensor *out,
                       preprocess_meta *meta) {
  masa_assert(n > 0 && cfg->pad_divisor > 0);
  preprocess_meta *mt = meta ? meta : mallocCheck((size_t)n * sizeof *mt);
  int maxh = 0, maxw = 0;
  for (int i = 0; i < n; i++) {
    preprocess_meta *m = &mt[i];
    m->orig_h = ims[i].h, m->orig_w = ims[i].w;
    rescale_keep_ratio(ims[i].h, ims[i].w, cfg->scale_long, cfg->scale_short, &m->h, &m->w);
    m->scale_x = (double)m->w / ims[i].w;
    m->scale_y = (double)m->h / ims[i].h;
    if (m->h > maxh) maxh = m->h;
    if (m->w > maxw) maxw = m->w;
  }
  int d = cfg->pad_divisor;
  int H = (maxh + d - 1) / d * d, W = (maxw + d - 1) / d * d;
  *out = tensor_alloc4(n, 3, H, W);
  for (int i = 0; i < n; i++) {
    const preprocess_meta *m = &mt[i];
    const uint8_t *px = ims[i].px;
    uint8_t *tmp = NULL;
    if (m->h != ims[i].h || m->w != ims[i].w) {
      tmp = mallocCheck((size_t)m->h * m->w * 3);
      resize_linear_u8(ims[i].px, ims[i].h, ims[i].w, 3, tmp, m->h, m->w);
      px = tmp;
    }
    normalize_pad_rgb(px, m->h, m->w, cfg, out->data + (int64_t)i * 3 * H * W, H, W);
    free(tmp);
  }
  if (!meta) free(mt);
}

void preprocess_scale_boxes(float *boxes, int64_t n, int64_t stride, const preprocess_meta *m) {
  masa_assert(stride >= 4);
  float sx = (float)m->scale_x, sy = (float)m->scale_y;
  for (int64_t i = 0; i < n; i++) {
    float *b = boxes + i * stride;
    b[0] *= sx, b[1] *= sy, b[2] *= sx, b[3] *= sy;
  }
}
