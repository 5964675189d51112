// GPU check, group 1: activations (GELU, sigmoid, hard sigmoid, softmax, log-softmax, global
// average pool), normalisation (GroupNorm, LayerNorm2d, channel affine, training BatchNorm) and
// resampling (max_pool2d, nearest, bilinear align_corners). Each CUDA twin runs on random inputs
// with odd shapes (batch 1 and 3, non-square, sizes off the block sizes, hw = 1) and is compared
// with its CPU twin. Backward passes start from pre-filled random gradients (accumulate
// semantics) and, where a backward reads saved forward state, get the CPU's state so that each
// row of the table tests one kernel. Tolerances are stated per op with their reason: "exact"
// means the kernel repeats the CPU's float operations in the same order (see the kernel files).
#ifdef MASA_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "kernels.h"
#include "ops/ops.h"

#define I64_SENTINEL ((int64_t)-31337)

static int64_t *dev_i64_guarded(int64_t n) {
  size_t bytes = (size_t)(n + GUARD) * sizeof(int64_t);
  int64_t *tmp = mallocCheck(bytes);
  for (int64_t i = 0; i < n + GUARD; i++) tmp[i] = i < n ? 0 : I64_SENTINEL;
  int64_t *d = cuda_alloc(bytes);
  cuda_upload(d, tmp, bytes);
  free(tmp);
  return d;
}

// Exact comparison of int64 indices plus the guard; one table row.
static void cmp_i64(check_state *st, const char *name, const int64_t *dev, const int64_t *ref,
                    int64_t n) {
  size_t bytes = (size_t)(n + GUARD) * sizeof(int64_t);
  int64_t *h = mallocCheck(bytes);
  cuda_sync();
  cuda_download(h, dev, bytes);
  int64_t bad = 0;
  int guard_ok = 1;
  for (int64_t i = 0; i < n; i++) bad += h[i] != ref[i];
  for (int64_t i = n; i < n + GUARD; i++)
    if (h[i] != I64_SENTINEL) guard_ok = 0;
  st->total++;
  if (bad || !guard_ok) st->failures++;
  printf("%-40s %10lld %11lld %11s %17s %s%s\n", name, (long long)n, (long long)bad, "-",
         "exact (mismatches)", !bad && guard_ok ? "pass" : "FAIL",
         guard_ok ? "" : " (guard overwritten)");
  free(h);
}

// ---- pointwise activations ----

