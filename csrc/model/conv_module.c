#include "model/conv_module.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "ops/activation.h"
#include "ops/norm.h"

void conv_module_register(conv_module *m, param_table *t, const char *prefix,
                          const conv_module_cfg *cfg) {
  memset(m, 0, sizeof *m);
  m->c_in = cfg->c_in, m->c_out = cfg->c_out, m->k = cfg->k;
  m->stride = cfg->stride ? cfg->stride : 1;
  m->pad = cfg->pad, m->dil = cfg->dil ? cfg->dil : 1, m->groups = cfg->groups ? cfg->groups : 1;
  m->norm = cfg->norm;
  m->gn_groups = cfg->gn_groups;
  m->relu = cfg->relu;
  m->trainable = cfg->trainable;
  m->eps = 1e-5f;
  m->momentum = 0.1f;
  m->has_bias = cfg->bias < 0 ? cfg->norm == NORM_NONE : cfg->bias;
  m->w = m->b = m->nw = m->nb = m->rm = m->rv = -1;
  char p[200];
  snprintf(p, sizeof p, "%s.conv", prefix);
  m->w = module_param(t, p, "weight", 4,
                      (int64_t[]){m->c_out, m->c_in / m->groups, m->k, m->k}, m->trainable);
  if (m->has_bias) m->b = module_param(t, p, "bias", 1, (int64_t[]){m->c_out}, m->trainable);
  if (m->norm == NORM_GN) {
    masa_assert(m->gn_groups > 0 && m->c_out % m->gn_groups == 0);
    snprintf(p, sizeof p, "%s.gn", prefix);
    m->nw = module_param(t, p, "weight", 1, (int64_t[]){m->c_out}, m->trainable);
    m->nb = module_param(t, p, "bias", 1, (int64_t[]){m->c_out}, m->trainable);
  } else if (m->norm == NORM_BN_FROZEN || m->norm == NORM_BN_TRAIN) {
    snprintf(p, sizeof p, "%s.bn", prefix);
    // Frozen BN (norm_eval) has no trainable affine in effect; keep it out of the optimizer.
    int tr = m->trainable && m->norm == NORM_BN_TRAIN;
    m->nw = module_param(t, p, "weight", 1, (int64_t[]){m->c_out}, tr);
    m->nb = module_param(t, p, "bias", 1, (int64_t[]){m->c_out}, tr);
    m->rm = module_param(t, p, "running_mean", 1, (int64_t[]){m->c_out}, 0);
    m->rv = module_param(t, p, "running_var", 1, (int64_t[]){m->c_out}, 0);
  }
}

void conv_module_init(const conv_module *m, param_table *t, uint64_t seed) {
  init_kaiming_normal_fan_out(t, m->w, seed);
  if (m->b >= 0) init_constant(t, m->b, 0.0f);
  if (m->nw >= 0) init_constant(t, m->nw, 1.0f);
  if (m->nb >= 0) init_constant(t, m->nb, 0.0f);
  if (m->rm >= 0) init_constant(t, m->rm, 0.0f);
  if (m->rv >= 0) init_constant(t, m->rv, 1.0f);
}

static conv2d_desc desc_for(const conv_module *m, const tensor *x) {
  return conv2d_make(x->shape[0], m->c_in, x->shape[2], x->shape[3], m->c_out, m->k, m->stride,
                     m->pad, m->dil, m->groups);
}

