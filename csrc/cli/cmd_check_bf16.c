// `masa check`, bf16 group: every GEMM-based CUDA op (linear, conv2d, DCN forward and backward,
// gemm, the ViT batched GEMM) with the process in bf16 GEMM precision (kernels/precision.cu:
// operands rounded to bfloat16, float32 accumulation and output) against its FP32 CPU twin;
// then FP32 is restored and checked to be back. Gradient buffers start from random values
// (backward accumulates); every device output is followed by guard sentinels.
//
// Tolerances, from bfloat16's 8-bit significand (unit roundoff u = 2^-8, round to nearest even):
// - Per element (rigorous): an output is (a linear map of) sums of products a_i b_i. Rounding
//   both operands gives bf16(a) bf16(b) = a b (1 + d), |d| <= 2u + u^2, and that product is exact
//   in float32; float32 accumulation of K terms adds <= K 2^-24 sum|terms| on the GPU and again
//   on the CPU. So |got - ref| <= c(K) B with c(K) = 2u + u^2 + 2.1 K 2^-24 and
//   B = sum_i |a_i b_i| (+ |bias|, + |start value|). B is computed by the CPU twin itself on the
//   absolute values of its inputs (for DCN, mask >= 0 and bilinear weights >= 0, so the op on
//   |x| bounds |col|). K counts every float32 addition into the element, generously.
//   DCN's offset gradient is a signed difference of samples times dcol: no per-element bound
//   of this form, so it has the statistical bound only.
// - Relative L2 (statistical, tensors of >= 256 elements): with independent round-to-nearest
//   errors of relative size <= u / sqrt(3) rms per operand and zero-mean products,
//   ||got - ref|| / ||ref|| ~ sqrt(2/3) u = 0.82 * 2^-8 at most (0.58 * 2^-8 for uniform
//   mantissas); the bound is 2^-7 (2.4x margin).
// - Outputs with no start value ("fresh") must also be at least 2^-14 away from the FP32 result
//   in relative L2: FP32 GEMMs would land at ~1e-7, so this proves the bf16 path really ran.
#ifdef MASA_HAVE_CUDA
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gpu_check.h"
#include "core/check.h"
#include "kernels.h"
#include "ops/conv.h"
#include "ops/dcn.h"
#include "ops/gemm.h"
#include "ops/vit_ops.h"

#define BF16_U (1.0 / 256.0)         // 2^-8: unit roundoff of bfloat16 (8-bit significand)
#define BF16_L2_MAX (1.0 / 128.0)    // 2^-7
#define BF16_L2_ENGAGED (1.0 / 16384.0)  // 2^-14
#define BF16_L2_MIN_N 256

static double bf16_coef(int64_t k) {
  return 2.0 * BF16_U + BF16_U * BF16_U + 2.1 * (double)k * ldexp(1.0, -24);
}

static float *abs_copy(const float *p, int64_t n) {
  float *q = gpu_check_copy(p, n);
  for (int64_t i = 0; i < n; i++) q[i] = fabsf(q[i]);
  return q;
}

// One table row: device result dev (n + guard) against the FP32 CPU reference ref. bound (or
// NULL): |got - ref| <= c(k) bound[i] per element. 'max rel' prints the relative L2 error.
static void cmp_bf16(check_state *st, const char *name, const float *dev, const float *ref,
                     const float *bound, int64_t n, int64_t k, int fresh) {
  float *got = gpu_check_host_copy(dev, n);
  const double c = bf16_coef(k);
  double max_abs = 0, num = 0, den = 0;
  int ok = 1, guard_ok = 1;
  for (int64_t i = 0; i < n; i++) {
    const double e = fabs((double)got[i] - (double)ref[i]);
    if (bound && !(e <= c * (double)bound[i])) ok = 0;  // NaN fails too
    if (e > max_abs || e != e) max_abs = e;
    num += e * e, den += (double)ref[i] * (double)ref[i];
  }
  for (int64_t i = n; i < n + GUARD; i++)
    if (got[i] != SENTINEL) guard_ok = 0;
  const double rel = den > 0 ? sqrt(num / den) : sqrt(num);
  const char *why = "";
  if (n >= BF16_L2_MIN_N && !(rel <= BF16_L2_MAX)) ok = 0, why = " (relative L2 > 2^-7)";
  if (n >= BF16_L2_MIN_N && fresh && !(rel >= BF16_L2_ENGAGED))
    ok = 0, why = " (FP32-exact: bf16 path not taken)";
  char tol[32];
  if (bound) snprintf(tol, sizeof tol, "%.2e*B,L2", c);
  else snprintf(tol, sizeof tol, "L2<2^-7 only");
  st->total++;
  if (!ok || !guard_ok) st->failures++;
  printf("%-40s %10lld %11.3g %11.3g %17s %s%s%s\n", name, (long long)n, max_abs, rel, tol,
         ok && guard_ok ? "pass" : "FAIL", guard_ok ? "" : " (guard overwritten)", ok ? "" : why);
  free(got);
}