static void check_pointwise(check_state *st, int64_t n, uint64_t seed) {
  float *x = gpu_check_uniform(n, seed, 101, -6.0f, 6.0f), *dy = gpu_check_uniform(n, seed, 102, -1.0f, 1.0f);
  float *dx0 = gpu_check_uniform(n, seed, 103, -1.0f, 1.0f);
  // The hard-sigmoid kinks and 0 on purpose: the gradient rule at exactly +-3 is part of the op.
  if (n > 0) x[0] = -3.0f;
  if (n > 1) x[1] = 3.0f;
  if (n > 2) x[2] = 0.0f;
  float *y = mallocCheck((size_t)n * sizeof(float)), *dx = mallocCheck((size_t)n * sizeof(float));
  float *dX = gpu_check_dev_guarded(x, n), *dDY = gpu_check_dev_guarded(dy, n);
  float *dY = gpu_check_dev_guarded(NULL, n), *dYref = gpu_check_dev_guarded(NULL, n);
  char name[96];

  // GELU: CUDA's erfcf is within 4 ulp and expf within 2 ulp (CUDA C Programming Guide, math
  // function accuracy), glibc's within ~1: a few ulp of the result, hence rtol 2e-6. Backward
  // cdf + x*pdf cancels for x < 0 (up to ~10x): 1e-6 abs + 1e-5 rel.
  gelu_forward_cpu(n, x, y);
  gelu_forward_cuda(n, dX, dY, 0);
  snprintf(name, sizeof name, "gelu_forward n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 1e-7, 2e-6);
  memcpy(dx, dx0, (size_t)n * sizeof(float));
  gelu_backward_cpu(n, x, dy, dx);
  float *dDX = gpu_check_dev_guarded(dx0, n);
  gelu_backward_cuda(n, dX, dDY, dDX, 0);
  snprintf(name, sizeof name, "gelu_backward n=%lld (accumulate)", (long long)n);
  gpu_check_cmp(st, name, dDX, dx, n, 1e-6, 1e-5);
  cuda_free(dDX);

  // Sigmoid: expf within 2 ulp, then one add and one divide: rtol 1e-6.
  sigmoid_forward_cpu(n, x, y);
  sigmoid_forward_cuda(n, dX, dY, 0);
  snprintf(name, sizeof name, "sigmoid_forward n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 1e-9, 1e-6);
  // Backward from the CPU's y: the same three float operations in the same order: exact.
  cuda_upload(dYref, y, (size_t)n * sizeof(float));
  memcpy(dx, dx0, (size_t)n * sizeof(float));
  sigmoid_backward_cpu(n, y, dy, dx);
  dDX = gpu_check_dev_guarded(dx0, n);
  sigmoid_backward_cuda(n, dYref, dDY, dDX, 0);
  snprintf(name, sizeof name, "sigmoid_backward n=%lld (accumulate)", (long long)n);
  gpu_check_cmp(st, name, dDX, dx, n, 0, 0);
  cuda_free(dDX);

  // Hard sigmoid: an add, a divide and a clamp; backward a divide and an add: exact.
  hard_sigmoid_forward_cpu(n, x, y);
  hard_sigmoid_forward_cuda(n, dX, dY, 0);
  snprintf(name, sizeof name, "hard_sigmoid_forward n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  memcpy(dx, dx0, (size_t)n * sizeof(float));
  hard_sigmoid_backward_cpu(n, x, dy, dx);
  dDX = gpu_check_dev_guarded(dx0, n);
  hard_sigmoid_backward_cuda(n, dX, dDY, dDX, 0);
  snprintf(name, sizeof name, "hard_sigmoid_backward n=%lld (kinks)", (long long)n);
  gpu_check_cmp(st, name, dDX, dx, n, 0, 0);
  cuda_free(dDX);

  cuda_free(dX), cuda_free(dDY), cuda_free(dY), cuda_free(dYref);
  free(x), free(dy), free(dx0), free(y), free(dx);
}

// ---- softmax / log-softmax ----

static void check_softmax(check_state *st, int64_t rows, int64_t cols, uint64_t seed) {
  const int64_t n = rows * cols;
  float *x = gpu_check_uniform(n, seed, 111, -8.0f, 8.0f), *dy = gpu_check_uniform(n, seed, 112, -1.0f, 1.0f);
  float *dx0 = gpu_check_uniform(n, seed, 113, -1.0f, 1.0f);
  float *y = mallocCheck((size_t)n * sizeof(float)), *dx = gpu_check_copy(dx0, n);
  float *dX = gpu_check_dev_guarded(x, n), *dY = gpu_check_dev_guarded(NULL, n);
  float *dDY = gpu_check_dev_guarded(dy, n), *dDX = gpu_check_dev_guarded(dx0, n);
  char name[96];

  // expf within 2 ulp of glibc's; the double row sum differs only in order; the reciprocal is
  // rounded to float once: a few ulp of y, hence rtol 1e-6.
  softmax_forward_cpu(rows, cols, x, y);
  softmax_forward_cuda(rows, cols, dX, dY, 0);
  snprintf(name, sizeof name, "softmax_forward %lldx%lld", (long long)rows, (long long)cols);
  gpu_check_cmp(st, name, dY, y, n, 1e-9, 1e-6);
  // Backward from the CPU's y: the float row sum may differ by 1 ulp (|s| <= 1): 1e-6 abs.
  cuda_upload(dY, y, (size_t)n * sizeof(float));
  softmax_backward_cpu(rows, cols, y, dy, dx);
  softmax_backward_cuda(rows, cols, dY, dDY, dDX, 0);
  snprintf(name, sizeof name, "softmax_backward %lldx%lld (acc)", (long long)rows, (long long)cols);
  gpu_check_cmp(st, name, dDX, dx, n, 1e-6, 1e-6);

  // log-sum-exp is off by ~1e-7 absolute (expf ulps in the sum), |y| <= ~23: 1e-6 + 1e-6 rel.
  log_softmax_forward_cpu(rows, cols, x, y);
  log_softmax_forward_cuda(rows, cols, dX, dY, 0);
  snprintf(name, sizeof name, "log_softmax_forward %lldx%lld", (long long)rows, (long long)cols);
  gpu_check_cmp(st, name, dY, y, n, 1e-6, 1e-6);
  // Backward: expf(y) (2 ulp, <= 2.4e-7) times |sum dy| (<= ~60 for cols <= 1000): 5e-5 abs.
  cuda_upload(dY, y, (size_t)n * sizeof(float));
  memcpy(dx, dx0, (size_t)n * sizeof(float));
  cuda_upload(dDX, dx0, (size_t)n * sizeof(float));
  log_softmax_backward_cpu(rows, cols, y, dy, dx);
  log_softmax_backward_cuda(rows, cols, dY, dDY, dDX, 0);
  snprintf(name, sizeof name, "log_softmax_bwd %lldx%lld (acc)", (long long)rows, (long long)cols);
  gpu_check_cmp(st, name, dDX, dx, n, 5e-5, 1e-5);

  cuda_free(dX), cuda_free(dY), cuda_free(dDY), cuda_free(dDX);
  free(x), free(dy), free(dx0), free(y), free(dx);
}

// ---- global average pool ----

static void check_gap(check_state *st, int64_t n, int64_t c, int64_t hw, uint64_t seed) {
  const int64_t nx = n * c * hw, ny = n * c;
  float *x = gpu_check_uniform(nx, seed, 121, -1.0f, 1.0f), *dy = gpu_check_uniform(ny, seed, 122, -1.0f, 1.0f);
  float *dx0 = gpu_check_uniform(nx, seed, 123, -1.0f, 1.0f);
  float *y = mallocCheck((size_t)ny * sizeof(float)), *dx = gpu_check_copy(dx0, nx);
  float *dX = gpu_check_dev_guarded(x, nx), *dY = gpu_check_dev_guarded(NULL, ny);
  float *dDY = gpu_check_dev_guarded(dy, ny), *dDX = gpu_check_dev_guarded(dx0, nx);
  char name[96];
  global_avg_pool_forward_cpu(n, c, hw, x, y);
  global_avg_pool_forward_cuda(n, c, hw, dX, dY, 0);
  // Double sums in another order, one float rounding: equal but for rare ties (1 ulp).
  snprintf(name, sizeof name, "global_avg_pool_fwd %lldx%lldx%lld", (long long)n, (long long)c,
           (long long)hw);
  gpu_check_cmp(st, name, dY, y, ny, 1e-7, 2.5e-7);
  global_avg_pool_backward_cpu(n, c, hw, dy, dx);
  global_avg_pool_backward_cuda(n, c, hw, dDY, dDX, 0);
  snprintf(name, sizeof name, "global_avg_pool_bwd %lldx%lldx%lld", (long long)n, (long long)c,
           (long long)hw);
  gpu_check_cmp(st, name, dDX, dx, nx, 0, 0);  // exact: the same double divide, cast and float add
  cuda_free(dX), cuda_free(dY), cuda_free(dDY), cuda_free(dDX);
  free(x), free(dy), free(dx0), free(y), free(dx);
}

// ---- GroupNorm ----

static void check_group_norm(check_state *st, int64_t n, int64_t c, int64_t hw, int64_t groups,
                             int affine, uint64_t seed) {
  const int64_t nx = n * c * hw, ns = n * groups;
  const float eps = 1e-5f;
  float *x = gpu_check_uniform(nx, seed, 131, -1.5f, 2.5f), *dy = gpu_check_uniform(nx, seed, 132, -1.0f, 1.0f);
  float *gamma = affine ? gpu_check_uniform(c, seed, 133, 0.5f, 1.5f) : NULL;
  float *beta = affine ? gpu_check_uniform(c, seed, 134, -0.5f, 0.5f) : NULL;
  float *dx0 = gpu_check_uniform(nx, seed, 135, -1.0f, 1.0f), *dg0 = gpu_check_uniform(c, seed, 136, -1.0f, 1.0f);
  float *db0 = gpu_check_uniform(c, seed, 137, -1.0f, 1.0f);
  float *y = mallocCheck((size_t)nx * sizeof(float));
  float *mean = mallocCheck((size_t)ns * sizeof(float));
  float *rstd = mallocCheck((size_t)ns * sizeof(float));
  float *dx = gpu_check_copy(dx0, nx), *dg = gpu_check_copy(dg0, c), *db = gpu_check_copy(db0, c);
  float *dX = gpu_check_dev_guarded(x, nx), *dG = affine ? gpu_check_dev_guarded(gamma, c) : NULL;
  float *dB = affine ? gpu_check_dev_guarded(beta, c) : NULL;
  float *dY = gpu_check_dev_guarded(NULL, nx), *dM = gpu_check_dev_guarded(NULL, ns);
  float *dR = gpu_check_dev_guarded(NULL, ns), *dDY = gpu_check_dev_guarded(dy, nx);
  float *dDX = gpu_check_dev_guarded(dx0, nx);
  float *dDG = affine ? gpu_check_dev_guarded(dg0, c) : NULL;
  float *dDB = affine ? gpu_check_dev_guarded(db0, c) : NULL;
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "%lldx%lldx%lld g%lld%s", (long long)n, (long long)c, (long long)hw,
           (long long)groups, affine ? "" : " noaff");

  group_norm_forward_cpu(n, c, hw, groups, eps, x, gamma, beta, y, mean, rstd);
  group_norm_forward_cuda(n, c, hw, groups, eps, dX, dG, dB, dY, dM, dR, 0);
  // Statistics: double sums in another order, rounded to float once: within 1 ulp. y inherits
  // at most 1 ulp of rstd times |xhat * gamma| (<= ~6): 1e-6 abs + 1e-6 rel.
  snprintf(name, sizeof name, "group_norm_fwd mean %s", tag);
  gpu_check_cmp(st, name, dM, mean, ns, 1e-7, 2.5e-7);
  snprintf(name, sizeof name, "group_norm_fwd rstd %s", tag);
  gpu_check_cmp(st, name, dR, rstd, ns, 0, 2.5e-7);
  snprintf(name, sizeof name, "group_norm_fwd y %s", tag);
  gpu_check_cmp(st, name, dY, y, nx, 1e-6, 1e-6);

  // Backward from the CPU's mean / rstd. Per-plane double sums in another order; the float
  // coefficients match but for rare ties; dgamma/dbeta are double sums cast once. 1e-6 + 1e-6.
  cuda_upload(dM, mean, (size_t)ns * sizeof(float));
  cuda_upload(dR, rstd, (size_t)ns * sizeof(float));
  group_norm_backward_cpu(n, c, hw, groups, x, gamma, mean, rstd, dy, dx, affine ? dg : NULL,
                          affine ? db : NULL);
  group_norm_backward_cuda(n, c, hw, groups, dX, dG, dM, dR, dDY, dDX, dDG, dDB, 0);
  snprintf(name, sizeof name, "group_norm_bwd dx %s", tag);
  gpu_check_cmp(st, name, dDX, dx, nx, 1e-6, 1e-6);
  if (affine) {
    snprintf(name, sizeof name, "group_norm_bwd dgamma %s", tag);
    gpu_check_cmp(st, name, dDG, dg, c, 1e-6, 1e-6);
    snprintf(name, sizeof name, "group_norm_bwd dbeta %s", tag);
    gpu_check_cmp(st, name, dDB, db, c, 1e-6, 1e-6);
  }
  cuda_free(dX), cuda_free(dY), cuda_free(dM), cuda_free(dR), cuda_free(dDY), cuda_free(dDX);
  if (affine) cuda_free(dG), cuda_free(dB), cuda_free(dDG), cuda_free(dDB);
  free(x), free(dy), free(gamma), free(beta), free(dx0), free(dg0), free(db0), free(y);
  free(mean), free(rstd), free(dx), free(dg), free(db);
}

// ---- LayerNorm2d ----

static void check_layer_norm2d(check_state *st, int64_t n, int64_t c, int64_t hw, uint64_t seed) {
  const int64_t nx = n * c * hw, ns = n * hw;
  const float eps = 1e-6f;
  float *x = gpu_check_uniform(nx, seed, 141, -1.0f, 3.0f), *dy = gpu_check_uniform(nx, seed, 142, -1.0f, 1.0f);
  float *gamma = gpu_check_uniform(c, seed, 143, 0.5f, 1.5f), *beta = gpu_check_uniform(c, seed, 144, -0.5f, 0.5f);
  float *dx0 = gpu_check_uniform(nx, seed, 145, -1.0f, 1.0f), *dg0 = gpu_check_uniform(c, seed, 146, -1.0f, 1.0f);
  float *db0 = gpu_check_uniform(c, seed, 147, -1.0f, 1.0f);
  float *y = mallocCheck((size_t)nx * sizeof(float));
  float *mean = mallocCheck((size_t)ns * sizeof(float));
  float *rstd = mallocCheck((size_t)ns * sizeof(float));
  float *dx = gpu_check_copy(dx0, nx), *dg = gpu_check_copy(dg0, c), *db = gpu_check_copy(db0, c);
  float *dX = gpu_check_dev_guarded(x, nx), *dG = gpu_check_dev_guarded(gamma, c);
  float *dB = gpu_check_dev_guarded(beta, c), *dY = gpu_check_dev_guarded(NULL, nx);
  float *dM = gpu_check_dev_guarded(NULL, ns), *dR = gpu_check_dev_guarded(NULL, ns);
  float *dDY = gpu_check_dev_guarded(dy, nx), *dDX = gpu_check_dev_guarded(dx0, nx);
  float *dDG = gpu_check_dev_guarded(dg0, c), *dDB = gpu_check_dev_guarded(db0, c);
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "%lldx%lldx%lld", (long long)n, (long long)c, (long long)hw);

  // Per pixel the kernel repeats the CPU's double operations in the CPU's order: bit-identical
  // expected; 2 ulp of slack (rtol 2.5e-7, 1e-7 abs near zero) keeps the check about bugs.
  layer_norm2d_forward_cpu(n, c, hw, eps, x, gamma, beta, y, mean, rstd);
  layer_norm2d_forward_cuda(n, c, hw, eps, dX, dG, dB, dY, dM, dR, 0);
  snprintf(name, sizeof name, "layer_norm2d_fwd mean %s", tag);
  gpu_check_cmp(st, name, dM, mean, ns, 1e-7, 2.5e-7);
  snprintf(name, sizeof name, "layer_norm2d_fwd rstd %s", tag);
  gpu_check_cmp(st, name, dR, rstd, ns, 0, 2.5e-7);
  snprintf(name, sizeof name, "layer_norm2d_fwd y %s", tag);
  gpu_check_cmp(st, name, dY, y, nx, 1e-7, 2.5e-7);

  // dx: same double expression per pixel (exact expected, same slack). dgamma/dbeta: per-block
  // partials summed in another order within the block (double), cast once: 1e-6 + 1e-6.
  layer_norm2d_backward_cpu(n, c, hw, x, gamma, mean, rstd, dy, dx, dg, db);
  layer_norm2d_backward_cuda(n, c, hw, dX, dG, dM, dR, dDY, dDX, dDG, dDB, 0);
  snprintf(name, sizeof name, "layer_norm2d_bwd dx %s", tag);
  gpu_check_cmp(st, name, dDX, dx, nx, 1e-7, 2.5e-7);
  snprintf(name, sizeof name, "layer_norm2d_bwd dgamma %s", tag);
  gpu_check_cmp(st, name, dDG, dg, c, 1e-6, 1e-6);
  snprintf(name, sizeof name, "layer_norm2d_bwd dbeta %s", tag);
  gpu_check_cmp(st, name, dDB, db, c, 1e-6, 1e-6);
  cuda_free(dX), cuda_free(dG), cuda_free(dB), cuda_free(dY), cuda_free(dM), cuda_free(dR);
  cuda_free(dDY), cuda_free(dDX), cuda_free(dDG), cuda_free(dDB);
  free(x), free(dy), free(gamma), free(beta), free(dx0), free(dg0), free(db0), free(y);
  free(mean), free(rstd), free(dx), free(dg), free(db);
}

// ---- channel affine ----

static void check_channel_affine(check_state *st, int64_t n, int64_t c, int64_t hw,
                                 uint64_t seed) {
  const int64_t nx = n * c * hw;
  float *x = gpu_check_uniform(nx, seed, 151, -2.0f, 2.0f), *dy = gpu_check_uniform(nx, seed, 152, -1.0f, 1.0f);
  float *scale = gpu_check_uniform(c, seed, 153, -2.0f, 2.0f), *shift = gpu_check_uniform(c, seed, 154, -1.0f, 1.0f);
  float *dx0 = gpu_check_uniform(nx, seed, 155, -1.0f, 1.0f);
  float *y = mallocCheck((size_t)nx * sizeof(float)), *dx = gpu_check_copy(dx0, nx);
  float *dX = gpu_check_dev_guarded(x, nx), *dS = gpu_check_dev_guarded(scale, c);
  float *dT = gpu_check_dev_guarded(shift, c), *dY = gpu_check_dev_guarded(NULL, nx);
  float *dDY = gpu_check_dev_guarded(dy, nx), *dDX = gpu_check_dev_guarded(dx0, nx);
  char name[96];
  channel_affine_forward_cpu(n, c, hw, x, scale, shift, y);
  channel_affine_forward_cuda(n, c, hw, dX, dS, dT, dY, 0);
  snprintf(name, sizeof name, "channel_affine_fwd %lldx%lldx%lld", (long long)n, (long long)c,
           (long long)hw);
  gpu_check_cmp(st, name, dY, y, nx, 0, 0);  // exact: one multiply and one add, no FMA on either side
  channel_affine_backward_cpu(n, c, hw, scale, dy, dx);
  channel_affine_backward_cuda(n, c, hw, dS, dDY, dDX, 0);
  snprintf(name, sizeof name, "channel_affine_bwd %lldx%lldx%lld", (long long)n, (long long)c,
           (long long)hw);
  gpu_check_cmp(st, name, dDX, dx, nx, 0, 0);
  cuda_free(dX), cuda_free(dS), cuda_free(dT), cuda_free(dY), cuda_free(dDY), cuda_free(dDX);
  free(x), free(dy), free(scale), free(shift), free(dx0), free(y), free(dx);
}

// ---- training BatchNorm ----

// Stand-in for a 2-rank all-reduce where the other rank holds identical data: doubles the sums.
static void bn_hook_two_ranks(double *buf, int64_t count, void *ctx) {
  for (int64_t i = 0; i < count; i++) buf[i] *= 2.0;
  (*(int *)ctx)++;
}

static void check_batch_norm(check_state *st, int64_t n, int64_t c, int64_t hw, int use_hook,
                             uint64_t seed) {
  const int64_t nx = n * c * hw;
  const float eps = 1e-5f, momentum = 0.1f;
  float *x = gpu_check_uniform(nx, seed, 161, -1.0f, 2.0f), *dy = gpu_check_uniform(nx, seed, 162, -1.0f, 1.0f);
  float *gamma = gpu_check_uniform(c, seed, 163, 0.5f, 1.5f), *beta = gpu_check_uniform(c, seed, 164, -0.5f, 0.5f);
  float *rm0 = gpu_check_uniform(c, seed, 165, -0.5f, 0.5f), *rv0 = gpu_check_uniform(c, seed, 166, 0.5f, 1.5f);
  float *dx0 = gpu_check_uniform(nx, seed, 167, -1.0f, 1.0f), *dg0 = gpu_check_uniform(c, seed, 168, -1.0f, 1.0f);
  float *db0 = gpu_check_uniform(c, seed, 169, -1.0f, 1.0f);
  float *y = mallocCheck((size_t)nx * sizeof(float)), *sm = mallocCheck((size_t)c * sizeof(float));
  float *sr = mallocCheck((size_t)c * sizeof(float));
  float *rm = gpu_check_copy(rm0, c), *rv = gpu_check_copy(rv0, c);
  float *dx = gpu_check_copy(dx0, nx), *dg = gpu_check_copy(dg0, c), *db = gpu_check_copy(db0, c);
  float *dX = gpu_check_dev_guarded(x, nx), *dG = gpu_check_dev_guarded(gamma, c);
  float *dB = gpu_check_dev_guarded(beta, c), *dY = gpu_check_dev_guarded(NULL, nx);
  float *dSM = gpu_check_dev_guarded(NULL, c), *dSR = gpu_check_dev_guarded(NULL, c);
  float *dRM = gpu_check_dev_guarded(rm0, c), *dRV = gpu_check_dev_guarded(rv0, c);
  float *dDY = gpu_check_dev_guarded(dy, nx), *dDX = gpu_check_dev_guarded(dx0, nx);
  float *dDG = gpu_check_dev_guarded(dg0, c), *dDB = gpu_check_dev_guarded(db0, c);
  int calls_cpu = 0, calls_gpu = 0;
  bn_allreduce_fn hook = use_hook ? bn_hook_two_ranks : NULL;
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "%lldx%lldx%lld%s", (long long)n, (long long)c, (long long)hw,
           use_hook ? " hook" : "");

  batch_norm_train_forward_cpu(n, c, hw, eps, momentum, x, gamma, beta, y, sm, sr, rm, rv, hook,
                               &calls_cpu);
  batch_norm_train_forward_cuda(n, c, hw, eps, momentum, dX, dG, dB, dY, dSM, dSR, dRM, dRV, hook,
                                &calls_gpu, 0);
  // One-pass double sums in another order, rounded to float once: statistics within 1 ulp; y
  // inherits 1 ulp of rstd times |xhat * gamma| (<= ~6): 1e-6 abs + 1e-6 rel.
  snprintf(name, sizeof name, "batch_norm_fwd save_mean %s", tag);
  gpu_check_cmp(st, name, dSM, sm, c, 1e-7, 2.5e-7);
  snprintf(name, sizeof name, "batch_norm_fwd save_rstd %s", tag);
  gpu_check_cmp(st, name, dSR, sr, c, 0, 2.5e-7);
  snprintf(name, sizeof name, "batch_norm_fwd running_mean %s", tag);
  gpu_check_cmp(st, name, dRM, rm, c, 1e-7, 2.5e-7);
  snprintf(name, sizeof name, "batch_norm_fwd running_var %s", tag);
  gpu_check_cmp(st, name, dRV, rv, c, 1e-7, 2.5e-7);
  snprintf(name, sizeof name, "batch_norm_fwd y %s", tag);
  gpu_check_cmp(st, name, dY, y, nx, 1e-6, 1e-6);

  // Backward from the CPU's saved statistics: double sums in another order, float coefficients
  // equal but for rare ties: 1e-6 + 1e-6 on dx, dgamma, dbeta.
  cuda_upload(dSM, sm, (size_t)c * sizeof(float));
  cuda_upload(dSR, sr, (size_t)c * sizeof(float));
  batch_norm_train_backward_cpu(n, c, hw, x, gamma, sm, sr, dy, dx, dg, db, hook, &calls_cpu);
  batch_norm_train_backward_cuda(n, c, hw, dX, dG, dSM, dSR, dDY, dDX, dDG, dDB, hook, &calls_gpu,
                                 0);
  snprintf(name, sizeof name, "batch_norm_bwd dx %s", tag);
  gpu_check_cmp(st, name, dDX, dx, nx, 1e-6, 1e-6);
  snprintf(name, sizeof name, "batch_norm_bwd dgamma %s", tag);
  gpu_check_cmp(st, name, dDG, dg, c, 1e-6, 1e-6);
  snprintf(name, sizeof name, "batch_norm_bwd dbeta %s", tag);
  gpu_check_cmp(st, name, dDB, db, c, 1e-6, 1e-6);
  if (calls_cpu != calls_gpu) {
    st->total++, st->failures++;
    printf("%-40s hook called %d times on the GPU path, %d on the CPU: FAIL\n", tag, calls_gpu,
           calls_cpu);
  }
  cuda_free(dX), cuda_free(dG), cuda_free(dB), cuda_free(dY), cuda_free(dSM), cuda_free(dSR);
  cuda_free(dRM), cuda_free(dRV), cuda_free(dDY), cuda_free(dDX), cuda_free(dDG), cuda_free(dDB);
  free(x), free(dy), free(gamma), free(beta), free(rm0), free(rv0), free(dx0), free(dg0);
  free(db0), free(y), free(sm), free(sr), free(rm), free(rv), free(dx), free(dg), free(db);
}

