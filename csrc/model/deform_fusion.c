#include "model/deform_fusion.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"

// ---------------------------------------------------------------------------------------------
// Branch geometry

fusion_branch_geom fusion_branch_geometry(int64_t c_om, int64_t c_ms, int64_t hl, int64_t wl,
                                          int64_t off_c0, int64_t msk_c0, int64_t ho, int64_t wo,
                                          high_offset_mode mode) {
  const int64_t noff = 18, nmsk = 9;  // 3x3 kernel, one deform group
  masa_assert(off_c0 + noff <= c_om && msk_c0 + nmsk <= c_ms);
  fusion_branch_geom g;
  g.off_base = off_c0 * hl * wl;
  g.msk_base = msk_c0 * hl * wl;
  // The plain channel slice (also the top-left crop when (ho, wo) is smaller).
  dcn_strides off_slice = {c_om * hl * wl, hl * wl, wl};
  dcn_strides msk_slice = {c_ms * hl * wl, hl * wl, wl};
  // mmcv's raw read with the output's strides.
  dcn_strides off_raw = {c_om * hl * wl, ho * wo, wo};
  dcn_strides msk_raw = {c_ms * hl * wl, ho * wo, wo};
  int same = ho == hl && wo == wl;
  if (same || mode == HIGH_OFFSET_CROP) {
    masa_assert(ho <= hl && wo <= wl);
    g.off = g.doff = off_slice;
    g.msk = msk_slice;
  } else if (mode == HIGH_OFFSET_REINTERPRET) {
    // The reinterpreted window must stay inside the image's om / ms block.
    masa_assert(off_c0 * hl * wl + noff * ho * wo <= c_om * hl * wl);
    masa_assert(msk_c0 * hl * wl + nmsk * ho * wo <= c_ms * hl * wl);
    g.off = g.doff = off_raw;
    g.msk = msk_raw;
  } else {
    masa_assert(mode == HIGH_OFFSET_CROP_MMCV);
    masa_assert(ho <= hl && wo <= wl);
    masa_assert(off_c0 * hl * wl + noff * ho * wo <= c_om * hl * wl);
    g.off = off_raw;
    g.doff = off_slice;
    g.msk = msk_slice;
  }
  return g;
}

// ---------------------------------------------------------------------------------------------
// DyDCNv2

void dydcn_register(dydcn *m, param_table *t, const char *prefix, int64_t c_in, int64_t c_out,
                    int64_t stride, int64_t gn_groups, int trainable) {
  memset(m, 0, sizeof *m);
  masa_assert(gn_groups > 0 && c_out % gn_groups == 0);
  m->c_in = c_in, m->c_out = c_out, m->stride = stride, m->gn_groups = gn_groups;
  m->eps = 1e-5f;
  m->trainable = trainable;
  char p[200];
  snprintf(p, sizeof p, "%s.conv", prefix);
  m->w = module_param(t, p, "weight", 4, (int64_t[]){c_out, c_in, 3, 3}, trainable);
  snprintf(p, sizeof p, "%s.norm", prefix);
  m->nw = module_param(t, p, "weight", 1, (int64_t[]){c_out}, trainable);
  m->nb = module_param(t, p, "bias", 1, (int64_t[]){c_out}, trainable);
}

void dydcn_init(const dydcn *m, param_table *t, uint64_t seed) {
  float stdv = (float)(1.0 / sqrt((double)m->c_in * 9.0));
  init_uniform(t, m->w, -stdv, stdv, seed);
  init_constant(t, m->nw, 1.0f);
  init_constant(t, m->nb, 0.0f);
}

void dydcn_forward(const dydcn *m, model_ctx *ctx, const tensor *x, const float *om,
                   const float *ms, const fusion_branch_geom *g, dydcn_acts *a) {
  masa_assert(x->ndim == 4 && x->shape[1] == m->c_in);
  memset(a, 0, sizeof *a);
  param_table *t = ctx->params;
  int64_t n = x->shape[0];
  a->x = x->data;
  a->om = om;
  a->ms = ms;
  a->g = *g;
  a->d = dcn_make(n, m->c_in, x->shape[2], x->shape[3], m->c_out, 3, m->stride, 1, 1);
  a->d.off = g->off;
  a->d.msk = g->msk;
  int64_t ho = a->d.ho, wo = a->d.wo;
  const device *dv = ctx_dev(ctx);
  a->conv_out = ctx_tensor4(ctx, n, m->c_out, ho, wo);
  dcn_forward(dv, &a->d, x->data, om + g->off_base, ms + g->msk_base, param_ptr(t, m->w), NULL,
                  a->conv_out.data);
  a->out = ctx_tensor4(ctx, n, m->c_out, ho, wo);
  a->mean = arena_floats(ctx->arena, n * m->gn_groups);
  a->rstd = arena_floats(ctx->arena, n * m->gn_groups);
  group_norm_forward(dv, n, m->c_out, ho * wo, m->gn_groups, m->eps, a->conv_out.data,
                     param_ptr(t, m->nw), param_ptr(t, m->nb), a->out.data, a->mean, a->rstd);
}