static void check_linear_bf16(check_state *st, int64_t n, int64_t in, int64_t out, uint64_t seed) {
  float *x = gpu_check_random(n * in, seed, 710), *w = gpu_check_random(out * in, seed, 711);
  float *b = gpu_check_random(out, seed, 712), *dy = gpu_check_random(n * out, seed, 713);
  float *dx0 = gpu_check_random(n * in, seed, 714), *dw0 = gpu_check_random(out * in, seed, 715);
  float *ax = abs_copy(x, n * in), *aw = abs_copy(w, out * in), *ab = abs_copy(b, out);
  float *ady = abs_copy(dy, n * out);
  float *y = callocCheck((size_t)(n * out + 1), sizeof(float));
  float *by = callocCheck((size_t)(n * out + 1), sizeof(float));
  float *dx = gpu_check_copy(dx0, n * in), *dw = gpu_check_copy(dw0, out * in);
  float *bdx = abs_copy(dx0, n * in), *bdw = abs_copy(dw0, out * in);
  linear_forward_cpu(n, in, out, x, w, b, y);
  linear_forward_cpu(n, in, out, ax, aw, ab, by);
  linear_backward_cpu(n, in, out, x, w, dy, dx, dw, NULL);
  linear_backward_cpu(n, in, out, ax, aw, ady, bdx, bdw, NULL);
  float *dX = gpu_check_dev_guarded(x, n * in), *dW = gpu_check_dev_guarded(w, out * in);
  float *dB = gpu_check_dev_guarded(b, out), *dY = gpu_check_dev_guarded(NULL, n * out);
  float *ddY = gpu_check_dev_guarded(dy, n * out), *ddX = gpu_check_dev_guarded(dx0, n * in);
  float *ddW = gpu_check_dev_guarded(dw0, out * in);
  linear_forward_cuda(n, in, out, dX, dW, dB, dY, 0);
  linear_backward_cuda(n, in, out, dX, dW, ddY, ddX, ddW, NULL, 0);
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "%lldx%lld->%lld", (long long)n, (long long)in, (long long)out);
  snprintf(name, sizeof name, "bf16 linear fwd %s", tag);
  cmp_bf16(st, name, dY, y, by, n * out, in + 1, 1);
  snprintf(name, sizeof name, "bf16 linear bwd dx %s", tag);
  cmp_bf16(st, name, ddX, dx, bdx, n * in, out + 1, 0);
  snprintf(name, sizeof name, "bf16 linear bwd dw %s", tag);
  cmp_bf16(st, name, ddW, dw, bdw, out * in, n + 1, 0);
  cuda_free(dX), cuda_free(dW), cuda_free(dB), cuda_free(dY), cuda_free(ddY), cuda_free(ddX);
  cuda_free(ddW);
  free(x), free(w), free(b), free(dy), free(dx0), free(dw0), free(ax), free(aw), free(ab);
  free(ady), free(y), free(by), free(dx), free(dw), free(bdx), free(bdw);
}

