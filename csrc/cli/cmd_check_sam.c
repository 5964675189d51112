// GPU check, SAM adapter and fusion ops: the 2x2 stride-2 transposed conv (SimpleFPN), DyReLU and
// the scale-aware attention (DyHead), and ew_div (the fusion modules' sum / terms). Each CUDA
// twin runs on random inputs with odd shapes (batch 1 and 3, non-square, hw = 1, a reduction
// longer than one chunk) and is compared with its CPU twin; device buffers carry guard
// sentinels. Backward passes start from pre-filled random gradients (accumulate semantics), some
// with NULL gradient pointers, and get the CPU's saved forward state so that each row tests one
// kernel. Tolerances per op with their reason; "exact" means the kernel repeats the CPU's float
// operations in the same order (see the kernel files).
#ifdef MASA_HAVE_CUDA
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "kernels.h"
#include "ops/elementwise.h"
#include "ops/ops.h"
#include "ops/scale_attn.h"

// ---- conv_transpose2x2 ----

static void check_convt(check_state *st, int64_t n, int64_t ci, int64_t h, int64_t w, int64_t co,
                        int with_bias, int grads_mask, uint64_t seed) {
  const int64_t nx = n * ci * h * w, nw = ci * co * 4, ny = n * co * 4 * h * w;
  float *x = gpu_check_uniform(nx, seed, 201, -1, 1), *wt = gpu_check_uniform(nw, seed, 202, -1, 1);
  float *bias = gpu_check_uniform(co, seed, 203, -1, 1), *dy = gpu_check_uniform(ny, seed, 204, -1, 1);
  float *dx0 = gpu_check_uniform(nx, seed, 205, -1, 1), *dw0 = gpu_check_uniform(nw, seed, 206, -1, 1);
  float *db0 = gpu_check_uniform(co, seed, 207, -1, 1);
  float *y = mallocCheck((size_t)ny * sizeof(float));
  float *dX = gpu_check_dev_guarded(x, nx), *dW = gpu_check_dev_guarded(wt, nw);
  float *dB = gpu_check_dev_guarded(bias, co), *dY = gpu_check_dev_guarded(NULL, ny);
  float *dDY = gpu_check_dev_guarded(dy, ny);
  char name[128], shape[64];
  snprintf(shape, sizeof shape, "n%lld %lldx%lldx%lld->%lld", (long long)n, (long long)ci,
           (long long)h, (long long)w, (long long)co);

  // Forward: a GEMM over c_in terms of |x w| <= 1 in cuBLAS's order vs OpenBLAS's: float
  // rounding of a sum of <= c_in terms, 1e-5 abs + 1e-5 rel.
  conv_transpose2x2_forward_cpu(n, ci, h, w, co, x, wt, with_bias ? bias : NULL, y);
  conv_transpose2x2_forward_cuda(n, ci, h, w, co, dX, dW, with_bias ? dB : NULL, dY, 0);
  snprintf(name, sizeof name, "convt2x2_forward %s%s", shape, with_bias ? "" : " nobias");
  gpu_check_cmp(st, name, dY, y, ny, 1e-5, 1e-5);

  // Backward: dx sums 4 c_out terms, dwt n h w terms (GEMMs, different order): 1e-5 abs per
  // ~100 terms, 1e-5 rel. dbias: double sums then one float add: 1e-6.
  int gx = grads_mask & 1, gw = grads_mask & 2, gb = grads_mask & 4;
  float *dx = gpu_check_copy(dx0, nx), *dw = gpu_check_copy(dw0, nw), *db = gpu_check_copy(db0, co);
  conv_transpose2x2_backward_cpu(n, ci, h, w, co, x, wt, dy, gx ? dx : NULL, gw ? dw : NULL,
                                 gb ? db : NULL);
  float *dDX = gpu_check_dev_guarded(dx0, nx), *dDW = gpu_check_dev_guarded(dw0, nw);
  float *dDB = gpu_check_dev_guarded(db0, co);
  conv_transpose2x2_backward_cuda(n, ci, h, w, co, dX, dW, dDY, gx ? dDX : NULL, gw ? dDW : NULL,
                                  gb ? dDB : NULL, 0);
  double k = (double)(n * h * w) / 100.0 + 1.0;
  snprintf(name, sizeof name, "convt2x2_backward dx %s%s", shape, gx ? "" : " (NULL)");
  gpu_check_cmp(st, name, dDX, dx, nx, 1e-5, 1e-5);
  snprintf(name, sizeof name, "convt2x2_backward dwt %s%s", shape, gw ? "" : " (NULL)");
  gpu_check_cmp(st, name, dDW, dw, nw, 1e-5 * k, 1e-5);
  snprintf(name, sizeof name, "convt2x2_backward dbias %s%s", shape, gb ? "" : " (NULL)");
  gpu_check_cmp(st, name, dDB, db, co, 1e-6, 1e-6);

  cuda_free(dX), cuda_free(dW), cuda_free(dB), cuda_free(dY), cuda_free(dDY);
  cuda_free(dDX), cuda_free(dDW), cuda_free(dDB);
  free(x), free(wt), free(bias), free(dy), free(dx0), free(dw0), free(db0), free(y);
  free(dx), free(dw), free(db);
}

