// Modulated deformable conv v2 on the CPU (ops/dcn.c):
// 1. against tests/oracle_dcn.py (torchvision deform_conv2d in float64, and a naive float64 mmcv
//    loop for the edge-coordinate and offset-reinterpretation cases), every output and gradient;
// 2. finite-difference checks of dx, doffset, dmask, dweight, dbias;
// 3. guard regions after every output / gradient, backward accumulation and NULL gradients;
// 4. bit-identical results for 1, 2 and 3 OpenMP threads.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "harness.h"
#include "ops/dcn.h"

#define GUARD 67

// Tolerances (atol + rtol*|ref|) against float64 references. Our float32 sums run over
// c_in*kh*kw terms (GEMM) then c_out terms (column gradient GEMM) then up to 4*9 scatters or
// c_in channels; each term is O(1) at these scales (x ~ N(0, 1), weights ~ 1/sqrt(c_in*9),
// dy ~ N(0, 1)), so rounding errors grow like sqrt(terms) * 2^-24 * |terms|: 1e-5 absolute
// covers c_in = 256 (2304-term sums) with a wide margin; rtol 1e-5 covers large entries.
#define TOL_Y_ATOL 2e-5
#define TOL_Y_RTOL 1e-5
// dx, doffset, dmask sum c_out-term GEMM results that are themselves O(sqrt(c_out)) in size.
#define TOL_G_ATOL 5e-5
#define TOL_G_RTOL 1e-5
// dweight and dbias sum n*ho*wo terms (up to 2730 here) of O(1) products.
#define TOL_W_ATOL 1e-4
#define TOL_W_RTOL 1e-5

static float *alloc_filled(int64_t n, float v) {
  float *p = test_alloc_guarded(n, GUARD);
  for (int64_t i = 0; i < n; i++) p[i] = v;
  return p;
}

static void compare(const char *cname, const char *what, const float *got, const float *ref,
                    int64_t n, double atol, double rtol, const char *why) {
  char label[160];
  snprintf(label, sizeof label, "%s %s", cname, what);
  check_close(label, got, ref, n, atol, rtol, why);
}

static void guard(const char *cname, const char *what, const float *buf, int64_t n) {
  char label[160];
  snprintf(label, sizeof label, "%s %s", cname, what);
  check_guard(label, buf, n, GUARD);
}

static float *read_exact(h5file *f, const char *grp, const char *name, int ndim,
                         const int64_t *shape) {
  char key[128];
  snprintf(key, sizeof key, "%s/%s", grp, name);
  return oracle_read(f, key, ndim, shape);
}

static int has(h5file *f, const char *grp, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "%s/%s", grp, name);
  return h5_has(f, key);
}

