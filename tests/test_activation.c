// ReLU, GELU, sigmoid, hard sigmoid, row softmax / log-softmax, global average pool and DyReLU
// against PyTorch (tests/oracle_activation.py), with finite differences of every backward (away
// from kinks), guard regions, accumulation into pre-filled gradient buffers and NULL gradients.
//
// Tolerances:
// - ReLU, hard sigmoid forward and backward: exact up to one float32 rounding (atol 1e-7,
//   rtol 1e-7); the C code performs the same single operations as torch's float64 then rounding.
// - GELU, sigmoid: erfcf / expf are within ~2 ulp: atol 2e-7, rtol 1e-6 (sigmoid's backward
//   forms 1 - y from a float32 y, which keeps y's absolute rounding ~6e-8).
// - Accumulated gradients are compared as ref + 0.5 (the pre-fill), one more float32 rounding
//   (<= 3e-8 below 1) on each side.
// - softmax: expf per entry and a double row sum: atol 1e-7, rtol 1e-5 (tiny probabilities
//   inherit expf's relative error). log-softmax: entries reach -160, where one float32 ulp is
//   1.5e-5: atol 2e-5, rtol 1e-6.
// - average pool: double sums: atol 1e-7, rtol 1e-6.
// - DyReLU: the 1x1 convs run in double, coefficients are rounded to float32 once, then
//   y = x * a + b in float32 (values up to ~8): atol 2e-6, rtol 1e-5; parameter gradients are
//   double sums over <= 1000 elements: atol 1e-5, rtol 1e-5.
// - finite differences: float32 forward, double loss sum(y * dy), step 1e-3 for elementwise ops
//   (inputs >= 0.01 from kinks), 1e-2 for softmax rows / DyReLU; roundoff ~6e-8 * |y| * sqrt(n) /
//   (2 step) and cubic truncation well below atol 2e-3, rtol 2e-3. Log-softmax: step 0.05, since
//   each perturbation re-rounds a whole row of values up to 160 in magnitude (atol 5e-3 for the
//   +-80 rows).
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "harness.h"
#include "ops/activation.h"

#define GUARD 64
#define PREFILL 0.5f

static uint64_t g_seed;

static float *ds(h5file *f, const char *grp, const char *name, int64_t *n) {
  char full[64];
  snprintf(full, sizeof full, "%s/%s", grp, name);
  return oracle_read_any(f, full, n, NULL, NULL);
}

static float *grad_buf(int64_t n) {
  float *p = test_alloc_guarded(n, GUARD);
  for (int64_t i = 0; i < n; i++) p[i] = PREFILL;
  return p;
}

static void check_acc(const char *what, const float *got, const float *ref, int64_t n,
                      double atol, double rtol, const char *why) {
  float *want = mallocCheck((size_t)n * sizeof(float));
  for (int64_t i = 0; i < n; i++) want[i] = ref[i] + PREFILL;
  check_close(what, got, want, n, atol, rtol, why);
  check_guard(what, got, n, GUARD);
  free(want);
}

static char *label(char *buf, size_t n, const char *grp, const char *what) {
  snprintf(buf, n, "%s %s", grp, what);
  return buf;
}

// ---- elementwise ----

typedef enum { OP_RELU, OP_GELU, OP_SIGMOID, OP_HSIG } ew_op;

typedef struct {
  ew_op op;
  int64_t n;
  float *x, *y, *r, eps;
} ew_ctx;

static void ew_forward(ew_op op, int64_t n, const float *x, float *y) {
  switch (op) {
    case OP_RELU: relu_forward_cpu(n, x, y); break;
    case OP_GELU: gelu_forward_cpu(n, x, y); break;
    case OP_SIGMOID: sigmoid_forward_cpu(n, x, y); break;
    case OP_HSIG: hard_sigmoid_forward_cpu(n, x, y); break;
  }
}

