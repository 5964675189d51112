#include "model/bbox_head.h"

#include "model/roi_trunk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "model/nms.h"
#include "ops/activation.h"
#include "ops/conv.h"

bbox_head_cfg bbox_head_default_cfg(bbox_head_kind kind, int num_levels, const float *strides) {
  bbox_head_cfg c = {0};
  c.kind = kind;
  c.roi = roi_extractor_default(num_levels, strides);
  c.in_channels = 256;
  c.conv_channels = 256;
  c.conv_norm = NORM_BN_TRAIN;
  c.fc_channels = 1024;
  c.num_classes = 1;
  c.trainable = 1;
  return c;
}

void bbox_head_register(bbox_head *m, param_table *t, const char *prefix,
                        const bbox_head_cfg *cfg) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  m->num_convs = cfg->kind == BBOX_HEAD_SHARED4CONV1FC ? 4 : 0;
  m->num_fcs = cfg->kind == BBOX_HEAD_SHARED4CONV1FC ? 1 : 2;
  char p[200];
  int64_t c = cfg->in_channels;
  for (int i = 0; i < m->num_convs; i++) {
    snprintf(p, sizeof p, "%s.shared_convs.%d", prefix, i);
    conv_module_cfg cc = {.c_in = c, .c_out = cfg->conv_channels, .k = 3, .stride = 1, .pad = 1,
                          .dil = 1, .groups = 1, .bias = -1, .norm = cfg->conv_norm,
                          .relu = 1, .trainable = cfg->trainable};
    conv_module_register(&m->convs[i], t, p, &cc);
    c = cfg->conv_channels;
  }
  int64_t in = c * cfg->roi.out_size * cfg->roi.out_size;
  for (int i = 0; i < m->num_fcs; i++) {
    snprintf(p, sizeof p, "%s.shared_fcs.%d", prefix, i);
    m->fc_w[i] = module_param(t, p, "weight", 2, (int64_t[]){cfg->fc_channels, in},
                              cfg->trainable);
    m->fc_b[i] = module_param(t, p, "bias", 1, (int64_t[]){cfg->fc_channels}, cfg->trainable);
    in = cfg->fc_channels;
  }
  snprintf(p, sizeof p, "%s.fc_cls", prefix);
  m->cls_w = module_param(t, p, "weight", 2, (int64_t[]){cfg->num_classes + 1, in},
                          cfg->trainable);
  m->cls_b = module_param(t, p, "bias", 1, (int64_t[]){cfg->num_classes + 1}, cfg->trainable);
  snprintf(p, sizeof p, "%s.fc_reg", prefix);
  m->reg_w = module_param(t, p, "weight", 2, (int64_t[]){4, in}, cfg->trainable);
  m->reg_b = module_param(t, p, "bias", 1, (int64_t[]){4}, cfg->trainable);
}

void bbox_head_init(const bbox_head *m, param_table *t, uint64_t seed) {
  for (int i = 0; i < m->num_convs; i++) conv_module_init(&m->convs[i], t, seed);
  for (int i = 0; i < m->num_fcs; i++) {
    init_xavier_uniform(t, m->fc_w[i], 1.0f, seed);
    init_constant(t, m->fc_b[i], 0.0f);
  }
  init_normal(t, m->cls_w, 0.0f, 0.01f, seed);
  init_constant(t, m->cls_b, 0.0f);
  init_normal(t, m->reg_w, 0.0f, 0.001f, seed);
  init_constant(t, m->reg_b, 0.0f);
}

static int64_t flat_dim(const bbox_head *m) {
  int64_t c = m->num_convs > 0 ? m->cfg.conv_channels : m->cfg.in_channels;
  return c * m->cfg.roi.out_size * m->cfg.roi.out_size;
}

void bbox_head_forward(const bbox_head *m, model_ctx *ctx, const tensor *feats, int64_t k,
                       const float *rois, bbox_head_acts *a) {
  const bbox_head_cfg *cfg = &m->cfg;
  param_table *t = ctx->params;
  memset(a, 0, sizeof *a);
  a->feats = feats;
  a->rois = rois;
  a->k = k;
  int64_t nc = cfg->num_classes + 1;
  masa_assert(feats[0].shape[1] == cfg->in_channels);
  a->cls = ctx_tensor(ctx, 2, (int64_t[]){k, nc});
  a->reg = ctx_tensor(ctx, 2, (int64_t[]){k, 4});
  if (k == 0) return;
  roi_trunk r = {&cfg->roi, feats, rois, NULL, k, flat_dim(m), m->num_convs, m->convs, NULL,
                 m->num_fcs, cfg->fc_channels, m->fc_w, m->fc_b, NULL, cfg->trainable};
  int64_t in;
  const float *h = roi_trunk_forward(&r, ctx, &a->roi_feats, a->convs, a->fcs, &in);
  linear_forward(ctx_dev(ctx), k, in, nc, h, param_ptr(t, m->cls_w), param_ptr(t, m->cls_b), a->cls.data);
  linear_forward(ctx_dev(ctx), k, in, 4, h, param_ptr(t, m->reg_w), param_ptr(t, m->reg_b), a->reg.data);
}