// ---- DyReLU ----

static void check_dyrelu(check_state *st, int64_t n, int64_t c, int64_t hw, int64_t cm,
                         int with_bias, int with_grads, uint64_t seed) {
  const int64_t nx = n * c * hw, ncache = dyrelu_cache_size(n, c, cm);
  float *x = gpu_check_uniform(nx, seed, 301, -2, 2), *w1 = gpu_check_uniform(cm * c, seed, 302, -1, 1);
  float *b1 = gpu_check_uniform(cm, seed, 303, -0.5f, 0.5f), *w2 = gpu_check_uniform(4 * c * cm, seed, 304, -1, 1);
  float *b2 = gpu_check_uniform(4 * c, seed, 305, -0.5f, 0.5f), *dy = gpu_check_uniform(nx, seed, 306, -1, 1);
  float *dx0 = gpu_check_uniform(nx, seed, 307, -1, 1), *dw10 = gpu_check_uniform(cm * c, seed, 308, -1, 1);
  float *db10 = gpu_check_uniform(cm, seed, 309, -1, 1), *dw20 = gpu_check_uniform(4 * c * cm, seed, 310, -1, 1);
  float *db20 = gpu_check_uniform(4 * c, seed, 311, -1, 1);
  float *y = mallocCheck((size_t)nx * sizeof(float));
  float *cache = mallocCheck((size_t)ncache * sizeof(float));
  float *dX = gpu_check_dev_guarded(x, nx), *dW1 = gpu_check_dev_guarded(w1, cm * c);
  float *dB1 = gpu_check_dev_guarded(b1, cm), *dW2 = gpu_check_dev_guarded(w2, 4 * c * cm);
  float *dB2 = gpu_check_dev_guarded(b2, 4 * c), *dY = gpu_check_dev_guarded(NULL, nx);
  float *dC = gpu_check_dev_guarded(NULL, ncache), *dDY = gpu_check_dev_guarded(dy, nx);
  char name[128], shape[64];
  snprintf(shape, sizeof shape, "n%lld c%lld hw%lld mid%lld%s", (long long)n, (long long)c,
           (long long)hw, (long long)cm, with_bias ? "" : " nobias");

  // Forward: the pooled means differ from the CPU's by double rounding (tree vs sequential sum),
  // everything after repeats the CPU's operations: 1e-6 abs + 1e-6 rel (coefficients of O(1),
  // x of O(2)); the cache (p | h | z | coef) the same.
  dyrelu_forward_cpu(n, c, hw, cm, x, w1, with_bias ? b1 : NULL, w2, with_bias ? b2 : NULL, y,
                     cache);
  dyrelu_forward_cuda(n, c, hw, cm, dX, dW1, with_bias ? dB1 : NULL, dW2, with_bias ? dB2 : NULL,
                      dY, dC, 0);
  snprintf(name, sizeof name, "dyrelu_forward y %s", shape);
  gpu_check_cmp(st, name, dY, y, nx, 1e-6, 1e-6);
  snprintf(name, sizeof name, "dyrelu_forward cache %s", shape);
  gpu_check_cmp(st, name, dC, cache, ncache, 1e-6, 1e-6);

  // Backward from the CPU's cache: the coefficient gradients are double block-tree sums (vs
  // sequential), the rest repeats the CPU's double operations: within double rounding before
  // the final float conversions, 1e-6 abs + 1e-6 rel.
  cuda_upload(dC, cache, (size_t)ncache * sizeof(float));
  float *dx = gpu_check_copy(dx0, nx), *dw1 = gpu_check_copy(dw10, cm * c), *db1 = gpu_check_copy(db10, cm);
  float *dw2 = gpu_check_copy(dw20, 4 * c * cm), *db2 = gpu_check_copy(db20, 4 * c);
  dyrelu_backward_cpu(n, c, hw, cm, x, w1, w2, cache, dy, dx, with_grads ? dw1 : NULL,
                      with_grads ? db1 : NULL, with_grads ? dw2 : NULL, with_grads ? db2 : NULL);
  float *dDX = gpu_check_dev_guarded(dx0, nx), *dDW1 = gpu_check_dev_guarded(dw10, cm * c);
  float *dDB1 = gpu_check_dev_guarded(db10, cm), *dDW2 = gpu_check_dev_guarded(dw20, 4 * c * cm);
  float *dDB2 = gpu_check_dev_guarded(db20, 4 * c);
  dyrelu_backward_cuda(n, c, hw, cm, dX, dW1, dW2, dC, dDY, dDX, with_grads ? dDW1 : NULL,
                       with_grads ? dDB1 : NULL, with_grads ? dDW2 : NULL,
                       with_grads ? dDB2 : NULL, 0);
  const char *tag = with_grads ? "" : " (NULL)";
  snprintf(name, sizeof name, "dyrelu_backward dx %s", shape);
  gpu_check_cmp(st, name, dDX, dx, nx, 1e-6, 1e-6);
  snprintf(name, sizeof name, "dyrelu_backward dw1 %s%s", shape, tag);
  gpu_check_cmp(st, name, dDW1, dw1, cm * c, 1e-6, 1e-6);
  snprintf(name, sizeof name, "dyrelu_backward db1 %s%s", shape, tag);
  gpu_check_cmp(st, name, dDB1, db1, cm, 1e-6, 1e-6);
  snprintf(name, sizeof name, "dyrelu_backward dw2 %s%s", shape, tag);
  gpu_check_cmp(st, name, dDW2, dw2, 4 * c * cm, 1e-6, 1e-6);
  snprintf(name, sizeof name, "dyrelu_backward db2 %s%s", shape, tag);
  gpu_check_cmp(st, name, dDB2, db2, 4 * c, 1e-6, 1e-6);

  cuda_free(dX), cuda_free(dW1), cuda_free(dB1), cuda_free(dW2), cuda_free(dB2), cuda_free(dY);
  cuda_free(dC), cuda_free(dDY), cuda_free(dDX), cuda_free(dDW1), cuda_free(dDB1);
  cuda_free(dDW2), cuda_free(dDB2);
  free(x), free(w1), free(b1), free(w2), free(b2), free(dy), free(dx0), free(dw10), free(db10);
  free(dw20), free(db20), free(y), free(cache), free(dx), free(dw1), free(db1), free(dw2);
  free(db2);
}

