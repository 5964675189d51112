#include "model/simplefpn.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"

void simplefpn_register(simplefpn *m, param_table *t, const char *prefix,
                        const simplefpn_cfg *cfg) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  int64_t c = cfg->c_vit;
  int tr = cfg->trainable;
  const char *dot = prefix[0] ? "." : "";
  char p[200];
  fpn_cfg fc = {.num_ins = 4, .c_out = cfg->c_out, .num_outs = cfg->num_outs, .norm = NORM_NONE,
                .trainable = tr, .skip_top_down = !cfg->use_residual};
  for (int i = 0; i < 4; i++) fc.c_in[i] = c;
  fpn_register(&m->fpn, t, prefix, &fc);
  const int64_t wshape[4] = {c, c, 2, 2}, bshape[1] = {c};
  snprintf(p, sizeof p, "%s%sfpn1.0", prefix, dot);
  m->up1a_w = module_param(t, p, "weight", 4, wshape, tr);
  m->up1a_b = module_param(t, p, "bias", 1, bshape, tr);
  snprintf(p, sizeof p, "%s%sfpn1.1.ln", prefix, dot);
  m->ln_w = module_param(t, p, "weight", 1, bshape, tr);
  m->ln_b = module_param(t, p, "bias", 1, bshape, tr);
  snprintf(p, sizeof p, "%s%sfpn1.3", prefix, dot);
  m->up1b_w = module_param(t, p, "weight", 4, wshape, tr);
  m->up1b_b = module_param(t, p, "bias", 1, bshape, tr);
  snprintf(p, sizeof p, "%s%sfpn2.0", prefix, dot);
  m->up2_w = module_param(t, p, "weight", 4, wshape, tr);
  m->up2_b = module_param(t, p, "bias", 1, bshape, tr);
}

void simplefpn_init(const simplefpn *m, param_table *t, uint64_t seed) {
  fpn_init(&m->fpn, t, seed);
  init_torch_default(t, m->up1a_w, m->up1a_b, seed);
  init_torch_default(t, m->up1b_w, m->up1b_b, seed);
  init_torch_default(t, m->up2_w, m->up2_b, seed);
  init_constant(t, m->ln_w, 1.0f);
  init_constant(t, m->ln_b, 0.0f);
}

void simplefpn_forward(const simplefpn *m, model_ctx *ctx, const tensor *x, simplefpn_acts *a) {
  param_table *t = ctx->params;
  const device *d = ctx_dev(ctx);
  int64_t c = m->cfg.c_vit;
  memset(a, 0, sizeof *a);
  a->x = x;
  for (int i = 0; i < 4; i++) {
    masa_assert(x[i].ndim == 4 && x[i].shape[1] == c);
    masa_assert(tensor_same_shape(&x[i], &x[0]));
  }
  int64_t n = x[0].shape[0], h = x[0].shape[2], w = x[0].shape[3];
  // fpn1
  a->t1 = ctx_tensor4(ctx, n, c, 2 * h, 2 * w);
  conv_transpose2x2_forward(d, n, c, h, w, c, x[0].data, param_ptr(t, m->up1a_w),
                            param_ptr(t, m->up1a_b), a->t1.data);
  int64_t hw2 = 4 * h * w;
  a->ln = ctx_tensor4(ctx, n, c, 2 * h, 2 * w);
  a->ln_mean = arena_floats(ctx->arena, n * hw2);
  a->ln_rstd = arena_floats(ctx->arena, n * hw2);
  layer_norm2d_forward(d, n, c, hw2, 1e-6f, a->t1.data, param_ptr(t, m->ln_w),
                       param_ptr(t, m->ln_b), a->ln.data, a->ln_mean, a->ln_rstd);
  a->gelu = ctx_tensor4(ctx, n, c, 2 * h, 2 * w);
  gelu_forward(d, n * c * hw2, a->ln.data, a->gelu.data);
  a->feat[0] = ctx_tensor4(ctx, n, c, 4 * h, 4 * w);
  conv_transpose2x2_forward(d, n, c, 2 * h, 2 * w, c, a->gelu.data, param_ptr(t, m->up1b_w),
                            param_ptr(t, m->up1b_b), a->feat[0].data);
  // fpn2, fpn3, fpn4
  a->feat[1] = ctx_tensor4(ctx, n, c, 2 * h, 2 * w);
  conv_transpose2x2_forward(d, n, c, h, w, c, x[1].data, param_ptr(t, m->up2_w),
                            param_ptr(t, m->up2_b), a->feat[1].data);
  a->feat[2] = x[2];
  a->feat[2].owns = 0;
  int64_t hp = max_pool2d_out_size(h, 2, 2), wp = max_pool2d_out_size(w, 2, 2);
  a->feat[3] = ctx_tensor4(ctx, n, c, hp, wp);
  a->pool_argmax = arena_alloc_bytes(ctx->arena, (size_t)(n * c * hp * wp) * sizeof(int64_t));
  max_pool2d_forward(d, n, c, h, w, 2, 2, x[3].data, a->feat[3].data, a->pool_argmax);
  fpn_forward(&m->fpn, ctx, a->feat, &a->fpn);
  a->out = a->fpn.out;
}

