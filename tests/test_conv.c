// conv2d, transposed conv 2x2/2 and linear against PyTorch (tests/oracle_conv.py), finite
// differences of every backward, guard regions, accumulation (gradient buffers are pre-filled and
// must be added to), NULL gradient pointers, and the tiled im2col paths (several row tiles per
// image, several images per tile, 1x1 direct GEMM, transposed-conv row tiles) against a naive
// float64 convolution written here.
//
// Tolerances. Inputs are N(0, 1), weights N(0, 1/fan_in), so outputs are O(1). A float32 dot
// product of length L has error ~ sqrt(L) * 6e-8 * |terms| typically and L * 6e-8 at worst:
// - forward and dx (L <= 300 here): atol 2e-5, rtol 1e-5 (~10x the typical error);
// - dw / db reduce over n * ho * wo <= 2500 pixels of O(1) terms (values ~ sqrt(L)): atol 1e-4,
//   rtol 1e-5;
// - finite differences: the ops are linear, so the central difference is exact up to float32
//   rounding of the loss (~1e-7 * sqrt(numel) * |y|, divided by 2 eps = 0.1): atol 2e-3, rtol 1e-3.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "harness.h"
#include "ops/conv.h"

#define GUARD 64
#define PREFILL 0.5f  // gradient buffers start here: backward must accumulate

static uint64_t g_seed;

static float *read_meta(h5file *f, const char *grp, int64_t want) {
  char name[64];
  snprintf(name, sizeof name, "%s/meta", grp);
  int64_t n;
  float *m = oracle_read_any(f, name, &n, NULL, NULL);
  masa_assert(n == want);
  return m;
}

static float *read_ds(h5file *f, const char *grp, const char *ds, int64_t *numel) {
  char name[64];
  snprintf(name, sizeof name, "%s/%s", grp, ds);
  return oracle_read_any(f, name, numel, NULL, NULL);
}

// Guarded buffer pre-filled with PREFILL (for gradients).
static float *grad_buf(int64_t n) {
  float *p = test_alloc_guarded(n, GUARD);
  for (int64_t i = 0; i < n; i++) p[i] = PREFILL;
  return p;
}