// ---- scale-aware attention ----

static void check_scale_attn(check_state *st, int64_t n, int64_t c, int64_t hw, float bias_v,
                             int with_df, uint64_t seed) {
  const int64_t nf = n * c * hw;
  float *f = gpu_check_uniform(nf, seed, 401, -1, 2), *w = gpu_check_uniform(c, seed, 402, -1, 1);
  float bias[1] = {bias_v};
  float *g = gpu_check_uniform(nf, seed, 403, -1, 1), *df0 = gpu_check_uniform(nf, seed, 404, -1, 1);
  float *dw0 = gpu_check_uniform(c, seed, 405, -1, 1), db0[1] = {0.125f};
  float *p = mallocCheck((size_t)(n * c) * sizeof(float));
  float *z = mallocCheck((size_t)n * sizeof(float)), *a = mallocCheck((size_t)n * sizeof(float));
  float *dF = gpu_check_dev_guarded(f, nf), *dW = gpu_check_dev_guarded(w, c);
  float *dBias = gpu_check_dev_guarded(bias, 1), *dP = gpu_check_dev_guarded(NULL, n * c);
  float *dZ = gpu_check_dev_guarded(NULL, n), *dA = gpu_check_dev_guarded(NULL, n);
  float *dG = gpu_check_dev_guarded(g, nf);
  char name[128], shape[64];
  snprintf(shape, sizeof shape, "n%lld c%lld hw%lld b%.1f", (long long)n, (long long)c,
           (long long)hw, (double)bias_v);

  // Forward: GAP in double (tree vs sequential: double rounding), z in the CPU's order, a from
  // z by float ops: 1e-6 abs + 1e-6 rel.
  scale_attn_forward_cpu(n, c, hw, f, w, bias, p, z, a);
  scale_attn_forward_cuda(n, c, hw, dF, dW, dBias, dP, dZ, dA, 0);
  snprintf(name, sizeof name, "scale_attn_forward p %s", shape);
  gpu_check_cmp(st, name, dP, p, n * c, 1e-6, 1e-6);
  snprintf(name, sizeof name, "scale_attn_forward z %s", shape);
  gpu_check_cmp(st, name, dZ, z, n, 1e-6, 1e-6);
  snprintf(name, sizeof name, "scale_attn_forward a %s", shape);
  gpu_check_cmp(st, name, dA, a, n, 1e-6, 1e-6);

  // Backward from the CPU's p, z, a: the per-image dot product is a chunked double tree sum
  // (vs sequential), then the CPU's operations: 1e-6 abs + 1e-6 rel.
  cuda_upload(dP, p, (size_t)(n * c) * sizeof(float));
  cuda_upload(dZ, z, (size_t)n * sizeof(float));
  cuda_upload(dA, a, (size_t)n * sizeof(float));
  float *df = gpu_check_copy(df0, nf), *dw = gpu_check_copy(dw0, c), db[1] = {db0[0]};
  scale_attn_backward_cpu(n, c, hw, f, p, z, a, w, g, with_df ? df : NULL, dw, db);
  float *dDF = gpu_check_dev_guarded(df0, nf), *dDW = gpu_check_dev_guarded(dw0, c);
  float *dDB = gpu_check_dev_guarded(db0, 1);
  scale_attn_backward_cuda(n, c, hw, dF, dP, dZ, dA, dW, dG, with_df ? dDF : NULL, dDW, dDB, 0);
  snprintf(name, sizeof name, "scale_attn_backward df %s%s", shape, with_df ? "" : " (NULL)");
  gpu_check_cmp(st, name, dDF, df, nf, 1e-6, 1e-6);
  snprintf(name, sizeof name, "scale_attn_backward dw %s", shape);
  gpu_check_cmp(st, name, dDW, dw, c, 1e-6, 1e-6);
  snprintf(name, sizeof name, "scale_attn_backward db %s", shape);
  gpu_check_cmp(st, name, dDB, db, 1, 1e-6, 1e-6);

  cuda_free(dF), cuda_free(dW), cuda_free(dBias), cuda_free(dP), cuda_free(dZ), cuda_free(dA);
  cuda_free(dG), cuda_free(dDF), cuda_free(dDW), cuda_free(dDB);
  free(f), free(w), free(g), free(df0), free(dw0), free(p), free(z), free(a), free(df), free(dw);
}

