#include "model/vit_sam.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/gemm.h"

#define VIT_PAR_MIN 32768
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
// pieces

// LayerNorm over the last dim of x (rows, C); statistics in double.
static void layer_norm_rows(int64_t rows, int64_t C, float eps, const float *x, const float *g,
                            const float *b, float *y) {
#pragma omp parallel for schedule(static) if (rows * C > VIT_PAR_MIN)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * C;
    double s = 0, ss = 0;
    for (int64_t c = 0; c < C; c++) s += xr[c];
    double mean = s / (double)C;
    for (int64_t c = 0; c < C; c++) ss += ((double)xr[c] - mean) * ((double)xr[c] - mean);
    float rstd = (float)(1.0 / sqrt(ss / (double)C + (double)eps)), mf = (float)mean;
    float *yr = y + r * C;
    for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - mf) * rstd * g[c] + b[c];
  }
}

// y (rows, out) = x W^T + b [then GELU].
static void linear_rows(int64_t rows, int64_t in, int64_t out, const float *x, const float *w,
                        const float *b, int gelu, float *y) {
  linear_forward_cpu(rows, in, out, x, w, NULL, y);
  if (b) {
#pragma omp parallel for schedule(static) if (rows * out > VIT_PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
      for (int64_t o = 0; o < out; o++) y[r * out + o] += b[o];
  }
  if (gelu) gelu_forward_cpu(rows * out, y, y);
}

