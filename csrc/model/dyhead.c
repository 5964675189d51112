#include "model/dyhead.h"

#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "ops/scale_attn.h"

void dyhead_register(dyhead *m, param_table *t, const char *prefix, const dyhead_cfg *cfg) {
  memset(m, 0, sizeof *m);
  masa_assert(cfg->num_blocks >= 1 && cfg->num_blocks <= FUSION_MAX_BLOCKS);
  masa_assert(cfg->c_out % 4 == 0);
  m->cfg = *cfg;
  int tr = cfg->trainable;
  for (int b = 0; b < cfg->num_blocks; b++) {
    dyhead_block *blk = &m->blocks[b];
    blk->c_in = b == 0 ? cfg->c_in : cfg->c_out;
    blk->c_out = cfg->c_out;
    blk->c_mid = cfg->c_out / 4;
    int64_t c = blk->c_out, cm = blk->c_mid;
    char p[200], q[260];
    snprintf(p, sizeof p, "%s%sdyhead_blocks.%d", prefix, prefix[0] ? "." : "", b);
    snprintf(q, sizeof q, "%s.spatial_conv_high", p);
    dydcn_register(&blk->high, t, q, blk->c_in, c, 1, cfg->gn_groups, tr);
    snprintf(q, sizeof q, "%s.spatial_conv_mid", p);
    dydcn_register(&blk->mid, t, q, blk->c_in, c, 1, cfg->gn_groups, tr);
    snprintf(q, sizeof q, "%s.spatial_conv_low", p);
    dydcn_register(&blk->low, t, q, blk->c_in, c, 2, cfg->gn_groups, tr);
    snprintf(q, sizeof q, "%s.spatial_conv_offset", p);
    blk->off_w = module_param(t, q, "weight", 4, (int64_t[]){27, blk->c_in, 3, 3}, tr);
    blk->off_b = module_param(t, q, "bias", 1, (int64_t[]){27}, tr);
    snprintf(q, sizeof q, "%s.scale_attn_module.1", p);
    blk->sa_w = module_param(t, q, "weight", 4, (int64_t[]){1, c, 1, 1}, tr);
    blk->sa_b = module_param(t, q, "bias", 1, (int64_t[]){1}, tr);
    snprintf(q, sizeof q, "%s.task_attn_module.conv1.conv", p);
    blk->ta_w1 = module_param(t, q, "weight", 4, (int64_t[]){cm, c, 1, 1}, tr);
    blk->ta_b1 = module_param(t, q, "bias", 1, (int64_t[]){cm}, tr);
    snprintf(q, sizeof q, "%s.task_attn_module.conv2.conv", p);
    blk->ta_w2 = module_param(t, q, "weight", 4, (int64_t[]){4 * c, cm, 1, 1}, tr);
    blk->ta_b2 = module_param(t, q, "bias", 1, (int64_t[]){4 * c}, tr);
  }
}

void dyhead_init(const dyhead *m, param_table *t, int zero_init_offset, uint64_t seed) {
  for (int b = 0; b < m->cfg.num_blocks; b++) {
    const dyhead_block *blk = &m->blocks[b];
    dydcn_init(&blk->high, t, seed);
    dydcn_init(&blk->mid, t, seed);
    dydcn_init(&blk->low, t, seed);
    const int convs[4][2] = {{blk->off_w, blk->off_b},
                             {blk->sa_w, blk->sa_b},
                             {blk->ta_w1, blk->ta_b1},
                             {blk->ta_w2, blk->ta_b2}};
    for (int i = 0; i < 4; i++) {
      init_normal(t, convs[i][0], 0.0f, 0.01f, seed);
      init_constant(t, convs[i][1], 0.0f);
    }
    if (zero_init_offset) init_constant(t, blk->off_w, 0.0f);
  }
}

// ---------------------------------------------------------------------------------------------
// Scale-aware attention (ops/scale_attn.h): a = clamp((relu(z) + 3) / 6, 0, 1), z = w . GAP(f) + b.

static void attn_forward(model_ctx *ctx, int64_t n, int64_t c, int64_t hw, const float *f,
                         const float *w, const float *bias, dyhead_attn_acts *a) {
  a->f = f;
  a->hw = hw;
  a->p = arena_floats(ctx->arena, n * c);
  a->z = arena_floats(ctx->arena, n);
  a->a = arena_floats(ctx->arena, n);
  scale_attn_forward(ctx_dev(ctx), n, c, hw, f, w, bias, a->p, a->z, a->a);
}

// dterm: gradient of the term f * a(f). Accumulates df, dw, db (nullable).
static void attn_backward(const device *d, int64_t n, int64_t c, const dyhead_attn_acts *a,
                          const float *w, const float *dterm, float *df, float *dw, float *db) {
  scale_attn_backward(d, n, c, a->hw, a->f, a->p, a->z, a->a, w, dterm, df, dw, db);
}