// dst[b, ch, :ho, :wo] += src[b, ch, :ho, :wo] for n images of `channels` (ho, wo) windows read
// and written through their own strides (unit column stride). Each window is gathered into a
// contiguous block (2-D copies), summed there (ew_add: dst + src, the order of the loop it
// replaces) and scattered back.
static void add_strided_windows(const device *d, int64_t n, int64_t channels, int64_t ho,
                                int64_t wo, const float *src, const dcn_strides *ss, float *dst,
                                const dcn_strides *ds, arena *ar) {
  int64_t win = ho * wo, total = n * channels * win;
  arena_mark_t mark = arena_mark(ar);
  float *a = arena_floats(ar, total), *b = arena_floats(ar, total);
  const size_t fs = sizeof(float);
  for (int64_t i = 0; i < n; i++)
    for (int64_t ch = 0; ch < channels; ch++) {
      int64_t k = (i * channels + ch) * win;
      dev_copy2d(d, a + k, (size_t)wo * fs, dst + i * ds->batch + ch * ds->channel,
                 (size_t)ds->row * fs, (size_t)wo * fs, (size_t)ho);
      dev_copy2d(d, b + k, (size_t)wo * fs, src + i * ss->batch + ch * ss->channel,
                 (size_t)ss->row * fs, (size_t)wo * fs, (size_t)ho);
    }
  ew_add(d, total, a, b, a);
  for (int64_t i = 0; i < n; i++)
    for (int64_t ch = 0; ch < channels; ch++)
      dev_copy2d(d, dst + i * ds->batch + ch * ds->channel, (size_t)ds->row * fs,
                 a + (i * channels + ch) * win, (size_t)wo * fs, (size_t)wo * fs, (size_t)ho);
  arena_rewind(ar, mark);
}

void dydcn_backward(const dydcn *m, model_ctx *ctx, const dydcn_acts *a, const float *dy,
                    float *dx, float *dom, float *dms) {
  param_table *t = ctx->params;
  const dcn_desc *d = &a->d;
  int64_t n = d->n, hw = d->ho * d->wo;
  int tr = m->trainable;
  const device *dv = ctx_dev(ctx);
  float *dconv = arena_zeros(ctx->arena, n * m->c_out * hw);
  group_norm_backward(dv, n, m->c_out, hw, m->gn_groups, a->conv_out.data, param_ptr(t, m->nw),
                      a->mean, a->rstd, dy, dconv, tr ? param_grad_ptr(t, m->nw) : NULL,
                      tr ? param_grad_ptr(t, m->nb) : NULL);
  const fusion_branch_geom *g = &a->g;
  int redirect = dom && memcmp(&g->off, &g->doff, sizeof g->off) != 0;
  float *doff = NULL;
  if (redirect) {
    // mmcv writes the offset gradient to a fresh contiguous buffer: collect it with the read
    // strides in a scratch block, then add it where the gradient lands (the doff strides).
    doff = arena_zeros(ctx->arena, n * g->off.batch);
  } else if (dom) {
    doff = dom + g->off_base;
  }
  dcn_backward(dv, d, a->x, a->om + g->off_base, a->ms + g->msk_base, param_ptr(t, m->w), dconv,
               dx, doff, dms ? dms + g->msk_base : NULL, tr ? param_grad_ptr(t, m->w) : NULL,
               NULL);
  if (redirect) add_strided_windows(dv, n, 18, d->ho, d->wo, doff, &g->off, dom + g->off_base,
                                    &g->doff, ctx->arena);
}

// ---------------------------------------------------------------------------------------------
// DeformFusion

void deform_fusion_register(deform_fusion *m, param_table *t, const char *prefix,
                            const deform_fusion_cfg *cfg) {
  memset(m, 0, sizeof *m);
  masa_assert(cfg->num_blocks >= 1 && cfg->num_blocks <= FUSION_MAX_BLOCKS);
  m->cfg = *cfg;
  for (int b = 0; b < cfg->num_blocks; b++) {
    deform_fusion_block *blk = &m->blocks[b];
    blk->c_in = b == 0 ? cfg->c_in : cfg->c_out;
    blk->c_out = cfg->c_out;
    char p[200], q[240];
    snprintf(p, sizeof p, "%s%sdyhead_blocks.%d", prefix, prefix[0] ? "." : "", b);
    snprintf(q, sizeof q, "%s.spatial_conv_offset", p);
    blk->off_w = module_param(t, q, "weight", 4, (int64_t[]){81, blk->c_in, 3, 3}, cfg->trainable);
    blk->off_b = module_param(t, q, "bias", 1, (int64_t[]){81}, cfg->trainable);
    snprintf(q, sizeof q, "%s.spatial_conv_high", p);
    dydcn_register(&blk->high, t, q, blk->c_in, blk->c_out, 1, cfg->gn_groups, cfg->trainable);
    snprintf(q, sizeof q, "%s.spatial_conv_mid", p);
    dydcn_register(&blk->mid, t, q, blk->c_in, blk->c_out, 1, cfg->gn_groups, cfg->trainable);
    snprintf(q, sizeof q, "%s.spatial_conv_low", p);
    dydcn_register(&blk->low, t, q, blk->c_in, blk->c_out, 2, cfg->gn_groups, cfg->trainable);
  }
}

