// Dense convolutions on the CPU: conv2d (im2col + GEMM), transposed conv 2x2/2 and linear.
// - Layout NCHW; weights in PyTorch layouts: conv (c_out, c_in/g, kh, kw), transposed conv
//   (c_in, c_out, 2, 2), linear (out, in). Mirrors F.conv2d / F.conv_transpose2d / F.linear.
// - Zero padding; output pixel (oh, ow) reads input (oh*s - p + i*d, ow*s - p + j*d) for tap (i, j);
//   taps outside the input read 0 (and receive no gradient).
// - Three conv2d paths, chosen by shape alone: (1) 1x1 / stride 1 / no padding / one group: a
//   GEMM straight on the input planes; (2) stride 1 with >= 1024 outputs: kh*kw GEMMs on shifted
//   windows of the zero-padded input (no im2col buffer; see "stride-1 path" below); (3) otherwise
//   im2col + GEMM, the column buffer tiled (whole output rows of one image, or several whole
//   images when maps are small) so it stays near 16 MB.
// - GEMMs go through gemm_cpu; OpenBLAS (pthreads build) threads them. The glue loops (im2col,
//   col2im, bias) are deliberately serial: an OpenMP pool there alternates with OpenBLAS' pool
//   every few ms and the two pools' spin-waits fight for the cores (measured 1.5x slower at 2
//   threads; serial glue matches PyTorch). Bias gradients are summed in double in a fixed order;
//   weight gradients accumulate tile by tile in a fixed order: nothing depends on thread count.
#include "ops/conv.h"

#include <string.h>

#include "core/check.h"
#include "ops/gemm.h"

// Bytes of im2col buffer we aim for per tile (a -D override is for benchmarking only).
#ifndef CONV_TILE_BYTES
#define CONV_TILE_BYTES ((int64_t)16 << 20)
#endif

conv2d_desc conv2d_make(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t k,
                        int64_t s, int64_t p, int64_t d, int64_t g) {
  conv2d_desc r = {.n = n, .c_in = c_in, .h = h, .w = w, .c_out = c_out, .kh = k, .kw = k,
                   .stride_h = s, .stride_w = s, .pad_h = p, .pad_w = p, .dil_h = d, .dil_w = d,
                   .groups = g};
  return r;
}

int64_t conv2d_out_h(const conv2d_desc *d) {
  return (d->h + 2 * d->pad_h - d->dil_h * (d->kh - 1) - 1) / d->stride_h + 1;
}

int64_t conv2d_out_w(const conv2d_desc *d) {
  return (d->w + 2 * d->pad_w - d->dil_w * (d->kw - 1) - 1) / d->stride_w + 1;
}

static void conv2d_validate(const conv2d_desc *d) {
  masa_assert(d->n >= 0 && d->c_in > 0 && d->h > 0 && d->w > 0 && d->c_out > 0);
  masa_assert(d->kh > 0 && d->kw > 0 && d->stride_h > 0 && d->stride_w > 0);
  masa_assert(d->pad_h >= 0 && d->pad_w >= 0 && d->dil_h > 0 && d->dil_w > 0);
  masa_assert(d->groups > 0 && d->c_in % d->groups == 0 && d->c_out % d->groups == 0);
  masa_assert(conv2d_out_h(d) > 0 && conv2d_out_w(d) > 0);
}

// A tile of output pixels: images [img0, img0 + nimg) and output rows [row0, row0 + nrows) of
// each. Either nimg == 1 (rows of one image, columns are a contiguous slice of that image's
// output plane) or nrows == ho (several whole images side by side in the column buffer).
typedef struct {
  int64_t img0, nimg, row0, nrows;
} conv_tile;

typedef struct {
  int64_t ho, wo, P;       // output size, P = ho * wo
  int64_t cin_g, cout_g;   // channels per group
  int64_t K;               // cin_g * kh * kw: rows of the column buffer
  int64_t rows_per_tile;   // when tiling rows of one image (imgs_per_tile == 1)
  int64_t imgs_per_tile;   // > 1 only when a whole image's columns fit the budget many times
  int64_t cols_cap;        // columns of the buffer = max tile width
  int direct;              // 1x1, stride 1, pad 0, one group: the input plane is the column matrix
} conv_plan;

