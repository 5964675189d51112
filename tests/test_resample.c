// Max-pool, nearest upsample and align-corners bilinear resize against PyTorch
// (tests/oracle_resample.py): forward, argmax, input gradient, finite differences, guard regions,
// accumulation into a non-zero gradient, NULL gradients and bit-identical backward for 1 and
// several threads.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/resample.h"

#define GUARD 61

static h5file *g_f;
static int g_threads;

static float *rd(const char *group, const char *name, int64_t *numel) {
  char key[128];
  snprintf(key, sizeof key, "%s/%s", group, name);
  return oracle_read_any(g_f, key, numel, NULL, NULL);
}

static int has(const char *group) {
  char key[128];
  snprintf(key, sizeof key, "%s/params", group);
  return h5_has(g_f, key);
}

enum { OP_POOL, OP_NEAREST, OP_BILINEAR };

typedef struct {
  int op;
  int64_t n, c, h, w, ho, wo, k, s;
  float *x, *r, *y;  // r: upstream gradient; y: forward scratch
} rs_ctx;

static void forward(rs_ctx *t, float *y, int64_t *argmax) {
  switch (t->op) {
    case OP_POOL: max_pool2d_forward_cpu(t->n, t->c, t->h, t->w, t->k, t->s, t->x, y, argmax); break;
    case OP_NEAREST: upsample_nearest_forward_cpu(t->n, t->c, t->h, t->w, t->ho, t->wo, t->x, y); break;
    default: resize_bilinear_ac_forward_cpu(t->n, t->c, t->h, t->w, t->ho, t->wo, t->x, y); break;
  }
}

static void backward(rs_ctx *t, const int64_t *argmax, float *dx) {
  switch (t->op) {
    case OP_POOL: max_pool2d_backward_cpu(t->n, t->c, t->h, t->w, t->k, t->s, argmax, t->r, dx); break;
    case OP_NEAREST: upsample_nearest_backward_cpu(t->n, t->c, t->h, t->w, t->ho, t->wo, t->r, dx); break;
    default: resize_bilinear_ac_backward_cpu(t->n, t->c, t->h, t->w, t->ho, t->wo, t->r, dx); break;
  }
}

static double loss(void *p) {
  rs_ctx *t = p;
  forward(t, t->y, NULL);
  return dot_f64(t->y, t->r, t->n * t->c * t->ho * t->wo);
}

#define FD_EPS_POOL 1e-3f
// Max-pool has kinks where two values of a window tie: skip coordinates within 4 eps of another
// value in any window that contains them (the oracle's values are >= 0.01 apart anyway).
static int near_tie(void *p, int64_t i) {
  rs_ctx *t = p;
  if (t->op != OP_POOL) return 0;
  int64_t hw = t->h * t->w, pl = i / hw, iy = (i % hw) / t->w, ix = i % t->w;
  const float *xp = t->x + pl * hw;
  for (int64_t oy = 0; oy < t->ho; oy++) {
    if (iy < oy * t->s || iy >= oy * t->s + t->k) continue;
    for (int64_t ox = 0; ox < t->wo; ox++) {
      if (ix < ox * t->s || ix >= ox * t->s + t->k) continue;
      for (int64_t a = oy * t->s; a < oy * t->s + t->k; a++)
        for (int64_t b = ox * t->s; b < ox * t->s + t->k; b++)
          if ((a != iy || b != ix) && fabsf(xp[a * t->w + b] - xp[iy * t->w + ix]) < 4 * FD_EPS_POOL)
            return 1;
    }
  }
  return 0;
}

// Exact equality with NaN == NaN and infinities compared by value (values are copied).
static int check_exact(const char *what, const float *got, const float *ref, int64_t n) {
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n; i++) {
    if (got[i] == ref[i] || (isnan(got[i]) && isnan(ref[i]))) continue;
    if (first < 0) first = i;
    bad++;
  }
  char label[200];
  snprintf(label, sizeof label, "%s (exact, n=%lld)", what, (long long)n);
  int ok = check_true(label, bad == 0);
  if (!ok)
    printf("    %lld mismatches; first at %lld: got %.9g ref %.9g\n", (long long)bad,
           (long long)first, (double)got[first], (double)ref[first]);
  return ok;
}

