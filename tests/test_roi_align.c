// RoIAlign and the multi-level RoI extractor against torchvision (tests/oracle_roi_align.py):
// forward and input gradient versus float64 and float32 torchvision, finite differences, guard
// regions, accumulation into a non-zero gradient, NULL gradients, NaN RoIs, zero RoIs, and
// bit-identical backward for 1 and several threads.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/roi_align.h"

#define GUARD 67

// Tolerances (|got - ref| <= atol + rtol |ref|, features ~ N(0, 1)):
// vs float64: sample positions carry float32 rounding (~1e-6 px at coordinates <= 128, times a
// feature slope ~1) and bins sum up to a few hundred float32 products: 1e-5 is ~10x that.
#define ATOL64 1e-5
#define RTOL64 1e-5
#define WHY64 "float32 sample positions and sums vs float64 torchvision"
// Multi-level maps reach 128 pixels, where a float32 coordinate carries ~1e-5 px of rounding;
// times feature slopes of a few units that is ~3e-5, so 1e-4 there.
#define ATOL64_ML 1e-4
#define WHY64_ML "float32 sample positions at coordinates up to 128 vs float64 torchvision"
// vs torchvision float32: identical float32 sample positions and weights; only the sums are
// reassociated (samples on the same pixel merged into one tap), a few ulp of the bin's terms.
#define ATOL32 2e-6
#define RTOL32 2e-6
#define WHY32 "same float32 positions and weights as torchvision; sums reassociated"

static h5file *g_f;

static float *rd(const char *group, const char *name, int64_t *numel) {
  char key[128];
  snprintf(key, sizeof key, "%s/%s", group, name);
  return oracle_read_any(g_f, key, numel, NULL, NULL);
}

static int has(const char *group, const char *name) {
  char key[128];
  snprintf(key, sizeof key, "%s/%s", group, name);
  return h5_has(g_f, key);
}

typedef struct {
  int64_t n, c, h, w, k, oh, ow;
  float scale;
  int sr, aligned;
  float *x, *rois, *r, *y;  // r: upstream gradient; y: forward scratch
} single_ctx;

static double single_loss(void *p) {
  single_ctx *s = p;
  roi_align_forward_cpu(s->n, s->c, s->h, s->w, s->x, s->k, s->rois, s->scale, s->oh, s->ow,
                        s->sr, s->aligned, s->y);
  return dot_f64(s->y, s->r, s->k * s->c * s->oh * s->ow);
}

static void backward_threads(const single_ctx *s, int threads, float *dx) {
  int64_t nx = s->n * s->c * s->h * s->w;
  memset(dx, 0, (size_t)nx * sizeof(float));
  omp_set_num_threads(threads);
  roi_align_backward_cpu(s->n, s->c, s->h, s->w, s->k, s->rois, s->scale, s->oh, s->ow, s->sr,
                         s->aligned, s->r, dx);
}

