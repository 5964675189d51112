// Box-to-GT assignment for training (masa-spec §3 train_cfg, §4.2): mmdet's MaxIoUAssigner on
// mmdet's bbox_overlaps IoU. Boxes are (x1, y1, x2, y2) in network-input pixels, float32.
//
// IoU (mmdet bbox_overlaps, mode 'iou', eps 1e-6), float32 in mmdet's operation order:
//   area = (x2 - x1) * (y2 - y1); wh = clamp(min(rb) - max(lt), 0); inter = wh.x * wh.y;
//   union = max(area_gt + area_box - inter, 1e-6f); iou = inter / union.
// This differs from model/nms.h's box_iou (mmcv NMS: no eps), so degenerate boxes give 0 here
// instead of NaN. No +1 on widths.
//
// MaxIoUAssigner.assign_wrt_overlaps, per box j over G ground truths (gt_max_assign_all = True,
// ignore_iof_thr = -1, i.e. no ignore regions):
//   G == 0: every box negative (0), max overlap 0.  No boxes: nothing to do.
//   m_j = max_i IoU(i, j), a_j = its argmax (FIRST i on ties, as torch.max on CPU);
//   start at -1 (ignored); 0 <= m_j < neg_iou_thr -> 0; then m_j >= pos_iou_thr -> a_j + 1;
//   match_low_quality: for i = 0 .. G-1 in order, if gt_max_i = max_j IoU(i, j) >= min_pos_iou,
//   every box with IoU(i, j) == gt_max_i becomes i + 1 (later GTs overwrite earlier ones).
// Thresholds are compared in float32 (torch casts the Python float to the tensor's dtype).
// Result convention = mmdet's AssignResult.gt_inds: 1-based GT index for positives, 0 negative,
// -1 ignored (between the thresholds).
#ifndef MASA_ASSIGN_H
#define MASA_ASSIGN_H

#include <stdint.h>

// out (m, n) row-major: out[i * n + j] = IoU(a_i, b_j); a (m, 4), b (n, 4).
void bbox_overlaps(int64_t m, const float *a, int64_t n, const float *b, float *out);

typedef struct {
  float pos_iou_thr, neg_iou_thr, min_pos_iou;
  int match_low_quality;
  int gt_max_assign_all;  // 1 (mmdet default); 0: only the first argmax box per GT
} max_iou_assigner_cfg;

max_iou_assigner_cfg max_iou_assigner_rpn(void);    // 0.7 / 0.3 / 0.3, low-quality matching on
max_iou_assigner_cfg max_iou_assigner_rcnn(void);   // 0.5 / 0.5 / 0.5, off
max_iou_assigner_cfg max_iou_assigner_track(void);  // 0.7 / 0.3 / 0.5, off (masa-spec §4.2)

typedef struct {
  int64_t num_gts;           // G
  int64_t num_boxes;         // entries below (grows by G with assign_result_add_gt)
  int64_t num_gt_prepended;  // G after assign_result_add_gt, else 0
  int64_t *gt_inds;          // (num_boxes) 1-based GT, 0 negative, -1 ignored
  float *max_overlaps;       // (num_boxes) IoU with the best GT (0 when G == 0)
} assign_result;

// boxes (n, 4), gts (g, 4); either count may be 0. Allocates out's arrays (assign_result_free).
void max_iou_assign(const max_iou_assigner_cfg *cfg, int64_t n, const float *boxes, int64_t g,
                    const float *gts, assign_result *out);
// mmdet AssignResult.add_gt_: prepends the G GTs as boxes 0..G-1, each assigned to itself
// (gt_inds i + 1, overlap 1), whatever their IoU with other GTs. No-op when G == 0 or when
// already done.
void assign_result_add_gt(assign_result *r);
void assign_result_free(assign_result *r);

#endif
