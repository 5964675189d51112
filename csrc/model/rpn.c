#include "model/rpn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "model/nms.h"
#include "ops/activation.h"
#include "ops/conv.h"

#ifdef MASA_HAVE_CUDA
#include "kernels/kernels.h"
#endif

// ---- head ----

void rpn_head_register(rpn_head *m, param_table *t, const char *prefix, int64_t in_channels,
                       int64_t feat_channels, int num_anchors, int trainable) {
  memset(m, 0, sizeof *m);
  m->in_channels = in_channels;
  m->feat_channels = feat_channels;
  m->num_anchors = num_anchors;
  m->trainable = trainable;
  char p[200];
  int64_t a = num_anchors;
  snprintf(p, sizeof p, "%s.rpn_conv", prefix);
  m->conv_w = module_param(t, p, "weight", 4, (int64_t[]){feat_channels, in_channels, 3, 3},
                           trainable);
  m->conv_b = module_param(t, p, "bias", 1, (int64_t[]){feat_channels}, trainable);
  snprintf(p, sizeof p, "%s.rpn_cls", prefix);
  m->cls_w = module_param(t, p, "weight", 4, (int64_t[]){a, feat_channels, 1, 1}, trainable);
  m->cls_b = module_param(t, p, "bias", 1, (int64_t[]){a}, trainable);
  snprintf(p, sizeof p, "%s.rpn_reg", prefix);
  m->reg_w = module_param(t, p, "weight", 4, (int64_t[]){4 * a, feat_channels, 1, 1}, trainable);
  m->reg_b = module_param(t, p, "bias", 1, (int64_t[]){4 * a}, trainable);
}

void rpn_head_init(const rpn_head *m, param_table *t, uint64_t seed) {
  init_normal(t, m->conv_w, 0.0f, 0.01f, seed);
  init_constant(t, m->conv_b, 0.0f);
  init_normal(t, m->cls_w, 0.0f, 0.01f, seed);
  init_constant(t, m->cls_b, 0.0f);
  init_normal(t, m->reg_w, 0.0f, 0.01f, seed);
  init_constant(t, m->reg_b, 0.0f);
}

void rpn_head_forward(const rpn_head *m, model_ctx *ctx, int num_levels, const tensor *feats,
                      rpn_head_acts *a) {
  masa_assert(num_levels >= 1 && num_levels <= RPN_MAX_LEVELS);
  memset(a, 0, sizeof *a);
  a->num_levels = num_levels;
  a->feats = feats;
  param_table *t = ctx->params;
  int64_t na = m->num_anchors, fc = m->feat_channels;
  for (int l = 0; l < num_levels; l++) {
    const tensor *x = &feats[l];
    masa_assert(x->ndim == 4 && x->shape[1] == m->in_channels);
    int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3];
    conv2d_desc d3 = conv2d_make(n, m->in_channels, h, w, fc, 3, 1, 1, 1, 1);
    conv2d_desc d1c = conv2d_make(n, fc, h, w, na, 1, 1, 0, 1, 1);
    conv2d_desc d1r = conv2d_make(n, fc, h, w, 4 * na, 1, 1, 0, 1, 1);
    a->hidden[l] = ctx_tensor4(ctx, n, fc, h, w);
    a->cls[l] = ctx_tensor4(ctx, n, na, h, w);
    a->reg[l] = ctx_tensor4(ctx, n, 4 * na, h, w);
    conv2d_forward(ctx_dev(ctx), &d3, x->data, param_ptr(t, m->conv_w), param_ptr(t, m->conv_b),
                       a->hidden[l].data);
    relu_forward(ctx_dev(ctx), tensor_numel(&a->hidden[l]), a->hidden[l].data, a->hidden[l].data);
    conv2d_forward(ctx_dev(ctx), &d1c, a->hidden[l].data, param_ptr(t, m->cls_w), param_ptr(t, m->cls_b),
                       a->cls[l].data);
    conv2d_forward(ctx_dev(ctx), &d1r, a->hidden[l].data, param_ptr(t, m->reg_w), param_ptr(t, m->reg_b),
                       a->reg[l].data);
  }
}