// relu and sigmoid take the forward output, gelu and hard sigmoid the input.
static void ew_backward(ew_op op, int64_t n, const float *x, const float *y, const float *dy,
                        float *dx) {
  switch (op) {
    case OP_RELU: relu_backward_cpu(n, y, dy, dx); break;
    case OP_GELU: gelu_backward_cpu(n, x, dy, dx); break;
    case OP_SIGMOID: sigmoid_backward_cpu(n, y, dy, dx); break;
    case OP_HSIG: hard_sigmoid_backward_cpu(n, x, dy, dx); break;
  }
}

static double ew_loss(void *p) {
  ew_ctx *c = p;
  ew_forward(c->op, c->n, c->x, c->y);
  return dot_f64(c->y, c->r, c->n);
}

static int ew_skip(void *p, int64_t i) {
  ew_ctx *c = p;
  float v = c->x[i], m = 2.0f * c->eps;
  if (c->op == OP_RELU) return fabsf(v) < m;
  if (c->op == OP_HSIG) return fabsf(fabsf(v) - 3.0f) < m;
  return 0;
}

static void run_elementwise(h5file *f, const char *grp, ew_op op, double atol, double rtol,
                            const char *why) {
  char what[96];
  int64_t n, t;
  float *x = ds(f, grp, "x", &n), *dy = ds(f, grp, "dy", &t), *y_ref = ds(f, grp, "y", &t);
  float *dx_ref = ds(f, grp, "dx", &t);
  printf(" %s: n=%lld\n", grp, (long long)n);
  float *y = test_alloc_guarded(n, GUARD);
  ew_forward(op, n, x, y);
  check_close(label(what, sizeof what, grp, "forward"), y, y_ref, n, atol, rtol, why);
  check_guard(label(what, sizeof what, grp, "forward"), y, n, GUARD);
  float *dx = grad_buf(n);
  ew_backward(op, n, x, y, dy, dx);
  check_acc(label(what, sizeof what, grp, "dx (accumulated)"), dx, dx_ref, n, atol, rtol, why);
  ew_backward(op, n, x, y, dy, NULL);  // NULL gradient: nothing to do, must not crash
  // In place (y == x buffer) for the ops whose backward reads y: forward into x's own storage.
  if (op == OP_RELU || op == OP_SIGMOID) {
    float *xy = mallocCheck((size_t)n * sizeof(float));
    memcpy(xy, x, (size_t)n * sizeof(float));
    ew_forward(op, n, xy, xy);
    check_true(label(what, sizeof what, grp, "in-place forward == out of place"),
               memcmp(xy, y, (size_t)n * sizeof(float)) == 0);
    free(xy);
  }
  float *g = callocCheck((size_t)n, sizeof(float));
  ew_backward(op, n, x, y, dy, g);
  ew_ctx c = {.op = op, .n = n, .x = x, .y = y, .r = dy, .eps = 1e-3f};
  check_grad_fd(label(what, sizeof what, grp, "fd dx"), x, n, g, ew_loss, &c, 24, c.eps, 2e-3,
                2e-3, g_seed + 1, ew_skip);
  free(x); free(dy); free(y_ref); free(dx_ref); free(y); free(dx); free(g);
}

// Kinks exactly: ReLU passes nothing at 0; hard sigmoid passes 1/6 strictly inside (-3, 3).
static void run_kinks(void) {
  float x[6] = {-3.0f, 3.0f, -2.999f, 2.999f, 0.0f, -0.0f}, y[6], dx[6] = {0}, one[6];
  for (int i = 0; i < 6; i++) one[i] = 1.0f;
  hard_sigmoid_forward_cpu(6, x, y);
  check_true("hard sigmoid at -3, 3 is 0, 1", y[0] == 0.0f && y[1] == 1.0f);
  hard_sigmoid_backward_cpu(6, x, one, dx);
  check_true("hard sigmoid gradient 0 at +-3, 1/6 inside",
             dx[0] == 0.0f && dx[1] == 0.0f && dx[2] == 1.0f / 6.0f && dx[3] == 1.0f / 6.0f &&
                 dx[4] == 1.0f / 6.0f);
  float r[6];
  relu_forward_cpu(6, x, r);
  memset(dx, 0, sizeof dx);
  relu_backward_cpu(6, r, one, dx);
  check_true("relu gradient 0 at 0 and below", dx[0] == 0.0f && dx[4] == 0.0f && dx[5] == 0.0f &&
                                                   dx[1] == 1.0f);
  float big[4] = {-200.0f, 200.0f, -1e30f, 1e30f}, s[4];
  sigmoid_forward_cpu(4, big, s);
  check_true("sigmoid saturates without NaN", s[0] == 0.0f && s[1] == 1.0f && s[2] == 0.0f &&
                                                  s[3] == 1.0f);
}

