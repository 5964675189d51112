// 2-D affine maps between image frames, in continuous pixel coordinates: pixel (row i, col j)
// covers [j, j+1) x [i, i+1), its centre is (j + 0.5, i + 0.5), boxes are (x1, y1, x2, y2) with
// x2 = last column + 1. A view's whole geometric chain (affine, resize, crop, flip) is one such
// map, so its pixels are resampled from the source once.
#ifndef MASA_TRANSFORM_H
#define MASA_TRANSFORM_H

typedef struct {
  double a, b, tx;  // x' = a x + b y + tx
  double c, d, ty;  // y' = c x + d y + ty
} affine2d;

affine2d affine_identity(void);
affine2d affine_scale(double sx, double sy);
affine2d affine_translate(double tx, double ty);
// Product p * q: apply q first, then p.
affine2d affine_mul(affine2d p, affine2d q);
// Inverse (the map must be invertible; asserted).
affine2d affine_inverse(affine2d m);
void affine_apply(const affine2d *m, double x, double y, double *xo, double *yo);
// Largest singular value of the linear part: destination pixels per source pixel along the
// most stretched direction (decides how far a JPEG may be downscaled while decoding).
double affine_max_stretch(const affine2d *m);

#endif