// ---- ew_div ----

static void check_ew_div(check_state *st, int64_t n, float d, uint64_t seed) {
  float *y = gpu_check_uniform(n, seed, 501, -100, 100);
  float *dY = gpu_check_dev_guarded(y, n);
  ew_div_cpu(n, d, y);
  ew_div_cuda(n, d, dY, 0);
  char name[96];
  // One correctly rounded division per element (__fdiv_rn): exact.
  snprintf(name, sizeof name, "ew_div n=%lld / %g", (long long)n, (double)d);
  gpu_check_cmp(st, name, dY, y, n, 0, 0);
  cuda_free(dY);
  free(y);
}

void gpu_check_sam(check_state *st, uint64_t seed) {
  // ConvTranspose 2x2/2: batch 1 and 3, non-square, c off the GEMM tile sizes; grads mask
  // (1 dx, 2 dwt, 4 dbias): all, and each alone with the others NULL.
  check_convt(st, 1, 5, 3, 7, 6, 1, 7, seed);
  check_convt(st, 3, 33, 9, 4, 17, 0, 7, seed);
  check_convt(st, 2, 16, 1, 1, 8, 1, 1, seed);
  check_convt(st, 2, 12, 5, 6, 20, 1, 2, seed);
  check_convt(st, 1, 7, 4, 3, 9, 1, 4, seed);
  // DyReLU: hw 1, batch 3 with odd sizes, a larger plane (block reductions over several rounds).
  check_dyrelu(st, 1, 8, 1, 2, 1, 1, seed);
  check_dyrelu(st, 3, 12, 37, 3, 1, 1, seed);
  check_dyrelu(st, 2, 20, 1100, 5, 0, 1, seed);
  check_dyrelu(st, 2, 16, 45, 4, 1, 0, seed);
  // Scale attention: z inside (0, 3) (gradient flows), z <= 0 (ReLU blocks it), one image,
  // and c * hw over one 65536-element chunk.
  check_scale_attn(st, 1, 8, 1, 0.3f, 1, seed);
  check_scale_attn(st, 3, 16, 45, 0.3f, 1, seed);
  check_scale_attn(st, 3, 16, 45, -4.0f, 1, seed);
  check_scale_attn(st, 2, 16, 5000, 0.3f, 1, seed);
  check_scale_attn(st, 2, 8, 33, 0.3f, 0, seed);
  check_ew_div(st, 1, 3.0f, seed);
  check_ew_div(st, 100003, 3.0f, seed);
  check_ew_div(st, 4097, 2.0f, seed);
}

#endif
