// Modulated deformable convolution v2 on the CPU (mirrors mmcv ModulatedDeformConv2d).
// - Layout NCHW. Pixel centres at integer coordinates (no half-pixel shift): tap (i, j) of output
//   (oh, ow) samples y = (oh*stride - pad + i*dil) + dy, x = (ow*stride - pad + j*dil) + dx, the
//   integer part formed first and converted to float, then the float offset added (as mmcv).
// - Offsets: 2*kh*kw channels of (dy, dx) pairs, y first, taps row-major; masks kh*kw channels,
//   already sigmoid-ed. Both are read (and their gradients written) through dcn_strides.
// - Out of bounds (mmcv, forward AND backward): a sample is 0, with zero gradient for x, offset and
//   mask, unless -1 < y < h and -1 < x < w; inside, bilinear with out-of-range corners read as 0.
//   NaN coordinates fail that test and read 0. torchvision agrees in the forward but its offset
//   gradient is non-zero at exactly y == -1 or x == -1 (vision#6885); we follow mmcv.
// - Columns: for a tile of output rows of one image, col[(c*kh*kw + t), p] = mask * bilinear, so
//   y = W (c_out, c_in*kh*kw) . col (GEMM, OpenBLAS threads it). The sampling geometry of a tile
//   is computed once and shared by all channels. Input planes are copied into a zero-padded plane
//   (one pad row/col around, plus a second pad row below) so that every corner read is in bounds
//   and out-of-range samples point at an all-zero 2x2 block: the inner loops have no branches.
// - Backward: dcol = W^T . dy (GEMM), dweight += dy . col^T (GEMM, col recomputed). The input
//   gradient is scattered into a padded per-image buffer, each channel owned by one thread, in a
//   fixed order (tile, tap, position). Offset / mask gradients sum over input channels in fixed
//   groups of DCN_GROUP_CHANNELS (one partial buffer per group, summed in group order), so every
//   result is bit-identical for any OpenMP thread count. (The GEMMs are OpenBLAS's: reproducible
//   for a fixed OpenBLAS thread count, but its threaded sgemm blocks the inner dimension
//   differently, so y and dweight move in the last bits when OPENBLAS_NUM_THREADS changes.)
#include "ops/dcn.h"

#include <math.h>
#include <string.h>

#include "core/check.h"
#include "ops/gemm.h"

// Output positions per tile (whole rows). Columns of a 256-channel 3x3 tile: 2304 x 2048 floats.
#define DCN_TILE_POSITIONS 2048
// Input channels per offset/mask-gradient partial sum (fixed: it sets the summation order).
#define DCN_GROUP_CHANNELS 16

dcn_desc dcn_make(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t k,
                  int64_t stride, int64_t pad, int64_t dil) {
  dcn_desc d = {.n = n, .c_in = c_in, .h = h, .w = w, .c_out = c_out, .kh = k, .kw = k,
                .stride = stride, .pad = pad, .dil = dil};
  d.ho = (h + 2 * pad - dil * (k - 1) - 1) / stride + 1;
  d.wo = (w + 2 * pad - dil * (k - 1) - 1) / stride + 1;
  int64_t hw = d.ho * d.wo, taps = k * k;
  d.off = (dcn_strides){.batch = 2 * taps * hw, .channel = hw, .row = d.wo};
  d.msk = (dcn_strides){.batch = taps * hw, .channel = hw, .row = d.wo};
  return d;
}

static void dcn_validate(const dcn_desc *d) {
  masa_assert(d->n >= 0 && d->c_in > 0 && d->h > 0 && d->w > 0 && d->c_out > 0);
  masa_assert(d->kh > 0 && d->kw > 0 && d->stride > 0 && d->pad >= 0 && d->dil > 0);
  masa_assert(d->ho == (d->h + 2 * d->pad - d->dil * (d->kh - 1) - 1) / d->stride + 1);
  masa_assert(d->wo == (d->w + 2 * d->pad - d->dil * (d->kw - 1) - 1) / d->stride + 1);
  masa_assert(d->ho > 0 && d->wo > 0);
  // Coordinates are compared with h and w in float: exact below 2^24.
  masa_assert(d->h < (1 << 24) && d->w < (1 << 24));
}

// Everything one call needs, sized for the largest tile.
typedef struct {
  int64_t taps, K;         // kh*kw, c_in*kh*kw
  int64_t pw, plane;       // padded plane: (h + 3) rows of (w + 2)
  int64_t rows_per_tile, cap;  // cap = rows_per_tile * wo positions
  int64_t groups;          // channel groups of the offset/mask gradient
  float *col;              // (K, cap): columns, or their gradient in the backward
  float *xpad;             // (c_in, plane): current image, zero-padded
  int64_t *idx;            // (taps, cap): top-left corner of the sample in the padded plane
  float *ly, *lx, *m;      // (taps, cap): fractional parts and mask of each sample
} dcn_work;

