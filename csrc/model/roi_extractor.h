// Multi-level RoI feature extractor, mmdet SingleRoIExtractor with mmcv RoIAlign as MASA
// configures it (track head and RoI box head alike): output 7x7, sampling_ratio 0 (adaptive),
// aligned (half-pixel shift), avg pooling, finest_scale 56; each RoI is pooled from level
// floor(log2(sqrt(w*h) / 56 + 1e-6)) clamped to the levels given (see ops/roi_align.h).
// Only the first num_levels feature maps are used (mmdet passes feats[:num_inputs]).
// RoIs (k, 5) = [batch_index, x1, y1, x2, y2] in network-input pixels (mmdet bbox2roi).
#ifndef MASA_ROI_EXTRACTOR_H
#define MASA_ROI_EXTRACTOR_H

#include <stdint.h>

#include "core/device.h"
#include "core/tensor.h"

#define ROI_EXTRACTOR_MAX_LEVELS 8

typedef struct {
  int num_levels;
  float strides[ROI_EXTRACTOR_MAX_LEVELS];  // featmap_strides: 8,16,32 (GDINO/Detic), 4..32 (SAM/R50)
  float finest_scale;                       // 56
  int64_t out_size;                         // 7
  int sampling_ratio;                       // 0
  int aligned;                              // 1
} roi_extractor_cfg;

// MASA's values for the given strides.
roi_extractor_cfg roi_extractor_default(int num_levels, const float *strides);

// feats[l] (n, c, h_l, w_l), l < cfg->num_levels, all with the same n and c.
// rois (k, 5); out (k, c, out_size, out_size) overwritten; levels (k) or NULL: level per RoI.
void roi_extractor_forward(const device *dv, const roi_extractor_cfg *cfg, const tensor *feats, int64_t k,
                           const float *rois, float *out, int *levels);
// dout (k, c, out_size, out_size). d_feats: array of num_levels tensors shaped like feats, or
// NULL; gradients ACCUMULATE into them; entries whose data is NULL are skipped.
void roi_extractor_backward(const device *dv, const roi_extractor_cfg *cfg, const tensor *feats, int64_t k,
                            const float *rois, const float *dout, tensor *d_feats);

#endif