static conv_plan conv2d_plan(const conv2d_desc *d) {
  conv_plan p;
  p.ho = conv2d_out_h(d);
  p.wo = conv2d_out_w(d);
  p.P = p.ho * p.wo;
  p.cin_g = d->c_in / d->groups;
  p.cout_g = d->c_out / d->groups;
  p.K = p.cin_g * d->kh * d->kw;
  p.direct = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
             d->pad_w == 0 && d->groups == 1;
  int64_t budget_cols = CONV_TILE_BYTES / (int64_t)sizeof(float) / p.K;
  if (budget_cols < p.wo) budget_cols = p.wo;  // at least one output row
  if (budget_cols >= 2 * p.P) {
    p.imgs_per_tile = budget_cols / p.P;
    if (p.imgs_per_tile > d->n) p.imgs_per_tile = d->n > 0 ? d->n : 1;
    p.rows_per_tile = p.ho;
  } else {
    p.imgs_per_tile = 1;
    p.rows_per_tile = budget_cols / p.wo;
    if (p.rows_per_tile > p.ho) p.rows_per_tile = p.ho;
  }
  p.cols_cap = p.imgs_per_tile * p.rows_per_tile * p.wo;
  return p;
}

// Number of tiles and the t-th tile.
static int64_t conv_tile_count(const conv2d_desc *d, const conv_plan *p) {
  if (p->imgs_per_tile > 1) return (d->n + p->imgs_per_tile - 1) / p->imgs_per_tile;
  return d->n * ((p->ho + p->rows_per_tile - 1) / p->rows_per_tile);
}

static conv_tile conv_tile_at(const conv2d_desc *d, const conv_plan *p, int64_t t) {
  conv_tile r;
  if (p->imgs_per_tile > 1) {
    r.img0 = t * p->imgs_per_tile;
    r.nimg = d->n - r.img0 < p->imgs_per_tile ? d->n - r.img0 : p->imgs_per_tile;
    r.row0 = 0;
    r.nrows = p->ho;
  } else {
    int64_t per_img = (p->ho + p->rows_per_tile - 1) / p->rows_per_tile;
    r.img0 = t / per_img;
    r.nimg = 1;
    r.row0 = (t % per_img) * p->rows_per_tile;
    r.nrows = p->ho - r.row0 < p->rows_per_tile ? p->ho - r.row0 : p->rows_per_tile;
  }
  return r;
}

// col (K, ldcol) [columns coff ..] <- patches of one image's group input xg (cin_g, h, w) for
// output rows [row0, row0 + nrows).
static void im2col_rows(const conv2d_desc *d, const conv_plan *p, const float *xg, int64_t row0,
                        int64_t nrows, float *col, int64_t ldcol, int64_t coff) {
  const int64_t kh = d->kh, kw = d->kw, H = d->h, W = d->w, wo = p->wo;
  const int64_t sh = d->stride_h, sw = d->stride_w, ph = d->pad_h, pw = d->pad_w;
  const int64_t dh = d->dil_h, dw = d->dil_w;
  for (int64_t r = 0; r < p->K; r++) {
    int64_t ci = r / (kh * kw), i = (r / kw) % kh, j = r % kw;
    const float *xc = xg + ci * H * W;
    float *dst = col + r * ldcol + coff;
    // Valid output columns: 0 <= ow*sw - pw + j*dw < W.
    int64_t off_w = j * dw - pw;
    int64_t ow_lo = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
    int64_t ow_hi = (W - 1 - off_w) < 0 ? 0 : (W - 1 - off_w) / sw + 1;  // exclusive
    if (ow_hi > wo) ow_hi = wo;
    if (ow_lo > ow_hi) ow_lo = ow_hi;
    for (int64_t oh = row0; oh < row0 + nrows; oh++) {
      float *drow = dst + (oh - row0) * wo;
      int64_t ih = oh * sh - ph + i * dh;
      if (ih < 0 || ih >= H) {
        memset(drow, 0, (size_t)wo * sizeof(float));
        continue;
      }
      const float *srow = xc + ih * W;  // input column of output column ow: ow*sw + off_w
      for (int64_t ow = 0; ow < ow_lo; ow++) drow[ow] = 0.0f;
      if (sw == 1) {
        if (ow_hi > ow_lo)
          memcpy(drow + ow_lo, srow + ow_lo + off_w, (size_t)(ow_hi - ow_lo) * sizeof(float));
      } else {
        for (int64_t ow = ow_lo; ow < ow_hi; ow++) drow[ow] = srow[ow * sw + off_w];
      }
      for (int64_t ow = ow_hi; ow < wo; ow++) drow[ow] = 0.0f;
    }
  }
}

