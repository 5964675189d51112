// GPU check, group 3: the glue the model code calls between ops (ops/elementwise.h: fill, scale,
// div, axpy, add, relu_mask, row_dot, row_scale_add), the row-major GEMM through cuBLAS, the
// frozen-BN fold, the ResNet units (affine + residual + ReLU, the frozen-statistics BN parameter
// gradients) and the stem max-pool 3x3/2 pad 1. Odd sizes (1, 3, off the block sizes, big enough
// for a grid-stride loop), in-place use, accumulate semantics from pre-filled buffers.
// Tolerances: "exact" where the kernel repeats the CPU's float operations in order (_rn
// intrinsics, no FMA); double sums in another order: within a few float ulp; cuBLAS: FP32
// pedantic math, so products are exact and only the summation order differs: 1e-5 relative to
// the sum of |terms| bound, stated per row.
#ifdef MASA_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "kernels.h"
#include "ops/elementwise.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/resample.h"

static void check_elementwise(check_state *st, int64_t n, uint64_t seed) {
  float *a = gpu_check_uniform(n, seed, 301, -2, 2), *b = gpu_check_uniform(n, seed, 302, -2, 2);
  float *y = mallocCheck((size_t)(n ? n : 1) * sizeof(float));
  float *dA = gpu_check_dev_guarded(a, n), *dB = gpu_check_dev_guarded(b, n);
  float *dY = gpu_check_dev_guarded(NULL, n);
  char name[96];
  ew_fill_cpu(n, 0.25f, y);
  ew_fill_cuda(n, 0.25f, dY, 0);
  snprintf(name, sizeof name, "ew_fill n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  // y = b, then y += -0.5 a, y *= 3, y /= 7, y = y + a, mask by b: all exact (one rounding each).
  memcpy(y, b, (size_t)n * sizeof(float));
  cuda_upload(dY, b, (size_t)n * sizeof(float));
  ew_axpy_cpu(n, -0.5f, a, y), ew_axpy_cuda(n, -0.5f, dA, dY, 0);
  snprintf(name, sizeof name, "ew_axpy n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  ew_axpy_cpu(n, 1.0f, a, y), ew_axpy_cuda(n, 1.0f, dA, dY, 0);
  snprintf(name, sizeof name, "ew_axpy a=1 n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  ew_scale_cpu(n, 3.0f, y), ew_scale_cuda(n, 3.0f, dY, 0);
  snprintf(name, sizeof name, "ew_scale n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  ew_div_cpu(n, 7.0f, y), ew_div_cuda(n, 7.0f, dY, 0);
  snprintf(name, sizeof name, "ew_div n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  ew_add_cpu(n, y, a, y), ew_add_cuda(n, dY, dA, dY, 0);
  snprintf(name, sizeof name, "ew_add in place n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  ew_relu_mask_cpu(n, b, y), ew_relu_mask_cuda(n, dB, dY, 0);
  snprintf(name, sizeof name, "ew_relu_mask n=%lld", (long long)n);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  cuda_free(dA), cuda_free(dB), cuda_free(dY);
  free(a), free(b), free(y);
}

static void check_rows(check_state *st, int64_t rows, int64_t cols, uint64_t seed) {
  int64_t n = rows * cols;
  float *a = gpu_check_uniform(n, seed, 311, -1, 1), *b = gpu_check_uniform(n, seed, 312, -1, 1);
  float *s = gpu_check_uniform(rows, seed, 313, -1, 1), *y0 = gpu_check_uniform(n, seed, 314, -1, 1);
  float *r = mallocCheck((size_t)(rows ? rows : 1) * sizeof(float));
  float *dA = gpu_check_dev_guarded(a, n), *dB = gpu_check_dev_guarded(b, n);
  float *dS = gpu_check_dev_guarded(s, rows), *dR = gpu_check_dev_guarded(NULL, rows);
  float *dY = gpu_check_dev_guarded(y0, n);
  char name[96];
  // Double sums in a tree instead of in order, rounded to float: within 2 float ulp of |sum|
  // plus the cancellation of |a||b| terms at double precision (negligible).
  ew_row_dot_cpu(rows, cols, a, b, r);
  ew_row_dot_cuda(rows, cols, dA, dB, dR, 0);
  snprintf(name, sizeof name, "ew_row_dot %lldx%lld", (long long)rows, (long long)cols);
  gpu_check_cmp(st, name, dR, r, rows, 1e-12, 2.4e-7);
  ew_row_scale_add_cpu(rows, cols, s, a, y0);
  ew_row_scale_add_cuda(rows, cols, dS, dA, dY, 0);
  snprintf(name, sizeof name, "ew_row_scale_add %lldx%lld (accum)", (long long)rows, (long long)cols);
  gpu_check_cmp(st, name, dY, y0, n, 0, 0);
  cuda_free(dA), cuda_free(dB), cuda_free(dS), cuda_free(dR), cuda_free(dY);
  free(a), free(b), free(s), free(y0), free(r);
}

// Gather / scatter-add of k distinct indices into a map of n (the sparse RPN losses): exact.
static void check_gather_scatter(check_state *st, int64_t n, int64_t k, uint64_t seed) {
  float *src = gpu_check_uniform(n, seed, 341, -1, 1), *v = gpu_check_uniform(k, seed, 342, -1, 1);
  int64_t *idx = mallocCheck((size_t)(k ? k : 1) * sizeof(int64_t));
  for (int64_t i = 0; i < k; i++) idx[i] = (i * 7919 + 13) % n;  // distinct: k <= n, gcd(7919, n) = 1
  float *got = mallocCheck((size_t)(k ? k : 1) * sizeof(float));
  float *dS = gpu_check_dev_guarded(src, n), *dV = gpu_check_dev_guarded(v, k);
  float *dG = gpu_check_dev_guarded(NULL, k);
  int64_t *dI = cuda_alloc((size_t)(k ? k : 1) * sizeof(int64_t));
  cuda_upload(dI, idx, (size_t)k * sizeof(int64_t));
  char name[96];
  ew_gather_cpu(k, src, idx, got);
  ew_gather_cuda(k, dS, dI, dG, 0);
  snprintf(name, sizeof name, "ew_gather %lld of %lld", (long long)k, (long long)n);
  gpu_check_cmp(st, name, dG, got, k, 0, 0);
  ew_scatter_add_cpu(k, v, idx, src);
  ew_scatter_add_cuda(k, dV, dI, dS, 0);
  snprintf(name, sizeof name, "ew_scatter_add %lld into %lld", (long long)k, (long long)n);
  gpu_check_cmp(st, name, dS, src, n, 0, 0);
  cuda_free(dS), cuda_free(dV), cuda_free(dG), cuda_free(dI);
  free(src), free(v), free(idx), free(got);
}

// C = alpha op(A) op(B) + beta C with leading dimensions wider than the rows.
static void check_gemm(check_state *st, int ta, int tb, int64_t m, int64_t n, int64_t k,
                       uint64_t seed) {
  int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
  int64_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
  float *a = gpu_check_uniform(na, seed, 321, -1, 1), *b = gpu_check_uniform(nb, seed, 322, -1, 1);
  float *c = gpu_check_uniform(nc, seed, 323, -1, 1);
  float *dA = gpu_check_dev_guarded(a, na), *dB = gpu_check_dev_guarded(b, nb);
  float *dC = gpu_check_dev_guarded(c, nc);
  gemm_cpu(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c, ldc);
  gemm_cuda(ta, tb, m, n, k, 0.5f, dA, lda, dB, ldb, 0.25f, dC, ldc, 0);
  char name[96];
  snprintf(name, sizeof name, "gemm %c%c %lldx%lldx%lld", ta ? 'T' : 'N', tb ? 'T' : 'N',
           (long long)m, (long long)n, (long long)k);
  // |terms| <= 1, k of them: float summation in another order differs by <= k ulp(k) ~ 1e-7 k.
  gpu_check_cmp(st, name, dC, c, nc, 2e-7 * (double)k, 1e-5);
  cuda_free(dA), cuda_free(dB), cuda_free(dC);
  free(a), free(b), free(c);
}

static void check_resnet_units(check_state *st, int64_t n, int64_t c, int64_t h, int64_t w,
                               uint64_t seed) {
  int64_t hw = h * w, total = n * c * hw;
  float *x = gpu_check_uniform(total, seed, 331, -2, 2), *res = gpu_check_uniform(total, seed, 332, -1, 1);
  float *g = gpu_check_uniform(c, seed, 333, 0.5f, 1.5f), *be = gpu_check_uniform(c, seed, 334, -0.5f, 0.5f);
  float *rm = gpu_check_uniform(c, seed, 335, -0.2f, 0.2f), *rv = gpu_check_uniform(c, seed, 336, 0.5f, 2.0f);
  float *sc = mallocCheck((size_t)c * sizeof(float)), *sh = mallocCheck((size_t)c * sizeof(float));
  float *y = mallocCheck((size_t)total * sizeof(float));
  float *dG = gpu_check_dev_guarded(g, c), *dBe = gpu_check_dev_guarded(be, c);
  float *dRm = gpu_check_dev_guarded(rm, c), *dRv = gpu_check_dev_guarded(rv, c);
  float *dSc = gpu_check_dev_guarded(NULL, c), *dSh = gpu_check_dev_guarded(NULL, c);
  char name[96];
  // Fold in double, then one rounding: sqrt and the divide are correctly rounded on both: exact.
  batch_norm_fold(c, 1e-5f, g, be, rm, rv, sc, sh);
  batch_norm_fold_cuda(c, 1e-5f, dG, dBe, dRm, dRv, dSc, dSh, 0);
  snprintf(name, sizeof name, "batch_norm_fold c=%lld (scale)", (long long)c);
  gpu_check_cmp(st, name, dSc, sc, c, 0, 0);
  snprintf(name, sizeof name, "batch_norm_fold c=%lld (shift)", (long long)c);
  gpu_check_cmp(st, name, dSh, sh, c, 0, 0);
  float *dX = gpu_check_dev_guarded(x, total), *dRes = gpu_check_dev_guarded(res, total);
  float *dY = gpu_check_dev_guarded(NULL, total);
  cuda_upload(dSc, sc, (size_t)c * sizeof(float));
  cuda_upload(dSh, sh, (size_t)c * sizeof(float));
  for (int variant = 0; variant < 2; variant++) {
    affine_add_relu_forward_cpu(n, c, hw, x, sc, sh, variant ? res : NULL, variant, y);
    affine_add_relu_forward_cuda(n, c, hw, dX, dSc, dSh, variant ? dRes : NULL, variant, dY, 0);
    snprintf(name, sizeof name, "affine_add_relu %s %lldx%lldx%lldx%lld",
             variant ? "+res+relu" : "plain", (long long)n, (long long)c, (long long)h, (long long)w);
    gpu_check_cmp(st, name, dY, y, total, 0, 0);
  }
  // Parameter gradients: per-channel double sums in another order, then float: 2 ulp.
  float *dgam = gpu_check_uniform(c, seed, 337, -1, 1), *dbet = gpu_check_uniform(c, seed, 338, -1, 1);
  float *dDg = gpu_check_dev_guarded(dgam, c), *dDb = gpu_check_dev_guarded(dbet, c);
  bn_frozen_param_backward_cpu(n, c, hw, 1e-5f, res, x, rm, rv, dgam, dbet);
  bn_frozen_param_backward_cuda(n, c, hw, 1e-5f, dRes, dX, dRm, dRv, dDg, dDb, 0);
  snprintf(name, sizeof name, "bn_frozen_param_backward dgamma c=%lld", (long long)c);
  gpu_check_cmp(st, name, dDg, dgam, c, 1e-6, 2.4e-7);
  snprintf(name, sizeof name, "bn_frozen_param_backward dbeta c=%lld", (long long)c);
  gpu_check_cmp(st, name, dDb, dbet, c, 1e-6, 2.4e-7);
  // Stem max-pool: comparisons only (exact); backward gathers in the CPU's scatter order (exact).
  int64_t ho = max_pool3s2p1_out_size(h), wo = max_pool3s2p1_out_size(w), np = n * c * ho * wo;
  if (total > 0) x[0] = NAN;  // NaN wins its windows, as in PyTorch
  cuda_upload(dX, x, (size_t)total * sizeof(float));
  float *py = mallocCheck((size_t)(np ? np : 1) * sizeof(float));
  int64_t *am = mallocCheck((size_t)(np ? np : 1) * sizeof(int64_t));
  float *dPy = gpu_check_dev_guarded(NULL, np);
  int64_t *dAm = cuda_alloc((size_t)(np ? np : 1) * sizeof(int64_t));
  max_pool3s2p1_forward_cpu(n * c, h, w, x, py, am);
  max_pool3s2p1_forward_cuda(n * c, h, w, dX, dPy, dAm, 0);
  snprintf(name, sizeof name, "max_pool3s2p1_forward %lldx%lld (NaN)", (long long)h, (long long)w);
  float *hp = gpu_check_host_copy(dPy, np);
  int same = 1;  // NaN == NaN here: compare bit patterns
  for (int64_t i = 0; i < np; i++) same &= memcmp(&hp[i], &py[i], sizeof(float)) == 0;
  for (int64_t i = np; i < np + GUARD; i++) same &= hp[i] == SENTINEL;
  st->total++, st->failures += !same;
  printf("%-40s %10lld %11s %11s %17s %s\n", name, (long long)np, "-", "-", "bitwise",
         same ? "pass" : "FAIL");
  free(hp);
  cuda_upload(dAm, am, (size_t)np * sizeof(int64_t));
  float *dyp = gpu_check_uniform(np, seed, 339, -1, 1), *dx = gpu_check_uniform(total, seed, 340, -1, 1);
  float *dDyp = gpu_check_dev_guarded(dyp, np), *dDx = gpu_check_dev_guarded(dx, total);
  max_pool3s2p1_backward_cpu(n * c, h, w, am, dyp, dx);
  max_pool3s2p1_backward_cuda(n * c, h, w, dAm, dDyp, dDx, 0);
  snprintf(name, sizeof name, "max_pool3s2p1_backward %lldx%lld (accum)", (long long)h, (long long)w);
  gpu_check_cmp(st, name, dDx, dx, total, 0, 0);
  cuda_free(dX), cuda_free(dRes), cuda_free(dY), cuda_free(dG), cuda_free(dBe), cuda_free(dRm);
  cuda_free(dRv), cuda_free(dSc), cuda_free(dSh), cuda_free(dDg), cuda_free(dDb), cuda_free(dPy);
  cuda_free(dAm), cuda_free(dDyp), cuda_free(dDx);
  free(x), free(res), free(g), free(be), free(rm), free(rv), free(sc), free(sh), free(y);
  free(dgam), free(dbet), free(py), free(am), free(dyp), free(dx);
}

void gpu_check_ops3(check_state *st, uint64_t seed) {
  const int64_t sizes[] = {1, 3, 1000, 1 << 20};
  for (int i = 0; i < 4; i++) check_elementwise(st, sizes[i], seed);
  check_rows(st, 1, 1, seed);
  check_rows(st, 3, 1000, seed);
  check_rows(st, 257, 4097, seed);
  check_gather_scatter(st, 1, 1, seed);
  check_gather_scatter(st, 262139, 2048, seed);  // a prime above 7919: distinct indices
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) check_gemm(st, ta, tb, 37, 19, 53, seed);
  check_gemm(st, 0, 1, 1, 1, 1, seed);
  check_gemm(st, 0, 0, 512, 256, 768, seed);
  check_resnet_units(st, 1, 3, 1, 1, seed);
  check_resnet_units(st, 3, 5, 7, 9, seed);
  check_resnet_units(st, 2, 64, 56, 43, seed);
}
#endif
