#include "model/fpn.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"

void fpn_register(fpn *m, param_table *t, const char *prefix, const fpn_cfg *cfg) {
  memset(m, 0, sizeof *m);
  masa_assert(cfg->num_ins >= 1 && cfg->num_ins <= FPN_MAX_INS);
  masa_assert(cfg->num_outs >= cfg->num_ins && cfg->num_outs <= FPN_MAX_OUTS);
  m->cfg = *cfg;
  const char *dot = prefix[0] ? "." : "";
  for (int i = 0; i < cfg->num_ins; i++) {
    char p[200];
    conv_module_cfg lc = {.c_in = cfg->c_in[i], .c_out = cfg->c_out, .k = 1, .stride = 1,
                          .pad = 0, .bias = -1, .norm = cfg->norm, .trainable = cfg->trainable};
    snprintf(p, sizeof p, "%s%slateral_convs.%d", prefix, dot, i);
    conv_module_register(&m->lateral[i], t, p, &lc);
  }
  for (int i = 0; i < cfg->num_ins; i++) {
    char p[200];
    conv_module_cfg oc = {.c_in = cfg->c_out, .c_out = cfg->c_out, .k = 3, .stride = 1,
                          .pad = 1, .bias = -1, .norm = cfg->norm, .trainable = cfg->trainable};
    snprintf(p, sizeof p, "%s%sfpn_convs.%d", prefix, dot, i);
    conv_module_register(&m->out_conv[i], t, p, &oc);
  }
}

static void conv_module_init_xavier(const conv_module *c, param_table *t, uint64_t seed) {
  conv_module_init(c, t, seed);  // norm weight 1 / bias 0 / running stats 0, 1
  init_xavier_uniform(t, c->w, 1.0f, seed);
  if (c->b >= 0) init_constant(t, c->b, 0.0f);
}

void fpn_init(const fpn *m, param_table *t, uint64_t seed) {
  for (int i = 0; i < m->cfg.num_ins; i++) {
    conv_module_init_xavier(&m->lateral[i], t, seed);
    conv_module_init_xavier(&m->out_conv[i], t, seed);
  }
}

void fpn_forward(const fpn *m, model_ctx *ctx, const tensor *x, fpn_acts *a) {
  const fpn_cfg *cfg = &m->cfg;
  const device *d = ctx_dev(ctx);
  memset(a, 0, sizeof *a);
  a->x = x;
  int L = cfg->num_ins;
  for (int i = 0; i < L; i++) {
    masa_assert(x[i].ndim == 4 && x[i].shape[0] == x[0].shape[0]);
    conv_module_forward(&m->lateral[i], ctx, &x[i], &a->lat[i]);
  }
  int64_t n = x[0].shape[0], c = cfg->c_out;
  // Top-down, coarsest first: td[i] = lat[i] + nearest(td[i+1]).
  for (int i = L - 1; i >= 0; i--) {
    const tensor *li = &a->lat[i].out;
    a->td[i] = ctx_tensor(ctx, 4, li->shape);
    dev_copy(d, a->td[i].data, li->data, (size_t)tensor_numel(li) * sizeof(float));
    if (i < L - 1 && !cfg->skip_top_down) {
      const tensor *up = &a->td[i + 1];
      int64_t ho = li->shape[2], wo = li->shape[3];
      float *tmp = arena_floats(ctx->arena, n * c * ho * wo);
      upsample_nearest_forward(d, n, c, up->shape[2], up->shape[3], ho, wo, up->data, tmp);
      ew_axpy(d, n * c * ho * wo, 1.0f, tmp, a->td[i].data);
    }
  }
  for (int i = 0; i < L; i++) {
    conv_module_forward(&m->out_conv[i], ctx, &a->td[i], &a->outc[i]);
    a->out[i] = a->outc[i].out;
  }
  for (int k = L; k < cfg->num_outs; k++) {
    const tensor *prev = &a->out[k - 1];
    int64_t h = prev->shape[2], w = prev->shape[3];
    int64_t ho = max_pool2d_out_size(h, 1, 2), wo = max_pool2d_out_size(w, 1, 2);
    a->out[k] = ctx_tensor4(ctx, n, c, ho, wo);
    a->argmax[k] = arena_alloc_bytes(ctx->arena, (size_t)(n * c * ho * wo) * sizeof(int64_t));
    max_pool2d_forward(d, n, c, h, w, 1, 2, prev->data, a->out[k].data, a->argmax[k]);
  }
}

void fpn_backward(const fpn *m, model_ctx *ctx, const fpn_acts *a, const tensor *dout,
                  tensor *dx) {
  const fpn_cfg *cfg = &m->cfg;
  const device *d = ctx_dev(ctx);
  int L = cfg->num_ins;
  int64_t n = a->out[0].shape[0], c = cfg->c_out;
  // Our own copies of the output gradients (the extra levels fold back into out[L-1]).
  tensor g[FPN_MAX_OUTS];
  for (int k = 0; k < cfg->num_outs; k++) {
    masa_assert(tensor_same_shape(&dout[k], &a->out[k]));
    g[k] = ctx_tensor(ctx, 4, a->out[k].shape);
    dev_copy(d, g[k].data, dout[k].data, (size_t)tensor_numel(&dout[k]) * sizeof(float));
  }
  for (int k = cfg->num_outs - 1; k >= L; k--) {
    const tensor *prev = &a->out[k - 1];
    max_pool2d_backward(d, n, c, prev->shape[2], prev->shape[3], 1, 2, a->argmax[k], g[k].data,
                            g[k - 1].data);
  }
  tensor dtd[FPN_MAX_INS];
  for (int i = 0; i < L; i++) {
    dtd[i] = ctx_zeros_like(ctx, &a->td[i]);
    conv_module_backward(&m->out_conv[i], ctx, &a->outc[i], &g[i], &dtd[i]);
  }
  // td[i] = lat[i] + up(td[i+1]): finest first, dtd[i] is complete when reached.
  for (int i = 0; i < L; i++) {
    if (i < L - 1 && !cfg->skip_top_down) {
      const tensor *up = &a->td[i + 1];
      upsample_nearest_backward(d, n, c, up->shape[2], up->shape[3], a->td[i].shape[2],
                                a->td[i].shape[3], dtd[i].data, dtd[i + 1].data);
    }
    conv_module_backward(&m->lateral[i], ctx, &a->lat[i], &dtd[i], dx ? &dx[i] : NULL);
  }
}