static void check_conv_bf16(check_state *st, conv2d_desc d, uint64_t seed) {
  const int64_t ho = conv2d_out_h(&d), wo = conv2d_out_w(&d);
  const int64_t cin_g = d.c_in / d.groups, cout_g = d.c_out / d.groups;
  const int64_t nx = d.n * d.c_in * d.h * d.w, nw = d.c_out * cin_g * d.kh * d.kw;
  const int64_t ny = d.n * d.c_out * ho * wo;
  float *x = gpu_check_random(nx, seed, 720), *wt = gpu_check_random(nw, seed, 721);
  float *b = gpu_check_random(d.c_out, seed, 722), *dy = gpu_check_random(ny, seed, 723);
  float *dx0 = gpu_check_random(nx, seed, 724), *dw0 = gpu_check_random(nw, seed, 725);
  float *ax = abs_copy(x, nx), *aw = abs_copy(wt, nw), *ab = abs_copy(b, d.c_out);
  float *ady = abs_copy(dy, ny);
  float *y = callocCheck((size_t)(ny + 1), sizeof(float));
  float *by = callocCheck((size_t)(ny + 1), sizeof(float));
  float *dx = gpu_check_copy(dx0, nx), *dw = gpu_check_copy(dw0, nw);
  float *bdx = abs_copy(dx0, nx), *bdw = abs_copy(dw0, nw);
  conv2d_forward_cpu(&d, x, wt, b, y);
  conv2d_forward_cpu(&d, ax, aw, ab, by);
  conv2d_backward_cpu(&d, x, wt, dy, dx, dw, NULL);
  conv2d_backward_cpu(&d, ax, aw, ady, bdx, bdw, NULL);
  float *dX = gpu_check_dev_guarded(x, nx), *dW = gpu_check_dev_guarded(wt, nw);
  float *dB = gpu_check_dev_guarded(b, d.c_out), *dY = gpu_check_dev_guarded(NULL, ny);
  float *ddY = gpu_check_dev_guarded(dy, ny), *ddX = gpu_check_dev_guarded(dx0, nx);
  float *ddW = gpu_check_dev_guarded(dw0, nw);
  conv2d_forward_cuda(&d, dX, dW, dB, dY, 0);
  conv2d_backward_cuda(&d, dX, dW, ddY, ddX, ddW, NULL, 0);
  char tag[80], name[128];
  snprintf(tag, sizeof tag, "n%lld %lldx%lld k%lldx%lld s%lld d%lld g%lld", (long long)d.n,
           (long long)d.h, (long long)d.w, (long long)d.kh, (long long)d.kw, (long long)d.stride_h,
           (long long)d.dil_h, (long long)d.groups);
  // Terms per element: forward cin_g*kh*kw products + bias; dx: cout_g*kh*kw (GEMM, then the
  // col2im tap sum) + start; dw: n*ho*wo (GEMMs accumulating with beta = 1) + start.
  snprintf(name, sizeof name, "bf16 conv2d fwd %s", tag);
  cmp_bf16(st, name, dY, y, by, ny, cin_g * d.kh * d.kw + 1, 1);
  snprintf(name, sizeof name, "bf16 conv2d bwd dx %s", tag);
  cmp_bf16(st, name, ddX, dx, bdx, nx, cout_g * d.kh * d.kw + 1, 0);
  snprintf(name, sizeof name, "bf16 conv2d bwd dw %s", tag);
  cmp_bf16(st, name, ddW, dw, bdw, nw, d.n * ho * wo + 1, 0);
  cuda_free(dX), cuda_free(dW), cuda_free(dB), cuda_free(dY), cuda_free(ddY), cuda_free(ddX);
  cuda_free(ddW);
  free(x), free(wt), free(b), free(dy), free(dx0), free(dw0), free(ax), free(aw), free(ab);
  free(ady), free(y), free(by), free(dx), free(dw), free(bdx), free(bdw);
}