// dxg (cin_g, h, w) += scatter of col (K, ldcol) [columns coff ..] for output rows
// [row0, row0 + nrows). One thread owns each input channel, so no two threads add to one pixel.
static void col2im_rows(const conv2d_desc *d, const conv_plan *p, const float *col, int64_t ldcol,
                        int64_t coff, int64_t row0, int64_t nrows, float *dxg) {
  const int64_t kh = d->kh, kw = d->kw, H = d->h, W = d->w, wo = p->wo;
  const int64_t sh = d->stride_h, sw = d->stride_w, ph = d->pad_h, pw = d->pad_w;
  const int64_t dh = d->dil_h, dw = d->dil_w;
  for (int64_t ci = 0; ci < p->cin_g; ci++) {
    float *xc = dxg + ci * H * W;
    for (int64_t i = 0; i < kh; i++) {
      for (int64_t j = 0; j < kw; j++) {
        int64_t r = (ci * kh + i) * kw + j;
        const float *src = col + r * ldcol + coff;
        int64_t off_w = j * dw - pw;
        int64_t ow_lo = off_w >= 0 ? 0 : (-off_w + sw - 1) / sw;
        int64_t ow_hi = (W - 1 - off_w) < 0 ? 0 : (W - 1 - off_w) / sw + 1;
        if (ow_hi > wo) ow_hi = wo;
        for (int64_t oh = row0; oh < row0 + nrows; oh++) {
          int64_t ih = oh * sh - ph + i * dh;
          if (ih < 0 || ih >= H) continue;
          const float *srow = src + (oh - row0) * wo;
          float *drow = xc + ih * W;
          if (sw == 1) {
            for (int64_t ow = ow_lo; ow < ow_hi; ow++) drow[ow + off_w] += srow[ow];
          } else {
            for (int64_t ow = ow_lo; ow < ow_hi; ow++) drow[ow * sw + off_w] += srow[ow];
          }
        }
      }
    }
  }
}

// dst (c, ldd) [columns doff ..] <- src planes (c, P) of nimg consecutive images (image stride
// c_total * P), rows [row0, row0 + nrows): the tile's slice of an NCHW tensor as a matrix.
static void gather_tile(int64_t c, int64_t c_total, int64_t P, int64_t wo, const float *src,
                        const conv_tile *t, float *dst, int64_t ldd) {
  int64_t len = t->nrows * wo;
  for (int64_t b = 0; b < t->nimg; b++)
    for (int64_t ch = 0; ch < c; ch++)
      memcpy(dst + ch * ldd + b * len, src + ((t->img0 + b) * c_total + ch) * P + t->row0 * wo,
             (size_t)len * sizeof(float));
}

static void scatter_tile(int64_t c, int64_t c_total, int64_t P, int64_t wo, const float *src,
                         int64_t lds, const conv_tile *t, float *dst) {
  int64_t len = t->nrows * wo;
  for (int64_t b = 0; b < t->nimg; b++)
    for (int64_t ch = 0; ch < c; ch++)
      memcpy(dst + ((t->img0 + b) * c_total + ch) * P + t->row0 * wo, src + ch * lds + b * len,
             (size_t)len * sizeof(float));
}

// ---- stride-1 path without im2col ("wide" output rows) ----
// With stride 1, tap (i, j) of output q = oh*Wp + ow reads the zero-padded input plane (row pitch
// Wp = w + 2*pad_w) at q + i*dil_h*Wp + j*dil_w. Computing outputs on the padded row pitch (ow in
// [0, Wp), the last Wp - wo columns of each row being junk) turns the convolution into kh*kw
// GEMMs over shifted windows of the padded input, each (c_out, c_in) @ (c_in, L = ho*Wp) with
// leading dimension = padded plane size. No 9x column buffer, and the junk columns cost only
// Wp / wo - 1 extra work (used when that is <= 15%). Junk columns read at most (kw-1)*dil_w
// floats past a plane (into the next plane or a zeroed tail) and never reach a valid output;
// in backward, dy is zero on them, so they add exact zeros.

