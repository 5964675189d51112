// The whole MASA network, described once: backbone -> adapter (pyramid + fusion) -> heads, every
// part chosen and sized by the recipe (`model.*` keys, configs/*.cfg), all parameters in one
// param_table under the official state_dict keys:
//   MASA-R50:    backbone.* (ResNet-50 caffe, trainable, frozen BN), masa_adapter.0 (FPN, SyncBN),
//                masa_adapter.1 (DeformFusion), rpn_head, roi_head.bbox_head (Shared4Conv1FC),
//                track_head.
//   MASA-SAM-B:  detector.backbone.* (SAM ViT-B, frozen), masa_adapter.0 (SimpleFPN),
//                masa_adapter.1 (DyHead), rpn_head, roi_head.bbox_head (Shared2FC), track_head.
//   demo:        a narrow ResNet-18 with the R50 adapter and heads at reduced widths.
#ifndef MASA_MODEL_H
#define MASA_MODEL_H

#include "core/config.h"
#include "model/bbox_head.h"
#include "model/deform_fusion.h"
#include "model/dyhead.h"
#include "model/fpn.h"
#include "model/preprocess.h"
#include "model/resnet.h"
#include "model/rpn.h"
#include "model/simplefpn.h"
#include "model/track_head.h"
#include "model/vit_sam.h"

typedef enum { BACKBONE_RESNET = 0, BACKBONE_VIT_SAM = 1 } backbone_kind;
typedef enum { PYRAMID_FPN = 0, PYRAMID_SIMPLEFPN = 1 } pyramid_kind;
typedef enum { FUSION_NONE = 0, FUSION_DEFORM = 1, FUSION_DYHEAD = 2 } fusion_kind;

#define MASA_MAX_LEVELS 6

typedef struct {
  backbone_kind backbone;
  resnet_cfg resnet;
  vit_sam_cfg vit;
  pyramid_kind pyramid;
  norm_kind pyramid_norm;   // FPN: NORM_BN_TRAIN (SyncBN), NORM_BN_FROZEN or NORM_NONE
  int64_t channels;         // adapter width (256)
  int num_outs;             // pyramid levels (5)
  float strides[MASA_MAX_LEVELS];
  fusion_kind fusion;
  int fusion_blocks;        // 3
  int64_t fusion_gn_groups; // 16
  high_offset_mode offset_mode;
  int fix_upsample;
  int zero_init_offset;     // official init zeroes the offset convs
  int adapter_trainable;
  int track_levels;         // RoI levels of the track / box heads (4 for R50 / SAM, 3 for Swin)
  track_head_cfg track;
  int with_rpn;
  int64_t rpn_feat_channels;
  int with_bbox_head;
  bbox_head_cfg bbox;
  preprocess_cfg pre;       // test-time resize / normalise / pad
  const char *backbone_prefix;  // "backbone" or "detector.backbone"
} masa_model_cfg;

extern const cfg_key model_schema[];
// Reads and validates every model.* key; MASA_ERR naming the key on an invalid combination.
int masa_model_cfg_from_config(const config *c, masa_model_cfg *out);

typedef struct {
  masa_model_cfg cfg;
  param_table params;
  resnet resnet;
  vit_sam vit;
  fpn fpn;
  simplefpn sfpn;
  deform_fusion df;
  dyhead dh;
  rpn_head rpn;
  bbox_head bbox;
  track_head track;
} masa_model;

// Builds the model a recipe describes and loads its weights (every key and shape checked; all
// problems listed in one message). MASA_ERR leaves m freed.
int masa_model_load(const config *c, const char *weights, masa_model *m);

// Registers every parameter and allocates the buffers (zeroed).
void masa_model_build(masa_model *m, const masa_model_cfg *cfg);
// The official initialisation of every module (reproducible from seed).
void masa_model_init(masa_model *m, uint64_t seed);
void masa_model_free(masa_model *m);
// Parameter counts per top-level module, printed as a table.
void masa_model_print_summary(const masa_model *m);

// Features: image batch (n, 3, H, W) normalised and padded -> num_outs adapter maps.
typedef struct {
  resnet_acts bb;
  tensor vit_out[VIT_SAM_MAX_OUT];
  fpn_acts *fpn;
  simplefpn_acts *sfpn;
  deform_fusion_acts *df;
  dyhead_acts *dh;
  tensor *pyr;    // pyramid outputs (num_outs)
  tensor *feats;  // adapter outputs (num_outs) = fusion outputs, or pyr without fusion
} masa_feat_acts;

// a must stay at one address until backward; its large parts live in ctx->arena.
void masa_features_forward(const masa_model *m, model_ctx *ctx, const tensor *img,
                           masa_feat_acts *a);
// dfeats: num_outs gradients of a->feats (not modified). Backpropagates into every trainable
// part (adapter, and the backbone when it trains).
void masa_features_backward(const masa_model *m, model_ctx *ctx, const masa_feat_acts *a,
                            const tensor *dfeats);

// Embeddings of k boxes (k, 5: batch index, x1, y1, x2, y2 in network pixels) -> out (k, E).
// rois and out are HOST arrays (uploaded / downloaded here); feats live on ctx's device.
void masa_embed_rois(const masa_model *m, model_ctx *ctx, const tensor *feats, int64_t k,
                     const float *rois, float *out);

#endif
