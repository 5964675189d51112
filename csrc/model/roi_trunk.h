// The trunk both RoI heads share after the RoI extractor: num_convs ConvModules on the pooled
// (k, c, s, s) features, flatten, then num_fcs fully connected layers each followed by ReLU
// (QuasiDenseEmbedHead and the ConvFC box heads). Each head keeps only its own final layers;
// the trunk's forward and its backward down to the feature maps are shared here.
#ifndef MASA_ROI_TRUNK_H
#define MASA_ROI_TRUNK_H

#include "model/conv_module.h"
#include "model/roi_extractor.h"

typedef struct {
  const roi_extractor_cfg *roi;
  const tensor *feats;             // the maps the RoIs were pooled from
  const float *rois;               // (k, 5)
  const float *roi_feats;          // pooled features (k, c, s, s)
  int64_t k, flat;                 // RoIs; flattened size of the last conv (or RoI) output
  int num_convs;
  const conv_module *convs;        // (num_convs)
  const conv_module_acts *conv_acts;
  int num_fcs;
  int64_t fc_channels;
  const int *fc_w, *fc_b;          // (num_fcs) parameter indices
  const tensor *fcs;               // (num_fcs) post-ReLU outputs
  int trainable;
} roi_trunk;

// Forward of k >= 1 RoIs: pools them from r->feats into *roi_feats (k, c, s, s), runs the convs
// into conv_acts and the fc + ReLU layers into fcs (the head's activation storage, which r's
// conv_acts / fcs / roi_feats must then point at for the backward). Returns the trunk's output
// (k, *width).
const float *roi_trunk_forward(const roi_trunk *r, model_ctx *ctx, tensor *roi_feats,
                               conv_module_acts *conv_acts, tensor *fcs, int64_t *width);
// The trunk's output (input of the head's final layers) and its width.
const float *roi_trunk_output(const roi_trunk *r, int64_t *width);
// dx: gradient of the trunk's output (k, width), used as scratch. Accumulates parameter
// gradients (when trainable) and the feature maps' gradients into d_feats (NULL: not needed).
void roi_trunk_backward(const roi_trunk *r, model_ctx *ctx, float *dx, tensor *d_feats);

#endif