// Dot product with eight independent partial sums (vectorisable without reassociation flags).
static inline float dot8(const float *a, const float *b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

// SAM's get_rel_pos: out (qs, ks, hd) = table rows indexed by the relative distance, the table
// (L, hd) first resized to 2 max(qs, ks) - 1 rows by linear interpolation (align_corners False,
// PyTorch's float index arithmetic) when L differs. tmp: (2 max(qs, ks) - 1) * hd floats.
static void get_rel_pos(int64_t qs, int64_t ks, const float *table, int64_t L, int64_t hd,
                        float *out, float *tmp) {
  int64_t maxd = 2 * (qs > ks ? qs : ks) - 1;
  const float *r = table;
  if (L != maxd) {
    float scale = (float)L / (float)maxd;
    for (int64_t o = 0; o < maxd; o++) {
      float src = scale * ((float)o + 0.5f) - 0.5f;
      if (src < 0.0f) src = 0.0f;
      int64_t i0 = (int64_t)src;
      int64_t i1 = i0 + (i0 < L - 1 ? 1 : 0);
      float l1 = src - (float)i0;
      if (l1 < 0.0f) l1 = 0.0f;
      if (l1 > 1.0f) l1 = 1.0f;
      float l0 = 1.0f - l1;
      for (int64_t d = 0; d < hd; d++) tmp[o * hd + d] = l0 * table[i0 * hd + d] + l1 * table[i1 * hd + d];
    }
    r = tmp;
  }
  // Coordinates as SAM computes them (float32 tensors, truncated to integers).
  float qf = (float)fmax((double)ks / (double)qs, 1.0), kf = (float)fmax((double)qs / (double)ks, 1.0);
  float off = (float)((double)(ks - 1) * fmax((double)qs / (double)ks, 1.0));
  for (int64_t i = 0; i < qs; i++)
    for (int64_t j = 0; j < ks; j++) {
      int64_t idx = (int64_t)(((float)i * qf - (float)j * kf) + off);
      masa_assert(idx >= 0 && idx < maxd);
      memcpy(out + (i * ks + j) * hd, r + idx * hd, (size_t)hd * sizeof(float));
    }
}

// Softmax of one score row in place, after adding the decomposed relative positions
// (rh (kh), rw (kw) or NULL). Max and sum use eight independent lanes (vectorisable without
// reassociation flags, thread-count independent); the sum is finished in double.
static void score_row_softmax(float *s, int64_t kh, int64_t kw, const float *rh, const float *rw) {
  int64_t T = kh * kw;
  if (rh) {
    for (int64_t j = 0; j < kh; j++) {
      float *sj = s + j * kw;
      for (int64_t l = 0; l < kw; l++) sj[l] = (sj[l] + rh[j]) + rw[l];
    }
  }
  float m8[8];
  for (int l = 0; l < 8; l++) m8[l] = s[0];
  int64_t j = 0;
  for (; j + 8 <= T; j += 8)
    for (int l = 0; l < 8; l++) m8[l] = s[j + l] > m8[l] ? s[j + l] : m8[l];
  float mx = m8[0];
  for (int l = 1; l < 8; l++) mx = m8[l] > mx ? m8[l] : mx;
  for (; j < T; j++) mx = s[j] > mx ? s[j] : mx;
  float a8[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (j = 0; j + 8 <= T; j += 8)
    for (int l = 0; l < 8; l++) {
      s[j + l] = expf(s[j + l] - mx);
      a8[l] += s[j + l];
    }
  double sum = 0;
  for (int l = 0; l < 8; l++) sum += a8[l];
  for (; j < T; j++) {
    s[j] = expf(s[j] - mx);
    sum += s[j];
  }
  float inv = (float)(1.0 / sum);
  for (j = 0; j < T; j++) s[j] *= inv;
}

// Multi-head attention over `nwin` independent token sets of qh x qw tokens each.
// qkv (nwin * T, 3C) with columns [q | k | v], each split into heads of hd; out (nwin * T, C).
// Rh (qh, qh, hd), Rw (qw, qw, hd) or NULL (no relative positions).
// Per head, score rows of as many windows (or as many query rows of one large window) as fit
// the chunk (VIT_SCORE_CHUNK floats by default) are computed together: their GEMMs run one after another (threaded by
// the BLAS) and their softmax rows in ONE parallel loop, so small windows do not pay a
// fork / join per window.
static void attention(model_ctx *ctx, int64_t nwin, int64_t qh, int64_t qw, int64_t C,
                      int64_t heads, const float *qkv, const float *Rh, const float *Rw,
                      int64_t chunk, float *out) {
  int64_t T = qh * qw, hd = C / heads, ld = 3 * C;
  float scale = 1.0f / sqrtf((float)hd);  // SAM: head_dim ** -0.5
  int64_t cap = (chunk > 0 ? chunk : VIT_SCORE_CHUNK) / T;  // score rows per chunk
  if (cap < 1) cap = 1;
  if (cap > nwin * T) cap = nwin * T;
  arena_mark_t mk = arena_mark(ctx->arena);
  float *S = arena_floats(ctx->arena, cap * T);
  int64_t *row_w = arena_alloc_bytes(ctx->arena, (size_t)cap * sizeof(int64_t));
  int64_t *row_t = arena_alloc_bytes(ctx->arena, (size_t)cap * sizeof(int64_t));
  int64_t maxseg = cap / T + 2;
  int64_t *seg = arena_alloc_bytes(ctx->arena, (size_t)maxseg * 3 * sizeof(int64_t));  // w, r0, nr
  for (int64_t h = 0; h < heads; h++) {
    int64_t w = 0, r0 = 0;
    while (w < nwin) {
      // Fill the chunk with (window, first row, rows) segments.
      int64_t used = 0, nseg = 0;
      while (w < nwin && used < cap) {
        int64_t nr = T - r0 < cap - used ? T - r0 : cap - used;
        masa_assert(nseg < maxseg);
        seg[3 * nseg] = w, seg[3 * nseg + 1] = r0, seg[3 * nseg + 2] = nr;
        for (int64_t i = 0; i < nr; i++) row_w[used + i] = w, row_t[used + i] = r0 + i;
        nseg++;
        used += nr;
        r0 += nr;
        if (r0 == T) w++, r0 = 0;
      }
      for (int64_t sgi = 0, off = 0; sgi < nseg; off += seg[3 * sgi + 2], sgi++) {
        const float *q = qkv + seg[3 * sgi] * T * ld + h * hd;
        gemm_cpu(0, 1, seg[3 * sgi + 2], T, hd, scale, q + seg[3 * sgi + 1] * ld, ld, q + C, ld,
                 0.0f, S + off * T, T);
      }
#pragma omp parallel for schedule(static) if (used * T > VIT_PAR_MIN)
      for (int64_t i = 0; i < used; i++) {
        int64_t t = row_t[i];
        float rh[512], rw[512];  // qh, qw <= 512 (asserted by the caller)
        if (Rh) {
          const float *qt = qkv + (row_w[i] * T + t) * ld + h * hd;
          int64_t ty = t / qw, tx = t % qw;
          for (int64_t j = 0; j < qh; j++) rh[j] = dot8(qt, Rh + (ty * qh + j) * hd, hd);
          for (int64_t j = 0; j < qw; j++) rw[j] = dot8(qt, Rw + (tx * qw + j) * hd, hd);
        }
        score_row_softmax(S + i * T, qh, qw, Rh ? rh : NULL, Rh ? rw : NULL);
      }
      for (int64_t sgi = 0, off = 0; sgi < nseg; off += seg[3 * sgi + 2], sgi++) {
        int64_t sw = seg[3 * sgi], sr = seg[3 * sgi + 1], snr = seg[3 * sgi + 2];
        const float *v = qkv + sw * T * ld + 2 * C + h * hd;
        gemm_cpu(0, 0, snr, hd, T, 1.0f, S + off * T, T, v, ld, 0.0f,
                 out + (sw * T + sr) * C + h * hd, C);
      }
    }
  }
  arena_rewind(ctx->arena, mk);
}

// ---------------------------------------------------------------------------------------------
// forward

static void block_forward(const vit_sam *m, const vit_sam_block *blk, model_ctx *ctx, int64_t B,
                          int64_t gh, int64_t gw, float *x) {
  const vit_sam_cfg *c = &m->cfg;
  param_table *t = ctx->params;
  int64_t C = c->embed, hd = C / c->heads, T = gh * gw, N = B * T, hid = C * c->mlp_ratio;
  arena_mark_t mk = arena_mark(ctx->arena);
  float *xn = arena_floats(ctx->arena, N * C);
  layer_norm_rows(N, C, c->ln_eps, x, param_ptr(t, blk->n1w), param_ptr(t, blk->n1b), xn);

  // Window partition (zero padding at the bottom / right), or one "window" per image.
  int64_t ws_h = gh, ws_w = gw, nwh = 1, nww = 1;
  float *xw = xn;
  if (!blk->global) {
    int64_t ws = c->window;
    ws_h = ws_w = ws;
    nwh = (gh + ws - 1) / ws, nww = (gw + ws - 1) / ws;
    int64_t nwin = B * nwh * nww;
    xw = arena_floats(ctx->arena, nwin * ws * ws * C);
#pragma omp parallel for schedule(static) if (nwin * ws * ws * C > VIT_PAR_MIN)
    for (int64_t wi = 0; wi < nwin; wi++) {
      int64_t b = wi / (nwh * nww), wy = (wi / nww) % nwh, wx = wi % nww;
      for (int64_t i = 0; i < ws; i++)
        for (int64_t j = 0; j < ws; j++) {
          int64_t y = wy * ws + i, xx = wx * ws + j;
          float *dst = xw + ((wi * ws + i) * ws + j) * C;
          if (y < gh && xx < gw)
            memcpy(dst, xn + ((b * gh + y) * gw + xx) * C, (size_t)C * sizeof(float));
          else
            memset(dst, 0, (size_t)C * sizeof(float));
        }
    }
  }
  int64_t nwin = B * nwh * nww, Tw = ws_h * ws_w, Nw = nwin * Tw;
  float *qkv = arena_floats(ctx->arena, Nw * 3 * C);
  linear_rows(Nw, C, 3 * C, xw, param_ptr(t, blk->qkv_w),
              blk->qkv_b >= 0 ? param_ptr(t, blk->qkv_b) : NULL, 0, qkv);
  float *Rh = NULL, *Rw = NULL;
  if (blk->rel_h >= 0) {
    int64_t mx = 2 * (ws_h > ws_w ? ws_h : ws_w) - 1;
    float *tmp = arena_floats(ctx->arena, (mx > blk->rel_len ? mx : blk->rel_len) * hd);
    Rh = arena_floats(ctx->arena, ws_h * ws_h * hd);
    Rw = arena_floats(ctx->arena, ws_w * ws_w * hd);
    get_rel_pos(ws_h, ws_h, param_ptr(t, blk->rel_h), blk->rel_len, hd, Rh, tmp);
    get_rel_pos(ws_w, ws_w, param_ptr(t, blk->rel_w), blk->rel_len, hd, Rw, tmp);
  }
  float *ao = arena_floats(ctx->arena, Nw * C);
  masa_assert(ws_h <= 512 && ws_w <= 512);
  attention(ctx, nwin, ws_h, ws_w, C, c->heads, qkv, Rh, Rw, c->attn_chunk, ao);
  float *ap = qkv;  // qkv no longer needed: reuse for the projection
  linear_rows(Nw, C, C, ao, param_ptr(t, blk->proj_w), param_ptr(t, blk->proj_b), 0, ap);

  // Unpartition and residual: x += attn (padding dropped).
#pragma omp parallel for schedule(static) if (N * C > VIT_PAR_MIN)
  for (int64_t r = 0; r < N; r++) {
    int64_t b = r / T, y = (r / gw) % gh, xx = r % gw;
    int64_t src = blk->global
                      ? r
                      : (((b * nwh + y / ws_h) * nww + xx / ws_w) * ws_h + y % ws_h) * ws_w + xx % ws_w;
    float *xr = x + r * C;
    const float *ar = ap + src * C;
    for (int64_t ch = 0; ch < C; ch++) xr[ch] += ar[ch];
  }

  // MLP
  layer_norm_rows(N, C, c->ln_eps, x, param_ptr(t, blk->n2w), param_ptr(t, blk->n2b), xn);
  float *hbuf = arena_floats(ctx->arena, N * hid);
  linear_rows(N, C, hid, xn, param_ptr(t, blk->l1w), param_ptr(t, blk->l1b), 1, hbuf);
  linear_rows(N, hid, C, hbuf, param_ptr(t, blk->l2w), param_ptr(t, blk->l2b), 0, xn);
#pragma omp parallel for schedule(static) if (N * C > VIT_PAR_MIN)
  for (int64_t i = 0; i < N * C; i++) x[i] += xn[i];
  arena_rewind(ctx->arena, mk);
}

void vit_sam_forward(const vit_sam *m, model_ctx *ctx, const tensor *img, tensor *outs) {
  const vit_sam_cfg *c = &m->cfg;
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
  conv2d_desc d = conv2d_make(B, 3, img->shape[2], img->shape[3], C, p, p, 0, 1, 1);
  conv2d_forward_cpu(&d, img->data, param_ptr(t, m->pe_w), param_ptr(t, m->pe_b), pe);
  float *x = arena_floats(ctx->arena, B * T * C);
  const float *pos = m->pos >= 0 ? param_ptr(t, m->pos) : NULL;
#pragma omp parallel for schedule(static) if (B * T * C > VIT_PAR_MIN)
  for (int64_t r = 0; r < B * T; r++) {
    int64_t b = r / T, tok = r % T;
    for (int64_t ch = 0; ch < C; ch++) {
      float v = pe[(b * C + ch) * T + tok];
      x[r * C + ch] = pos ? v + pos[tok * C + ch] : v;
    }
  }
  for (int i = 0; i < c->depth; i++) {
    block_forward(m, &m->blocks[i], ctx, B, gh, gw, x);
    for (int k = 0; k < c->n_out; k++) {
      if (c->out_idx[k] != i) continue;
      float *o = outs[k].data;  // (B, C, T) <- (B, T, C)
#pragma omp parallel for collapse(2) schedule(static) if (B * T * C > VIT_PAR_MIN)
      for (int64_t b = 0; b < B; b++)
        for (int64_t ch = 0; ch < C; ch++)
          for (int64_t tok = 0; tok < T; tok++) o[(b * C + ch) * T + tok] = x[(b * T + tok) * C + ch];
    }
  }
  arena_rewind(ctx->arena, mk);
}
