// Exact boxes of affinely mapped masks (see boxes.h).
#include "data/boxes.h"

#include <math.h>
#include <stdlib.h>

#include "core/check.h"

void mask_rects_from_rle(const rle *m, mask_rects *out) {
  int64_t cap = m->m / 2 + 4, n = 0, h = m->h, pos = 0;
  int32_t *r = mallocCheck((size_t)cap * 4 * sizeof(int32_t));
  for (int64_t i = 0; i < m->m; i++) {
    int64_t cnt = m->cnts[i];
    if ((i & 1) && cnt > 0) {  // a run of ones: [pos, pos + cnt) in column-major order
      int64_t s = pos, e = pos + cnt - 1;
      int64_t xa = s / h, ya = s % h, xb = e / h, yb = e % h;
      if (n + 3 > cap) {
        cap = 2 * cap + 3;
        r = realloc(r, (size_t)cap * 4 * sizeof(int32_t));
        masa_assert(r != NULL);
      }
#define PUSH(X0, Y0, X1, Y1) \
  (r[4 * n] = (int32_t)(X0), r[4 * n + 1] = (int32_t)(Y0), r[4 * n + 2] = (int32_t)(X1), \
   r[4 * n + 3] = (int32_t)(Y1), n++)
      if (xa == xb) {
        PUSH(xa, ya, xa + 1, yb + 1);
      } else {
        PUSH(xa, ya, xa + 1, h);
        if (xb > xa + 1) PUSH(xa + 1, 0, xb, h);
        PUSH(xb, 0, xb + 1, yb + 1);
      }
#undef PUSH
    }
    pos += cnt;
  }
  out->r = r;
  out->n = n;
}

void mask_rects_free(mask_rects *m) {
  free(m->r);
  m->r = NULL;
  m->n = 0;
}

typedef struct {
  double x1, y1, x2, y2;
  int any;
} box_acc;

static inline void acc_add(box_acc *a, double x1, double y1, double x2, double y2) {
  if (!a->any) {
    a->x1 = x1, a->y1 = y1, a->x2 = x2, a->y2 = y2, a->any = 1;
    return;
  }
  if (x1 < a->x1) a->x1 = x1;
  if (y1 < a->y1) a->y1 = y1;
  if (x2 > a->x2) a->x2 = x2;
  if (y2 > a->y2) a->y2 = y2;
}

// Sutherland-Hodgman against one half-plane: keep points with sign * (coord - lim) <= 0.
static int clip_half(const double *in, int n, double *out, int axis, double lim, double sign) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    const double *p = in + 2 * i, *q = in + 2 * ((i + 1) % n);
    double dp = sign * (p[axis] - lim), dq = sign * (q[axis] - lim);
    if (dp <= 0) out[2 * m] = p[0], out[2 * m + 1] = p[1], m++;
    if ((dp < 0 && dq > 0) || (dp > 0 && dq < 0)) {
      double t = dp / (dp - dq);
      out[2 * m] = p[0] + t * (q[0] - p[0]);
      out[2 * m + 1] = p[1] + t * (q[1] - p[1]);
      m++;
    }
  }
  return m;
}

// Adds the box of T([x0, x1) x [y0, y1)) clipped to [0, cw] x [0, ch].
static void acc_rect(box_acc *a, const affine2d *T, double x0, double y0, double x1, double y1,
                     double cw, double ch) {
  double ax0 = T->a * x0, ax1 = T->a * x1, by0 = T->b * y0, by1 = T->b * y1;
  double cx0 = T->c * x0, cx1 = T->c * x1, dy0 = T->d * y0, dy1 = T->d * y1;
  double bx1 = T->tx + fmin(ax0, ax1) + fmin(by0, by1), bx2 = T->tx + fmax(ax0, ax1) + fmax(by0, by1);
  double by1_ = T->ty + fmin(cx0, cx1) + fmin(dy0, dy1), by2 = T->ty + fmax(cx0, cx1) + fmax(dy0, dy1);
  if (bx2 <= 0 || by2 <= 0 || bx1 >= cw || by1_ >= ch) return;  // outside (or touching only)
  if (bx1 >= 0 && by1_ >= 0 && bx2 <= cw && by2 <= ch) {
    acc_add(a, bx1, by1_, bx2, by2);
    return;
  }
  double p[16] = {ax0 + by0 + T->tx, cx0 + dy0 + T->ty, ax1 + by0 + T->tx, cx1 + dy0 + T->ty,
                  ax1 + by1 + T->tx, cx1 + dy1 + T->ty, ax0 + by1 + T->tx, cx0 + dy1 + T->ty};
  double q[16];
  int n = 4;
  n = clip_half(p, n, q, 0, 0, -1);
  n = clip_half(q, n, p, 0, cw, 1);
  n = clip_half(p, n, q, 1, 0, -1);
  n = clip_half(q, n, p, 1, ch, 1);
  if (n < 3) return;
  double x_lo = p[0], x_hi = p[0], y_lo = p[1], y_hi = p[1];
  for (int i = 1; i < n; i++) {
    x_lo = fmin(x_lo, p[2 * i]), x_hi = fmax(x_hi, p[2 * i]);
    y_lo = fmin(y_lo, p[2 * i + 1]), y_hi = fmax(y_hi, p[2 * i + 1]);
  }
  if (x_hi > x_lo && y_hi > y_lo) acc_add(a, x_lo, y_lo, x_hi, y_hi);
}

static int acc_out(const box_acc *a, double box[4]) {
  if (!a->any) return 0;
  box[0] = a->x1, box[1] = a->y1, box[2] = a->x2, box[3] = a->y2;
  return 1;
}

int box_exact(const mask_rects *m, const affine2d *T, double cw, double ch, double box[4]) {
  box_acc a = {0, 0, 0, 0, 0};
  for (int64_t i = 0; i < m->n; i++) {
    const int32_t *r = m->r + 4 * i;
    acc_rect(&a, T, r[0], r[1], r[2], r[3], cw, ch);
  }
  return acc_out(&a, box);
}

int box_exact_of_box(const double in[4], const affine2d *T, double cw, double ch, double box[4]) {
  box_acc a = {0, 0, 0, 0, 0};
  acc_rect(&a, T, in[0], in[1], in[2], in[3], cw, ch);
  return acc_out(&a, box);
}

void box_project_corners(const double in[4], const affine2d *T, double out[4]) {
  double xs[4] = {in[0], in[2], in[2], in[0]}, ys[4] = {in[1], in[1], in[3], in[3]};
  for (int i = 0; i < 4; i++) {
    double x, y;
    affine_apply(T, xs[i], ys[i], &x, &y);
    if (i == 0 || x < out[0]) out[0] = x;
    if (i == 0 || y < out[1]) out[1] = y;
    if (i == 0 || x > out[2]) out[2] = x;
    if (i == 0 || y > out[3]) out[3] = y;
  }
}

int box_is_inside(const double b[4], double w, double h) {
  return b[0] < w && b[1] < h && b[2] > 0 && b[3] > 0;
}

void box_clip(double b[4], double w, double h) {
  b[0] = fmin(fmax(b[0], 0), w), b[2] = fmin(fmax(b[2], 0), w);
  b[1] = fmin(fmax(b[1], 0), h), b[3] = fmin(fmax(b[3], 0), h);
}
