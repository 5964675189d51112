#include "model/resnet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "ops/conv.h"

// Below this many elements an elementwise loop runs on one thread.

void resnet_cfg_default(resnet_cfg *cfg, int depth) {
  memset(cfg, 0, sizeof *cfg);
  cfg->depth = depth;
  cfg->base_channels = 64;
  cfg->style = RESNET_STYLE_CAFFE;
  cfg->frozen_stages = -1;
  cfg->trainable = 1;
  cfg->bn_requires_grad = 1;
  cfg->bn_eps = 1e-5f;
}

// ---------------------------------------------------------------------------------------------
// registration

static void conv_bn_register(resnet_conv_bn *u, param_table *t, const char *prefix,
                             const char *conv_name, const char *bn_name, int64_t c_in,
                             int64_t c_out, int64_t k, int64_t stride, int trainable,
                             int bn_trainable) {
  u->c_in = c_in, u->c_out = c_out, u->k = k, u->stride = stride, u->pad = k / 2;
  u->trainable = trainable;
  u->bn_trainable = bn_trainable;
  char name[96];
  snprintf(name, sizeof name, "%s.weight", conv_name);
  u->w = module_param(t, prefix, name, 4, (int64_t[]){c_out, c_in, k, k}, trainable);
  int64_t c[1] = {c_out};
  snprintf(name, sizeof name, "%s.weight", bn_name);
  u->bn_w = module_param(t, prefix, name, 1, c, bn_trainable);
  snprintf(name, sizeof name, "%s.bias", bn_name);
  u->bn_b = module_param(t, prefix, name, 1, c, bn_trainable);
  snprintf(name, sizeof name, "%s.running_mean", bn_name);
  u->bn_rm = module_param(t, prefix, name, 1, c, 0);
  snprintf(name, sizeof name, "%s.running_var", bn_name);
  u->bn_rv = module_param(t, prefix, name, 1, c, 0);
}

void resnet_register(resnet *m, param_table *t, const char *prefix, const resnet_cfg *cfg) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  static const int layout18[4] = {2, 2, 2, 2}, layout34[4] = {3, 4, 6, 3},
                   layout101[4] = {3, 4, 23, 3}, layout152[4] = {3, 8, 36, 3};
  const int *layout;
  switch (cfg->depth) {
    case 18: layout = layout18, m->expansion = 1; break;
    case 34: layout = layout34, m->expansion = 1; break;
    case 50: layout = layout34, m->expansion = 4; break;
    case 101: layout = layout101, m->expansion = 4; break;
    case 152: layout = layout152, m->expansion = 4; break;
    default: masa_assert(!"resnet depth must be 18, 34, 50, 101 or 152");
  }
  masa_assert(cfg->base_channels > 0 && cfg->frozen_stages >= -1 && cfg->frozen_stages <= 4);
  // Unit u (0 stem, 1..4 layer1..4) is trainable when the backbone is and u > frozen_stages.
  int tr[5];
  for (int u = 0; u < 5; u++) tr[u] = cfg->trainable && u > cfg->frozen_stages;
  int64_t base = cfg->base_channels;
  conv_bn_register(&m->stem, t, prefix, "conv1", "bn1", 3, base, 7, 2, tr[0],
                   tr[0] && cfg->bn_requires_grad);
  int64_t inplanes = base;
  for (int s = 0; s < 4; s++) {
    m->nblocks[s] = layout[s];
    int64_t planes = base << s, stride = s == 0 ? 1 : 2, outc = planes * m->expansion;
    int str = tr[s + 1], bntr = tr[s + 1] && cfg->bn_requires_grad;
    for (int b = 0; b < layout[s]; b++) {
      resnet_block *blk = &m->blocks[s][b];
      char p[200];
      snprintf(p, sizeof p, "%s%slayer%d.%d", prefix, prefix[0] ? "." : "", s + 1, b);
      int64_t st = b == 0 ? stride : 1;
      if (m->expansion == 1) {
        blk->nconv = 2;
        conv_bn_register(&blk->conv[0], t, p, "conv1", "bn1", inplanes, planes, 3, st, str, bntr);
        conv_bn_register(&blk->conv[1], t, p, "conv2", "bn2", planes, planes, 3, 1, str, bntr);
      } else {
        int caffe = cfg->style == RESNET_STYLE_CAFFE;
        blk->nconv = 3;
        conv_bn_register(&blk->conv[0], t, p, "conv1", "bn1", inplanes, planes, 1,
                         caffe ? st : 1, str, bntr);
        conv_bn_register(&blk->conv[1], t, p, "conv2", "bn2", planes, planes, 3,
                         caffe ? 1 : st, str, bntr);
        conv_bn_register(&blk->conv[2], t, p, "conv3", "bn3", planes, outc, 1, 1, str, bntr);
      }
      if (b == 0 && (st != 1 || inplanes != outc)) {
        blk->has_downsample = 1;
        conv_bn_register(&blk->downsample, t, p, "downsample.0", "downsample.1", inplanes, outc, 1,
                         st, str, bntr);
      }
      inplanes = outc;
    }
    m->out_channels[s] = outc;
  }
}