// One oracle case: forward, backward, guards; naive mmcv reference where present.
static void run_oracle_case(h5file *f, int idx) {
  char grp[32];
  snprintf(grp, sizeof grp, "case%d", idx);
  int64_t mshape[1] = {17};
  float *meta = read_exact(f, grp, "meta", 1, mshape);
  int64_t n = (int64_t)meta[0], cin = (int64_t)meta[1], h = (int64_t)meta[2], w = (int64_t)meta[3];
  int64_t cout = (int64_t)meta[4], k = (int64_t)meta[5], stride = (int64_t)meta[6];
  int64_t pad = (int64_t)meta[7], dil = (int64_t)meta[8];
  int has_bias = meta[9] != 0.0f;
  int layout = (int)meta[10];
  int64_t c0 = (int64_t)meta[11], m0 = (int64_t)meta[12], hl = (int64_t)meta[13];
  int64_t wl = (int64_t)meta[14];
  dcn_desc d = dcn_make(n, cin, h, w, cout, k, stride, pad, dil);
  int64_t ho = d.ho, wo = d.wo, taps = k * k;
  char cname[80];
  snprintf(cname, sizeof cname, "%s[n%lld %lldx%lld s%lld d%lld L%d]", grp, (long long)n,
           (long long)h, (long long)w, (long long)stride, (long long)dil, layout);
  check_true("oracle output size matches dcn_make", ho == (int64_t)meta[15] && wo == (int64_t)meta[16]);

  int64_t sx[4] = {n, cin, h, w}, sw[4] = {cout, cin, k, k}, sy[4] = {n, cout, ho, wo};
  int64_t sb[1] = {cout};
  int64_t nx = n * cin * h * w, nw = cout * cin * k * k, ny = n * cout * ho * wo;
  float *x = read_exact(f, grp, "x", 4, sx), *wt = read_exact(f, grp, "weight", 4, sw);
  float *dy = read_exact(f, grp, "dy", 4, sy);
  float *bias = has_bias ? read_exact(f, grp, "bias", 1, sb) : NULL;

  // Offset / mask storage and the pointers + strides the op reads them through.
  float *off_store, *msk_store, *off, *msk;
  int64_t n_off, n_msk;
  const char *off_name, *msk_name;
  if (layout == 0) {
    int64_t so[4] = {n, 2 * taps, ho, wo}, sm[4] = {n, taps, ho, wo};
    off_name = "offset", msk_name = "mask";
    off_store = read_exact(f, grp, off_name, 4, so);
    msk_store = read_exact(f, grp, msk_name, 4, sm);
    n_off = n * 2 * taps * ho * wo, n_msk = n * taps * ho * wo;
    off = off_store, msk = msk_store;
  } else {
    int64_t so[4] = {n, 81, hl, wl}, sm[4] = {n, 27, hl, wl};
    off_name = "om", msk_name = "msig";
    off_store = read_exact(f, grp, off_name, 4, so);
    msk_store = read_exact(f, grp, msk_name, 4, sm);
    n_off = n * 81 * hl * wl, n_msk = n * 27 * hl * wl;
    off = off_store + c0 * hl * wl, msk = msk_store + m0 * hl * wl;
    // DeformFusion slices (layout 1) are exact channel views; the reinterpretation (layout 2)
    // keeps the bigger tensor's batch stride but reads channels and rows with the output's.
    int64_t ch = layout == 1 ? hl * wl : ho * wo, row = layout == 1 ? wl : wo;
    d.off = (dcn_strides){.batch = 81 * hl * wl, .channel = ch, .row = row};
    d.msk = (dcn_strides){.batch = 27 * hl * wl, .channel = ch, .row = row};
  }

  // Forward overwrites: start from NaN.
  float *y = alloc_filled(ny, NAN);
  dcn_forward_cpu(&d, x, off, msk, wt, bias, y);
  float *ref = read_exact(f, grp, "y", 4, sy);
  compare(cname, "y vs torchvision", y, ref, ny, TOL_Y_ATOL, TOL_Y_RTOL,
          "float32 GEMM over c_in*9 terms vs float64");
  guard(cname, "y", y, ny);
  free(ref);

  float *dx = alloc_filled(nx, 0), *dw = alloc_filled(nw, 0), *db = alloc_filled(cout, 0);
  float *doff_store = alloc_filled(n_off, 0), *dmsk_store = alloc_filled(n_msk, 0);
  float *doff = doff_store + (off - off_store), *dmsk = dmsk_store + (msk - msk_store);
  dcn_backward_cpu(&d, x, off, msk, wt, dy, dx, doff, dmsk, dw, has_bias ? db : NULL);

  char dname_off[16], dname_msk[16];
  snprintf(dname_off, sizeof dname_off, "d%s", off_name);
  snprintf(dname_msk, sizeof dname_msk, "d%s", msk_name);
  int64_t soff[4] = {n, layout ? 81 : 2 * taps, layout ? hl : ho, layout ? wl : wo};
  int64_t smsk[4] = {n, layout ? 27 : taps, layout ? hl : ho, layout ? wl : wo};
  struct {
    const char *name;
    const float *got;
    int64_t n;
    int ndim;
    const int64_t *shape;
    double atol, rtol;
    const char *why;
  } grads[] = {
      {"dx", dx, nx, 4, sx, TOL_G_ATOL, TOL_G_RTOL, "float32 c_out-term GEMM, then <=36 scatters"},
      {dname_off, doff_store, n_off, 4, soff, TOL_G_ATOL, TOL_G_RTOL,
       "float32 c_out-term GEMM, then c_in-term sum"},
      {dname_msk, dmsk_store, n_msk, 4, smsk, TOL_G_ATOL, TOL_G_RTOL,
       "float32 c_out-term GEMM, then c_in-term sum"},
      {"dweight", dw, nw, 4, sw, TOL_W_ATOL, TOL_W_RTOL, "float32 sum over n*ho*wo positions"},
      {"dbias", db, cout, 1, sb, TOL_W_ATOL, TOL_W_RTOL, "sum over n*ho*wo positions"},
  };
  for (size_t g = 0; g < sizeof grads / sizeof grads[0]; g++) {
    if (!strcmp(grads[g].name, "dbias") && !has_bias) continue;
    char what[64];
    ref = read_exact(f, grp, grads[g].name, grads[g].ndim, grads[g].shape);
    snprintf(what, sizeof what, "%s vs torchvision", grads[g].name);
    compare(cname, what, grads[g].got, ref, grads[g].n, grads[g].atol, grads[g].rtol,
            grads[g].why);
    free(ref);
    char nkey[64];
    snprintf(nkey, sizeof nkey, "naive/%s", grads[g].name);
    if (has(f, grp, nkey)) {
      ref = read_exact(f, grp, nkey, grads[g].ndim, grads[g].shape);
      snprintf(what, sizeof what, "%s vs naive mmcv", grads[g].name);
      compare(cname, what, grads[g].got, ref, grads[g].n, grads[g].atol, grads[g].rtol,
              grads[g].why);
      free(ref);
    }
    guard(cname, grads[g].name, grads[g].got, grads[g].n);
  }
  if (has(f, grp, "naive/y")) {
    ref = read_exact(f, grp, "naive/y", 4, sy);
    compare(cname, "y vs naive mmcv", y, ref, ny, TOL_Y_ATOL, TOL_Y_RTOL,
            "float32 GEMM over c_in*9 terms vs float64");
    free(ref);
  }

  // Backward accumulates: a second call doubles every gradient (exactly: x + x is exact, and the
  // op's own result is the same both times).
  if (idx == 0) {
    float *dx1 = mallocCheck((size_t)nx * sizeof(float));
    memcpy(dx1, dx, (size_t)nx * sizeof(float));
    float *dw1 = mallocCheck((size_t)nw * sizeof(float));
    memcpy(dw1, dw, (size_t)nw * sizeof(float));
    float *doff1 = mallocCheck((size_t)n_off * sizeof(float));
    memcpy(doff1, doff_store, (size_t)n_off * sizeof(float));
    dcn_backward_cpu(&d, x, off, msk, wt, dy, dx, doff, dmsk, dw, has_bias ? db : NULL);
    int ok = 1;
    for (int64_t i = 0; i < nx; i++) ok &= dx[i] == 2 * dx1[i];
    for (int64_t i = 0; i < n_off; i++) ok &= doff_store[i] == 2 * doff1[i];
    check_true("backward accumulates (second call doubles dx, doffset)", ok);
    // dweight goes through GEMM with beta 1, which may block its sum differently.
    for (int64_t i = 0; i < nw; i++) dw1[i] *= 2;
    check_close("backward accumulates (second call doubles dweight)", dw, dw1, nw, 1e-6, 1e-6,
                "GEMM with beta 1 adds in its own order");
    // NULL gradients are skipped and do not change the others.
    float *dx_only = alloc_filled(nx, 0);
    dcn_backward_cpu(&d, x, off, msk, wt, dy, dx_only, NULL, NULL, NULL, NULL);
    check_true("dx alone (other gradients NULL) equals dx of the full call",
               memcmp(dx_only, dx1, (size_t)nx * sizeof(float)) == 0);
    float *dw_only = alloc_filled(nw, 0);
    dcn_backward_cpu(&d, x, off, msk, wt, dy, NULL, NULL, NULL, dw_only, NULL);
    for (int64_t i = 0; i < nw; i++) dw1[i] *= 0.5f;
    check_true("dweight alone (other gradients NULL) equals dweight of the full call",
               memcmp(dw_only, dw1, (size_t)nw * sizeof(float)) == 0);
    free(dx1), free(dw1), free(doff1), free(dx_only), free(dw_only);
  }

  free(meta), free(x), free(wt), free(dy), free(bias), free(off_store), free(msk_store), free(y);
  free(dx), free(dw), free(db), free(doff_store), free(dmsk_store);
}

