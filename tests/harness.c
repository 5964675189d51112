#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/error.h"

static int g_checks, g_failures;
static const char *g_name = "";

uint64_t test_begin(const char *name, uint64_t default_seed) {
  g_name = name;
  uint64_t seed = rng_test_seed(default_seed);
  printf("== %s  (seed %llu; set MASA_SEED to override)\n", name, (unsigned long long)seed);
  return seed;
}

int test_end(void) {
  printf("== %s: %d checks, %d failed: %s\n", g_name, g_checks, g_failures,
         g_failures ? "FAIL" : "PASS");
  fflush(stdout);
  return g_failures ? 1 : 0;
}

int check_true(const char *what, int cond) {
  g_checks++;
  if (!cond) g_failures++;
  printf("  %-48s %s\n", what, cond ? "PASS" : "FAIL");
  return cond;
}

int check_close(const char *what, const float *got, const float *ref, int64_t n, double atol,
                double rtol, const char *why) {
  double max_abs = 0, max_rel = 0, worst = 0;
  int64_t worst_i = -1, bad = 0;
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], r = ref[i];
    // Non-finite references are compared exactly below; their threshold is just atol.
    double thr = isfinite(r) ? atol + rtol * fabs(r) : atol;
    double err;
    if (!isfinite(g) || !isfinite(r)) {
      // Non-finite values must match exactly (same class and sign).
      int same = (isnan(g) && isnan(r)) || (g == r);
      err = same ? 0 : INFINITY;
    } else {
      err = fabs(g - r);
    }
    if (err > max_abs) max_abs = err;
    if (isfinite(err) && fabs(r) > 0 && err / fabs(r) > max_rel) max_rel = err / fabs(r);
    double frac = thr > 0 ? err / thr : (err > 0 ? INFINITY : 0);
    if (frac > worst || worst_i < 0) {
      worst = frac;
      worst_i = i;
    }
    if (!(err <= thr)) bad++;
  }
  g_checks++;
  int ok = bad == 0;
  if (!ok) g_failures++;
  printf("  %-48s n=%-9lld maxabs=%.3g maxrel=%.3g worst=%5.1f%% of tol  %s\n", what,
         (long long)n, max_abs, max_rel, 100.0 * worst, ok ? "PASS" : "FAIL");
  if (!ok) {
    printf("    %lld elements out of tolerance (atol %.3g, rtol %.3g: %s); worst at %lld: got %.9g "
           "ref %.9g\n",
           (long long)bad, atol, rtol, why ? why : "", (long long)worst_i,
           worst_i >= 0 ? (double)got[worst_i] : 0.0, worst_i >= 0 ? (double)ref[worst_i] : 0.0);
  }
  return ok;
}

float *test_alloc_guarded(int64_t n, int64_t guard) {
  float *p = mallocCheck((size_t)(n + guard) * sizeof(float));
  for (int64_t i = 0; i < n; i++) p[i] = 0.0f;
  for (int64_t i = n; i < n + guard; i++) p[i] = TEST_SENTINEL;
  return p;
}

int check_guard(const char *what, const float *buf, int64_t n, int64_t guard) {
  int ok = 1;
  for (int64_t i = n; i < n + guard; i++)
    if (buf[i] != TEST_SENTINEL) ok = 0;
  char label[160];
  snprintf(label, sizeof label, "%s: guard region intact", what);
  return check_true(label, ok);
}

h5file *oracle_open(const char *path) {
  if (!path) {
    fprintf(stderr, "%s: missing oracle file argument (run through ctest)\n", g_name);
    exit(1);
  }
  h5file *f = h5_open_read(path);
  if (!f) {
    fprintf(stderr, "%s: %s\n", g_name, masa_errmsg());
    exit(1);
  }
  return f;
}

float *oracle_read(h5file *f, const char *name, int ndim, const int64_t *shape) {
  float *p = mallocCheck((size_t)shape_numel(ndim, shape) * sizeof(float));
  if (h5_read(f, name, p, ndim, shape) != MASA_OK) {
    fprintf(stderr, "%s: %s\n", g_name, masa_errmsg());
    exit(1);
  }
  return p;
}

