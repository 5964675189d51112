// MASA's RPN (mmdet RPNHead, masa-spec §3): the head, its anchors and test-time proposals.
// Head, shared over levels: h = relu(rpn_conv 3x3 pad 1 (x)); cls = rpn_cls 1x1 (h) -> A logits
// (sigmoid, one class); reg = rpn_reg 1x1 (h) -> 4A deltas, channel a*4 + j for anchor a,
// coordinate j (dx, dy, dw, dh). Plain nn.Conv2d with bias; keys <prefix>.rpn_conv.{weight,bias},
// <prefix>.rpn_cls.{weight,bias}, <prefix>.rpn_reg.{weight,bias} (prefix "rpn_head").
//
// Anchors (mmdet AnchorGenerator, scales 8, ratios 0.5/1/2, center_offset 0, base size = stride):
// base anchor (ratio r, scale s): h_ratio = sqrt(r), w_ratio = 1 / h_ratio, w = stride * w_ratio
// * s, h = stride * h_ratio * s, box (-w/2, -h/2, w/2, h/2) (centred on 0, not rounded), in the
// order a = ratio_index * num_scales + scale_index (mmdet scale_major). Grid: anchor (y, x, a)
// = base[a] + (x * stride, y * stride, x * stride, y * stride) at flat index (y * W + x) * A + a,
// which is also the order of the permuted (H, W, A) head outputs. float32 in mmdet's order.
//
// Proposals (mmdet 3.x RPNHead._predict_by_feat_single + _bbox_post_process), per image:
//  1. per level: scores = sigmoid(cls) in (y, x, a) order; if 0 < nms_pre < count, keep the
//     nms_pre best (descending, ties by lower index) with their deltas and anchors;
//  2. concatenate levels (level 0 first), decode with the RPN coder (means 0, stds 1), clipped
//     to img_shape (the resized, unpadded input size);
//  3. if min_bbox_size >= 0 drop boxes with w <= min_bbox_size or h <= min_bbox_size (strict
//     '>' keeps; so min_bbox_size 0 drops empty boxes, e.g. anchors clipped away);
//  4. batched NMS (IoU 0.7) with the LEVEL index as the group id and class_agnostic off: boxes
//     of different levels never suppress each other (mmcv's offset trick), survivors sorted by
//     score, then the first max_per_img kept. Scores are the sigmoid scores.
#ifndef MASA_RPN_H
#define MASA_RPN_H

#include "model/bbox_coder.h"
#include "model/module.h"

#define RPN_MAX_LEVELS 8

typedef struct {
  int64_t in_channels, feat_channels;  // 256, 256
  int num_anchors;                     // 3
  int trainable;
  int conv_w, conv_b, cls_w, cls_b, reg_w, reg_b;
} rpn_head;

typedef struct {
  int num_levels;
  const tensor *feats;             // by reference
  tensor hidden[RPN_MAX_LEVELS];   // relu(rpn_conv(x)) (n, feat, h, w)
  tensor cls[RPN_MAX_LEVELS];      // (n, A, h, w) logits
  tensor reg[RPN_MAX_LEVELS];      // (n, 4A, h, w)
} rpn_head_acts;

void rpn_head_register(rpn_head *m, param_table *t, const char *prefix, int64_t in_channels,
                       int64_t feat_channels, int num_anchors, int trainable);
// mmdet RPNHead init_cfg: Normal(std 0.01) on every Conv2d (rpn_conv, rpn_cls, rpn_reg), bias 0.
void rpn_head_init(const rpn_head *m, param_table *t, uint64_t seed);
// feats: num_levels maps (n, in_channels, h_l, w_l).
void rpn_head_forward(const rpn_head *m, model_ctx *ctx, int num_levels, const tensor *feats,
                      rpn_head_acts *a);
// d_cls[l] (n, A, h, w), d_reg[l] (n, 4A, h, w): either array may be NULL (zero gradient).
// d_feats: num_levels tensors (accumulated) or NULL. Parameter gradients accumulate.
void rpn_head_backward(const rpn_head *m, model_ctx *ctx, const rpn_head_acts *a,
                       const tensor *d_cls, const tensor *d_reg, tensor *d_feats);

typedef struct {
  int num_levels;
  float strides[RPN_MAX_LEVELS];
  int num_scales, num_ratios;
  float scales[4], ratios[4];
  float center_offset;  // 0
} anchor_generator;

// scales {8}, ratios {0.5, 1, 2}: 8,16,32,64,128 (GDINO/Detic) or 4,...,64 (SAM/R50).
anchor_generator anchor_generator_make(int num_levels, const float *strides);
int anchor_generator_num_base(const anchor_generator *g);
// base (A, 4) of level l.
void anchor_generator_base(const anchor_generator *g, int level, float *base);
// anchors (h * w * A, 4) of level l for an (h, w) feature map.
void anchor_generator_grid(const anchor_generator *g, int level, int64_t h, int64_t w,
                           float *anchors);

typedef struct {
  int64_t nms_pre;      // 1000 (test / ref view), 2000 (train key view); <= 0: no per-level cut
  int64_t max_per_img;  // 1000
  float iou_thr;        // 0.7
  float min_bbox_size;  // 0; negative disables the size filter
  int64_t split_thr;    // mmcv batched_nms default 10000
} rpn_proposal_cfg;

rpn_proposal_cfg rpn_proposal_cfg_test(void);   // nms_pre 1000, max 1000, NMS 0.7, min size 0
rpn_proposal_cfg rpn_proposal_cfg_train(void);  // nms_pre 2000, max 1000, NMS 0.7, min size 0

// Proposals of image b: cls[l] (n, A, h_l, w_l) logits and reg[l] (n, 4A, h_l, w_l) as the head
// gives them; img_h, img_w: that image's img_shape. Writes up to max_per_img (all survivors if
// max_per_img <= 0: size them for the sum over levels of min(nms_pre, count)) boxes (., 4) and
// scores; src (or NULL) receives each proposal's anchor as a flat index over all levels
// (level offset + (y * w + x) * A + a). Returns the number written.
int64_t rpn_proposals(const anchor_generator *g, const delta_xywh_coder *coder,
                      const rpn_proposal_cfg *cfg, const tensor *cls, const tensor *reg,
                      int64_t b, float img_h, float img_w, float *boxes, float *scores,
                      int64_t *src);

// rpn_proposals on maps that live on device d: cls / reg as above but DEVICE tensors (on d);
// boxes, scores, src are HOST arrays with the same meaning and sizes. cpu: rpn_proposals itself;
// guard: image b's slices downloaded (dev_download), then rpn_proposals (bit-identical); cuda:
// the device pipeline rpn_proposals_cuda (kernels/rpn.cu: per-level sigmoid + stable top-k,
// decode, size filter, bitmask batched NMS), which only copies the survivors to the host. It
// repeats the CPU's float operations; only exp may round differently (kernels/rpn.cu), so a
// proposal can in rare cases differ by an ulp or flip a threshold decision.
int64_t rpn_proposals_dev(const device *d, const anchor_generator *g, const delta_xywh_coder *coder,
                          const rpn_proposal_cfg *cfg, const tensor *cls, const tensor *reg,
                          int64_t b, float img_h, float img_w, float *boxes, float *scores,
                          int64_t *src);

#endif