// ---------------------------------------------------------------------------------------------
// Finite differences. Sampling coordinates are placed at fractional parts in [0.15, 0.85] (away
// from the bilinear kinks at integers, which include the -1 and h validity cut-offs), inside and
// outside the map. Within a cell the output is bilinear in (y, x) and linear in x, mask, weight,
// bias, so central differences are exact up to float32 rounding of the forward.

typedef struct {
  dcn_desc d;
  float *x, *off, *msk, *w, *b, *r, *y;
} fd_ctx;

static double fd_loss(void *p) {
  fd_ctx *c = p;
  dcn_forward_cpu(&c->d, c->x, c->off, c->msk, c->w, c->b, c->y);
  return dot_f64(c->y, c->r, c->d.n * c->d.c_out * c->d.ho * c->d.wo);
}

// Offsets for which every sampling coordinate sits at a fractional part in [0.15, 0.85],
// spread over [-2.5, h + 1.5) so that some samples are out of the map.
static void fd_offsets(const dcn_desc *d, float *off, uint64_t seed, uint64_t stream) {
  int64_t taps = d->kh * d->kw, hw = d->ho * d->wo;
  for (int64_t b = 0; b < d->n; b++)
    for (int64_t t = 0; t < taps; t++)
      for (int64_t p = 0; p < hw; p++)
        for (int dir = 0; dir < 2; dir++) {
          int64_t oh = p / d->wo, ow = p % d->wo;
          int64_t base = dir == 0 ? oh * d->stride - d->pad + (t / d->kw) * d->dil
                                  : ow * d->stride - d->pad + (t % d->kw) * d->dil;
          int64_t lim = dir == 0 ? d->h : d->w;
          uint64_t i = (uint64_t)((((b * taps + t) * hw + p) * 2 + dir) * 2);
          int64_t cell = -3 + (int64_t)rng_below(seed, stream, i, (uint32_t)(lim + 5));
          float frac = 0.15f + 0.7f * rng_uniform(seed, stream, i + 1);
          off[((b * 2 * taps + 2 * t + dir) * hw) + p] = (float)(cell - base) + frac;
        }
}