// ---- resampling ----

static void check_max_pool2d(check_state *st, int64_t n, int64_t c, int64_t h, int64_t w,
                             int64_t k, int64_t s, uint64_t seed) {
  const int64_t ho = max_pool2d_out_size(h, k, s), wo = max_pool2d_out_size(w, k, s);
  const int64_t nx = n * c * h * w, ny = n * c * ho * wo;
  float *x = gpu_check_uniform(nx, seed, 171, -2.0f, 2.0f), *dy = gpu_check_uniform(ny, seed, 172, -1.0f, 1.0f);
  float *dx0 = gpu_check_uniform(nx, seed, 173, -1.0f, 1.0f);
  for (int64_t i = 0; i < nx; i++) x[i] = roundf(x[i] * 2.0f);  // few distinct values: ties
  float *y = mallocCheck((size_t)(ny > 0 ? ny : 1) * sizeof(float)), *dx = gpu_check_copy(dx0, nx);
  int64_t *am = mallocCheck((size_t)(ny > 0 ? ny : 1) * sizeof(int64_t));
  float *dX = gpu_check_dev_guarded(x, nx), *dY = gpu_check_dev_guarded(NULL, ny);
  float *dDY = gpu_check_dev_guarded(dy, ny), *dDX = gpu_check_dev_guarded(dx0, nx);
  int64_t *dAM = dev_i64_guarded(ny);
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "%lldx%lldx%lldx%lld k%llds%lld", (long long)n, (long long)c,
           (long long)h, (long long)w, (long long)k, (long long)s);
  max_pool2d_forward_cpu(n, c, h, w, k, s, x, y, am);
  max_pool2d_forward_cuda(n, c, h, w, k, s, dX, dY, dAM, 0);
  snprintf(name, sizeof name, "max_pool2d_fwd y %s", tag);
  gpu_check_cmp(st, name, dY, y, ny, 0, 0);  // exact: a selection
  snprintf(name, sizeof name, "max_pool2d_fwd argmax %s", tag);
  cmp_i64(st, name, dAM, am, ny);  // exact, ties included (first maximum)
  max_pool2d_backward_cpu(n, c, h, w, k, s, am, dy, dx);
  max_pool2d_backward_cuda(n, c, h, w, k, s, dAM, dDY, dDX, 0);
  snprintf(name, sizeof name, "max_pool2d_bwd %s", tag);
  gpu_check_cmp(st, name, dDX, dx, nx, 0, 0);  // exact: the CPU's adds in the CPU's order
  cuda_free(dX), cuda_free(dY), cuda_free(dDY), cuda_free(dDX), cuda_free(dAM);
  free(x), free(dy), free(dx0), free(y), free(dx), free(am);
}

