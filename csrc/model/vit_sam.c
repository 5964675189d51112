#include "model/vit_sam.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "ops/vit_ops.h"
// Attention scores are computed for this many floats of query rows x keys at a time.
#define VIT_SCORE_CHUNK ((int64_t)1 << 21)

static void cfg_common(vit_sam_cfg *c) {
  memset(c, 0, sizeof *c);
  c->img_size = 1024;
  c->patch = 16;
  c->mlp_ratio = 4;
  c->window = 14;
  c->use_abs_pos = 1;
  c->use_rel_pos = 1;
  c->qkv_bias = 1;
  c->ln_eps = 1e-6f;
}

static void cfg_globals(vit_sam_cfg *c, int a, int b, int d, int e) {
  int g[4] = {a, b, d, e};
  c->n_global = c->n_out = 4;
  for (int i = 0; i < 4; i++) c->global_idx[i] = c->out_idx[i] = g[i];
}

void vit_sam_cfg_b(vit_sam_cfg *c) {
  cfg_common(c);
  c->embed = 768, c->depth = 12, c->heads = 12;
  cfg_globals(c, 2, 5, 8, 11);
}

void vit_sam_cfg_l(vit_sam_cfg *c) {
  cfg_common(c);
  c->embed = 1024, c->depth = 24, c->heads = 16;
  cfg_globals(c, 5, 11, 17, 23);
}

void vit_sam_cfg_h(vit_sam_cfg *c) {
  cfg_common(c);
  c->embed = 1280, c->depth = 32, c->heads = 16;
  cfg_globals(c, 7, 15, 23, 31);
}

void vit_sam_register(vit_sam *m, param_table *t, const char *prefix, const vit_sam_cfg *cfg) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  masa_assert(cfg->depth > 0 && cfg->depth <= VIT_SAM_MAX_DEPTH);
  masa_assert(cfg->n_out > 0 && cfg->n_out <= VIT_SAM_MAX_OUT);
  masa_assert(cfg->embed % cfg->heads == 0 && cfg->patch > 0 && cfg->img_size % cfg->patch == 0);
  int64_t C = cfg->embed, hd = C / cfg->heads, G = cfg->img_size / cfg->patch;
  int64_t hid = C * cfg->mlp_ratio;
  for (int k = 0; k < cfg->n_out; k++) masa_assert(cfg->out_idx[k] >= 0 && cfg->out_idx[k] < cfg->depth);
  // Registration follows the official state_dict order (a module's own parameters before its
  // children's): pos_embed, patch_embed.proj.*, then per block norm1, attn.rel_pos_{h,w},
  // attn.qkv, attn.proj, norm2, mlp.
  char p[200];
  m->pos = cfg->use_abs_pos ? module_param(t, prefix, "pos_embed", 4, (int64_t[]){1, G, G, C}, 0)
                            : -1;
  snprintf(p, sizeof p, "%s%spatch_embed.proj", prefix, prefix[0] ? "." : "");
  m->pe_w = module_param(t, p, "weight", 4, (int64_t[]){C, 3, cfg->patch, cfg->patch}, 0);
  m->pe_b = module_param(t, p, "bias", 1, (int64_t[]){C}, 0);
  for (int i = 0; i < cfg->depth; i++) {
    vit_sam_block *b = &m->blocks[i];
    b->global = cfg->window <= 0;
    for (int g = 0; g < cfg->n_global; g++) b->global |= cfg->global_idx[g] == i;
    b->rel_len = 2 * (b->global ? G : cfg->window) - 1;
    int64_t c1[1] = {C};
    snprintf(p, sizeof p, "%s%sblocks.%d", prefix, prefix[0] ? "." : "", i);
    b->n1w = module_param(t, p, "norm1.weight", 1, c1, 0);
    b->n1b = module_param(t, p, "norm1.bias", 1, c1, 0);
    b->rel_h = b->rel_w = -1;
    if (cfg->use_rel_pos) {
      b->rel_h = module_param(t, p, "attn.rel_pos_h", 2, (int64_t[]){b->rel_len, hd}, 0);
      b->rel_w = module_param(t, p, "attn.rel_pos_w", 2, (int64_t[]){b->rel_len, hd}, 0);
    }
    b->qkv_w = module_param(t, p, "attn.qkv.weight", 2, (int64_t[]){3 * C, C}, 0);
    b->qkv_b = cfg->qkv_bias ? module_param(t, p, "attn.qkv.bias", 1, (int64_t[]){3 * C}, 0) : -1;
    b->proj_w = module_param(t, p, "attn.proj.weight", 2, (int64_t[]){C, C}, 0);
    b->proj_b = module_param(t, p, "attn.proj.bias", 1, c1, 0);
    b->n2w = module_param(t, p, "norm2.weight", 1, c1, 0);
    b->n2b = module_param(t, p, "norm2.bias", 1, c1, 0);
    b->l1w = module_param(t, p, "mlp.lin1.weight", 2, (int64_t[]){hid, C}, 0);
    b->l1b = module_param(t, p, "mlp.lin1.bias", 1, (int64_t[]){hid}, 0);
    b->l2w = module_param(t, p, "mlp.lin2.weight", 2, (int64_t[]){C, hid}, 0);
    b->l2b = module_param(t, p, "mlp.lin2.bias", 1, c1, 0);
  }
}

