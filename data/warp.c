// One-pass view rendering (see warp.h). Sampling positions are 16.16 fixed point, stepped
// along each output row from the row's start (|drift| < 0.01 px over 8k pixels); bilinear
// weights are the 11 fraction bits below that. Everything is integer, so results are identical
// on every machine and thread count. Each row is split, per source, into the run whose 2x2 taps
// all lie inside the image (no checks) and the runs at its ends (taps outside read `pad`); both
// paths compute the same values, so where the split falls does not matter.
#include "data/warp.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "data/hsv.h"

#define FBITS 16  // fixed-point fraction of sampling positions
#define WBITS 11  // bilinear weight bits
#define WONE (1 << WBITS)
#define WROUND (1 << (2 * WBITS - 1))

// Fixed-point floor: GCC and Clang shift signed values arithmetically.
static inline int fx_floor(int64_t v) { return (int)(v >> FBITS); }
static inline int fx_weight(int64_t v) { return (int)((v >> (FBITS - WBITS)) & (WONE - 1)); }

static inline void sample_checked(const image_u8 *im, int64_t X, int64_t Y, int pad, uint8_t out[3]) {
  int x0 = fx_floor(X), y0 = fx_floor(Y), wx = fx_weight(X), wy = fx_weight(Y);
  int W = im->w, H = im->h;
  if (x0 + 1 < 0 || y0 + 1 < 0 || x0 >= W || y0 >= H) {
    out[0] = out[1] = out[2] = (uint8_t)pad;
    return;
  }
  int in_x0 = x0 >= 0, in_x1 = x0 + 1 < W, in_y0 = y0 >= 0, in_y1 = y0 + 1 < H;
  for (int c = 0; c < 3; c++) {
    int v00 = in_x0 && in_y0 ? im->px[((int64_t)y0 * W + x0) * 3 + c] : pad;
    int v01 = in_x1 && in_y0 ? im->px[((int64_t)y0 * W + x0 + 1) * 3 + c] : pad;
    int v10 = in_x0 && in_y1 ? im->px[((int64_t)(y0 + 1) * W + x0) * 3 + c] : pad;
    int v11 = in_x1 && in_y1 ? im->px[((int64_t)(y0 + 1) * W + x0 + 1) * 3 + c] : pad;
    int top = v00 * (WONE - wx) + v01 * wx, bot = v10 * (WONE - wx) + v11 * wx;
    out[c] = (uint8_t)((top * (WONE - wy) + bot * wy + WROUND) >> (2 * WBITS));
  }
}

// Range [*lo, *hi) of j in [0, n) where 0 <= X(j) < (W-1) and 0 <= Y(j) < (H-1) in fixed point,
// X(j) = X0 + j dX: the interior run. Estimated in double, then nudged until exact.
static void interior_run(int64_t X0, int64_t dX, int64_t Y0, int64_t dY, int W, int H, int n, int *lo, int *hi) {
  double a = 0, b = n;
  const int64_t lim[2] = {(int64_t)(W - 1) << FBITS, (int64_t)(H - 1) << FBITS};
  const int64_t s[2] = {X0, Y0}, d[2] = {dX, dY};
  for (int k = 0; k < 2; k++) {
    if (d[k] == 0) {
      if (s[k] < 0 || s[k] >= lim[k]) a = b = 0;
      continue;
    }
    double t0 = (0 - (double)s[k]) / (double)d[k], t1 = ((double)lim[k] - (double)s[k]) / (double)d[k];
    if (t0 > t1) {
      double t = t0;
      t0 = t1, t1 = t;
    }
    a = fmax(a, ceil(t0)), b = fmin(b, floor(t1) + 1);
  }
  int l = (int)fmin(fmax(a, 0), n), h = (int)fmax(fmin(b, n), l);
#define INSIDE(j) ((X0 + (int64_t)(j) * dX) >= 0 && (X0 + (int64_t)(j) * dX) < lim[0] && \
                   (Y0 + (int64_t)(j) * dY) >= 0 && (Y0 + (int64_t)(j) * dY) < lim[1])
  while (l < h && !INSIDE(l)) l++;
  while (h > l && !INSIDE(h - 1)) h--;
#undef INSIDE
  *lo = l, *hi = h;
}

// Samples n pixels of one row of `src` into out (n, 3).
static void sample_row(const warp_source *src, int i, int n, int pad, uint8_t *out) {
  const affine2d *g = &src->to_img;
  const double one = (double)(1 << FBITS);
  int64_t X0 = llround((g->b * i + g->tx) * one), Y0 = llround((g->d * i + g->ty) * one);
  int64_t dX = llround(g->a * one), dY = llround(g->c * one);
  const image_u8 *im = src->img;
  int lo, hi;
  interior_run(X0, dX, Y0, dY, im->w, im->h, n, &lo, &hi);
  for (int j = 0; j < lo; j++) sample_checked(im, X0 + j * dX, Y0 + j * dY, pad, out + 3 * j);
  const int64_t stride = (int64_t)im->w * 3;
  for (int j = lo; j < hi; j++) {
    int64_t X = X0 + j * dX, Y = Y0 + j * dY;
    int x0 = fx_floor(X), y0 = fx_floor(Y), wx = fx_weight(X), wy = fx_weight(Y);
    const uint8_t *p = im->px + (int64_t)y0 * stride + (int64_t)x0 * 3, *q = p + stride;
    uint8_t *o = out + 3 * j;
    for (int c = 0; c < 3; c++) {
      int top = p[c] * (WONE - wx) + p[c + 3] * wx, bot = q[c] * (WONE - wx) + q[c + 3] * wx;
      o[c] = (uint8_t)((top * (WONE - wy) + bot * wy + WROUND) >> (2 * WBITS));
    }
  }
  for (int j = hi > lo ? hi : lo; j < n; j++) sample_checked(im, X0 + j * dX, Y0 + j * dY, pad, out + 3 * j);
}

void warp_view(int S, int cw, int ch, int pad, const warp_source *main, const warp_source *mix,
               const int hsv_gain[3], const float mean[3], const float std[3], float *img,
               uint8_t *px) {
  masa_assert(cw >= 1 && ch >= 1 && cw <= S && ch <= S && S <= 8192);
  float lut[3][256];
  for (int c = 0; c < 3; c++)
    for (int v = 0; v < 256; v++) lut[c][v] = ((float)v - mean[c]) / std[c];
  int64_t plane = (int64_t)S * S;
  uint8_t row[3 * 8192], mrow[3 * 8192];
  for (int i = 0; i < S; i++) {
    int n = i < ch ? cw : 0;  // content pixels in this row
    if (n) {
      sample_row(main, i, n, pad, row);
      if (mix) {
        sample_row(mix, i, n, pad, mrow);
        for (int j = 0; j < 3 * n; j++) row[j] = (uint8_t)((row[j] + mrow[j]) >> 1);
      }
      if (hsv_gain) hsv_jitter_rgb(row, n, hsv_gain);
    }
    memset(row + 3 * n, pad, (size_t)(S - n) * 3);
    if (px) memcpy(px + (int64_t)i * S * 3, row, (size_t)S * 3);
    if (img) {
      float *r0 = img + (int64_t)i * S, *r1 = r0 + plane, *r2 = r1 + plane;
      for (int j = 0; j < S; j++) {
        r0[j] = lut[0][row[3 * j]];
        r1[j] = lut[1][row[3 * j + 1]];
        r2[j] = lut[2][row[3 * j + 2]];
      }
    }
  }
}
