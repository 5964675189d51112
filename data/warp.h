// Renders a view's pixels in one pass: for each pixel of the content region, bilinear samples
// of the main image (and of the mixup image, blended 0.5/0.5 with uint8 truncation), the HSV
// jitter, then normalisation to float CHW. Sampling convention: `to_img` maps view pixel INDEX
// coordinates (centre of pixel (i, j) = (j, i)) to image index coordinates; taps outside the
// image read the pad value (OpenCV BORDER_CONSTANT). Pixels outside [0, cw) x [0, ch) are pad.
#ifndef MASA_WARP_H
#define MASA_WARP_H

#include <stdint.h>

#include "data/image.h"
#include "data/transform.h"

typedef struct {
  const image_u8 *img;
  affine2d to_img;
} warp_source;

// img (3, S, S) normalised RGB, px (S, S, 3) uint8 RGB; either may be NULL. mix may be NULL.
// hsv_gain NULL: no HSV step (with gains 0 the 8-bit HSV round trip still happens).
void warp_view(int S, int cw, int ch, int pad, const warp_source *main, const warp_source *mix,
               const int hsv_gain[3], const float mean[3], const float std[3], float *img,
               uint8_t *px);

#endif
