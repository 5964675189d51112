// Network-input preprocessing as MASA's test pipeline does it (masa-spec §7.1, mmcv / mmdet):
// 1. keep-ratio resize (mmcv.imrescale with a (long, short) scale): f = min(long / max(h, w),
//    short / min(h, w)), new size int(w f + 0.5) x int(h f + 0.5); the recorded scale factor is
//    the actual (w' / w, h' / h);
// 2. bilinear resampling of the uint8 image exactly as cv2.resize(INTER_LINEAR) on x86:
//    half-pixel centres (src = (dst + 0.5) / f - 0.5), 11-bit fixed-point weights, its SIMD
//    rounding of the vertical pass, and its shortcut to INTER_AREA for an exact 2x downscale;
//    edge pixels replicated (bit-exact against cv2 4.11 on random images);
// 3. (x - mean) / std per RGB channel in float32 (mmdet's data preprocessor), then zero padding
//    at the bottom / right up to a multiple of the pad divisor (pad after normalising: 0 in
//    normalised space). A batch is padded to its largest image first, as mmdet's stack_batch.
// Boxes given in source-image pixels are scaled into network pixels by (sx, sy, sx, sy).
#ifndef MASA_PREPROCESS_H
#define MASA_PREPROCESS_H

#include <stdint.h>

#include "core/tensor.h"
#include "data/image.h"

typedef struct {
  int scale_long, scale_short;  // (1024, 1024) SAM / R50 / GDINO-TAO; (1333, 800) Detic
  int pad_divisor;              // 1024 SAM / GDINO; 32 R50 / Detic
  float mean[3], std[3];        // RGB: 123.675 116.28 103.53 / 58.395 57.12 57.375
} preprocess_cfg;

void preprocess_cfg_init(preprocess_cfg *cfg, int scale_long, int scale_short, int pad_divisor);

typedef struct {
  int orig_h, orig_w;       // source image
  int h, w;                 // after the keep-ratio resize (valid region of the network input)
  double scale_x, scale_y;  // w / orig_w, h / orig_h (mmdet's scale_factor)
} preprocess_meta;

// mmcv rescale_size for a (long, short) scale tuple.
void rescale_keep_ratio(int h, int w, int scale_long, int scale_short, int *new_h, int *new_w);

// cv2.resize(src, (dw, dh), interpolation=INTER_LINEAR) for interleaved uint8.
// src (sh, sw, cn), dst (dh, dw, cn); cn 1..4.
void resize_linear_u8(const uint8_t *src, int sh, int sw, int cn, uint8_t *dst, int dh, int dw);

// (x - mean) / std of an RGB image (h, w, 3) into out (3, out_h, out_w), zero elsewhere.
void normalize_pad_rgb(const uint8_t *rgb, int h, int w, const preprocess_cfg *cfg, float *out,
                       int out_h, int out_w);

// Resize + normalise + pad n RGB images into one batch; out is allocated (tensor_alloc,
// (n, 3, H, W), H and W the largest resized size rounded up to the divisor). meta (n) or NULL.
void preprocess_images(const image_u8 *ims, int n, const preprocess_cfg *cfg, tensor *out,
                       preprocess_meta *meta);

// boxes (n, stride) with (x1, y1, x2, y2) first: multiplied in place by (sx, sy, sx, sy) in
// float32, as mmdet multiplies by a float32 scale-factor tensor.
void preprocess_scale_boxes(float *boxes, int64_t n, int64_t stride, const preprocess_meta *m);

#endif
