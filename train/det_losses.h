// Detection losses of the object-prior branch (masa-spec §3, §4.5) on the targets of
// det_targets.h, one image per call. Each returns weight * (sum over that image's samples) /
// (avg_factor + FLT_EPSILON) and, when the gradient pointer is not NULL, ACCUMULATES the
// gradient of that value w.r.t. the head outputs into it. Summing the per-image values with the
// batch avg_factor gives mmdet's batch loss (its weight_reduce_loss: sum / (avg_factor + eps)).
// Sums run in double in sample order.
//
// avg_factor (mmdet 3.x conventions, over ALL images of the batch):
//   RPN cls and bbox:  sum over images of SamplingResult.avg_factor = max(#pos, 1) + max(#neg, 1)
//                      (AnchorHead.get_targets; with sampling the negatives count too);
//   RoI cls:           max(number of sampled RoIs, 1) (BBoxHead.loss: label_weights > 0);
//   RoI bbox:          number of sampled RoIs, positives AND negatives (bbox_targets.size(0)),
//                      though only positives contribute; no positive anywhere gives 0.
//
// Per-sample terms:
//   RPN cls  (sigmoid BCE, CrossEntropyLoss use_sigmoid): x = logit of the sampled anchor,
//            t = 1 for positives (label 0) and 0 for negatives (label 1 = background);
//            l = max(x, 0) - x t + log(1 + exp(-|x|)); dl/dx = sigmoid(x) - t.
//   RoI cls  (softmax CrossEntropyLoss): l = logsumexp(z) - z[label] over num_classes + 1
//            logits, background last; dl/dz = softmax(z) - onehot(label).
//   bbox     (positives only, each of the 4 deltas): SmoothL1 with beta, d = |p - t|:
//            d < beta ? 0.5 d^2 / beta : d - 0.5 beta; or L1: d. Gradient 0 where p == t
//            (torch's abs).
#ifndef MASA_DET_LOSSES_H
#define MASA_DET_LOSSES_H

#include <stdint.h>

#include "core/tensor.h"
#include "train/det_targets.h"

typedef enum { REG_LOSS_SMOOTH_L1 = 0, REG_LOSS_L1 = 1 } reg_loss_kind;

typedef struct {
  reg_loss_kind kind;
  float beta;  // SmoothL1 only (RPN: 1/9)
} reg_loss_cfg;

reg_loss_cfg reg_loss_rpn(void);   // SmoothL1, beta 1/9 (GDINO/Detic/SAM); R50 uses L1
reg_loss_cfg reg_loss_rcnn(void);  // L1

// Batch avg_factors from the n images' targets.
double rpn_avg_factor(int64_t n, const det_targets *t);
double rcnn_cls_avg_factor(int64_t n, const det_targets *t);
double rcnn_bbox_avg_factor(int64_t n, const det_targets *t);

// RPN, image b of the batch. cls: num_levels tensors (N, A, h, w) as rpn_head_forward gives
// them; reg: (N, 4A, h, w). d_cls / d_reg: tensors of the same shapes (accumulated) or NULL.
double rpn_loss_cls(const rpn_anchor_set *anchors, const det_targets *t, const tensor *cls,
                    int64_t b, double avg_factor, float weight, tensor *d_cls);
double rpn_loss_bbox(const rpn_anchor_set *anchors, const det_targets *t, const tensor *reg,
                     int64_t b, const reg_loss_cfg *rc, double avg_factor, float weight,
                     tensor *d_reg);

// The same losses in two halves, for maps that live on a device: *_index gives the level and
// element offset of every map value the loss reads (cls: one per sample; bbox: 4 per positive,
// in sample order), *_values computes the loss from those values gathered into x and writes (not
// accumulates) each value's gradient into g (nullable). rpn_loss_cls / rpn_loss_bbox are exactly
// index + gather + values + scatter-add. Offsets of one image are distinct.
void rpn_loss_cls_index(const rpn_anchor_set *anchors, const det_targets *t, const tensor *cls,
                        int64_t b, int *levels, int64_t *offs);
void rpn_loss_bbox_index(const rpn_anchor_set *anchors, const det_targets *t, const tensor *reg,
                         int64_t b, int *levels, int64_t *offs);
double rpn_loss_cls_values(const det_targets *t, const float *x, double avg_factor, float weight,
                           float *g);
double rpn_loss_bbox_values(const det_targets *t, const float *x, const reg_loss_cfg *rc,
                            double avg_factor, float weight, float *g);

// RoI head, one image: cls (k, num_classes + 1) and reg (k, 4) are this image's rows of the box
// head outputs, k = t->num_pos + t->num_neg, in t's sample order. d_cls / d_reg: same layout.
double rcnn_loss_cls(const det_targets *t, int num_classes, const float *cls, double avg_factor,
                     float weight, float *d_cls);
double rcnn_loss_bbox(const det_targets *t, const float *reg, const reg_loss_cfg *rc,
                      double avg_factor, float weight, float *d_reg);

#endif