// DCN, contiguous offsets (n, 18, ho, wo) scaled by off_scale (many samples leave the image) and
// masks (n, 9, ho, wo) in [0, 1).
static void check_dcn_bf16(check_state *st, int64_t n, int64_t c_in, int64_t h, int64_t w,
                           int64_t c_out, int64_t stride, int64_t pad, int64_t dil, float off_scale,
                           uint64_t seed) {
  const dcn_desc d = dcn_make(n, c_in, h, w, c_out, 3, stride, pad, dil);
  const int64_t hw = d.ho * d.wo, taps = 9, K = c_in * taps;
  const int64_t nx = n * c_in * h * w, nw = c_out * K, ny = n * c_out * hw;
  const int64_t no = n * 2 * taps * hw, nm = n * taps * hw;
  float *off = gpu_check_random(no, seed, 730), *msk = gpu_check_uniform(nm, seed, 731, 0.0f, 1.0f);
  for (int64_t i = 0; i < no; i++) off[i] *= off_scale;
  float *x = gpu_check_random(nx, seed, 732), *wt = gpu_check_random(nw, seed, 733);
  float *b = gpu_check_random(c_out, seed, 734), *dy = gpu_check_random(ny, seed, 735);
  float *dx0 = gpu_check_random(nx, seed, 736), *dw0 = gpu_check_random(nw, seed, 737);
  float *do0 = gpu_check_random(no, seed, 738), *dm0 = gpu_check_random(nm, seed, 739);
  float *ax = abs_copy(x, nx), *aw = abs_copy(wt, nw), *ab = abs_copy(b, c_out);
  float *ady = abs_copy(dy, ny);
  float *y = callocCheck((size_t)(ny + 1), sizeof(float));
  float *by = callocCheck((size_t)(ny + 1), sizeof(float));
  float *dx = gpu_check_copy(dx0, nx), *dw = gpu_check_copy(dw0, nw);
  float *doff = gpu_check_copy(do0, no), *dm = gpu_check_copy(dm0, nm);
  float *bdx = abs_copy(dx0, nx), *bdw = abs_copy(dw0, nw), *bdm = abs_copy(dm0, nm);
  dcn_forward_cpu(&d, x, off, msk, wt, b, y);
  dcn_forward_cpu(&d, ax, off, msk, aw, ab, by);
  dcn_backward_cpu(&d, x, off, msk, wt, dy, dx, doff, dm, dw, NULL);
  dcn_backward_cpu(&d, ax, off, msk, aw, ady, bdx, NULL, bdm, bdw, NULL);
  float *dX = gpu_check_dev_guarded(x, nx), *dO = gpu_check_dev_guarded(off, no);
  float *dM = gpu_check_dev_guarded(msk, nm), *dW = gpu_check_dev_guarded(wt, nw);
  float *dB = gpu_check_dev_guarded(b, c_out), *dY = gpu_check_dev_guarded(NULL, ny);
  float *ddY = gpu_check_dev_guarded(dy, ny), *ddX = gpu_check_dev_guarded(dx0, nx);
  float *ddW = gpu_check_dev_guarded(dw0, nw), *ddO = gpu_check_dev_guarded(do0, no);
  float *ddM = gpu_check_dev_guarded(dm0, nm);
  dcn_forward_cuda(&d, dX, dO, dM, dW, dB, dY, 0);
  dcn_backward_cuda(&d, dX, dO, dM, dW, ddY, ddX, ddO, ddM, ddW, NULL, 0);
  char tag[64], name[96];
  snprintf(tag, sizeof tag, "n%lld %lldx%lld c%lld->%lld s%lld d%lld", (long long)n, (long long)h,
           (long long)w, (long long)c_in, (long long)c_out, (long long)stride, (long long)dil);
  // Terms per element (+16: the float32 im2col samples are computed in another order on each
  // side): forward K + bias; dx: c_out per dcol entry, then up to 4 corners x 9 taps x hw
  // positions scattered (atomics) + start; dmask: c_out per dcol entry, c_in channels + start;
  // dweight: n*hw positions (GEMMs accumulating with beta = 1) + start.
  snprintf(name, sizeof name, "bf16 dcn fwd %s", tag);
  cmp_bf16(st, name, dY, y, by, ny, K + 1 + 16, 1);
  snprintf(name, sizeof name, "bf16 dcn bwd dx %s", tag);
  cmp_bf16(st, name, ddX, dx, bdx, nx, c_out + 4 * taps * hw + 1 + 16, 0);
  snprintf(name, sizeof name, "bf16 dcn bwd doffset %s", tag);
  cmp_bf16(st, name, ddO, doff, NULL, no, c_out + c_in + 1 + 16, 0);
  snprintf(name, sizeof name, "bf16 dcn bwd dmask %s", tag);
  cmp_bf16(st, name, ddM, dm, bdm, nm, c_out + c_in + 1 + 16, 0);
  snprintf(name, sizeof name, "bf16 dcn bwd dweight %s", tag);
  cmp_bf16(st, name, ddW, dw, bdw, nw, n * hw + n + 1 + 16, 0);
  cuda_free(dX), cuda_free(dO), cuda_free(dM), cuda_free(dW), cuda_free(dB), cuda_free(dY);
  cuda_free(ddY), cuda_free(ddX), cuda_free(ddW), cuda_free(ddO), cuda_free(ddM);
  free(off), free(msk), free(x), free(wt), free(b), free(dy), free(dx0), free(dw0), free(do0);
  free(dm0), free(ax), free(aw), free(ab), free(ady), free(y), free(by), free(dx), free(dw);
  free(doff), free(dm), free(bdx), free(bdw), free(bdm);
}