void rpn_head_backward(const rpn_head *m, model_ctx *ctx, const rpn_head_acts *a,
                       const tensor *d_cls, const tensor *d_reg, tensor *d_feats) {
  param_table *t = ctx->params;
  int tr = m->trainable;
  int64_t na = m->num_anchors, fc = m->feat_channels;
  for (int l = 0; l < a->num_levels; l++) {
    const tensor *x = &a->feats[l];
    int64_t n = x->shape[0], h = x->shape[2], w = x->shape[3];
    const float *gc = d_cls ? d_cls[l].data : NULL, *gr = d_reg ? d_reg[l].data : NULL;
    if (!gc && !gr) continue;
    conv2d_desc d3 = conv2d_make(n, m->in_channels, h, w, fc, 3, 1, 1, 1, 1);
    conv2d_desc d1c = conv2d_make(n, fc, h, w, na, 1, 1, 0, 1, 1);
    conv2d_desc d1r = conv2d_make(n, fc, h, w, 4 * na, 1, 1, 0, 1, 1);
    const float *hid = a->hidden[l].data;
    int64_t nh = tensor_numel(&a->hidden[l]);
    float *dh = arena_zeros(ctx->arena, nh);
    if (gc)
      conv2d_backward(ctx_dev(ctx), &d1c, hid, param_ptr(t, m->cls_w), gc, dh,
                          tr ? param_grad_ptr(t, m->cls_w) : NULL,
                          tr ? param_grad_ptr(t, m->cls_b) : NULL);
    if (gr)
      conv2d_backward(ctx_dev(ctx), &d1r, hid, param_ptr(t, m->reg_w), gr, dh,
                          tr ? param_grad_ptr(t, m->reg_w) : NULL,
                          tr ? param_grad_ptr(t, m->reg_b) : NULL);
    ew_relu_mask(ctx_dev(ctx), nh, hid, dh);
    float *dx = d_feats ? d_feats[l].data : NULL;
    if (dx) masa_assert(tensor_same_shape(&d_feats[l], x));
    conv2d_backward(ctx_dev(ctx), &d3, x->data, param_ptr(t, m->conv_w), dh, dx,
                        tr ? param_grad_ptr(t, m->conv_w) : NULL,
                        tr ? param_grad_ptr(t, m->conv_b) : NULL);
  }
}

// ---- anchors ----

anchor_generator anchor_generator_make(int num_levels, const float *strides) {
  masa_assert(num_levels >= 1 && num_levels <= RPN_MAX_LEVELS);
  anchor_generator g = {0};
  g.num_levels = num_levels;
  for (int l = 0; l < num_levels; l++) g.strides[l] = strides[l];
  g.num_scales = 1;
  g.scales[0] = 8.0f;
  g.num_ratios = 3;
  g.ratios[0] = 0.5f;
  g.ratios[1] = 1.0f;
  g.ratios[2] = 2.0f;
  g.center_offset = 0.0f;
  return g;
}

int anchor_generator_num_base(const anchor_generator *g) { return g->num_scales * g->num_ratios; }

void anchor_generator_base(const anchor_generator *g, int level, float *base) {
  masa_assert(level >= 0 && level < g->num_levels);
  // mmdet: base size = stride (int); w * w_ratios[:, None] * scales[None, :] in float32.
  float size = g->strides[level];
  float xc = g->center_offset * size, yc = g->center_offset * size;
  for (int r = 0; r < g->num_ratios; r++) {
    float h_ratio = sqrtf(g->ratios[r]);
    float w_ratio = 1.0f / h_ratio;
    for (int s = 0; s < g->num_scales; s++) {
      float ws = size * w_ratio * g->scales[s], hs = size * h_ratio * g->scales[s];
      float *b = base + 4 * (r * g->num_scales + s);
      b[0] = xc - 0.5f * ws;
      b[1] = yc - 0.5f * hs;
      b[2] = xc + 0.5f * ws;
      b[3] = yc + 0.5f * hs;
    }
  }
}

void anchor_generator_grid(const anchor_generator *g, int level, int64_t h, int64_t w,
                           float *anchors) {
  int na = anchor_generator_num_base(g);
  float base[4 * 16];
  masa_assert(na <= 16);
  anchor_generator_base(g, level, base);
  float stride = g->strides[level];
  for (int64_t y = 0; y < h; y++) {
    float sy = (float)y * stride;
    for (int64_t x = 0; x < w; x++) {
      float sx = (float)x * stride;
      float *o = anchors + ((y * w + x) * na) * 4;
      for (int a = 0; a < na; a++) {
        o[4 * a + 0] = base[4 * a + 0] + sx;
        o[4 * a + 1] = base[4 * a + 1] + sy;
        o[4 * a + 2] = base[4 * a + 2] + sx;
        o[4 * a + 3] = base[4 * a + 3] + sy;
      }
    }
  }
}

// ---- proposals ----

rpn_proposal_cfg rpn_proposal_cfg_test(void) {
  return (rpn_proposal_cfg){.nms_pre = 1000, .max_per_img = 1000, .iou_thr = 0.7f,
                            .min_bbox_size = 0.0f, .split_thr = 10000};
}

