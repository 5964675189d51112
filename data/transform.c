// 2-D affine algebra for view geometry (see transform.h for the coordinate convention).
#include "data/transform.h"

#include <math.h>

#include "core/check.h"

affine2d affine_identity(void) { return (affine2d){1, 0, 0, 0, 1, 0}; }

affine2d affine_scale(double sx, double sy) { return (affine2d){sx, 0, 0, 0, sy, 0}; }

affine2d affine_translate(double tx, double ty) { return (affine2d){1, 0, tx, 0, 1, ty}; }

affine2d affine_mul(affine2d p, affine2d q) {
  affine2d r;
  r.a = p.a * q.a + p.b * q.c;
  r.b = p.a * q.b + p.b * q.d;
  r.tx = p.a * q.tx + p.b * q.ty + p.tx;
  r.c = p.c * q.a + p.d * q.c;
  r.d = p.c * q.b + p.d * q.d;
  r.ty = p.c * q.tx + p.d * q.ty + p.ty;
  return r;
}

affine2d affine_inverse(affine2d m) {
  double det = m.a * m.d - m.b * m.c;
  masa_assert(det != 0 && isfinite(det));
  affine2d r;
  r.a = m.d / det;
  r.b = -m.b / det;
  r.c = -m.c / det;
  r.d = m.a / det;
  r.tx = -(r.a * m.tx + r.b * m.ty);
  r.ty = -(r.c * m.tx + r.d * m.ty);
  return r;
}

void affine_apply(const affine2d *m, double x, double y, double *xo, double *yo) {
  *xo = m->a * x + m->b * y + m->tx;
  *yo = m->c * x + m->d * y + m->ty;
}

double affine_max_stretch(const affine2d *m) {
  // Singular values of [[a b][c d]]: sqrt of the eigenvalues of M^T M.
  double p = m->a * m->a + m->c * m->c, q = m->a * m->b + m->c * m->d;
  double r = m->b * m->b + m->d * m->d;
  double mean = 0.5 * (p + r), diff = 0.5 * (p - r);
  return sqrt(mean + sqrt(diff * diff + q * q));
}
