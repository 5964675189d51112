// Training targets of the object-prior branch (masa-spec §3, §4.5), per image, key view only.
//
// RPN (mmdet AnchorHead._get_targets_single with RPNHead): the anchors of all levels flattened
// in mmdet's order (level 0 first; inside a level (y * W + x) * A + a, model/rpn.h); with
// allowed_border -1 every anchor is valid (the feature maps cover the padded input exactly);
// MaxIoUAssigner 0.7 / 0.3 / min_pos 0.3 with low-quality matching; RandomSampler 256, 0.5, no
// GT added; positives get label 0 (object, BCE target 1), sampled negatives label 1 (background,
// BCE target 0), unsampled anchors weight 0; regression targets DeltaXYWH with means 0, stds 1.
//
// RoI head (mmdet StandardRoIHead + BBoxHead._get_targets_single): MaxIoUAssigner 0.5 / 0.5 /
// 0.5, no low-quality matching; RandomSampler 512, 0.25 with the GTs prepended; the RoIs are the
// sampled priors, positives first then negatives (each ascending, as mmdet's sampling result
// concatenates them); positive labels = GT labels (all 0 in MASA: one class-agnostic class),
// negatives = num_classes (background, the last logit); regression targets (positives only)
// DeltaXYWH with stds (0.1, 0.1, 0.2, 0.2), class-agnostic.
#ifndef MASA_DET_TARGETS_H
#define MASA_DET_TARGETS_H

#include <stdint.h>

#include "model/bbox_coder.h"
#include "model/rpn.h"
#include "train/assign.h"
#include "train/sample.h"

// All anchors of one padded input, flattened (shared by every image of a batch).
typedef struct {
  int num_levels, num_base;  // A anchors per location
  int64_t h[RPN_MAX_LEVELS], w[RPN_MAX_LEVELS];
  int64_t offset[RPN_MAX_LEVELS + 1];  // flat index of each level's first anchor; [L] = total
  float *anchors;                      // (total, 4)
} rpn_anchor_set;

// h, w: the feature-map sizes of the num_levels levels.
void rpn_anchor_set_make(const anchor_generator *g, int num_levels, const int64_t *h,
                         const int64_t *w, rpn_anchor_set *out);
void rpn_anchor_set_free(rpn_anchor_set *s);

// The sampled priors of one image with their targets. Samples are positives first
// (0 .. num_pos-1) then negatives.
typedef struct {
  int64_t num_pos, num_neg;
  int64_t *inds;     // (num_pos + num_neg) prior index (anchor flat index; for the RoI head
                     // an index into the GT-prepended proposal list)
  float *boxes;      // (num_pos + num_neg, 4) the sampled priors (the RoIs of the box head)
  int64_t *labels;   // (num_pos + num_neg) GT label for positives, num_classes for negatives
  int64_t *pos_gt;   // (num_pos) 0-based GT index
  float *targets;    // (num_pos, 4) encoded deltas
  double avg_factor; // mmdet SamplingResult.avg_factor: max(num_pos, 1) + max(num_neg, 1)
} det_targets;

typedef struct {
  max_iou_assigner_cfg assigner;
  sampler_cfg sampler;
  delta_xywh_coder coder;
} det_train_cfg;

det_train_cfg det_train_cfg_rpn(void);   // masa-spec §3 train_cfg.rpn
det_train_cfg det_train_cfg_rcnn(void);  // masa-spec §3 train_cfg.rcnn

// RPN targets of one image: gts (g, 4) may be empty.
void rpn_targets_image(const det_train_cfg *cfg, const rpn_anchor_set *anchors, int64_t g,
                       const float *gts, rng_key key, det_targets *out);
// RoI-head targets of one image: proposals (n, 4), gts (g, 4), gt_labels (g) or NULL (all 0).
void rcnn_targets_image(const det_train_cfg *cfg, int num_classes, int64_t n,
                        const float *proposals, int64_t g, const float *gts,
                        const int64_t *gt_labels, rng_key key, det_targets *out);

// Targets from explicit index sets (the building block of the two above; tests feed it the
// oracle's samples). priors (., 4) indexed by pos_inds / neg_inds; pos_gt (num_pos) 0-based.
void det_targets_build(const delta_xywh_coder *coder, int num_classes, const float *priors,
                       const float *gts, const int64_t *gt_labels, int64_t num_pos,
                       const int64_t *pos_inds, const int64_t *pos_gt, int64_t num_neg,
                       const int64_t *neg_inds, det_targets *out);
void det_targets_free(det_targets *t);

#endif