rpn_proposal_cfg rpn_proposal_cfg_train(void) {
  rpn_proposal_cfg c = rpn_proposal_cfg_test();
  c.nms_pre = 2000;
  return c;
}

int64_t rpn_proposals(const anchor_generator *g, const delta_xywh_coder *coder,
                      const rpn_proposal_cfg *cfg, const tensor *cls, const tensor *reg,
                      int64_t b, float img_h, float img_w, float *boxes, float *scores,
                      int64_t *src) {
  int L = g->num_levels, na = anchor_generator_num_base(g);
  // Candidates after the per-level cut.
  int64_t total = 0;
  for (int l = 0; l < L; l++) {
    masa_assert(cls[l].ndim == 4 && cls[l].shape[1] == na && b < cls[l].shape[0]);
    masa_assert(reg[l].shape[1] == 4 * na && reg[l].shape[2] == cls[l].shape[2] &&
                reg[l].shape[3] == cls[l].shape[3]);
    int64_t cnt = cls[l].shape[2] * cls[l].shape[3] * na;
    total += (cfg->nms_pre > 0 && cfg->nms_pre < cnt) ? cfg->nms_pre : cnt;

  }
  if (total == 0) return 0;
  float *cand_anchor = mallocCheck((size_t)total * 4 * sizeof(float));
  float *cand_delta = mallocCheck((size_t)total * 4 * sizeof(float));
  float *cand_box = mallocCheck((size_t)total * 4 * sizeof(float));
  float *cand_score = mallocCheck((size_t)total * sizeof(float));
  int64_t *cand_src = mallocCheck((size_t)total * sizeof(int64_t));
  int64_t *cand_level = mallocCheck((size_t)total * sizeof(int64_t));
  int64_t m = 0, level_offset = 0;
  for (int l = 0; l < L; l++) {
    int64_t h = cls[l].shape[2], w = cls[l].shape[3], hw = h * w, cnt = hw * na;
    if (cnt == 0) continue;
    float *logit = mallocCheck((size_t)cnt * sizeof(float));
    float *sc = mallocCheck((size_t)cnt * sizeof(float));
    float *anchors = mallocCheck((size_t)cnt * 4 * sizeof(float));
    int64_t *order = mallocCheck((size_t)cnt * sizeof(int64_t));
    const float *cl = cls[l].data + b * na * hw, *rg = reg[l].data + b * 4 * na * hw;
    // (A, H, W) -> (H, W, A): index (y * w + x) * A + a.
    for (int64_t p = 0; p < hw; p++)
      for (int a = 0; a < na; a++) logit[p * na + a] = cl[a * hw + p];
    sigmoid_forward_cpu(cnt, logit, sc);
    anchor_generator_grid(g, l, h, w, anchors);
    int64_t keep = cnt;
    if (cfg->nms_pre > 0 && cfg->nms_pre < cnt) {
      argsort_desc_stable(cnt, sc, order);
      keep = cfg->nms_pre;
    } else {
      for (int64_t i = 0; i < cnt; i++) order[i] = i;
    }
    for (int64_t q = 0; q < keep; q++) {
      int64_t i = order[q], p = i / na, a = i % na;
      for (int j = 0; j < 4; j++) {
        cand_anchor[4 * m + j] = anchors[4 * i + j];
        cand_delta[4 * m + j] = rg[(a * 4 + j) * hw + p];
      }
      cand_score[m] = sc[i];
      cand_src[m] = level_offset + i;
      cand_level[m] = l;
      m++;
    }
    level_offset += cnt;
    free(logit);
    free(sc);
    free(anchors);
    free(order);
  }

  delta_xywh_decode(coder, m, cand_anchor, cand_delta, img_h, img_w, cand_box);
  // min_bbox_size filter (in place, order kept).
  if (cfg->min_bbox_size >= 0.0f) {
    int64_t q = 0;
    for (int64_t i = 0; i < m; i++) {
      const float *bx = cand_box + 4 * i;
      float bw = bx[2] - bx[0], bh = bx[3] - bx[1];
      if (!(bw > cfg->min_bbox_size && bh > cfg->min_bbox_size)) continue;
      if (q != i) {
        memmove(cand_box + 4 * q, bx, 4 * sizeof(float));
        cand_score[q] = cand_score[i];
        cand_src[q] = cand_src[i];
        cand_level[q] = cand_level[i];
      }
      q++;
    }
    m = q;
  }
  int64_t *keep = mallocCheck((size_t)(m > 0 ? m : 1) * sizeof(int64_t));
  int64_t nk = batched_nms_cpu(m, cand_box, cand_score, cand_level, cfg->iou_thr, 0,
                               cfg->split_thr, keep);
  if (cfg->max_per_img > 0 && nk > cfg->max_per_img) nk = cfg->max_per_img;
  for (int64_t q = 0; q < nk; q++) {
    int64_t i = keep[q];
    memcpy(boxes + 4 * q, cand_box + 4 * i, 4 * sizeof(float));
    scores[q] = cand_score[i];
    if (src) src[q] = cand_src[i];
  }
  free(keep);
  free(cand_anchor);
  free(cand_delta);
  free(cand_box);
  free(cand_score);
  free(cand_src);
  free(cand_level);
  return nk;
}

