// MASA's RoI box head (mmdet StandardRoIHead's bbox branch, masa-spec §3): the multi-level RoI
// extractor (model/roi_extractor.h) followed by a ConvFCBBoxHead:
//   Shared2FCBBoxHead (GDINO/Detic/SAM): flatten (k, c*49) -> [fc 1024 -> ReLU] x 2
//   Shared4Conv1FCBBoxHead (R50): [conv3x3 pad 1 (no bias) -> BN -> ReLU] x 4 -> flatten
//                                 -> fc 1024 -> ReLU
//   then fc_cls -> num_classes + 1 logits (softmax; the LAST column is background) and
//   fc_reg -> 4 class-agnostic deltas (reg_class_agnostic).
// Keys (prefix "roi_head.bbox_head"): shared_convs.{i}.conv.weight, shared_convs.{i}.bn.*,
// shared_fcs.{i}.{weight,bias}, fc_cls.{weight,bias}, fc_reg.{weight,bias}.
//
// Test-time post-processing (mmdet BBoxHead._predict_by_feat_single + multiclass_nms), per image:
// scores = softmax(cls); boxes = decode(roi, reg) with means 0, stds (0.1, 0.1, 0.2, 0.2), clipped
// to img_shape; candidates (roi i, class c < num_classes) in order i * num_classes + c with
// score > score_thr (strict); batched NMS (IoU 0.5) with the class as group id, class_agnostic
// per config (MASA: on), split_thr 100000; the first max_per_img (50) kept.
#ifndef MASA_BBOX_HEAD_H
#define MASA_BBOX_HEAD_H

#include "model/bbox_coder.h"
#include "model/conv_module.h"
#include "model/module.h"
#include "model/roi_extractor.h"

typedef enum { BBOX_HEAD_SHARED2FC = 0, BBOX_HEAD_SHARED4CONV1FC } bbox_head_kind;

#define BBOX_HEAD_MAX_CONVS 4
#define BBOX_HEAD_MAX_FCS 2

typedef struct {
  bbox_head_kind kind;
  roi_extractor_cfg roi;
  int64_t in_channels;    // 256
  int64_t conv_channels;  // 256 (Shared4Conv1FC)
  norm_kind conv_norm;    // Shared4Conv1FC: NORM_BN_TRAIN (SyncBN, trains) or NORM_BN_FROZEN
  int64_t fc_channels;    // 1024
  int num_classes;        // 1
  int trainable;
} bbox_head_cfg;

typedef struct {
  bbox_head_cfg cfg;
  int num_convs, num_fcs;
  conv_module convs[BBOX_HEAD_MAX_CONVS];
  int fc_w[BBOX_HEAD_MAX_FCS], fc_b[BBOX_HEAD_MAX_FCS];
  int cls_w, cls_b, reg_w, reg_b;
} bbox_head;

// Holds pointers into itself: do not copy it after the forward.
typedef struct {
  const tensor *feats;  // by reference
  const float *rois;    // by reference, (k, 5)
  int64_t k;
  tensor roi_feats;                             // (k, in_channels, 7, 7)
  conv_module_acts convs[BBOX_HEAD_MAX_CONVS];  // Shared4Conv1FC
  tensor fcs[BBOX_HEAD_MAX_FCS];                // post-ReLU (k, fc_channels)
  tensor cls;                                   // (k, num_classes + 1) logits
  tensor reg;                                   // (k, 4) deltas
} bbox_head_acts;

bbox_head_cfg bbox_head_default_cfg(bbox_head_kind kind, int num_levels, const float *strides);
void bbox_head_register(bbox_head *m, param_table *t, const char *prefix,
                        const bbox_head_cfg *cfg);
// mmdet ConvFCBBoxHead/BBoxHead init_cfg: shared_fcs Xavier-uniform, bias 0; fc_cls Normal(0,
// 0.01) and fc_reg Normal(0, 0.001), bias 0; shared_convs as mmcv ConvModule (Kaiming, BN 1/0).
void bbox_head_init(const bbox_head *m, param_table *t, uint64_t seed);
// feats: cfg.roi.num_levels maps; rois (k, 5), k may be 0. Results in a->cls, a->reg.
void bbox_head_forward(const bbox_head *m, model_ctx *ctx, const tensor *feats, int64_t k,
                       const float *rois, bbox_head_acts *a);
// d_cls (k, num_classes + 1) and d_reg (k, 4), either may be NULL. d_feats: num_levels tensors
// (accumulated) or NULL.
void bbox_head_backward(const bbox_head *m, model_ctx *ctx, const bbox_head_acts *a,
                        const tensor *d_cls, const tensor *d_reg, tensor *d_feats);

typedef struct {
  float score_thr;      // 0.02
  float iou_thr;        // 0.5
  int class_agnostic;   // 1
  int64_t max_per_img;  // 50; <= 0: all
  int64_t split_thr;    // 100000
} rcnn_test_cfg;

rcnn_test_cfg rcnn_test_cfg_default(void);

// One image: k RoIs as boxes (k, 4) (x1, y1, x2, y2; without the batch column), their logits
// cls (k, num_classes + 1) and deltas reg (k, 4). coder: the box head's (stds 0.1, 0.1, 0.2, 0.2).
// Writes up to max_per_img detections (size the outputs k * num_classes when max_per_img <= 0):
// boxes (., 4), scores, labels (class index), src (RoI index) — labels/src may be NULL.
// Returns the count, sorted by descending score.
int64_t bbox_head_predict(int num_classes, const delta_xywh_coder *coder, const rcnn_test_cfg *cfg,
                          int64_t k, const float *rois, const float *cls, const float *reg,
                          float img_h, float img_w, float *boxes, float *scores, int64_t *labels,
                          int64_t *src);

#endif