static void conv_bn_init(const resnet_conv_bn *u, param_table *t, uint64_t seed, float gamma) {
  init_kaiming_normal_fan_out(t, u->w, seed);
  init_constant(t, u->bn_w, gamma);
  init_constant(t, u->bn_b, 0.0f);
  init_constant(t, u->bn_rm, 0.0f);
  init_constant(t, u->bn_rv, 1.0f);
}

void resnet_init(const resnet *m, param_table *t, uint64_t seed) {
  conv_bn_init(&m->stem, t, seed, 1.0f);
  for (int s = 0; s < 4; s++)
    for (int b = 0; b < m->nblocks[s]; b++) {
      const resnet_block *blk = &m->blocks[s][b];
      for (int i = 0; i < blk->nconv; i++)
        conv_bn_init(&blk->conv[i], t, seed, i == blk->nconv - 1 ? 0.0f : 1.0f);
      if (blk->has_downsample) conv_bn_init(&blk->downsample, t, seed, 1.0f);
    }
}

// ---------------------------------------------------------------------------------------------
// conv + frozen BN (+ residual) (+ ReLU)

static conv2d_desc conv_bn_desc(const resnet_conv_bn *u, const tensor *x) {
  masa_assert(x->ndim == 4 && x->shape[1] == u->c_in);
  return conv2d_make(x->shape[0], u->c_in, x->shape[2], x->shape[3], u->c_out, u->k, u->stride,
                     u->pad, 1, 1);
}

// out = [relu](conv(x) * scale + shift [+ res]). `out` preallocated by the caller (or shape 0:
// allocated here). In training mode the conv output is kept separately for backward.
static void conv_bn_forward(const resnet_conv_bn *u, model_ctx *ctx, const tensor *x,
                            const float *res, int relu, float eps, tensor *out,
                            resnet_conv_bn_acts *a) {
  param_table *t = ctx->params;
  conv2d_desc d = conv_bn_desc(u, x);
  int64_t n = x->shape[0], c = u->c_out, ho = conv2d_out_h(&d), wo = conv2d_out_w(&d), hw = ho * wo;
  if (!out->data) *out = ctx_tensor4(ctx, n, c, ho, wo);
  masa_assert(out->shape[0] == n && out->shape[1] == c && out->shape[2] == ho && out->shape[3] == wo);
  a->out = *out;
  a->scale = arena_floats(ctx->arena, c);
  a->shift = arena_floats(ctx->arena, c);
  batch_norm_fold_dev(ctx_dev(ctx), c, eps, param_ptr(t, u->bn_w), param_ptr(t, u->bn_b),
                      param_ptr(t, u->bn_rm), param_ptr(t, u->bn_rv), a->scale, a->shift);
  memset(&a->conv, 0, sizeof a->conv);
  const float *conv;
  if (ctx->training) {
    a->conv = ctx_tensor4(ctx, n, c, ho, wo);
    conv = a->conv.data;
  } else {
    conv = out->data;  // BN applied in place
  }
  const device *dv = ctx_dev(ctx);
  conv2d_forward(dv, &d, x->data, param_ptr(t, u->w), NULL, (float *)conv);
  affine_add_relu_forward(dv, n, c, hw, conv, a->scale, a->shift, res, relu, out->data);
}