static void test_single(const char *g, uint64_t seed, int max_threads) {
  int64_t np;
  float *pr = rd(g, "params", &np);
  single_ctx s = {.n = (int64_t)pr[0], .c = (int64_t)pr[1], .h = (int64_t)pr[2],
                  .w = (int64_t)pr[3], .k = (int64_t)pr[4], .scale = pr[5],
                  .oh = (int64_t)pr[6], .ow = (int64_t)pr[7], .sr = (int)pr[8],
                  .aligned = (int)pr[9]};
  free(pr);
  printf(" %s: n %lld c %lld %lldx%lld, k %lld, scale %g, out %lldx%lld, sampling_ratio %d, "
         "aligned %d\n",
         g, (long long)s.n, (long long)s.c, (long long)s.h, (long long)s.w, (long long)s.k,
         (double)s.scale, (long long)s.oh, (long long)s.ow, s.sr, s.aligned);
  int64_t nx = s.n * s.c * s.h * s.w, ny = s.k * s.c * s.oh * s.ow;
  s.x = rd(g, "x", NULL);
  float dummy_roi[5] = {0, 0, 0, 0, 0};
  s.rois = s.k > 0 ? rd(g, "rois", NULL) : dummy_roi;
  s.r = s.k > 0 ? rd(g, "dy", NULL) : NULL;
  char what[160];

  // Forward into a guarded buffer.
  s.y = test_alloc_guarded(ny, GUARD);
  roi_align_forward_cpu(s.n, s.c, s.h, s.w, s.x, s.k, s.rois, s.scale, s.oh, s.ow, s.sr,
                        s.aligned, s.y);
  snprintf(what, sizeof what, "%s y", g);
  check_guard(what, s.y, ny, GUARD);
  if (s.k > 0) {
    float *yref = rd(g, "y", NULL), *y32 = rd(g, "y32", NULL);
    snprintf(what, sizeof what, "%s y vs float64", g);
    check_close(what, s.y, yref, ny, ATOL64, RTOL64, WHY64);
    snprintf(what, sizeof what, "%s y vs torchvision float32", g);
    check_close(what, s.y, y32, ny, ATOL32, RTOL32, WHY32);
    free(yref);
    free(y32);
  }

  // Backward into a guarded zero buffer, then accumulation on top of ones.
  float *dxref = rd(g, "dx", NULL), *dx32 = rd(g, "dx32", NULL);
  float *dx = test_alloc_guarded(nx, GUARD);
  roi_align_backward_cpu(s.n, s.c, s.h, s.w, s.k, s.rois, s.scale, s.oh, s.ow, s.sr, s.aligned,
                         s.r, dx);
  snprintf(what, sizeof what, "%s dx", g);
  check_guard(what, dx, nx, GUARD);
  snprintf(what, sizeof what, "%s dx vs float64", g);
  check_close(what, dx, dxref, nx, ATOL64, RTOL64, WHY64);
  snprintf(what, sizeof what, "%s dx vs torchvision float32", g);
  check_close(what, dx, dx32, nx, ATOL32, RTOL32, WHY32);
  float *acc = malloc((size_t)nx * sizeof(float)), *acc_ref = malloc((size_t)nx * sizeof(float));
  for (int64_t i = 0; i < nx; i++) {
    acc[i] = 1.0f;
    acc_ref[i] = 1.0f + dxref[i];
  }
  roi_align_backward_cpu(s.n, s.c, s.h, s.w, s.k, s.rois, s.scale, s.oh, s.ow, s.sr, s.aligned,
                         s.r, acc);
  snprintf(what, sizeof what, "%s dx accumulates onto 1", g);
  check_close(what, acc, acc_ref, nx, ATOL64, RTOL64, WHY64);
  // NULL gradient: nothing to do, must not crash.
  roi_align_backward_cpu(s.n, s.c, s.h, s.w, s.k, s.rois, s.scale, s.oh, s.ow, s.sr, s.aligned,
                         s.r, NULL);

  if (s.k > 0) {
    // The op is linear in x (RoIs fixed), so L = <y, r> has no kinks in x: central differences
    // are exact up to float32 rounding of L (~1e-6) / (2 eps); eps 0.25 keeps that under 1e-5.
    snprintf(what, sizeof what, "%s dx finite differences", g);
    check_grad_fd(what, s.x, nx, dx, single_loss, &s, 24, 0.25f, 1e-4, 1e-4, seed, NULL);

    // Bit-identical backward for 1 thread and several.
    float *d1 = malloc((size_t)nx * sizeof(float)), *dn = malloc((size_t)nx * sizeof(float));
    backward_threads(&s, 1, d1);
    backward_threads(&s, max_threads, dn);
    omp_set_num_threads(max_threads);
    snprintf(what, sizeof what, "%s dx bit-identical, 1 vs %d threads", g, max_threads);
    check_true(what, memcmp(d1, dn, (size_t)nx * sizeof(float)) == 0);
    free(d1);
    free(dn);
  }

  free(acc);
  free(acc_ref);
  free(dx);
  free(dxref);
  free(dx32);
  free(s.y);
  free(s.x);
  if (s.k > 0) {
    free(s.rois);
    free(s.r);
  }
}