// ---- softmax ----

typedef struct {
  int log;
  int64_t rows, cols;
  float *x, *y, *r;
} sm_ctx;

static double sm_loss(void *p) {
  sm_ctx *c = p;
  if (c->log)
    log_softmax_forward_cpu(c->rows, c->cols, c->x, c->y);
  else
    softmax_forward_cpu(c->rows, c->cols, c->x, c->y);
  return dot_f64(c->y, c->r, c->rows * c->cols);
}

static void run_softmax(h5file *f, int idx, int log) {
  char grp[32], what[96];
  snprintf(grp, sizeof grp, "%s%d", log ? "logsoftmax" : "softmax", idx);
  int64_t t, n;
  float *m = ds(f, grp, "meta", &t);
  int64_t rows = (int64_t)m[0], cols = (int64_t)m[1];
  float *x = ds(f, grp, "x", &n), *dy = ds(f, grp, "dy", &t), *y_ref = ds(f, grp, "y", &t);
  float *dx_ref = ds(f, grp, "dx", &t);
  float amax = 0.0f;
  for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
  printf(" %s: rows=%lld cols=%lld max|x|=%g\n", grp, (long long)rows, (long long)cols,
         (double)amax);
  double atol = log ? 2e-5 : 1e-7, rtol = log ? 1e-6 : 1e-5;
  const char *why = log ? "float32 ulp of values near 160" : "expf per entry, double row sum";
  float *y = test_alloc_guarded(n, GUARD);
  if (log)
    log_softmax_forward_cpu(rows, cols, x, y);
  else
    softmax_forward_cpu(rows, cols, x, y);
  check_close(label(what, sizeof what, grp, "forward"), y, y_ref, n, atol, rtol, why);
  check_guard(label(what, sizeof what, grp, "forward"), y, n, GUARD);
  float *dx = grad_buf(n);
  if (log)
    log_softmax_backward_cpu(rows, cols, y, dy, dx);
  else
    softmax_backward_cpu(rows, cols, y, dy, dx);
  check_acc(label(what, sizeof what, grp, "dx (accumulated)"), dx, dx_ref, n, 1e-6, 1e-5,
            "products of float32 probabilities with a double row sum");
  float *g = callocCheck((size_t)n, sizeof(float));
  if (log)
    log_softmax_backward_cpu(rows, cols, y, dy, g);
  else
    softmax_backward_cpu(rows, cols, y, dy, g);
  sm_ctx c = {.log = log, .rows = rows, .cols = cols, .x = x, .y = y, .r = dy};
  float eps = log ? 0.05f : 1e-2f;
  double fd_atol = log && amax > 20.0f ? 5e-3 : 2e-3;
  check_grad_fd(label(what, sizeof what, grp, "fd dx"), x, n, g, sm_loss, &c, 16, eps, fd_atol,
                2e-3, g_seed + 2, NULL);
  // Rows sum to one / log-sum-exp to zero.
  double worst = 0.0;
  for (int64_t r = 0; r < rows; r++) {
    double s = 0.0;
    for (int64_t j = 0; j < cols; j++) s += log ? exp((double)y[r * cols + j]) : y[r * cols + j];
    worst = fmax(worst, fabs(s - 1.0));
  }
  check_true(label(what, sizeof what, grp, "rows normalised (|sum - 1| < 1e-5)"), worst < 1e-5);
  free(m); free(x); free(dy); free(y_ref); free(dx_ref); free(y); free(dx); free(g);
}

// ---- global average pool ----

typedef struct {
  int64_t n, c, hw;
  float *x, *y, *r;
} gap_ctx;

static double gap_loss(void *p) {
  gap_ctx *c = p;
  global_avg_pool_forward_cpu(c->n, c->c, c->hw, c->x, c->y);
  return dot_f64(c->y, c->r, c->n * c->c);
}