// g (n, c_out, ho, wo): gradient w.r.t. the BN output (after ReLU masking, before the residual
// split). Accumulates dgamma / dbeta (trainable BN), dw (trainable conv) and dx (may be NULL).
static void conv_bn_backward(const resnet_conv_bn *u, model_ctx *ctx, const tensor *x,
                             const resnet_conv_bn_acts *a, const float *g, float eps, float *dx) {
  if (!u->trainable && !u->bn_trainable && !dx) return;
  param_table *t = ctx->params;
  masa_assert(a->conv.data != NULL);  // forward ran in training mode
  conv2d_desc d = conv_bn_desc(u, x);
  int64_t n = x->shape[0], c = u->c_out, hw = a->out.shape[2] * a->out.shape[3];
  const device *dv = ctx_dev(ctx);
  if (u->bn_trainable)
    bn_frozen_param_backward(dv, n, c, hw, eps, g, a->conv.data, param_ptr(t, u->bn_rm),
                             param_ptr(t, u->bn_rv), param_grad_ptr(t, u->bn_w),
                             param_grad_ptr(t, u->bn_b));
  if (!u->trainable && !dx) return;
  // dconv = g * scale per channel, written in one pass (g * s + 0 is g * s exactly).
  float *dconv = arena_floats(ctx->arena, n * c * hw);
  affine_add_relu_forward(dv, n, c, hw, g, a->scale, arena_zeros(ctx->arena, c), NULL, 0, dconv);
  conv2d_backward(dv, &d, x->data, param_ptr(t, u->w), dconv, dx,
                  u->trainable ? param_grad_ptr(t, u->w) : NULL, NULL);
}

// stem max-pool: ops/resample.h max_pool3s2p1 (kernel 3, stride 2, padding 1).
static int64_t pool_out(int64_t in) { return max_pool3s2p1_out_size(in); }

// ---------------------------------------------------------------------------------------------
// forward

static void block_forward(const resnet_block *blk, model_ctx *ctx, const tensor *x, float eps,
                          tensor *out, resnet_block_acts *a) {
  memset(a, 0, sizeof *a);
  a->x = *x;
  const float *identity = x->data;
  if (blk->has_downsample) {
    tensor ds = {0};
    conv_bn_forward(&blk->downsample, ctx, x, NULL, 0, eps, &ds, &a->downsample);
    identity = ds.data;
  }
  const tensor *h = x;
  for (int i = 0; i < blk->nconv; i++) {
    int last = i == blk->nconv - 1;
    tensor o = {0};
    conv_bn_forward(&blk->conv[i], ctx, h, last ? identity : NULL, 1, eps, last ? out : &o,
                    &a->conv[i]);
    h = &a->conv[i].out;
  }
}

static void block_out_shape(const resnet_block *blk, const tensor *x, int64_t shape[4]) {
  int64_t s = blk->has_downsample ? blk->downsample.stride : 1;
  shape[0] = x->shape[0];
  shape[1] = blk->conv[blk->nconv - 1].c_out;
  shape[2] = (x->shape[2] - 1) / s + 1;  // 1x1 stride s, or 3x3 pad 1 stride s
  shape[3] = (x->shape[3] - 1) / s + 1;
}

void resnet_forward(const resnet *m, model_ctx *ctx, const tensor *x, resnet_acts *a) {
  masa_assert(x->ndim == 4 && x->shape[1] == 3);
  memset(a, 0, sizeof *a);
  a->x = *x;
  a->saved = ctx->training;
  float eps = m->cfg.bn_eps;
  int64_t n = x->shape[0], c0 = m->cfg.base_channels;
  // stem
  conv2d_desc d = conv_bn_desc(&m->stem, x);
  int64_t h1 = conv2d_out_h(&d), w1 = conv2d_out_w(&d);
  a->pool = ctx_tensor4(ctx, n, c0, pool_out(h1), pool_out(w1));
  arena_mark_t mk = arena_mark(ctx->arena);
  tensor stem_out = {0};
  conv_bn_forward(&m->stem, ctx, x, NULL, 1, eps, &stem_out, &a->stem);
  if (ctx->training)
    a->pool_argmax = arena_alloc_bytes(ctx->arena, (size_t)tensor_numel(&a->pool) * sizeof(int64_t));
  max_pool3s2p1_forward(ctx_dev(ctx), n * c0, h1, w1, stem_out.data, a->pool.data,
                        a->pool_argmax);
  if (!ctx->training) arena_rewind(ctx->arena, mk);

  const tensor *cur = &a->pool;
  for (int s = 0; s < 4; s++) {
    int nb = m->nblocks[s];
    int64_t shape[4];
    block_out_shape(&m->blocks[s][0], cur, shape);
    a->out[s] = ctx_tensor(ctx, 4, shape);
    if (ctx->training) {
      a->blocks[s] = arena_alloc_bytes(ctx_host(ctx), (size_t)nb * sizeof(resnet_block_acts));
      for (int b = 0; b < nb; b++) {
        tensor o = {0};
        if (b == nb - 1) o = a->out[s];
        block_forward(&m->blocks[s][b], ctx, cur, eps, &o, &a->blocks[s][b]);
        cur = &a->blocks[s][b].conv[m->blocks[s][b].nconv - 1].out;
      }
    } else {
      // Inference: block outputs ping-pong between two buffers; each block's intermediates are
      // released as soon as it is done.
      arena_mark_t stage_mk = arena_mark(ctx->arena);
      tensor pp[2] = {{0}, {0}};
      for (int i = 0; i < 2 && i < nb - 1; i++) pp[i] = ctx_tensor(ctx, 4, shape);
      tensor in_copy = *cur;
      for (int b = 0; b < nb; b++) {
        tensor o = b == nb - 1 ? a->out[s] : pp[b % 2];
        arena_mark_t blk_mk = arena_mark(ctx->arena);
        resnet_block_acts ba;
        block_forward(&m->blocks[s][b], ctx, &in_copy, eps, &o, &ba);
        arena_rewind(ctx->arena, blk_mk);
        in_copy = o;
      }
      arena_rewind(ctx->arena, stage_mk);
    }
    cur = &a->out[s];
  }
}

