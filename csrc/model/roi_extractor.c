#include "model/roi_extractor.h"

#include "core/check.h"
#include "ops/dispatch.h"

roi_extractor_cfg roi_extractor_default(int num_levels, const float *strides) {
  masa_assert(num_levels >= 1 && num_levels <= ROI_EXTRACTOR_MAX_LEVELS);
  roi_extractor_cfg c = {0};
  c.num_levels = num_levels;
  for (int l = 0; l < num_levels; l++) c.strides[l] = strides[l];
  c.finest_scale = 56.0f;
  c.out_size = 7;
  c.sampling_ratio = 0;
  c.aligned = 1;
  return c;
}

static roi_align_ml_desc make_desc(const roi_extractor_cfg *cfg, const tensor *feats) {
  masa_assert(cfg->num_levels >= 1 && cfg->num_levels <= ROI_EXTRACTOR_MAX_LEVELS);
  roi_align_ml_desc d = {0};
  d.num_levels = cfg->num_levels;
  d.n = feats[0].shape[0];
  d.c = feats[0].shape[1];
  for (int l = 0; l < cfg->num_levels; l++) {
    masa_assert(feats[l].ndim == 4 && feats[l].shape[0] == d.n && feats[l].shape[1] == d.c);
    d.hs[l] = feats[l].shape[2];
    d.ws[l] = feats[l].shape[3];
    d.strides[l] = cfg->strides[l];
  }
  d.finest_scale = cfg->finest_scale;
  d.out_h = d.out_w = cfg->out_size;
  d.sampling_ratio = cfg->sampling_ratio;
  d.aligned = cfg->aligned;
  return d;
}

void roi_extractor_forward(const device *dv, const roi_extractor_cfg *cfg, const tensor *feats, int64_t k,
                           const float *rois, float *out, int *levels) {
  if (k == 0) return;
  roi_align_ml_desc d = make_desc(cfg, feats);
  const float *ptrs[ROI_EXTRACTOR_MAX_LEVELS];
  for (int l = 0; l < cfg->num_levels; l++) ptrs[l] = feats[l].data;
  roi_align_multilevel_forward(dv, &d, ptrs, k, rois, out, levels);
}

void roi_extractor_backward(const device *dv, const roi_extractor_cfg *cfg, const tensor *feats, int64_t k,
                            const float *rois, const float *dout, tensor *d_feats) {
  if (k == 0 || !d_feats) return;
  roi_align_ml_desc d = make_desc(cfg, feats);
  float *ptrs[ROI_EXTRACTOR_MAX_LEVELS];
  int any = 0;
  for (int l = 0; l < cfg->num_levels; l++) {
    ptrs[l] = d_feats[l].data;
    if (ptrs[l]) {
      masa_assert(tensor_same_shape(&d_feats[l], &feats[l]));
      any = 1;
    }
  }
  if (any) roi_align_multilevel_backward(dv, &d, k, rois, dout, ptrs);
}