typedef struct {
  roi_align_ml_desc d;
  float *feats[8];
  int64_t k;
  float *rois, *r, *y;
  int fd_level;  // level whose feature map the FD check perturbs
} ml_ctx;

static double ml_loss(void *p) {
  ml_ctx *m = p;
  roi_align_multilevel_forward_cpu(&m->d, (const float *const *)m->feats, m->k, m->rois, m->y,
                                   NULL);
  return dot_f64(m->y, m->r, m->k * m->d.c * m->d.out_h * m->d.out_w);
}

static void test_multilevel(const char *g, uint64_t seed, int max_threads) {
  int64_t np;
  float *pr = rd(g, "params", &np);
  ml_ctx m;
  memset(&m, 0, sizeof m);
  roi_align_ml_desc *d = &m.d;
  d->n = (int64_t)pr[0];
  d->c = (int64_t)pr[1];
  d->num_levels = (int)pr[2];
  d->out_h = (int64_t)pr[3];
  d->out_w = (int64_t)pr[4];
  d->sampling_ratio = (int)pr[5];
  d->aligned = (int)pr[6];
  d->finest_scale = pr[7];
  int L = d->num_levels;
  for (int l = 0; l < L; l++) {
    d->strides[l] = pr[8 + l];
    d->hs[l] = (int64_t)pr[8 + L + l];
    d->ws[l] = (int64_t)pr[8 + 2 * L + l];
  }
  free(pr);
  printf(" %s: n %lld c %lld, %d levels (finest %lldx%lld), sampling_ratio %d, aligned %d\n", g,
         (long long)d->n, (long long)d->c, L, (long long)d->hs[0], (long long)d->ws[0],
         d->sampling_ratio, d->aligned);
  char what[160], name[32];
  int64_t nf[8];
  for (int l = 0; l < L; l++) {
    snprintf(name, sizeof name, "feat%d", l);
    m.feats[l] = rd(g, name, &nf[l]);
  }
  int64_t nr;
  m.rois = rd(g, "rois", &nr);
  m.k = nr / 5;
  m.r = rd(g, "dy", NULL);
  int64_t ny = m.k * d->c * d->out_h * d->out_w;

  // Levels and forward.
  int *lv = malloc((size_t)m.k * sizeof(int));
  float *lvf = malloc((size_t)m.k * sizeof(float)), *lvref = rd(g, "levels", NULL);
  m.y = test_alloc_guarded(ny, GUARD);
  roi_align_multilevel_forward_cpu(d, (const float *const *)m.feats, m.k, m.rois, m.y, lv);
  int lv_ok = 1;
  for (int64_t r = 0; r < m.k; r++) {
    lvf[r] = (float)lv[r];
    if (roi_align_map_level(m.rois + r * 5, L, d->finest_scale) != lv[r]) lv_ok = 0;
  }
  snprintf(what, sizeof what, "%s levels (mmdet rule)", g);
  check_close(what, lvf, lvref, m.k, 0, 0, "levels are integers");
  snprintf(what, sizeof what, "%s levels == roi_align_map_level", g);
  check_true(what, lv_ok);
  float *yref = rd(g, "y", NULL);
  snprintf(what, sizeof what, "%s y", g);
  check_guard(what, m.y, ny, GUARD);
  snprintf(what, sizeof what, "%s y vs float64", g);
  check_close(what, m.y, yref, ny, ATOL64_ML, RTOL64, WHY64_ML);
  float *y32 = rd(g, "y32", NULL);
  snprintf(what, sizeof what, "%s y vs torchvision float32", g);
  check_close(what, m.y, y32, ny, ATOL32, RTOL32, WHY32);
  free(y32);

  // Backward into guarded zero buffers.
  float *df[8], *dfref[8];
  for (int l = 0; l < L; l++) {
    df[l] = test_alloc_guarded(nf[l], GUARD);
    snprintf(name, sizeof name, "dfeat%d", l);
    dfref[l] = rd(g, name, NULL);
  }
  roi_align_multilevel_backward_cpu(d, m.k, m.rois, m.r, df);
  for (int l = 0; l < L; l++) {
    snprintf(what, sizeof what, "%s dfeat%d", g, l);
    check_guard(what, df[l], nf[l], GUARD);
    snprintf(what, sizeof what, "%s dfeat%d vs float64", g, l);
    check_close(what, df[l], dfref[l], nf[l], ATOL64_ML, RTOL64, WHY64_ML);
    snprintf(name, sizeof name, "dfeat%d32", l);
    float *d32 = rd(g, name, NULL);
    snprintf(what, sizeof what, "%s dfeat%d vs torchvision float32", g, l);
    check_close(what, df[l], d32, nf[l], ATOL32, RTOL32, WHY32);
    free(d32);
  }

  // A NULL level gradient is skipped; the other levels are unchanged bit for bit.
  float *dpart[8];
  for (int l = 0; l < L; l++) dpart[l] = l == 1 ? NULL : calloc((size_t)nf[l], sizeof(float));
  roi_align_multilevel_backward_cpu(d, m.k, m.rois, m.r, dpart);
  int same = 1;
  for (int l = 0; l < L; l++)
    if (dpart[l] && memcmp(dpart[l], df[l], (size_t)nf[l] * sizeof(float)) != 0) same = 0;
  snprintf(what, sizeof what, "%s dfeats[1] NULL: other levels identical", g);
  check_true(what, same);

  // Bit-identical for 1 thread and several.
  for (int l = 0; l < L; l++)
    if (dpart[l]) memset(dpart[l], 0, (size_t)nf[l] * sizeof(float));
  dpart[1] = calloc((size_t)nf[1], sizeof(float));
  omp_set_num_threads(1);
  roi_align_multilevel_backward_cpu(d, m.k, m.rois, m.r, dpart);
  omp_set_num_threads(max_threads);
  same = 1;
  for (int l = 0; l < L; l++)
    if (memcmp(dpart[l], df[l], (size_t)nf[l] * sizeof(float)) != 0) same = 0;
  snprintf(what, sizeof what, "%s dfeats bit-identical, 1 vs %d threads", g, max_threads);
  check_true(what, same);

  // Finite differences on every level (linear in the features: see test_single).
  for (int l = 0; l < L; l++) {
    snprintf(what, sizeof what, "%s dfeat%d finite differences", g, l);
    check_grad_fd(what, m.feats[l], nf[l], df[l], ml_loss, &m, 16, 0.25f, 1e-4, 1e-4,
                  seed + (uint64_t)l, NULL);
  }

  for (int l = 0; l < L; l++) {
    free(df[l]);
    free(dfref[l]);
    free(dpart[l]);
    free(m.feats[l]);
  }
  free(lv);
  free(lvf);
  free(lvref);
  free(yref);
  free(m.y);
  free(m.rois);
  free(m.r);
}