static void fd_suite(const char *label, dcn_desc d, uint64_t seed) {
  int64_t taps = d.kh * d.kw, hw = d.ho * d.wo;
  int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * d.c_in * taps, ny = d.n * d.c_out * hw;
  int64_t noff = d.n * 2 * taps * hw, nm = d.n * taps * hw;
  fd_ctx c = {.d = d};
  c.x = mallocCheck((size_t)nx * sizeof(float));
  c.off = mallocCheck((size_t)noff * sizeof(float));
  c.msk = mallocCheck((size_t)nm * sizeof(float));
  c.w = mallocCheck((size_t)nw * sizeof(float));
  c.b = mallocCheck((size_t)d.c_out * sizeof(float));
  c.r = mallocCheck((size_t)ny * sizeof(float));
  c.y = test_alloc_guarded(ny, GUARD);
  rng_fill_normal(c.x, nx, 0, 1, seed, 11);
  fd_offsets(&d, c.off, seed, 12);
  rng_fill_uniform(c.msk, nm, 0.05f, 0.95f, seed, 13);
  rng_fill_normal(c.w, nw, 0, 0.3f, seed, 14);
  rng_fill_normal(c.b, d.c_out, 0, 0.5f, seed, 15);
  rng_fill_normal(c.r, ny, 0, 1, seed, 16);
  float *dx = test_alloc_guarded(nx, GUARD), *doff = test_alloc_guarded(noff, GUARD);
  float *dm = test_alloc_guarded(nm, GUARD), *dw = test_alloc_guarded(nw, GUARD);
  float *db = test_alloc_guarded(d.c_out, GUARD);
  dcn_backward_cpu(&d, c.x, c.off, c.msk, c.w, c.r, dx, doff, dm, dw, db);
  // eps 1e-2 keeps every coordinate in its cell (fractional parts 0.15..0.85). The loss is a
  // double sum of ~100 float32 outputs of size O(1): rounding ~1e-6, over 2 eps => ~1e-4.
  const double atol = 5e-4, rtol = 1e-3;
  const float eps = 1e-2f;
  char what[96];
  snprintf(what, sizeof what, "%s fd dx", label);
  check_grad_fd(what, c.x, nx, dx, fd_loss, &c, 24, eps, atol, rtol, seed ^ 1, NULL);
  snprintf(what, sizeof what, "%s fd doffset", label);
  check_grad_fd(what, c.off, noff, doff, fd_loss, &c, 24, eps, atol, rtol, seed ^ 2, NULL);
  snprintf(what, sizeof what, "%s fd dmask", label);
  check_grad_fd(what, c.msk, nm, dm, fd_loss, &c, 24, eps, atol, rtol, seed ^ 3, NULL);
  snprintf(what, sizeof what, "%s fd dweight", label);
  check_grad_fd(what, c.w, nw, dw, fd_loss, &c, 24, eps, atol, rtol, seed ^ 4, NULL);
  snprintf(what, sizeof what, "%s fd dbias", label);
  check_grad_fd(what, c.b, d.c_out, db, fd_loss, &c, 8, eps, atol, rtol, seed ^ 5, NULL);
  snprintf(what, sizeof what, "%s fd", label);
  guard(what, "y", c.y, ny);
  guard(what, "dx", dx, nx);
  guard(what, "doffset", doff, noff);
  guard(what, "dmask", dm, nm);
  guard(what, "dweight", dw, nw);
  guard(what, "dbias", db, d.c_out);
  free(c.x), free(c.off), free(c.msk), free(c.w), free(c.b), free(c.r), free(c.y);
  free(dx), free(doff), free(dm), free(dw), free(db);
}

