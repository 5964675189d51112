// mmdet DeltaXYWHBBoxCoder (bbox2delta / delta2bbox), boxes (x1, y1, x2, y2) in input pixels,
// float32 in mmdet's operation order so results match PyTorch float32 up to exp/log rounding:
//   encode: p = proposal, g = gt; px = (p.x1 + p.x2) * 0.5, pw = p.x2 - p.x1 (no +1);
//           d = ((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph)); d = (d - mean) / std
//   decode: d = delta * std + mean; dw, dh clamped to +-|log(wh_ratio_clip)| (wh_ratio_clip
//           16/1000, the bound rounded to float as torch.clamp does); g_xy = p_xy + p_wh * d_xy;
//           g_wh = p_wh * exp(d_wh); box = g_xy -+ g_wh * 0.5; with clip_border (default on) and
//           a max shape, x clamped to [0, img_w] and y to [0, img_h] (mmdet's max_shape = img_shape).
// No ctr_clamp (mmdet's add_ctr_clamp defaults to False).
#ifndef MASA_BBOX_CODER_H
#define MASA_BBOX_CODER_H

#include <stdint.h>

typedef struct {
  float means[4], stds[4];
  double wh_ratio_clip;  // 16 / 1000
  int clip_border;       // 1
} delta_xywh_coder;

// RPN: means 0, stds 1; RoI box head: means 0, stds (0.1, 0.1, 0.2, 0.2).
delta_xywh_coder delta_xywh_coder_make(const float means[4], const float stds[4]);

// proposals, gt (n, 4); deltas (n, 4) overwritten.
void delta_xywh_encode(const delta_xywh_coder *c, int64_t n, const float *proposals,
                       const float *gt, float *deltas);
// rois (n, 4) priors; deltas (n, 4); boxes (n, 4) overwritten (may alias deltas).
// img_h, img_w: the image shape to clip to; either <= 0 disables clipping.
void delta_xywh_decode(const delta_xywh_coder *c, int64_t n, const float *rois,
                       const float *deltas, float img_h, float img_w, float *boxes);

#endif