static void check_resize(check_state *st, int bilinear, int64_t n, int64_t c, int64_t h,
                         int64_t w, int64_t ho, int64_t wo, uint64_t seed) {
  const int64_t nx = n * c * h * w, ny = n * c * ho * wo;
  float *x = gpu_check_uniform(nx, seed, 181, -1.0f, 1.0f), *dy = gpu_check_uniform(ny, seed, 182, -1.0f, 1.0f);
  float *dx0 = gpu_check_uniform(nx, seed, 183, -1.0f, 1.0f);
  float *y = mallocCheck((size_t)ny * sizeof(float)), *dx = gpu_check_copy(dx0, nx);
  float *dX = gpu_check_dev_guarded(x, nx), *dY = gpu_check_dev_guarded(NULL, ny);
  float *dDY = gpu_check_dev_guarded(dy, ny), *dDX = gpu_check_dev_guarded(dx0, nx);
  const char *op = bilinear ? "bilinear_ac" : "nearest";
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "%lldx%lldx%lldx%lld->%lldx%lld", (long long)n, (long long)c,
           (long long)h, (long long)w, (long long)ho, (long long)wo);
  if (bilinear) {
    resize_bilinear_ac_forward_cpu(n, c, h, w, ho, wo, x, y);
    resize_bilinear_ac_forward_cuda(n, c, h, w, ho, wo, dX, dY, 0);
    resize_bilinear_ac_backward_cpu(n, c, h, w, ho, wo, dy, dx);
    resize_bilinear_ac_backward_cuda(n, c, h, w, ho, wo, dDY, dDX, 0);
  } else {
    upsample_nearest_forward_cpu(n, c, h, w, ho, wo, x, y);
    upsample_nearest_forward_cuda(n, c, h, w, ho, wo, dX, dY, 0);
    upsample_nearest_backward_cpu(n, c, h, w, ho, wo, dy, dx);
    upsample_nearest_backward_cuda(n, c, h, w, ho, wo, dDY, dDX, 0);
  }
  // Exact both ways: same float taps and weights, and the gather backward repeats the CPU's
  // scatter adds per pixel in the CPU's order.
  snprintf(name, sizeof name, "%s_fwd %s", op, tag);
  gpu_check_cmp(st, name, dY, y, ny, 0, 0);
  snprintf(name, sizeof name, "%s_bwd %s", op, tag);
  gpu_check_cmp(st, name, dDX, dx, nx, 0, 0);
  cuda_free(dX), cuda_free(dY), cuda_free(dDY), cuda_free(dDX);
  free(x), free(dy), free(dx0), free(y), free(dx);
}