void conv_module_forward(const conv_module *m, model_ctx *ctx, const tensor *x,
                         conv_module_acts *a) {
  masa_assert(x->ndim == 4 && x->shape[1] == m->c_in);
  memset(a, 0, sizeof *a);
  a->x = x;
  param_table *t = ctx->params;
  conv2d_desc d = desc_for(m, x);
  int64_t n = x->shape[0], c = m->c_out, ho = conv2d_out_h(&d), wo = conv2d_out_w(&d), hw = ho * wo;
  tensor conv = ctx_tensor4(ctx, n, c, ho, wo);
  conv2d_forward(ctx_dev(ctx), &d, x->data, param_ptr(t, m->w), m->b >= 0 ? param_ptr(t, m->b) : NULL,
                     conv.data);
  if (m->norm == NORM_NONE) {
    a->out = conv;
  } else {
    a->conv_out = conv;
    a->out = ctx_tensor4(ctx, n, c, ho, wo);
    if (m->norm == NORM_GN) {
      a->mean = arena_floats(ctx->arena, n * m->gn_groups);
      a->rstd = arena_floats(ctx->arena, n * m->gn_groups);
      group_norm_forward(ctx_dev(ctx), n, c, hw, m->gn_groups, m->eps, conv.data, param_ptr(t, m->nw),
                             param_ptr(t, m->nb), a->out.data, a->mean, a->rstd);
    } else if (m->norm == NORM_BN_TRAIN && ctx->training) {
      a->mean = arena_floats(ctx->arena, c);
      a->rstd = arena_floats(ctx->arena, c);
      batch_norm_train_forward(ctx_dev(ctx), n, c, hw, m->eps, m->momentum, conv.data, param_ptr(t, m->nw),
                                   param_ptr(t, m->nb), a->out.data, a->mean, a->rstd,
                                   param_ptr(t, m->rm), param_ptr(t, m->rv), ctx->bn_sync,
                                   ctx->bn_sync_ctx);
    } else {  // frozen BN, or a trainable BN at inference: running statistics
      a->scale = arena_floats(ctx->arena, c);
      a->shift = arena_floats(ctx->arena, c);
      batch_norm_fold_dev(ctx_dev(ctx), c, m->eps, param_ptr(t, m->nw), param_ptr(t, m->nb), param_ptr(t, m->rm),
                      param_ptr(t, m->rv), a->scale, a->shift);
      channel_affine_forward(ctx_dev(ctx), n, c, hw, conv.data, a->scale, a->shift, a->out.data);
    }
  }
  if (m->relu) relu_forward(ctx_dev(ctx), tensor_numel(&a->out), a->out.data, a->out.data);
}

void conv_module_backward(const conv_module *m, model_ctx *ctx, const conv_module_acts *a,
                          tensor *dy, tensor *dx) {
  param_table *t = ctx->params;
  const tensor *x = a->x;
  int64_t n = dy->shape[0], c = m->c_out, hw = dy->shape[2] * dy->shape[3];
  int64_t numel = tensor_numel(dy);
  float *g = dy->data;
  if (m->relu) ew_relu_mask(ctx_dev(ctx), numel, a->out.data, g);  // dy <- dy * (out > 0), in place
  int train = m->trainable;
  if (m->norm != NORM_NONE) {
    float *dconv = arena_zeros(ctx->arena, numel);
    if (m->norm == NORM_GN) {
      group_norm_backward(ctx_dev(ctx), n, c, hw, m->gn_groups, a->conv_out.data, param_ptr(t, m->nw),
                              a->mean, a->rstd, g, dconv, train ? param_grad_ptr(t, m->nw) : NULL,
                              train ? param_grad_ptr(t, m->nb) : NULL);
    } else if (a->mean) {  // BN with batch statistics
      batch_norm_train_backward(ctx_dev(ctx), n, c, hw, a->conv_out.data, param_ptr(t, m->nw), a->mean,
                                    a->rstd, g, dconv, train ? param_grad_ptr(t, m->nw) : NULL,
                                    train ? param_grad_ptr(t, m->nb) : NULL, ctx->bn_sync,
                                    ctx->bn_sync_ctx);
    } else {
      channel_affine_backward(ctx_dev(ctx), n, c, hw, a->scale, g, dconv);
    }
    g = dconv;
  }
  conv2d_desc d = desc_for(m, x);
  conv2d_backward(ctx_dev(ctx), &d, x->data, param_ptr(t, m->w), g, dx ? dx->data : NULL,
                      train ? param_grad_ptr(t, m->w) : NULL,
                      (train && m->b >= 0) ? param_grad_ptr(t, m->b) : NULL);
}
