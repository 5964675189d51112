// MASA track head (masa_track_head.py / mmdet QuasiDenseTrackHead, masa-spec §2): the multi-level
// RoI extractor (model/roi_extractor.h) followed by mmdet's QuasiDenseEmbedHead:
//   roi feats (k, c_in, 7, 7)
//   -> num_convs x [conv3x3 pad 1 (no bias) -> GroupNorm(gn_groups, eps 1e-5) -> ReLU]
//   -> flatten (k, c * 49), index c*49 + y*7 + x
//   -> num_fcs x [fc -> ReLU] -> fc_embed: (k, embed_channels), raw (no L2 norm, no temperature).
// Parameter keys (prefix "track_head" in MASA):
//   <prefix>.embed_head.convs.{i}.conv.weight, .convs.{i}.gn.{weight,bias},
//   <prefix>.embed_head.fcs.{i}.{weight,bias}, <prefix>.embed_head.fc_embed.{weight,bias}
// The extractor has no parameters. Gradients flow into the feature maps (the adapter trains).
#ifndef MASA_TRACK_HEAD_H
#define MASA_TRACK_HEAD_H

#include "model/conv_module.h"
#include "model/module.h"
#include "model/roi_extractor.h"

#define TRACK_HEAD_MAX_CONVS 8
#define TRACK_HEAD_MAX_FCS 4

typedef struct {
  roi_extractor_cfg roi;
  int64_t in_channels;     // 256 (adapter output)
  int num_convs;           // 4
  int64_t conv_channels;   // 256
  int64_t gn_groups;       // 32
  int num_fcs;             // 1
  int64_t fc_channels;     // 1024
  int64_t embed_channels;  // 256
  int trainable;
} track_head_cfg;

typedef struct {
  track_head_cfg cfg;
  conv_module convs[TRACK_HEAD_MAX_CONVS];
  int fc_w[TRACK_HEAD_MAX_FCS], fc_b[TRACK_HEAD_MAX_FCS];
  int embed_w, embed_b;
} track_head;

// Everything backward needs. Holds pointers into itself: do not copy it after the forward.
typedef struct {
  const tensor *feats;  // by reference (num_levels maps)
  const float *rois;    // by reference, (k, 5)
  int64_t k;
  tensor roi_feats;                                // (k, c_in, 7, 7)
  conv_module_acts convs[TRACK_HEAD_MAX_CONVS];    // convs[i].out (k, conv_channels, 7, 7)
  tensor fcs[TRACK_HEAD_MAX_FCS];                  // post-ReLU (k, fc_channels)
  tensor embed;                                    // (k, embed_channels)
} track_head_acts;

// MASA's configuration (256 channels, 4 convs, GN 32, 1 fc of 1024, embed 256) for the given
// featmap strides (8,16,32 for GDINO/Detic; 4,8,16,32 for SAM/R50).
track_head_cfg track_head_default_cfg(int num_levels, const float *strides);
void track_head_register(track_head *m, param_table *t, const char *prefix,
                         const track_head_cfg *cfg);
// QuasiDenseEmbedHead.init_weights: convs as mmcv ConvModule (Kaiming-normal fan_out, GN 1/0);
// fcs Xavier-uniform, bias 0; fc_embed Normal(0, 0.01), bias 0.
void track_head_init(const track_head *m, param_table *t, uint64_t seed);
// feats: cfg.roi.num_levels maps (n, c_in, h_l, w_l); rois (k, 5) in input pixels; k may be 0.
// Result in a->embed (k, embed_channels).
void track_head_forward(const track_head *m, model_ctx *ctx, const tensor *feats, int64_t k,
                        const float *rois, track_head_acts *a);
// d_embed (k, embed_channels). d_feats: num_levels tensors shaped like feats (accumulated) or
// NULL; entries with NULL data are skipped. Parameter gradients accumulate when trainable.
void track_head_backward(const track_head *m, model_ctx *ctx, const track_head_acts *a,
                         const tensor *d_embed, tensor *d_feats);

#endif