void simplefpn_backward(const simplefpn *m, model_ctx *ctx, const simplefpn_acts *a,
                        const tensor *dout, tensor *dx) {
  param_table *t = ctx->params;
  const device *d = ctx_dev(ctx);
  int tr = m->cfg.trainable;
  int64_t c = m->cfg.c_vit;
  const tensor *x = a->x;
  int64_t n = x[0].shape[0], h = x[0].shape[2], w = x[0].shape[3], hw2 = 4 * h * w;
  // The branch ops have parameters of their own: their input gradients are always needed.
  tensor dfeat[4];
  for (int i = 0; i < 4; i++) dfeat[i] = ctx_zeros_like(ctx, &a->feat[i]);
  fpn_backward(&m->fpn, ctx, &a->fpn, dout, dfeat);
  // fpn1
  float *dgelu = arena_zeros(ctx->arena, n * c * hw2);
  conv_transpose2x2_backward(d, n, c, 2 * h, 2 * w, c, a->gelu.data, param_ptr(t, m->up1b_w),
                             dfeat[0].data, dgelu, tr ? param_grad_ptr(t, m->up1b_w) : NULL,
                             tr ? param_grad_ptr(t, m->up1b_b) : NULL);
  float *dln = arena_zeros(ctx->arena, n * c * hw2);
  gelu_backward(d, n * c * hw2, a->ln.data, dgelu, dln);
  float *dt1 = arena_zeros(ctx->arena, n * c * hw2);
  layer_norm2d_backward(d, n, c, hw2, a->t1.data, param_ptr(t, m->ln_w), a->ln_mean, a->ln_rstd,
                        dln, dt1, tr ? param_grad_ptr(t, m->ln_w) : NULL,
                        tr ? param_grad_ptr(t, m->ln_b) : NULL);
  conv_transpose2x2_backward(d, n, c, h, w, c, x[0].data, param_ptr(t, m->up1a_w), dt1,
                             dx ? dx[0].data : NULL, tr ? param_grad_ptr(t, m->up1a_w) : NULL,
                             tr ? param_grad_ptr(t, m->up1a_b) : NULL);
  // fpn2
  conv_transpose2x2_backward(d, n, c, h, w, c, x[1].data, param_ptr(t, m->up2_w), dfeat[1].data,
                             dx ? dx[1].data : NULL, tr ? param_grad_ptr(t, m->up2_w) : NULL,
                             tr ? param_grad_ptr(t, m->up2_b) : NULL);
  if (dx) {
    ew_axpy(d, tensor_numel(&x[2]), 1.0f, dfeat[2].data, dx[2].data);
    max_pool2d_backward(d, n, c, h, w, 2, 2, a->pool_argmax, dfeat[3].data, dx[3].data);
  }
}