float *oracle_read_any(h5file *f, const char *name, int64_t *numel, int *ndim, int64_t *shape) {
  tensor t;
  if (h5_read_tensor(f, name, &t) != MASA_OK) {
    fprintf(stderr, "%s: %s\n", g_name, masa_errmsg());
    exit(1);
  }
  if (numel) *numel = tensor_numel(&t);
  if (ndim) *ndim = t.ndim;
  if (shape)
    for (int i = 0; i < t.ndim; i++) shape[i] = t.shape[i];
  return t.data;  // owned by the caller now
}

double dot_f64(const float *y, const float *r, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)y[i] * (double)r[i];
  return s;
}

int check_grad_fd(const char *what, float *x, int64_t n, const float *grad, fd_loss_fn f,
                  void *ctx, int samples, float eps, double atol, double rtol, uint64_t seed,
                  fd_skip_fn skip) {
  int bad = 0, tried = 0;
  double worst = 0;
  for (int s = 0; s < samples && n > 0; s++) {
    int64_t i = -1;
    for (int attempt = 0; attempt < 64; attempt++) {
      int64_t cand = (int64_t)(rng_u32(seed, 0xFD, (uint64_t)(s * 64 + attempt)) % (uint64_t)n);
      if (!skip || !skip(ctx, cand)) {
        i = cand;
        break;
      }
    }
    if (i < 0) continue;
    float x0 = x[i];
    x[i] = x0 + eps;
    double lp = f(ctx);
    x[i] = x0 - eps;
    double lm = f(ctx);
    x[i] = x0;
    // The step actually taken in float may differ from eps.
    double h = (double)(x0 + eps) - (double)(x0 - eps);
    double fd = (lp - lm) / h;
    double thr = atol + rtol * fabs(fd);
    double err = fabs(fd - (double)grad[i]);
    if (thr > 0 && err / thr > worst) worst = err / thr;
    tried++;
    if (!(err <= thr)) {
      if (bad < 5)
        printf("    %s: coordinate %lld: finite difference %.7g, analytic %.7g\n", what,
               (long long)i, fd, (double)grad[i]);
      bad++;
    }
  }
  // One random direction v in {-1, 1}^n: d/dt L(x + t v) versus <grad, v>.
  if (n > 0) {
    float *x0 = mallocCheck((size_t)n * sizeof(float));
    memcpy(x0, x, (size_t)n * sizeof(float));
    double gv = 0;
    int64_t used = 0;
    for (int64_t i = 0; i < n; i++) {
      int sgn = (rng_u32(seed, 0xFE, (uint64_t)i) & 1) ? 1 : -1;
      if (skip && skip(ctx, i)) continue;
      x[i] = x0[i] + (float)sgn * eps;
      gv += sgn * (double)grad[i];
      used++;
    }
    double lp = f(ctx);
    for (int64_t i = 0; i < n; i++) {
      if (x[i] == x0[i]) continue;
      x[i] = x0[i] - (x[i] - x0[i]);
    }
    double lm = f(ctx);
    memcpy(x, x0, (size_t)n * sizeof(float));
    free(x0);
    double fd = (lp - lm) / (2.0 * eps);
    double thr = atol * sqrt((double)(used > 0 ? used : 1)) + rtol * fabs(fd);
    double err = fabs(fd - gv);
    if (thr > 0 && err / thr > worst) worst = err / thr;
    tried++;
    if (!(err <= thr)) {
      printf("    %s: random direction: finite difference %.7g, analytic %.7g\n", what, fd, gv);
      bad++;
    }
  }
  g_checks++;
  int ok = bad == 0 && tried > 0;
  if (!ok) g_failures++;
  printf("  %-48s fd samples=%-4d worst=%5.1f%% of tol  %s\n", what, tried, 100.0 * worst,
         ok ? "PASS" : "FAIL");
  return ok;
}