// ---------------------------------------------------------------------------------------------

static void block_forward(const dyhead *m, const dyhead_block *blk, model_ctx *ctx, int L,
                          const tensor *x, dyhead_block_acts *a) {
  param_table *t = ctx->params;
  high_offset_mode mode = m->cfg.offset_mode;
  const device *d = ctx_dev(ctx);
  const float *saw = param_ptr(t, blk->sa_w), *sab = param_ptr(t, blk->sa_b);
  a->x = x;
  for (int l = 0; l < L; l++) {
    masa_assert(x[l].ndim == 4 && x[l].shape[1] == blk->c_in && x[l].shape[0] == x[0].shape[0]);
    int64_t n = x[l].shape[0], hl = x[l].shape[2], wl = x[l].shape[3], hw = hl * wl;
    int64_t c = blk->c_out, chw = c * hw;
    a->out[l] = ctx_tensor4(ctx, n, c, hl, wl);
    arena_mark_t mark = arena_mark(ctx->arena);

    conv2d_desc cd = conv2d_make(n, blk->c_in, hl, wl, 27, 3, 1, 1, 1, 1);
    a->om[l] = ctx_tensor4(ctx, n, 27, hl, wl);
    conv2d_forward(d, &cd, x[l].data, param_ptr(t, blk->off_w), param_ptr(t, blk->off_b),
                   a->om[l].data);
    a->ms[l] = ctx_tensor4(ctx, n, 9, hl, wl);
    for (int64_t b = 0; b < n; b++)
      sigmoid_forward(d, 9 * hw, a->om[l].data + (b * 27 + 18) * hw, a->ms[l].data + b * 9 * hw);
    const float *om = a->om[l].data, *ms = a->ms[l].data;

    tensor *y = &a->y[l];
    *y = ctx_tensor4(ctx, n, c, hl, wl);
    dev_zero(d, y->data, (size_t)(n * chw) * sizeof(float));
    fusion_branch_geom g = fusion_branch_geometry(27, 9, hl, wl, 0, 0, hl, wl, mode);
    dydcn_forward(&blk->mid, ctx, &x[l], om, ms, &g, &a->mid[l]);
    attn_forward(ctx, n, c, hw, a->mid[l].out.data, saw, sab, &a->att_mid[l]);
    ew_row_scale_add(d, n, chw, a->att_mid[l].a, a->mid[l].out.data, y->data);
    int terms = 1;
    if (l > 0) {
      int64_t ho = (x[l - 1].shape[2] - 1) / 2 + 1, wo = (x[l - 1].shape[3] - 1) / 2 + 1;
      if (ho != hl || wo != wl)
        masa_die(__FILE__, __LINE__, "dyhead_forward", "shape",
                 "level l must be ceil(level l-1 / 2) in both dimensions");
      g = fusion_branch_geometry(27, 9, hl, wl, 0, 0, ho, wo, mode);
      dydcn_forward(&blk->low, ctx, &x[l - 1], om, ms, &g, &a->low[l]);
      attn_forward(ctx, n, c, hw, a->low[l].out.data, saw, sab, &a->att_low[l]);
      ew_row_scale_add(d, n, chw, a->att_low[l].a, a->low[l].out.data, y->data);
      terms++;
    }
    if (l < L - 1) {
      const tensor *xh = &x[l + 1];
      int64_t ho = xh->shape[2], wo = xh->shape[3];
      g = fusion_branch_geometry(27, 9, hl, wl, 0, 0, ho, wo, mode);
      dydcn_forward(&blk->high, ctx, xh, om, ms, &g, &a->high[l]);
      a->up[l] = ctx_tensor4(ctx, n, c, hl, wl);
      resize_bilinear_ac_forward(d, n, c, ho, wo, hl, wl, a->high[l].out.data, a->up[l].data);
      attn_forward(ctx, n, c, hw, a->up[l].data, saw, sab, &a->att_high[l]);
      ew_row_scale_add(d, n, chw, a->att_high[l].a, a->up[l].data, y->data);
      terms++;
    }
    if (terms > 1) ew_div(d, n * chw, (float)terms, y->data);  // divided, as PyTorch does
    a->dyrelu_cache[l] = arena_floats(ctx->arena, dyrelu_cache_size(n, c, blk->c_mid));
    dyrelu_forward(d, n, c, hw, blk->c_mid, y->data, param_ptr(t, blk->ta_w1),
                   param_ptr(t, blk->ta_b1), param_ptr(t, blk->ta_w2), param_ptr(t, blk->ta_b2),
                   a->out[l].data, a->dyrelu_cache[l]);
    if (!ctx->training) arena_rewind(ctx->arena, mark);
  }
}