typedef struct {
  int64_t Hp, Wp, plane, L, tail, T;  // padded sizes, plane = Hp*Wp, L = ho*Wp, T = kh*kw
} wide_geom;

static void conv2d_forward_tiles(const conv2d_desc *d, const conv_plan *pp, const float *x,
                                 const float *w, float *y);
static void conv2d_backward_tiles(const conv2d_desc *d, const conv_plan *pp, const float *x,
                                  const float *w, const float *dy, float *dx, float *dw);

static int conv2d_use_wide(const conv2d_desc *d, const conv_plan *p) {
  if (d->stride_h != 1 || d->stride_w != 1) return 0;
  if (p->direct) return 0;  // 1x1 without padding: the input already is the column matrix
  int64_t Wp = d->w + 2 * d->pad_w;
  return p->P >= 1024 && (double)Wp <= 1.15 * (double)p->wo;
}

static wide_geom wide_geom_of(const conv2d_desc *d, const conv_plan *p) {
  wide_geom gm;
  gm.Hp = d->h + 2 * d->pad_h;
  gm.Wp = d->w + 2 * d->pad_w;
  gm.plane = gm.Hp * gm.Wp;
  gm.L = p->ho * gm.Wp;
  gm.tail = (d->kw - 1) * d->dil_w + 1;
  gm.T = d->kh * d->kw;
  return gm;
}

static int64_t wide_tap_offset(const conv2d_desc *d, const wide_geom *gm, int64_t t) {
  return (t / d->kw) * d->dil_h * gm->Wp + (t % d->kw) * d->dil_w;
}

// wt (T, c_out, cin_g): the (c_out, cin_g) matrix of each tap, contiguous.
static float *wide_repack_weights(const conv2d_desc *d, const conv_plan *p, const float *w) {
  int64_t T = d->kh * d->kw;
  float *wt = mallocCheck((size_t)(T * d->c_out * p->cin_g) * sizeof(float));
  for (int64_t co = 0; co < d->c_out; co++)
    for (int64_t ci = 0; ci < p->cin_g; ci++)
      for (int64_t t = 0; t < T; t++)
        wt[(t * d->c_out + co) * p->cin_g + ci] = w[(co * p->cin_g + ci) * T + t];
  return wt;
}

// Interior of the padded planes (cin_g of them) <- one image-group of x. Borders stay zero.
static void wide_pad_input(const conv2d_desc *d, const conv_plan *p, const wide_geom *gm,
                           const float *xg, float *xpad) {
  for (int64_t ci = 0; ci < p->cin_g; ci++)
    for (int64_t ih = 0; ih < d->h; ih++)
      memcpy(xpad + ci * gm->plane + (ih + d->pad_h) * gm->Wp + d->pad_w,
             xg + (ci * d->h + ih) * d->w, (size_t)d->w * sizeof(float));
}

static void conv2d_forward_wide(const conv2d_desc *d, const conv_plan *p, const float *x,
                                const float *w, float *y) {
  wide_geom gm = wide_geom_of(d, p);
  float *wt = wide_repack_weights(d, p, w);
  float *xpad = callocCheck((size_t)(p->cin_g * gm.plane + gm.tail), sizeof(float));
  float *ywide = mallocCheck((size_t)(p->cout_g * gm.L) * sizeof(float));
  for (int64_t b = 0; b < d->n; b++)
    for (int64_t g = 0; g < d->groups; g++) {
      wide_pad_input(d, p, &gm, x + (b * d->c_in + g * p->cin_g) * d->h * d->w, xpad);
      for (int64_t t = 0; t < gm.T; t++)
        gemm_cpu(0, 0, p->cout_g, gm.L, p->cin_g, 1.0f, wt + (t * d->c_out + g * p->cout_g) * p->cin_g,
                 p->cin_g, xpad + wide_tap_offset(d, &gm, t), gm.plane, t ? 1.0f : 0.0f, ywide,
                 gm.L);
      for (int64_t co = 0; co < p->cout_g; co++)
        for (int64_t oh = 0; oh < p->ho; oh++)
          memcpy(y + ((b * d->c_out + g * p->cout_g + co) * p->ho + oh) * p->wo,
                 ywide + co * gm.L + oh * gm.Wp, (size_t)p->wo * sizeof(float));
    }
  free(wt);
  free(xpad);
  free(ywide);
}