static void dcn_work_init(dcn_work *wk, const dcn_desc *d) {
  wk->taps = d->kh * d->kw;
  wk->K = d->c_in * wk->taps;
  wk->pw = d->w + 2;
  wk->plane = (d->h + 3) * wk->pw;
  wk->rows_per_tile = DCN_TILE_POSITIONS / d->wo;
  if (wk->rows_per_tile < 1) wk->rows_per_tile = 1;
  if (wk->rows_per_tile > d->ho) wk->rows_per_tile = d->ho;
  wk->cap = wk->rows_per_tile * d->wo;
  wk->groups = (d->c_in + DCN_GROUP_CHANNELS - 1) / DCN_GROUP_CHANNELS;
  size_t ts = (size_t)(wk->taps * wk->cap);
  wk->col = mallocCheck((size_t)wk->K * (size_t)wk->cap * sizeof(float));
  // Pad cells are zeroed once and never written; interiors are overwritten per image.
  wk->xpad = callocCheck((size_t)(d->c_in * wk->plane), sizeof(float));
  wk->idx = mallocCheck(ts * sizeof(int64_t));
  wk->ly = mallocCheck(ts * sizeof(float));
  wk->lx = mallocCheck(ts * sizeof(float));
  wk->m = mallocCheck(ts * sizeof(float));
}

static void dcn_work_free(dcn_work *wk) {
  free(wk->col), free(wk->xpad), free(wk->idx), free(wk->ly), free(wk->lx), free(wk->m);
}

// xb (c_in, h, w) -> interiors of wk->xpad.
static void dcn_pad_image(const dcn_desc *d, dcn_work *wk, const float *xb) {
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d->c_in; c++) {
    for (int64_t y = 0; y < d->h; y++)
      memcpy(wk->xpad + c * wk->plane + (y + 1) * wk->pw + 1, xb + (c * d->h + y) * d->w,
             (size_t)d->w * sizeof(float));
  }
}

// Sampling geometry of image b, output positions [p0, p0 + np) (whole rows).
// offset, mask: strided as in d (see dcn.h).
static void dcn_geometry(const dcn_desc *d, dcn_work *wk, const float *offset, const float *mask,
                         int64_t b, int64_t p0, int64_t np) {
  const float hf = (float)d->h, wf = (float)d->w;
  const int64_t pw = wk->pw, zero_block = (d->h + 1) * pw;  // rows h, h+1, cols -1, 0: all pad
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t t = 0; t < wk->taps; t++) {
    for (int64_t p = 0; p < np; p++) {
      const int64_t i = t / d->kw, j = t % d->kw;
      const int64_t oh = (p0 + p) / d->wo, ow = (p0 + p) % d->wo;
      const int64_t o = b * d->off.batch + 2 * t * d->off.channel + oh * d->off.row + ow;
      const float y = (float)(oh * d->stride - d->pad + i * d->dil) + offset[o];
      const float x = (float)(ow * d->stride - d->pad + j * d->dil) + offset[o + d->off.channel];
      const int64_t k = t * wk->cap + p;
      wk->m[k] = mask[b * d->msk.batch + t * d->msk.channel + oh * d->msk.row + ow];
      if (y > -1.0f && y < hf && x > -1.0f && x < wf) {
        const float y0 = floorf(y), x0 = floorf(x);
        wk->idx[k] = ((int64_t)y0 + 1) * pw + (int64_t)x0 + 1;
        wk->ly[k] = y - y0;
        wk->lx[k] = x - x0;
      } else {
        wk->idx[k] = zero_block;
        wk->ly[k] = 0.0f;
        wk->lx[k] = 0.0f;
      }
    }
  }
}

// col (K, np) from wk->xpad and the geometry.
static void dcn_im2col(const dcn_desc *d, dcn_work *wk, int64_t np) {
  const int64_t pw = wk->pw, taps = wk->taps, cap = wk->cap;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < d->c_in; c++) {
    const float *xc = wk->xpad + c * wk->plane;
    for (int64_t t = 0; t < taps; t++) {
      float *col = wk->col + (c * taps + t) * np;
      const int64_t *ix = wk->idx + t * cap;
      const float *ly = wk->ly + t * cap, *lx = wk->lx + t * cap, *m = wk->m + t * cap;
      for (int64_t p = 0; p < np; p++) {
        const int64_t q = ix[p];
        const float a = ly[p], e = lx[p], ha = 1.0f - a, he = 1.0f - e;
        const float v = ha * he * xc[q] + ha * e * xc[q + 1] + a * he * xc[q + pw] +
                        a * e * xc[q + pw + 1];
        col[p] = m[p] * v;
      }
    }
  }
}