void dyhead_forward(const dyhead *m, model_ctx *ctx, int num_levels, const tensor *x,
                    dyhead_acts *a) {
  masa_assert(num_levels >= 1 && num_levels <= FUSION_MAX_LEVELS);
  memset(a, 0, sizeof *a);
  a->num_levels = num_levels;
  const tensor *in = x;
  for (int b = 0; b < m->cfg.num_blocks; b++) {
    block_forward(m, &m->blocks[b], ctx, num_levels, in, &a->blk[b]);
    in = a->blk[b].out;
  }
  a->out = a->blk[m->cfg.num_blocks - 1].out;
}

static void block_backward(const dyhead *m, const dyhead_block *blk, model_ctx *ctx, int L,
                           const dyhead_block_acts *a, const tensor *dout, tensor *dx) {
  param_table *t = ctx->params;
  int tr = m->cfg.trainable;
  const device *d = ctx_dev(ctx);
  const tensor *x = a->x;
  const float *saw = param_ptr(t, blk->sa_w);
  float *dsaw = tr ? param_grad_ptr(t, blk->sa_w) : NULL;
  float *dsab = tr ? param_grad_ptr(t, blk->sa_b) : NULL;
  for (int l = 0; l < L; l++) {
    int64_t n = x[l].shape[0], hl = x[l].shape[2], wl = x[l].shape[3], hw = hl * wl;
    int64_t c = blk->c_out, chw = c * hw;
    int terms = 1 + (l > 0) + (l < L - 1);
    float *dterm = arena_zeros(ctx->arena, n * chw);
    dyrelu_backward(d, n, c, hw, blk->c_mid, a->y[l].data, param_ptr(t, blk->ta_w1),
                    param_ptr(t, blk->ta_w2), a->dyrelu_cache[l], dout[l].data, dterm,
                    tr ? param_grad_ptr(t, blk->ta_w1) : NULL,
                    tr ? param_grad_ptr(t, blk->ta_b1) : NULL,
                    tr ? param_grad_ptr(t, blk->ta_w2) : NULL,
                    tr ? param_grad_ptr(t, blk->ta_b2) : NULL);
    ew_div(d, n * chw, (float)terms, dterm);
    float *dom = arena_zeros(ctx->arena, n * 27 * hw);
    float *dms = arena_zeros(ctx->arena, n * 9 * hw);

    float *df = arena_zeros(ctx->arena, n * chw);
    attn_backward(d, n, c, &a->att_mid[l], saw, dterm, df, dsaw, dsab);
    dydcn_backward(&blk->mid, ctx, &a->mid[l], df, dx ? dx[l].data : NULL, dom, dms);
    if (l > 0) {
      dev_zero(d, df, (size_t)(n * chw) * sizeof(float));
      attn_backward(d, n, c, &a->att_low[l], saw, dterm, df, dsaw, dsab);
      dydcn_backward(&blk->low, ctx, &a->low[l], df, dx ? dx[l - 1].data : NULL, dom, dms);
    }
    if (l < L - 1) {
      const tensor *xh = &x[l + 1];
      int64_t ho = xh->shape[2], wo = xh->shape[3];
      dev_zero(d, df, (size_t)(n * chw) * sizeof(float));
      attn_backward(d, n, c, &a->att_high[l], saw, dterm, df, dsaw, dsab);
      float *dhigh = arena_zeros(ctx->arena, n * c * ho * wo);
      resize_bilinear_ac_backward(d, n, c, ho, wo, hl, wl, df, dhigh);
      dydcn_backward(&blk->high, ctx, &a->high[l], dhigh, dx ? dx[l + 1].data : NULL, dom, dms);
    }
    const float *ms = a->ms[l].data;
    for (int64_t b = 0; b < n; b++)
      sigmoid_backward(d, 9 * hw, ms + b * 9 * hw, dms + b * 9 * hw, dom + (b * 27 + 18) * hw);
    conv2d_desc cd = conv2d_make(n, blk->c_in, hl, wl, 27, 3, 1, 1, 1, 1);
    conv2d_backward(d, &cd, x[l].data, param_ptr(t, blk->off_w), dom, dx ? dx[l].data : NULL,
                        tr ? param_grad_ptr(t, blk->off_w) : NULL,
                        tr ? param_grad_ptr(t, blk->off_b) : NULL);
  }
}

void dyhead_backward(const dyhead *m, model_ctx *ctx, const dyhead_acts *a, const tensor *dout,
                     tensor *dx) {
  int L = a->num_levels;
  const tensor *g = dout;
  for (int b = m->cfg.num_blocks - 1; b >= 0; b--) {
    const dyhead_block_acts *ba = &a->blk[b];
    tensor *gin = dx;
    if (b > 0) {  // gradients of the previous block's outputs, kept in the arena
      gin = arena_alloc_bytes(ctx_host(ctx), sizeof(tensor) * (size_t)L);
      for (int l = 0; l < L; l++) gin[l] = ctx_zeros_like(ctx, &ba->x[l]);
    }
    block_backward(m, &m->blocks[b], ctx, L, ba, g, gin);
    g = gin;
  }
}
