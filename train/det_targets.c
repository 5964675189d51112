// RPN and RoI-head training targets (see det_targets.h).
#include "train/det_targets.h"

#include <stdlib.h>
#include <string.h>

#include "core/check.h"

void rpn_anchor_set_make(const anchor_generator *g, int num_levels, const int64_t *h,
                         const int64_t *w, rpn_anchor_set *out) {
  masa_assert(num_levels >= 1 && num_levels <= g->num_levels);
  memset(out, 0, sizeof *out);
  out->num_levels = num_levels;
  out->num_base = anchor_generator_num_base(g);
  out->offset[0] = 0;
  for (int l = 0; l < num_levels; l++) {
    masa_assert(h[l] >= 0 && w[l] >= 0);
    out->h[l] = h[l], out->w[l] = w[l];
    out->offset[l + 1] = out->offset[l] + h[l] * w[l] * out->num_base;
  }
  out->anchors = mallocCheck((size_t)(out->offset[num_levels] + 1) * 4 * sizeof(float));
  for (int l = 0; l < num_levels; l++)
    anchor_generator_grid(g, l, h[l], w[l], out->anchors + 4 * out->offset[l]);
}

void rpn_anchor_set_free(rpn_anchor_set *s) {
  free(s->anchors);
  memset(s, 0, sizeof *s);
}

det_train_cfg det_train_cfg_rpn(void) {
  const float zero[4] = {0, 0, 0, 0}, one[4] = {1, 1, 1, 1};
  det_train_cfg c = {max_iou_assigner_rpn(), sampler_cfg_rpn(), delta_xywh_coder_make(zero, one)};
  return c;
}

det_train_cfg det_train_cfg_rcnn(void) {
  const float zero[4] = {0, 0, 0, 0}, stds[4] = {0.1f, 0.1f, 0.2f, 0.2f};
  det_train_cfg c = {max_iou_assigner_rcnn(), sampler_cfg_rcnn(), delta_xywh_coder_make(zero, stds)};
  return c;
}

void det_targets_build(const delta_xywh_coder *coder, int num_classes, const float *priors,
                       const float *gts, const int64_t *gt_labels, int64_t num_pos,
                       const int64_t *pos_inds, const int64_t *pos_gt, int64_t num_neg,
                       const int64_t *neg_inds, det_targets *out) {
  int64_t k = num_pos + num_neg;
  out->num_pos = num_pos;
  out->num_neg = num_neg;
  out->inds = mallocCheck((size_t)(k + 1) * sizeof(int64_t));
  out->boxes = mallocCheck((size_t)(k + 1) * 4 * sizeof(float));
  out->labels = mallocCheck((size_t)(k + 1) * sizeof(int64_t));
  out->pos_gt = mallocCheck((size_t)(num_pos + 1) * sizeof(int64_t));
  out->targets = mallocCheck((size_t)(num_pos + 1) * 4 * sizeof(float));
  float *gt_boxes = mallocCheck((size_t)(num_pos + 1) * 4 * sizeof(float));
  for (int64_t t = 0; t < k; t++) {
    int64_t i = t < num_pos ? pos_inds[t] : neg_inds[t - num_pos];
    out->inds[t] = i;
    memcpy(out->boxes + 4 * t, priors + 4 * i, 4 * sizeof(float));
    if (t < num_pos) {
      int64_t gi = pos_gt[t];
      out->pos_gt[t] = gi;
      out->labels[t] = gt_labels ? gt_labels[gi] : 0;
      memcpy(gt_boxes + 4 * t, gts + 4 * gi, 4 * sizeof(float));
    } else {
      out->labels[t] = num_classes;
    }
  }
  delta_xywh_encode(coder, num_pos, out->boxes, gt_boxes, out->targets);
  free(gt_boxes);
  out->avg_factor = (double)(num_pos > 1 ? num_pos : 1) + (double)(num_neg > 1 ? num_neg : 1);
}

void det_targets_free(det_targets *t) {
  free(t->inds);
  free(t->boxes);
  free(t->labels);
  free(t->pos_gt);
  free(t->targets);
  memset(t, 0, sizeof *t);
}

void rpn_targets_image(const det_train_cfg *cfg, const rpn_anchor_set *anchors, int64_t g,
                       const float *gts, rng_key key, det_targets *out) {
  int64_t n = anchors->offset[anchors->num_levels];
  assign_result ar;
  max_iou_assign(&cfg->assigner, n, anchors->anchors, g, gts, &ar);
  // RPN never prepends GTs (add_gt_as_proposals False): the indices stay anchor indices.
  masa_assert(!cfg->sampler.add_gt_as_proposals);
  sample_result sr;
  sample_boxes(&cfg->sampler, &ar, key, &sr);
  det_targets_build(&cfg->coder, 1, anchors->anchors, gts, NULL, sr.num_pos, sr.pos_inds,
                    sr.pos_gt, sr.num_neg, sr.neg_inds, out);
  sample_result_free(&sr);
  assign_result_free(&ar);
}

void rcnn_targets_image(const det_train_cfg *cfg, int num_classes, int64_t n,
                        const float *proposals, int64_t g, const float *gts,
                        const int64_t *gt_labels, rng_key key, det_targets *out) {
  assign_result ar;
  max_iou_assign(&cfg->assigner, n, proposals, g, gts, &ar);
  sample_result sr;
  sample_boxes(&cfg->sampler, &ar, key, &sr);
  // The prior list the indices refer to: the GTs (when prepended) then the proposals.
  int64_t gp = sr.num_gt_prepended;
  float *priors = mallocCheck((size_t)(gp + n + 1) * 4 * sizeof(float));
  if (gp) memcpy(priors, gts, (size_t)gp * 4 * sizeof(float));
  if (n) memcpy(priors + 4 * gp, proposals, (size_t)n * 4 * sizeof(float));
  det_targets_build(&cfg->coder, num_classes, priors, gts, gt_labels, sr.num_pos, sr.pos_inds,
                    sr.pos_gt, sr.num_neg, sr.neg_inds, out);
  free(priors);
  sample_result_free(&sr);
  assign_result_free(&ar);
}