static void conv2d_backward_wide(const conv2d_desc *d, const conv_plan *p, const float *x,
                                 const float *w, const float *dy, float *dx, float *dw) {
  wide_geom gm = wide_geom_of(d, p);
  const int64_t HW = d->h * d->w, T = gm.T;
  float *wt = dx ? wide_repack_weights(d, p, w) : NULL;
  float *dwt = dw ? callocCheck((size_t)(T * d->c_out * p->cin_g), sizeof(float)) : NULL;
  float *xpad = dw ? callocCheck((size_t)(p->cin_g * gm.plane + gm.tail), sizeof(float)) : NULL;
  float *dxpad = dx ? mallocCheck((size_t)(p->cin_g * gm.plane + gm.tail) * sizeof(float)) : NULL;
  // Junk columns of dywide stay zero (calloc); only valid columns are rewritten.
  float *dywide = callocCheck((size_t)(p->cout_g * gm.L), sizeof(float));
  for (int64_t b = 0; b < d->n; b++)
    for (int64_t g = 0; g < d->groups; g++) {
      for (int64_t co = 0; co < p->cout_g; co++)
        for (int64_t oh = 0; oh < p->ho; oh++)
          memcpy(dywide + co * gm.L + oh * gm.Wp,
                 dy + ((b * d->c_out + g * p->cout_g + co) * p->ho + oh) * p->wo,
                 (size_t)p->wo * sizeof(float));
      if (dw) {
        // dW_t (cout_g, cin_g) += dy (cout_g, L) @ window_t(xpad)^T (L, cin_g)
        wide_pad_input(d, p, &gm, x + (b * d->c_in + g * p->cin_g) * HW, xpad);
        for (int64_t t = 0; t < T; t++)
          gemm_cpu(0, 1, p->cout_g, p->cin_g, gm.L, 1.0f, dywide, gm.L,
                   xpad + wide_tap_offset(d, &gm, t), gm.plane, 1.0f,
                   dwt + (t * d->c_out + g * p->cout_g) * p->cin_g, p->cin_g);
      }
      if (dx) {
        // window_t(dxpad) (cin_g, L) += W_t^T (cin_g, cout_g) @ dy (cout_g, L). Within one call
        // the rows' windows do not overlap (L <= plane), so threads never write the same float.
        memset(dxpad, 0, (size_t)(p->cin_g * gm.plane + gm.tail) * sizeof(float));
        for (int64_t t = 0; t < T; t++)
          gemm_cpu(1, 0, p->cin_g, gm.L, p->cout_g, 1.0f,
                   wt + (t * d->c_out + g * p->cout_g) * p->cin_g, p->cin_g, dywide, gm.L, 1.0f,
                   dxpad + wide_tap_offset(d, &gm, t), gm.plane);
        for (int64_t ci = 0; ci < p->cin_g; ci++) {
          float *dxc = dx + (b * d->c_in + g * p->cin_g + ci) * HW;
          for (int64_t ih = 0; ih < d->h; ih++) {
            const float *src = dxpad + ci * gm.plane + (ih + d->pad_h) * gm.Wp + d->pad_w;
            float *dst = dxc + ih * d->w;
            for (int64_t iw = 0; iw < d->w; iw++) dst[iw] += src[iw];
          }
        }
      }
    }
  if (dw)
    for (int64_t co = 0; co < d->c_out; co++)
      for (int64_t ci = 0; ci < p->cin_g; ci++)
        for (int64_t t = 0; t < T; t++)
          dw[(co * p->cin_g + ci) * T + t] += dwt[(t * d->c_out + co) * p->cin_g + ci];
  free(wt);
  free(dwt);
  free(xpad);
  free(dxpad);
  free(dywide);
}

