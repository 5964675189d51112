#include "model/track_head.h"

#include "model/roi_trunk.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "ops/activation.h"
#include "ops/conv.h"

track_head_cfg track_head_default_cfg(int num_levels, const float *strides) {
  track_head_cfg c = {0};
  c.roi = roi_extractor_default(num_levels, strides);
  c.in_channels = 256;
  c.num_convs = 4;
  c.conv_channels = 256;
  c.gn_groups = 32;
  c.num_fcs = 1;
  c.fc_channels = 1024;
  c.embed_channels = 256;
  c.trainable = 1;
  return c;
}

void track_head_register(track_head *m, param_table *t, const char *prefix,
                         const track_head_cfg *cfg) {
  masa_assert(cfg->num_convs >= 0 && cfg->num_convs <= TRACK_HEAD_MAX_CONVS);
  masa_assert(cfg->num_fcs >= 0 && cfg->num_fcs <= TRACK_HEAD_MAX_FCS);
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  char p[200];
  int64_t c = cfg->in_channels;
  for (int i = 0; i < cfg->num_convs; i++) {
    snprintf(p, sizeof p, "%s.embed_head.convs.%d", prefix, i);
    conv_module_cfg cc = {.c_in = c, .c_out = cfg->conv_channels, .k = 3, .stride = 1, .pad = 1,
                          .dil = 1, .groups = 1, .bias = -1, .norm = NORM_GN,
                          .gn_groups = cfg->gn_groups, .relu = 1, .trainable = cfg->trainable};
    conv_module_register(&m->convs[i], t, p, &cc);
    c = cfg->conv_channels;
  }
  int64_t in = c * cfg->roi.out_size * cfg->roi.out_size;
  for (int i = 0; i < cfg->num_fcs; i++) {
    snprintf(p, sizeof p, "%s.embed_head.fcs.%d", prefix, i);
    m->fc_w[i] = module_param(t, p, "weight", 2, (int64_t[]){cfg->fc_channels, in},
                              cfg->trainable);
    m->fc_b[i] = module_param(t, p, "bias", 1, (int64_t[]){cfg->fc_channels}, cfg->trainable);
    in = cfg->fc_channels;
  }
  snprintf(p, sizeof p, "%s.embed_head.fc_embed", prefix);
  m->embed_w = module_param(t, p, "weight", 2, (int64_t[]){cfg->embed_channels, in},
                            cfg->trainable);
  m->embed_b = module_param(t, p, "bias", 1, (int64_t[]){cfg->embed_channels}, cfg->trainable);
}

void track_head_init(const track_head *m, param_table *t, uint64_t seed) {
  for (int i = 0; i < m->cfg.num_convs; i++) conv_module_init(&m->convs[i], t, seed);
  for (int i = 0; i < m->cfg.num_fcs; i++) {
    init_xavier_uniform(t, m->fc_w[i], 1.0f, seed);
    init_constant(t, m->fc_b[i], 0.0f);
  }
  init_normal(t, m->embed_w, 0.0f, 0.01f, seed);
  init_constant(t, m->embed_b, 0.0f);
}

static int64_t flat_dim(const track_head *m) {
  int64_t c = m->cfg.num_convs > 0 ? m->cfg.conv_channels : m->cfg.in_channels;
  return c * m->cfg.roi.out_size * m->cfg.roi.out_size;
}

void track_head_forward(const track_head *m, model_ctx *ctx, const tensor *feats, int64_t k,
                        const float *rois, track_head_acts *a) {
  const track_head_cfg *cfg = &m->cfg;
  param_table *t = ctx->params;
  memset(a, 0, sizeof *a);
  a->feats = feats;
  a->rois = rois;
  a->k = k;
  masa_assert(feats[0].shape[1] == cfg->in_channels);
  a->embed = ctx_tensor(ctx, 2, (int64_t[]){k, cfg->embed_channels});
  if (k == 0) return;  // no RoIs: an empty embedding, nothing for backward
  roi_trunk r = {&cfg->roi, feats, rois, NULL, k, flat_dim(m), cfg->num_convs, m->convs, NULL,
                 cfg->num_fcs, cfg->fc_channels, m->fc_w, m->fc_b, NULL, cfg->trainable};
  int64_t in;
  const float *h = roi_trunk_forward(&r, ctx, &a->roi_feats, a->convs, a->fcs, &in);
  linear_forward(ctx_dev(ctx), k, in, cfg->embed_channels, h, param_ptr(t, m->embed_w),
                     param_ptr(t, m->embed_b), a->embed.data);
}

void track_head_backward(const track_head *m, model_ctx *ctx, const track_head_acts *a,
                         const tensor *d_embed, tensor *d_feats) {
  const track_head_cfg *cfg = &m->cfg;
  int64_t k = a->k;
  if (k == 0) return;
  masa_assert(d_embed->shape[0] == k && d_embed->shape[1] == cfg->embed_channels);
  param_table *t = ctx->params;
  int tr = cfg->trainable;
  roi_trunk r = {&cfg->roi, a->feats, a->rois, a->roi_feats.data, k, flat_dim(m),
                 cfg->num_convs, m->convs, a->convs, cfg->num_fcs, cfg->fc_channels,
                 m->fc_w, m->fc_b, a->fcs, tr};
  // The input of fc_embed and its gradient.
  int64_t in;
  const float *x = roi_trunk_output(&r, &in);
  float *dx = arena_zeros(ctx->arena, k * in);
  linear_backward(ctx_dev(ctx), k, in, cfg->embed_channels, x, param_ptr(t, m->embed_w), d_embed->data, dx,
                      tr ? param_grad_ptr(t, m->embed_w) : NULL,
                      tr ? param_grad_ptr(t, m->embed_b) : NULL);
  roi_trunk_backward(&r, ctx, dx, d_feats);
}