void vit_sam_init(const vit_sam *m, param_table *t, uint64_t seed) {
  init_torch_default(t, m->pe_w, m->pe_b, seed);
  if (m->pos >= 0) init_normal(t, m->pos, 0.0f, 0.02f, seed);
  for (int i = 0; i < m->cfg.depth; i++) {
    const vit_sam_block *b = &m->blocks[i];
    init_constant(t, b->n1w, 1.0f), init_constant(t, b->n1b, 0.0f);
    init_constant(t, b->n2w, 1.0f), init_constant(t, b->n2b, 0.0f);
    init_torch_default(t, b->qkv_w, b->qkv_b, seed);
    init_torch_default(t, b->proj_w, b->proj_b, seed);
    init_torch_default(t, b->l1w, b->l1b, seed);
    init_torch_default(t, b->l2w, b->l2b, seed);
    if (b->rel_h >= 0) {
      init_normal(t, b->rel_h, 0.0f, 0.02f, seed);
      init_normal(t, b->rel_w, 0.0f, 0.02f, seed);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// pieces (device code: every op through a dispatcher on ctx_dev(ctx))

// y (rows, out) = x W^T + b [then GELU]. One GEMM, then the bias (linear_forward_cpu's order).
static void linear_rows(const device *d, int64_t rows, int64_t in, int64_t out, const float *x,
                        const float *w, const float *b, int gelu, float *y) {
  gemm(d, 0, 1, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
  if (b) vit_bias_rows(d, rows, out, b, y);
  if (gelu) gelu_forward(d, rows * out, y, y);
}

// The score GEMMs of token rows [g0, g0 + used) of one head over the window list (windows of T
// tokens, row stride ld): S = scale q k^T (pv 0) or out = S v (pv 1). Rows are split at window
// boundaries; a run of whole windows is one batched call (one GEMM per window on the CPU).
static void attn_gemms(const device *d, int pv, int64_t g0, int64_t used, int64_t T, int64_t hd,
                       int64_t C, int64_t ld, float scale, const float *q, float *S, float *out) {
  const float *k = q + C, *v = q + 2 * C;
  int64_t g = g0, end = g0 + used;
  while (g < end) {
    int64_t w = g / T, r = g % T;
    int64_t nfull = r == 0 ? (end - g) / T : 0;
    if (nfull > 0) {
      if (!pv)
        vit_gemm_batched(d, 0, 1, T, T, hd, scale, q + g * ld, ld, T * ld, k + g * ld, ld, T * ld,
                         0.0f, S + (g - g0) * T, T, T * T, nfull);
      else
        vit_gemm_batched(d, 0, 0, T, hd, T, 1.0f, S + (g - g0) * T, T, T * T, v + g * ld, ld,
                         T * ld, 0.0f, out + g * C, C, T * C, nfull);
      g += nfull * T;
      continue;
    }
    int64_t nr = T - r < end - g ? T - r : end - g;
    if (!pv)
      gemm(d, 0, 1, nr, T, hd, scale, q + g * ld, ld, k + w * T * ld, ld, 0.0f, S + (g - g0) * T,
           T);
    else
      gemm(d, 0, 0, nr, hd, T, 1.0f, S + (g - g0) * T, T, v + w * T * ld, ld, 0.0f, out + g * C,
           C);
    g += nr;
  }
}

// Multi-head attention over `nwin` independent token sets of qh x qw tokens each.
// qkv (nwin * T, 3C) with columns [q | k | v], each split into heads of hd; out (nwin * T, C).
// Rh (qh, qh, hd), Rw (qw, qw, hd) or NULL (no relative positions).
// Per head, score rows of as many windows (or as many query rows of one large window) as fit
// the chunk (VIT_SCORE_CHUNK floats by default) are computed together: their GEMMs run one
// after another (threaded by the BLAS; batched on the GPU) and their softmax rows in ONE
// parallel loop, so small windows do not pay a fork / join per window.
static void attention(model_ctx *ctx, int64_t nwin, int64_t qh, int64_t qw, int64_t C,
                      int64_t heads, const float *qkv, const float *Rh, const float *Rw,
                      int64_t chunk, float *out) {
  const device *d = ctx_dev(ctx);
  int64_t T = qh * qw, hd = C / heads, ld = 3 * C, rows = nwin * T;
  float scale = 1.0f / sqrtf((float)hd);  // SAM: head_dim ** -0.5
  int64_t cap = (chunk > 0 ? chunk : VIT_SCORE_CHUNK) / T;  // score rows per chunk
  if (cap < 1) cap = 1;
  if (cap > rows) cap = rows;
  arena_mark_t mk = arena_mark(ctx->arena);
  float *S = arena_floats(ctx->arena, cap * T);
  for (int64_t h = 0; h < heads; h++) {
    const float *q = qkv + h * hd;
    for (int64_t g0 = 0; g0 < rows; g0 += cap) {
      int64_t used = rows - g0 < cap ? rows - g0 : cap;
      attn_gemms(d, 0, g0, used, T, hd, C, ld, scale, q, S, NULL);
      vit_attn_softmax(d, used, g0, qh, qw, ld, q, Rh, Rw, hd, S);
      attn_gemms(d, 1, g0, used, T, hd, C, ld, scale, q, S, out + h * hd);
    }
  }
  arena_rewind(ctx->arena, mk);
}

// ---------------------------------------------------------------------------------------------
// forward

static void block_forward(const vit_sam *m, const vit_sam_block *blk, model_ctx *ctx, int64_t B,
                          int64_t gh, int64_t gw, float *x) {
  const vit_sam_cfg *c = &m->cfg;
  const device *d = ctx_dev(ctx);
  param_table *t = ctx->params;
  int64_t C = c->embed, hd = C / c->heads, T = gh * gw, N = B * T, hid = C * c->mlp_ratio;
  arena_mark_t mk = arena_mark(ctx->arena);
  float *xn = arena_floats(ctx->arena, N * C);
  vit_layer_norm_rows(d, N, C, c->ln_eps, x, param_ptr(t, blk->n1w), param_ptr(t, blk->n1b), xn);

  // Window partition (zero padding at the bottom / right), or one "window" per image.
  int64_t ws_h = gh, ws_w = gw, nwh = 1, nww = 1;
  float *xw = xn;
  if (!blk->global) {
    int64_t ws = c->window;
    ws_h = ws_w = ws;
    nwh = (gh + ws - 1) / ws, nww = (gw + ws - 1) / ws;
    xw = arena_floats(ctx->arena, B * nwh * nww * ws * ws * C);
    vit_window_partition(d, B, gh, gw, C, ws, xn, xw);
  }
  int64_t nwin = B * nwh * nww, Tw = ws_h * ws_w, Nw = nwin * Tw;
  float *qkv = arena_floats(ctx->arena, Nw * 3 * C);
  linear_rows(d, Nw, C, 3 * C, xw, param_ptr(t, blk->qkv_w),
              blk->qkv_b >= 0 ? param_ptr(t, blk->qkv_b) : NULL, 0, qkv);
  float *Rh = NULL, *Rw = NULL;
  if (blk->rel_h >= 0) {
    Rh = arena_floats(ctx->arena, ws_h * ws_h * hd);
    Rw = arena_floats(ctx->arena, ws_w * ws_w * hd);
    vit_get_rel_pos(d, ws_h, ws_h, param_ptr(t, blk->rel_h), blk->rel_len, hd, Rh);
    vit_get_rel_pos(d, ws_w, ws_w, param_ptr(t, blk->rel_w), blk->rel_len, hd, Rw);
  }
  float *ao = arena_floats(ctx->arena, Nw * C);
  masa_assert(ws_h <= VIT_MAX_SIDE && ws_w <= VIT_MAX_SIDE);
  attention(ctx, nwin, ws_h, ws_w, C, c->heads, qkv, Rh, Rw, c->attn_chunk, ao);
  float *ap = qkv;  // qkv no longer needed: reuse for the projection
  linear_rows(d, Nw, C, C, ao, param_ptr(t, blk->proj_w), param_ptr(t, blk->proj_b), 0, ap);

  // Unpartition and residual: x += attn (padding dropped).
  if (blk->global)
    ew_axpy(d, N * C, 1.0f, ap, x);
  else
    vit_window_unpartition_add(d, B, gh, gw, C, c->window, ap, x);

  // MLP
  vit_layer_norm_rows(d, N, C, c->ln_eps, x, param_ptr(t, blk->n2w), param_ptr(t, blk->n2b), xn);
  float *hbuf = arena_floats(ctx->arena, N * hid);
  linear_rows(d, N, C, hid, xn, param_ptr(t, blk->l1w), param_ptr(t, blk->l1b), 1, hbuf);
  linear_rows(d, N, hid, C, hbuf, param_ptr(t, blk->l2w), param_ptr(t, blk->l2b), 0, xn);
  ew_axpy(d, N * C, 1.0f, xn, x);
  arena_rewind(ctx->arena, mk);
}

void vit_sam_forward(const vit_sam *m, model_ctx *ctx, const tensor *img, tensor *outs) {
  const vit_sam_cfg *c = &m->cfg;
  const device *d = ctx_dev(ctx);
  param_table *t = ctx->params;
  masa_assert(img->ndim == 4 && img->shape[1] == 3);
  int64_t B = img->shape[0], p = c->patch, C = c->embed;
  int64_t gh = img->shape[2] / p, gw = img->shape[3] / p, T = gh * gw;
  masa_assert(gh > 0 && gw > 0);
  int64_t G = c->img_size / p;
  if (m->pos >= 0) masa_assert(gh == G && gw == G);  // SAM adds pos_embed without resizing
  for (int k = 0; k < c->n_out; k++) outs[k] = ctx_tensor4(ctx, B, C, gh, gw);
  arena_mark_t mk = arena_mark(ctx->arena);

  // Patch embedding (conv p x p / p) to tokens (B, gh, gw, C), plus absolute positions.
  float *pe = arena_floats(ctx->arena, B * C * T);
  conv2d_desc cd = conv2d_make(B, 3, img->shape[2], img->shape[3], C, p, p, 0, 1, 1);
  conv2d_forward(d, &cd, img->data, param_ptr(t, m->pe_w), param_ptr(t, m->pe_b), pe);
  float *x = arena_floats(ctx->arena, B * T * C);
  vit_patch_tokens(d, B, C, T, pe, m->pos >= 0 ? param_ptr(t, m->pos) : NULL, x);
  for (int i = 0; i < c->depth; i++) {
    block_forward(m, &m->blocks[i], ctx, B, gh, gw, x);
    for (int k = 0; k < c->n_out; k++)
      if (c->out_idx[k] == i) vit_tokens_to_nchw(d, B, T, C, x, outs[k].data);
  }
  arena_rewind(ctx->arena, mk);
}