void bbox_head_backward(const bbox_head *m, model_ctx *ctx, const bbox_head_acts *a,
                        const tensor *d_cls, const tensor *d_reg, tensor *d_feats) {
  const bbox_head_cfg *cfg = &m->cfg;
  int64_t k = a->k;
  if (k == 0 || (!d_cls && !d_reg)) return;
  param_table *t = ctx->params;
  int tr = cfg->trainable;
  int64_t nc = cfg->num_classes + 1;
  roi_trunk r = {&cfg->roi, a->feats, a->rois, a->roi_feats.data, k, flat_dim(m),
                 m->num_convs, m->convs, a->convs, m->num_fcs, cfg->fc_channels,
                 m->fc_w, m->fc_b, a->fcs, tr};
  int64_t in;
  const float *last = roi_trunk_output(&r, &in);
  float *dx = arena_zeros(ctx->arena, k * in);
  if (d_cls) {
    masa_assert(d_cls->shape[0] == k && d_cls->shape[1] == nc);
    linear_backward(ctx_dev(ctx), k, in, nc, last, param_ptr(t, m->cls_w), d_cls->data, dx,
                        tr ? param_grad_ptr(t, m->cls_w) : NULL,
                        tr ? param_grad_ptr(t, m->cls_b) : NULL);
  }
  if (d_reg) {
    masa_assert(d_reg->shape[0] == k && d_reg->shape[1] == 4);
    linear_backward(ctx_dev(ctx), k, in, 4, last, param_ptr(t, m->reg_w), d_reg->data, dx,
                        tr ? param_grad_ptr(t, m->reg_w) : NULL,
                        tr ? param_grad_ptr(t, m->reg_b) : NULL);
  }
  roi_trunk_backward(&r, ctx, dx, d_feats);
}

rcnn_test_cfg rcnn_test_cfg_default(void) {
  return (rcnn_test_cfg){.score_thr = 0.02f, .iou_thr = 0.5f, .class_agnostic = 1,
                         .max_per_img = 50, .split_thr = 100000};
}

int64_t bbox_head_predict(int num_classes, const delta_xywh_coder *coder, const rcnn_test_cfg *cfg,
                          int64_t k, const float *rois, const float *cls, const float *reg,
                          float img_h, float img_w, float *boxes, float *scores, int64_t *labels,
                          int64_t *src) {
  if (k == 0) return 0;
  int64_t nc = num_classes + 1, nmax = k * num_classes;
  float *prob = mallocCheck((size_t)(k * nc) * sizeof(float));
  float *dec = mallocCheck((size_t)k * 4 * sizeof(float));
  float *cb = mallocCheck((size_t)nmax * 4 * sizeof(float));
  float *cs = mallocCheck((size_t)nmax * sizeof(float));
  int64_t *cl = mallocCheck((size_t)nmax * sizeof(int64_t));
  int64_t *ci = mallocCheck((size_t)nmax * sizeof(int64_t));
  int64_t *keep = mallocCheck((size_t)nmax * sizeof(int64_t));
  softmax_forward_cpu(k, nc, cls, prob);
  delta_xywh_decode(coder, k, rois, reg, img_h, img_w, dec);
  // Candidates (roi i, class c) in mmdet's flattened order i * num_classes + c, background
  // (last column) excluded, score > score_thr.
  int64_t m = 0;
  for (int64_t i = 0; i < k; i++)
    for (int c = 0; c < num_classes; c++) {
      float s = prob[i * nc + c];
      if (!(s > cfg->score_thr)) continue;
      memcpy(cb + 4 * m, dec + 4 * i, 4 * sizeof(float));
      cs[m] = s;
      cl[m] = c;
      ci[m] = i;
      m++;
    }
  int64_t nk = batched_nms_cpu(m, cb, cs, cl, cfg->iou_thr, cfg->class_agnostic, cfg->split_thr,
                               keep);
  if (cfg->max_per_img > 0 && nk > cfg->max_per_img) nk = cfg->max_per_img;
  for (int64_t q = 0; q < nk; q++) {
    int64_t j = keep[q];
    memcpy(boxes + 4 * q, cb + 4 * j, 4 * sizeof(float));
    scores[q] = cs[j];
    if (labels) labels[q] = cl[j];
    if (src) src[q] = ci[j];
  }
  free(prob);
  free(dec);
  free(cb);
  free(cs);
  free(cl);
  free(ci);
  free(keep);
  return nk;
}
