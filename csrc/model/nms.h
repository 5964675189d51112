// Non-maximum suppression with mmcv's CPU semantics (nms_cpu, which torchvision.ops.nms shares):
// - boxes (n, 4) = x1, y1, x2, y2 in float32; area = (x2 - x1) * (y2 - y1) (mmcv offset 0, no +1);
// - candidates visited in descending score order; exact ties in score: lower index first (a
//   stable order; torch's sort is not stable, so PyTorch may visit exact ties differently);
// - a later box is suppressed when IoU > iou_thr (strict), IoU = inter / (area_i + area_j -
//   inter) in float32, compared with the threshold as a float (mmcv passes a float); 0/0 (two
//   empty boxes) is NaN and suppresses nothing;
// - keep receives indices into the input, in visiting (descending score) order.
// batched_nms mirrors mmcv.ops.batched_nms: unless class_agnostic, boxes of different idxs are
// kept apart by adding idx * (max coordinate + 1) to every coordinate (the same float32 offset
// trick, so IoUs are computed on the shifted boxes exactly as mmcv does); with n >= split_thr the
// groups are suppressed one by one (on the same shifted boxes) and the survivors sorted by score.
#ifndef MASA_NMS_H
#define MASA_NMS_H

#include <stdint.h>

// Indices 0..n-1 ordered by descending score, ties by ascending index; NaN scores first (torch).
void argsort_desc_stable(int64_t n, const float *scores, int64_t *order);
// IoU of two boxes, float32 as in NMS.
float box_iou(const float *a, const float *b);
// Returns the number kept; keep (n) receives the kept indices.
int64_t nms_cpu(int64_t n, const float *boxes, const float *scores, float iou_thr, int64_t *keep);
// idxs (n): group of each box (level id, class label). split_thr: mmcv default 10000.
int64_t batched_nms_cpu(int64_t n, const float *boxes, const float *scores, const int64_t *idxs,
                        float iou_thr, int class_agnostic, int64_t split_thr, int64_t *keep);

#endif
