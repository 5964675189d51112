// YOLOX HSV jitter on 8-bit RGB pixels, following OpenCV's 8-bit HSV conventions so the result
// matches cv2.cvtColor(BGR2HSV) -> add gains -> cv2.cvtColor(HSV2BGR) as mmdet's
// YOLOXHSVRandomAug does: H in [0, 180) (2 degrees per unit, gain added mod 180), S and V in
// [0, 255] (gains added, clipped). RGB -> HSV uses OpenCV's fixed-point tables (12-bit shift);
// HSV -> RGB its float sector formula, truncated
// (as cv2 4.10 does).
#ifndef MASA_HSV_H
#define MASA_HSV_H

#include <stdint.h>

// Fixed-point division tables; call once (idempotent, thread-safe after the first call returns).
void hsv_init(void);
// rgb (n, 3) in place; gain = (dh, ds, dv). Zero gains still round-trip through 8-bit HSV
// (lossy), exactly like the official transform.
void hsv_jitter_rgb(uint8_t *rgb, int64_t n, const int gain[3]);
// One pixel, for tests: RGB -> OpenCV HSV (H 0..179, S, V 0..255) and back.
void hsv_from_rgb(const uint8_t rgb[3], int hsv[3]);
void hsv_to_rgb(const int hsv[3], uint8_t rgb[3]);  // H in [0, 180)

#endif