void conv2d_forward_cpu(const conv2d_desc *d, const float *x, const float *w, const float *bias,
                        float *y) {
  conv2d_validate(d);
  conv_plan p = conv2d_plan(d);
  if (conv2d_use_wide(d, &p))
    conv2d_forward_wide(d, &p, x, w, y);
  else
    conv2d_forward_tiles(d, &p, x, w, y);
  if (bias) {
    int64_t P = p.P, C = d->c_out;
    for (int64_t b = 0; b < d->n; b++)
      for (int64_t co = 0; co < C; co++) {
        float *yc = y + (b * C + co) * P;
        float bv = bias[co];
        for (int64_t q = 0; q < P; q++) yc[q] += bv;
      }
  }
}

// im2col path: any stride; tiles of output rows or of whole images.
static void conv2d_forward_tiles(const conv2d_desc *d, const conv_plan *pp, const float *x,
                                 const float *w, float *y) {
  const conv_plan p = *pp;
  const int64_t G = d->groups, HW = d->h * d->w;
  int multi = p.imgs_per_tile > 1;
  float *col = p.direct && !multi ? NULL : mallocCheck((size_t)(p.K * p.cols_cap) * sizeof(float));
  float *out = multi ? mallocCheck((size_t)(d->c_out * p.cols_cap) * sizeof(float)) : NULL;
  int64_t ntiles = conv_tile_count(d, &p);
  for (int64_t ti = 0; ti < ntiles; ti++) {
    conv_tile t = conv_tile_at(d, &p, ti);
    int64_t ncols = t.nimg * t.nrows * p.wo;
    for (int64_t g = 0; g < G; g++) {
      const float *wg = w + g * p.cout_g * p.K;
      const float *bmat;
      int64_t ldb;
      if (p.direct && !multi) {  // one image, 1x1: input rows are the columns
        bmat = x + t.img0 * d->c_in * HW + t.row0 * p.wo;
        ldb = HW;
      } else {
        for (int64_t b = 0; b < t.nimg; b++)
          im2col_rows(d, &p, x + ((t.img0 + b) * d->c_in + g * p.cin_g) * HW, t.row0, t.nrows,
                      col, ncols, b * t.nrows * p.wo);
        bmat = col;
        ldb = ncols;
      }
      if (multi) {
        gemm_cpu(0, 0, p.cout_g, ncols, p.K, 1.0f, wg, p.K, bmat, ldb, 0.0f,
                 out + g * p.cout_g * ncols, ncols);
      } else {
        float *yt = y + (t.img0 * d->c_out + g * p.cout_g) * p.P + t.row0 * p.wo;
        gemm_cpu(0, 0, p.cout_g, ncols, p.K, 1.0f, wg, p.K, bmat, ldb, 0.0f, yt, p.P);
      }
    }
    if (multi) scatter_tile(d->c_out, d->c_out, p.P, p.wo, out, ncols, &t, y);
  }
  free(col);
  free(out);
}

// dbias[c] += sum over images and pixels of dy[:, c] (double, fixed order).
static void bias_grad_nchw(int64_t n, int64_t c, int64_t P, const float *dy, float *dbias) {
  for (int64_t co = 0; co < c; co++) {
    double s = 0.0;
    for (int64_t b = 0; b < n; b++) {
      const float *p = dy + (b * c + co) * P;
      for (int64_t q = 0; q < P; q++) s += p[q];
    }
    dbias[co] += (float)s;
  }
}

void conv2d_backward_cpu(const conv2d_desc *d, const float *x, const float *w, const float *dy,
                         float *dx, float *dw, float *dbias) {
  conv2d_validate(d);
  conv_plan p = conv2d_plan(d);
  if (dbias) bias_grad_nchw(d->n, d->c_out, p.P, dy, dbias);
  if (!dx && !dw) return;
  if (conv2d_use_wide(d, &p))
    conv2d_backward_wide(d, &p, x, w, dy, dx, dw);
  else
    conv2d_backward_tiles(d, &p, x, w, dy, dx, dw);
}