void gpu_check_ops1(check_state *st, uint64_t seed) {
  const int64_t pw_sizes[] = {1, 3, 1000, 100003};
  for (int i = 0; i < 4; i++) check_pointwise(st, pw_sizes[i], seed);

  check_softmax(st, 1, 1, seed);
  check_softmax(st, 3, 1000, seed);
  check_softmax(st, 37, 257, seed);
  check_softmax(st, 2, 5000, seed);

  check_gap(st, 1, 1, 1, seed);
  check_gap(st, 3, 5, 1, seed);
  check_gap(st, 3, 7, 1001, seed);
  check_gap(st, 1, 3, 70001, seed);

  check_group_norm(st, 1, 4, 1, 2, 0, seed);  // hw = 1: two values per group
  check_group_norm(st, 3, 12, 37, 4, 1, seed);
  check_group_norm(st, 2, 64, 999, 32, 1, seed);
  check_group_norm(st, 3, 6, 35, 1, 1, seed);

  check_layer_norm2d(st, 1, 3, 1, seed);
  check_layer_norm2d(st, 3, 17, 300, seed);  // crosses one 256-pixel block
  check_layer_norm2d(st, 2, 64, 257, seed);

  check_channel_affine(st, 1, 1, 1, seed);
  check_channel_affine(st, 3, 5, 37, seed);

  check_batch_norm(st, 1, 4, 2, 0, seed);  // two values per channel: the smallest legal count
  check_batch_norm(st, 3, 5, 37, 0, seed);
  check_batch_norm(st, 2, 16, 1, 0, seed);  // hw = 1
  check_batch_norm(st, 3, 7, 33, 1, seed);  // host hook path

  check_max_pool2d(st, 1, 1, 1, 1, 1, 2, seed);
  check_max_pool2d(st, 3, 5, 7, 9, 2, 2, seed);
  check_max_pool2d(st, 2, 3, 10, 13, 3, 2, seed);  // overlapping windows
  check_max_pool2d(st, 1, 2, 9, 11, 1, 2, seed);   // FPN extra level: ceil(h / 2)
  check_max_pool2d(st, 1, 1, 2, 5, 3, 1, seed);    // h < k: empty output, dx untouched

  check_resize(st, 0, 1, 1, 1, 1, 3, 5, seed);
  check_resize(st, 0, 3, 2, 5, 7, 10, 14, seed);
  check_resize(st, 0, 2, 3, 7, 5, 13, 11, seed);  // non-integer ratios
  check_resize(st, 0, 1, 2, 9, 8, 4, 3, seed);    // downsampling
  check_resize(st, 1, 1, 1, 1, 1, 4, 3, seed);
  check_resize(st, 1, 3, 2, 5, 7, 11, 13, seed);
  check_resize(st, 1, 2, 3, 8, 6, 1, 1, seed);  // out = 1: scale 0
  check_resize(st, 1, 1, 2, 9, 10, 4, 7, seed);  // downsampling
  check_resize(st, 1, 1, 1, 4, 5, 4, 5, seed);   // identity size
  check_resize(st, 1, 3, 4, 16, 24, 64, 96, seed);  // x4, as the FPN-to-mask path
}
#endif
