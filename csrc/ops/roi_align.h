// RoIAlign (avg mode) as mmcv / torchvision with aligned=True (Detectron2 ROIAlignV2):
// - rois (k, 5): [batch_index, x1, y1, x2, y2] in input-image pixels; spatial_scale = 1 / stride.
// - aligned: start = x1 * scale - 0.5; roi size not clamped. Not aligned: size clamped to >= 1.
// - sampling_ratio > 0: that many samples per bin side; 0: adaptive ceil(roi_h / out_h) etc.
// - a sample at y < -1 or y > h (same for x) contributes 0; otherwise y, x clamped to >= 0 and
//   a lower index >= h - 1 snaps to the last row/column (clamp to edge). NaN coordinates give 0.
// - multi-level (mmdet SingleRoIExtractor): level = floor(log2(sqrt(w * h) / finest_scale + 1e-6))
//   clamped to [0, num_levels - 1], w = x2 - x1, h = y2 - y1 (no +1).
#ifndef MASA_ROI_ALIGN_H
#define MASA_ROI_ALIGN_H

#include <stdint.h>

// x (n, c, h, w); rois (k, 5); y (k, c, out_h, out_w)
void roi_align_forward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, const float *x, int64_t k,
                           const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                           int sampling_ratio, int aligned, float *y);
// dy (k, c, out_h, out_w); dx (n, c, h, w) accumulated.
void roi_align_backward_cpu(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k,
                            const float *rois, float spatial_scale, int64_t out_h, int64_t out_w,
                            int sampling_ratio, int aligned, const float *dy, float *dx);

int roi_align_map_level(const float *roi, int num_levels, float finest_scale);

// Multi-level: feats[l] (n, c, hs[l], ws[l]) with stride strides[l]; each RoI pooled from its
// level. levels (k) or NULL: the level used for each RoI.
typedef struct {
  int num_levels;
  int64_t n, c;
  int64_t hs[8], ws[8];
  float strides[8];
  float finest_scale;  // 56 in mmdet
  int64_t out_h, out_w;
  int sampling_ratio;
  int aligned;
} roi_align_ml_desc;

void roi_align_multilevel_forward_cpu(const roi_align_ml_desc *d, const float *const *feats,
                                      int64_t k, const float *rois, float *y, int *levels);
// dfeats[l] accumulated (entries may be NULL).
void roi_align_multilevel_backward_cpu(const roi_align_ml_desc *d, int64_t k, const float *rois,
                                       const float *dy, float *const *dfeats);

#endif