static void conv2d_backward_tiles(const conv2d_desc *d, const conv_plan *pp, const float *x,
                                  const float *w, const float *dy, float *dx, float *dw) {
  const conv_plan p = *pp;
  const int64_t G = d->groups, HW = d->h * d->w;
  int multi = p.imgs_per_tile > 1;
  int need_col = !(p.direct && !multi);
  float *col = need_col ? mallocCheck((size_t)(p.K * p.cols_cap) * sizeof(float)) : NULL;
  float *dyt = multi ? mallocCheck((size_t)(d->c_out * p.cols_cap) * sizeof(float)) : NULL;
  int64_t ntiles = conv_tile_count(d, &p);
  for (int64_t ti = 0; ti < ntiles; ti++) {
    conv_tile t = conv_tile_at(d, &p, ti);
    int64_t ncols = t.nimg * t.nrows * p.wo;
    if (multi) gather_tile(d->c_out, d->c_out, p.P, p.wo, dy, &t, dyt, ncols);
    for (int64_t g = 0; g < G; g++) {
      const float *wg = w + g * p.cout_g * p.K;
      const float *dyg;  // (cout_g, ncols) with leading dimension lddy
      int64_t lddy;
      if (multi) {
        dyg = dyt + g * p.cout_g * ncols;
        lddy = ncols;
      } else {
        dyg = dy + (t.img0 * d->c_out + g * p.cout_g) * p.P + t.row0 * p.wo;
        lddy = p.P;
      }
      if (dw) {
        const float *bmat;
        int64_t ldb;
        if (!need_col) {
          bmat = x + t.img0 * d->c_in * HW + t.row0 * p.wo;
          ldb = HW;
        } else {
          for (int64_t b = 0; b < t.nimg; b++)
            im2col_rows(d, &p, x + ((t.img0 + b) * d->c_in + g * p.cin_g) * HW, t.row0, t.nrows,
                        col, ncols, b * t.nrows * p.wo);
          bmat = col;
          ldb = ncols;
        }
        // dW_g (cout_g, K) += dy_g (cout_g, ncols) @ col^T (ncols, K)
        gemm_cpu(0, 1, p.cout_g, p.K, ncols, 1.0f, dyg, lddy, bmat, ldb, 1.0f,
                 dw + g * p.cout_g * p.K, p.K);
      }
      if (dx) {
        if (!need_col) {
          // dx rows (c_in, tile pixels) += W^T (c_in, c_out) @ dy (c_out, tile pixels)
          float *dxt = dx + t.img0 * d->c_in * HW + t.row0 * p.wo;
          gemm_cpu(1, 0, p.K, ncols, p.cout_g, 1.0f, wg, p.K, dyg, lddy, 1.0f, dxt, HW);
        } else {
          // dcol (K, ncols) = W_g^T (K, cout_g) @ dy_g (cout_g, ncols), then scatter-add.
          gemm_cpu(1, 0, p.K, ncols, p.cout_g, 1.0f, wg, p.K, dyg, lddy, 0.0f, col, ncols);
          for (int64_t b = 0; b < t.nimg; b++)
            col2im_rows(d, &p, col, ncols, b * t.nrows * p.wo, t.row0, t.nrows,
                        dx + ((t.img0 + b) * d->c_in + g * p.cin_g) * HW);
        }
      }
    }
  }
  free(col);
  free(dyt);
}

// ---- transposed conv, kernel 2, stride 2 ----
// y[b, co, 2i + a, 2j + e] = bias[co] + sum_ci x[b, ci, i, j] * wt[ci, co, a, e]. As a GEMM per
// tile of input rows: cols (c_out * 4, pixels) = wt^T (c_out * 4, c_in) @ x (c_in, pixels).

static int64_t convt_rows_per_tile(int64_t c_out, int64_t h, int64_t w) {
  int64_t rows = CONV_TILE_BYTES / (int64_t)sizeof(float) / (c_out * 4 * w);
  if (rows < 1) rows = 1;
  if (rows > h) rows = h;
  return rows;
}