void deform_fusion_init(const deform_fusion *m, param_table *t, int zero_init_offset,
                        uint64_t seed) {
  for (int b = 0; b < m->cfg.num_blocks; b++) {
    const deform_fusion_block *blk = &m->blocks[b];
    if (zero_init_offset) {
      init_constant(t, blk->off_w, 0.0f);
    } else {
      init_normal(t, blk->off_w, 0.0f, 0.01f, seed);
    }
    init_constant(t, blk->off_b, 0.0f);
    dydcn_init(&blk->high, t, seed);
    dydcn_init(&blk->mid, t, seed);
    dydcn_init(&blk->low, t, seed);
  }
}

static void block_forward(const deform_fusion *m, const deform_fusion_block *blk, model_ctx *ctx,
                          int L, const tensor *x, deform_fusion_block_acts *a) {
  param_table *t = ctx->params;
  const deform_fusion_cfg *cfg = &m->cfg;
  const device *d = ctx_dev(ctx);
  a->x = x;
  for (int l = 0; l < L; l++) {
    masa_assert(x[l].ndim == 4 && x[l].shape[1] == blk->c_in && x[l].shape[0] == x[0].shape[0]);
    int64_t n = x[l].shape[0], hl = x[l].shape[2], wl = x[l].shape[3], hw = hl * wl;
    int64_t c = blk->c_out;
    tensor *out = &a->out[l];
    *out = ctx_tensor4(ctx, n, c, hl, wl);
    arena_mark_t mark = arena_mark(ctx->arena);

    conv2d_desc cd = conv2d_make(n, blk->c_in, hl, wl, 81, 3, 1, 1, 1, 1);
    a->om[l] = ctx_tensor4(ctx, n, 81, hl, wl);
    conv2d_forward(d, &cd, x[l].data, param_ptr(t, blk->off_w), param_ptr(t, blk->off_b),
                   a->om[l].data);
    a->ms[l] = ctx_tensor4(ctx, n, 27, hl, wl);
    for (int64_t b = 0; b < n; b++)
      sigmoid_forward(d, 27 * hw, a->om[l].data + (b * 81 + 54) * hw, a->ms[l].data + b * 27 * hw);
    const float *om = a->om[l].data, *ms = a->ms[l].data;

    fusion_branch_geom g = fusion_branch_geometry(81, 27, hl, wl, 0, 0, hl, wl, cfg->offset_mode);
    dydcn_forward(&blk->mid, ctx, &x[l], om, ms, &g, &a->mid[l]);
    dev_copy(d, out->data, a->mid[l].out.data, (size_t)(n * c * hw) * sizeof(float));
    int terms = 1;
    if (l > 0) {
      int64_t ho = (x[l - 1].shape[2] - 1) / 2 + 1, wo = (x[l - 1].shape[3] - 1) / 2 + 1;
      if (ho != hl || wo != wl)
        masa_die(__FILE__, __LINE__, "deform_fusion_forward", "shape",
                 "level l must be ceil(level l-1 / 2) in both dimensions");
      g = fusion_branch_geometry(81, 27, hl, wl, 18, 9, ho, wo, cfg->offset_mode);
      dydcn_forward(&blk->low, ctx, &x[l - 1], om, ms, &g, &a->low[l]);
      ew_axpy(d, n * c * hw, 1.0f, a->low[l].out.data, out->data);
      terms++;
    }
    if (l < L - 1) {
      const tensor *xh = &x[l + 1];
      if (cfg->fix_upsample) {
        a->xup[l] = ctx_tensor4(ctx, n, blk->c_in, hl, wl);
        resize_bilinear_ac_forward(d, n, blk->c_in, xh->shape[2], xh->shape[3], hl, wl, xh->data,
                                   a->xup[l].data);
        g = fusion_branch_geometry(81, 27, hl, wl, 36, 18, hl, wl, cfg->offset_mode);
        dydcn_forward(&blk->high, ctx, &a->xup[l], om, ms, &g, &a->high[l]);
        ew_axpy(d, n * c * hw, 1.0f, a->high[l].out.data, out->data);
      } else {
        int64_t ho = xh->shape[2], wo = xh->shape[3];
        g = fusion_branch_geometry(81, 27, hl, wl, 36, 18, ho, wo, cfg->offset_mode);
        dydcn_forward(&blk->high, ctx, xh, om, ms, &g, &a->high[l]);
        float *up = arena_floats(ctx->arena, n * c * hw);
        resize_bilinear_ac_forward(d, n, c, ho, wo, hl, wl, a->high[l].out.data, up);
        ew_axpy(d, n * c * hw, 1.0f, up, out->data);
      }
      terms++;
    }
    if (terms > 1) ew_div(d, n * c * hw, (float)terms, out->data);  // sum / terms, as PyTorch
    if (!ctx->training) arena_rewind(ctx->arena, mark);
  }
}