static void run_gap(h5file *f) {
  int64_t t, nx, ny;
  float *m = ds(f, "gap", "meta", &t);
  int64_t n = (int64_t)m[0], c = (int64_t)m[1], hw = (int64_t)m[2] * (int64_t)m[3];
  printf(" gap: n=%lld c=%lld hw=%lld\n", (long long)n, (long long)c, (long long)hw);
  float *x = ds(f, "gap", "x", &nx), *dy = ds(f, "gap", "dy", &ny), *y_ref = ds(f, "gap", "y", &t);
  float *dx_ref = ds(f, "gap", "dx", &t);
  float *y = test_alloc_guarded(ny, GUARD);
  global_avg_pool_forward_cpu(n, c, hw, x, y);
  check_close("gap forward", y, y_ref, ny, 1e-7, 1e-6, "double sums");
  check_guard("gap forward", y, ny, GUARD);
  float *dx = grad_buf(nx);
  global_avg_pool_backward_cpu(n, c, hw, dy, dx);
  check_acc("gap dx (accumulated)", dx, dx_ref, nx, 1e-7, 1e-6, "one division");
  float *g = callocCheck((size_t)nx, sizeof(float));
  global_avg_pool_backward_cpu(n, c, hw, dy, g);
  gap_ctx ctx = {.n = n, .c = c, .hw = hw, .x = x, .y = y, .r = dy};
  check_grad_fd("gap fd dx", x, nx, g, gap_loss, &ctx, 16, 1e-2f, 2e-3, 2e-3, g_seed + 3, NULL);
  free(m); free(x); free(dy); free(y_ref); free(dx_ref); free(y); free(dx); free(g);
}

// ---- DyReLU ----

typedef struct {
  int64_t n, c, hw, cm;
  float *x, *w1, *b1, *w2, *b2, *y, *cache, *r;
} dy_ctx;

static double dy_loss(void *p) {
  dy_ctx *c = p;
  dyrelu_forward_cpu(c->n, c->c, c->hw, c->cm, c->x, c->w1, c->b1, c->w2, c->b2, c->y, c->cache);
  return dot_f64(c->y, c->r, c->n * c->c * c->hw);
}