static void run_group(const char *g, int op, uint64_t seed) {
  static const char *names[] = {"max_pool2d", "upsample_nearest", "resize_bilinear_ac"};
  int64_t np;
  float *pr = rd(g, "params", &np);
  rs_ctx t = {.op = op, .n = (int64_t)pr[0], .c = (int64_t)pr[1], .h = (int64_t)pr[2],
              .w = (int64_t)pr[3]};
  if (op == OP_POOL) {
    t.k = (int64_t)pr[4];
    t.s = (int64_t)pr[5];
    t.ho = max_pool2d_out_size(t.h, t.k, t.s);
    t.wo = max_pool2d_out_size(t.w, t.k, t.s);
  } else {
    t.ho = (int64_t)pr[4];
    t.wo = (int64_t)pr[5];
  }
  free(pr);
  printf(" %s %s: n %lld c %lld %lldx%lld -> %lldx%lld", g, names[op], (long long)t.n,
         (long long)t.c, (long long)t.h, (long long)t.w, (long long)t.ho, (long long)t.wo);
  if (op == OP_POOL) printf(" (kernel %lld stride %lld)", (long long)t.k, (long long)t.s);
  printf("\n");
  int64_t nx = t.n * t.c * t.h * t.w, ny0, ny = t.n * t.c * t.ho * t.wo;
  t.x = rd(g, "x", NULL);
  t.r = rd(g, "dy", NULL);
  float *yref = rd(g, "y", &ny0), *dxref = rd(g, "dx", NULL);
  char what[160];
  snprintf(what, sizeof what, "%s output size matches PyTorch", g);
  check_true(what, ny0 == ny);
  if (ny0 != ny) exit(test_end());

  // Forward into guarded buffers (argmax guarded by hand: it is int64).
  t.y = test_alloc_guarded(ny, GUARD);
  int64_t *am = NULL;
  if (op == OP_POOL) {
    am = malloc((size_t)(ny + GUARD) * sizeof(int64_t));
    for (int64_t i = 0; i < ny + GUARD; i++) am[i] = -777;
  }
  forward(&t, t.y, am);
  snprintf(what, sizeof what, "%s y", g);
  check_guard(what, t.y, ny, GUARD);
  // Max-pool and nearest copy input values (inf and NaN included): exact. Bilinear: float32
  // weights and 3 products per tap vs float64, values ~N(0,1): a few ulp, 1e-6 is ~10x that.
  snprintf(what, sizeof what, "%s y vs PyTorch", g);
  if (op == OP_BILINEAR)
    check_close(what, t.y, yref, ny, 1e-6, 1e-6, "float32 weights and products vs float64");
  else
    check_exact(what, t.y, yref, ny);
  if (op == OP_POOL) {
    float *idxref = rd(g, "idx", NULL), *amf = malloc((size_t)ny * sizeof(float));
    int guard_ok = 1;
    for (int64_t i = 0; i < ny; i++) amf[i] = (float)am[i];
    for (int64_t i = ny; i < ny + GUARD; i++) guard_ok &= am[i] == -777;
    snprintf(what, sizeof what, "%s argmax vs PyTorch indices (ties: first max)", g);
    check_exact(what, amf, idxref, ny);
    snprintf(what, sizeof what, "%s argmax: guard region intact", g);
    check_true(what, guard_ok);
    free(idxref);
    free(amf);
  }

  // Backward into a guarded zero buffer, then onto ones, then NULL.
  float *dx = test_alloc_guarded(nx, GUARD);
  backward(&t, am, dx);
  snprintf(what, sizeof what, "%s dx", g);
  check_guard(what, dx, nx, GUARD);
  // Gradients sum at most ceil(out/in)^2 (nearest, bilinear: ~4x that many) float32 terms.
  snprintf(what, sizeof what, "%s dx vs PyTorch", g);
  check_close(what, dx, dxref, nx, 2e-6, 2e-6, "float32 sums of a few upstream terms vs float64");
  float *acc = malloc((size_t)nx * sizeof(float)), *acc_ref = malloc((size_t)nx * sizeof(float));
  for (int64_t i = 0; i < nx; i++) {
    acc[i] = 1.0f;
    acc_ref[i] = 1.0f + dxref[i];
  }
  backward(&t, am, acc);
  snprintf(what, sizeof what, "%s dx accumulates onto 1", g);
  check_close(what, acc, acc_ref, nx, 2e-6, 2e-6, "float32 sums on top of 1 vs float64");
  backward(&t, am, NULL);

  // Finite differences, skipped when NaN/inf make L undefined. Nearest and bilinear are linear
  // in x: exact up to float32 rounding of L, so a large step; max-pool is piecewise linear with
  // kinks at ties only, which the data and near_tie keep out of reach of the step.
  int finite = 1;
  for (int64_t i = 0; i < nx; i++) finite &= isfinite(t.x[i]) != 0;
  if (finite) {
    float eps = op == OP_POOL ? FD_EPS_POOL : 0.25f;
    snprintf(what, sizeof what, "%s dx finite differences", g);
    check_grad_fd(what, t.x, nx, dx, loss, &t, 24, eps, 1e-4, 1e-3, seed, near_tie);
  }

  // Bit-identical backward for 1 thread and several.
  float *d1 = calloc((size_t)nx, sizeof(float)), *dn = calloc((size_t)nx, sizeof(float));
  omp_set_num_threads(1);
  backward(&t, am, d1);
  omp_set_num_threads(g_threads);
  backward(&t, am, dn);
  snprintf(what, sizeof what, "%s dx bit-identical, 1 vs %d threads", g, g_threads);
  check_true(what, memcmp(d1, dn, (size_t)nx * sizeof(float)) == 0);

  free(d1);
  free(dn);
  free(acc);
  free(acc_ref);
  free(dx);
  free(am);
  free(t.y);
  free(t.x);
  free(t.r);
  free(yref);
  free(dxref);
}

int main(int argc, char **argv) {
  uint64_t seed = test_begin("resample", 20240612);
  g_f = oracle_open(argc > 1 ? argv[1] : NULL);
  g_threads = omp_get_max_threads();
  if (g_threads < 3) g_threads = 3;  // oversubscribe on small machines: still a real split
  omp_set_num_threads(g_threads);
  static const char *groups[] = {"pool", "nearest", "bilinear"};
  for (int op = 0; op < 3; op++) {
    for (int i = 0;; i++) {
      char g[32];
      snprintf(g, sizeof g, "%s%d", groups[op], i);
      if (!has(g)) break;
      run_group(g, op, seed + (uint64_t)(op * 100 + i));
    }
  }
  check_true("max_pool2d_out_size(7, 2, 2) == 3", max_pool2d_out_size(7, 2, 2) == 3);
  check_true("max_pool2d_out_size(7, 1, 2) == 4", max_pool2d_out_size(7, 1, 2) == 4);
  check_true("max_pool2d_out_size(1, 2, 2) == 0", max_pool2d_out_size(1, 2, 2) == 0);
  h5_close(g_f);
  return test_end();
}