// ---------------------------------------------------------------------------------------------
// backward

// g_out: gradient w.r.t. the block output (modified in place). gin: block input gradient
// (accumulated) or NULL.
static void block_backward(const resnet_block *blk, model_ctx *ctx, const resnet_block_acts *a,
                           float *g_out, float eps, float *gin) {
  int nc = blk->nconv;
  const device *dv = ctx_dev(ctx);
  ew_relu_mask(dv, tensor_numel(&a->conv[nc - 1].out), a->conv[nc - 1].out.data, g_out);
  // identity branch
  if (blk->has_downsample)
    conv_bn_backward(&blk->downsample, ctx, &a->x, &a->downsample, g_out, eps, gin);
  else if (gin)
    ew_axpy(dv, tensor_numel(&a->x), 1.0f, g_out, gin);
  // residual branch, last conv first
  float *g = g_out;
  for (int i = nc - 1; i >= 0; i--) {
    const tensor *xin = i > 0 ? &a->conv[i - 1].out : &a->x;
    float *gprev = i > 0 ? arena_zeros(ctx->arena, tensor_numel(xin)) : gin;
    conv_bn_backward(&blk->conv[i], ctx, xin, &a->conv[i], g, eps, gprev);
    if (i > 0) ew_relu_mask(dv, tensor_numel(xin), xin->data, gprev);
    g = gprev;
  }
}

static int block_trainable(const resnet_block *blk) {
  return blk->conv[0].trainable || blk->conv[0].bn_trainable;
}

void resnet_backward(const resnet *m, model_ctx *ctx, const resnet_acts *a,
                     const tensor *const d_out[4], tensor *dx) {
  masa_assert(a->saved);
  float eps = m->cfg.bn_eps;
  int stem_tr = m->stem.trainable || m->stem.bn_trainable;
  // Gradient w.r.t. the current stage output, accumulated from above.
  float *g = NULL;
  for (int s = 3; s >= 0; s--) {
    int64_t numel = tensor_numel(&a->out[s]);
    if (d_out[s]) {
      masa_assert(tensor_same_shape(d_out[s], &a->out[s]));
      if (!g) g = arena_zeros(ctx->arena, numel);
      ew_axpy(ctx_dev(ctx), numel, 1.0f, d_out[s]->data, g);
    }
    if (!g) continue;  // nothing flows from above yet
    for (int b = m->nblocks[s] - 1; b >= 0; b--) {
      const resnet_block *blk = &m->blocks[s][b];
      // Is there anything trainable below this block's input (or is dx wanted)?
      int below = dx != NULL || stem_tr;
      for (int s2 = 0; s2 <= s && !below; s2++)
        for (int b2 = 0; b2 < (s2 == s ? b : m->nblocks[s2]) && !below; b2++)
          below = block_trainable(&m->blocks[s2][b2]);
      if (!below && !block_trainable(blk)) return;
      const resnet_block_acts *ba = &a->blocks[s][b];
      float *gin = below ? arena_zeros(ctx->arena, tensor_numel(&ba->x)) : NULL;
      block_backward(blk, ctx, ba, g, eps, gin);
      if (!gin) return;
      g = gin;
    }
  }
  if (!g || (!stem_tr && !dx)) return;
  // stem: max-pool, ReLU, conv + BN
  const tensor *so = &a->stem.out;
  int64_t planes = so->shape[0] * so->shape[1];
  float *gs = arena_zeros(ctx->arena, tensor_numel(so));
  max_pool3s2p1_backward(ctx_dev(ctx), planes, so->shape[2], so->shape[3], a->pool_argmax, g, gs);
  ew_relu_mask(ctx_dev(ctx), tensor_numel(so), so->data, gs);
  conv_bn_backward(&m->stem, ctx, &a->x, &a->stem, gs, eps, dx ? dx->data : NULL);
}