static void run_dyrelu(h5file *f, int idx) {
  char grp[32], what[96];
  snprintf(grp, sizeof grp, "dyrelu%d", idx);
  int64_t t, nx, nw1, nw2;
  float *m = ds(f, grp, "meta", &t);
  int64_t n = (int64_t)m[0], c = (int64_t)m[1], hw = (int64_t)m[2] * (int64_t)m[3],
          cm = (int64_t)m[4];
  printf(" %s: n=%lld c=%lld hw=%lld c_mid=%lld\n", grp, (long long)n, (long long)c,
         (long long)hw, (long long)cm);
  float *x = ds(f, grp, "x", &nx), *w1 = ds(f, grp, "w1", &nw1), *b1 = ds(f, grp, "b1", &t);
  float *w2 = ds(f, grp, "w2", &nw2), *b2 = ds(f, grp, "b2", &t), *dy = ds(f, grp, "dy", &t);
  float *y_ref = ds(f, grp, "y", &t), *dx_ref = ds(f, grp, "dx", &t);
  float *dw1_ref = ds(f, grp, "dw1", &t), *db1_ref = ds(f, grp, "db1", &t);
  float *dw2_ref = ds(f, grp, "dw2", &t), *db2_ref = ds(f, grp, "db2", &t);
  float *z_ref = ds(f, grp, "z", &t);
  int64_t ncache = dyrelu_cache_size(n, c, cm);
  float *cache = test_alloc_guarded(ncache, GUARD), *y = test_alloc_guarded(nx, GUARD);
  dyrelu_forward_cpu(n, c, hw, cm, x, w1, b1, w2, b2, y, cache);
  check_close(label(what, sizeof what, grp, "forward"), y, y_ref, nx, 2e-6, 1e-5,
              "double 1x1 convs, float32 x * a + b");
  check_guard(label(what, sizeof what, grp, "forward"), y, nx, GUARD);
  check_guard(label(what, sizeof what, grp, "cache"), cache, ncache, GUARD);
  int clamped = 0;
  for (int64_t i = 0; i < n * 4 * c; i++) clamped += fabsf(z_ref[i]) > 3.0f;
  check_true(label(what, sizeof what, grp, "oracle exercises the HSigmoid clamp"), clamped > 0);

  float *dx = grad_buf(nx), *dw1 = grad_buf(nw1), *db1 = grad_buf(cm), *dw2 = grad_buf(nw2);
  float *db2 = grad_buf(4 * c);
  dyrelu_backward_cpu(n, c, hw, cm, x, w1, w2, cache, dy, dx, dw1, db1, dw2, db2);
  const char *whyp = "double sums over <= 1000 elements";
  check_acc(label(what, sizeof what, grp, "dx (accumulated)"), dx, dx_ref, nx, 2e-6, 1e-5,
            "float32 dy * a plus the pooled-path term");
  check_acc(label(what, sizeof what, grp, "dw1 (accumulated)"), dw1, dw1_ref, nw1, 1e-5, 1e-5, whyp);
  check_acc(label(what, sizeof what, grp, "db1 (accumulated)"), db1, db1_ref, cm, 1e-5, 1e-5, whyp);
  check_acc(label(what, sizeof what, grp, "dw2 (accumulated)"), dw2, dw2_ref, nw2, 1e-5, 1e-5, whyp);
  check_acc(label(what, sizeof what, grp, "db2 (accumulated)"), db2, db2_ref, 4 * c, 1e-5, 1e-5, whyp);
  // Only dx requested.
  float *dx2 = grad_buf(nx);
  dyrelu_backward_cpu(n, c, hw, cm, x, w1, w2, cache, dy, dx2, NULL, NULL, NULL, NULL);
  check_true(label(what, sizeof what, grp, "dx alone == dx with all"),
             memcmp(dx2, dx, (size_t)nx * sizeof(float)) == 0);

  float *gx = callocCheck((size_t)nx, sizeof(float)), *gw1 = callocCheck((size_t)nw1, sizeof(float));
  float *gb1 = callocCheck((size_t)cm, sizeof(float)), *gw2 = callocCheck((size_t)nw2, sizeof(float));
  float *gb2 = callocCheck((size_t)(4 * c), sizeof(float));
  dyrelu_backward_cpu(n, c, hw, cm, x, w1, w2, cache, dy, gx, gw1, gb1, gw2, gb2);
  dy_ctx ctx = {.n = n, .c = c, .hw = hw, .cm = cm, .x = x, .w1 = w1, .b1 = b1, .w2 = w2,
                .b2 = b2, .y = y, .cache = cache, .r = dy};
  const float eps = 1e-2f;
  check_grad_fd(label(what, sizeof what, grp, "fd dx"), x, nx, gx, dy_loss, &ctx, 16, eps, 2e-3,
                2e-3, g_seed + 4, NULL);
  check_grad_fd(label(what, sizeof what, grp, "fd dw1"), w1, nw1, gw1, dy_loss, &ctx, 12, eps,
                2e-3, 2e-3, g_seed + 5, NULL);
  check_grad_fd(label(what, sizeof what, grp, "fd db1"), b1, cm, gb1, dy_loss, &ctx, 6, eps, 2e-3,
                2e-3, g_seed + 6, NULL);
  check_grad_fd(label(what, sizeof what, grp, "fd dw2"), w2, nw2, gw2, dy_loss, &ctx, 12, eps,
                2e-3, 2e-3, g_seed + 7, NULL);
  check_grad_fd(label(what, sizeof what, grp, "fd db2"), b2, 4 * c, gb2, dy_loss, &ctx, 12, eps,
                2e-3, 2e-3, g_seed + 8, NULL);
  free(m); free(x); free(w1); free(b1); free(w2); free(b2); free(dy); free(y_ref); free(dx_ref);
  free(dw1_ref); free(db1_ref); free(dw2_ref); free(db2_ref); free(z_ref); free(cache); free(y);
  free(dx); free(dw1); free(db1); free(dw2); free(db2); free(dx2); free(gx); free(gw1); free(gb1);
  free(gw2); free(gb2);
}