// Row-major C = 0.5 op(A) op(B) + 0.25 C, leading dimensions wider than the rows.
static void check_gemm_bf16(check_state *st, int ta, int tb, int64_t m, int64_t n, int64_t k,
                            uint64_t seed) {
  const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 5;
  const int64_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
  float *a = gpu_check_random(na, seed, 740), *b = gpu_check_random(nb, seed, 741);
  float *c = gpu_check_random(nc, seed, 742);
  float *aa = abs_copy(a, na), *ab = abs_copy(b, nb), *bc = abs_copy(c, nc);
  float *dA = gpu_check_dev_guarded(a, na), *dB = gpu_check_dev_guarded(b, nb);
  float *dC = gpu_check_dev_guarded(c, nc);
  gemm_cpu(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, 0.25f, c, ldc);
  gemm_cpu(ta, tb, m, n, k, 0.5f, aa, lda, ab, ldb, 0.25f, bc, ldc);
  gemm_cuda(ta, tb, m, n, k, 0.5f, dA, lda, dB, ldb, 0.25f, dC, ldc, 0);
  char name[96];
  snprintf(name, sizeof name, "bf16 gemm %c%c %lldx%lldx%lld", ta ? 'T' : 'N', tb ? 'T' : 'N',
           (long long)m, (long long)n, (long long)k);
  // The padding columns of C (beyond n) are untouched: their bound is |c|, which is also their
  // error budget's scale; they must come back exactly (error 0 <= c * |c|).
  cmp_bf16(st, name, dC, c, bc, nc, k + 1, 0);
  cuda_free(dA), cuda_free(dB), cuda_free(dC);
  free(a), free(b), free(c), free(aa), free(ab), free(bc);
}

// Batched row-major C_i = 0.375 A_i op(B_i) + 0.5 C_i (strided, padded); stride_b 0 shares one B
// (the packing converts it once).
static void check_vit_gemm_bf16(check_state *st, int tb, int64_t m, int64_t n, int64_t k,
                                int64_t batch, int shared_b, uint64_t seed) {
  const int64_t lda = k + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
  const int64_t sa = m * lda + 5, sb = shared_b ? 0 : (tb ? n : k) * ldb + 7, sc = m * ldc + 3;
  const int64_t na = sa * batch, nb = shared_b ? (tb ? n : k) * ldb : sb * batch, nc = sc * batch;
  float *a = gpu_check_random(na, seed, 750), *b = gpu_check_random(nb, seed, 751);
  float *c = gpu_check_random(nc, seed, 752);
  float *aa = abs_copy(a, na), *ab = abs_copy(b, nb), *bc = abs_copy(c, nc);
  float *dA = gpu_check_dev_guarded(a, na), *dB = gpu_check_dev_guarded(b, nb);
  float *dC = gpu_check_dev_guarded(c, nc);
  vit_gemm_batched_cpu(0, tb, m, n, k, 0.375f, a, lda, sa, b, ldb, sb, 0.5f, c, ldc, sc, batch);
  vit_gemm_batched_cpu(0, tb, m, n, k, 0.375f, aa, lda, sa, ab, ldb, sb, 0.5f, bc, ldc, sc, batch);
  vit_gemm_batched_cuda(0, tb, m, n, k, 0.375f, dA, lda, sa, dB, ldb, sb, 0.5f, dC, ldc, sc, batch,
                        0);
  char name[96];
  snprintf(name, sizeof name, "bf16 vit_gemm_batched N%c %lldx%lldx%lld b%lld%s", tb ? 'T' : 'N',
           (long long)m, (long long)n, (long long)k, (long long)batch, shared_b ? " sB0" : "");
  cmp_bf16(st, name, dC, c, bc, nc, k + 1, 0);
  cuda_free(dA), cuda_free(dB), cuda_free(dC);
  free(a), free(b), free(c), free(aa), free(ab), free(bc);
}