void deform_fusion_forward(const deform_fusion *m, model_ctx *ctx, int num_levels,
                           const tensor *x, deform_fusion_acts *a) {
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

// dout: gradients of the block outputs; dx: of its inputs (NULL: only parameter gradients).
static void block_backward(const deform_fusion *m, const deform_fusion_block *blk,
                           model_ctx *ctx, int L, const deform_fusion_block_acts *a,
                           const tensor *dout, tensor *dx) {
  param_table *t = ctx->params;
  int tr = m->cfg.trainable;
  const device *d = ctx_dev(ctx);
  const tensor *x = a->x;
  for (int l = 0; l < L; l++) {
    int64_t n = x[l].shape[0], hl = x[l].shape[2], wl = x[l].shape[3], hw = hl * wl;
    int64_t c = blk->c_out;
    int terms = 1 + (l > 0) + (l < L - 1);
    float *g = arena_floats(ctx->arena, n * c * hw);
    dev_copy(d, g, dout[l].data, (size_t)(n * c * hw) * sizeof(float));
    if (terms > 1) ew_div(d, n * c * hw, (float)terms, g);
    float *dom = arena_zeros(ctx->arena, n * 81 * hw);
    float *dms = arena_zeros(ctx->arena, n * 27 * hw);
    const float *ms = a->ms[l].data;

    dydcn_backward(&blk->mid, ctx, &a->mid[l], g, dx ? dx[l].data : NULL, dom, dms);
    if (l > 0) dydcn_backward(&blk->low, ctx, &a->low[l], g, dx ? dx[l - 1].data : NULL, dom, dms);
    if (l < L - 1) {
      const tensor *xh = &x[l + 1];
      if (m->cfg.fix_upsample) {
        float *dxup = dx ? arena_zeros(ctx->arena, n * blk->c_in * hw) : NULL;
        dydcn_backward(&blk->high, ctx, &a->high[l], g, dxup, dom, dms);
        if (dx)
          resize_bilinear_ac_backward(d, n, blk->c_in, xh->shape[2], xh->shape[3], hl, wl, dxup,
                                      dx[l + 1].data);
      } else {
        int64_t ho = xh->shape[2], wo = xh->shape[3];
        float *dhigh = arena_zeros(ctx->arena, n * c * ho * wo);
        resize_bilinear_ac_backward(d, n, c, ho, wo, hl, wl, g, dhigh);
        dydcn_backward(&blk->high, ctx, &a->high[l], dhigh, dx ? dx[l + 1].data : NULL, dom, dms);
      }
    }
    for (int64_t b = 0; b < n; b++)
      sigmoid_backward(d, 27 * hw, ms + b * 27 * hw, dms + b * 27 * hw, dom + (b * 81 + 54) * hw);
    conv2d_desc cd = conv2d_make(n, blk->c_in, hl, wl, 81, 3, 1, 1, 1, 1);
    conv2d_backward(d, &cd, x[l].data, param_ptr(t, blk->off_w), dom, dx ? dx[l].data : NULL,
                    tr ? param_grad_ptr(t, blk->off_w) : NULL,
                    tr ? param_grad_ptr(t, blk->off_b) : NULL);
  }
}

void deform_fusion_backward(const deform_fusion *m, model_ctx *ctx, const deform_fusion_acts *a,
                            const tensor *dout, tensor *dx) {
  int L = a->num_levels;
  const tensor *g = dout;
  for (int b = m->cfg.num_blocks - 1; b >= 0; b--) {
    const deform_fusion_block_acts *ba = &a->blk[b];
    tensor *gin = dx;
    if (b > 0) {  // gradients of the previous block's outputs, kept in the arena
      gin = arena_alloc_bytes(ctx_host(ctx), sizeof(tensor) * (size_t)L);
      for (int l = 0; l < L; l++) gin[l] = ctx_zeros_like(ctx, &ba->x[l]);
    }
    block_backward(m, &m->blocks[b], ctx, L, ba, g, gin);
    g = gin;
  }
}