// DyReLU's reductions do not depend on the thread count (MASA-sized map, bitwise comparison).
static void run_determinism(void) {
  const int64_t n = 2, c = 256, cm = 64, hw = 40 * 40, nx = n * c * hw;
  float *x = mallocCheck((size_t)nx * sizeof(float)), *dy = mallocCheck((size_t)nx * sizeof(float));
  float *w1 = mallocCheck((size_t)(cm * c) * sizeof(float)), *b1 = mallocCheck((size_t)cm * sizeof(float));
  float *w2 = mallocCheck((size_t)(4 * c * cm) * sizeof(float)), *b2 = mallocCheck((size_t)(4 * c) * sizeof(float));
  rng_fill_normal(x, nx, 0.0f, 1.0f, g_seed, 51);
  rng_fill_normal(dy, nx, 0.0f, 1.0f, g_seed, 52);
  rng_fill_normal(w1, cm * c, 0.0f, 0.1f, g_seed, 53);
  rng_fill_normal(b1, cm, 0.0f, 0.5f, g_seed, 54);
  rng_fill_normal(w2, 4 * c * cm, 0.0f, 0.3f, g_seed, 55);
  rng_fill_normal(b2, 4 * c, 0.0f, 0.5f, g_seed, 56);
  int64_t ncache = dyrelu_cache_size(n, c, cm), np = cm * c + cm + 4 * c * cm + 4 * c;
  float *out[2][3];
  int saved = omp_get_max_threads();
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(t + 1);
    float *y = mallocCheck((size_t)nx * sizeof(float)), *cache = mallocCheck((size_t)ncache * sizeof(float));
    float *gx = callocCheck((size_t)nx, sizeof(float)), *gp = callocCheck((size_t)np, sizeof(float));
    dyrelu_forward_cpu(n, c, hw, cm, x, w1, b1, w2, b2, y, cache);
    dyrelu_backward_cpu(n, c, hw, cm, x, w1, w2, cache, dy, gx, gp, gp + cm * c,
                        gp + cm * c + cm, gp + cm * c + cm + 4 * c * cm);
    free(cache);
    out[t][0] = y; out[t][1] = gx; out[t][2] = gp;
  }
  omp_set_num_threads(saved);
  check_true("dyrelu outputs and gradients identical with 1 and 2 threads",
             memcmp(out[0][0], out[1][0], (size_t)nx * sizeof(float)) == 0 &&
                 memcmp(out[0][1], out[1][1], (size_t)nx * sizeof(float)) == 0 &&
                 memcmp(out[0][2], out[1][2], (size_t)np * sizeof(float)) == 0);
  for (int t = 0; t < 2; t++)
    for (int k = 0; k < 3; k++) free(out[t][k]);
  free(x); free(dy); free(w1); free(b1); free(w2); free(b2);
}

int main(int argc, char **argv) {
  g_seed = test_begin("activation", 7003);
  h5file *f = oracle_open(argc > 1 ? argv[1] : NULL);
  run_elementwise(f, "relu", OP_RELU, 1e-7, 1e-7, "exact");
  run_elementwise(f, "gelu", OP_GELU, 2e-7, 1e-6, "erfcf / expf within a few ulp");
  run_elementwise(f, "sigmoid", OP_SIGMOID, 2e-7, 1e-6,
                  "expf within a few ulp; 1 - y of a float32 y near 1 keeps y's 6e-8 rounding");
  run_elementwise(f, "hsigmoid", OP_HSIG, 1e-7, 1e-7, "one float32 rounding");
  run_kinks();
  for (int i = 0; i < 3; i++) {
    run_softmax(f, i, 0);
    run_softmax(f, i, 1);
  }
  run_gap(f);
  int nd = 0;
  for (;; nd++) {
    char name[32];
    snprintf(name, sizeof name, "dyrelu%d/meta", nd);
    if (!h5_has(f, name)) break;
    run_dyrelu(f, nd);
  }
  check_true("oracle has DyReLU cases", nd >= 3);
  h5_close(f);
  run_determinism();
  return test_end();
}