// After cuda_set_precision(0): the mode reads back 0, the workspace is freed, and a GEMM is FP32
// again (the ops3 gemm tolerance: k terms |v| <= 1 in another order, 2e-7 k + 1e-5 |ref|, far
// below bf16's ~1e-2 here).
static void check_fp32_restored(check_state *st, uint64_t seed) {
  const int64_t m = 512, n = 256, k = 768;
  float *a = gpu_check_random(m * k, seed, 760), *b = gpu_check_random(k * n, seed, 761);
  float *c = callocCheck((size_t)(m * n + 1), sizeof(float));
  float *dA = gpu_check_dev_guarded(a, m * k), *dB = gpu_check_dev_guarded(b, k * n);
  float *dC = gpu_check_dev_guarded(NULL, m * n);
  gemm_cpu(0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
  gemm_cuda(0, 0, m, n, k, 1.0f, dA, k, dB, n, 0.0f, dC, n, 0);
  gpu_check_cmp(st, "fp32 restored: gemm NN 512x256x768", dC, c, m * n, 2e-7 * (double)k, 1e-5);
  float mode[2] = {(float)cuda_precision_bf16(), (float)cuda_bf16_workspace_bytes()};
  const float zero[2] = {0.0f, 0.0f};
  float *h = mallocCheck((2 + GUARD) * sizeof(float));
  memcpy(h, mode, sizeof mode);
  for (int i = 2; i < 2 + GUARD; i++) h[i] = SENTINEL;
  gpu_check_compare(st, "fp32 restored: mode 0, workspace 0 B", h, zero, 2, 0, 0);
  free(h);
  cuda_free(dA), cuda_free(dB), cuda_free(dC);
  free(a), free(b), free(c);
}

void gpu_check_bf16(check_state *st, uint64_t seed) {
  printf("-- bf16 GEMM precision: 'max rel' is the relative L2 error; B = the op on |inputs|\n");
  cuda_set_precision(1);
  check_linear_bf16(st, 1, 7, 3, seed);
  check_linear_bf16(st, 3, 256, 1024, seed);
  check_linear_bf16(st, 512, 1024, 256, seed);
  // conv2d: 3x3 with bias, stride 2, groups + dilation, 1x1 direct path, a model-sized K = 576.
  check_conv_bf16(st, conv2d_make(1, 3, 7, 9, 5, 3, 1, 1, 1, 1), seed);
  check_conv_bf16(st, conv2d_make(3, 4, 10, 7, 6, 3, 2, 1, 1, 1), seed);
  check_conv_bf16(st, conv2d_make(2, 6, 9, 8, 4, 3, 2, 2, 2, 2), seed);
  check_conv_bf16(st, conv2d_make(3, 8, 5, 7, 6, 1, 1, 0, 1, 1), seed);
  check_conv_bf16(st, conv2d_make(1, 64, 40, 48, 96, 3, 1, 1, 1, 1), seed);
  // DCN: odd sizes, stride 2, dilation 2, large offsets, a model-sized K = 576.
  check_dcn_bf16(st, 1, 5, 9, 11, 4, 1, 1, 1, 1.5f, seed);
  check_dcn_bf16(st, 3, 3, 8, 13, 6, 2, 1, 1, 6.0f, seed);
  check_dcn_bf16(st, 3, 4, 10, 7, 5, 1, 2, 2, 3.0f, seed);
  check_dcn_bf16(st, 2, 64, 20, 17, 32, 1, 1, 1, 2.0f, seed);
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) check_gemm_bf16(st, ta, tb, 37, 19, 53, seed);
  check_gemm_bf16(st, 0, 0, 512, 256, 768, seed);
  check_vit_gemm_bf16(st, 1, 49, 49, 24, 3, 0, seed);
  check_vit_gemm_bf16(st, 0, 49, 24, 49, 3, 0, seed);
  check_vit_gemm_bf16(st, 0, 33, 17, 40, 4, 1, seed);
  cuda_set_precision(0);
  check_fp32_restored(st, seed);
}
#endif
