// Boxes of instances under a view's affine map, in continuous pixel coordinates
// (data/transform.h). A mask is a union of axis-aligned source rectangles (its column runs,
// data/rle.h); the affine image of each is a parallelogram, so the tight box of the mapped mask
// clipped to the view's content [0, cw] x [0, ch] is the union of the boxes of the clipped
// parallelograms: exact, with no rasterisation.
#ifndef MASA_BOXES_H
#define MASA_BOXES_H

#include <stdint.h>

#include "data/rle.h"
#include "data/transform.h"

// A mask as source rectangles [x0, x1) x [y0, y1) (integer pixel edges), built once per sample
// and reused by both views and every redraw.
typedef struct {
  int32_t *r;  // (n, 4) x0, y0, x1, y1
  int64_t n;
} mask_rects;

// Column runs of a column-major RLE; runs that wrap across columns are split (full middle
// columns become one rectangle).
void mask_rects_from_rle(const rle *m, mask_rects *out);
void mask_rects_free(mask_rects *m);

// Tight box (x1, y1, x2, y2) of T(union of rects) clipped to [0, cw] x [0, ch]; 0 if nothing
// of it has positive area inside.
int box_exact(const mask_rects *m, const affine2d *T, double cw, double ch, double box[4]);
// The same for one box (boxes-only annotations in exact mode).
int box_exact_of_box(const double in[4], const affine2d *T, double cw, double ch, double box[4]);
// Official arithmetic: the enclosing box of the four projected corners of `in`.
void box_project_corners(const double in[4], const affine2d *T, double out[4]);
// mmdet's is_inside: x1 < w, y1 < h, x2 > 0, y2 > 0.
int box_is_inside(const double b[4], double w, double h);
void box_clip(double b[4], double w, double h);

#endif