// ---- proposals from device maps ----

// The shape checks of rpn_proposals, made before any slice of image b is taken.
static void rpn_check_maps(const anchor_generator *g, const tensor *cls, const tensor *reg,
                           int64_t b) {
  int na = anchor_generator_num_base(g);
  for (int l = 0; l < g->num_levels; l++) {
    masa_assert(cls[l].ndim == 4 && cls[l].shape[1] == na && b >= 0 && b < cls[l].shape[0]);
    masa_assert(reg[l].ndim == 4 && reg[l].shape[0] == cls[l].shape[0]);
    masa_assert(reg[l].shape[1] == 4 * na && reg[l].shape[2] == cls[l].shape[2] &&
                reg[l].shape[3] == cls[l].shape[3]);
  }
}

int64_t rpn_proposals_dev(const device *d, const anchor_generator *g, const delta_xywh_coder *coder,
                          const rpn_proposal_cfg *cfg, const tensor *cls, const tensor *reg,
                          int64_t b, float img_h, float img_w, float *boxes, float *scores,
                          int64_t *src) {
  if (d->kind == DEV_CPU)
    return rpn_proposals(g, coder, cfg, cls, reg, b, img_h, img_w, boxes, scores, src);
  rpn_check_maps(g, cls, reg, b);
  int L = g->num_levels, na = anchor_generator_num_base(g);
  if (d->kind == DEV_GUARD) {
    // Only image b's slices come to the host, as (1, A, h, w) and (1, 4A, h, w) maps.
    tensor hc[RPN_MAX_LEVELS], hr[RPN_MAX_LEVELS];
    memset(hc, 0, sizeof hc), memset(hr, 0, sizeof hr);
    for (int l = 0; l < L; l++) {
      int64_t h = cls[l].shape[2], w = cls[l].shape[3], hw = h * w;
      int64_t sc[4] = {1, na, h, w}, sr[4] = {1, 4 * na, h, w};
      hc[l] = tensor_view(mallocCheck((size_t)(na * hw > 0 ? na * hw : 1) * sizeof(float)), 4, sc);
      hr[l] = tensor_view(mallocCheck((size_t)(na * hw > 0 ? 4 * na * hw : 1) * sizeof(float)), 4, sr);
      dev_download(d, hc[l].data, cls[l].data + b * na * hw, (size_t)(na * hw) * sizeof(float));
      dev_download(d, hr[l].data, reg[l].data + b * 4 * na * hw,
                   (size_t)(4 * na * hw) * sizeof(float));
    }
    int64_t n = rpn_proposals(g, coder, cfg, hc, hr, 0, img_h, img_w, boxes, scores, src);
    for (int l = 0; l < L; l++) free(hc[l].data), free(hr[l].data);
    return n;
  }
#ifdef MASA_HAVE_CUDA
  // Image b's slices in place on the device; the base anchors as anchor_generator_grid makes them.
  const float *dc[RPN_MAX_LEVELS], *dr[RPN_MAX_LEVELS];
  int64_t hs[RPN_MAX_LEVELS], ws[RPN_MAX_LEVELS];
  float base[RPN_MAX_LEVELS * 4 * 16];
  masa_assert(na <= 16);
  for (int l = 0; l < L; l++) {
    hs[l] = cls[l].shape[2], ws[l] = cls[l].shape[3];
    int64_t hw = hs[l] * ws[l];
    dc[l] = cls[l].data + b * na * hw;
    dr[l] = reg[l].data + b * 4 * na * hw;
    anchor_generator_base(g, l, base + (size_t)l * 4 * na);
  }
  return rpn_proposals_cuda(L, na, dc, dr, hs, ws, base, g->strides, coder, cfg->nms_pre,
                            cfg->max_per_img, cfg->iou_thr, cfg->min_bbox_size, cfg->split_thr,
                            img_h, img_w, boxes, scores, src, (cudaStream_t)d->stream);
#else
  masa_die(__FILE__, __LINE__, "rpn_proposals_dev", "device", "this build has no CUDA");
#endif
}