// RoIs with NaN coordinates pool to 0 and send no gradient; zero RoIs write nothing.
static void test_nan_and_empty(uint64_t seed) {
  const int64_t n = 2, c = 3, h = 5, w = 6, oh = 2, ow = 3;
  float x[2 * 3 * 5 * 6];
  rng_fill_normal(x, n * c * h * w, 0.0f, 1.0f, seed, 7);
  float rois[3 * 5] = {0, NAN, 1, 3, 4, 1, 1, NAN, 3, 4, 1, 0.5f, 1, NAN, NAN};
  float *y = test_alloc_guarded(3 * c * oh * ow, GUARD);
  static float ones[3 * 3 * 2 * 3], zeros[2 * 3 * 5 * 6];
  for (int i = 0; i < 3 * 3 * 2 * 3; i++) ones[i] = 1.0f;
  for (int sr = 0; sr <= 2; sr += 2) {
    for (int al = 0; al <= 1; al++) {
      for (int64_t i = 0; i < 3 * c * oh * ow; i++) y[i] = 42.0f;
      roi_align_forward_cpu(n, c, h, w, x, 3, rois, 1.0f, oh, ow, sr, al, y);
      char what[96];
      snprintf(what, sizeof what, "NaN RoIs pool to 0 (sr %d, aligned %d)", sr, al);
      check_close(what, y, zeros, 3 * c * oh * ow, 0, 0, "NaN coordinates give 0");
      float *dx = test_alloc_guarded(n * c * h * w, GUARD);
      roi_align_backward_cpu(n, c, h, w, 3, rois, 1.0f, oh, ow, sr, al, ones, dx);
      snprintf(what, sizeof what, "NaN RoIs send no gradient (sr %d, aligned %d)", sr, al);
      check_close(what, dx, zeros, n * c * h * w, 0, 0, "NaN coordinates give 0");
      check_guard(what, dx, n * c * h * w, GUARD);
      free(dx);
    }
  }
  check_guard("NaN RoIs y", y, 3 * c * oh * ow, GUARD);
  check_true("map_level(NaN area) == 0", roi_align_map_level(rois + 10, 4, 56.0f) == 0);
  float neg[5] = {0, 10, 10, 0, 20};  // negative width: sqrt of a negative area
  check_true("map_level(negative area) == 0", roi_align_map_level(neg, 4, 56.0f) == 0);
  float big[5] = {0, 0, 0, 5000, 5000};
  check_true("map_level(huge) == last level", roi_align_map_level(big, 4, 56.0f) == 3);

  // Multi-level with k = 0: outputs and gradients untouched.
  roi_align_ml_desc d = {.num_levels = 2, .n = n, .c = c, .hs = {h, 3}, .ws = {w, 3},
                         .strides = {4, 8}, .finest_scale = 56, .out_h = oh, .out_w = ow,
                         .sampling_ratio = 0, .aligned = 1};
  float *f0 = test_alloc_guarded(n * c * h * w, GUARD), *f1 = test_alloc_guarded(n * c * 9, GUARD);
  float *dfs[2] = {f0, f1};
  const float *fs[2] = {x, x};
  float *ye = test_alloc_guarded(0, GUARD);
  roi_align_multilevel_forward_cpu(&d, fs, 0, rois, ye, NULL);
  roi_align_multilevel_backward_cpu(&d, 0, rois, ones, dfs);
  check_guard("ml k=0 y", ye, 0, GUARD);
  check_close("ml k=0 dfeat0 untouched", f0, zeros, n * c * h * w, 0, 0, "no RoIs");
  check_guard("ml k=0 dfeat0", f0, n * c * h * w, GUARD);
  check_guard("ml k=0 dfeat1", f1, n * c * 9, GUARD);
  free(f0);
  free(f1);
  free(ye);
  free(y);
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("roi_align", 20240611);
  g_f = oracle_open(argc > 1 ? argv[1] : NULL);
  int max_threads = omp_get_max_threads();
  if (max_threads < 3) max_threads = 3;  // oversubscribe on small machines: still a real split
  omp_set_num_threads(max_threads);
  for (int i = 0;; i++) {
    char g[32];
    snprintf(g, sizeof g, "case%d", i);
    if (!has(g, "params")) break;
    test_single(g, seed + (uint64_t)i, max_threads);
  }
  for (int i = 0;; i++) {
    char g[32];
    snprintf(g, sizeof g, "ml%d", i);
    if (!has(g, "params")) break;
    test_multilevel(g, seed + 100 + (uint64_t)i, max_threads);
  }
  test_nan_and_empty(seed);
  h5_close(g_f);
  return test_end();
}