// ---------------------------------------------------------------------------------------------
// Determinism: 1, 2 and 3 OpenMP threads. 40 input channels give three offset-gradient channel
// groups (16, 16, 8); 23 x 150 outputs give two row tiles. Every sum dcn.c does itself is in a
// fixed order, so dx, doffset, dmask and dbias are bit-identical for any thread count. y and
// dweight come out of OpenBLAS GEMMs, whose threaded sgemm splits the inner dimension by thread
// count (the OpenMP build follows omp_set_num_threads): those differ in the last bits across
// thread counts and must be bit-identical only between runs with the same count (run 4 repeats
// run 3), which is what exact resume needs.
static void determinism_suite(uint64_t seed) {
  dcn_desc d = dcn_make(2, 40, 23, 150, 24, 3, 1, 1, 1);
  int64_t taps = 9, hw = d.ho * d.wo;
  int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * d.c_in * taps, ny = d.n * d.c_out * hw;
  int64_t noff = d.n * 2 * taps * hw, nm = d.n * taps * hw;
  float *x = mallocCheck((size_t)nx * sizeof(float)), *w = mallocCheck((size_t)nw * sizeof(float));
  float *off = mallocCheck((size_t)noff * sizeof(float)), *m = mallocCheck((size_t)nm * sizeof(float));
  float *dy = mallocCheck((size_t)ny * sizeof(float)), *b = mallocCheck((size_t)d.c_out * sizeof(float));
  rng_fill_normal(x, nx, 0, 1, seed, 21);
  rng_fill_normal(w, nw, 0, 0.05f, seed, 22);
  rng_fill_normal(off, noff, 0, 3, seed, 23);
  rng_fill_uniform(m, nm, 0, 1, seed, 24);
  rng_fill_normal(dy, ny, 0, 1, seed, 25);
  rng_fill_normal(b, d.c_out, 0, 1, seed, 26);
  int64_t sizes[6] = {ny, nx, noff, nm, nw, d.c_out};
  float *res[4][6];
  int threads[4] = {1, 2, 3, 3};
  int saved = omp_get_max_threads();
  for (int r = 0; r < 4; r++) {
    omp_set_num_threads(threads[r]);
    for (int i = 0; i < 6; i++) res[r][i] = callocCheck((size_t)sizes[i], sizeof(float));
    dcn_forward_cpu(&d, x, off, m, w, b, res[r][0]);
    dcn_backward_cpu(&d, x, off, m, w, dy, res[r][1], res[r][2], res[r][3], res[r][4], res[r][5]);
  }
  omp_set_num_threads(saved);
  const char *names[6] = {"y", "dx", "doffset", "dmask", "dweight", "dbias"};
  for (int r = 1; r < 3; r++)
    for (int i = 0; i < 6; i++) {
      char what[96];
      int via_gemm = i == 0 || i == 4;
      snprintf(what, sizeof what, "determinism %s: %d vs 1 threads, %s", names[i], threads[r],
               via_gemm ? "GEMM rounding only" : "bit-identical");
      if (via_gemm)
        // dweight sums n*ho*wo = 6900 products of O(1) terms: float32 reassociation ~1e-5.
        check_close(what, res[r][i], res[0][i], sizes[i], i == 4 ? 1e-4 : 1e-6, 1e-5,
                    "OpenBLAS reassociates the inner sum by thread count");
      else
        check_true(what, memcmp(res[0][i], res[r][i], (size_t)sizes[i] * sizeof(float)) == 0);
    }
  for (int i = 0; i < 6; i++) {
    char what[96];
    snprintf(what, sizeof what, "determinism %s: repeat at 3 threads, bit-identical", names[i]);
    check_true(what, memcmp(res[2][i], res[3][i], (size_t)sizes[i] * sizeof(float)) == 0);
  }
  for (int r = 0; r < 4; r++)
    for (int i = 0; i < 6; i++) free(res[r][i]);
  free(x), free(w), free(off), free(m), free(dy), free(b);
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("dcn", 20240601);
  h5file *f = oracle_open(argc > 1 ? argv[1] : NULL);
  int64_t one[1] = {1};
  float *ncases = oracle_read(f, "num_cases", 1, one);
  for (int i = 0; i < (int)ncases[0]; i++) run_oracle_case(f, i);
  free(ncases);
  h5_close(f);

  fd_suite("n2 c3->4 6x5 s1 d1", dcn_make(2, 3, 6, 5, 4, 3, 1, 1, 1), seed);
  fd_suite("n1 c2->3 7x8 s2 d2", dcn_make(1, 2, 7, 8, 3, 3, 2, 1, 2), seed + 1);
  determinism_suite(seed);
  return test_end();
}