void dcn_forward_cpu(const dcn_desc *d, const float *x, const float *offset, const float *mask,
                     const float *weight, const float *bias, float *y) {
  dcn_validate(d);
  if (d->n == 0) return;
  dcn_work wk;
  dcn_work_init(&wk, d);
  const int64_t hw = d->ho * d->wo;
  for (int64_t b = 0; b < d->n; b++) {
    dcn_pad_image(d, &wk, x + b * d->c_in * d->h * d->w);
    float *yb = y + b * d->c_out * hw;
    for (int64_t p0 = 0; p0 < hw; p0 += wk.cap) {
      const int64_t np = hw - p0 < wk.cap ? hw - p0 : wk.cap;
      dcn_geometry(d, &wk, offset, mask, b, p0, np);
      dcn_im2col(d, &wk, np);
      gemm_cpu(0, 0, d->c_out, np, wk.K, 1.0f, weight, wk.K, wk.col, np, 0.0f, yb + p0, hw);
    }
    if (bias) {
#pragma omp parallel for schedule(static)
      for (int64_t o = 0; o < d->c_out; o++)
        for (int64_t p = 0; p < hw; p++) yb[o * hw + p] += bias[o];
    }
  }
  dcn_work_free(&wk);
}

// Gradients w.r.t. the columns' inputs, given dcol (K, np) in wk->col:
// dxpad (c_in, plane) += scatter; part (groups, 3, taps, cap) = per-group sums over channels of
// (d/dy, d/dx, d/dmask) contributions. Either output may be NULL.
static void dcn_col2im(const dcn_desc *d, dcn_work *wk, int64_t np, float *dxpad, float *part) {
  const int64_t pw = wk->pw, taps = wk->taps, cap = wk->cap, part_size = 3 * taps * cap;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t g = 0; g < wk->groups; g++) {
    float *pg = part ? part + g * part_size : NULL;
    if (pg) memset(pg, 0, (size_t)part_size * sizeof(float));
    const int64_t c1 = (g + 1) * DCN_GROUP_CHANNELS < d->c_in ? (g + 1) * DCN_GROUP_CHANNELS
                                                              : d->c_in;
    for (int64_t c = g * DCN_GROUP_CHANNELS; c < c1; c++) {
      const float *xc = wk->xpad + c * wk->plane;
      float *dxc = dxpad ? dxpad + c * wk->plane : NULL;
      for (int64_t t = 0; t < taps; t++) {
        const float *dc = wk->col + (c * taps + t) * np;
        const int64_t *ix = wk->idx + t * cap;
        const float *ly = wk->ly + t * cap, *lx = wk->lx + t * cap, *m = wk->m + t * cap;
        if (pg && dxc) {  // the common case, fused: one pass over the samples
          float *gy = pg + t * cap, *gx = pg + (taps + t) * cap, *gm = pg + (2 * taps + t) * cap;
          for (int64_t p = 0; p < np; p++) {
            const int64_t q = ix[p];
            const float a = ly[p], e = lx[p], ha = 1.0f - a, he = 1.0f - e;
            const float v1 = xc[q], v2 = xc[q + 1], v3 = xc[q + pw], v4 = xc[q + pw + 1];
            const float g0 = dc[p], gmv = g0 * m[p];
            gm[p] += g0 * (ha * he * v1 + ha * e * v2 + a * he * v3 + a * e * v4);
            gy[p] += gmv * (he * (v3 - v1) + e * (v4 - v2));
            gx[p] += gmv * (ha * (v2 - v1) + a * (v4 - v3));
            dxc[q] += gmv * (ha * he);
            dxc[q + 1] += gmv * (ha * e);
            dxc[q + pw] += gmv * (a * he);
            dxc[q + pw + 1] += gmv * (a * e);
          }
        } else if (pg) {
          float *gy = pg + t * cap, *gx = pg + (taps + t) * cap, *gm = pg + (2 * taps + t) * cap;
          for (int64_t p = 0; p < np; p++) {
            const int64_t q = ix[p];
            const float a = ly[p], e = lx[p], ha = 1.0f - a, he = 1.0f - e;
            const float v1 = xc[q], v2 = xc[q + 1], v3 = xc[q + pw], v4 = xc[q + pw + 1];
            const float g0 = dc[p], gmv = g0 * m[p];
            gm[p] += g0 * (ha * he * v1 + ha * e * v2 + a * he * v3 + a * e * v4);
            gy[p] += gmv * (he * (v3 - v1) + e * (v4 - v2));
            gx[p] += gmv * (ha * (v2 - v1) + a * (v4 - v3));
          }
        } else if (dxc) {
          for (int64_t p = 0; p < np; p++) {
            const int64_t q = ix[p];
            const float a = ly[p], e = lx[p], ha = 1.0f - a, he = 1.0f - e;
            const float gmv = dc[p] * m[p];
            dxc[q] += gmv * (ha * he);
            dxc[q + 1] += gmv * (ha * e);
            dxc[q + pw] += gmv * (a * he);
            dxc[q + pw + 1] += gmv * (a * e);
          }
        }
      }
    }
  }
}