void conv_transpose2x2_forward_cpu(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                                   const float *x, const float *wt, const float *bias, float *y) {
  masa_assert(n >= 0 && c_in > 0 && h > 0 && w > 0 && c_out > 0);
  const int64_t HW = h * w, M = c_out * 4, W2 = 2 * w, HW4 = 4 * HW;
  int64_t rows = convt_rows_per_tile(c_out, h, w);
  float *cols = mallocCheck((size_t)(M * rows * w) * sizeof(float));
  for (int64_t b = 0; b < n; b++) {
    for (int64_t r0 = 0; r0 < h; r0 += rows) {
      int64_t nr = h - r0 < rows ? h - r0 : rows, np = nr * w;
      gemm_cpu(1, 0, M, np, c_in, 1.0f, wt, M, x + b * c_in * HW + r0 * w, HW, 0.0f, cols, np);
      for (int64_t co = 0; co < c_out; co++) {
        float bv = bias ? bias[co] : 0.0f;
        float *yc = y + (b * c_out + co) * HW4;
        for (int64_t a = 0; a < 2; a++)
          for (int64_t e = 0; e < 2; e++) {
            const float *src = cols + (co * 4 + a * 2 + e) * np;
            for (int64_t i = 0; i < nr; i++) {
              float *yrow = yc + (2 * (r0 + i) + a) * W2 + e;
              const float *srow = src + i * w;
              for (int64_t j = 0; j < w; j++) yrow[2 * j] = srow[j] + bv;
            }
          }
      }
    }
  }
  free(cols);
}

void conv_transpose2x2_backward_cpu(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out,
                                    const float *x, const float *wt, const float *dy, float *dx,
                                    float *dwt, float *dbias) {
  masa_assert(n >= 0 && c_in > 0 && h > 0 && w > 0 && c_out > 0);
  const int64_t HW = h * w, M = c_out * 4, W2 = 2 * w, HW4 = 4 * HW;
  if (dbias) bias_grad_nchw(n, c_out, HW4, dy, dbias);
  if (!dx && !dwt) return;
  int64_t rows = convt_rows_per_tile(c_out, h, w);
  float *dcols = mallocCheck((size_t)(M * rows * w) * sizeof(float));
  for (int64_t b = 0; b < n; b++) {
    for (int64_t r0 = 0; r0 < h; r0 += rows) {
      int64_t nr = h - r0 < rows ? h - r0 : rows, np = nr * w;
      for (int64_t co = 0; co < c_out; co++) {
        const float *dyc = dy + (b * c_out + co) * HW4;
        for (int64_t a = 0; a < 2; a++)
          for (int64_t e = 0; e < 2; e++) {
            float *dst = dcols + (co * 4 + a * 2 + e) * np;
            for (int64_t i = 0; i < nr; i++) {
              const float *dyrow = dyc + (2 * (r0 + i) + a) * W2 + e;
              float *drow = dst + i * w;
              for (int64_t j = 0; j < w; j++) drow[j] = dyrow[2 * j];
            }
          }
      }
      // dx (c_in, pixels) += wt (c_in, M) @ dcols (M, pixels)
      if (dx)
        gemm_cpu(0, 0, c_in, np, M, 1.0f, wt, M, dcols, np, 1.0f, dx + b * c_in * HW + r0 * w,
                 HW);
      // dwt (c_in, M) += x (c_in, pixels) @ dcols^T (pixels, M)
      if (dwt)
        gemm_cpu(0, 1, c_in, M, np, 1.0f, x + b * c_in * HW + r0 * w, HW, dcols, np, 1.0f, dwt,
                 M);
    }
  }
  free(dcols);
}

// ---- linear ----

void linear_forward_cpu(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                        const float *b, float *y) {
  masa_assert(n >= 0 && in > 0 && out > 0);
  gemm_cpu(0, 1, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
  if (b) {
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < out; o++) y[i * out + o] += b[o];
  }
}

void linear_backward_cpu(int64_t n, int64_t in, int64_t out, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db) {
  masa_assert(n >= 0 && in > 0 && out > 0);
  if (dx) gemm_cpu(0, 0, n, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);   // (n,out)@(out,in)
  if (dw) gemm_cpu(1, 0, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);   // (out,n)@(n,in)
  if (db) {
    // Column sums of dy in double, rows in order (thread-independent).
    double *acc = callocCheck((size_t)out, sizeof(double));
    for (int64_t i = 0; i < n; i++)
      for (int64_t o = 0; o < out; o++) acc[o] += dy[i * out + o];
    for (int64_t o = 0; o < out; o++) db[o] += (float)acc[o];
    free(acc);
  }
}