// ref + PREFILL, what an accumulating backward must produce.
static float *plus_prefill(const float *ref, int64_t n) {
  float *p = mallocCheck((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = ref[i] + PREFILL;
  return p;
}

static void check_grad(const char *what, const float *got, const float *ref, int64_t n,
                       double atol, double rtol, const char *why) {
  float *want = plus_prefill(ref, n);
  check_close(what, got, want, n, atol, rtol, why);
  check_guard(what, got, n, GUARD);
  free(want);
}

static void fill_normal(float *x, int64_t n, float std, uint64_t stream) {
  rng_fill_normal(x, n, 0.0f, std, g_seed, stream);
}

// ---- finite differences: loss = sum(y * r) ----

typedef struct {
  int kind;  // 0 conv2d, 1 transposed, 2 linear
  conv2d_desc d;
  int64_t n, c_in, h, w, c_out, fin, fout;
  float *x, *wt, *b, *r, *y;
  int64_t ny;
} fd_ctx;

static double fd_loss(void *p) {
  fd_ctx *c = p;
  if (c->kind == 0)
    conv2d_forward_cpu(&c->d, c->x, c->wt, c->b, c->y);
  else if (c->kind == 1)
    conv_transpose2x2_forward_cpu(c->n, c->c_in, c->h, c->w, c->c_out, c->x, c->wt, c->b, c->y);
  else
    linear_forward_cpu(c->n, c->fin, c->fout, c->x, c->wt, c->b, c->y);
  return dot_f64(c->y, c->r, c->ny);
}

// Analytic gradients (fresh, zeroed) for FD comparison.
static void fd_checks(fd_ctx *c, const char *label, int64_t nx, int64_t nw, int64_t nb) {
  float *gx = callocCheck((size_t)nx, sizeof(float));
  float *gw = callocCheck((size_t)nw, sizeof(float));
  float *gb = nb ? callocCheck((size_t)nb, sizeof(float)) : NULL;
  if (c->kind == 0)
    conv2d_backward_cpu(&c->d, c->x, c->wt, c->r, gx, gw, gb);
  else if (c->kind == 1)
    conv_transpose2x2_backward_cpu(c->n, c->c_in, c->h, c->w, c->c_out, c->x, c->wt, c->r, gx,
                                   gw, gb);
  else
    linear_backward_cpu(c->n, c->fin, c->fout, c->x, c->wt, c->r, gx, gw, gb);
  char what[128];
  const double atol = 2e-3, rtol = 1e-3;
  const float eps = 0.05f;
  snprintf(what, sizeof what, "%s fd dx", label);
  check_grad_fd(what, c->x, nx, gx, fd_loss, c, 12, eps, atol, rtol, g_seed + 1, NULL);
  snprintf(what, sizeof what, "%s fd dw", label);
  check_grad_fd(what, c->wt, nw, gw, fd_loss, c, 12, eps, atol, rtol, g_seed + 2, NULL);
  if (nb) {
    snprintf(what, sizeof what, "%s fd db", label);
    check_grad_fd(what, c->b, nb, gb, fd_loss, c, 6, eps, atol, rtol, g_seed + 3, NULL);
  }
  free(gx);
  free(gw);
  free(gb);
}

// ---- oracle cases ----

static const char *WHY_FWD = "float32 dot products of length <= 300 vs float64 reference";
static const char *WHY_DW = "float32 sums over <= 2500 pixels of O(1) products";

static void run_conv_case(h5file *f, int idx) {
  char grp[32];
  snprintf(grp, sizeof grp, "conv%d", idx);
  float *m = read_meta(f, grp, 13);
  conv2d_desc d = conv2d_make((int64_t)m[0], (int64_t)m[1], (int64_t)m[2], (int64_t)m[3],
                              (int64_t)m[4], (int64_t)m[5], (int64_t)m[6], (int64_t)m[7],
                              (int64_t)m[8], (int64_t)m[9]);
  int has_bias = m[10] != 0;
  int64_t ho = conv2d_out_h(&d), wo = conv2d_out_w(&d);
  printf(" %s: n=%lld c_in=%lld %lldx%lld c_out=%lld k=%lld s=%lld p=%lld d=%lld g=%lld bias=%d\n",
         grp, (long long)d.n, (long long)d.c_in, (long long)d.h, (long long)d.w,
         (long long)d.c_out, (long long)d.kh, (long long)d.stride_h, (long long)d.pad_h,
         (long long)d.dil_h, (long long)d.groups, has_bias);
  check_true("output size matches torch", ho == (int64_t)m[11] && wo == (int64_t)m[12]);
  int64_t nx, nw, ny, nb = 0, t;
  float *x = read_ds(f, grp, "x", &nx), *w = read_ds(f, grp, "w", &nw);
  float *dy = read_ds(f, grp, "dy", &ny), *y_ref = read_ds(f, grp, "y", &t);
  float *dx_ref = read_ds(f, grp, "dx", &t), *dw_ref = read_ds(f, grp, "dw", &t);
  float *b = NULL, *db_ref = NULL;
  if (has_bias) {
    b = read_ds(f, grp, "b", &nb);
    db_ref = read_ds(f, grp, "db", &t);
  }
  masa_assert(ny == d.n * d.c_out * ho * wo && nx == d.n * d.c_in * d.h * d.w);

  float *y = test_alloc_guarded(ny, GUARD);
  conv2d_forward_cpu(&d, x, w, b, y);
  char what[96];
  snprintf(what, sizeof what, "%s forward", grp);
  check_close(what, y, y_ref, ny, 2e-5, 1e-5, WHY_FWD);
  check_guard(what, y, ny, GUARD);

  float *dx = grad_buf(nx), *dw = grad_buf(nw), *db = has_bias ? grad_buf(nb) : NULL;
  conv2d_backward_cpu(&d, x, w, dy, dx, dw, db);
  snprintf(what, sizeof what, "%s dx (accumulated)", grp);
  check_grad(what, dx, dx_ref, nx, 2e-5, 1e-5, WHY_FWD);
  snprintf(what, sizeof what, "%s dw (accumulated)", grp);
  check_grad(what, dw, dw_ref, nw, 1e-4, 1e-5, WHY_DW);
  if (has_bias) {
    snprintf(what, sizeof what, "%s db (accumulated)", grp);
    check_grad(what, db, db_ref, nb, 1e-4, 1e-5, WHY_DW);
  }
  // NULL gradients are skipped and the others unchanged: dx alone, then dw alone.
  float *dx2 = grad_buf(nx), *dw2 = grad_buf(nw);
  conv2d_backward_cpu(&d, x, w, dy, dx2, NULL, NULL);
  conv2d_backward_cpu(&d, x, w, dy, NULL, dw2, NULL);
  snprintf(what, sizeof what, "%s dx alone == dx with all", grp);
  check_true(what, memcmp(dx2, dx, (size_t)nx * sizeof(float)) == 0);
  snprintf(what, sizeof what, "%s dw alone == dw with all", grp);
  check_true(what, memcmp(dw2, dw, (size_t)nw * sizeof(float)) == 0);

  fd_ctx c = {.kind = 0, .d = d, .x = x, .wt = w, .b = b, .r = dy, .y = y, .ny = ny};
  fd_checks(&c, grp, nx, nw, nb);

  free(m); free(x); free(w); free(dy); free(y_ref); free(dx_ref); free(dw_ref); free(b);
  free(db_ref); free(y); free(dx); free(dw); free(db); free(dx2); free(dw2);
}

static void run_convt_case(h5file *f, int idx) {
  char grp[32];
  snprintf(grp, sizeof grp, "convt%d", idx);
  float *m = read_meta(f, grp, 6);
  int64_t n = (int64_t)m[0], ci = (int64_t)m[1], h = (int64_t)m[2], wd = (int64_t)m[3],
          co = (int64_t)m[4];
  int has_bias = m[5] != 0;
  printf(" %s: n=%lld c_in=%lld %lldx%lld c_out=%lld bias=%d\n", grp, (long long)n,
         (long long)ci, (long long)h, (long long)wd, (long long)co, has_bias);
  int64_t nx, nw, ny, nb = 0, t;
  float *x = read_ds(f, grp, "x", &nx), *w = read_ds(f, grp, "w", &nw);
  float *dy = read_ds(f, grp, "dy", &ny), *y_ref = read_ds(f, grp, "y", &t);
  float *dx_ref = read_ds(f, grp, "dx", &t), *dw_ref = read_ds(f, grp, "dw", &t);
  float *b = NULL, *db_ref = NULL;
  if (has_bias) {
    b = read_ds(f, grp, "b", &nb);
    db_ref = read_ds(f, grp, "db", &t);
  }
  masa_assert(ny == n * co * 4 * h * wd);
  float *y = test_alloc_guarded(ny, GUARD);
  conv_transpose2x2_forward_cpu(n, ci, h, wd, co, x, w, b, y);
  char what[96];
  snprintf(what, sizeof what, "%s forward", grp);
  check_close(what, y, y_ref, ny, 2e-5, 1e-5, WHY_FWD);
  check_guard(what, y, ny, GUARD);
  float *dx = grad_buf(nx), *dw = grad_buf(nw), *db = has_bias ? grad_buf(nb) : NULL;
  conv_transpose2x2_backward_cpu(n, ci, h, wd, co, x, w, dy, dx, dw, db);
  snprintf(what, sizeof what, "%s dx (accumulated)", grp);
  check_grad(what, dx, dx_ref, nx, 2e-5, 1e-5, WHY_FWD);
  snprintf(what, sizeof what, "%s dw (accumulated)", grp);
  check_grad(what, dw, dw_ref, nw, 1e-4, 1e-5, WHY_DW);
  if (has_bias) {
    snprintf(what, sizeof what, "%s db (accumulated)", grp);
    check_grad(what, db, db_ref, nb, 1e-4, 1e-5, WHY_DW);
  }
  fd_ctx c = {.kind = 1, .n = n, .c_in = ci, .h = h, .w = wd, .c_out = co, .x = x, .wt = w,
              .b = b, .r = dy, .y = y, .ny = ny};
  fd_checks(&c, grp, nx, nw, nb);
  free(m); free(x); free(w); free(dy); free(y_ref); free(dx_ref); free(dw_ref); free(b);
  free(db_ref); free(y); free(dx); free(dw); free(db);
}

static void run_linear_case(h5file *f, int idx) {
  char grp[32];
  snprintf(grp, sizeof grp, "linear%d", idx);
  float *m = read_meta(f, grp, 4);
  int64_t n = (int64_t)m[0], fin = (int64_t)m[1], fout = (int64_t)m[2];
  int has_bias = m[3] != 0;
  printf(" %s: n=%lld in=%lld out=%lld bias=%d\n", grp, (long long)n, (long long)fin,
         (long long)fout, has_bias);
  int64_t nx, nw, ny, nb = 0, t;
  float *x = read_ds(f, grp, "x", &nx), *w = read_ds(f, grp, "w", &nw);
  float *dy = read_ds(f, grp, "dy", &ny), *y_ref = read_ds(f, grp, "y", &t);
  float *dx_ref = read_ds(f, grp, "dx", &t), *dw_ref = read_ds(f, grp, "dw", &t);
  float *b = NULL, *db_ref = NULL;
  if (has_bias) {
    b = read_ds(f, grp, "b", &nb);
    db_ref = read_ds(f, grp, "db", &t);
  }
  float *y = test_alloc_guarded(ny, GUARD);
  linear_forward_cpu(n, fin, fout, x, w, b, y);
  char what[96];
  snprintf(what, sizeof what, "%s forward", grp);
  check_close(what, y, y_ref, ny, 2e-5, 1e-5, "float32 dot products of length <= 392");
  check_guard(what, y, ny, GUARD);
  float *dx = grad_buf(nx), *dw = grad_buf(nw), *db = has_bias ? grad_buf(nb) : NULL;
  linear_backward_cpu(n, fin, fout, x, w, dy, dx, dw, db);
  snprintf(what, sizeof what, "%s dx (accumulated)", grp);
  check_grad(what, dx, dx_ref, nx, 2e-5, 1e-5, "float32 dot products of length <= 256");
  snprintf(what, sizeof what, "%s dw (accumulated)", grp);
  check_grad(what, dw, dw_ref, nw, 2e-5, 1e-5, "float32 sums over <= 7 rows");
  if (has_bias) {
    snprintf(what, sizeof what, "%s db (accumulated)", grp);
    check_grad(what, db, db_ref, nb, 2e-5, 1e-5, "sums over <= 7 rows");
  }
  fd_ctx c = {.kind = 2, .n = n, .fin = fin, .fout = fout, .x = x, .wt = w, .b = b, .r = dy,
              .y = y, .ny = ny};
  fd_checks(&c, grp, nx, nw, nb);
  free(m); free(x); free(w); free(dy); free(y_ref); free(dx_ref); free(dw_ref); free(b);
  free(db_ref); free(y); free(dx); free(dw); free(db);
}

// ---- tiled paths against a naive float64 convolution ----

static void naive_conv(const conv2d_desc *d, const float *x, const float *w, const float *b,
                       const float *dy, double *y, double *dx, double *dw) {
  int64_t ho = conv2d_out_h(d), wo = conv2d_out_w(d);
  int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
#pragma omp parallel for schedule(static)
  for (int64_t co = 0; co < d->c_out; co++) {  // y and dw: one thread per output channel
    int64_t g = co / cog;
    for (int64_t bi = 0; bi < d->n; bi++)
      for (int64_t oh = 0; oh < ho; oh++)
        for (int64_t ow = 0; ow < wo; ow++) {
          double s = b ? b[co] : 0.0;
          double gy = dy[((bi * d->c_out + co) * ho + oh) * wo + ow];
          for (int64_t c = 0; c < cig; c++)
            for (int64_t i = 0; i < d->kh; i++)
              for (int64_t j = 0; j < d->kw; j++) {
                int64_t ih = oh * d->stride_h - d->pad_h + i * d->dil_h;
                int64_t iw = ow * d->stride_w - d->pad_w + j * d->dil_w;
                if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                int64_t xi = ((bi * d->c_in + g * cig + c) * d->h + ih) * d->w + iw;
                int64_t wi = ((co * cig + c) * d->kh + i) * d->kw + j;
                s += (double)x[xi] * w[wi];
                dw[wi] += gy * x[xi];
              }
          y[((bi * d->c_out + co) * ho + oh) * wo + ow] = s;
        }
  }
  // dx: gather form, one thread per input channel.
#pragma omp parallel for schedule(static)
  for (int64_t ci = 0; ci < d->c_in; ci++) {
    int64_t g = ci / cig, c = ci % cig;
    for (int64_t bi = 0; bi < d->n; bi++)
      for (int64_t co = g * cog; co < (g + 1) * cog; co++)
        for (int64_t oh = 0; oh < ho; oh++)
          for (int64_t ow = 0; ow < wo; ow++) {
            double gy = dy[((bi * d->c_out + co) * ho + oh) * wo + ow];
            for (int64_t i = 0; i < d->kh; i++)
              for (int64_t j = 0; j < d->kw; j++) {
                int64_t ih = oh * d->stride_h - d->pad_h + i * d->dil_h;
                int64_t iw = ow * d->stride_w - d->pad_w + j * d->dil_w;
                if (ih < 0 || ih >= d->h || iw < 0 || iw >= d->w) continue;
                dx[((bi * d->c_in + ci) * d->h + ih) * d->w + iw] +=
                    gy * w[((co * cig + c) * d->kh + i) * d->kw + j];
              }
          }
  }
}

static float *to_f32(const double *a, int64_t n) {
  float *p = mallocCheck((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = (float)a[i];
  return p;
}

static void run_naive_case(const char *label, conv2d_desc d, int has_bias, double atol_fwd,
                           double atol_dw) {
  int64_t ho = conv2d_out_h(&d), wo = conv2d_out_w(&d);
  int64_t nx = d.n * d.c_in * d.h * d.w, ny = d.n * d.c_out * ho * wo;
  int64_t K = d.c_in / d.groups * d.kh * d.kw, nw = d.c_out * K;
  printf(" %s: n=%lld c_in=%lld %lldx%lld c_out=%lld k=%lld s=%lld p=%lld g=%lld (naive ref)\n",
         label, (long long)d.n, (long long)d.c_in, (long long)d.h, (long long)d.w,
         (long long)d.c_out, (long long)d.kh, (long long)d.stride_h, (long long)d.pad_h,
         (long long)d.groups);
  float *x = mallocCheck((size_t)nx * sizeof(float)), *w = mallocCheck((size_t)nw * sizeof(float));
  float *dy = mallocCheck((size_t)ny * sizeof(float));
  float *b = has_bias ? mallocCheck((size_t)d.c_out * sizeof(float)) : NULL;
  fill_normal(x, nx, 1.0f, 11);
  fill_normal(w, nw, 1.0f / sqrtf((float)K), 12);
  fill_normal(dy, ny, 1.0f, 13);
  if (b) fill_normal(b, d.c_out, 1.0f, 14);
  double *ry = callocCheck((size_t)ny, sizeof(double)), *rdx = callocCheck((size_t)nx, sizeof(double));
  double *rdw = callocCheck((size_t)nw, sizeof(double));
  naive_conv(&d, x, w, b, dy, ry, rdx, rdw);
  float *fy = to_f32(ry, ny), *fdx = to_f32(rdx, nx), *fdw = to_f32(rdw, nw);
  float *y = test_alloc_guarded(ny, GUARD);
  conv2d_forward_cpu(&d, x, w, b, y);
  char what[96];
  snprintf(what, sizeof what, "%s forward", label);
  check_close(what, y, fy, ny, atol_fwd, 1e-5, "float32 dot products, length c_in*k*k");
  check_guard(what, y, ny, GUARD);
  float *dx = grad_buf(nx), *dw = grad_buf(nw);
  conv2d_backward_cpu(&d, x, w, dy, dx, dw, NULL);
  snprintf(what, sizeof what, "%s dx (accumulated)", label);
  check_grad(what, dx, fdx, nx, atol_fwd, 1e-5, "float32 dot products, length c_out*k*k");
  snprintf(what, sizeof what, "%s dw (accumulated)", label);
  check_grad(what, dw, fdw, nw, atol_dw, 1e-5, "float32 sums over all output pixels");
  free(x); free(w); free(dy); free(b); free(ry); free(rdx); free(rdw); free(fy); free(fdx);
  free(fdw); free(y); free(dx); free(dw);
}

static void run_naive_convt(void) {
  // c_out * 4 * w * rows > the 16 MB tile budget: several row tiles per image.
  const int64_t n = 1, ci = 16, h = 100, wd = 64, co = 256;
  printf(" convt tiled: n=%lld c_in=%lld %lldx%lld c_out=%lld (naive ref)\n", (long long)n,
         (long long)ci, (long long)h, (long long)wd, (long long)co);
  int64_t nx = n * ci * h * wd, nw = ci * co * 4, ny = n * co * 4 * h * wd;
  float *x = mallocCheck((size_t)nx * sizeof(float)), *w = mallocCheck((size_t)nw * sizeof(float));
  float *dy = mallocCheck((size_t)ny * sizeof(float)), *b = mallocCheck((size_t)co * sizeof(float));
  fill_normal(x, nx, 1.0f, 21);
  fill_normal(w, nw, 0.25f, 22);
  fill_normal(dy, ny, 1.0f, 23);
  fill_normal(b, co, 1.0f, 24);
  float *ry = mallocCheck((size_t)ny * sizeof(float)), *rdx = mallocCheck((size_t)nx * sizeof(float));
  float *rdw = mallocCheck((size_t)nw * sizeof(float));
  for (int64_t c = 0; c < co; c++)
    for (int64_t oy = 0; oy < 2 * h; oy++)
      for (int64_t ox = 0; ox < 2 * wd; ox++) {
        double s = b[c];
        for (int64_t k = 0; k < ci; k++)
          s += (double)x[(k * h + oy / 2) * wd + ox / 2] * w[(k * co + c) * 4 + (oy % 2) * 2 + ox % 2];
        ry[(c * 2 * h + oy) * 2 * wd + ox] = (float)s;
      }
  for (int64_t k = 0; k < ci; k++) {
    for (int64_t iy = 0; iy < h; iy++)
      for (int64_t ix = 0; ix < wd; ix++) {
        double s = 0.0;
        for (int64_t c = 0; c < co; c++)
          for (int64_t t = 0; t < 4; t++)
            s += (double)dy[(c * 2 * h + 2 * iy + t / 2) * 2 * wd + 2 * ix + t % 2] *
                 w[(k * co + c) * 4 + t];
        rdx[(k * h + iy) * wd + ix] = (float)s;
      }
    for (int64_t c = 0; c < co; c++)
      for (int64_t t = 0; t < 4; t++) {
        double s = 0.0;
        for (int64_t iy = 0; iy < h; iy++)
          for (int64_t ix = 0; ix < wd; ix++)
            s += (double)x[(k * h + iy) * wd + ix] *
                 dy[(c * 2 * h + 2 * iy + t / 2) * 2 * wd + 2 * ix + t % 2];
        rdw[(k * co + c) * 4 + t] = (float)s;
      }
  }
  float *y = test_alloc_guarded(ny, GUARD);
  conv_transpose2x2_forward_cpu(n, ci, h, wd, co, x, w, b, y);
  check_close("convt tiled forward", y, ry, ny, 2e-5, 1e-5, "float32 dots of length 16");
  check_guard("convt tiled forward", y, ny, GUARD);
  float *dx = grad_buf(nx), *dw = grad_buf(nw);
  conv_transpose2x2_backward_cpu(n, ci, h, wd, co, x, w, dy, dx, dw, NULL);
  check_grad("convt tiled dx (accumulated)", dx, rdx, nx, 1e-4, 1e-5,
             "float32 dots of length 1024 with weights ~0.25, values ~8");
  check_grad("convt tiled dw (accumulated)", dw, rdw, nw, 1e-3, 1e-5,
             "float32 sums over 6400 pixels, values ~80");
  free(x); free(w); free(dy); free(b); free(ry); free(rdx); free(rdw); free(y); free(dx);
  free(dw);
}

// Bias gradients are reduced in a fixed order: bitwise equal for 1 and 2 threads.
static void run_determinism(void) {
  conv2d_desc d = conv2d_make(2, 8, 33, 31, 16, 3, 1, 1, 1, 1);
  int64_t ny = d.n * d.c_out * conv2d_out_h(&d) * conv2d_out_w(&d);
  int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * d.c_in * 9;
  float *x = mallocCheck((size_t)nx * sizeof(float)), *w = mallocCheck((size_t)nw * sizeof(float));
  float *dy = mallocCheck((size_t)ny * sizeof(float));
  fill_normal(x, nx, 1.0f, 31);
  fill_normal(w, nw, 0.1f, 32);
  fill_normal(dy, ny, 1.0f, 33);
  float *db1 = callocCheck((size_t)d.c_out, sizeof(float)), *db2 = callocCheck((size_t)d.c_out, sizeof(float));
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  conv2d_backward_cpu(&d, x, w, dy, NULL, NULL, db1);
  omp_set_num_threads(2);
  conv2d_backward_cpu(&d, x, w, dy, NULL, NULL, db2);
  omp_set_num_threads(saved);
  check_true("conv dbias identical with 1 and 2 threads",
             memcmp(db1, db2, (size_t)d.c_out * sizeof(float)) == 0);
  free(x); free(w); free(dy); free(db1); free(db2);
}

int main(int argc, char **argv) {
  g_seed = test_begin("conv", 7001);
  h5file *f = oracle_open(argc > 1 ? argv[1] : NULL);
  char name[64];
  int count = 0;
  for (int i = 0;; i++, count++) {
    snprintf(name, sizeof name, "conv%d/meta", i);
    if (!h5_has(f, name)) break;
    run_conv_case(f, i);
  }
  check_true("oracle has conv cases", count >= 10);
  count = 0;
  for (int i = 0;; i++, count++) {
    snprintf(name, sizeof name, "convt%d/meta", i);
    if (!h5_has(f, name)) break;
    run_convt_case(f, i);
  }
  check_true("oracle has transposed-conv cases", count >= 3);
  count = 0;
  for (int i = 0;; i++, count++) {
    snprintf(name, sizeof name, "linear%d/meta", i);
    if (!h5_has(f, name)) break;
    run_linear_case(f, i);
  }
  check_true("oracle has linear cases", count >= 3);
  h5_close(f);

  // im2col path, row tiles: K = 2304 columns of 48*48 outputs (stride 2) exceed the 16 MB tile
  // budget -> 2 row tiles per image.
  run_naive_case("conv rows-tiled", conv2d_make(2, 256, 96, 96, 8, 3, 2, 1, 1, 1), 1, 2e-4, 2e-3);
  // im2col path, image tiles: K = 576, 30x30 (< 1024 outputs) -> 8 images per tile: 8 + 1.
  run_naive_case("conv image-tiled", conv2d_make(9, 64, 30, 30, 16, 3, 1, 1, 1, 1), 0, 1e-4, 2e-3);
  // 1x1 direct GEMM on the input planes (one image per tile), groups 1.
  run_naive_case("conv 1x1 direct", conv2d_make(2, 256, 96, 96, 16, 1, 1, 0, 1, 1), 1, 1e-4, 2e-3);
  // Grouped + strided, several images in one tile.
  run_naive_case("conv grouped tiled", conv2d_make(5, 128, 40, 40, 32, 3, 2, 1, 1, 2), 1, 1e-4, 2e-3);
  // Shifted-window path (stride 1, >= 1024 outputs): MASA's 3x3 pad 1; dilation + groups; no
  // padding; a non-square 1x3 kernel with asymmetric padding and dilation.
  run_naive_case("conv wide 3x3", conv2d_make(2, 256, 48, 48, 8, 3, 1, 1, 1, 1), 1, 2e-4, 2e-3);
  run_naive_case("conv wide dil2 g2", conv2d_make(3, 32, 40, 36, 16, 3, 1, 2, 2, 2), 1, 1e-4, 2e-3);
  run_naive_case("conv wide pad0", conv2d_make(1, 16, 40, 40, 8, 3, 1, 0, 1, 1), 0, 1e-4, 2e-3);
  conv2d_desc ns = conv2d_make(2, 16, 33, 45, 8, 1, 1, 0, 1, 1);
  ns.kw = 3;
  ns.pad_h = 1;
  ns.pad_w = 2;
  ns.dil_w = 2;
  run_naive_case("conv wide 1x3 pad(1,2) dil(1,2)", ns, 1, 1e-4, 2e-3);
  run_naive_convt();
  run_determinism();
  return test_end();
}