void dcn_backward_cpu(const dcn_desc *d, const float *x, const float *offset, const float *mask,
                      const float *weight, const float *dy, float *dx, float *doffset,
                      float *dmask, float *dweight, float *dbias) {
  dcn_validate(d);
  if (d->n == 0) return;
  const int64_t hw = d->ho * d->wo;
  if (dbias) {
#pragma omp parallel for schedule(static)
    for (int64_t o = 0; o < d->c_out; o++) {
      double s = 0.0;
      for (int64_t b = 0; b < d->n; b++)
        for (int64_t p = 0; p < hw; p++) s += dy[(b * d->c_out + o) * hw + p];
      dbias[o] += (float)s;
    }
  }
  const int need_dcol = dx || doffset || dmask;
  if (!dweight && !need_dcol) return;

  dcn_work wk;
  dcn_work_init(&wk, d);
  float *dxpad = dx ? mallocCheck((size_t)(d->c_in * wk.plane) * sizeof(float)) : NULL;
  float *part = (doffset || dmask)
                    ? mallocCheck((size_t)(wk.groups * 3 * wk.taps * wk.cap) * sizeof(float))
                    : NULL;
  const int64_t taps = wk.taps, cap = wk.cap, part_size = 3 * taps * cap;

  for (int64_t b = 0; b < d->n; b++) {
    dcn_pad_image(d, &wk, x + b * d->c_in * d->h * d->w);
    if (dxpad) memset(dxpad, 0, (size_t)(d->c_in * wk.plane) * sizeof(float));
    const float *dyb = dy + b * d->c_out * hw;
    for (int64_t p0 = 0; p0 < hw; p0 += cap) {
      const int64_t np = hw - p0 < cap ? hw - p0 : cap;
      dcn_geometry(d, &wk, offset, mask, b, p0, np);
      if (dweight) {
        dcn_im2col(d, &wk, np);
        gemm_cpu(0, 1, d->c_out, wk.K, np, 1.0f, dyb + p0, hw, wk.col, np, 1.0f, dweight, wk.K);
      }
      if (!need_dcol) continue;
      gemm_cpu(1, 0, wk.K, np, d->c_out, 1.0f, weight, wk.K, dyb + p0, hw, 0.0f, wk.col, np);
      dcn_col2im(d, &wk, np, dxpad, part);
      if (!part) continue;
      // Sum the group partials in group order; scatter into the strided offset / mask grads.
#pragma omp parallel for collapse(2) schedule(static)
      for (int64_t t = 0; t < taps; t++) {
        for (int64_t p = 0; p < np; p++) {
          float sy = 0.0f, sx = 0.0f, sm = 0.0f;
          for (int64_t g = 0; g < wk.groups; g++) {
            const float *pg = part + g * part_size;
            sy += pg[t * cap + p];
            sx += pg[(taps + t) * cap + p];
            sm += pg[(2 * taps + t) * cap + p];
          }
          const int64_t oh = (p0 + p) / d->wo, ow = (p0 + p) % d->wo;
          if (doffset) {
            float *o = doffset + b * d->off.batch + 2 * t * d->off.channel + oh * d->off.row + ow;
            o[0] += sy;
            o[d->off.channel] += sx;
          }
          if (dmask) dmask[b * d->msk.batch + t * d->msk.channel + oh * d->msk.row + ow] += sm;
        }
      }
    }
    if (dxpad) {
      float *dxb = dx + b * d->c_in * d->h * d->w;
#pragma omp parallel for schedule(static)
      for (int64_t c = 0; c < d->c_in; c++)
        for (int64_t yy = 0; yy < d->h; yy++) {
          const float *src = dxpad + c * wk.plane + (yy + 1) * wk.pw + 1;
          float *dst = dxb + (c * d->h + yy) * d->w;
          for (int64_t xx = 0; xx < d->w; xx++) dst[xx] += src[xx];
        }
    }
  }
  free(dxpad);
  free(part);
  dcn_work_free(&wk);
}
